/* SPDX-License-Identifier: MIT */
#include "state_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "safe_open.h"
#include "state_json.h"
#include "util.h"

/* Our own files are a few KiB (64 acts at most); anything this big is not one. */
#define STATE_FILE_MAX (4 * 1024 * 1024)
#define ORDER_DIR "by-order"

static void app_state_donep(app_state *s) {
        app_state_done(s);
}

static void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static const char hex[] = "0123456789ABCDEF";

static bool is_plain_filename_byte(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

/* Escaping is injective (a '%' is itself escaped), so two keys can never
 * share a file; a leading '.' is escaped so no key gives a hidden file, "."
 * or "..". */
static char *escape_name(const char *s, const char *suffix) {
        if (!s || !*s) {
                errno = EINVAL;
                return NULL;
        }
        size_t len = strlen(s);
        if (len > 1024) {
                errno = ENAMETOOLONG;
                return NULL;
        }
        char *out = malloc(3 * len + strlen(suffix) + 1);
        if (!out)
                return NULL;
        char *p = out;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (is_plain_filename_byte(c) && !(i == 0 && c == '.'))
                        *p++ = (char) c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        strcpy(p, suffix);
        return out;
}

static char *file_name(const char *key) {
        return escape_name(key, ".json");
}

char *state_path(const char *dir, const char *key) {
        if (!dir) {
                errno = EINVAL;
                return NULL;
        }
        _cleanup_free_ char *n = file_name(key);
        if (!n)
                return NULL;
        return strdup_printf("%s/%s", dir, n);
}

static void append_part(char **p, const char *s) {
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                             c == '.' || c == '-';
                if (plain)
                        *(*p)++ = (char) c;
                else {
                        *(*p)++ = '%';
                        *(*p)++ = hex[c >> 4];
                        *(*p)++ = hex[c & 15];
                }
        }
}

char *state_key(const char *platform_s, const char *region, const char *app_id) {
        if (!platform_s || !*platform_s || !region || !*region || !app_id || !*app_id) {
                errno = EINVAL;
                return NULL;
        }
        size_t n = strlen(platform_s) + strlen(region) + strlen(app_id);
        if (n > 512) {
                errno = ENAMETOOLONG;
                return NULL;
        }
        char *k = malloc(3 * n + 3);
        if (!k)
                return NULL;
        char *p = k;
        append_part(&p, platform_s);
        *p++ = '_';
        append_part(&p, region);
        *p++ = '_';
        append_part(&p, app_id);
        *p = 0;
        return k;
}

state_migration state_migration_plan(bool have_key_file, bool have_named_file) {
        if (have_key_file)
                return STATE_USE_KEY;
        return have_named_file ? STATE_MIGRATE_NAMED : STATE_START_EMPTY;
}

/* ---- files ----------------------------------------------------------------- */

static int open_dir(const char *dir, bool create, int *ret) {
        if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

/* Renames dfd/name to "<name><tag>-<unix seconds>[.N]" without ever
 * replacing an earlier one: each is evidence of something. */
static int move_aside(int dfd, const char *name, const char *tag, char **ret_newname) {
        long long now = (long long) time(NULL);
        for (unsigned i = 0; i < 1000; i++) {
                _cleanup_free_ char *n = i == 0 ? strdup_printf("%s%s-%lld", name, tag, now)
                                                : strdup_printf("%s%s-%lld.%u", name, tag, now, i);
                if (!n)
                        return -ENOMEM;
                if (renameat2(dfd, name, dfd, n, RENAME_NOREPLACE) >= 0) {
                        *ret_newname = TAKE_PTR(n);
                        return 0;
                }
                if (errno == EEXIST)
                        continue;
                if (errno != EINVAL && errno != ENOSYS)
                        return -errno;
                /* the file system cannot do RENAME_NOREPLACE; we are the only
                 * writer of this directory, so check-then-rename will do */
                struct stat st;
                if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        continue;
                if (renameat(dfd, name, dfd, n) < 0)
                        return -errno;
                *ret_newname = TAKE_PTR(n);
                return 0;
        }
        return -EEXIST;
}

static int empty_state(app_state *out, const char *key) {
        *out = (app_state) {};
        out->app = strdup(key);
        return out->app ? 0 : -ENOMEM;
}

/* Whether dfd/name exists at all, whatever it is (a dangling symlink too). */
static int entry_exists(int dfd, const char *name) {
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return 1;
        return errno == ENOENT ? 0 : -errno;
}

/* Reads dfd/name as the record of `expect`. 0 with *out, -ENOENT, -ENOMEM,
 * or STATE_QUARANTINED with *ret_reason; *ret_text gets the raw text when
 * one was read (for repair). */
static int read_record(int dfd, const char *name, const char *expect, app_state *out, char **ret_reason,
                       char **ret_text, size_t *ret_len) {
        safe_open_opts o = { .nofollow = true, .check_owner = true, .max_size = STATE_FILE_MAX };
        _cleanup_free_ char *text = NULL, *err = NULL, *reason = NULL;
        size_t len = 0;
        int r = safe_read_file(dfd, name, &o, &text, &len, &err);
        if (r == -ENOENT)
                return -ENOENT;
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_reason = TAKE_PTR(err);
                return *ret_reason ? STATE_QUARANTINED : -ENOMEM;
        }

        _cleanup_(app_state_donep) app_state s = {};
        const char *nul = memchr(text, 0, len);
        if (nul)
                reason = strdup_printf("NUL byte at byte %zu", (size_t) (nul - text));
        else {
                r = state_from_json(text, &s, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && !streq(s.app, expect)) {
                        free(reason);
                        reason = strdup_printf("it is the record of \"%s\"", s.app);
                        r = -EBADMSG;
                }
                if (r >= 0) {
                        state_convert_times(&s, wall_minus_steady_ms(), false);
                        *out = s;
                        s = (app_state) {};
                        return 0;
                }
                if (!reason)
                        reason = strdup("unreadable");
        }
        if (!reason)
                return -ENOMEM;
        if (ret_text) {
                *ret_text = TAKE_PTR(text);
                *ret_len = len;
        }
        *ret_reason = TAKE_PTR(reason);
        return STATE_QUARANTINED;
}

static int load_in(int dfd, const char *dir, const char *name, const char *expect, app_state *out,
                   char **ret_warning) {
        _cleanup_free_ char *reason = NULL;
        int r = read_record(dfd, name, expect, out, &reason, NULL, NULL);
        if (r == STATE_QUARANTINED) {
                if (ret_warning) {
                        *ret_warning = strdup_printf("state file %s/%s cannot be used (%s); kept as it is, and the "
                                                     "app is quarantined (watched, never acted on) until "
                                                     "'rollguard state repair' or the file is removed",
                                                     dir, name, reason);
                        if (!*ret_warning)
                                return -ENOMEM;
                }
                int k = empty_state(out, expect);
                return k < 0 ? k : STATE_QUARANTINED;
        }
        return r;
}

int state_load(const char *dir, const char *key, app_state *out, char **ret_warning) {
        if (ret_warning)
                *ret_warning = NULL;
        if (!out)
                return -EINVAL;
        *out = (app_state) {};
        if (!dir || !key || !*key)
                return -EINVAL;

        _cleanup_free_ char *name = file_name(key);
        if (!name)
                return -errno;
        _cleanup_close_ int dfd = -1;
        int r = open_dir(dir, false, &dfd);
        if (r == -ENOENT)
                return empty_state(out, key);
        if (r < 0)
                return r;
        r = load_in(dfd, dir, name, key, out, ret_warning);
        if (r == -ENOENT)
                return empty_state(out, key);
        return r;
}

/* The text of s with its times on the wall clock (a converted shallow copy:
 * the strings stay s's). */
static char *record_text(const app_state *s) {
        app_state c = *s;
        c.acts = s->n_acts ? malloc(s->n_acts * sizeof *c.acts) : NULL;
        c.pending = s->n_pending ? malloc(s->n_pending * sizeof *c.pending) : NULL;
        char *text = NULL;
        if ((!s->n_acts || c.acts) && (!s->n_pending || c.pending)) {
                if (s->n_acts)
                        memcpy(c.acts, s->acts, s->n_acts * sizeof *c.acts);
                if (s->n_pending)
                        memcpy(c.pending, s->pending, s->n_pending * sizeof *c.pending);
                state_convert_times(&c, wall_minus_steady_ms(), true);
                text = state_to_json(&c);
        }
        free(c.acts);
        free(c.pending);
        return text;
}

static int save_in(int dfd, const app_state *s) {
        _cleanup_free_ char *text = record_text(s);
        if (!text)
                return -ENOMEM;
        _cleanup_free_ char *name = file_name(s->app);
        if (!name)
                return -errno;
        _cleanup_free_ char *tmp = NULL;
        int fd;
        int r = safe_create_temp(dfd, name, &tmp, &fd);
        if (r < 0)
                return r;
        r = write_all(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        /* renameat replaces a symlink planted under the name, never its target */
        if (r >= 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dfd, tmp, 0);
                return r;
        }
        /* the rename itself is only durable once the directory is */
        return fsync(dfd) < 0 ? -errno : 0;
}

int state_save(const char *dir, const app_state *s) {
        if (!dir || !s || !app_state_valid(s))
                return -EINVAL;
        _cleanup_close_ int dfd = -1;
        int r = open_dir(dir, true, &dfd);
        if (r < 0)
                return r;
        return save_in(dfd, s);
}

int state_load_app(const char *dir, const char *key, const char *name, app_state *out, char **ret_warning,
                   char **ret_note) {
        if (ret_note)
                *ret_note = NULL;
        if (ret_warning)
                *ret_warning = NULL;
        if (!out)
                return -EINVAL;
        *out = (app_state) {};
        if (!dir || !key || !*key)
                return -EINVAL;
        _cleanup_free_ char *kname = file_name(key);
        _cleanup_free_ char *nname = name && *name ? file_name(name) : NULL;
        if (!kname)
                return -errno;
        _cleanup_close_ int dfd = -1;
        int r = open_dir(dir, false, &dfd);
        if (r == -ENOENT)
                return empty_state(out, key);
        if (r < 0)
                return r;

        int have_key = entry_exists(dfd, kname);
        int have_named = nname && !streq(nname, kname) ? entry_exists(dfd, nname) : 0;
        if (have_key < 0 || have_named < 0)
                return have_key < 0 ? have_key : have_named;

        switch (state_migration_plan(have_key, have_named)) {
        case STATE_USE_KEY:
                r = load_in(dfd, dir, kname, key, out, ret_warning);
                return r == -ENOENT ? empty_state(out, key) : r;
        case STATE_START_EMPTY:
                return empty_state(out, key);
        case STATE_MIGRATE_NAMED:
                break;
        }

        /* 0.1's record, named after the app and holding its name */
        r = load_in(dfd, dir, nname, name, out, ret_warning);
        if (r == -ENOENT)
                return empty_state(out, key);
        if (r != 0) {
                if (r == STATE_QUARANTINED)
                        (void) free_and_strdup(&out->app, key);
                return r;
        }
        r = free_and_strdup(&out->app, key);
        if (r >= 0)
                r = save_in(dfd, out);
        if (r < 0) {
                /* the named file stays the record; this app waits, it must not
                 * start empty beside it */
                app_state_done(out);
                (void) empty_state(out, key);
                if (ret_warning)
                        *ret_warning = strdup_printf("cannot migrate state file %s/%s to %s: %s; the app is "
                                                     "quarantined until it can",
                                                     dir, nname, kname, strerror(-r));
                return STATE_QUARANTINED;
        }
        _cleanup_free_ char *moved = NULL;
        r = move_aside(dfd, nname, ".migrated", &moved);
        if (ret_note)
                *ret_note = r < 0 ? strdup_printf("state of %s migrated from %s/%s to %s/%s (the old file could "
                                                  "not be renamed: %s; it is ignored from now on)",
                                                  name, dir, nname, dir, kname, strerror(-r))
                                  : strdup_printf("state of %s migrated from %s/%s to %s/%s (the old file is "
                                                  "now %s)",
                                                  name, dir, nname, dir, kname, moved);
        return 0;
}

/* ---- by change order --------------------------------------------------------- */

static int open_order_dir(const char *dir, bool create, int *ret) {
        _cleanup_close_ int dfd = -1;
        int r = open_dir(dir, create, &dfd);
        if (r < 0)
                return r;
        if (create && mkdirat(dfd, ORDER_DIR, 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dfd, ORDER_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

int state_order_claim(const char *dir, const char *change_order_id, const char *key) {
        if (!dir || !change_order_id || !key)
                return -EINVAL;
        _cleanup_free_ char *name = escape_name(change_order_id, "");
        if (!name)
                return -errno;
        _cleanup_close_ int odfd = -1;
        int r = open_order_dir(dir, true, &odfd);
        if (r < 0)
                return r;
        int fd = openat(odfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        _cleanup_free_ char *text = strdup_printf("%s %lld\n", key, (long long) time(NULL));
        r = text ? write_all(fd, text, strlen(text)) : -ENOMEM;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && fsync(odfd) < 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(odfd, name, 0);
        return r;
}

int state_order_claimed(const char *dir, const char *change_order_id) {
        if (!dir || !change_order_id)
                return -EINVAL;
        _cleanup_free_ char *name = escape_name(change_order_id, "");
        if (!name)
                return -errno;
        _cleanup_close_ int odfd = -1;
        int r = open_order_dir(dir, false, &odfd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return entry_exists(odfd, name);
}

int state_order_release(const char *dir, const char *change_order_id) {
        if (!dir || !change_order_id)
                return -EINVAL;
        _cleanup_free_ char *name = escape_name(change_order_id, "");
        if (!name)
                return -errno;
        _cleanup_close_ int odfd = -1;
        int r = open_order_dir(dir, false, &odfd);
        if (r < 0)
                return r;
        if (unlinkat(odfd, name, 0) < 0)
                return -errno;
        return fsync(odfd) < 0 ? -errno : 0;
}

/* ---- repair ----------------------------------------------------------------- */

int state_repair(const char *dir, const char *key, const char *name, char **ret_moved_to,
                 size_t *ret_recovered, char **ret_error) {
        *ret_error = NULL;
        *ret_moved_to = NULL;
        *ret_recovered = 0;
        _cleanup_free_ char *kname = file_name(key);
        _cleanup_free_ char *nname = name && *name ? file_name(name) : NULL;
        if (!kname)
                return -errno;
        _cleanup_close_ int dfd = -1;
        int r = open_dir(dir, false, &dfd);
        if (r < 0) {
                *ret_error = strdup_printf("cannot open state directory %s: %s", dir, strerror(-r));
                return r;
        }
        int have_key = entry_exists(dfd, kname);
        int have_named = nname && !streq(nname, kname) ? entry_exists(dfd, nname) : 0;
        if (have_key < 0 || have_named < 0)
                return have_key < 0 ? have_key : have_named;
        const char *target = have_key ? kname : have_named ? nname : NULL;
        if (!target)
                return -ENOENT;

        _cleanup_(app_state_donep) app_state s = {};
        _cleanup_free_ char *reason = NULL, *text = NULL;
        size_t len = 0;
        r = read_record(dfd, target, target == kname ? key : name, &s, &reason, &text, &len);
        if (r == 0)
                return 1;
        if (r < 0 && r != -ENOENT)
                return r;

        app_state_done(&s);
        int n = text ? state_recover_text(text, len, key, now_realtime_ms(), &s) : 0;
        if (n < 0)
                return n;
        /* what the text held is wall clock; save_in writes steady as wall */
        state_convert_times(&s, wall_minus_steady_ms(), false);
        if (!text && (r = empty_state(&s, key)) < 0)
                return r;
        _cleanup_free_ char *moved = NULL;
        r = move_aside(dfd, target, ".broken", &moved);
        if (r < 0) {
                *ret_error = strdup_printf("cannot move %s/%s aside: %s", dir, target, strerror(-r));
                return r;
        }
        r = save_in(dfd, &s);
        if (r < 0) {
                *ret_error = strdup_printf("moved %s/%s to %s, but cannot write a fresh record %s/%s: %s", dir,
                                           target, moved, dir, kname, strerror(-r));
                return r;
        }
        *ret_moved_to = strdup_printf("%s/%s", dir, moved);
        *ret_recovered = (size_t) n;
        return 0;
}
