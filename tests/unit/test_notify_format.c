/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "notify_answer.h"
#include "notify_format.h"
#include "util.h"

/* Expected signatures computed independently with Python's hmac module:
 *   dingtalk: quote(b64encode(hmac(secret, f"{ts}\n{secret}", sha256)), safe='')
 *   feishu:   b64encode(hmac(f"{ts}\n{secret}", b"", sha256)) */
static void test_sign_dingtalk(void **state) {
        static const struct {
                const char *secret;
                int64_t ts;
                const char *sign;
        } t[] = {
                { "SECtest0123", 1764623400000, "RaP1JDdCLn%2BNrjUtc757tfS9KcJyS%2FK3nsY9x14tj6o%3D" },
                { "this is secret", 1577836800000, "fFV9t5lBS7KH4%2B5B0JjR99ab%2BAJkXFauQXycgTkS%2Ftc%3D" },
                { "SEC+/=\xc3\xa9", 1, "hCIUYZu0%2F73Lx7MgKBm5v5%2FKNTxhEpjSnuE%2BKFezcYE%3D" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char out[NOTIFY_SIGN_MAX];
                assert_int_equal(notify_sign_dingtalk(t[i].secret, t[i].ts, out), 0);
                if (!streq(out, t[i].sign))
                        fail_msg("case %zu: got %s want %s", i, out, t[i].sign);
        }
}

static void test_sign_feishu(void **state) {
        static const struct {
                const char *secret;
                int64_t ts;
                const char *sign;
        } t[] = {
                { "feishu-secret", 1764623400, "5KbvuYN0w8mN7dYi6ya4bnMQtaJPE7ADySVl+IVH/YU=" },
                { "this is secret", 1599360473, "/eYKrXQBzTjUZJ3s6NX16VxGbTwmK7AEs8/FnvC1CSw=" },
                { "", 0, "53Dh/MqIJzmbXR1ky1eoAPGAmY2mY/DJucsfzM60KVk=" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char out[NOTIFY_SIGN_MAX];
                assert_int_equal(notify_sign_feishu(t[i].secret, t[i].ts, out), 0);
                if (!streq(out, t[i].sign))
                        fail_msg("case %zu: got %s want %s", i, out, t[i].sign);
        }
}

static void test_url(void **state) {
        static const struct {
                notify_type t;
                const char *url, *secret, *want;
        } t[] = {
                { NOTIFY_DINGTALK, "https://oapi.dingtalk.com/robot/send?access_token=tok", "SECtest0123",
                  "https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=1764623400000"
                  "&sign=RaP1JDdCLn%2BNrjUtc757tfS9KcJyS%2FK3nsY9x14tj6o%3D" },
                { NOTIFY_DINGTALK, "http://127.0.0.1:9/d", "SECtest0123",
                  "http://127.0.0.1:9/d?timestamp=1764623400000&sign=RaP1JDdCLn%2BNrjUtc757tfS9KcJyS%2FK3nsY9x14tj6o%3D" },
                { NOTIFY_DINGTALK, "https://x/robot/send?access_token=tok", NULL, "https://x/robot/send?access_token=tok" },
                { NOTIFY_FEISHU, "https://open.feishu.cn/open-apis/bot/v2/hook/abc", "s",
                  "https://open.feishu.cn/open-apis/bot/v2/hook/abc" },
                { NOTIFY_WECOM, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", NULL,
                  "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *u = NULL;
                assert_int_equal(notify_format_url(t[i].t, t[i].url, t[i].secret, 1764623400000, &u), 0);
                if (!streq(u, t[i].want))
                        fail_msg("case %zu: got %s want %s", i, u, t[i].want);
        }
}

static const notify_event ev_action = {
        .kind = NOTIFY_EV_ACTION,
        .app = "shop-api",
        .platform = "sae",
        .region = "cn-hangzhou",
        .app_id = "7171a6ca-d1cd-4928-8642-7d5cfe69a40e",
        .change_order = "co-123",
        .rule = "error-rate",
        .action = "rollback",
        .result = "accepted",
        .reason = "5xx ratio 7.2% over 5% for 1m",
        .rollback_change_order = "co-456",
        .time_ms = 1764623400000,
        .has_value = true,
        .value = 7.2,
        .threshold = 5,
};

static void test_console_url(void **state) {
        static const struct {
                const char *platform, *region, *app_id, *want;
        } t[] = {
                { "sae", "cn-hangzhou", "abc-1",
                  "https://sae.console.aliyun.com/#/AppList/AppDetail?appId=abc-1&regionId=cn-hangzhou" },
                { NULL, "cn-beijing", "x y",
                  "https://sae.console.aliyun.com/#/AppList/AppDetail?appId=x%20y&regionId=cn-beijing" },
                { "edas", "cn-shanghai", "e&1",
                  "https://edas.console.aliyun.com/#/app?appId=e%261&regionNo=cn-shanghai" },
                { "sae", NULL, "abc", NULL },
                { "sae", "cn-hangzhou", NULL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                notify_event e = { .platform = t[i].platform, .region = t[i].region, .app_id = t[i].app_id };
                _cleanup_free_ char *u = notify_console_url(&e);
                if (!streq_null(u, t[i].want))
                        fail_msg("case %zu: got %s want %s", i, strna(u), strna(t[i].want));
        }
}

static void test_summary(void **state) {
        const struct {
                notify_event e;
                const char *want;
        } t[] = {
                { ev_action, "shop-api: rollguard rolled back change order co-123 because 5xx ratio 7.2% over 5% "
                             "for 1m (value 7.2, threshold 5)" },
                { { .kind = NOTIFY_EV_ACTION_FAILED, .app = "a", .change_order = "c", .action = "abort",
                    .result = "refused: Forbidden", .reason = "r" },
                  "a: rollguard could not abort change order c (refused: Forbidden) because r" },
                { { .kind = NOTIFY_EV_UNCONFIRMED, .app = "a", .change_order = "c" },
                  "a: rollguard asked to roll back change order c but cannot confirm it took effect" },
                { { .kind = NOTIFY_EV_CIRCUIT_OPEN, .app = "a", .reason = "3 actions in 1h" },
                  "a: rollguard stopped acting (circuit open) because 3 actions in 1h" },
                { { .kind = NOTIFY_EV_UNOBSERVED, .app = "a", .change_order = "c", .reason = "API down" },
                  "a: change order c went by unwatched because API down" },
                { { .kind = NOTIFY_EV_DEGRADED, .app = NULL, .reason = "x\ny" },
                  "rollguard cannot watch this app because x y" },
                { { .kind = NOTIFY_EV_CIRCUIT_OPEN, .reason = "5 actions in the last hour" },
                  "rollguard stopped acting (circuit open) because 5 actions in the last hour" },
                { { .kind = NOTIFY_EV_TEST }, "rollguard test message: this channel works" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *s = notify_summary(&t[i].e);
                if (!streq(s, t[i].want))
                        fail_msg("case %zu:\n got %s\nwant %s", i, s, t[i].want);
        }
}

static cJSON *body_of(notify_type t, const notify_event *const *evs, size_t n, const char *secret) {
        _cleanup_free_ char *b = NULL;
        assert_int_equal(notify_format_body(t, evs, n, secret, 1764623400123, &b), 0);
        cJSON *j = cJSON_Parse(b);
        if (!j)
                fail_msg("not JSON: %s", b);
        return j;
}

static const char *str_at(const cJSON *j, const char *a, const char *b) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);
        if (b)
                v = cJSON_GetObjectItemCaseSensitive(v, b);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Every platform's message carries the same facts. */
static void assert_facts(const char *text) {
        static const char *const facts[] = {
                "shop-api: rollguard rolled back change order co-123", "co-123", "error-rate", "accepted",
                "co-456", "2025-12-01T21:10:00Z",
                "https://sae.console.aliyun.com/#/AppList/AppDetail?appId=7171a6ca-d1cd-4928-8642-7d5cfe69a40e&regionId=cn-hangzhou",
        };
        assert_non_null(text);
        for (size_t i = 0; i < ELEMENTSOF(facts); i++)
                if (!strstr(text, facts[i]))
                        fail_msg("missing %s in:\n%s", facts[i], text);
}

static void test_bodies(void **state) {
        const notify_event *one[] = { &ev_action };

        cJSON *j = body_of(NOTIFY_DINGTALK, one, 1, "SECx");
        assert_string_equal(str_at(j, "msgtype", NULL), "markdown");
        assert_string_equal(str_at(j, "markdown", "title"), "rollguard: Rolled back shop-api");
        assert_facts(str_at(j, "markdown", "text"));
        assert_null(cJSON_GetObjectItem(j, "sign")); /* DingTalk signs in the URL */
        cJSON_Delete(j);

        j = body_of(NOTIFY_WECOM, one, 1, NULL);
        assert_string_equal(str_at(j, "msgtype", NULL), "markdown");
        assert_facts(str_at(j, "markdown", "content"));
        cJSON_Delete(j);

        j = body_of(NOTIFY_FEISHU, one, 1, "feishu-secret");
        assert_string_equal(str_at(j, "timestamp", NULL), "1764623400");
        assert_string_equal(str_at(j, "sign", NULL), "5KbvuYN0w8mN7dYi6ya4bnMQtaJPE7ADySVl+IVH/YU=");
        assert_string_equal(str_at(j, "msg_type", NULL), "interactive");
        const cJSON *card = cJSON_GetObjectItem(j, "card");
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(card, "header"), "template")->valuestring, "red");
        const cJSON *el = cJSON_GetArrayItem(cJSON_GetObjectItem(card, "elements"), 0);
        assert_string_equal(str_at(el, "tag", NULL), "div");
        assert_string_equal(str_at(el, "text", "tag"), "lark_md");
        assert_facts(str_at(el, "text", "content"));
        cJSON_Delete(j);

        j = body_of(NOTIFY_FEISHU, one, 1, NULL);
        assert_null(cJSON_GetObjectItem(j, "sign"));
        assert_null(cJSON_GetObjectItem(j, "timestamp"));
        cJSON_Delete(j);

        j = body_of(NOTIFY_SLACK, one, 1, NULL);
        assert_non_null(strstr(str_at(j, "text", NULL), "shop-api: rollguard rolled back"));
        const cJSON *blocks = cJSON_GetObjectItem(j, "blocks");
        assert_int_equal(cJSON_GetArraySize(blocks), 2);
        assert_string_equal(str_at(cJSON_GetArrayItem(blocks, 0), "type", NULL), "header");
        const cJSON *sec = cJSON_GetArrayItem(blocks, 1);
        assert_string_equal(str_at(sec, "type", NULL), "section");
        assert_string_equal(str_at(sec, "text", "type"), "mrkdwn");
        assert_facts(str_at(sec, "text", "text"));
        assert_non_null(strstr(str_at(sec, "text", "text"), "|Open in the SAE console>"));
        cJSON_Delete(j);
}

static void test_webhook_document(void **state) {
        static const char *const keys[] = { "event", "app", "platform", "region", "app_id", "change_order",
                                            "rule", "action", "result", "reason", "rollback_change_order",
                                            "time", "console_url" };
        const notify_event *one[] = { &ev_action };
        cJSON *j = body_of(NOTIFY_WEBHOOK, one, 1, NULL);
        assert_int_equal(cJSON_GetArraySize(j), ELEMENTSOF(keys));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, keys[i])))
                        fail_msg("key %s missing or not a string", keys[i]);
        assert_string_equal(str_at(j, "event", NULL), "action");
        assert_string_equal(str_at(j, "time", NULL), "2025-12-01T21:10:00Z");
        assert_string_equal(str_at(j, "rollback_change_order", NULL), "co-456");
        cJSON_Delete(j);

        /* absent facts are null, never missing keys */
        notify_event bare = { .kind = NOTIFY_EV_DEGRADED, .app = "a" };
        const notify_event *b1[] = { &bare };
        j = body_of(NOTIFY_WEBHOOK, b1, 1, NULL);
        assert_int_equal(cJSON_GetArraySize(j), ELEMENTSOF(keys));
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "console_url")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "change_order")));
        cJSON_Delete(j);

        /* one document describes one event */
        const notify_event *two[] = { &ev_action, &ev_action };
        char *out = NULL;
        assert_int_equal(notify_format_body(NOTIFY_WEBHOOK, two, 2, NULL, 0, &out), -EINVAL);
        assert_null(out);
}

static void test_merge(void **state) {
        notify_event evs[8];
        const notify_event *p[8];
        char cos[8][8];
        for (size_t i = 0; i < 8; i++) {
                evs[i] = ev_action;
                snprintf(cos[i], sizeof cos[i], "co-m%zu", i);
                evs[i].change_order = cos[i];
                p[i] = &evs[i];
        }
        for (notify_type t = NOTIFY_DINGTALK; t < NOTIFY_WEBHOOK; t++) {
                _cleanup_free_ char *b = NULL;
                size_t n = t == NOTIFY_WECOM ? 2 : 3;
                assert_int_equal(notify_format_body(t, p, n, NULL, 0, &b), 0);
                for (size_t i = 0; i < n; i++)
                        if (!strstr(b, cos[i]))
                                fail_msg("%s: merged body lacks %s", notify_type_name(t), cos[i]);
                char title[32];
                snprintf(title, sizeof title, "rollguard: %zu events", n);
                assert_non_null(strstr(b, title));

                _cleanup_free_ char *big = NULL;
                assert_int_equal(notify_format_body(t, p, 8, NULL, 0, &big), 0);
                size_t shown = t == NOTIFY_WECOM ? NOTIFY_MERGE_DETAIL_MAX_WECOM : NOTIFY_MERGE_DETAIL_MAX;
                char more[32];
                snprintf(more, sizeof more, "and %zu more", 8 - shown);
                assert_non_null(strstr(big, more));
                assert_null(strstr(big, cos[shown]));
        }
}

/* WeCom caps markdown at 4096 bytes; the longest fields still fit. */
static void test_size_bound(void **state) {
        char huge[5000];
        memset(huge, 'x', sizeof huge - 1);
        huge[sizeof huge - 1] = 0;
        notify_event e = ev_action;
        e.reason = e.rule = e.result = e.app = huge;
        const notify_event *p[NOTIFY_MERGE_DETAIL_MAX + 2];
        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                p[i] = &e;
        for (size_t n = 1; n <= ELEMENTSOF(p); n++) {
                cJSON *j = body_of(NOTIFY_WECOM, p, n, NULL);
                size_t len = strlen(str_at(j, "markdown", "content"));
                if (len >= 4096)
                        fail_msg("%zu events: %zu bytes", n, len);
                cJSON_Delete(j);
        }
}

static void test_slack_escapes(void **state) {
        notify_event e = ev_action;
        e.reason = "a <b> & c";
        const notify_event *p[] = { &e };
        cJSON *j = body_of(NOTIFY_SLACK, p, 1, NULL);
        assert_non_null(strstr(str_at(j, "text", NULL), "a &lt;b&gt; &amp; c"));
        cJSON_Delete(j);
}

static void test_classify(void **state) {
        static const struct {
                notify_type t;
                long status;
                const char *body;
                notify_answer want;
        } t[] = {
                { NOTIFY_DINGTALK, 200, "{\"errcode\":0,\"errmsg\":\"ok\"}", NOTIFY_ANSWER_OK },
                { NOTIFY_DINGTALK, 200, "{\"errcode\":310000,\"errmsg\":\"sign not match\"}", NOTIFY_ANSWER_FAIL },
                { NOTIFY_DINGTALK, 200, "{\"errcode\":130101,\"errmsg\":\"send too fast\"}", NOTIFY_ANSWER_RETRY },
                { NOTIFY_DINGTALK, 200, "<html>", NOTIFY_ANSWER_FAIL },
                { NOTIFY_WECOM, 200, "{\"errcode\":0,\"errmsg\":\"ok\"}", NOTIFY_ANSWER_OK },
                { NOTIFY_WECOM, 200, "{\"errcode\":93000,\"errmsg\":\"invalid webhook url\"}", NOTIFY_ANSWER_FAIL },
                { NOTIFY_WECOM, 200, "{\"errcode\":45009,\"errmsg\":\"api freq out of limit\"}", NOTIFY_ANSWER_RETRY },
                { NOTIFY_FEISHU, 200, "{\"code\":0,\"msg\":\"success\",\"data\":{}}", NOTIFY_ANSWER_OK },
                { NOTIFY_FEISHU, 200, "{\"StatusCode\":0,\"StatusMessage\":\"success\"}", NOTIFY_ANSWER_OK },
                { NOTIFY_FEISHU, 200, "{\"code\":19021,\"msg\":\"sign match fail\"}", NOTIFY_ANSWER_FAIL },
                { NOTIFY_FEISHU, 200, "{\"code\":11232,\"msg\":\"frequency limited\"}", NOTIFY_ANSWER_RETRY },
                { NOTIFY_SLACK, 200, "ok", NOTIFY_ANSWER_OK },
                { NOTIFY_SLACK, 200, "invalid_blocks", NOTIFY_ANSWER_FAIL },
                { NOTIFY_SLACK, 404, "no_service", NOTIFY_ANSWER_FAIL },
                { NOTIFY_WEBHOOK, 204, NULL, NOTIFY_ANSWER_OK },
                { NOTIFY_WEBHOOK, 500, "", NOTIFY_ANSWER_RETRY },
                { NOTIFY_WEBHOOK, 503, "", NOTIFY_ANSWER_RETRY },
                { NOTIFY_WEBHOOK, 429, "", NOTIFY_ANSWER_RETRY },
                { NOTIFY_WEBHOOK, 400, "", NOTIFY_ANSWER_FAIL },
                { NOTIFY_FEISHU, 0, NULL, NOTIFY_ANSWER_RETRY },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char detail[128];
                notify_answer a = notify_classify_answer(t[i].t, t[i].status, t[i].body, detail, sizeof detail);
                if (a != t[i].want)
                        fail_msg("case %zu (%s %ld %s): got %d want %d (%s)", i, notify_type_name(t[i].t),
                                 t[i].status, strna(t[i].body), a, t[i].want, detail);
        }
}

static void test_channel(void **state) {
        char *apps[] = { "shop-api" };
        notify_channel c = { .name = "c", .type = NOTIFY_DINGTALK, .events = NOTIFY_EVENT_BIT(NOTIFY_EV_ACTION),
                             .apps = apps, .n_apps = 1 };
        assert_true(notify_channel_wants(&c, NOTIFY_EV_ACTION, "shop-api"));
        assert_false(notify_channel_wants(&c, NOTIFY_EV_ACTION, "other"));
        assert_false(notify_channel_wants(&c, NOTIFY_EV_DEGRADED, "shop-api"));
        assert_true(notify_channel_wants(&c, NOTIFY_EV_TEST, "other"));
        /* the breaker concerns every app: an apps list does not filter it */
        c.events |= NOTIFY_EVENT_BIT(NOTIFY_EV_CIRCUIT_OPEN);
        assert_true(notify_channel_wants(&c, NOTIFY_EV_CIRCUIT_OPEN, NULL));
        c.events = 0;
        c.n_apps = 0;
        assert_true(notify_channel_wants(&c, NOTIFY_EV_DEGRADED, NULL));
        for (int k = 0; k < _NOTIFY_EV_MAX; k++)
                assert_int_equal(notify_kind_from_string(notify_kind_name(k)), k);
        for (int k = 0; k < _NOTIFY_TYPE_MAX; k++)
                assert_int_equal(notify_type_from_string(notify_type_name(k)), k);
        assert_int_equal(notify_type_from_string("lark"), NOTIFY_FEISHU);
        assert_int_equal(notify_type_from_string("teams"), _NOTIFY_TYPE_INVALID);
        unsigned max;
        uint64_t period;
        notify_type_rate_limit(NOTIFY_WECOM, &max, &period);
        assert_int_equal(max, 20);
        assert_true(period == USEC_PER_MIN);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sign_dingtalk), cmocka_unit_test(test_sign_feishu),
                cmocka_unit_test(test_url),           cmocka_unit_test(test_console_url),
                cmocka_unit_test(test_summary),       cmocka_unit_test(test_bodies),
                cmocka_unit_test(test_webhook_document), cmocka_unit_test(test_merge),
                cmocka_unit_test(test_size_bound),    cmocka_unit_test(test_slack_escapes),
                cmocka_unit_test(test_classify),      cmocka_unit_test(test_channel),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
