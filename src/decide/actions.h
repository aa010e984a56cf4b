/* SPDX-License-Identifier: MIT */
/* rollback / abort / log, with every safety check of SPEC 6: once per change
 * order (intent written before the call), SupportRollback, never a rollback
 * of a rollback, dry-run, cooldown, circuit breaker, re-read before acting.
 * Knows nothing about parsing: it talks to the cloud through cloud.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "state.h"

typedef struct app_watch app_watch;

typedef enum action_gate {
        GATE_GO,            /* call the API */
        GATE_LOG_ONLY,      /* the rule's action is `log` */
        GATE_ALREADY_ACTED, /* a record for this order exists */
        GATE_NOT_ALLOWED,   /* action_allowed() said no */
        GATE_DRY_RUN,
        GATE_COOLDOWN,
        GATE_CIRCUIT_OPEN,
        _GATE_MAX,
} action_gate;

const char *action_gate_name(action_gate g);

typedef struct action_gate_input {
        const change_order *co;
        const rule *rule;
        const app_state *state;
        bool dry_run;
        int64_t now_ms;
        bool circuit_open;
} action_gate_input;

/* Pure: the order of the checks is the order of this function. */
action_gate actions_gate(const action_gate_input *in, char *why, size_t whysz);

/* A rule fired for the app's current snapshot: gate, and when the gate says
 * go, start the sequence re-read -> intent -> call -> record. Returns 1 when
 * a sequence started (the watcher waits for watcher_action_finished), 0 when
 * the gate stopped it (already logged), negative on error. */
int actions_fire(app_watch *a, size_t rule_index, const rule_input *in);

/* Stop a sequence (app removed, daemon exiting). Whatever was written to the
 * state stays: an intent already on disk means "never call again". */
void actions_cancel(app_watch *a);

/* At start-up: an ACT_INTENT record means we died with a call possibly in
 * flight; it becomes ACT_UNCONFIRMED (and is never retried). Returns 1 when
 * the state changed. */
int actions_recover_state(app_state *s, const char *app, int64_t now_ms);
