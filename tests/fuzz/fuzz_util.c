/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "change_order.h"
#include "fuzz.h"
#include "util.h"

char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                return NULL;
        if (size)
                memcpy(s, data, size);
        s[size] = 0;
        return s;
}

char *fuzz_check_result(int r, char *error) {
        if (r == -EBADMSG && (!error || !*error))
                abort();
        if (r == 0 && error)
                abort();
        return mfree(error);
}

void fuzz_check_change_order(const change_order *co) {
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
