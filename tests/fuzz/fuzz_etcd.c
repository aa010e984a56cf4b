/* SPDX-License-Identifier: MIT */
/* Whatever an etcd endpoint (or something pretending to be one) answers,
 * through every answer reader, then the fence classifier on txn answers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_proto.h"
#include "fuzz.h"
#include "ha_core.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *body = fuzz_strndup(data, size);
        if (!body)
                return 0;
        for (int k = 0; k < _ETCD_REQ_MAX; k++) {
                etcd_result r;
                int e = etcd_parse_response((etcd_request_kind)k, size % 2 ? 200 : 404, body, &r);
                if (e != r.error || e > 0 || (e < 0 && !r.error_text && e != -ENOMEM))
                        abort();
                for (size_t i = 0; i < r.range.n_kvs; i++)
                        if (!r.range.kvs[i].key || !r.range.kvs[i].value ||
                            r.range.kvs[i].value[r.range.kvs[i].value_len] != 0 ||
                            r.range.kvs[i].value_len > size)
                                abort();
                if (k == ETCD_REQ_TXN) {
                        const char *record, *leader;
                        ha_fence_result f = ha_fence_classify(&r, &record, &leader);
                        if (f == HA_FENCED_OK && (e < 0 || !r.succeeded))
                                abort();
                        if (f == HA_REFUSED_ALREADY_ACTED && !record)
                                abort();
                }
                etcd_result_done(&r);
        }
        free(body);
        return 0;
}
