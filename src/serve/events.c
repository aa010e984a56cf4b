/* SPDX-License-Identifier: MIT */
#include "events.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h> /* status codes */
#include <stdlib.h>
#include <string.h>

#include "events_parse.h"
#include "log.h"
#include "util.h"

/* EventBridge retries a delivery for up to a day; a fleet's change-order
 * events in that time are far fewer than this. */
#define EVENTS_SEEN_MAX 4096
/* Distinct `type` label values before the rest count as "other": the type
 * is the sender's text, and a label per value would grow without bound. */
#define EVENTS_MAX_TYPES 32
#define EVENTS_MAX_TYPE_LABEL 128

typedef enum delivery_result {
        DELIVERY_OK,
        DELIVERY_UNAUTHORIZED,
        DELIVERY_MALFORMED,
        DELIVERY_TOO_LARGE,
        _DELIVERY_MAX,
} delivery_result;

static const char *const delivery_result_names[_DELIVERY_MAX] = {
        [DELIVERY_OK] = "ok",
        [DELIVERY_UNAUTHORIZED] = "unauthorized",
        [DELIVERY_MALFORMED] = "malformed",
        [DELIVERY_TOO_LARGE] = "too_large",
};

/* The configured apps as the events see them: ids[i] is names[i]'s app id.
 * Copied, so a reload that frees the old config leaves nothing dangling. */
struct events_apps {
        events_ids *ids;
        char **names;
        size_t n;
};

struct events {
        watcher *watcher;
        events_apps *apps;
        events_seen *seen;

        metrics_counter *received;   /* {type, matched} */
        metrics_counter *deliveries; /* {result} */
        char *types[EVENTS_MAX_TYPES];
        size_t n_types;
};

events_apps *events_apps_free(events_apps *a) {
        if (!a)
                return NULL;
        events_ids_free(a->ids);
        for (size_t i = 0; i < a->n; i++)
                free(a->names[i]);
        free(a->names);
        free(a);
        return NULL;
}

static int apps_from_config(const config *cfg, events_apps **ret) {
        events_apps *a = calloc(1, sizeof(events_apps));
        if (!a)
                return -ENOMEM;
        size_t n = cfg->n_apps;
        _cleanup_free_ const char **ids = calloc(n ? n : 1, sizeof(char *));
        a->names = calloc(n ? n : 1, sizeof(char *));
        if (!ids || !a->names) {
                events_apps_free(a);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                a->names[i] = strdup(cfg->apps[i].name ? cfg->apps[i].name : "");
                if (!a->names[i]) {
                        events_apps_free(a);
                        return -ENOMEM;
                }
                a->n = i + 1;
                ids[i] = cfg->apps[i].app_id;
        }
        int r = events_ids_new(ids, n, &a->ids);
        if (r < 0) {
                events_apps_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

/* Sender-chosen text in a log line: printable ASCII, bounded. */
static void printable(char *buf, size_t bufsz, const char *s) {
        size_t o = 0;
        for (; s && *s && o + 1 < bufsz; s++) {
                unsigned char c = (unsigned char)*s;
                buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        buf[o] = '\0';
}

static const char *type_label(events *e, const char *type) {
        for (size_t i = 0; i < e->n_types; i++)
                if (streq(e->types[i], type))
                        return e->types[i];
        if (e->n_types >= EVENTS_MAX_TYPES || strlen(type) > EVENTS_MAX_TYPE_LABEL)
                return "other";
        char *copy = strdup(type);
        if (!copy)
                return "other";
        e->types[e->n_types++] = copy;
        return copy;
}

static void count(events *e, const char *type, const char *matched) {
        if (e->received)
                metrics_counter_inc(e->received, type_label(e, type), matched);
}

typedef struct tally {
        size_t matched, unmatched, duplicates;
} tally;

static void note_event(events *e, const cloud_event *ev, bool *poll, tally *t) {
        char type[EVENTS_MAX_TYPE_LABEL + 1], id[80];
        printable(type, sizeof type, ev->type);
        printable(id, sizeof id, ev->id);

        /* Out of memory: treat it as new. A second poll is cheap; a lost
         * hint is what events are there to prevent. */
        if (events_seen_check(e->seen, ev->source, ev->id) > 0) {
                t->duplicates++;
                count(e, ev->type, "duplicate");
                log_debug("cloud event %s (id %s): a redelivery, ignored", type, id);
                return;
        }
        if (ev->n_apps == 0) {
                t->unmatched++;
                count(e, ev->type, "false");
                log_debug("cloud event %s (id %s) names no configured app, dropped", type, id);
                return;
        }
        t->matched++;
        count(e, ev->type, "true");
        for (size_t k = 0; k < ev->n_apps; k++) {
                size_t i = ev->apps[k];
                if (i >= e->apps->n)
                        continue;
                poll[i] = true;
                log_fields f = { .app = e->apps->names[i], .result = "poll" };
                log_event_send(EV_CLOUD_EVENT, LOG_INFO, &f, "cloud event %s (id %s) names %s: polling it now", type,
                               id, e->apps->names[i]);
        }
}

static int handle_events(void *userdata, const listener_request *rq) {
        events *e = userdata;
        cloud_event_batch b = { 0 };
        _cleanup_free_ char *error = NULL;
        int r = events_parse(rq->body, rq->len, e->apps->ids, &b, &error);
        if (r == -ENOMEM)
                return listener_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        if (r < 0) {
                metrics_counter_inc(e->deliveries, delivery_result_names[DELIVERY_MALFORMED]);
                log_event_send(EV_CLOUD_EVENT, LOG_WARNING, NULL, "rejected cloud events from %s: %s", rq->from,
                               strna(error));
                return listener_reply_error(rq, MHD_HTTP_BAD_REQUEST, error ? error : "malformed payload");
        }

        _cleanup_free_ bool *poll = calloc(e->apps->n ? e->apps->n : 1, sizeof(bool));
        if (!poll) {
                cloud_event_batch_done(&b);
                return listener_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        }
        tally t = { 0 };
        for (size_t i = 0; i < b.n_events; i++)
                note_event(e, &b.events[i], poll, &t);
        size_t received = b.n_events;
        cloud_event_batch_done(&b);
        metrics_counter_inc(e->deliveries, delivery_result_names[DELIVERY_OK]);

        /* One poll per app however many events named it. Only a hint: the
         * watcher reads the order afresh and its rules decide. */
        for (size_t i = 0; i < e->apps->n; i++)
                if (poll[i] && e->watcher)
                        (void)watcher_poll_now(e->watcher, e->apps->names[i]);

        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddNumberToObject(o, "received", (double)received) ||
                  !cJSON_AddNumberToObject(o, "matched", (double)t.matched) ||
                  !cJSON_AddNumberToObject(o, "unmatched", (double)t.unmatched) ||
                  !cJSON_AddNumberToObject(o, "duplicates", (double)t.duplicates))) {
                cJSON_Delete(o);
                o = NULL;
        }
        /* 202: accepted as a hint; what it leads to is decided later */
        return listener_reply_json(rq, MHD_HTTP_ACCEPTED, o);
}

static void events_rejected(void *userdata, unsigned status, const char *from) {
        events *e = userdata;
        if (status == MHD_HTTP_UNAUTHORIZED) {
                metrics_counter_inc(e->deliveries, delivery_result_names[DELIVERY_UNAUTHORIZED]);
                log_event_send(EV_CLOUD_EVENT, LOG_WARNING, NULL,
                               "rejected cloud events from %s: missing or invalid bearer token", from);
                return;
        }
        metrics_counter_inc(e->deliveries, delivery_result_names[DELIVERY_TOO_LARGE]);
        log_event_send(EV_CLOUD_EVENT, LOG_WARNING, NULL, "rejected cloud events from %s: body larger than 1 MiB",
                       from);
}

int events_new(watcher *w, const config *cfg, metrics_registry *m, events **ret) {
        events *e = calloc(1, sizeof(events));
        if (!e)
                return -ENOMEM;
        e->watcher = w;
        int r = apps_from_config(cfg, &e->apps);
        if (r >= 0) {
                e->seen = events_seen_new(EVENTS_SEEN_MAX);
                if (!e->seen)
                        r = -ENOMEM;
        }
        if (r >= 0 && m) {
                e->received = metrics_counter_new(m, "rollguard_events_received_total",
                                                  "Cloud events received, by type and whether they named a "
                                                  "configured app (true, false, duplicate).",
                                                  "type", "matched");
                e->deliveries = metrics_counter_new(m, "rollguard_event_deliveries_total",
                                                    "Deliveries to POST /api/v1/events by result.", "result");
                if (!e->received || !e->deliveries)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && i < _DELIVERY_MAX; i++)
                        metrics_counter_add(e->deliveries, 0, delivery_result_names[i]);
        }
        if (r < 0) {
                events_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

events *events_free(events *e) {
        if (!e)
                return NULL;
        metrics_counter_free(e->received);
        metrics_counter_free(e->deliveries);
        for (size_t i = 0; i < e->n_types; i++)
                free(e->types[i]);
        events_seen_free(e->seen);
        events_apps_free(e->apps);
        free(e);
        return NULL;
}

int events_add_routes(events *e, listener *l) {
        return listener_add_route(l, &(listener_route){
                                             .method = "POST",
                                             .path = "/api/v1/events",
                                             .handler = handle_events,
                                             .needs_token = true,
                                             .rejected = events_rejected,
                                             .userdata = e,
                                     });
}

int events_reconfigure_prepare(const events *e, const config *cfg, events_apps **ret) {
        (void)e;
        return apps_from_config(cfg, ret);
}

void events_reconfigure_commit(events *e, events_apps *apps) {
        events_apps_free(e->apps);
        e->apps = apps;
}
