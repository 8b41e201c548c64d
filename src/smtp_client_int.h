/*
 * smtp_client_int.h -- private to smtp_client.c (connection, greeting,
 * EHLO/LHLO, STARTTLS, AUTH, timeouts, teardown) and smtp_client_msg.c
 * (the mail transaction): the client struct, its states and the
 * functions each file lends the other.  Everything here runs in the
 * delivery process only.  Nothing else includes this; the rest of the
 * tree sees smtp_client.h only.
 */
#ifndef SLUICE_SMTP_CLIENT_INT_H
#define SLUICE_SMTP_CLIENT_INT_H

#include <sys/socket.h>

#include <stdint.h>

#include "smtp_client.h"

struct bufferevent;
struct event;
struct evbuffer;

#define CLIENT_OUT_HIGHWAT	(256 * 1024)	/* stop refilling above */
#define CLIENT_OUT_LOWAT	(64 * 1024)	/* write_cb refills below */

enum client_state {
	CL_CONNECTING,
	CL_TLS,			/* handshake (implicit or after STARTTLS) */
	CL_GREETING,
	CL_EHLO,
	CL_HELO,
	CL_STARTTLS,
	CL_AUTH,
	CL_READY,		/* idle, between messages */
	CL_MAIL,
	CL_RCPT,
	CL_DATA,		/* waiting for 354 */
	CL_CONTENT,		/* sending the message */
	CL_BDAT,		/* waiting for BDAT replies (maybe sending) */
	CL_DOT,			/* waiting for the final reply(s) */
	CL_RSET,
	CL_QUIT,
	CL_CLOSED,		/* closed() pending */
};

/* Extensions we use (RFC 5321 4.1.1.1 EHLO keywords). */
#define CAP_PIPELINING	0x01
#define CAP_SIZE	0x02
#define CAP_8BITMIME	0x04
#define CAP_SMTPUTF8	0x08
#define CAP_DSN		0x10
#define CAP_CHUNKING	0x20
#define CAP_STARTTLS	0x40
#define CAP_AUTH	0x80

enum client_auth_step {
	AUTH_STEP_PLAIN,	/* initial response sent, want 235 */
	AUTH_STEP_USER,		/* want 334 for the user name */
	AUTH_STEP_PASS,		/* want 334 for the password */
	AUTH_STEP_LAST,		/* password sent, want 235 */
};

/* Per-recipient progress within one transaction (c->rstate). */
#define RS_SENT		0x01	/* RCPT sent, its reply not yet read */
#define RS_ACCEPTED	0x02	/* RCPT got 2xx */
#define RS_FINAL	0x04	/* code/reply are the outcome */

struct smtp_client {
	struct event_base	*base;
	struct bufferevent	*bev;		/* socket, or TLS filter on it */
	struct event		*ev_close;	/* deferred closed() and free */
	struct event		*ev_done;	/* deferred done() */
	struct smtp_client_cbs	 cbs;
	void			*arg;

	/* Our copy of the parameters. */
	int			 lmtp;
	enum smtp_client_tls	 tls;
	SSL_CTX			*ssl_ctx;
	char			*helo;
	char			*auth_user;
	char			*auth_pass;	/* wiped on free */
	unsigned		 connect_timeout, greeting_timeout;
	unsigned		 command_timeout, data_timeout, done_timeout;

	struct sockaddr_storage	 ss;
	char			 peer[320];	/* host[ip]:port */
	char			 host[300];	/* host[ip] */
	char			 sni[256];	/* peer_name when not an IP */
	char			 name[256];	/* peer_name for the cert check */

	enum client_state	 state;
	int			 tls_on;
	int			 tls_verify;
	int			 starttls_tried;
	int			 authed;
	enum client_auth_step	 auth_step;
	unsigned		 caps;
	unsigned		 auth_mechs;
	uint64_t		 size_max;	/* 0: no limit announced */
	char			 tls_info[128];

	/* The reply being read. */
	int			 rcode;
	unsigned		 rlines;
	size_t			 rlen;
	char			 reply[SMTP_CLIENT_REPLY_MAX];

	/* The message in flight. */
	struct smtp_client_msg	*msg;
	unsigned char		*rstate;
	unsigned		 cur;		/* rcpt whose reply is next */
	unsigned		 naccepted;
	int			 pipelined;
	int			 mail_ok;
	uint64_t		 pos;		/* content octets sent */
	int			 bol;		/* at beginning of a line */
	char			 last;		/* last content octet */
	char			*chunk;

	/* BDAT (RFC 3030): chunks queued and answered. */
	struct evbuffer		*bdat;		/* normalised, not yet queued */
	int			 use_bdat;
	int			 bdat_last;	/* BDAT ... LAST is queued */
	int			 bdat_stop;	/* refused or no rcpt: no more */
	unsigned		 bdat_sent, bdat_acked;

	/* Why the connection ended; reported by closed(). */
	int			 fail_code;
	char			 fail_text[SMTP_CLIENT_REPLY_MAX];
};

/* smtp_client.c: connection, replies, teardown. */
void	client_timeouts(struct smtp_client *, unsigned, unsigned);
void	client_set_state(struct smtp_client *, enum client_state);
void	client_send(struct smtp_client *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	client_fail(struct smtp_client *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	client_quit_fail(struct smtp_client *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
const char *client_reply_text(const struct smtp_client *);

/* smtp_client_msg.c: the transaction and its per-recipient results. */
void	client_msg_settle(struct smtp_client *, int, const char *);
struct smtp_client_msg *client_msg_take(struct smtp_client *);
void	client_msg_done(struct smtp_client *);
void	client_mail_reply(struct smtp_client *);
void	client_rcpt_reply(struct smtp_client *);
void	client_data_reply(struct smtp_client *);
void	client_content_reply(struct smtp_client *);
void	client_bdat_reply(struct smtp_client *);
void	client_dot_reply(struct smtp_client *);
void	client_rset_reply(struct smtp_client *);
void	client_content_fill(struct smtp_client *);
void	client_bdat_fill(struct smtp_client *);
int	client_is_bdat_sendable(const struct smtp_client *);
void	client_bdat_timeouts(struct smtp_client *);

#endif
