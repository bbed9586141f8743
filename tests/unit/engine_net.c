/*
 * engine_net.c - the HAVE message: the bitmap of segments held and the
 * partial frames a receiver kept, through a real socket pair; and every
 * malformed length refused.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fr_internal.h"

static int sv[2];

static void pair(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void unpair(void)
{
	close(sv[0]);
	close(sv[1]);
}

TestSuite(have, .init = pair, .fini = unpair);

/* Receive one message from the other end. */
static uint8_t *recv_one(uint32_t *type, uint32_t *len)
{
	uint8_t *body = NULL;
	char err[256];
	int rc = fr_msg_recv(sv[1], type, &body, len,
			     FR_HAVE_LEN(20) + FR_PARTIAL_MAX * FR_PARTIAL_REC,
			     err, sizeof(err));
	cr_assert_eq(rc, 0, "fr_msg_recv: %s", err);
	return body;
}

Test(have, bitmap_and_partial_frames_round_trip)
{
	uint8_t held[20] = {0}, got[20];
	struct fr_partial p[2], q[FR_PARTIAL_MAX];
	uint32_t type, len, np = 99;

	held[0] = held[7] = held[19] = 1;
	memset(p, 0, sizeof(p));
	p[0].index = 3;
	p[0].got = 123456;
	memset(p[0].hdr, 0xab, FR_FRAME_HDR);
	p[1].index = 11;
	p[1].got = 4096;
	memset(p[1].hdr, 0x5c, FR_FRAME_HDR);
	cr_assert_eq(fr_send_have(sv[0], FR_HAVE_PARTIAL, held, 20, p, 2), 0);
	uint8_t *body = recv_one(&type, &len);
	cr_assert_eq(len, FR_HAVE_LEN(20) + 2 * FR_PARTIAL_REC);
	cr_assert_eq(fr_have_parse(type, body, len, 20, got, q, &np),
		     FR_HAVE_PARTIAL);
	cr_assert_eq(memcmp(got, held, sizeof(held)), 0);
	cr_assert_eq(np, 2);
	cr_assert_eq(q[0].index, 3);
	cr_assert_eq(q[0].got, 123456);
	cr_assert_eq(memcmp(q[0].hdr, p[0].hdr, FR_FRAME_HDR), 0);
	cr_assert_eq(q[1].index, 11);
	cr_assert_eq(q[1].got, 4096);
	cr_assert_eq(memcmp(q[1].hdr, p[1].hdr, FR_FRAME_HDR), 0);
	/* a reader that does not want them still gets the bitmap */
	cr_assert_eq(fr_have_parse(type, body, len, 20, got, NULL, NULL),
		     FR_HAVE_PARTIAL);
	free(body);
}

Test(have, without_partials_and_complete)
{
	uint8_t held[20] = {0}, got[20];
	struct fr_partial q[FR_PARTIAL_MAX];
	uint32_t type, len, np = 99;

	cr_assert_eq(fr_send_have(sv[0], FR_HAVE_COMPLETE, held, 20, NULL, 0), 0);
	uint8_t *body = recv_one(&type, &len);
	cr_assert_eq(len, FR_HAVE_LEN(20));
	cr_assert_eq(fr_have_parse(type, body, len, 20, got, q, &np),
		     FR_HAVE_COMPLETE);
	cr_assert_eq(np, 0);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(got[i], 1, "complete: segment %d held", i);
	free(body);
}

Test(have, malformed_lengths_and_counts_are_refused)
{
	uint8_t b[FR_HAVE_LEN(20) + 3 * FR_PARTIAL_REC] = {0};
	struct fr_partial q[FR_PARTIAL_MAX];
	uint32_t np;

	fr_put32(b + 4, 20);
	/* short of the bitmap; a partial record cut short; a count that
	 * is not the manifest's; another message type */
	cr_assert_eq(fr_have_parse(FR_MSG_HAVE, b, FR_HAVE_LEN(20) - 1, 20,
				   NULL, q, &np),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_have_parse(FR_MSG_HAVE, b, FR_HAVE_LEN(20) + 10, 20,
				   NULL, q, &np),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_have_parse(FR_MSG_HAVE, b, FR_HAVE_LEN(20), 21, NULL,
				   q, &np),
		     FR_E_PROTOCOL);
	cr_assert_eq(fr_have_parse(FR_MSG_ACK, b, FR_HAVE_LEN(20), 20, NULL,
				   q, &np),
		     FR_E_PROTOCOL);
	/* a partial record for a segment beyond the manifest is dropped */
	fr_put32(b + FR_HAVE_LEN(20), 20);
	cr_assert_eq(fr_have_parse(FR_MSG_HAVE, b,
				   FR_HAVE_LEN(20) + FR_PARTIAL_REC, 20, NULL,
				   q, &np),
		     FR_HAVE_PARTIAL);
	cr_assert_eq(np, 0);
}
