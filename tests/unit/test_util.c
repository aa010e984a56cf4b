/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "json.h"
#include "util.h"

static void test_parse_duration(void **state) {
        static const struct {
                const char *in;
                int ret;
                uint64_t usec;
        } t[] = {
                { "0", 0, 0 },
                { "90s", 0, 90 * USEC_PER_SEC },
                { "5m", 0, 5 * USEC_PER_MIN },
                { "1h30m", 0, 90 * USEC_PER_MIN },
                { "250ms", 0, 250 * USEC_PER_MSEC },
                { "1m30s", 0, 90 * USEC_PER_SEC },
                { "2d", 0, 48 * USEC_PER_HOUR },
                { "1h1m1s1ms", 0, USEC_PER_HOUR + USEC_PER_MIN + USEC_PER_SEC + USEC_PER_MSEC },
                { "30", -EINVAL, 0 },      /* no unit: an error, not a guess */
                { "", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { "5 m", -EINVAL, 0 },
                { "-5s", -EINVAL, 0 },
                { "5x", -EINVAL, 0 },
                { "1.5s", -EINVAL, 0 },
                { "5mm", -EINVAL, 0 },
                { "99999999999999999999s", -ERANGE, 0 },
                { "9999999999999d", -ERANGE, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                uint64_t u = 12345;
                int r = parse_duration(t[i].in, &u);
                if (r != t[i].ret || (r == 0 && u != t[i].usec))
                        fail_msg("row %zu \"%s\": got r=%d usec=%llu, want r=%d usec=%llu", i, t[i].in, r,
                                 (unsigned long long)u, t[i].ret, (unsigned long long)t[i].usec);
        }
}

static void test_format_duration(void **state) {
        static const struct {
                uint64_t usec;
                const char *out;
        } t[] = {
                { 0, "0s" },
                { 90 * USEC_PER_SEC, "1m30s" },
                { USEC_PER_HOUR, "1h" },
                { 250 * USEC_PER_MSEC, "250ms" },
                { 25 * USEC_PER_HOUR + 1, "1d1h1us" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char b[32];
                assert_string_equal(format_duration(t[i].usec, b, sizeof b), t[i].out);
                /* and it parses back, except for the microsecond unit parse does not take */
                uint64_t u;
                if (!strstr(t[i].out, "us")) {
                        assert_int_equal(parse_duration(b, &u), 0);
                        assert_true(u == t[i].usec);
                }
        }
}

static void test_parse_int64(void **state) {
        static const struct {
                const char *in;
                int ret;
                int64_t v;
        } t[] = {
                { "0", 0, 0 },
                { "42", 0, 42 },
                { "-42", 0, -42 },
                { "+7", 0, 7 },
                { "9223372036854775807", 0, INT64_MAX },
                { "-9223372036854775808", 0, INT64_MIN },
                { "9223372036854775808", -ERANGE, 0 },
                { "-9223372036854775809", -ERANGE, 0 },
                { "12a", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "-", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                int64_t v = 99;
                int r = parse_int64(t[i].in, INT64_MIN, INT64_MAX, &v);
                if (r != t[i].ret || (r == 0 && v != t[i].v))
                        fail_msg("row %zu \"%s\": got r=%d", i, t[i].in, r);
        }
        int64_t v;
        assert_int_equal(parse_int64("11", 0, 10, &v), -ERANGE);
}

static void test_json_readers(void **state) {
        cJSON *o = cJSON_Parse("{\"n\":200,\"s\":\"200\",\"e\":\"\",\"f\":1.5,\"b\":true,\"bs\":\"False\","
                               "\"b1\":1,\"x\":null,\"arr\":[1],\"big\":1e30,\"neg\":\"-3\","
                               "\"d\":{\"e\":{\"f\":\"deep\"}},\"id\":12345678901}");
        assert_non_null(o);
        int64_t i = -1;
        assert_int_equal(json_get_int64(o, "n", &i), 1);
        assert_true(i == 200);
        assert_int_equal(json_get_int64(o, "s", &i), 1);
        assert_true(i == 200);
        assert_int_equal(json_get_int64(o, "neg", &i), 1);
        assert_true(i == -3);
        i = 7;
        assert_int_equal(json_get_int64(o, "e", &i), 0); /* "" means absent */
        assert_int_equal(json_get_int64(o, "x", &i), 0);
        assert_int_equal(json_get_int64(o, "missing", &i), 0);
        assert_true(i == 7);
        assert_int_equal(json_get_int64(o, "f", &i), -EBADMSG);
        assert_int_equal(json_get_int64(o, "big", &i), -EBADMSG);
        assert_int_equal(json_get_int64(o, "arr", &i), -EBADMSG);
        int n;
        assert_int_equal(json_get_int(o, "id", &n), -EBADMSG); /* out of int range */

        bool b = false;
        assert_int_equal(json_get_bool(o, "b", &b), 1);
        assert_true(b);
        assert_int_equal(json_get_bool(o, "bs", &b), 1);
        assert_false(b);
        assert_int_equal(json_get_bool(o, "b1", &b), 1);
        assert_true(b);
        assert_int_equal(json_get_bool(o, "n", &b), -EBADMSG);

        char *s = NULL;
        assert_int_equal(json_get_string(o, "s", &s), 1);
        assert_string_equal(s, "200");
        assert_int_equal(json_get_string(o, "id", &s), 1); /* ids sometimes come as numbers */
        assert_string_equal(s, "12345678901");
        assert_int_equal(json_get_string(o, "arr", &s), -EBADMSG);
        free(s);

        const cJSON *d = json_path(o, "d.e.f");
        assert_non_null(d);
        assert_string_equal(d->valuestring, "deep");
        assert_null(json_path(o, "d.x.f"));
        assert_null(json_path(o, "n.x"));
        assert_null(json_member(NULL, "a"));
        cJSON_Delete(o);
}

static void test_jitter(void **state) {
        for (int i = 0; i < 10000; i++) {
                uint64_t j = jitter_usec(1000000, 0.1);
                assert_true(j >= 900000 && j <= 1100000);
        }
        assert_true(jitter_usec(0, 0.5) == 0);
        assert_true(jitter_usec(100, 0) == 100);
}

static void test_strings(void **state) {
        char *p = NULL;
        assert_int_equal(free_and_strdup(&p, "abc"), 0);
        assert_string_equal(p, "abc");
        assert_int_equal(free_and_strdup(&p, NULL), 0);
        assert_null(p);
        _cleanup_free_ char *f = strdup_printf("%s-%d", "x", 5);
        assert_string_equal(f, "x-5");
        char *secret = strdup("hunter2");
        free_secret(secret); /* wiped and freed: valgrind checks the free */
        free_secret(NULL);
        assert_true(streq_null(NULL, NULL));
        assert_false(streq_null("a", NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_duration), cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_parse_int64),    cmocka_unit_test(test_json_readers),
                cmocka_unit_test(test_jitter),         cmocka_unit_test(test_strings),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
