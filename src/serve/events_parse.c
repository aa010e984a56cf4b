/* SPDX-License-Identifier: MIT */
#include "events_parse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* Bounds on what one event may make us keep: EventBridge's ids are UUIDs,
 * its sources "acs.sae" and its types "sae:ChangeOrder:..."; the seen-set
 * holds a copy of each pair. */
#define EVENT_MAX_ID 512
#define EVENT_MAX_SOURCE 512
#define EVENT_MAX_TYPE 256
/* A sender's value quoted in an error message, at most this many bytes. */
#define EVENT_MAX_QUOTED 40

/* ---- app ids ---- */

typedef struct id_entry {
        char *lower;
        size_t len;
        size_t index;
} id_entry;

struct events_ids {
        /* ids made of token characters only, sorted by (len, bytes): a token
         * of the text is looked up by binary search */
        id_entry *tok;
        size_t n_tok;
        /* the rare id with other characters: searched for in the text */
        id_entry *odd;
        size_t n_odd;
        size_t n_ids;
        size_t max_len;
};

static bool is_token_char(unsigned char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

static unsigned char ascii_lower(unsigned char c) {
        return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int entry_cmp(const void *a, const void *b) {
        const id_entry *x = a, *y = b;
        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        int c = memcmp(x->lower, y->lower, x->len);
        if (c != 0)
                return c;
        return x->index < y->index ? -1 : x->index > y->index;
}

static void entries_free(id_entry *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(e[i].lower);
        free(e);
}

events_ids *events_ids_free(events_ids *m) {
        if (!m)
                return NULL;
        entries_free(m->tok, m->n_tok);
        entries_free(m->odd, m->n_odd);
        free(m);
        return NULL;
}

int events_ids_new(const char *const *ids, size_t n_ids, events_ids **ret) {
        events_ids *m = calloc(1, sizeof(events_ids));
        if (!m)
                return -ENOMEM;
        m->n_ids = n_ids;
        if (n_ids > 0) {
                m->tok = calloc(n_ids, sizeof(id_entry));
                m->odd = calloc(n_ids, sizeof(id_entry));
                if (!m->tok || !m->odd) {
                        events_ids_free(m);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n_ids; i++) {
                const char *id = ids[i];
                size_t len = id ? strlen(id) : 0;
                if (len == 0)
                        continue;
                char *lower = malloc(len + 1);
                if (!lower) {
                        events_ids_free(m);
                        return -ENOMEM;
                }
                bool plain = true;
                for (size_t k = 0; k < len; k++) {
                        lower[k] = (char)ascii_lower((unsigned char)id[k]);
                        plain = plain && is_token_char((unsigned char)id[k]);
                }
                lower[len] = '\0';
                id_entry e = { lower, len, i };
                if (plain)
                        m->tok[m->n_tok++] = e;
                else
                        m->odd[m->n_odd++] = e;
                if (len > m->max_len)
                        m->max_len = len;
        }
        if (m->n_tok > 1)
                qsort(m->tok, m->n_tok, sizeof(id_entry), entry_cmp);
        *ret = m;
        return 0;
}

/* ---- naming: which ids an event's text mentions ---- */

typedef struct match_ctx {
        const events_ids *ids;
        size_t *stamp;   /* per id index: the event (number + 1) that last named it */
        size_t event_no; /* + 1 */
        size_t *found;
        size_t n_found, cap;
        char *buf;       /* max_len bytes: a token, lowered */
} match_ctx;

static int found_add(match_ctx *m, size_t index) {
        if (m->stamp[index] == m->event_no)
                return 0;
        if (m->n_found == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 4;
                size_t *n = reallocarray(m->found, cap, sizeof(size_t));
                if (!n)
                        return -ENOMEM;
                m->found = n;
                m->cap = cap;
        }
        m->stamp[index] = m->event_no;
        m->found[m->n_found++] = index;
        return 0;
}

static int match_token(match_ctx *m, const char *t, size_t len) {
        const events_ids *ids = m->ids;
        if (len == 0 || len > ids->max_len || ids->n_tok == 0)
                return 0;
        for (size_t k = 0; k < len; k++)
                m->buf[k] = (char)ascii_lower((unsigned char)t[k]);
        /* lower bound of (len, bytes); equal entries (one id configured for
         * several apps) follow it */
        size_t lo = 0, hi = ids->n_tok;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const id_entry *e = &ids->tok[mid];
                int c = e->len != len ? (e->len < len ? -1 : 1) : memcmp(e->lower, m->buf, len);
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (; lo < ids->n_tok && ids->tok[lo].len == len && memcmp(ids->tok[lo].lower, m->buf, len) == 0; lo++) {
                int r = found_add(m, ids->tok[lo].index);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool equal_lower(const char *s, const char *lower, size_t len) {
        for (size_t k = 0; k < len; k++)
                if (ascii_lower((unsigned char)s[k]) != (unsigned char)lower[k])
                        return false;
        return true;
}

static int scan_text(match_ctx *m, const char *s) {
        if (!s)
                return 0;
        size_t len = strlen(s);
        for (size_t i = 0; i < len;) {
                if (!is_token_char((unsigned char)s[i])) {
                        i++;
                        continue;
                }
                size_t j = i;
                while (j < len && is_token_char((unsigned char)s[j]))
                        j++;
                int r = match_token(m, s + i, j - i);
                if (r < 0)
                        return r;
                i = j;
        }
        const events_ids *ids = m->ids;
        for (size_t o = 0; o < ids->n_odd; o++) {
                const id_entry *e = &ids->odd[o];
                for (size_t i = 0; i + e->len <= len; i++) {
                        if (!equal_lower(s + i, e->lower, e->len))
                                continue;
                        bool left = i == 0 || !is_token_char((unsigned char)s[i - 1]);
                        bool right = i + e->len == len || !is_token_char((unsigned char)s[i + e->len]);
                        if (left && right) {
                                int r = found_add(m, e->index);
                                if (r < 0)
                                        return r;
                                break;
                        }
                }
        }
        return 0;
}

/* Every string and member name in v. cJSON refuses documents nested deeper
 * than CJSON_NESTING_LIMIT, which bounds the recursion. */
static int scan_json(match_ctx *m, const cJSON *v) {
        if (cJSON_IsString(v))
                return scan_text(m, v->valuestring);
        if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
                return 0;
        for (const cJSON *c = v->child; c; c = c->next) {
                int r = cJSON_IsObject(v) ? scan_text(m, c->string) : 0;
                if (r >= 0)
                        r = scan_json(m, c);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int size_cmp(const void *a, const void *b) {
        size_t x = *(const size_t *)a, y = *(const size_t *)b;
        return x < y ? -1 : x > y;
}

/* ---- the envelope ---- */

void cloud_event_batch_done(cloud_event_batch *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n_events; i++) {
                cloud_event *e = &b->events[i];
                free(e->id);
                free(e->source);
                free(e->type);
                free(e->apps);
        }
        free(b->events);
        *b = (cloud_event_batch){ 0 };
}

static int fail(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int fail(char **ret_error, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                va_start(ap, fmt);
                char *s = NULL;
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = s;
        }
        return -EBADMSG;
}

/* A sender's string in an error message: printable ASCII, cut short. */
static void quote(char *buf, size_t bufsz, const char *s) {
        size_t o = 0, i = 0;
        for (; s[i] && o + 1 < bufsz && i < EVENT_MAX_QUOTED; i++) {
                unsigned char c = (unsigned char)s[i];
                buf[o++] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
        }
        buf[o] = '\0';
        if (s[i] && o + 4 < bufsz)
                strcpy(buf + o, "...");
}

/* "where.name" for messages: "id" for a single event, "[3].id" in a batch */
#define AT(where) (*(where) ? (where) : ""), (*(where) ? "." : "")

static int read_attr(const cJSON *ev, const char *where, const char *name, size_t max, bool required,
                     char **ret, char **ret_error) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, name);
        if (!v || cJSON_IsNull(v)) {
                if (required)
                        return fail(ret_error, "%s%s%s: missing", AT(where), name);
                return 0;
        }
        if (!cJSON_IsString(v) || !v->valuestring)
                return fail(ret_error, "%s%s%s: expected a string", AT(where), name);
        size_t len = strlen(v->valuestring);
        if (required && len == 0)
                return fail(ret_error, "%s%s%s: empty", AT(where), name);
        if (len > max)
                return fail(ret_error, "%s%s%s: longer than %zu bytes", AT(where), name, max);
        if (ret) {
                *ret = strdup(v->valuestring);
                if (!*ret)
                        return -ENOMEM;
        }
        return 1;
}

static int parse_event(const cJSON *ev, const char *where, match_ctx *m, cloud_event *out, char **ret_error) {
        if (!cJSON_IsObject(ev)) {
                if (*where)
                        return fail(ret_error, "%s: expected a CloudEvent (a JSON object)", where);
                return fail(ret_error, "expected a CloudEvent (a JSON object) or a batch of them (a JSON array)");
        }

        const cJSON *sv = cJSON_GetObjectItemCaseSensitive(ev, "specversion");
        if (!sv || cJSON_IsNull(sv))
                return fail(ret_error, "%s%sspecversion: missing (CloudEvents 1.0 in structured mode)", AT(where));
        if (!cJSON_IsString(sv) || !sv->valuestring)
                return fail(ret_error, "%s%sspecversion: expected a string", AT(where));
        if (!streq(sv->valuestring, "1.0")) {
                char q[EVENT_MAX_QUOTED + 8];
                quote(q, sizeof q, sv->valuestring);
                return fail(ret_error, "%s%sspecversion: expected \"1.0\", got \"%s\"", AT(where), q);
        }

        int r = read_attr(ev, where, "id", EVENT_MAX_ID, true, &out->id, ret_error);
        if (r >= 0)
                r = read_attr(ev, where, "source", EVENT_MAX_SOURCE, true, &out->source, ret_error);
        if (r >= 0)
                r = read_attr(ev, where, "type", EVENT_MAX_TYPE, true, &out->type, ret_error);
        if (r >= 0)
                r = read_attr(ev, where, "subject", SIZE_MAX, false, NULL, ret_error);
        if (r < 0)
                return r;

        m->event_no++;
        m->n_found = 0;
        const cJSON *subject = cJSON_GetObjectItemCaseSensitive(ev, "subject");
        r = cJSON_IsString(subject) ? scan_text(m, subject->valuestring) : 0;
        if (r >= 0)
                r = scan_json(m, cJSON_GetObjectItemCaseSensitive(ev, "data"));
        if (r < 0)
                return r;
        if (m->n_found > 0) {
                out->apps = malloc(m->n_found * sizeof(size_t));
                if (!out->apps)
                        return -ENOMEM;
                memcpy(out->apps, m->found, m->n_found * sizeof(size_t));
                out->n_apps = m->n_found;
                qsort(out->apps, out->n_apps, sizeof(size_t), size_cmp);
        }
        return 0;
}

static const char *skip_space(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
                p++;
        return p;
}

int events_parse(const char *body, size_t len, const events_ids *ids, cloud_event_batch *out, char **ret_error) {
        *out = (cloud_event_batch){ 0 };
        if (!body || len == 0)
                return fail(ret_error, "empty body");

        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
        if (end && (end < body || end > body + len))
                end = NULL; /* never trust a pointer we did not compute */
        if (root && end)
                end = skip_space(end, body + len); /* trailing data: point at it */
        if (!root || !end || end != body + len) {
                size_t at = end ? (size_t)(end - body) : 0;
                cJSON_Delete(root);
                return fail(ret_error, "malformed JSON near byte %zu", at);
        }

        size_t n = cJSON_IsArray(root) ? (size_t)cJSON_GetArraySize(root) : 1;
        match_ctx m = { .ids = ids };
        int r = 0;
        if (ids && ids->n_ids > 0) {
                m.stamp = calloc(ids->n_ids, sizeof(size_t));
                m.buf = malloc(ids->max_len ? ids->max_len : 1);
                if (!m.stamp || !m.buf)
                        r = -ENOMEM;
        } else {
                static const events_ids none = { 0 };
                m.ids = &none;
        }
        if (r >= 0 && n > 0) {
                out->events = calloc(n, sizeof(cloud_event));
                if (!out->events)
                        r = -ENOMEM;
        }
        if (r >= 0 && cJSON_IsArray(root)) {
                size_t i = 0;
                char where[32];
                for (const cJSON *ev = root->child; ev && r >= 0 && i < n; ev = ev->next, i++) {
                        out->n_events = i + 1;
                        r = parse_event(ev, json_where_item(where, sizeof where, "", i), &m, &out->events[i],
                                        ret_error);
                }
        } else if (r >= 0) {
                out->n_events = 1;
                r = parse_event(root, "", &m, &out->events[0], ret_error);
        }

        free(m.stamp);
        free(m.buf);
        free(m.found);
        cJSON_Delete(root);
        if (r < 0)
                cloud_event_batch_done(out);
        if (r == -ENOMEM && ret_error) {
                free(*ret_error);
                *ret_error = NULL;
        }
        return r < 0 ? r : 0;
}

/* ---- recent events ---- */

typedef struct seen_entry {
        uint64_t hash;
        char *key;
} seen_entry;

struct events_seen {
        seen_entry *ring;
        size_t capacity, n, next;
};

events_seen *events_seen_new(size_t capacity) {
        if (capacity == 0)
                capacity = 1;
        events_seen *s = calloc(1, sizeof(events_seen));
        if (!s)
                return NULL;
        s->ring = calloc(capacity, sizeof(seen_entry));
        if (!s->ring) {
                free(s);
                return NULL;
        }
        s->capacity = capacity;
        return s;
}

events_seen *events_seen_free(events_seen *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                free(s->ring[i].key);
        free(s->ring);
        free(s);
        return NULL;
}

static uint64_t fnv1a(const char *s) {
        uint64_t h = UINT64_C(14695981039346656037);
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= UINT64_C(1099511628211);
        }
        return h;
}

int events_seen_check(events_seen *s, const char *source, const char *id) {
        /* the source's length first, so no id can make another pair's key */
        _cleanup_free_ char *key = strdup_printf("%zu:%s%s", strlen(source ? source : ""), source ? source : "",
                                                 id ? id : "");
        if (!key)
                return -ENOMEM;
        uint64_t h = fnv1a(key);
        for (size_t i = 0; i < s->n; i++)
                if (s->ring[i].hash == h && streq(s->ring[i].key, key))
                        return 1;
        seen_entry *slot = &s->ring[s->next];
        if (s->n == s->capacity)
                free(slot->key);
        else
                s->n++;
        *slot = (seen_entry){ h, TAKE_PTR(key) };
        s->next = (s->next + 1) % s->capacity;
        return 0;
}
