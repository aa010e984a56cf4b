/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <strings.h>

#include "util.h"

const cJSON *json_member(const cJSON *obj, const char *name) {
        if (!obj || !cJSON_IsObject(obj))
                return NULL;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!v || cJSON_IsNull(v))
                return NULL;
        return v;
}

const cJSON *json_path(const cJSON *obj, const char *dotted) {
        char part[128];
        const char *p = dotted;
        while (obj && *p) {
                const char *dot = strchr(p, '.');
                size_t n = dot ? (size_t)(dot - p) : strlen(p);
                if (n == 0 || n >= sizeof part)
                        return NULL;
                memcpy(part, p, n);
                part[n] = 0;
                obj = json_member(obj, part);
                p += n + (dot ? 1 : 0);
        }
        return obj;
}

int json_get_string_ref(const cJSON *obj, const char *name, char *buf, size_t bufsz, const char **ret) {
        const cJSON *v = json_member(obj, name);
        if (!v)
                return 0;
        if (cJSON_IsString(v)) {
                *ret = v->valuestring;
                return 1;
        }
        if (!cJSON_IsNumber(v))
                return -EBADMSG;
        double d = v->valuedouble;
        int n;
        if (d == floor(d) && fabs(d) < 9.007199254740992e15)
                n = snprintf(buf, bufsz, "%" PRId64, (int64_t)d);
        else
                n = snprintf(buf, bufsz, "%.17g", d);
        if (n < 0 || (size_t)n >= bufsz)
                return -ENOBUFS;
        *ret = buf;
        return 1;
}

const char *json_where_item(char *buf, size_t bufsz, const char *prefix, size_t index) {
        char digits[24];
        size_t nd = 0;
        do
                digits[nd++] = (char)('0' + index % 10);
        while ((index /= 10) > 0);
        size_t pl = strlen(prefix);
        if (bufsz == 0)
                return buf;
        if (pl + nd + 3 > bufsz) {
                snprintf(buf, bufsz, "%s", prefix);
                return buf;
        }
        char *p = buf;
        memcpy(p, prefix, pl);
        p += pl;
        *p++ = '[';
        while (nd > 0)
                *p++ = digits[--nd];
        *p++ = ']';
        *p = 0;
        return buf;
}

int json_get_string(const cJSON *obj, const char *name, char **ret) {
        char buf[32];
        const char *ref = NULL;
        int r = json_get_string_ref(obj, name, buf, sizeof buf, &ref);
        if (r <= 0)
                return r;
        char *s = strdup(ref);
        if (!s)
                return -ENOMEM;
        free(*ret);
        *ret = s;
        return 1;
}

int json_get_int64(const cJSON *obj, const char *name, int64_t *ret) {
        const cJSON *v = json_member(obj, name);
        if (!v)
                return 0;
        if (cJSON_IsNumber(v)) {
                double d = v->valuedouble;
                /* 2^63 is exactly representable; anything at or above it is not an int64. */
                if (!isfinite(d) || d != floor(d) || d >= 9.2233720368547758e18 || d < -9.2233720368547758e18)
                        return -EBADMSG;
                *ret = (int64_t)d;
                return 1;
        }
        if (cJSON_IsString(v)) {
                const char *s = v->valuestring;
                while (*s == ' ')
                        s++;
                if (!*s)
                        return 0; /* "" is how some APIs say "absent" */
                int64_t x;
                if (parse_int64(s, INT64_MIN, INT64_MAX, &x) < 0)
                        return -EBADMSG;
                *ret = x;
                return 1;
        }
        return -EBADMSG;
}

int json_get_int(const cJSON *obj, const char *name, int *ret) {
        int64_t x;
        int r = json_get_int64(obj, name, &x);
        if (r <= 0)
                return r;
        if (x < INT_MIN || x > INT_MAX)
                return -EBADMSG;
        *ret = (int)x;
        return 1;
}

int json_get_bool(const cJSON *obj, const char *name, bool *ret) {
        const cJSON *v = json_member(obj, name);
        if (!v)
                return 0;
        if (cJSON_IsBool(v)) {
                *ret = cJSON_IsTrue(v);
                return 1;
        }
        if (cJSON_IsNumber(v)) {
                if (v->valuedouble == 0 || v->valuedouble == 1) {
                        *ret = v->valuedouble == 1;
                        return 1;
                }
                return -EBADMSG;
        }
        if (cJSON_IsString(v)) {
                const char *s = v->valuestring;
                if (!strcasecmp(s, "true") || streq(s, "1")) {
                        *ret = true;
                        return 1;
                }
                if (!strcasecmp(s, "false") || streq(s, "0")) {
                        *ret = false;
                        return 1;
                }
                if (!*s)
                        return 0;
        }
        return -EBADMSG;
}

/* ---- readers that name the JSON path when they give up ---- */

int json_error(char **ret_error, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                va_start(ap, fmt);
                char *s = NULL;
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = s;
        }
        return -EBADMSG;
}

int json_field_error(char **ret_error, const char *where, const char *name, const char *what) {
        return json_error(ret_error, "%s%s%s: %s", where, *where ? "." : "", name, what);
}

/* Ids and codes; "" counts as absent because that is how the APIs say "none". */
int json_read_string(const cJSON *obj, const char *where, const char *name, char **ret, char **ret_error) {
        _cleanup_free_ char *s = NULL;
        int r = json_get_string(obj, name, &s);
        if (r == -EBADMSG)
                return json_field_error(ret_error, where, name, "expected a string");
        if (r <= 0)
                return r;
        if (!*s)
                return 0;
        free(*ret);
        *ret = TAKE_PTR(s);
        return 1;
}

int json_read_int(const cJSON *obj, const char *where, const char *name, int *ret, char **ret_error) {
        int r = json_get_int(obj, name, ret);
        if (r == -EBADMSG)
                return json_field_error(ret_error, where, name, "expected a number");
        return r;
}

/* Counts that make no sense below zero are treated as absent rather than
 * failing the whole snapshot over a field the rules barely use. */
int json_read_count(const cJSON *obj, const char *where, const char *name, int *ret, char **ret_error) {
        int x = 0;
        int r = json_read_int(obj, where, name, &x, ret_error);
        if (r > 0 && x >= 0)
                *ret = x;
        return r;
}

int json_read_bool(const cJSON *obj, const char *where, const char *name, bool *ret, char **ret_error) {
        int r = json_get_bool(obj, name, ret);
        if (r == -EBADMSG)
                return json_field_error(ret_error, where, name, "expected a boolean");
        return r;
}

/* The console (EDAS CreateTime, some SAE lists) speaks China Standard Time. */
#define CONSOLE_UTC_OFFSET_SEC (8 * 3600)

static bool is_leap_year(int y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m) {
        static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

static int digits(const char *s, size_t n) {
        int x = 0;
        for (size_t i = 0; i < n; i++)
                x = x * 10 + (s[i] - '0');
        return x;
}

int json_parse_console_time(const char *s, int64_t *ret_ms) {
        static const char shape[] = "dddd-dd-dd dd:dd:dd";
        if (!s || strlen(s) != sizeof shape - 1)
                return -EINVAL;
        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
                        return -EINVAL;

        int year = digits(s, 4), month = digits(s + 5, 2), day = digits(s + 8, 2);
        int hour = digits(s + 11, 2), minute = digits(s + 14, 2), second = digits(s + 17, 2);
        if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
            hour > 23 || minute > 59 || second > 59)
                return -EINVAL;

        struct tm tm = {
                .tm_year = year - 1900,
                .tm_mon = month - 1,
                .tm_mday = day,
                .tm_hour = hour,
                .tm_min = minute,
                .tm_sec = second,
        };
        time_t t = timegm(&tm);
        if (t == (time_t)-1) /* year >= 1970 rules out the one legitimate -1 */
                return -EINVAL;
        *ret_ms = ((int64_t)t - CONSOLE_UTC_OFFSET_SEC) * 1000;
        return 0;
}

int json_read_time(const cJSON *obj, const char *where, const char *name, int64_t *ret, char **ret_error) {
        const cJSON *v = json_member(obj, name);
        if (!v)
                return 0;
        int64_t ms = 0;
        int r;
        if (cJSON_IsString(v) && v->valuestring[0] && strchr(v->valuestring + 1, '-'))
                r = json_parse_console_time(v->valuestring, &ms) < 0 ? -EBADMSG : 1;
        else
                r = json_get_int64(obj, name, &ms);
        if (r == -EBADMSG)
                return json_field_error(ret_error, where, name,
                                   "expected milliseconds or \"YYYY-MM-DD HH:MM:SS\"");
        if (r > 0 && ms >= 0)
                *ret = ms;
        return r;
}

