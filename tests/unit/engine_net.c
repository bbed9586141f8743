/*
 * engine_net.c - the HAVE message: the bitmap of segments held and the
 * partial frames a receiver kept, through a real socket pair; and every
 * malformed length refused. OFFER_Z, the compressed manifest: round trip,
 * and every bad body refused with its own error.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fr_internal.h"

static int sv[2];
static struct fr_chan ca, cb; /* sealed, as after a handshake */

static void pair(void)
{
	uint8_t k1[32] = {1}, k2[32] = {2};

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fr_chan_plain(&ca, sv[0]);
	fr_chan_plain(&cb, sv[1]);
	cr_assert_eq(fr_chan_seal(&ca, fr_aead_local(), k1, k2), 0);
	cr_assert_eq(fr_chan_seal(&cb, fr_aead_local(), k2, k1), 0);
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
	int rc = fr_msg_recv(&cb, type, &body, len,
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
	cr_assert_eq(fr_send_have(&ca, FR_HAVE_PARTIAL, held, 20, p, 2), 0);
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

	cr_assert_eq(fr_send_have(&ca, FR_HAVE_COMPLETE, held, 20, NULL, 0), 0);
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

/* ---- OFFER_Z: the manifest compressed for a slow link ----------------- */

static uint8_t *text_like(uint32_t n)
{
	uint8_t *b = malloc(n);
	for (uint32_t i = 0; i < n; i++)
		b[i] = (uint8_t)("usr/include/linux/"[i % 18] + (i / 977) % 3);
	return b;
}

Test(offer_z, round_trip)
{
	uint32_t n = 100000, zl, back_len;
	uint8_t *mf = text_like(n), *z, *back;

	cr_assert_eq(fr_offer_z_pack(mf, n, 19, &z, &zl), 0);
	cr_assert_lt(zl, n / 4, "compressed to %u of %u", zl, n);
	cr_assert_eq(fr_offer_z_unpack(z, zl, &back, &back_len), 0);
	cr_assert_eq(back_len, n);
	cr_assert_arr_eq(back, mf, n);
	free(back);
	free(z);
	free(mf);
}

Test(offer_z, incompressible_goes_plain)
{
	uint8_t mf[4096], *z = NULL;
	uint32_t zl;

	fr_random(mf, sizeof(mf));
	cr_assert_eq(fr_offer_z_pack(mf, sizeof(mf), 3, &z, &zl), FR_E_COMPRESS);
	cr_assert_null(z);
}

Test(offer_z, bad_bodies_are_refused_each_with_its_error)
{
	uint32_t n = 100000, zl, ol;
	uint8_t *mf = text_like(n), *z, *out = NULL;

	cr_assert_eq(fr_offer_z_pack(mf, n, 3, &z, &zl), 0);
	/* nothing, a frame cut short, a frame with bytes after it */
	cr_assert_eq(fr_offer_z_unpack(z, 0, &out, &ol), FR_E_DECOMPRESS);
	cr_assert_eq(fr_offer_z_unpack(z, zl - 1, &out, &ol), FR_E_DECOMPRESS);
	uint8_t *longer = malloc(zl + 1);
	memcpy(longer, z, zl);
	longer[zl] = 0;
	cr_assert_eq(fr_offer_z_unpack(longer, zl + 1, &out, &ol),
		     FR_E_DECOMPRESS);
	/* not zstd at all */
	memset(longer, 0x41, zl);
	cr_assert_eq(fr_offer_z_unpack(longer, zl, &out, &ol), FR_E_DECOMPRESS);
	cr_assert_null(out);
	free(longer);
	free(z);
	free(mf);
}

/* A frame that expands past the limit stops there: the size it declares
 * is not what the buffer is sized by. */
Test(offer_z, output_is_bounded_by_the_limit_not_by_the_frame)
{
	struct fr_dctx d;
	struct fr_cctx c;
	uint32_t n = 4u << 20;
	uint8_t *zeros = calloc(n, 1), *z = malloc(fr_seg_bound(n)), *out;
	size_t ol;

	cr_assert_eq(fr_cctx_init(&c), 0);
	ssize_t zl = fr_seg_compress(&c, z, fr_seg_bound(n), zeros, n, 3);
	cr_assert_gt(zl, 0);
	cr_assert_eq(fr_dctx_init(&d), 0);
	cr_assert_eq(fr_decompress_alloc(&d, z, (size_t)zl, n - 1, &out, &ol),
		     FR_E_TOO_LARGE);
	cr_assert_eq(fr_decompress_alloc(&d, z, (size_t)zl, n, &out, &ol), 0);
	cr_assert_eq(ol, n);
	cr_assert_arr_eq(out, zeros, n);
	free(out);
	fr_dctx_fini(&d);
	fr_cctx_fini(&c);
	free(zeros);
	free(z);
}
