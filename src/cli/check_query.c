/* SPDX-License-Identifier: MIT */
#include "check_query.h"

#include <errno.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "http.h"
#include "metric_eval.h"
#include "prom.h"
#include "prom_template.h"
#include "util.h"

void check_print_query_rule(FILE *f, const rule *r) {
        if (!r->query)
                return;
        /* one line: a folded query's line breaks become blanks */
        char q[160];
        size_t n = 0;
        for (const char *p = r->query; *p && n + 4 < sizeof q; p++) {
                char ch = *p == '\n' || *p == '\t' ? ' ' : *p;
                if (ch == ' ' && n > 0 && q[n - 1] == ' ')
                        continue;
                q[n++] = ch;
        }
        q[n] = 0;
        if (strlen(r->query) > n)
                snprintf(q + (n > sizeof q - 4 ? sizeof q - 4 : n), 4, "...");
        fprintf(f, ", query %s %.6g: %s", rule_cmp_name(r->cmp), r->threshold, q);
}

typedef struct pending {
        sd_event *event;
        size_t left;
        int inconclusive;
        FILE *f;
} pending;

typedef struct one {
        pending *p;
        const app_config *app;
        const rule *rule;
        prom_query *q;
        prom_verdict v;
        bool done;
} one;

static void on_done(prom_query *q, const prom_verdict *v, void *userdata) {
        one *o = userdata;
        (void)q;
        o->v = *v;
        o->done = true;
        if (--o->p->left == 0)
                sd_event_exit(o->p->event, 0);
}

int check_run_queries(const config *cfg, FILE *f) {
        size_t n = 0;
        for (size_t i = 0; i < cfg->n_apps; i++)
                for (size_t j = 0; j < cfg->apps[i].n_rules; j++)
                        n += cfg->apps[i].rules[j].query != NULL;
        if (!cfg->prom_url || n == 0) {
                fprintf(f, "  queries: none to run (no rule has a query)\n");
                return 0;
        }

        _cleanup_free_ one *all = calloc(n, sizeof *all);
        if (!all)
                return -ENOMEM;
        sd_event *e = NULL;
        http_client *http = NULL;
        prom_client *prom = NULL;
        _cleanup_free_ char *err = NULL;
        pending p = { .f = f };
        int r = sd_event_new(&e);
        if (r >= 0)
                r = http_client_new(e, &http);
        if (r >= 0)
                r = metric_eval_client_new(http, cfg, &prom, &err);
        if (r < 0) {
                fprintf(f, "  queries: cannot ask %s: %s\n", cfg->prom_url, err ? err : strerror(-r));
                goto out;
        }
        p.event = e;

        size_t k = 0;
        for (size_t i = 0; i < cfg->n_apps; i++)
                for (size_t j = 0; j < cfg->apps[i].n_rules; j++) {
                        const rule *rl = &cfg->apps[i].rules[j];
                        if (!rl->query)
                                continue;
                        one *o = &all[k++];
                        *o = (one){ .p = &p, .app = &cfg->apps[i], .rule = rl };
                        prom_template_vars vars = { .app = o->app->name, .app_id = o->app->app_id,
                                                    .region = o->app->region, .release_started = -1 };
                        _cleanup_free_ char *q = NULL, *terr = NULL;
                        r = prom_template_check(rl->query, &vars, &q, &terr, NULL);
                        if (r >= 0)
                                r = prom_query_new(prom, on_done, o, &o->q);
                        if (r >= 0)
                                r = prom_query_start(o->q, q, 0);
                        if (r < 0) {
                                o->done = true;
                                o->v = (prom_verdict){ .reason = PROM_QUERY_ERROR };
                                snprintf(o->v.text, sizeof o->v.text, "%s", terr ? terr : strerror(-r));
                        } else
                                p.left++;
                }
        if (p.left > 0)
                r = sd_event_loop(e);
        fprintf(f, "  queries (%s):\n", cfg->prom_url);
        for (size_t i = 0; i < k; i++) {
                one *o = &all[i];
                char b[PROM_TEXT_MAX + 32];
                bool ok = o->v.reason == PROM_OK;
                p.inconclusive += !ok;
                fprintf(f, "    %s/%s: %s%s\n", o->app->name, o->rule->name, ok ? "value " : "",
                        prom_format_verdict(&o->v, b, sizeof b));
                if (ok)
                        fprintf(f, "      (%s %.6g: %s now)\n", rule_cmp_name(o->rule->cmp), o->rule->threshold,
                                rule_metric_holds(o->rule, o->v.value) ? "holds" : "does not hold");
                o->q = prom_query_free(o->q);
        }
        r = r < 0 ? r : p.inconclusive;
out:
        for (size_t i = 0; i < n; i++)
                prom_query_free(all[i].q);
        prom_client_free(prom);
        http_client_free(http);
        sd_event_unref(e);
        return r;
}
