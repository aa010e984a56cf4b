/* SPDX-License-Identifier: MIT */
#include "sae.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "json.h"
#include "util.h"

/* A hostile or broken body must not make us allocate without bound. */
#define MAX_PIPELINES 1000

void app_activity_done(app_activity *a) {
        if (!a)
                return;
        free(a->change_order_id);
        *a = (app_activity){ .status = CO_UNKNOWN };
}

int activity_pick_add(activity_pick *p, char **id, int status, int64_t create_ms, bool in_flight) {
        if (create_ms > p->newest_ms) {
                p->newest_ms = create_ms;
                p->newest_status = status;
                if (free_and_strdup(&p->newest_id, *id) < 0)
                        return -ENOMEM;
        }
        if (in_flight && create_ms > p->in_flight_ms) {
                p->in_flight_ms = create_ms;
                p->in_flight_status = status;
                free(p->in_flight_id);
                p->in_flight_id = TAKE_PTR(*id);
        }
        return 0;
}

void activity_pick_take(activity_pick *p, app_activity *out) {
        if (p->in_flight_id)
                *out = (app_activity){ .in_flight = true, .change_order_id = TAKE_PTR(p->in_flight_id),
                                       .status = p->in_flight_status };
        else
                *out = (app_activity){ .in_flight = false, .change_order_id = TAKE_PTR(p->newest_id),
                                       .status = p->newest_status };
        activity_pick_done(p);
}

void activity_pick_done(activity_pick *p) {
        p->in_flight_id = mfree(p->in_flight_id);
        p->newest_id = mfree(p->newest_id);
}

static void fill_request(api_request *req, const char *method, const char *path, const char *action) {
        *req = (api_request){
                .method = method,
                .path = path,
                .action = action,
                .version = SAE_VERSION,
        };
}

static void add_query(api_request *req, const char *name, const char *value) {
        if (req->n_query < API_MAX_QUERY)
                req->query[req->n_query++] = (query_param){ .name = name, .value = value };
}

void sae_req_describe_app_status(api_request *req, const char *app_id) {
        fill_request(req, "GET", "/pop/v1/sam/app/describeApplicationStatus", "DescribeApplicationStatus");
        add_query(req, "AppId", app_id);
}

void sae_req_list_change_orders(api_request *req, const char *app_id) {
        fill_request(req, "GET", "/pop/v1/sam/changeorder/ListChangeOrders", "ListChangeOrders");
        add_query(req, "AppId", app_id);
        add_query(req, "CurrentPage", "1");
        add_query(req, "PageSize", "10");
}

void sae_req_describe_change_order(api_request *req, const char *change_order_id) {
        fill_request(req, "GET", "/pop/v1/sam/changeorder/DescribeChangeOrder", "DescribeChangeOrder");
        add_query(req, "ChangeOrderId", change_order_id);
}

void sae_req_abort_and_rollback(api_request *req, const char *change_order_id) {
        fill_request(req, "PUT", "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder",
                     "AbortAndRollbackChangeOrder");
        add_query(req, "ChangeOrderId", change_order_id);
}

void sae_req_abort(api_request *req, const char *change_order_id) {
        fill_request(req, "PUT", "/pop/v1/sam/changeorder/AbortChangeOrder", "AbortChangeOrder");
        add_query(req, "ChangeOrderId", change_order_id);
}

/* ---- SAE's own field readers (the generic ones are in json.c) ---- */

/* Status numbers outside the known range become CO_UNKNOWN so that nobody
 * downstream shifts a bit mask by a number the cloud made up. */
static int status_from_number(int64_t n) {
        if (n < 0 || n >= _CO_STATUS_MAX)
                return CO_UNKNOWN;
        return (int)n;
}

/* describeApplicationStatus speaks in words where DescribeChangeOrder speaks
 * in numbers. */
static int status_from_sae_word(const char *s) {
        static const struct {
                const char *word;
                int status;
        } words[] = {
                { "RUNNING", CO_EXECUTING },
                { "SUCCESS", CO_SUCCEEDED },
                { "FAIL", CO_FAILED },
                { "FAILED", CO_FAILED },
                { "ABORT", CO_TERMINATED },
                { "TERMINATED", CO_TERMINATED },
                { "WAIT_BATCH_CONFIRM", CO_WAITING_MANUAL },
                { "AUTO_BATCH_WAIT", CO_WAITING_AUTO },
                { "SYSTEM_FAIL", CO_SYSTEM_ERROR },
                { "APPROVING", CO_PENDING_APPROVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (!strcasecmp(s, words[i].word))
                        return words[i].status;
        /* Our own names ("executing"); a word we have never seen is not an
         * error, just a status we cannot act on. */
        int r = co_status_from_string(s);
        return r < 0 ? CO_UNKNOWN : status_from_number(r);
}

static int read_status(const cJSON *obj, const char *where, const char *name, int *ret, char **ret_error) {
        const cJSON *v = json_member(obj, name);
        if (!v)
                return 0;
        if (cJSON_IsString(v)) {
                const char *s = v->valuestring;
                while (*s == ' ')
                        s++;
                if (!*s)
                        return 0;
                int64_t n;
                *ret = parse_int64(s, INT64_MIN, INT64_MAX, &n) >= 0 ? status_from_number(n)
                                                                     : status_from_sae_word(s);
                return 1;
        }
        int64_t n;
        int r = json_get_int64(obj, name, &n);
        if (r == -EBADMSG)
                return json_field_error(ret_error, where, name, "expected a number");
        if (r > 0)
                *ret = status_from_number(n);
        return r;
}

/* DescribeChangeOrder sends 0/1; be ready for the words the app status uses. */
static int read_sub_status(const cJSON *obj, const char *where, const char *name, int *ret, char **ret_error) {
        const cJSON *v = json_member(obj, name);
        if (!v)
                return 0;
        if (cJSON_IsString(v)) {
                if (!strcasecmp(v->valuestring, "RUNNING_BUT_HAS_ERROR")) {
                        *ret = SUB_ERROR;
                        return 1;
                }
                if (!strcasecmp(v->valuestring, "NORMAL")) {
                        *ret = SUB_NORMAL;
                        return 1;
                }
        }
        int64_t n;
        int r = json_get_int64(obj, name, &n);
        if (r == -EBADMSG) {
                if (cJSON_IsString(v)) { /* an unknown word: not ours to judge */
                        *ret = SUB_UNKNOWN;
                        return 1;
                }
                return json_field_error(ret_error, where, name, "expected a number");
        }
        if (r > 0)
                *ret = n == 0 ? SUB_NORMAL : n == 1 ? SUB_ERROR : SUB_UNKNOWN;
        return r;
}

/* Data must be an object; absent or null is as bad as the wrong type. */
static int get_data(const cJSON *root, const cJSON **ret, char **ret_error) {
        if (!cJSON_IsObject(root))
                return json_error(ret_error, "response: expected a JSON object");
        const cJSON *data = json_member(root, "Data");
        if (!data)
                return json_error(ret_error, "Data: missing");
        if (!cJSON_IsObject(data))
                return json_error(ret_error, "Data: expected an object");
        *ret = data;
        return 0;
}

static bool sae_status_in_flight(int status) {
        switch (status) {
        case CO_PREPARING:
        case CO_EXECUTING:
        case CO_WAITING_MANUAL:
        case CO_WAITING_AUTO:
        case CO_PENDING_APPROVAL:
        case CO_APPROVED:
                return true;
        default:
                return false;
        }
}

int sae_parse_app_status(const cJSON *root, app_activity *out, char **ret_error) {
        const cJSON *data;
        int r = get_data(root, &data, ret_error);
        if (r < 0)
                return r;

        _cleanup_free_ char *id = NULL;
        bool running = false;
        int status = CO_UNKNOWN;

        r = json_read_string(data, "Data", "LastChangeOrderId", &id, ret_error);
        if (r < 0)
                return r;
        r = read_status(data, "Data", "LastChangeOrderStatus", &status, ret_error);
        if (r < 0)
                return r;
        r = json_read_bool(data, "Data", "LastChangeOrderRunning", &running, ret_error);
        if (r < 0)
                return r;
        /* The flag is the answer; when a response leaves it out, the status
         * still tells whether something is moving and we would rather look
         * once too often than miss a stuck release. */
        if (r == 0)
                running = sae_status_in_flight(status);

        *out = (app_activity){
                .in_flight = running,
                .change_order_id = TAKE_PTR(id),
                .status = status,
        };
        return 0;
}

int sae_parse_change_order_list(const cJSON *root, app_activity *out, char **ret_error) {
        const cJSON *data;
        int r = get_data(root, &data, ret_error);
        if (r < 0)
                return r;

        const cJSON *list = json_member(data, "ChangeOrderList");
        if (list && !cJSON_IsArray(list))
                return json_error(ret_error, "Data.ChangeOrderList: expected a list");

        /* Ties (or absent CreateTime) keep list order: SAE lists newest first. */
        _cleanup_(activity_pick_done) activity_pick pick = ACTIVITY_PICK_INIT;
        size_t i = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, list) {
                char where[64];
                json_where_item(where, sizeof where, "Data.ChangeOrderList", i++);
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
                if (activity_pick_add(&pick, &id, status, create_ms, sae_status_in_flight(status)) < 0)
                        return -ENOMEM;
        }
        activity_pick_take(&pick, out);
        return 0;
}

static int parse_pipeline(const cJSON *item, const char *where, pipeline *p, char **ret_error) {
        int r;
        if (!cJSON_IsObject(item))
                return json_error(ret_error, "%s: expected an object", where);
        if ((r = json_read_string(item, where, "PipelineId", &p->id, ret_error)) < 0 ||
            (r = json_read_string(item, where, "PipelineName", &p->name, ret_error)) < 0 ||
            (r = read_status(item, where, "Status", &p->status, ret_error)) < 0 ||
            (r = json_read_time(item, where, "StartTime", &p->start_ms, ret_error)) < 0 ||
            (r = json_read_time(item, where, "UpdateTime", &p->update_ms, ret_error)) < 0)
                return r;
        return 0;
}

static int parse_pipelines(const cJSON *data, change_order *co, char **ret_error) {
        const cJSON *list = json_member(data, "Pipelines");
        if (!list)
                return 0;
        if (!cJSON_IsArray(list))
                return json_error(ret_error, "Data.Pipelines: expected a list");

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
                char where[64];
                json_where_item(where, sizeof where, "Data.Pipelines", co->n_pipelines);
                /* Counted before parsing so change_order_done frees a half-read entry. */
                pipeline *p = &co->pipelines[co->n_pipelines++];
                *p = (pipeline){ .status = CO_UNKNOWN };
                int r = parse_pipeline(item, where, p, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int sae_parse_change_order(const cJSON *root, change_order *out, char **ret_error) {
        const cJSON *data;
        int r = get_data(root, &data, ret_error);
        if (r < 0)
                return r;

        _cleanup_(change_order_done) change_order co = {
                .status = CO_UNKNOWN,
                .sub_status = SUB_UNKNOWN,
                .support_rollback = -1,
                .batch_type = BATCH_UNKNOWN,
        };
        _cleanup_free_ char *batch_type_text = NULL;
        bool support_rollback = false;

        r = json_read_string(data, "Data", "ChangeOrderId", &co.id, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return json_error(ret_error, "Data.ChangeOrderId: missing");

        if ((r = json_read_string(data, "Data", "AppId", &co.app_id, ret_error)) < 0 ||
            (r = json_read_string(data, "Data", "CoTypeCode", &co.co_type, ret_error)) < 0 ||
            (r = read_status(data, "Data", "Status", &co.status, ret_error)) < 0 ||
            (r = read_sub_status(data, "Data", "SubStatus", &co.sub_status, ret_error)) < 0 ||
            (r = json_read_count(data, "Data", "BatchCount", &co.batch_count, ret_error)) < 0 ||
            (r = json_read_string(data, "Data", "BatchType", &batch_type_text, ret_error)) < 0 ||
            (r = json_read_count(data, "Data", "BatchWaitTime", &co.batch_wait_minutes, ret_error)) < 0 ||
            (r = json_read_string(data, "Data", "CurrentPipelineId", &co.current_pipeline_id, ret_error)) < 0 ||
            (r = json_read_time(data, "Data", "CreateTime", &co.create_ms, ret_error)) < 0)
                return r;

        r = json_read_bool(data, "Data", "SupportRollback", &support_rollback, ret_error);
        if (r < 0)
                return r;
        if (r > 0)
                co.support_rollback = support_rollback;
        co.batch_type = batch_type_from_string(batch_type_text);

        r = parse_pipelines(data, &co, ret_error);
        if (r < 0)
                return r;

        *out = co;
        memset(&co, 0, sizeof co); /* ownership moved to *out */
        return 0;
}

int sae_parse_action(const cJSON *root, char **ret_change_order_id, char **ret_error) {
        if (!cJSON_IsObject(root))
                return json_error(ret_error, "response: expected a JSON object");
        const cJSON *data = json_member(root, "Data");
        if (data && !cJSON_IsObject(data))
                return json_error(ret_error, "Data: expected an object");

        /* The action itself succeeded; the new order's id is a courtesy. */
        _cleanup_free_ char *id = NULL;
        int r = json_read_string(data, "Data", "ChangeOrderId", &id, ret_error);
        if (r < 0)
                return r;
        *ret_change_order_id = TAKE_PTR(id);
        return 0;
}
