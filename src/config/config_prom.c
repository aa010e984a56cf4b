/* SPDX-License-Identifier: MIT */
/* prometheus: where metric rules send their queries, and a rule's
 * `when: {query, above | below}` (parse_when in config_apps.c hands those
 * three keys here). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_read.h"
#include "config_sections.h"
#include "prom.h"
#include "prom_template.h"

/* The same words, in the order of prom_auth (prom.h). */
static const char *const auth_names[] = { "none", "bearer", "token", "basic" };
_Static_assert(PROM_AUTH_NONE == 0 && PROM_AUTH_BEARER == 1 && PROM_AUTH_TOKEN == 2 && PROM_AUTH_BASIC == 3 &&
                       _PROM_AUTH_MAX == 4,
               "auth_names[] follows prom_auth");

int cfg_parse_prometheus(parse_ctx *x, const node *v, config *c) {
        static const char *const keys[] = { "url", "token_file", "auth", "timeout" };
        const node *auth = NULL;
        int r;

        if (cfg_node_is_null(v))
                return fail(x, v, "prometheus: missing required key 'url' (the HTTP API address, e.g. "
                                  "http://127.0.0.1:9090)");
        r = cfg_want_mapping(x, v, "prometheus", "a mapping (url, token_file, auth, timeout)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, "prometheus", keys, ELEMENTSOF(keys));
                switch (k) {
                case 0:
                        r = cfg_get_url(x, val, "prometheus.url", &c->prom_url);
                        if (r >= 0 && strpbrk(c->prom_url, "?#"))
                                r = fail(x, val, "prometheus.url: '%s' must be the API's base address, without "
                                                 "a query or fragment", SHOW(c->prom_url));
                        break;
                case 1:
                        r = cfg_get_string(x, val, "prometheus.token_file", "a file name", &c->prom_token_file);
                        break;
                case 2:
                        r = cfg_get_choice(x, val, "prometheus.auth", "an authentication scheme", auth_names,
                                           ELEMENTSOF(auth_names));
                        if (r >= 0)
                                c->prom_auth = r;
                        auth = val;
                        break;
                case 3:
                        r = cfg_get_duration(x, val, "prometheus.timeout", 100 * USEC_PER_MSEC, 5 * USEC_PER_MIN,
                                             &c->prom_timeout_usec);
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        if (!c->prom_url)
                return fail(x, v, "prometheus: missing required key 'url' (the HTTP API address, e.g. "
                                  "http://127.0.0.1:9090)");
        if (auth && c->prom_auth == PROM_AUTH_NONE && c->prom_token_file)
                return fail(x, auth, "prometheus.auth: none, but a token_file is given (leave auth out for a "
                                     "bearer token)");
        return 0;
}

int cfg_init_prometheus(config *c) {
        c->prom_timeout_usec = PROM_DEFAULT_TIMEOUT_USEC;
        return 0;
}

void cfg_done_prometheus(config *c) {
        c->prom_url = mfree(c->prom_url);
        c->prom_token_file = mfree(c->prom_token_file);
}

/* ---- a rule's query ---- */

static int parse_threshold(parse_ctx *x, const node *v, const char *path, double *ret) {
        int r = cfg_want_scalar(x, v, path, "a number such as 0.05");
        if (r < 0)
                return r;
        char *end = NULL;
        double d = strtod(v->text, &end);
        if (v->len == 0 || !end || *end || !isfinite(d))
                return fail(x, v, "%s: '%s' is not a finite number (expected e.g. 0.05)", path, SHOW(v->text));
        *ret = d;
        return 0;
}

int cfg_parse_when_metric(parse_ctx *x, const node *val, const char *path, int which, when_metric *m,
                          rule *rl) {
        switch (which) {
        case 0: {
                int r = cfg_want_scalar(x, val, path, "a PromQL query");
                if (r < 0)
                        return r;
                /* folded and literal blocks keep newlines; PromQL takes them as blanks */
                size_t n = val->len;
                while (n > 0 && strchr(" \t\r\n", val->text[n - 1]))
                        n--;
                if (n == 0)
                        return fail(x, val, "%s: empty query", path);
                for (size_t i = 0; i < n; i++) {
                        unsigned char ch = (unsigned char)val->text[i];
                        if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
                                return fail(x, val, "%s: control character in the query (byte %zu)", path, i + 1);
                }
                if (n >= PROM_QUERY_MAX)
                        return fail(x, val, "%s: longer than %d bytes", path, PROM_QUERY_MAX - 1);
                char *q = strndup(val->text, n);
                if (!q)
                        return -ENOMEM;
                free(rl->query);
                rl->query = q;
                rl->query_line = val->line;
                rl->query_col = val->col;
                m->query = val;
                return 0;
        }
        case 1:
        case 2:
                if (which == 1)
                        m->above = val;
                else
                        m->below = val;
                rl->cmp = which == 1 ? RULE_ABOVE : RULE_BELOW;
                return parse_threshold(x, val, path, &rl->threshold);
        }
        return -EINVAL;
}

int cfg_finish_when_metric(parse_ctx *x, const node *when, const char *where, const when_metric *m) {
        if (m->above && m->below)
                return fail(x, m->below, "%s: both above and below (give exactly one)", where);
        if (m->query && !m->above && !m->below)
                return fail(x, m->query, "%s.query: needs above or below (the threshold)", where);
        if (!m->query && (m->above || m->below)) {
                const node *t = m->above ? m->above : m->below;
                return fail(x, t, "%s.%s: only applies to a query (add query:)", where,
                            m->above ? "above" : "below");
        }
        (void)when;
        return 0;
}


/* The template's offset is into the scalar's value; the file may spell it
 * folded, quoted or escaped. The placeholder itself ("{{apps}}") is spelt
 * the same in the file: find it after the value's start, else point at the
 * value. */
static void template_position(const parse_ctx *x, const rule *rl, size_t offset, unsigned *line, unsigned *col) {
        *line = rl->query_line;
        *col = rl->query_col;
        size_t qlen = strlen(rl->query);
        if (offset >= qlen || strncmp(rl->query + offset, "{{", 2) != 0)
                return;
        const char *end = strstr(rl->query + offset, "}}");
        size_t n = end ? (size_t)(end - (rl->query + offset)) + 2 : qlen - offset;
        if (n > 64)
                n = 64;
        size_t start = cfg_mark_offset(x, rl->query_line - 1, rl->query_col - 1);
        for (size_t i = start; i + n <= x->len; i++)
                if (memcmp(x->text + i, rl->query + offset, n) == 0) {
                        cfg_offset_position(x, i, line, col);
                        return;
                }
}

int cfg_check_prom_rules(parse_ctx *x, const config *c) {
        for (size_t i = 0; i < c->n_apps; i++) {
                const app_config *a = &c->apps[i];
                prom_template_vars vars = { .app = a->name, .app_id = a->app_id, .region = a->region,
                                            .release_started = -1 };
                for (size_t j = 0; j < a->n_rules; j++) {
                        const rule *rl = &a->rules[j];
                        if (!rl->query)
                                continue;
                        if (!c->prom_url)
                                return cfg_fail_at(x, -EINVAL, rl->query_line, rl->query_col,
                                                   "apps[%zu].rules[%zu].when.query: a query rule needs the "
                                                   "prometheus section (prometheus: {url: ...})",
                                                   i, j);
                        _cleanup_free_ char *err = NULL;
                        size_t off = 0;
                        int r = prom_template_check(rl->query, &vars, NULL, &err, &off);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0) {
                                unsigned line, col;
                                template_position(x, rl, off, &line, &col);
                                return cfg_fail_at(x, r, line, col, "apps[%zu].rules[%zu].when.query: %s", i, j,
                                                   err ? err : "invalid template");
                        }
                }
        }
        return 0;
}

char *config_prom_token_path(const config *c, const char *credentials_dir, bool (*exists)(const char *path)) {
        bool have_dir = credentials_dir && *credentials_dir;
        if (c->prom_token_file) {
                /* LoadCredential=prom-token:... gives a bare name */
                if (!strchr(c->prom_token_file, '/') && have_dir)
                        return strdup_printf("%s/%s", credentials_dir, c->prom_token_file);
                return strdup(c->prom_token_file);
        }
        if (!have_dir)
                return NULL;
        char *p = strdup_printf("%s/prom-token", credentials_dir);
        if (p && exists && !exists(p))
                p = mfree(p);
        return p;
}
