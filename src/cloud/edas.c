/* SPDX-License-Identifier: MIT */
#include "edas.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "json.h"
#include "util.h"

/* A hostile or broken body must not make us allocate without bound. */
#define MAX_PIPELINES 1000


static void fill_request(api_request *req, const char *method, const char *path, const char *action,
                         const char *param, const char *value) {
        *req = (api_request){
                .method = method,
                .path = path,
                .action = action,
                .version = EDAS_VERSION,
                .query = { { .name = param, .value = value } },
                .n_query = 1,
        };
}

void edas_req_list_recent_change_orders(api_request *req, const char *app_id) {
        fill_request(req, "POST", "/pop/v5/changeorder/change_order_list", "ListRecentChangeOrder",
                     "AppId", app_id);
}

void edas_req_change_order_info(api_request *req, const char *change_order_id) {
        fill_request(req, "POST", "/pop/v5/changeorder/change_order_info", "GetChangeOrderInfo",
                     "ChangeOrderId", change_order_id);
}

void edas_req_rollback(api_request *req, const char *change_order_id) {
        fill_request(req, "PUT", "/pop/v5/oam/changeorder/rollback", "RollbackChangeOrder",
                     "ChangeOrderId", change_order_id);
}

void edas_req_abort_and_rollback(api_request *req, const char *change_order_id) {
        fill_request(req, "PUT", "/pop/v5/changeorder/change_order_abort_and_rollback",
                     "AbortAndRollbackChangeOrder", "ChangeOrderId", change_order_id);
}

void edas_req_abort(api_request *req, const char *change_order_id) {
        fill_request(req, "PUT", "/pop/v5/changeorder/change_order_abort", "AbortChangeOrder",
                     "ChangeOrderId", change_order_id);
}

int edas_parse_time(const char *s, int64_t *ret_ms) {
        return json_parse_console_time(s, ret_ms);
}

/* ---- EDAS's own field readers (the generic ones are in json.c) ---- */

/* Numbers (or numeric strings) within the known range; anything else the
 * cloud invents becomes CO_UNKNOWN so nobody downstream shifts a bit mask by
 * it. A word instead of a number is tolerated the same way. */
static int read_status(const cJSON *obj, const char *where, const char *name, int *ret, char **ret_error) {
        const cJSON *v = json_member(obj, name);
        if (!v)
                return 0;
        int64_t n;
        int r = json_get_int64(obj, name, &n);
        if (r == -EBADMSG && cJSON_IsString(v)) {
                int s = co_status_from_string(v->valuestring);
                *ret = s < 0 ? CO_UNKNOWN : s;
                return 1;
        }
        if (r == -EBADMSG)
                return json_field_error(ret_error, where, name, "expected a number");
        if (r > 0)
                *ret = n < 0 || n >= _CO_STATUS_MAX ? CO_UNKNOWN : (int)n;
        return r;
}

static bool edas_status_in_flight(int status) {
        return status == CO_PREPARING || status == CO_EXECUTING || status == CO_WAITING_MANUAL ||
               status == CO_WAITING_AUTO;
}

/* EDAS wraps lists as {"ChangeOrder": [...]}, but a plain array has been
 * seen too. *ret_list is NULL when there is no list at all. */
static int get_wrapped_list(const cJSON *parent, const char *where, const char *name, const char *inner,
                            const cJSON **ret_list, char (*ret_where)[96], char **ret_error) {
        const cJSON *v = json_member(parent, name);
        *ret_list = NULL;
        if (!v)
                return 0;
        if (cJSON_IsArray(v)) {
                snprintf(*ret_where, sizeof *ret_where, "%s%s%s", where, *where ? "." : "", name);
                *ret_list = v;
                return 0;
        }
        if (!cJSON_IsObject(v))
                return json_error(ret_error, "%s%s%s: expected an object", where, *where ? "." : "", name);
        const cJSON *list = json_member(v, inner);
        snprintf(*ret_where, sizeof *ret_where, "%s%s%s.%s", where, *where ? "." : "", name, inner);
        if (list && !cJSON_IsArray(list))
                return json_error(ret_error, "%s: expected a list", *ret_where);
        *ret_list = list;
        return 0;
}

int edas_parse_change_order_list(const cJSON *root, app_activity *out, char **ret_error) {
        if (!cJSON_IsObject(root))
                return json_error(ret_error, "response: expected a JSON object");

        /* An app without orders may come back with the list null or left
         * out: that is "nothing in flight", not a broken answer. */
        const cJSON *list;
        char list_where[96];
        int r = get_wrapped_list(root, "", "ChangeOrderList", "ChangeOrder", &list, &list_where, ret_error);
        if (r < 0)
                return r;

        /* Ties keep list order (EDAS lists newest first). */
        _cleanup_(activity_pick_done) activity_pick pick = ACTIVITY_PICK_INIT;
        size_t i = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, list) {
                char where[128];
                json_where_item(where, sizeof where, list_where, i++);
                if (!cJSON_IsObject(item))
                        return json_error(ret_error, "%s: expected an object", where);

                _cleanup_free_ char *id = NULL;
                int status = CO_UNKNOWN;
                int64_t create_ms = 0;
                if ((r = json_read_string(item, where, "ChangeOrderId", &id, ret_error)) < 0 ||
                    (r = read_status(item, where, "Status", &status, ret_error)) < 0 ||
                    (r = json_read_time(item, where, "CreateTime", &create_ms, ret_error)) < 0)
                        return r;
                if (!id) /* nothing to follow up on */
                        continue;
                if (activity_pick_add(&pick, &id, status, create_ms, edas_status_in_flight(status)) < 0)
                        return -ENOMEM;
        }
        activity_pick_take(&pick, out);
        return 0;
}

static int parse_pipeline(const cJSON *item, const char *where, pipeline *p, char **ret_error) {
        int r;
        if (!cJSON_IsObject(item))
                return json_error(ret_error, "%s: expected an object", where);
        /* EDAS calls it PipelineStatus; take Status if that is all there is. */
        const char *status_name = json_member(item, "PipelineStatus") ? "PipelineStatus" : "Status";
        if ((r = json_read_string(item, where, "PipelineId", &p->id, ret_error)) < 0 ||
            (r = json_read_string(item, where, "PipelineName", &p->name, ret_error)) < 0 ||
            (r = read_status(item, where, status_name, &p->status, ret_error)) < 0 ||
            (r = json_read_time(item, where, "StartTime", &p->start_ms, ret_error)) < 0 ||
            (r = json_read_time(item, where, "UpdateTime", &p->update_ms, ret_error)) < 0)
                return r;
        return 0;
}

static int parse_pipelines(const cJSON *info, const char *info_name, change_order *co, char **ret_error) {
        const cJSON *list;
        char list_where[96];
        int r = get_wrapped_list(info, info_name, "PipelineInfoList", "PipelineInfo", &list, &list_where,
                                 ret_error);
        if (r < 0)
                return r;

        int size = cJSON_GetArraySize(list);
        size_t n = size <= 0 ? 0 : size > MAX_PIPELINES ? MAX_PIPELINES : (size_t)size;
        if (n == 0)
                return 0;
        co->pipelines = calloc(n, sizeof(pipeline));
        if (!co->pipelines)
                return -ENOMEM;

        const cJSON *item;
        cJSON_ArrayForEach(item, list) {
                if (co->n_pipelines >= n)
                        break;
                char where[128];
                json_where_item(where, sizeof where, list_where, co->n_pipelines);
                /* Counted before parsing so change_order_done frees a half-read entry. */
                pipeline *p = &co->pipelines[co->n_pipelines++];
                *p = (pipeline){ .status = CO_UNKNOWN };
                r = parse_pipeline(item, where, p, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int edas_parse_change_order(const cJSON *root, change_order *out, char **ret_error) {
        if (!cJSON_IsObject(root))
                return json_error(ret_error, "response: expected a JSON object");

        const char *info_name = "changeOrderInfo";
        const cJSON *info = json_member(root, info_name);
        if (!info) {
                info_name = "ChangeOrderInfo";
                info = json_member(root, info_name);
        }
        if (!info)
                return json_error(ret_error, "changeOrderInfo: missing");
        if (!cJSON_IsObject(info))
                return json_error(ret_error, "%s: expected an object", info_name);

        _cleanup_(change_order_done) change_order co = {
                .status = CO_UNKNOWN,
                .sub_status = SUB_UNKNOWN,
                .support_rollback = -1,
                .batch_type = BATCH_UNKNOWN,
        };
        _cleanup_free_ char *batch_type_text = NULL;
        bool support_rollback = false;
        int r;

        /* GetChangeOrderInfo is only ever asked about one id, and some EDAS
         * versions leave ChangeOrderId out of the answer. So an absent id is
         * accepted (co.id stays NULL) and the watcher fills in the id it asked
         * for; a present id of the wrong type is still an error. */
        if ((r = json_read_string(info, info_name, "ChangeOrderId", &co.id, ret_error)) < 0 ||
            (r = json_read_string(info, info_name, "AppId", &co.app_id, ret_error)) < 0 ||
            (r = json_read_string(info, info_name, "CoTypeCode", &co.co_type, ret_error)) < 0 ||
            (r = read_status(info, info_name, "Status", &co.status, ret_error)) < 0 ||
            (r = json_read_count(info, info_name, "BatchCount", &co.batch_count, ret_error)) < 0 ||
            (r = json_read_string(info, info_name, "BatchType", &batch_type_text, ret_error)) < 0 ||
            (r = json_read_time(info, info_name, "CreateTime", &co.create_ms, ret_error)) < 0)
                return r;

        r = json_read_bool(info, info_name, "SupportRollback", &support_rollback, ret_error);
        if (r < 0)
                return r;
        if (r > 0)
                co.support_rollback = support_rollback;
        co.batch_type = batch_type_from_string(batch_type_text);

        r = parse_pipelines(info, info_name, &co, ret_error);
        if (r < 0)
                return r;

        /* EDAS has no SubStatus: it reports a stuck batch through the status
         * of the pipeline (batch) that failed while the order as a whole
         * stays "executing". That is exactly SAE's SubStatus 1, so it is
         * mapped here and a rule written as `sub_status: error` means the
         * same thing on both platforms. */
        co.sub_status = co.status == CO_EXECUTING && change_order_has_failed_pipeline(&co) ? SUB_ERROR
                                                                                         : SUB_NORMAL;

        *out = co;
        memset(&co, 0, sizeof co); /* ownership moved to *out */
        return 0;
}

int edas_parse_action(const cJSON *root, char **ret_change_order_id, char **ret_error) {
        if (!cJSON_IsObject(root))
                return json_error(ret_error, "response: expected a JSON object");

        const cJSON *data = json_member(root, "Data");
        if (data && !cJSON_IsObject(data))
                return json_error(ret_error, "Data: expected an object");

        /* The action itself succeeded; the new order's id is a courtesy. */
        _cleanup_free_ char *id = NULL;
        int r = json_read_string(data, "Data", "ChangeOrderId", &id, ret_error);
        if (r == 0)
                r = json_read_string(root, "", "ChangeOrderId", &id, ret_error);
        if (r < 0)
                return r;
        *ret_change_order_id = TAKE_PTR(id);
        return 0;
}
