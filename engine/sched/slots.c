/*
 * slots.c - the send slots: at most `max-sends` sends of this store at
 * once, and `max-sends-per-site` to one site. A slot is a file under
 * <store>/outgoing/.slots/ held with flock (all-N, site-<SITE>-N), so a
 * sender that dies lets go of it.
 *
 * Sends that wait for a slot of the same site go in the order of their
 * priority (high first), then of their arrival: each waiter marks itself
 * (.slots/wait-<pid>: its site, priority and when it began to wait) and
 * takes a free slot only when no live waiter of its site is ahead of it.
 * A waiter refreshes its mark at each look; one not refreshed for
 * MARK_STALE_S is not waiting any more (stopped, or gone).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sched/fr_sched.h"

#define SLOT_POLL_MS 250

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

/* Both slots, or -EBUSY when a limit is reached (or another code). */
static int try_take(const char *dir, const char *site, struct fr_slots *sl)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "site-%s", site);
	sl->all_fd = try_lock_one(dir, "all", sl->max_all);
	if (sl->all_fd < 0)
		return sl->all_fd;
	sl->site_fd = try_lock_one(dir, prefix, sl->max_site);
	if (sl->site_fd >= 0)
		return 0;
	close(sl->all_fd);
	sl->all_fd = -1;
	return sl->site_fd;
}

/* A waiter's mark not refreshed for this long is not waiting any more (a
 * process stopped with ^Z, one killed whose pid was reused, a mark left
 * from before a reboot). */
#define MARK_STALE_S 3

/* Is waiter (priority, since, pid) of our site ahead of us? since as
 * written in the marks (to the microsecond), the pid breaking a tie. */
static bool ahead(int prio, double since, long pid, int my_prio,
		  double my_since)
{
	return prio > my_prio ||
	       (prio == my_prio &&
		(since < my_since ||
		 (since == my_since && pid < (long)getpid())));
}

/* The mark at path was refreshed within MARK_STALE_S. */
static bool fresh(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 &&
	       difftime(time(NULL), st.st_mtime) <= MARK_STALE_S;
}

/* A live waiter for a slot of site is ahead of this one. */
static bool someone_ahead(const char *dir, const char *site, int prio,
			  double since)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char path[1300], s[64], v[64];
		uint8_t *text;
		size_t len;
		if (strncmp(de->d_name, "wait-", 5) ||
		    fr_path_fmt(path, sizeof(path), "%s/%s", dir, de->d_name) ||
		    fr_read_file(path, 512, &text, &len) < 0)
			continue;
		const char *t = (const char *)text;
		long pid = (long)fr_kv_num(t, "pid");
		if (pid > 0 && pid != (long)getpid() && fr_pid_alive(pid) &&
		    fresh(path) && fr_kv_get(t, "site", s, sizeof(s)) == 0 &&
		    !strcmp(s, site) && fr_kv_get(t, "since", v, sizeof(v)) == 0)
			found = ahead((int)fr_kv_num(t, "priority"),
				      strtod(v, NULL), pid, prio, since);
		else if (pid > 0 && (!fr_pid_alive(pid) || !fresh(path)) &&
			 pid != (long)getpid())
			unlink(path); /* a waiter that died, or stopped */
		free(text);
	}
	closedir(d);
	return found;
}

int fr_slots_acquire(const struct fr_config *c, const char *site, int priority,
		     void (*waiting)(void *arg, const char *why), void *arg,
		     struct fr_slots *sl)
{
	char dir[1200], mark[1300], text[256], at[32];
	bool told = false, marked = false;
	int rc;

	/* since as the marks hold it, so that all compare the same values */
	snprintf(at, sizeof(at), "%.6f", fr_now_s());
	double since = strtod(at, NULL);

	sl->all_fd = sl->site_fd = -1;
	sl->max_all = c->max_sends;
	sl->max_site = c->max_sends_site;
	if (fr_path_fmt(dir, sizeof(dir), "%s/outgoing/.slots", c->store) ||
	    fr_path_fmt(mark, sizeof(mark), "%s/wait-%ld", dir, (long)getpid()))
		return -ENAMETOOLONG;
	if ((rc = fr_mkdirs(dir)) < 0)
		return rc;
	for (;;) {
		if (!someone_ahead(dir, site, priority, since)) {
			rc = try_take(dir, site, sl);
			if (rc != -EBUSY)
				break;
		}
		if (!marked) { /* in the queue from its first wait on */
			/* (since: CLOCK_MONOTONIC, one clock for every
			 * waiter on this machine) */
			int n = snprintf(text, sizeof(text),
					 "pid=%ld\nsite=%s\npriority=%d\n"
					 "since=%s\n",
					 (long)getpid(), site, priority, at);
			marked = fr_write_file_atomic(mark, text, (size_t)n) == 0;
		} else { /* still waiting: the others see it is */
			utimensat(AT_FDCWD, mark, NULL, 0);
		}
		if (!told && waiting) {
			char why[200];
			snprintf(why, sizeof(why),
				 "waiting for a free send slot (max-sends %d, "
				 "max-sends-per-site %d; %s priority)",
				 c->max_sends, c->max_sends_site,
				 fr_priority_name(priority));
			waiting(arg, why);
			told = true;
		}
		usleep(SLOT_POLL_MS * 1000);
	}
	if (marked)
		unlink(mark);
	return rc;
}

void fr_slots_release(struct fr_slots *sl)
{
	if (sl->all_fd >= 0)
		close(sl->all_fd);
	if (sl->site_fd >= 0)
		close(sl->site_fd);
	sl->all_fd = sl->site_fd = -1;
}
