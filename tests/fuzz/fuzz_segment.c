/*
 * fuzz_segment.c - what the receiver reads after HAVE, each message as
 * it is once opened: a frame's record (SEGMENT or SEGMENT_CONT: frame
 * header, offset, frame number, tags) and a whole frame's PAYLOAD, or a
 * streamed frame's PIECEs and FIN, and END; checked as serve.c checks
 * them (engine/core/wire.c) for the fixed package of fuzz_common.h, and each
 * frame whose payload is complete decoded (decompressed, against its
 * reference segment when it has one) and checked against the manifest.
 *
 * Input: one byte of switches (bit 0: answer as a ferry that refuses
 * streamed frames; bit 1: make each frame header's checksum right as it
 * arrives, so that the checks behind it are reached), then the opened
 * messages as a sender sends them (the tags are the sealing's, checked
 * before: here they are any bytes). A SEGMENT_CONT's kept bytes are
 * zeros.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSEG_MAX 8
static struct fr_manifest M;
static uint8_t raw[NSEG_MAX][FZ_SEG];
static struct fr_dctx D;
static uint8_t *pay, *dst;
static size_t pay_cap;

static void setup(void)
{
	if (fz_manifest(&M) < 0 || M.n_segments > NSEG_MAX ||
	    fr_dctx_init(&D) < 0)
		abort();
	for (uint32_t s = 0; s < M.n_segments; s++)
		fz_segment(&M, s, raw[s]);
	pay_cap = fr_seg_bound(FZ_SEG);
	pay = malloc(pay_cap);
	dst = malloc(FZ_SEG);
	if (!pay || !dst)
		abort();
}

struct in {
	const uint8_t *p;
	size_t left;
};

static const uint8_t *take(struct in *in, size_t n)
{
	const uint8_t *p = in->p;

	if (in->left < n)
		return NULL;
	in->p += n;
	in->left -= n;
	return p;
}

/* A frame's payload is all here: decode it as serve.c's worker does. */
static void decode(const struct fr_frame *f, uint8_t *taken)
{
	const uint8_t *out;
	const void *ref = NULL;
	size_t ref_len = 0;

	if (f->stored_len > pay_cap)
		abort();
	if (f->flags & FR_FRAME_REF) {
		ref = raw[f->ref];
		ref_len = M.segments[f->ref].length;
	}
	int r = fr_frame_decode_ref(&D, f, pay, dst, M.segments[f->index].hash,
				    ref, ref_len, &out);
	if (r == 0) {
		if (memcmp(out, raw[f->index], f->raw_len))
			abort();
	} else if (r != FR_E_DECOMPRESS && r != FR_E_HASH_MISMATCH) {
		abort();
	} else {
		taken[f->index] = 0; /* a negative ACK: it may come again */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	uint8_t taken[NSEG_MAX] = {0};
	/* a record: header, body, its tag, a whole frame's PAYLOAD header */
	static uint8_t rec[FR_MSG_HDR + FR_FRAME_HDR + 4 + 8 +
			   FR_CHUNKS_MAX * FR_SEAL_TAG + FR_SEAL_TAG +
			   FR_MSG_HDR];
	struct in in = {data, size};
	struct fr_frame f;
	bool stream = false;
	uint32_t pay_got = 0;

	if (!ready) {
		setup();
		ready = 1;
	}
	const uint8_t *sw = take(&in, 1);
	if (!sw)
		return 0;
	bool refuse = *sw & 1, fix = *sw & 2;
	for (;;) {
		const uint8_t *h = take(&in, FR_MSG_HDR);
		if (!h)
			return 0;
		uint32_t type = fr_get32(h), len = fr_get32(h + 4);
		if (stream) {
			int r = fr_piece_check(type, len, f.raw_len, pay_got);
			if (r == FR_MSG_PIECE) {
				const uint8_t *b = take(&in, len);
				if ((uint64_t)pay_got + len >
				    fr_seg_bound(f.raw_len))
					abort();
				if (!b)
					return 0;
				memcpy(pay + pay_got, b, len);
				pay_got += len;
			} else if (r == FR_MSG_FIN) {
				const uint8_t *b = take(&in, 4);
				uint32_t stored;
				if (!b || fr_fin_parse(b, pay_got, &stored) < 0)
					return 0;
				if (stored != pay_got || stored == 0)
					abort();
				f.stored_len = stored;
				stream = false;
				decode(&f, taken);
			} else if (r != FR_E_PROTOCOL) {
				abort();
			} else {
				return 0;
			}
			continue;
		}
		int r = fr_seg_rec_check(type, len, refuse);
		if (r == FR_MSG_END || r == FR_E_PROTOCOL)
			return 0;
		if (r != FR_MSG_SEGMENT && r != FR_MSG_SEGMENT_CONT)
			abort();
		bool cont = r == FR_MSG_SEGMENT_CONT;
		uint32_t base = FR_FRAME_HDR + (cont ? 4 : 0) + 8;
		if (len < base || len > sizeof(rec) - 2 * FR_MSG_HDR - FR_SEAL_TAG)
			abort();
		const uint8_t *b = take(&in, len);
		if (!b)
			return 0;
		memcpy(rec, h, FR_MSG_HDR);
		memcpy(rec + FR_MSG_HDR, b, len);
		memset(rec + FR_MSG_HDR + len, 0, FR_SEAL_TAG);
		if (fix)
			fr_put64(rec + FR_MSG_HDR + 56,
				 fr_hash64(rec + FR_MSG_HDR, 56));
		if (fr_frame_msg_parse(rec, !refuse, &M, &f) < 0)
			return 0;
		if (f.index >= M.n_segments ||
		    ((f.flags & FR_FRAME_REF) &&
		     (f.ref >= M.n_segments || f.ref == f.index)))
			abort();
		if (taken[f.index])
			return 0; /* sent again while being written */
		stream = f.flags & FR_FRAME_STREAM;
		if (!stream && len > base) { /* the PAYLOAD header next */
			const uint8_t *ph = take(&in, FR_MSG_HDR);
			if (!ph)
				return 0;
			memcpy(rec + FR_MSG_HDR + len + FR_SEAL_TAG, ph,
			       FR_MSG_HDR);
		}
		struct fr_frame_rec fr;
		if (fr_frame_rec_parse(rec, cont, &f, &M, &fr) < 0)
			return 0;
		uint32_t off = fr.off;
		if (f.raw_len != M.segments[f.index].length ||
		    (cont ? off == 0 || off >= fr_frame_payload_max(&f)
			  : off != 0) ||
		    len != base + fr.tags * FR_SEAL_TAG || fr.tags_at !=
		    FR_MSG_HDR + base)
			abort();
		if (!stream &&
		    (fr_get32(rec + FR_MSG_HDR + len + FR_SEAL_TAG) !=
			     FR_MSG_PAYLOAD ||
		     fr_get32(rec + FR_MSG_HDR + len + FR_SEAL_TAG + 4) !=
			     f.stored_len - off ||
		     fr.tags != fr_chunk_count(f.stored_len) -
				    off / fr_chunk_size(f.stored_len)))
			abort();
		taken[f.index] = 1;
		memset(pay, 0, off); /* the kept part */
		pay_got = off;
		if (stream)
			continue;
		const uint8_t *p = take(&in, f.stored_len - off);
		if (!p)
			return 0;
		memcpy(pay + off, p, f.stored_len - off);
		decode(&f, taken);
	}
}
