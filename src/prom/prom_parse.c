/* SPDX-License-Identifier: MIT */
#include "prom_parse.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const reason_names[_PROM_REASON_MAX] = {
        [PROM_OK] = "ok",
        [PROM_EMPTY] = "empty",
        [PROM_NOT_FINITE] = "not_finite",
        [PROM_MANY_SERIES] = "many_series",
        [PROM_WRONG_TYPE] = "wrong_type",
        [PROM_QUERY_ERROR] = "query_error",
        [PROM_HTTP_STATUS] = "http_status",
        [PROM_MALFORMED] = "malformed",
        [PROM_UNREACHABLE] = "unreachable",
};

const char *prom_reason_name(prom_reason r) {
        if ((unsigned) r >= _PROM_REASON_MAX)
                return NULL;
        return reason_names[r];
}

const char *prom_cmp_name(prom_cmp c) {
        return c == PROM_BELOW ? "below" : "above";
}

void prom_sanitize_text(char *dst, size_t dstsz, const char *src, size_t srclen) {
        if (!dst || dstsz == 0)
                return;
        dst[0] = 0;
        if (!src)
                return;
        size_t n = 0;
        bool cut = false;
        for (size_t i = 0; i < srclen; i++) {
                unsigned char c = (unsigned char) src[i];
                if (n + 1 >= dstsz) {
                        cut = true;
                        break;
                }
                dst[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char) c;
        }
        dst[n] = 0;
        if (!cut)
                return;
        /* room for "..." and never half a UTF-8 sequence before it */
        size_t keep = dstsz > 4 ? dstsz - 4 : 0;
        if (keep > n)
                keep = n;
        while (keep > 0 && ((unsigned char) dst[keep] & 0xc0) == 0x80)
                keep--;
        if (dstsz >= 4) {
                memcpy(dst + keep, "...", 4);
        } else
                dst[keep] = 0;
}

static void verdict_set(prom_verdict *v, prom_reason reason, const char *fmt, ...)
        _printf_(3, 4);

static void verdict_set(prom_verdict *v, prom_reason reason, const char *fmt, ...) {
        char raw[PROM_TEXT_MAX * 2];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        if (n < 0)
                raw[0] = 0;
        v->reason = reason;
        prom_sanitize_text(v->text, sizeof v->text, raw, strnlen(raw, sizeof raw));
}

/* A sample value as the API writes it: a string ("0.5", "NaN", "+Inf"). Some
 * proxies re-encode it as a JSON number; take that too. */
static int read_sample(const cJSON *pair, double *ret_ts, double *ret_value, char *what,
                       size_t whatsz) {
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2) {
                snprintf(what, whatsz, "a sample is not a [timestamp, \"value\"] pair");
                return -EBADMSG;
        }
        const cJSON *ts = cJSON_GetArrayItem(pair, 0), *val = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsNumber(ts)) {
                snprintf(what, whatsz, "a sample's timestamp is not a number");
                return -EBADMSG;
        }
        *ret_ts = ts->valuedouble;
        if (cJSON_IsNumber(val)) {
                *ret_value = val->valuedouble;
                return 0;
        }
        if (!cJSON_IsString(val) || !val->valuestring || !val->valuestring[0]) {
                snprintf(what, whatsz, "a sample's value is not a numeric string");
                return -EBADMSG;
        }
        const char *s = val->valuestring;
        /* Go's strconv spellings; strtod alone would also take hex floats
         * and "infinity", which no server sends. */
        if (streq(s, "NaN")) {
                *ret_value = NAN;
                return 0;
        }
        if (streq(s, "+Inf") || streq(s, "Inf")) {
                *ret_value = INFINITY;
                return 0;
        }
        if (streq(s, "-Inf")) {
                *ret_value = -INFINITY;
                return 0;
        }
        if (strspn(s, "0123456789+-.eE") != strlen(s)) {
                snprintf(what, whatsz, "a sample's value \"%.40s\" is not a number", s);
                return -EBADMSG;
        }
        char *end = NULL;
        errno = 0;
        double d = strtod(s, &end);
        if (!end || *end || end == s) {
                snprintf(what, whatsz, "a sample's value \"%.40s\" is not a number", s);
                return -EBADMSG;
        }
        /* overflow gives +-HUGE_VAL, which is +-Inf: reported as not finite */
        *ret_value = d;
        return 0;
}

/* {app="a",code="500"} for "several series" messages: enough to see which
 * label the query forgot to aggregate away. */
static void format_labels(const cJSON *metric, char *buf, size_t bufsz) {
        size_t n = 0;
        buf[0] = 0;
        if (bufsz < 3)
                return;
        buf[n++] = '{';
        bool first = true;
        const cJSON *l;
        cJSON_ArrayForEach(l, metric) {
                if (!l->string || !cJSON_IsString(l) || !l->valuestring)
                        continue;
                int w = snprintf(buf + n, bufsz - n, "%s%s=\"%s\"", first ? "" : ",", l->string,
                                 l->valuestring);
                first = false;
                if (w < 0 || (size_t) w >= bufsz - n) {
                        n = bufsz - 1;
                        break;
                }
                n += (size_t) w;
        }
        if (n + 1 < bufsz)
                buf[n++] = '}';
        buf[n < bufsz ? n : bufsz - 1] = 0;
}

static void set_value(prom_verdict *v, double ts, double value) {
        v->sample_time = ts;
        v->value = value;
        if (isnan(value))
                verdict_set(v, PROM_NOT_FINITE,
                            "the value is NaN (0/0: nothing was counted in the window?)");
        else if (isinf(value))
                verdict_set(v, PROM_NOT_FINITE, "the value is %sInf (a division by zero?)",
                            value > 0 ? "+" : "-");
        else {
                v->reason = PROM_OK;
                v->text[0] = 0;
        }
}

static void read_vector(const cJSON *result, prom_verdict *v) {
        if (!cJSON_IsArray(result)) {
                verdict_set(v, PROM_MALFORMED, "malformed answer: data.result is not a list");
                return;
        }
        int n = cJSON_GetArraySize(result);
        v->n_series = n > 0 ? (size_t) n : 0;
        if (n == 0) {
                verdict_set(v, PROM_EMPTY,
                            "the query returned no series (no data for these labels, or a "
                            "comparison filtered everything out)");
                return;
        }
        const cJSON *first = cJSON_GetArrayItem(result, 0);
        if (!cJSON_IsObject(first)) {
                verdict_set(v, PROM_MALFORMED, "malformed answer: a vector element is not an object");
                return;
        }
        if (n > 1) {
                char labels[160];
                format_labels(cJSON_GetObjectItemCaseSensitive(first, "metric"), labels,
                              sizeof labels);
                verdict_set(v, PROM_MANY_SERIES,
                            "the query returned %d series, expected one (aggregate with sum/max "
                            "by nothing); the first is %s",
                            n, labels);
                return;
        }
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(first, "value");
        if (!value && cJSON_GetObjectItemCaseSensitive(first, "histogram")) {
                verdict_set(v, PROM_WRONG_TYPE,
                            "the query returned a native histogram, not a number (use "
                            "histogram_quantile or histogram_count)");
                return;
        }
        char what[96];
        double ts = 0, d = 0;
        if (read_sample(value, &ts, &d, what, sizeof what) < 0) {
                verdict_set(v, PROM_MALFORMED, "malformed answer: %s", what);
                return;
        }
        set_value(v, ts, d);
}

static void read_success(const cJSON *root, prom_verdict *v) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(data, "resultType");
        const cJSON *result = cJSON_GetObjectItemCaseSensitive(data, "result");
        if (!cJSON_IsObject(data) || !cJSON_IsString(type) || !type->valuestring) {
                verdict_set(v, PROM_MALFORMED, "malformed answer: no data.resultType");
                return;
        }
        const char *t = type->valuestring;
        if (streq(t, "vector"))
                read_vector(result, v);
        else if (streq(t, "scalar")) {
                char what[96];
                double ts = 0, d = 0;
                if (read_sample(result, &ts, &d, what, sizeof what) < 0)
                        verdict_set(v, PROM_MALFORMED, "malformed answer: %s", what);
                else
                        set_value(v, ts, d);
        } else if (streq(t, "matrix"))
                verdict_set(v, PROM_WRONG_TYPE,
                            "the query returned a range vector (matrix), not one number: wrap "
                            "the [range] in a function such as rate() or avg_over_time()");
        else if (streq(t, "string"))
                verdict_set(v, PROM_WRONG_TYPE, "the query returned a string, not a number");
        else
                verdict_set(v, PROM_MALFORMED, "malformed answer: unknown resultType \"%.32s\"", t);
}

static void read_error(const cJSON *root, long http_status, prom_verdict *v) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "errorType");
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
        const char *ts = cJSON_IsString(type) && type->valuestring && type->valuestring[0]
                                 ? type->valuestring
                                 : "error";
        const char *es = cJSON_IsString(err) && err->valuestring && err->valuestring[0]
                                 ? err->valuestring
                                 : "(no error text)";
        if (http_status >= 200 && http_status < 300)
                verdict_set(v, PROM_QUERY_ERROR, "query error (%s): %s", ts, es);
        else
                verdict_set(v, PROM_QUERY_ERROR, "query error (%s, HTTP %ld): %s", ts, http_status, es);
}

void prom_parse_response(long http_status, const char *body, size_t len, prom_verdict *ret) {
        *ret = (prom_verdict){ .http_status = http_status };
        if (!body)
                len = 0;

        cJSON *root = len ? cJSON_ParseWithLength(body, len) : NULL;
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
        bool api = cJSON_IsObject(root) && cJSON_IsString(status) && status->valuestring;

        if (api && streq(status->valuestring, "error"))
                read_error(root, http_status, ret);
        else if (http_status < 200 || http_status >= 300) {
                /* What a proxy or an auth layer says is what the operator needs:
                 * the start of its body, on one line. */
                char snippet[160];
                prom_sanitize_text(snippet, sizeof snippet, body, len);
                if (http_status == 401 || http_status == 403)
                        verdict_set(ret, PROM_HTTP_STATUS,
                                    "HTTP %ld: the server refused the credentials (check "
                                    "prometheus.token_file)%s%s",
                                    http_status, snippet[0] ? ": " : "", snippet);
                else
                        verdict_set(ret, PROM_HTTP_STATUS, "HTTP %ld from the server%s%s",
                                    http_status, snippet[0] ? ": " : "", snippet);
        } else if (!root)
                verdict_set(ret, PROM_MALFORMED, "malformed answer: %s",
                            len ? "not JSON" : "empty body");
        else if (!api)
                verdict_set(ret, PROM_MALFORMED,
                            "malformed answer: no \"status\" (is the URL the Prometheus HTTP API?)");
        else if (streq(status->valuestring, "success"))
                read_success(root, ret);
        else
                verdict_set(ret, PROM_MALFORMED, "malformed answer: status \"%.32s\"",
                            status->valuestring);
        cJSON_Delete(root);
}

bool prom_holds(const prom_verdict *v, prom_cmp cmp, double threshold) {
        if (!v || v->reason != PROM_OK || !isfinite(v->value) || isnan(threshold))
                return false;
        return cmp == PROM_BELOW ? v->value < threshold : v->value > threshold;
}

const char *prom_format_verdict(const prom_verdict *v, char *buf, size_t bufsz) {
        if (!buf || bufsz == 0)
                return buf;
        if (v->reason == PROM_OK)
                snprintf(buf, bufsz, "%.6g", v->value);
        else
                snprintf(buf, bufsz, "inconclusive (%s): %s", strna(prom_reason_name(v->reason)),
                         v->text);
        return buf;
}
