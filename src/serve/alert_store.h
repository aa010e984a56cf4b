/* SPDX-License-Identifier: MIT */
/* The firing alerts held per app, with their routing matchers, and the
 * memory they may take: at most ALERT_STORE_MAX_PER_APP alerts and
 * ALERT_STORE_APP_BYTES per app, ALERT_STORE_TOTAL_BYTES for all apps.
 * Past a limit the least recently received alerts go (each drop counted in
 * the app's dropped[] by reason). Pure: no I/O, no clock of its own. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rules.h"

#define ALERT_STORE_MAX_PER_APP 1000
#define ALERT_STORE_APP_BYTES (1024u * 1024u)
#define ALERT_STORE_TOTAL_BYTES (16u * 1024u * 1024u)

typedef enum alert_drop {
        ALERT_DROP_APP_COUNT,   /* more than ALERT_STORE_MAX_PER_APP */
        ALERT_DROP_APP_BYTES,   /* the app over ALERT_STORE_APP_BYTES */
        ALERT_DROP_TOTAL_BYTES, /* all apps over ALERT_STORE_TOTAL_BYTES */
        _ALERT_DROP_MAX,
} alert_drop;

const char *alert_drop_name(alert_drop d); /* "app_count", "app_bytes", "total_bytes" */

typedef struct matcher_set {
        label_pair *m;
        size_t n;
} matcher_set;

typedef struct alert_meta {
        char *key;    /* fingerprint or label set: what makes a delivery a repeat */
        size_t bytes; /* what this alert is counted as */
        uint64_t seq; /* when it was last received, in store order */
} alert_meta;

/* One configured app: how alerts are routed to it (copied from the config so
 * a reload that frees the old config leaves nothing dangling) and the firing
 * alerts routed so far, oldest first. alerts[] is contiguous because lookups
 * hand it out as is; meta[i] describes alerts[i]. */
typedef struct app_slot {
        char *name;
        matcher_set *sets;
        size_t n_sets;

        firing_alert *alerts;
        alert_meta *meta;
        size_t n_alerts;
        size_t cap;
        size_t bytes;

        size_t dropped[_ALERT_DROP_MAX]; /* since the caller last cleared it */
        bool warned;                     /* the caller's: it said so */
} app_slot;

typedef struct alert_store {
        app_slot *apps;
        size_t n_apps;
        size_t bytes;
        uint64_t seq;
} alert_store;

/* The apps of cfg, with no alerts. 0 or -ENOMEM. */
int alert_store_from_config(const config *cfg, alert_store *ret);
void alert_store_done(alert_store *s);

app_slot *alert_store_find(alert_store *s, const char *name);

/* SPEC 7: the alert names the app (label app="<name>"), or names no app and
 * satisfies the matchers of one of the app's rules. */
bool alert_concerns(const app_slot *a, const firing_alert *fa);
const char *alert_label(const firing_alert *a, const char *name);
bool alert_expired(const firing_alert *a, int64_t now_ms);

/* Adds or replaces the alert under key; either way it becomes the newest,
 * then the limits are applied. 1 when the app's set changed, 0 when it was
 * a repeat of what we hold, -ENOMEM. */
int alert_store_put(alert_store *s, app_slot *a, const char *key, const firing_alert *src);
bool alert_store_remove(alert_store *s, app_slot *a, const char *key);
void alert_store_drop_expired(alert_store *s, app_slot *a, int64_t now_ms);
/* What one alert is counted as: its text plus bookkeeping. */
size_t alert_store_bytes(const firing_alert *a, const char *key);
