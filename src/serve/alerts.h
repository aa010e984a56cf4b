/* SPDX-License-Identifier: MIT */
/* The HTTP listener (SPEC 7): Alertmanager webhook, /metrics, /status.
 * libmicrohttpd without threads, driven by the sd-event loop. Keeps the set
 * of firing alerts per app and answers the watcher's alert lookups. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "rules.h"
#include "watcher.h"
#include "webhook.h"

#define ALERTS_MAX_BODY (1024u * 1024u)

typedef struct alerts_server alerts_server;

/* Starts listening on cfg->alerts_listen. The bearer token comes from
 * cfg->alerts_token_file, else $CREDENTIALS_DIRECTORY/alert-token; without
 * either the listener refuses to start (an open rollback button is not a
 * default). Returns 0 or negative with *ret_error. */
int alerts_server_new(sd_event *e, watcher *w, const config *cfg, alerts_server **ret,
                      char **ret_error);
alerts_server *alerts_server_free(alerts_server *s);

/* On reload: re-reads the token, rebinds when the address changed, and
 * points at the (possibly new) watcher config. Keeps firing alerts. */
int alerts_server_reconfigure(alerts_server *s, const config *cfg, char **ret_error);

/* The watcher's alert_lookup_fn: firing alerts routed to `app` whose endsAt
 * has not passed. */
size_t alerts_lookup(void *userdata, const char *app, int64_t now_ms, const firing_alert **ret);

/* The bound port (tests bind port 0). */
int alerts_server_port(const alerts_server *s);
