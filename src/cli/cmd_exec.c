// SPDX-License-Identifier: MIT
/* PLACEHOLDER (issue 10) */
#include "cli.h"
