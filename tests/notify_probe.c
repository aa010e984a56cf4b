/* SPDX-License-Identifier: MIT */
/* Test driver for the notification engine (issue 14): the real sd-event
 * loop, the real curl-multi client and notify.c, with channels from the
 * command line and events from stdin, so tests/integration can check the
 * engine against tests/sim/receivers.py before the daemon wires it in.
 *
 *   notify_probe [--retry-for D] [--backoff D] [--timeout D]
 *                --channel name=N,type=T,url=U[,secret=S][,rate=MAX/PERIOD]
 *                          [,events=a+b][,apps=x+y] ...
 *
 * stdin, one JSON object a line:
 *   {"send": {"kind": "action", "app": ..., "change_order": ..., ...}}
 *   {"test": "NAME"} or {"test": null}
 *   {"wait": true}   prints {"idle": true} once nothing is queued or in flight
 *   {"stats": true}
 * stdout, one JSON object a line: {"queued": N}, {"result": "sent",
 * "channel": ..., "status": ..., "detail": ..., "events": N, "t": S},
 * {"test": NAME, "ok": ..., "status": ..., "detail": ...}, {"stats": [...]},
 * {"idle": true}. At the end of stdin it waits until idle and exits 0. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "notify.h"
#include "util.h"

typedef struct probe {
        sd_event *event;
        notify *n;
        char line[65536];
        size_t len;
        bool eof, waiting;
} probe;

static void emit(cJSON *o) {
        char *s = cJSON_PrintUnformatted(o);
        if (s) {
                printf("%s\n", s);
                fflush(stdout);
        }
        free(s);
        cJSON_Delete(o);
}

static double mono_s(void) {
        return (double)now_monotonic_usec() / 1e6;
}

static void on_result(const char *channel, notify_result r, long status, const char *detail, size_t n_events,
                      void *userdata) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "result", notify_result_name(r));
        cJSON_AddStringToObject(o, "channel", channel);
        cJSON_AddNumberToObject(o, "status", (double)status);
        cJSON_AddStringToObject(o, "detail", detail);
        cJSON_AddNumberToObject(o, "events", (double)n_events);
        cJSON_AddNumberToObject(o, "t", mono_s());
        emit(o);
}

static void on_test(const char *channel, bool ok, long status, const char *detail, void *userdata) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "test", channel);
        cJSON_AddBoolToObject(o, "ok", ok);
        cJSON_AddNumberToObject(o, "status", (double)status);
        cJSON_AddStringToObject(o, "detail", detail);
        emit(o);
}

static void on_stat(const char *channel, notify_type type, notify_result r, uint64_t count, void *userdata) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "channel", channel);
        cJSON_AddStringToObject(o, "type", notify_type_name(type));
        cJSON_AddStringToObject(o, "result", notify_result_name(r));
        cJSON_AddNumberToObject(o, "count", (double)count);
        cJSON_AddItemToArray(userdata, o);
}

static const char *jstr(const cJSON *o, const char *k) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void handle_line(probe *p, const char *line) {
        cJSON *j = cJSON_Parse(line);
        if (!j) {
                fprintf(stderr, "notify_probe: not JSON: %s\n", line);
                return;
        }
        const cJSON *send = cJSON_GetObjectItem(j, "send");
        if (cJSON_IsObject(send)) {
                notify_event ev = {
                        .kind = notify_kind_from_string(jstr(send, "kind")),
                        .app = jstr(send, "app"),
                        .platform = jstr(send, "platform"),
                        .region = jstr(send, "region"),
                        .app_id = jstr(send, "app_id"),
                        .change_order = jstr(send, "change_order"),
                        .rule = jstr(send, "rule"),
                        .action = jstr(send, "action"),
                        .result = jstr(send, "result"),
                        .reason = jstr(send, "reason"),
                        .rollback_change_order = jstr(send, "rollback_change_order"),
                        .time_ms = now_realtime_ms(),
                };
                const cJSON *v = cJSON_GetObjectItem(send, "value"), *t = cJSON_GetObjectItem(send, "threshold");
                if (cJSON_IsNumber(v) && cJSON_IsNumber(t)) {
                        ev.has_value = true;
                        ev.value = v->valuedouble;
                        ev.threshold = t->valuedouble;
                }
                int r = notify_send(p->n, &ev);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "queued", r);
                emit(o);
        }
        const cJSON *test = cJSON_GetObjectItem(j, "test");
        if (test) {
                int r = notify_test(p->n, cJSON_IsString(test) ? test->valuestring : NULL, on_test, p);
                if (r < 0) {
                        cJSON *o = cJSON_CreateObject();
                        cJSON_AddStringToObject(o, "test_error", strerror(-r));
                        emit(o);
                }
        }
        if (cJSON_IsTrue(cJSON_GetObjectItem(j, "stats"))) {
                cJSON *o = cJSON_CreateObject();
                cJSON *arr = cJSON_AddArrayToObject(o, "stats");
                notify_stats_foreach(p->n, on_stat, arr);
                emit(o);
        }
        if (cJSON_IsTrue(cJSON_GetObjectItem(j, "wait")))
                p->waiting = true;
        cJSON_Delete(j);
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        probe *p = userdata;
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0) {
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        return 0;
                p->eof = true;
                p->waiting = true;
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
                return 0;
        }
        for (ssize_t i = 0; i < k; i++) {
                if (buf[i] == '\n') {
                        p->line[p->len] = 0;
                        if (p->len)
                                handle_line(p, p->line);
                        p->len = 0;
                } else if (p->len + 1 < sizeof p->line)
                        p->line[p->len++] = buf[i];
        }
        return 0;
}

/* Polls for "idle": the engine has no completion hook of its own, and a
 * probe that waits 20 ms too long costs nothing. */
static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        probe *p = userdata;
        if (p->waiting && notify_pending(p->n) == 0) {
                p->waiting = false;
                cJSON *o = cJSON_CreateObject();
                cJSON_AddTrueToObject(o, "idle");
                emit(o);
                if (p->eof)
                        return sd_event_exit(p->event, 0);
        }
        sd_event_source_set_time(s, usec + 20 * USEC_PER_MSEC);
        sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int parse_channel(char *spec, notify_channel *c) {
        *c = (notify_channel){ .type = _NOTIFY_TYPE_INVALID };
        char *save = NULL;
        for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (!eq)
                        return -EINVAL;
                *eq = 0;
                const char *k = kv, *v = eq + 1;
                if (streq(k, "name"))
                        c->name = strdup(v);
                else if (streq(k, "type"))
                        c->type = notify_type_from_string(v);
                else if (streq(k, "url"))
                        c->url = strdup(v);
                else if (streq(k, "secret"))
                        c->secret = strdup(v);
                else if (streq(k, "rate")) {
                        _cleanup_free_ char *d = strdup(v);
                        char *slash = d ? strchr(d, '/') : NULL;
                        int64_t max;
                        if (!slash)
                                return -EINVAL;
                        *slash = 0;
                        if (parse_int64(d, 1, 10000, &max) < 0 || parse_duration(slash + 1, &c->rate_period_usec) < 0)
                                return -EINVAL;
                        c->rate_max = (unsigned)max;
                } else if (streq(k, "events")) {
                        _cleanup_free_ char *d = strdup(v);
                        char *s2 = NULL;
                        for (char *w = strtok_r(d, "+", &s2); w; w = strtok_r(NULL, "+", &s2)) {
                                notify_kind kind = notify_kind_from_string(w);
                                if (kind < 0)
                                        return -EINVAL;
                                c->events |= NOTIFY_EVENT_BIT(kind);
                        }
                } else if (streq(k, "apps")) {
                        _cleanup_free_ char *d = strdup(v);
                        char *s2 = NULL;
                        for (char *w = strtok_r(d, "+", &s2); w; w = strtok_r(NULL, "+", &s2)) {
                                char **a = realloc(c->apps, (c->n_apps + 1) * sizeof *a);
                                if (!a)
                                        return -ENOMEM;
                                c->apps = a;
                                c->apps[c->n_apps++] = strdup(w);
                        }
                } else
                        return -EINVAL;
        }
        return c->name && c->url && c->type >= 0 ? 0 : -EINVAL;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "channel", required_argument, NULL, 'c' },   { "retry-for", required_argument, NULL, 'r' },
                { "backoff", required_argument, NULL, 'b' },   { "backoff-max", required_argument, NULL, 'm' },
                { "timeout", required_argument, NULL, 't' },   {},
        };
        notify_channel chans[16];
        size_t n_chans = 0;
        notify_options o = { .on_result = on_result };
        log_setup(LOG_TARGET_STDERR, true);
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                uint64_t *d = c == 'r' ? &o.retry_for_usec
                            : c == 'b' ? &o.backoff_initial_usec
                            : c == 'm' ? &o.backoff_max_usec
                            : c == 't' ? &o.timeout_usec
                                       : NULL;
                if (c == 'c') {
                        if (n_chans == ELEMENTSOF(chans) || parse_channel(optarg, &chans[n_chans]) < 0) {
                                fprintf(stderr, "notify_probe: bad --channel #%zu\n", n_chans + 1);
                                return 2;
                        }
                        n_chans++;
                } else if (d) {
                        if (parse_duration(optarg, d) < 0) {
                                fprintf(stderr, "notify_probe: bad duration %s\n", optarg);
                                return 2;
                        }
                } else
                        return 2;
        }

        probe p = { 0 };
        http_client *http = NULL;
        int r = sd_event_default(&p.event);
        if (r >= 0)
                r = http_client_new(p.event, &http);
        if (r >= 0)
                r = notify_new(p.event, http, chans, n_chans, &o, &p.n);
        for (size_t i = 0; i < n_chans; i++)
                notify_channel_done(&chans[i]);
        if (r >= 0)
                r = sd_event_add_io(p.event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, &p);
        if (r >= 0)
                r = sd_event_add_time_relative(p.event, NULL, CLOCK_MONOTONIC, 20 * USEC_PER_MSEC, 0, on_tick, &p);
        if (r >= 0)
                r = sd_event_loop(p.event);
        if (r < 0)
                fprintf(stderr, "notify_probe: %s\n", strerror(-r));
        notify_free(p.n);
        http_client_free(http);
        sd_event_unref(p.event);
        return r < 0 ? 1 : 0;
}
