/*
 * worker.h -- the threads that run SMTP sessions, one event loop each,
 * sharing the listening ports through SO_REUSEPORT.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

struct config;

/* Bind every listener once per worker (before privileges are dropped).
 * 0, or -1 with a message in err. */
int	workers_bind(const struct config *, char *err, size_t errlen);
/* Start the threads; they serve until workers_stop(). */
void	workers_start(const struct config *);
void	workers_stop(void);

#endif
