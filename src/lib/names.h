/* SPDX-License-Identifier: MIT */
/* Names users give things, checked the same way by the CLI and magsd. */
#ifndef MAGS_NAMES_H
#define MAGS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define WS_NAME_MAX 48	/* bytes of a workspace name */

/* Workspace names: 1-48 of [A-Za-z0-9._-], starting with a letter or digit. */
bool ws_name_ok(const char *name);

#define URL_LABEL_MAX 63	/* one DNS label */
#define SSH_KEY_MAX 8192	/* bytes of one public key line */

/* URL names and aliases: one DNS label, 1-63 of [a-z0-9-], no leading or trailing '-'. */
bool url_label_ok(const char *label);
/*
 * An OpenSSH public key line ("ssh-ed25519 AAAA... comment"): printable ASCII,
 * one line, at most SSH_KEY_MAX bytes, a known key type, base64 key data.
 */
bool ssh_pubkey_ok(const char *key, size_t len);
#define IMAGE_NAME_MAX 32	/* bytes of a guest image name */

/* Guest image names: 1-32 of [a-z0-9._-], starting with a letter or digit (NAME.img in the guest dir). */
bool image_name_ok(const char *name);

/* 1 to max bytes of printable ASCII (0x20-0x7e): one line, no control characters. */
bool text_line_ok(const char *s, size_t len, size_t max);

#endif
