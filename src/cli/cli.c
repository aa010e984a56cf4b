/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <stdio.h>

#include "util.h"

int cli_load_config(const char *path, config **ret) {
        _cleanup_free_ char *err = NULL;
        int r = config_load(path, ret, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err ? err : "cannot load the config");
        return r;
}
