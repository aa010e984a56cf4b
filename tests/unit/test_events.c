/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events_parse.h"
#include "util.h"

/* The configured apps of every case: SAE, EDAS, and one id made of more than
 * token characters. Index 4 repeats index 0's id (two names, one app). */
#define SAE "7171a6ca-d1cd-4928-8642-7d5cfe690001"
#define EDAS_ID "0a1b2c3d-0000-4000-8000-00000000eda5"
#define K8S "a0000000-0000-4000-8000-000000000002"
#define ODD "cn-hangzhou:shop.v2"
static const char *const ids[] = { SAE, EDAS_ID, K8S, ODD, SAE, NULL, "" };

#define ENV(type, extra) \
        "{\"specversion\":\"1.0\",\"id\":\"ev-1\",\"source\":\"acs.sae\",\"type\":\"" type "\"" extra "}"

/* What EventBridge delivers for SAE (subject + data.resourceId), EDAS
 * (data.appId) and ActionTrail (data.requestParameters.AppId). */
static const char sae_fail[] =
        "{\"specversion\":\"1.0\",\"id\":\"45ef4dew-7c35-447a-bd93-fab1\",\"source\":\"acs.sae\","
        "\"type\":\"sae:ChangeOrder:SaeChangeOrderFailEvent\","
        "\"subject\":\"acs:sae:cn-hangzhou:1234567890:application/" SAE "\","
        "\"time\":\"2026-12-01T21:04:41+08:00\",\"aliyunaccountid\":\"1234567890\","
        "\"aliyunregionid\":\"cn-hangzhou\",\"aliyunpublishtime\":\"2026-12-01T21:04:42.179PRC\","
        "\"aliyuneventbusname\":\"default\",\"datacontenttype\":\"application/json;charset=utf-8\","
        "\"data\":{\"resourceId\":\"" SAE "\",\"changeOrderId\":\"76fa5c0-9ebb\",\"status\":\"FAIL\"}}";
static const char edas_change[] =
        "{\"specversion\":\"1.0\",\"id\":\"e-2\",\"source\":\"acs.edas\",\"type\":\"edas:ApplicationChange:ChangeOrder\","
        "\"subject\":\"acs:edas:cn-hangzhou:1234567890:changeorder/c0-1\","
        "\"data\":{\"appId\":\"" EDAS_ID "\",\"changeOrderId\":\"c0-1\",\"status\":3}}";
static const char actiontrail[] =
        "{\"specversion\":\"1.0\",\"id\":\"at-3\",\"source\":\"acs.actiontrail\",\"type\":\"actiontrail:ActionTrail:ApiCall\","
        "\"data\":{\"eventName\":\"DeployApplication\",\"serviceName\":\"sae\","
        "\"requestParameters\":{\"AppId\":\"" K8S "\",\"ImageUrl\":\"registry/x:1\"}}}";

typedef struct parse_case {
        const char *what;
        const char *body;
        int rc;
        const char *error;        /* exact message for -EBADMSG */
        size_t n_events;
        const char *type0;        /* the first event's type */
        size_t apps0[6];          /* the first event's app indexes, ended by SIZE_MAX */
} parse_case;

#define END SIZE_MAX

static const parse_case cases[] = {
        { "SAE change order failed", sae_fail, 0, NULL, 1, "sae:ChangeOrder:SaeChangeOrderFailEvent", { 0, 4, END } },
        { "EDAS change order", edas_change, 0, NULL, 1, "edas:ApplicationChange:ChangeOrder", { 1, END } },
        { "ActionTrail deploy call", actiontrail, 0, NULL, 1, "actiontrail:ActionTrail:ApiCall", { 2, END } },
        { "batch", "[" ENV("a", ",\"subject\":\"x\"") "," ENV("b", ",\"data\":[\"" K8S "\"]") "]", 0, NULL, 2, "a",
          { END } },
        { "empty batch", " [ ] ", 0, NULL, 0, NULL, { END } },
        { "names no app", ENV("t", ",\"data\":{\"resourceId\":\"nope\"}"), 0, NULL, 1, "t", { END } },
        { "an id inside a longer token is not named", ENV("t", ",\"subject\":\"" SAE "-2 x" SAE " " SAE "_b\""), 0,
          NULL, 1, "t", { END } },
        { "case-insensitive", ENV("t", ",\"subject\":\"APP/7171A6CA-D1CD-4928-8642-7D5CFE690001\""), 0, NULL, 1, "t",
          { 0, 4, END } },
        { "member names count", ENV("t", ",\"data\":{\"" K8S "\":1}"), 0, NULL, 1, "t", { 2, END } },
        { "data as a string of JSON", ENV("t", ",\"data\":\"{\\\"appId\\\":\\\"" K8S "\\\"}\""), 0, NULL, 1, "t",
          { 2, END } },
        { "deep in data, several apps, each once",
          ENV("t", ",\"data\":{\"a\":[{\"b\":{\"c\":\"" K8S "," SAE "\"}}],\"d\":\"" K8S "\"}"), 0, NULL, 1, "t",
          { 0, 2, 4, END } },
        { "an id with other characters", ENV("t", ",\"subject\":\"at " ODD "/x\""), 0, NULL, 1, "t", { 3, END } },
        { "an id with other characters, inside a token", ENV("t", ",\"subject\":\"x" ODD "\""), 0, NULL, 1, "t",
          { END } },
        { "only subject and data are looked at", ENV("t", ",\"aliyunaccountid\":\"" SAE "\""), 0, NULL, 1, "t",
          { END } },
        { "numbers are not ids", ENV("t", ",\"data\":{\"n\":7171}"), 0, NULL, 1, "t", { END } },
        { "non-ASCII around an id", ENV("t", ",\"subject\":\"\xe5\xba\x94\xe7\x94\xa8" K8S "\xe5\xa4\xb1\""), 0, NULL,
          1, "t", { 2, END } },

        { "empty", "", -EBADMSG, "empty body", 0, NULL, { END } },
        { "not JSON", "{\"id\":", -EBADMSG, "malformed JSON near byte 5", 0, NULL, { END } },
        { "trailing garbage", "{} x", -EBADMSG, "malformed JSON near byte 3", 0, NULL, { END } },
        { "a string", "\"x\"", -EBADMSG,
          "expected a CloudEvent (a JSON object) or a batch of them (a JSON array)", 0, NULL, { END } },
        { "no specversion", "{\"id\":\"1\"}", -EBADMSG, "specversion: missing (CloudEvents 1.0 in structured mode)",
          0, NULL, { END } },
        { "old specversion", "{\"specversion\":\"0.3\"}", -EBADMSG, "specversion: expected \"1.0\", got \"0.3\"", 0,
          NULL, { END } },
        { "specversion a number", "{\"specversion\":1.0}", -EBADMSG, "specversion: expected a string", 0, NULL,
          { END } },
        { "no id", "{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\"}", -EBADMSG, "id: missing", 0, NULL,
          { END } },
        { "empty id", "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"s\",\"type\":\"t\"}", -EBADMSG, "id: empty",
          0, NULL, { END } },
        { "no type", "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\"}", -EBADMSG, "type: missing", 0, NULL,
          { END } },
        { "source a number", "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":2,\"type\":\"t\"}", -EBADMSG,
          "source: expected a string", 0, NULL, { END } },
        { "subject an object", ENV("t", ",\"subject\":{}"), -EBADMSG, "subject: expected a string", 0, NULL,
          { END } },
        { "batch item not an object", "[" ENV("a", "") ",1]", -EBADMSG, "[1]: expected a CloudEvent (a JSON object)",
          0, NULL, { END } },
        { "batch item without id", "[" ENV("a", "") "," ENV("b", "") ",{\"specversion\":\"1.0\",\"source\":\"s\"}]",
          -EBADMSG, "[2].id: missing", 0, NULL, { END } },
};

static void test_parse_cases(void **state) {
        events_ids *m = NULL;
        assert_int_equal(events_ids_new(ids, ELEMENTSOF(ids), &m), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const parse_case *c = &cases[i];
                cloud_event_batch b;
                char *error = NULL;
                int r = events_parse(c->body, strlen(c->body), m, &b, &error);
                if (r != c->rc)
                        fail_msg("%s: rc %d, expected %d (%s)", c->what, r, c->rc, strna(error));
                if (r < 0) {
                        if (!error || !streq(error, c->error))
                                fail_msg("%s: error \"%s\", expected \"%s\"", c->what, strna(error), c->error);
                        assert_int_equal(b.n_events, 0);
                        free(error);
                        continue;
                }
                assert_null(error);
                if (b.n_events != c->n_events)
                        fail_msg("%s: %zu events, expected %zu", c->what, b.n_events, c->n_events);
                if (c->type0 && !streq(b.events[0].type, c->type0))
                        fail_msg("%s: type %s", c->what, b.events[0].type);
                if (c->n_events > 0) {
                        const cloud_event *e = &b.events[0];
                        size_t n = 0;
                        while (c->apps0[n] != END)
                                n++;
                        if (e->n_apps != n)
                                fail_msg("%s: names %zu apps, expected %zu", c->what, e->n_apps, n);
                        for (size_t k = 0; k < n; k++)
                                if (e->apps[k] != c->apps0[k])
                                        fail_msg("%s: app %zu is %zu, expected %zu", c->what, k, e->apps[k],
                                                 c->apps0[k]);
                        assert_non_null(e->id);
                        assert_non_null(e->source);
                }
                cloud_event_batch_done(&b);
        }
        events_ids_free(m);
}

static void test_batch_second_event(void **state) {
        events_ids *m = NULL;
        assert_int_equal(events_ids_new(ids, ELEMENTSOF(ids), &m), 0);
        const char body[] = "[" ENV("a", ",\"subject\":\"x\"") "," ENV("b", ",\"data\":[\"" K8S "\"]") "]";
        cloud_event_batch b;
        assert_int_equal(events_parse(body, strlen(body), m, &b, NULL), 0);
        assert_int_equal(b.n_events, 2);
        assert_string_equal(b.events[1].type, "b");
        assert_string_equal(b.events[1].id, "ev-1");
        assert_string_equal(b.events[1].source, "acs.sae");
        assert_int_equal(b.events[1].n_apps, 1);
        assert_int_equal(b.events[1].apps[0], 2);
        cloud_event_batch_done(&b);
        events_ids_free(m);
}

static void test_no_ids_and_length(void **state) {
        /* no apps configured: everything parses, nothing is named */
        events_ids *m = NULL;
        assert_int_equal(events_ids_new(NULL, 0, &m), 0);
        cloud_event_batch b;
        assert_int_equal(events_parse(sae_fail, strlen(sae_fail), m, &b, NULL), 0);
        assert_int_equal(b.events[0].n_apps, 0);
        cloud_event_batch_done(&b);
        assert_int_equal(events_parse(sae_fail, strlen(sae_fail), NULL, &b, NULL), 0);
        cloud_event_batch_done(&b);
        /* len is honoured: the body is not NUL-terminated where it ends */
        char *error = NULL;
        assert_int_equal(events_parse(sae_fail, strlen(sae_fail) - 1, m, &b, &error), -EBADMSG);
        assert_non_null(strstr(error, "malformed JSON"));
        free(error);
        events_ids_free(m);

        /* a long id is refused with the limit named */
        char big[1200];
        int n = snprintf(big, sizeof big, "{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\",\"id\":\"");
        memset(big + n, 'x', 600);
        strcpy(big + n + 600, "\"}");
        error = NULL;
        assert_int_equal(events_parse(big, strlen(big), NULL, &b, &error), -EBADMSG);
        assert_string_equal(error, "id: longer than 512 bytes");
        free(error);
}

static void test_seen(void **state) {
        events_seen *s = events_seen_new(3);
        assert_non_null(s);
        assert_int_equal(events_seen_check(s, "acs.sae", "1"), 0);
        assert_int_equal(events_seen_check(s, "acs.sae", "1"), 1);
        /* the same id from another source is another event */
        assert_int_equal(events_seen_check(s, "acs.edas", "1"), 0);
        /* the lengths keep ("ab","c") and ("a","bc") apart */
        assert_int_equal(events_seen_check(s, "ab", "c"), 0);
        assert_int_equal(events_seen_check(s, "a", "bc"), 0);
        /* bounded: the oldest is forgotten first */
        assert_int_equal(events_seen_check(s, "acs.sae", "1"), 0);
        assert_int_equal(events_seen_check(s, "a", "bc"), 1);
        events_seen_free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_cases),
                cmocka_unit_test(test_batch_second_event),
                cmocka_unit_test(test_no_ids_and_length),
                cmocka_unit_test(test_seen),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
