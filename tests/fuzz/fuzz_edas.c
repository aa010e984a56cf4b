/* SPDX-License-Identifier: MIT */
/* Every EDAS response parser on whatever JSON the bytes make, and the
 * "YYYY-MM-DD HH:MM:SS" time reader on the raw bytes. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>

#include "change_order.h"
#include "edas.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size);
        if (!text)
                return 0;
        int64_t ms;
        (void) edas_parse_time(text, &ms);
        free(text);

        cJSON *root = cJSON_ParseWithLength((const char *) data, size);
        if (!root)
                return 0;
        char *error = NULL;
        int r;

        app_activity act = {};
        r = edas_parse_change_order_list(root, &act, &error);
        error = fuzz_check_result(r, error);
        app_activity_done(&act);

        change_order co = {};
        r = edas_parse_change_order(root, &co, &error);
        if (r == 0)
                fuzz_check_change_order(&co);
        error = fuzz_check_result(r, error);
        change_order_done(&co);

        char *id = NULL;
        r = edas_parse_action(root, &id, &error);
        error = fuzz_check_result(r, error);
        free(id);

        cJSON_Delete(root);
        return 0;
}
