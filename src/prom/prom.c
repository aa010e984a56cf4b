/* SPDX-License-Identifier: MIT */
#include "prom.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "prom_template.h"
#include "safe_open.h"

struct prom_client {
        http_client *http;
        char *base_url;
        char *token_file;
        prom_auth auth;
        uint64_t timeout_usec;
        /* secret: "Authorization: ..." as sent; NULL without token_file */
        char *auth_header;
        /* secret: strings a verdict's text must never contain (the token,
         * for basic the secret half and the encoded pair) */
        char *secrets[3];
        prom_query *queries;
        prom_stats stats;
};

struct prom_query {
        prom_client *client; /* NULL once the client is gone */
        http_call *call;     /* non-NULL while in flight */
        prom_done_fn done;
        void *userdata;
        prom_query *prev, *next;
};

static const char *const auth_names[_PROM_AUTH_MAX] = {
        [PROM_AUTH_NONE] = "none",
        [PROM_AUTH_BEARER] = "bearer",
        [PROM_AUTH_TOKEN] = "token",
        [PROM_AUTH_BASIC] = "basic",
};

const char *prom_auth_name(prom_auth a) {
        return (unsigned) a < _PROM_AUTH_MAX ? auth_names[a] : NULL;
}

int prom_auth_from_string(const char *s, prom_auth *ret) {
        for (size_t i = 0; s && i < _PROM_AUTH_MAX; i++)
                if (streq(s, auth_names[i])) {
                        *ret = (prom_auth) i;
                        return 0;
                }
        return -EINVAL;
}

/* ---- the token ---- */

typedef struct auth_material {
        char *header;
        char *secrets[3];
} auth_material;

static void auth_material_done(auth_material *m) {
        free_secret(m->header);
        for (size_t i = 0; i < ELEMENTSOF(m->secrets); i++)
                free_secret(m->secrets[i]);
        memset(m, 0, sizeof *m);
}

static int read_token(const char *path, prom_auth auth, auth_material *ret, char **ret_error) {
        /* regular file, O_NONBLOCK: never hangs on a FIFO (safe_open.h) */
        safe_open_opts o = { 0 };
        int fd;
        _cleanup_free_ char *why = NULL;
        int r = safe_open_read(AT_FDCWD, path, &o, &fd, &why);
        if (r < 0) {
                *ret_error = strdup_printf("prometheus.token_file %s", why ? why : strerror(-r));
                return r;
        }
        _cleanup_secret_ char *text = NULL;
        size_t len = 0;
        r = read_fd_limited(fd, PROM_TOKEN_FILE_MAX + 1, true, &text, &len);
        close(fd);
        if (r < 0) {
                *ret_error = strdup_printf("prometheus.token_file %s: %s", path, strerror(-r));
                return r;
        }
        if (len > PROM_TOKEN_FILE_MAX) {
                *ret_error = strdup_printf("prometheus.token_file %s: larger than %d bytes; it "
                                           "should hold one token",
                                           path, PROM_TOKEN_FILE_MAX);
                return -EFBIG;
        }
        /* Editors and `echo` add a newline; a token never ends in blanks. */
        while (len > 0 && strchr(" \t\r\n", text[len - 1]))
                text[--len] = 0;
        if (len == 0) {
                *ret_error = strdup_printf("prometheus.token_file %s: empty", path);
                return -EINVAL;
        }
        /* A line break inside would end the header and start another one. */
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) text[i];
                if (c < 0x20 || c == 0x7f) {
                        *ret_error = strdup_printf("prometheus.token_file %s: the token has a line "
                                                   "break or control character inside (byte %zu)",
                                                   path, i + 1);
                        return -EINVAL;
                }
        }

        auth_material m = {};
        if (auth == PROM_AUTH_BASIC) {
                char *colon = strchr(text, ':');
                if (!colon || colon == text || !colon[1]) {
                        *ret_error = strdup_printf("prometheus.token_file %s: auth basic needs "
                                                   "\"ID:SECRET\" (an AccessKey pair for ARMS)",
                                                   path);
                        return -EINVAL;
                }
                size_t enc_len = 4 * ((len + 2) / 3) + 1;
                char *enc = malloc(enc_len);
                if (!enc)
                        return -ENOMEM;
                EVP_EncodeBlock((unsigned char *) enc, (const unsigned char *) text, (int) len);
                m.secrets[0] = strdup(text);
                m.secrets[1] = strdup(colon + 1);
                m.secrets[2] = enc;
                m.header = strdup_printf("Authorization: Basic %s", enc);
        } else {
                m.secrets[0] = strdup(text);
                m.header = auth == PROM_AUTH_TOKEN ? strdup_printf("Authorization: %s", text)
                                                   : strdup_printf("Authorization: Bearer %s", text);
        }
        if (!m.header || !m.secrets[0] || (auth == PROM_AUTH_BASIC && !m.secrets[1])) {
                auth_material_done(&m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

static void client_set_auth(prom_client *c, auth_material *m) {
        free_secret(c->auth_header);
        c->auth_header = TAKE_PTR(m->header);
        for (size_t i = 0; i < ELEMENTSOF(c->secrets); i++) {
                free_secret(c->secrets[i]);
                c->secrets[i] = TAKE_PTR(m->secrets[i]);
        }
}

/* ---- client ---- */

int prom_client_new(http_client *http, const prom_options *opts, prom_client **ret,
                    char **ret_error) {
        *ret_error = NULL;
        if (!http || !opts || !ret)
                return -EINVAL;
        const char *url = opts->url;
        if (!url || !*url) {
                *ret_error = strdup("prometheus.url is missing");
                return -EINVAL;
        }
        if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
                *ret_error = strdup_printf("prometheus.url \"%s\": must start with http:// or https://",
                                           url);
                return -EINVAL;
        }
        if (strpbrk(url, "?# \t\r\n")) {
                *ret_error = strdup_printf("prometheus.url \"%s\": must be the API's base address, "
                                           "without a query, fragment or blanks",
                                           url);
                return -EINVAL;
        }
        if ((unsigned) opts->auth >= _PROM_AUTH_MAX)
                return -EINVAL;

        prom_client *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->http = http;
        c->base_url = strdup(url);
        c->token_file = strdup_null(opts->token_file);
        c->auth = opts->token_file && opts->auth == PROM_AUTH_NONE ? PROM_AUTH_BEARER : opts->auth;
        c->timeout_usec = opts->timeout_usec ? opts->timeout_usec : PROM_DEFAULT_TIMEOUT_USEC;
        if (!c->base_url || (opts->token_file && !c->token_file)) {
                prom_client_free(c);
                return -ENOMEM;
        }
        size_t n = strlen(c->base_url);
        while (n > 0 && c->base_url[n - 1] == '/')
                c->base_url[--n] = 0;

        if (c->auth != PROM_AUTH_NONE && !c->token_file) {
                *ret_error = strdup_printf("prometheus: auth %s needs a token_file",
                                           prom_auth_name(c->auth));
                prom_client_free(c);
                return -EINVAL;
        }
        if (c->token_file) {
                int r = prom_client_reload(c, ret_error);
                if (r < 0) {
                        prom_client_free(c);
                        return r;
                }
        }
        *ret = c;
        return 0;
}

int prom_client_reload(prom_client *c, char **ret_error) {
        *ret_error = NULL;
        if (!c->token_file)
                return 0;
        auth_material m = {};
        int r = read_token(c->token_file, c->auth, &m, ret_error);
        if (r < 0)
                return r;
        client_set_auth(c, &m);
        return 0;
}

static void query_unlink(prom_query *q) {
        prom_client *c = q->client;
        if (!c)
                return;
        if (q->prev)
                q->prev->next = q->next;
        else
                c->queries = q->next;
        if (q->next)
                q->next->prev = q->prev;
        q->prev = q->next = NULL;
        q->client = NULL;
}

prom_client *prom_client_free(prom_client *c) {
        if (!c)
                return NULL;
        while (c->queries) {
                prom_query *q = c->queries;
                prom_query_cancel(q);
                query_unlink(q);
        }
        auth_material none = {};
        client_set_auth(c, &none);
        free(c->base_url);
        free(c->token_file);
        free(c);
        return NULL;
}

void prom_client_stats(const prom_client *c, prom_stats *ret) {
        *ret = c ? c->stats : (prom_stats){};
}

char *prom_build_url(const char *base, const char *query, int64_t time_ms) {
        if (!base || !query)
                return NULL;
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
                n--;
        /* the multi handle's easy handles are not ours to borrow; libcurl
         * >= 7.82 escapes without one */
        char *esc = curl_easy_escape(NULL, query, (int) strlen(query));
        if (!esc)
                return NULL;
        if (time_ms < 0)
                time_ms = 0;
        char *url = strdup_printf("%.*s/api/v1/query?query=%s&time=%" PRId64 ".%03" PRId64, (int) n,
                                  base, esc, time_ms / 1000, time_ms % 1000);
        curl_free(esc);
        return url;
}

/* ---- queries ---- */

int prom_query_new(prom_client *c, prom_done_fn done, void *userdata, prom_query **ret) {
        if (!c || !ret)
                return -EINVAL;
        prom_query *q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        q->client = c;
        q->done = done;
        q->userdata = userdata;
        q->next = c->queries;
        if (c->queries)
                c->queries->prev = q;
        c->queries = q;
        *ret = q;
        return 0;
}

void prom_query_cancel(prom_query *q) {
        if (!q || !q->call)
                return;
        http_call_cancel(TAKE_PTR(q->call));
        if (q->client && q->client->stats.in_flight > 0)
                q->client->stats.in_flight--;
}

prom_query *prom_query_free(prom_query *q) {
        if (!q)
                return NULL;
        prom_query_cancel(q);
        query_unlink(q);
        free(q);
        return NULL;
}

bool prom_query_running(const prom_query *q) {
        return q && q->call;
}

/* A server (or a proxy in front of it) that echoes the request must not
 * carry the token into a log line. */
static void scrub(const prom_client *c, prom_verdict *v) {
        for (size_t i = 0; i < ELEMENTSOF(c->secrets); i++)
                if (c->secrets[i] && c->secrets[i][0] && strstr(v->text, c->secrets[i])) {
                        snprintf(v->text, sizeof v->text,
                                 "HTTP %ld: the answer quoted the credentials (not shown)",
                                 v->http_status);
                        return;
                }
}

/* curl says "Failed to connect to h port 9 after 312 ms: ..."; the caller
 * logs a verdict once per change of its text, so the timing must go. */
static void drop_timing(char *text) {
        char *p = text;
        while ((p = strstr(p, " after "))) {
                char *q = p + 7;
                size_t digits = strspn(q, "0123456789");
                if (digits > 0 && strncmp(q + digits, " ms", 3) == 0) {
                        memmove(p, q + digits + 3, strlen(q + digits + 3) + 1);
                        continue;
                }
                p += 7;
        }
}

static void on_http_done(const http_response *resp, void *userdata) {
        prom_query *q = userdata;
        prom_client *c = q->client;
        q->call = NULL;

        prom_verdict v;
        if (resp->transport_error || resp->status == 0) {
                v = (prom_verdict){ .reason = PROM_UNREACHABLE };
                char raw[PROM_TEXT_MAX];
                snprintf(raw, sizeof raw, "no answer from %s: %s", c ? c->base_url : "prometheus",
                         resp->error ? resp->error : "no response");
                drop_timing(raw);
                prom_sanitize_text(v.text, sizeof v.text, raw, strlen(raw));
        } else
                prom_parse_response(resp->status, resp->body, resp->body_len, &v);
        v.elapsed_usec = resp->elapsed_usec;

        if (c) {
                scrub(c, &v);
                if (c->stats.in_flight > 0)
                        c->stats.in_flight--;
                if ((unsigned) v.reason < _PROM_REASON_MAX)
                        c->stats.results[v.reason]++;
        }
        /* last: the callback may free q or the client */
        if (q->done)
                q->done(q, &v, q->userdata);
}

int prom_query_start(prom_query *q, const char *promql, int64_t time_ms) {
        if (!q || !promql)
                return -EINVAL;
        prom_client *c = q->client;
        if (!c)
                return -ESHUTDOWN;
        if (q->call) {
                c->stats.busy++;
                return -EBUSY;
        }
        if (strlen(promql) >= PROM_QUERY_MAX)
                return -E2BIG;

        _cleanup_free_ char *url = prom_build_url(c->base_url, promql,
                                                  time_ms > 0 ? time_ms : now_realtime_ms());
        if (!url)
                return -ENOMEM;
        const char *headers[2];
        size_t n_headers = 0;
        headers[n_headers++] = "Accept: application/json";
        if (c->auth_header)
                headers[n_headers++] = c->auth_header;
        http_request req = {
                .method = "GET",
                .url = url,
                .headers = headers,
                .n_headers = n_headers,
                .timeout_usec = c->timeout_usec,
                .wipe = c->auth_header != NULL, /* a bearer token or AccessKey pair */
        };
        int r = http_submit(c->http, &req, on_http_done, q, &q->call);
        if (r < 0) {
                q->call = NULL;
                return r;
        }
        c->stats.started++;
        c->stats.in_flight++;
        return 0;
}
