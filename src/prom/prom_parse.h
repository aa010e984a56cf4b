/* SPDX-License-Identifier: MIT */
/* What a Prometheus HTTP API /api/v1/query answer means for a rule: one
 * finite number, or "inconclusive" with the reason an operator needs. Pure:
 * no I/O, no clock. Self-hosted Prometheus and Alibaba Cloud ARMS answer in
 * the same format (status, errorType, error, data.resultType, data.result
 * with values as [unix_seconds, "string"]). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a query gave no usable number. PROM_OK is the only verdict a rule may
 * act on; every other one never satisfies a condition. The order is the
 * order of the stats array in prom.h; names are metric label values. */
typedef enum prom_reason {
        PROM_OK = 0,
        PROM_EMPTY,         /* a vector with no sample */
        PROM_NOT_FINITE,    /* NaN or +-Inf (0/0 when nothing was counted) */
        PROM_MANY_SERIES,   /* a vector with more than one sample */
        PROM_WRONG_TYPE,    /* matrix, string, native histogram */
        PROM_QUERY_ERROR,   /* status "error": the server's errorType and text */
        PROM_HTTP_STATUS,   /* non-2xx without an API error body (proxy, auth) */
        PROM_MALFORMED,     /* not the API's JSON */
        PROM_UNREACHABLE,   /* no answer at all (set by prom.c, never by the parser) */
        _PROM_REASON_MAX,
} prom_reason;

/* "ok", "empty", "not_finite", "many_series", "wrong_type", "query_error",
 * "http_status", "malformed", "unreachable"; NULL out of range. */
const char *prom_reason_name(prom_reason r);

/* Long enough for the server's error text about a long query. */
#define PROM_TEXT_MAX 512

typedef struct prom_verdict {
        prom_reason reason;
        double value;          /* valid when reason == PROM_OK */
        double sample_time;    /* the sample's timestamp (unix seconds), 0 if none */
        size_t n_series;       /* samples in a vector answer */
        long http_status;      /* 0 when no answer came */
        uint64_t elapsed_usec; /* filled by prom.c */
        /* One line, printable (control characters replaced), "" when ok:
         * what to log. It may quote server text, never request headers.
         * The same cause gives the same text (no timings in it), so "log
         * once per change" can compare reason and text. */
        char text[PROM_TEXT_MAX];
} prom_verdict;

/* Reads an answer. An API error body ("status":"error") wins over the HTTP
 * status (Prometheus sends 400/422/503 with one); a 2xx body that is not the
 * API's JSON is PROM_MALFORMED. body need not be NUL-terminated. Never fails:
 * anything unusable is an inconclusive verdict. */
void prom_parse_response(long http_status, const char *body, size_t len, prom_verdict *ret);

/* Copies src into dst (size dstsz, always NUL-terminated) on one printable
 * line: control bytes become spaces, an over-long text ends in "..." and is
 * never cut inside a UTF-8 sequence. For text that came over the wire. */
void prom_sanitize_text(char *dst, size_t dstsz, const char *src, size_t srclen);

typedef enum prom_cmp {
        PROM_ABOVE,
        PROM_BELOW,
} prom_cmp;

const char *prom_cmp_name(prom_cmp c); /* "above", "below" */

/* Does the verdict satisfy "above/below threshold"? Strict comparison; false
 * for every inconclusive verdict, so a broken query can never fire a rule. */
bool prom_holds(const prom_verdict *v, prom_cmp cmp, double threshold);

/* "0.0731" (%.6g) for a value, "inconclusive (empty): ..." otherwise: what a
 * journal record or `check --query` shows. Returns buf. */
const char *prom_format_verdict(const prom_verdict *v, char *buf, size_t bufsz);
