/* SPDX-License-Identifier: MIT */
#include "alerts.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* A rejected upload (bad token, too large) is still read and thrown away up
 * to this size before the reply goes out: closing a socket with unread data
 * makes the kernel send RST, and the sender would then see "connection
 * reset" instead of our 401/413. Past this, or when the sender announces
 * more, we answer at once and close. */
#define ALERTS_DRAIN_MAX (4u * ALERTS_MAX_BODY)
/* Oldest alerts are evicted past this many per app: a sender with
 * send_resolved: false and no endsAt would otherwise grow the set forever. */
#define ALERTS_MAX_PER_APP 1000
#define ALERTS_TOKEN_MAX 4096
#define ALERTS_CONNECTION_TIMEOUT_SEC 10u
#define ALERTS_CONNECTION_LIMIT 64u
/* Per connection: request line, headers and the read buffer that hands us
 * body chunks; the body itself is accumulated in our own buffer. */
#define ALERTS_CONNECTION_MEMORY (64u * 1024u)

typedef enum receive_result {
        RECEIVED_OK,
        RECEIVED_UNAUTHORIZED,
        RECEIVED_MALFORMED,
        RECEIVED_TOO_LARGE,
        _RECEIVED_MAX,
} receive_result;

static const char *const receive_result_names[_RECEIVED_MAX] = {
        [RECEIVED_OK] = "ok",
        [RECEIVED_UNAUTHORIZED] = "unauthorized",
        [RECEIVED_MALFORMED] = "malformed",
        [RECEIVED_TOO_LARGE] = "too_large",
};

typedef struct matcher_set {
        label_pair *m;
        size_t n;
} matcher_set;

/* One configured app: how alerts are routed to it (copied from the config so
 * a reload that frees the old config leaves nothing dangling) and the firing
 * alerts routed so far. alerts[] is contiguous because alerts_lookup hands it
 * out as is; keys[i] identifies alerts[i] (fingerprint or label set). */
typedef struct app_slot {
        char *name;
        matcher_set *sets;
        size_t n_sets;

        firing_alert *alerts;
        char **keys;
        size_t n_alerts;
        size_t cap;
} app_slot;

typedef struct listener {
        alerts_server *server;
        struct MHD_Daemon *mhd;
        sd_event_source *io;
        sd_event_source *timer;
        char *listen; /* as configured, to notice a change on reload */
        int port;
} listener;

struct alerts_server {
        sd_event *event;
        watcher *watcher;
        listener *listener;

        char *token; /* secret: wiped on free, never logged */
        size_t token_len;

        app_slot *apps;
        size_t n_apps;

        uint64_t received[_RECEIVED_MAX];

        /* While MHD starts, its log lines are kept to explain a failure. */
        bool capture_log;
        char start_log[256];
};

typedef struct request {
        bool webhook;
        unsigned reject;     /* HTTP status decided before the body: 401, 413 */
        char *body;
        size_t len;
        size_t cap;
        uint64_t seen;       /* every body byte, kept or thrown away */
} request;

/* ---- small helpers ---- */

static void labels_free(label_pair *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].value);
        }
        free(p);
}

static void firing_alert_done(firing_alert *a) {
        labels_free(a->labels, a->n_labels);
        *a = (firing_alert){ 0 };
}

static int labels_copy(const label_pair *src, size_t n, label_pair **ret) {
        if (n == 0) {
                *ret = NULL;
                return 0;
        }
        label_pair *l = calloc(n, sizeof(label_pair));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i].name = strdup_null(src[i].name);
                l[i].value = strdup_null(src[i].value);
                if ((src[i].name && !l[i].name) || (src[i].value && !l[i].value)) {
                        labels_free(l, n);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

static int firing_alert_copy(firing_alert *dst, const firing_alert *src) {
        firing_alert c = { .n_labels = src->n_labels, .ends_at_ms = src->ends_at_ms };
        int r = labels_copy(src->labels, src->n_labels, &c.labels);
        if (r < 0)
                return r;
        *dst = c;
        return 0;
}

static bool firing_alert_equal(const firing_alert *a, const firing_alert *b) {
        if (a->ends_at_ms != b->ends_at_ms || a->n_labels != b->n_labels)
                return false;
        for (size_t i = 0; i < a->n_labels; i++)
                if (!streq_null(a->labels[i].name, b->labels[i].name) ||
                    !streq_null(a->labels[i].value, b->labels[i].value))
                        return false;
        return true;
}

static const char *label_value(const firing_alert *a, const char *name) {
        for (size_t i = 0; i < a->n_labels; i++)
                if (a->labels[i].name && streq(a->labels[i].name, name))
                        return a->labels[i].value;
        return NULL;
}

static bool alert_expired(const firing_alert *a, int64_t now_ms) {
        return a->ends_at_ms != 0 && a->ends_at_ms <= now_ms;
}

/* Sender-chosen text in a log line: printable ASCII, bounded. */
static void safe_copy(char *buf, size_t bufsz, const char *s) {
        size_t o = 0;
        for (; s && *s && o + 1 < bufsz; s++) {
                unsigned char c = (unsigned char)*s;
                buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        buf[o] = '\0';
}

static int label_pair_cmp(const void *a, const void *b) {
        const label_pair *x = *(const label_pair *const *)a, *y = *(const label_pair *const *)b;
        return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/* Duplicate deliveries must replace, not add: Alertmanager's fingerprint is
 * the identity; without one, the sorted label set is (that is what the
 * fingerprint is a hash of). Lengths are written out so no label text can
 * forge another set's key. */
static char *alert_key(const webhook_alert *a) {
        if (a->fingerprint)
                return strdup_printf("fp:%s", a->fingerprint);

        size_t n = a->alert.n_labels;
        _cleanup_free_ const label_pair **sorted = calloc(n ? n : 1, sizeof(label_pair *));
        if (!sorted)
                return NULL;
        for (size_t i = 0; i < n; i++)
                sorted[i] = &a->alert.labels[i];
        qsort(sorted, n, sizeof(label_pair *), label_pair_cmp);

        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fputs("ls:", f);
        for (size_t i = 0; i < n; i++) {
                const char *k = sorted[i]->name ? sorted[i]->name : "";
                const char *v = sorted[i]->value ? sorted[i]->value : "";
                fprintf(f, "%zu:%s%zu:%s", strlen(k), k, strlen(v), v);
        }
        if (ferror(f)) {
                fclose(f);
                free(buf);
                return NULL;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* ---- routing table and store ---- */

static void app_slot_done(app_slot *a) {
        free(a->name);
        for (size_t i = 0; i < a->n_sets; i++)
                labels_free(a->sets[i].m, a->sets[i].n);
        free(a->sets);
        for (size_t i = 0; i < a->n_alerts; i++) {
                firing_alert_done(&a->alerts[i]);
                free(a->keys[i]);
        }
        free(a->alerts);
        free(a->keys);
        *a = (app_slot){ 0 };
}

static void app_slots_free(app_slot *apps, size_t n) {
        for (size_t i = 0; i < n; i++)
                app_slot_done(&apps[i]);
        free(apps);
}

static int app_slots_from_config(const config *cfg, app_slot **ret, size_t *ret_n) {
        if (cfg->n_apps == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        app_slot *apps = calloc(cfg->n_apps, sizeof(app_slot));
        if (!apps)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < cfg->n_apps; i++) {
                const app_config *ac = &cfg->apps[i];
                app_slot *a = &apps[n++];
                a->name = strdup(ac->name ? ac->name : "");
                if (!a->name)
                        goto oom;
                size_t n_sets = 0;
                for (size_t j = 0; j < ac->n_rules; j++)
                        if (ac->rules[j].n_alert > 0)
                                n_sets++;
                if (n_sets == 0)
                        continue;
                a->sets = calloc(n_sets, sizeof(matcher_set));
                if (!a->sets)
                        goto oom;
                for (size_t j = 0; j < ac->n_rules; j++) {
                        const rule *r = &ac->rules[j];
                        if (r->n_alert == 0)
                                continue;
                        matcher_set *m = &a->sets[a->n_sets];
                        if (labels_copy(r->alert, r->n_alert, &m->m) < 0)
                                goto oom;
                        m->n = r->n_alert;
                        a->n_sets++;
                }
        }
        *ret = apps;
        *ret_n = n;
        return 0;
oom:
        app_slots_free(apps, n);
        return -ENOMEM;
}

static bool matchers_match(const matcher_set *m, const firing_alert *a) {
        if (m->n == 0)
                return false;
        for (size_t i = 0; i < m->n; i++) {
                const char *v = m->m[i].name ? label_value(a, m->m[i].name) : NULL;
                if (!v || !streq_null(v, m->m[i].value))
                        return false;
        }
        return true;
}

/* SPEC 7: the alert names the app (label app="<name>"), or, when it names
 * no app, one of the app's rules has `alert:` matchers it satisfies. An alert
 * that names another app never reaches this one, whatever its other labels:
 * cart's HighErrorRate must not roll back shop-api's release. */
static bool alert_concerns(const app_slot *a, const firing_alert *fa) {
        const char *app = label_value(fa, "app");
        if (app)
                return streq(app, a->name);
        for (size_t i = 0; i < a->n_sets; i++)
                if (matchers_match(&a->sets[i], fa))
                        return true;
        return false;
}

static app_slot *find_slot(alerts_server *s, const char *name) {
        for (size_t i = 0; i < s->n_apps; i++)
                if (streq(s->apps[i].name, name))
                        return &s->apps[i];
        return NULL;
}

static ssize_t slot_find_key(const app_slot *a, const char *key) {
        for (size_t i = 0; i < a->n_alerts; i++)
                if (streq(a->keys[i], key))
                        return (ssize_t)i;
        return -1;
}

static void slot_remove_at(app_slot *a, size_t i) {
        firing_alert_done(&a->alerts[i]);
        free(a->keys[i]);
        memmove(&a->alerts[i], &a->alerts[i + 1], (a->n_alerts - i - 1) * sizeof(firing_alert));
        memmove(&a->keys[i], &a->keys[i + 1], (a->n_alerts - i - 1) * sizeof(char *));
        a->n_alerts--;
}

static bool slot_remove_key(app_slot *a, const char *key) {
        ssize_t i = slot_find_key(a, key);
        if (i < 0)
                return false;
        slot_remove_at(a, (size_t)i);
        return true;
}

static void slot_drop_expired(app_slot *a, int64_t now_ms) {
        size_t o = 0;
        for (size_t i = 0; i < a->n_alerts; i++) {
                if (alert_expired(&a->alerts[i], now_ms)) {
                        firing_alert_done(&a->alerts[i]);
                        free(a->keys[i]);
                        continue;
                }
                a->alerts[o] = a->alerts[i];
                a->keys[o] = a->keys[i];
                o++;
        }
        a->n_alerts = o;
}

/* Adds or replaces the alert under key. Returns 1 when the app's set changed,
 * 0 when this was a repeat of what we hold, -ENOMEM. */
static int slot_put(app_slot *a, const char *key, const firing_alert *src) {
        ssize_t at = slot_find_key(a, key);
        if (at >= 0 && firing_alert_equal(&a->alerts[at], src))
                return 0;

        firing_alert copy;
        int r = firing_alert_copy(&copy, src);
        if (r < 0)
                return r;

        if (at >= 0) {
                firing_alert_done(&a->alerts[at]);
                a->alerts[at] = copy;
                return 1;
        }

        _cleanup_free_ char *k = strdup(key);
        if (!k) {
                firing_alert_done(&copy);
                return -ENOMEM;
        }
        if (a->n_alerts >= ALERTS_MAX_PER_APP)
                slot_remove_at(a, 0);
        if (a->n_alerts == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 4;
                firing_alert *na = reallocarray(a->alerts, cap, sizeof(firing_alert));
                if (!na) {
                        firing_alert_done(&copy);
                        return -ENOMEM;
                }
                a->alerts = na;
                char **nk = reallocarray(a->keys, cap, sizeof(char *));
                if (!nk) {
                        firing_alert_done(&copy);
                        return -ENOMEM;
                }
                a->keys = nk;
                a->cap = cap;
        }
        a->alerts[a->n_alerts] = copy;
        a->keys[a->n_alerts] = TAKE_PTR(k);
        a->n_alerts++;
        return 1;
}

size_t alerts_lookup(void *userdata, const char *app, int64_t now_ms, const firing_alert **ret) {
        alerts_server *s = userdata;
        app_slot *a = s && app ? find_slot(s, app) : NULL;
        if (!a) {
                *ret = NULL;
                return 0;
        }
        slot_drop_expired(a, now_ms);
        *ret = a->n_alerts > 0 ? a->alerts : NULL;
        return a->n_alerts;
}

/* ---- token ---- */

static int read_token(const config *cfg, char **ret_token, size_t *ret_len, char **ret_error) {
        _cleanup_free_ char *cred_path = NULL;
        const char *path = cfg->alerts_token_file;
        if (!path) {
                const char *dir = getenv("CREDENTIALS_DIRECTORY");
                if (dir && *dir) {
                        cred_path = strdup_printf("%s/alert-token", dir);
                        if (!cred_path)
                                return -ENOMEM;
                        if (access(cred_path, F_OK) < 0 && errno == ENOENT)
                                cred_path = mfree(cred_path);
                }
                path = cred_path;
        }
        if (!path) {
                *ret_error = strdup(
                        "alerts.listen is set but no alert token is configured, and the listener will not "
                        "accept unauthenticated rollback requests: set alerts.token_file to a file holding "
                        "the bearer token, or pass it as a systemd credential named alert-token "
                        "(LoadCredential=alert-token:/etc/rollguard/alert-token)");
                return -ENOKEY;
        }

        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int err = errno;
                *ret_error = strdup_printf("cannot read alert token file %s: %s", path, strerror(err));
                return -err;
        }
        char buf[ALERTS_TOKEN_MAX + 1];
        size_t len = 0;
        int r = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof buf - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        *ret_error = strdup_printf("cannot read alert token file %s: %s", path, strerror(errno));
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len == sizeof buf)
                        break;
        }
        close(fd);

        if (r == 0 && len > ALERTS_TOKEN_MAX) {
                r = -EFBIG;
                *ret_error = strdup_printf("alert token file %s is larger than %d bytes", path, ALERTS_TOKEN_MAX);
        }
        if (r == 0) {
                /* Editors and `echo` add one newline; strip exactly one. */
                if (len > 0 && buf[len - 1] == '\n')
                        len--;
                if (len > 0 && buf[len - 1] == '\r')
                        len--;
                if (len == 0) {
                        r = -EINVAL;
                        *ret_error = strdup_printf("alert token file %s is empty", path);
                }
        }
        for (size_t i = 0; r == 0 && i < len; i++) {
                unsigned char c = (unsigned char)buf[i];
                /* It must survive a trip through an HTTP header unchanged. */
                if (c <= 0x20 || c == 0x7f) {
                        r = -EINVAL;
                        *ret_error = strdup_printf(
                                "alert token file %s: the token contains whitespace or control characters", path);
                }
        }
        if (r == 0) {
                char *t = malloc(len + 1);
                if (!t)
                        r = -ENOMEM;
                else {
                        memcpy(t, buf, len);
                        t[len] = '\0';
                        *ret_token = t;
                        *ret_len = len;
                }
        }
        OPENSSL_cleanse(buf, sizeof buf);
        return r;
}

/* Constant time in the token's content: the length check comes first and
 * decides nothing about the bytes; CRYPTO_memcmp then looks at all of them. */
static bool token_ok(const alerts_server *s, const char *header) {
        if (!header || !s->token)
                return false;
        const char *p = header;
        while (*p == ' ' || *p == '\t')
                p++;
        if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
                return false;
        p += 6;
        while (*p == ' ' || *p == '\t')
                p++;
        size_t n = strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
        if (n != s->token_len)
                return false;
        return CRYPTO_memcmp(p, s->token, n) == 0;
}

/* ---- replies ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *content_type,
                             char *body, size_t len, const char *hname, const char *hvalue) {
        struct MHD_Response *resp;
        if (body)
                resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        else {
                /* We could not build the body (OOM): an honest empty 500. */
                status = MHD_HTTP_INTERNAL_SERVER_ERROR;
                resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        }
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        if (content_type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        if (hname)
                MHD_add_response_header(resp, hname, hvalue);
        enum MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

/* Prints and frees the object; NULL on OOM. A trailing newline for curl users. */
static char *json_body(cJSON *o, size_t *ret_len) {
        char *s = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!s)
                return NULL;
        size_t n = strlen(s);
        char *t = realloc(s, n + 2);
        if (!t) {
                cJSON_free(s);
                return NULL;
        }
        t[n] = '\n';
        t[n + 1] = '\0';
        *ret_len = n + 1;
        return t;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, cJSON *o, const char *hname,
                                  const char *hvalue) {
        size_t len = 0;
        char *body = json_body(o, &len);
        return reply(c, status, "application/json", body, len, hname, hvalue);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *msg,
                                   const char *hname, const char *hvalue) {
        cJSON *o = cJSON_CreateObject();
        if (o && !cJSON_AddStringToObject(o, "error", msg)) {
                cJSON_Delete(o);
                o = NULL;
        }
        return reply_json(c, status, o, hname, hvalue);
}

static void client_address(struct MHD_Connection *c, char *buf, size_t bufsz) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        snprintf(buf, bufsz, "an unknown address");
        if (!ci || !ci->client_addr)
                return;
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)bufsz);
        else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                          (socklen_t)bufsz);
}

static enum MHD_Result reply_rejected(alerts_server *s, struct MHD_Connection *c, unsigned status) {
        char from[INET6_ADDRSTRLEN + 1];
        client_address(c, from, sizeof from);
        if (status == MHD_HTTP_UNAUTHORIZED) {
                s->received[RECEIVED_UNAUTHORIZED]++;
                log_event_send(EV_ALERT, LOG_WARNING, NULL,
                               "rejected an alert webhook from %s: missing or invalid bearer token", from);
                return reply_error(c, status, "missing or invalid bearer token", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                   "Bearer");
        }
        s->received[RECEIVED_TOO_LARGE]++;
        log_event_send(EV_ALERT, LOG_WARNING, NULL, "rejected an alert webhook from %s: body larger than 1 MiB",
                       from);
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than 1 MiB", NULL, NULL);
}

/* ---- the webhook ---- */

typedef struct app_note {
        size_t firing, resolved;
        bool changed;
        char summary[200];
} app_note;

static void note_add(app_note *n, const webhook_alert *a) {
        if (a->firing)
                n->firing++;
        else
                n->resolved++;
        size_t used = strlen(n->summary);
        if (used + 1 >= sizeof n->summary)
                return;
        char name[64];
        safe_copy(name, sizeof name, label_value(&a->alert, "alertname"));
        int w = snprintf(n->summary + used, sizeof n->summary - used, "%s%s %s", used ? ", " : "",
                         *name ? name : "(no alertname)", a->firing ? "firing" : "resolved");
        /* A cut-off entry reads worse than a count: end it with an ellipsis. */
        if (w < 0 || (size_t)w >= sizeof n->summary - used)
                memcpy(n->summary + sizeof n->summary - 4, "...", 4);
}

static void log_notes(alerts_server *s, const app_note *notes, const app_note *unmatched) {
        for (size_t i = 0; i < s->n_apps; i++) {
                const app_note *n = &notes[i];
                if (n->firing + n->resolved == 0)
                        continue;
                log_fields f = { .app = s->apps[i].name, .result = n->firing ? "firing" : "resolved" };
                log_event_send(EV_ALERT, LOG_INFO, &f, "alert webhook: %s (%zu firing now)", n->summary,
                               s->apps[i].n_alerts);
        }
        if (unmatched->firing + unmatched->resolved > 0)
                log_event_send(EV_ALERT, LOG_INFO, NULL, "alert webhook: %zu alert(s) concern no configured app: %s",
                               unmatched->firing + unmatched->resolved, unmatched->summary);
}

static int apply_batch(alerts_server *s, const webhook_batch *b, size_t *ret_matched, size_t *ret_unmatched) {
        int64_t now = now_realtime_ms();
        _cleanup_free_ app_note *notes = calloc(s->n_apps ? s->n_apps : 1, sizeof(app_note));
        if (!notes)
                return -ENOMEM;
        app_note unmatched = { 0 };
        size_t matched = 0;
        int r = 0;

        for (size_t i = 0; i < b->n_alerts && r >= 0; i++) {
                const webhook_alert *a = &b->alerts[i];
                _cleanup_free_ char *key = alert_key(a);
                if (!key) {
                        r = -ENOMEM;
                        break;
                }
                bool concerns_any = false;
                for (size_t j = 0; j < s->n_apps; j++) {
                        app_slot *slot = &s->apps[j];
                        bool concerns = alert_concerns(slot, &a->alert);
                        if (concerns) {
                                concerns_any = true;
                                note_add(&notes[j], a);
                        }
                        if (!a->firing || alert_expired(&a->alert, now)) {
                                /* By key from every app: the config may have
                                 * changed since the alert was routed. */
                                slot_remove_key(slot, key);
                                continue;
                        }
                        if (!concerns)
                                continue;
                        int k = slot_put(slot, key, &a->alert);
                        if (k < 0) {
                                r = k;
                                break;
                        }
                        if (k > 0)
                                notes[j].changed = true;
                }
                if (concerns_any)
                        matched++;
                else
                        note_add(&unmatched, a);
        }

        log_notes(s, notes, &unmatched);

        /* Only now, with the store consistent: the watcher may look alerts up
         * from inside watcher_poll_now. */
        for (size_t j = 0; j < s->n_apps; j++)
                if (notes[j].changed && s->watcher)
                        (void)watcher_poll_now(s->watcher, s->apps[j].name);

        *ret_matched = matched;
        *ret_unmatched = b->n_alerts - matched;
        return r;
}

static enum MHD_Result handle_webhook(alerts_server *s, struct MHD_Connection *c, request *rq) {
        webhook_batch b = { 0 };
        _cleanup_free_ char *error = NULL;
        int r = webhook_parse(rq->body, rq->len, &b, &error);
        if (r == -ENOMEM)
                return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, NULL);
        if (r < 0) {
                char from[INET6_ADDRSTRLEN + 1];
                client_address(c, from, sizeof from);
                s->received[RECEIVED_MALFORMED]++;
                log_event_send(EV_ALERT, LOG_WARNING, NULL, "rejected an alert webhook from %s: %s", from,
                               strna(error));
                return reply_error(c, MHD_HTTP_BAD_REQUEST, error ? error : "malformed payload", NULL, NULL);
        }

        size_t matched = 0, unmatched = 0;
        r = apply_batch(s, &b, &matched, &unmatched);
        webhook_batch_done(&b);
        if (r < 0)
                return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, NULL);
        s->received[RECEIVED_OK]++;

        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddStringToObject(o, "status", "ok") ||
                  !cJSON_AddNumberToObject(o, "matched", (double)matched) ||
                  !cJSON_AddNumberToObject(o, "unmatched", (double)unmatched))) {
                cJSON_Delete(o);
                o = NULL;
        }
        return reply_json(c, MHD_HTTP_OK, o, NULL, NULL);
}

/* ---- /metrics and /status ---- */

static void write_label_value(FILE *f, const char *v) {
        for (; *v; v++) {
                if (*v == '\\' || *v == '"')
                        fputc('\\', f);
                if (*v == '\n')
                        fputs("\\n", f);
                else
                        fputc(*v, f);
        }
}

/* No authentication: the listener binds only the configured address (loopback
 * by default), and these numbers carry no secret; Prometheus scrapers
 * rarely carry bearer tokens for every target. */
static enum MHD_Result handle_metrics(alerts_server *s, struct MHD_Connection *c) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);

        if (s->watcher)
                watcher_write_metrics(s->watcher, f);

        fputs("# HELP rollguard_alerts_received_total Alert webhook deliveries by result.\n"
              "# TYPE rollguard_alerts_received_total counter\n",
              f);
        for (size_t i = 0; i < _RECEIVED_MAX; i++)
                fprintf(f, "rollguard_alerts_received_total{result=\"%s\"} %" PRIu64 "\n", receive_result_names[i],
                        s->received[i]);

        int64_t now = now_realtime_ms();
        fputs("# HELP rollguard_alerts_firing Firing alerts routed to the app whose endsAt has not passed.\n"
              "# TYPE rollguard_alerts_firing gauge\n",
              f);
        for (size_t i = 0; i < s->n_apps; i++) {
                slot_drop_expired(&s->apps[i], now);
                fputs("rollguard_alerts_firing{app=\"", f);
                write_label_value(f, s->apps[i].name);
                fprintf(f, "\"} %zu\n", s->apps[i].n_alerts);
        }

        bool failed = ferror(f);
        if (fclose(f) != 0 || failed) {
                free(buf);
                return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);
        }
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", buf, size, NULL, NULL);
}

static enum MHD_Result handle_status(alerts_server *s, struct MHD_Connection *c) {
        cJSON *root = s->watcher ? watcher_status_json(s->watcher) : cJSON_CreateObject();
        if (!root)
                return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);

        int64_t now = now_realtime_ms();
        cJSON *apps = cJSON_GetObjectItemCaseSensitive(root, "apps");
        cJSON *app;
        cJSON_ArrayForEach(app, apps) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(app, "name");
                if (!cJSON_IsString(name) || !name->valuestring)
                        continue;
                app_slot *slot = find_slot(s, name->valuestring);
                size_t n = 0;
                if (slot) {
                        slot_drop_expired(slot, now);
                        n = slot->n_alerts;
                }
                if (!cJSON_AddNumberToObject(app, "alerts_firing", (double)n)) {
                        cJSON_Delete(root);
                        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);
                }
        }
        return reply_json(c, MHD_HTTP_OK, root, NULL, NULL);
}

/* ---- MHD callbacks ---- */

static bool method_is(const char *method, const char *m) {
        return method && streq(method, m);
}

static enum MHD_Result first_call(alerts_server *s, struct MHD_Connection *c, const char *url,
                                  const char *method, request *rq) {
        if (streq(url, "/metrics") || streq(url, "/status")) {
                if (!method_is(method, MHD_HTTP_METHOD_GET) && !method_is(method, MHD_HTTP_METHOD_HEAD))
                        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", MHD_HTTP_HEADER_ALLOW,
                                           "GET, HEAD");
                return streq(url, "/metrics") ? handle_metrics(s, c) : handle_status(s, c);
        }
        if (!streq(url, "/api/v1/alerts"))
                return reply_error(c, MHD_HTTP_NOT_FOUND, "not found", NULL, NULL);
        if (!method_is(method, MHD_HTTP_METHOD_POST))
                return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", MHD_HTTP_HEADER_ALLOW, "POST");

        rq->webhook = true;

        uint64_t declared = 0;
        bool have_declared = false;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
                char *end = NULL;
                errno = 0;
                unsigned long long v = strtoull(cl, &end, 10);
                /* MHD answers a malformed Content-Length itself; an unreadable
                 * one here counts as "too much to drain". */
                have_declared = errno == 0 && end != cl && *end == '\0';
                declared = have_declared ? (uint64_t)v : UINT64_MAX;
        }

        if (!token_ok(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)))
                rq->reject = MHD_HTTP_UNAUTHORIZED;
        else if (have_declared && declared > ALERTS_MAX_BODY)
                rq->reject = MHD_HTTP_CONTENT_TOO_LARGE;

        if (rq->reject) {
                /* A sender waiting for 100 Continue has sent no body yet, and
                 * one announcing more than we would drain gets the answer now. */
                const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
                if ((expect && strcasecmp(expect, "100-continue") == 0) || declared > ALERTS_DRAIN_MAX)
                        return reply_rejected(s, c, rq->reject);
                return MHD_YES;
        }

        if (have_declared && declared > 0) {
                rq->body = malloc((size_t)declared + 1);
                if (!rq->body)
                        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, NULL);
                rq->cap = (size_t)declared + 1;
        }
        return MHD_YES;
}

static enum MHD_Result body_chunk(request *rq, const char *data, size_t n) {
        rq->seen += n;
        if (rq->seen > ALERTS_DRAIN_MAX)
                return MHD_NO; /* close: we have read more than enough */
        if (rq->reject)
                return MHD_YES;
        if (rq->len + n > ALERTS_MAX_BODY) {
                rq->reject = MHD_HTTP_CONTENT_TOO_LARGE;
                rq->body = mfree(rq->body);
                rq->len = rq->cap = 0;
                return MHD_YES;
        }
        if (rq->len + n + 1 > rq->cap) {
                size_t cap = rq->cap ? rq->cap : 16 * 1024;
                while (cap < rq->len + n + 1)
                        cap *= 2;
                if (cap > ALERTS_MAX_BODY + 1)
                        cap = ALERTS_MAX_BODY + 1;
                char *nb = realloc(rq->body, cap);
                if (!nb)
                        return MHD_NO;
                rq->body = nb;
                rq->cap = cap;
        }
        memcpy(rq->body + rq->len, data, n);
        rq->len += n;
        return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  _unused_ const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
        alerts_server *s = cls;
        request *rq = *req_cls;

        if (!rq) {
                rq = calloc(1, sizeof(request));
                if (!rq)
                        return MHD_NO;
                *req_cls = rq;
                return first_call(s, c, url ? url : "", method, rq);
        }

        if (*upload_data_size > 0) {
                enum MHD_Result r = body_chunk(rq, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return r;
        }

        if (!rq->webhook)
                return MHD_NO; /* we answered in the first call; MHD will not ask again */
        if (rq->reject)
                return reply_rejected(s, c, rq->reject);
        return handle_webhook(s, c, rq);
}

static void on_request_completed(_unused_ void *cls, _unused_ struct MHD_Connection *c, void **req_cls,
                                 _unused_ enum MHD_RequestTerminationCode toe) {
        request *rq = *req_cls;
        if (!rq)
                return;
        free(rq->body);
        free(rq);
        *req_cls = NULL;
}

_printf_(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        alerts_server *s = cls;
        char line[256];
        vsnprintf(line, sizeof line, fmt, ap);
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '.'))
                line[--n] = '\0';
        if (s->capture_log) {
                /* keep the first complaint: it is the cause, the rest follow from it */
                if (!s->start_log[0])
                        snprintf(s->start_log, sizeof s->start_log, "%s", line);
                return;
        }
        log_debug("libmicrohttpd: %s", line);
}

/* ---- the listener on the sd-event loop ---- */

static void listener_rearm(listener *l) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        if (MHD_get_timeout(l->mhd, &timeout_ms) == MHD_YES) {
                (void)sd_event_source_set_time_relative(l->timer, (uint64_t)timeout_ms * USEC_PER_MSEC);
                (void)sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
        } else
                (void)sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
}

static int on_mhd_io(_unused_ sd_event_source *es, _unused_ int fd, _unused_ uint32_t revents,
                     void *userdata) {
        listener *l = userdata;
        MHD_run(l->mhd);
        listener_rearm(l);
        return 0;
}

static int on_mhd_timer(_unused_ sd_event_source *es, _unused_ uint64_t usec, void *userdata) {
        listener *l = userdata;
        MHD_run(l->mhd);
        listener_rearm(l);
        return 0;
}

static listener *listener_free(listener *l) {
        if (!l)
                return NULL;
        /* sources first: MHD_stop_daemon closes the fd they watch */
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->timer);
        if (l->mhd)
                MHD_stop_daemon(l->mhd);
        free(l->listen);
        free(l);
        return NULL;
}

typedef union listen_addr {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} listen_addr;

/* "127.0.0.1:9095", "[::1]:9095", "localhost:9095"; port 0 = any free port.
 * Numeric only (plus localhost): a listener that controls rollbacks should
 * not depend on DNS answering at start-up. */
static int parse_listen(const char *s, listen_addr *ret, char **ret_error) {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s)
                goto bad;

        char host[INET6_ADDRSTRLEN + 2];
        const char *h = s;
        size_t hl = (size_t)(colon - s);
        bool v6 = false;
        if (*h == '[') {
                if (hl < 3 || h[hl - 1] != ']')
                        goto bad;
                h++;
                hl -= 2;
                v6 = true;
        }
        if (hl == 0 || hl >= sizeof host)
                goto bad;
        memcpy(host, h, hl);
        host[hl] = '\0';

        int64_t port;
        if (parse_int64(colon + 1, 0, 65535, &port) < 0 || colon[1] == '+' || colon[1] == '-')
                goto bad;

        *ret = (listen_addr){ 0 };
        if (v6) {
                ret->in6.sin6_family = AF_INET6;
                ret->in6.sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host, &ret->in6.sin6_addr) != 1)
                        goto bad;
                return 0;
        }
        if (strchr(host, ':')) {
                *ret_error = strdup_printf("alerts.listen \"%s\": write an IPv6 address in brackets, e.g. [::1]:9095", s);
                return -EINVAL;
        }
        ret->in.sin_family = AF_INET;
        ret->in.sin_port = htons((uint16_t)port);
        if (streq(host, "localhost"))
                ret->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &ret->in.sin_addr) != 1)
                goto bad;
        return 0;
bad:
        *ret_error = strdup_printf(
                "alerts.listen \"%s\": expected ADDRESS:PORT with a numeric address, e.g. 127.0.0.1:9095 or [::1]:9095", s);
        return -EINVAL;
}

static int listener_new(alerts_server *s, const char *listen, listener **ret, char **ret_error) {
        listen_addr addr;
        int r = parse_listen(listen, &addr, ret_error);
        if (r < 0)
                return r;
        bool v6 = addr.sa.sa_family == AF_INET6;
        uint16_t want_port = ntohs(v6 ? addr.in6.sin6_port : addr.in.sin_port);

        listener *l = calloc(1, sizeof(listener));
        if (!l)
                return -ENOMEM;
        l->server = s;
        l->listen = strdup(listen);
        if (!l->listen) {
                free(l);
                return -ENOMEM;
        }

        s->capture_log = true;
        s->start_log[0] = '\0';
        l->mhd = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0), want_port, NULL, NULL, on_request, s,
                /* the logger must come first, or MHD prints early errors itself */
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                MHD_OPTION_SOCK_ADDR, &addr.sa,
                MHD_OPTION_CONNECTION_TIMEOUT, ALERTS_CONNECTION_TIMEOUT_SEC,
                MHD_OPTION_CONNECTION_LIMIT, ALERTS_CONNECTION_LIMIT,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ALERTS_CONNECTION_MEMORY,
                MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, s,
                MHD_OPTION_END);
        s->capture_log = false;
        if (!l->mhd) {
                *ret_error = strdup_printf("cannot listen on %s for alerts: %s", listen,
                                           s->start_log[0] ? s->start_log : "libmicrohttpd failed to start");
                listener_free(l);
                return -EADDRNOTAVAIL;
        }

        const union MHD_DaemonInfo *epoll_info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        const union MHD_DaemonInfo *port_info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_BIND_PORT);
        if (!epoll_info || epoll_info->epoll_fd < 0 || !port_info) {
                *ret_error = strdup_printf("cannot listen on %s for alerts: libmicrohttpd has no epoll descriptor",
                                           listen);
                listener_free(l);
                return -EIO;
        }
        l->port = port_info->port;

        r = sd_event_add_io(s->event, &l->io, epoll_info->epoll_fd, EPOLLIN, on_mhd_io, l);
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &l->timer, CLOCK_MONOTONIC, 0, 0, on_mhd_timer, l);
        if (r < 0) {
                *ret_error = strdup_printf("cannot watch the alert listener on the event loop: %s", strerror(-r));
                listener_free(l);
                return r;
        }
        (void)sd_event_source_set_description(l->io, "alerts-http");
        (void)sd_event_source_set_description(l->timer, "alerts-http-timer");
        listener_rearm(l);

        char host[INET6_ADDRSTRLEN];
        inet_ntop(addr.sa.sa_family, v6 ? (const void *)&addr.in6.sin6_addr : (const void *)&addr.in.sin_addr,
                  host, sizeof host);
        log_notice(v6 ? "listening on [%s]:%d for alerts, /metrics and /status"
                      : "listening on %s:%d for alerts, /metrics and /status",
                   host, l->port);
        *ret = l;
        return 0;
}

/* ---- the server ---- */

static void set_error(char **ret_error, char *msg) {
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
}

int alerts_server_new(sd_event *e, watcher *w, const config *cfg, alerts_server **ret, char **ret_error) {
        char *err = NULL;
        if (!cfg->alerts_listen) {
                set_error(ret_error, strdup("alerts.listen is not set"));
                return -EINVAL;
        }

        alerts_server *s = calloc(1, sizeof(alerts_server));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->watcher = w;

        int r = read_token(cfg, &s->token, &s->token_len, &err);
        if (r >= 0)
                r = app_slots_from_config(cfg, &s->apps, &s->n_apps);
        if (r >= 0)
                r = listener_new(s, cfg->alerts_listen, &s->listener, &err);
        if (r < 0) {
                if (!err && r == -ENOMEM)
                        err = strdup("out of memory");
                set_error(ret_error, err);
                alerts_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

alerts_server *alerts_server_free(alerts_server *s) {
        if (!s)
                return NULL;
        listener_free(s->listener);
        app_slots_free(s->apps, s->n_apps);
        free_secret(s->token);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

/* Re-route what we hold under the new config: removed apps lose their
 * alerts, kept apps keep those that still concern them, and an app whose new
 * rules match a stored alert gets it. */
static int reroute(const alerts_server *s, const config *cfg, app_slot **ret, size_t *ret_n) {
        app_slot *apps = NULL;
        size_t n_apps = 0;
        int r = app_slots_from_config(cfg, &apps, &n_apps);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_apps; i++) {
                const app_slot *old = &s->apps[i];
                for (size_t k = 0; k < old->n_alerts; k++)
                        for (size_t j = 0; j < n_apps; j++) {
                                if (!alert_concerns(&apps[j], &old->alerts[k]))
                                        continue;
                                r = slot_put(&apps[j], old->keys[k], &old->alerts[k]);
                                if (r < 0) {
                                        app_slots_free(apps, n_apps);
                                        return r;
                                }
                        }
        }
        *ret = apps;
        *ret_n = n_apps;
        return 0;
}

/* All or nothing: main switches the watcher back to the old config when this
 * fails, so on failure routing, token and listener all stay as they were. */
int alerts_server_reconfigure(alerts_server *s, const config *cfg, char **ret_error) {
        char *err = NULL;
        if (!cfg->alerts_listen) {
                set_error(ret_error, strdup("alerts.listen was removed: restart rollguard to stop the alert listener"));
                return -EINVAL;
        }

        _cleanup_secret_ char *token = NULL;
        size_t token_len = 0;
        int r = read_token(cfg, &token, &token_len, &err);
        if (r < 0) {
                set_error(ret_error, err ? err : strdup("out of memory"));
                return r;
        }

        app_slot *apps = NULL;
        size_t n_apps = 0;
        r = reroute(s, cfg, &apps, &n_apps);
        if (r < 0) {
                set_error(ret_error, strdup("out of memory"));
                return r;
        }

        listener *l = NULL;
        if (!streq(cfg->alerts_listen, s->listener->listen)) {
                /* The new address is bound before the old one is let go: if it
                 * cannot bind, the old one keeps serving. */
                r = listener_new(s, cfg->alerts_listen, &l, &err);
                if (r < 0) {
                        app_slots_free(apps, n_apps);
                        set_error(ret_error, err ? err : strdup("out of memory"));
                        return r;
                }
        }

        free_secret(s->token);
        s->token = TAKE_PTR(token);
        s->token_len = token_len;
        app_slots_free(s->apps, s->n_apps);
        s->apps = apps;
        s->n_apps = n_apps;
        if (l) {
                listener_free(s->listener);
                s->listener = l;
        }
        return 0;
}

int alerts_server_port(const alerts_server *s) {
        return s && s->listener ? s->listener->port : -1;
}
