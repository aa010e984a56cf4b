/* SPDX-License-Identifier: MIT */
/* Telling people (issue 14): the notification engine (notify.h) wired to
 * the daemon. Above log, notify and config, below main.
 *
 * One-way: the decision modules (watcher, actions) report every decision
 * once, as a journal record (log.h); main registers tell_observe() as the
 * log's observer, and the records that matter to people (action done or
 * failed, unconfirmed, circuit open, app degraded, release unobserved)
 * become notifications. They are queued after the record is written, that
 * is after the outcome is saved, and go out later on the loop: a channel
 * that is slow, hanging or down delays nothing but itself.
 *
 * A channel's url and secret are read here, when a channel starts, not by
 * the config: url_file and secret_file name files; a relative name is
 * looked up in $CREDENTIALS_DIRECTORY (systemd LoadCredential=), and an
 * absolute one that cannot be read is too, by its last component. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"

/* Where a configured file is read from (pure; `usable` tells whether a
 * path can be read): absolute and usable: itself; relative: credentials_dir
 * joined with it; absolute and not usable (missing, or not readable by the
 * service's dynamic user): credentials_dir joined with its last component,
 * when that is usable; otherwise the path as configured (so the error
 * names it). NULL on OOM. */
char *tell_credential_path(const char *configured, const char *credentials_dir,
                           bool (*usable)(const char *path));

/* The host of a URL ("oapi.dingtalk.com"), never its path or query (the
 * token lives there), into buf; "?" when there is none. */
const char *tell_url_host(const char *url, char *buf, size_t bufsz);

/* A channel with its url and secret read: a deep copy of nc->ch with url
 * (from url or url_file) and secret (from secret_file). Files lose exactly
 * one trailing newline; a URL must be http(s) without blanks; nothing
 * read is ever put in *ret_error, which names the file. *ret_url_from and
 * *ret_secret_from (may be NULL) get the paths actually read (malloc'ed). */
int tell_channel_load(const notify_config *nc, const char *credentials_dir, notify_channel *out,
                      char **ret_url_from, char **ret_secret_from, char **ret_error);

/* Every channel of cfg that loads (a channel that does not is logged and
 * left out: a missing robot must not stop rollbacks). */
int tell_channels_load(const config *cfg, notify_channel **ret, size_t *ret_n);
void tell_channels_free(notify_channel *c, size_t n);

typedef struct tell tell;

/* cfg must outlive the tell or be replaced with tell_reconfigure. Registers
 * rollguard_notifications_total{channel,result} with m (may be NULL). */
int tell_new(sd_event *e, http_client *http, metrics_registry *m, const config *cfg, tell **ret);
/* SIGHUP: the channels of the new config, matched by name (notify.h). */
int tell_reconfigure(tell *t, const config *cfg);
tell *tell_free(tell *t);

/* The log observer (log_set_observer(tell_observe, t)). */
void tell_observe(void *userdata, log_event ev, int priority, const log_fields *f, const char *msg);

/* Messages queued or in flight. */
size_t tell_pending(const tell *t);
/* Calls done once nothing is pending or after timeout_usec, whichever
 * comes first (shutdown, `once`). Returns 0, or negative when it could not
 * wait (done is then not called). */
int tell_flush(tell *t, uint64_t timeout_usec, void (*done)(void *userdata), void *userdata);
