/* SPDX-License-Identifier: MIT */
/* The one shape a release takes inside rollguard, whether it came from SAE or
 * EDAS. sae.c and edas.c fill it; rules.c and actions.c read it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum platform {
        PLATFORM_SAE,
        PLATFORM_EDAS,
} platform;

const char *platform_name(platform p); /* "sae" / "edas" */

/* Change-order (and pipeline) status numbers, as both APIs send them. */
typedef enum co_status {
        CO_UNKNOWN = -1,
        CO_PREPARING = 0,
        CO_EXECUTING = 1,
        CO_SUCCEEDED = 2,
        CO_FAILED = 3,
        CO_TERMINATED = 6,
        CO_PARTIAL = 7, /* EDAS only: partially succeeded */
        CO_WAITING_MANUAL = 8,
        CO_WAITING_AUTO = 9,
        CO_SYSTEM_ERROR = 10,
        CO_PENDING_APPROVAL = 11,
        CO_APPROVED = 12,
        _CO_STATUS_MAX = 13, /* status numbers fit in a 16-bit mask */
} co_status;

/* "executing" for 1, ..., NULL for numbers without a name. */
const char *co_status_name(int status);
/* Accepts the names of SPEC section 6 (plus "partial") and decimal numbers
 * 0..12 with a name. Returns the number or -EINVAL. */
int co_status_from_string(const char *s);
/* Succeeded, failed, terminated, partial, system error: the order is over. */
bool co_status_is_final(int status);

typedef enum sub_status {
        SUB_UNKNOWN = -1,
        SUB_NORMAL = 0,
        SUB_ERROR = 1, /* SAE: an exception happened and it waits for a human */
} sub_status;

typedef enum batch_type {
        BATCH_UNKNOWN = 0,
        BATCH_AUTO,   /* SAE "auto", EDAS "Automatic" */
        BATCH_MANUAL, /* "Manual" */
} batch_type;

/* SAE "auto", EDAS "Automatic", both "Manual" (any case); else BATCH_UNKNOWN. */
batch_type batch_type_from_string(const char *s);

typedef struct pipeline {
        char *id;
        char *name;
        int status;        /* co_status numbers; CO_UNKNOWN when absent */
        int64_t start_ms;  /* ms since epoch, 0 when absent */
        int64_t update_ms; /* ms since epoch, 0 when absent */
} pipeline;

typedef struct change_order {
        char *id;
        char *app_id;
        char *co_type;          /* CoTypeCode, NULL when absent */
        int status;             /* co_status; CO_UNKNOWN when absent */
        int sub_status;         /* sub_status */
        int support_rollback;   /* 1 true, 0 false, -1 absent (treated as false) */
        int batch_count;        /* 0 when absent */
        batch_type batch_type;
        int batch_wait_minutes; /* SAE BatchWaitTime; 0 when absent */
        char *current_pipeline_id;
        int64_t create_ms;      /* ms since epoch, 0 when absent */
        pipeline *pipelines;
        size_t n_pipelines;
} change_order;

/* Frees the members and zeroes the struct; safe on a zeroed struct. */
void change_order_done(change_order *co);
/* Deep copy. Returns 0 or -ENOMEM (dst is then zeroed). */
int change_order_copy(change_order *dst, const change_order *src);

/* CoRollback and CoDeployHistroy (sic) are rollbacks themselves. */
bool co_type_is_rollback(const char *co_type);

/* Latest progress evidence in the snapshot itself: max of CreateTime and
 * every pipeline's StartTime/UpdateTime. 0 when the snapshot has none. */
int64_t change_order_last_progress_ms(const change_order *co);

/* A cheap fingerprint of everything that counts as progress (status,
 * sub-status, current pipeline, each pipeline's status and UpdateTime).
 * The watcher compares it between polls to learn when things last moved. */
uint64_t change_order_progress_hash(const change_order *co);

/* Any pipeline in status failed (3) or system error (10). */
bool change_order_has_failed_pipeline(const change_order *co);
