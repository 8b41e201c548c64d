/*
 * smtp_server.c -- inbound SMTP sessions: accept, greeting, reading
 * command lines, replies, timeouts and teardown.  Runs in the worker
 * threads, one event loop each; every byte read here is untrusted.
 * Commands are handled in smtp_cmd.c, message content in smtp_data.c.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "limit.h"
#include "log.h"
#include "policy.h"
#include "smtp_server.h"
#include "smtp_session.h"
#include "util.h"

/* Input we hold per session before we stop reading from the socket. */
#define SMTP_INPUT_HIGHWAT	(256 * 1024)
/* Replies a client may leave unread before we stop reading its commands
 * (a pipelining client that never reads must not grow our memory). */
#define SMTP_OUTPUT_HIGHWAT	(64 * 1024)
#define SMTP_OUTPUT_LOWAT	(16 * 1024)
/* A closing session waits this long for its last octets to leave. */
#define SMTP_CLOSE_LINGER_USEC	(10 * 1000000)
#define SMTP_CLOSE_POLL_USEC	10000

static atomic_uint	smtp_nsessions;
static const struct timeval smtp_tv_now = { 0, 0 };
static const struct timeval smtp_tv_poll = { 0, SMTP_CLOSE_POLL_USEC };

static void	smtp_read_cb(struct bufferevent *, void *);
static void	smtp_write_cb(struct bufferevent *, void *);
static void	smtp_event_cb(struct bufferevent *, short, void *);
static void	smtp_greet_cb(evutil_socket_t, short, void *);
static void	smtp_process(struct smtp_session *);
static void	smtp_close_cb(evutil_socket_t, short, void *);
static void	smtp_drained_cb(struct bufferevent *, void *);

unsigned
smtp_session_count(void)
{
	return atomic_load(&smtp_nsessions);
}

static void
smtp_peer_ip(const struct sockaddr *sa, char *dst, size_t len)
{
	const void *a = sa->sa_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (inet_ntop(sa->sa_family, a, dst, (socklen_t)len) == NULL)
		strlcpy(dst, "unknown", len);
}

void
smtp_set_timeout(struct smtp_session *s, unsigned secs)
{
	struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void
smtp_greet(struct smtp_session *s)
{
	s->state = SESS_CMD;
	smtp_reply(s, "220 %s ESMTP sluice", s->ctx->cfg->hostname);
}

/* Refuse a connection over a limit before any per-session work. */
static void
smtp_refuse(int fd, const struct config *cfg, const char *ip,
    const char *why)
{
	char msg[512];
	int n;

	n = snprintf(msg, sizeof(msg), "421 4.7.0 %s Error: %s\r\n",
	    cfg->hostname, why);
	if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
		log_debug("refuse %s: send: %s", ip, strerror(errno));
	log_warnx("reject: connect from unknown[%s]: %s", ip, why);
	close(fd);
}

/* Per-IP limits (trusted networks are exempt, as Postfix's anvil
 * exempts mynetworks).  NULL if the client may go on. */
static const char *
smtp_limit_check(const struct sockaddr *sa, const char *ip,
    const struct config *cfg, int *counted)
{
	*counted = 0;
	if (policy_trusted(cfg, sa) != NULL)
		return NULL;
	switch (limit_connect(ip, time(NULL))) {
	case LIMIT_OK:
		*counted = 1;
		return NULL;
	case LIMIT_TOO_MANY_SESSIONS:
		return "too many connections from your address";
	case LIMIT_TOO_FAST:
		return "too many connection attempts from your address";
	case LIMIT_BANNED:
		return "too many failed logins from your address";
	}
	return NULL;
}

/* Greet now, or after greeting_delay; an early talker is refused. */
static void
smtp_session_greet(struct smtp_session *s, int fd)
{
	const struct config *cfg = s->ctx->cfg;
	char c;

	if (cfg->greeting_delay > 0) {
		struct timeval tv = { .tv_sec = cfg->greeting_delay };

		s->greet_ev = evtimer_new(s->ctx->base, smtp_greet_cb, s);
		evtimer_add(s->greet_ev, &tv);
		return;
	}
	/* Even without a delay, a client whose first bytes are already
	 * here spoke before it could have seen the greeting. */
	if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
		smtp_close(s, "554 5.5.0 %s Error: talking before the greeting",
		    cfg->hostname);
		log_warnx("early talker from %s[%s]", s->host, s->ip);
		return;
	}
	smtp_greet(s);
}

void
smtp_session_start(struct smtp_ctx *ctx, int fd, const struct sockaddr *sa,
    socklen_t salen, const struct config_listener *l)
{
	const struct config *cfg = ctx->cfg;
	struct smtp_session *s;
	char ip[INET6_ADDRSTRLEN];
	const char *why;
	int counted = 0;

	(void)salen;
	smtp_peer_ip(sa, ip, sizeof(ip));
	if (atomic_fetch_add(&smtp_nsessions, 1) >= cfg->max_sessions)
		why = "too many connections";
	else
		why = smtp_limit_check(sa, ip, cfg, &counted);
	if (why != NULL) {
		atomic_fetch_sub(&smtp_nsessions, 1);
		smtp_refuse(fd, cfg, ip, why);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	s->listener = l;
	s->limit_counted = counted;
	s->net = policy_trusted(cfg, sa);
	s->line = xmalloc(cfg->max_command_line + 1);
	strlcpy(s->ip, ip, sizeof(s->ip));
	strlcpy(s->host, "unknown", sizeof(s->host));
	log_info("connect from %s[%s]", s->host, s->ip);
	if (l->role == LISTENER_SUBMISSIONS) {
		/* RFC 8314: TLS first; the greeting follows the handshake. */
		if (smtp_tls_start(s, fd) == -1) {
			close(fd);
			smtp_session_free(s);
			return;
		}
		smtp_greet(s);
		return;
	}
	s->bev = bufferevent_socket_new(ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL)
		fatalx("bufferevent_socket_new");
	smtp_session_setcb(s);
	smtp_session_greet(s, fd);
}

void
smtp_session_setcb(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, smtp_read_cb, smtp_drained_cb, smtp_event_cb,
	    s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_INPUT_HIGHWAT);
	bufferevent_setwatermark(s->bev, EV_WRITE, SMTP_OUTPUT_LOWAT, 0);
	smtp_set_timeout(s, s->ctx->cfg->command_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
smtp_greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	smtp_greet(s);
	smtp_process(s);
}

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

void
smtp_close(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		evbuffer_add_vprintf(out, fmt, ap);
		va_end(ap);
		evbuffer_add(out, "\r\n", 2);
	}
	/* Never freed here: callers may still look at the session.  The
	 * close timer frees it once every octet is out (or it gives up). */
	if (s->state == SESS_WAIT)
		fatalx("smtp_close: a commit or check is in flight");
	s->state = SESS_CLOSING;
	s->close_deadline = now_mono_usec() + SMTP_CLOSE_LINGER_USEC;
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_setcb(s->bev, NULL, smtp_write_cb, smtp_event_cb, s);
	if (s->close_ev == NULL)
		s->close_ev = evtimer_new(s->ctx->base, smtp_close_cb, s);
	evtimer_add(s->close_ev, &smtp_tv_now);
}

/* Octets not yet handed to the kernel, TLS layer included: a STARTTLS
 * session's filter passes its output to the socket bufferevent below. */
static size_t
smtp_pending_output(struct smtp_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));

	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

static void
smtp_close_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (smtp_pending_output(s) == 0 ||
	    now_mono_usec() > s->close_deadline) {
		smtp_session_free(s);
		return;
	}
	evtimer_add(s->close_ev, &smtp_tv_poll);
}

int
smtp_error(struct smtp_session *s)
{
	if (++s->nerrors < s->ctx->cfg->max_errors)
		return 0;
	log_warnx("too many errors from %s[%s]", s->host, s->ip);
	smtp_close(s, "421 4.7.0 %s Error: too many errors",
	    s->ctx->cfg->hostname);
	return 1;
}

void
smtp_tx_free(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (tx == NULL)
		return;
	spool_msg_abort(tx->msg);
	buf_free(&tx->body);
	free(tx->rcpts);
	free(tx);
	s->tx = NULL;
}

/* "ehlo=1 mail=1 rcpt=0/1 ... commands=3/4", in Postfix's order. */
static void
smtp_log_disconnect(struct smtp_session *s)
{
	static const enum smtp_verb order[] = { SMTP_CMD_HELO, SMTP_CMD_EHLO,
	    SMTP_CMD_STARTTLS, SMTP_CMD_AUTH, SMTP_CMD_MAIL, SMTP_CMD_RCPT,
	    SMTP_CMD_DATA, SMTP_CMD_BDAT, SMTP_CMD_RSET, SMTP_CMD_NOOP,
	    SMTP_CMD_VRFY, SMTP_CMD_EXPN, SMTP_CMD_HELP, SMTP_CMD_QUIT,
	    SMTP_CMD_FORBIDDEN, SMTP_CMD_UNKNOWN };
	char line[1024];
	size_t o = 0, i;
	unsigned total = 0, ok = 0;

	line[0] = '\0';
	for (i = 0; i < nitems(order) && o < sizeof(line); i++) {
		enum smtp_verb v = order[i];

		if (s->cmd_total[v] == 0)
			continue;
		total += s->cmd_total[v];
		ok += s->cmd_ok[v];
		if (s->cmd_ok[v] == s->cmd_total[v])
			o += (size_t)snprintf(line + o, sizeof(line) - o,
			    " %s=%u", smtp_verb_name(v), s->cmd_ok[v]);
		else
			o += (size_t)snprintf(line + o, sizeof(line) - o,
			    " %s=%u/%u", smtp_verb_name(v), s->cmd_ok[v],
			    s->cmd_total[v]);
	}
	if (ok == total)
		log_info("disconnect from %s[%s]%s commands=%u", s->host,
		    s->ip, line, total);
	else
		log_info("disconnect from %s[%s]%s commands=%u/%u", s->host,
		    s->ip, line, ok, total);
}

void
smtp_session_free(struct smtp_session *s)
{
	/* A commit or a check still points at us: free on its return. */
	if (s->state == SESS_WAIT) {
		s->dead = 1;
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		return;
	}
	smtp_log_disconnect(s);
	smtp_tx_free(s);
	if (s->limit_counted)
		limit_disconnect(s->ip);
	if (s->greet_ev)
		event_free(s->greet_ev);
	if (s->pause_ev)
		event_free(s->pause_ev);
	if (s->close_ev)
		event_free(s->close_ev);
	if (s->bev)
		bufferevent_free(s->bev);
	free(s->pause_reply);
	free(s->line);
	free(s);
	atomic_fetch_sub(&smtp_nsessions, 1);
}

static void
smtp_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (smtp_pending_output(s) == 0) {
		evtimer_del(s->close_ev);
		smtp_session_free(s);
	}
}

/*
 * An event while a commit or a password check is in flight: its callback
 * still points at the session, so nothing here may close or free it.  A
 * half-close still gets its reply; anything else ends the session when
 * the callback comes back.
 */
static void
smtp_event_waiting(struct smtp_session *s, short what)
{
	if ((what & BEV_EVENT_EOF) &&
	    !(what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) {
		log_info("lost connection after END-OF-MESSAGE from %s[%s]",
		    s->host, s->ip);
		s->peer_eof = 1;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	log_info("%s while waiting, from %s[%s]", what & BEV_EVENT_TIMEOUT ?
	    "timeout" : "lost connection", s->host, s->ip);
	s->dead = 1;
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
}

static void
smtp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		smtp_tls_connected(s);
		return;
	}
	if (s->state == SESS_WAIT) {
		smtp_event_waiting(s, what);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && s->state == SESS_TLS)
		log_info("TLS handshake failed with %s[%s]", s->host, s->ip);
	if ((what & BEV_EVENT_TIMEOUT) && s->state != SESS_CLOSING) {
		log_info("timeout after %s from %s[%s]",
		    s->state == SESS_DATA || s->state == SESS_BDAT ?
		    "DATA" : "command", s->host, s->ip);
		smtp_close(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->ctx->cfg->hostname);
		return;
	}
	/* Half-closed: the client may still read.  Replies owed to it
	 * (the 250 after a commit in flight, or already queued) go out
	 * before we close. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		bufferevent_disable(s->bev, EV_READ);
		if (s->state != SESS_CLOSING && evbuffer_get_length(
		    bufferevent_get_output(s->bev)) > 0) {
			smtp_close(s, NULL);
			return;
		}
	}
	if (what & BEV_EVENT_ERROR)
		log_debug("%s[%s]: %s", s->host, s->ip,
		    strerror(EVUTIL_SOCKET_ERROR()));
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (s->state == SESS_DATA || s->state == SESS_BDAT)
			log_info("lost connection after DATA from %s[%s]",
			    s->host, s->ip);
		smtp_session_free(s);
	}
}

/*
 * Take one command line off the input.  Returns 1 with the line (CRLF
 * removed) in *line, 0 if no complete line is buffered yet, -1 if the
 * line was refused (too long, bare LF) and a reply was sent.
 */
static int
smtp_next_line(struct smtp_session *s, const char **line, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t max = s->ctx->cfg->max_command_line;
	struct evbuffer_ptr p;
	const char *data;

	for (;;) {
		p = evbuffer_search(in, "\n", 1, NULL);
		if (p.pos == -1) {
			if (evbuffer_get_length(in) <= max)
				return 0;
			/* RFC 5321 4.5.3.1.4: refuse, drop it up to its LF. */
			evbuffer_drain(in, evbuffer_get_length(in));
			if (s->skip_line)
				return 0;
			s->skip_line = 1;
			smtp_reply(s, "500 5.5.6 Error: line too long");
			return -1;
		}
		if (!s->skip_line)
			break;
		/* The end of an overlong line: what follows is a command. */
		evbuffer_drain(in, (size_t)p.pos + 1);
		s->skip_line = 0;
	}
	if ((size_t)p.pos + 1 > max) {
		evbuffer_drain(in, (size_t)p.pos + 1);
		smtp_reply(s, "500 5.5.6 Error: line too long");
		return -1;
	}
	data = (const char *)evbuffer_pullup(in, p.pos + 1);
	if (p.pos == 0 || data[p.pos - 1] != '\r') {
		evbuffer_drain(in, (size_t)p.pos + 1);
		smtp_reply(s, "500 5.5.2 Error: bare <LF> received");
		return -1;
	}
	*line = data;
	*len = (size_t)p.pos - 1;
	return 1;
}

/* Copy the line out of the input and drop it there, so a handler may
 * swap the bufferevent (STARTTLS) or discard what follows. */
static size_t
smtp_take_line(struct smtp_session *s, const char *line, size_t len)
{
	memcpy(s->line, line, len);
	s->line[len] = '\0';
	evbuffer_drain(bufferevent_get_input(s->bev), len + 2);
	return len;
}

/* Handle everything buffered, as far as the state allows. */
static void
smtp_process(struct smtp_session *s)
{
	const struct config *cfg = s->ctx->cfg;

	while (!s->paused &&
	    evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
		/* The client is not reading: wait for smtp_drained_cb(). */
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    SMTP_OUTPUT_HIGHWAT)
			return;
		const char *line;
		size_t len;
		int r;

		switch (s->state) {
		case SESS_DATA:
		case SESS_BDAT:
			if (smtp_data_read(s) == 0)
				return;
			continue;
		case SESS_CMD:
			break;
		default:
			return;
		}
		r = smtp_next_line(s, &line, &len);
		if (r == 0)
			return;
		if (r == -1) {
			if (smtp_error(s))
				return;
			continue;
		}
		len = smtp_take_line(s, line, len);
		if (s->auth_step != AUTH_STEP_NONE)
			smtp_auth_line(s, s->line, len);
		else
			smtp_command(s, s->line, len);
		/* Tarpit: a client that keeps failing waits before each
		 * further command (Postfix smtpd_soft_error_limit). */
		if (cfg->soft_error_limit && s->nerrors >= cfg->soft_error_limit &&
		    s->state == SESS_CMD && cfg->error_delay)
			smtp_pause(s, cfg->error_delay, NULL);
	}
}

static void
smtp_pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	s->paused = 0;
	if (s->pause_reply != NULL) {
		smtp_reply(s, "%s", s->pause_reply);
		free(s->pause_reply);
		s->pause_reply = NULL;
	}
	if (s->state == SESS_CMD) {
		bufferevent_enable(s->bev, EV_READ);
		smtp_process(s);
	}
}

void
smtp_pause(struct smtp_session *s, unsigned secs, const char *reply)
{
	if (s->pause_ev == NULL)
		s->pause_ev = evtimer_new(s->ctx->base, smtp_pause_cb, s);
	free(s->pause_reply);
	s->pause_reply = reply ? xstrdup(reply) : NULL;
	s->paused = 1;
	bufferevent_disable(s->bev, EV_READ);
	evtimer_add(s->pause_ev, &(struct timeval){ .tv_sec = secs });
}

/* Output fell below the low-water mark: go on with buffered commands. */
static void
smtp_drained_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->state == SESS_CMD && !s->paused)
		smtp_process(s);
}

static void
smtp_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->state == SESS_CONNECTED) {
		evtimer_del(s->greet_ev);
		log_warnx("early talker from %s[%s]", s->host, s->ip);
		smtp_close(s, "554 5.5.0 %s Error: talking before the greeting",
		    s->ctx->cfg->hostname);
		return;
	}
	smtp_process(s);
}

const char *
smtp_cap_key(struct smtp_session *s, char *buf, size_t len,
    unsigned *per_hour, unsigned *per_day, unsigned *rcpts)
{
	const struct config *cfg = s->ctx->cfg;
	const struct config_user *u = s->user;

	*per_hour = u && u->max_msgs_per_hour ? u->max_msgs_per_hour :
	    cfg->max_msgs_per_hour;
	*per_day = u && u->max_msgs_per_day ? u->max_msgs_per_day :
	    cfg->max_msgs_per_day;
	*rcpts = u && u->max_rcpts_per_msg ? u->max_rcpts_per_msg :
	    cfg->max_rcpts_per_msg;
	if (*per_hour == 0 && *per_day == 0 && *rcpts == 0)
		return NULL;
	if (s->auth_user[0])
		snprintf(buf, len, "user:%s", s->auth_user);
	else if (s->net != NULL)
		snprintf(buf, len, "net:%s", s->net->cidr);
	else
		return NULL;	/* strangers only reach local domains */
	return buf;
}

void
smtp_resume(struct smtp_session *s)
{
	if (s->peer_eof) {
		smtp_close(s, NULL);	/* flush the last reply, then go */
		return;
	}
	if (s->state != SESS_CMD || s->paused)
		return;
	bufferevent_enable(s->bev, EV_READ);
	smtp_process(s);
}
