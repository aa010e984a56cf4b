/* SPDX-License-Identifier: MIT */
#include "state_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state_json.h"
#include "util.h"

/* Our own files are a few KiB (64 acts at most); anything this big is not one. */
#define STATE_FILE_MAX (4 * 1024 * 1024)

static void app_state_donep(app_state *s) {
        app_state_done(s);
}

static bool is_plain_filename_byte(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

/* Escaping is injective (a '%' in the name is itself escaped), so two apps
 * can never share a file; a leading '.' is escaped so no name gives a hidden
 * file, "." or "..". */
char *state_path(const char *dir, const char *app) {
        if (!dir || !app || !*app) {
                errno = EINVAL;
                return NULL;
        }
        size_t dir_len = strlen(dir), app_len = strlen(app);
        if (app_len > (SIZE_MAX - dir_len - 16) / 3) {
                errno = ENAMETOOLONG;
                return NULL;
        }
        char *path = malloc(dir_len + 1 + 3 * app_len + sizeof(".json"));
        if (!path)
                return NULL;

        static const char hex[] = "0123456789ABCDEF";
        char *p = path;
        memcpy(p, dir, dir_len);
        p += dir_len;
        *p++ = '/';
        for (size_t i = 0; i < app_len; i++) {
                unsigned char c = (unsigned char) app[i];
                if (is_plain_filename_byte(c) && !(i == 0 && c == '.'))
                        *p++ = (char) c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        memcpy(p, ".json", sizeof(".json"));
        return path;
}

/* ---- files ----------------------------------------------------------------- */

/* Moves a bad file to "<path>.corrupt-<unix seconds>[.N]" without ever
 * replacing an earlier one: each is evidence of something. */
static int move_aside(const char *path, char **ret_newpath) {
        long long now = (long long) time(NULL);
        for (unsigned i = 0; i < 1000; i++) {
                _cleanup_free_ char *n = i == 0 ? strdup_printf("%s.corrupt-%lld", path, now)
                                                : strdup_printf("%s.corrupt-%lld.%u", path, now, i);
                if (!n)
                        return -ENOMEM;
                if (renameat2(AT_FDCWD, path, AT_FDCWD, n, RENAME_NOREPLACE) >= 0) {
                        *ret_newpath = TAKE_PTR(n);
                        return 0;
                }
                if (errno == EEXIST)
                        continue;
                if (errno != EINVAL && errno != ENOSYS)
                        return -errno;
                /* the file system cannot do RENAME_NOREPLACE; we are the only
                 * writer of this directory, so check-then-rename will do */
                if (access(n, F_OK) >= 0)
                        continue;
                if (rename(path, n) < 0)
                        return -errno;
                *ret_newpath = TAKE_PTR(n);
                return 0;
        }
        return -EEXIST;
}

static int empty_state(app_state *out, const char *app) {
        *out = (app_state) {};
        out->app = strdup(app);
        return out->app ? 0 : -ENOMEM;
}

int state_load(const char *dir, const char *app, app_state *out, char **ret_warning) {
        if (ret_warning)
                *ret_warning = NULL;
        if (!out)
                return -EINVAL;
        *out = (app_state) {};
        if (!dir || !app || !*app)
                return -EINVAL;

        _cleanup_free_ char *path = state_path(dir, app);
        if (!path)
                return -errno;

        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return empty_state(out, app);
                return -errno;
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        /* one byte past the cap tells "too big" from "exactly the cap" */
        int r = read_fd_limited(fd, (size_t) STATE_FILE_MAX + 1, true, &text, &len);
        close(fd);
        if (r < 0)
                return r;

        _cleanup_free_ char *reason = NULL;
        _cleanup_(app_state_donep) app_state s = {};
        const char *nul = memchr(text, 0, len);
        if (len > STATE_FILE_MAX)
                reason = strdup_printf("larger than %d bytes", STATE_FILE_MAX);
        else if (nul)
                reason = strdup_printf("NUL byte at byte %zu", (size_t) (nul - text));
        else {
                r = state_from_json(text, &s, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && !streq(s.app, app)) {
                        free(reason);
                        reason = strdup_printf("it is the record of app \"%s\"", s.app);
                        r = -EBADMSG;
                }
                if (r >= 0) {
                        *out = s;
                        s = (app_state) {};
                        return 0;
                }
                if (!reason)
                        reason = strdup("unreadable");
        }
        if (!reason)
                return -ENOMEM;

        _cleanup_free_ char *newpath = NULL;
        r = move_aside(path, &newpath);
        if (r < 0)
                /* not moved: starting empty would overwrite it on the next
                 * save, and with it any intent it still holds */
                return r;

        if (ret_warning) {
                *ret_warning = strdup_printf("state file %s is corrupt (%s); moved to %s and "
                                             "starting empty for this app",
                                             path, reason, newpath);
                if (!*ret_warning)
                        return -ENOMEM;
        }
        return empty_state(out, app);
}

static int fsync_directory(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int state_save(const char *dir, const app_state *s) {
        if (!dir || !s || !app_state_valid(s))
                return -EINVAL;

        _cleanup_free_ char *text = state_to_json(s);
        if (!text)
                return -ENOMEM;
        _cleanup_free_ char *path = state_path(dir, s->app);
        if (!path)
                return -errno;
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp.%d", path, (int) getpid());
        if (!tmp)
                return -ENOMEM;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;

        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;

        int r;
        /* a leftover temp file of an earlier process with our pid keeps its
         * old mode through O_CREAT */
        if (fchmod(fd, 0600) < 0)
                r = -errno;
        else
                r = write_all(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        /* the rename itself is only durable once the directory is */
        return fsync_directory(dir);
}
