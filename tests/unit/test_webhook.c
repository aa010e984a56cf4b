/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "token.h"
#include "util.h"
#include "webhook.h"

/* ---- webhook_parse_time ---- */

typedef struct time_case {
        const char *in;
        int rc;
        int64_t ms;
} time_case;

static const time_case time_cases[] = {
        { "2026-11-23T08:00:00Z", 0, INT64_C(1795420800000) },
        { "2026-11-23t08:00:00z", 0, INT64_C(1795420800000) },
        { "2026-11-23T08:00:00+00:00", 0, INT64_C(1795420800000) },
        { "2026-11-23T08:00:00-00:00", 0, INT64_C(1795420800000) },
        { "2026-11-23T16:00:00+08:00", 0, INT64_C(1795420800000) },
        { "2026-11-23T08:00:00.123+08:00", 0, INT64_C(1795392000123) },
        { "2026-11-23T08:00:00.123456789+08:00", 0, INT64_C(1795392000123) },
        { "2026-11-23T08:00:00.5Z", 0, INT64_C(1795420800500) },
        { "2026-11-23T08:00:00.0000000000001Z", 0, INT64_C(1795420800000) },
        { "2024-02-29T23:59:59.999-05:30", 0, INT64_C(1709270999999) },
        { "1969-12-31T23:59:59Z", 0, INT64_C(-1000) },
        { "9999-12-31T23:59:59Z", 0, INT64_C(253402300799000) },
        { "0002-01-01T00:00:00Z", 0, INT64_C(-62104060800000) },
        /* leap second: counted as the next minute's first second */
        { "2016-12-31T23:59:60Z", 0, INT64_C(1483228800000) },
        /* Alertmanager's "no known end" */
        { "0001-01-01T00:00:00Z", 0, 0 },
        { "0001-01-01T00:00:00.000000000Z", 0, 0 },
        /* the epoch itself is past, but 0 is reserved for "until resolved" */
        { "1970-01-01T00:00:00Z", 0, -1 },

        { "", -EINVAL, 0 },
        { "2026-11-23", -EINVAL, 0 },
        { "2026-11-23T08:00:00", -EINVAL, 0 },       /* offset is required */
        { "2026-11-23 08:00:00Z", -EINVAL, 0 },
        { "2026-11-23T08:00Z", -EINVAL, 0 },
        { "26-11-23T08:00:00Z", -EINVAL, 0 },
        { "+2026-11-23T08:00:00Z", -EINVAL, 0 },
        { "2026-13-01T00:00:00Z", -EINVAL, 0 },
        { "2026-00-01T00:00:00Z", -EINVAL, 0 },
        { "2026-11-00T00:00:00Z", -EINVAL, 0 },
        { "2026-11-31T00:00:00Z", -EINVAL, 0 },
        { "2025-02-29T00:00:00Z", -EINVAL, 0 },      /* not a leap year */
        { "2100-02-29T00:00:00Z", -EINVAL, 0 },      /* century, not leap */
        { "2026-11-23T24:00:00Z", -EINVAL, 0 },
        { "2026-11-23T08:60:00Z", -EINVAL, 0 },
        { "2026-11-23T08:00:61Z", -EINVAL, 0 },
        { "2026-11-23T08:00:00.Z", -EINVAL, 0 },
        { "2026-11-23T08:00:00+24:00", -EINVAL, 0 },
        { "2026-11-23T08:00:00+08:60", -EINVAL, 0 },
        { "2026-11-23T08:00:00+0800", -EINVAL, 0 },
        { "2026-11-23T08:00:00+08", -EINVAL, 0 },
        { "2026-11-23T08:00:00ZZ", -EINVAL, 0 },
        { "2026-11-23T08:00:00Z ", -EINVAL, 0 },
        { " 2026-11-23T08:00:00Z", -EINVAL, 0 },
        { "2026-1a-23T08:00:00Z", -EINVAL, 0 },
        { "2026-11-23T08:00:00,5Z", -EINVAL, 0 },
};

static void test_parse_time(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(time_cases); i++) {
                const time_case *c = &time_cases[i];
                int64_t ms = INT64_C(0x5a5a5a5a);
                int r = webhook_parse_time(c->in, &ms);
                if (r != c->rc || (r == 0 && ms != c->ms))
                        fail_msg("time row %zu \"%s\": rc %d ms %" PRId64 ", expected rc %d ms %" PRId64, i,
                                 c->in, r, ms, c->rc, c->ms);
                if (r < 0 && ms != INT64_C(0x5a5a5a5a))
                        fail_msg("time row %zu \"%s\": output written on failure", i, c->in);
        }
        assert_int_equal(webhook_parse_time(NULL, &(int64_t){ 0 }), -EINVAL);
}

/* ---- valid payloads ---- */

#define T_0800 INT64_C(1795420800000) /* 2026-11-23T08:00:00Z */

typedef struct alert_expect {
        bool firing;
        size_t n_labels;
        const char *label_name; /* one label that must be there ... */
        const char *label_value; /* ... with this value */
        int64_t starts_at_ms;
        int64_t ends_at_ms;
        const char *fingerprint; /* NULL: none expected */
} alert_expect;

typedef struct payload_case {
        const char *desc;
        const char *json;
        size_t n_alerts;
        alert_expect alerts[3];
} payload_case;

/* What Alertmanager 0.27 posts for one firing alert (webhook_config, max_alerts 0). */
static const char firing_single[] =
        "{\"receiver\":\"rollguard\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\","
        "\"labels\":{\"alertname\":\"HighErrorRate\",\"app\":\"shop-api\",\"instance\":\"10.0.3.7:8080\","
        "\"job\":\"shop-api\",\"severity\":\"critical\"},"
        "\"annotations\":{\"summary\":\"5xx ratio above 5% for 2m\",\"runbook_url\":\"https://runbooks/x\"},"
        "\"startsAt\":\"2026-11-23T08:00:00Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
        "\"generatorURL\":\"http://prometheus:9090/graph?g0.expr=rate%28x%5B5m%5D%29\","
        "\"fingerprint\":\"5ae47e1b42c5e3e1\"}],"
        "\"groupLabels\":{\"alertname\":\"HighErrorRate\"},"
        "\"commonLabels\":{\"alertname\":\"HighErrorRate\",\"app\":\"shop-api\",\"severity\":\"critical\"},"
        "\"commonAnnotations\":{\"summary\":\"5xx ratio above 5% for 2m\"},"
        "\"externalURL\":\"http://alertmanager:9093\",\"version\":\"4\","
        "\"groupKey\":\"{}/{app=~\\\"^(?:.*)$\\\"}:{alertname=\\\"HighErrorRate\\\"}\",\"truncatedAlerts\":0}";

static const char resolved_single[] =
        "{\"receiver\":\"rollguard\",\"status\":\"resolved\",\"alerts\":[{\"status\":\"resolved\","
        "\"labels\":{\"alertname\":\"HighErrorRate\",\"app\":\"shop-api\",\"severity\":\"critical\"},"
        "\"annotations\":{},\"startsAt\":\"2026-11-23T08:00:00Z\",\"endsAt\":\"2026-11-23T08:05:00Z\","
        "\"generatorURL\":\"\",\"fingerprint\":\"5ae47e1b42c5e3e1\"}],"
        "\"groupLabels\":{},\"commonLabels\":{},\"commonAnnotations\":{},"
        "\"externalURL\":\"http://alertmanager:9093\",\"version\":\"4\",\"groupKey\":\"{}:{}\","
        "\"truncatedAlerts\":0}\n";

/* A group: two firing, one resolved; fractional seconds and offsets as
 * Go's time.Time marshals them when Prometheus runs in a non-UTC zone. */
static const char grouped[] =
        "{\"receiver\":\"rollguard\",\"status\":\"firing\",\"alerts\":["
        "{\"status\":\"firing\",\"labels\":{\"alertname\":\"HighLatency\",\"app\":\"cart\"},"
        "\"annotations\":{\"summary\":\"p99 > 2s\"},\"startsAt\":\"2026-11-23T16:00:00.123456789+08:00\","
        "\"endsAt\":\"2026-11-23T17:00:00+08:00\",\"fingerprint\":\"aa01\"},"
        "{\"status\":\"firing\",\"labels\":{\"alertname\":\"HighLatency\",\"app\":\"checkout\",\"zone\":\"cn-hangzhou-h\"},"
        "\"annotations\":{},\"startsAt\":\"2026-11-23T02:30:00.5-05:30\","
        "\"endsAt\":\"0001-01-01T00:00:00Z\",\"fingerprint\":\"aa02\"},"
        "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"HighLatency\",\"app\":\"search\"},"
        "\"annotations\":{},\"startsAt\":\"2026-11-23T07:00:00Z\",\"endsAt\":\"2026-11-23T08:00:00Z\","
        "\"fingerprint\":\"aa03\"}],"
        "\"groupLabels\":{\"alertname\":\"HighLatency\"},\"commonLabels\":{\"alertname\":\"HighLatency\"},"
        "\"commonAnnotations\":{},\"externalURL\":\"http://am:9093\",\"version\":\"4\","
        "\"groupKey\":\"{}:{alertname=\\\"HighLatency\\\"}\",\"truncatedAlerts\":0}";

static const payload_case payload_cases[] = {
        { "single firing alert with Go zero endsAt", firing_single, 1,
          { { true, 5, "app", "shop-api", T_0800, 0, "5ae47e1b42c5e3e1" } } },
        { "single resolved alert", resolved_single, 1,
          { { false, 3, "alertname", "HighErrorRate", T_0800, T_0800 + 5 * 60000, "5ae47e1b42c5e3e1" } } },
        { "grouped payload, offsets and fractions", grouped, 3,
          { { true, 2, "app", "cart", T_0800 + 123, T_0800 + 3600000, "aa01" },
            { true, 3, "zone", "cn-hangzhou-h", T_0800 + 500, 0, "aa02" },
            { false, 2, "app", "search", T_0800 - 3600000, T_0800, "aa03" } } },
        { "firing without endsAt, startsAt or fingerprint",
          "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":\"X\"}}]}", 1,
          { { true, 1, "alertname", "X", 0, 0, NULL } } },
        { "null endsAt and empty fingerprint read as absent",
          "{\"alerts\":[{\"status\":\"firing\",\"labels\":{\"a\":\"b\"},\"endsAt\":null,\"fingerprint\":\"\"}]}", 1,
          { { true, 1, "a", "b", 0, 0, NULL } } },
        { "missing version is accepted",
          "{\"alerts\":[{\"status\":\"resolved\",\"labels\":{}}]}", 1,
          { { false, 0, NULL, NULL, 0, 0, NULL } } },
        { "empty alerts array", "{\"version\":\"4\",\"alerts\":[]}", 0, { { 0 } } },
        { "annotations of any shape are ignored",
          "{\"alerts\":[{\"status\":\"firing\",\"labels\":{\"app\":\"x\"},\"annotations\":[1,{\"a\":null}]}],\"extra\":true}",
          1, { { true, 1, "app", "x", 0, 0, NULL } } },
        { "whitespace around the document",
          " \r\n\t{\"alerts\":[]}\n\n", 0, { { 0 } } },
        { "UTF-8 in label values",
          "{\"alerts\":[{\"status\":\"firing\",\"labels\":{\"team\":\"\xe6\x94\xaf\xe4\xbb\x98\",\"u\":\"\\u00e9\"}}]}", 1,
          { { true, 2, "u", "\xc3\xa9", 0, 0, NULL } } },
};

static const char *find_label(const firing_alert *a, const char *name) {
        for (size_t i = 0; i < a->n_labels; i++)
                if (streq(a->labels[i].name, name))
                        return a->labels[i].value;
        return NULL;
}

static void test_parse_payloads(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(payload_cases); i++) {
                const payload_case *c = &payload_cases[i];
                webhook_batch b = { 0 };
                char *err = NULL;
                int r = webhook_parse(c->json, strlen(c->json), &b, &err);
                if (r != 0)
                        fail_msg("payload \"%s\": rc %d: %s", c->desc, r, strna(err));
                if (b.n_alerts != c->n_alerts)
                        fail_msg("payload \"%s\": %zu alerts, expected %zu", c->desc, b.n_alerts, c->n_alerts);
                for (size_t j = 0; j < c->n_alerts; j++) {
                        const webhook_alert *a = &b.alerts[j];
                        const alert_expect *x = &c->alerts[j];
                        if (a->firing != x->firing)
                                fail_msg("payload \"%s\" alert %zu: firing %d", c->desc, j, a->firing);
                        if (a->alert.n_labels != x->n_labels)
                                fail_msg("payload \"%s\" alert %zu: %zu labels, expected %zu", c->desc, j,
                                         a->alert.n_labels, x->n_labels);
                        if (x->label_name && !streq_null(find_label(&a->alert, x->label_name), x->label_value))
                                fail_msg("payload \"%s\" alert %zu: label %s is \"%s\"", c->desc, j,
                                         x->label_name, strna(find_label(&a->alert, x->label_name)));
                        if (a->starts_at_ms != x->starts_at_ms || a->alert.ends_at_ms != x->ends_at_ms)
                                fail_msg("payload \"%s\" alert %zu: starts %" PRId64 " ends %" PRId64, c->desc,
                                         j, a->starts_at_ms, a->alert.ends_at_ms);
                        if (!streq_null(a->fingerprint, x->fingerprint))
                                fail_msg("payload \"%s\" alert %zu: fingerprint %s", c->desc, j,
                                         strna(a->fingerprint));
                }
                webhook_batch_done(&b);
                assert_null(b.alerts);
                assert_int_equal(b.n_alerts, 0);
        }
}

/* ---- malformed payloads ---- */

typedef struct bad_case {
        const char *desc;
        const char *json;      /* or NULL: built by build() */
        char *(*build)(void);
        const char *error;     /* the exact reply text */
} bad_case;

static char *build_repeat(const char *head, const char *item, size_t n, const char *tail) {
        size_t hl = strlen(head), il = strlen(item), tl = strlen(tail);
        char *s = malloc(hl + n * (il + 1) + tl + 1);
        assert_non_null(s);
        char *p = s;
        memcpy(p, head, hl);
        p += hl;
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = ',';
                memcpy(p, item, il);
                p += il;
        }
        memcpy(p, tail, tl);
        p[tl] = '\0';
        return s;
}

static char *build_1001_alerts(void) {
        return build_repeat("{\"alerts\":[", "{\"status\":\"firing\",\"labels\":{}}", 1001, "]}");
}

static char *build_1000_alerts(void) {
        return build_repeat("{\"alerts\":[", "{\"status\":\"firing\",\"labels\":{\"a\":\"b\"}}", 1000, "]}");
}

static char *build_65_labels(void) {
        char *s = malloc(65 * 16 + 64);
        assert_non_null(s);
        size_t o = (size_t)sprintf(s, "{\"alerts\":[{\"status\":\"firing\",\"labels\":{");
        for (int i = 0; i < 65; i++)
                o += (size_t)sprintf(s + o, "%s\"l%d\":\"v\"", i ? "," : "", i);
        sprintf(s + o, "}}]}");
        return s;
}

static char *build_long_value(void) {
        char v[1026];
        memset(v, 'x', 1025);
        v[1025] = '\0';
        return strdup_printf("{\"alerts\":[{\"status\":\"firing\",\"labels\":{\"app\":\"%s\"}}]}", v);
}

static char *build_long_name(void) {
        char v[1026];
        memset(v, 'n', 1025);
        v[1025] = '\0';
        return strdup_printf("{\"alerts\":[{\"status\":\"firing\",\"labels\":{\"%s\":\"v\"}}]}", v);
}

#define A0(rest) "{\"version\":\"4\",\"alerts\":[" rest "]}"
#define OK_ALERT "{\"status\":\"firing\",\"labels\":{\"app\":\"x\"}}"

static const bad_case bad_cases[] = {
        { "empty body", "", NULL, "empty body" },
        { "not JSON", "hello", NULL, "malformed JSON near byte 0" },
        { "truncated", "{\"alerts\":[{\"status\":\"fir", NULL, "malformed JSON near byte 22" }, /* the unclosed string */
        { "trailing garbage", "{\"alerts\":[]} x", NULL, "malformed JSON near byte 14" },
        { "two documents", "{\"alerts\":[]}{}", NULL, "malformed JSON near byte 13" },
        { "top-level array", "[]", NULL, "expected a JSON object at the top level" },
        { "top-level string", "\"alerts\"", NULL, "expected a JSON object at the top level" },
        { "version 3", "{\"version\":\"3\",\"alerts\":[]}", NULL, "version: expected \"4\", got \"3\"" },
        { "version as a number", "{\"version\":4,\"alerts\":[]}", NULL, "version: expected a string" },
        { "version with a control character", "{\"version\":\"4\\n\",\"alerts\":[]}", NULL,
          "version: expected \"4\", got \"4?\"" },
        { "alerts missing", "{\"version\":\"4\"}", NULL, "alerts: missing" },
        { "alerts null", "{\"alerts\":null}", NULL, "alerts: missing" },
        { "alerts an object", "{\"alerts\":{}}", NULL, "alerts: expected an array" },
        { "alert not an object", A0(OK_ALERT ",\"x\""), NULL, "alerts[1]: expected an object" },
        { "status missing", A0("{\"labels\":{}}"), NULL, "alerts[0].status: missing" },
        { "status a number", A0("{\"status\":1,\"labels\":{}}"), NULL, "alerts[0].status: expected a string" },
        { "status pending", A0("{\"status\":\"pending\",\"labels\":{}}"), NULL,
          "alerts[0].status: expected \"firing\" or \"resolved\"" },
        { "labels missing", A0(OK_ALERT "," OK_ALERT ",{\"status\":\"firing\"}"), NULL,
          "alerts[2].labels: missing" },
        { "labels an array", A0("{\"status\":\"firing\",\"labels\":[]}"), NULL,
          "alerts[0].labels: expected an object" },
        { "label value a number", A0(OK_ALERT "," OK_ALERT ",{\"status\":\"firing\",\"labels\":{\"app\":1}}"), NULL,
          "alerts[2].labels.app: expected a string" },
        { "label value null", A0("{\"status\":\"firing\",\"labels\":{\"app\":null}}"), NULL,
          "alerts[0].labels.app: expected a string" },
        { "label value an object", A0("{\"status\":\"firing\",\"labels\":{\"team\":{\"a\":\"b\"}}}"), NULL,
          "alerts[0].labels.team: expected a string" },
        { "label name with control characters is not echoed raw",
          A0("{\"status\":\"firing\",\"labels\":{\"a\\u0001\\nb\":true}}"), NULL,
          "alerts[0].labels.a??b: expected a string" },
        { "empty label name", A0("{\"status\":\"firing\",\"labels\":{\"\":\"v\"}}"), NULL,
          "alerts[0].labels: empty label name" },
        { "duplicate label", A0("{\"status\":\"firing\",\"labels\":{\"app\":\"a\",\"app\":\"b\"}}"), NULL,
          "alerts[0].labels.app: duplicate label" },
        { "startsAt not a time", A0("{\"status\":\"firing\",\"labels\":{},\"startsAt\":\"yesterday\"}"), NULL,
          "alerts[0].startsAt: not an RFC 3339 time" },
        { "endsAt a number", A0("{\"status\":\"firing\",\"labels\":{},\"endsAt\":0}"), NULL,
          "alerts[0].endsAt: expected a string" },
        { "endsAt out of range", A0("{\"status\":\"firing\",\"labels\":{},\"endsAt\":\"2026-02-30T00:00:00Z\"}"),
          NULL, "alerts[0].endsAt: not an RFC 3339 time" },
        { "fingerprint a number", A0("{\"status\":\"firing\",\"labels\":{},\"fingerprint\":12}"), NULL,
          "alerts[0].fingerprint: expected a string" },
        /* issue 12: cJSON ends a C string at a decoded NUL, so these read as "ok0" */
        { "NUL in a label value", A0("{\"status\":\"firing\",\"labels\":{\"app\":\"ok0\\u0000evil\"}}"), NULL,
          "alerts[0].labels.app: the value contains a NUL character" },
        { "NUL in a label name", A0("{\"status\":\"firing\",\"labels\":{\"a\\u0000b\":\"v\"}}"), NULL,
          "alerts[0].labels.a?u0000b: the label name contains a NUL character" },
        { "NUL in the fingerprint", A0("{\"status\":\"firing\",\"labels\":{},\"fingerprint\":\"ab\\u0000\"}"),
          NULL, "alerts[0].fingerprint: contains a NUL character" },
        { "NUL after firing", A0("{\"status\":\"firing\\u0000x\",\"labels\":{}}"), NULL,
          "alerts[0].status: expected \"firing\" or \"resolved\"" },
        { "invalid UTF-8 byte", A0("{\"status\":\"firing\",\"labels\":{\"app\":\"a\xff\"}}"), NULL,
          "alerts[0].labels.app: the value is not valid UTF-8" },
        { "overlong NUL", A0("{\"status\":\"firing\",\"labels\":{\"app\":\"a\xc0\x80\"}}"), NULL,
          "alerts[0].labels.app: the value is not valid UTF-8" },
        { "UTF-8 surrogate", A0("{\"status\":\"firing\",\"labels\":{\"app\":\"\xed\xa0\x80\"}}"), NULL,
          "alerts[0].labels.app: the value is not valid UTF-8" },
        { "cut UTF-8 sequence", A0("{\"status\":\"firing\",\"labels\":{\"app\":\"\xe2\x82\"}}"), NULL,
          "alerts[0].labels.app: the value is not valid UTF-8" },
        { "past U+10FFFF", A0("{\"status\":\"firing\",\"labels\":{\"app\":\"\xf4\x90\x80\x80\"}}"), NULL,
          "alerts[0].labels.app: the value is not valid UTF-8" },
        { "invalid UTF-8 in a name", A0("{\"status\":\"firing\",\"labels\":{\"\xfe\":\"v\"}}"), NULL,
          "alerts[0].labels.?: the label name is not valid UTF-8" },
        { "1001 alerts", NULL, build_1001_alerts, "alerts: more than 1000 alerts in one payload" },
        { "65 labels", NULL, build_65_labels, "alerts[0].labels: more than 64 labels" },
        { "label value over 1 KiB", NULL, build_long_value, "alerts[0].labels.app: value longer than 1024 bytes" },
        { "label name over 1 KiB", NULL, build_long_name,
          "alerts[0].labels.nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...: "
          "label name longer than 1024 bytes" },
};

static void test_parse_malformed(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const bad_case *c = &bad_cases[i];
                _cleanup_free_ char *built = c->build ? c->build() : NULL;
                const char *json = built ? built : c->json;
                webhook_batch b = { .alerts = NULL, .n_alerts = 0 };
                char *err = NULL;
                int r = webhook_parse(json, strlen(json), &b, &err);
                if (r != -EBADMSG || !streq_null(err, c->error))
                        fail_msg("malformed \"%s\": rc %d error \"%s\", expected \"%s\"", c->desc, r, strna(err),
                                 c->error);
                if (b.alerts || b.n_alerts)
                        fail_msg("malformed \"%s\": output touched on failure", c->desc);
                free(err);
        }
}

/* What the NUL check must leave alone: an escaped backslash before "u0000",
 * real UTF-8 up to 4 bytes, and a NUL in a field nobody reads. A raw NUL
 * byte is never JSON. */
static void test_parse_text_kept(void **state) {
        (void)state;
        static const char json[] = A0("{\"status\":\"firing\",\"labels\":{\"app\":\"a\\\\u0000\","
                                      "\"team\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80 \\u00e9\"},"
                                      "\"annotations\":{\"summary\":\"x\\u0000y\"}}");
        webhook_batch b = { 0 };
        char *err = NULL;
        assert_int_equal(webhook_parse(json, strlen(json), &b, &err), 0);
        assert_null(err);
        assert_int_equal(b.n_alerts, 1);
        assert_string_equal(b.alerts[0].alert.labels[0].value, "a\\u0000");
        assert_string_equal(b.alerts[0].alert.labels[1].value, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80 \xc3\xa9");
        webhook_batch_done(&b);

        static const char raw_nul[] = "{\"alerts\":[]}\0";
        assert_int_equal(webhook_parse(raw_nul, sizeof raw_nul - 1, &b, &err), -EBADMSG);
        assert_string_equal(err, "malformed JSON near byte 13");
        free(err);
}

static void test_parse_limits_inclusive(void **state) {
        (void)state;
        _cleanup_free_ char *s = build_1000_alerts();
        webhook_batch b = { 0 };
        char *err = NULL;
        assert_int_equal(webhook_parse(s, strlen(s), &b, &err), 0);
        assert_int_equal(b.n_alerts, 1000);
        webhook_batch_done(&b);
}

static void test_parse_edge_inputs(void **state) {
        (void)state;
        webhook_batch b = { 0 };
        char *err = NULL;

        /* NULL body, no error wanted: no crash, no leak */
        assert_int_equal(webhook_parse(NULL, 0, &b, NULL), -EBADMSG);
        assert_int_equal(webhook_parse("{", 1, &b, NULL), -EBADMSG);

        /* the length is honoured: the tail past len is not part of the body */
        const char *s = "{\"alerts\":[]}GARBAGE";
        assert_int_equal(webhook_parse(s, 13, &b, &err), 0);
        webhook_batch_done(&b);

        /* an embedded NUL ends nothing early and is no crash */
        const char nul[] = "{\"alerts\":[]}\0";
        assert_int_equal(webhook_parse(nul, sizeof nul - 1, &b, &err), -EBADMSG);
        assert_string_equal(err, "malformed JSON near byte 13");
        free(err);

        /* deep nesting is refused by cJSON's limit, not by a stack overflow */
        char deep[4096];
        size_t o = (size_t)sprintf(deep, "{\"alerts\":[{\"status\":\"firing\",\"labels\":{},\"annotations\":");
        while (o < 2000)
                deep[o++] = '[';
        deep[o] = '\0';
        err = NULL;
        assert_int_equal(webhook_parse(deep, o, &b, &err), -EBADMSG);
        assert_non_null(strstr(err, "malformed JSON near byte"));
        free(err);
}

/* A poor man's fuzz pass that runs everywhere (valgrind included): every
 * prefix and every single-byte flip of the real payloads must parse or fail
 * cleanly with a reason. */
static void test_parse_never_crashes(void **state) {
        (void)state;
        const char *seeds[] = { firing_single, resolved_single, grouped };
        static const char flips[] = { '"', '{', '}', '[', ']', ',', ':', '\\', '0', 'x', '\0', (char)0xff };
        for (size_t si = 0; si < ELEMENTSOF(seeds); si++) {
                size_t len = strlen(seeds[si]);
                _cleanup_free_ char *buf = malloc(len);
                assert_non_null(buf);
                for (size_t cut = 0; cut <= len; cut++) {
                        webhook_batch b = { 0 };
                        char *err = NULL;
                        int r = webhook_parse(seeds[si], cut, &b, &err);
                        if (r != 0 && (r != -EBADMSG || !err))
                                fail_msg("seed %zu cut %zu: rc %d", si, cut, r);
                        webhook_batch_done(&b);
                        free(err);
                }
                for (size_t pos = 0; pos < len; pos++)
                        for (size_t f = 0; f < ELEMENTSOF(flips); f++) {
                                memcpy(buf, seeds[si], len);
                                buf[pos] = flips[f];
                                webhook_batch b = { 0 };
                                char *err = NULL;
                                int r = webhook_parse(buf, len, &b, &err);
                                if (r != 0 && (r != -EBADMSG || !err))
                                        fail_msg("seed %zu pos %zu flip %zu: rc %d", si, pos, f, r);
                                webhook_batch_done(&b);
                                free(err);
                        }
        }
}

/* ---- the listener's bearer check ---- */

static void test_token_check(void **state) {
        static const char token[] = "s3cr3t-T0ken";
        static const struct {
                const char *header;
                bool ok;
        } t[] = {
                { "Bearer s3cr3t-T0ken", true },
                { "bearer s3cr3t-T0ken", true },        /* the scheme is case-insensitive */
                { "BEARER\ts3cr3t-T0ken", true },
                { "  Bearer   s3cr3t-T0ken \t", true }, /* blanks around are not the token */
                { "Bearer s3cr3t-t0ken", false },       /* the token is not */
                { "Bearer s3cr3t-T0ke", false },
                { "Bearer s3cr3t-T0kenX", false },
                { "Bearer", false },
                { "Bearer ", false },
                { "Bearers3cr3t-T0ken", false },
                { "Basic s3cr3t-T0ken", false },
                { "s3cr3t-T0ken", false },
                { "Bearer s3cr3t-T0ken s3cr3t-T0ken", false },
                { "", false },
                { NULL, false },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (token_check(token, strlen(token), t[i].header) != t[i].ok)
                        fail_msg("token_check(%s) should be %s", strna(t[i].header), t[i].ok ? "true" : "false");
        /* no token configured: nothing passes */
        assert_false(token_check(NULL, 0, "Bearer "));
        assert_false(token_check(NULL, 0, "Bearer x"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_time),
                cmocka_unit_test(test_parse_payloads),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test(test_parse_limits_inclusive),
                cmocka_unit_test(test_parse_text_kept),
                cmocka_unit_test(test_parse_edge_inputs),
                cmocka_unit_test(test_parse_never_crashes),
                cmocka_unit_test(test_token_check),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
