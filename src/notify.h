/*
 * notify.h -- hand work back to an event loop from any thread: a
 * mutex-protected list and an eventfd per loop.  Items are intrusive
 * (embedded in the caller's struct), so posting never allocates.
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

#include <stddef.h>

struct event_base;
struct notify;

struct notify_item {
	void			(*fn)(struct notify_item *);
	struct notify_item	*next;
};

#define NOTIFY_CONTAINER(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

struct notify	*notify_new(struct event_base *);
void		 notify_free(struct notify *);
/* Thread-safe: item->fn(item) will run on the notify's loop. */
void		 notify_post(struct notify *, struct notify_item *);

#endif
