/* SPDX-License-Identifier: MIT */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"
#include "token.h"
#include "util.h"

/* A rejected upload (bad token, too large) is still read and thrown away up
 * to this size before the reply goes out: closing a socket with unread data
 * makes the kernel send RST, and the sender would then see "connection
 * reset" instead of our 401/413. Past this, or when the sender announces
 * more, we answer at once and close. */
#define LISTENER_DRAIN_MAX (4u * LISTENER_MAX_BODY)
#define LISTENER_CONNECTION_TIMEOUT_SEC 10u
#define LISTENER_CONNECTION_LIMIT 64u
/* Per connection: request line, headers and the read buffer that hands us
 * body chunks; the body itself is accumulated in our own buffer. */
#define LISTENER_CONNECTION_MEMORY (64u * 1024u)

/* One bound socket with its MHD daemon and loop sources; a reload that moves
 * the address holds two for a moment. */
typedef struct binding {
        struct MHD_Daemon *mhd;
        sd_event_source *io;
        sd_event_source *timer;
        char *listen; /* as configured, to notice a change on reload */
        int port;
} binding;

struct listener {
        sd_event *event;
        binding *binding;

        char *token; /* secret: wiped on free, never logged */
        size_t token_len;

        listener_route *routes;
        size_t n_routes;

        /* While MHD starts, its log lines are kept to explain a failure. */
        bool capture_log;
        char start_log[256];
};

struct listener_pending {
        char *token;
        size_t token_len;
        binding *binding; /* NULL: the address did not change */
};

/* What MHD keeps per request between its calls. */
typedef struct listener_conn {
        struct MHD_Connection *c;
        const listener_route *route;
        unsigned reject;     /* HTTP status decided before the body: 401, 413 */
        char *body;
        size_t len;
        size_t cap;
        uint64_t seen;       /* every body byte, kept or thrown away */
        char from[INET6_ADDRSTRLEN + 1];
} listener_conn;

/* ---- replies ---- */

static enum MHD_Result reply_conn(struct MHD_Connection *c, unsigned status, const char *content_type, char *body,
                                  size_t len, const char *hname, const char *hvalue) {
        struct MHD_Response *resp;
        if (body)
                resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        else {
                /* We could not build the body (OOM): an honest empty 500. */
                status = MHD_HTTP_INTERNAL_SERVER_ERROR;
                resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        }
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        if (content_type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        if (hname)
                MHD_add_response_header(resp, hname, hvalue);
        enum MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
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

static enum MHD_Result error_conn(struct MHD_Connection *c, unsigned status, const char *msg, const char *hname,
                                  const char *hvalue) {
        cJSON *o = cJSON_CreateObject();
        if (o && !cJSON_AddStringToObject(o, "error", msg)) {
                cJSON_Delete(o);
                o = NULL;
        }
        size_t len = 0;
        char *body = json_body(o, &len);
        return reply_conn(c, status, "application/json", body, len, hname, hvalue);
}

int listener_reply(const listener_request *rq, unsigned status, const char *content_type, char *body, size_t len,
                   const char *hname, const char *hvalue) {
        return reply_conn(rq->conn->c, status, content_type, body, len, hname, hvalue) == MHD_YES ? 0 : -EIO;
}

int listener_reply_json(const listener_request *rq, unsigned status, cJSON *o) {
        size_t len = 0;
        char *body = json_body(o, &len);
        return listener_reply(rq, status, "application/json", body, len, NULL, NULL);
}

int listener_reply_error(const listener_request *rq, unsigned status, const char *msg) {
        return error_conn(rq->conn->c, status, msg, NULL, NULL) == MHD_YES ? 0 : -EIO;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t bufsz) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        snprintf(buf, bufsz, "an unknown address");
        if (!ci || !ci->client_addr)
                return;
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)bufsz);
        else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                          (socklen_t)bufsz);
}

static enum MHD_Result reply_rejected(listener_conn *lc) {
        const listener_route *rt = lc->route;
        if (rt->rejected)
                rt->rejected(rt->userdata, lc->reject, lc->from);
        if (lc->reject == MHD_HTTP_UNAUTHORIZED)
                return error_conn(lc->c, lc->reject, "missing or invalid bearer token", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                  "Bearer");
        return error_conn(lc->c, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than 1 MiB", NULL, NULL);
}

static enum MHD_Result call_handler(listener_conn *lc, const char *method, const char *path) {
        listener_request rq = {
                .method = method,
                .path = path,
                .body = lc->body,
                .len = lc->len,
                .from = lc->from,
                .conn = lc,
        };
        if (lc->body)
                lc->body[lc->len] = '\0';
        return lc->route->handler(lc->route->userdata, &rq) < 0 ? MHD_NO : MHD_YES;
}

/* ---- routing ---- */

static bool body_method(const char *m) {
        return !streq(m, MHD_HTTP_METHOD_GET) && !streq(m, MHD_HTTP_METHOD_HEAD);
}

static bool route_accepts(const listener_route *rt, const char *method) {
        return streq(rt->method, method) || (streq(rt->method, MHD_HTTP_METHOD_GET) && streq(method, MHD_HTTP_METHOD_HEAD));
}

int listener_add_route(listener *l, const listener_route *route) {
        if (!route->method || !route->path || !route->handler)
                return -EINVAL;
        for (size_t i = 0; i < l->n_routes; i++)
                if (streq(l->routes[i].path, route->path) && streq(l->routes[i].method, route->method))
                        return -EEXIST;
        listener_route *n = reallocarray(l->routes, l->n_routes + 1, sizeof(listener_route));
        if (!n)
                return -ENOMEM;
        l->routes = n;
        l->routes[l->n_routes++] = *route;
        return 0;
}

/* 404 when no route has the path; 405 listing the methods that do. */
static enum MHD_Result reply_no_route(listener *l, struct MHD_Connection *c, const char *path) {
        char allow[128] = "";
        size_t o = 0;
        for (size_t i = 0; i < l->n_routes; i++) {
                if (!streq(l->routes[i].path, path))
                        continue;
                const char *m = l->routes[i].method;
                int w = snprintf(allow + o, sizeof allow - o, "%s%s%s", o ? ", " : "", m,
                                 streq(m, MHD_HTTP_METHOD_GET) ? ", HEAD" : "");
                if (w < 0 || (size_t)w >= sizeof allow - o)
                        break;
                o += (size_t)w;
        }
        if (o == 0)
                return error_conn(c, MHD_HTTP_NOT_FOUND, "not found", NULL, NULL);
        return error_conn(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", MHD_HTTP_HEADER_ALLOW, allow);
}

static enum MHD_Result first_call(listener *l, struct MHD_Connection *c, const char *path, const char *method,
                                  listener_conn *lc) {
        for (size_t i = 0; i < l->n_routes && !lc->route; i++)
                if (streq(l->routes[i].path, path) && route_accepts(&l->routes[i], method))
                        lc->route = &l->routes[i];
        if (!lc->route)
                return reply_no_route(l, c, path);
        client_address(c, lc->from, sizeof lc->from);

        bool has_body = body_method(lc->route->method);
        uint64_t declared = 0;
        bool have_declared = false;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
                char *end = NULL;
                errno = 0;
                unsigned long long v = strtoull(cl, &end, 10);
                /* MHD answers a malformed Content-Length itself; an unreadable
                 * one here counts as "too much to drain". */
                have_declared = errno == 0 && end != cl && *end == '\0';
                declared = have_declared ? (uint64_t)v : UINT64_MAX;
        }

        if (lc->route->needs_token &&
            !token_check(l->token, l->token_len, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)))
                lc->reject = MHD_HTTP_UNAUTHORIZED;
        else if (has_body && have_declared && declared > LISTENER_MAX_BODY)
                lc->reject = MHD_HTTP_CONTENT_TOO_LARGE;

        if (!has_body) /* answered now: whatever body a GET carries is not read */
                return lc->reject ? reply_rejected(lc) : call_handler(lc, method, path);

        if (lc->reject) {
                /* A sender waiting for 100 Continue has sent no body yet, and
                 * one announcing more than we would drain gets the answer now. */
                const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
                if ((expect && strcasecmp(expect, "100-continue") == 0) || declared > LISTENER_DRAIN_MAX)
                        return reply_rejected(lc);
                return MHD_YES;
        }

        if (have_declared && declared > 0) {
                lc->body = malloc((size_t)declared + 1);
                if (!lc->body)
                        return error_conn(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, NULL);
                lc->cap = (size_t)declared + 1;
        }
        return MHD_YES;
}

static enum MHD_Result body_chunk(listener_conn *lc, const char *data, size_t n) {
        lc->seen += n;
        if (lc->seen > LISTENER_DRAIN_MAX)
                return MHD_NO; /* close: we have read more than enough */
        if (lc->reject)
                return MHD_YES;
        if (lc->len + n > LISTENER_MAX_BODY) {
                lc->reject = MHD_HTTP_CONTENT_TOO_LARGE;
                lc->body = mfree(lc->body);
                lc->len = lc->cap = 0;
                return MHD_YES;
        }
        if (lc->len + n + 1 > lc->cap) {
                size_t cap = lc->cap ? lc->cap : 16 * 1024;
                while (cap < lc->len + n + 1)
                        cap *= 2;
                if (cap > LISTENER_MAX_BODY + 1)
                        cap = LISTENER_MAX_BODY + 1;
                char *nb = realloc(lc->body, cap);
                if (!nb)
                        return MHD_NO;
                lc->body = nb;
                lc->cap = cap;
        }
        memcpy(lc->body + lc->len, data, n);
        lc->len += n;
        return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  _unused_ const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
        listener *l = cls;
        listener_conn *lc = *req_cls;

        if (!lc) {
                lc = calloc(1, sizeof(listener_conn));
                if (!lc)
                        return MHD_NO;
                lc->c = c;
                *req_cls = lc;
                return first_call(l, c, url ? url : "", method ? method : "", lc);
        }

        if (*upload_data_size > 0) {
                enum MHD_Result r = body_chunk(lc, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return r;
        }

        if (!lc->route || !body_method(lc->route->method))
                return MHD_NO; /* we answered in the first call; MHD will not ask again */
        if (lc->reject)
                return reply_rejected(lc);
        return call_handler(lc, method, url ? url : "");
}

static void on_request_completed(_unused_ void *cls, _unused_ struct MHD_Connection *c, void **req_cls,
                                 _unused_ enum MHD_RequestTerminationCode toe) {
        listener_conn *lc = *req_cls;
        if (!lc)
                return;
        free(lc->body);
        free(lc);
        *req_cls = NULL;
}

_printf_(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        listener *l = cls;
        char line[256];
        vsnprintf(line, sizeof line, fmt, ap);
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '.'))
                line[--n] = '\0';
        if (l->capture_log) {
                /* keep the first complaint: it is the cause, the rest follow from it */
                if (!l->start_log[0])
                        snprintf(l->start_log, sizeof l->start_log, "%s", line);
                return;
        }
        log_debug("libmicrohttpd: %s", line);
}

/* ---- the socket on the sd-event loop ---- */

static void binding_rearm(binding *b) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        if (MHD_get_timeout(b->mhd, &timeout_ms) == MHD_YES) {
                (void)sd_event_source_set_time_relative(b->timer, (uint64_t)timeout_ms * USEC_PER_MSEC);
                (void)sd_event_source_set_enabled(b->timer, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
}

static int on_mhd_io(_unused_ sd_event_source *es, _unused_ int fd, _unused_ uint32_t revents, void *userdata) {
        binding *b = userdata;
        MHD_run(b->mhd);
        binding_rearm(b);
        return 0;
}

static int on_mhd_timer(_unused_ sd_event_source *es, _unused_ uint64_t usec, void *userdata) {
        binding *b = userdata;
        MHD_run(b->mhd);
        binding_rearm(b);
        return 0;
}

static binding *binding_free(binding *b) {
        if (!b)
                return NULL;
        /* sources first: MHD_stop_daemon closes the fd they watch */
        sd_event_source_disable_unref(b->io);
        sd_event_source_disable_unref(b->timer);
        if (b->mhd)
                MHD_stop_daemon(b->mhd);
        free(b->listen);
        free(b);
        return NULL;
}

typedef union listen_addr {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} listen_addr;

/* "127.0.0.1:9095", "[::1]:9095", "localhost:9095"; port 0 = any free port.
 * Numeric only (plus localhost): a listener that controls rollbacks should
 * not depend on DNS answering at start-up. */
static int parse_listen(const char *s, listen_addr *ret, char **ret_error) {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s)
                goto bad;

        char host[INET6_ADDRSTRLEN + 2];
        const char *h = s;
        size_t hl = (size_t)(colon - s);
        bool v6 = false;
        if (*h == '[') {
                if (hl < 3 || h[hl - 1] != ']')
                        goto bad;
                h++;
                hl -= 2;
                v6 = true;
        }
        if (hl == 0 || hl >= sizeof host)
                goto bad;
        memcpy(host, h, hl);
        host[hl] = '\0';

        int64_t port;
        if (parse_int64(colon + 1, 0, 65535, &port) < 0 || colon[1] == '+' || colon[1] == '-')
                goto bad;

        *ret = (listen_addr){ 0 };
        if (v6) {
                ret->in6.sin6_family = AF_INET6;
                ret->in6.sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host, &ret->in6.sin6_addr) != 1)
                        goto bad;
                return 0;
        }
        if (strchr(host, ':')) {
                *ret_error = strdup_printf("alerts.listen \"%s\": write an IPv6 address in brackets, e.g. [::1]:9095", s);
                return -EINVAL;
        }
        ret->in.sin_family = AF_INET;
        ret->in.sin_port = htons((uint16_t)port);
        if (streq(host, "localhost"))
                ret->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &ret->in.sin_addr) != 1)
                goto bad;
        return 0;
bad:
        *ret_error = strdup_printf(
                "alerts.listen \"%s\": expected ADDRESS:PORT with a numeric address, e.g. 127.0.0.1:9095 or [::1]:9095", s);
        return -EINVAL;
}

static int binding_new(listener *l, const char *listen, binding **ret, char **ret_error) {
        listen_addr addr;
        int r = parse_listen(listen, &addr, ret_error);
        if (r < 0)
                return r;
        bool v6 = addr.sa.sa_family == AF_INET6;
        uint16_t want_port = ntohs(v6 ? addr.in6.sin6_port : addr.in.sin_port);

        binding *b = calloc(1, sizeof(binding));
        if (!b)
                return -ENOMEM;
        b->listen = strdup(listen);
        if (!b->listen) {
                free(b);
                return -ENOMEM;
        }

        l->capture_log = true;
        l->start_log[0] = '\0';
        b->mhd = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0), want_port, NULL, NULL, on_request, l,
                /* the logger must come first, or MHD prints early errors itself */
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, l,
                MHD_OPTION_SOCK_ADDR, &addr.sa,
                MHD_OPTION_CONNECTION_TIMEOUT, LISTENER_CONNECTION_TIMEOUT_SEC,
                MHD_OPTION_CONNECTION_LIMIT, LISTENER_CONNECTION_LIMIT,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)LISTENER_CONNECTION_MEMORY,
                MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, l,
                MHD_OPTION_END);
        l->capture_log = false;
        if (!b->mhd) {
                *ret_error = strdup_printf("cannot listen on %s for alerts: %s", listen,
                                           l->start_log[0] ? l->start_log : "libmicrohttpd failed to start");
                binding_free(b);
                return -EADDRNOTAVAIL;
        }

        const union MHD_DaemonInfo *epoll_info = MHD_get_daemon_info(b->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        const union MHD_DaemonInfo *port_info = MHD_get_daemon_info(b->mhd, MHD_DAEMON_INFO_BIND_PORT);
        if (!epoll_info || epoll_info->epoll_fd < 0 || !port_info) {
                *ret_error = strdup_printf("cannot listen on %s for alerts: libmicrohttpd has no epoll descriptor",
                                           listen);
                binding_free(b);
                return -EIO;
        }
        b->port = port_info->port;

        r = sd_event_add_io(l->event, &b->io, epoll_info->epoll_fd, EPOLLIN, on_mhd_io, b);
        if (r >= 0)
                r = sd_event_add_time_relative(l->event, &b->timer, CLOCK_MONOTONIC, 0, 0, on_mhd_timer, b);
        if (r < 0) {
                *ret_error = strdup_printf("cannot watch the alert listener on the event loop: %s", strerror(-r));
                binding_free(b);
                return r;
        }
        (void)sd_event_source_set_description(b->io, "alerts-http");
        (void)sd_event_source_set_description(b->timer, "alerts-http-timer");
        binding_rearm(b);

        char host[INET6_ADDRSTRLEN];
        inet_ntop(addr.sa.sa_family, v6 ? (const void *)&addr.in6.sin6_addr : (const void *)&addr.in.sin_addr,
                  host, sizeof host);
        log_notice(v6 ? "listening on [%s]:%d for alerts, /metrics and /status"
                      : "listening on %s:%d for alerts, /metrics and /status",
                   host, b->port);
        *ret = b;
        return 0;
}

/* ---- the listener ---- */

static void set_error(char **ret_error, char *msg) {
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
}

int listener_new(sd_event *e, const config *cfg, listener **ret, char **ret_error) {
        char *err = NULL;
        if (!cfg->alerts_listen) {
                set_error(ret_error, strdup("alerts.listen is not set"));
                return -EINVAL;
        }
        listener *l = calloc(1, sizeof(listener));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(e);
        int r = token_read(cfg, &l->token, &l->token_len, &err);
        if (r >= 0)
                r = binding_new(l, cfg->alerts_listen, &l->binding, &err);
        if (r < 0) {
                if (!err && r == -ENOMEM)
                        err = strdup("out of memory");
                set_error(ret_error, err);
                listener_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

listener *listener_free(listener *l) {
        if (!l)
                return NULL;
        binding_free(l->binding);
        free(l->routes);
        free_secret(l->token);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

listener_pending *listener_pending_free(listener_pending *p) {
        if (!p)
                return NULL;
        binding_free(p->binding);
        free_secret(p->token);
        free(p);
        return NULL;
}

int listener_reconfigure_check(listener *l, const config *cfg, listener_pending **ret, char **ret_error) {
        char *err = NULL;
        if (!cfg->alerts_listen) {
                set_error(ret_error, strdup("alerts.listen was removed: restart rollguard to stop the alert listener"));
                return -EINVAL;
        }
        listener_pending *p = calloc(1, sizeof(listener_pending));
        if (!p)
                return -ENOMEM;
        int r = token_read(cfg, &p->token, &p->token_len, &err);
        /* The new address is bound before the old one is let go: if it
         * cannot bind, the old one keeps serving. */
        if (r >= 0 && !streq(cfg->alerts_listen, l->binding->listen))
                r = binding_new(l, cfg->alerts_listen, &p->binding, &err);
        if (r < 0) {
                set_error(ret_error, err ? err : strdup("out of memory"));
                listener_pending_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

void listener_reconfigure_commit(listener *l, listener_pending *p) {
        free_secret(l->token);
        l->token = TAKE_PTR(p->token);
        l->token_len = p->token_len;
        if (p->binding) {
                binding_free(l->binding);
                l->binding = TAKE_PTR(p->binding);
        }
        listener_pending_free(p);
}

int listener_port(const listener *l) {
        return l && l->binding ? l->binding->port : -1;
}
