/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <openssl/hmac.h>

#include "sign.h"
#include "util.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *find_header(const sign_output *o, const char *name) {
        size_t l = strlen(name);
        for (size_t i = 0; i < o->n_headers; i++)
                if (strncasecmp(o->headers[i], name, l) == 0 && o->headers[i][l] == ':')
                        return o->headers[i] + l + 2;
        return NULL;
}

static void assert_no_secret(const sign_output *o, const char *secret) {
        for (size_t i = 0; i < o->n_headers; i++)
                assert_null(strstr(o->headers[i], secret));
        assert_null(strstr(o->canonical_request, secret));
        assert_null(strstr(o->canonical_query, secret));
        assert_null(strstr(o->signed_headers, secret));
}

/* The published Alibaba Cloud example (SPEC 5, vector 1). */
static const query_param published_query[] = {
        /* given out of order on purpose: sign_request sorts */
        { "RegionId", "cn-shanghai" },
        { "ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd" },
};

static sign_input published_input(void) {
        return (sign_input){
                .method = "POST",
                .host = "ecs.cn-shanghai.aliyuncs.com",
                .path = "/",
                .query = published_query,
                .n_query = ELEMENTSOF(published_query),
                .action = "RunInstances",
                .version = "2014-05-26",
                .date = "2023-10-26T10:22:32Z",
                .nonce = "3156853299f313e23d1673dc12e1703d",
        };
}

static void test_published_vector(void **state) {
        sign_input in = published_input();
        sign_output o;

        assert_int_equal(sign_request(&in, "YourAccessKeyId", "YourAccessKeySecret", &o), 0);

        static const char expected_canonical[] =
                "POST\n"
                "/\n"
                "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
                "host:ecs.cn-shanghai.aliyuncs.com\n"
                "x-acs-action:RunInstances\n"
                "x-acs-content-sha256:" EMPTY_SHA256 "\n"
                "x-acs-date:2023-10-26T10:22:32Z\n"
                "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
                "x-acs-version:2014-05-26\n"
                "\n"
                "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
                EMPTY_SHA256;
        assert_string_equal(o.canonical_request, expected_canonical);

        /* string_to_sign is "ACS3-HMAC-SHA256\n" + this hash (published). */
        char hash[65];
        sha256_hex(o.canonical_request, strlen(o.canonical_request), hash);
        assert_string_equal(hash, "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259");

        assert_string_equal(o.signature,
                            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
        assert_string_equal(o.signed_headers, "host;x-acs-action;x-acs-content-sha256;x-acs-date;"
                                              "x-acs-signature-nonce;x-acs-version");
        assert_string_equal(o.canonical_query, "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_"
                                               "20230811.vhd&RegionId=cn-shanghai");

        static const char *const expected_headers[] = {
                "host: ecs.cn-shanghai.aliyuncs.com",
                "accept: application/json",
                "x-acs-action: RunInstances",
                "x-acs-version: 2014-05-26",
                "x-acs-date: 2023-10-26T10:22:32Z",
                "x-acs-signature-nonce: 3156853299f313e23d1673dc12e1703d",
                "x-acs-content-sha256: " EMPTY_SHA256,
                "Authorization: ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;"
                "x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
                "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0",
        };
        assert_int_equal(o.n_headers, ELEMENTSOF(expected_headers));
        for (size_t i = 0; i < ELEMENTSOF(expected_headers); i++)
                assert_string_equal(o.headers[i], expected_headers[i]);

        assert_no_secret(&o, "YourAccessKeySecret");
        sign_output_done(&o);
        assert_int_equal(o.n_headers, 0);
        assert_null(o.canonical_request);
}

static void test_sae_vector(void **state) {
        static const query_param q[] = {
                { "ChangeOrderId", "765fa5c0-9ebb-4bb4-b383-1f8854470001" },
        };
        sign_input in = {
                .method = "PUT",
                .host = "sae.cn-hangzhou.aliyuncs.com",
                .path = "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder",
                .query = q,
                .n_query = 1,
                .action = "AbortAndRollbackChangeOrder",
                .version = "2019-05-06",
                .date = "2026-11-23T08:00:00Z",
                .nonce = "6a1f0c2e9b7d4e3f8a5b1c0d2e4f6a8b",
        };
        sign_output o;

        assert_int_equal(sign_request(&in, "testid", "testsecret", &o), 0);
        assert_string_equal(o.signature,
                            "5b35a571f4cf8390cc2a7a42cbc5bceb3182d0ec9ebeabc9175d7b1feafeb604");
        assert_string_equal(o.canonical_query, "ChangeOrderId=765fa5c0-9ebb-4bb4-b383-1f8854470001");
        assert_non_null(strstr(o.canonical_request,
                               "PUT\n/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder\n"));
        assert_string_equal(find_header(&o, "Authorization"),
                            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;"
                            "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
                            "Signature=5b35a571f4cf8390cc2a7a42cbc5bceb3182d0ec9ebeabc9175d7b1feafe"
                            "b604");
        assert_no_secret(&o, "testsecret");
        sign_output_done(&o);
}

/* Surrounding blanks in a header value are not part of what is signed. */
static void test_values_trimmed(void **state) {
        sign_input in = published_input();
        in.host = "  ecs.cn-shanghai.aliyuncs.com\t";
        in.action = " RunInstances ";
        sign_output o;

        assert_int_equal(sign_request(&in, "YourAccessKeyId", "YourAccessKeySecret", &o), 0);
        assert_string_equal(o.signature,
                            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
        assert_string_equal(find_header(&o, "host"), "ecs.cn-shanghai.aliyuncs.com");
        assert_string_equal(find_header(&o, "x-acs-action"), "RunInstances");
        sign_output_done(&o);
}

static void test_percent_encode_table(void **state) {
        static const struct {
                const char *in;
                const char *out;
        } rows[] = {
                { "a b*c~d/e+f=g&h:\xc3\xa9", "a%20b%2Ac~d%2Fe%2Bf%3Dg%26h%3A%C3%A9" },
                { "", "" },
                { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~",
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~" },
                { " ", "%20" },
                { "*", "%2A" },
                { "%", "%25" },
                { "%20", "%2520" },
                { "/", "%2F" },
                { "a/b", "a%2Fb" },
                { "\x7f\x80\xff", "%7F%80%FF" },
                { "\t\n", "%09%0A" },
                { "!'()", "%21%27%28%29" },
                { "\xe4\xb8\xad", "%E4%B8%AD" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *got = acs_percent_encode(rows[i].in);
                assert_non_null(got);
                if (!streq(got, rows[i].out))
                        fail_msg("row %zu: encode(\"%s\") = \"%s\", want \"%s\"", i, rows[i].in,
                                 got, rows[i].out);
        }
        assert_null(acs_percent_encode(NULL));
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1; /* lower-case hex is wrong here */
}

/* Every byte a C string can hold (0x00 cannot) is either unreserved and kept,
 * or becomes exactly %XX with upper-case hex that decodes back to it. */
static void test_percent_encode_every_byte(void **state) {
        for (unsigned b = 1; b <= 0xff; b++) {
                char in[2] = { (char)b, 0 };
                _cleanup_free_ char *got = acs_percent_encode(in);
                assert_non_null(got);
                bool unreserved = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                                  (b >= '0' && b <= '9') || b == '-' || b == '_' || b == '.' ||
                                  b == '~';
                if (unreserved) {
                        if (!streq(got, in))
                                fail_msg("byte 0x%02x: got \"%s\", want it kept", b, got);
                        continue;
                }
                if (strlen(got) != 3 || got[0] != '%' || hexval(got[1]) < 0 || hexval(got[2]) < 0 ||
                    (unsigned)(hexval(got[1]) * 16 + hexval(got[2])) != b)
                        fail_msg("byte 0x%02x: got \"%s\"", b, got);
        }
}

/* The URI line of the canonical request (the second line). */
static char *canonical_uri_of(const sign_output *o) {
        const char *start = strchr(o->canonical_request, '\n') + 1;
        const char *end = strchr(start, '\n');
        return strndup(start, (size_t)(end - start));
}

static void test_path_encoding(void **state) {
        static const struct {
                const char *path;
                const char *uri;
        } rows[] = {
                { NULL, "/" },
                { "", "/" },
                { "/", "/" },
                { "/pop/v1/sam/app/describeApplicationConfig", "/pop/v1/sam/app/describeApplicationConfig" },
                { "/a b/c*d/", "/a%20b/c%2Ad/" },
                { "/x+y/=&?#", "/x%2By/%3D%26%3F%23" },
                { "/%41", "/%2541" },
                { "//double", "//double" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                sign_input in = published_input();
                in.path = rows[i].path;
                sign_output o;
                assert_int_equal(sign_request(&in, "id", "secret", &o), 0);
                _cleanup_free_ char *uri = canonical_uri_of(&o);
                if (!streq(uri, rows[i].uri))
                        fail_msg("row %zu: path \"%s\" -> \"%s\", want \"%s\"", i,
                                 strna(rows[i].path), uri, rows[i].uri);
                sign_output_done(&o);
        }
}

static void test_query_canonical(void **state) {
        static const struct {
                const char *what;
                query_param q[6];
                size_t n;
                const char *want;
        } rows[] = {
                { "none", {}, 0, "" },
                { "empty value", { { "Empty", "" } }, 1, "Empty=" },
                { "NULL value", { { "Empty", NULL } }, 1, "Empty=" },
                { "names that are prefixes of each other",
                  { { "ab", "1" }, { "a", "2" }, { "a b", "3" }, { "A", "4" }, { "a-", "5" } },
                  5,
                  "A=4&a=2&a%20b=3&a-=5&ab=1" },
                { "same name, ordered by value", { { "k", "2" }, { "k", "10" }, { "k", "" } }, 3,
                  "k=&k=10&k=2" },
                { "both sides encoded",
                  { { "Tag Key", "a b*c~d/e+f=g&h:\xc3\xa9" }, { "PageSize", "10" } },
                  2,
                  "PageSize=10&Tag%20Key=a%20b%2Ac~d%2Fe%2Bf%3Dg%26h%3A%C3%A9" },
                /* raw 'a' (0x61) < 0xc3, but encoded '%' (0x25) < 'a' */
                { "sorted by encoded bytes, not raw", { { "a", "1" }, { "\xc3\xa9", "2" } }, 2,
                  "%C3%A9=2&a=1" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                sign_input in = published_input();
                in.query = rows[i].q;
                in.n_query = rows[i].n;
                sign_output o;
                assert_int_equal(sign_request(&in, "id", "secret", &o), 0);
                if (!streq(o.canonical_query, rows[i].want))
                        fail_msg("row %zu (%s): \"%s\", want \"%s\"", i, rows[i].what,
                                 o.canonical_query, rows[i].want);
                /* the URL's query and the signed query are the same bytes */
                char line[512];
                snprintf(line, sizeof line, "\n%s\nhost:", rows[i].want);
                if (!strstr(o.canonical_request, line))
                        fail_msg("row %zu (%s): query line not in canonical request", i,
                                 rows[i].what);
                sign_output_done(&o);
        }
}

static void hmac_hex(const char *key, const char *msg, char out[65]) {
        unsigned char md[32];
        unsigned int len = 0;
        assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg,
                             strlen(msg), md, &len));
        for (unsigned i = 0; i < len; i++)
                sprintf(out + 2 * i, "%02x", md[i]);
}

/* Recompute the signature from a canonical request we write out by hand:
 * proves the optional headers are really covered, not just listed. */
static void assert_signature_over(const sign_output *o, const char *canonical, const char *secret) {
        char hash[65], sig[65];
        sha256_hex(canonical, strlen(canonical), hash);
        _cleanup_free_ char *sts = strdup_printf("ACS3-HMAC-SHA256\n%s", hash);
        hmac_hex(secret, sts, sig);
        assert_string_equal(o->signature, sig);
}

static void test_security_token(void **state) {
        sign_input in = published_input();
        in.security_token = "CAIS+token/with=chars";
        sign_output o;

        assert_int_equal(sign_request(&in, "STS.id", "stssecret", &o), 0);
        assert_string_equal(find_header(&o, "x-acs-security-token"), "CAIS+token/with=chars");
        assert_string_equal(o.signed_headers,
                            "host;x-acs-action;x-acs-content-sha256;x-acs-date;"
                            "x-acs-security-token;x-acs-signature-nonce;x-acs-version");
        assert_int_equal(o.n_headers, 9);
        assert_non_null(strstr(o.headers[o.n_headers - 1], "SignedHeaders=host;x-acs-action;"
                                                            "x-acs-content-sha256;x-acs-date;"
                                                            "x-acs-security-token;"));
        assert_signature_over(
                &o,
                "POST\n/\n"
                "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
                "host:ecs.cn-shanghai.aliyuncs.com\n"
                "x-acs-action:RunInstances\n"
                "x-acs-content-sha256:" EMPTY_SHA256 "\n"
                "x-acs-date:2023-10-26T10:22:32Z\n"
                "x-acs-security-token:CAIS+token/with=chars\n"
                "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
                "x-acs-version:2014-05-26\n\n"
                "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;"
                "x-acs-signature-nonce;x-acs-version\n" EMPTY_SHA256,
                "stssecret");
        /* the debugging copy is documented secret-free */
        assert_null(strstr(o.canonical_request, "CAIS+token"));
        assert_non_null(strstr(o.canonical_request, "x-acs-security-token:<redacted>\n"));
        assert_no_secret(&o, "stssecret");
        sign_output_done(&o);
}

static void test_content_type_and_body(void **state) {
        sign_input in = published_input();
        in.content_type = "application/json";
        in.body = "{}";
        in.body_len = 2;
        sign_output o;
        char body_hash[65];
        sha256_hex("{}", 2, body_hash);

        assert_int_equal(sign_request(&in, "id", "secret", &o), 0);
        assert_string_equal(find_header(&o, "content-type"), "application/json");
        assert_string_equal(find_header(&o, "x-acs-content-sha256"), body_hash);
        assert_string_equal(o.signed_headers, "content-type;host;x-acs-action;x-acs-content-sha256;"
                                              "x-acs-date;x-acs-signature-nonce;x-acs-version");
        _cleanup_free_ char *canonical = strdup_printf(
                "POST\n/\n"
                "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
                "content-type:application/json\n"
                "host:ecs.cn-shanghai.aliyuncs.com\n"
                "x-acs-action:RunInstances\n"
                "x-acs-content-sha256:%s\n"
                "x-acs-date:2023-10-26T10:22:32Z\n"
                "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
                "x-acs-version:2014-05-26\n\n"
                "content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;"
                "x-acs-signature-nonce;x-acs-version\n%s",
                body_hash, body_hash);
        assert_string_equal(o.canonical_request, canonical);
        assert_signature_over(&o, canonical, "secret");
        /* accept is sent, never signed */
        assert_string_equal(find_header(&o, "accept"), "application/json");
        assert_null(strstr(o.signed_headers, "accept"));
        sign_output_done(&o);
}

static void test_both_optional_headers_fit(void **state) {
        sign_input in = published_input();
        in.content_type = "application/json";
        in.security_token = "tok";
        sign_output o;

        assert_int_equal(sign_request(&in, "id", "secret", &o), 0);
        assert_int_equal(o.n_headers, SIGN_MAX_HEADERS);
        assert_string_equal(o.signed_headers,
                            "content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;"
                            "x-acs-security-token;x-acs-signature-nonce;x-acs-version");
        assert_non_null(strstr(o.headers[SIGN_MAX_HEADERS - 1], "Authorization: "));
        sign_output_done(&o);
}

static void test_invalid_input(void **state) {
        static const query_param bad_query[] = { { NULL, "x" } };
        static const struct {
                const char *what;
                int field;
                const char *value;
        } rows[] = {
                { "no host", 0, NULL },
                { "empty host", 0, "" },
                { "CRLF in host", 0, "h\r\nx-evil: 1" },
                { "LF in action", 1, "Run\nInstances" },
                { "CR in token", 2, "tok\r" },
                { "no method", 3, NULL },
                { "no nonce", 4, NULL },
                { "LF in content-type", 5, "a\nb" },
                { "NULL query name", 6, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                sign_input in = published_input();
                switch (rows[i].field) {
                case 0: in.host = rows[i].value; break;
                case 1: in.action = rows[i].value; break;
                case 2: in.security_token = rows[i].value; break;
                case 3: in.method = rows[i].value; break;
                case 4: in.nonce = rows[i].value; break;
                case 5: in.content_type = rows[i].value; break;
                case 6: in.query = bad_query; in.n_query = 1; break;
                }
                sign_output o;
                int r = sign_request(&in, "id", "secret", &o);
                if (r != -EINVAL)
                        fail_msg("row %zu (%s): got %d, want -EINVAL", i, rows[i].what, r);
        }

        sign_input in = published_input();
        sign_output o;
        assert_int_equal(sign_request(&in, "id", "", &o), -EINVAL);
        assert_int_equal(sign_request(&in, NULL, "secret", &o), -EINVAL);
        assert_int_equal(sign_request(&in, "id\nx", "secret", &o), -EINVAL);
        in.body_len = 3; /* length without data */
        assert_int_equal(sign_request(&in, "id", "secret", &o), -EINVAL);
}

static void test_sha256_hex(void **state) {
        static const struct {
                const char *in;
                const char *out;
        } rows[] = {
                { "", EMPTY_SHA256 },
                { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
                { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
        };
        char out[65];
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                sha256_hex(rows[i].in, strlen(rows[i].in), out);
                if (!streq(out, rows[i].out))
                        fail_msg("row %zu: sha256(\"%s\") = %s", i, rows[i].in, out);
        }
        sha256_hex(NULL, 0, out);
        assert_string_equal(out, EMPTY_SHA256);
}

static void test_format_date(void **state) {
        static const struct {
                long long t;
                const char *out;
        } rows[] = {
                { 0, "1970-01-01T00:00:00Z" },
                { 1698315752, "2023-10-26T10:22:32Z" },
                { 1795420800, "2026-11-23T08:00:00Z" },
                { 951868799, "2000-02-29T23:59:59Z" },
                { 253402300799LL, "9999-12-31T23:59:59Z" },
                /* out of the YYYY range: a fixed, well-formed value, not garbage */
                { 253402300800LL, "1970-01-01T00:00:00Z" },
                { -1, "1970-01-01T00:00:00Z" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                char out[21];
                acs_format_date(rows[i].t, out);
                if (!streq(out, rows[i].out))
                        fail_msg("row %zu: %lld -> %s, want %s", i, rows[i].t, out, rows[i].out);
        }
}

static void test_nonce(void **state) {
        char a[33], b[33];
        assert_int_equal(acs_make_nonce(a), 0);
        assert_int_equal(acs_make_nonce(b), 0);
        assert_int_equal(strlen(a), 32);
        assert_int_equal(strspn(a, "0123456789abcdef"), 32);
        assert_int_equal(strspn(b, "0123456789abcdef"), 32);
        assert_string_not_equal(a, b);
}

/* The allocation-free form signs exactly like sign_request, for short
 * input on the stack and for a long STS token (the heap path); the wipe on
 * done leaves no token in the buffer. */
static void test_into_matches_and_wipes(void **state) {
        static char token[5000];
        memset(token, 'T', sizeof token - 1);
        for (int with_token = 0; with_token < 2; with_token++) {
                sign_input in = published_input();
                if (with_token)
                        in.security_token = token;
                sign_output o;
                sign_result *r = malloc(sizeof *r);
                assert_non_null(r);
                assert_int_equal(sign_request(&in, "YourAccessKeyId", "YourAccessKeySecret", &o), 0);
                assert_int_equal(sign_request_into(&in, "YourAccessKeyId", "YourAccessKeySecret", r), 0);
                assert_true(with_token ? r->heap != NULL : r->heap == NULL);
                assert_string_equal(r->signature, o.signature);
                assert_string_equal(r->canonical_query, o.canonical_query);
                assert_string_equal(r->signed_headers, o.signed_headers);
                assert_int_equal(r->n_headers, o.n_headers);
                for (size_t i = 0; i < o.n_headers; i++)
                        assert_string_equal(r->headers[i], o.headers[i]);
                assert_int_equal(with_token, strstr(r->canonical_request, "TTTT") != NULL);
                assert_null(strstr(o.canonical_request, "TTTT")); /* redacted */
                sign_output_done(&o);
                if (!with_token) {
                        size_t used = r->used;
                        sign_result_done(r);
                        for (size_t i = 0; i < used; i++)
                                assert_int_equal(r->buf[i], 0);
                } else
                        sign_result_done(r);
                assert_null(r->heap);
                free(r);
        }
        sign_result r;
        sign_input bad = published_input();
        bad.host = "a\r\nX-Evil: 1";
        assert_int_equal(sign_request_into(&bad, "id", "secret", &r), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_published_vector),
                cmocka_unit_test(test_sae_vector),
                cmocka_unit_test(test_values_trimmed),
                cmocka_unit_test(test_percent_encode_table),
                cmocka_unit_test(test_percent_encode_every_byte),
                cmocka_unit_test(test_path_encoding),
                cmocka_unit_test(test_query_canonical),
                cmocka_unit_test(test_security_token),
                cmocka_unit_test(test_content_type_and_body),
                cmocka_unit_test(test_both_optional_headers_fit),
                cmocka_unit_test(test_invalid_input),
                cmocka_unit_test(test_sha256_hex),
                cmocka_unit_test(test_format_date),
                cmocka_unit_test(test_nonce),
                cmocka_unit_test(test_into_matches_and_wipes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
