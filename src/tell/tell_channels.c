/* SPDX-License-Identifier: MIT */
/* A channel's url and secret: which file, read how. Nothing read here is
 * ever printed; messages name the file. */
#include "tell.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define SECRET_FILE_MAX 4096

char *tell_credential_path(const char *configured, const char *credentials_dir,
                           bool (*usable)(const char *path)) {
        bool have_dir = credentials_dir && *credentials_dir;
        if (configured[0] == '/') {
                if (usable(configured) || !have_dir)
                        return strdup(configured);
                /* The unit passed it with LoadCredential=NAME:PATH, and the
                 * service's dynamic user cannot read PATH itself. */
                const char *base = strrchr(configured, '/') + 1;
                if (*base) {
                        _cleanup_free_ char *p = strdup_printf("%s/%s", credentials_dir, base);
                        if (!p)
                                return NULL;
                        if (usable(p))
                                return TAKE_PTR(p);
                }
                return strdup(configured);
        }
        if (!have_dir)
                return strdup(configured);
        return strdup_printf("%s/%s", credentials_dir, configured);
}

const char *tell_url_host(const char *url, char *buf, size_t bufsz) {
        const char *p = url ? strstr(url, "://") : NULL;
        if (!p) {
                snprintf(buf, bufsz, "?");
                return buf;
        }
        p += 3;
        size_t n = strcspn(p, "/?#");
        /* user:password@host: keep only what follows the @ */
        const char *at = memchr(p, '@', n);
        if (at) {
                n -= (size_t)(at + 1 - p);
                p = at + 1;
        }
        snprintf(buf, bufsz, "%.*s", (int)(n ? n : 1), n ? p : "?");
        return buf;
}

static bool path_readable(const char *p) {
        return access(p, R_OK) == 0;
}

/* The file's content less one trailing newline; 0 or -errno with a message
 * naming what and where. */
static int read_secret_file(const char *path, const char *what, const char *chan, char **ret, char **ret_error) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int e = errno;
                *ret_error = strdup_printf("channel %s: cannot read %s %s: %s%s", chan, what, path, strerror(e),
                                           path[0] != '/' ? " (a relative name is looked up in "
                                                            "$CREDENTIALS_DIRECTORY, which is not set)"
                                                          : "");
                return -e;
        }
        char *buf = NULL;
        size_t len = 0;
        int r = read_fd_limited(fd, SECRET_FILE_MAX + 1, false, &buf, &len);
        close(fd);
        if (r < 0) {
                *ret_error = strdup_printf("channel %s: cannot read %s %s: %s", chan, what, path, strerror(-r));
                return r;
        }
        if (len > SECRET_FILE_MAX) {
                free_secret(buf);
                *ret_error = strdup_printf("channel %s: %s %s is larger than %d bytes", chan, what, path,
                                           SECRET_FILE_MAX);
                return -EFBIG;
        }
        if (len > 0 && buf[len - 1] == '\n')
                buf[--len] = 0;
        if (len > 0 && buf[len - 1] == '\r')
                buf[--len] = 0;
        if (len == 0 || strlen(buf) != len) {
                free_secret(buf);
                *ret_error = strdup_printf("channel %s: %s %s is empty or holds a NUL byte", chan, what, path);
                return -EINVAL;
        }
        *ret = buf;
        return 0;
}

static bool url_ok(const char *u) {
        if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
                return false;
        for (const char *p = u; *p; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                        return false;
        return true;
}

int tell_channel_load(const notify_config *nc, const char *credentials_dir, notify_channel *out,
                      char **ret_url_from, char **ret_secret_from, char **ret_error) {
        _cleanup_free_ char *url_path = NULL, *secret_path = NULL;
        int r;

        *ret_error = NULL;
        r = notify_channel_copy(&nc->ch, out);
        if (r < 0)
                return r;
        if (nc->url_file) {
                url_path = tell_credential_path(nc->url_file, credentials_dir, path_readable);
                if (!url_path) {
                        r = -ENOMEM;
                        goto fail;
                }
                free_secret(out->url);
                out->url = NULL;
                r = read_secret_file(url_path, "url_file", nc->ch.name, &out->url, ret_error);
                if (r < 0)
                        goto fail;
                if (!url_ok(out->url)) {
                        *ret_error = strdup_printf("channel %s: url_file %s does not hold an http:// or https:// "
                                                   "URL on one line (its content is not shown)",
                                                   nc->ch.name, url_path);
                        r = -EINVAL;
                        goto fail;
                }
        }
        if (nc->secret_file) {
                secret_path = tell_credential_path(nc->secret_file, credentials_dir, path_readable);
                if (!secret_path) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = read_secret_file(secret_path, "secret_file", nc->ch.name, &out->secret, ret_error);
                if (r < 0)
                        goto fail;
        }
        if (ret_url_from)
                *ret_url_from = TAKE_PTR(url_path);
        if (ret_secret_from)
                *ret_secret_from = TAKE_PTR(secret_path);
        return 0;
fail:
        notify_channel_done(out);
        if (!*ret_error)
                *ret_error = strdup_printf("channel %s: %s", nc->ch.name, strerror(-r));
        return r;
}

void tell_channels_free(notify_channel *c, size_t n) {
        for (size_t i = 0; c && i < n; i++)
                notify_channel_done(&c[i]);
        free(c);
}

int tell_channels_load(const config *cfg, notify_channel **ret, size_t *ret_n) {
        notify_channel *c = calloc(cfg->n_notify ? cfg->n_notify : 1, sizeof *c);
        if (!c)
                return -ENOMEM;
        size_t n = 0;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        for (size_t i = 0; i < cfg->n_notify; i++) {
                _cleanup_free_ char *err = NULL;
                int r = tell_channel_load(&cfg->notify[i], dir, &c[n], NULL, NULL, &err);
                if (r == -ENOMEM) {
                        tell_channels_free(c, n);
                        return r;
                }
                if (r < 0) {
                        log_fields f = { .channel = cfg->notify[i].ch.name };
                        log_event_send(EV_NOTIFY_FAILED, LOG_ERR, &f, "%s; the channel is left out until it "
                                       "can be read (fix it and reload)", err);
                        continue;
                }
                n++;
        }
        *ret = c;
        *ret_n = n;
        return 0;
}
