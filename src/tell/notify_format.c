/* SPDX-License-Identifier: MIT */
#include "notify_format.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sign.h"
#include "util.h"

/* A field from the cloud goes into a chat message: one line, bounded, so a
 * long or hostile reason cannot break the layout or the size limit. */
#define FIELD_MAX 200

typedef struct strbuf {
        char *p;
        size_t len, cap;
        bool oom;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void sb_puts(strbuf *b, const char *s) {
        sb_add(b, s, strlen(s));
}

_printf_(2, 3) static void sb_printf(strbuf *b, const char *fmt, ...) {
        char tmp[1024];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Control characters become spaces; Slack's three specials are escaped
 * (its mrkdwn reads "<...>" as a link); cut at FIELD_MAX on a UTF-8 boundary. */
static void sb_field(strbuf *b, const char *s, bool slack) {
        if (!s) {
                sb_puts(b, "n/a");
                return;
        }
        size_t n = strlen(s);
        bool cut = false;
        if (n > FIELD_MAX) {
                n = FIELD_MAX;
                while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                        n--;
                cut = true;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c == 0x7f)
                        sb_add(b, " ", 1);
                else if (slack && c == '&')
                        sb_puts(b, "&amp;");
                else if (slack && c == '<')
                        sb_puts(b, "&lt;");
                else if (slack && c == '>')
                        sb_puts(b, "&gt;");
                else
                        sb_add(b, (const char *)&c, 1);
        }
        if (cut)
                sb_puts(b, "…");
}

static char *sb_take(strbuf *b) {
        if (b->oom) {
                free(b->p);
                return NULL;
        }
        return b->p ? b->p : strdup("");
}

static const char *platform_label(const char *platform) {
        return platform && streq(platform, "edas") ? "EDAS" : "SAE";
}

char *notify_console_url(const notify_event *ev) {
        if (!ev->app_id || !ev->region || !*ev->app_id || !*ev->region)
                return NULL;
        _cleanup_free_ char *id = acs_percent_encode(ev->app_id);
        _cleanup_free_ char *region = acs_percent_encode(ev->region);
        if (!id || !region)
                return NULL;
        if (ev->platform && streq(ev->platform, "edas"))
                return strdup_printf("https://edas.console.aliyun.com/#/app?appId=%s&regionNo=%s", id,
                                     region);
        return strdup_printf("https://sae.console.aliyun.com/#/AppList/AppDetail?appId=%s&regionId=%s", id,
                             region);
}

void notify_format_time(int64_t time_ms, char out[21]) {
        time_t t = (time_t)(time_ms / 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                strcpy(out, "1970-01-01T00:00:00Z");
}

static void action_verb(strbuf *b, const char *action, bool past) {
        if (action && streq(action, "abort"))
                sb_puts(b, past ? "aborted" : "abort");
        else if (!action || streq(action, "rollback"))
                sb_puts(b, past ? "rolled back" : "roll back");
        else {
                sb_puts(b, past ? "ran " : "run ");
                sb_field(b, action, false);
                sb_puts(b, " on");
        }
}

static void summary_into(strbuf *b, const notify_event *ev, bool slack) {
        if (ev->kind == NOTIFY_EV_TEST) {
                sb_puts(b, "rollguard test message: this channel works");
                return;
        }
        /* the breaker concerns no single app: no "n/a: " in front */
        if (ev->app) {
                sb_field(b, ev->app, slack);
                sb_puts(b, ": ");
        }
        switch (ev->kind) {
        case NOTIFY_EV_ACTION:
                sb_puts(b, "rollguard ");
                action_verb(b, ev->action, true);
                sb_puts(b, " change order ");
                sb_field(b, ev->change_order, slack);
                break;
        case NOTIFY_EV_ACTION_FAILED:
                sb_puts(b, "rollguard could not ");
                action_verb(b, ev->action, false);
                sb_puts(b, " change order ");
                sb_field(b, ev->change_order, slack);
                sb_puts(b, " (");
                sb_field(b, ev->result, slack);
                sb_puts(b, ")");
                break;
        case NOTIFY_EV_UNCONFIRMED:
                sb_puts(b, "rollguard asked to ");
                action_verb(b, ev->action, false);
                sb_puts(b, " change order ");
                sb_field(b, ev->change_order, slack);
                sb_puts(b, " but cannot confirm it took effect");
                break;
        case NOTIFY_EV_CIRCUIT_OPEN:
                sb_puts(b, "rollguard stopped acting (circuit open)");
                break;
        case NOTIFY_EV_UNOBSERVED:
                sb_puts(b, "change order ");
                sb_field(b, ev->change_order, slack);
                sb_puts(b, " went by unwatched");
                break;
        case NOTIFY_EV_DEGRADED:
                sb_puts(b, "rollguard cannot watch this app");
                break;
        default:
                sb_puts(b, "rollguard event");
                break;
        }
        if (ev->reason) {
                sb_puts(b, " because ");
                sb_field(b, ev->reason, slack);
        }
        if (ev->has_value)
                sb_printf(b, " (value %g, threshold %g)", ev->value, ev->threshold);
}

char *notify_summary(const notify_event *ev) {
        strbuf b = { 0 };
        summary_into(&b, ev, false);
        return sb_take(&b);
}

static const char *kind_title(notify_kind k) {
        switch (k) {
        case NOTIFY_EV_ACTION:
                return "Rolled back";
        case NOTIFY_EV_ACTION_FAILED:
                return "Rollback FAILED";
        case NOTIFY_EV_UNCONFIRMED:
                return "Rollback unconfirmed";
        case NOTIFY_EV_CIRCUIT_OPEN:
                return "Circuit open";
        case NOTIFY_EV_UNOBSERVED:
                return "Release not watched";
        case NOTIFY_EV_DEGRADED:
                return "Degraded";
        default:
                return "Test message";
        }
}

static void title_into(strbuf *b, const notify_event *const *evs, size_t n) {
        if (n > 1) {
                sb_printf(b, "rollguard: %zu events", n);
                return;
        }
        sb_puts(b, "rollguard: ");
        sb_puts(b, kind_title(evs[0]->kind));
        if (evs[0]->app) {
                sb_puts(b, " ");
                sb_field(b, evs[0]->app, false);
        }
}

typedef enum md_style {
        MD_DINGTALK, /* "- **Key**: value" list */
        MD_WECOM,    /* "> **Key**: value" quote lines (WeCom has no lists) */
        MD_FEISHU,   /* lark_md: "**Key**: value" lines */
        MD_SLACK,    /* mrkdwn: "*Key*: value", <url|text> links */
} md_style;

static void md_line(strbuf *b, md_style st, const char *key, const char *value) {
        static const char *const prefix[] = { "- **", "> **", "**", "*" };
        static const char *const suffix[] = { "**: ", "**: ", "**: ", "*: " };
        sb_puts(b, prefix[st]);
        sb_puts(b, key);
        sb_puts(b, suffix[st]);
        sb_field(b, value, st == MD_SLACK);
        sb_puts(b, "\n");
}

/* One event: the summary line, then app, change order, rule, result, the
 * new rollback order, time and the console link. */
static void md_event(strbuf *b, md_style st, const notify_event *ev) {
        bool slack = st == MD_SLACK;
        sb_puts(b, slack ? "*" : "**");
        summary_into(b, ev, slack);
        sb_puts(b, slack ? "*\n" : "**\n\n");
        if (ev->kind == NOTIFY_EV_TEST)
                return;
        strbuf app = { 0 };
        sb_field(&app, ev->app, slack);
        sb_printf(&app, " (%s", platform_label(ev->platform));
        if (ev->region) {
                sb_puts(&app, ", ");
                sb_field(&app, ev->region, slack);
        }
        sb_puts(&app, ")");
        _cleanup_free_ char *app_s = sb_take(&app);
        char when[21];
        notify_format_time(ev->time_ms, when);
        md_line(b, st, "App", app_s ? app_s : "n/a");
        md_line(b, st, "Change order", ev->change_order);
        md_line(b, st, "Rule", ev->rule);
        md_line(b, st, "Result", ev->result);
        md_line(b, st, "Rollback order", ev->rollback_change_order);
        md_line(b, st, "Time", when);
        _cleanup_free_ char *url = notify_console_url(ev);
        if (url) {
                if (slack)
                        sb_printf(b, "<%s|Open in the %s console>\n", url, platform_label(ev->platform));
                else
                        sb_printf(b, "\n[Open in the %s console](%s)\n", platform_label(ev->platform), url);
        }
}

static size_t detail_max(md_style st) {
        /* WeCom refuses markdown over 4096 bytes; an event with every field
         * at FIELD_MAX takes about 1.4 KB */
        return st == MD_WECOM ? NOTIFY_MERGE_DETAIL_MAX_WECOM : NOTIFY_MERGE_DETAIL_MAX;
}

static void md_events(strbuf *b, md_style st, const notify_event *const *evs, size_t n) {
        size_t shown = n < detail_max(st) ? n : detail_max(st);
        for (size_t i = 0; i < shown; i++) {
                if (i > 0)
                        sb_puts(b, st == MD_SLACK ? "\n" : "\n---\n\n");
                md_event(b, st, evs[i]);
        }
        if (n > shown)
                sb_printf(b, "\n…and %zu more; see the journal (journalctl -u rollguard)\n", n - shown);
}

static int add_string_or_null(cJSON *o, const char *key, const char *value) {
        cJSON *v = value ? cJSON_CreateString(value) : cJSON_CreateNull();
        if (!v || !cJSON_AddItemToObject(o, key, v)) {
                cJSON_Delete(v);
                return -ENOMEM;
        }
        return 0;
}

/* Builds with cJSON; returns its printed form or NULL. Frees root. */
static char *print_and_free(cJSON *root) {
        char *s = root ? cJSON_PrintUnformatted(root) : NULL;
        cJSON_Delete(root);
        return s;
}

static char *body_webhook(const notify_event *ev) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        char when[21];
        notify_format_time(ev->time_ms, when);
        _cleanup_free_ char *url = notify_console_url(ev);
        const char *const kv[][2] = {
                { "event", notify_kind_name(ev->kind) },
                { "app", ev->app },
                { "platform", ev->platform },
                { "region", ev->region },
                { "app_id", ev->app_id },
                { "change_order", ev->change_order },
                { "rule", ev->rule },
                { "action", ev->action },
                { "result", ev->result },
                { "reason", ev->reason },
                { "rollback_change_order", ev->rollback_change_order },
                { "time", when },
                { "console_url", url },
        };
        for (size_t i = 0; i < ELEMENTSOF(kv); i++)
                if (add_string_or_null(o, kv[i][0], kv[i][1]) < 0) {
                        cJSON_Delete(o);
                        return NULL;
                }
        return print_and_free(o);
}

static char *body_markdown(notify_type t, const notify_event *const *evs, size_t n) {
        strbuf text = { 0 }, title = { 0 };
        title_into(&title, evs, n);
        _cleanup_free_ char *title_s = sb_take(&title);
        if (title_s)
                sb_printf(&text, "#### %s\n\n", title_s);
        md_events(&text, t == NOTIFY_WECOM ? MD_WECOM : MD_DINGTALK, evs, n);
        _cleanup_free_ char *text_s = sb_take(&text);
        if (!title_s || !text_s)
                return NULL;

        cJSON *root = cJSON_CreateObject();
        cJSON *md = cJSON_AddObjectToObject(root, "markdown");
        if (!cJSON_AddStringToObject(root, "msgtype", "markdown") || !md)
                goto fail;
        if (t == NOTIFY_DINGTALK && !cJSON_AddStringToObject(md, "title", title_s))
                goto fail;
        if (!cJSON_AddStringToObject(md, t == NOTIFY_DINGTALK ? "text" : "content", text_s))
                goto fail;
        return print_and_free(root);
fail:
        cJSON_Delete(root);
        return NULL;
}

static const char *card_colour(const notify_event *const *evs, size_t n) {
        const char *c = "blue";
        for (size_t i = 0; i < n; i++) {
                notify_kind k = evs[i]->kind;
                if (k == NOTIFY_EV_ACTION || k == NOTIFY_EV_ACTION_FAILED || k == NOTIFY_EV_UNCONFIRMED)
                        return "red";
                if (k != NOTIFY_EV_TEST)
                        c = "orange";
        }
        return c;
}

static char *body_feishu(const notify_event *const *evs, size_t n, const char *secret, int64_t now_ms) {
        strbuf text = { 0 }, title = { 0 };
        title_into(&title, evs, n);
        md_events(&text, MD_FEISHU, evs, n);
        _cleanup_free_ char *title_s = sb_take(&title);
        _cleanup_free_ char *text_s = sb_take(&text);
        if (!title_s || !text_s)
                return NULL;

        cJSON *root = cJSON_CreateObject();
        if (!root)
                return NULL;
        if (secret) {
                char ts[24], sig[NOTIFY_SIGN_MAX];
                snprintf(ts, sizeof ts, "%" PRId64, now_ms / 1000);
                if (notify_sign_feishu(secret, now_ms / 1000, sig) < 0 ||
                    !cJSON_AddStringToObject(root, "timestamp", ts) ||
                    !cJSON_AddStringToObject(root, "sign", sig))
                        goto fail;
        }
        if (!cJSON_AddStringToObject(root, "msg_type", "interactive"))
                goto fail;
        cJSON *card = cJSON_AddObjectToObject(root, "card");
        cJSON *config = cJSON_AddObjectToObject(card, "config");
        cJSON *header = cJSON_AddObjectToObject(card, "header");
        cJSON *htitle = cJSON_AddObjectToObject(header, "title");
        cJSON *elements = cJSON_AddArrayToObject(card, "elements");
        cJSON *div = cJSON_CreateObject();
        cJSON *dtext = cJSON_AddObjectToObject(div, "text");
        if (!config || !htitle || !elements || !dtext || !cJSON_AddItemToArray(elements, div) ||
            !cJSON_AddTrueToObject(config, "wide_screen_mode") ||
            !cJSON_AddStringToObject(htitle, "tag", "plain_text") ||
            !cJSON_AddStringToObject(htitle, "content", title_s) ||
            !cJSON_AddStringToObject(header, "template", card_colour(evs, n)) ||
            !cJSON_AddStringToObject(div, "tag", "div") || !cJSON_AddStringToObject(dtext, "tag", "lark_md") ||
            !cJSON_AddStringToObject(dtext, "content", text_s))
                goto fail;
        return print_and_free(root);
fail:
        cJSON_Delete(root);
        return NULL;
}

static cJSON *slack_text_block(const char *type, const char *text_type, const char *text) {
        cJSON *b = cJSON_CreateObject();
        cJSON *t = cJSON_AddObjectToObject(b, "text");
        if (!t || !cJSON_AddStringToObject(b, "type", type) || !cJSON_AddStringToObject(t, "type", text_type) ||
            !cJSON_AddStringToObject(t, "text", text)) {
                cJSON_Delete(b);
                return NULL;
        }
        return b;
}

static char *body_slack(const notify_event *const *evs, size_t n) {
        strbuf fallback = { 0 }, title = { 0 };
        title_into(&title, evs, n);
        _cleanup_free_ char *title_s = sb_take(&title);
        /* `text` is what notifications and old clients show: the summary. */
        if (n == 1)
                summary_into(&fallback, evs[0], true);
        else
                sb_field(&fallback, title_s, true);
        _cleanup_free_ char *fallback_s = sb_take(&fallback);
        if (!title_s || !fallback_s)
                return NULL;

        cJSON *root = cJSON_CreateObject();
        cJSON *blocks = cJSON_AddArrayToObject(root, "blocks");
        if (!cJSON_AddStringToObject(root, "text", fallback_s) || !blocks)
                goto fail;
        if (!cJSON_AddItemToArray(blocks, slack_text_block("header", "plain_text", title_s)))
                goto fail;
        size_t shown = n < NOTIFY_MERGE_DETAIL_MAX ? n : NOTIFY_MERGE_DETAIL_MAX;
        /* one section per event: a section's text is capped at 3000 chars */
        for (size_t i = 0; i < shown; i++) {
                strbuf s = { 0 };
                md_event(&s, MD_SLACK, evs[i]);
                _cleanup_free_ char *s_s = sb_take(&s);
                if (!s_s || !cJSON_AddItemToArray(blocks, slack_text_block("section", "mrkdwn", s_s)))
                        goto fail;
        }
        if (n > shown) {
                char more[96];
                snprintf(more, sizeof more, "…and %zu more; see the journal (journalctl -u rollguard)", n - shown);
                if (!cJSON_AddItemToArray(blocks, slack_text_block("section", "mrkdwn", more)))
                        goto fail;
        }
        return print_and_free(root);
fail:
        cJSON_Delete(root);
        return NULL;
}

int notify_format_body(notify_type t, const notify_event *const *evs, size_t n, const char *secret,
                       int64_t now_ms, char **ret) {
        if (!evs || n == 0 || !ret || (t == NOTIFY_WEBHOOK && n != 1))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!evs[i] || evs[i]->kind < 0 || evs[i]->kind >= _NOTIFY_EV_MAX)
                        return -EINVAL;
        char *body;
        switch (t) {
        case NOTIFY_DINGTALK:
        case NOTIFY_WECOM:
                body = body_markdown(t, evs, n);
                break;
        case NOTIFY_FEISHU:
                body = body_feishu(evs, n, secret, now_ms);
                break;
        case NOTIFY_SLACK:
                body = body_slack(evs, n);
                break;
        case NOTIFY_WEBHOOK:
                body = body_webhook(evs[0]);
                break;
        default:
                return -EINVAL;
        }
        if (!body)
                return -ENOMEM;
        *ret = body;
        return 0;
}

static int hmac_b64(const void *key, size_t key_len, const void *msg, size_t msg_len, char out[NOTIFY_SIGN_MAX]) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        if (!HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, mac, &mac_len))
                return -EIO;
        /* 32 bytes -> 44 Base64 chars + NUL */
        EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
        OPENSSL_cleanse(mac, sizeof mac);
        return 0;
}

int notify_sign_dingtalk(const char *secret, int64_t timestamp_ms, char out[NOTIFY_SIGN_MAX]) {
        if (!secret)
                return -EINVAL;
        _cleanup_secret_ char *msg = strdup_printf("%" PRId64 "\n%s", timestamp_ms, secret);
        if (!msg)
                return -ENOMEM;
        char b64[NOTIFY_SIGN_MAX];
        int r = hmac_b64(secret, strlen(secret), msg, strlen(msg), b64);
        if (r < 0)
                return r;
        _cleanup_free_ char *enc = acs_percent_encode(b64);
        if (!enc || strlen(enc) >= NOTIFY_SIGN_MAX)
                return -ENOMEM;
        strcpy(out, enc);
        return 0;
}

int notify_sign_feishu(const char *secret, int64_t timestamp_s, char out[NOTIFY_SIGN_MAX]) {
        if (!secret)
                return -EINVAL;
        _cleanup_secret_ char *key = strdup_printf("%" PRId64 "\n%s", timestamp_s, secret);
        if (!key)
                return -ENOMEM;
        return hmac_b64(key, strlen(key), "", 0, out);
}

int notify_format_url(notify_type t, const char *url, const char *secret, int64_t now_ms, char **ret) {
        if (!url || !ret)
                return -EINVAL;
        if (t != NOTIFY_DINGTALK || !secret) {
                *ret = strdup(url);
                return *ret ? 0 : -ENOMEM;
        }
        char sig[NOTIFY_SIGN_MAX];
        int r = notify_sign_dingtalk(secret, now_ms, sig);
        if (r < 0)
                return r;
        *ret = strdup_printf("%s%ctimestamp=%" PRId64 "&sign=%s", url, strchr(url, '?') ? '&' : '?', now_ms, sig);
        return *ret ? 0 : -ENOMEM;
}
