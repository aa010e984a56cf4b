/* SPDX-License-Identifier: MIT */
/* The state record as JSON text (indented, versioned), strict on reading:
 * it is our own file, so anything unexpected is corruption. Pure. */
#pragma once

#include "state.h"

/* malloc'ed text, or NULL with errno (EINVAL: !app_state_valid). */
char *state_to_json(const app_state *s);
/* 0, -EBADMSG with *ret_error (malloc'ed) naming the place, -ENOMEM, -EINVAL. */
int state_from_json(const char *text, app_state *out, char **ret_error);
