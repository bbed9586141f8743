/*
 * engine_wire.c - the transfer messages' checks (wire.c), each the check
 * lan.c's parse_acks or serve.c's receive loop makes today: what a sender
 * takes from the receiver (ACK, DONE, ERROR, a message cut short or too
 * long), and on the receiver where a frame is expected (SEGMENT,
 * SEGMENT_CONT, END), a frame header against the manifest, its lengths,
 * and a streamed frame's PIECE and FIN.
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

Test(wire, ack_whole_and_cut)
{
	uint8_t b[64];
	struct fr_ack_msg a;
	uint32_t n = ack(b, 3, FR_ACK_NOREF, 250);

	cr_assert_eq(n, 20);
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), 20);
	cr_assert_eq(a.kind, FR_ACKMSG_ACK);
	cr_assert_eq(a.index, 3);
	cr_assert_eq(a.status, FR_ACK_NOREF);
	cr_assert_eq(a.stall, 250);
	/* not all here yet: wait for more, whatever is cut */
	for (uint32_t k = 0; k < n; k++)
		cr_assert_eq(fr_ack_parse(b, k, 4096, 4, &a), 0, "at %u", k);
	/* two back to back: the first, then the second */
	n += ack(b + n, 0, FR_ACK_DURABLE, 0);
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), 20);
	cr_assert_eq(fr_ack_parse(b + 20, n - 20, 4096, 4, &a), 20);
	cr_assert_eq(a.index, 0);
}

Test(wire, ack_refused)
{
	uint8_t b[64];
	struct fr_ack_msg a;
	uint32_t n = ack(b, 4, FR_ACK_DURABLE, 0);

	/* a segment beyond the package */
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), FR_E_BAD_INDEX);
	cr_assert_eq(a.index, 4);
	/* an ACK whose body is not 12 bytes */
	n = msg(b, FR_MSG_ACK, 11, NULL);
	memset(b + 8, 0, 11);
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), FR_E_PROTOCOL);
	n = msg(b, FR_MSG_ACK, 13, NULL);
	memset(b + 8, 0, 13);
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), FR_E_PROTOCOL);
	/* a type a receiver does not send in a transfer */
	n = msg(b, FR_MSG_HAVE, 0, NULL);
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), FR_E_PROTOCOL);
	cr_assert_eq(a.type, FR_MSG_HAVE);
	/* an ERROR too short for its code */
	n = msg(b, FR_MSG_ERROR, 3, "abc");
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), FR_E_PROTOCOL);
}

Test(wire, ack_too_large)
{
	uint8_t b[FR_MSG_HDR];
	struct fr_ack_msg a;

	/* the largest body the buffer holds: wait for it */
	msg(b, FR_MSG_DONE, 4096 - FR_MSG_HDR, NULL);
	cr_assert_eq(fr_ack_parse(b, sizeof(b), 4096, 4, &a), 0);
	/* one more byte could never arrive whole: refused at once */
	msg(b, FR_MSG_DONE, 4096 - FR_MSG_HDR + 1, NULL);
	cr_assert_eq(fr_ack_parse(b, sizeof(b), 4096, 4, &a), FR_E_TOO_LARGE);
	cr_assert_eq(a.len, 4096 - FR_MSG_HDR + 1);
	msg(b, FR_MSG_ACK, UINT32_MAX, NULL);
	cr_assert_eq(fr_ack_parse(b, sizeof(b), 4096, 4, &a), FR_E_TOO_LARGE);
}

Test(wire, done_and_error)
{
	uint8_t b[1024], body[600];
	struct fr_ack_msg a;
	uint32_t n = msg(b, FR_MSG_DONE, 3, "xyz");

	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), 11);
	cr_assert_eq(a.kind, FR_ACKMSG_DONE);
	fr_put32(body, (uint32_t)-ENOSPC);
	memcpy(body + 4, "no room", 7);
	n = msg(b, FR_MSG_ERROR, 11, body);
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), 19);
	cr_assert_eq(a.kind, FR_ACKMSG_ERROR);
	cr_assert_eq(a.code, -ENOSPC);
	cr_assert_str_eq(a.text, "no room");
	/* a long text is cut to 399 bytes */
	memset(body + 4, 'x', sizeof(body) - 4);
	n = msg(b, FR_MSG_ERROR, sizeof(body), body);
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), (int)n);
	cr_assert_eq(strlen(a.text), 399);
	/* an empty text */
	n = msg(b, FR_MSG_ERROR, 4, body);
	cr_assert_eq(fr_ack_parse(b, n, 4096, 4, &a), 12);
	cr_assert_str_eq(a.text, "");
}

/* ---- the receiver, where a frame is expected --------------------------- */

Test(wire, seg_msg)
{
	uint32_t max = FR_FRAME_HDR + 4 + (uint32_t)fr_seg_bound(FZ_SEG);

	cr_assert_eq(fr_seg_msg_check(FR_MSG_END, 0, FZ_SEG, false),
		     FR_MSG_END);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_END, 1, FZ_SEG, false),
		     FR_E_PROTOCOL);
	/* a streamed frame's header alone */
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT, 64, FZ_SEG, false),
		     FR_MSG_SEGMENT);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT, 63, FZ_SEG, false),
		     FR_E_PROTOCOL);
	/* a ferry that refuses streams wants a payload */
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT, 64, FZ_SEG, true),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT, 65, FZ_SEG, true),
		     FR_MSG_SEGMENT);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT_CONT, 67, FZ_SEG, false),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT_CONT, 68, FZ_SEG, false),
		     FR_MSG_SEGMENT_CONT);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT_CONT, 69, FZ_SEG, true),
		     FR_MSG_SEGMENT_CONT);
	/* at most a header, an offset and the segment's zstd bound */
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT, max, FZ_SEG, false),
		     FR_MSG_SEGMENT);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_SEGMENT, max + 1, FZ_SEG, false),
		     FR_E_PROTOCOL);
	cr_assert_eq(
	    fr_seg_msg_check(FR_MSG_SEGMENT, UINT32_MAX, FZ_SEG, false),
	    FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_PIECE, 100, FZ_SEG, false),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_seg_msg_check(FR_MSG_ACK, 100, FZ_SEG, false),
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

	memcpy(f.pkg, M.id, FR_HASH_LEN);
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

Test(wire, lengths, .init = setup, .fini = teardown)
{
	uint8_t hdr[FR_MSG_HDR + FR_FRAME_HDR + 4];
	struct fr_frame f = good(3), g;
	uint32_t off = 99;

	/* SEGMENT: header and the whole payload */
	frame_msg(hdr, &f, false, 0, 64 + f.stored_len);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), 0);
	cr_assert_eq(fr_cont_parse(hdr, false, &g, &M, &off), 0);
	cr_assert_eq(off, 0);
	frame_msg(hdr, &f, false, 0, 64 + f.stored_len - 1);
	cr_assert_eq(fr_cont_parse(hdr, false, &g, &M, &off), FR_E_RAW_LENGTH);
	/* a raw length that is not the manifest's */
	f.raw_len = f.stored_len = 904 - 1;
	frame_msg(hdr, &f, false, 0, 64 + f.stored_len);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), 0);
	cr_assert_eq(fr_cont_parse(hdr, false, &g, &M, &off), FR_E_RAW_LENGTH);
	/* SEGMENT_CONT: 0 < offset < stored_len, and the rest */
	f = good(3);
	frame_msg(hdr, &f, true, 10, 68 + f.stored_len - 10);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), 0);
	cr_assert_eq(fr_cont_parse(hdr, true, &g, &M, &off), 0);
	cr_assert_eq(off, 10);
	frame_msg(hdr, &f, true, 10, 68 + f.stored_len - 9);
	cr_assert_eq(fr_cont_parse(hdr, true, &g, &M, &off), FR_E_RAW_LENGTH);
	frame_msg(hdr, &f, true, 0, 68 + f.stored_len);
	cr_assert_eq(fr_cont_parse(hdr, true, &g, &M, &off), FR_E_RAW_LENGTH);
	frame_msg(hdr, &f, true, f.stored_len, 68);
	cr_assert_eq(fr_cont_parse(hdr, true, &g, &M, &off), FR_E_RAW_LENGTH);
	frame_msg(hdr, &f, true, f.stored_len - 1, 69);
	cr_assert_eq(fr_cont_parse(hdr, true, &g, &M, &off), 0);
	/* a streamed frame: header (and offset) alone, offset within the
	 * zstd bound */
	uint32_t bound = (uint32_t)fr_seg_bound(f.raw_len);
	f.flags = FR_FRAME_ZSTD | FR_FRAME_STREAM;
	f.stored_len = 0;
	frame_msg(hdr, &f, false, 0, 64);
	cr_assert_eq(fr_frame_msg_parse(hdr, true, &M, &g), 0);
	cr_assert_eq(fr_cont_parse(hdr, false, &g, &M, &off), 0);
	frame_msg(hdr, &f, false, 0, 65);
	cr_assert_eq(fr_cont_parse(hdr, false, &g, &M, &off), FR_E_RAW_LENGTH);
	frame_msg(hdr, &f, true, bound - 1, 68);
	cr_assert_eq(fr_cont_parse(hdr, true, &g, &M, &off), 0);
	cr_assert_eq(off, bound - 1);
	frame_msg(hdr, &f, true, bound, 68);
	cr_assert_eq(fr_cont_parse(hdr, true, &g, &M, &off), FR_E_RAW_LENGTH);
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
