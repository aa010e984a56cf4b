/* SPDX-License-Identifier: MIT */
/* Inside the http module only: what http.c (requests, the pool, completion)
 * and http_loop.c (libcurl's sockets and timer on sd-event) share. Nothing
 * outside src/base/http*.c includes this. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "http.h"

/* Rounds of "curl asked to be run now" handled inside one wakeup. */
#define HTTP_MAX_INLINE_KICKS 8

typedef struct http_socket http_socket;

/* One per socket libcurl watches, or opened through open_cb. An opened
 * one keeps its sd-event source while its connection idles in curl's cache
 * (curl says CURL_POLL_REMOVE then), so a reused connection costs no
 * sd_event_add_io/epoll_ctl; it goes when curl closes it (close_cb). */
struct http_socket {
        http_client *client;
        curl_socket_t fd;
        sd_event_source *source;
        uint32_t events;      /* what source watches */
        bool enabled;
        bool owned;           /* opened by open_cb: curl closes it via close_cb */
        bool watched;         /* curl asked to watch it (not idle in the cache) */
        http_socket *prev, *next;
};

struct http_client {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *kick; /* curl's "timeout 0": run on the next iteration */
        http_socket *sockets;
        http_socket **by_fd;   /* fd -> socket, for sockets curl forgot about */
        size_t n_by_fd;
        http_call *calls;
        size_t n_calls;
        http_call *pool;       /* finished calls, ready for reuse */
        size_t n_pool;
        /* > 0 while curl or completion callbacks run: curl's "run me now"
         * is then handled before returning to the loop, not a loop later. */
        unsigned running;
        bool kick_pending;
        /* > 0 while completion callbacks run; http_client_free() then only
         * cancels and leaves the final free to the drain loop. */
        unsigned busy;
        bool free_pending;
        http_stats stats;
};

/* ---- lists ---- */

#define LIST_PREPEND(head, item)                   \
        do {                                       \
                (item)->prev = NULL;               \
                (item)->next = (head);             \
                if (head)                          \
                        (head)->prev = (item);     \
                (head) = (item);                   \
        } while (0)

#define LIST_REMOVE(head, item)                            \
        do {                                               \
                if ((item)->prev)                          \
                        (item)->prev->next = (item)->next; \
                else                                       \
                        (head) = (item)->next;             \
                if ((item)->next)                          \
                        (item)->next->prev = (item)->prev; \
                (item)->prev = (item)->next = NULL;        \
        } while (0)

/* http_loop.c */
int http_loop_attach(http_client *c);
void http_loop_detach(http_client *c); /* after curl_multi_cleanup */
curl_socket_t http_loop_open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a);
int http_loop_close_cb(void *clientp, curl_socket_t fd);
/* One curl action, the completions, and what those submitted, in this
 * wakeup. Returns true when the client was freed (by a callback). */
bool http_loop_run(http_client *c, curl_socket_t fd, int action);

/* http.c: hands finished transfers to their callbacks; true when a callback
 * freed the client. */
bool http_drain(http_client *c);
