/*
 * fuzz_ack.c - what a sender reads from the receiver during a transfer
 * (ACK, DONE, ERROR), as lan.c's parse_acks takes it: fr_ack_parse over
 * a 4096-byte receive buffer filled from the input in pieces. The input's
 * first byte is the package's segment count less one, its second the
 * size of the pieces the socket delivers; the rest is the byte stream.
 * Every message is taken whole or refused, and the parser waits for more
 * only for a message that fits the buffer (else the sender would wait
 * forever).
 */
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[CAP];
	uint32_t len = 0;

	if (size < 2)
		return 0;
	uint32_t n = data[0] + 1u, chunk = data[1] + 1u;
	size_t pos = 2;
	for (;;) {
		uint32_t take = CAP - len < chunk ? CAP - len : chunk;
		if (take > size - pos)
			take = (uint32_t)(size - pos);
		memcpy(buf + len, data + pos, take);
		len += take;
		pos += take;
		uint32_t off = 0;
		for (;;) {
			struct fr_ack_msg a;
			int r = fr_ack_parse(buf + off, len - off, CAP, n, &a);
			/* waiting for more is right only for a message that
			 * fits the buffer: else the sender waits forever */
			if (r == 0 && len - off >= FR_MSG_HDR &&
			    fr_get32(buf + off + 4) > CAP - FR_MSG_HDR)
				abort();
			if (r == 0)
				break;
			if (r < 0) {
				if (r != FR_E_TOO_LARGE &&
				    r != FR_E_BAD_INDEX && r != FR_E_PROTOCOL)
					abort();
				return 0; /* the sender ends the session */
			}
			if ((uint32_t)r > len - off ||
			    (uint32_t)r != FR_MSG_HDR + a.len)
				abort();
			if (a.kind == FR_ACKMSG_ACK
				? a.type != FR_MSG_ACK || a.len != 12 ||
				      a.index >= n
			    : a.kind == FR_ACKMSG_ERROR
				? a.type != FR_MSG_ERROR || a.len < 4 ||
				      strlen(a.text) >= sizeof(a.text) ||
				      strlen(a.text) > a.len - 4
				: a.kind != FR_ACKMSG_DONE ||
				      a.type != FR_MSG_DONE)
				abort();
			if (a.kind == FR_ACKMSG_ERROR)
				return 0; /* the sender ends the session */
			off += (uint32_t)r;
		}
		memmove(buf, buf + off, len - off);
		len -= off;
		if (len == CAP)
			abort(); /* full, and no whole message in it */
		if (pos == size)
			return 0;
	}
}
