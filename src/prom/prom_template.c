/* SPDX-License-Identifier: MIT */
#include "prom_template.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Where in the PromQL text a placeholder stands: that decides how its value
 * must be written. */
typedef enum lex_state {
        IN_CODE,
        IN_DQUOTE,   /* "..." */
        IN_SQUOTE,   /* '...' */
        IN_RAW,      /* `...`: no escapes at all */
        IN_COMMENT,  /* # to the end of the line */
} lex_state;

typedef struct buf {
        char *p;
        size_t len, cap;
        bool too_big;
} buf;

static int buf_put(buf *b, char c) {
        if (b->len + 1 >= PROM_QUERY_MAX) {
                b->too_big = true;
                return -E2BIG;
        }
        if (b->len + 2 > b->cap) {
                size_t nc = b->cap ? b->cap * 2 : 256;
                if (nc > PROM_QUERY_MAX)
                        nc = PROM_QUERY_MAX;
                char *np = realloc(b->p, nc);
                if (!np)
                        return -ENOMEM;
                b->p = np;
                b->cap = nc;
        }
        b->p[b->len++] = c;
        b->p[b->len] = 0;
        return 0;
}

static const char *const names[] = { "app", "app_id", "change_order", "region", "release_started" };

/* A value of the right shape for `check`, before any release exists. */
#define SAMPLE_CHANGE_ORDER "00000000-0000-0000-0000-000000000000"
#define SAMPLE_RELEASE_STARTED INT64_C(1700000000)

static int fail(char **ret_error, size_t *ret_offset, size_t offset, int r, const char *fmt, ...)
        _printf_(5, 6);

static int fail(char **ret_error, size_t *ret_offset, size_t offset, int r, const char *fmt, ...) {
        if (ret_offset)
                *ret_offset = offset;
        if (ret_error) {
                va_list ap;
                va_start(ap, fmt);
                char *s = NULL;
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
                *ret_error = s;
        }
        return r;
}

static bool is_word_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == ':' || c == '.';
}

static bool is_regex_meta(char c) {
        return c && strchr("\\.+*?()|[]{}^$", c);
}

/* Is the literal about to open the right side of =~ or !~? */
static bool after_regex_op(const buf *b) {
        size_t i = b->len;
        while (i > 0 && (b->p[i - 1] == ' ' || b->p[i - 1] == '\t' || b->p[i - 1] == '\n' ||
                         b->p[i - 1] == '\r'))
                i--;
        return i >= 2 && b->p[i - 1] == '~' && (b->p[i - 2] == '=' || b->p[i - 2] == '!');
}

/* One character of a value inside a quoted literal. */
static int put_quoted(buf *b, lex_state st, char c) {
        int r;
        if (st == IN_RAW)
                return buf_put(b, c);
        char quote = st == IN_DQUOTE ? '"' : '\'';
        if (c == '\\' || c == quote) {
                r = buf_put(b, '\\');
                if (r < 0)
                        return r;
        }
        return buf_put(b, c);
}

static int put_value(buf *b, lex_state st, bool regex, const char *name, const char *value,
                     size_t offset, char **ret_error, size_t *ret_offset) {
        for (const char *p = value; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (c < 0x20 || c == 0x7f)
                        return fail(ret_error, ret_offset, offset, -EINVAL,
                                    "the value of {{%s}} contains a control character", name);
        }
        if (st == IN_CODE) {
                bool plain = value[0] != 0;
                for (const char *p = value; *p; p++)
                        plain = plain && is_word_char(*p);
                if (!plain)
                        return fail(ret_error, ret_offset, offset, -EINVAL,
                                    "{{%s}} stands outside a quoted string, where only a plain word "
                                    "(letters, digits, '_', ':', '.') is safe, and its value \"%s\" "
                                    "is not one: put it in a label matcher such as app=\"{{%s}}\"",
                                    name, value, name);
        }
        if (st == IN_RAW && strchr(value, '`'))
                return fail(ret_error, ret_offset, offset, -EINVAL,
                            "the value of {{%s}} contains a backtick, which cannot stand in a `raw` "
                            "string: use \"...\" quotes",
                            name);
        for (const char *p = value; *p; p++) {
                int r = 0;
                if (st == IN_CODE || st == IN_COMMENT)
                        r = buf_put(b, *p);
                else {
                        /* regex escape first, then the literal's own escaping of it */
                        if (regex && is_regex_meta(*p))
                                r = put_quoted(b, st, '\\');
                        if (r == 0)
                                r = put_quoted(b, st, *p);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int expand(const char *tmpl, const prom_template_vars *vars, bool sample, char **ret,
                  char **ret_error, size_t *ret_offset) {
        static const prom_template_vars none = { .release_started = -1 };
        if (!vars)
                vars = &none;
        if (ret_error)
                *ret_error = NULL;
        if (ret_offset)
                *ret_offset = 0;
        if (!tmpl)
                return fail(ret_error, ret_offset, 0, -EINVAL, "no query");

        _cleanup_free_ char *out = NULL;
        buf b = {};
        lex_state st = IN_CODE;
        bool regex = false; /* the current literal is a regex (=~ / !~) */
        int r = 0;

        for (size_t i = 0; tmpl[i] && r == 0;) {
                const char *s = tmpl + i;
                if (s[0] == '{' && s[1] == '{') {
                        const char *end = strstr(s + 2, "}}");
                        if (!end) {
                                r = fail(ret_error, ret_offset, i, -EINVAL,
                                         "\"{{\" without a closing \"}}\"");
                                break;
                        }
                        const char *n0 = s + 2, *n1 = end;
                        while (n0 < n1 && (*n0 == ' ' || *n0 == '\t'))
                                n0++;
                        while (n1 > n0 && (n1[-1] == ' ' || n1[-1] == '\t'))
                                n1--;
                        size_t nlen = (size_t) (n1 - n0);
                        int which = -1;
                        for (size_t k = 0; k < ELEMENTSOF(names); k++)
                                if (strlen(names[k]) == nlen && strncmp(names[k], n0, nlen) == 0)
                                        which = (int) k;
                        if (which < 0) {
                                r = fail(ret_error, ret_offset, i, -EINVAL,
                                         "unknown placeholder {{%.*s}}: known are {{app}}, "
                                         "{{app_id}}, {{change_order}}, {{region}}, "
                                         "{{release_started}}",
                                         (int) (nlen > 40 ? 40 : nlen), n0);
                                break;
                        }
                        const char *value = NULL;
                        char num[24];
                        switch (which) {
                        case 0: value = vars->app; break;
                        case 1: value = vars->app_id; break;
                        case 2:
                                value = vars->change_order;
                                if (!value && sample)
                                        value = SAMPLE_CHANGE_ORDER;
                                break;
                        case 3: value = vars->region; break;
                        case 4: {
                                int64_t t = vars->release_started;
                                if (t < 0 && sample)
                                        t = SAMPLE_RELEASE_STARTED;
                                if (t >= 0) {
                                        snprintf(num, sizeof num, "%" PRId64, t);
                                        value = num;
                                }
                                break;
                        }
                        }
                        if (!value && sample)
                                value = "x"; /* app, app_id, region: the config will know them */
                        if (!value) {
                                r = fail(ret_error, ret_offset, i, -EINVAL,
                                         "no value for {{%s}} (yet)", names[which]);
                                break;
                        }
                        r = put_value(&b, st, regex, names[which], value, i, ret_error, ret_offset);
                        i = (size_t) (end + 2 - tmpl);
                        continue;
                }

                char c = s[0];
                switch (st) {
                case IN_CODE:
                        if (c == '"' || c == '\'' || c == '`') {
                                regex = after_regex_op(&b);
                                st = c == '"' ? IN_DQUOTE : c == '\'' ? IN_SQUOTE : IN_RAW;
                        } else if (c == '#')
                                st = IN_COMMENT;
                        break;
                case IN_DQUOTE:
                case IN_SQUOTE:
                        if (c == '\\' && s[1]) {
                                /* the escaped character is copied with it */
                                r = buf_put(&b, c);
                                i++;
                                c = s[1];
                        } else if (c == (st == IN_DQUOTE ? '"' : '\''))
                                st = IN_CODE;
                        break;
                case IN_RAW:
                        if (c == '`')
                                st = IN_CODE;
                        break;
                case IN_COMMENT:
                        if (c == '\n')
                                st = IN_CODE;
                        break;
                }
                if (r == 0)
                        r = buf_put(&b, c);
                i++;
        }

        out = b.p;
        if (r == -E2BIG || b.too_big)
                return fail(ret_error, ret_offset, 0, -E2BIG,
                            "the expanded query is longer than %d bytes", PROM_QUERY_MAX - 1);
        if (r < 0)
                return r;
        if (!out) {
                out = strdup("");
                if (!out)
                        return -ENOMEM;
        }
        if (ret)
                *ret = TAKE_PTR(out);
        return 0;
}

int prom_template_expand(const char *tmpl, const prom_template_vars *vars, char **ret,
                         char **ret_error, size_t *ret_offset) {
        return expand(tmpl, vars, false, ret, ret_error, ret_offset);
}

int prom_template_check(const char *tmpl, const prom_template_vars *vars, char **ret,
                        char **ret_error, size_t *ret_offset) {
        return expand(tmpl, vars, true, ret, ret_error, ret_offset);
}
