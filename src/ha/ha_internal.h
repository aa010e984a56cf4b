/* SPDX-License-Identifier: MIT */
/* Shared by ha.c (lease, campaign, role) and ha_acts.c (fencing and the
 * act records): one module in two files, not an interface. */
#pragma once

#include "ha.h"

typedef struct ha_op ha_op;
struct ha_op {
        ha_node *h;
        ha_op *prev, *next;
        etcd_call *call;
        etcd_request_kind kind;
        uint64_t sent_usec;
        char *co;
        char *record;
        char *why;
        union {
                ha_fence_fn fence;
                ha_done_fn done;
                ha_acts_fn acts;
        } cb;
        void *userdata;
};

/* Acts this process fenced and has not written the result of yet. */
typedef struct fenced {
        struct fenced *next;
        char *co;
        int64_t create_revision;
        char *record;
} fenced;

struct ha_node {
        sd_event *event;
        etcd_client *etcd;
        char *prefix, *node, *leader_key, *acts_prefix;
        uint64_t ttl_usec, margin, interval;
        ha_role_fn on_role;
        void *userdata;
        sd_event_source *tick, *expiry;
        ha_op *ops;
        fenced *fenced;
        bool ticking; /* one keepalive/read/campaign chain at a time */
        bool contacted;
        bool resigned;
        int64_t lease_id;
        uint64_t lease_deadline;
        int64_t leader_rev; /* our leader key's create_revision; 0: we do not hold it */
        char *leader;
        char *told_leader; /* the leader on_role last heard of */
        ha_role role;
        bool was_leader;
        char last_error[256];
        char reason[384];
};

ha_op *ha_op_new(ha_node *h);
/* Detaches op from h (and forgets its etcd call: it has completed). */
void ha_op_unlink(ha_op *op);
void ha_op_free(ha_op *op);
/* Sends req for op; on failure op is freed and the error returned. */
int ha_op_submit(ha_op *op, const etcd_request *req, etcd_done_fn fn);
/* Recomputes the role; tells the journal and on_role when it changed. */
void ha_update_role(ha_node *h);
/* What the leader key (kv, NULL: absent) says about who leads. */
void ha_learn_leader(ha_node *h, const etcd_kv *kv);
void ha_fenced_free_all(ha_node *h);
