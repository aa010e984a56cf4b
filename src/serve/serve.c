/* SPDX-License-Identifier: MIT */
#include "serve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "events.h"
#include "listener.h"
#include "status.h"
#include "util.h"

struct serve {
        listener *listener;
        alerts *alerts;
        events *events;
        status *status;
        metrics_callback *http[3];
};

/* ---- the listener's guards in /metrics ---- */

static void collect_open(void *userdata, metrics_emitter *e) {
        listener_stats st;
        listener_get_stats(((serve *)userdata)->listener, &st);
        metrics_emit(e, (double)st.connections);
}

static void collect_closed(void *userdata, metrics_emitter *e) {
        listener_stats st;
        listener_get_stats(((serve *)userdata)->listener, &st);
        metrics_emit(e, (double)st.header_timeouts, "header_timeout");
        metrics_emit(e, (double)st.request_timeouts, "request_timeout");
        metrics_emit(e, (double)st.evicted, "evicted");
}

static void collect_stalls(void *userdata, metrics_emitter *e) {
        listener_stats st;
        listener_get_stats(((serve *)userdata)->listener, &st);
        metrics_emit(e, (double)st.stalls);
}

static int add_http_metrics(serve *s, metrics_registry *m) {
        if (!m)
                return 0;
        s->http[0] = metrics_callback_new(m, "rollguard_http_connections", "Connections open to the listener.",
                                          METRICS_GAUGE, collect_open, s);
        s->http[1] = metrics_callback_new(m, "rollguard_http_connections_closed_total",
                                          "Connections the listener closed: headers or a request over its time "
                                          "budget, or the oldest without headers at the connection limit.",
                                          METRICS_COUNTER, collect_closed, s, "reason");
        s->http[2] = metrics_callback_new(m, "rollguard_http_listener_stalls_total",
                                          "Times the listener's self-check found connections waiting that it had "
                                          "stopped accepting (and ran it again).",
                                          METRICS_COUNTER, collect_stalls, s);
        for (size_t i = 0; i < ELEMENTSOF(s->http); i++)
                if (!s->http[i])
                        return -ENOMEM;
        return 0;
}

int serve_new(sd_event *e, watcher *w, metrics_registry *m, const config *cfg, serve **ret, char **ret_error) {
        serve *s = calloc(1, sizeof(serve));
        if (!s)
                return -ENOMEM;
        int r = listener_new(e, cfg, &s->listener, ret_error);
        if (r >= 0)
                r = add_http_metrics(s, m);
        if (r >= 0)
                r = alerts_new(w, cfg, m, &s->alerts);
        if (r >= 0)
                r = alerts_add_routes(s->alerts, s->listener);
        if (r >= 0)
                r = status_new(s->listener, w, s->alerts, m, &s->status);
        if (r >= 0)
                r = events_new(w, cfg, m, &s->events);
        if (r >= 0)
                r = events_add_routes(s->events, s->listener);
        /* the next endpoint: its module's *_new and routes, here */
        if (r < 0) {
                if (ret_error && !*ret_error)
                        *ret_error = strdup(r == -ENOMEM ? "out of memory" : strerror(-r));
                serve_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

serve *serve_free(serve *s) {
        if (!s)
                return NULL;
        /* the listener first: no handler may run on a freed module */
        for (size_t i = 0; i < ELEMENTSOF(s->http); i++)
                metrics_callback_free(s->http[i]);
        listener_free(s->listener);
        status_free(s->status);
        events_free(s->events);
        alerts_free(s->alerts);
        free(s);
        return NULL;
}

int serve_reconfigure(serve *s, const config *cfg, char **ret_error) {
        alerts_routes *rt = NULL;
        int r = alerts_reroute(s->alerts, cfg, &rt);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup("out of memory");
                return r;
        }
        events_apps *ea = NULL;
        r = events_reconfigure_prepare(s->events, cfg, &ea);
        if (r < 0) {
                alerts_routes_free(rt);
                if (ret_error)
                        *ret_error = strdup("out of memory");
                return r;
        }
        listener_pending *p = NULL;
        r = listener_reconfigure_check(s->listener, cfg, &p, ret_error);
        if (r < 0) {
                alerts_routes_free(rt);
                events_apps_free(ea);
                return r;
        }
        listener_reconfigure_commit(s->listener, p);
        alerts_reroute_commit(s->alerts, rt);
        events_reconfigure_commit(s->events, ea);
        return 0;
}

size_t serve_alert_lookup(void *userdata, const char *app, int64_t now_ms, const firing_alert **ret) {
        serve *s = userdata;
        return alerts_lookup(s ? s->alerts : NULL, app, now_ms, ret);
}

int serve_port(const serve *s) {
        return s ? listener_port(s->listener) : -1;
}
