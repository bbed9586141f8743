/*
 * engine_aread.c - the asynchronous segment reader (source/aread.c),
 * driven through a real ring as an output's I/O thread drives it: every
 * segment of a tree of a large file (its middle read O_DIRECT once its
 * pages are dropped) and 1,500 small files (more reads than may be in
 * flight at once) comes back byte for byte, several segments read at
 * once, never more than FR_AREAD_MAX reads in flight; a file cut shorter
 * after the listing is FR_E_CHANGED naming that file, and no fd is left
 * open after fini.
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

#define SEG (1u << 20)
#define SMALL 1500
#define SMALL_LEN 300
#define BIG (3 * SEG + 12345)

static char tmpdir[256], src[400];
static struct fr_manifest m;
static bool single;
static uint8_t *stream; /* the package's bytes in order */
static size_t total;

static void write_file(const char *rel, size_t len, uint8_t seed, size_t at)
{
	char p[800];

	for (size_t i = 0; i < len; i++)
		stream[at + i] = (uint8_t)(seed + i * 7 + (i >> 9));
	snprintf(p, sizeof(p), "%s/%s", src, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
	cr_assert_eq(write(fd, stream + at, len), (ssize_t)len);
	/* out of the page cache, so that its middle goes O_DIRECT */
	(void)fdatasync(fd);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");

	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void setup(void)
{
	const char *t = getenv("TMPDIR");
	char rel[480];

	snprintf(tmpdir, sizeof(tmpdir), "%s/ferry-ut-aread-XXXXXX",
		 t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	snprintf(src, sizeof(src), "%s/src", tmpdir);
	cr_assert_eq(mkdir(src, 0755), 0);
	total = BIG + (size_t)SMALL * SMALL_LEN;
	stream = malloc(total);
	cr_assert_not_null(stream);
	/* "a" sorts first: the stream is a's bytes, then s/0000 ... */
	write_file("a", BIG, 1, 0);
	snprintf(rel, sizeof(rel), "%s/s", src);
	cr_assert_eq(mkdir(rel, 0755), 0);
	for (unsigned i = 0; i < SMALL; i++) {
		snprintf(rel, sizeof(rel), "s/%04u", i);
		write_file(rel, SMALL_LEN, (uint8_t)i, BIG + (size_t)i * SMALL_LEN);
	}
	cr_assert_eq(fr_scan_list(src, "pkg", SEG, &m, &single, NULL), 0);
	cr_assert_eq(m.n_segments, (total + SEG - 1) / SEG);
}

static void teardown(void)
{
	char cmd[400];

	fr_manifest_fini(&m);
	free(stream);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

#define DEPTH 3
#define HEAD 4096u

/*
 * Reads every segment, DEPTH at once, as an I/O thread would: start,
 * hand back each completion, go on with the segments waiting for room.
 * Returns the first segment's error (its path in errpath), or 0 with
 * every segment checked against the stream.
 */
static int read_all(struct fr_aread *r, char *errpath, size_t cap)
{
	struct fr_pool *pool;
	struct fr_ring *ring;
	struct fr_aread_seg segs[DEPTH] = {0};
	bool busy[DEPTH] = {0};
	int buf[DEPTH];
	uint32_t next = 0, checked = 0;
	int err = 0;

	cr_assert_eq(fr_pool_new(&pool, DEPTH, HEAD + FR_DIO_ALIGN + SEG), 0);
	cr_assert_eq(fr_ring_new(&ring, 256), 0);
	int rc = fr_ring_attach_pool(ring, pool);
	cr_assert(rc == 0 || rc == 1);
	cr_assert_eq(fr_aread_init(r, ring, &m, src, single), 0);
	for (int i = 0; i < DEPTH; i++)
		cr_assert_geq(buf[i] = fr_pool_get(pool), 0);
	while (checked < m.n_segments && !err) {
		for (int i = 0; i < DEPTH; i++) {
			if (busy[i] && segs[i].more)
				fr_aread_more(r, &segs[i]);
			if (busy[i] || next >= m.n_segments)
				continue;
			uint32_t shift = fr_dio_shift(&m, next);
			uint8_t *at = (uint8_t *)fr_pool_buf(pool, buf[i]) +
				      HEAD + shift;
			cr_assert_eq(fr_aread_start(r, &segs[i], next++, buf[i],
						    at,
						    fr_pool_buf_size(pool) -
							    HEAD - shift,
						    (uint64_t)i << 40), 0);
			busy[i] = true;
			cr_assert_leq(r->inflight, FR_AREAD_MAX);
		}
		struct fr_cqe c[64];
		int n = fr_ring_wait(ring, c, 64, 5000);
		cr_assert_gt(n, 0, "a read never came back");
		for (int k = 0; k < n; k++) {
			int i = (int)(c[k].ud >> 40);
			struct fr_aread_seg *s = &segs[i];
			if (!fr_aread_on(r, s, (uint32_t)c[k].ud, c[k].res))
				continue;
			busy[i] = false;
			if ((err = fr_aread_finish(r, s))) {
				snprintf(errpath, cap, "%s", s->errpath);
				break;
			}
			const struct fr_segment *sg = &m.segments[s->seg];
			cr_assert_eq(memcmp(s->at, stream + sg->offset,
					    sg->length), 0,
				     "segment %u read wrong", s->seg);
			checked++;
		}
		cr_assert_leq(r->inflight, FR_AREAD_MAX);
	}
	/* what is still in flight comes back before the buffers go */
	for (int i = 0; i < DEPTH; i++)
		while (busy[i] && segs[i].pending) {
			struct fr_cqe c;
			cr_assert_eq(fr_ring_wait(ring, &c, 1, 5000), 1);
			int j = (int)(c.ud >> 40);
			fr_aread_on(r, &segs[j], (uint32_t)c.ud, c.res);
		}
	for (int i = 0; i < DEPTH; i++) {
		fr_aread_finish(r, &segs[i]);
		fr_aread_seg_fini(&segs[i]);
	}
	fr_aread_fini(r);
	fr_ring_free(ring);
	fr_pool_free(pool);
	return err;
}

Test(aread, every_segment_byte_for_byte, .init = setup, .fini = teardown)
{
	struct fr_aread r;
	char ep[256] = "";
	int fds = open_fds();

	cr_assert_eq(read_all(&r, ep, sizeof(ep)), 0, "error in %s", ep);
	cr_assert_eq(r.read_dio + r.read_buf, total);
	/* ext4, xfs...: the large file's middle past the page cache; a file
	 * system that refuses O_DIRECT (tmpfs) reads it all buffered */
	if (r.read_dio == 0)
		cr_log_warn("no O_DIRECT read here (file system refuses it?)");
	cr_assert_eq(open_fds(), fds, "files left open");
}

Test(aread, file_cut_shorter_is_changed, .init = setup, .fini = teardown)
{
	struct fr_aread r;
	char p[800], ep[256] = "";
	int fds = open_fds();

	snprintf(p, sizeof(p), "%s/s/0700", src);
	cr_assert_eq(truncate(p, SMALL_LEN / 2), 0);
	cr_assert_eq(read_all(&r, ep, sizeof(ep)), FR_E_CHANGED);
	cr_assert_str_eq(ep, "s/0700");
	cr_assert_eq(open_fds(), fds, "files left open");
}

Test(aread, large_file_cut_shorter_is_changed, .init = setup,
     .fini = teardown)
{
	struct fr_aread r;
	char p[800], ep[256] = "";

	snprintf(p, sizeof(p), "%s/a", src);
	cr_assert_eq(truncate(p, SEG + 5000), 0);
	cr_assert_eq(read_all(&r, ep, sizeof(ep)), FR_E_CHANGED);
	cr_assert_str_eq(ep, "a");
}
