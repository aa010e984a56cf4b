/* SPDX-License-Identifier: MIT */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "budget.h"
#include "check_notify.h"
#include "check_query.h"
#include "credentials.h"
#include "util.h"

static const char *env_lookup(const char *name) {
        return getenv(name);
}

static void print_rule(const rule *r) {
        char b[32];
        printf("      - %-16s %-8s", r->name, rule_action_name(r->action));
        const char *sep = " when ";
        if (r->status_mask) {
                printf("%sstatus in [", sep);
                bool first = true;
                for (int s = 0; s < _CO_STATUS_MAX; s++)
                        if (r->status_mask & (1u << s)) {
                                printf("%s%s", first ? "" : ", ", strna(co_status_name(s)));
                                first = false;
                        }
                printf("]");
                sep = ", ";
        }
        if (r->sub_status != SUB_UNKNOWN) {
                printf("%ssub_status %s", sep, r->sub_status == SUB_ERROR ? "error" : "normal");
                sep = ", ";
        }
        if (r->no_progress_usec) {
                printf("%sno progress for %s", sep, format_duration(r->no_progress_usec, b, sizeof b));
                sep = ", ";
        }
        if (r->pipeline_failed) {
                printf("%sa batch failed", sep);
                sep = ", ";
        }
        for (size_t i = 0; i < r->n_alert; i++) {
                printf("%s%s%s=%s", sep, i == 0 ? "alert " : "", r->alert[i].name, r->alert[i].value);
                sep = ", ";
        }
        if (r->n_co_types) {
                printf("%sco_type in [", sep);
                for (size_t i = 0; i < r->n_co_types; i++)
                        printf("%s%s", i ? ", " : "", r->co_types[i]);
                printf("]");
        }
        check_print_query_rule(stdout, r);
        if (r->for_usec)
                printf(", for %s", format_duration(r->for_usec, b, sizeof b));
        printf("\n");
}

/* Where etcd is and who this node is; never the password. */
static void print_ha(const ha_config *h) {
        char b[32];
        if (!h->etcd) {
                printf("  ha: off (a single host)\n");
                return;
        }
        printf("  ha: etcd ");
        for (size_t i = 0; i < h->n_etcd; i++)
                printf("%s%s", i ? ", " : "", h->etcd[i]);
        printf("; prefix %s, node %s, lease %s", h->prefix, h->node, format_duration(h->lease_ttl_usec, b, sizeof b));
        if (h->ca_file || h->cert_file)
                printf(", tls%s%s%s%s", h->ca_file ? " ca " : "", h->ca_file ? h->ca_file : "",
                       h->cert_file ? " cert " : "", h->cert_file ? h->cert_file : "");
        if (h->user)
                printf(", user %s (password from %s)", h->user,
                       h->password_file ? h->password_file : "$CREDENTIALS_DIRECTORY/etcd-password");
        printf("\n");
}

int cmd_check(const cli *c) {
        _cleanup_config_ config *cfg = NULL;
        if (cli_load_config(c->config_path, &cfg) < 0)
                return EXIT_CONFIG;
        char b1[32], b2[32], b3[32], b4[32], b5[32];
        printf("%s: OK\n", c->config_path);
        printf("  defaults: poll %s, in flight %s, cooldown %s, timeout %s, max %u actions/hour, rate limit %u per %s%s\n",
               format_duration(cfg->poll_interval_usec, b1, sizeof b1),
               format_duration(cfg->active_poll_interval_usec, b2, sizeof b2),
               format_duration(cfg->cooldown_usec, b3, sizeof b3), format_duration(cfg->timeout_usec, b4, sizeof b4),
               cfg->max_actions_per_hour, cfg->rate_limit, format_duration(cfg->rate_window_usec, b5, sizeof b5),
               cfg->dry_run || c->dry_run ? ", DRY RUN" : "");
        /* What the budget can do, always: a shortfall is a warning, not an error. */
        char budget_line[256];
        if (budget_check_line(budget_line, sizeof budget_line, cfg->rate_limit, cfg->rate_window_usec, cfg->n_apps,
                              cfg->poll_interval_usec, cfg->active_poll_interval_usec) >= 0)
                printf("  %s\n", budget_line);
        const char *sd = getenv("STATE_DIRECTORY");
        printf("  state: %s\n", sd && *sd ? sd : cfg->state_directory);
        if (cfg->alerts_listen)
                printf("  alerts: listening on %s (token from %s)\n", cfg->alerts_listen,
                       cfg->alerts_token_file ? cfg->alerts_token_file : "$CREDENTIALS_DIRECTORY/alert-token");
        else
                printf("  alerts: no listener (alerts.listen not set)\n");
        if (cfg->prom_url)
                printf("  prometheus: %s (timeout %s)\n", cfg->prom_url,
                       format_duration(cfg->prom_timeout_usec, b1, sizeof b1));

        print_ha(&cfg->ha);

        int exit_code = EXIT_OK;
        credentials creds = { 0 };
        _cleanup_free_ char *err = NULL, *warn = NULL;
        int r = credentials_resolve_static(cfg, env_lookup, &creds, &err, &warn);
        const char *role = credentials_ecs_role_requested(cfg, env_lookup);
        if (r >= 0)
                printf("  credentials: %s%s%s%s%s\n", cred_source_name(creds.source),
                       creds.source_detail ? " (" : "", creds.source_detail ? creds.source_detail : "",
                       creds.source_detail ? ")" : "", creds.security_token ? ", STS token" : "");
        else if (r == -ENOENT && role)
                printf("  credentials: ECS RAM role %s (fetched from the metadata service at start)\n", role);
        else {
                printf("  credentials: NONE: %s\n", err ? err : "no source had credentials");
                exit_code = EXIT_CONFIG;
        }
        if (warn)
                printf("  warning: %s\n", warn);
        credentials_done(&creds);

        printf("  apps (%zu):\n", cfg->n_apps);
        for (size_t i = 0; i < cfg->n_apps; i++) {
                const app_config *a = &cfg->apps[i];
                _cleanup_free_ char *url = config_endpoint_url(cfg, a);
                printf("    %s: %s%s %s in %s via %s%s%s\n", a->name, platform_name(a->platform),
                       a->platform == PLATFORM_EDAS ? (a->edas_kind == EDAS_KIND_K8S ? " (k8s)" : " (ecs)") : "",
                       a->app_id, a->region, strna(url),
                       app_config_dry_run(cfg, a, c->dry_run) ? ", dry-run" : "",
                       a->builtin_rules ? ", built-in rules" : "");
                for (size_t j = 0; j < a->n_rules; j++)
                        print_rule(&a->rules[j]);
        }
        if (!check_notify_print(cfg))
                exit_code = EXIT_CONFIG;
        if (c->query) {
                fflush(stdout);
                /* an inconclusive query is a finding, not a config error */
                if (check_run_queries(cfg, stdout) != 0 && exit_code == EXIT_OK)
                        exit_code = EXIT_RUNTIME;
        }
        return exit_code;
}
