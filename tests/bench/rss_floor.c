/* SPDX-License-Identifier: MIT */
/* The memory floor `./tools/dev bench` compares rollguard's peak RSS with:
 * a program linked with exactly rollguard's libraries that does nothing but
 * initialise libcurl (which initialises OpenSSL), as rollguard's main() does
 * first. Prints its /proc/self/status memory lines as JSON. Whatever this
 * shows is paid by any program built on Debian's libcurl, before its first
 * request. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static long status_kib(const char *key) {
        FILE *f = fopen("/proc/self/status", "re");
        if (!f)
                return -1;
        char line[256];
        long v = -1;
        size_t n = strlen(key);
        while (fgets(line, sizeof line, f))
                if (strncmp(line, key, n) == 0 && line[n] == ':') {
                        sscanf(line + n + 1, "%ld", &v);
                        break;
                }
        fclose(f);
        return v;
}

int main(void) {
        long before = status_kib("VmRSS");
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return 1;
        CURL *e = curl_easy_init();
        printf("{\"rss_kib_at_start\": %ld, \"rss_kib\": %ld, \"rss_file_kib\": %ld, \"rss_anon_kib\": %ld}\n",
               before, status_kib("VmRSS"), status_kib("RssFile"), status_kib("RssAnon"));
        curl_easy_cleanup(e);
        curl_global_cleanup();
        return 0;
}
