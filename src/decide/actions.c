/* SPDX-License-Identifier: MIT */
#include "actions.h"

#include <stdio.h>

#include "app.h"
#include "log.h"
#include "state_file.h"
#include "util.h"

/* How often a call the server certainly did not act on (throttled, upgrading,
 * never connected) is sent again before the action is recorded as failed. */
#define ACTION_MAX_ATTEMPTS 5

struct action_run {
        app_watch *a;
        change_order co;   /* the snapshot the rule fired on */
        rule rule;         /* a copy: a reload must not pull it away mid-flight */
        size_t rule_index;
        int64_t since_ms;
        api_call *call;
        sd_event_source *retry_timer;
        unsigned attempts;
};

static const char *const gate_names[_GATE_MAX] = {
        [GATE_GO] = "go",
        [GATE_LOG_ONLY] = "log-only",
        [GATE_ALREADY_ACTED] = "already-acted",
        [GATE_NOT_ALLOWED] = "not-allowed",
        [GATE_DRY_RUN] = "dry-run",
        [GATE_COOLDOWN] = "cooldown",
        [GATE_CIRCUIT_OPEN] = "circuit-open",
};

const char *action_gate_name(action_gate g) {
        return g >= 0 && g < _GATE_MAX ? gate_names[g] : "unknown";
}

action_gate actions_gate(const action_gate_input *in, char *why, size_t whysz) {
        const act_record *done = state_find_act(in->state, in->co->id);
        if (done) {
                snprintf(why, whysz, "already acted on this change order (%s %s)",
                         rule_action_name(done->action), act_result_name(done->result));
                return GATE_ALREADY_ACTED;
        }
        if (in->rule->action == ACTION_LOG) {
                snprintf(why, whysz, "the rule's action is log");
                return GATE_LOG_ONLY;
        }
        if (!action_allowed(in->rule->action, in->co, why, whysz))
                return GATE_NOT_ALLOWED;
        if (in->dry_run) {
                snprintf(why, whysz, "dry-run: would %s", rule_action_name(in->rule->action));
                return GATE_DRY_RUN;
        }
        if (in->state->cooldown_until_ms > in->now_ms) {
                char b[32];
                snprintf(why, whysz, "app is in cooldown for another %s after its last action",
                         format_duration((uint64_t)(in->state->cooldown_until_ms - in->now_ms) * USEC_PER_MSEC, b, sizeof b));
                return GATE_COOLDOWN;
        }
        if (in->circuit_open) {
                snprintf(why, whysz, "circuit breaker open (max_actions_per_hour reached): log-only");
                return GATE_CIRCUIT_OPEN;
        }
        snprintf(why, whysz, "all safety checks passed");
        return GATE_GO;
}

static void count_decision(app_watch *a, const rule *r, const char *result) {
        _cleanup_free_ char *labels = strdup_printf("app=\"%s\",rule=\"%s\",result=\"%s\"", a->name, r->name, result);
        if (labels)
                metric_inc(&a->w->decisions, labels);
}

static void count_action(app_watch *a, rule_action kind, const char *result) {
        _cleanup_free_ char *labels = strdup_printf("kind=\"%s\",result=\"%s\"", rule_action_name(kind), result);
        if (labels)
                metric_inc(&a->w->actions, labels);
}

static void run_free(action_run *run) {
        if (!run)
                return;
        if (run->call)
                api_call_cancel(run->call);
        sd_event_source_disable_unref(run->retry_timer);
        change_order_done(&run->co);
        rule_done(&run->rule);
        free(run);
}

void actions_cancel(app_watch *a) {
        run_free(a->action);
        a->action = NULL;
}

static void run_finish(action_run *run) {
        app_watch *a = run->a;
        a->action = NULL;
        run_free(run);
        watcher_action_finished(a);
}

static log_fields run_fields(const action_run *run, const char *result) {
        return (log_fields){
                .app = run->a->name,
                .change_order = run->co.id,
                .rule = run->rule.name,
                .action = rule_action_name(run->rule.action),
                .result = result,
        };
}

static void send_action(action_run *run);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        action_run *run = userdata;
        run->retry_timer = sd_event_source_disable_unref(run->retry_timer);
        send_action(run);
        return 0;
}

/* Records the outcome on the intent written before the call. */
static void record_outcome(action_run *run, act_result result, const char *detail, const char *new_id) {
        app_watch *a = run->a;
        int64_t now = now_realtime_ms();
        act_record *rec = state_find_act(&a->state, run->co.id);
        if (rec) {
                rec->result = result;
                rec->finished_ms = now;
                (void)free_and_strdup(&rec->detail, detail);
                (void)free_and_strdup(&rec->rollback_order_id, new_id);
        }
        /* Cooldown starts whenever the cloud may have changed something. */
        if (result == ACT_DONE || result == ACT_UNCONFIRMED)
                a->state.cooldown_until_ms = now + (int64_t)(a->w->cfg->cooldown_usec / USEC_PER_MSEC);
        int r = state_save(a->w->state_dir, &a->state);
        if (r < 0) {
                /* Disk still holds the intent: a restart treats it as unconfirmed
                 * and never calls again, so this is loud but not unsafe. */
                log_fields f = run_fields(run, act_result_name(result));
                log_event_send(EV_NONE, LOG_ERR, &f, "cannot record the outcome in %s: %s",
                               a->w->state_dir, strerror(-r));
        }
        count_action(a, run->rule.action, act_result_name(result));
        /* `once` exits 3 when an action it attempted did not clearly work. */
        if (result == ACT_FAILED || result == ACT_UNCONFIRMED)
                a->w->once_failures++;
}

static void on_action_done(const api_result *r, const char *new_id, void *userdata) {
        action_run *run = userdata;
        app_watch *a = run->a;
        const char *api = cloud_action_api_name(a->cfg, run->rule.action);
        run->call = NULL;

        switch (r->outcome) {
        case API_OK: {
                record_outcome(run, ACT_DONE, NULL, new_id);
                log_fields f = run_fields(run, "done");
                log_event_send(EV_ACTION_DONE, LOG_NOTICE, &f,
                               "%s %s: %s accepted%s%s (request %s)", rule_action_name(run->rule.action),
                               run->co.id, api, new_id ? ", rollback change order " : "",
                               new_id ? new_id : "", r->request_id[0] ? r->request_id : "n/a");
                break;
        }
        case API_NOT_RUNNING: {
                record_outcome(run, ACT_ENDED_BY_ITSELF, r->code, NULL);
                log_fields f = run_fields(run, "ended_by_itself");
                log_event_send(EV_ORDER_MOVED_ON, LOG_INFO, &f,
                               "change order %s ended by itself before %s (%s): nothing to do",
                               run->co.id, api, r->code);
                break;
        }
        case API_THROTTLED:
        case API_TRANSIENT: {
                /* Only a call the server certainly did not act on is sent again;
                 * anything else could roll back twice. */
                bool not_acted = r->outcome == API_THROTTLED || streq(r->code, "System.Upgrading") ||
                                 (r->http_status == 0 && !r->maybe_delivered);
                if (not_acted && run->attempts < ACTION_MAX_ATTEMPTS) {
                        uint64_t delay = jitter_usec(USEC_PER_SEC << (run->attempts < 6 ? run->attempts : 6), 0.2);
                        char b[32];
                        log_fields f = run_fields(run, "retrying");
                        log_event_send(EV_API_ERROR, LOG_WARNING, &f,
                                       "%s %s not accepted (HTTP %ld %s: %s); the server did not act on it, retrying in %s (attempt %u of %u)",
                                       api, run->co.id, r->http_status, r->code[0] ? r->code : "-",
                                       r->message, format_duration(delay, b, sizeof b), run->attempts + 1,
                                       ACTION_MAX_ATTEMPTS);
                        int k = sd_event_add_time_relative(a->w->event, &run->retry_timer, CLOCK_MONOTONIC,
                                                           delay, 0, on_retry_timer, run);
                        if (k >= 0)
                                return;
                }
                if (not_acted) {
                        record_outcome(run, ACT_FAILED, r->code[0] ? r->code : "transient", NULL);
                        log_fields f = run_fields(run, "failed");
                        log_event_send(EV_ACTION_FAILED, LOG_ERR, &f,
                                       "%s %s failed after %u attempts (HTTP %ld %s: %s); the release is still in flight, act by hand",
                                       api, run->co.id, run->attempts, r->http_status, r->code[0] ? r->code : "-", r->message);
                        break;
                }
                record_outcome(run, ACT_UNCONFIRMED, r->code[0] ? r->code : "no answer", NULL);
                log_fields f = run_fields(run, "unconfirmed");
                log_event_send(EV_ACTION_UNCONFIRMED, LOG_WARNING, &f,
                               "%s %s may or may not have reached the cloud (HTTP %ld %s: %s); not sending it again to avoid a second rollback, check change order %s",
                               api, run->co.id, r->http_status, r->code[0] ? r->code : "-", r->message, run->co.id);
                break;
        }
        case API_PERMANENT: {
                record_outcome(run, ACT_FAILED, r->code[0] ? r->code : "refused", NULL);
                log_fields f = run_fields(run, "failed");
                log_event_send(EV_ACTION_FAILED, LOG_ERR, &f,
                               "%s %s refused (HTTP %ld %s: %s); the release is still in flight, act by hand",
                               api, run->co.id, r->http_status, r->code[0] ? r->code : "-", r->message);
                break;
        }
        }
        run_finish(run);
}

static void send_action(action_run *run) {
        app_watch *a = run->a;
        run->attempts++;
        int r = cloud_act(&a->w->cloud, a->cfg, run->rule.action, run->co.id, on_action_done, run, &run->call);
        if (r < 0) {
                record_outcome(run, ACT_FAILED, "local error", NULL);
                log_fields f = run_fields(run, "failed");
                log_event_send(EV_ACTION_FAILED, LOG_ERR, &f, "cannot send %s: %s",
                               cloud_action_api_name(a->cfg, run->rule.action), strerror(-r));
                run_finish(run);
        }
}

static void on_recheck(const api_result *r, const change_order *co, void *userdata) {
        action_run *run = userdata;
        app_watch *a = run->a;
        run->call = NULL;

        if (a->w->draining) {
                /* Stopping, and nothing has been written or sent yet: the
                 * next start decides afresh. */
                log_fields f = run_fields(run, "stopping");
                log_event_send(EV_ACTION_SKIPPED, LOG_NOTICE, &f,
                               "stopping before acting on %s; the next start decides again", run->co.id);
                run_finish(run);
                return;
        }
        if (r->outcome != API_OK) {
                /* Nothing was recorded: the next poll decides afresh. */
                log_fields f = run_fields(run, "recheck-failed");
                log_event_send(EV_API_ERROR, LOG_WARNING, &f,
                               "re-reading %s before acting failed (HTTP %ld %s: %s); deciding again on the next poll",
                               run->co.id, r->http_status, r->code[0] ? r->code : "-", r->message);
                run_finish(run);
                return;
        }

        const firing_alert *alerts = NULL;
        int64_t now = now_realtime_ms();
        size_t n_alerts = a->w->alert_lookup ? a->w->alert_lookup(a->w->alert_userdata, a->name, now, &alerts) : 0;
        rule_input in = {
                .co = co,
                .now_ms = now,
                .last_change_ms = a->last_change_ms,
                .alerts = alerts,
                .n_alerts = n_alerts,
        };
        rule_verdict v = rule_evaluate(&run->rule, &in, run->since_ms);
        char why[192];
        if (v.kind != VERDICT_FIRE || !action_allowed(run->rule.action, co, why, sizeof why)) {
                log_fields f = run_fields(run, "moved_on");
                log_event_send(EV_ORDER_MOVED_ON, LOG_NOTICE, &f,
                               "change order %s moved on before acting (now %s, sub-status %d): %s; nothing done",
                               co->id, strna(co_status_name(co->status)), co->sub_status,
                               v.kind != VERDICT_FIRE ? v.why : why);
                count_decision(a, &run->rule, "moved_on");
                run_finish(run);
                return;
        }

        /* The intent is durable before anything leaves: a crash from here on
         * leaves a record that forbids a second call. */
        act_record intent = {
                .change_order_id = run->co.id,
                .rule = run->rule.name,
                .action = run->rule.action,
                .intent_ms = now,
                .result = ACT_INTENT,
        };
        int k = state_add_act(&a->state, &intent);
        if (k >= 0)
                k = state_save(a->w->state_dir, &a->state);
        if (k < 0) {
                /* Without a durable intent we cannot promise once-only: do not act. */
                act_record *rec = state_find_act(&a->state, run->co.id);
                if (rec && rec == &a->state.acts[a->state.n_acts - 1]) {
                        free(rec->change_order_id);
                        free(rec->rule);
                        free(rec->detail);
                        free(rec->rollback_order_id);
                        a->state.n_acts--;
                }
                log_fields f = run_fields(run, "not_recorded");
                log_event_send(EV_ACTION_FAILED, LOG_ERR, &f,
                               "cannot write the intent to %s (%s): not acting without it; will try again on the next poll",
                               a->w->state_dir, strerror(-k));
                run_finish(run);
                return;
        }
        send_action(run);
}

int actions_fire(app_watch *a, size_t rule_index, const rule_input *in) {
        const rule *r = &a->cfg->rules[rule_index];
        int64_t now = in->now_ms;
        bool dry = app_config_dry_run(a->w->cfg, a->cfg, a->w->opt.force_dry_run);
        bool circuit = watcher_circuit_check(a->w, now);
        char why[256];
        action_gate_input gi = {
                .co = in->co,
                .rule = r,
                .state = &a->state,
                .dry_run = dry,
                .now_ms = now,
                .circuit_open = circuit,
        };
        action_gate g = actions_gate(&gi, why, sizeof why);
        log_fields f = {
                .app = a->name,
                .change_order = in->co->id,
                .rule = r->name,
                .action = rule_action_name(r->action),
                .result = action_gate_name(g),
        };
        uint64_t bit = rule_index < 64 ? UINT64_C(1) << rule_index : 0;
        bool first = !(a->noted_skipped & bit);

        if (g != GATE_GO) {
                if (first) {
                        a->noted_skipped |= bit;
                        count_decision(a, r, action_gate_name(g));
                        char matched[192];
                        rule_matches(r, in, matched, sizeof matched);
                        switch (g) {
                        case GATE_ALREADY_ACTED:
                                log_event_send(EV_ACTION_SKIPPED, LOG_INFO, &f, "rule %s matches %s but %s",
                                               r->name, in->co->id, why);
                                break;
                        case GATE_LOG_ONLY:
                        case GATE_DRY_RUN:
                                log_event_send(EV_DECISION, LOG_NOTICE, &f, "rule %s fired on %s (%s): %s",
                                               r->name, in->co->id, matched, why);
                                break;
                        default:
                                log_event_send(EV_ACTION_SKIPPED, LOG_WARNING, &f,
                                               "rule %s fired on %s (%s) but not acting: %s", r->name,
                                               in->co->id, matched, why);
                                break;
                        }
                }
                return 0;
        }

        action_run *run = calloc(1, sizeof *run);
        if (!run)
                return -ENOMEM;
        run->a = a;
        run->rule_index = rule_index;
        run->since_ms = state_pending_since(&a->state, in->co->id, r->name);
        if (change_order_copy(&run->co, in->co) < 0 || rule_copy(&run->rule, r) < 0) {
                run_free(run);
                return -ENOMEM;
        }
        char matched[192];
        rule_matches(r, in, matched, sizeof matched);
        count_decision(a, r, "act");
        log_event_send(EV_DECISION, LOG_NOTICE, &f, "rule %s fired on %s (%s): %s; re-reading the order first",
                       r->name, in->co->id, matched, rule_action_name(r->action));

        int k = cloud_describe(&a->w->cloud, a->cfg, run->co.id, API_PRIO_ACTION, on_recheck, run, &run->call);
        if (k < 0) {
                run_free(run);
                return k;
        }
        a->action = run;
        return 1;
}

int actions_recover_state(app_state *s, const char *app, int64_t now_ms) {
        int changed = 0;
        for (size_t i = 0; i < s->n_acts; i++) {
                act_record *rec = &s->acts[i];
                if (rec->result != ACT_INTENT)
                        continue;
                rec->result = ACT_UNCONFIRMED;
                rec->finished_ms = now_ms;
                (void)free_and_strdup(&rec->detail, "daemon stopped while the call may have been in flight");
                log_fields f = {
                        .app = app,
                        .change_order = rec->change_order_id,
                        .rule = rec->rule,
                        .action = rule_action_name(rec->action),
                        .result = "unconfirmed",
                };
                log_event_send(EV_ACTION_UNCONFIRMED, LOG_WARNING, &f,
                               "found an unfinished %s of %s from before a restart: it may have reached the cloud, so it is never sent again; check the change order",
                               rule_action_name(rec->action), rec->change_order_id);
                changed = 1;
        }
        return changed;
}
