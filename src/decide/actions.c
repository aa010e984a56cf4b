/* SPDX-License-Identifier: MIT */
#include "actions.h"

#include <stdio.h>

#include "log.h"
#include "schedule.h"
#include "state_file.h"
#include "util.h"

/* How often a call the server certainly did not act on (throttled, upgrading,
 * never connected) is sent again before the action is recorded as failed. */
#define ACTION_MAX_ATTEMPTS 5

typedef enum gate_step {
        STEP_NONE,
        STEP_RECHECK,  /* hooks->recheck is deciding */
        STEP_PRE_SEND, /* hooks->pre_send is deciding */
} gate_step;

struct action_run {
        const action_ctx *ctx;
        change_order co;   /* the snapshot the rule fired on */
        rule rule;         /* a copy: a reload must not pull it away mid-flight */
        int64_t since_ms;
        int64_t last_change_ms;
        api_call *call;
        sd_event_source *retry_timer;
        unsigned attempts;
        gate_step waiting; /* a hook owes us actions_resume */
        char reason[192];  /* what the rule saw, for the records after the decision */
        bool has_value;    /* actions_set_metric */
        double value, threshold;
        char value_s[32], threshold_s[32]; /* for the journal fields */
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

void action_memo_done(action_memo *m) {
        if (m)
                m->intent_failed_co = mfree(m->intent_failed_co);
}

static int64_t now_ms(const action_ctx *ctx) {
        return ctx->now_ms ? ctx->now_ms() : now_realtime_ms();
}

static int64_t steady_ms(const action_ctx *ctx) {
        return ctx->steady_ms ? ctx->steady_ms() : now_steady_ms();
}

static void decided(const action_ctx *ctx, const rule *r, const char *result) {
        if (ctx->decided)
                ctx->decided(ctx->userdata, r, result);
}

static void run_free(action_run *run) {
        if (!run)
                return;
        if (run->call)
                api_call_cancel(run->call);
        if (run->waiting != STEP_NONE && run->ctx->hooks && run->ctx->hooks->gate_cancel)
                run->ctx->hooks->gate_cancel(run->ctx->hooks->userdata, run);
        sd_event_source_disable_unref(run->retry_timer);
        change_order_done(&run->co);
        rule_done(&run->rule);
        free(run);
}

void actions_set_metric(action_run *run, double value, double threshold) {
        run->has_value = true;
        run->value = value;
        run->threshold = threshold;
        snprintf(run->value_s, sizeof run->value_s, "%.6g", value);
        snprintf(run->threshold_s, sizeof run->threshold_s, "%.6g", threshold);
}

action_run *actions_cancel(action_run *run) {
        run_free(run);
        return NULL;
}

/* The one way out of a sequence: post_record (when a call was attempted),
 * then the owner learns the end; nothing of ctx is touched after that. */
static void run_finish(action_run *run, action_end end, act_result result, const char *detail,
                       const char *new_id) {
        const action_ctx *ctx = run->ctx;
        action_outcome o = {
                .app = ctx->app_name,
                .change_order_id = run->co.id,
                .rule = run->rule.name,
                .action = run->rule.action,
                .end = end,
                .result = result,
                .detail = detail,
                .rollback_order_id = new_id,
                .has_value = run->has_value,
                .value = run->value,
                .threshold = run->threshold,
        };
        /* ---- hook: after the outcome is recorded (HA result write, notify) */
        if (end == ACTION_END_RECORDED && ctx->hooks && ctx->hooks->post_record)
                ctx->hooks->post_record(ctx->hooks->userdata, &o);
        ctx->done(ctx->userdata, &o);
        run_free(run);
}

static void run_stop(action_run *run, action_end end) {
        run_finish(run, end, ACT_INTENT, NULL, NULL);
}

static log_fields run_fields(const action_run *run, const char *result) {
        return (log_fields){
                .app = run->ctx->app_name,
                .change_order = run->co.id,
                .rule = run->rule.name,
                .action = rule_action_name(run->rule.action),
                .result = result,
                .reason = run->reason[0] ? run->reason : NULL,
                .value = run->has_value ? run->value_s : NULL,
                .threshold = run->has_value ? run->threshold_s : NULL,
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
        const action_ctx *ctx = run->ctx;
        int64_t now = steady_ms(ctx);
        act_record *rec = state_find_act(ctx->state, run->co.id);
        if (rec) {
                rec->result = result;
                rec->finished_ms = now;
                (void)free_and_strdup(&rec->detail, detail);
                (void)free_and_strdup(&rec->rollback_order_id, new_id);
        }
        /* Cooldown starts whenever the cloud may have changed something. */
        if (result == ACT_DONE || result == ACT_UNCONFIRMED)
                ctx->state->cooldown_until_ms = now + (int64_t)(ctx->cloud->cfg->cooldown_usec / USEC_PER_MSEC);
        int r = state_save(ctx->state_dir, ctx->state);
        if (r < 0) {
                /* Disk still holds the intent: a restart treats it as unconfirmed
                 * and never calls again, so this is loud but not unsafe. */
                log_fields f = run_fields(run, act_result_name(result));
                log_event_send(EV_NONE, LOG_ERR, &f, "cannot record the outcome in %s: %s",
                               ctx->state_dir, strerror(-r));
        }
}

static void on_action_done(const api_result *r, const char *new_id, void *userdata) {
        action_run *run = userdata;
        const char *api = cloud_action_api_name(run->ctx->app, run->rule.action);
        run->call = NULL;

        switch (r->outcome) {
        case API_OK: {
                record_outcome(run, ACT_DONE, NULL, new_id);
                log_fields f = run_fields(run, "done");
                f.rollback_change_order = new_id;
                log_event_send(EV_ACTION_DONE, LOG_NOTICE, &f,
                               "%s %s: %s accepted%s%s (request %s)", rule_action_name(run->rule.action),
                               run->co.id, api, new_id ? ", rollback change order " : "",
                               new_id ? new_id : "", r->request_id[0] ? r->request_id : "n/a");
                run_finish(run, ACTION_END_RECORDED, ACT_DONE, NULL, new_id);
                return;
        }
        case API_NOT_RUNNING: {
                record_outcome(run, ACT_ENDED_BY_ITSELF, r->code, NULL);
                log_fields f = run_fields(run, "ended_by_itself");
                log_event_send(EV_ORDER_MOVED_ON, LOG_INFO, &f,
                               "change order %s ended by itself before %s (%s): nothing to do",
                               run->co.id, api, r->code);
                run_finish(run, ACTION_END_RECORDED, ACT_ENDED_BY_ITSELF, r->code, NULL);
                return;
        }
        case API_THROTTLED:
        case API_TRANSIENT: {
                /* Only a call the server certainly did not act on is sent again;
                 * anything else could roll back twice. */
                bool not_acted = r->outcome == API_THROTTLED || streq(r->code, "System.Upgrading") ||
                                 (r->http_status == 0 && !r->maybe_delivered);
                if (not_acted && run->attempts < ACTION_MAX_ATTEMPTS) {
                        uint64_t delay = jitter_usec(schedule_action_retry(run->attempts), 0.2);
                        char b[32];
                        log_fields f = run_fields(run, "retrying");
                        log_event_send(EV_API_ERROR, LOG_WARNING, &f,
                                       "%s %s not accepted (HTTP %ld %s: %s); the server did not act on it, retrying in %s (attempt %u of %u)",
                                       api, run->co.id, r->http_status, r->code[0] ? r->code : "-",
                                       r->message, format_duration(delay, b, sizeof b), run->attempts + 1,
                                       ACTION_MAX_ATTEMPTS);
                        int k = sd_event_add_time_relative(run->ctx->event, &run->retry_timer, CLOCK_MONOTONIC,
                                                           delay, 0, on_retry_timer, run);
                        if (k >= 0)
                                return;
                }
                if (not_acted) {
                        const char *detail = r->code[0] ? r->code : "transient";
                        record_outcome(run, ACT_FAILED, detail, NULL);
                        log_fields f = run_fields(run, "failed");
                        log_event_send(EV_ACTION_FAILED, LOG_ERR, &f,
                                       "%s %s failed after %u attempts (HTTP %ld %s: %s); the release is still in flight, act by hand",
                                       api, run->co.id, run->attempts, r->http_status, r->code[0] ? r->code : "-", r->message);
                        run_finish(run, ACTION_END_RECORDED, ACT_FAILED, detail, NULL);
                        return;
                }
                const char *detail = r->code[0] ? r->code : "no answer";
                record_outcome(run, ACT_UNCONFIRMED, detail, NULL);
                log_fields f = run_fields(run, "unconfirmed");
                log_event_send(EV_ACTION_UNCONFIRMED, LOG_WARNING, &f,
                               "%s %s may or may not have reached the cloud (HTTP %ld %s: %s); not sending it again to avoid a second rollback, check change order %s",
                               api, run->co.id, r->http_status, r->code[0] ? r->code : "-", r->message, run->co.id);
                run_finish(run, ACTION_END_RECORDED, ACT_UNCONFIRMED, detail, NULL);
                return;
        }
        case API_PERMANENT: {
                const char *detail = r->code[0] ? r->code : "refused";
                record_outcome(run, ACT_FAILED, detail, NULL);
                log_fields f = run_fields(run, "failed");
                log_event_send(EV_ACTION_FAILED, LOG_ERR, &f,
                               "%s %s refused (HTTP %ld %s: %s); the release is still in flight, act by hand",
                               api, run->co.id, r->http_status, r->code[0] ? r->code : "-", r->message);
                run_finish(run, ACTION_END_RECORDED, ACT_FAILED, detail, NULL);
                return;
        }
        }
        run_stop(run, ACTION_END_NOT_SENT);
}

static void send_action(action_run *run) {
        const action_ctx *ctx = run->ctx;
        run->attempts++;
        int r = cloud_act(ctx->cloud, ctx->app, run->rule.action, run->co.id, on_action_done, run, &run->call);
        if (r < 0) {
                record_outcome(run, ACT_FAILED, "local error", NULL);
                log_fields f = run_fields(run, "failed");
                log_event_send(EV_ACTION_FAILED, LOG_ERR, &f, "cannot send %s: %s",
                               cloud_action_api_name(ctx->app, run->rule.action), strerror(-r));
                run_finish(run, ACTION_END_RECORDED, ACT_FAILED, "local error", NULL);
        }
}

/* Hands the decision to a hook; it answers through actions_resume. */
static void ask_hook(action_run *run, gate_step step, action_gate_fn fn) {
        const action_ctx *ctx = run->ctx;
        run->waiting = step;
        int k = fn(ctx->hooks->userdata, run, ctx->app_name, &run->co, &run->rule);
        if (k < 0)
                /* a hook that failed will not resume: its failure is its "no" */
                actions_resume(run, false, strerror(-k));
}

static void write_intent(action_run *run) {
        const action_ctx *ctx = run->ctx;
        if (ctx->stopping) {
                /* Stopping, and nothing has been written or sent yet: the
                 * next start decides afresh. */
                log_fields f = run_fields(run, "stopping");
                log_event_send(EV_ACTION_SKIPPED, LOG_NOTICE, &f,
                               "stopping before acting on %s; the next start decides again", run->co.id);
                run_stop(run, ACTION_END_NOT_SENT);
                return;
        }
        /* The intent is durable before anything leaves: a crash from here on
         * leaves a record that forbids a second call. */
        act_record intent = {
                .change_order_id = run->co.id,
                .rule = run->rule.name,
                .action = run->rule.action,
                .intent_ms = steady_ms(ctx),
                .result = ACT_INTENT,
        };
        /* The order's claim in the by-order index comes first: it is what
         * stops a second call for this order from any app entry, whatever
         * the config says (a rename, a changed app id, two entries). */
        int k = state_order_claim(ctx->state_dir, run->co.id, ctx->state->app);
        if (k == -EEXIST) {
                log_fields f = run_fields(run, "already-acted");
                log_event_send(EV_ACTION_SKIPPED, LOG_WARNING, &f,
                               "not acting on %s: the by-order index in %s says it was acted on already",
                               run->co.id, ctx->state_dir);
                decided(ctx, &run->rule, action_gate_name(GATE_ALREADY_ACTED));
                run_stop(run, ACTION_END_MOVED_ON);
                return;
        }
        bool claimed = k >= 0;
        if (k >= 0)
                k = state_add_act(ctx->state, &intent);
        if (k >= 0)
                k = state_save(ctx->state_dir, ctx->state);
        if (k < 0) {
                /* Without a durable intent we cannot promise once-only: do not act. */
                (void)state_drop_newest_act(ctx->state, run->co.id);
                if (claimed)
                        (void)state_order_release(ctx->state_dir, run->co.id);
                bool said = ctx->memo && streq_null(ctx->memo->intent_failed_co, run->co.id);
                if (ctx->memo)
                        (void)free_and_strdup(&ctx->memo->intent_failed_co, run->co.id);
                log_fields f = run_fields(run, "not_recorded");
                log_event_send(EV_ACTION_FAILED, said ? LOG_DEBUG : LOG_ERR, &f,
                               "cannot write the intent to %s (%s): not acting without it; will retry the write at each poll and re-read the order once it works",
                               ctx->state_dir, strerror(-k));
                run_stop(run, ACTION_END_NOT_SENT);
                return;
        }
        /* ---- hook: between "intent written" and "call sent" (HA fencing) */
        if (ctx->hooks && ctx->hooks->pre_send) {
                ask_hook(run, STEP_PRE_SEND, ctx->hooks->pre_send);
                return;
        }
        send_action(run);
}

void actions_resume(action_run *run, bool go, const char *why) {
        const action_ctx *ctx = run->ctx;
        gate_step step = run->waiting;
        run->waiting = STEP_NONE;
        if (go) {
                if (step == STEP_RECHECK)
                        write_intent(run);
                else
                        send_action(run);
                return;
        }
        if (step == STEP_RECHECK) {
                log_fields f = run_fields(run, "moved_on");
                log_event_send(EV_ORDER_MOVED_ON, LOG_NOTICE, &f,
                               "change order %s: the re-check before acting no longer holds (%s); nothing done",
                               run->co.id, strna(why));
                decided(ctx, &run->rule, "moved_on");
                run_stop(run, ACTION_END_MOVED_ON);
                return;
        }
        /* Nothing left: the intent goes, so the next poll may decide again. */
        int k = state_drop_newest_act(ctx->state, run->co.id);
        if (k > 0)
                k = state_save(ctx->state_dir, ctx->state);
        if (k >= 0)
                (void)state_order_release(ctx->state_dir, run->co.id);
        log_fields f = run_fields(run, "withheld");
        log_event_send(EV_ACTION_SKIPPED, LOG_WARNING, &f, "not sending %s for %s: %s%s", 
                       cloud_action_api_name(ctx->app, run->rule.action), run->co.id, strna(why),
                       k < 0 ? "; the intent stays on disk, so a restart reports it as unconfirmed" : "");
        run_stop(run, ACTION_END_NOT_SENT);
}

static void on_recheck(const api_result *r, const change_order *co, void *userdata) {
        action_run *run = userdata;
        const action_ctx *ctx = run->ctx;
        run->call = NULL;

        if (ctx->stopping) {
                write_intent(run); /* says "stopping" and stops */
                return;
        }
        if (r->outcome != API_OK) {
                /* Nothing was recorded: the next poll decides afresh. */
                log_fields f = run_fields(run, "recheck-failed");
                log_event_send(EV_API_ERROR, LOG_WARNING, &f,
                               "re-reading %s before acting failed (HTTP %ld %s: %s); deciding again on the next poll",
                               run->co.id, r->http_status, r->code[0] ? r->code : "-", r->message);
                run_stop(run, ACTION_END_NOT_SENT);
                return;
        }

        const firing_alert *alerts = NULL;
        int64_t now = now_ms(ctx);
        size_t n_alerts = ctx->alerts ? ctx->alerts(ctx->userdata, now, &alerts) : 0;
        rule_input in = {
                .co = co,
                .now_ms = now,
                .steady_ms = steady_ms(ctx),
                .last_change_ms = run->last_change_ms,
                .alerts = alerts,
                .n_alerts = n_alerts,
                /* the recheck hook asks the query again, next */
                .metrics_rechecked_later = ctx->hooks && ctx->hooks->recheck,
        };
        rule_verdict v = rule_evaluate(&run->rule, &in, run->since_ms);
        char why[192];
        if (v.kind != VERDICT_FIRE || !action_allowed(run->rule.action, co, why, sizeof why)) {
                log_fields f = run_fields(run, "moved_on");
                log_event_send(EV_ORDER_MOVED_ON, LOG_NOTICE, &f,
                               "change order %s moved on before acting (now %s, sub-status %d): %s; nothing done",
                               co->id, strna(co_status_name(co->status)), co->sub_status,
                               v.kind != VERDICT_FIRE ? v.why : why);
                decided(ctx, &run->rule, "moved_on");
                run_stop(run, ACTION_END_MOVED_ON);
                return;
        }
        /* ---- hook: re-evaluated next to the re-read (metric rules) */
        if (ctx->hooks && ctx->hooks->recheck) {
                ask_hook(run, STEP_RECHECK, ctx->hooks->recheck);
                return;
        }
        write_intent(run);
}

int actions_fire(const action_ctx *ctx, const action_fire_input *fi, action_run **ret) {
        const rule *r = fi->rule;
        const rule_input *in = fi->in;
        char why[256];
        action_gate_input gi = {
                .co = in->co,
                .rule = r,
                .state = ctx->state,
                .dry_run = fi->dry_run,
                .now_ms = steady_ms(ctx),
                .circuit_open = fi->circuit_open,
        };
        action_gate g = actions_gate(&gi, why, sizeof why);
        if (g == GATE_GO && ctx->state_dir && state_order_claimed(ctx->state_dir, in->co->id) > 0) {
                snprintf(why, sizeof why, "already acted on this change order (by-order index in %s)",
                         ctx->state_dir);
                g = GATE_ALREADY_ACTED;
        }
        if (g == GATE_GO && ctx->memo && streq_null(ctx->memo->intent_failed_co, in->co->id)) {
                /* The write is what failed: try it (no API call) before
                 * spending a re-read on a sequence that would fail the same way. */
                int k = state_save(ctx->state_dir, ctx->state);
                if (k >= 0) {
                        k = state_order_claim(ctx->state_dir, in->co->id, ctx->state->app);
                        if (k >= 0)
                                k = state_order_release(ctx->state_dir, in->co->id);
                        else if (k == -EEXIST)
                                k = 0; /* the sequence says so, and stops */
                }
                if (k < 0)
                        return 0;
                ctx->memo->intent_failed_co = mfree(ctx->memo->intent_failed_co);
                log_fields lf = { .app = ctx->app_name, .change_order = in->co->id };
                log_event_send(EV_NONE, LOG_NOTICE, &lf, "the state in %s can be written again; deciding on %s",
                               ctx->state_dir, in->co->id);
        }
        log_fields f = {
                .app = ctx->app_name,
                .change_order = in->co->id,
                .rule = r->name,
                .action = rule_action_name(r->action),
                .result = action_gate_name(g),
        };
        /* a metric rule's decision says what the query read */
        const metric_reading *m = r->query ? rule_metric_reading(r, in) : NULL;
        char value_s[32], threshold_s[32];
        if (m && m->ok) {
                snprintf(value_s, sizeof value_s, "%.6g", m->value);
                snprintf(threshold_s, sizeof threshold_s, "%.6g", r->threshold);
                f.value = value_s;
                f.threshold = threshold_s;
        }

        if (g != GATE_GO) {
                if (!fi->quiet) {
                        decided(ctx, r, action_gate_name(g));
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
        run->ctx = ctx;
        run->since_ms = state_pending_since(ctx->state, in->co->id, r->name);
        run->last_change_ms = in->last_change_ms;
        if (change_order_copy(&run->co, in->co) < 0 || rule_copy(&run->rule, r) < 0) {
                run_free(run);
                return -ENOMEM;
        }
        char matched[192];
        rule_matches(r, in, matched, sizeof matched);
        snprintf(run->reason, sizeof run->reason, "%s", matched);
        f.reason = run->reason;
        decided(ctx, r, "act");
        log_event_send(EV_DECISION, LOG_NOTICE, &f, "rule %s fired on %s (%s): %s; re-reading the order first",
                       r->name, in->co->id, matched, rule_action_name(r->action));

        int k = cloud_describe(ctx->cloud, ctx->app, run->co.id, API_PRIO_ACTION, on_recheck, run, &run->call);
        if (k < 0) {
                run_free(run);
                return k;
        }
        *ret = run;
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
