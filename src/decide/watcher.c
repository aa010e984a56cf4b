/* SPDX-License-Identifier: MIT */
#include "watcher.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "actions.h"
#include "watcher_app.h"
#include "breaker.h"
#include "log.h"
#include "schedule.h"
#include "state_file.h"
#include "util.h"

static const char *const phase_names[_APP_PHASE_MAX] = {
        [APP_IDLE] = "idle",
        [APP_ACTIVE] = "in_flight",
        [APP_DEGRADED] = "degraded",
};

const char *app_phase_name(app_phase p) {
        return p >= 0 && p < _APP_PHASE_MAX ? phase_names[p] : "unknown";
}


bool watcher_state_writable(const watcher *w) {
        /* `once --dry-run` may run beside the daemon: it must not write. */
        return !(w->opt.once && w->opt.force_dry_run);
}

static void save_state(app_watch *a) {
        /* a quarantined app's file is evidence: never replaced */
        if (!watcher_state_writable(a->w) || a->quarantined)
                return;
        int r = state_save(a->w->state_dir, &a->state);
        if (r < 0) {
                log_fields f = { .app = a->name };
                log_event_send(EV_NONE, LOG_ERR, &f, "cannot save state in %s: %s", a->w->state_dir, strerror(-r));
        }
}

/* ---- circuit breaker -------------------------------------------------- */

size_t watcher_actions_last_hour(const watcher *w, int64_t now_ms) {
        size_t n = 0;
        for (size_t i = 0; i < w->n_apps; i++)
                n += breaker_count(&w->apps[i]->state, now_ms);
        return n;
}

bool watcher_circuit_check(watcher *w, int64_t now_ms) {
        size_t n = watcher_actions_last_hour(w, now_ms);
        switch (breaker_update(&w->circuit_open, n, w->cfg->max_actions_per_hour)) {
        case BREAKER_OPENED:
                log_event_send(EV_CIRCUIT_OPEN, LOG_WARNING, NULL,
                               "CIRCUIT BREAKER OPEN: %zu actions in the last hour (max_actions_per_hour %u); rollguard is LOG-ONLY until the hour has passed",
                               n, w->cfg->max_actions_per_hour);
                break;
        case BREAKER_CLOSED:
                log_event_send(EV_CIRCUIT_CLOSED, LOG_NOTICE, NULL,
                               "circuit breaker closed: %zu actions in the last hour (max %u); acting again", n,
                               w->cfg->max_actions_per_hour);
                break;
        case BREAKER_SAME:
                break;
        }
        return w->circuit_open;
}

/* ---- quarantine --------------------------------------------------------- */

static void set_quarantine(app_watch *a, const char *reason) {
        bool was = a->quarantined;
        a->quarantined = reason != NULL;
        metrics_gauge_set(a->w->quarantined, a->quarantined ? 1 : 0, a->name);
        log_fields f = { .app = a->name };
        if (reason) {
                if (was && streq_null(a->quarantine_reason, reason))
                        return;
                (void)free_and_strdup(&a->quarantine_reason, reason);
                log_event_send(EV_STATE_QUARANTINED, LOG_ERR, &f, "%s: %s", a->name, reason);
        } else if (was) {
                a->quarantine_reason = mfree(a->quarantine_reason);
                a->noted_skipped = 0; /* what the gate says now is news */
                log_event_send(EV_STATE_QUARANTINED, LOG_NOTICE, &f,
                               "%s: state file reads again; quarantine lifted, acting again", a->name);
        }
}

/* Loads (or migrates) the record; any trouble with this app's files
 * quarantines this app only. Returns -ENOMEM or 0. */
int app_watch_load_state(app_watch *a) {
        watcher *w = a->w;
        _cleanup_free_ char *warning = NULL, *note = NULL;
        app_state_done(&a->state);
        int r = state_load_app(w->state_dir, a->state_key, a->cfg->name, &a->state, &warning, &note);
        if (r == -ENOMEM)
                return r;
        if (note) {
                log_fields f = { .app = a->name };
                log_event_send(EV_NONE, LOG_NOTICE, &f, "%s", note);
        }
        if (r < 0 && !warning)
                warning = strdup_printf("cannot read the state of %s in %s (%s); quarantined (watched, never "
                                        "acted on) until it can",
                                        a->name, w->state_dir, strerror(-r));
        if (r != 0 && !a->state.app)
                a->state.app = strdup(a->state_key);
        if (r != 0 && (!warning || !a->state.app))
                return -ENOMEM;
        /* a record read under another name (renamed while stopped, or
         * migrated) says its new name at once: operators read these files */
        bool rename_on_disk = r == 0 && !streq_null(a->state.name, a->name) &&
                              (a->state.name || note || a->state.n_acts || a->state.n_pending ||
                               a->state.cooldown_until_ms || a->state.last_change_order_id);
        if (free_and_strdup(&a->state.name, a->name) < 0)
                return -ENOMEM;
        set_quarantine(a, r != 0 ? warning : NULL);
        if (!a->quarantined && (actions_recover_state(&a->state, a->name, now_steady_ms()) > 0 || rename_on_disk))
                save_state(a);
        return 0;
}

/* ---- once mode ---------------------------------------------------------- */

void app_watch_once_done(app_watch *a, bool failed) {
        watcher *w = a->w;
        if (!w->opt.once || a->once_counted)
                return;
        a->once_counted = true;
        if (failed)
                w->once_failures++;
        if (w->once_pending > 0 && --w->once_pending == 0 && w->opt.once_done)
                w->opt.once_done(w->opt.userdata, w->once_failures);
}


static size_t actions_in_flight(const watcher *w) {
        size_t n = 0;
        for (size_t i = 0; i < w->n_apps; i++)
                n += w->apps[i]->action != NULL;
        return n;
}

/* ---- what actions.c reports ------------------------------------------- */

static size_t action_alerts(void *userdata, int64_t now_ms, const firing_alert **ret) {
        app_watch *a = userdata;
        return a->w->alert_lookup ? a->w->alert_lookup(a->w->alert_userdata, a->name, now_ms, ret) : 0;
}

static void action_decided(void *userdata, const rule *r, const char *result) {
        app_watch *a = userdata;
        metrics_counter_inc(a->w->decisions, a->name, r->name ? r->name : "", result);
}

static void count_action(app_watch *a, rule_action kind, const char *result) {
        metrics_counter_inc(a->w->actions, rule_action_name(kind), result);
}

/* After an action sequence ends: schedule the app's next poll. */
static void action_done(void *userdata, const action_outcome *o) {
        app_watch *a = userdata;
        watcher *w = a->w;
        a->action = NULL;
        if (o->end == ACTION_END_RECORDED) {
                count_action(a, o->action, act_result_name(o->result));
                /* `once` exits 3 when an action it attempted did not clearly work. */
                if (o->result == ACT_FAILED || o->result == ACT_UNCONFIRMED)
                        w->once_failures++;
        }
        if (w->draining) {
                if (actions_in_flight(w) == 0 && w->drained) {
                        void (*done)(void *) = w->drained;
                        w->drained = NULL;
                        done(w->drained_userdata);
                }
                return;
        }
        app_watch_cycle_finished(a);
}

size_t watcher_drain(watcher *w, void (*done)(void *userdata), void *userdata) {
        w->draining = true;
        for (size_t i = 0; i < w->n_apps; i++) {
                app_watch *a = w->apps[i];
                a->actx.stopping = true;
                if (a->timer)
                        sd_event_source_set_enabled(a->timer, SD_EVENT_OFF);
                /* A poll in flight only reads: drop it. An action is let finish. */
                if (a->call) {
                        api_call_cancel(a->call);
                        a->call = NULL;
                }
        }
        size_t n = actions_in_flight(w);
        if (n == 0)
                done(userdata);
        else {
                w->drained = done;
                w->drained_userdata = userdata;
        }
        return n;
}


void app_watch_save_state(app_watch *a) {
        save_state(a);
}

/* ---- lifecycle ---------------------------------------------------------- */

app_watch *app_watch_free(app_watch *a) {
        if (!a)
                return NULL;
        if (a->action) {
                a->action = actions_cancel(a->action);
                /* An intent on disk stays: the call may be out. */
                if (actions_recover_state(&a->state, a->name, now_steady_ms()) > 0)
                        save_state(a);
        }
        if (a->call)
                api_call_cancel(a->call);
        a->metric = metric_app_free(a->metric);
        sd_event_source_disable_unref(a->timer);
        change_order_done(&a->co);
        app_state_done(&a->state);
        free(a->state_key);
        free(a->quarantine_reason);
        action_memo_done(&a->memo);
        free(a->name);
        free(a->error_code);
        free(a->noted_co);
        free(a->holding_rule);
        free(a);
        return NULL;
}

int app_watch_new(watcher *w, const app_config *cfg, app_watch **ret) {
        app_watch *a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->w = w;
        a->cfg = cfg;
        a->phase = APP_IDLE;
        a->name = strdup(cfg->name);
        a->state_key = state_key(platform_name(cfg->platform), cfg->region, cfg->app_id);
        if (!a->name || !a->state_key) {
                free(a->name);
                free(a->state_key);
                free(a);
                return -ENOMEM;
        }
        a->actx = (action_ctx){
                .event = w->event,
                .cloud = &w->cloud,
                .app = cfg,
                .app_name = a->name,
                .state = &a->state,
                .state_dir = w->state_dir,
                .alerts = action_alerts,
                .decided = action_decided,
                .done = action_done,
                .userdata = a,
                .hooks = w->opt.action_hooks,
                .memo = &a->memo,
        };
        if (w->opt.metric_eval && metric_app_new(w->opt.metric_eval, a->name, &a->metric) < 0) {
                app_watch_free(a);
                return -ENOMEM;
        }
        int r = app_watch_load_state(a);
        if (r < 0) {
                app_watch_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

watcher *watcher_free(watcher *w) {
        if (!w)
                return NULL;
        watcher_budget_free(w);
        for (size_t i = 0; i < w->n_apps; i++)
                app_watch_free(w->apps[i]);
        free(w->apps);
        metrics_counter_free(w->polls);
        metrics_counter_free(w->api_errors);
        metrics_counter_free(w->decisions);
        metrics_counter_free(w->actions);
        metrics_gauge_free(w->quarantined);
        free(w->state_dir);
        sd_event_unref(w->event);
        free(w);
        return NULL;
}

int watcher_poll_now(watcher *w, const char *app) {
        for (size_t i = 0; i < w->n_apps; i++) {
                app_watch *a = w->apps[i];
                if (!streq(a->name, app))
                        continue;
                /* an idle app goes ahead of the round robin */
                a->hinted = a->phase != APP_ACTIVE;
                if (a->call || a->action)
                        a->poll_requested = true;
                else
                        app_watch_schedule(a, 0);
                return 0;
        }
        return -ENOENT;
}

void watcher_get_counts(const watcher *w, watcher_counts *out) {
        *out = (watcher_counts){ .apps = w->n_apps, .circuit_open = w->circuit_open };
        for (size_t i = 0; i < w->n_apps; i++)
                switch (w->apps[i]->phase) {
                case APP_IDLE:
                        out->idle++;
                        break;
                case APP_ACTIVE:
                        out->in_flight++;
                        break;
                default:
                        out->degraded++;
                        break;
                }
}

void watcher_summary_get(const watcher *w, int64_t now_ms, watcher_summary *out) {
        /* now_ms is wall clock (the caller's); the records are steady */
        int64_t steady = now_ms - wall_minus_steady_ms();
        *out = (watcher_summary){
                .actions_last_hour = watcher_actions_last_hour(w, steady),
                .max_actions_per_hour = w->cfg->max_actions_per_hour,
        };
        watcher_get_counts(w, &out->counts);
}

size_t watcher_n_apps(const watcher *w) {
        return w->n_apps;
}

void watcher_app_view_get(const watcher *w, size_t i, watcher_app_view *out) {
        app_watch *a = w->apps[i];
        /* the view is for humans: wall clock, like the file */
        int64_t offset = wall_minus_steady_ms();
        const act_record *last = a->state.n_acts > 0 ? &a->state.acts[a->state.n_acts - 1] : NULL;
        if (last) {
                a->view_last_action = *last;
                a->view_last_action.intent_ms = state_time_to_wall(last->intent_ms, offset);
                a->view_last_action.finished_ms = state_time_to_wall(last->finished_ms, offset);
        }
        *out = (watcher_app_view){
                .name = a->name,
                .cfg = a->cfg,
                .state = app_phase_name(a->phase),
                .dry_run = app_config_dry_run(w->cfg, a->cfg, w->opt.force_dry_run),
                .co = a->have_co ? &a->co : NULL,
                .last_poll_ms = a->last_poll_ms,
                .last_poll_ok_ms = a->last_poll_ok_ms,
                .error_code = a->error_code,
                .holding_rule = a->holding_rule && a->next_fire_ms ? a->holding_rule : NULL,
                .next_fire_ms = state_time_to_wall(a->next_fire_ms, offset),
                .last_action = last ? &a->view_last_action : NULL,
                .quarantined = a->quarantined,
        };
}

const api_client *watcher_api_client(const watcher *w) {
        return w->cloud.api;
}
