/* SPDX-License-Identifier: MIT */
/* One asynchronous verb per thing the watcher and actions need from the
 * cloud, whatever the platform: "what is this app doing", "describe this
 * order", "act on this order". Builds with sae/edas, sends with api, parses.
 * A response that cannot be parsed is reported as API_TRANSIENT with the
 * parser's message: the answer was unusable, the next poll may be better. */
#pragma once

#include "api.h"
#include "config.h"
#include "rules.h"
#include "sae.h"

typedef struct cloud_ctx {
        api_client *api;
        const config *cfg;
} cloud_ctx;

typedef void (*cloud_activity_fn)(const api_result *r, const app_activity *a, void *userdata);
typedef void (*cloud_order_fn)(const api_result *r, const change_order *co, void *userdata);
typedef void (*cloud_action_fn)(const api_result *r, const char *new_change_order_id,
                                void *userdata);

int cloud_poll_activity(const cloud_ctx *c, const app_config *app, api_priority prio,
                        cloud_activity_fn done, void *userdata, api_call **ret_call);
int cloud_describe(const cloud_ctx *c, const app_config *app, const char *change_order_id,
                   api_priority prio, cloud_order_fn done, void *userdata, api_call **ret_call);
/* ACTION_ROLLBACK or ACTION_ABORT. */
int cloud_act(const cloud_ctx *c, const app_config *app, rule_action action,
              const char *change_order_id, cloud_action_fn done, void *userdata,
              api_call **ret_call);

/* The API action name a call would use, for logs ("AbortAndRollbackChangeOrder"). */
const char *cloud_action_api_name(const app_config *app, rule_action action);
