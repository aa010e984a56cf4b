/* SPDX-License-Identifier: MIT */
/* `rollguard notify-test [NAME]`: send a test message to every channel of
 * the config's `notify:` (or the one called NAME) and print what each
 * platform answered. Exit 0 when every channel took it, 3 otherwise. */
#pragma once

#include "cli.h"

int cmd_notify_test(const cli *c);
