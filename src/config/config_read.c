/* SPDX-License-Identifier: MIT */
/* The typed getters every section parser reads its values with, and the
 * checks behind "did you mean". */
#include "config_read.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* snprintf for message paths: a path cut short in a message is harmless */
void cfg_pathf(char *buf, size_t bufsz, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(buf, bufsz, fmt, ap);
        va_end(ap);
}

/* ---------------------------------------------------------------------- */
/* Small checks */

/* Optimal string alignment distance (a transposition counts one), or
 * SIZE_MAX when the strings are too different in length to be typos. */
static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 2)
                return SIZE_MAX;
        size_t d[65][65];
        for (size_t i = 0; i <= la; i++)
                d[i][0] = i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
                        size_t v = d[i - 1][j] + 1;
                        if (d[i][j - 1] + 1 < v)
                                v = d[i][j - 1] + 1;
                        if (d[i - 1][j - 1] + cost < v)
                                v = d[i - 1][j - 1] + cost;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                            d[i - 2][j - 2] + 1 < v)
                                v = d[i - 2][j - 2] + 1;
                        d[i][j] = v;
                }
        return d[la][lb];
}

/* The closest candidate within distance 2, or NULL. */
const char *cfg_did_you_mean(const char *s, const char *const *candidates, size_t n) {
        const char *best = NULL;
        size_t best_d = 3;
        for (size_t i = 0; i < n; i++) {
                if (!candidates[i])
                        continue;
                size_t d = edit_distance(s, candidates[i]);
                /* "x" is two edits from many short words; that is no hint */
                if (d < best_d && d < strlen(s)) {
                        best = candidates[i];
                        best_d = d;
                }
        }
        return best;
}

/* "a, b, c" into buf */
const char *cfg_join(const char *const *words, size_t n, const char *last_sep, char *buf, size_t bufsz) {
        size_t off = 0;
        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
                const char *sep = i == 0 ? "" : i + 1 == n ? last_sep : ", ";
                int w = snprintf(buf + off, bufsz - off, "%s%s", sep, words[i]);
                if (w < 0 || (size_t)w >= bufsz - off)
                        break;
                off += (size_t)w;
        }
        return buf;
}

bool cfg_valid_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > NAME_MAX_LEN || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '.' || *p == '_' || *p == '-'))
                        return false;
        return true;
}

bool cfg_has_control_or_space(const char *s, bool allow_space) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f || (!allow_space && *p == ' '))
                        return true;
        return false;
}

/* ---------------------------------------------------------------------- */
/* Typed values */

/* Keys of a mapping: each must be a known scalar, once. Returns the index of
 * the key at map->items[i] in known[], or a negative error. `where` names the
 * mapping ("defaults", "apps[0]"; NULL for the top level). */
int cfg_map_key(parse_ctx *x, const node *map, size_t i, const char *where, const char *const *known,
                size_t n_known) {
        const node *k = &map->items[i];
        char in[128];
        if (where)
                cfg_pathf(in, sizeof in, "in %s", where);
        else
                cfg_pathf(in, sizeof in, "at the top level");

        if (k->kind != NODE_SCALAR || cfg_node_is_null(k))
                return fail(x, k, "%s: a key must be a name, found %s", where ? where : "top level", DESCRIBE(k));
        for (size_t j = 0; j < i; j += 2)
                if (streq(map->items[j].text, k->text))
                        return fail(x, k, "duplicate key '%s' %s (first at line %u)", SHOW(k->text), in,
                                    map->items[j].line);
        for (size_t j = 0; j < n_known; j++)
                if (streq(k->text, known[j]))
                        return (int)j;

        if (where && streq(where, "credentials") &&
            (strstr(k->text, "secret") || strstr(k->text, "token") || strstr(k->text, "key_id")))
                return fail(x, k,
                            "unknown key '%s' in credentials: secrets do not belong in this file; put them in "
                            "the file named by credentials.file, a systemd credential or the environment",
                            SHOW(k->text));

        const char *hint = cfg_did_you_mean(k->text, known, n_known);
        if (hint)
                return fail(x, k, "unknown key '%s' %s (did you mean '%s'?)", SHOW(k->text), in, hint);
        char list[256];
        return fail(x, k, "unknown key '%s' %s (expected %s)", SHOW(k->text), in,
                    cfg_join(known, n_known, " or ", list, sizeof list));
}

int cfg_want_mapping(parse_ctx *x, const node *v, const char *path, const char *what) {
        if (v->kind != NODE_MAPPING)
                return fail(x, v, "%s: expected %s, found %s", path, what, DESCRIBE(v));
        return 0;
}

int cfg_want_scalar(parse_ctx *x, const node *v, const char *path, const char *what) {
        if (v->kind != NODE_SCALAR)
                return fail(x, v, "%s: expected %s, found %s", path, what, DESCRIBE(v));
        if (cfg_node_is_null(v))
                return fail(x, v, "%s: missing value (expected %s)", path, what);
        return 0;
}

int cfg_get_string(parse_ctx *x, const node *v, const char *path, const char *what, char **dst) {
        int r = cfg_want_scalar(x, v, path, what);
        if (r < 0)
                return r;
        if (v->len == 0)
                return fail(x, v, "%s: must not be empty (expected %s)", path, what);
        if (cfg_has_control_or_space(v->text, true))
                return fail(x, v, "%s: must not contain control characters", path);
        char *s = strdup(v->text);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

int cfg_get_duration(parse_ctx *x, const node *v, const char *path, uint64_t min, uint64_t max,
                     uint64_t *ret) {
        char a[32], b[32];
        int r = cfg_want_scalar(x, v, path, "a duration such as 30s, 5m or 1h30m");
        if (r < 0)
                return r;
        uint64_t usec;
        r = parse_duration(v->text, &usec);
        if (r == -ERANGE)
                return fail(x, v, "%s: '%s' is too large (at most %s)", path, SHOW(v->text),
                            format_duration(max, a, sizeof a));
        if (r < 0) {
                if (v->len > 0 && strspn(v->text, "0123456789") == v->len)
                        return fail(x, v, "%s: '%s' has no unit (write 30s, 5m, 1h)", path, SHOW(v->text));
                return fail(x, v, "%s: '%s' is not a duration (write e.g. 90s, 5m, 1h30m)", path,
                            SHOW(v->text));
        }
        if (usec < min)
                return fail(x, v, "%s: '%s' is too short (at least %s)", path, SHOW(v->text),
                            format_duration(min, a, sizeof a));
        if (usec > max)
                return fail(x, v, "%s: '%s' is too long (at most %s)", path, SHOW(v->text),
                            format_duration(max, b, sizeof b));
        *ret = usec;
        return 0;
}

int cfg_get_bool(parse_ctx *x, const node *v, const char *path, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        int r = cfg_want_scalar(x, v, path, "true or false");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v->text, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(v->text, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return fail(x, v, "%s: '%s' is not a boolean (expected true or false)", path, SHOW(v->text));
}

int cfg_get_uint(parse_ctx *x, const node *v, const char *path, unsigned min, unsigned max, unsigned *ret) {
        int r = cfg_want_scalar(x, v, path, "a whole number");
        if (r < 0)
                return r;
        int64_t n;
        if (parse_int64(v->text, min, max, &n) < 0)
                return fail(x, v, "%s: '%s' is not a whole number from %u to %u", path, SHOW(v->text), min, max);
        *ret = (unsigned)n;
        return 0;
}

/* One of names[]; returns its index. */
int cfg_get_choice(parse_ctx *x, const node *v, const char *path, const char *noun,
                   const char *const *names, size_t n) {
        char list[128];
        cfg_join(names, n, " or ", list, sizeof list);
        char what[160];
        cfg_pathf(what, sizeof what, "%s (%s)", noun, list);
        int r = cfg_want_scalar(x, v, path, what);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (streq(v->text, names[i]))
                        return (int)i;
        const char *hint = cfg_did_you_mean(v->text, names, n);
        if (hint)
                return fail(x, v, "%s: '%s' is not %s (did you mean '%s'?)", path, SHOW(v->text), noun, hint);
        return fail(x, v, "%s: '%s' is not %s (expected %s)", path, SHOW(v->text), noun, list);
}

int cfg_get_url(parse_ctx *x, const node *v, const char *path, char **dst) {
        int r = cfg_want_scalar(x, v, path, "an http:// or https:// URL");
        if (r < 0)
                return r;
        const char *s = v->text, *host;
        if (strncmp(s, "http://", 7) == 0)
                host = s + 7;
        else if (strncmp(s, "https://", 8) == 0)
                host = s + 8;
        else
                return fail(x, v, "%s: '%s' is not an http:// or https:// URL", path, SHOW(s));
        if (*host == 0 || *host == '/' || cfg_has_control_or_space(s, false))
                return fail(x, v, "%s: '%s' is not a valid URL (expected e.g. https://sae.cn-hangzhou.aliyuncs.com)",
                            path, SHOW(s));
        /* requests append their own path: keep the base without a trailing slash */
        size_t n = strlen(s);
        while (n > (size_t)(host - s) + 1 && s[n - 1] == '/')
                n--;
        char *copy = strndup(s, n);
        if (!copy)
                return -ENOMEM;
        free(*dst);
        *dst = copy;
        return 0;
}

int cfg_get_listen(parse_ctx *x, const node *v, const char *path, char **dst) {
        int r = cfg_want_scalar(x, v, path, "host:port, e.g. 127.0.0.1:9095 or [::1]:9095");
        if (r < 0)
                return r;
        const char *s = v->text, *port;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close == s + 1 || close[1] != ':')
                        return fail(x, v, "%s: '%s' is not [ipv6]:port (e.g. [::1]:9095)", path, SHOW(s));
                /* hex, ':' and '.' (IPv4-mapped), and a %zone such as %eth0 */
                bool colon_seen = false;
                for (const char *p = s + 1; p < close; p++) {
                        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                              strchr(":.%-_", *p)))
                                return fail(x, v, "%s: '%s' is not [ipv6]:port (e.g. [::1]:9095)", path, SHOW(s));
                        colon_seen = colon_seen || *p == ':';
                }
                if (!colon_seen)
                        return fail(x, v, "%s: '%s' is not [ipv6]:port (e.g. [::1]:9095)", path, SHOW(s));
                port = close + 2;
        } else {
                const char *colon = strrchr(s, ':');
                if (!colon)
                        return fail(x, v, "%s: '%s' is not host:port (e.g. 127.0.0.1:9095)", path, SHOW(s));
                if (memchr(s, ':', (size_t)(colon - s)))
                        return fail(x, v, "%s: '%s': put an IPv6 address in brackets, e.g. [::1]:9095", path,
                                    SHOW(s));
                if (colon == s)
                        return fail(x, v, "%s: '%s' has no host (write 127.0.0.1:PORT, or 0.0.0.0:PORT for every address)",
                                    path, SHOW(s));
                for (const char *p = s; p < colon; p++)
                        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                              *p == '.' || *p == '-' || *p == '_'))
                                return fail(x, v, "%s: '%s' is not host:port (e.g. 127.0.0.1:9095)", path,
                                            SHOW(s));
                port = colon + 1;
        }
        int64_t n;
        r = parse_int64(port, 1, 65535, &n);
        if (r == -ERANGE)
                return fail(x, v, "%s: port %s is out of range (1 to 65535)", path, SHOW(port));
        if (r < 0 || port[0] == '+' || port[0] == '-')
                return fail(x, v, "%s: '%s' has no valid port (e.g. 127.0.0.1:9095)", path, SHOW(s));
        return cfg_get_string(x, v, path, "host:port", dst);
}

/* "60/min", "10/s", "1000/h", "100/2m" */
int cfg_get_rate_limit(parse_ctx *x, const node *v, const char *path, unsigned *ret_n,
                       uint64_t *ret_window) {
        static const struct {
                const char *unit;
                uint64_t usec;
        } units[] = {
                { "s", USEC_PER_SEC },    { "sec", USEC_PER_SEC },   { "second", USEC_PER_SEC },
                { "m", USEC_PER_MIN },    { "min", USEC_PER_MIN },   { "minute", USEC_PER_MIN },
                { "h", USEC_PER_HOUR },   { "hour", USEC_PER_HOUR },
        };
        int r = cfg_want_scalar(x, v, path, "calls per window such as 60/min");
        if (r < 0)
                return r;
        const char *s = v->text, *slash = strchr(s, '/');
        if (!slash)
                return fail(x, v, "%s: '%s' is not a rate (write N/min, N/s, N/h or N/<duration>, e.g. 60/min)",
                            path, SHOW(s));
        char num[24];
        size_t nl = (size_t)(slash - s);
        int64_t n;
        if (nl == 0 || nl >= sizeof num || strspn(s, "0123456789") != nl)
                return fail(x, v, "%s: '%s' does not start with a number of calls (e.g. 60/min)", path, SHOW(s));
        memcpy(num, s, nl);
        num[nl] = 0;
        if (parse_int64(num, 1, 100000, &n) < 0)
                return fail(x, v, "%s: %s calls is out of range (1 to 100000)", path, SHOW(num));

        const char *w = slash + 1;
        uint64_t window = 0;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(w, units[i].unit))
                        window = units[i].usec;
        if (window == 0 && (parse_duration(w, &window) < 0 || window == 0))
                return fail(x, v, "%s: '%s' has no valid window after '/' (min, s, h or a duration such as 2m)",
                            path, SHOW(s));
        if (window < USEC_PER_SEC || window > 24 * USEC_PER_HOUR)
                return fail(x, v, "%s: the window of '%s' must be between 1s and 24h", path, SHOW(s));
        *ret_n = (unsigned)n;
        *ret_window = window;
        return 0;
}

int cfg_get_string_list(parse_ctx *x, const node *v, const char *path, const char *what, unsigned max,
                        char ***ret, size_t *ret_n) {
        const node *items = v;
        size_t n = 1;
        int r;

        /* a single value stands for a list of one */
        if (v->kind == NODE_SEQUENCE) {
                items = v->items;
                n = v->n_items;
                if (n == 0)
                        return fail(x, v, "%s: empty list (expected %s)", path, what);
                if (n > max)
                        return fail(x, v, "%s: more than %u entries", path, max);
        }
        char **list = calloc(n + 1, sizeof(char *)); /* NULL-terminated too, like rule_copy() */
        if (!list)
                return -ENOMEM;
        *ret = list;
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                r = cfg_get_string(x, &items[i], path, what, &list[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}
