/* SPDX-License-Identifier: MIT */
/* Leadership and fencing on etcd (issue 15). One lease, kept alive at
 * ttl/3; the leader key <prefix>/leader is created by a txn only if absent
 * and carries the lease; standbys poll it at ttl/3 and campaign when it is
 * gone. Acting needs a lease we can vouch for (ha_core: ha_can_act) and a
 * fencing txn that creates <prefix>/acts/<change order> only while our
 * leader key still has our lease and revision. Decisions are ha_core's. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "etcd.h"
#include "ha_core.h"

typedef struct ha_node ha_node;

/* Every role or leader change; leader NULL when unknown; reason says why
 * in words for the journal and /status. */
typedef void (*ha_role_fn)(ha_node *h, ha_role role, const char *leader, const char *reason,
                           void *userdata);

typedef struct ha_options {
        const char *prefix;       /* "/rollguard/prod"; a trailing '/' is dropped */
        const char *node;         /* this node's name, the leader key's value */
        uint64_t lease_ttl_usec;  /* whole seconds, >= 2s */
        ha_role_fn on_role;       /* optional */
        void *userdata;
} ha_options;

/* etcd stays the caller's and must outlive h. 0, -EINVAL or -ENOMEM. */
int ha_new(sd_event *e, etcd_client *etcd, const ha_options *opt, ha_node **ret);
/* Grants the lease and campaigns; from then on ticks at ttl/3. */
int ha_start(ha_node *h);
/* Cancels everything in flight: no callback runs afterwards. Does not
 * revoke the lease (ha_resign does). Never call it from an ha callback. */
ha_node *ha_free(ha_node *h);

ha_role ha_get_role(const ha_node *h);
const char *ha_get_leader(const ha_node *h);   /* NULL: not known */
const char *ha_get_node(const ha_node *h);
/* Why the role is what it is (last etcd error when lost). Never NULL. */
const char *ha_get_reason(const ha_node *h);
/* Leader now, with a lease that cannot have expired. */
bool ha_may_act(const ha_node *h);
/* Leader, or was leader and lost etcd: keeps watching the cloud (without
 * acting) so that it knows the picture when etcd answers again. */
bool ha_observing(const ha_node *h);

/* record: the act record (ALREADY_ACTED: the existing one; FENCED_OK: ours),
 * else NULL. why: words for the log. Both valid only during the call. */
typedef void (*ha_fence_fn)(ha_fence_result res, const char *record, const char *why,
                            void *userdata);
/* Before an action's API call: the one txn that proves leadership and
 * claims acts/<change_order_id> with intent_json (who, rule, when: a JSON
 * object, embedded in the record ha_core builds). When this node cannot
 * act locally, no claim is tried: the key is only read, to tell
 * ALREADY_ACTED from NOT_LEADER. 0 (cb will run) or negative errno. */
int ha_fence_act(ha_node *h, const char *change_order_id, const char *intent_json, ha_fence_fn cb,
                 void *userdata);

typedef void (*ha_done_fn)(int error, void *userdata);
/* After the call: writes result_json into the record this node fenced
 * (only while the key is still the one we created: -ESTALE otherwise).
 * -ENOENT when this process did not fence that order. */
int ha_record_result(ha_node *h, const char *change_order_id, const char *result_json,
                     ha_done_fn cb, void *userdata);

typedef struct ha_act {
        const char *change_order_id;
        const char *record;
} ha_act;
typedef void (*ha_acts_fn)(int error, const ha_act *acts, size_t n_acts, void *userdata);
/* Every record under acts/: a new leader reads them before acting. */
int ha_load_acts(ha_node *h, ha_acts_fn cb, void *userdata);

/* Revokes the lease (the leader key goes with it: a standby takes over at
 * its next poll instead of after the TTL). cb optional. */
int ha_resign(ha_node *h, ha_done_fn cb, void *userdata);
