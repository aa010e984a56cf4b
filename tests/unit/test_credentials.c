/* SPDX-License-Identifier: MIT */
/* The INI reader, the static chain against real files, and providers
 * without the network; the ECS RAM role is test_credentials_ecs.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "credentials.h"
#include "credentials_test.h"
#include "http.h"
#include "log.h"
#include "util.h"

/* ---- INI parsing ---- */

static void test_parse_ini_table(void **state) {
        static const struct {
                const char *what;
                const char *text;
                const char *profile;
                int r;
                const char *id;
                const char *secret;
                const char *token;
                const char *error; /* substring; NULL = no error expected */
        } rows[] = {
                { "flat", "access_key_id = AK1\naccess_key_secret = s3cr3t-1\n", NULL, 0, "AK1",
                  "s3cr3t-1", NULL, NULL },
                { "flat, CamelCase keys, STS",
                  "AccessKeyId=AK2\nAccessKeySecret=s3cr3t-2\nSecurityToken=t0k3n-2\n", NULL, 0, "AK2",
                  "s3cr3t-2", "t0k3n-2", NULL },
                { "flat, env-style keys",
                  "ALIBABA_CLOUD_ACCESS_KEY_ID=AK3\nALIBABA_CLOUD_ACCESS_KEY_SECRET=s3cr3t-3\n", NULL,
                  0, "AK3", "s3cr3t-3", NULL, NULL },
                { "flat, type sts",
                  "type = sts\naccess_key_id = STS.AK\naccess_key_secret = s3cr3t-4\n"
                  "security_token = t0k3n-4\n",
                  NULL, 0, "STS.AK", "s3cr3t-4", "t0k3n-4", NULL },
                { "flat, no trailing newline", "access_key_id = AK5\naccess_key_secret = s3cr3t-5",
                  NULL, 0, "AK5", "s3cr3t-5", NULL, NULL },
                { "comments, blanks, whitespace, CRLF",
                  "# a comment\r\n; another\r\n\r\n   \r\n  [default]  \r\n"
                  "\taccess_key_id\t=\tAK6  \r\n access_key_secret = s3cr3t-6\r\n",
                  NULL, 0, "AK6", "s3cr3t-6", NULL, NULL },
                { "UTF-8 BOM and quoted values",
                  "\xef\xbb\xbf[default]\naccess_key_id = \"AK7\"\naccess_key_secret = 's3cr3t-7'\n",
                  NULL, 0, "AK7", "s3cr3t-7", NULL, NULL },
                { "sectioned, default profile",
                  "[default]\ntype = access_key\naccess_key_id = AK8\naccess_key_secret = s3cr3t-8\n"
                  "\n[prod]\ntype = sts\naccess_key_id = AK8P\naccess_key_secret = s3cr3t-8p\n"
                  "security_token = t0k3n-8p\n",
                  NULL, 0, "AK8", "s3cr3t-8", NULL, NULL },
                { "sectioned, named profile",
                  "[default]\ntype = access_key\naccess_key_id = AK8\naccess_key_secret = s3cr3t-8\n"
                  "\n[prod]\ntype = sts\naccess_key_id = AK8P\naccess_key_secret = s3cr3t-8p\n"
                  "security_token = t0k3n-8p\n",
                  "prod", 0, "AK8P", "s3cr3t-8p", "t0k3n-8p", NULL },
                { "section comment after header", "[default] # main\naccess_key_id = AK9\n"
                  "access_key_secret = s3cr3t-9\n", NULL, 0, "AK9", "s3cr3t-9", NULL, NULL },
                { "unknown keys ignored",
                  "[default]\nenable = true\nregion_id = cn-hangzhou\naccess_key_id = AK10\n"
                  "access_key_secret = s3cr3t-10\n",
                  NULL, 0, "AK10", "s3cr3t-10", NULL, NULL },
                { "repeated key: last wins",
                  "access_key_id = OLD\naccess_key_id = AK11\naccess_key_secret = s3cr3t-11\n", NULL,
                  0, "AK11", "s3cr3t-11", NULL, NULL },
                { "type access_key drops a stray token",
                  "type = access_key\naccess_key_id = AK12\naccess_key_secret = s3cr3t-12\n"
                  "security_token = t0k3n-12\n",
                  NULL, 0, "AK12", "s3cr3t-12", NULL, NULL },
                { "flat keys serve the default profile when there is no [default]",
                  "access_key_id = AK13\naccess_key_secret = s3cr3t-13\n[other]\naccess_key_id = X\n",
                  NULL, 0, "AK13", "s3cr3t-13", NULL, NULL },
                { "keys of other profiles never leak into the wanted one",
                  "[default]\naccess_key_id = AK14\n[prod]\naccess_key_secret = s3cr3t-14\n", NULL,
                  -EBADMSG, NULL, NULL, NULL, "2: access_key_secret is missing" },
                { "missing secret", "[default]\naccess_key_id = AK15\n", NULL, -EBADMSG, NULL, NULL,
                  NULL, "2: access_key_secret is missing" },
                { "empty secret", "access_key_id = AK16\naccess_key_secret =\n", NULL, -EBADMSG, NULL,
                  NULL, NULL, "1: access_key_secret is missing" },
                { "missing id", "\naccess_key_secret = s3cr3t-17\n", NULL, -EBADMSG, NULL, NULL, NULL,
                  "2: access_key_id is missing" },
                { "sts without token",
                  "type = sts\naccess_key_id = AK18\naccess_key_secret = s3cr3t-18\n", NULL,
                  -EBADMSG, NULL, NULL, NULL, "1: security_token is missing" },
                { "unsupported type",
                  "[default]\ntype = ecs_ram_role\nrole_name = x\n", NULL, -EBADMSG, NULL, NULL, NULL,
                  "2: this credential type is not supported" },
                { "garbage line", "access_key_id = AK19\naccess_key_secret s3cr3t-19\n", NULL,
                  -EBADMSG, NULL, NULL, NULL, "2: expected 'key = value'" },
                { "garbage in another profile is still an error",
                  "[default]\naccess_key_id = AK20\naccess_key_secret = s3cr3t-20\n[x]\nbroken s3cr3t\n",
                  NULL, -EBADMSG, NULL, NULL, NULL, "5: expected 'key = value'" },
                { "unterminated section", "[default\naccess_key_id = A\n", NULL, -EBADMSG, NULL, NULL,
                  NULL, "1: section header is missing ']'" },
                { "empty section name", "[ ]\n", NULL, -EBADMSG, NULL, NULL, NULL,
                  "1: empty section name" },
                { "text after section", "[default] x\n", NULL, -EBADMSG, NULL, NULL, NULL,
                  "1: unexpected text after section header" },
                { "missing key", " = s3cr3t-21\n", NULL, -EBADMSG, NULL, NULL, NULL,
                  "1: missing key before '='" },
                { "control character in a value",
                  "access_key_id = AK22\naccess_key_secret = s3cr3t\x01-22\n", NULL, -EBADMSG, NULL,
                  NULL, NULL, "2: access_key_secret contains a control character" },
                { "empty text", "", NULL, -ENOENT, NULL, NULL, NULL, NULL },
                { "comments only", "# nothing\n;here\n", NULL, -ENOENT, NULL, NULL, NULL, NULL },
                { "no such profile",
                  "[default]\naccess_key_id = AK23\naccess_key_secret = s3cr3t-23\n", "prod", -ENOENT,
                  NULL, NULL, NULL, "no profile [prod]" },
                { "flat keys do not answer for a named profile",
                  "access_key_id = AK24\naccess_key_secret = s3cr3t-24\n", "prod", -ENOENT, NULL, NULL,
                  NULL, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                credentials c = {};
                char *err = NULL;
                int r = credentials_parse_ini(rows[i].text, rows[i].profile, &c, &err);
                if (r != rows[i].r)
                        fail_msg("row %zu (%s): r=%d, want %d (%s)", i, rows[i].what, r, rows[i].r,
                                 strna(err));
                assert_no_secret_in(rows[i].what, err);
                if (r == 0) {
                        if (!streq_null(c.access_key_id, rows[i].id) ||
                            !streq_null(c.access_key_secret, rows[i].secret) ||
                            !streq_null(c.security_token, rows[i].token))
                                fail_msg("row %zu (%s): got id=%s token=%s", i, rows[i].what,
                                         strna(c.access_key_id), strna(c.security_token));
                        if (err)
                                fail_msg("row %zu (%s): error set on success", i, rows[i].what);
                }
                if (rows[i].error && (!err || !strstr(err, rows[i].error)))
                        fail_msg("row %zu (%s): error \"%s\", want it to contain \"%s\"", i,
                                 rows[i].what, strna(err), rows[i].error);
                credentials_done(&c);
                free(err);
        }
}

/* ---- the static chain, against real files ---- */

static char tmpdir[256];

static void write_file(const char *rel, const char *text, mode_t mode) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
        /* mkdir -p of the parents */
        for (char *s = strchr(path + strlen(tmpdir) + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (mkdir(path, 0700) < 0 && errno != EEXIST)
                        fail_msg("mkdir %s: %m", path);
                *s = '/';
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        size_t len = strlen(text);
        assert_int_equal(write(fd, text, len), (ssize_t)len);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void make_dir(const char *rel) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
        assert_int_equal(mkdir(path, 0700), 0);
}

static int setup_files(void **state) {
        snprintf(tmpdir, sizeof tmpdir, "%s/rollguard-cred-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(tmpdir))
                return -1;
        write_file("conf-creds", "access_key_id = AK_CONF\naccess_key_secret = s3cr3t-conf\n", 0600);
        write_file("conf-open", "access_key_id = AK_OPEN\naccess_key_secret = s3cr3t-open\n", 0644);
        write_file("conf-nokeys", "# nothing here\n", 0600);
        write_file("conf-nosecret", "# x\naccess_key_id = AK_NOSECRET\n", 0600);
        write_file("creddir/aliyun",
                   "access_key_id = AK_SYSTEMD\naccess_key_secret = s3cr3t-systemd\n", 0440);
        make_dir("emptycreddir");
        write_file("home/.alibabacloud/credentials",
                   "[default]\ntype = access_key\naccess_key_id = AK_HOME\n"
                   "access_key_secret = s3cr3t-home\n\n"
                   "[prod]\ntype = sts\naccess_key_id = AK_PROD\naccess_key_secret = s3cr3t-prod\n"
                   "security_token = t0k3n-prod\n",
                   0600);
        write_file("openhome/.alibabacloud/credentials",
                   "access_key_id = AK_OPENHOME\naccess_key_secret = s3cr3t-openhome\n", 0640);
        write_file("prodonly/.alibabacloud/credentials",
                   "[prod]\naccess_key_id = AK_P\naccess_key_secret = s3cr3t-p\n", 0600);
        write_file("badhome/.alibabacloud/credentials", "[default]\nthis s3cr3t is not ini\n", 0600);
        make_dir("emptyhome");
        make_dir("adir");

        /* one byte over the cap */
        size_t big = 64 * 1024 + 1;
        char *text = malloc(big + 1);
        assert_non_null(text);
        memset(text, '#', big);
        text[big] = 0;
        write_file("conf-big", text, 0600);
        free(text);
        return 0;
}

static int teardown_files(void **state) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

/* "@" in a row stands for the temporary directory. */
static char *expand(const char *s) {
        if (!s)
                return NULL;
        char buf[1024];
        size_t o = 0;
        for (; *s && o < sizeof buf - 300; s++) {
                if (*s == '@')
                        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", tmpdir);
                else
                        buf[o++] = *s;
        }
        buf[o] = 0;
        return strdup(buf);
}

static void test_resolve_static_table(void **state) {
        static const struct {
                const char *what;
                const char *env[6][2];
                const char *config_file;
                int r;
                cred_source source;
                const char *id;
                bool token;
                const char *detail;
                const char *error;   /* substrings; may contain @ */
                const char *error2;
                const char *warning; /* NULL = must be none */
        } rows[] = {
                { .what = "environment",
                  .env = { { "ALIBABA_CLOUD_ACCESS_KEY_ID", "AK_ENV" },
                    { "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t-env" } },
                  .config_file = NULL, .r = 0, .source = CRED_SOURCE_ENV, .id = "AK_ENV", .token = false,
                  .detail = "ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET" },
                { .what = "environment with STS token",
                  .env = { { "ALIBABA_CLOUD_ACCESS_KEY_ID", "AK_ENV" },
                    { "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t-env" },
                    { "ALIBABA_CLOUD_SECURITY_TOKEN", "t0k3n-env" } },
                  .config_file = NULL, .r = 0, .source = CRED_SOURCE_ENV, .id = "AK_ENV", .token = true,
                  .detail = "ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET" },
                { .what = "environment wins over file, systemd and profile",
                  .env = { { "ALIBABA_CLOUD_ACCESS_KEY_ID", "AK_ENV" },
                    { "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t-env" },
                    { "CREDENTIALS_DIRECTORY", "@/creddir" },
                    { "HOME", "@/home" } },
                  .config_file = "@/conf-creds", .r = 0, .source = CRED_SOURCE_ENV, .id = "AK_ENV", .token = false,
                  .detail = "ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET" },
                { .what = "only the id in the environment",
                  .env = { { "ALIBABA_CLOUD_ACCESS_KEY_ID", "AK_ENV" }, { "HOME", "@/home" } },
                  .config_file = NULL, .r = -EINVAL, .error = "ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set" },
                { .what = "only the secret in the environment",
                  .env = { { "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t-env" } },
                  .config_file = NULL, .r = -EINVAL, .error = "ALIBABA_CLOUD_ACCESS_KEY_ID is not set" },
                { .what = "empty environment values count as unset",
                  .env = { { "ALIBABA_CLOUD_ACCESS_KEY_ID", "" },
                    { "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "" },
                    { "HOME", "@/home" } },
                  .config_file = NULL, .r = 0, .source = CRED_SOURCE_PROFILE, .id = "AK_HOME", .token = false,
                  .detail = "profile default in @/home/.alibabacloud/credentials" },
                { .what = "config file wins over systemd and profile",
                  .env = { { "CREDENTIALS_DIRECTORY", "@/creddir" }, { "HOME", "@/home" } },
                  .config_file = "@/conf-creds", .r = 0, .source = CRED_SOURCE_FILE, .id = "AK_CONF", .token = false,
                  .detail = "@/conf-creds" },
                { .what = "systemd credential wins over profile",
                  .env = { { "CREDENTIALS_DIRECTORY", "@/creddir" }, { "HOME", "@/home" } },
                  .config_file = NULL, .r = 0, .source = CRED_SOURCE_SYSTEMD, .id = "AK_SYSTEMD", .token = false,
                  .detail = "@/creddir/aliyun" },
                { .what = "credentials directory without aliyun: on to the profile",
                  .env = { { "CREDENTIALS_DIRECTORY", "@/emptycreddir" }, { "HOME", "@/home" } },
                  .config_file = NULL, .r = 0, .source = CRED_SOURCE_PROFILE, .id = "AK_HOME", .token = false,
                  .detail = "profile default in @/home/.alibabacloud/credentials" },
                { .what = "HOME profile",
                  .env = { { "HOME", "@/home/" } },
                  .config_file = NULL, .r = 0, .source = CRED_SOURCE_PROFILE, .id = "AK_HOME", .token = false,
                  .detail = "profile default in @/home/.alibabacloud/credentials" },
                { .what = "ALIBABA_CLOUD_PROFILE picks the profile",
                  .env = { { "HOME", "@/home" }, { "ALIBABA_CLOUD_PROFILE", "prod" } },
                  .config_file = NULL, .r = 0, .source = CRED_SOURCE_PROFILE, .id = "AK_PROD", .token = true,
                  .detail = "profile prod in @/home/.alibabacloud/credentials" },
                { .what = "ALIBABA_CLOUD_PROFILE names a missing profile",
                  .env = { { "HOME", "@/home" }, { "ALIBABA_CLOUD_PROFILE", "staging" } },
                  .config_file = NULL, .r = -EINVAL, .error = "profile staging",
                  .error2 = "@/home/.alibabacloud/credentials" },
                { .what = "profile file without [default]: not found",
                  .env = { { "HOME", "@/prodonly" } },
                  .config_file = NULL, .r = -ENOENT, .error = "no profile [default]" },
                { .what = "nothing anywhere",
                  .env = { { "HOME", "@/emptyhome" }, { "CREDENTIALS_DIRECTORY", "@/emptycreddir" } },
                  .config_file = NULL, .r = -ENOENT, .error = "ALIBABA_CLOUD_ACCESS_KEY_ID",
                  .error2 = "@/emptyhome/.alibabacloud/credentials (no such file)" },
                { .what = "nothing, no HOME, no credentials directory",
                  .env = {},
                  .config_file = NULL, .r = -ENOENT, .error = "CREDENTIALS_DIRECTORY not set",
                  .error2 = "HOME not set" },
                { .what = "configured file missing: an error, not a fall-through",
                  .env = { { "HOME", "@/home" } },
                  .config_file = "@/no-such-file", .r = -EINVAL, .error = "@/no-such-file",
                  .error2 = "No such file or directory" },
                { .what = "configured file is a directory",
                  .env = { { "HOME", "@/home" } },
                  .config_file = "@/adir", .r = -EISDIR, .error = "@/adir", .error2 = "Is a directory" },
                { .what = "configured file too big",
                  .env = {},
                  .config_file = "@/conf-big", .r = -EFBIG, .error = "@/conf-big", .error2 = "64 KiB" },
                { .what = "configured file without keys",
                  .env = { { "HOME", "@/home" } },
                  .config_file = "@/conf-nokeys", .r = -EBADMSG, .error = "@/conf-nokeys" },
                { .what = "configured file without secret",
                  .env = {},
                  .config_file = "@/conf-nosecret", .r = -EBADMSG, .error = "@/conf-nosecret:2: access_key_secret is missing" },
                { .what = "group-readable configured file: works, with a warning",
                  .env = {},
                  .config_file = "@/conf-open", .r = 0, .source = CRED_SOURCE_FILE, .id = "AK_OPEN", .token = false,
                  .detail = "@/conf-open",
                  .warning = "@/conf-open is readable by group or others (mode 0644); chmod 600 it" },
                { .what = "group-readable profile file: works, with a warning",
                  .env = { { "HOME", "@/openhome" } },
                  .config_file = NULL, .r = 0, .source = CRED_SOURCE_PROFILE, .id = "AK_OPENHOME", .token = false,
                  .detail = "profile default in @/openhome/.alibabacloud/credentials",
                  .warning = "(mode 0640)" },
                { .what = "broken profile file",
                  .env = { { "HOME", "@/badhome" } },
                  .config_file = NULL, .r = -EBADMSG, .error = "@/badhome/.alibabacloud/credentials:2: expected" },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                char *expanded[ELEMENTSOF(rows[i].env)] = {};
                env_clear();
                for (size_t j = 0; j < ELEMENTSOF(rows[i].env) && rows[i].env[j][0]; j++) {
                        expanded[j] = expand(rows[i].env[j][1]);
                        env_set(rows[i].env[j][0], expanded[j]);
                }
                _cleanup_free_ char *config_file = expand(rows[i].config_file);
                _cleanup_free_ char *detail = expand(rows[i].detail);
                _cleanup_free_ char *error = expand(rows[i].error);
                _cleanup_free_ char *error2 = expand(rows[i].error2);
                _cleanup_free_ char *warning = expand(rows[i].warning);
                config cfg = { .credentials_file = config_file };
                credentials c = {};
                char *err = NULL, *warn = NULL;

                int r = credentials_resolve_static(&cfg, fake_getenv, &c, &err, &warn);
                if (r != rows[i].r)
                        fail_msg("row %zu (%s): r=%d, want %d (%s)", i, rows[i].what, r, rows[i].r,
                                 strna(err));
                assert_no_secret_in(rows[i].what, err);
                assert_no_secret_in(rows[i].what, warn);
                assert_no_secret_in(rows[i].what, c.source_detail);
                if (r == 0 && (c.source != rows[i].source || !streq_null(c.access_key_id, rows[i].id) ||
                               !c.access_key_secret || !!c.security_token != rows[i].token ||
                               !streq_null(c.source_detail, detail)))
                        fail_msg("row %zu (%s): got %s %s (%s) token=%d", i, rows[i].what,
                                 cred_source_name(c.source), strna(c.access_key_id),
                                 strna(c.source_detail), !!c.security_token);
                if (r != 0 && (c.access_key_id || c.access_key_secret))
                        fail_msg("row %zu (%s): credentials filled on failure", i, rows[i].what);
                if (error && (!err || !strstr(err, error)))
                        fail_msg("row %zu (%s): error \"%s\" lacks \"%s\"", i, rows[i].what,
                                 strna(err), error);
                if (error2 && (!err || !strstr(err, error2)))
                        fail_msg("row %zu (%s): error \"%s\" lacks \"%s\"", i, rows[i].what,
                                 strna(err), error2);
                if (!warning && warn)
                        fail_msg("row %zu (%s): unexpected warning \"%s\"", i, rows[i].what, warn);
                if (warning && (!warn || !strstr(warn, warning)))
                        fail_msg("row %zu (%s): warning \"%s\" lacks \"%s\"", i, rows[i].what,
                                 strna(warn), warning);

                credentials_done(&c);
                assert_null(c.access_key_secret);
                free(err);
                free(warn);
                for (size_t j = 0; j < ELEMENTSOF(expanded); j++)
                        free(expanded[j]);
        }
        env_clear();
}

static void test_unreadable_file(void **state) {
        if (geteuid() == 0)
                skip(); /* root reads mode 0000 files */
        write_file("conf-locked", "access_key_id = A\naccess_key_secret = s3cr3t-l\n", 0000);
        _cleanup_free_ char *path = expand("@/conf-locked");
        config cfg = { .credentials_file = path };
        credentials c = {};
        _cleanup_free_ char *err = NULL, *warn = NULL;

        env_clear();
        assert_int_equal(credentials_resolve_static(&cfg, fake_getenv, &c, &err, &warn), -EACCES);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "Permission denied"));
}

static void test_ecs_role_requested(void **state) {
        config cfg = {};
        env_clear();
        assert_null(credentials_ecs_role_requested(&cfg, fake_getenv));
        assert_null(credentials_ecs_role_requested(NULL, fake_getenv));
        env_set("ALIBABA_CLOUD_ECS_METADATA", "env-role");
        assert_string_equal(credentials_ecs_role_requested(&cfg, fake_getenv), "env-role");
        cfg.ecs_ram_role = "auto";
        assert_string_equal(credentials_ecs_role_requested(&cfg, fake_getenv), "auto");
        cfg.ecs_ram_role = "";
        assert_string_equal(credentials_ecs_role_requested(&cfg, fake_getenv), "env-role");
        env_set("ALIBABA_CLOUD_ECS_METADATA", "");
        assert_null(credentials_ecs_role_requested(&cfg, fake_getenv));
        env_clear();
}

static void test_source_names(void **state) {
        for (cred_source s = CRED_SOURCE_NONE; s <= CRED_SOURCE_ECS_RAM_ROLE; s++) {
                const char *n = cred_source_name(s);
                assert_non_null(n);
                assert_string_not_equal(n, "unknown");
        }
}

/* ---- providers without the network ---- */

static void test_provider_static(void **state) {
        credentials c = {
                .access_key_id = strdup("AK"),
                .access_key_secret = strdup("s3cr3t-static"),
                .source = CRED_SOURCE_FILE,
        };
        cred_provider *p = NULL;
        assert_int_equal(cred_provider_new_static(&c, &p), 0);
        assert_null(c.access_key_secret); /* taken */
        const credentials *got = cred_provider_get(p);
        assert_non_null(got);
        assert_string_equal(got->access_key_id, "AK");
        cred_provider_free(p);

        /* STS credentials handed in that have expired are not handed out */
        c = (credentials){
                .access_key_id = strdup("AK"),
                .access_key_secret = strdup("s3cr3t-static"),
                .security_token = strdup("t0k3n-static"),
                .expiration_ms = now_realtime_ms() - 1000,
        };
        assert_int_equal(cred_provider_new_static(&c, &p), 0);
        assert_null(cred_provider_get(p));
        cred_provider_free(p);
}

static void test_provider_new_chain(void **state) {
        cred_provider *p = NULL;
        char *err = NULL;
        config cfg = {};

        env_clear();
        env_set("ALIBABA_CLOUD_ACCESS_KEY_ID", "testid");
        env_set("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t-testsecret");
        /* no loop, no HTTP needed for static credentials */
        assert_int_equal(cred_provider_new(NULL, NULL, &cfg, fake_getenv, &p, &err), 0);
        assert_null(err);
        const credentials *got = cred_provider_get(p);
        assert_non_null(got);
        assert_int_equal(got->source, CRED_SOURCE_ENV);
        assert_string_equal(got->access_key_id, "testid");
        cred_provider_free(p);

        env_clear();
        env_set("HOME", "/nonexistent-rollguard-home");
        assert_int_equal(cred_provider_new(NULL, NULL, &cfg, fake_getenv, &p, &err), -ENOENT);
        assert_non_null(strstr(err, "no credentials found"));
        assert_non_null(strstr(err, "ecs_ram_role"));
        free(err);
        err = NULL;

        /* a RAM role needs the loop; a bad role name is refused up front */
        cfg.ecs_ram_role = "auto";
        assert_int_equal(cred_provider_new(NULL, NULL, &cfg, fake_getenv, &p, &err), -EINVAL);
        assert_non_null(err);
        free(err);
        err = NULL;
        env_clear();
}

int main(void) {
        const struct CMUnitTest file_tests[] = {
                cmocka_unit_test(test_parse_ini_table),
                cmocka_unit_test(test_resolve_static_table),
                cmocka_unit_test(test_unreadable_file),
                cmocka_unit_test(test_ecs_role_requested),
                cmocka_unit_test(test_source_names),
                cmocka_unit_test(test_provider_static),
                cmocka_unit_test(test_provider_new_chain),
        };
        log_setup(LOG_TARGET_STDERR, false);
        return cmocka_run_group_tests_name("credentials files", file_tests, setup_files, teardown_files);
}
