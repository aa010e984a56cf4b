/* SPDX-License-Identifier: MIT */
/* api_classify on any status and body: the first two bytes pick the HTTP
 * status, the rest is the body as the server sent it (not NUL-terminated). */
#include <cjson/cJSON.h>
#include <string.h>

#include "api.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 2)
                return 0;
        long status = (long) (((unsigned) data[0] << 8 | data[1]) % 1000);
        const char *body = (const char *) data + 2;
        size_t len = size - 2;

        api_result r;
        memset(&r, 0xa5, sizeof r); /* classify must fill every field it promises */
        api_classify(status, body, len, &r, NULL);
        if (memchr(r.code, 0, sizeof r.code) == NULL || memchr(r.message, 0, sizeof r.message) == NULL ||
            memchr(r.request_id, 0, sizeof r.request_id) == NULL)
                __builtin_trap();

        cJSON *json = NULL;
        api_classify(status, body, len, &r, &json);
        cJSON_Delete(json);
        return 0;
}
