/* SPDX-License-Identifier: MIT */
/* rollguard.yaml -> struct config.
 *
 * libyaml's event API builds a small tree that keeps the position of every
 * key and value; the schema walk below reads that tree, so each error can say
 * FILE:LINE:COL. The event API (rather than yaml_parser_load) is what lets us
 * see anchors and aliases and refuse them: the document loader resolves them
 * into shared nodes without a trace, and walking nested aliases is how a few
 * hundred bytes become billions of nodes (the "YAML bomb"). */
#include "config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "util.h"

#define CONFIG_MAX_BYTES ((size_t)4 * 1024 * 1024)
#define CONFIG_MAX_DEPTH 32u       /* the schema needs 6 levels */
#define CONFIG_MAX_NODES (1u << 20) /* thousands of apps fit easily */
#define MAX_RULES_PER_APP 64u
#define MAX_CO_TYPES 32u
#define MAX_ALERT_MATCHERS 32u
#define NAME_MAX_LEN 64u
#define MAX_DURATION (30 * 24 * USEC_PER_HOUR)

/* ---------------------------------------------------------------------- */
/* The tree */

typedef enum node_kind {
        NODE_SCALAR,
        NODE_SEQUENCE,
        NODE_MAPPING,
} node_kind;

typedef struct node {
        node_kind kind;
        bool plain;         /* unquoted scalar: only those can mean null */
        unsigned line, col; /* 1-based */
        char *text;         /* scalars */
        size_t len;
        struct node *items; /* sequence items; mapping: key, value, key, value... */
        size_t n_items;
} node;

static void node_done(node *n) {
        free(n->text);
        for (size_t i = 0; i < n->n_items; i++)
                node_done(&n->items[i]);
        free(n->items);
        *n = (node){ 0 };
}

typedef struct parse_ctx {
        const char *name; /* the file name in messages */
        const char *text;
        size_t len;
        size_t n_nodes;
        char *error; /* the first error, "NAME:LINE:COL: message" */
} parse_ctx;

_printf_(5, 6) static int fail_at(parse_ctx *x, int code, unsigned line, unsigned col,
                                   const char *fmt, ...) {
        if (x->error)
                return code;
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        x->error = strdup_printf("%s:%u:%u: %s", x->name, line, col, msg);
        return x->error ? code : -ENOMEM;
}

#define fail(x, n, ...) fail_at((x), -EINVAL, (n)->line, (n)->col, __VA_ARGS__)

/* snprintf for message paths: a path cut short in a message is harmless */
_printf_(3, 4) static void pathf(char *buf, size_t bufsz, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(buf, bufsz, fmt, ap);
        va_end(ap);
}

/* User text in a message: bounded, and no control characters that could
 * forge a second log line or move the terminal cursor. */
static const char *show(const char *s, char *buf, size_t bufsz) {
        const size_t max = bufsz - 4; /* room for "..." and NUL */
        size_t i = 0;
        for (; s[i] && i < max; i++) {
                unsigned char ch = (unsigned char)s[i];
                buf[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        }
        if (s[i]) {
                /* do not cut a UTF-8 sequence in half */
                while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
                        i--;
                memcpy(buf + i, "...", 4);
        } else
                buf[i] = 0;
        return buf;
}
#define SHOW(s) show((s), (char[72]){ 0 }, 72)

static bool node_is_null(const node *n) {
        return n->kind == NODE_SCALAR && n->plain &&
               (n->len == 0 || streq(n->text, "~") || streq(n->text, "null") ||
                streq(n->text, "Null") || streq(n->text, "NULL"));
}

static const char *describe(const node *n, char *buf, size_t bufsz) {
        if (n->kind == NODE_MAPPING)
                return "a mapping";
        if (n->kind == NODE_SEQUENCE)
                return "a list";
        if (node_is_null(n))
                return "nothing";
        char tmp[72];
        snprintf(buf, bufsz, "'%s'", show(n->text, tmp, sizeof tmp));
        return buf;
}
#define DESCRIBE(n) describe((n), (char[80]){ 0 }, 80)

/* ---------------------------------------------------------------------- */
/* YAML -> tree */

/* Byte offset of a libyaml mark; libyaml counts columns in characters. */
static size_t mark_offset(const parse_ctx *x, unsigned line0, unsigned col0) {
        size_t off = 0;
        for (unsigned l = 0; l < line0 && off < x->len; off++)
                if (x->text[off] == '\n')
                        l++;
        for (unsigned c = 0; c < col0 && off < x->len; c++) {
                off++;
                while (off < x->len && ((unsigned char)x->text[off] & 0xc0) == 0x80)
                        off++;
        }
        return off;
}

static void offset_position(const parse_ctx *x, size_t offset, unsigned *line, unsigned *col) {
        *line = 1;
        *col = 1;
        for (size_t i = 0; i < offset && i < x->len; i++) {
                if (x->text[i] == '\n') {
                        (*line)++;
                        *col = 1;
                } else if (((unsigned char)x->text[i] & 0xc0) != 0x80)
                        (*col)++;
        }
}

/* Tabs are the classic cause of "cannot start any token": say so. */
static bool tab_near(const parse_ctx *x, unsigned line0, unsigned col0) {
        size_t line_start = mark_offset(x, line0, 0);
        size_t at = mark_offset(x, line0, col0);
        if (at < x->len && x->text[at] == '\t')
                return true;
        for (size_t i = line_start; i < x->len && (x->text[i] == ' ' || x->text[i] == '\t'); i++)
                if (x->text[i] == '\t')
                        return true;
        return false;
}

static int fail_yaml(parse_ctx *x, const yaml_parser_t *p) {
        if (p->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        const char *problem = p->problem ? p->problem : "cannot parse";
        if (p->error == YAML_READER_ERROR) {
                unsigned line, col;
                offset_position(x, p->problem_offset, &line, &col);
                if (p->problem_value >= 0)
                        return fail_at(x, -EBADMSG, line, col, "YAML syntax error: %s (byte 0x%02X)",
                                       problem, (unsigned)p->problem_value);
                return fail_at(x, -EBADMSG, line, col, "YAML syntax error: %s", problem);
        }
        unsigned line = (unsigned)p->problem_mark.line, col = (unsigned)p->problem_mark.column;
        const char *hint = tab_near(x, line, col) ? "; tabs are not allowed in indentation, use spaces" : "";
        if (p->context && p->context_mark.line == p->problem_mark.line &&
            p->context_mark.column == p->problem_mark.column)
                return fail_at(x, -EBADMSG, line + 1, col + 1, "YAML syntax error: %s (%s)%s", problem,
                               p->context, hint);
        if (p->context)
                return fail_at(x, -EBADMSG, line + 1, col + 1,
                               "YAML syntax error: %s (%s at line %u, column %u)%s", problem,
                               p->context, (unsigned)p->context_mark.line + 1,
                               (unsigned)p->context_mark.column + 1, hint);
        return fail_at(x, -EBADMSG, line + 1, col + 1, "YAML syntax error: %s%s", problem, hint);
}

static int next_event(parse_ctx *x, yaml_parser_t *p, yaml_event_t *ev) {
        if (!yaml_parser_parse(p, ev))
                return fail_yaml(x, p);
        return 0;
}

/* Builds *out from the event `ev` (and the events that follow it for a
 * collection). Always consumes `ev`. On failure *out holds what was built so
 * far, for node_done(). */
static int load_node(parse_ctx *x, yaml_parser_t *p, yaml_event_t *ev, unsigned depth, node *out) {
        int r = 0;
        const yaml_char_t *anchor = NULL;
        yaml_event_type_t end_type;

        *out = (node){ .line = (unsigned)ev->start_mark.line + 1,
                       .col = (unsigned)ev->start_mark.column + 1 };

        if (++x->n_nodes > CONFIG_MAX_NODES) {
                r = fail(x, out, "too many YAML nodes (the limit is %u)", CONFIG_MAX_NODES);
                goto finish;
        }

        switch (ev->type) {
        case YAML_ALIAS_EVENT:
                r = fail(x, out, "alias '*%s' not allowed: rollguard.yaml does not support anchors and aliases",
                         SHOW((const char *)ev->data.alias.anchor));
                goto finish;
        case YAML_SCALAR_EVENT:
                anchor = ev->data.scalar.anchor;
                out->kind = NODE_SCALAR;
                end_type = YAML_NO_EVENT;
                break;
        case YAML_SEQUENCE_START_EVENT:
                anchor = ev->data.sequence_start.anchor;
                out->kind = NODE_SEQUENCE;
                end_type = YAML_SEQUENCE_END_EVENT;
                break;
        case YAML_MAPPING_START_EVENT:
                anchor = ev->data.mapping_start.anchor;
                out->kind = NODE_MAPPING;
                end_type = YAML_MAPPING_END_EVENT;
                break;
        default:
                r = fail_at(x, -EBADMSG, out->line, out->col, "YAML syntax error: unexpected event");
                goto finish;
        }

        if (anchor) {
                r = fail(x, out, "anchor '&%s' not allowed: rollguard.yaml does not support anchors and aliases",
                         SHOW((const char *)anchor));
                goto finish;
        }

        if (out->kind == NODE_SCALAR) {
                size_t n = ev->data.scalar.length;
                /* a "\0" escape would cut the string short where C reads it */
                if (memchr(ev->data.scalar.value, 0, n)) {
                        r = fail(x, out, "NUL characters are not allowed in strings");
                        goto finish;
                }
                out->text = strndup((const char *)ev->data.scalar.value, n);
                if (!out->text) {
                        r = -ENOMEM;
                        goto finish;
                }
                out->len = n;
                out->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
                             ev->data.scalar.style == YAML_ANY_SCALAR_STYLE;
                goto finish;
        }

        if (depth >= CONFIG_MAX_DEPTH) {
                r = fail(x, out, "nested too deeply (more than %u levels)", CONFIG_MAX_DEPTH);
                goto finish;
        }

        yaml_event_delete(ev);
        size_t allocated = 0;
        for (;;) {
                yaml_event_t child;
                r = next_event(x, p, &child);
                if (r < 0)
                        return r;
                if (child.type == end_type) {
                        yaml_event_delete(&child);
                        return 0;
                }
                if (out->n_items == allocated) {
                        size_t na = allocated ? allocated * 2 : 4;
                        node *ni = reallocarray(out->items, na, sizeof(node));
                        if (!ni) {
                                yaml_event_delete(&child);
                                return -ENOMEM;
                        }
                        out->items = ni;
                        allocated = na;
                }
                /* counted before it is built so node_done() frees a partial child */
                node *item = &out->items[out->n_items++];
                r = load_node(x, p, &child, depth + 1, item);
                if (r < 0)
                        return r;
                /* "key:" with nothing after it: libyaml places the empty value
                 * after the colon; the key is what a reader looks for */
                if (out->kind == NODE_MAPPING && out->n_items % 2 == 0 && item->kind == NODE_SCALAR &&
                    item->plain && item->len == 0) {
                        item->line = item[-1].line;
                        item->col = item[-1].col;
                }
        }

finish:
        yaml_event_delete(ev);
        return r;
}

/* Loads the single document; *root stays a null scalar when there is none. */
static int load_document(parse_ctx *x, node *root) {
        yaml_parser_t parser;
        yaml_event_t ev;
        int r;

        *root = (node){ .kind = NODE_SCALAR, .plain = true, .line = 1, .col = 1 };
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)x->text, x->len);

        r = next_event(x, &parser, &ev); /* STREAM-START */
        if (r < 0)
                goto out;
        yaml_event_delete(&ev);

        r = next_event(x, &parser, &ev);
        if (r < 0)
                goto out;
        if (ev.type == YAML_STREAM_END_EVENT) {
                yaml_event_delete(&ev);
                goto out;
        }
        yaml_event_delete(&ev); /* DOCUMENT-START */

        r = next_event(x, &parser, &ev);
        if (r < 0)
                goto out;
        r = load_node(x, &parser, &ev, 0, root);
        if (r < 0)
                goto out;

        r = next_event(x, &parser, &ev); /* DOCUMENT-END */
        if (r < 0)
                goto out;
        yaml_event_delete(&ev);

        r = next_event(x, &parser, &ev);
        if (r < 0)
                goto out;
        if (ev.type == YAML_DOCUMENT_START_EVENT)
                r = fail_at(x, -EINVAL, (unsigned)ev.start_mark.line + 1, (unsigned)ev.start_mark.column + 1,
                            "a second YAML document: rollguard.yaml holds exactly one");
        yaml_event_delete(&ev);
out:
        yaml_parser_delete(&parser);
        return r;
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
static const char *did_you_mean(const char *s, const char *const *candidates, size_t n) {
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
static const char *join(const char *const *words, size_t n, const char *last_sep, char *buf, size_t bufsz) {
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

static bool valid_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > NAME_MAX_LEN || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '.' || *p == '_' || *p == '-'))
                        return false;
        return true;
}

static bool valid_region(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > NAME_MAX_LEN)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

static bool valid_label_name(const char *s) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_'))
                        return false;
        return true;
}

static bool has_control_or_space(const char *s, bool allow_space) {
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
static int map_key(parse_ctx *x, const node *map, size_t i, const char *where, const char *const *known,
                   size_t n_known) {
        const node *k = &map->items[i];
        char in[128];
        if (where)
                pathf(in, sizeof in, "in %s", where);
        else
                pathf(in, sizeof in, "at the top level");

        if (k->kind != NODE_SCALAR || node_is_null(k))
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

        const char *hint = did_you_mean(k->text, known, n_known);
        if (hint)
                return fail(x, k, "unknown key '%s' %s (did you mean '%s'?)", SHOW(k->text), in, hint);
        char list[256];
        return fail(x, k, "unknown key '%s' %s (expected %s)", SHOW(k->text), in,
                    join(known, n_known, " or ", list, sizeof list));
}

static int want_mapping(parse_ctx *x, const node *v, const char *path, const char *what) {
        if (v->kind != NODE_MAPPING)
                return fail(x, v, "%s: expected %s, found %s", path, what, DESCRIBE(v));
        return 0;
}

static int want_scalar(parse_ctx *x, const node *v, const char *path, const char *what) {
        if (v->kind != NODE_SCALAR)
                return fail(x, v, "%s: expected %s, found %s", path, what, DESCRIBE(v));
        if (node_is_null(v))
                return fail(x, v, "%s: missing value (expected %s)", path, what);
        return 0;
}

static int get_string(parse_ctx *x, const node *v, const char *path, const char *what, char **dst) {
        int r = want_scalar(x, v, path, what);
        if (r < 0)
                return r;
        if (v->len == 0)
                return fail(x, v, "%s: must not be empty (expected %s)", path, what);
        if (has_control_or_space(v->text, true))
                return fail(x, v, "%s: must not contain control characters", path);
        char *s = strdup(v->text);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

static int get_duration(parse_ctx *x, const node *v, const char *path, uint64_t min, uint64_t max,
                        uint64_t *ret) {
        char a[32], b[32];
        int r = want_scalar(x, v, path, "a duration such as 30s, 5m or 1h30m");
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

static int get_bool(parse_ctx *x, const node *v, const char *path, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        int r = want_scalar(x, v, path, "true or false");
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

static int get_uint(parse_ctx *x, const node *v, const char *path, unsigned min, unsigned max, unsigned *ret) {
        int r = want_scalar(x, v, path, "a whole number");
        if (r < 0)
                return r;
        int64_t n;
        if (parse_int64(v->text, min, max, &n) < 0)
                return fail(x, v, "%s: '%s' is not a whole number from %u to %u", path, SHOW(v->text), min, max);
        *ret = (unsigned)n;
        return 0;
}

/* One of names[]; returns its index. */
static int get_choice(parse_ctx *x, const node *v, const char *path, const char *noun,
                      const char *const *names, size_t n) {
        char list[128];
        join(names, n, " or ", list, sizeof list);
        char what[160];
        pathf(what, sizeof what, "%s (%s)", noun, list);
        int r = want_scalar(x, v, path, what);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (streq(v->text, names[i]))
                        return (int)i;
        const char *hint = did_you_mean(v->text, names, n);
        if (hint)
                return fail(x, v, "%s: '%s' is not %s (did you mean '%s'?)", path, SHOW(v->text), noun, hint);
        return fail(x, v, "%s: '%s' is not %s (expected %s)", path, SHOW(v->text), noun, list);
}

static int get_url(parse_ctx *x, const node *v, const char *path, char **dst) {
        int r = want_scalar(x, v, path, "an http:// or https:// URL");
        if (r < 0)
                return r;
        const char *s = v->text, *host;
        if (strncmp(s, "http://", 7) == 0)
                host = s + 7;
        else if (strncmp(s, "https://", 8) == 0)
                host = s + 8;
        else
                return fail(x, v, "%s: '%s' is not an http:// or https:// URL", path, SHOW(s));
        if (*host == 0 || *host == '/' || has_control_or_space(s, false))
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

static int get_listen(parse_ctx *x, const node *v, const char *path, char **dst) {
        int r = want_scalar(x, v, path, "host:port, e.g. 127.0.0.1:9095 or [::1]:9095");
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
        return get_string(x, v, path, "host:port", dst);
}

/* "60/min", "10/s", "1000/h", "100/2m" */
static int get_rate_limit(parse_ctx *x, const node *v, const char *path, unsigned *ret_n,
                          uint64_t *ret_window) {
        static const struct {
                const char *unit;
                uint64_t usec;
        } units[] = {
                { "s", USEC_PER_SEC },    { "sec", USEC_PER_SEC },   { "second", USEC_PER_SEC },
                { "m", USEC_PER_MIN },    { "min", USEC_PER_MIN },   { "minute", USEC_PER_MIN },
                { "h", USEC_PER_HOUR },   { "hour", USEC_PER_HOUR },
        };
        int r = want_scalar(x, v, path, "calls per window such as 60/min");
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

/* ---------------------------------------------------------------------- */
/* Sections */

static int parse_defaults(parse_ctx *x, const node *v, config *c) {
        static const char *const keys[] = { "poll_interval", "active_poll_interval", "cooldown",
                                            "max_actions_per_hour", "dry_run", "rate_limit", "timeout" };
        const node *active = NULL;
        int r;

        if (node_is_null(v))
                return 0;
        r = want_mapping(x, v, "defaults", "a mapping of settings");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = map_key(x, v, i, "defaults", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = get_duration(x, val, "defaults.poll_interval", USEC_PER_SEC, 24 * USEC_PER_HOUR,
                                         &c->poll_interval_usec);
                        break;
                case 1:
                        r = get_duration(x, val, "defaults.active_poll_interval", USEC_PER_SEC,
                                         24 * USEC_PER_HOUR, &c->active_poll_interval_usec);
                        active = val;
                        break;
                case 2:
                        r = get_duration(x, val, "defaults.cooldown", 0, MAX_DURATION, &c->cooldown_usec);
                        break;
                case 3:
                        r = get_uint(x, val, "defaults.max_actions_per_hour", 0, 1000, &c->max_actions_per_hour);
                        break;
                case 4:
                        r = get_bool(x, val, "defaults.dry_run", &c->dry_run);
                        break;
                case 5:
                        r = get_rate_limit(x, val, "defaults.rate_limit", &c->rate_limit, &c->rate_window_usec);
                        break;
                case 6:
                        r = get_duration(x, val, "defaults.timeout", USEC_PER_SEC, 5 * USEC_PER_MIN,
                                         &c->timeout_usec);
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }

        if (c->active_poll_interval_usec > c->poll_interval_usec) {
                char a[32], b[32];
                if (active)
                        return fail(x, active,
                                    "defaults.active_poll_interval: %s is longer than poll_interval %s (a release "
                                    "in flight is polled at least as often as an idle app)",
                                    format_duration(c->active_poll_interval_usec, a, sizeof a),
                                    format_duration(c->poll_interval_usec, b, sizeof b));
                /* only poll_interval was given, shorter than the default
                 * active interval: the user wants fast polling throughout */
                c->active_poll_interval_usec = c->poll_interval_usec;
        }
        return 0;
}

static int parse_credentials(parse_ctx *x, const node *v, config *c) {
        static const char *const keys[] = { "file", "ecs_ram_role", "metadata_endpoint" };
        int r;

        if (node_is_null(v))
                return 0;
        r = want_mapping(x, v, "credentials", "a mapping (file, ecs_ram_role, metadata_endpoint)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = map_key(x, v, i, "credentials", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = get_string(x, val, "credentials.file", "a file name", &c->credentials_file);
                        break;
                case 1:
                        r = get_string(x, val, "credentials.ecs_ram_role", "a RAM role name or auto",
                                       &c->ecs_ram_role);
                        break;
                case 2:
                        r = get_url(x, val, "credentials.metadata_endpoint", &c->metadata_endpoint);
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_endpoints(parse_ctx *x, const node *v, config *c) {
        static const char *const keys[] = { "sae", "edas" };
        int r;

        if (node_is_null(v))
                return 0;
        r = want_mapping(x, v, "endpoints", "a mapping (sae, edas)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = map_key(x, v, i, "endpoints", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = get_url(x, val, "endpoints.sae", &c->endpoint_sae);
                        break;
                case 1:
                        r = get_url(x, val, "endpoints.edas", &c->endpoint_edas);
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_alerts(parse_ctx *x, const node *v, config *c) {
        static const char *const keys[] = { "listen", "token_file" };
        int r;

        if (node_is_null(v))
                return 0;
        r = want_mapping(x, v, "alerts", "a mapping (listen, token_file)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = map_key(x, v, i, "alerts", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = get_listen(x, val, "alerts.listen", &c->alerts_listen);
                        break;
                case 1:
                        r = get_string(x, val, "alerts.token_file", "a file name", &c->alerts_token_file);
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        if (!c->alerts_listen)
                return fail(x, v, "alerts: missing required key 'listen' (e.g. 127.0.0.1:9095)");
        return 0;
}

static int parse_string_list(parse_ctx *x, const node *v, const char *path, const char *what, unsigned max,
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
                r = get_string(x, &items[i], path, what, &list[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_status(parse_ctx *x, const node *v, const char *path, uint32_t *mask) {
        const char *names[_CO_STATUS_MAX];
        size_t n_names = 0;
        for (int s = 0; s < _CO_STATUS_MAX; s++)
                if (co_status_name(s))
                        names[n_names++] = co_status_name(s);

        const node *items = v;
        size_t n = 1;
        if (v->kind == NODE_SEQUENCE) {
                items = v->items;
                n = v->n_items;
                if (n == 0)
                        return fail(x, v, "%s: empty list (expected status names such as executing)", path);
        }
        for (size_t i = 0; i < n; i++) {
                const node *it = &items[i];
                int r = want_scalar(x, it, path, "a status name such as executing, or a list of them");
                if (r < 0)
                        return r;
                int s = co_status_from_string(it->text);
                if (s < 0 || s >= _CO_STATUS_MAX) {
                        const char *hint = did_you_mean(it->text, names, n_names);
                        if (hint)
                                return fail(x, it, "%s: unknown status '%s' (did you mean '%s'?)", path,
                                            SHOW(it->text), hint);
                        char list[256];
                        return fail(x, it, "%s: unknown status '%s' (expected %s, or a status number)", path,
                                    SHOW(it->text), join(names, n_names, " or ", list, sizeof list));
                }
                *mask |= 1u << s;
        }
        return 0;
}

static int parse_alert_matchers(parse_ctx *x, const node *v, const char *path, rule *rl) {
        int r = want_mapping(x, v, path, "label matchers such as { alertname: HighErrorRate }");
        if (r < 0)
                return r;
        size_t n = v->n_items / 2;
        if (n == 0)
                return fail(x, v, "%s: no label matchers (expected e.g. { alertname: HighErrorRate })", path);
        if (n > MAX_ALERT_MATCHERS)
                return fail(x, v, "%s: more than %u label matchers", path, MAX_ALERT_MATCHERS);
        rl->alert = calloc(n, sizeof(label_pair));
        if (!rl->alert)
                return -ENOMEM;
        rl->n_alert = n;
        for (size_t i = 0; i < n; i++) {
                const node *k = &v->items[2 * i], *val = &v->items[2 * i + 1];
                if (k->kind != NODE_SCALAR || !valid_label_name(k->text))
                        return fail(x, k, "%s: %s is not a label name (letters, digits and _)", path, DESCRIBE(k));
                for (size_t j = 0; j < i; j++)
                        if (streq(rl->alert[j].name, k->text))
                                return fail(x, k, "duplicate key '%s' in %s (first at line %u)", SHOW(k->text),
                                            path, v->items[2 * j].line);
                rl->alert[i].name = strdup(k->text);
                if (!rl->alert[i].name)
                        return -ENOMEM;
                char vpath[160];
                pathf(vpath, sizeof vpath, "%s.%s", path, k->text);
                r = get_string(x, val, vpath, "the label value to match", &rl->alert[i].value);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_when(parse_ctx *x, const node *v, const char *rpath, rule *rl) {
        static const char *const keys[] = { "status", "sub_status", "co_type", "no_progress_for",
                                            "pipeline_failed", "alert" };
        static const char *const sub_names[] = { "normal", "error" };
        char where[128], path[160];
        int r;

        pathf(where, sizeof where, "%s.when", rpath);
        if (!node_is_null(v)) {
                r = want_mapping(x, v, where, "a mapping of conditions");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = map_key(x, v, i, where, keys, ELEMENTSOF(keys));
                if (k >= 0)
                        pathf(path, sizeof path, "%s.%s", where, keys[k]);
                switch (k) {
                case 0:
                        r = parse_status(x, val, path, &rl->status_mask);
                        break;
                case 1:
                        if (val->kind == NODE_SCALAR && (streq(val->text, "0") || streq(val->text, "1"))) {
                                rl->sub_status = val->text[0] == '1' ? SUB_ERROR : SUB_NORMAL;
                                r = 0;
                                break;
                        }
                        r = get_choice(x, val, path, "a sub_status", sub_names, ELEMENTSOF(sub_names));
                        if (r >= 0)
                                rl->sub_status = r == 1 ? SUB_ERROR : SUB_NORMAL;
                        break;
                case 2:
                        r = parse_string_list(x, val, path, "CoTypeCodes such as CoDeploy", MAX_CO_TYPES,
                                              &rl->co_types, &rl->n_co_types);
                        break;
                case 3:
                        r = get_duration(x, val, path, USEC_PER_SEC, MAX_DURATION, &rl->no_progress_usec);
                        break;
                case 4:
                        r = get_bool(x, val, path, &rl->pipeline_failed);
                        break;
                case 5:
                        r = parse_alert_matchers(x, val, path, rl);
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }

        if (rl->status_mask == 0 && rl->sub_status == SUB_UNKNOWN && rl->n_co_types == 0 &&
            rl->no_progress_usec == 0 && !rl->pipeline_failed && rl->n_alert == 0) {
                char list[160];
                return fail(x, v, "%s: no condition (give at least one of %s)", where,
                            join(keys, ELEMENTSOF(keys), " or ", list, sizeof list));
        }
        return 0;
}

static int parse_rule(parse_ctx *x, const node *v, const char *path, rule *rl) {
        static const char *const keys[] = { "name", "when", "for", "action" };
        const char *actions[3];
        const node *name = NULL, *when = NULL, *action = NULL;
        int r;

        for (int a = 0; a < 3; a++)
                actions[a] = rule_action_name((rule_action)a);

        rl->sub_status = SUB_UNKNOWN;
        r = want_mapping(x, v, path, "a rule (name, when, for, action)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                char vpath[160];
                int k = map_key(x, v, i, path, keys, ELEMENTSOF(keys));
                if (k >= 0)
                        pathf(vpath, sizeof vpath, "%s.%s", path, keys[k]);
                switch (k) {
                case 0:
                        r = get_string(x, val, vpath, "a rule name", &rl->name);
                        if (r >= 0 && !valid_name(rl->name))
                                r = fail(x, val, "%s: '%s' is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -)",
                                         vpath, SHOW(rl->name));
                        name = val;
                        break;
                case 1:
                        r = parse_when(x, val, path, rl);
                        when = val;
                        break;
                case 2:
                        r = get_duration(x, val, vpath, 0, MAX_DURATION, &rl->for_usec);
                        break;
                case 3: {
                        r = want_scalar(x, val, vpath, "rollback, abort or log");
                        if (r < 0)
                                break;
                        int a = rule_action_from_string(val->text);
                        if (a < 0) {
                                const char *hint = did_you_mean(val->text, actions, ELEMENTSOF(actions));
                                if (hint)
                                        r = fail(x, val, "%s: '%s' is not an action (did you mean '%s'?)", vpath,
                                                 SHOW(val->text), hint);
                                else
                                        r = fail(x, val, "%s: '%s' is not an action (expected rollback, abort or log)",
                                                 vpath, SHOW(val->text));
                                break;
                        }
                        rl->action = (rule_action)a;
                        action = val;
                        break;
                }
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        if (!name)
                return fail(x, v, "%s: missing required key 'name'", path);
        if (!when)
                return fail(x, v, "%s: missing required key 'when' (the conditions)", path);
        if (!action)
                return fail(x, v, "%s: missing required key 'action' (rollback, abort or log)", path);
        return 0;
}

static int parse_rules(parse_ctx *x, const node *v, const char *apath, app_config *a) {
        char path[128];
        pathf(path, sizeof path, "%s.rules", apath);

        if (v->kind != NODE_SEQUENCE)
                return fail(x, v, "%s: expected a list of rules, found %s", path, DESCRIBE(v));
        if (v->n_items == 0)
                return fail(x, v, "%s: empty list (leave 'rules' out to get the built-in rules)", path);
        if (v->n_items > MAX_RULES_PER_APP)
                return fail(x, v, "%s: more than %u rules", path, MAX_RULES_PER_APP);

        a->rules = calloc(v->n_items, sizeof(rule));
        if (!a->rules)
                return -ENOMEM;
        a->n_rules = v->n_items;
        for (size_t i = 0; i < v->n_items; i++)
                a->rules[i].sub_status = SUB_UNKNOWN;

        for (size_t i = 0; i < v->n_items; i++) {
                char rpath[160];
                pathf(rpath, sizeof rpath, "%s[%zu]", path, i);
                int r = parse_rule(x, &v->items[i], rpath, &a->rules[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(a->rules[j].name, a->rules[i].name)) {
                                /* the name node is found again for its position */
                                const node *rn = &v->items[i];
                                for (size_t k = 0; k < rn->n_items; k += 2)
                                        if (streq(rn->items[k].text, "name"))
                                                rn = &rn->items[k + 1];
                                return fail(x, rn, "%s[%zu].name: duplicate rule name '%s' (first at line %u)",
                                            path, i, SHOW(a->rules[i].name), v->items[j].line);
                        }
        }
        return 0;
}

typedef struct app_nodes {
        const node *name;
        const node *app_id;
} app_nodes;

static int parse_app(parse_ctx *x, const node *v, size_t idx, app_config *a, app_nodes *an) {
        static const char *const keys[] = { "name", "platform", "region", "app_id", "dry_run", "edas_kind", "rules" };
        static const char *const platforms[] = { "sae", "edas" };
        static const char *const kinds[] = { "ecs", "k8s" };
        const node *platform_value = NULL, *region = NULL, *kind_key = NULL, *rules = NULL;
        char path[48];
        int r;

        pathf(path, sizeof path, "apps[%zu]", idx);
        a->dry_run = -1;
        a->line = v->line;
        r = want_mapping(x, v, path, "an app (name, platform, region, app_id, rules)");
        if (r < 0)
                return r;

        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                char vpath[80];
                int k = map_key(x, v, i, path, keys, ELEMENTSOF(keys));
                if (k >= 0)
                        pathf(vpath, sizeof vpath, "%s.%s", path, keys[k]);
                switch (k) {
                case 0:
                        r = get_string(x, val, vpath, "an app name", &a->name);
                        if (r >= 0 && !valid_name(a->name))
                                r = fail(x, val,
                                         "%s: '%s' is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -; it names "
                                         "the state file and journal fields)",
                                         vpath, SHOW(a->name));
                        an->name = val;
                        break;
                case 1:
                        r = get_choice(x, val, vpath, "a platform", platforms, ELEMENTSOF(platforms));
                        if (r >= 0)
                                a->platform = r == 1 ? PLATFORM_EDAS : PLATFORM_SAE;
                        platform_value = val;
                        break;
                case 2:
                        r = get_string(x, val, vpath, "a region id such as cn-hangzhou", &a->region);
                        if (r >= 0 && !valid_region(a->region))
                                r = fail(x, val,
                                         "%s: '%s' is not a region id (lower-case letters, digits and -, e.g. "
                                         "cn-hangzhou)",
                                         vpath, SHOW(a->region));
                        region = val;
                        break;
                case 3:
                        r = get_string(x, val, vpath, "the application id", &a->app_id);
                        if (r >= 0 && has_control_or_space(a->app_id, false))
                                r = fail(x, val, "%s: '%s' must not contain spaces", vpath, SHOW(a->app_id));
                        an->app_id = val;
                        break;
                case 4: {
                        bool b = false;
                        r = get_bool(x, val, vpath, &b);
                        if (r >= 0)
                                a->dry_run = b;
                        break;
                }
                case 5:
                        r = get_choice(x, val, vpath, "an EDAS application kind", kinds, ELEMENTSOF(kinds));
                        if (r >= 0)
                                a->edas_kind = r == 1 ? EDAS_KIND_K8S : EDAS_KIND_ECS;
                        kind_key = &v->items[i];
                        break;
                case 6:
                        /* `rules:` with nothing after it reads as "no rules given" */
                        if (!node_is_null(val)) {
                                r = parse_rules(x, val, path, a);
                                rules = val;
                        }
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }

        if (!an->name)
                return fail(x, v, "%s: missing required key 'name'", path);
        if (!platform_value)
                return fail(x, v, "%s: missing required key 'platform' (sae or edas)", path);
        if (!region)
                return fail(x, v, "%s: missing required key 'region' (e.g. cn-hangzhou)", path);
        if (!an->app_id)
                return fail(x, v, "%s: missing required key 'app_id'", path);
        if (kind_key && a->platform != PLATFORM_EDAS)
                return fail(x, kind_key, "%s.edas_kind: only applies to platform edas (this app is %s)", path,
                            "sae");
        if (!rules) {
                r = rules_builtin(&a->rules, &a->n_rules);
                if (r < 0)
                        return r;
                a->builtin_rules = true;
        }
        return 0;
}

typedef struct app_ref {
        const app_config *app;
        size_t index;
} app_ref;

static int cmp_by_name(const void *pa, const void *pb) {
        const app_ref *a = pa, *b = pb;
        int c = strcmp(a->app->name, b->app->name);
        if (c != 0)
                return c;
        return a->index < b->index ? -1 : a->index > b->index;
}

static int cmp_by_target(const void *pa, const void *pb) {
        const app_ref *a = pa, *b = pb;
        if (a->app->platform != b->app->platform)
                return a->app->platform < b->app->platform ? -1 : 1;
        int c = strcmp(a->app->region, b->app->region);
        if (c == 0)
                c = strcmp(a->app->app_id, b->app->app_id);
        if (c != 0)
                return c;
        return a->index < b->index ? -1 : a->index > b->index;
}

/* Sorted, equal neighbours are duplicates; report the one that comes
 * second in the file earliest, as a reader going down the file would. */
static bool find_duplicate(app_ref *refs, size_t n, int (*cmp)(const void *, const void *), size_t *first,
                           size_t *second) {
        qsort(refs, n, sizeof *refs, cmp);
        bool found = false;
        size_t group = 0;
        for (size_t i = 1; i < n; i++) {
                app_ref a = refs[i - 1], b = refs[i];
                a.index = b.index = 0;
                if (cmp(&a, &b) != 0) {
                        group = i;
                        continue;
                }
                if (!found || refs[i].index < *second) {
                        *first = refs[group].index;
                        *second = refs[i].index;
                        found = true;
                }
        }
        return found;
}

static int parse_apps(parse_ctx *x, const node *v, config *c) {
        if (node_is_null(v))
                return fail(x, v, "apps: nothing listed: at least one app is required");
        if (v->kind != NODE_SEQUENCE)
                return fail(x, v, "apps: expected a list of apps, found %s", DESCRIBE(v));
        if (v->n_items == 0)
                return fail(x, v, "apps: empty list: at least one app is required");

        c->apps = calloc(v->n_items, sizeof(app_config));
        if (!c->apps)
                return -ENOMEM;
        c->n_apps = v->n_items;
        for (size_t i = 0; i < c->n_apps; i++)
                c->apps[i].dry_run = -1;

        _cleanup_free_ app_nodes *an = calloc(v->n_items, sizeof(app_nodes));
        _cleanup_free_ app_ref *refs = calloc(v->n_items, sizeof(app_ref));
        if (!an || !refs)
                return -ENOMEM;

        for (size_t i = 0; i < v->n_items; i++) {
                int r = parse_app(x, &v->items[i], i, &c->apps[i], &an[i]);
                if (r < 0)
                        return r;
        }

        size_t first, second;
        for (size_t i = 0; i < c->n_apps; i++)
                refs[i] = (app_ref){ &c->apps[i], i };
        if (find_duplicate(refs, c->n_apps, cmp_by_name, &first, &second))
                return fail(x, an[second].name, "apps[%zu].name: duplicate app name '%s' (first at line %u)",
                            second, SHOW(c->apps[second].name), an[first].name->line);

        /* Two entries for one application would each act on the same
         * release: the "never act twice" guarantee is per entry. */
        for (size_t i = 0; i < c->n_apps; i++)
                refs[i] = (app_ref){ &c->apps[i], i };
        if (find_duplicate(refs, c->n_apps, cmp_by_target, &first, &second))
                return fail(x, an[second].app_id,
                            "apps[%zu].app_id: '%s' is already watched as app '%s' (line %u); two entries would "
                            "act twice on one release",
                            second, SHOW(c->apps[second].app_id), SHOW(c->apps[first].name), an[first].name->line);
        return 0;
}

static int parse_root(parse_ctx *x, const node *root, config *c) {
        static const char *const keys[] = { "defaults", "credentials", "endpoints", "alerts", "state_directory", "apps" };
        bool have_apps = false;
        int r;

        if (node_is_null(root))
                return fail(x, root, "empty configuration (expected a mapping with at least an 'apps' list)");
        if (root->kind != NODE_MAPPING)
                return fail(x, root, "the top level must be a mapping (defaults, apps, ...), found %s",
                            DESCRIBE(root));

        for (size_t i = 0; i < root->n_items; i += 2) {
                const node *val = &root->items[i + 1];
                int k = map_key(x, root, i, NULL, keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = parse_defaults(x, val, c);
                        break;
                case 1:
                        r = parse_credentials(x, val, c);
                        break;
                case 2:
                        r = parse_endpoints(x, val, c);
                        break;
                case 3:
                        r = parse_alerts(x, val, c);
                        break;
                case 4:
                        r = get_string(x, val, "state_directory", "a directory name", &c->state_directory);
                        break;
                case 5:
                        r = parse_apps(x, val, c);
                        have_apps = true;
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        if (!have_apps)
                return fail(x, root, "missing required key 'apps' (the list of applications to watch)");
        return 0;
}

/* ---------------------------------------------------------------------- */
/* Public */

static config *config_new(const char *name) {
        config *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        *c = (config){
                .poll_interval_usec = 30 * USEC_PER_SEC,
                .active_poll_interval_usec = 5 * USEC_PER_SEC,
                .cooldown_usec = 15 * USEC_PER_MIN,
                .timeout_usec = 10 * USEC_PER_SEC,
                .max_actions_per_hour = 5,
                .dry_run = false,
                .rate_limit = 60,
                .rate_window_usec = USEC_PER_MIN,
                .path = strdup(name),
                .state_directory = strdup("/var/lib/rollguard"),
        };
        if (!c->path || !c->state_directory)
                return config_free(c);
        return c;
}

int config_parse(const char *name, const char *text, size_t len, config **ret, char **ret_error) {
        parse_ctx x = { .name = name ? name : "<config>", .text = text ? text : "", .len = text ? len : 0 };
        node root = { 0 };
        int r;

        if (ret_error)
                *ret_error = NULL;
        *ret = NULL;

        if (x.len > CONFIG_MAX_BYTES) {
                if (ret_error)
                        *ret_error = strdup_printf("%s: too large (%zu bytes; the limit is 4 MiB)", x.name, x.len);
                return -EFBIG;
        }

        config *c = config_new(x.name);
        if (!c)
                return -ENOMEM;

        r = load_document(&x, &root);
        if (r >= 0)
                r = parse_root(&x, &root, c);
        node_done(&root);

        if (r < 0) {
                config_free(c);
                if (ret_error)
                        *ret_error = x.error ? TAKE_PTR(x.error)
                                             : strdup_printf("%s: %s", x.name, strerror(-r));
                free(x.error);
                return r;
        }
        free(x.error);
        *ret = c;
        return 0;
}

int config_load(const char *path, config **ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        if (ret_error)
                *ret_error = NULL;
        *ret = NULL;
        /* one byte past the limit is enough to know it is too large */
        /* a config can be /dev/stdin or a pipe, where st_size says nothing */
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        int r = fd < 0 ? -errno : read_fd_limited(fd, CONFIG_MAX_BYTES + 1, false, &buf, &len);
        if (fd >= 0)
                close(fd);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup_printf("%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        return config_parse(path, buf, len, ret, ret_error);
}

static void app_config_done(app_config *a) {
        free(a->name);
        free(a->region);
        free(a->app_id);
        for (size_t i = 0; i < a->n_rules; i++)
                rule_done(&a->rules[i]);
        free(a->rules);
        *a = (app_config){ 0 };
}

config *config_free(config *c) {
        if (!c)
                return NULL;
        free(c->path);
        free(c->credentials_file);
        free(c->ecs_ram_role);
        free(c->metadata_endpoint);
        free(c->endpoint_sae);
        free(c->endpoint_edas);
        free(c->alerts_listen);
        free(c->alerts_token_file);
        free(c->state_directory);
        for (size_t i = 0; i < c->n_apps; i++)
                app_config_done(&c->apps[i]);
        free(c->apps);
        free(c);
        return NULL;
}

bool app_config_dry_run(const config *c, const app_config *a, bool force_dry_run) {
        if (force_dry_run)
                return true;
        if (a && a->dry_run >= 0)
                return a->dry_run > 0;
        return c && c->dry_run;
}

char *config_endpoint_url(const config *c, const app_config *a) {
        const char *override = a->platform == PLATFORM_EDAS ? c->endpoint_edas : c->endpoint_sae;
        if (override) {
                size_t n = strlen(override);
                while (n > 1 && override[n - 1] == '/')
                        n--;
                return strndup(override, n);
        }
        return strdup_printf("https://%s.%s.aliyuncs.com", a->platform == PLATFORM_EDAS ? "edas" : "sae",
                             a->region);
}

const app_config *config_find_app(const config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_apps; i++)
                if (streq_null(c->apps[i].name, name))
                        return &c->apps[i];
        return NULL;
}
