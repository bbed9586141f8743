/*
 * fuzz_handshake.c - the handshake, as each side meets the other's bytes
 * through a real socket. First input byte even: the input is what a
 * client sends (HELLO, AUTH) to fr_handshake_server; odd: what a
 * receiver answers (CHALLENGE, WELCOME) to fr_handshake_client. Neither
 * side may accept: the fuzzer holds no password, so a handshake that
 * succeeds is a forgery (abort).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[32] = {7, 7, 7};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fr_account acct;
	static struct fr_config cfg;
	const struct fr_account *who = NULL;
	struct fr_chan ch;
	char err[256];
	int sv[2], rc;

	if (size < 1 || size > 8192)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	strcpy(acct.code, "CEN");
	memcpy(acct.key, key, 32);
	cfg.accounts = &acct;
	cfg.n_accounts = 1;
	strcpy(cfg.code, "LAB");
	/* the peer's bytes, then its end of the connection */
	if (size > 1 && write(sv[0], data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	shutdown(sv[0], SHUT_WR);
	fr_chan_plain(&ch, sv[1]);
	if (data[0] & 1)
		rc = fr_handshake_client(&ch, "CEN", key, "LAB", err,
					 sizeof(err));
	else
		rc = fr_handshake_server(&ch, &cfg, &who, err, sizeof(err));
	if (rc == 0 || ch.sealed || who)
		abort(); /* accepted without the password */
	fr_chan_wipe(&ch);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
