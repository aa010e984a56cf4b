/* SPDX-License-Identifier: MIT */
#include "notify_channel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const type_names[_NOTIFY_TYPE_MAX] = {
        [NOTIFY_DINGTALK] = "dingtalk", [NOTIFY_FEISHU] = "feishu", [NOTIFY_WECOM] = "wecom",
        [NOTIFY_SLACK] = "slack",       [NOTIFY_WEBHOOK] = "webhook",
};

static const char *const kind_names[_NOTIFY_EV_MAX] = {
        [NOTIFY_EV_ACTION] = "action",           [NOTIFY_EV_ACTION_FAILED] = "action_failed",
        [NOTIFY_EV_UNCONFIRMED] = "unconfirmed", [NOTIFY_EV_CIRCUIT_OPEN] = "circuit_open",
        [NOTIFY_EV_UNOBSERVED] = "unobserved",   [NOTIFY_EV_DEGRADED] = "degraded",
        [NOTIFY_EV_TEST] = "test",
};

const char *notify_type_name(notify_type t) {
        return t >= 0 && t < _NOTIFY_TYPE_MAX ? type_names[t] : NULL;
}

notify_type notify_type_from_string(const char *s) {
        for (int i = 0; s && i < _NOTIFY_TYPE_MAX; i++)
                if (streq(s, type_names[i]))
                        return (notify_type)i;
        /* Lark is Feishu outside China: same API, same signature. */
        if (s && streq(s, "lark"))
                return NOTIFY_FEISHU;
        return _NOTIFY_TYPE_INVALID;
}

const char *notify_kind_name(notify_kind k) {
        return k >= 0 && k < _NOTIFY_EV_MAX ? kind_names[k] : NULL;
}

notify_kind notify_kind_from_string(const char *s) {
        for (int i = 0; s && i < _NOTIFY_EV_MAX; i++)
                if (streq(s, kind_names[i]))
                        return (notify_kind)i;
        return _NOTIFY_EV_INVALID;
}

void notify_type_rate_limit(notify_type t, unsigned *ret_max, uint64_t *ret_period_usec) {
        unsigned max = 0;
        uint64_t period = USEC_PER_MIN;
        switch (t) {
        case NOTIFY_DINGTALK: /* documented: 20 messages per minute per robot */
        case NOTIFY_WECOM:
                max = 20;
                break;
        case NOTIFY_FEISHU: /* documented: 100 per minute, 5 per second */
                max = 100;
                break;
        case NOTIFY_SLACK: /* documented: about one message per second per webhook */
                max = 1;
                period = USEC_PER_SEC;
                break;
        default:
                break;
        }
        *ret_max = max;
        *ret_period_usec = period;
}

bool notify_type_can_merge(notify_type t) {
        return t != NOTIFY_WEBHOOK;
}

bool notify_channel_wants(const notify_channel *c, notify_kind k, const char *app) {
        if (k == NOTIFY_EV_TEST)
                return true;
        unsigned mask = c->events ? c->events : NOTIFY_EVENTS_ALL;
        if (!(mask & NOTIFY_EVENT_BIT(k)))
                return false;
        if (c->n_apps == 0 || !app)
                return true;
        for (size_t i = 0; app && i < c->n_apps; i++)
                if (streq(c->apps[i], app))
                        return true;
        return false;
}

int notify_channel_copy(const notify_channel *src, notify_channel *dst) {
        *dst = (notify_channel){
                .type = src->type,
                .events = src->events,
                .rate_max = src->rate_max,
                .rate_period_usec = src->rate_period_usec,
                .retry_for_usec = src->retry_for_usec,
        };
        dst->name = strdup_null(src->name);
        dst->url = strdup_null(src->url);
        dst->secret = strdup_null(src->secret);
        if ((src->name && !dst->name) || (src->url && !dst->url) || (src->secret && !dst->secret))
                goto oom;
        if (src->n_apps) {
                dst->apps = calloc(src->n_apps, sizeof *dst->apps);
                if (!dst->apps)
                        goto oom;
                for (size_t i = 0; i < src->n_apps; i++) {
                        dst->apps[i] = strdup(src->apps[i]);
                        if (!dst->apps[i])
                                goto oom;
                        dst->n_apps = i + 1;
                }
        }
        return 0;
oom:
        notify_channel_done(dst);
        return -ENOMEM;
}

void notify_channel_done(notify_channel *c) {
        if (!c)
                return;
        free(c->name);
        free_secret(c->url);
        free_secret(c->secret);
        for (size_t i = 0; i < c->n_apps; i++)
                free(c->apps[i]);
        free(c->apps);
        *c = (notify_channel){ 0 };
}
