/* SPDX-License-Identifier: MIT */
/* The state record as JSON text (indented, versioned), strict on reading:
 * it is our own file, so anything unexpected is corruption. Pure. */
#pragma once

#include "state.h"

/* malloc'ed text, or NULL with errno (EINVAL: !app_state_valid). */
char *state_to_json(const app_state *s);
/* 0, -EBADMSG with *ret_error (malloc'ed) naming the place, -ENOMEM, -EINVAL. */
int state_from_json(const char *text, app_state *out, char **ret_error);

/* What `state repair` can salvage from text that is no record any more
 * (truncated, unknown version, not JSON): every change order id in "acts"
 * becomes an ACT_UNCONFIRMED act (intent_ms 0: it counts for no breaker
 * hour), and a readable "cooldown_until_ms" is kept. Pure; *out gets
 * app = key. Returns the number of acts recovered or -ENOMEM. */
int state_recover_text(const char *text, size_t len, const char *key, int64_t now_ms, app_state *out);
