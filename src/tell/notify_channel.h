/* SPDX-License-Identifier: MIT */
/* What a notification channel is (issue 14): the plain description the
 * config module fills in and the delivery engine (notify.h) copies. The
 * url (it carries the robot's token) and secret are secrets: log a channel
 * by its name only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum notify_type {
        NOTIFY_DINGTALK,
        NOTIFY_FEISHU,  /* Feishu and Lark: the same custom-bot API */
        NOTIFY_WECOM,
        NOTIFY_SLACK,
        NOTIFY_WEBHOOK, /* generic JSON document */
        _NOTIFY_TYPE_MAX,
        _NOTIFY_TYPE_INVALID = -1,
} notify_type;

/* The config's `events:` words. */
typedef enum notify_kind {
        NOTIFY_EV_ACTION,        /* the rollback/abort call was accepted */
        NOTIFY_EV_ACTION_FAILED, /* the call was refused or failed for good */
        NOTIFY_EV_UNCONFIRMED,   /* sent, but whether it took effect is unknown */
        NOTIFY_EV_CIRCUIT_OPEN,  /* rollguard stopped acting (too many actions) */
        NOTIFY_EV_UNOBSERVED,    /* a release went by that rollguard could not watch */
        NOTIFY_EV_DEGRADED,      /* rollguard cannot read the cloud for an app */
        NOTIFY_EV_TEST,          /* `rollguard notify-test`; never in `events:` */
        _NOTIFY_EV_MAX,
        _NOTIFY_EV_INVALID = -1,
} notify_kind;

#define NOTIFY_EVENT_BIT(k) (1u << (unsigned)(k))
/* Default when `events:` is absent: everything but the test message. */
#define NOTIFY_EVENTS_ALL (((1u << _NOTIFY_EV_MAX) - 1u) & ~NOTIFY_EVENT_BIT(NOTIFY_EV_TEST))

typedef struct notify_channel {
        char *name;          /* shown in logs, stats and notify-test */
        notify_type type;
        char *url;           /* secret: the token is in it */
        char *secret;        /* signing secret (dingtalk, feishu); NULL = unsigned */
        unsigned events;     /* NOTIFY_EVENT_BIT mask; 0 = NOTIFY_EVENTS_ALL */
        char **apps;         /* only these apps; n_apps == 0 = every app */
        size_t n_apps;
        /* Rate limit override: at most rate_max messages per rate_period_usec.
         * 0 = the platform's documented limit (notify_type_rate_limit). */
        unsigned rate_max;
        uint64_t rate_period_usec;
        /* Give a message up after this long; 0 = notify_options.retry_for_usec. */
        uint64_t retry_for_usec;
} notify_channel;

const char *notify_type_name(notify_type t);        /* "dingtalk", ... */
notify_type notify_type_from_string(const char *s); /* _NOTIFY_TYPE_INVALID if unknown */
const char *notify_kind_name(notify_kind k);        /* "action", "action_failed", ... */
notify_kind notify_kind_from_string(const char *s);

/* The platform's limit: DingTalk and WeCom 20/min per robot, Feishu
 * 100/min, Slack 1/s, webhook none (*ret_max = 0). */
void notify_type_rate_limit(notify_type t, unsigned *ret_max, uint64_t *ret_period_usec);
/* Whether several events may be folded into one message (all but webhook,
 * whose document describes exactly one event). */
bool notify_type_can_merge(notify_type t);

/* Does this channel want this event for this app (events mask, apps list)?
 * The test kind always passes; so does an event about no single app
 * (app NULL: the circuit breaker) whatever the apps list says. */
bool notify_channel_wants(const notify_channel *c, notify_kind k, const char *app);

/* Deep copy (url and secret included). Returns 0 or -ENOMEM. */
int notify_channel_copy(const notify_channel *src, notify_channel *dst);
/* Frees the strings; url and secret are wiped first. Leaves *c zeroed. */
void notify_channel_done(notify_channel *c);
