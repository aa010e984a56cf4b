/* SPDX-License-Identifier: MIT */
#include "rules.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *const rule_default_co_types[] = { "CoDeploy", NULL };

const char *rule_action_name(rule_action a) {
        switch (a) {
        case ACTION_ROLLBACK:
                return "rollback";
        case ACTION_ABORT:
                return "abort";
        case ACTION_LOG:
                return "log";
        }
        return NULL;
}

int rule_action_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        if (streq(s, "rollback"))
                return ACTION_ROLLBACK;
        if (streq(s, "abort"))
                return ACTION_ABORT;
        if (streq(s, "log"))
                return ACTION_LOG;
        return -EINVAL;
}

const char *rule_cmp_name(rule_cmp c) {
        return c == RULE_BELOW ? "below" : "above";
}

bool rule_metric_holds(const rule *r, double v) {
        if (!isfinite(v))
                return false;
        return r->cmp == RULE_BELOW ? v < r->threshold : v > r->threshold;
}

static void label_pairs_free(label_pair *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].value);
        }
        free(p);
}

void rule_done(rule *r) {
        if (!r)
                return;
        free(r->name);
        for (size_t i = 0; i < r->n_co_types; i++)
                free(r->co_types[i]);
        free(r->co_types);
        label_pairs_free(r->alert, r->n_alert);
        free(r->query);
        *r = (rule){ .sub_status = SUB_UNKNOWN };
}

int rule_copy(rule *dst, const rule *src) {
        rule c = *src;

        /* Detach every pointer first so a partial copy can be freed safely. */
        c.name = NULL;
        c.co_types = NULL;
        c.n_co_types = 0;
        c.alert = NULL;
        c.n_alert = 0;
        c.query = NULL;

        if (src->query && !(c.query = strdup(src->query)))
                goto fail;

        if (src->name && !(c.name = strdup(src->name)))
                goto fail;

        if (src->co_types) {
                /* One spare slot keeps the array NULL-terminated as well. */
                c.co_types = calloc(src->n_co_types + 1, sizeof(char *));
                if (!c.co_types)
                        goto fail;
                for (size_t i = 0; i < src->n_co_types; i++) {
                        c.n_co_types = i + 1;
                        if (src->co_types[i] && !(c.co_types[i] = strdup(src->co_types[i])))
                                goto fail;
                }
                c.n_co_types = src->n_co_types;
        }

        if (src->n_alert > 0) {
                c.alert = calloc(src->n_alert, sizeof(label_pair));
                if (!c.alert)
                        goto fail;
                for (size_t i = 0; i < src->n_alert; i++) {
                        c.n_alert = i + 1;
                        c.alert[i].name = strdup_null(src->alert[i].name);
                        c.alert[i].value = strdup_null(src->alert[i].value);
                        if ((src->alert[i].name && !c.alert[i].name) ||
                            (src->alert[i].value && !c.alert[i].value))
                                goto fail;
                }
        }

        *dst = c;
        return 0;

fail:
        rule_done(&c);
        *dst = (rule){ .sub_status = SUB_UNKNOWN };
        return -ENOMEM;
}

static uint32_t status_bit(int status) {
        return 1u << status;
}

int rules_builtin(rule **ret, size_t *ret_n) {
        /* SPEC 8: what an app gets when its config names no rules. */
        const rule templates[] = {
                {
                        .name = (char *)"batch-error",
                        .status_mask = status_bit(CO_EXECUTING),
                        .sub_status = SUB_ERROR,
                        .for_usec = 60 * USEC_PER_SEC,
                        .action = ACTION_ROLLBACK,
                },
                {
                        .name = (char *)"stalled",
                        .status_mask = status_bit(CO_EXECUTING) | status_bit(CO_WAITING_AUTO),
                        .sub_status = SUB_UNKNOWN,
                        .no_progress_usec = 15 * USEC_PER_MIN,
                        .action = ACTION_ROLLBACK,
                },
                {
                        .name = (char *)"failed-batch",
                        .sub_status = SUB_UNKNOWN,
                        .pipeline_failed = true,
                        .action = ACTION_ROLLBACK,
                },
        };

        rule *rules = calloc(ELEMENTSOF(templates), sizeof(rule));
        if (!rules)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(templates); i++)
                if (rule_copy(&rules[i], &templates[i]) < 0) {
                        for (size_t j = 0; j < i; j++)
                                rule_done(&rules[j]);
                        free(rules);
                        return -ENOMEM;
                }

        *ret = rules;
        *ret_n = ELEMENTSOF(templates);
        return 0;
}

/* A bounded string builder for the human-readable `why`: truncation is fine,
 * overflowing is not, and a NULL buffer just swallows everything. */
typedef struct why_buf {
        char *buf;
        size_t size;
        size_t len;
} why_buf;

static void why_add(why_buf *w, const char *fmt, ...) _printf_(2, 3);
static void why_add(why_buf *w, const char *fmt, ...) {
        if (!w->buf || w->size == 0 || w->len >= w->size - 1)
                return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(w->buf + w->len, w->size - w->len, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        w->len += (size_t)n;
        if (w->len > w->size - 1)
                w->len = w->size - 1;
}

/* Used for the summary of a match: "status executing, sub_status error". */
static void why_item(why_buf *w, const char *fmt, ...) _printf_(2, 3);
static void why_item(why_buf *w, const char *fmt, ...) {
        char item[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(item, sizeof(item), fmt, ap);
        va_end(ap);
        why_add(w, "%s%s", w->len > 0 ? ", " : "", item);
}

/* Starts over: a failed condition replaces the summary collected so far. */
static bool why_fail(why_buf *w, const char *fmt, ...) _printf_(2, 3);
static bool why_fail(why_buf *w, const char *fmt, ...) {
        if (w->buf && w->size > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(w->buf, w->size, fmt, ap);
                va_end(ap);
        }
        return false;
}

static const char *status_str(int status, char *buf, size_t bufsz) {
        const char *n = co_status_name(status);
        if (n)
                return n;
        if (status == CO_UNKNOWN)
                return "unknown";
        snprintf(buf, bufsz, "%d", status);
        return buf;
}

static bool status_in_mask(uint32_t mask, int status) {
        return status >= 0 && status < _CO_STATUS_MAX && (mask & status_bit(status));
}

static const char *sub_status_str(int s) {
        switch (s) {
        case SUB_NORMAL:
                return "normal";
        case SUB_ERROR:
                return "error";
        default:
                return "unknown";
        }
}

static bool co_type_listed(const rule *r, const char *co_type) {
        if (!co_type)
                return false;
        /* An empty list cannot be a meaningful constraint: a rule that can
         * never match would fail silently, so it means the default too. */
        if (!r->co_types || r->n_co_types == 0) {
                for (const char *const *t = rule_default_co_types; *t; t++)
                        if (streq(*t, co_type))
                                return true;
                return false;
        }
        for (size_t i = 0; i < r->n_co_types; i++)
                if (r->co_types[i] && streq(r->co_types[i], co_type))
                        return true;
        return false;
}

static uint64_t ms_to_usec(int64_t ms) {
        if (ms <= 0)
                return 0;
        if ((uint64_t)ms > UINT64_MAX / USEC_PER_MSEC)
                return UINT64_MAX;
        return (uint64_t)ms * USEC_PER_MSEC;
}

/* Rounds up, so that "elapsed_ms >= threshold" is exactly "elapsed >= usec". */
static int64_t usec_to_ms_ceil(uint64_t usec) {
        uint64_t ms = usec / USEC_PER_MSEC + (usec % USEC_PER_MSEC != 0);
        return ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ms;
}

static bool no_progress_holds(const rule *r, const rule_input *in, why_buf *w) {
        const change_order *co = in->co;
        char b1[32], b2[32], b3[32];

        /* A manual batch waits for a human on purpose; only a rule that
         * names waiting_manual may call that a stall. */
        if (co->status == CO_WAITING_MANUAL && !status_in_mask(r->status_mask, CO_WAITING_MANUAL))
                return why_fail(w, "no_progress_for does not apply while waiting_manual: a manual "
                                   "batch waits for a human (name waiting_manual in status to include it)");

        int64_t progress_ms = change_order_last_progress_ms(co);
        if (in->last_change_ms > progress_ms)
                progress_ms = in->last_change_ms;
        if (progress_ms <= 0)
                return why_fail(w, "no_progress_for: no evidence of when the order last moved "
                                   "(no timestamps in the snapshot, no change seen yet)");

        uint64_t threshold_usec = r->no_progress_usec;
        uint64_t batch_wait_usec = 0;
        /* SAE pauses BatchWaitTime between automatic batches on purpose;
         * that pause is not a stall. */
        if (co->batch_type == BATCH_AUTO && co->status == CO_WAITING_AUTO && co->batch_wait_minutes > 0) {
                batch_wait_usec = (uint64_t)co->batch_wait_minutes * USEC_PER_MIN;
                threshold_usec = threshold_usec > UINT64_MAX - batch_wait_usec ? UINT64_MAX
                                                                               : threshold_usec + batch_wait_usec;
        }

        int64_t elapsed_ms = in->now_ms - progress_ms;
        if (elapsed_ms < usec_to_ms_ceil(threshold_usec)) {
                if (elapsed_ms < 0)
                        return why_fail(w, "no_progress_for: last progress is %s in the future (clock skew?)",
                                        format_duration(ms_to_usec(-elapsed_ms), b1, sizeof(b1)));
                if (batch_wait_usec > 0)
                        return why_fail(w, "no_progress_for: last progress %s ago, threshold %s + %s BatchWaitTime",
                                        format_duration(ms_to_usec(elapsed_ms), b1, sizeof(b1)),
                                        format_duration(r->no_progress_usec, b2, sizeof(b2)),
                                        format_duration(batch_wait_usec, b3, sizeof(b3)));
                return why_fail(w, "no_progress_for: last progress %s ago, threshold %s",
                                format_duration(ms_to_usec(elapsed_ms), b1, sizeof(b1)),
                                format_duration(r->no_progress_usec, b2, sizeof(b2)));
        }

        if (batch_wait_usec > 0)
                why_item(w, "no progress for %s (threshold %s + %s BatchWaitTime)",
                         format_duration(ms_to_usec(elapsed_ms), b1, sizeof(b1)),
                         format_duration(r->no_progress_usec, b2, sizeof(b2)),
                         format_duration(batch_wait_usec, b3, sizeof(b3)));
        else
                why_item(w, "no progress for %s (threshold %s)",
                         format_duration(ms_to_usec(elapsed_ms), b1, sizeof(b1)),
                         format_duration(r->no_progress_usec, b2, sizeof(b2)));
        return true;
}

static void format_matchers(const label_pair *m, size_t n_m, char *buf, size_t bufsz) {
        why_buf w = { .buf = buf, .size = bufsz };
        buf[0] = 0;
        for (size_t i = 0; i < n_m; i++)
                why_add(&w, "%s%s=%s", i > 0 ? "," : "", strna(m[i].name), strna(m[i].value));
}

const metric_reading *rule_metric_reading(const rule *r, const rule_input *in) {
        for (size_t i = 0; in->metrics && i < in->n_metrics; i++)
                if (in->metrics[i].rule && r->name && streq(in->metrics[i].rule, r->name))
                        return &in->metrics[i];
        return NULL;
}

static bool metric_holds(const rule *r, const rule_input *in, why_buf *w) {
        if (in->metrics_rechecked_later) {
                why_item(w, "query to be re-checked");
                return true;
        }
        const metric_reading *m = rule_metric_reading(r, in);
        if (!m)
                return why_fail(w, "query: no answer yet");
        if (!m->ok)
                return why_fail(w, "query inconclusive: %s", m->why && *m->why ? m->why : "no usable value");
        if (!rule_metric_holds(r, m->value))
                return why_fail(w, "query value %.6g is not %s %.6g", m->value, rule_cmp_name(r->cmp),
                                r->threshold);
        why_item(w, "query value %.6g %s %.6g", m->value, rule_cmp_name(r->cmp), r->threshold);
        return true;
}

bool rule_matches(const rule *r, const rule_input *in, char *why, size_t whysz) {
        why_buf w = { .buf = why, .size = whysz };
        char sbuf[16];

        if (why && whysz > 0)
                why[0] = 0;

        if (!in || !in->co)
                return why_fail(&w, "no change order to match");
        const change_order *co = in->co;

        if (co_type_is_rollback(co->co_type))
                return why_fail(&w, "change order is a rollback (%s); rollbacks are never acted on",
                                co->co_type);

        if (!co_type_listed(r, co->co_type))
                return why_fail(&w, "co_type %s is not one the rule watches%s",
                                co->co_type ? co->co_type : "(absent)",
                                r->co_types && r->n_co_types > 0 ? "" : " (default: deploy orders only)");

        if (r->status_mask != 0) {
                if (!status_in_mask(r->status_mask, co->status))
                        return why_fail(&w, "status %s is not in the rule's status list",
                                        status_str(co->status, sbuf, sizeof(sbuf)));
                why_item(&w, "status %s", status_str(co->status, sbuf, sizeof(sbuf)));
        }

        if (r->sub_status != SUB_UNKNOWN) {
                if (co->sub_status != r->sub_status)
                        return why_fail(&w, "sub_status %s, rule wants %s", sub_status_str(co->sub_status),
                                        sub_status_str(r->sub_status));
                why_item(&w, "sub_status %s", sub_status_str(co->sub_status));
        }

        if (r->pipeline_failed) {
                const pipeline *failed = NULL;
                for (size_t i = 0; i < co->n_pipelines && !failed; i++)
                        if (co->pipelines[i].status == CO_FAILED || co->pipelines[i].status == CO_SYSTEM_ERROR)
                                failed = &co->pipelines[i];
                if (!failed)
                        return why_fail(&w, "no pipeline has failed");
                why_item(&w, "pipeline %s %s", strna(failed->name ? failed->name : failed->id),
                         status_str(failed->status, sbuf, sizeof(sbuf)));
        }

        if (r->no_progress_usec > 0 && !no_progress_holds(r, in, &w))
                return false;

        if (r->n_alert > 0) {
                char mbuf[128];
                format_matchers(r->alert, r->n_alert, mbuf, sizeof(mbuf));
                if (!alert_matchers_firing(r->alert, r->n_alert, in->alerts, in->n_alerts, in->now_ms))
                        return why_fail(&w, "no firing alert matches {%s}", mbuf);
                why_item(&w, "alert {%s} firing", mbuf);
        }

        if (r->query && !metric_holds(r, in, &w))
                return false;

        if (w.len == 0)
                why_item(&w, "co_type %s (the rule has no other condition)", co->co_type);
        return true;
}

rule_verdict rule_evaluate(const rule *r, const rule_input *in, int64_t match_since_ms) {
        rule_verdict v = { .kind = VERDICT_NO_MATCH };

        if (!rule_matches(r, in, v.why, sizeof(v.why)))
                return v;

        /* `for` is timed on the steady clock: a step of the wall clock
         * must not fire a rule early */
        int64_t now = in->steady_ms ? in->steady_ms : in->now_ms;
        int64_t since = match_since_ms > 0 ? match_since_ms : now;
        int64_t for_ms = usec_to_ms_ceil(r->for_usec);
        v.fire_at_ms = since > 0 && for_ms > INT64_MAX - since ? INT64_MAX : since + for_ms;

        if (now >= v.fire_at_ms) {
                v.kind = VERDICT_FIRE;
                return v;
        }

        v.kind = VERDICT_HOLDING;
        char b[32];
        size_t len = strlen(v.why);
        snprintf(v.why + len, sizeof(v.why) - len, "; holding, fires in %s",
                 format_duration(ms_to_usec(v.fire_at_ms - now), b, sizeof(b)));
        return v;
}

bool action_allowed(rule_action a, const change_order *co, char *why, size_t whysz) {
        why_buf w = { .buf = why, .size = whysz };
        char sbuf[16];

        if (why && whysz > 0)
                why[0] = 0;

        if (a == ACTION_LOG)
                return true;
        if (a != ACTION_ROLLBACK && a != ACTION_ABORT)
                return why_fail(&w, "unknown action %d; refusing to act", (int)a);
        if (!co)
                return why_fail(&w, "no change order; refusing to %s", rule_action_name(a));

        if (co_type_is_rollback(co->co_type))
                return why_fail(&w, "change order is itself a rollback (%s); rollguard never acts on a rollback",
                                co->co_type);
        if (co_status_is_final(co->status))
                return why_fail(&w, "change order already ended (status %s); nothing to %s",
                                status_str(co->status, sbuf, sizeof(sbuf)), rule_action_name(a));

        switch (co->support_rollback) {
        case 1:
                return true;
        case 0:
                return why_fail(&w, "SupportRollback is false: the platform says this change order "
                                    "cannot be rolled back; not calling %s",
                                rule_action_name(a));
        case -1:
                return why_fail(&w, "SupportRollback missing from the API answer; not acting without it");
        default:
                return why_fail(&w, "SupportRollback has unexpected value %d; not acting without a clear yes",
                                co->support_rollback);
        }
}

static const char *label_value(const firing_alert *a, const char *name) {
        for (size_t i = 0; i < a->n_labels; i++)
                if (a->labels[i].name && streq(a->labels[i].name, name))
                        return a->labels[i].value;
        return NULL;
}

bool alert_matchers_firing(const label_pair *m, size_t n_m, const firing_alert *alerts,
                           size_t n_alerts, int64_t now_ms) {
        /* No matchers would match every alert, including unrelated ones;
         * rollbacks are too costly for that, so it matches none. */
        if (n_m == 0 || !alerts)
                return false;

        for (size_t i = 0; i < n_alerts; i++) {
                const firing_alert *a = &alerts[i];
                if (a->ends_at_ms != 0 && a->ends_at_ms <= now_ms)
                        continue;

                bool all = true;
                for (size_t j = 0; j < n_m && all; j++) {
                        const char *v = m[j].name ? label_value(a, m[j].name) : NULL;
                        all = v && streq_null(v, m[j].value);
                }
                if (all)
                        return true;
        }
        return false;
}
