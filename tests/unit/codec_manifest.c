/*
 * codec_manifest.c - manifest build, encode/decode, validation of untrusted
 * bytes, path and link rules, and the extent iterator.
 *
 * Tests that aim at one field rewrite the trailer checksum after damaging
 * it; without that the checksum (rightly) catches everything first. Raw
 * manifests that the builder would refuse to make are written by hand with
 * the small raw_* writer below.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_codec.h"

#define SEG FR_SEG_MIN

/* ---- helpers ------------------------------------------------------------ */

static void build_tree(struct fr_manifest *m, const char *name)
{
	cr_assert_eq(fr_manifest_init(m, name, SEG), 0);
	cr_assert_eq(
	    fr_manifest_add(m, FR_ENT_DIR, "bin", 0755, 0, 100, 1, NULL), 0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_FILE, "bin/tool", 0755, 10000,
				     1700000000, 999999999, NULL),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_LINK, "bin/tool2", 0777, 0, -5,
				     0, "tool"),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_DIR, "lib", 0700, 0, 0, 0, NULL),
		     0);
	cr_assert_eq(
	    fr_manifest_add(m, FR_ENT_FILE, "lib/empty", 0644, 0, 0, 0, NULL),
	    0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_LINK, "lib/l", 0777, 0, 0, 0,
				     "../bin/tool"),
		     0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_FILE, "lib/libx.so", 04755, 3000,
				     1, 2, NULL),
		     0);
	cr_assert_eq(
	    fr_manifest_add(m, FR_ENT_DIR, "lib/sub", 0755, 0, 0, 0, NULL), 0);
	cr_assert_eq(
	    fr_manifest_add(m, FR_ENT_FILE, "lib/sub/a b", 0600, 5, 0, 0, NULL),
	    0);
	cr_assert_eq(
	    fr_manifest_add(m, FR_ENT_FILE, "readme", 0644, 1, 0, 0, NULL), 0);
	cr_assert_eq(fr_manifest_layout(m), 0);
	for (uint32_t i = 0; i < m->n_segments; i++)
		for (int j = 0; j < FR_HASH_LEN; j++)
			m->segments[i].hash[j] = (uint8_t)(i * 31 + j);
	cr_assert_eq(fr_manifest_seal(m), 0);
}

static uint8_t *encode(const struct fr_manifest *m, size_t *len)
{
	size_t n = fr_manifest_encoded_size(m);
	uint8_t *buf = malloc(n);

	cr_assert_not_null(buf);
	cr_assert_eq(fr_manifest_encode(m, buf, n), (ssize_t)n);
	*len = n;
	return buf;
}

static void retrailer(uint8_t *buf, size_t len)
{
	fr_put64(buf + len - 8, fr_hash64(buf, len - 8));
}

/* Decode a private copy of exactly len bytes, so ASan sees any over-read. */
static int decode_copy(const uint8_t *buf, size_t len)
{
	struct fr_manifest m = {0};
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, buf, len);
	rc = fr_manifest_decode(&m, copy, len);
	if (rc == 0)
		fr_manifest_fini(&m);
	else
		cr_assert_null(m.entries, "not left fini'd");
	free(copy);
	return rc;
}

/* Offset of entry i's fixed part in an encoding. */
static size_t entry_off(const uint8_t *buf, uint32_t i)
{
	size_t pos = 32 + fr_get16(buf + 20);

	while (i--)
		pos += 32 + fr_get16(buf + pos + 2) + fr_get16(buf + pos + 4);
	return pos;
}

static size_t seg_off(const uint8_t *buf, uint32_t i)
{
	return entry_off(buf, fr_get32(buf + 12)) + 32 * (size_t)i;
}

/* A hand writer for manifests the builder would refuse to make. */
struct raw {
	uint8_t buf[1 << 16];
	size_t len;
	uint32_t n_ent, n_seg;
	uint64_t total;
};

static void raw_begin(struct raw *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	fr_put32(r->buf, FR_MANIFEST_MAGIC);
	fr_put16(r->buf + 4, FR_MANIFEST_VERSION);
	fr_put32(r->buf + 8, SEG);
	fr_put16(r->buf + 20, (uint16_t)strlen(name));
	memcpy(r->buf + 32, name, strlen(name));
	r->len = 32 + strlen(name);
}

static void raw_entry(struct raw *r, uint8_t type, const char *path,
		      uint64_t size, const char *target)
{
	uint8_t *p = r->buf + r->len;
	size_t pl = strlen(path), tl = target ? strlen(target) : 0;

	memset(p, 0, 32);
	p[0] = type;
	fr_put16(p + 2, (uint16_t)pl);
	fr_put16(p + 4, (uint16_t)tl);
	fr_put32(p + 8, type == FR_ENT_LINK ? 0777 : 0644);
	fr_put64(p + 24, size);
	memcpy(p + 32, path, pl);
	if (tl)
		memcpy(p + 32 + pl, target, tl);
	r->len += 32 + pl + tl;
	r->n_ent++;
	if (type == FR_ENT_FILE)
		r->total += size;
}

/* Segments for the total so far, counts into the header, trailer. */
static void raw_end(struct raw *r)
{
	for (uint64_t off = 0; off < r->total; off += SEG) {
		uint8_t *p = r->buf + r->len;

		memset(p, 0, 32);
		fr_put64(p, off);
		fr_put32(p + 8, (uint32_t)(r->total - off < SEG ? r->total - off
								: SEG));
		r->len += 32;
		r->n_seg++;
	}
	fr_put32(r->buf + 12, r->n_ent);
	fr_put32(r->buf + 16, r->n_seg);
	fr_put64(r->buf + 24, r->total);
	r->len += 8;
	retrailer(r->buf, r->len);
}

static int raw_decode(struct raw *r)
{
	return decode_copy(r->buf, r->len);
}

/* ---- names, paths, links ------------------------------------------------ */

Test(check, paths)
{
	/* every byte Linux allows in a name: control bytes, invalid UTF-8 */
	static const char *const good[] = {
	    "a",       "a/b",	   "a b/c d", "a\\b", ".a",	  "..a",
	    "a..",     "a/.b/...", "\xc3\xa9t\xc3\xa9", "a\nb", "a\x1f", "a\x7f",
	    "\t/\n/\r", "bad\xff", "\x01\x02", "-x", "\n..", "..\n"};
	static const char *const bad[] = {
	    "",	  "../x", "/etc/passwd", "a/../../b", "a//b", "./a", "a/.",
	    "a/", "..",	  ".",		 "a/..",      "a\n/..", "\n/../.."};
	char longp[FR_PATH_MAX + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(fr_path_check(good[i]), 0, "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(fr_path_check(bad[i]), FR_E_BAD_PATH, "'%s'",
			     bad[i]);
	cr_assert_eq(fr_path_check(NULL), FR_E_BAD_PATH);
	memset(longp, 'x', sizeof(longp));
	longp[FR_PATH_MAX] = '\0';
	cr_assert_eq(fr_path_check(longp), 0);
	longp[FR_PATH_MAX] = 'x';
	longp[FR_PATH_MAX + 1] = '\0';
	cr_assert_eq(fr_path_check(longp), FR_E_BAD_PATH);
}

Test(check, links)
{
	cr_assert_eq(fr_link_check("a/l", "../../x"), FR_E_BAD_LINK);
	cr_assert_eq(fr_link_check("a/l", "/abs"), FR_E_BAD_LINK);
	cr_assert_eq(fr_link_check("l", ".."), FR_E_BAD_LINK);
	cr_assert_eq(fr_link_check("l", "../l"), FR_E_BAD_LINK);
	cr_assert_eq(fr_link_check("l", ""), FR_E_BAD_LINK);
	cr_assert_eq(fr_link_check("l", NULL), FR_E_BAD_LINK);
	cr_assert_eq(fr_link_check("a/l", "b/../../../x"), FR_E_BAD_LINK);
	cr_assert_eq(fr_link_check("a/l", "./.././.."), FR_E_BAD_LINK);
	cr_assert_eq(fr_link_check("a/l\n", "../\n/../../x"), FR_E_BAD_LINK);

	cr_assert_eq(fr_link_check("a/l", "x\ny"), 0);
	cr_assert_eq(fr_link_check("a/l", "../\t\xff"), 0);

	cr_assert_eq(fr_link_check("a/l", "../b"), 0);
	cr_assert_eq(fr_link_check("a/l", ".."), 0);
	cr_assert_eq(fr_link_check("l", "a/b"), 0);
	cr_assert_eq(fr_link_check("l", "."), 0);
	cr_assert_eq(fr_link_check("l", "a//b/"), 0);
	cr_assert_eq(fr_link_check("a/b/l", "../../c"), 0);
	cr_assert_eq(fr_link_check("l", "b/../c"), 0);
}

Test(check, names)
{
	char n[FR_NAME_MAX + 2];

	cr_assert_eq(fr_name_check("pkg-1.2_x86"), 0);
	cr_assert_eq(fr_name_check("..pkg"), 0);
	cr_assert_eq(fr_name_check(""), FR_E_BAD_NAME);
	cr_assert_eq(fr_name_check("."), FR_E_BAD_NAME);
	cr_assert_eq(fr_name_check(".."), FR_E_BAD_NAME);
	cr_assert_eq(fr_name_check("a/b"), FR_E_BAD_NAME);
	cr_assert_eq(fr_name_check("a\tb"), FR_E_BAD_NAME);
	cr_assert_eq(fr_name_check(NULL), FR_E_BAD_NAME);
	memset(n, 'n', sizeof(n));
	n[FR_NAME_MAX] = '\0';
	cr_assert_eq(fr_name_check(n), 0);
	n[FR_NAME_MAX] = 'n';
	n[FR_NAME_MAX + 1] = '\0';
	cr_assert_eq(fr_name_check(n), FR_E_BAD_NAME);
}

/* ---- building ----------------------------------------------------------- */

/* Names with every kind of byte Linux allows go through encode and
 * decode unchanged, links to them included. */
Test(build, control_bytes_round_trip)
{
	static const char *const paths[] = {
	    "\x01ctl", "-dash", "a b ", "back\\slash", "bad\xff\xfe",
	    "d\nir", "d\nir/f\tile\r", "d\nir/l\x7f", "new\nline"};
	struct fr_manifest a, b = {0};
	size_t len;
	uint8_t *buf;

	cr_assert_eq(fr_manifest_init(&a, "pkg", SEG), 0);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		uint8_t type = !strcmp(paths[i], "d\nir")	  ? FR_ENT_DIR
			       : !strcmp(paths[i], "d\nir/l\x7f") ? FR_ENT_LINK
							      : FR_ENT_FILE;
		cr_assert_eq(fr_manifest_add(&a, type, paths[i],
					     type == FR_ENT_LINK ? 0777 : 0644,
					     i + 1, 0, 0,
					     type == FR_ENT_LINK
						     ? "../new\nline"
						     : NULL),
			     0, "%zu", i);
	}
	cr_assert_eq(fr_manifest_layout(&a), 0);
	cr_assert_eq(fr_manifest_seal(&a), 0);
	buf = encode(&a, &len);
	cr_assert_eq(fr_manifest_decode(&b, buf, len), 0);
	cr_assert_eq(b.n_entries, a.n_entries);
	for (uint32_t i = 0; i < b.n_entries; i++)
		cr_assert_str_eq(b.entries[i].path, paths[i]);
	cr_assert_str_eq(b.entries[7].target, "../new\nline");
	cr_assert_eq(memcmp(a.id, b.id, FR_HASH_LEN), 0);
	fr_manifest_fini(&b);
	fr_manifest_fini(&a);
	free(buf);
}

/* the package directory's own mtime: carried, checked, in the listing */
Test(build, root_time_round_trip)
{
	struct fr_manifest a, b = {0};
	uint8_t lid[FR_HASH_LEN], *buf;
	size_t len;

	build_tree(&a, "pkg");
	memcpy(lid, a.lid, FR_HASH_LEN);
	a.has_root_time = true;
	a.root_mtime_sec = 1262401445;
	a.root_mtime_nsec = 123456789;
	cr_assert_eq(fr_manifest_seal(&a), 0);
	cr_assert_arr_neq(a.lid, lid, FR_HASH_LEN, "the listing ignores it");
	buf = encode(&a, &len);
	cr_assert_eq(fr_manifest_decode(&b, buf, len), 0);
	cr_assert(b.has_root_time);
	cr_assert_eq(b.root_mtime_sec, 1262401445);
	cr_assert_eq(b.root_mtime_nsec, 123456789);
	cr_assert_arr_eq(b.lid, a.lid, FR_HASH_LEN);
	fr_manifest_fini(&b);
	/* nanoseconds past a second: refused; cut short: truncated */
	fr_put32(buf + 32 + 3 + 8, 1000000000u);
	retrailer(buf, len);
	cr_assert_eq(decode_copy(buf, len), FR_E_BAD_ENTRY);
	cr_assert_eq(decode_copy(buf, 32 + 3 + 4), FR_E_TRUNCATED);
	free(buf);
	fr_manifest_fini(&a);
}

Test(build, init_rules)
{
	struct fr_manifest m;

	cr_assert_eq(fr_manifest_init(&m, "../x", SEG), FR_E_BAD_NAME);
	fr_manifest_fini(&m);
	cr_assert_eq(fr_manifest_init(&m, "x", FR_SEG_MIN - 1), FR_E_SEG_SIZE);
	fr_manifest_fini(&m);
	cr_assert_eq(fr_manifest_init(&m, "x", FR_SEG_MAX + 1), FR_E_SEG_SIZE);
	fr_manifest_fini(&m);
	cr_assert_eq(fr_manifest_init(&m, "x", FR_SEG_MAX), 0);
	fr_manifest_fini(&m);
	fr_manifest_fini(&m);
}

Test(build, add_rules)
{
	struct fr_manifest m;

	cr_assert_eq(fr_manifest_init(&m, "p", SEG), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "a/x", 0644, 1, 0, 0, NULL),
	    FR_E_NO_PARENT);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "../x", 0644, 1, 0, 0, NULL),
	    FR_E_BAD_PATH);
	cr_assert_eq(fr_manifest_add(&m, 7, "x", 0644, 1, 0, 0, NULL),
		     FR_E_BAD_ENTRY);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "x", 010644, 1, 0, 0, NULL),
	    FR_E_BAD_ENTRY);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "x", 0644, 1, 0, 1000000000, NULL),
	    FR_E_BAD_ENTRY);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_DIR, "b", 0755, 0, 0, 0, NULL),
		     0);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_DIR, "b", 0755, 0, 0, 0, NULL),
		     FR_E_BAD_ORDER);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_DIR, "a", 0755, 0, 0, 0, NULL),
		     FR_E_BAD_ORDER);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_LINK, "b/l", 0777, 0, 0, 0, "../../x"),
	    FR_E_BAD_LINK);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_LINK, "b/l", 0777, 0, 0, 0, NULL),
	    FR_E_BAD_LINK);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_LINK, "b/l", 0777, 0, 0, 0, "../c"), 0);
	/* A grandchild with its grandparent but not its parent. */
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "b/x/y", 0644, 7, 0, 0, NULL),
	    FR_E_NO_PARENT);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_FILE, "c", 0644, 7, 0, 0, NULL),
		     0);
	/* A file is no parent. */
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "c/d", 0644, 7, 0, 0, NULL),
	    FR_E_NO_PARENT);
	cr_assert_eq(m.n_entries, 3);
	cr_assert_eq(fr_manifest_layout(&m), 0);
	cr_assert_eq(m.total_size, 7);
	cr_assert_eq(m.n_segments, 1);
	cr_assert_eq(m.segments[0].length, 7);
	cr_assert_eq(m.n_data, 1);
	cr_assert_eq(m.data_idx[0], 2);
	fr_manifest_fini(&m);
}

Test(build, sizes_of_dirs_and_links_ignored)
{
	struct fr_manifest m;

	cr_assert_eq(fr_manifest_init(&m, "p", SEG), 0);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_DIR, "d", 0755, 99, 0, 0, "t"),
		     0);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_LINK, "l", 0777, 99, 0, 0, "d"),
		     0);
	cr_assert_eq(fr_manifest_layout(&m), 0);
	cr_assert_eq(m.total_size, 0);
	cr_assert_eq(m.n_segments, 0);
	cr_assert_null(m.entries[0].target);
	cr_assert_eq(fr_manifest_seal(&m), 0);
	fr_manifest_fini(&m);
}

Test(build, links_through_links_refused)
{
	struct fr_manifest m;

	/* each target alone stays inside; followed through t, u leaves */
	cr_assert_eq(fr_manifest_init(&m, "p", SEG), 0);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_LINK, "t", 0777, 0, 0, 0, "."),
		     0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_LINK, "u", 0777, 0, 0, 0, "t/.."), 0);
	cr_assert_eq(fr_manifest_layout(&m), FR_E_BAD_LINK);
	fr_manifest_fini(&m);

	/* a link to a link, and a path through a real directory, are fine */
	cr_assert_eq(fr_manifest_init(&m, "p", SEG), 0);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_DIR, "d", 0755, 0, 0, 0, NULL),
		     0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_LINK, "d/l", 0777, 0, 0, 0, "../t"), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_LINK, "t", 0777, 0, 0, 0, "d/../d"), 0);
	cr_assert_eq(fr_manifest_layout(&m), 0);
	fr_manifest_fini(&m);

}

Test(build, layout_boundaries)
{
	struct fr_manifest m;

	cr_assert_eq(fr_manifest_init(&m, "p", SEG), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "a", 0644, SEG, 0, 0, NULL), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "b", 0644, SEG, 0, 0, NULL), 0);
	cr_assert_eq(fr_manifest_layout(&m), 0);
	cr_assert_eq(m.n_segments, 2);
	cr_assert_eq(m.segments[1].offset, SEG);
	cr_assert_eq(m.segments[1].length, SEG);
	cr_assert_eq(m.entries[1].offset, SEG);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_FILE, "c", 0644, 1, 0, 0, NULL),
		     0);
	cr_assert_eq(fr_manifest_layout(&m), 0);
	cr_assert_eq(m.n_segments, 3);
	cr_assert_eq(m.segments[2].length, 1);
	fr_manifest_fini(&m);
}

Test(build, huge_total)
{
	struct fr_manifest m;

	/* 2^62 + 2^62 no longer fits an off_t. */
	cr_assert_eq(fr_manifest_init(&m, "p", FR_SEG_MAX), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "a", 0644, 1ull << 62, 0, 0, NULL),
	    0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "b", 0644, 1ull << 62, 0, 0, NULL),
	    0);
	cr_assert_eq(fr_manifest_layout(&m), FR_E_TOO_LARGE);
	fr_manifest_fini(&m);
	cr_assert_eq(fr_manifest_init(&m, "p", FR_SEG_MAX), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "a", 0644, UINT64_MAX, 0, 0, NULL),
	    0);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_FILE, "b", 0644, 2, 0, 0, NULL),
		     0);
	cr_assert_eq(fr_manifest_layout(&m), FR_E_TOO_LARGE);
	fr_manifest_fini(&m);
	/* Representable, but the segment table could never be encoded. */
	cr_assert_eq(fr_manifest_init(&m, "p", FR_SEG_MIN), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "a", 0644, 1ull << 60, 0, 0, NULL),
	    0);
	cr_assert_eq(fr_manifest_layout(&m), FR_E_TOO_LARGE);
	fr_manifest_fini(&m);
}

/* ---- round trip and identity -------------------------------------------- */

Test(codec, round_trip)
{
	struct fr_manifest a, b = {0};
	size_t len;
	uint8_t *buf;

	build_tree(&a, "pkg");
	buf = encode(&a, &len);
	cr_assert_eq(fr_manifest_decode(&b, buf, len), 0);
	cr_assert_str_eq(b.name, a.name);
	cr_assert_eq(b.seg_size, a.seg_size);
	cr_assert_eq(b.total_size, 10000 + 3000 + 5 + 1);
	cr_assert_eq(b.total_size, a.total_size);
	cr_assert_eq(b.n_entries, a.n_entries);
	cr_assert_eq(b.n_segments, a.n_segments);
	cr_assert_eq(b.n_segments, (b.total_size + SEG - 1) / SEG);
	cr_assert_eq(b.n_data, a.n_data);
	cr_assert_eq(b.n_data, 4);
	for (uint32_t i = 0; i < a.n_entries; i++) {
		struct fr_entry *x = &a.entries[i], *y = &b.entries[i];

		cr_assert_str_eq(x->path, y->path);
		cr_assert_eq(x->type, y->type);
		cr_assert_eq(x->mode, y->mode);
		cr_assert_eq(x->mtime_sec, y->mtime_sec);
		cr_assert_eq(x->mtime_nsec, y->mtime_nsec);
		cr_assert_eq(x->size, y->size);
		cr_assert_eq(x->offset, y->offset);
		if (x->target)
			cr_assert_str_eq(x->target, y->target);
		else
			cr_assert_null(y->target);
	}
	for (uint32_t i = 0; i < a.n_data; i++)
		cr_assert_eq(a.data_idx[i], b.data_idx[i]);
	for (uint32_t i = 0; i < a.n_segments; i++) {
		cr_assert_eq(a.segments[i].offset, b.segments[i].offset);
		cr_assert_eq(a.segments[i].length, b.segments[i].length);
		cr_assert_eq(
		    memcmp(a.segments[i].hash, b.segments[i].hash, FR_HASH_LEN),
		    0);
	}
	cr_assert_eq(memcmp(a.id, b.id, FR_HASH_LEN), 0);
	fr_manifest_fini(&b);
	fr_manifest_fini(&b);
	fr_manifest_fini(&a);
	free(buf);
}

Test(codec, empty_manifest)
{
	struct fr_manifest a, b = {0};
	size_t len;
	uint8_t *buf;

	cr_assert_eq(fr_manifest_init(&a, "nothing", SEG), 0);
	cr_assert_eq(fr_manifest_layout(&a), 0);
	cr_assert_eq(fr_manifest_seal(&a), 0);
	buf = encode(&a, &len);
	cr_assert_eq(len, 32 + 7 + 8);
	cr_assert_eq(fr_manifest_decode(&b, buf, len), 0);
	cr_assert_eq(b.n_entries, 0);
	cr_assert_eq(b.n_segments, 0);
	cr_assert_eq(memcmp(a.id, b.id, FR_HASH_LEN), 0);
	fr_manifest_fini(&a);
	fr_manifest_fini(&b);
	free(buf);
}

Test(codec, encode_needs_room)
{
	struct fr_manifest a;
	size_t n;
	uint8_t *buf;

	build_tree(&a, "pkg");
	n = fr_manifest_encoded_size(&a);
	buf = malloc(n);
	cr_assert_eq(fr_manifest_encode(&a, buf, n - 1), -ENOBUFS);
	cr_assert_eq(fr_manifest_encode(&a, buf, 0), -ENOBUFS);
	fr_manifest_fini(&a);
	free(buf);
}

Test(codec, id_stable_and_sensitive)
{
	struct fr_manifest a, b;
	uint8_t id[FR_HASH_LEN];

	build_tree(&a, "pkg");
	build_tree(&b, "pkg");
	cr_assert_eq(memcmp(a.id, b.id, FR_HASH_LEN), 0);
	memcpy(id, a.id, FR_HASH_LEN);
	cr_assert_eq(fr_manifest_seal(&a), 0);
	cr_assert_eq(memcmp(a.id, id, FR_HASH_LEN), 0);

#define CHANGED(stmt)                                                          \
	do {                                                                   \
		build_tree(&b, "pkg");                                         \
		stmt;                                                          \
		cr_assert_eq(fr_manifest_seal(&b), 0);                         \
		cr_assert_neq(memcmp(b.id, id, FR_HASH_LEN), 0, #stmt);        \
		fr_manifest_fini(&b);                                          \
	} while (0)

	fr_manifest_fini(&b);
	CHANGED(b.entries[1].mode = 0700);
	CHANGED(b.entries[1].mtime_sec++);
	CHANGED(b.entries[1].mtime_nsec--);
	CHANGED(b.entries[2].target[0] = 'x');
	CHANGED(b.entries[8].path[6] = 'c');
	CHANGED(b.segments[3].hash[15] ^= 1);
	CHANGED(b.name[0] = 'q');
	CHANGED(b.entries[0].type = FR_ENT_FILE);
#undef CHANGED

	/* A different size means a different layout, hence a new id. */
	build_tree(&b, "pkg");
	b.entries[1].size++;
	cr_assert_eq(fr_manifest_layout(&b), 0);
	cr_assert_eq(fr_manifest_seal(&b), 0);
	cr_assert_neq(memcmp(b.id, id, FR_HASH_LEN), 0);
	fr_manifest_fini(&b);

	fr_manifest_fini(&a);
}

/* ---- decoding untrusted bytes -------------------------------------------- */

struct corrupt {
	const char *what;
	int want;
	void (*fn)(uint8_t *buf);
};

static void c_magic(uint8_t *b)
{
	b[1] = 'X';
}
static void c_version(uint8_t *b)
{
	fr_put16(b + 4, 2);
}
static void c_flags(uint8_t *b)
{
	fr_put16(b + 6, 4); /* bits 0 and 1 are FR_MF_OPEN and
			     * FR_MF_ROOT_TIME; the others mean nothing */
}
static void c_seg_small(uint8_t *b)
{
	fr_put32(b + 8, FR_SEG_MIN - 1);
}
static void c_seg_big(uint8_t *b)
{
	fr_put32(b + 8, FR_SEG_MAX + 1);
}
static void c_seg_other(uint8_t *b)
{
	fr_put32(b + 8, 2 * FR_SEG_MIN);
}
static void c_hdr_rsvd(uint8_t *b)
{
	b[23] = 0x10; /* root mode 010000: not a permission bit */
}
static void c_total(uint8_t *b)
{
	fr_put64(b + 24, fr_get64(b + 24) + 1);
}
static void c_name_slash(uint8_t *b)
{
	b[32] = '/';
}
static void c_name_ctl(uint8_t *b)
{
	b[33] = '\n';
}
static void c_name_nul(uint8_t *b)
{
	b[33] = '\0';
}
static void c_type(uint8_t *b)
{
	b[entry_off(b, 1)] = 9;
}
static void c_type0(uint8_t *b)
{
	b[entry_off(b, 1)] = 0;
}
static void c_ent_rsvd1(uint8_t *b)
{
	b[entry_off(b, 1) + 1] = 1;
}
static void c_ent_rsvd2(uint8_t *b)
{
	b[entry_off(b, 1) + 7] = 1;
}
static void c_mode(uint8_t *b)
{
	fr_put32(b + entry_off(b, 1) + 8, 0100755);
}
static void c_nsec(uint8_t *b)
{
	fr_put32(b + entry_off(b, 1) + 12, 1000000000);
}
static void c_dir_size(uint8_t *b)
{
	b[entry_off(b, 0) + 24] = 1;
}
static void c_link_size(uint8_t *b)
{
	b[entry_off(b, 2) + 24] = 1;
}
static void c_file_size(uint8_t *b)
{
	b[entry_off(b, 1) + 24] ^= 1;
}
static void c_path_nul(uint8_t *b)
{
	b[entry_off(b, 1) + 32 + 1] = '\0';
}
static void c_path_dotdot(uint8_t *b)
{
	/* "bin/tool" -> "bin/../l": a safe-looking length, a bad path */
	memcpy(b + entry_off(b, 1) + 32, "bin/../l", 8);
}
static void c_path_abs(uint8_t *b)
{
	b[entry_off(b, 0) + 32] = '/';
}
static void c_order(uint8_t *b)
{
	/* "lib" -> "aib": now after "bin/tool2" yet smaller */
	b[entry_off(b, 3) + 32] = 'a';
}
static void c_swap(uint8_t *b)
{
	/* "bin/tool" -> "bin/toom": now after its successor "bin/tool2" */
	b[entry_off(b, 1) + 32 + 7] = 'm';
}
static void c_parent(uint8_t *b)
{
	/* "lib/sub/a b" -> "lib/suc/a b": its parent does not exist */
	b[entry_off(b, 8) + 32 + 6] = 'c';
}
static void c_parent_is_file(uint8_t *b)
{
	/* "lib/sub" becomes an empty file, still the parent of "lib/sub/a b" */
	b[entry_off(b, 7)] = FR_ENT_FILE;
}
static void c_link_escape(uint8_t *b)
{
	/* "lib/l" -> "../bin/tool" becomes "../../bin/t" */
	memcpy(b + entry_off(b, 5) + 32 + 5, "../../bin/t", 11);
}
static void c_link_abs(uint8_t *b)
{
	b[entry_off(b, 5) + 32 + 5] = '/';
}
static void c_target_on_file(uint8_t *b)
{
	/* Steal a byte of the file's path as a "target". */
	size_t e = entry_off(b, 1);

	fr_put16(b + e + 2, 7);
	fr_put16(b + e + 4, 1);
}
static void c_link_no_target(uint8_t *b)
{
	size_t e = entry_off(b, 2);

	/* "bin/tool2" + "tool" -> path "bin/tool2tool", no target */
	fr_put16(b + e + 2, 13);
	fr_put16(b + e + 4, 0);
}
static void c_path_len0(uint8_t *b)
{
	size_t e = entry_off(b, 9);

	/* "readme" (6) -> empty path and 6 bytes of target on a file */
	fr_put16(b + e + 2, 0);
	fr_put16(b + e + 4, 6);
}
static void c_seg_offset(uint8_t *b)
{
	b[seg_off(b, 1)] ^= 1;
}
static void c_seg_len(uint8_t *b)
{
	b[seg_off(b, 1) + 8] ^= 1;
}
static void c_last_len(uint8_t *b)
{
	size_t s = seg_off(b, fr_get32(b + 16) - 1);

	fr_put32(b + s + 8, SEG);
}
static void c_seg_rsvd(uint8_t *b)
{
	b[seg_off(b, 2) + 14] = 1;
}
static void c_seg_count_more(uint8_t *b)
{
	fr_put32(b + 16, fr_get32(b + 16) + 1);
}
static void c_seg_count_less(uint8_t *b)
{
	fr_put32(b + 16, fr_get32(b + 16) - 1);
}

static const struct corrupt corruptions[] = {
    {"magic", FR_E_BAD_MAGIC, c_magic},
    {"version", FR_E_BAD_VERSION, c_version},
    {"flags", FR_E_BAD_FLAGS, c_flags},
    {"seg_size small", FR_E_SEG_SIZE, c_seg_small},
    {"seg_size big", FR_E_SEG_SIZE, c_seg_big},
    {"seg_size other", FR_E_BAD_SEGMENT, c_seg_other},
    {"root mode", FR_E_BAD_ENTRY, c_hdr_rsvd},
    {"total_size", FR_E_BAD_SEGMENT, c_total},
    {"name slash", FR_E_BAD_NAME, c_name_slash},
    {"name control", FR_E_BAD_NAME, c_name_ctl},
    {"name nul", FR_E_BAD_NAME, c_name_nul},
    {"type", FR_E_BAD_ENTRY, c_type},
    {"type 0", FR_E_BAD_ENTRY, c_type0},
    {"entry reserved1", FR_E_BAD_RESERVED, c_ent_rsvd1},
    {"entry reserved2", FR_E_BAD_RESERVED, c_ent_rsvd2},
    {"mode", FR_E_BAD_ENTRY, c_mode},
    {"mtime_nsec", FR_E_BAD_ENTRY, c_nsec},
    {"dir size", FR_E_BAD_ENTRY, c_dir_size},
    {"link size", FR_E_BAD_ENTRY, c_link_size},
    {"file size", FR_E_BAD_SEGMENT, c_file_size},
    {"path nul", FR_E_BAD_PATH, c_path_nul},
    {"path dotdot", FR_E_BAD_PATH, c_path_dotdot},
    {"path absolute", FR_E_BAD_PATH, c_path_abs},
    {"order", FR_E_BAD_ORDER, c_order},
    {"swapped", FR_E_BAD_ORDER, c_swap},
    {"parent missing", FR_E_NO_PARENT, c_parent},
    {"parent is a file", FR_E_NO_PARENT, c_parent_is_file},
    {"link escapes", FR_E_BAD_LINK, c_link_escape},
    {"link absolute", FR_E_BAD_LINK, c_link_abs},
    {"target on a file", FR_E_BAD_ENTRY, c_target_on_file},
    {"link without target", FR_E_BAD_LINK, c_link_no_target},
    {"empty path", FR_E_BAD_PATH, c_path_len0},
    {"segment offset", FR_E_BAD_SEGMENT, c_seg_offset},
    {"segment length", FR_E_BAD_SEGMENT, c_seg_len},
    {"last segment length", FR_E_BAD_SEGMENT, c_last_len},
    {"segment reserved", FR_E_BAD_RESERVED, c_seg_rsvd},
    {"n_segments + 1", FR_E_TRUNCATED, c_seg_count_more},
    {"n_segments - 1", FR_E_TRAILING, c_seg_count_less},
};

Test(decode, each_field_its_own_code)
{
	struct fr_manifest a;
	size_t len;
	uint8_t *good;

	build_tree(&a, "pkg");
	good = encode(&a, &len);
	cr_assert_eq(decode_copy(good, len), 0);
	for (size_t i = 0; i < sizeof(corruptions) / sizeof(corruptions[0]);
	     i++) {
		const struct corrupt *c = &corruptions[i];
		uint8_t *b = malloc(len);
		int rc;

		memcpy(b, good, len);
		c->fn(b);
		cr_assert_neq(memcmp(b, good, len), 0, "%s: no change",
			      c->what);
		/*
		 * Without a new trailer, the checksum speaks first (a count
		 * that now runs past the end reads as a truncation).
		 */
		rc = decode_copy(b, len);
		if (c->want == FR_E_BAD_MAGIC || c->want == FR_E_BAD_VERSION)
			cr_assert_eq(rc, c->want, "%s: unsealed", c->what);
		else if (c->want == FR_E_TRUNCATED)
			cr_assert_eq(rc, FR_E_TRUNCATED, "%s: unsealed",
				     c->what);
		else
			cr_assert_eq(rc, FR_E_CHECKSUM, "%s: unsealed: %s",
				     c->what, fr_err_name(rc));
		retrailer(b, len);
		rc = decode_copy(b, len);
		cr_assert_eq(rc, c->want, "%s: got %s, want %s", c->what,
			     fr_err_name(rc), fr_err_name(c->want));
		free(b);
	}
	fr_manifest_fini(&a);
	free(good);
}

Test(decode, every_flip_rejected)
{
	struct fr_manifest a;
	size_t len;
	uint8_t *b;

	build_tree(&a, "pkg");
	b = encode(&a, &len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			b[i] ^= (uint8_t)(1u << bit);
			cr_assert_lt(decode_copy(b, len), 0, "byte %zu", i);
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
	fr_manifest_fini(&a);
	free(b);
}

Test(decode, every_truncation_rejected)
{
	struct fr_manifest a;
	size_t len;
	uint8_t *b;

	build_tree(&a, "pkg");
	b = encode(&a, &len);
	for (size_t l = 0; l < len; l++) {
		int rc = decode_copy(b, l);

		/* The counts in the header say more bytes should follow. */
		cr_assert_eq(rc, FR_E_TRUNCATED, "length %zu: %s", l,
			     fr_err_name(rc));
	}
	/* Even when the cut is re-sealed with a fresh trailer. */
	for (size_t l = 40; l < len; l++) {
		uint8_t *c = malloc(l);

		memcpy(c, b, l);
		retrailer(c, l);
		cr_assert_lt(decode_copy(c, l), 0, "resealed length %zu", l);
		free(c);
	}
	fr_manifest_fini(&a);
	free(b);
}

Test(decode, trailing_bytes)
{
	struct fr_manifest a;
	size_t len;
	uint8_t *b, *c;

	build_tree(&a, "pkg");
	b = encode(&a, &len);
	c = malloc(len + 9);
	memcpy(c, b, len);
	memset(c + len, 0, 9);
	cr_assert_eq(decode_copy(c, len + 1), FR_E_TRAILING);
	cr_assert_eq(decode_copy(c, len + 9), FR_E_TRAILING);
	/* Junk between the body and a trailer that covers it. */
	memcpy(c, b, len - 8);
	memset(c + len - 8, 0xaa, 4);
	retrailer(c, len + 4);
	cr_assert_eq(decode_copy(c, len + 4), FR_E_TRAILING);
	fr_manifest_fini(&a);
	free(b);
	free(c);
}

Test(decode, lying_counts)
{
	struct fr_manifest a;
	size_t len;
	uint8_t *b;

	/*
	 * Under ASan, a calloc sized from these counts (hundreds of GiB)
	 * would abort the test: the decoder must refuse before allocating.
	 */
	build_tree(&a, "pkg");
	b = encode(&a, &len);
	fr_put32(b + 12, 0xffffffffu);
	retrailer(b, len);
	cr_assert_eq(decode_copy(b, len), FR_E_TRUNCATED);
	free(b);

	b = encode(&a, &len);
	fr_put32(b + 16, 0xffffffffu);
	retrailer(b, len);
	cr_assert_eq(decode_copy(b, len), FR_E_TRUNCATED);
	free(b);

	b = encode(&a, &len);
	fr_put16(b + 20, 0xffff);
	retrailer(b, len);
	cr_assert_eq(decode_copy(b, len), FR_E_TRUNCATED);
	free(b);

	b = encode(&a, &len);
	fr_put16(b + entry_off(b, 0) + 2, 0xffff);
	fr_put16(b + entry_off(b, 0) + 4, 0xffff);
	retrailer(b, len);
	cr_assert_eq(decode_copy(b, len), FR_E_TRUNCATED);
	free(b);
	fr_manifest_fini(&a);
}

Test(decode, header_limits)
{
	uint8_t small[40] = {0};

	cr_assert_eq(decode_copy(small, 0), FR_E_TRUNCATED);
	cr_assert_eq(decode_copy(small, 31), FR_E_TRUNCATED);
	cr_assert_eq(decode_copy(small, 40), FR_E_BAD_MAGIC);
	fr_put32(small, FR_MANIFEST_MAGIC);
	cr_assert_eq(decode_copy(small, 40), FR_E_BAD_VERSION);
	fr_put16(small + 4, FR_MANIFEST_VERSION);
	cr_assert_eq(decode_copy(small, 39), FR_E_TRUNCATED);
	/* Length alone is refused, before any byte past the header. */
	{
		struct fr_manifest m = {0};

		cr_assert_eq(
		    fr_manifest_decode(&m, small, (size_t)FR_MANIFEST_MAX + 1),
		    FR_E_TOO_LARGE);
	}
}

Test(decode, raw_valid_baseline)
{
	struct raw r;

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
	raw_entry(&r, FR_ENT_FILE, "a/f", 5000, NULL);
	raw_entry(&r, FR_ENT_LINK, "a/l", 0, "../b");
	raw_entry(&r, FR_ENT_FILE, "b", 3, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), 0);
}

Test(decode, raw_unsorted_and_duplicates)
{
	struct raw r;

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "b", 1, NULL);
	raw_entry(&r, FR_ENT_FILE, "a", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_ORDER);

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "a", 1, NULL);
	raw_entry(&r, FR_ENT_FILE, "a", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_ORDER);

	/* A dir and a file of the same name: still a duplicate. */
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
	raw_entry(&r, FR_ENT_FILE, "a", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_ORDER);

	/* strcmp order, not directory-walk order: "a.b" < "a/b". */
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
	raw_entry(&r, FR_ENT_FILE, "a/b", 1, NULL);
	raw_entry(&r, FR_ENT_FILE, "a.b", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_ORDER);
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
	raw_entry(&r, FR_ENT_FILE, "a.b", 1, NULL);
	raw_entry(&r, FR_ENT_FILE, "a/b", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), 0);
}

Test(decode, raw_parents)
{
	struct raw r;

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "a/b", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_NO_PARENT);

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "a", 1, NULL);
	raw_entry(&r, FR_ENT_FILE, "a/b", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_NO_PARENT);

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
	raw_entry(&r, FR_ENT_DIR, "a/b", 0, NULL);
	raw_entry(&r, FR_ENT_FILE, "a/b/c/d", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_NO_PARENT);
}

Test(decode, raw_paths_and_links)
{
	static const char *const bad_paths[] = {
	    "../x", "/etc/passwd", "a/../../b", "a//b", "./a", "a/.", "x/"};
	struct raw r;

	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		raw_begin(&r, "p");
		raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
		raw_entry(&r, FR_ENT_FILE, bad_paths[i], 1, NULL);
		raw_end(&r);
		cr_assert_eq(raw_decode(&r), FR_E_BAD_PATH, "%s", bad_paths[i]);
	}

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
	raw_entry(&r, FR_ENT_LINK, "a/l", 0, "../../x");
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_LINK);

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
	raw_entry(&r, FR_ENT_LINK, "a/l", 0, "/abs");
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_LINK);

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a", 0, NULL);
	raw_entry(&r, FR_ENT_LINK, "a/l", 0, "../b");
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), 0);

	/* from the wire: control bytes and bad UTF-8 are names like others */
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a\n", 0, NULL);
	raw_entry(&r, FR_ENT_FILE, "a\n/\t\x01\xff", 1, NULL);
	raw_entry(&r, FR_ENT_LINK, "a\n/l", 0, "\t\x01\xff");
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), 0);

	/* but a component of them still may not be "..", nor lead out */
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a\n", 0, NULL);
	raw_entry(&r, FR_ENT_FILE, "a\n/..", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_PATH);
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_DIR, "a\n", 0, NULL);
	raw_entry(&r, FR_ENT_LINK, "a\n/l", 0, "\n/../../..");
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_LINK);
}

/* A NUL inside a path or target (its length says more bytes follow) is
 * refused, not cut short. */
Test(decode, raw_nul_in_names)
{
	struct raw r;
	size_t at;

	raw_begin(&r, "p");
	at = r.len + 32;
	raw_entry(&r, FR_ENT_FILE, "a\nXb", 1, NULL);
	r.buf[at + 2] = '\0';
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_PATH);

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "b", 1, NULL);
	at = r.len + 32 + 1;
	raw_entry(&r, FR_ENT_LINK, "l", 0, "bX\t");
	r.buf[at + 1] = '\0';
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_LINK);

	/* a path of one '/' (two empty components), and an empty one */
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "/", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_PATH);
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "", 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_PATH);
}

Test(decode, raw_size_overflow)
{
	struct raw r;

	/* Two files whose sizes wrap a uint64: refused, not wrapped. */
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "a", UINT64_MAX, NULL);
	raw_entry(&r, FR_ENT_FILE, "b", 2, NULL);
	r.total = 1; /* what the wrapped sum would claim */
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_TOO_LARGE);

	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, "a", 1ull << 63, NULL);
	r.total = 0;
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_TOO_LARGE);
}

Test(decode, raw_long_path)
{
	static char p[FR_PATH_MAX + 2];
	struct raw r;

	memset(p, 'x', FR_PATH_MAX);
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, p, 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), 0);
	p[FR_PATH_MAX] = 'x';
	raw_begin(&r, "p");
	raw_entry(&r, FR_ENT_FILE, p, 1, NULL);
	raw_end(&r);
	cr_assert_eq(raw_decode(&r), FR_E_BAD_PATH);
}

/* ---- extents ------------------------------------------------------------ */

/*
 * Walk every segment's extents and check each byte of the stream is met
 * exactly once, at the right file offset and segment offset.
 */
static void check_extents(const struct fr_manifest *m)
{
	uint8_t *seen = calloc(1, m->total_size ? m->total_size : 1);
	uint64_t sum = 0;

	cr_assert_not_null(seen);
	for (uint32_t s = 0; s < m->n_segments; s++) {
		struct fr_extent_iter it;
		struct fr_extent x;
		uint32_t want_off = 0;

		fr_extent_iter_init(&it, m, s);
		while (fr_extent_next(&it, &x)) {
			const struct fr_entry *e = &m->entries[x.entry];
			uint64_t at = e->offset + x.file_off;

			cr_assert_eq(e->type, FR_ENT_FILE);
			cr_assert_gt(x.len, 0);
			cr_assert_eq(x.seg_off, want_off);
			cr_assert_leq(x.file_off + x.len, e->size);
			cr_assert_eq(at, m->segments[s].offset + x.seg_off);
			for (uint32_t i = 0; i < x.len; i++)
				seen[at + i]++;
			want_off += x.len;
			sum += x.len;
		}
		cr_assert_eq(want_off, m->segments[s].length, "segment %u", s);
	}
	cr_assert_eq(sum, m->total_size);
	for (uint64_t i = 0; i < m->total_size; i++)
		cr_assert_eq(seen[i], 1, "byte %llu", (unsigned long long)i);
	free(seen);
}

Test(extent, many_small_files_and_a_big_one)
{
	struct fr_manifest m;
	char path[32];
	int n = 0;

	cr_assert_eq(fr_manifest_init(&m, "p", SEG), 0);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_DIR, "d", 0755, 0, 0, 0, NULL),
		     0);
	for (int i = 0; i < 3000; i++) {
		snprintf(path, sizeof(path), "d/f%05d", i);
		/* sizes 0..6: empty files sit between the others */
		cr_assert_eq(fr_manifest_add(&m, FR_ENT_FILE, path, 0644,
					     (uint64_t)(i % 7), 0, 0, NULL),
			     0);
		n++;
		if (i == 1500) {
			cr_assert_eq(
			    fr_manifest_add(&m, FR_ENT_FILE, "d/f01500big",
					    0644, 40u * SEG + 123, 0, 0, NULL),
			    0);
			cr_assert_eq(fr_manifest_add(&m, FR_ENT_LINK,
						     "d/f01500c", 0777, 0, 0, 0,
						     "f01500big"),
				     0);
		}
	}
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "z", 0644, SEG, 0, 0, NULL), 0);
	cr_assert_eq(fr_manifest_layout(&m), 0);
	cr_assert_gt(m.n_segments, 42);
	check_extents(&m);

	/* The decoded manifest iterates the same way. */
	{
		struct fr_manifest d = {0};
		size_t len;
		uint8_t *buf;

		cr_assert_eq(fr_manifest_seal(&m), 0);
		buf = encode(&m, &len);
		cr_assert_eq(fr_manifest_decode(&d, buf, len), 0);
		check_extents(&d);
		fr_manifest_fini(&d);
		free(buf);
	}
	fr_manifest_fini(&m);
}

Test(extent, aligned_files_and_out_of_range)
{
	struct fr_manifest m;
	struct fr_extent_iter it;
	struct fr_extent x;

	cr_assert_eq(fr_manifest_init(&m, "p", SEG), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "a", 0644, SEG, 0, 0, NULL), 0);
	cr_assert_eq(
	    fr_manifest_add(&m, FR_ENT_FILE, "b", 0644, 2 * SEG, 0, 0, NULL),
	    0);
	cr_assert_eq(fr_manifest_add(&m, FR_ENT_FILE, "c", 0644, 1, 0, 0, NULL),
		     0);
	cr_assert_eq(fr_manifest_layout(&m), 0);
	check_extents(&m);
	fr_extent_iter_init(&it, &m, 2);
	cr_assert_eq(fr_extent_next(&it, &x), 1);
	cr_assert_eq(x.entry, 1);
	cr_assert_eq(x.file_off, SEG);
	cr_assert_eq(x.len, SEG);
	cr_assert_eq(fr_extent_next(&it, &x), 0);
	fr_extent_iter_init(&it, &m, 3);
	cr_assert_eq(fr_extent_next(&it, &x), 1);
	cr_assert_eq(x.entry, 2);
	cr_assert_eq(x.len, 1);
	cr_assert_eq(fr_extent_next(&it, &x), 0);
	fr_extent_iter_init(&it, &m, 4);
	cr_assert_eq(fr_extent_next(&it, &x), 0);
	fr_manifest_fini(&m);
}
