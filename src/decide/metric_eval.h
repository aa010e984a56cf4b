/* SPDX-License-Identifier: MIT */
/* Metric rules on the loop: asks each rule's PromQL query (src/prom) at the
 * app's looks while a release is in flight, keeps the latest answer per
 * (app, rule) for rules_evaluate (rules.h metric_reading), and re-asks it
 * once more before the rollback call (the actions' recheck hook). Idle apps
 * send no query. At most one query is in flight per (app, rule): the look's
 * and the re-check share one handle.
 *
 * Below the watcher (it calls in here), above actions and prom. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "actions.h"
#include "config.h"
#include "metrics.h"
#include "prom.h"
#include "rules.h"

typedef struct metric_eval metric_eval;

/* The client for cfg's prometheus section (NULL *ret without one): the
 * token from config_prom_token_path() with $CREDENTIALS_DIRECTORY. Reads
 * the token file (blocking: at start and on reload only). */
int metric_eval_client_new(http_client *http, const config *cfg, prom_client **ret, char **ret_error);
typedef struct metric_app metric_app;

/* prom and metrics must outlive it; metrics may be NULL. */
int metric_eval_new(prom_client *prom, metrics_registry *metrics, metric_eval **ret);
/* Free every metric_app first. */
metric_eval *metric_eval_free(metric_eval *me);

/* One per watched app (the app_watch holds it). */
int metric_app_new(metric_eval *me, const char *app, metric_app **ret);
metric_app *metric_app_free(metric_app *ma);

/* A look at the app's release in flight: sends each query rule's query
 * whose previous one has answered. Readings of another order are dropped. */
void metric_app_look(metric_app *ma, const app_config *cfg, const change_order *co);
/* No release in flight (or the app stops): cancels queries, drops readings. */
void metric_app_forget(metric_app *ma);
/* The latest readings, one per query rule that has answered; the pointers
 * stay valid until control returns to the loop. */
size_t metric_app_readings(metric_app *ma, const metric_reading **ret);

/* action_hooks.recheck / gate_cancel (userdata = the metric_eval): a rule
 * with a query asks it once more and resumes go only when the fresh value
 * still holds; other rules go at once. */
int metric_eval_recheck(void *userdata, action_run *run, const char *app, const change_order *co,
                        const rule *r);
void metric_eval_gate_cancel(void *userdata, action_run *run);
