/* SPDX-License-Identifier: MIT */
/* GET /status (JSON; `rollguard status` reads it) and GET /metrics
 * (Prometheus text of the whole registry). Also registers the metrics that
 * are computed from the watcher's and the API client's state at scrape time.
 * Reads only: no handler here changes what the daemon decides. */
#pragma once

#include "alerts.h"
#include "listener.h"
#include "metrics.h"
#include "watcher.h"

typedef struct status status;

/* No authentication on either route: the listener binds only the configured
 * address (loopback by default), these carry no secret, and Prometheus
 * scrapers rarely carry bearer tokens for every target. a may be NULL. */
int status_new(listener *l, watcher *w, alerts *a, metrics_registry *m, status **ret);
status *status_free(status *s);
