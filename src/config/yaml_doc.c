/* SPDX-License-Identifier: MIT */
/* YAML -> a tree that remembers where everything was.
 *
 * libyaml's event API builds a small tree that keeps the position of every
 * key and value; the schema walk (config.c and its sections) reads that tree,
 * so each error can say FILE:LINE:COL. The event API (rather than
 * yaml_parser_load) is what lets us see anchors and aliases and refuse them:
 * the document loader resolves them into shared nodes without a trace, and
 * walking nested aliases is how a few hundred bytes become billions of nodes
 * (the "YAML bomb"). */
#include "yaml_doc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define CONFIG_MAX_DEPTH 32u       /* the schema needs 6 levels */
#define CONFIG_MAX_NODES (1u << 20) /* thousands of apps fit easily */

void cfg_node_done(node *n) {
        free(n->text);
        for (size_t i = 0; i < n->n_items; i++)
                cfg_node_done(&n->items[i]);
        free(n->items);
        *n = (node){ 0 };
}

int cfg_fail_at(parse_ctx *x, int code, unsigned line, unsigned col, const char *fmt, ...) {
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

const char *cfg_show(const char *s, char *buf, size_t bufsz) {
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

bool cfg_node_is_null(const node *n) {
        return n->kind == NODE_SCALAR && n->plain &&
               (n->len == 0 || streq(n->text, "~") || streq(n->text, "null") ||
                streq(n->text, "Null") || streq(n->text, "NULL"));
}

const char *cfg_describe(const node *n, char *buf, size_t bufsz) {
        if (n->kind == NODE_MAPPING)
                return "a mapping";
        if (n->kind == NODE_SEQUENCE)
                return "a list";
        if (cfg_node_is_null(n))
                return "nothing";
        char tmp[72];
        snprintf(buf, bufsz, "'%s'", cfg_show(n->text, tmp, sizeof tmp));
        return buf;
}

/* ---------------------------------------------------------------------- */
/* YAML -> tree */

/* Byte offset of a libyaml mark; libyaml counts columns in characters. */
size_t cfg_mark_offset(const parse_ctx *x, unsigned line0, unsigned col0) {
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

void cfg_offset_position(const parse_ctx *x, size_t offset, unsigned *line, unsigned *col) {
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
        size_t line_start = cfg_mark_offset(x, line0, 0);
        size_t at = cfg_mark_offset(x, line0, col0);
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
                cfg_offset_position(x, p->problem_offset, &line, &col);
                if (p->problem_value >= 0)
                        return cfg_fail_at(x, -EBADMSG, line, col, "YAML syntax error: %s (byte 0x%02X)",
                                           problem, (unsigned)p->problem_value);
                return cfg_fail_at(x, -EBADMSG, line, col, "YAML syntax error: %s", problem);
        }
        unsigned line = (unsigned)p->problem_mark.line, col = (unsigned)p->problem_mark.column;
        const char *hint = tab_near(x, line, col) ? "; tabs are not allowed in indentation, use spaces" : "";
        if (p->context && p->context_mark.line == p->problem_mark.line &&
            p->context_mark.column == p->problem_mark.column)
                return cfg_fail_at(x, -EBADMSG, line + 1, col + 1, "YAML syntax error: %s (%s)%s", problem,
                                   p->context, hint);
        if (p->context)
                return cfg_fail_at(x, -EBADMSG, line + 1, col + 1,
                                   "YAML syntax error: %s (%s at line %u, column %u)%s", problem,
                                   p->context, (unsigned)p->context_mark.line + 1,
                                   (unsigned)p->context_mark.column + 1, hint);
        return cfg_fail_at(x, -EBADMSG, line + 1, col + 1, "YAML syntax error: %s%s", problem, hint);
}

static int next_event(parse_ctx *x, yaml_parser_t *p, yaml_event_t *ev) {
        if (!yaml_parser_parse(p, ev))
                return fail_yaml(x, p);
        return 0;
}

/* Builds *out from the event `ev` (and the events that follow it for a
 * collection). Always consumes `ev`. On failure *out holds what was built so
 * far, for cfg_node_done(). */
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
                r = cfg_fail_at(x, -EBADMSG, out->line, out->col, "YAML syntax error: unexpected event");
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
                /* counted before it is built so cfg_node_done() frees a partial child */
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
int cfg_load_document(parse_ctx *x, node *root) {
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
                r = cfg_fail_at(x, -EINVAL, (unsigned)ev.start_mark.line + 1, (unsigned)ev.start_mark.column + 1,
                                "a second YAML document: rollguard.yaml holds exactly one");
        yaml_event_delete(&ev);
out:
        yaml_parser_delete(&parser);
        return r;
}
