/*
 * smtp_client.c -- the delivery client: outbound ESMTP and LMTP on a
 * libevent loop (see smtp_client.h).  Runs in the delivery process; every
 * byte the peer sends is untrusted: reply lines, line counts and every
 * wait are bounded, and a hostile server can at worst fail the
 * connection with a 4xx.
 *
 * One connection carries one message at a time.  The state machine is
 * driven by replies: each state names what we are waiting for and has a
 * reply handler in client_stages[].  Failures tear the bufferevent down
 * at once and report from a deferred event (client_close_cb): first
 * done() for a message in flight, then closed(), then the client is
 * freed, so no callback of ours ever runs on a freed client.
 *
 * Conventions: rcpt->reply holds the whole reply with its code
 * ("550 5.1.1 <x>: Recipient address rejected", multi-line replies
 * joined with spaces); closed() gets the code and the text after it
 * ("4.4.1 connect to mx[192.0.2.1]:25: Connection refused").  Failures
 * we generate ourselves use 421 and an RFC 3463 code in the text.
 *
 * TLS: OPPORTUNISTIC verifies nothing; REQUIRED needs STARTTLS and a
 * certificate that verifies against the caller's SSL_CTX store and
 * matches peer_name (SSL_set1_host); IMPLICIT verifies the same way only
 * when the caller's SSL_CTX has SSL_VERIFY_PEER set.  The handshake
 * itself never aborts on a bad certificate: we check the result after it
 * so the reason can be reported (as Postfix does).
 *
 * Content goes with DATA, dot-stuffed, or with BDAT (RFC 3030) when the
 * peer offers CHUNKING: chunks of at most CLIENT_CHUNK octets exactly as
 * spooled (bare LF made CRLF, a final CRLF added: chunk sizes count those
 * octets), pipelined after the RCPTs when PIPELINING allows.  Either way
 * at most CLIENT_OUT_HIGHWAT octets wait in the output: write_cb refills.
 *
 * The process must ignore SIGPIPE (sluiced does): a peer that hangs up
 * while we write must cost a connection, not the process.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "smtp_client.h"
#include "util.h"

/* RFC 5321 4.5.3.1.5 allows 512 octets; be lenient, but bounded. */
#define CLIENT_LINE_MAX		2048
#define CLIENT_REPLY_LINES	100	/* lines in one reply */
#define CLIENT_CHUNK		(64 * 1024)	/* pread size for content */
#define CLIENT_OUT_HIGHWAT	(256 * 1024)	/* stop refilling above */
#define CLIENT_OUT_LOWAT	(64 * 1024)	/* write_cb refills below */
#define CLIENT_QUIT_TIMEOUT	30	/* cap on the wait for 221 */
#define CLIENT_AUTH_MAX		1024	/* user + password octets */

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

#define AUTH_PLAIN	0x01
#define AUTH_LOGIN	0x02

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

struct client_stage {
	const char	*what;		/* "... timed out while <what>" */
	void		(*reply)(struct smtp_client *);
};

static void	client_read_cb(struct bufferevent *, void *);
static void	client_write_cb(struct bufferevent *, void *);
static void	client_event_cb(struct bufferevent *, short, void *);
static void	client_close_cb(evutil_socket_t, short, void *);
static void	client_done_cb(evutil_socket_t, short, void *);
static void	client_fail(struct smtp_client *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	client_quit_fail(struct smtp_client *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	client_send(struct smtp_client *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	client_greeting_reply(struct smtp_client *);
static void	client_ehlo_reply(struct smtp_client *);
static void	client_helo_reply(struct smtp_client *);
static void	client_starttls_reply(struct smtp_client *);
static void	client_auth_reply(struct smtp_client *);
static void	client_idle_reply(struct smtp_client *);
static void	client_mail_reply(struct smtp_client *);
static void	client_rcpt_reply(struct smtp_client *);
static void	client_data_reply(struct smtp_client *);
static void	client_content_reply(struct smtp_client *);
static void	client_bdat_reply(struct smtp_client *);
static void	client_dot_reply(struct smtp_client *);
static void	client_rset_reply(struct smtp_client *);
static void	client_quit_reply(struct smtp_client *);
static void	client_after_hello(struct smtp_client *);
static void	client_content_fill(struct smtp_client *);
static void	client_bdat_begin(struct smtp_client *);
static void	client_bdat_fill(struct smtp_client *);
static int	is_bdat_sendable(const struct smtp_client *);
static void	client_bdat_timeouts(struct smtp_client *);

static const struct client_stage client_stages[] = {
	[CL_CONNECTING] = { "connecting", NULL },
	[CL_TLS] = { "performing the TLS handshake", NULL },
	[CL_GREETING] = { "receiving the initial server greeting",
	    client_greeting_reply },
	[CL_EHLO] = { "sending EHLO", client_ehlo_reply },
	[CL_HELO] = { "sending HELO", client_helo_reply },
	[CL_STARTTLS] = { "sending STARTTLS", client_starttls_reply },
	[CL_AUTH] = { "sending AUTH", client_auth_reply },
	[CL_READY] = { "waiting for a message", client_idle_reply },
	[CL_MAIL] = { "sending MAIL FROM", client_mail_reply },
	[CL_RCPT] = { "sending RCPT TO", client_rcpt_reply },
	[CL_DATA] = { "sending DATA", client_data_reply },
	[CL_CONTENT] = { "sending message body", client_content_reply },
	[CL_BDAT] = { "sending message body (BDAT)", client_bdat_reply },
	[CL_DOT] = { "sending end of data", client_dot_reply },
	[CL_RSET] = { "sending RSET", client_rset_reply },
	[CL_QUIT] = { "sending QUIT", client_quit_reply },
	[CL_CLOSED] = { "closing", NULL },
};

static const struct {
	const char	*name;
	unsigned	 flag;
} client_caps[] = {
	{ "PIPELINING", CAP_PIPELINING },
	{ "SIZE", CAP_SIZE },
	{ "8BITMIME", CAP_8BITMIME },
	{ "SMTPUTF8", CAP_SMTPUTF8 },
	{ "DSN", CAP_DSN },
	{ "CHUNKING", CAP_CHUNKING },
	{ "STARTTLS", CAP_STARTTLS },
	{ "AUTH", CAP_AUTH },
};

/* 0 seconds means no timeout for that direction. */
static void
client_timeouts(struct smtp_client *c, unsigned rsecs, unsigned wsecs)
{
	struct timeval r = { .tv_sec = rsecs, .tv_usec = 0 };
	struct timeval w = { .tv_sec = wsecs, .tv_usec = 0 };

	if (c->bev != NULL)
		bufferevent_set_timeouts(c->bev, rsecs ? &r : NULL,
		    wsecs ? &w : NULL);
}

static void
client_set_state(struct smtp_client *c, enum client_state st)
{
	c->state = st;
	switch (st) {
	case CL_GREETING:
		client_timeouts(c, c->greeting_timeout, c->command_timeout);
		break;
	case CL_CONTENT:
		/* No reply is due while we send; the peer must keep reading. */
		client_timeouts(c, 0, c->data_timeout);
		break;
	case CL_DOT:
		client_timeouts(c, c->done_timeout, c->data_timeout);
		break;
	case CL_BDAT:
		client_bdat_timeouts(c);
		break;
	case CL_QUIT:
		client_timeouts(c, c->command_timeout < CLIENT_QUIT_TIMEOUT ?
		    c->command_timeout : CLIENT_QUIT_TIMEOUT,
		    CLIENT_QUIT_TIMEOUT);
		break;
	case CL_CONNECTING:
		client_timeouts(c, c->connect_timeout, c->connect_timeout);
		break;
	default:
		client_timeouts(c, c->command_timeout, c->command_timeout);
		break;
	}
}

static void
client_send(struct smtp_client *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	if (log_verbose >= LOG_LVL_DEBUG) {
		char line[256];

		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		log_debug("smtp-out %s > %s", c->host, line);
	}
}

static void
client_cleanse_cb(const void *data, size_t len, void *extra)
{
	(void)extra;
	OPENSSL_cleanse((void *)(uintptr_t)data, len);
	free((void *)(uintptr_t)data);
}

/*
 * Queue "prefix base64(secret)\r\n" by reference, so no copy of it
 * lingers in evbuffer chains: the line is wiped when it has been written.
 */
static void
client_send_secret(struct smtp_client *c, const char *prefix,
    const unsigned char *secret, size_t len)
{
	size_t plen = strlen(prefix), blen = 4 * ((len + 2) / 3);
	unsigned char *line = xmalloc(plen + blen + 3);
	int n;

	memcpy(line, prefix, plen);
	n = EVP_EncodeBlock(line + plen, secret, (int)len);
	memcpy(line + plen + n, "\r\n", 2);
	if (evbuffer_add_reference(bufferevent_get_output(c->bev), line,
	    plen + (size_t)n + 2, client_cleanse_cb, NULL) == -1)
		fatalx("evbuffer_add_reference");
	log_debug("smtp-out %s > %s<secret>", c->host, prefix);
}

static int
client_is_loopback(const struct smtp_client *c)
{
	const struct sockaddr_in6 *s6 = (const void *)&c->ss;
	const struct sockaddr_in *s4 = (const void *)&c->ss;
	const uint8_t *a = s6->sin6_addr.s6_addr;

	switch (c->ss.ss_family) {
	case AF_UNIX:
		return 1;
	case AF_INET:
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	case AF_INET6:
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && a[12] == 127;
	}
	return 0;
}

/* "host[ip]:port" and "host[ip]", as Postfix logs peers. */
static void
client_peer_format(struct smtp_client *c, const char *name)
{
	const struct sockaddr_in6 *s6 = (const void *)&c->ss;
	const struct sockaddr_in *s4 = (const void *)&c->ss;
	const struct sockaddr_un *su = (const void *)&c->ss;
	char ip[INET6_ADDRSTRLEN] = "unknown";
	unsigned port = 0;

	if (c->ss.ss_family == AF_UNIX) {
		snprintf(c->host, sizeof(c->host), "%s[%.*s]",
		    name ? name : "local", (int)sizeof(su->sun_path),
		    su->sun_path);
		strlcpy(c->peer, c->host, sizeof(c->peer));
		return;
	}
	if (c->ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	} else if (c->ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	}
	snprintf(c->host, sizeof(c->host), "%s[%s]", name ? name : ip, ip);
	snprintf(c->peer, sizeof(c->peer), "%s:%u", c->host, port);
}

static void
client_names(struct smtp_client *c, const char *name)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (name == NULL || *name == '\0')
		return;
	if (strlcpy(c->name, name, sizeof(c->name)) >= sizeof(c->name))
		c->name[0] = '\0';
	/* RFC 6066 3: SNI carries host names, never address literals. */
	if (inet_pton(AF_INET, name, &a4) != 1 &&
	    inet_pton(AF_INET6, name, &a6) != 1)
		strlcpy(c->sni, c->name, sizeof(c->sni));
}

struct smtp_client *
smtp_client_connect(struct event_base *base, const struct sockaddr *sa,
    socklen_t salen, const struct smtp_client_params *p,
    const struct smtp_client_cbs *cbs, void *arg)
{
	struct smtp_client *c;

	if (salen > sizeof(c->ss))
		fatalx("smtp_client_connect: bad address length");
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->cbs = *cbs;
	c->arg = arg;
	c->lmtp = p->lmtp;
	c->tls = p->tls;
	c->ssl_ctx = p->ssl_ctx;
	c->helo = xstrdup(p->helo ? p->helo : "localhost");
	if (p->auth_user != NULL) {
		c->auth_user = xstrdup(p->auth_user);
		c->auth_pass = xstrdup(p->auth_pass ? p->auth_pass : "");
	}
	c->connect_timeout = p->connect_timeout;
	c->greeting_timeout = p->greeting_timeout;
	c->command_timeout = p->command_timeout;
	c->data_timeout = p->data_timeout;
	c->done_timeout = p->done_timeout;
	memcpy(&c->ss, sa, salen);
	client_peer_format(c, p->peer_name);
	client_names(c, p->peer_name);
	if ((c->ev_close = event_new(base, -1, 0, client_close_cb, c)) == NULL ||
	    (c->ev_done = event_new(base, -1, 0, client_done_cb, c)) == NULL)
		fatalx("smtp_client_connect: event_new");
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("smtp_client_connect: bufferevent_socket_new");
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	client_set_state(c, CL_CONNECTING);
	/* Errors may be reported through client_event_cb already. */
	if (bufferevent_socket_connect(c->bev, sa, (int)salen) == -1)
		client_fail(c, 421, "4.4.1 connect to %s: %s", c->peer,
		    strerror(errno));
	return c;
}

static void
client_free(struct smtp_client *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	event_free(c->ev_close);
	event_free(c->ev_done);
	free(c->rstate);
	free(c->chunk);
	if (c->bdat != NULL)
		evbuffer_free(c->bdat);
	free(c->helo);
	free(c->auth_user);
	if (c->auth_pass != NULL) {
		OPENSSL_cleanse(c->auth_pass, strlen(c->auth_pass));
		free(c->auth_pass);
	}
	free(c);
}

static void
client_vfail(struct smtp_client *c, int code, const char *fmt, va_list ap)
{
	if (c->fail_code == 0) {
		c->fail_code = code;
		vsnprintf(c->fail_text, sizeof(c->fail_text), fmt, ap);
	}
}

/*
 * The connection is over: drop it now, report from the loop.  Safe inside
 * a bufferevent callback (libevent holds a reference while it runs one);
 * the caller must not touch c->bev afterwards.
 */
static void
client_fail(struct smtp_client *c, int code, const char *fmt, ...)
{
	va_list ap;

	if (c->state == CL_CLOSED)
		return;
	va_start(ap, fmt);
	client_vfail(c, code, fmt, ap);
	va_end(ap);
	log_debug("smtp-out %s closed: %d %s", c->host, c->fail_code,
	    c->fail_text);
	c->state = CL_CLOSED;
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	event_active(c->ev_close, EV_TIMEOUT, 1);
}

/* A failure on a sane connection: say QUIT (RFC 5321 3.8), then close. */
static void
client_quit_fail(struct smtp_client *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	client_vfail(c, code, fmt, ap);
	va_end(ap);
	client_send(c, "QUIT");
	client_set_state(c, CL_QUIT);
}

/* Every recipient without an outcome gets code/text. */
static void
client_msg_settle(struct smtp_client *c, int code, const char *text)
{
	struct smtp_client_msg *m = c->msg;
	unsigned i;

	/* A connection that ended (even with a polite 221) before the
	 * message was accepted delivered nothing: never report success. */
	if (code < 400) {
		code = 421;
		text = "4.4.2 connection closed before the message was sent";
	}
	for (i = 0; i < m->nrcpts; i++) {
		if (c->rstate != NULL && (c->rstate[i] & RS_FINAL))
			continue;
		m->rcpts[i].code = code;
		snprintf(m->rcpts[i].reply, sizeof(m->rcpts[i].reply), "%d %s",
		    code, text);
		if (c->rstate != NULL)
			c->rstate[i] |= RS_FINAL;
	}
}

static struct smtp_client_msg *
client_msg_take(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;

	c->msg = NULL;
	free(c->rstate);
	c->rstate = NULL;
	c->use_bdat = 0;
	return m;
}

static void
client_close_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct smtp_client *c = arg;
	struct smtp_client_msg *m;

	(void)fd;
	(void)ev;
	/* done() may hand us another message; it fails the same way. */
	while (c->msg != NULL) {
		client_msg_settle(c, c->fail_code, c->fail_text);
		m = client_msg_take(c);
		c->cbs.done(c, m, c->arg);
	}
	c->cbs.closed(c, c->fail_code, c->fail_text, c->arg);
	client_free(c);
}

/* The transaction is over (the peer is in its initial state again). */
static void
client_msg_done(struct smtp_client *c)
{
	struct smtp_client_msg *m = client_msg_take(c);

	client_set_state(c, CL_READY);
	c->cbs.done(c, m, c->arg);
}

static void
client_done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct smtp_client *c = arg;

	(void)fd;
	(void)ev;
	if (c->state == CL_READY && c->msg != NULL)
		client_msg_done(c);
}

/* Copy reply text, replacing what is not printable ASCII. */
static void
client_reply_append(struct smtp_client *c, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && c->rlen + 1 < sizeof(c->reply); i++) {
		unsigned char ch = (unsigned char)s[i];

		c->reply[c->rlen++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch :
		    ch == '\t' ? ' ' : '?';
	}
	c->reply[c->rlen] = '\0';
}

static void
client_ehlo_cap(struct smtp_client *c, const char *s, size_t n)
{
	uint64_t v;
	size_t kw, i, j;

	for (kw = 0; kw < n && s[kw] != ' ' && s[kw] != '='; kw++)
		;
	for (i = 0; i < nitems(client_caps); i++)
		if (strlen(client_caps[i].name) == kw &&
		    ascii_casecmp_n(s, client_caps[i].name, kw) == 0)
			c->caps |= client_caps[i].flag;
	if (kw == 4 && ascii_casecmp_n(s, "SIZE", 4) == 0 && kw + 1 < n &&
	    parse_u64n(s + kw + 1, n - kw - 1, 0, UINT64_MAX, &v) == 0)
		c->size_max = v;
	if (kw != 4 || ascii_casecmp_n(s, "AUTH", 4) != 0)
		return;
	/* "AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN". */
	for (i = kw + 1; i < n; i = j + 1) {
		for (j = i; j < n && s[j] != ' '; j++)
			;
		if (j - i == 5 && ascii_casecmp_n(s + i, "PLAIN", 5) == 0)
			c->auth_mechs |= AUTH_PLAIN;
		if (j - i == 5 && ascii_casecmp_n(s + i, "LOGIN", 5) == 0)
			c->auth_mechs |= AUTH_LOGIN;
	}
}

/*
 * One reply line: "ddd-text" continues, "ddd text" or "ddd" ends
 * (RFC 5321 4.2.1).  Returns 1 at the last line, 0 for more, -1 if bad.
 */
static int
client_reply_line(struct smtp_client *c, const char *line, size_t n)
{
	int code, last;

	if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (n > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	last = n == 3 || line[3] == ' ';
	if (c->rlines == 0) {
		c->rcode = code;
		c->rlen = 0;
		client_reply_append(c, line, 3);
	}
	if (++c->rlines > CLIENT_REPLY_LINES)
		return -1;
	if (n > 4) {
		client_reply_append(c, " ", 1);
		client_reply_append(c, line + 4, n - 4);
		/* The first EHLO line is the peer's name, then keywords. */
		if (c->state == CL_EHLO && c->rlines > 1)
			client_ehlo_cap(c, line + 4, n - 4);
	}
	if (last)
		c->rlines = 0;
	return last;
}

/* 1: a whole reply is in c->rcode/c->reply; 0: need input; -1: bad. */
static int
client_reply_read(struct smtp_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char line[CLIENT_LINE_MAX + 1];
	struct evbuffer_ptr p;
	size_t eol, n;
	int r;

	for (;;) {
		p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
		if (p.pos == -1)
			return evbuffer_get_length(in) > CLIENT_LINE_MAX ?
			    -1 : 0;
		n = (size_t)p.pos;
		if (n > CLIENT_LINE_MAX)
			return -1;
		if (evbuffer_remove(in, line, n) != (int)n ||
		    evbuffer_drain(in, eol) == -1)
			return -1;
		line[n] = '\0';
		if ((r = client_reply_line(c, line, n)) != 0)
			return r;
	}
}

/* Text after the code, for closed(). */
static const char *
client_reply_text(const struct smtp_client *c)
{
	return c->rlen > 4 ? c->reply + 4 : "";
}

static void
client_read(struct smtp_client *c)
{
	const struct client_stage *st;
	int r;

	while (c->bev != NULL && c->state != CL_CLOSED) {
		if ((r = client_reply_read(c)) == 0)
			return;
		st = &client_stages[c->state];
		if (r == -1 || st->reply == NULL) {
			client_fail(c, 421, "4.5.0 protocol error from %s while "
			    "%s: malformed or unexpected reply", c->host,
			    st->what);
			return;
		}
		log_debug("smtp-out %s < %s", c->host, c->reply);
		/* RFC 5321 3.8: 421 means the peer is closing. */
		if (c->rcode == 421 && c->state != CL_QUIT) {
			client_fail(c, 421, "%s", client_reply_text(c));
			return;
		}
		st->reply(c);
	}
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	client_read(arg);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	if (c->state == CL_CONTENT)
		client_content_fill(c);
	else if (is_bdat_sendable(c))
		client_bdat_fill(c);
}

static void
client_tls_start(struct smtp_client *c)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (c->ssl_ctx == NULL || (ssl = SSL_new(c->ssl_ctx)) == NULL) {
		client_fail(c, 421, "4.7.5 cannot start TLS with %s: no TLS "
		    "context", c->host);
		return;
	}
	/* Checked after the handshake (client_tls_done) to say why. */
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	if (c->sni[0] != '\0')
		SSL_set_tlsext_host_name(ssl, c->sni);
	/* An address literal is matched against IP SANs, a name by DNS. */
	if (c->tls_verify && c->name[0] != '\0' && c->sni[0] == '\0')
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->name);
	else if (c->tls_verify && c->name[0] != '\0') {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set1_host(ssl, c->name);
	}
	/* The filter owns the socket bufferevent now: ours are its limits. */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bev = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		client_fail(c, 421, "4.7.5 cannot start TLS with %s", c->host);
		return;
	}
	/* Else the filter encrypts the whole message into the socket's output. */
	bufferevent_setwatermark(c->bev, EV_WRITE, CLIENT_OUT_LOWAT,
	    CLIENT_OUT_HIGHWAT);
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->bev = bev;
	bufferevent_setcb(bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	bufferevent_setwatermark(bev, EV_WRITE, CLIENT_OUT_LOWAT, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	client_set_state(c, CL_TLS);
}

static void
client_tls_done(struct smtp_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	X509 *cert = SSL_get0_peer_certificate(ssl);
	long vr = SSL_get_verify_result(ssl);
	int alg = 0, bits = SSL_CIPHER_get_bits(cipher, &alg);
	const char *trust;

	trust = cert == NULL ? "Anonymous" : vr == X509_V_OK ? "Trusted" :
	    "Untrusted";
	snprintf(c->tls_info, sizeof(c->tls_info), "%s %s",
	    SSL_get_version(ssl), SSL_CIPHER_get_name(cipher));
	log_info("%s TLS connection established to %s: %s with cipher %s "
	    "(%d/%d bits)", trust, c->peer, SSL_get_version(ssl),
	    SSL_CIPHER_get_name(cipher), bits, alg);
	c->tls_on = 1;
	if (c->tls_verify && (cert == NULL || vr != X509_V_OK)) {
		client_quit_fail(c, 421, "4.7.5 Server certificate not "
		    "verified for %s: %s", c->host, cert == NULL ?
		    "no certificate" : X509_verify_cert_error_string(vr));
		return;
	}
	if (c->tls == CLIENT_TLS_IMPLICIT) {
		client_set_state(c, CL_GREETING);
		return;
	}
	/* RFC 3207 4.2: forget what we knew, ask again. */
	c->caps = c->auth_mechs = 0;
	c->size_max = 0;
	client_send(c, "%s %s", c->lmtp ? "LHLO" : "EHLO", c->helo);
	client_set_state(c, CL_EHLO);
}

static void
client_connected(struct smtp_client *c)
{
	if (c->state == CL_TLS) {
		client_tls_done(c);
		return;
	}
	if (c->state != CL_CONNECTING)
		return;
	bufferevent_setwatermark(c->bev, EV_WRITE, CLIENT_OUT_LOWAT, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (c->tls == CLIENT_TLS_IMPLICIT) {
		c->tls_verify = c->ssl_ctx != NULL &&
		    (SSL_CTX_get_verify_mode(c->ssl_ctx) & SSL_VERIFY_PEER);
		client_tls_start(c);
		return;
	}
	client_set_state(c, CL_GREETING);
}

static void
client_tls_error(struct smtp_client *c, short what)
{
	char why[256] = "connection closed";
	unsigned long e, first = 0;

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0)
			first = e;
	if (first != 0)
		ERR_error_string_n(first, why, sizeof(why));
	else if (what & BEV_EVENT_TIMEOUT)
		strlcpy(why, "timed out", sizeof(why));
	else if ((what & BEV_EVENT_ERROR) && errno != 0)
		strlcpy(why, strerror(errno), sizeof(why));
	client_fail(c, 421, "4.7.5 TLS handshake with %s failed: %s",
	    c->host, why);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;
	int err = errno;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		client_connected(c);
		return;
	}
	if (c->state == CL_CONNECTING) {
		client_fail(c, 421, "4.4.1 connect to %s: %s", c->peer,
		    (what & BEV_EVENT_TIMEOUT) ? "Connection timed out" :
		    strerror(err ? err : ECONNREFUSED));
		return;
	}
	if (c->state == CL_TLS) {
		client_tls_error(c, what);
		return;
	}
	/* A reply may have come in with the EOF (e.g. 421, then close). */
	if (!(what & BEV_EVENT_TIMEOUT))
		client_read(c);
	if (c->state == CL_CLOSED)
		return;
	if (c->state == CL_QUIT)
		client_fail(c, 221, "2.0.0 connection closed");
	else if (what & BEV_EVENT_TIMEOUT)
		client_fail(c, 421, "4.4.2 conversation with %s timed out "
		    "while %s", c->host, client_stages[c->state].what);
	else
		client_fail(c, 421, "4.4.2 lost connection with %s while %s",
		    c->host, client_stages[c->state].what);
}

static void
client_greeting_reply(struct smtp_client *c)
{
	if (c->rcode / 100 != 2) {
		client_quit_fail(c, c->rcode, "%s", client_reply_text(c));
		return;
	}
	client_send(c, "%s %s", c->lmtp ? "LHLO" : "EHLO", c->helo);
	client_set_state(c, CL_EHLO);
}

static void
client_ehlo_reply(struct smtp_client *c)
{
	if (c->rcode / 100 == 2) {
		client_after_hello(c);
		return;
	}
	c->caps = c->auth_mechs = 0;
	c->size_max = 0;
	/* RFC 5321 3.2: an old server may not know EHLO.  LMTP has no HELO. */
	if (c->rcode / 100 == 5 && !c->lmtp) {
		client_send(c, "HELO %s", c->helo);
		client_set_state(c, CL_HELO);
		return;
	}
	client_quit_fail(c, c->rcode, "%s", client_reply_text(c));
}

static void
client_helo_reply(struct smtp_client *c)
{
	if (c->rcode / 100 != 2) {
		client_quit_fail(c, c->rcode, "%s", client_reply_text(c));
		return;
	}
	client_after_hello(c);
}

static void
client_starttls_reply(struct smtp_client *c)
{
	if (c->rcode / 100 != 2) {
		if (c->tls == CLIENT_TLS_REQUIRED) {
			client_quit_fail(c, 421, "4.7.5 STARTTLS refused by "
			    "%s: %s", c->host, c->reply);
			return;
		}
		client_after_hello(c);	/* opportunistic: stay in clear */
		return;
	}
	/*
	 * Anything after the 220 was sent before the handshake and could be
	 * an injected reply (CVE-2011-0411 in reverse): refuse it.
	 */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) != 0) {
		client_fail(c, 421, "4.5.0 protocol error from %s: data "
		    "after the STARTTLS reply", c->host);
		return;
	}
	c->tls_verify = c->tls == CLIENT_TLS_REQUIRED;
	client_tls_start(c);
}

static void
client_auth_start(struct smtp_client *c)
{
	size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
	unsigned char *b;

	if (!(c->caps & CAP_AUTH)) {
		client_quit_fail(c, 421, "4.7.0 %s does not offer AUTH",
		    c->host);
		return;
	}
	if (!c->tls_on && !client_is_loopback(c)) {
		client_quit_fail(c, 421, "4.7.0 refusing to send AUTH to %s "
		    "over a cleartext connection", c->host);
		return;
	}
	if (ul + pl > CLIENT_AUTH_MAX) {
		client_quit_fail(c, 421, "4.7.0 AUTH credentials too long");
		return;
	}
	client_set_state(c, CL_AUTH);
	if (c->auth_mechs & AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		b = xmalloc(ul + pl + 2);
		b[0] = '\0';
		memcpy(b + 1, c->auth_user, ul);
		b[ul + 1] = '\0';
		memcpy(b + ul + 2, c->auth_pass, pl);
		client_send_secret(c, "AUTH PLAIN ", b, ul + pl + 2);
		OPENSSL_cleanse(b, ul + pl + 2);
		free(b);
		c->auth_step = AUTH_STEP_PLAIN;
	} else if (c->auth_mechs & AUTH_LOGIN) {
		client_send(c, "AUTH LOGIN");
		c->auth_step = AUTH_STEP_USER;
	} else
		client_quit_fail(c, 421, "4.7.0 %s offers no AUTH mechanism "
		    "we support (PLAIN, LOGIN)", c->host);
}

static void
client_auth_reply(struct smtp_client *c)
{
	if (c->rcode == 334 && c->auth_step == AUTH_STEP_USER) {
		client_send_secret(c, "", (const unsigned char *)c->auth_user,
		    strlen(c->auth_user));
		c->auth_step = AUTH_STEP_PASS;
		return;
	}
	if (c->rcode == 334 && c->auth_step == AUTH_STEP_PASS) {
		client_send_secret(c, "", (const unsigned char *)c->auth_pass,
		    strlen(c->auth_pass));
		c->auth_step = AUTH_STEP_LAST;
		return;
	}
	if (c->rcode / 100 == 2 && (c->auth_step == AUTH_STEP_PLAIN ||
	    c->auth_step == AUTH_STEP_LAST)) {
		c->authed = 1;
		client_after_hello(c);
		return;
	}
	/* The peer's verdict, as received (535 is permanent for it). */
	client_quit_fail(c, c->rcode == 334 ? 421 : c->rcode, "%s",
	    c->rcode == 334 ? "4.7.0 AUTH protocol error" :
	    client_reply_text(c));
}

/* After EHLO/HELO: STARTTLS, then AUTH, then ready. */
static void
client_after_hello(struct smtp_client *c)
{
	if (!c->tls_on && !c->starttls_tried &&
	    (c->tls == CLIENT_TLS_OPPORTUNISTIC ||
	    c->tls == CLIENT_TLS_REQUIRED)) {
		if ((c->caps & CAP_STARTTLS) && c->ssl_ctx != NULL) {
			c->starttls_tried = 1;
			client_send(c, "STARTTLS");
			client_set_state(c, CL_STARTTLS);
			return;
		}
		if (c->tls == CLIENT_TLS_REQUIRED) {
			client_quit_fail(c, 421, "4.7.5 TLS is required, but "
			    "%s", c->ssl_ctx == NULL ? "no TLS context is "
			    "configured" : "was not offered by host");
			return;
		}
	}
	if (c->auth_user != NULL && !c->authed) {
		client_auth_start(c);
		return;
	}
	client_set_state(c, CL_READY);
	c->cbs.ready(c, c->arg);
}

/* An unsolicited reply between messages: the peer gives up on us. */
static void
client_idle_reply(struct smtp_client *c)
{
	client_fail(c, c->rcode / 100 == 5 ? c->rcode : 421, "%s",
	    client_reply_text(c));
}

/*
 * What we put in a command line: no controls and no brackets; xtext and
 * keywords (is_addr 0) no spaces either, addresses may quote them.
 */
static int
is_valid_arg(const char *s, int is_addr)
{
	if (s == NULL || (*s == '\0' && !is_addr))
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '<' ||
		    *s == '>' || (*s == ' ' && !is_addr))
			return 0;
	return 1;
}

static void
client_send_mail(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "MAIL FROM:<%s>", m->sender);
	/* RFC 3461 5.2.1: the next hop takes over the DSN request. */
	m->dsn_passed = (c->caps & CAP_DSN) != 0;
	if (c->caps & CAP_SIZE)
		evbuffer_add_printf(out, " SIZE=%" PRIu64, m->len);
	/* RFC 6152: without 8BITMIME we send as is; that is our call. */
	if (m->body != NULL && strcmp(m->body, "8BITMIME") == 0 &&
	    (c->caps & CAP_8BITMIME))
		evbuffer_add_printf(out, " BODY=8BITMIME");
	if (m->smtputf8)
		evbuffer_add_printf(out, " SMTPUTF8");
	if ((c->caps & CAP_DSN) && is_valid_arg(m->ret, 0))
		evbuffer_add_printf(out, " RET=%s", m->ret);
	if ((c->caps & CAP_DSN) && is_valid_arg(m->envid, 0))
		evbuffer_add_printf(out, " ENVID=%s", m->envid);
	evbuffer_add(out, "\r\n", 2);
	log_debug("smtp-out %s > MAIL FROM:<%s>", c->host, m->sender);
}

static void
client_send_rcpt(struct smtp_client *c, unsigned i)
{
	struct smtp_client_rcpt *r = &c->msg->rcpts[i];
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "RCPT TO:<%s>", r->addr);
	/* RFC 3461 4.1, 4.2. */
	if ((c->caps & CAP_DSN) && is_valid_arg(r->notify, 0))
		evbuffer_add_printf(out, " NOTIFY=%s", r->notify);
	if ((c->caps & CAP_DSN) && is_valid_arg(r->orcpt, 0))
		evbuffer_add_printf(out, " ORCPT=%s", r->orcpt);
	evbuffer_add(out, "\r\n", 2);
	c->rstate[i] |= RS_SENT;
	log_debug("smtp-out %s > RCPT TO:<%s>", c->host, r->addr);
}

static void
client_rcpt_set(struct smtp_client *c, unsigned i, int code,
    const char *reply)
{
	c->msg->rcpts[i].code = code;
	strlcpy(c->msg->rcpts[i].reply, reply,
	    sizeof(c->msg->rcpts[i].reply));
	c->rstate[i] |= RS_FINAL;
}

/* Next recipient from i on with all of the flags in want, none in not. */
static unsigned
client_rcpt_next(const struct smtp_client *c, unsigned i, int want, int not)
{
	for (; i < c->msg->nrcpts; i++)
		if ((c->rstate[i] & want) == want && !(c->rstate[i] & not))
			return i;
	return c->msg->nrcpts;
}

/* Checks that need no conversation; 0 to go on. */
static int
client_msg_check(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;
	unsigned i;

	/* RFC 6531 3.4: no SMTPUTF8 at the peer, no delivery. */
	if (m->smtputf8 && !(c->caps & CAP_SMTPUTF8)) {
		client_msg_settle(c, 550, "5.6.7 SMTPUTF8 required but not "
		    "offered by host");
		return -1;
	}
	/* RFC 1870 6. */
	if ((c->caps & CAP_SIZE) && c->size_max > 0 && m->len > c->size_max) {
		client_msg_settle(c, 552, "5.3.4 message too big for host");
		return -1;
	}
	if (!is_valid_arg(m->sender, 1)) {
		client_msg_settle(c, 553, "5.1.7 bad sender address syntax");
		return -1;
	}
	for (i = 0; i < m->nrcpts; i++)
		if (!is_valid_arg(m->rcpts[i].addr, 1) ||
		    m->rcpts[i].addr[0] == '\0')
			client_rcpt_set(c, i, 553, "553 5.1.3 bad recipient "
			    "address syntax");
	return client_rcpt_next(c, 0, 0, RS_FINAL) == m->nrcpts ? -1 : 0;
}

void
smtp_client_send(struct smtp_client *c, struct smtp_client_msg *m)
{
	unsigned i;

	if (c->state == CL_CLOSED) {
		if (c->msg == NULL)
			c->msg = m;	/* client_close_cb reports it */
		return;
	}
	if (c->state != CL_READY || c->msg != NULL)
		fatalx("smtp_client_send: %s is busy", c->host);
	c->msg = m;
	c->rstate = xcalloc(m->nrcpts ? m->nrcpts : 1, 1);
	c->cur = c->naccepted = 0;
	c->mail_ok = 0;
	for (i = 0; i < m->nrcpts; i++) {
		m->rcpts[i].code = 0;
		m->rcpts[i].reply[0] = '\0';
	}
	if (client_msg_check(c) == -1) {
		/* Not from inside send(): done() may well call send(). */
		event_active(c->ev_done, EV_TIMEOUT, 1);
		return;
	}
	c->pipelined = (c->caps & CAP_PIPELINING) != 0;
	c->use_bdat = (c->caps & CAP_CHUNKING) != 0;
	client_send_mail(c);
	if (!c->pipelined) {
		client_set_state(c, CL_MAIL);
		return;
	}
	/* RFC 2920 3.1: MAIL, RCPTs and DATA in one go; RFC 3030 4.2: or
	 * the first BDAT chunk (the whole of a small message). */
	for (i = 0; i < m->nrcpts; i++)
		if (!(c->rstate[i] & RS_FINAL))
			client_send_rcpt(c, i);
	if (!c->use_bdat)
		client_send(c, "DATA");
	client_set_state(c, CL_MAIL);
	if (c->use_bdat) {
		client_bdat_begin(c);
		client_bdat_fill(c);	/* may fail the connection */
	}
}

static void
client_rset(struct smtp_client *c)
{
	client_send(c, "RSET");
	client_set_state(c, CL_RSET);
}

static void
client_mail_reply(struct smtp_client *c)
{
	c->mail_ok = c->rcode / 100 == 2;
	if (!c->mail_ok) {
		/* Every recipient shares the sender's fate. */
		client_msg_settle(c, c->rcode, client_reply_text(c));
		if (!c->pipelined) {
			client_msg_done(c);
			return;
		}
	}
	if (c->pipelined) {
		c->cur = client_rcpt_next(c, 0, RS_SENT, 0);
		client_set_state(c, CL_RCPT);
		return;
	}
	c->cur = client_rcpt_next(c, 0, 0, RS_FINAL);
	client_send_rcpt(c, c->cur);
	client_set_state(c, CL_RCPT);
}

/* After the last RCPT reply (and, pipelined, before DATA's or BDAT's). */
static void
client_rcpts_done(struct smtp_client *c)
{
	if (c->pipelined && c->use_bdat) {
		/* Without recipients the chunk sent will fail: no more. */
		c->bdat_stop = c->naccepted == 0;
		client_set_state(c, CL_BDAT);
		client_bdat_fill(c);
		return;
	}
	if (c->pipelined) {
		client_set_state(c, CL_DATA);
		return;
	}
	if (c->naccepted == 0) {
		client_rset(c);
		return;
	}
	if (c->use_bdat) {
		client_bdat_begin(c);
		client_set_state(c, CL_BDAT);
		client_bdat_fill(c);
		return;
	}
	client_send(c, "DATA");
	client_set_state(c, CL_DATA);
}

static void
client_rcpt_reply(struct smtp_client *c)
{
	unsigned i = c->cur;

	if (i >= c->msg->nrcpts) {
		client_fail(c, 421, "4.5.0 protocol error from %s: too many "
		    "RCPT replies", c->host);
		return;
	}
	c->rstate[i] &= ~RS_SENT;
	if (c->mail_ok) {
		if (c->rcode / 100 == 2) {
			c->rstate[i] |= RS_ACCEPTED;
			c->naccepted++;
		} else
			client_rcpt_set(c, i, c->rcode, c->reply);
	}
	if (c->pipelined)
		c->cur = client_rcpt_next(c, i + 1, RS_SENT, 0);
	else if ((c->cur = client_rcpt_next(c, i + 1, 0, RS_FINAL)) <
	    c->msg->nrcpts) {
		client_send_rcpt(c, c->cur);
		return;
	}
	if (c->cur >= c->msg->nrcpts)
		client_rcpts_done(c);
}

/* Back to the first content octet, for DATA or BDAT. */
static void
client_content_reset(struct smtp_client *c)
{
	c->pos = 0;
	c->bol = 1;
	c->last = '\0';
	if (c->chunk == NULL)
		c->chunk = xmalloc(CLIENT_CHUNK);
}

static void
client_content_start(struct smtp_client *c)
{
	client_content_reset(c);
	client_set_state(c, CL_CONTENT);
	client_content_fill(c);
}

/* Every accepted recipient without an outcome gets the current reply. */
static void
client_rcpts_accepted_set(struct smtp_client *c)
{
	unsigned i;

	for (i = 0; i < c->msg->nrcpts; i++)
		if ((c->rstate[i] & RS_ACCEPTED) && !(c->rstate[i] & RS_FINAL))
			client_rcpt_set(c, i, c->rcode, c->reply);
}

static void
client_data_reply(struct smtp_client *c)
{
	if (c->naccepted == 0) {
		/* RFC 2920 3.1: DATA must fail without recipients. */
		if (c->rcode == 354)
			client_fail(c, 421, "4.5.0 protocol error from %s: 354 "
			    "without valid recipients", c->host);
		else
			client_rset(c);
		return;
	}
	if (c->rcode == 354) {
		client_content_start(c);
		return;
	}
	client_rcpts_accepted_set(c);
	client_rset(c);
}

/*
 * Copy content to out: bare LF made CRLF (RFC 5321 2.3.8) and, for DATA,
 * dot-stuffing (4.5.2), so a line never starts a premature end of data.
 */
static void
client_stuff(struct smtp_client *c, struct evbuffer *out, const char *p,
    size_t n, int dots)
{
	const char *e = p + n, *nl;
	char prev;

	while (p < e) {
		if (dots && c->bol && *p == '.')
			evbuffer_add(out, ".", 1);
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL) {
			evbuffer_add(out, p, (size_t)(e - p));
			c->bol = 0;
			c->last = e[-1];
			return;
		}
		prev = nl > p ? nl[-1] : c->last;
		if (prev != '\r') {
			evbuffer_add(out, p, (size_t)(nl - p));
			evbuffer_add(out, "\r\n", 2);
		} else
			evbuffer_add(out, p, (size_t)(nl - p) + 1);
		c->bol = 1;
		c->last = '\n';
		p = nl + 1;
	}
}

/* The next content octets into c->chunk; -1 has failed the connection. */
static ssize_t
client_content_read(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;
	size_t want = m->len - c->pos < CLIENT_CHUNK ?
	    (size_t)(m->len - c->pos) : CLIENT_CHUNK;
	ssize_t r;

	while ((r = pread(m->fd, c->chunk, want,
	    (off_t)(m->off + c->pos))) == -1 && errno == EINTR)
		;
	if (r > 0)
		return r;
	log_warnx("%s: smtp-out read queue file: %s", m->id ? m->id : "-",
	    r == 0 ? "short file" : strerror(errno));
	client_fail(c, 451, "4.3.0 error reading the queue file");
	return -1;
}

/* Refill the output up to the high-water mark; the dot at the end. */
static void
client_content_fill(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	ssize_t r;

	while (evbuffer_get_length(out) < CLIENT_OUT_HIGHWAT &&
	    c->pos < m->len) {
		if ((r = client_content_read(c)) == -1)
			return;
		client_stuff(c, out, c->chunk, (size_t)r, 1);
		c->pos += (uint64_t)r;
	}
	if (c->pos < m->len)
		return;
	if (!c->bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	log_debug("smtp-out %s > . (%" PRIu64 " octets)", c->host, m->len);
	c->cur = 0;
	client_set_state(c, CL_DOT);
}

/* A reply before our end of data breaks the protocol. */
static void
client_content_reply(struct smtp_client *c)
{
	client_fail(c, 421, "4.5.0 protocol error from %s: reply while "
	    "sending message body: %s", c->host, c->reply);
}

static void
client_bdat_begin(struct smtp_client *c)
{
	client_content_reset(c);
	if (c->bdat == NULL && (c->bdat = evbuffer_new()) == NULL)
		fatalx("client_bdat_begin: evbuffer_new");
	evbuffer_drain(c->bdat, evbuffer_get_length(c->bdat));
	c->bdat_last = c->bdat_stop = 0;
	c->bdat_sent = c->bdat_acked = 0;
}

/* May another chunk be queued now? */
static int
is_bdat_sendable(const struct smtp_client *c)
{
	if (!c->use_bdat || c->bdat_last || c->bdat_stop)
		return 0;
	/* Pipelined ahead of the RCPT replies: the first chunk only. */
	if (c->state != CL_BDAT)
		return c->pipelined && c->bdat_sent == 0 &&
		    (c->state == CL_MAIL || c->state == CL_RCPT);
	/* RFC 3030 4.2: without PIPELINING, wait for each chunk's reply. */
	return c->pipelined || c->bdat_acked == c->bdat_sent;
}

/*
 * RFC 5321 4.5.3.2.5/6 by analogy: data_timeout for a chunk's reply,
 * done_timeout for LAST's; no read timeout while no reply is due.
 */
static void
client_bdat_timeouts(struct smtp_client *c)
{
	unsigned due = c->bdat_sent - c->bdat_acked;

	client_timeouts(c, due == 0 ? 0 : due == 1 && c->bdat_last ?
	    c->done_timeout : c->data_timeout, c->data_timeout);
}

/* Stage normalised octets: more than a chunk, or all that is left. */
static int
client_bdat_stage(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;
	ssize_t r;

	while (evbuffer_get_length(c->bdat) <= CLIENT_CHUNK &&
	    c->pos < m->len) {
		if ((r = client_content_read(c)) == -1)
			return -1;
		client_stuff(c, c->bdat, c->chunk, (size_t)r, 0);
		c->pos += (uint64_t)r;
	}
	/* As with DATA, the message ends with CRLF (RFC 5321 2.3.8). */
	if (c->pos == m->len && !c->bol) {
		evbuffer_add(c->bdat, "\r\n", 2);
		c->bol = 1;
	}
	return 0;
}

/*
 * Queue one chunk: "BDAT n" and exactly n octets, no dot-stuffing (RFC
 * 3030 2).  A chunk is LAST only when nothing follows it, so a message
 * that is an exact multiple of CLIENT_CHUNK needs no "BDAT 0 LAST".
 */
static void
client_bdat_chunk(struct smtp_client *c, struct evbuffer *out)
{
	size_t n = evbuffer_get_length(c->bdat);

	c->bdat_last = c->pos == c->msg->len && n <= CLIENT_CHUNK;
	if (!c->bdat_last)
		n = CLIENT_CHUNK;
	evbuffer_add_printf(out, "BDAT %zu%s\r\n", n,
	    c->bdat_last ? " LAST" : "");
	if (evbuffer_remove_buffer(c->bdat, out, n) != (int)n)
		fatalx("client_bdat_chunk: evbuffer_remove_buffer");
	c->bdat_sent++;
	log_debug("smtp-out %s > BDAT %zu%s", c->host, n,
	    c->bdat_last ? " LAST" : "");
}

/* Queue chunks up to the high-water mark, as far as replies allow. */
static void
client_bdat_fill(struct smtp_client *c)
{
	unsigned sent = c->bdat_sent;

	while (is_bdat_sendable(c) && evbuffer_get_length(
	    bufferevent_get_output(c->bev)) < CLIENT_OUT_HIGHWAT) {
		if (client_bdat_stage(c) == -1)
			return;
		client_bdat_chunk(c, bufferevent_get_output(c->bev));
	}
	if (c->state == CL_BDAT && c->bdat_sent != sent)
		client_bdat_timeouts(c);
}

/*
 * The reply to BDAT LAST ends the data as the reply to the dot does (RFC
 * 3030 2); with LMTP one comes per accepted recipient (RFC 2033 4.2).
 */
static void
client_bdat_final(struct smtp_client *c)
{
	c->cur = 0;
	client_set_state(c, CL_DOT);
	if (c->lmtp || c->rcode / 100 == 2) {
		client_dot_reply(c);
		return;
	}
	client_rcpts_accepted_set(c);
	client_rset(c);
}

/*
 * One reply per BDAT, in order.  A 4xx/5xx fails the transaction: no
 * more chunks, the replies to those already sent, then RSET (RFC 3030 2).
 */
static void
client_bdat_reply(struct smtp_client *c)
{
	int last;

	if (c->bdat_acked == c->bdat_sent) {
		client_fail(c, 421, "4.5.0 protocol error from %s: reply "
		    "without BDAT: %s", c->host, c->reply);
		return;
	}
	c->bdat_acked++;
	last = c->bdat_last && c->bdat_acked == c->bdat_sent;
	if (c->naccepted == 0 && last && c->rcode / 100 == 2) {
		client_fail(c, 421, "4.5.0 protocol error from %s: BDAT LAST "
		    "accepted without valid recipients", c->host);
		return;
	}
	if (!c->bdat_stop && last) {
		client_bdat_final(c);
		return;
	}
	if (!c->bdat_stop && c->rcode / 100 != 2) {
		client_rcpts_accepted_set(c);
		c->bdat_stop = 1;
	}
	if (c->bdat_stop) {
		if (c->bdat_acked == c->bdat_sent)
			client_rset(c);
		return;
	}
	client_bdat_timeouts(c);
	client_bdat_fill(c);
}

static void
client_dot_reply(struct smtp_client *c)
{
	unsigned i;

	if (c->lmtp) {
		/* RFC 2033 4.2: one reply per accepted recipient, in order. */
		i = client_rcpt_next(c, c->cur, RS_ACCEPTED, RS_FINAL);
		if (i < c->msg->nrcpts)
			client_rcpt_set(c, i, c->rcode, c->reply);
		c->cur = i + 1;
		if (client_rcpt_next(c, c->cur, RS_ACCEPTED, RS_FINAL) <
		    c->msg->nrcpts)
			return;
	} else
		client_rcpts_accepted_set(c);
	/* RFC 5321 4.1.1.4: the transaction is over either way. */
	client_msg_done(c);
}

static void
client_rset_reply(struct smtp_client *c)
{
	if (c->rcode / 100 != 2) {
		/* Outcomes are known; the session state is not. */
		client_quit_fail(c, 421, "4.5.0 RSET refused by %s: %s",
		    c->host, c->reply);
		return;
	}
	client_msg_done(c);
}

static void
client_quit_reply(struct smtp_client *c)
{
	client_fail(c, c->rcode, "%s", client_reply_text(c));
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c->state == CL_CLOSED || c->state == CL_QUIT)
		return;
	if (c->state != CL_READY || c->msg != NULL) {
		client_fail(c, 421, "4.3.2 delivery to %s aborted", c->host);
		return;
	}
	client_send(c, "QUIT");
	client_set_state(c, CL_QUIT);
}

const char *
smtp_client_peer(const struct smtp_client *c)
{
	return c->peer;
}

const char *
smtp_client_tls_info(const struct smtp_client *c)
{
	return c->tls_on ? c->tls_info : NULL;
}
