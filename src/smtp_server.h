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
/* Install the server TLS context (one reference is handed over); NULL
 * turns TLS off.  Sessions already in TLS keep their old context. */
typedef struct ssl_ctx_st SSL_CTX;
void	smtp_tls_set_ctx(SSL_CTX *);
/* Sessions alive in the whole daemon (all workers). */
unsigned smtp_session_count(void);

#endif
