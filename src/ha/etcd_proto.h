/* SPDX-License-Identifier: MIT */
/* etcd v3 HTTP/JSON gateway messages (etcd 3.4: /v3/...): building request
 * bodies and reading answers. Pure: no I/O. The gateway speaks protobuf
 * JSON: keys and values are base64, int64 fields are decimal strings, and
 * fields at their default (false, 0, empty) are left out of answers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum etcd_request_kind {
        ETCD_REQ_AUTHENTICATE,
        ETCD_REQ_LEASE_GRANT,
        ETCD_REQ_LEASE_KEEPALIVE,
        ETCD_REQ_LEASE_REVOKE,
        ETCD_REQ_RANGE,
        ETCD_REQ_PUT,
        ETCD_REQ_DELETE_RANGE,
        ETCD_REQ_TXN,
        _ETCD_REQ_MAX,
} etcd_request_kind;

typedef enum etcd_op_type {
        ETCD_OP_RANGE,
        ETCD_OP_PUT,
        ETCD_OP_DELETE_RANGE,
} etcd_op_type;

/* One key operation: a request of its own or one step of a txn. */
typedef struct etcd_op {
        etcd_op_type type;
        const char *key;
        const char *range_end; /* NULL: just `key` (see etcd_prefix_end) */
        const char *value;     /* PUT */
        size_t value_len;
        int64_t lease;         /* PUT: 0 = none */
} etcd_op;

typedef enum etcd_cmp_target {
        ETCD_CMP_VERSION,
        ETCD_CMP_CREATE,
        ETCD_CMP_MOD,
        ETCD_CMP_VALUE,
        ETCD_CMP_LEASE,
} etcd_cmp_target;

typedef enum etcd_cmp_result {
        ETCD_CMP_EQUAL,
        ETCD_CMP_GREATER,
        ETCD_CMP_LESS,
        ETCD_CMP_NOT_EQUAL,
} etcd_cmp_result;

typedef struct etcd_compare {
        const char *key;
        etcd_cmp_target target;
        etcd_cmp_result result;
        int64_t number;    /* VERSION/CREATE/MOD revision, LEASE id */
        const char *value; /* VALUE */
        size_t value_len;
} etcd_compare;

/* Everything any request needs; each kind reads its own fields. */
typedef struct etcd_request {
        etcd_request_kind kind;
        int64_t ttl_sec;  /* LEASE_GRANT */
        int64_t lease_id; /* LEASE_KEEPALIVE / LEASE_REVOKE */
        etcd_op op;       /* RANGE / PUT / DELETE_RANGE (op.type is implied) */
        const etcd_compare *compare; /* TXN */
        size_t n_compare;
        const etcd_op *success;
        size_t n_success;
        const etcd_op *failure;
        size_t n_failure;
        const char *name;     /* AUTHENTICATE */
        const char *password;
} etcd_request;

typedef struct etcd_kv {
        char *key;
        char *value; /* NUL-terminated; value_len excludes the NUL */
        size_t value_len;
        int64_t create_revision;
        int64_t mod_revision;
        int64_t version;
        int64_t lease;
} etcd_kv;

typedef struct etcd_op_result {
        etcd_op_type type;
        etcd_kv *kvs; /* RANGE */
        size_t n_kvs;
        int64_t count; /* RANGE: keys matched; DELETE_RANGE: keys deleted */
} etcd_op_result;

/* What an answer said. error is 0 or a negative errno:
 *   -EIO        no endpoint answered (transport; see maybe_delivered)
 *   -EPROTO     the answer was not the gateway JSON we expect
 *   -ENOENT     etcd: not found (e.g. the lease is gone)
 *   -EACCES     etcd: authentication or permission failure
 *   -EAGAIN     etcd: unavailable (no leader, request timed out)
 *   -EINVAL     etcd: invalid argument
 *   -EREMOTEIO  any other error etcd reported */
typedef struct etcd_result {
        int error;
        char *error_text;      /* etcd's or curl's words, for logs; no secrets */
        int grpc_code;         /* etcd's error code, 0 when none */
        long http_status;
        bool maybe_delivered;  /* a write failed in transit: it may have been applied */
        int64_t revision;      /* header.revision */
        int64_t lease_id;      /* LEASE_GRANT / LEASE_KEEPALIVE */
        int64_t ttl_sec;       /* LEASE_GRANT / LEASE_KEEPALIVE; 0: the lease is gone */
        bool succeeded;        /* TXN */
        etcd_op_result *responses; /* TXN: one per op of the branch taken */
        size_t n_responses;
        etcd_op_result range;  /* RANGE (kvs, count), DELETE_RANGE (count) */
        char *token;           /* AUTHENTICATE; a secret: wiped by etcd_result_done */
} etcd_result;

const char *etcd_request_path(etcd_request_kind kind);
/* Only reads are safe to send again to another endpoint after a transfer
 * that may have reached the server. */
bool etcd_request_idempotent(etcd_request_kind kind);

/* The JSON body for req. *ret malloc'ed (AUTHENTICATE: holds the password;
 * free with free_secret). 0, -EINVAL (missing key/kind) or -ENOMEM. */
int etcd_build_request(const etcd_request *req, char **ret);

/* Reads the answer to a request of `kind`: HTTP status and body (may be
 * NULL/""). Always fills *ret (error set on failure) and returns ret->error. */
int etcd_parse_response(etcd_request_kind kind, long http_status, const char *body, etcd_result *ret);
void etcd_result_done(etcd_result *r);

/* The range_end that selects every key starting with prefix (the prefix
 * with its last byte incremented, trailing 0xff bytes dropped). NULL on
 * OOM, or (errno EINVAL) for "" or all-0xff prefixes, which have no end. */
char *etcd_prefix_end(const char *prefix);

/* Base64 (standard alphabet, padded) via OpenSSL. 0 or -ENOMEM/-EINVAL. */
int etcd_b64_encode(const void *p, size_t n, char **ret);
/* *ret is NUL-terminated; *ret_len excludes the NUL. */
int etcd_b64_decode(const char *s, char **ret, size_t *ret_len);
