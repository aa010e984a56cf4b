/* SPDX-License-Identifier: MIT */
/* rollback / abort / log, with every safety check of SPEC 6: once per change
 * order (intent written before the call), SupportRollback, never a rollback
 * of a rollback, dry-run, cooldown, circuit breaker, re-read before acting.
 *
 * A layer below the watcher: it talks to the cloud through cloud.h and keeps
 * the app's durable record (state), and knows nothing of the watcher. What it
 * needs comes in an action_ctx; what it has to say goes out through the
 * ctx's callbacks. The sequence of one fired rule is
 *
 *   gate -> re-read the order [-> hooks.recheck] -> intent written
 *        [-> hooks.pre_send] -> API call -> outcome recorded
 *        [-> hooks.post_record] -> ctx.done
 *
 * where the bracketed steps are optional hooks for what comes next (metric
 * rules, HA fencing, notifications); without hooks they are skipped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "cloud.h"
#include "rules.h"
#include "state.h"

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
        int64_t now_ms;     /* steady clock (now_steady_ms): the cooldown's */
        bool circuit_open;
} action_gate_input;

/* Pure: the order of the checks is the order of this function. */
action_gate actions_gate(const action_gate_input *in, char *why, size_t whysz);

typedef struct action_run action_run;

/* How a sequence ended. */
typedef enum action_end {
        ACTION_END_RECORDED, /* a call was attempted: `result` is in the record */
        ACTION_END_MOVED_ON, /* the re-read (or hooks.recheck) no longer fires */
        ACTION_END_NOT_SENT, /* nothing sent and nothing kept (re-read failed,
                              * intent not written, stopping, hooks.pre_send
                              * said no): the next poll decides again */
} action_end;

typedef struct action_outcome {
        const char *app;
        const char *change_order_id;
        const char *rule;
        rule_action action;
        action_end end;
        act_result result;             /* with ACTION_END_RECORDED */
        const char *detail;            /* API code or reason, may be NULL */
        const char *rollback_order_id; /* the order the API created, may be NULL */
        bool has_value;                /* a metric rule: the value its re-check read */
        double value;
        double threshold;
} action_outcome;

/* Firing alerts for the app at now_ms, for the re-check before acting. */
typedef size_t (*action_alerts_fn)(void *userdata, int64_t now_ms, const firing_alert **ret);
/* A decision about rule r (result: a gate name, "act" or "moved_on"). */
typedef void (*action_decided_fn)(void *userdata, const rule *r, const char *result);
/* The sequence ended. The run frees itself when this returns: do not cancel
 * it from here, and forget the pointer. */
typedef void (*action_done_fn)(void *userdata, const action_outcome *o);

/* An asynchronous gate (hooks below): returns 0 and later (or at once) calls
 * actions_resume(run, ...), or a negative errno meaning "no". */
typedef int (*action_gate_fn)(void *userdata, action_run *run, const char *app,
                              const change_order *co, const rule *r);

/* Extension points of the sequence; each may be NULL, and so may the struct. */
typedef struct action_hooks {
        /* After the re-read confirmed the rule, before the intent is written
         * (metric rules: the query is evaluated once more). "No" is handled
         * like an order that moved on: nothing written, nothing sent. */
        action_gate_fn recheck;
        /* After the intent is durable, before the API call (HA: the etcd
         * transaction that fences other nodes). "No" withdraws the intent:
         * nothing was sent, the next poll decides again. */
        action_gate_fn pre_send;
        /* A run waiting on a gate was cancelled: never resume it. */
        void (*gate_cancel)(void *userdata, action_run *run);
        /* After the outcome is recorded and saved, before ctx.done (HA: the
         * result write; notifications: the event). Must not block. */
        void (*post_record)(void *userdata, const action_outcome *o);
        void *userdata;
} action_hooks;

/* What the sequences of one app remember between polls (owned by the
 * owner, freed with action_memo_done). */
typedef struct action_memo {
        /* The intent for this order could not be written: said once; until
         * the state can be saved again, no re-read is spent on it. */
        char *intent_failed_co;
} action_memo;
void action_memo_done(action_memo *m);

/* The owner's side of one app's sequences. It must outlive every run started
 * with it, and is read again at each step: the owner may switch `app` and
 * the cloud ctx's config (reload) and set `stopping` (drain) while a run is
 * under way. */
typedef struct action_ctx {
        sd_event *event;
        const cloud_ctx *cloud;     /* cloud->cfg gives the cooldown */
        const app_config *app;
        const char *app_name;
        app_state *state;           /* the app's durable record */
        const char *state_dir;
        bool stopping;              /* a run that has not sent yet stops */
        int64_t (*now_ms)(void);    /* NULL: now_realtime_ms (rule inputs) */
        int64_t (*steady_ms)(void); /* NULL: now_steady_ms (intent, outcome,
                                     * cooldown: the record's clock) */
        action_alerts_fn alerts;    /* NULL: no alerts */
        action_decided_fn decided;  /* may be NULL */
        action_done_fn done;        /* required */
        void *userdata;             /* for alerts, decided and done */
        const action_hooks *hooks;  /* may be NULL */
        action_memo *memo;          /* may be NULL: every failure is then logged */
} action_ctx;

typedef struct action_fire_input {
        const rule *rule;       /* copied: a reload may free it */
        const rule_input *in;   /* the snapshot (copied), alerts and time it fired on */
        bool dry_run;
        bool circuit_open;
        bool quiet;             /* a refusal for this rule and order was logged already */
} action_fire_input;

/* A rule fired for the app's current snapshot: gate, and when the gate says
 * go, start the sequence. Returns 1 and *ret when a sequence started (the end
 * comes through ctx->done), 0 when the gate stopped it (logged unless quiet),
 * negative on error. */
int actions_fire(const action_ctx *ctx, const action_fire_input *fi, action_run **ret);

/* The answer of a gate hook: go on, or stop (`why` for the log, may be NULL). */
void actions_resume(action_run *run, bool go, const char *why);

/* A metric rule's recheck hook says what it read, before it resumes: the
 * outcome (and so the notification) carries it. */
void actions_set_metric(action_run *run, double value, double threshold);

/* Stop a sequence (app removed, daemon exiting) without calling ctx->done.
 * Whatever was written to the state stays: an intent already on disk means
 * "never call again". Returns NULL. */
action_run *actions_cancel(action_run *run);

/* At start-up: an ACT_INTENT record means we died with a call possibly in
 * flight; it becomes ACT_UNCONFIRMED (and is never retried). Returns 1 when
 * the state changed. */
int actions_recover_state(app_state *s, const char *app, int64_t now_ms);
