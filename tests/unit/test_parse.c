/* SPDX-License-Identifier: MIT */
/* sae.c and edas.c: request builders, fixture parsing, tolerance of what the
 * cloud really sends, and malformed bodies that must fail with a path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "change_order.h"
#include "edas.h"
#include "json.h"
#include "sae.h"
#include "util.h"

#define FIXTURE(name) TEST_SRCDIR "/unit/fixtures/" name

#define CHECK(row, cond)                                              \
        do {                                                          \
                if (!(cond))                                          \
                        fail_msg("%s: failed: %s", (row), #cond);    \
        } while (0)

#define CHECK_INT(row, what, got, want)                                                       \
        do {                                                                                  \
                long long _g = (long long)(got), _w = (long long)(want);                      \
                if (_g != _w)                                                                 \
                        fail_msg("%s: %s is %lld, expected %lld", (row), (what), _g, _w);     \
        } while (0)

#define CHECK_STR(row, what, got, want)                                                       \
        do {                                                                                  \
                const char *_g = (got), *_w = (want);                                         \
                if (!streq_null(_g, _w))                                                      \
                        fail_msg("%s: %s is \"%s\", expected \"%s\"", (row), (what),          \
                                 strna(_g), strna(_w));                                       \
        } while (0)

static void cjson_deletep(cJSON **p) {
        cJSON_Delete(*p);
}
#define _cleanup_cjson_ _cleanup_(cjson_deletep)

static cJSON *load_fixture(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                fail_msg("cannot open %s", path);
        char *buf = NULL;
        size_t size = 0;
        FILE *mem = open_memstream(&buf, &size);
        assert_non_null(mem);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
                assert_int_equal(fwrite(chunk, 1, n, mem), n);
        fclose(f);
        assert_int_equal(fclose(mem), 0);
        cJSON *root = cJSON_Parse(buf);
        if (!root)
                fail_msg("%s is not valid JSON", path);
        free(buf);
        return root;
}

static cJSON *parse_text(const char *row, const char *text) {
        cJSON *root = cJSON_Parse(text);
        if (!root)
                fail_msg("%s: test input is not valid JSON: %s", row, text);
        return root;
}

/* ---- every parser behind one door, for the tables ---- */

typedef enum parser_kind {
        SAE_APP_STATUS,
        SAE_LIST,
        SAE_CHANGE_ORDER,
        SAE_ACTION,
        EDAS_LIST,
        EDAS_CHANGE_ORDER,
        EDAS_ACTION,
        _PARSER_MAX,
} parser_kind;

typedef struct parsed {
        app_activity activity;
        change_order co;
        char *action_id;
} parsed;

static void parsed_done(parsed *p) {
        app_activity_done(&p->activity);
        change_order_done(&p->co);
        free(p->action_id);
        p->action_id = NULL;
}

static int run_parser(parser_kind kind, const cJSON *root, parsed *out, char **error) {
        switch (kind) {
        case SAE_APP_STATUS:
                return sae_parse_app_status(root, &out->activity, error);
        case SAE_LIST:
                return sae_parse_change_order_list(root, &out->activity, error);
        case SAE_CHANGE_ORDER:
                return sae_parse_change_order(root, &out->co, error);
        case SAE_ACTION:
                return sae_parse_action(root, &out->action_id, error);
        case EDAS_LIST:
                return edas_parse_change_order_list(root, &out->activity, error);
        case EDAS_CHANGE_ORDER:
                return edas_parse_change_order(root, &out->co, error);
        case EDAS_ACTION:
                return edas_parse_action(root, &out->action_id, error);
        case _PARSER_MAX:
                break;
        }
        fail_msg("unknown parser %d", (int)kind);
        return -EINVAL;
}

static bool is_activity(parser_kind k) {
        return k == SAE_APP_STATUS || k == SAE_LIST || k == EDAS_LIST;
}

static bool is_change_order(parser_kind k) {
        return k == SAE_CHANGE_ORDER || k == EDAS_CHANGE_ORDER;
}

/* Parses and insists on success; the caller owns *out. */
static void parse_ok(const char *row, parser_kind kind, const cJSON *root, parsed *out) {
        char *error = NULL;
        *out = (parsed){ .activity.status = CO_UNKNOWN };
        int r = run_parser(kind, root, out, &error);
        if (r != 0)
                fail_msg("%s: parse failed with %d: %s", row, r, strna(error));
        CHECK(row, !error);
}

/* ---- fixtures: every field ---- */

static void test_sae_app_status_running(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("sae-describe-app-status-running.json"));
        parsed p;
        parse_ok("running", SAE_APP_STATUS, root, &p);
        assert_true(p.activity.in_flight);
        assert_string_equal(p.activity.change_order_id, "ba386059-69b1-4e65-b1e5-0682d9fa6ee7");
        assert_int_equal(p.activity.status, CO_EXECUTING);
        parsed_done(&p);
}

static void test_sae_app_status_idle(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("sae-describe-app-status-idle.json"));
        parsed p;
        parse_ok("idle", SAE_APP_STATUS, root, &p);
        assert_false(p.activity.in_flight);
        assert_string_equal(p.activity.change_order_id, "4a815998-b468-4bea-b7d8-59f52a44c47c");
        assert_int_equal(p.activity.status, CO_SUCCEEDED);
        parsed_done(&p);
}

static void test_sae_list_change_orders(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("sae-list-change-orders.json"));
        parsed p;
        /* A finished restart is newest; the newest in-flight deploy wins over it
         * and over an older in-flight one. */
        parse_ok("list", SAE_LIST, root, &p);
        assert_true(p.activity.in_flight);
        assert_string_equal(p.activity.change_order_id, "ba386059-69b1-4e65-b1e5-0682d9fa6ee7");
        assert_int_equal(p.activity.status, CO_WAITING_MANUAL);
        parsed_done(&p);
}

static void test_sae_list_change_orders_idle(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("sae-list-change-orders-idle.json"));
        parsed p;
        /* Nothing in flight: the newest by CreateTime (second in the list,
         * given in ms) is reported. */
        parse_ok("list idle", SAE_LIST, root, &p);
        assert_false(p.activity.in_flight);
        assert_string_equal(p.activity.change_order_id, "9d7a1b9e-33a0-4f0a-8c51-6d2b0c1f7e88");
        assert_int_equal(p.activity.status, CO_SUCCEEDED);
        parsed_done(&p);
}

static void test_sae_change_order_stuck(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("sae-describe-change-order-stuck.json"));
        parsed p;
        parse_ok("stuck", SAE_CHANGE_ORDER, root, &p);
        const change_order *co = &p.co;
        assert_string_equal(co->id, "ba386059-69b1-4e65-b1e5-0682d9fa6ee7");
        assert_string_equal(co->app_id, "7171a6ca-d1cd-4928-8642-7d5cfe69d2a1");
        assert_string_equal(co->co_type, "CoDeploy");
        assert_int_equal(co->status, CO_EXECUTING);
        assert_int_equal(co->sub_status, SUB_ERROR);
        assert_int_equal(co->support_rollback, 1);
        assert_int_equal(co->batch_count, 3);
        assert_int_equal(co->batch_type, BATCH_AUTO);
        assert_int_equal(co->batch_wait_minutes, 5);
        assert_string_equal(co->current_pipeline_id, "c5b2e3a1-6b1f-4a3e-9f0c-2b7d4e6f8a02");
        assert_int_equal(co->create_ms, INT64_C(1716171300000));
        assert_int_equal(co->n_pipelines, 3);

        static const struct {
                const char *id, *name;
                int status;
                int64_t start_ms, update_ms;
        } want[] = {
                { "c5b2e3a1-6b1f-4a3e-9f0c-2b7d4e6f8a01", "Batch 1 change", CO_SUCCEEDED, 1716171301000, 1716171422000 },
                { "c5b2e3a1-6b1f-4a3e-9f0c-2b7d4e6f8a02", "Batch 2 change", CO_FAILED, 1716171722000, 1716171901000 },
                { "c5b2e3a1-6b1f-4a3e-9f0c-2b7d4e6f8a03", "Batch 3 change", CO_PREPARING, 0, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                char row[32];
                snprintf(row, sizeof row, "pipeline %zu", i);
                CHECK_STR(row, "id", co->pipelines[i].id, want[i].id);
                CHECK_STR(row, "name", co->pipelines[i].name, want[i].name);
                CHECK_INT(row, "status", co->pipelines[i].status, want[i].status);
                CHECK_INT(row, "start_ms", co->pipelines[i].start_ms, want[i].start_ms);
                CHECK_INT(row, "update_ms", co->pipelines[i].update_ms, want[i].update_ms);
        }
        assert_true(change_order_has_failed_pipeline(co));
        assert_int_equal(change_order_last_progress_ms(co), INT64_C(1716171901000));
        parsed_done(&p);
}

static void test_sae_change_order_rollback(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("sae-describe-change-order-rollback.json"));
        parsed p;
        parse_ok("rollback", SAE_CHANGE_ORDER, root, &p);
        const change_order *co = &p.co;
        assert_string_equal(co->id, "9d7a1b9e-33a0-4f0a-8c51-6d2b0c1f7e88");
        assert_string_equal(co->app_id, "7171a6ca-d1cd-4928-8642-7d5cfe69d2a1");
        assert_string_equal(co->co_type, "CoRollback");
        assert_true(co_type_is_rollback(co->co_type));
        assert_int_equal(co->status, CO_SUCCEEDED);
        assert_int_equal(co->sub_status, SUB_NORMAL);
        assert_int_equal(co->support_rollback, 0);
        assert_int_equal(co->batch_count, 1);
        assert_int_equal(co->batch_type, BATCH_MANUAL);
        assert_int_equal(co->batch_wait_minutes, 0);
        assert_null(co->current_pipeline_id); /* "" */
        assert_int_equal(co->create_ms, INT64_C(1716171631000)); /* console time, UTC+8 */
        assert_int_equal(co->n_pipelines, 1);
        assert_string_equal(co->pipelines[0].id, "e0f1a2b3-c4d5-4e6f-8a9b-0c1d2e3f4a5b");
        assert_string_equal(co->pipelines[0].name, "Batch 1 change");
        assert_int_equal(co->pipelines[0].status, CO_SUCCEEDED);
        assert_int_equal(co->pipelines[0].start_ms, INT64_C(1716171632000));
        assert_int_equal(co->pipelines[0].update_ms, INT64_C(1716171700000));
        parsed_done(&p);
}

static void test_sae_action(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("sae-abort-and-rollback.json"));
        parsed p;
        parse_ok("sae action", SAE_ACTION, root, &p);
        assert_string_equal(p.action_id, "1f7a3c9e-5b2d-4e8a-9c0f-7d6e5b4a3c21");
        parsed_done(&p);
}

static void test_edas_change_order_info(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("edas-change-order-info.json"));
        parsed p;
        parse_ok("edas info", EDAS_CHANGE_ORDER, root, &p);
        const change_order *co = &p.co;
        assert_string_equal(co->id, "7c3b5c6e-2e1f-4d0a-9b8c-1a2b3c4d5e6f");
        assert_string_equal(co->app_id, "3616cdca-4f92-4ef6-a9c7-c2c4b7d5****");
        assert_string_equal(co->co_type, "CoDeploy");
        assert_int_equal(co->status, CO_EXECUTING);
        /* Executing with a failed batch: EDAS's way of saying SAE's SubStatus 1. */
        assert_int_equal(co->sub_status, SUB_ERROR);
        assert_int_equal(co->support_rollback, 1);
        assert_int_equal(co->batch_count, 3);
        assert_int_equal(co->batch_type, BATCH_AUTO);
        assert_int_equal(co->batch_wait_minutes, 0);
        assert_null(co->current_pipeline_id);
        assert_int_equal(co->create_ms, INT64_C(1716171300000));
        assert_int_equal(co->n_pipelines, 3);

        static const struct {
                const char *id, *name;
                int status;
                int64_t start_ms, update_ms;
        } want[] = {
                { "a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a5b", "Batch 1", CO_SUCCEEDED, 1716171301000, 1716171422000 },
                { "a1b2c3d4-0002-4e5f-8a9b-0c1d2e3f4a5b", "Batch 2", CO_FAILED, 1716171722000, 1716171901000 },
                { "a1b2c3d4-0003-4e5f-8a9b-0c1d2e3f4a5b", "Batch 3", CO_PREPARING, 0, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                char row[32];
                snprintf(row, sizeof row, "pipeline %zu", i);
                CHECK_STR(row, "id", co->pipelines[i].id, want[i].id);
                CHECK_STR(row, "name", co->pipelines[i].name, want[i].name);
                CHECK_INT(row, "status", co->pipelines[i].status, want[i].status);
                CHECK_INT(row, "start_ms", co->pipelines[i].start_ms, want[i].start_ms);
                CHECK_INT(row, "update_ms", co->pipelines[i].update_ms, want[i].update_ms);
        }
        parsed_done(&p);
}

static void test_edas_change_order_info_partial(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("edas-change-order-info-partial.json"));
        parsed p;
        parse_ok("edas partial", EDAS_CHANGE_ORDER, root, &p);
        const change_order *co = &p.co;
        assert_null(co->id); /* left out by EDAS: the watcher knows what it asked for */
        assert_string_equal(co->app_id, "3616cdca-4f92-4ef6-a9c7-c2c4b7d5****");
        assert_string_equal(co->co_type, "CoScaleOut");
        assert_int_equal(co->status, CO_PARTIAL);
        assert_int_equal(co->sub_status, SUB_NORMAL);
        assert_int_equal(co->support_rollback, 0);
        assert_int_equal(co->batch_count, 1);
        assert_int_equal(co->batch_type, BATCH_MANUAL);
        assert_int_equal(co->create_ms, INT64_C(1709136000000));
        assert_int_equal(co->n_pipelines, 1);
        assert_string_equal(co->pipelines[0].id, "b9c8d7e6-0001-4f5e-8d7c-6b5a4f3e2d1c");
        assert_string_equal(co->pipelines[0].name, "Batch 1");
        assert_int_equal(co->pipelines[0].status, CO_PARTIAL);
        assert_int_equal(co->pipelines[0].start_ms, INT64_C(1709136001000));
        assert_int_equal(co->pipelines[0].update_ms, INT64_C(1709136099000));
        parsed_done(&p);
}

static void test_edas_change_order_list(void **state) {
        _cleanup_cjson_ cJSON *root = load_fixture(FIXTURE("edas-change-order-list.json"));
        parsed p;
        /* The newest order failed; the newest in-flight one is in the middle. */
        parse_ok("edas list", EDAS_LIST, root, &p);
        assert_true(p.activity.in_flight);
        assert_string_equal(p.activity.change_order_id, "7c3b5c6e-2e1f-4d0a-9b8c-1a2b3c4d5e6f");
        assert_int_equal(p.activity.status, CO_WAITING_AUTO);
        parsed_done(&p);
}

static void test_edas_actions(void **state) {
        _cleanup_cjson_ cJSON *rollback = load_fixture(FIXTURE("edas-rollback.json"));
        _cleanup_cjson_ cJSON *abort_rollback = load_fixture(FIXTURE("edas-abort-and-rollback.json"));
        parsed p;
        parse_ok("edas rollback", EDAS_ACTION, rollback, &p);
        assert_string_equal(p.action_id, "f0e1d2c3-b4a5-4968-8776-655443322110");
        parsed_done(&p);
        parse_ok("edas abort and rollback", EDAS_ACTION, abort_rollback, &p);
        assert_string_equal(p.action_id, "a9b8c7d6-e5f4-4321-9876-5a4b3c2d1e0f");
        parsed_done(&p);
}

/* ---- tolerance: what the cloud sends in the wild ---- */

typedef struct expect {
        const char *id;
        bool in_flight;
        int status;
        /* change orders only */
        int sub_status;
        int support_rollback;
        int batch_count;
        batch_type batch;
        int batch_wait;
        int64_t create_ms;
        size_t n_pipelines;
        int p0_status;       /* checked when n_pipelines > 0 */
        int64_t p0_update_ms;
} expect;

/* What a change order with nothing but an id parses to. */
#define CO_DEFAULTS .status = CO_UNKNOWN, .sub_status = SUB_UNKNOWN, .support_rollback = -1

static const struct tolerant_case {
        const char *name;
        parser_kind kind;
        const char *json;
        expect want;
} tolerant_cases[] = {
        /* SAE describeApplicationStatus */
        { "app status: Code as int, Success missing", SAE_APP_STATUS,
          "{\"Code\":200,\"Data\":{\"LastChangeOrderId\":\"co-1\",\"LastChangeOrderRunning\":true,\"LastChangeOrderStatus\":1}}",
          { .id = "co-1", .in_flight = true, .status = CO_EXECUTING } },
        { "app status: Code as string, Success false, unknown fields", SAE_APP_STATUS,
          "{\"Code\":\"200\",\"Success\":false,\"Extra\":[1,{}],\"Data\":{\"LastChangeOrderId\":\"co-1\",\"LastChangeOrderRunning\":false,\"LastChangeOrderStatus\":\"SUCCESS\",\"New\":{\"a\":null}}}",
          { .id = "co-1", .in_flight = false, .status = CO_SUCCEEDED } },
        { "app status: running as string, status as numeric string", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderId\":\"co-1\",\"LastChangeOrderRunning\":\"TRUE\",\"LastChangeOrderStatus\":\"8\"}}",
          { .id = "co-1", .in_flight = true, .status = CO_WAITING_MANUAL } },
        { "app status: running as 1", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderId\":\"co-1\",\"LastChangeOrderRunning\":1}}",
          { .id = "co-1", .in_flight = true, .status = CO_UNKNOWN } },
        { "app status: all null", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderId\":null,\"LastChangeOrderRunning\":null,\"LastChangeOrderStatus\":null,\"SubStatus\":null}}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "app status: empty Data", SAE_APP_STATUS, "{\"Data\":{}}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "app status: empty id and status strings", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderId\":\"\",\"LastChangeOrderRunning\":false,\"LastChangeOrderStatus\":\"\"}}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "app status: numeric id", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderId\":12345,\"LastChangeOrderRunning\":false}}",
          { .id = "12345", .in_flight = false, .status = CO_UNKNOWN } },
        { "app status: running flag absent, status says running", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderId\":\"co-1\",\"LastChangeOrderStatus\":\"RUNNING\"}}",
          { .id = "co-1", .in_flight = true, .status = CO_EXECUTING } },
        { "app status: running flag absent, status final", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderId\":\"co-1\",\"LastChangeOrderStatus\":\"FAIL\"}}",
          { .id = "co-1", .in_flight = false, .status = CO_FAILED } },
        { "app status: flag false wins over a running status", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderId\":\"co-1\",\"LastChangeOrderRunning\":false,\"LastChangeOrderStatus\":\"RUNNING\"}}",
          { .id = "co-1", .in_flight = false, .status = CO_EXECUTING } },
#define STATUS_WORD(word, st)                                                                        \
        { "app status word " word, SAE_APP_STATUS,                                                   \
          "{\"Data\":{\"LastChangeOrderId\":\"co-1\",\"LastChangeOrderRunning\":true,"              \
          "\"LastChangeOrderStatus\":\"" word "\"}}",                                                \
          { .id = "co-1", .in_flight = true, .status = (st) } }
        STATUS_WORD("RUNNING", CO_EXECUTING),
        STATUS_WORD("running", CO_EXECUTING),
        STATUS_WORD("SUCCESS", CO_SUCCEEDED),
        STATUS_WORD("FAIL", CO_FAILED),
        STATUS_WORD("FAILED", CO_FAILED),
        STATUS_WORD("ABORT", CO_TERMINATED),
        STATUS_WORD("TERMINATED", CO_TERMINATED),
        STATUS_WORD("WAIT_BATCH_CONFIRM", CO_WAITING_MANUAL),
        STATUS_WORD("AUTO_BATCH_WAIT", CO_WAITING_AUTO),
        STATUS_WORD("SYSTEM_FAIL", CO_SYSTEM_ERROR),
        STATUS_WORD("APPROVING", CO_PENDING_APPROVAL),
        STATUS_WORD("executing", CO_EXECUTING),
        STATUS_WORD("12", CO_APPROVED),
        STATUS_WORD("SOMETHING_NEW", CO_UNKNOWN),
        STATUS_WORD("99", CO_UNKNOWN),
        STATUS_WORD("-1", CO_UNKNOWN),
#undef STATUS_WORD
        { "app status: status number out of range", SAE_APP_STATUS,
          "{\"Data\":{\"LastChangeOrderRunning\":true,\"LastChangeOrderStatus\":4000000000}}",
          { .id = NULL, .in_flight = true, .status = CO_UNKNOWN } },

        /* SAE ListChangeOrders */
        { "sae list: empty", SAE_LIST, "{\"Data\":{\"ChangeOrderList\":[]}}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "sae list: list absent", SAE_LIST, "{\"Code\":200,\"Data\":{\"TotalSize\":0}}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "sae list: list null", SAE_LIST, "{\"Data\":{\"ChangeOrderList\":null}}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "sae list: items without id are skipped", SAE_LIST,
          "{\"Data\":{\"ChangeOrderList\":[{\"Status\":1,\"CreateTime\":9},{\"ChangeOrderId\":\"\",\"Status\":1},{\"ChangeOrderId\":\"co-2\",\"Status\":2,\"CreateTime\":5}]}}",
          { .id = "co-2", .in_flight = false, .status = CO_SUCCEEDED } },
        { "sae list: no CreateTime keeps list order", SAE_LIST,
          "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"co-1\",\"Status\":2},{\"ChangeOrderId\":\"co-2\",\"Status\":1},{\"ChangeOrderId\":\"co-3\",\"Status\":1}]}}",
          { .id = "co-2", .in_flight = true, .status = CO_EXECUTING } },
        { "sae list: equal CreateTime keeps list order", SAE_LIST,
          "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"co-1\",\"Status\":3,\"CreateTime\":7},{\"ChangeOrderId\":\"co-2\",\"Status\":3,\"CreateTime\":7}]}}",
          { .id = "co-1", .in_flight = false, .status = CO_FAILED } },
        { "sae list: oldest-first order, ms and strings mixed", SAE_LIST,
          "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"co-1\",\"Status\":1,\"CreateTime\":\"1716000000000\"},{\"ChangeOrderId\":\"co-2\",\"Status\":9,\"CreateTime\":1716100000000},{\"ChangeOrderId\":\"co-3\",\"Status\":2,\"CreateTime\":\"2024-05-20 10:15:00\"}]}}",
          { .id = "co-2", .in_flight = true, .status = CO_WAITING_AUTO } },
        { "sae list: pending approval is in flight", SAE_LIST,
          "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"co-1\",\"Status\":11}]}}",
          { .id = "co-1", .in_flight = true, .status = CO_PENDING_APPROVAL } },
        { "sae list: approved is in flight", SAE_LIST,
          "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"co-1\",\"Status\":\"12\"}]}}",
          { .id = "co-1", .in_flight = true, .status = CO_APPROVED } },
        { "sae list: preparing is in flight", SAE_LIST,
          "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"co-1\",\"Status\":0}]}}",
          { .id = "co-1", .in_flight = true, .status = CO_PREPARING } },
        { "sae list: unknown status is not in flight", SAE_LIST,
          "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"co-1\",\"Status\":null,\"CreateTime\":null}]}}",
          { .id = "co-1", .in_flight = false, .status = CO_UNKNOWN } },

        /* SAE DescribeChangeOrder */
        { "sae co: only an id", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"co-1\"}}",
          { .id = "co-1", CO_DEFAULTS } },
        { "sae co: everything else null", SAE_CHANGE_ORDER,
          "{\"Code\":null,\"Success\":null,\"Data\":{\"ChangeOrderId\":\"co-1\",\"AppId\":null,\"Status\":null,\"SubStatus\":null,\"CoTypeCode\":null,\"SupportRollback\":null,\"BatchCount\":null,\"BatchType\":null,\"BatchWaitTime\":null,\"CurrentPipelineId\":null,\"CreateTime\":null,\"Pipelines\":null}}",
          { .id = "co-1", CO_DEFAULTS } },
        { "sae co: numbers as strings", SAE_CHANGE_ORDER,
          "{\"Data\":{\"ChangeOrderId\":\"co-1\",\"Status\":\"1\",\"SubStatus\":\"1\",\"SupportRollback\":\"true\",\"BatchCount\":\"3\",\"BatchType\":\"auto\",\"BatchWaitTime\":\"10\",\"CreateTime\":\"1716171300000\"}}",
          { .id = "co-1", .status = CO_EXECUTING, .sub_status = SUB_ERROR, .support_rollback = 1, .batch_count = 3,
            .batch = BATCH_AUTO, .batch_wait = 10, .create_ms = 1716171300000 } },
        { "sae co: id as number, empty strings", SAE_CHANGE_ORDER,
          "{\"Data\":{\"ChangeOrderId\":42,\"Status\":\"\",\"SubStatus\":\"\",\"CreateTime\":\"\",\"BatchType\":\"\"}}",
          { .id = "42", CO_DEFAULTS } },
        { "sae co: BatchType Auto", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchType\":\"Auto\"}}",
          { .id = "c", CO_DEFAULTS, .batch = BATCH_AUTO } },
        { "sae co: BatchType automatic", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchType\":\"automatic\"}}",
          { .id = "c", CO_DEFAULTS, .batch = BATCH_AUTO } },
        { "sae co: BatchType manual", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchType\":\"manual\"}}",
          { .id = "c", CO_DEFAULTS, .batch = BATCH_MANUAL } },
        { "sae co: BatchType unheard of", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchType\":\"Canary\"}}",
          { .id = "c", CO_DEFAULTS, .batch = BATCH_UNKNOWN } },
        { "sae co: BatchType as number", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchType\":1}}",
          { .id = "c", CO_DEFAULTS, .batch = BATCH_UNKNOWN } },
        { "sae co: SubStatus 0", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"SubStatus\":0}}",
          { .id = "c", .status = CO_UNKNOWN, .support_rollback = -1, .sub_status = SUB_NORMAL } },
        { "sae co: SubStatus as word", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"SubStatus\":\"RUNNING_BUT_HAS_ERROR\"}}",
          { .id = "c", .status = CO_UNKNOWN, .support_rollback = -1, .sub_status = SUB_ERROR } },
        { "sae co: SubStatus unknown number", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"SubStatus\":7}}",
          { .id = "c", .status = CO_UNKNOWN, .support_rollback = -1, .sub_status = SUB_UNKNOWN } },
        { "sae co: SubStatus unknown word", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"SubStatus\":\"WEIRD\"}}",
          { .id = "c", .status = CO_UNKNOWN, .support_rollback = -1, .sub_status = SUB_UNKNOWN } },
        { "sae co: Status as word", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Status\":\"WAIT_BATCH_CONFIRM\"}}",
          { .id = "c", .sub_status = SUB_UNKNOWN, .support_rollback = -1, .status = CO_WAITING_MANUAL } },
        { "sae co: Status out of range", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Status\":64}}",
          { .id = "c", .sub_status = SUB_UNKNOWN, .support_rollback = -1, .status = CO_UNKNOWN } },
        { "sae co: Status as float that is whole", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Status\":3.0}}",
          { .id = "c", .sub_status = SUB_UNKNOWN, .support_rollback = -1, .status = CO_FAILED } },
        { "sae co: SupportRollback 0", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"SupportRollback\":0}}",
          { .id = "c", .status = CO_UNKNOWN, .sub_status = SUB_UNKNOWN, .support_rollback = 0 } },
        { "sae co: negative counts read as absent", SAE_CHANGE_ORDER,
          "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchCount\":-2,\"BatchWaitTime\":\"-5\",\"CreateTime\":-1}}",
          { .id = "c", CO_DEFAULTS } },
        { "sae co: console CreateTime", SAE_CHANGE_ORDER,
          "{\"Data\":{\"ChangeOrderId\":\"c\",\"CreateTime\":\"2000-01-01 00:00:00\"}}",
          { .id = "c", CO_DEFAULTS, .create_ms = 946656000000 } },
        { "sae co: empty pipelines", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[]}}",
          { .id = "c", CO_DEFAULTS } },
        { "sae co: pipeline with nothing in it", SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[{}]}}",
          { .id = "c", CO_DEFAULTS, .n_pipelines = 1, .p0_status = CO_UNKNOWN, .p0_update_ms = 0 } },
        { "sae co: pipeline numbers as strings", SAE_CHANGE_ORDER,
          "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[{\"PipelineId\":7,\"Status\":\"10\",\"StartTime\":\"\",\"UpdateTime\":\"1716171901000\",\"Junk\":{}}]}}",
          { .id = "c", CO_DEFAULTS, .n_pipelines = 1, .p0_status = CO_SYSTEM_ERROR, .p0_update_ms = 1716171901000 } },

        /* SAE AbortAndRollback / Abort */
        { "sae action: no Data", SAE_ACTION, "{\"Code\":\"200\",\"Success\":true}", { .id = NULL } },
        { "sae action: Data null", SAE_ACTION, "{\"Data\":null}", { .id = NULL } },
        { "sae action: Data empty", SAE_ACTION, "{\"Data\":{}}", { .id = NULL } },
        { "sae action: empty id", SAE_ACTION, "{\"Data\":{\"ChangeOrderId\":\"\"}}", { .id = NULL } },
        { "sae action: numeric id", SAE_ACTION, "{\"Data\":{\"ChangeOrderId\":77}}", { .id = "77" } },

        /* EDAS ListRecentChangeOrder */
        { "edas list: plain array", EDAS_LIST,
          "{\"Code\":200,\"ChangeOrderList\":[{\"ChangeOrderId\":\"co-1\",\"Status\":1,\"CreateTime\":\"2024-05-20 10:15:00\"}]}",
          { .id = "co-1", .in_flight = true, .status = CO_EXECUTING } },
        { "edas list: absent", EDAS_LIST, "{\"Code\":200,\"Message\":\"success\"}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "edas list: null", EDAS_LIST, "{\"ChangeOrderList\":null}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "edas list: inner list absent", EDAS_LIST, "{\"ChangeOrderList\":{}}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "edas list: inner list empty", EDAS_LIST, "{\"ChangeOrderList\":{\"ChangeOrder\":[]}}",
          { .id = NULL, .in_flight = false, .status = CO_UNKNOWN } },
        { "edas list: oldest first", EDAS_LIST,
          "{\"ChangeOrderList\":{\"ChangeOrder\":[{\"ChangeOrderId\":\"co-1\",\"Status\":8,\"CreateTime\":\"2024-05-18 23:59:59\"},{\"ChangeOrderId\":\"co-2\",\"Status\":\"0\",\"CreateTime\":\"2024-05-19 18:40:05\"},{\"ChangeOrderId\":\"co-3\",\"Status\":6,\"CreateTime\":\"2024-05-20 10:15:00\"}]}}",
          { .id = "co-2", .in_flight = true, .status = CO_PREPARING } },
        { "edas list: nothing in flight reports the newest", EDAS_LIST,
          "{\"ChangeOrderList\":{\"ChangeOrder\":[{\"ChangeOrderId\":\"co-1\",\"Status\":2,\"CreateTime\":\"2024-05-18 23:59:59\"},{\"ChangeOrderId\":\"co-2\",\"Status\":7,\"CreateTime\":\"2024-05-20 10:15:00\"}]}}",
          { .id = "co-2", .in_flight = false, .status = CO_PARTIAL } },
        { "edas list: 11 is not an EDAS in-flight status", EDAS_LIST,
          "{\"ChangeOrderList\":{\"ChangeOrder\":[{\"ChangeOrderId\":\"co-1\",\"Status\":11}]}}",
          { .id = "co-1", .in_flight = false, .status = CO_PENDING_APPROVAL } },
        { "edas list: unknown fields and BatchType ignored", EDAS_LIST,
          "{\"ChangeOrderList\":{\"ChangeOrder\":[{\"ChangeOrderId\":\"co-1\",\"Status\":9,\"BatchType\":{},\"Who\":[null]}]},\"PageSize\":\"x\"}",
          { .id = "co-1", .in_flight = true, .status = CO_WAITING_AUTO } },

        /* EDAS GetChangeOrderInfo */
        { "edas co: empty info", EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{}}",
          { .id = NULL, .status = CO_UNKNOWN, .sub_status = SUB_NORMAL, .support_rollback = -1 } },
        { "edas co: capitalised ChangeOrderInfo", EDAS_CHANGE_ORDER,
          "{\"ChangeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"Status\":2}}",
          { .id = "co-1", .status = CO_SUCCEEDED, .sub_status = SUB_NORMAL, .support_rollback = -1 } },
        { "edas co: lowercase info preferred over capitalised", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\"},\"ChangeOrderInfo\":{\"ChangeOrderId\":\"co-2\"}}",
          { .id = "co-1", .status = CO_UNKNOWN, .sub_status = SUB_NORMAL, .support_rollback = -1 } },
        { "edas co: null info falls back to capitalised", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":null,\"ChangeOrderInfo\":{\"ChangeOrderId\":\"co-2\"}}",
          { .id = "co-2", .status = CO_UNKNOWN, .sub_status = SUB_NORMAL, .support_rollback = -1 } },
        { "edas co: executing with a system-error batch", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"Status\":\"1\",\"PipelineInfoList\":{\"PipelineInfo\":[{\"PipelineStatus\":\"10\",\"UpdateTime\":\"5\"}]}}}",
          { .id = "co-1", .status = CO_EXECUTING, .sub_status = SUB_ERROR, .support_rollback = -1, .n_pipelines = 1,
            .p0_status = CO_SYSTEM_ERROR, .p0_update_ms = 5 } },
        { "edas co: executing with healthy batches", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"Status\":1,\"PipelineInfoList\":{\"PipelineInfo\":[{\"PipelineStatus\":2},{\"PipelineStatus\":1}]}}}",
          { .id = "co-1", .status = CO_EXECUTING, .sub_status = SUB_NORMAL, .support_rollback = -1, .n_pipelines = 2,
            .p0_status = CO_SUCCEEDED } },
        { "edas co: failed order with failed batch is not stuck", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"Status\":3,\"PipelineInfoList\":{\"PipelineInfo\":[{\"PipelineStatus\":3}]}}}",
          { .id = "co-1", .status = CO_FAILED, .sub_status = SUB_NORMAL, .support_rollback = -1, .n_pipelines = 1,
            .p0_status = CO_FAILED } },
        { "edas co: pipeline Status when PipelineStatus is absent", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"Status\":1,\"PipelineInfoList\":{\"PipelineInfo\":[{\"Status\":3}]}}}",
          { .id = "co-1", .status = CO_EXECUTING, .sub_status = SUB_ERROR, .support_rollback = -1, .n_pipelines = 1,
            .p0_status = CO_FAILED } },
        { "edas co: PipelineInfoList empty object", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"PipelineInfoList\":{}}}",
          { .id = "co-1", .status = CO_UNKNOWN, .sub_status = SUB_NORMAL, .support_rollback = -1 } },
        { "edas co: PipelineInfo null", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"PipelineInfoList\":{\"PipelineInfo\":null}}}",
          { .id = "co-1", .status = CO_UNKNOWN, .sub_status = SUB_NORMAL, .support_rollback = -1 } },
        { "edas co: numbers as strings, ms CreateTime", EDAS_CHANGE_ORDER,
          "{\"Code\":\"200\",\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"Status\":\"9\",\"SupportRollback\":\"1\",\"BatchCount\":\"4\",\"BatchType\":\"automatic\",\"CreateTime\":1716171300000,\"CoType\":\"Deploy\"}}",
          { .id = "co-1", .status = CO_WAITING_AUTO, .sub_status = SUB_NORMAL, .support_rollback = 1, .batch_count = 4,
            .batch = BATCH_AUTO, .create_ms = 1716171300000 } },
        { "edas co: BatchType MANUAL", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"BatchType\":\"MANUAL\",\"BatchWaitTime\":30}}",
          { .id = "co-1", .status = CO_UNKNOWN, .sub_status = SUB_NORMAL, .support_rollback = -1, .batch = BATCH_MANUAL } },
        { "edas co: status word", EDAS_CHANGE_ORDER,
          "{\"changeOrderInfo\":{\"ChangeOrderId\":\"co-1\",\"Status\":\"whatever\"}}",
          { .id = "co-1", .status = CO_UNKNOWN, .sub_status = SUB_NORMAL, .support_rollback = -1 } },

        /* EDAS actions */
        { "edas action: Data wins over top level", EDAS_ACTION,
          "{\"Data\":{\"ChangeOrderId\":\"co-data\"},\"ChangeOrderId\":\"co-top\"}", { .id = "co-data" } },
        { "edas action: top level when Data has none", EDAS_ACTION,
          "{\"Data\":{},\"ChangeOrderId\":\"co-top\"}", { .id = "co-top" } },
        { "edas action: neither", EDAS_ACTION, "{\"Code\":200,\"Message\":\"success\"}", { .id = NULL } },
        { "edas action: Data null", EDAS_ACTION, "{\"Data\":null,\"ChangeOrderId\":null}", { .id = NULL } },
};

static void check_expect(const char *row, parser_kind kind, const parsed *p, const expect *w) {
        if (is_activity(kind)) {
                CHECK_STR(row, "change_order_id", p->activity.change_order_id, w->id);
                CHECK_INT(row, "in_flight", p->activity.in_flight, w->in_flight);
                CHECK_INT(row, "status", p->activity.status, w->status);
        } else if (is_change_order(kind)) {
                const change_order *co = &p->co;
                CHECK_STR(row, "id", co->id, w->id);
                CHECK_INT(row, "status", co->status, w->status);
                CHECK_INT(row, "sub_status", co->sub_status, w->sub_status);
                CHECK_INT(row, "support_rollback", co->support_rollback, w->support_rollback);
                CHECK_INT(row, "batch_count", co->batch_count, w->batch_count);
                CHECK_INT(row, "batch_type", co->batch_type, w->batch);
                CHECK_INT(row, "batch_wait_minutes", co->batch_wait_minutes, w->batch_wait);
                CHECK_INT(row, "create_ms", co->create_ms, w->create_ms);
                CHECK_INT(row, "n_pipelines", co->n_pipelines, w->n_pipelines);
                if (w->n_pipelines > 0) {
                        CHECK_INT(row, "pipelines[0].status", co->pipelines[0].status, w->p0_status);
                        CHECK_INT(row, "pipelines[0].update_ms", co->pipelines[0].update_ms, w->p0_update_ms);
                }
        } else
                CHECK_STR(row, "change order id", p->action_id, w->id);
}

static void test_tolerant_cases(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(tolerant_cases); i++) {
                const struct tolerant_case *t = &tolerant_cases[i];
                _cleanup_cjson_ cJSON *root = parse_text(t->name, t->json);
                parsed p;
                parse_ok(t->name, t->kind, root, &p);
                check_expect(t->name, t->kind, &p, &t->want);
                parsed_done(&p);
        }
}

/* ---- malformed: -EBADMSG and a path a human can follow ---- */

#define TIME_ERROR ": expected milliseconds or \"YYYY-MM-DD HH:MM:SS\""

static const struct malformed_case {
        parser_kind kind;
        const char *json;
        const char *error;
} malformed_cases[] = {
        /* SAE describeApplicationStatus */
        { SAE_APP_STATUS, "[]", "response: expected a JSON object" },
        { SAE_APP_STATUS, "\"200\"", "response: expected a JSON object" },
        { SAE_APP_STATUS, "null", "response: expected a JSON object" },
        { SAE_APP_STATUS, "{}", "Data: missing" },
        { SAE_APP_STATUS, "{\"Code\":\"200\",\"Data\":null}", "Data: missing" },
        { SAE_APP_STATUS, "{\"Data\":[]}", "Data: expected an object" },
        { SAE_APP_STATUS, "{\"Data\":\"ok\"}", "Data: expected an object" },
        { SAE_APP_STATUS, "{\"Data\":{\"LastChangeOrderRunning\":\"maybe\"}}",
          "Data.LastChangeOrderRunning: expected a boolean" },
        { SAE_APP_STATUS, "{\"Data\":{\"LastChangeOrderRunning\":2}}", "Data.LastChangeOrderRunning: expected a boolean" },
        { SAE_APP_STATUS, "{\"Data\":{\"LastChangeOrderRunning\":{}}}", "Data.LastChangeOrderRunning: expected a boolean" },
        { SAE_APP_STATUS, "{\"Data\":{\"LastChangeOrderStatus\":true}}", "Data.LastChangeOrderStatus: expected a number" },
        { SAE_APP_STATUS, "{\"Data\":{\"LastChangeOrderStatus\":1.5}}", "Data.LastChangeOrderStatus: expected a number" },
        { SAE_APP_STATUS, "{\"Data\":{\"LastChangeOrderStatus\":[1]}}", "Data.LastChangeOrderStatus: expected a number" },
        { SAE_APP_STATUS, "{\"Data\":{\"LastChangeOrderId\":{}}}", "Data.LastChangeOrderId: expected a string" },
        { SAE_APP_STATUS, "{\"Data\":{\"LastChangeOrderId\":true}}", "Data.LastChangeOrderId: expected a string" },

        /* SAE ListChangeOrders */
        { SAE_LIST, "{\"Success\":true}", "Data: missing" },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":{}}}", "Data.ChangeOrderList: expected a list" },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":\"none\"}}", "Data.ChangeOrderList: expected a list" },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"a\"},\"b\"]}}",
          "Data.ChangeOrderList[1]: expected an object" },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":[null]}}", "Data.ChangeOrderList[0]: expected an object" },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"a\",\"Status\":[]}]}}",
          "Data.ChangeOrderList[0].Status: expected a number" },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":[]}]}}",
          "Data.ChangeOrderList[0].ChangeOrderId: expected a string" },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":[{},{\"ChangeOrderId\":\"a\",\"CreateTime\":\"yesterday\"}]}}",
          "Data.ChangeOrderList[1].CreateTime" TIME_ERROR },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"a\",\"CreateTime\":\"2024-13-01 00:00:00\"}]}}",
          "Data.ChangeOrderList[0].CreateTime" TIME_ERROR },
        { SAE_LIST, "{\"Data\":{\"ChangeOrderList\":[{\"ChangeOrderId\":\"a\",\"CreateTime\":true}]}}",
          "Data.ChangeOrderList[0].CreateTime" TIME_ERROR },

        /* SAE DescribeChangeOrder */
        { SAE_CHANGE_ORDER, "{\"Data\":[]}", "Data: expected an object" },
        { SAE_CHANGE_ORDER, "{\"Data\":{}}", "Data.ChangeOrderId: missing" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":null,\"Status\":1}}", "Data.ChangeOrderId: missing" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"\"}}", "Data.ChangeOrderId: missing" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":{}}}", "Data.ChangeOrderId: expected a string" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"AppId\":[]}}", "Data.AppId: expected a string" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"CoTypeCode\":false}}", "Data.CoTypeCode: expected a string" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Status\":{}}}", "Data.Status: expected a number" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"SubStatus\":true}}", "Data.SubStatus: expected a number" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"SupportRollback\":\"yes\"}}",
          "Data.SupportRollback: expected a boolean" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchCount\":\"three\"}}", "Data.BatchCount: expected a number" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchCount\":1e12}}", "Data.BatchCount: expected a number" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchType\":{}}}", "Data.BatchType: expected a string" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"BatchWaitTime\":2.5}}", "Data.BatchWaitTime: expected a number" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"CurrentPipelineId\":[]}}",
          "Data.CurrentPipelineId: expected a string" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"CreateTime\":\"2024-02-30 00:00:00\"}}",
          "Data.CreateTime" TIME_ERROR },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"CreateTime\":1e300}}", "Data.CreateTime" TIME_ERROR },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":{}}}", "Data.Pipelines: expected a list" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":\"[]\"}}", "Data.Pipelines: expected a list" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":5}}", "Data.Pipelines: expected a list" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[{},7]}}", "Data.Pipelines[1]: expected an object" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[{},{},{\"Status\":true}]}}",
          "Data.Pipelines[2].Status: expected a number" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[{\"PipelineId\":[]}]}}",
          "Data.Pipelines[0].PipelineId: expected a string" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[{\"PipelineId\":\"p\",\"PipelineName\":{}}]}}",
          "Data.Pipelines[0].PipelineName: expected a string" },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[{\"PipelineId\":\"p\",\"StartTime\":\"1.5\"}]}}",
          "Data.Pipelines[0].StartTime" TIME_ERROR },
        { SAE_CHANGE_ORDER, "{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[{\"PipelineId\":\"p\",\"UpdateTime\":\"soon\"}]}}",
          "Data.Pipelines[0].UpdateTime" TIME_ERROR },

        /* SAE actions */
        { SAE_ACTION, "[1]", "response: expected a JSON object" },
        { SAE_ACTION, "{\"Data\":\"1f7a3c9e\"}", "Data: expected an object" },
        { SAE_ACTION, "{\"Data\":{\"ChangeOrderId\":[]}}", "Data.ChangeOrderId: expected a string" },

        /* EDAS ListRecentChangeOrder */
        { EDAS_LIST, "42", "response: expected a JSON object" },
        { EDAS_LIST, "{\"ChangeOrderList\":\"x\"}", "ChangeOrderList: expected an object" },
        { EDAS_LIST, "{\"ChangeOrderList\":{\"ChangeOrder\":{}}}", "ChangeOrderList.ChangeOrder: expected a list" },
        { EDAS_LIST, "{\"ChangeOrderList\":{\"ChangeOrder\":[1]}}", "ChangeOrderList.ChangeOrder[0]: expected an object" },
        { EDAS_LIST, "{\"ChangeOrderList\":[{\"ChangeOrderId\":\"a\",\"Status\":{}}]}", "ChangeOrderList[0].Status: expected a number" },
        { EDAS_LIST, "{\"ChangeOrderList\":{\"ChangeOrder\":[{\"ChangeOrderId\":\"a\",\"CreateTime\":\"2024-05-20T10:15:00Z\"}]}}",
          "ChangeOrderList.ChangeOrder[0].CreateTime" TIME_ERROR },
        { EDAS_LIST, "{\"ChangeOrderList\":{\"ChangeOrder\":[{\"ChangeOrderId\":{\"id\":1}}]}}",
          "ChangeOrderList.ChangeOrder[0].ChangeOrderId: expected a string" },

        /* EDAS GetChangeOrderInfo */
        { EDAS_CHANGE_ORDER, "[]", "response: expected a JSON object" },
        { EDAS_CHANGE_ORDER, "{\"Code\":200,\"Message\":\"success\"}", "changeOrderInfo: missing" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":null}", "changeOrderInfo: missing" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":[]}", "changeOrderInfo: expected an object" },
        { EDAS_CHANGE_ORDER, "{\"ChangeOrderInfo\":\"x\"}", "ChangeOrderInfo: expected an object" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"ChangeOrderId\":[]}}", "changeOrderInfo.ChangeOrderId: expected a string" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"Status\":[]}}", "changeOrderInfo.Status: expected a number" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"SupportRollback\":\"perhaps\"}}",
          "changeOrderInfo.SupportRollback: expected a boolean" },
        { EDAS_CHANGE_ORDER, "{\"ChangeOrderInfo\":{\"BatchCount\":true}}", "ChangeOrderInfo.BatchCount: expected a number" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"CreateTime\":\"2024-05-20 24:00:00\"}}",
          "changeOrderInfo.CreateTime" TIME_ERROR },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"PipelineInfoList\":\"x\"}}",
          "changeOrderInfo.PipelineInfoList: expected an object" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"PipelineInfoList\":{\"PipelineInfo\":{}}}}",
          "changeOrderInfo.PipelineInfoList.PipelineInfo: expected a list" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"PipelineInfoList\":{\"PipelineInfo\":[{},{},{\"PipelineStatus\":true}]}}}",
          "changeOrderInfo.PipelineInfoList.PipelineInfo[2].PipelineStatus: expected a number" },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"PipelineInfoList\":{\"PipelineInfo\":[{\"StartTime\":\"abc\"}]}}}",
          "changeOrderInfo.PipelineInfoList.PipelineInfo[0].StartTime" TIME_ERROR },
        { EDAS_CHANGE_ORDER, "{\"changeOrderInfo\":{\"PipelineInfoList\":[5]}}",
          "changeOrderInfo.PipelineInfoList[0]: expected an object" },
        { EDAS_CHANGE_ORDER, "{\"ChangeOrderInfo\":{\"PipelineInfoList\":{\"PipelineInfo\":[{\"PipelineId\":{}}]}}}",
          "ChangeOrderInfo.PipelineInfoList.PipelineInfo[0].PipelineId: expected a string" },

        /* EDAS actions */
        { EDAS_ACTION, "[]", "response: expected a JSON object" },
        { EDAS_ACTION, "{\"Data\":[\"x\"]}", "Data: expected an object" },
        { EDAS_ACTION, "{\"Data\":{\"ChangeOrderId\":true}}", "Data.ChangeOrderId: expected a string" },
        { EDAS_ACTION, "{\"ChangeOrderId\":{}}", "ChangeOrderId: expected a string" },
};

static void test_malformed_cases(void **state) {
        static const parsed zero;
        for (size_t i = 0; i < ELEMENTSOF(malformed_cases); i++) {
                const struct malformed_case *t = &malformed_cases[i];
                char row[512];
                snprintf(row, sizeof row, "malformed #%zu %s", i, t->json);
                _cleanup_cjson_ cJSON *root = parse_text(row, t->json);
                parsed p = {};
                _cleanup_free_ char *error = NULL;
                int r = run_parser(t->kind, root, &p, &error);
                CHECK_INT(row, "return", r, -EBADMSG);
                CHECK_STR(row, "error", error, t->error);
                /* A failed parse hands nothing back. */
                CHECK(row, memcmp(&p, &zero, sizeof p) == 0);

                /* The error text is optional for the caller. */
                r = run_parser(t->kind, root, &p, NULL);
                CHECK_INT(row, "return without error text", r, -EBADMSG);
        }
}

/* ---- robustness: every node of every fixture replaced by every odd value ---- */

static const char *const fixtures[] = {
        "sae-describe-app-status-running.json", "sae-describe-app-status-idle.json",
        "sae-list-change-orders.json",          "sae-list-change-orders-idle.json",
        "sae-describe-change-order-stuck.json", "sae-describe-change-order-rollback.json",
        "sae-abort-and-rollback.json",          "edas-change-order-info.json",
        "edas-change-order-info-partial.json",  "edas-change-order-list.json",
        "edas-rollback.json",                   "edas-abort-and-rollback.json",
};

static cJSON *load_named_fixture(const char *name) {
        char path[512];
        snprintf(path, sizeof path, "%s/unit/fixtures/%s", TEST_SRCDIR, name);
        return load_fixture(path);
}

static size_t count_nodes(const cJSON *n) {
        size_t c = 1;
        for (const cJSON *child = n->child; child; child = child->next)
                c += count_nodes(child);
        return c;
}

/* Pre-order walk; *index counts down to the wanted node. */
static cJSON *nth_node(cJSON *n, size_t *index, cJSON **ret_parent) {
        for (cJSON *child = n->child; child; child = child->next) {
                if ((*index)-- == 0) {
                        *ret_parent = n;
                        return child;
                }
                cJSON *found = nth_node(child, index, ret_parent);
                if (found)
                        return found;
        }
        return NULL;
}

static cJSON *deep_nest(int depth) {
        cJSON *inner = cJSON_CreateObject();
        for (int i = 0; i < depth; i++) {
                cJSON *outer = i % 2 ? cJSON_CreateObject() : cJSON_CreateArray();
                if (cJSON_IsArray(outer))
                        cJSON_AddItemToArray(outer, inner);
                else
                        cJSON_AddItemToObject(outer, "Data", inner);
                inner = outer;
        }
        return inner;
}

static cJSON *make_odd_value(size_t which) {
        switch (which) {
        case 0: return cJSON_CreateNull();
        case 1: return cJSON_CreateTrue();
        case 2: return cJSON_CreateNumber(-1.5);
        case 3: return cJSON_CreateNumber(1e300);
        case 4: return cJSON_CreateString("");
        case 5: return cJSON_CreateString("2024-99-99 99:99:99");
        case 6: return cJSON_CreateArray();
        case 7: return cJSON_CreateObject();
        case 8: return cJSON_Parse("[{}, null, 1, \"x\", [[]]]");
        case 9: return deep_nest(200);
        default: return NULL;
        }
}
#define N_ODD_VALUES 10

static void run_all_parsers_survive(const char *row, const cJSON *root) {
        for (parser_kind k = 0; k < _PARSER_MAX; k++) {
                parsed p = { .activity.status = CO_UNKNOWN };
                char *error = NULL;
                int r = run_parser(k, root, &p, &error);
                if (r != 0 && r != -EBADMSG)
                        fail_msg("%s, parser %d: returned %d", row, (int)k, r);
                if (r < 0 && (!error || !*error))
                        fail_msg("%s, parser %d: failed without an error text", row, (int)k);
                if (r == 0 && error)
                        fail_msg("%s, parser %d: succeeded with error \"%s\"", row, (int)k, error);
                free(error);
                parsed_done(&p);
        }
}

static void test_mutated_fixtures_never_crash(void **state) {
        size_t runs = 0;
        for (size_t f = 0; f < ELEMENTSOF(fixtures); f++) {
                _cleanup_cjson_ cJSON *original = load_named_fixture(fixtures[f]);
                size_t n = count_nodes(original);
                run_all_parsers_survive(fixtures[f], original);
                for (size_t v = 0; v < N_ODD_VALUES; v++) {
                        _cleanup_cjson_ cJSON *as_root = make_odd_value(v);
                        assert_non_null(as_root);
                        run_all_parsers_survive("odd root", as_root);
                        for (size_t node = 1; node < n; node++) {
                                _cleanup_cjson_ cJSON *doc = cJSON_Duplicate(original, true);
                                assert_non_null(doc);
                                size_t index = node - 1;
                                cJSON *parent = NULL;
                                cJSON *victim = nth_node(doc, &index, &parent);
                                assert_non_null(victim);
                                cJSON *odd = make_odd_value(v);
                                assert_non_null(odd);
                                assert_true(cJSON_ReplaceItemViaPointer(parent, victim, odd));
                                char row[256];
                                snprintf(row, sizeof row, "%s node %zu value %zu", fixtures[f], node, v);
                                run_all_parsers_survive(row, doc);
                                runs++;
                        }
                }
        }
        assert_true(runs > 1000);
}

static void test_pipelines_are_capped(void **state) {
        _cleanup_cjson_ cJSON *sae = cJSON_Parse("{\"Data\":{\"ChangeOrderId\":\"c\",\"Pipelines\":[]}}");
        _cleanup_cjson_ cJSON *edas = cJSON_Parse("{\"changeOrderInfo\":{\"PipelineInfoList\":{\"PipelineInfo\":[]}}}");
        cJSON *sae_list = (cJSON *)json_path(sae, "Data.Pipelines");
        cJSON *edas_list = (cJSON *)json_path(edas, "changeOrderInfo.PipelineInfoList.PipelineInfo");
        assert_non_null(sae_list);
        assert_non_null(edas_list);
        for (int i = 0; i < 1500; i++) {
                cJSON *a = cJSON_CreateObject(), *b = cJSON_CreateObject();
                cJSON_AddNumberToObject(a, "Status", 2);
                cJSON_AddNumberToObject(b, "PipelineStatus", 2);
                cJSON_AddItemToArray(sae_list, a);
                cJSON_AddItemToArray(edas_list, b);
        }
        /* Entries past the cap are not even looked at. */
        cJSON_AddItemToArray(sae_list, cJSON_CreateString("not an object"));

        parsed p;
        parse_ok("sae cap", SAE_CHANGE_ORDER, sae, &p);
        assert_int_equal(p.co.n_pipelines, 1000);
        assert_int_equal(p.co.pipelines[999].status, CO_SUCCEEDED);
        parsed_done(&p);
        parse_ok("edas cap", EDAS_CHANGE_ORDER, edas, &p);
        assert_int_equal(p.co.n_pipelines, 1000);
        parsed_done(&p);
}

static void test_app_activity_done(void **state) {
        app_activity a = {};
        app_activity_done(&a);
        assert_null(a.change_order_id);
        app_activity_done(NULL);

        a = (app_activity){ .in_flight = true, .change_order_id = strdup("co-1"), .status = CO_EXECUTING };
        assert_non_null(a.change_order_id);
        app_activity_done(&a);
        assert_null(a.change_order_id);
        assert_false(a.in_flight);
        assert_int_equal(a.status, CO_UNKNOWN);
}

/* ---- request builders ---- */

typedef void (*builder_fn)(api_request *req, const char *arg);

static const struct builder_case {
        const char *name;
        builder_fn build;
        const char *method, *path, *action, *version;
        const char *param; /* the one that carries the argument, always first */
        size_t n_query;
} builder_cases[] = {
        { "sae describe app status", sae_req_describe_app_status, "GET", "/pop/v1/sam/app/describeApplicationStatus",
          "DescribeApplicationStatus", SAE_VERSION, "AppId", 1 },
        { "sae list change orders", sae_req_list_change_orders, "GET", "/pop/v1/sam/changeorder/ListChangeOrders",
          "ListChangeOrders", SAE_VERSION, "AppId", 3 },
        { "sae describe change order", sae_req_describe_change_order, "GET",
          "/pop/v1/sam/changeorder/DescribeChangeOrder", "DescribeChangeOrder", SAE_VERSION, "ChangeOrderId", 1 },
        { "sae abort and rollback", sae_req_abort_and_rollback, "PUT",
          "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder", "AbortAndRollbackChangeOrder", SAE_VERSION,
          "ChangeOrderId", 1 },
        { "sae abort", sae_req_abort, "PUT", "/pop/v1/sam/changeorder/AbortChangeOrder", "AbortChangeOrder",
          SAE_VERSION, "ChangeOrderId", 1 },
        { "edas list recent", edas_req_list_recent_change_orders, "POST", "/pop/v5/changeorder/change_order_list",
          "ListRecentChangeOrder", EDAS_VERSION, "AppId", 1 },
        { "edas change order info", edas_req_change_order_info, "POST", "/pop/v5/changeorder/change_order_info",
          "GetChangeOrderInfo", EDAS_VERSION, "ChangeOrderId", 1 },
        { "edas rollback", edas_req_rollback, "PUT", "/pop/v5/oam/changeorder/rollback", "RollbackChangeOrder",
          EDAS_VERSION, "ChangeOrderId", 1 },
        { "edas abort and rollback", edas_req_abort_and_rollback, "PUT",
          "/pop/v5/changeorder/change_order_abort_and_rollback", "AbortAndRollbackChangeOrder", EDAS_VERSION,
          "ChangeOrderId", 1 },
        { "edas abort", edas_req_abort, "PUT", "/pop/v5/changeorder/change_order_abort", "AbortChangeOrder",
          EDAS_VERSION, "ChangeOrderId", 1 },
};

static void test_request_builders(void **state) {
        assert_string_equal(SAE_VERSION, "2019-05-06");
        assert_string_equal(EDAS_VERSION, "2017-08-01");
        for (size_t i = 0; i < ELEMENTSOF(builder_cases); i++) {
                const struct builder_case *t = &builder_cases[i];
                char arg[] = "7171a6ca-d1cd-4928-8642-7d5cfe69d2a1";
                api_request req;
                memset(&req, 0xaa, sizeof req); /* builders must not rely on a zeroed struct */
                t->build(&req, arg);
                CHECK_STR(t->name, "method", req.method, t->method);
                CHECK_STR(t->name, "path", req.path, t->path);
                CHECK_STR(t->name, "action", req.action, t->action);
                CHECK_STR(t->name, "version", req.version, t->version);
                CHECK_INT(t->name, "n_query", req.n_query, t->n_query);
                CHECK_STR(t->name, "query[0].name", req.query[0].name, t->param);
                /* Points into the argument, no copy to free. */
                CHECK(t->name, req.query[0].value == arg);
                CHECK(t->name, !strchr(req.path, '?'));
        }

        api_request req;
        sae_req_list_change_orders(&req, "app-1");
        assert_string_equal(req.query[1].name, "CurrentPage");
        assert_string_equal(req.query[1].value, "1");
        assert_string_equal(req.query[2].name, "PageSize");
        assert_string_equal(req.query[2].value, "10");
}

/* ---- console time ---- */

static void test_edas_parse_time(void **state) {
        static const struct {
                const char *text;
                int ret;
                int64_t ms;
        } cases[] = {
                { "2024-05-20 10:15:00", 0, 1716171300000 },
                { "1970-01-01 08:00:00", 0, 0 },
                { "1970-01-01 00:00:00", 0, -28800000 },
                { "2000-01-01 00:00:00", 0, 946656000000 },
                { "2024-02-29 00:00:00", 0, 1709136000000 },
                { "2000-02-29 12:00:00", 0, 951796800000 },
                { "2024-12-31 23:59:59", 0, 1735660799000 },
                { "2023-02-29 00:00:00", -EINVAL, 0 },
                { "1900-02-29 00:00:00", -EINVAL, 0 },
                { "2024-04-31 00:00:00", -EINVAL, 0 },
                { "2024-00-10 00:00:00", -EINVAL, 0 },
                { "2024-13-10 00:00:00", -EINVAL, 0 },
                { "2024-05-00 00:00:00", -EINVAL, 0 },
                { "2024-05-20 24:00:00", -EINVAL, 0 },
                { "2024-05-20 10:60:00", -EINVAL, 0 },
                { "2024-05-20 10:15:60", -EINVAL, 0 },
                { "1969-12-31 23:59:59", -EINVAL, 0 },
                { "2024-05-20T10:15:00", -EINVAL, 0 },
                { "2024-05-20 10:15:00Z", -EINVAL, 0 },
                { "2024-05-20 10:15", -EINVAL, 0 },
                { "2024-5-20 10:15:00", -EINVAL, 0 },
                { " 2024-05-20 10:15:0", -EINVAL, 0 },
                { "2024-05-20 10:15:0a", -EINVAL, 0 },
                { "+024-05-20 10:15:00", -EINVAL, 0 },
                { "2024/05/20 10:15:00", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "1716171300000", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int64_t ms = 12345;
                int r = edas_parse_time(cases[i].text, &ms);
                CHECK_INT(cases[i].text, "return", r, cases[i].ret);
                CHECK_INT(cases[i].text, "ms", ms, cases[i].ret == 0 ? cases[i].ms : 12345);
        }
        int64_t ms;
        assert_int_equal(edas_parse_time(NULL, &ms), -EINVAL);
}

/* The item paths in error messages, built without printf. */
static void test_where_item(void **state) {
        static const struct {
                const char *prefix;
                size_t index, bufsz;
                const char *want;
        } rows[] = {
                { "Data.Pipelines", 0, 64, "Data.Pipelines[0]" },
                { "Data.Pipelines", 2, 64, "Data.Pipelines[2]" },
                { "ChangeOrderList.ChangeOrder", 1234567, 64, "ChangeOrderList.ChangeOrder[1234567]" },
                { "", 10, 64, "[10]" },
                { "Data.Pipelines", 7, 18, "Data.Pipelines[7]" },
                { "Data.Pipelines", 7, 17, "Data.Pipelines" }, /* no room: the prefix, cut */
                { "Data.Pipelines", 7, 5, "Data" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                char buf[64];
                assert_string_equal(json_where_item(buf, rows[i].bufsz, rows[i].prefix, rows[i].index), rows[i].want);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sae_app_status_running),
                cmocka_unit_test(test_sae_app_status_idle),
                cmocka_unit_test(test_sae_list_change_orders),
                cmocka_unit_test(test_sae_list_change_orders_idle),
                cmocka_unit_test(test_sae_change_order_stuck),
                cmocka_unit_test(test_sae_change_order_rollback),
                cmocka_unit_test(test_sae_action),
                cmocka_unit_test(test_edas_change_order_info),
                cmocka_unit_test(test_edas_change_order_info_partial),
                cmocka_unit_test(test_edas_change_order_list),
                cmocka_unit_test(test_edas_actions),
                cmocka_unit_test(test_tolerant_cases),
                cmocka_unit_test(test_malformed_cases),
                cmocka_unit_test(test_mutated_fixtures_never_crash),
                cmocka_unit_test(test_pipelines_are_capped),
                cmocka_unit_test(test_app_activity_done),
                cmocka_unit_test(test_request_builders),
                cmocka_unit_test(test_edas_parse_time),
                cmocka_unit_test(test_where_item),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
