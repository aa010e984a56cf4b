/* SPDX-License-Identifier: MIT */
/* The `ha:` section: etcd endpoints, the key prefix, the lease and this
 * node's name, and how to reach etcd (tls, user). Only what the file says:
 * the password file is read when the daemon starts (src/decide/fence.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config_read.h"
#include "config_sections.h"

#define HA_MAX_ENDPOINTS 16u
#define HA_MIN_TTL (2 * USEC_PER_SEC)  /* etcd's own floor is about 2s */
#define HA_MAX_TTL (10 * USEC_PER_MIN)
#define HA_PREFIX_MAX 200u
#define HA_NODE_MAX 128u

int cfg_init_ha(config *c) {
        c->ha.lease_ttl_usec = 10 * USEC_PER_SEC;
        return 0;
}

void cfg_done_ha(config *c) {
        ha_config *h = &c->ha;
        for (size_t i = 0; h->etcd && i < h->n_etcd; i++)
                free(h->etcd[i]);
        h->etcd = mfree(h->etcd);
        h->n_etcd = 0;
        h->prefix = mfree(h->prefix);
        h->node = mfree(h->node);
        h->ca_file = mfree(h->ca_file);
        h->cert_file = mfree(h->cert_file);
        h->key_file = mfree(h->key_file);
        h->user = mfree(h->user);
        h->password_file = mfree(h->password_file);
}

/* One URL or a list of them; each is tried in turn. */
static int parse_endpoints(parse_ctx *x, const node *v, ha_config *h) {
        const node *items = v;
        size_t n = 1;
        if (v->kind == NODE_SEQUENCE) {
                items = v->items;
                n = v->n_items;
                if (n == 0)
                        return fail(x, v, "ha.etcd: empty list (expected the etcd client URLs, e.g. [http://10.0.0.5:2379])");
                if (n > HA_MAX_ENDPOINTS)
                        return fail(x, v, "ha.etcd: more than %u endpoints", HA_MAX_ENDPOINTS);
        }
        h->etcd = calloc(n + 1, sizeof *h->etcd);
        if (!h->etcd)
                return -ENOMEM;
        h->n_etcd = n;
        for (size_t i = 0; i < n; i++) {
                char path[32];
                if (v->kind == NODE_SEQUENCE)
                        cfg_pathf(path, sizeof path, "ha.etcd[%zu]", i);
                else
                        cfg_pathf(path, sizeof path, "ha.etcd");
                int r = cfg_get_url(x, &items[i], path, &h->etcd[i]);
                if (r < 0)
                        return r;
                /* The client appends /v3/...: a path here would be lost or doubled. */
                const char *host = strstr(h->etcd[i], "://") + 3;
                if (strchr(host, '/'))
                        return fail(x, &items[i], "%s: '%s' has a path; give only scheme, host and port (http://10.0.0.5:2379)",
                                    path, SHOW(h->etcd[i]));
        }
        return 0;
}

static int parse_prefix(parse_ctx *x, const node *v, ha_config *h) {
        int r = cfg_get_string(x, v, "ha.prefix", "a key prefix such as /rollguard/prod", &h->prefix);
        if (r < 0)
                return r;
        size_t n = strlen(h->prefix);
        while (n > 1 && h->prefix[n - 1] == '/')
                h->prefix[--n] = 0;
        if (h->prefix[0] != '/' || n < 2)
                return fail(x, v, "ha.prefix: '%s' must start with '/' and name something (e.g. /rollguard/prod)",
                            SHOW(h->prefix));
        if (n > HA_PREFIX_MAX || cfg_has_control_or_space(h->prefix, false))
                return fail(x, v, "ha.prefix: '%s' is not a usable key prefix (no spaces, at most %u characters)",
                            SHOW(h->prefix), HA_PREFIX_MAX);
        return 0;
}

static int parse_ttl(parse_ctx *x, const node *v, ha_config *h) {
        int r = cfg_get_duration(x, v, "ha.lease_ttl", HA_MIN_TTL, HA_MAX_TTL, &h->lease_ttl_usec);
        if (r < 0)
                return r;
        /* etcd grants leases in whole seconds. */
        if (h->lease_ttl_usec % USEC_PER_SEC)
                return fail(x, v, "ha.lease_ttl: etcd leases are whole seconds (e.g. 10s)");
        return 0;
}

static int parse_node(parse_ctx *x, const node *v, ha_config *h) {
        int r = cfg_get_string(x, v, "ha.node", "this host's name in the leader key", &h->node);
        if (r < 0)
                return r;
        if (strlen(h->node) > HA_NODE_MAX || cfg_has_control_or_space(h->node, false))
                return fail(x, v, "ha.node: '%s' is not a usable node name (no spaces, at most %u characters)",
                            SHOW(h->node), HA_NODE_MAX);
        return 0;
}

static int parse_tls(parse_ctx *x, const node *v, ha_config *h) {
        static const char *const keys[] = { "ca_file", "cert_file", "key_file" };
        if (cfg_node_is_null(v))
                return 0;
        int r = cfg_want_mapping(x, v, "ha.tls", "a mapping (ca_file, cert_file, key_file)");
        if (r < 0)
                return r;
        const node *cert = NULL, *key = NULL;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, "ha.tls", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = cfg_get_string(x, val, "ha.tls.ca_file", "a PEM file name", &h->ca_file);
                        break;
                case 1:
                        r = cfg_get_string(x, val, "ha.tls.cert_file", "a PEM file name", &h->cert_file);
                        cert = val;
                        break;
                case 2:
                        r = cfg_get_string(x, val, "ha.tls.key_file", "a PEM file name", &h->key_file);
                        key = val;
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        if (cert && !key)
                return fail(x, cert, "ha.tls: cert_file needs key_file (the client certificate's private key)");
        if (key && !cert)
                return fail(x, key, "ha.tls: key_file needs cert_file (the client certificate)");
        return 0;
}

static int default_node(parse_ctx *x, const node *v, ha_config *h) {
        char host[256] = { 0 };
        if (gethostname(host, sizeof host - 1) < 0 || !host[0] || cfg_has_control_or_space(host, false))
                return fail(x, v, "ha: cannot use the host name as the node name: set ha.node");
        h->node = strdup(host);
        return h->node ? 0 : -ENOMEM;
}

int cfg_parse_ha(parse_ctx *x, const node *v, config *c) {
        static const char *const keys[] = { "etcd", "prefix", "lease_ttl", "node", "tls", "user", "password_file" };
        ha_config *h = &c->ha;
        const node *user = NULL, *password = NULL;
        int r = cfg_want_mapping(x, v, "ha", "a mapping (etcd, prefix, lease_ttl, node, tls, user, password_file)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, "ha", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = parse_endpoints(x, val, h);
                        break;
                case 1:
                        r = parse_prefix(x, val, h);
                        break;
                case 2:
                        r = parse_ttl(x, val, h);
                        break;
                case 3:
                        r = parse_node(x, val, h);
                        break;
                case 4:
                        r = parse_tls(x, val, h);
                        break;
                case 5:
                        r = cfg_get_string(x, val, "ha.user", "an etcd user name", &h->user);
                        user = val;
                        break;
                case 6:
                        r = cfg_get_string(x, val, "ha.password_file", "a file name", &h->password_file);
                        password = val;
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        if (!h->etcd)
                return fail(x, v, "ha: missing required key 'etcd' (the etcd client URLs, e.g. [http://10.0.0.5:2379])");
        if (password && !user)
                return fail(x, password, "ha.password_file: without ha.user there is nobody to log in as");
        if (user && cfg_has_control_or_space(h->user, false))
                return fail(x, user, "ha.user: '%s' is not a usable user name", SHOW(h->user));
        bool any_https = false;
        for (size_t i = 0; i < h->n_etcd; i++)
                any_https = any_https || strncmp(h->etcd[i], "https://", 8) == 0;
        if ((h->ca_file || h->cert_file) && !any_https)
                return fail(x, v, "ha.tls is set but every ha.etcd endpoint is http://: use https:// URLs");
        if (!h->prefix && !(h->prefix = strdup("/rollguard")))
                return -ENOMEM;
        if (!h->node)
                return default_node(x, v, h);
        return 0;
}

bool config_ha_equal(const ha_config *a, const ha_config *b) {
        if (a->n_etcd != b->n_etcd || a->lease_ttl_usec != b->lease_ttl_usec)
                return false;
        for (size_t i = 0; i < a->n_etcd; i++)
                if (!streq_null(a->etcd[i], b->etcd[i]))
                        return false;
        return streq_null(a->prefix, b->prefix) && streq_null(a->node, b->node) &&
               streq_null(a->ca_file, b->ca_file) && streq_null(a->cert_file, b->cert_file) &&
               streq_null(a->key_file, b->key_file) && streq_null(a->user, b->user) &&
               streq_null(a->password_file, b->password_file);
}
