/* SPDX-License-Identifier: MIT */
/* api_classify() table, then http.c + api.c end to end against a tiny HTTP
 * server that runs on the same sd_event loop as the client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "credentials.h"
#include "http.h"
#include "rollguard-config.h"
#include "sign.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* classification table                                                */

typedef struct classify_row {
        long status;
        const char *body;
        size_t body_len;          /* 0: strlen(body) */
        api_outcome outcome;
        const char *code;         /* expected code ("" = none) */
        const char *msg_contains; /* NULL: do not check */
        const char *request_id;   /* NULL: do not check */
        bool json;                /* a parsed document comes back */
} classify_row;

#define BIN(s) s, sizeof(s) - 1

static const classify_row rows[] = {
        /* success shapes */
        { 200, "{\"Code\":\"200\",\"Message\":\"success\",\"Success\":true,\"RequestId\":\"r-1\",\"Data\":{}}",
          0, API_OK, "200", "success", "r-1", true },
        { 200, "{\"Code\":200,\"Data\":{\"AppId\":\"a\"}}", 0, API_OK, "200", NULL, NULL, true },
        { 200, "{\"Data\":{\"X\":1}}", 0, API_OK, "", "", NULL, true },
        { 200, "{\"Code\":\"OK\",\"Success\":\"true\"}", 0, API_OK, "OK", NULL, NULL, true },
        { 200, "{\"Code\":null,\"Message\":null,\"RequestId\":null,\"Success\":null,\"Data\":null}", 0,
          API_OK, "", "", "", true },
        { 200, "{\"Foo\":[1,2,{\"x\":null}],\"TraceId\":\"t\",\"Code\":\"200\",\"Bar\":{\"Baz\":true}}", 0,
          API_OK, "200", NULL, NULL, true },
        { 200, "{\"Code\":{\"nested\":1},\"Success\":true}", 0, API_OK, "", NULL, NULL, true },
        { 204, "{\"Success\":true}", 0, API_OK, "", NULL, NULL, true },
        { 200, "  {\"Code\":\"200\"}\r\n ", 0, API_OK, "200", NULL, NULL, true },
        /* Success: false */
        { 200, "{\"Code\":\"200\",\"Success\":false,\"Message\":\"nope\"}", 0, API_PERMANENT, "", "nope",
          NULL, true },
        { 200, "{\"Success\":false}", 0, API_PERMANENT, "", "Success: false", NULL, true },
        { 200, "{\"Success\":\"false\",\"Code\":\"Throttling.User\"}", 0, API_THROTTLED,
          "Throttling.User", NULL, NULL, true },
        { 200, "{\"Code\":\"Application.ChangerOrder.Not.Running\",\"Success\":false}", 0,
          API_NOT_RUNNING, "Application.ChangerOrder.Not.Running", NULL, NULL, true },
        /* ErrorCode / ErrorMessage spelling */
        { 400, "{\"ErrorCode\":\"InvalidParameter.NotEmpty\",\"ErrorMessage\":\"AppId is empty\",\"RequestId\":\"r-2\"}",
          0, API_PERMANENT, "InvalidParameter.NotEmpty", "AppId is empty", "r-2", true },
        /* throttling */
        { 429, "", 0, API_THROTTLED, "", "HTTP 429", NULL, false },
        { 429, NULL, 0, API_THROTTLED, "", "HTTP 429", NULL, false },
        { 400, "{\"Code\":\"Throttling.User\",\"Message\":\"Request was denied due to user flow control.\"}",
          0, API_THROTTLED, "Throttling.User", "flow control", NULL, true },
        { 400, "{\"Code\":\"Throttling\"}", 0, API_THROTTLED, "Throttling", "HTTP 400", NULL, true },
        { 429, "{\"Code\":\"Throttling.Api\",\"Message\":\"line1\nline2\"}", 0, API_THROTTLED,
          "Throttling.Api", "line1 line2", NULL, true },
        { 429, "{\"Code\":\"SomethingElse\"}", 0, API_THROTTLED, "SomethingElse", NULL, NULL, true },
        /* transient */
        { 503, "{\"Code\":\"System.Upgrading\",\"Message\":\"The system is upgrading\"}", 0, API_TRANSIENT,
          "System.Upgrading", "upgrading", NULL, true },
        { 500, "{\"Code\":\"InternalError\",\"Message\":\"The request processing has failed due to some unknown error.\"}",
          0, API_TRANSIENT, "InternalError", "unknown error", NULL, true },
        { 503, "{\"Code\":\"ServiceUnavailable\"}", 0, API_TRANSIENT, "ServiceUnavailable", "HTTP 503", NULL,
          true },
        { 500, "{\"Code\":\"SomethingNew.Weird\"}", 0, API_TRANSIENT, "SomethingNew.Weird", NULL, NULL, true },
        { 502, "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
          0, API_TRANSIENT, "", "HTML error page", NULL, false },
        { 500, "\n  <!DOCTYPE html><html></html>", 0, API_TRANSIENT, "", "HTTP 500: HTML error page", NULL,
          false },
        { 503, "", 0, API_TRANSIENT, "", "HTTP 503: empty body", NULL, false },
        { 500, "{\"Code\":\"200\"}", 0, API_TRANSIENT, "", "HTTP 500", NULL, true },
        /* unreadable 2xx bodies are transient, never OK */
        { 200, "{\"Code\":\"200\",\"Data\":{\"Status\":", 0, API_TRANSIENT, "", "malformed JSON at byte 30",
          NULL, false },
        { 200, "", 0, API_TRANSIENT, "", "HTTP 200: empty body", NULL, false },
        { 200, NULL, 0, API_TRANSIENT, "", "empty body", NULL, false },
        { 200, BIN("\x00\xff\xfe{\x01\x02"), API_TRANSIENT, "", "malformed JSON at byte 1", NULL, false },
        { 200, BIN("{\"Code\":\"200\"}\x00garbage"), API_TRANSIENT, "", "trailing data after JSON at byte 14",
          NULL, false },
        { 200, "[1,2,3]", 0, API_TRANSIENT, "", "not a JSON object", NULL, true },
        { 200, "\"just a string\"", 0, API_TRANSIENT, "", "not a JSON object", NULL, true },
        { 200, "   ", 0, API_TRANSIENT, "", "malformed JSON", NULL, false },
        { 200, "<html>ok?</html>", 0, API_TRANSIENT, "", "HTML error page", NULL, false },
        /* not running */
        { 400, "{\"Code\":\"Application.ChangerOrder.Not.Running\",\"Message\":\"The change order is not running\"}",
          0, API_NOT_RUNNING, "Application.ChangerOrder.Not.Running", "not running", NULL, true },
        /* permanent: permission, signature, not found, parameters, other 4xx */
        { 403, "{\"Code\":\"Resouce.no.permission\",\"Message\":\"no permission\"}", 0, API_PERMANENT,
          "Resouce.no.permission", "no permission", NULL, true },
        { 400, "{\"Code\":\"SignatureDoesNotMatch\",\"Message\":\"Specified signature is not matched with our calculation.\"}",
          0, API_PERMANENT, "SignatureDoesNotMatch", "signature", NULL, true },
        { 400, "{\"Code\":\"IncompleteSignature\"}", 0, API_PERMANENT, "IncompleteSignature", NULL, NULL,
          true },
        { 404, "{\"Code\":\"InvalidAccessKeyId.NotFound\"}", 0, API_PERMANENT, "InvalidAccessKeyId.NotFound",
          NULL, NULL, true },
        { 403, "{\"Code\":\"Forbidden.RAM\"}", 0, API_PERMANENT, "Forbidden.RAM", NULL, NULL, true },
        { 403, "{\"Code\":\"NoPermission.App\"}", 0, API_PERMANENT, "NoPermission.App", NULL, NULL, true },
        { 500, "{\"Code\":\"InvalidParameter\"}", 0, API_PERMANENT, "InvalidParameter", NULL, NULL, true },
        { 404, "{\"Code\":\"InvalidAppId.NotFound\",\"Message\":\"The application does not exist\"}", 0,
          API_PERMANENT, "InvalidAppId.NotFound", "does not exist", NULL, true },
        { 400, "{\"Code\":\"InvalidChangeOrder.NotFound\"}", 0, API_PERMANENT, "InvalidChangeOrder.NotFound",
          NULL, NULL, true },
        { 404, "Not Found", 0, API_PERMANENT, "", "HTTP 404", NULL, false },
        { 400, "{\"Code\":\"SomethingNew.Weird\"}", 0, API_PERMANENT, "SomethingNew.Weird", NULL, NULL, true },
        { 301, "", 0, API_PERMANENT, "", "HTTP 301", NULL, false },
        /* transport errors: status 0, the error text in body */
        { 0, "timeout after 10s", 0, API_TRANSIENT, "", "timeout after 10s", NULL, false },
        { 0, "Failed to connect to 127.0.0.1 port 1: Connection refused", 0, API_TRANSIENT, "",
          "Connection refused", NULL, false },
        { 0, NULL, 0, API_TRANSIENT, "", "no response", NULL, false },
};

static void test_classify_table(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                const classify_row *row = &rows[i];
                size_t len = row->body_len ? row->body_len : row->body ? strlen(row->body) : 0;
                api_result r;
                cJSON *json = (cJSON *)(uintptr_t)1; /* must be overwritten */

                api_classify(row->status, row->body, len, &r, &json);

                if (r.outcome != row->outcome)
                        fail_msg("row %zu (HTTP %ld %.40s): outcome %s, want %s", i, row->status,
                                 strna(row->body), api_outcome_name(r.outcome),
                                 api_outcome_name(row->outcome));
                if (!streq(r.code, row->code))
                        fail_msg("row %zu: code '%s', want '%s'", i, r.code, row->code);
                if (row->msg_contains && !strstr(r.message, row->msg_contains))
                        fail_msg("row %zu: message '%s' lacks '%s'", i, r.message, row->msg_contains);
                if (row->request_id && !streq(r.request_id, row->request_id))
                        fail_msg("row %zu: request id '%s', want '%s'", i, r.request_id, row->request_id);
                if ((json != NULL) != row->json)
                        fail_msg("row %zu: json %s, want %s", i, json ? "returned" : "NULL",
                                 row->json ? "returned" : "NULL");
                if (r.http_status != row->status)
                        fail_msg("row %zu: http_status %ld", i, r.http_status);
                if (r.maybe_delivered != (row->status != 0))
                        fail_msg("row %zu: maybe_delivered %d", i, r.maybe_delivered);
                if (r.json)
                        fail_msg("row %zu: classify must leave result.json NULL", i);
                cJSON_Delete(json);

                /* and without asking for the document */
                api_result r2;
                api_classify(row->status, row->body, len, &r2, NULL);
                if (r2.outcome != r.outcome || !streq(r2.code, r.code))
                        fail_msg("row %zu: differs without ret_json", i);
        }
}

static void assert_terminated(const api_result *r) {
        assert_non_null(memchr(r->code, 0, sizeof r->code));
        assert_non_null(memchr(r->message, 0, sizeof r->message));
        assert_non_null(memchr(r->request_id, 0, sizeof r->request_id));
        for (const char *p = r->message; *p; p++)
                assert_false((unsigned char)*p < 0x20);
}

static void test_classify_long_fields_are_truncated(void **state) {
        size_t n = 5000;
        _cleanup_free_ char *body = malloc(n + 200);
        assert_non_null(body);
        int off = sprintf(body, "{\"Code\":\"Throttling.");
        memset(body + off, 'x', 300);
        off += 300;
        off += sprintf(body + off, "\",\"Message\":\"");
        memset(body + off, 'm', 1000);
        off += 1000;
        /* a 3-byte UTF-8 character straddling the cut must not be split */
        strcpy(body + off, "\",\"RequestId\":\"r\"}");

        api_result r;
        api_classify(400, body, strlen(body), &r, NULL);
        assert_int_equal(r.outcome, API_THROTTLED);
        assert_int_equal(strlen(r.code), sizeof r.code - 1);
        assert_int_equal(strlen(r.message), sizeof r.message - 1);
        assert_terminated(&r);

        /* UTF-8 at the cut: 254 ASCII then a 3-byte sequence */
        char msg[600] = "{\"Code\":\"X\",\"Message\":\"";
        size_t l = strlen(msg);
        memset(msg + l, 'a', 254);
        l += 254;
        strcpy(msg + l, "\xe2\x82\xac tail\"}");
        api_classify(400, msg, strlen(msg), &r, NULL);
        assert_int_equal(strlen(r.message), 254);
}

/* Never crash, whatever the body: deep nesting, huge, random bytes. */
static void test_classify_hostile_bodies(void **state) {
        static const long statuses[] = { 0, 200, 204, 302, 400, 403, 404, 429, 500, 502, 503, 999, -1 };
        size_t big = 5 * 1024 * 1024;
        _cleanup_free_ char *buf = malloc(big + 1);
        assert_non_null(buf);
        api_result r;
        cJSON *json;

        memset(buf, '[', big); /* deeper than cJSON's nesting limit */
        buf[big] = 0;
        api_classify(200, buf, big, &r, &json);
        assert_int_equal(r.outcome, API_TRANSIENT);
        assert_null(json);

        for (size_t i = 0; i < big; i++) /* huge string value, never closed */
                buf[i] = i == 0 ? '{' : i == 1 ? '"' : 'q';
        api_classify(200, buf, big, &r, &json);
        assert_int_equal(r.outcome, API_TRANSIENT);
        assert_null(json);

        uint64_t seed = 0x243F6A8885A308D3ull;
        for (int round = 0; round < 2000; round++) {
                size_t len = (size_t)(seed % 512);
                for (size_t i = 0; i < len; i++) {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        /* half the rounds mostly JSON punctuation to get deeper */
                        buf[i] = round % 2 ? (char)(seed & 0xff) : "{}[]\":,0aCode1 \\"[seed % 16];
                }
                long status = statuses[(size_t)round % ELEMENTSOF(statuses)];
                api_classify(status, buf, len, &r, &json);
                assert_true(r.outcome <= API_NOT_RUNNING);
                assert_terminated(&r);
                cJSON_Delete(json);
                seed += 0x9E3779B97F4A7C15ull;
        }
}

static void test_outcome_names(void **state) {
        assert_string_equal(api_outcome_name(API_OK), "ok");
        assert_string_equal(api_outcome_name(API_TRANSIENT), "transient");
        assert_string_equal(api_outcome_name(API_THROTTLED), "throttled");
        assert_string_equal(api_outcome_name(API_PERMANENT), "permanent");
        assert_string_equal(api_outcome_name(API_NOT_RUNNING), "not-running");
}

/* ------------------------------------------------------------------ */
/* a tiny HTTP/1.1 server on the test's event loop                     */

#define SRV_MAX_REQ 64
#define BIG_BODY (HTTP_MAX_RESPONSE + 512 * 1024)

typedef struct srv_req {
        char method[16];
        char target[1024];
        char head[8192];
        uint64_t arrived_usec;
} srv_req;

typedef struct server server;

typedef struct conn {
        server *srv;
        int fd;
        sd_event_source *src;
        char in[8192];
        size_t in_len;
        char *out;
        size_t out_len, out_off;
        bool answered;
        struct conn *next;
} conn;

struct server {
        sd_event *e;
        int fd;
        uint16_t port;
        sd_event_source *src;
        srv_req reqs[SRV_MAX_REQ];
        size_t n_reqs;
        conn *conns;
        size_t n_conns;
        size_t n_accepted;  /* TCP connections ever accepted */
        bool saw_secret; /* any raw request byte sequence holding the test secret */
};

static void conn_close(conn *k) {
        server *s = k->srv;
        for (conn **p = &s->conns; *p; p = &(*p)->next)
                if (*p == k) {
                        *p = k->next;
                        break;
                }
        s->n_conns--;
        sd_event_source_disable_unref(k->src);
        close(k->fd);
        free(k->out);
        free(k);
}

static char *make_response(server *s, const srv_req *r, size_t *ret_len) {
        char path[1024];
        snprintf(path, sizeof path, "%.*s", (int)strcspn(r->target, "?"), r->target);

        if (strncmp(path, "/slow", 5) == 0)
                return NULL; /* never answer */

        if (streq(path, "/big") || streq(path, "/bigcl")) {
                char head[256];
                int hl;
                if (streq(path, "/big"))
                        hl = snprintf(head, sizeof head,
                                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                      "Connection: close\r\n\r\n");
                else
                        hl = snprintf(head, sizeof head,
                                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                      "Content-Length: %u\r\nConnection: close\r\n\r\n",
                                      (unsigned)BIG_BODY);
                char *out = malloc((size_t)hl + BIG_BODY);
                assert_non_null(out);
                memcpy(out, head, (size_t)hl);
                memset(out + hl, ' ', BIG_BODY);
                *ret_len = (size_t)hl + BIG_BODY;
                return out;
        }

        int status = 200;
        const char *reason = "OK";
        char body[1400];
        if (streq(path, "/throttle")) {
                status = 400;
                reason = "Bad Request";
                snprintf(body, sizeof body,
                         "{\"Code\":\"Throttling.User\",\"Message\":\"Request was denied due to "
                         "user flow control.\",\"RequestId\":\"req-%zu\"}",
                         s->n_reqs);
        } else if (streq(path, "/html503")) {
                status = 503;
                reason = "Service Unavailable";
                snprintf(body, sizeof body, "<html><body>503 Service Temporarily Unavailable</body></html>");
        } else
                snprintf(body, sizeof body,
                         "{\"Code\":\"200\",\"Success\":true,\"RequestId\":\"req-%zu\","
                         "\"Data\":{\"Path\":\"%s\"}}",
                         s->n_reqs, path);

        bool keep = strncmp(path, "/ka", 3) == 0;
        char *out = strdup_printf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                                  "Content-Length: %zu\r\n%s\r\n%s",
                                  status, reason, strlen(body), keep ? "" : "Connection: close\r\n",
                                  body);
        assert_non_null(out);
        *ret_len = strlen(out);
        return out;
}

static int on_conn(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        conn *k = userdata;
        server *s = k->srv;

        if (!k->answered && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                ssize_t n = recv(fd, k->in + k->in_len, sizeof k->in - 1 - k->in_len, 0);
                if (n <= 0) {
                        conn_close(k);
                        return 0;
                }
                k->in_len += (size_t)n;
                k->in[k->in_len] = 0;
                if (strstr(k->in, "testsecret"))
                        s->saw_secret = true;
                char *end = strstr(k->in, "\r\n\r\n");
                if (!end)
                        return 0;
                assert_true(s->n_reqs < SRV_MAX_REQ);
                srv_req *r = &s->reqs[s->n_reqs];
                *r = (srv_req){ .arrived_usec = now_monotonic_usec() };
                assert_int_equal(sscanf(k->in, "%15s %1023s", r->method, r->target), 2);
                snprintf(r->head, sizeof r->head, "%.*s", (int)(end - k->in + 2), k->in);
                k->out = make_response(s, r, &k->out_len);
                s->n_reqs++;
                k->answered = true;
                if (k->out)
                        assert_true(sd_event_source_set_io_events(src, EPOLLOUT) >= 0);
                return 0;
        }
        if (k->answered && !k->out) {
                /* a request we never answer: wait for the client to give up */
                char b[256];
                ssize_t n = recv(fd, b, sizeof b, 0);
                if (n <= 0)
                        conn_close(k);
                return 0;
        }
        if (k->out) {
                ssize_t n = send(fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n <= 0) {
                        conn_close(k); /* client went away (e.g. aborted a big body) */
                        return 0;
                }
                k->out_off += (size_t)n;
                if (k->out_off == k->out_len && strstr(k->out, "Connection: close"))
                        conn_close(k);
                else if (k->out_off == k->out_len) {
                        /* keep-alive: ready for the next request */
                        free(k->out);
                        k->out = NULL;
                        k->out_len = k->out_off = k->in_len = 0;
                        k->answered = false;
                        assert_true(sd_event_source_set_io_events(src, EPOLLIN) >= 0);
                }
        }
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        server *s = userdata;
        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0)
                        return 0;
                conn *k = calloc(1, sizeof *k);
                assert_non_null(k);
                k->srv = s;
                k->fd = cfd;
                assert_true(sd_event_add_io(s->e, &k->src, cfd, EPOLLIN, on_conn, k) >= 0);
                k->next = s->conns;
                s->conns = k;
                s->n_conns++;
                s->n_accepted++;
        }
}

static uint16_t bound_port(int fd) {
        struct sockaddr_in a;
        socklen_t l = sizeof a;
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
        return ntohs(a.sin_port);
}

static int loopback_socket(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
        return fd;
}

static void server_start(server *s, sd_event *e) {
        *s = (server){ .e = e };
        s->fd = loopback_socket();
        assert_int_equal(listen(s->fd, 64), 0);
        s->port = bound_port(s->fd);
        assert_true(sd_event_add_io(e, &s->src, s->fd, EPOLLIN, on_accept, s) >= 0);
}

static void server_stop(server *s) {
        while (s->conns)
                conn_close(s->conns);
        sd_event_source_disable_unref(s->src);
        close(s->fd);
}

static const srv_req *server_find(const server *s, const char *path_prefix) {
        for (size_t i = 0; i < s->n_reqs; i++)
                if (strncmp(s->reqs[i].target, path_prefix, strlen(path_prefix)) == 0)
                        return &s->reqs[i];
        return NULL;
}

/* Header value (case-insensitive name) or NULL. */
static const char *req_header(const srv_req *r, const char *name, char *buf, size_t bufsz) {
        const char *line = strstr(r->head, "\r\n");
        size_t nl = strlen(name);
        while (line && line[2]) {
                line += 2;
                if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
                        const char *v = line + nl + 1;
                        while (*v == ' ')
                                v++;
                        snprintf(buf, bufsz, "%.*s", (int)strcspn(v, "\r"), v);
                        return buf;
                }
                line = strstr(line, "\r\n");
        }
        return NULL;
}

static size_t count_header(const srv_req *r, const char *name) {
        size_t n = 0, nl = strlen(name);
        for (const char *line = strstr(r->head, "\r\n"); line && line[2]; line = strstr(line, "\r\n")) {
                line += 2;
                if (strncasecmp(line, name, nl) == 0 && line[nl] == ':')
                        n++;
        }
        return n;
}

/* ------------------------------------------------------------------ */
/* fixture                                                             */

#define WAIT_FOR(e, cond, seconds)                                                        \
        do {                                                                              \
                uint64_t _deadline = now_monotonic_usec() + (seconds) * USEC_PER_SEC;     \
                while (!(cond)) {                                                         \
                        if (now_monotonic_usec() > _deadline)                             \
                                fail_msg("timed out waiting for: %s", #cond);             \
                        assert_true(sd_event_run((e), 100 * USEC_PER_MSEC) >= 0);         \
                }                                                                         \
        } while (0)

typedef struct fixture {
        sd_event *e;
        server srv;
        http_client *http;
        cred_provider *creds;
        api_client *api;
        char base[64];
} fixture;

static cred_provider *static_creds(const char *token) {
        credentials c = {
                .access_key_id = strdup("testid"),
                .access_key_secret = strdup("testsecret"),
                .security_token = token ? strdup(token) : NULL,
                .source = CRED_SOURCE_ENV,
        };
        assert_non_null(c.access_key_id);
        assert_non_null(c.access_key_secret);
        cred_provider *p = NULL;
        assert_int_equal(cred_provider_new_static(&c, &p), 0);
        assert_non_null(p);
        return p;
}

static void fixture_setup(fixture *f, unsigned rate_limit, uint64_t window, uint64_t timeout,
                          const char *sts_token) {
        *f = (fixture){};
        assert_true(sd_event_new(&f->e) >= 0);
        server_start(&f->srv, f->e);
        snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", f->srv.port);
        assert_int_equal(http_client_new(f->e, &f->http), 0);
        f->creds = static_creds(sts_token);
        api_client_options o = { .rate_limit = rate_limit, .rate_window_usec = window, .timeout_usec = timeout };
        assert_int_equal(api_client_new(f->e, f->http, f->creds, &o, &f->api), 0);
}

static void fixture_teardown(fixture *f) {
        api_client_free(f->api);
        http_client_free(f->http);
        cred_provider_free(f->creds);
        server_stop(&f->srv);
        sd_event_unref(f->e);
}

/* What a callback saw; the global log records completion order. */
typedef struct got {
        const char *name;
        int calls;
        api_result res;
        char data_path[128];
        uint64_t at_usec;
} got;

static const char *done_order[32];
static size_t n_done;

static void on_done(const api_result *r, void *userdata) {
        got *g = userdata;
        g->calls++;
        g->res = *r;
        g->res.json = NULL; /* only valid during the callback */
        g->at_usec = now_monotonic_usec();
        const cJSON *p = r->json ? cJSON_GetObjectItemCaseSensitive(
                                           cJSON_GetObjectItemCaseSensitive(r->json, "Data"), "Path")
                                 : NULL;
        if (cJSON_IsString(p))
                snprintf(g->data_path, sizeof g->data_path, "%s", p->valuestring);
        if (n_done < ELEMENTSOF(done_order))
                done_order[n_done++] = g->name;
}

static api_request simple_request(const char *method, const char *path) {
        return (api_request){
                .method = method,
                .path = path,
                .action = "DescribeApplicationStatus",
                .version = "2019-05-06",
                .query = { { "AppId", "app-1" } },
                .n_query = 1,
        };
}

/* ------------------------------------------------------------------ */
/* end-to-end tests                                                    */

static void test_get_round_trip_is_signed(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);

        api_request req = {
                .method = "GET",
                .path = "/pop/v1/sam/app/describeApplicationStatus",
                .action = "DescribeApplicationStatus",
                .version = "2019-05-06",
                .query = { { "AppId", "app-1" }, { "Name", "a b*c" } },
                .n_query = 2,
        };
        got g = { .name = "get" };
        assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_IDLE, on_done, &g, NULL), 0);
        WAIT_FOR(f.e, g.calls == 1, 10);

        assert_int_equal(g.res.outcome, API_OK);
        assert_int_equal(g.res.http_status, 200);
        assert_true(g.res.maybe_delivered);
        assert_string_equal(g.res.request_id, "req-0");
        assert_string_equal(g.data_path, "/pop/v1/sam/app/describeApplicationStatus");

        assert_int_equal(f.srv.n_reqs, 1);
        const srv_req *r = &f.srv.reqs[0];
        char b[1024], host[64], date[64], nonce[64], auth[512];
        assert_string_equal(r->method, "GET");
        assert_string_equal(r->target, "/pop/v1/sam/app/describeApplicationStatus?AppId=app-1&Name=a%20b%2Ac");
        snprintf(host, sizeof host, "127.0.0.1:%u", f.srv.port);
        assert_string_equal(req_header(r, "host", b, sizeof b), host);
        assert_int_equal(count_header(r, "host"), 1); /* ours replaced curl's */
        assert_string_equal(req_header(r, "x-acs-action", b, sizeof b), "DescribeApplicationStatus");
        assert_string_equal(req_header(r, "x-acs-version", b, sizeof b), "2019-05-06");
        assert_string_equal(req_header(r, "x-acs-content-sha256", b, sizeof b),
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_string_equal(req_header(r, "accept", b, sizeof b), "application/json");
        assert_string_equal(req_header(r, "user-agent", b, sizeof b), "rollguard/" ROLLGUARD_VERSION);
        assert_null(req_header(r, "expect", b, sizeof b));
        assert_null(req_header(r, "x-acs-security-token", b, sizeof b));

        assert_non_null(req_header(r, "x-acs-date", date, sizeof date));
        assert_int_equal(strlen(date), 20);
        assert_true(date[4] == '-' && date[10] == 'T' && date[19] == 'Z');
        assert_non_null(req_header(r, "x-acs-signature-nonce", nonce, sizeof nonce));
        assert_int_equal(strlen(nonce), 32);
        assert_int_equal(strspn(nonce, "0123456789abcdef"), 32);

        /* The Authorization header is exactly what signing these inputs gives. */
        assert_non_null(req_header(r, "authorization", auth, sizeof auth));
        sign_input in = {
                .method = "GET",
                .host = host,
                .path = req.path,
                .query = req.query,
                .n_query = req.n_query,
                .action = req.action,
                .version = req.version,
                .date = date,
                .nonce = nonce,
        };
        sign_output out = {};
        assert_int_equal(sign_request(&in, "testid", "testsecret", &out), 0);
        char want[512];
        snprintf(want, sizeof want, "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=%s,Signature=%s",
                 out.signed_headers, out.signature);
        assert_string_equal(auth, want);
        assert_string_equal(out.signed_headers,
                            "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version");
        sign_output_done(&out);
        assert_false(f.srv.saw_secret);

        api_stats st;
        api_client_stats(f.api, &st);
        assert_int_equal(st.calls_sent, 1);
        assert_int_equal(st.rate_limit_waits, 0);
        assert_int_equal(st.queued, 0);
        assert_int_equal(st.in_flight, 0);
        fixture_teardown(&f);
}

static void test_put_with_sts_token(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, "sts-token-xyz");

        api_request req = simple_request("PUT", "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder");
        req.action = "AbortAndRollbackChangeOrder";
        req.query[0] = (query_param){ "ChangeOrderId", "765fa5c0-9ebb-4bb4-b383-1f8854470001" };
        got g = { .name = "put" };
        assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTION, on_done, &g, NULL), 0);
        WAIT_FOR(f.e, g.calls == 1, 10);
        assert_int_equal(g.res.outcome, API_OK);

        const srv_req *r = &f.srv.reqs[0];
        char b[1024];
        assert_string_equal(r->method, "PUT");
        assert_string_equal(r->target, "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder?ChangeOrderId="
                                        "765fa5c0-9ebb-4bb4-b383-1f8854470001");
        assert_string_equal(req_header(r, "content-length", b, sizeof b), "0");
        assert_null(req_header(r, "content-type", b, sizeof b));
        assert_null(req_header(r, "transfer-encoding", b, sizeof b));
        assert_null(req_header(r, "expect", b, sizeof b));
        assert_string_equal(req_header(r, "x-acs-security-token", b, sizeof b), "sts-token-xyz");
        assert_non_null(req_header(r, "authorization", b, sizeof b));
        assert_non_null(strstr(b, "x-acs-security-token"));
        assert_false(f.srv.saw_secret);
        fixture_teardown(&f);
}

static void test_error_answers_through_the_stack(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);

        api_request throttle = simple_request("GET", "/throttle");
        api_request html = simple_request("POST", "/html503");
        got g1 = { .name = "throttle" }, g2 = { .name = "html" };
        assert_int_equal(api_submit(f.api, f.base, &throttle, API_PRIO_IDLE, on_done, &g1, NULL), 0);
        assert_int_equal(api_submit(f.api, f.base, &html, API_PRIO_IDLE, on_done, &g2, NULL), 0);
        WAIT_FOR(f.e, g1.calls == 1 && g2.calls == 1, 10);

        assert_int_equal(g1.res.outcome, API_THROTTLED);
        assert_int_equal(g1.res.http_status, 400);
        assert_string_equal(g1.res.code, "Throttling.User");
        assert_true(g1.res.maybe_delivered);
        assert_int_equal(g2.res.outcome, API_TRANSIENT);
        assert_int_equal(g2.res.http_status, 503);
        assert_non_null(strstr(g2.res.message, "HTML error page"));
        assert_string_equal(server_find(&f.srv, "/html503")->method, "POST");
        fixture_teardown(&f);
}

static void test_timeout_is_transient_and_maybe_delivered(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 300 * USEC_PER_MSEC, NULL);

        api_request req = simple_request("PUT", "/slow");
        got g = { .name = "slow" };
        uint64_t start = now_monotonic_usec();
        assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTION, on_done, &g, NULL), 0);
        WAIT_FOR(f.e, g.calls == 1, 10);

        assert_int_equal(g.res.outcome, API_TRANSIENT);
        assert_int_equal(g.res.http_status, 0);
        assert_true(g.res.maybe_delivered); /* the server got it: it may have acted */
        assert_string_equal(g.res.message, "timeout after 300ms");
        assert_true(g.at_usec - start >= 300 * USEC_PER_MSEC);
        assert_non_null(server_find(&f.srv, "/slow"));
        /* curl hung up: the server sees the connection close */
        WAIT_FOR(f.e, f.srv.n_conns == 0, 10);
        fixture_teardown(&f);
}

static void test_connection_refused_is_not_delivered(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);

        int fd = loopback_socket(); /* bound, never listening: connects are refused */
        char base[64];
        snprintf(base, sizeof base, "http://127.0.0.1:%u", bound_port(fd));

        api_request req = simple_request("PUT", "/pop/v1/sam/changeorder/AbortChangeOrder");
        got g = { .name = "refused" };
        assert_int_equal(api_submit(f.api, base, &req, API_PRIO_ACTION, on_done, &g, NULL), 0);
        WAIT_FOR(f.e, g.calls == 1, 10);
        close(fd);

        assert_int_equal(g.res.outcome, API_TRANSIENT);
        assert_int_equal(g.res.http_status, 0);
        assert_false(g.res.maybe_delivered);
        assert_true(strlen(g.res.message) > 0);
        fixture_teardown(&f);
}

static void test_response_too_large_fails_cleanly(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 10 * USEC_PER_SEC, NULL);

        api_request streamed = simple_request("GET", "/big");
        api_request declared = simple_request("GET", "/bigcl");
        got gs[2] = { { .name = "big" }, { .name = "bigcl" } };
        assert_int_equal(api_submit(f.api, f.base, &streamed, API_PRIO_IDLE, on_done, &gs[0], NULL), 0);
        assert_int_equal(api_submit(f.api, f.base, &declared, API_PRIO_IDLE, on_done, &gs[1], NULL), 0);
        WAIT_FOR(f.e, gs[0].calls == 1 && gs[1].calls == 1, 20);

        for (got *g = gs; g < gs + 2; g++) {
                if (g->res.outcome != API_TRANSIENT || !strstr(g->res.message, "response too large"))
                        fail_msg("%s: %s '%s'", g->name, api_outcome_name(g->res.outcome), g->res.message);
                assert_int_equal(g->res.http_status, 0);
                assert_true(g->res.maybe_delivered);
        }
        WAIT_FOR(f.e, f.srv.n_conns == 0, 10);
        fixture_teardown(&f);
}

/* Submitted together under a limit of one call per window: ACTION first,
 * then ACTIVE, then IDLE in FIFO order; an ACTION submitted while the others
 * wait jumps the queue. */
static got prio_got[5];
static api_client *prio_api;
static const char *prio_base;

static void on_first_action(const api_result *r, void *userdata) {
        on_done(r, userdata);
        api_request req = simple_request("GET", "/action2");
        assert_int_equal(api_submit(prio_api, prio_base, &req, API_PRIO_ACTION, on_done, &prio_got[4], NULL), 0);
}

static void test_priority_order_under_rate_limit(void **state) {
        fixture f;
        fixture_setup(&f, 1, 200 * USEC_PER_MSEC, 5 * USEC_PER_SEC, NULL);
        prio_api = f.api;
        prio_base = f.base;
        n_done = 0;
        memset(prio_got, 0, sizeof prio_got);
        prio_got[0].name = "/idle1";
        prio_got[1].name = "/active";
        prio_got[2].name = "/action1";
        prio_got[3].name = "/idle2";
        prio_got[4].name = "/action2";

        static const api_priority prios[] = { API_PRIO_IDLE, API_PRIO_ACTIVE, API_PRIO_ACTION, API_PRIO_IDLE };
        for (size_t i = 0; i < 4; i++) {
                api_request req = simple_request("GET", prio_got[i].name);
                assert_int_equal(api_submit(f.api, f.base, &req, prios[i],
                                            i == 2 ? on_first_action : on_done, &prio_got[i], NULL),
                                 0);
        }
        api_stats st;
        api_client_stats(f.api, &st);
        assert_int_equal(st.queued, 4);

        WAIT_FOR(f.e, n_done == 5, 20);
        /* Actions first; the idle share may let the idle app that waited
         * longest go before the look at the release in flight (budget.h),
         * but the look never waits behind the round robin's second call. */
        static const char *const want[] = { "/action1", "/action2" };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                if (strncmp(f.srv.reqs[i].target, want[i], strlen(want[i])) != 0)
                        fail_msg("arrival %zu: %s, want %s", i, f.srv.reqs[i].target, want[i]);
                assert_string_equal(done_order[i], want[i]);
        }
        assert_int_equal(strncmp(f.srv.reqs[4].target, "/idle2", 6), 0);
        api_client_stats(f.api, &st);
        assert_int_equal(st.calls_sent, 5);
        assert_int_equal(st.rate_limit_waits, 4); /* everyone but the first waited, counted once */
        fixture_teardown(&f);
}

/* 3 calls per 300 ms, 9 calls at once: as the server sees them, no 300 ms
 * window holds more than 3. */
static void test_rate_limit_pacing(void **state) {
        fixture f;
        uint64_t window = 300 * USEC_PER_MSEC;
        fixture_setup(&f, 3, window, 5 * USEC_PER_SEC, NULL);
        got g[9] = {};
        char names[9][16];
        uint64_t start = now_monotonic_usec();
        for (size_t i = 0; i < 9; i++) {
                snprintf(names[i], sizeof names[i], "/p%zu", i);
                g[i].name = names[i];
                api_request req = simple_request("GET", names[i]);
                assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTIVE, on_done, &g[i], NULL), 0);
        }
        n_done = 0;
        WAIT_FOR(f.e, n_done == 9, 20);

        assert_int_equal(f.srv.n_reqs, 9);
        for (size_t i = 3; i < 9; i++) {
                uint64_t gap = f.srv.reqs[i].arrived_usec - f.srv.reqs[i - 3].arrived_usec;
                if (gap < window)
                        fail_msg("arrivals %zu and %zu only %llu us apart: 4 calls in one window", i - 3, i,
                                 (unsigned long long)gap);
        }
        /* paced, not stalled: three batches, two waits of window + margin */
        assert_true(f.srv.reqs[8].arrived_usec - start < 2 * (window + 250 * USEC_PER_MSEC) + 2 * USEC_PER_SEC);
        for (size_t i = 0; i < 9; i++)
                assert_int_equal(g[i].res.outcome, API_OK);
        api_stats st;
        api_client_stats(f.api, &st);
        assert_int_equal(st.calls_sent, 9);
        /* the pacer spreads the first burst too: at least the six the window holds back */
        assert_true(st.rate_limit_waits >= 6);
        fixture_teardown(&f);
}

static void test_cancel_in_flight(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);

        api_request slow = simple_request("GET", "/slow");
        got gs = { .name = "slow" };
        api_call *call = NULL;
        assert_int_equal(api_submit(f.api, f.base, &slow, API_PRIO_IDLE, on_done, &gs, &call), 0);
        WAIT_FOR(f.e, server_find(&f.srv, "/slow") != NULL, 10);
        api_stats st;
        api_client_stats(f.api, &st);
        assert_int_equal(st.in_flight, 1);

        api_call_cancel(call);
        api_client_stats(f.api, &st);
        assert_int_equal(st.in_flight, 0);
        /* the connection is really dropped */
        WAIT_FOR(f.e, f.srv.n_conns == 0, 10);

        api_request ok = simple_request("GET", "/ok");
        got go = { .name = "ok" };
        assert_int_equal(api_submit(f.api, f.base, &ok, API_PRIO_IDLE, on_done, &go, NULL), 0);
        WAIT_FOR(f.e, go.calls == 1, 10);
        assert_int_equal(gs.calls, 0);
        fixture_teardown(&f);
}

static api_call *cancel_target;
static got cancel_d;
static api_client *cancel_api;
static const char *cancel_base;

static void on_done_cancel_other(const api_result *r, void *userdata) {
        on_done(r, userdata);
        api_call_cancel(cancel_target); /* queued, waiting for the window */
        api_request req = simple_request("GET", "/d");
        assert_int_equal(api_submit(cancel_api, cancel_base, &req, API_PRIO_IDLE, on_done, &cancel_d, NULL), 0);
}

static void test_cancel_queued(void **state) {
        fixture f;
        fixture_setup(&f, 1, 100 * USEC_PER_MSEC, 5 * USEC_PER_SEC, NULL);
        cancel_api = f.api;
        cancel_base = f.base;
        cancel_d = (got){ .name = "/d" };

        got ga = { .name = "/a" }, gb = { .name = "/b" }, gc = { .name = "/c" };
        api_request a = simple_request("GET", "/a"), b = simple_request("GET", "/b"),
                    c = simple_request("GET", "/c");
        api_call *call_b = NULL;
        assert_int_equal(api_submit(f.api, f.base, &a, API_PRIO_ACTION, on_done_cancel_other, &ga, NULL), 0);
        assert_int_equal(api_submit(f.api, f.base, &b, API_PRIO_IDLE, on_done, &gb, &call_b), 0);
        assert_int_equal(api_submit(f.api, f.base, &c, API_PRIO_IDLE, on_done, &gc, &cancel_target), 0);
        api_call_cancel(call_b); /* before anything left */

        WAIT_FOR(f.e, cancel_d.calls == 1, 10);
        assert_int_equal(ga.calls, 1);
        assert_int_equal(gb.calls, 0);
        assert_int_equal(gc.calls, 0);
        assert_int_equal(f.srv.n_reqs, 2);
        assert_string_equal(f.srv.reqs[0].target, "/a?AppId=app-1");
        assert_string_equal(f.srv.reqs[1].target, "/d?AppId=app-1");
        api_stats st;
        api_client_stats(f.api, &st);
        assert_int_equal(st.queued, 0);
        assert_int_equal(st.calls_sent, 2);
        fixture_teardown(&f);
}

/* The last user may free the client from inside a callback. */
static api_client *free_me;

static void on_done_free_client(const api_result *r, void *userdata) {
        on_done(r, userdata);
        api_client_free(free_me);
        free_me = NULL;
}

static void test_free_api_client_from_callback(void **state) {
        fixture f;
        fixture_setup(&f, 2, 60 * USEC_PER_SEC, 5 * USEC_PER_SEC, NULL);
        free_me = f.api;

        got g[4] = { { .name = "/slow" }, { .name = "/ok" }, { .name = "/q1" }, { .name = "/q2" } };
        for (size_t i = 0; i < 4; i++) {
                api_request req = simple_request("GET", g[i].name);
                assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTION,
                                            i == 1 ? on_done_free_client : on_done, &g[i], NULL),
                                 0);
                if (i == 0) /* in flight at the server before the others leave */
                        WAIT_FOR(f.e, server_find(&f.srv, "/slow") != NULL, 10);
        }
        WAIT_FOR(f.e, g[1].calls == 1, 10);
        f.api = NULL;
        /* the in-flight /slow was dropped, the queued ones never went */
        WAIT_FOR(f.e, f.srv.n_conns == 0, 10);
        assert_int_equal(g[0].calls + g[2].calls + g[3].calls, 0);
        assert_int_equal(f.srv.n_reqs, 2);
        fixture_teardown(&f);
}

/* http.c directly: the client freed from inside a completion. */
typedef struct http_got {
        int calls;
        long status;
        char body[256];
        http_client **free_client;
} http_got;

static void on_http(const http_response *resp, void *userdata) {
        http_got *g = userdata;
        g->calls++;
        g->status = resp->status;
        snprintf(g->body, sizeof g->body, "%s", resp->body);
        assert_int_equal(strlen(resp->body), resp->body_len);
        if (g->free_client) {
                http_client_free(*g->free_client);
                *g->free_client = NULL;
        }
}

static void test_http_direct_and_free_from_callback(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);
        api_client_free(f.api);
        f.api = NULL;

        char url[128], slow_url[128];
        snprintf(url, sizeof url, "%s/token", f.base);
        snprintf(slow_url, sizeof slow_url, "%s/slow", f.base);
        const char *headers[] = { "X-aliyun-ecs-metadata-token-ttl-seconds: 21600" };
        http_request put = { .method = "PUT", .url = url, .headers = headers, .n_headers = 1 };
        http_request slow = { .method = "GET", .url = slow_url };
        http_request bad = { .method = "DELETE", .url = url };

        http_got gs = {}, gp = { .free_client = &f.http };
        assert_int_equal(http_submit(f.http, &bad, on_http, &gs, NULL), -EINVAL);
        assert_int_equal(http_submit(f.http, &slow, on_http, &gs, NULL), 0);
        WAIT_FOR(f.e, server_find(&f.srv, "/slow") != NULL, 10);
        assert_int_equal(http_submit(f.http, &put, on_http, &gp, NULL), 0);
        assert_int_equal(http_in_flight(f.http), 2);

        WAIT_FOR(f.e, gp.calls == 1, 10);
        assert_null(f.http);
        assert_int_equal(gp.status, 200);
        assert_non_null(strstr(gp.body, "\"Path\":\"/token\""));
        WAIT_FOR(f.e, f.srv.n_conns == 0, 10);
        assert_int_equal(gs.calls, 0);

        const srv_req *r = server_find(&f.srv, "/token");
        char b[256];
        assert_string_equal(r->method, "PUT");
        assert_string_equal(req_header(r, "X-aliyun-ecs-metadata-token-ttl-seconds", b, sizeof b), "21600");
        assert_string_equal(req_header(r, "content-length", b, sizeof b), "0");
        assert_null(req_header(r, "content-type", b, sizeof b));
        fixture_teardown(&f);
}

/* A reload keeps the window: calls already made still count. */
static void test_reconfigure_keeps_the_window(void **state) {
        fixture f;
        fixture_setup(&f, 2, 60 * USEC_PER_SEC, 5 * USEC_PER_SEC, NULL);
        got g[4] = { { .name = "/a" }, { .name = "/b" }, { .name = "/c" }, { .name = "/d" } };
        api_request req = simple_request("GET", "/x");
        api_stats st;

        assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTION, on_done, &g[0], NULL), 0);
        assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTION, on_done, &g[1], NULL), 0);
        WAIT_FOR(f.e, g[0].calls == 1 && g[1].calls == 1, 10);

        /* one more slot in the same minute, not three */
        api_client_options o = { .rate_limit = 3, .rate_window_usec = 60 * USEC_PER_SEC,
                                 .timeout_usec = 5 * USEC_PER_SEC };
        assert_int_equal(api_client_reconfigure(f.api, &o), 0);
        assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTION, on_done, &g[2], NULL), 0);
        assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTION, on_done, &g[3], NULL), 0);
        WAIT_FOR(f.e, g[2].calls == 1, 10);
        api_client_stats(f.api, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(st.rate_limit_waits, 1);
        assert_int_equal(g[3].calls, 0);

        /* a lower limit keeps the newest stamps */
        o.rate_limit = 1;
        assert_int_equal(api_client_reconfigure(f.api, &o), 0);
        assert_true(sd_event_run(f.e, 0) >= 0);
        api_client_stats(f.api, &st);
        assert_int_equal(st.queued, 1);

        /* lifting the limit releases the queued call at once */
        o.rate_limit = 0;
        assert_int_equal(api_client_reconfigure(f.api, &o), 0);
        WAIT_FOR(f.e, g[3].calls == 1, 10);
        api_client_stats(f.api, &st);
        assert_int_equal(st.calls_sent, 4);
        assert_int_equal(f.srv.n_reqs, 4);
        fixture_teardown(&f);
}

/* Without valid credentials nothing leaves; freeing drops the call silently. */
static void test_no_credentials_no_request(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);
        api_client_free(f.api);
        cred_provider_free(f.creds);
        credentials c = {
                .access_key_id = strdup("testid"),
                .access_key_secret = strdup("testsecret"),
                .security_token = strdup("expired-token"),
                .expiration_ms = 1000, /* 1970 */
        };
        assert_int_equal(cred_provider_new_static(&c, &f.creds), 0);
        api_client_options o = { .timeout_usec = 5 * USEC_PER_SEC };
        assert_int_equal(api_client_new(f.e, f.http, f.creds, &o, &f.api), 0);

        got g = { .name = "nocreds" };
        api_request req = simple_request("GET", "/x");
        assert_int_equal(api_submit(f.api, f.base, &req, API_PRIO_ACTION, on_done, &g, NULL), 0);
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f.e, 0) >= 0);
        api_stats st;
        api_client_stats(f.api, &st);
        assert_int_equal(st.queued, 1);
        assert_int_equal(st.calls_sent, 0);
        assert_int_equal(f.srv.n_reqs, 0);
        assert_int_equal(http_in_flight(f.http), 0);
        fixture_teardown(&f);
        assert_int_equal(g.calls, 0);
}

/* Polls reuse one connection (no new TCP connection per poll in steady
 * state); every PUT, a call that changes something, gets a fresh one and
 * closes it, so libcurl can never silently re-send it on a dead reused one. */
static void test_polls_reuse_connections_actions_do_not(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);
        api_request get = simple_request("GET", "/ka/poll");
        api_request put = simple_request("PUT", "/ka/act");
        got g[8] = {};
        http_stats hs;

        for (int i = 0; i < 5; i++) {
                assert_int_equal(api_submit(f.api, f.base, &get, API_PRIO_IDLE, on_done, &g[i], NULL), 0);
                WAIT_FOR(f.e, g[i].calls == 1, 10);
                assert_int_equal(g[i].res.outcome, API_OK);
        }
        assert_int_equal(f.srv.n_accepted, 1);
        http_client_stats(f.http, &hs);
        assert_int_equal(hs.requests, 5);
        assert_int_equal(hs.new_connections, 1);

        for (int i = 5; i < 7; i++) {
                assert_int_equal(api_submit(f.api, f.base, &put, API_PRIO_ACTION, on_done, &g[i], NULL), 0);
                WAIT_FOR(f.e, g[i].calls == 1, 10);
                assert_int_equal(g[i].res.outcome, API_OK);
                /* its own connection, closed after it: only the idle poll one is left */
                assert_int_equal(f.srv.n_accepted, (size_t)i - 3);
                WAIT_FOR(f.e, f.srv.n_conns == 1, 10);
        }
        http_client_stats(f.http, &hs);
        assert_int_equal(hs.new_connections, 3);
        assert_int_equal(hs.fresh_requests, 2);

        /* and polls still go over the kept connection */
        assert_int_equal(api_submit(f.api, f.base, &get, API_PRIO_IDLE, on_done, &g[7], NULL), 0);
        WAIT_FOR(f.e, g[7].calls == 1, 10);
        assert_int_equal(f.srv.n_accepted, 3);
        fixture_teardown(&f);
}

typedef struct limit_got {
        int calls;
        long status;
        int transport_error;
        char error[256];
} limit_got;

static void on_limit(const http_response *resp, void *userdata) {
        limit_got *g = userdata;
        g->calls++;
        g->status = resp->status;
        g->transport_error = resp->transport_error;
        snprintf(g->error, sizeof g->error, "%s", resp->error ? resp->error : "");
}

/* Limits are per request: one caller's small cap does not touch another's. */
static void test_http_per_request_limits(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);
        char url[128];
        snprintf(url, sizeof url, "%s/ka/limits", f.base);
        http_request small = { .method = "GET", .url = url, .max_response = 16 };
        http_request plain = { .method = "GET", .url = url };
        limit_got a = {}, b = {};

        assert_int_equal(http_submit(f.http, &small, on_limit, &a, NULL), 0);
        assert_int_equal(http_submit(f.http, &plain, on_limit, &b, NULL), 0);
        WAIT_FOR(f.e, a.calls == 1 && b.calls == 1, 10);
        assert_int_equal(a.status, 0);
        assert_int_not_equal(a.transport_error, 0);
        assert_string_equal(a.error, "response too large (over 16 bytes)");
        assert_int_equal(b.status, 200);

        /* a short total timeout on a request that is never answered */
        char slow[128];
        snprintf(slow, sizeof slow, "%s/slow", f.base);
        http_request t = { .method = "GET", .url = slow, .timeout_usec = 200 * USEC_PER_MSEC };
        limit_got c = {};
        uint64_t t0 = now_monotonic_usec();
        assert_int_equal(http_submit(f.http, &t, on_limit, &c, NULL), 0);
        WAIT_FOR(f.e, c.calls == 1, 10);
        assert_true(now_monotonic_usec() - t0 < 3 * USEC_PER_SEC);
        assert_string_equal(c.error, "timeout after 200ms");

        /* a secret-bearing request switches libcurl's allocator to wiping */
        http_request w = { .method = "GET", .url = url, .wipe = 1 };
        limit_got d = {};
        assert_int_equal(http_submit(f.http, &w, on_limit, &d, NULL), 0);
        assert_true(http_wiping_active());
        WAIT_FOR(f.e, d.calls == 1, 10);
        assert_int_equal(d.status, 200);
        fixture_teardown(&f);
}

/* A host name goes through libcurl's resolver, whose own socket is closed
 * behind our back: its fd number is then reused by the connection. */
static void test_http_by_name(void **state) {
        fixture f;
        fixture_setup(&f, 0, 0, 5 * USEC_PER_SEC, NULL);
        char url[128];
        snprintf(url, sizeof url, "http://localhost:%u/ka/byname", f.srv.port);
        for (int i = 0; i < 6; i++) {
                http_request r = { .method = "GET", .url = url, .fresh_connection = i % 2 };
                limit_got g = {};
                assert_int_equal(http_submit(f.http, &r, on_limit, &g, NULL), 0);
                WAIT_FOR(f.e, g.calls == 1, 10);
                if (g.status != 200)
                        fail_msg("request %d: status %ld, error %s", i, g.status, g.error);
        }
        fixture_teardown(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_classify_table),
                cmocka_unit_test(test_classify_long_fields_are_truncated),
                cmocka_unit_test(test_classify_hostile_bodies),
                cmocka_unit_test(test_outcome_names),
                cmocka_unit_test(test_get_round_trip_is_signed),
                cmocka_unit_test(test_put_with_sts_token),
                cmocka_unit_test(test_error_answers_through_the_stack),
                cmocka_unit_test(test_timeout_is_transient_and_maybe_delivered),
                cmocka_unit_test(test_connection_refused_is_not_delivered),
                cmocka_unit_test(test_response_too_large_fails_cleanly),
                cmocka_unit_test(test_priority_order_under_rate_limit),
                cmocka_unit_test(test_rate_limit_pacing),
                cmocka_unit_test(test_cancel_in_flight),
                cmocka_unit_test(test_cancel_queued),
                cmocka_unit_test(test_free_api_client_from_callback),
                cmocka_unit_test(test_http_direct_and_free_from_callback),
                cmocka_unit_test(test_reconfigure_keeps_the_window),
                cmocka_unit_test(test_no_credentials_no_request),
                cmocka_unit_test(test_polls_reuse_connections_actions_do_not),
                cmocka_unit_test(test_http_per_request_limits),
                cmocka_unit_test(test_http_by_name),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
