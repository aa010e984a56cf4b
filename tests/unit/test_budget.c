/* SPDX-License-Identifier: MIT */
/* Table tests of the budget's decisions, AIMD, plan and check line. The
 * long simulations over virtual hours are in test_budget_sim.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "budget.h"
#include "util.h"

#define MS USEC_PER_MSEC
#define S USEC_PER_SEC
#define A_ BUDGET_ACTION
#define F_ BUDGET_IN_FLIGHT
#define H_ BUDGET_HINTED
#define I_ BUDGET_IDLE

/* R=10 per 10s, no margin: the poll pace is 8 per 10s (2 held for
 * actions), one poll every 1.25s, a burst of 3, the idle side owed one
 * call in every 10 pacer slots (after 9 x 1.25s = 11.25s). */
static budget_options small(void) {
        budget_options o = budget_options_default(10, 10 * S);
        o.margin_usec = 0;
        return o;
}

typedef struct sent {
        budget_class cls;
        uint64_t t;
} sent;

typedef struct pick_case {
        const char *name;
        budget_options (*opts)(void);
        sent before[12];
        size_t n_before;
        size_t waiting[_BUDGET_CLASS_MAX]; /* action, in flight, hinted, idle */
        uint64_t now;
        bool want_any;
        budget_class want_cls;
        uint64_t want_when;
} pick_case;

static budget_options unlimited(void) {
        return budget_options_default(0, 60 * S);
}

static budget_options tiny(void) {
        budget_options o = budget_options_default(3, 10 * S);
        o.margin_usec = 0;
        return o;
}

static budget_options margin(void) {
        budget_options o = budget_options_default(2, 10 * S);
        o.reserve = 0;
        o.margin_usec = 500 * MS;
        return o;
}

#define EIGHT_POLLS                                                                              \
        { I_, 0 }, { I_, 1250 * MS }, { I_, 2500 * MS }, { I_, 3750 * MS }, { I_, 5000 * MS },   \
                { I_, 6250 * MS }, { I_, 7500 * MS }, { I_, 8750 * MS }

static const pick_case pick_cases[] = {
        { "nothing waits", small, {}, 0, { 0, 0, 0, 0 }, 5 * S, false, 0, 0 },
        { "a fresh budget lets a poll go now", small, {}, 0, { 0, 0, 0, 1 }, 100 * S, true, I_,
          100 * S },
        { "the round robin leaves the burst to releases in flight", small, { { I_, 100 * S } }, 1,
          { 0, 0, 0, 1 }, 100 * S, true, I_, 101250 * MS },
        { "a release in flight due just after an idle poll goes at once", small, { { I_, 100 * S } }, 1,
          { 0, 1, 0, 0 }, 100 * S, true, F_, 100 * S },
        { "an action goes before everything", small, {}, 0, { 1, 3, 3, 3 }, 7 * S, true, A_, 7 * S },
        { "the burst is three, then the pace", small, { { I_, 100 * S }, { I_, 100 * S }, { I_, 100 * S } },
          3, { 0, 1, 0, 0 }, 100 * S, true, F_, 101250 * MS },
        { "two polls of a burst leave room for a third", small, { { I_, 100 * S }, { I_, 100 * S } }, 2,
          { 0, 1, 0, 0 }, 100 * S, true, F_, 100 * S },
        { "polls leave two calls of the window to actions", small, { EIGHT_POLLS }, 8, { 0, 1, 0, 0 },
          9 * S, true, F_, 10 * S },
        { "an action takes the reserve at once", small, { EIGHT_POLLS }, 8, { 1, 1, 0, 0 }, 9 * S, true,
          A_, 9 * S },
        { "the re-read's action takes the second reserved call", small, { EIGHT_POLLS, { A_, 9 * S } }, 9,
          { 1, 1, 0, 0 }, 9100 * MS, true, A_, 9100 * MS },
        { "a window full of actions holds the next action", small,
          { { A_, 0 }, { A_, 0 }, { A_, 0 }, { A_, 0 }, { A_, 0 }, { A_, 0 }, { A_, 0 }, { A_, 0 },
            { A_, 0 }, { A_, 1 * S } },
          10, { 1, 0, 0, 0 }, 2 * S, true, A_, 10 * S },
        { "actions do not move the pacer", small, { { A_, 0 }, { A_, 0 }, { A_, 0 }, { A_, 0 } }, 4,
          { 0, 0, 0, 1 }, 0, true, I_, 0 },
        { "the idle side owed from the start goes first", small, {}, 0, { 0, 1, 0, 1 }, 0, true, I_, 0 },
        { "after an idle poll, releases in flight first", small, { { I_, 0 } }, 1, { 0, 1, 0, 1 }, 0,
          true, F_, 0 },
        { "idle is owed again after nine slots", small, { { I_, 0 } }, 1, { 0, 1, 0, 1 }, 11250 * MS,
          true, I_, 11250 * MS },
        { "not yet after eight", small, { { I_, 0 } }, 1, { 0, 1, 0, 1 }, 11 * S, true, F_, 11 * S },
        { "a hinted poll goes before the round robin", small, {}, 0, { 0, 0, 1, 1 }, 0, true, H_, 0 },
        { "an owed idle side sends the hinted poll first", small, {}, 0, { 0, 1, 1, 1 }, 0, true, H_, 0 },
        { "hinted polls in a row", small, { { H_, 0 }, { H_, 0 } }, 2, { 0, 0, 1, 1 }, 0, true, H_, 0 },
        { "after three hints in a row the round robin gets a turn", small,
          { { H_, 10 * S }, { H_, 10 * S }, { H_, 10 * S } }, 3, { 0, 0, 1, 1 }, 20 * S, true, I_, 20 * S },
        { "... and then hints again", small, { { H_, 10 * S }, { H_, 10 * S }, { H_, 10 * S }, { I_, 20 * S } },
          4, { 0, 0, 1, 1 }, 20 * S, true, H_, 20 * S },
        { "in flight before hinted when idle is not owed", small, { { H_, 0 } }, 1, { 0, 1, 1, 0 }, 0,
          true, F_, 0 },
        { "unlimited: everything now, by rank", unlimited,
          { { I_, 0 }, { I_, 0 }, { I_, 0 }, { I_, 0 }, { I_, 0 }, { I_, 0 } }, 6, { 0, 1, 1, 1 }, 0,
          true, F_, 0 },
        { "a tiny share keeps one call for actions", tiny, { { I_, 0 }, { I_, 5 * S } }, 2,
          { 0, 0, 0, 1 }, 6 * S, true, I_, 10 * S },
        { "a tiny share: the action goes", tiny, { { I_, 0 }, { I_, 5 * S } }, 2, { 1, 0, 0, 1 }, 6 * S,
          true, A_, 6 * S },
        { "the guard counts the margin", margin, { { I_, 0 }, { I_, 5250 * MS } }, 2, { 0, 0, 0, 1 },
          10 * S, true, I_, 10500 * MS },
};

static void test_pick(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(pick_cases); i++) {
                const pick_case *c = &pick_cases[i];
                budget_options o = c->opts();
                budget b;
                assert_int_equal(budget_init(&b, &o), 0);
                for (size_t j = 0; j < c->n_before; j++)
                        budget_record(&b, c->before[j].cls, c->before[j].t);
                budget_queue q = {};
                memcpy(q.waiting, c->waiting, sizeof q.waiting);
                budget_decision d = { _BUDGET_CLASS_MAX, 0 };
                bool any = budget_pick(&b, &q, c->now, &d);
                if (any != c->want_any || (any && (d.cls != c->want_cls || d.when != c->want_when)))
                        fail_msg("'%s': got %s %s at %llu, want %s %s at %llu", c->name,
                                 any ? "yes" : "no", any ? budget_class_name(d.cls) : "-",
                                 (unsigned long long)d.when, c->want_any ? "yes" : "no",
                                 c->want_any ? budget_class_name(c->want_cls) : "-",
                                 (unsigned long long)c->want_when);
                /* budget_when agrees with the pick for the winner */
                if (any && budget_when(&b, d.cls, &q, c->now) != d.when)
                        fail_msg("'%s': budget_when disagrees with budget_pick", c->name);
                budget_done(&b);
        }
}

static void test_when(void **state) {
        budget_options o = small();
        budget b;
        assert_int_equal(budget_init(&b, &o), 0);
        budget_queue q = { .waiting = { 1, 0, 0, 1 } };
        assert_int_equal(budget_when(&b, I_, &q, 5 * S), BUDGET_NEVER);
        assert_int_equal(budget_when(&b, A_, &q, 5 * S), 5 * S);
        budget_queue empty = {};
        /* asked about a class with nothing waiting: as if one call of it waited */
        assert_int_equal(budget_when(&b, F_, &empty, 5 * S), 5 * S);
        assert_int_equal(budget_when(&b, _BUDGET_CLASS_MAX, &empty, 5 * S), BUDGET_NEVER);
        for (int i = 0; i < 3; i++)
                budget_record(&b, F_, 5 * S);
        /* the round robin takes no burst ... */
        assert_int_equal(budget_when(&b, I_, &empty, 5 * S), 8750 * MS);
        /* ... a look at a release in flight and a hinted poll do */
        assert_int_equal(budget_when(&b, F_, &empty, 5 * S), 6250 * MS);
        assert_int_equal(budget_when(&b, H_, &empty, 5 * S), 6250 * MS);
        budget_done(&b);
}

static void test_options(void **state) {
        static const struct {
                unsigned rate, reserve, want_reserve;
        } cases[] = {
                { 30, 2, 2 }, { 5, 2, 2 }, { 4, 2, 1 }, { 3, 2, 1 }, { 2, 2, 0 }, { 1, 2, 0 }, { 0, 2, 0 },
                { 600, 2, 2 }, { 30, 0, 0 }, { 30, 20, 14 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                budget_options o = budget_options_default(cases[i].rate, 60 * S);
                o.reserve = cases[i].reserve;
                budget b;
                assert_int_equal(budget_init(&b, &o), 0);
                if (b.reserve != cases[i].want_reserve)
                        fail_msg("rate %u reserve %u: effective %u, want %u", cases[i].rate,
                                 cases[i].reserve, b.reserve, cases[i].want_reserve);
                budget_done(&b);
        }
        budget_options d = budget_options_default(30, 60 * S);
        assert_int_equal(d.burst, 3);
        assert_int_equal(d.reserve, 2);
        assert_int_equal(d.idle_share_percent, 10);
        assert_int_equal(d.margin_usec, 250 * MS);
        assert_int_equal(budget_init(NULL, &d), -EINVAL);
        assert_string_equal(budget_class_name(BUDGET_HINTED), "hinted");
        assert_string_equal(budget_class_name(_BUDGET_CLASS_MAX), "unknown");
}

/* ---- AIMD ---- */

typedef enum { THROTTLE, CHECK } aimd_op;

typedef struct aimd_step {
        aimd_op op;
        uint64_t sent, now; /* sent only for THROTTLE */
        bool want_return;   /* THROTTLE: starts an episode; CHECK: throttled */
        double want_per_min;
} aimd_step;

/* R=16 per 10s, no margin: floor and step 2 calls; 96 calls/min clean. */
static const struct {
        const char *name;
        aimd_step steps[16];
        size_t n;
} aimd_cases[] = {
        { "clean", { { CHECK, 0, 5 * S, false, 96 } }, 1 },
        { "a throttle halves and starts an episode", { { THROTTLE, 1 * S, 2 * S, true, 48 } }, 1 },
        { "answers to calls sent before the cut do not cut again",
          { { THROTTLE, 1 * S, 2 * S, true, 48 }, { THROTTLE, 1500 * MS, 2100 * MS, false, 48 },
            { THROTTLE, 2 * S, 2200 * MS, false, 24 } },
          3 },
        { "halving stops at 1/8",
          { { THROTTLE, 1 * S, 1 * S, true, 48 }, { THROTTLE, 2 * S, 2 * S, false, 24 },
            { THROTTLE, 3 * S, 3 * S, false, 12 }, { THROTTLE, 4 * S, 4 * S, false, 12 },
            { CHECK, 0, 4 * S, true, 12 } },
          5 },
        { "one step back per clean window",
          { { THROTTLE, 1 * S, 1 * S, true, 48 }, { THROTTLE, 2 * S, 2 * S, false, 24 },
            { CHECK, 0, 11999 * MS, true, 24 }, { CHECK, 0, 12 * S, true, 36 },
            { CHECK, 0, 22 * S, true, 48 }, { CHECK, 0, 61999 * MS, true, 84 },
            { CHECK, 0, 62 * S, false, 96 }, { CHECK, 0, 500 * S, false, 96 } },
          8 },
        { "a throttle while recovering restarts the clean window",
          { { THROTTLE, 0, 0, true, 48 }, { CHECK, 0, 10 * S, true, 60 },
            { THROTTLE, 15 * S, 15 * S, false, 30 }, { CHECK, 0, 24 * S, true, 30 },
            { CHECK, 0, 25 * S, true, 42 } },
          5 },
        { "after full recovery a throttle is a new episode",
          { { THROTTLE, 0, 0, true, 48 }, { CHECK, 0, 40 * S, false, 96 },
            { THROTTLE, 41 * S, 41 * S, true, 48 } },
          3 },
};

static void test_aimd(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(aimd_cases); i++) {
                budget_options o = budget_options_default(16, 10 * S);
                o.margin_usec = 0;
                budget b;
                assert_int_equal(budget_init(&b, &o), 0);
                for (size_t j = 0; j < aimd_cases[i].n; j++) {
                        const aimd_step *s = &aimd_cases[i].steps[j];
                        bool got = s->op == THROTTLE ? budget_on_throttled(&b, s->sent, s->now)
                                                     : budget_is_throttled(&b, s->now);
                        double per_min = budget_calls_per_minute(&b, s->now);
                        if (got != s->want_return || per_min < s->want_per_min - 1e-9 ||
                            per_min > s->want_per_min + 1e-9)
                                fail_msg("'%s' step %zu: returned %d (want %d), %.3f calls/min "
                                         "(want %.3f)",
                                         aimd_cases[i].name, j, got, s->want_return, per_min,
                                         s->want_per_min);
                }
                budget_done(&b);
        }
}

/* Throttled, the pacer spaces polls by the halved pace and drops the burst. */
static void test_throttled_pace(void **state) {
        budget_options o = small();
        budget b;
        assert_int_equal(budget_init(&b, &o), 0);
        assert_true(budget_on_throttled(&b, 0, 0));
        budget_queue q = { .waiting = { 0, 1, 0, 0 } };
        /* the cut backs off one new interval (2.5s) from now */
        assert_int_equal(budget_when(&b, F_, &q, 0), 2500 * MS);
        budget_record(&b, F_, 2500 * MS);
        assert_int_equal(budget_when(&b, F_, &q, 2500 * MS), 5 * S);
        /* the action is not paced */
        assert_int_equal(budget_when(&b, A_, &q, 2500 * MS), 2500 * MS);
        budget_done(&b);
}

static void test_unlimited_throttle(void **state) {
        budget_options o = unlimited();
        budget b;
        assert_int_equal(budget_init(&b, &o), 0);
        assert_false(budget_on_throttled(&b, 0, 0));
        assert_false(budget_is_throttled(&b, 0));
        assert_true(budget_calls_per_minute(&b, 0) == 0);
        budget_done(&b);
}

static void test_reconfigure(void **state) {
        budget_options o = small();
        budget b;
        assert_int_equal(budget_init(&b, &o), 0);
        for (uint64_t t = 0; t < 8; t++)
                budget_record(&b, I_, t * 1250 * MS);
        assert_true(budget_on_throttled(&b, 9 * S, 9 * S));
        /* doubled share: the eight calls still count, the pace stays at half */
        budget_options twice = o;
        twice.rate_limit = 20;
        assert_int_equal(budget_reconfigure(&b, &twice), 0);
        assert_int_equal(budget_in_window(&b, 9 * S), 8);
        assert_true(budget_is_throttled(&b, 9 * S));
        assert_true(budget_calls_per_minute(&b, 9 * S) > 59.99 && budget_calls_per_minute(&b, 9 * S) < 60.01);
        /* shrunk below what the window holds: only the newest count */
        budget_options two = o;
        two.rate_limit = 2;
        assert_int_equal(budget_reconfigure(&b, &two), 0);
        assert_int_equal(budget_in_window(&b, 9 * S), 2);
        budget_queue q = { .waiting = { 1 } };
        budget_decision d;
        assert_true(budget_pick(&b, &q, 9 * S, &d));
        assert_int_equal(d.when, 17500 * MS);
        assert_int_equal(budget_reconfigure(&b, NULL), -EINVAL);
        budget_done(&b);
}

/* ---- the plan ---- */

typedef struct plan_case {
        const char *name;
        unsigned rate;
        double pace;
        size_t in_flight, idle;
        uint64_t active, poll;
        bool want_stretched;
        uint64_t want_in_flight, want_idle, want_sweep;
} plan_case;

/* Defaults: 30/min, 250ms margin, 2 held back: 28 calls per 60.25s for
 * looks and polls = 0.46473/s; the idle share is 10% of that. */
static const plan_case plan_cases[] = {
        { "300 idle apps: the sweep is the live figure", 30, 1, 0, 300, 5 * S, 30 * S, false, 5 * S,
          645535715, 645535715 },
        { "two releases fit at 5s", 30, 1, 2, 0, 5 * S, 30 * S, false, 5 * S, 30 * S, 0 },
        { "three do not: one equal stretched interval", 30, 1, 3, 0, 5 * S, 30 * S, true, 6455358,
          30 * S, 0 },
        { "the idle share stays open", 30, 1, 3, 10, 5 * S, 30 * S, true, 7172620, 215178572,
          215178572 },
        { "one release, idle apps share the rest", 30, 1, 1, 10, 5 * S, 30 * S, false, 5 * S, 37774295,
          37774295 },
        { "few idle apps: polled at poll_interval", 30, 1, 0, 5, 5 * S, 30 * S, false, 5 * S, 30 * S,
          10758929 },
        { "throttled to half: the sweep doubles", 30, 0.5, 0, 300, 5 * S, 30 * S, false, 5 * S,
          1291071429, 1291071429 },
        { "the pace never plans below 1/8", 30, 0.01, 0, 300, 5 * S, 30 * S, false, 5 * S, 5164285715,
          5164285715 },
        { "unlimited", 0, 1, 50, 5000, 5 * S, 30 * S, false, 5 * S, 30 * S, 0 },
        { "nothing to do", 30, 1, 0, 0, 5 * S, 30 * S, false, 5 * S, 30 * S, 0 },
};

static bool near(uint64_t a, uint64_t b) {
        return (a > b ? a - b : b - a) <= 1 * MS;
}

static void test_plan(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(plan_cases); i++) {
                const plan_case *c = &plan_cases[i];
                budget_options o = budget_options_default(c->rate, 60 * S);
                budget_demand d = { c->in_flight, c->idle, c->active, c->poll };
                budget_plan p;
                budget_plan_compute(&o, c->pace, &d, &p);
                if (p.stretched != c->want_stretched || !near(p.in_flight_interval_usec, c->want_in_flight) ||
                    !near(p.idle_interval_usec, c->want_idle) || !near(p.idle_sweep_usec, c->want_sweep))
                        fail_msg("'%s': stretched %d in flight %llu idle %llu sweep %llu; want %d %llu "
                                 "%llu %llu",
                                 c->name, p.stretched, (unsigned long long)p.in_flight_interval_usec,
                                 (unsigned long long)p.idle_interval_usec,
                                 (unsigned long long)p.idle_sweep_usec, c->want_stretched,
                                 (unsigned long long)c->want_in_flight, (unsigned long long)c->want_idle,
                                 (unsigned long long)c->want_sweep);
        }
}

static void test_plan_now_follows_throttling(void **state) {
        budget_options o = budget_options_default(30, 60 * S);
        budget b;
        assert_int_equal(budget_init(&b, &o), 0);
        budget_demand d = { 0, 300, 5 * S, 30 * S };
        budget_plan p;
        budget_plan_now(&b, &d, 0, &p);
        assert_true(near(p.idle_sweep_usec, 645535715));
        assert_true(budget_on_throttled(&b, 0, 0));
        budget_plan_now(&b, &d, 1 * S, &p);
        assert_true(near(p.idle_sweep_usec, 1291071429));
        budget_done(&b);
}

/* ---- the check line ---- */

static const struct {
        unsigned rate;
        uint64_t window;
        size_t apps;
        uint64_t poll, active;
        int want_ret;
        const char *want;
} check_cases[] = {
        { 30, 60 * S, 300, 30 * S, 5 * S, 1,
          "budget: 30 calls/min (rate_limit); 300 apps need 600 calls/min at poll_interval 30s: idle apps "
          "will be polled about every 10m" },
        { 30, 60 * S, 10, 30 * S, 5 * S, 0,
          "budget: 30 calls/min (rate_limit); 10 apps need 20 calls/min at poll_interval 30s: ok, 2 "
          "releases in flight at a time get active_poll_interval 5s" },
        { 30, 60 * S, 15, 30 * S, 5 * S, 0,
          "budget: 30 calls/min (rate_limit); 15 apps need 30 calls/min at poll_interval 30s: ok, 2 "
          "releases in flight at a time get active_poll_interval 5s" },
        { 30, 60 * S, 16, 30 * S, 5 * S, 1,
          "budget: 30 calls/min (rate_limit); 16 apps need 32 calls/min at poll_interval 30s: idle apps "
          "will be polled about every 32s" },
        { 30, 60 * S, 1, 30 * S, 5 * S, 0,
          "budget: 30 calls/min (rate_limit); 1 app needs 2 calls/min at poll_interval 30s: ok, every app "
          "can have a release in flight at active_poll_interval 5s" },
        { 30, 60 * S, 10, 30 * S, 3 * S, 0,
          "budget: 30 calls/min (rate_limit); 10 apps need 20 calls/min at poll_interval 30s: ok, 1 "
          "release in flight at a time gets active_poll_interval 3s" },
        { 30, 60 * S, 10, 30 * S, 1 * S, 0,
          "budget: 30 calls/min (rate_limit); 10 apps need 20 calls/min at poll_interval 30s: ok, but a "
          "release in flight is looked at only about every 2.2s, not every active_poll_interval 1s" },
        { 30, 60 * S, 1000, 30 * S, 5 * S, 1,
          "budget: 30 calls/min (rate_limit); 1000 apps need 2000 calls/min at poll_interval 30s: idle "
          "apps will be polled about every 33m" },
        { 30, 60 * S, 10000, 30 * S, 5 * S, 1,
          "budget: 30 calls/min (rate_limit); 10000 apps need 20000 calls/min at poll_interval 30s: idle "
          "apps will be polled about every 5h30m" },
        { 60, 60 * S, 300, 5 * USEC_PER_MIN, 5 * S, 0,
          "budget: 60 calls/min (rate_limit); 300 apps need 60 calls/min at poll_interval 5m: ok, 4 "
          "releases in flight at a time get active_poll_interval 5s" },
        { 7, 90 * S, 7, 45 * S, 5 * S, 1,
          "budget: 4.7 calls/min (rate_limit); 7 apps need 9.3 calls/min at poll_interval 45s: idle apps "
          "will be polled about every 1m30s" },
        { 30, 6 * S, 300, 3 * S, 500 * MS, 1,
          "budget: 300 calls/min (rate_limit); 300 apps need 6000 calls/min at poll_interval 3s: idle "
          "apps will be polled about every 1m" },
        { 30, 60 * S, 95, 30 * S, 5 * S, 1,
          "budget: 30 calls/min (rate_limit); 95 apps need 190 calls/min at poll_interval 30s: idle apps "
          "will be polled about every 3m10s" },
        { 0, 60 * S, 300, 30 * S, 5 * S, 0,
          "budget: unlimited (rate_limit 0); 300 apps need 600 calls/min at poll_interval 30s: ok" },
        { 30, 60 * S, 0, 30 * S, 5 * S, 0,
          "budget: 30 calls/min (rate_limit); 0 apps need 0 calls/min at poll_interval 30s: ok, every "
          "app can have a release in flight at active_poll_interval 5s" },
};

static void test_check_line(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(check_cases); i++) {
                char buf[256];
                int r = budget_check_line(buf, sizeof buf, check_cases[i].rate, check_cases[i].window,
                                          check_cases[i].apps, check_cases[i].poll, check_cases[i].active);
                if (r != check_cases[i].want_ret || !streq(buf, check_cases[i].want))
                        fail_msg("case %zu: returned %d (want %d)\n  got  '%s'\n  want '%s'", i, r,
                                 check_cases[i].want_ret, buf, check_cases[i].want);
        }
}

static void test_check_line_errors(void **state) {
        char buf[256];
        assert_int_equal(budget_check_line(buf, 40, 30, 60 * S, 300, 30 * S, 5 * S), -ENOBUFS);
        assert_int_equal(budget_check_line(buf, sizeof buf, 30, 60 * S, 300, 0, 5 * S), -EINVAL);
        assert_int_equal(budget_check_line(buf, sizeof buf, 30, 60 * S, 300, 30 * S, 0), -EINVAL);
        assert_int_equal(budget_check_line(buf, sizeof buf, 30, 0, 300, 30 * S, 5 * S), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pick),
                cmocka_unit_test(test_when),
                cmocka_unit_test(test_options),
                cmocka_unit_test(test_aimd),
                cmocka_unit_test(test_throttled_pace),
                cmocka_unit_test(test_unlimited_throttle),
                cmocka_unit_test(test_reconfigure),
                cmocka_unit_test(test_plan),
                cmocka_unit_test(test_plan_now_follows_throttling),
                cmocka_unit_test(test_check_line),
                cmocka_unit_test(test_check_line_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
