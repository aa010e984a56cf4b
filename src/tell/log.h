/* SPDX-License-Identifier: MIT */
/* Every decision is one structured record (SPEC 8): journald when we run
 * under it, a readable line on stderr otherwise. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "util.h"

/* One MESSAGE_ID per event kind; systemd/rollguard.catalog explains each. */
typedef enum log_event {
        EV_NONE = 0,       /* plain message, no MESSAGE_ID */
        EV_STARTED,
        EV_STOPPING,
        EV_RELOADED,
        EV_RELOAD_FAILED,
        EV_RELEASE_SEEN,   /* a change order is in flight */
        EV_RELEASE_ENDED,
        EV_RULE_HOLDING,   /* a rule matches; waiting for `for` */
        EV_DECISION,       /* a rule fired: what rollguard decided to do */
        EV_ACTION_SKIPPED, /* safety check said no (dry-run, SupportRollback...) */
        EV_ACTION_DONE,
        EV_ACTION_FAILED,
        EV_ACTION_UNCONFIRMED,
        EV_ORDER_MOVED_ON, /* re-read before acting: nothing to do any more */
        EV_API_ERROR,
        EV_APP_DEGRADED,
        EV_APP_RECOVERED,
        EV_CIRCUIT_OPEN,
        EV_CIRCUIT_CLOSED,
        EV_STATE_CORRUPT,
        EV_STATE_QUARANTINED, /* a state file cannot be read: the app never acts */
        EV_ALERT,
        EV_CREDENTIALS,
        EV_METRIC_QUERY,   /* a metric rule's query became inconclusive, or answers again */
        EV_NOTIFY_FAILED,  /* a notification channel keeps failing */
        EV_CLOUD_EVENT,    /* an EventBridge event named an app (a hint), or a delivery was refused */
        EV_HA_ROLE,        /* HA: this node's role or the leader changed (lost: warning) */
        EV_API_THROTTLED,      /* the account throttles: every call slows down (and back) */
        EV_BUDGET_STRETCHED,   /* releases in flight get a longer interval than active_poll_interval (and back) */
        EV_RELEASE_UNOBSERVED, /* a release in flight not seen for unobserved_after (and seen again) */
        _EV_MAX,
} log_event;

/* "rollguard-release-seen" style short name, and the 128-bit id as 32 hex chars. */
const char *log_event_name(log_event ev);
const char *log_event_message_id(log_event ev);

typedef struct log_fields {
        const char *app;
        const char *change_order;
        const char *rule;
        const char *action;
        const char *result;
        const char *value;     /* metric rules: what the query read, "0.0731" */
        const char *threshold; /* and the rule's threshold, "0.05" */
        /* Optional, journal only (ROLLGUARD_REASON, ROLLGUARD_ROLLBACK_CHANGE_ORDER,
         * ROLLGUARD_CHANNEL): what the rule saw, the order a rollback created,
         * the notification channel concerned. */
        const char *reason;
        const char *rollback_change_order;
        const char *channel;
} log_fields;

typedef enum log_target {
        LOG_TARGET_AUTO,    /* journal when stderr is the journal stream, else stderr */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
} log_target;

void log_setup(log_target t, bool verbose);
bool log_verbose(void);

/* Writes the record; fields may be NULL (then the field is omitted).
 * Returns -abs(errno-like) so callers can `return log_...(...)` if they want. */
int log_event_send(log_event ev, int priority, const log_fields *f, const char *fmt, ...)
        _printf_(4, 5);

#define log_error(...) log_event_send(EV_NONE, LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) log_event_send(EV_NONE, LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_event_send(EV_NONE, LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) log_event_send(EV_NONE, LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) \
        (log_verbose() ? log_event_send(EV_NONE, LOG_DEBUG, NULL, __VA_ARGS__) : 0)

/* Who else wants to know about each record with an event kind (ev !=
 * EV_NONE), after it is written: main hands them to the notifications
 * (src/tell/tell.h), so the decision modules report once, here, and know
 * nothing of chat robots. One observer; NULL removes it. A record written
 * from inside the observer is not observed again. msg and f are valid only
 * during the call. */
typedef void (*log_observer_fn)(void *userdata, log_event ev, int priority, const log_fields *f, const char *msg);
void log_set_observer(log_observer_fn fn, void *userdata);

/* Test hook: when set, every record is also handed here (fields + text). */
typedef void (*log_sink_fn)(log_event ev, int priority, const log_fields *f, const char *msg);
void log_set_test_sink(log_sink_fn fn);
