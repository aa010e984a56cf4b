/* SPDX-License-Identifier: MIT */
/* libcurl multi on sd-event, after systemd's src/import/curl-util.c: curl
 * tells us which sockets to watch and when to wake it; sd-event does the
 * waiting. Unlike that file we drain every finished transfer per wakeup. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "rollguard-config.h"
#include "util.h"

#define HTTP_DEFAULT_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define HTTP_MAX_CONNECT_TIMEOUT_USEC (5 * USEC_PER_SEC)

typedef struct http_socket http_socket;

struct http_socket {
        http_client *client;
        curl_socket_t fd;
        sd_event_source *source;
        http_socket *prev, *next;
};

struct http_call {
        http_client *client;
        CURL *easy;
        struct curl_slist *headers;
        char *body;
        size_t body_len;
        size_t body_cap;
        bool too_large;
        /* set while its callback runs: the call is no longer cancellable */
        bool completing;
        uint64_t timeout_usec;
        uint64_t connect_timeout_usec;
        uint64_t started_usec;
        http_done_fn done;
        void *userdata;
        char errbuf[CURL_ERROR_SIZE];
        http_call *prev, *next;
};

struct http_client {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *kick; /* curl's "timeout 0": run on the next iteration */
        http_socket *sockets;
        http_call *calls;
        size_t n_calls;
        /* > 0 while completion callbacks run; http_client_free() then only
         * cancels and leaves the final free to the drain loop. */
        unsigned busy;
        bool free_pending;
};

static bool curl_initialized;

static int ensure_curl_global(void) {
        if (curl_initialized)
                return 0;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        curl_initialized = true;
        return 0;
}

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

/* ---- call lifetime ---- */

static void wipe_slist(struct curl_slist *l) {
        /* Headers may carry the STS token: leave no copy in freed memory. */
        for (; l; l = l->next)
                if (l->data)
                        OPENSSL_cleanse(l->data, strlen(l->data));
}

/* Detaches the easy handle from the multi and frees everything. */
static void call_free(http_call *call) {
        if (!call)
                return;
        if (call->easy) {
                if (call->client && call->client->multi)
                        curl_multi_remove_handle(call->client->multi, call->easy);
                curl_easy_cleanup(call->easy);
        }
        wipe_slist(call->headers);
        curl_slist_free_all(call->headers);
        if (call->body)
                OPENSSL_cleanse(call->body, call->body_cap);
        free(call->body);
        free(call);
}

static void call_unlink(http_call *call) {
        http_client *c = call->client;
        LIST_REMOVE(c->calls, call);
        c->n_calls--;
}

/* ---- curl callbacks ---- */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        http_call *call = userdata;
        size_t n = size * nmemb;

        if (n > HTTP_MAX_RESPONSE - call->body_len) {
                call->too_large = true;
                return 0; /* anything but n aborts with CURLE_WRITE_ERROR */
        }
        if (call->body_len + n + 1 > call->body_cap) {
                size_t cap = call->body_cap ? call->body_cap : 4096;
                while (cap < call->body_len + n + 1)
                        cap *= 2;
                if (cap > HTTP_MAX_RESPONSE + 1)
                        cap = HTTP_MAX_RESPONSE + 1;
                /* Not realloc: bodies can carry credentials (the metadata
                 * service's answer), so the old buffer is wiped, not leaked. */
                char *b = malloc(cap);
                if (!b)
                        return 0;
                if (call->body) {
                        memcpy(b, call->body, call->body_len);
                        OPENSSL_cleanse(call->body, call->body_cap);
                        free(call->body);
                }
                call->body = b;
                call->body_cap = cap;
        }
        memcpy(call->body + call->body_len, data, n);
        call->body_len += n;
        call->body[call->body_len] = 0;
        return n;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        http_client *c = userp;
        http_socket *sock = socketp;

        if (what == CURL_POLL_REMOVE) {
                if (sock) {
                        curl_multi_assign(c->multi, fd, NULL);
                        LIST_REMOVE(c->sockets, sock);
                        sd_event_source_disable_unref(sock->source);
                        free(sock);
                }
                return 0;
        }

        uint32_t events = 0;
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (sock) {
                if (sd_event_source_set_io_events(sock->source, events) < 0)
                        return -1;
                if (sd_event_source_set_enabled(sock->source, SD_EVENT_ON) < 0)
                        return -1;
                return 0;
        }

        sock = calloc(1, sizeof *sock);
        if (!sock)
                return -1;
        sock->client = c;
        sock->fd = fd;
        if (sd_event_add_io(c->event, &sock->source, fd, events, on_io, sock) < 0) {
                free(sock);
                return -1;
        }
        (void)sd_event_source_set_description(sock->source, "http-socket");
        if (curl_multi_assign(c->multi, fd, sock) != CURLM_OK) {
                sd_event_source_disable_unref(sock->source);
                free(sock);
                return -1;
        }
        LIST_PREPEND(c->sockets, sock);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int on_kick(sd_event_source *s, void *userdata);

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        http_client *c = userp;

        /* Each call replaces curl's one pending timeout. */
        if (c->kick && sd_event_source_set_enabled(c->kick, SD_EVENT_OFF) < 0)
                return -1;
        if (timeout_ms < 0) {
                if (c->timer && sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0)
                        return -1;
                return 0;
        }

        /* 0 means "call me soon", which curl says for every request it starts.
         * A defer source runs it on the next iteration, never from inside
         * curl, and costs no syscall; a timer at "now" would re-arm the
         * timerfd twice per request (a fifth of the daemon's CPU at 2000
         * requests/s, measured with perf). */
        if (timeout_ms == 0) {
                if (c->timer && sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0)
                        return -1;
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

/* ---- completion ---- */

static bool is_never_sent_error(CURLcode code) {
        return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
               code == CURLE_COULDNT_RESOLVE_PROXY;
}

static void describe_error(const http_call *call, CURLcode code, bool sent, char *buf,
                           size_t bufsz) {
        char d[32];
        if (call->too_large || code == CURLE_FILESIZE_EXCEEDED)
                snprintf(buf, bufsz, "response too large (over %u bytes)", HTTP_MAX_RESPONSE);
        else if (code == CURLE_OPERATION_TIMEDOUT && !sent)
                snprintf(buf, bufsz, "connect timeout after %s",
                         format_duration(call->connect_timeout_usec, d, sizeof d));
        else if (code == CURLE_OPERATION_TIMEDOUT)
                snprintf(buf, bufsz, "timeout after %s",
                         format_duration(call->timeout_usec, d, sizeof d));
        else if (call->errbuf[0])
                snprintf(buf, bufsz, "%s", call->errbuf);
        else
                snprintf(buf, bufsz, "%s", curl_easy_strerror(code));
}

static void complete(http_client *c, CURL *easy, CURLcode code) {
        http_call *call = NULL;
        char *priv = NULL;

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv) {
                /* not ours; never happens, but do not leave it in the multi */
                curl_multi_remove_handle(c->multi, easy);
                return;
        }
        call = (http_call *)(void *)priv;

        /* Out of the multi and out of our list before the callback, so the
         * callback may submit, cancel others or free the client. */
        curl_multi_remove_handle(c->multi, easy);
        call_unlink(call);
        call->completing = true;

        long status = 0, request_size = 0;
        (void)curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        (void)curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
        bool sent = request_size > 0;

        char error[CURL_ERROR_SIZE + 64];
        http_response resp = {
                .elapsed_usec = now_monotonic_usec() - call->started_usec,
        };
        if (code == CURLE_OK && !call->too_large) {
                resp.status = status;
                resp.body = call->body ? call->body : "";
                resp.body_len = call->body_len;
                resp.maybe_delivered = true;
        } else {
                /* A half-read answer must not look like a good one: no status, no body. */
                resp.status = 0;
                resp.body = "";
                resp.body_len = 0;
                resp.transport_error = call->too_large ? CURLE_FILESIZE_EXCEEDED : (int)code;
                describe_error(call, code, sent, error, sizeof error);
                resp.error = error;
                resp.maybe_delivered = sent && !is_never_sent_error(code);
        }

        if (call->done)
                call->done(&resp, call->userdata);

        call->client = NULL; /* already out of the multi */
        call_free(call);
}

/* Returns true when the client was freed (by a callback) and must not be touched. */
static bool drain(http_client *c) {
        CURLMsg *msg;
        int left;

        c->busy++;
        while (!c->free_pending && (msg = curl_multi_info_read(c->multi, &left)))
                if (msg->msg == CURLMSG_DONE)
                        complete(c, msg->easy_handle, msg->data.result);
        c->busy--;

        if (c->busy == 0 && c->free_pending) {
                c->free_pending = false;
                http_client_free(c);
                return true;
        }
        return false;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        http_socket *sock = userdata;
        http_client *c = sock->client;
        int action = 0, running;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;

        /* sock may be freed inside: only c is used from here on */
        (void)curl_multi_socket_action(c->multi, fd, action, &running);
        drain(c);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        http_client *c = userdata;
        int running;

        (void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        drain(c);
        return 0;
}

static int on_kick(sd_event_source *s, void *userdata) {
        return on_timer(s, 0, userdata);
}

/* ---- public ---- */

int http_client_new(sd_event *e, http_client **ret) {
        int r = ensure_curl_global();
        if (r < 0)
                return r;

        http_client *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->multi = curl_multi_init();
        if (!c->multi) {
                http_client_free(c);
                return -ENOMEM;
        }
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
                http_client_free(c);
                return -EIO;
        }
        *ret = c;
        return 0;
}

http_client *http_client_free(http_client *c) {
        if (!c)
                return NULL;

        while (c->calls)
                http_call_cancel(c->calls);

        if (c->busy > 0) {
                /* A completion callback is on the stack: drain() finishes the job. */
                c->free_pending = true;
                return NULL;
        }

        if (c->multi)
                curl_multi_cleanup(c->multi);
        /* curl may keep cached connections' sockets without telling us on cleanup */
        while (c->sockets) {
                http_socket *sock = c->sockets;
                LIST_REMOVE(c->sockets, sock);
                sd_event_source_disable_unref(sock->source);
                free(sock);
        }
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->kick);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

static bool has_header(const http_request *req, const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; i < req->n_headers; i++)
                if (req->headers[i] && strncasecmp(req->headers[i], name, n) == 0 &&
                    req->headers[i][n] == ':')
                        return true;
        return false;
}

static int setup_easy(http_call *call, const http_request *req) {
        CURL *e = call->easy;
        bool has_body;

        if (streq(req->method, "GET"))
                has_body = false;
        else if (streq(req->method, "PUT") || streq(req->method, "POST"))
                has_body = true;
        else
                return -EINVAL;

        call->timeout_usec = req->timeout_usec ? req->timeout_usec : HTTP_DEFAULT_TIMEOUT_USEC;
        call->connect_timeout_usec = call->timeout_usec < HTTP_MAX_CONNECT_TIMEOUT_USEC
                                             ? call->timeout_usec
                                             : HTTP_MAX_CONNECT_TIMEOUT_USEC;
        long timeout_ms = (long)((call->timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        long connect_ms = (long)((call->connect_timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC);

        for (size_t i = 0; i < req->n_headers; i++) {
                struct curl_slist *l = curl_slist_append(call->headers, req->headers[i]);
                if (!l)
                        return -ENOMEM;
                call->headers = l;
        }
        /* No "Expect: 100-continue" round trip for our (tiny) bodies. */
        struct curl_slist *l = curl_slist_append(call->headers, "Expect:");
        if (!l)
                return -ENOMEM;
        call->headers = l;
        /* curl would add a form content-type to PUT/POST; an unsigned header
         * we did not choose has no business on a signed request. */
        if (has_body && !has_header(req, "content-type")) {
                l = curl_slist_append(call->headers, "Content-Type:");
                if (!l)
                        return -ENOMEM;
                call->headers = l;
        }

#define SET(opt, val)                                        \
        do {                                                 \
                if (curl_easy_setopt(e, opt, val) != CURLE_OK) \
                        return -EIO;                         \
        } while (0)

        SET(CURLOPT_PRIVATE, (void *)call);
        SET(CURLOPT_URL, req->url);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_TIMEOUT_MS, timeout_ms);
        SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        if (req->fresh_connection) {
                SET(CURLOPT_FRESH_CONNECT, 1L);
                SET(CURLOPT_FORBID_REUSE, 1L);
        }
        if (req->ca_file)
                SET(CURLOPT_CAINFO, req->ca_file);
        if (req->cert_file)
                SET(CURLOPT_SSLCERT, req->cert_file);
        if (req->key_file)
                SET(CURLOPT_SSLKEY, req->key_file);
        SET(CURLOPT_USERAGENT, "rollguard/" ROLLGUARD_VERSION);
        SET(CURLOPT_HTTPHEADER, call->headers);
        SET(CURLOPT_WRITEFUNCTION, write_cb);
        SET(CURLOPT_WRITEDATA, (void *)call);
        SET(CURLOPT_ERRORBUFFER, call->errbuf);
        /* Fail early when the server announces a body over the cap. */
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_RESPONSE);

        if (has_body) {
                /* A sized (possibly empty) body: no chunked encoding, and the
                 * method name sent is exactly the one asked for. */
                SET(CURLOPT_POST, 1L);
                SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
                SET(CURLOPT_COPYPOSTFIELDS, req->body && req->body_len ? req->body : "");
                SET(CURLOPT_CUSTOMREQUEST, req->method);
        } else
                SET(CURLOPT_HTTPGET, 1L);
#undef SET
        return 0;
}

int http_submit(http_client *c, const http_request *req, http_done_fn done, void *userdata,
                http_call **ret_call) {
        if (!c || !req || !req->method || !req->url || (req->n_headers && !req->headers))
                return -EINVAL;
        if (c->free_pending)
                return -ESHUTDOWN;

        http_call *call = calloc(1, sizeof *call);
        if (!call)
                return -ENOMEM;
        call->done = done;
        call->userdata = userdata;
        call->easy = curl_easy_init();
        if (!call->easy) {
                call_free(call);
                return -ENOMEM;
        }
        int r = setup_easy(call, req);
        if (r < 0) {
                call_free(call);
                return r;
        }

        call->started_usec = now_monotonic_usec();
        if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
                call_free(call);
                return -EIO;
        }
        call->client = c;
        LIST_PREPEND(c->calls, call);
        c->n_calls++;

        if (ret_call)
                *ret_call = call;
        return 0;
}

void http_call_cancel(http_call *call) {
        if (!call || call->completing)
                return;
        call_unlink(call);
        call_free(call);
}

size_t http_in_flight(const http_client *c) {
        return c ? c->n_calls : 0;
}
