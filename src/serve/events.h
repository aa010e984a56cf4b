/* SPDX-License-Identifier: MIT */
/* Cloud events as hints (POST /api/v1/events): CloudEvents from Alibaba
 * Cloud EventBridge (SAE change-order events, EDAS change orders,
 * ActionTrail API calls). An event that names a configured app's id makes
 * the watcher poll that app now; it never decides anything by itself, the
 * decision always comes from a fresh read. Redeliveries (same source and id)
 * poll nothing; events naming no configured app are counted and dropped.
 * Counts deliveries and events in the metrics registry. */
#pragma once

#include "config.h"
#include "listener.h"
#include "metrics.h"
#include "watcher.h"

typedef struct events events;

/* w may be NULL (nothing to poll); m may be NULL (nothing counted). */
int events_new(watcher *w, const config *cfg, metrics_registry *m, events **ret);
events *events_free(events *e);

/* Routes POST /api/v1/events (token required, the listener's body limit). */
int events_add_routes(events *e, listener *l);

/* On reload, in two steps so the caller can make the whole reload all or
 * nothing: prepare builds the new app table (fails only with -ENOMEM);
 * commit cannot fail. The recent-event memory and counters are kept. */
typedef struct events_apps events_apps;
int events_reconfigure_prepare(const events *e, const config *cfg, events_apps **ret);
void events_reconfigure_commit(events *e, events_apps *apps);
events_apps *events_apps_free(events_apps *apps);
