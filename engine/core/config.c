/*
 * config.c - one INI file per site, read with inih. Every key is known:
 * a typo is an error that names the file, the line and the key, never a
 * silently ignored setting. Secrets are read from the files (or
 * environment variables) the config names and turned into keys at once;
 * the password itself is wiped after derivation.
 *
 * inih is fed through a reader of our own (read_line) that counts the
 * lines, so every error names its own line, and stops at the first
 * error. A key or a section given twice is refused (naming both lines)
 * rather than the last one silently winning; indentation is allowed and
 * stripped, so an indented line is never taken for the continuation of
 * the previous value.
 */
#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fr_core.h"

struct pending_secret {
	char file[1024];
	char env[128];
};

/* a section header or a key already read, to refuse it a second time */
struct seen {
	char section[160]; /* its words joined by one space */
	char name[64];     /* "" for the section header itself */
	int line;
};

struct loader {
	struct fr_config *c;
	char err[512];
	int err_line;       /* the first error's line; 0: none yet */
	int line;           /* the line being parsed */
	FILE *f;
	struct seen *seen;
	unsigned n_seen;
	struct pending_secret *acct_secrets; /* parallel to c->accounts */
	struct pending_secret *addr_secrets; /* parallel to c->addresses */
	char *addr_explicit_account;         /* per address: set by config */
};

/* s (a number and its unit: ms, s, m or min, h, d, w) as milliseconds,
 * any size */
static int parse_duration(const char *s, double *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0 || isnan(v) || isinf(v))
		return FR_E_CONFIG;
	while (*end == ' ')
		end++;
	/* a unit is required: is "7" seven seconds or seven days? (0 is 0
	 * in any unit) */
	double mul = 1000.0;
	if (!*end && v != 0)
		return FR_E_CONFIG;
	if (!strcmp(end, "ms"))
		mul = 1.0;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000.0;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mul = 60000.0;
	else if (!strcmp(end, "h"))
		mul = 3600000.0;
	else if (!strcmp(end, "d"))
		mul = 86400000.0;
	else if (!strcmp(end, "w"))
		mul = 7 * 86400000.0;
	else
		return FR_E_CONFIG;
	*ms = v * mul;
	return 0;
}

int fr_parse_duration_ms(const char *s, unsigned *out)
{
	double ms;

	if (parse_duration(s, &ms) || ms > (double)UINT_MAX)
		return FR_E_CONFIG;
	*out = (unsigned)ms;
	return 0;
}

int fr_parse_duration_s(const char *s, double *out)
{
	double ms;

	if (parse_duration(s, &ms) || ms / 1000.0 > 1e11)
		return FR_E_CONFIG;
	*out = ms / 1000.0;
	return 0;
}

int fr_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0 || isnan(v))
		return FR_E_CONFIG;
	/* as dd(1) and coreutils count: K, M, G, T and KiB... are powers
	 * of 1024; KB, MB, GB, TB powers of 1000, as media are sold (a
	 * DVD's 4.7GB is 4.38 GiB) */
	static const char units[] = "KMGT";
	const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
	double mul = 1;
	if (*end && !u)
		return FR_E_CONFIG;
	if (u) {
		int power = (int)(u - units) + 1;
		double base = 1024.0;
		end++;
		if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b'))
			end += 2;
		else if (*end == 'B' || *end == 'b') {
			base = 1000.0;
			end++;
		}
		while (power--)
			mul *= base;
	}
	if (*end || v * mul > 9.0e18)
		return FR_E_CONFIG;
	*out = (uint64_t)(v * mul);
	return 0;
}

static int parse_int(const char *v, long lo, long hi, int *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (end == v || *end || errno || n < lo || n > hi)
		return -1;
	*out = (int)n;
	return 0;
}

/* A line rate: "128k", "2M", "1.5G", "9600" (bit/s, decimal), optionally
 * followed by "bit/s" or "bps". */
static int parse_rate(const char *v, uint64_t *out)
{
	char *end;
	double n;

	errno = 0;
	n = strtod(v, &end);
	if (end == v || errno || !(n > 0))
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		n *= 1e3;
		end++;
		break;
	case 'M':
		n *= 1e6;
		end++;
		break;
	case 'G':
		n *= 1e9;
		end++;
		break;
	}
	if (*end && strcmp(end, "bit/s") && strcmp(end, "bps"))
		return -1;
	if (n < 300 || n > 1e12)
		return -1;
	*out = (uint64_t)n;
	return 0;
}

static int code_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > FR_CODE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

static int copy_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n >= cap)
		return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

/* Only the first error is kept: it is the one at L->line. */
static void fail_at(struct loader *L, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail_at(struct loader *L, const char *fmt, ...)
{
	va_list ap;

	if (L->err_line)
		return;
	va_start(ap, fmt);
	vsnprintf(L->err, sizeof(L->err), fmt, ap);
	va_end(ap);
	L->err_line = L->line;
}

#define FAIL(...)                                                             \
	do {                                                                  \
		fail_at(L, __VA_ARGS__);                                      \
		return 0;                                                     \
	} while (0)

/*
 * "host:port", "[v6-address]:port", or ":port" where the host may be
 * left out (listen: every address). The port is a number from 1 to
 * 65535: 0 would make the kernel pick one nobody knows, and a service
 * name or a number out of range is a typo. NULL when v is good, else why.
 */
static const char *hostport_problem(const char *v, bool host_optional)
{
	const char *colon, *p;
	unsigned long port = 0;

	if (v[0] == '[') {
		const char *end = strchr(v, ']');
		if (!end || end[1] != ':')
			return "expected [v6-address]:port";
		colon = end + 1;
		if (end == v + 1 && !host_optional)
			return "a host is needed before the port";
	} else {
		colon = strrchr(v, ':');
		if (!colon)
			return "expected host:port";
		if (colon == v && !host_optional)
			return "a host is needed before the port";
	}
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || p - colon > 5)
			return "the port must be a number from 1 to 65535";
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port < 1 || port > 65535)
		return "the port must be a number from 1 to 65535";
	return NULL;
}

/* Section words joined by one space: "[address  HQ lan]" is
 * "address HQ lan". Empty when the text has no word. */
static void section_norm(const char *text, char *out, size_t cap)
{
	char w[3][64] = {"", "", ""};
	int n = sscanf(text, "%63s %63s %63s", w[0], w[1], w[2]);

	snprintf(out, cap, "%s%s%s%s%s", n > 0 ? w[0] : "", n > 1 ? " " : "",
		 n > 1 ? w[1] : "", n > 2 ? " " : "", n > 2 ? w[2] : "");
}

/* The line where section (and key name, "" for the header) was first
 * given, else 0 after remembering it at the current line. */
static int seen_before(struct loader *L, const char *section,
		       const char *name)
{
	for (unsigned i = 0; i < L->n_seen; i++)
		if (!strcmp(L->seen[i].section, section) &&
		    !strcmp(L->seen[i].name, name))
			return L->seen[i].line;
	struct seen *ns = realloc(L->seen, (L->n_seen + 1) * sizeof(*ns));
	if (!ns)
		return -1;
	L->seen = ns;
	snprintf(ns[L->n_seen].section, sizeof(ns->section), "%s", section);
	snprintf(ns[L->n_seen].name, sizeof(ns->name), "%s", name);
	ns[L->n_seen++].line = L->line;
	return 0;
}

/* A "[section]" line: refuse it when the section was given before. */
static void note_section(struct loader *L, const char *text)
{
	const char *end = strchr(text, ']');
	char inner[200], norm[160];
	int prev;

	if (!end) {
		fail_at(L, "section header '%.*s' has no ']'",
			(int)strcspn(text, "\r\n"), text);
		return;
	}
	snprintf(inner, sizeof(inner), "%.*s", (int)(end - text - 1), text + 1);
	section_norm(inner, norm, sizeof(norm));
	if (!norm[0])
		return; /* the handler refuses a key in it */
	prev = seen_before(L, norm, "");
	if (prev < 0)
		fail_at(L, "out of memory");
	else if (prev)
		fail_at(L, "section [%s] is given twice, on lines %d and %d: "
			   "merge them into one",
			norm, prev, L->line);
}

/*
 * inih's reader: one line of the file, counted; NULL after an error so
 * that parsing stops at the first one. Leading blanks are stripped:
 * inih would take an indented line for the continuation of the previous
 * key's value and hand that key over again with the new text.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct loader *L = stream;
	char *p = str;
	size_t n;

	if (L->err_line || !fgets(str, num, L->f))
		return NULL;
	L->line++;
	n = strlen(str);
	if (n == (size_t)num - 1 && str[n - 1] != '\n') {
		int ch = fgetc(L->f);
		if (ch != EOF && ch != '\n') {
			while ((ch = fgetc(L->f)) != EOF && ch != '\n')
				;
			fail_at(L, "the line is longer than %d characters",
				num - 2);
			str[0] = '\0';
			return str;
		}
	}
	if (L->line == 1 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3; /* a UTF-8 byte-order mark */
	p += strspn(p, " \t");
	memmove(str, p, strlen(p) + 1);
	n = strcspn(str, "\r\n");
	if (str[0] == '[')
		note_section(L, str);
	else if (n && !strchr(";#", str[0]) && !memchr(str, '=', n) &&
		 !memchr(str, ':', n))
		fail_at(L, "'%.*s' is neither 'key = value' nor '[section]'",
			(int)n, str);
	return str;
}

static struct fr_account *section_account(struct loader *L, const char *code,
					  struct pending_secret **sec)
{
	struct fr_config *c = L->c;

	for (unsigned i = 0; i < c->n_accounts; i++)
		if (!strcmp(c->accounts[i].code, code)) {
			*sec = &L->acct_secrets[i];
			return &c->accounts[i];
		}
	struct fr_account *na =
		realloc(c->accounts, (c->n_accounts + 1) * sizeof(*na));
	struct pending_secret *ns = realloc(
		L->acct_secrets, (c->n_accounts + 1) * sizeof(*ns));
	if (na)
		c->accounts = na;
	if (ns)
		L->acct_secrets = ns;
	if (!na || !ns)
		return NULL;
	memset(&na[c->n_accounts], 0, sizeof(*na));
	memset(&ns[c->n_accounts], 0, sizeof(*ns));
	memcpy(na[c->n_accounts].code, code, strlen(code) + 1);
	*sec = &ns[c->n_accounts];
	return &na[c->n_accounts++];
}

static struct fr_address *section_address(struct loader *L, const char *site,
					  const char *name,
					  struct pending_secret **sec)
{
	struct fr_config *c = L->c;

	for (unsigned i = 0; i < c->n_addresses; i++)
		if (!strcmp(c->addresses[i].site, site) &&
		    !strcmp(c->addresses[i].name, name)) {
			*sec = &L->addr_secrets[i];
			return &c->addresses[i];
		}
	unsigned n = c->n_addresses + 1;
	struct fr_address *na = realloc(c->addresses, n * sizeof(*na));
	if (na)
		c->addresses = na;
	struct pending_secret *ns = realloc(L->addr_secrets, n * sizeof(*ns));
	if (ns)
		L->addr_secrets = ns;
	char *ne = realloc(L->addr_explicit_account, n);
	if (ne)
		L->addr_explicit_account = ne;
	if (!na || !ns || !ne)
		return NULL;
	struct fr_address *a = &na[n - 1];
	memset(a, 0, sizeof(*a));
	memset(&ns[n - 1], 0, sizeof(*ns));
	ne[n - 1] = 0;
	memcpy(a->site, site, strlen(site) + 1);
	memcpy(a->name, name, strlen(name) + 1);
	a->type = -1;
	a->priority = 1;
	a->idle_ms = 60000;
	c->n_addresses = n;
	*sec = &ns[n - 1];
	return a;
}

static int secret_key(struct loader *L, struct pending_secret *sec,
		      const char *name, const char *value)
{
	bool file = !strcmp(name, "password-file");
	if ((file && sec->env[0]) ||
	    (!strcmp(name, "password-env") && sec->file[0])) {
		fail_at(L, "password-file and password-env are both given: "
			   "keep one");
		return -1;
	}
	if (file) {
		/* a relative path is the config's neighbour, wherever ferry
		 * is started from */
		const char *slash = strrchr(L->c->path, '/');
		int n = value[0] == '/' || !slash
				? snprintf(sec->file, sizeof(sec->file), "%s",
					   value)
				: snprintf(sec->file, sizeof(sec->file),
					   "%.*s/%s", (int)(slash - L->c->path),
					   L->c->path, value);
		if (n < 0 || (size_t)n >= sizeof(sec->file)) {
			fail_at(L, "password-file '%s' is too long", value);
			return -1;
		}
		return 1;
	}
	if (!strcmp(name, "password-env")) {
		if (copy_str(sec->env, sizeof(sec->env), value))
			return -1;
		return 1;
	}
	if (!strcmp(name, "password")) {
		fail_at(L, "'password' may not appear in a config file: put it "
			   "in a file named by password-file (mode 600) or in "
			   "an environment variable named by password-env");
		return -1;
	}
	return 0;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct loader *L = user;
	struct fr_config *c = L->c;
	char kind[32] = "", a1[64] = "", a2[64] = "", extra[8] = "";
	int n = sscanf(section, "%31s %63s %63s %7s", kind, a1, a2, extra);

	if (n <= 0)
		FAIL("key '%s' outside any section", name);
	if (n == 4 || strlen(section) > 160)
		FAIL("section [%s] has too many words or is too long", section);
	if (strlen(a1) >= FR_CODE_MAX + 1 && strcmp(kind, "site"))
		FAIL("site code '%s' in [%s] is longer than %d", a1, section,
		     FR_CODE_MAX);
	char norm[160];
	section_norm(section, norm, sizeof(norm));
	int prev = seen_before(L, norm, name);
	if (prev < 0)
		FAIL("out of memory");
	if (prev)
		FAIL("'%s' is given twice in [%s], on lines %d and %d: keep one",
		     name, norm, prev, L->line);
	if (!strcmp(kind, "site") && n == 1) {
		if (!strcmp(name, "code")) {
			if (!code_ok(value))
				FAIL("site code '%s' must be 1-%d letters, "
				     "digits, '-' or '_'",
				     value, FR_CODE_MAX);
			memcpy(c->code, value, strlen(value) + 1);
		} else if (!strcmp(name, "store")) {
			if (value[0] != '/' || copy_str(c->store, sizeof(c->store), value))
				FAIL("store '%s' must be an absolute path", value);
		} else if (!strcmp(name, "listen")) {
			const char *why = hostport_problem(value, true);
			if (why)
				FAIL("listen '%s': %s", value, why);
			if (copy_str(c->listen, sizeof(c->listen), value))
				FAIL("listen '%s' is too long", value);
		} else {
			FAIL("unknown key '%s' in [site] (expected code, store, "
			     "listen)",
			     name);
		}
		return 1;
	}
	if (!strcmp(kind, "account") && n == 2) {
		struct pending_secret *sec;
		if (!code_ok(a1))
			FAIL("account '%s' is not a valid site code", a1);
		if (!section_account(L, a1, &sec))
			FAIL("out of memory");
		int r = secret_key(L, sec, name, value);
		if (r < 0)
			FAIL("value of '%s' is too long", name);
		if (r == 0)
			FAIL("unknown key '%s' in [account %s] (expected "
			     "password-file or password-env)",
			     name, a1);
		return 1;
	}
	if (!strcmp(kind, "address") && n == 3) {
		struct pending_secret *sec;
		if (!code_ok(a1))
			FAIL("address site '%s' is not a valid site code", a1);
		struct fr_address *a = section_address(L, a1, a2, &sec);
		if (!a)
			FAIL("out of memory");
		int r = secret_key(L, sec, name, value);
		if (r < 0)
			FAIL("value of '%s' is too long", name);
		if (r > 0)
			return 1;
		if (!strcmp(name, "type")) {
			static const char *const types[] = {
				"lan", "async", "isdn", "x25", "sna", "courier"};
			a->type = -1;
			for (unsigned i = 0; i < FR_ARRAY_SIZE(types); i++)
				if (!strcmp(value, types[i]))
					a->type = (int)i;
			if (a->type < 0)
				FAIL("address type '%s' is not one of lan, async, "
				     "isdn, x25, sna, courier",
				     value);
		} else if (!strcmp(name, "host")) {
			const char *why = hostport_problem(value, false);
			if (why)
				FAIL("host '%s': %s", value, why);
			if (copy_str(a->host, sizeof(a->host), value))
				FAIL("host '%s' is too long", value);
		} else if (!strcmp(name, "account")) {
			if (!code_ok(value))
				FAIL("account '%s' is not a valid site code",
				     value);
			memcpy(a->account, value, strlen(value) + 1);
			L->addr_explicit_account[a - c->addresses] = 1;
		} else if (!strcmp(name, "media")) {
			if (value[0] != '/' ||
			    copy_str(a->media, sizeof(a->media), value))
				FAIL("media '%s' must be an absolute directory",
				     value);
		} else if (!strcmp(name, "transit")) {
			unsigned ms;
			if (fr_parse_duration_ms(value, &ms) ||
			    copy_str(a->transit, sizeof(a->transit), value))
				FAIL("transit '%s' must be a duration with its "
				     "unit, such as 36h or 3d",
				     value);
		} else if (!strcmp(name, "bandwidth")) {
			if (parse_rate(value, &a->bandwidth))
				FAIL("bandwidth '%s' must be a line rate in bit/s "
				     "such as 64k, 128k, 2M or 1G",
				     value);
		} else if (!strcmp(name, "schedule")) {
			char why[300];
			if (fr_schedule_parse(&a->schedule, value, why,
					      sizeof(why)))
				FAIL("schedule: %s", why);
		} else if (!strcmp(name, "rate-limit")) {
			char why[300];
			if (fr_ratelimit_parse(&a->ratelimit, value, why,
					       sizeof(why)))
				FAIL("rate-limit: %s", why);
		} else if (!strcmp(name, "dial") || !strcmp(name, "hang-up")) {
			char *dst = name[0] == 'd' ? a->dial : a->hangup;
			if (value[0] != '/' || copy_str(dst, sizeof(a->dial), value))
				FAIL("%s '%s' must be an absolute path to a "
				     "command",
				     name, value);
		} else if (!strcmp(name, "idle-timeout")) {
			if (fr_parse_duration_ms(value, &a->idle_ms) ||
			    a->idle_ms < 1000)
				FAIL("idle-timeout '%s' must be a duration of at "
				     "least 1s with its unit, such as 60s or 5m",
				     value);
		} else if (!strcmp(name, "priority")) {
			if (parse_int(value, 1, 1000, &a->priority))
				FAIL("priority '%s' must be a number from 1 to "
				     "1000",
				     value);
		} else {
			FAIL("unknown key '%s' in [address %s %s]", name, a1,
			     a2);
		}
		return 1;
	}
	if (!strcmp(kind, "sender") && n == 1) {
		if (!strcmp(name, "retries")) {
			if (parse_int(value, 0, 1000, &c->retries))
				FAIL("retries '%s' must be 0..1000", value);
		} else if (!strcmp(name, "retry-delay")) {
			if (fr_parse_duration_ms(value, &c->retry_delay_ms))
				FAIL("retry-delay '%s' must be a duration "
				     "with its unit, such as 60s, 2m or 500ms",
				     value);
		} else if (!strcmp(name, "max-sends")) {
			if (parse_int(value, 1, 64, &c->max_sends))
				FAIL("max-sends '%s' must be 1..64", value);
		} else if (!strcmp(name, "max-sends-per-site")) {
			if (parse_int(value, 1, 64, &c->max_sends_site))
				FAIL("max-sends-per-site '%s' must be 1..64",
				     value);
		} else if (!strcmp(name, "level")) {
			if (!strcmp(value, "auto"))
				c->level = -1;
			else if (parse_int(value, 0, 19, &c->level))
				FAIL("level '%s' must be auto or 0..19", value);
		} else if (!strcmp(name, "segment-size")) {
			uint64_t v;
			if (fr_parse_size(value, &v) || v < FR_SEG_MIN ||
			    v > FR_SEG_MAX)
				FAIL("segment-size '%s' must be between 4K and "
				     "64M",
				     value);
			c->seg_size = (uint32_t)v;
		} else if (!strcmp(name, "workers")) {
			if (parse_int(value, 0, 256, &c->workers))
				FAIL("workers '%s' must be 0 (one per core) "
				     "..256",
				     value);
		} else {
			FAIL("unknown key '%s' in [sender]", name);
		}
		return 1;
	}
	if (!strcmp(kind, "receiver") && n == 1) {
		if (!strcmp(name, "max-connections")) {
			if (parse_int(value, 1, 1024, &c->max_connections))
				FAIL("max-connections '%s' must be 1..1024",
				     value);
		} else {
			FAIL("unknown key '%s' in [receiver]", name);
		}
		return 1;
	}
	FAIL("unknown section [%s] (expected [site], [account SITE], "
	     "[address SITE NAME], [sender], [receiver])",
	     section);
}

/* An [account] or [address] section with no key in it would be left out
 * without a word (inih hands over keys, not sections): an account that
 * then refuses every login as a wrong password. Said, true. */
static bool empty_section(const struct loader *L, const char *path)
{
	for (unsigned i = 0; i < L->n_seen; i++) {
		const struct seen *h = &L->seen[i];
		bool acct = !strncmp(h->section, "account ", 8);
		if (h->name[0] || (!acct && strncmp(h->section, "address ", 8)))
			continue;
		bool keys = false;
		for (unsigned k = 0; k < L->n_seen && !keys; k++)
			keys = L->seen[k].name[0] &&
			       !strcmp(L->seen[k].section, h->section);
		if (keys)
			continue;
		fr_log(FR_LOG_ERROR, "config '%s', line %d: [%s] is empty: %s",
		       path, h->line, h->section,
		       acct ? "an account needs password-file or password-env"
			    : "an address needs type, host and password-file "
			      "or password-env");
		return true;
	}
	return false;
}

static int derive(const char *what, const struct pending_secret *sec,
		  const char *account, uint8_t key[32])
{
	char pw[1024];
	int rc = fr_secret_load(sec->file, sec->env, pw, sizeof(pw), what);

	if (rc < 0)
		return rc;
	rc = fr_key_derive(pw, strlen(pw), account, key);
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

int fr_config_load(struct fr_config *c, const char *path)
{
	struct loader L = {.c = c};
	int rc, line;

	memset(c, 0, sizeof(*c));
	c->retries = 2;
	c->retry_delay_ms = 60000;
	c->max_sends = 5;
	c->max_sends_site = 3;
	c->level = -1;
	c->seg_size = FR_SEG_DEFAULT;
	c->max_connections = 4;
	if (copy_str(c->path, sizeof(c->path), path))
		return -ENAMETOOLONG;
	L.f = fopen(path, "re");
	struct stat st;
	if (L.f && fstat(fileno(L.f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(L.f);
		L.f = NULL;
		errno = EISDIR;
	}
	if (!L.f) {
		rc = -errno;
		fr_log(FR_LOG_ERROR, "cannot read config '%s': %s", path,
		       strerror(errno));
		goto fail;
	}
	line = ini_parse_stream(read_line, &L, handler, &L);
	if (ferror(L.f)) {
		rc = -EIO;
		fr_log(FR_LOG_ERROR, "cannot read config '%s': %s", path,
		       strerror(EIO));
		goto fail;
	}
	if (line == -2) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = FR_E_CONFIG;
	if (L.err_line && (line <= 0 || L.err_line <= line)) {
		fr_log(FR_LOG_ERROR, "config '%s', line %d: %s", path,
		       L.err_line, L.err);
		goto fail;
	}
	if (line != 0) {
		fr_log(FR_LOG_ERROR, "config '%s', line %d: syntax error", path,
		       line);
		goto fail;
	}
	if (empty_section(&L, path))
		goto fail;
	if (!c->code[0]) {
		fr_log(FR_LOG_ERROR, "config '%s': [site] needs a code", path);
		goto fail;
	}
	if (!c->store[0]) {
		fr_log(FR_LOG_ERROR, "config '%s': [site] needs a store", path);
		goto fail;
	}
	for (unsigned i = 0; i < c->n_addresses; i++) {
		struct fr_address *a = &c->addresses[i];
		char what[160];
		snprintf(what, sizeof(what), "config '%s' [address %s %s]",
			 path, a->site, a->name);
		if (a->type < 0) {
			fr_log(FR_LOG_ERROR, "%s: needs a type", what);
			goto fail;
		}
		if (a->type != FR_ADDR_COURIER && !a->host[0]) {
			fr_log(FR_LOG_ERROR, "%s: needs a host (host:port)",
			       what);
			goto fail;
		}
		if (a->type == FR_ADDR_COURIER && a->host[0]) {
			fr_log(FR_LOG_ERROR,
			       "%s: host belongs to network addresses; a courier "
			       "has media and transit",
			       what);
			goto fail;
		}
		if (a->type != FR_ADDR_COURIER && (a->media[0] || a->transit[0])) {
			fr_log(FR_LOG_ERROR,
			       "%s: media and transit belong to a courier address "
			       "(type = courier)",
			       what);
			goto fail;
		}
		if (a->type == FR_ADDR_COURIER &&
		    (a->schedule.set || a->ratelimit.mode != FR_RL_NONE ||
		     a->bandwidth)) {
			fr_log(FR_LOG_ERROR,
			       "%s: schedule, rate-limit and bandwidth belong to "
			       "network addresses, not to a courier",
			       what);
			goto fail;
		}
		bool ras = a->type >= FR_ADDR_ASYNC && a->type <= FR_ADDR_SNA;
		if (!ras && (a->dial[0] || a->hangup[0])) {
			fr_log(FR_LOG_ERROR,
			       "%s: dial and hang-up belong to RAS addresses "
			       "(async, isdn, x25, sna)",
			       what);
			goto fail;
		}
		/* what would fail only when the line is wanted: said now */
		for (int k = 0; ras && k < 2; k++) {
			const char *cmd = k ? a->hangup : a->dial;
			if (cmd[0] && access(cmd, X_OK) < 0)
				fr_log(FR_LOG_WARN,
				       "%s: %s command '%s' is not an executable "
				       "file (%s): the line cannot be %s",
				       what, k ? "hang-up" : "dial", cmd,
				       strerror(errno),
				       k ? "hung up" : "dialled");
		}
		if (ras && a->dial[0] && !a->hangup[0])
			fr_log(FR_LOG_WARN,
			       "%s: a dial command and no hang-up: the line is "
			       "left up once idle",
			       what);
		if (a->type == FR_ADDR_LAN && a->ratelimit.mode == FR_RL_SHARE &&
		    !a->bandwidth) {
			fr_log(FR_LOG_ERROR,
			       "%s: a rate limit in percent needs the line's "
			       "bandwidth (e.g. bandwidth = 100M)",
			       what);
			goto fail;
		}
		if (!L.addr_explicit_account[i])
			memcpy(a->account, c->code, strlen(c->code) + 1);
		/* a courier's parcels are signed with the account's key */
		rc = derive(what, &L.addr_secrets[i], a->account, a->key);
		if (rc < 0)
			goto fail;
	}
	for (unsigned i = 0; i < c->n_accounts; i++) {
		char what[160];
		snprintf(what, sizeof(what), "config '%s' [account %s]", path,
			 c->accounts[i].code);
		rc = derive(what, &L.acct_secrets[i], c->accounts[i].code,
			    c->accounts[i].key);
		if (rc < 0)
			goto fail;
	}
	fclose(L.f);
	free(L.seen);
	free(L.acct_secrets);
	free(L.addr_secrets);
	free(L.addr_explicit_account);
	return 0;
fail:
	if (L.f)
		fclose(L.f);
	free(L.seen);
	free(L.acct_secrets);
	free(L.addr_secrets);
	free(L.addr_explicit_account);
	fr_config_fini(c);
	return rc;
}

void fr_config_fini(struct fr_config *c)
{
	if (c->accounts)
		explicit_bzero(c->accounts, c->n_accounts * sizeof(*c->accounts));
	if (c->addresses)
		explicit_bzero(c->addresses,
			       c->n_addresses * sizeof(*c->addresses));
	free(c->accounts);
	free(c->addresses);
	c->accounts = NULL;
	c->addresses = NULL;
	c->n_accounts = c->n_addresses = 0;
}

const struct fr_account *fr_config_account(const struct fr_config *c,
					   const char *code)
{
	for (unsigned i = 0; i < c->n_accounts; i++)
		if (!strcmp(c->accounts[i].code, code))
			return &c->accounts[i];
	return NULL;
}

const char *fr_config_sites(const struct fr_config *c, char *out, size_t cap)
{
	size_t at = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < c->n_addresses; i++) {
		unsigned j;
		for (j = 0; j < i && strcmp(c->addresses[j].site,
					    c->addresses[i].site);
		     j++)
			;
		if (j == i && at < cap)
			at += (size_t)snprintf(out + at, cap - at, "%s%s",
					       at ? ", " : "",
					       c->addresses[i].site);
	}
	return out;
}

unsigned fr_config_addresses(const struct fr_config *c, const char *site,
			     const struct fr_address **out, unsigned max)
{
	unsigned n = 0;
	const struct fr_address **all = calloc(c->n_addresses + 1, sizeof(*all));

	if (!all)
		return 0;
	for (unsigned i = 0; i < c->n_addresses; i++)
		if (!strcmp(c->addresses[i].site, site))
			all[n++] = &c->addresses[i];
	/* insertion sort: stable, so equal priorities keep config order */
	for (unsigned i = 1; i < n; i++) {
		const struct fr_address *a = all[i];
		unsigned j = i;
		while (j > 0 && all[j - 1]->priority > a->priority) {
			all[j] = all[j - 1];
			j--;
		}
		all[j] = a;
	}
	if (n > max)
		n = max;
	memcpy(out, all, n * sizeof(*out));
	free(all);
	return n;
}

