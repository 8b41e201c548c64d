/*
 * worker.c -- worker threads: each owns an event loop, its own socket on
 * every listener (SO_REUSEPORT lets the kernel spread connections over
 * the workers) and the sessions it accepted.  Sessions never move
 * between threads, so nothing on the per-message path takes a lock
 * except the hand-off to the spool's commit thread.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "log.h"
#include "notify.h"
#include "smtp_server.h"
#include "spool.h"
#include "util.h"
#include "worker.h"

#define WORKERS_MAX	64

struct worker;

/* What an accepted connection needs to know: whose it is, which port. */
struct worker_port {
	struct worker			*worker;
	const struct config_listener	*listener;
	struct evconnlistener		*lev;
	struct event			*resume_ev;	/* after EMFILE */
};

struct worker {
	pthread_t		 thread;
	struct event_base	*base;
	struct smtp_ctx		 ctx;
	int			 fds[CONFIG_LISTENERS_MAX];
	struct evconnlistener	*lev[CONFIG_LISTENERS_MAX];
	struct worker_port	 ports[CONFIG_LISTENERS_MAX];
};

static struct worker	workers[WORKERS_MAX];
static unsigned		nworkers;

static unsigned
workers_count(const struct config *cfg)
{
	long n = cfg->workers ? (long)cfg->workers :
	    sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > WORKERS_MAX ? WORKERS_MAX : (unsigned)n;
}

static int
listener_socket(const struct config_listener *l, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
	    .ai_socktype = SOCK_STREAM }, *ai;
	int fd, on = 1, r;

	if ((r = getaddrinfo(l->host, l->port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "listener %s: %s", l->address,
		    gai_strerror(r));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1 ||
	    (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, 1024) == -1) {
		snprintf(err, errlen, "listener %s: %s", l->address,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/*
 * SO_REUSEPORT would let a second daemon share our port silently: bind
 * once without it first, so an address in use is reported as such.
 */
static int
listener_probe(const struct config_listener *l, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
	    .ai_socktype = SOCK_STREAM }, *ai;
	int fd, r = 0, on = 1;

	if (getaddrinfo(l->host, l->port, &hints, &ai) != 0)
		return 0;	/* listener_socket() reports it */
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd != -1 && ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (fd != -1 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) == -1 || bind(fd, ai->ai_addr, ai->ai_addrlen) == -1)) {
		snprintf(err, errlen, "listener %s: %s", l->address,
		    strerror(errno));
		r = -1;
	}
	if (fd != -1)
		close(fd);
	freeaddrinfo(ai);
	return r;
}

int
workers_bind(const struct config *cfg, char *err, size_t errlen)
{
	unsigned w, i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (listener_probe(&cfg->listeners[i], err, errlen) == -1)
			return -1;
	nworkers = workers_count(cfg);
	for (w = 0; w < nworkers; w++)
		for (i = 0; i < cfg->nlisteners; i++) {
			workers[w].fds[i] = listener_socket(&cfg->listeners[i],
			    err, errlen);
			if (workers[w].fds[i] == -1)
				return -1;
		}
	return 0;
}

static void
worker_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct worker_port *p = arg;

	(void)lev;
	smtp_session_start(&p->worker->ctx, fd, sa, (socklen_t)salen,
	    p->listener);
}

static void
worker_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker_port *p = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(p->lev);
}

/* Out of descriptors (EMFILE, ENFILE, ENOBUFS): a level-triggered
 * listener would spin, so pause this one for a second. */
static void
worker_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct worker_port *p = arg;
	static const struct timeval pause = { 1, 0 };

	log_warn("accept on %s; pausing it for 1 s", p->listener->address);
	evconnlistener_disable(lev);
	evtimer_add(p->resume_ev, &pause);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

void
workers_start(const struct config *cfg)
{
	unsigned wi, i;
	int r;

	for (wi = 0; wi < nworkers; wi++) {
		struct worker *w = &workers[wi];

		if ((w->base = event_base_new()) == NULL)
			fatalx("event_base_new");
		w->ctx.base = w->base;
		w->ctx.cfg = cfg;
		w->ctx.notify = notify_new(w->base);
		for (i = 0; i < cfg->nlisteners; i++) {
			w->ports[i].worker = w;
			w->ports[i].listener = &cfg->listeners[i];
			w->lev[i] = evconnlistener_new(w->base,
			    worker_accept_cb, &w->ports[i],
			    LEV_OPT_CLOSE_ON_FREE, -1, w->fds[i]);
			if (w->lev[i] == NULL)
				fatalx("evconnlistener_new");
			w->ports[i].lev = w->lev[i];
			w->ports[i].resume_ev = evtimer_new(w->base,
			    worker_resume_cb, &w->ports[i]);
			evconnlistener_set_error_cb(w->lev[i],
			    worker_accept_error_cb);
		}
	}
	for (wi = 0; wi < nworkers; wi++)
		if ((r = pthread_create(&workers[wi].thread, NULL, worker_main,
		    &workers[wi])) != 0) {
			errno = r;
			fatal("pthread_create");
		}
}

void
workers_stop(void)
{
	unsigned wi;

	for (wi = 0; wi < nworkers; wi++)
		event_base_loopexit(workers[wi].base, NULL);
	for (wi = 0; wi < nworkers; wi++)
		pthread_join(workers[wi].thread, NULL);
}
