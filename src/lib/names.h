/* SPDX-License-Identifier: MIT */
/* Names users give things, checked the same way by the CLI and magsd. */
#ifndef MAGS_NAMES_H
#define MAGS_NAMES_H

#include <stdbool.h>

#define WS_NAME_MAX 48	/* bytes of a workspace name */

/* Workspace names: 1-48 of [A-Za-z0-9._-], starting with a letter or digit. */
bool ws_name_ok(const char *name);

#endif
