/* SPDX-License-Identifier: MIT */
/* schedule.c (the polling schedule's arithmetic) and breaker.c (the circuit
 * breaker's count and transitions). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "breaker.h"
#include "schedule.h"
#include "util.h"

#define MS USEC_PER_MSEC
#define S USEC_PER_SEC

static void check(const char *what, uint64_t got, uint64_t want) {
        if (got != want)
                fail_msg("%s: got %" PRIu64 " usec, want %" PRIu64, what, got, want);
}

static void test_backoff(void **state) {
        static const struct {
                const char *name;
                uint64_t base;
                unsigned failures;
                uint64_t want;
        } cases[] = {
                { "no failure: the interval itself", 10 * S, 0, 10 * S },
                { "doubles per failure", 10 * S, 1, 20 * S },
                { "three failures", 10 * S, 3, 80 * S },
                { "capped at five minutes", 10 * S, 5, SCHEDULE_BACKOFF_MAX_USEC },
                { "exactly the cap", 75 * S, 2, 300 * S },
                { "more than 10 failures count as 10", 1 * MS, 40, 1024 * MS },
                { "an interval above the cap is kept", 10 * USEC_PER_MIN, 3, 10 * USEC_PER_MIN },
                { "an overflowing shift is caught", UINT64_MAX / 2, 10, UINT64_MAX / 2 },
                { "a zero interval stays zero", 0, 1, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check(cases[i].name, schedule_backoff(cases[i].base, cases[i].failures), cases[i].want);
}

/* A release in flight: doubling, but never more than 4 looks' worth, so a
 * stuck state that appears during an error streak is seen soon. */
static void test_in_flight_backoff(void **state) {
        static const struct {
                const char *name;
                uint64_t active;
                unsigned failures;
                uint64_t want;
        } cases[] = {
                { "no failure: the interval", 1 * S, 0, 1 * S },
                { "first failure doubles", 1 * S, 1, 2 * S },
                { "second failure: the cap", 1 * S, 2, 4 * S },
                { "four in a row stay at the cap", 1 * S, 4, 4 * S },
                { "six in a row (15 s and 28 s in 0.1) stay at the cap", 1 * S, 6, 4 * S },
                { "a long streak", 5 * S, 50, 20 * S },
                { "huge interval does not overflow", UINT64_MAX / 2, 3, UINT64_MAX / 2 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check(cases[i].name, schedule_in_flight_backoff(cases[i].active, cases[i].failures), cases[i].want);
}

static void test_active_delay(void **state) {
        static const struct {
                const char *name;
                uint64_t interval;
                int64_t next_fire_ms, now_ms;
                uint64_t want;
        } cases[] = {
                { "no holding rule: the interval", 10 * S, 0, 1000, 10 * S },
                { "a `for` ending sooner wins", 10 * S, 4000, 1000, 3 * S },
                { "a `for` ending later changes nothing", 10 * S, 60000, 1000, 10 * S },
                { "never sooner than the minimum", 10 * S, 1050, 1000, SCHEDULE_MIN_REPOLL_USEC },
                { "an expiry already past: the minimum", 10 * S, 500, 1000, SCHEDULE_MIN_REPOLL_USEC },
                { "an interval below the minimum is kept", 100 * MS, 1001, 1000, 100 * MS },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check(cases[i].name,
                      schedule_active_delay(cases[i].interval, cases[i].next_fire_ms, cases[i].now_ms),
                      cases[i].want);
}

static void test_startup_offset(void **state) {
        static const struct {
                const char *name;
                size_t i, n;
                uint64_t idle;
                uint64_t want;
        } cases[] = {
                { "one app polls at once", 0, 1, 30 * S, 0 },
                { "the first of many at once", 0, 4, 30 * S, 0 },
                { "even spread over 3 s", 1, 4, 30 * S, 750 * MS },
                { "the last before the window ends", 3, 4, 30 * S, 2250 * MS },
                { "a short idle interval shrinks the window", 1, 2, 1 * S, 500 * MS },
                { "no apps", 0, 0, 30 * S, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check(cases[i].name, schedule_startup_offset(cases[i].i, cases[i].n, cases[i].idle),
                      cases[i].want);
}

static void test_action_retry(void **state) {
        static const uint64_t want[] = { 1 * S, 2 * S, 4 * S, 8 * S, 16 * S, 32 * S, 64 * S, 64 * S, 64 * S };
        for (unsigned i = 0; i < ELEMENTSOF(want); i++) {
                char what[32];
                snprintf(what, sizeof what, "after %u attempts", i);
                check(what, schedule_action_retry(i), want[i]);
        }
        check("a huge count stays capped", schedule_action_retry(UINT32_MAX), 64 * S);
}

static void test_breaker_count(void **state) {
        const int64_t now = 10 * BREAKER_WINDOW_MS;
        act_record acts[] = {
                { .intent_ms = now - BREAKER_WINDOW_MS - 1 }, /* just outside */
                { .intent_ms = now - BREAKER_WINDOW_MS },     /* just inside */
                { .intent_ms = now - 1000, .result = ACT_FAILED },
                { .intent_ms = now, .result = ACT_UNCONFIRMED },
        };
        app_state s = { .acts = acts, .n_acts = ELEMENTSOF(acts) };
        assert_int_equal(breaker_count(&s, now), 3);
        assert_int_equal(breaker_count(&s, now + BREAKER_WINDOW_MS + 1), 0);
        app_state empty = {};
        assert_int_equal(breaker_count(&empty, now), 0);
        assert_int_equal(breaker_count(NULL, now), 0);
}

static void test_breaker_update(void **state) {
        static const struct {
                const char *name;
                bool open;
                size_t actions;
                unsigned max;
                bool want_open;
                breaker_change want;
        } cases[] = {
                { "below the max stays closed", false, 4, 5, false, BREAKER_SAME },
                { "reaching the max opens", false, 5, 5, true, BREAKER_OPENED },
                { "above the max stays open", true, 7, 5, true, BREAKER_SAME },
                { "falling below closes", true, 4, 5, false, BREAKER_CLOSED },
                { "max 0 is always open", false, 0, 0, true, BREAKER_OPENED },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool open = cases[i].open;
                breaker_change c = breaker_update(&open, cases[i].actions, cases[i].max);
                if (c != cases[i].want || open != cases[i].want_open)
                        fail_msg("%s: got change %d open %d", cases[i].name, c, open);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_in_flight_backoff),
                cmocka_unit_test(test_active_delay),
                cmocka_unit_test(test_startup_offset),
                cmocka_unit_test(test_action_retry),
                cmocka_unit_test(test_breaker_count),
                cmocka_unit_test(test_breaker_update),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
