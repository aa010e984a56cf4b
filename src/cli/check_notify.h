/* SPDX-License-Identifier: MIT */
/* The `notify:` part of `rollguard check`: one line per channel with its
 * type, the host it posts to (never the URL's path or query: the token is
 * there), where its files are read from, its events and apps. Reads the
 * files to prove they can be read; prints nothing of what is in them. */
#pragma once

#include <stdbool.h>

#include "config.h"

/* Returns false when a channel's files cannot be read. */
bool check_notify_print(const config *cfg);
