/* SPDX-License-Identifier: MIT */
#include "breaker.h"

size_t breaker_count(const app_state *s, int64_t now_ms) {
        return state_count_acts_since(s, now_ms - BREAKER_WINDOW_MS);
}

breaker_change breaker_update(bool *open, size_t actions, unsigned max) {
        bool was = *open;
        *open = actions >= max;
        if (*open == was)
                return BREAKER_SAME;
        return *open ? BREAKER_OPENED : BREAKER_CLOSED;
}
