/* SPDX-License-Identifier: MIT */
/* The Alertmanager webhook (SPEC 7, POST /api/v1/alerts): keeps the set of
 * firing alerts per app, routes each alert to the apps it concerns, asks the
 * watcher to poll an app whose set changed, and answers the watcher's alert
 * lookups. Counts deliveries and firing alerts in the metrics registry. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "listener.h"
#include "metrics.h"
#include "rules.h"
#include "watcher.h"
#include "webhook.h"

typedef struct alerts alerts;

/* w may be NULL (nothing to poll); m may be NULL (nothing counted). */
int alerts_new(watcher *w, const config *cfg, metrics_registry *m, alerts **ret);
alerts *alerts_free(alerts *a);

/* Routes POST /api/v1/alerts (token required) to this store. */
int alerts_add_routes(alerts *a, listener *l);
/* That route, for a table of one's own (the fuzzer's). */
listener_route alerts_webhook_route(alerts *a);

/* On reload, in two steps so the caller can make the whole reload all or
 * nothing: alerts_reroute computes the new routing (the alerts held,
 * re-routed under cfg) and can only fail with -ENOMEM; commit cannot fail. */
typedef struct alerts_routes alerts_routes;
int alerts_reroute(const alerts *a, const config *cfg, alerts_routes **ret);
void alerts_reroute_commit(alerts *a, alerts_routes *rt);
alerts_routes *alerts_routes_free(alerts_routes *rt);

/* The watcher's alert_lookup_fn (userdata: the alerts): firing alerts routed
 * to `app` whose endsAt has not passed. */
size_t alerts_lookup(void *userdata, const char *app, int64_t now_ms, const firing_alert **ret);
