/* SPDX-License-Identifier: MIT */
/* The alert store's limits (issue 12.9): count and bytes per app, bytes
 * for all apps; the least recently received go first, each drop counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "alert_store.h"
#include "util.h"

#define N_APPS 20

static char names[N_APPS][16];
static app_config app_cfgs[N_APPS];

static alert_store make_store(size_t n_apps) {
        config cfg = { 0 };
        for (size_t i = 0; i < n_apps; i++) {
                snprintf(names[i], sizeof names[i], "app%zu", i);
                app_cfgs[i] = (app_config){ .name = names[i] };
        }
        cfg.apps = app_cfgs;
        cfg.n_apps = n_apps;
        alert_store s;
        assert_int_equal(alert_store_from_config(&cfg, &s), 0);
        return s;
}

/* An alert of n_labels labels whose values are value_len bytes. */
typedef struct built {
        firing_alert fa;
        label_pair labels[64];
        char names[64][8];
        char *values[64];
} built;

static void build(built *b, size_t n_labels, size_t value_len, unsigned tag) {
        memset(b, 0, sizeof *b);
        for (size_t i = 0; i < n_labels; i++) {
                snprintf(b->names[i], sizeof b->names[i], "l%zu", i);
                b->values[i] = malloc(value_len + 1);
                assert_non_null(b->values[i]);
                memset(b->values[i], 'a' + (int)(tag % 26), value_len);
                b->values[i][value_len] = '\0';
                b->labels[i] = (label_pair){ b->names[i], b->values[i] };
        }
        b->fa.labels = b->labels;
        b->fa.n_labels = n_labels;
}

static void unbuild(built *b) {
        for (size_t i = 0; i < b->fa.n_labels; i++)
                free(b->values[i]);
}

static void put(alert_store *s, app_slot *a, const char *key, size_t n_labels, size_t value_len) {
        built b;
        build(&b, n_labels, value_len, (unsigned)strlen(key));
        assert_true(alert_store_put(s, a, key, &b.fa) >= 0);
        unbuild(&b);
}

static bool holds(const app_slot *a, const char *key) {
        for (size_t i = 0; i < a->n_alerts; i++)
                if (streq(a->meta[i].key, key))
                        return true;
        return false;
}

static size_t sum_bytes(const alert_store *s) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_apps; i++) {
                size_t m = 0;
                for (size_t k = 0; k < s->apps[i].n_alerts; k++)
                        m += s->apps[i].meta[k].bytes;
                assert_int_equal(m, s->apps[i].bytes);
                n += m;
        }
        return n;
}

static void test_count_limit(void **state) {
        (void)state;
        alert_store s = make_store(1);
        app_slot *a = &s.apps[0];
        char key[32];
        for (int i = 0; i <= ALERT_STORE_MAX_PER_APP; i++) {
                snprintf(key, sizeof key, "k%d", i);
                put(&s, a, key, 1, 4);
        }
        assert_int_equal(a->n_alerts, ALERT_STORE_MAX_PER_APP);
        assert_int_equal(a->dropped[ALERT_DROP_APP_COUNT], 1);
        assert_false(holds(a, "k0"));
        assert_true(holds(a, "k1"));
        assert_int_equal(sum_bytes(&s), s.bytes);
        alert_store_done(&s);
}

/* 1000 alerts x 64 labels x 1 KiB, the reproduction, stays within
 * 1 MiB for the app; the newest is always kept. */
static void test_app_bytes_limit(void **state) {
        (void)state;
        alert_store s = make_store(1);
        app_slot *a = &s.apps[0];
        char key[32];
        for (int i = 0; i < 40; i++) {
                snprintf(key, sizeof key, "big%d", i);
                put(&s, a, key, 64, 1024);
                assert_true(a->bytes <= ALERT_STORE_APP_BYTES);
                assert_true(holds(a, key));
        }
        assert_true(a->dropped[ALERT_DROP_APP_BYTES] > 0);
        assert_int_equal(a->dropped[ALERT_DROP_APP_BYTES] + a->n_alerts, 40);
        assert_false(holds(a, "big0"));
        assert_true(a->bytes > ALERT_STORE_APP_BYTES / 2);
        assert_int_equal(sum_bytes(&s), s.bytes);
        alert_store_done(&s);
}

/* A repeat counts as news: the alert re-sent is kept, the stale one goes. */
static void test_repeat_is_newest(void **state) {
        (void)state;
        alert_store s = make_store(1);
        app_slot *a = &s.apps[0];
        put(&s, a, "old", 64, 1024);
        put(&s, a, "stale", 64, 1024);
        built b;
        build(&b, 64, 1024, 3); /* the same text as "old" got */
        assert_int_equal(alert_store_put(&s, a, "old", &b.fa), 0);
        unbuild(&b);
        char key[32];
        for (int i = 0; a->dropped[ALERT_DROP_APP_BYTES] == 0; i++) {
                snprintf(key, sizeof key, "n%d", i);
                put(&s, a, key, 64, 1024);
        }
        assert_int_equal(a->dropped[ALERT_DROP_APP_BYTES], 1);
        assert_false(holds(a, "stale"));
        assert_true(holds(a, "old"));
        alert_store_done(&s);
}

/* 20 apps at their own limit are over the total: the oldest anywhere go. */
static void test_total_bytes_limit(void **state) {
        (void)state;
        alert_store s = make_store(N_APPS);
        char key[32];
        size_t dropped_total = 0;
        for (int round = 0; round < 14; round++)
                for (size_t i = 0; i < N_APPS; i++) {
                        snprintf(key, sizeof key, "r%d", round);
                        put(&s, &s.apps[i], key, 64, 1024);
                        assert_true(s.bytes <= ALERT_STORE_TOTAL_BYTES);
                }
        for (size_t i = 0; i < N_APPS; i++) {
                dropped_total += s.apps[i].dropped[ALERT_DROP_TOTAL_BYTES];
                assert_int_equal(s.apps[i].dropped[ALERT_DROP_APP_BYTES], 0);
        }
        assert_true(dropped_total > 0);
        /* the first round went first, app by app */
        assert_false(holds(&s.apps[0], "r0"));
        assert_true(holds(&s.apps[N_APPS - 1], "r13"));
        assert_int_equal(sum_bytes(&s), s.bytes);

        for (size_t i = 0; i < N_APPS; i++)
                for (int round = 0; round < 14; round++) {
                        snprintf(key, sizeof key, "r%d", round);
                        (void)alert_store_remove(&s, &s.apps[i], key);
                }
        assert_int_equal(s.bytes, 0);
        alert_store_done(&s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_count_limit),
                cmocka_unit_test(test_app_bytes_limit),
                cmocka_unit_test(test_repeat_is_newest),
                cmocka_unit_test(test_total_bytes_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
