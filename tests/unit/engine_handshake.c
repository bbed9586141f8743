/*
 * engine_handshake.c - mutual authentication, both directions, over a
 * real socket pair: the real client and the real server agree when they
 * hold the same key and refuse each other when they do not; a fake
 * receiver that accepts any client but cannot prove the key (a random
 * proof, or the client's own proof reflected) is refused by the client; a
 * fake client that cannot prove the key (a random proof, or a proof
 * replayed from an earlier session) is refused by the server, which then
 * sends no WELCOME. Whatever the handshake becomes, these must hold.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fr_internal.h"

static int sv[2];
static struct fr_account account;
static struct fr_config cfg;
static const uint8_t key_a[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t key_b[32] = {1, 2, 3, 4, 5, 6, 7, 8, 10};

static void setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
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

	s->rc = fr_handshake_server(sv[1], &cfg, &s->who, s->err,
				    sizeof(s->err));
	/* the client may be waiting for an answer that will not come */
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

static int client(const uint8_t key[32], char *err, size_t cap)
{
	return fr_handshake_client(sv[0], "CEN", key, err, cap);
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

Test(handshake, unknown_account_is_refused)
{
	struct server_run s;
	char err[256] = "";

	strcpy(account.code, "XYZ");
	server_start(&s);
	int rc = client(key_a, err, sizeof(err));
	server_join(&s);
	cr_assert_eq(s.rc, FR_E_AUTH);
	cr_assert_neq(rc, 0);
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
	uint8_t *body = NULL, nonce[FR_NONCE_LEN], proof[FR_PROOF_LEN];
	uint32_t type, len;
	char err[256];

	if (fr_msg_recv(sv[1], &type, &body, &len, 256, err, sizeof(err)) < 0)
		return NULL;
	free(body);
	fr_random(nonce, sizeof(nonce));
	fr_msg_send(sv[1], FR_MSG_CHALLENGE, nonce, sizeof(nonce));
	if (fr_msg_recv(sv[1], &type, &body, &len, 256, err, sizeof(err)) < 0)
		return NULL;
	if (f->how == W_REFLECT && len == FR_PROOF_LEN)
		memcpy(proof, body, FR_PROOF_LEN); /* the client's own proof */
	else
		fr_random(proof, sizeof(proof));
	free(body);
	fr_msg_send(sv[1], FR_MSG_WELCOME, proof, sizeof(proof));
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

/* HELLO for account CEN with a fixed client nonce; returns the server's
 * nonce from its CHALLENGE. */
static void fake_hello(const uint8_t cnonce[FR_NONCE_LEN],
		       uint8_t snonce[FR_NONCE_LEN])
{
	uint8_t hello[8 + 3 + FR_NONCE_LEN], *body = NULL;
	uint32_t type, len;
	char err[256];

	fr_put32(hello, FR_PROTO_MAGIC);
	fr_put16(hello + 4, FR_PROTO_VERSION);
	hello[6] = 3;
	hello[7] = 0;
	memcpy(hello + 8, "CEN", 3);
	memcpy(hello + 11, cnonce, FR_NONCE_LEN);
	cr_assert_eq(fr_msg_send(sv[0], FR_MSG_HELLO, hello, sizeof(hello)), 0);
	cr_assert_eq(fr_msg_recv(sv[0], &type, &body, &len, 256, err,
				 sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(type, FR_MSG_CHALLENGE);
	cr_assert_eq(len, FR_NONCE_LEN);
	memcpy(snonce, body, FR_NONCE_LEN);
	free(body);
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
	if (fr_msg_recv(sv[0], &type, &body, &len, 4096, err, sizeof(err)) == 0)
		cr_assert_neq(type, FR_MSG_WELCOME,
			      "the server welcomed a client that cannot prove "
			      "the key");
	free(body);
}

Test(handshake, client_with_a_random_proof_is_refused)
{
	struct server_run s;
	uint8_t cnonce[FR_NONCE_LEN], snonce[FR_NONCE_LEN], proof[FR_PROOF_LEN];

	server_start(&s);
	fr_random(cnonce, sizeof(cnonce));
	fake_hello(cnonce, snonce);
	fr_random(proof, sizeof(proof));
	cr_assert_eq(fr_msg_send(sv[0], FR_MSG_AUTH, proof, sizeof(proof)), 0);
	expect_no_welcome(&s);
}

Test(handshake, client_replaying_an_earlier_sessions_proof_is_refused)
{
	struct server_run s;
	uint8_t cnonce[FR_NONCE_LEN], snonce[FR_NONCE_LEN], old[FR_NONCE_LEN];
	uint8_t proof[FR_PROOF_LEN];

	/* a proof that was right for another server nonce, with the same
	 * client nonce: what an observer of an earlier session holds */
	fr_random(cnonce, sizeof(cnonce));
	fr_random(old, sizeof(old));
	fr_auth_proof(key_a, 'C', "CEN", cnonce, old, proof);
	server_start(&s);
	fake_hello(cnonce, snonce);
	cr_assert(memcmp(snonce, old, FR_NONCE_LEN), "the server nonce repeats");
	cr_assert_eq(fr_msg_send(sv[0], FR_MSG_AUTH, proof, sizeof(proof)), 0);
	expect_no_welcome(&s);
}
