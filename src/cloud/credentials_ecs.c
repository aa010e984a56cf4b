/* SPDX-License-Identifier: MIT */
/* The ECS instance RAM role: PUT a metadata token, find the role, GET its
 * STS credentials, and again before they expire. All on the loop, through
 * the shared http client; every failure is retried with backoff. */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credentials_internal.h"
#include "json.h"
#include "log.h"

#define METADATA_DEFAULT_BASE "http://100.100.100.200"
#define METADATA_TOKEN_TTL_SECONDS "21600"
/* Refresh at least this long before an STS credential expires. */
#define ECS_REFRESH_MARGIN_USEC (15 * USEC_PER_MIN)
#define ECS_RETRY_MIN_USEC (1 * USEC_PER_SEC)
#define ECS_RETRY_MAX_USEC (60 * USEC_PER_SEC)

typedef enum ecs_step {
        ECS_STEP_TOKEN,
        ECS_STEP_ROLE,
        ECS_STEP_CREDENTIALS,
} ecs_step;

struct ecs_role {
        sd_event *event;
        http_client *http;
        char *metadata_base;
        char *role_requested; /* a name or "auto" */
        char *role;           /* the name in use */
        char *metadata_token; /* secret, lives only for one fetch */
        uint64_t timeout_usec;
        ecs_step step;
        http_call *call;
        sd_event_source *timer;
        unsigned failures;

        ecs_role_got_fn got;
        ecs_role_current_fn current;
        void *userdata;
};

static const char *ecs_step_name(ecs_step s) {
        switch (s) {
        case ECS_STEP_TOKEN:
                return "PUT /latest/api/token";
        case ECS_STEP_ROLE:
                return "GET /latest/meta-data/ram/security-credentials/";
        default:
                return "GET /latest/meta-data/ram/security-credentials/ROLE";
        }
}

/* A RAM role name goes into a URL path: letters, digits, '.', '_', '-'. */
static bool role_name_ok(const char *s, size_t len) {
        if (len == 0 || len > 64 || (len == 1 && s[0] == '.') ||
            (len == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
                        return false;
        return true;
}

static int ecs_start(ecs_role *p);

static int on_ecs_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        ecs_role *p = userdata;
        p->timer = sd_event_source_disable_unref(p->timer);
        (void)ecs_start(p);
        return 0;
}

static int ecs_schedule(ecs_role *p, uint64_t delay_usec) {
        p->timer = sd_event_source_disable_unref(p->timer);
        int r = sd_event_add_time_relative(p->event, &p->timer, CLOCK_MONOTONIC, delay_usec, 0,
                                           on_ecs_timer, p);
        if (r < 0) {
                log_event_send(EV_CREDENTIALS, LOG_ERR, NULL,
                               "cannot schedule the ECS RAM role credentials refresh: %s",
                               strerror(-r));
                return r;
        }
        (void)sd_event_source_set_description(p->timer, "credentials-refresh");
        return 0;
}

static void ecs_fail(ecs_role *p, const char *fmt, ...) _printf_(2, 3);
static void ecs_fail(ecs_role *p, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        free_secret(TAKE_PTR(p->metadata_token));

        uint64_t delay = ECS_RETRY_MIN_USEC;
        for (unsigned i = 0; i < p->failures && delay < ECS_RETRY_MAX_USEC; i++)
                delay *= 2;
        if (delay > ECS_RETRY_MAX_USEC)
                delay = ECS_RETRY_MAX_USEC;
        delay = jitter_usec(delay, 0.2) / USEC_PER_MSEC * USEC_PER_MSEC;
        p->failures++;

        char d[32];
        const credentials *still = p->current(p->userdata);
        /* "auto" forgets the role before each refresh: while the current
         * credentials live, name the role they came from. */
        const char *role = p->role ? p->role
                           : still && still->source_detail ? still->source_detail
                                                           : p->role_requested;
        log_event_send(EV_CREDENTIALS, LOG_WARNING, NULL,
                       "ECS RAM role %s: %s; retrying in %s%s", role,
                       msg, format_duration(delay, d, sizeof d),
                       still ? " (the current credentials stay in use until they expire)" : "");
        (void)ecs_schedule(p, delay);
}

static void wipe_json_strings(cJSON *j) {
        for (; j; j = j->next) {
                if (j->valuestring)
                        OPENSSL_cleanse(j->valuestring, strlen(j->valuestring));
                wipe_json_strings(j->child);
        }
}

/* "2026-11-23T09:00:00Z", fractions of a second tolerated. */
static int parse_expiration(const char *s, int64_t *ret_ms) {
        struct tm tm = {};
        int n = 0;
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n == 0)
                return -EINVAL;
        const char *rest = s + n;
        if (*rest == '.')
                for (rest++; *rest >= '0' && *rest <= '9'; rest++)
                        ;
        if (!streq(rest, "Z") && !streq(rest, "+00:00"))
                return -EINVAL;
        if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
            tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
                return -EINVAL;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret_ms = (int64_t)t * 1000;
        return 0;
}

static void ecs_apply_credentials(ecs_role *p, const char *body, size_t len) {
        cJSON *json = cJSON_ParseWithLength(body, len);
        if (!json) {
                ecs_fail(p, "the credentials response is not JSON");
                return;
        }

        _cleanup_credentials_ credentials cr = {};
        _cleanup_free_ char *code = NULL, *expiration = NULL;
        const char *problem = NULL;
        if (json_get_string(json, "Code", &code) < 0)
                problem = "Code is not a string";
        else if (code && !streq(code, "Success"))
                problem = "Code is not Success";
        else if (json_get_string(json, "AccessKeyId", &cr.access_key_id) <= 0 ||
                 !*cr.access_key_id)
                problem = "AccessKeyId is missing";
        else if (json_get_string(json, "AccessKeySecret", &cr.access_key_secret) <= 0 ||
                 !*cr.access_key_secret)
                problem = "AccessKeySecret is missing";
        else if (json_get_string(json, "SecurityToken", &cr.security_token) <= 0 ||
                 !*cr.security_token)
                problem = "SecurityToken is missing";
        else if (json_get_string(json, "Expiration", &expiration) <= 0 ||
                 parse_expiration(expiration, &cr.expiration_ms) < 0)
                problem = "Expiration is missing or not a UTC time";
        wipe_json_strings(json);
        cJSON_Delete(json);

        if (problem) {
                if (code && !streq(code, "Success"))
                        ecs_fail(p, "the metadata service answered Code=%.64s", code);
                else
                        ecs_fail(p, "unusable credentials response: %s", problem);
                return;
        }

        /* Work in remaining time on the monotonic clock: a wall clock step
         * must neither expire good credentials nor keep dead ones. */
        int64_t remaining_ms = cr.expiration_ms - now_realtime_ms();
        if (remaining_ms <= 0) {
                ecs_fail(p, "the credentials expired at %s already (is the clock right?)",
                         expiration);
                return;
        }
        uint64_t remaining = (uint64_t)remaining_ms * USEC_PER_MSEC;
        uint64_t refresh = remaining / 5 * 4;
        if (remaining > ECS_REFRESH_MARGIN_USEC && remaining - ECS_REFRESH_MARGIN_USEC < refresh)
                refresh = remaining - ECS_REFRESH_MARGIN_USEC;
        refresh = refresh / USEC_PER_SEC * USEC_PER_SEC; /* whole seconds read better in logs */
        if (refresh < USEC_PER_SEC)
                refresh = USEC_PER_SEC;

        free_secret(TAKE_PTR(p->metadata_token));
        p->failures = 0;
        cr.source = CRED_SOURCE_ECS_RAM_ROLE;
        if (free_and_strdup(&cr.source_detail, p->role) < 0) {
                ecs_fail(p, "out of memory");
                return;
        }

        char d[32];
        log_event_send(EV_CREDENTIALS, LOG_INFO, NULL,
                       "ECS RAM role %s: credentials valid until %s, refreshing in %s", p->role,
                       expiration, format_duration(refresh, d, sizeof d));
        (void)ecs_schedule(p, refresh);
        /* last: the callback may do anything, even free p */
        p->got(&cr, now_monotonic_usec() + remaining, p->userdata);
}

static void on_ecs_response(const http_response *resp, void *userdata);

static int ecs_submit(ecs_role *p, ecs_step step) {
        _cleanup_free_ char *url = NULL;
        char *header = NULL;
        const char *method = "GET";

        p->step = step;
        switch (step) {
        case ECS_STEP_TOKEN:
                method = "PUT";
                url = strdup_printf("%s/latest/api/token", p->metadata_base);
                header = strdup("X-aliyun-ecs-metadata-token-ttl-seconds: " METADATA_TOKEN_TTL_SECONDS);
                break;
        case ECS_STEP_ROLE:
                url = strdup_printf("%s/latest/meta-data/ram/security-credentials/", p->metadata_base);
                header = strdup_printf("X-aliyun-ecs-metadata-token: %s", p->metadata_token);
                break;
        case ECS_STEP_CREDENTIALS:
                url = strdup_printf("%s/latest/meta-data/ram/security-credentials/%s",
                                    p->metadata_base, p->role);
                header = strdup_printf("X-aliyun-ecs-metadata-token: %s", p->metadata_token);
                break;
        }
        if (!url || !header) {
                free_secret(header);
                return -ENOMEM;
        }

        const char *headers[] = { header };
        http_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .n_headers = 1,
                .timeout_usec = p->timeout_usec,
                .wipe = 1, /* the token header out, AccessKeySecret back */
        };
        int r = http_submit(p->http, &req, on_ecs_response, p, &p->call);
        free_secret(header); /* http keeps its own (wiped) copy */
        return r;
}

static int ecs_start(ecs_role *p) {
        if (p->call)
                return 0; /* a fetch is already under way */
        free_secret(TAKE_PTR(p->metadata_token));
        if (streq(p->role_requested, "auto")) {
                /* rediscovered every time: the attached role can change */
                free(p->role);
                p->role = NULL;
        }
        int r = ecs_submit(p, ECS_STEP_TOKEN);
        if (r < 0)
                ecs_fail(p, "cannot start a metadata request: %s", strerror(-r));
        return r;
}

static void on_ecs_response(const http_response *resp, void *userdata) {
        ecs_role *p = userdata;
        p->call = NULL;

        if (resp->transport_error || resp->status == 0) {
                ecs_fail(p, "%s at %s: %s", ecs_step_name(p->step), p->metadata_base,
                         resp->error ? resp->error : "no response");
                return;
        }
        /* The metadata service says 404 when no role (or not this role) is
         * attached: say that, an operator cannot act on a bare "HTTP 404". */
        if (resp->status == 404 && p->step == ECS_STEP_ROLE) {
                ecs_fail(p, "no RAM role is attached to this instance (%s at %s: HTTP 404)",
                         ecs_step_name(p->step), p->metadata_base);
                return;
        }
        if (resp->status == 404 && p->step == ECS_STEP_CREDENTIALS) {
                ecs_fail(p, "RAM role %s is not attached to this instance (%s at %s: HTTP 404)",
                         p->role, ecs_step_name(p->step), p->metadata_base);
                return;
        }
        if (resp->status != 200) {
                ecs_fail(p, "%s at %s: HTTP %ld", ecs_step_name(p->step), p->metadata_base,
                         resp->status);
                return;
        }

        const char *b = resp->body, *end = resp->body + resp->body_len;
        while (b < end && isspace((unsigned char)*b))
                b++;
        while (end > b && isspace((unsigned char)end[-1]))
                end--;

        int r = 0;
        switch (p->step) {
        case ECS_STEP_TOKEN:
                for (const char *c = b; c < end; c++)
                        if (!isgraph((unsigned char)*c)) {
                                ecs_fail(p, "the metadata token is not printable text");
                                return;
                        }
                if (b == end) {
                        ecs_fail(p, "the metadata service returned an empty token");
                        return;
                }
                p->metadata_token = strndup(b, (size_t)(end - b));
                if (!p->metadata_token) {
                        ecs_fail(p, "out of memory");
                        return;
                }
                r = ecs_submit(p, p->role ? ECS_STEP_CREDENTIALS : ECS_STEP_ROLE);
                break;
        case ECS_STEP_ROLE: {
                /* one role per line; an instance has at most one */
                const char *nl = memchr(b, '\n', (size_t)(end - b));
                const char *re = cred_trim_end(b, nl ? nl : end);
                if (!role_name_ok(b, (size_t)(re - b))) {
                        ecs_fail(p, b == re ? "no RAM role is attached to this instance"
                                            : "the metadata service returned an unusable role name");
                        return;
                }
                p->role = strndup(b, (size_t)(re - b));
                if (!p->role) {
                        ecs_fail(p, "out of memory");
                        return;
                }
                r = ecs_submit(p, ECS_STEP_CREDENTIALS);
                break;
        }
        case ECS_STEP_CREDENTIALS:
                ecs_apply_credentials(p, resp->body, resp->body_len);
                return;
        }
        if (r < 0)
                ecs_fail(p, "cannot start a metadata request: %s", strerror(-r));
}

int ecs_role_new(sd_event *e, http_client *h, const char *metadata_base, const char *role,
                 uint64_t timeout_usec, ecs_role_got_fn got, ecs_role_current_fn current, void *userdata,
                 ecs_role **ret, char **ret_error) {
        if (!e || !h) {
                cred_set_message(ret_error, "the ECS RAM role needs the event loop and HTTP client");
                return -EINVAL;
        }
        if (!streq(role, "auto") && !role_name_ok(role, strlen(role))) {
                cred_set_message(ret_error, "ECS RAM role name is not valid (letters, digits, '.', '_', "
                                            "'-'; or \"auto\")");
                return -EINVAL;
        }

        ecs_role *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->http = h;
        p->timeout_usec = timeout_usec;
        p->got = got;
        p->current = current;
        p->userdata = userdata;
        p->metadata_base = strdup(metadata_base && *metadata_base ? metadata_base : METADATA_DEFAULT_BASE);
        p->role_requested = strdup(role);
        if (!p->metadata_base || !p->role_requested || (!streq(role, "auto") && !(p->role = strdup(role)))) {
                ecs_role_free(p);
                return -ENOMEM;
        }
        size_t l = strlen(p->metadata_base);
        while (l > 0 && p->metadata_base[l - 1] == '/')
                p->metadata_base[--l] = 0;

        log_event_send(EV_CREDENTIALS, LOG_INFO, NULL, "no static credentials; fetching ECS RAM role %s from %s",
                       role, p->metadata_base);
        *ret = p;
        /* a failed start is retried on the timer like any failed fetch */
        (void)ecs_start(p);
        return 0;
}

ecs_role *ecs_role_free(ecs_role *p) {
        if (!p)
                return NULL;
        http_call_cancel(p->call);
        sd_event_source_disable_unref(p->timer);
        free_secret(p->metadata_token);
        free(p->metadata_base);
        free(p->role_requested);
        free(p->role);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}
