/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <errno.h>
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

int json_get_string(const cJSON *obj, const char *name, char **ret) {
        const cJSON *v = json_member(obj, name);
        if (!v)
                return 0;
        char *s;
        if (cJSON_IsString(v))
                s = strdup(v->valuestring);
        else if (cJSON_IsNumber(v)) {
                double d = v->valuedouble;
                if (d == floor(d) && fabs(d) < 9.007199254740992e15)
                        s = strdup_printf("%" PRId64, (int64_t)d);
                else
                        s = strdup_printf("%.17g", d);
        } else
                return -EBADMSG;
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
