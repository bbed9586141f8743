/*
 * seg.c - zstd compression of one segment payload.
 *
 * The only file that includes zstd.h. Contexts are made once per worker
 * and reused; nothing here allocates per segment. Decompression treats the
 * payload as hostile: the output buffer is exactly raw_len bytes, so a
 * frame that claims (or expands to) more can never write past it, and the
 * payload must be exactly one zstd frame with no bytes left over.
 */
#include <errno.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "fr_codec.h"

size_t fr_seg_bound(size_t raw_len)
{
	return ZSTD_compressBound(raw_len);
}

int fr_cctx_init(struct fr_cctx *c)
{
	c->zc = ZSTD_createCCtx();
	return c->zc ? 0 : -ENOMEM;
}

void fr_cctx_fini(struct fr_cctx *c)
{
	ZSTD_freeCCtx(c->zc); /* accepts NULL */
	c->zc = NULL;
}

int fr_dctx_init(struct fr_dctx *d)
{
	d->zd = ZSTD_createDCtx();
	return d->zd ? 0 : -ENOMEM;
}

void fr_dctx_fini(struct fr_dctx *d)
{
	ZSTD_freeDCtx(d->zd);
	d->zd = NULL;
}

/* Payloads at or above 97% of the input are not worth a decompression. */
static size_t fr_worth_limit(size_t len)
{
	return len / 100 * 97 + len % 100 * 97 / 100;
}

/* A compressor's result r for len bytes into cap: its size, 0 when the
 * segment should go raw, or a negative code. */
static ssize_t compressed(size_t r, size_t cap, size_t len)
{
	size_t limit = fr_worth_limit(len);

	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) != ZSTD_error_dstSize_tooSmall)
			return FR_E_COMPRESS;
		/*
		 * Did not fit: if cap already allowed everything worth
		 * sending, the output was not worth it; otherwise the caller's
		 * buffer is too small to tell.
		 */
		return cap >= limit ? 0 : -ENOBUFS;
	}
	return r >= limit ? 0 : (ssize_t)r;
}

/*
 * A context's memory at the strongest levels is its match finder's
 * tables: 2^chainLog and 2^hashLog entries of 4 bytes, 81 MiB per worker
 * at level 19 for an 8 MiB segment (zstd 1.5). From level 12 on both are
 * 2^22 here or more; capped at 2^22 a context stays under 34 MiB at any
 * level (a worker per core on a slow line chooses those levels), for a
 * ratio within a percent. The frames stay deterministic: the same level
 * gives the same bytes.
 */
#define TABLES_CAPPED_FROM 12
#define TABLE_LOG_MAX 22

static bool tables_capped(ZSTD_CCtx *z, int level)
{
	return level < TABLES_CAPPED_FROM ||
	       (!ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_chainLog,
						     TABLE_LOG_MAX)) &&
		!ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_hashLog,
						     TABLE_LOG_MAX)));
}

static int setup(struct fr_cctx *c, size_t len, int level, const void *ref,
		 size_t ref_len);

ssize_t fr_seg_compress(struct fr_cctx *c, void *dst, size_t cap,
			const void *src, size_t len, int level)
{
	if (level < 1 || level > ZSTD_maxCLevel())
		return -EINVAL;
	if (len == 0)
		return 0;
	if (level < TABLES_CAPPED_FROM)
		return compressed(
		    ZSTD_compressCCtx(c->zc, dst, cap, src, len, level), cap,
		    len);
	int rc = setup(c, len, level, NULL, 0);
	if (rc < 0)
		return rc;
	return compressed(ZSTD_compress2(c->zc, dst, cap, src, len), cap, len);
}

/*
 * Parameters for one frame: level, the content size, and a prefix (another
 * segment's raw bytes) with a window that reaches all of it, within what
 * every decoder accepts by default (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 27).
 */
static int setup(struct fr_cctx *c, size_t len, int level, const void *ref,
		 size_t ref_len)
{
	ZSTD_CCtx *z = c->zc;

	if (level < 1 || level > ZSTD_maxCLevel() || len == 0)
		return -EINVAL;
	if (ZSTD_isError(ZSTD_CCtx_reset(z, ZSTD_reset_session_and_parameters)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel,
						level)) ||
	    !tables_capped(z, level) ||
	    ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(z, len)))
		return FR_E_COMPRESS;
	if (!ref || !ref_len)
		return 0;
	int wl = 10;
	while (wl < 27 && ((size_t)1 << wl) < ref_len + len)
		wl++;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, wl)) ||
	    ZSTD_isError(ZSTD_CCtx_refPrefix(z, ref, ref_len)))
		return FR_E_COMPRESS;
	return 0;
}

ssize_t fr_seg_compress_ref(struct fr_cctx *c, void *dst, size_t cap,
			    const void *src, size_t len, int level,
			    const void *ref, size_t ref_len)
{
	if (!ref)
		return fr_seg_compress(c, dst, cap, src, len, level);
	if (len == 0)
		return level < 1 || level > ZSTD_maxCLevel() ? -EINVAL : 0;
	int rc = setup(c, len, level, ref, ref_len);
	if (rc < 0)
		return rc;
	return compressed(ZSTD_compress2(c->zc, dst, cap, src, len), cap, len);
}

int fr_seg_stream_begin(struct fr_cctx *c, size_t len, int level,
			const void *ref, size_t ref_len)
{
	return setup(c, len, level, ref, ref_len);
}

ssize_t fr_seg_stream_next(struct fr_cctx *c, const void *src, size_t len,
			   size_t *in_pos, void *dst, size_t cap, bool *done)
{
	ZSTD_inBuffer in = {src, len, *in_pos};
	ZSTD_outBuffer out = {dst, cap, 0};

	/* ZSTD_e_end blocks until the output is full or the frame ends */
	size_t r = ZSTD_compressStream2(c->zc, &out, &in, ZSTD_e_end);
	if (ZSTD_isError(r))
		return FR_E_COMPRESS;
	*in_pos = in.pos;
	*done = r == 0;
	return (ssize_t)out.pos;
}

int fr_seg_decompress(struct fr_dctx *d, void *dst, size_t raw_len,
		      const void *src, size_t stored_len)
{
	return fr_seg_decompress_ref(d, dst, raw_len, src, stored_len, NULL, 0);
}

int fr_seg_decompress_ref(struct fr_dctx *d, void *dst, size_t raw_len,
			  const void *src, size_t stored_len, const void *ref,
			  size_t ref_len)
{
	unsigned long long declared;
	size_t r;

	if (raw_len == 0 || stored_len == 0)
		return FR_E_DECOMPRESS;
	/* Exactly one frame, nothing after it (skippable frames included). */
	r = ZSTD_findFrameCompressedSize(src, stored_len);
	if (ZSTD_isError(r) || r != stored_len)
		return FR_E_DECOMPRESS;
	declared = ZSTD_getFrameContentSize(src, stored_len);
	if (declared == ZSTD_CONTENTSIZE_ERROR)
		return FR_E_DECOMPRESS;
	if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != raw_len)
		return FR_E_DECOMPRESS;
	/* The capacity is the bound: zstd stops rather than write past it.
	 * A prefix serves this frame only, and is dropped after it either
	 * way. */
	if (ref && ZSTD_isError(ZSTD_DCtx_refPrefix(d->zd, ref, ref_len)))
		return FR_E_DECOMPRESS;
	r = ZSTD_decompressDCtx(d->zd, dst, raw_len, src, stored_len);
	if (ref)
		ZSTD_DCtx_refPrefix(d->zd, NULL, 0);
	if (ZSTD_isError(r) || r != raw_len)
		return FR_E_DECOMPRESS;
	return 0;
}

int fr_decompress_alloc(struct fr_dctx *d, const void *src, size_t len,
			size_t max, uint8_t **out, size_t *out_len)
{
	size_t r = ZSTD_findFrameCompressedSize(src, len);
	size_t cap = 0, n = 0;
	uint8_t *b = NULL;
	ZSTD_inBuffer in = {src, len, 0};

	if (ZSTD_isError(r) || r != len || max == 0)
		return FR_E_DECOMPRESS;
	ZSTD_DCtx_reset(d->zd, ZSTD_reset_session_only);
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				free(b);
				return FR_E_TOO_LARGE;
			}
			size_t nc = cap ? cap * 2 : 64 * 1024;
			if (nc > max)
				nc = max;
			uint8_t *nb = realloc(b, nc);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap = nc;
		}
		ZSTD_outBuffer o = {b, cap, n};
		size_t ret = ZSTD_decompressStream(d->zd, &o, &in);
		if (ZSTD_isError(ret)) {
			free(b);
			return FR_E_DECOMPRESS;
		}
		bool progress = o.pos > n;
		n = o.pos;
		if (ret == 0)
			break; /* the frame is complete */
		if (in.pos == in.size && !progress && n < cap) {
			free(b); /* cut short */
			return FR_E_DECOMPRESS;
		}
	}
	if (in.pos != in.size || n == 0) {
		free(b);
		return FR_E_DECOMPRESS;
	}
	*out = b;
	*out_len = n;
	return 0;
}
