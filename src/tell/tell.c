/* SPDX-License-Identifier: MIT */
/* The daemon's notifications: journal records in, notify events out. */
#include "tell.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct tell {
        sd_event *event;
        const config *cfg;
        notify *notify;
        metrics_callback *metric;
        sd_event_source *flush_timer;
        uint64_t flush_deadline;
        void (*flush_done)(void *userdata);
        void *flush_userdata;
};

/* Which journal records people are told about. The kind of a record
 * decides; a release that went by unwatched (issue 11) too, its warning
 * only (tell_observe drops the notice that it is seen again). */
static notify_kind kind_of(log_event ev) {
        switch (ev) {
        case EV_ACTION_DONE:
                return NOTIFY_EV_ACTION;
        case EV_ACTION_FAILED:
                return NOTIFY_EV_ACTION_FAILED;
        case EV_ACTION_UNCONFIRMED:
                return NOTIFY_EV_UNCONFIRMED;
        case EV_CIRCUIT_OPEN:
                return NOTIFY_EV_CIRCUIT_OPEN;
        case EV_APP_DEGRADED:
                return NOTIFY_EV_DEGRADED;
        case EV_RELEASE_UNOBSERVED:
                return NOTIFY_EV_UNOBSERVED;
        default:
                return _NOTIFY_EV_INVALID;
        }
}

void tell_observe(void *userdata, log_event ev, int priority, const log_fields *f, const char *msg) {
        tell *t = userdata;
        notify_kind k = kind_of(ev);
        if (!t || !t->notify || k < 0)
                return;
        if (ev == EV_RELEASE_UNOBSERVED && priority > LOG_WARNING)
                return; /* "seen again" */
        const app_config *a = config_find_app(t->cfg, f->app);
        /* A failure's words are its result; what the rule saw is the reason
         * (the record's own text when no rule is involved). */
        _cleanup_free_ char *result = NULL;
        if (k == NOTIFY_EV_ACTION_FAILED || k == NOTIFY_EV_UNCONFIRMED)
                result = strdup_printf("%s: %s", strna(f->result), msg);
        notify_event ne = {
                .kind = k,
                .app = f->app,
                .platform = a ? platform_name(a->platform) : NULL,
                .region = a ? a->region : NULL,
                .app_id = a ? a->app_id : NULL,
                .change_order = f->change_order,
                .rule = f->rule,
                .action = f->action,
                .result = result ? result : f->result,
                .reason = f->reason ? f->reason : msg,
                .rollback_change_order = f->rollback_change_order,
                .time_ms = now_realtime_ms(),
                .has_value = f->value && f->threshold,
                .value = f->value ? strtod(f->value, NULL) : 0,
                .threshold = f->threshold ? strtod(f->threshold, NULL) : 0,
        };
        int r = notify_send(t->notify, &ne);
        if (r < 0)
                log_warning("cannot queue a notification for %s: %s", log_event_name(ev), strerror(-r));
}

static void on_result(const char *channel, notify_result r, long http_status, const char *detail, size_t n_events,
                      void *userdata) {
        log_fields f = { .channel = channel, .result = notify_result_name(r) };
        if (r == NOTIFY_RESULT_SENT)
                log_event_send(EV_NONE, LOG_INFO, &f, "notified channel %s: %zu event(s) delivered (HTTP %ld)",
                               channel, n_events, http_status);
        else if (r == NOTIFY_RESULT_RETRIED)
                log_event_send(EV_NONE, LOG_INFO, &f, "notify: channel %s did not take the message (%s); "
                               "retrying with backoff", channel, detail);
}

typedef struct collect_ctx {
        metrics_emitter *e;
} collect_ctx;

static void emit_one(const char *channel, notify_type type, notify_result r, uint64_t count, void *userdata) {
        collect_ctx *c = userdata;
        metrics_emit(c->e, (double)count, channel, notify_result_name(r));
}

static void collect(void *userdata, metrics_emitter *e) {
        tell *t = userdata;
        collect_ctx c = { e };
        notify_stats_foreach(t->notify, emit_one, &c);
}

int tell_new(sd_event *e, http_client *http, metrics_registry *m, const config *cfg, tell **ret) {
        tell *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->event = sd_event_ref(e);
        t->cfg = cfg;
        notify_channel *chans = NULL;
        size_t n = 0;
        int r = tell_channels_load(cfg, &chans, &n);
        if (r < 0) {
                tell_free(t);
                return r;
        }
        notify_options o = { .on_result = on_result, .userdata = t };
        r = notify_new(e, http, chans, n, &o, &t->notify);
        tell_channels_free(chans, n);
        if (r < 0) {
                tell_free(t);
                return r;
        }
        if (m) {
                t->metric = metrics_callback_new(m, "rollguard_notifications_total",
                                                 "Notification messages by channel and result (sent, retried, "
                                                 "failed; merged and deduped count events).",
                                                 METRICS_COUNTER, collect, t, "channel", "result");
                if (!t->metric) {
                        tell_free(t);
                        return -ENOMEM;
                }
        }
        *ret = t;
        return 0;
}

int tell_reconfigure(tell *t, const config *cfg) {
        /* The apps are looked up in the config in force, whatever happens
         * to the channels. */
        t->cfg = cfg;
        notify_channel *chans = NULL;
        size_t n = 0;
        int r = tell_channels_load(cfg, &chans, &n);
        if (r < 0)
                return r;
        r = notify_reconfigure(t->notify, chans, n);
        tell_channels_free(chans, n);
        return r;
}

tell *tell_free(tell *t) {
        if (!t)
                return NULL;
        metrics_callback_free(t->metric);
        notify_free(t->notify);
        sd_event_source_disable_unref(t->flush_timer);
        sd_event_unref(t->event);
        free(t);
        return NULL;
}

size_t tell_pending(const tell *t) {
        return t ? notify_pending(t->notify) : 0;
}

/* Checked every 50 ms: a shutdown lasts at most the timeout and usually
 * a fraction of a second more than the last answer. */
static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        tell *t = userdata;
        if (tell_pending(t) > 0 && now_monotonic_usec() < t->flush_deadline) {
                sd_event_source_set_time_relative(s, 50 * USEC_PER_MSEC);
                sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        if (tell_pending(t) > 0)
                log_warning("stopping with %zu notification(s) not delivered", tell_pending(t));
        void (*done)(void *) = t->flush_done;
        t->flush_done = NULL;
        if (done)
                done(t->flush_userdata);
        return 0;
}

int tell_flush(tell *t, uint64_t timeout_usec, void (*done)(void *userdata), void *userdata) {
        t->flush_deadline = now_monotonic_usec() + timeout_usec;
        t->flush_done = done;
        t->flush_userdata = userdata;
        t->flush_timer = sd_event_source_disable_unref(t->flush_timer);
        return sd_event_add_time_relative(t->event, &t->flush_timer, CLOCK_MONOTONIC, 0, 0, on_flush_timer, t);
}
