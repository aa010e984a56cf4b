/* SPDX-License-Identifier: MIT */
/* Test driver for src/prom: one sd_event loop, the curl-multi client and a
 * prom_client, evaluating a (template) query once or repeatedly and printing
 * each verdict as one JSON line:
 *   {"reason":"ok","value":0.5,"holds":true,"text":"","http_status":200,...}
 * tests/integration/test_prom_engine.py runs it against a real Prometheus.
 *
 * prom_probe --url URL --query TEMPLATE [--token-file F] [--auth none|bearer|token|basic]
 *            [--timeout D] [--app X] [--app-id X] [--change-order X] [--region X]
 *            [--release-started SECS] [--above T | --below T]
 *            [--count N] [--interval D] [--until holds|not-holds|ok|inconclusive]
 * Exit: 0 done (with --until: the condition was seen), 1 --until never seen
 * within --count evaluations, 2 bad arguments or setup. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "http.h"
#include "prom.h"
#include "prom_parse.h"
#include "prom_template.h"
#include "util.h"

typedef enum until {
        UNTIL_NONE,
        UNTIL_HOLDS,
        UNTIL_NOT_HOLDS,
        UNTIL_OK,
        UNTIL_INCONCLUSIVE,
} until;

typedef struct probe {
        sd_event *event;
        prom_query *query;
        const char *promql;
        bool have_cmp;
        prom_cmp cmp;
        double threshold;
        uint64_t count, done;
        uint64_t interval_usec;
        until until;
        sd_event_source *timer;
} probe;

static int start(probe *p);

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        probe *p = userdata;
        int r = start(p);
        if (r < 0) {
                fprintf(stderr, "prom_probe: cannot start a query: %s\n", strerror(-r));
                sd_event_exit(p->event, 2);
        }
        return 0;
}

static bool reached(const probe *p, const prom_verdict *v, bool holds) {
        switch (p->until) {
        case UNTIL_HOLDS: return holds;
        case UNTIL_NOT_HOLDS: return v->reason == PROM_OK && !holds;
        case UNTIL_OK: return v->reason == PROM_OK;
        case UNTIL_INCONCLUSIVE: return v->reason != PROM_OK;
        case UNTIL_NONE: return false;
        }
        return false;
}

static void on_done(prom_query *q, const prom_verdict *v, void *userdata) {
        probe *p = userdata;
        p->done++;
        bool holds = p->have_cmp && prom_holds(v, p->cmp, p->threshold);

        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "reason", prom_reason_name(v->reason));
        if (v->reason == PROM_OK)
                cJSON_AddNumberToObject(o, "value", v->value);
        else
                cJSON_AddNullToObject(o, "value");
        if (p->have_cmp) {
                cJSON_AddBoolToObject(o, "holds", holds);
                cJSON_AddStringToObject(o, "cmp", prom_cmp_name(p->cmp));
                cJSON_AddNumberToObject(o, "threshold", p->threshold);
        }
        cJSON_AddStringToObject(o, "text", v->text);
        cJSON_AddNumberToObject(o, "http_status", (double) v->http_status);
        cJSON_AddNumberToObject(o, "n_series", (double) v->n_series);
        cJSON_AddNumberToObject(o, "elapsed_ms", (double) v->elapsed_usec / 1000.0);
        char shown[PROM_TEXT_MAX + 64];
        cJSON_AddStringToObject(o, "shown", prom_format_verdict(v, shown, sizeof shown));
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (line) {
                printf("%s\n", line);
                fflush(stdout);
                free(line);
        }

        if (reached(p, v, holds)) {
                sd_event_exit(p->event, 0);
                return;
        }
        if (p->done >= p->count) {
                sd_event_exit(p->event, p->until == UNTIL_NONE ? 0 : 1);
                return;
        }
        if (sd_event_source_set_time_relative(p->timer, p->interval_usec) < 0 ||
            sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT) < 0)
                sd_event_exit(p->event, 2);
}

static int start(probe *p) {
        return prom_query_start(p->query, p->promql, 0);
}

static int usage(const char *msg) {
        if (msg)
                fprintf(stderr, "prom_probe: %s\n", msg);
        fprintf(stderr, "usage: prom_probe --url URL --query TEMPLATE [--token-file F] [--auth A] "
                        "[--timeout D] [--app X] [--app-id X] [--change-order X] [--region X] "
                        "[--release-started S] [--above T|--below T] [--count N] [--interval D] "
                        "[--until holds|not-holds|ok|inconclusive]\n");
        return 2;
}

static int parse_double(const char *s, double *ret) {
        char *end = NULL;
        errno = 0;
        double d = strtod(s, &end);
        if (errno || !end || *end || end == s || !isfinite(d))
                return -EINVAL;
        *ret = d;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "url", required_argument, NULL, 'u' },
                { "query", required_argument, NULL, 'q' },
                { "token-file", required_argument, NULL, 'T' },
                { "auth", required_argument, NULL, 'A' },
                { "timeout", required_argument, NULL, 't' },
                { "app", required_argument, NULL, 'a' },
                { "app-id", required_argument, NULL, 'i' },
                { "change-order", required_argument, NULL, 'c' },
                { "region", required_argument, NULL, 'r' },
                { "release-started", required_argument, NULL, 's' },
                { "above", required_argument, NULL, '>' },
                { "below", required_argument, NULL, '<' },
                { "count", required_argument, NULL, 'n' },
                { "interval", required_argument, NULL, 'I' },
                { "until", required_argument, NULL, 'U' },
                {}
        };
        prom_options po = {};
        const char *tmpl = NULL;
        prom_template_vars vars = { .release_started = -1 };
        probe p = { .count = 1, .interval_usec = USEC_PER_SEC };
        int64_t n;
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'u': po.url = optarg; break;
                case 'q': tmpl = optarg; break;
                case 'T': po.token_file = optarg; break;
                case 'A':
                        if (prom_auth_from_string(optarg, &po.auth) < 0)
                                return usage("--auth: none, bearer, token or basic");
                        break;
                case 't':
                        if (parse_duration(optarg, &po.timeout_usec) < 0)
                                return usage("--timeout: a duration such as 5s");
                        break;
                case 'a': vars.app = optarg; break;
                case 'i': vars.app_id = optarg; break;
                case 'c': vars.change_order = optarg; break;
                case 'r': vars.region = optarg; break;
                case 's':
                        if (parse_int64(optarg, 0, INT64_MAX, &vars.release_started) < 0)
                                return usage("--release-started: unix seconds");
                        break;
                case '>':
                case '<':
                        if (p.have_cmp || parse_double(optarg, &p.threshold) < 0)
                                return usage("one --above or --below with a number");
                        p.have_cmp = true;
                        p.cmp = c == '>' ? PROM_ABOVE : PROM_BELOW;
                        break;
                case 'n':
                        if (parse_int64(optarg, 1, INT64_MAX, &n) < 0)
                                return usage("--count: a positive number");
                        p.count = (uint64_t) n;
                        break;
                case 'I':
                        if (parse_duration(optarg, &p.interval_usec) < 0)
                                return usage("--interval: a duration such as 500ms");
                        break;
                case 'U':
                        if (streq(optarg, "holds"))
                                p.until = UNTIL_HOLDS;
                        else if (streq(optarg, "not-holds"))
                                p.until = UNTIL_NOT_HOLDS;
                        else if (streq(optarg, "ok"))
                                p.until = UNTIL_OK;
                        else if (streq(optarg, "inconclusive"))
                                p.until = UNTIL_INCONCLUSIVE;
                        else
                                return usage("--until: holds, not-holds, ok or inconclusive");
                        break;
                default:
                        return usage(NULL);
                }
        }
        if (optind < argc || !po.url || !tmpl)
                return usage("--url and --query are required");
        if ((p.until == UNTIL_HOLDS || p.until == UNTIL_NOT_HOLDS) && !p.have_cmp)
                return usage("--until holds/not-holds needs --above or --below");

        _cleanup_free_ char *promql = NULL, *error = NULL;
        size_t offset = 0;
        int r = prom_template_expand(tmpl, &vars, &promql, &error, &offset);
        if (r < 0) {
                fprintf(stderr, "prom_probe: query, at byte %zu: %s\n", offset + 1,
                        error ? error : strerror(-r));
                return 2;
        }
        p.promql = promql;

        sd_event *e = NULL;
        http_client *http = NULL;
        prom_client *prom = NULL;
        r = sd_event_default(&e);
        if (r >= 0)
                r = http_client_new(e, &http);
        if (r < 0) {
                fprintf(stderr, "prom_probe: setup: %s\n", strerror(-r));
                return 2;
        }
        p.event = e;
        r = prom_client_new(http, &po, &prom, &error);
        if (r < 0) {
                fprintf(stderr, "prom_probe: %s\n", error ? error : strerror(-r));
                return 2;
        }
        r = prom_query_new(prom, on_done, &p, &p.query);
        if (r >= 0)
                r = sd_event_add_time(e, &p.timer, CLOCK_MONOTONIC, USEC_INFINITY, 0,
                                               on_timer, &p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p.timer, SD_EVENT_OFF);
        if (r >= 0)
                r = start(&p);
        if (r < 0) {
                fprintf(stderr, "prom_probe: %s\n", strerror(-r));
                return 2;
        }
        r = sd_event_loop(e);

        prom_stats st;
        prom_client_stats(prom, &st);
        fprintf(stderr, "prom_probe: %" PRIu64 " queries, %" PRIu64 " ok\n", st.started,
                st.results[PROM_OK]);
        sd_event_source_disable_unref(p.timer);
        prom_query_free(p.query);
        prom_client_free(prom);
        http_client_free(http);
        sd_event_unref(e);
        return r < 0 ? 2 : r;
}
