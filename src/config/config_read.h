/* SPDX-License-Identifier: MIT */
/* Internal to src/config: what a section parser reads its values with.
 *
 * Every getter takes the node, the dotted path a reader would search for
 * ("defaults.poll_interval", "apps[2].rules[0].when") and returns 0 (or an
 * index) or a negative code after recording "FILE:LINE:COL: path: message"
 * in the parse_ctx. A getter that stores a string frees the old one first, so
 * a key given twice cannot leak (map_key refuses that anyway). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "yaml_doc.h"

#define NAME_MAX_LEN 64u
#define MAX_DURATION (30 * 24 * USEC_PER_HOUR)

/* snprintf for message paths: a path cut short in a message is harmless */
void cfg_pathf(char *buf, size_t bufsz, const char *fmt, ...) _printf_(3, 4);

/* The closest candidate within distance 2, or NULL. NULL candidates are
 * skipped. */
const char *cfg_did_you_mean(const char *s, const char *const *candidates, size_t n);
/* "a, b, c" (with last_sep before the last word) into buf */
const char *cfg_join(const char *const *words, size_t n, const char *last_sep, char *buf, size_t bufsz);

/* 1 to 64 of A-Z a-z 0-9 . _ -, not "." or "..": safe as a file name. */
bool cfg_valid_name(const char *s);
bool cfg_has_control_or_space(const char *s, bool allow_space);

/* The key at map->items[i] (a mapping's items are key, value, key, value):
 * returns its index in known[], or fails on a non-scalar, duplicate or
 * unknown key (with a did-you-mean). `where` names the mapping
 * ("defaults", "apps[0]"; NULL for the top level). */
int cfg_map_key(parse_ctx *x, const node *map, size_t i, const char *where, const char *const *known,
                size_t n_known);

int cfg_want_mapping(parse_ctx *x, const node *v, const char *path, const char *what);
/* A scalar that is not null; `what` says what was expected. */
int cfg_want_scalar(parse_ctx *x, const node *v, const char *path, const char *what);

/* Non-empty, no control characters; *dst is replaced. */
int cfg_get_string(parse_ctx *x, const node *v, const char *path, const char *what, char **dst);
/* 90s, 5m, 1h30m within [min, max] */
int cfg_get_duration(parse_ctx *x, const node *v, const char *path, uint64_t min, uint64_t max,
                     uint64_t *ret);
/* true/yes/on, false/no/off, any case */
int cfg_get_bool(parse_ctx *x, const node *v, const char *path, bool *ret);
int cfg_get_uint(parse_ctx *x, const node *v, const char *path, unsigned min, unsigned max, unsigned *ret);
/* One of names[]; returns its index. `noun` reads "a platform". */
int cfg_get_choice(parse_ctx *x, const node *v, const char *path, const char *noun,
                   const char *const *names, size_t n);
/* http:// or https://, stored without trailing slashes */
int cfg_get_url(parse_ctx *x, const node *v, const char *path, char **dst);
/* host:port or [ipv6]:port */
int cfg_get_listen(parse_ctx *x, const node *v, const char *path, char **dst);
/* "60/min", "10/s", "1000/h", "100/2m" */
int cfg_get_rate_limit(parse_ctx *x, const node *v, const char *path, unsigned *ret_n,
                       uint64_t *ret_window);
/* A list of strings, or a single string standing for a list of one, at most
 * `max`. *ret is NULL-terminated too; the caller frees it even on failure. */
int cfg_get_string_list(parse_ctx *x, const node *v, const char *path, const char *what, unsigned max,
                        char ***ret, size_t *ret_n);
