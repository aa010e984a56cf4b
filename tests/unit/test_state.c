/* SPDX-License-Identifier: MIT */
/* state.c (the durable per-app record) and log.c (records on stderr and the
 * journal, the MESSAGE_ID catalog). */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "state.h"
#include "state_file.h"
#include "state_json.h"
#include "util.h"

/* ---- helpers ----------------------------------------------------------------- */

static char *make_tmpdir(void) {
        char tmpl[] = "/tmp/rollguard-test-state-XXXXXX";
        char *d = mkdtemp(tmpl);
        assert_non_null(d);
        char *r = strdup(d);
        assert_non_null(r);
        return r;
}

static void remove_tree(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                _cleanup_free_ char *p = strdup_printf("%s/%s", dir, e->d_name);
                assert_non_null(p);
                struct stat st;
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
                        chmod(p, 0700);
                        remove_tree(p);
                } else
                        unlink(p);
        }
        closedir(d);
        rmdir(dir);
}

/* Sorted names in dir, joined with '|': "a.json|b.json". */
static char *list_dir(const char *dir) {
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, alphasort);
        assert_true(n >= 0);
        char *out = strdup("");
        assert_non_null(out);
        for (int i = 0; i < n; i++) {
                if (!streq(names[i]->d_name, ".") && !streq(names[i]->d_name, "..")) {
                        char *j = strdup_printf("%s%s%s", out, *out ? "|" : "", names[i]->d_name);
                        assert_non_null(j);
                        free(out);
                        out = j;
                }
                free(names[i]);
        }
        free(names);
        return out;
}

static void write_file(const char *path, const char *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        close(fd);
}

static char *read_file(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap + 1);
        assert_non_null(buf);
        for (;;) {
                if (len == cap) {
                        cap *= 2;
                        buf = realloc(buf, cap + 1);
                        assert_non_null(buf);
                }
                ssize_t k = read(fd, buf + len, cap - len);
                assert_true(k >= 0);
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        close(fd);
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        return buf;
}

static void add_act(app_state *s, const char *co, const char *rule_name, int64_t intent_ms,
                    act_result result) {
        act_record a = {
                .change_order_id = (char *) co,
                .rule = (char *) rule_name,
                .action = ACTION_ROLLBACK,
                .intent_ms = intent_ms,
                .result = result,
        };
        assert_int_equal(state_add_act(s, &a), 0);
}

/* A record with every field set, some optional ones deliberately NULL. */
static void make_full_state(app_state *s, const char *app) {
        *s = (app_state) {};
        s->app = strdup(app);
        assert_non_null(s->app);
        s->cooldown_until_ms = 1763895000123;
        s->last_change_order_id = strdup("765fa5c6-0d4c-4cb1-a1a5-0e5b3c1f7b2e");
        assert_non_null(s->last_change_order_id);

        act_record done = {
                .change_order_id = (char *) "co-1",
                .rule = (char *) "stalled",
                .action = ACTION_ROLLBACK,
                .intent_ms = 1763890000000,
                .result = ACT_DONE,
                .detail = (char *) "ok \"quoted\" \\ and\nnewline, é",
                .rollback_order_id = (char *) "rb-1",
                .finished_ms = 1763890001500,
        };
        assert_int_equal(state_add_act(s, &done), 0);
        act_record abort_failed = {
                .change_order_id = (char *) "co-2",
                .rule = (char *) "batch-error",
                .action = ACTION_ABORT,
                .intent_ms = 1763891000000,
                .result = ACT_FAILED,
                .detail = (char *) "InvalidApplication.NotFound",
                .finished_ms = 1763891000200,
        };
        assert_int_equal(state_add_act(s, &abort_failed), 0);
        add_act(s, "co-3", "failed-batch", 1763892000000, ACT_INTENT);

        assert_int_equal(state_set_pending(s, "co-4", "stalled", 1763893000000), 1);
        assert_int_equal(state_set_pending(s, "co-4", "batch-error", 1763893000500), 1);
}

static void assert_acts_equal(const act_record *a, const act_record *b) {
        assert_string_equal(a->change_order_id, b->change_order_id);
        assert_string_equal(a->rule, b->rule);
        assert_int_equal(a->action, b->action);
        assert_int_equal(a->intent_ms, b->intent_ms);
        assert_int_equal(a->result, b->result);
        assert_true(streq_null(a->detail, b->detail));
        assert_true(streq_null(a->rollback_order_id, b->rollback_order_id));
        assert_int_equal(a->finished_ms, b->finished_ms);
}

static void assert_states_equal(const app_state *a, const app_state *b) {
        assert_string_equal(a->app, b->app);
        assert_int_equal(a->cooldown_until_ms, b->cooldown_until_ms);
        assert_true(streq_null(a->last_change_order_id, b->last_change_order_id));
        assert_int_equal(a->n_acts, b->n_acts);
        for (size_t i = 0; i < a->n_acts; i++)
                assert_acts_equal(&a->acts[i], &b->acts[i]);
        assert_int_equal(a->n_pending, b->n_pending);
        for (size_t i = 0; i < a->n_pending; i++) {
                assert_string_equal(a->pending[i].change_order_id, b->pending[i].change_order_id);
                assert_string_equal(a->pending[i].rule, b->pending[i].rule);
                assert_int_equal(a->pending[i].since_ms, b->pending[i].since_ms);
        }
}

static void assert_empty_state_of(const app_state *s, const char *app) {
        assert_string_equal(s->app, app);
        assert_int_equal(s->n_acts, 0);
        assert_int_equal(s->n_pending, 0);
        assert_int_equal(s->cooldown_until_ms, 0);
        assert_null(s->last_change_order_id);
}

/* ---- state: names and paths ----------------------------------------------------------- */

static void test_act_result_names(void **unused) {
        static const struct {
                act_result r;
                const char *name;
        } table[] = {
                { ACT_INTENT, "intent" },
                { ACT_DONE, "done" },
                { ACT_ENDED_BY_ITSELF, "ended_by_itself" },
                { ACT_FAILED, "failed" },
                { ACT_UNCONFIRMED, "unconfirmed" },
        };
        assert_int_equal(ELEMENTSOF(table), _ACT_RESULT_MAX);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                assert_string_equal(act_result_name(table[i].r), table[i].name);
                assert_int_equal(act_result_from_string(table[i].name), table[i].r);
        }
        assert_null(act_result_name(_ACT_RESULT_MAX));
        assert_int_equal(act_result_from_string("Done"), -EINVAL);
        assert_int_equal(act_result_from_string(""), -EINVAL);
        assert_int_equal(act_result_from_string(NULL), -EINVAL);
}

static void test_state_path_escaping(void **unused) {
        static const struct {
                const char *app;
                const char *path;
        } table[] = {
                { "shop-api", "/s/shop-api.json" },
                { "a/b", "/s/a%2Fb.json" },
                { "..", "/s/%2E..json" },
                { ".", "/s/%2E.json" },
                { ".hidden", "/s/%2Ehidden.json" },
                { "é", "/s/%C3%A9.json" },
                { "v1.2_final", "/s/v1.2_final.json" },
                { "a%2Fb", "/s/a%252Fb.json" }, /* '%' escaped: no two apps share a file */
                { "a b\n", "/s/a%20b%0A.json" },
                { "../../etc/passwd", "/s/%2E.%2F..%2Fetc%2Fpasswd.json" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *p = state_path("/s", table[i].app);
                if (!p || !streq(p, table[i].path))
                        fail_msg("row %zu (%s): got %s, want %s", i, table[i].app, strna(p),
                                 table[i].path);
        }
        assert_null(state_path("/s", ""));
        assert_null(state_path("/s", NULL));
}

/* ---- state: JSON ----------------------------------------------------------------- */

static void test_json_round_trip_every_field(void **unused) {
        app_state s;
        make_full_state(&s, "shop-api");

        _cleanup_free_ char *text = state_to_json(&s);
        assert_non_null(text);
        assert_non_null(strstr(text, "\"version\":\t1"));
        assert_non_null(strstr(text, "\"result\":\t\"intent\""));
        assert_non_null(strstr(text, "\"action\":\t\"abort\""));
        assert_int_equal(text[strlen(text) - 1], '\n');

        app_state back;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(state_from_json(text, &back, &err), 0);
        assert_null(err);
        assert_states_equal(&s, &back);

        /* writing what was read gives the same bytes */
        _cleanup_free_ char *again = state_to_json(&back);
        assert_non_null(again);
        assert_string_equal(text, again);

        app_state_done(&back);
        app_state_done(&s);
        assert_null(s.app);
        assert_int_equal(s.n_acts, 0);
}

static void test_json_minimal_and_tolerated(void **unused) {
        static const char *const ok[] = {
                "{\"version\":1,\"app\":\"a\"}",
                "  {\"version\":1,\"app\":\"a\",\"acts\":[],\"pending\":[]}\n\n",
                "{\"version\":1,\"app\":\"a\",\"last_change_order_id\":null,\"future\":{\"x\":[1]}}",
                ("{\"version\":1.0,\"app\":\"a\",\"acts\":[{\"change_order_id\":\"c\",\"rule\":\"r\","
                 "\"action\":\"log\",\"intent_ms\":5,\"result\":\"done\",\"detail\":null}]}"),
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                app_state s;
                _cleanup_free_ char *err = NULL;
                int r = state_from_json(ok[i], &s, &err);
                if (r != 0)
                        fail_msg("row %zu: %d %s", i, r, strna(err));
                assert_string_equal(s.app, "a");
                app_state_done(&s);
        }
}

static void test_json_rejects(void **unused) {
        static const struct {
                const char *json;
                const char *error; /* substring of the reason */
        } table[] = {
                { "", "unexpected end of file at byte 0" },
                { "garbage", "invalid JSON at byte 0" },
                { "{\"version\":1,\"app\":\"a\"", "unexpected end of file at byte 22" },
                { "{\"version\":1,\"app\":\"a\"} x", "invalid JSON at byte 24" },
                { "[]", "top level is not an object" },
                { "null", "top level is not an object" },
                { "{\"app\":\"a\"}", "\"version\" is missing" },
                { "{\"version\":\"1\",\"app\":\"a\"}", "\"version\" is not a number" },
                { "{\"version\":2,\"app\":\"a\"}", "unsupported version 2" },
                { "{\"version\":1}", "\"app\" is missing" },
                { "{\"version\":1,\"app\":7}", "\"app\" is not a string" },
                { "{\"version\":1,\"app\":\"\"}", "\"app\" is empty" },
                { "{\"version\":1,\"app\":\"a\",\"cooldown_until_ms\":\"5\"}", "\"cooldown_until_ms\" is not a number" },
                { "{\"version\":1,\"app\":\"a\",\"cooldown_until_ms\":-1}", "not a timestamp" },
                { "{\"version\":1,\"app\":\"a\",\"cooldown_until_ms\":1.5}", "not a timestamp" },
                { "{\"version\":1,\"app\":\"a\",\"cooldown_until_ms\":1e300}", "not a timestamp" },
                { "{\"version\":1,\"app\":\"a\",\"cooldown_until_ms\":9007199254740993e3}", "not a timestamp" },
                { "{\"version\":1,\"app\":\"a\",\"last_change_order_id\":[]}", "not a string" },
                { "{\"version\":1,\"app\":\"a\",\"acts\":{}}", "\"acts\" is not an array" },
                { "{\"version\":1,\"app\":\"a\",\"acts\":[1]}", "acts[0]: is not an object" },
                { "{\"version\":1,\"app\":\"a\",\"acts\":[{}]}", "acts[0]: \"change_order_id\" is missing" },
                { "{\"version\":1,\"app\":\"a\",\"acts\":[{\"change_order_id\":\"c\",\"rule\":\"r\","
                  "\"action\":\"rollback\",\"intent_ms\":1,\"result\":\"maybe\"}]}",
                  "acts[0]: unknown result \"maybe\"" },
                { "{\"version\":1,\"app\":\"a\",\"acts\":[{\"change_order_id\":\"c\",\"rule\":\"r\","
                  "\"action\":\"reboot\",\"intent_ms\":1,\"result\":\"done\"}]}",
                  "acts[0]: unknown action \"reboot\"" },
                { "{\"version\":1,\"app\":\"a\",\"acts\":[{\"change_order_id\":\"c\",\"rule\":\"r\","
                  "\"action\":\"rollback\",\"result\":\"done\"}]}",
                  "acts[0]: \"intent_ms\" is missing" },
                { "{\"version\":1,\"app\":\"a\",\"acts\":[{\"change_order_id\":\"c\",\"rule\":\"r\","
                  "\"action\":\"rollback\",\"intent_ms\":1,\"result\":\"done\",\"detail\":5}]}",
                  "acts[0]: \"detail\" is not a string" },
                { "{\"version\":1,\"app\":\"a\",\"pending\":\"x\"}", "\"pending\" is not an array" },
                { "{\"version\":1,\"app\":\"a\",\"pending\":[{\"change_order_id\":\"c\",\"rule\":\"r\"}]}",
                  "pending[0]: \"since_ms\" is missing" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                app_state s;
                char *err = NULL;
                int r = state_from_json(table[i].json, &s, &err);
                if (r != -EBADMSG || !err || !strstr(err, table[i].error))
                        fail_msg("row %zu (%s): r=%d error \"%s\", want \"%s\"", i, table[i].json, r,
                                 strna(err), table[i].error);
                /* nothing half-read is handed back */
                assert_null(s.app);
                assert_null(s.acts);
                assert_null(s.pending);
                free(err);
        }

        app_state s;
        assert_int_equal(state_from_json(NULL, &s, NULL), -EINVAL);
        /* ret_error is optional */
        assert_int_equal(state_from_json("x", &s, NULL), -EBADMSG);
}

static void test_json_deep_nesting_does_not_crash(void **unused) {
        size_t depth = 100000;
        char *deep = malloc(2 * depth + 1);
        assert_non_null(deep);
        memset(deep, '[', depth);
        memset(deep + depth, ']', depth);
        deep[2 * depth] = 0;
        app_state s;
        char *err = NULL;
        assert_int_equal(state_from_json(deep, &s, &err), -EBADMSG);
        free(err);
        free(deep);
}

static void test_json_long_arrays_keep_newest(void **unused) {
        _cleanup_free_ char *json = strdup("{\"version\":1,\"app\":\"a\",\"acts\":[");
        for (int i = 0; i < STATE_MAX_ACTS + 6; i++) {
                char *n = strdup_printf("%s%s{\"change_order_id\":\"co-%d\",\"rule\":\"r\",\"action\":"
                                        "\"rollback\",\"intent_ms\":%d,\"result\":\"done\"}",
                                        json, i ? "," : "", i, i);
                free(json);
                json = n;
        }
        char *n = strdup_printf("%s],\"pending\":[", json);
        free(json);
        json = n;
        for (int i = 0; i < STATE_MAX_PENDING + 3; i++) {
                n = strdup_printf("%s%s{\"change_order_id\":\"co\",\"rule\":\"r%d\",\"since_ms\":%d}", json,
                                  i ? "," : "", i, i + 1);
                free(json);
                json = n;
        }
        n = strdup_printf("%s]}", json);
        free(json);
        json = n;

        app_state s;
        assert_int_equal(state_from_json(json, &s, NULL), 0);
        assert_int_equal(s.n_acts, STATE_MAX_ACTS);
        assert_string_equal(s.acts[0].change_order_id, "co-6");
        assert_string_equal(s.acts[STATE_MAX_ACTS - 1].change_order_id, "co-69");
        assert_int_equal(s.n_pending, STATE_MAX_PENDING);
        assert_string_equal(s.pending[0].rule, "r3");
        app_state_done(&s);
}

static void test_to_json_refuses_what_load_would_reject(void **unused) {
        app_state s = {};
        assert_null(state_to_json(&s)); /* no app */
        assert_null(state_to_json(NULL));

        make_full_state(&s, "a");
        s.cooldown_until_ms = -5;
        assert_null(state_to_json(&s));
        s.cooldown_until_ms = 0;
        char *rule_name = s.acts[0].rule;
        s.acts[0].rule = NULL;
        assert_null(state_to_json(&s));
        s.acts[0].rule = rule_name;
        s.acts[0].result = _ACT_RESULT_MAX;
        assert_null(state_to_json(&s));
        s.acts[0].result = ACT_DONE;

        _cleanup_free_ char *dir = make_tmpdir();
        s.acts[1].intent_ms = INT64_C(1) << 60;
        assert_int_equal(state_save(dir, &s), -EINVAL);
        _cleanup_free_ char *files = list_dir(dir);
        assert_string_equal(files, "");
        app_state_done(&s);
        remove_tree(dir);
}

/* ---- state: files ----------------------------------------------------------------- */

static void test_save_load_round_trip(void **unused) {
        _cleanup_free_ char *top = make_tmpdir();
        _cleanup_free_ char *dir = strdup_printf("%s/state", top); /* save creates it */
        app_state s;
        make_full_state(&s, "shop/api");

        assert_int_equal(state_save(dir, &s), 0);
        struct stat st;
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);

        _cleanup_free_ char *path = state_path(dir, "shop/api");
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);

        /* replace it a few times: no temp file is ever left behind */
        for (int i = 0; i < 3; i++) {
                s.cooldown_until_ms += 1000;
                assert_int_equal(state_save(dir, &s), 0);
        }
        _cleanup_free_ char *files = list_dir(dir);
        assert_string_equal(files, "shop%2Fapi.json");

        app_state back;
        char *warning = NULL;
        assert_int_equal(state_load(dir, "shop/api", &back, &warning), 0);
        assert_null(warning);
        assert_states_equal(&s, &back);

        app_state_done(&back);
        app_state_done(&s);
        remove_tree(top);
}

static void test_load_missing_file_is_empty(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        app_state s;
        char *warning = NULL;
        assert_int_equal(state_load(dir, "new-app", &s, &warning), 0);
        assert_null(warning);
        assert_empty_state_of(&s, "new-app");
        app_state_done(&s);

        /* a state directory that does not exist yet is the same */
        _cleanup_free_ char *nodir = strdup_printf("%s/not-yet", dir);
        assert_int_equal(state_load(nodir, "new-app", &s, NULL), 0);
        assert_empty_state_of(&s, "new-app");
        app_state_done(&s);

        assert_int_equal(state_load(dir, "", &s, NULL), -EINVAL);
        remove_tree(dir);
}

/* Loads a file that must be judged unusable: it stays where it is (the
 * app is quarantined, 0.1 moved it aside and started empty, forgetting its
 * intents); returns its path. */
static char *load_expect_corrupt(const char *dir, const char *app, const char *reason) {
        char *path = state_path(dir, app);
        app_state s;
        char *warning = NULL;
        assert_int_equal(state_load(dir, app, &s, &warning), STATE_QUARANTINED);
        assert_empty_state_of(&s, app);
        app_state_done(&s);

        assert_non_null(warning);
        _cleanup_free_ char *head = strdup_printf("state file %s cannot be used (", path);
        if (strncmp(warning, head, strlen(head)) != 0 || !strstr(warning, reason) ||
            !strstr(warning, "kept as it is") || !strstr(warning, "quarantined"))
                fail_msg("warning \"%s\" does not say \"%s\"", warning, reason);
        assert_int_equal(access(path, F_OK), 0);
        free(warning);
        return path;
}

static void test_load_corrupt_files_are_moved_aside(void **unused) {
        static const struct {
                const char *content;
                size_t len; /* 0: strlen */
                const char *reason;
        } table[] = {
                { "\x7f" "ELF garbage", 0, "invalid JSON at byte 0" },
                { "", 0, "unexpected end of file at byte 0" },
                { "{\"version\":2,\"app\":\"shop-api\"}\n", 0, "unsupported version 2" },
                { "{\"version\":1,\"app\":\"other-app\"}\n", 0, "it is the record of \"other-app\"" },
                { "{\"version\":1,\"app\":\"shop-api\",\"acts\":7}", 0, "\"acts\" is not an array" },
                { "{\"version\":1,\"app\":\"shop-api\"}\0junk", 35, "NUL byte at byte 30" },
        };
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = state_path(dir, "shop-api");
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                size_t len = table[i].len ? table[i].len : strlen(table[i].content);
                write_file(path, table[i].content, len);
                _cleanup_free_ char *moved = load_expect_corrupt(dir, "shop-api", table[i].reason);
                /* the evidence is kept byte for byte */
                size_t got_len;
                _cleanup_free_ char *got = read_file(moved, &got_len);
                assert_non_null(got);
                assert_int_equal(got_len, len);
                assert_memory_equal(got, table[i].content, len);
        }
        /* nothing was moved, renamed or written beside it */
        _cleanup_free_ char *files = list_dir(dir);
        assert_string_equal(files, "shop-api.json");
        remove_tree(dir);
}

static void test_load_oversized_file_is_corrupt(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = state_path(dir, "big");
        size_t len = 4 * 1024 * 1024 + 1;
        char *big = malloc(len);
        assert_non_null(big);
        memset(big, ' ', len);
        write_file(path, big, len);
        free(big);
        _cleanup_free_ char *moved = load_expect_corrupt(dir, "big", "is larger than 4194304 bytes");
        struct stat st;
        assert_int_equal(stat(moved, &st), 0);
        assert_int_equal(st.st_size, (off_t) len);
        remove_tree(dir);
}

/* A crash can leave (in theory) any prefix of a file: each must load as the
 * original or be moved aside as corrupt, never half-read. */
static void test_load_every_truncation(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        app_state s;
        make_full_state(&s, "shop-api");
        assert_int_equal(state_save(dir, &s), 0);
        _cleanup_free_ char *path = state_path(dir, "shop-api");
        size_t full_len;
        _cleanup_free_ char *full = read_file(path, &full_len);
        assert_non_null(full);

        size_t n_identical = 0, n_corrupt = 0;
        for (size_t len = 0; len <= full_len; len++) {
                write_file(path, full, len);
                app_state back;
                char *warning = NULL;
                int r = state_load(dir, "shop-api", &back, &warning);
                assert_int_equal(r, warning ? STATE_QUARANTINED : 0);
                if (warning) {
                        assert_empty_state_of(&back, "shop-api");
                        assert_int_equal(access(path, F_OK), 0);
                        n_corrupt++;
                } else {
                        assert_states_equal(&s, &back);
                        n_identical++;
                }
                free(warning);
                app_state_done(&back);
                /* drop the moved-aside copies so the directory stays small */
                remove_tree(dir);
                assert_int_equal(mkdir(dir, 0700), 0);
        }
        /* only the full file and the one missing its final newline are whole */
        assert_int_equal(n_identical, 2);
        assert_int_equal(n_corrupt, full_len - 1);
        app_state_done(&s);
        remove_tree(dir);
}

/* SAFETY: an intent found on disk means "the call may have gone out". The
 * loader must hand it over untouched; actions_recover_state decides. */
static void test_intent_record_survives_load(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        app_state s = { .app = strdup("shop-api") };
        assert_non_null(s.app);
        add_act(&s, "co-old", "stalled", 1000, ACT_DONE);
        add_act(&s, "co-inflight", "batch-error", 2000, ACT_INTENT);
        assert_int_equal(state_save(dir, &s), 0);
        app_state_done(&s);

        app_state back;
        assert_int_equal(state_load(dir, "shop-api", &back, NULL), 0);
        act_record *a = state_find_act(&back, "co-inflight");
        assert_non_null(a);
        assert_int_equal(a->result, ACT_INTENT);
        assert_int_equal(a->intent_ms, 2000);
        assert_int_equal(a->finished_ms, 0);
        assert_int_equal(state_count_acts_since(&back, 0), 2);

        /* loading did not rewrite the file either */
        _cleanup_free_ char *path = state_path(dir, "shop-api");
        _cleanup_free_ char *text = read_file(path, NULL);
        assert_non_null(strstr(text, "\"result\":\t\"intent\""));
        app_state_done(&back);
        remove_tree(dir);
}

static void test_load_errors_are_not_corruption(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = state_path(dir, "app");
        app_state s;

        /* a directory where the file should be: this app is quarantined
         * (0.1 failed the whole start-up) */
        assert_int_equal(mkdir(path, 0700), 0);
        char *warning = NULL;
        assert_int_equal(state_load(dir, "app", &s, &warning), STATE_QUARANTINED);
        assert_non_null(strstr(warning, "is a directory, not a regular file"));
        free(warning);
        app_state_done(&s);
        rmdir(path);

        /* a FIFO: refused at once, never blocks in open(2) */
        assert_int_equal(mkfifo(path, 0600), 0);
        warning = NULL;
        assert_int_equal(state_load(dir, "app", &s, &warning), STATE_QUARANTINED);
        assert_non_null(strstr(warning, "is a FIFO"));
        free(warning);
        app_state_done(&s);
        unlink(path);

        /* a symlink, even to a good file: never followed */
        assert_int_equal(symlink("/dev/zero", path), 0);
        warning = NULL;
        assert_int_equal(state_load(dir, "app", &s, &warning), STATE_QUARANTINED);
        assert_non_null(strstr(warning, "symbolic link"));
        free(warning);
        app_state_done(&s);
        unlink(path);

        if (geteuid() != 0) {
                write_file(path, "{}", 2);
                assert_int_equal(chmod(path, 0), 0);
                warning = NULL;
                assert_int_equal(state_load(dir, "app", &s, &warning), STATE_QUARANTINED);
                assert_non_null(warning);
                free(warning);
                app_state_done(&s);
                assert_int_equal(access(path, F_OK), 0); /* not moved */
        }
        remove_tree(dir);
}

static void test_save_failure_leaves_no_temp_file(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        app_state s = { .app = strdup("app") };
        assert_non_null(s.app);
        _cleanup_free_ char *path = state_path(dir, "app");

        /* rename fails: the target is a non-empty directory */
        assert_int_equal(mkdir(path, 0700), 0);
        _cleanup_free_ char *inner = strdup_printf("%s/x", path);
        write_file(inner, "x", 1);
        int r = state_save(dir, &s);
        assert_true(r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST);
        _cleanup_free_ char *files = list_dir(dir);
        assert_string_equal(files, "app.json");

        /* the directory cannot be created */
        _cleanup_free_ char *blocked = strdup_printf("%s/file/state", dir);
        _cleanup_free_ char *blocker = strdup_printf("%s/file", dir);
        write_file(blocker, "", 0);
        assert_int_equal(state_save(blocked, &s), -ENOTDIR);

        assert_int_equal(state_save(dir, NULL), -EINVAL);
        app_state_done(&s);
        remove_tree(dir);
}

/* ---- state: the in-memory record ---------------------------------------------------- */

static void test_add_act_caps_and_find(void **unused) {
        app_state s = { .app = strdup("a") };
        for (int i = 0; i < STATE_MAX_ACTS + 6; i++) {
                char co[16];
                snprintf(co, sizeof co, "co-%d", i);
                add_act(&s, co, "r", 1000 + i, ACT_DONE);
                assert_true(s.n_acts <= STATE_MAX_ACTS);
        }
        assert_int_equal(s.n_acts, STATE_MAX_ACTS);
        assert_string_equal(s.acts[0].change_order_id, "co-6");
        assert_string_equal(s.acts[STATE_MAX_ACTS - 1].change_order_id, "co-69");
        assert_null(state_find_act(&s, "co-5"));
        assert_non_null(state_find_act(&s, "co-6"));

        /* the newest record of an order is the one found */
        add_act(&s, "co-69", "r2", 5000, ACT_UNCONFIRMED);
        act_record *a = state_find_act(&s, "co-69");
        assert_string_equal(a->rule, "r2");
        assert_null(state_find_act(&s, NULL));

        /* the record is copied, not borrowed */
        char co[] = "co-copy";
        add_act(&s, co, "r", 1, ACT_DONE);
        co[0] = 'X';
        assert_non_null(state_find_act(&s, "co-copy"));

        act_record bad = { .rule = (char *) "r" };
        assert_int_equal(state_add_act(&s, &bad), -EINVAL);
        bad = (act_record) { .change_order_id = (char *) "c", .rule = (char *) "r", .intent_ms = -1 };
        assert_int_equal(state_add_act(&s, &bad), -EINVAL);
        app_state_done(&s);
}

static void test_count_acts_since(void **unused) {
        app_state s = { .app = strdup("a") };
        add_act(&s, "c1", "r", 100, ACT_DONE);
        add_act(&s, "c2", "r", 200, ACT_FAILED);
        add_act(&s, "c3", "r", 300, ACT_INTENT);
        add_act(&s, "c4", "r", 400, ACT_ENDED_BY_ITSELF);
        add_act(&s, "c5", "r", 500, ACT_UNCONFIRMED);
        static const struct {
                int64_t since;
                size_t n;
        } table[] = {
                { 0, 5 }, { 100, 5 }, { 101, 4 }, { 300, 3 }, { 500, 1 }, { 501, 0 }, { INT64_MIN, 5 },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (state_count_acts_since(&s, table[i].since) != table[i].n)
                        fail_msg("row %zu: since %" PRId64 " counted %zu, want %zu", i, table[i].since,
                                 state_count_acts_since(&s, table[i].since), table[i].n);
        app_state empty = {};
        assert_int_equal(state_count_acts_since(&empty, 0), 0);
        app_state_done(&s);
}

static void test_pending_set_clear_prune(void **unused) {
        app_state s = { .app = strdup("a") };

        assert_int_equal(state_pending_since(&s, "co", "r"), 0);
        assert_int_equal(state_set_pending(&s, "co", "r", 100), 1);
        assert_int_equal(state_set_pending(&s, "co", "r", 100), 0); /* unchanged */
        assert_int_equal(state_pending_since(&s, "co", "r"), 100);
        assert_int_equal(state_set_pending(&s, "co", "r", 150), 1);
        assert_int_equal(state_pending_since(&s, "co", "r"), 150);
        assert_int_equal(state_pending_since(&s, "co", "other"), 0);
        assert_int_equal(state_set_pending(&s, "co", "other", 200), 1);
        assert_int_equal(state_set_pending(&s, "co2", "r", 300), 1);
        assert_int_equal(s.n_pending, 3);

        assert_int_equal(state_set_pending(&s, "co", "other", 0), 1); /* cleared */
        assert_int_equal(state_set_pending(&s, "co", "other", 0), 0); /* nothing to clear */
        assert_int_equal(state_pending_since(&s, "co", "other"), 0);
        assert_int_equal(s.n_pending, 2);

        assert_int_equal(state_prune_pending(&s, "co2"), 1);
        assert_int_equal(s.n_pending, 1);
        assert_int_equal(state_pending_since(&s, "co2", "r"), 300);
        assert_int_equal(state_prune_pending(&s, "co2"), 0);
        assert_int_equal(state_prune_pending(&s, NULL), 1);
        assert_int_equal(s.n_pending, 0);
        assert_int_equal(state_prune_pending(&s, NULL), 0);

        /* capped: the oldest match gives way */
        for (int i = 0; i < STATE_MAX_PENDING + 1; i++) {
                char rule_name[16];
                snprintf(rule_name, sizeof rule_name, "r%d", i);
                assert_int_equal(state_set_pending(&s, "co", rule_name, 1000 + i), 1);
        }
        assert_int_equal(s.n_pending, STATE_MAX_PENDING);
        assert_int_equal(state_pending_since(&s, "co", "r0"), 0);
        assert_int_equal(state_pending_since(&s, "co", "r1"), 1001);

        assert_int_equal(state_set_pending(&s, "co", "r", -1), -EINVAL);
        assert_int_equal(state_set_pending(&s, NULL, "r", 1), -EINVAL);
        app_state_done(&s);
}

/* ---- log ----------------------------------------------------------------- */

static const char *const expected_event_names[_EV_MAX] = {
        [EV_NONE] = "-",
        [EV_STARTED] = "rollguard-started",
        [EV_STOPPING] = "rollguard-stopping",
        [EV_RELOADED] = "rollguard-reloaded",
        [EV_RELOAD_FAILED] = "rollguard-reload-failed",
        [EV_RELEASE_SEEN] = "rollguard-release-seen",
        [EV_RELEASE_ENDED] = "rollguard-release-ended",
        [EV_RULE_HOLDING] = "rollguard-rule-holding",
        [EV_DECISION] = "rollguard-decision",
        [EV_ACTION_SKIPPED] = "rollguard-action-skipped",
        [EV_ACTION_DONE] = "rollguard-action-done",
        [EV_ACTION_FAILED] = "rollguard-action-failed",
        [EV_ACTION_UNCONFIRMED] = "rollguard-action-unconfirmed",
        [EV_ORDER_MOVED_ON] = "rollguard-order-moved-on",
        [EV_API_ERROR] = "rollguard-api-error",
        [EV_APP_DEGRADED] = "rollguard-app-degraded",
        [EV_APP_RECOVERED] = "rollguard-app-recovered",
        [EV_CIRCUIT_OPEN] = "rollguard-circuit-open",
        [EV_CIRCUIT_CLOSED] = "rollguard-circuit-closed",
        [EV_STATE_CORRUPT] = "rollguard-state-corrupt",
        [EV_STATE_QUARANTINED] = "rollguard-state-quarantined",
        [EV_ALERT] = "rollguard-alert",
        [EV_CREDENTIALS] = "rollguard-credentials",
        [EV_METRIC_QUERY] = "rollguard-metric-query",
        [EV_NOTIFY_FAILED] = "rollguard-notify-failed",
        [EV_CLOUD_EVENT] = "rollguard-cloud-event",
        [EV_HA_ROLE] = "rollguard-ha-role",
        [EV_API_THROTTLED] = "rollguard-api-throttled",
        [EV_BUDGET_STRETCHED] = "rollguard-budget-stretched",
        [EV_RELEASE_UNOBSERVED] = "rollguard-release-unobserved",
};

static bool is_message_id(const char *s) {
        if (!s || strlen(s) != 32)
                return false;
        for (size_t i = 0; i < 32; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static void test_log_event_names_and_ids(void **unused) {
        assert_string_equal(log_event_name(EV_NONE), "-");
        assert_null(log_event_message_id(EV_NONE));
        assert_null(log_event_name(_EV_MAX));
        assert_null(log_event_message_id(_EV_MAX));
        for (int ev = 1; ev < _EV_MAX; ev++) {
                if (!expected_event_names[ev] || !streq(log_event_name(ev), expected_event_names[ev]))
                        fail_msg("event %d: name %s, want %s", ev, strna(log_event_name(ev)),
                                 strna(expected_event_names[ev]));
                if (!is_message_id(log_event_message_id(ev)))
                        fail_msg("event %d: bad MESSAGE_ID %s", ev, strna(log_event_message_id(ev)));
                for (int other = 1; other < ev; other++)
                        if (streq(log_event_message_id(ev), log_event_message_id(other)))
                                fail_msg("events %d and %d share a MESSAGE_ID", ev, other);
        }
}

/* Every MESSAGE_ID has exactly one catalog entry and the catalog has no
 * entry for an id the code does not send; each entry is well formed. */
static void test_log_catalog_matches_ids(void **unused) {
        _cleanup_free_ char *catalog = read_file(TEST_SRCDIR "/../systemd/rollguard.catalog", NULL);
        assert_non_null(catalog);

        /* split into lines in place */
        size_t n_lines = 0;
        char *lines[4096];
        for (char *p = catalog; *p;) {
                assert_true(n_lines < ELEMENTSOF(lines));
                lines[n_lines++] = p;
                char *nl = strchr(p, '\n');
                if (!nl)
                        break;
                *nl = 0;
                p = nl + 1;
        }

        static const char *const vars[] = {
                "ROLLGUARD_APP", "ROLLGUARD_CHANGE_ORDER", "ROLLGUARD_RULE", "ROLLGUARD_ACTION",
                "ROLLGUARD_RESULT",
        };
        unsigned seen[_EV_MAX] = {};
        size_t entries = 0;
        for (size_t i = 0; i < n_lines; i++) {
                const char *line = lines[i];
                if (line[0] == '#')
                        continue;
                if (strncmp(line, "-- ", 3) != 0) {
                        /* journalctl substitutes @FIELD@; a field the records
                         * never carry would show up as its bare name */
                        for (const char *at = strchr(line, '@'); at; at = strchr(at, '@')) {
                                const char *close = strchr(at + 1, '@');
                                if (!close)
                                        fail_msg("unpaired '@' in catalog line \"%s\"", line);
                                size_t n = (size_t) (close - at - 1);
                                bool known = false;
                                for (size_t v = 0; v < ELEMENTSOF(vars); v++)
                                        known = known || (strlen(vars[v]) == n && !strncmp(vars[v], at + 1, n));
                                if (!known)
                                        fail_msg("catalog substitutes an unknown field in \"%s\"", line);
                                at = close + 1;
                        }
                        continue;
                }

                /* journalctl only starts an entry after an empty line */
                if (i > 0 && lines[i - 1][0] != 0)
                        fail_msg("catalog entry \"%s\" does not follow an empty line", line);
                const char *id = line + 3;
                if (!is_message_id(id))
                        fail_msg("catalog header \"%s\" is not \"-- <32 lowercase hex digits>\"", line);
                entries++;
                int found = -1;
                for (int ev = 1; ev < _EV_MAX; ev++)
                        if (streq(id, log_event_message_id(ev)))
                                found = ev;
                if (found < 0)
                        fail_msg("catalog has an entry %s that src/log.c does not define", id);
                seen[found]++;

                if (i + 4 >= n_lines || strncmp(lines[i + 1], "Subject: ", 9) != 0 ||
                    strlen(lines[i + 1]) < 20)
                        fail_msg("catalog entry %s: no Subject: line", id);
                if (!streq(lines[i + 2], "Defined-By: rollguard"))
                        fail_msg("catalog entry %s: no \"Defined-By: rollguard\" line", id);
                /* headers, one empty line, then a body of some substance */
                size_t j = i + 3;
                while (j < n_lines && lines[j][0] != 0) {
                        if (!strchr(lines[j], ':'))
                                fail_msg("catalog entry %s: header \"%s\" is not \"Key: value\"", id, lines[j]);
                        j++;
                }
                size_t body = 0;
                for (j++; j < n_lines && strncmp(lines[j], "-- ", 3) != 0; j++)
                        body += strlen(lines[j]);
                if (body < 80)
                        fail_msg("catalog entry %s: the explanation is missing or too short", id);
        }
        for (int ev = 1; ev < _EV_MAX; ev++)
                if (seen[ev] != 1)
                        fail_msg("%s (%s) has %u catalog entries, want 1", log_event_name(ev),
                                 log_event_message_id(ev), seen[ev]);
        assert_int_equal(entries, _EV_MAX - 1);
}

/* stderr captured into a temporary file; assertions run after it is restored
 * so a failure message is not swallowed. */
static int saved_stderr = -1;

static void capture_begin(void) {
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        assert_true(saved_stderr >= 0);
        FILE *f = tmpfile();
        assert_non_null(f);
        assert_int_equal(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
        fclose(f);
}

static char *capture_end(void) {
        off_t len = lseek(STDERR_FILENO, 0, SEEK_END);
        char *buf = malloc((size_t) len + 1);
        assert_non_null(buf);
        assert_int_equal(pread(STDERR_FILENO, buf, (size_t) len, 0), len);
        buf[len] = 0;
        assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
        return buf;
}

static void test_log_stderr_lines(void **unused) {
        static const struct {
                log_event ev;
                int priority;
                log_fields fields;
                bool no_fields;
                const char *msg;
                const char *line;
        } table[] = {
                { EV_ACTION_DONE, LOG_NOTICE,
                  { .app = "shop-api", .change_order = "765f", .rule = "stalled", .action = "rollback",
                    .result = "done" }, false,
                  "rolled back 765f",
                  "notice rollguard-action-done app=shop-api co=765f rule=stalled action=rollback "
                  "result=done: rolled back 765f\n" },
                { EV_NONE, LOG_ERR, {}, true, "plain", "err -: plain\n" },
                { EV_DECISION, LOG_NOTICE, { .rule = "error-rate", .value = "0.0731", .threshold = "0.05" }, false,
                  "fired", "notice rollguard-decision rule=error-rate value=0.0731 threshold=0.05: fired\n" },
                { EV_RELEASE_SEEN, LOG_INFO, { .app = "a", .change_order = "c" }, false, "seen",
                  "info rollguard-release-seen app=a co=c: seen\n" },
                { EV_DECISION, LOG_WARNING, { .rule = "r", .result = "x" }, false, "m",
                  "warning rollguard-decision rule=r result=x: m\n" },
                { EV_CIRCUIT_OPEN, LOG_CRIT, {}, false, "", "crit rollguard-circuit-open: \n" },
                { EV_API_ERROR, LOG_ALERT, { .app = "evil\napp" }, false, "line1\nline2\r\nline3\n",
                  "alert rollguard-api-error app=evil app: line1 line2  line3 \n" },
                { EV_STARTED, LOG_EMERG, {}, false, "e", "emerg rollguard-started: e\n" },
                { EV_STOPPING, LOG_DEBUG, {}, false, "d", "debug rollguard-stopping: d\n" },
        };
        log_setup(LOG_TARGET_STDERR, true);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                capture_begin();
                int r = log_event_send(table[i].ev, table[i].priority,
                                       table[i].no_fields ? NULL : &table[i].fields, "%s", table[i].msg);
                _cleanup_free_ char *out = capture_end();
                assert_int_equal(r, 0);
                if (!streq(out, table[i].line))
                        fail_msg("row %zu: got \"%s\", want \"%s\"", i, out, table[i].line);
        }

        /* the convenience macros and printf formatting */
        capture_begin();
        log_warning("retrying in %d s (%s)", 5, "throttled");
        _cleanup_free_ char *out = capture_end();
        assert_string_equal(out, "warning -: retrying in 5 s (throttled)\n");
        log_setup(LOG_TARGET_STDERR, false);
}

static void test_log_debug_only_when_verbose(void **unused) {
        log_setup(LOG_TARGET_STDERR, false);
        assert_false(log_verbose());
        capture_begin();
        log_debug("hidden %d", 1);
        int r = log_event_send(EV_DECISION, LOG_DEBUG, NULL, "hidden too");
        log_info("shown");
        _cleanup_free_ char *out = capture_end();
        assert_int_equal(r, 0);
        assert_string_equal(out, "info -: shown\n");

        log_setup(LOG_TARGET_STDERR, true);
        assert_true(log_verbose());
        capture_begin();
        log_debug("now shown %d", 2);
        _cleanup_free_ char *out2 = capture_end();
        assert_string_equal(out2, "debug -: now shown 2\n");
        log_setup(LOG_TARGET_STDERR, false);
}

static struct {
        unsigned calls;
        log_event ev;
        int priority;
        char app[32];
        bool has_co;
        char msg[64];
} sink_seen;

static void record_sink(log_event ev, int priority, const log_fields *f, const char *msg) {
        sink_seen.calls++;
        sink_seen.ev = ev;
        sink_seen.priority = priority;
        assert_non_null(f);
        snprintf(sink_seen.app, sizeof sink_seen.app, "%s", strna(f->app));
        sink_seen.has_co = f->change_order != NULL;
        snprintf(sink_seen.msg, sizeof sink_seen.msg, "%s", msg);
}

static void test_log_test_sink(void **unused) {
        log_setup(LOG_TARGET_STDERR, false);
        log_set_test_sink(record_sink);
        memset(&sink_seen, 0, sizeof sink_seen);

        capture_begin();
        log_fields f = { .app = "shop-api" };
        log_event_send(EV_ACTION_FAILED, LOG_ERR, &f, "refused: %s", "Forbidden.RAM");
        _cleanup_free_ char *out = capture_end();
        /* the sink sees the record in addition to stderr, not instead */
        assert_string_equal(out, "err rollguard-action-failed app=shop-api: refused: Forbidden.RAM\n");
        assert_int_equal(sink_seen.calls, 1);
        assert_int_equal(sink_seen.ev, EV_ACTION_FAILED);
        assert_int_equal(sink_seen.priority, LOG_ERR);
        assert_string_equal(sink_seen.app, "shop-api");
        assert_false(sink_seen.has_co);
        assert_string_equal(sink_seen.msg, "refused: Forbidden.RAM");

        /* no fields given: the sink still gets a (empty) set */
        capture_begin();
        log_notice("n");
        log_debug("suppressed records do not reach the sink");
        _cleanup_free_ char *out2 = capture_end();
        assert_string_equal(out2, "notice -: n\n");
        assert_int_equal(sink_seen.calls, 2);
        assert_string_equal(sink_seen.app, "n/a");

        log_set_test_sink(NULL);
        capture_begin();
        log_notice("n");
        _cleanup_free_ char *out3 = capture_end();
        assert_string_equal(out3, "notice -: n\n");
        assert_int_equal(sink_seen.calls, 2);
}

static void test_log_long_message_is_cut_on_a_character(void **unused) {
        log_setup(LOG_TARGET_STDERR, false);
        size_t n = 5000;
        char *msg = malloc(2 * n + 1);
        assert_non_null(msg);
        for (size_t i = 0; i < n; i++)
                memcpy(msg + 2 * i, "\xc3\xa9", 2); /* é */
        msg[2 * n] = 0;

        capture_begin();
        log_fields f = { .app = "a" };
        log_event_send(EV_NONE, LOG_INFO, &f, "%s", msg);
        _cleanup_free_ char *out = capture_end();
        free(msg);

        size_t len = strlen(out);
        assert_true(len < 4096 + 64);
        assert_int_equal(strchr(out, '\n') - out, (ptrdiff_t) len - 1); /* one line */
        const char *ellipsis = "\xe2\x80\xa6\n";
        assert_string_equal(out + len - 4, ellipsis);
        const char *body = out + strlen("info - app=a: ");
        size_t body_len = (size_t) (out + len - 4 - body);
        assert_int_equal(body_len % 2, 0);
        for (size_t i = 0; i < body_len; i += 2)
                assert_memory_equal(body + i, "\xc3\xa9", 2);

        /* a huge field value cannot overflow the line either */
        char *big = malloc(20000);
        assert_non_null(big);
        memset(big, 'x', 19999);
        big[19999] = 0;
        capture_begin();
        log_fields g = { .app = big, .rule = "r" };
        log_event_send(EV_NONE, LOG_INFO, &g, "m");
        _cleanup_free_ char *out2 = capture_end();
        free(big);
        len = strlen(out2);
        assert_true(len < 8192);
        assert_string_equal(out2 + len - 4, ellipsis);
}

static void test_log_auto_target_and_errno(void **unused) {
        capture_begin();
        struct stat st;
        assert_int_equal(fstat(STDERR_FILENO, &st), 0);
        _cleanup_free_ char *mine = strdup_printf("%llu:%llu", (unsigned long long) st.st_dev,
                                                  (unsigned long long) st.st_ino);
        _cleanup_free_ char *other = strdup_printf("%llu:%llu", (unsigned long long) st.st_dev,
                                                   (unsigned long long) st.st_ino + 1);

        /* not our stderr, or not parseable: stderr it is */
        const char *not_journal[] = { other, "garbage", "12:", ":12", "1:2:3", "" };
        for (size_t i = 0; i < ELEMENTSOF(not_journal); i++) {
                setenv("JOURNAL_STREAM", not_journal[i], 1);
                log_setup(LOG_TARGET_AUTO, false);
                log_info("auto %zu", i);
        }
        unsetenv("JOURNAL_STREAM");
        log_setup(LOG_TARGET_AUTO, false);
        log_info("auto unset");

        errno = 1234;
        log_info("errno is kept");
        int saved = errno;

        /* stderr is the journal stream: records go to the journal, not as
         * a text line to stderr. Only checked where no journald listens, so
         * tests never write to a real journal (sd_journal_sendv drops the
         * record silently then). */
        bool journald = access("/run/systemd/journal/socket", F_OK) == 0;
        int r = 0;
        if (!journald) {
                setenv("JOURNAL_STREAM", mine, 1);
                log_setup(LOG_TARGET_AUTO, false);
                log_fields f = { .app = "a", .change_order = "c", .rule = "r", .action = "rollback", .result = "done" };
                r = log_event_send(EV_ACTION_DONE, LOG_NOTICE, &f, "to the journal");
                unsetenv("JOURNAL_STREAM");
        }
        log_setup(LOG_TARGET_STDERR, false);
        _cleanup_free_ char *out = capture_end();

        assert_int_equal(saved, 1234);
        _cleanup_free_ char *want = strdup(
                "info -: auto 0\ninfo -: auto 1\ninfo -: auto 2\ninfo -: auto 3\ninfo -: auto 4\n"
                "info -: auto 5\ninfo -: auto unset\ninfo -: errno is kept\n");
        assert_string_equal(out, want);
        assert_int_equal(r, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_act_result_names),
                cmocka_unit_test(test_state_path_escaping),
                cmocka_unit_test(test_json_round_trip_every_field),
                cmocka_unit_test(test_json_minimal_and_tolerated),
                cmocka_unit_test(test_json_rejects),
                cmocka_unit_test(test_json_deep_nesting_does_not_crash),
                cmocka_unit_test(test_json_long_arrays_keep_newest),
                cmocka_unit_test(test_to_json_refuses_what_load_would_reject),
                cmocka_unit_test(test_save_load_round_trip),
                cmocka_unit_test(test_load_missing_file_is_empty),
                cmocka_unit_test(test_load_corrupt_files_are_moved_aside),
                cmocka_unit_test(test_load_oversized_file_is_corrupt),
                cmocka_unit_test(test_load_every_truncation),
                cmocka_unit_test(test_intent_record_survives_load),
                cmocka_unit_test(test_load_errors_are_not_corruption),
                cmocka_unit_test(test_save_failure_leaves_no_temp_file),
                cmocka_unit_test(test_add_act_caps_and_find),
                cmocka_unit_test(test_count_acts_since),
                cmocka_unit_test(test_pending_set_clear_prune),
                cmocka_unit_test(test_log_event_names_and_ids),
                cmocka_unit_test(test_log_catalog_matches_ids),
                cmocka_unit_test(test_log_stderr_lines),
                cmocka_unit_test(test_log_debug_only_when_verbose),
                cmocka_unit_test(test_log_test_sink),
                cmocka_unit_test(test_log_long_message_is_cut_on_a_character),
                cmocka_unit_test(test_log_auto_target_and_errno),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
