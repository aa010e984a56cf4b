/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "notify_answer.h"
#include "notify_internal.h"
#include "util.h"

static const char *const result_names[_NOTIFY_RESULT_MAX] = {
        [NOTIFY_RESULT_SENT] = "sent",     [NOTIFY_RESULT_RETRIED] = "retried",
        [NOTIFY_RESULT_FAILED] = "failed", [NOTIFY_RESULT_MERGED] = "merged",
        [NOTIFY_RESULT_DEDUPED] = "deduped",
};

const char *notify_result_name(notify_result r) {
        return r >= 0 && r < _NOTIFY_RESULT_MAX ? result_names[r] : NULL;
}

static void owned_event_free(owned_event *o) {
        if (!o)
                return;
        for (size_t i = 0; i < ELEMENTSOF(o->str); i++)
                free(o->str[i]);
        free(o);
}

static owned_event *owned_event_new(const notify_event *ev) {
        owned_event *o = calloc(1, sizeof *o);
        if (!o)
                return NULL;
        o->ev = *ev;
        const char **fields[] = {
                &o->ev.app,    &o->ev.platform, &o->ev.region, &o->ev.app_id, &o->ev.change_order,
                &o->ev.rule,   &o->ev.action,   &o->ev.result, &o->ev.reason, &o->ev.rollback_change_order,
        };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (!*fields[i])
                        continue;
                o->str[i] = strdup(*fields[i]);
                if (!o->str[i]) {
                        owned_event_free(o);
                        return NULL;
                }
                *fields[i] = o->str[i];
        }
        return o;
}

static void count(chan *ch, notify_result r, uint64_t k) {
        ch->stats[r] += k;
}

static uint64_t retry_for(const chan *ch) {
        return ch->c.retry_for_usec ? ch->c.retry_for_usec : ch->n->opt.retry_for_usec;
}

static void report(chan *ch, notify_result r, long status, const char *detail, size_t n_events) {
        if (ch->n->opt.on_result)
                ch->n->opt.on_result(ch->c.name, r, status, detail, n_events, ch->n->opt.userdata);
}

/* ---- dedupe ---- */

static char *dedupe_key(const notify_event *ev) {
        return strdup_printf("%d\x1f%s", (int)ev->kind, ev->change_order);
}

static bool dedupe_seen(chan *ch, const char *key) {
        for (size_t i = 0; i < DEDUPE_KEYS; i++)
                if (ch->dedupe[i] && streq(ch->dedupe[i], key))
                        return true;
        return false;
}

static void dedupe_remember(chan *ch, char *key) {
        free(ch->dedupe[ch->dedupe_next]);
        ch->dedupe[ch->dedupe_next] = key;
        ch->dedupe_next = (ch->dedupe_next + 1) % DEDUPE_KEYS;
}

/* Without a change order (degraded, circuit open for an app) there is
 * nothing to pin it to: one such message per kind and app while it is
 * still waiting to go out. */
static bool same_unsent(chan *ch, const notify_event *ev) {
        for (size_t i = 0; i < ch->n_pending; i++) {
                const notify_event *p = &ch->pending[i]->ev;
                if (p->kind == ev->kind && !p->change_order && streq_null(p->app, ev->app))
                        return true;
        }
        for (size_t i = 0; i < ch->n_cur; i++) {
                const notify_event *p = &ch->cur[i]->ev;
                if (p->kind == ev->kind && !p->change_order && streq_null(p->app, ev->app))
                        return true;
        }
        return false;
}

/* ---- rate limit: a sliding window over the last rate_max attempts ---- */

/* The platform counts arrivals, we count departures: a slow first request
 * and a fast second one arrive closer together than they left. */
static uint64_t rate_margin(const chan *ch) {
        return ch->rate_period / 20 + 100 * USEC_PER_MSEC;
}

static void rate_prune(chan *ch, uint64_t now) {
        while (ch->sent_n > 0) {
                size_t oldest = (ch->sent_head + ch->rate_max - ch->sent_n) % ch->rate_max;
                if (now - ch->sent_at[oldest] < ch->rate_period + rate_margin(ch))
                        break;
                ch->sent_n--;
        }
}

static void rate_record(chan *ch, uint64_t now) {
        if (ch->rate_max == 0)
                return;
        ch->sent_at[ch->sent_head] = now;
        ch->sent_head = (ch->sent_head + 1) % ch->rate_max;
        if (ch->sent_n < ch->rate_max)
                ch->sent_n++;
}

/* Slots left in the window; *ret_free_at tells when the next one frees. */
static size_t rate_slots(chan *ch, uint64_t now, uint64_t *ret_free_at) {
        if (ch->rate_max == 0)
                return SIZE_MAX;
        rate_prune(ch, now);
        size_t oldest = (ch->sent_head + ch->rate_max - ch->sent_n) % ch->rate_max;
        *ret_free_at = ch->sent_n ? ch->sent_at[oldest] + ch->rate_period + rate_margin(ch) : now;
        return ch->rate_max - ch->sent_n;
}

/* ---- delivery ---- */

static void kick(chan *ch);
static int attempt(chan *ch);

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        chan *ch = userdata;
        if (ch->n_cur > 0 && !ch->call)
                (void)attempt(ch);
        else
                kick(ch);
        return 0;
}

static void arm_timer(chan *ch, uint64_t at) {
        int r;
        if (ch->timer) {
                r = sd_event_source_set_time(ch->timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(ch->timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(ch->n->event, &ch->timer, CLOCK_MONOTONIC, at, 10 * USEC_PER_MSEC,
                                      on_timer, ch);
        if (r < 0)
                log_warning("notify: channel %s: cannot arm a timer: %s", ch->c.name, strerror(-r));
}

static void cur_done(chan *ch) {
        for (size_t i = 0; i < ch->n_cur; i++)
                owned_event_free(ch->cur[i]);
        free(ch->cur);
        ch->cur = NULL;
        ch->n_cur = 0;
        ch->attempts = 0;
}

/* A channel that keeps failing says so once per this interval; what it
 * did not say is counted into the next record. */
#define FAIL_LOG_INTERVAL (10 * USEC_PER_MIN)

static void give_up(chan *ch, long status, const char *detail, bool permanent) {
        char dur[32];
        uint64_t now = now_monotonic_usec();
        format_duration(now - ch->first_try, dur, sizeof dur);
        if (!ch->failed_logged_at || now - ch->failed_logged_at >= FAIL_LOG_INTERVAL) {
                char more[96] = "";
                if (ch->failed_unlogged)
                        snprintf(more, sizeof more, "; %u more undelivered message(s) since the last such record",
                                 ch->failed_unlogged);
                log_fields f = {
                        .channel = ch->c.name,
                        .result = permanent ? "refused" : "gave_up",
                        .app = ch->n_cur ? ch->cur[0]->ev.app : NULL,
                        .change_order = ch->n_cur ? ch->cur[0]->ev.change_order : NULL,
                };
                log_event_send(EV_NOTIFY_FAILED, LOG_WARNING, &f,
                               "notify: channel %s (%s): %zu event(s) (first: %s) not delivered, %s after %u "
                               "attempt(s) over %s; last answer: %s%s",
                               ch->c.name, notify_type_name(ch->c.type), ch->n_cur,
                               ch->n_cur ? notify_kind_name(ch->cur[0]->ev.kind) : "-",
                               permanent ? "refused" : "gave up", ch->attempts, dur, detail, more);
                ch->failed_logged_at = now;
                ch->failed_unlogged = 0;
        } else {
                ch->failed_unlogged++;
                log_debug("notify: channel %s: another message not delivered (%s)", ch->c.name, detail);
        }
        count(ch, NOTIFY_RESULT_FAILED, 1);
        report(ch, NOTIFY_RESULT_FAILED, status, detail, ch->n_cur);
        cur_done(ch);
}

static void on_done(const http_response *resp, void *userdata) {
        chan *ch = userdata;
        ch->call = NULL;
        char detail[160];
        notify_answer a = notify_classify_answer(ch->c.type, resp->status, resp->body, detail, sizeof detail);
        if (resp->status == 0 && resp->transport_error)
                /* curl's own text can name the host; the code is enough */
                snprintf(detail, sizeof detail, "no answer (curl error %d)", resp->transport_error);

        if (a == NOTIFY_ANSWER_OK) {
                count(ch, NOTIFY_RESULT_SENT, 1);
                report(ch, NOTIFY_RESULT_SENT, resp->status, detail, ch->n_cur);
                cur_done(ch);
        } else if (a == NOTIFY_ANSWER_FAIL)
                give_up(ch, resp->status, detail, true);
        else {
                uint64_t now = now_monotonic_usec();
                uint64_t delay = jitter_usec(ch->backoff, 0.2);
                if (now + delay - ch->first_try > retry_for(ch)) {
                        give_up(ch, resp->status, detail, false);
                } else {
                        count(ch, NOTIFY_RESULT_RETRIED, 1);
                        report(ch, NOTIFY_RESULT_RETRIED, resp->status, detail, ch->n_cur);
                        log_debug("notify: channel %s: %s, retrying in %" PRIu64 " ms", ch->c.name, detail,
                                  delay / USEC_PER_MSEC);
                        ch->backoff = ch->backoff * 2 > ch->n->opt.backoff_max_usec ? ch->n->opt.backoff_max_usec
                                                                                     : ch->backoff * 2;
                        arm_timer(ch, now + delay);
                        return;
                }
        }
        kick(ch);
}

static int attempt(chan *ch) {
        uint64_t now = now_monotonic_usec();
        uint64_t free_at = now;
        /* a retry is a message too, as far as the platform counts */
        if (rate_slots(ch, now, &free_at) == 0) {
                arm_timer(ch, free_at);
                return 0;
        }
        int64_t now_ms = now_realtime_ms();
        const notify_event *evs[PENDING_MAX];
        for (size_t i = 0; i < ch->n_cur; i++)
                evs[i] = &ch->cur[i]->ev;
        _cleanup_free_ char *body = NULL;
        _cleanup_secret_ char *url = NULL;
        int r = notify_format_body(ch->c.type, evs, ch->n_cur, ch->c.secret, now_ms, &body);
        if (r >= 0)
                r = notify_format_url(ch->c.type, ch->c.url, ch->c.secret, now_ms, &url);
        if (r < 0) {
                give_up(ch, 0, strerror(-r), true);
                kick(ch);
                return r;
        }
        static const char *const headers[] = { "Content-Type: application/json; charset=utf-8" };
        http_request req = {
                .method = "POST",
                .url = url,
                .headers = headers,
                .n_headers = ELEMENTSOF(headers),
                .timeout_usec = ch->n->opt.timeout_usec,
                .body = body,
                .body_len = strlen(body),
                .wipe = 1, /* the URL carries the robot's token; the body a signature */
        };
        ch->attempts++;
        rate_record(ch, now);
        r = http_submit(ch->n->http, &req, on_done, ch, &ch->call);
        if (r < 0) {
                ch->call = NULL;
                give_up(ch, 0, strerror(-r), true);
                kick(ch);
        }
        return r;
}

/* Starts the next message when the channel is idle. With the window's last
 * slot, everything queued goes in one merged message, so the platform's
 * limit holds and nothing is dropped. */
static void kick(chan *ch) {
        if (ch->n_cur > 0 || ch->n_pending == 0)
                return;
        uint64_t now = now_monotonic_usec(), free_at = now;
        size_t slots = rate_slots(ch, now, &free_at);
        if (slots == 0) {
                arm_timer(ch, free_at);
                return;
        }
        size_t take = 1;
        if (notify_type_can_merge(ch->c.type) && slots == 1)
                take = ch->n_pending;
        ch->cur = calloc(take, sizeof *ch->cur);
        if (!ch->cur)
                return; /* stays pending; the next event or timer tries again */
        memcpy(ch->cur, ch->pending, take * sizeof *ch->cur);
        memmove(ch->pending, ch->pending + take, (ch->n_pending - take) * sizeof *ch->pending);
        ch->n_pending -= take;
        ch->n_cur = take;
        if (take > 1)
                count(ch, NOTIFY_RESULT_MERGED, take - 1);
        ch->attempts = 0;
        ch->first_try = now;
        ch->backoff = ch->n->opt.backoff_initial_usec;
        (void)attempt(ch);
}

static int enqueue(chan *ch, const notify_event *ev) {
        if (ev->kind != NOTIFY_EV_TEST) {
                if (ev->change_order) {
                        char *key = dedupe_key(ev);
                        if (!key)
                                return -ENOMEM;
                        if (dedupe_seen(ch, key)) {
                                free(key);
                                count(ch, NOTIFY_RESULT_DEDUPED, 1);
                                return 0;
                        }
                        dedupe_remember(ch, key);
                } else if (same_unsent(ch, ev)) {
                        count(ch, NOTIFY_RESULT_DEDUPED, 1);
                        return 0;
                }
        }
        if (ch->n_pending >= PENDING_MAX) {
                /* the oldest event is folded away, not silently lost: it was counted */
                owned_event_free(ch->pending[0]);
                memmove(ch->pending, ch->pending + 1, (ch->n_pending - 1) * sizeof *ch->pending);
                ch->n_pending--;
                count(ch, NOTIFY_RESULT_MERGED, 1);
        }
        if (ch->n_pending == ch->cap_pending) {
                size_t cap = ch->cap_pending ? ch->cap_pending * 2 : 8;
                owned_event **p = realloc(ch->pending, cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                ch->pending = p;
                ch->cap_pending = cap;
        }
        owned_event *o = owned_event_new(ev);
        if (!o)
                return -ENOMEM;
        ch->pending[ch->n_pending++] = o;
        kick(ch);
        return 1;
}

int notify_send(notify *n, const notify_event *ev) {
        if (!n || !ev || ev->kind < 0 || ev->kind >= _NOTIFY_EV_MAX)
                return -EINVAL;
        int queued = 0;
        for (size_t i = 0; i < n->n_chans; i++) {
                chan *ch = n->chans[i];
                if (!notify_channel_wants(&ch->c, ev->kind, ev->app))
                        continue;
                int r = enqueue(ch, ev);
                if (r < 0)
                        return r;
                queued += r;
        }
        return queued;
}

/* ---- notify-test ---- */

static void test_call_unlink(notify *n, test_call *t) {
        for (test_call **p = &n->tests; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        return;
                }
}

static void on_test_done(const http_response *resp, void *userdata) {
        test_call *t = userdata;
        char detail[160];
        notify_answer a = notify_classify_answer(t->ch->c.type, resp->status, resp->body, detail, sizeof detail);
        if (resp->status == 0 && resp->transport_error)
                snprintf(detail, sizeof detail, "no answer (curl error %d)", resp->transport_error);
        test_call_unlink(t->ch->n, t);
        if (t->cb)
                t->cb(t->ch->c.name, a == NOTIFY_ANSWER_OK, resp->status, detail, t->userdata);
        free(t);
}

static int test_one(chan *ch, notify_test_fn cb, void *userdata) {
        int64_t now_ms = now_realtime_ms();
        notify_event ev = { .kind = NOTIFY_EV_TEST, .time_ms = now_ms };
        const notify_event *evs[] = { &ev };
        _cleanup_free_ char *body = NULL;
        _cleanup_secret_ char *url = NULL;
        int r = notify_format_body(ch->c.type, evs, 1, ch->c.secret, now_ms, &body);
        if (r >= 0)
                r = notify_format_url(ch->c.type, ch->c.url, ch->c.secret, now_ms, &url);
        if (r < 0)
                return r;
        test_call *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        *t = (test_call){ .ch = ch, .cb = cb, .userdata = userdata };
        static const char *const headers[] = { "Content-Type: application/json; charset=utf-8" };
        http_request req = {
                .method = "POST",
                .url = url,
                .headers = headers,
                .n_headers = ELEMENTSOF(headers),
                .timeout_usec = ch->n->opt.timeout_usec,
                .body = body,
                .body_len = strlen(body),
                .wipe = 1, /* the URL carries the robot's token; the body a signature */
        };
        r = http_submit(ch->n->http, &req, on_test_done, t, &t->call);
        if (r < 0) {
                free(t);
                return r;
        }
        t->next = ch->n->tests;
        ch->n->tests = t;
        return 0;
}

int notify_test(notify *n, const char *name, notify_test_fn cb, void *userdata) {
        if (!n)
                return -EINVAL;
        int tested = 0;
        for (size_t i = 0; i < n->n_chans; i++) {
                chan *ch = n->chans[i];
                if (name && !streq(name, ch->c.name))
                        continue;
                int r = test_one(ch, cb, userdata);
                if (r < 0)
                        return r;
                tested++;
        }
        return tested > 0 ? tested : -ENOENT;
}

/* ---- life cycle ---- */

void notify_chan_done(chan *ch) {
        if (ch->call)
                http_call_cancel(ch->call);
        sd_event_source_disable_unref(ch->timer);
        cur_done(ch);
        for (size_t i = 0; i < ch->n_pending; i++)
                owned_event_free(ch->pending[i]);
        free(ch->pending);
        for (size_t i = 0; i < DEDUPE_KEYS; i++)
                free(ch->dedupe[i]);
        free(ch->sent_at);
        notify_channel_done(&ch->c);
}

void notify_chan_kick(chan *ch) {
        kick(ch);
}
