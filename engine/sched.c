/*
 * sched.c - the thin scheduler: turns `send` and `resume` into attempts
 * on outputs. It keeps each transfer's state under
 * <store>/outgoing/<id>/ (what, where, the cached manifest, progress),
 * honours the sender's limits (retries and their delay; sends at once in
 * all and per site, through lock files any ferry process respects), and
 * tries a site's addresses in priority order. It sees outputs only
 * through struct fr_output_ops.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fr_internal.h"

/* ---- transfer records ---------------------------------------------------- */

int fr_transfer_save(const struct fr_transfer *t)
{
	char path[1200], buf[8192];
	int n = snprintf(buf, sizeof(buf),
			 "id=%s\nname=%s\nsite=%s\nsource=%s\nvia=%s\n"
			 "priority=%d\nlevel=%d\nstate=%s\n",
			 t->id, t->name, t->site, t->source, t->via,
			 t->priority, t->level, t->state);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	if (fr_path_fmt(path, sizeof(path), "%s/transfer", t->dir))
		return -ENAMETOOLONG;
	return fr_write_file_atomic(path, buf, (size_t)n);
}

int fr_transfer_load(const char *dir, struct fr_transfer *t)
{
	char path[1200];
	uint8_t *text;
	size_t len;
	int rc;

	memset(t, 0, sizeof(*t));
	if (fr_path_fmt(path, sizeof(path), "%s/transfer", dir))
		return -ENAMETOOLONG;
	if ((rc = fr_read_file(path, 65536, &text, &len)) < 0)
		return rc;
	const char *s = (const char *)text;
	fr_kv_get(s, "id", t->id, sizeof(t->id));
	fr_kv_get(s, "name", t->name, sizeof(t->name));
	fr_kv_get(s, "site", t->site, sizeof(t->site));
	fr_kv_get(s, "source", t->source, sizeof(t->source));
	fr_kv_get(s, "via", t->via, sizeof(t->via));
	fr_kv_get(s, "state", t->state, sizeof(t->state));
	t->priority = (int)fr_kv_num(s, "priority");
	t->level = (int)fr_kv_num(s, "level");
	snprintf(t->dir, sizeof(t->dir), "%s", dir);
	free(text);
	return t->id[0] && t->site[0] && t->source[0] ? 0 : FR_E_CONFIG;
}

int fr_progress_save(const char *dir, const struct fr_progress *p)
{
	char path[1200], tmp[1300], buf[2048];
	int n = snprintf(
		buf, sizeof(buf),
		"state=%s\ntotal=%llu\ndone=%llu\nwire=%llu\nsegments=%u\n"
		"segments_done=%u\nrate=%.0f\neta=%.0f\nlevel=%d\noutput=%s\n"
		"error=%s\npid=%ld\nupdated=%lld\n",
		p->state, (unsigned long long)p->total_bytes,
		(unsigned long long)p->done_bytes,
		(unsigned long long)p->wire_bytes, p->n_segments, p->segs_done,
		p->rate, p->eta, p->level, p->output, p->error, p->pid,
		(long long)p->updated);
	if (fr_path_fmt(path, sizeof(path), "%s/progress", dir) ||
	    fr_path_fmt(tmp, sizeof(tmp), "%s/progress.tmp", dir))
		return -ENAMETOOLONG;
	/* progress is advisory: no fsync, just never a torn file */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, buf, (size_t)n);
	close(fd);
	if (w != n || rename(tmp, path) < 0)
		return -EIO;
	return 0;
}

int fr_progress_load(const char *dir, struct fr_progress *p)
{
	char path[1200];
	uint8_t *text;
	size_t len;
	int rc;

	memset(p, 0, sizeof(*p));
	if (fr_path_fmt(path, sizeof(path), "%s/progress", dir))
		return -ENAMETOOLONG;
	if ((rc = fr_read_file(path, 65536, &text, &len)) < 0)
		return rc;
	const char *s = (const char *)text;
	char v[64];
	fr_kv_get(s, "state", p->state, sizeof(p->state));
	fr_kv_get(s, "output", p->output, sizeof(p->output));
	fr_kv_get(s, "error", p->error, sizeof(p->error));
	fr_kv_get(s, "total", v, sizeof(v));
	p->total_bytes = strtoull(v, NULL, 10);
	fr_kv_get(s, "done", v, sizeof(v));
	p->done_bytes = strtoull(v, NULL, 10);
	fr_kv_get(s, "wire", v, sizeof(v));
	p->wire_bytes = strtoull(v, NULL, 10);
	p->n_segments = (uint32_t)fr_kv_num(s, "segments");
	p->segs_done = (uint32_t)fr_kv_num(s, "segments_done");
	fr_kv_get(s, "rate", v, sizeof(v));
	p->rate = strtod(v, NULL);
	fr_kv_get(s, "eta", v, sizeof(v));
	p->eta = strtod(v, NULL);
	p->level = (int)fr_kv_num(s, "level");
	p->pid = fr_kv_num(s, "pid");
	p->updated = fr_kv_num(s, "updated");
	free(text);
	return 0;
}

/* ---- send slots ---------------------------------------------------------- */

struct slots {
	int all_fd, site_fd;
};

static int try_lock_one(const char *dir, const char *prefix, int n)
{
	for (int i = 0; i < n; i++) {
		char path[1300];
		fr_path_fmt(path, sizeof(path), "%s/%s-%d", dir, prefix, i);
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		close(fd);
	}
	return -EBUSY;
}

static int slots_acquire(const struct fr_config *c, const char *site,
			 struct slots *sl)
{
	char dir[1200], prefix[64];
	bool told = false;

	if (fr_path_fmt(dir, sizeof(dir), "%s/outgoing/.slots", c->store))
		return -ENAMETOOLONG;
	int rc = fr_mkdirs(dir);
	if (rc < 0)
		return rc;
	snprintf(prefix, sizeof(prefix), "site-%s", site);
	for (;;) {
		sl->all_fd = try_lock_one(dir, "all", c->max_sends);
		if (sl->all_fd >= 0) {
			sl->site_fd = try_lock_one(dir, prefix, c->max_sends_site);
			if (sl->site_fd >= 0)
				return 0;
			close(sl->all_fd);
			if (sl->site_fd != -EBUSY)
				return sl->site_fd;
		} else if (sl->all_fd != -EBUSY) {
			return sl->all_fd;
		}
		if (!told) {
			fr_log(FR_LOG_INFO,
			       "waiting for a free send slot (max-sends %d, "
			       "max-sends-per-site %d)",
			       c->max_sends, c->max_sends_site);
			told = true;
		}
		sleep(1);
	}
}

static void slots_release(struct slots *sl)
{
	close(sl->all_fd);
	close(sl->site_fd);
}

/* ---- progress display ------------------------------------------------------ */

struct runner {
	const struct fr_config *c;
	struct fr_transfer *t;
	bool tty;
	struct fr_progress last;
	char output[96];
	uint64_t last_save_ns;
};

static void fmt_eta(double s, char *buf, size_t cap)
{
	if (s < 0 || s > 99 * 3600) {
		snprintf(buf, cap, "--:--");
		return;
	}
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static void on_progress(void *arg, const struct fr_progress *p)
{
	struct runner *r = arg;
	struct fr_progress q = *p;

	snprintf(q.output, sizeof(q.output), "%s", r->output);
	q.pid = (long)getpid();
	q.updated = (int64_t)time(NULL);
	r->last = q;
	uint64_t now = fr_now_ns();
	if (now - r->last_save_ns > 500000000ull) {
		fr_progress_save(r->t->dir, &q);
		r->last_save_ns = now;
	}
	if (!r->tty)
		return;
	char a[32], b[32], rate[32], eta[32];
	double pct = p->total_bytes ? 100.0 * (double)p->done_bytes /
					      (double)p->total_bytes
				    : 100.0;
	fmt_eta(p->eta, eta, sizeof(eta));
	fprintf(stderr,
		"\r\033[K%s -> %s  %5.1f%%  %s / %s  %s/s  ETA %s  seg %u/%u  "
		"%s",
		r->t->name, r->t->site, pct,
		fr_human_bytes(p->done_bytes, a, sizeof(a)),
		fr_human_bytes(p->total_bytes, b, sizeof(b)),
		fr_human_bytes((uint64_t)p->rate, rate, sizeof(rate)), eta,
		p->segs_done, p->n_segments,
		p->level > 0 ? "zstd" : "raw");
	if (p->level > 0)
		fprintf(stderr, " %d", p->level);
}

/* ---- schedules ------------------------------------------------------------ */

/* May this transfer use address a at all (its --via, an output for its
 * type)? */
static bool usable(const struct fr_transfer *t, const struct fr_address *a)
{
	return (!t->via[0] || !strcmp(t->via, a->name)) &&
	       fr_output_for(a->type) != NULL;
}

/*
 * Wait until one of the site's usable addresses is open to the
 * transfer's priority, saying once which opens first and when (also in
 * the transfer's progress, for `ferry status`). 0 once one is open;
 * FR_E_CONFIG when none ever opens to this priority.
 */
static int wait_for_window(struct fr_transfer *t,
			   const struct fr_address *const *addrs, unsigned n,
			   struct fr_progress *shown)
{
	bool told = false;

	for (;;) {
		time_t now = time(NULL), first = (time_t)-1;
		const struct fr_address *fa = NULL;
		bool any = false;
		for (unsigned i = 0; i < n; i++) {
			const struct fr_address *a = addrs[i];
			if (!usable(t, a))
				continue;
			any = true;
			time_t o = fr_schedule_next_open(&a->schedule, t->priority,
							 now);
			if (o == now)
				return 0;
			if (o != (time_t)-1 && (first == (time_t)-1 || o < first)) {
				first = o;
				fa = a;
			}
		}
		if (!any)
			return 0; /* the attempt says why nothing is usable */
		if (!fa) {
			fr_log(FR_LOG_ERROR,
			       "no address to %s is ever open to %s-priority "
			       "sends (see their schedules); send with a higher "
			       "--priority or change a schedule",
			       t->site, fr_priority_name(t->priority));
			return FR_E_CONFIG;
		}
		if (!told) {
			char when[64];
			struct tm tm;
			localtime_r(&first, &tm);
			strftime(when, sizeof(when), "%a %Y-%m-%d %H:%M", &tm);
			fr_log(FR_LOG_INFO,
			       "'%s' to %s waits: no address is open to "
			       "%s-priority sends now; %s opens at %s",
			       t->name, t->site, fr_priority_name(t->priority),
			       fa->name, when);
			snprintf(shown->state, sizeof(shown->state), "waiting");
			snprintf(shown->error, sizeof(shown->error),
				 "schedule: no address open to %s priority; "
				 "%s opens at %s",
				 fr_priority_name(t->priority), fa->name, when);
			shown->pid = (long)getpid();
			shown->updated = (int64_t)now;
			fr_progress_save(t->dir, shown);
			snprintf(t->state, sizeof(t->state), "waiting");
			fr_transfer_save(t);
			told = true;
		}
		double left = difftime(first, time(NULL));
		sleep(left > 30 ? 30 : left < 1 ? 1 : (unsigned)left);
	}
}

/* ---- one transfer, all attempts ---------------------------------------- */

/*
 * A receiver that answers "busy" (-EBUSY: all its sessions taken, or the
 * package held by another session still receiving) is asked again after
 * BUSY_RETRY_MS, up to BUSY_RETRIES times in a transfer, before the
 * normal retry-delay applies; these tries do not count against `retries`
 * (retries = 0 still means one try only).
 */
#define BUSY_RETRY_MS 1000u
#define BUSY_RETRIES 10

static int run_transfer(const struct fr_config *c, struct fr_transfer *t,
			const struct fr_manifest *m, const uint8_t *mf,
			size_t mf_len, bool single, bool progress,
			struct fr_send_result *res)
{
	const struct fr_address *addrs[64];
	unsigned n = fr_config_addresses(c, t->site, addrs, 64);
	struct runner r = {.c = c, .t = t, .tty = progress};
	char err[768] = "";
	int rc = FR_E_CONFIG;
	double t0 = fr_now_s();
	struct slots sl;
	bool began = false; /* an offer was answered: the start is known */
	struct fr_offer_z oz = {0};
	bool plain_retried = false, whole_retried = false;
	int busy = 0; /* busy answers retried at once so far */
	bool soon = false;

	if (n == 0) {
		fr_log(FR_LOG_ERROR,
		       "no address for site %s in '%s' (add an [address %s "
		       "NAME] section)",
		       t->site, c->path, t->site);
		return FR_E_CONFIG;
	}
window:
	r.last.total_bytes = m->total_size;
	r.last.n_segments = m->n_segments;
	if ((rc = wait_for_window(t, addrs, n, &r.last)) < 0) {
		free(oz.body); /* from before a window closed */
		return rc;
	}
	if ((rc = slots_acquire(c, t->site, &sl)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot take a send slot: %s",
		       fr_strerror(rc));
		free(oz.body);
		return rc;
	}
	res->n_segments = m->n_segments;
	res->total_bytes = m->total_size;
	snprintf(t->state, sizeof(t->state), "sending");
	fr_transfer_save(t);
	rc = FR_E_CONFIG;
	for (int attempt = 0; attempt <= c->retries; attempt++) {
		if (attempt > 0 || soon) {
			unsigned ms = soon ? BUSY_RETRY_MS : c->retry_delay_ms;
			if (soon)
				fr_log(FR_LOG_INFO,
				       "%s is busy; trying '%s' again in %.0f s "
				       "(%d of %d)",
				       t->site, t->name, ms / 1000.0, busy,
				       BUSY_RETRIES);
			else
				fr_log(FR_LOG_INFO,
				       "retry %d of %d for '%s' to %s in %.0f s",
				       attempt, c->retries, t->name, t->site,
				       ms / 1000.0);
			struct fr_progress p = r.last;
			snprintf(p.state, sizeof(p.state), "waiting");
			snprintf(p.error, sizeof(p.error), "%s", err);
			fr_progress_save(t->dir, &p);
			usleep(ms * 1000u);
		}
		res->attempts++;
		bool tried = false, closed = false;
		for (unsigned i = 0; i < n; i++) {
			const struct fr_address *a = addrs[i];
			if (t->via[0] && strcmp(t->via, a->name))
				continue;
			if (!fr_schedule_allows(&a->schedule, t->priority,
						time(NULL))) {
				fr_log(FR_LOG_DEBUG,
				       "address %s %s is closed to %s-priority "
				       "sends now; skipping it",
				       a->site, a->name, fr_priority_name(t->priority));
				closed = true;
				continue;
			}
			const struct fr_output_ops *ops = fr_output_for(a->type);
			if (!ops) {
				fr_log(FR_LOG_WARN,
				       "address %s %s: this type of output is not "
				       "available in this version; skipping it",
				       a->site, a->name);
				continue;
			}
			tried = true;
			struct fr_output o = {.ops = ops, .c = c, .a = a};
			struct fr_send_ctx sc = {
				.m = m,
				.mf = mf,
				.mf_len = mf_len,
				.root = t->source,
				.single = single,
				.level = t->level,
				.priority = t->priority,
				.offer_z = &oz,
				.workers = fr_workq_count(),
				.progress = on_progress,
				.progress_arg = &r,
			};
			if (strcmp(ops->name, a->name))
				snprintf(r.output, sizeof(r.output), "%s (%s)",
					 a->name, ops->name);
			else
				snprintf(r.output, sizeof(r.output), "%s", a->name);
			uint8_t *have = calloc(m->n_segments + 1, 1);
			if (!have) {
				rc = -ENOMEM;
				break;
			}
			rc = ops->open(&o, err, sizeof(err));
			if (rc == 0) {
				rc = ops->offer(&o, &sc, have, err, sizeof(err));
				if (rc == FR_HAVE_COMPLETE) {
					/* held before we began, unless it
					 * was this transfer that sent it */
					if (!began) {
						res->segs_skipped = m->n_segments;
						res->skipped_bytes = m->total_size;
					}
					rc = 0;
				} else if (rc == FR_HAVE_PARTIAL) {
					rc = ops->send(&o, &sc, have, err,
						       sizeof(err));
					res->sent_bytes += sc.wire_bytes;
					res->segs_sent += sc.segs_sent;
					res->segs_resent += sc.segs_resent;
					/* what the site held when we began:
					 * the first offer answered, not one
					 * after a retry or a closed window */
					if (!began) {
						res->segs_skipped = sc.segs_skipped;
						res->skipped_bytes = sc.skipped_raw;
						began = true;
					}
					res->level_last = sc.level_last;
				}
			}
			ops->close(&o);
			free(have);
			if (r.tty)
				fprintf(stderr, "\r\033[K");
			if (rc == 0)
				break;
			if ((oz.refused && !plain_retried) ||
			    (oz.plain_frames && !whole_retried)) {
				/* an older receiver: the same address at
				 * once, with the manifest plain or the
				 * frames whole */
				fr_log(FR_LOG_WARN, "%s", err);
				plain_retried |= oz.refused;
				whole_retried |= oz.plain_frames;
				i--;
				continue;
			}
			if (rc == FR_E_CLOSED) {
				/* not a failure: wait for the next window, or
				 * go on by the first address open now */
				fr_log(FR_LOG_INFO, "'%s' to %s stops: %s",
				       t->name, t->site, err);
				break;
			}
			fr_log(FR_LOG_ERROR, "%s", err);
			/* what another address or a retry cannot fix */
			if (rc == FR_E_CHANGED || rc == FR_E_AUTH)
				break;
		}
		if ((!tried && closed) || rc == FR_E_CLOSED) {
			/* the window closed while we waited, or while we
			 * sent: wait again */
			slots_release(&sl);
			res->attempts--;
			goto window;
		}
		if (!tried) {
			fr_log(FR_LOG_ERROR, "no usable address for site %s%s%s",
			       t->site, t->via[0] ? " named " : "", t->via);
			rc = FR_E_CONFIG;
			break;
		}
		if (rc == 0 || rc == FR_E_CHANGED || rc == FR_E_AUTH ||
		    rc == -ENOMEM)
			break;
		soon = rc == -EBUSY && c->retries > 0 && busy < BUSY_RETRIES;
		if (soon) {
			busy++;
			attempt--; /* not one of `retries` */
		}
	}
	slots_release(&sl);
	free(oz.body);
	res->seconds = fr_now_s() - t0;
	res->error = rc;
	struct fr_progress p = r.last;
	p.total_bytes = m->total_size;
	p.n_segments = m->n_segments;
	p.pid = 0;
	p.updated = (int64_t)time(NULL);
	if (rc == 0) {
		p.done_bytes = m->total_size;
		p.segs_done = m->n_segments;
		p.rate = res->seconds > 0 ? (double)(m->total_size -
						     res->skipped_bytes) /
						    res->seconds
					  : 0;
		p.eta = 0;
		p.error[0] = '\0';
	} else {
		snprintf(p.error, sizeof(p.error), "%s", err);
	}
	snprintf(p.state, sizeof(p.state), "%s", rc == 0 ? "done" : "failed");
	snprintf(t->state, sizeof(t->state), "%s", p.state);
	fr_progress_save(t->dir, &p);
	fr_transfer_save(t);
	return rc;
}

/* ---- send and resume ----------------------------------------------------- */

static int outgoing_dir(const struct fr_config *c, char *out, size_t cap)
{
	if (fr_path_fmt(out, cap, "%s/outgoing", c->store))
		return -ENAMETOOLONG;
	return fr_mkdirs(out);
}

/* The cached manifest of an earlier transfer of the same name to the same
 * site, so an unchanged source is not hashed again. */
static void find_previous(const struct fr_config *c, const char *name,
			  const char *site, struct fr_manifest *prev,
			  char *prev_dir, size_t cap)
{
	char dir[1200];
	DIR *d;
	struct dirent *de;

	prev_dir[0] = '\0';
	if (outgoing_dir(c, dir, sizeof(dir)) < 0 || !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		char sub[1300], mp[1400];
		struct fr_transfer t;
		uint8_t *mf;
		size_t len;
		if (de->d_name[0] == '.')
			continue;
		if (fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, de->d_name) ||
		    fr_transfer_load(sub, &t) < 0 || strcmp(t.name, name) ||
		    strcmp(t.site, site))
			continue;
		fr_path_fmt(mp, sizeof(mp), "%s/manifest", sub);
		if (fr_read_file(mp, FR_MANIFEST_MAX, &mf, &len) == 0) {
			fr_manifest_fini(prev);
			if (fr_manifest_decode(prev, mf, len) == 0)
				snprintf(prev_dir, cap, "%s", sub);
			free(mf);
		}
	}
	closedir(d);
}

static int lock_transfer(struct fr_transfer *t)
{
	char path[1300];
	int fd;

	fr_path_fmt(path, sizeof(path), "%s/lock", t->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		fr_log(FR_LOG_ERROR,
		       "transfer %s ('%s' to %s) is already running in another "
		       "ferry process",
		       t->id, t->name, t->site);
		return -EBUSY;
	}
	return fd;
}

/* Scan, record and run one transfer. t has source, name, site, via,
 * priority and level set. */
static int prepare_and_run(const struct fr_config *c, struct fr_transfer *t,
			   bool progress, struct fr_send_result *res)
{
	struct fr_manifest prev = {0}, m = {0};
	char prev_dir[1300], odir[1200], hex[2 * FR_HASH_LEN + 1];
	struct stat st;
	uint8_t *mf = NULL;
	int rc, lock = -1;

	/* refused before the source is read: send and resume alike */
	if (t->via[0]) {
		const struct fr_address *all[64];
		unsigned n = fr_config_addresses(c, t->site, all, 64), i;
		for (i = 0; i < n && strcmp(all[i]->name, t->via); i++)
			;
		if (i == n) {
			fr_log(FR_LOG_ERROR,
			       "site %s has no address named '%s' in '%s'",
			       t->site, t->via, c->path);
			return FR_E_CONFIG;
		}
	}
	if (stat(t->source, &st) < 0) {
		rc = -errno;
		fr_log(FR_LOG_ERROR, "cannot send '%s': %s", t->source,
		       strerror(errno));
		return rc;
	}
	find_previous(c, t->name, t->site, &prev, prev_dir, sizeof(prev_dir));
	double t0 = fr_now_s();
	rc = fr_scan(t->source, t->name, c->seg_size, prev_dir[0] ? &prev : NULL,
		     &m, progress);
	fr_manifest_fini(&prev);
	if (rc < 0)
		return rc;
	char sz[32];
	fr_log(FR_LOG_DEBUG,
	       "manifest of '%s': %u entries, %s, %u segments, in %.2f s%s",
	       t->name, m.n_entries,
	       fr_human_bytes(m.total_size, sz, sizeof(sz)), m.n_segments,
	       fr_now_s() - t0, prev_dir[0] ? " (hashes reused when unchanged)" : "");
	size_t mf_len = fr_manifest_encoded_size(&m);
	mf = malloc(mf_len);
	if (!mf) {
		rc = -ENOMEM;
		goto out;
	}
	fr_manifest_encode(&m, mf, mf_len);
	fr_hex(m.id, FR_HASH_LEN, hex);
	hex[12] = '\0';
	snprintf(t->id, sizeof(t->id), "%s-%s", hex, t->site);
	if ((rc = outgoing_dir(c, odir, sizeof(odir))) < 0 ||
	    (rc = fr_path_fmt(t->dir, sizeof(t->dir), "%s/%s", odir, t->id)) < 0 ||
	    (rc = fr_mkdirs(t->dir)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot create transfer directory in '%s': %s",
		       odir, fr_strerror(rc));
		goto out;
	}
	if ((lock = lock_transfer(t)) < 0) {
		rc = lock;
		goto out;
	}
	/* a newer version of the package replaces the older transfer */
	if (prev_dir[0] && strcmp(prev_dir, t->dir)) {
		struct fr_transfer old;
		if (fr_transfer_load(prev_dir, &old) == 0 &&
		    strcmp(old.state, "done"))
			fr_log(FR_LOG_INFO,
			       "'%s' changed since transfer %s; sending the new "
			       "version as %s",
			       t->name, old.id, t->id);
		fr_remove_tree(prev_dir);
	}
	char mpath[1400];
	fr_path_fmt(mpath, sizeof(mpath), "%s/manifest", t->dir);
	if ((rc = fr_write_file_atomic(mpath, mf, mf_len)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot write '%s': %s", mpath,
		       fr_strerror(rc));
		goto out;
	}
	snprintf(res->transfer, sizeof(res->transfer), "%s", t->id);
	snprintf(res->name, sizeof(res->name), "%s", t->name);
	snprintf(res->site, sizeof(res->site), "%s", t->site);
	rc = run_transfer(c, t, &m, mf, mf_len, S_ISREG(st.st_mode), progress,
			  res);
out:
	if (lock >= 0)
		close(lock);
	free(mf);
	fr_manifest_fini(&m);
	return rc;
}

int fr_package_source(const char *path, const char *given, const char *verb,
		      char *abs, size_t abscap, char *name, size_t namecap)
{
	char buf[PATH_MAX];

	if (!realpath(path, buf)) {
		int rc = -errno;
		fr_log(FR_LOG_ERROR, "cannot %s '%s': %s", verb, path,
		       strerror(errno));
		return rc;
	}
	snprintf(abs, abscap, "%s", buf);
	if (given) {
		snprintf(name, namecap, "%s", given);
	} else {
		const char *base = strrchr(buf, '/');
		snprintf(name, namecap, "%s", base && base[1] ? base + 1 : "root");
	}
	if (fr_name_check(name) < 0) {
		fr_log(FR_LOG_ERROR,
		       "package name '%s' is not valid (1-255 bytes, no '/', "
		       "not '.' or '..'); choose one with --name",
		       name);
		return FR_E_BAD_NAME;
	}
	return 0;
}

int fr_send(const struct fr_config *c, const struct fr_send_opts *o,
	    struct fr_send_result *res)
{
	struct fr_transfer t = {0};
	const struct fr_address *addrs[1];
	char abs[4096];
	int rc;

	memset(res, 0, sizeof(*res));
	signal(SIGPIPE, SIG_IGN);
	if (!fr_config_addresses(c, o->site, addrs, 1)) {
		fr_log(FR_LOG_ERROR,
		       "no address for site '%s' in '%s' (add an [address %s "
		       "NAME] section)",
		       o->site, c->path, o->site);
		return FR_E_CONFIG;
	}
	if ((rc = fr_package_source(o->path, o->name, "send", abs, sizeof(abs),
				    t.name, sizeof(t.name))) < 0)
		return rc;
	snprintf(t.source, sizeof(t.source), "%s", abs);
	snprintf(t.site, sizeof(t.site), "%s", o->site);
	snprintf(t.via, sizeof(t.via), "%s", o->via ? o->via : "");
	t.priority = o->priority;
	t.level = o->level >= -1 ? o->level : c->level;
	if ((rc = fr_workq_start(c->workers)) < 0)
		return rc;
	return prepare_and_run(c, &t, o->progress, res);
}

static void print_result_json(const struct fr_send_result *r, FILE *out)
{
	char n[600];

	fprintf(out,
		"{\"transfer\":\"%s\",\"name\":%s,\"site\":\"%s\","
		"\"ok\":%s,\"error\":%s,\"bytes\":%llu,\"wire_bytes\":%llu,"
		"\"skipped_bytes\":%llu,\"segments\":%u,\"segments_sent\":%u,"
		"\"segments_skipped\":%u,\"segments_resent\":%u,"
		"\"seconds\":%.3f,\"attempts\":%d,\"level\":%d}\n",
		r->transfer, fr_json_str(r->name, n, sizeof(n)), r->site,
		r->error ? "false" : "true",
		r->error ? "\"failed\"" : "null",
		(unsigned long long)r->total_bytes,
		(unsigned long long)r->sent_bytes,
		(unsigned long long)r->skipped_bytes, r->n_segments,
		r->segs_sent, r->segs_skipped, r->segs_resent, r->seconds,
		r->attempts, r->level_last);
}

static int resume_one(const struct fr_config *c, const char *dir,
		      bool progress, struct fr_send_result *res)
{
	struct fr_transfer t;
	int rc = fr_transfer_load(dir, &t);

	memset(res, 0, sizeof(*res));
	if (rc < 0) {
		fr_log(FR_LOG_ERROR, "cannot read transfer '%s': %s", dir,
		       fr_strerror(rc));
		return rc;
	}
	snprintf(res->transfer, sizeof(res->transfer), "%s", t.id);
	snprintf(res->name, sizeof(res->name), "%s", t.name);
	snprintf(res->site, sizeof(res->site), "%s", t.site);
	fr_log(FR_LOG_INFO, "resuming %s: '%s' to %s", t.id, t.name, t.site);
	return prepare_and_run(c, &t, progress, res);
}

int fr_resume(const struct fr_config *c, const char *which, bool progress,
	      bool json)
{
	char dir[1200];
	DIR *d;
	struct dirent *de;
	char (*dirs)[1300] = NULL;
	char (*sites)[FR_CODE_MAX + 1] = NULL;
	unsigned n = 0, cap = 0;

	signal(SIGPIPE, SIG_IGN);
	if (outgoing_dir(c, dir, sizeof(dir)) < 0 || !(d = opendir(dir))) {
		fr_log(FR_LOG_ERROR, "cannot read '%s/outgoing'", c->store);
		return -ENOENT;
	}
	while ((de = readdir(d))) {
		char sub[1300];
		struct fr_transfer t;
		if (de->d_name[0] == '.' ||
		    fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, de->d_name) ||
		    fr_transfer_load(sub, &t) < 0)
			continue;
		if (which && strcmp(which, t.id) && strcmp(which, t.name))
			continue;
		if (!which && !strcmp(t.state, "done"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			dirs = realloc(dirs, cap * sizeof(*dirs));
			sites = realloc(sites, cap * sizeof(*sites));
			if (!dirs || !sites) {
				closedir(d);
				return -ENOMEM;
			}
		}
		memcpy(dirs[n], sub, sizeof(sub));
		memcpy(sites[n], t.site, sizeof(t.site));
		n++;
	}
	closedir(d);
	if (n == 0) {
		if (which) {
			fr_log(FR_LOG_ERROR,
			       "no transfer '%s' (see ferry status)", which);
			return -ENOENT;
		}
		fr_log(FR_LOG_INFO, "nothing to resume");
		if (json)
			printf("[]\n");
		return 0;
	}
	int rc;
	if (n == 1) {
		struct fr_send_result r;
		if ((rc = fr_workq_start(c->workers)) < 0)
			return rc;
		rc = resume_one(c, dirs[0], progress, &r);
		if (json)
			print_result_json(&r, stdout);
		free(dirs);
		free(sites);
		return rc;
	}
	/* several: one child each, the slots keep the limits. The workers
	 * are started in each child: threads do not survive fork(). */
	int failed = 0;
	if (json)
		fflush(stdout);
	for (unsigned i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			struct fr_send_result r = {0};
			int crc = fr_workq_start(c->workers);
			if (crc == 0)
				crc = resume_one(c, dirs[i], false, &r);
			if (json)
				print_result_json(&r, stdout);
			fflush(stdout);
			_exit(crc == 0 ? 0 : 1);
		}
		if (pid < 0)
			failed++;
	}
	int st;
	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	free(dirs);
	free(sites);
	if (failed)
		fr_log(FR_LOG_ERROR, "%d of %u transfers did not finish", failed,
		       n);
	return failed ? FR_E_INCOMPLETE : 0;
}

void fr_print_send_result(const struct fr_send_result *r, bool json, FILE *out)
{
	if (json) {
		print_result_json(r, out);
		return;
	}
	if (r->error)
		return;
	char a[32], b[32], rate[32];
	double rs = r->seconds > 0 ? (double)(r->total_bytes - r->skipped_bytes) /
					     r->seconds
				   : 0;
	fprintf(stderr,
		"sent '%s' to %s: %s in %.1f s (%s/s), %u segments (%u already "
		"there, %u re-sent), %s on the wire\n",
		r->name, r->site, fr_human_bytes(r->total_bytes, a, sizeof(a)),
		r->seconds, fr_human_bytes((uint64_t)rs, rate, sizeof(rate)),
		r->n_segments, r->segs_skipped, r->segs_resent,
		fr_human_bytes(r->sent_bytes, b, sizeof(b)));
}
