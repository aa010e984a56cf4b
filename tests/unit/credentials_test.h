/* SPDX-License-Identifier: MIT */
/* What test_credentials.c and test_credentials_ecs.c share: the secret
 * markers and a fake environment. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util.h"

/* Every secret in this file contains one of these; no error, warning or log
 * line may ever contain them. */
#define SECRET_MARK "s3cr3t"
#define TOKEN_MARK "t0k3n"

static inline void assert_no_secret_in(const char *what, const char *s) {
        if (s && (strstr(s, SECRET_MARK) || strstr(s, TOKEN_MARK)))
                fail_msg("%s leaks a secret: \"%s\"", what, s);
}

/* ---- a fake environment ---- */

static const char *fake_env[16][2];

static inline void env_clear(void) {
        memset(fake_env, 0, sizeof fake_env);
}

static inline void env_set(const char *name, const char *value) {
        for (size_t i = 0; i < ELEMENTSOF(fake_env); i++)
                if (!fake_env[i][0] || streq(fake_env[i][0], name)) {
                        fake_env[i][0] = name;
                        fake_env[i][1] = value;
                        return;
                }
        fail_msg("fake environment full");
}

static inline const char *fake_getenv(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(fake_env) && fake_env[i][0]; i++)
                if (streq(fake_env[i][0], name))
                        return fake_env[i][1];
        return NULL;
}
