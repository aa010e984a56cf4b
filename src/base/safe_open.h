/* SPDX-License-Identifier: MIT */
/* Opening the files rollguard reads (config, credentials, tokens, state) and
 * the state directory without being fooled by what a hostile or careless host
 * put there instead: a FIFO that blocks open(2) or read(2) forever, a
 * directory, a device, a symlink planted to make us write elsewhere, a file
 * owned by someone else. Every open here is O_NONBLOCK (so a FIFO cannot
 * hang us before fstat(2) says what it is) and O_CLOEXEC. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct safe_open_opts {
        bool nofollow;     /* a symlink as the last component is refused */
        bool check_owner;  /* must belong to the effective uid */
        size_t max_size;   /* larger is refused (0: no cap) */
} safe_open_opts;

/* "regular file", "directory", "FIFO", "socket", "character device",
 * "block device", "symbolic link" or "unknown file type". Pure. */
const char *file_type_name(mode_t mode);

/* Pure: may this stat be read as one of our files? 0, or a negative errno
 * (-EISDIR, -EBADFD for any other non-regular type, -EPERM for a foreign
 * owner, -EFBIG over the cap) with `why` saying what it is. */
int safe_check_file_stat(const struct stat *st, const safe_open_opts *o, uid_t uid, char *why, size_t whysz);
/* Pure: may this stat be our state directory? It must be a directory owned by
 * uid and writable by nobody else (0, -ENOTDIR, -EPERM with `why`). */
int safe_check_dir_stat(const struct stat *st, uid_t uid, char *why, size_t whysz);

/* Opens path (relative to dirfd, or AT_FDCWD) for reading and checks it as
 * above. *ret_error (malloc'ed) names the path and what is wrong. */
int safe_open_read(int dirfd, const char *path, const safe_open_opts *o, int *ret_fd, char **ret_error);
/* safe_open_read and read the whole file (NUL-terminated, wiped on growth
 * like read_fd_limited). -EFBIG over o->max_size. */
int safe_read_file(int dirfd, const char *path, const safe_open_opts *o, char **ret, size_t *ret_len,
                   char **ret_error);

/* Opens (creating it 0700 when create and missing) the state directory and
 * checks it with safe_check_dir_stat. */
int safe_open_state_dir(const char *path, bool create, int *ret_fd, char **ret_error);

/* Creates "<base>.tmp.<16 random hex>" in dirfd with O_EXCL|O_NOFOLLOW, mode
 * 0600: never an existing file, never through a symlink. */
int safe_create_temp(int dirfd, const char *base, char **ret_name, int *ret_fd);
