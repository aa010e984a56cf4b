/* SPDX-License-Identifier: MIT */
#include "sign.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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

void sha256_hex(const void *data, size_t len, char out[65]) {
        unsigned char md[32];
        unsigned int md_len = 0;
        static const char empty[1];

        /* EVP_Digest only fails on allocation failure inside OpenSSL; an
         * all-zero digest string then makes the signature wrong (the server
         * refuses the call) rather than crashing. */
        if (!EVP_Digest(data ? data : empty, data ? len : 0, md, &md_len, EVP_sha256(), NULL) ||
            md_len != sizeof md)
                memset(md, 0, sizeof md);
        hex_encode(md, sizeof md, out);
}

void acs_format_date(long long unix_seconds, char out[21]) {
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

typedef struct encoded_param {
        char *name;
        char *value;
} encoded_param;

static int encoded_param_cmp(const void *a, const void *b) {
        const encoded_param *x = a, *y = b;
        int r = strcmp(x->name, y->name);
        return r != 0 ? r : strcmp(x->value, y->value);
}

/* "/" for an empty path; every segment encoded, the separators kept. */
static char *canonical_uri(const char *path) {
        if (!path || !*path)
                return strdup("/");
        return percent_encode_n(path, strlen(path), true);
}

static char *canonical_query_string(const query_param *query, size_t n) {
        if (n == 0)
                return strdup("");

        encoded_param *params = calloc(n, sizeof *params);
        if (!params)
                return NULL;

        char *result = NULL;
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
                params[i].name = acs_percent_encode(query[i].name);
                params[i].value = acs_percent_encode(query[i].value ? query[i].value : "");
                if (!params[i].name || !params[i].value)
                        goto out;
                total += strlen(params[i].name) + strlen(params[i].value) + 2;
        }
        qsort(params, n, sizeof *params, encoded_param_cmp);

        result = malloc(total + 1);
        if (!result)
                goto out;
        char *p = result;
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = '&';
                p = stpcpy(p, params[i].name);
                *p++ = '=';
                p = stpcpy(p, params[i].value);
        }
        *p = 0;
out:
        for (size_t i = 0; i < n; i++) {
                free(params[i].name);
                free(params[i].value);
        }
        free(params);
        return result;
}

typedef struct header_entry {
        const char *name; /* lowercase already */
        char *value;      /* trimmed copy */
} header_entry;

static int header_entry_cmp(const void *a, const void *b) {
        return strcmp(((const header_entry *)a)->name, ((const header_entry *)b)->name);
}

/* A CR or LF in a value would let it inject headers of its own (and the
 * signature would then cover something other than what is sent). */
static bool header_value_ok(const char *v) {
        return v && !strpbrk(v, "\r\n");
}

static char *trimmed_copy(const char *v) {
        while (*v == ' ' || *v == '\t')
                v++;
        size_t len = strlen(v);
        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
        return strndup(v, len);
}

static void hmac_sha256_hex(const char *key, const char *msg, char out[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;

        /* One-shot HMAC: OpenSSL's context (and its copy of the key) lives
         * only inside this call and is cleansed when it is freed. */
        if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, strlen(msg), md,
                  &md_len) ||
            md_len != 32) {
                out[0] = 0;
                return;
        }
        hex_encode(md, 32, out);
        OPENSSL_cleanse(md, sizeof md);
}

/* The output's copy of the canonical request is documented as secret-free
 * (it is meant for --verbose), so an STS token in it is masked. */
static char *redact(const char *text, const char *secret) {
        static const char mask[] = "<redacted>";
        size_t slen = secret ? strlen(secret) : 0;
        if (slen == 0)
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

int sign_request(const sign_input *in, const char *access_key_id, const char *access_key_secret,
                 sign_output *out) {
        if (!in || !out || !access_key_id || !*access_key_id || !access_key_secret ||
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
        for (size_t i = 0; i < in->n_query; i++)
                if (!in->query[i].name)
                        return -EINVAL;

        sign_output o = {};
        int r = -ENOMEM;
        _cleanup_free_ char *uri = NULL, *headers_block = NULL, *canonical = NULL,
                            *string_to_sign = NULL;
        char body_hash[65], canonical_hash[65];
        header_entry h[8] = {};
        size_t n_h = 0;

        sha256_hex(in->body, in->body_len, body_hash);

        uri = canonical_uri(in->path);
        if (!uri)
                goto finish;
        o.canonical_query = canonical_query_string(in->query, in->n_query);
        if (!o.canonical_query)
                goto finish;

        const struct {
                const char *name;
                const char *value;
        } signed_src[] = {
                { "host", in->host },
                { "x-acs-action", in->action },
                { "x-acs-content-sha256", body_hash },
                { "x-acs-date", in->date },
                { "x-acs-signature-nonce", in->nonce },
                { "x-acs-version", in->version },
                { "x-acs-security-token", in->security_token },
                { "content-type", in->content_type },
        };
        size_t block_len = 0, names_len = 0;
        for (size_t i = 0; i < ELEMENTSOF(signed_src); i++) {
                if (!signed_src[i].value)
                        continue;
                h[n_h].name = signed_src[i].name;
                h[n_h].value = trimmed_copy(signed_src[i].value);
                if (!h[n_h].value)
                        goto finish;
                block_len += strlen(h[n_h].name) + strlen(h[n_h].value) + 2;
                names_len += strlen(h[n_h].name) + 1;
                n_h++;
        }
        qsort(h, n_h, sizeof h[0], header_entry_cmp);

        headers_block = malloc(block_len + 1);
        o.signed_headers = malloc(names_len + 1);
        if (!headers_block || !o.signed_headers)
                goto finish;
        char *hp = headers_block, *np = o.signed_headers;
        for (size_t i = 0; i < n_h; i++) {
                hp += sprintf(hp, "%s:%s\n", h[i].name, h[i].value);
                if (i > 0)
                        *np++ = ';';
                np = stpcpy(np, h[i].name);
        }
        *hp = 0;
        *np = 0;

        canonical = strdup_printf("%s\n%s\n%s\n%s\n%s\n%s", in->method, uri, o.canonical_query,
                                  headers_block, o.signed_headers, body_hash);
        if (!canonical)
                goto finish;
        sha256_hex(canonical, strlen(canonical), canonical_hash);
        string_to_sign = strdup_printf(SIGN_ALGORITHM "\n%s", canonical_hash);
        if (!string_to_sign)
                goto finish;
        hmac_sha256_hex(access_key_secret, string_to_sign, o.signature);
        if (!o.signature[0]) {
                r = -EIO;
                goto finish;
        }
        const char *token_signed = NULL; /* as it appears in the block: trimmed */
        for (size_t i = 0; i < n_h; i++)
                if (streq(h[i].name, "x-acs-security-token"))
                        token_signed = h[i].value;
        o.canonical_request = redact(canonical, token_signed);
        if (!o.canonical_request)
                goto finish;

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
                _cleanup_secret_ char *v = trimmed_copy(sent[i].value);
                if (!v)
                        goto finish;
                o.headers[o.n_headers] = strdup_printf("%s: %s", sent[i].name, v);
                if (!o.headers[o.n_headers])
                        goto finish;
                o.n_headers++;
        }
        o.headers[o.n_headers] = strdup_printf(
                "Authorization: " SIGN_ALGORITHM " Credential=%s,SignedHeaders=%s,Signature=%s",
                access_key_id, o.signed_headers, o.signature);
        if (!o.headers[o.n_headers])
                goto finish;
        o.n_headers++;

        r = 0;
finish:
        /* The STS token was copied into these; wipe them like the token. */
        for (size_t i = 0; i < n_h; i++)
                free_secret(h[i].value);
        if (headers_block)
                OPENSSL_cleanse(headers_block, strlen(headers_block));
        if (canonical)
                OPENSSL_cleanse(canonical, strlen(canonical));
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
