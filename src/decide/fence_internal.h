/* SPDX-License-Identifier: MIT */
/* Internal to the fence module (fence.c, fence_setup.c): not an interface. */
#pragma once

#include "config.h"
#include "etcd.h"
#include "http.h"

/* The etcd client for h: endpoints, TLS files and the password, each file
 * found where h says or in $CREDENTIALS_DIRECTORY. 0, or negative with
 * *ret_error naming the file (never the password). */
int fence_setup_etcd(http_client *http, const ha_config *h, etcd_client **ret, char **ret_error);
