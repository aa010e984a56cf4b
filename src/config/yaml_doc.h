/* SPDX-License-Identifier: MIT */
/* Internal to src/config: YAML text -> a small tree that keeps the position
 * of every key and value, and the error sink that turns a position into
 * "FILE:LINE:COL: message". Knows YAML, not the rollguard.yaml schema. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

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

typedef struct parse_ctx {
        const char *name; /* the file name in messages */
        const char *text;
        size_t len;
        size_t n_nodes;
        char *error; /* the first error, "NAME:LINE:COL: message" */
} parse_ctx;

void cfg_node_done(node *n);

/* Loads the single document of x->text; *root stays a null scalar when there
 * is none. Anchors and aliases are refused (see yaml_doc.c for why). On
 * failure *root holds what was built so far, for cfg_node_done(). */
int cfg_load_document(parse_ctx *x, node *root);

/* Between the text's byte offsets and libyaml's marks (0-based line and
 * column, columns in characters), and back to 1-based LINE:COL; for errors
 * that point inside a scalar (a PromQL placeholder, say). */
size_t cfg_mark_offset(const parse_ctx *x, unsigned line0, unsigned col0);
void cfg_offset_position(const parse_ctx *x, size_t offset, unsigned *line, unsigned *col);

/* Records the first error at LINE:COL and returns `code` (-ENOMEM when the
 * message cannot be built). Later errors are dropped: the first is the one
 * a reader fixes first. */
int cfg_fail_at(parse_ctx *x, int code, unsigned line, unsigned col, const char *fmt, ...) _printf_(5, 6);
#define fail(x, n, ...) cfg_fail_at((x), -EINVAL, (n)->line, (n)->col, __VA_ARGS__)

/* A plain ~, null or nothing. */
bool cfg_node_is_null(const node *n);

/* User text in a message: bounded, and no control characters that could
 * forge a second log line or move the terminal cursor. */
const char *cfg_show(const char *s, char *buf, size_t bufsz);
#define SHOW(s) cfg_show((s), (char[72]){ 0 }, 72)

/* "a mapping", "a list", "nothing" or the quoted scalar, for "found ..." */
const char *cfg_describe(const node *n, char *buf, size_t bufsz);
#define DESCRIBE(n) cfg_describe((n), (char[80]){ 0 }, 80)
