/* SPDX-License-Identifier: MIT */
/* The cloud call layer shared by SAE and EDAS: per-class queues spent by
 * the API budget (budget.h), V3 signing with the current credentials, the
 * HTTP round trip, and classification of the answer (SPEC 4). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "budget.h"
#include "http.h"
#include "metrics.h"
#include "sign.h"

typedef struct api_client api_client;
typedef struct api_call api_call;
typedef struct cred_provider cred_provider;

#define API_MAX_QUERY 6

/* What sae.c / edas.c build: one ROA call. */
typedef struct api_request {
        const char *method;   /* GET/PUT/POST */
        const char *path;     /* /pop/v1/sam/... */
        const char *action;   /* x-acs-action */
        const char *version;  /* x-acs-version */
        query_param query[API_MAX_QUERY];
        size_t n_query;
} api_request;

/* The classes of the budget (budget.h), same order and values. */
typedef enum api_priority {
        API_PRIO_ACTION = 0, /* re-read before acting, the action itself */
        API_PRIO_ACTIVE = 1, /* apps with a release in flight */
        API_PRIO_HINTED = 2, /* an idle app an event or alert named: ahead of the round robin */
        API_PRIO_IDLE = 3,   /* the idle round robin */
        _API_PRIO_MAX,
} api_priority;

typedef enum api_outcome {
        API_OK,          /* 2xx with a JSON object that is not an error */
        API_TRANSIENT,   /* timeout, refused, 5xx, malformed body, System.Upgrading */
        API_THROTTLED,   /* Throttling / Throttling.User, 400 or 429 */
        API_PERMANENT,   /* permission, not found, invalid parameter, other 4xx */
        API_NOT_RUNNING, /* Application.ChangerOrder.Not.Running: the order ended */
} api_outcome;

const char *api_outcome_name(api_outcome o);

typedef struct api_result {
        api_outcome outcome;
        long http_status;        /* 0 when no response */
        char code[96];           /* API error code, "" when none */
        char message[256];       /* API message or transport error, for logs */
        char request_id[96];
        bool maybe_delivered;    /* the server may have acted (see http.h) */
        const cJSON *json;       /* parsed body when it was JSON, else NULL;
                                  * valid only during the callback */
} api_result;

/* Pure: classify an HTTP answer (also used by tests and the fuzzer).
 * Fills *out (json stays NULL; the parsed document is returned in *ret_json
 * when ret_json is not NULL and the body was JSON). */
void api_classify(long http_status, const char *body, size_t body_len, api_result *out,
                  cJSON **ret_json);

typedef void (*api_done_fn)(const api_result *r, void *userdata);

typedef struct api_client_options {
        unsigned rate_limit;        /* calls per window; 0 = unlimited */
        uint64_t rate_window_usec;
        uint64_t timeout_usec;      /* per HTTP request */
        /* where the client registers its metrics (calls by API, queue wait,
         * the budget); NULL: none. Read at api_client_new only. */
        metrics_registry *metrics;
} api_client_options;

int api_client_new(sd_event *e, http_client *h, cred_provider *creds,
                   const api_client_options *opt, api_client **ret);
api_client *api_client_free(api_client *c);
/* Applies new limits on reload without losing queued calls or the window. */
int api_client_reconfigure(api_client *c, const api_client_options *opt);

/* Queues a call to base_url (e.g. "http://127.0.0.1:8080" or
 * "https://sae.cn-hangzhou.aliyuncs.com"). It leaves when the budget
 * (budget_pick) and the credentials allow, FIFO within a class. A
 * Throttling / 429 answer never reaches the callback: it slows the whole
 * client down (budget_on_throttled) and the call goes back to the head of
 * its class. The callback runs exactly once unless the call is cancelled. */
int api_submit(api_client *c, const char *base_url, const api_request *req, api_priority prio,
               api_done_fn done, void *userdata, api_call **ret_call);
void api_call_cancel(api_call *call);
/* Called with the userdata when the call ends without its callback
 * (cancelled, or the client freed), so whoever owns the userdata frees it. */
void api_call_set_destroy(api_call *call, void (*destroy)(void *userdata));

/* For /metrics and `status`. */
typedef struct api_stats {
        uint64_t calls_sent;
        uint64_t rate_limit_waits;  /* times a call had to wait for the budget */
        uint64_t throttled_answers; /* Throttling / 429 answers (their calls were re-queued) */
        size_t queued;
        size_t in_flight;
} api_stats;
void api_client_stats(const api_client *c, api_stats *out);

/* The budget now: its pace (calls/min, 0 = unlimited), whether throttling
 * slowed it, and the plan the watcher schedules by for this demand. */
typedef struct api_budget_view {
        double calls_per_minute;
        bool throttled;
        budget_plan plan;
} api_budget_view;
void api_client_budget(api_client *c, const budget_demand *d, api_budget_view *out);

/* Calls of this class waiting in the queue (not yet sent). */
size_t api_client_waiting(const api_client *c, api_priority prio);
/* fn runs (from the dispatch, never from inside api_submit) each time a
 * queued call of class `prio` leaves the queue, so whoever keeps only a few
 * calls queued (the idle round robin) can queue the next. NULL fn: none. */
void api_client_on_sent(api_client *c, api_priority prio, void (*fn)(void *userdata), void *userdata);
