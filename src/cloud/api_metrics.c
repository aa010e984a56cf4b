/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "api_internal.h"
#include "util.h"


/* ---- metrics, computed at scrape time from the client's own counters ---- */

static void collect_calls(void *userdata, metrics_emitter *e) {
        metrics_emit(e, (double)((api_client *)userdata)->calls_sent);
}

static void collect_waits(void *userdata, metrics_emitter *e) {
        metrics_emit(e, (double)((api_client *)userdata)->rate_limit_waits);
}

static void collect_queue(void *userdata, metrics_emitter *e) {
        metrics_emit(e, (double)((api_client *)userdata)->n_queued);
}

static void collect_pace(void *userdata, metrics_emitter *e) {
        api_client *c = userdata;
        metrics_emit(e, budget_calls_per_minute(&c->budget, now_monotonic_usec()));
}

static void collect_throttled(void *userdata, metrics_emitter *e) {
        api_client *c = userdata;
        metrics_emit(e, budget_is_throttled(&c->budget, now_monotonic_usec()) ? 1 : 0);
}

int api_metrics_register(api_client *c, metrics_registry *m) {
        static const double wait_bounds[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300 };
        c->calls_total = metrics_counter_new(m, "rollguard_calls_total", "Cloud API calls sent, by API action.",
                                             "api");
        c->queue_wait = metrics_histogram_new(m, "rollguard_call_queue_wait_seconds",
                                              "How long calls waited for the budget before they were sent, by class.",
                                              wait_bounds, ELEMENTSOF(wait_bounds), "class");
        c->computed[0] = metrics_callback_new(m, "rollguard_api_calls_total", "Cloud API requests sent.",
                                              METRICS_COUNTER, collect_calls, c);
        c->computed[1] = metrics_callback_new(m, "rollguard_rate_limit_waits_total",
                                              "Calls that had to wait for the API budget.", METRICS_COUNTER,
                                              collect_waits, c);
        c->computed[2] = metrics_callback_new(m, "rollguard_api_queue", "Calls waiting to be sent.", METRICS_GAUGE,
                                              collect_queue, c);
        c->computed[3] = metrics_callback_new(m, "rollguard_budget_calls_per_minute",
                                              "The pace rollguard spends its API budget at now (rate_limit, less while throttled; 0: unlimited).",
                                              METRICS_GAUGE, collect_pace, c);
        c->computed[4] = metrics_callback_new(m, "rollguard_budget_throttled",
                                              "1 while Throttling answers hold the pace below rate_limit.", METRICS_GAUGE,
                                              collect_throttled, c);
        if (!c->calls_total || !c->queue_wait)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(c->computed); i++)
                if (!c->computed[i])
                        return -ENOMEM;
        return 0;
}

void api_metrics_free(api_client *c) {
        metrics_counter_free(c->calls_total);
        metrics_histogram_free(c->queue_wait);
        for (size_t i = 0; i < ELEMENTSOF(c->computed); i++)
                metrics_callback_free(c->computed[i]);
}

void api_client_stats(const api_client *c, api_stats *out) {
        *out = (api_stats){
                .calls_sent = c->calls_sent,
                .rate_limit_waits = c->rate_limit_waits,
                .throttled_answers = c->throttled_answers,
                .queued = c->n_queued,
                .in_flight = c->n_in_flight,
        };
}
