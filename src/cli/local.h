/* SPDX-License-Identifier: MIT */
/*
 * Local single-user mode: make sure a magsd answers on CONFIG_LOCAL_URL and
 * that the CLI has a token for it, starting the magsd that sits next to the
 * running mags binary when needed (docs/api-contract.md, "CLI").
 */
#ifndef MAGS_CLI_LOCAL_H
#define MAGS_CLI_LOCAL_H

#include "client.h"
#include "config.h"
#include "err.h"

#define LOCAL_START_WAIT_MS 30000	/* how long a starting magsd may take to answer */
#define LOCAL_POLL_MS 50
#define LOCAL_TOKEN_MAX 4096

/*
 * Ensures cfg->token is set (creating and saving one with `magsd token
 * create` when neither the environment nor the config file has one) and that
 * GET /health answers on c, spawning `magsd --daemon` when it does not.
 * Sets c's token. Returns 0 or negative with err set.
 */
int local_ensure(struct config *cfg, struct client *c, struct err *err);

#endif
