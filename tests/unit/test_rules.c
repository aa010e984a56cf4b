/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "change_order.h"
#include "rules.h"
#include "util.h"

#define NOW INT64_C(1763884800000) /* 2025-11-23T08:00:00Z */
#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define AGO(ms) (NOW - (ms))

typedef struct pipe_spec {
        int status;
        int64_t update_ms;
} pipe_spec;

typedef struct alert_spec {
        const char *labels; /* "alertname=X,app=shop" */
        int64_t ends_at_ms;
} alert_spec;

/* One row: a rule written the way a config would say it, a snapshot, the
 * input around it, and the verdict we expect. */
typedef struct rule_case {
        const char *desc;

        /* the rule; NULL/false/0 = condition absent */
        const char *status;      /* "executing,waiting_auto" or numbers */
        const char *sub;         /* "normal" | "error" */
        const char *co_types;    /* "CoDeploy,CoRestartApp"; NULL = default list */
        const char *no_progress; /* duration */
        bool pipeline_failed;
        const char *alert; /* matchers "alertname=X,app=shop" */
        const char *for_;  /* duration */

        /* the snapshot */
        int co_status;
        int co_sub;
        const char *co_type; /* NULL = "CoDeploy" unless co_type_null */
        bool co_type_null;
        batch_type batch;
        int batch_wait_minutes;
        int64_t create_ms;
        pipe_spec pipes[3];
        size_t n_pipes;

        /* the input */
        int64_t now; /* 0 = NOW */
        int64_t last_change;
        alert_spec alerts[3];
        size_t n_alerts;
        int64_t match_since;

        /* expected */
        verdict_kind expect;
        int64_t expect_fire_at; /* 0 = not checked */
        const char *why_has;    /* substring of why; NULL = not checked */
} rule_case;

#define PIPES(...) .pipes = { __VA_ARGS__ }, .n_pipes = sizeof((pipe_spec[]){ __VA_ARGS__ }) / sizeof(pipe_spec)
#define ALERTS(...) .alerts = { __VA_ARGS__ }, .n_alerts = sizeof((alert_spec[]){ __VA_ARGS__ }) / sizeof(alert_spec)

static const rule_case rule_cases[] = {
        /* status */
        { "status executing matches an executing order",
          .status = "executing", .co_status = CO_EXECUTING, .expect = VERDICT_FIRE, .why_has = "status executing" },
        { "status executing does not match waiting_auto",
          .status = "executing", .co_status = CO_WAITING_AUTO, .expect = VERDICT_NO_MATCH, .why_has = "waiting_auto" },
        { "status list matches its second entry",
          .status = "executing,waiting_auto", .co_status = CO_WAITING_AUTO, .expect = VERDICT_FIRE },
        { "status given as a number matches",
          .status = "9", .co_status = CO_WAITING_AUTO, .expect = VERDICT_FIRE },
        { "status list does not match an unknown status",
          .status = "executing,waiting_auto", .co_status = CO_UNKNOWN, .expect = VERDICT_NO_MATCH, .why_has = "unknown" },
        { "status list does not match a status number outside the mask range",
          .status = "executing", .co_status = 40, .expect = VERDICT_NO_MATCH },
        { "a rule with no conditions matches any deploy order",
          .co_status = CO_SUCCEEDED, .expect = VERDICT_FIRE, .why_has = "no other condition" },

        /* sub_status */
        { "sub_status error matches SubStatus 1",
          .sub = "error", .co_status = CO_EXECUTING, .co_sub = SUB_ERROR, .expect = VERDICT_FIRE, .why_has = "sub_status error" },
        { "sub_status error does not match SubStatus 0",
          .sub = "error", .co_status = CO_EXECUTING, .co_sub = SUB_NORMAL, .expect = VERDICT_NO_MATCH, .why_has = "sub_status normal" },
        { "sub_status normal matches SubStatus 0",
          .sub = "normal", .co_status = CO_EXECUTING, .co_sub = SUB_NORMAL, .expect = VERDICT_FIRE },
        { "sub_status error does not match an absent SubStatus",
          .sub = "error", .co_status = CO_EXECUTING, .co_sub = SUB_UNKNOWN, .expect = VERDICT_NO_MATCH },

        /* co_type */
        { "default co_types match CoDeploy",
          .status = "executing", .co_status = CO_EXECUTING, .co_type = "CoDeploy", .expect = VERDICT_FIRE },
        { "default co_types do not match CoBindSlb",
          .status = "executing", .co_status = CO_EXECUTING, .co_type = "CoBindSlb", .expect = VERDICT_NO_MATCH,
          .why_has = "default" },
        { "default co_types do not match an absent CoTypeCode",
          .status = "executing", .co_status = CO_EXECUTING, .co_type_null = true, .expect = VERDICT_NO_MATCH,
          .why_has = "co_type (absent)" },
        { "explicit co_type list matches a listed type",
          .co_types = "CoDeploy,CoRestartApp", .co_status = CO_EXECUTING, .co_type = "CoRestartApp", .expect = VERDICT_FIRE },
        { "explicit co_type list replaces the default",
          .co_types = "CoRestartApp", .co_status = CO_EXECUTING, .co_type = "CoDeploy", .expect = VERDICT_NO_MATCH },
        { "explicit co_type list does not match an absent CoTypeCode",
          .co_types = "CoRestartApp", .co_status = CO_EXECUTING, .co_type_null = true, .expect = VERDICT_NO_MATCH },
        { "a CoRollback order never matches",
          .status = "executing", .sub = "error", .co_status = CO_EXECUTING, .co_sub = SUB_ERROR,
          .co_type = "CoRollback", .expect = VERDICT_NO_MATCH, .why_has = "rollback" },
        { "a CoDeployHistroy order never matches, even when listed",
          .co_types = "CoDeployHistroy,CoDeploy", .co_status = CO_EXECUTING, .co_type = "CoDeployHistroy",
          .expect = VERDICT_NO_MATCH, .why_has = "rollback" },
        { "a rollback order with a failed pipeline never matches",
          .pipeline_failed = true, .co_types = "CoRollback", .co_status = CO_EXECUTING, .co_type = "CoRollback",
          PIPES({ CO_FAILED, AGO(MIN) }), .expect = VERDICT_NO_MATCH },

        /* pipeline_failed */
        { "pipeline_failed matches a failed pipeline",
          .pipeline_failed = true, .co_status = CO_EXECUTING,
          PIPES({ CO_SUCCEEDED, AGO(5 * MIN) }, { CO_FAILED, AGO(MIN) }), .expect = VERDICT_FIRE, .why_has = "failed" },
        { "pipeline_failed matches a pipeline in system error",
          .pipeline_failed = true, .co_status = CO_EXECUTING,
          PIPES({ CO_SYSTEM_ERROR, AGO(MIN) }), .expect = VERDICT_FIRE, .why_has = "system_error" },
        { "pipeline_failed does not match healthy pipelines",
          .pipeline_failed = true, .co_status = CO_EXECUTING,
          PIPES({ CO_SUCCEEDED, AGO(5 * MIN) }, { CO_EXECUTING, AGO(MIN) }, { CO_PREPARING, 0 }),
          .expect = VERDICT_NO_MATCH, .why_has = "no pipeline has failed" },
        { "pipeline_failed does not match an order without pipelines",
          .pipeline_failed = true, .co_status = CO_EXECUTING, .expect = VERDICT_NO_MATCH },

        /* no_progress_for */
        { "no progress for 16m fires a 15m rule",
          .status = "executing", .no_progress = "15m", .co_status = CO_EXECUTING,
          PIPES({ CO_EXECUTING, AGO(16 * MIN) }), .expect = VERDICT_FIRE, .why_has = "no progress for 16m" },
        { "no progress for exactly 15m fires a 15m rule",
          .status = "executing", .no_progress = "15m", .co_status = CO_EXECUTING,
          PIPES({ CO_EXECUTING, AGO(15 * MIN) }), .expect = VERDICT_FIRE },
        { "no progress for 15m minus 1ms does not fire",
          .status = "executing", .no_progress = "15m", .co_status = CO_EXECUTING,
          PIPES({ CO_EXECUTING, AGO(15 * MIN - 1) }), .expect = VERDICT_NO_MATCH, .why_has = "threshold 15m" },
        { "the newest pipeline timestamp is the last progress",
          .no_progress = "15m", .co_status = CO_EXECUTING,
          PIPES({ CO_SUCCEEDED, AGO(60 * MIN) }, { CO_EXECUTING, AGO(MIN) }), .expect = VERDICT_NO_MATCH },
        { "no timestamps and no seen change is no evidence",
          .no_progress = "15m", .co_status = CO_EXECUTING, PIPES({ CO_EXECUTING, 0 }),
          .expect = VERDICT_NO_MATCH, .why_has = "no evidence" },
        { "a recent change seen by the watcher beats old API timestamps",
          .no_progress = "15m", .co_status = CO_EXECUTING, PIPES({ CO_EXECUTING, AGO(60 * MIN) }),
          .last_change = AGO(2 * MIN), .expect = VERDICT_NO_MATCH },
        { "the watcher's last change alone is evidence",
          .no_progress = "15m", .co_status = CO_EXECUTING, PIPES({ CO_EXECUTING, 0 }),
          .last_change = AGO(20 * MIN), .expect = VERDICT_FIRE },
        { "CreateTime alone is evidence",
          .no_progress = "15m", .co_status = CO_EXECUTING, .create_ms = AGO(20 * MIN), .expect = VERDICT_FIRE },
        { "last progress in the future (clock skew) does not fire",
          .no_progress = "15m", .co_status = CO_EXECUTING, PIPES({ CO_EXECUTING, NOW + 5 * MIN }),
          .expect = VERDICT_NO_MATCH, .why_has = "future" },
        { "waiting_manual is never a stall when the rule names no status",
          .no_progress = "15m", .co_status = CO_WAITING_MANUAL, .batch = BATCH_MANUAL,
          PIPES({ CO_SUCCEEDED, AGO(120 * MIN) }), .expect = VERDICT_NO_MATCH, .why_has = "waiting_manual" },
        { "waiting_manual is never a stall for a rule on executing,waiting_auto",
          .status = "executing,waiting_auto", .no_progress = "15m", .co_status = CO_WAITING_MANUAL,
          .batch = BATCH_MANUAL, PIPES({ CO_SUCCEEDED, AGO(120 * MIN) }), .expect = VERDICT_NO_MATCH },
        { "waiting_manual is a stall when the rule names waiting_manual",
          .status = "waiting_manual", .no_progress = "1h", .co_status = CO_WAITING_MANUAL, .batch = BATCH_MANUAL,
          PIPES({ CO_SUCCEEDED, AGO(120 * MIN) }), .expect = VERDICT_FIRE },
        { "waiting_manual named by number 8 also counts",
          .status = "1,8", .no_progress = "1h", .co_status = CO_WAITING_MANUAL, .batch = BATCH_MANUAL,
          PIPES({ CO_SUCCEEDED, AGO(60 * MIN) }), .expect = VERDICT_FIRE },
        { "auto batch waiting: BatchWaitTime extends the threshold (20m < 15m+10m)",
          .status = "executing,waiting_auto", .no_progress = "15m", .co_status = CO_WAITING_AUTO,
          .batch = BATCH_AUTO, .batch_wait_minutes = 10, PIPES({ CO_SUCCEEDED, AGO(20 * MIN) }),
          .expect = VERDICT_NO_MATCH, .why_has = "BatchWaitTime" },
        { "auto batch waiting: exactly 15m+10m fires",
          .status = "executing,waiting_auto", .no_progress = "15m", .co_status = CO_WAITING_AUTO,
          .batch = BATCH_AUTO, .batch_wait_minutes = 10, PIPES({ CO_SUCCEEDED, AGO(25 * MIN) }),
          .expect = VERDICT_FIRE, .why_has = "10m BatchWaitTime" },
        { "auto batch waiting: 15m+10m minus 1ms does not fire",
          .status = "executing,waiting_auto", .no_progress = "15m", .co_status = CO_WAITING_AUTO,
          .batch = BATCH_AUTO, .batch_wait_minutes = 10, PIPES({ CO_SUCCEEDED, AGO(25 * MIN - 1) }),
          .expect = VERDICT_NO_MATCH },
        { "manual batch type gets no BatchWaitTime extension",
          .status = "executing,waiting_auto", .no_progress = "15m", .co_status = CO_WAITING_AUTO,
          .batch = BATCH_MANUAL, .batch_wait_minutes = 10, PIPES({ CO_SUCCEEDED, AGO(16 * MIN) }),
          .expect = VERDICT_FIRE },
        { "BatchWaitTime extends only while waiting_auto, not while executing",
          .status = "executing,waiting_auto", .no_progress = "15m", .co_status = CO_EXECUTING,
          .batch = BATCH_AUTO, .batch_wait_minutes = 10, PIPES({ CO_EXECUTING, AGO(16 * MIN) }),
          .expect = VERDICT_FIRE },

        /* alert */
        { "alert matcher matches a firing alert with extra labels",
          .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighErrorRate,app=shop-api,severity=page", 0 }), .expect = VERDICT_FIRE,
          .why_has = "alertname=HighErrorRate" },
        { "alert matcher with a wrong value does not match",
          .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighLatency,app=shop-api", 0 }), .expect = VERDICT_NO_MATCH, .why_has = "no firing alert" },
        { "alert matcher label missing from the alert does not match",
          .alert = "alertname=HighErrorRate,app=shop-api", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighErrorRate", 0 }), .expect = VERDICT_NO_MATCH },
        { "an alert whose endsAt has passed does not match",
          .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighErrorRate", AGO(1) }), .expect = VERDICT_NO_MATCH },
        { "an alert ending exactly now does not match",
          .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighErrorRate", NOW }), .expect = VERDICT_NO_MATCH },
        { "an alert ending 1ms from now matches",
          .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighErrorRate", NOW + 1 }), .expect = VERDICT_FIRE },
        { "an alert with endsAt 0 fires until resolved",
          .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING, .now = NOW + 365 * 24 * 60 * MIN,
          ALERTS({ "alertname=HighErrorRate", 0 }), .expect = VERDICT_FIRE },
        { "matchers spread over two alerts do not match",
          .alert = "alertname=HighErrorRate,app=shop-api", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighErrorRate,app=cart", 0 }, { "alertname=HighLatency,app=shop-api", 0 }),
          .expect = VERDICT_NO_MATCH },
        { "one of several alerts matching every matcher is enough",
          .alert = "alertname=HighErrorRate,app=shop-api", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighErrorRate,app=cart", 0 }, { "app=shop-api,alertname=HighErrorRate", 0 },
                 { "alertname=HighLatency", 0 }),
          .expect = VERDICT_FIRE },
        { "the matching alert expired while another fires without the label",
          .alert = "alertname=HighErrorRate,app=shop-api", .co_status = CO_EXECUTING,
          ALERTS({ "alertname=HighErrorRate,app=shop-api", AGO(SEC) }, { "alertname=HighErrorRate", 0 }),
          .expect = VERDICT_NO_MATCH },
        { "no alerts at all do not match an alert rule",
          .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING, .expect = VERDICT_NO_MATCH },

        /* for */
        { "a fresh match holds for the whole `for`",
          .status = "executing", .sub = "error", .for_ = "60s", .co_status = CO_EXECUTING, .co_sub = SUB_ERROR,
          .expect = VERDICT_HOLDING, .expect_fire_at = NOW + 60 * SEC, .why_has = "fires in 1m" },
        { "a match seen 1ms short of `for` still holds",
          .status = "executing", .sub = "error", .for_ = "60s", .co_status = CO_EXECUTING, .co_sub = SUB_ERROR,
          .match_since = AGO(60 * SEC - 1), .expect = VERDICT_HOLDING, .expect_fire_at = NOW + 1, .why_has = "1ms" },
        { "a match held for exactly `for` fires",
          .status = "executing", .sub = "error", .for_ = "60s", .co_status = CO_EXECUTING, .co_sub = SUB_ERROR,
          .match_since = AGO(60 * SEC), .expect = VERDICT_FIRE, .expect_fire_at = NOW },
        { "a match held longer than `for` fires",
          .status = "executing", .sub = "error", .for_ = "60s", .co_status = CO_EXECUTING, .co_sub = SUB_ERROR,
          .match_since = AGO(10 * MIN), .expect = VERDICT_FIRE, .expect_fire_at = AGO(9 * MIN) },
        { "a match that no longer holds does not fire whatever match_since says",
          .status = "executing", .sub = "error", .for_ = "60s", .co_status = CO_EXECUTING, .co_sub = SUB_NORMAL,
          .match_since = AGO(10 * MIN), .expect = VERDICT_NO_MATCH },
        { "without `for` a fresh match fires at once",
          .status = "executing", .co_status = CO_EXECUTING, .expect = VERDICT_FIRE, .expect_fire_at = NOW },

        /* combinations (all AND-ed) */
        { "status, sub_status and pipeline_failed together match",
          .status = "executing", .sub = "error", .pipeline_failed = true, .co_status = CO_EXECUTING,
          .co_sub = SUB_ERROR, PIPES({ CO_FAILED, AGO(MIN) }), .expect = VERDICT_FIRE,
          .why_has = "status executing, sub_status error, pipeline" },
        { "status holds but sub_status does not: no match",
          .status = "executing", .sub = "error", .co_status = CO_EXECUTING, .co_sub = SUB_NORMAL,
          .expect = VERDICT_NO_MATCH },
        { "alert fires but status is not listed: no match",
          .status = "executing,waiting_auto", .alert = "alertname=HighErrorRate", .co_status = CO_WAITING_MANUAL,
          ALERTS({ "alertname=HighErrorRate", 0 }), .expect = VERDICT_NO_MATCH },
        { "alert rule naming waiting_manual acts on a manual batch",
          .status = "executing,waiting_manual,waiting_auto", .alert = "alertname=HighErrorRate",
          .co_status = CO_WAITING_MANUAL, .batch = BATCH_MANUAL, ALERTS({ "alertname=HighErrorRate", 0 }),
          .expect = VERDICT_FIRE },
        { "stalled and alerting both hold: match",
          .no_progress = "15m", .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING,
          PIPES({ CO_EXECUTING, AGO(30 * MIN) }), ALERTS({ "alertname=HighErrorRate", 0 }), .expect = VERDICT_FIRE },
        { "stalled but no alert: no match",
          .no_progress = "15m", .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING,
          PIPES({ CO_EXECUTING, AGO(30 * MIN) }), .expect = VERDICT_NO_MATCH },
        { "alerting but not stalled: no match",
          .no_progress = "15m", .alert = "alertname=HighErrorRate", .co_status = CO_EXECUTING,
          PIPES({ CO_EXECUTING, AGO(5 * MIN) }), ALERTS({ "alertname=HighErrorRate", 0 }),
          .expect = VERDICT_NO_MATCH },
        { "combined rule with `for`: matches and holds",
          .status = "executing", .pipeline_failed = true, .for_ = "2m", .co_status = CO_EXECUTING,
          PIPES({ CO_FAILED, AGO(MIN) }), .match_since = AGO(MIN), .expect = VERDICT_HOLDING,
          .expect_fire_at = NOW + MIN },
};

/* Splits "a,b,c" into a malloc'ed array of malloc'ed strings. */
static char **split_list(const char *s, size_t *ret_n) {
        char *copy = strdup(s);
        assert_non_null(copy);
        char **v = calloc(strlen(s) + 2, sizeof(char *));
        assert_non_null(v);
        size_t n = 0;
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                v[n] = strdup(t);
                assert_non_null(v[n]);
                n++;
        }
        free(copy);
        *ret_n = n;
        return v;
}

static label_pair *parse_labels(const char *s, size_t *ret_n) {
        size_t n = 0;
        char **items = split_list(s, &n);
        label_pair *pairs = calloc(n + 1, sizeof(label_pair));
        assert_non_null(pairs);
        for (size_t i = 0; i < n; i++) {
                char *eq = strchr(items[i], '=');
                assert_non_null(eq);
                *eq = 0;
                pairs[i].name = strdup(items[i]);
                pairs[i].value = strdup(eq + 1);
                assert_non_null(pairs[i].name);
                assert_non_null(pairs[i].value);
                free(items[i]);
        }
        free(items);
        *ret_n = n;
        return pairs;
}

static void build_rule(const rule_case *c, rule *r) {
        *r = (rule){ .sub_status = SUB_UNKNOWN, .action = ACTION_ROLLBACK };
        r->name = strdup(c->desc);
        assert_non_null(r->name);

        if (c->status) {
                size_t n = 0;
                char **names = split_list(c->status, &n);
                for (size_t i = 0; i < n; i++) {
                        int s = co_status_from_string(names[i]);
                        assert_true(s >= 0);
                        r->status_mask |= 1u << s;
                        free(names[i]);
                }
                free(names);
        }
        if (c->sub)
                r->sub_status = streq(c->sub, "error") ? SUB_ERROR : SUB_NORMAL;
        if (c->co_types)
                r->co_types = split_list(c->co_types, &r->n_co_types);
        if (c->no_progress)
                assert_int_equal(parse_duration(c->no_progress, &r->no_progress_usec), 0);
        r->pipeline_failed = c->pipeline_failed;
        if (c->alert)
                r->alert = parse_labels(c->alert, &r->n_alert);
        if (c->for_)
                assert_int_equal(parse_duration(c->for_, &r->for_usec), 0);
}

static void build_change_order(const rule_case *c, change_order *co) {
        *co = (change_order){
                .status = c->co_status,
                .sub_status = c->co_sub,
                .support_rollback = 1,
                .batch_count = 3,
                .batch_type = c->batch,
                .batch_wait_minutes = c->batch_wait_minutes,
                .create_ms = c->create_ms,
        };
        co->id = strdup("765fa5c0-9ebb-4bb4-b383-1f8854470001");
        co->app_id = strdup("7171a6ca-d1cd-4928-8642-7d5cfe690001");
        assert_non_null(co->id);
        assert_non_null(co->app_id);
        if (!c->co_type_null) {
                co->co_type = strdup(c->co_type ? c->co_type : "CoDeploy");
                assert_non_null(co->co_type);
        }
        if (c->n_pipes > 0) {
                co->pipelines = calloc(c->n_pipes, sizeof(pipeline));
                assert_non_null(co->pipelines);
                co->n_pipelines = c->n_pipes;
                for (size_t i = 0; i < c->n_pipes; i++) {
                        co->pipelines[i].id = strdup_printf("pipeline-%zu", i + 1);
                        co->pipelines[i].name = strdup_printf("Batch %zu", i + 1);
                        assert_non_null(co->pipelines[i].id);
                        assert_non_null(co->pipelines[i].name);
                        co->pipelines[i].status = c->pipes[i].status;
                        co->pipelines[i].update_ms = c->pipes[i].update_ms;
                }
                co->current_pipeline_id = strdup(co->pipelines[c->n_pipes - 1].id);
                assert_non_null(co->current_pipeline_id);
        }
}

static firing_alert *build_alerts(const rule_case *c) {
        firing_alert *a = calloc(c->n_alerts + 1, sizeof(firing_alert));
        assert_non_null(a);
        for (size_t i = 0; i < c->n_alerts; i++) {
                a[i].labels = parse_labels(c->alerts[i].labels, &a[i].n_labels);
                a[i].ends_at_ms = c->alerts[i].ends_at_ms;
        }
        return a;
}

static void free_alerts(firing_alert *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < a[i].n_labels; j++) {
                        free(a[i].labels[j].name);
                        free(a[i].labels[j].value);
                }
                free(a[i].labels);
        }
        free(a);
}

static const char *kind_name(verdict_kind k) {
        switch (k) {
        case VERDICT_NO_MATCH:
                return "NO_MATCH";
        case VERDICT_HOLDING:
                return "HOLDING";
        case VERDICT_FIRE:
                return "FIRE";
        }
        return "?";
}

static void test_rule_table(void **state) {
        size_t failures = 0;

        assert_true(ELEMENTSOF(rule_cases) >= 40);

        for (size_t i = 0; i < ELEMENTSOF(rule_cases); i++) {
                const rule_case *c = &rule_cases[i];
                rule r;
                change_order co;
                build_rule(c, &r);
                build_change_order(c, &co);
                firing_alert *alerts = build_alerts(c);

                rule_input in = {
                        .co = &co,
                        .now_ms = c->now ? c->now : NOW,
                        .last_change_ms = c->last_change,
                        .alerts = alerts,
                        .n_alerts = c->n_alerts,
                };
                rule_verdict v = rule_evaluate(&r, &in, c->match_since);
                char why[256];
                bool matched = rule_matches(&r, &in, why, sizeof(why));

                bool ok = true;
                if (v.kind != c->expect) {
                        print_error("row %zu \"%s\": expected %s, got %s (why: %s)\n", i, c->desc,
                                    kind_name(c->expect), kind_name(v.kind), v.why);
                        ok = false;
                }
                if (matched != (v.kind != VERDICT_NO_MATCH)) {
                        print_error("row %zu \"%s\": rule_matches says %s but rule_evaluate says %s\n", i,
                                    c->desc, matched ? "match" : "no match", kind_name(v.kind));
                        ok = false;
                }
                if (c->expect_fire_at != 0 && v.fire_at_ms != c->expect_fire_at) {
                        print_error("row %zu \"%s\": fire_at %" PRId64 ", expected %" PRId64 "\n", i, c->desc,
                                    v.fire_at_ms, c->expect_fire_at);
                        ok = false;
                }
                if (c->why_has && !strstr(v.why, c->why_has)) {
                        print_error("row %zu \"%s\": why \"%s\" does not mention \"%s\"\n", i, c->desc, v.why,
                                    c->why_has);
                        ok = false;
                }
                if (v.why[0] == 0) {
                        print_error("row %zu \"%s\": empty why\n", i, c->desc);
                        ok = false;
                }
                if (!ok)
                        failures++;

                free_alerts(alerts, c->n_alerts);
                change_order_done(&co);
                rule_done(&r);
        }
        assert_int_equal(failures, 0);
}

/* Metric conditions: only a finite reading on the right side of the
 * threshold holds; everything inconclusive resets the hold. */
typedef struct metric_case {
        const char *desc;
        rule_cmp cmp;
        double threshold;
        bool have;          /* a reading exists for the rule */
        bool ok;
        double value;
        bool rechecked_later;
        int64_t match_since;
        verdict_kind expect;
        const char *why_has;
} metric_case;

static const metric_case metric_cases[] = {
        { "above, value above", RULE_ABOVE, 0.05, true, true, 0.2, false, 0, VERDICT_HOLDING, "query value 0.2 above 0.05" },
        { "above, value above, held for", RULE_ABOVE, 0.05, true, true, 0.2, false, NOW - 60000, VERDICT_FIRE, "above" },
        { "above, equal is not above", RULE_ABOVE, 0.05, true, true, 0.05, false, NOW - 60000, VERDICT_NO_MATCH, "is not above" },
        { "above, value below", RULE_ABOVE, 0.05, true, true, 0.01, false, NOW - 60000, VERDICT_NO_MATCH, "0.01 is not above" },
        { "below, value below", RULE_BELOW, 10, true, true, 3, false, NOW - 60000, VERDICT_FIRE, "query value 3 below 10" },
        { "below, value above", RULE_BELOW, 10, true, true, 30, false, 0, VERDICT_NO_MATCH, "is not below" },
        { "NaN never holds", RULE_ABOVE, 0.05, true, true, NAN, false, NOW - 60000, VERDICT_NO_MATCH, "not above" },
        { "+Inf never holds", RULE_ABOVE, 0.05, true, true, INFINITY, false, NOW - 60000, VERDICT_NO_MATCH, "not above" },
        { "-Inf never holds below", RULE_BELOW, 1, true, true, -INFINITY, false, NOW - 60000, VERDICT_NO_MATCH, "not below" },
        { "inconclusive", RULE_ABOVE, 0.05, true, false, 0, false, NOW - 60000, VERDICT_NO_MATCH, "query inconclusive: srv down" },
        { "no reading yet", RULE_ABOVE, 0.05, false, false, 0, false, NOW - 60000, VERDICT_NO_MATCH, "no answer yet" },
        { "re-read before acting defers to the hook", RULE_ABOVE, 0.05, false, false, 0, true, NOW - 60000, VERDICT_FIRE, "re-checked" },
};

static void test_metric_conditions(void **state) {
        size_t failures = 0;
        for (size_t i = 0; i < ELEMENTSOF(metric_cases); i++) {
                const metric_case *c = &metric_cases[i];
                rule r = { .name = (char *)"err", .sub_status = SUB_UNKNOWN, .status_mask = 1u << CO_EXECUTING,
                           .query = (char *)"up", .cmp = c->cmp, .threshold = c->threshold,
                           .for_usec = 30 * USEC_PER_SEC, .action = ACTION_ROLLBACK };
                change_order co = { .id = (char *)"co-1", .co_type = (char *)"CoDeploy", .status = CO_EXECUTING,
                                    .sub_status = SUB_NORMAL };
                metric_reading m[2] = {
                        { .rule = "other", .ok = true, .value = 1e9 },
                        { .rule = "err", .ok = c->ok, .value = c->value, .why = "srv down" },
                };
                rule_input in = { .co = &co, .now_ms = NOW, .metrics = m, .n_metrics = c->have ? 2 : 1,
                                  .metrics_rechecked_later = c->rechecked_later };
                rule_verdict v = rule_evaluate(&r, &in, c->match_since);
                if (v.kind != c->expect || !strstr(v.why, c->why_has)) {
                        print_error("row %zu \"%s\": expected %s with \"%s\", got %s: %s\n", i, c->desc,
                                    kind_name(c->expect), c->why_has, kind_name(v.kind), v.why);
                        failures++;
                }
        }
        assert_int_equal(failures, 0);
}

static void test_rule_copy_query(void **state) {
        rule r = { .name = (char *)"q", .sub_status = SUB_UNKNOWN, .query = (char *)"sum(up)", .cmp = RULE_BELOW,
                   .threshold = 2.5 };
        rule c;
        assert_int_equal(rule_copy(&c, &r), 0);
        assert_ptr_not_equal(c.query, r.query);
        assert_string_equal(c.query, "sum(up)");
        assert_int_equal(c.cmp, RULE_BELOW);
        assert_true(c.threshold == 2.5);
        assert_string_equal(rule_cmp_name(RULE_ABOVE), "above");
        assert_string_equal(rule_cmp_name(RULE_BELOW), "below");
        rule_done(&c);
        assert_null(c.query);
}

static void test_rule_matches_null_why(void **state) {
        /* why is optional: a NULL or zero-sized buffer must not be touched. */
        rule r = { .sub_status = SUB_UNKNOWN, .status_mask = 1u << CO_EXECUTING };
        change_order co = { .status = CO_EXECUTING, .co_type = (char *)"CoDeploy" };
        rule_input in = { .co = &co, .now_ms = NOW };
        char one[1] = { 'x' };

        assert_true(rule_matches(&r, &in, NULL, 0));
        assert_true(rule_matches(&r, &in, one, 0));
        assert_int_equal(one[0], 'x');
        assert_true(rule_matches(&r, &in, one, sizeof(one)));
        assert_int_equal(one[0], 0);
        co.status = CO_FAILED;
        assert_false(rule_matches(&r, &in, NULL, 0));

        /* A tiny buffer truncates but stays terminated. */
        char small[8];
        assert_false(rule_matches(&r, &in, small, sizeof(small)));
        assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_rule_empty_co_type_list_means_default(void **state) {
        char *none[1] = { NULL };
        rule r = { .sub_status = SUB_UNKNOWN, .co_types = none, .n_co_types = 0 };
        change_order co = { .status = CO_EXECUTING, .co_type = (char *)"CoDeploy" };
        rule_input in = { .co = &co, .now_ms = NOW };

        assert_true(rule_matches(&r, &in, NULL, 0));
        co.co_type = (char *)"CoScaleIn";
        assert_false(rule_matches(&r, &in, NULL, 0));
}

typedef struct action_case {
        const char *desc;
        rule_action action;
        const char *co_type;
        int status;
        int support_rollback;
        bool allowed;
        const char *why_has;
} action_case;

static const action_case action_cases[] = {
        { "rollback of a running deploy with SupportRollback", ACTION_ROLLBACK, "CoDeploy", CO_EXECUTING, 1, true, NULL },
        { "abort of a running deploy with SupportRollback", ACTION_ABORT, "CoDeploy", CO_EXECUTING, 1, true, NULL },
        { "rollback while waiting for a manual batch", ACTION_ROLLBACK, "CoDeploy", CO_WAITING_MANUAL, 1, true, NULL },
        { "rollback while waiting for an auto batch", ACTION_ROLLBACK, "CoDeploy", CO_WAITING_AUTO, 1, true, NULL },
        { "log is always allowed, even on a rollback order", ACTION_LOG, "CoRollback", CO_EXECUTING, -1, true, NULL },
        { "log is always allowed, even on a final order", ACTION_LOG, "CoDeploy", CO_SUCCEEDED, 0, true, NULL },
        { "rollback of a CoRollback order", ACTION_ROLLBACK, "CoRollback", CO_EXECUTING, 1, false, "itself a rollback" },
        { "abort of a CoDeployHistroy order", ACTION_ABORT, "CoDeployHistroy", CO_EXECUTING, 1, false, "itself a rollback" },
        { "rollback of a succeeded order", ACTION_ROLLBACK, "CoDeploy", CO_SUCCEEDED, 1, false, "already ended (status succeeded)" },
        { "rollback of a failed order", ACTION_ROLLBACK, "CoDeploy", CO_FAILED, 1, false, "already ended (status failed)" },
        { "rollback of a terminated order", ACTION_ROLLBACK, "CoDeploy", CO_TERMINATED, 1, false, "already ended (status terminated)" },
        { "rollback of a partially succeeded order", ACTION_ROLLBACK, "CoDeploy", CO_PARTIAL, 1, false, "already ended (status partial)" },
        { "abort of an order in system error", ACTION_ABORT, "CoDeploy", CO_SYSTEM_ERROR, 1, false, "already ended (status system_error)" },
        { "rollback with SupportRollback false", ACTION_ROLLBACK, "CoDeploy", CO_EXECUTING, 0, false, "SupportRollback is false" },
        { "abort with SupportRollback false", ACTION_ABORT, "CoDeploy", CO_EXECUTING, 0, false, "SupportRollback is false" },
        { "rollback with SupportRollback missing", ACTION_ROLLBACK, "CoDeploy", CO_EXECUTING, -1, false,
          "SupportRollback missing from the API answer; not acting without it" },
        { "rollback with a garbage SupportRollback", ACTION_ROLLBACK, "CoDeploy", CO_EXECUTING, 7, false, "unexpected value 7" },
        { "rollback of a rollback order that also ended", ACTION_ROLLBACK, "CoRollback", CO_SUCCEEDED, 1, false, "itself a rollback" },
        { "unknown action value", (rule_action)42, "CoDeploy", CO_EXECUTING, 1, false, "unknown action" },
};

static void test_action_allowed(void **state) {
        size_t failures = 0;

        for (size_t i = 0; i < ELEMENTSOF(action_cases); i++) {
                const action_case *c = &action_cases[i];
                change_order co = {
                        .co_type = (char *)c->co_type,
                        .status = c->status,
                        .support_rollback = c->support_rollback,
                };
                char why[192] = "stale";
                bool allowed = action_allowed(c->action, &co, why, sizeof(why));

                if (allowed != c->allowed) {
                        print_error("row %zu \"%s\": expected %s, got %s (why: %s)\n", i, c->desc,
                                    c->allowed ? "allowed" : "refused", allowed ? "allowed" : "refused", why);
                        failures++;
                } else if (!allowed && (why[0] == 0 || (c->why_has && !strstr(why, c->why_has)))) {
                        print_error("row %zu \"%s\": why \"%s\" should mention \"%s\"\n", i, c->desc, why,
                                    strna(c->why_has));
                        failures++;
                } else if (allowed && why[0] != 0) {
                        print_error("row %zu \"%s\": allowed but why was left as \"%s\"\n", i, c->desc, why);
                        failures++;
                }
                /* why is optional */
                if (action_allowed(c->action, &co, NULL, 0) != c->allowed) {
                        print_error("row %zu \"%s\": answer changes without a why buffer\n", i, c->desc);
                        failures++;
                }
        }
        assert_int_equal(failures, 0);

        char why[64];
        assert_false(action_allowed(ACTION_ROLLBACK, NULL, why, sizeof(why)));
        assert_true(action_allowed(ACTION_LOG, NULL, why, sizeof(why)));
}

static void test_co_status_strings(void **state) {
        static const struct {
                const char *s;
                int expect;
        } cases[] = {
                { "preparing", 0 },        { "executing", 1 },      { "succeeded", 2 },
                { "failed", 3 },           { "terminated", 6 },     { "partial", 7 },
                { "waiting_manual", 8 },   { "waiting_auto", 9 },   { "system_error", 10 },
                { "pending_approval", 11 }, { "approved", 12 },     { "0", 0 },
                { "1", 1 },                { "2", 2 },              { "3", 3 },
                { "6", 6 },                { "7", 7 },              { "8", 8 },
                { "9", 9 },                { "10", 10 },            { "11", 11 },
                { "12", 12 },              { "4", -EINVAL },        { "5", -EINVAL },
                { "13", -EINVAL },         { "99999999999", -EINVAL }, { "-1", -EINVAL },
                { "+1", -EINVAL },         { " 1", -EINVAL },       { "1 ", -EINVAL },
                { "1x", -EINVAL },         { "", -EINVAL },         { "Executing", -EINVAL },
                { "execut", -EINVAL },     { "executingx", -EINVAL }, { "unknown", -EINVAL },
                { "waiting-manual", -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = co_status_from_string(cases[i].s);
                if (r != cases[i].expect)
                        print_error("co_status_from_string(\"%s\") = %d, expected %d\n", cases[i].s, r,
                                    cases[i].expect);
                assert_int_equal(r, cases[i].expect);
        }
        assert_int_equal(co_status_from_string(NULL), -EINVAL);

        /* Every name round-trips; the gaps and out-of-range numbers have none. */
        size_t named = 0;
        for (int s = -2; s < 20; s++) {
                const char *n = co_status_name(s);
                if (!n)
                        continue;
                named++;
                assert_int_equal(co_status_from_string(n), s);
        }
        assert_int_equal(named, 11);
        assert_null(co_status_name(4));
        assert_null(co_status_name(5));
        assert_null(co_status_name(CO_UNKNOWN));
        assert_null(co_status_name(_CO_STATUS_MAX));

        for (int s = -1; s < 20; s++) {
                bool final = s == 2 || s == 3 || s == 6 || s == 7 || s == 10;
                if (co_status_is_final(s) != final)
                        print_error("co_status_is_final(%d) wrong\n", s);
                assert_int_equal(co_status_is_final(s), final);
        }
}

static void test_names(void **state) {
        assert_string_equal(platform_name(PLATFORM_SAE), "sae");
        assert_string_equal(platform_name(PLATFORM_EDAS), "edas");

        assert_string_equal(rule_action_name(ACTION_ROLLBACK), "rollback");
        assert_string_equal(rule_action_name(ACTION_ABORT), "abort");
        assert_string_equal(rule_action_name(ACTION_LOG), "log");
        assert_int_equal(rule_action_from_string("rollback"), ACTION_ROLLBACK);
        assert_int_equal(rule_action_from_string("abort"), ACTION_ABORT);
        assert_int_equal(rule_action_from_string("log"), ACTION_LOG);
        assert_int_equal(rule_action_from_string("Rollback"), -EINVAL);
        assert_int_equal(rule_action_from_string(""), -EINVAL);
        assert_int_equal(rule_action_from_string("roll"), -EINVAL);
        assert_int_equal(rule_action_from_string(NULL), -EINVAL);

        assert_true(co_type_is_rollback("CoRollback"));
        assert_true(co_type_is_rollback("CoDeployHistroy"));
        assert_false(co_type_is_rollback("CoDeploy"));
        assert_false(co_type_is_rollback("corollback"));
        assert_false(co_type_is_rollback(""));
        assert_false(co_type_is_rollback(NULL));

        assert_string_equal(rule_default_co_types[0], "CoDeploy");
        assert_null(rule_default_co_types[1]);
}

/* A snapshot with two pipelines and every member set. */
static void make_full_change_order(change_order *co) {
        *co = (change_order){
                .id = strdup("765fa5c0-9ebb-4bb4-b383-1f8854470001"),
                .app_id = strdup("7171a6ca-d1cd-4928-8642-7d5cfe690001"),
                .co_type = strdup("CoDeploy"),
                .status = CO_EXECUTING,
                .sub_status = SUB_NORMAL,
                .support_rollback = 1,
                .batch_count = 2,
                .batch_type = BATCH_AUTO,
                .batch_wait_minutes = 5,
                .current_pipeline_id = strdup("p2"),
                .create_ms = AGO(30 * MIN),
                .pipelines = calloc(2, sizeof(pipeline)),
                .n_pipelines = 2,
        };
        assert_non_null(co->pipelines);
        co->pipelines[0] = (pipeline){ strdup("p1"), strdup("Batch 1"), CO_SUCCEEDED, AGO(29 * MIN), AGO(20 * MIN) };
        co->pipelines[1] = (pipeline){ strdup("p2"), strdup("Batch 2"), CO_EXECUTING, AGO(19 * MIN), AGO(10 * MIN) };
        assert_non_null(co->id);
        assert_non_null(co->pipelines[1].name);
}

static void test_progress_hash(void **state) {
        change_order base;
        make_full_change_order(&base);
        uint64_t h0 = change_order_progress_hash(&base);
        assert_int_equal(change_order_progress_hash(&base), h0);

        change_order c;
        assert_int_equal(change_order_copy(&c, &base), 0);
        assert_int_equal(change_order_progress_hash(&c), h0);

        /* Things that are progress change the hash ... */
        c.status = CO_WAITING_AUTO;
        assert_int_not_equal(change_order_progress_hash(&c), h0);
        c.status = base.status;
        c.sub_status = SUB_ERROR;
        assert_int_not_equal(change_order_progress_hash(&c), h0);
        c.sub_status = base.sub_status;
        assert_int_equal(free_and_strdup(&c.current_pipeline_id, "p1"), 0);
        assert_int_not_equal(change_order_progress_hash(&c), h0);
        assert_int_equal(free_and_strdup(&c.current_pipeline_id, NULL), 0);
        assert_int_not_equal(change_order_progress_hash(&c), h0);
        assert_int_equal(free_and_strdup(&c.current_pipeline_id, "p2"), 0);
        assert_int_equal(change_order_progress_hash(&c), h0);
        c.pipelines[1].status = CO_SUCCEEDED;
        assert_int_not_equal(change_order_progress_hash(&c), h0);
        c.pipelines[1].status = CO_EXECUTING;
        c.pipelines[1].update_ms += 1;
        assert_int_not_equal(change_order_progress_hash(&c), h0);
        c.pipelines[1].update_ms -= 1;
        assert_int_equal(free_and_strdup(&c.pipelines[0].id, "p0"), 0);
        assert_int_not_equal(change_order_progress_hash(&c), h0);
        assert_int_equal(free_and_strdup(&c.pipelines[0].id, "p1"), 0);
        c.n_pipelines = 1; /* a pipeline appearing or vanishing is progress */
        assert_int_not_equal(change_order_progress_hash(&c), h0);
        c.n_pipelines = 2;
        assert_int_equal(change_order_progress_hash(&c), h0);

        /* ... and nothing else does. */
        c.support_rollback = 0;
        c.batch_count = 9;
        c.batch_type = BATCH_MANUAL;
        c.batch_wait_minutes = 0;
        c.create_ms = 1;
        c.pipelines[0].start_ms = 2;
        assert_int_equal(free_and_strdup(&c.id, "other"), 0);
        assert_int_equal(free_and_strdup(&c.app_id, "other"), 0);
        assert_int_equal(free_and_strdup(&c.co_type, "CoRestartApp"), 0);
        assert_int_equal(free_and_strdup(&c.pipelines[1].name, "renamed"), 0);
        assert_int_equal(change_order_progress_hash(&c), h0);

        /* Adjacent strings must not blur into each other. */
        change_order a = { .current_pipeline_id = (char *)"", .n_pipelines = 0 };
        change_order b = { .current_pipeline_id = NULL, .n_pipelines = 0 };
        assert_int_not_equal(change_order_progress_hash(&a), change_order_progress_hash(&b));

        change_order_done(&c);
        change_order_done(&base);
}

static void test_change_order_copy_done(void **state) {
        change_order src, dst;
        make_full_change_order(&src);
        assert_int_equal(change_order_copy(&dst, &src), 0);

        assert_ptr_not_equal(dst.id, src.id);
        assert_string_equal(dst.id, src.id);
        assert_ptr_not_equal(dst.app_id, src.app_id);
        assert_string_equal(dst.app_id, src.app_id);
        assert_ptr_not_equal(dst.co_type, src.co_type);
        assert_string_equal(dst.co_type, src.co_type);
        assert_ptr_not_equal(dst.current_pipeline_id, src.current_pipeline_id);
        assert_string_equal(dst.current_pipeline_id, src.current_pipeline_id);
        assert_int_equal(dst.status, src.status);
        assert_int_equal(dst.support_rollback, src.support_rollback);
        assert_int_equal(dst.batch_type, src.batch_type);
        assert_int_equal(dst.batch_wait_minutes, src.batch_wait_minutes);
        assert_int_equal(dst.create_ms, src.create_ms);
        assert_int_equal(dst.n_pipelines, 2);
        assert_ptr_not_equal(dst.pipelines, src.pipelines);
        for (size_t i = 0; i < 2; i++) {
                assert_ptr_not_equal(dst.pipelines[i].id, src.pipelines[i].id);
                assert_string_equal(dst.pipelines[i].id, src.pipelines[i].id);
                assert_string_equal(dst.pipelines[i].name, src.pipelines[i].name);
                assert_int_equal(dst.pipelines[i].status, src.pipelines[i].status);
                assert_int_equal(dst.pipelines[i].start_ms, src.pipelines[i].start_ms);
                assert_int_equal(dst.pipelines[i].update_ms, src.pipelines[i].update_ms);
        }

        /* The copy outlives the source (valgrind checks nothing is shared). */
        change_order_done(&src);
        assert_null(src.id);
        assert_null(src.pipelines);
        assert_int_equal(src.n_pipelines, 0);
        assert_string_equal(dst.pipelines[1].name, "Batch 2");
        change_order_done(&dst);
        change_order_done(&dst); /* zeroed: safe twice */
        change_order_done(NULL);

        /* Absent members stay absent. */
        change_order sparse = { .status = CO_UNKNOWN, .sub_status = SUB_UNKNOWN, .support_rollback = -1 };
        sparse.pipelines = calloc(1, sizeof(pipeline));
        assert_non_null(sparse.pipelines);
        sparse.n_pipelines = 1;
        sparse.pipelines[0].status = CO_UNKNOWN;
        assert_int_equal(change_order_copy(&dst, &sparse), 0);
        assert_null(dst.id);
        assert_null(dst.co_type);
        assert_null(dst.current_pipeline_id);
        assert_int_equal(dst.n_pipelines, 1);
        assert_null(dst.pipelines[0].id);
        assert_null(dst.pipelines[0].name);
        assert_int_equal(dst.support_rollback, -1);
        change_order_done(&dst);
        change_order_done(&sparse);
}

static void test_change_order_helpers(void **state) {
        change_order co;
        make_full_change_order(&co);
        assert_int_equal(change_order_last_progress_ms(&co), AGO(10 * MIN));
        co.pipelines[0].start_ms = AGO(MIN); /* a StartTime counts as well */
        assert_int_equal(change_order_last_progress_ms(&co), AGO(MIN));
        assert_false(change_order_has_failed_pipeline(&co));
        co.pipelines[0].status = CO_SYSTEM_ERROR;
        assert_true(change_order_has_failed_pipeline(&co));
        co.pipelines[0].status = CO_FAILED;
        assert_true(change_order_has_failed_pipeline(&co));
        co.pipelines[0].status = CO_TERMINATED;
        assert_false(change_order_has_failed_pipeline(&co));
        change_order_done(&co);

        change_order empty = { .status = CO_EXECUTING };
        assert_int_equal(change_order_last_progress_ms(&empty), 0);
        assert_false(change_order_has_failed_pipeline(&empty));
        empty.create_ms = AGO(MIN);
        assert_int_equal(change_order_last_progress_ms(&empty), AGO(MIN));
}

static void test_alert_matchers_firing(void **state) {
        label_pair m[] = { { (char *)"alertname", (char *)"HighErrorRate" }, { (char *)"app", (char *)"shop" } };
        label_pair l1[] = { { (char *)"app", (char *)"shop" }, { (char *)"alertname", (char *)"HighErrorRate" } };
        firing_alert a[] = { { l1, ELEMENTSOF(l1), 0 } };

        assert_true(alert_matchers_firing(m, 2, a, 1, NOW));
        assert_true(alert_matchers_firing(m, 1, a, 1, NOW));
        assert_false(alert_matchers_firing(m, 2, a, 0, NOW));
        assert_false(alert_matchers_firing(m, 2, NULL, 0, NOW));
        /* No matchers is no condition to satisfy, not "everything matches". */
        assert_false(alert_matchers_firing(m, 0, a, 1, NOW));
        a[0].ends_at_ms = NOW;
        assert_false(alert_matchers_firing(m, 2, a, 1, NOW));
        assert_true(alert_matchers_firing(m, 2, a, 1, NOW - 1));
}

static void test_rule_copy_done(void **state) {
        rule src = {
                .name = strdup("error-rate-alert"),
                .status_mask = (1u << CO_EXECUTING) | (1u << CO_WAITING_MANUAL),
                .sub_status = SUB_ERROR,
                .no_progress_usec = 15 * USEC_PER_MIN,
                .pipeline_failed = true,
                .for_usec = 30 * USEC_PER_SEC,
                .action = ACTION_ABORT,
        };
        src.co_types = split_list("CoDeploy,CoRestartApp", &src.n_co_types);
        src.alert = parse_labels("alertname=HighErrorRate,app=shop", &src.n_alert);
        assert_non_null(src.name);

        rule dst;
        assert_int_equal(rule_copy(&dst, &src), 0);
        assert_ptr_not_equal(dst.name, src.name);
        assert_string_equal(dst.name, "error-rate-alert");
        assert_int_equal(dst.status_mask, src.status_mask);
        assert_int_equal(dst.sub_status, SUB_ERROR);
        assert_int_equal(dst.no_progress_usec, 15 * USEC_PER_MIN);
        assert_true(dst.pipeline_failed);
        assert_int_equal(dst.for_usec, 30 * USEC_PER_SEC);
        assert_int_equal(dst.action, ACTION_ABORT);
        assert_int_equal(dst.n_co_types, 2);
        assert_ptr_not_equal(dst.co_types, src.co_types);
        assert_ptr_not_equal(dst.co_types[1], src.co_types[1]);
        assert_string_equal(dst.co_types[1], "CoRestartApp");
        assert_int_equal(dst.n_alert, 2);
        assert_ptr_not_equal(dst.alert, src.alert);
        assert_ptr_not_equal(dst.alert[1].value, src.alert[1].value);
        assert_string_equal(dst.alert[1].name, "app");
        assert_string_equal(dst.alert[1].value, "shop");

        rule_done(&src);
        assert_null(src.name);
        assert_null(src.co_types);
        assert_null(src.alert);
        assert_int_equal(src.sub_status, SUB_UNKNOWN);
        assert_string_equal(dst.alert[0].value, "HighErrorRate");
        rule_done(&dst);
        rule_done(&dst);
        rule_done(NULL);

        /* A rule with only defaults copies to one with only defaults. */
        rule bare = { .sub_status = SUB_UNKNOWN };
        assert_int_equal(rule_copy(&dst, &bare), 0);
        assert_null(dst.name);
        assert_null(dst.co_types);
        assert_null(dst.alert);
        assert_int_equal(dst.n_alert, 0);
        rule_done(&dst);
}

static void test_rules_builtin(void **state) {
        rule *rules = NULL;
        size_t n = 0;
        assert_int_equal(rules_builtin(&rules, &n), 0);
        assert_int_equal(n, 3);

        assert_string_equal(rules[0].name, "batch-error");
        assert_int_equal(rules[0].status_mask, 1u << CO_EXECUTING);
        assert_int_equal(rules[0].sub_status, SUB_ERROR);
        assert_int_equal(rules[0].for_usec, 60 * USEC_PER_SEC);
        assert_int_equal(rules[0].no_progress_usec, 0);
        assert_false(rules[0].pipeline_failed);
        assert_int_equal(rules[0].action, ACTION_ROLLBACK);

        assert_string_equal(rules[1].name, "stalled");
        assert_int_equal(rules[1].status_mask, (1u << CO_EXECUTING) | (1u << CO_WAITING_AUTO));
        assert_int_equal(rules[1].sub_status, SUB_UNKNOWN);
        assert_int_equal(rules[1].no_progress_usec, 15 * USEC_PER_MIN);
        assert_int_equal(rules[1].for_usec, 0);
        assert_false(rules[1].pipeline_failed);
        assert_int_equal(rules[1].action, ACTION_ROLLBACK);

        assert_string_equal(rules[2].name, "failed-batch");
        assert_int_equal(rules[2].status_mask, 0);
        assert_int_equal(rules[2].sub_status, SUB_UNKNOWN);
        assert_true(rules[2].pipeline_failed);
        assert_int_equal(rules[2].no_progress_usec, 0);
        assert_int_equal(rules[2].for_usec, 0);
        assert_int_equal(rules[2].action, ACTION_ROLLBACK);

        for (size_t i = 0; i < n; i++) {
                assert_null(rules[i].co_types); /* deploy orders only */
                assert_int_equal(rules[i].n_alert, 0);
        }

        /* The built-ins leave a manual batch waiting for its human alone. */
        change_order co = { .status = CO_WAITING_MANUAL, .co_type = (char *)"CoDeploy",
                            .batch_type = BATCH_MANUAL, .create_ms = AGO(600 * MIN) };
        rule_input in = { .co = &co, .now_ms = NOW, .last_change_ms = AGO(600 * MIN) };
        for (size_t i = 0; i < n; i++)
                assert_int_equal(rule_evaluate(&rules[i], &in, AGO(600 * MIN)).kind, VERDICT_NO_MATCH);

        for (size_t i = 0; i < n; i++)
                rule_done(&rules[i]);
        free(rules);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rule_table),
                cmocka_unit_test(test_metric_conditions),
                cmocka_unit_test(test_rule_copy_query),
                cmocka_unit_test(test_rule_matches_null_why),
                cmocka_unit_test(test_rule_empty_co_type_list_means_default),
                cmocka_unit_test(test_action_allowed),
                cmocka_unit_test(test_co_status_strings),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_progress_hash),
                cmocka_unit_test(test_change_order_copy_done),
                cmocka_unit_test(test_change_order_helpers),
                cmocka_unit_test(test_alert_matchers_firing),
                cmocka_unit_test(test_rule_copy_done),
                cmocka_unit_test(test_rules_builtin),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
