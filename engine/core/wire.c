/*
 * wire.c - the checks of the transfer's messages as pure functions of
 * their bytes, so that they can be unit-tested and fuzzed on their own
 * (tests/fuzz/): the receiver's messages to a sender once opened (ACK,
 * DONE, ERROR: what lan.c's parse_acks takes) and, on the receiver, the
 * messages where a frame is expected (a frame's record, SEGMENT or
 * SEGMENT_CONT, or END), a frame's header against the manifest, its
 * record (offset, number, tags, the PAYLOAD after it), and a streamed
 * frame's PIECE and FIN (serve.c's on_msg_header, on_frame_header,
 * stream_msg and stream_end).
 * Each reproduces those checks exactly (docs/PROTOCOL.md); nothing here
 * keeps state or does I/O: the caller keeps what was received and what
 * is held.
 */
#include <string.h>

#include "core/fr_core.h"

int fr_ack_decode(uint32_t type, const uint8_t *body, uint32_t len,
		  uint32_t n_segments, struct fr_ack_msg *out)
{
	memset(out, 0, sizeof(*out));
	out->type = type;
	out->len = len;
	if (type == FR_MSG_ACK && len == 12) {
		out->kind = FR_ACKMSG_ACK;
		out->index = fr_get32(body);
		out->status = fr_get32(body + 4);
		out->stall = fr_get32(body + 8);
		if (out->index >= n_segments)
			return FR_E_BAD_INDEX;
	} else if (type == FR_MSG_DONE) {
		out->kind = FR_ACKMSG_DONE; /* a body, if any, says nothing */
	} else if (type == FR_MSG_ERROR && len >= 4) {
		size_t tl = len - 4 < sizeof(out->text) - 1
				? len - 4
				: sizeof(out->text) - 1;
		out->kind = FR_ACKMSG_ERROR;
		out->code = (int)fr_get32(body);
		memcpy(out->text, body + 4, tl);
		out->text[tl] = '\0';
	} else {
		return FR_E_PROTOCOL;
	}
	return 0;
}

int fr_seg_rec_check(uint32_t type, uint32_t len, bool refuse_stream)
{
	if (type == FR_MSG_END && len == 0)
		return FR_MSG_END;
	bool cont = type == FR_MSG_SEGMENT_CONT;
	/* a frame's record: header, offset, number, tags; a streamed
	 * frame's has no tags, which a ferry from before them
	 * (FERRY_REFUSE_STREAM) did not take */
	uint32_t base = FR_FRAME_HDR + (cont ? 4u : 0u) + 8;
	uint32_t min = base + (refuse_stream ? FR_SEAL_TAG : 0u);
	if ((type != FR_MSG_SEGMENT && !cont) || len < min ||
	    len > base + FR_CHUNKS_MAX * FR_SEAL_TAG)
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
	if (memcmp(f->pkg, m->lid, FR_HASH_LEN))
		return FR_E_WRONG_PACKAGE;
	if (f->index >= m->n_segments)
		return FR_E_BAD_INDEX;
	if ((f->flags & FR_FRAME_REF) &&
	    (f->ref >= m->n_segments || f->ref == f->index))
		return FR_E_BAD_INDEX;
	return 0;
}

int fr_frame_rec_parse(const uint8_t *rec, bool cont, const struct fr_frame *f,
		       const struct fr_manifest *m, struct fr_frame_rec *out)
{
	uint32_t body = fr_get32(rec + 4), at = FR_MSG_HDR + FR_FRAME_HDR;

	memset(out, 0, sizeof(*out));
	out->off = cont ? fr_get32(rec + at) : 0;
	at += cont ? 4 : 0;
	out->no = fr_get64(rec + at);
	at += 8;
	out->tags_at = at;
	/* a streamed frame's record has no tags: its pieces carry theirs;
	 * a whole frame's has one per chunk from the offset on */
	bool stream = f->flags & FR_FRAME_STREAM;
	uint32_t chunk = stream ? 1 : fr_chunk_size(f->stored_len);
	if (!stream && out->off < f->stored_len)
		out->tags = fr_chunk_count(f->stored_len) - out->off / chunk;
	/* after a whole frame's record: PAYLOAD, the rest of the payload;
	 * its header is not sealed, but must say what the record says */
	const uint8_t *ph = rec + FR_MSG_HDR + body + FR_SEAL_TAG;
	if (!stream && body > at - FR_MSG_HDR &&
	    (fr_get32(ph) != FR_MSG_PAYLOAD ||
	     fr_get32(ph + 4) != f->stored_len - out->off))
		return FR_E_SEALED;
	if (f->index >= m->n_segments ||
	    f->raw_len != m->segments[f->index].length ||
	    (cont && (out->off == 0 || out->off >= fr_frame_payload_max(f) ||
		      out->off % chunk)) ||
	    body != at - FR_MSG_HDR + out->tags * FR_SEAL_TAG)
		return FR_E_RAW_LENGTH;
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
