/* SPDX-License-Identifier: MIT */
/* What the listener does with one request, without sockets: the route
 * table, 404 and 405 (with Allow), the bearer-token check, reading a POST
 * body up to LISTENER_MAX_BODY (a rejected upload is read and thrown away so
 * the sender sees our answer, not a reset), the handler call and the reply
 * helpers handlers use. listener.c feeds it from libmicrohttpd; the fuzzer
 * (tests/fuzz/fuzz_listener.c) feeds it bytes. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LISTENER_MAX_BODY (1024u * 1024u)
/* A sender that announces more than this gets its 413 or 401 at once,
 * before the body; below it the body is drained first (closing a socket
 * with unread data makes the kernel send RST, and the sender would see
 * "connection reset" instead of our answer). A body of unknown length
 * (chunked) is drained whatever its size: the listener's time budget for a
 * request bounds it. */
#define LISTENER_DRAIN_MAX (4u * LISTENER_MAX_BODY)

typedef struct listener_conn listener_conn;

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

/* Reply helpers. body is malloc'ed and taken (NULL: an empty 500, for an
 * allocation that failed). hname/hvalue: one extra header, or NULL. */
int listener_reply(const listener_request *rq, unsigned status, const char *content_type, char *body, size_t len,
                   const char *hname, const char *hvalue);
/* Prints and deletes o (NULL: an empty 500), with a trailing newline. */
int listener_reply_json(const listener_request *rq, unsigned status, cJSON *o);
/* {"error": msg} */
int listener_reply_error(const listener_request *rq, unsigned status, const char *msg);

/* The routes and the token (not owned: the listener keeps it). */
typedef struct listener_table {
        listener_route *routes;
        size_t n_routes;
        const char *token;
        size_t token_len;
} listener_table;

/* The route is copied (its strings must outlive the table: literals).
 * -EEXIST for a method+path already routed. */
int listener_table_add(listener_table *t, const listener_route *route);
void listener_table_done(listener_table *t);

/* How a reply leaves: takes body as listener_reply does; 0 or -EIO. */
typedef int (*listener_send_fn)(void *ctx, unsigned status, const char *content_type, char *body, size_t len,
                                const char *hname, const char *hvalue);
/* A request header by name (case-insensitive), NULL when absent. */
typedef const char *(*listener_header_fn)(void *ctx, const char *name);

typedef enum listener_step {
        LISTENER_READ_BODY, /* go on: feed the body, then listener_conn_end */
        LISTENER_ANSWERED,  /* a reply was sent */
        LISTENER_CLOSE,     /* close without an answer (out of memory, a handler failed) */
} listener_step;

listener_conn *listener_conn_new(listener_send_fn send, void *send_ctx);
listener_conn *listener_conn_free(listener_conn *lc);
/* Request line and headers are in. t must live until the request ends. */
listener_step listener_conn_begin(listener_conn *lc, const listener_table *t, const char *method, const char *path,
                                  const char *from, listener_header_fn header, void *header_ctx);
/* A piece of the body (after LISTENER_READ_BODY); never answers, since
 * HTTP servers answer once the body is in. */
listener_step listener_conn_body(listener_conn *lc, const char *data, size_t n);
/* The body is complete: the answer. LISTENER_CLOSE when already answered. */
listener_step listener_conn_end(listener_conn *lc);
