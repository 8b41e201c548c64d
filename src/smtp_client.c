/*
 * smtp_client.c -- the delivery client: outbound ESMTP and LMTP on a
 * libevent loop (see smtp_client.h).  Runs in the delivery process; every
 * byte the peer sends is untrusted: reply lines, line counts and every
 * wait are bounded, and a hostile server can at worst fail the
 * connection with a 4xx.
 *
 * This file holds the connection: set-up, reading replies, greeting,
 * EHLO/HELO/LHLO and capabilities, STARTTLS or implicit TLS, AUTH,
 * timeouts, QUIT and teardown.  The mail transaction (MAIL, RCPT, DATA
 * or BDAT, per-recipient results, RSET) is in smtp_client_msg.c; the two
 * share smtp_client_int.h.
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
 * The process must ignore SIGPIPE (sluiced does): a peer that hangs up
 * while we write must cost a connection, not the process.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "smtp_client_int.h"
#include "util.h"

/* RFC 5321 4.5.3.1.5 allows 512 octets; be lenient, but bounded. */
#define CLIENT_LINE_MAX		2048
#define CLIENT_REPLY_LINES	100	/* lines in one reply */
#define CLIENT_QUIT_TIMEOUT	30	/* cap on the wait for 221 */
#define CLIENT_AUTH_MAX		1024	/* user + password octets */

#define AUTH_PLAIN	0x01
#define AUTH_LOGIN	0x02

struct client_stage {
	const char	*what;		/* "... timed out while <what>" */
	void		(*reply)(struct smtp_client *);
};

static void	client_read_cb(struct bufferevent *, void *);
static void	client_write_cb(struct bufferevent *, void *);
static void	client_event_cb(struct bufferevent *, short, void *);
static void	client_close_cb(evutil_socket_t, short, void *);
static void	client_done_cb(evutil_socket_t, short, void *);
static void	client_greeting_reply(struct smtp_client *);
static void	client_ehlo_reply(struct smtp_client *);
static void	client_helo_reply(struct smtp_client *);
static void	client_starttls_reply(struct smtp_client *);
static void	client_auth_reply(struct smtp_client *);
static void	client_idle_reply(struct smtp_client *);
static void	client_quit_reply(struct smtp_client *);
static void	client_after_hello(struct smtp_client *);

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
void
client_timeouts(struct smtp_client *c, unsigned rsecs, unsigned wsecs)
{
	struct timeval r = { .tv_sec = rsecs, .tv_usec = 0 };
	struct timeval w = { .tv_sec = wsecs, .tv_usec = 0 };

	if (c->bev != NULL)
		bufferevent_set_timeouts(c->bev, rsecs ? &r : NULL,
		    wsecs ? &w : NULL);
}

void
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

void
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
void
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
void
client_quit_fail(struct smtp_client *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	client_vfail(c, code, fmt, ap);
	va_end(ap);
	client_send(c, "QUIT");
	client_set_state(c, CL_QUIT);
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
const char *
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
	else if (client_is_bdat_sendable(c))
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
