/* SPDX-License-Identifier: MIT */
/* Per-app state machine and adaptive polling schedule (SPEC 6 Polling).
 * Owns one app_watch per configured app; drives cloud calls, evaluates the
 * rules and hands fired rules to actions. Knows no HTTP details. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "actions.h"
#include "api.h"
#include "config.h"
#include "metric_eval.h"
#include "metrics.h"
#include "rules.h"
#include "state.h"

typedef struct watcher watcher;

/* Where the watcher learns which alerts fire for an app (alerts.c). */
typedef size_t (*alert_lookup_fn)(void *userdata, const char *app, int64_t now_ms,
                                  const firing_alert **ret);

/* When several hosts watch the same apps (ha:, src/decide/fence.h), only
 * one polls the cloud and acts. Without a coord (or with NULL callbacks)
 * this host always may. */
typedef struct watcher_coord_view {
        const char *node, *role, *reason; /* never NULL */
        const char *leader;               /* NULL: not known */
} watcher_coord_view;

typedef struct watcher_coord {
        /* Poll the cloud now? (the leader, or a leader that lost etcd and
         * keeps watching without acting) */
        bool (*may_poll)(void *userdata);
        /* NULL: may act; else why not, for the log */
        const char *(*why_not_act)(void *userdata);
        /* For /status: valid until control returns to the loop. */
        void (*view)(void *userdata, watcher_coord_view *out);
        void *userdata;
} watcher_coord;

typedef struct watcher_options {
        bool force_dry_run;  /* --dry-run */
        bool once;           /* poll every app once, then call once_done */
        const char *state_dir;
        void (*once_done)(void *userdata, int failures);
        void *userdata;
        metrics_registry *metrics; /* where the watcher registers its counters; NULL: none */
        const action_hooks *action_hooks; /* extension points of each action, may be NULL */
        metric_eval *metric_eval; /* asks metric rules' queries; NULL: no prometheus section */
        const watcher_coord *coord;       /* must outlive the watcher; NULL: a single host */
} watcher_options;

/* cfg must outlive the watcher or be replaced with watcher_reconfigure. */
int watcher_new(sd_event *e, api_client *api, const config *cfg, const watcher_options *opt,
                watcher **ret);
watcher *watcher_free(watcher *w);

/* Loads each app's state record and schedules the first polls, spread over a
 * short start-up window so a thousand apps do not poll in the same instant. */
int watcher_start(watcher *w);

/* Switch to a new config (SIGHUP). Apps are matched by identity (platform,
 * region, app id), so a renamed app keeps its state, schedule and any action
 * in flight under its new name; new apps start; removed apps stop (an action
 * already sent is still recorded). */
int watcher_reconfigure(watcher *w, const config *cfg);

/* Stop polling and start no new action; `done` runs (from the loop, or at
 * once) when no action sequence is in flight any more, so a rollback that is
 * already on the wire gets its answer recorded. Returns the number of
 * sequences still in flight. */
size_t watcher_drain(watcher *w, void (*done)(void *userdata), void *userdata);

void watcher_set_alert_lookup(watcher *w, alert_lookup_fn fn, void *userdata);
/* An alert for this app changed: poll it now (returns -ENOENT for unknown apps). */
int watcher_poll_now(watcher *w, const char *app);

typedef struct watcher_counts {
        size_t apps, idle, in_flight, degraded;
        bool circuit_open;
} watcher_counts;
void watcher_get_counts(const watcher *w, watcher_counts *out);

/* Read-only views for /status and /metrics (src/serve/status.c). Pointers
 * stay valid until control returns to the event loop. */
typedef struct watcher_summary {
        watcher_counts counts;
        size_t actions_last_hour;
        unsigned max_actions_per_hour;
} watcher_summary;
void watcher_summary_get(const watcher *w, int64_t now_ms, watcher_summary *out);

typedef struct watcher_app_view {
        const char *name;
        const app_config *cfg;
        const char *state;              /* "idle", "in_flight", "degraded" */
        bool dry_run;                   /* as the actions would see it */
        const change_order *co;         /* the order in flight; NULL when none seen */
        int64_t last_poll_ms;           /* wall clock; 0 = never */
        int64_t last_poll_ok_ms;
        const char *error_code;         /* last API error code; NULL when none */
        const char *holding_rule;       /* the rule due to fire next; NULL when none */
        int64_t next_fire_ms;
        const act_record *last_action;  /* newest durable action record; NULL when none */
        bool quarantined;               /* its state file cannot be read: never acts */
} watcher_app_view;
size_t watcher_n_apps(const watcher *w);
/* i < watcher_n_apps(w), in config order. */
void watcher_app_view_get(const watcher *w, size_t i, watcher_app_view *out);
/* The API budget as the watcher spends it, for /status: the pace, whether
 * throttling slowed it, and the intervals in effect now. */
typedef struct watcher_budget_view {
        double calls_per_minute;          /* 0: unlimited */
        bool throttled;
        uint64_t in_flight_interval_usec; /* each release in flight is looked at this often */
        bool stretched;                   /* ... longer than active_poll_interval */
        uint64_t idle_interval_usec;      /* each idle app is polled about this often */
        uint64_t idle_sweep_usec;         /* time to poll every idle app once (0: none or no limit) */
} watcher_budget_view;
void watcher_budget_get(watcher *w, watcher_budget_view *out);
/* The coord's answers changed (a new leader, etcd lost or back): apps that
 * may poll now poll at once; the log-once notes start afresh. */
void watcher_coord_changed(watcher *w);
/* Another host acted on (or claimed) rec->change_order_id of app: keep it
 * in the app's durable record so it is never acted on here (and the app's
 * cooldown runs from rec->finished_ms when it may have acted). 1 when added,
 * 0 when a record for that order exists, -ENOENT (no such app), -ENOMEM. */
int watcher_mark_acted(watcher *w, const char *app, const act_record *rec);
/* false without a coord. */
bool watcher_coord_view_get(const watcher *w, watcher_coord_view *out);

/* The client the watcher polls with, for its counters. */
const api_client *watcher_api_client(const watcher *w);
