/* SPDX-License-Identifier: MIT */
/* The set of watched apps: built from the config at start, matched by name
 * and identity on reload. Above the per-app state machine (watcher.c): it
 * calls into it through app.h, never the other way. */
#include "watcher.h"

#include "watcher_app.h"
#include "log.h"
#include "schedule.h"
#include "util.h"

int watcher_new(sd_event *e, api_client *api, const config *cfg, const watcher_options *opt,
                watcher **ret) {
        watcher *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->event = sd_event_ref(e);
        w->cloud.api = api;
        w->cloud.cfg = cfg;
        w->cfg = cfg;
        w->opt = *opt;
        w->state_dir = strdup(opt->state_dir ? opt->state_dir : cfg->state_directory);
        if (!w->state_dir) {
                watcher_free(w);
                return -ENOMEM;
        }
        w->opt.state_dir = w->state_dir;
        if (opt->metrics) {
                metrics_registry *m = opt->metrics;
                w->polls = metrics_counter_new(m, "rollguard_polls_total", "Poll cycles by result.", "result");
                w->api_errors = metrics_counter_new(m, "rollguard_api_errors_total",
                                                    "Failed cloud API calls by error code.", "code");
                w->decisions = metrics_counter_new(m, "rollguard_decisions_total",
                                                   "Rules that fired, by app, rule and what the safety gate decided.",
                                                   "app", "rule", "result");
                w->actions = metrics_counter_new(m, "rollguard_actions_total", "Rollback/abort calls by kind and result.",
                                                 "kind", "result");
                w->quarantined = metrics_gauge_new(m, "rollguard_app_quarantined",
                                                   "1 while the app's state file cannot be read: watched, never acted on.",
                                                   "app");
                if (!w->polls || !w->api_errors || !w->decisions || !w->actions || !w->quarantined) {
                        watcher_free(w);
                        return -ENOMEM;
                }
        }
        w->apps = calloc(cfg->n_apps ? cfg->n_apps : 1, sizeof *w->apps);
        if (!w->apps) {
                watcher_free(w);
                return -ENOMEM;
        }
        for (size_t i = 0; i < cfg->n_apps; i++) {
                int r = app_watch_new(w, &cfg->apps[i], &w->apps[w->n_apps]);
                if (r < 0) {
                        watcher_free(w);
                        return r;
                }
                w->n_apps++;
        }
        *ret = w;
        return 0;
}

int watcher_start(watcher *w) {
        w->once_pending = w->n_apps;
        if (w->opt.once && w->n_apps == 0 && w->opt.once_done)
                w->opt.once_done(w->opt.userdata, 0);
        watcher_circuit_check(w, now_steady_ms());
        int r = watcher_budget_start(w);
        if (r < 0)
                return r;
        for (size_t i = 0; i < w->n_apps; i++) {
                /* The first app polls at once; the rest spread evenly, so start-up
                 * is not a burst the rate limiter has to flatten. */
                uint64_t at = schedule_startup_offset(i, w->n_apps, w->cfg->poll_interval_usec);
                app_watch_schedule(w->apps[i], w->opt.once ? 0 : at);
        }
        return 0;
}

static bool same_identity(const app_config *a, const app_config *b) {
        return a->platform == b->platform && streq(a->app_id, b->app_id) && streq(a->region, b->region);
}

int watcher_reconfigure(watcher *w, const config *cfg) {
        app_watch **apps = calloc(cfg->n_apps ? cfg->n_apps : 1, sizeof *apps);
        if (!apps)
                return -ENOMEM;
        size_t n = 0;
        /* Build the new set first so a failure leaves the old one running. */
        for (size_t i = 0; i < cfg->n_apps; i++) {
                const app_config *ac = &cfg->apps[i];
                app_watch *old = NULL;
                for (size_t j = 0; j < w->n_apps; j++)
                        /* identity, not name: a rename keeps the record and any
                         * action in flight */
                        if (w->apps[j] && same_identity(w->apps[j]->cfg, ac)) {
                                old = w->apps[j];
                                break;
                        }
                if (old && !streq(old->name, ac->name)) {
                        char *nn = strdup(ac->name);
                        if (nn) { /* out of memory: it keeps its old name */
                                log_fields f = { .app = ac->name };
                                log_event_send(EV_NONE, LOG_INFO, &f, "app %s is now called %s (same app id)",
                                               old->name, ac->name);
                                free(old->name);
                                old->name = nn;
                                old->actx.app_name = nn;
                                (void)free_and_strdup(&old->state.name, nn);
                        }
                }
                if (old) {
                        apps[n++] = old;
                        continue;
                }
                int r = app_watch_new(w, ac, &apps[n]);
                if (r < 0) {
                        for (size_t k = 0; k < n; k++) {
                                bool kept = false;
                                for (size_t j = 0; j < w->n_apps; j++)
                                        kept = kept || w->apps[j] == apps[k];
                                if (!kept)
                                        app_watch_free(apps[k]);
                        }
                        free(apps);
                        return r;
                }
                n++;
        }
        /* Commit: removed apps stop, kept apps point at their new config. */
        for (size_t j = 0; j < w->n_apps; j++) {
                bool kept = false;
                for (size_t k = 0; k < n; k++)
                        kept = kept || apps[k] == w->apps[j];
                if (!kept) {
                        log_fields f = { .app = w->apps[j]->name };
                        log_event_send(EV_NONE, LOG_INFO, &f, "no longer watching %s (removed from the config)",
                                       w->apps[j]->name);
                        app_watch_free(w->apps[j]);
                }
        }
        size_t old_n = w->n_apps;
        free(w->apps);
        w->apps = apps;
        w->n_apps = n;
        w->cfg = cfg;
        w->cloud.cfg = cfg;
        for (size_t i = 0; i < n; i++) {
                app_watch *a = apps[i];
                bool is_new = !a->timer;
                a->cfg = a->actx.app = &cfg->apps[i];
                /* Rule indexes may have moved: forget the log-once bits. */
                a->noted_holding = a->noted_skipped = 0;
                if (is_new)
                        app_watch_schedule(a, jitter_usec(USEC_PER_SEC, 0.5));
        }
        (void)old_n;
        watcher_circuit_check(w, now_steady_ms());
        return 0;
}

void watcher_set_alert_lookup(watcher *w, alert_lookup_fn fn, void *userdata) {
        w->alert_lookup = fn;
        w->alert_userdata = userdata;
}

/* ---- several hosts (ha) ---- */

bool watcher_coord_may_poll(const watcher *w) {
        const watcher_coord *c = w->opt.coord;
        return !c || !c->may_poll || c->may_poll(c->userdata);
}

const char *watcher_coord_why_not_act(const watcher *w) {
        const watcher_coord *c = w->opt.coord;
        return c && c->why_not_act ? c->why_not_act(c->userdata) : NULL;
}

void watcher_coord_changed(watcher *w) {
        bool poll = watcher_coord_may_poll(w);
        for (size_t i = 0; i < w->n_apps; i++) {
                app_watch *a = w->apps[i];
                a->noted_skipped = 0;
                if (!poll || w->draining)
                        continue;
                if (a->call || a->action)
                        a->poll_requested = true;
                else
                        app_watch_schedule(a, 0);
        }
}

int watcher_mark_acted(watcher *w, const char *app, const act_record *rec) {
        for (size_t i = 0; i < w->n_apps; i++) {
                app_watch *a = w->apps[i];
                if (!streq(a->name, app))
                        continue;
                if (state_find_act(&a->state, rec->change_order_id))
                        return 0;
                int r = state_add_act(&a->state, rec);
                if (r < 0)
                        return r;
                /* The cooldown follows the order, whoever acted on it. */
                int64_t until = rec->finished_ms + (int64_t)(w->cfg->cooldown_usec / USEC_PER_MSEC);
                if ((rec->result == ACT_DONE || rec->result == ACT_UNCONFIRMED) && until > a->state.cooldown_until_ms &&
                    state_time_valid(until))
                        a->state.cooldown_until_ms = until;
                app_watch_save_state(a);
                return 1;
        }
        return -ENOENT;
}

bool watcher_coord_view_get(const watcher *w, watcher_coord_view *out) {
        const watcher_coord *c = w->opt.coord;
        if (!c || !c->view)
                return false;
        c->view(c->userdata, out);
        return true;
}
