/*
 * fr_recv.h - engine/recv/: the receiving site's sessions: parcel
 * registration, queries and imports asked of the running receiver
 * (import.c), and a `bench link` session (bench.c).
 */
#ifndef FR_RECV_H
#define FR_RECV_H

#include "out/fr_out.h"
#include "store/fr_store.h"

/* ---- parcels, the receiver's side (recv/import.c) ---------------------- */
/* IMPORT from a client on this machine: run the import here, in the
 * running receiver, and answer IMPORT_DONE (recv/import.c). */
int fr_parcel_serve_import(const struct fr_config *c, struct fr_chan *ch,
			   const char *who, const uint8_t *body, uint32_t len);
/* IMPORT_DONE's result record (PROTOCOL.md): *out malloc'd; unpack
 * checks every field against len (FR_E_PROTOCOL; res filled as far as it
 * read: fr_import_result_fini it either way). */
int fr_import_result_pack(const struct fr_import_result *res, uint8_t **out,
			  uint32_t *len);
int fr_import_result_unpack(const uint8_t *b, uint32_t len,
			    struct fr_import_result *res);


int fr_parcel_serve_register(const struct fr_config *c, struct fr_chan *ch,
			     const char *who, const uint8_t *body,
			     uint32_t len);
int fr_parcel_serve_query(const struct fr_config *c, struct fr_chan *ch,
			  const char *who, const uint8_t *body, uint32_t len);
int fr_parcel_serve_withdraw(const struct fr_config *c, struct fr_chan *ch,
			     const char *who, const uint8_t *body,
			     uint32_t len);


/* ---- ferry bench link: the site's side (recv/bench.c) ---------------------- */
/* BENCH after the handshake: measure with the client and answer. */
int fr_bench_serve(const struct fr_config *c, struct fr_chan *ch,
		   const char *who, const char *peer, const uint8_t *body,
		   uint32_t len);

#endif
