/* SPDX-License-Identifier: MIT */
/* What main.c hands a command, and what every command returns. Each command
 * is one file in src/cli/ (check.c, status.c) with a header declaring its
 * `int cmd_NAME(const cli *c)`, and one line in main.c's commands[]. */
#pragma once

#include <stdbool.h>

#include "config.h"

/* The exit status of rollguard, documented in rollguard(8). */
enum {
        EXIT_OK = 0,
        EXIT_CONFIG = 1,
        EXIT_USAGE = 2,
        EXIT_RUNTIME = 3,
};

typedef struct cli {
        const char *config_path;
        bool dry_run;
        bool verbose;
        bool query;     /* check --query: ask Prometheus once per query rule */
        const char *command;
        const char *argument; /* the command's operand (notify-test NAME), NULL when none */
        char **args;   /* the words after the command (only for commands that take them) */
        int n_args;
} cli;

/* config_load() that prints the error (FILE:LINE:COL: ...) to stderr. */
int cli_load_config(const char *path, config **ret);
