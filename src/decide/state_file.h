/* SPDX-License-Identifier: MIT */
/* The state record in the state directory, one file per app, named after the
 * app's identity in the cloud (platform, region, app id), never after its
 * name in the config: a rename, a reorder or a reload finds the same record.
 * Files are replaced atomically (temp file created O_EXCL, fsync, rename,
 * fsync dir), so a crash at any moment leaves either the old or the new
 * record. Everything inside the directory is opened relative to it with
 * O_NOFOLLOW: a symlink planted there is never followed, for reading or
 * writing. */
#pragma once

#include <stdbool.h>

#include "state.h"

/* The record's key, also its file's stem: "<platform>_<region>_<app_id>"
 * with each part %-escaped outside [A-Za-z0-9.-] (so '_' only ever
 * separates: two identities never share a key). malloc'ed; NULL with errno. */
char *state_key(const char *platform_s, const char *region, const char *app_id);
/* "<dir>/<key-escaped>.json" (a leading '.' and anything outside
 * [A-Za-z0-9._-] %-escaped). malloc'ed, NULL on OOM. */
char *state_path(const char *dir, const char *key);

/* What a start does when the record under the key is missing but 0.1's
 * file (named after the app) is there. Pure. */
typedef enum state_migration {
        STATE_USE_KEY,       /* the keyed file exists: it wins */
        STATE_MIGRATE_NAMED, /* read the named file, save it under the key */
        STATE_START_EMPTY,   /* neither exists */
} state_migration;
state_migration state_migration_plan(bool have_key_file, bool have_named_file);

/* state_load's "the file is there but cannot be trusted": the caller keeps
 * the app quarantined (never acts, never writes) until it reads again. */
#define STATE_QUARANTINED 1

/* Loads the record under key. A missing file gives an empty state and 0.
 * A file that cannot be read as our record (truncated, unknown version, not
 * JSON, a directory, a symlink, a FIFO, a foreign owner, the record of
 * another app) is left exactly where it is: STATE_QUARANTINED with an empty
 * *out and *ret_warning (malloc'ed) naming the file and what is wrong.
 * -ENOMEM and other errors of the directory itself are negative. */
int state_load(const char *dir, const char *key, app_state *out, char **ret_warning);
/* state_load, and when there is no keyed file but a 0.1 file named after
 * `name`, migrates it: saved under the key, then renamed to
 * "<old>.migrated". *ret_note (malloc'ed, may be NULL) tells of a migration. */
int state_load_app(const char *dir, const char *key, const char *name, app_state *out, char **ret_warning,
                   char **ret_note);
/* Atomically replaces the record. 0 or negative errno. */
int state_save(const char *dir, const app_state *s);

/* The index of acts by change order: "<dir>/by-order/<co-escaped>", created
 * O_EXCL before the call together with the intent, whatever app entry it is
 * for. claim: 0, -EEXIST when the order was claimed already, other negative
 * errno. claimed: 1, 0, negative errno. release: withdraws a claim of a call
 * never sent. */
int state_order_claim(const char *dir, const char *change_order_id, const char *key);
int state_order_claimed(const char *dir, const char *change_order_id);
int state_order_release(const char *dir, const char *change_order_id);

/* `rollguard state repair`: when the record under key (or 0.1's named file,
 * when there is no keyed one) cannot be read, moves it to
 * "<file>.broken-<unix-time>" and writes a fresh record that keeps every
 * change order id found in its acts (as unconfirmed, so never acted on
 * again) and the cooldown when readable. Returns 0 with *ret_moved_to and
 * *ret_recovered, 1 when the record reads fine (nothing done), -ENOENT when
 * there is none, other negative errno with *ret_error. */
int state_repair(const char *dir, const char *key, const char *name, char **ret_moved_to,
                 size_t *ret_recovered, char **ret_error);
