/*
 * engine_known.c - a sender's hashes, made as it reads (known.c): the
 * manifest stays open until every segment is hashed; what is hashed is
 * kept and found again by the next attempt (a torn record is not); a
 * complete manifest is the one a full hashing pass makes; a source that
 * changed is refused at the end, naming the file. Also the HELD message
 * (net.c) and the open manifest's codec (listing id).
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

static char tmpdir[256], src[400], tdir[400];

static void write_file(const char *rel, size_t len, uint8_t seed)
{
	char p[800];
	uint8_t *b = malloc(len ? len : 1);

	cr_assert_not_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 7 + (i >> 9));
	snprintf(p, sizeof(p), "%s/%s", src, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
	cr_assert_eq(write(fd, b, len), (ssize_t)len);
	close(fd);
	free(b);
}

static void setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ferry-ut-known-XXXXXX",
		 t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	snprintf(src, sizeof(src), "%s/src", tmpdir);
	snprintf(tdir, sizeof(tdir), "%s/transfer", tmpdir);
	cr_assert_eq(mkdir(src, 0755), 0);
	cr_assert_eq(mkdir(tdir, 0755), 0);
	char d[500];
	snprintf(d, sizeof(d), "%s/d", src);
	cr_assert_eq(mkdir(d, 0755), 0);
	write_file("a", 3 * SEG + 100, 1);
	write_file("d/b", SEG / 2, 2);
	write_file("d/c", 2 * SEG, 3);
}

static void teardown(void)
{
	if (tmpdir[0])
		fr_remove_tree(tmpdir);
}

TestSuite(known, .init = setup, .fini = teardown);

static void list(struct fr_manifest *m)
{
	bool single;

	cr_assert_eq(fr_scan_list(src, "pkg", SEG, m, &single, NULL), 0);
	m->open = true;
	cr_assert_eq(fr_manifest_seal(m), 0);
}

/* The hash of segment s, read as the sender's workers would. */
static void seg_hash(const struct fr_manifest *m, uint32_t s,
		     uint8_t h[FR_HASH_LEN])
{
	struct fr_seg_reader r = {0};
	char msg[256];

	cr_assert_eq(fr_seg_reader_init(&r, m->seg_size), 0);
	cr_assert_eq(fr_seg_read(&r, src, false, m, s, msg, sizeof(msg)), 0,
		     "%s", msg);
	fr_hash128(r.buf, m->segments[s].length, h);
	fr_seg_reader_fini(&r);
}

static bool file_open_flag(const char *rel)
{
	char p[600];
	uint8_t h[8];
	snprintf(p, sizeof(p), "%s/%s", tdir, rel);
	int fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0, "%s", p);
	cr_assert_eq(read(fd, h, 8), 8);
	close(fd);
	return fr_get16(h + 6) & FR_MF_OPEN;
}

Test(known, hashes_are_kept_and_found_again)
{
	struct fr_manifest m = {0}, m2 = {0};
	struct fr_known k, k2;
	uint8_t h[FR_HASH_LEN];

	list(&m);
	cr_assert_gt(m.n_segments, 4);
	cr_assert_eq(fr_known_open(&k, &m, tdir, NULL), 0);
	cr_assert_eq(atomic_load(&k.n), 0);
	cr_assert(m.open);
	cr_assert(file_open_flag("manifest"), "the manifest written is open");
	for (uint32_t s = 0; s < 3; s++) {
		seg_hash(&m, s, h);
		cr_assert_eq(fr_known_add(&k, s, h), 0);
		cr_assert(fr_known_has(&k, s));
	}
	cr_assert_not(fr_known_has(&k, 3));
	fr_known_close(&k);

	/* a record torn by a crash: segment 2's check no longer holds */
	char p[600];
	snprintf(p, sizeof(p), "%s/hashes", tdir);
	int fd = open(p, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t x = 0x5a;
	cr_assert_eq(pwrite(fd, &x, 1, 2 * 24 + 9), 1);
	close(fd);

	list(&m2);
	cr_assert_eq(memcmp(m.lid, m2.lid, FR_HASH_LEN), 0);
	cr_assert_eq(fr_known_open(&k2, &m2, tdir, NULL), 0);
	cr_assert_eq(atomic_load(&k2.n), 2, "the intact records are found");
	cr_assert(fr_known_has(&k2, 0) && fr_known_has(&k2, 1));
	cr_assert_not(fr_known_has(&k2, 2), "a torn record is not believed");
	cr_assert_eq(memcmp(m2.segments[1].hash, m.segments[1].hash,
			    FR_HASH_LEN), 0);
	fr_known_close(&k2);
	fr_manifest_fini(&m);
	fr_manifest_fini(&m2);
}

Test(known, settled_manifest_is_the_full_pass_one)
{
	struct fr_manifest m = {0}, full = {0};
	struct fr_known k;
	uint8_t h[FR_HASH_LEN], *mf;
	size_t len;
	char err[512] = "";

	list(&m);
	cr_assert_eq(fr_known_open(&k, &m, tdir, NULL), 0);
	/* an offer before every hash is known is open, with the known ones */
	seg_hash(&m, 1, h);
	fr_known_add(&k, 1, h);
	cr_assert_eq(fr_known_offer(&k, &mf, &len), 0);
	struct fr_manifest o = {0};
	cr_assert_eq(fr_manifest_decode(&o, mf, len), 0);
	free(mf);
	cr_assert(o.open);
	cr_assert(fr_hash_unknown(o.segments[0].hash));
	cr_assert_eq(memcmp(o.segments[1].hash, h, FR_HASH_LEN), 0);
	cr_assert_eq(memcmp(o.lid, m.lid, FR_HASH_LEN), 0);
	fr_manifest_fini(&o);
	/* settling before every hash is known (another arrival, a parcel,
	 * brought the rest to the receiver) reads and hashes the rest */
	seg_hash(&m, 2, h);
	fr_known_add(&k, 2, h);
	cr_assert_eq(fr_known_settle(&k, src, false, err, sizeof(err)), 0, "%s", err);
	cr_assert(fr_known_all(&k));
	for (uint32_t s = 0; s < m.n_segments; s++) {
		seg_hash(&m, s, h);
		cr_assert_eq(memcmp(m.segments[s].hash, h, FR_HASH_LEN), 0,
			     "segment %u's hash", s);
	}
	cr_assert_not(m.open);
	cr_assert_not(file_open_flag("manifest"));
	char p[600];
	snprintf(p, sizeof(p), "%s/hashes", tdir);
	cr_assert_neq(access(p, F_OK), 0, "the kept hashes are gone");
	/* the same as the manifest the hashing pass makes */
	struct fr_scan_hash *fh;
	bool single;
	cr_assert_eq(fr_scan_list(src, "pkg", SEG, &full, &single, NULL), 0);
	cr_assert_eq(fr_hash_start(&fh, src, single, &full, NULL), 0);
	cr_assert_eq(fr_hash_finish(fh), 0);
	cr_assert_eq(memcmp(full.id, m.id, FR_HASH_LEN), 0,
		     "the package id differs from a full pass's");
	cr_assert_eq(memcmp(full.lid, m.lid, FR_HASH_LEN), 0);
	fr_known_close(&k);

	/* a later transfer of the same listing starts complete */
	struct fr_manifest m3 = {0};
	list(&m3);
	cr_assert_eq(fr_known_open(&k, &m3, tdir, &full), 0);
	cr_assert(fr_known_all(&k));
	cr_assert_not(m3.open);
	cr_assert_eq(memcmp(m3.id, full.id, FR_HASH_LEN), 0);
	fr_known_close(&k);
	fr_manifest_fini(&m3);
	fr_manifest_fini(&m);
	fr_manifest_fini(&full);
}

Test(known, a_changed_source_is_refused_by_name)
{
	struct fr_manifest m = {0};
	struct fr_known k;
	uint8_t h[FR_HASH_LEN];
	char err[512] = "";

	list(&m);
	cr_assert_eq(fr_known_open(&k, &m, tdir, NULL), 0);
	for (uint32_t s = 0; s < m.n_segments; s++) {
		seg_hash(&m, s, h);
		fr_known_add(&k, s, h);
	}
	/* d/b changes after it was read: the same size, a new time */
	char p[600];
	snprintf(p, sizeof(p), "%s/d/b", src);
	struct timespec t[2] = {{0, UTIME_OMIT}, {1234567890, 0}};
	cr_assert_eq(utimensat(AT_FDCWD, p, t, 0), 0);
	cr_assert_eq(fr_known_settle(&k, src, false, err, sizeof(err)), FR_E_CHANGED);
	cr_assert(strstr(err, "d/b"), "the changed file is named: %s", err);
	cr_assert(m.open, "nothing was settled");
	cr_assert(file_open_flag("manifest"));
	fr_known_close(&k);
	fr_manifest_fini(&m);
}

Test(known, listing_id_is_the_same_open_or_complete)
{
	struct fr_manifest m = {0}, d = {0};
	uint8_t *mf;
	size_t len;

	list(&m);
	uint8_t lid[FR_HASH_LEN], oid[FR_HASH_LEN];
	memcpy(lid, m.lid, FR_HASH_LEN);
	memcpy(oid, m.id, FR_HASH_LEN);
	for (uint32_t s = 0; s < m.n_segments; s++)
		seg_hash(&m, s, m.segments[s].hash);
	m.open = false;
	cr_assert_eq(fr_manifest_seal(&m), 0);
	cr_assert_eq(memcmp(lid, m.lid, FR_HASH_LEN), 0);
	cr_assert_neq(memcmp(oid, m.id, FR_HASH_LEN), 0);
	len = fr_manifest_encoded_size(&m);
	mf = malloc(len);
	fr_manifest_encode(&m, mf, len);
	cr_assert_eq(fr_manifest_decode(&d, mf, len), 0);
	cr_assert_not(d.open);
	cr_assert_eq(memcmp(d.lid, lid, FR_HASH_LEN), 0);
	cr_assert_eq(memcmp(d.id, m.id, FR_HASH_LEN), 0);
	fr_manifest_fini(&d);
	free(mf);
	/* another listing (a file's time): another listing id */
	char p[600];
	snprintf(p, sizeof(p), "%s/a", src);
	struct timespec t[2] = {{0, UTIME_OMIT}, {1234567890, 0}};
	cr_assert_eq(utimensat(AT_FDCWD, p, t, 0), 0);
	struct fr_manifest o = {0};
	list(&o);
	cr_assert_neq(memcmp(o.lid, lid, FR_HASH_LEN), 0);
	fr_manifest_fini(&o);
	fr_manifest_fini(&m);
}

Test(known, held_message_is_checked)
{
	uint8_t body[4 + 3 * FR_HELD_REC], held[5 * FR_UNCONF_REC];
	uint32_t n = 5;

	memset(body, 0, sizeof(body));
	fr_put32(body, 2);
	fr_put32(body + 4, 1);
	memset(body + 8, 0xa1, FR_HASH_LEN);
	fr_put32(body + 4 + FR_HELD_REC, 4);
	memset(body + 8 + FR_HELD_REC, 0xb2, FR_HASH_LEN);
	uint32_t len = 4 + 2 * FR_HELD_REC;

	memset(held, 0, sizeof(held));
	cr_assert_eq(fr_held_parse(FR_MSG_HELD, body, len, n, held), 2);
	cr_assert_eq(held[1 * FR_UNCONF_REC], 1);
	cr_assert_eq(held[1 * FR_UNCONF_REC + 1], 0xa1);
	cr_assert_eq(held[4 * FR_UNCONF_REC], 1);
	cr_assert_eq(held[0], 0);
	/* another type, a length in between, a count past the segments */
	memset(held, 0, sizeof(held));
	cr_assert_eq(fr_held_parse(FR_MSG_HAVE, body, len, n, held),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_held_parse(FR_MSG_HELD, body, len - 1, n, held),
		     FR_E_PROTOCOL);
	fr_put32(body, 6);
	cr_assert_eq(fr_held_parse(FR_MSG_HELD, body, len, n, held),
		     FR_E_PROTOCOL);
	/* an index beyond the package, or twice, or a zero hash */
	fr_put32(body, 2);
	fr_put32(body + 4 + FR_HELD_REC, 5);
	memset(held, 0, sizeof(held));
	cr_assert_eq(fr_held_parse(FR_MSG_HELD, body, len, n, held),
		     FR_E_PROTOCOL);
	fr_put32(body + 4 + FR_HELD_REC, 1);
	memset(held, 0, sizeof(held));
	cr_assert_eq(fr_held_parse(FR_MSG_HELD, body, len, n, held),
		     FR_E_PROTOCOL);
	fr_put32(body + 4 + FR_HELD_REC, 3);
	memset(body + 8 + FR_HELD_REC, 0, FR_HASH_LEN);
	memset(held, 0, sizeof(held));
	cr_assert_eq(fr_held_parse(FR_MSG_HELD, body, len, n, held),
		     FR_E_PROTOCOL);
	/* none */
	fr_put32(body, 0);
	cr_assert_eq(fr_held_parse(FR_MSG_HELD, body, 4, n, held), 0);
}
