/* SPDX-License-Identifier: MIT */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "listen_addr.h"
#include "log.h"
#include "token.h"
#include "util.h"

#define LISTENER_CONNECTION_TIMEOUT_SEC 10u
#define LISTENER_CONNECTION_LIMIT 64u
/* Per connection: request line, headers and the read buffer that hands us
 * body chunks; the body itself is accumulated in our own buffer. Headers
 * that do not fit get MHD's 431. */
#define LISTENER_CONNECTION_MEMORY (64u * 1024u)
/* The idle timeout above is reset by every byte, so a sender dribbling one
 * byte every few seconds would hold a slot for ever: headers must be
 * complete this long after the connection (or its previous request) began,
 * and a whole request must be done within the second budget. */
#define LISTENER_HEADER_BUDGET_USEC (5 * USEC_PER_SEC)
#define LISTENER_REQUEST_BUDGET_USEC (30 * USEC_PER_SEC)
/* How often the listener checks itself: a connection waiting in the kernel
 * that we have not run libmicrohttpd for is a listener gone deaf. */
#define LISTENER_SELF_CHECK_USEC (2 * USEC_PER_SEC)
/* sd-event's default accuracy (250 ms) would add a quarter second to every
 * "run again now" libmicrohttpd asks for, e.g. once per buffer of a body. */
#define LISTENER_TIMER_ACCURACY_USEC USEC_PER_MSEC
/* Repeated warnings about the same condition: at most one per this. */
#define LISTENER_WARN_INTERVAL_USEC (60 * USEC_PER_SEC)

typedef struct binding binding;

/* One open connection, in the order its current phase began (oldest
 * first): waiting for headers, or in a request. */
typedef struct guarded {
        struct guarded *prev, *next;
        int fd;
        bool in_request;
        bool shut;       /* we shut it down; libmicrohttpd closes it next */
        uint64_t since;  /* CLOCK_MONOTONIC, usec */
} guarded;

/* One bound socket with its MHD daemon and loop sources; a reload that moves
 * the address holds two for a moment. */
struct binding {
        listener *owner;
        struct MHD_Daemon *mhd;
        sd_event_source *io;
        sd_event_source *timer;
        sd_event_source *guard;
        char *listen; /* as configured, to notice a change on reload */
        int port;
        int listen_fd;

        guarded *head, *tail;
        unsigned n_open;
        uint64_t last_run; /* CLOCK_MONOTONIC usec of the last MHD_run */
        uint64_t warned_limit, warned_slow, warned_stall;
        uint64_t slow_since_warned;
};

struct listener {
        sd_event *event;
        binding *binding;

        char *token; /* secret: wiped on free, never logged */
        size_t token_len;

        listener_table table; /* its token points at the one above */
        listener_stats stats;

        /* While MHD starts, its log lines are kept to explain a failure. */
        bool capture_log;
        char start_log[256];
};

struct listener_pending {
        char *token;
        size_t token_len;
        binding *binding; /* NULL: the address did not change */
};

/* ---- replies and requests, through listener_core ---- */

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

static int send_mhd(void *ctx, unsigned status, const char *content_type, char *body, size_t len, const char *hname,
                    const char *hvalue) {
        return reply_conn(ctx, status, content_type, body, len, hname, hvalue) == MHD_YES ? 0 : -EIO;
}

static const char *header_mhd(void *ctx, const char *name) {
        return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
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

int listener_add_route(listener *l, const listener_route *route) {
        return listener_table_add(&l->table, route);
}

/* ---- the guards ---- */

static guarded *guarded_of(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return ci ? ci->socket_context : NULL;
}

static void guard_unlink(binding *b, guarded *g) {
        if (g->prev)
                g->prev->next = g->next;
        else
                b->head = g->next;
        if (g->next)
                g->next->prev = g->prev;
        else
                b->tail = g->prev;
        g->prev = g->next = NULL;
}

static void guard_append(binding *b, guarded *g) {
        g->prev = b->tail;
        g->next = NULL;
        if (b->tail)
                b->tail->next = g;
        else
                b->head = g;
        b->tail = g;
}

/* A new phase (headers done, request done) starts its budget now. */
static void guard_phase(binding *b, guarded *g, bool in_request) {
        g->in_request = in_request;
        g->since = now_monotonic_usec();
        guard_unlink(b, g);
        guard_append(b, g);
}

/* libmicrohttpd has no "close this connection": shutting the socket down
 * makes its next read see the end, and it closes the connection itself. */
static void guard_shut(guarded *g) {
        if (g->shut)
                return;
        g->shut = true;
        (void)shutdown(g->fd, SHUT_RDWR);
}

static bool warn_due(uint64_t *last, uint64_t now) {
        if (*last != 0 && now - *last < LISTENER_WARN_INTERVAL_USEC)
                return false;
        *last = now;
        return true;
}

static void guard_arm(binding *b);

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        binding *b = cls;
        listener_stats *st = &b->owner->stats;
        if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                guarded *g = *socket_context;
                if (g) {
                        guard_unlink(b, g);
                        free(g);
                        *socket_context = NULL;
                        b->n_open--;
                        st->connections--;
                }
                return;
        }
        guarded *g = calloc(1, sizeof(guarded));
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!g || !ci) {
                /* Untracked, it still has the idle timeout. */
                free(g);
                return;
        }
        g->fd = ci->connect_fd;
        g->since = now_monotonic_usec();
        guard_append(b, g);
        *socket_context = g;
        b->n_open++;
        st->connections++;
        st->accepted++;

        if (b->n_open < LISTENER_CONNECTION_LIMIT)
                return;
        /* Full: whoever has been longest on its headers makes room, so a
         * crowd of slow or silent connections cannot keep everyone out. */
        for (guarded *o = b->head; o; o = o->next) {
                if (o == g || o->in_request || o->shut)
                        continue;
                guard_shut(o);
                st->evicted++;
                if (warn_due(&b->warned_limit, g->since))
                        log_warning("alert listener: %u connections open (the limit): closing the ones longest "
                                    "without complete headers to make room",
                                    b->n_open);
                break;
        }
}

/* Shuts down what overran its budget. */
static void guard_sweep(binding *b, uint64_t now) {
        listener_stats *st = &b->owner->stats;
        unsigned slow = 0;
        for (guarded *g = b->head; g; g = g->next) {
                if (g->shut)
                        continue;
                uint64_t deadline = g->since + (g->in_request ? LISTENER_REQUEST_BUDGET_USEC : LISTENER_HEADER_BUDGET_USEC);
                if (deadline > now)
                        continue;
                guard_shut(g);
                slow++;
                if (g->in_request)
                        st->request_timeouts++;
                else
                        st->header_timeouts++;
        }
        b->slow_since_warned += slow;
        if (b->slow_since_warned > 0 && warn_due(&b->warned_slow, now)) {
                log_warning("alert listener: closed %" PRIu64 " connection(s) that took longer than %us for their "
                            "headers or %us for a request",
                            b->slow_since_warned, (unsigned)(LISTENER_HEADER_BUDGET_USEC / USEC_PER_SEC),
                            (unsigned)(LISTENER_REQUEST_BUDGET_USEC / USEC_PER_SEC));
                b->slow_since_warned = 0;
        }
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

/* libmicrohttpd takes its listening socket out of its epoll set while at
 * the connection limit and puts it back only at the start of a later run;
 * when the connections that made room close during a run and nothing else
 * is pending, no event and no timeout would ever bring that run. So: run
 * again while a run closed connections (a run that starts with the socket
 * out accepts nothing, so a lower count means exactly that). */
static void binding_run(binding *b) {
        for (unsigned i = 0; i < 16; i++) {
                unsigned before = b->n_open;
                MHD_run(b->mhd);
                if (b->n_open >= before)
                        break;
        }
        b->last_run = now_monotonic_usec();
        binding_rearm(b);
        guard_arm(b);
}

static int on_mhd_io(_unused_ sd_event_source *es, _unused_ int fd, _unused_ uint32_t revents, void *userdata) {
        binding_run(userdata);
        return 0;
}

static int on_mhd_timer(_unused_ sd_event_source *es, _unused_ uint64_t usec, void *userdata) {
        binding_run(userdata);
        return 0;
}

/* The self-check: a connection waiting in the kernel queue while we are
 * below the limit and have not run for a while means the loop lost track
 * of libmicrohttpd. Say so and run it: a deaf listener must not be silent. */
static void binding_self_check(binding *b, uint64_t now) {
        if (b->listen_fd < 0 || b->n_open >= LISTENER_CONNECTION_LIMIT || now - b->last_run < LISTENER_SELF_CHECK_USEC)
                return;
        struct pollfd p = { .fd = b->listen_fd, .events = POLLIN };
        if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
                return;
        b->owner->stats.stalls++;
        if (warn_due(&b->warned_stall, now))
                log_warning("alert listener: connections were waiting %.1fs without being accepted; running the "
                            "listener again",
                            (double)(now - b->last_run) / (double)USEC_PER_SEC);
        binding_run(b);
}

static int on_guard(_unused_ sd_event_source *es, _unused_ uint64_t usec, void *userdata) {
        binding *b = userdata;
        uint64_t now = now_monotonic_usec();
        guard_sweep(b, now);
        binding_self_check(b, now);
        guard_arm(b);
        return 0;
}

static void guard_arm(binding *b) {
        if (!b->guard)
                return;
        uint64_t now = now_monotonic_usec();
        uint64_t next = now + LISTENER_SELF_CHECK_USEC;
        for (guarded *g = b->head; g; g = g->next) {
                if (g->shut)
                        continue;
                uint64_t d = g->since + (g->in_request ? LISTENER_REQUEST_BUDGET_USEC : LISTENER_HEADER_BUDGET_USEC);
                if (d < next)
                        next = d;
        }
        (void)sd_event_source_set_time(b->guard, next);
        (void)sd_event_source_set_enabled(b->guard, SD_EVENT_ONESHOT);
}

/* ---- libmicrohttpd's callbacks ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  _unused_ const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
        binding *b = cls;
        listener *l = b->owner;
        listener_conn *lc = *req_cls;

        if (!lc) {
                guarded *g = guarded_of(c);
                if (g)
                        guard_phase(b, g, true);
                lc = listener_conn_new(send_mhd, c);
                if (!lc)
                        return MHD_NO;
                *req_cls = lc;
                char from[INET6_ADDRSTRLEN + 1];
                client_address(c, from, sizeof from);
                return listener_conn_begin(lc, &l->table, method ? method : "", url ? url : "", from, header_mhd, c) ==
                                       LISTENER_CLOSE
                               ? MHD_NO
                               : MHD_YES;
        }

        if (*upload_data_size > 0) {
                listener_step st = listener_conn_body(lc, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return st == LISTENER_CLOSE ? MHD_NO : MHD_YES;
        }
        return listener_conn_end(lc) == LISTENER_ANSWERED ? MHD_YES : MHD_NO;
}

static void on_request_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                                 _unused_ enum MHD_RequestTerminationCode toe) {
        binding *b = cls;
        guarded *g = guarded_of(c);
        if (g) /* keep-alive: the next request's headers have their own budget */
                guard_phase(b, g, false);
        listener_conn_free(*req_cls);
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

static binding *binding_free(binding *b) {
        if (!b)
                return NULL;
        /* sources first: MHD_stop_daemon closes the fd they watch */
        sd_event_source_disable_unref(b->io);
        sd_event_source_disable_unref(b->timer);
        sd_event_source_disable_unref(b->guard);
        if (b->mhd)
                MHD_stop_daemon(b->mhd); /* tells on_connection of every close */
        free(b->listen);
        free(b);
        return NULL;
}

static int binding_new(listener *l, const char *listen, binding **ret, char **ret_error) {
        listen_addr addr;
        int r = listen_addr_parse(listen, &addr, ret_error);
        if (r < 0)
                return r;
        bool v6 = addr.sa.sa_family == AF_INET6;
        uint16_t want_port = ntohs(v6 ? addr.in6.sin6_port : addr.in.sin_port);

        binding *b = calloc(1, sizeof(binding));
        if (!b)
                return -ENOMEM;
        b->owner = l;
        b->listen_fd = -1;
        b->listen = strdup(listen);
        if (!b->listen) {
                free(b);
                return -ENOMEM;
        }

        l->capture_log = true;
        l->start_log[0] = '\0';
        b->mhd = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0), want_port, NULL, NULL, on_request, b,
                /* the logger must come first, or MHD prints early errors itself */
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, l,
                MHD_OPTION_SOCK_ADDR, &addr.sa,
                MHD_OPTION_CONNECTION_TIMEOUT, LISTENER_CONNECTION_TIMEOUT_SEC,
                MHD_OPTION_CONNECTION_LIMIT, LISTENER_CONNECTION_LIMIT,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)LISTENER_CONNECTION_MEMORY,
                MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, b,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, b,
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
        const union MHD_DaemonInfo *listen_info = MHD_get_daemon_info(b->mhd, MHD_DAEMON_INFO_LISTEN_FD);
        if (listen_info)
                b->listen_fd = listen_info->listen_fd;
        if (!epoll_info || epoll_info->epoll_fd < 0 || !port_info) {
                *ret_error = strdup_printf("cannot listen on %s for alerts: libmicrohttpd has no epoll descriptor",
                                           listen);
                binding_free(b);
                return -EIO;
        }
        b->port = port_info->port;

        r = sd_event_add_io(l->event, &b->io, epoll_info->epoll_fd, EPOLLIN, on_mhd_io, b);
        if (r >= 0)
                r = sd_event_add_time_relative(l->event, &b->timer, CLOCK_MONOTONIC, 0, LISTENER_TIMER_ACCURACY_USEC,
                                               on_mhd_timer, b);
        if (r >= 0)
                r = sd_event_add_time_relative(l->event, &b->guard, CLOCK_MONOTONIC, LISTENER_SELF_CHECK_USEC,
                                               10 * USEC_PER_MSEC, on_guard, b);
        if (r < 0) {
                *ret_error = strdup_printf("cannot watch the alert listener on the event loop: %s", strerror(-r));
                binding_free(b);
                return r;
        }
        (void)sd_event_source_set_description(b->io, "alerts-http");
        (void)sd_event_source_set_description(b->timer, "alerts-http-timer");
        (void)sd_event_source_set_description(b->guard, "alerts-http-guard");
        b->last_run = now_monotonic_usec();
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
        l->table.token = l->token;
        l->table.token_len = l->token_len;
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
        listener_table_done(&l->table);
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
        l->table.token = l->token;
        l->table.token_len = l->token_len;
        if (p->binding) {
                binding_free(l->binding);
                l->binding = TAKE_PTR(p->binding);
        }
        listener_pending_free(p);
}

int listener_port(const listener *l) {
        return l && l->binding ? l->binding->port : -1;
}

void listener_get_stats(const listener *l, listener_stats *ret) {
        *ret = l ? l->stats : (listener_stats){ 0 };
}
