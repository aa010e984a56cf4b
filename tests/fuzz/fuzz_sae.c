/* SPDX-License-Identifier: MIT */
/* Every SAE response parser on whatever JSON the bytes make, then the
 * change-order helpers rules.c relies on. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>

#include "change_order.h"
#include "fuzz.h"
#include "sae.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        cJSON *root = cJSON_ParseWithLength((const char *) data, size);
        if (!root)
                return 0;
        char *error = NULL;
        int r;

        app_activity act = {};
        r = sae_parse_app_status(root, &act, &error);
        error = fuzz_check_result(r, error);
        app_activity_done(&act);

        act = (app_activity){};
        r = sae_parse_change_order_list(root, &act, &error);
        error = fuzz_check_result(r, error);
        app_activity_done(&act);

        change_order co = {};
        r = sae_parse_change_order(root, &co, &error);
        if (r == 0)
                fuzz_check_change_order(&co);
        error = fuzz_check_result(r, error);
        change_order_done(&co);

        char *id = NULL;
        r = sae_parse_action(root, &id, &error);
        error = fuzz_check_result(r, error);
        free(id);

        cJSON_Delete(root);
        return 0;
}
