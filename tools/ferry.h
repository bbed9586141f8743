/*
 * ferry.h - what the command line's files share: the presentation of
 * results the engine hands back (tools/ prints; the engine never does).
 */
#ifndef FERRY_TOOLS_H
#define FERRY_TOOLS_H

#include <stdbool.h>
#include <stdio.h>

#include "fr_engine.h"

/* `ferry plan`'s report (plan.c): the table, or one JSON object. */
void ferry_plan_print(const struct fr_plan *p, bool json, FILE *out);

#endif
