/* SPDX-License-Identifier: MIT */
/* libcurl multi on sd-event, after systemd's src/import/curl-util.c: curl
 * tells us which sockets to watch and when to wake it; sd-event does the
 * waiting. Sockets of cached connections keep their io source between
 * requests, and curl's "run me now" from inside our own wakeup is done
 * before going back to the loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_internal.h"
#include "util.h"

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static http_socket *socket_lookup(http_client *c, curl_socket_t fd) {
        return fd >= 0 && (size_t)fd < c->n_by_fd ? c->by_fd[fd] : NULL;
}

static void socket_free(http_client *c, http_socket *sock) {
        if (!sock)
                return;
        if (sock->fd >= 0 && (size_t)sock->fd < c->n_by_fd && c->by_fd[sock->fd] == sock)
                c->by_fd[sock->fd] = NULL;
        LIST_REMOVE(c->sockets, sock);
        sd_event_source_disable_unref(sock->source);
        free(sock);
}

static http_socket *socket_new(http_client *c, curl_socket_t fd) {
        if (fd < 0)
                return NULL;
        if ((size_t)fd >= c->n_by_fd) {
                size_t n = c->n_by_fd ? c->n_by_fd : 64;
                while (n <= (size_t)fd)
                        n *= 2;
                http_socket **a = realloc(c->by_fd, n * sizeof *a);
                if (!a)
                        return NULL;
                memset(a + c->n_by_fd, 0, (n - c->n_by_fd) * sizeof *a);
                c->by_fd = a;
                c->n_by_fd = n;
        }
        /* A stale entry (its fd closed behind our back, the number reused) goes. */
        socket_free(c, c->by_fd[fd]);
        http_socket *sock = calloc(1, sizeof *sock);
        if (!sock)
                return NULL;
        sock->client = c;
        sock->fd = fd;
        c->by_fd[fd] = sock;
        LIST_PREPEND(c->sockets, sock);
        return sock;
}

static int socket_watch(http_socket *sock, uint32_t events) {
        http_client *c = sock->client;
        if (!sock->source) {
                if (sd_event_add_io(c->event, &sock->source, sock->fd, events, on_io, sock) < 0)
                        return -1;
                (void)sd_event_source_set_description(sock->source, "http-socket");
                sock->events = events;
                sock->enabled = true;
                return 0;
        }
        if (sock->events != events) {
                if (sd_event_source_set_io_events(sock->source, events) < 0)
                        return -1;
                sock->events = events;
        }
        if (!sock->enabled) {
                if (sd_event_source_set_enabled(sock->source, SD_EVENT_ON) < 0)
                        return -1;
                sock->enabled = true;
        }
        return 0;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        http_client *c = userp;
        /* By fd from our own map, never curl's socketp: a socket curl closed
         * without close_cb (the threaded resolver's socketpair) can have its
         * number reused by a new connection before curl says REMOVE, and
         * curl then hands us the old, already replaced entry. */
        http_socket *sock = socket_lookup(c, fd);

        if (what == CURL_POLL_REMOVE) {
                if (!sock)
                        return 0;
                curl_multi_assign(c->multi, fd, NULL);
                sock->watched = false;
                /* Parked with its source as it is: a reused connection then
                 * costs no syscall. Not ours to park: freed (curl may close
                 * it without telling us). */
                if (!sock->owned)
                        socket_free(c, sock);
                return 0;
        }

        uint32_t events = 0;
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (!sock) {
                sock = socket_new(c, fd);
                if (!sock)
                        return -1;
        }
        if (socket_watch(sock, events) < 0)
                return -1;
        if (!sock->watched) {
                if (curl_multi_assign(c->multi, fd, sock) != CURLM_OK)
                        return -1;
                sock->watched = true;
        }
        return 0;
}

curl_socket_t http_loop_open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a) {
        http_client *c = clientp;
        if (purpose != CURLSOCKTYPE_IPCXN)
                return CURL_SOCKET_BAD;
        int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        if (fd < 0)
                return CURL_SOCKET_BAD;
        http_socket *sock = socket_new(c, fd);
        if (!sock) {
                close(fd);
                return CURL_SOCKET_BAD;
        }
        sock->owned = true;
        return fd;
}

int http_loop_close_cb(void *clientp, curl_socket_t fd) {
        http_client *c = clientp;
        socket_free(c, socket_lookup(c, fd));
        return close(fd);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int on_kick(sd_event_source *s, void *userdata);

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        http_client *c = userp;

        /* Each call replaces curl's one pending timeout. */
        c->kick_pending = false;
        if (c->kick && sd_event_source_set_enabled(c->kick, SD_EVENT_OFF) < 0)
                return -1;
        if (timeout_ms < 0) {
                if (c->timer && sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0)
                        return -1;
                return 0;
        }

        /* 0 means "call me soon", which curl says for every request it starts.
         * Inside our own wakeup (a completion callback submitted the next
         * request) it is done before going back to the loop; otherwise a
         * defer source runs it on the next iteration, never from inside
         * curl. A timer at "now" would re-arm the timerfd twice per request. */
        if (timeout_ms == 0) {
                if (c->timer && sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0)
                        return -1;
                if (c->running > 0) {
                        c->kick_pending = true;
                        return 0;
                }
                if (!c->kick) {
                        if (sd_event_add_defer(c->event, &c->kick, on_kick, c) < 0)
                                return -1;
                        (void)sd_event_source_set_description(c->kick, "http-kick");
                }
                return sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
        }

        uint64_t now;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                return -1;
        uint64_t when = now + (uint64_t)timeout_ms * USEC_PER_MSEC;

        if (c->timer) {
                if (sd_event_source_set_time(c->timer, when) < 0)
                        return -1;
                if (sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
                        return -1;
                return 0;
        }
        /* accuracy 1us: the default 250ms slack would stretch curl's timeouts */
        if (sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, when, 1, on_timer, c) < 0)
                return -1;
        (void)sd_event_source_set_description(c->timer, "http-timer");
        return 0;
}

bool http_loop_run(http_client *c, curl_socket_t fd, int action) {
        int running;

        c->running++;
        (void)curl_multi_socket_action(c->multi, fd, action, &running);
        bool gone = http_drain(c);
        for (unsigned i = 0; !gone && c->kick_pending && i < HTTP_MAX_INLINE_KICKS; i++) {
                c->kick_pending = false;
                (void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
                gone = http_drain(c);
        }
        if (gone)
                return true;
        c->running--;
        if (c->kick_pending) {
                /* still asked for after the rounds above: the next iteration */
                c->kick_pending = false;
                if (c->kick || sd_event_add_defer(c->event, &c->kick, on_kick, c) >= 0)
                        (void)sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
        }
        return false;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        http_socket *sock = userdata;
        http_client *c = sock->client;
        int action = 0;

        if (!sock->watched) {
                /* An idle cached connection: the peer closed it or sent
                 * something. curl finds out when it next picks it (and then
                 * closes it); until then it must not wake us again. */
                if (sd_event_source_set_enabled(sock->source, SD_EVENT_OFF) >= 0)
                        sock->enabled = false;
                return 0;
        }
        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;

        /* sock may be freed inside: only c is used from here on */
        (void)http_loop_run(c, fd, action);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)http_loop_run(userdata, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

static int on_kick(sd_event_source *s, void *userdata) {
        return on_timer(s, 0, userdata);
}

int http_loop_attach(http_client *c) {
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
                return -EIO;
        return 0;
}

void http_loop_detach(http_client *c) {
        /* curl may keep sockets without telling us on cleanup */
        while (c->sockets)
                socket_free(c, c->sockets);
        free(c->by_fd);
        c->by_fd = NULL;
        c->n_by_fd = 0;
        c->timer = sd_event_source_disable_unref(c->timer);
        c->kick = sd_event_source_disable_unref(c->kick);
}
