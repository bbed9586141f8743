/*
 * known.c - the hashes a sender has made of its source.
 *
 * A package's segment table is settled as its segments are read to be
 * sent: the worker that makes a segment's frame hashes the bytes it
 * sends, so the source is read once. What has been hashed is kept in
 * <transfer>/hashes, one record per segment at its own place (index x
 * 24), written before the segment's frame goes. A resume of an unchanged
 * source therefore reads only what is left, and offers the hashes it
 * has so that the receiver can say which segments it holds (PROTOCOL.md,
 * "OFFER").
 *
 *   record: index (u32) | hash (16) | check (u32: XXH3-64 of the 20
 *           bytes before it, low half)
 *
 * A record that does not check (never written, torn by a crash) is a
 * segment not hashed yet. Once every segment is hashed and the source
 * is found unchanged (fr_known_settle), the manifest is complete, its
 * id is the package id, and it replaces the records.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source/fr_source.h"

#define KREC 24

static void rec_pack(uint8_t *r, uint32_t s, const uint8_t h[FR_HASH_LEN])
{
	fr_put32(r, s);
	memcpy(r + 4, h, FR_HASH_LEN);
	fr_put32(r + 20, (uint32_t)fr_hash64(r, 20));
}

/* Seal the manifest as it stands (open or not) and record it. */
static int seal_and_write(struct fr_known *k)
{
	uint8_t *mf;
	size_t len;
	char path[1400];
	int rc;

	if ((rc = fr_manifest_seal_out(k->m, &mf, &len)) < 0)
		return rc;
	fr_path_fmt(path, sizeof(path), "%s/manifest", k->dir);
	rc = fr_write_file_atomic(path, mf, len);
	free(mf);
	if (rc < 0)
		fr_log(FR_LOG_ERROR, "cannot write '%s': %s", path,
		       fr_strerror(rc));
	return rc;
}

static void mark(struct fr_known *k, uint32_t s)
{
	if (!atomic_exchange_explicit(&k->have[s], 1, memory_order_release))
		atomic_fetch_add(&k->n, 1);
}

/* The records kept from an earlier attempt. */
static void load_records(struct fr_known *k)
{
	uint8_t buf[KREC * 512];
	uint64_t off = 0;
	ssize_t n;

	while ((n = pread(k->fd, buf, sizeof(buf), (off_t)off)) >= KREC) {
		for (ssize_t i = 0; i + KREC <= n; i += KREC) {
			const uint8_t *r = buf + i;
			uint32_t s = (uint32_t)((off + (uint64_t)i) / KREC);
			if (fr_get32(r) != s || s >= k->m->n_segments ||
			    fr_get32(r + 20) != (uint32_t)fr_hash64(r, 20) ||
			    fr_hash_unknown(r + 4) ||
			    atomic_load(&k->have[s]))
				continue;
			memcpy(k->m->segments[s].hash, r + 4, FR_HASH_LEN);
			mark(k, s);
		}
		off += (uint64_t)n / KREC * KREC;
	}
}

int fr_known_open(struct fr_known *k, struct fr_manifest *m, const char *dir,
		  const struct fr_manifest *prev)
{
	char path[1400];
	int rc;

	memset(k, 0, sizeof(*k));
	k->fd = -1;
	k->m = m;
	snprintf(k->dir, sizeof(k->dir), "%s", dir);
	k->have = calloc(m->n_segments + 1, sizeof(*k->have));
	if (!k->have)
		return -ENOMEM;
	/* an earlier transfer of the same listing: its hashes hold */
	if (prev && !memcmp(prev->lid, m->lid, FR_HASH_LEN) &&
	    prev->n_segments == m->n_segments)
		for (uint32_t s = 0; s < m->n_segments; s++)
			if (!fr_hash_unknown(prev->segments[s].hash)) {
				memcpy(m->segments[s].hash, prev->segments[s].hash,
				       FR_HASH_LEN);
				mark(k, s);
			}
	fr_path_fmt(path, sizeof(path), "%s/hashes", dir);
	if (fr_known_all(k)) {
		unlink(path);
	} else {
		k->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (k->fd < 0) {
			rc = -errno;
			fr_log(FR_LOG_ERROR, "cannot open '%s': %s", path,
			       strerror(errno));
			fr_known_close(k);
			return rc;
		}
		load_records(k);
	}
	m->open = !fr_known_all(k);
	if ((rc = seal_and_write(k)) < 0) {
		fr_known_close(k);
		return rc;
	}
	return 0;
}

int fr_known_add(struct fr_known *k, uint32_t s, const uint8_t h[FR_HASH_LEN])
{
	uint8_t r[KREC];

	if (s >= k->m->n_segments || atomic_load(&k->have[s]))
		return 0;
	memcpy(k->m->segments[s].hash, h, FR_HASH_LEN);
	mark(k, s);
	if (k->fd < 0)
		return 0;
	rec_pack(r, s, h);
	/* a lost record costs one read on a resume, nothing more */
	return fr_pwrite_all(k->fd, r, KREC, (off_t)s * KREC);
}

int fr_known_offer(struct fr_known *k, uint8_t **mf, size_t *len)
{
	k->m->open = !fr_known_all(k);
	return fr_manifest_seal_out(k->m, mf, len);
}

/* The hashes of an earlier manifest of the same listing, marked. */
static void take_hashes(struct fr_known *k, const struct fr_manifest *prev)
{
	if (memcmp(prev->lid, k->m->lid, FR_HASH_LEN) ||
	    prev->n_segments != k->m->n_segments)
		return;
	for (uint32_t s = 0; s < k->m->n_segments; s++)
		if (!fr_hash_unknown(prev->segments[s].hash)) {
			memcpy(k->m->segments[s].hash, prev->segments[s].hash,
			       FR_HASH_LEN);
			mark(k, s);
		}
}

uint32_t fr_known_peek(struct fr_manifest *m, const char *dir)
{
	struct fr_known k = {.m = m, .fd = -1};
	struct fr_manifest prev = {0};
	char path[1400];
	uint8_t *mf;
	size_t len;

	if (!(k.have = calloc(m->n_segments + 1, sizeof(*k.have))))
		return 0;
	if (fr_path_fmt(path, sizeof(path), "%s/manifest", dir) == 0 &&
	    fr_read_file(path, FR_MANIFEST_MAX, &mf, &len) == 0) {
		if (fr_manifest_decode(&prev, mf, len) == 0)
			take_hashes(&k, &prev);
		fr_manifest_fini(&prev);
		free(mf);
	}
	if (!fr_known_all(&k) &&
	    fr_path_fmt(path, sizeof(path), "%s/hashes", dir) == 0 &&
	    (k.fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		load_records(&k);
		close(k.fd);
	}
	m->open = !fr_known_all(&k);
	free(k.have);
	return atomic_load(&k.n);
}

/*
 * Entry e as it is now against the listing: the same type, mode, size,
 * modification time (and link target). root_fd: the package directory
 * (-1: the package is the single file root).
 */
static bool entry_same(int root_fd, const char *root, const struct fr_entry *e)
{
	struct stat st;
	char t[FR_PATH_MAX + 1];

	if ((root_fd < 0 ? lstat(root, &st)
			 : fstatat(root_fd, e->path, &st, AT_SYMLINK_NOFOLLOW)) < 0)
		return false;
	int type = S_ISDIR(st.st_mode)	 ? FR_ENT_DIR
		   : S_ISLNK(st.st_mode) ? FR_ENT_LINK
		   : S_ISREG(st.st_mode) ? FR_ENT_FILE
					 : 0;
	if (type != e->type || (st.st_mode & 07777) != e->mode ||
	    (type == FR_ENT_FILE &&
	     ((uint64_t)st.st_size != e->size || st.st_mtim.tv_sec != e->mtime_sec ||
	      (uint32_t)st.st_mtim.tv_nsec != e->mtime_nsec)))
		return false;
	if (type == FR_ENT_LINK) {
		ssize_t n = readlinkat(root_fd, e->path, t, sizeof(t) - 1);
		if (n < 0)
			return false;
		t[n] = '\0';
		return e->target && !strcmp(t, e->target);
	}
	return true;
}

/* The first entry of m that is not what it was when listed, or NULL. A
 * file added since is not part of this package: the next send's. */
static const char *first_change(const struct fr_manifest *m, const char *root,
				bool single)
{
	int fd = single ? -1 : open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	const char *what = NULL;

	if (!single && (fd < 0 || fstat(fd, &st) < 0 ||
			(st.st_mode & 07777) != m->root_mode))
		what = root;
	for (uint32_t i = 0; !what && i < m->n_entries; i++)
		if (!entry_same(fd, root, &m->entries[i]))
			what = m->entries[i].path;
	if (fd >= 0)
		close(fd);
	return what;
}

/*
 * The segments nobody read to send them (a parcel brought them to the
 * receiver while this send went on) are read and hashed now, so that the
 * table can be settled: each once, the reading of the others done.
 */
static int known_fill(struct fr_known *k, const char *root, bool single,
		      char *err, size_t cap)
{
	struct fr_seg_reader rd = {0};
	const struct fr_manifest *m = k->m;
	uint32_t n = 0;
	int rc = 0;

	if (fr_known_all(k))
		return 0;
	if ((rc = fr_seg_reader_init(&rd, m->seg_size)) < 0)
		return rc;
	for (uint32_t s = 0; s < m->n_segments && rc == 0; s++) {
		if (fr_known_has(k, s))
			continue;
		uint8_t h[FR_HASH_LEN];
		rc = fr_seg_read(&rd, root, single, m, s, err, cap);
		if (rc == 0) {
			fr_hash128(rd.buf, m->segments[s].length, h);
			rc = fr_known_add(k, s, h);
			n++;
		}
	}
	fr_seg_reader_fini(&rd);
	if (n)
		fr_log(FR_LOG_INFO,
		       "'%s': %u segments another arrival brought were read "
		       "and hashed for the segment table",
		       m->name, n);
	return rc;
}

/* The outputs of a striped send each settle the table before their END:
 * the first does it, the others find it done. */
static pthread_mutex_t settle_mu = PTHREAD_MUTEX_INITIALIZER;

static int settle(struct fr_known *k, const char *root, bool single,
		  char *err, size_t cap);

int fr_known_settle(struct fr_known *k, const char *root, bool single,
		    char *err, size_t cap)
{
	pthread_mutex_lock(&settle_mu);
	int rc = k->m->open ? known_fill(k, root, single, err, cap) : 0;
	if (rc == 0)
		rc = settle(k, root, single, err, cap);
	pthread_mutex_unlock(&settle_mu);
	return rc;
}

static int settle(struct fr_known *k, const char *root, bool single,
		  char *err, size_t cap)
{
	char ep[FR_ESC_MAX], wp[FR_ESC_MAX], path[1400];
	int rc;

	if (!k->m->open)
		return 0;
	if (!fr_known_all(k)) {
		snprintf(err, cap, "%u of %u segments were never hashed",
			 k->m->n_segments - atomic_load(&k->n), k->m->n_segments);
		return FR_E_INCOMPLETE;
	}
	/* every byte was read once: each entry again says whether the
	 * files stayed what they were while they were read */
	const char *what = first_change(k->m, root, single);
	if (what) {
		/* (the root itself, or an entry of it) */
		if (what == root)
			snprintf(err, cap,
				 "%s: '%s' changed while it was being sent; "
				 "nothing was made complete at the receiver; "
				 "send it again to carry the new version",
				 fr_strerror(FR_E_CHANGED),
				 fr_esc(root, ep, sizeof(ep)));
		else
			snprintf(err, cap,
				 "%s: '%s' (in '%s') changed while it was being "
				 "sent; nothing was made complete at the "
				 "receiver; send it again to carry the new "
				 "version",
				 fr_strerror(FR_E_CHANGED),
				 fr_esc(what, wp, sizeof(wp)),
				 fr_esc(root, ep, sizeof(ep)));
		return FR_E_CHANGED;
	}
	k->m->open = false;
	if ((rc = seal_and_write(k)) < 0) {
		snprintf(err, cap, "cannot record the manifest of '%s': %s",
			 k->m->name, fr_strerror(rc));
		return rc;
	}
	fr_path_fmt(path, sizeof(path), "%s/hashes", k->dir);
	unlink(path);
	char hex[2 * FR_HASH_LEN + 1];
	fr_hex(k->m->id, FR_HASH_LEN, hex);
	fr_log(FR_LOG_DEBUG, "'%s': every segment hashed, package id %s",
	       k->m->name, hex);
	return 0;
}

int fr_known_forget(struct fr_known *k)
{
	struct fr_manifest *m = k->m;
	char dir[sizeof(k->dir)], path[1400];

	snprintf(dir, sizeof(dir), "%s", k->dir);
	fr_known_close(k);
	if (!fr_path_fmt(path, sizeof(path), "%s/hashes", dir))
		unlink(path);
	for (uint32_t i = 0; i < m->n_segments; i++)
		memset(m->segments[i].hash, 0, FR_HASH_LEN);
	m->open = true;
	int rc = fr_manifest_seal(m);
	return rc < 0 ? rc : fr_known_open(k, m, dir, NULL);
}

void fr_known_close(struct fr_known *k)
{
	if (k->fd >= 0)
		close(k->fd);
	free((void *)k->have);
	k->fd = -1;
	k->have = NULL;
}
