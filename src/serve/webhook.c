/* SPDX-License-Identifier: MIT */
#include "webhook.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "util.h"

/* Caps keep one authenticated but careless (or hostile) sender from turning
 * a 1 MiB body into an unbounded amount of routing work and memory. */
#define WEBHOOK_MAX_ALERTS 1000
#define WEBHOOK_MAX_LABELS 64
#define WEBHOOK_MAX_LABEL_BYTES 1024
/* How much of a sender-chosen name goes into an error message. */
#define WEBHOOK_MAX_NAME_IN_ERROR 64

static void labels_free(label_pair *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].value);
        }
        free(p);
}

static void webhook_alert_done(webhook_alert *a) {
        labels_free(a->alert.labels, a->alert.n_labels);
        free(a->fingerprint);
        *a = (webhook_alert){ 0 };
}

void webhook_batch_done(webhook_batch *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n_alerts; i++)
                webhook_alert_done(&b->alerts[i]);
        free(b->alerts);
        *b = (webhook_batch){ 0 };
}

static bool is_leap(int64_t y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m) {
        static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): no timegm(), no TZ, no libc range surprises. */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* Exactly n ASCII digits at *p, advancing it. */
static bool read_digits(const char **p, int n, int *ret) {
        int v = 0;
        for (int i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static bool expect_char(const char **p, char c1, char c2) {
        if (**p != c1 && **p != c2)
                return false;
        (*p)++;
        return true;
}

int webhook_parse_time(const char *s, int64_t *ret_ms) {
        if (!s)
                return -EINVAL;

        const char *p = s;
        int year, month, day, hour, minute, second;
        if (!read_digits(&p, 4, &year) || !expect_char(&p, '-', '-') ||
            !read_digits(&p, 2, &month) || !expect_char(&p, '-', '-') ||
            !read_digits(&p, 2, &day) || !expect_char(&p, 'T', 't') ||
            !read_digits(&p, 2, &hour) || !expect_char(&p, ':', ':') ||
            !read_digits(&p, 2, &minute) || !expect_char(&p, ':', ':') ||
            !read_digits(&p, 2, &second))
                return -EINVAL;

        /* RFC 3339 allows a leap second (60); it is counted as the first
         * second of the next minute, which is all the precision we need. */
        if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
            hour > 23 || minute > 59 || second > 60)
                return -EINVAL;

        int64_t ms = 0;
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                /* Keep milliseconds, truncate the rest (any number of digits). */
                int scale = 100;
                for (; *p >= '0' && *p <= '9'; p++) {
                        ms += (*p - '0') * scale;
                        scale /= 10;
                }
        }

        int64_t offset_min = 0;
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int sign = *p == '-' ? -1 : 1;
                int oh, om;
                p++;
                if (!read_digits(&p, 2, &oh) || !expect_char(&p, ':', ':') || !read_digits(&p, 2, &om))
                        return -EINVAL;
                if (oh > 23 || om > 59)
                        return -EINVAL;
                offset_min = sign * (oh * 60 + om);
        } else
                return -EINVAL;

        if (*p != '\0')
                return -EINVAL;

        /* Alertmanager's Go zero time (0001-01-01T00:00:00Z) means "no known
         * end". Nothing real happens in year 1, so the whole year reads as that. */
        if (year == 1) {
                *ret_ms = 0;
                return 0;
        }

        int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
                       offset_min * 60;
        int64_t v = secs * 1000 + ms;
        /* 0 is reserved for "until resolved"; the real instant 1970-01-01T00:00:00Z
         * is long past either way, so it becomes the millisecond before it. */
        *ret_ms = v == 0 ? -1 : v;
        return 0;
}

typedef struct parse_error {
        char *text;
} parse_error;

static int fail(parse_error *e, const char *fmt, ...) _printf_(2, 3);
static int fail(parse_error *e, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        free(e->text);
        e->text = s;
        return s ? -EBADMSG : -ENOMEM;
}

/* A sender-chosen name made safe for an error message (which ends up in an
 * HTTP reply and the journal): printable ASCII only, bounded. */
static void safe_name(const char *name, char *buf, size_t bufsz) {
        size_t o = 0;
        for (const char *p = name; *p && o + 4 < bufsz; p++) {
                if (o >= WEBHOOK_MAX_NAME_IN_ERROR) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                unsigned char c = (unsigned char)*p;
                buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        buf[o] = '\0';
}

/* cJSON decodes "\u0000" into a NUL that ends the C string it hands us, so
 * "ok\u0000evil" would read as "ok". Before parsing, each such escape
 * becomes NUL_MARK (0xFF, never valid in UTF-8) followed by the rest of the
 * escape text, same length, so error offsets stay true. Strings that
 * matter are then checked: the mark means a NUL was there, anything else
 * invalid is invalid UTF-8. */
#define NUL_MARK '\xff'

static void mark_nul_escapes(char *s, size_t len) {
        bool in_string = false;
        for (size_t i = 0; i < len; i++) {
                if (!in_string) {
                        in_string = s[i] == '"';
                        continue;
                }
                if (s[i] == '"') {
                        in_string = false;
                        continue;
                }
                if (s[i] != '\\' || i + 1 >= len)
                        continue;
                if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0) {
                        s[i] = NUL_MARK;
                        i += 5;
                } else
                        i++; /* the escaped character, whatever it is */
        }
}

/* NULL when s is valid UTF-8 without NULs, else what is wrong with it. */
static const char *bad_text(const char *s) {
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
                unsigned c = *p;
                if (c == (unsigned char)NUL_MARK && strncmp((const char *)p + 1, "u0000", 5) == 0)
                        return "contains a NUL character";
                if (c < 0x80) {
                        p++;
                        continue;
                }
                size_t n;
                unsigned cp, min;
                if ((c & 0xe0) == 0xc0) {
                        n = 1, cp = c & 0x1f, min = 0x80;
                } else if ((c & 0xf0) == 0xe0) {
                        n = 2, cp = c & 0x0f, min = 0x800;
                } else if ((c & 0xf8) == 0xf0) {
                        n = 3, cp = c & 0x07, min = 0x10000;
                } else
                        return "is not valid UTF-8";
                for (size_t i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return "is not valid UTF-8";
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                /* overlong forms, UTF-16 surrogates and past U+10FFFF */
                if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                        return "is not valid UTF-8";
                p += n + 1;
        }
        return NULL;
}

/* An optional string member: 1 read, 0 absent or null, <0 wrong type. */
static int member_string(const cJSON *obj, const char *name, const char **ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!v || cJSON_IsNull(v))
                return 0;
        if (!cJSON_IsString(v) || !v->valuestring)
                return -EBADMSG;
        *ret = v->valuestring;
        return 1;
}

static int parse_labels(const cJSON *labels, size_t idx, firing_alert *out, parse_error *e) {
        char safe[WEBHOOK_MAX_NAME_IN_ERROR + 8];
        int n = cJSON_GetArraySize(labels);
        if (n > WEBHOOK_MAX_LABELS)
                return fail(e, "alerts[%zu].labels: more than %d labels", idx, WEBHOOK_MAX_LABELS);
        if (n == 0)
                return 0;

        out->labels = calloc((size_t)n, sizeof(label_pair));
        if (!out->labels)
                return -ENOMEM;

        const cJSON *l;
        cJSON_ArrayForEach(l, labels) {
                const char *name = l->string ? l->string : "";
                safe_name(name, safe, sizeof safe);
                if (!*name)
                        return fail(e, "alerts[%zu].labels: empty label name", idx);
                if (strlen(name) > WEBHOOK_MAX_LABEL_BYTES)
                        return fail(e, "alerts[%zu].labels.%s: label name longer than %d bytes", idx, safe,
                                    WEBHOOK_MAX_LABEL_BYTES);
                const char *bad = bad_text(name);
                if (bad)
                        return fail(e, "alerts[%zu].labels.%s: the label name %s", idx, safe, bad);
                if (!cJSON_IsString(l) || !l->valuestring)
                        return fail(e, "alerts[%zu].labels.%s: expected a string", idx, safe);
                bad = bad_text(l->valuestring);
                if (bad)
                        return fail(e, "alerts[%zu].labels.%s: the value %s", idx, safe, bad);
                if (strlen(l->valuestring) > WEBHOOK_MAX_LABEL_BYTES)
                        return fail(e, "alerts[%zu].labels.%s: value longer than %d bytes", idx, safe,
                                    WEBHOOK_MAX_LABEL_BYTES);
                /* The label set keys the alert store; a repeated name would
                 * make "which value?" a guess. */
                for (size_t j = 0; j < out->n_labels; j++)
                        if (streq(out->labels[j].name, name))
                                return fail(e, "alerts[%zu].labels.%s: duplicate label", idx, safe);

                label_pair *lp = &out->labels[out->n_labels];
                lp->name = strdup(name);
                lp->value = strdup(l->valuestring);
                out->n_labels++; /* counted before the check so both get freed */
                if (!lp->name || !lp->value)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_time_member(const cJSON *a, const char *member, size_t idx, int64_t *ret,
                             parse_error *e) {
        const char *s = NULL;
        int r = member_string(a, member, &s);
        if (r < 0)
                return fail(e, "alerts[%zu].%s: expected a string", idx, member);
        if (r == 0)
                return 0;
        if (webhook_parse_time(s, ret) < 0)
                return fail(e, "alerts[%zu].%s: not an RFC 3339 time", idx, member);
        return 0;
}

static int parse_alert(const cJSON *a, size_t idx, webhook_alert *out, parse_error *e) {
        if (!cJSON_IsObject(a))
                return fail(e, "alerts[%zu]: expected an object", idx);

        const char *status = NULL;
        int r = member_string(a, "status", &status);
        if (r < 0)
                return fail(e, "alerts[%zu].status: expected a string", idx);
        if (r == 0)
                return fail(e, "alerts[%zu].status: missing", idx);
        if (streq(status, "firing"))
                out->firing = true;
        else if (streq(status, "resolved"))
                out->firing = false;
        else
                return fail(e, "alerts[%zu].status: expected \"firing\" or \"resolved\"", idx);

        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(a, "labels");
        if (!labels || cJSON_IsNull(labels))
                return fail(e, "alerts[%zu].labels: missing", idx);
        if (!cJSON_IsObject(labels))
                return fail(e, "alerts[%zu].labels: expected an object", idx);
        r = parse_labels(labels, idx, &out->alert, e);
        if (r < 0)
                return r;

        r = parse_time_member(a, "startsAt", idx, &out->starts_at_ms, e);
        if (r < 0)
                return r;
        r = parse_time_member(a, "endsAt", idx, &out->alert.ends_at_ms, e);
        if (r < 0)
                return r;

        const char *fp = NULL;
        r = member_string(a, "fingerprint", &fp);
        if (r < 0)
                return fail(e, "alerts[%zu].fingerprint: expected a string", idx);
        if (r > 0 && *fp) {
                if (strlen(fp) > WEBHOOK_MAX_LABEL_BYTES)
                        return fail(e, "alerts[%zu].fingerprint: longer than %d bytes", idx,
                                    WEBHOOK_MAX_LABEL_BYTES);
                const char *bad = bad_text(fp);
                if (bad)
                        return fail(e, "alerts[%zu].fingerprint: %s", idx, bad);
                out->fingerprint = strdup(fp);
                if (!out->fingerprint)
                        return -ENOMEM;
        }
        return 0;
}

static const char *skip_space(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
                p++;
        return p;
}

static int parse_root(const char *body, size_t len, webhook_batch *out, parse_error *e) {
        if (len == 0)
                return fail(e, "empty body");
        /* Never valid JSON, and cJSON would cut a string at it. */
        const char *nul = memchr(body, '\0', len);
        if (nul)
                return fail(e, "malformed JSON near byte %zu", (size_t)(nul - body));

        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
        if (end && (end < body || end > body + len))
                end = NULL; /* never trust a pointer we did not compute */
        if (root && end)
                end = skip_space(end, body + len); /* trailing data: point at it */
        if (!root || !end || end != body + len) {
                size_t at = end ? (size_t)(end - body) : 0;
                cJSON_Delete(root);
                return fail(e, "malformed JSON near byte %zu", at);
        }

        int r = 0;
        if (!cJSON_IsObject(root)) {
                r = fail(e, "expected a JSON object at the top level");
                goto out;
        }

        const char *version = NULL;
        r = member_string(root, "version", &version);
        if (r < 0) {
                r = fail(e, "version: expected a string");
                goto out;
        }
        if (r > 0 && !streq(version, "4")) {
                char safe[WEBHOOK_MAX_NAME_IN_ERROR + 8];
                safe_name(version, safe, sizeof safe);
                r = fail(e, "version: expected \"4\", got \"%s\"", safe);
                goto out;
        }

        const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(root, "alerts");
        if (!alerts || cJSON_IsNull(alerts)) {
                r = fail(e, "alerts: missing");
                goto out;
        }
        if (!cJSON_IsArray(alerts)) {
                r = fail(e, "alerts: expected an array");
                goto out;
        }
        int n = cJSON_GetArraySize(alerts);
        if (n > WEBHOOK_MAX_ALERTS) {
                r = fail(e, "alerts: more than %d alerts in one payload", WEBHOOK_MAX_ALERTS);
                goto out;
        }

        r = 0;
        if (n > 0) {
                out->alerts = calloc((size_t)n, sizeof(webhook_alert));
                if (!out->alerts) {
                        r = -ENOMEM;
                        goto out;
                }
                const cJSON *a;
                cJSON_ArrayForEach(a, alerts) {
                        /* counted first: a half-parsed alert is freed with the rest */
                        size_t idx = out->n_alerts++;
                        r = parse_alert(a, idx, &out->alerts[idx], e);
                        if (r < 0)
                                goto out;
                }
        }
out:
        cJSON_Delete(root);
        return r;
}

int webhook_parse(const char *body, size_t len, webhook_batch *out, char **ret_error) {
        parse_error e = { 0 };
        webhook_batch b = { 0 };

        /* cJSON is handed a NUL-terminated copy: the caller's buffer (an HTTP
         * body, a fuzzer's input) need not have a terminator, and cJSON's
         * length-bounded parsing has had off-by-one reads past the end. */
        _cleanup_free_ char *copy = malloc((body ? len : 0) + 1);
        if (!copy) {
                if (ret_error)
                        *ret_error = strdup("out of memory");
                return -ENOMEM;
        }
        if (body && len > 0)
                memcpy(copy, body, len);
        copy[body ? len : 0] = '\0';
        mark_nul_escapes(copy, body ? len : 0);

        int r = parse_root(copy, body ? len : 0, &b, &e);
        if (r < 0) {
                webhook_batch_done(&b);
                if (r == -ENOMEM) {
                        free(e.text);
                        e.text = strdup("out of memory");
                }
                if (ret_error)
                        *ret_error = e.text;
                else
                        free(e.text);
                return r;
        }
        free(e.text);
        *out = b;
        return 0;
}
