/*
 * fuzz_ack.c - what a sender reads from the receiver during a transfer
 * (ACK, DONE, ERROR), once each message is opened, as lan.c's parse_acks
 * takes it: fr_ack_decode. The input's first byte is the package's
 * segment count less one; the rest is the opened messages laid end to
 * end (u32 type, u32 length, body: each body at its exact size, so that
 * a read past it is seen). What is decoded must say what the bytes say.
 */
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t n = data[0] + 1u;
	size_t pos = 1;

	while (size - pos >= FR_MSG_HDR) {
		uint32_t type = fr_get32(data + pos), len = fr_get32(data + pos + 4);
		pos += FR_MSG_HDR;
		if (len > size - pos)
			len = (uint32_t)(size - pos);
		uint8_t *body = malloc(len ? len : 1);
		struct fr_ack_msg a;
		if (!body)
			abort();
		memcpy(body, data + pos, len);
		pos += len;
		int r = fr_ack_decode(type, body, len, n, &a);
		if (r < 0 && r != FR_E_BAD_INDEX && r != FR_E_PROTOCOL)
			abort();
		if (r == FR_E_BAD_INDEX && (a.kind != FR_ACKMSG_ACK || a.index < n))
			abort();
		if (r == 0 &&
		    (a.kind == FR_ACKMSG_ACK
			 ? type != FR_MSG_ACK || len != 12 || a.index >= n ||
			       a.index != fr_get32(body)
		     : a.kind == FR_ACKMSG_ERROR
			 ? type != FR_MSG_ERROR || len < 4 ||
			       strlen(a.text) >= sizeof(a.text) ||
			       strlen(a.text) > len - 4
			 : a.kind != FR_ACKMSG_DONE || type != FR_MSG_DONE))
			abort();
		free(body);
	}
	return 0;
}
