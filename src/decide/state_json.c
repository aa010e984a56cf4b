/* SPDX-License-Identifier: MIT */
#include "state_json.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>

#include "json.h"
#include "util.h"

#define STATE_VERSION 1

static void app_state_donep(app_state *s) {
        app_state_done(s);
}

static void cjson_deletep(cJSON **p) {
        cJSON_Delete(*p);
}
#define _cleanup_cjson_ _cleanup_(cjson_deletep)

static bool add_string_or_null(cJSON *obj, const char *name, const char *value) {
        if (value)
                return cJSON_AddStringToObject(obj, name, value);
        return cJSON_AddNullToObject(obj, name);
}

static bool add_time(cJSON *obj, const char *name, int64_t value) {
        return cJSON_AddNumberToObject(obj, name, (double) value);
}

static cJSON *act_to_json(const act_record *a) {
        _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        if (!cJSON_AddStringToObject(o, "change_order_id", a->change_order_id) ||
            !cJSON_AddStringToObject(o, "rule", a->rule) ||
            !cJSON_AddStringToObject(o, "action", rule_action_name(a->action)) ||
            !add_time(o, "intent_ms", a->intent_ms) ||
            !cJSON_AddStringToObject(o, "result", act_result_name(a->result)) ||
            !add_string_or_null(o, "detail", a->detail) ||
            !add_string_or_null(o, "rollback_order_id", a->rollback_order_id) ||
            !add_time(o, "finished_ms", a->finished_ms))
                return NULL;
        return TAKE_PTR(o);
}

static cJSON *pending_to_json(const pending_match *p) {
        _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        if (!cJSON_AddStringToObject(o, "change_order_id", p->change_order_id) ||
            !cJSON_AddStringToObject(o, "rule", p->rule) || !add_time(o, "since_ms", p->since_ms))
                return NULL;
        return TAKE_PTR(o);
}

char *state_to_json(const app_state *s) {
        if (!s || !app_state_valid(s)) {
                errno = EINVAL;
                return NULL;
        }

        _cleanup_cjson_ cJSON *root = cJSON_CreateObject();
        if (!root)
                return NULL;
        if (!cJSON_AddNumberToObject(root, "version", STATE_VERSION) ||
            !cJSON_AddStringToObject(root, "app", s->app) ||
            (s->name && !cJSON_AddStringToObject(root, "name", s->name)) ||
            !add_time(root, "cooldown_until_ms", s->cooldown_until_ms) ||
            !add_string_or_null(root, "last_change_order_id", s->last_change_order_id))
                return NULL;

        cJSON *acts = cJSON_AddArrayToObject(root, "acts");
        if (!acts)
                return NULL;
        for (size_t i = 0; i < s->n_acts; i++) {
                cJSON *o = act_to_json(&s->acts[i]);
                if (!o || !cJSON_AddItemToArray(acts, o)) {
                        cJSON_Delete(o);
                        return NULL;
                }
        }

        cJSON *pending = cJSON_AddArrayToObject(root, "pending");
        if (!pending)
                return NULL;
        for (size_t i = 0; i < s->n_pending; i++) {
                cJSON *o = pending_to_json(&s->pending[i]);
                if (!o || !cJSON_AddItemToArray(pending, o)) {
                        cJSON_Delete(o);
                        return NULL;
                }
        }

        /* indented: an operator reading this file during an incident should
         * not need a JSON pretty-printer */
        _cleanup_free_ char *text = cJSON_Print(root);
        if (!text)
                return NULL;
        return strdup_printf("%s\n", text);
}

/* Sets *ret_error (first error wins) and returns -EBADMSG. */
_printf_(2, 3) static int bad(char **ret_error, const char *fmt, ...) {
        if (ret_error && !*ret_error) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EBADMSG;
}

/* Our own file, so types are strict (unlike the cloud's responses). */
static int read_string(const cJSON *obj, const char *where, const char *name, bool required,
                       char **ret, char **ret_error) {
        const cJSON *v = json_member(obj, name);
        if (!v) {
                if (required)
                        return bad(ret_error, "%s\"%s\" is missing", where, name);
                return 0;
        }
        if (!cJSON_IsString(v) || !v->valuestring)
                return bad(ret_error, "%s\"%s\" is not a string", where, name);
        char *c = strdup(v->valuestring);
        if (!c)
                return -ENOMEM;
        free(*ret);
        *ret = c;
        return 0;
}

static int read_time(const cJSON *obj, const char *where, const char *name, bool required,
                     int64_t *ret, char **ret_error) {
        const cJSON *v = json_member(obj, name);
        if (!v) {
                if (required)
                        return bad(ret_error, "%s\"%s\" is missing", where, name);
                *ret = 0;
                return 0;
        }
        if (!cJSON_IsNumber(v))
                return bad(ret_error, "%s\"%s\" is not a number", where, name);
        int64_t t;
        if (json_get_int64(obj, name, &t) <= 0 || !state_time_valid(t))
                return bad(ret_error, "%s\"%s\" is not a timestamp in milliseconds", where, name);
        *ret = t;
        return 0;
}

static int act_from_json(const cJSON *o, size_t index, act_record *a, char **ret_error) {
        char where[48];
        snprintf(where, sizeof where, "acts[%zu]: ", index);
        if (!cJSON_IsObject(o))
                return bad(ret_error, "%sis not an object", where);

        int r;
        if ((r = read_string(o, where, "change_order_id", true, &a->change_order_id, ret_error)) < 0 ||
            (r = read_string(o, where, "rule", true, &a->rule, ret_error)) < 0 ||
            (r = read_time(o, where, "intent_ms", true, &a->intent_ms, ret_error)) < 0 ||
            (r = read_time(o, where, "finished_ms", false, &a->finished_ms, ret_error)) < 0 ||
            (r = read_string(o, where, "detail", false, &a->detail, ret_error)) < 0 ||
            (r = read_string(o, where, "rollback_order_id", false, &a->rollback_order_id, ret_error)) < 0)
                return r;

        _cleanup_free_ char *action = NULL, *result = NULL;
        if ((r = read_string(o, where, "action", true, &action, ret_error)) < 0 ||
            (r = read_string(o, where, "result", true, &result, ret_error)) < 0)
                return r;
        int v = rule_action_from_string(action);
        if (v < 0)
                return bad(ret_error, "%sunknown action \"%s\"", where, action);
        a->action = (rule_action) v;
        v = act_result_from_string(result);
        if (v < 0)
                return bad(ret_error, "%sunknown result \"%s\"", where, result);
        a->result = (act_result) v;
        return 0;
}

static int pending_from_json(const cJSON *o, size_t index, pending_match *p, char **ret_error) {
        char where[48];
        snprintf(where, sizeof where, "pending[%zu]: ", index);
        if (!cJSON_IsObject(o))
                return bad(ret_error, "%sis not an object", where);
        int r;
        if ((r = read_string(o, where, "change_order_id", true, &p->change_order_id, ret_error)) < 0 ||
            (r = read_string(o, where, "rule", true, &p->rule, ret_error)) < 0 ||
            (r = read_time(o, where, "since_ms", true, &p->since_ms, ret_error)) < 0)
                return r;
        return 0;
}

/* Arrays longer than the caps keep their newest (last) entries, as
 * state_add_act would have. */
static const cJSON *array_skip_oldest(const cJSON *array, size_t max, size_t *ret_n) {
        size_t n = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, array)
                n++;
        const cJSON *first = array->child;
        for (size_t skip = n > max ? n - max : 0; skip > 0; skip--)
                first = first->next;
        *ret_n = n > max ? max : n;
        return first;
}

static int state_from_cjson(const cJSON *root, app_state *s, char **ret_error) {
        if (!cJSON_IsObject(root))
                return bad(ret_error, "top level is not an object");

        const cJSON *version = json_member(root, "version");
        if (!version)
                return bad(ret_error, "\"version\" is missing");
        if (!cJSON_IsNumber(version))
                return bad(ret_error, "\"version\" is not a number");
        if (version->valuedouble != STATE_VERSION)
                return bad(ret_error, "unsupported version %g (this rollguard reads version %d)",
                           version->valuedouble, STATE_VERSION);

        int r;
        if ((r = read_string(root, "", "app", true, &s->app, ret_error)) < 0 ||
            (r = read_string(root, "", "name", false, &s->name, ret_error)) < 0 ||
            (r = read_time(root, "", "cooldown_until_ms", false, &s->cooldown_until_ms, ret_error)) < 0 ||
            (r = read_string(root, "", "last_change_order_id", false, &s->last_change_order_id,
                             ret_error)) < 0)
                return r;
        if (!*s->app)
                return bad(ret_error, "\"app\" is empty");

        const cJSON *acts = json_member(root, "acts");
        if (acts) {
                if (!cJSON_IsArray(acts))
                        return bad(ret_error, "\"acts\" is not an array");
                size_t n;
                const cJSON *e = array_skip_oldest(acts, STATE_MAX_ACTS, &n);
                if (n > 0) {
                        s->acts = calloc(n, sizeof(act_record));
                        if (!s->acts)
                                return -ENOMEM;
                }
                for (; e; e = e->next) {
                        /* count first, so app_state_done frees a half-read one */
                        act_record *a = &s->acts[s->n_acts++];
                        if ((r = act_from_json(e, s->n_acts - 1, a, ret_error)) < 0)
                                return r;
                }
        }

        const cJSON *pending = json_member(root, "pending");
        if (pending) {
                if (!cJSON_IsArray(pending))
                        return bad(ret_error, "\"pending\" is not an array");
                size_t n;
                const cJSON *e = array_skip_oldest(pending, STATE_MAX_PENDING, &n);
                if (n > 0) {
                        s->pending = calloc(n, sizeof(pending_match));
                        if (!s->pending)
                                return -ENOMEM;
                }
                for (; e; e = e->next) {
                        pending_match *p = &s->pending[s->n_pending++];
                        if ((r = pending_from_json(e, s->n_pending - 1, p, ret_error)) < 0)
                                return r;
                }
        }
        return 0;
}

int state_from_json(const char *text, app_state *out, char **ret_error) {
        if (ret_error)
                *ret_error = NULL;
        if (!out)
                return -EINVAL;
        *out = (app_state) {};
        if (!text)
                return -EINVAL;

        const char *end = NULL;
        _cleanup_cjson_ cJSON *root = cJSON_ParseWithOpts(text, &end, true);
        if (!root) {
                size_t len = strlen(text);
                size_t at = end && end >= text ? (size_t) (end - text) : 0;
                if (at >= len)
                        return bad(ret_error, "unexpected end of file at byte %zu", len);
                return bad(ret_error, "invalid JSON at byte %zu", at);
        }

        _cleanup_(app_state_donep) app_state s = {};
        int r = state_from_cjson(root, &s, ret_error);
        if (r < 0) {
                if (r != -EBADMSG && ret_error) {
                        free(*ret_error);
                        *ret_error = NULL;
                }
                return r;
        }
        *out = s;
        s = (app_state) {};
        return 0;
}

/* Finds `"name"` followed by ':' in [p, end): returns just past the ':'. */
static const char *find_member(const char *p, const char *end, const char *name) {
        size_t n = strlen(name);
        while (p < end) {
                const char *q = memchr(p, '"', (size_t) (end - p));
                if (!q || (size_t) (end - q) < n + 2)
                        return NULL;
                if (memcmp(q + 1, name, n) == 0 && q[n + 1] == '"') {
                        const char *c = q + n + 2;
                        while (c < end && (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r'))
                                c++;
                        if (c < end && *c == ':')
                                return c + 1;
                }
                p = q + 1;
        }
        return NULL;
}

static const char *skip_blanks(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

int state_recover_text(const char *text, size_t len, const char *key, int64_t now_ms, app_state *out) {
        *out = (app_state) {};
        _cleanup_(app_state_donep) app_state s = {};
        if (!(s.app = strdup(key)))
                return -ENOMEM;
        const char *end = text + len;

        const char *c = find_member(text, end, "cooldown_until_ms");
        if (c) {
                c = skip_blanks(c, end);
                int64_t v = 0;
                while (c < end && *c >= '0' && *c <= '9' && v < INT64_C(9007199254740992) / 10)
                        v = v * 10 + (*c++ - '0');
                if (state_time_valid(v) && (c == end || *c == ',' || *c == '\n' || *c == ' ' || *c == '}'))
                        s.cooldown_until_ms = v;
        }

        /* acts come before "pending" in what we write; the orders a pending
         * match names were never acted on, so they must not be recovered */
        const char *p = find_member(text, end, "acts");
        const char *stop = p ? find_member(p, end, "pending") : NULL;
        if (!stop)
                stop = end;
        while (p && p < stop) {
                const char *v = find_member(p, stop, "change_order_id");
                if (!v)
                        break;
                v = skip_blanks(v, stop);
                if (v >= stop || *v != '"') {
                        p = v;
                        continue;
                }
                const char *q = memchr(v + 1, '"', (size_t) (stop - v - 1));
                if (!q)
                        break; /* cut off inside the id: not a whole id */
                _cleanup_free_ char *id = strndup(v + 1, (size_t) (q - v - 1));
                if (!id)
                        return -ENOMEM;
                p = q + 1;
                if (!*id || strpbrk(id, "\\") || state_find_act(&s, id))
                        continue;
                act_record a = {
                        .change_order_id = id,
                        .rule = (char *) "(recovered by state repair)",
                        .action = ACTION_ROLLBACK,
                        .result = ACT_UNCONFIRMED,
                        .detail = (char *) "the record was unreadable; this order may have been acted on",
                        .finished_ms = state_time_valid(now_ms) ? now_ms : 0,
                };
                if (state_add_act(&s, &a) < 0)
                        return -ENOMEM;
        }
        int n = (int) s.n_acts;
        *out = s;
        s = (app_state) {};
        return n;
}
