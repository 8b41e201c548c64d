/*
 * notify.c -- cross-thread completions onto an event loop (notify.h).
 * Used by the spool's commit thread and the async pool to wake the
 * worker or delivery thread that is waiting for a result.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "notify.h"
#include "util.h"

struct notify {
	pthread_mutex_t		 lock;
	struct notify_item	*head;
	struct notify_item	**tail;
	int			 efd;
	int			 armed;		/* eventfd already written */
	struct event		*ev;
};

static void
notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;
	struct notify_item *it, *next;
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		fatal("notify: eventfd read");
	pthread_mutex_lock(&n->lock);
	it = n->head;
	n->head = NULL;
	n->tail = &n->head;
	n->armed = 0;
	pthread_mutex_unlock(&n->lock);
	for (; it != NULL; it = next) {
		next = it->next;
		it->fn(it);
	}
}

struct notify *
notify_new(struct event_base *base)
{
	struct notify *n = xcalloc(1, sizeof(*n));

	pthread_mutex_init(&n->lock, NULL);
	n->tail = &n->head;
	if ((n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("notify: eventfd");
	n->ev = event_new(base, n->efd, EV_READ | EV_PERSIST, notify_cb, n);
	if (n->ev == NULL || event_add(n->ev, NULL) == -1)
		fatalx("notify: event_new");
	return n;
}

void
notify_free(struct notify *n)
{
	if (n == NULL)
		return;
	event_free(n->ev);
	close(n->efd);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

void
notify_post(struct notify *n, struct notify_item *it)
{
	uint64_t one = 1;
	int wake;

	it->next = NULL;
	pthread_mutex_lock(&n->lock);
	*n->tail = it;
	n->tail = &it->next;
	/* One wake-up per batch: the loop drains the whole list. */
	wake = !n->armed;
	n->armed = 1;
	pthread_mutex_unlock(&n->lock);
	if (wake && write(n->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		fatal("notify: eventfd write");
}
