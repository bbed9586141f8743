/*
 * fr_source.h - engine/source/: the package at the sender, before any
 * output: the walk and its manifest, the hashing pass and the ring reader
 * of segments (scan.c), the asynchronous segment reader an output's I/O
 * thread drives (aread.c), and the hashes a send makes as it reads
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

/* ---- the asynchronous segment reader (aread.c) -------------------------- */

/*
 * Segments read into the caller's buffers through the caller's ring,
 * while its thread goes on with other work: each extent's block-aligned
 * middle O_DIRECT where it lines up in the buffer (fr_dio_shift), the
 * rest buffered; a file spanning segments kept open between them; at
 * most FR_AREAD_MAX reads in flight over every segment of one reader.
 * A read's completion carries the segment's ud with the read's number in
 * its low 32 bits; hand it to fr_aread_on.
 */
#define FR_AREAD_MAX 256
struct fr_aread {
	struct fr_ring *ring;
	const struct fr_manifest *m;
	const char *root;
	bool single;
	uint32_t cache_entry;  /* the file kept open between segments: */
	int cache_fd, cache_dfd; /* buffered, O_DIRECT (-1: not open) */
	uint8_t *nodirect;     /* per entry: its file system refused O_DIRECT */
	uint64_t read_dio, read_buf; /* bytes asked for each way */
	uint32_t inflight;     /* reads in flight, every segment's */
};
struct fr_aread_op { /* one read of (part of) one extent, resubmitted on a
		      * short read */
	int fd;
	uint32_t entry;
	uint32_t seg_off, len, done;
	uint32_t req;        /* bytes asked for: len, or (O_DIRECT, to the
			      * file's end) len rounded up to the block */
	bool direct;         /* fd is the O_DIRECT one */
	uint64_t file_off;
};
struct fr_aread_seg { /* one segment being read */
	uint32_t seg;
	int buf;             /* the pool buffer at lies in */
	uint8_t *at;         /* where the segment's first byte goes */
	size_t room;         /* bytes of that buffer from at */
	uint64_t ud;
	uint32_t pending;    /* reads in flight */
	bool more;           /* extents not submitted yet (no room in flight) */
	int err;             /* the first error, and the file it was in */
	char errpath[256];
	struct fr_aread_op *ops;
	uint32_t n_ops, cap_ops;
	int *closes;         /* fds to close once the reads are submitted */
	uint32_t n_closes, cap_closes, close_from;
	uint32_t first_ops;  /* the ops of the segment's first extent */
	struct fr_extent_iter it; /* the extents not yet submitted */
};
/* For m's segments at root, through ring. 0 or -ENOMEM. */
int fr_aread_init(struct fr_aread *r, struct fr_ring *ring,
		  const struct fr_manifest *m, const char *root, bool single);
void fr_aread_fini(struct fr_aread *r); /* the cached file closed; safe on
					 * zeroed */
/* Start reading segment seg to at (inside pool buffer buf, room bytes
 * from at), its reads' completions tagged ud | their number. 0 or an
 * error, also kept in s->err once reads went out (then fr_aread_done
 * says when they are back). */
int fr_aread_start(struct fr_aread *r, struct fr_aread_seg *s, uint32_t seg,
		   int buf, uint8_t *at, size_t room, uint64_t ud);
/* Submit more of s's reads where the room in flight allows (s->more). */
int fr_aread_more(struct fr_aread *r, struct fr_aread_seg *s);
/* Read number k of s completed with res: true once all of s's reads are
 * back (fr_aread_done). A short read goes on; a file found shorter than
 * listed is FR_E_CHANGED in s->err, with its path in s->errpath. */
bool fr_aread_on(struct fr_aread *r, struct fr_aread_seg *s, uint32_t k,
		 int res);
static inline bool fr_aread_done(const struct fr_aread_seg *s)
{
	return s->pending == 0 && !s->more;
}
/* The segment's reads are over (done, or given up on with none in
 * flight): its files closed; its error, or 0. */
int fr_aread_finish(struct fr_aread *r, struct fr_aread_seg *s);
void fr_aread_seg_fini(struct fr_aread_seg *s); /* its arrays; safe on zeroed */

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
/* Every hash known is stale (the source changed and its listing did not
 * say so): forgotten, with their records; m is open again, none known.
 * 0 or the error of reopening (k is closed then). */
int fr_known_forget(struct fr_known *k);
void fr_known_close(struct fr_known *k);

#endif
