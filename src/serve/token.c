/* SPDX-License-Identifier: MIT */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "safe_open.h"
#include "util.h"

#define ALERTS_TOKEN_MAX 4096

int token_read(const config *cfg, char **ret_token, size_t *ret_len, char **ret_error) {
        _cleanup_free_ char *cred_path = NULL;
        const char *path = cfg->alerts_token_file;
        if (!path) {
                const char *dir = getenv("CREDENTIALS_DIRECTORY");
                if (dir && *dir) {
                        cred_path = strdup_printf("%s/alert-token", dir);
                        if (!cred_path)
                                return -ENOMEM;
                        if (access(cred_path, F_OK) < 0 && errno == ENOENT)
                                cred_path = mfree(cred_path);
                }
                path = cred_path;
        }
        if (!path) {
                *ret_error = strdup(
                        "alerts.listen is set but no alert token is configured, and the listener will not "
                        "accept unauthenticated rollback requests: set alerts.token_file to a file holding "
                        "the bearer token, or pass it as a systemd credential named alert-token "
                        "(LoadCredential=alert-token:/etc/rollguard/alert-token)");
                return -ENOKEY;
        }

        /* A FIFO or device in its place must not hang the loop (issue 12). */
        int fd = -1;
        _cleanup_free_ char *why = NULL;
        int o = safe_open_read(AT_FDCWD, path, &(safe_open_opts){ .max_size = ALERTS_TOKEN_MAX + 1 }, &fd, &why);
        if (o < 0) {
                *ret_error = strdup_printf("cannot read the alert token: %s", why ? why : strerror(-o));
                return o;
        }
        char buf[ALERTS_TOKEN_MAX + 1];
        size_t len = 0;
        int r = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof buf - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        *ret_error = strdup_printf("cannot read alert token file %s: %s", path, strerror(errno));
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len == sizeof buf)
                        break;
        }
        close(fd);

        if (r == 0 && len > ALERTS_TOKEN_MAX) {
                r = -EFBIG;
                *ret_error = strdup_printf("alert token file %s is larger than %d bytes", path, ALERTS_TOKEN_MAX);
        }
        if (r == 0) {
                /* Editors and `echo` add one newline; strip exactly one. */
                if (len > 0 && buf[len - 1] == '\n')
                        len--;
                if (len > 0 && buf[len - 1] == '\r')
                        len--;
                if (len == 0) {
                        r = -EINVAL;
                        *ret_error = strdup_printf("alert token file %s is empty", path);
                }
        }
        for (size_t i = 0; r == 0 && i < len; i++) {
                unsigned char c = (unsigned char)buf[i];
                /* It must survive a trip through an HTTP header unchanged. */
                if (c <= 0x20 || c == 0x7f) {
                        r = -EINVAL;
                        *ret_error = strdup_printf(
                                "alert token file %s: the token contains whitespace or control characters", path);
                }
        }
        if (r == 0) {
                char *t = malloc(len + 1);
                if (!t)
                        r = -ENOMEM;
                else {
                        memcpy(t, buf, len);
                        t[len] = '\0';
                        *ret_token = t;
                        *ret_len = len;
                }
        }
        OPENSSL_cleanse(buf, sizeof buf);
        return r;
}

/* Constant time in the token's content: the length check comes first and
 * decides nothing about the bytes; CRYPTO_memcmp then looks at all of them. */
bool token_check(const char *token, size_t token_len, const char *header) {
        if (!header || !token)
                return false;
        const char *p = header;
        while (*p == ' ' || *p == '\t')
                p++;
        if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
                return false;
        p += 6;
        while (*p == ' ' || *p == '\t')
                p++;
        size_t n = strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
        if (n != token_len)
                return false;
        return CRYPTO_memcmp(p, token, n) == 0;
}
