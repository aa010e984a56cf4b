/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"


/* Everything the call needs later, in one allocation after the struct. */
int api_call_new(const char *base_url, const api_request *req, api_call **ret) {
        const char *sep = strstr(base_url, "://");
        if (!sep)
                return -EINVAL;
        size_t scheme_len = (size_t)(sep - base_url);
        if (!((scheme_len == 4 && !strncasecmp(base_url, "http", 4)) ||
              (scheme_len == 5 && !strncasecmp(base_url, "https", 5))))
                return -EINVAL;
        const char *authority = sep + 3;
        size_t auth_len = strcspn(authority, "/?#");
        if (auth_len == 0 || authority[auth_len] == '?' || authority[auth_len] == '#')
                return -EINVAL;
        /* base path without trailing slashes, the request path appended */
        const char *base_path = authority + auth_len;
        size_t base_path_len = strlen(base_path);
        if (strpbrk(base_path, "?#"))
                return -EINVAL;
        while (base_path_len > 0 && base_path[base_path_len - 1] == '/')
                base_path_len--;
        size_t origin_len = (size_t)(authority - base_url) + auth_len;

        size_t total = origin_len + 1 + auth_len + 1 + base_path_len + strlen(req->path) + 1 +
                       strlen(req->method) + 1 + strlen(req->action) + 1 + strlen(req->version) + 1;
        for (size_t i = 0; i < req->n_query; i++) {
                if (!req->query[i].name)
                        return -EINVAL;
                total += strlen(req->query[i].name) + 1 +
                         strlen(req->query[i].value ? req->query[i].value : "") + 1;
        }
        api_call *call = calloc(1, sizeof *call + total);
        if (!call)
                return -ENOMEM;
        char *p = call->strings;
#define PUT(dst, src, len)                 \
        do {                               \
                (dst) = p;                 \
                memcpy(p, (src), (len));   \
                p[(len)] = 0;              \
                p += (len) + 1;            \
        } while (0)
        PUT(call->origin, base_url, origin_len);
        PUT(call->host, authority, auth_len);
        call->path = p;
        memcpy(p, base_path, base_path_len);
        p += base_path_len;
        PUT(p, req->path, strlen(req->path));
        PUT(call->method, req->method, strlen(req->method));
        PUT(call->action, req->action, strlen(req->action));
        PUT(call->version, req->version, strlen(req->version));
        for (size_t i = 0; i < req->n_query; i++) {
                const char *v = req->query[i].value ? req->query[i].value : "";
                PUT(call->query_name[i], req->query[i].name, strlen(req->query[i].name));
                PUT(call->query_value[i], v, strlen(v));
        }
#undef PUT
        call->n_query = req->n_query;
        *ret = call;
        return 0;
}
