/*
 * syncer.c - durability in batches, off the data path. Segments written
 * into a partial package are handed over one by one; a thread makes them
 * durable (one syncfs for all that arrived since its last one) and
 * journals them, then reports the batch. While it waits on the disk the
 * caller goes on reading and writing the next segments, so the flush of
 * one batch overlaps the writes of the next.
 *
 * After a failed sync nothing more is journaled: a later syncfs may
 * succeed without the lost bytes, so the error sticks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/fr_store.h"

static void *syncer_main(void *arg)
{
	struct fr_syncer *s = arg;
	uint32_t *batch = malloc(sizeof(uint32_t) * (s->pkg->m.n_segments + 1));

	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->n_pending && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->n_pending && s->stop) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		uint32_t n = s->n_pending;
		int err = s->err ? s->err : batch ? 0 : -ENOMEM;
		if (!err)
			memcpy(batch, s->pending, n * sizeof(uint32_t));
		s->n_pending = 0;
		pthread_mutex_unlock(&s->lock);

		if (!err && syncfs(s->pkg->tree_fd) < 0)
			err = -errno;
		if (!err)
			err = fr_journal_append(&s->pkg->j, &s->pkg->m, batch, n);
		if (!err && s->done)
			s->done(s->arg, batch, n);
		pthread_mutex_lock(&s->lock);
		if (err && !s->err)
			s->err = err;
		s->n_journaled += n;
		pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->lock);
		if (s->wake) {
			s->wake(s->arg);
		} else if (s->notify_fd >= 0) {
			uint64_t one = 1;
			if (write(s->notify_fd, &one, 8) < 0)
				continue;
		}
	}
	free(batch);
	return NULL;
}

int fr_syncer_start(struct fr_syncer *s, struct fr_store_pkg *p,
		    void (*done)(void *arg, const uint32_t *segs, uint32_t n),
		    void *arg, int notify_fd)
{
	memset(s, 0, sizeof(*s));
	s->pkg = p;
	s->done = done;
	s->arg = arg;
	s->notify_fd = notify_fd;
	s->pending = malloc(sizeof(uint32_t) * (p->m.n_segments + 1));
	if (!s->pending)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_cond_init(&s->idle, NULL);
	int rc = pthread_create(&s->thread, NULL, syncer_main, s);
	if (rc) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
		pthread_cond_destroy(&s->idle);
		free(s->pending);
		s->pending = NULL;
		return -rc;
	}
	s->running = true;
	return 0;
}

void fr_syncer_add(struct fr_syncer *s, uint32_t seg)
{
	pthread_mutex_lock(&s->lock);
	s->pending[s->n_pending++] = seg;
	s->n_added++;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int fr_syncer_state(struct fr_syncer *s, uint32_t *backlog)
{
	pthread_mutex_lock(&s->lock);
	int err = s->err;
	if (backlog)
		*backlog = s->n_added - s->n_journaled;
	pthread_mutex_unlock(&s->lock);
	return err;
}

int fr_syncer_wait(struct fr_syncer *s, uint32_t max_backlog)
{
	pthread_mutex_lock(&s->lock);
	while (!s->err && s->n_added - s->n_journaled > max_backlog)
		pthread_cond_wait(&s->idle, &s->lock);
	int err = s->err;
	pthread_mutex_unlock(&s->lock);
	return err;
}

int fr_syncer_stop(struct fr_syncer *s)
{
	if (!s->running)
		return s->err;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->running = false;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->idle);
	free(s->pending);
	s->pending = NULL;
	return s->err;
}
