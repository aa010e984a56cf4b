/* SPDX-License-Identifier: MIT */
/* rollguard: the command line, and the daemon that `run` and `once` start:
 * signals (SIGHUP reload, SIGTERM/SIGINT clean exit), sd_notify and the
 * watchdog. Other commands live in src/cli/; everything else in the
 * modules. */
#include <curl/curl.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "api.h"
#include "check.h"
#include "cli.h"
#include "config.h"
#include "credentials.h"
#include "fence.h"
#include "http.h"
#include "log.h"
#include "metric_eval.h"
#include "notify_test.h"
#include "metrics.h"
#include "rollguard-config.h"
#include "safe_open.h"
#include "serve.h"
#include "state_repair.h"
#include "status_cmd.h"
#include "tell.h"
#include "util.h"
#include "watcher.h"

typedef struct daemon_ctx {
        cli cli;
        sd_event *event;
        config *cfg;
        http_client *http;
        cred_provider *creds;
        api_client *api;
        watcher *watcher;
        fence *fence;              /* ha: set; NULL on a single host */
        metrics_registry *metrics;
        prom_client *prom;          /* metric rules; NULL without prometheus: */
        metric_eval *metric_eval;
        action_hooks hooks;
        serve *alerts;
        tell *tell;                 /* notifications (notify:) */
        sd_event_source *status_timer;
        int lock_fd;
        int exit_code;
        bool stopping;
        char last_status[160];
} daemon_ctx;

static const char *env_lookup(const char *name) {
        return getenv(name);
}

static int cmd_daemon(const cli *c);
static int cmd_once(const cli *c);

typedef struct command {
        const char *name;
        const char *help; /* one line for --help */
        int (*run)(const cli *c); /* returns the exit status */
} command;

/* Every command, in the order --help lists them; the first is the default.
 * A new one is a file in src/cli/ and a line here (and in rollguard(8)). */
static const command commands[] = {
        { "run", "run the daemon in the foreground (default; systemd Type=notify)", cmd_daemon },
        { "check", "validate the config and credentials, print a summary", cmd_check },
        { "once", "poll every app once, evaluate, act, exit", cmd_once },
        { "status", "ask the running daemon what it sees and print a table", cmd_status },
        { "notify-test", "send a test message to each notification channel (or NAME), print the answers", cmd_notify_test },
        { "state", "state repair APP: set an unreadable state file aside, end the quarantine", cmd_state },
};

/* Commands that take an operand: `notify-test [NAME]`. */
static const char *const commands_with_operand[] = { "notify-test" };

static const command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static void help(FILE *f) {
        int width = 8;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if ((int)strlen(commands[i].name) >= width)
                        width = (int)strlen(commands[i].name) + 1;
        fprintf(f,
                "Usage: rollguard [--config FILE] [--dry-run] [--verbose] [COMMAND [NAME]]\n"
                "\n"
                "Watches phased releases on Alibaba Cloud SAE and EDAS and rolls back the\n"
                "ones that stall, fail a batch, or trip an alert.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-*s %s\n", width, commands[i].name, commands[i].help);
        fprintf(f,
                "\n"
                "Options:\n"
                "  -c, --config FILE  config file (default %s)\n"
                "  -n, --dry-run      decide and log, but never call rollback or abort\n"
                "  -v, --verbose      debug logging\n"
                "  -h, --help         this help\n"
                "  -V, --version      print the version\n"
                "  -Q, --query        check: run each metric rule's query once\n"
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
                { "query", no_argument, NULL, 'Q' },
                {},
        };
        *c = (cli){ .config_path = ROLLGUARD_DEFAULT_CONFIG, .command = commands[0].name };
        int o;
        while ((o = getopt_long(argc, argv, "c:nvhVQ", opts, NULL)) >= 0) {
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
                case 'Q':
                        c->query = true; /* check --query */
                        break;
                default:
                        fprintf(stderr, "Try 'rollguard --help'.\n");
                        return -EINVAL;
                }
        }
        if (optind < argc)
                c->command = argv[optind++];
        for (size_t i = 0; i < ELEMENTSOF(commands_with_operand) && optind < argc; i++)
                if (streq(c->command, commands_with_operand[i]))
                        c->argument = argv[optind++];
        /* `state repair APP`: every word after the command */
        if (optind < argc && streq(c->command, "state")) {
                c->args = argv + optind;
                c->n_args = argc - optind;
                optind = argc;
        }
        if (optind < argc) {
                fprintf(stderr, "rollguard: unexpected argument '%s'. Try 'rollguard --help'.\n", argv[optind]);
                return -EINVAL;
        }
        if (!find_command(c->command)) {
                fprintf(stderr, "rollguard: unknown command '%s' (", c->command);
                for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                        fprintf(stderr, "%s%s", i ? ", " : "", commands[i].name);
                fprintf(stderr, "). Try 'rollguard --help'.\n");
                return -EINVAL;
        }
        return 1;
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

/* Notifications already queued get a few seconds to go out before exit. */
#define NOTIFY_FLUSH_USEC (5 * USEC_PER_SEC)

static void on_notifications_flushed(void *userdata) {
        daemon_ctx *d = userdata;
        sd_event_exit(d->event, d->exit_code);
}

static void exit_after_notifications(daemon_ctx *d) {
        if (!d->tell || tell_pending(d->tell) == 0 ||
            tell_flush(d->tell, NOTIFY_FLUSH_USEC, on_notifications_flushed, d) < 0)
                sd_event_exit(d->event, d->exit_code);
}

static void on_resigned(void *userdata) {
        exit_after_notifications(userdata);
}

static void on_drained(void *userdata) {
        daemon_ctx *d = userdata;
        /* ha: hand over now rather than after the lease's TTL. */
        if (d->fence && fence_resign(d->fence, on_resigned, d) >= 0)
                return;
        exit_after_notifications(d);
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
        serve *started = NULL;
        int r;

        /* A listener the new config adds is started before anything switches. */
        if (n->alerts_listen && !d->alerts) {
                r = serve_new(d->event, d->watcher, d->metrics, n, &started, err);
                if (r < 0)
                        return r;
        }
        r = watcher_reconfigure(d->watcher, n);
        if (r < 0) {
                serve_free(started);
                return r;
        }
        if (d->alerts && n->alerts_listen) {
                r = serve_reconfigure(d->alerts, n, err);
                if (r < 0) {
                        (void)watcher_reconfigure(d->watcher, d->cfg);
                        return r;
                }
        }

        if (d->alerts && !n->alerts_listen) {
                watcher_set_alert_lookup(d->watcher, NULL, NULL);
                d->alerts = serve_free(d->alerts);
                log_info("alerts.listen removed: alert listener stopped");
        }
        if (started) {
                d->alerts = started;
                watcher_set_alert_lookup(d->watcher, serve_alert_lookup, d->alerts);
        }
        api_client_options o = { n->rate_limit, n->rate_window_usec, n->timeout_usec, NULL };
        r = api_client_reconfigure(d->api, &o);
        if (r < 0)
                log_warning("cannot apply the new rate limit and timeout (%s); keeping the old ones", strerror(-r));
        if (d->tell && (r = tell_reconfigure(d->tell, n)) < 0)
                log_warning("cannot apply the new notification channels (%s); keeping the old ones", strerror(-r));
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
                if (!config_ha_equal(&d->cfg->ha, &n->ha))
                        log_warning("ha: changes to the ha: section take effect at the next start; keeping %s",
                                    d->cfg->ha.etcd ? "the running etcd settings" : "this host on its own");
                config_free(d->cfg);
                d->cfg = n;
                _cleanup_free_ char *perr = NULL;
                if (d->prom && prom_client_reload(d->prom, &perr) < 0)
                        log_warning("prometheus: keeping the old token: %s", strna(perr));
                if (n->prom_url && !d->prom)
                        log_warning("prometheus: a section added by a reload takes effect at the next start; until then its query rules never hold");
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
        exit_after_notifications(d);
}

/* The lock is on the directory itself, not on a file in it: deleting a file
 * cannot let a second daemon in. The directory must be ours alone (owner,
 * mode), or anyone who can write it could plant files we then trust. */
static int take_state_lock(const char *dir, bool lock, int *ret_fd, char **ret_error) {
        int fd;
        int r = safe_open_state_dir(dir, true, &fd, ret_error);
        if (r < 0)
                return r;
        if (!lock) {
                close(fd);
                return 0;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                close(fd);
                return e == EWOULDBLOCK ? -EBUSY : -e;
        }
        /* ".lock" is information only now (who holds the lock); never
         * through a symlink, and failing to write it changes nothing */
        int info = openat(fd, ".lock", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (info >= 0) {
                struct stat st;
                if (fstat(info, &st) >= 0 && S_ISREG(st.st_mode))
                        dprintf(info, "%d\n", (int)getpid());
                close(info);
        }
        *ret_fd = fd;
        return 0;
}

static void daemon_done(daemon_ctx *d) {
        serve_free(d->alerts);
        watcher_free(d->watcher);
        fence_free(d->fence);
        log_set_observer(NULL, NULL);
        tell_free(d->tell);
        metric_eval_free(d->metric_eval);
        prom_client_free(d->prom);
        api_client_free(d->api);
        cred_provider_free(d->creds);
        http_client_free(d->http);
        sd_event_source_disable_unref(d->status_timer);
        sd_event_unref(d->event);
        config_free(d->cfg);
        metrics_registry_free(d->metrics);
        if (d->lock_fd >= 0)
                close(d->lock_fd);
}

/* Metric rules: the Prometheus client and the recheck before acting. The
 * prometheus section's url and token are read at start (a reload keeps
 * them; the rules' queries do change). */
static int start_metric_eval(daemon_ctx *d, char **err) {
        int r = metric_eval_client_new(d->http, d->cfg, &d->prom, err);
        if (r < 0) {
                log_error("prometheus: %s", *err ? *err : strerror(-r));
                return r;
        }
        if (!d->prom)
                return 0;
        return metric_eval_new(d->prom, d->metrics, &d->metric_eval);
}

/* The actions' hooks have one userdata: these hand each step to whoever
 * takes part in it (metric rules re-check; ha fences and records). */
static int hook_recheck(void *userdata, action_run *run, const char *app, const change_order *co, const rule *r) {
        daemon_ctx *d = userdata;
        return metric_eval_recheck(d->metric_eval, run, app, co, r);
}

static int hook_pre_send(void *userdata, action_run *run, const char *app, const change_order *co, const rule *r) {
        daemon_ctx *d = userdata;
        return fence_pre_send(d->fence, run, app, co, r);
}

static void hook_gate_cancel(void *userdata, action_run *run) {
        daemon_ctx *d = userdata;
        if (d->metric_eval)
                metric_eval_gate_cancel(d->metric_eval, run);
        if (d->fence)
                fence_gate_cancel(d->fence, run);
}

static void hook_post_record(void *userdata, const action_outcome *o) {
        daemon_ctx *d = userdata;
        fence_post_record(d->fence, o);
}

static void compose_hooks(daemon_ctx *d) {
        d->hooks = (action_hooks){
                .recheck = d->metric_eval ? hook_recheck : NULL,
                .pre_send = d->fence ? hook_pre_send : NULL,
                .gate_cancel = hook_gate_cancel,
                .post_record = d->fence ? hook_post_record : NULL,
                .userdata = d,
        };
}

static int cmd_run(const cli *c, bool once) {
        daemon_ctx d = { .cli = *c, .lock_fd = -1 };
        int r;
        int exit_code = EXIT_RUNTIME;
        _cleanup_free_ char *err = NULL;

        if (cli_load_config(c->config_path, &d.cfg) < 0)
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
        {
                _cleanup_free_ char *lerr = NULL;
                r = take_state_lock(state_dir, !read_only, &d.lock_fd, &lerr);
                if (r == -EBUSY) {
                        log_error("another rollguard is running with state directory %s; use 'rollguard status', or 'rollguard once --dry-run' which only reads",
                                  state_dir);
                        goto out;
                }
                if (r < 0) {
                        log_error("refusing to start: %s", lerr ? lerr : strerror(-r));
                        exit_code = EXIT_CONFIG;
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

        if (!(d.metrics = metrics_registry_new())) {
                r = -ENOMEM;
                goto fail;
        }
        if ((r = http_client_new(d.event, &d.http)) < 0)
                goto fail;
        r = cred_provider_new(d.event, d.http, d.cfg, env_lookup, &d.creds, &err);
        if (r < 0) {
                log_event_send(EV_CREDENTIALS, LOG_ERR, NULL, "no usable credentials: %s", err ? err : strerror(-r));
                exit_code = EXIT_CONFIG;
                goto out;
        }
        api_client_options o = { d.cfg->rate_limit, d.cfg->rate_window_usec, d.cfg->timeout_usec, d.metrics };
        if ((r = api_client_new(d.event, d.http, d.creds, &o, &d.api)) < 0)
                goto fail;
        if ((r = start_metric_eval(&d, &err)) < 0) {
                exit_code = EXIT_CONFIG;
                goto out;
        }
        /* Before the watcher: an unconfirmed action found at start-up is
         * news too. */
        if ((r = tell_new(d.event, d.http, d.metrics, d.cfg, &d.tell)) < 0)
                goto fail;
        log_set_observer(tell_observe, d.tell);
        bool force_dry_run = c->dry_run;
        if (d.cfg->ha.etcd && once && !c->dry_run) {
                /* once takes no part in leadership: acting here could act twice. */
                log_notice("ha: configured; 'once' does not take part in leadership, so it only logs (as with --dry-run)");
                force_dry_run = true;
        } else if (d.cfg->ha.etcd && !once) {
                r = fence_new(d.event, d.http, d.cfg, d.metrics, &d.fence, &err);
                if (r < 0) {
                        log_error("%s", err ? err : strerror(-r));
                        exit_code = EXIT_CONFIG;
                        goto out;
                }
        }
        compose_hooks(&d);
        watcher_options wo = {
                .force_dry_run = force_dry_run,
                .once = once,
                .state_dir = state_dir,
                .once_done = on_once_done,
                .userdata = &d,
                .metrics = d.metrics,
                .metric_eval = d.metric_eval,
                .action_hooks = d.metric_eval || d.fence ? &d.hooks : NULL,
                .coord = d.fence ? fence_watcher_coord(d.fence) : NULL,
        };
        if ((r = watcher_new(d.event, d.api, d.cfg, &wo, &d.watcher)) < 0)
                goto fail;
        if (!once && d.cfg->alerts_listen) {
                r = serve_new(d.event, d.watcher, d.metrics, d.cfg, &d.alerts, &err);
                if (r < 0) {
                        log_error("cannot start the alert listener: %s", err ? err : strerror(-r));
                        exit_code = EXIT_CONFIG;
                        goto out;
                }
                watcher_set_alert_lookup(d.watcher, serve_alert_lookup, d.alerts);
        }
        if ((r = watcher_start(d.watcher)) < 0)
                goto fail;
        if (d.fence && (r = fence_start(d.fence, d.watcher)) < 0)
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

static int cmd_daemon(const cli *c) {
        return cmd_run(c, false);
}

static int cmd_once(const cli *c) {
        return cmd_run(c, true);
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
        r = find_command(c.command)->run(&c);
        http_global_cleanup();
        return r;
}
