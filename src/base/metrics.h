/* SPDX-License-Identifier: MIT */
/* Counters, gauges and histograms with label sets, registered by the module
 * that owns them and rendered once, in Prometheus text format (0.0.4), for
 * GET /metrics. No I/O, no locks: everything runs on the one event loop.
 *
 * Label names are given at registration, label values at each update, in
 * the same order and number (the macros count them; an update with the
 * wrong number is dropped rather than corrupting a series). Every update
 * on a NULL metric is a no-op, so a module without a registry needs no ifs.
 * Series appear in the order they were first touched, families in the order
 * they were registered. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct metrics_registry metrics_registry;
typedef struct metrics_counter metrics_counter;
typedef struct metrics_gauge metrics_gauge;
typedef struct metrics_histogram metrics_histogram;
typedef struct metrics_callback metrics_callback;
typedef struct metrics_emitter metrics_emitter;

typedef enum metrics_type {
        METRICS_COUNTER,
        METRICS_GAUGE,
        METRICS_HISTOGRAM,
} metrics_type;

metrics_registry *metrics_registry_new(void);
/* Frees every family still registered: free the registry last. */
metrics_registry *metrics_registry_free(metrics_registry *r);

/* Writes every family: # HELP, # TYPE, then its samples. Label values are
 * escaped (\\ \" \n); values print as integers when they are integral. */
int metrics_render(metrics_registry *r, FILE *f);

/* Registration returns NULL on ENOMEM, an invalid name (not
 * [a-zA-Z_:][a-zA-Z0-9_:]*) or a name already registered. The *_free
 * functions unregister and free (NULL is fine). */

metrics_counter *metrics_counter_new_(metrics_registry *r, const char *name, const char *help,
                                      const char *const *label_names, size_t n_labels);
#define metrics_counter_new(r, name, help, ...) \
        metrics_counter_new_((r), (name), (help), METRICS_LIST_(__VA_ARGS__), METRICS_COUNT_(__VA_ARGS__))
void metrics_counter_add_(metrics_counter *c, uint64_t v, const char *const *values, size_t n_values);
/* metrics_counter_add(c, 0, ...) makes a series exist at 0. */
#define metrics_counter_add(c, v, ...) \
        metrics_counter_add_((c), (v), METRICS_LIST_(__VA_ARGS__), METRICS_COUNT_(__VA_ARGS__))
#define metrics_counter_inc(c, ...) metrics_counter_add(c, 1, ##__VA_ARGS__)
metrics_counter *metrics_counter_free(metrics_counter *c);

metrics_gauge *metrics_gauge_new_(metrics_registry *r, const char *name, const char *help,
                                  const char *const *label_names, size_t n_labels);
#define metrics_gauge_new(r, name, help, ...) \
        metrics_gauge_new_((r), (name), (help), METRICS_LIST_(__VA_ARGS__), METRICS_COUNT_(__VA_ARGS__))
void metrics_gauge_set_(metrics_gauge *g, double v, const char *const *values, size_t n_values);
#define metrics_gauge_set(g, v, ...) \
        metrics_gauge_set_((g), (v), METRICS_LIST_(__VA_ARGS__), METRICS_COUNT_(__VA_ARGS__))
void metrics_gauge_add_(metrics_gauge *g, double v, const char *const *values, size_t n_values);
#define metrics_gauge_add(g, v, ...) \
        metrics_gauge_add_((g), (v), METRICS_LIST_(__VA_ARGS__), METRICS_COUNT_(__VA_ARGS__))
metrics_gauge *metrics_gauge_free(metrics_gauge *g);

/* bounds: the upper bounds of the buckets, strictly increasing, finite; the
 * +Inf bucket is implied. They are copied. */
metrics_histogram *metrics_histogram_new_(metrics_registry *r, const char *name, const char *help,
                                          const double *bounds, size_t n_bounds,
                                          const char *const *label_names, size_t n_labels);
#define metrics_histogram_new(r, name, help, bounds, n_bounds, ...)                                    \
        metrics_histogram_new_((r), (name), (help), (bounds), (n_bounds), METRICS_LIST_(__VA_ARGS__), \
                               METRICS_COUNT_(__VA_ARGS__))
void metrics_histogram_observe_(metrics_histogram *h, double v, const char *const *values, size_t n_values);
#define metrics_histogram_observe(h, v, ...) \
        metrics_histogram_observe_((h), (v), METRICS_LIST_(__VA_ARGS__), METRICS_COUNT_(__VA_ARGS__))
metrics_histogram *metrics_histogram_free(metrics_histogram *h);

/* A family whose samples are computed at render time from the owner's own
 * state (apps by phase, queue lengths, counters kept elsewhere): fn calls
 * metrics_emit once per series. type is METRICS_COUNTER or METRICS_GAUGE. */
typedef void (*metrics_collect_fn)(void *userdata, metrics_emitter *e);
metrics_callback *metrics_callback_new_(metrics_registry *r, const char *name, const char *help, metrics_type type,
                                        metrics_collect_fn fn, void *userdata, const char *const *label_names,
                                        size_t n_labels);
#define metrics_callback_new(r, name, help, type, fn, userdata, ...)                                 \
        metrics_callback_new_((r), (name), (help), (type), (fn), (userdata), METRICS_LIST_(__VA_ARGS__), \
                              METRICS_COUNT_(__VA_ARGS__))
void metrics_emit_(metrics_emitter *e, double v, const char *const *values, size_t n_values);
#define metrics_emit(e, v, ...) metrics_emit_((e), (v), METRICS_LIST_(__VA_ARGS__), METRICS_COUNT_(__VA_ARGS__))
metrics_callback *metrics_callback_free(metrics_callback *cb);

/* Writes s as a label value: \ " and newline escaped. */
void metrics_write_label_value(FILE *f, const char *s);

/* Internal: a string list and its length from the variadic tail (possibly
 * empty). The leading NULL makes the empty list legal C. */
#define METRICS_LIST_(...) ((const char *const[]){ NULL, ##__VA_ARGS__ } + 1)
#define METRICS_COUNT_(...) (sizeof((const char *const[]){ NULL, ##__VA_ARGS__ }) / sizeof(const char *) - 1)
