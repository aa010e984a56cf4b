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
/* number or decimal string; must be integral and within int64. */
int json_get_int64(const cJSON *obj, const char *name, int64_t *ret);
int json_get_int(const cJSON *obj, const char *name, int *ret);
/* true/false, "true"/"false" (any case), 1/0, "1"/"0". */
int json_get_bool(const cJSON *obj, const char *name, bool *ret);
