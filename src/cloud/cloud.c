/* SPDX-License-Identifier: MIT */
#include "cloud.h"

#include <stdio.h>

#include "edas.h"
#include "util.h"

/* Every in-flight cloud call owns one of these until its callback ran. */
typedef struct cloud_call {
        enum { CALL_ACTIVITY, CALL_ORDER, CALL_ACTION } kind;
        platform platform;
        char *requested_id; /* change order asked about, to fill a missing id */
        union {
                cloud_activity_fn activity;
                cloud_order_fn order;
                cloud_action_fn action;
        } done;
        void *userdata;
} cloud_call;

/* An unusable body becomes a transient error carrying the parser's words. */
static void result_from_parse_error(const api_result *in, const char *what, const char *err,
                                    api_result *out) {
        *out = *in;
        out->outcome = API_TRANSIENT;
        out->json = NULL;
        snprintf(out->code, sizeof out->code, "MalformedResponse");
        snprintf(out->message, sizeof out->message, "%s: %s", what, err ? err : "unreadable");
}

static void cloud_call_free(void *userdata) {
        cloud_call *cc = userdata;
        free(cc->requested_id);
        free(cc);
}

static void on_api_done(const api_result *r, void *userdata) {
        cloud_call *cc = userdata;
        _cleanup_free_ char *err = NULL;
        api_result bad;

        switch (cc->kind) {
        case CALL_ACTIVITY: {
                app_activity a = { .status = CO_UNKNOWN };
                if (r->outcome != API_OK) {
                        cc->done.activity(r, NULL, cc->userdata);
                        break;
                }
                int k = cc->platform == PLATFORM_SAE ? sae_parse_app_status(r->json, &a, &err)
                                                    : edas_parse_change_order_list(r->json, &a, &err);
                if (k < 0) {
                        result_from_parse_error(r, "application status", err, &bad);
                        cc->done.activity(&bad, NULL, cc->userdata);
                } else
                        cc->done.activity(r, &a, cc->userdata);
                app_activity_done(&a);
                break;
        }
        case CALL_ORDER: {
                change_order co = { .status = CO_UNKNOWN, .sub_status = SUB_UNKNOWN, .support_rollback = -1 };
                if (r->outcome != API_OK) {
                        cc->done.order(r, NULL, cc->userdata);
                        break;
                }
                int k = cc->platform == PLATFORM_SAE ? sae_parse_change_order(r->json, &co, &err)
                                                    : edas_parse_change_order(r->json, &co, &err);
                if (k >= 0 && !co.id)
                        co.id = strdup_null(cc->requested_id);
                if (k >= 0 && (!co.id || !streq(co.id, cc->requested_id))) {
                        /* An answer about another order must never drive a decision. */
                        free(err);
                        err = strdup_printf("asked for %s, answer is about %s", cc->requested_id,
                                            strna(co.id));
                        k = -EBADMSG;
                }
                if (k < 0) {
                        result_from_parse_error(r, "change order", err, &bad);
                        cc->done.order(&bad, NULL, cc->userdata);
                } else
                        cc->done.order(r, &co, cc->userdata);
                change_order_done(&co);
                break;
        }
        case CALL_ACTION: {
                _cleanup_free_ char *new_id = NULL;
                if (r->outcome == API_OK) {
                        int k = cc->platform == PLATFORM_SAE
                                        ? sae_parse_action(r->json, &new_id, &err)
                                        : edas_parse_action(r->json, &new_id, &err);
                        /* The call succeeded; an odd body only loses the new id. */
                        if (k < 0)
                                new_id = NULL;
                }
                cc->done.action(r, new_id, cc->userdata);
                break;
        }
        }
        cloud_call_free(cc);
}

static int submit(const cloud_ctx *c, const app_config *app, const api_request *req,
                  api_priority prio, cloud_call *cc, api_call **ret_call) {
        _cleanup_free_ char *base = config_endpoint_url(c->cfg, app);
        if (!base) {
                cloud_call_free(cc);
                return -ENOMEM;
        }
        cc->platform = app->platform;
        api_call *call = NULL;
        int r = api_submit(c->api, base, req, prio, on_api_done, cc, &call);
        if (r < 0) {
                cloud_call_free(cc);
                return r;
        }
        /* a cancelled call (app removed, daemon stopping) frees cc too */
        api_call_set_destroy(call, cloud_call_free);
        if (ret_call)
                *ret_call = call;
        return 0;
}

int cloud_poll_activity(const cloud_ctx *c, const app_config *app, api_priority prio,
                        cloud_activity_fn done, void *userdata, api_call **ret_call) {
        api_request req;
        if (app->platform == PLATFORM_SAE)
                sae_req_describe_app_status(&req, app->app_id);
        else
                edas_req_list_recent_change_orders(&req, app->app_id);
        cloud_call *cc = calloc(1, sizeof *cc);
        if (!cc)
                return -ENOMEM;
        cc->kind = CALL_ACTIVITY;
        cc->done.activity = done;
        cc->userdata = userdata;
        return submit(c, app, &req, prio, cc, ret_call);
}

int cloud_describe(const cloud_ctx *c, const app_config *app, const char *change_order_id,
                   api_priority prio, cloud_order_fn done, void *userdata, api_call **ret_call) {
        api_request req;
        if (app->platform == PLATFORM_SAE)
                sae_req_describe_change_order(&req, change_order_id);
        else
                edas_req_change_order_info(&req, change_order_id);
        cloud_call *cc = calloc(1, sizeof *cc);
        if (!cc)
                return -ENOMEM;
        cc->requested_id = strdup(change_order_id);
        if (!cc->requested_id) {
                free(cc);
                return -ENOMEM;
        }
        cc->kind = CALL_ORDER;
        cc->done.order = done;
        cc->userdata = userdata;
        return submit(c, app, &req, prio, cc, ret_call);
}

static void build_action_request(const app_config *app, rule_action action, const char *id,
                                 api_request *req) {
        if (app->platform == PLATFORM_SAE) {
                if (action == ACTION_ABORT)
                        sae_req_abort(req, id);
                else
                        sae_req_abort_and_rollback(req, id);
        } else {
                if (action == ACTION_ABORT)
                        edas_req_abort(req, id);
                else if (app->edas_kind == EDAS_KIND_K8S)
                        edas_req_abort_and_rollback(req, id);
                else
                        edas_req_rollback(req, id);
        }
}

const char *cloud_action_api_name(const app_config *app, rule_action action) {
        api_request req;
        build_action_request(app, action, "-", &req);
        return req.action;
}

int cloud_act(const cloud_ctx *c, const app_config *app, rule_action action,
              const char *change_order_id, cloud_action_fn done, void *userdata,
              api_call **ret_call) {
        if (action != ACTION_ROLLBACK && action != ACTION_ABORT)
                return -EINVAL;
        api_request req;
        build_action_request(app, action, change_order_id, &req);
        cloud_call *cc = calloc(1, sizeof *cc);
        if (!cc)
                return -ENOMEM;
        cc->kind = CALL_ACTION;
        cc->done.action = done;
        cc->userdata = userdata;
        return submit(c, app, &req, API_PRIO_ACTION, cc, ret_call);
}
