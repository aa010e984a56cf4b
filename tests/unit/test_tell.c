/* SPDX-License-Identifier: MIT */
/* The pure half of src/tell/tell.h (where a channel's files are read from,
 * the host shown for a URL) and reading a channel from its config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "tell.h"
#include "util.h"

static const char *const usable_paths[] = { "/etc/rollguard/url", "/run/creds/url", "/run/creds/sec" };

static bool usable(const char *p) {
        for (size_t i = 0; i < ELEMENTSOF(usable_paths); i++)
                if (streq(p, usable_paths[i]))
                        return true;
        return false;
}

static void test_credential_path(void **state) {
        static const struct {
                const char *configured, *dir, *want;
        } t[] = {
                { "/etc/rollguard/url", "/run/creds", "/etc/rollguard/url" },  /* readable: itself */
                { "/etc/rollguard/url", NULL, "/etc/rollguard/url" },
                { "url", "/run/creds", "/run/creds/url" },                     /* relative: the credentials */
                { "url", NULL, "url" },                                        /* ... or named in the error */
                { "url", "", "url" },
                { "/etc/rollguard/sec", "/run/creds", "/run/creds/sec" },      /* unreadable: by its name */
                { "/etc/rollguard/gone", "/run/creds", "/etc/rollguard/gone" }, /* neither: as configured */
                { "/etc/rollguard/", "/run/creds", "/etc/rollguard/" },
                { "/etc/rollguard/sec", NULL, "/etc/rollguard/sec" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *p = tell_credential_path(t[i].configured, t[i].dir, usable);
                assert_non_null(p);
                if (!streq(p, t[i].want))
                        fail_msg("case %zu (%s in %s): got %s want %s", i, t[i].configured, strna(t[i].dir), p,
                                 t[i].want);
        }
}

static void test_url_host(void **state) {
        static const struct {
                const char *url, *want;
        } t[] = {
                { "https://oapi.dingtalk.com/robot/send?access_token=SECRET", "oapi.dingtalk.com" },
                { "https://open.feishu.cn/open-apis/bot/v2/hook/SECRET", "open.feishu.cn" },
                { "http://127.0.0.1:8080/x", "127.0.0.1:8080" },
                { "https://user:SECRET@hooks.example.com/x", "hooks.example.com" },
                { "https://h?token=SECRET", "h" },
                { "https://h#SECRET", "h" },
                { "https://", "?" },
                { "no scheme SECRET", "?" },
                { NULL, "?" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char buf[64];
                const char *h = tell_url_host(t[i].url, buf, sizeof buf);
                if (!streq(h, t[i].want) || strstr(h, "SECRET"))
                        fail_msg("case %zu: got %s want %s", i, h, t[i].want);
        }
}

static char *write_tmp(const char *dir, const char *name, const char *text) {
        char *p = strdup_printf("%s/%s", dir, name);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return p;
}

static void test_channel_load(void **state) {
        char dir[] = "/tmp/test_tell.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *u = write_tmp(dir, "url", "https://oapi.dingtalk.com/robot/send?access_token=TOK\n");
        _cleanup_free_ char *s = write_tmp(dir, "secret", "SECabc\r\n");
        _cleanup_free_ char *bad = write_tmp(dir, "bad", "ftp://TOKEN-IN-BAD\n");
        _cleanup_free_ char *text = strdup_printf(
                "apps:\n  - { name: shop-api, platform: sae, region: cn-hangzhou, app_id: a }\n"
                "notify:\n"
                "  - { name: a, type: dingtalk, url_file: url, secret_file: %s, events: [action, degraded],"
                " apps: shop-api, retry_for: 30s }\n"
                "  - { name: b, type: lark, url_file: %s }\n"
                "  - { name: c, type: slack, url: 'https://hooks.slack.com/services/T/B/X' }\n",
                s, bad);
        config *cfg = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_parse("t.yaml", text, strlen(text), &cfg, &err), 0);
        assert_int_equal(cfg->n_notify, 3);
        const notify_config *a = &cfg->notify[0];
        assert_string_equal(a->ch.name, "a");
        assert_int_equal(a->ch.type, NOTIFY_DINGTALK);
        assert_null(a->ch.url);
        assert_string_equal(a->url_file, "url");
        assert_int_equal(a->ch.events, NOTIFY_EVENT_BIT(NOTIFY_EV_ACTION) | NOTIFY_EVENT_BIT(NOTIFY_EV_DEGRADED));
        assert_int_equal(a->ch.n_apps, 1);
        assert_int_equal(a->ch.retry_for_usec, 30 * USEC_PER_SEC);
        assert_int_equal(cfg->notify[1].ch.type, NOTIFY_FEISHU);
        assert_int_equal(cfg->notify[2].ch.events, 0);

        notify_channel ch = { 0 };
        _cleanup_free_ char *from = NULL, *sfrom = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL;
        assert_int_equal(tell_channel_load(a, dir, &ch, &from, &sfrom, &e1), 0);
        assert_string_equal(ch.url, "https://oapi.dingtalk.com/robot/send?access_token=TOK");
        assert_string_equal(ch.secret, "SECabc");
        assert_string_equal(from, u);
        assert_string_equal(sfrom, s);
        notify_channel_done(&ch);

        /* the bad file is named, its content is not */
        assert_true(tell_channel_load(&cfg->notify[1], dir, &ch, NULL, NULL, &e2) < 0);
        assert_non_null(strstr(e2, bad));
        assert_null(strstr(e2, "TOKEN-IN-BAD"));
        /* without the credentials directory a relative name cannot be found */
        assert_true(tell_channel_load(a, NULL, &ch, NULL, NULL, &e3) < 0);
        assert_non_null(strstr(e3, "CREDENTIALS_DIRECTORY"));
        config_free(cfg);
        unlink(u);
        unlink(s);
        unlink(bad);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_credential_path),
                cmocka_unit_test(test_url_host),
                cmocka_unit_test(test_channel_load),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
