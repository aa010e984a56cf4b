/* SPDX-License-Identifier: MIT */
/* Hours of virtual time through the budget with a model of the watcher on
 * top: releases in flight looked at by the plan's interval, idle apps
 * polled round robin oldest first (one idle poll queued at a time), action
 * pairs (re-read, then the action 50ms later) on random releases, releases
 * that end while others start, and optionally a server whose account limit
 * is shared with a deploy pipeline. Asserts the promises of issue 11. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "budget.h"
#include "util.h"

#define MS USEC_PER_MSEC
#define S USEC_PER_SEC
#define MIN USEC_PER_MIN
#define MAX_APPS 1100
#define RTT (50 * MS)

static uint64_t seed = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(uint64_t n) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        return n ? seed % n : 0;
}

/* uniform in [mean/2, 3*mean/2) */
static uint64_t around(uint64_t mean) {
        return mean / 2 + rnd(mean);
}

typedef struct sim_case {
        const char *name;
        unsigned rate;
        uint64_t window;
        size_t in_flight, idle;
        uint64_t active, poll;
        uint64_t duration;
        uint64_t action_every; /* mean gap between action pairs; 0: none */
        uint64_t swap_every;   /* mean gap between a release ending and another starting */
        uint64_t max_action_wait;
        /* the account: 0 = only our own guard counts */
        unsigned account_limit;
        uint64_t pipeline_every; /* the deploy pipeline calls this often ... */
        uint64_t pipeline_until; /* ... until then */
        uint64_t hint_every;     /* an event names a random idle app this often */
} sim_case;

typedef struct app {
        bool in_flight, queued, polled;
        uint64_t last;      /* last look or poll, or when it changed sides */
        uint64_t due;       /* in flight: next look */
        uint64_t looks, flight_time, flight_since;
} app;

typedef struct item {
        size_t app;
        uint64_t since;
        bool follow_up; /* the action after the re-read */
} item;

typedef struct fifo {
        item v[MAX_APPS + 16];
        size_t head, n;
} fifo;

typedef struct result {
        uint64_t max_action_wait, max_flight_gap, max_idle_gap, max_hint_wait;
        size_t hints;
        double min_rate, max_rate; /* looks per second in flight, per app */
        size_t sent, throttled, pipeline_calls, pipeline_throttled, max_in_window;
        uint64_t first_throttle_at, last_throttle_at;
        double per_min_after_first_throttle;
        budget_plan plan; /* at the start */
} result;

typedef struct world {
        const sim_case *c;
        budget b;
        app apps[MAX_APPS];
        size_t n_apps;
        fifo q[_BUDGET_CLASS_MAX];
        budget_queue waiting;
        item follow[8];
        size_t n_follow;
        uint64_t *arrivals;
        size_t n_arrivals, cap_arrivals;
        uint64_t *admitted; /* the account's window, sorted */
        size_t adm_head, n_admitted, cap_admitted;
        result res;
} world;

static void push(world *w, budget_class c, item it) {
        fifo *f = &w->q[c];
        assert_true(f->n < ELEMENTSOF(f->v));
        f->v[(f->head + f->n++) % ELEMENTSOF(f->v)] = it;
        w->waiting.waiting[c]++;
}

static item pop(world *w, budget_class c) {
        fifo *f = &w->q[c];
        assert_true(f->n > 0);
        item it = f->v[f->head];
        f->head = (f->head + 1) % ELEMENTSOF(f->v);
        f->n--;
        w->waiting.waiting[c]--;
        return it;
}

static void append(uint64_t **v, size_t *n, size_t *cap, uint64_t x) {
        if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 4096;
                *v = realloc(*v, *cap * sizeof **v);
                assert_non_null(*v);
        }
        (*v)[(*n)++] = x;
}

/* The account's sliding window: true when the server answers Throttling. */
static bool account_throttles(world *w, uint64_t t) {
        if (w->c->account_limit == 0)
                return false;
        while (w->adm_head < w->n_admitted && w->admitted[w->adm_head] + w->c->window <= t)
                w->adm_head++;
        if (w->n_admitted - w->adm_head >= w->c->account_limit)
                return true;
        append(&w->admitted, &w->n_admitted, &w->cap_admitted, t);
        return false;
}

static void send(world *w, budget_class cls, uint64_t now) {
        item it = pop(w, cls);
        app *a = &w->apps[it.app];
        budget_record(&w->b, cls, now);
        w->res.sent++;
        uint64_t arrival = now + rnd(w->b.opt.margin_usec + 1);
        append(&w->arrivals, &w->n_arrivals, &w->cap_arrivals, arrival);
        if (account_throttles(w, now)) {
                w->res.throttled++;
                if (w->res.first_throttle_at == 0) {
                        w->res.first_throttle_at = now;
                        (void)budget_on_throttled(&w->b, now, now + RTT);
                        w->res.per_min_after_first_throttle = budget_calls_per_minute(&w->b, now + RTT);
                } else
                        (void)budget_on_throttled(&w->b, now, now + RTT);
                w->res.last_throttle_at = now;
                /* a throttled call is no look: try again at once */
                if (cls == BUDGET_ACTION)
                        push(w, cls, (item){ it.app, it.since, it.follow_up });
                else
                        a->queued = false;
                return;
        }
        if (cls == BUDGET_ACTION) {
                uint64_t wait = now - it.since;
                if (wait > w->res.max_action_wait)
                        w->res.max_action_wait = wait;
                if (!it.follow_up && w->n_follow < ELEMENTSOF(w->follow))
                        w->follow[w->n_follow++] = (item){ it.app, now + RTT, true };
                return;
        }
        if (cls == BUDGET_HINTED && now - it.since > w->res.max_hint_wait)
                w->res.max_hint_wait = now - it.since;
        uint64_t gap = now - a->last;
        if (cls == BUDGET_IN_FLIGHT && a->in_flight) {
                if (gap > w->res.max_flight_gap)
                        w->res.max_flight_gap = gap;
                a->looks++;
        } else if (cls != BUDGET_IN_FLIGHT && !a->in_flight && gap > w->res.max_idle_gap)
                w->res.max_idle_gap = gap;
        a->last = now;
        a->polled = true;
        a->queued = false;
        budget_plan p;
        budget_demand d = { w->c->in_flight, w->c->idle, w->c->active, w->c->poll };
        budget_plan_now(&w->b, &d, now, &p);
        /* Stretched, every release in flight stays queued: the budget's
         * FIFO then gives them one equal interval. Otherwise a fixed
         * cadence: a look that waited for budget does not push the next
         * one back, but a long wait is not caught up in a burst. */
        if (p.stretched)
                a->due = now;
        else {
                a->due += p.in_flight_interval_usec;
                if (a->due <= now)
                        a->due = now + p.in_flight_interval_usec / 2;
        }
}

/* SIZE_MAX when none is free (all queued) */
static size_t random_app(world *w, bool in_flight, bool free_only) {
        for (int tries = 0; tries < 2000; tries++) {
                size_t i = rnd(w->n_apps);
                if (w->apps[i].in_flight == in_flight && !(free_only && w->apps[i].queued))
                        return i;
        }
        return SIZE_MAX;
}

static void set_side(world *w, size_t i, bool in_flight, uint64_t now) {
        app *a = &w->apps[i];
        if (a->in_flight)
                a->flight_time += now - a->flight_since;
        a->in_flight = in_flight;
        a->flight_since = now;
        a->last = now;
        a->polled = true;
        a->due = now;
}

/* never polled first, then oldest poll first */
static bool older(const app *a, const app *b) {
        if (a->polled != b->polled)
                return !a->polled;
        return a->last < b->last;
}

/* The watcher's side: queue the looks that are due and the oldest idle
 * poll when none is queued; with ret_next, only say when the next is due. */
static void enqueue_due(world *w, uint64_t now, uint64_t *ret_next) {
        const sim_case *c = w->c;
        size_t oldest = SIZE_MAX;
        for (size_t i = 0; i < w->n_apps; i++) {
                app *a = &w->apps[i];
                if (a->queued)
                        continue;
                if (a->in_flight) {
                        if (a->due > now) {
                                if (ret_next && a->due < *ret_next)
                                        *ret_next = a->due;
                        } else if (!ret_next) {
                                push(w, BUDGET_IN_FLIGHT, (item){ i, now, false });
                                a->queued = true;
                        }
                } else if (oldest == SIZE_MAX || older(a, &w->apps[oldest]))
                        oldest = i;
        }
        if (oldest == SIZE_MAX || w->waiting.waiting[BUDGET_IDLE] > 0)
                return;
        app *a = &w->apps[oldest];
        uint64_t due = a->polled ? a->last + c->poll : 0;
        if (due > now) {
                if (ret_next && due < *ret_next)
                        *ret_next = due;
        } else if (!ret_next) {
                push(w, BUDGET_IDLE, (item){ oldest, now, false });
                a->queued = true;
        }
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static void run(const sim_case *c, result *out) {
        world *w = calloc(1, sizeof *w);
        assert_non_null(w);
        w->c = c;
        w->n_apps = c->in_flight + c->idle;
        assert_true(w->n_apps <= MAX_APPS);
        budget_options o = budget_options_default(c->rate, c->window);
        assert_int_equal(budget_init(&w->b, &o), 0);
        budget_demand d = { c->in_flight, c->idle, c->active, c->poll };
        budget_plan_now(&w->b, &d, 0, &w->res.plan);
        for (size_t i = 0; i < c->in_flight; i++)
                set_side(w, i, true, 0);

        uint64_t next_action = c->action_every ? around(c->action_every) : UINT64_MAX;
        uint64_t next_swap = c->swap_every ? around(c->swap_every) : UINT64_MAX;
        uint64_t next_pipeline = c->pipeline_every ? c->pipeline_every / 2 : UINT64_MAX;
        uint64_t next_hint = c->hint_every ? around(c->hint_every) : UINT64_MAX;
        uint64_t now = 0;
        while (now < c->duration) {
                if (now >= next_swap) {
                        /* a release ends, another starts; not while queued */
                        size_t ends = random_app(w, true, true), starts = random_app(w, false, true);
                        if (ends != SIZE_MAX && starts != SIZE_MAX) {
                                set_side(w, ends, false, now);
                                set_side(w, starts, true, now);
                                next_swap += around(c->swap_every);
                        } else
                                next_swap = now + 1 * S;
                }
                if (now >= next_action) {
                        /* only an app with a release in flight can act;
                         * a fleet without one right now has no action */
                        size_t i = random_app(w, true, false);
                        if (i != SIZE_MAX)
                                push(w, BUDGET_ACTION, (item){ i, now, false });
                        next_action += around(c->action_every);
                }
                if (now >= next_hint) {
                        size_t i = random_app(w, false, true);
                        if (i != SIZE_MAX) {
                                push(w, BUDGET_HINTED, (item){ i, now, false });
                                w->apps[i].queued = true;
                                w->res.hints++;
                        }
                        next_hint += around(c->hint_every);
                }
                if (now >= next_pipeline) {
                        w->res.pipeline_calls++;
                        if (account_throttles(w, now))
                                w->res.pipeline_throttled++;
                        next_pipeline += c->pipeline_every;
                        if (next_pipeline >= c->pipeline_until)
                                next_pipeline = UINT64_MAX;
                }
                for (size_t k = 0; k < w->n_follow;)
                        if (w->follow[k].since <= now) {
                                push(w, BUDGET_ACTION, w->follow[k]);
                                w->follow[k] = w->follow[--w->n_follow];
                        } else
                                k++;

                enqueue_due(w, now, NULL);
                budget_decision dec;
                while (budget_pick(&w->b, &w->waiting, now, &dec) && dec.when <= now) {
                        send(w, dec.cls, now);
                        enqueue_due(w, now, NULL);
                }
                uint64_t next = c->duration;
                enqueue_due(w, now, &next);
                if (budget_pick(&w->b, &w->waiting, now, &dec) && dec.when < next)
                        next = dec.when;
                if (next_action < next)
                        next = next_action;
                if (next_swap < next)
                        next = next_swap;
                if (next_pipeline < next)
                        next = next_pipeline;
                if (next_hint < next)
                        next = next_hint;
                for (size_t k = 0; k < w->n_follow; k++)
                        if (w->follow[k].since < next)
                                next = w->follow[k].since;
                now = next > now ? next : now + 1;
        }

        w->res.min_rate = 1e9;
        for (size_t i = 0; i < w->n_apps; i++) {
                app *a = &w->apps[i];
                if (a->in_flight)
                        set_side(w, i, true, now);
                /* only releases in flight for a while say something about fairness */
                if (a->flight_time < 10 * w->res.plan.in_flight_interval_usec)
                        continue;
                double rate = (double)a->looks / ((double)a->flight_time / S);
                if (rate < w->res.min_rate)
                        w->res.min_rate = rate;
                if (rate > w->res.max_rate)
                        w->res.max_rate = rate;
        }

        /* as the server sees them: by arrival */
        qsort(w->arrivals, w->n_arrivals, sizeof *w->arrivals, cmp_u64);
        for (size_t i = 0, j = 0; i < w->n_arrivals; i++) {
                while (w->arrivals[j] + c->window <= w->arrivals[i])
                        j++;
                if (i - j + 1 > w->res.max_in_window)
                        w->res.max_in_window = i - j + 1;
        }
        *out = w->res;
        free(w->arrivals);
        free(w->admitted);
        budget_done(&w->b);
        free(w);
}

static void report(const sim_case *c, const result *r) {
        print_message("%-44s sent %zu, max %zu in a window; action wait %.3fs; in flight every "
                      "%.2fs%s, max gap %.2fs, looks/s %.4f..%.4f; idle every %.0fs, max gap %.0fs; "
                      "%zu hints, wait <= %.2fs; throttled %zu, pipeline %zu/%zu throttled\n",
                      c->name, r->sent, r->max_in_window, (double)r->max_action_wait / S,
                      (double)r->plan.in_flight_interval_usec / S, r->plan.stretched ? " (stretched)" : "",
                      (double)r->max_flight_gap / S, r->min_rate, r->max_rate,
                      (double)r->plan.idle_interval_usec / S, (double)r->max_idle_gap / S, r->hints,
                      (double)r->max_hint_wait / S, r->throttled,
                      r->pipeline_throttled, r->pipeline_calls);
}

/* Most cases: the account is ours alone. */
static const sim_case cases[] = {
        { "300 apps at defaults, 2 releases, 4h", 30, MIN, 2, 298, 5 * S, 30 * S, 4 * 60 * MIN,
          7 * MIN, 10 * MIN, 1 * S, 0, 0, 0, 0 },
        { "60 apps, 6 releases at 1s: stretched, 2h", 30, MIN, 6, 54, 1 * S, 30 * S, 2 * 60 * MIN,
          3 * MIN, 5 * MIN, 1 * S, 0, 0, 0, 0 },
        { "1000 apps, 3 releases, compressed 10x, 1h", 30, 6 * S, 3, 997, 500 * MS, 3 * S, 60 * MIN,
          30 * S, 60 * S, 1 * S, 0, 0, 0, 0 },
        { "600/min, 20 releases, 200 apps, 1h", 600, MIN, 20, 180, 1 * S, 10 * S, 60 * MIN, 20 * S,
          30 * S, 1 * S, 0, 0, 0, 0 },
        { "10 apps, nothing short, 2h", 30, MIN, 1, 9, 5 * S, 30 * S, 2 * 60 * MIN, 5 * MIN, 10 * MIN,
          1 * S, 0, 0, 0, 0 },
        /* 3 per 10s: one call held back, so the action itself may wait a pacer slot */
        { "a tiny share: 3 per 10s", 3, 10 * S, 1, 5, 5 * S, 30 * S, 60 * MIN, 2 * MIN, 0, 10 * S, 0, 0,
          0, 0 },
};

static void check_promises(const sim_case *c, const result *r) {
        budget_options o = budget_options_default(c->rate, c->window);
        budget b;
        assert_int_equal(budget_init(&b, &o), 0);
        /* one pacer slot */
        double slot = (double)(c->window + o.margin_usec) / (c->rate - b.reserve);
        budget_done(&b);

        if (r->max_in_window > c->rate)
                fail_msg("'%s': %zu calls in one server window, share %u", c->name, r->max_in_window, c->rate);
        if (r->max_action_wait > c->max_action_wait)
                fail_msg("'%s': an action waited %.3fs", c->name, (double)r->max_action_wait / S);
        /* every release in flight is looked at by its interval, give or take
         * a few pacer slots for the others queued with it */
        double flight = (double)r->plan.in_flight_interval_usec;
        if ((double)r->max_flight_gap > flight * 1.25 + 5 * slot)
                fail_msg("'%s': a release in flight went %.2fs without a look (interval %.2fs)", c->name,
                         (double)r->max_flight_gap / S, flight / S);
        /* equal service: every release gets the same rate of looks */
        if (c->in_flight > 0 && (r->max_rate > r->min_rate * 1.1 || r->min_rate * flight / S < 0.8))
                fail_msg("'%s': looks per second %.4f..%.4f, plan every %.2fs", c->name, r->min_rate,
                         r->max_rate, flight / S);
        /* no idle app starves: the round robin comes round within 1.5 sweeps */
        if ((double)r->max_idle_gap > 1.5 * (double)r->plan.idle_interval_usec + 4 * slot)
                fail_msg("'%s': an idle app went %.0fs without a poll (plan every %.0fs)", c->name,
                         (double)r->max_idle_gap / S, (double)r->plan.idle_interval_usec / S);
}

static void test_simulated_hours(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                result r;
                run(&cases[i], &r);
                report(&cases[i], &r);
                check_promises(&cases[i], &r);
                assert_int_equal(r.throttled, 0);
        }
        /* the stretched case really is stretched, the others are not */
        result r;
        run(&cases[1], &r);
        assert_true(r.plan.stretched);
        run(&cases[0], &r);
        assert_false(r.plan.stretched);
}

/* SAE's 60/min shared with a pipeline at 20/min: with our 30 nobody is
 * ever throttled. */
static void test_shared_account_nobody_throttled(void **state) {
        const sim_case c = { "account 60/min, pipeline 20/min", 30, MIN, 2, 298, 5 * S, 30 * S, 2 * 60 * MIN,
                             7 * MIN, 10 * MIN, 1 * S, 60, 3 * S, UINT64_MAX, 0 };
        result r;
        run(&c, &r);
        report(&c, &r);
        assert_int_equal(r.throttled, 0);
        assert_int_equal(r.pipeline_throttled, 0);
        assert_true(r.pipeline_calls > 2300);
}

/* An account that leaves us less than our share: the first throttle
 * halves the pace, the sawtooth that follows throttles a few percent of
 * our calls, and once the pipeline stops the whole share comes back. */
static void test_throttling_halves_and_recovers(void **state) {
        const sim_case c = { "account 40/min, pipeline 20/min for 1h", 30, MIN, 2, 298, 5 * S, 30 * S,
                             2 * 60 * MIN, 0, 0, 1 * S, 40, 3 * S, 60 * MIN, 0 };
        result r;
        run(&c, &r);
        report(&c, &r);
        assert_true(r.first_throttle_at > 0);
        assert_true(r.per_min_after_first_throttle <= 15.0 + 1e-9);
        if (r.throttled * 20 > r.sent)
                fail_msg("%zu of %zu calls throttled", r.throttled, r.sent);
        /* the pipeline stopped at 60 min: nothing throttled after it, and
         * the budget is whole again within 8 windows */
        assert_true(r.last_throttle_at < 60 * MIN + 2 * S);
        budget_options o = budget_options_default(30, MIN);
        budget b;
        assert_int_equal(budget_init(&b, &o), 0);
        assert_true(budget_on_throttled(&b, 0, 0));
        assert_true(budget_on_throttled(&b, 1, 1) == false);
        assert_true(budget_on_throttled(&b, 2, 2) == false);
        /* three cuts: 30 -> 3.75, seven steps of 3.75 back from the last cut */
        assert_true(budget_is_throttled(&b, 2 + 7 * (MIN + o.margin_usec) - 1));
        assert_false(budget_is_throttled(&b, 2 + 7 * (MIN + o.margin_usec)));
        budget_done(&b);
}

/* Events name idle apps: a hinted poll goes ahead of the round robin and
 * waits at most for the looks at releases in flight ahead of it; even a
 * flood of events (more than the budget) leaves the round robin a quarter
 * of the idle side. */
static void test_hints(void **state) {
        const sim_case some = { "1000 apps 10x, an event every 6s", 30, 6 * S, 2, 998, 500 * MS, 3 * S,
                                60 * MIN, 30 * S, 60 * S, 1 * S, 0, 0, 0, 6 * S };
        const sim_case flood = { "1000 apps 10x, events flood", 30, 6 * S, 2, 998, 500 * MS, 3 * S, 60 * MIN,
                                 30 * S, 60 * S, 1 * S, 0, 0, 0, 100 * MS };
        result r;
        run(&some, &r);
        report(&some, &r);
        double slot = (double)(6 * S + BUDGET_DEFAULT_MARGIN_USEC) / (30 - BUDGET_DEFAULT_RESERVE);
        assert_true(r.hints > 500);
        /* behind the releases in flight at most one idle-share period */
        if ((double)r.max_hint_wait > (100.0 / BUDGET_DEFAULT_IDLE_SHARE_PERCENT + some.in_flight + 2) * slot)
                fail_msg("a hinted poll waited %.2fs", (double)r.max_hint_wait / S);
        run(&flood, &r);
        report(&flood, &r);
        if ((double)r.max_idle_gap > 4 * 1.5 * (double)r.plan.idle_interval_usec)
                fail_msg("the round robin went %.0fs without a poll under a flood (plan %.0fs)",
                         (double)r.max_idle_gap / S, (double)r.plan.idle_interval_usec / S);
        assert_true(r.max_in_window <= 30);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_simulated_hours),
                cmocka_unit_test(test_hints),
                cmocka_unit_test(test_shared_account_nobody_throttled),
                cmocka_unit_test(test_throttling_halves_and_recovers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
