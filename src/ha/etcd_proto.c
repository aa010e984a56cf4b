/* SPDX-License-Identifier: MIT */
#include "etcd_proto.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "util.h"

static const char *const paths[_ETCD_REQ_MAX] = {
        [ETCD_REQ_AUTHENTICATE] = "/v3/auth/authenticate",
        [ETCD_REQ_LEASE_GRANT] = "/v3/lease/grant",
        [ETCD_REQ_LEASE_KEEPALIVE] = "/v3/lease/keepalive",
        [ETCD_REQ_LEASE_REVOKE] = "/v3/lease/revoke",
        [ETCD_REQ_RANGE] = "/v3/kv/range",
        [ETCD_REQ_PUT] = "/v3/kv/put",
        [ETCD_REQ_DELETE_RANGE] = "/v3/kv/deleterange",
        [ETCD_REQ_TXN] = "/v3/kv/txn",
};

const char *etcd_request_path(etcd_request_kind kind) {
        return kind >= 0 && kind < _ETCD_REQ_MAX ? paths[kind] : NULL;
}

bool etcd_request_idempotent(etcd_request_kind kind) {
        /* A grant sent twice leaks one lease until its TTL; a keepalive
         * twice renews twice: both harmless. Writes are not. */
        return kind == ETCD_REQ_AUTHENTICATE || kind == ETCD_REQ_LEASE_GRANT ||
               kind == ETCD_REQ_LEASE_KEEPALIVE || kind == ETCD_REQ_RANGE;
}

/* ---- base64 ---- */

int etcd_b64_encode(const void *p, size_t n, char **ret) {
        if (n > (size_t)INT32_MAX / 2)
                return -EINVAL;
        char *out = malloc(4 * ((n + 2) / 3) + 1);
        if (!out)
                return -ENOMEM;
        EVP_EncodeBlock((unsigned char *)out, p, (int)n);
        *ret = out;
        return 0;
}

int etcd_b64_decode(const char *s, char **ret, size_t *ret_len) {
        size_t n = strlen(s);
        if (n % 4 != 0 || n > (size_t)INT32_MAX / 2)
                return -EINVAL;
        char *out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int len = n ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n) : 0;
        if (len < 0) {
                free(out);
                return -EINVAL;
        }
        /* EVP_DecodeBlock counts the bytes the padding stands for. */
        for (size_t i = n; i > 0 && s[i - 1] == '=' && len > 0; i--)
                len--;
        out[len] = 0;
        *ret = out;
        *ret_len = (size_t)len;
        return 0;
}

char *etcd_prefix_end(const char *prefix) {
        size_t n = strlen(prefix);
        while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
                n--;
        if (n == 0) {
                errno = EINVAL;
                return NULL;
        }
        char *end = strndup(prefix, n);
        if (!end)
                return NULL;
        end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
        return end;
}

/* ---- building ---- */

static int add_int64(cJSON *o, const char *name, int64_t v) {
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRId64, v);
        return cJSON_AddStringToObject(o, name, buf) ? 0 : -ENOMEM;
}

static int add_b64(cJSON *o, const char *name, const void *p, size_t n) {
        _cleanup_free_ char *b = NULL;
        int r = etcd_b64_encode(p, n, &b);
        if (r < 0)
                return r;
        return cJSON_AddStringToObject(o, name, b) ? 0 : -ENOMEM;
}

static int add_op_fields(cJSON *o, const etcd_op *op) {
        if (!op->key)
                return -EINVAL;
        int r = add_b64(o, "key", op->key, strlen(op->key));
        if (r < 0)
                return r;
        if (op->type != ETCD_OP_PUT && op->range_end) {
                r = add_b64(o, "range_end", op->range_end, strlen(op->range_end));
                if (r < 0)
                        return r;
        }
        if (op->type == ETCD_OP_PUT) {
                r = add_b64(o, "value", op->value ? op->value : "", op->value ? op->value_len : 0);
                if (r < 0)
                        return r;
                if (op->lease) {
                        r = add_int64(o, "lease", op->lease);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int add_ops(cJSON *o, const char *name, const etcd_op *ops, size_t n) {
        static const char *const wrap[] = {
                [ETCD_OP_RANGE] = "request_range",
                [ETCD_OP_PUT] = "request_put",
                [ETCD_OP_DELETE_RANGE] = "request_delete_range",
        };
        cJSON *a = cJSON_AddArrayToObject(o, name);
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (ops[i].type > ETCD_OP_DELETE_RANGE)
                        return -EINVAL;
                cJSON *item = cJSON_CreateObject();
                if (!item || !cJSON_AddItemToArray(a, item))
                        return cJSON_Delete(item), -ENOMEM;
                cJSON *inner = cJSON_AddObjectToObject(item, wrap[ops[i].type]);
                if (!inner)
                        return -ENOMEM;
                int r = add_op_fields(inner, &ops[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_compares(cJSON *o, const etcd_compare *c, size_t n) {
        static const char *const targets[] = {
                [ETCD_CMP_VERSION] = "VERSION", [ETCD_CMP_CREATE] = "CREATE",
                [ETCD_CMP_MOD] = "MOD",         [ETCD_CMP_VALUE] = "VALUE",
                [ETCD_CMP_LEASE] = "LEASE",
        };
        static const char *const fields[] = {
                [ETCD_CMP_VERSION] = "version", [ETCD_CMP_CREATE] = "create_revision",
                [ETCD_CMP_MOD] = "mod_revision", [ETCD_CMP_VALUE] = "value",
                [ETCD_CMP_LEASE] = "lease",
        };
        static const char *const results[] = {
                [ETCD_CMP_EQUAL] = "EQUAL", [ETCD_CMP_GREATER] = "GREATER",
                [ETCD_CMP_LESS] = "LESS",   [ETCD_CMP_NOT_EQUAL] = "NOT_EQUAL",
        };
        cJSON *a = cJSON_AddArrayToObject(o, "compare");
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (!c[i].key || c[i].target > ETCD_CMP_LEASE || c[i].result > ETCD_CMP_NOT_EQUAL)
                        return -EINVAL;
                cJSON *item = cJSON_CreateObject();
                if (!item || !cJSON_AddItemToArray(a, item))
                        return cJSON_Delete(item), -ENOMEM;
                int r = add_b64(item, "key", c[i].key, strlen(c[i].key));
                if (r < 0)
                        return r;
                if (!cJSON_AddStringToObject(item, "target", targets[c[i].target]) ||
                    !cJSON_AddStringToObject(item, "result", results[c[i].result]))
                        return -ENOMEM;
                if (c[i].target == ETCD_CMP_VALUE)
                        r = add_b64(item, fields[c[i].target], c[i].value ? c[i].value : "",
                                    c[i].value ? c[i].value_len : 0);
                else
                        r = add_int64(item, fields[c[i].target], c[i].number);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int build_into(cJSON *o, const etcd_request *req) {
        etcd_op op = req->op;
        switch (req->kind) {
        case ETCD_REQ_AUTHENTICATE:
                if (!req->name || !req->password)
                        return -EINVAL;
                if (!cJSON_AddStringToObject(o, "name", req->name) ||
                    !cJSON_AddStringToObject(o, "password", req->password))
                        return -ENOMEM;
                return 0;
        case ETCD_REQ_LEASE_GRANT:
                if (req->ttl_sec <= 0)
                        return -EINVAL;
                return add_int64(o, "TTL", req->ttl_sec);
        case ETCD_REQ_LEASE_KEEPALIVE:
        case ETCD_REQ_LEASE_REVOKE:
                if (!req->lease_id)
                        return -EINVAL;
                return add_int64(o, "ID", req->lease_id);
        case ETCD_REQ_RANGE:
                op.type = ETCD_OP_RANGE;
                return add_op_fields(o, &op);
        case ETCD_REQ_PUT:
                op.type = ETCD_OP_PUT;
                return add_op_fields(o, &op);
        case ETCD_REQ_DELETE_RANGE:
                op.type = ETCD_OP_DELETE_RANGE;
                return add_op_fields(o, &op);
        case ETCD_REQ_TXN: {
                int r = add_compares(o, req->compare, req->n_compare);
                if (r >= 0)
                        r = add_ops(o, "success", req->success, req->n_success);
                if (r >= 0)
                        r = add_ops(o, "failure", req->failure, req->n_failure);
                return r;
        }
        default:
                return -EINVAL;
        }
}

int etcd_build_request(const etcd_request *req, char **ret) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return -ENOMEM;
        int r = build_into(o, req);
        if (r >= 0) {
                char *s = cJSON_PrintUnformatted(o);
                if (s)
                        *ret = s;
                else
                        r = -ENOMEM;
        }
        if (req->kind == ETCD_REQ_AUTHENTICATE) {
                /* The tree holds a copy of the password. */
                const cJSON *pw = json_member(o, "password");
                if (pw && cJSON_IsString(pw))
                        OPENSSL_cleanse(pw->valuestring, strlen(pw->valuestring));
        }
        cJSON_Delete(o);
        return r;
}

/* ---- parsing ---- */

static int fail(etcd_result *r, int error, const char *fmt, ...) _printf_(3, 4);
static int fail(etcd_result *r, int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *t = NULL;
        if (vasprintf(&t, fmt, ap) < 0)
                t = NULL;
        va_end(ap);
        free(r->error_text);
        r->error_text = t;
        r->error = error;
        return error;
}

static int grpc_to_errno(int code) {
        switch (code) {
        case 3: /* INVALID_ARGUMENT; also "user name is empty" when auth is on */
                return -EINVAL;
        case 5: /* NOT_FOUND */
                return -ENOENT;
        case 4: /* DEADLINE_EXCEEDED */
        case 14: /* UNAVAILABLE */
                return -EAGAIN;
        case 7: /* PERMISSION_DENIED */
        case 16: /* UNAUTHENTICATED */
                return -EACCES;
        default:
                return -EREMOTEIO;
        }
}

/* Unary errors: {"error":"..","message":"..","code":5}; stream errors
 * (keepalive): {"error":{"grpc_code":5,"http_code":404,"message":".."}}. */
static int read_error(const cJSON *o, etcd_result *r) {
        const cJSON *e = json_member(o, "error");
        if (!e)
                return 0;
        const cJSON *holder = cJSON_IsObject(e) ? e : o;
        int code = 0;
        if (json_get_int(holder, cJSON_IsObject(e) ? "grpc_code" : "code", &code) < 0)
                code = 0;
        _cleanup_free_ char *msg = NULL;
        if (json_get_string(holder, "message", &msg) <= 0 && cJSON_IsString(e))
                msg = strdup(e->valuestring);
        r->grpc_code = code;
        if (!msg || !*msg)
                return 0; /* LeaseGrantResponse has an always-empty "error" */
        return fail(r, code ? grpc_to_errno(code) : -EREMOTEIO, "etcd: %s", msg);
}

static int read_i64(const cJSON *o, const char *name, int64_t *ret, etcd_result *r) {
        int k = json_get_int64(o, name, ret);
        if (k < 0)
                return fail(r, -EPROTO, "etcd answer: %s is not an integer", name);
        return 0;
}

static int read_kvs(const cJSON *o, etcd_op_result *op, etcd_result *r) {
        const cJSON *kvs = json_member(o, "kvs");
        if (read_i64(o, "count", &op->count, r) < 0)
                return r->error;
        if (!kvs)
                return 0;
        if (!cJSON_IsArray(kvs))
                return fail(r, -EPROTO, "etcd answer: kvs is not a list");
        int n = cJSON_GetArraySize(kvs);
        op->kvs = calloc(n > 0 ? (size_t)n : 1, sizeof *op->kvs);
        if (!op->kvs)
                return fail(r, -ENOMEM, "out of memory");
        const cJSON *item;
        cJSON_ArrayForEach(item, kvs) {
                etcd_kv *kv = &op->kvs[op->n_kvs++];
                _cleanup_free_ char *k64 = NULL, *v64 = NULL;
                size_t klen;
                if (json_get_string(item, "key", &k64) <= 0 ||
                    etcd_b64_decode(k64, &kv->key, &klen) < 0 || strlen(kv->key) != klen)
                        return fail(r, -EPROTO, "etcd answer: a kv without a readable key");
                if (json_get_string(item, "value", &v64) < 0 ||
                    etcd_b64_decode(v64 ? v64 : "", &kv->value, &kv->value_len) < 0)
                        return fail(r, -EPROTO, "etcd answer: %s: value is not base64", kv->key);
                if (read_i64(item, "create_revision", &kv->create_revision, r) < 0 ||
                    read_i64(item, "mod_revision", &kv->mod_revision, r) < 0 ||
                    read_i64(item, "version", &kv->version, r) < 0 ||
                    read_i64(item, "lease", &kv->lease, r) < 0)
                        return r->error;
        }
        return 0;
}

static int read_txn(const cJSON *o, etcd_result *r) {
        if (json_get_bool(o, "succeeded", &r->succeeded) < 0)
                return fail(r, -EPROTO, "etcd answer: succeeded is not a boolean");
        const cJSON *resps = json_member(o, "responses");
        if (!resps)
                return 0;
        if (!cJSON_IsArray(resps))
                return fail(r, -EPROTO, "etcd answer: responses is not a list");
        int n = cJSON_GetArraySize(resps);
        r->responses = calloc(n > 0 ? (size_t)n : 1, sizeof *r->responses);
        if (!r->responses)
                return fail(r, -ENOMEM, "out of memory");
        const cJSON *item;
        cJSON_ArrayForEach(item, resps) {
                etcd_op_result *op = &r->responses[r->n_responses++];
                const cJSON *x;
                if ((x = json_member(item, "response_range"))) {
                        op->type = ETCD_OP_RANGE;
                        if (read_kvs(x, op, r) < 0)
                                return r->error;
                } else if ((x = json_member(item, "response_delete_range"))) {
                        op->type = ETCD_OP_DELETE_RANGE;
                        if (read_i64(x, "deleted", &op->count, r) < 0)
                                return r->error;
                } else if (json_member(item, "response_put"))
                        op->type = ETCD_OP_PUT;
                else
                        return fail(r, -EPROTO, "etcd answer: a txn response of unknown kind");
        }
        return 0;
}

int etcd_parse_response(etcd_request_kind kind, long http_status, const char *body, etcd_result *r) {
        *r = (etcd_result){ .http_status = http_status };
        cJSON *root = body && *body ? cJSON_Parse(body) : NULL;
        if (!root || !cJSON_IsObject(root)) {
                cJSON_Delete(root);
                return fail(r, -EPROTO, "etcd answered HTTP %ld without a JSON object", http_status);
        }
        const cJSON *o = root;
        /* The keepalive stream wraps each message: {"result":{...}}. */
        if (kind == ETCD_REQ_LEASE_KEEPALIVE && json_member(root, "result"))
                o = json_member(root, "result");

        if (read_error(root, r) < 0 || (o != root && read_error(o, r) < 0))
                goto out;
        if (http_status != 200) {
                fail(r, -EREMOTEIO, "etcd answered HTTP %ld", http_status);
                goto out;
        }
        if (read_i64(json_member(o, "header"), "revision", &r->revision, r) < 0)
                goto out;

        switch (kind) {
        case ETCD_REQ_AUTHENTICATE:
                if (json_get_string(o, "token", &r->token) <= 0 || !*r->token)
                        fail(r, -EPROTO, "etcd answer: no auth token");
                break;
        case ETCD_REQ_LEASE_GRANT:
        case ETCD_REQ_LEASE_KEEPALIVE:
                if (read_i64(o, "ID", &r->lease_id, r) < 0 || read_i64(o, "TTL", &r->ttl_sec, r) < 0)
                        break;
                if (kind == ETCD_REQ_LEASE_GRANT && (r->lease_id == 0 || r->ttl_sec <= 0))
                        fail(r, -EPROTO, "etcd answer: a lease grant without ID or TTL");
                break;
        case ETCD_REQ_RANGE:
                r->range.type = ETCD_OP_RANGE;
                read_kvs(o, &r->range, r);
                break;
        case ETCD_REQ_DELETE_RANGE:
                r->range.type = ETCD_OP_DELETE_RANGE;
                read_i64(o, "deleted", &r->range.count, r);
                break;
        case ETCD_REQ_TXN:
                read_txn(o, r);
                break;
        default:
                break;
        }
out:
        cJSON_Delete(root);
        return r->error;
}

static void op_result_done(etcd_op_result *op) {
        for (size_t i = 0; i < op->n_kvs; i++) {
                free(op->kvs[i].key);
                free(op->kvs[i].value);
        }
        free(op->kvs);
        op->kvs = NULL;
        op->n_kvs = 0;
}

void etcd_result_done(etcd_result *r) {
        if (!r)
                return;
        free(r->error_text);
        for (size_t i = 0; i < r->n_responses; i++)
                op_result_done(&r->responses[i]);
        free(r->responses);
        op_result_done(&r->range);
        free_secret(r->token);
        *r = (etcd_result){ 0 };
}
