/*
 * parcel.c - how `ferry parcel list` and `ferry parcel ship` show the
 * parcels made here (engine/out/parcel.c keeps their records): a table
 * or a JSON array, and the line that says a parcel was shipped.
 */
#include <stdio.h>
#include <time.h>

#include "fr_tools.h"

static void list_json(const struct fr_parcel_info *ps, uint32_t n, FILE *out)
{
	char b[600];

	fprintf(out, "[");
	for (uint32_t i = 0; i < n; i++) {
		const struct fr_parcel_info *p = &ps[i];
		fprintf(out,
			"%s{\"parcel\": \"%s\", \"name\": %s, "
			"\"site\": \"%s\", \"state\": \"%s\", "
			"\"registered\": %s, \"volumes\": %u, "
			"\"segments\": %u, \"n_segments\": %u, "
			"\"left_out\": %u, \"bytes\": %llu, "
			"\"created\": %lld, \"shipped\": %lld, "
			"\"received\": %lld}",
			i ? ", " : "", p->id, fr_json_str(p->name, b, sizeof(b)),
			p->site, p->state, p->registered ? "true" : "false",
			p->volumes, p->segments, p->n_segments, p->left_out,
			(unsigned long long)p->bytes, (long long)p->created,
			(long long)p->shipped, (long long)p->received);
	}
	fprintf(out, "]\n");
}

void ferry_parcel_list_print(const struct fr_parcel_info *ps, uint32_t n,
			     bool json, FILE *out)
{
	if (json) {
		list_json(ps, n, out);
		return;
	}
	if (!n) {
		fprintf(out, "no parcels\n");
		return;
	}
	fprintf(out, "%-12s  %-20s  %-6s  %-10s  %7s  %8s  %9s  %s\n", "PARCEL",
		"PACKAGE", "SITE", "STATE", "VOLUMES", "SEGMENTS", "SIZE",
		"CREATED");
	for (uint32_t i = 0; i < n; i++) {
		const struct fr_parcel_info *p = &ps[i];
		char sz[32], when[32];
		time_t t = (time_t)p->created;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
		fprintf(out, "%-12.12s  %-20s  %-6s  %-10s  %7u  %8u  %9s  %s%s\n",
			p->id, p->name, p->site, p->state, p->volumes,
			p->segments, fr_human_bytes(p->bytes, sz, sizeof(sz)),
			when, p->registered ? "" : "  (not registered)");
	}
}

void ferry_parcel_shipped_print(const struct fr_parcel_info *p, bool already,
				FILE *out)
{
	if (already)
		fprintf(out, "parcel %.12s was already marked shipped\n", p->id);
	else
		fprintf(out, "parcel %.12s ('%s' for %s) marked shipped\n",
			p->id, p->name, p->site);
}

static void made_json(const struct fr_parcel_made *m, bool skip_special,
		      FILE *out)
{
	const struct fr_parcel_info *p = &m->p;
	char b[2700], n[2200];

	fprintf(out,
		"{\"parcel\": %s, ", fr_json_str(p->id, b, sizeof(b)));
	fprintf(out, "\"name\": %s, ", fr_json_str(p->name, n, sizeof(n)));
	fprintf(out, "\"site\": %s, ", fr_json_str(p->site, b, sizeof(b)));
	fprintf(out,
		"\"registered\": %s, \"volumes\": %u, \"segments\": %u, "
		"\"n_segments\": %u, \"left_out\": %u, \"bytes\": %llu, "
		"\"raw_bytes\": %llu, \"seconds\": %.3f, \"paths\": [",
		p->registered ? "true" : "false", p->volumes, p->segments,
		p->n_segments, p->left_out, (unsigned long long)p->bytes,
		(unsigned long long)m->raw_bytes, m->seconds);
	for (uint32_t k = 0; k < m->n_paths; k++)
		fprintf(out, "%s%s", k ? ", " : "",
			fr_json_str(m->paths[k], b, sizeof(b)));
	/* "left_out" above counts segments that did not fit */
	fprintf(out, "], \"skip_special\": %s, \"left_out_entries\": ",
		skip_special ? "true" : "false");
	ferry_left_json(&m->left, out);
	fprintf(out, "}\n");
}

void ferry_parcel_made_print(const struct fr_parcel_made *m, bool json,
			     bool skip_special, FILE *out)
{
	const struct fr_parcel_info *p = &m->p;
	char sz[32], rz[32], en[4 * FR_NAME_MAX + 8];

	if (!m->kept) { /* nothing written: what was left out, on stderr */
		if (m->left.n) {
			fputs("ferry: ", stderr);
			ferry_left_print(&m->left, stderr);
		}
		return;
	}
	if (json) {
		made_json(m, skip_special, out);
		return;
	}
	fprintf(out,
		"parcel %.12s: '%s' for %s, %u segment(s) (%s) in %u "
		"volume(s), %s on the media, %.1f s%s\n",
		p->id, fr_esc(p->name, en, sizeof(en)), p->site, p->segments,
		fr_human_bytes(m->raw_bytes, rz, sizeof(rz)), p->volumes,
		fr_human_bytes(p->bytes, sz, sizeof(sz)), m->seconds,
		p->registered ? "" : " (not registered yet)");
	for (uint32_t k = 0; k < m->n_paths; k++)
		fprintf(out, "  %s\n", m->paths[k]);
	if (p->left_out)
		fprintf(out,
			"%u segment(s) did not fit: they can go over the "
			"network ('ferry send') or in another parcel\n",
			p->left_out);
	ferry_left_print(&m->left, out);
}

/* ---- `parcel create`'s progress line -------------------------------------- */

static void create_progress(void *arg, const struct fr_parcel_progress *p)
{
	char sg[64], rt[32], lv[32], vl[32];

	(void)arg;
	snprintf(sg, sizeof(sg), "parcel: %u/%u segments", p->written,
		 p->segments);
	snprintf(rt, sizeof(rt), "%.0f MB/s", p->mb_s);
	snprintf(lv, sizeof(lv), "level %d", p->level);
	snprintf(vl, sizeof(vl), "volume %u", p->volume);
	const struct ferry_tty_part parts[] = {{sg, 0}, {rt, 2}, {lv, 3}, {vl, 1}};
	ferry_tty_line(parts, sizeof(parts) / sizeof(parts[0]));
}

static void create_progress_end(void *arg)
{
	(void)arg;
	ferry_tty_clear();
}

void ferry_parcel_progress(struct fr_parcel_opts *o)
{
	o->progress = create_progress;
	o->progress_end = create_progress_end;
	o->progress_arg = NULL;
}

/* ---- `parcel import`'s report ---------------------------------------------- */

static void import_parcel_json(const struct fr_import_parcel *p, FILE *out)
{
	char b[600], v[1100], m[2200], id[80];

	fr_json_str(p->id, id, sizeof(id));
	if (p->superseded) {
		char t1[40], t2[40];
		fprintf(out,
			"{\"parcel\": %s, \"name\": %s, \"imported\": 0, "
			"\"complete\": false, \"superseded\": true, "
			"\"placed\": %s, \"made\": %s}",
			id, fr_json_str(p->name, b, sizeof(b)),
			fr_json_time(p->placed, t1, sizeof(t1)),
			fr_json_time(p->made, t2, sizeof(t2)));
		return;
	}
	if (p->already_complete) {
		fprintf(out,
			"{\"parcel\": %s, \"name\": %s, \"imported\": 0, "
			"\"complete\": true, \"already_complete\": true}",
			id, fr_json_str(p->name, b, sizeof(b)));
		return;
	}
	fprintf(out,
		"{\"parcel\": %s, \"name\": %s, \"imported\": %u, "
		"\"already_held\": %u, \"refused\": %u, \"damaged_volumes\": %u, "
		"\"complete\": %s, \"held\": %u, \"n_segments\": %u, "
		"\"missing_volumes\": %s, \"last_volume_seen\": %s, "
		"\"missing_segments\": %s, \"n_missing\": %u, "
		"\"not_in_parcel\": %u}",
		id, fr_json_str(p->name, b, sizeof(b)), p->imported, p->held,
		p->refused, p->damaged, p->complete ? "true" : "false", p->n_have,
		p->n_segments, fr_json_str(p->missing_volumes, v, sizeof(v)),
		p->last_volume_seen ? "true" : "false",
		fr_json_str(p->missing_segments, m, sizeof(m)), p->n_missing,
		p->not_in_parcel);
}

static void import_parcel_text(const struct fr_import_parcel *p, FILE *out)
{
	char en[4 * FR_NAME_MAX + 8], id[160];

	fr_esc(p->name, en, sizeof(en));
	fr_esc(p->id, id, sizeof(id));
	if (p->superseded) {
		char t1[40], t2[40];
		fprintf(out,
			"parcel %.12s: package '%s' here is a newer version "
			"(placed %s, after the parcel was made %s); the parcel "
			"is stale: nothing imported\n",
			p->id, en, fr_time_text(p->placed, t1, sizeof(t1)),
			fr_time_text(p->made, t2, sizeof(t2)));
		return;
	}
	if (p->already_complete) {
		fprintf(out,
			"parcel %.12s: package '%s' is already complete here; "
			"nothing to import\n",
			p->id, en);
		return;
	}
	fprintf(out,
		"parcel %.12s, package '%s': %u segment(s) imported, %u "
		"already held, %u refused; %u of %u segments held%s\n",
		id, en, p->imported, p->held, p->refused, p->n_have,
		p->n_segments, p->complete ? " - complete" : "");
	if (p->complete)
		return;
	const char *vols = p->missing_volumes;
	if (vols[0] || !p->last_volume_seen)
		fprintf(out, "missing volumes: %s%s%s\n", vols,
			vols[0] && !p->last_volume_seen ? ", and " : "",
			p->last_volume_seen ? ""
					    : "any after the highest seen (the "
					      "last volume has not been "
					      "imported)");
	if (p->n_missing)
		fprintf(out, "missing segments of the parcel (%u): %s\n",
			p->n_missing, p->missing_segments);
	if (p->not_in_parcel)
		fprintf(out,
			"%u other segment(s) are not in this parcel: they "
			"come over the network\n",
			p->not_in_parcel);
}

void ferry_parcel_import_print(const struct fr_import_result *r, bool json,
			       FILE *out)
{
	if (!json) {
		for (unsigned i = 0; i < r->n_parcels; i++)
			import_parcel_text(&r->parcels[i], out);
		return;
	}
	char p[FR_ESC_MAX], w[600], e[2200];
	fputs("{\"parcels\": [", out);
	for (unsigned i = 0; i < r->n_parcels; i++) {
		fputs(i ? ",\n  " : "\n  ", out);
		import_parcel_json(&r->parcels[i], out);
	}
	fprintf(out, "%s], \"refused_volumes\": [", r->n_parcels ? "\n" : "");
	for (unsigned i = 0; i < r->n_refused; i++)
		fprintf(out, "%s{\"path\": %s, \"error\": %s}", i ? ", " : "",
			fr_json_str(r->refused[i].path, p, sizeof(p)),
			fr_json_str(r->refused[i].why, w, sizeof(w)));
	fprintf(out, "], \"ok\": %s, \"error\": %s}\n",
		r->error ? "false" : "true",
		r->error ? fr_json_str(r->message, e, sizeof(e)) : "null");
}
