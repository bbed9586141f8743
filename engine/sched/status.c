/*
 * status.c - `ferry status`: a read-only view of the store (`ferry
 * verify` is verify.c). Status reads what running senders and receivers leave on disk
 * (outgoing transfers' progress, incoming partial packages' journals,
 * complete packages' manifests); it never takes a lock and never writes.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fr_internal.h"

static bool pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* segments journaled in a partial package, without taking its lock */
static uint32_t journal_count(const char *dir, const struct fr_manifest *m)
{
	char path[1400];
	uint8_t *buf;
	size_t len;
	uint32_t n = 0;

	if (fr_path_fmt(path, sizeof(path), "%s/journal", dir) ||
	    fr_read_file(path, (size_t)FR_JOURNAL_HDR +
				       (size_t)m->n_segments * FR_JREC_LEN * 4,
			 &buf, &len) < 0)
		return 0;
	uint8_t *seen = calloc(m->n_segments + 1, 1);
	for (size_t off = FR_JOURNAL_HDR; seen && off + FR_JREC_LEN <= len;
	     off += FR_JREC_LEN) {
		uint32_t idx;
		uint8_t h[FR_HASH_LEN];
		if (fr_jrec_unpack(buf + off, &idx, h) < 0)
			break;
		/* an open manifest (the sender had not hashed it when it
		 * offered): the frame's own hash was journaled */
		if (idx < m->n_segments && !seen[idx] &&
		    (fr_hash_unknown(m->segments[idx].hash) ||
		     !memcmp(h, m->segments[idx].hash, FR_HASH_LEN))) {
			seen[idx] = 1;
			n++;
		}
	}
	free(seen);
	free(buf);
	return n;
}

static void eta_str(double s, char *buf, size_t cap)
{
	if (s < 0) {
		snprintf(buf, cap, "-");
		return;
	}
	long t = (long)(s + 0.5);
	snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void outgoing(const struct fr_config *c, const char *which, bool json,
		     FILE *out, bool *first)
{
	char dir[1200];
	DIR *d;
	struct dirent *de;

	fr_path_fmt(dir, sizeof(dir), "%s/outgoing", c->store);
	if (!(d = opendir(dir)))
		return;
	bool header = false;
	while ((de = readdir(d))) {
		char sub[1300];
		struct fr_transfer t;
		struct fr_progress p;
		if (de->d_name[0] == '.' ||
		    fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, de->d_name) ||
		    fr_transfer_load(sub, &t) < 0)
			continue;
		if (which && strcmp(which, t.id) && strcmp(which, t.name))
			continue;
		fr_progress_load(sub, &p);
		const char *state = p.state[0] ? p.state : t.state;
		/* a sender killed mid-way leaves "sending" behind */
		if ((!strcmp(state, "sending") || !strcmp(state, "waiting")) &&
		    !pid_alive(p.pid))
			state = "interrupted";
		/* sent, but something of the source was left out (exit 6) */
		if (!strcmp(state, "done") && t.left_out && !t.skip_special)
			state = "incomplete";
		char level[32];
		if (t.level < 0)
			snprintf(level, sizeof(level), "auto:%d", p.level);
		else
			snprintf(level, sizeof(level), "%d", t.level);
		if (json) {
			char n[600], e[600], o[200], eta[32];
			/* level: a number, as in send's; eta: null unknown */
			if (!strcmp(state, "sending") && p.eta >= 0)
				snprintf(eta, sizeof(eta), "%.0f", p.eta);
			else
				snprintf(eta, sizeof(eta), "null");
			fprintf(out,
				"%s{\"direction\":\"out\",\"transfer\":\"%s\","
				"\"name\":%s,\"site\":\"%s\",\"state\":\"%s\","
				"\"bytes\":%llu,\"bytes_done\":%llu,"
				"\"wire_bytes\":%llu,\"segments\":%u,"
				"\"segments_done\":%u,\"rate\":%.0f,"
				"\"eta\":%s,\"level\":%d,\"level_auto\":%s,"
				"\"output\":%s,\"error\":%s,\"n_left_out\":%u}",
				*first ? "" : ",", t.id,
				fr_json_str(t.name, n, sizeof(n)), t.site, state,
				(unsigned long long)p.total_bytes,
				(unsigned long long)p.done_bytes,
				(unsigned long long)p.wire_bytes, p.n_segments,
				p.segs_done, p.rate, eta,
				t.level < 0 ? p.level : t.level,
				t.level < 0 ? "true" : "false",
				fr_json_str(p.output, o, sizeof(o)),
				p.error[0] ? fr_json_str(p.error, e, sizeof(e))
					   : "null",
				t.left_out);
			*first = false;
			continue;
		}
		*first = false;
		if (!header) {
			fprintf(out, "outgoing:\n  %-20s %-16s %-5s %-11s %9s "
				     "%11s %9s %10s %-9s %s\n",
				"TRANSFER", "NAME", "TO", "STATE", "DONE", "SEGMENTS",
				"RATE/s", "ETA", "LEVEL", "OUTPUT");
			header = true;
		}
		char a[32], rate[32], segs[32], eta[32];
		double pct = p.total_bytes ? 100.0 * (double)p.done_bytes /
						     (double)p.total_bytes
					   : (!strcmp(state, "done") ? 100 : 0);
		snprintf(a, sizeof(a), "%.1f%%", pct);
		snprintf(segs, sizeof(segs), "%u/%u", p.segs_done, p.n_segments);
		fr_human_bytes((uint64_t)p.rate, rate, sizeof(rate));
		eta_str(strcmp(state, "sending") ? -1 : p.eta, eta, sizeof(eta));
		fprintf(out, "  %-20s %-16s %-5s %-11s %9s %11s %9s %10s %-9s %s\n",
			t.id, t.name, t.site, state, a, segs, rate, eta, level,
			p.output);
		if (p.error[0] && !strcmp(state, "waiting") &&
		    !strncmp(p.error, "schedule:", 9))
			fprintf(out, "    waiting for its %s\n", p.error);
		else if (p.error[0] && strcmp(state, "done"))
			fprintf(out, "    last error: %s\n", p.error);
	}
	closedir(d);
}

static void incoming(const struct fr_config *c, const char *which, bool json,
		     FILE *out, bool *first)
{
	char dir[1200];
	DIR *d;
	struct dirent *de;
	bool header = false;

	fr_path_fmt(dir, sizeof(dir), "%s/partial", c->store);
	if ((d = opendir(dir))) {
		while ((de = readdir(d))) {
			char sub[1300], mp[1400], from[64] = "?";
			struct fr_manifest m = {0};
			if (de->d_name[0] == '.' ||
			    fr_path_fmt(sub, sizeof(sub), "%s/%s", dir,
					de->d_name) ||
			    fr_path_fmt(mp, sizeof(mp), "%s/manifest", sub) ||
			    fr_manifest_load(mp, &m) < 0)
				continue;
			if (which && strcmp(which, m.name)) {
				fr_manifest_fini(&m);
				continue;
			}
			uint8_t *fb;
			size_t fl;
			fr_path_fmt(mp, sizeof(mp), "%s/from", sub);
			if (fr_read_file(mp, 63, &fb, &fl) == 0) {
				snprintf(from, sizeof(from), "%s", (char *)fb);
				free(fb);
			}
			uint32_t have = journal_count(sub, &m);
			int64_t made = -1, last = -1, now = (int64_t)time(NULL);
			char ct[40], lt[40];
			fr_partial_times(sub, &made, &last);
			/* a complete package that verify --repair marked,
			 * waiting for its damaged segments */
			fr_path_fmt(mp, sizeof(mp), "%s/repair", sub);
			const char *state =
				access(mp, F_OK) == 0 ? "repairing" : "partial";
			if (json) {
				char n[600];
				fprintf(out,
					"%s{\"direction\":\"in\",\"name\":%s,"
					"\"from\":\"%s\",\"state\":\"%s\","
					"\"bytes\":%llu,\"segments\":%u,"
					"\"segments_done\":%u,\"created\":%s,"
					"\"last_activity\":%s,\"age_s\":%lld,"
					"\"idle_s\":%lld}",
					*first ? "" : ",",
					fr_json_str(m.name, n, sizeof(n)), from,
					state, (unsigned long long)m.total_size,
					m.n_segments, have,
					fr_json_time(made, ct, sizeof(ct)),
					fr_json_time(last, lt, sizeof(lt)),
					(long long)(made >= 0 ? now - made : -1),
					(long long)(last >= 0 ? now - last : -1));
				*first = false;
			} else {
				*first = false;
				if (!header) {
					fprintf(out, "incoming:\n  %-24s %-5s %-9s "
						     "%11s %10s\n",
						"NAME", "FROM", "STATE", "SEGMENTS",
						"SIZE");
					header = true;
				}
				char segs[32], sz[32];
				snprintf(segs, sizeof(segs), "%u/%u", have,
					 m.n_segments);
				fprintf(out, "  %-24s %-5s %-9s %11s %10s", m.name,
					from, state, segs,
					fr_human_bytes(m.total_size, sz, sizeof(sz)));
				/* age since created; last activity, ago */
				fprintf(out, "  age %s, last activity %s ago\n",
					fr_span_str(made >= 0 ? now - made : -1, ct,
						 sizeof(ct)),
					fr_span_str(last >= 0 ? now - last : -1, lt,
						 sizeof(lt)));
			}
			fr_manifest_fini(&m);
		}
		closedir(d);
	}
	fr_path_fmt(dir, sizeof(dir), "%s/manifests", c->store);
	if (!(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		char mp[1400];
		struct fr_manifest m = {0};
		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp.") ||
		    fr_path_fmt(mp, sizeof(mp), "%s/%s", dir, de->d_name) ||
		    fr_manifest_load(mp, &m) < 0)
			continue;
		if (which && strcmp(which, m.name)) {
			fr_manifest_fini(&m);
			continue;
		}
		if (json) {
			char n[600];
			fprintf(out,
				"%s{\"direction\":\"in\",\"name\":%s,"
				"\"state\":\"complete\",\"bytes\":%llu,"
				"\"segments\":%u,\"segments_done\":%u}",
				*first ? "" : ",", fr_json_str(m.name, n, sizeof(n)),
				(unsigned long long)m.total_size, m.n_segments,
				m.n_segments);
			*first = false;
		} else {
			*first = false;
			if (!header) {
				fprintf(out, "incoming:\n  %-24s %-5s %-9s %11s "
					     "%10s\n",
					"NAME", "FROM", "STATE", "SEGMENTS", "SIZE");
				header = true;
			}
			char segs[32], sz[32];
			snprintf(segs, sizeof(segs), "%u/%u", m.n_segments,
				 m.n_segments);
			fprintf(out, "  %-24s %-5s %-9s %11s %10s\n", m.name, "",
				"complete", segs,
				fr_human_bytes(m.total_size, sz, sizeof(sz)));
		}
		fr_manifest_fini(&m);
	}
	closedir(d);
}

int fr_status(const struct fr_config *c, const char *which, bool json,
	      FILE *out)
{
	bool first = true;
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len); /* nothing if unknown */

	if (!mem)
		return -ENOMEM;
	if (json)
		fprintf(mem, "[");
	outgoing(c, which, json, mem, &first);
	incoming(c, which, json, mem, &first);
	if (json)
		fprintf(mem, "]\n");
	else if (first && !which)
		fprintf(mem, "no transfers\n");
	fclose(mem);
	if (first && which) {
		free(text);
		fr_log(FR_LOG_ERROR,
		       "no transfer or package '%s' in store '%s' (ferry status "
		       "lists them all)",
		       which, c->store);
		return -ENOENT;
	}
	fwrite(text, 1, len, out);
	free(text);
	return 0;
}
