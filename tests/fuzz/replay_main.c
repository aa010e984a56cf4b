/* SPDX-License-Identifier: MIT */
/* Replays inputs through a fuzz target without libFuzzer: each argument is a
 * file or a directory of files (not recursive). A crash, sanitizer report or
 * abort() in the target fails the run; the file being replayed is named on
 * stderr first so the failing input is obvious. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        size_t cap = 4096, len = 0;
        unsigned char *buf = malloc(cap);
        if (!buf) {
                fclose(f);
                return -1;
        }
        for (;;) {
                if (len == cap) {
                        unsigned char *nb = realloc(buf, cap * 2);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return -1;
                        }
                        buf = nb;
                        cap *= 2;
                }
                size_t n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        int bad = ferror(f);
        fclose(f);
        if (bad) {
                fprintf(stderr, "replay: %s: read error\n", path);
                free(buf);
                return -1;
        }
        /* An exactly sized copy, as libFuzzer passes it, so an over-read
         * past the input is caught by ASan in the sanitizer build. */
        unsigned char *exact = malloc(len ? len : 1);
        if (!exact) {
                free(buf);
                return -1;
        }
        if (len)
                memcpy(exact, buf, len);
        free(buf);
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        return 0;
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int replay_dir(const char *dir, size_t *count) {
        DIR *d = opendir(dir);
        if (!d) {
                fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
                return -1;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (n == cap) {
                        size_t nc = cap ? cap * 2 : 64;
                        char **nn = realloc(names, nc * sizeof *nn);
                        if (!nn) {
                                r = -1;
                                break;
                        }
                        names = nn;
                        cap = nc;
                }
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
                        r = -1;
                        break;
                }
                n++;
        }
        closedir(d);
        /* Sorted, so two runs replay in the same order. */
        if (n)
                qsort(names, n, sizeof *names, cmp_names);
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (r == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
                        if (replay_file(names[i]) < 0)
                                r = -1;
                        else
                                (*count)++;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        size_t count = 0;
        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        /* A target without regressions yet has no directory. */
                        if (errno == ENOENT)
                                continue;
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                int r = S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) : replay_file(argv[i]);
                if (r < 0)
                        return 1;
                if (!S_ISDIR(st.st_mode))
                        count++;
        }
        printf("replayed %zu inputs cleanly\n", count);
        return 0;
}
