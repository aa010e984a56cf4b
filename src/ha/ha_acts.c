/* SPDX-License-Identifier: MIT */
/* Fencing: the txn that claims acts/<change order> only while our leader
 * key holds, and the records under acts/. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ha_internal.h"
#include "util.h"

void ha_fenced_free_all(ha_node *h) {
        while (h->fenced) {
                fenced *f = h->fenced;
                h->fenced = f->next;
                free(f->co);
                free(f->record);
                free(f);
        }
}

static void remember_fenced(ha_node *h, const char *co, int64_t create_revision, const char *record) {
        fenced *f = calloc(1, sizeof *f);
        if (!f || !(f->co = strdup(co)) || !(f->record = strdup(record))) {
                /* ha_record_result will say -ENOENT: the record stays an intent. */
                if (f)
                        free(f->co);
                free(f);
                return;
        }
        f->create_revision = create_revision;
        f->next = h->fenced;
        h->fenced = f;
}

static void on_fence(const etcd_result *r, void *userdata) {
        ha_op *op = userdata;
        ha_node *h = op->h;
        ha_op_unlink(op);
        const char *record, *leader;
        ha_fence_result res = ha_fence_classify(r, &record, &leader);
        char why[512];

        switch (res) {
        case HA_FENCED_OK:
                remember_fenced(h, op->co, r->revision, op->record);
                record = op->record;
                snprintf(why, sizeof why, "acts/%s created at revision %lld", op->co,
                         (long long)r->revision);
                break;
        case HA_REFUSED_ALREADY_ACTED:
                snprintf(why, sizeof why, "acts/%s exists: decided already", op->co);
                break;
        case HA_REFUSED_NOT_LEADER:
                snprintf(why, sizeof why, "etcd: %s %s", leader ? leader : "nobody",
                         leader ? "holds the leader key" : "holds the leader key any more");
                /* We learned we do not lead: say so now, not at the next poll. */
                ha_learn_leader(h, r->responses[0].n_kvs ? &r->responses[0].kvs[0] : NULL);
                break;
        default:
                snprintf(why, sizeof why, "etcd did not confirm the fence: %s%s",
                         r->error_text ? r->error_text : strerror(-r->error),
                         r->maybe_delivered ? " (it may have been applied; the order stays unconfirmed)" : "");
                break;
        }
        op->cb.fence(res, record, why, op->userdata);
        ha_op_free(op);
        if (res == HA_REFUSED_NOT_LEADER)
                ha_update_role(h);
}

/* This node cannot act: only tell "decided already" from "not leader". */
static void on_fence_read(const etcd_result *r, void *userdata) {
        ha_op *op = userdata;
        ha_op_unlink(op);
        char why[512];
        if (r->error >= 0 && r->range.n_kvs) {
                snprintf(why, sizeof why, "acts/%s exists: decided already", op->co);
                op->cb.fence(HA_REFUSED_ALREADY_ACTED, r->range.kvs[0].value, why, op->userdata);
        } else {
                snprintf(why, sizeof why, "this node may not act: %s", op->why);
                op->cb.fence(HA_REFUSED_NOT_LEADER, NULL, why, op->userdata);
        }
        ha_op_free(op);
}

int ha_fence_act(ha_node *h, const char *change_order_id, const char *intent_json, ha_fence_fn cb,
                 void *userdata) {
        if (!h || !ha_change_order_id_valid(change_order_id) || !cb)
                return -EINVAL;
        _cleanup_free_ char *key = ha_act_key(h->prefix, change_order_id);
        bool may_act = ha_may_act(h);
        if (!may_act)
                ha_update_role(h); /* the expiry timer may not have run yet: a fresh reason */
        ha_op *op = ha_op_new(h);
        if (!key || !op || !(op->co = strdup(change_order_id)) || !(op->why = strdup(h->reason))) {
                if (op) {
                        ha_op_unlink(op);
                        ha_op_free(op);
                }
                return -ENOMEM;
        }
        op->cb.fence = cb;
        op->userdata = userdata;

        if (!may_act)
                return ha_op_submit(op, &(etcd_request){ .kind = ETCD_REQ_RANGE, .op.key = key }, on_fence_read);

        int r = ha_act_record_build(h->node, h->lease_id, h->leader_rev, now_realtime_ms(), intent_json,
                                    &op->record);
        if (r < 0) {
                ha_op_unlink(op);
                ha_op_free(op);
                return r;
        }
        etcd_compare cmp[] = {
                { .key = h->leader_key, .target = ETCD_CMP_CREATE, .number = h->leader_rev },
                { .key = h->leader_key, .target = ETCD_CMP_LEASE, .number = h->lease_id },
                { .key = key, .target = ETCD_CMP_CREATE, .number = 0 },
        };
        etcd_op put = { .type = ETCD_OP_PUT, .key = key, .value = op->record,
                        .value_len = strlen(op->record) };
        etcd_op get[] = { { .type = ETCD_OP_RANGE, .key = h->leader_key },
                          { .type = ETCD_OP_RANGE, .key = key } };
        return ha_op_submit(op,
                      &(etcd_request){ .kind = ETCD_REQ_TXN, .compare = cmp, .n_compare = ELEMENTSOF(cmp),
                                       .success = &put, .n_success = 1,
                                       .failure = get, .n_failure = ELEMENTSOF(get) },
                      on_fence);
}

static void on_result(const etcd_result *r, void *userdata) {
        ha_op *op = userdata;
        ha_node *h = op->h;
        ha_op_unlink(op);
        int error = r->error < 0 ? r->error : r->succeeded ? 0 : -ESTALE;
        if (error == 0)
                for (fenced **f = &h->fenced; *f; f = &(*f)->next)
                        if (streq((*f)->co, op->co)) {
                                fenced *gone = *f;
                                *f = gone->next;
                                free(gone->co);
                                free(gone->record);
                                free(gone);
                                break;
                        }
        if (op->cb.done)
                op->cb.done(error, op->userdata);
        ha_op_free(op);
}

int ha_record_result(ha_node *h, const char *change_order_id, const char *result_json,
                     ha_done_fn cb, void *userdata) {
        if (!h || !ha_change_order_id_valid(change_order_id))
                return -EINVAL;
        fenced *f = h->fenced;
        while (f && !streq(f->co, change_order_id))
                f = f->next;
        if (!f)
                return -ENOENT;
        _cleanup_free_ char *key = ha_act_key(h->prefix, change_order_id);
        ha_op *op = ha_op_new(h);
        int r = !key || !op || !(op->co = strdup(change_order_id)) ? -ENOMEM
                : ha_act_record_add_result(f->record, result_json, now_realtime_ms(), &op->record);
        if (r < 0) {
                if (op) {
                        ha_op_unlink(op);
                        ha_op_free(op);
                }
                return r;
        }
        op->cb.done = cb;
        op->userdata = userdata;
        /* Facts are written even by a node that lost leadership since: the
         * call went out. Only the key we created is overwritten. */
        etcd_compare cmp = { .key = key, .target = ETCD_CMP_CREATE, .number = f->create_revision };
        etcd_op put = { .type = ETCD_OP_PUT, .key = key, .value = op->record,
                        .value_len = strlen(op->record) };
        return ha_op_submit(op,
                      &(etcd_request){ .kind = ETCD_REQ_TXN, .compare = &cmp, .n_compare = 1,
                                       .success = &put, .n_success = 1 },
                      on_result);
}

static void on_load(const etcd_result *r, void *userdata) {
        ha_op *op = userdata;
        ha_node *h = op->h;
        ha_op_unlink(op);
        size_t skip = strlen(h->acts_prefix), n = 0;
        ha_act *acts = r->error < 0 ? NULL : calloc(r->range.n_kvs + 1, sizeof *acts);
        int error = r->error < 0 ? r->error : acts ? 0 : -ENOMEM;
        for (size_t i = 0; acts && i < r->range.n_kvs; i++)
                if (strlen(r->range.kvs[i].key) > skip)
                        acts[n++] = (ha_act){ .change_order_id = r->range.kvs[i].key + skip,
                                              .record = r->range.kvs[i].value };
        op->cb.acts(error, acts, n, op->userdata);
        free(acts);
        ha_op_free(op);
}

int ha_load_acts(ha_node *h, ha_acts_fn cb, void *userdata) {
        if (!h || !cb)
                return -EINVAL;
        _cleanup_free_ char *end = etcd_prefix_end(h->acts_prefix);
        ha_op *op = end ? ha_op_new(h) : NULL;
        if (!op)
                return -ENOMEM;
        op->cb.acts = cb;
        op->userdata = userdata;
        return ha_op_submit(op,
                      &(etcd_request){ .kind = ETCD_REQ_RANGE,
                                       .op = { .key = h->acts_prefix, .range_end = end } },
                      on_load);
}
