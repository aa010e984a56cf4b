/* SPDX-License-Identifier: MIT */
/* notify: the channels that tell people (issue 14). Only what the file says
 * is read here; the url and secret files are read when a channel starts
 * (src/tell/tell_channels.c), so a config can be checked and loaded by
 * `rollguard status` without touching a secret. */
#include <stdlib.h>
#include <string.h>

#include "config_read.h"
#include "config_sections.h"

#define MAX_CHANNELS 64u
#define MAX_CHANNEL_APPS 1024u

static int parse_events(parse_ctx *x, const node *v, const char *path, unsigned *mask) {
        const char *names[_NOTIFY_EV_MAX];
        size_t n_names = 0;
        for (int k = 0; k < _NOTIFY_EV_MAX; k++)
                if (k != NOTIFY_EV_TEST)
                        names[n_names++] = notify_kind_name((notify_kind)k);

        const node *items = v;
        size_t n = 1;
        if (v->kind == NODE_SEQUENCE) {
                items = v->items;
                n = v->n_items;
                if (n == 0)
                        return fail(x, v, "%s: empty list (leave events out for every event)", path);
        }
        for (size_t i = 0; i < n; i++) {
                const node *it = &items[i];
                int r = cfg_want_scalar(x, it, path, "an event name such as action, or a list of them");
                if (r < 0)
                        return r;
                notify_kind k = notify_kind_from_string(it->text);
                if (k < 0 || k == NOTIFY_EV_TEST) {
                        char list[200];
                        const char *hint = cfg_did_you_mean(it->text, names, n_names);
                        if (hint)
                                return fail(x, it, "%s: unknown event '%s' (did you mean '%s'?)", path,
                                            SHOW(it->text), hint);
                        return fail(x, it, "%s: unknown event '%s' (expected %s)", path, SHOW(it->text),
                                    cfg_join(names, n_names, " or ", list, sizeof list));
                }
                *mask |= NOTIFY_EVENT_BIT(k);
        }
        return 0;
}

static int parse_type(parse_ctx *x, const node *v, const char *path, notify_type *ret) {
        const char *names[_NOTIFY_TYPE_MAX];
        for (int t = 0; t < _NOTIFY_TYPE_MAX; t++)
                names[t] = notify_type_name((notify_type)t);
        int r = cfg_want_scalar(x, v, path, "a channel type (dingtalk, feishu, wecom, slack or webhook)");
        if (r < 0)
                return r;
        notify_type t = notify_type_from_string(v->text);
        if (t < 0) {
                char list[128];
                const char *hint = cfg_did_you_mean(v->text, names, _NOTIFY_TYPE_MAX);
                if (hint)
                        return fail(x, v, "%s: unknown type '%s' (did you mean '%s'?)", path, SHOW(v->text), hint);
                return fail(x, v, "%s: unknown type '%s' (expected %s)", path, SHOW(v->text),
                            cfg_join(names, _NOTIFY_TYPE_MAX, " or ", list, sizeof list));
        }
        *ret = t;
        return 0;
}

/* An inline url: http(s), no blanks. Its token is a secret: never echoed. */
static int parse_inline_url(parse_ctx *x, const node *v, const char *path, char **dst) {
        int r = cfg_want_scalar(x, v, path, "the robot's webhook URL");
        if (r < 0)
                return r;
        if (strncmp(v->text, "https://", 8) != 0 && strncmp(v->text, "http://", 7) != 0)
                return fail(x, v, "%s: expected an http:// or https:// URL (the value is not shown: it may hold "
                            "a token)", path);
        if (cfg_has_control_or_space(v->text, false))
                return fail(x, v, "%s: the URL contains blanks or control characters", path);
        char *s = strdup(v->text);
        if (!s)
                return -ENOMEM;
        free_secret(*dst);
        *dst = s;
        return 0;
}

static int parse_channel(parse_ctx *x, const node *v, const char *path, notify_config *nc) {
        static const char *const keys[] = { "name", "type", "url", "url_file", "secret_file", "secret",
                                            "events", "apps", "retry_for" };
        const node *url = NULL, *url_file = NULL, *secret_file = NULL, *type = NULL;
        bool have_name = false, have_type = false;
        char vpath[160];
        int r;

        nc->line = v->line;
        nc->col = v->col;
        r = cfg_want_mapping(x, v, path, "a channel (name, type, url_file, ...)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, path, keys, ELEMENTSOF(keys));
                if (k >= 0)
                        cfg_pathf(vpath, sizeof vpath, "%s.%s", path, keys[k]);
                switch (k) {
                case 0:
                        r = cfg_get_string(x, val, vpath, "a channel name", &nc->ch.name);
                        if (r >= 0 && !cfg_valid_name(nc->ch.name))
                                r = fail(x, val, "%s: '%s' is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -)",
                                         vpath, SHOW(nc->ch.name));
                        have_name = true;
                        break;
                case 1:
                        r = parse_type(x, val, vpath, &nc->ch.type);
                        have_type = true;
                        type = val;
                        break;
                case 2:
                        r = parse_inline_url(x, val, vpath, &nc->ch.url);
                        url = val;
                        break;
                case 3:
                        r = cfg_get_string(x, val, vpath, "a file holding the URL", &nc->url_file);
                        url_file = val;
                        break;
                case 4:
                        r = cfg_get_string(x, val, vpath, "a file holding the signing secret", &nc->secret_file);
                        secret_file = val;
                        break;
                case 5:
                        r = fail(x, &v->items[i],
                                 "%s: a signing secret is not written in the config: put it in a file and name "
                                 "that with secret_file (or pass it with LoadCredential=)",
                                 vpath);
                        break;
                case 6:
                        r = parse_events(x, val, vpath, &nc->ch.events);
                        break;
                case 7: {
                        const node *items = val->kind == NODE_SEQUENCE ? val->items : val;
                        r = cfg_get_string_list(x, val, vpath, "app names", MAX_CHANNEL_APPS, &nc->ch.apps,
                                                &nc->ch.n_apps);
                        if (r >= 0) {
                                free(nc->app_pos);
                                nc->app_pos = calloc(2 * nc->ch.n_apps, sizeof *nc->app_pos);
                                if (!nc->app_pos)
                                        return -ENOMEM;
                                for (size_t j = 0; j < nc->ch.n_apps; j++) {
                                        nc->app_pos[2 * j] = items[j].line;
                                        nc->app_pos[2 * j + 1] = items[j].col;
                                }
                        }
                        break;
                }
                case 8:
                        r = cfg_get_duration(x, val, vpath, USEC_PER_SEC, 24 * USEC_PER_HOUR,
                                             &nc->ch.retry_for_usec);
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        if (!have_name)
                return fail(x, v, "%s: missing required key 'name' (how logs and notify-test call the channel)",
                            path);
        if (!have_type)
                return fail(x, v, "%s: missing required key 'type' (dingtalk, feishu, wecom, slack or webhook)",
                            path);
        if (url && url_file)
                return fail(x, url_file, "%s: give url or url_file, not both", path);
        if (!url && !url_file)
                return fail(x, v, "%s: missing required key 'url_file' (a file holding the robot's URL; or url)",
                            path);
        if (secret_file && nc->ch.type != NOTIFY_DINGTALK && nc->ch.type != NOTIFY_FEISHU)
                return fail(x, secret_file, "%s.secret_file: %s robots are not signed (only dingtalk and feishu "
                            "are)", path, notify_type_name(nc->ch.type));
        (void)type;
        return 0;
}

int cfg_parse_notify(parse_ctx *x, const node *v, config *c) {
        int r;
        if (cfg_node_is_null(v))
                return 0;
        if (v->kind != NODE_SEQUENCE)
                return fail(x, v, "notify: expected a list of channels (- name: ..., type: ...), found %s",
                            DESCRIBE(v));
        if (v->n_items > MAX_CHANNELS)
                return fail(x, v, "notify: more than %u channels", MAX_CHANNELS);
        c->notify = calloc(v->n_items ? v->n_items : 1, sizeof *c->notify);
        if (!c->notify)
                return -ENOMEM;
        for (size_t i = 0; i < v->n_items; i++) {
                char path[32];
                cfg_pathf(path, sizeof path, "notify[%zu]", i);
                c->n_notify = i + 1;
                r = parse_channel(x, &v->items[i], path, &c->notify[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(c->notify[j].ch.name, c->notify[i].ch.name))
                                return fail(x, &v->items[i], "%s: a channel named '%s' exists already (line %u)",
                                            path, c->notify[i].ch.name, c->notify[j].line);
        }
        return 0;
}

/* An apps list names apps of the apps section, which may come later in
 * the file: checked once everything is read, at the positions kept. */
int cfg_check_notify(parse_ctx *x, config *c) {
        int r = 0;
        for (size_t i = 0; r == 0 && i < c->n_notify; i++) {
                const notify_config *nc = &c->notify[i];
                for (size_t j = 0; r == 0 && j < nc->ch.n_apps; j++) {
                        if (config_find_app(c, nc->ch.apps[j]))
                                continue;
                        const char *names[64];
                        size_t n = 0;
                        for (size_t a = 0; a < c->n_apps && n < ELEMENTSOF(names); a++)
                                names[n++] = c->apps[a].name;
                        const char *hint = cfg_did_you_mean(nc->ch.apps[j], names, n);
                        r = cfg_fail_at(x, -EINVAL, nc->app_pos ? nc->app_pos[2 * j] : nc->line,
                                        nc->app_pos ? nc->app_pos[2 * j + 1] : nc->col,
                                        "notify[%zu].apps: no app named '%s' in apps%s%s%s", i,
                                        SHOW(nc->ch.apps[j]), hint ? " (did you mean '" : "", hint ? hint : "",
                                        hint ? "'?)" : "");
                }
        }
        return r;
}

void cfg_done_notify(config *c) {
        for (size_t i = 0; i < c->n_notify; i++) {
                notify_channel_done(&c->notify[i].ch);
                free(c->notify[i].url_file);
                free(c->notify[i].secret_file);
                free(c->notify[i].app_pos);
        }
        c->notify = mfree(c->notify);
        c->n_notify = 0;
}
