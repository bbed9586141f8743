/*
 * io_pool.c - the buffer pool: exhaustion, reuse, alignment, misuse that
 * must abort, and ids never handed out twice under concurrent get/put.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fr_io.h"

#if defined(FERRY_SANITIZE) && defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

static struct fr_pool *new_pool(unsigned count, size_t size)
{
	struct fr_pool *p = NULL;
	int ret = fr_pool_new(&p, count, size);

	cr_assert_eq(ret, 0, "fr_pool_new(%u, %zu): %s", count, size,
		     strerror(-ret));
	return p;
}

Test(io_pool, get_until_enobufs)
{
	struct fr_pool *p = new_pool(8, 4096);
	unsigned seen = 0, i;

	cr_assert_eq(fr_pool_count(p), 8);
	cr_assert_eq(fr_pool_avail(p), 8);
	for (i = 0; i < 8; i++) {
		int id = fr_pool_get(p);

		cr_assert(id >= 0 && id < 8, "id %d", id);
		cr_assert_eq(seen & (1u << id), 0, "id %d handed out twice",
			     id);
		seen |= 1u << id;
		cr_assert_eq(fr_pool_avail(p), 8 - i - 1);
	}
	cr_assert_eq(fr_pool_get(p), -ENOBUFS);
	cr_assert_eq(fr_pool_get(p), -ENOBUFS);
	for (i = 0; i < 8; i++)
		fr_pool_put(p, (int)i);
	cr_assert_eq(fr_pool_avail(p), 8);
	fr_pool_free(p);
}

Test(io_pool, put_get_reuse)
{
	struct fr_pool *p = new_pool(4, 100);
	int a = fr_pool_get(p), b = fr_pool_get(p);

	cr_assert(a >= 0 && b >= 0 && a != b);
	fr_pool_put(p, a);
	cr_assert_eq(fr_pool_avail(p), 3);
	/* the most recently returned buffer comes back first (still warm) */
	cr_assert_eq(fr_pool_get(p), a);
	fr_pool_put(p, b);
	fr_pool_put(p, a);
	cr_assert_eq(fr_pool_avail(p), 4);
	fr_pool_free(p);
}

Test(io_pool, alignment_and_size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct fr_pool *p = new_pool(5, page + 1);
	unsigned char *prev = NULL;
	int i;

	cr_assert_eq(fr_pool_buf_size(p), 2 * page, "rounded up to pages");
	for (i = 0; i < 5; i++) {
		int id = fr_pool_get(p);
		unsigned char *b = fr_pool_buf(p, id);

		cr_assert_not_null(b);
		cr_assert_eq((uintptr_t)b % page, 0, "buffer %d not aligned",
			     id);
		if (prev)
			cr_assert(b != prev);
		/* the whole rounded size is usable */
		memset(b, 0xa5, fr_pool_buf_size(p));
		prev = b;
	}
	cr_assert_null(fr_pool_buf(p, 5));
	cr_assert_null(fr_pool_buf(p, -1));
	fr_pool_free(p);
}

Test(io_pool, bad_args)
{
	struct fr_pool *p = (struct fr_pool *)1;

	cr_assert_eq(fr_pool_new(&p, 0, 4096), -EINVAL);
	cr_assert_null(p);
	cr_assert_eq(fr_pool_new(&p, 4, 0), -EINVAL);
	cr_assert_eq(fr_pool_new(&p, 2, SIZE_MAX - 10), -EOVERFLOW);
	fr_pool_free(NULL);
}

Test(io_pool, double_put_aborts, .signal = SIGABRT)
{
	struct fr_pool *p = new_pool(2, 4096);
	int id = fr_pool_get(p);

	fr_pool_put(p, id);
	fr_pool_put(p, id);
}

Test(io_pool, put_never_taken_aborts, .signal = SIGABRT)
{
	struct fr_pool *p = new_pool(2, 4096);

	fr_pool_put(p, 1);
}

Test(io_pool, put_out_of_range_aborts, .signal = SIGABRT)
{
	struct fr_pool *p = new_pool(2, 4096);

	fr_pool_put(p, 2);
}

Test(io_pool, put_negative_aborts, .signal = SIGABRT)
{
	struct fr_pool *p = new_pool(2, 4096);

	fr_pool_put(p, -1);
}

#if defined(FERRY_SANITIZE) && defined(__SANITIZE_ADDRESS__)
Test(io_pool, free_buffers_poisoned)
{
	struct fr_pool *p = new_pool(2, 4096);
	int id = fr_pool_get(p);
	unsigned char *b = fr_pool_buf(p, id);
	unsigned char *other = fr_pool_buf(p, 1 - id);

	cr_assert_eq(__asan_region_is_poisoned(b, fr_pool_buf_size(p)), NULL);
	cr_assert(__asan_address_is_poisoned(other),
		  "free buffer not poisoned");
	fr_pool_put(p, id);
	cr_assert(__asan_address_is_poisoned(b),
		  "returned buffer not poisoned");
	cr_assert(__asan_address_is_poisoned(b + fr_pool_buf_size(p) - 1));
	fr_pool_free(p);
}

#endif

/* ---- concurrency --------------------------------------------------------- */

#define NTHREADS 4
#define ROUNDS 20000
#define POOL_N 6

struct conc {
	struct fr_pool *p;
	atomic_int owner[POOL_N]; /* 0 free, else thread number + 1 */
	atomic_uint errors;
	atomic_uint enobufs;
};

struct conc_arg {
	struct conc *c;
	int me;
};

static void *conc_thread(void *arg)
{
	struct conc_arg *a = arg;
	struct conc *c = a->c;
	int held[2], nheld = 0, r;

	for (r = 0; r < ROUNDS; r++) {
		int id = fr_pool_get(c->p), expect = 0;

		if (id == -ENOBUFS) {
			atomic_fetch_add(&c->enobufs, 1);
		} else if (id < 0 || id >= POOL_N) {
			atomic_fetch_add(&c->errors, 1);
		} else {
			unsigned char *b = fr_pool_buf(c->p, id);

			if (!atomic_compare_exchange_strong(&c->owner[id],
							    &expect, a->me + 1))
				atomic_fetch_add(&c->errors, 1);
			/* a buffer shared by mistake would show foreign bytes
			 */
			memset(b, a->me, 256);
			held[nheld++] = id;
		}
		/* hold up to two at a time, so the pool runs dry now and then
		 */
		if (nheld == 2 || (nheld && id < 0)) {
			while (nheld) {
				unsigned char *b;
				int i, h = held[--nheld];

				b = fr_pool_buf(c->p, h);
				for (i = 0; i < 256; i++)
					if (b[i] != (unsigned char)a->me) {
						atomic_fetch_add(&c->errors, 1);
						break;
					}
				expect = a->me + 1;
				if (!atomic_compare_exchange_strong(
					&c->owner[h], &expect, 0))
					atomic_fetch_add(&c->errors, 1);
				fr_pool_put(c->p, h);
			}
		}
	}
	while (nheld) {
		int h = held[--nheld];

		atomic_store(&c->owner[h], 0);
		fr_pool_put(c->p, h);
	}
	return NULL;
}

Test(io_pool, concurrent_get_put)
{
	static struct conc c;
	struct conc_arg args[NTHREADS];
	pthread_t th[NTHREADS];
	int i;

	c.p = new_pool(POOL_N, 4096);
	for (i = 0; i < NTHREADS; i++) {
		args[i].c = &c;
		args[i].me = i;
		cr_assert_eq(
		    pthread_create(&th[i], NULL, conc_thread, &args[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&c.errors), 0, "%u ownership errors",
		     atomic_load(&c.errors));
	cr_assert_eq(fr_pool_avail(c.p), POOL_N);
	cr_log_info("concurrent: %u gets found the pool empty",
		    atomic_load(&c.enobufs));
	fr_pool_free(c.p);
}
