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
#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sched/fr_sched.h"

/* ---- transfer records ---------------------------------------------------- */

/* Held while a transfer's record or progress is written; a sender that
 * is interrupted takes it for good (see the interruption below). */
static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;

static int transfer_write(const struct fr_transfer *t)
{
	char path[1200], buf[8192];
	int n = snprintf(buf, sizeof(buf),
			 "id=%s\nname=%s\nsite=%s\nsource=%s\nvia=%s\n"
			 "priority=%d\nlevel=%d\nstate=%s\nskip_special=%d\n"
			 "left_out=%u\ncourier=%d\nparcel=%s\ntail_sent=%d\n"
			 "tail_net=%u\n",
			 t->id, t->name, t->site, t->source, t->via,
			 t->priority, t->level, t->state, t->skip_special,
			 t->left_out, t->courier, t->parcel, t->tail_sent,
			 t->tail_net);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	if (fr_path_fmt(path, sizeof(path), "%s/transfer", t->dir))
		return -ENAMETOOLONG;
	return fr_write_file_atomic(path, buf, (size_t)n);
}

int fr_transfer_save(const struct fr_transfer *t)
{
	pthread_mutex_lock(&save_lock);
	int rc = transfer_write(t);
	pthread_mutex_unlock(&save_lock);
	return rc;
}

int fr_transfer_set_parcel(struct fr_transfer *t, const char *id)
{
	pthread_mutex_lock(&save_lock);
	snprintf(t->parcel, sizeof(t->parcel), "%s", id);
	t->tail_sent = false;
	t->tail_net = 0;
	int rc = transfer_write(t);
	pthread_mutex_unlock(&save_lock);
	return rc;
}

int fr_transfer_tail_sent(struct fr_transfer *t)
{
	pthread_mutex_lock(&save_lock);
	int rc = 0;
	if (!t->tail_sent) {
		t->tail_sent = true;
		rc = transfer_write(t);
	}
	pthread_mutex_unlock(&save_lock);
	return rc;
}

int fr_transfer_tail_net(struct fr_transfer *t, uint32_t seg)
{
	pthread_mutex_lock(&save_lock);
	int rc = 0;
	if (seg + 1 > t->tail_net) {
		t->tail_net = seg + 1;
		rc = transfer_write(t);
	}
	pthread_mutex_unlock(&save_lock);
	return rc;
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
	t->skip_special = fr_kv_num(s, "skip_special") != 0;
	t->left_out = (uint32_t)fr_kv_num(s, "left_out");
	t->courier = (int)fr_kv_num(s, "courier");
	fr_kv_get(s, "parcel", t->parcel, sizeof(t->parcel));
	t->tail_sent = fr_kv_num(s, "tail_sent") != 0;
	t->tail_net = (uint32_t)fr_kv_num(s, "tail_net");
	snprintf(t->dir, sizeof(t->dir), "%s", dir);
	free(text);
	return t->id[0] && t->site[0] && t->source[0] ? 0 : FR_E_CONFIG;
}

static int progress_write(const char *dir, const struct fr_progress *p)
{
	char path[1200], tmp[1300], buf[2048];
	int n = snprintf(
		buf, sizeof(buf),
		"state=%s\ntotal=%llu\ndone=%llu\nwire=%llu\nsegments=%u\n"
		"segments_done=%u\nrate=%.0f\neta=%.0f\nlevel=%d\noutput=%s\n"
		"error=%s\npid=%ld\nupdated=%lld\nphase=%s\nsegments_held=%u\n"
		"held=%llu\n",
		p->state, (unsigned long long)p->total_bytes,
		(unsigned long long)p->done_bytes,
		(unsigned long long)p->wire_bytes, p->n_segments, p->segs_done,
		p->rate, p->eta, p->level, p->output, p->error, p->pid,
		(long long)p->updated, p->phase, p->segs_held,
		(unsigned long long)p->held_bytes);
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

int fr_progress_save(const char *dir, const struct fr_progress *p)
{
	pthread_mutex_lock(&save_lock);
	int rc = progress_write(dir, p);
	pthread_mutex_unlock(&save_lock);
	return rc;
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
	fr_kv_get(s, "phase", p->phase, sizeof(p->phase));
	p->segs_held = (uint32_t)fr_kv_num(s, "segments_held");
	fr_kv_get(s, "held", v, sizeof(v));
	p->held_bytes = strtoull(v, NULL, 10);
	free(text);
	return 0;
}

static void show_waiting(struct fr_transfer *t, struct fr_progress *shown,
			 const char *why);

/* What a send waiting for a slot shows (slots.c calls it once). */
struct slot_wait {
	struct fr_transfer *t;
	struct fr_progress *shown;
};
static void slot_waiting(void *arg, const char *why)
{
	struct slot_wait *w = arg;

	fr_log(FR_LOG_INFO, "%s", why);
	show_waiting(w->t, w->shown, why);
}

/* ---- interruption -------------------------------------------------------- */

/*
 * SIGINT or SIGTERM stops a sender at once, wherever it waits (a send
 * slot, a window, the ring). The handler only wakes a watcher thread;
 * the watcher takes save_lock for good (no record is half written or
 * written after it), marks the transfer interrupted, says how to resume
 * it and exits 128 + the signal. What reached the receiver is in its
 * journal; the rest goes on the resume.
 */
static struct {
	volatile sig_atomic_t sig;
	int pipe[2];
	pid_t armed;                  /* the process whose watcher runs */
	const struct fr_config *c;
	char dir[1200], id[64], source[4096];
	struct fr_send_result *res;   /* filled for the report */
	const struct fr_send_hooks *hooks; /* its report, by the caller */
	pid_t *kids;                  /* a resume of several: its children */
	unsigned n_kids;
	bool over;                    /* the transfer's end is being recorded */
	double t0;                    /* armed at (fr_now_s) */
	double wait_from;             /* waiting for a window or a slot
				       * since (fr_now_s), or 0 */
} intr = {.pipe = {-1, -1}};

int fr_interrupted(void)
{
	return intr.sig;
}

static void on_signal(int sig)
{
	int e = errno;
	char b = 1;

	intr.sig = sig;
	ssize_t w = write(intr.pipe[1], &b, 1);
	(void)w;
	errno = e;
}

/* The record says interrupted, with no live pid: not "sending". The
 * report gets the bytes this attempt had put on the wire. */
static void intr_record(const char *why)
{
	struct fr_transfer t;
	struct fr_progress p;

	if (!intr.dir[0])
		return;
	if (fr_transfer_load(intr.dir, &t) == 0) {
		snprintf(t.state, sizeof(t.state), "interrupted");
		transfer_write(&t);
	}
	fr_progress_load(intr.dir, &p);
	if (intr.res && p.pid == (long)getpid())
		intr.res->sent_bytes += p.wire_bytes;
	snprintf(p.state, sizeof(p.state), "interrupted");
	snprintf(p.error, sizeof(p.error), "%s", why);
	p.pid = 0;
	p.updated = (int64_t)time(NULL);
	progress_write(intr.dir, &p);
}

/* The report of an interrupted send: its time, and what each output
 * carried as its record says (status reads the same). */
static void intr_fill(struct fr_send_result *res)
{
	struct fr_status s = {0};

	res->seconds = fr_now_s() - intr.t0;
	double w = intr.wait_from; /* (cut off while it waited) */
	if (w > 0 && fr_now_s() - w >= 1.0)
		res->waited_s += fr_now_s() - w;
	if (!intr.id[0] || fr_status_load(intr.c, intr.id, &s) < 0 ||
	    !s.n_out) {
		fr_status_fini(&s);
		return;
	}
	const struct fr_status_transfer *t = &s.out[0];
	uint32_t sum = 0;
	uint64_t bytes = 0;
	res->n_outputs = 0;
	for (unsigned i = 0; i < t->n_outputs && i < FR_OUTPUTS_MAX; i++) {
		struct fr_output_result *o = &res->outputs[res->n_outputs++];
		snprintf(o->name, sizeof(o->name), "%s", t->outputs[i].name);
		o->segments = t->outputs[i].segments;
		o->bytes = t->outputs[i].bytes;
		o->rate = t->outputs[i].estimate > 0 ? t->outputs[i].estimate
						     : t->outputs[i].rate;
		if (o->rate <= 0 && res->seconds > 0) /* as a finished send's */
			o->rate = (double)o->bytes / res->seconds;
		if (!o->segments) /* none learned (a courier's is its model) */
			o->rate = 0;
		o->finished = -1;
		sum += o->segments;
		bytes += o->bytes;
	}
	if (res->segs_sent < sum) /* acknowledged, at least */
		res->segs_sent = sum;
	if (res->read_bytes < bytes) /* each was read to be sent */
		res->read_bytes = bytes;
	if (sum && !res->attempts) /* (counted once a try ends) */
		res->attempts = 1;
	fr_status_fini(&s);
}

static void *intr_watch(void *arg)
{
	char b, why[64], msg[2400];
	int n;

	(void)arg;
	while (read(intr.pipe[0], &b, 1) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&save_lock); /* never released: we exit */
	int sig = intr.sig;
	if (intr.over) /* its end is recorded: only the exit says it */
		_exit(128 + sig);
	snprintf(why, sizeof(why), "interrupted by %s",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	intr_record(why);
	if (isatty(STDERR_FILENO) && write(STDERR_FILENO, "\r\033[K", 4) < 0)
		_exit(128 + sig);
	if (intr.id[0])
		n = snprintf(msg, sizeof(msg),
			     "%s: %s; transfer %s is resumable: ferry resume "
			     "%s --config %s\n",
			     fr_log_tag, why, intr.id, intr.id, intr.c->path);
	else
		n = snprintf(msg, sizeof(msg),
			     "%s: %s while reading '%s'; nothing was sent: "
			     "send it again\n",
			     fr_log_tag, why, intr.source);
	if (write(STDERR_FILENO, msg, (size_t)n) < 0)
		_exit(128 + sig);
	if (intr.res) {
		intr.res->error = -EINTR;
		snprintf(intr.res->message, sizeof(intr.res->message), "%s", why);
		intr_fill(intr.res);
	}
	if (intr.res && intr.hooks && intr.hooks->interrupted)
		intr.hooks->interrupted(intr.hooks->arg, intr.res);
	fflush(stdout);
	_exit(128 + sig);
}

/* Watch for SIGINT and SIGTERM in this process (again after a fork:
 * threads do not survive it). res gets the interruption; hooks (may be
 * NULL) report it. */
static int intr_arm(const struct fr_config *c, struct fr_send_result *res,
		    const struct fr_send_hooks *hooks)
{
	struct sigaction sa = {0};
	pthread_t th;

	intr.c = c;
	intr.res = res;
	intr.hooks = hooks;
	intr.t0 = fr_now_s();
	if (intr.armed == getpid())
		return 0;
	if (pipe2(intr.pipe, O_CLOEXEC) < 0)
		return -errno;
	int rc = pthread_create(&th, NULL, intr_watch, NULL);
	if (rc)
		return -rc;
	pthread_detach(th);
	intr.armed = getpid();
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigset_t set; /* a child of a resume of several has them blocked */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return 0;
}

/* From here on an interruption names transfer t. */
static void intr_transfer(const struct fr_transfer *t)
{
	pthread_mutex_lock(&save_lock);
	snprintf(intr.id, sizeof(intr.id), "%s", t->id);
	snprintf(intr.dir, sizeof(intr.dir), "%s", t->dir);
	intr.over = false;
	pthread_mutex_unlock(&save_lock);
}

/* The transfer ended (done or failed): a signal from now on does not
 * make it interrupted. */
static void intr_over(void)
{
	pthread_mutex_lock(&save_lock);
	intr.over = true;
	pthread_mutex_unlock(&save_lock);
}

/* A resume of several: the parent passes the signal to its children
 * (a terminal's Ctrl-C reaches them too) and reports when they stop. */
static void on_signal_parent(int sig)
{
	intr.sig = sig;
	for (unsigned i = 0; i < intr.n_kids; i++)
		if (intr.kids[i] > 0)
			kill(intr.kids[i], sig);
}

/* ---- progress display ------------------------------------------------------ */

struct runner {
	const struct fr_config *c;
	struct fr_transfer *t;
	const struct fr_send_hooks *hooks; /* the progress shown, or NULL */
	struct fr_progress last;
	char output[96];
	uint64_t last_save_ns;
};


static void on_progress(void *arg, const struct fr_progress *p)
{
	struct runner *r = arg;
	struct fr_progress q = *p;

	if (intr.sig) /* the watcher is saying so: leave it the terminal */
		return;
	snprintf(q.output, sizeof(q.output), "%s", r->output);
	q.pid = (long)getpid();
	q.updated = (int64_t)time(NULL);
	r->last = q;
	uint64_t now = fr_now_ns();
	if (now - r->last_save_ns > 500000000ull) {
		fr_progress_save(r->t->dir, &q);
		r->last_save_ns = now;
	}
	if (r->hooks && r->hooks->progress)
		r->hooks->progress(r->hooks->arg, r->t->name, r->t->site, &q);
}

/* The progress shown is over: the try ended (its log follows). */
static void progress_end(const struct runner *r)
{
	if (r->hooks && r->hooks->progress_end)
		r->hooks->progress_end(r->hooks->arg);
}

/* ---- schedules ------------------------------------------------------------ */

/* May this transfer use address a at all (its --via, an output for its
 * type)? */
static bool usable(const struct fr_transfer *t, const struct fr_address *a)
{
	return (!t->via[0] || !strcmp(t->via, a->name)) &&
	       fr_output_for(a->type) != NULL;
}

bool fr_send_final(int rc)
{
	return rc == FR_E_CHANGED || rc == FR_E_NOT_OWNER || rc == FR_E_SOURCE;
}

/* The transfer waits, and its record and progress say why (status). */
static void show_waiting(struct fr_transfer *t, struct fr_progress *shown,
			 const char *why)
{
	snprintf(shown->state, sizeof(shown->state), "waiting");
	snprintf(shown->error, sizeof(shown->error), "%s", why);
	shown->pid = (long)getpid();
	shown->updated = (int64_t)time(NULL);
	fr_progress_save(t->dir, shown);
	snprintf(t->state, sizeof(t->state), "waiting");
	fr_transfer_save(t);
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
		time_t now = fr_schedule_now(), first = (time_t)-1;
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
			       "no address to %s%s%s is ever open to %s-priority "
			       "sends (see their schedules); send with a higher "
			       "--priority%s or change a schedule",
			       t->site, t->via[0] ? " named " : "", t->via,
			       fr_priority_name(t->priority),
			       t->via[0] ? ", without --via" : "");
			return FR_E_CONFIG;
		}
		if (!told) {
			char when[64], why[300];
			fr_when_text(first, when, sizeof(when));
			fr_log(FR_LOG_INFO,
			       "'%s' to %s waits: no address is open to "
			       "%s-priority sends now; %s opens at %s",
			       t->name, t->site, fr_priority_name(t->priority),
			       fa->name, when);
			snprintf(why, sizeof(why),
				 "schedule: no address open to %s priority; "
				 "%s opens at %s",
				 fr_priority_name(t->priority), fa->name, when);
			show_waiting(t, shown, why);
			told = true;
		}
		double left = difftime(first, fr_schedule_now());
		sleep(left > 30 ? 30 : left < 1 ? 1 : (unsigned)left);
	}
}

/* ---- one transfer, all attempts ---------------------------------------- */


int fr_send_by(struct fr_output *o, struct fr_send_ctx *sc,
	       struct fr_send_result *res, bool *began, char *err,
	       size_t errcap)
{
	const struct fr_manifest *m = sc->m;
	const struct fr_output_ops *ops = o->ops;
	uint8_t *have = calloc(m->n_segments + 1, 1);
	int rc;

	if (!have)
		return -ENOMEM;
	rc = ops->open(o, err, errcap);
	/* opened once the others had completed the package (a line that
	 * took long to come): no offer, which would leave the site a
	 * partial package of what it holds */
	if (rc == 0 && o->stopped && o->stopped(o->sock_arg))
		rc = -ECANCELED;
	if (rc == 0) {
		rc = ops->offer(o, sc, have, err, errcap);
		if (rc == FR_HAVE_COMPLETE) {
			/* held before we began, unless it was this transfer
			 * that sent it */
			if (!*began) {
				res->segs_skipped = m->n_segments;
				res->skipped_bytes = m->total_size;
				res->was_complete = true;
			}
			rc = 0;
		} else if (rc == FR_HAVE_PARTIAL) {
			double t1 = fr_now_s();
			rc = ops->send(o, sc, have, err, errcap);
			sc->send_s = fr_now_s() - t1;
			res->sent_bytes += sc->wire_bytes;
			res->sent_raw += sc->sent_raw;
			res->read_bytes += sc->read_bytes;
			res->segs_sent += sc->segs_sent;
			res->segs_resent += sc->segs_resent;
			/* what the site held when we began: the first offer
			 * answered, not one after a retry or a closed window */
			if (!*began) {
				res->segs_skipped = sc->segs_skipped;
				res->skipped_bytes = sc->skipped_raw;
				*began = true;
			}
			res->level_last = sc->level_last;
		}
	}
	ops->close(o);
	free(have);
	return rc;
}

/*
 * The network addresses a send may stripe over: every address to the
 * site with an output for its type (the courier's parcels go by `parcel
 * create`), whose schedule ever opens to the send's priority. None when
 * --via pins one.
 */
static unsigned stripe_addresses(const struct fr_transfer *t,
				 const struct fr_address *const *addrs,
				 unsigned n, const struct fr_address **out)
{
	unsigned k = 0;

	if ((t->via[0] && !t->courier) || fr_hook_flag("NO_STRIPE"))
		return 0;
	for (unsigned i = 0; i < n && k < FR_ASSIGN_MAX_OUT; i++)
		if (usable(t, addrs[i]) &&
		    fr_schedule_next_open(&addrs[i]->schedule, t->priority,
					  fr_schedule_now()) != (time_t)-1)
			out[k++] = addrs[i];
	return k;
}

/*
 * --courier: the site's courier address, and where to split the package
 * between its parcel (the tail) and the network (these lanes), so that
 * both would finish together. 1 with *cr, 0 when the network alone is
 * sooner (said), FR_E_CONFIG when there is no courier to use.
 */
/*
 * The parcel an earlier run of this send wrote: 1 while it may still
 * bring the tail (*cr then waits for it and writes none), 0 when it has
 * (or the network has carried what it holds), -1 when a new split is to
 * be made (it is gone, or its run died writing it).
 */
static int parcel_on_its_way(const struct fr_config *c, struct fr_transfer *t,
			     const struct fr_manifest *m,
			     struct fr_stripe_courier *cr)
{
	struct fr_parcel_info pi;
	const struct fr_address *all[64];
	unsigned na = fr_config_addresses(c, t->site, all, 64);

	if (fr_parcel_find(c, t->parcel, &pi) < 0 || pi.n_segments !=
	    m->n_segments || !strcmp(pi.state, "creating") ||
	    !strcmp(pi.state, "interrupted")) {
		fr_log(FR_LOG_INFO,
		       "'%s' to %s: parcel %.12s of the last run was not "
		       "written whole; a new split is made",
		       t->name, t->site, t->parcel);
		t->parcel[0] = '\0';
		return -1;
	}
	bool received = !strcmp(pi.state, "received");
	if (strcmp(pi.state, "created") && strcmp(pi.state, "shipped") &&
	    !received) {
		fr_log(FR_LOG_INFO,
		       "'%s' to %s: parcel %.12s is %s; the network sends what "
		       "the site still lacks",
		       t->name, t->site, pi.id, pi.state);
		return 0;
	}
	for (unsigned i = 0; i < na && !cr->a; i++)
		if (all[i]->type == FR_ADDR_COURIER &&
		    !strcmp(all[i]->name, pi.address) &&
		    fr_courier_model_of(all[i], &cr->model))
			cr->a = all[i];
	if (!cr->a) {
		fr_log(FR_LOG_WARN,
		       "'%s' to %s: parcel %.12s went by courier address '%s', "
		       "which '%s' no longer has; the network sends it all",
		       t->name, t->site, pi.id, pi.address, c->path);
		return 0;
	}
	/* written: what is left of it is the way and the import */
	int64_t since = pi.shipped ? pi.shipped : pi.created;
	cr->model.write_rate = 0;
	cr->model.transit_s = fmax(0, (double)since + cr->model.transit_s -
					      (double)time(NULL));
	cr->first = pi.first < m->n_segments ? pi.first : m->n_segments;
	uint64_t tail = 0;
	for (uint32_t s = cr->first; s < m->n_segments; s++)
		tail += m->segments[s].length;
	cr->eta = received ? 0 : fr_courier_time(&cr->model, tail);
	cr->written = true;
	if (received) { /* (parcel list heard so): credited what it brought */
		fr_log(FR_LOG_INFO,
		       "'%s' to %s: parcel %.12s (segments %u to %u) was "
		       "received at the site; the network sends what it still "
		       "lacks",
		       t->name, t->site, pi.id, cr->first, m->n_segments - 1);
		return 1;
	}
	char e[32];
	fr_clock_str(cr->eta, e, sizeof(e));
	fr_log(FR_LOG_INFO,
	       "'%s' to %s: parcel %.12s (segments %u to %u) is %s by %s, "
	       "expected in %s; the network sends the first %u",
	       t->name, t->site, pi.id, cr->first, m->n_segments - 1,
	       pi.state, cr->a->name, e, cr->first);
	return 1;
}

/* The site's courier address with media and a transit time (its model
 * in *model), or NULL; said as an error when `say`. */
static const struct fr_address *courier_of(const struct fr_config *c,
					   const char *site,
					   struct fr_courier_model *model,
					   bool say)
{
	const struct fr_address *all[64];
	unsigned na = fr_config_addresses(c, site, all, 64);

	for (unsigned i = 0; i < na; i++)
		if (all[i]->type == FR_ADDR_COURIER &&
		    fr_courier_model_of(all[i], model))
			return all[i];
	if (say)
		fr_log(FR_LOG_ERROR,
		       "--courier: site %s has no courier address with media "
		       "and a transit time in '%s'",
		       site, c->path);
	return NULL;
}

static int courier_split(const struct fr_config *c, struct fr_transfer *t,
			 const struct fr_manifest *m,
			 const struct fr_address *const *lanes, unsigned n,
			 const uint8_t *held, struct fr_stripe_courier *cr)
{
	double rates[FR_ASSIGN_MAX_OUT], from[FR_ASSIGN_MAX_OUT], eta;
	int src;

	memset(cr, 0, sizeof(*cr));
	int w = t->parcel[0] ? parcel_on_its_way(c, t, m, cr) : -1;
	if (w >= 0)
		return w;
	cr->a = courier_of(c, t->site, &cr->model,
			   t->courier != FR_COURIER_IF_ANY);
	if (!cr->a && t->courier == FR_COURIER_IF_ANY) {
		fr_log(FR_LOG_DEBUG,
		       "site %s has no courier address with media and a "
		       "transit time: the network alone",
		       t->site);
		return 0;
	}
	if (!cr->a)
		return FR_E_CONFIG;
	uint32_t *bytes = malloc((m->n_segments + 1) * sizeof(*bytes));
	uint64_t want = 0; /* what the site does not hold */
	if (!bytes)
		return -ENOMEM;
	for (uint32_t s = 0; s < m->n_segments; s++) {
		bytes[s] = held && held[s] ? 0 : m->segments[s].length;
		want += bytes[s];
	}
	/* a lane closed now carries from when its window opens */
	time_t now = fr_schedule_now();
	for (unsigned i = 0; i < n; i++) {
		/* as plan weighs it: capped by its rate limit now */
		double cap = fr_link_limit(lanes[i], now);
		rates[i] = fr_link_rate(c, lanes[i], &src);
		if (cap > 0 && cap < rates[i])
			rates[i] = cap;
		time_t o = fr_schedule_next_open(&lanes[i]->schedule,
						 t->priority, now);
		from[i] = o == (time_t)-1 ? -1 : difftime(o, now);
	}
	int64_t k = fr_assign_split(m->n_segments, bytes, rates, from, n,
				    &cr->model, &eta);
	uint32_t in_tail = 0; /* of the parcel's, those the site lacks */
	for (uint32_t s = k < 0 ? m->n_segments : (uint32_t)k;
	     s < m->n_segments; s++)
		in_tail += bytes[s] > 0 || !m->segments[s].length;
	free(bytes);
	char e[32];
	fr_clock_str(eta, e, sizeof(e));
	if (k < 0 || (uint32_t)k >= m->n_segments || !in_tail) {
		char pe[32];
		fr_clock_str(fr_courier_time(&cr->model, want), pe, sizeof(pe));
		fr_log(FR_LOG_INFO,
		       "'%s' to %s: the network alone (%s) is sooner than a "
		       "parcel by %s (%s: %s): no parcel",
		       t->name, t->site, e, cr->a->name,
		       want < m->total_size ? "of what the site lacks"
					    : "the whole package",
		       pe);
		return 0;
	}
	cr->first = (uint32_t)k;
	cr->eta = eta;
	char lack[64] = "";
	if (in_tail < m->n_segments - cr->first)
		snprintf(lack, sizeof(lack), " (the %u the site lacks)",
			 in_tail);
	if (cr->first)
		fr_log(FR_LOG_INFO,
		       "'%s' to %s: a parcel by %s carries segments %u to "
		       "%u%s, the network the first %u; both expected in %s",
		       t->name, t->site, cr->a->name, cr->first,
		       m->n_segments - 1, lack, cr->first, e);
	else
		fr_log(FR_LOG_INFO,
		       "'%s' to %s: a parcel by %s carries segments 0 to %u, "
		       "the whole package, expected in %s; the network sends "
		       "meanwhile, until it is imported",
		       t->name, t->site, cr->a->name, m->n_segments - 1, e);
	return 1;
}

/* --courier needs a network address open to the send's priority some
 * time (the parcel is registered, and its receipt comes back, that
 * way): 0, or FR_E_CONFIG said. */
static int courier_needs_lanes(const struct fr_config *c,
			       const struct fr_transfer *t,
			       const struct fr_address *const *addrs,
			       unsigned n, unsigned n_lanes)
{
	bool net = false;

	if (t->courier != FR_COURIER_YES || n_lanes)
		return 0;
	for (unsigned i = 0; i < n; i++)
		net |= addrs[i]->type != FR_ADDR_COURIER;
	if (net)
		fr_log(FR_LOG_ERROR,
		       "--courier: no network address of site %s is ever open "
		       "to %s-priority sends: a parcel needs one (it is "
		       "registered, and its receipt comes back, that way)",
		       t->site, fr_priority_name(t->priority));
	else
		fr_log(FR_LOG_ERROR,
		       "--courier: site %s has no network address in '%s': a "
		       "parcel needs one (it is registered, and its receipt "
		       "comes back, that way)",
		       t->site, c->path);
	return FR_E_CONFIG;
}

/* What the one output of a send that did not stripe carried. */
static void one_output(struct fr_send_result *res, const struct fr_address *a,
		       double secs)
{
	struct fr_output_result *o = &res->outputs[0];

	res->n_outputs = 1;
	snprintf(o->name, sizeof(o->name), "%s", a->name);
	o->segments = res->n_segments - res->segs_skipped;
	o->bytes = res->total_bytes - res->skipped_bytes;
	o->finished = secs;
	o->rate = secs > 0 ? (double)o->bytes / secs : 0;
}

/* record_outcome ran in this process (resume_failed need not) */
static bool outcome_recorded;

/* The transfer's end, recorded for status: done or failed, its progress
 * complete or the error, and what was left out. */
static void record_outcome(struct fr_transfer *t, const struct fr_manifest *m,
			   const struct fr_send_result *res,
			   const struct fr_progress *last, int rc,
			   const char *err)
{
	outcome_recorded = true;
	struct fr_progress p = *last;

	p.total_bytes = m->total_size;
	p.n_segments = m->n_segments;
	p.pid = 0;
	p.updated = (int64_t)time(NULL);
	if (rc == 0) {
		p.done_bytes = m->total_size;
		p.wire_bytes = res->sent_bytes;
		p.segs_done = m->n_segments;
		p.segs_held = res->segs_skipped;
		p.held_bytes = res->skipped_bytes;
		p.rate = res->seconds > 0 ? (double)(m->total_size -
						     res->skipped_bytes) /
						    res->seconds
					  : 0;
		p.eta = 0;
		p.error[0] = '\0';
		t->parcel[0] = '\0'; /* nothing waits for it any more */
	} else {
		snprintf(p.error, sizeof(p.error), "%s", err);
	}
	snprintf(p.state, sizeof(p.state), "%s", rc == 0 ? "done" : "failed");
	snprintf(t->state, sizeof(t->state), "%s", p.state);
	t->left_out = res->left_out.n; /* for status */
	fr_progress_save(t->dir, &p);
	fr_transfer_save(t);
}

/* The manifest to offer at this attempt: every hash made so far (made
 * again only when more are known; its compressed form with it). */
static int offer_now(struct fr_known *known, uint8_t **mf, size_t *mf_len,
		     uint32_t *mf_known, struct fr_offer_z *oz)
{
	if (*mf && *mf_known == atomic_load(&known->n))
		return 0;
	free(*mf);
	*mf = NULL;
	*mf_known = atomic_load(&known->n);
	free(oz->body);
	oz->body = NULL;
	return fr_known_offer(known, mf, mf_len);
}

/* A striped run leaves <transfer>/outputs (stripe.c); a run that follows
 * starts without the last one's, which a single output never rewrites. */
static void drop_outputs(const struct fr_transfer *t)
{
	char path[1200];

	if (!fr_path_fmt(path, sizeof(path), "%s/outputs", t->dir))
		unlink(path);
}

/* The progress of a run under way, before its outputs report any: for
 * status, this process is the sender now (a striped run's outputs may
 * dial, or wait for their windows, for long). */
static void progress_phase(struct runner *r, const char *phase)
{
	struct fr_progress p = r->last;

	snprintf(p.state, sizeof(p.state), "sending");
	snprintf(p.output, sizeof(p.output), "%s", r->output);
	p.error[0] = '\0';
	snprintf(p.phase, sizeof(p.phase), "%s", phase);
	if (phase[0]) /* nothing moves yet */
		p.eta = -1, p.rate = 0;
	p.pid = (long)getpid();
	p.updated = (int64_t)time(NULL);
	fr_progress_save(r->t->dir, &p);
}

static void progress_begin(struct runner *r)
{
	progress_phase(r, "");
}

/* Over every lane at once (and the courier): stripe.c. */
static int run_striped(const struct fr_config *c, struct fr_transfer *t,
		       struct fr_known *known, bool single, struct runner *r,
		       const struct fr_address *const *lanes, unsigned n,
		       const struct fr_stripe_courier *cr,
		       struct fr_send_result *res, char *err, size_t cap)
{
	size_t at = (size_t)snprintf(r->output, sizeof(r->output), "%u link%s",
				     n, n == 1 ? "" : "s");
	for (unsigned i = 0; i < n && at < sizeof(r->output); i++)
		at += (size_t)snprintf(r->output + at, sizeof(r->output) - at,
				       "%s%s", i ? "+" : ": ", lanes[i]->name);
	fr_log(FR_LOG_INFO, "'%s' to %s over %s at once", t->name, t->site,
	       r->output);
	progress_begin(r);
	int rc = fr_stripe_run(c, t, known, single, cr, lanes, n, on_progress,
			       r, res, err, cap);
	progress_end(r);
	return rc;
}

/* Before the next try of a send over one address: said, shown in the
 * progress for status, waited (busy: the busy answers retried so far,
 * after FR_BUSY_RETRY_MS; else retry-delay). */
static void retry_wait(const struct fr_config *c, const struct fr_transfer *t,
		       const struct runner *r, int busy, int attempt,
		       const char *err)
{
	unsigned ms = busy ? FR_BUSY_RETRY_MS : c->retry_delay_ms;

	if (busy)
		fr_log(FR_LOG_INFO, "%s is busy; trying '%s' again in %.0f s "
		       "(%d of %d)",
		       t->site, t->name, ms / 1000.0, busy, FR_BUSY_RETRIES);
	else
		fr_log(FR_LOG_INFO, "retry %d of %d for '%s' to %s in %.0f s",
		       attempt, c->retries, t->name, t->site, ms / 1000.0);
	struct fr_progress p = r->last;
	snprintf(p.state, sizeof(p.state), "waiting");
	snprintf(p.error, sizeof(p.error), "%s", err);
	/* (a try that failed before it moved a byte, a dial: this process
	 * is the sender all the same) */
	if (!p.output[0])
		snprintf(p.output, sizeof(p.output), "%s", r->output);
	p.phase[0] = '\0';
	p.eta = -1;
	p.pid = (long)getpid();
	p.updated = (int64_t)time(NULL);
	fr_progress_save(t->dir, &p);
	usleep(ms * 1000u);
}

/* A send over one address at a time: what its tries share. */
struct one_by_one {
	const struct fr_config *c;
	struct fr_transfer *t;
	struct fr_known *known;
	bool single;
	struct runner *r;
	struct fr_send_result *res;
	double t0;
	uint8_t *mf;		/* the offer's manifest, and the hashes */
	size_t mf_len;		/* known when it was made */
	uint32_t mf_known;
	struct fr_offer_z oz;
	bool began;		/* an offer was answered: the start is known */
	bool plain_retried, whole_retried;
	char err[768];
};

/* The output for address a if the send may use it now (NULL: skipped;
 * *closed set when its schedule is what stops it). */
static const struct fr_output_ops *usable_output(const struct fr_transfer *t,
						 const struct fr_address *a,
						 bool *closed)
{
	if (t->via[0] && strcmp(t->via, a->name))
		return NULL;
	if (!fr_schedule_allows(&a->schedule, t->priority, fr_schedule_now())) {
		fr_log(FR_LOG_DEBUG,
		       "address %s %s is closed to %s-priority sends now; "
		       "skipping it",
		       a->site, a->name, fr_priority_name(t->priority));
		*closed = true;
		return NULL;
	}
	const struct fr_output_ops *ops = fr_output_for(a->type);
	if (!ops && a->type != FR_ADDR_COURIER) /* its parcels: --courier */
		fr_log(FR_LOG_WARN,
		       "address %s %s: this type of output is not available in "
		       "this version; skipping it",
		       a->site, a->name);
	return ops;
}

/* What a send over one RAS output's open waits for, for status. */
static void single_opening(void *arg, const char *phase)
{
	progress_phase(arg, phase);
}

/* A send over one address that carried enough on the wire (4 MiB, or
 * 10 s: a package that compresses well may put so little on it that the
 * buffers on the way absorb it all) keeps what it moved as the address's
 * rate, as a striped one does: not under a rate limit, nor with another
 * send of this site (or a `bench link`) on the address; over the time
 * the link moved, not the seconds it went quiet (an outage, a stall),
 * and not at all when it was quiet longer than it moved. */
static void learn_single(const struct fr_config *c, const struct fr_address *a,
			 const struct fr_send_ctx *sc)
{
	double moved_s = sc->send_s - sc->quiet_s;

	if (sc->send_s <= 0 || !sc->sent_raw || moved_s < sc->quiet_s ||
	    (sc->wire_bytes < FR_LEARN_MIN_BYTES && sc->send_s < FR_LEARN_MIN_S) ||
	    a->ratelimit.mode != FR_RL_NONE || sc->shared ||
	    fr_link_shared(c, a))
		return;
	fr_link_save(c, a, (double)sc->wire_bytes / moved_s,
		     (int64_t)time(NULL));
}

/* One try of the send over address a by ops, with the offer b->mf. */
static int send_over(struct one_by_one *b, const struct fr_address *a,
		     const struct fr_output_ops *ops)
{
	int rc;
	struct fr_output o = {.ops = ops, .c = b->c, .a = a,
			      .sock_arg = b->r, .state_is = single_opening,
			      .senders = fr_link_senders};
	struct fr_send_ctx sc = {
		.known = b->known,
		.m = b->known->m,
		.mf = b->mf,
		.mf_len = b->mf_len,
		.root = b->t->source,
		.single = b->single,
		.level = b->t->level,
		.priority = b->t->priority,
		.offer_z = &b->oz,
		.workers = fr_workq_count(),
		.progress = on_progress,
		.progress_arg = b->r,
	};
	if (strcmp(ops->name, a->name))
		snprintf(b->r->output, sizeof(b->r->output), "%s (%s)", a->name,
			 ops->name);
	else
		snprintf(b->r->output, sizeof(b->r->output), "%s", a->name);
	progress_begin(b->r); /* (a line may take long to dial) */
	rc = fr_send_by(&o, &sc, b->res, &b->began, b->err, sizeof(b->err));
	if (rc != -ENOMEM)
		progress_end(b->r);
	if (rc == 0) {
		one_output(b->res, a, fr_now_s() - b->t0);
		learn_single(b->c, a, &sc);
	}
	return rc;
}

/*
 * One attempt: the addresses in the order configured, until one
 * completes the send or says what no other address can change. *tried:
 * an address was used; *closed: one was skipped for its schedule.
 */
static int try_addresses(struct one_by_one *b, const struct fr_address **addrs,
			 unsigned n, bool *tried, bool *closed)
{
	int rc = FR_E_CONFIG;

	for (unsigned i = 0; i < n; i++) {
		const struct fr_address *a = addrs[i];
		const struct fr_output_ops *ops = usable_output(b->t, a, closed);
		if (!ops)
			continue;
		*tried = true;
		rc = offer_now(b->known, &b->mf, &b->mf_len, &b->mf_known,
			       &b->oz);
		if (rc < 0) {
			snprintf(b->err, sizeof(b->err),
				 "cannot encode the manifest: %s",
				 fr_strerror(rc));
			return rc;
		}
		rc = send_over(b, a, ops);
		if (rc == 0 || rc == -ENOMEM)
			return rc;
		if ((b->oz.refused && !b->plain_retried) ||
		    (b->oz.plain_frames && !b->whole_retried)) {
			/* an older receiver: the same address at once,
			 * with the manifest plain or the frames whole */
			fr_log(FR_LOG_WARN, "%s", b->err);
			b->plain_retried |= b->oz.refused;
			b->whole_retried |= b->oz.plain_frames;
			i--;
			continue;
		}
		if (rc == FR_E_CLOSED) {
			/* not a failure: wait for the next window, or go
			 * on by the first address open now */
			fr_log(FR_LOG_INFO, "'%s' to %s stops: %s", b->t->name,
			       b->t->site, b->err);
			return rc;
		}
		/* busy is the normal course: it is tried again */
		fr_log(rc == -EBUSY ? FR_LOG_INFO : FR_LOG_ERROR, "%s", b->err);
		/* what another address or a retry cannot fix */
		if (fr_send_final(rc) || rc == FR_E_AUTH)
			return rc;
	}
	return rc;
}

/* --courier, before a split is made: what the site holds (held[s] = 1),
 * asked as plan asks through the LAN addresses among lanes that are open
 * now. FR_HAVE_COMPLETE when it holds the package; else 0 (held all zero
 * when no address answered, or none is open now). */
static int courier_held(struct one_by_one *b,
			const struct fr_address *const *lanes, unsigned n,
			uint8_t *held)
{
	const struct fr_address *open[FR_ASSIGN_MAX_OUT];
	time_t now = fr_schedule_now();
	unsigned k = 0;

	if (b->t->parcel[0]) /* an earlier run's parcel may be on its way */
		return 0;
	for (unsigned i = 0; i < n && k < FR_ASSIGN_MAX_OUT; i++)
		if (lanes[i]->type == FR_ADDR_LAN &&
		    fr_schedule_allows(&lanes[i]->schedule, b->t->priority, now))
			open[k++] = lanes[i];
	if (!k || offer_now(b->known, &b->mf, &b->mf_len, &b->mf_known,
			    &b->oz) < 0)
		return 0;
	int rc = fr_site_held(b->c, b->t->priority, open, k, b->known->m,
			      b->mf, b->mf_len, held);
	if (rc < 0)
		memset(held, 0, b->known->m->n_segments);
	return rc == FR_HAVE_COMPLETE ? rc : 0;
}

static int run_transfer(const struct fr_config *c, struct fr_transfer *t,
			struct fr_known *known, bool single,
			const struct fr_send_hooks *hooks,
			struct fr_send_result *res)
{
	const struct fr_manifest *m = known->m;
	const struct fr_address *addrs[64];
	unsigned n = fr_config_addresses(c, t->site, addrs, 64);
	struct runner r = {.c = c, .t = t, .hooks = hooks};
	struct one_by_one b = {.c = c, .t = t, .known = known,
			       .single = single, .r = &r, .res = res,
			       .t0 = fr_now_s()};
	int rc = FR_E_CONFIG;
	struct fr_slots sl = {.all_fd = -1, .site_fd = -1};
	int busy = 0; /* busy answers retried at once so far */
	bool soon = false, split_made = false;
	struct fr_stripe_courier cr;
	int split = 0; /* --courier: 1 when a parcel carries the tail */

	if (n == 0) {
		fr_log(FR_LOG_ERROR,
		       "no address for site %s in '%s' (add an [address %s "
		       "NAME] section)",
		       t->site, c->path, t->site);
		return FR_E_CONFIG;
	}
	drop_outputs(t);
window:
	r.last.eta = -1; /* (unknown until something moves) */
	r.last.total_bytes = m->total_size;
	r.last.n_segments = m->n_segments;
	/* (what the package is, said even if a signal ends the wait) */
	res->n_segments = m->n_segments;
	res->total_bytes = m->total_size;
	const struct fr_address *lanes[FR_ASSIGN_MAX_OUT];
	unsigned n_lanes = stripe_addresses(t, addrs, n, lanes);
	/* --courier: split before any window is waited for, the network
	 * counted from when its windows open (a parcel need not wait for a
	 * network that is closed now) */
	if (t->courier && !split_made) {
		split_made = true;
		uint8_t *held = calloc(m->n_segments + 1, 1);
		if ((split = courier_needs_lanes(c, t, addrs, n, n_lanes)) == 0 &&
		    !held)
			split = -ENOMEM;
		if (split == 0 && courier_held(&b, lanes, n_lanes, held) ==
				      FR_HAVE_COMPLETE)
			fr_log(FR_LOG_INFO,
			       "'%s' to %s: the site holds it complete: no "
			       "parcel", t->name, t->site);
		else if (split == 0)
			split = courier_split(c, t, m, lanes, n_lanes, held,
					      &cr);
		free(held);
		if (split < 0) {
			rc = split;
			snprintf(b.err, sizeof(b.err), "%s", fr_log_last_error());
			goto over;
		}
	}
	/* the time spent waiting for a window or a send slot: what the
	 * summary's rate leaves out */
	double w0 = fr_now_s();
	intr.wait_from = w0;
	int wrc = split ? 0 : wait_for_window(t, addrs, n, &r.last);
	struct slot_wait sw = {.t = t, .shown = &r.last};
	rc = wrc < 0 ? wrc
		     : fr_slots_acquire(c, t->site, t->priority, slot_waiting,
					&sw, &sl);
	intr.wait_from = 0;
	if (fr_now_s() - w0 >= 1.0)
		res->waited_s += fr_now_s() - w0;
	if (wrc < 0) {
		free(b.oz.body); /* from before a window closed */
		free(b.mf);
		return rc;
	}
	if (rc < 0) {
		fr_log(FR_LOG_ERROR, "cannot take a send slot: %s",
		       fr_strerror(rc));
		free(b.oz.body);
		free(b.mf);
		return rc;
	}
	res->n_segments = m->n_segments;
	res->total_bytes = m->total_size;
	snprintf(t->state, sizeof(t->state), "sending");
	fr_transfer_save(t);
	/* (a package of no file data has nothing to stripe: one address
	 * carries its listing) */
	if (m->n_segments && (n_lanes >= 2 || (split && n_lanes))) {
		rc = run_striped(c, t, known, single, &r, lanes, n_lanes,
				 split ? &cr : NULL, res, b.err, sizeof(b.err));
		goto over;
	}
	for (int attempt = 0; attempt <= c->retries; attempt++) {
		if (attempt > 0 || soon)
			retry_wait(c, t, &r, soon ? busy : 0, attempt, b.err);
		res->attempts++;
		bool tried = false, closed = false;
		rc = try_addresses(&b, addrs, n, &tried, &closed);
		if ((!tried && closed) || rc == FR_E_CLOSED) {
			/* the window closed while we waited, or while we
			 * sent: wait again */
			fr_slots_release(&sl);
			res->attempts--;
			goto window;
		}
		if (!tried) {
			fr_log(FR_LOG_ERROR, "no usable address for site %s%s%s",
			       t->site, t->via[0] ? " named " : "", t->via);
			rc = FR_E_CONFIG;
			break;
		}
		if (rc == 0 || fr_send_final(rc) || rc == FR_E_AUTH ||
		    rc == -ENOMEM)
			break;
		soon = rc == -EBUSY && c->retries > 0 && busy < FR_BUSY_RETRIES;
		if (soon) {
			busy++;
			attempt--; /* not one of `retries` */
		}
	}
	if (rc == -EBUSY) /* said at info while it was tried again */
		fr_log(FR_LOG_ERROR, "%s", b.err);
over:
	fr_slots_release(&sl);
	free(b.oz.body);
	free(b.mf);
	intr_over();
	res->seconds = fr_now_s() - b.t0;
	res->error = rc;
	if (rc)
		snprintf(res->message, sizeof(res->message), "%.*s",
			 (int)sizeof(res->message) - 1,
			 b.err[0] ? b.err : fr_log_last_error());
	/* a run that sent nothing (the site held it all, or no address
	 * could be reached) reported no progress: its output is the last
	 * address it tried */
	if (!r.last.output[0])
		snprintf(r.last.output, sizeof(r.last.output), "%s", r.output);
	/* a run over one output that failed still says what it carried */
	if (rc && !res->n_outputs && r.last.segs_done > res->segs_skipped &&
	    r.last.output[0]) {
		struct fr_output_result *o = &res->outputs[res->n_outputs++];
		snprintf(o->name, sizeof(o->name), "%.*s",
			 (int)strcspn(r.last.output, " "), r.last.output);
		o->segments = r.last.segs_done - res->segs_skipped;
		o->bytes = r.last.done_bytes > res->skipped_bytes
				   ? r.last.done_bytes - res->skipped_bytes
				   : 0;
		o->finished = -1;
		o->rate = res->seconds > 0 ? (double)o->bytes / res->seconds : 0;
	}
	record_outcome(t, m, res, &r.last, rc, b.err);
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
		return -EALREADY;
	}
	return fd;
}

/* Scan, record and run one transfer. t has source, name, site, via,
 * priority and level set. */
static int prepare_and_run(const struct fr_config *c, struct fr_transfer *t,
			   const struct fr_send_hooks *hooks,
			   struct fr_send_result *res)
{
	struct fr_manifest prev = {0}, m = {0};
	char prev_dir[1300], odir[1200], hex[2 * FR_HASH_LEN + 1];
	struct stat st;
	struct fr_known known;
	bool known_open = false;
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
	/* before any record is made (a resume whose parcel is on its way
	 * needs no courier address: it waits for that parcel) */
	if (t->courier == FR_COURIER_YES && !t->parcel[0]) {
		const struct fr_address *addrs[64], *lanes[FR_ASSIGN_MAX_OUT];
		unsigned n = fr_config_addresses(c, t->site, addrs, 64);
		struct fr_courier_model cm;
		if (!courier_of(c, t->site, &cm, true))
			return FR_E_CONFIG;
		if ((rc = courier_needs_lanes(c, t, addrs, n,
					      stripe_addresses(t, addrs, n,
							       lanes))) < 0)
			return rc;
	}
	if (stat(t->source, &st) < 0) {
		char ep[FR_ESC_MAX];
		rc = -errno;
		fr_log(FR_LOG_ERROR, "cannot send '%s': %s",
		       fr_esc(t->source, ep, sizeof(ep)), strerror(-rc));
		return rc;
	}
	find_previous(c, t->name, t->site, &prev, prev_dir, sizeof(prev_dir));
	double t0 = fr_now_s();
	bool single;
	fr_left_list_fini(&res->left_out);
	res->skip_special = t->skip_special;
	/* the listing only: the segments are hashed as they are read to be
	 * sent, so the first goes out at once and each byte is read once */
	rc = fr_scan_list(t->source, t->name, c->seg_size, &m, &single,
			  &res->left_out);
	if (rc < 0) {
		fr_manifest_fini(&prev);
		return rc;
	}
	m.open = true;
	if ((rc = fr_manifest_seal(&m)) < 0) {
		fr_log(FR_LOG_ERROR, "cannot carry '%s': %s", t->name,
		       fr_strerror(rc));
		goto out;
	}
	char sz[32];
	fr_log(FR_LOG_DEBUG,
	       "listing of '%s': %u entries, %s, %u segments, in %.2f s",
	       t->name, m.n_entries,
	       fr_human_bytes(m.total_size, sz, sizeof(sz)), m.n_segments,
	       fr_now_s() - t0);
	/* a transfer is named by its listing, known before any hash */
	fr_hex(m.lid, FR_HASH_LEN, hex);
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
	/* a parcel an earlier run wrote may still bring the tail */
	if (t->courier && !t->parcel[0]) {
		struct fr_transfer old;
		if (fr_transfer_load(t->dir, &old) == 0)
			snprintf(t->parcel, sizeof(t->parcel), "%s", old.parcel);
	}
	/* the hashes an earlier send of this listing made hold, if it read
	 * the same source: another tree can list alike (names, sizes and
	 * times to the clock's tick) and hold other bytes */
	bool same_source = true;
	struct fr_transfer was;
	if (fr_transfer_load(t->dir, &was) == 0 && was.source[0] &&
	    strcmp(was.source, t->source)) {
		char hp[1400];
		same_source = false;
		if (!fr_path_fmt(hp, sizeof(hp), "%s/hashes", t->dir))
			unlink(hp);
		fr_log(FR_LOG_DEBUG,
		       "'%s': the earlier send of this listing read '%s': its "
		       "hashes are not taken",
		       t->name, was.source);
	}
	if ((rc = fr_known_open(&known, &m, t->dir,
				prev_dir[0] && same_source ? &prev : NULL)) < 0)
		goto out;
	known_open = true;
	if (atomic_load(&known.n))
		fr_log(FR_LOG_DEBUG, "'%s': %u of %u segments hashed before",
		       t->name, atomic_load(&known.n), m.n_segments);
	snprintf(res->transfer, sizeof(res->transfer), "%s", t->id);
	snprintf(res->name, sizeof(res->name), "%s", t->name);
	snprintf(res->site, sizeof(res->site), "%s", t->site);
	res->level_auto = t->level < 0;
	res->level_last = t->level > 0 ? t->level : 0;
	intr_transfer(t);
	uint32_t hashed_before = atomic_load(&known.n);
	rc = run_transfer(c, t, &known, single, hooks, res);
	if (rc == FR_E_CHANGED && hashed_before) {
		/* the hashes an earlier send made were taken on the listing's
		 * word (sizes and times): a file that changed and kept both
		 * proves them stale. Read again, from the start, once. */
		fr_log(FR_LOG_WARN,
		       "'%s': the hashes an earlier send made of it no longer "
		       "hold (a file changed and kept its size and time); they "
		       "are dropped and the package is read again",
		       t->name);
		if ((rc = fr_known_forget(&known)) < 0) {
			known_open = false; /* (closed) */
			goto out;
		}
		res->error = 0;
		res->message[0] = '\0';
		rc = run_transfer(c, t, &known, single, hooks, res);
	}
	if (rc == 0 && res->left_out.n && !t->skip_special)
		rc = res->error = FR_E_LEFT_OUT;
out:
	if (known_open)
		fr_known_close(&known);
	if (lock >= 0)
		close(lock);
	fr_manifest_fini(&prev);
	fr_manifest_fini(&m);
	return rc;
}

/* A transfer failed, maybe before it began: the report says why, in
 * the words logged by this process (a resume's child). */
static void result_failed(struct fr_send_result *res, int rc)
{
	res->error = rc;
	if (rc == FR_E_LEFT_OUT)
		snprintf(res->message, sizeof(res->message),
			 "%s: %u entries (left_out)", fr_strerror(rc),
			 res->left_out.n);
	else if (!res->message[0])
		snprintf(res->message, sizeof(res->message), "%s",
			 fr_log_last_error()[0] ? fr_log_last_error()
						: fr_strerror(rc));
}

/* --via NAME: an address of the site, and one that sends (a courier's
 * parcels go by --courier or parcel create). */
static int via_check(const struct fr_config *c, const char *site,
		     const char *via)
{
	const struct fr_address *all[64];
	unsigned n = fr_config_addresses(c, site, all, 64);
	char names[512] = "";
	size_t at = 0;

	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(all[i]->name, via)) {
			if (all[i]->type != FR_ADDR_COURIER)
				return 0;
			fr_log(FR_LOG_ERROR,
			       "--via %s: address %s %s is a courier; its "
			       "parcels go by 'send --courier' or 'parcel "
			       "create --via %s'",
			       via, site, via, via);
			return FR_E_CONFIG;
		}
		if (at < sizeof(names))
			at += (size_t)snprintf(names + at, sizeof(names) - at,
					       "%s%s", i ? ", " : "",
					       all[i]->name);
	}
	fr_log(FR_LOG_ERROR, "--via %s: site %s has no such address in '%s' "
	       "(its addresses: %s)",
	       via, site, c->path, names);
	return FR_E_CONFIG;
}

static int send_one(const struct fr_config *c, const struct fr_send_opts *o,
		    struct fr_send_result *res)
{
	struct fr_transfer t = {0};
	const struct fr_address *addrs[1];
	char abs[4096];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (!fr_config_addresses(c, o->site, addrs, 1)) {
		char sites[256];
		fr_config_sites(c, sites, sizeof(sites));
		fr_log(FR_LOG_ERROR,
		       "no address for site '%s' in '%s' (%s%s%sadd an "
		       "[address %s NAME] section)",
		       o->site, c->path, sites[0] ? "sites with addresses: " : "",
		       sites, sites[0] ? "; or " : "", o->site);
		return FR_E_CONFIG;
	}
	if (o->via && (rc = via_check(c, o->site, o->via)) < 0)
		return rc;
	if ((rc = fr_package_source(o->path, o->name, "send", abs, sizeof(abs),
				    t.name, sizeof(t.name))) < 0)
		return rc;
	snprintf(t.source, sizeof(t.source), "%s", abs);
	snprintf(t.site, sizeof(t.site), "%s", o->site);
	snprintf(t.via, sizeof(t.via), "%s", o->via ? o->via : "");
	t.priority = o->priority;
	t.level = o->level >= -1 ? o->level : c->level;
	t.skip_special = o->skip_special;
	t.courier = o->courier;
	snprintf(res->name, sizeof(res->name), "%s", t.name);
	snprintf(res->site, sizeof(res->site), "%s", t.site);
	snprintf(intr.source, sizeof(intr.source), "%s", t.source);
	if ((rc = intr_arm(c, res, o->hooks)) < 0 ||
	    (rc = fr_workq_start(c->workers)) < 0)
		return rc;
	return prepare_and_run(c, &t, o->hooks, res);
}

void fr_send_result_fini(struct fr_send_result *r)
{
	fr_left_list_fini(&r->left_out);
}

int fr_send(const struct fr_config *c, const struct fr_send_opts *o,
	    struct fr_send_result *res)
{
	memset(res, 0, sizeof(*res));
	int rc = send_one(c, o, res);
	if (rc < 0)
		result_failed(res, rc);
	intr_over();
	return rc;
}

/* A resume that failed before its run recorded an end (its source gone,
 * its address no longer in the config): status says so, not what an
 * earlier run left (a killed sender's "interrupted", an old error). Not
 * when another process holds the transfer, nor when a signal stopped
 * this one. */
static void resume_failed(const char *dir, int rc)
{
	struct fr_progress p = {0};
	struct fr_transfer t;

	if (rc == -EALREADY || rc == -EINTR || outcome_recorded ||
	    fr_transfer_load(dir, &t) < 0 || !strcmp(t.state, "done"))
		return;
	fr_progress_load(dir, &p);
	snprintf(p.state, sizeof(p.state), "failed");
	snprintf(p.error, sizeof(p.error), "%s",
		 fr_log_last_error()[0] ? fr_log_last_error() : fr_strerror(rc));
	p.pid = (long)getpid();
	p.updated = (int64_t)time(NULL);
	fr_progress_save(dir, &p);
	snprintf(t.state, sizeof(t.state), "failed");
	fr_transfer_save(&t);
}

static int resume_one(const struct fr_config *c, const char *dir,
		      const struct fr_resume_opts *o, bool child,
		      struct fr_send_result *res)
{
	struct fr_transfer t;
	int rc = fr_transfer_load(dir, &t);

	memset(res, 0, sizeof(*res));
	if (rc < 0) {
		fr_log(FR_LOG_ERROR, "cannot read transfer '%s': %s", dir,
		       fr_strerror(rc));
		result_failed(res, rc);
		return rc;
	}
	snprintf(res->transfer, sizeof(res->transfer), "%s", t.id);
	snprintf(res->name, sizeof(res->name), "%s", t.name);
	snprintf(res->site, sizeof(res->site), "%s", t.site);
	intr_transfer(&t);
	/* a child of a resume of several reports through its parent */
	const struct fr_send_hooks *hooks = child ? NULL : o->hooks;
	if ((rc = intr_arm(c, res, hooks)) < 0 ||
	    (rc = fr_workq_start(c->workers)) < 0) {
		result_failed(res, rc);
		return rc;
	}
	/* another process runs it: said before the source is read (a
	 * source that cannot be read now must not mark it failed) */
	if ((rc = lock_transfer(&t)) < 0) {
		result_failed(res, rc);
		intr_over();
		return rc;
	}
	close(rc);
	fr_log(FR_LOG_INFO, "resuming %s: '%s' to %s", t.id, t.name, t.site);
	if (o->skip_special)
		t.skip_special = true;
	outcome_recorded = false;
	if ((rc = prepare_and_run(c, &t, hooks, res)) < 0) {
		result_failed(res, rc);
		resume_failed(dir, rc);
	}
	intr_over();
	return rc;
}

/* How a child that resumed res ended, when it could not say. */
static void child_ended(struct fr_send_result *res, int st)
{
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	if (res->error == 0)
		res->error = FR_E_INCOMPLETE;
	if (res->message[0])
		return;
	if (WIFSIGNALED(st))
		snprintf(res->message, sizeof(res->message),
			 "the sending process was killed by signal %d",
			 WTERMSIG(st));
	else
		snprintf(res->message, sizeof(res->message),
			 "the sending process exited with %d", WEXITSTATUS(st));
}

/* Several transfers: one child each, the slots keep the limits; the
 * results come back in shared memory, each with its left-out list packed
 * after it (the parent cannot read a child's heap). Workers and the
 * interruption watcher start in each child: threads do not survive
 * fork(). */
#define LEFT_PACK_MAX (64u << 10)

struct resume_kid {
	struct fr_send_result res;   /* its left_out empty */
	uint32_t left_len;           /* bytes of left below */
	uint32_t left_n;             /* entries left out, listed or not */
	char left[LEFT_PACK_MAX];
};

static void resume_children(const struct fr_config *c, char (*dirs)[1300],
			    unsigned n, const struct fr_resume_opts *o,
			    struct resume_kid *rk, pid_t *kids)
{
	struct sigaction sa = {0}, old_int, old_term;
	sigset_t block, prev;

	/* a child takes the signals only once its watcher runs */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &prev);
	intr.kids = kids;
	sa.sa_handler = on_signal_parent;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	fflush(stdout);
	fflush(stderr);
	for (unsigned i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			/* in shared memory: a signal's watcher reports in it
			 * too (its list's pointers are this child's) */
			struct fr_send_result *r = &rk[i].res;
			intr.n_kids = 0;
			int rc = resume_one(c, dirs[i], o, true, r);
			rk[i].left_n = r->left_out.n;
			rk[i].left_len = (uint32_t)fr_left_pack(
				&r->left_out, rk[i].left, sizeof(rk[i].left));
			fflush(stderr);
			_exit(rc == 0 ? 0 : rc == FR_E_LEFT_OUT ? 6 : 1);
		}
		if (pid < 0) {
			rk[i].res.error = -errno;
			snprintf(rk[i].res.message, sizeof(rk[i].res.message),
				 "cannot start a process: %s", strerror(errno));
		}
		kids[i] = pid;
		intr.n_kids = i + 1;
	}
	sigprocmask(SIG_SETMASK, &prev, NULL);
	for (unsigned left = n; left > 0;) {
		int st;
		pid_t pid = wait(&st);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (unsigned i = 0; i < n; i++)
			if (kids[i] == pid) {
				child_ended(&rk[i].res, st);
				kids[i] = 0;
				left--;
			}
	}
	intr.n_kids = 0;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
}

static int resume_many(const struct fr_config *c, char (*dirs)[1300],
		       unsigned n, const struct fr_resume_opts *o,
		       struct fr_send_result *res)
{
	size_t sz = n * sizeof(struct resume_kid);
	struct resume_kid *rk = mmap(NULL, sz, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t *kids = calloc(n, sizeof(*kids));
	unsigned failed = 0, incomplete = 0;

	if (rk == MAP_FAILED || !kids) {
		if (rk != MAP_FAILED)
			munmap(rk, sz);
		free(kids);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		struct fr_transfer t;
		if (fr_transfer_load(dirs[i], &t) == 0) {
			struct fr_send_result *r = &rk[i].res;
			snprintf(r->transfer, sizeof(r->transfer), "%s", t.id);
			snprintf(r->name, sizeof(r->name), "%s", t.name);
			snprintf(r->site, sizeof(r->site), "%s", t.site);
		}
	}
	resume_children(c, dirs, n, o, rk, kids);
	for (unsigned i = 0; i < n; i++) {
		res[i] = rk[i].res;
		memset(&res[i].left_out, 0, sizeof(res[i].left_out));
		fr_left_unpack(rk[i].left, rk[i].left_len, &res[i].left_out);
		if (rk[i].left_n > res[i].left_out.n)
			res[i].left_unlisted = rk[i].left_n - res[i].left_out.n;
		failed += res[i].error != 0 && res[i].error != FR_E_LEFT_OUT;
		incomplete += res[i].error == FR_E_LEFT_OUT;
	}
	if (failed && !intr.sig)
		fr_log(FR_LOG_ERROR, "%u of %u transfers did not finish", failed,
		       n);
	munmap(rk, sz);
	free(kids);
	return intr.sig	    ? -EINTR
	       : failed	    ? FR_E_INCOMPLETE
	       : incomplete ? FR_E_LEFT_OUT
			    : 0;
}

/* The transfers a resume names: one (by id or package name), or every
 * one not done. */
static int resume_dirs(const struct fr_config *c, const char *which,
		       char (**out)[1300], unsigned *n_out)
{
	char dir[1200];
	DIR *d;
	struct dirent *de;
	char (*dirs)[1300] = NULL;
	unsigned n = 0, cap = 0;

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
			void *nd = realloc(dirs, cap * sizeof(*dirs));
			if (!nd) {
				free(dirs);
				closedir(d);
				return -ENOMEM;
			}
			dirs = nd;
		}
		memcpy(dirs[n], sub, sizeof(sub));
		n++;
	}
	closedir(d);
	if (n == 0 && which) {
		fr_log(FR_LOG_ERROR, "no transfer '%s' in '%s' (see ferry status)",
		       which, dir);
		free(dirs);
		return -ENOENT;
	}
	*out = dirs;
	*n_out = n;
	return 0;
}

int fr_resume(const struct fr_config *c, const struct fr_resume_opts *o,
	      struct fr_resume_result *out)
{
	char (*dirs)[1300] = NULL;
	unsigned n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	signal(SIGPIPE, SIG_IGN);
	if ((rc = resume_dirs(c, o->transfer, &dirs, &n)) < 0)
		return rc;
	if (n == 0) {
		fr_log(FR_LOG_INFO, "nothing to resume");
		return 0;
	}
	if (!(out->v = calloc(n, sizeof(*out->v)))) {
		free(dirs);
		return -ENOMEM;
	}
	out->n = n;
	if (n == 1)
		rc = resume_one(c, dirs[0], o, false, &out->v[0]);
	else
		rc = resume_many(c, dirs, n, o, out->v);
	free(dirs);
	return rc;
}

void fr_resume_result_fini(struct fr_resume_result *r)
{
	for (unsigned i = 0; i < r->n; i++)
		fr_send_result_fini(&r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}
