/* SPDX-License-Identifier: MIT */
/* What the watcher does with the API budget (issue 11): the plan it
 * schedules releases in flight by (and says when it stretches), the idle
 * round robin (a couple of idle polls queued at a time, the one that waited
 * longest first), releases in flight nobody has seen for a while, and the
 * budget's gauges. Beside the per-app state machine (watcher.c), which calls
 * in here through watcher_app.h. */
#include "watcher.h"

#include "log.h"
#include "util.h"
#include "watcher_app.h"

static void demand_of(const watcher *w, budget_demand *d) {
        watcher_counts c;
        watcher_get_counts(w, &c);
        *d = (budget_demand){
                .in_flight = c.in_flight,
                .idle = c.idle + c.degraded,
                .active_poll_interval_usec = w->cfg->active_poll_interval_usec,
                .poll_interval_usec = w->cfg->poll_interval_usec,
        };
}

void watcher_budget_update(watcher *w) {
        if (!w->cloud.api)
                return;
        budget_demand d;
        demand_of(w, &d);
        api_client_budget(w->cloud.api, &d, &w->budget);
        bool stretched = w->budget.plan.stretched && d.in_flight > 0;
        if (stretched == w->stretched_said)
                return;
        w->stretched_said = stretched;
        char b1[32], b2[32];
        if (stretched)
                log_event_send(EV_BUDGET_STRETCHED, LOG_WARNING, NULL,
                               "the API budget (%.0f calls/min) cannot look at %zu releases in flight every %s (active_poll_interval): each is looked at every %s",
                               w->budget.calls_per_minute, d.in_flight,
                               format_duration(d.active_poll_interval_usec, b1, sizeof b1),
                               format_duration(w->budget.plan.in_flight_interval_usec, b2, sizeof b2));
        else
                log_event_send(EV_BUDGET_STRETCHED, LOG_NOTICE, NULL,
                               "releases in flight are looked at every %s (active_poll_interval) again",
                               format_duration(w->cfg->active_poll_interval_usec, b1, sizeof b1));
}

uint64_t watcher_in_flight_interval(const watcher *w) {
        uint64_t i = w->budget.plan.in_flight_interval_usec;
        return i > w->cfg->active_poll_interval_usec ? i : w->cfg->active_poll_interval_usec;
}

void watcher_budget_get(watcher *w, watcher_budget_view *out) {
        watcher_budget_update(w);
        const budget_plan *p = &w->budget.plan;
        *out = (watcher_budget_view){
                .calls_per_minute = w->budget.calls_per_minute,
                .throttled = w->budget.throttled,
                .in_flight_interval_usec = watcher_in_flight_interval(w),
                .stretched = p->stretched,
                .idle_interval_usec = p->idle_interval_usec > w->cfg->poll_interval_usec ? p->idle_interval_usec
                                                                                         : w->cfg->poll_interval_usec,
                .idle_sweep_usec = p->idle_sweep_usec,
        };
}

/* ---- the idle round robin ---- */

/* Never polled first, then the oldest poll. */
static app_watch *next_idle(const watcher *w) {
        app_watch *best = NULL;
        for (size_t i = 0; i < w->n_apps; i++) {
                app_watch *a = w->apps[i];
                if (!a->idle_waiting || a->call || a->action)
                        continue;
                if (!best || a->last_poll_ms < best->last_poll_ms)
                        best = a;
        }
        return best;
}

static void idle_pump(watcher *w) {
        if (w->draining || !w->cloud.api)
                return;
        while (api_client_waiting(w->cloud.api, API_PRIO_IDLE) < WATCHER_IDLE_QUEUED) {
                app_watch *a = next_idle(w);
                if (!a)
                        return;
                a->idle_waiting = false;
                app_watch_poll_start(a);
                if (!a->call)
                        return; /* could not queue: it rescheduled itself; do not spin */
        }
}

static void on_idle_sent(void *userdata) {
        idle_pump(userdata);
}

void watcher_idle_due(app_watch *a) {
        a->idle_waiting = true;
        idle_pump(a->w);
}

/* ---- releases in flight nobody sees ---- */

/* Ages in messages to the millisecond: microseconds are noise to a human. */
static uint64_t round_ms(uint64_t usec) {
        return usec / USEC_PER_MSEC * USEC_PER_MSEC;
}

void watcher_seen(app_watch *a) {
        uint64_t now = now_monotonic_usec();
        if (a->unobserved_said) {
                char b[32];
                log_fields f = { .app = a->name, .change_order = a->have_co ? a->co.id : a->state.last_change_order_id };
                log_event_send(EV_RELEASE_UNOBSERVED, LOG_NOTICE, &f, "release %s of %s is seen again after %s",
                               strna(f.change_order), a->name,
                               format_duration(a->seen_usec ? round_ms(now - a->seen_usec) : 0, b, sizeof b));
        }
        a->unobserved_said = false;
        a->seen_usec = now;
}

static void check_unobserved(watcher *w, uint64_t now) {
        for (size_t i = 0; i < w->n_apps; i++) {
                app_watch *a = w->apps[i];
                if (a->phase != APP_ACTIVE || !a->seen_usec || a->unobserved_said ||
                    now - a->seen_usec <= w->cfg->unobserved_after_usec)
                        continue;
                a->unobserved_said = true;
                char b[32];
                log_fields f = { .app = a->name,
                                 .change_order = a->have_co ? a->co.id : a->state.last_change_order_id,
                                 .result = a->error_code };
                log_event_send(EV_RELEASE_UNOBSERVED, LOG_WARNING, &f,
                               "release %s of %s in flight has not been seen for %s (last error: %s); rollguard cannot act on it until it sees it again",
                               strna(f.change_order), a->name, format_duration(round_ms(now - a->seen_usec), b, sizeof b),
                               a->error_code ? a->error_code : "none");
        }
}

static int on_budget_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        watcher *w = userdata;
        watcher_budget_update(w);
        check_unobserved(w, now_monotonic_usec());
        idle_pump(w);
        (void)sd_event_source_set_time_relative(s, USEC_PER_SEC);
        return 0;
}

/* ---- gauges ---- */

static void collect_unobserved(void *userdata, metrics_emitter *e) {
        const watcher *w = userdata;
        uint64_t now = now_monotonic_usec();
        for (size_t i = 0; i < w->n_apps; i++) {
                const app_watch *a = w->apps[i];
                if (a->phase == APP_ACTIVE && a->seen_usec)
                        metrics_emit(e, (double)(now - a->seen_usec) / USEC_PER_SEC, a->name);
        }
}

static void collect_sweep(void *userdata, metrics_emitter *e) {
        watcher *w = userdata;
        watcher_budget_update(w);
        metrics_emit(e, (double)w->budget.plan.idle_sweep_usec / USEC_PER_SEC);
}

int watcher_budget_start(watcher *w) {
        if (w->opt.metrics && !w->budget_metrics[0]) {
                w->budget_metrics[0] = metrics_callback_new(
                        w->opt.metrics, "rollguard_release_unobserved_seconds",
                        "Seconds since the release in flight of the app was last seen (a good answer).", METRICS_GAUGE,
                        collect_unobserved, w, "app");
                w->budget_metrics[1] = metrics_callback_new(
                        w->opt.metrics, "rollguard_idle_sweep_seconds",
                        "Time to poll every idle app once at the budget now (0: no idle apps or no limit).",
                        METRICS_GAUGE, collect_sweep, w);
                if (!w->budget_metrics[0] || !w->budget_metrics[1])
                        return -ENOMEM;
        }
        if (w->cloud.api)
                api_client_on_sent(w->cloud.api, API_PRIO_IDLE, on_idle_sent, w);
        watcher_budget_update(w);
        if (w->budget_timer)
                return 0;
        int r = sd_event_add_time_relative(w->event, &w->budget_timer, CLOCK_MONOTONIC, USEC_PER_SEC,
                                           50 * USEC_PER_MSEC, on_budget_timer, w);
        if (r < 0)
                return r;
        (void)sd_event_source_set_enabled(w->budget_timer, SD_EVENT_ON);
        (void)sd_event_source_set_description(w->budget_timer, "watcher-budget");
        return 0;
}

void watcher_budget_free(watcher *w) {
        if (w->cloud.api)
                api_client_on_sent(w->cloud.api, API_PRIO_IDLE, NULL, NULL);
        w->budget_timer = sd_event_source_disable_unref(w->budget_timer);
        for (size_t i = 0; i < ELEMENTSOF(w->budget_metrics); i++)
                w->budget_metrics[i] = metrics_callback_free(w->budget_metrics[i]);
}
