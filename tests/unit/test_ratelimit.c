/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "ratelimit.h"
#include "util.h"

#define MS USEC_PER_MSEC

/* Record `calls` in order, then ask at `now`. */
typedef struct scenario {
        const char *name;
        unsigned limit;
        uint64_t window;
        uint64_t calls[8];
        size_t n_calls;
        uint64_t now;
        uint64_t want_next;
        size_t want_in_window;
} scenario;

static const scenario scenarios[] = {
        { "empty limiter allows now", 3, 1000 * MS, {}, 0, 5 * MS, 5 * MS, 0 },
        { "below the limit", 3, 1000 * MS, { 0, 10 * MS }, 2, 20 * MS, 20 * MS, 2 },
        { "full window waits for oldest + window", 3, 1000 * MS, { 0, 10 * MS, 20 * MS }, 3,
          30 * MS, 1000 * MS, 3 },
        { "exactly at oldest + window the oldest has left", 3, 1000 * MS,
          { 0, 10 * MS, 20 * MS }, 3, 1000 * MS, 1000 * MS, 2 },
        { "one usec before oldest + window still blocked", 3, 1000 * MS,
          { 0, 10 * MS, 20 * MS }, 3, 1000 * MS - 1, 1000 * MS, 3 },
        { "ring wraps: oldest is the limit-th newest", 2, 100 * MS,
          { 0, 50 * MS, 100 * MS, 150 * MS }, 4, 160 * MS, 200 * MS, 2 },
        { "ring wraps: window long past", 2, 100 * MS, { 0, 50 * MS, 100 * MS, 150 * MS }, 4,
          900 * MS, 900 * MS, 0 },
        { "limit one", 1, 60 * USEC_PER_SEC, { 7 * MS }, 1, 8 * MS, 7 * MS + 60 * USEC_PER_SEC,
          1 },
        { "burst at the same instant", 3, 1000 * MS, { 5 * MS, 5 * MS, 5 * MS }, 3, 5 * MS,
          1005 * MS, 3 },
        { "60 per minute, a full minute later", 1, 60 * USEC_PER_SEC, { 0 }, 1,
          60 * USEC_PER_SEC, 60 * USEC_PER_SEC, 0 },
        { "unlimited ignores everything", 0, 1000 * MS, { 0, 0, 0, 0, 0 }, 5, 1 * MS, 1 * MS,
          0 },
        { "zero window never blocks", 2, 0, { 3 * MS, 3 * MS, 3 * MS }, 3, 3 * MS, 3 * MS, 0 },
        { "clock stepping back is clamped", 2, 100 * MS, { 50 * MS, 20 * MS }, 2, 60 * MS,
          150 * MS, 2 },
        { "huge window saturates instead of wrapping", 1, UINT64_MAX - 5, { 10 }, 1, 11,
          UINT64_MAX, 1 },
};

static void test_scenarios(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(scenarios); i++) {
                const scenario *s = &scenarios[i];
                ratelimit r;
                assert_int_equal(ratelimit_init(&r, s->limit, s->window), 0);
                for (size_t j = 0; j < s->n_calls; j++)
                        ratelimit_record(&r, s->calls[j]);
                uint64_t next = ratelimit_next_allowed(&r, s->now);
                size_t in_window = ratelimit_in_window(&r, s->now);
                if (next != s->want_next || in_window != s->want_in_window)
                        fail_msg("scenario '%s': next_allowed %llu (want %llu), in_window %zu "
                                 "(want %zu)",
                                 s->name, (unsigned long long)next,
                                 (unsigned long long)s->want_next, in_window,
                                 s->want_in_window);
                ratelimit_done(&r);
        }
}

/* Deterministic so a failure can be replayed. */
static uint64_t xorshift(uint64_t *s) {
        uint64_t x = *s;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return *s = x;
}

#define N_CALLERS 10000

static uint64_t arrivals[N_CALLERS];
static uint64_t sent[N_CALLERS];

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Greedy callers: each arrives at a random time and calls as soon as the
 * limiter lets it. No window of `window` may ever see more than `limit`
 * calls, and the limiter must not hold anyone back without reason. */
static void test_greedy_callers_never_overfill_a_window(void **state) {
        static const struct {
                unsigned limit;
                uint64_t window;
                uint64_t spread; /* arrivals are uniform in [0, spread) */
        } cases[] = {
                { 1, 1000 * MS, 5000 * USEC_PER_SEC },  { 3, 300 * MS, 600 * USEC_PER_SEC },
                { 5, 1000 * MS, 2000 * USEC_PER_SEC },  { 60, 60 * USEC_PER_SEC, 3600 * USEC_PER_SEC },
                { 60, 60 * USEC_PER_SEC, 60 * USEC_PER_SEC }, { 7, 10 * MS, 100 * USEC_PER_SEC },
        };
        uint64_t seed = 0x9E3779B97F4A7C15ull;

        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                unsigned limit = cases[c].limit;
                uint64_t window = cases[c].window;
                ratelimit r;
                assert_int_equal(ratelimit_init(&r, limit, window), 0);

                for (size_t i = 0; i < N_CALLERS; i++)
                        arrivals[i] = xorshift(&seed) % cases[c].spread;
                qsort(arrivals, N_CALLERS, sizeof arrivals[0], cmp_u64);

                uint64_t clock = 0;
                for (size_t i = 0; i < N_CALLERS; i++) {
                        if (arrivals[i] > clock)
                                clock = arrivals[i];
                        uint64_t t = ratelimit_next_allowed(&r, clock);
                        if (t < clock)
                                fail_msg("case %zu: next_allowed went back in time", c);
                        ratelimit_record(&r, t);
                        sent[i] = t;
                        clock = t;
                }

                for (size_t i = 0; i < N_CALLERS; i++) {
                        /* Independent brute-force count of the window (t - window, t]. */
                        size_t n = 0;
                        for (size_t j = i + 1; j-- > 0 && sent[j] + window > sent[i];)
                                n++;
                        if (n > limit)
                                fail_msg("case %zu (limit %u, window %llu): %zu calls in the "
                                         "window ending at call %zu",
                                         c, limit, (unsigned long long)window, n, i);
                        /* Held back only when the window was really full: then the
                         * limit-th previous call is exactly one window earlier. */
                        if (sent[i] > arrivals[i] && sent[i] > (i ? sent[i - 1] : 0)) {
                                if (i < limit || sent[i] - sent[i - limit] != window)
                                        fail_msg("case %zu: call %zu delayed without a full "
                                                 "window",
                                                 c, i);
                        }
                }
                ratelimit_done(&r);
        }
}

/* n more calls: the (limit - n + 1)-th newest call must have left. */
static void test_next_allowed_n(void **state) {
        static const struct {
                unsigned limit, n;
                uint64_t calls[6];
                size_t n_calls;
                uint64_t now, want;
        } cases[] = {
                { 5, 3, { 0, 1 * MS }, 2, 5 * MS, 5 * MS },
                { 5, 3, { 0, 1 * MS, 2 * MS }, 3, 5 * MS, 1000 * MS },
                { 5, 3, { 0, 1 * MS, 2 * MS, 3 * MS }, 4, 5 * MS, 1001 * MS },
                { 5, 3, { 0, 1 * MS, 2 * MS, 3 * MS, 4 * MS }, 5, 5 * MS, 1002 * MS },
                { 5, 1, { 0, 1 * MS, 2 * MS, 3 * MS, 4 * MS }, 5, 5 * MS, 1000 * MS },
                { 5, 5, { 0, 1 * MS, 2 * MS, 3 * MS, 4 * MS }, 5, 5 * MS, 1004 * MS },
                { 5, 6, {}, 0, 5 * MS, UINT64_MAX },
                { 5, 0, { 0, 1 * MS, 2 * MS, 3 * MS, 4 * MS }, 5, 5 * MS, 5 * MS },
                { 2, 1, { 0, 1 * MS, 2 * MS, 3 * MS }, 4, 5 * MS, 1002 * MS },
                { 0, 9, { 0 }, 1, 5 * MS, 5 * MS },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ratelimit r;
                assert_int_equal(ratelimit_init(&r, cases[i].limit, 1000 * MS), 0);
                for (size_t j = 0; j < cases[i].n_calls; j++)
                        ratelimit_record(&r, cases[i].calls[j]);
                uint64_t got = ratelimit_next_allowed_n(&r, cases[i].now, cases[i].n);
                if (got != cases[i].want)
                        fail_msg("case %zu: %llu, want %llu", i, (unsigned long long)got,
                                 (unsigned long long)cases[i].want);
                ratelimit_done(&r);
        }
}

/* A reload keeps the newest calls the server still counts. */
static void test_carry(void **state) {
        ratelimit old, small, big;
        assert_int_equal(ratelimit_init(&old, 4, 1000 * MS), 0);
        for (uint64_t t = 0; t < 6; t++)
                ratelimit_record(&old, t * 100 * MS);
        assert_int_equal(ratelimit_init(&small, 2, 1000 * MS), 0);
        ratelimit_carry(&small, &old);
        assert_int_equal(ratelimit_in_window(&small, 550 * MS), 2);
        assert_int_equal(ratelimit_next_allowed(&small, 550 * MS), 1400 * MS);
        assert_int_equal(ratelimit_init(&big, 10, 1000 * MS), 0);
        ratelimit_carry(&big, &old);
        assert_int_equal(ratelimit_in_window(&big, 550 * MS), 4);
        ratelimit_done(&old);
        ratelimit_done(&small);
        ratelimit_done(&big);
}

static void test_unlimited(void **state) {
        ratelimit r;
        assert_int_equal(ratelimit_init(&r, 0, 60 * USEC_PER_SEC), 0);
        assert_null(r.stamps);
        for (uint64_t t = 0; t < 100000; t++) {
                assert_int_equal(ratelimit_next_allowed(&r, t), t);
                ratelimit_record(&r, t);
        }
        assert_int_equal(ratelimit_in_window(&r, 100000), 0);
        ratelimit_done(&r);
        /* done twice is harmless (reconfigure paths call it on reset structs) */
        ratelimit_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scenarios),
                cmocka_unit_test(test_greedy_callers_never_overfill_a_window),
                cmocka_unit_test(test_next_allowed_n),
                cmocka_unit_test(test_carry),
                cmocka_unit_test(test_unlimited),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
