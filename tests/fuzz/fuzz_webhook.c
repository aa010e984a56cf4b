/* SPDX-License-Identifier: MIT */
/* The Alertmanager webhook parser: the bytes an unauthenticated-until-checked
 * network peer controls (the token is checked first, but a leaked token must
 * not turn into a crash). Also the RFC 3339 reader on its own. */
#include <errno.h>
#include <stdlib.h>

#include "fuzz.h"
#include "util.h"
#include "webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size);
        if (!text)
                return 0;
        int64_t ms;
        (void) webhook_parse_time(text, &ms);
        free(text);

        webhook_batch b = {};
        char *error = NULL;
        /* Not NUL-terminated: the parser must honour len (alerts.c hands it
         * the body exactly as received). */
        int r = webhook_parse((const char *) data, size, &b, &error);
        if (r == -EBADMSG && (!error || !*error))
                abort();
        if (r == 0) {
                if (error)
                        abort();
                for (size_t i = 0; i < b.n_alerts; i++)
                        (void) b.alerts[i].alert.ends_at_ms;
        }
        free(error);
        webhook_batch_done(&b);
        return 0;
}
