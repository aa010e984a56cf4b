/* SPDX-License-Identifier: MIT */
#include "check_notify.h"

#include <stdio.h>
#include <stdlib.h>

#include "tell.h"
#include "util.h"

static void print_events(unsigned mask) {
        if (!mask || mask == NOTIFY_EVENTS_ALL) {
                printf("all events");
                return;
        }
        bool first = true;
        for (int k = 0; k < _NOTIFY_EV_MAX; k++)
                if (mask & NOTIFY_EVENT_BIT(k)) {
                        printf("%s%s", first ? "" : ", ", notify_kind_name((notify_kind)k));
                        first = false;
                }
}

bool check_notify_print(const config *cfg) {
        bool ok = true;
        if (cfg->n_notify == 0) {
                printf("  notify: no channels (notify: not set)\n");
                return true;
        }
        printf("  notify (%zu):\n", cfg->n_notify);
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        for (size_t i = 0; i < cfg->n_notify; i++) {
                const notify_config *nc = &cfg->notify[i];
                notify_channel ch = { 0 };
                _cleanup_free_ char *err = NULL, *url_from = NULL, *secret_from = NULL;
                int r = tell_channel_load(nc, dir, &ch, &url_from, &secret_from, &err);
                printf("    %s: %s", nc->ch.name, notify_type_name(nc->ch.type));
                if (r < 0) {
                        printf(", CANNOT BE USED: %s\n", err ? err : "out of memory");
                        ok = false;
                        continue;
                }
                char host[128];
                printf(" to %s", tell_url_host(ch.url, host, sizeof host));
                if (url_from)
                        printf(" (url from %s)", url_from);
                else
                        printf(" (inline url)");
                if (secret_from)
                        printf(", signed (secret from %s)", secret_from);
                else if (nc->ch.type == NOTIFY_DINGTALK || nc->ch.type == NOTIFY_FEISHU)
                        printf(", unsigned");
                printf("; ");
                print_events(nc->ch.events);
                if (nc->ch.n_apps) {
                        printf(" for ");
                        for (size_t j = 0; j < nc->ch.n_apps; j++)
                                printf("%s%s", j ? ", " : "", nc->ch.apps[j]);
                } else
                        printf(" for every app");
                printf("\n");
                if (!nc->url_file)
                        printf("  warning: channel %s: the url is written in the config, and its token is a "
                               "secret: move it to a file and name that with url_file\n",
                               nc->ch.name);
                notify_channel_done(&ch);
        }
        return ok;
}
