/*
 * pool.c - the buffer pool: one anonymous mapping cut into equal,
 * page-aligned buffers named by index.
 *
 * Invariants:
 *  - the mapping is made once and never grows: memory is bounded by the
 *    pool, whatever flows through it;
 *  - an id is either on the free stack or has its in_use bit set, never
 *    both; both are changed only under the mutex;
 *  - in sanitizer builds every free buffer is poisoned, so touching a
 *    buffer after handing it back (or before the kernel is done with it and
 *    the last holder returned it) is reported at the faulty access. Buffers
 *    in use are unpoisoned, which is also what registered buffers need.
 *
 * No io_uring here: registration is the ring's business (ring.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fr_io.h"

#if defined(FERRY_SANITIZE) && defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define FR_POISON(a, n) ASAN_POISON_MEMORY_REGION((a), (n))
#define FR_UNPOISON(a, n) ASAN_UNPOISON_MEMORY_REGION((a), (n))
#else
#define FR_POISON(a, n) ((void)(a), (void)(n))
#define FR_UNPOISON(a, n) ((void)(a), (void)(n))
#endif

struct fr_pool {
	unsigned char *base; /* count * stride bytes, page-aligned */
	size_t stride;	     /* buf_size rounded up to the page size */
	size_t map_len;
	unsigned count;
	pthread_mutex_t lock;  /* guards everything below */
	unsigned top;	       /* number of ids on free[] */
	unsigned *free;	       /* stack of free ids, free[top - 1] next out */
	unsigned char *in_use; /* one byte per id: cheaper than bit fiddling */
};

static unsigned char *pool_addr(const struct fr_pool *p, unsigned id)
{
	return p->base + (size_t)id * p->stride;
}

int fr_pool_new(struct fr_pool **out, unsigned count, size_t buf_size)
{
	struct fr_pool *p;
	long page = sysconf(_SC_PAGESIZE);
	size_t stride;
	unsigned i;
	int err;

	*out = NULL;
	if (count == 0 || buf_size == 0 || count > INT32_MAX || page <= 0)
		return -EINVAL;
	if (buf_size > SIZE_MAX - (size_t)page)
		return -EOVERFLOW;
	stride = (buf_size + (size_t)page - 1) & ~((size_t)page - 1);
	if (stride > SIZE_MAX / count)
		return -EOVERFLOW;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->stride = stride;
	p->count = count;
	p->map_len = stride * count;
	p->free = calloc(count, sizeof(*p->free));
	p->in_use = calloc(count, sizeof(*p->in_use));
	if (!p->free || !p->in_use) {
		err = -ENOMEM;
		goto fail;
	}
	err = pthread_mutex_init(&p->lock, NULL);
	if (err) {
		err = -err;
		goto fail;
	}
	p->base = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->base == MAP_FAILED) {
		err = -errno;
		p->base = NULL;
		pthread_mutex_destroy(&p->lock);
		goto fail;
	}
	/* Lowest id on top: a lightly used pool keeps touching the same pages.
	 */
	for (i = 0; i < count; i++)
		p->free[i] = count - 1 - i;
	p->top = count;
	FR_POISON(p->base, p->map_len);
	*out = p;
	return 0;
fail:
	free(p->free);
	free(p->in_use);
	free(p);
	return err;
}

void fr_pool_free(struct fr_pool *p)
{
	if (!p)
		return;
	/*
	 * ASan may keep the shadow of an unmapped range: a later mapping at
	 * the same address must not inherit our poison.
	 */
	FR_UNPOISON(p->base, p->map_len);
	munmap(p->base, p->map_len);
	pthread_mutex_destroy(&p->lock);
	free(p->free);
	free(p->in_use);
	free(p);
}

int fr_pool_get(struct fr_pool *p)
{
	unsigned id;

	pthread_mutex_lock(&p->lock);
	if (p->top == 0) {
		pthread_mutex_unlock(&p->lock);
		return -ENOBUFS;
	}
	id = p->free[--p->top];
	p->in_use[id] = 1;
	pthread_mutex_unlock(&p->lock);
	/* The buffer is ours alone now: no need to hold the lock for this. */
	FR_UNPOISON(pool_addr(p, id), p->stride);
	return (int)id;
}

void fr_pool_put(struct fr_pool *p, int id)
{
	pthread_mutex_lock(&p->lock);
	if (id < 0 || (unsigned)id >= p->count) {
		fprintf(stderr,
			"ferry: fr_pool_put: buffer id %d out of range "
			"(pool of %u)\n",
			id, p->count);
		abort();
	}
	if (!p->in_use[id]) {
		fprintf(stderr,
			"ferry: fr_pool_put: buffer %d is already free "
			"(double put)\n",
			id);
		abort();
	}
	p->in_use[id] = 0;
	/*
	 * Poison before the id becomes visible on the stack: once pushed,
	 * another thread may get and unpoison it, and poisoning after that
	 * would blame the new owner.
	 */
	FR_POISON(pool_addr(p, (unsigned)id), p->stride);
	p->free[p->top++] = (unsigned)id;
	pthread_mutex_unlock(&p->lock);
}

void *fr_pool_buf(const struct fr_pool *p, int id)
{
	if (id < 0 || (unsigned)id >= p->count)
		return NULL;
	return pool_addr(p, (unsigned)id);
}

size_t fr_pool_buf_size(const struct fr_pool *p)
{
	return p->stride;
}

unsigned fr_pool_count(const struct fr_pool *p)
{
	return p->count;
}

unsigned fr_pool_avail(struct fr_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->top;
	pthread_mutex_unlock(&p->lock);
	return n;
}
