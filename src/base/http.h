/* SPDX-License-Identifier: MIT */
/* libcurl multi driven by one sd-event loop. No blocking calls; one
 * completion callback per request. Knows nothing about JSON. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct http_client http_client;
typedef struct http_call http_call;

/* Response bodies larger than this fail with CURLE_FILESIZE_EXCEEDED-like
 * error "response too large": a hostile or broken endpoint cannot eat memory. */
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

typedef struct http_request {
        const char *method;               /* GET/PUT/POST */
        const char *url;                  /* full URL incl. query */
        const char *const *headers;       /* "Name: value" */
        size_t n_headers;
        uint64_t timeout_usec;            /* whole transfer; 0 = 10s */
        const char *body;                 /* may be NULL */
        size_t body_len;
        /* A new connection, closed afterwards. libcurl silently re-sends a
         * request whose reused connection turns out dead; for a call that
         * changes something (a rollback) that could mean doing it twice. */
        int fresh_connection;
        /* TLS files (PEM) for servers with a private CA or client certs
         * (etcd); NULL = curl's defaults. */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
} http_request;

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
