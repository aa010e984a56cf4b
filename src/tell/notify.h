/* SPDX-License-Identifier: MIT */
/* Delivery of notifications (issue 14) on the one sd-event loop through the
 * curl-multi client. Nothing here blocks or waits on a channel: a call
 * queues and returns; a channel that is down, slow or hanging only delays
 * its own queue. Per channel: dedupe (one message per event kind per change
 * order), the platform's rate limit kept by merging queued events into one
 * message (never dropping them), retries with exponential backoff and
 * jitter for a bounded time, then one log line. Channels are logged by
 * name only; their url and secret are wiped when freed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "http.h"
#include "notify_channel.h"
#include "notify_format.h"

typedef struct notify notify;

/* Counted per channel: messages for SENT/RETRIED/FAILED, events for
 * MERGED (folded into another event's message) and DEDUPED (not sent:
 * that kind for that change order went out already). */
typedef enum notify_result {
        NOTIFY_RESULT_SENT,
        NOTIFY_RESULT_RETRIED, /* an attempt failed and will be repeated */
        NOTIFY_RESULT_FAILED,  /* given up: refused for good, or retries ran out */
        NOTIFY_RESULT_MERGED,
        NOTIFY_RESULT_DEDUPED,
        _NOTIFY_RESULT_MAX,
} notify_result;

const char *notify_result_name(notify_result r); /* "sent", "retried", ... */

/* Told after each delivery attempt's outcome (SENT, RETRIED, FAILED):
 * detail is the platform's answer in words (never a URL or secret). */
typedef void (*notify_result_fn)(const char *channel, notify_result r, long http_status, const char *detail,
                                 size_t n_events, void *userdata);

typedef struct notify_options {
        uint64_t retry_for_usec;       /* give up after this long; 0 = 10 min */
        uint64_t backoff_initial_usec; /* first retry delay; 0 = 1 s (doubles, +-20% jitter) */
        uint64_t backoff_max_usec;     /* 0 = 1 min */
        uint64_t timeout_usec;         /* one request; 0 = 10 s */
        notify_result_fn on_result;    /* optional */
        void *userdata;
} notify_options;

/* Copies the channels (url and secret included) and the options.
 * Returns 0 or -EINVAL (a channel without name or url, an unknown type) /
 * -ENOMEM. opt may be NULL. */
int notify_new(sd_event *e, http_client *http, const notify_channel *channels, size_t n_channels,
               const notify_options *opt, notify **ret);
/* A new set of channels (SIGHUP), matched by name: a channel that stays
 * keeps its queue, the message in flight, its dedupe memory, rate window
 * and counters, and takes the new url, secret, events and apps; a new one
 * starts empty; a removed one is dropped with what it still held (logged).
 * On failure (-EINVAL, -ENOMEM) nothing changed. */
int notify_reconfigure(notify *n, const notify_channel *channels, size_t n_channels);
/* Cancels what is in flight (no callbacks), frees, wipes secrets. */
notify *notify_free(notify *n);

/* Queues ev for every channel that wants it (events mask, apps list) and
 * has not had this kind for this change order yet. Returns the number of
 * channels it was queued on (0 is fine), or -ENOMEM. Never blocks. */
int notify_send(notify *n, const notify_event *ev);

/* Sends one test message now to the channel called name (NULL: every
 * channel), bypassing events, apps, dedupe, rate limit and retries, and
 * calls cb once per channel with its answer. Returns the number of
 * channels tested, -ENOENT when no channel has that name. */
typedef void (*notify_test_fn)(const char *channel, bool ok, long http_status, const char *detail,
                               void *userdata);
int notify_test(notify *n, const char *name, notify_test_fn cb, void *userdata);

/* Events queued or in flight (tests and shutdown use it), and test
 * messages still in flight. */
size_t notify_pending(const notify *n);

/* Calls fn for every channel and result, counters since notify_new. */
typedef void (*notify_stats_fn)(const char *channel, notify_type type, notify_result r, uint64_t count,
                                void *userdata);
void notify_stats_foreach(const notify *n, notify_stats_fn fn, void *userdata);
