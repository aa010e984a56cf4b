/* SPDX-License-Identifier: MIT */
#include "alerts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h> /* status codes */
#include <stdio.h>
#include <sys/types.h>

#include "log.h"
#include "util.h"

/* Oldest alerts are evicted past this many per app: a sender with
 * send_resolved: false and no endsAt would otherwise grow the set forever. */
#define ALERTS_MAX_PER_APP 1000

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

typedef struct matcher_set {
        label_pair *m;
        size_t n;
} matcher_set;

/* One configured app: how alerts are routed to it (copied from the config so
 * a reload that frees the old config leaves nothing dangling) and the firing
 * alerts routed so far. alerts[] is contiguous because alerts_lookup hands it
 * out as is; keys[i] identifies alerts[i] (fingerprint or label set). */
typedef struct app_slot {
        char *name;
        matcher_set *sets;
        size_t n_sets;

        firing_alert *alerts;
        char **keys;
        size_t n_alerts;
        size_t cap;
} app_slot;

struct alerts {
        watcher *watcher;

        app_slot *apps;
        size_t n_apps;

        metrics_counter *received;
        metrics_callback *firing;
};

struct alerts_routes {
        app_slot *apps;
        size_t n_apps;
};

/* ---- small helpers ---- */

static void labels_free(label_pair *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].value);
        }
        free(p);
}

static void firing_alert_done(firing_alert *a) {
        labels_free(a->labels, a->n_labels);
        *a = (firing_alert){ 0 };
}

static int labels_copy(const label_pair *src, size_t n, label_pair **ret) {
        if (n == 0) {
                *ret = NULL;
                return 0;
        }
        label_pair *l = calloc(n, sizeof(label_pair));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i].name = strdup_null(src[i].name);
                l[i].value = strdup_null(src[i].value);
                if ((src[i].name && !l[i].name) || (src[i].value && !l[i].value)) {
                        labels_free(l, n);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

static int firing_alert_copy(firing_alert *dst, const firing_alert *src) {
        firing_alert c = { .n_labels = src->n_labels, .ends_at_ms = src->ends_at_ms };
        int r = labels_copy(src->labels, src->n_labels, &c.labels);
        if (r < 0)
                return r;
        *dst = c;
        return 0;
}

static bool firing_alert_equal(const firing_alert *a, const firing_alert *b) {
        if (a->ends_at_ms != b->ends_at_ms || a->n_labels != b->n_labels)
                return false;
        for (size_t i = 0; i < a->n_labels; i++)
                if (!streq_null(a->labels[i].name, b->labels[i].name) ||
                    !streq_null(a->labels[i].value, b->labels[i].value))
                        return false;
        return true;
}

static const char *label_value(const firing_alert *a, const char *name) {
        for (size_t i = 0; i < a->n_labels; i++)
                if (a->labels[i].name && streq(a->labels[i].name, name))
                        return a->labels[i].value;
        return NULL;
}

static bool alert_expired(const firing_alert *a, int64_t now_ms) {
        return a->ends_at_ms != 0 && a->ends_at_ms <= now_ms;
}

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

/* ---- routing table and store ---- */

static void app_slot_done(app_slot *a) {
        free(a->name);
        for (size_t i = 0; i < a->n_sets; i++)
                labels_free(a->sets[i].m, a->sets[i].n);
        free(a->sets);
        for (size_t i = 0; i < a->n_alerts; i++) {
                firing_alert_done(&a->alerts[i]);
                free(a->keys[i]);
        }
        free(a->alerts);
        free(a->keys);
        *a = (app_slot){ 0 };
}

static void app_slots_free(app_slot *apps, size_t n) {
        for (size_t i = 0; i < n; i++)
                app_slot_done(&apps[i]);
        free(apps);
}

static int app_slots_from_config(const config *cfg, app_slot **ret, size_t *ret_n) {
        if (cfg->n_apps == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        app_slot *apps = calloc(cfg->n_apps, sizeof(app_slot));
        if (!apps)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < cfg->n_apps; i++) {
                const app_config *ac = &cfg->apps[i];
                app_slot *a = &apps[n++];
                a->name = strdup(ac->name ? ac->name : "");
                if (!a->name)
                        goto oom;
                size_t n_sets = 0;
                for (size_t j = 0; j < ac->n_rules; j++)
                        if (ac->rules[j].n_alert > 0)
                                n_sets++;
                if (n_sets == 0)
                        continue;
                a->sets = calloc(n_sets, sizeof(matcher_set));
                if (!a->sets)
                        goto oom;
                for (size_t j = 0; j < ac->n_rules; j++) {
                        const rule *r = &ac->rules[j];
                        if (r->n_alert == 0)
                                continue;
                        matcher_set *m = &a->sets[a->n_sets];
                        if (labels_copy(r->alert, r->n_alert, &m->m) < 0)
                                goto oom;
                        m->n = r->n_alert;
                        a->n_sets++;
                }
        }
        *ret = apps;
        *ret_n = n;
        return 0;
oom:
        app_slots_free(apps, n);
        return -ENOMEM;
}

static bool matchers_match(const matcher_set *m, const firing_alert *a) {
        if (m->n == 0)
                return false;
        for (size_t i = 0; i < m->n; i++) {
                const char *v = m->m[i].name ? label_value(a, m->m[i].name) : NULL;
                if (!v || !streq_null(v, m->m[i].value))
                        return false;
        }
        return true;
}

/* SPEC 7: the alert names the app (label app="<name>"), or, when it names
 * no app, one of the app's rules has `alert:` matchers it satisfies. An alert
 * that names another app never reaches this one, whatever its other labels:
 * cart's HighErrorRate must not roll back shop-api's release. */
static bool alert_concerns(const app_slot *a, const firing_alert *fa) {
        const char *app = label_value(fa, "app");
        if (app)
                return streq(app, a->name);
        for (size_t i = 0; i < a->n_sets; i++)
                if (matchers_match(&a->sets[i], fa))
                        return true;
        return false;
}

static app_slot *find_slot(alerts *s, const char *name) {
        for (size_t i = 0; i < s->n_apps; i++)
                if (streq(s->apps[i].name, name))
                        return &s->apps[i];
        return NULL;
}

static ssize_t slot_find_key(const app_slot *a, const char *key) {
        for (size_t i = 0; i < a->n_alerts; i++)
                if (streq(a->keys[i], key))
                        return (ssize_t)i;
        return -1;
}

static void slot_remove_at(app_slot *a, size_t i) {
        firing_alert_done(&a->alerts[i]);
        free(a->keys[i]);
        memmove(&a->alerts[i], &a->alerts[i + 1], (a->n_alerts - i - 1) * sizeof(firing_alert));
        memmove(&a->keys[i], &a->keys[i + 1], (a->n_alerts - i - 1) * sizeof(char *));
        a->n_alerts--;
}

static bool slot_remove_key(app_slot *a, const char *key) {
        ssize_t i = slot_find_key(a, key);
        if (i < 0)
                return false;
        slot_remove_at(a, (size_t)i);
        return true;
}

static void slot_drop_expired(app_slot *a, int64_t now_ms) {
        size_t o = 0;
        for (size_t i = 0; i < a->n_alerts; i++) {
                if (alert_expired(&a->alerts[i], now_ms)) {
                        firing_alert_done(&a->alerts[i]);
                        free(a->keys[i]);
                        continue;
                }
                a->alerts[o] = a->alerts[i];
                a->keys[o] = a->keys[i];
                o++;
        }
        a->n_alerts = o;
}

/* Adds or replaces the alert under key. Returns 1 when the app's set changed,
 * 0 when this was a repeat of what we hold, -ENOMEM. */
static int slot_put(app_slot *a, const char *key, const firing_alert *src) {
        ssize_t at = slot_find_key(a, key);
        if (at >= 0 && firing_alert_equal(&a->alerts[at], src))
                return 0;

        firing_alert copy;
        int r = firing_alert_copy(&copy, src);
        if (r < 0)
                return r;

        if (at >= 0) {
                firing_alert_done(&a->alerts[at]);
                a->alerts[at] = copy;
                return 1;
        }

        _cleanup_free_ char *k = strdup(key);
        if (!k) {
                firing_alert_done(&copy);
                return -ENOMEM;
        }
        if (a->n_alerts >= ALERTS_MAX_PER_APP)
                slot_remove_at(a, 0);
        if (a->n_alerts == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 4;
                firing_alert *na = reallocarray(a->alerts, cap, sizeof(firing_alert));
                if (!na) {
                        firing_alert_done(&copy);
                        return -ENOMEM;
                }
                a->alerts = na;
                char **nk = reallocarray(a->keys, cap, sizeof(char *));
                if (!nk) {
                        firing_alert_done(&copy);
                        return -ENOMEM;
                }
                a->keys = nk;
                a->cap = cap;
        }
        a->alerts[a->n_alerts] = copy;
        a->keys[a->n_alerts] = TAKE_PTR(k);
        a->n_alerts++;
        return 1;
}

size_t alerts_lookup(void *userdata, const char *app, int64_t now_ms, const firing_alert **ret) {
        alerts *s = userdata;
        app_slot *a = s && app ? find_slot(s, app) : NULL;
        if (!a) {
                *ret = NULL;
                return 0;
        }
        slot_drop_expired(a, now_ms);
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
        safe_copy(name, sizeof name, label_value(&a->alert, "alertname"));
        int w = snprintf(n->summary + used, sizeof n->summary - used, "%s%s %s", used ? ", " : "",
                         *name ? name : "(no alertname)", a->firing ? "firing" : "resolved");
        /* A cut-off entry reads worse than a count: end it with an ellipsis. */
        if (w < 0 || (size_t)w >= sizeof n->summary - used)
                memcpy(n->summary + sizeof n->summary - 4, "...", 4);
}

static void log_notes(alerts *s, const app_note *notes, const app_note *unmatched) {
        for (size_t i = 0; i < s->n_apps; i++) {
                const app_note *n = &notes[i];
                if (n->firing + n->resolved == 0)
                        continue;
                log_fields f = { .app = s->apps[i].name, .result = n->firing ? "firing" : "resolved" };
                log_event_send(EV_ALERT, LOG_INFO, &f, "alert webhook: %s (%zu firing now)", n->summary,
                               s->apps[i].n_alerts);
        }
        if (unmatched->firing + unmatched->resolved > 0)
                log_event_send(EV_ALERT, LOG_INFO, NULL, "alert webhook: %zu alert(s) concern no configured app: %s",
                               unmatched->firing + unmatched->resolved, unmatched->summary);
}

static int apply_batch(alerts *s, const webhook_batch *b, size_t *ret_matched, size_t *ret_unmatched) {
        int64_t now = now_realtime_ms();
        _cleanup_free_ app_note *notes = calloc(s->n_apps ? s->n_apps : 1, sizeof(app_note));
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
                for (size_t j = 0; j < s->n_apps; j++) {
                        app_slot *slot = &s->apps[j];
                        bool concerns = alert_concerns(slot, &a->alert);
                        if (concerns) {
                                concerns_any = true;
                                note_add(&notes[j], a);
                        }
                        if (!a->firing || alert_expired(&a->alert, now)) {
                                /* By key from every app: the config may have
                                 * changed since the alert was routed. */
                                slot_remove_key(slot, key);
                                continue;
                        }
                        if (!concerns)
                                continue;
                        int k = slot_put(slot, key, &a->alert);
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

        log_notes(s, notes, &unmatched);

        /* Only now, with the store consistent: the watcher may look alerts up
         * from inside watcher_poll_now. */
        for (size_t j = 0; j < s->n_apps; j++)
                if (notes[j].changed && s->watcher)
                        (void)watcher_poll_now(s->watcher, s->apps[j].name);

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
        for (size_t i = 0; i < s->n_apps; i++) {
                slot_drop_expired(&s->apps[i], now);
                metrics_emit(e, (double)s->apps[i].n_alerts, s->apps[i].name);
        }
}

/* ---- lifecycle ---- */

int alerts_new(watcher *w, const config *cfg, metrics_registry *m, alerts **ret) {
        alerts *s = calloc(1, sizeof(alerts));
        if (!s)
                return -ENOMEM;
        s->watcher = w;
        int r = app_slots_from_config(cfg, &s->apps, &s->n_apps);
        if (r >= 0 && m) {
                s->received = metrics_counter_new(m, "rollguard_alerts_received_total",
                                                  "Alert webhook deliveries by result.", "result");
                s->firing = metrics_callback_new(m, "rollguard_alerts_firing",
                                                 "Firing alerts routed to the app whose endsAt has not passed.",
                                                 METRICS_GAUGE, collect_firing, s, "app");
                if (!s->received || !s->firing)
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
        metrics_callback_free(s->firing);
        app_slots_free(s->apps, s->n_apps);
        free(s);
        return NULL;
}

int alerts_add_routes(alerts *s, listener *l) {
        return listener_add_route(l, &(listener_route){
                                             .method = "POST",
                                             .path = "/api/v1/alerts",
                                             .handler = handle_webhook,
                                             .needs_token = true,
                                             .rejected = webhook_rejected,
                                             .userdata = s,
                                     });
}

/* Re-route what we hold under the new config: removed apps lose their
 * alerts, kept apps keep those that still concern them, and an app whose new
 * rules match a stored alert gets it. */
int alerts_reroute(const alerts *s, const config *cfg, alerts_routes **ret) {
        app_slot *apps = NULL;
        size_t n_apps = 0;
        int r = app_slots_from_config(cfg, &apps, &n_apps);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_apps; i++) {
                const app_slot *old = &s->apps[i];
                for (size_t k = 0; k < old->n_alerts; k++)
                        for (size_t j = 0; j < n_apps; j++) {
                                if (!alert_concerns(&apps[j], &old->alerts[k]))
                                        continue;
                                r = slot_put(&apps[j], old->keys[k], &old->alerts[k]);
                                if (r < 0) {
                                        app_slots_free(apps, n_apps);
                                        return r;
                                }
                        }
        }
        alerts_routes *rt = malloc(sizeof(alerts_routes));
        if (!rt) {
                app_slots_free(apps, n_apps);
                return -ENOMEM;
        }
        *rt = (alerts_routes){ apps, n_apps };
        *ret = rt;
        return 0;
}

void alerts_reroute_commit(alerts *s, alerts_routes *rt) {
        app_slots_free(s->apps, s->n_apps);
        s->apps = rt->apps;
        s->n_apps = rt->n_apps;
        free(rt);
}

alerts_routes *alerts_routes_free(alerts_routes *rt) {
        if (rt) {
                app_slots_free(rt->apps, rt->n_apps);
                free(rt);
        }
        return NULL;
}
