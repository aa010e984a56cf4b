/* SPDX-License-Identifier: MIT */
/* Alibaba Cloud V3 request signature, ACS3-HMAC-SHA256 (SPEC section 5).
 * Pure computation: no sockets, no clocks (date and nonce come in). */
#pragma once

#include <stddef.h>

typedef struct query_param {
        const char *name;
        const char *value;
} query_param;

typedef struct sign_input {
        const char *method;          /* "GET", "PUT", "POST" */
        const char *host;            /* Host header as sent, ":port" when not default */
        const char *path;            /* "/pop/v1/..." (raw, encoded per segment here) */
        const query_param *query;    /* any order; sorted here */
        size_t n_query;
        const char *action;          /* x-acs-action */
        const char *version;         /* x-acs-version */
        const char *date;            /* x-acs-date, "YYYY-MM-DDTHH:MM:SSZ" */
        const char *nonce;           /* x-acs-signature-nonce */
        const char *security_token;  /* x-acs-security-token, NULL unless STS */
        const char *content_type;    /* NULL when no content-type is sent */
        const void *body;
        size_t body_len;
} sign_input;

#define SIGN_MAX_HEADERS 10

typedef struct sign_output {
        /* Every header to send, "name: value", including authorization, host,
         * accept and every x-acs-* header. */
        char *headers[SIGN_MAX_HEADERS];
        size_t n_headers;
        char *canonical_query;  /* the encoded, sorted query string to put after "?" */
        char *canonical_request;/* for tests and --verbose debugging (no secret) */
        char *signed_headers;   /* "host;x-acs-action;..." */
        char signature[65];     /* hex */
} sign_output;

/* Returns 0 or -ENOMEM/-EINVAL. On success out owns its strings. */
int sign_request(const sign_input *in, const char *access_key_id, const char *access_key_secret,
                 sign_output *out);
void sign_output_done(sign_output *out);

/* The same without an allocation in the common case, for the request path:
 * every string points into `buf` (or, for very long input such as a big
 * STS token, into `heap`). Put it on the stack; sign_result_done() wipes
 * what was written (it may hold the STS token) and frees `heap`. */
#define SIGN_RESULT_BUF 6144
typedef struct sign_result {
        const char *headers[SIGN_MAX_HEADERS]; /* as sign_output.headers */
        size_t n_headers;
        const char *canonical_uri;     /* the encoded path, for the URL */
        const char *canonical_query;   /* for after "?"; "" when none */
        const char *signed_headers;
        const char *canonical_request; /* unredacted: holds the STS token */
        char signature[65];
        char *base;                    /* buf or heap */
        size_t used;
        char *heap;
        char buf[SIGN_RESULT_BUF];
} sign_result;
int sign_request_into(const sign_input *in, const char *access_key_id, const char *access_key_secret,
                      sign_result *out);
void sign_result_done(sign_result *out);

/* RFC 3986 strict encoding (unreserved A-Z a-z 0-9 - _ . ~ kept, every other
 * byte %XX upper-case). malloc'ed, NULL on OOM. */
char *acs_percent_encode(const char *s);

/* hex(sha256(data)) into out[65]. */
void sha256_hex(const void *data, size_t len, char out[65]);

/* "YYYY-MM-DDTHH:MM:SSZ" for a UNIX time, into out[21]. */
void acs_format_date(long long unix_seconds, char out[21]);
/* 32 hex chars of fresh randomness into out[33]. Returns 0 or -errno. */
int acs_make_nonce(char out[33]);
