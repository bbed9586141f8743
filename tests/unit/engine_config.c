/*
 * engine_config.c - loading a site's INI config (every field, every
 * default, every refusal), the duration and size parsers, key derivation
 * and the handshake proofs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_internal.h"

/* ---- fixtures ----------------------------------------------------------- */

static char tmpdir[256];
static char cpath[512];

static void setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ferry-ut-config-XXXXXX",
		 t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	snprintf(cpath, sizeof(cpath), "%s/ferry.conf", tmpdir);
	unsetenv("FERRY_UT_PW");
	unsetenv("FERRY_UT_UNSET");
}

static void teardown(void)
{
	if (tmpdir[0])
		fr_remove_tree(tmpdir);
}

TestSuite(config, .init = setup, .fini = teardown);
TestSuite(parse);
TestSuite(auth);

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t len = strlen(text);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* <tmpdir>/<name> holding text (mode 600); its path into out. */
static void secret_file(const char *name, const char *text, char *out,
			size_t cap)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
	write_file(out, text, 0600);
}

/* Write the config (printf-style, so tests can name their files). */
static void write_config(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void write_config(const char *fmt, ...)
{
	char text[8192];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(text));
	write_file(cpath, text, 0600);
}

static int load(struct fr_config *c)
{
	memset(c, 0xa5, sizeof(*c)); /* fr_config_load must not rely on it */
	return fr_config_load(c, cpath);
}

static void derive(const char *pw, const char *account, uint8_t key[32])
{
	int rc = fr_key_derive(pw, strlen(pw), account, key);

	cr_assert_eq(rc, 0, "fr_key_derive: %s", fr_strerror(rc));
}

/* A config that fails must fail with want and leave c fini'd. */
static void expect_refused(int want, const char *what)
{
	struct fr_config c;
	int rc = load(&c);

	if (rc == 0)
		fr_config_fini(&c); /* so a wrongly accepted config leaks nothing */
	cr_assert_eq(rc, want, "%s: got %s (%d), expected %s", what,
		     fr_err_name(rc), rc, fr_err_name(want));
	cr_assert_null(c.accounts, "%s: accounts not freed", what);
	cr_assert_null(c.addresses, "%s: addresses not freed", what);
	cr_assert_eq(c.n_accounts, 0);
	cr_assert_eq(c.n_addresses, 0);
}

/* Load the config with stderr caught: rc, and what fr_log said in msg. */
static int load_msg(char *msg, size_t cap)
{
	char p[600];
	struct fr_config c;
	int fd, saved, rc;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/stderr", tmpdir);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	rc = load(&c);
	dup2(saved, STDERR_FILENO);
	close(saved);
	if (rc == 0)
		fr_config_fini(&c);
	n = pread(fd, msg, cap - 1, 0);
	msg[n > 0 ? n : 0] = '\0';
	close(fd);
	return rc;
}

/* The config is refused, and the error holds each of the strings. */
static void expect_error(const char *what, ...)
{
	char msg[2048];
	const char *want;
	va_list ap;
	int rc = load_msg(msg, sizeof(msg));

	cr_assert_eq(rc, FR_E_CONFIG, "%s: got %s, expected FR_E_CONFIG", what,
		     fr_err_name(rc));
	va_start(ap, what);
	while ((want = va_arg(ap, const char *)))
		cr_assert_not_null(strstr(msg, want),
				   "%s: '%s' not in the error: %s", what, want,
				   msg);
	va_end(ap);
}

#define SITE "[site]\ncode = LAB\nstore = /srv/ferry\n"

/* ---- a full, valid config ----------------------------------------------- */

Test(config, full_config_every_field)
{
	char hq[600], ops[600];
	struct fr_config c;
	uint8_t k[32];

	secret_file("hq.pw", "hq-secret\n", hq, sizeof(hq));
	secret_file("ops.pw", "ops secret\r\nsecond line ignored\n", ops,
		    sizeof(ops));
	cr_assert_eq(setenv("FERRY_UT_PW", "env-secret", 1), 0);
	write_config("; a comment\n"
		     "[site]\n"
		     "code = LAB\n"
		     "store = /srv/ferry\n"
		     "listen = 0.0.0.0:7070\n"
		     "\n"
		     "[account HQ]\n"
		     "password-file = %s\n"
		     "[account OPS-2]\n"
		     "password-file = %s\n"
		     "\n"
		     "[address HQ main]\n"
		     "type = lan\n"
		     "host = hq.example:7070\n"
		     "priority = 2\n"
		     "password-env = FERRY_UT_PW\n"
		     "[address HQ slow]\n"
		     "type = courier\n"
		     "priority = 3\n"
		     "password-env = FERRY_UT_PW\n"
		     "[address HQ backup]\n"
		     "type = isdn\n"
		     "host = 10.0.0.9:7071\n"
		     "priority = 1\n"
		     "account = LAB_2\n"
		     "password-file = %s\n"
		     "[address OPS-2 only]\n"
		     "type = x25\n"
		     "host = ops:1\n"
		     "password-file = %s\n"
		     "\n"
		     "[sender]\n"
		     "retries = 7\n"
		     "retry-delay = 2m\n"
		     "max-sends = 9\n"
		     "max-sends-per-site = 4\n"
		     "level = 3\n"
		     "segment-size = 1M\n"
		     "workers = 6\n"
		     "[receiver]\n"
		     "max-connections = 40\n",
		     hq, ops, hq, ops);
	int rc = load(&c);
	cr_assert_eq(rc, 0, "fr_config_load: %s", fr_strerror(rc));

	cr_assert_str_eq(c.path, cpath);
	cr_assert_str_eq(c.code, "LAB");
	cr_assert_str_eq(c.store, "/srv/ferry");
	cr_assert_str_eq(c.listen, "0.0.0.0:7070");
	cr_assert_eq(c.retries, 7);
	cr_assert_eq(c.retry_delay_ms, 120000);
	cr_assert_eq(c.max_sends, 9);
	cr_assert_eq(c.max_sends_site, 4);
	cr_assert_eq(c.level, 3);
	cr_assert_eq(c.seg_size, 1u << 20);
	cr_assert_eq(c.workers, 6);
	cr_assert_eq(c.max_connections, 40);

	/* accounts, keys derived from the files' first lines */
	cr_assert_eq(c.n_accounts, 2);
	cr_assert_str_eq(c.accounts[0].code, "HQ");
	cr_assert_str_eq(c.accounts[1].code, "OPS-2");
	const struct fr_account *a = fr_config_account(&c, "HQ");
	cr_assert_eq(a, &c.accounts[0]);
	derive("hq-secret", "HQ", k);
	cr_assert_arr_eq(a->key, k, 32);
	a = fr_config_account(&c, "OPS-2");
	cr_assert_eq(a, &c.accounts[1]);
	derive("ops secret", "OPS-2", k);
	cr_assert_arr_eq(a->key, k, 32);
	cr_assert_null(fr_config_account(&c, "NOPE"));
	cr_assert_null(fr_config_account(&c, "LAB"));

	/* addresses */
	cr_assert_eq(c.n_addresses, 4);
	const struct fr_address *out[8];
	unsigned n = fr_config_addresses(&c, "HQ", out, 8);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(out[0]->name, "backup");
	cr_assert_str_eq(out[1]->name, "main");
	cr_assert_str_eq(out[2]->name, "slow");
	cr_assert_eq(out[0]->priority, 1);
	cr_assert_eq(out[1]->priority, 2);
	cr_assert_eq(out[2]->priority, 3);
	for (unsigned i = 0; i < n; i++)
		cr_assert_str_eq(out[i]->site, "HQ");

	const struct fr_address *main_a = out[1], *backup = out[0], *slow = out[2];
	cr_assert_eq(main_a->type, FR_ADDR_LAN);
	cr_assert_str_eq(main_a->host, "hq.example:7070");
	cr_assert_str_eq(main_a->account, "LAB", "account defaults to the code");
	derive("env-secret", "LAB", k);
	cr_assert_arr_eq(main_a->key, k, 32);

	cr_assert_eq(backup->type, FR_ADDR_ISDN);
	cr_assert_str_eq(backup->host, "10.0.0.9:7071");
	cr_assert_str_eq(backup->account, "LAB_2");
	derive("hq-secret", "LAB_2", k);
	cr_assert_arr_eq(backup->key, k, 32);

	cr_assert_eq(slow->type, FR_ADDR_COURIER);
	cr_assert_str_eq(slow->host, "");
	cr_assert_str_eq(slow->account, "LAB");

	n = fr_config_addresses(&c, "OPS-2", out, 8);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(out[0]->name, "only");
	cr_assert_eq(out[0]->type, FR_ADDR_X25);
	cr_assert_eq(out[0]->priority, 1, "priority defaults to 1");
	cr_assert_str_eq(out[0]->account, "LAB");
	derive("ops secret", "LAB", k);
	cr_assert_arr_eq(out[0]->key, k, 32);

	cr_assert_eq(fr_config_addresses(&c, "NOPE", out, 8), 0);
	cr_assert_eq(fr_config_addresses(&c, "HQ", out, 0), 0);

	fr_config_fini(&c);
	cr_assert_null(c.accounts);
	cr_assert_null(c.addresses);
	cr_assert_eq(c.n_accounts, 0);
	cr_assert_eq(c.n_addresses, 0);
	fr_config_fini(&c); /* twice is harmless */
}

Test(config, defaults_when_absent)
{
	struct fr_config c;

	write_config(SITE);
	int rc = load(&c);
	cr_assert_eq(rc, 0, "fr_config_load: %s", fr_strerror(rc));
	cr_assert_str_eq(c.code, "LAB");
	cr_assert_str_eq(c.store, "/srv/ferry");
	cr_assert_str_eq(c.listen, "");
	cr_assert_eq(c.retries, 2);
	cr_assert_eq(c.retry_delay_ms, 60000);
	cr_assert_eq(c.max_sends, 5);
	cr_assert_eq(c.max_sends_site, 3);
	cr_assert_eq(c.level, -1);
	cr_assert_eq(c.seg_size, 8u << 20);
	cr_assert_eq(c.seg_size, FR_SEG_DEFAULT);
	cr_assert_eq(c.workers, 0);
	cr_assert_eq(c.max_connections, 4);
	cr_assert_eq(c.n_accounts, 0);
	cr_assert_eq(c.n_addresses, 0);
	cr_assert_null(c.accounts);
	cr_assert_null(c.addresses);
	fr_config_fini(&c);
}

Test(config, level_auto_and_bounds)
{
	struct fr_config c;

	write_config(SITE "[sender]\nlevel = 0\n");
	cr_assert_eq(load(&c), 0);
	cr_assert_eq(c.level, 0);
	fr_config_fini(&c);
	write_config(SITE "[sender]\nlevel = 19\n");
	cr_assert_eq(load(&c), 0);
	cr_assert_eq(c.level, 19);
	fr_config_fini(&c);
	write_config(SITE "[sender]\nlevel = auto\n");
	cr_assert_eq(load(&c), 0);
	cr_assert_eq(c.level, -1);
	fr_config_fini(&c);
	/* segment size at both limits */
	write_config(SITE "[sender]\nsegment-size = 4K\n");
	cr_assert_eq(load(&c), 0);
	cr_assert_eq(c.seg_size, FR_SEG_MIN);
	fr_config_fini(&c);
	write_config(SITE "[sender]\nsegment-size = 64MiB\n");
	cr_assert_eq(load(&c), 0);
	cr_assert_eq(c.seg_size, FR_SEG_MAX);
	fr_config_fini(&c);
}

Test(config, addresses_sorted_stable_by_priority)
{
	char pw[600];
	struct fr_config c;
	const struct fr_address *out[8];

	secret_file("pw", "x", pw, sizeof(pw));
	cr_assert_eq(setenv("FERRY_UT_PW", "x", 1), 0);
	write_config(SITE
		     "[address HQ c]\ntype = courier\npassword-env = FERRY_UT_PW\npriority = 5\n"
		     "[address HQ a]\ntype = courier\npassword-env = FERRY_UT_PW\npriority = 2\n"
		     "[address HQ d]\ntype = courier\npassword-env = FERRY_UT_PW\npriority = 5\n"
		     "[address XX e]\ntype = courier\npassword-env = FERRY_UT_PW\n"
		     "[address HQ b]\ntype = courier\npassword-env = FERRY_UT_PW\npriority = 2\n"
		     "[address HQ first]\ntype = courier\npassword-env = FERRY_UT_PW\npriority = 1000\n");
	int rc = load(&c);
	cr_assert_eq(rc, 0, "fr_config_load: %s", fr_strerror(rc));
	cr_assert_eq(fr_config_addresses(&c, "HQ", out, 8), 5);
	const char *want[] = {"a", "b", "c", "d", "first"};
	for (unsigned i = 0; i < 5; i++)
		cr_assert_str_eq(out[i]->name, want[i], "position %u: %s", i,
				 out[i]->name);
	fr_config_fini(&c);
}

Test(config, addresses_truncated_keeps_the_best)
{
	/* asked for fewer than the site has, the caller gets the first ones
	 * in priority order, not the first ones in the file */
	struct fr_config c;
	const struct fr_address *out[8];
	char one[64], two[2][64];
	unsigned n1, n2;

	cr_assert_eq(setenv("FERRY_UT_PW", "x", 1), 0);
	write_config(SITE
		     "[address HQ main]\ntype = courier\npassword-env = FERRY_UT_PW\npriority = 2\n"
		     "[address HQ slow]\ntype = courier\npassword-env = FERRY_UT_PW\npriority = 3\n"
		     "[address HQ backup]\ntype = courier\npassword-env = FERRY_UT_PW\npriority = 1\n");
	cr_assert_eq(load(&c), 0);
	n1 = fr_config_addresses(&c, "HQ", out, 1);
	snprintf(one, sizeof(one), "%s", n1 ? out[0]->name : "");
	n2 = fr_config_addresses(&c, "HQ", out, 2);
	for (unsigned i = 0; i < 2; i++)
		snprintf(two[i], sizeof(two[i]), "%s", i < n2 ? out[i]->name : "");
	fr_config_fini(&c);
	cr_assert_eq(n1, 1);
	cr_assert_str_eq(one, "backup",
			 "max 1: got '%s', not the priority-1 address", one);
	cr_assert_eq(n2, 2);
	cr_assert_str_eq(two[0], "backup", "max 2: first is '%s'", two[0]);
	cr_assert_str_eq(two[1], "main", "max 2: second is '%s'", two[1]);
}

Test(config, repeated_section_refused)
{
	/* the second [address HQ a] would have overridden or merged into
	 * the first without a word: both lines are named instead */
	write_config(SITE "[address HQ a]\ntype = lan\n"
			  "[sender]\nretries = 1\n"
			  "[address  HQ a]\nhost = h:1\npassword-env = X\n");
	expect_error("[address HQ a] twice", "line 8:",
		     "[address HQ a] is given twice", "lines 4 and 8", NULL);
	write_config(SITE "[sender]\n[receiver]\nmax-connections = 2\n"
			  "[sender]\nretries = 1\n");
	expect_error("an empty [sender] twice", "line 7:", "[sender]",
		     "lines 4 and 7", NULL);
}

Test(config, repeated_key_refused)
{
	write_config(SITE "[sender]\nretries = 1\nlevel = 3\nretries = 2\n");
	expect_error("retries twice", "line 7:", "'retries' is given twice",
		     "[sender]", "lines 5 and 7", NULL);
	write_config("[site]\ncode = LAB\nstore = /a\nstore = /b\n");
	expect_error("store twice", "line 4:", "'store'", "lines 3 and 4",
		     NULL);
	write_config(SITE "[address HQ a]\ntype = lan\nhost = h:1\n"
			  "password-env = X\npassword-env = Y\n");
	expect_error("password-env twice", "line 8:", "'password-env'",
		     "[address HQ a]", NULL);
}

Test(config, indented_lines)
{
	char pw[600];
	struct fr_config c;

	/* inih alone takes an indented line for the continuation of the
	 * previous value: "store = ..." became the site's code */
	secret_file("pw", "x", pw, sizeof(pw));
	write_config("[site]\n  code = LAB\n\tstore = /srv/ferry\n"
		     "  [account HQ]\n    password-file = %s\n",
		     pw);
	cr_assert_eq(load(&c), 0);
	cr_assert_str_eq(c.code, "LAB");
	cr_assert_str_eq(c.store, "/srv/ferry");
	cr_assert_eq(c.n_accounts, 1);
	fr_config_fini(&c);
	/* a value continued on an indented line is refused, not half used */
	write_config(SITE "[sender]\nretries = 1\n   5\n");
	expect_error("continued value", "line 6:", "'5'", NULL);
}

Test(config, errors_name_their_own_line)
{
	/* the first error is reported, on its line, with its own words */
	write_config("code = LAB\nstore = /x\n" SITE);
	expect_error("two keys outside a section", "line 1:", "'code'",
		     "outside any section", NULL);
	write_config(SITE "colour = red\n[sender]\nretrys = 1\n");
	expect_error("two unknown keys", "line 4:", "'colour'", NULL);
	write_config(SITE "[sender\nretries = 1\n");
	expect_error("unclosed section", "line 4:", "'[sender'", NULL);
	write_config(SITE "[sender]\nretries\n");
	expect_error("key without a value", "line 5:", "'retries'", NULL);
}

Test(config, line_too_long)
{
	char v[400];

	memset(v, 'a', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	write_config(SITE "[address HQ a]\ntype = courier\nmedia = /%s\n"
			  "password-env = X\n",
		     v);
	expect_error("a 408-character line", "line 6:", "longer than", NULL);
}

Test(config, listen_and_host_ports)
{
	static const char *const bad[] = {
		"127.0.0.1:99999", "127.0.0.1:0", ":abc", ":-5", "h:",
		"h:65536", "h:7070x", "h:0x50", "[::1]7070", "7070", "h:http",
	};
	static const char *const good_listen[] = {
		":7070", "0.0.0.0:7070", "[::1]:7070", "[::]:1", "h:65535",
	};
	char pw[600];
	struct fr_config c;

	for (unsigned i = 0; i < FR_ARRAY_SIZE(bad); i++) {
		write_config(SITE "listen = %s\n", bad[i]);
		expect_error(bad[i], "line 4:", "listen", bad[i], NULL);
	}
	for (unsigned i = 0; i < FR_ARRAY_SIZE(good_listen); i++) {
		write_config(SITE "listen = %s\n", good_listen[i]);
		cr_assert_eq(load(&c), 0, "listen = %s", good_listen[i]);
		cr_assert_str_eq(c.listen, good_listen[i]);
		fr_config_fini(&c);
	}
	secret_file("pw", "x", pw, sizeof(pw));
	for (unsigned i = 0; i < FR_ARRAY_SIZE(bad); i++) {
		write_config(SITE "[address HQ a]\ntype = lan\nhost = %s\n"
				  "password-file = %s\n",
			     bad[i], pw);
		expect_error(bad[i], "line 6:", "host", bad[i], NULL);
	}
	write_config(SITE "[address HQ a]\ntype = lan\nhost = :7070\n"
			  "password-file = %s\n",
		     pw);
	expect_error("an address without a host", "line 6:", ":7070", NULL);
}

/* ---- refusals ----------------------------------------------------------- */

Test(config, missing_file)
{
	struct fr_config c;
	char p[600];

	snprintf(p, sizeof(p), "%s/nope.conf", tmpdir);
	int rc = fr_config_load(&c, p);
	cr_assert_eq(rc, -ENOENT, "got %s", fr_err_name(rc));
	cr_assert_null(c.accounts);
}

Test(config, unknown_keys)
{
	char pw[600];

	secret_file("pw", "x", pw, sizeof(pw));
	write_config(SITE "colour = red\n");
	expect_refused(FR_E_CONFIG, "unknown key in [site]");
	write_config(SITE "[sender]\nretrys = 3\n");
	expect_refused(FR_E_CONFIG, "unknown key in [sender]");
	write_config(SITE "[receiver]\nmax-connection = 3\n");
	expect_refused(FR_E_CONFIG, "unknown key in [receiver]");
	write_config(SITE "[account HQ]\npassword-fil = %s\n", pw);
	expect_refused(FR_E_CONFIG, "unknown key in [account]");
	write_config(SITE "[address HQ a]\ntype = lan\nhost = h:1\n"
			  "password-file = %s\nport = 3\n",
		     pw);
	expect_refused(FR_E_CONFIG, "unknown key in [address]");
}

/* a section with no key: left out without a word, an account refusing
 * every login as a wrong password */
Test(config, empty_account_or_address)
{
	write_config(SITE "[account CEN]\n[sender]\nretries = 1\n");
	expect_refused(FR_E_CONFIG, "an empty [account CEN]");
	write_config(SITE "[account CEN]\n");
	expect_refused(FR_E_CONFIG, "an empty [account CEN], last");
	write_config(SITE "[address HQ main]\n; nothing yet\n");
	expect_refused(FR_E_CONFIG, "an empty [address HQ main]");
	write_config(SITE "[sender]\n[receiver]\n");
	struct fr_config c;
	cr_assert_eq(load(&c), 0, "empty [sender] and [receiver] are fine");
	fr_config_fini(&c);
}

/* a relative password-file is the config's neighbour, not the current
 * directory's (ferry run from elsewhere found no file) */
Test(config, relative_password_file)
{
	char pw[600];
	uint8_t key[32];
	struct fr_config c;

	secret_file("rel.pw", "correct horse", pw, sizeof(pw));
	write_config(SITE "[account CEN]\npassword-file = rel.pw\n");
	cr_assert_eq(load(&c), 0);
	derive("correct horse", "CEN", key);
	cr_assert_arr_eq(c.accounts[0].key, key, 32);
	fr_config_fini(&c);
}

/* keys of the other kind of address: refused, not ignored */
Test(config, address_keys_of_the_other_kind)
{
	char pw[600];

	secret_file("pw", "x", pw, sizeof(pw));
	write_config(SITE "[address HQ box]\ntype = courier\nhost = h:1\n"
			  "media = /mnt\ntransit = 1d\npassword-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "a courier with a host");
	write_config(SITE "[address HQ a]\ntype = lan\nhost = h:1\n"
			  "media = /mnt\npassword-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "a LAN address with media");
	write_config(SITE "[address HQ a]\ntype = isdn\nhost = h:1\n"
			  "transit = 1d\npassword-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "a line with a transit");
}

Test(config, a_directory_is_not_a_config)
{
	struct fr_config c;

	cr_assert_eq(fr_config_load(&c, tmpdir), -EISDIR);
}

Test(config, unknown_sections)
{
	write_config(SITE "[senders]\nretries = 3\n");
	expect_refused(FR_E_CONFIG, "[senders]");
	write_config(SITE "[site extra]\ncode = LAB\n");
	expect_refused(FR_E_CONFIG, "[site extra]");
	write_config(SITE "[account]\npassword-env = X\n");
	expect_refused(FR_E_CONFIG, "[account] without a code");
	write_config(SITE "[address HQ]\ntype = lan\n");
	expect_refused(FR_E_CONFIG, "[address] without a name");
	write_config(SITE "[sender now]\nretries = 1\n");
	expect_refused(FR_E_CONFIG, "[sender now]");
	write_config(SITE "[account HQ extra]\npassword-env = X\n");
	expect_refused(FR_E_CONFIG, "[account HQ extra]");
}

Test(config, address_section_with_a_fourth_word)
{
	/* a fourth word is a typo too, not something to drop silently */
	write_config(SITE "[address HQ main extra]\ntype = courier\n");
	expect_refused(FR_E_CONFIG, "[address HQ main extra]");
}

Test(config, key_outside_a_section)
{
	write_config("code = LAB\n" SITE);
	expect_refused(FR_E_CONFIG, "key before any section");
}

Test(config, syntax_error)
{
	write_config(SITE "[sender\nretries = 3\n");
	expect_refused(FR_E_CONFIG, "unclosed section");
	write_config(SITE "[sender]\nretries\n");
	expect_refused(FR_E_CONFIG, "key without value");
}

Test(config, bad_site_fields)
{
	write_config("[site]\ncode = LAB!\nstore = /s\n");
	expect_refused(FR_E_CONFIG, "code with '!'");
	write_config("[site]\ncode = LA B\nstore = /s\n");
	expect_refused(FR_E_CONFIG, "code with a space");
	write_config("[site]\ncode = ABCDEFGHIJKLMNOPQ\nstore = /s\n");
	expect_refused(FR_E_CONFIG, "code of 17 characters");
	write_config("[site]\ncode =\nstore = /s\n");
	expect_refused(FR_E_CONFIG, "empty code");
	write_config("[site]\ncode = LAB\nstore = srv/ferry\n");
	expect_refused(FR_E_CONFIG, "relative store");
	write_config("[site]\ncode = LAB\nstore = /s\nlisten = 7070\n");
	expect_refused(FR_E_CONFIG, "listen without host:port");
	write_config("[site]\nstore = /srv/ferry\n");
	expect_refused(FR_E_CONFIG, "missing code");
	write_config("[site]\ncode = LAB\n");
	expect_refused(FR_E_CONFIG, "missing store");
	write_config("[sender]\nretries = 1\n");
	expect_refused(FR_E_CONFIG, "no [site] at all");
	write_config("%s", "");
	expect_refused(FR_E_CONFIG, "empty file");
}

Test(config, longest_code_is_accepted)
{
	struct fr_config c;

	write_config("[site]\ncode = ABCDEFGHIJKLMNOP\nstore = /s\n");
	cr_assert_eq(load(&c), 0);
	cr_assert_str_eq(c.code, "ABCDEFGHIJKLMNOP");
	fr_config_fini(&c);
}

Test(config, password_in_file_refused)
{
	write_config(SITE "[account HQ]\npassword = hunter2\n");
	expect_refused(FR_E_CONFIG, "password in [account]");
	write_config(SITE "[address HQ a]\ntype = lan\nhost = h:1\n"
			  "password = hunter2\n");
	expect_refused(FR_E_CONFIG, "password in [address]");
}

Test(config, password_file_problems)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/no-such.pw", tmpdir);
	write_config(SITE "[account HQ]\npassword-file = %s\n", p);
	expect_refused(-ENOENT, "missing password file (account)");
	write_config(SITE "[address HQ a]\ntype = lan\nhost = h:1\n"
			  "password-file = %s\n",
		     p);
	expect_refused(-ENOENT, "missing password file (address)");

	secret_file("empty.pw", "", p, sizeof(p));
	write_config(SITE "[account HQ]\npassword-file = %s\n", p);
	expect_refused(FR_E_CONFIG, "empty password file");
	secret_file("nl.pw", "\nsecond\n", p, sizeof(p));
	write_config(SITE "[account HQ]\npassword-file = %s\n", p);
	expect_refused(FR_E_CONFIG, "password file with an empty first line");

	write_config(SITE "[account HQ]\npassword-file = %s\n", tmpdir);
	expect_refused(FR_E_CONFIG, "a directory as password file");
	write_config(SITE "[account HQ]\npassword-file = %s\n"
			  "password-env = FERRY_UT_PW\n",
		     p);
	expect_refused(FR_E_CONFIG, "password-file and password-env both");
}

Test(config, password_env_unset)
{
	write_config(SITE "[account HQ]\npassword-env = FERRY_UT_UNSET\n");
	expect_refused(FR_E_CONFIG, "unset env (account)");
	write_config(SITE "[address HQ a]\ntype = lan\nhost = h:1\n"
			  "password-env = FERRY_UT_UNSET\n");
	expect_refused(FR_E_CONFIG, "unset env (address)");
	cr_assert_eq(setenv("FERRY_UT_UNSET", "", 1), 0);
	write_config(SITE "[account HQ]\npassword-env = FERRY_UT_UNSET\n");
	expect_refused(FR_E_CONFIG, "empty env");
}

Test(config, address_without_secret)
{
	write_config(SITE "[address HQ a]\ntype = lan\nhost = h:1\n");
	expect_refused(FR_E_CONFIG, "lan address without password");
}

Test(config, bad_addresses)
{
	char pw[600];

	secret_file("pw", "x", pw, sizeof(pw));
	write_config(SITE "[address HQ a]\nhost = h:1\npassword-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "address without type");
	write_config(SITE "[address HQ a]\ntype = lan\npassword-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "lan address without host");
	write_config(SITE "[address HQ a]\ntype = pigeon\nhost = h:1\n"
			  "password-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "bad type");
	write_config(SITE "[address HQ a]\ntype = LAN\nhost = h:1\n"
			  "password-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "type in capitals");
	write_config(SITE "[address HQ a]\ntype = lan\nhost = nohost\n"
			  "password-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "host without port");
	write_config(SITE "[address HQ a]\ntype = lan\nhost = h:1\n"
			  "account = bad code\npassword-file = %s\n",
		     pw);
	expect_refused(FR_E_CONFIG, "bad account code");
	write_config(SITE "[address H!Q a]\ntype = courier\n");
	expect_refused(FR_E_CONFIG, "bad site code in section");
	write_config(SITE "[account H/Q]\npassword-file = %s\n", pw);
	expect_refused(FR_E_CONFIG, "bad account section code");

	static const char *const prios[] = {"0", "1001", "x", "1.5", "-1",
					    "", "2x"};
	for (unsigned i = 0; i < FR_ARRAY_SIZE(prios); i++) {
		write_config(SITE "[address HQ a]\ntype = courier\npassword-env = FERRY_UT_PW\n"
				  "priority = %s\n",
			     prios[i]);
		char what[64];
		snprintf(what, sizeof(what), "priority '%s'", prios[i]);
		expect_refused(FR_E_CONFIG, what);
	}
}

/* ---- RAS keys, schedules and rate limits ------------------------------- */

Test(config, ras_address_with_schedule_and_rate_limit)
{
	char pw[600];
	struct fr_config c;

	setenv("TZ", "UTC", 1);
	tzset();
	secret_file("pw", "x", pw, sizeof(pw));
	write_config(SITE "[address CEN isdn]\ntype = isdn\nhost = 10.20.0.2:7070\n"
			  "dial = /etc/ferry/dial-cen\nhang-up = /etc/ferry/hangup-cen\n"
			  "idle-timeout = 90s\npassword-file = %s\nbandwidth = 128k\n"
			  "schedule = mon-fri 08-18 high; mon-fri 18-08 all; sat-sun all\n"
			  "rate-limit = pulse 4K 5s\n"
			  "[address CEN lan]\ntype = lan\nhost = h:1\npassword-file = %s\n"
			  "bandwidth = 100M\nrate-limit = 08-18 50%%; 18-08 100%%\n",
		     pw, pw);
	cr_assert_eq(load(&c), 0);
	const struct fr_address *a = &c.addresses[0], *l = &c.addresses[1];
	cr_assert_eq(a->type, FR_ADDR_ISDN);
	cr_assert_str_eq(a->dial, "/etc/ferry/dial-cen");
	cr_assert_str_eq(a->hangup, "/etc/ferry/hangup-cen");
	cr_assert_eq(a->idle_ms, 90000);
	cr_assert_eq(a->bandwidth, 128000);
	cr_assert(a->schedule.set);
	/* Tuesday 2026-11-24 10:00 UTC: high only */
	cr_assert(fr_schedule_allows(&a->schedule, FR_PRIO_HIGH, 1795514400));
	cr_assert_not(fr_schedule_allows(&a->schedule, FR_PRIO_LOW, 1795514400));
	cr_assert_eq(a->ratelimit.mode, FR_RL_PULSE);
	cr_assert_eq(a->ratelimit.pulse_bytes, 4096);
	cr_assert_eq(l->bandwidth, 100000000);
	cr_assert_eq(l->ratelimit.mode, FR_RL_SHARE);
	cr_assert_eq(fr_ratelimit_share(&l->ratelimit, 1795514400), 50);
	cr_assert_eq(l->idle_ms, 60000, "idle-timeout defaults to 60 s");
	cr_assert_not(l->schedule.set);
	fr_config_fini(&c);
}

Test(config, bad_ras_schedule_and_rate_limit_values)
{
	char pw[600];
	static const char *const bad[] = {
		"type = lan\nhost = h:1\ndial = /bin/true",
		"type = isdn\nhost = h:1\ndial = relative/dial",
		"type = isdn\nhost = h:1\nidle-timeout = 0s",
		"type = isdn\nhost = h:1\nidle-timeout = soon",
		"type = isdn\nhost = h:1\nbandwidth = fast",
		"type = isdn\nhost = h:1\nbandwidth = 128kb",
		"type = isdn\nhost = h:1\nschedule = mon-fri 08-18 everyone",
		"type = isdn\nhost = h:1\nrate-limit = pulse 4K",
		"type = isdn\nhost = h:1\nrate-limit = 120%",
		"type = lan\nhost = h:1\nrate-limit = 08-18 50%",
		"type = courier\nschedule = all",
		"type = courier\nrate-limit = pulse 4K 5s",
	};

	secret_file("pw", "x", pw, sizeof(pw));
	for (unsigned i = 0; i < FR_ARRAY_SIZE(bad); i++) {
		write_config(SITE "[address HQ a]\n%s\npassword-file = %s\n",
			     bad[i], pw);
		expect_refused(FR_E_CONFIG, bad[i]);
	}
}

Test(config, bad_sender_and_receiver_values)
{
	static const char *const bad[] = {
		"retries = -1",          "retries = 1001",
		"retries = many",        "retry-delay = soon",
		"retry-delay = 5",       "retry-delay = -1s",
		"retry-delay =",         "max-sends = 0",
		"max-sends = 65",        "max-sends-per-site = 0",
		"max-sends-per-site = 65", "level = 20",
		"level = -1",            "level = fast",
		"segment-size = 1X",     "segment-size = -3",
		"segment-size = 1K",     "segment-size = 4095",
		"segment-size = 128M",   "segment-size =",
		"workers = -1",          "workers = 257",
	};
	for (unsigned i = 0; i < FR_ARRAY_SIZE(bad); i++) {
		write_config(SITE "[sender]\n%s\n", bad[i]);
		expect_refused(FR_E_CONFIG, bad[i]);
	}
	write_config(SITE "[receiver]\nmax-connections = 0\n");
	expect_refused(FR_E_CONFIG, "max-connections = 0");
	write_config(SITE "[receiver]\nmax-connections = 1025\n");
	expect_refused(FR_E_CONFIG, "max-connections = 1025");
}

/* ---- durations and sizes ------------------------------------------------ */

Test(parse, durations)
{
	static const struct {
		const char *s;
		unsigned ms;
	} ok[] = {
		{"500ms", 500},   {"30s", 30000},    {"2m", 120000},
		{"1h", 3600000},  {"2w", 1209600000u}, {"0", 0},
		{"1.5s", 1500},   {"2min", 120000},  {"0.5h", 1800000},
		{"250 ms", 250},
	};
	for (unsigned i = 0; i < FR_ARRAY_SIZE(ok); i++) {
		unsigned v = 12345;
		int rc = fr_parse_duration_ms(ok[i].s, &v);
		cr_assert_eq(rc, 0, "'%s' refused", ok[i].s);
		cr_assert_eq(v, ok[i].ms, "'%s': %u ms, expected %u", ok[i].s, v,
			     ok[i].ms);
	}
	/* a bare number: seconds or days? */
	static const char *const bad[] = {"",   "x",    "-1s", "10",  "1h30m",
					  "s",  "1 s x", "nan", "1e10h", "3sec",
					  "-0.5"};
	for (unsigned i = 0; i < FR_ARRAY_SIZE(bad); i++) {
		unsigned v = 777;
		int rc = fr_parse_duration_ms(bad[i], &v);
		cr_assert_eq(rc, FR_E_CONFIG, "'%s' accepted (%u ms)", bad[i], v);
		cr_assert_eq(v, 777, "'%s': output written on failure", bad[i]);
	}
}

/* prune --older-than: days beyond the 49 days of a millisecond count */
Test(parse, durations_in_seconds)
{
	double s = -1;
	unsigned ms;

	cr_assert_eq(fr_parse_duration_s("90d", &s), 0);
	cr_assert_eq(s, 90 * 86400.0);
	cr_assert_eq(fr_parse_duration_ms("90d", &ms), FR_E_CONFIG);
	cr_assert_eq(fr_parse_duration_s("7d", &s), 0);
	cr_assert_eq(s, 7 * 86400.0);
	cr_assert_eq(fr_parse_duration_s("1.5s", &s), 0);
	cr_assert_eq(s, 1.5);
	cr_assert_eq(fr_parse_duration_s("0s", &s), 0);
	cr_assert_eq(s, 0.0);
	s = 42;
	static const char *const bad[] = {"",    "3x",     "-1d", "inf",
					  "nan", "7 days", "7",   "1.5"};
	for (unsigned i = 0; i < FR_ARRAY_SIZE(bad); i++) {
		cr_assert_eq(fr_parse_duration_s(bad[i], &s), FR_E_CONFIG,
			     "'%s' accepted", bad[i]);
		cr_assert_eq(s, 42, "'%s': output written on failure", bad[i]);
	}
}

Test(parse, sizes)
{
	static const struct {
		const char *s;
		uint64_t b;
	} ok[] = {
		{"4096", 4096},
		{"8M", 8ull << 20},
		{"4.7G", 5046586572ull}, /* 4.7 * 2^30, rounded down */
		{"700M", 700ull << 20},
		{"1KiB", 1024},
		{"1k", 1024},
		{"2MiB", 2ull << 20},
		{"2MB", 2000000},         /* as dd counts: media sizes */
		{"4.7GB", 4700000000ull}, /* a DVD */
		{"25gb", 25000000000ull},
		{"1kB", 1000},
		{"1T", 1ull << 40},
		{"0", 0},
		{"1.5K", 1536},
	};
	for (unsigned i = 0; i < FR_ARRAY_SIZE(ok); i++) {
		uint64_t v = 12345;
		int rc = fr_parse_size(ok[i].s, &v);
		cr_assert_eq(rc, 0, "'%s' refused", ok[i].s);
		cr_assert_eq(v, ok[i].b, "'%s': %llu, expected %llu", ok[i].s,
			     (unsigned long long)v, (unsigned long long)ok[i].b);
	}
	static const char *const bad[] = {"",     "1X",  "-3", "M",     "1KiBx",
					  "1 M",  "1Mi", "nan", "1e30T", "x1",
					  "1KB2"};
	for (unsigned i = 0; i < FR_ARRAY_SIZE(bad); i++) {
		uint64_t v = 777;
		int rc = fr_parse_size(bad[i], &v);
		cr_assert_eq(rc, FR_E_CONFIG, "'%s' accepted (%llu)", bad[i],
			     (unsigned long long)v);
		cr_assert_eq(v, 777, "'%s': output written on failure", bad[i]);
	}
}

/* ---- keys and proofs ---------------------------------------------------- */

Test(auth, key_derivation)
{
	uint8_t a[32], b[32], c[32], d[32], zero[32] = {0};

	derive("correct horse", "LAB", a);
	derive("correct horse", "LAB", b);
	cr_assert_arr_eq(a, b, 32, "same password and account, other key");
	cr_assert_arr_neq(a, zero, 32);
	derive("correct horse", "HQ", c);
	cr_assert_arr_neq(a, c, 32, "account does not salt the key");
	derive("correct horsf", "LAB", d);
	cr_assert_arr_neq(a, d, 32, "password does not change the key");
	/* the length given is what counts, not the terminator */
	cr_assert_eq(fr_key_derive("correct horse battery", 13, "LAB", d), 0);
	cr_assert_arr_eq(a, d, 32);
	/* a longer account that starts with the same code */
	derive("correct horse", "LAB2", d);
	cr_assert_arr_neq(a, d, 32);
}

Test(auth, random_fills_the_buffer)
{
	uint8_t a[64], b[64], zero[64] = {0};

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	fr_random(a, sizeof(a));
	fr_random(b, sizeof(b));
	cr_assert_arr_neq(a, zero, sizeof(a));
	cr_assert_arr_neq(a, b, sizeof(a));
	/* the last bytes are written too */
	cr_assert(memcmp(a + 48, zero, 16) != 0);
}
