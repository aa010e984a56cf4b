/* SPDX-License-Identifier: MIT */
#include "budget.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "util.h"

const char *budget_class_name(budget_class c) {
        switch (c) {
        case BUDGET_ACTION:
                return "action";
        case BUDGET_IN_FLIGHT:
                return "in_flight";
        case BUDGET_HINTED:
                return "hinted";
        case BUDGET_IDLE:
                return "idle";
        case _BUDGET_CLASS_MAX:
                break;
        }
        return "unknown";
}

budget_options budget_options_default(unsigned rate_limit, uint64_t window_usec) {
        return (budget_options){
                .rate_limit = rate_limit,
                .window_usec = window_usec,
                .margin_usec = BUDGET_DEFAULT_MARGIN_USEC,
                .burst = BUDGET_DEFAULT_BURST,
                .reserve = BUDGET_DEFAULT_RESERVE,
                .idle_share_percent = BUDGET_DEFAULT_IDLE_SHARE_PERCENT,
        };
}

/* ---- pure arithmetic shared by the live budget and the plan ---- */

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t mul_sat(uint64_t a, uint64_t b) {
        return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t guard_window(const budget_options *o) {
        return add_sat(o->window_usec, o->margin_usec);
}

/* Polls always keep at least half of the window: a tiny share must still
 * find new releases. */
static unsigned effective_reserve(const budget_options *o) {
        if (o->rate_limit == 0)
                return 0;
        unsigned cap = (o->rate_limit - 1) / 2;
        return o->reserve < cap ? o->reserve : cap;
}

/* A share above half would let idle apps crowd out releases in flight. */
static double idle_share(const budget_options *o) {
        unsigned p = o->idle_share_percent > 50 ? 50 : o->idle_share_percent;
        return p / 100.0;
}

static double pace_floor(const budget_options *o) {
        double f = (double)o->rate_limit / BUDGET_AIMD_DIVISOR;
        if (f < 1.0)
                f = 1.0;
        return f > o->rate_limit ? o->rate_limit : f;
}

/* Calls per guard window left for looks and polls at this pace. */
static double poll_pace(const budget_options *o, unsigned reserve, double pace) {
        return pace * (o->rate_limit - reserve) / o->rate_limit;
}

static uint64_t usec_of(double usec) {
        if (!(usec < 1.8e19))
                return UINT64_MAX;
        return usec <= 0 ? 0 : (uint64_t)ceil(usec);
}

/* ---- the live budget ---- */

static uint64_t poll_interval(const budget *b) {
        return usec_of((double)guard_window(&b->opt) / poll_pace(&b->opt, b->reserve, b->pace));
}

static uint64_t share_interval(const budget *b) {
        double s = idle_share(&b->opt);
        if (s <= 0)
                return UINT64_MAX;
        /* one idle-side call in every 1/s pacer slots */
        return usec_of((double)poll_interval(b) * (1.0 / s - 1.0));
}

static int setup(budget *b, const budget_options *o) {
        *b = (budget){ .opt = *o };
        if (b->opt.burst == 0)
                b->opt.burst = 1;
        b->reserve = effective_reserve(o);
        b->pace = o->rate_limit;
        return ratelimit_init(&b->guard, o->rate_limit, guard_window(o));
}

int budget_init(budget *b, const budget_options *o) {
        if (!b || !o)
                return -EINVAL;
        int r = setup(b, o);
        if (r < 0)
                *b = (budget){};
        return r;
}

void budget_done(budget *b) {
        ratelimit_done(&b->guard);
        *b = (budget){};
}

int budget_reconfigure(budget *b, const budget_options *o) {
        budget fresh;
        if (!o)
                return -EINVAL;
        int r = setup(&fresh, o);
        if (r < 0)
                return r;
        ratelimit_carry(&fresh.guard, &b->guard);
        fresh.tat = b->tat;
        fresh.idle_tat = b->idle_tat;
        fresh.hint_streak = b->hint_streak;
        fresh.last_decrease = b->last_decrease;
        fresh.clean_since = b->clean_since;
        fresh.throttle_episodes = b->throttle_episodes;
        if (b->throttled && b->opt.rate_limit > 0 && o->rate_limit > 0) {
                fresh.pace = b->pace / b->opt.rate_limit * o->rate_limit;
                if (fresh.pace < pace_floor(o))
                        fresh.pace = pace_floor(o);
                fresh.throttled = fresh.pace < o->rate_limit;
        }
        budget_done(b);
        *b = fresh;
        return 0;
}

/* Additive increase: every window without a throttling answer gives back
 * one step, until the whole share is back. */
static void recover(budget *b, uint64_t now) {
        uint64_t w = guard_window(&b->opt);
        double step = (double)b->opt.rate_limit / BUDGET_AIMD_DIVISOR;
        while (b->throttled && now >= b->clean_since && now - b->clean_since >= w) {
                b->clean_since += w;
                b->pace += step;
                if (b->pace >= b->opt.rate_limit) {
                        b->pace = b->opt.rate_limit;
                        b->throttled = false;
                }
        }
}

static uint64_t pacer_next(const budget *b, uint64_t now, bool burst_ok) {
        /* no burst while throttled: the account is already over */
        unsigned burst = b->throttled || !burst_ok ? 1 : b->opt.burst;
        uint64_t tolerance = (uint64_t)(burst - 1) * poll_interval(b);
        uint64_t t = b->tat > tolerance ? b->tat - tolerance : 0;
        return t > now ? t : now;
}

static bool idle_side(budget_class c) {
        return c == BUDGET_HINTED || c == BUDGET_IDLE;
}

bool budget_pick(budget *b, const budget_queue *q, uint64_t now, budget_decision *ret) {
        recover(b, now);
        if (q->waiting[BUDGET_ACTION] > 0) {
                *ret = (budget_decision){ BUDGET_ACTION, ratelimit_next_allowed(&b->guard, now) };
                return true;
        }
        /* The idle side: hinted first, but while hints keep coming the
         * round robin gets one idle-side call in BUDGET_HINT_STREAK + 1, so
         * a flood of events cannot stop it. */
        budget_class idle = _BUDGET_CLASS_MAX;
        if (q->waiting[BUDGET_HINTED] > 0 && q->waiting[BUDGET_IDLE] > 0)
                idle = b->hint_streak >= BUDGET_HINT_STREAK ? BUDGET_IDLE : BUDGET_HINTED;
        else if (q->waiting[BUDGET_HINTED] > 0)
                idle = BUDGET_HINTED;
        else if (q->waiting[BUDGET_IDLE] > 0)
                idle = BUDGET_IDLE;
        budget_class top = q->waiting[BUDGET_IN_FLIGHT] > 0 ? BUDGET_IN_FLIGHT : idle;
        if (top == _BUDGET_CLASS_MAX)
                return false;
        if (b->opt.rate_limit == 0) {
                *ret = (budget_decision){ top, now };
                return true;
        }

        uint64_t room = ratelimit_next_allowed_n(&b->guard, now, 1 + b->reserve);
        uint64_t when = pacer_next(b, now, true);
        if (room > when)
                when = room;
        if (top == BUDGET_IDLE) {
                /* The round robin keeps to the steady pace and leaves the
                 * burst to looks at releases in flight: one that comes due
                 * right after an idle poll still goes at once. */
                when = pacer_next(b, now, false);
                if (room > when)
                        when = room;
        } else if (top == BUDGET_IN_FLIGHT && idle != _BUDGET_CLASS_MAX && idle_share(&b->opt) > 0 &&
                   b->idle_tat <= when)
                /* the idle side has waited through its share of slots */
                top = idle;
        *ret = (budget_decision){ top, when };
        return true;
}

uint64_t budget_when(budget *b, budget_class cls, const budget_queue *q, uint64_t now) {
        if ((unsigned)cls >= _BUDGET_CLASS_MAX)
                return BUDGET_NEVER;
        budget_queue with = *q;
        if (with.waiting[cls] == 0)
                with.waiting[cls] = 1;
        budget_decision d;
        if (!budget_pick(b, &with, now, &d) || d.cls != cls)
                return BUDGET_NEVER;
        return d.when;
}

void budget_record(budget *b, budget_class cls, uint64_t now) {
        recover(b, now);
        ratelimit_record(&b->guard, now);
        if (b->opt.rate_limit == 0 || cls == BUDGET_ACTION)
                return;
        b->tat = add_sat(b->tat > now ? b->tat : now, poll_interval(b));
        /* owed again only after its share of slots have gone to others */
        if (idle_side(cls)) {
                b->idle_tat = add_sat(now, share_interval(b));
                b->hint_streak = cls == BUDGET_HINTED ? b->hint_streak + 1 : 0;
        }
}

bool budget_on_throttled(budget *b, uint64_t sent_usec, uint64_t now) {
        recover(b, now);
        if (b->opt.rate_limit == 0 || sent_usec < b->last_decrease)
                return false;
        bool was = b->throttled;
        b->pace /= 2;
        if (b->pace < pace_floor(&b->opt))
                b->pace = pace_floor(&b->opt);
        b->last_decrease = now;
        b->clean_since = now;
        b->throttled = b->pace < b->opt.rate_limit;
        /* back off now, not one old interval from now */
        b->tat = add_sat(b->tat > now ? b->tat : now, poll_interval(b));
        if (!was && b->throttled)
                b->throttle_episodes++;
        return !was && b->throttled;
}

bool budget_is_throttled(budget *b, uint64_t now) {
        recover(b, now);
        return b->throttled;
}

double budget_calls_per_minute(budget *b, uint64_t now) {
        recover(b, now);
        if (b->opt.rate_limit == 0 || b->opt.window_usec == 0)
                return 0;
        return b->pace * (double)USEC_PER_MIN / (double)b->opt.window_usec;
}

size_t budget_in_window(const budget *b, uint64_t now) {
        return ratelimit_in_window(&b->guard, now);
}

/* ---- the plan ---- */

void budget_plan_compute(const budget_options *o, double pace_fraction, const budget_demand *d,
                         budget_plan *ret) {
        *ret = (budget_plan){
                .in_flight_interval_usec = d->active_poll_interval_usec,
                .idle_interval_usec = d->poll_interval_usec,
        };
        if (o->rate_limit == 0 || guard_window(o) == 0)
                return;

        double pace = o->rate_limit * pace_fraction;
        if (pace > o->rate_limit)
                pace = o->rate_limit;
        if (pace < pace_floor(o))
                pace = pace_floor(o);
        double cap = poll_pace(o, effective_reserve(o), pace) / ((double)guard_window(o) / USEC_PER_SEC);
        ret->poll_calls_per_sec = cap;

        double active_s = (double)d->active_poll_interval_usec / USEC_PER_SEC;
        double idle_s = (double)d->poll_interval_usec / USEC_PER_SEC;
        double idle_need = d->idle == 0 ? 0 : idle_s > 0 ? d->idle / idle_s : INFINITY;
        double idle_min = fmin(idle_share(o) * cap, idle_need);
        double for_flight = cap - idle_min;
        double used = 0;
        if (d->in_flight > 0) {
                double need = active_s > 0 ? d->in_flight / active_s : INFINITY;
                if (need <= for_flight)
                        used = need;
                else {
                        used = for_flight;
                        ret->stretched = true;
                        ret->in_flight_interval_usec = usec_of(d->in_flight / for_flight * USEC_PER_SEC);
                }
        }
        if (d->idle > 0) {
                double left = cap - used;
                ret->idle_sweep_usec = usec_of(d->idle / left * USEC_PER_SEC);
                if (ret->idle_sweep_usec > ret->idle_interval_usec)
                        ret->idle_interval_usec = ret->idle_sweep_usec;
        }
}

void budget_plan_now(budget *b, const budget_demand *d, uint64_t now, budget_plan *ret) {
        recover(b, now);
        double frac = b->opt.rate_limit > 0 ? b->pace / b->opt.rate_limit : 1;
        budget_plan_compute(&b->opt, frac, d, ret);
}

/* ---- the check line ---- */

/* "600", "4.7": whole numbers stay whole. */
static void fmt_number(char *buf, size_t size, double x) {
        if (fabs(x - round(x)) < 0.05)
                snprintf(buf, size, "%.0f", round(x));
        else
                snprintf(buf, size, "%.1f", x);
}

/* An estimate is rounded as a person would say it: 2.2s, 45s, 1m30s, 10m,
 * 5h30m. */
static void fmt_about(char *buf, size_t size, uint64_t usec) {
        if (usec < 10 * USEC_PER_SEC) {
                fmt_number(buf, size, (double)usec / USEC_PER_SEC);
                size_t n = strlen(buf);
                snprintf(buf + n, size > n ? size - n : 0, "s");
                return;
        }
        uint64_t unit = usec < USEC_PER_MIN        ? USEC_PER_SEC
                        : usec < 10 * USEC_PER_MIN ? 10 * USEC_PER_SEC
                        : usec < 2 * USEC_PER_HOUR ? USEC_PER_MIN
                                                   : 10 * USEC_PER_MIN;
        uint64_t rounded = (usec / unit + (usec % unit >= unit / 2)) * unit;
        format_duration(rounded, buf, size);
}

int budget_check_line(char *buf, size_t size, unsigned rate_limit, uint64_t window_usec,
                      size_t n_apps, uint64_t poll_interval_usec,
                      uint64_t active_poll_interval_usec) {
        char share[32], need[32], poll[32], active[32], tail[160];
        int warn = 0;

        if (poll_interval_usec == 0 || active_poll_interval_usec == 0 ||
            (rate_limit > 0 && window_usec == 0))
                return -EINVAL;
        double need_per_min = (double)n_apps * USEC_PER_MIN / poll_interval_usec;
        fmt_number(need, sizeof need, need_per_min);
        format_duration(poll_interval_usec, poll, sizeof poll);
        format_duration(active_poll_interval_usec, active, sizeof active);

        if (rate_limit == 0) {
                snprintf(share, sizeof share, "unlimited");
                snprintf(tail, sizeof tail, "ok");
        } else {
                double share_per_min = (double)rate_limit * USEC_PER_MIN / window_usec;
                fmt_number(share, sizeof share, share_per_min);
                strncat(share, " calls/min", sizeof share - strlen(share) - 1);
                /* exact integers: need > share <=> n * window > rate * poll */
                if (mul_sat(n_apps, window_usec) > mul_sat(rate_limit, poll_interval_usec)) {
                        char about[32];
                        uint64_t sweep = mul_sat(n_apps, window_usec) / rate_limit;
                        fmt_about(about, sizeof about, sweep);
                        snprintf(tail, sizeof tail, "idle apps will be polled about every %s", about);
                        warn = 1;
                } else {
                        /* releases in flight may take all but the idle share */
                        unsigned keep = 100 - BUDGET_DEFAULT_IDLE_SHARE_PERCENT;
                        uint64_t room = mul_sat(mul_sat(keep, rate_limit), active_poll_interval_usec) /
                                        mul_sat(100, window_usec);
                        if (room >= n_apps)
                                snprintf(tail, sizeof tail,
                                         "ok, every app can have a release in flight at "
                                         "active_poll_interval %s",
                                         active);
                        else if (room >= 1)
                                snprintf(tail, sizeof tail,
                                         "ok, %" PRIu64 " release%s in flight at a time get%s "
                                         "active_poll_interval %s",
                                         room, room == 1 ? "" : "s", room == 1 ? "s" : "", active);
                        else {
                                char about[32];
                                fmt_about(about, sizeof about,
                                          mul_sat(100, window_usec) / ((uint64_t)keep * rate_limit));
                                snprintf(tail, sizeof tail,
                                         "ok, but a release in flight is looked at only about every %s, "
                                         "not every active_poll_interval %s",
                                         about, active);
                        }
                }
        }
        int n = snprintf(buf, size, "budget: %s (rate_limit%s); %zu app%s need%s %s calls/min at "
                         "poll_interval %s: %s",
                         share, rate_limit == 0 ? " 0" : "", n_apps, n_apps == 1 ? "" : "s",
                         n_apps == 1 ? "s" : "", need, poll, tail);
        if (n < 0 || (size_t)n >= size)
                return -ENOBUFS;
        return warn;
}
