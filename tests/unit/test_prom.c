/* SPDX-License-Identifier: MIT */
/* The Prometheus answer parser, threshold and template tables; then the
 * query client end to end against a tiny HTTP server on the same sd_event
 * loop (headers, token file, one query in flight, unreachable, timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "prom.h"
#include "prom_parse.h"
#include "prom_template.h"
#include "util.h"

/* ---- prom_parse_response ---- */

typedef struct parse_case {
        const char *name;
        long status;
        const char *body;
        prom_reason reason;
        double value;         /* checked when reason == PROM_OK */
        const char *contains; /* in text (NULL: text must be "" for OK) */
        size_t n_series;
} parse_case;

#define VEC1(v) "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"app\":\"a\"},\"value\":[1764620000.5,\"" v "\"]}]}}"

static const parse_case parse_cases[] = {
        { "vector of one", 200, VEC1("0.0731"), PROM_OK, 0.0731, NULL, 1 },
        { "zero", 200, VEC1("0"), PROM_OK, 0, NULL, 1 },
        { "negative exponent", 200, VEC1("-1.5e-3"), PROM_OK, -0.0015, NULL, 1 },
        { "value as a JSON number", 200,
          "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1,2.5]}]}}",
          PROM_OK, 2.5, NULL, 1 },
        { "scalar", 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1764620000,\"42\"]}}",
          PROM_OK, 42, NULL, 0 },
        { "warnings are ignored", 200,
          "{\"status\":\"success\",\"warnings\":[\"x\"],\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1,\"1\"]}]}}",
          PROM_OK, 1, NULL, 1 },
        { "unknown fields are ignored", 200,
          "{\"status\":\"success\",\"isPartial\":false,\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"7\"],\"stats\":{}}}",
          PROM_OK, 7, NULL, 0 },

        { "empty vector", 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
          PROM_EMPTY, 0, "no series", 0 },
        { "NaN", 200, VEC1("NaN"), PROM_NOT_FINITE, 0, "NaN", 1 },
        { "+Inf", 200, VEC1("+Inf"), PROM_NOT_FINITE, 0, "+Inf", 1 },
        { "-Inf", 200, VEC1("-Inf"), PROM_NOT_FINITE, 0, "-Inf", 1 },
        { "overflow", 200, VEC1("1e999"), PROM_NOT_FINITE, 0, "Inf", 1 },
        { "scalar NaN", 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"NaN\"]}}",
          PROM_NOT_FINITE, 0, "NaN", 0 },
        { "two series", 200,
          "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
          "{\"metric\":{\"app\":\"a\",\"code\":\"200\"},\"value\":[1,\"1\"]},"
          "{\"metric\":{\"app\":\"a\",\"code\":\"500\"},\"value\":[1,\"2\"]}]}}",
          PROM_MANY_SERIES, 0, "2 series, expected one (aggregate with sum/max by nothing); the first is {app=\"a\",code=\"200\"}", 2 },
        { "matrix", 200,
          "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[[1,\"1\"]]}]}}",
          PROM_WRONG_TYPE, 0, "range vector", 0 },
        { "string", 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[1,\"x\"]}}",
          PROM_WRONG_TYPE, 0, "a string", 0 },
        { "native histogram", 200,
          "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"histogram\":[1,{\"count\":\"1\"}]}]}}",
          PROM_WRONG_TYPE, 0, "native histogram", 1 },

        { "bad_data with 400", 400,
          "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter \\\"query\\\": 1:10: parse error: unclosed left parenthesis\"}",
          PROM_QUERY_ERROR, 0, "query error (bad_data, HTTP 400): invalid parameter \"query\": 1:10: parse error: unclosed left parenthesis", 0 },
        { "execution with 422", 422,
          "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":\"many-to-many matching not allowed\"}",
          PROM_QUERY_ERROR, 0, "(execution, HTTP 422): many-to-many", 0 },
        { "error with 200", 200, "{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":\"query timed out\"}",
          PROM_QUERY_ERROR, 0, "query error (timeout): query timed out", 0 },
        { "error without text", 503, "{\"status\":\"error\"}", PROM_QUERY_ERROR, 0, "(no error text)", 0 },
        { "error text with a newline", 400,
          "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"line1\\nline2\"}",
          PROM_QUERY_ERROR, 0, "line1 line2", 0 },

        { "401 from a proxy", 401, "<html>401 Authorization Required</html>", PROM_HTTP_STATUS, 0,
          "HTTP 401: the server refused the credentials (check prometheus.token_file): <html>401", 0 },
        { "502 empty", 502, "", PROM_HTTP_STATUS, 0, "HTTP 502 from the server", 0 },
        { "404 JSON but not the API", 404, "{\"message\":\"no route\"}", PROM_HTTP_STATUS, 0,
          "HTTP 404 from the server: {\"message\"", 0 },

        { "empty body", 200, "", PROM_MALFORMED, 0, "empty body", 0 },
        { "HTML with 200", 200, "<html>login</html>", PROM_MALFORMED, 0, "not JSON", 0 },
        { "JSON without status", 200, "{\"data\":{}}", PROM_MALFORMED, 0, "no \"status\"", 0 },
        { "a list", 200, "[1,2]", PROM_MALFORMED, 0, "no \"status\"", 0 },
        { "odd status", 200, "{\"status\":\"partial\"}", PROM_MALFORMED, 0, "status \"partial\"", 0 },
        { "no data", 200, "{\"status\":\"success\"}", PROM_MALFORMED, 0, "no data.resultType", 0 },
        { "unknown type", 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"tensor\",\"result\":[]}}",
          PROM_MALFORMED, 0, "unknown resultType \"tensor\"", 0 },
        { "result not a list", 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}",
          PROM_MALFORMED, 0, "not a list", 0 },
        { "sample not a pair", 200,
          "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1]}]}}",
          PROM_MALFORMED, 0, "pair", 1 },
        { "value not numeric", 200, VEC1("abc"), PROM_MALFORMED, 0, "\"abc\" is not a number", 1 },
        { "hex float refused", 200, VEC1("0x1p3"), PROM_MALFORMED, 0, "is not a number", 1 },
        { "trailing junk", 200, VEC1("1.5.2"), PROM_MALFORMED, 0, "is not a number", 1 },
        { "empty value", 200, VEC1(""), PROM_MALFORMED, 0, "not a numeric string", 1 },
        { "timestamp a string", 200,
          "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[\"1\",\"1\"]}}",
          PROM_MALFORMED, 0, "timestamp", 0 },
        { "truncated", 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\"",
          PROM_MALFORMED, 0, "not JSON", 0 },
};

static void test_parse_table(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(parse_cases); i++) {
                const parse_case *c = &parse_cases[i];
                prom_verdict v;
                prom_parse_response(c->status, c->body, strlen(c->body), &v);
                bool ok = v.reason == c->reason && v.http_status == c->status &&
                          v.n_series == c->n_series;
                if (c->reason == PROM_OK)
                        ok = ok && fabs(v.value - c->value) < 1e-12 && v.text[0] == 0;
                else
                        ok = ok && v.text[0] && (!c->contains || strstr(v.text, c->contains));
                if (!ok)
                        fail_msg("parse case \"%s\": got reason %s value %g n_series %zu text \"%s\"",
                                 c->name, prom_reason_name(v.reason), v.value, v.n_series, v.text);
        }
}

static void test_parse_honours_length(void **state) {
        (void) state;
        /* a valid answer followed by garbage that is not part of the body */
        const char body[] = "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"3\"]}}XXXX";
        prom_verdict v;
        prom_parse_response(200, body, sizeof body - 1 - 4, &v);
        assert_int_equal(v.reason, PROM_OK);
        assert_true(v.value == 3);
        prom_parse_response(200, body, 10, &v);
        assert_int_equal(v.reason, PROM_MALFORMED);
        prom_parse_response(200, NULL, 5, &v);
        assert_int_equal(v.reason, PROM_MALFORMED);
}

static void test_parse_long_error_is_cut(void **state) {
        (void) state;
        char body[4096];
        int n = snprintf(body, sizeof body, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"");
        for (int i = 0; i < 1500; i++)
                body[n++] = (i % 2) ? 'x' : '\t';
        n += snprintf(body + n, sizeof body - (size_t) n, "\"}");
        prom_verdict v;
        prom_parse_response(400, body, (size_t) n, &v);
        assert_int_equal(v.reason, PROM_QUERY_ERROR);
        assert_true(strlen(v.text) < PROM_TEXT_MAX);
        assert_non_null(strstr(v.text, "..."));
        assert_null(strchr(v.text, '\t'));
}

/* ---- sanitize ---- */

typedef struct sanitize_case {
        const char *in;
        size_t dstsz;
        const char *out;
} sanitize_case;

static const sanitize_case sanitize_cases[] = {
        { "plain", 32, "plain" },
        { "a\nb\rc\td\x7f", 32, "a b c d " },
        { "0123456789", 11, "0123456789" },
        { "0123456789x", 11, "0123456..." },
        /* "é" is 2 bytes: never split */
        { "abcde\xc3\xa9xyz", 10, "abcde..." },
        { "ab\xc3\xa9xyzxyz", 8, "ab\xc3\xa9..." },
        { "abc\xc3\xa9xyzxyz", 8, "abc..." },
        { "", 4, "" },
        { "abcd", 4, "..." },
};

static void test_sanitize(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(sanitize_cases); i++) {
                const sanitize_case *c = &sanitize_cases[i];
                char buf[64];
                memset(buf, 'Z', sizeof buf);
                prom_sanitize_text(buf, c->dstsz, c->in, strlen(c->in));
                if (!streq(buf, c->out))
                        fail_msg("sanitize \"%s\" into %zu: got \"%s\", want \"%s\"", c->in, c->dstsz,
                                 buf, c->out);
        }
}

/* ---- thresholds ---- */

typedef struct holds_case {
        prom_reason reason;
        double value;
        prom_cmp cmp;
        double threshold;
        bool holds;
} holds_case;

static const holds_case holds_cases[] = {
        { PROM_OK, 0.06, PROM_ABOVE, 0.05, true },
        { PROM_OK, 0.05, PROM_ABOVE, 0.05, false }, /* strict */
        { PROM_OK, 0.04, PROM_ABOVE, 0.05, false },
        { PROM_OK, 0.04, PROM_BELOW, 0.05, true },
        { PROM_OK, 0.05, PROM_BELOW, 0.05, false },
        { PROM_OK, -1, PROM_BELOW, 0, true },
        { PROM_OK, 1e300, PROM_ABOVE, 1e299, true },
        { PROM_EMPTY, 1, PROM_ABOVE, 0, false },
        { PROM_NOT_FINITE, INFINITY, PROM_ABOVE, 0, false },
        { PROM_NOT_FINITE, NAN, PROM_BELOW, 1, false },
        { PROM_MANY_SERIES, 5, PROM_ABOVE, 0, false },
        { PROM_QUERY_ERROR, 5, PROM_ABOVE, 0, false },
        { PROM_UNREACHABLE, 0, PROM_BELOW, 1, false },
        { PROM_OK, 1, PROM_ABOVE, NAN, false },
};

static void test_holds(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(holds_cases); i++) {
                const holds_case *c = &holds_cases[i];
                prom_verdict v = { .reason = c->reason, .value = c->value };
                if (prom_holds(&v, c->cmp, c->threshold) != c->holds)
                        fail_msg("holds case %zu: %s %g %s %g should be %s", i,
                                 prom_reason_name(c->reason), c->value, prom_cmp_name(c->cmp),
                                 c->threshold, c->holds ? "true" : "false");
        }
        assert_false(prom_holds(NULL, PROM_ABOVE, 0));
}

static void test_names_and_format(void **state) {
        (void) state;
        for (int r = 0; r < _PROM_REASON_MAX; r++)
                assert_non_null(prom_reason_name((prom_reason) r));
        assert_null(prom_reason_name(_PROM_REASON_MAX));
        assert_string_equal(prom_reason_name(PROM_MANY_SERIES), "many_series");
        assert_string_equal(prom_cmp_name(PROM_BELOW), "below");

        char buf[PROM_TEXT_MAX + 64];
        prom_verdict v = { .reason = PROM_OK, .value = 0.0731 };
        assert_string_equal(prom_format_verdict(&v, buf, sizeof buf), "0.0731");
        v = (prom_verdict){ .reason = PROM_EMPTY };
        strcpy(v.text, "the query returned no series");
        assert_string_equal(prom_format_verdict(&v, buf, sizeof buf),
                            "inconclusive (empty): the query returned no series");

        prom_auth a;
        assert_int_equal(prom_auth_from_string("token", &a), 0);
        assert_int_equal(a, PROM_AUTH_TOKEN);
        assert_int_equal(prom_auth_from_string("Bearer", &a), -EINVAL);
        assert_string_equal(prom_auth_name(PROM_AUTH_BASIC), "basic");
}

/* ---- templates ---- */

typedef struct template_case {
        const char *tmpl;
        const char *app;      /* NULL: the default "shop-api" */
        int rc;
        const char *out;      /* rc 0: the expansion; else a part of the error */
        size_t offset;        /* rc < 0: where the error points */
} template_case;

static const template_case template_cases[] = {
        { "sum(rate(http_requests_total{app=\"{{app}}\",code=~\"5..\"}[1m])) / sum(rate(http_requests_total{app=\"{{app}}\"}[1m]))",
          NULL, 0,
          "sum(rate(http_requests_total{app=\"shop-api\",code=~\"5..\"}[1m])) / sum(rate(http_requests_total{app=\"shop-api\"}[1m]))", 0 },
        { "up{app=\"{{ app }}\",id='{{app_id}}',co=`{{change_order}}`,r=\"{{region}}\"}", NULL, 0,
          "up{app=\"shop-api\",id='a-1',co=`co-7`,r=\"cn-hangzhou\"}", 0 },
        { "sum(x @ {{release_started}})", NULL, 0, "sum(x @ 1764620000)", 0 },
        { "no placeholders {a=\"b\"}", NULL, 0, "no placeholders {a=\"b\"}", 0 },
        { "", NULL, 0, "", 0 },
        /* escaping inside literals */
        { "up{app=\"{{app}}\"}", "a\"b\\c", 0, "up{app=\"a\\\"b\\\\c\"}", 0 },
        { "up{app='{{app}}'}", "it's", 0, "up{app='it\\'s'}", 0 },
        { "up{app=\"{{app}}\"}", "it's", 0, "up{app=\"it's\"}", 0 },
        { "up{app=`{{app}}`}", "a\\b\"c", 0, "up{app=`a\\b\"c`}", 0 },
        /* regex matchers match the name literally */
        { "up{app=~\"{{app}}\"}", "a.b+c", 0, "up{app=~\"a\\\\.b\\\\+c\"}", 0 },
        { "up{app !~ '{{app}}|x'}", "a.b", 0, "up{app !~ 'a\\\\.b|x'}", 0 },
        { "up{app=~`{{app}}`}", "a.b", 0, "up{app=~`a\\.b`}", 0 },
        { "up{app=\"{{app}}\"} and on() up{x=~\".*\"}", "a.b", 0,
          "up{app=\"a.b\"} and on() up{x=~\".*\"}", 0 },
        /* an escaped quote does not end the literal */
        { "up{a=\"x\\\"{{app}}\"}", "q\"", 0, "up{a=\"x\\\"q\\\"\"}", 0 },
        /* comments */
        { "up # for {{app}}\n", NULL, 0, "up # for shop-api\n", 0 },
        /* outside literals only plain words */
        { "{{app}}_requests_total", "shop", 0, "shop_requests_total", 0 },
        { "{{app}}_requests_total", NULL, -EINVAL, "stands outside a quoted string", 0 },
        { "up or {{app}}", "1) or vector(1", -EINVAL, "is not one: put it in a label matcher", 6 },
        { "up or {{app}}", "", -EINVAL, "stands outside", 6 },
        { "up{app=`{{app}}`}", "a`b", -EINVAL, "backtick", 8 },
        { "up{app=\"{{app}}\"}", "a\nb", -EINVAL, "control character", 8 },
        { "up # {{app}}", "a\nup", -EINVAL, "control character", 5 },
        /* refusals of the template itself */
        { "up{app=\"{{application}}\"}", NULL, -EINVAL,
          "unknown placeholder {{application}}: known are {{app}}, {{app_id}}, {{change_order}}, {{region}}, {{release_started}}", 8 },
        { "up{app=\"{{App}}\"}", NULL, -EINVAL, "unknown placeholder {{App}}", 8 },
        { "up{app=\"{{}}\"}", NULL, -EINVAL, "unknown placeholder {{}}", 8 },
        { "up{app=\"{{app\"}", NULL, -EINVAL, "without a closing", 8 },
        { "x {{app}} {{nope}}", "a", -EINVAL, "{{nope}}", 10 },
};

static void test_template_table(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(template_cases); i++) {
                const template_case *c = &template_cases[i];
                prom_template_vars vars = {
                        .app = c->app ? c->app : "shop-api",
                        .app_id = "a-1",
                        .change_order = "co-7",
                        .region = "cn-hangzhou",
                        .release_started = 1764620000,
                };
                char *out = NULL, *error = NULL;
                size_t off = 999;
                int r = prom_template_expand(c->tmpl, &vars, &out, &error, &off);
                bool ok = r == c->rc;
                if (ok && r == 0)
                        ok = out && streq(out, c->out) && !error;
                else if (ok)
                        ok = !out && error && strstr(error, c->out) && off == c->offset;
                if (!ok)
                        fail_msg("template \"%s\" app \"%s\": rc %d (want %d) out \"%s\" error \"%s\" "
                                 "offset %zu (want %zu)",
                                 c->tmpl, vars.app, r, c->rc, strna(out), strna(error), off, c->offset);
                free(out);
                free(error);
        }
}

static void test_template_missing_and_check(void **state) {
        (void) state;
        prom_template_vars vars = { .app = "shop-api", .release_started = -1 };
        char *out = NULL, *error = NULL;
        size_t off = 0;
        assert_int_equal(prom_template_expand("up{r=\"{{region}}\"}", &vars, &out, &error, &off), -EINVAL);
        assert_non_null(strstr(error, "no value for {{region}}"));
        assert_int_equal(off, 6);
        free(error);
        assert_int_equal(prom_template_expand("x @ {{release_started}}", &vars, &out, &error, &off),
                         -EINVAL);
        assert_non_null(strstr(error, "{{release_started}}"));
        free(error);

        /* check: before any release, values of the right shape */
        assert_int_equal(prom_template_check("up{a=\"{{app}}\",co=\"{{change_order}}\"} @ {{release_started}}",
                                             NULL, &out, &error, &off),
                         0);
        assert_null(error);
        assert_non_null(strstr(out, "@ 1700000000"));
        free(out);
        /* a change order id has '-': outside quotes refused already at check time */
        assert_int_equal(prom_template_check("x_{{change_order}}", NULL, NULL, &error, &off), -EINVAL);
        assert_non_null(strstr(error, "stands outside"));
        free(error);
        assert_int_equal(prom_template_check("up{a=\"{{nope}}\"}", &vars, NULL, &error, &off), -EINVAL);
        assert_int_equal(off, 6);
        free(error);
        /* the known app name is used when given */
        assert_int_equal(prom_template_check("{{app}}_x", &vars, NULL, &error, &off), -EINVAL);
        free(error);
        assert_int_equal(prom_template_check("up", NULL, NULL, NULL, NULL), 0);
        assert_int_equal(prom_template_expand(NULL, NULL, &out, NULL, NULL), -EINVAL);
}

static void test_template_too_long(void **state) {
        (void) state;
        size_t n = PROM_QUERY_MAX / 8;
        char *tmpl = malloc(n * 12 + 1);
        assert_non_null(tmpl);
        tmpl[0] = 0;
        for (size_t i = 0; i < n; i++)
                strcat(tmpl, "a=\"{{app}}\"");
        prom_template_vars vars = { .app = "0123456789", .release_started = -1 };
        char *out = NULL, *error = NULL;
        size_t off = 5;
        assert_int_equal(prom_template_expand(tmpl, &vars, &out, &error, &off), -E2BIG);
        assert_null(out);
        assert_non_null(strstr(error, "longer than"));
        assert_int_equal(off, 0);
        free(error);
        free(tmpl);
}

/* ---- URL ---- */

static void test_build_url(void **state) {
        (void) state;
        char *u = prom_build_url("http://127.0.0.1:9090/", "sum(rate(x{app=\"a b\",c=~\"5..\"}[1m])) / 2",
                                 INT64_C(1764620000123));
        assert_string_equal(u, "http://127.0.0.1:9090/api/v1/query?query=sum%28rate%28x%7Bapp%3D%22a%20b%22"
                               "%2Cc%3D~%225..%22%7D%5B1m%5D%29%29%20%2F%202&time=1764620000.123");
        free(u);
        /* ARMS addresses carry a path */
        u = prom_build_url("https://cn-hangzhou.arms.aliyuncs.com:9443/api/v1/prometheus/abc/123/cn-hangzhou",
                           "up+1&x=#", 5);
        assert_string_equal(u, "https://cn-hangzhou.arms.aliyuncs.com:9443/api/v1/prometheus/abc/123/"
                               "cn-hangzhou/api/v1/query?query=up%2B1%26x%3D%23&time=0.005");
        free(u);
}

/* ---- the client against a fake server on the loop ---- */

typedef struct fake_server {
        sd_event *event;
        int listen_fd;
        sd_event_source *listen_source;
        uint16_t port;
        unsigned requests;
        char last_path[2048];
        char last_auth[512];
        int status;
        const char *body;
        bool silent; /* read requests, never answer */
} fake_server;

typedef struct fake_conn {
        fake_server *server;
        int fd;
        sd_event_source *source;
        char buf[8192];
        size_t len;
} fake_conn;

static void header_value(const char *head, const char *name, char *out, size_t outsz) {
        out[0] = 0;
        size_t n = strlen(name);
        for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
                const char *h = l + 2;
                if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
                        h += n + 1;
                        while (*h == ' ')
                                h++;
                        snprintf(out, outsz, "%.*s", (int) strcspn(h, "\r\n"), h);
                        return;
                }
        }
}

static void fake_conn_free(fake_conn *conn) {
        sd_event_source_disable_unref(conn->source);
        close(conn->fd);
        free(conn);
}

static int on_fake_conn(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        fake_conn *conn = userdata;
        fake_server *s = conn->server;
        ssize_t n = read(fd, conn->buf + conn->len, sizeof conn->buf - 1 - conn->len);
        if (n < 0 && errno == EAGAIN)
                return 0;
        if (n <= 0) {
                fake_conn_free(conn);
                return 0;
        }
        conn->len += (size_t) n;
        conn->buf[conn->len] = 0;
        if (!strstr(conn->buf, "\r\n\r\n"))
                return 0;
        s->requests++;
        sscanf(conn->buf, "GET %2047s", s->last_path);
        header_value(conn->buf, "Authorization", s->last_auth, sizeof s->last_auth);
        if (s->silent)
                return 0; /* keep the connection open, say nothing */
        char out[4096];
        int w = snprintf(out, sizeof out,
                         "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n"
                         "Content-Type: application/json\r\n\r\n%s",
                         s->status, strlen(s->body), s->body);
        assert_int_equal(write(conn->fd, out, (size_t) w), w);
        fake_conn_free(conn);
        return 0;
}

static int on_fake_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        fake_server *s = userdata;
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        fake_conn *conn = calloc(1, sizeof *conn);
        assert_non_null(conn);
        conn->server = s;
        conn->fd = cfd;
        assert_int_equal(sd_event_add_io(s->event, &conn->source, cfd, EPOLLIN, on_fake_conn, conn), 0);
        return 0;
}

typedef struct fixture {
        sd_event *event;
        http_client *http;
        fake_server server;
        char url[64];
        char token_path[64];
        prom_client *prom;
        prom_query *query;
        unsigned done;
        prom_verdict last;
        bool free_in_callback;
} fixture;

static int setup(void **state) {
        fixture *f = calloc(1, sizeof *f);
        if (!f || sd_event_new(&f->event) < 0 || http_client_new(f->event, &f->http) < 0)
                return -1;
        fake_server *s = &f->server;
        *s = (fake_server){ .event = f->event, .status = 200, .body = VEC1("0.25") };
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            listen(s->listen_fd, 16) < 0)
                return -1;
        socklen_t sl = sizeof sa;
        if (getsockname(s->listen_fd, (struct sockaddr *) &sa, &sl) < 0)
                return -1;
        s->port = ntohs(sa.sin_port);
        if (sd_event_add_io(f->event, &s->listen_source, s->listen_fd, EPOLLIN, on_fake_accept, s) < 0)
                return -1;
        snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u/", s->port);
        snprintf(f->token_path, sizeof f->token_path, "/tmp/rollguard-test-prom-XXXXXX");
        int fd = mkstemp(f->token_path);
        if (fd < 0)
                return -1;
        close(fd);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;
        prom_query_free(f->query);
        prom_client_free(f->prom);
        http_client_free(f->http);
        sd_event_source_disable_unref(f->server.listen_source);
        close(f->server.listen_fd);
        sd_event_unref(f->event);
        unlink(f->token_path);
        free(f);
        return 0;
}

static void write_token(fixture *f, const char *text) {
        FILE *fp = fopen(f->token_path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
}

static void on_done(prom_query *q, const prom_verdict *v, void *userdata) {
        fixture *f = userdata;
        assert_ptr_equal(q, f->query);
        f->done++;
        f->last = *v;
        assert_false(prom_query_running(q));
        if (f->free_in_callback)
                f->query = prom_query_free(q);
}

static void run_until_done(fixture *f, unsigned n, uint64_t timeout_usec) {
        uint64_t deadline = now_monotonic_usec() + timeout_usec;
        while (f->done < n) {
                if (now_monotonic_usec() >= deadline)
                        fail_msg("timed out waiting for %u verdicts (have %u)", n, f->done);
                assert_true(sd_event_run(f->event, 50 * USEC_PER_MSEC) >= 0);
        }
}

static void start_client(fixture *f, const prom_options *o) {
        char *error = NULL;
        int r = prom_client_new(f->http, o, &f->prom, &error);
        if (r < 0)
                fail_msg("prom_client_new: %d %s", r, strna(error));
        assert_int_equal(prom_query_new(f->prom, on_done, f, &f->query), 0);
}

static void test_client_value_and_bearer(void **state) {
        fixture *f = *state;
        write_token(f, "s3cr3t-t0ken\n");
        start_client(f, &(prom_options){ .url = f->url, .token_file = f->token_path });
        assert_int_equal(prom_query_start(f->query, "sum(up{app=\"a\"})", INT64_C(1764620000250)), 0);
        assert_true(prom_query_running(f->query));
        assert_int_equal(f->done, 0); /* never from inside start */
        /* a second start for the same rule while one is in flight */
        assert_int_equal(prom_query_start(f->query, "up", 0), -EBUSY);
        run_until_done(f, 1, 5 * USEC_PER_SEC);

        assert_int_equal(f->last.reason, PROM_OK);
        assert_true(f->last.value == 0.25);
        assert_int_equal(f->server.requests, 1);
        assert_string_equal(f->server.last_auth, "Bearer s3cr3t-t0ken");
        assert_string_equal(f->server.last_path,
                            "/api/v1/query?query=sum%28up%7Bapp%3D%22a%22%7D%29&time=1764620000.250");
        prom_stats st;
        prom_client_stats(f->prom, &st);
        assert_int_equal(st.started, 1);
        assert_int_equal(st.busy, 1);
        assert_int_equal(st.in_flight, 0);
        assert_int_equal(st.results[PROM_OK], 1);

        /* again, now inconclusive; counted under its reason */
        f->server.body = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}";
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 2, 5 * USEC_PER_SEC);
        assert_int_equal(f->last.reason, PROM_EMPTY);
        prom_client_stats(f->prom, &st);
        assert_int_equal(st.results[PROM_EMPTY], 1);
        assert_int_equal(st.started, 2);
}

static void test_client_token_and_basic(void **state) {
        fixture *f = *state;
        write_token(f, "arms-v1-token\r\n\n");
        start_client(f, &(prom_options){ .url = f->url, .token_file = f->token_path, .auth = PROM_AUTH_TOKEN });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "arms-v1-token");

        /* basic: "ID:SECRET" -> base64, re-read on reload */
        f->query = prom_query_free(f->query);
        f->prom = prom_client_free(f->prom);
        write_token(f, "LTAIid:akSecret\n");
        start_client(f, &(prom_options){ .url = f->url, .token_file = f->token_path, .auth = PROM_AUTH_BASIC });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 2, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "Basic TFRBSWlkOmFrU2VjcmV0");

        write_token(f, "LTAIid:other");
        char *error = NULL;
        assert_int_equal(prom_client_reload(f->prom, &error), 0);
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 3, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "Basic TFRBSWlkOm90aGVy");

        /* a bad reload keeps the old token */
        write_token(f, "no-colon");
        assert_int_equal(prom_client_reload(f->prom, &error), -EINVAL);
        assert_non_null(strstr(error, "ID:SECRET"));
        assert_null(strstr(error, "no-colon"));
        free(error);
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 4, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "Basic TFRBSWlkOm90aGVy");
}

static void test_client_no_token(void **state) {
        fixture *f = *state;
        start_client(f, &(prom_options){ .url = f->url });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "");
        assert_int_equal(f->last.reason, PROM_OK);
}

static void test_client_echo_is_scrubbed(void **state) {
        fixture *f = *state;
        write_token(f, "s3cr3t-t0ken");
        f->server.status = 401;
        f->server.body = "bad token s3cr3t-t0ken";
        start_client(f, &(prom_options){ .url = f->url, .token_file = f->token_path });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_int_equal(f->last.reason, PROM_HTTP_STATUS);
        assert_null(strstr(f->last.text, "s3cr3t"));
        assert_non_null(strstr(f->last.text, "HTTP 401"));
}

static void test_client_query_error(void **state) {
        fixture *f = *state;
        f->server.status = 400;
        f->server.body = "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error: unexpected end of input\"}";
        f->free_in_callback = true; /* the callback may free its query */
        start_client(f, &(prom_options){ .url = f->url });
        assert_int_equal(prom_query_start(f->query, "sum(", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_null(f->query);
        assert_int_equal(f->last.reason, PROM_QUERY_ERROR);
        assert_string_equal(f->last.text, "query error (bad_data, HTTP 400): parse error: unexpected end of input");
}

static void test_client_unreachable(void **state) {
        fixture *f = *state;
        /* a port nobody listens on: ours, after closing it */
        sd_event_source_disable_unref(TAKE_PTR(f->server.listen_source));
        close(f->server.listen_fd);
        f->server.listen_fd = -1;
        start_client(f, &(prom_options){ .url = f->url });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_int_equal(f->last.reason, PROM_UNREACHABLE);
        assert_non_null(strstr(f->last.text, "no answer from http://127.0.0.1:"));
        assert_int_equal(f->last.http_status, 0);
        prom_stats st;
        prom_client_stats(f->prom, &st);
        assert_int_equal(st.results[PROM_UNREACHABLE], 1);
}

static void test_client_timeout_and_cancel(void **state) {
        fixture *f = *state;
        f->server.silent = true;
        start_client(f, &(prom_options){ .url = f->url, .timeout_usec = 300 * USEC_PER_MSEC });
        uint64_t t0 = now_monotonic_usec();
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_int_equal(f->last.reason, PROM_UNREACHABLE);
        assert_non_null(strstr(f->last.text, "timeout"));
        assert_true(now_monotonic_usec() - t0 >= 250 * USEC_PER_MSEC);

        /* a cancelled query never calls back and frees its slot */
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        prom_query_cancel(f->query);
        assert_false(prom_query_running(f->query));
        prom_stats st;
        prom_client_stats(f->prom, &st);
        assert_int_equal(st.in_flight, 0);
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        /* freeing the client with a query in flight: no callback, query detached */
        f->prom = prom_client_free(f->prom);
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f->event, 10 * USEC_PER_MSEC) >= 0);
        assert_int_equal(f->done, 1);
        assert_false(prom_query_running(f->query));
        assert_int_equal(prom_query_start(f->query, "up", 0), -ESHUTDOWN);
}

typedef struct option_case {
        const char *url;
        const char *token; /* written to the token file; NULL = no token_file */
        prom_auth auth;
        int rc;
        const char *error;
} option_case;

static const option_case option_cases[] = {
        { NULL, NULL, PROM_AUTH_NONE, -EINVAL, "prometheus.url is missing" },
        { "127.0.0.1:9090", NULL, PROM_AUTH_NONE, -EINVAL, "must start with http://" },
        { "http://h:9090/?x=1", NULL, PROM_AUTH_NONE, -EINVAL, "without a query" },
        { "http://h:9090", NULL, PROM_AUTH_BEARER, -EINVAL, "auth bearer needs a token_file" },
        { "http://h:9090", "", PROM_AUTH_NONE, -EINVAL, ": empty" },
        { "http://h:9090", "\n\n", PROM_AUTH_NONE, -EINVAL, ": empty" },
        { "http://h:9090", "abc\ndef\n", PROM_AUTH_NONE, -EINVAL, "line break or control character inside (byte 4)" },
        { "http://h:9090", "abc:", PROM_AUTH_BASIC, -EINVAL, "ID:SECRET" },
        { "HTTPS://h", "tok", PROM_AUTH_NONE, 0, NULL },
};

static void test_client_options(void **state) {
        fixture *f = *state;
        for (size_t i = 0; i < ELEMENTSOF(option_cases); i++) {
                const option_case *c = &option_cases[i];
                if (c->token)
                        write_token(f, c->token);
                prom_options o = { .url = c->url, .token_file = c->token ? f->token_path : NULL, .auth = c->auth };
                prom_client *p = NULL;
                char *error = NULL;
                int r = prom_client_new(f->http, &o, &p, &error);
                if (r != c->rc || (c->error && (!error || !strstr(error, c->error))) ||
                    (!c->error && error))
                        fail_msg("options case %zu (%s): rc %d error \"%s\"", i, strna(c->url), r,
                                 strna(error));
                /* the file's content never shows up in a message */
                if (error && c->token && c->token[0] > ' ')
                        assert_null(strstr(error, c->token));
                free(error);
                prom_client_free(p);
        }
        prom_client *p = NULL;
        char *error = NULL;
        prom_options o = { .url = "http://h", .token_file = "/nonexistent/rollguard-token" };
        assert_int_equal(prom_client_new(f->http, &o, &p, &error), -ENOENT);
        assert_string_equal(error, "prometheus.token_file /nonexistent/rollguard-token: No such file or directory");
        free(error);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_table),
                cmocka_unit_test(test_parse_honours_length),
                cmocka_unit_test(test_parse_long_error_is_cut),
                cmocka_unit_test(test_sanitize),
                cmocka_unit_test(test_holds),
                cmocka_unit_test(test_names_and_format),
                cmocka_unit_test(test_template_table),
                cmocka_unit_test(test_template_missing_and_check),
                cmocka_unit_test(test_template_too_long),
                cmocka_unit_test(test_build_url),
                cmocka_unit_test_setup_teardown(test_client_value_and_bearer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_token_and_basic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_no_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_echo_is_scrubbed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_query_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_unreachable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_timeout_and_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_options, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
