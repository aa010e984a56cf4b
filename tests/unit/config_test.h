/* SPDX-License-Identifier: MIT */
/* The YAML snippets test_config.c and test_config_errors.c build on. */
#pragma once

/* A valid app, five lines; line 2 is its name. */
#define APP                                \
        "apps:\n"                          \
        "  - name: shop-api\n"             \
        "    platform: sae\n"              \
        "    region: cn-hangzhou\n"        \
        "    app_id: abc\n"

/* APP plus one rule whose `when` is on line 8, value at column 15. */
#define RULE(when)                         \
        APP "    rules:\n"                 \
            "      - name: r\n"            \
            "        when: " when "\n"     \
            "        action: rollback\n"
