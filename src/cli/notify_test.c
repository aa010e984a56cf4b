/* SPDX-License-Identifier: MIT */
#include "notify_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "http.h"
#include "notify.h"
#include "tell.h"
#include "util.h"

typedef struct test_run {
        sd_event *event;
        size_t waiting;
        size_t failed;
} test_run;

static void on_answer(const char *channel, bool ok, long http_status, const char *detail, void *userdata) {
        test_run *t = userdata;
        /* detail starts with the HTTP status when there was one */
        printf("%s: %s (%s)\n", channel, ok ? "OK" : "FAILED", detail);
        fflush(stdout);
        if (!ok)
                t->failed++;
        if (--t->waiting == 0)
                sd_event_exit(t->event, 0);
}

int cmd_notify_test(const cli *c) {
        _cleanup_config_ config *cfg = NULL;
        if (cli_load_config(c->config_path, &cfg) < 0)
                return EXIT_CONFIG;
        if (cfg->n_notify == 0) {
                fprintf(stderr, "%s: no notification channels (notify: is not set)\n", c->config_path);
                return EXIT_CONFIG;
        }
        bool found = !c->argument;
        for (size_t i = 0; !found && i < cfg->n_notify; i++)
                found = streq(cfg->notify[i].ch.name, c->argument);
        if (!found) {
                fprintf(stderr, "rollguard: no channel named '%s' in %s (", c->argument, c->config_path);
                for (size_t i = 0; i < cfg->n_notify; i++)
                        fprintf(stderr, "%s%s", i ? ", " : "", cfg->notify[i].ch.name);
                fprintf(stderr, ")\n");
                return EXIT_USAGE;
        }

        /* Load each channel here rather than through tell: a file that
         * cannot be read is this command's answer for that channel. */
        test_run t = { 0 };
        notify_channel *chans = calloc(cfg->n_notify, sizeof *chans);
        size_t n = 0;
        if (!chans)
                return EXIT_RUNTIME;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        for (size_t i = 0; i < cfg->n_notify; i++) {
                if (c->argument && !streq(cfg->notify[i].ch.name, c->argument))
                        continue;
                _cleanup_free_ char *err = NULL;
                if (tell_channel_load(&cfg->notify[i], dir, &chans[n], NULL, NULL, &err) < 0) {
                        printf("%s: FAILED (%s)\n", cfg->notify[i].ch.name, err ? err : "out of memory");
                        t.failed++;
                        continue;
                }
                n++;
        }

        int exit_code = EXIT_RUNTIME;
        http_client *http = NULL;
        notify *nt = NULL;
        int r = sd_event_default(&t.event);
        if (r >= 0)
                r = http_client_new(t.event, &http);
        if (r >= 0)
                r = notify_new(t.event, http, chans, n, NULL, &nt);
        tell_channels_free(chans, n);
        if (r >= 0 && n > 0) {
                t.waiting = n;
                r = notify_test(nt, NULL, on_answer, &t);
                if (r >= 0)
                        r = sd_event_loop(t.event);
        }
        if (r < 0)
                fprintf(stderr, "rollguard: cannot send the test messages: %s\n", strerror(-r));
        else if (t.failed == 0)
                exit_code = EXIT_OK;
        notify_free(nt);
        http_client_free(http);
        sd_event_unref(t.event);
        return exit_code;
}
