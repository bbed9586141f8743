/*
 * auth.c - passwords become keys, keys prove themselves. Both sides of a
 * session hold the account's password; neither sends it. The key is
 * Argon2id (libsodium crypto_pwhash) of the password salted by the
 * account code, and each side proves the key with HMAC-SHA256 over both
 * nonces, its role and the account, so a proof cannot be replayed in
 * another session or reflected back as the other role.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_internal.h"

static int sodium_ready(void)
{
	static int state; /* 0 unknown, 1 ok, -1 failed */

	if (state == 0)
		state = sodium_init() < 0 ? -1 : 1;
	return state > 0 ? 0 : -ENOSYS;
}

int fr_key_derive(const char *password, size_t len, const char *account,
		  uint8_t key[32])
{
	uint8_t salt[crypto_pwhash_SALTBYTES];
	char label[64];

	if (sodium_ready() < 0)
		return -ENOSYS;
	snprintf(label, sizeof(label), "ferry-account:%s", account);
	crypto_generichash(salt, sizeof(salt), (const uint8_t *)label,
			   strlen(label), NULL, 0);
	/* moderate limits: derived once per process per account */
	if (crypto_pwhash(key, 32, password, len, salt, 2, 8u << 20,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM;
	return 0;
}

int fr_secret_load(const char *file, const char *env, char *out, size_t cap,
		   const char *what)
{
	if (env && *env) {
		const char *v = getenv(env);
		if (!v || !*v) {
			fr_log(FR_LOG_ERROR,
			       "%s: environment variable '%s' is not set", what,
			       env);
			return FR_E_CONFIG;
		}
		if (strlen(v) >= cap)
			return FR_E_TOO_LARGE;
		memcpy(out, v, strlen(v) + 1);
		return 0;
	}
	if (!file || !*file) {
		fr_log(FR_LOG_ERROR, "%s: no password-file or password-env",
		       what);
		return FR_E_CONFIG;
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = -errno;
		fr_log(FR_LOG_ERROR, "%s: cannot read password file '%s': %s",
		       what, file, strerror(-e));
		return e;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & 0077))
		fr_log(FR_LOG_WARN,
		       "%s: password file '%s' is readable by others "
		       "(chmod 600 it)",
		       what, file);
	ssize_t n = read(fd, out, cap - 1);
	close(fd);
	if (n < 0)
		return -errno;
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	if (!out[0]) {
		fr_log(FR_LOG_ERROR, "%s: password file '%s' is empty", what,
		       file);
		return FR_E_CONFIG;
	}
	return 0;
}

void fr_random(void *buf, size_t len)
{
	if (sodium_ready() < 0)
		abort();
	randombytes_buf(buf, len);
}

void fr_auth_proof(const uint8_t key[32], char role, const char *account,
		   const uint8_t cnonce[FR_NONCE_LEN],
		   const uint8_t snonce[FR_NONCE_LEN],
		   uint8_t proof[FR_PROOF_LEN])
{
	crypto_auth_hmacsha256_state st;
	uint8_t alen = (uint8_t)strlen(account);

	crypto_auth_hmacsha256_init(&st, key, 32);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)"ferry-v1", 8);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)&role, 1);
	crypto_auth_hmacsha256_update(&st, &alen, 1);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)account, alen);
	crypto_auth_hmacsha256_update(&st, cnonce, FR_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, snonce, FR_NONCE_LEN);
	crypto_auth_hmacsha256_final(&st, proof);
}

bool fr_auth_check(const uint8_t key[32], char role, const char *account,
		   const uint8_t cnonce[FR_NONCE_LEN],
		   const uint8_t snonce[FR_NONCE_LEN],
		   const uint8_t proof[FR_PROOF_LEN])
{
	uint8_t want[FR_PROOF_LEN];
	bool ok;

	fr_auth_proof(key, role, account, cnonce, snonce, want);
	ok = crypto_verify_32(want, proof) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}
