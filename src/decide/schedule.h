/* SPDX-License-Identifier: MIT */
/* The polling schedule's arithmetic (SPEC 6 Polling): backoff, the next poll
 * of an app with a release in flight, the start-up spread, the action retry.
 * Pure: no clock, no randomness; callers add jitter_usec() where the schedule
 * wants it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Transient errors back off exponentially up to this, whatever the interval. */
#define SCHEDULE_BACKOFF_MAX_USEC (5 * USEC_PER_MIN)
/* A `for` that expires between two polls is acted on at its expiry, but never
 * sooner than this after the previous poll. */
#define SCHEDULE_MIN_REPOLL_USEC (200 * USEC_PER_MSEC)
/* First polls are spread over this window (or the idle interval if shorter). */
#define SCHEDULE_STARTUP_SPREAD_USEC (3 * USEC_PER_SEC)

/* The delay after `failures` consecutive transient errors of an app polled
 * every base_usec: doubling, capped at SCHEDULE_BACKOFF_MAX_USEC (or base_usec
 * when that is longer). */
uint64_t schedule_backoff(uint64_t base_usec, unsigned failures);

/* A release in flight is never left longer than this many active intervals
 * without a look, whatever the errors. */
#define SCHEDULE_IN_FLIGHT_BACKOFF_FACTOR 4
/* The backoff of an app with a release in flight: doubling from
 * active_usec, capped at SCHEDULE_IN_FLIGHT_BACKOFF_FACTOR x active_usec. */
uint64_t schedule_in_flight_backoff(uint64_t active_usec, unsigned failures);

/* The next poll of an app with a release in flight: interval_usec, or when
 * a holding rule's `for` ends sooner (next_fire_ms > 0, wall clock), at its
 * end, but not sooner than SCHEDULE_MIN_REPOLL_USEC. */
uint64_t schedule_active_delay(uint64_t interval_usec, int64_t next_fire_ms, int64_t now_ms);

/* When app i of n polls first after start-up: the first at once, the rest
 * evenly over the spread window, so start-up is not a burst. */
uint64_t schedule_startup_offset(size_t i, size_t n, uint64_t idle_interval_usec);

/* The wait before resending an action the server certainly did not act on,
 * after `attempts` sends: 1 s doubling, capped at 64 s. */
uint64_t schedule_action_retry(unsigned attempts);
