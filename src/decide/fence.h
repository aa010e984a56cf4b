/* SPDX-License-Identifier: MIT */
/* Several hosts, one actor: the daemon's side of src/ha (issue 15). It owns
 * the etcd client and the ha_node built from cfg->ha, and gives
 *  - the watcher its coord: only the leader polls and acts; a leader that
 *    lost etcd keeps polling without acting; standbys poll nothing. On
 *    becoming leader it first reads <prefix>/acts/ and records every order
 *    found there as acted on, then lets the polls start at once;
 *  - the actions their hooks: pre_send is the fencing txn (only FENCED_OK
 *    lets the call go), post_record writes the result into the act key;
 *  - /metrics rollguard_ha_role{role} and rollguard_ha_leader.
 * Above the watcher and actions (main wires it); they know nothing of it. */
#pragma once

#include <systemd/sd-event.h>

#include "actions.h"
#include "config.h"
#include "http.h"
#include "metrics.h"
#include "state.h"
#include "watcher.h"

typedef struct fence fence;

/* cfg->ha.etcd must be set; nothing is kept of cfg. Reads the password
 * (ha.password_file, or the systemd credential etcd-password) and checks
 * that the TLS files can be read; a file not readable where the config
 * says is looked up in $CREDENTIALS_DIRECTORY under its base name. m may be
 * NULL. Nothing talks to etcd before fence_start. 0, or negative with
 * *ret_error (malloc'ed). */
int fence_new(sd_event *e, http_client *http, const config *cfg, metrics_registry *m, fence **ret,
              char **ret_error);
/* Cancels everything in flight (no callback runs). Before http_client_free,
 * after watcher_free. */
fence *fence_free(fence *f);

/* For watcher_options.coord and .action_hooks; valid as long as f. */
const watcher_coord *fence_watcher_coord(fence *f);
const action_hooks *fence_action_hooks(fence *f);
/* The hooks one by one (userdata: the fence), for an owner that combines
 * them with other hooks in one action_hooks. */
int fence_pre_send(void *userdata, action_run *run, const char *app, const change_order *co, const rule *r);
void fence_gate_cancel(void *userdata, action_run *run);
void fence_post_record(void *userdata, const action_outcome *o);

/* Campaigns; w is told of every change (watcher_coord_changed) and gets the
 * orders other nodes acted on (watcher_mark_acted). w stays valid until
 * fence_free: free the watcher first (its runs cancel their gates here). */
int fence_start(fence *f, watcher *w);

/* SIGTERM, after the drain: revokes the lease so a standby takes over at
 * once. done runs exactly once, from the loop, when etcd answered or
 * after a bounded wait. */
int fence_resign(fence *f, void (*done)(void *userdata), void *userdata);

/* ---- pure: the JSON kept in acts/<change order> (fence_record.c) ---- */

/* The intent: {"app","rule","action","when_ms"}. NULL on OOM. */
char *fence_intent_json(const char *app, const char *rule_name, rule_action action, int64_t now_ms);
/* The result: {"result","detail","rollback_order_id"} (absent ones left out). */
char *fence_result_json(const action_outcome *o);

typedef struct fence_act {
        char *app;      /* from the intent; NULL when the record has none */
        char *node;     /* who fenced it */
        act_record rec; /* the order as this node keeps it: the result, or
                         * ACT_UNCONFIRMED when no result was written */
} fence_act;
/* acts/<co_id>'s record -> fence_act. Tolerant of missing fields (a rule
 * or action it does not know becomes "?" / rollback); -EBADMSG when record
 * is not a JSON object, -ENOMEM. now_ms stands in for absent times. */
int fence_act_parse(const char *co_id, const char *record, int64_t now_ms, fence_act *ret);
void fence_act_done(fence_act *a);
