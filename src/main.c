/* SPDX-License-Identifier: MIT */
/* rollguard: CLI, signals (SIGHUP reload, SIGTERM/SIGINT clean exit),
 * sd_notify and the watchdog. Everything else lives in the modules. */
#include <curl/curl.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "alerts.h"
#include "api.h"
#include "config.h"
#include "credentials.h"
#include "http.h"
#include "log.h"
#include "rollguard-config.h"
#include "util.h"
#include "watcher.h"

enum {
        EXIT_OK = 0,
        EXIT_CONFIG = 1,
        EXIT_USAGE = 2,
        EXIT_RUNTIME = 3,
};

typedef struct cli {
        const char *config_path;
        bool dry_run;
        bool verbose;
        const char *command;
} cli;

typedef struct daemon_ctx {
        cli cli;
        sd_event *event;
        config *cfg;
        http_client *http;
        cred_provider *creds;
        api_client *api;
        watcher *watcher;
        alerts_server *alerts;
        sd_event_source *status_timer;
        int lock_fd;
        int exit_code;
        bool stopping;
        char last_status[160];
} daemon_ctx;

static const char *env_lookup(const char *name) {
        return getenv(name);
}

static void help(FILE *f) {
        fprintf(f,
                "Usage: rollguard [--config FILE] [--dry-run] [--verbose] [COMMAND]\n"
                "\n"
                "Watches phased releases on Alibaba Cloud SAE and EDAS and rolls back the\n"
                "ones that stall, fail a batch, or trip an alert.\n"
                "\n"
                "Commands:\n"
                "  run      run the daemon in the foreground (default; systemd Type=notify)\n"
                "  check    validate the config and credentials, print a summary\n"
                "  once     poll every app once, evaluate, act, exit\n"
                "  status   ask the running daemon what it sees and print a table\n"
                "\n"
                "Options:\n"
                "  -c, --config FILE  config file (default %s)\n"
                "  -n, --dry-run      decide and log, but never call rollback or abort\n"
                "  -v, --verbose      debug logging\n"
                "  -h, --help         this help\n"
                "  -V, --version      print the version\n"
                "\n"
                "Exit status: 0 ok, 1 config error, 2 usage error, 3 runtime or API error.\n"
                "See rollguard(8) and rollguard.yaml(5).\n",
                ROLLGUARD_DEFAULT_CONFIG);
}

static int parse_cli(int argc, char **argv, cli *c) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "dry-run", no_argument, NULL, 'n' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        *c = (cli){ .config_path = ROLLGUARD_DEFAULT_CONFIG, .command = "run" };
        int o;
        while ((o = getopt_long(argc, argv, "c:nvhV", opts, NULL)) >= 0) {
                switch (o) {
                case 'c':
                        c->config_path = optarg;
                        break;
                case 'n':
                        c->dry_run = true;
                        break;
                case 'v':
                        c->verbose = true;
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                case 'V':
                        printf("rollguard %s\n", ROLLGUARD_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'rollguard --help'.\n");
                        return -EINVAL;
                }
        }
        if (optind < argc)
                c->command = argv[optind++];
        if (optind < argc) {
                fprintf(stderr, "rollguard: unexpected argument '%s'. Try 'rollguard --help'.\n", argv[optind]);
                return -EINVAL;
        }
        if (!streq(c->command, "run") && !streq(c->command, "check") && !streq(c->command, "once") &&
            !streq(c->command, "status")) {
                fprintf(stderr, "rollguard: unknown command '%s' (run, check, once, status). Try 'rollguard --help'.\n",
                        c->command);
                return -EINVAL;
        }
        return 1;
}

static int load_config(const char *path, config **ret) {
        _cleanup_free_ char *err = NULL;
        int r = config_load(path, ret, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err ? err : "cannot load the config");
        return r;
}

/* ---- check -------------------------------------------------------------- */

static void print_rule(const rule *r) {
        char b[32];
        printf("      - %-16s %-8s", r->name, rule_action_name(r->action));
        const char *sep = " when ";
        if (r->status_mask) {
                printf("%sstatus in [", sep);
                bool first = true;
                for (int s = 0; s < _CO_STATUS_MAX; s++)
                        if (r->status_mask & (1u << s)) {
                                printf("%s%s", first ? "" : ", ", strna(co_status_name(s)));
                                first = false;
                        }
                printf("]");
                sep = ", ";
        }
        if (r->sub_status != SUB_UNKNOWN) {
                printf("%ssub_status %s", sep, r->sub_status == SUB_ERROR ? "error" : "normal");
                sep = ", ";
        }
        if (r->no_progress_usec) {
                printf("%sno progress for %s", sep, format_duration(r->no_progress_usec, b, sizeof b));
                sep = ", ";
        }
        if (r->pipeline_failed) {
                printf("%sa batch failed", sep);
                sep = ", ";
        }
        for (size_t i = 0; i < r->n_alert; i++) {
                printf("%s%s%s=%s", sep, i == 0 ? "alert " : "", r->alert[i].name, r->alert[i].value);
                sep = ", ";
        }
        if (r->n_co_types) {
                printf("%sco_type in [", sep);
                for (size_t i = 0; i < r->n_co_types; i++)
                        printf("%s%s", i ? ", " : "", r->co_types[i]);
                printf("]");
        }
        if (r->for_usec)
                printf(", for %s", format_duration(r->for_usec, b, sizeof b));
        printf("\n");
}

static int cmd_check(const cli *c) {
        _cleanup_config_ config *cfg = NULL;
        if (load_config(c->config_path, &cfg) < 0)
                return EXIT_CONFIG;
        char b1[32], b2[32], b3[32], b4[32], b5[32];
        printf("%s: OK\n", c->config_path);
        printf("  defaults: poll %s, in flight %s, cooldown %s, timeout %s, max %u actions/hour, rate limit %u per %s%s\n",
               format_duration(cfg->poll_interval_usec, b1, sizeof b1),
               format_duration(cfg->active_poll_interval_usec, b2, sizeof b2),
               format_duration(cfg->cooldown_usec, b3, sizeof b3), format_duration(cfg->timeout_usec, b4, sizeof b4),
               cfg->max_actions_per_hour, cfg->rate_limit, format_duration(cfg->rate_window_usec, b5, sizeof b5),
               cfg->dry_run || c->dry_run ? ", DRY RUN" : "");
        const char *sd = getenv("STATE_DIRECTORY");
        printf("  state: %s\n", sd && *sd ? sd : cfg->state_directory);
        if (cfg->alerts_listen)
                printf("  alerts: listening on %s (token from %s)\n", cfg->alerts_listen,
                       cfg->alerts_token_file ? cfg->alerts_token_file : "$CREDENTIALS_DIRECTORY/alert-token");
        else
                printf("  alerts: no listener (alerts.listen not set)\n");

        int exit_code = EXIT_OK;
        credentials creds = { 0 };
        _cleanup_free_ char *err = NULL, *warn = NULL;
        int r = credentials_resolve_static(cfg, env_lookup, &creds, &err, &warn);
        const char *role = credentials_ecs_role_requested(cfg, env_lookup);
        if (r >= 0)
                printf("  credentials: %s%s%s%s%s\n", cred_source_name(creds.source),
                       creds.source_detail ? " (" : "", creds.source_detail ? creds.source_detail : "",
                       creds.source_detail ? ")" : "", creds.security_token ? ", STS token" : "");
        else if (r == -ENOENT && role)
                printf("  credentials: ECS RAM role %s (fetched from the metadata service at start)\n", role);
        else {
                printf("  credentials: NONE: %s\n", err ? err : "no source had credentials");
                exit_code = EXIT_CONFIG;
        }
        if (warn)
                printf("  warning: %s\n", warn);
        credentials_done(&creds);

        printf("  apps (%zu):\n", cfg->n_apps);
        for (size_t i = 0; i < cfg->n_apps; i++) {
                const app_config *a = &cfg->apps[i];
                _cleanup_free_ char *url = config_endpoint_url(cfg, a);
                printf("    %s: %s%s %s in %s via %s%s%s\n", a->name, platform_name(a->platform),
                       a->platform == PLATFORM_EDAS ? (a->edas_kind == EDAS_KIND_K8S ? " (k8s)" : " (ecs)") : "",
                       a->app_id, a->region, strna(url),
                       app_config_dry_run(cfg, a, c->dry_run) ? ", dry-run" : "",
                       a->builtin_rules ? ", built-in rules" : "");
                for (size_t j = 0; j < a->n_rules; j++)
                        print_rule(&a->rules[j]);
        }
        return exit_code;
}

/* ---- status ------------------------------------------------------------- */

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        FILE *f = userdata;
        return fwrite(ptr, size, nmemb, f);
}

static const char *json_str(const cJSON *o, const char *k, const char *dflt) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
        return cJSON_IsString(v) ? v->valuestring : dflt;
}

static double json_num(const cJSON *o, const char *k, double dflt) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
        return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void fmt_age(double s, char *buf, size_t n) {
        char d[32];
        if (s < 0)
                snprintf(buf, n, "never");
        else /* whole seconds: sub-second precision is noise in a table */
                snprintf(buf, n, "%s ago", format_duration((uint64_t)s * USEC_PER_SEC, d, sizeof d));
}

static int cmd_status(const cli *c) {
        _cleanup_config_ config *cfg = NULL;
        if (load_config(c->config_path, &cfg) < 0)
                return EXIT_CONFIG;
        if (!cfg->alerts_listen) {
                fprintf(stderr, "rollguard: %s has no alerts.listen: the daemon serves /status there; set it to use 'rollguard status'\n",
                        c->config_path);
                return EXIT_CONFIG;
        }
        _cleanup_free_ char *url = strdup_printf("http://%s/status", cfg->alerts_listen);
        char *body = NULL;
        size_t body_len = 0;
        FILE *mem = open_memstream(&body, &body_len);
        if (!url || !mem)
                return EXIT_RUNTIME;
        CURL *h = curl_easy_init();
        long code = 0;
        CURLcode cr = CURLE_FAILED_INIT;
        if (h) {
                curl_easy_setopt(h, CURLOPT_URL, url);
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
                curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
                cr = curl_easy_perform(h);
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                curl_easy_cleanup(h);
        }
        fclose(mem);
        _cleanup_free_ char *b = body;
        if (cr != CURLE_OK || code != 200) {
                fprintf(stderr, "rollguard: cannot reach the daemon at %s: %s\n", url,
                        cr != CURLE_OK ? curl_easy_strerror(cr) : "unexpected HTTP status");
                return EXIT_RUNTIME;
        }
        cJSON *root = cJSON_Parse(b);
        if (!root) {
                fprintf(stderr, "rollguard: %s answered something that is not JSON\n", url);
                return EXIT_RUNTIME;
        }
        printf("%zu apps, %d in flight, %d degraded, %d/%d actions in the last hour%s\n",
               (size_t)json_num(root, "apps_total", 0), (int)json_num(root, "in_flight", 0),
               (int)json_num(root, "degraded", 0), (int)json_num(root, "actions_last_hour", 0),
               (int)json_num(root, "max_actions_per_hour", 0),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "circuit_open")) ? ", CIRCUIT BREAKER OPEN (log-only)" : "");
        printf("%-20s %-10s %-38s %-15s %-12s %-22s %s\n", "APP", "STATE", "CHANGE ORDER", "STATUS", "LAST POLL",
               "PENDING RULE", "LAST ACTION");
        const cJSON *apps = cJSON_GetObjectItemCaseSensitive(root, "apps");
        const cJSON *a;
        cJSON_ArrayForEach(a, apps) {
                char age[48], pending[64] = "-", last[160] = "-";
                fmt_age(json_num(a, "last_poll_age_seconds", -1), age, sizeof age);
                const cJSON *p = cJSON_GetObjectItemCaseSensitive(a, "pending_rule");
                if (cJSON_IsObject(p))
                        snprintf(pending, sizeof pending, "%s in %.0fs", json_str(p, "rule", "?"),
                                 json_num(p, "fires_in_seconds", 0));
                const cJSON *l = cJSON_GetObjectItemCaseSensitive(a, "last_action");
                if (cJSON_IsObject(l))
                        snprintf(last, sizeof last, "%s %s (%s, %.0fs ago)", json_str(l, "action", "?"),
                                 json_str(l, "result", "?"), json_str(l, "change_order", "?"),
                                 json_num(l, "age_seconds", 0));
                const char *state = json_str(a, "state", "?");
                const char *err = json_str(a, "error", NULL);
                char st[48];
                snprintf(st, sizeof st, "%s%s", state, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "dry_run")) ? "*" : "");
                printf("%-20s %-10s %-38s %-15s %-12s %-22s %s%s%s\n", json_str(a, "name", "?"), st,
                       json_str(a, "change_order", "-"), json_str(a, "status", "-"), age, pending, last,
                       err ? "  error: " : "", err ? err : "");
        }
        cJSON_Delete(root);
        return EXIT_OK;
}

/* ---- run / once --------------------------------------------------------- */

static void notify_status(daemon_ctx *d) {
        if (!d->watcher)
                return;
        watcher_counts c;
        watcher_get_counts(d->watcher, &c);
        char s[160];
        snprintf(s, sizeof s, "watching %zu app%s, %zu release%s in flight%s%s%s", c.apps, c.apps == 1 ? "" : "s",
                 c.in_flight, c.in_flight == 1 ? "" : "s", c.degraded ? ", degraded: " : "",
                 c.degraded ? (char[24]){ 0 } : "", c.circuit_open ? ", CIRCUIT OPEN (log-only)" : "");
        if (c.degraded) {
                char *p = strstr(s, "degraded: ");
                if (p)
                        snprintf(p + 10, sizeof s - (size_t)(p + 10 - s), "%zu%s", c.degraded,
                                 c.circuit_open ? ", CIRCUIT OPEN (log-only)" : "");
        }
        if (!streq(s, d->last_status)) {
                snprintf(d->last_status, sizeof d->last_status, "%s", s);
                sd_notifyf(false, "STATUS=%s", s);
        }
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        daemon_ctx *d = userdata;
        notify_status(d);
        sd_event_source_set_time_relative(s, 2 * USEC_PER_SEC);
        return 0;
}

static void on_drained(void *userdata) {
        daemon_ctx *d = userdata;
        sd_event_exit(d->event, d->exit_code);
}

static int on_drain_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        daemon_ctx *d = userdata;
        log_warning("actions still in flight at the stop deadline; they stay recorded as unconfirmed and are never sent again");
        sd_event_exit(d->event, d->exit_code);
        return 0;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        daemon_ctx *d = userdata;
        if (d->stopping) {
                /* A second signal: stop now. */
                sd_event_exit(d->event, d->exit_code);
                return 0;
        }
        d->stopping = true;
        log_event_send(EV_STOPPING, LOG_INFO, NULL, "received %s, stopping", strsignal((int)si->ssi_signo));
        sd_notify(false, "STOPPING=1\nSTATUS=stopping");
        if (!d->watcher) {
                sd_event_exit(d->event, d->exit_code);
                return 0;
        }
        /* A rollback already on the wire gets its answer recorded (bounded by
         * the request timeout); nothing new starts. */
        size_t n = watcher_drain(d->watcher, on_drained, d);
        if (n > 0) {
                log_info("waiting up to %s for %zu action%s in flight", format_duration(d->cfg->timeout_usec + USEC_PER_SEC, (char[32]){ 0 }, 32),
                         n, n == 1 ? "" : "s");
                if (sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC, d->cfg->timeout_usec + USEC_PER_SEC, 0,
                                               on_drain_deadline, d) < 0)
                        sd_event_exit(d->event, d->exit_code);
        }
        return 0;
}

/* Switch everything to n, or nothing: on failure the old config stays in
 * force everywhere. */
static int apply_config(daemon_ctx *d, config *n, char **err) {
        alerts_server *started = NULL;
        int r;

        /* A listener the new config adds is started before anything switches. */
        if (n->alerts_listen && !d->alerts) {
                r = alerts_server_new(d->event, d->watcher, n, &started, err);
                if (r < 0)
                        return r;
        }
        r = watcher_reconfigure(d->watcher, n);
        if (r < 0) {
                alerts_server_free(started);
                return r;
        }
        if (d->alerts && n->alerts_listen) {
                r = alerts_server_reconfigure(d->alerts, n, err);
                if (r < 0) {
                        (void)watcher_reconfigure(d->watcher, d->cfg);
                        return r;
                }
        }

        if (d->alerts && !n->alerts_listen) {
                watcher_set_alert_lookup(d->watcher, NULL, NULL);
                d->alerts = alerts_server_free(d->alerts);
                log_info("alerts.listen removed: alert listener stopped");
        }
        if (started) {
                d->alerts = started;
                watcher_set_alert_lookup(d->watcher, alerts_lookup, d->alerts);
        }
        api_client_options o = { n->rate_limit, n->rate_window_usec, n->timeout_usec };
        r = api_client_reconfigure(d->api, &o);
        if (r < 0)
                log_warning("cannot apply the new rate limit and timeout (%s); keeping the old ones", strerror(-r));
        return 0;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        daemon_ctx *d = userdata;
        sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading %s", now_monotonic_usec(),
                   d->cli.config_path);
        config *n = NULL;
        _cleanup_free_ char *err = NULL;
        int r = config_load(d->cli.config_path, &n, &err);
        if (r >= 0) {
                r = apply_config(d, n, &err);
                if (r < 0 && !err)
                        err = strdup_printf("%s: cannot apply the new config: %s", d->cli.config_path, strerror(-r));
        }
        if (r < 0) {
                log_event_send(EV_RELOAD_FAILED, LOG_ERR, NULL, "reload failed, keeping the running config: %s",
                               err ? err : "unknown error");
                config_free(n);
        } else {
                config_free(d->cfg);
                d->cfg = n;
                log_event_send(EV_RELOADED, LOG_NOTICE, NULL, "reloaded %s: watching %zu apps", d->cli.config_path,
                               n->n_apps);
        }
        sd_notify(false, "READY=1");
        d->last_status[0] = 0;
        notify_status(d);
        return 0;
}

static void on_once_done(void *userdata, int failures) {
        daemon_ctx *d = userdata;
        d->exit_code = failures > 0 ? EXIT_RUNTIME : EXIT_OK;
        sd_event_exit(d->event, d->exit_code);
}

static int take_state_lock(const char *dir, int *ret_fd) {
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_free_ char *p = strdup_printf("%s/.lock", dir);
        if (!p)
                return -ENOMEM;
        int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                close(fd);
                return e == EWOULDBLOCK ? -EBUSY : -e;
        }
        *ret_fd = fd;
        return 0;
}

static void daemon_done(daemon_ctx *d) {
        alerts_server_free(d->alerts);
        watcher_free(d->watcher);
        api_client_free(d->api);
        cred_provider_free(d->creds);
        http_client_free(d->http);
        sd_event_source_disable_unref(d->status_timer);
        sd_event_unref(d->event);
        config_free(d->cfg);
        if (d->lock_fd >= 0)
                close(d->lock_fd);
}

static int cmd_run(const cli *c, bool once) {
        daemon_ctx d = { .cli = *c, .lock_fd = -1 };
        int r;
        int exit_code = EXIT_RUNTIME;
        _cleanup_free_ char *err = NULL;

        if (load_config(c->config_path, &d.cfg) < 0)
                return EXIT_CONFIG;

        const char *sd = getenv("STATE_DIRECTORY");
        /* systemd may pass several, colon-separated: ours is the first. */
        _cleanup_free_ char *state_dir = strdup(sd && *sd ? sd : d.cfg->state_directory);
        if (!state_dir)
                goto out;
        char *colon = strchr(state_dir, ':');
        if (colon)
                *colon = 0;

        bool read_only = once && c->dry_run;
        if (!read_only) {
                r = take_state_lock(state_dir, &d.lock_fd);
                if (r == -EBUSY) {
                        log_error("another rollguard is running with state directory %s; use 'rollguard status', or 'rollguard once --dry-run' which only reads",
                                  state_dir);
                        goto out;
                }
                if (r < 0) {
                        log_error("cannot use state directory %s: %s", state_dir, strerror(-r));
                        goto out;
                }
        }

        r = sd_event_default(&d.event);
        if (r < 0)
                goto fail;
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        d.exit_code = EXIT_OK;
        if ((r = sd_event_add_signal(d.event, NULL, SIGTERM, on_exit_signal, &d)) < 0 ||
            (r = sd_event_add_signal(d.event, NULL, SIGINT, on_exit_signal, &d)) < 0)
                goto fail;
        if (!once && (r = sd_event_add_signal(d.event, NULL, SIGHUP, on_reload, &d)) < 0)
                goto fail;
        /* Pings WATCHDOG=1 from the loop itself: a stuck loop gets restarted. */
        (void)sd_event_set_watchdog(d.event, true);

        if ((r = http_client_new(d.event, &d.http)) < 0)
                goto fail;
        r = cred_provider_new(d.event, d.http, d.cfg, env_lookup, &d.creds, &err);
        if (r < 0) {
                log_event_send(EV_CREDENTIALS, LOG_ERR, NULL, "no usable credentials: %s", err ? err : strerror(-r));
                exit_code = EXIT_CONFIG;
                goto out;
        }
        api_client_options o = { d.cfg->rate_limit, d.cfg->rate_window_usec, d.cfg->timeout_usec };
        if ((r = api_client_new(d.event, d.http, d.creds, &o, &d.api)) < 0)
                goto fail;
        watcher_options wo = {
                .force_dry_run = c->dry_run,
                .once = once,
                .state_dir = state_dir,
                .once_done = on_once_done,
                .userdata = &d,
        };
        if ((r = watcher_new(d.event, d.api, d.cfg, &wo, &d.watcher)) < 0)
                goto fail;
        if (!once && d.cfg->alerts_listen) {
                r = alerts_server_new(d.event, d.watcher, d.cfg, &d.alerts, &err);
                if (r < 0) {
                        log_error("cannot start the alert listener: %s", err ? err : strerror(-r));
                        exit_code = EXIT_CONFIG;
                        goto out;
                }
                watcher_set_alert_lookup(d.watcher, alerts_lookup, d.alerts);
        }
        if ((r = watcher_start(d.watcher)) < 0)
                goto fail;

        if (!once) {
                watcher_counts wc;
                watcher_get_counts(d.watcher, &wc);
                log_event_send(EV_STARTED, LOG_NOTICE, NULL, "rollguard %s watching %zu apps (config %s, state %s%s)",
                               ROLLGUARD_VERSION, wc.apps, c->config_path, state_dir,
                               c->dry_run || d.cfg->dry_run ? ", DRY RUN" : "");
                sd_notify(false, "READY=1");
                notify_status(&d);
                (void)sd_event_add_time_relative(d.event, &d.status_timer, CLOCK_MONOTONIC, 2 * USEC_PER_SEC, 0,
                                                 on_status_timer, &d);
                if (d.status_timer)
                        sd_event_source_set_enabled(d.status_timer, SD_EVENT_ON);
        }

        r = sd_event_loop(d.event);
        exit_code = r < 0 ? EXIT_RUNTIME : r;
        goto out;
fail:
        log_error("start-up failed: %s", strerror(-r));
out:
        daemon_done(&d);
        return exit_code;
}

int main(int argc, char **argv) {
        cli c;
        int r = parse_cli(argc, argv, &c);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_OK;

        log_setup(LOG_TARGET_AUTO, c.verbose);
        /* No core dumps and no ptrace by other users: memory holds secrets. */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        /* libcurl's allocator wipes what it frees once a secret went through it */
        if (http_global_init() < 0) {
                fprintf(stderr, "rollguard: cannot initialise libcurl\n");
                return EXIT_RUNTIME;
        }
        if (streq(c.command, "check"))
                r = cmd_check(&c);
        else if (streq(c.command, "status"))
                r = cmd_status(&c);
        else
                r = cmd_run(&c, streq(c.command, "once"));
        http_global_cleanup();
        return r;
}
