/* SPDX-License-Identifier: MIT */
/* Sliding-window call limiter: no window of `window` ever holds more than
 * `limit` calls (SPEC 4). Pure: the caller passes the clock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit {
        unsigned limit;       /* 0 = unlimited */
        uint64_t window_usec;
        uint64_t *stamps;     /* ring of the last `limit` call times */
        size_t head;          /* index of the oldest stamp */
        size_t count;
} ratelimit;

int ratelimit_init(ratelimit *r, unsigned limit, uint64_t window_usec);
void ratelimit_done(ratelimit *r);

/* Earliest monotonic time >= now at which one more call keeps the promise. */
uint64_t ratelimit_next_allowed(const ratelimit *r, uint64_t now_usec);
/* Earliest time >= now at which `n` more calls fit in the window (the
 * budget keeps headroom for actions this way). UINT64_MAX when n > limit. */
uint64_t ratelimit_next_allowed_n(const ratelimit *r, uint64_t now_usec, unsigned n);
/* Record a call made at now_usec. Callers check next_allowed first. */
void ratelimit_record(ratelimit *r, uint64_t now_usec);
/* Calls inside the window ending at now. */
size_t ratelimit_in_window(const ratelimit *r, uint64_t now_usec);
/* Records src's newest calls (as many as dst holds) into an empty dst, so a
 * reload with a new limit keeps the window the server still counts. */
void ratelimit_carry(ratelimit *dst, const ratelimit *src);
