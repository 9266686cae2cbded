// SPDX-License-Identifier: MIT
/* (being written) */
#include <stddef.h>
