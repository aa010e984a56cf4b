/* SPDX-License-Identifier: MIT */
/* The listener's bearer token: where it is read from, and the check of an
 * Authorization header against it. The token is a secret: callers wipe it
 * (free_secret) and never log it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* From cfg->alerts_token_file, else $CREDENTIALS_DIRECTORY/alert-token.
 * Exactly one trailing newline is stripped; empty, oversized or
 * whitespace-bearing tokens are refused. 0, or negative with *ret_error. */
int token_read(const config *cfg, char **ret_token, size_t *ret_len, char **ret_error);

/* "Bearer <token>" (scheme case-insensitive, blanks around), in constant
 * time in the token's content. */
bool token_check(const char *token, size_t token_len, const char *header);
