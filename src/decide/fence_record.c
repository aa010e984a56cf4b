/* SPDX-License-Identifier: MIT */
/* The pure half of fence.h: what this node writes into acts/<change order>
 * (ha_core wraps it with node, lease and revision) and what it makes of a
 * record another node wrote. No I/O. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>

#include "fence.h"
#include "json.h"
#include "util.h"

static char *print_and_free(cJSON *o) {
        char *s = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        return s;
}

char *fence_intent_json(const char *app, const char *rule_name, rule_action action, int64_t now_ms) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "app", app ? app : "") ||
            !cJSON_AddStringToObject(o, "rule", rule_name ? rule_name : "") ||
            !cJSON_AddStringToObject(o, "action", rule_action_name(action) ? rule_action_name(action) : "?") ||
            !cJSON_AddNumberToObject(o, "when_ms", (double)now_ms)) {
                cJSON_Delete(o);
                return NULL;
        }
        return print_and_free(o);
}

char *fence_result_json(const action_outcome *o) {
        cJSON *j = cJSON_CreateObject();
        if (!j || !cJSON_AddStringToObject(j, "result", act_result_name(o->result)) ||
            (o->detail && !cJSON_AddStringToObject(j, "detail", o->detail)) ||
            (o->rollback_order_id && !cJSON_AddStringToObject(j, "rollback_order_id", o->rollback_order_id))) {
                cJSON_Delete(j);
                return NULL;
        }
        return print_and_free(j);
}

void fence_act_done(fence_act *a) {
        free(a->app);
        free(a->node);
        free(a->rec.change_order_id);
        free(a->rec.rule);
        free(a->rec.detail);
        free(a->rec.rollback_order_id);
        *a = (fence_act){ 0 };
}

/* A time we can store (state_time_valid), else `fallback`. */
static int64_t read_time(const cJSON *o, const char *name, int64_t fallback) {
        int64_t t = 0;
        if (json_get_int64(o, name, &t) <= 0 || !state_time_valid(t) || t == 0)
                return fallback;
        return t;
}

int fence_act_parse(const char *co_id, const char *record, int64_t now_ms, fence_act *ret) {
        *ret = (fence_act){ 0 };
        cJSON *root = record ? cJSON_Parse(record) : NULL;
        if (!cJSON_IsObject(root)) {
                cJSON_Delete(root);
                return -EBADMSG;
        }
        const cJSON *intent = json_member(root, "intent");
        const cJSON *result = json_member(root, "result");
        fence_act a = { 0 };
        char *action = NULL, *res = NULL, *detail = NULL;
        int r = 0;
        /* A field of an odd type reads as absent: the record still counts. */
        (void)json_get_string(root, "node", &a.node);
        (void)json_get_string(intent, "app", &a.app);
        (void)json_get_string(intent, "rule", &a.rec.rule);
        (void)json_get_string(intent, "action", &action);
        (void)json_get_string(result, "result", &res);
        (void)json_get_string(result, "detail", &detail);
        (void)json_get_string(result, "rollback_order_id", &a.rec.rollback_order_id);
        if (a.app && !*a.app)
                a.app = mfree(a.app);
        int act = action ? rule_action_from_string(action) : -EINVAL;
        a.rec.action = act >= 0 ? (rule_action)act : ACTION_ROLLBACK;
        int64_t fenced = read_time(root, "fenced_at_ms", now_ms);
        a.rec.intent_ms = read_time(intent, "when_ms", fenced);
        /* No result: the call may or may not have gone out. A result we
         * cannot read is no better. "intent" is not a result. */
        int k = res ? act_result_from_string(res) : -EINVAL;
        a.rec.result = k > ACT_INTENT ? (act_result)k : ACT_UNCONFIRMED;
        a.rec.finished_ms = read_time(root, "result_at_ms", now_ms);
        const char *who = a.node ? a.node : "another node";
        if (a.rec.result == ACT_UNCONFIRMED && !detail)
                a.rec.detail = strdup_printf("claimed by %s in etcd; no result written", who);
        else
                a.rec.detail = strdup_printf("%s%sby %s", detail ? detail : "", detail ? "; " : "", who);
        free(detail);
        if (!a.rec.detail)
                r = -ENOMEM;
        a.rec.change_order_id = strdup(co_id);
        if (!a.rec.rule)
                a.rec.rule = strdup("?");
        if (!a.rec.change_order_id || !a.rec.rule)
                r = -ENOMEM;
        free(action);
        free(res);
        cJSON_Delete(root);
        if (r < 0) {
                fence_act_done(&a);
                return r;
        }
        *ret = a;
        return 0;
}
