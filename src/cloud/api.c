/* SPDX-License-Identifier: MIT */
#include "api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "credentials.h"
#include "json.h"
#include "log.h"
#include "util.h"

/* The budget stamps a call when we hand it to curl, but the server counts
 * it when it arrives; its guard window is longer by the latency spread we
 * expect (BUDGET_DEFAULT_MARGIN_USEC), which keeps the server's view within
 * the promise of SPEC 4. */
#define API_DEFAULT_WINDOW_USEC USEC_PER_MIN
/* A call throttled this many times in a row is answered as throttled after
 * all, so a server that throttles forever cannot hold a caller's cycle. */
#define API_MAX_THROTTLED_RESENDS 8
/* Polls on the wire at once. Each costs a curl handle, its buffers and a
 * connection; with no cap a slow or stalled endpoint would have every app's
 * poll in flight (1000 apps: tens of MiB). 64 still allows 64 calls/s
 * with answers taking a full second, far above the default pace (30 calls
 * a minute). Actions never wait for a slot. */
#define API_MAX_IN_FLIGHT 64

/* ---- queue helpers ---- */

static void list_append(call_list *l, api_call *call) {
        call->next = NULL;
        call->prev = l->tail;
        if (l->tail)
                l->tail->next = call;
        else
                l->head = call;
        l->tail = call;
}

static void list_remove(call_list *l, api_call *call) {
        if (call->prev)
                call->prev->next = call->next;
        else
                l->head = call->next;
        if (call->next)
                call->next->prev = call->prev;
        else
                l->tail = call->prev;
        call->prev = call->next = NULL;
}

static void call_free(api_call *call) {
        if (!call)
                return;
        /* the strings live in the same block (copy_request) */
        free(call);
}

static void queue_remove(api_client *c, api_call *call) {
        list_remove(&c->queue[call->prio], call);
        c->n_queued--;
        c->waiting.waiting[call->prio]--;
        if (!call->waited)
                c->n_unwaited--;
}

static void budget_queue_of(const api_client *c, budget_queue *q) {
        *q = c->waiting;
}

static void schedule_dispatch(api_client *c);

/* Detaches a call from wherever it is, without any callback. */
static void call_detach(api_client *c, api_call *call) {
        if (call->http) {
                http_call_cancel(call->http);
                call->http = NULL;
                list_remove(&c->in_flight, call);
                c->n_in_flight--;
                /* A slot on the wire is free: polls waiting for one (see
                 * API_MAX_IN_FLIGHT) must not wait for an unrelated answer. */
                schedule_dispatch(c);
        } else
                queue_remove(c, call);
}

/* Ends a call that will never see its callback: its owner frees what it
 * attached to the call. */
static void call_drop(api_client *c, api_call *call) {
        call_detach(c, call);
        if (call->destroy)
                call->destroy(call->userdata);
        call_free(call);
}

static void cancel_all(api_client *c) {
        for (size_t p = 0; p < _API_PRIO_MAX; p++)
                while (c->queue[p].head)
                        call_drop(c, c->queue[p].head);
        while (c->in_flight.head)
                call_drop(c, c->in_flight.head);
}

/* ---- lifetime ---- */

static void client_destroy(api_client *c) {
        cancel_all(c);
        if (c->creds)
                cred_provider_on_change(c->creds, NULL, NULL);
        sd_event_source_disable_unref(c->dispatch_source);
        sd_event_source_disable_unref(c->rate_timer);
        budget_done(&c->budget);
        api_metrics_free(c);
        sd_event_unref(c->event);
        free(c);
}

/* After user callbacks: true when the client is gone and must not be touched. */
static bool finish_pending_free(api_client *c) {
        if (c->busy > 0 || !c->free_pending)
                return false;
        client_destroy(c);
        return true;
}

api_client *api_client_free(api_client *c) {
        if (!c)
                return NULL;
        if (c->busy > 0) {
                cancel_all(c);
                c->free_pending = true;
                return NULL;
        }
        client_destroy(c);
        return NULL;
}

/* ---- sending ---- */

static void schedule_dispatch(api_client *c) {
        (void)sd_event_source_set_enabled(c->dispatch_source, SD_EVENT_ONESHOT);
}

static void on_http_done(const http_response *resp, void *userdata);

static int send_call(api_client *c, api_call *call, const credentials *cr, uint64_t now) {
        char date[21], nonce[33];
        int r;

        acs_format_date((long long)(now_realtime_ms() / 1000), date);
        r = acs_make_nonce(nonce);
        if (r < 0)
                return r;

        query_param query[API_MAX_QUERY];
        for (size_t i = 0; i < call->n_query; i++)
                query[i] = (query_param){ call->query_name[i], call->query_value[i] };

        sign_input in = {
                .method = call->method,
                .host = call->host,
                .path = call->path,
                .query = query,
                .n_query = call->n_query,
                .action = call->action,
                .version = call->version,
                .date = date,
                .nonce = nonce,
                .security_token = cr->security_token,
        };
        sign_result out;
        r = sign_request_into(&in, cr->access_key_id, cr->access_key_secret, &out);
        if (r < 0)
                return r;

        /* The URI the signature covers is the one sent. */
        char stack_url[1024];
        _cleanup_free_ char *heap_url = NULL;
        const char *url = stack_url;
        const char *qm = *out.canonical_query ? "?" : "";
        int n = snprintf(stack_url, sizeof stack_url, "%s%s%s%s", call->origin, out.canonical_uri, qm,
                         out.canonical_query);
        if (n < 0 || (size_t)n >= sizeof stack_url) {
                url = heap_url = strdup_printf("%s%s%s%s", call->origin, out.canonical_uri, qm,
                                               out.canonical_query);
                if (!url) {
                        sign_result_done(&out);
                        return -ENOMEM;
                }
        }

        http_request hr = {
                .method = call->method,
                .url = url,
                .headers = out.headers,
                .n_headers = out.n_headers,
                .timeout_usec = c->opt.timeout_usec,
                /* Every call that changes something is a PUT (SPEC 4). */
                .fresh_connection = streq(call->method, "PUT"),
                /* an STS token in the headers; the static secret never leaves */
                .wipe = cr->security_token != NULL,
        };
        r = http_submit(c->http, &hr, on_http_done, call, &call->http);
        sign_result_done(&out); /* http copied the headers */
        if (r < 0) {
                call->http = NULL;
                return r;
        }

        budget_record(&c->budget, (budget_class)call->prio, now);
        c->calls_sent++;
        call->sent_at = now;
        metrics_counter_inc(c->calls_total, call->action);
        metrics_histogram_observe(c->queue_wait, (double)(now - call->queued_at) / USEC_PER_SEC,
                                  budget_class_name((budget_class)call->prio));
        list_append(&c->in_flight, call);
        c->n_in_flight++;
        return 0;
}

/* Runs a user callback with the client marked busy. Returns true when the
 * callback freed the client. */
static bool deliver(api_client *c, api_call *call, const api_result *res) {
        call->completing = true;
        c->busy++;
        call->done(res, call->userdata);
        c->busy--;
        call_free(call);
        return finish_pending_free(c);
}

static bool fail_unsent(api_client *c, api_call *call, int error) {
        api_result res = {
                .outcome = API_TRANSIENT,
                .maybe_delivered = false,
        };
        snprintf(res.message, sizeof res.message, "could not send request: %s",
                 strerror(error > 0 ? error : -error));
        return deliver(c, call, &res);
}

static int on_rate_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int arm_rate_timer(api_client *c, uint64_t when) {
        int r;
        if (c->rate_timer) {
                r = sd_event_source_set_time(c->rate_timer, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->rate_timer, SD_EVENT_ONESHOT);
                return r;
        }
        /* accuracy 1us: the default 250ms slack would waste budget */
        r = sd_event_add_time(c->event, &c->rate_timer, CLOCK_MONOTONIC, when, 1, on_rate_timer, c);
        if (r >= 0)
                (void)sd_event_source_set_description(c->rate_timer, "api-rate-limit");
        return r;
}

static void count_waits(api_client *c) {
        if (c->n_unwaited == 0)
                return;
        for (size_t p = 0; p < _API_PRIO_MAX; p++)
                for (api_call *call = c->queue[p].head; call; call = call->next)
                        if (!call->waited) {
                                call->waited = true;
                                c->rate_limit_waits++;
                        }
        c->n_unwaited = 0;
}

/* The end of a throttled episode is said when the budget has earned its
 * pace back, whenever we next look. */
static void note_recovery(api_client *c, uint64_t now) {
        if (c->throttle_said && !budget_is_throttled(&c->budget, now)) {
                c->throttle_said = false;
                log_event_send(EV_API_THROTTLED, LOG_NOTICE, NULL,
                               "API budget back at %.0f calls/min (rate_limit) after throttling",
                               budget_calls_per_minute(&c->budget, now));
        }
}

/* Sends queued calls in the order and at the times the budget says, while
 * the credentials allow. Returns true when a callback freed the client. */
static bool dispatch(api_client *c) {
        for (;;) {
                uint64_t now = now_monotonic_usec();
                note_recovery(c, now);
                budget_queue q;
                budget_queue_of(c, &q);
                budget_decision d;
                if (!budget_pick(&c->budget, &q, now, &d)) {
                        if (c->rate_timer)
                                (void)sd_event_source_set_enabled(c->rate_timer, SD_EVENT_OFF);
                        return false;
                }
                /* No credentials yet (RAM role still fetching): wait for on_change. */
                const credentials *cr = cred_provider_get(c->creds);
                if (!cr)
                        return false;

                api_call *call = c->queue[d.cls].head;
                /* on_http_done dispatches again when a slot frees up */
                if (call->prio != API_PRIO_ACTION && c->n_in_flight >= API_MAX_IN_FLIGHT)
                        return false;

                uint64_t when = d.when > call->not_before ? d.when : call->not_before;
                if (when > now) {
                        count_waits(c);
                        if (arm_rate_timer(c, when) < 0)
                                /* cannot wait on the loop: retry on the next event */
                                schedule_dispatch(c);
                        return false;
                }

                queue_remove(c, call);
                api_priority prio = call->prio;
                int r = send_call(c, call, cr, now);
                if (r < 0 && fail_unsent(c, call, r))
                        return true;
                if (c->on_sent[prio]) {
                        c->busy++;
                        c->on_sent[prio](c->on_sent_userdata[prio]);
                        c->busy--;
                        if (finish_pending_free(c))
                                return true;
                }
        }
}

static int on_dispatch(sd_event_source *s, void *userdata) {
        api_client *c = userdata;
        http_client *h = c->http; /* outlives c */
        /* What just went to http leaves in this iteration, not the next. */
        if (!dispatch(c))
                http_client_flush(h);
        return 0;
}

static int on_rate_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)dispatch(userdata);
        return 0;
}

static void on_creds_changed(void *userdata) {
        schedule_dispatch(userdata);
}

static void list_prepend(call_list *l, api_call *call) {
        call->prev = NULL;
        call->next = l->head;
        if (l->head)
                l->head->prev = call;
        else
                l->tail = call;
        l->head = call;
}

/* Throttling is about the account, not the app or the call: the whole
 * client slows down, and the call goes back to the head of its class to be
 * resent at the slower pace (the server did not act on it). Warned once per
 * episode. */
static void requeue_throttled(api_client *c, api_call *call, const api_result *res) {
        uint64_t now = now_monotonic_usec();
        c->throttled_answers++;
        if (budget_on_throttled(&c->budget, call->sent_at, now) && !c->throttle_said) {
                c->throttle_said = true;
                log_event_send(EV_API_THROTTLED, LOG_WARNING, &(log_fields){ .result = res->code },
                               "API throttled (HTTP %ld %s): the account's limit is shared and spent; slowing every call down to %.0f calls/min, recovering step by step",
                               res->http_status, res->code[0] ? res->code : "-",
                               budget_calls_per_minute(&c->budget, now));
        }
        call->throttled++;
        /* Actions take no pacer, but the account just said it is full: the
         * resend waits one step of the slowed pace, whatever its class. */
        double cpm = budget_calls_per_minute(&c->budget, now);
        call->not_before = now + (cpm > 0 ? (uint64_t)((double)USEC_PER_MIN / cpm) : USEC_PER_SEC);
        list_prepend(&c->queue[call->prio], call);
        c->n_queued++;
        c->waiting.waiting[call->prio]++;
        call->waited = true;
        schedule_dispatch(c);
}

static void on_http_done(const http_response *resp, void *userdata) {
        api_call *call = userdata;
        api_client *c = call->client;
        api_result res;
        cJSON *json = NULL;

        call->http = NULL;
        list_remove(&c->in_flight, call);
        c->n_in_flight--;

        if (resp->transport_error || resp->status == 0) {
                const char *e = resp->error ? resp->error : "no response";
                api_classify(0, e, strlen(e), &res, NULL);
        } else
                api_classify(resp->status, resp->body, resp->body_len, &res, &json);
        res.maybe_delivered = resp->maybe_delivered;
        res.json = json;

        if (res.outcome == API_THROTTLED && call->throttled < API_MAX_THROTTLED_RESENDS) {
                cJSON_Delete(json);
                requeue_throttled(c, call, &res);
                return;
        }

        bool gone = deliver(c, call, &res);
        cJSON_Delete(json);
        /* A slot is free and the callback may have queued the next call
         * (the change order after the status): send it from here, inside
         * http's wakeup, which starts it before going back to the loop. */
        if (!gone)
                (void)dispatch(c);
}

/* ---- public ---- */

static int normalize_options(const api_client_options *opt, api_client_options *ret) {
        *ret = opt ? *opt : (api_client_options){ .rate_limit = 30 };
        if (ret->rate_window_usec == 0)
                ret->rate_window_usec = API_DEFAULT_WINDOW_USEC;
        if (ret->rate_window_usec > UINT64_MAX - BUDGET_DEFAULT_MARGIN_USEC)
                return -ERANGE;
        return 0;
}

static budget_options budget_options_for(const api_client_options *opt) {
        return budget_options_default(opt->rate_limit, opt->rate_window_usec);
}

int api_client_new(sd_event *e, http_client *h, cred_provider *creds,
                   const api_client_options *opt, api_client **ret) {
        int r;
        if (!e || !h || !creds || !ret)
                return -EINVAL;

        api_client *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->http = h;
        r = normalize_options(opt, &c->opt);
        if (r >= 0) {
                budget_options bo = budget_options_for(&c->opt);
                r = budget_init(&c->budget, &bo);
        }
        if (r >= 0 && c->opt.metrics)
                r = api_metrics_register(c, c->opt.metrics);
        if (r >= 0)
                r = sd_event_add_defer(e, &c->dispatch_source, on_dispatch, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->dispatch_source, SD_EVENT_OFF);
        if (r < 0) {
                client_destroy(c);
                return r;
        }
        (void)sd_event_source_set_description(c->dispatch_source, "api-dispatch");
        c->creds = creds;
        cred_provider_on_change(creds, on_creds_changed, c);
        *ret = c;
        return 0;
}

int api_client_reconfigure(api_client *c, const api_client_options *opt) {
        api_client_options o;
        int r;

        r = normalize_options(opt, &o);
        if (r < 0)
                return r;
        /* the calls the server still counts carry over: a reload must not
         * reset the window */
        budget_options bo = budget_options_for(&o);
        r = budget_reconfigure(&c->budget, &bo);
        if (r < 0)
                return r;
        o.metrics = c->opt.metrics;
        c->opt = o;
        schedule_dispatch(c);
        return 0;
}

int api_submit(api_client *c, const char *base_url, const api_request *req, api_priority prio,
               api_done_fn done, void *userdata, api_call **ret_call) {
        if (!c || !base_url || !req || !done || !req->method || !req->path || !req->action ||
            !req->version || req->path[0] != '/' || req->n_query > API_MAX_QUERY ||
            (unsigned)prio >= _API_PRIO_MAX)
                return -EINVAL;
        if (c->free_pending)
                return -ESHUTDOWN;

        api_call *call = NULL;
        int r = api_call_new(base_url, req, &call);
        if (r < 0)
                return r;
        call->client = c;
        call->prio = prio;
        call->done = done;
        call->userdata = userdata;

        call->queued_at = now_monotonic_usec();
        list_append(&c->queue[prio], call);
        c->n_queued++;
        c->waiting.waiting[prio]++;
        c->n_unwaited++;
        /* Deferred, so that everything submitted in one loop iteration is
         * ordered by priority before anything leaves. */
        schedule_dispatch(c);

        if (ret_call)
                *ret_call = call;
        return 0;
}

void api_call_cancel(api_call *call) {
        if (!call || call->completing)
                return;
        call_drop(call->client, call);
}

void api_call_set_destroy(api_call *call, void (*destroy)(void *userdata)) {
        call->destroy = destroy;
}

void api_client_budget(api_client *c, const budget_demand *d, api_budget_view *out) {
        uint64_t now = now_monotonic_usec();
        note_recovery(c, now);
        *out = (api_budget_view){
                .calls_per_minute = budget_calls_per_minute(&c->budget, now),
                .throttled = budget_is_throttled(&c->budget, now),
        };
        budget_plan_now(&c->budget, d, now, &out->plan);
}

size_t api_client_waiting(const api_client *c, api_priority prio) {
        return (unsigned)prio < _API_PRIO_MAX ? c->waiting.waiting[prio] : 0;
}

void api_client_on_sent(api_client *c, api_priority prio, void (*fn)(void *userdata), void *userdata) {
        if ((unsigned)prio >= _API_PRIO_MAX)
                return;
        c->on_sent[prio] = fn;
        c->on_sent_userdata[prio] = userdata;
}
