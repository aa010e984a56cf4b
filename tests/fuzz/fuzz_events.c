/* SPDX-License-Identifier: MIT */
/* The CloudEvents parser behind POST /api/v1/events: bytes a peer with the
 * token sends (a leaked token must not turn into a crash), matched against
 * app ids of every shape the matcher treats apart (token-only, with other
 * characters, repeated), and the recent-event memory fed with what it
 * parsed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "events_parse.h"
#include "fuzz.h"

static const char *const ids[] = {
        "7171a6ca-d1cd-4928-8642-7d5cfe690001", "a", "cn-hangzhou:shop.v2", "7171a6ca-d1cd-4928-8642-7d5cfe690001",
        "", NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        events_ids *m = NULL;
        if (events_ids_new(ids, sizeof ids / sizeof ids[0], &m) < 0)
                return 0;
        events_seen *seen = events_seen_new(4);
        cloud_event_batch b = { 0 };
        char *error = NULL;
        /* Not NUL-terminated: the parser must honour len. */
        int r = events_parse((const char *)data, size, m, &b, &error);
        if (r == -EBADMSG && (!error || !*error))
                abort();
        if (r == 0) {
                if (error)
                        abort();
                for (size_t i = 0; i < b.n_events; i++) {
                        const cloud_event *e = &b.events[i];
                        if (!e->id || !*e->id || !e->source || !e->type)
                                abort();
                        for (size_t k = 0; k < e->n_apps; k++)
                                if (e->apps[k] >= sizeof ids / sizeof ids[0] || (k > 0 && e->apps[k] <= e->apps[k - 1]))
                                        abort();
                        if (seen)
                                (void)events_seen_check(seen, e->source, e->id);
                }
        }
        free(error);
        cloud_event_batch_done(&b);
        events_seen_free(seen);
        events_ids_free(m);
        return 0;
}
