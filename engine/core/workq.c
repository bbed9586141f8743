/*
 * workq.c - the hash and compress workers, one per core by default,
 * shared by every session of the process. Jobs are structs owned by the
 * session (one per buffer slot), so nothing is allocated per segment. A
 * finished job goes to its session's done queue, whose eventfd the
 * session's ring is reading: the I/O thread wakes without polling.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/fr_core.h"

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fr_job *head, *tail;
	int n;
	struct fr_cctx *cctx;
	struct fr_dctx *dctx;
	int started;
} wq = {.once = PTHREAD_ONCE_INIT,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER};

struct worker_arg {
	int id;
};

static void *worker_main(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (;;) {
		pthread_mutex_lock(&wq.lock);
		while (!wq.head)
			pthread_cond_wait(&wq.cond, &wq.lock);
		struct fr_job *job = wq.head;
		wq.head = job->next;
		if (!wq.head)
			wq.tail = NULL;
		pthread_mutex_unlock(&wq.lock);

		job->next = NULL;
		job->fn(job, id);

		/* The eventfd is written under the lock: once the I/O thread
		 * has taken this job it may end the session and free q, so
		 * nothing of q may be touched after the unlock. */
		struct fr_doneq *q = job->done;
		uint64_t one = 1;
		pthread_mutex_lock(&q->lock);
		if (q->tail)
			q->tail->next = job;
		else
			q->head = job;
		q->tail = job;
		if (write(q->efd, &one, sizeof(one)) < 0)
			one = 0; /* counter saturated: the reader wakes anyway */
		pthread_mutex_unlock(&q->lock);
	}
	return NULL;
}

int fr_workq_start(int n)
{
	pthread_mutex_lock(&wq.lock);
	if (wq.started) {
		pthread_mutex_unlock(&wq.lock);
		return 0;
	}
	if (n <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (int)c : 1;
	}
	wq.cctx = calloc((size_t)n, sizeof(*wq.cctx));
	wq.dctx = calloc((size_t)n, sizeof(*wq.dctx));
	if (!wq.cctx || !wq.dctx) {
		pthread_mutex_unlock(&wq.lock);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		if (fr_cctx_init(&wq.cctx[i]) < 0 ||
		    fr_dctx_init(&wq.dctx[i]) < 0) {
			pthread_mutex_unlock(&wq.lock);
			return -ENOMEM;
		}
	}
	for (int i = 0; i < n; i++) {
		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(&t, &at, worker_main,
					(void *)(intptr_t)i);
		pthread_attr_destroy(&at);
		if (rc) {
			pthread_mutex_unlock(&wq.lock);
			return -rc;
		}
	}
	wq.n = n;
	wq.started = 1;
	pthread_mutex_unlock(&wq.lock);
	return 0;
}

int fr_workq_count(void)
{
	return wq.n;
}

struct fr_cctx *fr_workq_cctx(int worker)
{
	return &wq.cctx[worker];
}

struct fr_dctx *fr_workq_dctx(int worker)
{
	return &wq.dctx[worker];
}

void fr_workq_push(struct fr_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&wq.lock);
	if (wq.tail)
		wq.tail->next = job;
	else
		wq.head = job;
	wq.tail = job;
	pthread_cond_signal(&wq.cond);
	pthread_mutex_unlock(&wq.lock);
}

int fr_doneq_init(struct fr_doneq *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	q->efd = eventfd(0, EFD_CLOEXEC);
	return q->efd < 0 ? -errno : 0;
}

void fr_doneq_fini(struct fr_doneq *q)
{
	/* a worker still inside the critical section finishes first */
	pthread_mutex_lock(&q->lock);
	pthread_mutex_unlock(&q->lock);
	if (q->efd > 0)
		close(q->efd);
	q->efd = -1;
	pthread_mutex_destroy(&q->lock);
}

void fr_doneq_poke(struct fr_doneq *q)
{
	uint64_t one = 1;

	if (write(q->efd, &one, sizeof(one)) < 0)
		return; /* counter saturated: the reader wakes anyway */
}

struct fr_job *fr_doneq_take(struct fr_doneq *q)
{
	pthread_mutex_lock(&q->lock);
	struct fr_job *j = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->lock);
	return j;
}

void fr_wjob_push(struct fr_wjob *w, void (*fn)(struct fr_job *, int),
		  struct fr_doneq *dq)
{
	w->done = false;
	w->busy = true;
	w->job.fn = fn;
	w->job.done = dq;
	fr_workq_push(&w->job);
}

void fr_wjob_wait(struct fr_doneq *dq, struct fr_wjob *w)
{
	while (!w->done) {
		uint64_t v;
		struct fr_job *j = fr_doneq_take(dq);
		if (!j) {
			if (read(dq->efd, &v, 8) < 0 && errno != EINTR &&
			    errno != EAGAIN)
				return;
			continue;
		}
		for (; j; j = j->next)
			((struct fr_wjob *)j)->done = true;
	}
	w->busy = false;
}
