/* SPDX-License-Identifier: MIT */
/* The durable per-app record: what rollguard saw, what it intended (written
 * BEFORE the API call), what came of it. This header is the record and its
 * pure helpers; state_json.h reads and writes it as text, state_file.h keeps
 * it in the state directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

typedef enum act_result {
        ACT_INTENT,         /* decided, call about to go out or in flight; a
                             * restart that finds this never calls again */
        ACT_DONE,           /* the API accepted it */
        ACT_ENDED_BY_ITSELF,/* Application.ChangerOrder.Not.Running */
        ACT_FAILED,         /* the API refused it for good */
        ACT_UNCONFIRMED,    /* may or may not have happened (timeout after send,
                             * or found as INTENT after a restart) */
        _ACT_RESULT_MAX,
} act_result;

const char *act_result_name(act_result r);
int act_result_from_string(const char *s);

typedef struct act_record {
        char *change_order_id;
        char *rule;
        rule_action action;
        int64_t intent_ms;         /* wall clock when the intent was written */
        act_result result;
        char *detail;              /* API code or reason, may be NULL */
        char *rollback_order_id;   /* new order the API created, may be NULL */
        int64_t finished_ms;       /* 0 while ACT_INTENT */
} act_record;

/* A rule that matched and is waiting for its `for`: kept so a restart does
 * not start the clock again. */
typedef struct pending_match {
        char *change_order_id;
        char *rule;
        int64_t since_ms;
} pending_match;

#define STATE_MAX_ACTS 64     /* older records are dropped, newest kept */
#define STATE_MAX_PENDING 32

typedef struct app_state {
        char *app;                 /* the record's key (state_key()): its identity */
        char *name;                /* the app's config name when saved, for
                                    * humans reading the file; may be NULL */
        act_record *acts;          /* oldest first */
        size_t n_acts;
        pending_match *pending;
        size_t n_pending;
        int64_t cooldown_until_ms; /* 0 = none */
        char *last_change_order_id;/* the latest order the watcher saw */
} app_state;

void app_state_done(app_state *s);

/* What state_to_json can write and read back identically: an app name,
 * the caps, every record complete, every time in [0, 2^53]. */
bool state_time_valid(int64_t t);
bool act_record_valid(const act_record *a);
bool app_state_valid(const app_state *s);

/* In memory every time of the record (intent_ms, finished_ms,
 * cooldown_until_ms, since_ms) is on the steady clock (now_steady_ms); on
 * disk it is wall-clock milliseconds, for humans and across reboots. The
 * offset is wall minus steady, taken when the file is read or written. 0
 * stays 0 ("none"); a wall time too old to map stays a positive "long ago".
 * Pure. */
int64_t state_time_to_steady(int64_t wall_ms, int64_t offset_ms);
int64_t state_time_to_wall(int64_t steady_ms, int64_t offset_ms);
/* Every time of s, converted (to_wall: steady -> wall, else wall -> steady). */
void state_convert_times(app_state *s, int64_t offset_ms, bool to_wall);

/* Pure helpers on the in-memory record. */
act_record *state_find_act(const app_state *s, const char *change_order_id);
/* Appends a copy (dropping the oldest past STATE_MAX_ACTS). 0 or -ENOMEM. */
int state_add_act(app_state *s, const act_record *a);
/* Removes the newest record when it is this order's (an intent that was
 * never sent). Returns 1 when removed, else 0. */
int state_drop_newest_act(app_state *s, const char *change_order_id);
/* Actions (not dry-run decisions: those are never recorded) with
 * intent_ms >= since_ms. */
size_t state_count_acts_since(const app_state *s, int64_t since_ms);

/* Returns since_ms of a pending match or 0. */
int64_t state_pending_since(const app_state *s, const char *change_order_id, const char *rule);
/* Sets (since_ms > 0) or clears (since_ms == 0) one pending match. Returns
 * 1 when the record changed (so the caller knows to save), 0, or -ENOMEM. */
int state_set_pending(app_state *s, const char *change_order_id, const char *rule,
                      int64_t since_ms);
/* Drops pending matches of other change orders. Returns 1 when changed. */
int state_prune_pending(app_state *s, const char *keep_change_order_id);
