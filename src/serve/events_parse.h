/* SPDX-License-Identifier: MIT */
/* Pure parsing of CloudEvents 1.0 (structured mode, JSON) as Alibaba Cloud
 * EventBridge's HTTP targets deliver them: one event object, or a batch (a
 * JSON array of them). For each event: its id, source and type, and which
 * configured app ids it names in `subject` or anywhere in `data`. Also the
 * bounded memory of recent events that makes a redelivery harmless. No I/O,
 * so it is unit-tested and fuzzed on its own; events.c serves it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The configured app ids, prepared for matching. An id is named when it
 * appears as a whole token: in "acs:sae:cn-hangzhou:1:application/ID" or
 * "ID" but not in "ID-2" or "xID" (token characters: ASCII letters, digits,
 * '-' and '_'). Case-insensitive: a hint that polls one app too many costs a
 * call, one that is missed costs the speed events are there for. NULL or
 * empty ids never match. */
typedef struct events_ids events_ids;
int events_ids_new(const char *const *ids, size_t n_ids, events_ids **ret);
events_ids *events_ids_free(events_ids *m);

typedef struct cloud_event {
        char *id;      /* required by CloudEvents; non-empty */
        char *source;  /* required; non-empty */
        char *type;    /* required; non-empty */
        /* Indexes into the ids given to events_ids_new, ascending, each
         * once: the configured apps this event names. */
        size_t *apps;
        size_t n_apps;
} cloud_event;

typedef struct cloud_event_batch {
        cloud_event *events;
        size_t n_events;
} cloud_event_batch;

void cloud_event_batch_done(cloud_event_batch *b);

/* body need not be NUL-terminated. Returns 0, -ENOMEM, or -EBADMSG with
 * *ret_error saying what is wrong and where ("[3].id: missing",
 * "specversion: expected \"1.0\"") for a 400 reply. */
int events_parse(const char *body, size_t len, const events_ids *ids, cloud_event_batch *out, char **ret_error);

/* The most recent `capacity` (source, id) pairs (CloudEvents: the pair
 * identifies an event; a redelivery repeats it). The oldest is forgotten
 * first. */
typedef struct events_seen events_seen;
events_seen *events_seen_new(size_t capacity);
events_seen *events_seen_free(events_seen *s);
/* 1: seen before; 0: new, and now remembered; -ENOMEM. */
int events_seen_check(events_seen *s, const char *source, const char *id);
