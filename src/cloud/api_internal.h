/* SPDX-License-Identifier: MIT */
/* Internal to the api module (api.c: the queues, the budget dispatch and
 * the HTTP round trip; api_metrics.c: the client's metrics and stats;
 * api_request.c: copying a request into a call; api_classify.c: reading
 * the answer). api.h is the interface for everyone else. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "api.h"
#include "budget.h"
#include "http.h"
#include "metrics.h"


struct api_call {
        api_client *client;
        api_priority prio;
        api_call *prev, *next; /* in a priority queue, or in the in-flight list */
        bool waited;           /* counted once in rate_limit_waits */
        bool completing;       /* its callback runs: no longer cancellable */
        unsigned throttled;    /* times it came back throttled and was re-queued */
        uint64_t queued_at;    /* CLOCK_MONOTONIC, for the queue-wait histogram */
        uint64_t sent_at;
        uint64_t not_before;   /* a throttled call waits one pacer step before it goes again */

        char *origin;          /* "scheme://authority", what the URL starts with */
        char *host;            /* authority exactly as in base_url */
        char *path;            /* raw: base_url's path + request path */
        char *method;
        char *action;
        char *version;
        char *query_name[API_MAX_QUERY];
        char *query_value[API_MAX_QUERY];
        size_t n_query;

        api_done_fn done;
        void *userdata;
        void (*destroy)(void *userdata); /* when it ends without done() */
        http_call *http;       /* non-NULL while in flight */
        char strings[];        /* what the char * above point into */
};

typedef struct call_list {
        api_call *head, *tail;
} call_list;

struct api_client {
        sd_event *event;
        http_client *http;
        cred_provider *creds;
        api_client_options opt;
        budget budget;
        bool throttle_said;    /* the warning of this throttled episode went out */

        call_list queue[_API_PRIO_MAX];
        budget_queue waiting;  /* calls per class in queue[] */
        void (*on_sent[_API_PRIO_MAX])(void *userdata);
        void *on_sent_userdata[_API_PRIO_MAX];
        call_list in_flight;
        size_t n_queued;
        size_t n_unwaited;     /* queued calls not yet counted as waiting */
        size_t n_in_flight;

        sd_event_source *dispatch_source;
        sd_event_source *rate_timer;

        uint64_t calls_sent;
        uint64_t rate_limit_waits;
        uint64_t throttled_answers;

        metrics_counter *calls_total;      /* api */
        metrics_histogram *queue_wait;     /* class */
        metrics_callback *computed[5];

        /* > 0 while user callbacks run: api_client_free() then cancels
         * everything and leaves the final free to the outermost frame. */
        unsigned busy;
        bool free_pending;
};

/* ---- api_metrics.c ------------------------------------------------------ */

/* Registers the client's metrics in m; -ENOMEM leaves what was made for
 * api_metrics_free(). */
int api_metrics_register(api_client *c, metrics_registry *m);
void api_metrics_free(api_client *c);

/* ---- api_request.c ------------------------------------------------------ */

/* Everything the call needs later, in one allocation after the struct; the
 * call is freed with free(). -EINVAL for a bad base_url or query. */
int api_call_new(const char *base_url, const api_request *req, api_call **ret);
