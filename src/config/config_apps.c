/* SPDX-License-Identifier: MIT */
/* apps: the applications to watch, their rules and each rule's `when`. */
#include <stdlib.h>
#include <string.h>

#include "config_read.h"
#include "config_sections.h"

#define MAX_RULES_PER_APP 64u
#define MAX_CO_TYPES 32u
#define MAX_ALERT_MATCHERS 32u

static bool valid_region(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > NAME_MAX_LEN)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

static bool valid_label_name(const char *s) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_'))
                        return false;
        return true;
}

static int parse_status(parse_ctx *x, const node *v, const char *path, uint32_t *mask) {
        const char *names[_CO_STATUS_MAX];
        size_t n_names = 0;
        for (int s = 0; s < _CO_STATUS_MAX; s++)
                if (co_status_name(s))
                        names[n_names++] = co_status_name(s);

        const node *items = v;
        size_t n = 1;
        if (v->kind == NODE_SEQUENCE) {
                items = v->items;
                n = v->n_items;
                if (n == 0)
                        return fail(x, v, "%s: empty list (expected status names such as executing)", path);
        }
        for (size_t i = 0; i < n; i++) {
                const node *it = &items[i];
                int r = cfg_want_scalar(x, it, path, "a status name such as executing, or a list of them");
                if (r < 0)
                        return r;
                int s = co_status_from_string(it->text);
                if (s < 0 || s >= _CO_STATUS_MAX) {
                        const char *hint = cfg_did_you_mean(it->text, names, n_names);
                        if (hint)
                                return fail(x, it, "%s: unknown status '%s' (did you mean '%s'?)", path,
                                            SHOW(it->text), hint);
                        char list[256];
                        return fail(x, it, "%s: unknown status '%s' (expected %s, or a status number)", path,
                                    SHOW(it->text), cfg_join(names, n_names, " or ", list, sizeof list));
                }
                *mask |= 1u << s;
        }
        return 0;
}

static int parse_alert_matchers(parse_ctx *x, const node *v, const char *path, rule *rl) {
        int r = cfg_want_mapping(x, v, path, "label matchers such as { alertname: HighErrorRate }");
        if (r < 0)
                return r;
        size_t n = v->n_items / 2;
        if (n == 0)
                return fail(x, v, "%s: no label matchers (expected e.g. { alertname: HighErrorRate })", path);
        if (n > MAX_ALERT_MATCHERS)
                return fail(x, v, "%s: more than %u label matchers", path, MAX_ALERT_MATCHERS);
        rl->alert = calloc(n, sizeof(label_pair));
        if (!rl->alert)
                return -ENOMEM;
        rl->n_alert = n;
        for (size_t i = 0; i < n; i++) {
                const node *k = &v->items[2 * i], *val = &v->items[2 * i + 1];
                if (k->kind != NODE_SCALAR || !valid_label_name(k->text))
                        return fail(x, k, "%s: %s is not a label name (letters, digits and _)", path, DESCRIBE(k));
                for (size_t j = 0; j < i; j++)
                        if (streq(rl->alert[j].name, k->text))
                                return fail(x, k, "duplicate key '%s' in %s (first at line %u)", SHOW(k->text),
                                            path, v->items[2 * j].line);
                rl->alert[i].name = strdup(k->text);
                if (!rl->alert[i].name)
                        return -ENOMEM;
                char vpath[160];
                cfg_pathf(vpath, sizeof vpath, "%s.%s", path, k->text);
                r = cfg_get_string(x, val, vpath, "the label value to match", &rl->alert[i].value);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_when(parse_ctx *x, const node *v, const char *rpath, rule *rl) {
        static const char *const keys[] = { "status", "sub_status", "co_type", "no_progress_for",
                                            "pipeline_failed", "alert", "query", "above", "below" };
        static const char *const sub_names[] = { "normal", "error" };
        char where[128], path[160];
        when_metric metric = { 0 };
        int r;

        cfg_pathf(where, sizeof where, "%s.when", rpath);
        if (!cfg_node_is_null(v)) {
                r = cfg_want_mapping(x, v, where, "a mapping of conditions");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                int k = cfg_map_key(x, v, i, where, keys, ELEMENTSOF(keys));
                if (k >= 0)
                        cfg_pathf(path, sizeof path, "%s.%s", where, keys[k]);
                switch (k) {
                case 0:
                        r = parse_status(x, val, path, &rl->status_mask);
                        break;
                case 1:
                        if (val->kind == NODE_SCALAR && (streq(val->text, "0") || streq(val->text, "1"))) {
                                rl->sub_status = val->text[0] == '1' ? SUB_ERROR : SUB_NORMAL;
                                r = 0;
                                break;
                        }
                        r = cfg_get_choice(x, val, path, "a sub_status", sub_names, ELEMENTSOF(sub_names));
                        if (r >= 0)
                                rl->sub_status = r == 1 ? SUB_ERROR : SUB_NORMAL;
                        break;
                case 2:
                        r = cfg_get_string_list(x, val, path, "CoTypeCodes such as CoDeploy", MAX_CO_TYPES,
                                                  &rl->co_types, &rl->n_co_types);
                        break;
                case 3:
                        r = cfg_get_duration(x, val, path, USEC_PER_SEC, MAX_DURATION, &rl->no_progress_usec);
                        break;
                case 4:
                        r = cfg_get_bool(x, val, path, &rl->pipeline_failed);
                        break;
                case 5:
                        r = parse_alert_matchers(x, val, path, rl);
                        break;
                case 6:
                case 7:
                case 8:
                        r = cfg_parse_when_metric(x, val, path, k - 6, &metric, rl);
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }

        r = cfg_finish_when_metric(x, v, where, &metric);
        if (r < 0)
                return r;
        if (rl->status_mask == 0 && rl->sub_status == SUB_UNKNOWN && rl->n_co_types == 0 &&
            rl->no_progress_usec == 0 && !rl->pipeline_failed && rl->n_alert == 0 && !rl->query) {
                char list[160];
                return fail(x, v, "%s: no condition (give at least one of %s)", where,
                            cfg_join(keys, ELEMENTSOF(keys) - 2 /* not above, below */, " or ", list,
                                     sizeof list));
        }
        return 0;
}

static int parse_rule(parse_ctx *x, const node *v, const char *path, rule *rl) {
        static const char *const keys[] = { "name", "when", "for", "action" };
        const char *actions[3];
        const node *name = NULL, *when = NULL, *action = NULL;
        int r;

        for (int a = 0; a < 3; a++)
                actions[a] = rule_action_name((rule_action)a);

        rl->sub_status = SUB_UNKNOWN;
        r = cfg_want_mapping(x, v, path, "a rule (name, when, for, action)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                char vpath[160];
                int k = cfg_map_key(x, v, i, path, keys, ELEMENTSOF(keys));
                if (k >= 0)
                        cfg_pathf(vpath, sizeof vpath, "%s.%s", path, keys[k]);
                switch (k) {
                case 0:
                        r = cfg_get_string(x, val, vpath, "a rule name", &rl->name);
                        if (r >= 0 && !cfg_valid_name(rl->name))
                                r = fail(x, val, "%s: '%s' is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -)",
                                         vpath, SHOW(rl->name));
                        name = val;
                        break;
                case 1:
                        r = parse_when(x, val, path, rl);
                        when = val;
                        break;
                case 2:
                        r = cfg_get_duration(x, val, vpath, 0, MAX_DURATION, &rl->for_usec);
                        break;
                case 3: {
                        r = cfg_want_scalar(x, val, vpath, "rollback, abort or log");
                        if (r < 0)
                                break;
                        int a = rule_action_from_string(val->text);
                        if (a < 0) {
                                const char *hint = cfg_did_you_mean(val->text, actions, ELEMENTSOF(actions));
                                if (hint)
                                        r = fail(x, val, "%s: '%s' is not an action (did you mean '%s'?)", vpath,
                                                 SHOW(val->text), hint);
                                else
                                        r = fail(x, val, "%s: '%s' is not an action (expected rollback, abort or log)",
                                                 vpath, SHOW(val->text));
                                break;
                        }
                        rl->action = (rule_action)a;
                        action = val;
                        break;
                }
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }
        if (!name)
                return fail(x, v, "%s: missing required key 'name'", path);
        if (!when)
                return fail(x, v, "%s: missing required key 'when' (the conditions)", path);
        if (!action)
                return fail(x, v, "%s: missing required key 'action' (rollback, abort or log)", path);
        return 0;
}

static int parse_rules(parse_ctx *x, const node *v, const char *apath, app_config *a) {
        char path[128];
        cfg_pathf(path, sizeof path, "%s.rules", apath);

        if (v->kind != NODE_SEQUENCE)
                return fail(x, v, "%s: expected a list of rules, found %s", path, DESCRIBE(v));
        if (v->n_items == 0)
                return fail(x, v, "%s: empty list (leave 'rules' out to get the built-in rules)", path);
        if (v->n_items > MAX_RULES_PER_APP)
                return fail(x, v, "%s: more than %u rules", path, MAX_RULES_PER_APP);

        a->rules = calloc(v->n_items, sizeof(rule));
        if (!a->rules)
                return -ENOMEM;
        a->n_rules = v->n_items;
        for (size_t i = 0; i < v->n_items; i++)
                a->rules[i].sub_status = SUB_UNKNOWN;

        for (size_t i = 0; i < v->n_items; i++) {
                char rpath[160];
                cfg_pathf(rpath, sizeof rpath, "%s[%zu]", path, i);
                int r = parse_rule(x, &v->items[i], rpath, &a->rules[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(a->rules[j].name, a->rules[i].name)) {
                                /* the name node is found again for its position */
                                const node *rn = &v->items[i];
                                for (size_t k = 0; k < rn->n_items; k += 2)
                                        if (streq(rn->items[k].text, "name"))
                                                rn = &rn->items[k + 1];
                                return fail(x, rn, "%s[%zu].name: duplicate rule name '%s' (first at line %u)",
                                            path, i, SHOW(a->rules[i].name), v->items[j].line);
                        }
        }
        return 0;
}

typedef struct app_nodes {
        const node *name;
        const node *app_id;
} app_nodes;

static int parse_app(parse_ctx *x, const node *v, size_t idx, app_config *a, app_nodes *an) {
        static const char *const keys[] = { "name", "platform", "region", "app_id", "dry_run", "edas_kind", "rules" };
        static const char *const platforms[] = { "sae", "edas" };
        static const char *const kinds[] = { "ecs", "k8s" };
        const node *platform_value = NULL, *region = NULL, *kind_key = NULL, *rules = NULL;
        char path[48];
        int r;

        cfg_pathf(path, sizeof path, "apps[%zu]", idx);
        a->dry_run = -1;
        a->line = v->line;
        r = cfg_want_mapping(x, v, path, "an app (name, platform, region, app_id, rules)");
        if (r < 0)
                return r;

        for (size_t i = 0; i < v->n_items; i += 2) {
                const node *val = &v->items[i + 1];
                char vpath[80];
                int k = cfg_map_key(x, v, i, path, keys, ELEMENTSOF(keys));
                if (k >= 0)
                        cfg_pathf(vpath, sizeof vpath, "%s.%s", path, keys[k]);
                switch (k) {
                case 0:
                        r = cfg_get_string(x, val, vpath, "an app name", &a->name);
                        if (r >= 0 && !cfg_valid_name(a->name))
                                r = fail(x, val,
                                         "%s: '%s' is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -; it names "
                                         "the state file and journal fields)",
                                         vpath, SHOW(a->name));
                        an->name = val;
                        break;
                case 1:
                        r = cfg_get_choice(x, val, vpath, "a platform", platforms, ELEMENTSOF(platforms));
                        if (r >= 0)
                                a->platform = r == 1 ? PLATFORM_EDAS : PLATFORM_SAE;
                        platform_value = val;
                        break;
                case 2:
                        r = cfg_get_string(x, val, vpath, "a region id such as cn-hangzhou", &a->region);
                        if (r >= 0 && !valid_region(a->region))
                                r = fail(x, val,
                                         "%s: '%s' is not a region id (lower-case letters, digits and -, e.g. "
                                         "cn-hangzhou)",
                                         vpath, SHOW(a->region));
                        region = val;
                        break;
                case 3:
                        r = cfg_get_string(x, val, vpath, "the application id", &a->app_id);
                        if (r >= 0 && cfg_has_control_or_space(a->app_id, false))
                                r = fail(x, val, "%s: '%s' must not contain spaces", vpath, SHOW(a->app_id));
                        an->app_id = val;
                        break;
                case 4: {
                        bool b = false;
                        r = cfg_get_bool(x, val, vpath, &b);
                        if (r >= 0)
                                a->dry_run = b;
                        break;
                }
                case 5:
                        r = cfg_get_choice(x, val, vpath, "an EDAS application kind", kinds, ELEMENTSOF(kinds));
                        if (r >= 0)
                                a->edas_kind = r == 1 ? EDAS_KIND_K8S : EDAS_KIND_ECS;
                        kind_key = &v->items[i];
                        break;
                case 6:
                        /* `rules:` with nothing after it reads as "no rules given" */
                        if (!cfg_node_is_null(val)) {
                                r = parse_rules(x, val, path, a);
                                rules = val;
                        }
                        break;
                default:
                        r = k;
                }
                if (r < 0)
                        return r;
        }

        if (!an->name)
                return fail(x, v, "%s: missing required key 'name'", path);
        if (!platform_value)
                return fail(x, v, "%s: missing required key 'platform' (sae or edas)", path);
        if (!region)
                return fail(x, v, "%s: missing required key 'region' (e.g. cn-hangzhou)", path);
        if (!an->app_id)
                return fail(x, v, "%s: missing required key 'app_id'", path);
        if (kind_key && a->platform != PLATFORM_EDAS)
                return fail(x, kind_key, "%s.edas_kind: only applies to platform edas (this app is %s)", path,
                            "sae");
        if (!rules) {
                r = rules_builtin(&a->rules, &a->n_rules);
                if (r < 0)
                        return r;
                a->builtin_rules = true;
        }
        return 0;
}

typedef struct app_ref {
        const app_config *app;
        size_t index;
} app_ref;

static int cmp_by_name(const void *pa, const void *pb) {
        const app_ref *a = pa, *b = pb;
        int c = strcmp(a->app->name, b->app->name);
        if (c != 0)
                return c;
        return a->index < b->index ? -1 : a->index > b->index;
}

static int cmp_by_target(const void *pa, const void *pb) {
        const app_ref *a = pa, *b = pb;
        if (a->app->platform != b->app->platform)
                return a->app->platform < b->app->platform ? -1 : 1;
        int c = strcmp(a->app->region, b->app->region);
        if (c == 0)
                c = strcmp(a->app->app_id, b->app->app_id);
        if (c != 0)
                return c;
        return a->index < b->index ? -1 : a->index > b->index;
}

/* Sorted, equal neighbours are duplicates; report the one that comes
 * second in the file earliest, as a reader going down the file would. */
static bool find_duplicate(app_ref *refs, size_t n, int (*cmp)(const void *, const void *), size_t *first,
                           size_t *second) {
        qsort(refs, n, sizeof *refs, cmp);
        bool found = false;
        size_t group = 0;
        for (size_t i = 1; i < n; i++) {
                app_ref a = refs[i - 1], b = refs[i];
                a.index = b.index = 0;
                if (cmp(&a, &b) != 0) {
                        group = i;
                        continue;
                }
                if (!found || refs[i].index < *second) {
                        *first = refs[group].index;
                        *second = refs[i].index;
                        found = true;
                }
        }
        return found;
}

int cfg_parse_apps(parse_ctx *x, const node *v, config *c) {
        if (cfg_node_is_null(v))
                return fail(x, v, "apps: nothing listed: at least one app is required");
        if (v->kind != NODE_SEQUENCE)
                return fail(x, v, "apps: expected a list of apps, found %s", DESCRIBE(v));
        if (v->n_items == 0)
                return fail(x, v, "apps: empty list: at least one app is required");

        c->apps = calloc(v->n_items, sizeof(app_config));
        if (!c->apps)
                return -ENOMEM;
        c->n_apps = v->n_items;
        for (size_t i = 0; i < c->n_apps; i++)
                c->apps[i].dry_run = -1;

        _cleanup_free_ app_nodes *an = calloc(v->n_items, sizeof(app_nodes));
        _cleanup_free_ app_ref *refs = calloc(v->n_items, sizeof(app_ref));
        if (!an || !refs)
                return -ENOMEM;

        for (size_t i = 0; i < v->n_items; i++) {
                int r = parse_app(x, &v->items[i], i, &c->apps[i], &an[i]);
                if (r < 0)
                        return r;
        }

        size_t first, second;
        for (size_t i = 0; i < c->n_apps; i++)
                refs[i] = (app_ref){ &c->apps[i], i };
        if (find_duplicate(refs, c->n_apps, cmp_by_name, &first, &second))
                return fail(x, an[second].name, "apps[%zu].name: duplicate app name '%s' (first at line %u)",
                            second, SHOW(c->apps[second].name), an[first].name->line);

        /* Two entries for one application would each act on the same
         * release: the "never act twice" guarantee is per entry. */
        for (size_t i = 0; i < c->n_apps; i++)
                refs[i] = (app_ref){ &c->apps[i], i };
        if (find_duplicate(refs, c->n_apps, cmp_by_target, &first, &second))
                return fail(x, an[second].app_id,
                            "apps[%zu].app_id: '%s' is already watched as app '%s' (line %u); two entries would "
                            "act twice on one release",
                            second, SHOW(c->apps[second].app_id), SHOW(c->apps[first].name), an[first].name->line);
        return 0;
}

static void app_config_done(app_config *a) {
        free(a->name);
        free(a->region);
        free(a->app_id);
        for (size_t i = 0; i < a->n_rules; i++)
                rule_done(&a->rules[i]);
        free(a->rules);
        *a = (app_config){ 0 };
}

void cfg_done_apps(config *c) {
        for (size_t i = 0; i < c->n_apps; i++)
                app_config_done(&c->apps[i]);
        free(c->apps);
        c->apps = NULL;
        c->n_apps = 0;
}
