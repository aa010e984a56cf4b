/* SPDX-License-Identifier: MIT */
/* The decisions of high availability, without I/O: when a node may act,
 * which role it has, what an act record says and what a fencing
 * transaction's answer means. ha.c does the talking. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "etcd_proto.h"

typedef enum ha_role {
        HA_ROLE_STARTING, /* etcd not reached yet */
        HA_ROLE_LEADER,   /* holds the leader key under a lease it can vouch for */
        HA_ROLE_STANDBY,  /* another node leads (or nobody yet; it campaigns) */
        HA_ROLE_LOST,     /* cannot confirm its lease with etcd: acts on nothing */
        _HA_ROLE_MAX,
} ha_role;

/* "starting", "leader", "standby", "lost": for /status and metrics. */
const char *ha_role_name(ha_role role);

typedef enum ha_fence_result {
        HA_FENCED_OK,              /* the act key is ours: the call may go out */
        HA_REFUSED_NOT_LEADER,     /* this node does not (provably) lead */
        HA_REFUSED_ALREADY_ACTED,  /* acts/<id> exists: someone decided already */
        HA_FENCE_ERROR,            /* no answer: unknown, so not allowed */
        _HA_FENCE_MAX,
} ha_fence_result;

/* "FENCED_OK", "REFUSED_NOT_LEADER", "REFUSED_ALREADY_ACTED", "ERROR". */
const char *ha_fence_result_name(ha_fence_result res);

/* Drift allowance between our monotonic clock and etcd's: max(1s, ttl/5). */
uint64_t ha_safety_margin(uint64_t ttl_usec);
/* Keepalive and standby poll period: ttl/3. */
uint64_t ha_tick_interval(uint64_t ttl_usec);

/* The fail-safe. lease_deadline = when the last confirmed keepalive (or
 * grant) REQUEST was sent + the TTL etcd granted: etcd cannot have expired
 * the lease before that. A node acts only while now < deadline - margin. */
bool ha_can_act(uint64_t now, uint64_t lease_deadline, uint64_t margin);

/* Role from what we know: have_lease (a lease id), the deadline above,
 * holds_key (our leader key's create_revision is known), contacted (etcd
 * has answered at least once). */
ha_role ha_decide_role(bool contacted, bool have_lease, bool holds_key, uint64_t now,
                       uint64_t lease_deadline, uint64_t margin);

/* "<prefix>/leader", "<prefix>/acts/", "<prefix>/acts/<id>" (prefix without
 * trailing '/'). NULL on OOM. */
char *ha_leader_key(const char *prefix);
char *ha_acts_prefix(const char *prefix);
char *ha_act_key(const char *prefix, const char *change_order_id);
/* A change order id fit for a key: 1-128 chars, no '/', no control chars. */
bool ha_change_order_id_valid(const char *id);

/* The value of acts/<id>:
 *   {"node":..,"lease":"..","leader_revision":"..","fenced_at_ms":..,"intent":..}
 * intent_json is embedded as JSON when it parses, else as a string.
 * 0 or -ENOMEM/-EINVAL. */
int ha_act_record_build(const char *node, int64_t lease, int64_t leader_revision, int64_t now_ms,
                        const char *intent_json, char **ret);
/* The same record with "result" (JSON or string) and "result_at_ms". */
int ha_act_record_add_result(const char *record, const char *result_json, int64_t now_ms,
                             char **ret);

/* Reads the answer to the fencing txn, whose failure branch is
 * [range <leader>, range acts/<id>]. *ret_record: the existing act record
 * (ALREADY_ACTED) or NULL; it points into r. *ret_leader: the leader key's
 * value when the txn failed and someone else leads, else NULL. */
ha_fence_result ha_fence_classify(const etcd_result *r, const char **ret_record,
                                  const char **ret_leader);
