/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct series {
        const char **values; /* n_labels pointers into the same allocation */
        uint64_t count;      /* counter value; histogram observations */
        double value;        /* gauge value; histogram sum */
        uint64_t *buckets;   /* histogram: per bound, not cumulative */
} series;

typedef struct family {
        metrics_registry *reg;
        char *name;
        char *help;
        metrics_type type;
        char **label_names;
        size_t n_labels;
        double *bounds;
        size_t n_bounds;

        series *series;
        size_t n_series, cap;
        /* Open addressing over series indexes + 1 (0 = empty): an update finds
         * its series without comparing every label set, which matters with a
         * series per app. */
        uint32_t *index;
        size_t index_cap;

        metrics_collect_fn collect;
        void *userdata;
} family;

struct metrics_counter {
        family f;
};
struct metrics_gauge {
        family f;
};
struct metrics_histogram {
        family f;
};
struct metrics_callback {
        family f;
};

struct metrics_registry {
        family **families;
        size_t n, cap;
};

struct metrics_emitter {
        FILE *f;
        const family *fam;
};

metrics_registry *metrics_registry_new(void) {
        return calloc(1, sizeof(metrics_registry));
}

static void family_free(family *fam) {
        for (size_t i = 0; i < fam->n_series; i++) {
                free(fam->series[i].values);
                free(fam->series[i].buckets);
        }
        free(fam->series);
        free(fam->index);
        for (size_t i = 0; i < fam->n_labels; i++)
                free(fam->label_names[i]);
        free(fam->label_names);
        free(fam->bounds);
        free(fam->name);
        free(fam->help);
        free(fam);
}

metrics_registry *metrics_registry_free(metrics_registry *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n; i++)
                family_free(r->families[i]);
        free(r->families);
        free(r);
        return NULL;
}

static bool name_valid(const char *s, bool colon) {
        if (!s || !*s)
                return false;
        for (const char *p = s; *p; p++) {
                bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (colon && *p == ':');
                if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
                        return false;
        }
        return true;
}

static family *family_new(metrics_registry *r, const char *name, const char *help, metrics_type type,
                          const char *const *label_names, size_t n_labels) {
        if (!r || !name_valid(name, true) || !help)
                return NULL;
        for (size_t i = 0; i < r->n; i++)
                if (streq(r->families[i]->name, name))
                        return NULL;
        for (size_t i = 0; i < n_labels; i++) {
                /* __ is reserved; le is the histogram's own */
                if (!name_valid(label_names[i], false) || strncmp(label_names[i], "__", 2) == 0 ||
                    (type == METRICS_HISTOGRAM && streq(label_names[i], "le")))
                        return NULL;
        }
        if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 16;
                family **n = reallocarray(r->families, cap, sizeof(family *));
                if (!n)
                        return NULL;
                r->families = n;
                r->cap = cap;
        }
        family *fam = calloc(1, sizeof(family));
        if (!fam)
                return NULL;
        fam->reg = r;
        fam->type = type;
        fam->name = strdup(name);
        fam->help = strdup(help);
        fam->label_names = n_labels ? calloc(n_labels, sizeof(char *)) : NULL;
        if (!fam->name || !fam->help || (n_labels && !fam->label_names))
                goto oom;
        for (size_t i = 0; i < n_labels; i++) {
                fam->label_names[i] = strdup(label_names[i]);
                if (!fam->label_names[i])
                        goto oom;
                fam->n_labels = i + 1;
        }
        r->families[r->n++] = fam;
        return fam;
oom:
        family_free(fam);
        return NULL;
}

static void family_unregister(family *fam) {
        if (!fam)
                return;
        metrics_registry *r = fam->reg;
        for (size_t i = 0; i < r->n; i++)
                if (r->families[i] == fam) {
                        memmove(&r->families[i], &r->families[i + 1], (r->n - i - 1) * sizeof(family *));
                        r->n--;
                        break;
                }
        family_free(fam);
}

static uint64_t hash_values(const char *const *values, size_t n) {
        uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
        for (size_t i = 0; i < n; i++) {
                for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
                        h = (h ^ *p) * UINT64_C(0x100000001b3);
                h = (h ^ 0xff) * UINT64_C(0x100000001b3); /* no byte of a C string */
        }
        return h;
}

static bool values_equal(const series *s, const char *const *values, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!streq(s->values[i], values[i]))
                        return false;
        return true;
}

static int index_grow(family *fam) {
        size_t cap = fam->index_cap ? fam->index_cap * 2 : 16;
        uint32_t *idx = calloc(cap, sizeof(uint32_t));
        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < fam->n_series; i++) {
                size_t h = (size_t)hash_values(fam->series[i].values, fam->n_labels) & (cap - 1);
                while (idx[h])
                        h = (h + 1) & (cap - 1);
                idx[h] = (uint32_t)(i + 1);
        }
        free(fam->index);
        fam->index = idx;
        fam->index_cap = cap;
        return 0;
}

/* The series for these values, created at zero if new; NULL on a wrong
 * number of values, a NULL value or ENOMEM. */
static series *series_get(family *fam, const char *const *values, size_t n) {
        if (n != fam->n_labels)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!values[i])
                        return NULL;
        uint64_t hv = hash_values(values, n);
        if (fam->index_cap) {
                for (size_t h = (size_t)hv & (fam->index_cap - 1); fam->index[h];
                     h = (h + 1) & (fam->index_cap - 1)) {
                        series *s = &fam->series[fam->index[h] - 1];
                        if (values_equal(s, values, n))
                                return s;
                }
        }

        /* keep the table at most half full */
        if ((fam->n_series + 1) * 2 > fam->index_cap && index_grow(fam) < 0)
                return NULL;
        if (fam->n_series >= UINT32_MAX - 1)
                return NULL;
        if (fam->n_series == fam->cap) {
                size_t cap = fam->cap ? fam->cap * 2 : 8;
                series *ns = reallocarray(fam->series, cap, sizeof(series));
                if (!ns)
                        return NULL;
                fam->series = ns;
                fam->cap = cap;
        }

        size_t total = n * sizeof(char *);
        for (size_t i = 0; i < n; i++)
                total += strlen(values[i]) + 1;
        series s = { 0 };
        s.values = malloc(total ? total : 1);
        if (!s.values)
                return NULL;
        char *p = (char *)(s.values + n);
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(values[i]) + 1;
                memcpy(p, values[i], l);
                s.values[i] = p;
                p += l;
        }
        if (fam->type == METRICS_HISTOGRAM && fam->n_bounds) {
                s.buckets = calloc(fam->n_bounds, sizeof(uint64_t));
                if (!s.buckets) {
                        free(s.values);
                        return NULL;
                }
        }
        size_t at = fam->n_series++;
        fam->series[at] = s;
        size_t h = (size_t)hv & (fam->index_cap - 1);
        while (fam->index[h])
                h = (h + 1) & (fam->index_cap - 1);
        fam->index[h] = (uint32_t)(at + 1);
        return &fam->series[at];
}

/* ---- the four kinds ---- */

metrics_counter *metrics_counter_new_(metrics_registry *r, const char *name, const char *help,
                                      const char *const *label_names, size_t n_labels) {
        return (metrics_counter *)family_new(r, name, help, METRICS_COUNTER, label_names, n_labels);
}

void metrics_counter_add_(metrics_counter *c, uint64_t v, const char *const *values, size_t n_values) {
        series *s = c ? series_get(&c->f, values, n_values) : NULL;
        if (s)
                s->count += v;
}

metrics_counter *metrics_counter_free(metrics_counter *c) {
        family_unregister(c ? &c->f : NULL);
        return NULL;
}

metrics_gauge *metrics_gauge_new_(metrics_registry *r, const char *name, const char *help,
                                  const char *const *label_names, size_t n_labels) {
        return (metrics_gauge *)family_new(r, name, help, METRICS_GAUGE, label_names, n_labels);
}

void metrics_gauge_set_(metrics_gauge *g, double v, const char *const *values, size_t n_values) {
        series *s = g ? series_get(&g->f, values, n_values) : NULL;
        if (s)
                s->value = v;
}

void metrics_gauge_add_(metrics_gauge *g, double v, const char *const *values, size_t n_values) {
        series *s = g ? series_get(&g->f, values, n_values) : NULL;
        if (s)
                s->value += v;
}

metrics_gauge *metrics_gauge_free(metrics_gauge *g) {
        family_unregister(g ? &g->f : NULL);
        return NULL;
}

metrics_histogram *metrics_histogram_new_(metrics_registry *r, const char *name, const char *help,
                                          const double *bounds, size_t n_bounds,
                                          const char *const *label_names, size_t n_labels) {
        for (size_t i = 0; i < n_bounds; i++)
                if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                        return NULL;
        double *b = n_bounds ? malloc(n_bounds * sizeof(double)) : NULL;
        if (n_bounds && !b)
                return NULL;
        if (n_bounds)
                memcpy(b, bounds, n_bounds * sizeof(double));
        family *fam = family_new(r, name, help, METRICS_HISTOGRAM, label_names, n_labels);
        if (!fam) {
                free(b);
                return NULL;
        }
        fam->bounds = b;
        fam->n_bounds = n_bounds;
        return (metrics_histogram *)fam;
}

void metrics_histogram_observe_(metrics_histogram *h, double v, const char *const *values, size_t n_values) {
        series *s = h ? series_get(&h->f, values, n_values) : NULL;
        if (!s || isnan(v))
                return;
        s->count++;
        s->value += v;
        for (size_t i = 0; i < h->f.n_bounds; i++)
                if (v <= h->f.bounds[i]) {
                        s->buckets[i]++;
                        break;
                }
}

metrics_histogram *metrics_histogram_free(metrics_histogram *h) {
        family_unregister(h ? &h->f : NULL);
        return NULL;
}

metrics_callback *metrics_callback_new_(metrics_registry *r, const char *name, const char *help, metrics_type type,
                                        metrics_collect_fn fn, void *userdata, const char *const *label_names,
                                        size_t n_labels) {
        if (!fn || (type != METRICS_COUNTER && type != METRICS_GAUGE))
                return NULL;
        family *fam = family_new(r, name, help, type, label_names, n_labels);
        if (!fam)
                return NULL;
        fam->collect = fn;
        fam->userdata = userdata;
        return (metrics_callback *)fam;
}

metrics_callback *metrics_callback_free(metrics_callback *cb) {
        family_unregister(cb ? &cb->f : NULL);
        return NULL;
}

/* ---- rendering ---- */

void metrics_write_label_value(FILE *f, const char *s) {
        for (; s && *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

/* HELP text escapes only backslash and newline. */
static void write_help(FILE *f, const char *s) {
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

/* Integral values as integers ("3", not "3.000"); others in the shortest
 * form that reads back as the same double. */
static void write_value(FILE *f, double v) {
        if (isnan(v)) {
                fputs("NaN", f);
                return;
        }
        if (isinf(v)) {
                fputs(v > 0 ? "+Inf" : "-Inf", f);
                return;
        }
        if (v == floor(v) && fabs(v) < 1e15) {
                fprintf(f, "%.0f", v == 0 ? 0.0 : v);
                return;
        }
        char buf[40];
        snprintf(buf, sizeof buf, "%.15g", v);
        if (strtod(buf, NULL) != v)
                snprintf(buf, sizeof buf, "%.17g", v);
        fputs(buf, f);
}

static void write_labels(FILE *f, const family *fam, const char *const *values, const char *le) {
        if (fam->n_labels == 0 && !le)
                return;
        fputc('{', f);
        for (size_t i = 0; i < fam->n_labels; i++) {
                fprintf(f, "%s%s=\"", i ? "," : "", fam->label_names[i]);
                metrics_write_label_value(f, values[i]);
                fputc('"', f);
        }
        if (le)
                fprintf(f, "%sle=\"%s\"", fam->n_labels ? "," : "", le);
        fputc('}', f);
}

static void write_histogram_series(FILE *f, const family *fam, const series *s) {
        uint64_t cum = 0;
        for (size_t b = 0; b < fam->n_bounds; b++) {
                char le[40];
                FILE *lf = fmemopen(le, sizeof le, "w");
                if (!lf)
                        return;
                write_value(lf, fam->bounds[b]);
                fclose(lf);
                cum += s->buckets[b];
                fprintf(f, "%s_bucket", fam->name);
                write_labels(f, fam, s->values, le);
                fprintf(f, " %" PRIu64 "\n", cum);
        }
        fprintf(f, "%s_bucket", fam->name);
        write_labels(f, fam, s->values, "+Inf");
        fprintf(f, " %" PRIu64 "\n%s_sum", s->count, fam->name);
        write_labels(f, fam, s->values, NULL);
        fputc(' ', f);
        write_value(f, s->value);
        fprintf(f, "\n%s_count", fam->name);
        write_labels(f, fam, s->values, NULL);
        fprintf(f, " %" PRIu64 "\n", s->count);
}

void metrics_emit_(metrics_emitter *e, double v, const char *const *values, size_t n_values) {
        if (!e || n_values != e->fam->n_labels)
                return;
        for (size_t i = 0; i < n_values; i++)
                if (!values[i])
                        return;
        fputs(e->fam->name, e->f);
        write_labels(e->f, e->fam, values, NULL);
        fputc(' ', e->f);
        write_value(e->f, v);
        fputc('\n', e->f);
}

static const char *type_name(metrics_type t) {
        return t == METRICS_COUNTER ? "counter" : t == METRICS_GAUGE ? "gauge" : "histogram";
}

int metrics_render(metrics_registry *r, FILE *f) {
        for (size_t i = 0; r && i < r->n; i++) {
                const family *fam = r->families[i];
                fprintf(f, "# HELP %s ", fam->name);
                write_help(f, fam->help);
                fprintf(f, "\n# TYPE %s %s\n", fam->name, type_name(fam->type));
                if (fam->collect) {
                        metrics_emitter e = { .f = f, .fam = fam };
                        fam->collect(fam->userdata, &e);
                        continue;
                }
                for (size_t k = 0; k < fam->n_series; k++) {
                        const series *s = &fam->series[k];
                        if (fam->type == METRICS_HISTOGRAM) {
                                write_histogram_series(f, fam, s);
                                continue;
                        }
                        fputs(fam->name, f);
                        write_labels(f, fam, s->values, NULL);
                        if (fam->type == METRICS_COUNTER)
                                fprintf(f, " %" PRIu64 "\n", s->count);
                        else {
                                fputc(' ', f);
                                write_value(f, s->value);
                                fputc('\n', f);
                        }
                }
        }
        return ferror(f) ? -EIO : 0;
}
