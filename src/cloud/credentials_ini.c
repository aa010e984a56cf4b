/* SPDX-License-Identifier: MIT */
/* The INI text of an aliyun credentials file or systemd credential -> one
 * profile's keys. Pure: no I/O; messages name lines and keys, never values. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "credentials_internal.h"

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

const char *cred_trim_end(const char *start, const char *end) {
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
                        cred_set_message(ret_error, "%u: %s contains a control character", line,
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
                        cred_set_message(ret_error,
                                         "%u: this credential type is not supported (use access_key or "
                                         "sts; for the ECS RAM role set credentials.ecs_ram_role)",
                                         k->type_line);
                        return -EBADMSG;
                }
        }
        if (!k->id && !k->secret) {
                if (k->type) {
                        cred_set_message(ret_error, "%u: access_key_id and access_key_secret are missing",
                                         k->type_line);
                        return -EBADMSG;
                }
                cred_set_message(ret_error, "no access_key_id/access_key_secret found");
                return -ENOENT;
        }
        if (!k->secret) {
                cred_set_message(ret_error, "%u: access_key_secret is missing",
                                 k->id_line ? k->id_line : section_line);
                return -EBADMSG;
        }
        if (!k->id) {
                cred_set_message(ret_error, "%u: access_key_id is missing",
                                 k->secret_line ? k->secret_line : section_line);
                return -EBADMSG;
        }
        if (sts && !k->token) {
                cred_set_message(ret_error, "%u: security_token is missing (type = sts)", k->type_line);
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
                const char *e = cred_trim_end(s, end);
                p = next;

                if (s == e || *s == '#' || *s == ';')
                        continue;

                if (*s == '[') {
                        const char *close = memchr(s, ']', (size_t)(e - s));
                        if (!close) {
                                cred_set_message(ret_error, "%u: section header is missing ']'", line);
                                r = -EBADMSG;
                                goto finish;
                        }
                        const char *rest = skip_blanks(close + 1, e);
                        if (rest < e && *rest != '#' && *rest != ';') {
                                cred_set_message(ret_error, "%u: unexpected text after section header", line);
                                r = -EBADMSG;
                                goto finish;
                        }
                        const char *ns = skip_blanks(s + 1, close);
                        const char *ne = cred_trim_end(ns, close);
                        if (ns == ne) {
                                cred_set_message(ret_error, "%u: empty section name", line);
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
                        cred_set_message(ret_error, "%u: expected 'key = value'", line);
                        r = -EBADMSG;
                        goto finish;
                }
                const char *ke = cred_trim_end(s, eq);
                if (ke == s) {
                        cred_set_message(ret_error, "%u: missing key before '='", line);
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
                cred_set_message(ret_error, "no profile [%s]", profile);
                r = -ENOENT;
        } else
                r = ini_finish(&global, 1, out, ret_error);
finish:
        ini_keys_done(&global);
        ini_keys_done(&section);
        return r;
}
