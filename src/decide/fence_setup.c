/* SPDX-License-Identifier: MIT */
/* From `ha:` to an etcd client: where the TLS files and the password are,
 * and reading the password (a secret: wiped, never printed). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fence_internal.h"
#include "util.h"

#define PASSWORD_MAX 4096
#define PASSWORD_CREDENTIAL "etcd-password"

/* $CREDENTIALS_DIRECTORY/<base name of path>, when it exists; else NULL. */
static char *credential_path(const char *path) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir || !path)
                return NULL;
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!*base)
                return NULL;
        char *p = strdup_printf("%s/%s", dir, base);
        if (p && access(p, F_OK) < 0)
                p = mfree(p);
        return p;
}

/* The file where the config says when it can be read there; else the
 * systemd credential of that name (LoadCredential=, readable by the
 * service's dynamic user when the original is not); else the path as
 * given, so the error names what the config says. */
static int resolve(const char *path, char **ret) {
        *ret = NULL;
        if (!path)
                return 0;
        if (access(path, R_OK) == 0) {
                *ret = strdup(path);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = credential_path(path);
        if (!*ret)
                *ret = strdup(path);
        return *ret ? 0 : -ENOMEM;
}

static int check_readable(const char *key, const char *path, char **ret_error) {
        if (!path || access(path, R_OK) == 0)
                return 0;
        int e = errno;
        *ret_error = strdup_printf("%s: cannot read %s: %s", key, path, strerror(e));
        return -e;
}

static int read_password(const char *path, char **ret, char **ret_error) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int e = errno;
                *ret_error = strdup_printf("ha: cannot read the etcd password file %s: %s", path, strerror(e));
                return -e;
        }
        char *buf = NULL;
        size_t len = 0;
        int r = read_fd_limited(fd, PASSWORD_MAX + 1, false, &buf, &len);
        close(fd);
        if (r >= 0 && len > PASSWORD_MAX)
                r = -EFBIG;
        if (r >= 0) {
                /* Editors and `echo` add one newline; strip exactly one. */
                if (len > 0 && buf[len - 1] == '\n')
                        buf[--len] = 0;
                if (len > 0 && buf[len - 1] == '\r')
                        buf[--len] = 0;
                if (len == 0 || memchr(buf, 0, len))
                        r = -EINVAL;
        }
        if (r < 0) {
                free_secret(buf);
                *ret_error = strdup_printf("ha: the etcd password file %s is %s", path,
                                           r == -EINVAL ? "empty or not text" : r == -EFBIG ? "too large" : strerror(-r));
                return r;
        }
        *ret = buf;
        return 0;
}

int fence_setup_etcd(http_client *http, const ha_config *h, etcd_client **ret, char **ret_error) {
        _cleanup_free_ char *ca = NULL, *cert = NULL, *key = NULL, *pwfile = NULL;
        _cleanup_secret_ char *password = NULL;
        int r;
        if ((r = resolve(h->ca_file, &ca)) < 0 || (r = resolve(h->cert_file, &cert)) < 0 ||
            (r = resolve(h->key_file, &key)) < 0)
                return r;
        if ((r = check_readable("ha.tls.ca_file", ca, ret_error)) < 0 ||
            (r = check_readable("ha.tls.cert_file", cert, ret_error)) < 0 ||
            (r = check_readable("ha.tls.key_file", key, ret_error)) < 0)
                return r;
        if (h->user) {
                if (h->password_file)
                        r = resolve(h->password_file, &pwfile);
                else
                        pwfile = credential_path(PASSWORD_CREDENTIAL);
                if (r < 0)
                        return r;
                if (!pwfile) {
                        *ret_error = strdup("ha.user is set but there is no password: set ha.password_file, or pass "
                                            "it as a systemd credential named " PASSWORD_CREDENTIAL
                                            " (LoadCredential=" PASSWORD_CREDENTIAL ":/etc/rollguard/etcd-password)");
                        return -ENOKEY;
                }
                if ((r = read_password(pwfile, &password, ret_error)) < 0)
                        return r;
        }
        etcd_options o = {
                .endpoints = (const char *const *)h->etcd,
                .n_endpoints = h->n_etcd,
                .user = h->user,
                .password = password,
                .ca_file = ca,
                .cert_file = cert,
                .key_file = key,
                /* A keepalive must be answered well within the tick (ttl/3),
                 * with time left to try the next endpoint. */
                .timeout_usec = h->lease_ttl_usec / 6,
        };
        return etcd_client_new(http, &o, ret);
}
