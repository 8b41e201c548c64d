/*
 * smtp_client_msg.c -- the delivery client's mail transaction (see
 * smtp_client.c for the connection): MAIL and RCPT with their ESMTP
 * parameters, pipelined when the peer offers PIPELINING (RFC 2920), the
 * content with DATA or BDAT, the final reply or LMTP's per-recipient
 * replies, per-recipient results, and RSET after a failed transaction.
 * Runs in the delivery process.  Every reply is untrusted (a reply out
 * of turn fails the connection); the message's sender, recipients and
 * DSN parameters are checked before they go into a command line; the
 * content is read from the queue file with pread.
 *
 * Content goes with DATA, dot-stuffed, or with BDAT (RFC 3030) when the
 * peer offers CHUNKING: chunks of at most CLIENT_CHUNK octets exactly as
 * spooled (bare LF made CRLF, a final CRLF added: chunk sizes count those
 * octets), pipelined after the RCPTs when PIPELINING allows.  Either way
 * at most CLIENT_OUT_HIGHWAT octets wait in the output: write_cb refills.
 */
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "smtp_client.h"
#include "smtp_client_int.h"
#include "util.h"

#define CLIENT_CHUNK		(64 * 1024)	/* pread size for content */

static void	client_bdat_begin(struct smtp_client *);

/* Every recipient without an outcome gets code/text. */
void
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

struct smtp_client_msg *
client_msg_take(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;

	c->msg = NULL;
	free(c->rstate);
	c->rstate = NULL;
	c->use_bdat = 0;
	return m;
}


/* The transaction is over (the peer is in its initial state again). */
void
client_msg_done(struct smtp_client *c)
{
	struct smtp_client_msg *m = client_msg_take(c);

	client_set_state(c, CL_READY);
	c->cbs.done(c, m, c->arg);
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

void
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

void
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

void
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
	const char *start = p, *e = p + n, *span = p, *nl;
	char prev;

	if (n == 0)
		return;
	/* Spans are copied whole; only a bare LF or a leading dot breaks
	 * one (spooled mail has neither bare LFs nor many dots). */
	if (dots && c->bol && *p == '.')
		evbuffer_add(out, ".", 1);
	while ((nl = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		prev = nl > start ? nl[-1] : c->last;
		if (prev != '\r') {
			evbuffer_add(out, span, (size_t)(nl - span));
			evbuffer_add(out, "\r\n", 2);
			span = nl + 1;
		}
		p = nl + 1;
		if (dots && p < e && *p == '.') {
			evbuffer_add(out, span, (size_t)(p - span));
			evbuffer_add(out, ".", 1);
			span = p;
		}
	}
	evbuffer_add(out, span, (size_t)(e - span));
	c->last = e[-1];
	c->bol = c->last == '\n';
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
void
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
void
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
int
client_is_bdat_sendable(const struct smtp_client *c)
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
void
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
void
client_bdat_fill(struct smtp_client *c)
{
	unsigned sent = c->bdat_sent;

	while (client_is_bdat_sendable(c) && evbuffer_get_length(
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
void
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

void
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

void
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
