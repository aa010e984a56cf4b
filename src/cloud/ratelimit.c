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
        if (r->limit == 0 || r->count < r->limit)
                return now_usec;
        /* The ring is full, so its oldest stamp is the limit-th newest call.
         * One more call fits once that stamp has left the window
         * (now - window, now], i.e. from oldest + window on. */
        uint64_t free_at = add_saturating(r->stamps[r->head], r->window_usec);
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
