/*
 * smtp_server.h -- the inbound SMTP session (RFC 5321 server side).
 */
#ifndef SLUICE_SMTP_SERVER_H
#define SLUICE_SMTP_SERVER_H

#include <sys/socket.h>

struct event_base;
struct config;
struct config_listener;
struct notify;

/* What a worker thread lends to its sessions. */
struct smtp_ctx {
	struct event_base	*base;
	const struct config	*cfg;
	struct notify	*notify;
};

/* Take over an accepted, non-blocking socket. */
void	smtp_session_start(struct smtp_ctx *, int fd,
	    const struct sockaddr *, socklen_t, const struct config_listener *);
/* Sessions alive in the whole daemon (all workers). */
unsigned smtp_session_count(void);

#endif
