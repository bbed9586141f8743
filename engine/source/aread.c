/*
 * aread.c - the asynchronous segment reader: a segment's extents read
 * straight into an output's buffer through that output's ring, while its
 * I/O thread goes on with the network.
 *
 * Each extent is read the way the receiver writes it: the block-aligned
 * middle of a large extent that lines up in the buffer (fr_dio_shift)
 * O_DIRECT, past the page cache, its head and tail buffered. A file that
 * goes on into the next segment stays open (both its fds) in a one-file
 * cache; the others are closed in batches once their reads are submitted
 * (the kernel holds its own references then). At most FR_AREAD_MAX reads
 * are in flight over all the segments being read: a segment of small
 * files is thousands of reads, more than a completion queue holds.
 *
 * The caller owns the ring and the buffers, and hands each completion
 * whose user data it tagged back with fr_aread_on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source/fr_source.h"

/* files closed at once, after their reads are submitted */
#define CLOSE_BATCH 64

int fr_aread_init(struct fr_aread *r, struct fr_ring *ring,
		  const struct fr_manifest *m, const char *root, bool single)
{
	*r = (struct fr_aread){.ring = ring, .m = m, .root = root,
			       .single = single, .cache_fd = -1,
			       .cache_dfd = -1};
	r->nodirect = calloc(m->n_entries + 1, 1);
	if (!r->nodirect)
		return -ENOMEM;
	if (fr_hook_flag("NO_DIRECT"))
		memset(r->nodirect, 1, m->n_entries);
	return 0;
}

void fr_aread_fini(struct fr_aread *r)
{
	if (!r->nodirect) /* zeroed, or never set up */
		return;
	if (r->cache_fd >= 0)
		close(r->cache_fd);
	if (r->cache_dfd >= 0)
		close(r->cache_dfd);
	r->cache_fd = r->cache_dfd = -1;
	free(r->nodirect);
	r->nodirect = NULL;
}

void fr_aread_seg_fini(struct fr_aread_seg *s)
{
	for (uint32_t i = 0; i < s->n_closes; i++)
		close(s->closes[i]);
	free(s->ops);
	free(s->closes);
	*s = (struct fr_aread_seg){0};
}

static int defer_close(struct fr_aread_seg *s, int fd)
{
	if (s->n_closes == s->cap_closes) {
		uint32_t nc = s->cap_closes ? s->cap_closes * 2 : 16;
		int *n = realloc(s->closes, nc * sizeof(int));
		if (!n)
			return -ENOMEM;
		s->closes = n;
		s->cap_closes = nc;
	}
	s->closes[s->n_closes++] = fd;
	return 0;
}

/*
 * Is most of the file behind fd in the page cache already (a package
 * just written, or read again)? Then reading it from there beats
 * O_DIRECT, which would go to the disk. Unknown (before Linux 6.5): no.
 */
static bool mostly_cached(int fd, uint64_t size)
{
	int64_t cached = fr_cached_bytes(fd);

	return cached >= 0 && (uint64_t)cached >= size / 2;
}

/* Opens entry's file, buffered or O_DIRECT. The buffered fd of a file
 * whose middle goes O_DIRECT reads its ends (or an extent that does not
 * line up) only: no readahead, which would read what O_DIRECT reads. */
static int open_src(struct fr_aread *r, uint32_t entry, bool direct)
{
	const struct fr_entry *e = &r->m->entries[entry];
	int fd = fr_source_open(r->root, r->single, e, direct);

	if (fd >= 0 && !direct && !r->nodirect[entry] && e->size >= FR_DIO_MIN)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	return fd;
}

/* fd, just opened, goes to the one-file cache (keep) or is closed by the
 * segment once its reads are submitted. */
static int adopt_fd(struct fr_aread *r, struct fr_aread_seg *s, bool keep,
		    bool direct, int fd)
{
	if (keep) {
		*(direct ? &r->cache_dfd : &r->cache_fd) = fd;
		return 0;
	}
	if (defer_close(s, fd) < 0) {
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

/* The cached file's fds are closed by the segment once its reads are
 * submitted. Each leaves the cache only once it is in the segment's list
 * (on ENOMEM the rest stays, closed once, by fr_aread_fini). */
static int uncache(struct fr_aread *r, struct fr_aread_seg *s)
{
	int *fds[] = {&r->cache_fd, &r->cache_dfd};

	for (size_t i = 0; i < FR_ARRAY_SIZE(fds); i++) {
		if (*fds[i] < 0)
			continue;
		if (defer_close(s, *fds[i]) < 0)
			return -ENOMEM;
		*fds[i] = -1;
	}
	return 0;
}

/*
 * The fds to read an extent of entry from: *fd (buffered) if want_buf,
 * *dfd (O_DIRECT) if want_dio. A file that goes on into the next segment
 * stays open in the one-file cache (both its fds); a file whose last
 * extent this is is closed by the segment once its reads are submitted.
 * Where the file system refuses O_DIRECT, the file is marked so, *dfd is
 * -1 and *fd is opened instead.
 */
static int source_fds(struct fr_aread *r, uint32_t entry, bool last,
		      struct fr_aread_seg *s, bool want_buf, bool want_dio,
		      int *fd, int *dfd)
{
	bool cached = r->cache_entry == entry &&
		      (r->cache_fd >= 0 || r->cache_dfd >= 0);
	int rc;

	*fd = *dfd = -1;
	if (!cached && !last) { /* this one is cached instead */
		if (uncache(r, s) < 0)
			return -ENOMEM;
		r->cache_entry = entry;
		cached = true;
	}
	if (cached) {
		*fd = r->cache_fd;
		*dfd = r->cache_dfd;
	}
	if (want_dio && *dfd < 0) {
		rc = open_src(r, entry, true);
		if (rc >= 0 && mostly_cached(rc, r->m->entries[entry].size)) {
			close(rc); /* read from the cache: this file buffered */
			rc = -EINVAL;
		}
		if (rc == -EINVAL) { /* ramfs, cached, ...: this file buffered */
			r->nodirect[entry] = 1;
			want_buf = true;
		} else if (rc < 0) {
			return rc;
		} else {
			*dfd = rc;
			if ((rc = adopt_fd(r, s, cached, true, rc)) < 0)
				return rc;
		}
	}
	if (want_buf && *fd < 0) {
		rc = open_src(r, entry, false);
		if (rc < 0)
			return rc;
		*fd = rc;
		if ((rc = adopt_fd(r, s, cached, false, rc)) < 0)
			return rc;
	}
	if (last && cached && uncache(r, s) < 0) /* closed after these reads */
		return -ENOMEM;
	return 0;
}

static int submit_rop(struct fr_aread *r, struct fr_aread_seg *s, uint32_t k)
{
	struct fr_aread_op *op = &s->ops[k];

	if (op->fd < 0) /* closed after a first read that came up short */
		return FR_E_CHANGED;
	return fr_ring_read(r->ring, op->fd, s->buf,
			    s->at + op->seg_off + op->done, op->req - op->done,
			    op->file_off + op->done, s->ud | k);
}

/* The files read to their end go once their reads are submitted. A
 * short read of a closed file is not resubmitted: the file shrank. */
static void close_submitted(struct fr_aread *r, struct fr_aread_seg *s)
{
	fr_ring_submit(r->ring);
	for (uint32_t i = 0; i < s->n_closes; i++) {
		/* the files are those of the ops since the last batch, and
		 * the one the segment began in */
		for (uint32_t k = s->close_from; k < s->n_ops; k++)
			if (s->ops[k].fd == s->closes[i])
				s->ops[k].fd = -1;
		for (uint32_t k = 0; k < s->first_ops && k < s->close_from; k++)
			if (s->ops[k].fd == s->closes[i])
				s->ops[k].fd = -1;
		close(s->closes[i]);
	}
	s->n_closes = 0;
	s->close_from = s->n_ops;
}

/* One read of op.len bytes of op.entry at op.file_off, to op.seg_off:
 * submitted. */
static int add_rop(struct fr_aread *r, struct fr_aread_seg *s,
		   struct fr_aread_op op)
{
	int rc;

	if (s->n_ops == s->cap_ops) {
		uint32_t nc = s->cap_ops ? s->cap_ops * 2 : 64;
		struct fr_aread_op *n = realloc(s->ops, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->ops = n;
		s->cap_ops = nc;
	}
	if (!op.req)
		op.req = op.len;
	s->ops[s->n_ops] = op;
	if ((rc = submit_rop(r, s, s->n_ops)) < 0)
		return rc;
	s->n_ops++;
	s->pending++;
	r->inflight++;
	return 0;
}

/*
 * The reads of one extent: the block-aligned middle of a large extent
 * that lines up in the buffer O_DIRECT, its head and tail buffered. A
 * file's last piece at the segment's end goes O_DIRECT to the file's
 * end, the request rounded up to the block where the buffer has room
 * (the read stops at the end).
 */
static int read_extent(struct fr_aread *r, struct fr_aread_seg *s,
		       const struct fr_extent *x)
{
	const struct fr_manifest *m = r->m;
	const struct fr_entry *e = &m->entries[x->entry];
	bool last = x->file_off + x->len == e->size;
	struct fr_dio_split d =
		fr_dio_split(s->at + x->seg_off, x->file_off, x->len,
			     !r->nodirect[x->entry] && e->size >= FR_DIO_MIN);
	uint32_t req = 0;
	int fd, dfd, rc;

	if (d.mid && d.tail && last &&
	    x->seg_off + x->len == m->segments[s->seg].length) {
		uint32_t up = (d.mid + d.tail + FR_DIO_ALIGN - 1) &
			      ~(FR_DIO_ALIGN - 1);
		if ((size_t)x->seg_off + d.head + up <= s->room) {
			d.mid += d.tail;
			d.tail = 0;
			req = up;
		}
	}
	rc = source_fds(r, x->entry, last, s, d.head || d.tail, d.mid > 0, &fd,
			&dfd);
	if (rc < 0)
		return rc;
	if (d.mid && dfd < 0) { /* refused: all of it buffered */
		d = (struct fr_dio_split){.head = x->len};
		req = 0;
	}
	struct fr_aread_op op = {.entry = x->entry, .seg_off = x->seg_off,
				 .file_off = x->file_off};
	r->read_dio += d.mid;
	r->read_buf += x->len - d.mid;
	if (d.head) {
		op.fd = fd, op.len = d.head;
		if ((rc = add_rop(r, s, op)) < 0)
			return rc;
	}
	if (d.mid) {
		op.fd = dfd, op.direct = true;
		op.seg_off = x->seg_off + d.head, op.file_off = x->file_off + d.head;
		op.len = d.mid, op.req = req;
		if ((rc = add_rop(r, s, op)) < 0)
			return rc;
	}
	if (d.tail) {
		op.fd = fd, op.direct = false, op.req = 0;
		op.seg_off = x->seg_off + d.head + d.mid;
		op.file_off = x->file_off + d.head + d.mid;
		op.len = d.tail;
		if ((rc = add_rop(r, s, op)) < 0)
			return rc;
	}
	return 0;
}

/* The segment cannot be read: its reads not yet submitted never will be
 * (without this, a segment whose error came while the rest waited for
 * room in flight would wait for ever). */
static void seg_error(struct fr_aread *r, struct fr_aread_seg *s, int err,
		      uint32_t entry)
{
	s->err = err;
	s->more = false;
	snprintf(s->errpath, sizeof(s->errpath), "%s", r->m->entries[entry].path);
}

int fr_aread_more(struct fr_aread *r, struct fr_aread_seg *s)
{
	struct fr_extent x;
	int rc;

	while (s->more && !s->err) {
		if (r->inflight >= FR_AREAD_MAX) {
			fr_ring_submit(r->ring);
			return 0;
		}
		if (!fr_extent_next(&s->it, &x)) {
			s->more = false;
			break;
		}
		rc = read_extent(r, s, &x);
		if (x.seg_off == 0)
			s->first_ops = s->n_ops;
		if (rc < 0) {
			seg_error(r, s, rc, x.entry);
			return rc;
		}
		if (s->n_closes >= CLOSE_BATCH)
			close_submitted(r, s);
	}
	return 0;
}

int fr_aread_start(struct fr_aread *r, struct fr_aread_seg *s, uint32_t seg,
		   int buf, uint8_t *at, size_t room, uint64_t ud)
{
	s->seg = seg;
	s->buf = buf;
	s->at = at;
	s->room = room;
	s->ud = ud;
	s->n_ops = s->first_ops = 0;
	s->n_closes = s->close_from = 0;
	s->err = 0;
	s->errpath[0] = 0;
	s->pending = 0;
	fr_extent_iter_init(&s->it, r->m, seg);
	s->more = true;
	return fr_aread_more(r, s);
}

/* The file system took the O_DIRECT open but not the read: the rest of
 * op, and of the file, buffered. */
static int read_buffered(struct fr_aread *r, struct fr_aread_seg *s,
			 uint32_t k)
{
	struct fr_aread_op *op = &s->ops[k];
	int fd = open_src(r, op->entry, false);

	r->nodirect[op->entry] = 1;
	if (fd < 0)
		return fd;
	if (defer_close(s, fd) < 0) {
		close(fd);
		return -ENOMEM;
	}
	op->fd = fd;
	op->direct = false;
	op->req = op->len;
	r->read_dio -= op->len - op->done;
	r->read_buf += op->len - op->done;
	return submit_rop(r, s, k);
}

bool fr_aread_on(struct fr_aread *r, struct fr_aread_seg *s, uint32_t k,
		 int res)
{
	struct fr_aread_op *op = &s->ops[k];

	if (res == -EINVAL && op->direct && !s->err) {
		res = read_buffered(r, s, k);
		if (res == 0)
			return false; /* still pending */
	}
	if (res <= 0 && !s->err) {
		seg_error(r, s, res < 0 ? res : FR_E_CHANGED, op->entry);
	} else if (res > 0) {
		op->done += (uint32_t)res;
		/* an O_DIRECT read that stops off a block ends at the
		 * file's end: before its manifest's size, it shrank */
		if (op->done < op->len && op->direct &&
		    op->done % FR_DIO_ALIGN && !s->err)
			seg_error(r, s, FR_E_CHANGED, op->entry);
		if (op->done < op->len && !s->err) {
			int rc = submit_rop(r, s, k);
			if (rc == 0)
				return false; /* still pending */
			seg_error(r, s, rc, op->entry);
		}
	}
	s->pending--;
	r->inflight--;
	return fr_aread_done(s);
}

int fr_aread_finish(struct fr_aread *r, struct fr_aread_seg *s)
{
	/* the kernel took its file references at submission */
	fr_ring_submit(r->ring);
	for (uint32_t i = 0; i < s->n_closes; i++)
		close(s->closes[i]);
	s->n_closes = 0;
	s->more = false;
	return s->err;
}
