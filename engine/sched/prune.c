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
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sched/fr_sched.h"

struct pruning {
	double older_than;
	bool dry_run, json;
	FILE *out;
	int64_t now;
	unsigned n_partials, n_transfers, n_busy;
	uint64_t bytes;
	bool first; /* JSON: no entry printed yet */
	int error;  /* the first removal that failed */
};

/* One line (or JSON object) for what goes, or stays because it is busy. */
static void report(struct pruning *pr, const char *kind, const char *what,
		   const char *json_fields, int64_t last, const char *busy)
{
	char ago[32], lt[40];

	fr_span_str(last >= 0 ? pr->now - last : -1, ago, sizeof(ago));
	if (pr->json) {
		fprintf(pr->out,
			"%s\n  {\"kind\":\"%s\",%s,\"last_activity\":%s,"
			"\"idle_s\":%lld,\"action\":\"%s\"}",
			pr->first ? "" : ",", kind, json_fields,
			fr_json_time(last, lt, sizeof(lt)),
			(long long)(last >= 0 ? pr->now - last : -1),
			busy	      ? "kept"
			: pr->dry_run ? "would-remove"
				      : "removed");
		pr->first = false;
		return;
	}
	if (busy)
		fprintf(pr->out, "kept %s; last activity %s ago: %s\n", what,
			ago, busy);
	else
		fprintf(pr->out, "%s %s; last activity %s ago\n",
			pr->dry_run ? "would remove" : "removed", what, ago);
}

/* What became of one entry (rc of its removal, -EBUSY: in use, kept for
 * the reason busy); true when it went (or would go). */
static bool settled(struct pruning *pr, const char *kind, const char *what,
		    const char *fields, int64_t last, int rc, const char *path,
		    const char *busy)
{
	if (rc == -EBUSY) {
		pr->n_busy++;
		report(pr, kind, what, fields, last, busy);
		return false;
	}
	if (rc < 0) {
		fr_log(FR_LOG_ERROR, "cannot remove '%s': %s", path,
		       fr_strerror(rc));
		if (!pr->error)
			pr->error = rc;
		return false;
	}
	report(pr, kind, what, fields, last, NULL);
	return true;
}

static bool old_enough(const struct pruning *pr, int64_t last)
{
	return last < 0 || (double)(pr->now - last) > pr->older_than;
}

/* ---- the receiver's partial packages ------------------------------------ */

static void prune_partial(struct pruning *pr, const char *store,
			  const char *dir, const char *id)
{
	char sub[1300], path[1400], from[64] = "?", what[1400], fields[1400];
	char n[600], sz[32];
	struct fr_manifest m = {0};
	struct stat st;
	uint8_t *buf;
	size_t len;
	int64_t last = -1;
	uint32_t held = 0;

	if (fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, id) ||
	    fr_partial_times(sub, NULL, &last) < 0 || !old_enough(pr, last))
		return;
	fr_path_fmt(path, sizeof(path), "%s/manifest", sub);
	if (fr_read_file(path, FR_MANIFEST_MAX, &buf, &len) == 0) {
		if (fr_manifest_decode(&m, buf, len) < 0)
			fr_manifest_fini(&m);
		free(buf);
	}
	fr_path_fmt(path, sizeof(path), "%s/from", sub);
	if (fr_read_file(path, 63, &buf, &len) == 0) {
		snprintf(from, sizeof(from), "%s", (char *)buf);
		free(buf);
	}
	fr_path_fmt(path, sizeof(path), "%s/journal", sub);
	if (stat(path, &st) == 0 && st.st_size > FR_JOURNAL_HDR)
		held = (uint32_t)((st.st_size - FR_JOURNAL_HDR) / FR_JREC_LEN);
	const char *name = m.name ? m.name : "?";
	snprintf(what, sizeof(what),
		 "partial package '%s' (id %.12s, from %s, %u/%u segments, %s)",
		 name, id, from, held, m.n_segments,
		 fr_human_bytes(m.total_size, sz, sizeof(sz)));
	snprintf(fields, sizeof(fields),
		 "\"name\":%s,\"id\":\"%s\",\"from\":\"%s\",\"segments\":%u,"
		 "\"segments_done\":%u,\"bytes\":%llu",
		 fr_json_str(name, n, sizeof(n)), id, from, m.n_segments, held,
		 (unsigned long long)m.total_size);
	int rc = 0;
	/* a package marked by verify --repair waits there for its damaged
	 * segments: removing the mark would forget the repair */
	fr_path_fmt(path, sizeof(path), "%s/repair", sub);
	if (access(path, F_OK) == 0) {
		pr->n_busy++;
		report(pr, "partial", what, fields, last,
		       "a repair is waiting for its segments (verify --repair)");
		fr_manifest_fini(&m);
		return;
	}
	if (pr->dry_run) {
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
	if (settled(pr, "partial", what, fields, last, rc, sub,
		    "a session is receiving it")) {
		pr->n_partials++;
		pr->bytes += m.total_size;
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
			if (!pr->dry_run &&
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

static bool pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* The state `status` shows: a sender killed mid-way left "sending". */
static const char *transfer_state(const struct fr_transfer *t,
				  const struct fr_progress *p)
{
	const char *state = p->state[0] ? p->state : t->state;

	if ((!strcmp(state, "sending") || !strcmp(state, "waiting")) &&
	    !pid_alive(p->pid))
		return "interrupted";
	return state;
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
	char what[1400], fields[1400], n[600];
	int64_t last = -1;

	if (fr_transfer_load(sub, &t) < 0 ||
	    fr_partial_times(sub, NULL, &last) < 0 || !old_enough(pr, last))
		return;
	fr_progress_load(sub, &p);
	const char *state = transfer_state(&t, &p);
	snprintf(what, sizeof(what), "transfer %s ('%s' to %s, %s)", t.id,
		 t.name, t.site, state);
	snprintf(fields, sizeof(fields),
		 "\"transfer\":\"%s\",\"name\":%s,\"site\":\"%s\","
		 "\"state\":\"%s\"",
		 t.id, fr_json_str(t.name, n, sizeof(n)), t.site, state);
	int fd = lock_transfer(sub), rc = fd < 0 ? fd : 0;
	if (fd >= 0) {
		if (pr->dry_run)
			close(fd);
		else
			rc = drop_transfer(c, &t, fd);
	}
	if (settled(pr, "transfer", what, fields, last, rc, sub,
		    "it is running"))
		pr->n_transfers++;
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
			if (!pr->dry_run)
				fr_remove_tree(sub);
			continue;
		}
		if (de->d_name[0] != '.') /* .slots: the send slots' locks */
			prune_transfer(pr, c, sub);
	}
	closedir(d);
}

int fr_prune(const struct fr_config *c, double older_than_s, bool dry_run,
	     bool json, FILE *out)
{
	struct pruning pr = {.older_than = older_than_s,
			     .dry_run = dry_run,
			     .json = json,
			     .out = out,
			     .now = (int64_t)time(NULL),
			     .first = true};
	char sz[32], span[32];

	if (json)
		fprintf(out,
			"{\"dry_run\":%s,\"older_than_s\":%g,\"entries\":[",
			dry_run ? "true" : "false", older_than_s);
	prune_partials(&pr, c);
	prune_transfers(&pr, c);
	fr_span_str((int64_t)older_than_s, span, sizeof(span));
	if (json) {
		fprintf(out,
			"%s],\"partials\":%u,\"transfers\":%u,\"bytes\":%llu,"
			"\"busy\":%u}\n",
			pr.first ? "" : "\n", pr.n_partials, pr.n_transfers,
			(unsigned long long)pr.bytes, pr.n_busy);
	} else if (pr.n_partials || pr.n_transfers) {
		fprintf(out,
			"%s %u partial package(s) (%s) and %u transfer "
			"record(s) idle for more than %s\n",
			dry_run ? "would prune" : "pruned", pr.n_partials,
			fr_human_bytes(pr.bytes, sz, sizeof(sz)),
			pr.n_transfers, span);
	} else {
		fprintf(out, "nothing idle for more than %s to prune\n", span);
	}
	return pr.error;
}

/* ---- forget ------------------------------------------------------------ */

int fr_forget(const struct fr_config *c, const char *which, bool json,
	      FILE *out)
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
	const char *state = transfer_state(&t, &p);
	int fd = lock_transfer(found);
	if (fd == -EBUSY) {
		char pid[32] = "";
		if (pid_alive(p.pid))
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
	if (json) {
		char n1[600];
		fprintf(out,
			"{\"transfer\":\"%s\",\"name\":%s,\"site\":\"%s\","
			"\"state\":\"%s\",\"forgotten\":true}\n",
			t.id, fr_json_str(t.name, n1, sizeof(n1)), t.site,
			state);
	} else {
		fprintf(out, "forgot transfer %s ('%s' to %s, %s)%s\n", t.id,
			t.name, t.site, state,
			strcmp(state, "done")
			    ? "; what it left at the site goes with the next "
			      "'ferry prune' there"
			    : "");
	}
	return 0;
}
