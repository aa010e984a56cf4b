/* SPDX-License-Identifier: MIT */
/* The engine's set of channels: created, replaced by name on reload,
 * freed; and what is queued and counted across them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "notify_internal.h"
#include "util.h"

#define DEFAULT_RETRY_FOR (10 * USEC_PER_MIN)
#define DEFAULT_BACKOFF_INITIAL USEC_PER_SEC
#define DEFAULT_BACKOFF_MAX USEC_PER_MIN
#define DEFAULT_TIMEOUT (10 * USEC_PER_SEC)

size_t notify_pending(const notify *n) {
        size_t k = 0;
        if (!n)
                return 0;
        for (size_t i = 0; i < n->n_chans; i++)
                k += n->chans[i]->n_pending + n->chans[i]->n_cur;
        for (const test_call *t = n->tests; t; t = t->next)
                k++;
        return k;
}

void notify_stats_foreach(const notify *n, notify_stats_fn fn, void *userdata) {
        for (size_t i = 0; n && i < n->n_chans; i++)
                for (int r = 0; r < _NOTIFY_RESULT_MAX; r++)
                        fn(n->chans[i]->c.name, n->chans[i]->c.type, (notify_result)r, n->chans[i]->stats[r],
                           userdata);
}

static void chan_free(chan *ch) {
        if (!ch)
                return;
        notify_chan_done(ch);
        free(ch);
}

static bool channel_valid(const notify_channel *c) {
        return c->name && c->url && c->type >= 0 && c->type < _NOTIFY_TYPE_MAX;
}

/* The channel's description and its rate window from c; what is queued,
 * in flight, deduped and counted stays. */
static int chan_configure(chan *ch, const notify_channel *c) {
        notify_channel copy;
        if (notify_channel_copy(c, &copy) < 0)
                return -ENOMEM;
        unsigned max;
        uint64_t period;
        notify_type_rate_limit(copy.type, &max, &period);
        if (copy.rate_max) {
                max = copy.rate_max;
                period = copy.rate_period_usec ? copy.rate_period_usec : USEC_PER_MIN;
        }
        if (max != ch->rate_max || !ch->sent_at) {
                uint64_t *ring = max ? calloc(max, sizeof *ring) : NULL;
                if (max && !ring) {
                        notify_channel_done(&copy);
                        return -ENOMEM;
                }
                /* keep the newest departures: the platform still counts them */
                size_t keep = ch->sent_at && ch->sent_n < max ? ch->sent_n : (ch->sent_at ? max : 0);
                for (size_t i = 0; i < keep; i++) /* ring[keep - 1] is the newest */
                        ring[keep - 1 - i] = ch->sent_at[(ch->sent_head + ch->rate_max - 1 - i) % ch->rate_max];
                free(ch->sent_at);
                ch->sent_at = ring;
                ch->sent_n = keep;
                ch->sent_head = max ? keep % max : 0;
        }
        ch->rate_max = max;
        ch->rate_period = period;
        notify_channel_done(&ch->c);
        ch->c = copy;
        return 0;
}

static chan *chan_new(notify *n, const notify_channel *c) {
        chan *ch = calloc(1, sizeof *ch);
        if (!ch)
                return NULL;
        ch->n = n;
        if (chan_configure(ch, c) < 0) {
                free(ch);
                return NULL;
        }
        return ch;
}

static chan *find_chan(const notify *n, const char *name) {
        for (size_t i = 0; i < n->n_chans; i++)
                if (n->chans[i] && streq(n->chans[i]->c.name, name))
                        return n->chans[i];
        return NULL;
}

int notify_reconfigure(notify *n, const notify_channel *channels, size_t n_channels) {
        if (!n || (n_channels && !channels))
                return -EINVAL;
        for (size_t i = 0; i < n_channels; i++)
                if (!channel_valid(&channels[i]))
                        return -EINVAL;
        chan **next = calloc(n_channels ? n_channels : 1, sizeof *next);
        bool *fresh = calloc(n_channels ? n_channels : 1, sizeof *fresh);
        if (!next || !fresh) {
                free(next);
                free(fresh);
                return -ENOMEM;
        }
        /* First everything that can fail, on new channels only: a failure
         * leaves n as it was. */
        for (size_t i = 0; i < n_channels; i++) {
                if (find_chan(n, channels[i].name))
                        continue;
                next[i] = chan_new(n, &channels[i]);
                fresh[i] = true;
                if (!next[i])
                        goto oom;
        }
        for (size_t i = 0; i < n_channels; i++) {
                if (fresh[i])
                        continue;
                chan *old = find_chan(n, channels[i].name);
                if (chan_configure(old, &channels[i]) < 0)
                        log_warning("notify: channel %s: out of memory applying the new settings; keeping the old ones",
                                    old->c.name);
                next[i] = old;
        }
        /* What is left of the old set was removed: its queue goes with it. */
        for (size_t i = 0; i < n->n_chans; i++) {
                bool kept = false;
                for (size_t j = 0; j < n_channels && !kept; j++)
                        kept = next[j] == n->chans[i];
                if (kept)
                        continue;
                for (test_call **p = &n->tests; *p;) {
                        test_call *t = *p;
                        if (t->ch != n->chans[i]) {
                                p = &t->next;
                                continue;
                        }
                        *p = t->next;
                        http_call_cancel(t->call);
                        free(t);
                }
                if (n->chans[i]->n_pending + n->chans[i]->n_cur > 0)
                        log_notice("notify: channel %s removed with %zu event(s) not delivered", n->chans[i]->c.name,
                                   n->chans[i]->n_pending + n->chans[i]->n_cur);
                chan_free(n->chans[i]);
        }
        free(n->chans);
        free(fresh);
        n->chans = next;
        n->n_chans = n_channels;
        for (size_t i = 0; i < n_channels; i++)
                notify_chan_kick(next[i]);
        return 0;
oom:
        for (size_t i = 0; i < n_channels; i++)
                if (fresh[i])
                        chan_free(next[i]);
        free(next);
        free(fresh);
        return -ENOMEM;
}

notify *notify_free(notify *n) {
        if (!n)
                return NULL;
        while (n->tests) {
                test_call *t = n->tests;
                n->tests = t->next;
                http_call_cancel(t->call);
                free(t);
        }
        for (size_t i = 0; i < n->n_chans; i++)
                chan_free(n->chans[i]);
        free(n->chans);
        sd_event_unref(n->event);
        free(n);
        return NULL;
}

int notify_new(sd_event *e, http_client *http, const notify_channel *channels, size_t n_channels,
               const notify_options *opt, notify **ret) {
        if (!e || !http || !ret || (n_channels && !channels))
                return -EINVAL;
        for (size_t i = 0; i < n_channels; i++)
                if (!channel_valid(&channels[i]))
                        return -EINVAL;
        notify *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        n->event = sd_event_ref(e);
        n->http = http;
        if (opt)
                n->opt = *opt;
        if (!n->opt.retry_for_usec)
                n->opt.retry_for_usec = DEFAULT_RETRY_FOR;
        if (!n->opt.backoff_initial_usec)
                n->opt.backoff_initial_usec = DEFAULT_BACKOFF_INITIAL;
        if (!n->opt.backoff_max_usec)
                n->opt.backoff_max_usec = DEFAULT_BACKOFF_MAX;
        if (!n->opt.timeout_usec)
                n->opt.timeout_usec = DEFAULT_TIMEOUT;
        n->chans = calloc(n_channels ? n_channels : 1, sizeof *n->chans);
        if (!n->chans)
                goto oom;
        for (size_t i = 0; i < n_channels; i++) {
                n->chans[i] = chan_new(n, &channels[i]);
                if (!n->chans[i])
                        goto oom;
                n->n_chans = i + 1;
        }
        *ret = n;
        return 0;
oom:
        notify_free(n);
        return -ENOMEM;
}
