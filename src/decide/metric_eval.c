/* SPDX-License-Identifier: MIT */
#include "metric_eval.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "prom_template.h"
#include "util.h"

/* One (app, rule): its query handle and what it last read. */
typedef struct slot {
        metric_app *app;
        char *rule;
        rule_cmp cmp;
        double threshold;
        prom_query *q;
        bool have;                    /* reading is about the current order */
        metric_reading reading;       /* .rule = rule, .why = why */
        char why[PROM_TEXT_MAX + 32];
        bool logged_bad;              /* log once per change */
        prom_reason logged_reason;
        char logged_text[PROM_TEXT_MAX];
        action_run *recheck;          /* a run waiting for this answer */
        bool keep;                    /* mark for the sweep in look */
} slot;

struct metric_app {
        metric_eval *me;
        char *name, *app_id, *region;
        char *co_id;
        int64_t release_started; /* unix seconds, -1 unknown */
        slot **slots;
        size_t n_slots;
        metric_reading *readings;
        metric_app *prev, *next;
};

struct metric_eval {
        prom_client *prom;
        metrics_gauge *value;     /* app, rule */
        metrics_counter *queries; /* result */
        metric_app *apps;
};

int metric_eval_client_new(http_client *http, const config *cfg, prom_client **ret, char **ret_error) {
        *ret = NULL;
        *ret_error = NULL;
        if (!cfg->prom_url)
                return 0;
        _cleanup_free_ char *token = config_prom_token_path(cfg, getenv("CREDENTIALS_DIRECTORY"), NULL);
        if (!token && cfg->prom_token_file)
                return -ENOMEM;
        if (!cfg->prom_token_file && token && access(token, F_OK) < 0)
                token = mfree(token); /* $CREDENTIALS_DIRECTORY/prom-token only when it is there */
        prom_options o = {
                .url = cfg->prom_url,
                .token_file = token,
                .auth = (prom_auth)cfg->prom_auth,
                .timeout_usec = cfg->prom_timeout_usec,
        };
        return prom_client_new(http, &o, ret, ret_error);
}

int metric_eval_new(prom_client *prom, metrics_registry *metrics, metric_eval **ret) {
        metric_eval *me = calloc(1, sizeof *me);
        if (!me)
                return -ENOMEM;
        me->prom = prom;
        if (metrics) {
                me->value = metrics_gauge_new(metrics, "rollguard_metric_value",
                                              "The latest value of a metric rule's query (NaN: inconclusive).",
                                              "app", "rule");
                me->queries = metrics_counter_new(metrics, "rollguard_metric_queries_total",
                                                  "Metric rule queries by result (ok or why inconclusive).",
                                                  "result");
                if (!me->value || !me->queries) {
                        metric_eval_free(me);
                        return -ENOMEM;
                }
        }
        *ret = me;
        return 0;
}

metric_eval *metric_eval_free(metric_eval *me) {
        if (!me)
                return NULL;
        metrics_gauge_free(me->value);
        metrics_counter_free(me->queries);
        free(me);
        return NULL;
}

/* ---- slots ---- */

static void slot_free(slot *s) {
        if (!s)
                return;
        prom_query_free(s->q);
        free(s->rule);
        free(s);
}

static void on_query_done(prom_query *q, const prom_verdict *v, void *userdata);

static slot *slot_get(metric_app *ma, const rule *r) {
        for (size_t i = 0; i < ma->n_slots; i++)
                if (streq(ma->slots[i]->rule, r->name))
                        return ma->slots[i];
        if (!ma->me->prom)
                return NULL;
        slot **n = realloc(ma->slots, (ma->n_slots + 1) * sizeof *n);
        if (!n)
                return NULL;
        ma->slots = n;
        slot *s = calloc(1, sizeof *s);
        if (!s)
                return NULL;
        s->app = ma;
        s->rule = strdup(r->name);
        if (!s->rule || prom_query_new(ma->me->prom, on_query_done, s, &s->q) < 0) {
                slot_free(s);
                return NULL;
        }
        ma->slots[ma->n_slots++] = s;
        return s;
}

static void slot_reset(slot *s) {
        s->have = false;
        s->logged_bad = false;
}

int metric_app_new(metric_eval *me, const char *app, metric_app **ret) {
        metric_app *ma = calloc(1, sizeof *ma);
        if (!ma)
                return -ENOMEM;
        ma->me = me;
        ma->release_started = -1;
        ma->name = strdup(app);
        if (!ma->name) {
                free(ma);
                return -ENOMEM;
        }
        ma->next = me->apps;
        if (me->apps)
                me->apps->prev = ma;
        me->apps = ma;
        *ret = ma;
        return 0;
}

metric_app *metric_app_free(metric_app *ma) {
        if (!ma)
                return NULL;
        for (size_t i = 0; i < ma->n_slots; i++)
                slot_free(ma->slots[i]);
        free(ma->slots);
        if (ma->prev)
                ma->prev->next = ma->next;
        else
                ma->me->apps = ma->next;
        if (ma->next)
                ma->next->prev = ma->prev;
        free(ma->readings);
        free(ma->name);
        free(ma->app_id);
        free(ma->region);
        free(ma->co_id);
        free(ma);
        return NULL;
}

void metric_app_forget(metric_app *ma) {
        if (!ma)
                return;
        for (size_t i = 0; i < ma->n_slots; i++) {
                slot *s = ma->slots[i];
                if (!s->recheck)
                        prom_query_cancel(s->q);
                slot_reset(s);
        }
        ma->co_id = mfree(ma->co_id);
        ma->release_started = -1;
}

/* ---- asking ---- */

static void set_inconclusive(slot *s, prom_reason reason, const char *text) {
        prom_verdict v = { .reason = reason };
        prom_sanitize_text(v.text, sizeof v.text, text, strlen(text));
        on_query_done(NULL, &v, s);
}

static int start_query(slot *s, const char *tmpl) {
        metric_app *ma = s->app;
        prom_template_vars vars = {
                .app = ma->name,
                .app_id = ma->app_id,
                .change_order = ma->co_id,
                .region = ma->region,
                .release_started = ma->release_started,
        };
        _cleanup_free_ char *q = NULL, *err = NULL;
        int r = prom_template_expand(tmpl, &vars, &q, &err, NULL);
        if (r < 0) {
                if (r == -ENOMEM)
                        return r;
                _cleanup_free_ char *text = strdup_printf("the query template: %s", err ? err : strerror(-r));
                set_inconclusive(s, PROM_QUERY_ERROR, text ? text : "the query template is invalid");
                return 0;
        }
        r = prom_query_start(s->q, q, 0);
        if (r == -EBUSY)
                return 0;
        if (r < 0) {
                char text[96];
                snprintf(text, sizeof text, "cannot send the query: %s", strerror(-r));
                set_inconclusive(s, PROM_UNREACHABLE, text);
        }
        return 0;
}

void metric_app_look(metric_app *ma, const app_config *cfg, const change_order *co) {
        if (!ma || !co || !co->id)
                return;
        if (!streq_null(ma->co_id, co->id)) {
                metric_app_forget(ma);
                if (free_and_strdup(&ma->co_id, co->id) < 0)
                        return;
        }
        if (ma->release_started < 0)
                ma->release_started = (co->create_ms > 0 ? co->create_ms : now_realtime_ms()) / 1000;
        (void)free_and_strdup(&ma->app_id, cfg->app_id);
        (void)free_and_strdup(&ma->region, cfg->region);

        for (size_t i = 0; i < ma->n_slots; i++)
                ma->slots[i]->keep = ma->slots[i]->recheck != NULL;
        for (size_t i = 0; i < cfg->n_rules; i++) {
                const rule *r = &cfg->rules[i];
                if (!r->query || !r->name)
                        continue;
                slot *s = slot_get(ma, r);
                if (!s)
                        continue;
                s->keep = true;
                s->cmp = r->cmp;
                s->threshold = r->threshold;
                if (!s->recheck && !prom_query_running(s->q))
                        (void)start_query(s, r->query);
        }
        /* rules a reload removed */
        size_t n = 0;
        for (size_t i = 0; i < ma->n_slots; i++) {
                if (ma->slots[i]->keep)
                        ma->slots[n++] = ma->slots[i];
                else
                        slot_free(ma->slots[i]);
        }
        ma->n_slots = n;
}

size_t metric_app_readings(metric_app *ma, const metric_reading **ret) {
        *ret = NULL;
        if (!ma || ma->n_slots == 0)
                return 0;
        metric_reading *m = realloc(ma->readings, ma->n_slots * sizeof *m);
        if (!m)
                return 0;
        ma->readings = m;
        size_t n = 0;
        for (size_t i = 0; i < ma->n_slots; i++)
                if (ma->slots[i]->have)
                        m[n++] = ma->slots[i]->reading;
        *ret = m;
        return n;
}

/* ---- answers ---- */

static void note_verdict(slot *s, const prom_verdict *v) {
        metric_app *ma = s->app;
        log_fields f = { .app = ma->name, .change_order = ma->co_id, .rule = s->rule,
                         .result = prom_reason_name(v->reason) };
        if (v->reason != PROM_OK) {
                if (s->logged_bad && s->logged_reason == v->reason && streq(s->logged_text, v->text))
                        return;
                s->logged_bad = true;
                s->logged_reason = v->reason;
                snprintf(s->logged_text, sizeof s->logged_text, "%s", v->text);
                log_event_send(EV_METRIC_QUERY, LOG_WARNING, &f,
                               "rule %s: query inconclusive (%s): %s; the rule does not hold while it is",
                               s->rule, strna(prom_reason_name(v->reason)), v->text);
                return;
        }
        if (s->logged_bad) {
                s->logged_bad = false;
                log_event_send(EV_METRIC_QUERY, LOG_NOTICE, &f, "rule %s: query answers again (value %.6g)", s->rule,
                               v->value);
        }
}

static void on_query_done(prom_query *q, const prom_verdict *v, void *userdata) {
        slot *s = userdata;
        metric_app *ma = s->app;
        metric_eval *me = ma->me;
        (void)q;

        metrics_counter_inc(me->queries, strna(prom_reason_name(v->reason)));
        metrics_gauge_set(me->value, v->reason == PROM_OK ? v->value : NAN, ma->name, s->rule);
        note_verdict(s, v);

        s->have = true;
        s->reading = (metric_reading){ .rule = s->rule, .ok = v->reason == PROM_OK, .value = v->value,
                                       .why = s->why };
        prom_format_verdict(v, s->why, sizeof s->why);

        action_run *run = TAKE_PTR(s->recheck);
        if (!run)
                return;
        rule tmp = { .cmp = s->cmp, .threshold = s->threshold };
        bool holds = v->reason == PROM_OK && rule_metric_holds(&tmp, v->value);
        char why[sizeof s->why + 64];
        if (v->reason == PROM_OK) {
                actions_set_metric(run, v->value, s->threshold);
                snprintf(why, sizeof why, "query value %.6g is%s %s %.6g", v->value, holds ? "" : " no longer",
                         rule_cmp_name(s->cmp), s->threshold);
        } else
                snprintf(why, sizeof why, "query %s", s->why);
        /* last: resuming may end the run and schedule the next look */
        actions_resume(run, holds, why);
}

/* ---- the re-check before acting ---- */

int metric_eval_recheck(void *userdata, action_run *run, const char *app, const change_order *co,
                        const rule *r) {
        metric_eval *me = userdata;
        if (!r->query) {
                actions_resume(run, true, NULL);
                return 0;
        }
        metric_app *ma = NULL;
        for (metric_app *i = me ? me->apps : NULL; i && !ma; i = i->next)
                if (streq(i->name, app))
                        ma = i;
        if (!ma || !ma->co_id || !streq_null(ma->co_id, co->id))
                return -ENOENT;
        slot *s = slot_get(ma, r);
        if (!s)
                return -ENOMEM;
        /* the same handle: still one query in flight for this (app, rule) */
        prom_query_cancel(s->q);
        s->cmp = r->cmp;
        s->threshold = r->threshold;
        s->recheck = run;
        int k = start_query(s, r->query);
        if (k < 0) {
                s->recheck = NULL;
                return k;
        }
        return 0;
}

void metric_eval_gate_cancel(void *userdata, action_run *run) {
        metric_eval *me = userdata;
        for (metric_app *ma = me ? me->apps : NULL; ma; ma = ma->next)
                for (size_t i = 0; i < ma->n_slots; i++)
                        if (ma->slots[i]->recheck == run) {
                                ma->slots[i]->recheck = NULL;
                                prom_query_cancel(ma->slots[i]->q);
                        }
}
