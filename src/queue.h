/*
 * queue.h -- the delivery side: a thread that owns every queued message,
 * routes its recipients, delivers them (deliver.c), persists per-recipient
 * state, retries with backoff, and sends bounces and delay notices.
 */
#ifndef SLUICE_QUEUE_H
#define SLUICE_QUEUE_H

struct config;

/* Load the spool and start the delivery thread. */
void	queue_start(const struct config *);
void	queue_stop(void);
/* A message was committed (any thread): schedule it now. */
void	queue_submit(const char *id);

#endif
