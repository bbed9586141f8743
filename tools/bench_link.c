/*
 * bench_link.c - `ferry bench link`: not written yet.
 */
#include <errno.h>
#include <stdio.h>

#include "fr_tools.h"

int ferry_bench_link(const struct fr_config *c, const struct ferry_bench_args *b,
		     FILE *out)
{
	(void)c;
	(void)b;
	(void)out;
	fprintf(stderr, "ferry: 'bench link' is not available yet\n");
	return -ENOSYS;
}
