/*
 * bench_pipeline.c - `ferry bench pipeline`: not written yet.
 */
#include <errno.h>
#include <stdio.h>

#include "fr_tools.h"

int ferry_bench_pipeline(const struct fr_config *c, const struct ferry_bench_args *b,
		     FILE *out)
{
	(void)c;
	(void)b;
	(void)out;
	fprintf(stderr, "ferry: 'bench pipeline' is not available yet\n");
	return -ENOSYS;
}
