/*
 * plan.c - how `ferry plan` shows a plan (engine/sched/plan.c makes it):
 * a table with a row per output, the ETA line and the courier's line,
 * or one JSON object with the same facts (fields: docs/ferry.1, "JSON
 * OUTPUT"). Times in a plan are seconds from when it was made.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fr_tools.h"

/* A planned time: "0.8s", "6.6s", "12m05s", "3h05m", "2d04h". */
static const char *span(double s, char *buf, size_t cap)
{
	if (s < 60)
		snprintf(buf, cap, "%.1fs", s < 0 ? 0 : s);
	else if (s < 3600)
		snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		fr_span_str((int64_t)s, buf, cap);
	return buf;
}

/* "3.8 MiB/s (configured)", "122.1 KiB/s (measured 3h05m ago)" */
static const char *rate_text(const struct fr_plan *p,
			     const struct fr_plan_output *o, char *buf,
			     size_t cap)
{
	char r[32], sp[32], ago[48] = "";

	if (o->measured_at >= 0)
		snprintf(ago, sizeof(ago), " %s ago",
			 fr_span_str(p->now - o->measured_at, sp, sizeof(sp)));
	snprintf(buf, cap, "%s/s (%s%s%s)",
		 fr_human_bytes((uint64_t)o->rate, r, sizeof(r)), o->rate_src,
		 ago, o->limited ? ", rate-limited" : "");
	return buf;
}

static void print_head(const struct fr_plan *p, FILE *out)
{
	char en[4 * FR_NAME_MAX + 8], a[32], b[32];

	fprintf(out, "plan: '%s' to %s (%s priority): %s in %u segments\n",
		fr_esc(p->name, en, sizeof(en)), p->site,
		fr_priority_name(p->priority),
		fr_human_bytes(p->total_bytes, a, sizeof(a)), p->n_segments);
	if (p->asked)
		fprintf(out, "%s holds %u segments (%s), asked through %s",
			p->site, p->held_segments,
			fr_human_bytes(p->held_bytes, a, sizeof(a)),
			p->asked_via);
	else
		fprintf(out,
			"%s was not asked what it holds (%s): counted as "
			"holding nothing",
			p->site, p->not_asked);
	if (p->held_unconfirmed)
		fprintf(out, " (%u of them to read and compare)",
			p->held_unconfirmed);
	fprintf(out, "; to send: %u segments, %s\n", p->send_segments,
		fr_human_bytes(p->send_bytes, b, sizeof(b)));
	if (p->left_out)
		fprintf(out, "left out: %u entries that cannot be carried\n",
			p->left_out);
}

/* What bringing a line up costs: none (up), or its dial's time. */
static void line_note(const struct fr_plan_output *o, char *buf, size_t cap)
{
	char sp[32];

	if (!strcmp(o->setup_src, "up"))
		snprintf(buf, cap, " (line up)");
	else
		snprintf(buf, cap, " (brought up in %s, %s)",
			 span(o->setup, sp, sizeof(sp)),
			 strcmp(o->setup_src, "measured") ? "assumed"
							  : "as measured");
}

static void print_outputs(const struct fr_plan *p, FILE *out)
{
	char rate[96], bytes[32], fin[32], op[32], opens[96];

	fprintf(out, "\n%-16s %-7s %8s %11s  %-40s %s\n", "output", "type",
		"segments", "bytes", "rate (source)", "finish");
	for (unsigned i = 0; i < p->n_outputs; i++) {
		const struct fr_plan_output *o = &p->outputs[i];
		char en[4 * 64 + 8];
		opens[0] = '\0';
		if (o->opens > 0)
			snprintf(opens, sizeof(opens), " (opens in %s)",
				 span(o->opens, op, sizeof(op)));
		snprintf(fin, sizeof(fin), "-");
		if (o->segments)
			span(o->finish, fin, sizeof(fin));
		if (o->unreachable[0] && p->n_unreachable < p->n_outputs)
			snprintf(opens, sizeof(opens), " (not answering)");
		else if (strcmp(o->type, "lan"))
			line_note(o, opens + strlen(opens),
				  sizeof(opens) - strlen(opens));
		fprintf(out, "%-16s %-7s %8u %11s  %-40s %s%s\n",
			fr_esc(o->name, en, sizeof(en)), o->type, o->segments,
			fr_human_bytes(o->bytes, bytes, sizeof(bytes)),
			rate_text(p, o, rate, sizeof(rate)), fin, opens);
	}
	if (!p->n_unreachable)
		return;
	fputc('\n', out);
	for (unsigned i = 0; i < p->n_outputs; i++) {
		const struct fr_plan_output *o = &p->outputs[i];
		char en[4 * 64 + 8];
		if (o->unreachable[0])
			fprintf(out, "%s does not answer now: %s\n",
				fr_esc(o->name, en, sizeof(en)),
				o->unreachable);
	}
	if (p->n_unreachable < p->n_outputs)
		fprintf(out, "planned without %s: a send uses %s if %s "
			"answers by then\n",
			p->n_unreachable == 1 ? "it" : "them",
			p->n_unreachable == 1 ? "it" : "them",
			p->n_unreachable == 1 ? "it" : "they");
	else
		fprintf(out, "no address of %s answers now: this plan holds "
			"only once they do\n", p->site);
}

static void print_eta(const struct fr_plan *p, FILE *out)
{
	char s[32], when[64];
	time_t t = (time_t)(p->now + (int64_t)(p->eta + 0.5));
	struct tm tm;

	if (!p->send_segments) {
		fprintf(out, "\nETA: now: %s holds the whole package\n",
			p->site);
		return;
	}
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %Y-%m-%d %H:%M:%S", &tm);
	fprintf(out, "\nETA: %s (%s)%s\n", span(p->eta, s, sizeof(s)), when,
		p->n_unreachable && p->n_unreachable == p->n_outputs
			? ", if the site can be reached"
			: "");
	if (p->better_seg) {
		char a[32], b[32], sz[32];
		fprintf(out,
			"with segment-size = %uM ([sender], before the "
			"package's first send): ETA %s, %s sooner (the slower "
			"links' last segments end with the faster's; %s "
			"now)\n",
			p->better_seg >> 20, span(p->better_eta, a, sizeof(a)),
			span(p->eta - p->better_eta, b, sizeof(b)),
			fr_human_bytes(p->seg_size, sz, sizeof(sz)));
	}
}

static void print_courier(const struct fr_plan *p, FILE *out)
{
	const struct fr_plan_courier *c = &p->courier;
	char en[4 * 64 + 8], a[32], b[32], t[32], u[32];

	if (!p->has_courier)
		return;
	fprintf(out, "courier %s: ", fr_esc(c->name, en, sizeof(en)));
	if (!c->modelled)
		fprintf(out, "not weighed: %s\n", c->why);
	else if (!c->split)
		fprintf(out, "no split: %s (the parcel alone: %s)\n", c->why,
			span(c->alone, t, sizeof(t)));
	else if (!c->first && !c->net_bytes)
		fprintf(out,
			"a parcel of the whole package (segments 0-%u, %s) "
			"beats the network by %s; ETA %s\n",
			p->n_segments - 1, fr_human_bytes(c->bytes, b, sizeof(b)),
			span(c->gain, t, sizeof(t)), span(c->eta, u, sizeof(u)));
	else if (!c->first)
		fprintf(out,
			"a parcel of the whole package (segments 0-%u) beats "
			"the network by %s: the network carries %s meanwhile, "
			"the parcel %s; ETA %s\n",
			p->n_segments - 1, span(c->gain, t, sizeof(t)),
			fr_human_bytes(c->net_bytes, a, sizeof(a)),
			fr_human_bytes(c->bytes, b, sizeof(b)),
			span(c->eta, u, sizeof(u)));
	else
		fprintf(
		    out,
		    "a split beats the network by %s: the network carries "
		    "segments 0-%u (%s), a parcel %u-%u (%s); ETA %s\n",
		    span(c->gain, t, sizeof(t)), c->first - 1,
		    fr_human_bytes(c->net_bytes, a, sizeof(a)), c->first,
		    p->n_segments - 1, fr_human_bytes(c->bytes, b, sizeof(b)),
		    span(c->eta, u, sizeof(u)));
}

static void json_output(const struct fr_plan *p, const struct fr_plan_output *o,
			FILE *out)
{
	char n[300], when[64], why[600];

	fprintf(out,
		"{\"name\":%s,\"type\":\"%s\",\"unreachable\":%s,"
		"\"segments\":%u,\"bytes\":%llu,"
		"\"rate\":%.0f,\"rate_source\":\"%s\",\"measured_at\":%s,"
		"\"rate_limited\":%s,\"opens\":%.3f,\"setup\":%.3f,"
		"\"setup_source\":\"%s\",\"finish\":",
		fr_json_str(o->name, n, sizeof(n)), o->type,
		o->unreachable[0] ? fr_json_str(o->unreachable, why, sizeof(why))
				  : "null",
		o->segments, (unsigned long long)o->bytes, o->rate, o->rate_src,
		fr_json_time(o->measured_at, when, sizeof(when)),
		o->limited ? "true" : "false", o->opens, o->setup, o->setup_src);
	if (o->segments)
		fprintf(out, "%.3f}", o->finish);
	else
		fputs("null}", out);
}

static void json_courier(const struct fr_plan *p, FILE *out)
{
	const struct fr_plan_courier *c = &p->courier;
	char n[300], m[4200], w[400];

	if (!p->has_courier) {
		fputs("null", out);
		return;
	}
	fprintf(out, "{\"name\":%s,\"media\":%s,\"transit\":",
		fr_json_str(c->name, n, sizeof(n)),
		c->media[0] ? fr_json_str(c->media, m, sizeof(m)) : "null");
	if (c->transit_s >= 0)
		fprintf(out, "%.0f", c->transit_s);
	else
		fputs("null", out);
	fprintf(out,
		",\"write_rate\":%.0f,\"import_rate\":%.0f,"
		"\"modelled\":%s,\"alone\":",
		c->write_rate, c->import_rate, c->modelled ? "true" : "false");
	if (c->modelled)
		fprintf(out, "%.3f", c->alone);
	else
		fputs("null", out);
	fprintf(out, ",\"split\":%s", c->split ? "true" : "false");
	if (c->split)
		fprintf(out,
			",\"first_segment\":%u,\"network_segments\":%u,"
			"\"network_bytes\":%llu,\"courier_segments\":%u,"
			"\"courier_bytes\":%llu,\"eta\":%.3f,\"gain\":%.3f",
			c->first, c->net_segments,
			(unsigned long long)c->net_bytes, c->segments,
			(unsigned long long)c->bytes, c->eta, c->gain);
	fprintf(out, ",\"why\":%s}",
		c->split ? "null" : fr_json_str(c->why, w, sizeof(w)));
}

static void print_json(const struct fr_plan *p, FILE *out)
{
	char n[1100], when[64], via[300], why[1100];

	fprintf(out,
		"{\"ok\":true,\"name\":%s,\"site\":\"%s\",\"priority\":\"%s\","
		"\"planned_at\":%s,\"bytes\":%llu,\"segments\":%u,"
		"\"left_out\":%u,\"asked\":%s,\"asked_via\":%s,"
		"\"not_asked\":%s,\"held_segments\":%u,\"held_bytes\":%llu,"
		"\"held_unconfirmed\":%u,\"send_segments\":%u,"
		"\"send_bytes\":%llu,\"outputs\":[",
		fr_json_str(p->name, n, sizeof(n)), p->site,
		fr_priority_name(p->priority),
		fr_json_time(p->now, when, sizeof(when)),
		(unsigned long long)p->total_bytes, p->n_segments, p->left_out,
		p->asked ? "true" : "false",
		p->asked ? fr_json_str(p->asked_via, via, sizeof(via)) : "null",
		p->asked ? "null" : fr_json_str(p->not_asked, why, sizeof(why)),
		p->held_segments, (unsigned long long)p->held_bytes,
		p->held_unconfirmed, p->send_segments,
		(unsigned long long)p->send_bytes);
	for (unsigned i = 0; i < p->n_outputs; i++) {
		if (i)
			fputc(',', out);
		json_output(p, &p->outputs[i], out);
	}
	fprintf(
	    out, "],\"eta\":%.3f,\"eta_at\":%s,\"segment_size\":%u,",
	    p->eta,
	    fr_json_time(p->now + (int64_t)(p->eta + 0.5), when, sizeof(when)),
	    p->seg_size);
	if (p->better_seg)
		fprintf(out,
			"\"smaller_segments\":{\"segment_size\":%u,"
			"\"eta\":%.3f},",
			p->better_seg, p->better_eta);
	else
		fputs("\"smaller_segments\":null,", out);
	fputs("\"courier\":", out);
	json_courier(p, out);
	fputs("}\n", out);
}

void ferry_plan_print(const struct fr_plan *p, bool json, FILE *out)
{
	if (json) {
		print_json(p, out);
		return;
	}
	print_head(p, out);
	print_outputs(p, out);
	print_eta(p, out);
	print_courier(p, out);
}
