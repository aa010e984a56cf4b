/* SPDX-License-Identifier: MIT */
#include "etcd.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define ETCD_DEFAULT_TIMEOUT_USEC (2 * USEC_PER_SEC)

struct etcd_client {
        http_client *http;
        char **endpoints;
        size_t n_endpoints;
        size_t current; /* where the next call starts: the last one that answered */
        char *user;
        char *password;
        char *token;
        char *ca_file, *cert_file, *key_file;
        uint64_t timeout_usec;
        etcd_call *calls;
};

struct etcd_call {
        etcd_client *client;
        etcd_call *prev, *next;
        etcd_request_kind kind;
        char *body;
        size_t body_len;
        bool authenticating; /* the http call in flight is the token request */
        bool auth_retried;
        size_t endpoint;
        size_t attempts;     /* endpoints tried for the current step */
        http_call *http;
        etcd_done_fn done;
        void *userdata;
};

static void call_free(etcd_call *call) {
        if (!call)
                return;
        if (call->http)
                http_call_cancel(call->http);
        free(call->body);
        free(call);
}

static void call_unlink(etcd_call *call) {
        etcd_client *c = call->client;
        if (call->prev)
                call->prev->next = call->next;
        else
                c->calls = call->next;
        if (call->next)
                call->next->prev = call->prev;
        call->prev = call->next = NULL;
}

int etcd_client_new(http_client *http, const etcd_options *opt, etcd_client **ret) {
        if (!http || !opt || opt->n_endpoints == 0 || !opt->endpoints)
                return -EINVAL;
        etcd_client *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->http = http;
        c->timeout_usec = opt->timeout_usec ? opt->timeout_usec : ETCD_DEFAULT_TIMEOUT_USEC;
        c->endpoints = calloc(opt->n_endpoints, sizeof *c->endpoints);
        if (!c->endpoints)
                goto oom;
        for (size_t i = 0; i < opt->n_endpoints; i++) {
                const char *ep = opt->endpoints[i];
                size_t n = ep ? strlen(ep) : 0;
                if (n == 0) {
                        etcd_client_free(c);
                        return -EINVAL;
                }
                while (n > 1 && ep[n - 1] == '/')
                        n--;
                c->endpoints[i] = strndup(ep, n);
                if (!c->endpoints[i])
                        goto oom;
                c->n_endpoints++;
        }
        if ((opt->user && !(c->user = strdup(opt->user))) ||
            (opt->password && !(c->password = strdup(opt->password))) ||
            (opt->ca_file && !(c->ca_file = strdup(opt->ca_file))) ||
            (opt->cert_file && !(c->cert_file = strdup(opt->cert_file))) ||
            (opt->key_file && !(c->key_file = strdup(opt->key_file))))
                goto oom;
        *ret = c;
        return 0;
oom:
        etcd_client_free(c);
        return -ENOMEM;
}

etcd_client *etcd_client_free(etcd_client *c) {
        if (!c)
                return NULL;
        while (c->calls) {
                etcd_call *call = c->calls;
                call_unlink(call);
                call_free(call);
        }
        for (size_t i = 0; i < c->n_endpoints; i++)
                free(c->endpoints[i]);
        free(c->endpoints);
        free(c->user);
        free_secret(c->password);
        free_secret(c->token);
        free(c->ca_file);
        free(c->cert_file);
        free(c->key_file);
        free(c);
        return NULL;
}

const char *etcd_current_endpoint(const etcd_client *c) {
        return c && c->n_endpoints ? c->endpoints[c->current] : NULL;
}

static void on_http(const http_response *resp, void *userdata);

/* Sends the current step (token request or the call itself) to call->endpoint. */
static int send_step(etcd_call *call) {
        etcd_client *c = call->client;
        _cleanup_secret_ char *auth_body = NULL, *auth_header = NULL;
        const char *body = call->body;
        size_t body_len = call->body_len;
        const char *headers[2] = { "Content-Type: application/json", NULL };
        size_t n_headers = 1;

        call->authenticating = c->user && !c->token;
        if (call->authenticating) {
                int r = etcd_build_request(
                        &(etcd_request){ .kind = ETCD_REQ_AUTHENTICATE,
                                         .name = c->user,
                                         .password = c->password ? c->password : "" },
                        &auth_body);
                if (r < 0)
                        return r;
                body = auth_body;
                body_len = strlen(auth_body);
        } else if (c->token) {
                /* etcd wants the bare token, no "Bearer". */
                auth_header = strdup_printf("Authorization: %s", c->token);
                if (!auth_header)
                        return -ENOMEM;
                headers[n_headers++] = auth_header;
        }

        _cleanup_free_ char *url = strdup_printf(
                "%s%s", c->endpoints[call->endpoint],
                etcd_request_path(call->authenticating ? ETCD_REQ_AUTHENTICATE : call->kind));
        if (!url)
                return -ENOMEM;
        http_request req = {
                .method = "POST",
                .url = url,
                .headers = headers,
                .n_headers = n_headers,
                .timeout_usec = c->timeout_usec,
                .body = body,
                .body_len = body_len,
                /* A reused connection that died is re-sent by curl on its own:
                 * not for a write that must happen at most once. */
                .fresh_connection = !etcd_request_idempotent(call->kind) && !call->authenticating,
                .ca_file = c->ca_file,
                .cert_file = c->cert_file,
                .key_file = c->key_file,
                /* the password (authenticate) or the token it bought */
                .wipe = auth_header != NULL || call->authenticating,
        };
        return http_submit(c->http, &req, on_http, call, &call->http);
}

/* Unlinks and frees the call, then reports r. */
static void finish(etcd_call *call, etcd_result *r) {
        etcd_done_fn done = call->done;
        void *userdata = call->userdata;
        call_unlink(call);
        call->http = NULL;
        call_free(call);
        if (done)
                done(r, userdata);
        etcd_result_done(r);
}

static void finish_error(etcd_call *call, int error, bool maybe_delivered, const char *text) {
        etcd_result r = { .error = error, .maybe_delivered = maybe_delivered };
        r.error_text = text ? strdup(text) : NULL;
        finish(call, &r);
}

static bool auth_rejected(const etcd_result *r) {
        /* Expired token: UNAUTHENTICATED; no token at all: "user name is empty". */
        return r->grpc_code == 16 ||
               (r->grpc_code == 3 && r->error_text && strstr(r->error_text, "user name is empty"));
}

static void on_http(const http_response *resp, void *userdata) {
        etcd_call *call = userdata;
        etcd_client *c = call->client;
        bool step_idempotent = call->authenticating || etcd_request_idempotent(call->kind);
        int r;

        call->http = NULL;
        if (resp->transport_error) {
                if ((step_idempotent || !resp->maybe_delivered) && ++call->attempts < c->n_endpoints) {
                        call->endpoint = (call->endpoint + 1) % c->n_endpoints;
                        r = send_step(call);
                        if (r >= 0)
                                return;
                        finish_error(call, r, false, "cannot send to etcd");
                        return;
                }
                char text[512];
                snprintf(text, sizeof text, "no etcd endpoint answered (last %s: %s)",
                         c->endpoints[call->endpoint], strna(resp->error));
                finish_error(call, -EIO, !step_idempotent && resp->maybe_delivered, text);
                return;
        }
        c->current = call->endpoint;

        etcd_result res;
        if (call->authenticating) {
                r = etcd_parse_response(ETCD_REQ_AUTHENTICATE, resp->status, resp->body, &res);
                if (r < 0) {
                        char text[512];
                        snprintf(text, sizeof text, "etcd authentication as %s failed: %s", c->user,
                                 strna(res.error_text));
                        etcd_result_done(&res);
                        finish_error(call, r == -EINVAL ? -EACCES : r, false, text);
                        return;
                }
                free_secret(c->token);
                c->token = TAKE_PTR(res.token);
                etcd_result_done(&res);
                call->attempts = 0;
                r = send_step(call);
                if (r < 0)
                        finish_error(call, r, false, "cannot send to etcd");
                return;
        }

        etcd_parse_response(call->kind, resp->status, resp->body, &res);
        /* A member without a raft leader answers, but cannot serve: a read
         * may ask the next one. (A write may still be applied: not re-sent.) */
        if (res.error == -EAGAIN && step_idempotent && c->n_endpoints > 1 &&
            ++call->attempts < c->n_endpoints) {
                etcd_result_done(&res);
                call->endpoint = (call->endpoint + 1) % c->n_endpoints;
                r = send_step(call);
                if (r < 0)
                        finish_error(call, r, false, "cannot send to etcd");
                return;
        }
        if (res.error < 0 && c->user && auth_rejected(&res) && !call->auth_retried) {
                call->auth_retried = true;
                free_secret(c->token);
                c->token = NULL;
                etcd_result_done(&res);
                call->attempts = 0;
                r = send_step(call);
                if (r < 0)
                        finish_error(call, r, false, "cannot send to etcd");
                return;
        }
        finish(call, &res);
}

int etcd_submit(etcd_client *c, const etcd_request *req, etcd_done_fn done, void *userdata,
                etcd_call **ret_call) {
        if (!c || !req || req->kind == ETCD_REQ_AUTHENTICATE || !etcd_request_path(req->kind))
                return -EINVAL;
        etcd_call *call = calloc(1, sizeof *call);
        if (!call)
                return -ENOMEM;
        call->client = c;
        call->kind = req->kind;
        call->done = done;
        call->userdata = userdata;
        call->endpoint = c->current;
        int r = etcd_build_request(req, &call->body);
        if (r < 0) {
                free(call);
                return r;
        }
        call->body_len = strlen(call->body);
        r = send_step(call);
        if (r < 0) {
                call_free(call);
                return r;
        }
        call->next = c->calls;
        if (c->calls)
                c->calls->prev = call;
        c->calls = call;
        if (ret_call)
                *ret_call = call;
        return 0;
}

void etcd_call_cancel(etcd_call *call) {
        if (!call)
                return;
        call_unlink(call);
        call_free(call);
}
