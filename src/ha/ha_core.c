/* SPDX-License-Identifier: MIT */
#include "ha_core.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "util.h"

const char *ha_role_name(ha_role role) {
        static const char *const names[_HA_ROLE_MAX] = {
                [HA_ROLE_STARTING] = "starting",
                [HA_ROLE_LEADER] = "leader",
                [HA_ROLE_STANDBY] = "standby",
                [HA_ROLE_LOST] = "lost",
        };
        return role >= 0 && role < _HA_ROLE_MAX ? names[role] : "unknown";
}

const char *ha_fence_result_name(ha_fence_result res) {
        static const char *const names[_HA_FENCE_MAX] = {
                [HA_FENCED_OK] = "FENCED_OK",
                [HA_REFUSED_NOT_LEADER] = "REFUSED_NOT_LEADER",
                [HA_REFUSED_ALREADY_ACTED] = "REFUSED_ALREADY_ACTED",
                [HA_FENCE_ERROR] = "ERROR",
        };
        return res >= 0 && res < _HA_FENCE_MAX ? names[res] : "ERROR";
}

uint64_t ha_safety_margin(uint64_t ttl_usec) {
        uint64_t m = ttl_usec / 5;
        return m > USEC_PER_SEC ? m : USEC_PER_SEC;
}

uint64_t ha_tick_interval(uint64_t ttl_usec) {
        return ttl_usec / 3;
}

bool ha_can_act(uint64_t now, uint64_t lease_deadline, uint64_t margin) {
        if (lease_deadline <= margin)
                return false;
        return now < lease_deadline - margin;
}

ha_role ha_decide_role(bool contacted, bool have_lease, bool holds_key, uint64_t now,
                       uint64_t lease_deadline, uint64_t margin) {
        if (have_lease && ha_can_act(now, lease_deadline, margin))
                return holds_key ? HA_ROLE_LEADER : HA_ROLE_STANDBY;
        /* Without a lease we can vouch for, we cannot even say that we are a
         * good standby: the lease is what lets us take over. */
        return contacted ? HA_ROLE_LOST : HA_ROLE_STARTING;
}

char *ha_leader_key(const char *prefix) {
        return strdup_printf("%s/leader", prefix);
}

char *ha_acts_prefix(const char *prefix) {
        return strdup_printf("%s/acts/", prefix);
}

char *ha_act_key(const char *prefix, const char *change_order_id) {
        return strdup_printf("%s/acts/%s", prefix, change_order_id);
}

bool ha_change_order_id_valid(const char *id) {
        if (!id || !*id || strlen(id) > 128)
                return false;
        for (const unsigned char *p = (const unsigned char *)id; *p; p++)
                if (*p == '/' || *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static cJSON *json_or_string(const char *text) {
        cJSON *v = text ? cJSON_Parse(text) : NULL;
        if (v)
                return v;
        return text ? cJSON_CreateString(text) : cJSON_CreateNull();
}

static int add_i64_string(cJSON *o, const char *name, int64_t v) {
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRId64, v);
        return cJSON_AddStringToObject(o, name, buf) ? 0 : -ENOMEM;
}

static int print_into(cJSON *o, char **ret) {
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int ha_act_record_build(const char *node, int64_t lease, int64_t leader_revision, int64_t now_ms,
                        const char *intent_json, char **ret) {
        if (!node)
                return -EINVAL;
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return -ENOMEM;
        cJSON *intent = json_or_string(intent_json);
        if (!cJSON_AddStringToObject(o, "node", node) || add_i64_string(o, "lease", lease) < 0 ||
            add_i64_string(o, "leader_revision", leader_revision) < 0 ||
            !cJSON_AddNumberToObject(o, "fenced_at_ms", (double)now_ms) || !intent ||
            !cJSON_AddItemToObject(o, "intent", intent)) {
                if (intent && !cJSON_GetObjectItemCaseSensitive(o, "intent"))
                        cJSON_Delete(intent);
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return print_into(o, ret);
}

int ha_act_record_add_result(const char *record, const char *result_json, int64_t now_ms,
                             char **ret) {
        cJSON *o = record ? cJSON_Parse(record) : NULL;
        if (!o || !cJSON_IsObject(o)) {
                cJSON_Delete(o);
                return -EINVAL;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(o, "result");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "result_at_ms");
        cJSON *res = json_or_string(result_json);
        if (!res || !cJSON_AddItemToObject(o, "result", res)) {
                cJSON_Delete(res);
                cJSON_Delete(o);
                return -ENOMEM;
        }
        if (!cJSON_AddNumberToObject(o, "result_at_ms", (double)now_ms)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return print_into(o, ret);
}

ha_fence_result ha_fence_classify(const etcd_result *r, const char **ret_record,
                                  const char **ret_leader) {
        *ret_record = NULL;
        *ret_leader = NULL;
        if (r->error < 0)
                return HA_FENCE_ERROR;
        if (r->succeeded)
                return HA_FENCED_OK;
        if (r->n_responses != 2 || r->responses[0].type != ETCD_OP_RANGE ||
            r->responses[1].type != ETCD_OP_RANGE)
                return HA_FENCE_ERROR; /* not the txn we sent */
        /* An existing act wins over "not leader": whoever asks, the answer
         * for that order is "decided already", with the record. */
        if (r->responses[1].n_kvs > 0) {
                *ret_record = r->responses[1].kvs[0].value;
                return HA_REFUSED_ALREADY_ACTED;
        }
        if (r->responses[0].n_kvs > 0)
                *ret_leader = r->responses[0].kvs[0].value;
        return HA_REFUSED_NOT_LEADER;
}
