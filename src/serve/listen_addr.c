/* SPDX-License-Identifier: MIT */
#include "listen_addr.h"

#include <arpa/inet.h>
#include <errno.h>

#include "util.h"

/* "127.0.0.1:9095", "[::1]:9095", "localhost:9095"; port 0 = any free port.
 * Numeric only (plus localhost): a listener that controls rollbacks should
 * not depend on DNS answering at start-up. */
int listen_addr_parse(const char *s, listen_addr *ret, char **ret_error) {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s)
                goto bad;

        char host[INET6_ADDRSTRLEN + 2];
        const char *h = s;
        size_t hl = (size_t)(colon - s);
        bool v6 = false;
        if (*h == '[') {
                if (hl < 3 || h[hl - 1] != ']')
                        goto bad;
                h++;
                hl -= 2;
                v6 = true;
        }
        if (hl == 0 || hl >= sizeof host)
                goto bad;
        memcpy(host, h, hl);
        host[hl] = '\0';

        int64_t port;
        if (parse_int64(colon + 1, 0, 65535, &port) < 0 || colon[1] == '+' || colon[1] == '-')
                goto bad;

        *ret = (listen_addr){ 0 };
        if (v6) {
                ret->in6.sin6_family = AF_INET6;
                ret->in6.sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host, &ret->in6.sin6_addr) != 1)
                        goto bad;
                return 0;
        }
        if (strchr(host, ':')) {
                *ret_error = strdup_printf("alerts.listen \"%s\": write an IPv6 address in brackets, e.g. [::1]:9095", s);
                return -EINVAL;
        }
        ret->in.sin_family = AF_INET;
        ret->in.sin_port = htons((uint16_t)port);
        if (streq(host, "localhost"))
                ret->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &ret->in.sin_addr) != 1)
                goto bad;
        return 0;
bad:
        *ret_error = strdup_printf(
                "alerts.listen \"%s\": expected ADDRESS:PORT with a numeric address, e.g. 127.0.0.1:9095 or [::1]:9095", s);
        return -EINVAL;
}
