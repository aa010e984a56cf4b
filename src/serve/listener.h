/* SPDX-License-Identifier: MIT */
/* The HTTP listener (SPEC 7): libmicrohttpd without threads, driven by the
 * sd-event loop, with a route table. A route is {method, path, handler,
 * needs_token}; the listener does the rest: 404 and 405 (with Allow), the
 * bearer-token check, reading a POST body up to LISTENER_MAX_BODY (a
 * rejected upload is drained so the sender sees our answer, not a reset),
 * and the replies. Knows nothing about alerts, the watcher or metrics. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"

#define LISTENER_MAX_BODY (1024u * 1024u)

typedef struct listener listener;

/* One request as a handler sees it. body is NUL-terminated (NULL when
 * empty); from is the client address for log lines. */
typedef struct listener_request {
        const char *method;
        const char *path;
        const char *body;
        size_t len;
        const char *from;
        struct listener_conn *conn; /* for the reply helpers */
} listener_request;

/* Answers with exactly one listener_reply* call and returns its result
 * (negative: the connection is closed without an answer). */
typedef int (*listener_handler_fn)(void *userdata, const listener_request *rq);

typedef struct listener_route {
        const char *method;  /* "GET" (HEAD is answered too) or "POST" (the body is read first) */
        const char *path;    /* exact match */
        listener_handler_fn handler;
        bool needs_token;    /* "Authorization: Bearer <token>" required */
        /* Optional: told of a request the listener refused before the
         * handler (401 bad token, 413 body too large), to log and count it.
         * The listener sends the reply. */
        void (*rejected)(void *userdata, unsigned status, const char *from);
        void *userdata;
} listener_route;

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

/* Reply helpers. body is malloc'ed and taken (NULL: an empty 500, for an
 * allocation that failed). hname/hvalue: one extra header, or NULL. */
int listener_reply(const listener_request *rq, unsigned status, const char *content_type, char *body, size_t len,
                   const char *hname, const char *hvalue);
/* Prints and deletes o (NULL: an empty 500), with a trailing newline. */
int listener_reply_json(const listener_request *rq, unsigned status, cJSON *o);
/* {"error": msg} */
int listener_reply_error(const listener_request *rq, unsigned status, const char *msg);
