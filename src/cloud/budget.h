/* SPDX-License-Identifier: MIT */
/* The account's API budget as rollguard spends it (SPEC 4, issue 11): a
 * GCRA pacer that spreads calls evenly over the window, a sliding-window
 * guard so that no window as the server sees it ever holds more than
 * `rate_limit` calls, calls held back for actions, classes with an idle
 * share, AIMD on throttling, and the plan the watcher schedules by.
 *
 * Pure: no I/O, no clock. The caller passes CLOCK_MONOTONIC microseconds,
 * which must not go backwards between calls on one budget. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

/* Highest rank first. An action and its re-read outrank everything; a
 * look at a release in flight outranks every poll of an idle app; an idle
 * poll an event or alert asked for goes before the round robin. */
typedef enum budget_class {
        BUDGET_ACTION = 0,    /* re-read before acting, the action itself */
        BUDGET_IN_FLIGHT = 1, /* a look at a release in flight */
        BUDGET_HINTED = 2,    /* an idle app an event or alert named */
        BUDGET_IDLE = 3,      /* the idle round robin */
        _BUDGET_CLASS_MAX,
} budget_class;

const char *budget_class_name(budget_class c);

#define BUDGET_DEFAULT_BURST 3
#define BUDGET_DEFAULT_RESERVE 2
#define BUDGET_DEFAULT_IDLE_SHARE_PERCENT 10
/* Send time and server arrival differ by the network: the guard counts a
 * window this much longer than the server's. */
#define BUDGET_DEFAULT_MARGIN_USEC (250 * UINT64_C(1000))
/* Throttling halves the pace down to rate_limit / 8; each clean window
 * (no throttling answer for one window) adds rate_limit / 8 back. */
#define BUDGET_AIMD_DIVISOR 8
#define BUDGET_NEVER UINT64_MAX
/* While hinted polls keep coming, the round robin still gets one idle-side
 * call after this many hinted ones. */
#define BUDGET_HINT_STREAK 3

typedef struct budget_options {
        unsigned rate_limit;         /* calls per window; 0 = unlimited */
        uint64_t window_usec;        /* the server's window (60s for SAE) */
        uint64_t margin_usec;        /* added to the guard's window */
        unsigned burst;              /* GCRA burst of polls after a quiet spell (>= 1) */
        unsigned reserve;            /* calls per window polls leave for actions;
                                      * capped at (rate_limit - 1) / 2 */
        unsigned idle_share_percent; /* of the poll pace always open to idle apps */
} budget_options;

/* The defaults above for this share. */
budget_options budget_options_default(unsigned rate_limit, uint64_t window_usec);

typedef struct budget {
        budget_options opt;
        ratelimit guard;        /* every call, window + margin */
        unsigned reserve;       /* effective, after the cap */
        uint64_t tat;           /* GCRA theoretical arrival time of the next poll */
        uint64_t idle_tat;      /* from then on the idle side is owed a call */
        unsigned hint_streak;   /* hinted polls in a row on the idle side */
        double pace;            /* calls per guard window for polls + actions, AIMD */
        uint64_t last_decrease; /* throttling answers to calls sent before are old news */
        uint64_t clean_since;   /* start of the current window without throttling */
        bool throttled;         /* pace below rate_limit */
        uint64_t throttle_episodes;
} budget;

int budget_init(budget *b, const budget_options *o);
void budget_done(budget *b);
/* New options on reload: the calls the server still counts, the pacer and
 * the throttled pace (as a fraction of the share) carry over. */
int budget_reconfigure(budget *b, const budget_options *o);

/* What waits in the caller's queue, per class. */
typedef struct budget_queue {
        size_t waiting[_BUDGET_CLASS_MAX];
} budget_queue;

typedef struct budget_decision {
        budget_class cls; /* the class whose next call goes first */
        uint64_t when;    /* >= now; == now means send it now */
} budget_decision;

/* Which waiting call goes next and when. An action needs only room in the
 * hard window; everything else also waits for the pacer and leaves
 * `reserve` calls of the window free, so an action and its re-read go at
 * once unless the window is full of actions. Among polls the rank decides,
 * except that an idle-side call that has waited through its share of pacer
 * slots goes ahead of looks at releases in flight, and that after
 * BUDGET_HINT_STREAK hinted polls in a row a waiting round-robin poll gets
 * its turn. The round robin
 * takes no burst: a look that comes due right after it still goes at once.
 * Returns false (and leaves *ret alone) when nothing waits. */
bool budget_pick(budget *b, const budget_queue *q, uint64_t now, budget_decision *ret);
/* The same question for one class: now when its next call may go now, the
 * time it may go when only the pacer or window holds it, BUDGET_NEVER while
 * another class goes first (ask again when the queue changes). A class with
 * nothing waiting is asked about as if one call of it waited. */
uint64_t budget_when(budget *b, budget_class cls, const budget_queue *q, uint64_t now);
/* A call of this class left at now (every call, whoever decided it). */
void budget_record(budget *b, budget_class cls, uint64_t now);

/* A Throttling / 429 answer to a call sent at sent_usec: halve the pace
 * (at most once per reaction: answers to calls sent before the last cut do
 * not cut again). True when this starts a throttled episode, so the caller
 * warns once. */
bool budget_on_throttled(budget *b, uint64_t sent_usec, uint64_t now);
/* Also applies the recovery that time has earned. */
bool budget_is_throttled(budget *b, uint64_t now);
/* The pace now in calls per minute of the server's window (the share when
 * not throttled; 0 when unlimited): rollguard_budget_calls_per_minute. */
double budget_calls_per_minute(budget *b, uint64_t now);
/* Calls the guard counts in the window ending at now. */
size_t budget_in_window(const budget *b, uint64_t now);

/* ---- the plan the watcher schedules by ---- */

typedef struct budget_demand {
        size_t in_flight; /* apps with a release in flight: one call per look */
        size_t idle;      /* apps without: one call per poll */
        uint64_t active_poll_interval_usec;
        uint64_t poll_interval_usec;
} budget_demand;

typedef struct budget_plan {
        double poll_calls_per_sec;        /* what pacer and reserve leave for looks and polls (0: no limit) */
        uint64_t in_flight_interval_usec; /* each release in flight is looked at this often */
        bool stretched;                   /* ... longer than active_poll_interval: say so */
        uint64_t idle_interval_usec;      /* each idle app is polled this often (>= poll_interval) */
        uint64_t idle_sweep_usec;         /* time to poll every idle app once with what is
                                           * left (0: no idle apps or no limit) */
} budget_plan;

/* Releases in flight first, every one the same interval: active_poll_interval
 * when the budget gives it to all, else one stretched interval for all. The
 * idle share stays open for idle apps (no more than they need), and idle
 * apps share what is left round robin, oldest poll first. `pace_fraction`
 * is the throttled pace over the share (1 when clean). */
void budget_plan_compute(const budget_options *o, double pace_fraction, const budget_demand *d,
                         budget_plan *ret);
/* The same at this budget's pace now. */
void budget_plan_now(budget *b, const budget_demand *d, uint64_t now, budget_plan *ret);

/* The `rollguard check` budget line (no newline), arithmetic an operator can
 * redo by hand: each idle app costs one call per poll_interval, and when
 * they need more than the share, the round robin stretches poll_interval by
 * need / share, e.g. 300 apps at defaults:
 *   budget: 30 calls/min (rate_limit); 300 apps need 600 calls/min at
 *   poll_interval 30s: idle apps will be polled about every 10m
 * When the share suffices it says how many releases in flight at a time get
 * active_poll_interval. The live figures (budget_plan_now) are a few percent
 * longer: they also hold back the reserve for actions and the margin.
 * Returns 1 when the budget falls short (a warning), 0 when it suffices,
 * -ENOBUFS when buf is too small, -EINVAL for a zero interval. */
int budget_check_line(char *buf, size_t size, unsigned rate_limit, uint64_t window_usec,
                      size_t n_apps, uint64_t poll_interval_usec,
                      uint64_t active_poll_interval_usec);
