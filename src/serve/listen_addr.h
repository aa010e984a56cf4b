/* SPDX-License-Identifier: MIT */
/* alerts.listen as an address to bind: pure, so its refusals are tested. */
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

typedef union listen_addr {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} listen_addr;

/* "127.0.0.1:9095", "[::1]:9095", "localhost:9095"; port 0 = any free port.
 * Numeric only (plus localhost). 0, or -EINVAL with *ret_error. */
int listen_addr_parse(const char *s, listen_addr *ret, char **ret_error);
