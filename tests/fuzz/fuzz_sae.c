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

/* A refusal must say why (the message ends up in a log line). */
static char *check_result(int r, char *error) {
        if (r == -EBADMSG && (!error || !*error))
                abort();
        if (r == 0 && error)
                abort();
        return mfree(error);
}

static void check_change_order(const change_order *co) {
        (void) change_order_last_progress_ms(co);
        (void) change_order_has_failed_pipeline(co);
        (void) co_type_is_rollback(co->co_type);
        (void) co_status_name(co->status);
        change_order copy = {};
        if (change_order_copy(&copy, co) == 0) {
                if (change_order_progress_hash(&copy) != change_order_progress_hash(co))
                        abort();
                change_order_done(&copy);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        cJSON *root = cJSON_ParseWithLength((const char *) data, size);
        if (!root)
                return 0;
        char *error = NULL;
        int r;

        app_activity act = {};
        r = sae_parse_app_status(root, &act, &error);
        error = check_result(r, error);
        app_activity_done(&act);

        act = (app_activity){};
        r = sae_parse_change_order_list(root, &act, &error);
        error = check_result(r, error);
        app_activity_done(&act);

        change_order co = {};
        r = sae_parse_change_order(root, &co, &error);
        if (r == 0)
                check_change_order(&co);
        error = check_result(r, error);
        change_order_done(&co);

        char *id = NULL;
        r = sae_parse_action(root, &id, &error);
        error = check_result(r, error);
        free(id);

        cJSON_Delete(root);
        return 0;
}
