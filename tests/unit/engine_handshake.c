/*
 * engine_handshake.c - mutual authentication, both directions, over a
 * real socket pair: the real client and the real server agree when they
 * hold the same key and refuse each other when they do not; a fake
 * receiver that accepts any client but cannot prove the key (a random
 * proof, or the client's own proof reflected) is refused by the client; a
 * fake client that cannot prove the key (a random proof, or a proof
 * replayed from an earlier session) is refused by the server, which then
 * sends no WELCOME. Whatever the handshake becomes, these must hold.
 * The receiver names its site in CHALLENGE, bound in the transcript: a
 * client that meant another site leaves at once, and a client that
 * binds another code than the receiver's is refused.
 * And after it, both sides hold the same keys: what one seals, the
 * other opens.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fr_internal.h"

static int sv[2];
static struct fr_chan cch, sch; /* the client's and the server's */
static struct fr_account account;
static struct fr_config cfg;
static const uint8_t key_a[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t key_b[32] = {1, 2, 3, 4, 5, 6, 7, 8, 10};

static void setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fr_chan_plain(&cch, sv[0]);
	fr_chan_plain(&sch, sv[1]);
	memset(&cfg, 0, sizeof(cfg));
	memset(&account, 0, sizeof(account));
	strcpy(account.code, "CEN");
	memcpy(account.key, key_a, 32);
	cfg.accounts = &account;
	cfg.n_accounts = 1;
	strcpy(cfg.code, "LAB");
}

static void teardown(void)
{
	close(sv[0]);
	close(sv[1]);
}

TestSuite(handshake, .init = setup, .fini = teardown);

/* ---- the real server in a thread ------------------------------------- */

struct server_run {
	pthread_t t;
	int rc;
	const struct fr_account *who;
	char err[256];
};

static void *server_main(void *arg)
{
	struct server_run *s = arg;

	s->rc = fr_handshake_server(&sch, &cfg, &s->who, s->err,
				    sizeof(s->err));
	/* the client may be waiting for an answer that will not come */
	if (s->rc < 0)
		shutdown(sv[1], SHUT_RDWR);
	return NULL;
}

static void server_start(struct server_run *s)
{
	memset(s, 0, sizeof(*s));
	cr_assert_eq(pthread_create(&s->t, NULL, server_main, s), 0);
}

static void server_join(struct server_run *s)
{
	pthread_join(s->t, NULL);
}

/* CHALLENGE: server nonce, AEAD, share, the code's length and LAB */
#define CHAL_LEN (FR_NONCE_LEN + 1 + 32 + 1 + 3)

static int client(const uint8_t key[32], char *err, size_t cap)
{
	return fr_handshake_client(&cch, "CEN", key, "LAB", err, cap);
}

/* What one side seals, the other opens; and the other way. */
static void sealed_both_ways(void)
{
	uint8_t *body = NULL;
	uint32_t type, len;
	char err[256] = "";

	cr_assert(cch.sealed && sch.sealed);
	cr_assert_eq(cch.aead, sch.aead);
	cr_assert_eq(fr_msg_send(&cch, FR_MSG_OFFER, "manifest", 8), 0);
	cr_assert_eq(fr_msg_recv(&sch, &type, &body, &len, 64, err,
				 sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(type, FR_MSG_OFFER);
	cr_assert_eq(len, 8);
	cr_assert_arr_eq(body, "manifest", 8);
	free(body);
	cr_assert_eq(fr_msg_send(&sch, FR_MSG_DONE, NULL, 0), 0);
	cr_assert_eq(fr_msg_recv(&cch, &type, &body, &len, 64, err,
				 sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(type, FR_MSG_DONE);
	free(body);
}

Test(handshake, same_key_both_sides_agree)
{
	struct server_run s;
	char err[256] = "";

	server_start(&s);
	int rc = client(key_a, err, sizeof(err));
	server_join(&s);
	cr_assert_eq(rc, 0, "client: %s", err);
	cr_assert_eq(s.rc, 0, "server: %s", s.err);
	cr_assert_eq(s.who, &account);
	cr_assert_eq(cch.aead, fr_aead_local());
	sealed_both_ways();
}

Test(handshake, without_aes_ni_on_one_side_both_use_xchacha20)
{
	struct server_run s;
	char err[256] = "";

#ifndef FERRY_TEST_HOOKS
	cr_skip_test("built without FERRY_TEST_HOOKS");
#endif
	if (fr_aead_local() != FR_AEAD_AES256GCM)
		cr_skip_test("no AES-NI here: XChaCha20 is the only choice");
	/* a client that says it has no AES-NI: flags 0 in its HELLO */
	setenv("FERRY_XCHACHA", "1", 1);
	server_start(&s);
	int rc = client(key_a, err, sizeof(err));
	unsetenv("FERRY_XCHACHA");
	server_join(&s);
	cr_assert_eq(rc, 0, "client: %s", err);
	cr_assert_eq(s.rc, 0, "server: %s", s.err);
	cr_assert_eq(cch.aead, FR_AEAD_XCHACHA20);
	sealed_both_ways();
}

Test(handshake, client_with_the_wrong_key_is_refused_by_the_server)
{
	struct server_run s;
	char err[256] = "";

	server_start(&s);
	int rc = client(key_b, err, sizeof(err));
	server_join(&s);
	cr_assert_eq(s.rc, FR_E_AUTH, "server returned %d: %s", s.rc, s.err);
	cr_assert_null(s.who);
	cr_assert_neq(rc, 0, "the client went on after the server refused it");
	cr_assert_not(cch.sealed);
}

Test(handshake, server_with_the_wrong_key_is_refused_by_the_client)
{
	struct server_run s;
	char err[256] = "";

	memcpy(account.key, key_b, 32); /* the server holds another password */
	server_start(&s);
	int rc = client(key_a, err, sizeof(err));
	server_join(&s);
	cr_assert_neq(rc, 0, "the client accepted a server with another key");
	cr_assert_neq(s.rc, 0, "the server accepted a client with another key");
}

/* An unknown account and a wrong password look and log the same. */
Test(handshake, unknown_account_is_refused_like_a_wrong_password)
{
	struct server_run s, w;
	char err[256] = "", werr[256] = "";

	strcpy(account.code, "XYZ");
	server_start(&s);
	int rc = client(key_a, err, sizeof(err));
	server_join(&s);
	cr_assert_eq(s.rc, FR_E_AUTH);
	cr_assert_neq(rc, 0);

	teardown();
	setup();
	server_start(&w);
	int wrc = client(key_b, werr, sizeof(werr));
	server_join(&w);
	cr_assert_eq(wrc, rc);
	cr_assert_str_eq(werr, err, "the client can tell them apart");
	cr_assert_str_eq(w.err, s.err, "the receiver logs them differently");
	cr_assert(strstr(s.err, "unknown account or wrong password"), "%s",
		  s.err);
}

Test(handshake, client_of_the_previous_protocol_is_told_to_upgrade)
{
	struct server_run s;
	uint8_t hello[8 + 3 + FR_NONCE_LEN] = {0}, *body = NULL;
	uint32_t type, len;
	char err[256] = "";

	server_start(&s);
	fr_put32(hello, FR_PROTO_MAGIC);
	fr_put16(hello + 4, FR_PROTO_VERSION - 1);
	hello[6] = 3;
	memcpy(hello + 8, "CEN", 3);
	cr_assert_eq(fr_msg_send(&cch, FR_MSG_HELLO, hello, sizeof(hello)), 0);
	int rc = fr_msg_recv(&cch, &type, &body, &len, 256, err, sizeof(err));
	server_join(&s);
	cr_assert_eq(rc, FR_E_REFUSED);
	cr_assert(strstr(err, "upgrade"), "%s", err);
	cr_assert_eq(s.rc, FR_E_BAD_VERSION);
	cr_assert(strstr(s.err, "upgrade ferry at the sending site"), "%s",
		  s.err);
}

/* ---- a fake receiver that accepts anyone ------------------------------ */

enum fake_welcome { W_RANDOM, W_REFLECT };
struct fake_server {
	pthread_t t;
	enum fake_welcome how;
};

static void *fake_server_main(void *arg)
{
	struct fake_server *f = arg;
	uint8_t *body = NULL, chal[CHAL_LEN];
	uint8_t proof[FR_CONFIRM_LEN];
	uint32_t type, len;
	char err[256];

	if (fr_msg_recv(&sch, &type, &body, &len, 256, err, sizeof(err)) < 0)
		return NULL;
	free(body);
	fr_random(chal, FR_NONCE_LEN);
	chal[FR_NONCE_LEN] = FR_AEAD_XCHACHA20;
	crypto_core_ristretto255_random(chal + FR_NONCE_LEN + 1);
	chal[FR_NONCE_LEN + 33] = 3;
	memcpy(chal + FR_NONCE_LEN + 34, "LAB", 3);
	fr_msg_send(&sch, FR_MSG_CHALLENGE, chal, sizeof(chal));
	if (fr_msg_recv(&sch, &type, &body, &len, 256, err, sizeof(err)) < 0)
		return NULL;
	if (f->how == W_REFLECT && len == 32 + FR_CONFIRM_LEN)
		memcpy(proof, body + 32, FR_CONFIRM_LEN); /* the client's */
	else
		fr_random(proof, sizeof(proof));
	free(body);
	fr_msg_send(&sch, FR_MSG_WELCOME, proof, sizeof(proof));
	return NULL;
}

static void fake_server_case(enum fake_welcome how)
{
	struct fake_server f = {.how = how};
	char err[256] = "";

	cr_assert_eq(pthread_create(&f.t, NULL, fake_server_main, &f), 0);
	int rc = client(key_a, err, sizeof(err));
	pthread_join(f.t, NULL);
	cr_assert_eq(rc, FR_E_AUTH,
		     "a receiver that cannot prove the key was accepted "
		     "(rc %d: %s)",
		     rc, err);
	cr_assert_not(cch.sealed);
}

Test(handshake, receiver_with_a_random_proof_is_refused)
{
	fake_server_case(W_RANDOM);
}

Test(handshake, receiver_reflecting_the_clients_proof_is_refused)
{
	fake_server_case(W_REFLECT);
}

/* ---- a fake client that cannot prove the key ----------------------------- */

/* HELLO for account CEN with a fixed client nonce; the server's
 * CHALLENGE (nonce, AEAD, share). */
static void fake_hello(const uint8_t cnonce[FR_NONCE_LEN],
		       uint8_t chal[CHAL_LEN])
{
	uint8_t hello[8 + 3 + FR_NONCE_LEN], *body = NULL;
	uint32_t type, len;
	char err[256];

	fr_put32(hello, FR_PROTO_MAGIC);
	fr_put16(hello + 4, FR_PROTO_VERSION);
	hello[6] = 3;
	hello[7] = 0; /* no AES-NI: XChaCha20 */
	memcpy(hello + 8, "CEN", 3);
	memcpy(hello + 11, cnonce, FR_NONCE_LEN);
	cr_assert_eq(fr_msg_send(&cch, FR_MSG_HELLO, hello, sizeof(hello)), 0);
	cr_assert_eq(fr_msg_recv(&cch, &type, &body, &len, 256, err,
				 sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(type, FR_MSG_CHALLENGE);
	cr_assert_eq(len, CHAL_LEN);
	cr_assert_arr_eq(body + FR_NONCE_LEN + 33, "\3LAB", 4,
			 "the receiver names its site");
	memcpy(chal, body, len);
	free(body);
}

/* The AUTH a client holding key would send to this CHALLENGE, had it
 * bound site as the receiver's code. */
static void auth_for(const uint8_t key[32], const uint8_t cnonce[FR_NONCE_LEN],
		     const uint8_t *chal, const char *site,
		     uint8_t auth[32 + FR_CONFIRM_LEN])
{
	uint8_t sid[FR_SID_LEN], g[32], y[32], isk[64];
	uint8_t ad_c[4] = {'C', 0, 0, 0}, ad_s[2 + FR_CODE_MAX];
	size_t ad_s_len = 2 + strlen(site);
	struct fr_session_keys k;

	ad_s[0] = 'S';
	ad_s[1] = chal[FR_NONCE_LEN];
	memcpy(ad_s + 2, site, strlen(site));
	fr_put16(ad_c + 1, FR_PROTO_VERSION);
	memcpy(sid, cnonce, FR_NONCE_LEN);
	memcpy(sid + FR_NONCE_LEN, chal, FR_NONCE_LEN);
	cr_assert_eq(fr_cpace_generator(key, "CEN", sid, g), 0);
	crypto_core_ristretto255_scalar_random(y);
	cr_assert_eq(fr_cpace_share(g, y, auth), 0);
	cr_assert_eq(fr_cpace_isk(y, chal + FR_NONCE_LEN + 1, sid,
				  chal + FR_NONCE_LEN + 1, ad_s, ad_s_len, auth,
				  ad_c, 4, isk),
		     0);
	fr_session_keys(isk, chal[FR_NONCE_LEN], &k);
	memcpy(auth + 32, k.confirm_c, FR_CONFIRM_LEN);
}

static void real_auth(const uint8_t key[32], const uint8_t cnonce[FR_NONCE_LEN],
		      const uint8_t *chal, uint8_t auth[32 + FR_CONFIRM_LEN])
{
	auth_for(key, cnonce, chal, "LAB", auth);
}

/* After our AUTH, the server must not send WELCOME. */
static void expect_no_welcome(struct server_run *s)
{
	uint8_t *body = NULL;
	uint32_t type = 0, len;
	char err[256];

	server_join(s);
	cr_assert_eq(s->rc, FR_E_AUTH, "server returned %d: %s", s->rc,
		     s->err);
	cr_assert_null(s->who);
	if (fr_msg_recv(&cch, &type, &body, &len, 4096, err, sizeof(err)) == 0)
		cr_assert_neq(type, FR_MSG_WELCOME,
			      "the server welcomed a client that cannot prove "
			      "the key");
	free(body);
}

Test(handshake, client_with_a_random_proof_is_refused)
{
	struct server_run s;
	uint8_t cnonce[FR_NONCE_LEN], chal[CHAL_LEN];
	uint8_t auth[32 + FR_CONFIRM_LEN];

	server_start(&s);
	fr_random(cnonce, sizeof(cnonce));
	fake_hello(cnonce, chal);
	crypto_core_ristretto255_random(auth);
	fr_random(auth + 32, FR_CONFIRM_LEN);
	cr_assert_eq(fr_msg_send(&cch, FR_MSG_AUTH, auth, sizeof(auth)), 0);
	expect_no_welcome(&s);
}

Test(handshake, the_right_auth_is_welcomed)
{
	struct server_run s;
	uint8_t cnonce[FR_NONCE_LEN], chal[CHAL_LEN];
	uint8_t auth[32 + FR_CONFIRM_LEN], *body = NULL;
	uint32_t type, len;
	char err[256];

	/* the fake client's AUTH is right when it holds the key: so the
	 * replay below is refused for being a replay, not for its form */
	server_start(&s);
	fr_random(cnonce, sizeof(cnonce));
	fake_hello(cnonce, chal);
	real_auth(key_a, cnonce, chal, auth);
	cr_assert_eq(fr_msg_send(&cch, FR_MSG_AUTH, auth, sizeof(auth)), 0);
	cr_assert_eq(fr_msg_recv(&cch, &type, &body, &len, 256, err,
				 sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(type, FR_MSG_WELCOME);
	free(body);
	server_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err);
}

Test(handshake, a_handshake_replayed_is_refused)
{
	struct server_run s;
	uint8_t cnonce[FR_NONCE_LEN], chal[CHAL_LEN];
	uint8_t chal2[CHAL_LEN], auth[32 + FR_CONFIRM_LEN];

	/* an earlier session's HELLO and AUTH, right then, sent again */
	server_start(&s);
	fr_random(cnonce, sizeof(cnonce));
	fake_hello(cnonce, chal);
	real_auth(key_a, cnonce, chal, auth);
	cr_assert_eq(fr_msg_send(&cch, FR_MSG_AUTH, auth, sizeof(auth)), 0);
	server_join(&s);
	cr_assert_eq(s.rc, 0, "%s", s.err);

	teardown();
	setup();
	server_start(&s);
	fake_hello(cnonce, chal2);
	cr_assert(memcmp(chal2, chal, FR_NONCE_LEN), "the server nonce repeats");
	cr_assert(memcmp(chal2 + FR_NONCE_LEN + 1, chal + FR_NONCE_LEN + 1, 32),
		  "the server's share repeats");
	cr_assert_eq(fr_msg_send(&cch, FR_MSG_AUTH, auth, sizeof(auth)), 0);
	expect_no_welcome(&s);
}

/* ---- the site at the other end ------------------------------------------ */

Test(handshake, a_client_that_meant_another_site_leaves_at_once)
{
	struct server_run s;
	char err[256] = "";

	/* the right account and password, but this receiver is LAB's */
	server_start(&s);
	int rc = fr_handshake_client(&cch, "CEN", key_a, "XYZ", err,
				     sizeof(err));
	cr_assert_eq(rc, FR_E_WRONG_SITE, "rc %d: %s", rc, err);
	cr_assert(strstr(err, "site LAB's, not XYZ's"), "%s", err);
	cr_assert_not(cch.sealed);
	shutdown(sv[0], SHUT_RDWR); /* the client is gone: no AUTH came */
	server_join(&s);
	cr_assert_neq(s.rc, 0, "the server welcomed a client that sent no AUTH");
	cr_assert_null(s.who);
}

Test(handshake, the_site_code_is_bound_in_the_transcript)
{
	struct server_run s;
	uint8_t cnonce[FR_NONCE_LEN], chal[CHAL_LEN];
	uint8_t auth[32 + FR_CONFIRM_LEN];

	/* a client holding the key that saw another code (altered on the
	 * way) makes another key: refused */
	server_start(&s);
	fr_random(cnonce, sizeof(cnonce));
	fake_hello(cnonce, chal);
	auth_for(key_a, cnonce, chal, "XYZ", auth);
	cr_assert_eq(fr_msg_send(&cch, FR_MSG_AUTH, auth, sizeof(auth)), 0);
	expect_no_welcome(&s);
}
