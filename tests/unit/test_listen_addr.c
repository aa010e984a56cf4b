/* SPDX-License-Identifier: MIT */
/* alerts.listen: what binds and what is refused with which message. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "listen_addr.h"
#include "util.h"

static const struct {
        const char *in;
        int family; /* 0: refused */
        const char *host;
        unsigned port;
        const char *error; /* a part of it */
} cases[] = {
        { "127.0.0.1:9095", AF_INET, "127.0.0.1", 9095, NULL },
        { "0.0.0.0:0", AF_INET, "0.0.0.0", 0, NULL },
        { "localhost:80", AF_INET, "127.0.0.1", 80, NULL },
        { "[::1]:9095", AF_INET6, "::1", 9095, NULL },
        { "::1:9095", 0, NULL, 0, "write an IPv6 address in brackets" },
        { "127.0.0.1", 0, NULL, 0, "expected ADDRESS:PORT" },
        { ":9095", 0, NULL, 0, "expected ADDRESS:PORT" },
        { "127.0.0.1:65536", 0, NULL, 0, "expected ADDRESS:PORT" },
        { "127.0.0.1:+80", 0, NULL, 0, "expected ADDRESS:PORT" },
        { "example.com:80", 0, NULL, 0, "numeric address" },
        { "[::1:80", 0, NULL, 0, "expected ADDRESS:PORT" },
};

static void test_listen_addr(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                listen_addr a;
                char *err = NULL;
                int r = listen_addr_parse(cases[i].in, &a, &err);
                if (!cases[i].family) {
                        if (r != -EINVAL || !err || !strstr(err, cases[i].error))
                                fail_msg("%s: rc %d error \"%s\"", cases[i].in, r, err ? err : "(none)");
                        free(err);
                        continue;
                }
                if (r < 0 || a.sa.sa_family != cases[i].family)
                        fail_msg("%s: rc %d family %d", cases[i].in, r, a.sa.sa_family);
                char host[INET6_ADDRSTRLEN];
                bool v6 = cases[i].family == AF_INET6;
                inet_ntop(cases[i].family, v6 ? (const void *)&a.in6.sin6_addr : (const void *)&a.in.sin_addr, host,
                          sizeof host);
                unsigned port = ntohs(v6 ? a.in6.sin6_port : a.in.sin_port);
                if (!streq(host, cases[i].host) || port != cases[i].port)
                        fail_msg("%s: got %s port %u", cases[i].in, host, port);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_listen_addr),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
