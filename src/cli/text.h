/* SPDX-License-Identifier: MIT */
/*
 * Small text rules the CLI shares between commands: what a workspace name
 * and a job id look like (so `mags sync NAME|ID` can tell them apart, and a
 * bad name is a usage error before anything reaches magsd), and sizes for
 * people ("1.1 MiB"). The workspace-name rule mirrors the API's
 * (docs/api.yaml, "workspace"). Unit-tested in tests/unit/test_cli_args.c.
 */
#ifndef MAGS_CLI_TEXT_H
#define MAGS_CLI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

/* the rule, for error messages */
/* magsd's rule (lib names.h): text_workspace_ok is ws_name_ok */
#define text_workspace_ok ws_name_ok
#define TEXT_WORKSPACE_RULE "1-48 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"

/* Whether s matches [A-Za-z0-9][A-Za-z0-9._-]{0,63}. */

/* Whether s has the shape of a job id: a UUID, 8-4-4-4-12 hex digits. */
bool text_is_job_id(const char *s);

/* Writes bytes as "512 B", "1.1 KiB", "100.0 MiB", "1.0 GiB" ... into out. */
void text_bytes(uint64_t bytes, char *out, size_t n);

#endif
