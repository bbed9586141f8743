/*
 * verify.c - how `ferry verify [--repair]` shows what the engine found
 * (engine/store/verify.c): a line per difference, the verdict and what
 * the repair did, or one JSON object (fields: docs/ferry.1, "JSON
 * OUTPUT").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_tools.h"

static void diffs_json(const struct fr_verify_result *r, FILE *out)
{
	size_t cap = 6 * 4096 + 64;
	char *p = malloc(cap), *j = malloc(cap), *g = malloc(cap),
	     *w = malloc(cap);

	fprintf(out, "\"differences\":[");
	for (uint32_t i = 0; p && j && g && w && i < r->n_diffs; i++) {
		const struct fr_verify_diff *x = &r->diffs[i];
		fprintf(out, "%s{\"kind\":\"%s\",\"path\":%s,\"message\":%s",
			i ? "," : "", x->kind, fr_json_str(x->path, p, cap),
			fr_json_str(x->message, j, cap));
		if (x->got[0] || x->want[0])
			fprintf(out, ",\"got\":%s,\"want\":%s",
				fr_json_str(x->got, g, cap),
				fr_json_str(x->want, w, cap));
		if (x->content)
			fprintf(out, ",\"segment\":%u,\"files\":%u", x->segment,
				x->files);
		fprintf(out, "}");
	}
	fprintf(out, "]");
	free(p);
	free(j);
	free(g);
	free(w);
}

static const char *tf(bool b)
{
	return b ? "true" : "false";
}

static void print_json(const char *name, const struct fr_verify_result *r,
		       FILE *out)
{
	size_t cap = 6 * 8192;
	char n[600], *e = malloc(cap);

	fprintf(out,
		"{\"name\":%s,\"ok\":%s,\"bytes\":%llu,\"entries\":%u,"
		"\"segments\":%u,\"bad_segments\":%u,\"seconds\":%.3f,"
		"\"error\":%s,",
		fr_json_str(name, n, sizeof(n)), tf(!r->n_diffs),
		(unsigned long long)r->bytes, r->entries, r->segments,
		r->bad_segments, r->seconds,
		r->gravest && e ? fr_json_str(r->gravest, e, cap) : "null");
	diffs_json(r, out);
	if (r->repair)
		fprintf(out,
			",\"repair\":{\"ok\":%s,\"nothing\":%s,"
			"\"refused\":%s,\"forgotten\":%s,"
			"\"marked_segments\":%u,\"marked_bytes\":%llu,"
			"\"restored\":%s,\"extra_left\":%u,\"error\":%s}",
			tf(r->repair_rc >= 0), tf(r->nothing), tf(r->refused),
			tf(r->forgotten), r->marked,
			(unsigned long long)r->marked_bytes, tf(r->restored),
			r->extra_left,
			r->repair_rc < 0 && e
			    ? fr_json_str(r->repair_err, e, cap)
			    : "null");
	fprintf(out, "}\n");
	free(e);
}

/* What the repair did, a line each. */
static void print_repair(const char *name, const struct fr_verify_result *r,
			 FILE *out)
{
	char sz[32], p[4 * 4096 + 8];

	if (r->nothing) {
		fprintf(out, "%s: nothing to repair\n", name);
		return;
	}
	if (r->refused) {
		for (uint32_t i = 0; i < r->n_diffs; i++)
			if (!strcmp(r->diffs[i].kind, "type"))
				fprintf(out,
					"%s: repair cannot replace '%s': move "
					"it away, then run verify --repair "
					"again\n",
					name,
					fr_esc(r->diffs[i].path, p, sizeof(p)));
		fprintf(out, "%s: nothing was repaired\n", name);
		return;
	}
	if (r->forgotten)
		fprintf(out,
			"%s: repair: the package directory is gone; the "
			"package is forgotten here, and the next send of it "
			"carries all of it (%u segments)\n",
			name, r->segments);
	if (r->marked)
		fprintf(out,
			"%s: repair: %u segment%s (%s) marked missing; the "
			"next 'ferry send' or 'ferry resume' of this package "
			"carries them, and modes, times and links are "
			"restored when they are in\n",
			name, r->marked, r->marked == 1 ? "" : "s",
			fr_human_bytes(r->marked_bytes, sz, sizeof(sz)));
	if (r->restored)
		fprintf(out,
			"%s: repair: modes, times, links, directories and "
			"empty files restored from the manifest\n",
			name);
	for (uint32_t i = 0; i < r->n_diffs; i++)
		if (!strcmp(r->diffs[i].kind, "extra"))
			fprintf(out,
				"%s: repair leaves '%s' in place: it is not "
				"part of the package; remove it yourself\n",
				name, fr_esc(r->diffs[i].path, p, sizeof(p)));
}

void ferry_verify_print(const char *name, const struct fr_verify_result *r,
			bool json, FILE *out)
{
	char sz[32];

	if (!r->checked)
		return;
	if (json) {
		print_json(name, r, out);
		return;
	}
	if (!r->n_diffs) {
		fprintf(out,
			"%s: ok (%u entries, %u segments, %s, verified in %.1f "
			"s)\n",
			name, r->entries, r->segments,
			fr_human_bytes(r->bytes, sz, sizeof(sz)), r->seconds);
	} else {
		for (uint32_t i = 0; i < r->n_diffs; i++)
			fprintf(out, "%s: %s\n", name, r->diffs[i].message);
		fprintf(out,
			"%s: %s%u difference%s; %u of %u segments do not hold "
			"the package's bytes\n",
			name, r->repair ? "" : "FAILED: ", r->n_diffs,
			r->n_diffs == 1 ? "" : "s", r->bad_segments,
			r->segments);
	}
	if (r->repair && r->repair_rc == 0) {
		print_repair(name, r, out);
		if (r->intact_after)
			fprintf(out, "%s: ok after the repair\n", name);
	}
}
