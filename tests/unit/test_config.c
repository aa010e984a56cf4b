/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util.h"

/* A valid app, five lines; line 2 is its name. */
#define APP                                \
        "apps:\n"                          \
        "  - name: shop-api\n"             \
        "    platform: sae\n"              \
        "    region: cn-hangzhou\n"        \
        "    app_id: abc\n"

/* APP plus one rule whose `when` is on line 8, value at column 15. */
#define RULE(when)                         \
        APP "    rules:\n"                 \
            "      - name: r\n"            \
            "        when: " when "\n"     \
            "        action: rollback\n"

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
        assert_int_equal(c->rate_limit, 60);
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

typedef struct bad_case {
        const char *what;
        const char *yaml;
        const char *prefix; /* the exact start of the error */
} bad_case;

static const bad_case bad_cases[] = {
        /* structure */
        { "empty file", "", "t.yaml:1:1: empty configuration (expected a mapping with at least an 'apps' list)" },
        { "only comments", "# nothing here\n\n", "t.yaml:1:1: empty configuration" },
        { "top level is a list", "- a\n- b\n",
          "t.yaml:1:1: the top level must be a mapping (defaults, apps, ...), found a list" },
        { "top level is a string", "\n\nhello\n", "t.yaml:3:1: the top level must be a mapping (defaults, apps, ...), found 'hello'" },
        { "missing apps", "# c\ndefaults:\n  dry_run: true\n",
          "t.yaml:2:1: missing required key 'apps' (the list of applications to watch)" },
        { "apps empty list", "apps: []\n", "t.yaml:1:7: apps: empty list: at least one app is required" },
        { "apps null", "apps:\n", "t.yaml:1:1: apps: nothing listed: at least one app is required" },
        { "apps is a mapping", "apps:\n  name: x\n", "t.yaml:2:3: apps: expected a list of apps, found a mapping" },
        { "app is a string", "apps:\n  - shop-api\n",
          "t.yaml:2:5: apps[0]: expected an app (name, platform, region, app_id, rules), found 'shop-api'" },
        { "defaults is a list", "defaults: [1, 2]\n" APP,
          "t.yaml:1:11: defaults: expected a mapping of settings, found a list" },
        { "rules is a mapping", APP "    rules: { name: x }\n",
          "t.yaml:6:12: apps[0].rules: expected a list of rules, found a mapping" },
        { "status is a mapping", RULE("{ status: { a: b } }"),
          "t.yaml:8:25: apps[0].rules[0].when.status: expected a status name such as executing, or a list of them, found a mapping" },
        { "two documents", APP "---\n" APP,
          "t.yaml:6:1: a second YAML document: rollguard.yaml holds exactly one" },

        /* keys */
        { "unknown key, did you mean", "defaults:\n  pol_interval: 30s\n" APP,
          "t.yaml:2:3: unknown key 'pol_interval' in defaults (did you mean 'poll_interval'?)" },
        { "unknown top-level key", "bogus: 1\n" APP,
          "t.yaml:1:1: unknown key 'bogus' at the top level (expected defaults, credentials, endpoints, alerts, state_directory or apps)" },
        { "unknown top-level key, did you mean", "app:\n  - x\n", "t.yaml:1:1: unknown key 'app' at the top level (did you mean 'apps'?)" },
        { "unknown app key", APP "    dryrun: true\n",
          "t.yaml:6:5: unknown key 'dryrun' in apps[0] (did you mean 'dry_run'?)" },
        { "unknown condition", RULE("{ stauts: [executing] }"),
          "t.yaml:8:17: unknown key 'stauts' in apps[0].rules[0].when (did you mean 'status'?)" },
        { "unknown rule key", APP "    rules:\n      - name: r\n        when: { pipeline_failed: true }\n"
                              "        action: log\n        fro: 5m\n",
          "t.yaml:10:9: unknown key 'fro' in apps[0].rules[0] (did you mean 'for'?)" },
        { "duplicate key", "defaults:\n  timeout: 5s\n  timeout: 6s\n" APP,
          "t.yaml:3:3: duplicate key 'timeout' in defaults (first at line 2)" },
        { "duplicate top-level key", APP "apps:\n  - x\n", "t.yaml:6:1: duplicate key 'apps' at the top level (first at line 1)" },

        /* durations */
        { "duration without unit", "defaults:\n  poll_interval: 30\n" APP,
          "t.yaml:2:18: defaults.poll_interval: '30' has no unit (write 30s, 5m, 1h)" },
        { "duration with words", "defaults:\n  cooldown: 5 minutes\n" APP,
          "t.yaml:2:13: defaults.cooldown: '5 minutes' is not a duration (write e.g. 90s, 5m, 1h30m)" },
        { "duration missing value", "defaults:\n  poll_interval:\n" APP,
          "t.yaml:2:3: defaults.poll_interval: missing value (expected a duration such as 30s, 5m or 1h30m)" },
        { "duration is a list", "defaults:\n  poll_interval: [30s]\n" APP,
          "t.yaml:2:18: defaults.poll_interval: expected a duration such as 30s, 5m or 1h30m, found a list" },
        { "duration overflow", "defaults:\n  cooldown: 99999999999999999999s\n" APP,
          "t.yaml:2:13: defaults.cooldown: '99999999999999999999s' is too large (at most 30d)" },
        { "timeout too long", "defaults:\n  timeout: 10m\n" APP,
          "t.yaml:2:12: defaults.timeout: '10m' is too long (at most 5m)" },
        { "interval too short", "defaults:\n  poll_interval: 500ms\n" APP,
          "t.yaml:2:18: defaults.poll_interval: '500ms' is too short (at least 1s)" },
        { "active longer than idle", "defaults:\n  poll_interval: 10s\n  active_poll_interval: 1m\n" APP,
          "t.yaml:3:25: defaults.active_poll_interval: 1m is longer than poll_interval 10s" },
        { "active longer than idle, other order", "defaults:\n  active_poll_interval: 1m\n  poll_interval: 10s\n" APP,
          "t.yaml:2:25: defaults.active_poll_interval: 1m is longer than poll_interval 10s" },
        { "no_progress_for zero", RULE("{ no_progress_for: 0 }"),
          "t.yaml:8:34: apps[0].rules[0].when.no_progress_for: '0' is too short (at least 1s)" },
        { "rule for without unit", APP "    rules:\n      - name: r\n        when: { pipeline_failed: true }\n"
                                   "        for: 60\n        action: log\n",
          "t.yaml:9:14: apps[0].rules[0].for: '60' has no unit (write 30s, 5m, 1h)" },

        /* numbers, rates, booleans */
        { "max actions too large", "defaults:\n  max_actions_per_hour: 1001\n" APP,
          "t.yaml:2:25: defaults.max_actions_per_hour: '1001' is not a whole number from 0 to 1000" },
        { "max actions negative", "defaults:\n  max_actions_per_hour: -1\n" APP,
          "t.yaml:2:25: defaults.max_actions_per_hour: '-1' is not a whole number from 0 to 1000" },
        { "rate limit bare number", "defaults:\n  rate_limit: 60\n" APP,
          "t.yaml:2:15: defaults.rate_limit: '60' is not a rate (write N/min, N/s, N/h or N/<duration>, e.g. 60/min)" },
        { "rate limit zero", "defaults:\n  rate_limit: 0/min\n" APP,
          "t.yaml:2:15: defaults.rate_limit: 0 calls is out of range (1 to 100000)" },
        { "rate limit too high", "defaults:\n  rate_limit: 100001/s\n" APP,
          "t.yaml:2:15: defaults.rate_limit: 100001 calls is out of range (1 to 100000)" },
        { "rate limit bad window", "defaults:\n  rate_limit: 60/fortnight\n" APP,
          "t.yaml:2:15: defaults.rate_limit: '60/fortnight' has no valid window after '/'" },
        { "rate limit zero window", "defaults:\n  rate_limit: 60/0s\n" APP,
          "t.yaml:2:15: defaults.rate_limit: '60/0s' has no valid window after '/'" },
        { "rate limit no number", "defaults:\n  rate_limit: x/min\n" APP,
          "t.yaml:2:15: defaults.rate_limit: 'x/min' does not start with a number of calls (e.g. 60/min)" },
        { "not a boolean", "defaults:\n  dry_run: maybe\n" APP,
          "t.yaml:2:12: defaults.dry_run: 'maybe' is not a boolean (expected true or false)" },
        { "app dry_run not a boolean", APP "    dry_run: 1\n",
          "t.yaml:6:14: apps[0].dry_run: '1' is not a boolean (expected true or false)" },

        /* conditions */
        { "status typo", RULE("{ status: [executing, exectuing] }"),
          "t.yaml:8:37: apps[0].rules[0].when.status: unknown status 'exectuing' (did you mean 'executing'?)" },
        { "unknown status", RULE("{ status: bogus }"),
          "t.yaml:8:25: apps[0].rules[0].when.status: unknown status 'bogus' (expected preparing, executing," },
        { "status number without a name", RULE("{ status: [4] }"),
          "t.yaml:8:26: apps[0].rules[0].when.status: unknown status '4' (expected preparing" },
        { "status empty list", RULE("{ status: [] }"),
          "t.yaml:8:25: apps[0].rules[0].when.status: empty list (expected status names such as executing)" },
        { "bad sub_status", RULE("{ sub_status: broken }"),
          "t.yaml:8:29: apps[0].rules[0].when.sub_status: 'broken' is not a sub_status (expected normal or error)" },
        { "sub_status number 2", RULE("{ sub_status: 2 }"),
          "t.yaml:8:29: apps[0].rules[0].when.sub_status: '2' is not a sub_status (expected normal or error)" },
        { "pipeline_failed not a boolean", RULE("{ pipeline_failed: sometimes }"),
          "t.yaml:8:34: apps[0].rules[0].when.pipeline_failed: 'sometimes' is not a boolean (expected true or false)" },
        { "co_type empty list", RULE("{ co_type: [] }"),
          "t.yaml:8:26: apps[0].rules[0].when.co_type: empty list (expected CoTypeCodes such as CoDeploy)" },
        { "alert empty value", RULE("{ alert: { alertname: '' } }"),
          "t.yaml:8:37: apps[0].rules[0].when.alert.alertname: must not be empty (expected the label value to match)" },
        { "alert not a mapping", RULE("{ alert: HighErrorRate }"),
          "t.yaml:8:24: apps[0].rules[0].when.alert: expected label matchers such as { alertname: HighErrorRate }, found 'HighErrorRate'" },
        { "alert bad label name", RULE("{ alert: { 'bad-label': x } }"),
          "t.yaml:8:26: apps[0].rules[0].when.alert: 'bad-label' is not a label name (letters, digits and _)" },
        { "alert duplicate label", RULE("{ alert: { a: x, a: y } }"),
          "t.yaml:8:32: duplicate key 'a' in apps[0].rules[0].when.alert (first at line 8)" },

        /* rules */
        { "when with no condition", RULE("{ pipeline_failed: false }"),
          "t.yaml:8:15: apps[0].rules[0].when: no condition (give at least one of status, sub_status, co_type, no_progress_for, pipeline_failed or alert)" },
        { "when empty", APP "    rules:\n      - name: r\n        when:\n        action: log\n",
          "t.yaml:8:9: apps[0].rules[0].when: no condition" },
        { "rule without action", APP "    rules:\n      - name: r\n        when: { pipeline_failed: true }\n",
          "t.yaml:7:9: apps[0].rules[0]: missing required key 'action' (rollback, abort or log)" },
        { "rule without name", APP "    rules:\n      - when: { pipeline_failed: true }\n        action: log\n",
          "t.yaml:7:9: apps[0].rules[0]: missing required key 'name'" },
        { "rule without when", APP "    rules:\n      - name: r\n        action: log\n",
          "t.yaml:7:9: apps[0].rules[0]: missing required key 'when' (the conditions)" },
        { "action typo", APP "    rules:\n      - name: r\n        when: { pipeline_failed: true }\n"
                         "        action: rolback\n",
          "t.yaml:9:17: apps[0].rules[0].action: 'rolback' is not an action (did you mean 'rollback'?)" },
        { "unknown action", APP "    rules:\n      - name: r\n        when: { pipeline_failed: true }\n"
                            "        action: restart\n",
          "t.yaml:9:17: apps[0].rules[0].action: 'restart' is not an action (expected rollback, abort or log)" },
        { "duplicate rule name", APP "    rules:\n"
                                 "      - { name: r, when: { pipeline_failed: true }, action: log }\n"
                                 "      - { name: r, when: { pipeline_failed: true }, action: log }\n",
          "t.yaml:8:17: apps[0].rules[1].name: duplicate rule name 'r' (first at line 7)" },
        { "rule name with space", APP "    rules:\n      - { name: 'my rule', when: { pipeline_failed: true }, action: log }\n",
          "t.yaml:7:17: apps[0].rules[0].name: 'my rule' is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -)" },
        { "rules empty list", APP "    rules: []\n",
          "t.yaml:6:12: apps[0].rules: empty list (leave 'rules' out to get the built-in rules)" },

        /* apps */
        { "duplicate app name", APP "  - name: shop-api\n    platform: sae\n    region: cn-hangzhou\n    app_id: def\n",
          "t.yaml:6:11: apps[1].name: duplicate app name 'shop-api' (first at line 2)" },
        { "same application twice", APP "  - name: shop-api-2\n    platform: sae\n    region: cn-hangzhou\n    app_id: abc\n",
          "t.yaml:9:13: apps[1].app_id: 'abc' is already watched as app 'shop-api' (line 2); two entries would act twice on one release" },
        { "bad platform", "apps:\n  - name: a\n    platform: aws\n    region: cn-hangzhou\n    app_id: x\n",
          "t.yaml:3:15: apps[0].platform: 'aws' is not a platform (expected sae or edas)" },
        { "platform typo", "apps:\n  - name: a\n    platform: eda\n    region: cn-hangzhou\n    app_id: x\n",
          "t.yaml:3:15: apps[0].platform: 'eda' is not a platform (did you mean 'edas'?)" },
        { "edas_kind on an sae app", APP "    edas_kind: k8s\n",
          "t.yaml:6:5: apps[0].edas_kind: only applies to platform edas (this app is sae)" },
        { "bad edas_kind", "apps:\n  - { name: a, platform: edas, region: cn-hangzhou, app_id: x, edas_kind: vm }\n",
          "t.yaml:2:75: apps[0].edas_kind: 'vm' is not an EDAS application kind (expected ecs or k8s)" },
        { "missing platform", "apps:\n  - name: a\n    region: cn-hangzhou\n    app_id: x\n",
          "t.yaml:2:5: apps[0]: missing required key 'platform' (sae or edas)" },
        { "missing region", "apps:\n  - name: a\n    platform: sae\n    app_id: x\n",
          "t.yaml:2:5: apps[0]: missing required key 'region' (e.g. cn-hangzhou)" },
        { "missing app_id", "apps:\n  - name: a\n    platform: sae\n    region: cn-hangzhou\n",
          "t.yaml:2:5: apps[0]: missing required key 'app_id'" },
        { "missing name", "apps:\n  - platform: sae\n    region: cn-hangzhou\n    app_id: x\n",
          "t.yaml:2:5: apps[0]: missing required key 'name'" },
        { "bad app name", "apps:\n  - name: shop api\n    platform: sae\n    region: cn-hangzhou\n    app_id: x\n",
          "t.yaml:2:11: apps[0].name: 'shop api' is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -; it names the state file and journal fields)" },
        { "app name ..", "apps:\n  - name: '..'\n    platform: sae\n    region: cn-hangzhou\n    app_id: x\n",
          "t.yaml:2:11: apps[0].name: '..' is not a valid name" },
        { "app name too long", "apps:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                               "    platform: sae\n    region: cn-hangzhou\n    app_id: x\n",
          "t.yaml:2:11: apps[0].name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not a valid name" },
        { "bad region", "apps:\n  - name: a\n    platform: sae\n    region: CN_Hangzhou\n    app_id: x\n",
          "t.yaml:4:13: apps[0].region: 'CN_Hangzhou' is not a region id (lower-case letters, digits and -, e.g. cn-hangzhou)" },
        { "empty app_id", "apps:\n  - name: a\n    platform: sae\n    region: cn-hangzhou\n    app_id: ''\n",
          "t.yaml:5:13: apps[0].app_id: must not be empty (expected the application id)" },
        { "app in second place is wrong", APP "  - name: b\n    platform: sae\n    region: cn-hangzhou\n",
          "t.yaml:6:5: apps[1]: missing required key 'app_id'" },

        /* endpoints, alerts, credentials */
        { "endpoint without scheme", "endpoints:\n  sae: 127.0.0.1:8080\n" APP,
          "t.yaml:2:8: endpoints.sae: '127.0.0.1:8080' is not an http:// or https:// URL" },
        { "endpoint ftp", "endpoints:\n  edas: ftp://x\n" APP,
          "t.yaml:2:9: endpoints.edas: 'ftp://x' is not an http:// or https:// URL" },
        { "endpoint without host", "endpoints:\n  sae: http://\n" APP,
          "t.yaml:2:8: endpoints.sae: 'http://' is not a valid URL" },
        { "metadata endpoint", "credentials:\n  metadata_endpoint: 100.100.100.200\n" APP,
          "t.yaml:2:22: credentials.metadata_endpoint: '100.100.100.200' is not an http:// or https:// URL" },
        { "listen port out of range", "alerts:\n  listen: 127.0.0.1:70000\n" APP,
          "t.yaml:2:11: alerts.listen: port 70000 is out of range (1 to 65535)" },
        { "listen port zero", "alerts:\n  listen: 127.0.0.1:0\n" APP,
          "t.yaml:2:11: alerts.listen: port 0 is out of range (1 to 65535)" },
        { "listen without port", "alerts:\n  listen: localhost\n" APP,
          "t.yaml:2:11: alerts.listen: 'localhost' is not host:port (e.g. 127.0.0.1:9095)" },
        { "listen port only", "alerts:\n  listen: 9095\n" APP,
          "t.yaml:2:11: alerts.listen: '9095' is not host:port (e.g. 127.0.0.1:9095)" },
        { "listen bad port", "alerts:\n  listen: 'localhost:http'\n" APP,
          "t.yaml:2:11: alerts.listen: 'localhost:http' has no valid port (e.g. 127.0.0.1:9095)" },
        { "listen bare ipv6", "alerts:\n  listen: '::1:9095'\n" APP,
          "t.yaml:2:11: alerts.listen: '::1:9095': put an IPv6 address in brackets, e.g. [::1]:9095" },
        { "listen bad brackets", "alerts:\n  listen: '[::1]9095'\n" APP,
          "t.yaml:2:11: alerts.listen: '[::1]9095' is not [ipv6]:port (e.g. [::1]:9095)" },
        { "listen brackets without ipv6", "alerts:\n  listen: '[localhost]:9095'\n" APP,
          "t.yaml:2:11: alerts.listen: '[localhost]:9095' is not [ipv6]:port (e.g. [::1]:9095)" },
        { "listen empty host", "alerts:\n  listen: ':9095'\n" APP,
          "t.yaml:2:11: alerts.listen: ':9095' has no host" },
        { "alerts without listen", "alerts:\n  token_file: /etc/rollguard/alert-token\n" APP,
          "t.yaml:2:3: alerts: missing required key 'listen' (e.g. 127.0.0.1:9095)" },
        { "credentials file empty", "credentials:\n  file: \"\"\n" APP,
          "t.yaml:2:9: credentials.file: must not be empty (expected a file name)" },
        { "state_directory a list", "state_directory: [a]\n" APP,
          "t.yaml:1:18: state_directory: expected a directory name, found a list" },

        /* YAML safety and syntax */
        { "anchor", APP "    dry_run: &flag true\n",
          "t.yaml:6:14: anchor '&flag' not allowed: rollguard.yaml does not support anchors and aliases" },
        { "alias to an undefined anchor", "state_directory: *dir\n" APP,
          "t.yaml:1:18: alias '*dir' not allowed: rollguard.yaml does not support anchors and aliases" },
        { "yaml bomb", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n" APP,
          "t.yaml:1:4: anchor '&a' not allowed" },
        { "tab indentation", "defaults:\n\tpoll_interval: 30s\n" APP,
          "t.yaml:2:1: YAML syntax error: found character that cannot start any token (while scanning for the next token); tabs are not allowed in indentation, use spaces" },
        { "bad indentation", "apps:\n  - name: a\n    platform: sae\n  region: x\n",
          "t.yaml:4:3: YAML syntax error: did not find expected '-' indicator (while parsing a block collection at line 2, column 3)" },
        { "unterminated quote", APP "    dry_run: \"true\n",
          "t.yaml:7:1: YAML syntax error: found unexpected end of stream (while scanning a quoted scalar at line 6, column 14)" },
        { "unclosed flow", "defaults: { dry_run: true\n" APP,
          "t.yaml:2:5: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping at line 1, column 11)" },
        { "invalid UTF-8", "state_directory: /a\xff\n" APP,
          "t.yaml:1:20: YAML syntax error: invalid leading UTF-8 octet (byte 0xFF)" },
        { "control character", "state_directory: /a\x01\n" APP,
          "t.yaml:1:20: YAML syntax error: control characters are not allowed (byte 0x01)" },
        { "NUL escape", "state_directory: \"/var/\\0x\"\n" APP,
          "t.yaml:1:18: NUL characters are not allowed in strings" },
        { "complex key", "? [a, b]\n: c\n" APP, "t.yaml:1:3: top level: a key must be a name, found a list" },
};

static void test_invalid_configs(void **state) {
        size_t failures = 0;
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const bad_case *t = &bad_cases[i];
                config *c = NULL;
                char *err = NULL;
                int r = config_parse("t.yaml", t->yaml, strlen(t->yaml), &c, &err);
                if (r >= 0 || c || !err) {
                        print_error("row %zu (%s): accepted, want error \"%s\"\n", i, t->what, t->prefix);
                        failures++;
                } else if (strncmp(err, t->prefix, strlen(t->prefix)) != 0) {
                        print_error("row %zu (%s):\n  got  %s\n  want %s...\n", i, t->what, err, t->prefix);
                        failures++;
                } else if (strchr(err, '\n')) {
                        print_error("row %zu (%s): message has a newline: %s\n", i, t->what, err);
                        failures++;
                }
                free(err);
                config_free(c);
        }
        if (failures)
                fail_msg("%zu of %zu invalid configs gave the wrong error", failures, ELEMENTSOF(bad_cases));
}

static void test_error_codes(void **state) {
        config *c = (config *)1;
        char *err = NULL;
        /* syntax errors are EBADMSG, schema errors EINVAL */
        assert_int_equal(config_parse("t.yaml", "a: \"x\n", 6, &c, &err), -EBADMSG);
        assert_null(c);
        free(err);
        err = NULL;
        assert_int_equal(config_parse("t.yaml", "a: 1\n", 5, &c, &err), -EINVAL);
        free(err);
        /* ret_error may be NULL */
        assert_int_equal(config_parse("t.yaml", "a: 1\n", 5, &c, NULL), -EINVAL);
        assert_null(c);
}

/* A typed secret must never be echoed back in the error. */
static void test_secret_not_echoed(void **state) {
        static const char yaml[] = "credentials:\n  access_key_secret: hunter2-topsecret\n" APP;
        config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_parse("t.yaml", yaml, strlen(yaml), &c, &err), -EINVAL);
        assert_non_null(err);
        assert_true(strncmp(err, "t.yaml:2:3: unknown key 'access_key_secret' in credentials: secrets do not belong",
                            60) == 0);
        assert_null(strstr(err, "hunter2"));
}

static void test_too_large(void **state) {
        size_t n = 4 * 1024 * 1024 + 1;
        _cleanup_free_ char *big = malloc(n);
        assert_non_null(big);
        memset(big, '#', n);
        config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_parse("big.yaml", big, n, &c, &err), -EFBIG);
        assert_null(c);
        assert_string_equal(err, "big.yaml: too large (4194305 bytes; the limit is 4 MiB)");

        /* the same through a file: read stops one byte past the limit */
        char path[] = "/tmp/test_config_big_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, big, n), (ssize_t)n);
        assert_int_equal(write(fd, big, 100), 100);
        close(fd);
        _cleanup_free_ char *err2 = NULL;
        assert_int_equal(config_load(path, &c, &err2), -EFBIG);
        unlink(path);
        _cleanup_free_ char *want = strdup_printf("%s: too large (4194305 bytes; the limit is 4 MiB)", path);
        assert_string_equal(err2, want);
}

static void test_deep_nesting(void **state) {
        _cleanup_free_ char *yaml = malloc(2 * 1000 + 16);
        assert_non_null(yaml);
        strcpy(yaml, "x: ");
        memset(yaml + 3, '[', 1000);
        memset(yaml + 1003, ']', 1000);
        strcpy(yaml + 2003, "\n");
        config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_parse("t.yaml", yaml, strlen(yaml), &c, &err), -EINVAL);
        assert_string_equal(err, "t.yaml:1:35: nested too deeply (more than 32 levels)");
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
        assert_int_equal(c->rate_limit, 60);
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
                cmocka_unit_test(test_invalid_configs),
                cmocka_unit_test(test_error_codes),
                cmocka_unit_test(test_secret_not_echoed),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_deep_nesting),
                cmocka_unit_test(test_load_missing_file),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_example_config),
                cmocka_unit_test(test_many_apps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
