/* SPDX-License-Identifier: MIT */
/* The state file reader: a file on disk that a crash, a full disk or a human
 * with an editor may have mangled. Whatever it accepts must serialise again
 * and read back to the same record (what the daemon saves it reads). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "state_json.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size);
        if (!text)
                return 0;
        app_state s = {};
        char *error = NULL;
        int r = state_from_json(text, &s, &error);
        free(text);
        if (r == -EBADMSG && (!error || !*error))
                abort();
        free(error);
        if (r < 0) {
                app_state_done(&s);
                return 0;
        }

        char *once = state_to_json(&s);
        if (!once) {
                if (errno == ENOMEM) {
                        app_state_done(&s);
                        return 0;
                }
                abort(); /* accepted on read but refused on write */
        }
        app_state back = {};
        error = NULL;
        if (state_from_json(once, &back, &error) < 0)
                abort(); /* written but unreadable */
        free(error);
        char *twice = state_to_json(&back);
        if (twice && strcmp(once, twice) != 0)
                abort(); /* the round trip changed the record */
        (void) state_count_acts_since(&s, 0);
        if (s.n_acts)
                (void) state_find_act(&s, s.acts[0].change_order_id);
        free(once);
        free(twice);
        app_state_done(&back);
        app_state_done(&s);
        return 0;
}
