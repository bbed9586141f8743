/*
 * prune.c - `ferry prune` and `ferry forget`: what nobody will finish.
 *
 * At a receiver, <store>/partial/<id>/ holds a package until it
 * completes; one whose sender gave up (or sent a newer version whose
 * completion did not remove it, because a session held it then) stays
 * for ever. At a sender, <store>/outgoing/<id>/ keeps each transfer's
 * record, done or not. prune removes, on whichever side the config's
 * store is (a site is often both), the partial packages and transfer
 * records with no activity for longer than a duration; forget removes
 * one transfer record.
 *
 * Nothing that is being worked on goes: a receiving session holds its
 * partial package's lock, a running send its transfer's lock (both
 * flock'd), and both are tried without waiting, under which the
 * directory is moved aside before it is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sched/fr_sched.h"

struct pruning {
	struct fr_prune_result *r;
	int error; /* the first removal that failed */
};

/* What goes, or stays because it is busy: kept for that reason. */
static void report(struct pruning *pr, const struct fr_prune_entry *e,
		   const char *kept)
{
	struct fr_prune_result *r = pr->r;

	if (r->n == r->cap) {
		unsigned nc = r->cap ? r->cap * 2 : 16;
		struct fr_prune_entry *nv = realloc(r->v, nc * sizeof(*nv));
		if (!nv) {
			fr_log(FR_LOG_ERROR, "out of memory listing '%s'",
			       e->name);
			return;
		}
		r->v = nv;
		r->cap = nc;
	}
	r->v[r->n] = *e;
	r->v[r->n].kept = kept;
	r->n++;
}

/* What became of one entry (rc of its removal, -EBUSY: in use, kept for
 * the reason busy); true when it went (or would go). */
static bool settled(struct pruning *pr, const struct fr_prune_entry *e,
		    int rc, const char *path, const char *busy)
{
	if (rc == -EBUSY) {
		pr->r->n_busy++;
		report(pr, e, busy);
		return false;
	}
	if (rc < 0) {
		fr_log(FR_LOG_ERROR, "cannot remove '%s': %s", path,
		       fr_strerror(rc));
		if (!pr->error)
			pr->error = rc;
		return false;
	}
	report(pr, e, NULL);
	return true;
}

static bool old_enough(const struct pruning *pr, int64_t last)
{
	return last < 0 || (double)(pr->r->now - last) > pr->r->older_than_s;
}

/* The disk space under a directory (its files' blocks, not their sizes:
 * a partial package's files are as long as the package's, and mostly
 * holes). */
static uint64_t du_sum;
static int du_one(const char *path, const struct stat *st, int type,
		  struct FTW *f)
{
	(void)path;
	(void)type;
	(void)f;
	du_sum += (uint64_t)st->st_blocks * 512;
	return 0;
}

static uint64_t disk_usage(const char *dir)
{
	du_sum = 0;
	if (nftw(dir, du_one, 16, FTW_PHYS) < 0)
		return 0;
	return du_sum;
}

/* ---- the receiver's partial packages ------------------------------------ */

static void prune_partial(struct pruning *pr, const char *store,
			  const char *dir, const char *id)
{
	char sub[1300], path[1400];
	struct fr_prune_entry e = {.last = -1};
	struct fr_manifest m = {0};
	struct stat st;
	uint8_t *buf;
	size_t len;

	if (fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, id) ||
	    fr_partial_times(sub, NULL, &e.last) < 0 || !old_enough(pr, e.last))
		return;
	fr_path_fmt(path, sizeof(path), "%s/manifest", sub);
	if (fr_read_file(path, FR_MANIFEST_MAX, &buf, &len) == 0) {
		if (fr_manifest_decode(&m, buf, len) < 0)
			fr_manifest_fini(&m);
		free(buf);
	}
	snprintf(e.site, sizeof(e.site), "?");
	fr_path_fmt(path, sizeof(path), "%s/from", sub);
	if (fr_read_file(path, 63, &buf, &len) == 0) {
		snprintf(e.site, sizeof(e.site), "%s", (char *)buf);
		free(buf);
	}
	fr_path_fmt(path, sizeof(path), "%s/journal", sub);
	if (stat(path, &st) == 0 && st.st_size > FR_JOURNAL_HDR)
		e.segments_done =
		    (uint32_t)((st.st_size - FR_JOURNAL_HDR) / FR_JREC_LEN);
	snprintf(e.name, sizeof(e.name), "%s", m.name ? m.name : "?");
	snprintf(e.id, sizeof(e.id), "%.63s", id);
	e.segments = m.n_segments;
	e.bytes = m.total_size;
	int rc = 0;
	uint64_t held = disk_usage(sub);
	/* a package marked by verify --repair waits there for its damaged
	 * segments: removing the mark would forget the repair */
	fr_path_fmt(path, sizeof(path), "%s/repair", sub);
	if (access(path, F_OK) == 0) {
		pr->r->n_busy++;
		report(pr, &e,
		       "a repair is waiting for its segments (verify --repair)");
		fr_manifest_fini(&m);
		return;
	}
	if (pr->r->dry_run) {
		/* a session holds the lock: see whether it is free */
		int fd;
		fr_path_fmt(path, sizeof(path), "%s/lock", sub);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			if (flock(fd, LOCK_SH | LOCK_NB) < 0)
				rc = -EBUSY;
			close(fd);
		}
	} else {
		rc = fr_store_drop(store, id, false);
	}
	if (settled(pr, &e, rc, sub, "a session is receiving it")) {
		pr->r->n_partials++;
		pr->r->bytes += held; /* the space it frees */
	}
	fr_manifest_fini(&m);
}

static void prune_partials(struct pruning *pr, const struct fr_config *c)
{
	char dir[1200];
	struct dirent *de;
	DIR *d;

	if (fr_path_fmt(dir, sizeof(dir), "%s/partial", c->store) ||
	    !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!strncmp(de->d_name, ".gone-", 6)) {
			/* a removal cut short */
			char gone[1300];
			if (!pr->r->dry_run &&
			    !fr_path_fmt(gone, sizeof(gone), "%s/%s", dir,
					 de->d_name))
				fr_remove_tree(gone);
			continue;
		}
		if (de->d_name[0] != '.')
			prune_partial(pr, c->store, dir, de->d_name);
	}
	closedir(d);
}

/* ---- the sender's transfer records --------------------------------------- */

/* A transfer as prune and forget report it. */
static void transfer_said(const struct fr_transfer *t,
			  const struct fr_progress *p, struct fr_prune_entry *e)
{
	e->transfer = true;
	snprintf(e->id, sizeof(e->id), "%s", t->id);
	snprintf(e->name, sizeof(e->name), "%s", t->name);
	snprintf(e->site, sizeof(e->site), "%s", t->site);
	snprintf(e->state, sizeof(e->state), "%s",
		 fr_transfer_state_shown(t, p));
}

/* Lock a transfer as a running send does: fd, or -EBUSY while it runs. */
static int lock_transfer(const char *dir)
{
	char path[1300];
	int fd;

	if (fr_path_fmt(path, sizeof(path), "%s/lock", dir))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Remove a transfer's directory, locked by fd (closed here). */
static int drop_transfer(const struct fr_config *c, const struct fr_transfer *t,
			 int fd)
{
	char gone[1300];
	int rc = 0;

	if (fr_path_fmt(gone, sizeof(gone), "%s/outgoing/.gone-%s", c->store,
			t->id))
		rc = -ENAMETOOLONG;
	else {
		fr_remove_tree(gone);
		if (rename(t->dir, gone) < 0)
			rc = -errno;
	}
	close(fd);
	return rc ? rc : fr_remove_tree(gone);
}

static void prune_transfer(struct pruning *pr, const struct fr_config *c,
			   const char *sub)
{
	struct fr_transfer t;
	struct fr_progress p;
	struct fr_prune_entry e = {.last = -1};

	if (fr_transfer_load(sub, &t) < 0 ||
	    fr_partial_times(sub, NULL, &e.last) < 0 || !old_enough(pr, e.last))
		return;
	fr_progress_load(sub, &p);
	transfer_said(&t, &p, &e);
	int fd = lock_transfer(sub), rc = fd < 0 ? fd : 0;
	if (fd >= 0) {
		if (pr->r->dry_run)
			close(fd);
		else
			rc = drop_transfer(c, &t, fd);
	}
	if (settled(pr, &e, rc, sub, "it is running"))
		pr->r->n_transfers++;
}

static void prune_transfers(struct pruning *pr, const struct fr_config *c)
{
	char dir[1200], sub[1300];
	struct dirent *de;
	DIR *d;

	if (fr_path_fmt(dir, sizeof(dir), "%s/outgoing", c->store) ||
	    !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, de->d_name))
			continue;
		if (!strncmp(de->d_name, ".gone-", 6)) {
			if (!pr->r->dry_run)
				fr_remove_tree(sub);
			continue;
		}
		if (de->d_name[0] != '.') /* .slots: the send slots' locks */
			prune_transfer(pr, c, sub);
	}
	closedir(d);
}

int fr_prune(const struct fr_config *c, double older_than_s, bool dry_run,
	     struct fr_prune_result *r)
{
	struct pruning pr = {.r = r};

	memset(r, 0, sizeof(*r));
	r->older_than_s = older_than_s;
	r->dry_run = dry_run;
	r->now = (int64_t)time(NULL);
	prune_partials(&pr, c);
	prune_transfers(&pr, c);
	return pr.error;
}

void fr_prune_result_fini(struct fr_prune_result *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

/* ---- forget ------------------------------------------------------------ */

int fr_forget(const struct fr_config *c, const char *which,
	      struct fr_prune_entry *out)
{
	char dir[1200], sub[1300], found[1300] = "", ids[512] = "";
	struct fr_transfer t;
	struct fr_progress p;
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	if (fr_path_fmt(dir, sizeof(dir), "%s/outgoing", c->store))
		return -ENAMETOOLONG;
	if ((d = opendir(dir))) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' ||
			    fr_path_fmt(sub, sizeof(sub), "%s/%s", dir,
					de->d_name) ||
			    fr_transfer_load(sub, &t) < 0 ||
			    (strcmp(which, t.id) && strcmp(which, t.name)))
				continue;
			size_t l = strlen(ids);
			snprintf(ids + l, sizeof(ids) - l, "%s%s",
				 n ? ", " : "", t.id);
			snprintf(found, sizeof(found), "%s", sub);
			n++;
		}
		closedir(d);
	}
	if (n == 0) {
		fr_log(FR_LOG_ERROR, "no transfer '%s' (see ferry status)",
		       which);
		return -ENOENT;
	}
	if (n > 1) {
		fr_log(FR_LOG_ERROR,
		       "'%s' names %u transfers (%s): give the transfer id",
		       which, n, ids);
		return -EINVAL;
	}
	fr_transfer_load(found, &t);
	fr_progress_load(found, &p);
	int fd = lock_transfer(found);
	if (fd == -EBUSY) {
		char pid[32] = "";
		if (fr_pid_alive(p.pid))
			snprintf(pid, sizeof(pid), " (pid %ld)", p.pid);
		fr_log(FR_LOG_ERROR,
		       "transfer %s ('%s' to %s) is running%s; stop it first",
		       t.id, t.name, t.site, pid);
		return -EBUSY;
	}
	int rc = fd < 0 ? fd : drop_transfer(c, &t, fd);
	if (rc < 0) {
		fr_log(FR_LOG_ERROR, "cannot remove transfer '%s': %s", found,
		       fr_strerror(rc));
		return rc;
	}
	memset(out, 0, sizeof(*out));
	transfer_said(&t, &p, out);
	return 0;
}
