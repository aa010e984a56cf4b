/* SPDX-License-Identifier: MIT */
/* The one entry point every fuzz target defines. Built two ways (see
 * meson.build): linked with libFuzzer (-fsanitize=fuzzer) in a -Dfuzz=true
 * clang build, and with replay_main.c as a plain program that feeds it files,
 * so the normal and sanitizer builds replay the corpus and every regression. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct change_order;

/* A parser's result: a refusal must say why (the message ends up in a log
 * line) and a success must not leave a message. Aborts otherwise; frees
 * error and returns NULL. */
char *fuzz_check_result(int r, char *error);
/* Runs the change-order helpers rules.c relies on over a parsed order and
 * checks that a copy hashes like the original. */
void fuzz_check_change_order(const struct change_order *co);

/* A NUL-terminated malloc'ed copy for parsers that take C strings. NULL on
 * OOM (the target then just returns). */
char *fuzz_strndup(const uint8_t *data, size_t size);
