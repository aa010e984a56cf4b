/* SPDX-License-Identifier: MIT */
#include "change_order.h"

#include <strings.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *platform_name(platform p) {
        switch (p) {
        case PLATFORM_SAE:
                return "sae";
        case PLATFORM_EDAS:
                return "edas";
        }
        return NULL;
}

/* Indexed by status number; the gaps (4, 5) have no meaning in either API. */
static const char *const co_status_names[_CO_STATUS_MAX] = {
        [CO_PREPARING] = "preparing",
        [CO_EXECUTING] = "executing",
        [CO_SUCCEEDED] = "succeeded",
        [CO_FAILED] = "failed",
        [CO_TERMINATED] = "terminated",
        [CO_PARTIAL] = "partial",
        [CO_WAITING_MANUAL] = "waiting_manual",
        [CO_WAITING_AUTO] = "waiting_auto",
        [CO_SYSTEM_ERROR] = "system_error",
        [CO_PENDING_APPROVAL] = "pending_approval",
        [CO_APPROVED] = "approved",
};

const char *co_status_name(int status) {
        if (status < 0 || status >= _CO_STATUS_MAX)
                return NULL;
        return co_status_names[status];
}

int co_status_from_string(const char *s) {
        if (!s || !*s)
                return -EINVAL;

        for (int i = 0; i < _CO_STATUS_MAX; i++)
                if (co_status_names[i] && streq(s, co_status_names[i]))
                        return i;

        /* Plain digits only: "+1", " 1" or "1.0" in a config are typos, not statuses. */
        int v = 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (*p - '0');
                if (v >= _CO_STATUS_MAX)
                        return -EINVAL;
        }
        return co_status_name(v) ? v : -EINVAL;
}

bool co_status_is_final(int status) {
        switch (status) {
        case CO_SUCCEEDED:
        case CO_FAILED:
        case CO_TERMINATED:
        case CO_PARTIAL:
        case CO_SYSTEM_ERROR:
                return true;
        default:
                return false;
        }
}

static void pipeline_done(pipeline *p) {
        free(p->id);
        free(p->name);
        *p = (pipeline){};
}

void change_order_done(change_order *co) {
        if (!co)
                return;
        free(co->id);
        free(co->app_id);
        free(co->co_type);
        free(co->current_pipeline_id);
        for (size_t i = 0; i < co->n_pipelines; i++)
                pipeline_done(&co->pipelines[i]);
        free(co->pipelines);
        *co = (change_order){};
}

/* Copies a string member; a NULL source stays NULL and is not an error. */
static int dup_member(char **dst, const char *src) {
        *dst = NULL;
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

int change_order_copy(change_order *dst, const change_order *src) {
        change_order c = *src;

        /* Detach every pointer first so a partial copy can be freed safely. */
        c.id = c.app_id = c.co_type = c.current_pipeline_id = NULL;
        c.pipelines = NULL;
        c.n_pipelines = 0;

        if (dup_member(&c.id, src->id) < 0 || dup_member(&c.app_id, src->app_id) < 0 ||
            dup_member(&c.co_type, src->co_type) < 0 ||
            dup_member(&c.current_pipeline_id, src->current_pipeline_id) < 0)
                goto fail;

        if (src->n_pipelines > 0) {
                c.pipelines = calloc(src->n_pipelines, sizeof(pipeline));
                if (!c.pipelines)
                        goto fail;
                for (size_t i = 0; i < src->n_pipelines; i++) {
                        const pipeline *sp = &src->pipelines[i];
                        pipeline *dp = &c.pipelines[i];

                        *dp = *sp;
                        dp->id = dp->name = NULL;
                        c.n_pipelines = i + 1;
                        if (dup_member(&dp->id, sp->id) < 0 || dup_member(&dp->name, sp->name) < 0)
                                goto fail;
                }
        }

        *dst = c;
        return 0;

fail:
        change_order_done(&c);
        *dst = (change_order){};
        return -ENOMEM;
}

bool co_type_is_rollback(const char *co_type) {
        if (!co_type)
                return false;
        /* SAE spells it "CoDeployHistroy"; accept the corrected spelling too,
         * in case the API ever fixes it: missing a rollback order here would
         * let rollguard roll back a rollback. */
        return streq(co_type, "CoRollback") || streq(co_type, "CoDeployHistroy") ||
               streq(co_type, "CoDeployHistory");
}

int64_t change_order_last_progress_ms(const change_order *co) {
        int64_t last = co->create_ms > 0 ? co->create_ms : 0;

        for (size_t i = 0; i < co->n_pipelines; i++) {
                const pipeline *p = &co->pipelines[i];
                if (p->start_ms > last)
                        last = p->start_ms;
                if (p->update_ms > last)
                        last = p->update_ms;
        }
        return last;
}

/* 64-bit FNV-1a: not cryptographic, only a change detector between polls. */
#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

static uint64_t fnv_bytes(uint64_t h, const void *data, size_t n) {
        const unsigned char *b = data;
        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= FNV_PRIME;
        }
        return h;
}

static uint64_t fnv_i64(uint64_t h, int64_t v) {
        /* Fixed byte order so the value does not depend on the host. */
        unsigned char b[8];
        for (size_t i = 0; i < sizeof(b); i++)
                b[i] = (unsigned char)((uint64_t)v >> (8 * i));
        return fnv_bytes(h, b, sizeof(b));
}

static uint64_t fnv_str(uint64_t h, const char *s) {
        /* A presence byte and the length keep NULL, "" and shifted
         * boundaries between adjacent strings from hashing alike. */
        if (!s)
                return fnv_bytes(h, "\0", 1);
        size_t n = strlen(s);
        h = fnv_bytes(h, "\1", 1);
        h = fnv_i64(h, (int64_t)n);
        return fnv_bytes(h, s, n);
}

uint64_t change_order_progress_hash(const change_order *co) {
        uint64_t h = FNV_OFFSET;

        h = fnv_i64(h, co->status);
        h = fnv_i64(h, co->sub_status);
        h = fnv_str(h, co->current_pipeline_id);
        h = fnv_i64(h, (int64_t)co->n_pipelines);
        for (size_t i = 0; i < co->n_pipelines; i++) {
                const pipeline *p = &co->pipelines[i];
                h = fnv_str(h, p->id);
                h = fnv_i64(h, p->status);
                h = fnv_i64(h, p->update_ms);
        }
        return h;
}

bool change_order_has_failed_pipeline(const change_order *co) {
        for (size_t i = 0; i < co->n_pipelines; i++)
                if (co->pipelines[i].status == CO_FAILED || co->pipelines[i].status == CO_SYSTEM_ERROR)
                        return true;
        return false;
}

batch_type batch_type_from_string(const char *s) {
        if (!s)
                return BATCH_UNKNOWN;
        if (!strcasecmp(s, "auto") || !strcasecmp(s, "automatic"))
                return BATCH_AUTO;
        if (!strcasecmp(s, "manual"))
                return BATCH_MANUAL;
        return BATCH_UNKNOWN;
}

