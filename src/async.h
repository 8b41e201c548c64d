/*
 * async.h -- a small thread pool for work that must not stall an event
 * loop (password hashing: one yescrypt check costs milliseconds).
 */
#ifndef SLUICE_ASYNC_H
#define SLUICE_ASYNC_H

#include "notify.h"

struct async_job {
	void			(*work)(struct async_job *);	/* pool thread */
	struct notify_item	 done;		/* then done.fn on the loop */
	struct notify		*notify;
	struct async_job	*next;
};

void	async_start(unsigned nthreads);
void	async_stop(void);
/* Queue job: job->work runs on a pool thread, then job->done.fn runs on
 * n's event loop.  The caller owns job throughout. */
void	async_run(struct async_job *, struct notify *n);

#endif
