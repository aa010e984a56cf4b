/* SPDX-License-Identifier: MIT */
#include "sign.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stddef.h>
#include <stdlib.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define SIGN_ALGORITHM "ACS3-HMAC-SHA256"

static const char hexdigits_lower[] = "0123456789abcdef";
static const char hexdigits_upper[] = "0123456789ABCDEF";

static void hex_encode(const unsigned char *data, size_t len, char *out) {
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = hexdigits_lower[data[i] >> 4];
                out[2 * i + 1] = hexdigits_lower[data[i] & 0xf];
        }
        out[2 * len] = 0;
}

static bool is_unreserved(unsigned char ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
               ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

/* Encodes len bytes; keep_slash serves the path, where '/' separates the
 * segments that are encoded one by one. */
static char *percent_encode_n(const char *s, size_t len, bool keep_slash) {
        if (len > (SIZE_MAX - 1) / 3)
                return NULL;
        char *out = malloc(len * 3 + 1);
        if (!out)
                return NULL;
        char *p = out;
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];
                if (is_unreserved(ch) || (keep_slash && ch == '/')) {
                        *p++ = (char)ch;
                } else {
                        *p++ = '%';
                        *p++ = hexdigits_upper[ch >> 4];
                        *p++ = hexdigits_upper[ch & 0xf];
                }
        }
        *p = 0;
        return out;
}

char *acs_percent_encode(const char *s) {
        if (!s)
                return NULL;
        return percent_encode_n(s, strlen(s), false);
}

static void acs_format_date_uncached(long long unix_seconds, char out[21]);

/* Fetched once: the one-shot EVP_Digest/HMAC look the algorithm up in the
 * provider store on every call, and a fresh context per call allocates. */
static EVP_MD *sha256_md;
static EVP_MD_CTX *md_ctx;
static EVP_MAC *hmac_alg;
static EVP_MAC_CTX *mac_ctx;

static bool crypto_ready(void) {
        if (mac_ctx)
                return true;
        if (!sha256_md)
                sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (!md_ctx)
                md_ctx = EVP_MD_CTX_new();
        if (!hmac_alg)
                hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (!sha256_md || !md_ctx || !hmac_alg)
                return false;
        EVP_MAC_CTX *m = EVP_MAC_CTX_new(hmac_alg);
        if (!m)
                return false;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        if (!EVP_MAC_CTX_set_params(m, params)) {
                EVP_MAC_CTX_free(m);
                return false;
        }
        mac_ctx = m;
        return true;
}

/* The digest of several pieces, as if concatenated. */
static bool sha256_pieces(const void *const *p, const size_t *len, size_t n, unsigned char md[32]) {
        unsigned int md_len = 0;
        if (!crypto_ready() || !EVP_DigestInit_ex2(md_ctx, sha256_md, NULL))
                return false;
        for (size_t i = 0; i < n; i++)
                if (len[i] > 0 && !EVP_DigestUpdate(md_ctx, p[i], len[i]))
                        return false;
        return EVP_DigestFinal_ex(md_ctx, md, &md_len) && md_len == 32;
}

void sha256_hex(const void *data, size_t len, char out[65]) {
        unsigned char md[32];
        static const char empty[1];
        const void *p = data ? data : empty;
        size_t l = data ? len : 0;

        /* Fails only on allocation failure inside OpenSSL; an all-zero digest
         * string then makes the signature wrong (the server refuses the
         * call) rather than crashing. */
        if (!sha256_pieces(&p, &l, 1, md))
                memset(md, 0, sizeof md);
        hex_encode(md, sizeof md, out);
}

void acs_format_date(long long unix_seconds, char out[21]) {
        /* Every request formats the current second: once per second is enough. */
        static long long cached_seconds = -1;
        static char cached[21];
        if (unix_seconds == cached_seconds && cached_seconds >= 0) {
                memcpy(out, cached, 21);
                return;
        }
        acs_format_date_uncached(unix_seconds, out);
        cached_seconds = unix_seconds;
        memcpy(cached, out, 21);
}

static void acs_format_date_uncached(long long unix_seconds, char out[21]) {
        struct tm tm;
        time_t t = (time_t)unix_seconds;

        /* Years past 9999 do not fit "YYYY"; no clock we talk to is there. */
        if (unix_seconds < 0 || unix_seconds > 253402300799LL || !gmtime_r(&t, &tm)) {
                memcpy(out, "1970-01-01T00:00:00Z", 21);
                return;
        }
        if (strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
                memcpy(out, "1970-01-01T00:00:00Z", 21);
}

int acs_make_nonce(char out[33]) {
        unsigned char buf[16];

        /* OpenSSL's DRBG: seeded from the kernel once, then no syscall per
         * request (getrandom() here was one of ~9 syscalls per API call). */
        if (RAND_bytes(buf, sizeof buf) != 1) {
                out[0] = 0;
                return -EIO;
        }
        hex_encode(buf, sizeof buf, out);
        return 0;
}

/* A bump writer over a buffer sized up front (sign_request_into computes
 * the bound), so nothing in the middle of signing can fail or move. */
typedef struct writer {
        char *p, *end;
        bool overflow; /* the bound was wrong: a bug, reported as -ENOBUFS */
} writer;

static char *w_mark(writer *w) {
        return w->p;
}

static void w_mem(writer *w, const char *s, size_t n) {
        if (w->overflow || (size_t)(w->end - w->p) < n) {
                w->overflow = true;
                return;
        }
        memcpy(w->p, s, n);
        w->p += n;
}

static void w_str(writer *w, const char *s) {
        w_mem(w, s, strlen(s));
}

static void w_ch(writer *w, char c) {
        w_mem(w, &c, 1);
}

/* Ends the current string: returns its start. */
static const char *w_end(writer *w, const char *start) {
        w_ch(w, 0);
        return start;
}

static void w_encode(writer *w, const char *s, size_t len, bool keep_slash) {
        if (w->overflow || (size_t)(w->end - w->p) < len * 3) {
                w->overflow = true;
                return;
        }
        char *p = w->p;
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];
                if (is_unreserved(ch) || (keep_slash && ch == '/')) {
                        *p++ = (char)ch;
                } else {
                        *p++ = '%';
                        *p++ = hexdigits_upper[ch >> 4];
                        *p++ = hexdigits_upper[ch & 0xf];
                }
        }
        w->p = p;
}

typedef struct encoded_param {
        const char *name;
        const char *value;
} encoded_param;

static int encoded_param_cmp(const void *a, const void *b) {
        const encoded_param *x = a, *y = b;
        int r = strcmp(x->name, y->name);
        return r != 0 ? r : strcmp(x->value, y->value);
}

/* A CR or LF in a value would let it inject headers of its own (and the
 * signature would then cover something other than what is sent). */
static bool header_value_ok(const char *v) {
        return v && !strpbrk(v, "\r\n");
}

typedef struct span {
        const char *p;
        size_t n;
} span;

static span trimmed(const char *v) {
        while (*v == ' ' || *v == '\t')
                v++;
        size_t len = strlen(v);
        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
        return (span){ v, len };
}

static bool hmac_sha256_hex(const char *key, const char *msg, size_t msg_len, char out[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        size_t md_len = 0;

        bool ok = crypto_ready() &&
                  EVP_MAC_init(mac_ctx, (const unsigned char *)key, strlen(key), NULL) &&
                  EVP_MAC_update(mac_ctx, (const unsigned char *)msg, msg_len) &&
                  EVP_MAC_final(mac_ctx, md, &md_len, sizeof md) && md_len == 32;
        /* The reused context must not keep the key (a replaced STS secret
         * would linger until the next signature): an empty key makes
         * OpenSSL wipe its copy and the pads derived from it. */
        if (mac_ctx)
                (void)EVP_MAC_init(mac_ctx, (const unsigned char *)"", 0, NULL);
        if (ok)
                hex_encode(md, 32, out);
        else
                out[0] = 0;
        OPENSSL_cleanse(md, sizeof md);
        return ok;
}

/* The output's copy of the canonical request is documented as secret-free
 * (it is meant for --verbose), so an STS token in it is masked. */
static char *redact(const char *text, const char *secret, size_t slen) {
        static const char mask[] = "<redacted>";
        if (!secret || slen == 0)
                return strdup(text);

        /* Worst case every byte starts a hit: never longer than this. */
        size_t cap = strlen(text) * (slen < sizeof mask ? sizeof mask : 1) + 1;
        char *out = malloc(cap), *p = out;
        if (!out)
                return NULL;
        for (const char *t = text; *t;) {
                if (strncmp(t, secret, slen) == 0) {
                        p = stpcpy(p, mask);
                        t += slen;
                } else
                        *p++ = *t++;
        }
        *p = 0;
        return out;
}

static size_t len0(const char *s) {
        return s ? strlen(s) : 0;
}

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

int sign_request_into(const sign_input *in, const char *access_key_id, const char *access_key_secret,
                      sign_result *out) {
        memset(out, 0, offsetof(sign_result, buf));
        if (!in || !access_key_id || !*access_key_id || !access_key_secret ||
            !*access_key_secret || !in->method || !*in->method || !in->host || !*in->host ||
            !in->action || !in->version || !in->date || !in->nonce || (in->body_len > 0 && !in->body))
                return -EINVAL;
        if (!header_value_ok(in->host) || !header_value_ok(in->action) ||
            !header_value_ok(in->version) || !header_value_ok(in->date) ||
            !header_value_ok(in->nonce) || !header_value_ok(access_key_id) ||
            strpbrk(in->method, " \r\n") || (in->security_token && !header_value_ok(in->security_token)) ||
            (in->content_type && !header_value_ok(in->content_type)))
                return -EINVAL;
        if (in->n_query > 0 && !in->query)
                return -EINVAL;

        /* The bound: the path and query are encoded (x3) into the URI and
         * query and copied again into the canonical request; every header
         * value appears in the canonical request and in the header sent. */
        size_t q_raw = 0;
        for (size_t i = 0; i < in->n_query; i++) {
                if (!in->query[i].name)
                        return -EINVAL;
                q_raw += strlen(in->query[i].name) + len0(in->query[i].value) + 2;
        }
        size_t values = strlen(in->host) + strlen(in->action) + strlen(in->version) +
                        strlen(in->date) + strlen(in->nonce) + len0(in->security_token) +
                        len0(in->content_type) + 64;
        size_t path = len0(in->path) + 1;
        if (q_raw > SIZE_MAX / 16 || path > SIZE_MAX / 16 || values > SIZE_MAX / 8)
                return -EINVAL;
        size_t bound = 6 * path + 9 * q_raw + 2 * values + 2 * strlen(access_key_id) + 2048 +
                       strlen(in->method);
        out->base = out->buf;
        if (bound > sizeof out->buf) {
                out->heap = malloc(bound);
                if (!out->heap)
                        return -ENOMEM;
                out->base = out->heap;
        }
        writer w = { out->base, out->base + bound, false };
        out->used = bound; /* what sign_result_done wipes until the end says less */

        char body_hash[65];
        if (in->body_len == 0)
                memcpy(body_hash, EMPTY_SHA256, sizeof body_hash);
        else
                sha256_hex(in->body, in->body_len, body_hash);

        /* URI: "/" for an empty path; every segment encoded, the "/" kept. */
        char *m = w_mark(&w);
        if (!in->path || !*in->path)
                w_ch(&w, '/');
        else
                w_encode(&w, in->path, strlen(in->path), true);
        out->canonical_uri = w_end(&w, m);

        /* Query: encoded, then sorted by name and value. */
        encoded_param stack_params[16], *params = stack_params;
        if (in->n_query > ELEMENTSOF(stack_params)) {
                params = calloc(in->n_query, sizeof *params);
                if (!params) {
                        sign_result_done(out);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < in->n_query; i++) {
                const char *v = in->query[i].value ? in->query[i].value : "";
                m = w_mark(&w);
                w_encode(&w, in->query[i].name, strlen(in->query[i].name), false);
                params[i].name = w_end(&w, m);
                m = w_mark(&w);
                w_encode(&w, v, strlen(v), false);
                params[i].value = w_end(&w, m);
        }
        if (w.overflow) {
                if (params != stack_params)
                        free(params);
                sign_result_done(out);
                return -ENOBUFS;
        }
        qsort(params, in->n_query, sizeof *params, encoded_param_cmp);
        m = w_mark(&w);
        for (size_t i = 0; i < in->n_query; i++) {
                if (i > 0)
                        w_ch(&w, '&');
                w_str(&w, params[i].name);
                w_ch(&w, '=');
                w_str(&w, params[i].value);
        }
        out->canonical_query = w_end(&w, m);
        if (params != stack_params)
                free(params);

        /* Signed headers, already in sorted order; names are lowercase. */
        const struct {
                const char *name;
                const char *value;
        } signed_src[] = {
                { "content-type", in->content_type },
                { "host", in->host },
                { "x-acs-action", in->action },
                { "x-acs-content-sha256", body_hash },
                { "x-acs-date", in->date },
                { "x-acs-security-token", in->security_token },
                { "x-acs-signature-nonce", in->nonce },
                { "x-acs-version", in->version },
        };
        m = w_mark(&w);
        for (size_t i = 0, k = 0; i < ELEMENTSOF(signed_src); i++) {
                if (!signed_src[i].value)
                        continue;
                if (k++ > 0)
                        w_ch(&w, ';');
                w_str(&w, signed_src[i].name);
        }
        out->signed_headers = w_end(&w, m);

        m = w_mark(&w);
        w_str(&w, in->method);
        w_ch(&w, '\n');
        w_str(&w, out->canonical_uri);
        w_ch(&w, '\n');
        w_str(&w, out->canonical_query);
        w_ch(&w, '\n');
        for (size_t i = 0; i < ELEMENTSOF(signed_src); i++) {
                if (!signed_src[i].value)
                        continue;
                span v = trimmed(signed_src[i].value);
                w_str(&w, signed_src[i].name);
                w_ch(&w, ':');
                w_mem(&w, v.p, v.n);
                w_ch(&w, '\n');
        }
        w_ch(&w, '\n');
        w_str(&w, out->signed_headers);
        w_ch(&w, '\n');
        w_str(&w, body_hash);
        size_t canonical_len = (size_t)(w.p - m);
        out->canonical_request = w_end(&w, m);
        if (w.overflow) {
                sign_result_done(out);
                return -ENOBUFS;
        }

        /* "ACS3-HMAC-SHA256\n" + hex(sha256(canonical)), on the stack */
        char string_to_sign[sizeof SIGN_ALGORITHM + 65];
        memcpy(string_to_sign, SIGN_ALGORITHM "\n", sizeof SIGN_ALGORITHM);
        sha256_hex(out->canonical_request, canonical_len, string_to_sign + sizeof SIGN_ALGORITHM);
        if (!hmac_sha256_hex(access_key_secret, string_to_sign, strlen(string_to_sign),
                             out->signature)) {
                sign_result_done(out);
                return -EIO;
        }

        /* Sent in this order; accept is sent but (per SPEC 5) not signed. */
        const struct {
                const char *name;
                const char *value;
        } sent[] = {
                { "host", in->host },
                { "accept", "application/json" },
                { "x-acs-action", in->action },
                { "x-acs-version", in->version },
                { "x-acs-date", in->date },
                { "x-acs-signature-nonce", in->nonce },
                { "x-acs-content-sha256", body_hash },
                { "x-acs-security-token", in->security_token },
                { "content-type", in->content_type },
        };
        for (size_t i = 0; i < ELEMENTSOF(sent); i++) {
                if (!sent[i].value)
                        continue;
                span v = trimmed(sent[i].value);
                m = w_mark(&w);
                w_str(&w, sent[i].name);
                w_mem(&w, ": ", 2);
                w_mem(&w, v.p, v.n);
                out->headers[out->n_headers++] = w_end(&w, m);
        }
        m = w_mark(&w);
        w_str(&w, "Authorization: " SIGN_ALGORITHM " Credential=");
        w_str(&w, access_key_id);
        w_str(&w, ",SignedHeaders=");
        w_str(&w, out->signed_headers);
        w_str(&w, ",Signature=");
        w_str(&w, out->signature);
        out->headers[out->n_headers++] = w_end(&w, m);
        if (w.overflow) {
                sign_result_done(out);
                return -ENOBUFS;
        }
        out->used = (size_t)(w.p - out->base);
        return 0;
}

void sign_result_done(sign_result *out) {
        if (!out)
                return;
        if (out->base)
                OPENSSL_cleanse(out->base, out->used);
        free(out->heap);
        memset(out, 0, offsetof(sign_result, buf));
}

int sign_request(const sign_input *in, const char *access_key_id, const char *access_key_secret,
                 sign_output *out) {
        if (!out)
                return -EINVAL;
        sign_result *res = malloc(sizeof *res);
        if (!res)
                return -ENOMEM;
        int r = sign_request_into(in, access_key_id, access_key_secret, res);
        if (r < 0) {
                free(res);
                return r;
        }
        sign_output o = {};
        r = -ENOMEM;
        for (size_t i = 0; i < res->n_headers; i++) {
                o.headers[i] = strdup(res->headers[i]);
                if (!o.headers[i])
                        goto finish;
                o.n_headers = i + 1;
        }
        o.canonical_query = strdup(res->canonical_query);
        o.signed_headers = strdup(res->signed_headers);
        span token = in->security_token ? trimmed(in->security_token) : (span){ NULL, 0 };
        o.canonical_request = redact(res->canonical_request, token.p, token.n);
        if (!o.canonical_query || !o.signed_headers || !o.canonical_request)
                goto finish;
        memcpy(o.signature, res->signature, sizeof o.signature);
        r = 0;
finish:
        sign_result_done(res);
        free(res);
        if (r < 0)
                sign_output_done(&o);
        else
                *out = o;
        return r;
}

void sign_output_done(sign_output *out) {
        if (!out)
                return;
        /* The x-acs-security-token header is a secret; wipe every line
         * rather than pick it out. */
        for (size_t i = 0; i < out->n_headers && i < SIGN_MAX_HEADERS; i++)
                free_secret(out->headers[i]);
        free(out->canonical_query);
        free(out->canonical_request);
        free(out->signed_headers);
        memset(out, 0, sizeof *out);
}
