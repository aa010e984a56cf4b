/* SPDX-License-Identifier: MIT */
/* listener_core without sockets: routing, token, body limits, one answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "listener_core.h"
#include "util.h"

#define TOKEN "tok-123"

typedef struct answer {
        unsigned n, status;
        char hname[32], hvalue[64];
        char body[256];
} answer;

static int on_send(void *ctx, unsigned status, const char *content_type, char *body, size_t len,
                   const char *hname, const char *hvalue) {
        (void)content_type;
        answer *a = ctx;
        a->n++;
        a->status = status;
        snprintf(a->hname, sizeof a->hname, "%s", hname ? hname : "");
        snprintf(a->hvalue, sizeof a->hvalue, "%s", hvalue ? hvalue : "");
        snprintf(a->body, sizeof a->body, "%.*s", (int)(len < 255 ? len : 255), body ? body : "");
        free(body);
        return 0;
}

static const char *const *req_headers;
static const char *lookup(void *ctx, const char *name) {
        (void)ctx;
        for (size_t i = 0; req_headers && req_headers[i]; i += 2)
                if (strcasecmp(req_headers[i], name) == 0)
                        return req_headers[i + 1];
        return NULL;
}

static size_t seen_len;
static int echo_len(void *userdata, const listener_request *rq) {
        (void)userdata;
        seen_len = rq->len;
        char *b = strdup_printf("%zu", rq->len);
        return listener_reply(rq, 200, "text/plain", b, b ? strlen(b) : 0, NULL, NULL);
}

static unsigned rejected_status;
static void on_rejected(void *userdata, unsigned status, const char *from) {
        (void)userdata;
        (void)from;
        rejected_status = status;
}

typedef struct tcase {
        const char *desc;
        const char *method, *path;
        const char *headers[8];
        size_t body_len;      /* sent in 7 KiB pieces */
        unsigned status;      /* the one answer */
        bool before_body;     /* answered at begin */
        const char *hname, *hvalue;
        unsigned rejected;
} tcase;

#define AUTH "Authorization", "Bearer " TOKEN

static const tcase cases[] = {
        { "GET routed", "GET", "/s", { NULL }, 0, 200, true, NULL, NULL, 0 },
        { "HEAD as GET", "HEAD", "/s", { NULL }, 0, 200, true, NULL, NULL, 0 },
        { "unknown path", "GET", "/x", { NULL }, 0, 404, true, NULL, NULL, 0 },
        { "wrong method", "DELETE", "/s", { NULL }, 0, 405, true, "Allow", "GET, HEAD", 0 },
        { "POST route via GET", "GET", "/p", { NULL }, 0, 405, true, "Allow", "POST", 0 },
        { "no token", "POST", "/p", { "Content-Length", "10", NULL }, 10, 401, false, "WWW-Authenticate", "Bearer",
          401 },
        { "bad token", "POST", "/p", { "Authorization", "Bearer nope", "Content-Length", "10", NULL }, 10, 401, false,
          "WWW-Authenticate", "Bearer", 401 },
        { "body", "POST", "/p", { AUTH, "Content-Length", "20000", NULL }, 20000, 200, false, NULL, NULL, 0 },
        { "exactly 1 MiB", "POST", "/p", { AUTH, "Content-Length", "1048576", NULL }, 1048576, 200, false, NULL, NULL,
          0 },
        { "declared over 1 MiB: drained, 413", "POST", "/p", { AUTH, "Content-Length", "1048577", NULL }, 1048577, 413,
          false, NULL, NULL, 413 },
        { "declared over the drain limit: 413 at once", "POST", "/p", { AUTH, "Content-Length", "99999999", NULL }, 0,
          413, true, NULL, NULL, 413 },
        { "100-continue over the limit: at once", "POST", "/p",
          { AUTH, "Content-Length", "2000000", "Expect", "100-continue", NULL }, 0, 413, true, NULL, NULL, 413 },
        { "chunked over 1 MiB: 413", "POST", "/p", { AUTH, NULL }, 1048577, 413, false, NULL, NULL, 413 },
        /* issue 12: cut without an answer at 4 MiB in 0.1 */
        { "chunked 9 MiB: still 413", "POST", "/p", { AUTH, NULL }, 9u << 20, 413, false, NULL, NULL, 413 },
        { "negative length", "POST", "/p", { AUTH, "Content-Length", "-1", NULL }, 0, 413, true, NULL, NULL, 413 },
};

static void test_requests(void **state) {
        (void)state;
        listener_table t = { .token = TOKEN, .token_len = strlen(TOKEN) };
        listener_route get = { .method = "GET", .path = "/s", .handler = echo_len };
        listener_route post = { .method = "POST", .path = "/p", .handler = echo_len, .needs_token = true,
                                .rejected = on_rejected };
        assert_int_equal(listener_table_add(&t, &get), 0);
        assert_int_equal(listener_table_add(&t, &post), 0);
        assert_int_equal(listener_table_add(&t, &post), -EEXIST);

        static char piece[7 * 1024];
        memset(piece, ' ', sizeof piece);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const tcase *c = &cases[i];
                answer a = { 0 };
                rejected_status = 0;
                seen_len = 0;
                req_headers = c->headers;
                listener_conn *lc = listener_conn_new(on_send, &a);
                assert_non_null(lc);
                listener_step st = listener_conn_begin(lc, &t, c->method, c->path, "test", lookup, NULL);
                if (c->before_body) {
                        if (st != LISTENER_ANSWERED || listener_conn_end(lc) != LISTENER_CLOSE)
                                fail_msg("%s: not answered at once (%d)", c->desc, st);
                } else {
                        if (st != LISTENER_READ_BODY)
                                fail_msg("%s: answered before the body", c->desc);
                        for (size_t o = 0; o < c->body_len; o += sizeof piece) {
                                size_t n = c->body_len - o < sizeof piece ? c->body_len - o : sizeof piece;
                                if (listener_conn_body(lc, piece, n) != LISTENER_READ_BODY)
                                        fail_msg("%s: cut at %zu", c->desc, o);
                        }
                        if (listener_conn_end(lc) != LISTENER_ANSWERED)
                                fail_msg("%s: no answer at the end", c->desc);
                }
                if (a.n != 1 || a.status != c->status)
                        fail_msg("%s: %u answers, status %u (expected %u)", c->desc, a.n, a.status, c->status);
                if (c->hname && (!streq(a.hname, c->hname) || !streq(a.hvalue, c->hvalue)))
                        fail_msg("%s: header %s: %s", c->desc, a.hname, a.hvalue);
                if (rejected_status != c->rejected)
                        fail_msg("%s: rejected hook saw %u", c->desc, rejected_status);
                if (c->status == 200 && !streq(c->method, "GET") && !streq(c->method, "HEAD") &&
                    seen_len != c->body_len)
                        fail_msg("%s: handler saw %zu bytes", c->desc, seen_len);
                listener_conn_free(lc);
        }
        listener_table_done(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_requests),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
