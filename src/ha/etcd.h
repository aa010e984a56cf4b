/* SPDX-License-Identifier: MIT */
/* An asynchronous etcd v3 client over the HTTP/JSON gateway, on the
 * curl-multi client (one sd-event loop, no blocking call). Endpoints are
 * tried in turn when one does not answer; with a user, a token from
 * /v3/auth/authenticate rides on every request and is renewed when etcd
 * says it is no longer valid. Messages are etcd_proto's. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "etcd_proto.h"
#include "http.h"

typedef struct etcd_client etcd_client;
typedef struct etcd_call etcd_call;

typedef struct etcd_options {
        const char *const *endpoints; /* "http://10.0.0.5:2379", no trailing path */
        size_t n_endpoints;
        const char *user;             /* NULL: no authentication */
        const char *password;         /* copied, wiped on free */
        const char *ca_file;          /* TLS, PEM files; NULL = curl's defaults */
        const char *cert_file;
        const char *key_file;
        uint64_t timeout_usec;        /* per attempt on one endpoint; 0 = 2s */
} etcd_options;

/* Copies everything in opt. 0, -EINVAL (no endpoint) or -ENOMEM. */
int etcd_client_new(http_client *http, const etcd_options *opt, etcd_client **ret);
/* Cancels every call in flight (no callbacks). Before http_client_free. */
etcd_client *etcd_client_free(etcd_client *c);

/* Called once per call, from the event loop, unless cancelled. r and all it
 * points to are valid only during the call. A transport failure on every
 * endpoint is r->error == -EIO; for a write, r->maybe_delivered then says
 * whether it may still have been applied (it is not re-sent elsewhere). */
typedef void (*etcd_done_fn)(const etcd_result *r, void *userdata);

/* Sends req (copied: it need not outlive the call). *ret_call (optional)
 * stays valid until the callback runs. 0 or negative errno. */
int etcd_submit(etcd_client *c, const etcd_request *req, etcd_done_fn done, void *userdata,
                etcd_call **ret_call);
void etcd_call_cancel(etcd_call *call);

/* The endpoint that answered last (or the first one): for logs and /status. */
const char *etcd_current_endpoint(const etcd_client *c);
