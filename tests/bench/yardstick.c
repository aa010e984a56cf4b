/* SPDX-License-Identifier: MIT */
/* The yardstick for `./tools/dev bench`: a tuned plain-libcurl client doing
 * rollguard's polling, to tell libcurl's floor from rollguard's own cost.
 * For each app, every INTERVAL (+-10 % jitter): a V3-signed
 * DescribeApplicationStatus, and when a release is in flight a V3-signed
 * DescribeChangeOrder; answers parsed with cJSON, the stuck condition
 * checked. The same signing code (src/cloud/sign.c), at most 64 requests on
 * the wire (rollguard's cap), a connection cache that covers them, easy
 * handles, header nodes and buffers reused, one curl_multi_poll() loop.
 *
 *   yardstick --url http://127.0.0.1:PORT --apps FILE [--interval 1] [--seconds 30]
 *
 * Prints {"requests", "errors", "new_connections", "seconds"} as JSON at
 * the end; the benchmark reads its CPU and memory from /proc like
 * rollguard's. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sign.h"

#define MAX_IN_FLIGHT 64
#define VERSION "2019-05-06"

typedef struct app {
        char id[64];
        char co[96];
        uint64_t due;
        bool busy;
} app;

typedef struct slot {
        CURL *easy;
        app *app;
        bool change_order; /* else the status */
        sign_result sig;
        struct curl_slist nodes[SIGN_MAX_HEADERS + 1];
        char *body;
        size_t len, cap;
        struct slot *next_free;
} slot;

static const char *base_url, *host;
static const char *key_id = "testid", *secret = "testsecret";
static uint64_t requests, errors, new_connections;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
        slot *s = ud;
        size_t k = sz * n;
        if (s->len + k + 1 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 4096;
                while (cap < s->len + k + 1)
                        cap *= 2;
                char *b = realloc(s->body, cap);
                if (!b)
                        return 0;
                s->body = b;
                s->cap = cap;
        }
        memcpy(s->body + s->len, p, k);
        s->len += k;
        s->body[s->len] = 0;
        return k;
}

/* min-heap of apps by due time */
static app **heap;
static size_t n_heap;

static void heap_push(app *a) {
        size_t i = n_heap++;
        heap[i] = a;
        while (i > 0 && heap[(i - 1) / 2]->due > heap[i]->due) {
                app *t = heap[i];
                heap[i] = heap[(i - 1) / 2];
                heap[(i - 1) / 2] = t;
                i = (i - 1) / 2;
        }
}

static app *heap_pop(void) {
        app *top = heap[0];
        heap[0] = heap[--n_heap];
        for (size_t i = 0;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < n_heap && heap[l]->due < heap[m]->due)
                        m = l;
                if (r < n_heap && heap[r]->due < heap[m]->due)
                        m = r;
                if (m == i)
                        break;
                app *t = heap[i];
                heap[i] = heap[m];
                heap[m] = t;
                i = m;
        }
        return top;
}

static slot *free_slots;
static size_t in_flight;
static CURLM *multi;

static int start(slot *s, app *a, bool change_order) {
        char date[21], nonce[33];
        acs_format_date((long long)time(NULL), date);
        if (acs_make_nonce(nonce) < 0)
                return -EIO;
        query_param q = change_order ? (query_param){ "ChangeOrderId", a->co } : (query_param){ "AppId", a->id };
        sign_input in = {
                .method = "GET",
                .host = host,
                .path = change_order ? "/pop/v1/sam/changeorder/DescribeChangeOrder"
                                     : "/pop/v1/sam/app/describeApplicationStatus",
                .query = &q,
                .n_query = 1,
                .action = change_order ? "DescribeChangeOrder" : "DescribeApplicationStatus",
                .version = VERSION,
                .date = date,
                .nonce = nonce,
        };
        int r = sign_request_into(&in, key_id, secret, &s->sig);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->sig.n_headers; i++) {
                s->nodes[i].data = (char *)s->sig.headers[i];
                s->nodes[i].next = &s->nodes[i + 1];
        }
        s->nodes[s->sig.n_headers].data = (char *)"Expect:";
        s->nodes[s->sig.n_headers].next = NULL;
        char url[512];
        snprintf(url, sizeof url, "%s%s?%s", base_url, s->sig.canonical_uri, s->sig.canonical_query);
        s->app = a;
        s->change_order = change_order;
        s->len = 0;
        curl_easy_setopt(s->easy, CURLOPT_URL, url);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->nodes);
        a->busy = true;
        in_flight++;
        return curl_multi_add_handle(multi, s->easy) == CURLM_OK ? 0 : -EIO;
}

static void schedule(app *a, uint64_t interval) {
        double j = 0.9 + 0.2 * ((double)rand() / RAND_MAX);
        a->due = now_usec() + (uint64_t)((double)interval * j);
        a->busy = false;
        heap_push(a);
}

static bool truthy(const cJSON *v) {
        return cJSON_IsTrue(v) || (cJSON_IsString(v) && !strcmp(v->valuestring, "true"));
}

/* Returns true when the next request of the app (its change order) started. */
static bool finish(slot *s, CURLcode code, uint64_t interval) {
        long status = 0, conns = 0;
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &conns);
        new_connections += (uint64_t)conns;
        curl_multi_remove_handle(multi, s->easy);
        sign_result_done(&s->sig);
        in_flight--;
        app *a = s->app;
        if (code != CURLE_OK || status != 200) {
                errors++;
                return false;
        }
        requests++;
        cJSON *doc = cJSON_ParseWithLength(s->body, s->len);
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "Data");
        bool next = false;
        if (!s->change_order) {
                const cJSON *running = cJSON_GetObjectItemCaseSensitive(data, "LastChangeOrderRunning");
                const cJSON *co = cJSON_GetObjectItemCaseSensitive(data, "LastChangeOrderId");
                if (truthy(running) && cJSON_IsString(co) && strlen(co->valuestring) < sizeof a->co) {
                        strcpy(a->co, co->valuestring);
                        next = true;
                }
        } else {
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(data, "Status");
                const cJSON *sub = cJSON_GetObjectItemCaseSensitive(data, "SubStatus");
                if (cJSON_IsNumber(st) && st->valueint == 1 && cJSON_IsNumber(sub) && sub->valueint == 1)
                        fprintf(stderr, "stuck: %s\n", a->co);
        }
        cJSON_Delete(doc);
        (void)interval;
        return next && start(s, a, true) == 0;
}

int main(int argc, char **argv) {
        const char *apps_file = NULL;
        double interval_s = 1, seconds = 30;
        for (int i = 1; i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--url"))
                        base_url = argv[i + 1];
                else if (!strcmp(argv[i], "--apps"))
                        apps_file = argv[i + 1];
                else if (!strcmp(argv[i], "--interval"))
                        interval_s = atof(argv[i + 1]);
                else if (!strcmp(argv[i], "--seconds"))
                        seconds = atof(argv[i + 1]);
        }
        if (!base_url || !apps_file || !strstr(base_url, "://")) {
                fprintf(stderr, "usage: yardstick --url URL --apps FILE [--interval S] [--seconds S]\n");
                return 2;
        }
        if (getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"))
                key_id = getenv("ALIBABA_CLOUD_ACCESS_KEY_ID");
        if (getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
                secret = getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
        host = strstr(base_url, "://") + 3;

        FILE *f = fopen(apps_file, "re");
        if (!f)
                return 1;
        size_t n_apps = 0, cap = 0;
        app *apps = NULL;
        char line[128];
        while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\r\n")] = 0;
                if (!*line || strlen(line) >= sizeof apps->id)
                        continue;
                if (n_apps == cap) {
                        cap = cap ? cap * 2 : 1024;
                        apps = realloc(apps, cap * sizeof *apps);
                        if (!apps)
                                return 1;
                }
                memset(&apps[n_apps], 0, sizeof *apps);
                strcpy(apps[n_apps++].id, line);
        }
        fclose(f);
        heap = calloc(n_apps + 1, sizeof *heap);
        if (!heap || n_apps == 0)
                return 1;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        multi = curl_multi_init();
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)MAX_IN_FLIGHT + 8);
        static slot slots[MAX_IN_FLIGHT];
        for (size_t i = 0; i < MAX_IN_FLIGHT; i++) {
                slot *s = &slots[i];
                s->easy = curl_easy_init();
                curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (void *)s);
                curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_data);
                curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, (void *)s);
                curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 10000L);
                curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
                curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "yardstick");
                curl_easy_setopt(s->easy, CURLOPT_BUFFERSIZE, 4096L); /* as rollguard */
                s->next_free = free_slots;
                free_slots = s;
        }

        uint64_t interval = (uint64_t)(interval_s * 1e6);
        uint64_t t0 = now_usec(), end = t0 + (uint64_t)(seconds * 1e6);
        for (size_t i = 0; i < n_apps; i++) {
                apps[i].due = t0 + interval * i / n_apps;
                heap_push(&apps[i]);
        }
        for (;;) {
                uint64_t now = now_usec();
                if (now >= end)
                        break;
                while (n_heap > 0 && heap[0]->due <= now && free_slots) {
                        slot *s = free_slots;
                        free_slots = s->next_free;
                        app *a = heap_pop();
                        if (start(s, a, false) < 0) {
                                errors++;
                                s->next_free = free_slots;
                                free_slots = s;
                                schedule(a, interval);
                        }
                }
                int running = 0;
                curl_multi_perform(multi, &running);
                CURLMsg *m;
                int left;
                while ((m = curl_multi_info_read(multi, &left))) {
                        if (m->msg != CURLMSG_DONE)
                                continue;
                        slot *s = NULL;
                        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
                        CURLcode code = m->data.result;
                        if (!finish(s, code, interval)) {
                                schedule(s->app, interval);
                                s->next_free = free_slots;
                                free_slots = s;
                        }
                }
                now = now_usec();
                long wait_ms = 1000;
                if (n_heap > 0 && free_slots)
                        wait_ms = heap[0]->due > now ? (long)((heap[0]->due - now + 999) / 1000) : 0;
                if (wait_ms > 0)
                        curl_multi_poll(multi, NULL, 0, (int)wait_ms, NULL);
        }
        printf("{\"requests\": %llu, \"errors\": %llu, \"new_connections\": %llu, \"seconds\": %.3f}\n",
               (unsigned long long)requests, (unsigned long long)errors,
               (unsigned long long)new_connections, (double)(now_usec() - t0) / 1e6);
        fflush(stdout);
        for (size_t i = 0; i < MAX_IN_FLIGHT; i++) {
                curl_multi_remove_handle(multi, slots[i].easy);
                curl_easy_cleanup(slots[i].easy);
                free(slots[i].body);
        }
        curl_multi_cleanup(multi);
        curl_global_cleanup();
        free(heap);
        free(apps);
        return 0;
}
