/*
 * fr_tools.h - what the command line's files share: main.c parses and
 * dispatches, the others present what the engine found.
 */
#ifndef FR_TOOLS_H
#define FR_TOOLS_H

#include <stdbool.h>
#include <stdio.h>

#include "fr_engine.h"

/* `ferry status`: a table per direction, or one JSON array (status.c). */
void fr_status_print(const struct fr_status *s, bool json, FILE *out);
/* `ferry plan`'s report (plan.c): the table, or one JSON object. */
void ferry_plan_print(const struct fr_plan *p, bool json, FILE *out);

#endif
