/* SPDX-License-Identifier: MIT */
/* EDAS (version 2017-08-01): request building and tolerant response parsing
 * onto the same change_order and app_activity SAE uses (SPEC 4). No I/O. */
#pragma once

#include <cjson/cJSON.h>

#include "api.h"
#include "change_order.h"
#include "sae.h" /* app_activity */

#define EDAS_VERSION "2017-08-01"

void edas_req_list_recent_change_orders(api_request *req, const char *app_id);
void edas_req_change_order_info(api_request *req, const char *change_order_id);
void edas_req_rollback(api_request *req, const char *change_order_id);           /* ECS apps */
void edas_req_abort_and_rollback(api_request *req, const char *change_order_id); /* k8s apps */
void edas_req_abort(api_request *req, const char *change_order_id);

/* ListRecentChangeOrder: picks the newest order that is still in flight
 * (by CreateTime), else reports the newest order as not in flight. */
int edas_parse_change_order_list(const cJSON *root, app_activity *out, char **ret_error);
/* GetChangeOrderInfo: changeOrderInfo with PipelineInfoList.PipelineInfo[]
 * (PipelineStatus, StartTime/UpdateTime as strings or numbers). */
int edas_parse_change_order(const cJSON *root, change_order *out, char **ret_error);
int edas_parse_action(const cJSON *root, char **ret_change_order_id, char **ret_error);

/* "YYYY-MM-DD HH:MM:SS" (EDAS CreateTime, read as UTC+8 China Standard Time
 * as the console shows it) -> ms since epoch; -EINVAL when malformed. */
int edas_parse_time(const char *s, int64_t *ret_ms);
