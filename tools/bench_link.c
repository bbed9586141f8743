/*
 * bench_link.c - how `ferry bench link` shows a measurement
 * (engine/sched/bench.c makes it): a line per interval, one per stream
 * with --streams, the total, the round trip and retransmissions and
 * whether the rate was kept; or one JSON document (fields: docs/ferry.1,
 * "JSON OUTPUT"); and a progress line on stderr while it runs.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fr_tools.h"

/* "94.3 Mbit/s", "1.87 Gbit/s", "56.1 kbit/s" */
static const char *rate(double bps, char *buf, size_t cap)
{
	if (bps >= 1e9)
		snprintf(buf, cap, "%.2f Gbit/s", bps / 1e9);
	else if (bps >= 1e6)
		snprintf(buf, cap, "%.1f Mbit/s", bps / 1e6);
	else
		snprintf(buf, cap, "%.1f kbit/s", bps / 1e3);
	return buf;
}

static void progress(void *arg, const struct fr_bench_progress *p)
{
	const struct fr_bench_opts *o = arg;
	char r[32], b[32];

	if (strcmp(p->phase, "measuring"))
		fprintf(stderr, "\r\033[Kbench link %s: %s...", o->site, p->phase);
	else
		fprintf(stderr, "\r\033[Kbench link %s: %4.1f/%.0f s  %s  %s %s",
			o->site, p->elapsed, p->seconds, rate(p->bps, r, sizeof(r)),
			fr_human_bytes(p->bytes, b, sizeof(b)),
			o->reverse ? "received" : "acknowledged");
	fflush(stderr);
}

static void print_interval(const struct fr_bench_interval *v, FILE *out)
{
	char r[32], b[32];

	fprintf(out, "[%5.1f-%5.1f s]  %12s  %10s%s\n", v->start, v->end,
		rate(v->bits_per_second, r, sizeof(r)),
		fr_human_bytes(v->bytes, b, sizeof(b)),
		v->omitted ? "  (warm-up, left out)" : "");
}

static void print_rtt(double min, double avg, FILE *out)
{
	if (avg > 0)
		fprintf(out, "rtt min %.3f ms, avg %.3f ms", min, avg);
	else
		fprintf(out, "rtt unknown");
}

static void print_table(const struct fr_bench_result *r, FILE *out)
{
	char a[32], b[32];

	fprintf(out, "bench link: %s %s (%s, %s), %u s, %u stream%s, %s\n",
		r->site, r->address, r->type, r->host, r->seconds, r->streams,
		r->streams == 1 ? "" : "s",
		r->reverse ? "this machine receiving (--reverse)"
			   : "the site receiving");
	if (r->dialled)
		fprintf(out, "line dialled first%s\n",
			r->hung_up ? ", hung up after" : ", left to its idle timeout");
	for (unsigned i = 0; i < r->n_sum; i++)
		print_interval(&r->sum[i], out);
	for (unsigned s = 0; r->streams > 1 && s < r->streams; s++) {
		const struct fr_bench_stream *st = &r->st[s];
		fprintf(out, "stream %u: %s over %.1f s (%s), ", s + 1,
			rate(st->received_bps, a, sizeof(a)), st->seconds,
			fr_human_bytes(st->bytes, b, sizeof(b)));
		print_rtt(st->rtt_min_ms, st->rtt_avg_ms, out);
		fprintf(out, ", %llu retransmits\n",
			(unsigned long long)st->retransmits);
	}
	fprintf(out, "total: %s received by %s (%s), first %u s left out\n",
		rate(r->received_bps, a, sizeof(a)),
		r->reverse ? "this machine" : r->site,
		fr_human_bytes(r->received_bytes, b, sizeof(b)), r->omit);
	print_rtt(r->rtt_min_ms, r->rtt_avg_ms, out);
	fprintf(out, "; %llu retransmits\n", (unsigned long long)r->retransmits);
	if (r->stored)
		fprintf(out, "stored as %s %s's measured rate (%s/s)\n", r->site,
			r->address,
			fr_human_bytes((uint64_t)(r->received_bps / 8), a, sizeof(a)));
	else
		fprintf(out, "not stored: %s\n", r->not_stored);
}

static void json_intervals(const struct fr_bench_interval *iv, unsigned n,
			   FILE *out)
{
	fputc('[', out);
	for (unsigned i = 0; i < n; i++)
		fprintf(out,
			"%s{\"start\":%.3f,\"end\":%.3f,\"bytes\":%llu,"
			"\"bits_per_second\":%.0f,\"omitted\":%s}",
			i ? "," : "", iv[i].start, iv[i].end,
			(unsigned long long)iv[i].bytes, iv[i].bits_per_second,
			iv[i].omitted ? "true" : "false");
	fputc(']', out);
}

static void json_rtt(double min, double avg, FILE *out)
{
	if (avg > 0)
		fprintf(out, "{\"min\":%.3f,\"avg\":%.3f}", min, avg);
	else
		fputs("{\"min\":null,\"avg\":null}", out);
}

static void json_streams(const struct fr_bench_result *r, FILE *out)
{
	fputs("\"streams\":[", out);
	for (unsigned s = 0; s < r->streams; s++) {
		const struct fr_bench_stream *st = &r->st[s];
		fprintf(out,
			"%s{\"stream\":%u,\"received_bps\":%.0f,\"bytes\":%llu,"
			"\"seconds\":%.3f,\"capped\":%s,\"rtt_ms\":",
			s ? "," : "", s + 1, st->received_bps,
			(unsigned long long)st->bytes, st->seconds,
			st->capped ? "true" : "false");
		json_rtt(st->rtt_min_ms, st->rtt_avg_ms, out);
		fprintf(out, ",\"retransmits\":%llu,\"intervals\":",
			(unsigned long long)st->retransmits);
		json_intervals(st->iv, st->n_iv, out);
		fputc('}', out);
	}
	fputs("],", out);
}

static void print_json(const struct fr_bench_result *r, FILE *out)
{
	char when[48];

	fputs("{\"site\":", out);
	fr_json_fput(r->site, out);
	fputs(",\"address\":", out);
	fr_json_fput(r->address, out);
	fprintf(out, ",\"type\":\"%s\",\"host\":", r->type);
	fr_json_fput(r->host, out);
	fprintf(out,
		",\"seconds\":%u,\"omit\":%u,\"reverse\":%s,\"frame\":%u,"
		"\"received_bps\":%.0f,\"received_bytes\":%llu,\"rtt_ms\":",
		r->seconds, r->omit, r->reverse ? "true" : "false", r->frame,
		r->received_bps, (unsigned long long)r->received_bytes);
	json_rtt(r->rtt_min_ms, r->rtt_avg_ms, out);
	fprintf(out, ",\"retransmits\":%llu,\"intervals\":",
		(unsigned long long)r->retransmits);
	json_intervals(r->sum, r->n_sum, out);
	fputc(',', out);
	json_streams(r, out);
	if (strcmp(r->type, "lan"))
		fprintf(out, "\"line\":{\"dialled\":%s,\"hung_up\":%s},",
			r->dialled ? "true" : "false",
			r->hung_up ? "true" : "false");
	fprintf(out, "\"stored\":%s,\"stored_at\":%s,\"not_stored\":",
		r->stored ? "true" : "false",
		fr_json_time(r->stored_at, when, sizeof(when)));
	if (r->stored)
		fputs("null", out);
	else
		fr_json_fput(r->not_stored, out);
	fputs("}\n", out);
}

int ferry_bench_link(const struct fr_config *c, const struct ferry_bench_args *b,
		     FILE *out)
{
	static struct fr_bench_result r; /* large: not on the stack */
	struct fr_bench_opts o = {
		.site = b->target,
		.via = b->via,
		.seconds = b->seconds,
		.streams = b->streams,
		.omit = b->omit,
		.reverse = b->reverse,
		.store = b->store,
	};
	o.progress = b->progress ? progress : NULL;
	o.progress_arg = &o;
	int rc = fr_bench_link(c, &o, &r);

	if (b->progress)
		fputs("\r\033[K", stderr);
	if (rc < 0)
		return rc;
	if (b->json)
		print_json(&r, out);
	else
		print_table(&r, out);
	return 0;
}
