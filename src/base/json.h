/* SPDX-License-Identifier: MIT */
/* Tolerant readers for what the cloud really sends (STYLE: cJSON,
 * tolerantly): a number may come as a string, a field may be null or absent,
 * unknown fields are ignored. Every reader returns:
 *   1  the field is present and was read,
 *   0  absent or null (*ret untouched),
 *   -EBADMSG  present with a type we cannot read. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* Case-sensitive member lookup that tolerates obj == NULL or non-objects. */
const cJSON *json_member(const cJSON *obj, const char *name);
/* Dotted path: "Data.ChangeOrderList"; NULL when any step is missing. */
const cJSON *json_path(const cJSON *obj, const char *dotted);

/* string; a number is formatted (ids sometimes come as numbers). *ret malloc'ed. */
int json_get_string(const cJSON *obj, const char *name, char **ret);
/* The same without a copy: *ret points into obj (a string) or into buf
 * (a number, formatted there; 32 bytes hold any). Valid while both live. */
int json_get_string_ref(const cJSON *obj, const char *name, char *buf, size_t bufsz, const char **ret);
/* number or decimal string; must be integral and within int64. */
int json_get_int64(const cJSON *obj, const char *name, int64_t *ret);
int json_get_int(const cJSON *obj, const char *name, int *ret);
/* true/false, "true"/"false" (any case), 1/0, "1"/"0". */
int json_get_bool(const cJSON *obj, const char *name, bool *ret);

/* The same, for parsers that must say exactly what was wrong and where.
 * `where` is the JSON path of obj ("Data.Pipelines[2]", "" at the top);
 * on -EBADMSG *ret_error (when not NULL) becomes e.g.
 * "Data.Pipelines[2].Status: expected a number". */
int json_error(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int json_field_error(char **ret_error, const char *where, const char *name, const char *what);
/* "PREFIX[index]" into buf, the JSON path of a list item, without printf
 * (parsers build one per list item, error or not). Cut short when buf is
 * too small; returns buf. */
const char *json_where_item(char *buf, size_t bufsz, const char *prefix, size_t index);
/* "" counts as absent: that is how the APIs say "none". */
int json_read_string(const cJSON *obj, const char *where, const char *name, char **ret, char **ret_error);
int json_read_int(const cJSON *obj, const char *where, const char *name, int *ret, char **ret_error);
/* A count below zero makes no sense: treated as absent, not as an error. */
int json_read_count(const cJSON *obj, const char *where, const char *name, int *ret, char **ret_error);
int json_read_bool(const cJSON *obj, const char *where, const char *name, bool *ret, char **ret_error);
/* ms since the epoch as a number or numeric string, or console time
 * "YYYY-MM-DD HH:MM:SS" (UTC+8). Negative values are treated as absent. */
int json_read_time(const cJSON *obj, const char *where, const char *name, int64_t *ret, char **ret_error);

/* "YYYY-MM-DD HH:MM:SS" as the console shows it (China Standard Time,
 * UTC+8) -> ms since the epoch; -EINVAL when malformed or before 1970. */
int json_parse_console_time(const char *s, int64_t *ret_ms);
