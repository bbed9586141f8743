/*
 * prune.c - how `ferry prune` and `ferry forget` show what the engine
 * removed (engine/sched/prune.c): a line per entry and a summary, or one
 * JSON document (fields: docs/ferry.1, "JSON OUTPUT").
 */
#include <stdio.h>
#include <string.h>

#include "fr_tools.h"

/* "partial package 'pkg' (id 0123456789ab, from CEN, 3/7 segments,
 * 52.0 MiB)" or "transfer ID ('pkg' to LAB, done)" */
static const char *entry_text(const struct fr_prune_entry *e, char *buf,
			      size_t cap)
{
	char sz[32];

	if (e->transfer)
		snprintf(buf, cap, "transfer %s ('%s' to %s, %s)", e->id,
			 e->name, e->site, e->state);
	else
		snprintf(buf, cap,
			 "partial package '%s' (id %.12s, from %s, %u/%u "
			 "segments, %s)",
			 e->name, e->id, e->site, e->segments_done, e->segments,
			 fr_human_bytes(e->bytes, sz, sizeof(sz)));
	return buf;
}

static void entry_json(const struct fr_prune_result *r,
		       const struct fr_prune_entry *e, FILE *out)
{
	char n[600], lt[40];

	if (e->transfer)
		fprintf(out,
			"{\"kind\":\"transfer\",\"transfer\":\"%s\",\"name\":%s,"
			"\"site\":\"%s\",\"state\":\"%s\"",
			e->id, fr_json_str(e->name, n, sizeof(n)), e->site,
			e->state);
	else
		fprintf(out,
			"{\"kind\":\"partial\",\"name\":%s,\"id\":\"%s\","
			"\"from\":\"%s\",\"segments\":%u,\"segments_done\":%u,"
			"\"bytes\":%llu",
			fr_json_str(e->name, n, sizeof(n)), e->id, e->site,
			e->segments, e->segments_done,
			(unsigned long long)e->bytes);
	fprintf(out, ",\"last_activity\":%s,\"idle_s\":%lld,\"action\":\"%s\"}",
		fr_json_time(e->last, lt, sizeof(lt)),
		(long long)(e->last >= 0 ? r->now - e->last : -1),
		e->kept	     ? "kept"
		: r->dry_run ? "would-remove"
			     : "removed");
}

static void print_json(const struct fr_prune_result *r, FILE *out)
{
	fprintf(out, "{\"dry_run\":%s,\"older_than_s\":%g,\"entries\":[",
		r->dry_run ? "true" : "false", r->older_than_s);
	for (unsigned i = 0; i < r->n; i++) {
		fprintf(out, "%s\n  ", i ? "," : "");
		entry_json(r, &r->v[i], out);
	}
	fprintf(out,
		"%s],\"partials\":%u,\"transfers\":%u,\"bytes\":%llu,"
		"\"busy\":%u}\n",
		r->n ? "\n" : "", r->n_partials, r->n_transfers,
		(unsigned long long)r->bytes, r->n_busy);
}

void ferry_prune_print(const struct fr_prune_result *r, bool json, FILE *out)
{
	char what[1400], ago[32], sz[32], span[32];

	if (json) {
		print_json(r, out);
		return;
	}
	for (unsigned i = 0; i < r->n; i++) {
		const struct fr_prune_entry *e = &r->v[i];
		fr_span_str(e->last >= 0 ? r->now - e->last : -1, ago,
			    sizeof(ago));
		entry_text(e, what, sizeof(what));
		if (e->kept)
			fprintf(out, "kept %s; last activity %s ago: %s\n",
				what, ago, e->kept);
		else
			fprintf(out, "%s %s; last activity %s ago\n",
				r->dry_run ? "would remove" : "removed", what,
				ago);
	}
	fr_span_str((int64_t)r->older_than_s, span, sizeof(span));
	if (r->n_partials || r->n_transfers)
		fprintf(out,
			"%s %u partial package(s) (%s) and %u transfer "
			"record(s) idle for more than %s\n",
			r->dry_run ? "would prune" : "pruned", r->n_partials,
			fr_human_bytes(r->bytes, sz, sizeof(sz)),
			r->n_transfers, span);
	else
		fprintf(out, "nothing idle for more than %s to prune\n", span);
}

void ferry_forget_print(const struct fr_prune_entry *e, bool json, FILE *out)
{
	char n[600];

	if (json)
		fprintf(out,
			"{\"transfer\":\"%s\",\"name\":%s,\"site\":\"%s\","
			"\"state\":\"%s\",\"forgotten\":true}\n",
			e->id, fr_json_str(e->name, n, sizeof(n)), e->site,
			e->state);
	else
		fprintf(out, "forgot transfer %s ('%s' to %s, %s)%s\n", e->id,
			e->name, e->site, e->state,
			strcmp(e->state, "done") && strcmp(e->state, "incomplete")
			    ? "; what it left at the site goes with the next "
			      "'ferry prune' there"
			    : "");
}
