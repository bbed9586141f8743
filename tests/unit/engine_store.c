/*
 * engine_store.c - the receiving store: a manifest opens a partial
 * package (tree created, journal replayed, lock held); once every segment
 * is journaled, finalize moves the package into place with the manifest's
 * modes, times and symlinks; fr_tree_verify re-hashes what is in place.
 * Segments written but never journaled are recovered at reopen. Several
 * arrivals share one open package (inbound.c): a racing copy that is
 * whole first takes its segment from a slow claimer.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_internal.h"

#define SEG FR_SEG_MIN

/* ---- fixtures ----------------------------------------------------------- */

static char tmpdir[256];
static char store[512];

static void setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ferry-ut-store-XXXXXX",
		 t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	snprintf(store, sizeof(store), "%s/store", tmpdir);
	unsetenv("FERRY_NO_DIRECT");
}

static void teardown(void)
{
	if (tmpdir[0])
		fr_remove_tree(tmpdir);
}

TestSuite(store, .init = setup, .fini = teardown);

/* A package as the sender sees it: its manifest, the byte stream of its
 * files (in manifest order) and the manifest's encoding. */
struct pkg {
	struct fr_manifest m;
	uint8_t *stream;
	uint8_t *mf;
	size_t mf_len;
	char hex[2 * FR_HASH_LEN + 1];
};

static void fill(uint8_t *buf, size_t len, uint32_t salt)
{
	uint32_t x = salt * 2654435761u + 12345;

	for (size_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[k] = (uint8_t)x;
	}
}

static void pkg_seal(struct pkg *p, uint32_t salt)
{
	struct fr_manifest *m = &p->m;

	cr_assert_eq(fr_manifest_layout(m), 0);
	p->stream = malloc(m->total_size ? m->total_size : 1);
	cr_assert_not_null(p->stream);
	fill(p->stream, m->total_size, salt);
	for (uint32_t s = 0; s < m->n_segments; s++)
		fr_hash128(p->stream + m->segments[s].offset,
			   m->segments[s].length, m->segments[s].hash);
	cr_assert_eq(fr_manifest_seal(m), 0);
	p->mf_len = fr_manifest_encoded_size(m);
	p->mf = malloc(p->mf_len);
	cr_assert_not_null(p->mf);
	cr_assert_eq(fr_manifest_encode(m, p->mf, p->mf_len), (ssize_t)p->mf_len);
	fr_hex(m->lid, FR_HASH_LEN, p->hex); /* partial/<listing id> */
}

#define MT 1600000000

/*
 *   d/          0750
 *   d/a         0640  10000 bytes   segments 0, 1, 2
 *   d/empty     0600  0 bytes
 *   d/link   -> a
 *   d/sub/      0755
 *   d/sub/b     0755  5000 bytes    segments 2, 3
 *   top         0644  1 byte        segment 3
 * 15001 bytes, 4 segments of 4 KiB; 2 and 3 span two files each.
 */
static void build_pkg(struct pkg *p, const char *name, uint32_t salt)
{
	struct fr_manifest *m = &p->m;

	memset(p, 0, sizeof(*p));
	cr_assert_eq(fr_manifest_init(m, name, SEG), 0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_DIR, "d", 0750, 0, MT + 1, 0,
				     NULL),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_FILE, "d/a", 0640, 10000, MT + 2,
				     500, NULL),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_FILE, "d/empty", 0600, 0, MT + 3,
				     0, NULL),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_LINK, "d/link", 0777, 0, MT + 4,
				     0, "a"),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_DIR, "d/sub", 0755, 0, MT + 5, 0,
				     NULL),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_FILE, "d/sub/b", 0755, 5000,
				     MT + 6, 0, NULL),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_FILE, "top", 0644, 1, MT + 7, 0,
				     NULL),
		     0);
	pkg_seal(p, salt);
	cr_assert_eq(m->n_segments, 4);
	cr_assert_eq(m->total_size, 15001);
}

static void pkg_free(struct pkg *p)
{
	fr_manifest_fini(&p->m);
	free(p->stream);
	free(p->mf);
}

static int sopen(const struct pkg *k, struct fr_store_pkg *p, char *err,
		 size_t cap)
{
	err[0] = '\0';
	return fr_store_open(store, k->mf, k->mf_len, "HQ", p, err, cap);
}

static void sopen_partial(const struct pkg *k, struct fr_store_pkg *p)
{
	char err[512];
	int rc = sopen(k, p, err, sizeof(err));

	cr_assert_eq(rc, FR_HAVE_PARTIAL, "fr_store_open: %d %s: %s", rc,
		     rc < 0 ? fr_strerror(rc) : "", err);
}

/* Segment s's bytes into the tree, through the store's own fds. */
static void write_segment(struct fr_store_pkg *p, const struct pkg *k,
			  uint32_t s, bool corrupt)
{
	struct fr_extent_iter it;
	struct fr_extent x;
	const uint8_t *src = k->stream + k->m.segments[s].offset;

	fr_extent_iter_init(&it, &p->m, s);
	while (fr_extent_next(&it, &x)) {
		int fd = fr_store_fd(p, x.entry, false);
		cr_assert_geq(fd, 0, "fr_store_fd(%u): %s", x.entry,
			      fr_strerror(fd));
		uint8_t *tmp = malloc(x.len);
		cr_assert_not_null(tmp);
		memcpy(tmp, src + x.seg_off, x.len);
		if (corrupt)
			tmp[x.len / 2] ^= 0xff;
		cr_assert_eq(pwrite(fd, tmp, x.len, (off_t)x.file_off),
			     (ssize_t)x.len);
		free(tmp);
	}
}

/* Every file entry's bytes, written whole, file by file. */
static void write_files(struct fr_store_pkg *p, const struct pkg *k)
{
	for (uint32_t e = 0; e < p->m.n_entries; e++) {
		const struct fr_entry *en = &p->m.entries[e];
		if (en->type != FR_ENT_FILE || en->size == 0)
			continue;
		int fd = fr_store_fd(p, e, false);
		cr_assert_geq(fd, 0, "fr_store_fd(%s): %s", en->path,
			      fr_strerror(fd));
		cr_assert_eq(fr_store_fd(p, e, false), fd, "fd not cached");
		cr_assert_eq(pwrite(fd, k->stream + en->offset, en->size, 0),
			     (ssize_t)en->size);
	}
}

static void journal(struct fr_store_pkg *p, const uint32_t *segs, unsigned n)
{
	int rc = fr_journal_append(&p->j, &p->m, segs, n);

	cr_assert_eq(rc, 0, "fr_journal_append: %s", fr_strerror(rc));
}

static void journal_all(struct fr_store_pkg *p)
{
	for (uint32_t s = 0; s < p->m.n_segments; s++)
		journal(p, &s, 1);
	cr_assert_eq(p->j.n_have, p->m.n_segments);
}

static void finalize(struct fr_store_pkg *p)
{
	char err[512] = "";
	int rc = fr_store_finalize(p, store, err, sizeof(err));

	cr_assert_eq(rc, 0, "fr_store_finalize: %s: %s", fr_strerror(rc), err);
}

/* open, write everything, journal everything, finalize, close */
static void receive_all(const struct pkg *k)
{
	struct fr_store_pkg p;

	sopen_partial(k, &p);
	write_files(&p, k);
	journal_all(&p);
	finalize(&p);
	fr_store_close(&p);
}

static void spath(char *out, size_t cap, const char *rel)
{
	cr_assert_eq(fr_path_fmt(out, cap, "%s/%s", store, rel), 0);
}

static bool exists(const char *rel)
{
	char p[1400];
	struct stat st;

	spath(p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

/* Entries in store/<rel> (not . or ..), or -1 when it does not exist. */
static int count_entries(const char *rel)
{
	char p[1400];
	DIR *d;
	struct dirent *de;
	int n = 0;

	spath(p, sizeof(p), rel);
	if (!(d = opendir(p)))
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void expect_stat(const char *rel, mode_t type, mode_t perm,
			int64_t size)
{
	char p[1400];
	struct stat st;

	spath(p, sizeof(p), rel);
	cr_assert_eq(lstat(p, &st), 0, "%s: %s", rel, strerror(errno));
	cr_assert_eq(st.st_mode & S_IFMT, type, "%s: type %o, expected %o", rel,
		     st.st_mode & S_IFMT, type);
	if (perm != (mode_t)-1)
		cr_assert_eq(st.st_mode & 07777, perm,
			     "%s: mode %04o, expected %04o", rel,
			     st.st_mode & 07777, perm);
	if (size >= 0)
		cr_assert_eq(st.st_size, size, "%s: size %lld, expected %lld",
			     rel, (long long)st.st_size, (long long)size);
}

static void expect_content(const char *rel, const uint8_t *want, size_t len)
{
	char p[1400];
	uint8_t *buf;
	size_t got;

	spath(p, sizeof(p), rel);
	cr_assert_eq(fr_read_file(p, 1 << 26, &buf, &got), 0, "read %s", rel);
	cr_assert_eq(got, len, "%s: %zu bytes, expected %zu", rel, got, len);
	cr_assert(memcmp(buf, want, len) == 0, "%s: content differs", rel);
	free(buf);
}

/* store/<rel>'s mtime (not following a symlink) */
static void set_mtime(const char *rel, int64_t sec, long nsec)
{
	char p[1400];
	struct timespec ts[2] = {{.tv_sec = sec, .tv_nsec = nsec},
				 {.tv_sec = sec, .tv_nsec = nsec}};

	spath(p, sizeof(p), rel);
	cr_assert_eq(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0,
		     "utimensat %s: %s", p, strerror(errno));
}

/* One byte damaged, as a failing disk does it: the mtime stays. */
static void flip_byte(const char *rel, off_t off)
{
	char p[1400];
	uint8_t b;
	struct stat st;
	int fd;

	spath(p, sizeof(p), rel);
	cr_assert_eq(stat(p, &st), 0);
	fd = open(p, O_RDWR);
	cr_assert_geq(fd, 0, "open %s: %s", p, strerror(errno));
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x20;
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
	set_mtime(rel, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static int verify(const struct pkg *k, const char *name, char *err,
		  size_t cap, uint32_t *bad)
{
	char root[1400], rel[300];

	snprintf(rel, sizeof(rel), "packages/%s", name);
	spath(root, sizeof(root), rel);
	err[0] = '\0';
	return fr_tree_verify(root, &k->m, err, cap, bad);
}

/* ---- opening ------------------------------------------------------------ */

Test(store, open_creates_the_partial_tree)
{
	struct pkg k;
	struct fr_store_pkg p;
	char rel[300], want[1400];

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);

	snprintf(rel, sizeof(rel), "partial/%s", k.hex);
	spath(want, sizeof(want), rel);
	cr_assert_str_eq(p.dir, want);
	cr_assert_eq(memcmp(p.m.id, k.m.id, FR_HASH_LEN), 0);
	cr_assert_eq(p.m.n_segments, 4);
	cr_assert_eq(p.j.n_segments, 4);
	cr_assert_eq(p.j.n_have, 0);

	snprintf(rel, sizeof(rel), "partial/%s/tree/d", k.hex);
	expect_stat(rel, S_IFDIR, (mode_t)-1, -1);
	snprintf(rel, sizeof(rel), "partial/%s/tree/d/sub", k.hex);
	expect_stat(rel, S_IFDIR, (mode_t)-1, -1);
	snprintf(rel, sizeof(rel), "partial/%s/tree/d/empty", k.hex);
	expect_stat(rel, S_IFREG, (mode_t)-1, 0);
	/* a file with data is created by its first write, not before */
	static const char *const data_files[] = {"d/a", "d/sub/b", "top"};
	for (unsigned i = 0; i < 3; i++) {
		struct stat st;
		snprintf(rel, sizeof(rel), "partial/%s/tree/%s", k.hex,
			 data_files[i]);
		spath(want, sizeof(want), rel);
		cr_assert_eq(lstat(want, &st), -1, "%s exists before any write",
			     rel);
	}
	for (uint32_t e = 0; e < p.m.n_entries; e++)
		if (!strcmp(p.m.entries[e].path, "top"))
			cr_assert_geq(fr_store_fd(&p, e, false), 0);
	snprintf(rel, sizeof(rel), "partial/%s/tree/top", k.hex);
	expect_stat(rel, S_IFREG, 0600, 0);
	/* the manifest as received, and the journal */
	snprintf(rel, sizeof(rel), "partial/%s/manifest", k.hex);
	expect_content(rel, k.mf, k.mf_len);
	snprintf(rel, sizeof(rel), "partial/%s/journal", k.hex);
	expect_stat(rel, S_IFREG, (mode_t)-1, FR_JOURNAL_HDR);
	/* nothing visible yet */
	cr_assert_eq(count_entries("packages"), 0);
	cr_assert_eq(count_entries("manifests"), 0);

	fr_store_close(&p);
	/* closing keeps the partial package for a later session */
	snprintf(rel, sizeof(rel), "partial/%s/tree/top", k.hex);
	cr_assert(exists(rel));
	pkg_free(&k);
}

Test(store, second_open_while_open_is_busy)
{
	struct pkg k;
	struct fr_store_pkg p, q;
	char err[512];

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);
	int rc = sopen(&k, &q, err, sizeof(err));
	cr_assert_eq(rc, -EBUSY, "second open: %d (%s)", rc, fr_strerror(rc));
	cr_assert_neq(err[0], '\0', "no message");
	cr_assert_not_null(strstr(err, "pkg"), "message does not name it: %s",
			   err);
	/* the first session is not disturbed */
	write_files(&p, &k);
	journal_all(&p);
	finalize(&p);
	fr_store_close(&p);
	expect_content("packages/pkg/d/a", k.stream, 10000);
	pkg_free(&k);
}

Test(store, lock_is_released_by_close)
{
	struct pkg k;
	struct fr_store_pkg p;

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);
	fr_store_close(&p);
	sopen_partial(&k, &p);
	fr_store_close(&p);
	pkg_free(&k);
}

Test(store, corrupt_manifest_is_refused_and_creates_nothing)
{
	struct pkg k;
	struct fr_store_pkg p;
	char err[512];

	build_pkg(&k, "pkg", 1);
	for (size_t off = 0; off < k.mf_len; off += k.mf_len / 7 + 1) {
		uint8_t *bad = malloc(k.mf_len);
		cr_assert_not_null(bad);
		memcpy(bad, k.mf, k.mf_len);
		bad[off] ^= 0x10;
		int rc = fr_store_open(store, bad, k.mf_len, "HQ", &p, err,
				       sizeof(err));
		cr_assert_lt(rc, 0, "byte %zu flipped: accepted", off);
		cr_assert_neq(err[0], '\0');
		free(bad);
	}
	/* truncated */
	int rc = fr_store_open(store, k.mf, k.mf_len - 1, "HQ", &p, err,
			       sizeof(err));
	cr_assert_lt(rc, 0);
	cr_assert_leq(count_entries("packages"), 0);
	cr_assert_leq(count_entries("partial"), 0);
	pkg_free(&k);
}

static void replace_once(uint8_t *buf, size_t len, const char *from,
			 const char *to)
{
	size_t n = strlen(from);
	uint8_t *hit = memmem(buf, len, from, n);

	cr_assert_not_null(hit, "'%s' not in the encoding", from);
	cr_assert_null(memmem(hit + 1, len - (size_t)(hit + 1 - buf), from, n),
		       "'%s' twice in the encoding", from);
	cr_assert_eq(strlen(to), n);
	memcpy(hit, to, n);
	/* a correct trailer, so the damage is judged on its meaning */
	fr_put64(buf + len - 8, fr_hash64(buf, len - 8));
}

Test(store, manifest_escaping_the_package_is_refused)
{
	struct pkg k;
	struct fr_store_pkg p;
	char err[512];
	int rc;

	memset(&k, 0, sizeof(k));
	cr_assert_eq(fr_manifest_init(&k.m, "esc", SEG), 0);
	cr_assert_eq(fr_manifest_add(&k.m, FR_ENT_DIR, "dd", 0755, 0, 0, 0,
				     NULL),
		     0);
	cr_assert_eq(fr_manifest_add(&k.m, FR_ENT_LINK, "dd/lnk", 0777, 0, 0, 0,
				     "zz/zz/zz"),
		     0);
	cr_assert_eq(fr_manifest_add(&k.m, FR_ENT_FILE, "dd/x", 0644, 100, 0,
				     0, NULL),
		     0);
	pkg_seal(&k, 3);

	/* a file path that climbs out */
	uint8_t *bad = malloc(k.mf_len);
	cr_assert_not_null(bad);
	memcpy(bad, k.mf, k.mf_len);
	replace_once(bad, k.mf_len, "dd/x", "../x");
	rc = fr_store_open(store, bad, k.mf_len, "HQ", &p, err, sizeof(err));
	cr_assert_lt(rc, 0, "'../x' accepted");
	cr_assert_neq(err[0], '\0');

	/* a symlink that points out */
	memcpy(bad, k.mf, k.mf_len);
	replace_once(bad, k.mf_len, "zz/zz/zz", "../../..");
	rc = fr_store_open(store, bad, k.mf_len, "HQ", &p, err, sizeof(err));
	cr_assert_eq(rc, FR_E_BAD_LINK, "link '../../..': %s", fr_strerror(rc));
	free(bad);

	/* nothing was made, inside the store or next to it */
	cr_assert_leq(count_entries("packages"), 0);
	cr_assert_leq(count_entries("partial"), 0);
	char p2[600];
	struct stat st;
	snprintf(p2, sizeof(p2), "%s/x", tmpdir);
	cr_assert_neq(lstat(p2, &st), 0);
	cr_assert_not(exists("x"));
	cr_assert_not(exists("partial/x"));

	/* and the honest manifest works */
	sopen_partial(&k, &p);
	fr_store_close(&p);
	pkg_free(&k);
}

/* ---- finishing ---------------------------------------------------------- */

Test(store, finalize_puts_the_package_in_place)
{
	struct pkg k;
	struct fr_store_pkg p;
	char rel[300], err[512];
	char target[64];

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);
	write_files(&p, &k);
	journal_all(&p);
	finalize(&p);
	fr_store_close(&p);

	/* the files, their bytes and modes */
	expect_stat("packages/pkg", S_IFDIR, 0755, -1);
	expect_stat("packages/pkg/d", S_IFDIR, 0750, -1);
	expect_stat("packages/pkg/d/sub", S_IFDIR, 0755, -1);
	expect_stat("packages/pkg/d/a", S_IFREG, 0640, 10000);
	expect_stat("packages/pkg/d/empty", S_IFREG, 0600, 0);
	expect_stat("packages/pkg/d/sub/b", S_IFREG, 0755, 5000);
	expect_stat("packages/pkg/top", S_IFREG, 0644, 1);
	expect_content("packages/pkg/d/a", k.stream, 10000);
	expect_content("packages/pkg/d/sub/b", k.stream + 10000, 5000);
	expect_content("packages/pkg/top", k.stream + 15000, 1);
	/* the symlink */
	expect_stat("packages/pkg/d/link", S_IFLNK, (mode_t)-1, -1);
	spath(rel, sizeof(rel), "packages/pkg/d/link");
	ssize_t n = readlink(rel, target, sizeof(target) - 1);
	cr_assert_eq(n, 1);
	target[n] = '\0';
	cr_assert_str_eq(target, "a");
	/* the times */
	struct stat st;
	spath(rel, sizeof(rel), "packages/pkg/d/a");
	cr_assert_eq(stat(rel, &st), 0);
	cr_assert_eq(st.st_mtim.tv_sec, MT + 2);
	cr_assert_eq(st.st_mtim.tv_nsec, 500);
	spath(rel, sizeof(rel), "packages/pkg/d");
	cr_assert_eq(stat(rel, &st), 0);
	cr_assert_eq(st.st_mtim.tv_sec, MT + 1, "directory mtime %lld",
		     (long long)st.st_mtim.tv_sec);
	/* the manifest is recorded, the partial package is gone */
	expect_content("manifests/pkg", k.mf, k.mf_len);
	snprintf(rel, sizeof(rel), "partial/%s", k.hex);
	cr_assert_not(exists(rel), "partial/%s left behind", k.hex);
	cr_assert_eq(count_entries("partial"), 0);
	cr_assert_eq(count_entries("packages"), 1);

	/* offered again: complete, and nothing reappears under partial/ */
	int rc = sopen(&k, &p, err, sizeof(err));
	cr_assert_eq(rc, FR_HAVE_COMPLETE, "reopen: %d %s", rc, err);
	fr_store_close(&p);
	cr_assert_eq(count_entries("partial"), 0);

	/* and what is in place verifies */
	uint32_t bad = 99;
	rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, 0, "fr_tree_verify: %s: %s", fr_strerror(rc), err);
	cr_assert_eq(bad, 0);
	pkg_free(&k);
}

Test(store, verify_names_the_damaged_segment)
{
	struct pkg k;
	char err[512];
	uint32_t bad = 0;
	int rc;

	build_pkg(&k, "pkg", 1);
	receive_all(&k);

	/* d/sub/b at 3000 is stream byte 13000: segment 3, which starts in
	 * d/sub/b (12288 > 10000) */
	flip_byte("packages/pkg/d/sub/b", 3000);
	rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, FR_E_HASH_MISMATCH, "%s", fr_strerror(rc));
	cr_assert_eq(bad, 1);
	cr_assert_not_null(strstr(err, "segment 3"), "error: %s", err);
	cr_assert_not_null(strstr(err, "d/sub/b"), "error: %s", err);

	/* a second one, earlier: both counted, the first one named */
	flip_byte("packages/pkg/d/a", 5000);
	rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, FR_E_HASH_MISMATCH);
	cr_assert_eq(bad, 2);
	cr_assert_not_null(strstr(err, "segment 1"), "error: %s", err);
	cr_assert_not_null(strstr(err, "d/a"), "error: %s", err);

	/* repaired: clean again */
	flip_byte("packages/pkg/d/a", 5000);
	flip_byte("packages/pkg/d/sub/b", 3000);
	rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(bad, 0);
	pkg_free(&k);
}

Test(store, verify_checks_structure)
{
	struct pkg k;
	char err[512], p[1400];
	uint32_t bad;
	int rc;

	build_pkg(&k, "pkg", 1);
	receive_all(&k);

	spath(p, sizeof(p), "packages/pkg/top");
	cr_assert_eq(chmod(p, 0600), 0);
	rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, FR_E_HASH_MISMATCH, "mode change: %s", fr_strerror(rc));
	cr_assert_not_null(strstr(err, "top"), "error: %s", err);
	cr_assert_eq(chmod(p, 0644), 0);

	spath(p, sizeof(p), "packages/pkg/d/link");
	cr_assert_eq(unlink(p), 0);
	cr_assert_eq(symlink("sub/b", p), 0);
	rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, FR_E_HASH_MISMATCH, "link target: %s",
		     fr_strerror(rc));
	cr_assert_not_null(strstr(err, "d/link"), "error: %s", err);
	cr_assert_eq(unlink(p), 0);
	cr_assert_eq(symlink("a", p), 0);
	set_mtime("packages/pkg/d/link", MT + 4, 0);
	set_mtime("packages/pkg/d", MT + 1, 0);
	cr_assert_eq(verify(&k, "pkg", err, sizeof(err), &bad), 0, "%s", err);

	spath(p, sizeof(p), "packages/pkg/d/sub/b");
	cr_assert_eq(truncate(p, 4999), 0);
	rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, FR_E_HASH_MISMATCH, "size: %s", fr_strerror(rc));

	cr_assert_eq(unlink(p), 0);
	rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, FR_E_INCOMPLETE, "missing file: %s", fr_strerror(rc));
	cr_assert_not_null(strstr(err, "d/sub/b"), "error: %s", err);
	pkg_free(&k);
}

Test(store, verify_finds_files_the_manifest_does_not_list)
{
	struct pkg k;
	char err[512], p[1400];
	uint32_t bad;

	build_pkg(&k, "pkg", 1);
	receive_all(&k);
	spath(p, sizeof(p), "packages/pkg/d/sub/stray");
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	int rc = verify(&k, "pkg", err, sizeof(err), &bad);
	cr_assert_eq(rc, FR_E_HASH_MISMATCH, "extra file: %s", fr_strerror(rc));
	cr_assert_not_null(strstr(err, "d/sub/stray"), "error: %s", err);
	cr_assert_eq(unlink(p), 0);
	set_mtime("packages/pkg/d/sub", MT + 5, 0);
	cr_assert_eq(verify(&k, "pkg", err, sizeof(err), &bad), 0, "%s", err);
	pkg_free(&k);
}

Test(store, finalize_with_a_missing_segment_is_incomplete)
{
	struct pkg k;
	struct fr_store_pkg p;
	char err[512] = "", rel[300];
	const uint32_t some[] = {0, 1, 3};

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);
	write_files(&p, &k);
	journal(&p, some, 3);
	int rc = fr_store_finalize(&p, store, err, sizeof(err));
	cr_assert_eq(rc, FR_E_INCOMPLETE, "%s", fr_strerror(rc));
	cr_assert_neq(err[0], '\0');
	cr_assert_eq(count_entries("packages"), 0, "packages/ changed");
	cr_assert_eq(count_entries("manifests"), 0, "manifests/ changed");
	snprintf(rel, sizeof(rel), "partial/%s/tree/d/a", k.hex);
	cr_assert(exists(rel), "the partial tree was lost");

	/* the last segment arrives: now it completes */
	uint32_t two = 2;
	journal(&p, &two, 1);
	finalize(&p);
	fr_store_close(&p);
	expect_content("packages/pkg/d/a", k.stream, 10000);
	pkg_free(&k);
}

Test(store, journaled_segments_survive_reopen)
{
	struct pkg k;
	struct fr_store_pkg p;
	const uint32_t some[] = {1, 2};

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);
	write_segment(&p, &k, 1, false);
	write_segment(&p, &k, 2, false);
	journal(&p, some, 2);
	fr_store_close(&p);

	sopen_partial(&k, &p);
	cr_assert_eq(p.j.n_have, 2);
	cr_assert_eq(p.j.have[0], 0);
	cr_assert_eq(p.j.have[1], 1);
	cr_assert_eq(p.j.have[2], 1);
	cr_assert_eq(p.j.have[3], 0);
	/* the rest, then done */
	write_segment(&p, &k, 0, false);
	write_segment(&p, &k, 3, false);
	const uint32_t rest[] = {0, 3};
	journal(&p, rest, 2);
	finalize(&p);
	fr_store_close(&p);
	expect_content("packages/pkg/d/sub/b", k.stream + 10000, 5000);
	pkg_free(&k);
}

Test(store, new_version_replaces_the_old)
{
	struct pkg v1, v2;
	struct fr_store_pkg p;
	char err[512];
	uint32_t bad;

	build_pkg(&v1, "pkg", 1);
	build_pkg(&v2, "pkg", 2);
	cr_assert(memcmp(v1.m.id, v2.m.id, FR_HASH_LEN) != 0);
	receive_all(&v1);
	expect_content("packages/pkg/d/a", v1.stream, 10000);

	/* v2 is not complete because v1 is */
	sopen_partial(&v2, &p);
	fr_store_close(&p);
	receive_all(&v2);
	expect_content("packages/pkg/d/a", v2.stream, 10000);
	expect_content("manifests/pkg", v2.mf, v2.mf_len);
	cr_assert_eq(count_entries("packages"), 1);
	cr_assert_eq(count_entries("partial"), 0, "old version left behind");
	cr_assert_eq(verify(&v2, "pkg", err, sizeof(err), &bad), 0, "%s", err);

	/* v2 is complete now; v1 is not */
	int rc = sopen(&v2, &p, err, sizeof(err));
	cr_assert_eq(rc, FR_HAVE_COMPLETE);
	fr_store_close(&p);
	rc = sopen(&v1, &p, err, sizeof(err));
	cr_assert_eq(rc, FR_HAVE_PARTIAL, "%d %s", rc, err);
	fr_store_close(&p);
	pkg_free(&v1);
	pkg_free(&v2);
}

/* ---- recovery of unjournaled segments ----------------------------------- */

Test(store, rescue_recovers_every_written_segment)
{
	struct pkg k;
	struct fr_store_pkg p;

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);
	write_files(&p, &k);
	cr_assert_eq(p.j.n_have, 0);
	fr_store_close(&p); /* killed before journaling anything */

	sopen_partial(&k, &p);
	cr_assert_eq(p.j.n_have, p.m.n_segments, "recovered %u of %u",
		     p.j.n_have, p.m.n_segments);
	fr_store_close(&p);
	/* recorded in the journal, not only in memory */
	sopen_partial(&k, &p);
	cr_assert_eq(p.j.n_have, p.m.n_segments);
	cr_assert_eq(p.j.cut, 0);
	finalize(&p);
	fr_store_close(&p);
	expect_content("packages/pkg/d/a", k.stream, 10000);
	pkg_free(&k);
}

Test(store, rescue_takes_only_intact_segments)
{
	struct pkg k;
	struct fr_store_pkg p;

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);
	write_segment(&p, &k, 0, false);
	write_segment(&p, &k, 1, true); /* damaged on the way to disk */
	write_segment(&p, &k, 3, false);
	/* segment 2 never written */
	fr_store_close(&p);

	sopen_partial(&k, &p);
	cr_assert_eq(p.j.have[0], 1, "intact segment 0 not recovered");
	cr_assert_eq(p.j.have[1], 0, "damaged segment 1 recovered");
	cr_assert_eq(p.j.have[2], 0, "unwritten segment 2 recovered");
	cr_assert_eq(p.j.have[3], 1, "intact segment 3 not recovered");
	cr_assert_eq(p.j.n_have, 2);

	char err[512];
	int rc = fr_store_finalize(&p, store, err, sizeof(err));
	cr_assert_eq(rc, FR_E_INCOMPLETE);
	/* the sender fills the gaps */
	write_segment(&p, &k, 1, false);
	write_segment(&p, &k, 2, false);
	const uint32_t rest[] = {1, 2};
	journal(&p, rest, 2);
	finalize(&p);
	fr_store_close(&p);
	expect_content("packages/pkg/d/a", k.stream, 10000);
	expect_content("packages/pkg/d/sub/b", k.stream + 10000, 5000);
	pkg_free(&k);
}

/* ---- shapes ------------------------------------------------------------- */

Test(store, more_files_than_cached_fds)
{
	struct pkg k;
	struct fr_store_pkg p;
	char path[32], err[512];
	uint32_t bad;
	const unsigned nfiles = 4 * FR_STORE_MAX_OPEN + 100;

	memset(&k, 0, sizeof(k));
	cr_assert_eq(fr_manifest_init(&k.m, "many", SEG), 0);
	for (unsigned i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "f%04u", i);
		cr_assert_eq(fr_manifest_add(&k.m, FR_ENT_FILE, path, 0644,
					     10 + i % 7, MT, 0, NULL),
			     0);
	}
	pkg_seal(&k, 5);
	cr_assert_gt(k.m.n_segments, 1);

	sopen_partial(&k, &p);
	cr_assert_leq(p.n_open, FR_STORE_MAX_OPEN);
	write_files(&p, &k);
	cr_assert_leq(p.n_open, FR_STORE_MAX_OPEN);
	fr_store_close(&p);
	/* every segment spans hundreds of files: recovered at reopen */
	sopen_partial(&k, &p);
	cr_assert_eq(p.j.n_have, k.m.n_segments);
	finalize(&p);
	fr_store_close(&p);
	cr_assert_eq(count_entries("packages/many"), (int)nfiles);
	int rc = verify(&k, "many", err, sizeof(err), &bad);
	cr_assert_eq(rc, 0, "%s", err);
	pkg_free(&k);
}

Test(store, package_without_data)
{
	struct pkg k;
	struct fr_store_pkg p;

	memset(&k, 0, sizeof(k));
	cr_assert_eq(fr_manifest_init(&k.m, "nodata", SEG), 0);
	cr_assert_eq(fr_manifest_add(&k.m, FR_ENT_DIR, "a", 0700, 0, MT, 0,
				     NULL),
		     0);
	cr_assert_eq(fr_manifest_add(&k.m, FR_ENT_FILE, "a/zero", 0640, 0, MT,
				     0, NULL),
		     0);
	pkg_seal(&k, 1);
	cr_assert_eq(k.m.n_segments, 0);

	sopen_partial(&k, &p);
	cr_assert_eq(p.j.n_have, 0);
	finalize(&p);
	fr_store_close(&p);
	expect_stat("packages/nodata/a", S_IFDIR, 0700, -1);
	expect_stat("packages/nodata/a/zero", S_IFREG, 0640, 0);
	pkg_free(&k);
}

Test(store, interrupted_finalize_completes_on_reopen)
{
	/* finalize moved the tree into place, then died before recording
	 * the manifest: the next offer finds the package whole */
	struct pkg k;
	struct fr_store_pkg p;
	char rel[300], path[1400], err[512];

	build_pkg(&k, "pkg", 1);
	receive_all(&k);
	spath(path, sizeof(path), "manifests/pkg");
	cr_assert_eq(unlink(path), 0);
	snprintf(rel, sizeof(rel), "partial/%s", k.hex);
	spath(path, sizeof(path), rel);
	cr_assert_eq(fr_mkdirs(path), 0);
	snprintf(rel, sizeof(rel), "partial/%s/finalizing", k.hex);
	spath(path, sizeof(path), rel);
	cr_assert_eq(fr_write_file_atomic(path, "", 0), 0);

	int rc = sopen(&k, &p, err, sizeof(err));
	cr_assert_eq(rc, FR_HAVE_COMPLETE, "%d %s", rc, err);
	fr_store_close(&p);
	expect_content("manifests/pkg", k.mf, k.mf_len);
	cr_assert_eq(count_entries("partial"), 0);
	expect_content("packages/pkg/d/a", k.stream, 10000);
	pkg_free(&k);
}

/* ---- every difference, and repair ---------------------------------------- */

static void tree_diff(const struct pkg *k, struct fr_tree_diffs *d)
{
	char root[1400];

	spath(root, sizeof(root), "packages/pkg");
	int rc = fr_tree_diff(root, &k->m, d);
	cr_assert_eq(rc, 0, "fr_tree_diff: %s", fr_strerror(rc));
}

/* is there a difference of this kind at this path? */
static bool has_diff(const struct pkg *k, const struct fr_tree_diffs *d,
		     enum fr_diff_kind kind, const char *path)
{
	for (uint32_t i = 0; i < d->n; i++)
		if (d->v[i].kind == kind &&
		    !strcmp(fr_diff_path(&k->m, &d->v[i]), path))
			return true;
	return false;
}

Test(store, verify_reports_every_difference_in_one_run)
{
	struct pkg k;
	struct fr_tree_diffs d;
	char p[1400], line[512];

	build_pkg(&k, "pkg", 1);
	receive_all(&k);
	flip_byte("packages/pkg/d/sub/b", 3000); /* segment 3 */
	spath(p, sizeof(p), "packages/pkg/top");
	cr_assert_eq(chmod(p, 0600), 0);
	spath(p, sizeof(p), "packages/pkg/d/empty");
	cr_assert_eq(unlink(p), 0);
	set_mtime("packages/pkg/d", MT + 1, 0);
	spath(p, sizeof(p), "packages/pkg/d/new\tline");
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	set_mtime("packages/pkg/d", MT + 1, 0);
	set_mtime("packages/pkg/d/a", MT + 9, 0);

	tree_diff(&k, &d);
	cr_assert_eq(d.n, 5, "%u differences", d.n);
	cr_assert(has_diff(&k, &d, FR_DIFF_CONTENT, "d/sub/b"));
	cr_assert(has_diff(&k, &d, FR_DIFF_MODE, "top"));
	cr_assert(has_diff(&k, &d, FR_DIFF_MISSING, "d/empty"));
	cr_assert(has_diff(&k, &d, FR_DIFF_EXTRA, "d/new\tline"));
	cr_assert(has_diff(&k, &d, FR_DIFF_MTIME, "d/a"));
	cr_assert_eq(d.n_bad, 1);
	cr_assert(d.bad[3]);
	/* the human line escapes the tab */
	for (uint32_t i = 0; i < d.n; i++)
		if (d.v[i].kind == FR_DIFF_EXTRA) {
			fr_diff_text(&k.m, &d.v[i], line, sizeof(line));
			cr_assert_not_null(strstr(line, "'d/new\\tline'"), "%s",
					   line);
		}
	fr_tree_diffs_fini(&d);

	/* a missing file: its segments, and only those, are bad */
	spath(p, sizeof(p), "packages/pkg/d/a");
	cr_assert_eq(unlink(p), 0);
	tree_diff(&k, &d);
	cr_assert(has_diff(&k, &d, FR_DIFF_MISSING, "d/a"));
	cr_assert(d.bad[0] && d.bad[1] && d.bad[2] && d.bad[3]);
	fr_tree_diffs_fini(&d);
	pkg_free(&k);
}

static void mark_repair(const struct pkg *k, const uint8_t *bad)
{
	char err[512] = "";
	int rc = fr_store_mark_repair(store, &k->m, bad, err, sizeof(err));

	cr_assert_eq(rc, 0, "fr_store_mark_repair: %s: %s", fr_strerror(rc),
		     err);
}

Test(store, repair_receives_the_marked_segments_in_place)
{
	struct pkg k;
	struct fr_store_pkg p;
	struct fr_tree_diffs d;
	char rel[300], err[512];
	uint32_t bad;

	build_pkg(&k, "pkg", 1);
	receive_all(&k);
	flip_byte("packages/pkg/d/a", 5000); /* segment 1 */
	tree_diff(&k, &d);
	cr_assert_eq(d.n_bad, 1);
	mark_repair(&k, d.bad);
	fr_tree_diffs_fini(&d);

	/* the next offer: the package is repaired in place, segment 1 wanted */
	sopen_partial(&k, &p);
	cr_assert(p.repair);
	cr_assert_eq(p.j.n_have, 3);
	cr_assert_not(p.j.have[1]);
	cr_assert_not_null(strstr(p.tree, "/packages/pkg"), "%s", p.tree);
	/* interrupted before anything came: the marker holds */
	fr_store_close(&p);
	sopen_partial(&k, &p);
	cr_assert(p.repair);
	cr_assert_eq(p.j.n_have, 3);
	/* not complete until the segment is in */
	cr_assert_eq(fr_store_finalize(&p, store, err, sizeof(err)),
		     FR_E_INCOMPLETE);

	uint32_t one = 1;
	write_segment(&p, &k, 1, false);
	journal(&p, &one, 1);
	finalize(&p);
	fr_store_close(&p);
	expect_content("packages/pkg/d/a", k.stream, 10000);
	cr_assert_eq(verify(&k, "pkg", err, sizeof(err), &bad), 0, "%s", err);
	snprintf(rel, sizeof(rel), "partial/%s", k.hex);
	cr_assert_not(exists(rel), "partial/%s left behind", k.hex);
	int rc = sopen(&k, &p, err, sizeof(err));
	cr_assert_eq(rc, FR_HAVE_COMPLETE, "%d %s", rc, err);
	fr_store_close(&p);
	pkg_free(&k);
}

Test(store, repair_reads_back_what_it_wrote)
{
	struct pkg k;
	struct fr_store_pkg p;
	uint8_t bad[4] = {0, 0, 1, 0};
	char err[512];

	build_pkg(&k, "pkg", 1);
	receive_all(&k);
	mark_repair(&k, bad);
	sopen_partial(&k, &p);
	uint32_t two = 2;
	write_segment(&p, &k, 2, true); /* written wrong, journaled */
	journal(&p, &two, 1);
	int rc = fr_store_finalize(&p, store, err, sizeof(err));
	cr_assert_eq(rc, FR_E_HASH_MISMATCH, "%s: %s", fr_strerror(rc), err);
	fr_store_close(&p);
	/* still marked, and the segment asked for again */
	sopen_partial(&k, &p);
	cr_assert(p.repair);
	cr_assert_not(p.j.have[2]);
	cr_assert_eq(p.j.n_have, 3);
	write_segment(&p, &k, 2, false);
	journal(&p, &two, 1);
	finalize(&p);
	fr_store_close(&p);
	uint32_t nbad;
	cr_assert_eq(verify(&k, "pkg", err, sizeof(err), &nbad), 0, "%s", err);
	pkg_free(&k);
}

Test(store, repair_is_refused_while_a_session_holds_the_package)
{
	struct pkg k;
	struct fr_store_pkg p;
	uint8_t bad[4] = {1, 0, 0, 0};
	char err[512];

	build_pkg(&k, "pkg", 1);
	receive_all(&k);
	mark_repair(&k, bad);
	sopen_partial(&k, &p);
	int rc = fr_store_mark_repair(store, &k.m, bad, err, sizeof(err));
	cr_assert_eq(rc, -EBUSY, "%s", fr_strerror(rc));
	cr_assert_not_null(strstr(err, "pkg"), "%s", err);
	fr_store_close(&p);
	pkg_free(&k);
}

Test(store, repair_of_a_version_no_longer_in_place_is_dropped)
{
	struct pkg v1, v2;
	struct fr_store_pkg p;
	uint8_t bad[4] = {1, 0, 0, 0};

	build_pkg(&v1, "pkg", 1);
	build_pkg(&v2, "pkg", 2);
	receive_all(&v1);
	mark_repair(&v1, bad);
	receive_all(&v2); /* replaces it */
	sopen_partial(&v1, &p);
	cr_assert_not(p.repair, "v1 repaired into v2's place");
	cr_assert_eq(p.j.n_have, 0);
	fr_store_close(&p);
	expect_content("packages/pkg/d/a", v2.stream, 10000);
	pkg_free(&v1);
	pkg_free(&v2);
}

Test(store, tree_restore_puts_metadata_back)
{
	struct pkg k;
	char p[1400], err[512];
	uint32_t bad;

	build_pkg(&k, "pkg", 1);
	receive_all(&k);
	spath(p, sizeof(p), "packages/pkg/top");
	cr_assert_eq(chmod(p, 0600), 0);
	spath(p, sizeof(p), "packages/pkg/d/empty");
	cr_assert_eq(unlink(p), 0);
	spath(p, sizeof(p), "packages/pkg/d/link");
	cr_assert_eq(unlink(p), 0);
	cr_assert_neq(verify(&k, "pkg", err, sizeof(err), &bad), 0);
	spath(p, sizeof(p), "packages/pkg");
	int rc = fr_tree_restore(p, &k.m, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(verify(&k, "pkg", err, sizeof(err), &bad), 0, "%s", err);
	pkg_free(&k);
}

/* k's manifest offered open: the hashes of the segments in `unknown`
 * zero (the sender had not hashed them yet). */
static void open_offer(const struct pkg *k, const uint8_t *unknown,
		       uint8_t **mf, size_t *len)
{
	struct fr_manifest o = {0};

	cr_assert_eq(fr_manifest_decode(&o, k->mf, k->mf_len), 0);
	for (uint32_t s = 0; s < o.n_segments; s++)
		if (unknown[s])
			memset(o.segments[s].hash, 0, FR_HASH_LEN);
	o.open = true;
	cr_assert_eq(fr_manifest_seal(&o), 0);
	cr_assert_eq(memcmp(o.lid, k->m.lid, FR_HASH_LEN), 0);
	*len = fr_manifest_encoded_size(&o);
	*mf = malloc(*len);
	cr_assert_eq(fr_manifest_encode(&o, *mf, *len), (ssize_t)*len);
	fr_manifest_fini(&o);
}

static uint8_t *table_of(const struct pkg *k)
{
	uint8_t *t = malloc(k->m.n_segments * FR_HASH_LEN);

	for (uint32_t s = 0; s < k->m.n_segments; s++)
		memcpy(t + s * FR_HASH_LEN, k->m.segments[s].hash, FR_HASH_LEN);
	return t;
}

Test(store, open_offer_holds_what_it_confirms_and_table_settles_it)
{
	struct pkg k;
	struct fr_store_pkg p;
	const uint32_t first[] = {0, 1};
	const uint8_t unknown[4] = {0, 1, 1, 1};
	char err[512] = "";
	uint8_t *mf;
	size_t len;

	build_pkg(&k, "pkg", 1);
	/* an earlier session (a parcel, say) wrote and journaled 0 and 1 */
	sopen_partial(&k, &p);
	write_segment(&p, &k, 0, false);
	write_segment(&p, &k, 1, false);
	journal(&p, first, 2);
	fr_store_close(&p);

	/* an open offer knows segment 0's hash, not 1's */
	open_offer(&k, unknown, &mf, &len);
	int rc = fr_store_open(store, mf, len, "HQ", &p, err, sizeof(err));
	cr_assert_eq(rc, FR_HAVE_PARTIAL, "%s", err);
	cr_assert(p.m.open);
	cr_assert_eq(p.j.have[0], 1, "the confirmed segment is held");
	cr_assert_eq(p.j.have[1], 0, "an unconfirmed one is not");
	cr_assert_not_null(p.j.unconfirmed);
	cr_assert_eq(p.j.n_unconfirmed, 1);
	cr_assert_eq(p.j.unconfirmed[1 * FR_UNCONF_REC], 1);
	cr_assert_eq(memcmp(p.j.unconfirmed + FR_UNCONF_REC + 1,
			    k.m.segments[1].hash, FR_HASH_LEN), 0);

	/* the rest arrives (frames carry their own hashes) */
	for (uint32_t s = 2; s < 4; s++) {
		write_segment(&p, &k, s, false);
		memcpy(p.m.segments[s].hash, k.m.segments[s].hash, FR_HASH_LEN);
		journal(&p, &s, 1);
	}
	uint8_t *tab = table_of(&k);
	/* a table of another length, or one that contradicts a segment */
	cr_assert_eq(fr_store_settle(&p, tab, 3 * FR_HASH_LEN, err, sizeof(err)),
		     FR_E_PROTOCOL);
	tab[3 * FR_HASH_LEN] ^= 1;
	cr_assert_eq(fr_store_settle(&p, tab, 4 * FR_HASH_LEN, err, sizeof(err)),
		     FR_E_HASH_MISMATCH);
	cr_assert(strstr(err, "segment 3"), "%s", err);
	cr_assert(p.m.open, "nothing settled on a bad table");
	tab[3 * FR_HASH_LEN] ^= 1;
	/* the table confirms segment 1's copy: its bytes are read back */
	rc = fr_store_settle(&p, tab, 4 * FR_HASH_LEN, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(p.j.have[1], 1);
	cr_assert_not(p.m.open);
	cr_assert_eq(memcmp(p.m.id, k.m.id, FR_HASH_LEN), 0,
		     "the settled manifest is the sender's complete one");
	finalize(&p);
	fr_store_close(&p);
	expect_content("packages/pkg/d/a", k.stream, 10000);
	char rel[300];
	snprintf(rel, sizeof(rel), "manifests/pkg");
	cr_assert(exists(rel));
	free(tab);
	free(mf);
	pkg_free(&k);
}

Test(store, an_unconfirmed_copy_whose_bytes_changed_is_not_taken)
{
	struct pkg k;
	struct fr_store_pkg p;
	const uint32_t one[] = {1};
	const uint8_t unknown[4] = {1, 1, 1, 1};
	char err[512] = "";
	uint8_t *mf;
	size_t len;

	build_pkg(&k, "pkg", 1);
	sopen_partial(&k, &p);
	write_segment(&p, &k, 1, false);
	journal(&p, one, 1);
	/* later, part of another version was written over it */
	write_segment(&p, &k, 1, true);
	fr_store_close(&p);

	open_offer(&k, unknown, &mf, &len);
	cr_assert_eq(fr_store_open(store, mf, len, "HQ", &p, err, sizeof(err)),
		     FR_HAVE_PARTIAL, "%s", err);
	cr_assert_eq(p.j.n_unconfirmed, 1);
	for (uint32_t s = 0; s < 4; s++)
		if (s != 1) {
			write_segment(&p, &k, s, false);
			memcpy(p.m.segments[s].hash, k.m.segments[s].hash,
			       FR_HASH_LEN);
			journal(&p, &s, 1);
		}
	uint8_t *tab = table_of(&k);
	cr_assert_eq(fr_store_settle(&p, tab, 4 * FR_HASH_LEN, err, sizeof(err)),
		     FR_E_HASH_MISMATCH, "a damaged copy was taken");
	cr_assert_eq(p.j.have[1], 0);
	fr_store_close(&p);
	free(tab);
	free(mf);
	pkg_free(&k);
}

Test(store, a_resume_of_the_listing_in_place_copies_nothing_of_it)
{
	struct pkg k;
	struct fr_store_pkg p;
	const uint8_t unknown[4] = {0, 1, 0, 1};
	char err[512] = "";
	uint8_t *mf;
	size_t len;

	build_pkg(&k, "pkg", 1);
	receive_all(&k); /* in place (a parcel completed it, say) */

	/* a resume's open offer: what it hashed before is the package in
	 * place's; every segment goes as a copy, none is taken from it */
	open_offer(&k, unknown, &mf, &len);
	int rc = fr_store_open(store, mf, len, "HQ", &p, err, sizeof(err));
	cr_assert_eq(rc, FR_HAVE_PARTIAL, "%s", err);
	cr_assert(p.placed_all);
	cr_assert_eq(p.j.n_have, 0, "segments were copied from the package");
	cr_assert_eq(p.j.n_unconfirmed, 4, "every segment a copy to compare");
	uint8_t *tab = table_of(&k);
	cr_assert_eq(fr_store_settle(&p, tab, 4 * FR_HASH_LEN, err, sizeof(err)),
		     FR_HAVE_COMPLETE, "%s", err);
	fr_store_discard(&p);
	fr_store_close(&p);

	/* a hash it made that is not the package in place's (the source
	 * changed without its listing): the old way, copies taken */
	struct fr_manifest o = {0};
	cr_assert_eq(fr_manifest_decode(&o, mf, len), 0);
	o.segments[0].hash[0] ^= 1;
	cr_assert_eq(fr_manifest_seal(&o), 0);
	free(mf);
	len = fr_manifest_encoded_size(&o);
	mf = malloc(len);
	cr_assert_eq(fr_manifest_encode(&o, mf, len), (ssize_t)len);
	fr_manifest_fini(&o);
	rc = fr_store_open(store, mf, len, "HQ", &p, err, sizeof(err));
	cr_assert_eq(rc, FR_HAVE_PARTIAL, "%s", err);
	cr_assert_not(p.placed_all);
	cr_assert_eq(p.j.n_have, 1, "segment 2, whose hash is the same, taken");
	fr_store_close(&p);
	free(tab);
	free(mf);
	pkg_free(&k);
}

/* ---- one open package, several arrivals: racing copies ------------------- */

TestSuite(inbound, .init = setup, .fini = teardown);

/* What each arrival was told (the syncer's thread reports). */
struct heard {
	pthread_mutex_t mu;
	uint32_t n;
	uint32_t seg[16], status[16];
};

static void heard_ack(void *arg, uint32_t seg, uint32_t status)
{
	struct heard *h = arg;

	pthread_mutex_lock(&h->mu);
	if (h->n < 16) {
		h->seg[h->n] = seg;
		h->status[h->n] = status;
		h->n++;
	}
	pthread_mutex_unlock(&h->mu);
}

static void heard_wake(void *arg)
{
	(void)arg;
}

/* How many ACKs of seg with status arg h heard. */
static unsigned heard_count(struct heard *h, uint32_t seg, uint32_t status)
{
	unsigned n = 0;

	pthread_mutex_lock(&h->mu);
	for (uint32_t i = 0; i < h->n; i++)
		n += h->seg[i] == seg && h->status[i] == status;
	pthread_mutex_unlock(&h->mu);
	return n;
}

struct arrivals {
	struct pkg k;
	struct fr_inbound *op;
	struct heard h[3];
	int slot[3];
	struct fr_store_pkg view[3];
};

static bool told_to_stop(void *arg)
{
	(void)arg;
	return true;
}

/* Three arrivals of one sender join the package: network sessions, the
 * first gone (its peer quiet: told to stop) if first_gone, the third a
 * parcel import if third_import. */
static void join3_as(struct arrivals *a, bool first_gone, bool third_import)
{
	char err[512];

	memset(a, 0, sizeof(*a));
	build_pkg(&a->k, "pkg", 5);
	for (int i = 0; i < 3; i++) {
		bool imp = third_import && i == 2;
		struct fr_arrival me = {.ack = heard_ack,
					.wake = heard_wake,
					.arg = &a->h[i],
					.gone = first_gone && i == 0 ? told_to_stop
								     : NULL,
					.announce = imp,
					.yields = !imp,
					.whole = imp};
		struct fr_inbound *op = NULL;
		pthread_mutex_init(&a->h[i].mu, NULL);
		int r = fr_inbound_join(store, a->k.mf, a->k.mf_len, "HQ", &me,
					&op, &a->slot[i], &a->view[i], err,
					sizeof(err));
		cr_assert_eq(r, FR_HAVE_PARTIAL, "join %d: %d %s", i, r, err);
		cr_assert(i == 0 || op == a->op, "one open package");
		a->op = op;
	}
}

/* Three network sessions of one sender join the package. */
static void join3(struct arrivals *a)
{
	join3_as(a, false, false);
}

static void leave3(struct arrivals *a)
{
	for (int i = 2; i >= 0; i--) {
		fr_store_close(&a->view[i]);
		fr_inbound_leave(a->op, a->slot[i]);
	}
	pkg_free(&a->k);
}

/* Written by slot i (its writes asked for), handed to the syncer, and
 * waited for until durable. */
static void land(struct arrivals *a, int i, uint32_t s)
{
	cr_assert(fr_inbound_write_begin(a->op, a->slot[i], s));
	write_segment(&a->view[i], &a->k, s, false);
	fr_inbound_write_end(a->op, s);
	cr_assert(fr_inbound_land(a->op, a->slot[i], s));
	fr_syncer_add(&a->op->sy, s);
	cr_assert_eq(fr_syncer_wait(&a->op->sy, 0), 0);
}

/* Slot i claims seg, and slot j's copy of it races i's. */
static void race(struct arrivals *a, int i, int j, uint32_t seg)
{
	cr_assert_eq(fr_inbound_claim_wait(a->op, a->slot[i], seg, 10, true),
		     FR_IN_MINE);
	cr_assert_eq(fr_inbound_claim_wait(a->op, a->slot[j], seg, 10, true),
		     FR_IN_SECOND);
}

Test(inbound, a_copy_whole_first_takes_the_segment_from_a_slow_claimer)
{
	struct arrivals a;
	int A = 0, B = 1;

	join3(&a);
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[A], 2, 10, true),
		     FR_IN_MINE);
	/* A writes a part of it, and has that write still out */
	cr_assert(fr_inbound_write_begin(a.op, a.slot[A], 2));
	/* B's copy races it (without race: the old way, dropped) */
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[B], 2, 10, true),
		     FR_IN_SECOND);
	/* B's copy is whole and checked first: it takes the segment, but
	 * waits for A's write in flight */
	cr_assert_eq(fr_inbound_take(a.op, a.slot[B], 2, 0), FR_IN_WRITING);
	cr_assert_not(fr_inbound_write_begin(a.op, a.slot[A], 2),
		      "the slow claimer may still write a segment taken");
	cr_assert_eq(fr_inbound_take(a.op, a.slot[B], 2, 0), FR_IN_WRITING);
	fr_inbound_write_end(a.op, 2);
	cr_assert_eq(fr_inbound_take(a.op, a.slot[B], 2, 0), FR_IN_MINE);
	/* A, all received at last, does not land it; B does */
	cr_assert_not(fr_inbound_land(a.op, a.slot[A], 2));
	land(&a, B, 2);
	/* both senders hear it is durable, once each */
	cr_assert_eq(heard_count(&a.h[B], 2, FR_ACK_DURABLE), 1);
	cr_assert_eq(heard_count(&a.h[A], 2, FR_ACK_DURABLE), 1);
	cr_assert(a.op->pkg.j.have[2]);
	leave3(&a);
}

Test(inbound, a_copy_second_to_a_landed_segment_goes_with_one_ack)
{
	struct arrivals a;
	int A = 0, B = 1;

	join3(&a);
	race(&a, A, B, 1);
	/* A lands it before B's copy is whole: B's goes ... */
	cr_assert(fr_inbound_write_begin(a.op, a.slot[A], 1));
	fr_inbound_write_end(a.op, 1);
	cr_assert(fr_inbound_land(a.op, a.slot[A], 1));
	cr_assert_eq(fr_inbound_take(a.op, a.slot[B], 1, 0), FR_IN_ELSEWHERE);
	fr_syncer_add(&a.op->sy, 1);
	cr_assert_eq(fr_syncer_wait(&a.op->sy, 0), 0);
	cr_assert_eq(heard_count(&a.h[B], 1, FR_ACK_DURABLE), 1);
	cr_assert_eq(heard_count(&a.h[A], 1, FR_ACK_DURABLE), 1);

	/* ... and a racing copy of a segment made durable meanwhile was
	 * told so already: it goes without a second ACK */
	race(&a, A, B, 3);
	land(&a, A, 3);
	cr_assert_eq(heard_count(&a.h[B], 3, FR_ACK_DURABLE), 1);
	cr_assert_eq(fr_inbound_take(a.op, a.slot[B], 3, 0), FR_IN_ACKED);
	cr_assert_eq(heard_count(&a.h[B], 3, FR_ACK_DURABLE), 1);
	leave3(&a);
}

Test(inbound, a_claimer_let_go_hands_the_segment_to_the_racing_copy)
{
	struct arrivals a;
	int A = 0, B = 1, C = 2;

	join3(&a);
	race(&a, A, B, 0);
	/* a third copy does not race: dropped, it waits for the ACK */
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[C], 0, 10, true),
		     FR_IN_ELSEWHERE);
	/* A's copy arrived corrupt: B's racing copy takes over, and C is
	 * not asked to send it again */
	fr_inbound_unclaim(a.op, a.slot[A], 0);
	cr_assert_eq(heard_count(&a.h[C], 0, FR_ACK_AGAIN), 0);
	cr_assert_eq(fr_inbound_take(a.op, a.slot[B], 0, 0), FR_IN_MINE);
	land(&a, B, 0);
	cr_assert_eq(heard_count(&a.h[C], 0, FR_ACK_DURABLE), 1);
	cr_assert_eq(heard_count(&a.h[B], 0, FR_ACK_DURABLE), 1);

	/* B's racing copy of segment 1 is cut off (B leaves): A keeps it,
	 * and a new copy may race again */
	race(&a, A, B, 1);
	fr_inbound_unclaim(a.op, a.slot[B], 1);
	cr_assert(fr_inbound_write_begin(a.op, a.slot[A], 1),
		  "a copy let go took the segment");
	fr_inbound_write_end(a.op, 1);
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[C], 1, 10, true),
		     FR_IN_SECOND);
	/* a copy that may not race (a continued frame) is dropped */
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[B], 1, 10, false),
		     FR_IN_ELSEWHERE);
	leave3(&a);
}

/* A's write in flight ends a moment later, on another thread. */
static void *end_write_later(void *arg)
{
	struct arrivals *a = arg;

	usleep(200 * 1000);
	fr_inbound_write_end(a->op, 2);
	return NULL;
}

Test(inbound, a_copy_that_took_a_segment_and_fails_lets_it_go_safely)
{
	struct arrivals a;
	int A = 0, B = 1, C = 2;
	pthread_t t;

	join3(&a);
	race(&a, A, C, 2);
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[B], 2, 10, true),
		     FR_IN_ELSEWHERE, "a third copy waits");
	cr_assert(fr_inbound_write_begin(a.op, a.slot[A], 2));
	/* C takes it while A's write is out (waited 20 ms: still out) */
	cr_assert_eq(fr_inbound_take(a.op, a.slot[C], 2, 20), FR_IN_WRITING);
	cr_assert_not(fr_inbound_holds(a.op, a.slot[A], 2));
	/* C's session fails: its claim goes only once A's write is over,
	 * so no copy written after it can be overwritten by A's bytes */
	cr_assert_eq(pthread_create(&t, NULL, end_write_later, &a), 0);
	double t0 = fr_now_s();
	fr_inbound_unclaim(a.op, a.slot[C], 2);
	cr_assert_geq(fr_now_s() - t0, 0.15, "the claim went with a write out");
	pthread_join(t, NULL);
	/* B, waiting, is asked for it again; A, still receiving its copy,
	 * is not told until it lets go of that copy: then it is */
	cr_assert_eq(heard_count(&a.h[B], 2, FR_ACK_AGAIN), 1);
	cr_assert_eq(heard_count(&a.h[A], 2, FR_ACK_AGAIN), 0);
	cr_assert(fr_inbound_drop(a.op, a.slot[A], 2),
		  "the loser was not told to send it again");
	cr_assert_not(fr_inbound_drop(a.op, a.slot[A], 2), "told twice");

	/* a loser whose segment the copy lands hears it is durable, once */
	race(&a, A, B, 3);
	cr_assert_eq(fr_inbound_take(a.op, a.slot[B], 3, 0), FR_IN_MINE);
	cr_assert_not(fr_inbound_drop(a.op, a.slot[A], 3));
	land(&a, B, 3);
	cr_assert_eq(heard_count(&a.h[A], 3, FR_ACK_DURABLE), 1);
	cr_assert_eq(heard_count(&a.h[A], 3, FR_ACK_AGAIN), 0);
	leave3(&a);
}

Test(inbound, a_parcel_import_takes_a_segment_a_session_told_to_stop_holds)
{
	struct arrivals a;
	int A = 0, B = 1, C = 2;

	/* A's sender is gone mid-frame; B is a network session, C an import */
	join3_as(&a, true, true);
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[A], 1, 0, true),
		     FR_IN_MINE);
	/* a network copy waits for A to let go (its sender is asked again
	 * then) ... */
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[B], 1, 0, true),
		     FR_IN_ELSEWHERE);
	/* ... the parcel's, which nobody can ask for again, races A */
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[C], 1, 0, true),
		     FR_IN_SECOND);
	cr_assert_eq(fr_inbound_take(a.op, a.slot[C], 1, 0), FR_IN_MINE);
	cr_assert_not(fr_inbound_write_begin(a.op, a.slot[A], 1),
		      "the session told to stop may still write the segment");
	write_segment(&a.view[C], &a.k, 1, false);
	fr_syncer_add(&a.op->sy, 1);
	cr_assert_eq(fr_syncer_wait(&a.op->sy, 0), 0);
	cr_assert(a.op->pkg.j.have[1]);
	cr_assert_eq(heard_count(&a.h[B], 1, FR_ACK_DURABLE), 1);
	cr_assert_eq(heard_count(&a.h[A], 1, FR_ACK_DURABLE), 1);
	cr_assert_eq(heard_count(&a.h[B], 1, FR_ACK_AGAIN), 0);

	/* a segment a live session has landed already: the import's copy
	 * goes, the segment is not written twice */
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[B], 3, 0, true),
		     FR_IN_MINE);
	cr_assert_eq(fr_inbound_claim_wait(a.op, a.slot[C], 3, 0, true),
		     FR_IN_SECOND);
	cr_assert(fr_inbound_write_begin(a.op, a.slot[B], 3));
	fr_inbound_write_end(a.op, 3);
	cr_assert(fr_inbound_land(a.op, a.slot[B], 3));
	cr_assert_eq(fr_inbound_take(a.op, a.slot[C], 3, 0), FR_IN_ELSEWHERE);
	leave3(&a);
}
