/*
 * engine_produce.c - the frame producer (pipe/produce.c): frames come
 * back in the order pushed, each decodes to its segment's bytes at the
 * level asked for (raw at 0), the output's finish runs once per frame on
 * a worker with the slot's index, a segment that no longer matches the
 * hash it must have is FR_E_CHANGED, and its slots are reused with no
 * frame lost when more segments are pushed than there are slots. Reads
 * are asynchronous: a file cut short is the frame's result, naming it;
 * a file gone fails the push at once, and the frames before it still come.
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

static char tmpdir[256], src[400];
static struct fr_manifest m;
static bool single;
static uint8_t *stream; /* the package's bytes in order */

static void write_file(const char *rel, size_t len, uint8_t seed, size_t at)
{
	char p[800];

	for (size_t i = 0; i < len; i++) /* compressible, not constant */
		stream[at + i] = (uint8_t)(seed + (i / 3) % 17 + (i >> 12));
	snprintf(p, sizeof(p), "%s/%s", src, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
	cr_assert_eq(write(fd, stream + at, len), (ssize_t)len);
	close(fd);
}

static void setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ferry-ut-produce-XXXXXX",
		 t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	snprintf(src, sizeof(src), "%s/src", tmpdir);
	cr_assert_eq(mkdir(src, 0755), 0);
	stream = malloc(6 * SEG);
	cr_assert_not_null(stream);
	/* "a" then "b" in path order: the stream is a's bytes, then b's */
	write_file("a", 3 * SEG + 100, 1, 0);
	write_file("b", 2 * SEG + 5, 9, 3 * SEG + 100);
	cr_assert_eq(fr_workq_start(2), 0);
	cr_assert_eq(fr_scan_list(src, "pkg", SEG, &m, &single, NULL), 0);
	cr_assert_eq(m.n_segments, 6);
}

static void teardown(void)
{
	char cmd[400];

	fr_manifest_fini(&m);
	free(stream);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

static atomic_uint finished;
static atomic_uint bad_index;

static void count_finish(struct fr_prod_slot *s, int worker, void *arg)
{
	(void)worker;
	if (s->index >= *(unsigned *)arg || s->payload == NULL)
		atomic_fetch_add(&bad_index, 1);
	atomic_fetch_add(&finished, 1);
}

/* The frame's payload, decoded, is the segment's bytes. */
static void check_frame(const struct fr_prod_slot *s)
{
	const struct fr_segment *sg = &m.segments[s->seg];
	struct fr_dctx dc;
	struct fr_frame f;
	const uint8_t *raw;
	uint8_t *dst = malloc(sg->length);

	cr_assert_eq(s->result, 0, "segment %u: %d", s->seg, s->result);
	cr_assert_eq(fr_frame_unpack(&f, s->fhdr), 0);
	cr_assert_eq(f.index, s->seg);
	cr_assert_eq(f.stored_len, s->stored);
	cr_assert_eq(fr_dctx_init(&dc), 0);
	cr_assert_eq(fr_frame_decode(&dc, &f, s->payload, dst, NULL, &raw), 0);
	cr_assert(!memcmp(raw, stream + sg->offset, sg->length),
		  "segment %u's bytes", s->seg);
	fr_dctx_fini(&dc);
	free(dst);
}

Test(produce, in_order_and_each_decodes, .init = setup, .fini = teardown)
{
	struct fr_producer p;
	unsigned depth = 3;
	char err[256];
	uint32_t next = 0, got = 0;

	atomic_store(&finished, 0);
	cr_assert_eq(fr_producer_init(&p, &m, src, single, m.lid, depth,
				      count_finish, &depth),
		     0);
	while (got < m.n_segments) {
		for (; next < m.n_segments && fr_producer_room(&p); next++)
			cr_assert_eq(fr_producer_push(&p, next, next % 2 ? 3 : 0,
						      NULL, err, sizeof(err)),
				     0, "%s", err);
		struct fr_prod_slot *s = fr_producer_take(&p);
		cr_assert_not_null(s);
		cr_assert_eq(s->seg, got, "frames come back in order");
		check_frame(s);
		if (s->seg % 2) /* level 3: compressible, so compressed */
			cr_assert(s->f.flags & FR_FRAME_ZSTD);
		else
			cr_assert_eq(s->payload, s->raw, "raw: no copy");
		got++;
	}
	cr_assert_null(fr_producer_take(&p));
	cr_assert_eq(fr_producer_pending(&p), 0);
	cr_assert_eq(atomic_load(&finished), m.n_segments);
	cr_assert_eq(atomic_load(&bad_index), 0);
	cr_assert_eq(p.read_bytes, m.total_size);
	fr_producer_fini(&p);
}

Test(produce, a_hash_that_differs_is_changed, .init = setup,
     .fini = teardown)
{
	struct fr_producer p;
	uint8_t h[FR_HASH_LEN], wrong[FR_HASH_LEN];
	char err[256];

	fr_hash128(stream + m.segments[4].offset, m.segments[4].length, h);
	memcpy(wrong, h, sizeof(wrong));
	wrong[0] ^= 1;
	cr_assert_eq(fr_producer_init(&p, &m, src, single, m.lid, 2, NULL,
				      NULL),
		     0);
	cr_assert_eq(fr_producer_push(&p, 4, 1, h, err, sizeof(err)), 0);
	cr_assert_eq(fr_producer_push(&p, 4, 1, wrong, err, sizeof(err)), 0);
	cr_assert_eq(fr_producer_room(&p), 0);
	cr_assert_eq(fr_producer_push(&p, 5, 1, NULL, err, sizeof(err)),
		     -EINVAL, "no slot free");
	struct fr_prod_slot *s = fr_producer_take(&p);
	cr_assert_eq(s->result, 0);
	cr_assert(!memcmp(s->f.hash, h, FR_HASH_LEN));
	s = fr_producer_take(&p);
	cr_assert_eq(s->result, FR_E_CHANGED);
	fr_producer_fini(&p);
}

Test(produce, a_read_error_names_the_file, .init = setup,
     .fini = teardown)
{
	struct fr_producer p;
	char err[256] = "", path[500];

	snprintf(path, sizeof(path), "%s/b", src);
	cr_assert_eq(truncate(path, 10), 0);
	cr_assert_eq(fr_producer_init(&p, &m, src, single, m.lid, 2, NULL,
				      NULL),
		     0);
	/* the reads go out; the short one is the frame's result */
	cr_assert_eq(fr_producer_push(&p, 5, 1, NULL, err, sizeof(err)), 0);
	struct fr_prod_slot *s = fr_producer_take(&p);
	cr_assert_not_null(s);
	cr_assert_eq(s->result, FR_E_CHANGED, "%d", s->result);
	cr_assert_not_null(strstr(s->err, "'b'"), "%s", s->err);
	cr_assert_eq(fr_producer_pending(&p), 0);
	fr_producer_fini(&p);
}

Test(produce, a_file_gone_fails_the_push, .init = setup, .fini = teardown)
{
	struct fr_producer p;
	char err[256] = "", path[500];

	snprintf(path, sizeof(path), "%s/b", src);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(fr_producer_init(&p, &m, src, single, m.lid, 2, NULL,
				      NULL),
		     0);
	/* segment 0 (all of a) still goes */
	cr_assert_eq(fr_producer_push(&p, 0, 1, NULL, err, sizeof(err)), 0);
	cr_assert_eq(fr_producer_push(&p, 5, 1, NULL, err, sizeof(err)),
		     -ENOENT);
	cr_assert_not_null(strstr(err, "'b'"), "%s", err);
	cr_assert_eq(fr_producer_pending(&p), 1);
	struct fr_prod_slot *s = fr_producer_take(&p);
	cr_assert_eq(s->result, 0);
	cr_assert_eq(s->seg, 0);
	fr_producer_fini(&p);
}

/* Segments of hundreds of small files, more reads than may be out at
 * once: a producer let go with frames not taken, some reads waiting for
 * room, ends (it used to wait for those reads for ever). */
Test(produce, fini_with_reads_waiting, .timeout = 20)
{
	const char *t = getenv("TMPDIR");
	char dir[300], p[400], cmd[400];
	struct fr_manifest sm;
	struct fr_producer pr;
	char err[256];
	bool one;

	snprintf(dir, sizeof(dir), "%s/ferry-ut-produce-small-XXXXXX",
		 t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	for (int i = 0; i < 2000; i++) {
		snprintf(p, sizeof(p), "%s/f%04d", dir, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, p, 100), 100);
		close(fd);
	}
	cr_assert_eq(fr_workq_start(2), 0);
	cr_assert_eq(fr_scan_list(dir, "small", 1u << 16, &sm, &one, NULL), 0);
	cr_assert_geq(sm.n_segments, 3);
	cr_assert_eq(fr_producer_init(&pr, &sm, dir, one, sm.lid, 3, NULL,
				      NULL), 0);
	for (uint32_t k = 0; k < 3; k++)
		cr_assert_eq(fr_producer_push(&pr, k, 1, NULL, err,
					      sizeof(err)), 0, "%s", err);
	cr_assert_gt(pr.src.inflight + 0u, 0u);
	fr_producer_fini(&pr); /* nothing taken */
	fr_manifest_fini(&sm);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}
