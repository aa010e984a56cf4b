/* SPDX-License-Identifier: MIT */
/* Invalid configurations: each gives the exact FILE:LINE:COL message. */
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
          "t.yaml:1:1: unknown key 'bogus' at the top level (expected defaults, credentials, endpoints, alerts, state_directory, prometheus, ha, apps or notify)" },
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

        /* metric rules (config_prom.c) */
        { "query without prometheus", RULE("{ query: up, above: 1 }"),
          "t.yaml:8:24: apps[0].rules[0].when.query: a query rule needs the prometheus section" },
        { "query without threshold", "prometheus: { url: 'http://127.0.0.1:9090' }\n" RULE("{ query: up }"),
          "t.yaml:9:24: apps[0].rules[0].when.query: needs above or below (the threshold)" },
        { "above and below", "prometheus: { url: 'http://127.0.0.1:9090' }\n" RULE("{ query: up, above: 1, below: 2 }"),
          "t.yaml:9:45: apps[0].rules[0].when: both above and below (give exactly one)" },
        { "above without query", "prometheus: { url: 'http://127.0.0.1:9090' }\n" RULE("{ status: executing, above: 1 }"),
          "t.yaml:9:43: apps[0].rules[0].when.above: only applies to a query (add query:)" },
        { "threshold not a number", "prometheus: { url: 'http://127.0.0.1:9090' }\n" RULE("{ query: up, above: lots }"),
          "t.yaml:9:35: apps[0].rules[0].when.above: 'lots' is not a finite number" },
        { "threshold nan", "prometheus: { url: 'http://127.0.0.1:9090' }\n" RULE("{ query: up, below: nan }"),
          "t.yaml:9:35: apps[0].rules[0].when.below: 'nan' is not a finite number" },
        { "unknown placeholder points at it", "prometheus: { url: 'http://127.0.0.1:9090' }\n"
          RULE("{ query: 'up{app=\"{{apps}}\"}', above: 0 }"),
          "t.yaml:9:33: apps[0].rules[0].when.query: unknown placeholder {{apps}}" },
        { "placeholder in a folded block", "prometheus:\n  url: http://127.0.0.1:9090\n" APP
          "    rules:\n      - name: r\n        when:\n          query: >\n            sum(rate(x[1m]))\n"
          "              / sum(y{region=\"{{zone}}\"})\n          above: 1\n        action: log\n",
          "t.yaml:13:31: apps[0].rules[0].when.query: unknown placeholder {{zone}}" },
        { "prometheus without url", "prometheus: { timeout: 5s }\n" APP,
          "t.yaml:1:13: prometheus: missing required key 'url'" },
        { "prometheus url not http", "prometheus: { url: 'ftp://x' }\n" APP,
          "t.yaml:1:20: prometheus.url: 'ftp://x' is not an http:// or https:// URL" },
        { "prometheus bad auth", "prometheus: { url: 'http://p:9090', auth: oauth }\n" APP,
          "t.yaml:1:43: prometheus.auth: " },
        { "prometheus auth none with a token", "prometheus: { url: 'http://p:9090', token_file: /t, auth: none }\n" APP,
          "t.yaml:1:59: prometheus.auth: none, but a token_file is given" },
        { "prometheus timeout too short", "prometheus: { url: 'http://p:9090', timeout: 1ms }\n" APP,
          "t.yaml:1:46: prometheus.timeout: " },

        /* rules */
        { "when with no condition", RULE("{ pipeline_failed: false }"),
          "t.yaml:8:15: apps[0].rules[0].when: no condition (give at least one of status, sub_status, co_type, no_progress_for, pipeline_failed, alert or query)" },
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

        /* notify (issue 14); NOTIFY(x) puts x on line 8 */
#define NOTIFY(x) APP "notify:\n  - name: oncall\n" x
        { "notify is a mapping", APP "notify:\n  name: x\n",
          "t.yaml:7:3: notify: expected a list of channels (- name: ..., type: ...), found a mapping" },
        { "channel type unknown", NOTIFY("    type: dingtak\n    url_file: /u\n"),
          "t.yaml:8:11: notify[0].type: unknown type 'dingtak' (did you mean 'dingtalk'?)" },
        { "channel type missing", NOTIFY("    url_file: /u\n"),
          "t.yaml:7:5: notify[0]: missing required key 'type' (dingtalk, feishu, wecom, slack or webhook)" },
        { "channel without url", NOTIFY("    type: slack\n"),
          "t.yaml:7:5: notify[0]: missing required key 'url_file' (a file holding the robot's URL; or url)" },
        { "channel with url and url_file", NOTIFY("    type: slack\n    url: https://h/x\n    url_file: /u\n"),
          "t.yaml:10:15: notify[0]: give url or url_file, not both" },
        { "inline url not http, not echoed", NOTIFY("    type: slack\n    url: ftp://h/TOKEN\n"),
          "t.yaml:9:10: notify[0].url: expected an http:// or https:// URL (the value is not shown: it may hold a token)" },
        { "inline secret refused", NOTIFY("    type: dingtalk\n    url_file: /u\n    secret: SEC\n"),
          "t.yaml:10:5: notify[0].secret: a signing secret is not written in the config: put it in a file" },
        { "secret_file on an unsigned type", NOTIFY("    type: wecom\n    url_file: /u\n    secret_file: /s\n"),
          "t.yaml:10:18: notify[0].secret_file: wecom robots are not signed (only dingtalk and feishu are)" },
        { "unknown event", NOTIFY("    type: slack\n    url_file: /u\n    events: [action, actions]\n"),
          "t.yaml:10:22: notify[0].events: unknown event 'actions' (did you mean 'action'?)" },
        { "test is not an event", NOTIFY("    type: slack\n    url_file: /u\n    events: test\n"),
          "t.yaml:10:13: notify[0].events: unknown event 'test' (expected action, action_failed," },
        { "channel app unknown", NOTIFY("    type: slack\n    url_file: /u\n    apps: [shop-api, shop-apl2]\n"),
          "t.yaml:10:22: notify[0].apps: no app named 'shop-apl2' in apps" },
        { "channel app unknown, notify first",
          "notify:\n  - name: a\n    type: slack\n    url_file: /u\n    apps: shop-ap\n" APP,
          "t.yaml:5:11: notify[0].apps: no app named 'shop-ap' in apps (did you mean 'shop-api'?)" },
        { "two channels, one name", NOTIFY("    type: slack\n    url_file: /u\n  - name: oncall\n    type: slack\n    url_file: /v\n"),
          "t.yaml:10:5: notify[1]: a channel named 'oncall' exists already (line 7)" },
        { "channel name invalid", APP "notify:\n  - name: on call\n    type: slack\n    url_file: /u\n",
          "t.yaml:7:11: notify[0].name: 'on call' is not a valid name" },
        { "retry_for too short", NOTIFY("    type: slack\n    url_file: /u\n    retry_for: 0s\n"),
          "t.yaml:10:16: notify[0].retry_for:" },
#undef NOTIFY
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_invalid_configs),
                cmocka_unit_test(test_error_codes),
                cmocka_unit_test(test_secret_not_echoed),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_deep_nesting),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
