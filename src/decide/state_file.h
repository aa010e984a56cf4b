/* SPDX-License-Identifier: MIT */
/* The state record in the state directory, one file per app. Files are
 * replaced atomically (temp file, fsync, rename, fsync dir), so a crash at any
 * moment leaves either the old or the new record, never half of one. */
#pragma once

#include "state.h"

/* "<dir>/<app-name-escaped>.json". malloc'ed, NULL on OOM. */
char *state_path(const char *dir, const char *app);

/* Loads the app's record. A missing file gives an empty state and 0. A
 * corrupt or truncated file is renamed to "<file>.corrupt-<unix-time>", an
 * empty state is returned with 0, and *ret_warning (malloc'ed) says what was
 * wrong and where it was moved. Other errors (permissions) are negative. */
int state_load(const char *dir, const char *app, app_state *out, char **ret_warning);
/* Atomically replaces the record. 0 or negative errno. */
int state_save(const char *dir, const app_state *s);
