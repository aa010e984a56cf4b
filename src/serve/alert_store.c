/* SPDX-License-Identifier: MIT */
#include "alert_store.h"

#include <errno.h>

#include "util.h"

/* What malloc keeps around each allocation, roughly: counted so that many
 * tiny labels cost what they really cost. */
#define ALLOC_OVERHEAD 16u

static const char *const drop_names[_ALERT_DROP_MAX] = {
        [ALERT_DROP_APP_COUNT] = "app_count",
        [ALERT_DROP_APP_BYTES] = "app_bytes",
        [ALERT_DROP_TOTAL_BYTES] = "total_bytes",
};

const char *alert_drop_name(alert_drop d) {
        return d < _ALERT_DROP_MAX ? drop_names[d] : NULL;
}

/* ---- one alert ---- */

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

const char *alert_label(const firing_alert *a, const char *name) {
        for (size_t i = 0; i < a->n_labels; i++)
                if (a->labels[i].name && streq(a->labels[i].name, name))
                        return a->labels[i].value;
        return NULL;
}

bool alert_expired(const firing_alert *a, int64_t now_ms) {
        return a->ends_at_ms != 0 && a->ends_at_ms <= now_ms;
}

size_t alert_store_bytes(const firing_alert *a, const char *key) {
        size_t n = sizeof(firing_alert) + sizeof(alert_meta) + strlen(key) + 1 + ALLOC_OVERHEAD;
        if (a->n_labels > 0)
                n += a->n_labels * sizeof(label_pair) + ALLOC_OVERHEAD;
        for (size_t i = 0; i < a->n_labels; i++) {
                if (a->labels[i].name)
                        n += strlen(a->labels[i].name) + 1 + ALLOC_OVERHEAD;
                if (a->labels[i].value)
                        n += strlen(a->labels[i].value) + 1 + ALLOC_OVERHEAD;
        }
        return n;
}

/* ---- apps ---- */

static void app_slot_done(app_slot *a) {
        free(a->name);
        for (size_t i = 0; i < a->n_sets; i++)
                labels_free(a->sets[i].m, a->sets[i].n);
        free(a->sets);
        for (size_t i = 0; i < a->n_alerts; i++) {
                firing_alert_done(&a->alerts[i]);
                free(a->meta[i].key);
        }
        free(a->alerts);
        free(a->meta);
        *a = (app_slot){ 0 };
}

void alert_store_done(alert_store *s) {
        for (size_t i = 0; i < s->n_apps; i++)
                app_slot_done(&s->apps[i]);
        free(s->apps);
        *s = (alert_store){ 0 };
}

int alert_store_from_config(const config *cfg, alert_store *ret) {
        alert_store s = { 0 };
        if (cfg->n_apps == 0) {
                *ret = s;
                return 0;
        }
        s.apps = calloc(cfg->n_apps, sizeof(app_slot));
        if (!s.apps)
                return -ENOMEM;
        for (size_t i = 0; i < cfg->n_apps; i++) {
                const app_config *ac = &cfg->apps[i];
                app_slot *a = &s.apps[s.n_apps++];
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
        *ret = s;
        return 0;
oom:
        alert_store_done(&s);
        return -ENOMEM;
}

app_slot *alert_store_find(alert_store *s, const char *name) {
        for (size_t i = 0; i < s->n_apps; i++)
                if (streq(s->apps[i].name, name))
                        return &s->apps[i];
        return NULL;
}

static bool matchers_match(const matcher_set *m, const firing_alert *a) {
        if (m->n == 0)
                return false;
        for (size_t i = 0; i < m->n; i++) {
                const char *v = m->m[i].name ? alert_label(a, m->m[i].name) : NULL;
                if (!v || !streq_null(v, m->m[i].value))
                        return false;
        }
        return true;
}

/* An alert that names another app never reaches this one, whatever its
 * other labels: cart's HighErrorRate must not roll back shop-api's release. */
bool alert_concerns(const app_slot *a, const firing_alert *fa) {
        const char *app = alert_label(fa, "app");
        if (app)
                return streq(app, a->name);
        for (size_t i = 0; i < a->n_sets; i++)
                if (matchers_match(&a->sets[i], fa))
                        return true;
        return false;
}

/* ---- the alerts of an app ---- */

static ssize_t slot_find_key(const app_slot *a, const char *key) {
        for (size_t i = 0; i < a->n_alerts; i++)
                if (streq(a->meta[i].key, key))
                        return (ssize_t)i;
        return -1;
}

static void slot_remove_at(alert_store *s, app_slot *a, size_t i) {
        firing_alert_done(&a->alerts[i]);
        free(a->meta[i].key);
        a->bytes -= a->meta[i].bytes;
        s->bytes -= a->meta[i].bytes;
        memmove(&a->alerts[i], &a->alerts[i + 1], (a->n_alerts - i - 1) * sizeof(firing_alert));
        memmove(&a->meta[i], &a->meta[i + 1], (a->n_alerts - i - 1) * sizeof(alert_meta));
        a->n_alerts--;
}

/* The entry at i becomes the newest. */
static void slot_move_to_end(alert_store *s, app_slot *a, size_t i) {
        firing_alert fa = a->alerts[i];
        alert_meta m = a->meta[i];
        memmove(&a->alerts[i], &a->alerts[i + 1], (a->n_alerts - i - 1) * sizeof(firing_alert));
        memmove(&a->meta[i], &a->meta[i + 1], (a->n_alerts - i - 1) * sizeof(alert_meta));
        m.seq = ++s->seq;
        a->alerts[a->n_alerts - 1] = fa;
        a->meta[a->n_alerts - 1] = m;
}

bool alert_store_remove(alert_store *s, app_slot *a, const char *key) {
        ssize_t i = slot_find_key(a, key);
        if (i < 0)
                return false;
        slot_remove_at(s, a, (size_t)i);
        return true;
}

void alert_store_drop_expired(alert_store *s, app_slot *a, int64_t now_ms) {
        for (size_t i = a->n_alerts; i > 0; i--)
                if (alert_expired(&a->alerts[i - 1], now_ms))
                        slot_remove_at(s, a, i - 1);
}

/* The oldest alert anywhere but the newest one (which is what we are
 * making room for). */
static app_slot *oldest_slot(alert_store *s, const app_slot *keep, size_t keep_at) {
        app_slot *best = NULL;
        for (size_t i = 0; i < s->n_apps; i++) {
                app_slot *a = &s->apps[i];
                if (a->n_alerts == 0 || (a == keep && keep_at == 0))
                        continue;
                if (!best || a->meta[0].seq < best->meta[0].seq)
                        best = a;
        }
        return best;
}

static void enforce_limits(alert_store *s, app_slot *a) {
        /* the newest alert, at the end of a, always stays: one alert is far
         * below every budget (the webhook caps labels) */
        while (a->n_alerts > ALERT_STORE_MAX_PER_APP) {
                slot_remove_at(s, a, 0);
                a->dropped[ALERT_DROP_APP_COUNT]++;
        }
        while (a->bytes > ALERT_STORE_APP_BYTES && a->n_alerts > 1) {
                slot_remove_at(s, a, 0);
                a->dropped[ALERT_DROP_APP_BYTES]++;
        }
        while (s->bytes > ALERT_STORE_TOTAL_BYTES) {
                app_slot *o = oldest_slot(s, a, a->n_alerts - 1);
                if (!o)
                        break;
                slot_remove_at(s, o, 0);
                o->dropped[ALERT_DROP_TOTAL_BYTES]++;
        }
}

static int slot_reserve(app_slot *a) {
        if (a->n_alerts < a->cap)
                return 0;
        size_t cap = a->cap ? a->cap * 2 : 4;
        firing_alert *na = reallocarray(a->alerts, cap, sizeof(firing_alert));
        if (!na)
                return -ENOMEM;
        a->alerts = na;
        alert_meta *nm = reallocarray(a->meta, cap, sizeof(alert_meta));
        if (!nm)
                return -ENOMEM;
        a->meta = nm;
        a->cap = cap;
        return 0;
}

int alert_store_put(alert_store *s, app_slot *a, const char *key, const firing_alert *src) {
        ssize_t at = slot_find_key(a, key);
        if (at >= 0 && firing_alert_equal(&a->alerts[at], src)) {
                /* a repeat: still the freshest news about it */
                slot_move_to_end(s, a, (size_t)at);
                return 0;
        }

        alert_meta m = { .bytes = alert_store_bytes(src, key) };
        m.key = strdup(key);
        firing_alert copy = { 0 };
        if (!m.key || firing_alert_copy(&copy, src) < 0 || slot_reserve(a) < 0) {
                free(m.key);
                firing_alert_done(&copy);
                return -ENOMEM;
        }
        if (at >= 0)
                slot_remove_at(s, a, (size_t)at);
        m.seq = ++s->seq;
        a->alerts[a->n_alerts] = copy;
        a->meta[a->n_alerts] = m;
        a->n_alerts++;
        a->bytes += m.bytes;
        s->bytes += m.bytes;
        enforce_limits(s, a);
        return 1;
}
