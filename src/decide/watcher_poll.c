/* SPDX-License-Identifier: MIT */
/* The poll cycle of one watched app: scheduling its looks, reading the
 * answers (the app call, the order call, API errors) and evaluating its
 * rules on the order in flight. */
#include "watcher.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "actions.h"
#include "watcher_app.h"
#include "log.h"
#include "schedule.h"
#include "state_file.h"
#include "util.h"

static void schedule_poll(app_watch *a, uint64_t delay_usec);
static void poll_start(app_watch *a);
static uint64_t next_delay_after_poll(app_watch *a);

/* ---- per-app bookkeeping ------------------------------------------------ */

static void forget_order(app_watch *a) {
        change_order_done(&a->co);
        a->have_co = false;
        a->progress_hash = 0;
        a->last_change_ms = 0;
        a->next_fire_ms = 0;
        a->holding_rule = mfree(a->holding_rule);
        metric_app_forget(a->metric); /* idle apps send no query */
}

static void note_order(app_watch *a, const char *co_id) {
        if (streq_null(a->noted_co, co_id))
                return;
        (void)free_and_strdup(&a->noted_co, co_id);
        a->noted_holding = 0;
        a->noted_skipped = 0;
}

static uint64_t idle_interval(const app_watch *a) {
        return a->w->cfg->poll_interval_usec;
}

static uint64_t backoff_delay(const app_watch *a) {
        /* A release in flight is never left unseen longer than a few looks. */
        if (a->phase == APP_ACTIVE)
                return schedule_in_flight_backoff(jitter_usec(a->w->cfg->active_poll_interval_usec, 0.1),
                                                  a->transient_failures);
        return jitter_usec(schedule_backoff(idle_interval(a), a->transient_failures), 0.2);
}

static void set_error_code(app_watch *a, const char *code) {
        (void)free_and_strdup(&a->error_code, code);
}

static void handle_api_error(app_watch *a, const api_result *r, const char *what) {
        watcher *w = a->w;
        const char *code = r->code[0] ? r->code : (r->http_status ? "http" : "transport");
        log_fields f = { .app = a->name, .change_order = a->have_co ? a->co.id : NULL, .result = api_outcome_name(r->outcome) };
        metrics_counter_inc(w->api_errors, code);
        metrics_counter_inc(w->polls, "error");

        if (r->outcome == API_THROTTLED) {
                /* The account, not the app: the client already slowed down
                 * (api.c); this app keeps its schedule and its error count. */
                app_watch_once_done(a, true);
                a->look_by_order = false;
                schedule_poll(a, next_delay_after_poll(a));
                return;
        }

        if (r->outcome == API_PERMANENT) {
                bool changed = a->phase != APP_DEGRADED || !streq_null(a->error_code, code);
                if (changed)
                        log_event_send(EV_APP_DEGRADED, LOG_ERR, &f,
                                       "%s failed for good (HTTP %ld %s: %s); app marked degraded, still retrying every %s",
                                       what, r->http_status, code, r->message,
                                       format_duration(idle_interval(a), (char[32]){ 0 }, 32));
                a->phase = APP_DEGRADED;
                set_error_code(a, code);
                a->transient_failures = 0;
                forget_order(a);
                app_watch_once_done(a, true);
                schedule_poll(a, jitter_usec(idle_interval(a), 0.1));
                return;
        }

        /* Transient: back off; say so on the first failure and whenever the
         * error changes, not on every retry. */
        bool changed = a->transient_failures == 0 || !streq_null(a->error_code, code);
        a->transient_failures++;
        set_error_code(a, code);
        uint64_t delay = backoff_delay(a);
        char b[32];
        log_event_send(EV_API_ERROR, changed ? LOG_WARNING : LOG_DEBUG, &f,
                       "%s failed (HTTP %ld %s: %s); retry %u in %s", what, r->http_status, code, r->message,
                       a->transient_failures, format_duration(delay, b, sizeof b));
        app_watch_once_done(a, true);
        schedule_poll(a, delay);
}

static void mark_success(app_watch *a) {
        if (a->phase == APP_DEGRADED || a->transient_failures > 0) {
                log_fields f = { .app = a->name };
                log_event_send(EV_APP_RECOVERED, LOG_NOTICE, &f, "API answers again after %s (%s)",
                               a->phase == APP_DEGRADED ? "a permanent error" : "transient errors",
                               strna(a->error_code));
        }
        a->transient_failures = 0;
        set_error_code(a, NULL);
        a->last_poll_ok_ms = now_realtime_ms();
        watcher_seen(a);
        if (a->phase == APP_DEGRADED)
                a->phase = APP_IDLE;
}

static void go_idle(app_watch *a, const char *final_status) {
        bool was_active = a->phase == APP_ACTIVE;
        if (a->phase == APP_ACTIVE && a->have_co) {
                log_fields f = { .app = a->name, .change_order = a->co.id, .result = final_status };
                log_event_send(EV_RELEASE_ENDED, LOG_INFO, &f, "change order %s is no longer in flight (%s)",
                               a->co.id, strna(final_status));
        }
        a->phase = APP_IDLE;
        forget_order(a);
        if (state_prune_pending(&a->state, NULL) > 0)
                app_watch_save_state(a);
        if (was_active)
                watcher_budget_update(a->w);
}

/* ---- the poll cycle ----------------------------------------------------- */

/* Releases in flight keep a fixed cadence: the next look is due one
 * interval after the previous one was due, not after its answer came, so
 * the time spent waiting for budget or an answer does not add up; a look
 * that is already late goes now (no catching up). */
static uint64_t next_delay_after_poll(app_watch *a) {
        if (a->phase != APP_ACTIVE)
                return jitter_usec(idle_interval(a), 0.1);
        uint64_t now = now_monotonic_usec();
        uint64_t base = a->due_usec && a->due_usec <= now ? a->due_usec : now;
        uint64_t at = base + watcher_in_flight_interval(a->w);
        return schedule_active_delay(at > now ? at - now : 0, a->next_fire_ms, now_steady_ms());
}

void app_watch_cycle_finished(app_watch *a) {
        app_watch_once_done(a, false);
        a->look_by_order = false;
        if (a->poll_requested) {
                a->poll_requested = false;
                schedule_poll(a, 0);
        } else
                schedule_poll(a, next_delay_after_poll(a));
}

static void evaluate(app_watch *a) {
        watcher *w = a->w;
        const firing_alert *alerts = NULL;
        int64_t wall = now_realtime_ms();
        /* `for`, pending matches, cooldown and the breaker: steady clock */
        int64_t now = now_steady_ms();
        size_t n_alerts = w->alert_lookup ? w->alert_lookup(w->alert_userdata, a->name, wall, &alerts) : 0;
        rule_input in = {
                .co = &a->co,
                .now_ms = wall,
                .steady_ms = now,
                .last_change_ms = a->last_change_ms,
                .alerts = alerts,
                .n_alerts = n_alerts,
        };
        in.n_metrics = metric_app_readings(a->metric, &in.metrics);
        bool pending_changed = false;
        a->next_fire_ms = 0;
        a->holding_rule = mfree(a->holding_rule);

        for (size_t i = 0; i < a->cfg->n_rules; i++) {
                const rule *r = &a->cfg->rules[i];
                int64_t since = state_pending_since(&a->state, a->co.id, r->name);
                rule_verdict v = rule_evaluate(r, &in, since);
                uint64_t bit = i < 64 ? UINT64_C(1) << i : 0;
                log_fields f = { .app = a->name, .change_order = a->co.id, .rule = r->name,
                                 .action = rule_action_name(r->action) };

                if (v.kind == VERDICT_NO_MATCH) {
                        if (since && state_set_pending(&a->state, a->co.id, r->name, 0) > 0)
                                pending_changed = true;
                        a->noted_holding &= ~bit;
                        continue;
                }
                if (!since && r->for_usec > 0 && state_set_pending(&a->state, a->co.id, r->name, now) > 0)
                        pending_changed = true;

                if (v.kind == VERDICT_HOLDING) {
                        if (!(a->noted_holding & bit)) {
                                a->noted_holding |= bit;
                                char b[32];
                                log_event_send(EV_RULE_HOLDING, LOG_INFO, &f,
                                               "rule %s matches %s (%s); acting if it still holds in %s", r->name,
                                               a->co.id, v.why,
                                               format_duration((uint64_t)(v.fire_at_ms - now) * USEC_PER_MSEC, b, sizeof b));
                        }
                        if (!a->next_fire_ms || v.fire_at_ms < a->next_fire_ms) {
                                a->next_fire_ms = v.fire_at_ms;
                                (void)free_and_strdup(&a->holding_rule, r->name);
                        }
                        continue;
                }

                /* FIRE: the first rule that fires decides; the rest wait for the
                 * next poll (after an action there is nothing left to decide). */
                if (pending_changed)
                        app_watch_save_state(a);
                if (a->quarantined) {
                        if (!(a->noted_skipped & bit))
                                log_event_send(EV_ACTION_SKIPPED, LOG_ERR, &f,
                                               "rule %s fired on %s but not acting: the app is quarantined (%s)",
                                               r->name, a->co.id, strna(a->quarantine_reason));
                        a->noted_skipped |= bit;
                        metrics_counter_inc(w->decisions, a->name, r->name ? r->name : "", "quarantined");
                        break;
                }
                const char *not_here = watcher_coord_why_not_act(w);
                if (not_here) {
                        /* Observing only (ha: etcd lost): say it once per order and rule. */
                        if (!(a->noted_skipped & bit))
                                log_event_send(EV_ACTION_SKIPPED, LOG_WARNING, &f,
                                               "rule %s fired on %s but this node does not act: %s", r->name,
                                               a->co.id, not_here);
                        a->noted_skipped |= bit;
                        break;
                }
                action_fire_input fi = {
                        .rule = r,
                        .in = &in,
                        .dry_run = app_config_dry_run(w->cfg, a->cfg, w->opt.force_dry_run),
                        .circuit_open = watcher_circuit_check(w, now),
                        .quiet = (a->noted_skipped & bit) != 0,
                };
                int k = actions_fire(&a->actx, &fi, &a->action);
                if (k > 0)
                        return; /* the sequence ends in action_done */
                if (k == 0)
                        a->noted_skipped |= bit;
                if (k < 0)
                        log_event_send(EV_NONE, LOG_ERR, &f, "cannot start the action: %s", strerror(-k));
                /* A `log` rule leaves the decision to the rules after it. Any
                 * other gate refusal (dry-run, SupportRollback, cooldown,
                 * breaker, already acted) is about the order, not the rule:
                 * the next rule would be refused for the same reason. */
                if (r->action != ACTION_LOG)
                        break;
        }
        if (pending_changed)
                app_watch_save_state(a);
        app_watch_cycle_finished(a);
}

/* A look by the order call alone saw the order end: ask the app call at
 * once (ahead of the round robin), so a follow-up order is found. */
static void after_order_ended(app_watch *a) {
        if (!a->look_by_order)
                return;
        a->poll_requested = true;
        a->hinted = true;
}

static void on_describe(const api_result *r, const change_order *co, void *userdata) {
        app_watch *a = userdata;
        a->call = NULL;
        if (!co) {
                if (r->outcome == API_NOT_RUNNING || streq(r->code, "InvalidChangeOrder.NotFound")) {
                        /* The order vanished or ended between the two calls. */
                        mark_success(a);
                        go_idle(a, "ended");
                        after_order_ended(a);
                        app_watch_cycle_finished(a);
                        return;
                }
                handle_api_error(a, r, "DescribeChangeOrder");
                return;
        }
        mark_success(a);
        metrics_counter_inc(a->w->polls, "ok");

        uint64_t h = change_order_progress_hash(co);
        bool same_order = a->have_co && streq_null(a->co.id, co->id);
        if (same_order && h != a->progress_hash)
                a->last_change_ms = now_realtime_ms();
        else if (!same_order)
                a->last_change_ms = 0; /* the snapshot's own timestamps are the evidence */
        a->progress_hash = h;
        change_order_done(&a->co);
        if (change_order_copy(&a->co, co) < 0) {
                a->have_co = false;
                log_error("out of memory copying a change order");
                app_watch_cycle_finished(a);
                return;
        }
        a->have_co = true;

        if (co_status_is_final(co->status)) {
                go_idle(a, co_status_name(co->status));
                after_order_ended(a);
                app_watch_cycle_finished(a);
                return;
        }
        if (a->phase != APP_ACTIVE) {
                a->phase = APP_ACTIVE;
                watcher_budget_update(a->w);
        }
        /* answers come before the next look; this one reads the last ones */
        metric_app_look(a->metric, a->cfg, &a->co);
        evaluate(a);
}

static void on_activity(const api_result *r, const app_activity *act, void *userdata) {
        app_watch *a = userdata;
        a->call = NULL;
        if (!act) {
                handle_api_error(a, r, a->cfg->platform == PLATFORM_SAE ? "DescribeApplicationStatus" : "ListRecentChangeOrder");
                return;
        }
        /* Any good answer resets the error count, also when the order call
         * that follows fails. */
        mark_success(a);
        if (act->change_order_id && !streq_null(a->state.last_change_order_id, act->change_order_id)) {
                (void)free_and_strdup(&a->state.last_change_order_id, act->change_order_id);
                if (act->in_flight) {
                        log_fields f = { .app = a->name, .change_order = act->change_order_id };
                        log_event_send(EV_RELEASE_SEEN, LOG_INFO, &f, "change order %s is in flight (%s)",
                                       act->change_order_id, strna(co_status_name(act->status)));
                }
                app_watch_save_state(a);
        }
        if (!act->in_flight || !act->change_order_id) {
                metrics_counter_inc(a->w->polls, "ok");
                go_idle(a, act->change_order_id ? co_status_name(act->status) : NULL);
                app_watch_cycle_finished(a);
                return;
        }
        note_order(a, act->change_order_id);
        if (state_prune_pending(&a->state, act->change_order_id) > 0)
                app_watch_save_state(a);
        int k = cloud_describe(&a->w->cloud, a->cfg, act->change_order_id, API_PRIO_ACTIVE, on_describe, a, &a->call);
        if (k < 0) {
                log_fields f = { .app = a->name };
                log_event_send(EV_NONE, LOG_ERR, &f, "cannot queue DescribeChangeOrder: %s", strerror(-k));
                app_watch_cycle_finished(a);
        }
}

static void poll_start(app_watch *a) {
        if (a->call || a->action)
                return; /* a cycle is under way; it schedules the next one */
        if (!watcher_coord_may_poll(a->w)) {
                /* Another host spends the account's budget; watcher_coord_changed
                 * wakes us when it is our turn, this timer is the backstop. */
                schedule_poll(a, idle_interval(a));
                return;
        }
        a->idle_waiting = false;
        a->last_poll_ms = now_realtime_ms();
        /* the operator's repair (or removal) is picked up here, no restart */
        if (a->quarantined && watcher_state_writable(a->w) && app_watch_load_state(a) < 0)
                log_error("out of memory reloading the state of %s", a->name);
        api_priority prio = a->phase == APP_ACTIVE ? API_PRIO_ACTIVE : a->hinted ? API_PRIO_HINTED : API_PRIO_IDLE;
        a->hinted = false;
        int k;
        /* One call per look while in flight: the order call tells all the
         * rules need; the app call comes back when the order ends. */
        a->look_by_order = a->phase == APP_ACTIVE && a->have_co && a->co.id;
        /* The look that can confirm a holding rule (its `for` is up) is the
         * first step of an action: it goes in the action class, so a
         * stretched in-flight interval does not delay a rollback by a
         * whole cadence. One such look per hold; if the rule still holds
         * the re-read and the call follow in the same class. */
        /* (the timer may fire a little before the fire time: within a
         * second of it counts, so the confirming look is not left to the
         * stretched queue) */
        bool confirming = a->look_by_order && a->next_fire_ms && a->next_fire_ms - now_steady_ms() <= 1000;
        if (a->look_by_order)
                k = cloud_describe(&a->w->cloud, a->cfg, a->co.id, confirming ? API_PRIO_ACTION : API_PRIO_ACTIVE,
                                   on_describe, a, &a->call);
        else
                k = cloud_poll_activity(&a->w->cloud, a->cfg, prio, on_activity, a, &a->call);
        if (k < 0) {
                log_fields f = { .app = a->name };
                log_event_send(EV_NONE, LOG_ERR, &f, "cannot queue a poll: %s", strerror(-k));
                app_watch_once_done(a, true);
                schedule_poll(a, idle_interval(a));
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        app_watch *a = userdata;
        if (a->w->opt.once && a->once_counted)
                return 0;
        if (a->phase == APP_ACTIVE || a->hinted)
                poll_start(a);
        else
                watcher_idle_due(a); /* the round robin decides when */
        return 0;
}

void app_watch_poll_start(app_watch *a) {
        poll_start(a);
}

static void schedule_poll(app_watch *a, uint64_t delay_usec) {
        if (a->w->draining || (a->w->opt.once && a->once_counted))
                return;
        int r;
        a->due_usec = now_monotonic_usec() + delay_usec;
        if (a->timer) {
                r = sd_event_source_set_time_relative(a->timer, delay_usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(a->timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(a->w->event, &a->timer, CLOCK_MONOTONIC, delay_usec,
                                               10 * USEC_PER_MSEC, on_timer, a);
        if (r < 0) {
                /* Without a timer this app would silently never be polled again. */
                log_fields f = { .app = a->name };
                log_event_send(EV_NONE, LOG_CRIT, &f, "cannot schedule the next poll: %s", strerror(-r));
        }
}

void app_watch_schedule(app_watch *a, uint64_t delay_usec) {
        schedule_poll(a, delay_usec);
}
