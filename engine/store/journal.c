/*
 * journal.c - the receiver's record of durable segments, one file per
 * package: a 32-byte header naming the package, then 32-byte records
 * appended in the order segments became durable. Each record carries its
 * own checksum, so a tail torn by a crash is recognised and cut at open.
 *
 * Invariant: a record is appended only after the segment's bytes were
 * made durable, and the append itself is fdatasync'd before the segment
 * is acknowledged. Replaying the journal therefore never claims a
 * segment whose bytes could be lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/fr_store.h"

void fr_jrec_pack(uint8_t dst[FR_JREC_LEN], uint32_t index,
		  const uint8_t hash[FR_HASH_LEN])
{
	fr_put32(dst, FR_JREC_MAGIC);
	fr_put32(dst + 4, index);
	memcpy(dst + 8, hash, FR_HASH_LEN);
	fr_put64(dst + 24, fr_hash64(dst, 24));
}

int fr_jrec_unpack(const uint8_t src[FR_JREC_LEN], uint32_t *index,
		   uint8_t hash[FR_HASH_LEN])
{
	if (fr_get32(src) != FR_JREC_MAGIC)
		return FR_E_BAD_MAGIC;
	if (fr_get64(src + 24) != fr_hash64(src, 24))
		return FR_E_CHECKSUM;
	*index = fr_get32(src + 4);
	memcpy(hash, src + 8, FR_HASH_LEN);
	return 0;
}

static void pack_header(uint8_t h[FR_JOURNAL_HDR], const uint8_t id[16])
{
	fr_put32(h, FR_JOURNAL_MAGIC);
	fr_put16(h + 4, 1);
	fr_put16(h + 6, 0);
	memcpy(h + 8, id, 16);
	fr_put64(h + 24, fr_hash64(h, 24));
}

/* A whole record the open manifest cannot confirm: the latest one of
 * each segment, for HELD (a failed allocation only loses the offer). */
static void note_unconfirmed(struct fr_journal *j, uint32_t idx,
			     const uint8_t h[FR_HASH_LEN])
{
	if (!j->unconfirmed &&
	    !(j->unconfirmed = calloc(j->n_segments, FR_UNCONF_REC)))
		return;
	uint8_t *u = j->unconfirmed + (size_t)idx * FR_UNCONF_REC;
	j->n_unconfirmed += !u[0];
	u[0] = 1;
	memcpy(u + 1, h, FR_HASH_LEN);
}

void fr_journal_note_copy(struct fr_journal *j, uint32_t idx,
			  const uint8_t h[FR_HASH_LEN])
{
	if (idx < j->n_segments)
		note_unconfirmed(j, idx, h);
}

int fr_journal_open(struct fr_journal *j, const char *path,
		    const struct fr_manifest *m)
{
	uint8_t hdr[FR_JOURNAL_HDR], want[FR_JOURNAL_HDR];
	struct stat st;
	int rc = 0;

	memset(j, 0, sizeof(*j));
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->fd < 0)
		return -errno;
	j->n_segments = m->n_segments;
	j->have = calloc(m->n_segments ? m->n_segments : 1, 1);
	if (!j->have) {
		rc = -ENOMEM;
		goto fail;
	}
	pack_header(want, m->lid); /* the listing: an open manifest's too */
	if (fstat(j->fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (st.st_size < FR_JOURNAL_HDR ||
	    pread(j->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, want, sizeof(hdr)) != 0) {
		/* new, or a header torn before its first fdatasync: restart */
		if (ftruncate(j->fd, 0) < 0 ||
		    (rc = fr_pwrite_all(j->fd, want, sizeof(want), 0)) < 0 ||
		    fdatasync(j->fd) < 0) {
			rc = rc < 0 ? rc : -errno;
			goto fail;
		}
		j->end = FR_JOURNAL_HDR;
		return 0;
	}
	/* replay, in chunks, stopping at the first record that is not whole */
	uint64_t off = FR_JOURNAL_HDR;
	uint8_t buf[FR_JREC_LEN * 256];
	for (;;) {
		ssize_t n = pread(j->fd, buf, sizeof(buf), (off_t)off);
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		size_t whole = (size_t)n / FR_JREC_LEN * FR_JREC_LEN;
		size_t i;
		for (i = 0; i < whole; i += FR_JREC_LEN) {
			uint32_t idx;
			uint8_t h[FR_HASH_LEN];
			if (fr_jrec_unpack(buf + i, &idx, h) < 0)
				break;
			/* a record for another layout is as bad as a torn one */
			if (idx >= m->n_segments)
				break;
			/* a hash the offer does not give (not known to the
			 * sender yet), or another (an earlier copy, sent
			 * again since): not held, and the record stays */
			if (memcmp(h, m->segments[idx].hash, FR_HASH_LEN)) {
				if (fr_hash_unknown(m->segments[idx].hash))
					note_unconfirmed(j, idx, h);
				continue;
			}
			if (!j->have[idx]) {
				j->have[idx] = 1;
				j->n_have++;
			}
		}
		off += i;
		if (i < whole || whole < sizeof(buf))
			break;
	}
	j->end = off;
	if ((uint64_t)st.st_size > off) {
		j->cut = (uint32_t)(((uint64_t)st.st_size - off + FR_JREC_LEN - 1) /
				    FR_JREC_LEN);
		if (ftruncate(j->fd, (off_t)off) < 0 || fdatasync(j->fd) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	return 0;
fail:
	fr_journal_close(j);
	return rc;
}

int fr_journal_append(struct fr_journal *j, const struct fr_manifest *m,
		      const uint32_t *segs, unsigned n)
{
	uint8_t buf[FR_JREC_LEN * 64];
	unsigned k = 0;
	int rc;

	while (k < n) {
		unsigned batch = 0;
		uint64_t start = j->end;
		while (k < n && batch < 64) {
			uint32_t s = segs[k++];
			if (s >= j->n_segments || j->have[s])
				continue;
			fr_jrec_pack(buf + batch * FR_JREC_LEN, s,
				     m->segments[s].hash);
			batch++;
		}
		if (!batch)
			continue;
		rc = fr_pwrite_all(j->fd, buf, batch * FR_JREC_LEN, (off_t)start);
		if (rc < 0)
			return rc;
		j->end += batch * FR_JREC_LEN;
	}
	if (fdatasync(j->fd) < 0)
		return -errno;
	for (k = 0; k < n; k++)
		if (segs[k] < j->n_segments && !j->have[segs[k]]) {
			j->have[segs[k]] = 1;
			j->n_have++;
		}
	return 0;
}

void fr_journal_close(struct fr_journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	free(j->have);
	free(j->unconfirmed);
	memset(j, 0, sizeof(*j));
	j->fd = -1;
}

/* A journal at path with exactly the records of the segments held (have)
 * and of the copies noted (unconf, NULL: none), but those in drop (NULL:
 * none): tmp file, fdatasync, rename, fsync of the dir. */
static int write_records(const char *path, const struct fr_manifest *m,
			 const uint8_t *have, const uint8_t *unconf,
			 const uint8_t *drop)
{
	/* a header and a record per segment held: as large as the manifest's
	 * segment table at most, which is in memory already */
	uint8_t *buf = malloc(FR_JOURNAL_HDR + (size_t)m->n_segments * FR_JREC_LEN);
	size_t n = FR_JOURNAL_HDR;
	int rc;

	if (!buf)
		return -ENOMEM;
	pack_header(buf, m->lid);
	for (uint32_t s = 0; s < m->n_segments; s++) {
		const uint8_t *u = unconf ? unconf + (size_t)s * FR_UNCONF_REC : NULL;
		if (drop && drop[s])
			continue;
		if (have[s])
			fr_jrec_pack(buf + n, s, m->segments[s].hash);
		else if (u && u[0])
			fr_jrec_pack(buf + n, s, u + 1);
		else
			continue;
		n += FR_JREC_LEN;
	}
	rc = fr_write_file_atomic(path, buf, n);
	free(buf);
	return rc;
}

int fr_journal_drop(struct fr_journal *j, const char *path,
		    const struct fr_manifest *m, const uint8_t *drop)
{
	int rc = write_records(path, m, j->have, j->unconfirmed, drop);

	fr_journal_close(j);
	return rc < 0 ? rc : fr_journal_open(j, path, m);
}

int fr_journal_rebind(const char *path, const uint8_t lid[FR_HASH_LEN])
{
	uint8_t h[FR_JOURNAL_HDR];
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -errno;
	pack_header(h, lid);
	rc = fr_pwrite_all(fd, h, sizeof(h), 0);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int fr_journal_rewrite(const char *path, const struct fr_manifest *m,
		       const uint8_t *have)
{
	return write_records(path, m, have, NULL, NULL);
}
