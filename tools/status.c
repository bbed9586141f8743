/*
 * status.c - how `ferry status` shows what the engine read from the
 * store (struct fr_status, engine/sched/status.c): outgoing transfers,
 * each followed by a line per output, then incoming packages; or the
 * same as one JSON array (docs/ferry.1, "JSON OUTPUT").
 */
#include <stdio.h>
#include <string.h>

#include "fr_tools.h"

static void eta_str(double s, char *buf, size_t cap)
{
	if (s < 0) {
		snprintf(buf, cap, "-");
		return;
	}
	long t = (long)(s + 0.5);
	snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* A JSON number, or null when v < 0. */
static const char *json_num(double v, char *buf, size_t cap)
{
	if (v < 0)
		snprintf(buf, cap, "null");
	else
		snprintf(buf, cap, "%.0f", v);
	return buf;
}

/* ---- outgoing ------------------------------------------------------------ */

/* A network output of t is open (not closed by its window, not failed). */
static bool network_open(const struct fr_status_transfer *t)
{
	for (unsigned i = 0; i < t->n_outputs; i++) {
		const struct fr_status_output *n = &t->outputs[i];
		if (strcmp(n->type, "courier") && strcmp(n->state, "closed") &&
		    strcmp(n->state, "failed") && strcmp(n->state, "done"))
			return true;
	}
	return false;
}

/* Why an output carries nothing, in words ("" when it carries). */
static void why_str(const struct fr_status_transfer *t,
		    const struct fr_status_output *o, char *buf, size_t cap)
{
	const char *w = o->why;

	if (!strcmp(w, "idle"))
		snprintf(buf, cap, "idle: nothing to carry now");
	else if (!strcmp(w, "closed"))
		snprintf(buf, cap, "idle: its window is closed to %s priority",
			 fr_priority_name(t->priority));
	else if (!strcmp(w, "redialling"))
		snprintf(buf, cap, "idle: redialling%s%s",
			 o->error[0] ? " after: " : "", o->error);
	else if (!strcmp(w, "stalled"))
		snprintf(buf, cap,
			 "stalled: its receiver has taken nothing for over "
			 "10 s (the other links carry on)");
	else if (!strcmp(w, "courier"))
		snprintf(buf, cap, "idle: waiting for the courier");
	else if (!strcmp(w, "waiting"))
		snprintf(buf, cap,
			 "idle: its line carries another transfer; waiting "
			 "for it");
	else if (!strcmp(w, "late"))
		snprintf(buf, cap,
			 "late: its parcel was expected by now (%s)",
			 network_open(t) ? "the network carries its segments "
					   "meanwhile"
					 : "no network link is open meanwhile");
	else if (!strcmp(w, "failed"))
		snprintf(buf, cap, "failed%s%s", o->error[0] ? ": " : "",
			 o->error);
	else if (!strcmp(w, "interrupted"))
		snprintf(buf, cap,
			 "idle: its sender is gone (ferry resume "
			 "continues)");
	else if (w[0])
		snprintf(buf, cap, "idle: %s", w);
	else
		buf[0] = '\0';
}

/* A name for a column of width w: escaped, padded by the characters
 * shown (a UTF-8 character is one column, not its bytes). */
static const char *col(const char *name, int w, char *buf, size_t cap)
{
	fr_esc(name, buf, cap);
	size_t len = strlen(buf);
	int shown = 0;
	for (size_t i = 0; i < len; i++)
		shown += ((unsigned char)buf[i] & 0xC0) != 0x80;
	while (shown++ < w && len + 1 < cap)
		buf[len++] = ' ';
	buf[len] = '\0';
	return buf;
}

static void output_text(const struct fr_status_transfer *t,
			const struct fr_status_output *o, FILE *out)
{
	char who[100], segs[32], bytes[32], r[32], rate[40], eta[32], why[1000];

	if (o->type[0] && strcmp(o->type, o->name))
		snprintf(who, sizeof(who), "%s (%s)", o->name, o->type);
	else
		snprintf(who, sizeof(who), "%s", o->name);
	snprintf(segs, sizeof(segs), "%u segs", o->segments);
	fr_human_bytes(o->bytes, bytes, sizeof(bytes));
	if (o->rate > 0)
		snprintf(rate, sizeof(rate), "%s/s",
			 fr_human_bytes((uint64_t)o->rate, r, sizeof(r)));
	else
		snprintf(rate, sizeof(rate), "-");
	eta_str(o->eta, eta, sizeof(eta));
	why_str(t, o, why, sizeof(why));
	fprintf(out, "    %-20s %-11s %9s %10s %12s %10s%s%s\n", who, o->state,
		segs, bytes, rate, eta, why[0] ? "  " : "", why);
}

static void transfer_text(const struct fr_status_transfer *t, FILE *out)
{
	char a[32], rate[32], segs[32], eta[32], level[32];
	double pct = t->bytes ? 100.0 * (double)t->bytes_done / (double)t->bytes
			      : (!strcmp(t->state, "done") ? 100 : 0);

	if (t->level_auto)
		snprintf(level, sizeof(level), "auto:%d", t->level);
	else
		snprintf(level, sizeof(level), "%d", t->level);
	snprintf(a, sizeof(a), "%.1f%%", pct);
	snprintf(segs, sizeof(segs), "%u/%u", t->segments_done, t->segments);
	fr_human_bytes((uint64_t)t->rate, rate, sizeof(rate));
	eta_str(t->eta, eta, sizeof(eta));
	char en[FR_ESC_MAX];
	fprintf(out, "  %-20s %s %-5s %-11s %9s %11s %9s %10s %-9s %s\n",
		t->id, col(t->name, 16, en, sizeof(en)), t->site, t->state, a,
		segs, rate, eta, level, t->output);
	for (unsigned i = 0; i < t->n_outputs; i++)
		output_text(t, &t->outputs[i], out);
	if (t->error[0] && !strcmp(t->state, "waiting") &&
	    !strncmp(t->error, "schedule:", 9))
		fprintf(out, "    waiting for its %s\n", t->error);
	else if (t->error[0] && !strcmp(t->state, "waiting") &&
		 !strncmp(t->error, "waiting for ", 12))
		fprintf(out, "    %s\n", t->error); /* why, not an error */
	else if (t->error[0] && strcmp(t->state, "done"))
		fprintf(out, "    last error: %s\n", t->error);
}

static void output_json(const struct fr_status_output *o, FILE *out)
{
	char n[200], ty[64], st[64], why[64], src[64], e[1700], rate[32],
	    est[32], eta[32];

	fprintf(out,
		"{\"name\":%s,\"type\":%s,\"state\":%s,\"why\":%s,"
		"\"segments\":%u,\"bytes\":%llu,\"carrying\":%u,\"rate\":%s,"
		"\"estimate\":%s,\"rate_src\":%s,\"eta\":%s,\"error\":%s}",
		fr_json_str(o->name, n, sizeof(n)),
		o->type[0] ? fr_json_str(o->type, ty, sizeof(ty)) : "null",
		fr_json_str(o->state, st, sizeof(st)),
		o->why[0] ? fr_json_str(o->why, why, sizeof(why)) : "null",
		o->segments, (unsigned long long)o->bytes, o->carrying,
		json_num(o->rate, rate, sizeof(rate)),
		o->rate_src[0] ? json_num(o->estimate, est, sizeof(est))
			       : "null",
		o->rate_src[0] ? fr_json_str(o->rate_src, src, sizeof(src))
			       : "null",
		json_num(o->eta, eta, sizeof(eta)),
		o->error[0] ? fr_json_str(o->error, e, sizeof(e)) : "null");
}

static void transfer_json(const struct fr_status_transfer *t, FILE *out)
{
	char n[600], e[1700], o[200], eta[32];

	/* level: a number, as in send's; eta: null unknown */
	fprintf(out,
		"{\"direction\":\"out\",\"transfer\":\"%s\","
		"\"name\":%s,\"site\":\"%s\",\"state\":\"%s\","
		"\"bytes\":%llu,\"bytes_done\":%llu,"
		"\"wire_bytes\":%llu,\"segments\":%u,"
		"\"segments_done\":%u,\"rate\":%.0f,"
		"\"eta\":%s,\"level\":%d,\"level_auto\":%s,"
		"\"output\":%s,\"error\":%s,\"n_left_out\":%u,\"outputs\":[",
		t->id, fr_json_str(t->name, n, sizeof(n)), t->site, t->state,
		(unsigned long long)t->bytes, (unsigned long long)t->bytes_done,
		(unsigned long long)t->wire_bytes, t->segments,
		t->segments_done, t->rate, json_num(t->eta, eta, sizeof(eta)),
		t->level, t->level_auto ? "true" : "false",
		fr_json_str(t->output, o, sizeof(o)),
		t->error[0] ? fr_json_str(t->error, e, sizeof(e)) : "null",
		t->n_left_out);
	for (unsigned i = 0; i < t->n_outputs; i++) {
		fputs(i ? "," : "", out);
		output_json(&t->outputs[i], out);
	}
	fputs("]}", out);
}

/* ---- incoming ------------------------------------------------------------ */

static void package_text(const struct fr_status_package *k, int64_t now,
			 FILE *out)
{
	char segs[32], sz[32], ct[40], lt[40];
	bool complete = !strcmp(k->state, "complete");

	snprintf(segs, sizeof(segs), "%u/%u", k->segments_done, k->segments);
	char en[FR_ESC_MAX];
	fprintf(out, "  %s %-5s %-9s %11s %10s", col(k->name, 24, en, sizeof(en)),
		k->from, k->state, segs, fr_human_bytes(k->bytes, sz, sizeof(sz)));
	if (complete) {
		fputc('\n', out);
		return;
	}
	/* age since created; last activity, ago */
	fprintf(out, "  age %s, last activity %s ago\n",
		fr_span_str(k->created >= 0 ? now - k->created : -1, ct,
			    sizeof(ct)),
		fr_span_str(k->last_activity >= 0 ? now - k->last_activity : -1,
			    lt, sizeof(lt)));
}

static void package_json(const struct fr_status_package *k, int64_t now,
			 FILE *out)
{
	char n[600], f[200], ct[40], lt[40];

	fprintf(out, "{\"direction\":\"in\",\"name\":%s,",
		fr_json_str(k->name, n, sizeof(n)));
	if (!strcmp(k->state, "complete")) {
		fprintf(out,
			"\"state\":\"complete\",\"bytes\":%llu,"
			"\"segments\":%u,\"segments_done\":%u}",
			(unsigned long long)k->bytes, k->segments,
			k->segments_done);
		return;
	}
	fprintf(
	    out,
	    "\"from\":%s,\"state\":\"%s\",\"bytes\":%llu,\"segments\":%u,"
	    "\"segments_done\":%u,\"created\":%s,\"last_activity\":%s,"
	    "\"age_s\":%lld,\"idle_s\":%lld}",
	    fr_json_str(k->from, f, sizeof(f)), k->state,
	    (unsigned long long)k->bytes, k->segments, k->segments_done,
	    fr_json_time(k->created, ct, sizeof(ct)),
	    fr_json_time(k->last_activity, lt, sizeof(lt)),
	    (long long)(k->created >= 0 ? now - k->created : -1),
	    (long long)(k->last_activity >= 0 ? now - k->last_activity : -1));
}

static void status_json(const struct fr_status *s, FILE *out)
{
	fputc('[', out);
	for (unsigned i = 0; i < s->n_out; i++) {
		fputs(i ? "," : "", out);
		transfer_json(&s->out[i], out);
	}
	for (unsigned i = 0; i < s->n_in; i++) {
		fputs(i || s->n_out ? "," : "", out);
		package_json(&s->in[i], s->now, out);
	}
	fputs("]\n", out);
}

void fr_status_print(const struct fr_status *s, bool json, FILE *out)
{
	if (json) {
		status_json(s, out);
		return;
	}
	if (s->n_out)
		fprintf(out,
			"outgoing:\n  %-20s %-16s %-5s %-11s %9s %11s %9s "
			"%10s %-9s %s\n",
			"TRANSFER", "NAME", "TO", "STATE", "DONE", "SEGMENTS",
			"RATE/s", "ETA", "LEVEL", "OUTPUT");
	for (unsigned i = 0; i < s->n_out; i++)
		transfer_text(&s->out[i], out);
	if (s->n_in)
		fprintf(out, "incoming:\n  %-24s %-5s %-9s %11s %10s\n", "NAME",
			"FROM", "STATE", "SEGMENTS", "SIZE");
	for (unsigned i = 0; i < s->n_in; i++)
		package_text(&s->in[i], s->now, out);
	if (!s->n_out && !s->n_in)
		fprintf(out, "no transfers\n");
}
