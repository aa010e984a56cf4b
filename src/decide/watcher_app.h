/* SPDX-License-Identifier: MIT */
/* Internal to the watcher: the runtime record of one watched app and of the
 * watcher (and what /status and /metrics read of them). */
#pragma once

#include <systemd/sd-event.h>

#include "actions.h"
#include "cloud.h"
#include "metrics.h"
#include "state.h"
#include "watcher.h"

typedef enum app_phase {
        APP_IDLE,     /* no release in flight */
        APP_ACTIVE,   /* a release in flight: polled at active_poll_interval */
        APP_DEGRADED, /* a permanent API error: polled slowly, logged once */
        _APP_PHASE_MAX,
} app_phase;

const char *app_phase_name(app_phase p);

typedef struct app_watch {
        watcher *w;
        const app_config *cfg;       /* into w->cfg, refreshed on reload */
        char *name;
        app_phase phase;
        bool removed;                /* dropped by a reload, freed when idle */

        sd_event_source *timer;
        api_call *call;              /* the poll's call in flight, if any */
        bool poll_requested;         /* an alert asked for a poll mid-cycle */
        unsigned transient_failures; /* consecutive, drives the backoff */
        char *error_code;            /* last API error code, "" when none */

        change_order co;             /* latest snapshot of the order in flight */
        bool have_co;
        uint64_t progress_hash;
        int64_t last_change_ms;      /* when the snapshot last changed (0 = not seen) */
        int64_t next_fire_ms;        /* earliest HOLDING rule's fire time (steady), 0 none */
        char *holding_rule;          /* its name, for status */

        int64_t last_poll_ms;        /* wall clock */
        int64_t last_poll_ok_ms;

        app_state state;             /* durable record (times on the steady clock) */
        act_record view_last_action; /* its newest act in wall clock, for the view */
        char *state_key;             /* the record's identity: platform, region, app id */
        /* The record on disk cannot be read: watched and logged, never acted
         * on, never written, until it reads again (repair or removal). */
        bool quarantined;
        char *quarantine_reason;

        /* Log-once bookkeeping, reset when the order in flight changes. */
        char *noted_co;
        uint64_t noted_holding;      /* bit per rule index */
        uint64_t noted_skipped;

        metric_app *metric;          /* its metric rules' queries; NULL without prometheus */

        action_ctx actx;             /* what actions.c reads of this app */
        action_memo memo;            /* what its sequences remember between polls */
        action_run *action;          /* an action sequence under way */
        bool once_counted;

        /* the budget (watcher_budget.c) */
        uint64_t due_usec;           /* CLOCK_MONOTONIC: when the current look was due */
        bool idle_waiting;           /* an idle poll is due and waits for the round robin */
        bool hinted;                 /* the next poll goes in the HINTED class */
        bool look_by_order;          /* the call under way is a look by the order call alone */
        uint64_t seen_usec;          /* CLOCK_MONOTONIC of the last good answer; 0 = never */
        bool unobserved_said;        /* the unobserved warning of this episode went out */
} app_watch;

struct watcher {
        sd_event *event;
        cloud_ctx cloud;
        const config *cfg;
        watcher_options opt;
        char *state_dir;

        app_watch **apps;
        size_t n_apps;

        alert_lookup_fn alert_lookup;
        void *alert_userdata;

        bool circuit_open;
        bool draining;               /* stopping: no new polls or actions */
        void (*drained)(void *userdata);
        void *drained_userdata;
        size_t once_pending;
        int once_failures;

        /* NULL without a registry (every update is then a no-op) */
        metrics_counter *polls;      /* result */
        metrics_counter *api_errors; /* code */
        metrics_counter *decisions;  /* app, rule, result */
        metrics_counter *actions;    /* kind, result */

        /* the budget (watcher_budget.c) */
        sd_event_source *budget_timer; /* once a second: plan, unobserved releases */
        api_budget_view budget;        /* as of the last plan */
        bool stretched_said;
        metrics_callback *budget_metrics[2];
        metrics_gauge *quarantined;  /* app: 1 while its state file is unusable */
};

/* The per-app state machine (watcher.c) as the app set (watcher_apps.c)
 * drives it. */
int app_watch_new(watcher *w, const app_config *cfg, app_watch **ret);
app_watch *app_watch_free(app_watch *a);
/* The next poll in delay_usec (replacing any scheduled one; watcher_poll.c). */
void app_watch_schedule(app_watch *a, uint64_t delay_usec);
/* Writes the app's durable record (logged on failure). */
void app_watch_save_state(app_watch *a);
/* False for `once --dry-run`, which may run beside the daemon. */
bool watcher_state_writable(const watcher *w);
/* Loads (or migrates) the record; trouble quarantines this app only.
 * Returns -ENOMEM or 0. */
int app_watch_load_state(app_watch *a);
/* `once` mode: the app's cycle is over (failed or not). */
void app_watch_once_done(app_watch *a, bool failed);
/* The poll cycle (watcher_poll.c): a look (and any action) is over;
 * schedules the next one. */
void app_watch_cycle_finished(app_watch *a);
/* What the coord (ha) says: poll the cloud now? NULL, or why not act. */
bool watcher_coord_may_poll(const watcher *w);
const char *watcher_coord_why_not_act(const watcher *w);
/* Re-checks the breaker; logs the transitions. Returns true when open. */
bool watcher_circuit_check(watcher *w, int64_t now_ms);

/* ---- the budget (watcher_budget.c) ---- */
/* At most this many idle polls wait in the API queue at once: the rest wait
 * in the round robin, so the next idle poll to go is always the one that
 * has waited longest, and a release that starts meanwhile is never behind
 * a queue of idle polls. */
#define WATCHER_IDLE_QUEUED 2
int watcher_budget_start(watcher *w);
void watcher_budget_free(watcher *w);
/* Recomputes the plan (after an app entered or left in flight). */
void watcher_budget_update(watcher *w);
/* How often each release in flight is looked at now. */
uint64_t watcher_in_flight_interval(const watcher *w);
/* An idle app's poll is due: queue it when the round robin has room. */
void watcher_idle_due(app_watch *a);
/* A good answer about the app (the unobserved episode, if any, ends). */
void watcher_seen(app_watch *a);
/* Starts the app's poll (watcher_poll.c): the round robin calls it. */
void app_watch_poll_start(app_watch *a);

/* Sum of actions over all apps in the last hour (the circuit breaker). */
size_t watcher_actions_last_hour(const watcher *w, int64_t now_ms);
