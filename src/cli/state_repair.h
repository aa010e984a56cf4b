/* SPDX-License-Identifier: MIT */
/* `rollguard state repair APP`: the way out of quarantine. An app whose state
 * file cannot be read never acts; this moves the file aside (kept, with a
 * timestamp) and writes a fresh record that keeps every change order id it
 * could still find, so none of them is ever acted on again. Safe while the
 * daemon runs: the daemon never writes a quarantined app's file, and picks
 * the fresh record up at the app's next poll. */
#pragma once

#include "cli.h"

int cmd_state(const cli *c);
