/* SPDX-License-Identifier: MIT */
/* Internal to the notification engine: notify.c delivers (queue, dedupe,
 * rate window, retries, notify-test), notify_set.c keeps the set of
 * channels (new, reconfigure, free, counters). */
#pragma once

#include "notify.h"

/* Dedupe memory per channel: change orders are few; this covers days. */
#define DEDUPE_KEYS 512
/* A channel down for hours with a storm of events: the oldest beyond this
 * are merged away rather than held forever (counted as merged). */
#define PENDING_MAX 1000

typedef struct chan chan;

/* An event with its own copies of every string. */
typedef struct owned_event {
        notify_event ev;
        char *str[10];
} owned_event;

typedef struct test_call {
        chan *ch;
        notify_test_fn cb;
        void *userdata;
        http_call *call;
        struct test_call *next;
} test_call;

struct chan {
        notify *n;
        notify_channel c;
        unsigned rate_max;
        uint64_t rate_period;
        uint64_t *sent_at; /* ring of the last rate_max attempt times */
        size_t sent_head, sent_n;

        owned_event **pending; /* FIFO of events not yet in a message */
        size_t n_pending, cap_pending;

        owned_event **cur; /* the message being delivered (in flight or waiting to retry) */
        size_t n_cur;
        unsigned attempts;
        uint64_t first_try, backoff;
        http_call *call;
        sd_event_source *timer;

        char *dedupe[DEDUPE_KEYS];
        size_t dedupe_next;

        uint64_t stats[_NOTIFY_RESULT_MAX];
        uint64_t failed_logged_at; /* the last EV_NOTIFY_FAILED record */
        unsigned failed_unlogged;
};

struct notify {
        sd_event *event;
        http_client *http;
        notify_options opt;
        chan **chans; /* each its own allocation: timers and calls point at it */
        size_t n_chans;
        test_call *tests;
};


/* notify.c: start the next message when the channel is idle. */
void notify_chan_kick(chan *ch);
/* notify.c: free what a channel holds (cancels its call, wipes its secrets). */
void notify_chan_done(chan *ch);
