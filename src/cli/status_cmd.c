/* SPDX-License-Identifier: MIT */
#include "status_cmd.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        FILE *f = userdata;
        return fwrite(ptr, size, nmemb, f);
}

static const char *json_str(const cJSON *o, const char *k, const char *dflt) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
        return cJSON_IsString(v) ? v->valuestring : dflt;
}

static double json_num(const cJSON *o, const char *k, double dflt) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
        return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void fmt_age(double s, char *buf, size_t n) {
        char d[32];
        if (s < 0)
                snprintf(buf, n, "never");
        else /* whole seconds: sub-second precision is noise in a table */
                snprintf(buf, n, "%s ago", format_duration((uint64_t)s * USEC_PER_SEC, d, sizeof d));
}

int cmd_status(const cli *c) {
        _cleanup_config_ config *cfg = NULL;
        if (cli_load_config(c->config_path, &cfg) < 0)
                return EXIT_CONFIG;
        if (!cfg->alerts_listen) {
                fprintf(stderr, "rollguard: %s has no alerts.listen: the daemon serves /status there; set it to use 'rollguard status'\n",
                        c->config_path);
                return EXIT_CONFIG;
        }
        _cleanup_free_ char *url = strdup_printf("http://%s/status", cfg->alerts_listen);
        char *body = NULL;
        size_t body_len = 0;
        FILE *mem = open_memstream(&body, &body_len);
        if (!url || !mem)
                return EXIT_RUNTIME;
        CURL *h = curl_easy_init();
        long code = 0;
        CURLcode cr = CURLE_FAILED_INIT;
        if (h) {
                curl_easy_setopt(h, CURLOPT_URL, url);
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
                curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
                cr = curl_easy_perform(h);
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                curl_easy_cleanup(h);
        }
        fclose(mem);
        _cleanup_free_ char *b = body;
        if (cr != CURLE_OK || code != 200) {
                fprintf(stderr, "rollguard: cannot reach the daemon at %s: %s\n", url,
                        cr != CURLE_OK ? curl_easy_strerror(cr) : "unexpected HTTP status");
                return EXIT_RUNTIME;
        }
        cJSON *root = cJSON_Parse(b);
        if (!root) {
                fprintf(stderr, "rollguard: %s answered something that is not JSON\n", url);
                return EXIT_RUNTIME;
        }
        printf("%zu apps, %d in flight, %d degraded, %d/%d actions in the last hour%s\n",
               (size_t)json_num(root, "apps_total", 0), (int)json_num(root, "in_flight", 0),
               (int)json_num(root, "degraded", 0), (int)json_num(root, "actions_last_hour", 0),
               (int)json_num(root, "max_actions_per_hour", 0),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "circuit_open")) ? ", CIRCUIT BREAKER OPEN (log-only)" : "");
        const cJSON *bud = cJSON_GetObjectItemCaseSensitive(root, "budget");
        if (cJSON_IsObject(bud))
                printf("budget: %.0f calls/min%s; in flight every %.0fs%s; idle every %.0fs (sweep %.0fs)\n",
                       json_num(bud, "calls_per_minute", 0),
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bud, "throttled")) ? " (THROTTLED)" : "",
                       json_num(bud, "in_flight_interval_seconds", 0),
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bud, "stretched")) ? " (stretched: the budget is short)" : "",
                       json_num(bud, "idle_interval_seconds", 0), json_num(bud, "idle_sweep_seconds", 0));
        const cJSON *ha = cJSON_GetObjectItemCaseSensitive(root, "ha");
        if (cJSON_IsObject(ha)) {
                const char *node = json_str(ha, "node", "?"), *role = json_str(ha, "role", "?");
                const char *leader = json_str(ha, "leader", NULL), *why = json_str(ha, "reason", "-");
                if (streq(role, "leader"))
                        printf("ha: %s is the leader (%s)\n", node, why);
                else if (streq(role, "standby"))
                        printf("ha: %s is standby; %s%s\n", node, leader ? leader : "nobody", leader ? " leads" : " leads yet");
                else
                        printf("ha: %s is %s, NOT ACTING: %s; last known leader: %s\n", node, role, why,
                               leader ? leader : "none");
        }
        printf("%-20s %-10s %-38s %-15s %-12s %-22s %s\n", "APP", "STATE", "CHANGE ORDER", "STATUS", "LAST POLL",
               "PENDING RULE", "LAST ACTION");
        const cJSON *apps = cJSON_GetObjectItemCaseSensitive(root, "apps");
        const cJSON *a;
        cJSON_ArrayForEach(a, apps) {
                char age[48], pending[64] = "-", last[160] = "-";
                fmt_age(json_num(a, "last_poll_age_seconds", -1), age, sizeof age);
                const cJSON *p = cJSON_GetObjectItemCaseSensitive(a, "pending_rule");
                if (cJSON_IsObject(p))
                        snprintf(pending, sizeof pending, "%s in %.0fs", json_str(p, "rule", "?"),
                                 json_num(p, "fires_in_seconds", 0));
                const cJSON *l = cJSON_GetObjectItemCaseSensitive(a, "last_action");
                if (cJSON_IsObject(l))
                        snprintf(last, sizeof last, "%s %s (%s, %.0fs ago)", json_str(l, "action", "?"),
                                 json_str(l, "result", "?"), json_str(l, "change_order", "?"),
                                 json_num(l, "age_seconds", 0));
                const char *state = json_str(a, "state", "?");
                const char *err = json_str(a, "error", NULL);
                char st[48];
                snprintf(st, sizeof st, "%s%s", state, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "dry_run")) ? "*" : "");
                printf("%-20s %-10s %-38s %-15s %-12s %-22s %s%s%s\n", json_str(a, "name", "?"), st,
                       json_str(a, "change_order", "-"), json_str(a, "status", "-"), age, pending, last,
                       err ? "  error: " : "", err ? err : "");
        }
        cJSON_Delete(root);
        return EXIT_OK;
}
