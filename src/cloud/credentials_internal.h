/* SPDX-License-Identifier: MIT */
/* Internal to the credentials module (credentials.c: the chain and the
 * provider; credentials_ini.c: the INI reader; credentials_ecs.c: the ECS
 * RAM role on the loop). credentials.h is the interface for everyone else. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "credentials.h"
#include "http.h"
#include "util.h"

static inline void credentials_donep(credentials *c) {
        credentials_done(c);
}
#define _cleanup_credentials_ _cleanup_(credentials_donep)

/* *ret (when ret is not NULL) becomes the formatted message, replacing what
 * was there; NULL when out of memory. */
void cred_set_message(char **ret, const char *fmt, ...) _printf_(2, 3);

/* [start, end) without trailing blanks and CR. */
const char *cred_trim_end(const char *start, const char *end);

/* ---- credentials_ecs.c -------------------------------------------------- */

/* Fetches the STS credentials of the instance's RAM role from the metadata
 * service, and again before they expire; retries with backoff. */
typedef struct ecs_role ecs_role;

/* Fresh credentials: takes them. expires_usec is CLOCK_MONOTONIC. Called
 * last in a handler, so it may free the ecs_role. */
typedef void (*ecs_role_got_fn)(credentials *taken, uint64_t expires_usec, void *userdata);
/* The credentials in use now (valid, or NULL), for the retry messages. */
typedef const credentials *(*ecs_role_current_fn)(void *userdata);

/* role: a name or "auto" (discover the attached one each time);
 * metadata_base: NULL for the default http://100.100.100.200. Starts the
 * first fetch; a failed start is retried like a failed fetch. Returns 0,
 * -ENOMEM, or -EINVAL with *ret_error. */
int ecs_role_new(sd_event *e, http_client *h, const char *metadata_base, const char *role,
                 uint64_t timeout_usec, ecs_role_got_fn got, ecs_role_current_fn current, void *userdata,
                 ecs_role **ret, char **ret_error);
ecs_role *ecs_role_free(ecs_role *r);
