/* SPDX-License-Identifier: MIT */
/* The outbound HTTP client: requests, their limits and the handle pool,
 * completion, and libcurl's global allocator. The sd-event glue is in
 * http_loop.c. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_internal.h"
#include "rollguard-config.h"
#include "util.h"

#define HTTP_DEFAULT_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define HTTP_MAX_CONNECT_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* Idle connections libcurl keeps. Its default, 4 x the handles in use,
 * shrinks whenever the in-flight count dips, so at 2000 calls/s about one
 * request in nine opened a new TCP connection. api.c has at most 64 polls
 * on the wire; actions open their own (fresh_connection) and close them. */
#define HTTP_MAX_CONNECTS 96L
/* Finished calls kept with their easy handle, header nodes and buffers for
 * the next request (an easy handle carries libcurl's 16 KiB download buffer,
 * so the pool is bounded: steady state needs only a handful). */
#define HTTP_POOL_MAX 8
/* A pooled call keeps a body buffer up to this size. */
#define HTTP_POOL_BODY_MAX (64u * 1024u)
/* libcurl's receive buffer per easy handle (default 16 KiB). Cloud answers
 * are 1-2 KiB; with up to 64 polls on the wire the default alone was 1 MiB
 * of peak RSS. Larger answers just take more reads. */
#define HTTP_RECV_BUFFER 4096L

struct http_call {
        http_client *client;
        CURL *easy;
        /* Header nodes and their text, ours: curl_slist_append would
         * allocate twice per header per request. */
        struct curl_slist *nodes;
        size_t nodes_cap;
        char *hdr_buf;
        size_t hdr_cap;
        char *body;
        size_t body_len;
        size_t body_cap;
        size_t max_response;
        bool too_large;
        bool wipe;
        bool custom_tls; /* set CA/cert/key files: never pooled */
        bool fresh;
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

/* ---- the global allocator ---- */

static bool curl_initialized;
/* Sticky: once a secret may have entered libcurl, every block it frees is
 * wiped. Before the first wipe request none can hold one. */
static bool wipe_all;

static void wiping_free(void *p) {
        if (!p)
                return;
        if (wipe_all)
                OPENSSL_cleanse(p, malloc_usable_size(p));
        free(p);
}

static void *wiping_realloc(void *p, size_t n) {
        if (!wipe_all)
                return realloc(p, n);
        if (!p)
                return malloc(n);
        if (n == 0) {
                wiping_free(p);
                return NULL;
        }
        void *q = malloc(n);
        if (!q)
                return NULL;
        size_t old = malloc_usable_size(p);
        memcpy(q, p, old < n ? old : n);
        wiping_free(p);
        return q;
}

int http_global_init(void) {
        if (curl_initialized)
                return 0;
        if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiping_free, wiping_realloc, strdup,
                                 calloc) != CURLE_OK)
                return -EIO;
        curl_initialized = true;
        return 0;
}

void http_global_cleanup(void) {
        if (!curl_initialized)
                return;
        curl_global_cleanup();
        curl_initialized = false;
}

int http_wiping_active(void) {
        return wipe_all;
}

/* ---- call lifetime ---- */

/* Frees everything; buffers of a secret-bearing call are wiped first. */
static void call_destroy(http_call *call) {
        if (!call)
                return;
        if (call->easy)
                curl_easy_cleanup(call->easy);
        if (call->wipe) {
                if (call->hdr_buf)
                        OPENSSL_cleanse(call->hdr_buf, call->hdr_cap);
                if (call->body)
                        OPENSSL_cleanse(call->body, call->body_cap);
        }
        free(call->hdr_buf);
        free(call->body);
        free(call->nodes);
        free(call);
}

/* Out of the multi; back into the pool, or freed. Only calls that carried
 * no secret are pooled: a pooled easy handle keeps its last answer in
 * libcurl's download buffer. */
static void call_release(http_client *c, http_call *call) {
        if (!call)
                return;
        if (call->easy && c && c->multi)
                curl_multi_remove_handle(c->multi, call->easy);
        if (!c || call->wipe || call->custom_tls || !call->easy || c->free_pending || c->n_pool >= HTTP_POOL_MAX) {
                call_destroy(call);
                return;
        }
        if (call->body_cap > HTTP_POOL_BODY_MAX) {
                free(call->body);
                call->body = NULL;
                call->body_cap = 0;
        }
        call->body_len = 0;
        call->client = NULL;
        call->done = NULL;
        call->userdata = NULL;
        call->completing = false;
        call->too_large = false;
        call->next = c->pool;
        c->pool = call;
        c->n_pool++;
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

        if (n > call->max_response - call->body_len) {
                call->too_large = true;
                return 0; /* anything but n aborts with CURLE_WRITE_ERROR */
        }
        if (call->body_len + n + 1 > call->body_cap) {
                size_t cap = call->body_cap ? call->body_cap : 2048;
                while (cap < call->body_len + n + 1)
                        cap *= 2;
                if (cap > call->max_response + 1)
                        cap = call->max_response + 1;
                char *b;
                if (call->wipe) {
                        /* Not realloc: the body may carry credentials (the
                         * metadata service's answer); the old copy is wiped. */
                        b = malloc(cap);
                        if (!b)
                                return 0;
                        if (call->body) {
                                memcpy(b, call->body, call->body_len);
                                OPENSSL_cleanse(call->body, call->body_cap);
                                free(call->body);
                        }
                } else {
                        b = realloc(call->body, cap);
                        if (!b)
                                return 0;
                }
                call->body = b;
                call->body_cap = cap;
        }
        memcpy(call->body + call->body_len, data, n);
        call->body_len += n;
        call->body[call->body_len] = 0;
        return n;
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
                snprintf(buf, bufsz, "response too large (over %zu bytes)", call->max_response);
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

        long status = 0, request_size = 0, connects = 0;
        (void)curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        (void)curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
        (void)curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
        bool sent = request_size > 0;
        c->stats.requests++;
        c->stats.new_connections += connects > 0 ? (uint64_t)connects : 0;
        c->stats.fresh_requests += call->fresh;

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

        /* already out of the multi */
        call_release(c->free_pending ? NULL : c, call);
}

/* Returns true when the client was freed (by a callback) and must not be touched. */
bool http_drain(http_client *c) {
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

/* ---- public ---- */

int http_client_new(sd_event *e, http_client **ret) {
        int r = http_global_init();
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
        if (http_loop_attach(c) < 0 ||
            curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, HTTP_MAX_CONNECTS) != CURLM_OK) {
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

        while (c->pool) {
                http_call *call = c->pool;
                c->pool = call->next;
                call_destroy(call);
        }
        c->n_pool = 0;
        /* closes the cached connections through close_cb, which needs c */
        if (c->multi)
                curl_multi_cleanup(c->multi);
        http_loop_detach(c);
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

/* The request's headers plus ours, as curl_slist nodes over one buffer the
 * call keeps between requests. */
static int build_headers(http_call *call, const http_request *req, bool has_body) {
        const char *extra[2];
        size_t n_extra = 0, total = 0;

        /* No "Expect: 100-continue" round trip for our (tiny) bodies. */
        extra[n_extra++] = "Expect:";
        /* curl would add a form content-type to PUT/POST; an unsigned header
         * we did not choose has no business on a signed request. */
        if (has_body && !has_header(req, "content-type"))
                extra[n_extra++] = "Content-Type:";

        size_t n = req->n_headers + n_extra;
        for (size_t i = 0; i < req->n_headers; i++) {
                if (!req->headers[i])
                        return -EINVAL;
                total += strlen(req->headers[i]) + 1;
        }
        for (size_t i = 0; i < n_extra; i++)
                total += strlen(extra[i]) + 1;

        if (n > call->nodes_cap) {
                struct curl_slist *a = realloc(call->nodes, n * sizeof *a);
                if (!a)
                        return -ENOMEM;
                call->nodes = a;
                call->nodes_cap = n;
        }
        if (total > call->hdr_cap) {
                size_t cap = total < 1024 ? 1024 : total;
                char *b = malloc(cap);
                if (!b)
                        return -ENOMEM;
                if (call->hdr_buf && call->wipe)
                        OPENSSL_cleanse(call->hdr_buf, call->hdr_cap);
                free(call->hdr_buf);
                call->hdr_buf = b;
                call->hdr_cap = cap;
        }
        char *p = call->hdr_buf;
        for (size_t i = 0; i < n; i++) {
                const char *h = i < req->n_headers ? req->headers[i] : extra[i - req->n_headers];
                size_t l = strlen(h);
                memcpy(p, h, l + 1);
                call->nodes[i].data = p;
                call->nodes[i].next = i + 1 < n ? &call->nodes[i + 1] : NULL;
                p += l + 1;
        }
        return 0;
}

#define SET(opt, val)                                          \
        do {                                                   \
                if (curl_easy_setopt(e, opt, val) != CURLE_OK) \
                        return -EIO;                           \
        } while (0)

/* What every request has: set once per easy handle. */
static int setup_easy_base(http_client *c, http_call *call) {
        CURL *e = call->easy;
        SET(CURLOPT_PRIVATE, (void *)call);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_USERAGENT, "rollguard/" ROLLGUARD_VERSION);
        SET(CURLOPT_WRITEFUNCTION, write_cb);
        SET(CURLOPT_WRITEDATA, (void *)call);
        SET(CURLOPT_ERRORBUFFER, call->errbuf);
        SET(CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
        SET(CURLOPT_OPENSOCKETFUNCTION, http_loop_open_cb);
        SET(CURLOPT_OPENSOCKETDATA, (void *)c);
        SET(CURLOPT_CLOSESOCKETFUNCTION, http_loop_close_cb);
        SET(CURLOPT_CLOSESOCKETDATA, (void *)c);
        return 0;
}

/* Everything that differs between requests is set every time, so nothing
 * of a pooled handle's last request carries over. */
static int setup_easy(http_call *call, const http_request *req) {
        CURL *e = call->easy;
        bool has_body;
        int r;

        if (streq(req->method, "GET"))
                has_body = false;
        else if (streq(req->method, "PUT") || streq(req->method, "POST"))
                has_body = true;
        else
                return -EINVAL;

        call->wipe = req->wipe;
        call->fresh = req->fresh_connection;
        call->max_response = req->max_response ? req->max_response : HTTP_MAX_RESPONSE;
        if (call->max_response > SIZE_MAX / 2)
                return -EINVAL;
        call->timeout_usec = req->timeout_usec ? req->timeout_usec : HTTP_DEFAULT_TIMEOUT_USEC;
        uint64_t connect = req->connect_timeout_usec ? req->connect_timeout_usec
                                                     : HTTP_MAX_CONNECT_TIMEOUT_USEC;
        call->connect_timeout_usec = call->timeout_usec < connect ? call->timeout_usec : connect;
        long timeout_ms = (long)((call->timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        long connect_ms = (long)((call->connect_timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        call->errbuf[0] = 0;

        r = build_headers(call, req, has_body);
        if (r < 0)
                return r;

        SET(CURLOPT_URL, req->url);
        SET(CURLOPT_TIMEOUT_MS, timeout_ms);
        SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        SET(CURLOPT_FRESH_CONNECT, req->fresh_connection ? 1L : 0L);
        SET(CURLOPT_FORBID_REUSE, req->fresh_connection ? 1L : 0L);
        SET(CURLOPT_HTTPHEADER, call->nodes);
        /* TLS files (etcd with a private CA or client certificates): such
         * a handle is never pooled, so they cannot carry over to a request
         * that did not ask for them. */
        call->custom_tls = req->ca_file || req->cert_file || req->key_file;
        if (req->ca_file)
                SET(CURLOPT_CAINFO, req->ca_file);
        if (req->cert_file)
                SET(CURLOPT_SSLCERT, req->cert_file);
        if (req->key_file)
                SET(CURLOPT_SSLKEY, req->key_file);
        /* Fail early when the server announces a body over the cap. */
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max_response);

        if (has_body) {
                /* A sized (possibly empty) body: no chunked encoding, and the
                 * method name sent is exactly the one asked for. */
                SET(CURLOPT_POST, 1L);
                SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
                SET(CURLOPT_COPYPOSTFIELDS, req->body && req->body_len ? req->body : "");
                SET(CURLOPT_CUSTOMREQUEST, req->method);
        } else {
                SET(CURLOPT_CUSTOMREQUEST, (char *)NULL);
                SET(CURLOPT_HTTPGET, 1L);
        }
        return 0;
}
#undef SET

static http_call *call_get(http_client *c) {
        http_call *call = c->pool;
        if (call) {
                c->pool = call->next;
                c->n_pool--;
                call->next = NULL;
                return call;
        }
        call = calloc(1, sizeof *call);
        if (!call)
                return NULL;
        call->easy = curl_easy_init();
        if (!call->easy || setup_easy_base(c, call) < 0) {
                call_destroy(call);
                return NULL;
        }
        return call;
}

int http_submit(http_client *c, const http_request *req, http_done_fn done, void *userdata,
                http_call **ret_call) {
        if (!c || !req || !req->method || !req->url || (req->n_headers && !req->headers))
                return -EINVAL;
        if (c->free_pending)
                return -ESHUTDOWN;
        /* Before any of it reaches libcurl (see http_request.wipe). */
        if (req->wipe)
                wipe_all = true;

        http_call *call = call_get(c);
        if (!call)
                return -ENOMEM;
        call->done = done;
        call->userdata = userdata;
        int r = setup_easy(call, req);
        if (r < 0) {
                call_destroy(call);
                return r;
        }

        call->started_usec = now_monotonic_usec();
        if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
                call_destroy(call);
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
        http_client *c = call->client;
        call_unlink(call);
        /* Cut off mid-transfer: its connection is closed by curl; the handle
         * is fine to reuse. */
        call_release(c, call);
}

size_t http_in_flight(const http_client *c) {
        return c ? c->n_calls : 0;
}

void http_client_flush(http_client *c) {
        if (!c || c->running > 0 || c->busy > 0 || !c->kick)
                return;
        int enabled = SD_EVENT_OFF;
        if (sd_event_source_get_enabled(c->kick, &enabled) < 0 || enabled == SD_EVENT_OFF)
                return;
        (void)sd_event_source_set_enabled(c->kick, SD_EVENT_OFF);
        (void)http_loop_run(c, CURL_SOCKET_TIMEOUT, 0);
}

void http_client_stats(const http_client *c, http_stats *out) {
        *out = c ? c->stats : (http_stats){};
}
