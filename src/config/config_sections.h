/* SPDX-License-Identifier: MIT */
/* Internal to src/config: the top-level sections of rollguard.yaml.
 *
 * config.c holds the table of known top-level keys (sections[]), each with
 * the functions below. A section lives in its own file, reads its values
 * with config_read.h and stores them in struct config (config.h).
 *
 * To add a top-level section, say `notify:`:
 *  1. its fields go into struct config in config.h;
 *  2. src/config/config_notify.c defines the functions (a
 *     `static const char *const keys[]` of its keys, which
 *     tests/check_docs.py checks against rollguard.yaml(5));
 *  3. their declarations go below, and the file into meson.build's
 *     src['config'];
 *  4. one line in sections[] in config.c, in the order the man page lists
 *     the sections (the "expected ..." hint for an unknown key uses it). */
#pragma once

#include "config.h"
#include "yaml_doc.h"

typedef struct cfg_section {
        const char *name;
        /* Called once with the key's value (which may be null: `notify:`). */
        int (*parse)(parse_ctx *x, const node *v, config *c);
        /* Sets the defaults before the file is read, so a missing section
         * leaves them; NULL when zero is the default. -ENOMEM only. */
        int (*init)(config *c);
        /* Frees what init and parse stored, also after a failed parse. */
        void (*done)(config *c);
        /* Non-NULL: the key must be given; says what it holds, for
         * "missing required key 'apps' (the list of applications to watch)" */
        const char *required;
} cfg_section;

/* config_apps.c: apps, their rules and the rules' conditions */
int cfg_parse_apps(parse_ctx *x, const node *v, config *c);
void cfg_done_apps(config *c);

/* config_prom.c: the prometheus section, and a rule's query/above/below */
int cfg_parse_prometheus(parse_ctx *x, const node *v, config *c);
int cfg_init_prometheus(config *c);
void cfg_done_prometheus(config *c);

/* The nodes of a `when`'s metric keys, for the checks across them. */
typedef struct when_metric {
        const node *query, *above, *below;
} when_metric;
/* which: 0 query, 1 above, 2 below. */
int cfg_parse_when_metric(parse_ctx *x, const node *val, const char *path, int which, when_metric *m,
                          rule *rl);
/* After all of a `when`'s keys: exactly one of above/below with a query. */
int cfg_finish_when_metric(parse_ctx *x, const node *when, const char *where, const when_metric *m);
/* After the whole file: every query rule has a prometheus section, and its
 * template is valid for its app (FILE:LINE:COL of the placeholder). */
int cfg_check_prom_rules(parse_ctx *x, const config *c);
/* config_ha.c: ha (etcd endpoints, prefix, lease, node, tls, user) */
int cfg_parse_ha(parse_ctx *x, const node *v, config *c);
int cfg_init_ha(config *c);
void cfg_done_ha(config *c);

/* config_notify.c: the notification channels. cfg_check_notify runs after
 * every section is read: a channel's apps must name configured apps. */
int cfg_parse_notify(parse_ctx *x, const node *v, config *c);
int cfg_check_notify(parse_ctx *x, config *c);
void cfg_done_notify(config *c);
