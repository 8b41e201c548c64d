/*
 * smtp_client.h -- outbound ESMTP and LMTP (RFC 5321, RFC 2033) on a
 * libevent loop: one connection carries one message at a time, many in a
 * row; STARTTLS (RFC 3207) or implicit TLS, AUTH PLAIN/LOGIN (RFC 4954),
 * PIPELINING (RFC 2920), SIZE, 8BITMIME, SMTPUTF8, DSN and CHUNKING when
 * the peer offers them.
 */
#ifndef SLUICE_SMTP_CLIENT_H
#define SLUICE_SMTP_CLIENT_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct smtp_client;
typedef struct ssl_ctx_st SSL_CTX;

#define SMTP_CLIENT_REPLY_MAX	512

enum smtp_client_tls {
	CLIENT_TLS_NONE,		/* never STARTTLS */
	CLIENT_TLS_OPPORTUNISTIC,	/* STARTTLS when offered, no checks */
	CLIENT_TLS_REQUIRED,		/* STARTTLS, verified certificate */
	CLIENT_TLS_IMPLICIT,		/* TLS from the first byte (465) */
};

struct smtp_client_params {
	int			 lmtp;		/* LHLO and per-rcpt replies */
	const char		*helo;		/* our name for EHLO/LHLO */
	const char		*peer_name;	/* MX or smarthost name: logs,
						   SNI, certificate check */
	enum smtp_client_tls	 tls;
	SSL_CTX			*ssl_ctx;	/* client context, for TLS */
	const char		*auth_user;	/* NULL: no AUTH */
	const char		*auth_pass;
	/* Timeouts in seconds (RFC 5321 4.5.3.2 defaults). */
	unsigned		 connect_timeout;	/* 30 */
	unsigned		 greeting_timeout;	/* 300 */
	unsigned		 command_timeout;	/* 300 (MAIL, RCPT...) */
	unsigned		 data_timeout;		/* 180 per block */
	unsigned		 done_timeout;		/* 600 after the dot */
};

struct smtp_client_rcpt {
	const char	*addr;
	const char	*notify;	/* "SUCCESS,FAILURE" etc., or NULL */
	const char	*orcpt;		/* "rfc822;xtext", or NULL */
	/* Result, filled in by the client: */
	int		 code;		/* 250, 450, 550...; 0 = not tried */
	char		 reply[SMTP_CLIENT_REPLY_MAX];	/* whole reply */
};

/* One message to deliver.  The content stays in the spool file. */
struct smtp_client_msg {
	const char	*id;		/* queue id, for logs */
	const char	*sender;	/* "" for <> */
	int		 fd;		/* spool file, read with pread */
	uint64_t	 off, len;	/* the message within it */
	int		 smtputf8;	/* needs SMTPUTF8 */
	const char	*body;		/* "8BITMIME", "7BIT" or NULL */
	const char	*ret;		/* DSN RET or NULL */
	const char	*envid;		/* DSN ENVID or NULL */
	unsigned	 nrcpts;
	struct smtp_client_rcpt *rcpts;
	/* Result: the peer offered DSN, so NOTIFY/RET/ENVID went on with
	 * the message and notices are its business (RFC 3461 5.2.1). */
	int		 dsn_passed;
};

/*
 * Outcomes.  A message's result is per recipient (rcpt->code/reply);
 * when the whole transaction failed before any RCPT was answered (MAIL
 * refused, connection lost, timeout, SMTPUTF8 needed but not offered)
 * every untried recipient gets that code and reply.
 */
struct smtp_client_cbs {
	/* Connected and greeted (and TLS/AUTH done): send a message or quit. */
	void	(*ready)(struct smtp_client *, void *arg);
	/* The message given to smtp_client_send() is done. */
	void	(*done)(struct smtp_client *, struct smtp_client_msg *,
		    void *arg);
	/*
	 * The connection is gone (or never came up).  code/reply say why
	 * (e.g. 421 "4.4.1 connect to host[ip]:25: Connection refused",
	 * or the peer's 554 greeting).  The client is freed after return;
	 * a message in flight was reported through done() first.
	 */
	void	(*closed)(struct smtp_client *, int code, const char *reply,
		    void *arg);
};

struct smtp_client *smtp_client_connect(struct event_base *,
		    const struct sockaddr *, socklen_t,
		    const struct smtp_client_params *,
		    const struct smtp_client_cbs *, void *arg);
/* Deliver msg; only after ready() or done(). */
void		 smtp_client_send(struct smtp_client *, struct smtp_client_msg *);
/* Send QUIT and close; closed() follows. */
void		 smtp_client_quit(struct smtp_client *);
/* "host[ip]:port", for logs. */
const char	*smtp_client_peer(const struct smtp_client *);
/* TLS protocol and cipher in use, NULL without TLS. */
const char	*smtp_client_tls_info(const struct smtp_client *);

#endif
