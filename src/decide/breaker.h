/* SPDX-License-Identifier: MIT */
/* The circuit breaker (SPEC 6): at most max_actions_per_hour actions over all
 * apps in any hour, counted from the durable records so a restart does not
 * reset it. Pure: the caller feeds the records and the time and keeps the
 * open/closed bit. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define BREAKER_WINDOW_MS INT64_C(3600000)

/* Actions in one record that count at now_ms (every attempt, whatever came
 * of it: the breaker is about how often the trigger was pulled). */
size_t breaker_count(const app_state *s, int64_t now_ms);

typedef enum breaker_change {
        BREAKER_SAME,
        BREAKER_OPENED,
        BREAKER_CLOSED,
} breaker_change;

/* Sets *open for `actions` in the last hour against max and says whether
 * that changed it. */
breaker_change breaker_update(bool *open, size_t actions, unsigned max);
