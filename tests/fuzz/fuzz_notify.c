/* SPDX-License-Identifier: MIT */
/* Two things from outside reach the notification code: a chat platform's
 * answer, and the fields of an event (app names, reasons, change-order ids
 * come from the cloud). Byte 0 picks the platform, bytes 1-2 the HTTP
 * status; the rest is the answer body, and, split at '|', the event's
 * fields. Every answer reads as one of the three verdicts with a
 * terminated detail; every body is valid JSON. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "notify_answer.h"
#include "notify_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 3)
                return 0;
        notify_type t = (notify_type)(data[0] % _NOTIFY_TYPE_MAX);
        long status = (long)(((unsigned)data[1] << 8 | data[2]) % 1000);
        char *body = fuzz_strndup(data + 3, size - 3);
        if (!body)
                return 0;

        char detail[64];
        memset(detail, 0x5a, sizeof detail);
        notify_answer a = notify_classify_answer(t, status, body, detail, sizeof detail);
        if ((a != NOTIFY_ANSWER_OK && a != NOTIFY_ANSWER_RETRY && a != NOTIFY_ANSWER_FAIL) ||
            !memchr(detail, 0, sizeof detail))
                __builtin_trap();

        const char *f[10] = { 0 };
        size_t nf = 0;
        for (char *p = body, *bar; nf < 10 && p; p = bar ? bar + 1 : NULL) {
                bar = strchr(p, '|');
                if (bar)
                        *bar = 0;
                f[nf++] = p;
        }
        notify_event ev = {
                .kind = (notify_kind)(data[1] % _NOTIFY_EV_MAX),
                .app = f[0], .platform = f[1], .region = f[2], .app_id = f[3], .change_order = f[4],
                .rule = f[5], .action = f[6], .result = f[7], .reason = f[8], .rollback_change_order = f[9],
                .time_ms = (int64_t)data[2] * 86400000,
                .has_value = data[2] & 1, .value = data[1], .threshold = data[2],
        };
        const notify_event *evs[7] = { &ev, &ev, &ev, &ev, &ev, &ev, &ev };
        size_t n = t == NOTIFY_WEBHOOK ? 1 : 1 + data[2] % 7;
        char *out = NULL;
        if (notify_format_body(t, evs, n, f[1], 1764623400000, &out) == 0) {
                cJSON *j = cJSON_Parse(out);
                if (!j)
                        __builtin_trap();
                cJSON_Delete(j);
                free(out);
        }
        free(body);
        return 0;
}
