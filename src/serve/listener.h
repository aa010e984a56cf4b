/* SPDX-License-Identifier: MIT */
/* The HTTP listener (SPEC 7): libmicrohttpd without threads, driven by the
 * sd-event loop, with a route table. What happens to one request (routing,
 * token, body limit, replies) is listener_core's; this is the socket side:
 * binding, the loop integration, and the guards that keep the listener
 * answering under bursts, slow senders and oversized headers (a connection
 * limit, a time budget for headers and for a whole request, the oldest
 * connection still sending headers dropped when the limit is reached, and
 * a self-check that notices a listener that stopped accepting). Knows
 * nothing about alerts, the watcher or metrics. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "listener_core.h"

typedef struct listener listener;

/* Starts listening on cfg->alerts_listen ("127.0.0.1:9095", "[::1]:9095",
 * "localhost:9095"; port 0 = any). The bearer token comes from
 * cfg->alerts_token_file, else $CREDENTIALS_DIRECTORY/alert-token; without
 * either the listener refuses to start (an open rollback button is not a
 * default). Returns 0 or negative with *ret_error. */
int listener_new(sd_event *e, const config *cfg, listener **ret, char **ret_error);
listener *listener_free(listener *l);

/* The route table is copied (the strings must outlive the listener:
 * literals). -EEXIST for a method+path already routed. */
int listener_add_route(listener *l, const listener_route *route);

/* What the guards did since start, for /metrics. */
typedef struct listener_stats {
        unsigned connections;       /* open now */
        uint64_t accepted;
        uint64_t header_timeouts;   /* headers not complete within the budget */
        uint64_t request_timeouts;  /* a request not done within its budget */
        uint64_t evicted;           /* dropped at the limit to make room */
        uint64_t stalls;            /* the self-check found it not accepting */
} listener_stats;
void listener_get_stats(const listener *l, listener_stats *ret);

/* On reload, all or nothing: re-reads the token and rebinds when the
 * address changed (the new address is bound before the old is let go).
 * listener_reconfigure_check does the failing part without switching;
 * listener_reconfigure_commit then cannot fail. */
typedef struct listener_pending listener_pending;
int listener_reconfigure_check(listener *l, const config *cfg, listener_pending **ret, char **ret_error);
void listener_reconfigure_commit(listener *l, listener_pending *p);
listener_pending *listener_pending_free(listener_pending *p);

/* The bound port (tests bind port 0); -1 when none. */
int listener_port(const listener *l);
