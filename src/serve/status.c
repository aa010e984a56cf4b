/* SPDX-License-Identifier: MIT */
#include "status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h> /* status codes */
#include <stdio.h>

#include "util.h"

struct status {
        watcher *watcher;
        alerts *alerts;
        metrics_registry *metrics;
        metrics_callback *computed[3]; /* the API client registers its own */
};

static double age_seconds(int64_t then_ms, int64_t now_ms) {
        return then_ms > 0 ? (double)(now_ms - then_ms) / 1000.0 : -1;
}

/* ---- GET /status ---- */

static void add_app(cJSON *o, const watcher_app_view *v, size_t alerts_firing, int64_t now) {
        cJSON_AddStringToObject(o, "name", v->name);
        cJSON_AddStringToObject(o, "platform", platform_name(v->cfg->platform));
        cJSON_AddStringToObject(o, "app_id", v->cfg->app_id);
        cJSON_AddStringToObject(o, "state", v->state);
        cJSON_AddBoolToObject(o, "dry_run", v->dry_run);
        cJSON_AddBoolToObject(o, "quarantined", v->quarantined);
        if (v->co) {
                cJSON_AddStringToObject(o, "change_order", v->co->id);
                const char *sn = co_status_name(v->co->status);
                cJSON_AddStringToObject(o, "status", sn ? sn : "unknown");
                cJSON_AddNumberToObject(o, "sub_status", v->co->sub_status);
        } else {
                cJSON_AddNullToObject(o, "change_order");
                cJSON_AddNullToObject(o, "status");
        }
        cJSON_AddNumberToObject(o, "last_poll_age_seconds", age_seconds(v->last_poll_ms, now));
        cJSON_AddNumberToObject(o, "last_ok_age_seconds", age_seconds(v->last_poll_ok_ms, now));
        if (v->error_code)
                cJSON_AddStringToObject(o, "error", v->error_code);
        else
                cJSON_AddNullToObject(o, "error");
        if (v->holding_rule) {
                cJSON *p = cJSON_AddObjectToObject(o, "pending_rule");
                if (p) {
                        cJSON_AddStringToObject(p, "rule", v->holding_rule);
                        double s = (double)(v->next_fire_ms - now) / 1000.0;
                        cJSON_AddNumberToObject(p, "fires_in_seconds", s > 0 ? s : 0);
                }
        } else
                cJSON_AddNullToObject(o, "pending_rule");
        const act_record *last = v->last_action;
        if (last) {
                cJSON *l = cJSON_AddObjectToObject(o, "last_action");
                if (l) {
                        cJSON_AddStringToObject(l, "change_order", last->change_order_id);
                        cJSON_AddStringToObject(l, "rule", last->rule ? last->rule : "");
                        cJSON_AddStringToObject(l, "action", rule_action_name(last->action));
                        cJSON_AddStringToObject(l, "result", act_result_name(last->result));
                        cJSON_AddNumberToObject(l, "age_seconds", age_seconds(last->intent_ms, now));
                        if (last->rollback_order_id)
                                cJSON_AddStringToObject(l, "rollback_change_order", last->rollback_order_id);
                }
        } else
                cJSON_AddNullToObject(o, "last_action");
        cJSON_AddNumberToObject(o, "alerts_firing", (double)alerts_firing);
}

/* NULL on OOM: a partial document would read as "no such app". */
static cJSON *status_json(const status *s) {
        int64_t now = now_realtime_ms();
        cJSON *root = cJSON_CreateObject();
        if (!root || !s->watcher)
                return root;
        watcher_summary sum;
        watcher_summary_get(s->watcher, now, &sum);
        cJSON_AddNumberToObject(root, "apps_total", (double)sum.counts.apps);
        cJSON_AddNumberToObject(root, "in_flight", (double)sum.counts.in_flight);
        cJSON_AddNumberToObject(root, "degraded", (double)sum.counts.degraded);
        cJSON_AddBoolToObject(root, "circuit_open", sum.counts.circuit_open);
        cJSON_AddNumberToObject(root, "actions_last_hour", (double)sum.actions_last_hour);
        cJSON_AddNumberToObject(root, "max_actions_per_hour", sum.max_actions_per_hour);
        watcher_budget_view bv;
        watcher_budget_get(s->watcher, &bv);
        cJSON *b = cJSON_AddObjectToObject(root, "budget");
        if (!b)
                goto oom;
        cJSON_AddNumberToObject(b, "calls_per_minute", bv.calls_per_minute);
        cJSON_AddBoolToObject(b, "throttled", bv.throttled);
        cJSON_AddNumberToObject(b, "in_flight_interval_seconds", (double)bv.in_flight_interval_usec / USEC_PER_SEC);
        cJSON_AddBoolToObject(b, "stretched", bv.stretched);
        cJSON_AddNumberToObject(b, "idle_interval_seconds", (double)bv.idle_interval_usec / USEC_PER_SEC);
        cJSON_AddNumberToObject(b, "idle_sweep_seconds", (double)bv.idle_sweep_usec / USEC_PER_SEC);
        watcher_coord_view hv;
        cJSON *ha = watcher_coord_view_get(s->watcher, &hv) ? cJSON_AddObjectToObject(root, "ha") : NULL;
        if (ha) { /* ha: this node's role and who leads */
                cJSON_AddStringToObject(ha, "node", hv.node);
                cJSON_AddStringToObject(ha, "role", hv.role);
                if (hv.leader)
                        cJSON_AddStringToObject(ha, "leader", hv.leader);
                else
                        cJSON_AddNullToObject(ha, "leader");
                cJSON_AddStringToObject(ha, "reason", hv.reason);
        }
        cJSON *arr = cJSON_AddArrayToObject(root, "apps");
        if (!arr)
                goto oom;
        size_t n = watcher_n_apps(s->watcher);
        for (size_t i = 0; i < n; i++) {
                watcher_app_view v;
                watcher_app_view_get(s->watcher, i, &v);
                const firing_alert *fa;
                size_t firing = s->alerts ? alerts_lookup(s->alerts, v.name, now, &fa) : 0;
                cJSON *o = cJSON_CreateObject();
                if (!o)
                        goto oom;
                cJSON_AddItemToArray(arr, o);
                add_app(o, &v, firing, now);
                if (!cJSON_GetObjectItemCaseSensitive(o, "alerts_firing"))
                        goto oom;
        }
        return root;
oom:
        cJSON_Delete(root);
        return NULL;
}

static int handle_status(void *userdata, const listener_request *rq) {
        cJSON *root = status_json(userdata);
        if (!root)
                return listener_reply(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);
        return listener_reply_json(rq, MHD_HTTP_OK, root);
}

/* ---- GET /metrics ---- */

static int handle_metrics(void *userdata, const listener_request *rq) {
        status *s = userdata;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return listener_reply(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);
        int r = metrics_render(s->metrics, f);
        if (fclose(f) != 0 || r < 0) {
                free(buf);
                return listener_reply(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);
        }
        return listener_reply(rq, MHD_HTTP_OK, "text/plain; version=0.0.4", buf, size, NULL, NULL);
}

/* ---- what the watcher and the API client know, read at scrape time ---- */

static void collect_apps(void *userdata, metrics_emitter *e) {
        watcher_counts c;
        watcher_get_counts(userdata, &c);
        metrics_emit(e, (double)c.idle, "idle");
        metrics_emit(e, (double)c.in_flight, "in_flight");
        metrics_emit(e, (double)c.degraded, "degraded");
}

static void collect_circuit(void *userdata, metrics_emitter *e) {
        watcher_counts c;
        watcher_get_counts(userdata, &c);
        metrics_emit(e, c.circuit_open ? 1 : 0);
}

static void collect_poll_age(void *userdata, metrics_emitter *e) {
        const watcher *w = userdata;
        int64_t now = now_realtime_ms();
        size_t n = watcher_n_apps(w);
        for (size_t i = 0; i < n; i++) {
                watcher_app_view v;
                watcher_app_view_get(w, i, &v);
                metrics_emit(e, age_seconds(v.last_poll_ok_ms, now), v.name);
        }
}

static int register_computed(status *s) {
        metrics_registry *m = s->metrics;
        watcher *w = s->watcher;
        s->computed[0] = metrics_callback_new(m, "rollguard_apps", "Watched apps by state.", METRICS_GAUGE,
                                              collect_apps, w, "state");
        s->computed[1] = metrics_callback_new(
                m, "rollguard_circuit_open",
                "1 while the max_actions_per_hour breaker holds rollguard in log-only mode.", METRICS_GAUGE,
                collect_circuit, w);
        s->computed[2] = metrics_callback_new(
                m, "rollguard_last_successful_poll_age_seconds",
                "Seconds since the app was last polled successfully (-1: never).", METRICS_GAUGE, collect_poll_age, w,
                "app");
        for (size_t i = 0; i < ELEMENTSOF(s->computed); i++)
                if (!s->computed[i])
                        return -ENOMEM;
        return 0;
}

int status_new(listener *l, watcher *w, alerts *a, metrics_registry *m, status **ret) {
        status *s = calloc(1, sizeof(status));
        if (!s)
                return -ENOMEM;
        *s = (status){ .watcher = w, .alerts = a, .metrics = m };
        int r = w && m ? register_computed(s) : 0;
        if (r >= 0)
                r = listener_add_route(l, &(listener_route){ .method = "GET", .path = "/metrics",
                                                              .handler = handle_metrics, .userdata = s });
        if (r >= 0)
                r = listener_add_route(l, &(listener_route){ .method = "GET", .path = "/status",
                                                              .handler = handle_status, .userdata = s });
        if (r < 0) {
                status_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

status *status_free(status *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(s->computed); i++)
                metrics_callback_free(s->computed[i]);
        free(s);
        return NULL;
}
