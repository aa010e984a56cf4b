/* SPDX-License-Identifier: MIT */
#include "state_repair.h"

#include <stdio.h>

#include "state_file.h"
#include "util.h"

/* The same directory `run` uses: systemd's STATE_DIRECTORY (the first of
 * several) wins over the config. */
static char *state_directory(const config *cfg) {
        const char *sd = getenv("STATE_DIRECTORY");
        char *d = strdup(sd && *sd ? sd : cfg->state_directory);
        if (d && strchr(d, ':'))
                *strchr(d, ':') = 0;
        return d;
}

int cmd_state(const cli *c) {
        if (c->n_args != 2 || !streq(c->args[0], "repair")) {
                fprintf(stderr, "rollguard: usage: rollguard state repair APP\n");
                return EXIT_USAGE;
        }
        const char *app = c->args[1];
        _cleanup_config_ config *cfg = NULL;
        if (cli_load_config(c->config_path, &cfg) < 0)
                return EXIT_CONFIG;
        const app_config *ac = NULL;
        for (size_t i = 0; i < cfg->n_apps && !ac; i++)
                if (streq(cfg->apps[i].name, app) || streq(cfg->apps[i].app_id, app))
                        ac = &cfg->apps[i];
        if (!ac) {
                fprintf(stderr, "rollguard: %s has no app named '%s'\n", c->config_path, app);
                return EXIT_USAGE;
        }
        _cleanup_free_ char *dir = state_directory(cfg);
        _cleanup_free_ char *key = state_key(platform_name(ac->platform), ac->region, ac->app_id);
        if (!dir || !key) {
                fprintf(stderr, "rollguard: out of memory\n");
                return EXIT_RUNTIME;
        }
        _cleanup_free_ char *moved = NULL, *err = NULL;
        size_t recovered = 0;
        int r = state_repair(dir, key, ac->name, &moved, &recovered, &err);
        if (r == -ENOENT) {
                printf("%s: no state file in %s; nothing to repair\n", ac->name, dir);
                return EXIT_OK;
        }
        if (r == 1) {
                printf("%s: the state file in %s reads fine; nothing to repair\n", ac->name, dir);
                return EXIT_OK;
        }
        if (r < 0) {
                fprintf(stderr, "rollguard: cannot repair the state of %s: %s\n", ac->name,
                        err ? err : strerror(-r));
                return EXIT_RUNTIME;
        }
        _cleanup_free_ char *path = state_path(dir, key);
        printf("%s: moved the unreadable state file to %s\n"
               "%s: wrote a fresh record %s keeping %zu change order%s as unconfirmed (never acted on again)\n",
               ac->name, moved, ac->name, strna(path), recovered, recovered == 1 ? "" : "s");
        return EXIT_OK;
}
