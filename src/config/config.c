/* SPDX-License-Identifier: MIT */
/* rollguard.yaml -> struct config: the table of top-level sections, the
 * small sections (defaults, credentials, endpoints, alerts,
 * state_directory) and the public functions.
 *
 * yaml_doc.c reads the YAML into a tree that keeps every position,
 * config_read.c has the typed getters, and each larger section has its own
 * file (config_apps.c, config_notify.c); config_sections.h says how to add one. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_read.h"
#include "config_sections.h"
#include "safe_open.h"
#include "util.h"
#include "yaml_doc.h"

#define CONFIG_MAX_BYTES ((size_t)4 * 1024 * 1024)

/* ---------------------------------------------------------------------- */
/* Sections */

static int parse_defaults(parse_ctx *x, const node *v, config *c) {
        static const char *const keys[] = { "poll_interval", "active_poll_interval", "cooldown",
                                            "max_actions_per_hour", "dry_run", "rate_limit", "timeout",
                                            "unobserved_after" };
        const node *active = NULL;
        int r;

        if (cfg_node_is_null(v))
                return 0;
        r = cfg_want_mapping(x, v, "defaults", "a mapping of settings");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, "defaults", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = cfg_get_duration(x, val, "defaults.poll_interval", USEC_PER_SEC, 24 * USEC_PER_HOUR,
                                             &c->poll_interval_usec);
                        break;
                case 1:
                        r = cfg_get_duration(x, val, "defaults.active_poll_interval", USEC_PER_SEC,
                                             24 * USEC_PER_HOUR, &c->active_poll_interval_usec);
                        active = val;
                        break;
                case 2:
                        r = cfg_get_duration(x, val, "defaults.cooldown", 0, MAX_DURATION, &c->cooldown_usec);
                        break;
                case 3:
                        r = cfg_get_uint(x, val, "defaults.max_actions_per_hour", 0, 1000, &c->max_actions_per_hour);
                        break;
                case 4:
                        r = cfg_get_bool(x, val, "defaults.dry_run", &c->dry_run);
                        break;
                case 5:
                        r = cfg_get_rate_limit(x, val, "defaults.rate_limit", &c->rate_limit, &c->rate_window_usec);
                        break;
                case 6:
                        r = cfg_get_duration(x, val, "defaults.timeout", USEC_PER_SEC, 5 * USEC_PER_MIN,
                                             &c->timeout_usec);
                        break;
                case 7:
                        r = cfg_get_duration(x, val, "defaults.unobserved_after", USEC_PER_SEC, 24 * USEC_PER_HOUR,
                                             &c->unobserved_after_usec);
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

        if (cfg_node_is_null(v))
                return 0;
        r = cfg_want_mapping(x, v, "credentials", "a mapping (file, ecs_ram_role, metadata_endpoint)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, "credentials", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = cfg_get_string(x, val, "credentials.file", "a file name", &c->credentials_file);
                        break;
                case 1:
                        r = cfg_get_string(x, val, "credentials.ecs_ram_role", "a RAM role name or auto",
                                           &c->ecs_ram_role);
                        break;
                case 2:
                        r = cfg_get_url(x, val, "credentials.metadata_endpoint", &c->metadata_endpoint);
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

        if (cfg_node_is_null(v))
                return 0;
        r = cfg_want_mapping(x, v, "endpoints", "a mapping (sae, edas)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, "endpoints", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = cfg_get_url(x, val, "endpoints.sae", &c->endpoint_sae);
                        break;
                case 1:
                        r = cfg_get_url(x, val, "endpoints.edas", &c->endpoint_edas);
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

        if (cfg_node_is_null(v))
                return 0;
        r = cfg_want_mapping(x, v, "alerts", "a mapping (listen, token_file)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, "alerts", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = cfg_get_listen(x, val, "alerts.listen", &c->alerts_listen);
                        break;
                case 1:
                        r = cfg_get_string(x, val, "alerts.token_file", "a file name", &c->alerts_token_file);
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
static int parse_state_directory(parse_ctx *x, const node *v, config *c) {
        return cfg_get_string(x, v, "state_directory", "a directory name", &c->state_directory);
}

/* ---------------------------------------------------------------------- */
/* Defaults and cleanup of the small sections */

static int init_defaults(config *c) {
        c->poll_interval_usec = 30 * USEC_PER_SEC;
        c->active_poll_interval_usec = 5 * USEC_PER_SEC;
        c->cooldown_usec = 15 * USEC_PER_MIN;
        c->timeout_usec = 10 * USEC_PER_SEC;
        c->max_actions_per_hour = 5;
        c->dry_run = false;
        /* Half of SAE's documented 60 calls/min per account: the rest is
         * left for the user's own deploy tools, which share the limit. */
        c->rate_limit = 30;
        c->rate_window_usec = USEC_PER_MIN;
        c->unobserved_after_usec = 2 * USEC_PER_MIN;
        return 0;
}

static void done_credentials(config *c) {
        c->credentials_file = mfree(c->credentials_file);
        c->ecs_ram_role = mfree(c->ecs_ram_role);
        c->metadata_endpoint = mfree(c->metadata_endpoint);
}

static void done_endpoints(config *c) {
        c->endpoint_sae = mfree(c->endpoint_sae);
        c->endpoint_edas = mfree(c->endpoint_edas);
}

static void done_alerts(config *c) {
        c->alerts_listen = mfree(c->alerts_listen);
        c->alerts_token_file = mfree(c->alerts_token_file);
}

static int init_state_directory(config *c) {
        c->state_directory = strdup("/var/lib/rollguard");
        return c->state_directory ? 0 : -ENOMEM;
}

static void done_state_directory(config *c) {
        c->state_directory = mfree(c->state_directory);
}

/* ---------------------------------------------------------------------- */
/* The top level */

/* The known top-level keys, in the order the man page lists them. Adding a
 * section is one file and one line here: see config_sections.h. */
static const cfg_section sections[] = {
        { "defaults", parse_defaults, init_defaults, NULL, NULL },
        { "credentials", parse_credentials, NULL, done_credentials, NULL },
        { "endpoints", parse_endpoints, NULL, done_endpoints, NULL },
        { "alerts", parse_alerts, NULL, done_alerts, NULL },
        { "state_directory", parse_state_directory, init_state_directory, done_state_directory, NULL },
        { "prometheus", cfg_parse_prometheus, cfg_init_prometheus, cfg_done_prometheus, NULL },
        { "ha", cfg_parse_ha, cfg_init_ha, cfg_done_ha, NULL },
        { "apps", cfg_parse_apps, NULL, cfg_done_apps, "the list of applications to watch" },
        { "notify", cfg_parse_notify, NULL, cfg_done_notify, NULL },
};

static int parse_root(parse_ctx *x, const node *root, config *c) {
        const char *keys[ELEMENTSOF(sections)];
        bool seen[ELEMENTSOF(sections)] = { false };
        int r;

        for (size_t s = 0; s < ELEMENTSOF(sections); s++)
                keys[s] = sections[s].name;

        if (cfg_node_is_null(root))
                return fail(x, root, "empty configuration (expected a mapping with at least an 'apps' list)");
        if (root->kind != NODE_MAPPING)
                return fail(x, root, "the top level must be a mapping (defaults, apps, ...), found %s",
                            DESCRIBE(root));

        for (size_t i = 0; i < root->n_items; i += 2) {
                int k = cfg_map_key(x, root, i, NULL, keys, ELEMENTSOF(keys));
                if (k < 0)
                        return k;
                r = sections[k].parse(x, &root->items[i + 1], c);
                if (r < 0)
                        return r;
                seen[k] = true;
        }
        for (size_t s = 0; s < ELEMENTSOF(sections); s++)
                if (sections[s].required && !seen[s])
                        return fail(x, root, "missing required key '%s' (%s)", sections[s].name,
                                    sections[s].required);
        /* across sections, now that all are read */
        r = cfg_check_prom_rules(x, c);
        if (r < 0)
                return r;
        return cfg_check_notify(x, c);
}

/* ---------------------------------------------------------------------- */
/* Public */

static config *config_new(const char *name) {
        config *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        c->path = strdup(name);
        if (!c->path)
                return config_free(c);
        for (size_t s = 0; s < ELEMENTSOF(sections); s++)
                if (sections[s].init && sections[s].init(c) < 0)
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

        r = cfg_load_document(&x, &root);
        if (r >= 0)
                r = parse_root(&x, &root, c);
        cfg_node_done(&root);

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
        /* A regular file only, opened O_NONBLOCK: a FIFO put in its place
         * would block open(2) or read(2), and with it `check` or the whole
         * loop on SIGHUP. A symlink is fine (config management makes them). */
        _cleanup_free_ char *why = NULL;
        int fd = -1;
        int r = safe_open_read(AT_FDCWD, path, NULL, &fd, &why);
        /* one byte past the limit is enough to know it is too large */
        if (r >= 0) {
                r = read_fd_limited(fd, CONFIG_MAX_BYTES + 1, true, &buf, &len);
                close(fd);
        }
        if (r < 0) {
                if (ret_error)
                        *ret_error = r == -EBADFD && why ? strdup_printf("%s: cannot read: %s", path, why)
                                                         : strdup_printf("%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        return config_parse(path, buf, len, ret, ret_error);
}

config *config_free(config *c) {
        if (!c)
                return NULL;
        free(c->path);
        for (size_t s = 0; s < ELEMENTSOF(sections); s++)
                if (sections[s].done)
                        sections[s].done(c);
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
