/* SPDX-License-Identifier: MIT */
/* SAE (Serverless App Engine, version 2019-05-06): request building and
 * tolerant response parsing (SPEC 4). No I/O: api.c sends, watcher.c drives. */
#pragma once

#include <cjson/cJSON.h>

#include "api.h"
#include "change_order.h"

#define SAE_VERSION "2019-05-06"

/* What the cheap "is anything happening" call tells us, for both platforms. */
typedef struct app_activity {
        bool in_flight;          /* a change order is running / waiting */
        char *change_order_id;   /* the latest order, NULL when none */
        int status;              /* its status when the answer says, else CO_UNKNOWN */
} app_activity;
void app_activity_done(app_activity *a);

/* What a list of an app's change orders points at, for both platforms: the
 * newest order in flight, else the newest of all. "Newest" is by CreateTime;
 * ties (and absent times) keep list order, as both list newest first. */
typedef struct activity_pick {
        char *in_flight_id, *newest_id;
        int in_flight_status, newest_status;
        int64_t in_flight_ms, newest_ms;
} activity_pick;
#define ACTIVITY_PICK_INIT                                                                          \
        { .in_flight_status = CO_UNKNOWN, .newest_status = CO_UNKNOWN, .in_flight_ms = INT64_MIN, \
          .newest_ms = INT64_MIN }
/* Takes *id when it is kept. -ENOMEM. */
int activity_pick_add(activity_pick *p, char **id, int status, int64_t create_ms, bool in_flight);
/* Hands the pick to *out and empties p. */
void activity_pick_take(activity_pick *p, app_activity *out);
void activity_pick_done(activity_pick *p);

/* Builders fill *req; strings point into the arguments (keep them alive). */
void sae_req_describe_app_status(api_request *req, const char *app_id);
void sae_req_list_change_orders(api_request *req, const char *app_id);
void sae_req_describe_change_order(api_request *req, const char *change_order_id);
void sae_req_abort_and_rollback(api_request *req, const char *change_order_id);
void sae_req_abort(api_request *req, const char *change_order_id);

/* Parsers take the whole response document. They return 0, or -EBADMSG with
 * *ret_error (malloc'ed) naming the missing/odd field, e.g.
 * "Data.LastChangeOrderRunning: expected a boolean". Absent optional fields
 * are fine; unknown fields are ignored; Code may be a number or a string. */
int sae_parse_app_status(const cJSON *root, app_activity *out, char **ret_error);
int sae_parse_change_order_list(const cJSON *root, app_activity *out, char **ret_error);
int sae_parse_change_order(const cJSON *root, change_order *out, char **ret_error);
/* AbortAndRollback / Abort: the new (rollback) change order id, may be NULL. */
int sae_parse_action(const cJSON *root, char **ret_change_order_id, char **ret_error);
