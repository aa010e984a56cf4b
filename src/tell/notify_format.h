/* SPDX-License-Identifier: MIT */
/* What a notification says and how each platform wants it (issue 14).
 * Pure: no sockets, no clocks (times come in), no logging. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "notify_channel.h"

/* One thing that happened. Every string may be NULL (shown as "n/a", or
 * null in the webhook document). The engine copies it; callers keep theirs. */
typedef struct notify_event {
        notify_kind kind;
        const char *app;
        const char *platform;              /* "sae" | "edas" */
        const char *region;                /* "cn-hangzhou" */
        const char *app_id;
        const char *change_order;          /* the release being watched */
        const char *rule;
        const char *action;                /* "rollback", "abort", ... */
        const char *result;                /* "accepted", "refused: ...", ... */
        const char *reason;                /* why, in words: what the rule saw */
        const char *rollback_change_order; /* the order the rollback created */
        int64_t time_ms;                   /* when it happened, ms since the epoch */
        bool has_value;                    /* metric rules: what was seen vs the limit */
        double value;
        double threshold;
} notify_event;

/* The app's page in the cloud console:
 *   SAE:  https://sae.console.aliyun.com/#/AppList/AppDetail?appId=ID&regionId=REGION
 *   EDAS: https://edas.console.aliyun.com/#/app?appId=ID&regionNo=REGION
 * Ids are percent-encoded. NULL when app_id or region is unknown (or OOM). */
char *notify_console_url(const notify_event *ev);

/* The one line saying what happened and why, e.g. "rollguard rolled back
 * shop-api: error rate 7.2% over 5% (value 7.2, threshold 5)". malloc'ed. */
char *notify_summary(const notify_event *ev);

/* "2026-12-01T21:00:00Z" (RFC 3339, UTC) into out[21]. */
void notify_format_time(int64_t time_ms, char out[21]);

/* Merged messages list at most this many events in full (WeCom: 2); the
 * rest are counted ("and 7 more, see the journal") so a body stays under
 * every platform's size limit (WeCom markdown: 4096 bytes). */
#define NOTIFY_MERGE_DETAIL_MAX 5
#define NOTIFY_MERGE_DETAIL_MAX_WECOM 2

/* The JSON body for platform t carrying evs[0..n) (n > 1 = a merged
 * message; webhook takes exactly one). For Feishu with a secret the body
 * carries "timestamp" (seconds) and "sign" computed from now_ms.
 * Returns 0 and a malloc'ed *ret, or -EINVAL/-ENOMEM. */
int notify_format_body(notify_type t, const notify_event *const *evs, size_t n, const char *secret,
                       int64_t now_ms, char **ret);

/* The URL to POST to. DingTalk with a secret gets "&timestamp=MS&sign=SIG"
 * appended (or "?..." when the URL has no query); everything else is the
 * URL unchanged. malloc'ed; the caller frees it with free_secret(). */
int notify_format_url(notify_type t, const char *url, const char *secret, int64_t now_ms, char **ret);

/* DingTalk: URL-encoded Base64(HMAC-SHA256(key=secret, timestamp_ms "\n" secret)). */
#define NOTIFY_SIGN_MAX 80
int notify_sign_dingtalk(const char *secret, int64_t timestamp_ms, char out[NOTIFY_SIGN_MAX]);
/* Feishu: Base64(HMAC-SHA256(key=timestamp_s "\n" secret, empty message)). */
int notify_sign_feishu(const char *secret, int64_t timestamp_s, char out[NOTIFY_SIGN_MAX]);
