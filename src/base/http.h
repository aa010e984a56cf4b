/* SPDX-License-Identifier: MIT */
/* libcurl multi driven by one sd-event loop. No blocking calls; one
 * completion callback per request. Knows nothing about JSON. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct http_client http_client;
typedef struct http_call http_call;

/* Default cap on a response body (http_request.max_response): larger ones
 * fail with the error "response too large", so a hostile or broken endpoint
 * cannot eat memory. */
#define HTTP_MAX_RESPONSE (4u * 1024u * 1024u)

typedef struct http_response {
        long status;            /* HTTP status, 0 when no response came */
        const char *body;       /* NUL-terminated, never NULL (may be "") */
        size_t body_len;
        int transport_error;    /* 0, or the CURLcode of a failed transfer */
        const char *error;      /* human text for transport_error, else NULL */
        /* true when curl may have delivered the request before failing
         * (timeout after connect, reset mid-response): the server may have
         * acted on it. false when it certainly never left (refused, DNS). */
        int maybe_delivered;
        uint64_t elapsed_usec;
} http_response;

/* Called once per submitted request, from the event loop, unless cancelled.
 * resp and its body are valid only during the call. */
typedef void (*http_done_fn)(const http_response *resp, void *userdata);

/* Every limit is per request; 0 (the zero-initialised field) means the
 * default, so `(http_request){ .method, .url }` is a complete request. */
typedef struct http_request {
        const char *method;               /* GET/PUT/POST */
        const char *url;                  /* full URL incl. query */
        const char *const *headers;       /* "Name: value"; copied at submit */
        size_t n_headers;
        /* The whole transfer, connect included; 0 = 10s. A long poll (etcd
         * watch) sets its own, e.g. 70s. */
        uint64_t timeout_usec;
        const char *body;                 /* may be NULL; copied at submit */
        size_t body_len;
        /* A new connection, closed afterwards. libcurl silently re-sends a
         * request whose reused connection turns out dead; for a call that
         * changes something (a rollback) that could mean doing it twice.
         * Everything else reuses the client's cached connections. */
        int fresh_connection;
        /* TLS files (PEM) for servers with a private CA or client certs
         * (etcd); NULL = curl's defaults. */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
        /* TCP (and TLS) connect only; 0 = min(timeout, 5s). Capped at the
         * whole timeout. */
        uint64_t connect_timeout_usec;
        /* Largest response body accepted, in bytes; 0 = HTTP_MAX_RESPONSE.
         * Over it the request fails with "response too large". */
        size_t max_response;
        /* Set on every request that carries a secret in its URL, headers or
         * body, or may receive one (an STS token header, the ECS metadata
         * credential calls, a webhook URL with a token). Its own buffers are
         * wiped and not pooled; and because libcurl copies headers and
         * bodies into internal buffers this client cannot reach, the first
         * such request also switches the process into wiping every block
         * libcurl frees from then on (http_global_init()). A process that
         * never sends a secret (static AccessKey: the signature is not
         * one) pays nothing for it. */
        int wipe;
} http_request;

/* libcurl's global set-up with an allocator that wipes freed blocks once a
 * `wipe` request has been submitted (see http_request.wipe). Call it first
 * in main(), before any other libcurl use; http_client_new() calls it when
 * nobody did. Returns 0 or -EIO. */
int http_global_init(void);
void http_global_cleanup(void);
/* True once a wipe request switched libcurl's allocator to wiping. */
int http_wiping_active(void);

int http_client_new(sd_event *e, http_client **ret);
/* Cancels every request in flight (no callbacks) and frees. */
http_client *http_client_free(http_client *c);

/* Starts a request. *ret_call (optional) can be passed to http_call_cancel()
 * until the callback has run. Returns 0 or negative errno. */
int http_submit(http_client *c, const http_request *req, http_done_fn done, void *userdata,
                http_call **ret_call);
/* Stops a request; its callback will not run. */
void http_call_cancel(http_call *call);

size_t http_in_flight(const http_client *c);

/* Starts at once what was submitted since the last loop iteration, instead
 * of on the next one. For a caller that submits a batch from its own event
 * callback (not from an http_done_fn: those are started anyway); callbacks
 * of requests that finish at once may run inside. No-op when called from
 * inside this client. */
void http_client_flush(http_client *c);

typedef struct http_stats {
        uint64_t requests;          /* completed, failed or not */
        uint64_t new_connections;   /* TCP connections opened (CURLINFO_NUM_CONNECTS) */
        uint64_t fresh_requests;    /* of the requests, fresh_connection ones */
} http_stats;
void http_client_stats(const http_client *c, http_stats *out);
