/* SPDX-License-Identifier: MIT */
/* The pure half of src/prom: the answer parser, thresholds, text
 * sanitising and the query template, as tables. The client is in
 * test_prom_client.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
