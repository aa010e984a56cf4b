/* SPDX-License-Identifier: MIT */
/* Valid configurations and what they parse to; the invalid ones and their
 * exact messages are test_config_errors.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_test.h"
#include "util.h"

static config *parse_ok(const char *yaml) {
        config *c = NULL;
        char *err = NULL;
        int r = config_parse("t.yaml", yaml, strlen(yaml), &c, &err);
        if (r < 0)
                fail_msg("unexpected error %d: %s\n--- input:\n%s", r, strna(err), yaml);
        assert_null(err);
        assert_non_null(c);
        return c;
}

static void test_minimal(void **state) {
        _cleanup_config_ config *c = parse_ok(APP);

        assert_string_equal(c->path, "t.yaml");
        assert_int_equal(c->poll_interval_usec, 30 * USEC_PER_SEC);
        assert_int_equal(c->active_poll_interval_usec, 5 * USEC_PER_SEC);
        assert_int_equal(c->cooldown_usec, 15 * USEC_PER_MIN);
        assert_int_equal(c->timeout_usec, 10 * USEC_PER_SEC);
        assert_int_equal(c->max_actions_per_hour, 5);
        assert_false(c->dry_run);
        assert_int_equal(c->rate_limit, 30);
        assert_int_equal(c->unobserved_after_usec, 2 * USEC_PER_MIN);
        assert_int_equal(c->rate_window_usec, USEC_PER_MIN);
        assert_null(c->credentials_file);
        assert_null(c->ecs_ram_role);
        assert_null(c->metadata_endpoint);
        assert_null(c->endpoint_sae);
        assert_null(c->endpoint_edas);
        assert_null(c->alerts_listen);
        assert_null(c->alerts_token_file);
        assert_string_equal(c->state_directory, "/var/lib/rollguard");

        assert_int_equal(c->n_apps, 1);
        const app_config *a = &c->apps[0];
        assert_string_equal(a->name, "shop-api");
        assert_int_equal(a->platform, PLATFORM_SAE);
        assert_string_equal(a->region, "cn-hangzhou");
        assert_string_equal(a->app_id, "abc");
        assert_int_equal(a->dry_run, -1);
        assert_int_equal(a->edas_kind, EDAS_KIND_ECS);
        assert_int_equal(a->line, 2);

        /* no `rules`: the three built-ins */
        assert_true(a->builtin_rules);
        assert_int_equal(a->n_rules, 3);
        assert_string_equal(a->rules[0].name, "batch-error");
        assert_string_equal(a->rules[1].name, "stalled");
        assert_string_equal(a->rules[2].name, "failed-batch");
        assert_int_equal(a->rules[0].status_mask, 1u << CO_EXECUTING);
        assert_int_equal(a->rules[0].sub_status, SUB_ERROR);
        assert_int_equal(a->rules[0].for_usec, 60 * USEC_PER_SEC);
        assert_int_equal(a->rules[1].no_progress_usec, 15 * USEC_PER_MIN);
        assert_true(a->rules[2].pipeline_failed);
}

static const char full_yaml[] =
        "defaults:\n"
        "  poll_interval: 1m\n"
        "  active_poll_interval: 10s\n"
        "  cooldown: 1h30m\n"
        "  max_actions_per_hour: 0\n"
        "  dry_run: yes\n"
        "  rate_limit: 30/s\n"
        "  timeout: 5m\n"
        "credentials:\n"
        "  file: /etc/rollguard/credentials\n"
        "  ecs_ram_role: auto\n"
        "  metadata_endpoint: http://127.0.0.1:9100/\n"
        "endpoints:\n"
        "  sae: http://127.0.0.1:8080/\n"
        "  edas: https://edas.example.internal\n"
        "alerts:\n"
        "  listen: \"[::1]:9095\"\n"
        "  token_file: /etc/rollguard/alert-token\n"
        "state_directory: /srv/rollguard\n"
        "apps:\n"
        "  - name: shop-api\n"                               /* line 21 */
        "    platform: sae\n"
        "    region: cn-hangzhou\n"
        "    app_id: 7171a6ca-d1cd-4928-8642-7d5cfe69a1b2\n"
        "    dry_run: off\n"
        "    rules:\n"
        "      - name: batch-error\n"
        "        when: { status: [executing], sub_status: error }\n"
        "        for: 60s\n"
        "        action: rollback\n"
        "      - name: stalled\n"
        "        when: { status: [executing, waiting_auto], no_progress_for: 15m }\n"
        "        action: abort\n"
        "      - name: failed-batch\n"
        "        when: { pipeline_failed: true, co_type: [CoDeploy, CoRestart] }\n"
        "        action: log\n"
        "      - name: error-rate-alert\n"
        "        when:\n"
        "          status: [1, waiting_manual, \"9\"]\n"
        "          pipeline_failed: false\n"
        "          alert: { alertname: HighErrorRate, severity: critical }\n"
        "        action: rollback\n"
        "  - name: billing.worker_2\n"                       /* line 43 */
        "    platform: edas\n"
        "    region: cn-shanghai\n"
        "    app_id: '5a166fbd'\n"
        "    edas_kind: k8s\n"
        "    rules:\n"
        "      - name: sub-normal\n"
        "        when: { sub_status: 0, co_type: CoDeploy }\n"
        "        action: log\n";

static void test_full_schema(void **state) {
        _cleanup_config_ config *c = parse_ok(full_yaml);

        assert_int_equal(c->poll_interval_usec, USEC_PER_MIN);
        assert_int_equal(c->active_poll_interval_usec, 10 * USEC_PER_SEC);
        assert_int_equal(c->cooldown_usec, 90 * USEC_PER_MIN);
        assert_int_equal(c->max_actions_per_hour, 0);
        assert_true(c->dry_run);
        assert_int_equal(c->rate_limit, 30);
        assert_int_equal(c->rate_window_usec, USEC_PER_SEC);
        assert_int_equal(c->timeout_usec, 5 * USEC_PER_MIN);
        assert_string_equal(c->credentials_file, "/etc/rollguard/credentials");
        assert_string_equal(c->ecs_ram_role, "auto");
        assert_string_equal(c->metadata_endpoint, "http://127.0.0.1:9100");
        assert_string_equal(c->endpoint_sae, "http://127.0.0.1:8080");
        assert_string_equal(c->endpoint_edas, "https://edas.example.internal");
        assert_string_equal(c->alerts_listen, "[::1]:9095");
        assert_string_equal(c->alerts_token_file, "/etc/rollguard/alert-token");
        assert_string_equal(c->state_directory, "/srv/rollguard");

        assert_int_equal(c->n_apps, 2);
        const app_config *a = &c->apps[0];
        assert_int_equal(a->line, 21);
        assert_int_equal(a->dry_run, 0);
        assert_false(a->builtin_rules);
        assert_int_equal(a->n_rules, 4);

        const rule *r = &a->rules[0];
        assert_string_equal(r->name, "batch-error");
        assert_int_equal(r->status_mask, 1u << CO_EXECUTING);
        assert_int_equal(r->sub_status, SUB_ERROR);
        assert_int_equal(r->for_usec, 60 * USEC_PER_SEC);
        assert_int_equal(r->action, ACTION_ROLLBACK);
        assert_null(r->co_types);
        assert_int_equal(r->no_progress_usec, 0);
        assert_false(r->pipeline_failed);
        assert_int_equal(r->n_alert, 0);

        r = &a->rules[1];
        assert_int_equal(r->status_mask, (1u << CO_EXECUTING) | (1u << CO_WAITING_AUTO));
        assert_int_equal(r->sub_status, SUB_UNKNOWN);
        assert_int_equal(r->no_progress_usec, 15 * USEC_PER_MIN);
        assert_int_equal(r->for_usec, 0);
        assert_int_equal(r->action, ACTION_ABORT);

        r = &a->rules[2];
        assert_int_equal(r->status_mask, 0);
        assert_true(r->pipeline_failed);
        assert_int_equal(r->n_co_types, 2);
        assert_string_equal(r->co_types[0], "CoDeploy");
        assert_string_equal(r->co_types[1], "CoRestart");
        assert_int_equal(r->action, ACTION_LOG);

        r = &a->rules[3];
        assert_int_equal(r->status_mask,
                         (1u << CO_EXECUTING) | (1u << CO_WAITING_MANUAL) | (1u << CO_WAITING_AUTO));
        assert_false(r->pipeline_failed); /* `false` is no condition */
        assert_int_equal(r->n_alert, 2);
        assert_string_equal(r->alert[0].name, "alertname");
        assert_string_equal(r->alert[0].value, "HighErrorRate");
        assert_string_equal(r->alert[1].name, "severity");
        assert_string_equal(r->alert[1].value, "critical");

        a = &c->apps[1];
        assert_string_equal(a->name, "billing.worker_2");
        assert_int_equal(a->platform, PLATFORM_EDAS);
        assert_string_equal(a->app_id, "5a166fbd");
        assert_int_equal(a->edas_kind, EDAS_KIND_K8S);
        assert_int_equal(a->dry_run, -1);
        assert_int_equal(a->line, 43);
        assert_int_equal(a->n_rules, 1);
        assert_int_equal(a->rules[0].sub_status, SUB_NORMAL);
        assert_int_equal(a->rules[0].n_co_types, 1);
        assert_string_equal(a->rules[0].co_types[0], "CoDeploy");

        assert_ptr_equal(config_find_app(c, "billing.worker_2"), &c->apps[1]);
        assert_ptr_equal(config_find_app(c, "shop-api"), &c->apps[0]);
        assert_null(config_find_app(c, "shop"));
        assert_null(config_find_app(c, NULL));
}

static void test_flow_style(void **state) {
        static const char yaml[] =
                "{ defaults: { poll_interval: 20s, dry_run: true },\n"
                "  alerts: { listen: 0.0.0.0:9095 },\n"
                "  apps: [ { name: a, platform: sae, region: cn-beijing, app_id: x1,\n"
                "            rules: [ { name: r1, when: { status: executing, sub_status: 1 }, action: abort } ] },\n"
                "          { name: b, platform: edas, region: cn-beijing, app_id: x2 } ] }\n";
        _cleanup_config_ config *c = parse_ok(yaml);

        assert_int_equal(c->poll_interval_usec, 20 * USEC_PER_SEC);
        assert_true(c->dry_run);
        assert_string_equal(c->alerts_listen, "0.0.0.0:9095");
        assert_int_equal(c->n_apps, 2);
        assert_int_equal(c->apps[0].n_rules, 1);
        assert_int_equal(c->apps[0].rules[0].status_mask, 1u << CO_EXECUTING);
        assert_int_equal(c->apps[0].rules[0].sub_status, SUB_ERROR);
        assert_int_equal(c->apps[0].rules[0].action, ACTION_ABORT);
        assert_false(c->apps[0].builtin_rules);
        assert_true(c->apps[1].builtin_rules);
        assert_int_equal(c->apps[1].n_rules, 3);
        assert_int_equal(c->apps[1].edas_kind, EDAS_KIND_ECS);
        assert_int_equal(c->apps[1].line, 5);
}

/* `rules:` with nothing after it means "not given", as does a null section. */
static void test_null_sections(void **state) {
        _cleanup_config_ config *c = parse_ok("defaults:\ncredentials: ~\nendpoints: null\nalerts:\n" APP
                                              "    rules:\n");
        assert_int_equal(c->poll_interval_usec, 30 * USEC_PER_SEC);
        assert_null(c->alerts_listen);
        assert_true(c->apps[0].builtin_rules);
        assert_int_equal(c->apps[0].n_rules, 3);
}

static void test_durations(void **state) {
        static const struct {
                const char *yaml;
                size_t offset; /* of the uint64_t in struct config */
                uint64_t usec;
        } cases[] = {
                { "defaults: { poll_interval: 90s }\n", offsetof(config, poll_interval_usec), 90 * USEC_PER_SEC },
                { "defaults: { poll_interval: 1h30m }\n", offsetof(config, poll_interval_usec), 90 * USEC_PER_MIN },
                { "defaults: { poll_interval: 24h }\n", offsetof(config, poll_interval_usec), 24 * USEC_PER_HOUR },
                { "defaults: { poll_interval: 1s }\n", offsetof(config, poll_interval_usec), USEC_PER_SEC },
                { "defaults: { active_poll_interval: 1500ms }\n", offsetof(config, active_poll_interval_usec),
                  1500 * USEC_PER_MSEC },
                { "defaults: { cooldown: 0 }\n", offsetof(config, cooldown_usec), 0 },
                { "defaults: { cooldown: 2d }\n", offsetof(config, cooldown_usec), 48 * USEC_PER_HOUR },
                { "defaults: { cooldown: '5m' }\n", offsetof(config, cooldown_usec), 5 * USEC_PER_MIN },
                { "defaults: { timeout: 1s }\n", offsetof(config, timeout_usec), USEC_PER_SEC },
                { "defaults: { timeout: 4m60s }\n", offsetof(config, timeout_usec), 5 * USEC_PER_MIN },
                /* only poll_interval, below the default active interval: active follows it down */
                { "defaults: { poll_interval: 2s }\n", offsetof(config, active_poll_interval_usec),
                  2 * USEC_PER_SEC },
                { "defaults: { poll_interval: 5s, active_poll_interval: 5s }\n",
                  offsetof(config, active_poll_interval_usec), 5 * USEC_PER_SEC },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *yaml = strdup_printf("%s%s", cases[i].yaml, APP);
                _cleanup_config_ config *c = parse_ok(yaml);
                uint64_t got;
                memcpy(&got, (const char *)c + cases[i].offset, sizeof got);
                if (got != cases[i].usec)
                        fail_msg("row %zu (%s): got %" PRIu64 " usec, want %" PRIu64, i, cases[i].yaml, got,
                                 cases[i].usec);
        }

        /* rule durations */
        _cleanup_config_ config *c =
                parse_ok(APP "    rules:\n"
                             "      - { name: a, when: { no_progress_for: 1h30m }, for: 90s, action: log }\n"
                             "      - { name: b, when: { no_progress_for: 30d }, for: 0, action: log }\n");
        assert_int_equal(c->apps[0].rules[0].no_progress_usec, 90 * USEC_PER_MIN);
        assert_int_equal(c->apps[0].rules[0].for_usec, 90 * USEC_PER_SEC);
        assert_int_equal(c->apps[0].rules[1].no_progress_usec, 30 * 24 * USEC_PER_HOUR);
        assert_int_equal(c->apps[0].rules[1].for_usec, 0);
}

static void test_rate_limit_forms(void **state) {
        static const struct {
                const char *value;
                unsigned n;
                uint64_t window;
        } cases[] = {
                { "60/min", 60, USEC_PER_MIN },     { "60/m", 60, USEC_PER_MIN },
                { "10/s", 10, USEC_PER_SEC },       { "10/sec", 10, USEC_PER_SEC },
                { "1000/h", 1000, USEC_PER_HOUR },  { "1000/hour", 1000, USEC_PER_HOUR },
                { "100/2m", 100, 2 * USEC_PER_MIN }, { "5/90s", 5, 90 * USEC_PER_SEC },
                { "1/1s", 1, USEC_PER_SEC },        { "100000/24h", 100000, 24 * USEC_PER_HOUR },
                { "\"45/minute\"", 45, USEC_PER_MIN },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *yaml = strdup_printf("defaults:\n  rate_limit: %s\n" APP, cases[i].value);
                _cleanup_config_ config *c = parse_ok(yaml);
                if (c->rate_limit != cases[i].n || c->rate_window_usec != cases[i].window)
                        fail_msg("row %zu (%s): got %u per %" PRIu64 " usec", i, cases[i].value, c->rate_limit,
                                 c->rate_window_usec);
        }
}

static void test_booleans(void **state) {
        static const struct {
                const char *value;
                bool expected;
        } cases[] = {
                { "true", true },  { "True", true },   { "yes", true }, { "on", true },  { "YES", true },
                { "false", false }, { "FALSE", false }, { "no", false }, { "off", false }, { "'no'", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *yaml =
                        strdup_printf("defaults:\n  dry_run: %s\n" APP "    dry_run: %s\n", cases[i].value,
                                      cases[i].value);
                _cleanup_config_ config *c = parse_ok(yaml);
                if (c->dry_run != cases[i].expected || c->apps[0].dry_run != (int)cases[i].expected)
                        fail_msg("row %zu (%s)", i, cases[i].value);
        }
}

static void test_per_app_dry_run(void **state) {
        static const struct {
                const char *global; /* defaults.dry_run, NULL = not set */
                const char *app;    /* apps[0].dry_run, NULL = not set */
                bool force;
                bool expected;
        } cases[] = {
                { NULL, NULL, false, false },    { NULL, NULL, true, true },
                { "true", NULL, false, true },   { "false", NULL, false, false },
                { "true", "false", false, false }, { "false", "true", false, true },
                { "true", "false", true, true }, { NULL, "true", false, true },
                { "false", "false", true, true },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *g = cases[i].global ? strdup_printf("defaults: { dry_run: %s }\n",
                                                                         cases[i].global)
                                                         : strdup("");
                _cleanup_free_ char *a = cases[i].app ? strdup_printf("    dry_run: %s\n", cases[i].app)
                                                      : strdup("");
                _cleanup_free_ char *yaml = strdup_printf("%s" APP "%s", g, a);
                _cleanup_config_ config *c = parse_ok(yaml);
                if (app_config_dry_run(c, &c->apps[0], cases[i].force) != cases[i].expected)
                        fail_msg("row %zu: global %s app %s force %d: want %d", i, strna(cases[i].global),
                                 strna(cases[i].app), cases[i].force, cases[i].expected);
        }
}

static void test_edas_kind_and_endpoints(void **state) {
        static const char yaml[] = "endpoints: { edas: 'http://127.0.0.1:8081//' }\n"
                                   "apps:\n"
                                   "  - { name: s, platform: sae, region: cn-hangzhou, app_id: a1 }\n"
                                   "  - { name: e, platform: edas, region: cn-shenzhen, app_id: a2 }\n"
                                   "  - { name: k, platform: edas, region: cn-shenzhen, app_id: a3, edas_kind: k8s }\n"
                                   "  - { name: c, platform: edas, region: cn-shenzhen, app_id: a4, edas_kind: ecs }\n";
        _cleanup_config_ config *c = parse_ok(yaml);
        assert_int_equal(c->apps[1].edas_kind, EDAS_KIND_ECS);
        assert_int_equal(c->apps[2].edas_kind, EDAS_KIND_K8S);
        assert_int_equal(c->apps[3].edas_kind, EDAS_KIND_ECS);

        _cleanup_free_ char *u0 = config_endpoint_url(c, &c->apps[0]);
        _cleanup_free_ char *u1 = config_endpoint_url(c, &c->apps[1]);
        assert_string_equal(u0, "https://sae.cn-hangzhou.aliyuncs.com");
        assert_string_equal(u1, "http://127.0.0.1:8081");

        /* a struct filled by hand still gets no trailing slash */
        free(c->endpoint_sae);
        c->endpoint_sae = strdup("http://sim:1/");
        _cleanup_free_ char *u2 = config_endpoint_url(c, &c->apps[0]);
        assert_string_equal(u2, "http://sim:1");
        free(c->endpoint_edas);
        c->endpoint_edas = NULL;
        _cleanup_free_ char *u3 = config_endpoint_url(c, &c->apps[2]);
        assert_string_equal(u3, "https://edas.cn-shenzhen.aliyuncs.com");
}

static void test_listen_forms(void **state) {
        static const char *const ok[] = {
                "127.0.0.1:9095", "localhost:1", "0.0.0.0:65535", "\"[::1]:9095\"", "'[fe80::1%2]:80'",
                "'[::]:9095'",    "my-host.example.com:8443", "'[fe80::1%eth0]:9095'",
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_free_ char *yaml = strdup_printf("alerts: { listen: %s }\n" APP, ok[i]);
                _cleanup_config_ config *c = parse_ok(yaml);
                assert_non_null(c->alerts_listen);
        }
}

static void test_prometheus_and_query_rules(void **state) {
        static const char yaml[] =
                "prometheus:\n"
                "  url: https://cn-hangzhou.arms.aliyuncs.com:9443/api/v1/prometheus/abc/123/cn-hangzhou/\n"
                "  token_file: prom-token\n"
                "  auth: token\n"
                "  timeout: 3s\n"
                APP
                "    rules:\n"
                "      - name: error-rate\n"
                "        when:\n"
                "          status: [executing]\n"
                "          query: >\n"
                "            sum(rate(http_requests_total{app=\"{{app}}\",code=~\"5..\"}[1m]))\n"
                "            / sum(rate(http_requests_total{app=\"{{app}}\"}[1m]))\n"
                "          above: 0.05\n"
                "        for: 2m\n"
                "        action: rollback\n"
                "      - name: latency-low\n"
                "        when: { query: 'histogram_quantile(0.5, x{app_id=\"{{app_id}}\"}) @ {{release_started}}', below: -1.5e1 }\n"
                "        action: log\n";
        config *c = NULL;
        char *err = NULL;
        int r = config_parse("t.yaml", yaml, sizeof yaml - 1, &c, &err);
        if (r < 0)
                fail_msg("%s", err);
        assert_string_equal(c->prom_url, "https://cn-hangzhou.arms.aliyuncs.com:9443/api/v1/prometheus/abc/123/cn-hangzhou");
        assert_string_equal(c->prom_token_file, "prom-token");
        assert_int_equal(c->prom_auth, 2);
        assert_true(c->prom_timeout_usec == 3 * USEC_PER_SEC);
        const rule *e = &c->apps[0].rules[0];
        assert_non_null(strstr(e->query, "code=~\"5..\"}[1m])) / sum("));
        assert_int_equal(e->cmp, RULE_ABOVE);
        assert_true(e->threshold == 0.05);
        assert_int_equal(e->query_line, 15);
        assert_true(e->for_usec == 2 * USEC_PER_MIN);
        const rule *l = &c->apps[0].rules[1];
        assert_int_equal(l->cmp, RULE_BELOW);
        assert_true(l->threshold == -15);

        /* a bare token_file name is a systemd credential */
        char *p = config_prom_token_path(c, "/run/credentials/rollguard.service", NULL);
        assert_string_equal(p, "/run/credentials/rollguard.service/prom-token");
        free(p);
        config_free(c);

        /* without prometheus: no client, the default timeout */
        r = config_parse("t.yaml", APP, strlen(APP), &c, &err);
        assert_int_equal(r, 0);
        assert_null(c->prom_url);
        assert_true(c->prom_timeout_usec == 5 * USEC_PER_SEC);
        p = config_prom_token_path(c, "/run/creds", NULL);
        assert_string_equal(p, "/run/creds/prom-token");
        free(p);
        assert_null(config_prom_token_path(c, NULL, NULL));
        config_free(c);
}

static void test_load_missing_file(void **state) {
        config *c = (config *)1;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_load("/nonexistent/rollguard.yaml", &c, &err), -ENOENT);
        assert_null(c);
        assert_string_equal(err, "/nonexistent/rollguard.yaml: cannot read: No such file or directory");

        _cleanup_free_ char *err2 = NULL;
        assert_int_equal(config_load("/", &c, &err2), -EISDIR);
        assert_string_equal(err2, "/: cannot read: Is a directory");
}

static void test_load_file(void **state) {
        char path[] = "/tmp/test_config_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        static const char yaml[] = "defaults: { poll_interval: 30 }\n" APP;
        assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
        close(fd);

        config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_load(path, &c, &err), -EINVAL);
        /* messages name the file as given */
        _cleanup_free_ char *want =
                strdup_printf("%s:1:28: defaults.poll_interval: '30' has no unit (write 30s, 5m, 1h)", path);
        assert_string_equal(err, want);
        unlink(path);
}

static void test_example_config(void **state) {
        const char *path = TEST_SRCDIR "/../conf/rollguard.yaml";
        _cleanup_config_ config *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r = config_load(path, &c, &err);
        if (r < 0)
                fail_msg("%s", strna(err));
        assert_int_equal(c->n_apps, 2);

        const app_config *shop = config_find_app(c, "shop-api");
        assert_non_null(shop);
        assert_int_equal(shop->platform, PLATFORM_SAE);
        assert_false(shop->builtin_rules);
        assert_int_equal(shop->n_rules, 5);
        assert_int_equal(shop->rules[3].n_alert, 2);

        const app_config *billing = config_find_app(c, "billing-worker");
        assert_non_null(billing);
        assert_int_equal(billing->platform, PLATFORM_EDAS);
        assert_int_equal(billing->edas_kind, EDAS_KIND_K8S);
        assert_true(billing->builtin_rules);
        assert_true(app_config_dry_run(c, billing, false));
        assert_false(app_config_dry_run(c, shop, false));

        /* works under the shipped unit as it is: secrets come as systemd
         * credentials, and the listener (which needs a token) is opt-in */
        assert_null(c->alerts_listen);
        assert_null(c->credentials_file);
        /* the documented defaults are the real defaults */
        assert_int_equal(c->poll_interval_usec, 30 * USEC_PER_SEC);
        assert_int_equal(c->active_poll_interval_usec, 5 * USEC_PER_SEC);
        assert_int_equal(c->cooldown_usec, 15 * USEC_PER_MIN);
        assert_int_equal(c->max_actions_per_hour, 5);
        assert_int_equal(c->rate_limit, 30);
        assert_int_equal(c->unobserved_after_usec, 2 * USEC_PER_MIN);
        assert_int_equal(c->rate_window_usec, USEC_PER_MIN);
        assert_int_equal(c->timeout_usec, 10 * USEC_PER_SEC);
        assert_false(c->dry_run);
}

/* Many apps: duplicate detection must not be quadratic, and must still name
 * the earliest second occurrence. */
static void test_many_apps(void **state) {
        const size_t n = 5000;
        size_t cap = n * 96 + 64, off = 0;
        _cleanup_free_ char *yaml = malloc(cap);
        assert_non_null(yaml);
        off += (size_t)snprintf(yaml + off, cap - off, "apps:\n");
        for (size_t i = 0; i < n; i++)
                off += (size_t)snprintf(yaml + off, cap - off,
                                        "  - { name: app-%zu, platform: sae, region: cn-hangzhou, app_id: id-%zu }\n",
                                        i, i);
        {
                _cleanup_config_ config *c = parse_ok(yaml);
                assert_int_equal(c->n_apps, n);
                assert_non_null(config_find_app(c, "app-4999"));
        }
        /* add two duplicates; the one that comes first in the file is reported */
        off += (size_t)snprintf(yaml + off, cap - off,
                                "  - { name: app-7, platform: sae, region: cn-hangzhou, app_id: other-1 }\n"
                                "  - { name: app-3, platform: sae, region: cn-hangzhou, app_id: other-2 }\n");
        config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_parse("t.yaml", yaml, off, &c, &err), -EINVAL);
        assert_string_equal(err, "t.yaml:5002:13: apps[5000].name: duplicate app name 'app-7' (first at line 9)");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_full_schema),
                cmocka_unit_test(test_flow_style),
                cmocka_unit_test(test_null_sections),
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_rate_limit_forms),
                cmocka_unit_test(test_booleans),
                cmocka_unit_test(test_per_app_dry_run),
                cmocka_unit_test(test_edas_kind_and_endpoints),
                cmocka_unit_test(test_listen_forms),
                cmocka_unit_test(test_prometheus_and_query_rules),
                cmocka_unit_test(test_load_missing_file),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_example_config),
                cmocka_unit_test(test_many_apps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
