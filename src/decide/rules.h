/* SPDX-License-Identifier: MIT */
/* Rules are pure: (rule, change-order snapshot, now, alert state) -> verdict.
 * No I/O, no clocks, no globals: everything arrives in rule_input. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change_order.h"

typedef enum rule_action {
        ACTION_ROLLBACK,
        ACTION_ABORT,
        ACTION_LOG,
} rule_action;

const char *rule_action_name(rule_action a); /* "rollback" / "abort" / "log" */
int rule_action_from_string(const char *s);  /* or -EINVAL */

typedef struct label_pair {
        char *name;
        char *value;
} label_pair;

/* One firing alert that concerns an app (alerts.c keeps these). */
typedef struct firing_alert {
        label_pair *labels;
        size_t n_labels;
        int64_t ends_at_ms; /* 0: until resolved (Alertmanager's 0001-01-01) */
} firing_alert;

/* A metric condition: the query's value must be strictly above or below
 * the threshold. */
typedef enum rule_cmp {
        RULE_ABOVE,
        RULE_BELOW,
} rule_cmp;

const char *rule_cmp_name(rule_cmp c); /* "above" / "below" */

typedef struct rule {
        char *name;
        uint32_t status_mask;      /* bit (1u << status); 0 = condition absent */
        int sub_status;            /* SUB_UNKNOWN = condition absent */
        char **co_types;           /* NULL = default: deploy-like orders only */
        size_t n_co_types;
        uint64_t no_progress_usec; /* 0 = condition absent */
        bool pipeline_failed;      /* true = condition present */
        label_pair *alert;         /* label matchers; n_alert 0 = absent */
        size_t n_alert;
        char *query;               /* PromQL template; NULL = condition absent */
        rule_cmp cmp;
        double threshold;
        unsigned query_line, query_col; /* where the query is in the config, for messages */
        uint64_t for_usec;
        rule_action action;
} rule;

/* The CoTypeCodes a rule matches when it names none. */
extern const char *const rule_default_co_types[];

void rule_done(rule *r);                 /* frees members, zeroes */
int rule_copy(rule *dst, const rule *src);

/* The three rules an app gets when its config has no `rules:` (SPEC 8):
 * batch-error, stalled, failed-batch. Returns 0 or -ENOMEM. */
int rules_builtin(rule **ret, size_t *ret_n);

/* The latest answer to a rule's query (the watcher asks Prometheus; rules
 * only read what came back). */
typedef struct metric_reading {
        const char *rule;  /* the rule's name */
        bool ok;           /* one finite value came back */
        double value;      /* with ok */
        const char *why;   /* without ok: why it is inconclusive, may be NULL */
} metric_reading;

typedef struct rule_input {
        const change_order *co;
        int64_t now_ms;            /* wall clock, the API timestamps' base */
        int64_t steady_ms;         /* now_steady_ms(): the clock of `for`
                                    * (match_since_ms and fire_at_ms are on
                                    * it); 0 = now_ms */
        int64_t last_change_ms;    /* when the watcher last saw the snapshot
                                    * change (progress hash); 0 = unknown */
        const firing_alert *alerts; /* firing alerts routed to this app */
        size_t n_alerts;
        const metric_reading *metrics; /* latest reading per metric rule */
        size_t n_metrics;
        /* The re-read before acting: the metric condition is re-asked by the
         * action's recheck hook, so here it is taken as holding. */
        bool metrics_rechecked_later;
} rule_input;

/* Does every condition of the rule hold right now? When it does not, *why
 * (if not NULL) names the first condition that failed; when it does, *why
 * summarises what matched ("status executing, sub_status error"). */
bool rule_matches(const rule *r, const rule_input *in, char *why, size_t whysz);

/* The reading in `in` for rule r (by name), NULL when there is none. */
const metric_reading *rule_metric_reading(const rule *r, const rule_input *in);

/* Does v satisfy the rule's metric condition? false for NaN and +-Inf. */
bool rule_metric_holds(const rule *r, double v);

typedef enum verdict_kind {
        VERDICT_NO_MATCH,
        VERDICT_HOLDING, /* matches, but `for` has not elapsed */
        VERDICT_FIRE,
} verdict_kind;

typedef struct rule_verdict {
        verdict_kind kind;
        int64_t fire_at_ms; /* HOLDING/FIRE: match_since + for */
        char why[192];
} rule_verdict;

/* match_since_ms: when the watcher first saw this rule match this change
 * order (0 = it did not match before; the match starts now). */
rule_verdict rule_evaluate(const rule *r, const rule_input *in, int64_t match_since_ms);

/* Safety that no rule can override (SPEC 6): rollback orders are never acted
 * on; rollback/abort need SupportRollback true; a final order is left alone.
 * Returns true when the action may run; else *why says why not. */
bool action_allowed(rule_action a, const change_order *co, char *why, size_t whysz);

/* Alertmanager-style equality matchers: every matcher label must be present
 * with the same value in one firing alert whose ends_at has not passed. */
bool alert_matchers_firing(const label_pair *m, size_t n_m, const firing_alert *alerts,
                           size_t n_alerts, int64_t now_ms);
