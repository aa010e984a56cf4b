/* SPDX-License-Identifier: MIT */
/* The credential chain (environment, credentials.file,
 * $CREDENTIALS_DIRECTORY/aliyun, ~/.alibabacloud/credentials) and the
 * provider the API client asks. The INI reader is credentials_ini.c, the
 * ECS RAM role credentials_ecs.c. */
#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials_internal.h"
#include "log.h"
#include "safe_open.h"
#include "util.h"

/* A credentials file is a handful of lines; anything bigger is not one. */
#define CREDENTIALS_FILE_MAX (64u * 1024u)

#define ENV_ACCESS_KEY_ID "ALIBABA_CLOUD_ACCESS_KEY_ID"
#define ENV_ACCESS_KEY_SECRET "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
#define ENV_SECURITY_TOKEN "ALIBABA_CLOUD_SECURITY_TOKEN"
#define ENV_PROFILE "ALIBABA_CLOUD_PROFILE"
#define ENV_ECS_METADATA "ALIBABA_CLOUD_ECS_METADATA"

const char *cred_source_name(cred_source s) {
        switch (s) {
        case CRED_SOURCE_NONE:
                return "none";
        case CRED_SOURCE_ENV:
                return "environment";
        case CRED_SOURCE_FILE:
                return "file";
        case CRED_SOURCE_SYSTEMD:
                return "systemd-credential";
        case CRED_SOURCE_PROFILE:
                return "profile";
        case CRED_SOURCE_ECS_RAM_ROLE:
                return "ecs-ram-role";
        }
        return "unknown";
}

void credentials_done(credentials *c) {
        if (!c)
                return;
        free(c->access_key_id);
        free_secret(c->access_key_secret);
        free_secret(c->security_token);
        free(c->source_detail);
        memset(c, 0, sizeof *c);
}

static const char *env_from_process(const char *name) {
        return getenv(name);
}

/* A CR (an EnvironmentFile with CRLF line ends), LF or other control byte
 * in a credential would pass along and make every signed call fail as
 * "transient", forever: refused up front, naming the variable (never the
 * value). */
static bool has_control(const char *v) {
        for (; v && *v; v++)
                if ((unsigned char)*v < 0x20 || *v == 0x7f)
                        return true;
        return false;
}

static int env_check(env_lookup_fn env, const char *name, char **ret_error) {
        const char *v = (env ? env : env_from_process)(name);
        if (!has_control(v))
                return 0;
        cred_set_message(ret_error,
                         "environment variable %s contains a control character (a CR from an EnvironmentFile "
                         "with CRLF line ends?); fix its value",
                         name);
        return -EINVAL;
}

/* Unset and empty mean the same: `Environment=X=` is how units clear one. */
static const char *env_get(env_lookup_fn env, const char *name) {
        const char *v = (env ? env : env_from_process)(name);
        return v && *v ? v : NULL;
}

void cred_set_message(char **ret, const char *fmt, ...) {
        if (!ret)
                return;
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        free(*ret);
        *ret = s;
}

/* ---- files -------------------------------------------------------------- */

typedef struct file_text {
        char *data;
        size_t cap;
        mode_t mode;
} file_text;

/* The text holds secrets: wipe all of the buffer, not just up to a NUL. */
static void file_text_done(file_text *f) {
        if (f->data) {
                OPENSSL_cleanse(f->data, f->cap);
                free(f->data);
        }
        memset(f, 0, sizeof *f);
}

/* Reads a whole (small) file. -ENOENT when it does not exist, -EFBIG over
 * the cap, -EBADMSG when it holds a NUL byte. */
static int read_credentials_file(const char *path, file_text *ret, char **ret_why) {
        /* O_NONBLOCK and a regular file only: a FIFO here would hang `check`
         * and start-up in open(2) or read(2) */
        safe_open_opts o = { .max_size = CREDENTIALS_FILE_MAX };
        int fd;
        int r = safe_open_read(AT_FDCWD, path, &o, &fd, ret_why);
        if (r < 0)
                return r;

        struct stat st;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }

        file_text f = { .mode = st.st_mode };
        size_t len = 0;
        r = read_fd_limited(fd, CREDENTIALS_FILE_MAX + 1, false, &f.data, &len);
        close(fd);
        if (r < 0)
                return r;
        f.cap = len + 1; /* nothing past the NUL was ever written */
        if (len > CREDENTIALS_FILE_MAX)
                r = -EFBIG;
        else if (memchr(f.data, 0, len))
                r = -EBADMSG;
        if (r < 0) {
                file_text_done(&f);
                return r;
        }
        *ret = f;
        return 0;
}

static char *permission_warning(const char *path, mode_t mode) {
        if ((mode & 077) == 0)
                return NULL;
        return strdup_printf("%s is readable by group or others (mode %04o); chmod 600 it", path,
                             (unsigned)(mode & 07777));
}

static const char *file_error_text(int r) {
        switch (r) {
        case -EFBIG:
                return "larger than 64 KiB, not a credentials file";
        case -EBADMSG:
                return "contains a NUL byte, not a credentials file";
        default:
                return strerror(-r);
        }
}

/* One file of the chain. Returns 1 with *out filled, 0 when the file does not
 * exist and missing_ok, -ENOENT when it has no such profile and missing_ok,
 * or an error with *ret_error. */
static int load_credentials_file(const char *path, const char *profile, bool missing_ok,
                                 bool check_mode, credentials *out, char **ret_error,
                                 char **ret_warning) {
        _cleanup_(file_text_done) file_text f = {};
        _cleanup_free_ char *why = NULL;
        int r = read_credentials_file(path, &f, &why);
        if ((r == -ENOENT || r == -ENOTDIR) && missing_ok)
                return 0;
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (why && r == -EBADFD)
                        cred_set_message(ret_error, "credentials file %s", why);
                else
                        cred_set_message(ret_error, "credentials file %s: %s", path, file_error_text(r));
                /* -ENOENT would mean "no source had credentials" and let the
                 * caller carry on down the chain past a file it was told to use */
                return r == -ENOENT ? -EINVAL : r;
        }
        if (check_mode && ret_warning && !*ret_warning)
                *ret_warning = permission_warning(path, f.mode);

        _cleanup_free_ char *msg = NULL;
        r = credentials_parse_ini(f.data, profile, out, &msg);
        if (r == -ENOENT && missing_ok) {
                cred_set_message(ret_error, "%s: %s", path, msg ? msg : "no credentials");
                return -ENOENT;
        }
        if (r == -ENOENT) {
                cred_set_message(ret_error, "credentials file %s: %s", path,
                                 msg ? msg : "no access_key_id/access_key_secret found");
                return -EBADMSG;
        }
        if (r == -EBADMSG) {
                cred_set_message(ret_error, "%s:%s", path, msg ? msg : " malformed");
                return r;
        }
        return r < 0 ? r : 1;
}

static int set_detail(credentials *c, cred_source source, char *detail) {
        if (!detail) {
                credentials_done(c);
                return -ENOMEM;
        }
        c->source = source;
        free(c->source_detail);
        c->source_detail = detail;
        return 0;
}

int credentials_resolve_static(const config *c, env_lookup_fn env, credentials *out,
                               char **ret_error, char **ret_warning) {
        if (!out)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;
        if (ret_warning)
                *ret_warning = NULL;
        *out = (credentials){};

        /* 1. environment */
        static const char *const checked[] = { ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_SECURITY_TOKEN,
                                               ENV_PROFILE, ENV_ECS_METADATA };
        for (size_t i = 0; i < ELEMENTSOF(checked); i++) {
                int r = env_check(env, checked[i], ret_error);
                if (r < 0)
                        return r;
        }
        const char *id = env_get(env, ENV_ACCESS_KEY_ID);
        const char *secret = env_get(env, ENV_ACCESS_KEY_SECRET);
        if (id && secret) {
                credentials cr = {
                        .access_key_id = strdup(id),
                        .access_key_secret = strdup(secret),
                        .security_token = strdup_null(env_get(env, ENV_SECURITY_TOKEN)),
                };
                if (!cr.access_key_id || !cr.access_key_secret ||
                    (env_get(env, ENV_SECURITY_TOKEN) && !cr.security_token)) {
                        credentials_done(&cr);
                        return -ENOMEM;
                }
                int r = set_detail(&cr, CRED_SOURCE_ENV, strdup("ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET"));
                if (r < 0)
                        return r;
                *out = cr;
                return 0;
        }
        if (id || secret) {
                cred_set_message(ret_error, "%s is not set, but %s is",
                                 id ? ENV_ACCESS_KEY_SECRET : ENV_ACCESS_KEY_ID,
                                 id ? ENV_ACCESS_KEY_ID : ENV_ACCESS_KEY_SECRET);
                return -EINVAL;
        }

        /* 2. the configured file, else the systemd credential */
        _cleanup_free_ char *systemd_path = NULL;
        const char *credentials_directory = env_get(env, "CREDENTIALS_DIRECTORY");
        if (c && c->credentials_file && *c->credentials_file) {
                credentials cr = {};
                int r = load_credentials_file(c->credentials_file, NULL, false, true, &cr, ret_error,
                                              ret_warning);
                if (r < 0)
                        return r;
                r = set_detail(&cr, CRED_SOURCE_FILE, strdup(c->credentials_file));
                if (r < 0)
                        return r;
                *out = cr;
                return 0;
        }
        if (credentials_directory) {
                systemd_path = strdup_printf("%s/aliyun", credentials_directory);
                if (!systemd_path)
                        return -ENOMEM;
                credentials cr = {};
                /* systemd owns that directory and its modes: no permission advice */
                int r = load_credentials_file(systemd_path, NULL, true, false, &cr, ret_error, NULL);
                if (r < 0)
                        return r == -ENOENT ? -EBADMSG : r; /* present but empty is a mistake */
                if (r > 0) {
                        r = set_detail(&cr, CRED_SOURCE_SYSTEMD, strdup(systemd_path));
                        if (r < 0)
                                return r;
                        *out = cr;
                        return 0;
                }
        }

        /* 3. ~/.alibabacloud/credentials */
        _cleanup_free_ char *profile_path = NULL, *profile_note = NULL;
        const char *home = env_get(env, "HOME");
        const char *profile_env = env_get(env, ENV_PROFILE);
        const char *profile = profile_env ? profile_env : "default";
        if (home) {
                profile_path = strdup_printf("%s%s.alibabacloud/credentials", home,
                                             home[strlen(home) - 1] == '/' ? "" : "/");
                if (!profile_path)
                        return -ENOMEM;
                credentials cr = {};
                int r = load_credentials_file(profile_path, profile, true, true, &cr, &profile_note,
                                              ret_warning);
                if (r == -ENOENT && profile_env) {
                        /* asked for by name: a missing profile is a mistake */
                        cred_set_message(ret_error, "profile %s (from %s) not found in %s", profile,
                                         ENV_PROFILE, profile_path);
                        return -EINVAL;
                }
                if (r < 0 && r != -ENOENT) {
                        if (ret_error) {
                                free(*ret_error);
                                *ret_error = TAKE_PTR(profile_note);
                        }
                        return r;
                }
                if (r > 0) {
                        r = set_detail(&cr, CRED_SOURCE_PROFILE,
                                       strdup_printf("profile %s in %s", profile, profile_path));
                        if (r < 0)
                                return r;
                        *out = cr;
                        return 0;
                }
        }

        _cleanup_free_ char *systemd_note = systemd_path
                ? strdup_printf("%s (no such file)", systemd_path)
                : strdup("$CREDENTIALS_DIRECTORY/aliyun (CREDENTIALS_DIRECTORY not set)");
        if (!profile_note)
                profile_note = profile_path ? strdup_printf("%s (no such file)", profile_path)
                                            : strdup("~/.alibabacloud/credentials (HOME not set)");
        if (!systemd_note || !profile_note)
                return -ENOMEM;
        cred_set_message(ret_error,
                         "no credentials found; looked at: the environment (%s, %s not set), %s, %s",
                         ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, systemd_note, profile_note);
        return -ENOENT;
}

const char *credentials_ecs_role_requested(const config *c, env_lookup_fn env) {
        if (c && c->ecs_ram_role && *c->ecs_ram_role)
                return c->ecs_ram_role;
        return env_get(env, ENV_ECS_METADATA);
}

/* ---- provider ----------------------------------------------------------- */

struct cred_provider {
        credentials creds;
        bool have;
        uint64_t expires_usec; /* CLOCK_MONOTONIC; 0 = never (or see creds.expiration_ms) */

        cred_changed_fn on_change;
        void *on_change_userdata;

        ecs_role *ecs; /* NULL unless the credentials come from the RAM role */
};

static void provider_set(credentials *taken, uint64_t expires_usec, void *userdata) {
        cred_provider *p = userdata;
        bool changed = !p->have || !streq_null(p->creds.access_key_id, taken->access_key_id) ||
                       !streq_null(p->creds.access_key_secret, taken->access_key_secret) ||
                       !streq_null(p->creds.security_token, taken->security_token);
        credentials_done(&p->creds);
        p->creds = *taken;
        *taken = (credentials){};
        p->have = true;
        p->expires_usec = expires_usec;
        /* last: the callback may do anything, even free p */
        if (changed && p->on_change)
                p->on_change(p->on_change_userdata);
}

static const credentials *provider_current(void *userdata) {
        return cred_provider_get(userdata);
}

static cred_provider *provider_alloc(void) {
        return calloc(1, sizeof(cred_provider));
}

int cred_provider_new_static(credentials *taken, cred_provider **ret) {
        if (!taken || !ret) {
                credentials_done(taken);
                return -EINVAL;
        }
        cred_provider *p = provider_alloc();
        if (!p) {
                credentials_done(taken);
                return -ENOMEM;
        }
        p->creds = *taken;
        *taken = (credentials){};
        p->have = p->creds.access_key_id && p->creds.access_key_secret;
        *ret = p;
        return 0;
}

int cred_provider_new(sd_event *e, http_client *h, const config *c, env_lookup_fn env,
                      cred_provider **ret, char **ret_error) {
        if (ret_error)
                *ret_error = NULL;
        if (!ret)
                return -EINVAL;

        _cleanup_credentials_ credentials cr = {};
        _cleanup_free_ char *err = NULL, *warn = NULL;
        int r = credentials_resolve_static(c, env, &cr, &err, &warn);
        if (warn)
                log_event_send(EV_CREDENTIALS, LOG_WARNING, NULL, "%s", warn);
        if (r == 0) {
                log_event_send(EV_CREDENTIALS, LOG_INFO, NULL, "using credentials from %s (%s)",
                               cred_source_name(cr.source), strna(cr.source_detail));
                return cred_provider_new_static(&cr, ret);
        }

        const char *role = credentials_ecs_role_requested(c, env);
        if (r != -ENOENT || !role) {
                if (r == -ENOENT && err) {
                        char *s = strdup_printf("%s; or set credentials.ecs_ram_role to use the "
                                                "ECS instance RAM role",
                                                err);
                        if (s) {
                                free(err);
                                err = s;
                        }
                }
                if (ret_error)
                        *ret_error = TAKE_PTR(err);
                return r;
        }

        cred_provider *p = provider_alloc();
        if (!p)
                return -ENOMEM;
        r = ecs_role_new(e, h, c ? c->metadata_endpoint : NULL, role, c ? c->timeout_usec : 0, provider_set,
                         provider_current, p, &p->ecs, ret_error);
        if (r < 0) {
                cred_provider_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

cred_provider *cred_provider_free(cred_provider *p) {
        if (!p)
                return NULL;
        ecs_role_free(p->ecs);
        credentials_done(&p->creds);
        free(p);
        return NULL;
}

const credentials *cred_provider_get(cred_provider *p) {
        if (!p || !p->have)
                return NULL;
        bool expired = p->expires_usec > 0 ? now_monotonic_usec() >= p->expires_usec
                       : p->creds.expiration_ms > 0 ? now_realtime_ms() >= p->creds.expiration_ms
                                                     : false;
        if (!expired)
                return &p->creds;
        log_event_send(EV_CREDENTIALS, LOG_ERR, NULL,
                       "credentials from %s (%s) have expired and could not be refreshed",
                       cred_source_name(p->creds.source), strna(p->creds.source_detail));
        /* dead credentials are of no use to anyone: do not keep them around */
        credentials_done(&p->creds);
        p->have = false;
        return NULL;
}

void cred_provider_on_change(cred_provider *p, cred_changed_fn fn, void *userdata) {
        if (!p)
                return;
        p->on_change = fn;
        p->on_change_userdata = userdata;
}
