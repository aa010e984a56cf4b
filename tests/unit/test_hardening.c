/* SPDX-License-Identifier: MIT */
/* Issue 12, the pure parts and the file edges: record keys, migration
 * decisions, the clock conversions and a clock step, what `state repair`
 * salvages, the safe-open checks, planted symlinks, the by-order index. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "actions.h"
#include "rules.h"
#include "safe_open.h"
#include "state.h"
#include "state_file.h"
#include "state_json.h"
#include "util.h"

/* actions.c's way to the cloud; only its pure gate is used here */
int cloud_describe(const cloud_ctx *c, const app_config *app, const char *change_order_id,
                   api_priority prio, cloud_order_fn done, void *userdata, api_call **ret_call) {
        return -ENOSYS;
}

int cloud_act(const cloud_ctx *c, const app_config *app, rule_action action, const char *change_order_id,
              cloud_action_fn done, void *userdata, api_call **ret_call) {
        return -ENOSYS;
}

const char *cloud_action_api_name(const app_config *app, rule_action action) {
        return "AbortAndRollbackChangeOrder";
}

void api_call_cancel(api_call *call) {
}

static char *make_tmpdir(void) {
        char tmpl[] = "/tmp/rollguard-test-hardening-XXXXXX";
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
                struct stat st;
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        remove_tree(p);
                else
                        unlink(p);
        }
        closedir(d);
        rmdir(dir);
}

static void write_file(const char *path, const char *data) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, strlen(data)), (ssize_t) strlen(data));
        close(fd);
}

static char *slurp(const char *path) {
        char *t = NULL;
        size_t n;
        if (safe_read_file(AT_FDCWD, path, NULL, &t, &n, NULL) < 0)
                return NULL;
        return t;
}

/* ---- keys ------------------------------------------------------------------ */

static void test_state_key_derivation(void **unused) {
        static const struct {
                const char *platform, *region, *app_id, *key;
        } table[] = {
                { "sae", "cn-hangzhou", "7171a6ca-d1cd-4928-8642-7d5cfe690001",
                  "sae_cn-hangzhou_7171a6ca-d1cd-4928-8642-7d5cfe690001" },
                { "edas", "cn-shanghai", "abc", "edas_cn-shanghai_abc" },
                /* '_' only ever separates: (a_b, c) and (a, b_c) differ */
                { "sae", "a_b", "c", "sae_a%5Fb_c" },
                { "sae", "a", "b_c", "sae_a_b%5Fc" },
                { "sae", "r", "../../etc", "sae_r_..%2F..%2Fetc" },
                { "sae", "r", "id with space", "sae_r_id%20with%20space" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *k = state_key(table[i].platform, table[i].region, table[i].app_id);
                if (!k || !streq(k, table[i].key))
                        fail_msg("row %zu: got %s, want %s", i, strna(k), table[i].key);
                _cleanup_free_ char *p = state_path("/s", k);
                assert_non_null(p);
                /* one file in the directory, never a path out of it */
                assert_null(strchr(p + 3, '/'));
        }
        assert_null(state_key("sae", "", "x"));
        assert_null(state_key("sae", "r", NULL));
}

static void test_migration_plan(void **unused) {
        assert_int_equal(state_migration_plan(true, true), STATE_USE_KEY);
        assert_int_equal(state_migration_plan(true, false), STATE_USE_KEY);
        assert_int_equal(state_migration_plan(false, true), STATE_MIGRATE_NAMED);
        assert_int_equal(state_migration_plan(false, false), STATE_START_EMPTY);
}

static void test_load_app_migrates_the_named_file(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *named = strdup_printf("%s/payments.json", dir);
        write_file(named, "{\"version\":1,\"app\":\"payments\",\"cooldown_until_ms\":1763890000000,"
                          "\"acts\":[{\"change_order_id\":\"co-1\",\"rule\":\"r\",\"action\":\"rollback\","
                          "\"intent_ms\":1763880000000,\"result\":\"done\",\"finished_ms\":1763880000100}]}");
        app_state s;
        _cleanup_free_ char *warning = NULL, *note = NULL;
        assert_int_equal(state_load_app(dir, "sae_r_id", "payments", &s, &warning, &note), 0);
        assert_null(warning);
        assert_non_null(note);
        assert_string_equal(s.app, "sae_r_id");
        assert_non_null(state_find_act(&s, "co-1"));
        assert_int_equal(access(named, F_OK), -1);
        app_state_done(&s);

        /* the keyed file wins from now on, whatever the name */
        free(note);
        note = NULL;
        assert_int_equal(state_load_app(dir, "sae_r_id", "renamed", &s, &warning, &note), 0);
        assert_null(note);
        assert_non_null(state_find_act(&s, "co-1"));
        app_state_done(&s);
        remove_tree(dir);
}

/* ---- clocks ---------------------------------------------------------------- */

static void test_time_conversions(void **unused) {
        int64_t off = INT64_C(-5000);
        assert_int_equal(state_time_to_steady(0, off), 0); /* none stays none */
        assert_int_equal(state_time_to_wall(0, off), 0);
        assert_int_equal(state_time_to_steady(1000, off), 6000);
        assert_int_equal(state_time_to_wall(6000, off), 1000);
        /* too old to map: still "long ago", never "none" */
        assert_int_equal(state_time_to_steady(1000, 5000), 1);
        for (int64_t t = 1; t < INT64_C(1) << 44; t = t * 3 + 7)
                assert_int_equal(state_time_to_wall(state_time_to_steady(t, off), off), t);

        app_state s = { .app = strdup("k"), .cooldown_until_ms = 2000 };
        act_record a = { .change_order_id = (char *) "c", .rule = (char *) "r", .intent_ms = 1500,
                         .result = ACT_DONE, .finished_ms = 1600 };
        assert_int_equal(state_add_act(&s, &a), 0);
        assert_int_equal(state_set_pending(&s, "c", "r", 1700), 1);
        state_convert_times(&s, off, false);
        assert_int_equal(s.cooldown_until_ms, 7000);
        assert_int_equal(s.acts[0].intent_ms, 6500);
        assert_int_equal(s.acts[0].finished_ms, 6600);
        assert_int_equal(s.pending[0].since_ms, 6700);
        state_convert_times(&s, off, true);
        assert_int_equal(s.cooldown_until_ms, 2000);
        app_state_done(&s);
}

/* A wall-clock step of +1h while a rule waits for its `for` of 60 s: the
 * rule keeps holding, because `for` runs on the steady clock. And -1h does
 * not stretch a cooldown: the gate compares steady times. */
static void test_clock_step_neither_fires_early_nor_stretches(void **unused) {
        change_order co = { .id = (char *) "co", .co_type = (char *) "CoDeploy", .status = CO_EXECUTING,
                            .sub_status = SUB_ERROR, .support_rollback = 1 };
        rule r = { .name = (char *) "batch-error", .status_mask = 1u << CO_EXECUTING, .sub_status = SUB_ERROR,
                   .action = ACTION_ROLLBACK, .for_usec = 60 * USEC_PER_SEC };
        int64_t steady0 = INT64_C(5000000), wall0 = INT64_C(1763890000000);
        rule_input in = { .co = &co, .now_ms = wall0 + 3600 * 1000, .steady_ms = steady0 + 1000 };
        rule_verdict v = rule_evaluate(&r, &in, steady0);
        assert_int_equal(v.kind, VERDICT_HOLDING);
        assert_int_equal(v.fire_at_ms, steady0 + 60000);
        in.steady_ms = steady0 + 60000;
        in.now_ms = wall0 - 3600 * 1000; /* and a step back changes nothing either */
        assert_int_equal(rule_evaluate(&r, &in, steady0).kind, VERDICT_FIRE);

        app_state s = { .app = (char *) "k", .cooldown_until_ms = steady0 + 60000 };
        char why[256];
        action_gate_input gi = { .co = &co, .rule = &r, .state = &s, .now_ms = steady0 + 59000 };
        assert_int_equal(actions_gate(&gi, why, sizeof why), GATE_COOLDOWN);
        gi.now_ms = steady0 + 60001;
        assert_int_equal(actions_gate(&gi, why, sizeof why), GATE_GO);

        /* the steady clock itself moves with CLOCK_MONOTONIC */
        int64_t a = now_steady_ms();
        uint64_t m = now_monotonic_usec();
        int64_t b = now_steady_ms();
        assert_true(b >= a && b - a < 1000);
        assert_true(m > 0);
}

/* ---- repair ---------------------------------------------------------------- */

static void test_recover_text(void **unused) {
        const char *text = "{\n\t\"version\":\t1,\n\t\"app\":\t\"k\",\n\t\"cooldown_until_ms\":\t1763890000000,\n"
                           "\t\"acts\":\t[{\"change_order_id\":\t\"co-1\", \"rule\": \"r\"}, "
                           "{\"change_order_id\": \"co-2\"}, {\"change_order_id\": \"co-1\"}],\n"
                           "\t\"pending\":\t[{\"change_order_id\":\t\"never-acted\"";
        app_state s;
        assert_int_equal(state_recover_text(text, strlen(text), "k", 1763899999999, &s), 2);
        assert_string_equal(s.app, "k");
        assert_int_equal(s.cooldown_until_ms, 1763890000000);
        act_record *a = state_find_act(&s, "co-1");
        assert_non_null(a);
        assert_int_equal(a->result, ACT_UNCONFIRMED);
        assert_int_equal(a->intent_ms, 0); /* no breaker hour for a guess */
        assert_non_null(state_find_act(&s, "co-2"));
        assert_null(state_find_act(&s, "never-acted"));
        assert_true(app_state_valid(&s));
        app_state_done(&s);

        /* cut inside an id: that id is not whole, nothing is invented */
        const char *cut = "{\"acts\":[{\"change_order_id\":\"co-1\"},{\"change_order_id\":\"co-2";
        assert_int_equal(state_recover_text(cut, strlen(cut), "k", 1, &s), 1);
        app_state_done(&s);
        assert_int_equal(state_recover_text("\x7f garbage", 9, "k", 1, &s), 0);
        app_state_done(&s);
}

static void test_state_repair(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = state_path(dir, "sae_r_id");
        _cleanup_free_ char *moved = NULL, *err = NULL;
        size_t n = 99;
        assert_int_equal(state_repair(dir, "sae_r_id", "app", &moved, &n, &err), -ENOENT);

        write_file(path, "{\"version\":9,\"app\":\"sae_r_id\",\"acts\":[{\"change_order_id\":\"co-9\"}]}");
        app_state s;
        _cleanup_free_ char *warning = NULL;
        assert_int_equal(state_load(dir, "sae_r_id", &s, &warning), STATE_QUARANTINED);
        app_state_done(&s);
        assert_int_equal(state_repair(dir, "sae_r_id", "app", &moved, &n, &err), 0);
        assert_int_equal(n, 1);
        _cleanup_free_ char *prefix = strdup_printf("%s.broken-", path);
        assert_true(strncmp(moved, prefix, strlen(prefix)) == 0);
        _cleanup_free_ char *kept = slurp(moved);
        assert_non_null(strstr(kept, "\"version\":9"));
        free(warning);
        warning = NULL;
        assert_int_equal(state_load(dir, "sae_r_id", &s, &warning), 0);
        assert_non_null(state_find_act(&s, "co-9"));
        app_state_done(&s);
        free(moved);
        moved = NULL;
        assert_int_equal(state_repair(dir, "sae_r_id", "app", &moved, &n, &err), 1);

        /* a directory in its place is moved aside as well */
        remove_tree(dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(mkdir(path, 0700), 0);
        assert_int_equal(state_repair(dir, "sae_r_id", "app", &moved, &n, &err), 0);
        assert_int_equal(n, 0);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        remove_tree(dir);
}

/* ---- safe open ------------------------------------------------------------- */

static void test_safe_check_stat(void **unused) {
        char why[160];
        safe_open_opts own = { .check_owner = true, .max_size = 10 };
        static const struct {
                mode_t mode;
                uid_t uid;
                off_t size;
                int want;
                const char *says;
        } files[] = {
                { S_IFREG | 0600, 7, 10, 0, NULL },
                { S_IFDIR | 0700, 7, 0, -EISDIR, "is a directory, not a regular file" },
                { S_IFIFO | 0600, 7, 0, -EBADFD, "is a FIFO, not a regular file" },
                { S_IFSOCK | 0600, 7, 0, -EBADFD, "is a socket" },
                { S_IFCHR | 0600, 7, 0, -EBADFD, "is a character device" },
                { S_IFBLK | 0600, 7, 0, -EBADFD, "is a block device" },
                { S_IFREG | 0600, 8, 1, -EPERM, "is owned by uid 8, not by rollguard's uid 7" },
                { S_IFREG | 0600, 7, 11, -EFBIG, "is larger than 10 bytes" },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                struct stat st = { .st_mode = files[i].mode, .st_uid = files[i].uid, .st_size = files[i].size };
                why[0] = 0;
                int r = safe_check_file_stat(&st, &own, 7, why, sizeof why);
                if (r != files[i].want || (files[i].says && !strstr(why, files[i].says)))
                        fail_msg("row %zu: %d \"%s\"", i, r, why);
        }
        static const struct {
                mode_t mode;
                uid_t uid;
                int want;
                const char *says;
        } dirs[] = {
                { S_IFDIR | 0700, 7, 0, NULL },
                { S_IFDIR | 0755, 7, 0, NULL },
                { S_IFDIR | 0770, 7, -EPERM, "writable by group or others (mode 0770)" },
                { S_IFDIR | 01777, 7, -EPERM, "writable by group or others" },
                { S_IFDIR | 0700, 0, -EPERM, "is owned by uid 0" },
                { S_IFREG | 0700, 7, -ENOTDIR, "is a regular file, not a directory" },
        };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                struct stat st = { .st_mode = dirs[i].mode, .st_uid = dirs[i].uid };
                why[0] = 0;
                int r = safe_check_dir_stat(&st, 7, why, sizeof why);
                if (r != dirs[i].want || (dirs[i].says && !strstr(why, dirs[i].says)))
                        fail_msg("dir row %zu: %d \"%s\"", i, r, why);
        }
}

static void test_safe_open_never_hangs_nor_follows(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *fifo = strdup_printf("%s/fifo", dir);
        _cleanup_free_ char *link = strdup_printf("%s/link", dir);
        _cleanup_free_ char *file = strdup_printf("%s/file", dir);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        write_file(file, "hello");
        assert_int_equal(symlink(file, link), 0);

        char *t = NULL, *err = NULL;
        size_t n;
        safe_open_opts follow = { 0 }, nofollow = { .nofollow = true };
        /* no writer on the FIFO: a plain open(2) would block here forever */
        assert_int_equal(safe_read_file(AT_FDCWD, fifo, &follow, &t, &n, &err), -EBADFD);
        assert_non_null(strstr(err, "is a FIFO"));
        free(err);
        assert_int_equal(safe_read_file(AT_FDCWD, dir, &follow, &t, &n, &err), -EISDIR);
        free(err);
        assert_int_equal(safe_read_file(AT_FDCWD, link, &nofollow, &t, &n, &err), -ELOOP);
        assert_non_null(strstr(err, "symbolic link"));
        free(err);
        assert_int_equal(safe_read_file(AT_FDCWD, link, &follow, &t, &n, &err), 0);
        assert_string_equal(t, "hello");
        free(t);
        safe_open_opts small = { .max_size = 4 };
        assert_int_equal(safe_read_file(AT_FDCWD, file, &small, &t, &n, &err), -EFBIG);
        free(err);
        remove_tree(dir);
}

static void test_temp_files_are_new_and_private(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        _cleanup_free_ char *a = NULL, *b = NULL;
        int fa, fb;
        assert_int_equal(safe_create_temp(dfd, "x.json", &a, &fa), 0);
        assert_int_equal(safe_create_temp(dfd, "x.json", &b, &fb), 0);
        assert_string_not_equal(a, b);
        struct stat st;
        assert_int_equal(fstat(fa, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        close(fa);
        close(fb);
        close(dfd);
        remove_tree(dir);
}

/* 0.1 wrote "<file>.tmp.<pid>" with O_CREAT|O_TRUNC, through whatever symlink
 * was planted there, and opened ".lock" the same way. */
static void test_save_never_writes_through_planted_symlinks(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *outside = make_tmpdir();
        _cleanup_free_ char *victim = strdup_printf("%s/victim", outside);
        write_file(victim, "precious");
        _cleanup_free_ char *path = state_path(dir, "sae_r_id");
        _cleanup_free_ char *old_tmp = strdup_printf("%s.tmp.%d", path, (int) getpid());
        assert_int_equal(symlink(victim, old_tmp), 0);
        /* and the record's own name pointing out */
        assert_int_equal(symlink(victim, path), 0);

        app_state s = { .app = strdup("sae_r_id") };
        assert_int_equal(state_save(dir, &s), 0);
        _cleanup_free_ char *v = slurp(victim);
        assert_string_equal(v, "precious");
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode)); /* the link was replaced, not followed */
        app_state_done(&s);
        remove_tree(dir);
        remove_tree(outside);
}

static void test_by_order_index(void **unused) {
        _cleanup_free_ char *dir = make_tmpdir();
        assert_int_equal(state_order_claimed(dir, "co/1"), 0);
        assert_int_equal(state_order_claim(dir, "co/1", "sae_r_a"), 0);
        assert_int_equal(state_order_claim(dir, "co/1", "sae_r_b"), -EEXIST);
        assert_int_equal(state_order_claimed(dir, "co/1"), 1);
        assert_int_equal(state_order_claimed(dir, "co/2"), 0);
        assert_int_equal(state_order_release(dir, "co/1"), 0);
        assert_int_equal(state_order_claimed(dir, "co/1"), 0);
        /* a symlink planted as a claim is a claim: never written through */
        _cleanup_free_ char *planted = strdup_printf("%s/by-order/co-3", dir);
        assert_int_equal(symlink("/nonexistent-victim", planted), 0);
        assert_int_equal(state_order_claim(dir, "co-3", "k"), -EEXIST);
        assert_int_equal(access("/nonexistent-victim", F_OK), -1);
        remove_tree(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_state_key_derivation),
                cmocka_unit_test(test_migration_plan),
                cmocka_unit_test(test_load_app_migrates_the_named_file),
                cmocka_unit_test(test_time_conversions),
                cmocka_unit_test(test_clock_step_neither_fires_early_nor_stretches),
                cmocka_unit_test(test_recover_text),
                cmocka_unit_test(test_state_repair),
                cmocka_unit_test(test_safe_check_stat),
                cmocka_unit_test(test_safe_open_never_hangs_nor_follows),
                cmocka_unit_test(test_temp_files_are_new_and_private),
                cmocka_unit_test(test_save_never_writes_through_planted_symlinks),
                cmocka_unit_test(test_by_order_index),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
