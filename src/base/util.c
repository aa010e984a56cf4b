/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

uint64_t now_monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

int64_t now_steady_ms(void) {
        static int64_t anchor;
        static bool have;
        int64_t mono = (int64_t)(now_monotonic_usec() / USEC_PER_MSEC);
        if (!have) {
                anchor = now_realtime_ms() - mono;
                have = true;
        }
        return mono + anchor;
}

int64_t wall_minus_steady_ms(void) {
        static int64_t cached;
        static bool have;
        int64_t fresh = now_realtime_ms() - now_steady_ms();
        if (!have || fresh - cached > 1000 || cached - fresh > 1000) {
                cached = fresh;
                have = true;
        }
        return cached;
}

int64_t now_realtime_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        /* longest suffix first so "ms" is not read as "m" + junk */
        { "ms", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "m", USEC_PER_MIN },
        { "h", USEC_PER_HOUR },
        { "d", 24 * USEC_PER_HOUR },
};

int parse_duration(const char *s, uint64_t *ret_usec) {
        if (!s || !*s)
                return -EINVAL;
        if (streq(s, "0")) {
                *ret_usec = 0;
                return 0;
        }
        uint64_t total = 0;
        const char *p = s;
        while (*p) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                uint64_t n = 0;
                while (*p >= '0' && *p <= '9') {
                        if (n > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        n = n * 10 + (uint64_t)(*p - '0');
                        p++;
                }
                size_t i;
                for (i = 0; i < ELEMENTSOF(duration_units); i++) {
                        size_t l = strlen(duration_units[i].suffix);
                        if (strncmp(p, duration_units[i].suffix, l) == 0 &&
                            !(l == 1 && p[0] == 'm' && p[1] == 's'))
                                break;
                }
                if (i == ELEMENTSOF(duration_units))
                        return -EINVAL; /* missing or unknown unit */
                if (n > UINT64_MAX / duration_units[i].usec)
                        return -ERANGE;
                uint64_t add = n * duration_units[i].usec;
                if (total > UINT64_MAX - add)
                        return -ERANGE;
                total += add;
                p += strlen(duration_units[i].suffix);
        }
        *ret_usec = total;
        return 0;
}

const char *format_duration(uint64_t usec, char *buf, size_t bufsz) {
        if (usec == 0) {
                snprintf(buf, bufsz, "0s");
                return buf;
        }
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "d", 24 * USEC_PER_HOUR }, { "h", USEC_PER_HOUR }, { "m", USEC_PER_MIN },
                { "s", USEC_PER_SEC },       { "ms", USEC_PER_MSEC }, { "us", 1 },
        };
        size_t off = 0;
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(units) && usec > 0; i++) {
                uint64_t n = usec / units[i].usec;
                if (n == 0)
                        continue;
                usec -= n * units[i].usec;
                int w = snprintf(buf + off, bufsz > off ? bufsz - off : 0, "%" PRIu64 "%s", n,
                                 units[i].suffix);
                if (w < 0 || (size_t)w >= bufsz - off)
                        break;
                off += (size_t)w;
        }
        return buf;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        const char *p = s;
        bool neg = false;
        if (*p == '-' || *p == '+') {
                neg = *p == '-';
                p++;
        }
        if (*p < '0' || *p > '9')
                return -EINVAL;
        /* accumulate negatively so INT64_MIN parses */
        int64_t v = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
                int d = *p - '0';
                if (v < (INT64_MIN + d) / 10)
                        return -ERANGE;
                v = v * 10 - d;
        }
        if (*p)
                return -EINVAL;
        if (!neg) {
                if (v == INT64_MIN)
                        return -ERANGE;
                v = -v;
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

void free_secret(char *s) {
        if (!s)
                return;
        OPENSSL_cleanse(s, strlen(s));
        free(s);
}

char *strdup_null(const char *s) {
        return s ? strdup(s) : NULL;
}

int free_and_strdup(char **dst, const char *src) {
        char *n = NULL;
        if (src) {
                n = strdup(src);
                if (!n)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = n;
        return 0;
}

/* Written once into a buffer of exactly the right size. Not vasprintf: it
 * grows its buffer by realloc and frees the outgrown copies unwiped, and
 * these strings carry STS tokens into request headers (the sanitizer build,
 * whose allocator keeps freed blocks, showed the copies). Most strings fit
 * the stack buffer, which saves formatting twice; it is wiped after use. */
char *strdup_printf(const char *fmt, ...) {
        char stack[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(stack, sizeof stack, fmt, ap);
        va_end(ap);
        if (n < 0)
                return NULL;
        char *s = malloc((size_t)n + 1);
        if (s && (size_t)n < sizeof stack)
                memcpy(s, stack, (size_t)n + 1);
        else if (s) {
                va_start(ap, fmt);
                int m = vsnprintf(s, (size_t)n + 1, fmt, ap);
                va_end(ap);
                if (m != n)
                        s = mfree(s);
        }
        OPENSSL_cleanse(stack, (size_t)n < sizeof stack ? (size_t)n : sizeof stack);
        return s;
}

uint64_t random_u64(void) {
        uint64_t v = 0;
        /* GRND_NONBLOCK: jitter must never wait for entropy at early boot;
         * fall back to a clock mix, which is plenty for spreading polls. */
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                v = ((uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull) ^ (uint64_t)ts.tv_sec;
        }
        return v;
}

uint64_t jitter_usec(uint64_t value, double fraction) {
        if (value == 0 || fraction <= 0)
                return value;
        double span = (double)value * fraction;
        double r = (double)(random_u64() >> 11) / (double)(UINT64_C(1) << 53); /* [0,1) */
        double v = (double)value - span + 2 * span * r;
        uint64_t u = v < 0 ? 0 : (uint64_t)v;
        /* whole milliseconds: nobody needs "1s837ms906us" in a log line */
        return u >= USEC_PER_MSEC ? u / USEC_PER_MSEC * USEC_PER_MSEC : u;
}

int read_fd_limited(int fd, size_t limit, bool regular_only, char **ret, size_t *ret_len) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (regular_only && !S_ISREG(st.st_mode))
                return -EBADFD;
        /* st_size is a hint (pipes say 0, files grow): start there, grow if needed */
        size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < limit
                             ? (size_t)st.st_size + 1
                             : (limit < 4096 ? limit : 4096);
        char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        for (;;) {
                if (len == cap) {
                        if (cap >= limit)
                                break;
                        size_t ncap = cap * 2 < limit ? cap * 2 : limit;
                        char *n = malloc(ncap + 1);
                        if (!n) {
                                OPENSSL_cleanse(buf, cap + 1);
                                free(buf);
                                return -ENOMEM;
                        }
                        memcpy(n, buf, len);
                        OPENSSL_cleanse(buf, cap + 1);
                        free(buf);
                        buf = n;
                        cap = ncap;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = errno;
                        OPENSSL_cleanse(buf, cap + 1);
                        free(buf);
                        return -e;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        buf[len] = 0;
        *ret = buf;
        *ret_len = len;
        return 0;
}

int write_all(int fd, const void *p, size_t n) {
        const char *c = p;
        while (n > 0) {
                ssize_t k = write(fd, c, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c += k;
                n -= (size_t)k;
        }
        return 0;
}
