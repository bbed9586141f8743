/*
 * util.c - small helpers the engine shares: clocks, directories, atomic
 * file replacement, size formatting, JSON escaping.
 */
#include <ctype.h>
#include <signal.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/fr_core.h"

#ifdef FERRY_TEST_HOOKS
static const char *hook_value(const char *name)
{
	char var[64];

	snprintf(var, sizeof(var), "FERRY_%s", name);
	return getenv(var);
}

static void hook_bad(const char *name, const char *v, const char *want)
{
	fprintf(stderr, "ferry: test switch FERRY_%s='%s' must be %s\n", name,
		v, want);
	exit(2);
}

bool fr_hook_flag(const char *name)
{
	const char *v = hook_value(name);

	if (!v)
		return false;
	if (strcmp(v, "1"))
		hook_bad(name, v, "1 (or unset)");
	return true;
}

unsigned long fr_hook_num(const char *name, unsigned long dflt)
{
	const char *v = hook_value(name);
	char *end;

	if (!v)
		return dflt;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (!*v || *end || errno || !isdigit((unsigned char)*v))
		hook_bad(name, v, "a number");
	return n;
}

void fr_hooks_check(void)
{
	static const char *const flags[] = {
		"NO_DIRECT",  "FORCE_OFFER_Z", "REFUSE_OFFER_Z", "FORCE_STREAM",
		"FORCE_REF",  "NO_STREAM",     "NO_REF",	 "FORCE_ZC",
		"NO_ZC",      "REFUSE_STREAM", "NO_REGISTER", "XCHACHA",
		"SODIUM_GCM", "REFUSE_BENCH", "MEDIA_ROOM_UNKNOWN"};
	static const char *const nums[] = {"STALL_MS", "HASH_DELAY_MS",
					   "DRAIN_DELAY_MS", "CORRUPT_SEGMENT",
					   "CLOCK_SHIFT_S", "BENCH_STAGE_MS"};

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		fr_hook_flag(flags[i]);
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		fr_hook_num(nums[i], 0);
}
#else
void fr_hooks_check(void)
{
}

bool fr_hook_flag(const char *name)
{
	return false;
}

unsigned long fr_hook_num(const char *name, unsigned long dflt)
{
	return dflt;
}
#endif

time_t fr_schedule_now(void)
{
	return time(NULL) + (time_t)fr_hook_num("CLOCK_SHIFT_S", 0);
}

uint64_t fr_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double fr_now_s(void)
{
	return (double)fr_now_ns() / 1e9;
}

double fr_process_s(void)
{
	char buf[1024], *p;
	unsigned long long start = 0;
	struct timespec ts;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* field 22, starttime in clock ticks since boot; the name (field
	 * 2) may hold spaces, so count from its closing parenthesis */
	if (!(p = strrchr(buf, ')')))
		return 0;
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return 0;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9 -
	       (double)start / (double)sysconf(_SC_CLK_TCK);
}

double fr_thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int fr_path_fmt(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

int fr_mkdirs(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = c;
	}
	return 0;
}

int fr_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int fr_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

int fr_write_file_atomic(const char *path, const void *data, size_t len)
{
	char tmp[4200], dir[4200];
	int fd, rc;

	if (fr_path_fmt(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = fr_pwrite_all(fd, data, len, -1);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		fr_fsync_dir(dir[0] ? dir : "/");
	}
	return 0;
}

int fr_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t got = 0;

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return FR_E_TOO_LARGE;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

static int remove_at(int parent, const char *name)
{
	struct stat st;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(parent, name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		/* a directory made read-only by a package must still go */
		fchmod(fd, 0700);
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return -errno;
		}
		struct dirent *de;
		int rc = 0;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			int r = remove_at(dirfd(d), de->d_name);
			if (r < 0 && rc == 0)
				rc = r;
		}
		closedir(d);
		if (rc < 0)
			return rc;
		if (unlinkat(parent, name, AT_REMOVEDIR) < 0)
			return -errno;
		return 0;
	}
	if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int fr_remove_tree(const char *path)
{
	return remove_at(AT_FDCWD, path);
}

/* Unix time t broken down (UTC or local time); false for t < 0 */
static bool tm_of(int64_t t, bool utc, struct tm *tm)
{
	time_t tt = (time_t)t;

	return t >= 0 && (utc ? gmtime_r(&tt, tm) : localtime_r(&tt, tm));
}

/* "\"2026-05-01T12:00:03Z\"", or null for an unknown time */
const char *fr_json_time(int64_t t, char *buf, size_t cap)
{
	struct tm tm;

	if (!tm_of(t, true, &tm) ||
	    !strftime(buf, cap, "\"%Y-%m-%dT%H:%M:%SZ\"", &tm))
		snprintf(buf, cap, "null");
	return buf;
}

/* "2026-05-01 14:00:03", local time; "?" for an unknown time */
const char *fr_time_text(int64_t t, char *buf, size_t cap)
{
	struct tm tm;

	if (!tm_of(t, false, &tm) ||
	    !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "?");
	return buf;
}

/* "Sat 2026-05-02 14:00", local time: when a window opens */
const char *fr_when_text(int64_t t, char *buf, size_t cap)
{
	struct tm tm;

	if (!tm_of(t, false, &tm) ||
	    !strftime(buf, cap, "%a %Y-%m-%d %H:%M", &tm))
		snprintf(buf, cap, "?");
	return buf;
}

/* "45s", "12m", "1m30s", "3h05m", "4d07h" */
const char *fr_span_str(int64_t s, char *buf, size_t cap)
{
	if (s < 0)
		snprintf(buf, cap, "-");
	else if (s < 60)
		snprintf(buf, cap, "%llds", (long long)s);
	else if (s < 3600 && s % 60)
		snprintf(buf, cap, "%lldm%02llds", (long long)(s / 60),
			 (long long)(s % 60));
	else if (s < 3600)
		snprintf(buf, cap, "%lldm", (long long)(s / 60));
	else if (s < 86400)
		snprintf(buf, cap, "%lldh%02lldm", (long long)(s / 3600),
			 (long long)(s / 60 % 60));
	else
		snprintf(buf, cap, "%lldd%02lldh", (long long)(s / 86400),
			 (long long)(s / 3600 % 24));
	return buf;
}

void fr_deadline(struct timespec *t, clockid_t clk, double secs)
{
	clock_gettime(clk, t);
	if (secs < 0)
		secs = 0;
	t->tv_sec += (time_t)secs;
	t->tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

const char *fr_clock_str(double s, char *buf, size_t cap)
{
	if (s < 0 || s > 99 * 3600) {
		snprintf(buf, cap, "--:--");
		return buf;
	}
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
	return buf;
}

const char *fr_human_bytes(uint64_t b, char *buf, size_t cap)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	unsigned u = 0;

	while (v >= 1024.0 && u + 1 < FR_ARRAY_SIZE(units)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

/* ---- printing names ------------------------------------------------------ */

/*
 * A name may hold any byte but NUL and '/'. Printed raw, a newline forges
 * a log line, an escape sequence drives the terminal, and bytes that are
 * not UTF-8 make JSON invalid. Both escapers below walk a name one unit at
 * a time: a valid UTF-8 sequence of a printable character, or one byte.
 */

/* Length of the valid UTF-8 sequence of a printable character at s (2..4),
 * or 0: a lone or invalid byte, an overlong form, a surrogate, past
 * U+10FFFF, or a C1 control (U+0080..U+009F, which terminals obey). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
	uint32_t cp;

	if (n == 0 || c > 0xf4)
		return 0;
	cp = c & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0xa0) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* One unit of s as text (at most 4 bytes into o); *adv: bytes of s used. */
static size_t esc_unit(const unsigned char *s, char *o, size_t *adv)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = s[0];
	size_t n;

	*adv = 1;
	if (c == '\\' || c == '\n' || c == '\t' || c == '\r') {
		o[0] = '\\';
		o[1] = c == '\\'   ? '\\'
		       : c == '\n' ? 'n'
		       : c == '\t' ? 't'
				   : 'r';
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		o[0] = (char)c;
		return 1;
	}
	if (c >= 0x80 && (n = utf8_len(s)) > 0) {
		memcpy(o, s, n);
		*adv = n;
		return n;
	}
	o[0] = '\\';
	o[1] = 'x';
	o[2] = hex[c >> 4];
	o[3] = hex[c & 15];
	return 4;
}

const char *fr_esc(const char *s, char *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0, mark = 0, adv, k;
	char u[4];

	if (cap < 4) {
		if (cap)
			out[0] = '\0';
		return out;
	}
	while (*p) {
		k = esc_unit(p, u, &adv);
		if (n + k + 1 > cap) { /* cut back to where "..." fits */
			memcpy(out + mark, "...", 3);
			n = mark + 3;
			break;
		}
		memcpy(out + n, u, k);
		n += k;
		p += adv;
		if (n + 4 <= cap)
			mark = n;
	}
	out[n] = '\0';
	return out;
}

/* One unit of s inside a JSON string (at most 6 bytes into o). Control
 * characters use JSON's escapes; a byte that is not UTF-8 cannot be a
 * JSON character and is written as the four characters \xNN. */
static size_t json_unit(const unsigned char *s, char *o, size_t *adv)
{
	unsigned char c = s[0];
	size_t n;

	*adv = 1;
	if (c == '"' || c == '\\') {
		o[0] = '\\';
		o[1] = (char)c;
		return 2;
	}
	if (c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f') {
		o[0] = '\\';
		o[1] = c == '\n'   ? 'n'
		       : c == '\t' ? 't'
		       : c == '\r' ? 'r'
		       : c == '\b' ? 'b'
				   : 'f';
		return 2;
	}
	if (c < 0x20 || c == 0x7f)
		return (size_t)snprintf(o, 7, "\\u%04x", c);
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if ((n = utf8_len(s)) > 0) {
		memcpy(o, s, n);
		*adv = n;
		return n;
	}
	if (c == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) { /* C1 control */
		*adv = 2;
		return (size_t)snprintf(o, 7, "\\u%04x", s[1]);
	}
	return (size_t)snprintf(o, 7, "\\\\x%02x", c);
}


const char *fr_json_str(const char *s, char *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0, adv, k;
	char u[8];

	if (cap < 3)
		return "\"\"";
	out[n++] = '"';
	while (*p) {
		k = json_unit(p, u, &adv);
		if (n + k + 2 > cap)
			break;
		memcpy(out + n, u, k);
		n += k;
		p += adv;
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

void fr_json_fput(const char *s, FILE *f)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t adv, k;
	char u[8];

	fputc('"', f);
	while (*p) {
		k = json_unit(p, u, &adv);
		fwrite(u, 1, k, f);
		p += adv;
	}
	fputc('"', f);
}

/* ---- processes ------------------------------------------------------------ */

bool fr_pid_alive(long pid)
{
	char path[64], st[512];

	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM))
		return false;
	/* /proc/PID/stat: "pid (comm) S ...", comm may hold spaces and
	 * parentheses: the state follows the last ')' */
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* no /proc: kill's word */
	ssize_t n = read(fd, st, sizeof(st) - 1);
	close(fd);
	if (n <= 0)
		return errno != ESRCH;
	st[n] = '\0';
	const char *rp = strrchr(st, ')');
	return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

/* ---- key=value records -------------------------------------------------- */

int fr_kv_get(const char *text, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = ll - kl - 1;
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = '\0';
			return 0;
		}
		p = eol ? eol + 1 : NULL;
	}
	out[0] = '\0';
	return -ENOENT;
}

long fr_kv_num(const char *text, const char *key)
{
	char v[64];

	if (fr_kv_get(text, key, v, sizeof(v)))
		return 0;
	return strtol(v, NULL, 10);
}

/* ---- O_DIRECT alignment (the sender's reads, the receiver's writes) ---- */

uint32_t fr_dio_shift(const struct fr_manifest *m, uint32_t seg)
{
	struct fr_extent_iter it;
	struct fr_extent x, best = {0};

	fr_extent_iter_init(&it, m, seg);
	while (fr_extent_next(&it, &x))
		if (x.len > best.len)
			best = x;
	return (uint32_t)((best.file_off - best.seg_off) % FR_DIO_ALIGN);
}

struct fr_dio_split fr_dio_split(const uint8_t *at, uint64_t off, uint32_t len,
				 bool direct)
{
	struct fr_dio_split d = {.head = len};
	uint32_t head = (uint32_t)((FR_DIO_ALIGN - off % FR_DIO_ALIGN) %
				   FR_DIO_ALIGN);

	if (direct && ((uintptr_t)at - off) % FR_DIO_ALIGN == 0 &&
	    len >= head + FR_DIO_MIN) {
		d.head = head;
		d.mid = (len - head) & ~(FR_DIO_ALIGN - 1);
		d.tail = len - head - d.mid;
	}
	return d;
}

#ifndef __NR_cachestat
#define __NR_cachestat 451 /* Linux 6.5; the same number on every arch */
#endif

int64_t fr_cached_bytes(int fd)
{
	struct {
		uint64_t off, len;
	} range = {0, 0}; /* the whole file */
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted,
			nr_recently_evicted;
	} cs;
	long page = sysconf(_SC_PAGESIZE);

	if (syscall(__NR_cachestat, fd, &range, &cs, 0) != 0 || page <= 0)
		return -1;
	return (int64_t)(cs.nr_cache * (uint64_t)page);
}
