/* SPDX-License-Identifier: MIT */
/* The Alibaba Cloud credential chain (SPEC 8): environment, config file or
 * systemd credential, ~/.alibabacloud/credentials profile, then - only when
 * asked for - the ECS instance RAM role (refreshed in the background). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "http.h"

typedef enum cred_source {
        CRED_SOURCE_NONE,
        CRED_SOURCE_ENV,
        CRED_SOURCE_FILE,        /* credentials.file */
        CRED_SOURCE_SYSTEMD,     /* $CREDENTIALS_DIRECTORY/aliyun */
        CRED_SOURCE_PROFILE,     /* ~/.alibabacloud/credentials */
        CRED_SOURCE_ECS_RAM_ROLE,
} cred_source;

const char *cred_source_name(cred_source s);

typedef struct credentials {
        char *access_key_id;
        char *access_key_secret; /* secret: wiped on free */
        char *security_token;    /* secret: wiped on free; NULL unless STS */
        int64_t expiration_ms;   /* STS expiry, 0 = does not expire */
        cred_source source;
        char *source_detail;     /* path, profile name or role name; never a secret */
} credentials;

void credentials_done(credentials *c); /* wipes secrets, frees, zeroes */

/* Where environment lookups come from; tests pass their own. */
typedef const char *(*env_lookup_fn)(const char *name);

/* INI text (aliyun credentials file / systemd credential): either the flat
 * "access_key_id = ..." form or [profile] sections (`type = access_key`).
 * profile NULL = "default". Returns 0, -ENOENT (no such profile/keys) or
 * -EBADMSG with *ret_error "LINE: message" (never quoting a value). */
int credentials_parse_ini(const char *text, const char *profile, credentials *out,
                          char **ret_error);

/* The static part of the chain (everything but the RAM role). Returns 0 with
 * *out filled, -ENOENT when no source had credentials, or another negative
 * code with *ret_error saying which source was broken and why. A readable
 * credentials file that group/other can read adds a warning to *ret_warning. */
int credentials_resolve_static(const config *c, env_lookup_fn env, credentials *out,
                               char **ret_error, char **ret_warning);

/* Does the config or environment ask for the ECS RAM role? Returns the role
 * ("auto" = discover) or NULL. */
const char *credentials_ecs_role_requested(const config *c, env_lookup_fn env);

typedef struct cred_provider cred_provider;
typedef void (*cred_changed_fn)(void *userdata);

/* Resolves the chain. With a RAM role it fetches asynchronously on the loop
 * and refreshes before Expiration; cred_provider_get() is NULL until the first
 * fetch succeeds. Returns 0, or negative with *ret_error. */
int cred_provider_new(sd_event *e, http_client *h, const config *c, env_lookup_fn env,
                      cred_provider **ret, char **ret_error);
cred_provider *cred_provider_free(cred_provider *p);
/* Valid (not expired) credentials, or NULL. */
const credentials *cred_provider_get(cred_provider *p);
/* Called whenever credentials become available or change (api.c uses it to
 * release calls waiting for credentials). */
void cred_provider_on_change(cred_provider *p, cred_changed_fn fn, void *userdata);
/* A static provider around given credentials (for tests and `once`). Takes them. */
int cred_provider_new_static(credentials *taken, cred_provider **ret);
