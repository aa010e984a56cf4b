/* SPDX-License-Identifier: MIT */
#include "safe_open.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "util.h"

const char *file_type_name(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFREG:
                return "regular file";
        case S_IFDIR:
                return "directory";
        case S_IFIFO:
                return "FIFO";
        case S_IFSOCK:
                return "socket";
        case S_IFCHR:
                return "character device";
        case S_IFBLK:
                return "block device";
        case S_IFLNK:
                return "symbolic link";
        default:
                return "unknown file type";
        }
}

int safe_check_file_stat(const struct stat *st, const safe_open_opts *o, uid_t uid, char *why, size_t whysz) {
        if (!S_ISREG(st->st_mode)) {
                snprintf(why, whysz, "is a %s, not a regular file", file_type_name(st->st_mode));
                return S_ISDIR(st->st_mode) ? -EISDIR : -EBADFD;
        }
        if (o && o->check_owner && st->st_uid != uid) {
                snprintf(why, whysz, "is owned by uid %u, not by rollguard's uid %u", (unsigned) st->st_uid,
                         (unsigned) uid);
                return -EPERM;
        }
        if (o && o->max_size > 0 && (uint64_t) st->st_size > o->max_size) {
                snprintf(why, whysz, "is larger than %zu bytes (%" PRIu64 ")", o->max_size,
                         (uint64_t) st->st_size);
                return -EFBIG;
        }
        return 0;
}

int safe_check_dir_stat(const struct stat *st, uid_t uid, char *why, size_t whysz) {
        if (!S_ISDIR(st->st_mode)) {
                snprintf(why, whysz, "is a %s, not a directory", file_type_name(st->st_mode));
                return -ENOTDIR;
        }
        if (st->st_uid != uid) {
                snprintf(why, whysz, "is owned by uid %u, not by rollguard's uid %u; chown it",
                         (unsigned) st->st_uid, (unsigned) uid);
                return -EPERM;
        }
        if (st->st_mode & 022) {
                snprintf(why, whysz, "is writable by group or others (mode %04o); chmod 700 it",
                         (unsigned) (st->st_mode & 07777));
                return -EPERM;
        }
        return 0;
}

int safe_open_read(int dirfd, const char *path, const safe_open_opts *o, int *ret_fd, char **ret_error) {
        if (ret_error)
                *ret_error = NULL;
        int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (o && o->nofollow ? O_NOFOLLOW : 0);
        int fd = openat(dirfd, path, flags);
        if (fd < 0) {
                int e = errno;
                if (ret_error)
                        *ret_error = e == ELOOP && o && o->nofollow
                                             ? strdup_printf("%s is a symbolic link; refusing to follow it", path)
                                             : strdup_printf("%s: %s", path, strerror(e));
                return -e;
        }
        struct stat st;
        char why[128];
        int r = fstat(fd, &st) < 0 ? -errno : safe_check_file_stat(&st, o, geteuid(), why, sizeof why);
        if (r < 0) {
                if (ret_error)
                        *ret_error = r == -errno ? strdup_printf("%s: %s", path, strerror(-r))
                                                 : strdup_printf("%s %s", path, why);
                close(fd);
                return r;
        }
        /* a regular file: reads never block anyway, but say what we mean */
        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        *ret_fd = fd;
        return 0;
}

int safe_read_file(int dirfd, const char *path, const safe_open_opts *o, char **ret, size_t *ret_len,
                   char **ret_error) {
        int fd;
        int r = safe_open_read(dirfd, path, o, &fd, ret_error);
        if (r < 0)
                return r;
        size_t max = o && o->max_size ? o->max_size : SIZE_MAX - 1;
        char *buf = NULL;
        size_t len = 0;
        r = read_fd_limited(fd, max + 1, true, &buf, &len);
        close(fd);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup_printf("%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        if (len > max) {
                /* it grew between fstat and read */
                free_secret(buf);
                if (ret_error)
                        *ret_error = strdup_printf("%s is larger than %zu bytes", path, max);
                return -EFBIG;
        }
        *ret = buf;
        if (ret_len)
                *ret_len = len;
        return 0;
}

int safe_open_state_dir(const char *path, bool create, int *ret_fd, char **ret_error) {
        if (ret_error)
                *ret_error = NULL;
        if (create && mkdir(path, 0700) < 0 && errno != EEXIST) {
                int e = errno;
                if (ret_error)
                        *ret_error = strdup_printf("cannot create state directory %s: %s", path, strerror(e));
                return -e;
        }
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
                int e = errno;
                if (ret_error)
                        *ret_error = strdup_printf("cannot open state directory %s: %s", path, strerror(e));
                return -e;
        }
        struct stat st;
        char why[160];
        int r = fstat(fd, &st) < 0 ? -errno : safe_check_dir_stat(&st, geteuid(), why, sizeof why);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup_printf("state directory %s %s", path,
                                                   r == -errno ? strerror(-r) : why);
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int safe_create_temp(int dirfd, const char *base, char **ret_name, int *ret_fd) {
        for (unsigned i = 0; i < 16; i++) {
                _cleanup_free_ char *n = strdup_printf("%s.tmp.%016" PRIx64, base, random_u64());
                if (!n)
                        return -ENOMEM;
                int fd = openat(dirfd, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd >= 0) {
                        *ret_name = TAKE_PTR(n);
                        *ret_fd = fd;
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}
