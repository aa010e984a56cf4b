/* SPDX-License-Identifier: MIT */
/* src/prom/prom.c end to end against a tiny HTTP server on the same
 * sd_event loop: URL, Authorization header per auth mode, token file rules,
 * one query in flight per handle, unreachable, timeout, cancel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "prom.h"
#include "prom_parse.h"
#include "util.h"

#define VEC1(v) "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"app\":\"a\"},\"value\":[1764620000.5,\"" v "\"]}]}}"

static void test_auth_names(void **state) {
        (void) state;
        prom_auth a;
        assert_int_equal(prom_auth_from_string("token", &a), 0);
        assert_int_equal(a, PROM_AUTH_TOKEN);
        assert_int_equal(prom_auth_from_string("Bearer", &a), -EINVAL);
        assert_string_equal(prom_auth_name(PROM_AUTH_BASIC), "basic");
        assert_int_equal(prom_auth_from_string(NULL, &a), -EINVAL);
}

/* ---- URL ---- */

static void test_build_url(void **state) {
        (void) state;
        char *u = prom_build_url("http://127.0.0.1:9090/", "sum(rate(x{app=\"a b\",c=~\"5..\"}[1m])) / 2",
                                 INT64_C(1764620000123));
        assert_string_equal(u, "http://127.0.0.1:9090/api/v1/query?query=sum%28rate%28x%7Bapp%3D%22a%20b%22"
                               "%2Cc%3D~%225..%22%7D%5B1m%5D%29%29%20%2F%202&time=1764620000.123");
        free(u);
        /* ARMS addresses carry a path */
        u = prom_build_url("https://cn-hangzhou.arms.aliyuncs.com:9443/api/v1/prometheus/abc/123/cn-hangzhou",
                           "up+1&x=#", 5);
        assert_string_equal(u, "https://cn-hangzhou.arms.aliyuncs.com:9443/api/v1/prometheus/abc/123/"
                               "cn-hangzhou/api/v1/query?query=up%2B1%26x%3D%23&time=0.005");
        free(u);
}

/* ---- the client against a fake server on the loop ---- */

typedef struct fake_server {
        sd_event *event;
        int listen_fd;
        sd_event_source *listen_source;
        uint16_t port;
        unsigned requests;
        char last_path[2048];
        char last_auth[512];
        int status;
        const char *body;
        bool silent; /* read requests, never answer */
} fake_server;

typedef struct fake_conn {
        fake_server *server;
        int fd;
        sd_event_source *source;
        char buf[8192];
        size_t len;
} fake_conn;

static void header_value(const char *head, const char *name, char *out, size_t outsz) {
        out[0] = 0;
        size_t n = strlen(name);
        for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
                const char *h = l + 2;
                if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
                        h += n + 1;
                        while (*h == ' ')
                                h++;
                        snprintf(out, outsz, "%.*s", (int) strcspn(h, "\r\n"), h);
                        return;
                }
        }
}

static void fake_conn_free(fake_conn *conn) {
        sd_event_source_disable_unref(conn->source);
        close(conn->fd);
        free(conn);
}

static int on_fake_conn(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        fake_conn *conn = userdata;
        fake_server *s = conn->server;
        ssize_t n = read(fd, conn->buf + conn->len, sizeof conn->buf - 1 - conn->len);
        if (n < 0 && errno == EAGAIN)
                return 0;
        if (n <= 0) {
                fake_conn_free(conn);
                return 0;
        }
        conn->len += (size_t) n;
        conn->buf[conn->len] = 0;
        if (!strstr(conn->buf, "\r\n\r\n"))
                return 0;
        s->requests++;
        sscanf(conn->buf, "GET %2047s", s->last_path);
        header_value(conn->buf, "Authorization", s->last_auth, sizeof s->last_auth);
        if (s->silent)
                return 0; /* keep the connection open, say nothing */
        char out[4096];
        int w = snprintf(out, sizeof out,
                         "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n"
                         "Content-Type: application/json\r\n\r\n%s",
                         s->status, strlen(s->body), s->body);
        assert_int_equal(write(conn->fd, out, (size_t) w), w);
        fake_conn_free(conn);
        return 0;
}

static int on_fake_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        fake_server *s = userdata;
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        fake_conn *conn = calloc(1, sizeof *conn);
        assert_non_null(conn);
        conn->server = s;
        conn->fd = cfd;
        assert_int_equal(sd_event_add_io(s->event, &conn->source, cfd, EPOLLIN, on_fake_conn, conn), 0);
        return 0;
}

typedef struct fixture {
        sd_event *event;
        http_client *http;
        fake_server server;
        char url[64];
        char token_path[64];
        prom_client *prom;
        prom_query *query;
        unsigned done;
        prom_verdict last;
        bool free_in_callback;
} fixture;

static int setup(void **state) {
        fixture *f = calloc(1, sizeof *f);
        if (!f || sd_event_new(&f->event) < 0 || http_client_new(f->event, &f->http) < 0)
                return -1;
        fake_server *s = &f->server;
        *s = (fake_server){ .event = f->event, .status = 200, .body = VEC1("0.25") };
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            listen(s->listen_fd, 16) < 0)
                return -1;
        socklen_t sl = sizeof sa;
        if (getsockname(s->listen_fd, (struct sockaddr *) &sa, &sl) < 0)
                return -1;
        s->port = ntohs(sa.sin_port);
        if (sd_event_add_io(f->event, &s->listen_source, s->listen_fd, EPOLLIN, on_fake_accept, s) < 0)
                return -1;
        snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u/", s->port);
        snprintf(f->token_path, sizeof f->token_path, "/tmp/rollguard-test-prom-XXXXXX");
        int fd = mkstemp(f->token_path);
        if (fd < 0)
                return -1;
        close(fd);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;
        prom_query_free(f->query);
        prom_client_free(f->prom);
        http_client_free(f->http);
        sd_event_source_disable_unref(f->server.listen_source);
        close(f->server.listen_fd);
        sd_event_unref(f->event);
        unlink(f->token_path);
        free(f);
        return 0;
}

static void write_token(fixture *f, const char *text) {
        FILE *fp = fopen(f->token_path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
}

static void on_done(prom_query *q, const prom_verdict *v, void *userdata) {
        fixture *f = userdata;
        assert_ptr_equal(q, f->query);
        f->done++;
        f->last = *v;
        assert_false(prom_query_running(q));
        if (f->free_in_callback)
                f->query = prom_query_free(q);
}

static void run_until_done(fixture *f, unsigned n, uint64_t timeout_usec) {
        uint64_t deadline = now_monotonic_usec() + timeout_usec;
        while (f->done < n) {
                if (now_monotonic_usec() >= deadline)
                        fail_msg("timed out waiting for %u verdicts (have %u)", n, f->done);
                assert_true(sd_event_run(f->event, 50 * USEC_PER_MSEC) >= 0);
        }
}

static void start_client(fixture *f, const prom_options *o) {
        char *error = NULL;
        int r = prom_client_new(f->http, o, &f->prom, &error);
        if (r < 0)
                fail_msg("prom_client_new: %d %s", r, strna(error));
        assert_int_equal(prom_query_new(f->prom, on_done, f, &f->query), 0);
}

static void test_client_value_and_bearer(void **state) {
        fixture *f = *state;
        write_token(f, "s3cr3t-t0ken\n");
        start_client(f, &(prom_options){ .url = f->url, .token_file = f->token_path });
        assert_int_equal(prom_query_start(f->query, "sum(up{app=\"a\"})", INT64_C(1764620000250)), 0);
        assert_true(prom_query_running(f->query));
        assert_int_equal(f->done, 0); /* never from inside start */
        /* a second start for the same rule while one is in flight */
        assert_int_equal(prom_query_start(f->query, "up", 0), -EBUSY);
        run_until_done(f, 1, 5 * USEC_PER_SEC);

        assert_int_equal(f->last.reason, PROM_OK);
        assert_true(f->last.value == 0.25);
        assert_int_equal(f->server.requests, 1);
        assert_string_equal(f->server.last_auth, "Bearer s3cr3t-t0ken");
        assert_string_equal(f->server.last_path,
                            "/api/v1/query?query=sum%28up%7Bapp%3D%22a%22%7D%29&time=1764620000.250");
        prom_stats st;
        prom_client_stats(f->prom, &st);
        assert_int_equal(st.started, 1);
        assert_int_equal(st.busy, 1);
        assert_int_equal(st.in_flight, 0);
        assert_int_equal(st.results[PROM_OK], 1);

        /* again, now inconclusive; counted under its reason */
        f->server.body = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}";
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 2, 5 * USEC_PER_SEC);
        assert_int_equal(f->last.reason, PROM_EMPTY);
        prom_client_stats(f->prom, &st);
        assert_int_equal(st.results[PROM_EMPTY], 1);
        assert_int_equal(st.started, 2);
}

static void test_client_token_and_basic(void **state) {
        fixture *f = *state;
        write_token(f, "arms-v1-token\r\n\n");
        start_client(f, &(prom_options){ .url = f->url, .token_file = f->token_path, .auth = PROM_AUTH_TOKEN });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "arms-v1-token");

        /* basic: "ID:SECRET" -> base64, re-read on reload */
        f->query = prom_query_free(f->query);
        f->prom = prom_client_free(f->prom);
        write_token(f, "LTAIid:akSecret\n");
        start_client(f, &(prom_options){ .url = f->url, .token_file = f->token_path, .auth = PROM_AUTH_BASIC });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 2, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "Basic TFRBSWlkOmFrU2VjcmV0");

        write_token(f, "LTAIid:other");
        char *error = NULL;
        assert_int_equal(prom_client_reload(f->prom, &error), 0);
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 3, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "Basic TFRBSWlkOm90aGVy");

        /* a bad reload keeps the old token */
        write_token(f, "no-colon");
        assert_int_equal(prom_client_reload(f->prom, &error), -EINVAL);
        assert_non_null(strstr(error, "ID:SECRET"));
        assert_null(strstr(error, "no-colon"));
        free(error);
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 4, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "Basic TFRBSWlkOm90aGVy");
}

static void test_client_no_token(void **state) {
        fixture *f = *state;
        start_client(f, &(prom_options){ .url = f->url });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_string_equal(f->server.last_auth, "");
        assert_int_equal(f->last.reason, PROM_OK);
}

static void test_client_echo_is_scrubbed(void **state) {
        fixture *f = *state;
        write_token(f, "s3cr3t-t0ken");
        f->server.status = 401;
        f->server.body = "bad token s3cr3t-t0ken";
        start_client(f, &(prom_options){ .url = f->url, .token_file = f->token_path });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_int_equal(f->last.reason, PROM_HTTP_STATUS);
        assert_null(strstr(f->last.text, "s3cr3t"));
        assert_non_null(strstr(f->last.text, "HTTP 401"));
}

static void test_client_query_error(void **state) {
        fixture *f = *state;
        f->server.status = 400;
        f->server.body = "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error: unexpected end of input\"}";
        f->free_in_callback = true; /* the callback may free its query */
        start_client(f, &(prom_options){ .url = f->url });
        assert_int_equal(prom_query_start(f->query, "sum(", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_null(f->query);
        assert_int_equal(f->last.reason, PROM_QUERY_ERROR);
        assert_string_equal(f->last.text, "query error (bad_data, HTTP 400): parse error: unexpected end of input");
}

static void test_client_unreachable(void **state) {
        fixture *f = *state;
        /* a port nobody listens on: ours, after closing it */
        sd_event_source_disable_unref(TAKE_PTR(f->server.listen_source));
        close(f->server.listen_fd);
        f->server.listen_fd = -1;
        start_client(f, &(prom_options){ .url = f->url });
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_int_equal(f->last.reason, PROM_UNREACHABLE);
        assert_non_null(strstr(f->last.text, "no answer from http://127.0.0.1:"));
        /* the same cause twice reads the same (curl's "after N ms" dropped) */
        assert_null(strstr(f->last.text, " ms"));
        prom_verdict first = f->last;
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 2, 5 * USEC_PER_SEC);
        assert_string_equal(f->last.text, first.text);
        assert_int_equal(f->last.http_status, 0);
        prom_stats st;
        prom_client_stats(f->prom, &st);
        assert_int_equal(st.results[PROM_UNREACHABLE], 2);
}

static void test_client_timeout_and_cancel(void **state) {
        fixture *f = *state;
        f->server.silent = true;
        start_client(f, &(prom_options){ .url = f->url, .timeout_usec = 300 * USEC_PER_MSEC });
        uint64_t t0 = now_monotonic_usec();
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        run_until_done(f, 1, 5 * USEC_PER_SEC);
        assert_int_equal(f->last.reason, PROM_UNREACHABLE);
        assert_non_null(strstr(f->last.text, "timeout"));
        assert_true(now_monotonic_usec() - t0 >= 250 * USEC_PER_MSEC);

        /* a cancelled query never calls back and frees its slot */
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        prom_query_cancel(f->query);
        assert_false(prom_query_running(f->query));
        prom_stats st;
        prom_client_stats(f->prom, &st);
        assert_int_equal(st.in_flight, 0);
        assert_int_equal(prom_query_start(f->query, "up", 0), 0);
        /* freeing the client with a query in flight: no callback, query detached */
        f->prom = prom_client_free(f->prom);
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f->event, 10 * USEC_PER_MSEC) >= 0);
        assert_int_equal(f->done, 1);
        assert_false(prom_query_running(f->query));
        assert_int_equal(prom_query_start(f->query, "up", 0), -ESHUTDOWN);
}

typedef struct option_case {
        const char *url;
        const char *token; /* written to the token file; NULL = no token_file */
        prom_auth auth;
        int rc;
        const char *error;
} option_case;

static const option_case option_cases[] = {
        { NULL, NULL, PROM_AUTH_NONE, -EINVAL, "prometheus.url is missing" },
        { "127.0.0.1:9090", NULL, PROM_AUTH_NONE, -EINVAL, "must start with http://" },
        { "http://h:9090/?x=1", NULL, PROM_AUTH_NONE, -EINVAL, "without a query" },
        { "http://h:9090", NULL, PROM_AUTH_BEARER, -EINVAL, "auth bearer needs a token_file" },
        { "http://h:9090", "", PROM_AUTH_NONE, -EINVAL, ": empty" },
        { "http://h:9090", "\n\n", PROM_AUTH_NONE, -EINVAL, ": empty" },
        { "http://h:9090", "abc\ndef\n", PROM_AUTH_NONE, -EINVAL, "line break or control character inside (byte 4)" },
        { "http://h:9090", "abc:", PROM_AUTH_BASIC, -EINVAL, "ID:SECRET" },
        { "HTTPS://h", "tok", PROM_AUTH_NONE, 0, NULL },
};

static void test_client_options(void **state) {
        fixture *f = *state;
        for (size_t i = 0; i < ELEMENTSOF(option_cases); i++) {
                const option_case *c = &option_cases[i];
                if (c->token)
                        write_token(f, c->token);
                prom_options o = { .url = c->url, .token_file = c->token ? f->token_path : NULL, .auth = c->auth };
                prom_client *p = NULL;
                char *error = NULL;
                int r = prom_client_new(f->http, &o, &p, &error);
                if (r != c->rc || (c->error && (!error || !strstr(error, c->error))) ||
                    (!c->error && error))
                        fail_msg("options case %zu (%s): rc %d error \"%s\"", i, strna(c->url), r,
                                 strna(error));
                /* the file's content never shows up in a message */
                if (error && c->token && c->token[0] > ' ')
                        assert_null(strstr(error, c->token));
                free(error);
                prom_client_free(p);
        }
        prom_client *p = NULL;
        char *error = NULL;
        prom_options o = { .url = "http://h", .token_file = "/nonexistent/rollguard-token" };
        assert_int_equal(prom_client_new(f->http, &o, &p, &error), -ENOENT);
        assert_string_equal(error, "prometheus.token_file /nonexistent/rollguard-token: No such file or directory");
        free(error);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_auth_names),
                cmocka_unit_test(test_build_url),
                cmocka_unit_test_setup_teardown(test_client_value_and_bearer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_token_and_basic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_no_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_echo_is_scrubbed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_query_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_unreachable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_timeout_and_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_options, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
