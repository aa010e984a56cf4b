/* SPDX-License-Identifier: MIT */
/* A rule's PromQL template: {{app}}, {{app_id}}, {{change_order}},
 * {{region}}, {{release_started}} (unix seconds) replaced by the release's
 * values. Pure. A value is written so that it cannot change the query's
 * structure: inside a "..." / '...' literal `\` and the quote are escaped,
 * after =~ or !~ regex metacharacters too (an app name is matched literally),
 * in a `raw` literal a backtick is refused, and outside any literal only a
 * plain word ([A-Za-z0-9_:.]) is accepted. Spaces inside the braces are
 * allowed ({{ app }}); any other name, or a "{{" without "}}", is refused. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The expanded query never exceeds this (it goes into a URL). */
#define PROM_QUERY_MAX 16384

typedef struct prom_template_vars {
        const char *app;
        const char *app_id;
        const char *change_order;
        const char *region;
        int64_t release_started; /* unix seconds; < 0 = not known */
} prom_template_vars;

/* Expands tmpl into *ret (malloc'ed). A missing value (NULL, or
 * release_started < 0) is an error: the caller skips that look instead of
 * sending a query about the wrong thing. Returns 0, -ENOMEM, or -EINVAL /
 * -E2BIG with *ret_error (malloc'ed, one line) and *ret_offset the byte
 * offset in tmpl of the offending "{{" (0 for -E2BIG), so config can point
 * at FILE:LINE:COL. ret_error and ret_offset may be NULL. */
int prom_template_expand(const char *tmpl, const prom_template_vars *vars, char **ret,
                         char **ret_error, size_t *ret_offset);

/* What `check` runs before any release exists: vars may be NULL or have
 * NULL fields / release_started < 0, which are then replaced by a value of
 * the shape the real one will have (a change order id has '-' in it, so
 * {{change_order}} outside quotes is refused here as it would be later).
 * Same returns as prom_template_expand; *ret (optional) gets the sample. */
int prom_template_check(const char *tmpl, const prom_template_vars *vars, char **ret,
                        char **ret_error, size_t *ret_offset);
