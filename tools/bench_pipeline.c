/*
 * bench_pipeline.c - how `ferry bench pipeline` shows what the engine
 * measured (engine/pipe/bench.c): a table per stage and per level and
 * the automatic level's choice over a few link speeds, or one JSON
 * document (fields: docs/ferry.1, "JSON OUTPUT"); a progress line on
 * stderr while it runs.
 */
#include <stdio.h>
#include <string.h>

#include "fr_tools.h"

static void progress(const char *stage, double frac, void *arg)
{
	(void)arg;
	if (frac > 0)
		fprintf(stderr, "\r\033[Kbench: %s %3.0f%%", stage, frac * 100);
	else
		fprintf(stderr, "\r\033[Kbench: %s", stage);
	fflush(stderr);
}

/* "128 kbit/s", "2 Mbit/s", "10 Gbit/s" */
static const char *link_text(double bps, char *buf, size_t cap)
{
	if (bps >= 1e9)
		snprintf(buf, cap, "%g Gbit/s", bps / 1e9);
	else if (bps >= 1e6)
		snprintf(buf, cap, "%g Mbit/s", bps / 1e6);
	else
		snprintf(buf, cap, "%g kbit/s", bps / 1e3);
	return buf;
}

static void print_head(const struct fr_bench_pipe *r, FILE *out)
{
	char a[32], b[32], en[4 * FR_NAME_MAX + 8];

	fprintf(out, "bench pipeline: '%s', %s in %u files, %u segments of %s; "
		"%d workers\n",
		fr_esc(r->name, en, sizeof(en)),
		fr_human_bytes(r->bytes, a, sizeof(a)), r->files, r->segments,
		fr_human_bytes(r->seg_size, b, sizeof(b)), r->workers);
	if (r->left_out)
		fprintf(out, "(%u entries a send would leave out are not "
			     "counted: see 'ferry send')\n",
			r->left_out);
	fprintf(out, "source read:  %8.1f MB/s over %s, ",
		r->read_mb_s, fr_human_bytes(r->read_bytes, a, sizeof(a)));
	if (r->cold)
		fprintf(out, "cold (its page cache dropped first)\n");
	else if (r->cached_share >= 0)
		fprintf(out, "warm (%.0f%% stayed in the page cache)\n",
			r->cached_share * 100);
	else
		fprintf(out, "warm or cold: this kernel cannot say\n");
	fprintf(out, "XXH3-128:     %8.1f MB/s per core", r->hash_mb_s_per_core);
	if (r->hash_mb_s > 0)
		fprintf(out, "; %.1f MB/s through the pipeline, raw",
			r->hash_mb_s);
	fprintf(out, "\nsealing:      %8.1f MB/s per core (%s)\n",
		r->seal_mb_s_per_core, r->aead);
	fprintf(out, "levels measured on %u segments (%s) held in memory\n\n",
		r->sample_segments,
		fr_human_bytes(r->sample_bytes, a, sizeof(a)));
}

static void print_levels(const struct fr_bench_pipe *r, FILE *out)
{
	fprintf(out, "level   ratio   compress/core  decompress/core   "
		     "pipeline, %d workers\n",
		r->workers);
	for (unsigned i = 0; i < r->n_levels; i++) {
		const struct fr_bench_level *l = &r->levels[i];
		if (l->level == 0) {
			fprintf(out, "%5d  %6.3f  %14s  %15s  %10.1f MB/s\n",
				0, 1.0, "-", "-", l->pipeline_mb_s);
			continue;
		}
		if (l->decompress_mb_s_per_core <= 0) { /* every segment raw */
			fprintf(out,
				"%5d  %6.3f  %9.1f MB/s  %15s  %10.1f MB/s\n",
				l->level, l->ratio, l->compress_mb_s_per_core,
				"- (stored raw)", l->pipeline_mb_s);
			continue;
		}
		fprintf(out, "%5d  %6.3f  %9.1f MB/s  %10.1f MB/s  %10.1f MB/s\n",
			l->level, l->ratio, l->compress_mb_s_per_core,
			l->decompress_mb_s_per_core, l->pipeline_mb_s);
	}
	if (!r->n_auto)
		return;
	fprintf(out, "\nthe automatic level (--level auto) with these "
		     "measurements:\n  %-12s  level  moves\n",
		"link");
	for (unsigned i = 0; i < r->n_auto; i++) {
		char lt[32];
		const struct fr_bench_auto *a = &r->autos[i];
		fprintf(out, "  %-12s  %5d  %.2f MB/s\n",
			link_text(a->link_bps, lt, sizeof(lt)), a->level,
			a->predicted_mb_s);
	}
}

static void print_json(const struct fr_bench_pipe *r, FILE *out)
{
	char nm[4 * FR_NAME_MAX + 8];

	fprintf(out,
		"{\"ok\": true, \"name\": %s, \"bytes\": %llu, \"files\": %u, "
		"\"segments\": %u, \"seg_size\": %u, \"left_out\": %u, "
		"\"workers\": %d,\n"
		" \"read\": {\"mb_s\": %.1f, \"bytes\": %llu, \"cold\": %s, "
		"\"cached_share\": %.3f},\n"
		" \"sample_bytes\": %llu, \"hash_mb_s_per_core\": %.1f, "
		"\"hash_mb_s\": %.1f,\n"
		" \"seal\": {\"aead\": \"%s\", \"mb_s_per_core\": %.1f},\n"
		" \"levels\": [",
		fr_json_str(r->name, nm, sizeof(nm)),
		(unsigned long long)r->bytes, r->files, r->segments,
		r->seg_size, r->left_out, r->workers, r->read_mb_s,
		(unsigned long long)r->read_bytes, r->cold ? "true" : "false",
		r->cached_share, (unsigned long long)r->sample_bytes,
		r->hash_mb_s_per_core, r->hash_mb_s, r->aead,
		r->seal_mb_s_per_core);
	for (unsigned i = 0; i < r->n_levels; i++) {
		const struct fr_bench_level *l = &r->levels[i];
		fprintf(out,
			"%s\n  {\"level\": %d, \"ratio\": %.4f, "
			"\"compress_mb_s_per_core\": %.1f, "
			"\"decompress_mb_s_per_core\": %.1f, "
			"\"pipeline_mb_s\": %.1f}",
			i ? "," : "", l->level, l->ratio,
			l->compress_mb_s_per_core, l->decompress_mb_s_per_core,
			l->pipeline_mb_s);
	}
	fprintf(out, "],\n \"auto\": [");
	for (unsigned i = 0; i < r->n_auto; i++)
		fprintf(out,
			"%s{\"link_bps\": %.0f, \"level\": %d, "
			"\"predicted_mb_s\": %.2f}",
			i ? ", " : "", r->autos[i].link_bps, r->autos[i].level,
			r->autos[i].predicted_mb_s);
	fprintf(out, "]}\n");
}

int ferry_bench_pipeline(const struct fr_config *c,
			 const struct ferry_bench_args *b, FILE *out)
{
	struct fr_bench_pipe r;
	struct fr_bench_pipe_opts o = {
	    .path = b->target,
	    .level = b->level == FERRY_LEVEL_ALL ? -3 : b->level,
	    .progress = b->progress ? progress : NULL,
	};
	int rc = fr_bench_pipeline(c, &o, &r);

	if (b->progress)
		fprintf(stderr, "\r\033[K");
	if (rc < 0) {
		if (b->json)
			fprintf(out, "{\"ok\": false, \"error\": \"%s\"}\n",
				fr_strerror(rc));
		return rc;
	}
	if (b->json) {
		print_json(&r, out);
	} else {
		print_head(&r, out);
		print_levels(&r, out);
	}
	return 0;
}
