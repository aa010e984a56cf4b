/* SPDX-License-Identifier: MIT */
/* Small helpers every module uses: scope cleanup, time, durations, strings. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Move ownership out of a _cleanup_ local: returns the pointer, leaves NULL behind. */
#define TAKE_PTR(p)                        \
        ({                                 \
                __typeof__(p) _t_ = (p);   \
                (p) = NULL;                \
                _t_;                       \
        })

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MIN (UINT64_C(60) * USEC_PER_SEC)
#define USEC_PER_HOUR (UINT64_C(60) * USEC_PER_MIN)
#define USEC_INFINITY UINT64_MAX

/* CLOCK_MONOTONIC in microseconds: for scheduling. */
uint64_t now_monotonic_usec(void);
/* CLOCK_MONOTONIC in milliseconds, anchored so that it read the wall clock
 * when first asked (so wall times of the records convert to positive steady
 * ones). The clock of `for`, cooldown and the breaker: a step of the wall
 * clock after that neither fires a rule early nor stretches a cooldown. */
int64_t now_steady_ms(void);
/* Wall minus steady, the conversion between the two. Kept while it moves
 * by less than a second, so converting back and forth is exact (two clocks
 * read a microsecond apart round differently); a real step is followed. */
int64_t wall_minus_steady_ms(void);
/* CLOCK_REALTIME in milliseconds since the epoch: the clock the cloud's
 * timestamps (CreateTime, UpdateTime) are in, so rules compare like with like. */
int64_t now_realtime_ms(void);

/* "90s", "5m", "1h30m", "250ms", "2d", "0". A bare number is rejected so a
 * forgotten unit is an error instead of a surprise. Returns 0 or -EINVAL/-ERANGE. */
int parse_duration(const char *s, uint64_t *ret_usec);
/* Shortest exact form: 90s -> "1m30s", 0 -> "0s". buf needs 32 bytes. */
const char *format_duration(uint64_t usec, char *buf, size_t bufsz);

/* Parses a whole decimal integer in [min, max]; rejects trailing junk. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);

/* Free a string that held a secret: wipe it first (never optimised away). */
void free_secret(char *s);
static inline void free_secretp(char **p) {
        free_secret(*p);
}
#define _cleanup_secret_ _cleanup_(free_secretp)

/* strdup that keeps NULL as NULL. Returns NULL only on NULL input or OOM
 * (the caller tells the two apart by the input). */
char *strdup_null(const char *s);

/* Replace *dst with a copy of src (NULL allowed). Returns 0 or -ENOMEM. */
int free_and_strdup(char **dst, const char *src);

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
static inline bool streq_null(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

/* Reads fd to its end, but never more than `limit` bytes (callers pass
 * their maximum + 1 to tell "too large" from "exactly the maximum"). The
 * buffer is NUL-terminated. It grows by copy-and-wipe, never realloc, so a
 * secret read with it leaves no stray copy in freed memory. -EISDIR for a
 * directory, -EBADFD for anything but a regular file when regular_only. */
int read_fd_limited(int fd, size_t limit, bool regular_only, char **ret, size_t *ret_len);
/* write(2) until done, retrying EINTR. 0 or -errno. */
int write_all(int fd, const void *p, size_t n);

/* malloc'ed printf; NULL on OOM. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);

/* Uniform random in [0, n) from a non-blocking source (for jitter, nonces). */
uint64_t random_u64(void);
/* value * (1 +- fraction), fraction e.g. 0.1 for +-10% */
uint64_t jitter_usec(uint64_t value, double fraction);
