/* SPDX-License-Identifier: MIT */
/* The ECS RAM role provider against a fake metadata server on the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "credentials.h"
#include "credentials_test.h"
#include "http.h"
#include "log.h"
#include "util.h"

typedef struct recorded {
        char method[8];
        char path[256];
        char ttl[32];
        char token[128];
} recorded;

typedef struct fake_metadata {
        sd_event *event;
        int listen_fd;
        sd_event_source *listen_source;
        uint16_t port;
        recorded req[64];
        size_t n_req;
        unsigned token_failures; /* answer the next N token requests with 500 */
        bool fail_all;
        const char *role_list;   /* body for the role listing */
        char creds_body[1024];
        const char *issued_token;
} fake_metadata;

typedef struct fake_conn {
        fake_metadata *server;
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
                        size_t len = strcspn(h, "\r\n");
                        snprintf(out, outsz, "%.*s", (int)len, h);
                        return;
                }
        }
}

static void fake_respond(fake_conn *conn) {
        fake_metadata *s = conn->server;
        recorded *rq = &s->req[s->n_req < ELEMENTSOF(s->req) ? s->n_req++ : s->n_req - 1];
        sscanf(conn->buf, "%7s %255s", rq->method, rq->path);
        header_value(conn->buf, "X-aliyun-ecs-metadata-token-ttl-seconds", rq->ttl, sizeof rq->ttl);
        header_value(conn->buf, "X-aliyun-ecs-metadata-token", rq->token, sizeof rq->token);

        int status = 404;
        const char *body = "not found";
        bool authorized = streq(rq->token, s->issued_token);
        if (s->fail_all) {
                status = 500;
                body = "down";
        } else if (streq(rq->path, "/latest/api/token") && streq(rq->method, "PUT")) {
                if (s->token_failures > 0) {
                        s->token_failures--;
                        status = 500;
                        body = "busy";
                } else if (rq->ttl[0]) {
                        status = 200;
                        body = s->issued_token;
                } else
                        status = 400;
        } else if (!authorized) {
                status = 401;
                body = "token required";
        } else if (streq(rq->path, "/latest/meta-data/ram/security-credentials/")) {
                status = 200;
                body = s->role_list;
        } else if (strncmp(rq->path, "/latest/meta-data/ram/security-credentials/", 43) == 0) {
                status = 200;
                body = s->creds_body;
        }

        char out[2048];
        int n = snprintf(out, sizeof out,
                         "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n"
                         "Content-Type: text/plain\r\n\r\n%s",
                         status, strlen(body), body);
        /* tiny: fits the socket buffer in one go */
        assert_int_equal(write(conn->fd, out, (size_t)n), n);
}

static void fake_conn_free(fake_conn *conn) {
        sd_event_source_disable_unref(conn->source);
        close(conn->fd);
        free(conn);
}

static int on_fake_conn(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        fake_conn *conn = userdata;
        ssize_t n = read(fd, conn->buf + conn->len, sizeof conn->buf - 1 - conn->len);
        if (n < 0 && errno == EAGAIN)
                return 0;
        if (n <= 0) {
                fake_conn_free(conn);
                return 0;
        }
        conn->len += (size_t)n;
        conn->buf[conn->len] = 0;
        /* bodyless requests only (PUT with Content-Length: 0 and GETs) */
        if (strstr(conn->buf, "\r\n\r\n")) {
                fake_respond(conn);
                fake_conn_free(conn);
        }
        return 0;
}

static int on_fake_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        fake_metadata *s = userdata;
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

static void fake_start(fake_metadata *s, sd_event *e) {
        *s = (fake_metadata){ .event = e, .role_list = "test-role\n", .issued_token = "t0k3n-metadata" };
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(s->listen_fd >= 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(s->listen_fd, 16), 0);
        socklen_t sl = sizeof sa;
        assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&sa, &sl), 0);
        s->port = ntohs(sa.sin_port);
        assert_int_equal(sd_event_add_io(e, &s->listen_source, s->listen_fd, EPOLLIN, on_fake_accept, s),
                         0);
}

static void fake_stop(fake_metadata *s) {
        sd_event_source_disable_unref(s->listen_source);
        close(s->listen_fd);
}

static void fake_set_credentials(fake_metadata *s, const char *id, const char *secret,
                                 const char *token, long long valid_seconds) {
        time_t t = time(NULL) + valid_seconds;
        struct tm tm;
        gmtime_r(&t, &tm);
        char exp[32];
        strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(s->creds_body, sizeof s->creds_body,
                 "{\"AccessKeyId\":\"%s\",\"AccessKeySecret\":\"%s\",\"Expiration\":\"%s\","
                 "\"SecurityToken\":\"%s\",\"LastUpdated\":\"2026-11-23T03:00:00Z\","
                 "\"Code\":\"Success\"}",
                 id, secret, exp, token);
}

/* log lines seen by the test sink */
static char log_lines[64][512];
static size_t n_log_lines;

static void capture_log(log_event ev, int priority, const log_fields *f, const char *msg) {
        assert_no_secret_in("log line", msg);
        if (n_log_lines < ELEMENTSOF(log_lines))
                snprintf(log_lines[n_log_lines++], sizeof log_lines[0], "%d %s", priority, msg);
}

static bool log_contains(const char *needle) {
        for (size_t i = 0; i < n_log_lines; i++)
                if (strstr(log_lines[i], needle))
                        return true;
        return false;
}

typedef struct ecs_fixture {
        sd_event *event;
        http_client *http;
        fake_metadata server;
        char endpoint[64];
        config cfg;
        unsigned changes;
        cred_provider *provider;
} ecs_fixture;

static int ecs_setup(void **state) {
        ecs_fixture *f = calloc(1, sizeof *f);
        if (!f || sd_event_new(&f->event) < 0 || http_client_new(f->event, &f->http) < 0)
                return -1;
        fake_start(&f->server, f->event);
        fake_set_credentials(&f->server, "STS.AK1", "s3cr3t-ecs1", "t0k3n-ecs1", 6 * 3600);
        snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:%u/", f->server.port);
        f->cfg = (config){
                .ecs_ram_role = "auto",
                .metadata_endpoint = f->endpoint,
                .timeout_usec = 5 * USEC_PER_SEC,
        };
        n_log_lines = 0;
        log_set_test_sink(capture_log);
        env_clear();
        env_set("HOME", "/nonexistent-rollguard-home");
        *state = f;
        return 0;
}

static int ecs_teardown(void **state) {
        ecs_fixture *f = *state;
        cred_provider_free(f->provider);
        http_client_free(f->http);
        fake_stop(&f->server);
        sd_event_unref(f->event);
        free(f);
        log_set_test_sink(NULL);
        env_clear();
        return 0;
}

static void on_change(void *userdata) {
        ecs_fixture *f = userdata;
        f->changes++;
}

typedef bool (*condition_fn)(ecs_fixture *f);

/* Runs the loop until cond holds or the deadline passes. */
static bool run_until(ecs_fixture *f, condition_fn cond, uint64_t timeout_usec) {
        uint64_t deadline = now_monotonic_usec() + timeout_usec;
        while (!cond(f)) {
                if (now_monotonic_usec() >= deadline)
                        return false;
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
        return true;
}

static bool have_credentials(ecs_fixture *f) {
        return cred_provider_get(f->provider) != NULL;
}

static bool second_change(ecs_fixture *f) {
        return f->changes >= 2;
}

static bool credentials_gone(ecs_fixture *f) {
        return cred_provider_get(f->provider) == NULL;
}

static bool warned(ecs_fixture *f) {
        for (size_t i = 0; i < n_log_lines; i++)
                if (log_lines[i][0] == '0' + LOG_WARNING)
                        return true;
        return false;
}

static void start_provider(ecs_fixture *f) {
        char *err = NULL;
        assert_int_equal(cred_provider_new(f->event, f->http, &f->cfg, fake_getenv, &f->provider, &err),
                         0);
        assert_null(err);
        cred_provider_on_change(f->provider, on_change, f);
        /* nothing until the fetch completes */
        assert_null(cred_provider_get(f->provider));
}

static void test_ecs_auto_role(void **state) {
        ecs_fixture *f = *state;
        start_provider(f);
        assert_true(run_until(f, have_credentials, 5 * USEC_PER_SEC));

        const credentials *c = cred_provider_get(f->provider);
        assert_string_equal(c->access_key_id, "STS.AK1");
        assert_string_equal(c->access_key_secret, "s3cr3t-ecs1");
        assert_string_equal(c->security_token, "t0k3n-ecs1");
        assert_int_equal(c->source, CRED_SOURCE_ECS_RAM_ROLE);
        assert_string_equal(c->source_detail, "test-role");
        assert_true(c->expiration_ms > now_realtime_ms() + 5 * 3600 * 1000LL);
        assert_int_equal(f->changes, 1);

        /* token first, with its TTL; then every read carries the token */
        fake_metadata *s = &f->server;
        assert_int_equal(s->n_req, 3);
        assert_string_equal(s->req[0].method, "PUT");
        assert_string_equal(s->req[0].path, "/latest/api/token");
        assert_string_equal(s->req[0].ttl, "21600");
        assert_string_equal(s->req[1].method, "GET");
        assert_string_equal(s->req[1].path, "/latest/meta-data/ram/security-credentials/");
        assert_string_equal(s->req[1].token, "t0k3n-metadata");
        assert_string_equal(s->req[2].path, "/latest/meta-data/ram/security-credentials/test-role");
        assert_string_equal(s->req[2].token, "t0k3n-metadata");
}

static void test_ecs_named_role_from_env(void **state) {
        ecs_fixture *f = *state;
        f->cfg.ecs_ram_role = NULL;
        env_set("ALIBABA_CLOUD_ECS_METADATA", "named-role");
        start_provider(f);
        assert_true(run_until(f, have_credentials, 5 * USEC_PER_SEC));

        assert_int_equal(f->server.n_req, 2); /* no discovery */
        assert_string_equal(f->server.req[1].path,
                            "/latest/meta-data/ram/security-credentials/named-role");
        assert_string_equal(cred_provider_get(f->provider)->source_detail, "named-role");
}

static void test_ecs_static_sources_first(void **state) {
        ecs_fixture *f = *state;
        env_set("ALIBABA_CLOUD_ACCESS_KEY_ID", "testid");
        env_set("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t-testsecret");
        char *err = NULL;
        assert_int_equal(cred_provider_new(f->event, f->http, &f->cfg, fake_getenv, &f->provider, &err),
                         0);
        const credentials *c = cred_provider_get(f->provider);
        assert_non_null(c);
        assert_int_equal(c->source, CRED_SOURCE_ENV);
        assert_int_equal(http_in_flight(f->http), 0);
        assert_int_equal(f->server.n_req, 0);
}

static void test_ecs_retry_after_failure(void **state) {
        ecs_fixture *f = *state;
        f->server.token_failures = 1;
        start_provider(f);
        assert_true(run_until(f, have_credentials, 5 * USEC_PER_SEC));

        assert_int_equal(f->server.n_req, 4); /* failed token, token, role, credentials */
        assert_true(log_contains("HTTP 500"));
        assert_true(log_contains("retrying in"));
        assert_int_equal(f->changes, 1);
}

/* Short-lived credentials: refreshed before expiry (on_change again, new
 * values); when refreshing keeps failing they stop being handed out. */
static void test_ecs_refresh_then_expiry(void **state) {
        ecs_fixture *f = *state;
        fake_set_credentials(&f->server, "STS.AK1", "s3cr3t-ecs1", "t0k3n-ecs1", 3);
        start_provider(f);
        assert_true(run_until(f, have_credentials, 5 * USEC_PER_SEC));
        assert_string_equal(cred_provider_get(f->provider)->access_key_id, "STS.AK1");

        fake_set_credentials(&f->server, "STS.AK2", "s3cr3t-ecs2", "t0k3n-ecs2", 3);
        assert_true(run_until(f, second_change, 10 * USEC_PER_SEC));
        const credentials *c = cred_provider_get(f->provider);
        assert_non_null(c);
        assert_string_equal(c->access_key_id, "STS.AK2");
        assert_string_equal(c->security_token, "t0k3n-ecs2");

        f->server.fail_all = true;
        assert_true(run_until(f, credentials_gone, 10 * USEC_PER_SEC));
        assert_true(log_contains("have expired"));
        assert_int_equal(f->changes, 2);
}

static void test_ecs_bad_responses(void **state) {
        ecs_fixture *f = *state;
        static const struct {
                const char *body;
                const char *log;
        } rows[] = {
                { "not json s3cr3t", "not JSON" },
                { "{\"Code\":\"Failed\",\"AccessKeyId\":\"A\"}", "Code=Failed" },
                { "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"AccessKeySecret\":\"s3cr3t-x\","
                  "\"Expiration\":\"2099-01-01T00:00:00Z\"}",
                  "SecurityToken is missing" },
                { "{\"AccessKeyId\":\"A\",\"AccessKeySecret\":\"s3cr3t-x\",\"SecurityToken\":\"t0k3n-x\","
                  "\"Expiration\":\"tomorrow\"}",
                  "Expiration" },
                { "{\"AccessKeyId\":\"A\",\"AccessKeySecret\":\"s3cr3t-x\",\"SecurityToken\":\"t0k3n-x\","
                  "\"Expiration\":\"2001-01-01T00:00:00Z\"}",
                  "expired" },
                { "{\"AccessKeyId\":\"A\",\"AccessKeySecret\":12,\"SecurityToken\":\"t0k3n-x\"}",
                  "Expiration" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                snprintf(f->server.creds_body, sizeof f->server.creds_body, "%s", rows[i].body);
                n_log_lines = 0;
                start_provider(f);
                if (!run_until(f, warned, 5 * USEC_PER_SEC))
                        fail_msg("row %zu: no warning", i);
                if (!log_contains(rows[i].log))
                        fail_msg("row %zu: no log line with \"%s\" (%s)", i, rows[i].log, log_lines[0]);
                assert_null(cred_provider_get(f->provider));
                assert_int_equal(f->changes, 0);
                f->provider = cred_provider_free(f->provider);
        }
}

static void test_ecs_role_discovery_problems(void **state) {
        ecs_fixture *f = *state;
        static const char *const lists[] = { "", "../../etc\n", "a role\n" };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                f->server.role_list = lists[i];
                f->server.n_req = 0;
                n_log_lines = 0;
                start_provider(f);
                if (!run_until(f, warned, 5 * USEC_PER_SEC))
                        fail_msg("row %zu: no warning", i);
                /* never asked for credentials of a made-up path */
                assert_int_equal(f->server.n_req, 2);
                f->provider = cred_provider_free(f->provider);
        }
}

static void test_ecs_unreachable_and_free_in_flight(void **state) {
        ecs_fixture *f = *state;
        /* a port nobody listens on: connection refused, logged, retried */
        snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:1");
        start_provider(f);
        assert_true(run_until(f, warned, 5 * USEC_PER_SEC));
        assert_true(log_contains("127.0.0.1:1"));
        f->provider = cred_provider_free(f->provider);

        /* freed with the request in flight: no callback into freed memory */
        snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:%u", f->server.port);
        start_provider(f);
        assert_int_equal(http_in_flight(f->http), 1);
        f->provider = cred_provider_free(f->provider);
        assert_int_equal(http_in_flight(f->http), 0);
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f->event, 10 * USEC_PER_MSEC) >= 0);
        assert_int_equal(f->changes, 0);
}

int main(void) {
        const struct CMUnitTest ecs_tests[] = {
                cmocka_unit_test_setup_teardown(test_ecs_auto_role, ecs_setup, ecs_teardown),
                cmocka_unit_test_setup_teardown(test_ecs_named_role_from_env, ecs_setup, ecs_teardown),
                cmocka_unit_test_setup_teardown(test_ecs_static_sources_first, ecs_setup, ecs_teardown),
                cmocka_unit_test_setup_teardown(test_ecs_retry_after_failure, ecs_setup, ecs_teardown),
                cmocka_unit_test_setup_teardown(test_ecs_refresh_then_expiry, ecs_setup, ecs_teardown),
                cmocka_unit_test_setup_teardown(test_ecs_bad_responses, ecs_setup, ecs_teardown),
                cmocka_unit_test_setup_teardown(test_ecs_role_discovery_problems, ecs_setup,
                                                ecs_teardown),
                cmocka_unit_test_setup_teardown(test_ecs_unreachable_and_free_in_flight, ecs_setup,
                                                ecs_teardown),
        };
        log_setup(LOG_TARGET_STDERR, false);
        return cmocka_run_group_tests_name("ECS RAM role", ecs_tests, NULL, NULL);
}
