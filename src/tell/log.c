/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* CODE_FILE/CODE_LINE would always say "log.c, send_journal": noise */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>
#include <unistd.h>

/* The ids are part of rollguard's interface: operators filter on them
 * (journalctl MESSAGE_ID=...) and systemd/rollguard.catalog explains each.
 * Never change one; add a new kind instead. */
static const struct {
        const char *name;
        const char *message_id;
} events[_EV_MAX] = {
        [EV_NONE] = { "-", NULL },
        [EV_STARTED] = { "rollguard-started", "40116791a1ce4d25ae44d51a816caade" },
        [EV_STOPPING] = { "rollguard-stopping", "a553a24a917d435bb5cfaca6611b1299" },
        [EV_RELOADED] = { "rollguard-reloaded", "4fd5d49b294f44a9aa7526b8f55e7a8d" },
        [EV_RELOAD_FAILED] = { "rollguard-reload-failed", "51e28610e08042ea83f1f6fbaf204bcc" },
        [EV_RELEASE_SEEN] = { "rollguard-release-seen", "f73d987bf9a64a858d47fe9f24c05347" },
        [EV_RELEASE_ENDED] = { "rollguard-release-ended", "1a8b13f0d1034446be0ea42209b80f0b" },
        [EV_RULE_HOLDING] = { "rollguard-rule-holding", "ec77002c445f44178552d79698d7d127" },
        [EV_DECISION] = { "rollguard-decision", "ba4b5558c3474fc5b50503cbaceabcf5" },
        [EV_ACTION_SKIPPED] = { "rollguard-action-skipped", "73513368213948679e4cb83a7fba39ef" },
        [EV_ACTION_DONE] = { "rollguard-action-done", "24acf77afb04421da4b97fb5239e38e7" },
        [EV_ACTION_FAILED] = { "rollguard-action-failed", "81fb8c06bae74931bac06bf5709833d0" },
        [EV_ACTION_UNCONFIRMED] = { "rollguard-action-unconfirmed", "ea659f7757c24d0385cf6ce0eb267193" },
        [EV_ORDER_MOVED_ON] = { "rollguard-order-moved-on", "067b6f936a4f4ba886e2d636d5c8ba32" },
        [EV_API_ERROR] = { "rollguard-api-error", "2b329039e91949b1888a5db0538304ae" },
        [EV_APP_DEGRADED] = { "rollguard-app-degraded", "41b701f040a4435a8bc734c9770cb218" },
        [EV_APP_RECOVERED] = { "rollguard-app-recovered", "65f3da157ddd4a3eb93f65fce38b6ba6" },
        [EV_CIRCUIT_OPEN] = { "rollguard-circuit-open", "81a05b8a32e94952a82af9ee0e314404" },
        [EV_CIRCUIT_CLOSED] = { "rollguard-circuit-closed", "73a16010fb8243438fced3d118d8f039" },
        [EV_STATE_CORRUPT] = { "rollguard-state-corrupt", "985b72f1a06444fa94ab3c5c3c600443" },
        [EV_STATE_QUARANTINED] = { "rollguard-state-quarantined", "a49d685f1266465b92f9b640c79dfa6b" },
        [EV_ALERT] = { "rollguard-alert", "f6f03ae3d4dd44fd8c339b4ab96f887e" },
        [EV_CREDENTIALS] = { "rollguard-credentials", "6d4f6d91472041b0b6901151efafbf25" },
        [EV_METRIC_QUERY] = { "rollguard-metric-query", "16593eb370b0495d85418b66ddd97a43" },
        [EV_NOTIFY_FAILED] = { "rollguard-notify-failed", "1b4e2e97df984a34add498487acae329" },
        [EV_CLOUD_EVENT] = { "rollguard-cloud-event", "9232b4dbfe42482a959c5e11158e225a" },
        [EV_HA_ROLE] = { "rollguard-ha-role", "e6891b91724a4ead98e27c36677c70a9" },
        [EV_API_THROTTLED] = { "rollguard-api-throttled", "8efefc34b6644117a212f9a28df5ff95" },
        [EV_BUDGET_STRETCHED] = { "rollguard-budget-stretched", "2ec0bfb29005410db08c4ea9235a3843" },
        [EV_RELEASE_UNOBSERVED] = { "rollguard-release-unobserved", "58cecb3338e9431cbf47d4f74bc60503" },
};

static const char *const priority_names[8] = {
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/* Until log_setup() runs (early CLI errors) plain stderr is the right place. */
static log_target current_target = LOG_TARGET_STDERR;
static bool verbose_enabled;
static log_sink_fn test_sink;
static log_observer_fn observer;
static void *observer_userdata;

/* A message longer than this is cut and ends in "…": one runaway API error
 * body must not turn into a megabyte log record. */
#define LOG_MESSAGE_MAX 4096
#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, 3 bytes in UTF-8 */

const char *log_event_name(log_event ev) {
        if ((unsigned) ev >= _EV_MAX)
                return NULL;
        return events[ev].name;
}

const char *log_event_message_id(log_event ev) {
        if ((unsigned) ev >= _EV_MAX)
                return NULL;
        return events[ev].message_id;
}

/* systemd sets $JOURNAL_STREAM to "<st_dev>:<st_ino>" of the stream it
 * connected to stdout/stderr; only when that is still our stderr is the
 * journal listening there (systemd.exec(5), "$JOURNAL_STREAM"). */
static bool stderr_is_journal_stream(void) {
        const char *e = getenv("JOURNAL_STREAM");
        if (!e || !*e)
                return false;

        char *end;
        errno = 0;
        unsigned long long dev = strtoull(e, &end, 10);
        if (errno != 0 || end == e || *end != ':')
                return false;
        const char *ino_str = end + 1;
        unsigned long long ino = strtoull(ino_str, &end, 10);
        if (errno != 0 || end == ino_str || *end != 0)
                return false;

        struct stat st;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(log_target t, bool verbose) {
        if (t == LOG_TARGET_AUTO)
                t = stderr_is_journal_stream() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
        current_target = t;
        verbose_enabled = verbose;
}

bool log_verbose(void) {
        return verbose_enabled;
}

void log_set_observer(log_observer_fn fn, void *userdata) {
        observer = fn;
        observer_userdata = userdata;
}

void log_set_test_sink(log_sink_fn fn) {
        test_sink = fn;
}

/* Cut at a character boundary so the "…" never follows half a UTF-8 sequence. */
static size_t utf8_boundary(const char *s, size_t pos) {
        while (pos > 0 && ((unsigned char) s[pos] & 0xC0) == 0x80)
                pos--;
        return pos;
}

_printf_(3, 0) static void format_message(char *buf, size_t bufsz, const char *fmt, va_list ap) {
        int n = vsnprintf(buf, bufsz, fmt, ap);
        if (n < 0) {
                snprintf(buf, bufsz, "(unformattable log message)");
                return;
        }
        if ((size_t) n < bufsz)
                return;
        size_t cut = utf8_boundary(buf, bufsz - sizeof(ELLIPSIS));
        memcpy(buf + cut, ELLIPSIS, sizeof(ELLIPSIS)); /* includes the NUL */
}

typedef struct line_buffer {
        /* message plus prefix and fields; room is reserved for "…\n" */
        char data[LOG_MESSAGE_MAX + 1024];
        size_t len;
        bool truncated;
} line_buffer;

#define LINE_RESERVE (sizeof(ELLIPSIS) - 1 + 1)

/* Appends s; with flatten, CR and LF become spaces so one record stays one
 * line (and a value cannot forge a line of its own). */
static void line_append(line_buffer *l, const char *s, bool flatten) {
        if (l->truncated)
                return;
        size_t room = sizeof(l->data) - LINE_RESERVE - l->len;
        size_t n = strlen(s);
        if (n > room) {
                /* find the cut in the source before copying it */
                n = utf8_boundary(s, room);
                l->truncated = true;
        }
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (flatten && (c == '\n' || c == '\r'))
                        c = ' ';
                l->data[l->len++] = c;
        }
}

static void line_append_field(line_buffer *l, const char *key, const char *value) {
        if (!value)
                return;
        line_append(l, " ", false);
        line_append(l, key, false);
        line_append(l, "=", false);
        line_append(l, value, true);
}

static int send_stderr(log_event ev, int priority, const log_fields *f, const char *msg) {
        /* static: 5 KiB is too much stack for a function called everywhere,
         * and there is one thread */
        static line_buffer l;
        l.len = 0;
        l.truncated = false;

        line_append(&l, priority_names[priority], false);
        line_append(&l, " ", false);
        line_append(&l, events[ev].name, false);
        line_append_field(&l, "app", f->app);
        line_append_field(&l, "co", f->change_order);
        line_append_field(&l, "rule", f->rule);
        line_append_field(&l, "action", f->action);
        line_append_field(&l, "result", f->result);
        line_append_field(&l, "value", f->value);
        line_append_field(&l, "threshold", f->threshold);
        line_append(&l, ": ", false);
        line_append(&l, msg, true);
        if (l.truncated) {
                memcpy(l.data + l.len, ELLIPSIS, sizeof(ELLIPSIS) - 1);
                l.len += sizeof(ELLIPSIS) - 1;
        }
        l.data[l.len++] = '\n';

        /* one write per record so concurrent writers (a shell pipeline, a
         * test harness) never see two records interleaved */
        return write_all(STDERR_FILENO, l.data, l.len);
}

static int send_journal(log_event ev, int priority, const log_fields *f, const char *message_field) {
        struct iovec iov[16];
        char *owned[12] = {};
        size_t n = 0, n_owned = 0;
        char priority_field[sizeof("PRIORITY=") + 1];
        char message_id_field[sizeof("MESSAGE_ID=") + 32];

        iov[n++] = (struct iovec) { (void *) message_field, strlen(message_field) };

        snprintf(priority_field, sizeof priority_field, "PRIORITY=%d", priority);
        iov[n++] = (struct iovec) { priority_field, strlen(priority_field) };

        iov[n++] = (struct iovec) { (void *) "SYSLOG_IDENTIFIER=rollguard",
                                    strlen("SYSLOG_IDENTIFIER=rollguard") };

        if (ev != EV_NONE) {
                snprintf(message_id_field, sizeof message_id_field, "MESSAGE_ID=%s",
                         events[ev].message_id);
                iov[n++] = (struct iovec) { message_id_field, strlen(message_id_field) };
        }

        const struct {
                const char *key;
                const char *value;
        } extra[] = {
                { "ROLLGUARD_EVENT", ev != EV_NONE ? events[ev].name : NULL },
                { "ROLLGUARD_APP", f->app },
                { "ROLLGUARD_CHANGE_ORDER", f->change_order },
                { "ROLLGUARD_RULE", f->rule },
                { "ROLLGUARD_ACTION", f->action },
                { "ROLLGUARD_RESULT", f->result },
                { "ROLLGUARD_VALUE", f->value },
                { "ROLLGUARD_THRESHOLD", f->threshold },
                { "ROLLGUARD_REASON", f->reason },
                { "ROLLGUARD_ROLLBACK_CHANGE_ORDER", f->rollback_change_order },
                { "ROLLGUARD_CHANNEL", f->channel },
        };
        for (size_t i = 0; i < ELEMENTSOF(extra); i++) {
                if (!extra[i].value)
                        continue;
                char *s = strdup_printf("%s=%s", extra[i].key, extra[i].value);
                if (!s)
                        continue; /* the MESSAGE still tells the story */
                owned[n_owned++] = s;
                iov[n++] = (struct iovec) { s, strlen(s) };
        }

        int r = sd_journal_sendv(iov, (int) n);

        for (size_t i = 0; i < n_owned; i++)
                free(owned[i]);
        return r < 0 ? r : 0;
}

int log_event_send(log_event ev, int priority, const log_fields *f, const char *fmt, ...) {
        static const log_fields no_fields = {};
        /* callers log in error paths and may look at errno afterwards */
        int saved_errno = errno;

        priority &= LOG_PRIMASK;
        if (priority == LOG_DEBUG && !verbose_enabled)
                return 0;
        if ((unsigned) ev >= _EV_MAX)
                ev = EV_NONE;
        if (!f)
                f = &no_fields;

        /* "MESSAGE=" in front so the journal gets the field without a copy */
        static char message_field[sizeof("MESSAGE=") - 1 + LOG_MESSAGE_MAX];
        memcpy(message_field, "MESSAGE=", sizeof("MESSAGE=") - 1);
        char *msg = message_field + sizeof("MESSAGE=") - 1;

        va_list ap;
        va_start(ap, fmt);
        format_message(msg, LOG_MESSAGE_MAX, fmt, ap);
        va_end(ap);

        int r = 0;
        if (current_target == LOG_TARGET_JOURNAL) {
                r = send_journal(ev, priority, f, message_field);
                if (r < 0)
                        /* journald gone (restart, shutdown): the stream on
                         * stderr is the best remaining chance to be seen */
                        (void) send_stderr(ev, priority, f, msg);
        } else
                r = send_stderr(ev, priority, f, msg);

        if (test_sink)
                test_sink(ev, priority, f, msg);
        if (observer && ev != EV_NONE) {
                /* The observer may log, which reuses message_field. */
                static bool observing;
                if (!observing) {
                        observing = true;
                        char *copy = strdup(msg);
                        if (copy)
                                observer(observer_userdata, ev, priority, f, copy);
                        free(copy);
                        observing = false;
                }
        }
        errno = saved_errno;
        return r;
}
