/*
 * fuzz_config.c - the config file: fr_config_load on the input (through
 * a memfd, named as /proc/self/fd/N). The environment is emptied first,
 * so no password-env finds a password: the whole file is parsed and
 * checked, and the load then stops before the (slow, Argon2id) key
 * derivation. Nothing is logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct fr_config c;
	char path[64];

	if (!ready) {
		clearenv();
		fr_log_verbosity = -1;
		ready = 1;
	}
	if (size > (64u << 10))
		return 0;
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && fr_pwrite_all(fd, data, size, 0) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int r = fr_config_load(&c, path);
	if (r == 0) {
		const struct fr_address *out[16];
		if (!c.code[0] || !c.store[0])
			abort();
		for (unsigned i = 0; i < c.n_addresses; i++)
			if (fr_config_addresses(&c, c.addresses[i].site, out,
						16) < 1)
				abort();
		for (unsigned i = 0; i < c.n_accounts; i++)
			if (!fr_config_account(&c, c.accounts[i].code))
				abort();
		fr_config_fini(&c);
	} else if (c.accounts || c.addresses) {
		abort(); /* a failed load keeps nothing */
	}
	close(fd);
	return 0;
}
