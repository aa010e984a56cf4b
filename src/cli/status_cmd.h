/* SPDX-License-Identifier: MIT */
/* `rollguard status`: ask the running daemon (GET /status on alerts.listen)
 * and print its answer as a table. */
#pragma once

#include "cli.h"

int cmd_status(const cli *c);
