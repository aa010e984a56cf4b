/* SPDX-License-Identifier: MIT */
/* Asks a Prometheus HTTP API (self-hosted, or Alibaba Cloud Managed Service
 * for Prometheus / ARMS) one instant query at a time per rule, on the loop
 * through the shared curl-multi client: GET <url>/api/v1/query?query=..&time=..
 * Each answer becomes a prom_verdict (prom_parse.h) handed to a callback.
 *
 * Authentication (the token is read from token_file, trailing newline
 * stripped; it is sent only in the Authorization header and never appears in
 * a verdict's text, a URL or a log line):
 *   bearer  "Authorization: Bearer <token>"  a self-hosted Prometheus behind
 *           an auth proxy (web.config.file, oauth2-proxy, ...)
 *   token   "Authorization: <token>"         ARMS Prometheus V1 instances:
 *           the token made with "Generate Token" on the instance's Settings
 *           tab, which Grafana sends as the Authorization header's value
 *   basic   token_file holds "ID:SECRET"; "Authorization: Basic base64(..)"
 *           ARMS Prometheus V2 instances: an AccessKey pair whose RAM user
 *           has AliyunPrometheusMetricReadAccess */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "prom_parse.h"
#include "util.h"

typedef enum prom_auth {
        PROM_AUTH_NONE,
        PROM_AUTH_BEARER,
        PROM_AUTH_TOKEN,
        PROM_AUTH_BASIC,
        _PROM_AUTH_MAX,
} prom_auth;

/* "none", "bearer", "token", "basic" <-> enum; from_string: -EINVAL if unknown. */
const char *prom_auth_name(prom_auth a);
int prom_auth_from_string(const char *s, prom_auth *ret);

#define PROM_DEFAULT_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* A token file is a line, not a document. */
#define PROM_TOKEN_FILE_MAX 4096

typedef struct prom_options {
        const char *url;          /* http(s)://host:port[/path], e.g. the ARMS HTTP API address */
        const char *token_file;   /* NULL = no Authorization header */
        prom_auth auth;           /* with token_file: NONE means BEARER */
        uint64_t timeout_usec;    /* whole query; 0 = PROM_DEFAULT_TIMEOUT_USEC */
} prom_options;

typedef struct prom_client prom_client;
typedef struct prom_query prom_query;

/* Checks the URL and reads the token file (blocking, once: call it at start
 * and from prom_client_reload, not per query). Returns 0 or negative errno
 * with *ret_error (malloc'ed) naming the option and file. */
int prom_client_new(http_client *http, const prom_options *opts, prom_client **ret,
                    char **ret_error);
/* Cancels every query in flight (no callbacks). Queries still allocated are
 * detached: prom_query_start() on them returns -ESHUTDOWN, prom_query_free()
 * still works. Free it before the http_client. */
prom_client *prom_client_free(prom_client *c);
/* Re-reads the token file (SIGHUP). On error the old token stays. */
int prom_client_reload(prom_client *c, char **ret_error);

/* GET <base>/api/v1/query?query=<escaped>&time=<secs.millis>. base loses a
 * trailing '/'. NULL on OOM. Public for tests and `check --query` output. */
char *prom_build_url(const char *base, const char *query, int64_t time_ms);

typedef void (*prom_done_fn)(prom_query *q, const prom_verdict *v, void *userdata);

/* One per (app, rule): the handle is what guarantees at most one query in
 * flight for it. */
int prom_query_new(prom_client *c, prom_done_fn done, void *userdata, prom_query **ret);
/* Cancels a running query (its callback will not run). NULL-safe. */
prom_query *prom_query_free(prom_query *q);
/* Sends promql (already expanded, see prom_template.h) for evaluation at
 * time_ms (ms since the epoch; 0 = now). -EBUSY while one is in flight for
 * this handle (counted in prom_stats.busy), -ESHUTDOWN after the client is
 * gone, -E2BIG for an over-long query, else 0: the callback runs exactly once
 * from the loop, never from inside this call. */
int prom_query_start(prom_query *q, const char *promql, int64_t time_ms);
bool prom_query_running(const prom_query *q);
void prom_query_cancel(prom_query *q);

typedef struct prom_stats {
        uint64_t results[_PROM_REASON_MAX]; /* per verdict reason; [PROM_OK] = usable values */
        uint64_t started;                   /* queries sent */
        uint64_t busy;                      /* starts refused: one was still in flight */
        uint64_t in_flight;
} prom_stats;

/* For rollguard_metric_queries_total{result=prom_reason_name(i)}. */
void prom_client_stats(const prom_client *c, prom_stats *ret);
