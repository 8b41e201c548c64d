/*
 * smtp_session.h -- private to the inbound SMTP modules: the session and
 * transaction structs shared by smtp_server.c (I/O and lifecycle),
 * smtp_cmd.c (command handlers) and smtp_data.c (DATA/BDAT to spool).
 */
#ifndef SLUICE_SMTP_SESSION_H
#define SLUICE_SMTP_SESSION_H

#include <netinet/in.h>

#include <stdint.h>

#include "buf.h"
#include "smtp_parse.h"
#include "spool.h"

struct bufferevent;
struct event;

enum sess_state {
	SESS_CONNECTED,		/* greeting not sent yet */
	SESS_CMD,		/* reading command lines */
	SESS_DATA,		/* reading DATA until CRLF.CRLF */
	SESS_BDAT,		/* reading a BDAT chunk */
	SESS_WAIT,		/* a commit or check is pending; input paused */
	SESS_TLS,		/* STARTTLS handshake under way */
	SESS_CLOSING,		/* last reply being flushed */
};

enum tx_data { TX_DATA_NONE, TX_DATA_DATA, TX_DATA_BDAT };

/* Where a SASL exchange (RFC 4954) stands. */
enum auth_step {
	AUTH_STEP_NONE,
	AUTH_STEP_PLAIN,	/* 334 sent, waiting for the PLAIN response */
	AUTH_STEP_LOGIN_USER,	/* 334 Username:, waiting */
	AUTH_STEP_LOGIN_PASS,	/* 334 Password:, waiting */
	AUTH_STEP_CHECKING,	/* the password is being verified */
};

struct smtp_auth_req;
struct config_network;
struct config_user;
typedef struct ssl_st SSL;

/* One mail transaction: MAIL to end of data.  RSET/MAIL replace it. */
struct smtp_tx {
	struct smtp_mail_args	 mail;
	struct smtp_rcpt_args	*rcpts;
	unsigned		 nrcpts;
	unsigned		 rcpts_cap;
	enum tx_data		 data;		/* how the content comes */
	char			 id[SPOOL_ID_LEN + 1];
	struct spool_msg	*msg;		/* created when data begins */
	struct buf		 body;		/* decoded, not yet written */
	struct data_decoder	 dec;
	int			 too_big;
	uint64_t		 bdat_left;	/* octets of this chunk to read */
	int			 bdat_last;
	const char		*bdat_fail;	/* reply after a rejected chunk */
};

struct smtp_session {
	struct smtp_ctx		*ctx;
	const struct config_listener *listener;
	struct bufferevent	*bev;
	struct event		*greet_ev;	/* greeting_delay timer */
	enum sess_state		 state;
	char			 ip[INET6_ADDRSTRLEN];
	char			 host[256];	/* "unknown" until rDNS (M3) */
	char			 helo[256];
	int			 esmtp;		/* EHLO, not HELO */
	int			 skip_line;	/* discarding an overlong line */
	int			 dead;		/* peer gone while waiting */
	int			 peer_eof;	/* half-closed while waiting */
	int			 paused;	/* tarpit or AUTH delay running */
	struct event		*pause_ev;
	struct event		*close_ev;	/* frees once output is out */
	uint64_t		 close_deadline;
	char			*pause_reply;	/* sent when the pause ends */
	int			 limit_counted;	/* limit_disconnect() due */

	/* TLS (RFC 3207, RFC 8314) */
	SSL			*ssl;		/* owned by the bufferevent */
	char			 tls_info[160];	/* "TLSv1.3 with cipher ..." */

	/* Policy */
	const struct config_network *net; /* trusted network, or NULL */
	char			 auth_user[256]; /* authenticated login */
	const struct config_user *user;	/* its configured rules */
	enum auth_step		 auth_step;
	char			 auth_mech[8];
	char			 auth_login[256]; /* LOGIN: name so far */
	struct smtp_auth_req	*auth_req;	/* verification in flight */
	char			*line;		/* the command being handled */
	unsigned		 nerrors;
	unsigned		 cmd_total[SMTP_CMD_COUNT];
	unsigned		 cmd_ok[SMTP_CMD_COUNT];
	struct smtp_tx		*tx;
};

/* smtp_server.c */
void	smtp_reply(struct smtp_session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Count a protocol error; 1 if the session was closed for too many. */
int	smtp_error(struct smtp_session *);
/* Send a last reply (fmt may be NULL) and close once all is written;
 * the session may be freed before this returns. */
void	smtp_close(struct smtp_session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	smtp_tx_free(struct smtp_session *);
/* Resume reading input after a commit finished. */
void	smtp_resume(struct smtp_session *);
void	smtp_session_free(struct smtp_session *);
/* Our read/event callbacks and timeouts on s->bev (new or swapped). */
void	smtp_session_setcb(struct smtp_session *);
/* Idle limit for the next read or write (RFC 5321 4.5.3.2). */
void	smtp_set_timeout(struct smtp_session *, unsigned secs);

/* Stop reading for secs, then send reply (if any) and go on. */
void	smtp_pause(struct smtp_session *, unsigned secs, const char *reply);
/* Key and limits of the sending caps for this session, or NULL key. */
const char *smtp_cap_key(struct smtp_session *, char *buf, size_t len,
	    unsigned *per_hour, unsigned *per_day, unsigned *rcpts);

/* smtp_tls.c */
int	smtp_tls_available(void);
/* Wrap the session in TLS: STARTTLS (accepting=1 after our 220) or at
 * connect for implicit TLS.  0 or -1. */
int	smtp_tls_start(struct smtp_session *, int fd);
void	smtp_tls_connected(struct smtp_session *);

/* smtp_auth.c */
int	smtp_auth_offered(const struct smtp_session *);
int	smtp_auth_cmd(struct smtp_session *, const char *arg, size_t len);
void	smtp_auth_line(struct smtp_session *, const char *line, size_t len);

/* smtp_cmd.c */
void	smtp_command(struct smtp_session *, const char *line, size_t len);
const char *smtp_verb_name(enum smtp_verb);

/* smtp_data.c */
int	smtp_data_begin(struct smtp_session *, enum tx_data);
/* Eat DATA or BDAT content from the input; returns octets consumed. */
size_t	smtp_data_read(struct smtp_session *);
void	smtp_bdat_start(struct smtp_session *, uint64_t size, int last);

#endif
