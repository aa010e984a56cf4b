/* SPDX-License-Identifier: MIT */
#include "ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ratelimit_init(ratelimit *r, unsigned limit, uint64_t window_usec) {
        *r = (ratelimit){ .limit = limit, .window_usec = window_usec };
        if (limit == 0)
                return 0;
        r->stamps = calloc(limit, sizeof *r->stamps);
        if (!r->stamps)
                return -ENOMEM;
        return 0;
}

void ratelimit_done(ratelimit *r) {
        free(r->stamps);
        *r = (ratelimit){};
}

static uint64_t add_saturating(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t ratelimit_next_allowed(const ratelimit *r, uint64_t now_usec) {
        return ratelimit_next_allowed_n(r, now_usec, 1);
}

uint64_t ratelimit_next_allowed_n(const ratelimit *r, uint64_t now_usec, unsigned n) {
        if (r->limit == 0 || n == 0)
                return now_usec;
        if (n > r->limit)
                return UINT64_MAX;
        /* n more fit once at most limit - n of the recorded calls are still in
         * the window. The ring holds the newest `count` calls in order, so the
         * one that must leave last is the (limit - n + 1)-th newest; every
         * call older than the ring left the window before it. */
        size_t keep = r->limit - n;
        if (r->count <= keep)
                return now_usec;
        size_t idx = (r->head + (r->count - keep - 1)) % r->limit;
        uint64_t free_at = add_saturating(r->stamps[idx], r->window_usec);
        return free_at > now_usec ? free_at : now_usec;
}

void ratelimit_record(ratelimit *r, uint64_t now_usec) {
        if (r->limit == 0)
                return;
        /* Keep the ring ordered even if a caller's clock steps back, so the
         * oldest stamp always stays at head. */
        if (r->count > 0) {
                uint64_t newest = r->stamps[(r->head + r->count - 1) % r->limit];
                if (now_usec < newest)
                        now_usec = newest;
        }
        if (r->count < r->limit) {
                r->stamps[(r->head + r->count) % r->limit] = now_usec;
                r->count++;
        } else {
                r->stamps[r->head] = now_usec;
                r->head = (r->head + 1) % r->limit;
        }
}

size_t ratelimit_in_window(const ratelimit *r, uint64_t now_usec) {
        size_t n = 0;
        for (size_t i = 0; i < r->count; i++) {
                uint64_t s = r->stamps[(r->head + i) % r->limit];
                if (s <= now_usec && add_saturating(s, r->window_usec) > now_usec)
                        n++;
        }
        return n;
}

void ratelimit_carry(ratelimit *dst, const ratelimit *src) {
        if (dst->limit == 0 || src->limit == 0)
                return;
        size_t keep = src->count < dst->limit ? src->count : dst->limit;
        for (size_t i = src->count - keep; i < src->count; i++)
                ratelimit_record(dst, src->stamps[(src->head + i) % src->limit]);
}
