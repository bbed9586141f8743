/*
 * engine_seal.c - the PAKE and the sealed-message layer.
 *
 * CPace: both sides derive the same intermediate key from the same
 * password; a different password, account, nonce or role gives another;
 * a share that is no valid point is refused; the results are pinned
 * (known answers computed once with fixed scalars).
 *
 * Records: each opens once, in order, with its header; a flipped byte,
 * another header, a replay, a reordering, a dropped record and a record
 * cut short are all refused. The counter moves the records' key on at
 * each epoch. Frames: chunks open on their own, a damaged one stops what
 * can be kept at its start.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fr_internal.h"

/* ---- CPace ------------------------------------------------------------- */

struct party {
	uint8_t y[32], Y[32];
};

static const uint8_t ad_s[2] = {'S', FR_AEAD_AES256GCM};
static const uint8_t ad_c[4] = {'C', 2, 0, 1};

static void fixture(uint8_t prs[32], uint8_t sid[FR_SID_LEN])
{
	for (int i = 0; i < 32; i++)
		prs[i] = (uint8_t)i;
	for (int i = 0; i < FR_SID_LEN; i++)
		sid[i] = (uint8_t)(0xa0 + i % 16);
}

static void party(const uint8_t prs[32], const char *account,
		  const uint8_t sid[FR_SID_LEN], uint8_t scalar,
		  struct party *p)
{
	uint8_t g[32];

	memset(p->y, 0, 32);
	p->y[0] = scalar;
	cr_assert_eq(fr_cpace_generator(prs, account, sid, g), 0);
	cr_assert_eq(fr_cpace_share(g, p->y, p->Y), 0);
}

/* The server's and the client's view of the intermediate key. */
static void both_isk(const struct party *s, const struct party *c,
		     const uint8_t sid[FR_SID_LEN], uint8_t is[64],
		     uint8_t ic[64])
{
	cr_assert_eq(fr_cpace_isk(s->y, c->Y, sid, s->Y, ad_s, 2, c->Y, ad_c,
				  4, is),
		     0);
	cr_assert_eq(fr_cpace_isk(c->y, s->Y, sid, s->Y, ad_s, 2, c->Y, ad_c,
				  4, ic),
		     0);
}

static void unhex(const char *h, uint8_t *out, size_t n)
{
	cr_assert_eq(fr_unhex(h, out, n), 0);
}

Test(cpace, both_sides_agree_and_the_answers_are_pinned)
{
	uint8_t prs[32], sid[FR_SID_LEN], is[64], ic[64], want[64], w32[32];
	struct party s, c;
	struct fr_session_keys k;

	fixture(prs, sid);
	party(prs, "LAB", sid, 7, &s);
	party(prs, "LAB", sid, 11, &c);
	unhex("ba280ca2f29351cac404d048c342a1e4667742c319a8d8899a18802f63341a34",
	      w32, 32);
	cr_assert_arr_eq(s.Y, w32, 32, "the server's share changed");
	unhex("9063a21139b598a0dca4b83e4b8eaa117bc9c2019ce7a0d7230f32fa562ca808",
	      w32, 32);
	cr_assert_arr_eq(c.Y, w32, 32, "the client's share changed");
	both_isk(&s, &c, sid, is, ic);
	cr_assert_arr_eq(is, ic, 64, "the two sides disagree");
	unhex("173352cccf29c9f304d750f31d0dd055e4ee6f5952308ccfa32cc9274f49be5a"
	      "aeb4100b6b80441f0577b10c293084909b68683fcc126cd7020691d4c08f1c8a",
	      want, 64);
	cr_assert_arr_eq(is, want, 64, "the intermediate key changed");
	fr_session_keys(is, FR_AEAD_AES256GCM, &k);
	unhex("fefaaafd058b800a9bbf06be561690f9a6f98861146dfae08d7521f3ce0b2df1",
	      w32, 32);
	cr_assert_arr_eq(k.c2s, w32, 32, "the client's key changed");
	unhex("b18e7ff71bada1d0fb5b7d7936faa330244dfb6224ab2b7afa5bee6b9883b566",
	      w32, 32);
	cr_assert_arr_eq(k.confirm_c, w32, 32);
	/* four different keys */
	cr_assert_arr_neq(k.c2s, k.s2c, 32);
	cr_assert_arr_neq(k.confirm_c, k.confirm_s, 32);
	cr_assert_arr_neq(k.c2s, k.confirm_c, 32);
}

/* draft-irtf-cfrg-cpace-21, appendix B.3 (ristretto255, SHA-512) */
Test(cpace, the_drafts_test_vectors)
{
	static const char prs[] = "Password";
	uint8_t ci[24], sid[16], g[32], ya[32], yb[32], Ya[32], Yb[32];
	uint8_t want[64], isk[64], isk2[64];

	unhex("0b415f696e69746961746f720b425f726573706f6e646572", ci, 24);
	unhex("7e4b4791d6a8ef019b936c79fb7f2c57", sid, 16);
	cr_assert_eq(fr_cpace_calc_generator((const uint8_t *)prs, 8, ci, 24,
					     sid, 16, g),
		     0);
	unhex("222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56",
	      want, 32);
	cr_assert_arr_eq(g, want, 32, "the generator is not the draft's");
	unhex("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08",
	      ya, 32);
	unhex("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d",
	      yb, 32);
	cr_assert_eq(fr_cpace_share(g, ya, Ya), 0);
	cr_assert_eq(fr_cpace_share(g, yb, Yb), 0);
	unhex("d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157",
	      want, 32);
	cr_assert_arr_eq(Ya, want, 32, "Ya is not the draft's");
	unhex("3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258",
	      want, 32);
	cr_assert_arr_eq(Yb, want, 32, "Yb is not the draft's");
	cr_assert_eq(fr_cpace_calc_isk(ya, Yb, sid, 16, Ya,
				       (const uint8_t *)"ADa", 3, Yb,
				       (const uint8_t *)"ADb", 3, isk),
		     0);
	cr_assert_eq(fr_cpace_calc_isk(yb, Ya, sid, 16, Ya,
				       (const uint8_t *)"ADa", 3, Yb,
				       (const uint8_t *)"ADb", 3, isk2),
		     0);
	unhex("b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dcae7b35cd"
	      "2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c3fa2068af7900447",
	      want, 64);
	cr_assert_arr_eq(isk, want, 64, "ISK is not the draft's");
	cr_assert_arr_eq(isk2, want, 64);
	/* B.3.11: the identity and an invalid encoding are refused */
	uint8_t s[32], bad[32];
	unhex("7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05",
	      s, 32);
	unhex("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c",
	      bad, 32);
	cr_assert_eq(fr_cpace_calc_isk(s, bad, sid, 16, Ya, NULL, 0, Yb, NULL,
				       0, isk),
		     FR_E_AUTH);
	memset(bad, 0, sizeof(bad));
	cr_assert_eq(fr_cpace_calc_isk(s, bad, sid, 16, Ya, NULL, 0, Yb, NULL,
				       0, isk),
		     FR_E_AUTH);
}

Test(cpace, another_password_account_nonce_or_role_gives_another_key)
{
	uint8_t prs[32], sid[FR_SID_LEN], base[64], is[64], ic[64];
	struct party s, c;

	fixture(prs, sid);
	party(prs, "LAB", sid, 7, &s);
	party(prs, "LAB", sid, 11, &c);
	both_isk(&s, &c, sid, base, ic);

	/* the client's password differs by one bit */
	uint8_t prs2[32];
	memcpy(prs2, prs, 32);
	prs2[31] ^= 1;
	party(prs2, "LAB", sid, 11, &c);
	both_isk(&s, &c, sid, is, ic);
	cr_assert_arr_neq(is, ic, 64, "a wrong password agreed");

	/* another account (same password) */
	party(prs, "LAX", sid, 11, &c);
	both_isk(&s, &c, sid, is, ic);
	cr_assert_arr_neq(is, ic, 64, "another account agreed");

	/* either nonce changed: a new session id */
	for (int which = 0; which < 2; which++) {
		uint8_t sid2[FR_SID_LEN];
		memcpy(sid2, sid, FR_SID_LEN);
		sid2[which ? FR_SID_LEN - 1 : 0] ^= 0x80;
		party(prs, "LAB", sid2, 7, &s);
		party(prs, "LAB", sid2, 11, &c);
		both_isk(&s, &c, sid2, is, ic);
		cr_assert_arr_eq(is, ic, 64);
		cr_assert_arr_neq(is, base, 64, "nonce %d is not bound", which);
	}

	/* the roles swapped: the transcript's order */
	party(prs, "LAB", sid, 7, &s);
	party(prs, "LAB", sid, 11, &c);
	cr_assert_eq(fr_cpace_isk(s.y, c.Y, sid, c.Y, ad_c, 4, s.Y, ad_s, 2,
				  is),
		     0);
	cr_assert_arr_neq(is, base, 64, "the roles are not bound");
	/* or one side's data (the AEAD chosen) changed */
	uint8_t ad_s2[2] = {'S', FR_AEAD_XCHACHA20};
	cr_assert_eq(fr_cpace_isk(s.y, c.Y, sid, s.Y, ad_s2, 2, c.Y, ad_c, 4,
				  is),
		     0);
	cr_assert_arr_neq(is, base, 64, "the AEAD choice is not bound");
}

Test(cpace, a_share_that_is_no_valid_point_is_refused)
{
	uint8_t prs[32], sid[FR_SID_LEN], isk[64], bad[32] = {0};
	struct party s;

	fixture(prs, sid);
	party(prs, "LAB", sid, 7, &s);
	/* the identity, and bytes that decode to no point */
	cr_assert_eq(fr_cpace_isk(s.y, bad, sid, s.Y, ad_s, 2, bad, ad_c, 4,
				  isk),
		     FR_E_AUTH);
	memset(bad, 0xff, sizeof(bad));
	cr_assert_eq(fr_cpace_isk(s.y, bad, sid, s.Y, ad_s, 2, bad, ad_c, 4,
				  isk),
		     FR_E_AUTH);
}

/* ---- records ------------------------------------------------------------ */

static struct fr_chan tx, rx;

static void chans(uint8_t aead)
{
	uint8_t k1[32] = {9, 8, 7}, k2[32] = {1, 2, 3};

	fr_chan_plain(&tx, -1);
	fr_chan_plain(&rx, -1);
	cr_assert_eq(fr_chan_seal(&tx, aead, k1, k2), 0);
	cr_assert_eq(fr_chan_seal(&rx, aead, k2, k1), 0);
}

struct rec {
	uint8_t hdr[8], body[64], tag[FR_SEAL_TAG];
	uint32_t len;
};

static void seal_rec(struct rec *r, uint32_t type, const char *text)
{
	r->len = (uint32_t)strlen(text);
	fr_put32(r->hdr, type);
	fr_put32(r->hdr + 4, r->len);
	memcpy(r->body, text, r->len);
	cr_assert_eq(fr_rec_seal(&tx, r->hdr, r->body, r->len, r->tag), 0);
	cr_assert(memcmp(r->body, text, r->len), "not encrypted");
}

/* Open a copy: a refused record leaves the original for the next try. */
static int open_rec(const struct rec *r)
{
	struct rec c = *r;
	int rc = fr_rec_open(&rx, c.hdr, c.body, c.len, c.tag);
	return rc;
}

static void records_case(uint8_t aead)
{
	struct rec a, b, c;

	chans(aead);
	seal_rec(&a, FR_MSG_ACK, "first");
	seal_rec(&b, FR_MSG_ACK, "second");
	seal_rec(&c, FR_MSG_DONE, "third");
	cr_assert_eq(tx.tx.ctr, 3);

	/* reordered: the second before the first */
	cr_assert_eq(open_rec(&b), FR_E_SEALED, "reordering not detected");
	/* dropped: the third where the first is due */
	cr_assert_eq(open_rec(&c), FR_E_SEALED, "a drop not detected");
	/* a flipped byte in the body, in the tag, in the header */
	for (uint32_t i = 0; i < a.len + FR_SEAL_TAG + 8; i++) {
		struct rec x = a;
		uint8_t *p = i < a.len ? x.body + i
			     : i < a.len + FR_SEAL_TAG ? x.tag + (i - a.len)
						       : x.hdr + (i - a.len - FR_SEAL_TAG);
		*p ^= 0x20;
		cr_assert_eq(fr_rec_open(&rx, x.hdr, x.body, x.len, x.tag),
			     FR_E_SEALED, "byte %u flipped, accepted", i);
	}
	/* cut short: the same bytes, one fewer */
	struct rec t = a;
	cr_assert_eq(fr_rec_open(&rx, t.hdr, t.body, t.len - 1, t.tag),
		     FR_E_SEALED);
	/* refusals do not move the counter: the real one opens */
	cr_assert_eq(rx.rx.ctr, 0);
	struct rec ok = a;
	cr_assert_eq(fr_rec_open(&rx, ok.hdr, ok.body, ok.len, ok.tag), 0);
	cr_assert_arr_eq(ok.body, "first", 5);
	/* replayed */
	cr_assert_eq(open_rec(&a), FR_E_SEALED, "a replay was accepted");
	cr_assert_eq(open_rec(&b), 0);
	cr_assert_eq(open_rec(&c), 0);
	/* a record sealed for the other direction does not open here */
	struct rec back;
	uint8_t h[8];
	fr_put32(h, FR_MSG_ACK);
	fr_put32(h + 4, 4);
	memcpy(back.body, "back", 4);
	cr_assert_eq(fr_rec_seal(&rx, h, back.body, 4, back.tag), 0);
	rx.rx.ctr = 0;
	memcpy(back.hdr, h, 8);
	back.len = 4;
	cr_assert_eq(fr_rec_open(&rx, back.hdr, back.body, 4, back.tag),
		     FR_E_SEALED, "reflected back and accepted");
}

Test(seal, records_aes256gcm)
{
	if (fr_aead_local() != FR_AEAD_AES256GCM)
		cr_skip_test("no AES-NI on this machine");
	records_case(FR_AEAD_AES256GCM);
}

Test(seal, records_xchacha20)
{
	records_case(FR_AEAD_XCHACHA20);
}

Test(seal, the_records_key_changes_at_each_epoch)
{
	struct rec r[10];

	chans(FR_AEAD_XCHACHA20);
	tx.epoch_bits = rx.epoch_bits = 2; /* four records a key */
	uint8_t first_key[32];
	memcpy(first_key, tx.tx.rec.key, 32);
	for (int i = 0; i < 10; i++) {
		seal_rec(&r[i], FR_MSG_ACK, "same text");
		if (i == 3)
			cr_assert_arr_eq(tx.tx.rec.key, first_key, 32);
		if (i == 4)
			cr_assert_arr_neq(tx.tx.rec.key, first_key, 32,
					  "no new key at the epoch");
	}
	cr_assert_eq(tx.tx.epoch, 2);
	/* the same text at the same place of two epochs: other bytes */
	cr_assert_arr_neq(r[0].body, r[4].body, 9);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(open_rec(&r[i]), 0, "record %d", i);
	/* the counter never wraps under a key: the session ends first */
	tx.tx.ctr = UINT64_MAX;
	struct rec w;
	fr_put32(w.hdr, FR_MSG_ACK);
	fr_put32(w.hdr + 4, 1);
	cr_assert_eq(fr_rec_seal(&tx, w.hdr, w.body, 1, w.tag), FR_E_WORN);
}

/* Over a socket: a message cut at the end is never delivered. */
Test(seal, a_message_cut_at_the_end_is_not_delivered)
{
	int sv[2];
	uint8_t *body = NULL;
	uint32_t type, len;
	char err[128];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	chans(FR_AEAD_XCHACHA20);
	/* what the sender would send, less its last byte */
	uint8_t msg[8 + 5 + FR_SEAL_TAG];
	fr_put32(msg, FR_MSG_ACK);
	fr_put32(msg + 4, 5);
	memcpy(msg + 8, "hello", 5);
	cr_assert_eq(fr_rec_seal(&tx, msg, msg + 8, 5, msg + 13), 0);
	cr_assert_eq(write(sv[0], msg, sizeof(msg) - 1), (ssize_t)sizeof(msg) - 1);
	close(sv[0]);
	rx.fd = sv[1];
	int rc = fr_msg_recv(&rx, &type, &body, &len, 64, err, sizeof(err));
	cr_assert_eq(rc, -ECONNRESET, "rc %d", rc);
	cr_assert_null(body);
	close(sv[1]);
}

/* ---- frames ------------------------------------------------------------- */

Test(seal, chunk_size_keeps_the_tags_few)
{
	cr_assert_eq(fr_chunk_size(1), FR_CHUNK_MIN);
	cr_assert_eq(fr_chunk_count(1), 1);
	cr_assert_eq(fr_chunk_count(FR_CHUNK_MIN), 1);
	cr_assert_eq(fr_chunk_count(FR_CHUNK_MIN + 1), 2);
	cr_assert_eq(fr_chunk_count(8u << 20), FR_CHUNKS_MAX);
	cr_assert_eq(fr_chunk_size((8u << 20) + 1), 2 * FR_CHUNK_MIN);
	cr_assert_leq(fr_chunk_count(64u << 20), FR_CHUNKS_MAX);
	cr_assert_leq(fr_chunk_count(UINT32_MAX), FR_CHUNKS_MAX);
}

Test(seal, frame_chunks_open_each_on_its_own)
{
	struct fr_aead_key k, other;
	uint8_t fh[FR_FRAME_HDR] = {1, 2, 3};
	uint32_t n = 5 * FR_CHUNK_MIN + 100, c = FR_CHUNK_MIN;
	uint8_t *p = malloc(n), *orig = malloc(n);
	uint8_t tags[FR_CHUNKS_MAX * FR_SEAL_TAG];

	chans(FR_AEAD_XCHACHA20);
	for (uint32_t i = 0; i < n; i++)
		orig[i] = (uint8_t)(i * 31 + 7);
	memcpy(p, orig, n);
	cr_assert_eq(fr_frame_key(&tx.tx, tx.aead, 5, &k), 0);
	cr_assert_eq(fr_frame_key(&tx.tx, tx.aead, 6, &other), 0);
	fr_chunks_seal(&k, fh, p, 0, n, tags);
	cr_assert(memcmp(p, orig, 64), "not encrypted");
	/* the receiver derives the same frame key from its rx side */
	struct fr_aead_key kr;
	cr_assert_eq(fr_frame_key(&rx.rx, rx.aead, 5, &kr), 0);

	/* a byte flipped in chunk 3: chunks 0-2 can be kept, no more */
	uint8_t *q = malloc(n);
	memcpy(q, p, n);
	q[3 * c + 10] ^= 1;
	cr_assert_eq(fr_chunks_open_prefix(&kr, fh, q, 0, n, n, tags), 3 * c);
	cr_assert_arr_eq(q, orig, 3 * c);
	/* what arrived of a cut frame: the whole chunks only */
	memcpy(q, p, n);
	cr_assert_eq(fr_chunks_open_prefix(&kr, fh, q, 0, 2 * c + 5, n, tags),
		     2 * c);
	/* under another frame's key, or another header: nothing */
	memcpy(q, p, n);
	cr_assert_eq(fr_chunks_open(&other, fh, q, 0, n, tags), FR_E_SEALED);
	memcpy(q, p, n);
	uint8_t fh2[FR_FRAME_HDR] = {1, 2, 4};
	cr_assert_eq(fr_chunks_open(&kr, fh2, q, 0, n, tags), FR_E_SEALED);
	/* the rest of a frame from a chunk on: its own tags */
	memcpy(q, p, n);
	cr_assert_eq(fr_chunks_open(&kr, fh, q, 2 * c, n,
				    tags + 2 * FR_SEAL_TAG),
		     0);
	cr_assert_arr_eq(q + 2 * c, orig + 2 * c, n - 2 * c);
	/* the whole frame */
	cr_assert_eq(fr_chunks_open(&kr, fh, p, 0, n, tags), 0);
	cr_assert_arr_eq(p, orig, n);
	free(p);
	free(q);
	free(orig);
}
