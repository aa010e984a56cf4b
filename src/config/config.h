/* SPDX-License-Identifier: MIT */
/* rollguard.yaml -> plain structs. Knows nothing about HTTP or time; every
 * error names its place as FILE:LINE:COL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change_order.h"
#include "notify_channel.h"
#include "rules.h"

typedef enum edas_kind {
        EDAS_KIND_ECS, /* RollbackChangeOrder */
        EDAS_KIND_K8S, /* change_order_abort_and_rollback */
} edas_kind;

typedef struct app_config {
        char *name;     /* unique; the `app` label alerts are routed by */
        platform platform;
        char *region;   /* e.g. cn-hangzhou */
        char *app_id;
        int dry_run;    /* -1 inherit defaults.dry_run, 0, 1 */
        edas_kind edas_kind;
        rule *rules;    /* the app's rules, or the built-ins when it had none */
        size_t n_rules;
        bool builtin_rules;
        unsigned line;  /* 1-based line of the app in the file, for messages */
} app_config;

/* One `notify:` entry (config_notify.c). ch holds what the file says: name,
 * type, events, apps and an inline url (NULL when url_file is used); its
 * secret stays NULL here. The files are read when the channel is started
 * (tell.h), so `rollguard status` never touches a secret. */
typedef struct notify_config {
        notify_channel ch;
        char *url_file;     /* url_file, as written */
        char *secret_file;  /* secret_file, as written; NULL = unsigned */
        unsigned line, col; /* of the entry, for messages */
        unsigned *app_pos;  /* line, col of each apps entry: checked once apps is read */
} notify_config;

/* ha: several hosts, one actor, coordinated by etcd (config_ha.c). Without
 * the section `etcd` is NULL and nothing changes. */
typedef struct ha_config {
        char **etcd;             /* endpoint URLs, NULL-terminated */
        size_t n_etcd;
        char *prefix;            /* default /rollguard */
        uint64_t lease_ttl_usec; /* whole seconds, >= 2s; default 10s */
        char *node;              /* default: the host name */
        char *ca_file, *cert_file, *key_file; /* tls: */
        char *user;
        char *password_file;     /* default $CREDENTIALS_DIRECTORY/etcd-password */
} ha_config;

typedef struct config {
        char *path;
        uint64_t poll_interval_usec;        /* default 30s */
        uint64_t active_poll_interval_usec; /* default 5s */
        uint64_t cooldown_usec;             /* default 15m */
        uint64_t timeout_usec;              /* default 10s */
        unsigned max_actions_per_hour;      /* default 5 */
        bool dry_run;                       /* default false */
        unsigned rate_limit;                /* calls ... */
        uint64_t rate_window_usec;          /* ... per this window; default 30/min */
        uint64_t unobserved_after_usec;     /* a release in flight unseen this long: warn; default 2m */

        char *credentials_file;    /* credentials.file */
        char *ecs_ram_role;        /* credentials.ecs_ram_role (NAME or "auto") */
        char *metadata_endpoint;   /* credentials.metadata_endpoint */

        char *endpoint_sae;        /* endpoints.sae, NULL = https://sae.<region>.aliyuncs.com */
        char *endpoint_edas;       /* endpoints.edas */

        char *alerts_listen;       /* alerts.listen "127.0.0.1:9095", NULL = no listener */
        char *alerts_token_file;   /* alerts.token_file */

        char *state_directory;     /* default /var/lib/rollguard */

        char *prom_url;            /* prometheus.url; NULL = no prometheus section */
        char *prom_token_file;     /* prometheus.token_file */
        int prom_auth;             /* prometheus.auth, a prom_auth (prom.h); default none/bearer */
        uint64_t prom_timeout_usec; /* prometheus.timeout, default 5s */

        ha_config ha;              /* ha.etcd NULL: a single host */

        app_config *apps;
        size_t n_apps;

        notify_config *notify;     /* notify: the channels, in file order */
        size_t n_notify;
} config;

/* Parse and validate. On failure returns a negative errno-style code and sets
 * *ret_error to a malloc'ed "FILE:LINE:COL: message" (a message naming the
 * file alone when it cannot be read). */
int config_load(const char *path, config **ret, char **ret_error);
/* The same from memory; `name` stands in for the file name in messages. */
int config_parse(const char *name, const char *text, size_t len, config **ret, char **ret_error);

config *config_free(config *c);
static inline void config_freep(config **c) {
        config_free(*c);
}
#define _cleanup_config_ __attribute__((cleanup(config_freep)))

/* Effective dry-run of an app: a command-line --dry-run wins over both. */
bool app_config_dry_run(const config *c, const app_config *a, bool force_dry_run);

/* The base URL requests for this app go to: the override or the default
 * https://<sae|edas>.<region>.aliyuncs.com. malloc'ed, NULL on OOM. */
char *config_endpoint_url(const config *c, const app_config *a);

/* The token file metric queries send (config_prom.c): prometheus.token_file
 * (a bare name is looked up in credentials_dir, systemd's
 * $CREDENTIALS_DIRECTORY), else credentials_dir/prom-token when exists()
 * says it is there; NULL for none (or OOM). malloc'ed. */
char *config_prom_token_path(const config *c, const char *credentials_dir, bool (*exists)(const char *path));

const app_config *config_find_app(const config *c, const char *name);

/* Same ha: settings (a reload cannot switch etcd under a running node). */
bool config_ha_equal(const ha_config *a, const ha_config *b);
