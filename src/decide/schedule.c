/* SPDX-License-Identifier: MIT */
#include "schedule.h"

#include "util.h"

uint64_t schedule_backoff(uint64_t base_usec, unsigned failures) {
        unsigned n = failures > 10 ? 10 : failures;
        uint64_t d = base_usec << n;
        /* d < base: the shift overflowed */
        if (d > SCHEDULE_BACKOFF_MAX_USEC || d < base_usec)
                d = SCHEDULE_BACKOFF_MAX_USEC > base_usec ? SCHEDULE_BACKOFF_MAX_USEC : base_usec;
        return d;
}

uint64_t schedule_in_flight_backoff(uint64_t active_usec, unsigned failures) {
        uint64_t d = schedule_backoff(active_usec, failures);
        uint64_t cap = active_usec > UINT64_MAX / SCHEDULE_IN_FLIGHT_BACKOFF_FACTOR
                               ? UINT64_MAX
                               : active_usec * SCHEDULE_IN_FLIGHT_BACKOFF_FACTOR;
        return d < cap ? d : cap;
}

uint64_t schedule_active_delay(uint64_t interval_usec, int64_t next_fire_ms, int64_t now_ms) {
        uint64_t d = interval_usec;
        if (next_fire_ms > 0) {
                int64_t until = next_fire_ms - now_ms;
                uint64_t u = until > 0 ? (uint64_t)until * USEC_PER_MSEC : 0;
                if (u < SCHEDULE_MIN_REPOLL_USEC)
                        u = SCHEDULE_MIN_REPOLL_USEC;
                if (u < d)
                        d = u;
        }
        return d;
}

uint64_t schedule_startup_offset(size_t i, size_t n, uint64_t idle_interval_usec) {
        uint64_t spread = SCHEDULE_STARTUP_SPREAD_USEC;
        if (idle_interval_usec < spread)
                spread = idle_interval_usec;
        return n > 1 ? spread * i / n : 0;
}

uint64_t schedule_action_retry(unsigned attempts) {
        return USEC_PER_SEC << (attempts < 6 ? attempts : 6);
}
