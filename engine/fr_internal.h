/*
 * fr_internal.h - every folder's header at once, for the unit tests that
 * reach into several (tests/unit/engine_*.c). The engine's own files
 * include their folder's header (core/fr_core.h, source/fr_source.h,
 * pipe/fr_pipe.h, out/fr_out.h, store/fr_store.h, recv/fr_recv.h,
 * sched/fr_sched.h), each of which includes the folders below it:
 * tools/ sees none of them, only fr_engine.h.
 */
#ifndef FR_INTERNAL_H
#define FR_INTERNAL_H

#include "recv/fr_recv.h"
#include "sched/fr_sched.h"

#endif
