/*
 * fuzz_parcel_msg.c - the courier's messages as the receiver takes them
 * after the handshake, opened: PARCEL (parcel id, manifest), PARCEL_QUERY
 * (count, ids) and PARCEL_WITHDRAW (an id), through the receiver's own
 * handlers (engine/recv/import.c) against a real store in a temporary
 * directory. The input's first byte picks the message, the rest is its
 * body. The answer goes to a socket nobody reads (fr_msg_send on a plain
 * channel: what is sealed around it is fuzz_sealed's).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fr_config cfg;

static void cleanup(void)
{
	char cmd[1100];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cfg.store);
	if (system(cmd) != 0)
		return;
}

static void setup(void)
{
	char tmpl[] = "/tmp/ferry-fuzz-parcel-XXXXXX";
	char err[256];

	if (!mkdtemp(tmpl))
		abort();
	snprintf(cfg.store, sizeof(cfg.store), "%s", tmpl);
	strcpy(cfg.code, "LAB");
	if (fr_store_check(cfg.store, err, sizeof(err)) < 0)
		abort();
	atexit(cleanup);
	fr_log_verbosity = -1; /* quiet: most inputs are refused */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct fr_chan ch;
	int sv[2];

	if (size < 1 || size > (1u << 16))
		return 0;
	if (!ready) {
		setup();
		ready = 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	shutdown(sv[1], SHUT_RD);
	fr_chan_plain(&ch, sv[0]);
	/* the body at its exact size, so that a read past it is seen */
	uint32_t len = (uint32_t)(size - 1);
	uint8_t *body = malloc(len ? len : 1);
	if (!body)
		abort();
	memcpy(body, data + 1, len);
	switch (data[0] % 3) {
	case 0:
		fr_parcel_serve_register(&cfg, &ch, "CEN", body, len);
		break;
	case 1:
		fr_parcel_serve_query(&cfg, &ch, "CEN", body, len);
		break;
	default:
		fr_parcel_serve_withdraw(&cfg, &ch, "CEN", body, len);
		break;
	}
	free(body);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
