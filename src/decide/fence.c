/* SPDX-License-Identifier: MIT */
#include "fence.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fence_internal.h"
#include "ha.h"
#include "log.h"
#include "util.h"

/* Act records older than this are not copied into the local state when a
 * node becomes leader (see mark_acted). */
#define ACTS_RECENT_MS (INT64_C(7) * 24 * 3600 * 1000)

/* A fencing txn or a result write in flight: the ha callback's userdata. */
typedef struct pending {
        struct pending *prev, *next;
        fence *f;
        action_run *run; /* the run waiting in pre_send; NULL: cancelled, or a result write */
        char *app, *co;
} pending;

struct fence {
        sd_event *event;
        etcd_client *etcd;
        ha_node *ha;
        watcher *watcher;
        uint64_t ttl_usec, etcd_wait_usec;
        action_hooks hooks;
        watcher_coord coord;
        pending *pending;

        /* acts/ is read every time this node becomes leader, before it polls:
         * `term` counts those times, so an answer from an older term does not
         * count for this one. */
        bool leading;
        unsigned term, loaded_term, loading_term;
        sd_event_source *reload;

        metrics_callback *m_role, *m_leader;
        metrics_counter *m_fences; /* result */

        void (*resigned)(void *userdata);
        void *resigned_userdata;
        sd_event_source *resign_deadline;
};

/* ---- bookkeeping ---- */

static pending *pending_new(fence *f, action_run *run, const char *app, const char *co) {
        pending *p = calloc(1, sizeof *p);
        if (!p)
                return NULL;
        p->app = strdup_null(app);
        p->co = strdup(co);
        if ((app && !p->app) || !p->co) {
                free(p->app);
                free(p->co);
                free(p);
                return NULL;
        }
        p->f = f;
        p->run = run;
        p->next = f->pending;
        if (f->pending)
                f->pending->prev = p;
        f->pending = p;
        return p;
}

static void pending_free(pending *p) {
        fence *f = p->f;
        if (p->prev)
                p->prev->next = p->next;
        else if (f->pending == p)
                f->pending = p->next;
        if (p->next)
                p->next->prev = p->prev;
        free(p->app);
        free(p->co);
        free(p);
}

static bool acts_loaded(const fence *f) {
        return f->leading && f->loaded_term == f->term;
}

/* ---- orders other nodes acted on ---- */

/* Keeps record as acted on in app's state; says so once. app_hint: the
 * app of a run the fence just refused (any age), NULL when reading acts/. */
static void mark_acted(fence *f, const char *app_hint, const char *co, const char *record) {
        fence_act a;
        int r = fence_act_parse(co, record, now_realtime_ms(), &a);
        if (r < 0) {
                log_warning("ha: acts/%s holds a record that is not JSON: treating the order as acted on", co);
                a = (fence_act){ .rec = { .change_order_id = (char *)co, .rule = (char *)"?",
                                          .result = ACT_UNCONFIRMED, .intent_ms = now_realtime_ms(),
                                          .finished_ms = now_realtime_ms(),
                                          .detail = (char *)"unreadable record in etcd" } };
                if (app_hint)
                        (void)watcher_mark_acted(f->watcher, app_hint, &a.rec);
                return;
        }
        const char *app = a.app ? a.app : app_hint;
        if (!app_hint && a.rec.intent_ms < now_realtime_ms() - ACTS_RECENT_MS) {
                /* No order stays in flight that long, and the fence refuses
                 * it anyway: keep the state file's few slots for recent ones. */
                fence_act_done(&a);
                return;
        }
        int k = app && f->watcher ? watcher_mark_acted(f->watcher, app, &a.rec) : -ENOENT;
        log_fields lf = { .app = app, .change_order = co, .rule = a.rec.rule,
                          .action = rule_action_name(a.rec.action), .result = act_result_name(a.rec.result) };
        if (k == -ENOENT)
                log_debug("ha: acts/%s is for %s, which this node does not watch", co, strna(app));
        else if (k < 0)
                log_event_send(EV_NONE, LOG_ERR, &lf, "ha: cannot record acts/%s locally: %s", co, strerror(-k));
        else if (k > 0 && a.rec.result == ACT_UNCONFIRMED)
                log_event_send(EV_ACTION_UNCONFIRMED, LOG_WARNING, &lf,
                               "%s of %s was claimed by %s but no result was written: it may or may not have reached the cloud, so it is never sent again; check change order %s",
                               rule_action_name(a.rec.action), co, strna(a.node), co);
        else if (k > 0)
                log_event_send(EV_ACTION_SKIPPED, LOG_INFO, &lf, "%s acted on %s already (%s %s): never acted on here",
                               strna(a.node), co, rule_action_name(a.rec.action), act_result_name(a.rec.result));
        fence_act_done(&a);
}

static void load_acts(fence *f);

static int on_reload(sd_event_source *s, uint64_t usec, void *userdata) {
        fence *f = userdata;
        f->reload = sd_event_source_disable_unref(f->reload);
        if (f->leading && !acts_loaded(f))
                load_acts(f);
        return 0;
}

static void on_acts(int error, const ha_act *acts, size_t n, void *userdata) {
        fence *f = userdata;
        unsigned term = f->loading_term;
        f->loading_term = 0;
        if (error < 0) {
                log_warning("ha: cannot read the act records from etcd (%s); not acting until they are read",
                            strerror(-error));
                if (!f->reload)
                        (void)sd_event_add_time_relative(f->event, &f->reload, CLOCK_MONOTONIC,
                                                         ha_tick_interval(f->ttl_usec), 0, on_reload, f);
                return;
        }
        for (size_t i = 0; i < n; i++)
                mark_acted(f, NULL, acts[i].change_order_id, acts[i].record);
        if (!f->leading)
                return;
        if (term != f->term) {
                load_acts(f); /* leadership was lost and won again meanwhile: read again */
                return;
        }
        f->loaded_term = term;
        log_info("ha: %zu act record%s read from etcd; polling", n, n == 1 ? "" : "s");
        if (f->watcher)
                watcher_coord_changed(f->watcher);
}

static void load_acts(fence *f) {
        if (f->loading_term)
                return; /* its answer sees the new term and reads again */
        f->loading_term = f->term;
        int r = ha_load_acts(f->ha, on_acts, f);
        if (r < 0)
                on_acts(r, NULL, 0, f);
}

static void on_role(ha_node *h, ha_role role, const char *leader, const char *reason, void *userdata) {
        fence *f = userdata;
        if (role == HA_ROLE_LEADER && !f->leading) {
                /* Another node may have led since we last read acts/. */
                f->leading = true;
                f->term++;
                load_acts(f);
        } else if (role != HA_ROLE_LEADER)
                f->leading = false;
        if (f->watcher)
                watcher_coord_changed(f->watcher);
}

/* ---- the watcher's coord ---- */

static bool coord_may_poll(void *userdata) {
        fence *f = userdata;
        if (ha_may_act(f->ha))
                return acts_loaded(f);
        return ha_observing(f->ha);
}

static const char *coord_why_not_act(void *userdata) {
        fence *f = userdata;
        if (ha_may_act(f->ha))
                return acts_loaded(f) ? NULL : "ha: reading acts/ from etcd first";
        if (ha_get_role(f->ha) == HA_ROLE_LEADER)
                return "ha: the lease cannot be confirmed in time (etcd slow, or this process was paused)";
        return ha_get_reason(f->ha);
}

static void coord_view(void *userdata, watcher_coord_view *out) {
        fence *f = userdata;
        *out = (watcher_coord_view){
                .node = ha_get_node(f->ha),
                .role = ha_role_name(ha_get_role(f->ha)),
                .reason = ha_get_reason(f->ha),
                .leader = ha_get_leader(f->ha),
        };
}

/* ---- the actions' hooks ---- */

static void on_fenced(ha_fence_result res, const char *record, const char *why, void *userdata) {
        pending *p = userdata;
        fence *f = p->f;
        action_run *run = p->run;
        log_fields lf = { .app = p->app, .change_order = p->co, .result = ha_fence_result_name(res) };
        metrics_counter_inc(f->m_fences, ha_fence_result_name(res));

        if (!run) {
                /* The run went away (app removed) while the txn was out. */
                if (res == HA_FENCED_OK) {
                        log_event_send(EV_NONE, LOG_NOTICE, &lf, "ha: acts/%s claimed but the action was cancelled: nothing sent",
                                       p->co);
                        (void)ha_record_result(f->ha, p->co, "{\"result\":\"failed\",\"detail\":\"cancelled before the call\"}",
                                               NULL, NULL);
                }
                pending_free(p);
                return;
        }
        /* p goes before the run resumes (whatever follows may start new
         * fences); what the log and the marking need is copied. */
        _cleanup_free_ char *app = strdup_null(p->app), *co = strdup(p->co), *rec = strdup_null(record);
        _cleanup_free_ char *text = strdup_printf("ha: %s", why);
        pending_free(p);
        lf.app = app;
        lf.change_order = co;
        switch (res) {
        case HA_FENCED_OK:
                log_event_send(EV_NONE, LOG_INFO, &lf, "ha: %s; sending", why);
                actions_resume(run, true, why);
                return;
        case HA_REFUSED_ALREADY_ACTED:
                /* Withdraw first (the intent goes), then keep the other
                 * node's record in its place, so it is never retried. */
                actions_resume(run, false, text ? text : why);
                if (co && rec)
                        mark_acted(f, app, co, rec);
                return;
        default:
                actions_resume(run, false, text ? text : why);
                return;
        }
}

int fence_pre_send(void *userdata, action_run *run, const char *app, const change_order *co, const rule *r) {
        fence *f = userdata;
        _cleanup_free_ char *intent = fence_intent_json(app, r->name, r->action, now_realtime_ms());
        pending *p = intent ? pending_new(f, run, app, co->id) : NULL;
        if (!p)
                return -ENOMEM;
        int k = ha_fence_act(f->ha, co->id, intent, on_fenced, p);
        if (k < 0)
                pending_free(p);
        return k;
}

void fence_gate_cancel(void *userdata, action_run *run) {
        fence *f = userdata;
        for (pending *p = f->pending; p; p = p->next)
                if (p->run == run)
                        p->run = NULL;
}

static void on_result_written(int error, void *userdata) {
        pending *p = userdata;
        if (error < 0) {
                log_fields lf = { .app = p->app, .change_order = p->co };
                log_event_send(EV_NONE, LOG_WARNING, &lf,
                               "ha: cannot write the result into acts/%s (%s): another leader will report the order as unconfirmed",
                               p->co, strerror(-error));
        }
        pending_free(p);
}

void fence_post_record(void *userdata, const action_outcome *o) {
        fence *f = userdata;
        _cleanup_free_ char *json = fence_result_json(o);
        pending *p = json ? pending_new(f, NULL, o->app, o->change_order_id) : NULL;
        int k = p ? ha_record_result(f->ha, o->change_order_id, json, on_result_written, p) : -ENOMEM;
        if (k < 0) {
                if (p)
                        on_result_written(k, p);
                else
                        log_warning("ha: cannot write the result of %s: %s", o->change_order_id, strerror(-k));
        }
}

/* ---- metrics ---- */

static void collect_role(void *userdata, metrics_emitter *e) {
        fence *f = userdata;
        ha_role now = ha_get_role(f->ha);
        for (ha_role r = 0; r < _HA_ROLE_MAX; r++)
                metrics_emit(e, r == now ? 1 : 0, ha_role_name(r));
}

static void collect_leader(void *userdata, metrics_emitter *e) {
        fence *f = userdata;
        metrics_emit(e, ha_get_role(f->ha) == HA_ROLE_LEADER ? 1 : 0);
}

/* ---- life cycle ---- */

int fence_new(sd_event *e, http_client *http, const config *cfg, metrics_registry *m, fence **ret,
              char **ret_error) {
        const ha_config *h = &cfg->ha;
        *ret_error = NULL;
        if (!h->etcd || !h->n_etcd)
                return -EINVAL;
        fence *f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->event = sd_event_ref(e);
        f->ttl_usec = h->lease_ttl_usec;
        /* Every endpoint may take its per-attempt timeout (ttl/6) once. */
        f->etcd_wait_usec = (h->lease_ttl_usec / 6) * h->n_etcd + USEC_PER_SEC;
        int r = fence_setup_etcd(http, h, &f->etcd, ret_error);
        if (r >= 0) {
                ha_options o = { .prefix = h->prefix, .node = h->node, .lease_ttl_usec = h->lease_ttl_usec,
                                 .on_role = on_role, .userdata = f };
                r = ha_new(e, f->etcd, &o, &f->ha);
        }
        if (r >= 0 && m) {
                f->m_role = metrics_callback_new(m, "rollguard_ha_role",
                                                 "1 for this node's HA role (starting, leader, standby, lost), 0 for the others.",
                                                 METRICS_GAUGE, collect_role, f, "role");
                f->m_leader = metrics_callback_new(m, "rollguard_ha_leader", "1 while this node leads (HA).",
                                                   METRICS_GAUGE, collect_leader, f);
                f->m_fences = metrics_counter_new(m, "rollguard_ha_fences_total",
                                                  "Fencing transactions before an action, by etcd's answer.", "result");
                if (!f->m_role || !f->m_leader || !f->m_fences)
                        r = -ENOMEM;
        }
        if (r < 0) {
                if (!*ret_error)
                        *ret_error = strdup_printf("ha: cannot set up: %s", strerror(-r));
                fence_free(f);
                return r;
        }
        f->hooks = (action_hooks){ .pre_send = fence_pre_send, .gate_cancel = fence_gate_cancel,
                                   .post_record = fence_post_record, .userdata = f };
        f->coord = (watcher_coord){ .may_poll = coord_may_poll, .why_not_act = coord_why_not_act,
                                    .view = coord_view, .userdata = f };
        *ret = f;
        return 0;
}

fence *fence_free(fence *f) {
        if (!f)
                return NULL;
        /* ha first: no callback runs afterwards, so the pending go quietly. */
        f->ha = ha_free(f->ha);
        while (f->pending)
                pending_free(f->pending);
        etcd_client_free(f->etcd);
        metrics_callback_free(f->m_role);
        metrics_callback_free(f->m_leader);
        metrics_counter_free(f->m_fences);
        sd_event_source_disable_unref(f->reload);
        sd_event_source_disable_unref(f->resign_deadline);
        sd_event_unref(f->event);
        free(f);
        return NULL;
}

const watcher_coord *fence_watcher_coord(fence *f) {
        return &f->coord;
}

const action_hooks *fence_action_hooks(fence *f) {
        return &f->hooks;
}

int fence_start(fence *f, watcher *w) {
        f->watcher = w;
        return ha_start(f->ha);
}

static void resign_finish(fence *f, int error) {
        void (*done)(void *) = f->resigned;
        if (!done)
                return;
        f->resigned = NULL;
        f->resign_deadline = sd_event_source_disable_unref(f->resign_deadline);
        if (error < 0)
                log_warning("ha: could not revoke the lease (%s): a standby takes over when it expires", strerror(-error));
        else
                log_info("ha: lease revoked: a standby takes over now");
        done(f->resigned_userdata);
}

static void on_resigned(int error, void *userdata) {
        resign_finish(userdata, error);
}

static int on_resign_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        resign_finish(userdata, -ETIMEDOUT);
        return 0;
}

int fence_resign(fence *f, void (*done)(void *userdata), void *userdata) {
        f->resigned = done;
        f->resigned_userdata = userdata;
        int r = sd_event_add_time_relative(f->event, &f->resign_deadline, CLOCK_MONOTONIC, f->etcd_wait_usec, 0,
                                           on_resign_deadline, f);
        if (r < 0) {
                f->resigned = NULL;
                return r;
        }
        r = ha_resign(f->ha, on_resigned, f);
        if (r < 0)
                resign_finish(f, r);
        return 0;
}
