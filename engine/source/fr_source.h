/*
 * fr_source.h - engine/source/: the package at the sender, before any
 * output: the walk and its manifest, the hashing pass and the ring reader
 * of segments (scan.c), and the hashes a send makes as it reads
 * (known.c).
 */
#ifndef FR_SOURCE_H
#define FR_SOURCE_H

#include "core/fr_core.h"

/* ---- scanning a source (scan.c) ---------------------------------------- */

/*
 * A package's manifest, in two halves. fr_scan_list walks and lays out
 * the package: entries and segment lengths, hashes zero, not sealed
 * (*single: the source is one file). What the walk left out (fifos,
 * sockets, devices, symlinks leading out) goes to *left, sorted by path,
 * when left is not NULL (the caller frees it with fr_left_list_fini; it
 * is empty after a failure). A send hashes the segments as it reads them
 * (known.c); for a parcel, fr_hash_start hashes every segment into m, in
 * order, with threads of its own (stopping early, -ECANCELED, once
 * *stop is set, when stop is not NULL); fr_hash_finish waits for them,
 * seals m (its id) and frees h: 0, or the read error (logged).
 */
struct fr_scan_hash;
int fr_scan_list(const char *path, const char *name, uint32_t seg_size,
		 struct fr_manifest *out, bool *single,
		 struct fr_left_list *left);
int fr_hash_start(struct fr_scan_hash **h, const char *root, bool single,
		  struct fr_manifest *m, atomic_bool *stop);
int fr_hash_finish(struct fr_scan_hash *h);
/*
 * Reads segments of a tree (or single file) at root into one buffer of
 * its own, with all of a segment's opens, then all its reads, in flight
 * through a ring. Used by the hashing pass, verify and recovery.
 */
struct fr_seg_reader {
	struct fr_ring *ring;
	struct fr_pool *pool;
	int buf_id;
	uint8_t *buf;                  /* the segment, after fr_seg_read */
	struct fr_extent *ext;         /* per extent of the segment ... */
	int *fds;
	char (*paths)[FR_PATH_MAX + 1];
	uint32_t *done;                /* ... bytes read so far */
	uint32_t cap;
};
int fr_seg_reader_init(struct fr_seg_reader *r, uint32_t seg_size);
void fr_seg_reader_fini(struct fr_seg_reader *r); /* safe on zeroed */
int fr_seg_read(struct fr_seg_reader *r, const char *root, bool single,
		const struct fr_manifest *m, uint32_t s, char *errbuf,
		size_t errcap);
/*
 * Segment s of the tree (or file) at root, read into a reader of its own
 * (r zeroed; fr_seg_reader_fini it after use) and checked against the
 * manifest's hash: 0 with the bytes at r->buf, or FR_E_HASH_MISMATCH (they
 * are not that segment) or a read error. For a frame compressed against
 * another segment, on both sides of the wire.
 */
int fr_seg_load(struct fr_seg_reader *r, const char *root, bool single,
		const struct fr_manifest *m, uint32_t s);
/* Open entry e of the source at root for reading (O_NOFOLLOW); direct:
 * O_DIRECT, -EINVAL where the file system refuses it. */
int fr_source_open(const char *root, bool single_file,
		   const struct fr_entry *e, bool direct);

/* The package at path: its absolute path, and its name (given, or the
 * path's last part), checked. Errors are logged ("cannot <verb> ..."). */
int fr_package_source(const char *path, const char *given, const char *verb,
		      char *abs, size_t abscap, char *name, size_t namecap);

/* ---- the hashes a sender has made (known.c) ----------------------------- */

/*
 * A sender's manifest, open until every segment is hashed: the workers
 * that read the segments to send them hash them (fr_known_add, from any
 * thread), and each hash is kept in <transfer>/hashes before its frame
 * goes, so that a resume reads only what is left.
 */
struct fr_known {
	struct fr_manifest *m;
	atomic_uchar *have;   /* per segment: m's hash of it is known */
	atomic_uint n;        /* how many are */
	int fd;               /* <dir>/hashes, or -1 once all are known */
	char dir[1300];
};
/* Start from prev (an earlier manifest of the same listing, or NULL) and
 * the records in dir; writes dir/manifest (open, or complete when every
 * hash is known: then m->id is the package id). */
int fr_known_open(struct fr_known *k, struct fr_manifest *m, const char *dir,
		  const struct fr_manifest *prev);
static inline bool fr_known_has(const struct fr_known *k, uint32_t s)
{
	return atomic_load_explicit(&k->have[s], memory_order_acquire);
}
static inline bool fr_known_all(const struct fr_known *k)
{
	return atomic_load(&k->n) >= k->m->n_segments;
}
/* Segment s hashes to h: recorded (once; thread-safe, one segment per
 * caller at a time). 0 or the write's code (not fatal). */
int fr_known_add(struct fr_known *k, uint32_t s, const uint8_t h[FR_HASH_LEN]);
/* The manifest to offer now (open unless every hash is known). */
int fr_known_offer(struct fr_known *k, uint8_t **mf, size_t *len);
/* The hashes an earlier send of m's listing made (dir/manifest, the
 * records in dir/hashes) copied into m, nothing written: what `ferry
 * plan` offers. m->open is set; returns how many hashes are known. */
uint32_t fr_known_peek(struct fr_manifest *m, const char *dir);
/*
 * Every segment hashed (those nobody read, because another arrival such
 * as a parcel brought them to the receiver, are read and hashed first):
 * every entry is looked at again (lstat); if each
 * is what it was when listed, the manifest becomes complete (m->id the package
 * id) and replaces the records. FR_E_CHANGED (naming what changed in err)
 * if it is not.
 */
int fr_known_settle(struct fr_known *k, const char *root, bool single,
		    char *err, size_t cap);
void fr_known_close(struct fr_known *k);

#endif
