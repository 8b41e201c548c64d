/*
 * async.c -- the blocking-work pool (async.h).  Jobs are taken in order
 * by a few threads; results go back through notify_post().
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "async.h"
#include "log.h"
#include "util.h"

#define ASYNC_THREADS_MAX	16

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct async_job *head;
	struct async_job **tail;
	int		 stopping;
	unsigned	 n;
	pthread_t	 threads[ASYNC_THREADS_MAX];
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER };

static void *
async_main(void *arg)
{
	struct async_job *j;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (pool.head == NULL && !pool.stopping)
			pthread_cond_wait(&pool.cond, &pool.lock);
		if ((j = pool.head) != NULL) {
			pool.head = j->next;
			if (pool.head == NULL)
				pool.tail = &pool.head;
		}
		pthread_mutex_unlock(&pool.lock);
		if (j == NULL)
			return NULL;
		j->work(j);
		notify_post(j->notify, &j->done);
	}
}

void
async_start(unsigned nthreads)
{
	unsigned i;
	int r;

	pool.tail = &pool.head;
	if (nthreads > ASYNC_THREADS_MAX)
		nthreads = ASYNC_THREADS_MAX;
	for (i = 0; i < nthreads; i++) {
		if ((r = pthread_create(&pool.threads[i], NULL, async_main,
		    NULL)) != 0) {
			errno = r;
			fatal("async: pthread_create");
		}
		pool.n++;
	}
}

void
async_stop(void)
{
	unsigned i;

	pthread_mutex_lock(&pool.lock);
	pool.stopping = 1;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	for (i = 0; i < pool.n; i++)
		pthread_join(pool.threads[i], NULL);
	pool.n = 0;
}

void
async_run(struct async_job *j, struct notify *n)
{
	j->notify = n;
	j->next = NULL;
	pthread_mutex_lock(&pool.lock);
	*pool.tail = j;
	pool.tail = &j->next;
	pthread_cond_signal(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
}
