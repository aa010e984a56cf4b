/* SPDX-License-Identifier: MIT */
/* Everything the daemon serves over HTTP, put together: the listener with
 * its routes (POST /api/v1/alerts, POST /api/v1/events, GET /status,
 * GET /metrics). A new endpoint is a module with a handler and one
 * listener_add_route call in serve.c. main sees only this. */
#pragma once

#include "config.h"
#include "metrics.h"
#include "rules.h"
#include "watcher.h"

typedef struct serve serve;

/* Starts listening on cfg->alerts_listen with the token of
 * cfg->alerts_token_file or $CREDENTIALS_DIRECTORY/alert-token (see
 * listener.h). m: the registry /metrics renders (may be NULL). Returns 0 or
 * negative with *ret_error. */
int serve_new(sd_event *e, watcher *w, metrics_registry *m, const config *cfg, serve **ret, char **ret_error);
serve *serve_free(serve *s);

/* On reload, all or nothing: re-reads the token, rebinds when the address
 * changed, re-routes the firing alerts. Keeps firing alerts. */
int serve_reconfigure(serve *s, const config *cfg, char **ret_error);

/* The watcher's alert_lookup_fn (userdata: the serve). */
size_t serve_alert_lookup(void *userdata, const char *app, int64_t now_ms, const firing_alert **ret);

/* The bound port (tests bind port 0); -1 when none. */
int serve_port(const serve *s);
