/* SPDX-License-Identifier: MIT */
/* Pure parsing of Alertmanager webhook payloads (version "4"); no I/O, so it
 * is unit-tested and fuzzed on its own. alerts.c serves it over HTTP. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

typedef struct webhook_alert {
        bool firing;            /* status "firing" (else "resolved") */
        firing_alert alert;     /* labels and ends_at_ms */
        char *fingerprint;      /* may be NULL */
        int64_t starts_at_ms;
} webhook_alert;

typedef struct webhook_batch {
        webhook_alert *alerts;
        size_t n_alerts;
} webhook_batch;

void webhook_batch_done(webhook_batch *b);
/* RFC 3339 with optional fraction and offset; "0001-01-01T00:00:00Z" -> 0
 * (Alertmanager's "no known end": until resolved). -EINVAL when malformed. */
int webhook_parse_time(const char *s, int64_t *ret_ms);
/* Returns 0, or -EBADMSG with *ret_error saying what is wrong and where
 * ("alerts[2].labels: expected an object"), for a 400 reply. */
int webhook_parse(const char *body, size_t len, webhook_batch *out, char **ret_error);
