/* SPDX-License-Identifier: MIT */
/*
 * Small text rules the CLI shares between commands: what a workspace name,
 * a URL alias and a job id look like (so `mags sync NAME|ID` can tell them
 * apart, and a bad name is a usage error before anything reaches magsd),
 * sizes for people ("1.1 MiB"), words quoted for a shell, and the lines of
 * ~/.mags/known_hosts that `mags ssh` keeps. The workspace-name rule mirrors
 * the API's (docs/api.yaml, "workspace"). Unit-tested in
 * tests/unit/test_cli_args.c.
 */
#ifndef MAGS_CLI_TEXT_H
#define MAGS_CLI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "names.h"

/* the rule, for error messages */
/* magsd's rule (lib names.h): text_workspace_ok is ws_name_ok */
#define text_workspace_ok ws_name_ok
#define TEXT_WORKSPACE_RULE "1-48 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"

#define TEXT_ALIAS_MAX 63	/* bytes of a URL alias: one DNS label (RFC 1035 2.3.4) */
#define TEXT_ALIAS_RULE "1-63 characters from a-z 0-9 -, not starting or ending with -"
#define TEXT_HOST_KEY_MAX 16384	/* bytes of an SSH host key line we accept */

/* Whether s is a URL alias: one lowercase DNS label, [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?. */
bool text_alias_ok(const char *s);

/* Whether s has the shape of a job id: a UUID, 8-4-4-4-12 hex digits. */
bool text_is_job_id(const char *s);

/* Writes bytes as "512 B", "1.1 KiB", "100.0 MiB", "1.0 GiB" ... into out. */
void text_bytes(uint64_t bytes, char *out, size_t n);

/* Appends s to b as one POSIX shell word, quoted only when it needs to be. */
void text_shell_word(struct buf *b, const char *s);

/*
 * Splits an OpenSSH public key line "TYPE DATA [COMMENT]" into TYPE and DATA
 * (new strings in *type and *data, cleared on entry). TYPE must be
 * [A-Za-z0-9@._-], at most 64 bytes, DATA base64, the line at most
 * TEXT_HOST_KEY_MAX bytes. Returns 0, or -1 when the line is not such a key.
 */
int text_ssh_key_split(const char *line, char **type, char **data);

/*
 * Returns a new known_hosts text (the caller frees it): old (len bytes, may
 * be NULL) without the lines whose first field is host, then the line
 * "HOST TYPE DATA\n". Other lines are kept as they were.
 */
char *text_known_hosts_set(const char *old, size_t len, const char *host, const char *type, const char *data);

#endif
