/*
 * links.c - the rate learned per address, kept in the sender's store so
 * that the next send and `ferry plan` start from what the link really
 * carried: one small key=value file per address,
 * <store>/links/<SITE>.<name>, written atomically (the address's name
 * with every byte but [A-Za-z0-9_-] as %XX, so that any name makes one
 * safe file name and the first dot divides site from name).
 *
 * The starting rate of an address is, in order: that stored
 * measurement, its configured `bandwidth`, its line profile, or
 * FR_LINK_DEFAULT_RATE when nothing is known (a LAN's profile is 0:
 * measured). Rates are bytes/s here; configuration and profiles give
 * bit/s. What is kept is what the link carried on the wire, after
 * compression (fr_link_on_wire): a send's estimate follows what its
 * package's compression makes of it, the next package may not compress.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "sched/fr_sched.h"

/* <store>/links, made if need be. */
static int links_dir(const struct fr_config *c)
{
	char dir[1100];
	int rc = fr_path_fmt(dir, sizeof(dir), "%s/links", c->store);

	return rc < 0 ? rc : fr_mkdirs(dir);
}

static int link_path(const struct fr_config *c, const struct fr_address *a,
		     char *out, size_t cap)
{
	char name[3 * sizeof(a->name) + 1];
	size_t n = 0;

	for (const char *p = a->name; *p && n + 4 < sizeof(name); p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')
			name[n++] = (char)ch;
		else
			n += (size_t)snprintf(name + n, sizeof(name) - n,
					      "%%%02X", ch);
	}
	name[n] = '\0';
	return fr_path_fmt(out, cap, "%s/links/%s.%s", c->store, a->site, name);
}

int fr_link_load(const struct fr_config *c, const struct fr_address *a,
		 double *rate, int64_t *when)
{
	char path[1400], v[64], *end;
	uint8_t *text;
	size_t len;
	int rc;

	if ((rc = link_path(c, a, path, sizeof(path))) < 0)
		return rc;
	if ((rc = fr_read_file(path, 4096, &text, &len)) < 0)
		return rc;
	rc = fr_kv_get((const char *)text, "rate", v, sizeof(v));
	double r = rc ? 0 : strtod(v, &end);
	if (rc || end == v || *end || !(r > 0) || !isfinite(r))
		rc = FR_E_CONFIG;
	else if (when)
		*when = fr_kv_num((const char *)text, "when");
	if (!rc)
		*rate = r;
	free(text);
	return rc;
}

int fr_link_save(const struct fr_config *c, const struct fr_address *a,
		 double rate, int64_t when)
{
	char path[1400], buf[512];
	int rc;

	if (!(rate > 0) || !isfinite(rate))
		return -EINVAL;
	if ((rc = link_path(c, a, path, sizeof(path))) < 0 ||
	    (rc = links_dir(c)) < 0)
		return rc;
	int n = snprintf(buf, sizeof(buf),
			 "site=%s\naddress=%s\nrate=%.0f\n"
			 "when=%lld\n",
			 a->site, a->name, rate, (long long)when);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	return fr_write_file_atomic(path, buf, (size_t)n);
}

double fr_link_on_wire(double raw_rate, uint64_t wire, uint64_t raw)
{
	return raw && wire && wire < raw ? raw_rate * (double)wire / (double)raw
					 : raw_rate;
}

double fr_link_rate(const struct fr_config *c, const struct fr_address *a,
		    int *src)
{
	double rate;
	int s = FR_RATE_MEASURED;

	if (fr_link_load(c, a, &rate, NULL) < 0) {
		uint64_t bps = a->bandwidth;
		s = FR_RATE_CONFIGURED;
		if (!bps) {
			bps = fr_line_profile(a->type)->rate_bps;
			s = FR_RATE_PROFILE;
		}
		rate = (double)bps / 8;
		if (!bps) {
			rate = FR_LINK_DEFAULT_RATE;
			s = FR_RATE_DEFAULT;
		}
	}
	if (src)
		*src = s;
	return rate;
}

double fr_link_setup(const struct fr_config *c, const struct fr_address *a,
		     int *src)
{
	double handshake = fr_line_profile(FR_ADDR_LAN)->setup_s;
	double setup = fr_line_profile(a->type)->setup_s;
	int s = FR_SETUP_ASSUMED;

	if (a->type != FR_ADDR_LAN && a->type != FR_ADDR_COURIER) {
		double dial = fr_line_dial_known(c, a, NULL);
		if (dial == 0) {
			setup = handshake;
			s = FR_SETUP_UP;
		} else if (dial > 0) {
			setup = dial + handshake;
			s = FR_SETUP_MEASURED;
		}
	}
	if (src)
		*src = s;
	return setup;
}

const char *fr_setup_src_name(int src)
{
	static const char *const names[] = {"assumed", "measured", "up"};

	return src >= 0 && src < (int)FR_ARRAY_SIZE(names) ? names[src]
							   : "assumed";
}

double fr_link_limit(const struct fr_address *a, time_t t)
{
	struct fr_pacer pc;

	if (a->ratelimit.mode == FR_RL_NONE)
		return 0;
	fr_pacer_init(&pc, &a->ratelimit, (double)fr_line_rate(a));
	return fr_pacer_rate(&pc, t);
}

/* ---- a link shared with another send --------------------------------------- */

static bool other_sender(long pid)
{
	return pid > 0 && pid != (long)getpid() && fr_pid_alive(pid);
}

/* A striped send's <transfer>/outputs (its lines cut here): one of its
 * live lines sends over address `name`. */
static bool outputs_send_over(char *text, const char *name)
{
	for (char *line = text, *nl; line && *line; line = nl) {
		char out[128], state[32], pid[32];
		if ((nl = strchr(line, '\n')))
			*nl++ = '\0';
		fr_outputs_field(line, "output", false, out, sizeof(out));
		fr_outputs_field(line, "state", false, state, sizeof(state));
		fr_outputs_field(line, "pid", false, pid, sizeof(pid));
		if (!strcmp(out, name) && !strcmp(state, "sending") &&
		    other_sender(strtol(pid, NULL, 10)))
			return true;
	}
	return false;
}

/* A send over one output's <transfer>/progress: it sends over `name`
 * ("NAME" or "NAME (type)"). */
static bool progress_sends_over(const char *text, const char *name)
{
	char state[32], out[128];

	if (fr_kv_get(text, "state", state, sizeof(state)) ||
	    strcmp(state, "sending") ||
	    fr_kv_get(text, "output", out, sizeof(out)))
		return false;
	out[strcspn(out, " ")] = '\0';
	return !strcmp(out, name) && other_sender(fr_kv_num(text, "pid"));
}

/* <store>/links/<SITE>.<name>.bench: "pid=N" of a `bench link` running
 * over the address. */
static int bench_mark_path(const struct fr_config *c,
			   const struct fr_address *a, char *out, size_t cap)
{
	char path[1400];
	int rc = link_path(c, a, path, sizeof(path));

	return rc < 0 ? rc : fr_path_fmt(out, cap, "%s.bench", path);
}

int fr_link_bench_mark(const struct fr_config *c, const struct fr_address *a,
		       bool on)
{
	char path[1500], text[32];
	int rc;

	if ((rc = bench_mark_path(c, a, path, sizeof(path))) < 0)
		return rc;
	if (!on)
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	if ((rc = links_dir(c)) < 0)
		return rc;
	int n = snprintf(text, sizeof(text), "pid=%ld\n", (long)getpid());
	return fr_write_file_atomic(path, text, (size_t)n);
}

/* A `bench link` of another process runs over the address. */
static bool bench_runs(const struct fr_config *c, const struct fr_address *a)
{
	char path[1500];
	uint8_t *text;
	size_t len;
	long pid = 0;

	if (bench_mark_path(c, a, path, sizeof(path)) < 0 ||
	    fr_read_file(path, 64, &text, &len) < 0)
		return false;
	pid = (long)fr_kv_num((const char *)text, "pid");
	free(text);
	return other_sender(pid);
}

unsigned fr_link_senders(const struct fr_config *c, const struct fr_address *a)
{
	char dir[1200], suffix[FR_CODE_MAX + 2];
	/* this one, and a measurement of the link */
	unsigned senders = 1 + bench_runs(c, a);
	struct dirent *de;
	DIR *d;

	if (fr_path_fmt(dir, sizeof(dir), "%s/outgoing", c->store) ||
	    !(d = opendir(dir)))
		return senders;
	snprintf(suffix, sizeof(suffix), "-%s", a->site);
	size_t sl = strlen(suffix);
	while ((de = readdir(d))) {
		bool shared = false;
		size_t n = strlen(de->d_name);
		char path[1400];
		uint8_t *text;
		size_t len;
		if (de->d_name[0] == '.' || n <= sl ||
		    strcmp(de->d_name + n - sl, suffix))
			continue;
		if (!fr_path_fmt(path, sizeof(path), "%s/%s/outputs", dir,
				 de->d_name) &&
		    fr_read_file(path, 1 << 16, &text, &len) == 0) {
			shared = outputs_send_over((char *)text, a->name);
			free(text);
		} else if (!fr_path_fmt(path, sizeof(path), "%s/%s/progress",
					dir, de->d_name) &&
			   fr_read_file(path, 1 << 16, &text, &len) == 0) {
			shared = progress_sends_over((const char *)text,
						     a->name);
			free(text);
		}
		senders += shared;
	}
	closedir(d);
	return senders;
}

bool fr_link_shared(const struct fr_config *c, const struct fr_address *a)
{
	return fr_link_senders(c, a) > 1;
}

/* ---- the courier as the split sees it ------------------------------------- */

#define MEDIA_WRITE_RATE 150e6 /* bytes/s: a parcel written to media */
#define IMPORT_RATE 100e6      /* bytes/s: verified and made durable there */

bool fr_courier_model_of(const struct fr_address *a,
			 struct fr_courier_model *cm)
{
	double transit;

	if (!a->media[0] || !a->transit[0] ||
	    fr_parse_duration_s(a->transit, &transit) < 0)
		return false;
	*cm = (struct fr_courier_model){.write_rate = MEDIA_WRITE_RATE,
					.transit_s = transit,
					.import_rate = IMPORT_RATE};
	/* what the media can take now, a MiB left for the volumes' own
	 * records (raw bytes: a parcel is that size or less) */
	struct statvfs sv;
	/* (FERRY_MEDIA_ROOM_UNKNOWN, a test build's: a medium that fills
	 * while the parcel is written) */
	if (!fr_hook_flag("MEDIA_ROOM_UNKNOWN") && statvfs(a->media, &sv) == 0) {
		double free_b = (double)sv.f_bavail * (double)sv.f_frsize;
		cm->room = free_b > (1 << 20) ? free_b - (1 << 20) : 1;
	}
	return true;
}
