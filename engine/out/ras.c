/*
 * ras.c - the RAS outputs: slow on-demand lines (async, ISDN, X.25, SNA).
 * On the wire they are the standard sender (lan.c: the same handshake,
 * frames and ACKs over TCP through the line); what they add is the line:
 *
 *   <store>/outgoing/.lines/<SITE>-<NAME>.lock   flock'd by the one
 *       transfer using the line; others wait for it
 *   <SITE>-<NAME>.up     the line is up: "pid=N" of its keeper
 *   <SITE>-<NAME>.used   its mtime: when the line was last used
 *   <SITE>-<NAME>.dialling  "pid=N" of the dial command while it runs
 *       (of its sender from before the keeper starts until then)
 *   <SITE>-<NAME>.log    dial and hang-up, with times
 *   <SITE>-<NAME>.dial   how long its last dial took: "seconds=S\nwhen=T"
 *       (what the scheduler and `ferry plan` count for the next one)
 *
 * A transfer takes the line's lock and dials unless the line is up (its
 * keeper alive). Dialling starts a keeper, a small detached process
 * (`ferry __line-keeper`) that runs the hang-up command once nobody holds
 * the lock and the line has been idle for idle-timeout. A transfer that
 * fails hangs the line up at once, so a retry redials: a dropped line is
 * brought back by the sender's retry settings.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "out/fr_out.h"

#define HOOK_TIMEOUT_S 120
#define LOCK_POLL_MS 200 /* a line another transfer holds: looked at again */

struct line {
	char base[1200];
	int lock_fd;
	bool failed;
	bool closed; /* the address's schedule closed mid-transfer */
	bool ended;  /* a striped send ended on another link (-ECANCELED) */
	bool nowait; /* a line another transfer holds is not waited for */
};

static int line_path(const char *base, const char *ext, char *out, size_t cap)
{
	return fr_path_fmt(out, cap, "%s.%s", base, ext);
}

/* Append a line to <base>.log (dial, hang-up: when and why). */
static void line_log(const char *base, const char *fmt, ...)
{
	char path[1300], when[32], msg[512];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;

	if (line_path(base, "log", path, sizeof(path)))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	FILE *f = fopen(path, "a");
	if (f) {
		fprintf(f, "%s %s\n", when, msg);
		fclose(f);
	}
}

/* The keeper's pid when the line is up (its keeper alive), else 0. */
/* The "pid=N" a line's file (.up, .dialling) names, 0 when none. */
static pid_t pid_in(const char *path)
{
	char v[32] = "";
	uint8_t *text;
	size_t len;

	if (fr_read_file(path, 256, &text, &len) < 0)
		return 0;
	fr_kv_get((const char *)text, "pid", v, sizeof(v));
	free(text);
	long pid = strtol(v, NULL, 10);
	return pid > 0 ? (pid_t)pid : 0;
}

static pid_t line_up(const char *base)
{
	char path[1300];

	if (line_path(base, "up", path, sizeof(path)))
		return 0;
	pid_t pid = pid_in(path);
	return pid && fr_pid_alive(pid) ? pid : 0;
}

static void line_touch(const char *base)
{
	char path[1300];

	if (line_path(base, "used", path, sizeof(path)) == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			futimens(fd, NULL);
			close(fd);
		}
	}
}

static int hook_wait(const struct fr_address *a, const char *cmd,
		     const char *what, pid_t pid, const struct fr_output *o,
		     char *err, size_t cap);

/* The send no longer needs output o (NULL: never said). */
static bool stopped(const struct fr_output *o)
{
	return o && o->stopped && o->stopped(o->sock_arg);
}

/*
 * Run a dial or hang-up command with the address in its environment
 * (FERRY_SITE, FERRY_ADDRESS, FERRY_HOST, FERRY_TYPE); 0 when it exits 0
 * within HOOK_TIMEOUT_S, else an error in err. Output o (or NULL) once
 * stopped ends it: -ECANCELED.
 */
static int run_hook(const struct fr_address *a, const char *cmd,
		    const char *what, const char *mark,
		    const struct fr_output *o, char *err, size_t cap)
{
	extern char **environ;
	char site[64], name[96], host[300], type[64];
	size_t n = 0;

	/* the environment is built before fork: the child of a process
	 * with threads may only exec */
	while (environ[n])
		n++;
	char **envp = calloc(n + 5, sizeof(*envp));
	if (!envp)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "FERRY_", 6))
			envp[k++] = environ[i];
	snprintf(site, sizeof(site), "FERRY_SITE=%s", a->site);
	snprintf(name, sizeof(name), "FERRY_ADDRESS=%s", a->name);
	snprintf(host, sizeof(host), "FERRY_HOST=%s", a->host);
	snprintf(type, sizeof(type), "FERRY_TYPE=%s",
		 fr_line_profile(a->type)->name);
	envp[k++] = site;
	envp[k++] = name;
	envp[k++] = host;
	envp[k++] = type;
	char *argv[] = {(char *)cmd, NULL};
	pid_t pid = fork();

	if (pid < 0) {
		int e = errno;
		free(envp);
		snprintf(err, cap, "cannot run %s command '%s': %s", what, cmd,
			 strerror(e));
		return -e;
	}
	if (pid == 0) {
		execve(cmd, argv, envp);
		_exit(127);
	}
	free(envp);
	if (mark) { /* the keeper waits for it (fr_line_keeper) */
		char text[64];
		int tn = snprintf(text, sizeof(text), "pid=%ld\n", (long)pid);
		fr_write_file_atomic(mark, text, (size_t)tn);
	}
	int rc = hook_wait(a, cmd, what, pid, o, err, cap);
	if (mark)
		unlink(mark);
	return rc;
}

/* The hook's end, within HOOK_TIMEOUT_S: 0 when it exited 0. */
static int hook_wait(const struct fr_address *a, const char *cmd,
		     const char *what, pid_t pid, const struct fr_output *o,
		     char *err, size_t cap)
{
	int st;
	for (int i = 0; i < HOOK_TIMEOUT_S * 10; i++) {
		if (stopped(o)) { /* the line is the keeper's to hang up */
			kill(pid, SIGTERM);
			waitpid(pid, &st, 0);
			snprintf(err, cap,
				 "%s of %s %s given up: the send needs it no "
				 "more",
				 what, a->site, a->name);
			return -ECANCELED;
		}
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				return 0;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
				snprintf(err, cap,
					 "%s command '%s' for %s %s could not be "
					 "run (exit 127: missing or not "
					 "executable?)",
					 what, cmd, a->site, a->name);
			else if (WIFEXITED(st))
				snprintf(err, cap,
					 "%s command '%s' for %s %s failed (exit "
					 "%d)",
					 what, cmd, a->site, a->name,
					 WEXITSTATUS(st));
			else
				snprintf(err, cap,
					 "%s command '%s' for %s %s died (signal "
					 "%d)",
					 what, cmd, a->site, a->name,
					 WTERMSIG(st));
			return FR_E_LINE;
		}
		if (r < 0 && errno != EINTR)
			break;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	snprintf(err, cap, "%s command '%s' for %s %s did not finish in %d s",
		 what, cmd, a->site, a->name, HOOK_TIMEOUT_S);
	return FR_E_LINE;
}

/* Start the keeper that hangs the line up once idle; records it. */
static int start_keeper(const struct fr_address *a, const char *base)
{
	char idle[32], up[1300], text[64];
	pid_t pid;

	snprintf(idle, sizeof(idle), "%u", a->idle_ms);
	if (line_path(base, "up", up, sizeof(up)))
		return -ENAMETOOLONG;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* detached: not in the sender's session, no terminal */
		setsid();
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execl("/proc/self/exe", "ferry", "__line-keeper", base, idle,
		      a->hangup, a->site, a->name, a->host,
		      fr_line_profile(a->type)->name, (char *)NULL);
		_exit(127);
	}
	int n = snprintf(text, sizeof(text), "pid=%ld\n", (long)pid);
	return fr_write_file_atomic(up, text, (size_t)n);
}

/* The keeper stopped, the line not up (a dial that failed). */
static void keeper_off(const char *base)
{
	char up[1300];
	pid_t keeper = line_up(base);

	if (keeper)
		kill(keeper, SIGTERM);
	if (line_path(base, "up", up, sizeof(up)) == 0)
		unlink(up);
}

/* Hang up now (after a failure): stop the keeper, run hang-up. */
static void hang_up_now(const struct fr_address *a, const char *base,
			const char *why)
{
	char err[600];

	keeper_off(base);
	if (a->hangup[0]) {
		fr_log(FR_LOG_INFO, "hanging up %s %s (%s)", a->site, a->name,
		       why);
		if (run_hook(a, a->hangup, "hang-up", NULL, NULL, err,
			     sizeof(err)) < 0) {
			fr_log(FR_LOG_WARN, "%s", err);
			line_log(base, "hang-up failed (%s): %s", why, err);
			return;
		}
	}
	line_log(base, a->hangup[0] ? "hung up: %s"
				    : "no hang-up command: left as it is (%s)",
		 why);
}

static bool dial_running(const char *path);

/* A wait for the line that the send no longer needs: -ECANCELED. */
static int given_up(const struct fr_address *a, char *err, size_t cap)
{
	snprintf(err, cap,
		 "line %s %s no longer waited for: the send needs it no more",
		 a->site, a->name);
	return -ECANCELED;
}

/* A dial whose sender is gone (killed while it dialled) still runs: the
 * line is up only once it ends, so wait for it (the line's lock held),
 * at most as long as a dial may take. */
static int orphan_dial(const struct fr_address *a, const char *base,
		       const struct fr_output *o, char *err, size_t cap)
{
	char mark[1300];

	if (line_path(base, "dialling", mark, sizeof(mark)) ||
	    !dial_running(mark))
		return 0;
	fr_log(FR_LOG_INFO,
	       "line %s %s: a dial by a sender that is gone still runs; "
	       "waiting for it",
	       a->site, a->name);
	for (int i = 0; dial_running(mark); i++) {
		if (stopped(o))
			return given_up(a, err, cap);
		if (i >= HOOK_TIMEOUT_S * 10) {
			pid_t pid = pid_in(mark);
			if (pid)
				kill(pid, SIGKILL);
			line_log(base, "a dial left by a sender that is gone "
				       "ran over %d s: stopped",
				 HOOK_TIMEOUT_S);
			unlink(mark);
			break;
		}
		usleep(100000);
	}
	return 0;
}

/* The line another transfer holds (lock_fd, not locked), for a message
 * of ours: 1 once it is up (its dial waited for), 0 when that transfer
 * let go of it first (lock_fd locked now), else -EAGAIN. */
static int line_of_another(const struct fr_address *a, const char *base,
			   int lock_fd, char *err, size_t cap)
{
	char mark[1300];

	if (line_path(base, "dialling", mark, sizeof(mark)))
		return -ENAMETOOLONG;
	for (int i = 0; i < HOOK_TIMEOUT_S * 10; i++) {
		if (!dial_running(mark) && line_up(base))
			return 1;
		if (flock(lock_fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		usleep(100000);
	}
	snprintf(err, cap, "line %s %s carries another transfer and did not "
		 "come up in %d s",
		 a->site, a->name, HOOK_TIMEOUT_S);
	return -EAGAIN;
}

static struct line *line_of(struct fr_output *o)
{
	return o->line;
}

/* The line's base path under the store: <store>/outgoing/.lines/SITE-NAME. */
static int line_base(const struct fr_config *c, const struct fr_address *a,
		     char *out, size_t cap)
{
	return fr_path_fmt(out, cap, "%s/outgoing/.lines/%s-%s", c->store,
			   a->site, a->name);
}

/* A dial that worked took secs: kept for the next one's estimate. */
static void dial_keep(const char *base, double secs)
{
	char path[1300], text[96];

	if (line_path(base, "dial", path, sizeof(path)))
		return;
	int n = snprintf(text, sizeof(text), "seconds=%.3f\nwhen=%lld\n", secs,
			 (long long)time(NULL));
	fr_write_file_atomic(path, text, (size_t)n);
}

double fr_line_dial_known(const struct fr_config *c, const struct fr_address *a,
			  int64_t *when)
{
	char base[1200], path[1300], v[32], *end;
	uint8_t *text;
	size_t len;
	double secs = -1;

	if (line_base(c, a, base, sizeof(base)) < 0 ||
	    line_path(base, "dialling", path, sizeof(path)))
		return -1;
	/* up: its keeper alive, and no dial running (the keeper starts
	 * before the dial) */
	if (line_up(base) && !dial_running(path))
		return 0;
	if (line_path(base, "dial", path, sizeof(path)) ||
	    fr_read_file(path, 256, &text, &len) < 0)
		return -1;
	if (fr_kv_get((const char *)text, "seconds", v, sizeof(v)) == 0) {
		double d = strtod(v, &end);
		if (end != v && !*end && d >= 0 && d < 86400)
			secs = d;
	}
	if (when)
		*when = fr_kv_num((const char *)text, "when");
	free(text);
	return secs;
}

/* Take the line: its lock (waiting for the transfer on it), dialled
 * unless it is up (*dialled), its keeper started. o, when not NULL, is
 * told which of the two it is at ("waiting", "dialling"). With
 * l->nowait, a line another transfer holds: 1 when it is up, else
 * -EAGAIN. */
static int line_open(const struct fr_config *c, const struct fr_address *a,
		     struct line *l, const struct fr_output *o, bool *dialled,
		     char *err, size_t cap)
{
	char dir[1100], lock[1300];
	int rc;

	*dialled = false;
	if (fr_path_fmt(dir, sizeof(dir), "%s/outgoing/.lines", c->store) ||
	    line_base(c, a, l->base, sizeof(l->base)) ||
	    line_path(l->base, "lock", lock, sizeof(lock)))
		return -ENAMETOOLONG;
	if ((rc = fr_mkdirs(dir)) < 0) {
		snprintf(err, cap, "cannot create '%s': %s", dir, fr_strerror(rc));
		return rc;
	}
	l->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (l->lock_fd < 0) {
		rc = -errno;
		snprintf(err, cap, "cannot open '%s': %s", lock, strerror(errno));
		return rc;
	}
	/* one transfer at a time on a line */
	bool locked = flock(l->lock_fd, LOCK_EX | LOCK_NB) == 0;
	if (!locked && l->nowait) {
		if ((rc = line_of_another(a, l->base, l->lock_fd, err, cap)))
			return rc;
	} else if (!locked) {
		fr_log(FR_LOG_INFO,
		       "line %s %s is carrying another transfer; waiting for it",
		       a->site, a->name);
		if (o && o->state_is)
			o->state_is(o->sock_arg, "waiting");
		while (flock(l->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK && errno != EINTR) {
				rc = -errno;
				snprintf(err, cap, "cannot lock '%s': %s", lock,
					 strerror(errno));
				return rc;
			}
			if (stopped(o))
				return given_up(a, err, cap);
			usleep(LOCK_POLL_MS * 1000);
		}
	}
	if ((rc = orphan_dial(a, l->base, o, err, cap)) < 0)
		return rc;
	if (!line_up(l->base)) {
		char mark[1300], text[64];
		if (line_path(l->base, "dialling", mark, sizeof(mark)))
			return -ENAMETOOLONG;
		/* marked as being dialled (by us, until the dial command
		 * runs) before its keeper's .up exists: another's message
		 * waits for the dial rather than take the line as up */
		int tn = snprintf(text, sizeof(text), "pid=%ld\n", (long)getpid());
		if (a->dial[0])
			fr_write_file_atomic(mark, text, (size_t)tn);
		/* the keeper first: a sender that dies while it dials (a
		 * signal, a crash) lets go of the lock, and the keeper hangs
		 * the line up once it is idle, as after any transfer */
		line_touch(l->base);
		if ((rc = start_keeper(a, l->base)) < 0) {
			snprintf(err, cap, "cannot start the line's keeper: %s",
				 fr_strerror(rc));
			unlink(mark);
			l->failed = true;
			return rc;
		}
		if (a->dial[0]) {
			if (o && o->state_is)
				o->state_is(o->sock_arg, "dialling");
			fr_log(FR_LOG_INFO, "dialling %s %s (%s)", a->site,
			       a->name, fr_line_profile(a->type)->name);
			double t0 = fr_now_s();
			rc = run_hook(a, a->dial, "dial", mark, o, err, cap);
			unlink(mark); /* (ours, when the dial did not start) */
			if (rc == -ECANCELED) {
				/* it may come up all the same: the keeper
				 * hangs it up once idle */
				line_log(l->base, "%s", err);
				return rc;
			}
			if (rc < 0) {
				line_log(l->base, "dial failed: %s", err);
				keeper_off(l->base); /* no line to hang up */
				return rc;
			}
			double took = fr_now_s() - t0;
			line_log(l->base, "dialled in %.1f s", took);
			dial_keep(l->base, took);
			*dialled = true;
		}
	}
	line_touch(l->base);
	return 0;
}

static int ras_open(struct fr_output *o, char *err, size_t cap)
{
	struct line *l = calloc(1, sizeof(*l));
	bool dialled;
	int rc;

	if (!l)
		return -ENOMEM;
	l->lock_fd = -1;
	o->line = l;
	if ((rc = line_open(o->c, o->a, l, o, &dialled, err, cap)) < 0) {
		l->ended = rc == -ECANCELED; /* the keeper hangs up */
		return rc;
	}
	rc = fr_output_lan.open(o, err, cap);
	if (rc < 0)
		l->failed = true;
	return rc;
}

static int ras_offer(struct fr_output *o, struct fr_send_ctx *sc,
		     uint8_t *have, char *err, size_t cap)
{
	int rc = fr_output_lan.offer(o, sc, have, err, cap);

	if (rc < 0)
		line_of(o)->failed = true;
	return rc;
}

static int ras_send(struct fr_output *o, struct fr_send_ctx *sc,
		    const uint8_t *have, char *err, size_t cap)
{
	int rc = fr_output_lan.send(o, sc, have, err, cap);

	if (rc < 0)
		line_of(o)->failed = true;
	if (rc == FR_E_CLOSED)
		line_of(o)->closed = true;
	if (rc == -ECANCELED)
		line_of(o)->ended = true;
	return rc;
}

static void ras_close(struct fr_output *o)
{
	struct line *l = line_of(o);

	fr_output_lan.close(o);
	if (!l)
		return;
	if (l->lock_fd >= 0) {
		line_touch(l->base);
		/* a failed transfer: the line may be gone; the retry redials.
		 * A refused password is not the line's fault, but hanging up
		 * does not hurt. A send another link ended leaves the line
		 * as any transfer does: its keeper hangs up once idle. */
		if (l->failed && !l->ended)
			hang_up_now(o->a, l->base,
				    l->closed ? "its schedule closed"
					      : "the session over it failed");
		close(l->lock_fd);
	}
	free(l);
	o->line = NULL;
}

/* ---- the line alone: ferry bench link --------------------------------------- */

struct fr_line {
	struct line l;
	struct fr_address a;
};

int fr_line_take(const struct fr_config *c, const struct fr_address *a,
		 bool wait, struct fr_line **out, bool *dialled, char *err,
		 size_t cap)
{
	struct fr_line *fl = calloc(1, sizeof(*fl));
	int rc;

	*out = NULL;
	*dialled = false;
	if (!fl)
		return -ENOMEM;
	fl->a = *a;
	fl->l.lock_fd = -1;
	fl->l.nowait = !wait;
	if ((rc = line_open(c, a, &fl->l, NULL, dialled, err, cap)) == 1) {
		close(fl->l.lock_fd); /* not ours: its transfer keeps it up */
		free(fl);
		return 1;
	}
	if (rc < 0) {
		/* a failed dial leaves nothing up; a keeper that did not
		 * start leaves the line up: hang it up */
		if (fl->l.failed)
			hang_up_now(a, fl->l.base, "the measurement failed");
		if (fl->l.lock_fd >= 0)
			close(fl->l.lock_fd);
		free(fl);
		return rc;
	}
	*out = fl;
	return 0;
}

/* A transfer waits for the line when, once we let go of its lock, it
 * takes it within a moment; else the lock, taken again (its fd). */
static int line_retake(const char *base)
{
	char lock[1300];

	if (line_path(base, "lock", lock, sizeof(lock)))
		return -1;
	usleep(200000);
	int fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

bool fr_line_release(struct fr_line *fl, bool hang_up, const char *why)
{
	bool hung = false;
	int fd;

	if (!fl)
		return false;
	line_touch(fl->l.base);
	close(fl->l.lock_fd);
	if (hang_up && (fd = line_retake(fl->l.base)) >= 0) {
		hang_up_now(&fl->a, fl->l.base, why);
		close(fd);
		hung = true;
	} else if (hang_up) {
		fr_log(FR_LOG_INFO,
		       "%s %s: a transfer is waiting for the line; left up "
		       "until it is idle",
		       fl->a.site, fl->a.name);
	}
	free(fl);
	return hung;
}

#define RAS_OPS(type_name)                                                     \
	{                                                                      \
		.name = type_name, .open = ras_open, .offer = ras_offer,       \
		.send = ras_send, .close = ras_close,                           \
	}

static const struct fr_output_ops ras_ops[] = {
	RAS_OPS("async"), RAS_OPS("isdn"), RAS_OPS("x25"), RAS_OPS("sna")};

const struct fr_output_ops *fr_output_for(int addr_type)
{
	if (addr_type == FR_ADDR_LAN)
		return &fr_output_lan;
	if (addr_type >= FR_ADDR_ASYNC && addr_type <= FR_ADDR_SNA)
		return &ras_ops[addr_type - FR_ADDR_ASYNC];
	return NULL;
}

/* ---- the keeper ------------------------------------------------------------ */

/* The dial command that <base>.dialling names runs still. */
static bool dial_running(const char *path)
{
	pid_t pid = pid_in(path);

	return pid && fr_pid_alive(pid);
}

static volatile sig_atomic_t keeper_stop;

static void keeper_signal(int sig)
{
	(void)sig;
	keeper_stop = 1;
}

/*
 * ferry __line-keeper BASE IDLE_MS HANGUP SITE NAME HOST TYPE: wait
 * until nobody holds BASE.lock and BASE.used is IDLE_MS old, then run
 * HANGUP and remove BASE.up. Ends without hanging up when BASE.up no
 * longer names it (someone hung up already) or on SIGTERM.
 */
int fr_line_keeper(int argc, char **argv)
{
	if (argc != 8)
		return 2;
	const char *base = argv[1];
	unsigned idle_ms = (unsigned)strtoul(argv[2], NULL, 10);
	struct fr_address a = {0};
	char lock[1300], used[1300], up[1300], dialling[1300], err[600];
	struct sigaction sa = {0};

	snprintf(a.hangup, sizeof(a.hangup), "%s", argv[3]);
	snprintf(a.site, sizeof(a.site), "%s", argv[4]);
	snprintf(a.name, sizeof(a.name), "%s", argv[5]);
	snprintf(a.host, sizeof(a.host), "%s", argv[6]);
	for (int t = FR_ADDR_ASYNC; t <= FR_ADDR_SNA; t++)
		if (!strcmp(fr_line_profile(t)->name, argv[7]))
			a.type = t;
	if (line_path(base, "lock", lock, sizeof(lock)) ||
	    line_path(base, "used", used, sizeof(used)) ||
	    line_path(base, "up", up, sizeof(up)) ||
	    line_path(base, "dialling", dialling, sizeof(dialling)))
		return 1;
	sa.sa_handler = keeper_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	unsigned step = idle_ms / 4 < 1000 ? idle_ms / 4 : 1000;
	if (step < 50)
		step = 50;
	while (!keeper_stop) {
		usleep(step * 1000);
		if (line_up(base) != getpid())
			return 0; /* hung up by someone else */
		int fd = open(lock, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return 1;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			/* a transfer is on the line: it is used now (a
			 * sender killed later leaves no mark of its own) */
			line_touch(base);
			close(fd);
			continue;
		}
		struct stat st;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		/* a dial command still running (its sender gone): the line
		 * comes up when it ends, and is idle from then */
		if (dial_running(dialling)) {
			line_touch(base);
			close(fd);
			continue;
		}
		double idle = stat(used, &st) < 0
				      ? 1e9
				      : (double)(now.tv_sec - st.st_mtim.tv_sec) +
						(double)(now.tv_nsec - st.st_mtim.tv_nsec) /
							1e9;
		if (idle * 1000 >= idle_ms) {
			unlink(up);
			if (!a.hangup[0])
				line_log(base,
					 "idle for %.0f s; no hang-up command: "
					 "left as it is",
					 idle);
			else if (run_hook(&a, a.hangup, "hang-up", NULL, NULL,
					  err, sizeof(err)) < 0)
				line_log(base,
					 "idle for %.0f s; hang-up failed: %s",
					 idle, err);
			else
				line_log(base, "hung up after %.0f s idle",
					 idle);
			close(fd);
			return 0;
		}
		close(fd);
	}
	return 0;
}
