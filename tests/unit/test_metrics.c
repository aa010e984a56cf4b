/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"
#include "util.h"

/* The whole page as a string (the caller frees). */
static char *render(metrics_registry *r) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(metrics_render(r, f), 0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void assert_page(metrics_registry *r, const char *want) {
        char *got = render(r);
        if (!streq(got, want))
                fail_msg("rendered:\n%s\nexpected:\n%s", got, want);
        free(got);
}

static void test_label_value_escaping(void **state) {
        static const struct {
                const char *in, *out;
        } t[] = {
                { "plain", "plain" },
                { "", "" },
                { "a\"b", "a\\\"b" },
                { "back\\slash", "back\\\\slash" },
                { "two\nlines", "two\\nlines" },
                { "\\\"\n", "\\\\\\\"\\n" },
                { "tab\tstays", "tab\tstays" }, /* only \\ \" \n are escaped by the format */
                { "ünï", "ünï" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char buf[64] = { 0 };
                FILE *f = fmemopen(buf, sizeof buf, "w");
                assert_non_null(f);
                metrics_write_label_value(f, t[i].in);
                fclose(f);
                if (!streq(buf, t[i].out))
                        fail_msg("escape(%s) = %s, want %s", t[i].in, buf, t[i].out);
        }
}

static void test_counter_with_labels(void **state) {
        metrics_registry *r = metrics_registry_new();
        metrics_counter *c = metrics_counter_new(r, "x_errors_total", "Errors by code.", "code");
        assert_non_null(c);
        metrics_counter_inc(c, "a\"b");
        metrics_counter_inc(c, "Throttling");
        metrics_counter_inc(c, "a\"b");
        metrics_counter_add(c, 0, "zero");
        metrics_counter_add(c, 40, "Throttling");
        assert_page(r, "# HELP x_errors_total Errors by code.\n"
                       "# TYPE x_errors_total counter\n"
                       "x_errors_total{code=\"a\\\"b\"} 2\n"
                       "x_errors_total{code=\"Throttling\"} 41\n"
                       "x_errors_total{code=\"zero\"} 0\n");
        metrics_registry_free(r);
}

static void test_counter_without_labels_and_empty_family(void **state) {
        metrics_registry *r = metrics_registry_new();
        metrics_counter *empty = metrics_counter_new(r, "x_never_total", "Never counted.", "k");
        metrics_counter *c = metrics_counter_new(r, "x_total", "Help with a \\ and a\nnewline.");
        assert_non_null(empty);
        assert_non_null(c);
        metrics_counter_inc(c);
        metrics_counter_inc(c);
        assert_page(r, "# HELP x_never_total Never counted.\n"
                       "# TYPE x_never_total counter\n"
                       "# HELP x_total Help with a \\\\ and a\\nnewline.\n"
                       "# TYPE x_total counter\n"
                       "x_total 2\n");
        metrics_registry_free(r);
}

static void test_gauge_values(void **state) {
        static const struct {
                double v;
                const char *out;
        } t[] = {
                { 0, "0" },       { -0.0, "0" },          { 3, "3" },          { -1, "-1" },
                { 1.5, "1.5" },   { 0.1, "0.1" },         { 12.345, "12.345" }, { 1e20, "1e+20" },
                { NAN, "NaN" },   { INFINITY, "+Inf" },   { -INFINITY, "-Inf" }, { 123456789012, "123456789012" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                metrics_registry *r = metrics_registry_new();
                metrics_gauge *g = metrics_gauge_new(r, "g", "G.");
                metrics_gauge_set(g, t[i].v);
                _cleanup_free_ char *want = strdup_printf("# HELP g G.\n# TYPE g gauge\ng %s\n", t[i].out);
                assert_page(r, want);
                metrics_registry_free(r);
        }
}

static void test_gauge_set_and_add(void **state) {
        metrics_registry *r = metrics_registry_new();
        metrics_gauge *g = metrics_gauge_new(r, "queue", "Q.", "pool", "kind");
        metrics_gauge_set(g, 5, "a", "x");
        metrics_gauge_add(g, -2, "a", "x");
        metrics_gauge_add(g, 1, "b", "y");
        assert_page(r, "# HELP queue Q.\n# TYPE queue gauge\n"
                       "queue{pool=\"a\",kind=\"x\"} 3\n"
                       "queue{pool=\"b\",kind=\"y\"} 1\n");
        metrics_registry_free(r);
}

static void test_histogram(void **state) {
        metrics_registry *r = metrics_registry_new();
        static const double bounds[] = { 0.1, 0.5, 1 };
        metrics_histogram *h = metrics_histogram_new(r, "lat_seconds", "Latency.", bounds, ELEMENTSOF(bounds), "op");
        assert_non_null(h);
        metrics_histogram_observe(h, 0.05, "get");
        metrics_histogram_observe(h, 0.1, "get"); /* le is inclusive */
        metrics_histogram_observe(h, 0.7, "get");
        metrics_histogram_observe(h, 3, "get");
        metrics_histogram_observe(h, NAN, "get"); /* not counted */
        assert_page(r, "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
                       "lat_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
                       "lat_seconds_bucket{op=\"get\",le=\"0.5\"} 2\n"
                       "lat_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
                       "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                       "lat_seconds_sum{op=\"get\"} 3.85\n"
                       "lat_seconds_count{op=\"get\"} 4\n");
        metrics_registry_free(r);

        r = metrics_registry_new();
        h = metrics_histogram_new(r, "h", "H.", bounds, ELEMENTSOF(bounds));
        metrics_histogram_observe(h, 0.2);
        assert_page(r, "# HELP h H.\n# TYPE h histogram\n"
                       "h_bucket{le=\"0.1\"} 0\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1\"} 1\n"
                       "h_bucket{le=\"+Inf\"} 1\nh_sum 0.2\nh_count 1\n");
        metrics_registry_free(r);
}

static void collect(void *userdata, metrics_emitter *e) {
        int *calls = userdata;
        (*calls)++;
        metrics_emit(e, 2, "shop\"api");
        metrics_emit(e, 0, "cart");
        metrics_emit(e, 1); /* wrong number of labels: dropped */
}

static void test_callback(void **state) {
        metrics_registry *r = metrics_registry_new();
        int calls = 0;
        metrics_callback *cb = metrics_callback_new(r, "firing", "Firing.", METRICS_GAUGE, collect, &calls, "app");
        assert_non_null(cb);
        assert_int_equal(calls, 0);
        assert_page(r, "# HELP firing Firing.\n# TYPE firing gauge\n"
                       "firing{app=\"shop\\\"api\"} 2\nfiring{app=\"cart\"} 0\n");
        assert_int_equal(calls, 1);
        assert_null(metrics_callback_new(r, "h", "H.", METRICS_HISTOGRAM, collect, &calls));
        metrics_callback_free(cb);
        assert_page(r, "");
        metrics_registry_free(r);
}

static void test_registration_errors(void **state) {
        metrics_registry *r = metrics_registry_new();
        static const double ok[] = { 1, 2 }, unsorted[] = { 2, 1 }, inf[] = { 1, INFINITY };
        assert_non_null(metrics_counter_new(r, "a_total", "A."));
        assert_null(metrics_counter_new(r, "a_total", "again."));  /* taken, whatever the kind */
        assert_null(metrics_gauge_new(r, "a_total", "again."));
        assert_null(metrics_gauge_new(r, "1abc", "digit first."));
        assert_null(metrics_gauge_new(r, "a-b", "dash."));
        assert_null(metrics_gauge_new(r, "", "empty."));
        assert_null(metrics_gauge_new(r, "g", "bad label.", "a-b"));
        assert_null(metrics_gauge_new(r, "g", "bad label.", "__reserved"));
        assert_null(metrics_gauge_new(r, "g", "bad label.", "x:y")); /* colons only in metric names */
        assert_null(metrics_histogram_new(r, "h", "le is taken.", ok, 2, "le"));
        assert_null(metrics_histogram_new(r, "h", "unsorted.", unsorted, 2));
        assert_null(metrics_histogram_new(r, "h", "inf.", inf, 2));
        assert_non_null(metrics_gauge_new(r, "ns:g", "colon in a name is fine.", "le"));
        assert_null(metrics_counter_new(NULL, "x_total", "no registry."));
        metrics_registry_free(r);
}

static void test_wrong_label_count_and_null_are_harmless(void **state) {
        metrics_registry *r = metrics_registry_new();
        metrics_counter *c = metrics_counter_new(r, "c_total", "C.", "a", "b");
        metrics_counter_inc(c, "only-one");
        metrics_counter_inc(c, "x", "y", "z");
        metrics_counter_inc(c, "x", NULL);
        metrics_counter_inc(c, "x", "y");
        assert_page(r, "# HELP c_total C.\n# TYPE c_total counter\nc_total{a=\"x\",b=\"y\"} 1\n");

        metrics_counter_inc(NULL, "x");
        metrics_gauge_set(NULL, 1);
        metrics_histogram_observe(NULL, 1);
        metrics_emit(NULL, 1);
        metrics_counter_free(NULL);
        assert_int_equal(metrics_render(NULL, stdout), 0);
        metrics_registry_free(r);
}

static void test_unregister_keeps_order(void **state) {
        metrics_registry *r = metrics_registry_new();
        metrics_gauge *a = metrics_gauge_new(r, "a", "A.");
        metrics_gauge *b = metrics_gauge_new(r, "b", "B.");
        metrics_gauge *c = metrics_gauge_new(r, "c", "C.");
        assert_non_null(a);
        assert_non_null(c);
        assert_null(metrics_gauge_free(b));
        assert_page(r, "# HELP a A.\n# TYPE a gauge\n# HELP c C.\n# TYPE c gauge\n");
        /* the name is free again, and goes last */
        assert_non_null(metrics_gauge_new(r, "b", "B again."));
        assert_page(r, "# HELP a A.\n# TYPE a gauge\n# HELP c C.\n# TYPE c gauge\n# HELP b B again.\n# TYPE b gauge\n");
        metrics_registry_free(r); /* frees what is still registered */
}

/* A series per app and rule: thousands of series must keep their identity
 * through the index growing, and values that share a prefix or split
 * differently across labels must not collide. */
static void test_many_series(void **state) {
        metrics_registry *r = metrics_registry_new();
        metrics_counter *c = metrics_counter_new(r, "d_total", "D.", "app", "rule");
        for (int round = 0; round < 3; round++)
                for (int i = 0; i < 3000; i++) {
                        char app[32];
                        snprintf(app, sizeof app, "app-%d", i);
                        metrics_counter_add(c, (uint64_t)i, app, "r");
                }
        metrics_counter_inc(c, "ab", "c");
        metrics_counter_inc(c, "a", "bc");
        _cleanup_free_ char *page = render(r);
        assert_non_null(strstr(page, "d_total{app=\"app-0\",rule=\"r\"} 0\n"));
        assert_non_null(strstr(page, "d_total{app=\"app-2999\",rule=\"r\"} 8997\n"));
        assert_non_null(strstr(page, "d_total{app=\"ab\",rule=\"c\"} 1\n"));
        assert_non_null(strstr(page, "d_total{app=\"a\",rule=\"bc\"} 1\n"));
        size_t lines = 0;
        for (const char *p = page; *p; p++)
                lines += *p == '\n';
        assert_int_equal(lines, 2 + 3000 + 2);
        metrics_registry_free(r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_label_value_escaping),
                cmocka_unit_test(test_counter_with_labels),
                cmocka_unit_test(test_counter_without_labels_and_empty_family),
                cmocka_unit_test(test_gauge_values),
                cmocka_unit_test(test_gauge_set_and_add),
                cmocka_unit_test(test_histogram),
                cmocka_unit_test(test_callback),
                cmocka_unit_test(test_registration_errors),
                cmocka_unit_test(test_wrong_label_count_and_null_are_harmless),
                cmocka_unit_test(test_unregister_keeps_order),
                cmocka_unit_test(test_many_series),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
