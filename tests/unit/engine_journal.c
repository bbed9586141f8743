/*
 * engine_journal.c - the receiver's journal: records survive a close and
 * a reopen, a torn or corrupt tail is cut at open (and only the tail),
 * records that do not match the manifest are refused, a journal of
 * another package is restarted, and the record codec reports each kind
 * of damage with its own code.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_internal.h"

#define SEG FR_SEG_MIN
#define NSEG 300 /* more records than one replay chunk (256) */

/* ---- fixtures ----------------------------------------------------------- */

static char tmpdir[256];
static char jpath[512];

static void setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ferry-ut-journal-XXXXXX",
		 t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	snprintf(jpath, sizeof(jpath), "%s/journal", tmpdir);
}

static void teardown(void)
{
	if (tmpdir[0])
		fr_remove_tree(tmpdir);
}

TestSuite(journal, .init = setup, .fini = teardown);

/* Segment i's content: a cheap generator, different for every segment. */
static void gen_segment(uint8_t *buf, size_t len, uint32_t i, uint32_t salt)
{
	uint32_t x = i * 2654435761u + salt + 1;

	for (size_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[k] = (uint8_t)x;
	}
}

/* One file of nseg segments (the last one short), hashes of real data. */
static void make_manifest(struct fr_manifest *m, const char *name,
			  uint32_t nseg, uint32_t salt)
{
	uint8_t *buf = malloc(SEG);
	uint64_t size = (uint64_t)nseg * SEG - 100;

	cr_assert_not_null(buf);
	memset(m, 0, sizeof(*m));
	cr_assert_eq(fr_manifest_init(m, name, SEG), 0);
	cr_assert_eq(fr_manifest_add(m, FR_ENT_FILE, "data", 0644, size,
				     1700000000, 0, NULL),
		     0);
	cr_assert_eq(fr_manifest_layout(m), 0);
	cr_assert_eq(m->n_segments, nseg);
	for (uint32_t i = 0; i < m->n_segments; i++) {
		gen_segment(buf, m->segments[i].length, i, salt);
		fr_hash128(buf, m->segments[i].length, m->segments[i].hash);
	}
	cr_assert_eq(fr_manifest_seal(m), 0);
	free(buf);
}

static off_t file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	return st.st_size;
}

static off_t rec_end(unsigned k)
{
	return (off_t)FR_JOURNAL_HDR + (off_t)k * FR_JREC_LEN;
}

static void jopen(struct fr_journal *j, const struct fr_manifest *m)
{
	int rc = fr_journal_open(j, jpath, m);

	cr_assert_eq(rc, 0, "fr_journal_open: %s", fr_strerror(rc));
	cr_assert_geq(j->fd, 0);
	cr_assert_eq(j->n_segments, m->n_segments);
}

static void append(struct fr_journal *j, const struct fr_manifest *m,
		   const uint32_t *segs, unsigned n)
{
	int rc = fr_journal_append(j, m, segs, n);

	cr_assert_eq(rc, 0, "fr_journal_append: %s", fr_strerror(rc));
}

/* have[] holds exactly the segments in want[0..n), and n_have says so. */
static void expect_have(const struct fr_journal *j, const uint32_t *want,
			unsigned n)
{
	uint8_t *exp = calloc(j->n_segments, 1);
	unsigned count = 0;

	cr_assert_not_null(exp);
	for (unsigned k = 0; k < n; k++)
		if (!exp[want[k]]) {
			exp[want[k]] = 1;
			count++;
		}
	for (uint32_t s = 0; s < j->n_segments; s++)
		cr_assert_eq(j->have[s], exp[s], "segment %u: have %u, expected %u",
			     s, j->have[s], exp[s]);
	cr_assert_eq(j->n_have, count, "n_have %u, expected %u", j->n_have,
		     count);
	free(exp);
}

static void pwrite_at(const char *path, const void *buf, size_t len, off_t off)
{
	int fd = open(path, O_WRONLY);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x5a;
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* ---- record codec ------------------------------------------------------- */

Test(journal, jrec_round_trip_and_layout)
{
	uint8_t rec[FR_JREC_LEN], hash[FR_HASH_LEN], got[FR_HASH_LEN];
	uint32_t idx = 0;

	for (int i = 0; i < FR_HASH_LEN; i++)
		hash[i] = (uint8_t)(0xa0 + i);
	fr_jrec_pack(rec, 0x01020304u, hash);
	cr_assert_eq(fr_get32(rec), FR_JREC_MAGIC);
	cr_assert_eq(fr_get32(rec + 4), 0x01020304u);
	cr_assert_arr_eq(rec + 8, hash, FR_HASH_LEN);
	cr_assert_eq(fr_jrec_unpack(rec, &idx, got), 0);
	cr_assert_eq(idx, 0x01020304u);
	cr_assert_arr_eq(got, hash, FR_HASH_LEN);

	/* another index, another checksum */
	uint8_t rec2[FR_JREC_LEN];
	fr_jrec_pack(rec2, 5, hash);
	cr_assert_eq(fr_jrec_unpack(rec2, &idx, got), 0);
	cr_assert_eq(idx, 5);
	cr_assert_neq(fr_get64(rec + 24), fr_get64(rec2 + 24));
}

Test(journal, jrec_each_corruption_has_its_code)
{
	uint8_t rec[FR_JREC_LEN], hash[FR_HASH_LEN] = {1, 2, 3};
	uint32_t idx = 77;
	uint8_t got[FR_HASH_LEN];

	for (unsigned off = 0; off < FR_JREC_LEN; off++) {
		fr_jrec_pack(rec, 9, hash);
		rec[off] ^= 0x01;
		int want = off < 4 ? FR_E_BAD_MAGIC : FR_E_CHECKSUM;
		int rc = fr_jrec_unpack(rec, &idx, got);
		cr_assert_eq(rc, want, "byte %u flipped: %s, expected %s", off,
			     fr_err_name(rc), fr_err_name(want));
		cr_assert_eq(idx, 77, "index written on failure (byte %u)", off);
	}
	/* all zeros: not a record */
	memset(rec, 0, sizeof(rec));
	cr_assert_eq(fr_jrec_unpack(rec, &idx, got), FR_E_BAD_MAGIC);
}

/* ---- open, append, reopen ------------------------------------------------ */

Test(journal, new_journal_is_empty_with_a_header)
{
	struct fr_manifest m;
	struct fr_journal j;

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	cr_assert_eq(j.n_have, 0);
	cr_assert_eq(j.cut, 0);
	cr_assert_eq(j.end, FR_JOURNAL_HDR);
	for (uint32_t s = 0; s < m.n_segments; s++)
		cr_assert_eq(j.have[s], 0);
	fr_journal_close(&j);
	cr_assert_eq(j.fd, -1);
	cr_assert_null(j.have);
	cr_assert_eq(file_size(jpath), FR_JOURNAL_HDR);

	/* reopening an empty journal keeps it */
	jopen(&j, &m);
	cr_assert_eq(j.n_have, 0);
	cr_assert_eq(j.cut, 0);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), FR_JOURNAL_HDR);
	fr_manifest_fini(&m);
}

Test(journal, appended_segments_survive_reopen)
{
	struct fr_manifest m;
	struct fr_journal j;
	const uint32_t segs[] = {0, 3, 5, 9};

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	append(&j, &m, segs, 4);
	expect_have(&j, segs, 4);
	cr_assert_eq(j.end, (uint64_t)rec_end(4));
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(4));

	jopen(&j, &m);
	expect_have(&j, segs, 4);
	cr_assert_eq(j.cut, 0);
	cr_assert_eq(j.end, (uint64_t)rec_end(4));
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(4));
	fr_manifest_fini(&m);
}

Test(journal, several_batches_across_reopens)
{
	struct fr_manifest m;
	struct fr_journal j;
	uint32_t all[NSEG];
	unsigned n = 0;

	make_manifest(&m, "pkg", NSEG, 0);
	jopen(&j, &m);
	/* one at a time, then a small batch, then more than 64 at once */
	for (uint32_t s = 0; s < 5; s++) {
		append(&j, &m, &s, 1);
		all[n++] = s;
	}
	uint32_t b2[] = {10, 12, 11};
	append(&j, &m, b2, 3);
	memcpy(all + n, b2, sizeof(b2));
	n += 3;
	expect_have(&j, all, n);
	fr_journal_close(&j);

	jopen(&j, &m);
	expect_have(&j, all, n);
	uint32_t big[150];
	for (unsigned k = 0; k < 150; k++)
		big[k] = 299 - k; /* 299 .. 150, backwards */
	append(&j, &m, big, 150);
	memcpy(all + n, big, sizeof(big));
	n += 150;
	expect_have(&j, all, n);
	cr_assert_eq(j.end, (uint64_t)rec_end(n));
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(n));

	/* the rest: now the journal holds every segment, > 256 records */
	jopen(&j, &m);
	expect_have(&j, all, n);
	uint32_t rest[NSEG];
	unsigned nr = 0;
	for (uint32_t s = 0; s < NSEG; s++)
		if (!j.have[s])
			rest[nr++] = s;
	append(&j, &m, rest, nr);
	cr_assert_eq(j.n_have, NSEG);
	fr_journal_close(&j);

	jopen(&j, &m);
	cr_assert_eq(j.n_have, NSEG);
	cr_assert_eq(j.cut, 0);
	cr_assert_eq(file_size(jpath), rec_end(NSEG));
	fr_journal_close(&j);
	fr_manifest_fini(&m);
}

/* ---- torn and corrupt records ------------------------------------------- */

Test(journal, torn_last_record_is_cut)
{
	struct fr_manifest m;
	struct fr_journal j;
	const uint32_t segs[] = {4, 1, 7, 2, 8};

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	append(&j, &m, segs, 5);
	fr_journal_close(&j);
	/* a crash in the middle of writing the 5th record */
	cr_assert_eq(truncate(jpath, rec_end(4) + 13), 0);

	jopen(&j, &m);
	cr_assert_gt(j.cut, 0);
	cr_assert_eq(j.cut, 1);
	expect_have(&j, segs, 4);
	cr_assert_eq(j.end, (uint64_t)rec_end(4));
	cr_assert_eq(file_size(jpath), rec_end(4), "torn tail not cut");

	/* the journal goes on where the good records end */
	append(&j, &m, &segs[4], 1);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(5));
	jopen(&j, &m);
	cr_assert_eq(j.cut, 0);
	expect_have(&j, segs, 5);
	fr_journal_close(&j);
	fr_manifest_fini(&m);
}

Test(journal, garbage_tail_is_cut)
{
	struct fr_manifest m;
	struct fr_journal j;
	const uint32_t segs[] = {0, 1, 2};
	uint8_t junk[17];

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	append(&j, &m, segs, 3);
	fr_journal_close(&j);
	for (unsigned i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(0xc3 ^ i * 37);
	pwrite_at(jpath, junk, sizeof(junk), rec_end(3));
	cr_assert_eq(file_size(jpath), rec_end(3) + 17);

	jopen(&j, &m);
	cr_assert_eq(j.cut, 1);
	expect_have(&j, segs, 3);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(3));
	fr_manifest_fini(&m);
}

Test(journal, torn_tail_after_many_records_is_cut)
{
	/* the tear lies in the second replay chunk */
	struct fr_manifest m;
	struct fr_journal j;
	uint32_t segs[NSEG];

	make_manifest(&m, "pkg", NSEG, 1);
	for (uint32_t s = 0; s < NSEG; s++)
		segs[s] = s;
	jopen(&j, &m);
	append(&j, &m, segs, 270);
	fr_journal_close(&j);
	cr_assert_eq(truncate(jpath, rec_end(269) + 31), 0);

	jopen(&j, &m);
	cr_assert_eq(j.cut, 1);
	expect_have(&j, segs, 269);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(269));
	fr_manifest_fini(&m);
}

Test(journal, corrupt_record_in_the_middle_stops_replay)
{
	/* whichever field is damaged: magic, index, hash, checksum */
	static const unsigned field_off[] = {1, 5, 12, 23, 30};
	const uint32_t segs[] = {6, 0, 9, 3, 5, 1};

	for (unsigned f = 0; f < FR_ARRAY_SIZE(field_off); f++) {
		struct fr_manifest m;
		struct fr_journal j;

		unlink(jpath);
		make_manifest(&m, "pkg", 10, 0);
		jopen(&j, &m);
		append(&j, &m, segs, 6);
		fr_journal_close(&j);
		flip_byte(jpath, rec_end(2) + (off_t)field_off[f]);

		jopen(&j, &m);
		/* records 0 and 1 stand; 2 is bad; 3..5 are not trusted */
		expect_have(&j, segs, 2);
		cr_assert_eq(j.cut, 4, "byte %u of record 2: cut %u, expected 4",
			     field_off[f], j.cut);
		cr_assert_eq(j.end, (uint64_t)rec_end(2));
		fr_journal_close(&j);
		cr_assert_eq(file_size(jpath), rec_end(2));
		fr_manifest_fini(&m);
	}
}

Test(journal, record_with_wrong_hash_is_not_accepted)
{
	struct fr_manifest m;
	struct fr_journal j;
	const uint32_t segs[] = {0, 1};
	uint8_t rec[FR_JREC_LEN], bad[FR_HASH_LEN];

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	append(&j, &m, segs, 2);
	fr_journal_close(&j);
	/* an intact record whose hash is not segment 2's */
	memcpy(bad, m.segments[2].hash, FR_HASH_LEN);
	bad[7] ^= 0x80;
	fr_jrec_pack(rec, 2, bad);
	pwrite_at(jpath, rec, sizeof(rec), rec_end(2));
	/* and a good record for segment 3 after it */
	fr_jrec_pack(rec, 3, m.segments[3].hash);
	pwrite_at(jpath, rec, sizeof(rec), rec_end(3));

	/* not held, but not a torn tail either: the records after it (a
	 * segment sent again since, another one) stay */
	jopen(&j, &m);
	cr_assert_eq(j.have[2], 0, "record with a wrong hash accepted");
	cr_assert_eq(j.have[3], 1, "record after a refused one lost");
	cr_assert_eq(j.n_have, 3);
	cr_assert_eq(j.cut, 0);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(4));
	fr_manifest_fini(&m);
}

Test(journal, record_with_index_out_of_range_is_not_accepted)
{
	struct fr_manifest m;
	struct fr_journal j;
	const uint32_t segs[] = {4};
	uint8_t rec[FR_JREC_LEN];

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	append(&j, &m, segs, 1);
	fr_journal_close(&j);
	fr_jrec_pack(rec, 10, m.segments[9].hash);
	pwrite_at(jpath, rec, sizeof(rec), rec_end(1));

	jopen(&j, &m);
	expect_have(&j, segs, 1);
	cr_assert_eq(j.cut, 1);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(1));
	fr_manifest_fini(&m);
}

Test(journal, journal_of_another_package_is_restarted)
{
	struct fr_manifest a, b;
	struct fr_journal j;
	const uint32_t segs[] = {0, 1, 2, 3};

	make_manifest(&a, "pkg", 10, 0);
	make_manifest(&b, "pkg", 9, 99); /* same name, another listing */
	cr_assert(memcmp(a.lid, b.lid, FR_HASH_LEN) != 0);

	jopen(&j, &a);
	append(&j, &a, segs, 4);
	fr_journal_close(&j);

	jopen(&j, &b);
	cr_assert_eq(j.n_have, 0);
	expect_have(&j, segs, 0);
	cr_assert_eq(j.end, FR_JOURNAL_HDR);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), FR_JOURNAL_HDR);

	/* it is b's journal now: b's records are kept, a's are gone */
	jopen(&j, &b);
	append(&j, &b, segs, 2);
	fr_journal_close(&j);
	jopen(&j, &b);
	expect_have(&j, segs, 2);
	cr_assert_eq(j.cut, 0);
	fr_journal_close(&j);
	jopen(&j, &a);
	cr_assert_eq(j.n_have, 0);
	fr_journal_close(&j);
	fr_manifest_fini(&a);
	fr_manifest_fini(&b);
}

Test(journal, damaged_or_short_header_restarts)
{
	struct fr_manifest m;
	struct fr_journal j;
	const uint32_t segs[] = {0, 1, 2};

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	append(&j, &m, segs, 3);
	fr_journal_close(&j);
	flip_byte(jpath, 10); /* inside the package id */
	jopen(&j, &m);
	cr_assert_eq(j.n_have, 0);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), FR_JOURNAL_HDR);

	/* a header torn before it was whole */
	cr_assert_eq(truncate(jpath, 11), 0);
	jopen(&j, &m);
	cr_assert_eq(j.n_have, 0);
	append(&j, &m, segs, 3);
	fr_journal_close(&j);
	jopen(&j, &m);
	expect_have(&j, segs, 3);
	fr_journal_close(&j);
	fr_manifest_fini(&m);
}

/* ---- append edge cases -------------------------------------------------- */

Test(journal, appending_a_present_segment_is_harmless)
{
	struct fr_manifest m;
	struct fr_journal j;
	const uint32_t segs[] = {3, 4};

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	append(&j, &m, segs, 2);
	append(&j, &m, segs, 1);      /* 3 again */
	append(&j, &m, segs, 2);      /* both again */
	expect_have(&j, segs, 2);
	cr_assert_eq(j.end, (uint64_t)rec_end(2), "duplicate records written");
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(2));

	/* the same segment twice in one call counts once */
	uint32_t twice[] = {7, 7};
	jopen(&j, &m);
	append(&j, &m, twice, 2);
	cr_assert_eq(j.n_have, 3);
	fr_journal_close(&j);
	jopen(&j, &m);
	cr_assert_eq(j.n_have, 3);
	cr_assert_eq(j.have[7], 1);
	cr_assert_eq(j.cut, 0);
	fr_journal_close(&j);
	fr_manifest_fini(&m);
}

Test(journal, index_out_of_range_is_ignored)
{
	struct fr_manifest m;
	struct fr_journal j;

	make_manifest(&m, "pkg", 10, 0);
	jopen(&j, &m);
	uint32_t bad[] = {10, 11, 1000, UINT32_MAX};
	append(&j, &m, bad, 4);
	cr_assert_eq(j.n_have, 0);
	cr_assert_eq(j.end, FR_JOURNAL_HDR);

	uint32_t mixed[] = {1, 10, 2, UINT32_MAX};
	append(&j, &m, mixed, 4);
	const uint32_t good[] = {1, 2};
	expect_have(&j, good, 2);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(2));
	jopen(&j, &m);
	expect_have(&j, good, 2);
	cr_assert_eq(j.cut, 0);
	fr_journal_close(&j);

	/* an empty append is fine too */
	jopen(&j, &m);
	cr_assert_eq(fr_journal_append(&j, &m, NULL, 0), 0);
	fr_journal_close(&j);
	cr_assert_eq(file_size(jpath), rec_end(2));
	fr_manifest_fini(&m);
}

Test(journal, open_fails_cleanly_on_a_bad_path)
{
	struct fr_manifest m;
	struct fr_journal j;
	char bad[600];

	make_manifest(&m, "pkg", 4, 0);
	snprintf(bad, sizeof(bad), "%s/no/such/dir/journal", tmpdir);
	int rc = fr_journal_open(&j, bad, &m);
	cr_assert_eq(rc, -ENOENT, "got %s", fr_strerror(rc));
	fr_manifest_fini(&m);
}

/* A journal that cannot be started (its file cannot be truncated: a
 * character device) fails with that error, not with whatever was left in
 * an unset variable (found by clang's -Wsometimes-uninitialized in the
 * fuzz build). */
Test(journal, open_reports_a_failed_restart)
{
	struct fr_manifest m;
	struct fr_journal j;

	make_manifest(&m, "pkg", 4, 0);
	int rc = fr_journal_open(&j, "/dev/null", &m);
	cr_assert_eq(rc, -EINVAL, "got %d %s", rc, fr_strerror(rc));
	fr_manifest_fini(&m);
}

Test(journal, close_releases_descriptor_zero)
{
	/* a daemon may run with stdin closed: the journal then gets fd 0 */
	struct fr_manifest m;
	struct fr_journal j;

	make_manifest(&m, "pkg", 4, 0);
	close(0);
	jopen(&j, &m);
	cr_assert_eq(j.fd, 0, "expected the lowest free descriptor");
	fr_journal_close(&j);
	int still_open = fcntl(0, F_GETFD) != -1;
	fr_manifest_fini(&m);
	cr_assert_not(still_open, "fr_journal_close left descriptor 0 open");
}

Test(journal, rewrite_holds_exactly_the_given_segments)
{
	struct fr_manifest m;
	struct fr_journal j;
	uint8_t have[NSEG] = {0};
	uint32_t all[NSEG];

	make_manifest(&m, "pkg", NSEG, 1);
	/* an existing journal with every segment */
	cr_assert_eq(fr_journal_open(&j, jpath, &m), 0);
	for (uint32_t i = 0; i < NSEG; i++)
		all[i] = i;
	cr_assert_eq(fr_journal_append(&j, &m, all, NSEG), 0);
	fr_journal_close(&j);

	for (uint32_t i = 0; i < NSEG; i++)
		have[i] = i % 3 != 1;
	cr_assert_eq(fr_journal_rewrite(jpath, &m, have), 0);
	cr_assert_eq(fr_journal_open(&j, jpath, &m), 0);
	cr_assert_eq(j.n_have, NSEG - NSEG / 3);
	for (uint32_t i = 0; i < NSEG; i++)
		cr_assert_eq(j.have[i], have[i], "segment %u", i);
	cr_assert_eq(j.cut, 0);
	/* and it takes appends as before */
	uint32_t one = 1;
	cr_assert_eq(fr_journal_append(&j, &m, &one, 1), 0);
	fr_journal_close(&j);
	cr_assert_eq(fr_journal_open(&j, jpath, &m), 0);
	cr_assert(j.have[1]);
	fr_journal_close(&j);
	fr_manifest_fini(&m);
}
