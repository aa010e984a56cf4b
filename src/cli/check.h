/* SPDX-License-Identifier: MIT */
/* `rollguard check`: validate the config and the credentials, print what
 * the daemon would do. Never talks to the cloud. */
#pragma once

#include "cli.h"

int cmd_check(const cli *c);
