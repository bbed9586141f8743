/*
 * wire.c - the checks of the transfer's messages as pure functions of
 * their bytes, so that they can be unit-tested and fuzzed on their own
 * (tests/fuzz/): the receiver's messages to a sender (ACK, DONE, ERROR:
 * what lan.c's parse_acks takes) and, on the receiver, the messages
 * where a frame is expected (SEGMENT, SEGMENT_CONT, END), a frame's
 * header against the manifest, and a streamed frame's PIECE and FIN
 * (serve.c's on_recv, on_frame_header, stream_msg and stream_end).
 * Each reproduces those checks exactly (docs/PROTOCOL.md); nothing here
 * keeps state or does I/O: the caller keeps what was received and what
 * is held.
 */
#include <string.h>

#include "fr_internal.h"

int fr_ack_parse(const uint8_t *buf, uint32_t avail, uint32_t cap,
		 uint32_t n_segments, struct fr_ack_msg *out)
{
	memset(out, 0, sizeof(*out));
	if (avail < FR_MSG_HDR)
		return 0;
	out->type = fr_get32(buf);
	out->len = fr_get32(buf + 4);
	/* a body the buffer could never hold: the stream is not in step */
	if (cap < FR_MSG_HDR || out->len > cap - FR_MSG_HDR)
		return FR_E_TOO_LARGE;
	if (avail - FR_MSG_HDR < out->len)
		return 0;
	const uint8_t *b = buf + FR_MSG_HDR;
	if (out->type == FR_MSG_ACK && out->len == 12) {
		out->kind = FR_ACKMSG_ACK;
		out->index = fr_get32(b);
		out->status = fr_get32(b + 4);
		out->stall = fr_get32(b + 8);
		if (out->index >= n_segments)
			return FR_E_BAD_INDEX;
	} else if (out->type == FR_MSG_DONE) {
		out->kind = FR_ACKMSG_DONE; /* a body, if any, says nothing */
	} else if (out->type == FR_MSG_ERROR && out->len >= 4) {
		size_t tl = out->len - 4 < sizeof(out->text) - 1
				? out->len - 4
				: sizeof(out->text) - 1;
		out->kind = FR_ACKMSG_ERROR;
		out->code = (int)fr_get32(b);
		memcpy(out->text, b + 4, tl);
		out->text[tl] = '\0';
	} else {
		return FR_E_PROTOCOL;
	}
	return (int)(FR_MSG_HDR + out->len);
}

int fr_seg_msg_check(uint32_t type, uint32_t len, uint32_t seg_size,
		     bool refuse_stream)
{
	if (type == FR_MSG_END && len == 0)
		return FR_MSG_END;
	bool cont = type == FR_MSG_SEGMENT_CONT;
	/* a streamed frame's message is its header alone; a ferry from
	 * before them (FERRY_REFUSE_STREAM) wanted a payload */
	uint32_t min =
	    FR_FRAME_HDR + (cont ? 4u : 0u) + (refuse_stream ? 1u : 0u);
	if ((type != FR_MSG_SEGMENT && !cont) || len < min ||
	    len > FR_FRAME_HDR + 4 + fr_seg_bound(seg_size))
		return FR_E_PROTOCOL;
	return (int)type;
}

uint32_t fr_frame_payload_max(const struct fr_frame *f)
{
	return (f->flags & FR_FRAME_STREAM) ? (uint32_t)fr_seg_bound(f->raw_len)
					    : f->stored_len;
}

int fr_frame_msg_parse(const uint8_t *hdr, bool wire,
		       const struct fr_manifest *m, struct fr_frame *f)
{
	int r = wire ? fr_frame_unpack_wire(f, hdr + FR_MSG_HDR)
		     : fr_frame_unpack(f, hdr + FR_MSG_HDR);

	if (r < 0)
		return r;
	if (memcmp(f->pkg, m->id, FR_HASH_LEN))
		return FR_E_WRONG_PACKAGE;
	if (f->index >= m->n_segments)
		return FR_E_BAD_INDEX;
	if ((f->flags & FR_FRAME_REF) &&
	    (f->ref >= m->n_segments || f->ref == f->index))
		return FR_E_BAD_INDEX;
	return 0;
}

int fr_cont_parse(const uint8_t *hdr, bool cont, const struct fr_frame *f,
		  const struct fr_manifest *m, uint32_t *off)
{
	uint32_t o = cont ? fr_get32(hdr + FR_MSG_HDR + FR_FRAME_HDR) : 0;
	/* a streamed frame's message is its header (and offset) alone */
	bool stream = f->flags & FR_FRAME_STREAM;

	if (f->index >= m->n_segments ||
	    f->raw_len != m->segments[f->index].length ||
	    (cont && (o == 0 || o >= fr_frame_payload_max(f))))
		return FR_E_RAW_LENGTH;
	/* o < stored_len here when cont and not streamed */
	uint32_t rest = stream ? 0 : f->stored_len - o;
	if (fr_get32(hdr + 4) != FR_FRAME_HDR + (cont ? 4 : 0) + rest)
		return FR_E_RAW_LENGTH;
	*off = o;
	return 0;
}

int fr_piece_check(uint32_t type, uint32_t len, uint32_t raw_len,
		   uint32_t pay_got)
{
	uint32_t bound = (uint32_t)fr_seg_bound(raw_len);
	uint32_t room = pay_got < bound ? bound - pay_got : 0;

	if (type == FR_MSG_PIECE && len > 0 && len <= room)
		return FR_MSG_PIECE;
	if (type == FR_MSG_FIN && len == 4)
		return FR_MSG_FIN;
	return FR_E_PROTOCOL;
}

int fr_fin_parse(const uint8_t body[4], uint32_t pay_got, uint32_t *stored)
{
	uint32_t s = fr_get32(body);

	if (s != pay_got || s == 0)
		return FR_E_STORED_LENGTH;
	*stored = s;
	return 0;
}
