/* SPDX-License-Identifier: MIT */
#include "credentials.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "util.h"

/* A credentials file is a handful of lines; anything bigger is not one. */
#define CREDENTIALS_FILE_MAX (64u * 1024u)

#define ENV_ACCESS_KEY_ID "ALIBABA_CLOUD_ACCESS_KEY_ID"
#define ENV_ACCESS_KEY_SECRET "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
#define ENV_SECURITY_TOKEN "ALIBABA_CLOUD_SECURITY_TOKEN"
#define ENV_PROFILE "ALIBABA_CLOUD_PROFILE"
#define ENV_ECS_METADATA "ALIBABA_CLOUD_ECS_METADATA"

#define METADATA_DEFAULT_BASE "http://100.100.100.200"
#define METADATA_TOKEN_TTL_SECONDS "21600"
/* Refresh at least this long before an STS credential expires. */
#define ECS_REFRESH_MARGIN_USEC (15 * USEC_PER_MIN)
#define ECS_RETRY_MIN_USEC (1 * USEC_PER_SEC)
#define ECS_RETRY_MAX_USEC (60 * USEC_PER_SEC)

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

static void credentials_donep(credentials *c) {
        credentials_done(c);
}
#define _cleanup_credentials_ _cleanup_(credentials_donep)

static const char *env_from_process(const char *name) {
        return getenv(name);
}

/* Unset and empty mean the same: `Environment=X=` is how units clear one. */
static const char *env_get(env_lookup_fn env, const char *name) {
        const char *v = (env ? env : env_from_process)(name);
        return v && *v ? v : NULL;
}

static void set_message(char **ret, const char *fmt, ...) _printf_(2, 3);
static void set_message(char **ret, const char *fmt, ...) {
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

/* ---- INI ---------------------------------------------------------------- */

typedef struct ini_keys {
        char *id;
        char *secret;
        char *token;
        char *type;
        unsigned id_line, secret_line, type_line;
        bool any;
} ini_keys;

static void ini_keys_done(ini_keys *k) {
        free(k->id);
        free_secret(k->secret);
        free_secret(k->token);
        free(k->type);
        memset(k, 0, sizeof *k);
}

typedef enum ini_key {
        INI_KEY_OTHER,
        INI_KEY_ID,
        INI_KEY_SECRET,
        INI_KEY_TOKEN,
        INI_KEY_TYPE,
} ini_key;

/* access_key_id, AccessKeyId, ACCESS-KEY-ID and ALIBABA_CLOUD_ACCESS_KEY_ID
 * (an env-style file) all name the same thing. */
static ini_key classify_key(const char *k, size_t len) {
        char norm[64];
        size_t n = 0;
        for (size_t i = 0; i < len; i++) {
                if (k[i] == '_' || k[i] == '-')
                        continue;
                if (n + 1 >= sizeof norm)
                        return INI_KEY_OTHER;
                norm[n++] = (char)tolower((unsigned char)k[i]);
        }
        norm[n] = 0;
        const char *name = norm;
        if (strncmp(name, "alibabacloud", 12) == 0)
                name += 12;
        if (streq(name, "accesskeyid"))
                return INI_KEY_ID;
        if (streq(name, "accesskeysecret"))
                return INI_KEY_SECRET;
        if (streq(name, "securitytoken"))
                return INI_KEY_TOKEN;
        if (streq(name, "type"))
                return INI_KEY_TYPE;
        return INI_KEY_OTHER;
}

static const char *skip_blanks(const char *s, const char *end) {
        while (s < end && (*s == ' ' || *s == '\t'))
                s++;
        return s;
}

static const char *trim_end(const char *start, const char *end) {
        while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                end--;
        return end;
}

static const char *ini_key_label(ini_key k) {
        switch (k) {
        case INI_KEY_ID:
                return "access_key_id";
        case INI_KEY_SECRET:
                return "access_key_secret";
        case INI_KEY_TOKEN:
                return "security_token";
        default:
                return "type";
        }
}

/* Stores one value. Messages name the key, never the value. */
static int ini_store(ini_keys *k, ini_key key, const char *v, const char *vend, unsigned line,
                     char **ret_error) {
        /* `key = "value"` is common in hand-written files: the quotes are not
         * part of any id, secret or token. */
        if (vend - v >= 2 && (*v == '"' || *v == '\'') && vend[-1] == *v) {
                v++;
                vend--;
        }
        for (const char *p = v; p < vend; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                        set_message(ret_error, "%u: %s contains a control character", line,
                                    ini_key_label(key));
                        return -EBADMSG;
                }

        char **slot;
        switch (key) {
        case INI_KEY_ID:
                slot = &k->id;
                k->id_line = line;
                break;
        case INI_KEY_SECRET:
                slot = &k->secret;
                k->secret_line = line;
                break;
        case INI_KEY_TOKEN:
                slot = &k->token;
                break;
        case INI_KEY_TYPE:
                slot = &k->type;
                k->type_line = line;
                break;
        default:
                return 0;
        }
        char *copy = NULL;
        if (vend > v) {
                copy = strndup(v, (size_t)(vend - v));
                if (!copy)
                        return -ENOMEM;
        }
        /* a repeated key: the last one wins, as in every INI reader */
        free_secret(*slot);
        *slot = copy;
        k->any = true;
        return 0;
}

/* Turns the keys of one section into credentials. */
static int ini_finish(ini_keys *k, unsigned section_line, credentials *out, char **ret_error) {
        bool sts = false;
        if (k->type) {
                if (streq(k->type, "sts"))
                        sts = true;
                else if (!streq(k->type, "access_key")) {
                        set_message(ret_error,
                                    "%u: this credential type is not supported (use access_key or "
                                    "sts; for the ECS RAM role set credentials.ecs_ram_role)",
                                    k->type_line);
                        return -EBADMSG;
                }
        }
        if (!k->id && !k->secret) {
                if (k->type) {
                        set_message(ret_error, "%u: access_key_id and access_key_secret are missing",
                                    k->type_line);
                        return -EBADMSG;
                }
                set_message(ret_error, "no access_key_id/access_key_secret found");
                return -ENOENT;
        }
        if (!k->secret) {
                set_message(ret_error, "%u: access_key_secret is missing",
                            k->id_line ? k->id_line : section_line);
                return -EBADMSG;
        }
        if (!k->id) {
                set_message(ret_error, "%u: access_key_id is missing",
                            k->secret_line ? k->secret_line : section_line);
                return -EBADMSG;
        }
        if (sts && !k->token) {
                set_message(ret_error, "%u: security_token is missing (type = sts)", k->type_line);
                return -EBADMSG;
        }

        *out = (credentials){
                .access_key_id = TAKE_PTR(k->id),
                .access_key_secret = TAKE_PTR(k->secret),
        };
        /* an explicit access_key type means a plain AccessKey: a stray token
         * would only make every call fail */
        if (!k->type || sts)
                out->security_token = TAKE_PTR(k->token);
        return 0;
}

int credentials_parse_ini(const char *text, const char *profile, credentials *out,
                          char **ret_error) {
        if (!text || !out)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;
        if (!profile || !*profile)
                profile = "default";

        ini_keys global = {}, section = {};
        bool in_section = false, in_wanted = false, wanted_seen = false;
        unsigned wanted_line = 0, line = 0;
        int r = 0;

        const char *p = text;
        if (strncmp(p, "\xef\xbb\xbf", 3) == 0) /* UTF-8 BOM from some editors */
                p += 3;

        while (*p) {
                const char *eol = strchr(p, '\n');
                const char *next = eol ? eol + 1 : p + strlen(p);
                const char *end = eol ? eol : next;
                line++;

                const char *s = skip_blanks(p, end);
                const char *e = trim_end(s, end);
                p = next;

                if (s == e || *s == '#' || *s == ';')
                        continue;

                if (*s == '[') {
                        const char *close = memchr(s, ']', (size_t)(e - s));
                        if (!close) {
                                set_message(ret_error, "%u: section header is missing ']'", line);
                                r = -EBADMSG;
                                goto finish;
                        }
                        const char *rest = skip_blanks(close + 1, e);
                        if (rest < e && *rest != '#' && *rest != ';') {
                                set_message(ret_error, "%u: unexpected text after section header", line);
                                r = -EBADMSG;
                                goto finish;
                        }
                        const char *ns = skip_blanks(s + 1, close);
                        const char *ne = trim_end(ns, close);
                        if (ns == ne) {
                                set_message(ret_error, "%u: empty section name", line);
                                r = -EBADMSG;
                                goto finish;
                        }
                        in_section = true;
                        in_wanted = strlen(profile) == (size_t)(ne - ns) &&
                                    strncmp(ns, profile, (size_t)(ne - ns)) == 0;
                        if (in_wanted && !wanted_seen) {
                                wanted_seen = true;
                                wanted_line = line;
                        }
                        continue;
                }

                const char *eq = memchr(s, '=', (size_t)(e - s));
                if (!eq) {
                        set_message(ret_error, "%u: expected 'key = value'", line);
                        r = -EBADMSG;
                        goto finish;
                }
                const char *ke = trim_end(s, eq);
                if (ke == s) {
                        set_message(ret_error, "%u: missing key before '='", line);
                        r = -EBADMSG;
                        goto finish;
                }
                /* Other profiles are parsed for syntax only: their values are
                 * none of our business and never copied. */
                if (in_section && !in_wanted)
                        continue;
                ini_key key = classify_key(s, (size_t)(ke - s));
                if (key == INI_KEY_OTHER)
                        continue;
                r = ini_store(in_section ? &section : &global, key, skip_blanks(eq + 1, e), e, line,
                              ret_error);
                if (r < 0)
                        goto finish;
        }

        if (wanted_seen)
                r = ini_finish(&section, wanted_line, out, ret_error);
        else if (global.any && streq(profile, "default"))
                r = ini_finish(&global, 1, out, ret_error);
        else if (in_section || !streq(profile, "default")) {
                /* flat keys are the default profile, not any profile asked for */
                set_message(ret_error, "no profile [%s]", profile);
                r = -ENOENT;
        } else
                r = ini_finish(&global, 1, out, ret_error);
finish:
        ini_keys_done(&global);
        ini_keys_done(&section);
        return r;
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
static int read_credentials_file(const char *path, file_text *ret) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (S_ISDIR(st.st_mode)) {
                close(fd);
                return -EISDIR;
        }

        file_text f = { .mode = st.st_mode };
        size_t len = 0;
        int r = read_fd_limited(fd, CREDENTIALS_FILE_MAX + 1, false, &f.data, &len);
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
        int r = read_credentials_file(path, &f);
        if ((r == -ENOENT || r == -ENOTDIR) && missing_ok)
                return 0;
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                set_message(ret_error, "credentials file %s: %s", path, file_error_text(r));
                /* -ENOENT would mean "no source had credentials" and let the
                 * caller carry on down the chain past a file it was told to use */
                return r == -ENOENT ? -EINVAL : r;
        }
        if (check_mode && ret_warning && !*ret_warning)
                *ret_warning = permission_warning(path, f.mode);

        _cleanup_free_ char *msg = NULL;
        r = credentials_parse_ini(f.data, profile, out, &msg);
        if (r == -ENOENT && missing_ok) {
                set_message(ret_error, "%s: %s", path, msg ? msg : "no credentials");
                return -ENOENT;
        }
        if (r == -ENOENT) {
                set_message(ret_error, "credentials file %s: %s", path,
                            msg ? msg : "no access_key_id/access_key_secret found");
                return -EBADMSG;
        }
        if (r == -EBADMSG) {
                set_message(ret_error, "%s:%s", path, msg ? msg : " malformed");
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
                set_message(ret_error, "%s is not set, but %s is",
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
                        set_message(ret_error, "profile %s (from %s) not found in %s", profile,
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
        set_message(ret_error,
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

typedef enum ecs_step {
        ECS_STEP_TOKEN,
        ECS_STEP_ROLE,
        ECS_STEP_CREDENTIALS,
} ecs_step;

struct cred_provider {
        sd_event *event;
        http_client *http;

        credentials creds;
        bool have;
        uint64_t expires_usec; /* CLOCK_MONOTONIC; 0 = never (or see creds.expiration_ms) */

        cred_changed_fn on_change;
        void *on_change_userdata;

        /* ECS RAM role */
        bool ecs;
        char *metadata_base;
        char *role_requested; /* a name or "auto" */
        char *role;           /* the name in use */
        char *metadata_token; /* secret, lives only for one fetch */
        uint64_t timeout_usec;
        ecs_step step;
        http_call *call;
        sd_event_source *timer;
        unsigned failures;
};

static void provider_set(cred_provider *p, credentials *taken, uint64_t expires_usec) {
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

static const char *ecs_step_name(ecs_step s) {
        switch (s) {
        case ECS_STEP_TOKEN:
                return "PUT /latest/api/token";
        case ECS_STEP_ROLE:
                return "GET /latest/meta-data/ram/security-credentials/";
        default:
                return "GET /latest/meta-data/ram/security-credentials/ROLE";
        }
}

/* A RAM role name goes into a URL path: letters, digits, '.', '_', '-'. */
static bool role_name_ok(const char *s, size_t len) {
        if (len == 0 || len > 64 || (len == 1 && s[0] == '.') ||
            (len == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
                        return false;
        return true;
}

static int ecs_start(cred_provider *p);

static int on_ecs_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        cred_provider *p = userdata;
        p->timer = sd_event_source_disable_unref(p->timer);
        (void)ecs_start(p);
        return 0;
}

static int ecs_schedule(cred_provider *p, uint64_t delay_usec) {
        p->timer = sd_event_source_disable_unref(p->timer);
        int r = sd_event_add_time_relative(p->event, &p->timer, CLOCK_MONOTONIC, delay_usec, 0,
                                           on_ecs_timer, p);
        if (r < 0) {
                log_event_send(EV_CREDENTIALS, LOG_ERR, NULL,
                               "cannot schedule the ECS RAM role credentials refresh: %s",
                               strerror(-r));
                return r;
        }
        (void)sd_event_source_set_description(p->timer, "credentials-refresh");
        return 0;
}

static void ecs_fail(cred_provider *p, const char *fmt, ...) _printf_(2, 3);
static void ecs_fail(cred_provider *p, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        free_secret(TAKE_PTR(p->metadata_token));

        uint64_t delay = ECS_RETRY_MIN_USEC;
        for (unsigned i = 0; i < p->failures && delay < ECS_RETRY_MAX_USEC; i++)
                delay *= 2;
        if (delay > ECS_RETRY_MAX_USEC)
                delay = ECS_RETRY_MAX_USEC;
        delay = jitter_usec(delay, 0.2) / USEC_PER_MSEC * USEC_PER_MSEC;
        p->failures++;

        char d[32];
        const credentials *still = cred_provider_get(p);
        /* "auto" forgets the role before each refresh: while the current
         * credentials live, name the role they came from. */
        const char *role = p->role ? p->role
                           : still && still->source_detail ? still->source_detail
                                                           : p->role_requested;
        log_event_send(EV_CREDENTIALS, LOG_WARNING, NULL,
                       "ECS RAM role %s: %s; retrying in %s%s", role,
                       msg, format_duration(delay, d, sizeof d),
                       still ? " (the current credentials stay in use until they expire)" : "");
        (void)ecs_schedule(p, delay);
}

static void wipe_json_strings(cJSON *j) {
        for (; j; j = j->next) {
                if (j->valuestring)
                        OPENSSL_cleanse(j->valuestring, strlen(j->valuestring));
                wipe_json_strings(j->child);
        }
}

/* "2026-11-23T09:00:00Z", fractions of a second tolerated. */
static int parse_expiration(const char *s, int64_t *ret_ms) {
        struct tm tm = {};
        int n = 0;
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n == 0)
                return -EINVAL;
        const char *rest = s + n;
        if (*rest == '.')
                for (rest++; *rest >= '0' && *rest <= '9'; rest++)
                        ;
        if (!streq(rest, "Z") && !streq(rest, "+00:00"))
                return -EINVAL;
        if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
            tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
                return -EINVAL;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret_ms = (int64_t)t * 1000;
        return 0;
}

static void ecs_apply_credentials(cred_provider *p, const char *body, size_t len) {
        cJSON *json = cJSON_ParseWithLength(body, len);
        if (!json) {
                ecs_fail(p, "the credentials response is not JSON");
                return;
        }

        _cleanup_credentials_ credentials cr = {};
        _cleanup_free_ char *code = NULL, *expiration = NULL;
        const char *problem = NULL;
        if (json_get_string(json, "Code", &code) < 0)
                problem = "Code is not a string";
        else if (code && !streq(code, "Success"))
                problem = "Code is not Success";
        else if (json_get_string(json, "AccessKeyId", &cr.access_key_id) <= 0 ||
                 !*cr.access_key_id)
                problem = "AccessKeyId is missing";
        else if (json_get_string(json, "AccessKeySecret", &cr.access_key_secret) <= 0 ||
                 !*cr.access_key_secret)
                problem = "AccessKeySecret is missing";
        else if (json_get_string(json, "SecurityToken", &cr.security_token) <= 0 ||
                 !*cr.security_token)
                problem = "SecurityToken is missing";
        else if (json_get_string(json, "Expiration", &expiration) <= 0 ||
                 parse_expiration(expiration, &cr.expiration_ms) < 0)
                problem = "Expiration is missing or not a UTC time";
        wipe_json_strings(json);
        cJSON_Delete(json);

        if (problem) {
                if (code && !streq(code, "Success"))
                        ecs_fail(p, "the metadata service answered Code=%.64s", code);
                else
                        ecs_fail(p, "unusable credentials response: %s", problem);
                return;
        }

        /* Work in remaining time on the monotonic clock: a wall clock step
         * must neither expire good credentials nor keep dead ones. */
        int64_t remaining_ms = cr.expiration_ms - now_realtime_ms();
        if (remaining_ms <= 0) {
                ecs_fail(p, "the credentials expired at %s already (is the clock right?)",
                         expiration);
                return;
        }
        uint64_t remaining = (uint64_t)remaining_ms * USEC_PER_MSEC;
        uint64_t refresh = remaining / 5 * 4;
        if (remaining > ECS_REFRESH_MARGIN_USEC && remaining - ECS_REFRESH_MARGIN_USEC < refresh)
                refresh = remaining - ECS_REFRESH_MARGIN_USEC;
        refresh = refresh / USEC_PER_SEC * USEC_PER_SEC; /* whole seconds read better in logs */
        if (refresh < USEC_PER_SEC)
                refresh = USEC_PER_SEC;

        free_secret(TAKE_PTR(p->metadata_token));
        p->failures = 0;
        cr.source = CRED_SOURCE_ECS_RAM_ROLE;
        if (free_and_strdup(&cr.source_detail, p->role) < 0) {
                ecs_fail(p, "out of memory");
                return;
        }

        char d[32];
        log_event_send(EV_CREDENTIALS, LOG_INFO, NULL,
                       "ECS RAM role %s: credentials valid until %s, refreshing in %s", p->role,
                       expiration, format_duration(refresh, d, sizeof d));
        (void)ecs_schedule(p, refresh);
        provider_set(p, &cr, now_monotonic_usec() + remaining);
}

static void on_ecs_response(const http_response *resp, void *userdata);

static int ecs_submit(cred_provider *p, ecs_step step) {
        _cleanup_free_ char *url = NULL;
        char *header = NULL;
        const char *method = "GET";

        p->step = step;
        switch (step) {
        case ECS_STEP_TOKEN:
                method = "PUT";
                url = strdup_printf("%s/latest/api/token", p->metadata_base);
                header = strdup("X-aliyun-ecs-metadata-token-ttl-seconds: " METADATA_TOKEN_TTL_SECONDS);
                break;
        case ECS_STEP_ROLE:
                url = strdup_printf("%s/latest/meta-data/ram/security-credentials/", p->metadata_base);
                header = strdup_printf("X-aliyun-ecs-metadata-token: %s", p->metadata_token);
                break;
        case ECS_STEP_CREDENTIALS:
                url = strdup_printf("%s/latest/meta-data/ram/security-credentials/%s",
                                    p->metadata_base, p->role);
                header = strdup_printf("X-aliyun-ecs-metadata-token: %s", p->metadata_token);
                break;
        }
        if (!url || !header) {
                free_secret(header);
                return -ENOMEM;
        }

        const char *headers[] = { header };
        http_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .n_headers = 1,
                .timeout_usec = p->timeout_usec,
                .wipe = 1, /* the token header out, AccessKeySecret back */
        };
        int r = http_submit(p->http, &req, on_ecs_response, p, &p->call);
        free_secret(header); /* http keeps its own (wiped) copy */
        return r;
}

static int ecs_start(cred_provider *p) {
        if (p->call)
                return 0; /* a fetch is already under way */
        free_secret(TAKE_PTR(p->metadata_token));
        if (streq(p->role_requested, "auto")) {
                /* rediscovered every time: the attached role can change */
                free(p->role);
                p->role = NULL;
        }
        int r = ecs_submit(p, ECS_STEP_TOKEN);
        if (r < 0)
                ecs_fail(p, "cannot start a metadata request: %s", strerror(-r));
        return r;
}

static void on_ecs_response(const http_response *resp, void *userdata) {
        cred_provider *p = userdata;
        p->call = NULL;

        if (resp->transport_error || resp->status == 0) {
                ecs_fail(p, "%s at %s: %s", ecs_step_name(p->step), p->metadata_base,
                         resp->error ? resp->error : "no response");
                return;
        }
        /* The metadata service says 404 when no role (or not this role) is
         * attached: say that, an operator cannot act on a bare "HTTP 404". */
        if (resp->status == 404 && p->step == ECS_STEP_ROLE) {
                ecs_fail(p, "no RAM role is attached to this instance (%s at %s: HTTP 404)",
                         ecs_step_name(p->step), p->metadata_base);
                return;
        }
        if (resp->status == 404 && p->step == ECS_STEP_CREDENTIALS) {
                ecs_fail(p, "RAM role %s is not attached to this instance (%s at %s: HTTP 404)",
                         p->role, ecs_step_name(p->step), p->metadata_base);
                return;
        }
        if (resp->status != 200) {
                ecs_fail(p, "%s at %s: HTTP %ld", ecs_step_name(p->step), p->metadata_base,
                         resp->status);
                return;
        }

        const char *b = resp->body, *end = resp->body + resp->body_len;
        while (b < end && isspace((unsigned char)*b))
                b++;
        while (end > b && isspace((unsigned char)end[-1]))
                end--;

        int r = 0;
        switch (p->step) {
        case ECS_STEP_TOKEN:
                for (const char *c = b; c < end; c++)
                        if (!isgraph((unsigned char)*c)) {
                                ecs_fail(p, "the metadata token is not printable text");
                                return;
                        }
                if (b == end) {
                        ecs_fail(p, "the metadata service returned an empty token");
                        return;
                }
                p->metadata_token = strndup(b, (size_t)(end - b));
                if (!p->metadata_token) {
                        ecs_fail(p, "out of memory");
                        return;
                }
                r = ecs_submit(p, p->role ? ECS_STEP_CREDENTIALS : ECS_STEP_ROLE);
                break;
        case ECS_STEP_ROLE: {
                /* one role per line; an instance has at most one */
                const char *nl = memchr(b, '\n', (size_t)(end - b));
                const char *re = trim_end(b, nl ? nl : end);
                if (!role_name_ok(b, (size_t)(re - b))) {
                        ecs_fail(p, b == re ? "no RAM role is attached to this instance"
                                            : "the metadata service returned an unusable role name");
                        return;
                }
                p->role = strndup(b, (size_t)(re - b));
                if (!p->role) {
                        ecs_fail(p, "out of memory");
                        return;
                }
                r = ecs_submit(p, ECS_STEP_CREDENTIALS);
                break;
        }
        case ECS_STEP_CREDENTIALS:
                ecs_apply_credentials(p, resp->body, resp->body_len);
                return;
        }
        if (r < 0)
                ecs_fail(p, "cannot start a metadata request: %s", strerror(-r));
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

        if (!e || !h) {
                set_message(ret_error, "the ECS RAM role needs the event loop and HTTP client");
                return -EINVAL;
        }
        if (!streq(role, "auto") && !role_name_ok(role, strlen(role))) {
                set_message(ret_error, "ECS RAM role name is not valid (letters, digits, '.', '_', "
                                       "'-'; or \"auto\")");
                return -EINVAL;
        }

        cred_provider *p = provider_alloc();
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->http = h;
        p->ecs = true;
        p->timeout_usec = c ? c->timeout_usec : 0;
        const char *base = c && c->metadata_endpoint && *c->metadata_endpoint ? c->metadata_endpoint
                                                                              : METADATA_DEFAULT_BASE;
        p->metadata_base = strdup(base);
        p->role_requested = strdup(role);
        if (!p->metadata_base || !p->role_requested ||
            (!streq(role, "auto") && !(p->role = strdup(role)))) {
                cred_provider_free(p);
                return -ENOMEM;
        }
        size_t l = strlen(p->metadata_base);
        while (l > 0 && p->metadata_base[l - 1] == '/')
                p->metadata_base[--l] = 0;

        log_event_send(EV_CREDENTIALS, LOG_INFO, NULL,
                       "no static credentials; fetching ECS RAM role %s from %s", role,
                       p->metadata_base);
        /* a failed start is retried on the timer like any failed fetch */
        (void)ecs_start(p);
        *ret = p;
        return 0;
}

cred_provider *cred_provider_free(cred_provider *p) {
        if (!p)
                return NULL;
        http_call_cancel(p->call);
        sd_event_source_disable_unref(p->timer);
        credentials_done(&p->creds);
        free_secret(p->metadata_token);
        free(p->metadata_base);
        free(p->role_requested);
        free(p->role);
        sd_event_unref(p->event);
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
