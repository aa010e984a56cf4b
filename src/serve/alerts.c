/* SPDX-License-Identifier: MIT */
#include "alerts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h> /* status codes */
#include <stdio.h>
#include <sys/types.h>

#include "alert_store.h"
#include "log.h"
#include "util.h"

typedef enum receive_result {
        RECEIVED_OK,
        RECEIVED_UNAUTHORIZED,
        RECEIVED_MALFORMED,
        RECEIVED_TOO_LARGE,
        _RECEIVED_MAX,
} receive_result;

static const char *const receive_result_names[_RECEIVED_MAX] = {
        [RECEIVED_OK] = "ok",
        [RECEIVED_UNAUTHORIZED] = "unauthorized",
        [RECEIVED_MALFORMED] = "malformed",
        [RECEIVED_TOO_LARGE] = "too_large",
};

struct alerts {
        watcher *watcher;
        alert_store store;

        metrics_counter *received;
        metrics_counter *dropped;
        metrics_callback *firing;
        metrics_callback *bytes;
};

struct alerts_routes {
        alert_store store;
};

/* ---- small helpers ---- */

/* Sender-chosen text in a log line: printable ASCII, bounded. */
static void safe_copy(char *buf, size_t bufsz, const char *s) {
        size_t o = 0;
        for (; s && *s && o + 1 < bufsz; s++) {
                unsigned char c = (unsigned char)*s;
                buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        buf[o] = '\0';
}

static int label_pair_cmp(const void *a, const void *b) {
        const label_pair *x = *(const label_pair *const *)a, *y = *(const label_pair *const *)b;
        return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/* Duplicate deliveries must replace, not add: Alertmanager's fingerprint is
 * the identity; without one, the sorted label set is (that is what the
 * fingerprint is a hash of). Lengths are written out so no label text can
 * forge another set's key. */
static char *alert_key(const webhook_alert *a) {
        if (a->fingerprint)
                return strdup_printf("fp:%s", a->fingerprint);

        size_t n = a->alert.n_labels;
        _cleanup_free_ const label_pair **sorted = calloc(n ? n : 1, sizeof(label_pair *));
        if (!sorted)
                return NULL;
        for (size_t i = 0; i < n; i++)
                sorted[i] = &a->alert.labels[i];
        qsort(sorted, n, sizeof(label_pair *), label_pair_cmp);

        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fputs("ls:", f);
        for (size_t i = 0; i < n; i++) {
                const char *k = sorted[i]->name ? sorted[i]->name : "";
                const char *v = sorted[i]->value ? sorted[i]->value : "";
                fprintf(f, "%zu:%s%zu:%s", strlen(k), k, strlen(v), v);
        }
        if (ferror(f)) {
                fclose(f);
                free(buf);
                return NULL;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

size_t alerts_lookup(void *userdata, const char *app, int64_t now_ms, const firing_alert **ret) {
        alerts *s = userdata;
        app_slot *a = s && app ? alert_store_find(&s->store, app) : NULL;
        if (!a) {
                *ret = NULL;
                return 0;
        }
        alert_store_drop_expired(&s->store, a, now_ms);
        *ret = a->n_alerts > 0 ? a->alerts : NULL;
        return a->n_alerts;
}

/* ---- the webhook ---- */

typedef struct app_note {
        size_t firing, resolved;
        bool changed;
        char summary[200];
} app_note;

static void note_add(app_note *n, const webhook_alert *a) {
        if (a->firing)
                n->firing++;
        else
                n->resolved++;
        size_t used = strlen(n->summary);
        if (used + 1 >= sizeof n->summary)
                return;
        char name[64];
        safe_copy(name, sizeof name, alert_label(&a->alert, "alertname"));
        int w = snprintf(n->summary + used, sizeof n->summary - used, "%s%s %s", used ? ", " : "",
                         *name ? name : "(no alertname)", a->firing ? "firing" : "resolved");
        /* A cut-off entry reads worse than a count: end it with an ellipsis. */
        if (w < 0 || (size_t)w >= sizeof n->summary - used)
                memcpy(n->summary + sizeof n->summary - 4, "...", 4);
}

static void log_notes(alerts *s, const app_note *notes, const app_note *unmatched) {
        for (size_t i = 0; i < s->store.n_apps; i++) {
                const app_note *n = &notes[i];
                if (n->firing + n->resolved == 0)
                        continue;
                log_fields f = { .app = s->store.apps[i].name, .result = n->firing ? "firing" : "resolved" };
                log_event_send(EV_ALERT, LOG_INFO, &f, "alert webhook: %s (%zu firing now)", n->summary,
                               s->store.apps[i].n_alerts);
        }
        if (unmatched->firing + unmatched->resolved > 0)
                log_event_send(EV_ALERT, LOG_INFO, NULL, "alert webhook: %zu alert(s) concern no configured app: %s",
                               unmatched->firing + unmatched->resolved, unmatched->summary);
}

/* Counts what the store dropped to stay within its limits, and says so
 * once when an app starts losing alerts: not again until its store has
 * shrunk well below the limits (a flood would otherwise log every batch). */
static void account_drops(alerts *s) {
        const alert_store *st = &s->store;
        for (size_t i = 0; i < st->n_apps; i++) {
                app_slot *a = &st->apps[i];
                size_t n = 0;
                for (size_t d = 0; d < _ALERT_DROP_MAX; d++) {
                        if (a->dropped[d] > 0)
                                metrics_counter_add(s->dropped, a->dropped[d], a->name, alert_drop_name(d));
                        n += a->dropped[d];
                }
                memset(a->dropped, 0, sizeof a->dropped);
                if (n > 0 && !a->warned) {
                        log_fields f = { .app = a->name, .result = "dropped" };
                        log_event_send(EV_ALERT, LOG_WARNING, &f,
                                       "alert store full: dropped the %zu oldest alert(s) of %s (limits: %d alerts "
                                       "and %u KiB per app, %u MiB for all apps; %s holds %zu KiB, all apps %zu KiB)",
                                       n, a->name, ALERT_STORE_MAX_PER_APP, ALERT_STORE_APP_BYTES / 1024,
                                       ALERT_STORE_TOTAL_BYTES / (1024 * 1024), a->name, a->bytes / 1024,
                                       st->bytes / 1024);
                        a->warned = true;
                } else if (a->warned && a->n_alerts < ALERT_STORE_MAX_PER_APP * 3 / 4 &&
                           a->bytes < ALERT_STORE_APP_BYTES / 4 * 3 && st->bytes < ALERT_STORE_TOTAL_BYTES / 4 * 3)
                        a->warned = false;
        }
}

static int apply_batch(alerts *s, const webhook_batch *b, size_t *ret_matched, size_t *ret_unmatched) {
        int64_t now = now_realtime_ms();
        alert_store *st = &s->store;
        _cleanup_free_ app_note *notes = calloc(st->n_apps ? st->n_apps : 1, sizeof(app_note));
        if (!notes)
                return -ENOMEM;
        app_note unmatched = { 0 };
        size_t matched = 0;
        int r = 0;

        for (size_t i = 0; i < b->n_alerts && r >= 0; i++) {
                const webhook_alert *a = &b->alerts[i];
                _cleanup_free_ char *key = alert_key(a);
                if (!key) {
                        r = -ENOMEM;
                        break;
                }
                bool concerns_any = false;
                for (size_t j = 0; j < st->n_apps; j++) {
                        app_slot *slot = &st->apps[j];
                        bool concerns = alert_concerns(slot, &a->alert);
                        if (concerns) {
                                concerns_any = true;
                                note_add(&notes[j], a);
                        }
                        if (!a->firing || alert_expired(&a->alert, now)) {
                                /* By key from every app: the config may have
                                 * changed since the alert was routed. */
                                (void)alert_store_remove(st, slot, key);
                                continue;
                        }
                        if (!concerns)
                                continue;
                        int k = alert_store_put(st, slot, key, &a->alert);
                        if (k < 0) {
                                r = k;
                                break;
                        }
                        if (k > 0)
                                notes[j].changed = true;
                }
                if (concerns_any)
                        matched++;
                else
                        note_add(&unmatched, a);
        }

        account_drops(s);
        log_notes(s, notes, &unmatched);

        /* Only now, with the store consistent: the watcher may look alerts up
         * from inside watcher_poll_now. */
        for (size_t j = 0; j < st->n_apps; j++)
                if (notes[j].changed && s->watcher)
                        (void)watcher_poll_now(s->watcher, st->apps[j].name);

        *ret_matched = matched;
        *ret_unmatched = b->n_alerts - matched;
        return r;
}

static int handle_webhook(void *userdata, const listener_request *rq) {
        alerts *s = userdata;
        webhook_batch b = { 0 };
        _cleanup_free_ char *error = NULL;
        int r = webhook_parse(rq->body, rq->len, &b, &error);
        if (r == -ENOMEM)
                return listener_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        if (r < 0) {
                metrics_counter_inc(s->received, receive_result_names[RECEIVED_MALFORMED]);
                log_event_send(EV_ALERT, LOG_WARNING, NULL, "rejected an alert webhook from %s: %s", rq->from,
                               strna(error));
                return listener_reply_error(rq, MHD_HTTP_BAD_REQUEST, error ? error : "malformed payload");
        }

        size_t matched = 0, unmatched = 0;
        r = apply_batch(s, &b, &matched, &unmatched);
        webhook_batch_done(&b);
        if (r < 0)
                return listener_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        metrics_counter_inc(s->received, receive_result_names[RECEIVED_OK]);

        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddStringToObject(o, "status", "ok") ||
                  !cJSON_AddNumberToObject(o, "matched", (double)matched) ||
                  !cJSON_AddNumberToObject(o, "unmatched", (double)unmatched))) {
                cJSON_Delete(o);
                o = NULL;
        }
        return listener_reply_json(rq, MHD_HTTP_OK, o);
}

static void webhook_rejected(void *userdata, unsigned status, const char *from) {
        alerts *s = userdata;
        if (status == MHD_HTTP_UNAUTHORIZED) {
                metrics_counter_inc(s->received, receive_result_names[RECEIVED_UNAUTHORIZED]);
                log_event_send(EV_ALERT, LOG_WARNING, NULL,
                               "rejected an alert webhook from %s: missing or invalid bearer token", from);
                return;
        }
        metrics_counter_inc(s->received, receive_result_names[RECEIVED_TOO_LARGE]);
        log_event_send(EV_ALERT, LOG_WARNING, NULL, "rejected an alert webhook from %s: body larger than 1 MiB", from);
}

/* Expired alerts are dropped first, so the gauge agrees with what a poll
 * would see now. */
static void collect_firing(void *userdata, metrics_emitter *e) {
        alerts *s = userdata;
        int64_t now = now_realtime_ms();
        for (size_t i = 0; i < s->store.n_apps; i++) {
                alert_store_drop_expired(&s->store, &s->store.apps[i], now);
                metrics_emit(e, (double)s->store.apps[i].n_alerts, s->store.apps[i].name);
        }
}

static void collect_bytes(void *userdata, metrics_emitter *e) {
        alerts *s = userdata;
        for (size_t i = 0; i < s->store.n_apps; i++)
                metrics_emit(e, (double)s->store.apps[i].bytes, s->store.apps[i].name);
}

/* ---- lifecycle ---- */

int alerts_new(watcher *w, const config *cfg, metrics_registry *m, alerts **ret) {
        alerts *s = calloc(1, sizeof(alerts));
        if (!s)
                return -ENOMEM;
        s->watcher = w;
        int r = alert_store_from_config(cfg, &s->store);
        if (r >= 0 && m) {
                s->received = metrics_counter_new(m, "rollguard_alerts_received_total",
                                                  "Alert webhook deliveries by result.", "result");
                s->dropped = metrics_counter_new(m, "rollguard_alerts_dropped_total",
                                                 "Stored alerts dropped, oldest first, to stay within the alert "
                                                 "store's limits, by app and limit.",
                                                 "app", "reason");
                s->firing = metrics_callback_new(m, "rollguard_alerts_firing",
                                                 "Firing alerts routed to the app whose endsAt has not passed.",
                                                 METRICS_GAUGE, collect_firing, s, "app");
                s->bytes = metrics_callback_new(m, "rollguard_alerts_stored_bytes",
                                                "Memory the app's stored alerts are counted as (its limit is 1 MiB).",
                                                METRICS_GAUGE, collect_bytes, s, "app");
                if (!s->received || !s->dropped || !s->firing || !s->bytes)
                        r = -ENOMEM;
                /* every result shows, at 0 until it happens */
                for (size_t i = 0; r >= 0 && i < _RECEIVED_MAX; i++)
                        metrics_counter_add(s->received, 0, receive_result_names[i]);
        }
        if (r < 0) {
                alerts_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

alerts *alerts_free(alerts *s) {
        if (!s)
                return NULL;
        metrics_counter_free(s->received);
        metrics_counter_free(s->dropped);
        metrics_callback_free(s->firing);
        metrics_callback_free(s->bytes);
        alert_store_done(&s->store);
        free(s);
        return NULL;
}

listener_route alerts_webhook_route(alerts *s) {
        return (listener_route){
                .method = "POST",
                .path = "/api/v1/alerts",
                .handler = handle_webhook,
                .needs_token = true,
                .rejected = webhook_rejected,
                .userdata = s,
        };
}

int alerts_add_routes(alerts *s, listener *l) {
        listener_route rt = alerts_webhook_route(s);
        return listener_add_route(l, &rt);
}

typedef struct held {
        const app_slot *slot;
        size_t i;
} held;

static int held_cmp(const void *a, const void *b) {
        const held *x = a, *y = b;
        uint64_t sx = x->slot->meta[x->i].seq, sy = y->slot->meta[y->i].seq;
        return sx < sy ? -1 : sx > sy;
}

/* Re-route what we hold under the new config: removed apps lose their
 * alerts, kept apps keep those that still concern them, and an app whose new
 * rules match a stored alert gets it. Oldest first, so the new store ages
 * them as the old one did. */
int alerts_reroute(const alerts *s, const config *cfg, alerts_routes **ret) {
        alert_store st;
        int r = alert_store_from_config(cfg, &st);
        if (r < 0)
                return r;
        size_t n = 0;
        for (size_t i = 0; i < s->store.n_apps; i++)
                n += s->store.apps[i].n_alerts;
        _cleanup_free_ held *all = calloc(n ? n : 1, sizeof(held));
        if (!all) {
                alert_store_done(&st);
                return -ENOMEM;
        }
        n = 0;
        for (size_t i = 0; i < s->store.n_apps; i++)
                for (size_t k = 0; k < s->store.apps[i].n_alerts; k++)
                        all[n++] = (held){ &s->store.apps[i], k };
        qsort(all, n, sizeof(held), held_cmp);
        for (size_t h = 0; h < n; h++) {
                const app_slot *old = all[h].slot;
                size_t k = all[h].i;
                for (size_t j = 0; j < st.n_apps; j++) {
                        if (!alert_concerns(&st.apps[j], &old->alerts[k]))
                                continue;
                        r = alert_store_put(&st, &st.apps[j], old->meta[k].key, &old->alerts[k]);
                        if (r < 0) {
                                alert_store_done(&st);
                                return r;
                        }
                }
        }
        for (size_t j = 0; j < st.n_apps; j++) /* the old store counted those already */
                memset(st.apps[j].dropped, 0, sizeof st.apps[j].dropped);
        alerts_routes *rt = malloc(sizeof(alerts_routes));
        if (!rt) {
                alert_store_done(&st);
                return -ENOMEM;
        }
        rt->store = st;
        *ret = rt;
        return 0;
}

void alerts_reroute_commit(alerts *s, alerts_routes *rt) {
        alert_store_done(&s->store);
        s->store = rt->store;
        free(rt);
}

alerts_routes *alerts_routes_free(alerts_routes *rt) {
        if (rt) {
                alert_store_done(&rt->store);
                free(rt);
        }
        return NULL;
}
