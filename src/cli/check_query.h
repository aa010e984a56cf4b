/* SPDX-License-Identifier: MIT */
/* `rollguard check`'s metric part: how a query rule reads, and with
 * --query, what each query answers right now. */
#pragma once

#include <stdio.h>

#include "config.h"
#include "rules.h"

/* ", query above 0.05: sum(rate(...)) ..." on the rule's check line. */
void check_print_query_rule(FILE *f, const rule *r);

/* Runs every query rule's query once against cfg's prometheus (the apps'
 * values, stand-ins for the change order and release start), printing each
 * value or the inconclusive reason. Returns the number of inconclusive
 * queries, or a negative errno when it cannot ask at all. */
int check_run_queries(const config *cfg, FILE *f);
