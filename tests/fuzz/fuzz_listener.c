/* SPDX-License-Identifier: MIT */
/* The listener's request handling (listener_core) with the real webhook
 * route behind it, fed a raw HTTP request: request line, headers, blank
 * line, body. The body is handed over in pieces whose size the input's
 * length picks, as a socket would. Checks: exactly one reply for every
 * request that gets one, a known status, JSON where JSON is said, and
 * nothing leaks (the sanitizer build). libmicrohttpd's own parsing is
 * libmicrohttpd's to fuzz; this is what we do with what it hands us. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "alerts.h"
#include "fuzz.h"
#include "listener_core.h"
#include "util.h"

#define TOKEN "fuzz-token-0123456789"
#define MAX_HEADERS 64

/* alerts.c asks the watcher to poll; there is none here. */
int watcher_poll_now(watcher *w, const char *app) {
        (void)w;
        (void)app;
        return 0;
}

typedef struct header {
        char *name;
        char *value;
} header;

typedef struct request {
        header h[MAX_HEADERS];
        size_t n;
} request;

static const char *lookup(void *ctx, const char *name) {
        const request *rq = ctx;
        for (size_t i = 0; i < rq->n; i++)
                if (strcasecmp(rq->h[i].name, name) == 0)
                        return rq->h[i].value;
        return NULL;
}

typedef struct replies {
        unsigned n;
        unsigned status;
} replies;

static int on_send(void *ctx, unsigned status, const char *content_type, char *body, size_t len,
                   const char *hname, const char *hvalue) {
        replies *r = ctx;
        if (++r->n > 1)
                abort(); /* two answers to one request */
        r->status = body ? status : 500;
        if (hname && !hvalue)
                abort();
        if (body && content_type && streq(content_type, "application/json")) {
                cJSON *o = cJSON_ParseWithLength(body, len);
                if (!o)
                        abort(); /* we said JSON */
                cJSON_Delete(o);
        }
        free(body);
        return 0;
}

static int handle_get(void *userdata, const listener_request *rq) {
        (void)userdata;
        return listener_reply_json(rq, 200, cJSON_CreateObject());
}

static alerts *the_alerts(void) {
        static alerts *a;
        static app_config apps[2] = { { .name = (char *)"shop-api" }, { .name = (char *)"cart" } };
        if (!a) {
                config cfg = { .apps = apps, .n_apps = 2 };
                if (alerts_new(NULL, &cfg, NULL, &a) < 0)
                        abort();
        }
        return a;
}

/* "METHOD PATH VERSION\r\n" then "Name: value\r\n"..., then "\r\n". */
static bool parse_head(char *head, char **method, char **path, request *rq) {
        char *save = NULL;
        char *line = strtok_r(head, "\r\n", &save);
        if (!line)
                return false;
        char *sp = strchr(line, ' ');
        if (!sp)
                return false;
        *sp = '\0';
        *method = line;
        *path = sp + 1;
        sp = strchr(*path, ' ');
        if (sp)
                *sp = '\0';
        while ((line = strtok_r(NULL, "\r\n", &save)) && rq->n < MAX_HEADERS) {
                char *colon = strchr(line, ':');
                if (!colon)
                        continue;
                *colon = '\0';
                char *v = colon + 1;
                while (*v == ' ' || *v == '\t')
                        v++;
                rq->h[rq->n++] = (header){ line, v };
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size);
        if (!text)
                return 0;
        char *sep = strstr(text, "\r\n\r\n");
        const char *body = "";
        size_t body_len = 0;
        if (sep) {
                *sep = '\0';
                body = (const char *)data + (size_t)(sep - text) + 4;
                body_len = size - (size_t)(sep - text) - 4;
        }
        char *method = NULL, *path = NULL;
        request rq = { .n = 0 };
        if (!parse_head(text, &method, &path, &rq)) {
                free(text);
                return 0;
        }

        static listener_table table;
        if (table.n_routes == 0) {
                listener_route webhook = alerts_webhook_route(the_alerts());
                listener_route status = { .method = "GET", .path = "/status", .handler = handle_get };
                if (listener_table_add(&table, &webhook) < 0 || listener_table_add(&table, &status) < 0)
                        abort();
                table.token = TOKEN;
                table.token_len = strlen(TOKEN);
        }

        replies r = { 0 };
        listener_conn *lc = listener_conn_new(on_send, &r);
        if (!lc) {
                free(text);
                return 0;
        }
        listener_step st = listener_conn_begin(lc, &table, method, path, "fuzz", lookup, &rq);
        if (st == LISTENER_READ_BODY) {
                size_t piece = 1 + size % 4093;
                for (size_t o = 0; o < body_len && st == LISTENER_READ_BODY; o += piece)
                        st = listener_conn_body(lc, body + o, body_len - o < piece ? body_len - o : piece);
                if (st == LISTENER_ANSWERED)
                        abort(); /* no answer before the body is in */
                if (st == LISTENER_READ_BODY)
                        st = listener_conn_end(lc);
        } else if (listener_conn_end(lc) != LISTENER_CLOSE)
                abort(); /* answered already: nothing more to say */
        if (st == LISTENER_ANSWERED && r.n != 1)
                abort();
        if (r.n == 1 && (r.status < 200 || r.status > 599))
                abort();
        listener_conn_free(lc);
        free(text);
        return 0;
}
