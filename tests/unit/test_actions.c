/* SPDX-License-Identifier: MIT */
/* actions.c: the sequence re-read -> intent -> call -> record and its hooks,
 * against a fake cloud layer (this file defines cloud_* and api_call_cancel,
 * so the test decides when and how each call ends). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "actions.h"
#include "state_file.h"
#include "util.h"

/* ---- the fake cloud ------------------------------------------------------ */

static struct {
        int describes, acts, cancels;
        cloud_order_fn describe_done;
        cloud_action_fn act_done;
        void *userdata;
} cloud;

static api_call *const fake_call = (api_call *)&cloud;

int cloud_describe(const cloud_ctx *c, const app_config *app, const char *change_order_id,
                   api_priority prio, cloud_order_fn done, void *userdata, api_call **ret_call) {
        assert_int_equal(prio, API_PRIO_ACTION);
        cloud.describes++;
        cloud.describe_done = done;
        cloud.userdata = userdata;
        *ret_call = fake_call;
        return 0;
}

int cloud_act(const cloud_ctx *c, const app_config *app, rule_action action, const char *change_order_id,
              cloud_action_fn done, void *userdata, api_call **ret_call) {
        cloud.acts++;
        cloud.act_done = done;
        cloud.userdata = userdata;
        *ret_call = fake_call;
        return 0;
}

const char *cloud_action_api_name(const app_config *app, rule_action action) {
        return "AbortAndRollbackChangeOrder";
}

void api_call_cancel(api_call *call) {
        assert_ptr_equal(call, fake_call);
        cloud.cancels++;
}

/* ---- what the owner and the hooks see ------------------------------------ */

static struct {
        int done, decided, post_record, gates, gate_cancels;
        action_outcome last;      /* strings not kept */
        char last_decision[32];
        act_result recorded_at_post; /* on disk when post_record ran */
        action_run *gated;        /* the run a gate holds */
        int gate_answer;          /* 1 go at once, 0 no at once, -1 later, -2 fail */
} seen;

static const char *state_dir;

static void on_done(void *userdata, const action_outcome *o) {
        seen.done++;
        seen.last = *o;
}

static void on_decided(void *userdata, const rule *r, const char *result) {
        seen.decided++;
        snprintf(seen.last_decision, sizeof seen.last_decision, "%s", result);
}

static int gate(void *userdata, action_run *run, const char *app, const change_order *co, const rule *r) {
        seen.gates++;
        assert_string_equal(app, "shop");
        assert_string_equal(co->id, "co-1");
        if (seen.gate_answer == -2)
                return -EIO;
        if (seen.gate_answer == -1) {
                seen.gated = run;
                return 0;
        }
        actions_resume(run, seen.gate_answer == 1, "the gate said so");
        return 0;
}

static void on_gate_cancel(void *userdata, action_run *run) {
        assert_ptr_equal(run, seen.gated);
        seen.gate_cancels++;
}

static void on_post_record(void *userdata, const action_outcome *o) {
        seen.post_record++;
        app_state s;
        assert_int_equal(state_load(state_dir, "shop", &s, NULL), 0);
        seen.recorded_at_post = s.n_acts ? s.acts[0].result : _ACT_RESULT_MAX;
        app_state_done(&s);
}

/* ---- fixture ------------------------------------------------------------- */

typedef struct fixture {
        sd_event *e;
        config cfg;
        app_config app;
        cloud_ctx cloud;
        app_state state;
        action_hooks hooks;
        action_ctx ctx;
        change_order co;
        rule rule;
        rule_input in;
        char dir[64];
} fixture;

static int64_t fixed_now(void) {
        return 1700000000000;
}

static void setup(fixture *f, bool with_hooks) {
        memset(&cloud, 0, sizeof cloud);
        memset(&seen, 0, sizeof seen);
        *f = (fixture){};
        assert_true(sd_event_new(&f->e) >= 0);
        snprintf(f->dir, sizeof f->dir, "/tmp/rollguard-test-actions-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        state_dir = f->dir;
        f->cfg = (config){ .cooldown_usec = 15 * USEC_PER_MIN };
        f->app = (app_config){ .name = "shop", .app_id = "app-1", .region = "cn-hangzhou" };
        f->cloud = (cloud_ctx){ .cfg = &f->cfg };
        f->state = (app_state){ .app = strdup("shop") };
        f->hooks = (action_hooks){ .recheck = NULL };
        f->ctx = (action_ctx){
                .event = f->e,
                .cloud = &f->cloud,
                .app = &f->app,
                .app_name = "shop",
                .state = &f->state,
                .state_dir = f->dir,
                .now_ms = fixed_now,
                .steady_ms = fixed_now,
                .decided = on_decided,
                .done = on_done,
                .hooks = with_hooks ? &f->hooks : NULL,
        };
        f->co = (change_order){ .id = "co-1", .co_type = "CoDeploy", .status = CO_EXECUTING,
                                .sub_status = SUB_ERROR, .support_rollback = 1 };
        f->rule = (rule){ .name = "batch-error", .status_mask = 1u << CO_EXECUTING,
                          .sub_status = SUB_ERROR, .action = ACTION_ROLLBACK };
        f->in = (rule_input){ .co = &f->co, .now_ms = fixed_now() };
}

static void teardown(fixture *f) {
        app_state_done(&f->state);
        DIR *d = opendir(f->dir);
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (de->d_name[0] != '.') {
                        _cleanup_free_ char *p = strdup_printf("%s/%s", f->dir, de->d_name);
                        unlink(p);
                }
        if (d)
                closedir(d);
        rmdir(f->dir);
        sd_event_unref(f->e);
}

static action_run *fire(fixture *f, bool dry_run, bool quiet, int want) {
        action_fire_input fi = { .rule = &f->rule, .in = &f->in, .dry_run = dry_run, .quiet = quiet };
        action_run *run = NULL;
        assert_int_equal(actions_fire(&f->ctx, &fi, &run), want);
        return run;
}

/* What the state directory holds for the app: the newest record's result,
 * or _ACT_RESULT_MAX for none. */
static act_result on_disk(const fixture *f) {
        app_state s;
        assert_int_equal(state_load(f->dir, "shop", &s, NULL), 0);
        act_result r = s.n_acts ? s.acts[s.n_acts - 1].result : _ACT_RESULT_MAX;
        app_state_done(&s);
        return r;
}

static void answer_describe(fixture *f, api_outcome o) {
        api_result r = { .outcome = o, .http_status = o == API_OK ? 200 : 500 };
        cloud.describe_done(&r, o == API_OK ? &f->co : NULL, cloud.userdata);
}

static void answer_act(api_outcome o, const char *new_id) {
        api_result r = { .outcome = o, .http_status = o == API_OK ? 200 : 400 };
        if (o == API_PERMANENT)
                snprintf(r.code, sizeof r.code, "InvalidParameter");
        cloud.act_done(&r, new_id, cloud.userdata);
}

/* ---- tests --------------------------------------------------------------- */

static void test_sequence_without_hooks(void **state) {
        fixture f;
        setup(&f, false);
        assert_non_null(fire(&f, false, false, 1));
        assert_int_equal(cloud.describes, 1);
        assert_string_equal(seen.last_decision, "act");
        assert_int_equal(on_disk(&f), _ACT_RESULT_MAX); /* nothing before the re-read */

        answer_describe(&f, API_OK);
        assert_int_equal(cloud.acts, 1);
        assert_int_equal(on_disk(&f), ACT_INTENT);      /* durable before the call */
        assert_int_equal(seen.done, 0);

        answer_act(API_OK, "co-rollback");
        assert_int_equal(seen.done, 1);
        assert_int_equal(seen.last.end, ACTION_END_RECORDED);
        assert_int_equal(seen.last.result, ACT_DONE);
        assert_int_equal(on_disk(&f), ACT_DONE);
        assert_int_equal(f.state.cooldown_until_ms, fixed_now() + 15 * 60 * 1000);
        assert_string_equal(f.state.acts[0].rollback_order_id, "co-rollback");
        teardown(&f);
}

static void test_refused_call_is_recorded_failed(void **state) {
        fixture f;
        setup(&f, false);
        fire(&f, false, false, 1);
        answer_describe(&f, API_OK);
        answer_act(API_PERMANENT, NULL);
        assert_int_equal(seen.last.end, ACTION_END_RECORDED);
        assert_int_equal(seen.last.result, ACT_FAILED);
        assert_int_equal(on_disk(&f), ACT_FAILED);
        assert_int_equal(f.state.cooldown_until_ms, 0); /* nothing changed in the cloud */
        teardown(&f);
}

static void test_gate_refusals(void **state) {
        fixture f;
        setup(&f, false);
        assert_null(fire(&f, true, false, 0)); /* dry-run */
        assert_int_equal(seen.decided, 1);
        assert_string_equal(seen.last_decision, "dry-run");
        assert_null(fire(&f, true, true, 0));  /* quiet: not counted again */
        assert_int_equal(seen.decided, 1);
        assert_int_equal(cloud.describes, 0);
        assert_int_equal(seen.done, 0);
        teardown(&f);
}

static void test_order_moved_on_at_the_reread(void **state) {
        fixture f;
        setup(&f, false);
        fire(&f, false, false, 1);
        f.co.sub_status = SUB_NORMAL; /* a human resumed it meanwhile */
        answer_describe(&f, API_OK);
        assert_int_equal(cloud.acts, 0);
        assert_int_equal(seen.last.end, ACTION_END_MOVED_ON);
        assert_string_equal(seen.last_decision, "moved_on");
        assert_int_equal(on_disk(&f), _ACT_RESULT_MAX);
        teardown(&f);
}

static void test_stopping_before_the_reread_answers(void **state) {
        fixture f;
        setup(&f, false);
        fire(&f, false, false, 1);
        f.ctx.stopping = true;
        answer_describe(&f, API_OK);
        assert_int_equal(cloud.acts, 0);
        assert_int_equal(seen.last.end, ACTION_END_NOT_SENT);
        assert_int_equal(on_disk(&f), _ACT_RESULT_MAX);
        teardown(&f);
}

static void test_pre_send_gate_says_no(void **state) {
        fixture f;
        setup(&f, true);
        f.hooks.pre_send = gate;
        seen.gate_answer = 0;
        fire(&f, false, false, 1);
        answer_describe(&f, API_OK);
        assert_int_equal(seen.gates, 1);
        assert_int_equal(cloud.acts, 0);
        assert_int_equal(seen.last.end, ACTION_END_NOT_SENT);
        /* nothing was sent: the intent is withdrawn, the next poll may act */
        assert_int_equal(f.state.n_acts, 0);
        assert_int_equal(on_disk(&f), _ACT_RESULT_MAX);
        teardown(&f);
}

static void test_pre_send_gate_failing_is_a_no(void **state) {
        fixture f;
        setup(&f, true);
        f.hooks.pre_send = gate;
        seen.gate_answer = -2;
        fire(&f, false, false, 1);
        answer_describe(&f, API_OK);
        assert_int_equal(cloud.acts, 0);
        assert_int_equal(seen.last.end, ACTION_END_NOT_SENT);
        assert_int_equal(on_disk(&f), _ACT_RESULT_MAX);
        teardown(&f);
}

static void test_pre_send_gate_async_then_post_record(void **state) {
        fixture f;
        setup(&f, true);
        f.hooks.pre_send = gate;
        f.hooks.post_record = on_post_record;
        seen.gate_answer = -1;
        fire(&f, false, false, 1);
        answer_describe(&f, API_OK);
        assert_non_null(seen.gated);
        assert_int_equal(on_disk(&f), ACT_INTENT); /* the gate runs after the intent */
        assert_int_equal(cloud.acts, 0);          /* and before the call */

        actions_resume(seen.gated, true, NULL);
        assert_int_equal(cloud.acts, 1);
        answer_act(API_OK, NULL);
        assert_int_equal(seen.post_record, 1);
        assert_int_equal(seen.recorded_at_post, ACT_DONE); /* after the record is saved */
        assert_int_equal(seen.done, 1);
        teardown(&f);
}

static void test_cancel_while_a_gate_holds_the_run(void **state) {
        fixture f;
        setup(&f, true);
        f.hooks.pre_send = gate;
        f.hooks.gate_cancel = on_gate_cancel;
        seen.gate_answer = -1;
        fire(&f, false, false, 1);
        answer_describe(&f, API_OK);
        assert_null(actions_cancel(seen.gated));
        assert_int_equal(seen.gate_cancels, 1);
        assert_int_equal(seen.done, 0);           /* cancel does not report */
        assert_int_equal(on_disk(&f), ACT_INTENT); /* and keeps the intent */
        teardown(&f);
}

static void test_recheck_hook_says_no(void **state) {
        fixture f;
        setup(&f, true);
        f.hooks.recheck = gate;
        f.hooks.post_record = on_post_record;
        seen.gate_answer = 0;
        fire(&f, false, false, 1);
        answer_describe(&f, API_OK);
        assert_int_equal(seen.gates, 1);
        assert_int_equal(cloud.acts, 0);
        assert_int_equal(seen.last.end, ACTION_END_MOVED_ON);
        assert_string_equal(seen.last_decision, "moved_on");
        assert_int_equal(seen.post_record, 0);
        assert_int_equal(on_disk(&f), _ACT_RESULT_MAX); /* before the intent */
        teardown(&f);
}

static void test_cancel_during_the_reread(void **state) {
        fixture f;
        setup(&f, false);
        action_run *run = fire(&f, false, false, 1);
        assert_null(actions_cancel(run));
        assert_int_equal(cloud.cancels, 1);
        assert_int_equal(seen.done, 0);
        teardown(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sequence_without_hooks),
                cmocka_unit_test(test_refused_call_is_recorded_failed),
                cmocka_unit_test(test_gate_refusals),
                cmocka_unit_test(test_order_moved_on_at_the_reread),
                cmocka_unit_test(test_stopping_before_the_reread_answers),
                cmocka_unit_test(test_pre_send_gate_says_no),
                cmocka_unit_test(test_pre_send_gate_failing_is_a_no),
                cmocka_unit_test(test_pre_send_gate_async_then_post_record),
                cmocka_unit_test(test_cancel_while_a_gate_holds_the_run),
                cmocka_unit_test(test_recheck_hook_says_no),
                cmocka_unit_test(test_cancel_during_the_reread),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
