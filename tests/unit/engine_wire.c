/*
 * engine_wire.c - the transfer messages' checks (wire.c), each the check
 * lan.c's parse_acks or serve.c's receive loop makes: what a sender takes
 * from the receiver once opened (ACK, DONE, ERROR), and on the receiver
 * where a frame's record is expected (SEGMENT, SEGMENT_CONT, END), a
 * frame header against the manifest, its record (offset, number, tags,
 * the PAYLOAD after it), and a streamed frame's PIECE and FIN.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "../fuzz/fuzz_common.h"
#include "fr_internal.h"

static struct fr_manifest M;

static void setup(void)
{
	cr_assert_eq(fz_manifest(&M), 0);
	cr_assert_eq(M.n_segments, 4);
}

static void teardown(void)
{
	fr_manifest_fini(&M);
}

/* ---- the receiver's messages to a sender ------------------------------- */

static uint32_t msg(uint8_t *b, uint32_t type, uint32_t len, const void *body)
{
	fr_put32(b, type);
	fr_put32(b + 4, len);
	if (body)
		memcpy(b + FR_MSG_HDR, body, len);
	return FR_MSG_HDR + len;
}

static uint32_t ack(uint8_t *b, uint32_t idx, uint32_t st, uint32_t stall)
{
	uint8_t body[12];

	fr_put32(body, idx);
	fr_put32(body + 4, st);
	fr_put32(body + 8, stall);
	return msg(b, FR_MSG_ACK, 12, body);
}

Test(wire, ack)
{
	uint8_t b[64];
	struct fr_ack_msg a;

	ack(b, 3, FR_ACK_NOREF, 250);
	cr_assert_eq(fr_ack_decode(FR_MSG_ACK, b + 8, 12, 4, &a), 0);
	cr_assert_eq(a.kind, FR_ACKMSG_ACK);
	cr_assert_eq(a.index, 3);
	cr_assert_eq(a.status, FR_ACK_NOREF);
	cr_assert_eq(a.stall, 250);
}

Test(wire, ack_refused)
{
	uint8_t b[64] = {0};
	struct fr_ack_msg a;

	/* a segment beyond the package */
	ack(b, 4, FR_ACK_DURABLE, 0);
	cr_assert_eq(fr_ack_decode(FR_MSG_ACK, b + 8, 12, 4, &a),
		     FR_E_BAD_INDEX);
	cr_assert_eq(a.index, 4);
	/* an ACK whose body is not 12 bytes */
	cr_assert_eq(fr_ack_decode(FR_MSG_ACK, b + 8, 11, 4, &a), FR_E_PROTOCOL);
	cr_assert_eq(fr_ack_decode(FR_MSG_ACK, b + 8, 13, 4, &a), FR_E_PROTOCOL);
	/* a type a receiver does not send in a transfer */
	cr_assert_eq(fr_ack_decode(FR_MSG_HAVE, b, 0, 4, &a), FR_E_PROTOCOL);
	cr_assert_eq(a.type, FR_MSG_HAVE);
	/* an ERROR too short for its code */
	cr_assert_eq(fr_ack_decode(FR_MSG_ERROR, (const uint8_t *)"abc", 3, 4,
				   &a),
		     FR_E_PROTOCOL);
}

Test(wire, done_and_error)
{
	uint8_t body[600];
	struct fr_ack_msg a;

	cr_assert_eq(fr_ack_decode(FR_MSG_DONE, (const uint8_t *)"xyz", 3, 4,
				   &a),
		     0);
	cr_assert_eq(a.kind, FR_ACKMSG_DONE);
	fr_put32(body, (uint32_t)-ENOSPC);
	memcpy(body + 4, "no room", 7);
	cr_assert_eq(fr_ack_decode(FR_MSG_ERROR, body, 11, 4, &a), 0);
	cr_assert_eq(a.kind, FR_ACKMSG_ERROR);
	cr_assert_eq(a.code, -ENOSPC);
	cr_assert_str_eq(a.text, "no room");
	/* a long text is cut to 399 bytes */
	memset(body + 4, 'x', sizeof(body) - 4);
	cr_assert_eq(fr_ack_decode(FR_MSG_ERROR, body, sizeof(body), 4, &a), 0);
	cr_assert_eq(strlen(a.text), 399);
	/* an empty text */
	cr_assert_eq(fr_ack_decode(FR_MSG_ERROR, body, 4, 4, &a), 0);
	cr_assert_str_eq(a.text, "");
}

/* ---- the receiver, where a frame is expected --------------------------- */

Test(wire, seg_rec)
{
	uint32_t max = 64 + 4 + 8 + FR_CHUNKS_MAX * FR_SEAL_TAG;

	cr_assert_eq(fr_seg_rec_check(FR_MSG_END, 0, false), FR_MSG_END);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_END, 1, false), FR_E_PROTOCOL);
	/* a streamed frame's record: header and number alone */
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT, 72, false),
		     FR_MSG_SEGMENT);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT, 71, false),
		     FR_E_PROTOCOL);
	/* a ferry that refuses streams wants tags (a whole frame) */
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT, 72, true), FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT, 88, true), FR_MSG_SEGMENT);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT_CONT, 75, false),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT_CONT, 76, false),
		     FR_MSG_SEGMENT_CONT);
	/* at most a header, an offset, a number and 128 tags */
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT_CONT, max, false),
		     FR_MSG_SEGMENT_CONT);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT_CONT, max + 1, false),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT, max - 4 + 1, false),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_SEGMENT, UINT32_MAX, false),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_PIECE, 100, false), FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_rec_check(FR_MSG_PAYLOAD, 100, false),
		     FR_E_PROTOCOL);
}

/* hdr: message header, frame header of f, offset */
static void frame_msg(uint8_t *hdr, const struct fr_frame *f, bool cont,
		      uint32_t off, uint32_t len)
{
	fr_put32(hdr, cont ? FR_MSG_SEGMENT_CONT : FR_MSG_SEGMENT);
	fr_put32(hdr + 4, len);
	fr_frame_pack(hdr + FR_MSG_HDR, f);
	fr_put32(hdr + FR_MSG_HDR + FR_FRAME_HDR, off);
}

static struct fr_frame good(uint32_t seg)
{
	struct fr_frame f = {0};

	memcpy(f.pkg, M.lid, FR_HASH_LEN);
	f.index = seg;
	f.raw_len = f.stored_len = M.segments[seg].length;
	memcpy(f.hash, M.segments[seg].hash, FR_HASH_LEN);
	return f;
}

Test(wire, frame_header, .init = setup, .fini = teardown)
{
	uint8_t hdr[FR_MSG_HDR + FR_FRAME_HDR + 4];
	struct fr_frame f = good(1), g;

	frame_msg(hdr, &f, false, 0, 64 + f.stored_len);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), 0);
	cr_assert_eq(g.index, 1);
	/* another package */
	f.pkg[0] ^= 1;
	frame_msg(hdr, &f, false, 0, 64 + f.stored_len);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), FR_E_WRONG_PACKAGE);
	/* beyond the package */
	f = good(1);
	f.index = 4;
	frame_msg(hdr, &f, false, 0, 64 + f.stored_len);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), FR_E_BAD_INDEX);
	/* a damaged header */
	f = good(1);
	frame_msg(hdr, &f, false, 0, 64 + f.stored_len);
	hdr[FR_MSG_HDR + 30] ^= 1;
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), FR_E_HDR_CHECKSUM);
	/* a reference: inside the package, not itself */
	f.flags = FR_FRAME_ZSTD | FR_FRAME_REF;
	f.stored_len = 100;
	f.ref = 0;
	frame_msg(hdr, &f, false, 0, 164);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), 0);
	cr_assert_eq(g.ref, 0);
	/* ... which a ferry that refuses streams does not know */
	cr_assert_eq(fr_frame_msg_parse(hdr, false, &M, &g), FR_E_BAD_FLAGS);
	f.ref = 1;
	frame_msg(hdr, &f, false, 0, 164);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), FR_E_BAD_INDEX);
	f.ref = 4;
	frame_msg(hdr, &f, false, 0, 164);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), FR_E_BAD_INDEX);
}

/* A frame's record as opened: message header, frame header, offset
 * (SEGMENT_CONT), number, ntags tags, the record's tag, then the PAYLOAD
 * header saying plen. */
static void frame_rec(uint8_t *r, const struct fr_frame *f, bool cont,
		      uint32_t off, uint32_t ntags, uint32_t plen)
{
	uint32_t body = 64 + (cont ? 4 : 0) + 8 + ntags * FR_SEAL_TAG;
	uint8_t *p = r + FR_MSG_HDR + FR_FRAME_HDR;

	fr_put32(r, cont ? FR_MSG_SEGMENT_CONT : FR_MSG_SEGMENT);
	fr_put32(r + 4, body);
	fr_frame_pack(r + FR_MSG_HDR, f);
	if (cont) {
		fr_put32(p, off);
		p += 4;
	}
	fr_put64(p, 77);
	memset(p + 8, 0xab, ntags * FR_SEAL_TAG);
	uint8_t *ph = r + FR_MSG_HDR + body + FR_SEAL_TAG;
	fr_put32(ph, FR_MSG_PAYLOAD);
	fr_put32(ph + 4, plen);
}

Test(wire, record_lengths, .init = setup, .fini = teardown)
{
	static uint8_t r[FR_MSG_HDR + 76 + FR_CHUNKS_MAX * FR_SEAL_TAG +
			 FR_SEAL_TAG + FR_MSG_HDR];
	struct fr_frame f = good(3), g;
	struct fr_frame_rec fr;

	/* SEGMENT: header, number, one tag (a small payload), PAYLOAD */
	frame_rec(r, &f, false, 0, 1, f.stored_len);
	cr_assert_eq(fr_frame_msg_parse(r, true, &M, &g), 0);
	cr_assert_eq(fr_frame_rec_parse(r, false, &g, &M, &fr), 0);
	cr_assert_eq(fr.off, 0);
	cr_assert_eq(fr.no, 77);
	cr_assert_eq(fr.tags, 1);
	cr_assert_eq(fr.tags_at, FR_MSG_HDR + 72);
	/* a tag too many, or none */
	frame_rec(r, &f, false, 0, 2, f.stored_len);
	cr_assert_eq(fr_frame_rec_parse(r, false, &g, &M, &fr), FR_E_RAW_LENGTH);
	frame_rec(r, &f, false, 0, 0, f.stored_len);
	cr_assert_eq(fr_frame_rec_parse(r, false, &g, &M, &fr), FR_E_RAW_LENGTH);
	/* the PAYLOAD header must say what the record says */
	frame_rec(r, &f, false, 0, 1, f.stored_len - 1);
	cr_assert_eq(fr_frame_rec_parse(r, false, &g, &M, &fr), FR_E_SEALED);
	frame_rec(r, &f, false, 0, 1, f.stored_len);
	fr_put32(r + FR_MSG_HDR + 88 + FR_SEAL_TAG, FR_MSG_PIECE);
	cr_assert_eq(fr_frame_rec_parse(r, false, &g, &M, &fr), FR_E_SEALED);
	/* a raw length that is not the manifest's */
	f.raw_len = f.stored_len = 904 - 1;
	frame_rec(r, &f, false, 0, 1, f.stored_len);
	cr_assert_eq(fr_frame_msg_parse(r, true, &M, &g), 0);
	cr_assert_eq(fr_frame_rec_parse(r, false, &g, &M, &fr), FR_E_RAW_LENGTH);
	/* SEGMENT_CONT of a whole frame: at a chunk's start, within it */
	f = good(3);
	f.flags = FR_FRAME_ZSTD;
	f.stored_len = 3 * FR_CHUNK_MIN + 5; /* as if: 4 chunks */
	f.raw_len = M.segments[3].length;
	/* (larger than these 4 KiB segments allow: the frame as parsed,
	 * fr_frame_msg_parse would refuse its stored length) */
	frame_rec(r, &f, true, FR_CHUNK_MIN, 3, f.stored_len - FR_CHUNK_MIN);
	cr_assert_eq(fr_frame_rec_parse(r, true, &f, &M, &fr), 0);
	cr_assert_eq(fr.off, FR_CHUNK_MIN);
	cr_assert_eq(fr.tags, 3);
	frame_rec(r, &f, true, FR_CHUNK_MIN + 1, 3, f.stored_len - FR_CHUNK_MIN - 1);
	cr_assert_eq(fr_frame_rec_parse(r, true, &f, &M, &fr), FR_E_RAW_LENGTH);
	frame_rec(r, &f, true, 0, 4, f.stored_len);
	cr_assert_eq(fr_frame_rec_parse(r, true, &f, &M, &fr), FR_E_RAW_LENGTH);
	/* a streamed frame: header, offset within the zstd bound, number */
	uint32_t bound = (uint32_t)fr_seg_bound(f.raw_len);
	f.flags = FR_FRAME_ZSTD | FR_FRAME_STREAM;
	f.stored_len = 0;
	frame_rec(r, &f, false, 0, 0, 0);
	cr_assert_eq(fr_frame_msg_parse(r, true, &M, &g), 0);
	cr_assert_eq(fr_frame_rec_parse(r, false, &g, &M, &fr), 0);
	frame_rec(r, &f, false, 0, 1, 0);
	cr_assert_eq(fr_frame_rec_parse(r, false, &g, &M, &fr), FR_E_RAW_LENGTH);
	frame_rec(r, &f, true, bound - 1, 0, 0);
	cr_assert_eq(fr_frame_rec_parse(r, true, &g, &M, &fr), 0);
	cr_assert_eq(fr.off, bound - 1);
	frame_rec(r, &f, true, bound, 0, 0);
	cr_assert_eq(fr_frame_rec_parse(r, true, &g, &M, &fr), FR_E_RAW_LENGTH);
	cr_assert_eq(fr_frame_payload_max(&g), bound);
}

Test(wire, piece_and_fin)
{
	uint32_t bound = (uint32_t)fr_seg_bound(FZ_SEG);
	uint8_t b[4];
	uint32_t stored = 0;

	cr_assert_eq(fr_piece_check(FR_MSG_PIECE, 1, FZ_SEG, 0), FR_MSG_PIECE);
	cr_assert_eq(fr_piece_check(FR_MSG_PIECE, 0, FZ_SEG, 0), FR_E_PROTOCOL);
	cr_assert_eq(fr_piece_check(FR_MSG_PIECE, bound, FZ_SEG, 0),
		     FR_MSG_PIECE);
	cr_assert_eq(fr_piece_check(FR_MSG_PIECE, bound + 1, FZ_SEG, 0),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_piece_check(FR_MSG_PIECE, 10, FZ_SEG, bound - 10),
		     FR_MSG_PIECE);
	cr_assert_eq(fr_piece_check(FR_MSG_PIECE, 11, FZ_SEG, bound - 10),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_piece_check(FR_MSG_PIECE, 1, FZ_SEG, bound),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_piece_check(FR_MSG_FIN, 4, FZ_SEG, 7), FR_MSG_FIN);
	cr_assert_eq(fr_piece_check(FR_MSG_FIN, 5, FZ_SEG, 7), FR_E_PROTOCOL);
	cr_assert_eq(fr_piece_check(FR_MSG_SEGMENT, 64, FZ_SEG, 7),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_piece_check(FR_MSG_END, 0, FZ_SEG, 7), FR_E_PROTOCOL);

	fr_put32(b, 7);
	cr_assert_eq(fr_fin_parse(b, 7, &stored), 0);
	cr_assert_eq(stored, 7);
	cr_assert_eq(fr_fin_parse(b, 8, &stored), FR_E_STORED_LENGTH);
	cr_assert_eq(fr_fin_parse(b, 6, &stored), FR_E_STORED_LENGTH);
	fr_put32(b, 0);
	cr_assert_eq(fr_fin_parse(b, 0, &stored), FR_E_STORED_LENGTH);
}
