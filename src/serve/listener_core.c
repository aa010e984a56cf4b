/* SPDX-License-Identifier: MIT */
#include "listener_core.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "token.h"
#include "util.h"

enum {
        HTTP_UNAUTHORIZED = 401,
        HTTP_NOT_FOUND = 404,
        HTTP_METHOD_NOT_ALLOWED = 405,
        HTTP_CONTENT_TOO_LARGE = 413,
        HTTP_INTERNAL_SERVER_ERROR = 500,
};

/* What is kept per request between the calls. */
struct listener_conn {
        listener_send_fn send;
        void *send_ctx;
        const listener_route *route;
        unsigned reject; /* HTTP status decided before the body: 401, 413 */
        bool answered;
        bool drain_all;  /* the length is unknown: read whatever comes */
        char *body;
        size_t len;
        size_t cap;
        size_t want;     /* the declared length, when there is one */
        uint64_t seen;   /* every body byte, kept or thrown away */
        char from[64];
        const char *method;
        const char *path;
};

/* ---- replies ---- */

static int send_reply(listener_conn *lc, unsigned status, const char *content_type, char *body, size_t len,
                      const char *hname, const char *hvalue) {
        lc->answered = true;
        return lc->send(lc->send_ctx, status, content_type, body, len, hname, hvalue);
}

/* Prints and frees the object; NULL on OOM. A trailing newline for curl users. */
static char *json_body(cJSON *o, size_t *ret_len) {
        char *s = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!s)
                return NULL;
        size_t n = strlen(s);
        char *t = realloc(s, n + 2);
        if (!t) {
                cJSON_free(s);
                return NULL;
        }
        t[n] = '\n';
        t[n + 1] = '\0';
        *ret_len = n + 1;
        return t;
}

static int send_error(listener_conn *lc, unsigned status, const char *msg, const char *hname, const char *hvalue) {
        cJSON *o = cJSON_CreateObject();
        if (o && !cJSON_AddStringToObject(o, "error", msg)) {
                cJSON_Delete(o);
                o = NULL;
        }
        size_t len = 0;
        char *body = json_body(o, &len);
        return send_reply(lc, status, "application/json", body, len, hname, hvalue);
}

int listener_reply(const listener_request *rq, unsigned status, const char *content_type, char *body, size_t len,
                   const char *hname, const char *hvalue) {
        return send_reply(rq->conn, status, content_type, body, len, hname, hvalue) < 0 ? -EIO : 0;
}

int listener_reply_json(const listener_request *rq, unsigned status, cJSON *o) {
        size_t len = 0;
        char *body = json_body(o, &len);
        return listener_reply(rq, status, "application/json", body, len, NULL, NULL);
}

int listener_reply_error(const listener_request *rq, unsigned status, const char *msg) {
        return send_error(rq->conn, status, msg, NULL, NULL) < 0 ? -EIO : 0;
}

/* ---- the table ---- */

static bool body_method(const char *m) {
        return !streq(m, "GET") && !streq(m, "HEAD");
}

static bool route_accepts(const listener_route *rt, const char *method) {
        return streq(rt->method, method) || (streq(rt->method, "GET") && streq(method, "HEAD"));
}

int listener_table_add(listener_table *t, const listener_route *route) {
        if (!route->method || !route->path || !route->handler)
                return -EINVAL;
        for (size_t i = 0; i < t->n_routes; i++)
                if (streq(t->routes[i].path, route->path) && streq(t->routes[i].method, route->method))
                        return -EEXIST;
        listener_route *n = reallocarray(t->routes, t->n_routes + 1, sizeof(listener_route));
        if (!n)
                return -ENOMEM;
        t->routes = n;
        t->routes[t->n_routes++] = *route;
        return 0;
}

void listener_table_done(listener_table *t) {
        free(t->routes);
        t->routes = NULL;
        t->n_routes = 0;
}

/* ---- one request ---- */

listener_conn *listener_conn_new(listener_send_fn send, void *send_ctx) {
        listener_conn *lc = calloc(1, sizeof(listener_conn));
        if (!lc)
                return NULL;
        lc->send = send;
        lc->send_ctx = send_ctx;
        return lc;
}

listener_conn *listener_conn_free(listener_conn *lc) {
        if (lc) {
                free(lc->body);
                free(lc);
        }
        return NULL;
}

static listener_step answered(int r) {
        return r < 0 ? LISTENER_CLOSE : LISTENER_ANSWERED;
}

/* 404 when no route has the path; 405 listing the methods that do. */
static listener_step reply_no_route(listener_conn *lc, const listener_table *t, const char *path) {
        char allow[128] = "";
        size_t o = 0;
        for (size_t i = 0; i < t->n_routes; i++) {
                if (!streq(t->routes[i].path, path))
                        continue;
                const char *m = t->routes[i].method;
                int w = snprintf(allow + o, sizeof allow - o, "%s%s%s", o ? ", " : "", m,
                                 streq(m, "GET") ? ", HEAD" : "");
                if (w < 0 || (size_t)w >= sizeof allow - o)
                        break;
                o += (size_t)w;
        }
        if (o == 0)
                return answered(send_error(lc, HTTP_NOT_FOUND, "not found", NULL, NULL));
        return answered(send_error(lc, HTTP_METHOD_NOT_ALLOWED, "method not allowed", "Allow", allow));
}

static listener_step reply_rejected(listener_conn *lc) {
        const listener_route *rt = lc->route;
        if (rt->rejected)
                rt->rejected(rt->userdata, lc->reject, lc->from);
        if (lc->reject == HTTP_UNAUTHORIZED)
                return answered(send_error(lc, lc->reject, "missing or invalid bearer token", "WWW-Authenticate",
                                           "Bearer"));
        return answered(send_error(lc, HTTP_CONTENT_TOO_LARGE, "body larger than 1 MiB", NULL, NULL));
}

static listener_step call_handler(listener_conn *lc) {
        listener_request rq = {
                .method = lc->method,
                .path = lc->path,
                .body = lc->body,
                .len = lc->len,
                .from = lc->from,
                .conn = lc,
        };
        if (lc->body)
                lc->body[lc->len] = '\0';
        int r = lc->route->handler(lc->route->userdata, &rq);
        if (r >= 0 && !lc->answered) /* a handler that forgot to answer: the sender still gets one */
                r = send_error(lc, HTTP_INTERNAL_SERVER_ERROR, "no reply", NULL, NULL);
        return r < 0 ? LISTENER_CLOSE : LISTENER_ANSWERED;
}

listener_step listener_conn_begin(listener_conn *lc, const listener_table *t, const char *method, const char *path,
                                  const char *from, listener_header_fn header, void *header_ctx) {
        lc->method = method;
        lc->path = path;
        snprintf(lc->from, sizeof lc->from, "%s", from ? from : "an unknown address");
        for (size_t i = 0; i < t->n_routes && !lc->route; i++)
                if (streq(t->routes[i].path, path) && route_accepts(&t->routes[i], method))
                        lc->route = &t->routes[i];
        if (!lc->route)
                return reply_no_route(lc, t, path);

        bool has_body = body_method(lc->route->method);
        uint64_t declared = 0;
        bool have_declared = false;
        const char *cl = header(header_ctx, "Content-Length");
        if (cl) {
                char *end = NULL;
                errno = 0;
                unsigned long long v = strtoull(cl, &end, 10);
                /* MHD answers a malformed Content-Length itself; an unreadable
                 * one here counts as "too much to drain". */
                have_declared = errno == 0 && end != cl && *end == '\0' && *cl != '-';
                declared = have_declared ? (uint64_t)v : UINT64_MAX;
        }
        lc->drain_all = !cl;

        if (lc->route->needs_token && !token_check(t->token, t->token_len, header(header_ctx, "Authorization")))
                lc->reject = HTTP_UNAUTHORIZED;
        else if (has_body && declared > LISTENER_MAX_BODY)
                lc->reject = HTTP_CONTENT_TOO_LARGE;

        if (!has_body) /* answered now: whatever body a GET carries is not read */
                return lc->reject ? reply_rejected(lc) : call_handler(lc);

        if (lc->reject) {
                /* A sender waiting for 100 Continue has sent no body yet, and
                 * one announcing more than we would drain gets the answer now. */
                const char *expect = header(header_ctx, "Expect");
                if ((expect && strcasecmp(expect, "100-continue") == 0) || declared > LISTENER_DRAIN_MAX)
                        return reply_rejected(lc);
                return LISTENER_READ_BODY;
        }
        /* Room grows with what arrives, not with what is announced: a
         * declared megabyte that never comes costs nothing. */
        lc->want = have_declared ? (size_t)declared : 0;
        return LISTENER_READ_BODY;
}

listener_step listener_conn_body(listener_conn *lc, const char *data, size_t n) {
        if (!lc->route || lc->answered)
                return LISTENER_CLOSE;
        lc->seen += n;
        if (!lc->drain_all && lc->seen > LISTENER_DRAIN_MAX)
                return LISTENER_CLOSE; /* more than announced and more than enough */
        if (lc->reject)
                return LISTENER_READ_BODY;
        if (lc->len + n > LISTENER_MAX_BODY) {
                lc->reject = HTTP_CONTENT_TOO_LARGE;
                lc->body = mfree(lc->body);
                lc->len = lc->cap = 0;
                return LISTENER_READ_BODY;
        }
        if (lc->len + n + 1 > lc->cap) {
                size_t cap = lc->cap ? lc->cap : 16 * 1024;
                while (cap < lc->len + n + 1)
                        cap *= 2;
                if (lc->want > 0 && cap > lc->want + 1 && lc->len + n + 1 <= lc->want + 1)
                        cap = lc->want + 1;
                if (cap > LISTENER_MAX_BODY + 1)
                        cap = LISTENER_MAX_BODY + 1;
                char *nb = realloc(lc->body, cap);
                if (!nb)
                        return LISTENER_CLOSE;
                lc->body = nb;
                lc->cap = cap;
        }
        memcpy(lc->body + lc->len, data, n);
        lc->len += n;
        return LISTENER_READ_BODY;
}

listener_step listener_conn_end(listener_conn *lc) {
        if (!lc->route || lc->answered)
                return LISTENER_CLOSE; /* answered in begin: nothing more to say */
        if (lc->reject)
                return reply_rejected(lc);
        return call_handler(lc);
}
