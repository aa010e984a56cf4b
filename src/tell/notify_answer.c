/* SPDX-License-Identifier: MIT */
#include "notify_answer.h"

#include <cjson/cJSON.h>
#include <stdio.h>

#include "util.h"

notify_answer notify_classify_answer(notify_type t, long status, const char *body, char *detail,
                                     size_t detail_sz) {
        char dummy[1];
        if (!detail || detail_sz == 0) {
                detail = dummy;
                detail_sz = sizeof dummy;
        }
        if (status == 0) {
                snprintf(detail, detail_sz, "no answer");
                return NOTIFY_ANSWER_RETRY;
        }
        if (status >= 500 || status == 429 || status == 408) {
                snprintf(detail, detail_sz, "HTTP %ld", status);
                return NOTIFY_ANSWER_RETRY;
        }
        if (status < 200 || status >= 300) {
                snprintf(detail, detail_sz, "HTTP %ld", status);
                return NOTIFY_ANSWER_FAIL;
        }
        if (t == NOTIFY_SLACK) {
                /* Slack answers plain "ok", or an error word such as "invalid_payload" */
                const char *b = body ? body : "";
                if (streq(b, "ok")) {
                        snprintf(detail, detail_sz, "HTTP %ld ok", status);
                        return NOTIFY_ANSWER_OK;
                }
                snprintf(detail, detail_sz, "HTTP %ld %.80s", status, b);
                return NOTIFY_ANSWER_FAIL;
        }
        if (t == NOTIFY_WEBHOOK) {
                snprintf(detail, detail_sz, "HTTP %ld", status);
                return NOTIFY_ANSWER_OK;
        }

        cJSON *j = body ? cJSON_Parse(body) : NULL;
        const char *code_key = t == NOTIFY_FEISHU ? "code" : "errcode";
        const char *msg_key = t == NOTIFY_FEISHU ? "msg" : "errmsg";
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, code_key);
        /* old Feishu bot endpoints answer {"StatusCode":0,"StatusMessage":"success"} */
        if (!code && t == NOTIFY_FEISHU) {
                code = cJSON_GetObjectItemCaseSensitive(j, "StatusCode");
                msg_key = "StatusMessage";
        }
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, msg_key);
        const char *m = cJSON_IsString(msg) ? msg->valuestring : "";
        notify_answer a;
        if (!cJSON_IsNumber(code)) {
                snprintf(detail, detail_sz, "HTTP %ld, answer without %s", status, code_key);
                a = NOTIFY_ANSWER_FAIL;
        } else {
                long c = (long)code->valuedouble;
                snprintf(detail, detail_sz, "HTTP %ld, %s %ld %.80s", status, code_key, c, m);
                if (c == 0)
                        a = NOTIFY_ANSWER_OK;
                /* the platforms' "too fast" codes: DingTalk 130101, WeCom
                 * 45009, Feishu 11232: later is fine, never is not */
                else if (c == 130101 || c == 45009 || c == 11232)
                        a = NOTIFY_ANSWER_RETRY;
                else
                        a = NOTIFY_ANSWER_FAIL;
        }
        cJSON_Delete(j);
        return a;
}
