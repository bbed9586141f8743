/*
 * send.c - what `ferry send` and `ferry resume` print: the progress line
 * while a transfer runs (the engine's hooks), the closing summary (a
 * line per transfer, or JSON: docs/ferry.1, "JSON OUTPUT"), the report
 * of an interrupted one, and what the walk left out.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fr_tools.h"

/* ---- what the walk left out ----------------------------------------------- */

void ferry_left_print(const struct fr_left_list *l, FILE *out)
{
	char p[FR_ESC_MAX];

	if (!l->n)
		return;
	fprintf(out, "left out %u:", l->n);
	for (uint32_t i = 0; i < l->n; i++)
		fprintf(out, "%s %s (%s)", i ? "," : "",
			fr_esc(l->v[i].path, p, sizeof(p)), l->v[i].type);
	fputc('\n', out);
}

void ferry_left_json(const struct fr_left_list *l, FILE *out)
{
	fputc('[', out);
	for (uint32_t i = 0; i < l->n; i++) {
		fputs(i ? ",{\"path\":" : "{\"path\":", out);
		fr_json_fput(l->v[i].path, out);
		fprintf(out, ",\"type\":\"%s\"}", l->v[i].type);
	}
	fputc(']', out);
}

/* ---- the summary ------------------------------------------------------------- */

/* What went wrong: the engine's words, else the last error logged, else
 * the code's meaning. */
static const char *result_message(const struct fr_send_result *r)
{
	if (r->message[0])
		return r->message;
	if (fr_log_last_error()[0])
		return fr_log_last_error();
	return fr_strerror(r->error);
}

/* One transfer's object, the same in send's, resume's and (where they
 * share a field) status's JSON. "ok" is true only for exit 0; a package
 * sent with something left out of it (exit 6) has ok false and left_out
 * says what. */
static void result_json(const struct fr_send_result *r, FILE *out)
{
	char n[1600], e[1100], id[200];

	fprintf(out,
		"{\"transfer\":%s,\"name\":%s,\"site\":\"%s\","
		"\"ok\":%s,\"error\":%s,\"bytes\":%llu,\"wire_bytes\":%llu,"
		"\"skipped_bytes\":%llu,\"read_bytes\":%llu,"
		"\"segments\":%u,\"segments_sent\":%u,"
		"\"segments_skipped\":%u,\"segments_resent\":%u,"
		"\"seconds\":%.3f,\"waited_seconds\":%.3f,\"attempts\":%d,"
		"\"level\":%d,"
		"\"level_auto\":%s,\"skip_special\":%s,\"left_out\":",
		r->transfer[0] ? fr_json_str(r->transfer, id, sizeof(id)) : "null",
		fr_json_str(r->name, n, sizeof(n)), r->site,
		r->error ? "false" : "true",
		r->error ? fr_json_str(result_message(r), e, sizeof(e)) : "null",
		(unsigned long long)r->total_bytes,
		(unsigned long long)r->sent_bytes,
		(unsigned long long)r->skipped_bytes,
		(unsigned long long)r->read_bytes, r->n_segments, r->segs_sent,
		r->segs_skipped, r->segs_resent, r->seconds, r->waited_s,
		r->attempts, r->level_last, r->level_auto ? "true" : "false",
		r->skip_special ? "true" : "false");
	ferry_left_json(&r->left_out, out);
	fprintf(out, ",\"left_out_unlisted\":%u,\"outputs\":[", r->left_unlisted);
	for (unsigned i = 0; i < r->n_outputs; i++) {
		const struct fr_output_result *o = &r->outputs[i];
		char fin[32] = "null"; /* no ACK came by it */
		if (o->finished >= 0)
			snprintf(fin, sizeof(fin), "%.3f", o->finished);
		fprintf(out,
			"%s{\"name\":%s,\"segments\":%u,\"bytes\":%llu,"
			"\"rate\":%.0f,\"finished\":%s}",
			i ? "," : "", fr_json_str(o->name, n, sizeof(n)),
			o->segments, (unsigned long long)o->bytes, o->rate,
			fin);
	}
	fputs("]}", out);
}

/* What a transfer left out, and how many more its list does not name. */
static void left_said(const struct fr_send_result *r, FILE *out)
{
	ferry_left_print(&r->left_out, out);
	if (r->left_unlisted)
		fprintf(out,
			"and %u more left out, too many to list here (the log "
			"names each)\n",
			r->left_unlisted);
}

/* The line of a transfer that finished (with what it left out). */
static void result_line(const struct fr_send_result *r, FILE *out)
{
	char a[32], b[32], rate[32], net[48], en[4 * FR_NAME_MAX + 8];
	char by_parcel[64] = "";
	uint64_t parcel = 0;

	for (unsigned i = 0; i < r->n_outputs; i++)
		if (r->outputs[i].courier)
			parcel += r->outputs[i].bytes;
	/* what the network brought, at what rate: the rest was there, or
	 * came by parcel */
	uint64_t moved = r->skipped_bytes + parcel < r->total_bytes
				 ? r->total_bytes - r->skipped_bytes - parcel
				 : 0;
	/* the time it could send: a wait for a window (or a send slot) is
	 * said apart, not spread over the rate */
	double secs = r->seconds - r->waited_s;
	double rs = secs > 0 ? (double)moved / secs : 0;
	char waited[64] = "";
	if (r->waited_s >= 1) {
		char sp[32];
		snprintf(waited, sizeof(waited),
			 " after %s waiting for a window or a send slot",
			 fr_span_str((int64_t)(r->waited_s + 0.5), sp, sizeof(sp)));
	}
	if (parcel)
		snprintf(by_parcel, sizeof(by_parcel), ", %s by parcel",
			 fr_human_bytes(parcel, a, sizeof(a)));
	if (moved != r->total_bytes) {
		char t[32];
		snprintf(net, sizeof(net), "%s of %s",
			 fr_human_bytes(moved, a, sizeof(a)),
			 fr_human_bytes(r->total_bytes, t, sizeof(t)));
	} else {
		fr_human_bytes(r->total_bytes, net, sizeof(net));
	}

	if (r->segs_skipped == r->n_segments && !r->sent_bytes &&
	    !r->segs_resent && (r->n_segments || r->was_complete)) {
		fprintf(out,
			"'%s' is at %s already: nothing sent (%u segments, "
			"%s)\n",
			fr_esc(r->name, en, sizeof(en)), r->site, r->n_segments,
			fr_human_bytes(r->total_bytes, a, sizeof(a)));
		left_said(r, out);
		return;
	}
	fprintf(out,
		"sent '%s' to %s: %s in %.1f s (%s/s)%s%s, %u segments (%u "
		"already there, %u re-sent), %s on the wire\n",
		fr_esc(r->name, en, sizeof(en)), r->site, net, secs,
		fr_human_bytes((uint64_t)rs, rate, sizeof(rate)), waited,
		by_parcel,
		r->n_segments, r->segs_skipped, r->segs_resent,
		fr_human_bytes(r->sent_bytes, b, sizeof(b)));
	left_said(r, out);
}

/* A transfer that did not finish, said after its log: how to go on
 * (nothing when going on would not help, or a signal said it). */
static void say_unfinished(const struct fr_send_result *r, const char *config)
{
	if (r->error == -EINTR || r->error == -EALREADY || !r->transfer[0] ||
	    r->error == FR_E_AUTH ||
	    r->error == FR_E_CONFIG || r->error == FR_E_CHANGED ||
	    r->error == FR_E_NOT_OWNER)
		return;
	/* ("failed", as status says; what came is kept) */
	fprintf(stderr,
		"ferry: transfer %s failed and is resumable: what arrived is "
		"kept; run 'ferry resume %s --config %s' to continue\n",
		r->transfer, r->transfer, config);
}

/* One transfer's end, as text: its line (unless -q), or how to resume
 * it; what was left out is said even with -q (it makes the exit code). */
static void result_said(const struct fr_send_result *r,
			const struct ferry_report *rp)
{
	bool done = r->error == 0 || r->error == FR_E_LEFT_OUT;

	if (done && rp->verbosity >= FR_LOG_INFO) {
		result_line(r, stdout);
	} else if (done && r->left_out.n) {
		if (rp->resume)
			fprintf(stderr, "ferry: %s: ", r->transfer);
		else
			fputs("ferry: ", stderr);
		left_said(r, stderr);
	} else if (!done) {
		say_unfinished(r, rp->config);
	}
}

void ferry_send_print(const struct fr_send_result *r,
		      const struct ferry_report *rp)
{
	if (rp->json) {
		result_json(r, stdout);
		fputc('\n', stdout);
	} else {
		result_said(r, rp);
	}
	fflush(stdout);
}

void ferry_resume_print(const struct fr_resume_result *res,
			const struct ferry_report *rp)
{
	bool ok = true;

	if (rp->json) {
		for (unsigned i = 0; i < res->n; i++)
			ok &= res->v[i].error == 0;
		printf("{\"ok\":%s,\"transfers\":[", ok ? "true" : "false");
		for (unsigned i = 0; i < res->n; i++) {
			if (i)
				putchar(',');
			result_json(&res->v[i], stdout);
		}
		printf("]}\n");
	} else {
		for (unsigned i = 0; i < res->n; i++)
			result_said(&res->v[i], rp);
	}
	fflush(stdout);
}

/* ---- while it runs ---------------------------------------------------------- */

static void progress(void *arg, const char *name, const char *site,
		     const struct fr_progress *p)
{
	char who[600], pct[16], bytes[80], a[32], b[32], rate[48], rs[32],
		eta[48], e[32], seg[48], level[16];

	(void)arg;
	snprintf(who, sizeof(who), "%s -> %s", name, site);
	snprintf(pct, sizeof(pct), "%5.1f%%",
		 p->total_bytes ? 100.0 * (double)p->done_bytes /
					  (double)p->total_bytes
				: 100.0);
	snprintf(bytes, sizeof(bytes), "%s / %s",
		 fr_human_bytes(p->done_bytes, a, sizeof(a)),
		 fr_human_bytes(p->total_bytes, b, sizeof(b)));
	snprintf(rate, sizeof(rate), "%s/s",
		 fr_human_bytes((uint64_t)p->rate, rs, sizeof(rs)));
	snprintf(eta, sizeof(eta), "ETA %s", fr_clock_str(p->eta, e, sizeof(e)));
	snprintf(seg, sizeof(seg), "seg %u/%u", p->segs_done, p->n_segments);
	if (p->level > 0)
		snprintf(level, sizeof(level), "zstd %d", p->level);
	else
		snprintf(level, sizeof(level), "raw");
	/* on a narrow terminal the less telling parts go first */
	const struct ferry_tty_part parts[] = {
		{who, 4}, {pct, 0},  {bytes, 1}, {rate, 3},
		{eta, 2}, {seg, 5},  {level, 6},
	};
	ferry_tty_line(parts, sizeof(parts) / sizeof(parts[0]));
}

static void progress_end(void *arg)
{
	(void)arg;
	ferry_tty_clear();
}

/* The report of a transfer a signal stopped: in the JSON a command
 * prints (the watcher exits right after). */
static void interrupted(void *arg, const struct fr_send_result *r)
{
	const struct ferry_report *rp = arg;

	if (!rp->json)
		return;
	if (rp->resume)
		fputs("{\"ok\":false,\"transfers\":[", stdout);
	result_json(r, stdout);
	fputs(rp->resume ? "]}\n" : "\n", stdout);
	fflush(stdout);
}

void ferry_send_hooks(struct ferry_report *rp, bool progress_line,
		      struct fr_send_hooks *h)
{
	memset(h, 0, sizeof(*h));
	if (progress_line) {
		h->progress = progress;
		h->progress_end = progress_end;
	}
	h->interrupted = interrupted;
	h->arg = rp;
}
