/* SPDX-License-Identifier: MIT */
/* config_parse on arbitrary bytes: YAML structure, durations, rates, rules,
 * did-you-mean suggestions. Must fail with a message, never crash. */
#include <stdlib.h>

#include "config.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        config *c = NULL;
        char *error = NULL;
        /* The buffer is not NUL-terminated: the parser must honour len. */
        int r = config_parse("fuzz.yaml", (const char *) data, size, &c, &error);
        if (r < 0) {
                /* Every failure says why. */
                if (!error || !*error)
                        abort();
        } else {
                if (!c || error)
                        abort();
                for (size_t i = 0; i < c->n_apps; i++) {
                        const app_config *a = &c->apps[i];
                        (void) app_config_dry_run(c, a, false);
                        free(config_endpoint_url(c, a));
                        if (config_find_app(c, a->name) != a)
                                abort(); /* names are unique */
                }
        }
        free(error);
        config_free(c);
        return 0;
}
