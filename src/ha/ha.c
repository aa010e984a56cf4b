/* SPDX-License-Identifier: MIT */
#include "ha.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ha_internal.h"
#include "log.h"
#include "util.h"

/* A few ms late is fine; sd-event's default 250ms slack is not, next to a
 * safety margin of one second. */
#define TIMER_ACCURACY_USEC (10 * USEC_PER_MSEC)

/* ---- bookkeeping ---- */

ha_op *ha_op_new(ha_node *h) {
        ha_op *op = calloc(1, sizeof *op);
        if (!op)
                return NULL;
        op->h = h;
        op->next = h->ops;
        if (h->ops)
                h->ops->prev = op;
        h->ops = op;
        return op;
}

void ha_op_unlink(ha_op *op) {
        ha_node *h = op->h;
        if (op->prev)
                op->prev->next = op->next;
        else if (h->ops == op)
                h->ops = op->next;
        if (op->next)
                op->next->prev = op->prev;
        op->prev = op->next = NULL;
        op->call = NULL;
}

void ha_op_free(ha_op *op) {
        if (!op)
                return;
        if (op->call)
                etcd_call_cancel(op->call);
        free(op->co);
        free(op->record);
        free(op->why);
        free(op);
}

int ha_op_submit(ha_op *op, const etcd_request *req, etcd_done_fn fn) {
        op->sent_usec = now_monotonic_usec();
        op->kind = req->kind;
        int r = etcd_submit(op->h->etcd, req, fn, op, &op->call);
        if (r < 0) {
                op->call = NULL;
                ha_op_unlink(op);
                ha_op_free(op);
        }
        return r;
}

static void set_error(ha_node *h, const char *what, const etcd_result *r) {
        snprintf(h->last_error, sizeof h->last_error, "%s: %s", what,
                 r->error_text ? r->error_text : strerror(-r->error));
}

/* ---- role ---- */

void ha_update_role(ha_node *h) {
        uint64_t now = now_monotonic_usec();
        ha_role role = ha_decide_role(h->contacted, h->lease_id != 0, h->leader_rev != 0, now,
                                      h->lease_deadline, h->margin);
        char reason[sizeof h->reason];

        switch (role) {
        case HA_ROLE_LEADER:
                h->was_leader = true;
                snprintf(reason, sizeof reason, "holds %s (revision %lld)", h->leader_key,
                         (long long)h->leader_rev);
                break;
        case HA_ROLE_STANDBY:
                h->was_leader = false;
                if (h->leader)
                        snprintf(reason, sizeof reason, "%s leads", h->leader);
                else
                        snprintf(reason, sizeof reason, "nobody leads; campaigning");
                break;
        case HA_ROLE_LOST:
                if (h->resigned)
                        snprintf(reason, sizeof reason, "resigned: lease revoked");
                else
                        snprintf(reason, sizeof reason,
                                 "etcd has not confirmed the lease in time, not acting%s (%s)",
                                 h->was_leader ? ", still observing" : "",
                                 h->last_error[0] ? h->last_error
                                 : h->lease_id ? "no keepalive answer in time: paused, or etcd slow"
                                               : "the lease expired at etcd");
                break;
        default:
                snprintf(reason, sizeof reason, "etcd not reached yet (%s)",
                         h->last_error[0] ? h->last_error : "no answer yet");
                break;
        }
        memcpy(h->reason, reason, sizeof reason);
        if (role == h->role && streq_null(h->told_leader, h->leader))
                return;
        h->role = role;
        free(h->told_leader);
        h->told_leader = strdup_null(h->leader); /* OOM: told again next time */
        /* Not being able to vouch for the lease is what an operator must
         * hear about: nobody acts until etcd answers again. */
        log_fields f = { .result = ha_role_name(role) };
        log_event_send(EV_HA_ROLE, role == HA_ROLE_LOST && !h->resigned ? LOG_WARNING : LOG_NOTICE, &f,
                       "ha: %s is %s: %s", h->node, ha_role_name(role), h->reason);
        if (h->on_role)
                h->on_role(h, role, h->leader, h->reason, h->userdata);
}

static void set_leader(ha_node *h, const char *name) {
        if (streq_null(h->leader, name))
                return;
        free(h->leader);
        h->leader = name ? strdup(name) : NULL; /* OOM: "unknown", which is true */
}

/* What the leader key says about us. */
void ha_learn_leader(ha_node *h, const etcd_kv *kv) {
        if (!kv) {
                h->leader_rev = 0;
                set_leader(h, NULL);
                return;
        }
        set_leader(h, kv->value);
        if (kv->lease == h->lease_id && h->lease_id && streq(kv->value, h->node))
                /* Ours, also when a campaign whose answer got lost went through. */
                h->leader_rev = kv->create_revision;
        else
                h->leader_rev = 0;
}

static void arm_expiry(ha_node *h) {
        if (h->lease_deadline <= h->margin)
                return;
        if (sd_event_source_set_time(h->expiry, h->lease_deadline - h->margin) >= 0)
                (void)sd_event_source_set_enabled(h->expiry, SD_EVENT_ONESHOT);
}

/* ---- the tick: keepalive (or grant), read the leader key, campaign ---- */

static void tick_done(ha_node *h) {
        h->ticking = false;
        ha_update_role(h);
}

static void on_campaign(const etcd_result *r, void *userdata);
static void on_read(const etcd_result *r, void *userdata);
static void on_lease(const etcd_result *r, void *userdata);

static int send_lease(ha_node *h) {
        ha_op *op = ha_op_new(h);
        if (!op)
                return -ENOMEM;
        etcd_request req = { .kind = h->lease_id ? ETCD_REQ_LEASE_KEEPALIVE : ETCD_REQ_LEASE_GRANT,
                             .lease_id = h->lease_id,
                             .ttl_sec = (int64_t)(h->ttl_usec / USEC_PER_SEC) };
        return ha_op_submit(op, &req, on_lease);
}

static int send_read(ha_node *h) {
        ha_op *op = ha_op_new(h);
        if (!op)
                return -ENOMEM;
        return ha_op_submit(op, &(etcd_request){ .kind = ETCD_REQ_RANGE, .op.key = h->leader_key }, on_read);
}

static int send_campaign(ha_node *h) {
        ha_op *op = ha_op_new(h);
        if (!op)
                return -ENOMEM;
        etcd_compare cmp = { .key = h->leader_key, .target = ETCD_CMP_CREATE, .number = 0 };
        etcd_op put = { .type = ETCD_OP_PUT, .key = h->leader_key, .value = h->node,
                        .value_len = strlen(h->node), .lease = h->lease_id };
        etcd_op get = { .type = ETCD_OP_RANGE, .key = h->leader_key };
        etcd_request req = { .kind = ETCD_REQ_TXN, .compare = &cmp, .n_compare = 1,
                             .success = &put, .n_success = 1, .failure = &get, .n_failure = 1 };
        return ha_op_submit(op, &req, on_campaign);
}

static void chain(ha_node *h, int r) {
        if (r >= 0)
                return;
        snprintf(h->last_error, sizeof h->last_error, "cannot send to etcd: %s", strerror(-r));
        tick_done(h);
}

static void on_lease(const etcd_result *r, void *userdata) {
        ha_op *op = userdata;
        ha_node *h = op->h;
        uint64_t sent = op->sent_usec;
        bool grant = op->kind == ETCD_REQ_LEASE_GRANT;
        ha_op_unlink(op);
        ha_op_free(op);

        if (h->resigned) {
                tick_done(h);
                return;
        }
        if (r->error != -EIO)
                h->contacted = true;
        if (r->error < 0 && r->error != -ENOENT) {
                set_error(h, grant ? "lease grant" : "lease keepalive", r);
                tick_done(h);
                return;
        }
        if (grant || (r->error == 0 && r->ttl_sec > 0)) {
                if (grant) {
                        h->lease_id = r->lease_id;
                        h->leader_rev = 0; /* a key of ours belongs to an older lease */
                }
                /* From when the request left: etcd renewed no earlier than that. */
                h->lease_deadline = sent + (uint64_t)r->ttl_sec * USEC_PER_SEC;
                h->last_error[0] = 0;
                arm_expiry(h);
                chain(h, send_read(h));
                return;
        }
        /* TTL 0 (or "not found"): etcd expired the lease, and our key with it. */
        log_notice("ha: etcd says lease %llx has expired; granting a new one",
                   (unsigned long long)h->lease_id);
        h->lease_id = 0;
        h->leader_rev = 0;
        h->lease_deadline = 0;
        chain(h, send_lease(h));
}

static void on_read(const etcd_result *r, void *userdata) {
        ha_op *op = userdata;
        ha_node *h = op->h;
        ha_op_unlink(op);
        ha_op_free(op);

        if (r->error < 0) {
                set_error(h, "reading the leader key", r);
                tick_done(h);
                return;
        }
        ha_learn_leader(h, r->range.n_kvs ? &r->range.kvs[0] : NULL);
        if (r->range.n_kvs == 0 && !h->resigned) {
                chain(h, send_campaign(h));
                return;
        }
        tick_done(h);
}

static void on_campaign(const etcd_result *r, void *userdata) {
        ha_op *op = userdata;
        ha_node *h = op->h;
        ha_op_unlink(op);
        ha_op_free(op);

        if (r->error < 0) {
                set_error(h, "campaign", r);
        } else if (r->succeeded) {
                /* The put is the txn's only write: its revision is the key's
                 * create_revision. */
                h->leader_rev = r->revision;
                set_leader(h, h->node);
        } else if (r->n_responses == 1 && r->responses[0].n_kvs)
                ha_learn_leader(h, &r->responses[0].kvs[0]);
        tick_done(h);
}

static void tick_run(ha_node *h) {
        if (h->ticking || h->resigned)
                return;
        h->ticking = true;
        chain(h, send_lease(h));
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        ha_node *h = userdata;
        (void)sd_event_source_set_time_relative(s, h->interval);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        tick_run(h);
        return 0;
}

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        ha_update_role(userdata);
        return 0;
}

/* ---- life cycle and getters ---- */

int ha_new(sd_event *e, etcd_client *etcd, const ha_options *opt, ha_node **ret) {
        if (!e || !etcd || !opt || !opt->prefix || !opt->node || !*opt->node ||
            opt->lease_ttl_usec < 2 * USEC_PER_SEC || opt->lease_ttl_usec % USEC_PER_SEC)
                return -EINVAL;
        ha_node *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->event = sd_event_ref(e);
        h->etcd = etcd;
        h->ttl_usec = opt->lease_ttl_usec;
        h->margin = ha_safety_margin(h->ttl_usec);
        h->interval = ha_tick_interval(h->ttl_usec);
        h->on_role = opt->on_role;
        h->userdata = opt->userdata;
        h->role = HA_ROLE_STARTING;
        size_t n = strlen(opt->prefix);
        while (n > 0 && opt->prefix[n - 1] == '/')
                n--;
        h->prefix = strndup(opt->prefix, n);
        h->node = strdup(opt->node);
        if (!h->prefix || !h->node || !(h->leader_key = ha_leader_key(h->prefix)) ||
            !(h->acts_prefix = ha_acts_prefix(h->prefix))) {
                ha_free(h);
                return -ENOMEM;
        }
        snprintf(h->reason, sizeof h->reason, "etcd not reached yet");
        int r = sd_event_add_time_relative(e, &h->tick, CLOCK_MONOTONIC, h->interval,
                                           TIMER_ACCURACY_USEC, on_tick, h);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->tick, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(e, &h->expiry, CLOCK_MONOTONIC, USEC_INFINITY,
                                      TIMER_ACCURACY_USEC, on_expiry, h);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->expiry, SD_EVENT_OFF);
        if (r < 0) {
                ha_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

int ha_start(ha_node *h) {
        int r = sd_event_source_set_time_relative(h->tick, h->interval);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->tick, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;
        tick_run(h);
        return 0;
}

ha_node *ha_free(ha_node *h) {
        if (!h)
                return NULL;
        while (h->ops) {
                ha_op *op = h->ops;
                etcd_call *call = op->call;
                ha_op_unlink(op);
                op->call = call;
                ha_op_free(op);
        }
        ha_fenced_free_all(h);
        sd_event_source_disable_unref(h->tick);
        sd_event_source_disable_unref(h->expiry);
        sd_event_unref(h->event);
        free(h->prefix);
        free(h->node);
        free(h->leader_key);
        free(h->acts_prefix);
        free(h->leader);
        free(h->told_leader);
        free(h);
        return NULL;
}

ha_role ha_get_role(const ha_node *h) {
        return h->role;
}

const char *ha_get_leader(const ha_node *h) {
        return h->leader;
}

const char *ha_get_node(const ha_node *h) {
        return h->node;
}

const char *ha_get_reason(const ha_node *h) {
        return h->reason;
}

bool ha_may_act(const ha_node *h) {
        return !h->resigned &&
               ha_decide_role(h->contacted, h->lease_id != 0, h->leader_rev != 0,
                              now_monotonic_usec(), h->lease_deadline, h->margin) == HA_ROLE_LEADER;
}

bool ha_observing(const ha_node *h) {
        return ha_may_act(h) || (h->role == HA_ROLE_LOST && h->was_leader && !h->resigned);
}

static void on_resign(const etcd_result *r, void *userdata) {
        ha_op *op = userdata;
        ha_node *h = op->h;
        ha_op_unlink(op);
        if (r->error >= 0 || r->error == -ENOENT) {
                h->lease_id = 0;
                h->leader_rev = 0;
                h->lease_deadline = 0;
                set_leader(h, NULL);
        }
        if (op->cb.done)
                op->cb.done(r->error == -ENOENT ? 0 : r->error, op->userdata);
        ha_op_free(op);
        ha_update_role(h);
}

int ha_resign(ha_node *h, ha_done_fn cb, void *userdata) {
        if (!h)
                return -EINVAL;
        h->resigned = true;
        (void)sd_event_source_set_enabled(h->tick, SD_EVENT_OFF);
        if (!h->lease_id) {
                ha_update_role(h);
                if (cb)
                        cb(0, userdata);
                return 0;
        }
        ha_op *op = ha_op_new(h);
        if (!op)
                return -ENOMEM;
        op->cb.done = cb;
        op->userdata = userdata;
        return ha_op_submit(op, &(etcd_request){ .kind = ETCD_REQ_LEASE_REVOKE, .lease_id = h->lease_id },
                      on_resign);
}
