/* SPDX-License-Identifier: MIT */
/* Test driver for src/ha against a real etcd: one sd-event loop, the http
 * client, an etcd client and one ha_node. Prints one line per event on
 * stdout; reads one command per line on stdin:
 *   fence <co> [rule]    -> "fence <co> <RESULT> why=<..> record=<json|->"
 *   result <co> <text>   -> "result <co> ok|error=<errno>"
 *   acts                 -> "acts <n> <co>=<record> ..."
 *   status               -> "status role=<r> leader=<l> may_act=<0|1> observing=<0|1>"
 *   resign               -> "resigned <errno>"
 *   quit
 * Usage: ha_probe --endpoints URL[,URL..] --prefix P --node N --ttl SECONDS
 *                 [--user U --password-file F] [--timeout-ms MS] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "etcd.h"
#include "ha.h"
#include "http.h"
#include "log.h"
#include "util.h"

static sd_event *event;
static ha_node *node;
static char inbuf[8192];
static size_t inlen;

static void on_role(ha_node *h, ha_role role, const char *leader, const char *reason, void *ud) {
        printf("role %s leader=%s reason=%s\n", ha_role_name(role), leader ? leader : "-", reason);
}

static void on_fenced(ha_fence_result res, const char *record, const char *why, void *ud) {
        char *co = ud;
        printf("fence %s %s why=%s record=%s\n", co, ha_fence_result_name(res), why,
               record ? record : "-");
        free(co);
}

static void on_result(int error, void *ud) {
        char *co = ud;
        if (error < 0)
                printf("result %s error=%d\n", co, error);
        else
                printf("result %s ok\n", co);
        free(co);
}

static void on_acts(int error, const ha_act *acts, size_t n, void *ud) {
        if (error < 0) {
                printf("acts error=%d\n", error);
                return;
        }
        printf("acts %zu", n);
        for (size_t i = 0; i < n; i++)
                printf(" %s=%s", acts[i].change_order_id, acts[i].record);
        printf("\n");
}

static void on_resigned(int error, void *ud) {
        printf("resigned %d\n", error);
}

static void command(char *line) {
        char *save = NULL, *verb = strtok_r(line, " ", &save);
        if (!verb)
                return;
        char *a = strtok_r(NULL, " ", &save), *b = strtok_r(NULL, "", &save);
        int r = 0;
        if (streq(verb, "fence") && a) {
                _cleanup_free_ char *intent = strdup_printf(
                        "{\"who\":\"%s\",\"rule\":\"%s\",\"when_ms\":%lld}", ha_get_node(node),
                        b ? b : "probe", (long long)now_realtime_ms());
                char *co = strdup(a);
                r = intent && co ? ha_fence_act(node, a, intent, on_fenced, co) : -ENOMEM;
                if (r < 0) {
                        printf("fence %s ERROR why=submit:%d record=-\n", a, r);
                        free(co);
                }
        } else if (streq(verb, "result") && a) {
                char *co = strdup(a);
                r = co ? ha_record_result(node, a, b ? b : "done", on_result, co) : -ENOMEM;
                if (r < 0) {
                        printf("result %s error=%d\n", a, r);
                        free(co);
                }
        } else if (streq(verb, "acts")) {
                r = ha_load_acts(node, on_acts, NULL);
                if (r < 0)
                        printf("acts error=%d\n", r);
        } else if (streq(verb, "status")) {
                printf("status role=%s leader=%s may_act=%d observing=%d reason=%s\n",
                       ha_role_name(ha_get_role(node)), strna(ha_get_leader(node)),
                       ha_may_act(node), ha_observing(node), ha_get_reason(node));
        } else if (streq(verb, "resign")) {
                r = ha_resign(node, on_resigned, NULL);
                if (r < 0)
                        printf("resigned %d\n", r);
        } else if (streq(verb, "quit")) {
                sd_event_exit(event, 0);
        } else
                printf("unknown command %s\n", verb);
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *ud) {
        ssize_t n = read(fd, inbuf + inlen, sizeof inbuf - 1 - inlen);
        if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                sd_event_exit(event, 0);
                return 0;
        }
        inlen += (size_t)n;
        inbuf[inlen] = 0;
        char *nl;
        while ((nl = memchr(inbuf, '\n', inlen))) {
                *nl = 0;
                command(inbuf);
                size_t used = (size_t)(nl - inbuf) + 1;
                memmove(inbuf, nl + 1, inlen - used);
                inlen -= used;
        }
        if (inlen == sizeof inbuf - 1)
                inlen = 0; /* a line that long is no command */
        return 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "endpoints", required_argument, NULL, 'e' },
                { "prefix", required_argument, NULL, 'p' },
                { "node", required_argument, NULL, 'n' },
                { "ttl", required_argument, NULL, 't' },
                { "user", required_argument, NULL, 'u' },
                { "password-file", required_argument, NULL, 'w' },
                { "timeout-ms", required_argument, NULL, 'o' },
                {},
        };
        const char *endpoints = NULL, *prefix = NULL, *name = NULL, *user = NULL, *pwfile = NULL;
        int64_t ttl = 0, timeout_ms = 0;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'e': endpoints = optarg; break;
                case 'p': prefix = optarg; break;
                case 'n': name = optarg; break;
                case 't':
                        if (parse_int64(optarg, 2, 3600, &ttl) < 0)
                                return fprintf(stderr, "--ttl: 2..3600 seconds\n"), 2;
                        break;
                case 'u': user = optarg; break;
                case 'w': pwfile = optarg; break;
                case 'o':
                        if (parse_int64(optarg, 1, 60000, &timeout_ms) < 0)
                                return fprintf(stderr, "--timeout-ms: 1..60000\n"), 2;
                        break;
                default: return 2;
                }
        }
        if (!endpoints || !prefix || !name || !ttl)
                return fprintf(stderr, "need --endpoints --prefix --node --ttl\n"), 2;

        setvbuf(stdout, NULL, _IOLBF, 0);
        log_setup(LOG_TARGET_STDERR, false);
        signal(SIGPIPE, SIG_IGN);

        _cleanup_free_ char *eps = strdup(endpoints);
        const char *list[16];
        size_t n = 0;
        char *save = NULL;
        for (char *t = strtok_r(eps, ",", &save); t && n < ELEMENTSOF(list); t = strtok_r(NULL, ",", &save))
                list[n++] = t;

        _cleanup_secret_ char *password = NULL;
        if (pwfile) {
                int fd = open(pwfile, O_RDONLY | O_CLOEXEC);
                size_t len;
                if (fd < 0 || read_fd_limited(fd, 4096, true, &password, &len) < 0)
                        return fprintf(stderr, "cannot read %s\n", pwfile), 1;
                close(fd);
                password[strcspn(password, "\r\n")] = 0;
        }

        http_client *http = NULL;
        etcd_client *etcd = NULL;
        if (sd_event_default(&event) < 0 || http_client_new(event, &http) < 0)
                return fprintf(stderr, "event loop/http setup failed\n"), 1;
        etcd_options eo = {
                .endpoints = list, .n_endpoints = n, .user = user, .password = password,
                /* A keepalive must be answered well within the tick (ttl/3). */
                .timeout_usec = timeout_ms ? (uint64_t)timeout_ms * USEC_PER_MSEC
                                           : (uint64_t)ttl * USEC_PER_SEC / 6,
        };
        int r = etcd_client_new(http, &eo, &etcd);
        if (r < 0)
                return fprintf(stderr, "etcd client: %s\n", strerror(-r)), 1;
        ha_options ho = { .prefix = prefix, .node = name, .lease_ttl_usec = (uint64_t)ttl * USEC_PER_SEC,
                          .on_role = on_role };
        r = ha_new(event, etcd, &ho, &node);
        if (r < 0)
                return fprintf(stderr, "ha: %s\n", strerror(-r)), 1;

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
        if (sd_event_add_io(event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, NULL) < 0)
                return fprintf(stderr, "stdin is not pollable\n"), 1;

        printf("started node=%s\n", name);
        r = ha_start(node);
        if (r >= 0)
                r = sd_event_loop(event);
        ha_free(node);
        etcd_client_free(etcd);
        http_client_free(http);
        sd_event_unref(event);
        printf("stopped\n");
        return r < 0 ? 1 : 0;
}
