/* SPDX-License-Identifier: MIT */
/* Classification of a cloud API answer (SPEC 4): pure, no I/O. The queue,
 * signing and dispatch are in api.c. */
#include "api.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "util.h"

const char *api_outcome_name(api_outcome o) {
        switch (o) {
        case API_OK:
                return "ok";
        case API_TRANSIENT:
                return "transient";
        case API_THROTTLED:
                return "throttled";
        case API_PERMANENT:
                return "permanent";
        case API_NOT_RUNNING:
                return "not-running";
        }
        return "unknown";
}

/* ---- classification (pure) ---- */

/* Copies at most dstsz-1 bytes for log lines: control characters become
 * spaces (a hostile body must not forge log lines) and a cut never splits a
 * UTF-8 sequence. */
static void copy_text(char *dst, size_t dstsz, const char *src, size_t srclen) {
        size_t n = srclen < dstsz - 1 ? srclen : dstsz - 1;
        if (n < srclen)
                while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
                        n--;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)src[i];
                dst[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
        }
        dst[n] = 0;
}

static void set_text(char *dst, size_t dstsz, const char *src) {
        copy_text(dst, dstsz, src, strlen(src));
}

/* Reads a string-or-number field; absent, null, "" and unreadable types all
 * count as absent: a field of the wrong type must not fail the whole answer. */
static bool read_field(const cJSON *obj, const char *name, char *dst, size_t dstsz) {
        char buf[32];
        const char *s = NULL;
        if (json_get_string_ref(obj, name, buf, sizeof buf, &s) <= 0 || !s || !*s)
                return false;
        set_text(dst, dstsz, s);
        return true;
}

static bool starts_with(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t l = strlen(s), n = strlen(suffix);
        return l >= n && streq(s + l - n, suffix);
}

static bool code_means_success(const char *code) {
        if (streq(code, "200") || !strcasecmp(code, "OK") || !strcasecmp(code, "Success"))
                return true;
        /* numeric 2xx, e.g. Code: 204 */
        return strlen(code) == 3 && code[0] == '2' && code[1] >= '0' && code[1] <= '9' &&
               code[2] >= '0' && code[2] <= '9';
}

/* Outcome for an error code we know by name; false when unknown. */
static bool classify_code(const char *code, api_outcome *ret) {
        static const char *const transient_prefix[] = {
                "System.Upgrading",
                "ServiceUnavailable",
                "InternalError",
        };
        static const char *const permanent_exact[] = {
                "Resouce.no.permission", /* sic, as the API spells it */
                "Resource.no.permission",
                "SignatureDoesNotMatch",
                "IncompleteSignature",
        };
        static const char *const permanent_prefix[] = {
                "Forbidden",
                "NoPermission",
                "InvalidAccessKeyId",
                "InvalidParameter",
                "MissingParameter",
        };

        if (starts_with(code, "Throttling")) {
                *ret = API_THROTTLED;
                return true;
        }
        if (streq(code, "Application.ChangerOrder.Not.Running")) {
                *ret = API_NOT_RUNNING;
                return true;
        }
        for (size_t i = 0; i < ELEMENTSOF(transient_prefix); i++)
                if (starts_with(code, transient_prefix[i])) {
                        *ret = API_TRANSIENT;
                        return true;
                }
        for (size_t i = 0; i < ELEMENTSOF(permanent_exact); i++)
                if (streq(code, permanent_exact[i])) {
                        *ret = API_PERMANENT;
                        return true;
                }
        for (size_t i = 0; i < ELEMENTSOF(permanent_prefix); i++)
                if (starts_with(code, permanent_prefix[i])) {
                        *ret = API_PERMANENT;
                        return true;
                }
        if (ends_with(code, ".NotFound")) {
                *ret = API_PERMANENT;
                return true;
        }
        return false;
}

static api_outcome classify_status(long status) {
        if (status == 429)
                return API_THROTTLED;
        if (status >= 500 && status <= 599)
                return API_TRANSIENT;
        /* 404 and every other 4xx, and 3xx (we never follow redirects) */
        return API_PERMANENT;
}

static bool is_2xx(long status) {
        return status >= 200 && status <= 299;
}

static bool looks_like_html(const char *body, size_t len) {
        size_t i = 0;
        while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
                i++;
        return i < len && body[i] == '<';
}

static bool only_whitespace(const char *p, const char *end) {
        for (; p < end; p++)
                if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
                        return false;
        return true;
}

/* Status 0 means no HTTP answer came: then body (if any) is the transport
 * error text from http.c ("timeout after 10s", curl's message). */
void api_classify(long http_status, const char *body, size_t body_len, api_result *out,
                  cJSON **ret_json) {
        *out = (api_result){ .http_status = http_status };
        if (ret_json)
                *ret_json = NULL;
        if (!body)
                body_len = 0;

        if (http_status <= 0) {
                out->outcome = API_TRANSIENT;
                out->http_status = 0;
                if (body_len > 0)
                        copy_text(out->message, sizeof out->message, body, body_len);
                else
                        set_text(out->message, sizeof out->message, "no response");
                return;
        }
        /* The server answered, so it got the request. */
        out->maybe_delivered = true;

        cJSON *json = NULL;
        size_t error_at = 0;
        bool trailing_junk = false;
        if (body_len > 0) {
                const char *end = NULL;
                json = cJSON_ParseWithLengthOpts(body, body_len, &end, false);
                if (!json) {
                        const char *at = end ? end : cJSON_GetErrorPtr();
                        if (at && at >= body && at <= body + body_len)
                                error_at = (size_t)(at - body);
                } else if (end && !only_whitespace(end, body + body_len)) {
                        trailing_junk = true;
                        error_at = (size_t)(end - body);
                        cJSON_Delete(json);
                        json = NULL;
                }
        }
        const cJSON *obj = cJSON_IsObject(json) ? json : NULL;

        bool have_code = false, have_message = false;
        bool success = true;
        int have_success = 0;
        if (obj) {
                have_code = read_field(obj, "Code", out->code, sizeof out->code) ||
                            read_field(obj, "ErrorCode", out->code, sizeof out->code);
                have_message = read_field(obj, "Message", out->message, sizeof out->message) ||
                               read_field(obj, "ErrorMessage", out->message, sizeof out->message);
                (void)read_field(obj, "RequestId", out->request_id, sizeof out->request_id);
                have_success = json_get_bool(obj, "Success", &success);
        }
        bool code_is_success = have_code && code_means_success(out->code);

        if (!obj) {
                /* No JSON object to read: the status alone decides, except that a
                 * 2xx we cannot read is not success either (try again later). */
                const char *what;
                char buf[64];
                if (body_len == 0)
                        what = "empty body";
                else if (looks_like_html(body, body_len))
                        what = "HTML error page";
                else if (json)
                        what = "response is not a JSON object";
                else {
                        snprintf(buf, sizeof buf, "%s JSON at byte %zu",
                                 trailing_junk ? "trailing data after" : "malformed", error_at);
                        what = buf;
                }
                out->outcome = is_2xx(http_status) ? API_TRANSIENT : classify_status(http_status);
                snprintf(out->message, sizeof out->message, "HTTP %ld: %s", http_status, what);
        } else if (is_2xx(http_status)) {
                bool failed = (have_success == 1 && !success) ||
                              (have_code && !code_is_success && !(have_success == 1 && success));
                if (!failed)
                        out->outcome = API_OK;
                else if (!have_code || code_is_success || !classify_code(out->code, &out->outcome))
                        /* The server said no without saying why: asking again
                         * will get the same answer. */
                        out->outcome = API_PERMANENT;
                if (failed && !have_message)
                        snprintf(out->message, sizeof out->message,
                                 "HTTP %ld: request failed (Success: false)", http_status);
        } else {
                if (!have_code || code_is_success || !classify_code(out->code, &out->outcome))
                        out->outcome = classify_status(http_status);
                if (!have_message)
                        snprintf(out->message, sizeof out->message, "HTTP %ld", http_status);
        }
        /* a success code on an error status says nothing: do not report it */
        if (code_is_success && out->outcome != API_OK)
                out->code[0] = 0;

        if (ret_json)
                *ret_json = json;
        else
                cJSON_Delete(json);
}
