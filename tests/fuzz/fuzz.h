/* SPDX-License-Identifier: MIT */
/* The one entry point every fuzz target defines. Built two ways (see
 * meson.build): linked with libFuzzer (-fsanitize=fuzzer) in a -Dfuzz=true
 * clang build, and with replay_main.c as a plain program that feeds it files,
 * so the normal and sanitizer builds replay the corpus and every regression. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated malloc'ed copy for parsers that take C strings. NULL on
 * OOM (the target then just returns). */
char *fuzz_strndup(const uint8_t *data, size_t size);
