/* SPDX-License-Identifier: MIT */
/*
 * docs/api.yaml as JSON, compiled in (build/gen/openapi_json.c, made by
 * scripts/gen-openapi-c.py), served at GET /api/v1/openapi.json.
 */
#ifndef MAGS_OPENAPI_H
#define MAGS_OPENAPI_H

#include <stddef.h>

extern const char api_openapi_json[];	/* NUL-terminated */
extern const size_t api_openapi_json_len;

#endif
