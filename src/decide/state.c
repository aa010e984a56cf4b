/* SPDX-License-Identifier: MIT */
#include "state.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "util.h"

#define STATE_VERSION 1
/* Our own files are a few KiB (64 acts at most); anything this big is not one. */
#define STATE_FILE_MAX (4 * 1024 * 1024)
/* Timestamps go through JSON numbers (doubles): past 2^53 they would not read
 * back exactly, so save refuses them and load calls them corruption. */
#define STATE_TIME_MAX INT64_C(9007199254740992)

static const char *const act_result_names[_ACT_RESULT_MAX] = {
        [ACT_INTENT] = "intent",
        [ACT_DONE] = "done",
        [ACT_ENDED_BY_ITSELF] = "ended_by_itself",
        [ACT_FAILED] = "failed",
        [ACT_UNCONFIRMED] = "unconfirmed",
};

const char *act_result_name(act_result r) {
        if ((unsigned) r >= _ACT_RESULT_MAX)
                return NULL;
        return act_result_names[r];
}

int act_result_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _ACT_RESULT_MAX; i++)
                if (streq(s, act_result_names[i]))
                        return i;
        return -EINVAL;
}

static void act_record_done(act_record *a) {
        free(a->change_order_id);
        free(a->rule);
        free(a->detail);
        free(a->rollback_order_id);
        *a = (act_record) {};
}

static void pending_match_done(pending_match *p) {
        free(p->change_order_id);
        free(p->rule);
        *p = (pending_match) {};
}

void app_state_done(app_state *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_acts; i++)
                act_record_done(&s->acts[i]);
        free(s->acts);
        for (size_t i = 0; i < s->n_pending; i++)
                pending_match_done(&s->pending[i]);
        free(s->pending);
        free(s->app);
        free(s->last_change_order_id);
        *s = (app_state) {};
}

static void app_state_donep(app_state *s) {
        app_state_done(s);
}

static void cjson_deletep(cJSON **p) {
        cJSON_Delete(*p);
}
#define _cleanup_cjson_ _cleanup_(cjson_deletep)

static bool is_plain_filename_byte(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

/* Escaping is injective (a '%' in the name is itself escaped), so two apps
 * can never share a file; a leading '.' is escaped so no name gives a hidden
 * file, "." or "..". */
char *state_path(const char *dir, const char *app) {
        if (!dir || !app || !*app) {
                errno = EINVAL;
                return NULL;
        }
        size_t dir_len = strlen(dir), app_len = strlen(app);
        if (app_len > (SIZE_MAX - dir_len - 16) / 3) {
                errno = ENAMETOOLONG;
                return NULL;
        }
        char *path = malloc(dir_len + 1 + 3 * app_len + sizeof(".json"));
        if (!path)
                return NULL;

        static const char hex[] = "0123456789ABCDEF";
        char *p = path;
        memcpy(p, dir, dir_len);
        p += dir_len;
        *p++ = '/';
        for (size_t i = 0; i < app_len; i++) {
                unsigned char c = (unsigned char) app[i];
                if (is_plain_filename_byte(c) && !(i == 0 && c == '.'))
                        *p++ = (char) c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        memcpy(p, ".json", sizeof(".json"));
        return path;
}

/* ---- JSON ---------------------------------------------------------------- */

static bool time_valid(int64_t t) {
        return t >= 0 && t <= STATE_TIME_MAX;
}

static bool act_valid(const act_record *a) {
        return a->change_order_id && a->rule && (unsigned) a->action <= ACTION_LOG &&
               rule_action_name(a->action) && (unsigned) a->result < _ACT_RESULT_MAX &&
               time_valid(a->intent_ms) && time_valid(a->finished_ms);
}

/* Whatever state_save writes must read back identically; refusing here is
 * what keeps a bad in-memory record from being mistaken for corruption (and
 * moved aside, losing every intent in it) on the next start. */
static bool app_state_valid(const app_state *s) {
        if (!s->app || !*s->app || !time_valid(s->cooldown_until_ms))
                return false;
        if (s->n_acts > STATE_MAX_ACTS || s->n_pending > STATE_MAX_PENDING)
                return false;
        for (size_t i = 0; i < s->n_acts; i++)
                if (!act_valid(&s->acts[i]))
                        return false;
        for (size_t i = 0; i < s->n_pending; i++)
                if (!s->pending[i].change_order_id || !s->pending[i].rule ||
                    !time_valid(s->pending[i].since_ms))
                        return false;
        return true;
}

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
        if (json_get_int64(obj, name, &t) <= 0 || !time_valid(t))
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

/* ---- files ----------------------------------------------------------------- */

/* Moves a bad file to "<path>.corrupt-<unix seconds>[.N]" without ever
 * replacing an earlier one: each is evidence of something. */
static int move_aside(const char *path, char **ret_newpath) {
        long long now = (long long) time(NULL);
        for (unsigned i = 0; i < 1000; i++) {
                _cleanup_free_ char *n = i == 0 ? strdup_printf("%s.corrupt-%lld", path, now)
                                                : strdup_printf("%s.corrupt-%lld.%u", path, now, i);
                if (!n)
                        return -ENOMEM;
                if (renameat2(AT_FDCWD, path, AT_FDCWD, n, RENAME_NOREPLACE) >= 0) {
                        *ret_newpath = TAKE_PTR(n);
                        return 0;
                }
                if (errno == EEXIST)
                        continue;
                if (errno != EINVAL && errno != ENOSYS)
                        return -errno;
                /* the file system cannot do RENAME_NOREPLACE; we are the only
                 * writer of this directory, so check-then-rename will do */
                if (access(n, F_OK) >= 0)
                        continue;
                if (rename(path, n) < 0)
                        return -errno;
                *ret_newpath = TAKE_PTR(n);
                return 0;
        }
        return -EEXIST;
}

static int empty_state(app_state *out, const char *app) {
        *out = (app_state) {};
        out->app = strdup(app);
        return out->app ? 0 : -ENOMEM;
}

int state_load(const char *dir, const char *app, app_state *out, char **ret_warning) {
        if (ret_warning)
                *ret_warning = NULL;
        if (!out)
                return -EINVAL;
        *out = (app_state) {};
        if (!dir || !app || !*app)
                return -EINVAL;

        _cleanup_free_ char *path = state_path(dir, app);
        if (!path)
                return -errno;

        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return empty_state(out, app);
                return -errno;
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        /* one byte past the cap tells "too big" from "exactly the cap" */
        int r = read_fd_limited(fd, (size_t) STATE_FILE_MAX + 1, true, &text, &len);
        close(fd);
        if (r < 0)
                return r;

        _cleanup_free_ char *reason = NULL;
        _cleanup_(app_state_donep) app_state s = {};
        const char *nul = memchr(text, 0, len);
        if (len > STATE_FILE_MAX)
                reason = strdup_printf("larger than %d bytes", STATE_FILE_MAX);
        else if (nul)
                reason = strdup_printf("NUL byte at byte %zu", (size_t) (nul - text));
        else {
                r = state_from_json(text, &s, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && !streq(s.app, app)) {
                        free(reason);
                        reason = strdup_printf("it is the record of app \"%s\"", s.app);
                        r = -EBADMSG;
                }
                if (r >= 0) {
                        *out = s;
                        s = (app_state) {};
                        return 0;
                }
                if (!reason)
                        reason = strdup("unreadable");
        }
        if (!reason)
                return -ENOMEM;

        _cleanup_free_ char *newpath = NULL;
        r = move_aside(path, &newpath);
        if (r < 0)
                /* not moved: starting empty would overwrite it on the next
                 * save, and with it any intent it still holds */
                return r;

        if (ret_warning) {
                *ret_warning = strdup_printf("state file %s is corrupt (%s); moved to %s and "
                                             "starting empty for this app",
                                             path, reason, newpath);
                if (!*ret_warning)
                        return -ENOMEM;
        }
        return empty_state(out, app);
}

static int fsync_directory(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int state_save(const char *dir, const app_state *s) {
        if (!dir || !s || !app_state_valid(s))
                return -EINVAL;

        _cleanup_free_ char *text = state_to_json(s);
        if (!text)
                return -ENOMEM;
        _cleanup_free_ char *path = state_path(dir, s->app);
        if (!path)
                return -errno;
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp.%d", path, (int) getpid());
        if (!tmp)
                return -ENOMEM;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;

        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;

        int r;
        /* a leftover temp file of an earlier process with our pid keeps its
         * old mode through O_CREAT */
        if (fchmod(fd, 0600) < 0)
                r = -errno;
        else
                r = write_all(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        /* the rename itself is only durable once the directory is */
        return fsync_directory(dir);
}

/* ---- the in-memory record ---------------------------------------------------- */

act_record *state_find_act(const app_state *s, const char *change_order_id) {
        if (!s || !change_order_id)
                return NULL;
        for (size_t i = s->n_acts; i > 0; i--)
                if (streq_null(s->acts[i - 1].change_order_id, change_order_id))
                        return &s->acts[i - 1];
        return NULL;
}

int state_add_act(app_state *s, const act_record *a) {
        if (!s || !a || !act_valid(a))
                return -EINVAL;

        act_record c = {
                .change_order_id = strdup(a->change_order_id),
                .rule = strdup(a->rule),
                .action = a->action,
                .intent_ms = a->intent_ms,
                .result = a->result,
                .detail = strdup_null(a->detail),
                .rollback_order_id = strdup_null(a->rollback_order_id),
                .finished_ms = a->finished_ms,
        };
        if (!c.change_order_id || !c.rule || (a->detail && !c.detail) ||
            (a->rollback_order_id && !c.rollback_order_id)) {
                act_record_done(&c);
                return -ENOMEM;
        }

        if (s->n_acts >= STATE_MAX_ACTS) {
                size_t drop = s->n_acts - STATE_MAX_ACTS + 1;
                for (size_t i = 0; i < drop; i++)
                        act_record_done(&s->acts[i]);
                memmove(s->acts, s->acts + drop, (s->n_acts - drop) * sizeof(act_record));
                s->n_acts -= drop;
        } else {
                act_record *n = realloc(s->acts, (s->n_acts + 1) * sizeof(act_record));
                if (!n) {
                        act_record_done(&c);
                        return -ENOMEM;
                }
                s->acts = n;
        }
        s->acts[s->n_acts++] = c;
        return 0;
}

size_t state_count_acts_since(const app_state *s, int64_t since_ms) {
        size_t n = 0;
        if (!s)
                return 0;
        /* every attempt counts, whatever came of it: the circuit breaker is
         * about how often we pulled the trigger */
        for (size_t i = 0; i < s->n_acts; i++)
                if (s->acts[i].intent_ms >= since_ms)
                        n++;
        return n;
}

static ssize_t pending_index(const app_state *s, const char *change_order_id, const char *rule_name) {
        for (size_t i = 0; i < s->n_pending; i++)
                if (streq_null(s->pending[i].change_order_id, change_order_id) &&
                    streq_null(s->pending[i].rule, rule_name))
                        return (ssize_t) i;
        return -1;
}

static void pending_remove(app_state *s, size_t i) {
        pending_match_done(&s->pending[i]);
        memmove(s->pending + i, s->pending + i + 1, (s->n_pending - i - 1) * sizeof(pending_match));
        s->n_pending--;
}

int64_t state_pending_since(const app_state *s, const char *change_order_id, const char *rule_name) {
        if (!s || !change_order_id || !rule_name)
                return 0;
        ssize_t i = pending_index(s, change_order_id, rule_name);
        return i < 0 ? 0 : s->pending[i].since_ms;
}

int state_set_pending(app_state *s, const char *change_order_id, const char *rule_name,
                      int64_t since_ms) {
        if (!s || !change_order_id || !rule_name || !time_valid(since_ms))
                return -EINVAL;

        ssize_t i = pending_index(s, change_order_id, rule_name);
        if (since_ms == 0) {
                if (i < 0)
                        return 0;
                pending_remove(s, (size_t) i);
                return 1;
        }
        if (i >= 0) {
                if (s->pending[i].since_ms == since_ms)
                        return 0;
                s->pending[i].since_ms = since_ms;
                return 1;
        }

        pending_match p = {
                .change_order_id = strdup(change_order_id),
                .rule = strdup(rule_name),
                .since_ms = since_ms,
        };
        if (!p.change_order_id || !p.rule) {
                pending_match_done(&p);
                return -ENOMEM;
        }
        while (s->n_pending >= STATE_MAX_PENDING)
                pending_remove(s, 0);
        pending_match *n = realloc(s->pending, (s->n_pending + 1) * sizeof(pending_match));
        if (!n) {
                pending_match_done(&p);
                return -ENOMEM;
        }
        s->pending = n;
        s->pending[s->n_pending++] = p;
        return 1;
}

int state_prune_pending(app_state *s, const char *keep_change_order_id) {
        if (!s)
                return 0;
        int changed = 0;
        for (size_t i = s->n_pending; i > 0; i--)
                if (!streq_null(s->pending[i - 1].change_order_id, keep_change_order_id)) {
                        pending_remove(s, i - 1);
                        changed = 1;
                }
        return changed;
}
