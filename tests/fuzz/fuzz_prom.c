/* SPDX-License-Identifier: MIT */
/* The Prometheus answer parser (bytes from the network: a Prometheus, an
 * ARMS endpoint, or whatever proxy stands in front of them) and the query
 * template expander. The first byte picks the HTTP status the body comes
 * with; the rest is the body, and also a template and a value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "prom_parse.h"
#include "prom_template.h"
#include "util.h"

static const long statuses[] = { 200, 400, 422, 503, 401, 500, 204, 0 };

static void check_text(const char *text) {
        size_t n = strnlen(text, PROM_TEXT_MAX);
        if (n >= PROM_TEXT_MAX)
                abort(); /* not terminated */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f)
                        abort(); /* a log line must stay one line */
}

static void check_verdict(const prom_verdict *v) {
        check_text(v->text);
        if (v->reason == PROM_OK) {
                if (!isfinite(v->value) || v->text[0])
                        abort();
        } else {
                if (!v->text[0] || (unsigned) v->reason >= _PROM_REASON_MAX ||
                    v->reason == PROM_UNREACHABLE)
                        abort();
                if (prom_holds(v, PROM_ABOVE, -INFINITY) || prom_holds(v, PROM_BELOW, INFINITY))
                        abort(); /* an inconclusive verdict never fires */
        }
        char buf[PROM_TEXT_MAX + 64];
        (void) prom_format_verdict(v, buf, sizeof buf);
}

/* Expanding `prefix{{app}}suffix` with a hostile value must leave the
 * literal closed exactly where the template closes it. */
static void check_literal(const char *prefix, char quote, const char *value) {
        char tmpl[64];
        snprintf(tmpl, sizeof tmpl, "%s{{app}}%c}", prefix, quote);
        prom_template_vars vars = { .app = value, .release_started = -1 };
        char *out = NULL, *error = NULL;
        size_t off = 0;
        int r = prom_template_expand(tmpl, &vars, &out, &error, &off);
        if (r == 0) {
                if (error)
                        abort();
                size_t plen = strlen(prefix), olen = strlen(out);
                if (olen < plen + 2 || strncmp(out, prefix, plen) != 0)
                        abort();
                size_t i = plen;
                while (i < olen && out[i] != quote) {
                        if (quote != '`' && out[i] == '\\')
                                i++;
                        i++;
                }
                if (i != olen - 2)
                        abort(); /* the value closed the literal early */
        } else if (r != -ENOMEM && (!error || !*error || off > strlen(tmpl)))
                abort();
        free(out);
        free(error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        long status = size ? statuses[data[0] % ELEMENTSOF(statuses)] : 200;
        const uint8_t *body = size ? data + 1 : data;
        size_t len = size ? size - 1 : 0;

        /* Not NUL-terminated: prom.c hands over the body with its length. */
        prom_verdict v;
        prom_parse_response(status, (const char *) body, len, &v);
        check_verdict(&v);

        char *text = fuzz_strndup(body, len);
        if (!text)
                return 0;

        char small[17];
        prom_sanitize_text(small, sizeof small, text, strlen(text));
        check_text(small);

        prom_template_vars vars = {
                .app = "shop-api", .app_id = "a1b2", .change_order = "co-1", .region = "cn-hangzhou",
                .release_started = 1700000000,
        };
        char *out = NULL, *error = NULL;
        size_t off = 0;
        int r = prom_template_expand(text, &vars, &out, &error, &off);
        if (r == 0 && (error || !out || strlen(out) >= PROM_QUERY_MAX))
                abort();
        if (r < 0 && r != -ENOMEM && (!error || !*error || off > strlen(text)))
                abort();
        free(out);
        free(error);
        out = error = NULL;
        r = prom_template_check(text, NULL, NULL, &error, &off);
        if (r < 0 && r != -ENOMEM && (!error || !*error))
                abort();
        free(error);

        /* the input as a value in each kind of literal */
        check_literal("m{app=\"", '"', text);
        check_literal("m{app='", '\'', text);
        check_literal("m{app=`", '`', text);
        check_literal("m{app=~\"", '"', text);
        check_literal("m{app!~'", '\'', text);
        free(text);
        return 0;
}
