/* SPDX-License-Identifier: MIT */
/* The pure parts of issue 15 in the daemon: the `ha:` section (what it
 * parses to, and each bad input's exact FILE:LINE:COL message) and the act
 * records fence.h writes into and reads from etcd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "config_test.h"
#include "fence.h"
#include "util.h"

/* ---- ha: ---- */

static config *parse_ok(const char *yaml) {
        config *c = NULL;
        char *err = NULL;
        if (config_parse("t.yaml", yaml, strlen(yaml), &c, &err) < 0)
                fail_msg("unexpected error: %s\n--- input:\n%s", strna(err), yaml);
        return c;
}

static void test_ha_absent_changes_nothing(void **state) {
        _cleanup_config_ config *c = parse_ok(APP);
        assert_null(c->ha.etcd);
        assert_int_equal(c->ha.n_etcd, 0);
        assert_null(c->ha.prefix);
}

static void test_ha_full(void **state) {
        _cleanup_config_ config *c = parse_ok(
                "ha:\n"
                "  etcd: [https://10.0.0.5:2379/, https://10.0.0.6:2379]\n"
                "  prefix: /rollguard/prod//\n"
                "  lease_ttl: 15s\n"
                "  node: ops-1\n"
                "  tls: { ca_file: /etc/rollguard/ca.pem, cert_file: /c.pem, key_file: /k.pem }\n"
                "  user: rollguard\n"
                "  password_file: /etc/rollguard/etcd-password\n" APP);
        assert_int_equal(c->ha.n_etcd, 2);
        assert_string_equal(c->ha.etcd[0], "https://10.0.0.5:2379");
        assert_string_equal(c->ha.etcd[1], "https://10.0.0.6:2379");
        assert_null(c->ha.etcd[2]);
        assert_string_equal(c->ha.prefix, "/rollguard/prod");
        assert_int_equal(c->ha.lease_ttl_usec, 15 * USEC_PER_SEC);
        assert_string_equal(c->ha.node, "ops-1");
        assert_string_equal(c->ha.ca_file, "/etc/rollguard/ca.pem");
        assert_string_equal(c->ha.cert_file, "/c.pem");
        assert_string_equal(c->ha.key_file, "/k.pem");
        assert_string_equal(c->ha.user, "rollguard");
        assert_string_equal(c->ha.password_file, "/etc/rollguard/etcd-password");
}

static void test_ha_defaults(void **state) {
        _cleanup_config_ config *c = parse_ok("ha:\n  etcd: http://127.0.0.1:2379\n" APP);
        assert_int_equal(c->ha.n_etcd, 1);
        assert_string_equal(c->ha.prefix, "/rollguard");
        assert_int_equal(c->ha.lease_ttl_usec, 10 * USEC_PER_SEC);
        char host[256] = { 0 };
        assert_int_equal(gethostname(host, sizeof host - 1), 0);
        assert_string_equal(c->ha.node, host);
        assert_null(c->ha.user);
        assert_null(c->ha.password_file);
}

static void test_ha_equal(void **state) {
        _cleanup_config_ config *a = parse_ok("ha:\n  etcd: [http://a:1, http://b:2]\n  node: n\n" APP);
        _cleanup_config_ config *b = parse_ok("ha:\n  etcd: [http://a:1, http://b:2]\n  node: n\n" APP);
        _cleanup_config_ config *c = parse_ok("ha:\n  etcd: [http://a:1]\n  node: n\n" APP);
        _cleanup_config_ config *d = parse_ok("ha:\n  etcd: [http://a:1, http://b:2]\n  node: m\n" APP);
        _cleanup_config_ config *none = parse_ok(APP), *none2 = parse_ok(APP);
        assert_true(config_ha_equal(&a->ha, &b->ha));
        assert_false(config_ha_equal(&a->ha, &c->ha));
        assert_false(config_ha_equal(&a->ha, &d->ha));
        assert_false(config_ha_equal(&a->ha, &none->ha));
        assert_true(config_ha_equal(&none->ha, &none2->ha));
}

#define HA(body) "ha:\n" body APP

static const struct {
        const char *what, *yaml, *prefix;
} bad[] = {
        { "not a mapping", "ha: [http://x:1]\n" APP,
          "t.yaml:1:5: ha: expected a mapping (etcd, prefix, lease_ttl, node, tls, user, password_file), found a list" },
        { "no etcd", HA("  prefix: /p\n"),
          "t.yaml:2:3: ha: missing required key 'etcd' (the etcd client URLs, e.g. [http://10.0.0.5:2379])" },
        { "empty etcd", HA("  etcd: []\n"), "t.yaml:2:9: ha.etcd: empty list" },
        { "etcd not a URL", HA("  etcd: [http://a:1, 10.0.0.6:2379]\n"),
          "t.yaml:2:22: ha.etcd[1]: '10.0.0.6:2379' is not an http:// or https:// URL" },
        { "etcd with a path", HA("  etcd: http://a:2379/v3\n"),
          "t.yaml:2:9: ha.etcd: 'http://a:2379/v3' has a path; give only scheme, host and port" },
        { "ttl too short", HA("  etcd: http://a:1\n  lease_ttl: 1s\n"),
          "t.yaml:3:14: ha.lease_ttl: '1s' is too short (at least 2s)" },
        { "ttl not whole seconds", HA("  etcd: http://a:1\n  lease_ttl: 2500ms\n"),
          "t.yaml:3:14: ha.lease_ttl: etcd leases are whole seconds (e.g. 10s)" },
        { "ttl too long", HA("  etcd: http://a:1\n  lease_ttl: 1h\n"),
          "t.yaml:3:14: ha.lease_ttl: '1h' is too long (at most 10m)" },
        { "relative prefix", HA("  etcd: http://a:1\n  prefix: rollguard\n"),
          "t.yaml:3:11: ha.prefix: 'rollguard' must start with '/'" },
        { "prefix just /", HA("  etcd: http://a:1\n  prefix: /\n"), "t.yaml:3:11: ha.prefix: '/' must start with '/' and name something" },
        { "prefix with a space", HA("  etcd: http://a:1\n  prefix: '/a b'\n"),
          "t.yaml:3:11: ha.prefix: '/a b' is not a usable key prefix" },
        { "node with a space", HA("  etcd: http://a:1\n  node: 'ops 1'\n"),
          "t.yaml:3:9: ha.node: 'ops 1' is not a usable node name" },
        { "unknown key", HA("  etcd: http://a:1\n  lease: 10s\n"),
          "t.yaml:3:3: unknown key 'lease' in ha (expected etcd, prefix, lease_ttl, node, tls, user or password_file)" },
        { "key typo", HA("  etcd: http://a:1\n  prefx: /p\n"), "t.yaml:3:3: unknown key 'prefx' in ha (did you mean 'prefix'?)" },
        { "password without user", HA("  etcd: http://a:1\n  password_file: /p\n"),
          "t.yaml:3:18: ha.password_file: without ha.user there is nobody to log in as" },
        { "cert without key", HA("  etcd: https://a:1\n  tls: { cert_file: /c }\n"),
          "t.yaml:3:21: ha.tls: cert_file needs key_file" },
        { "key without cert", HA("  etcd: https://a:1\n  tls: { key_file: /k }\n"),
          "t.yaml:3:20: ha.tls: key_file needs cert_file" },
        { "tls key typo", HA("  etcd: https://a:1\n  tls: { ca: /ca }\n"),
          "t.yaml:3:10: unknown key 'ca' in ha.tls" },
        { "tls with http only", HA("  etcd: http://a:1\n  tls: { ca_file: /ca }\n"),
          "t.yaml:2:3: ha.tls is set but every ha.etcd endpoint is http://: use https:// URLs" },
};

static void test_ha_bad(void **state) {
        size_t failures = 0;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                config *c = NULL;
                char *err = NULL;
                int r = config_parse("t.yaml", bad[i].yaml, strlen(bad[i].yaml), &c, &err);
                if (r >= 0 || !err) {
                        print_error("%s: accepted\n", bad[i].what);
                        failures++;
                } else if (strncmp(err, bad[i].prefix, strlen(bad[i].prefix)) != 0) {
                        print_error("%s:\n  got  %s\n  want %s...\n", bad[i].what, err, bad[i].prefix);
                        failures++;
                }
                free(err);
                config_free(c);
        }
        if (failures)
                fail_msg("%zu of %zu bad ha: sections gave the wrong error", failures, ELEMENTSOF(bad));
}

/* ---- act records ---- */

static void test_intent_and_result_json(void **state) {
        _cleanup_free_ char *i = fence_intent_json("shop", "stuck", ACTION_ROLLBACK, 1700000000123);
        assert_string_equal(i, "{\"app\":\"shop\",\"rule\":\"stuck\",\"action\":\"rollback\",\"when_ms\":1700000000123}");
        action_outcome o = { .result = ACT_DONE, .rollback_order_id = "co-rb" };
        _cleanup_free_ char *r = fence_result_json(&o);
        assert_string_equal(r, "{\"result\":\"done\",\"rollback_order_id\":\"co-rb\"}");
        o = (action_outcome){ .result = ACT_FAILED, .detail = "Forbidden" };
        _cleanup_free_ char *f = fence_result_json(&o);
        assert_string_equal(f, "{\"result\":\"failed\",\"detail\":\"Forbidden\"}");
}

static void test_act_parse(void **state) {
        static const struct {
                const char *what, *record;
                int want_r;
                const char *app, *node, *rule;
                rule_action action;
                act_result result;
                const char *detail, *rollback;
                int64_t intent_ms, finished_ms;
        } t[] = {
                { "done, with the new order",
                  "{\"node\":\"ops-1\",\"lease\":\"7\",\"leader_revision\":\"9\",\"fenced_at_ms\":1000,"
                  "\"intent\":{\"app\":\"shop\",\"rule\":\"stuck\",\"action\":\"rollback\",\"when_ms\":990},"
                  "\"result\":{\"result\":\"done\",\"rollback_order_id\":\"rb\"},\"result_at_ms\":2000}",
                  0, "shop", "ops-1", "stuck", ACTION_ROLLBACK, ACT_DONE, "by ops-1", "rb", 990, 2000 },
                { "claimed, no result: unconfirmed",
                  "{\"node\":\"ops-2\",\"fenced_at_ms\":1000,\"intent\":{\"app\":\"shop\",\"rule\":\"r\",\"action\":\"abort\"}}",
                  0, "shop", "ops-2", "r", ACTION_ABORT, ACT_UNCONFIRMED, "claimed by ops-2 in etcd; no result written",
                  NULL, 1000, 5000 },
                { "failed, with its detail",
                  "{\"node\":\"n\",\"intent\":{\"app\":\"a\",\"rule\":\"r\",\"action\":\"rollback\",\"when_ms\":1},"
                  "\"result\":{\"result\":\"failed\",\"detail\":\"Forbidden.RAM\"},\"result_at_ms\":3}",
                  0, "a", "n", "r", ACTION_ROLLBACK, ACT_FAILED, "Forbidden.RAM; by n", NULL, 1, 3 },
                { "a result that is not ours (the probe's plain text)",
                  "{\"node\":\"n\",\"intent\":{\"app\":\"a\"},\"result\":\"done\"}",
                  0, "a", "n", "?", ACTION_ROLLBACK, ACT_UNCONFIRMED, "claimed by n in etcd; no result written",
                  NULL, 5000, 5000 },
                { "'intent' is no result",
                  "{\"intent\":{\"app\":\"a\",\"rule\":\"r\",\"action\":\"log\"},\"result\":{\"result\":\"intent\"}}",
                  0, "a", NULL, "r", ACTION_LOG, ACT_UNCONFIRMED, "claimed by another node in etcd; no result written",
                  NULL, 5000, 5000 },
                { "odd types read as absent",
                  "{\"node\":[1],\"intent\":{\"app\":{},\"rule\":7,\"action\":\"explode\",\"when_ms\":\"x\"}}",
                  0, NULL, NULL, "7", ACTION_ROLLBACK, ACT_UNCONFIRMED, "claimed by another node in etcd; no result written",
                  NULL, 5000, 5000 },
                { "empty app is no app", "{\"intent\":{\"app\":\"\"}}", 0, NULL, NULL, "?", ACTION_ROLLBACK,
                  ACT_UNCONFIRMED, "claimed by another node in etcd; no result written", NULL, 5000, 5000 },
                { .what = "not JSON", .record = "rolled back", .want_r = -EBADMSG },
                { .what = "not an object", .record = "[1,2]", .want_r = -EBADMSG },
                { .what = "nothing", .want_r = -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                fence_act a;
                int r = fence_act_parse("co-1", t[i].record, 5000, &a);
                if (r != t[i].want_r)
                        fail_msg("%s: r=%d want %d", t[i].what, r, t[i].want_r);
                if (r < 0)
                        continue;
                if (!streq_null(a.app, t[i].app) || !streq_null(a.node, t[i].node) ||
                    !streq_null(a.rec.rule, t[i].rule) || a.rec.action != t[i].action ||
                    a.rec.result != t[i].result || !streq_null(a.rec.detail, t[i].detail) ||
                    !streq_null(a.rec.rollback_order_id, t[i].rollback) || a.rec.intent_ms != t[i].intent_ms ||
                    a.rec.finished_ms != t[i].finished_ms || !streq(a.rec.change_order_id, "co-1"))
                        fail_msg("%s: got app=%s node=%s rule=%s action=%d result=%s detail=%s rb=%s intent=%lld finished=%lld",
                                 t[i].what, strna(a.app), strna(a.node), strna(a.rec.rule), a.rec.action,
                                 act_result_name(a.rec.result), strna(a.rec.detail), strna(a.rec.rollback_order_id),
                                 (long long)a.rec.intent_ms, (long long)a.rec.finished_ms);
                /* what the state file can keep */
                assert_true(act_record_valid(&a.rec));
                fence_act_done(&a);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ha_absent_changes_nothing),
                cmocka_unit_test(test_ha_full),
                cmocka_unit_test(test_ha_defaults),
                cmocka_unit_test(test_ha_equal),
                cmocka_unit_test(test_ha_bad),
                cmocka_unit_test(test_intent_and_result_json),
                cmocka_unit_test(test_act_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
