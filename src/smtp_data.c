/*
 * smtp_data.c -- message content: DATA and BDAT chunks are decoded
 * (smtp_parse.c), written to the spool as they arrive, and acknowledged
 * only after the spool's group commit made them durable.  Runs in the
 * worker threads; the content is untrusted and bounded by
 * max_message_size and max_text_line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "limit.h"
#include "log.h"
#include "queue.h"
#include "smtp_parse.h"
#include "smtp_server.h"
#include "smtp_session.h"
#include "spool.h"
#include "util.h"

static void	smtp_commit_cb(struct spool_msg *, void *);

/* An accepted message counts against its sender's caps. */
static void
smtp_cap_count(struct smtp_session *s)
{
	unsigned per_hour, per_day, rcpts;
	char key[300];

	if (smtp_cap_key(s, key, sizeof(key), &per_hour, &per_day,
	    &rcpts) != NULL && (per_hour || per_day))
		limit_cap_add(key, time(NULL));
}

/* RFC 3848 / RFC 6531 protocol name for Received and the envelope:
 * ESMTP, then S for TLS and A for AUTH (ESMTPSA, UTF8SMTPS...). */
static const char *
smtp_proto(const struct smtp_session *s, char *buf, size_t len)
{
	if (!s->esmtp)
		return "SMTP";
	snprintf(buf, len, "%s%s%s", s->tx->mail.smtputf8 ? "UTF8SMTP" :
	    "ESMTP", s->ssl ? "S" : "", s->auth_user[0] ? "A" : "");
	return buf;
}

static const char *
smtp_body_name(enum smtp_body b)
{
	switch (b) {
	case SMTP_BODY_7BIT:
		return "7BIT";
	case SMTP_BODY_8BITMIME:
		return "8BITMIME";
	case SMTP_BODY_BINARYMIME:
		return "BINARYMIME";
	default:
		return NULL;
	}
}

static const char *
smtp_notify_name(unsigned n, char *dst, size_t len)
{
	dst[0] = '\0';
	if (n & SMTP_NOTIFY_NEVER)
		return "NEVER";
	if (n & SMTP_NOTIFY_SUCCESS)
		strlcat(dst, ",SUCCESS", len);
	if (n & SMTP_NOTIFY_FAILURE)
		strlcat(dst, ",FAILURE", len);
	if (n & SMTP_NOTIFY_DELAY)
		strlcat(dst, ",DELAY", len);
	return dst + 1;
}

/* The envelope part of the spool file (docs/spool.md). */
static void
smtp_envelope(struct smtp_session *s, struct buf *env)
{
	struct smtp_tx *tx = s->tx;
	const struct smtp_mail_args *m = &tx->mail;
	uint64_t now = now_wall_usec();
	char nbuf[64], proto[16];
	unsigned i;

	buf_appendf(env, "id %s\narrival %" PRIu64 ".%06" PRIu64 "\n",
	    tx->id, now / 1000000, now % 1000000);
	buf_appendf(env, "client %s\nhelo %s\nproto %s\nfrom %s\n", s->ip,
	    s->helo, smtp_proto(s, proto, sizeof(proto)), m->path.addr);
	if (smtp_body_name(m->body))
		buf_appendf(env, "body %s\n", smtp_body_name(m->body));
	if (m->smtputf8)
		buf_appendf(env, "smtputf8\n");
	if (m->ret != SMTP_RET_NONE)
		buf_appendf(env, "ret %s\n",
		    m->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	if (m->envid[0])
		buf_appendf(env, "envid %s\n", m->envid);
	for (i = 0; i < tx->nrcpts; i++) {
		const struct smtp_rcpt_args *r = &tx->rcpts[i];

		buf_appendf(env, "rcpt %s\n", r->path.addr);
		if (r->notify)
			buf_appendf(env, "notify %s\n",
			    smtp_notify_name(r->notify, nbuf, sizeof(nbuf)));
		if (r->orcpt[0])
			buf_appendf(env, "orcpt %s\n", r->orcpt);
	}
	buf_append(env, "\n", 1);
}

/* RFC 5321 4.4; "for" only with one recipient, so as not to disclose
 * the others (as Postfix does). */
static void
smtp_received(struct smtp_session *s, struct buf *out)
{
	struct smtp_tx *tx = s->tx;
	char date[64], proto[16];

	rfc5322_date(date, sizeof(date), time(NULL));
	buf_appendf(out, "Received: from %s (%s [%s])\r\n", s->helo, s->host,
	    s->ip);
	if (s->ssl != NULL)
		buf_appendf(out, "\t(using %s)\r\n", s->tls_info);
	buf_appendf(out, "\tby %s (sluice) with %s id %s",
	    s->ctx->cfg->hostname, smtp_proto(s, proto, sizeof(proto)), tx->id);
	if (tx->nrcpts == 1)
		buf_appendf(out, "\r\n\tfor <%s>", tx->rcpts[0].path.addr);
	buf_appendf(out, "; %s\r\n", date);
}

int
smtp_data_begin(struct smtp_session *s, enum tx_data how)
{
	struct smtp_tx *tx = s->tx;
	const struct config *cfg = s->ctx->cfg;
	struct buf env;

	tx->data = how;
	spool_new_id(tx->id);
	buf_init(&env);
	smtp_envelope(s, &env);
	tx->msg = spool_msg_new(tx->id, &env);
	buf_free(&env);
	buf_reset(&tx->body);
	smtp_received(s, &tx->body);
	data_decoder_init(&tx->dec, how == TX_DATA_DATA ? DATA_MODE_DOT :
	    DATA_MODE_RAW, cfg->max_text_line);
	log_info("%s: client=%s[%s]", tx->id, s->host, s->ip);
	return 0;
}

/* After decoding some input: enforce the size limit, write out. */
static void
smtp_data_account(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (tx->too_big || tx->dec.error) {
		buf_reset(&tx->body);
		return;
	}
	if (tx->dec.out_bytes > s->ctx->cfg->max_message_size) {
		tx->too_big = 1;
		buf_reset(&tx->body);
		return;
	}
	/* A write error is remembered in the message and reported at
	 * the end of data; the client must send it all anyway. */
	spool_msg_write(tx->msg, &tx->body, 0);
}

/* The reply for a message that can't be accepted, or NULL. */
static const char *
smtp_data_refusal(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	switch (tx->dec.error) {
	case DATA_ERR_BARE_LF:
		return "550 5.6.11 Error: bare <LF> received in message";
	case DATA_ERR_BARE_CR:
		return "550 5.6.11 Error: bare <CR> received in message";
	case DATA_ERR_LINE_TOO_LONG:
		return "550 5.6.0 Error: message line too long";
	case DATA_ERR_NONE:
		break;
	}
	if (tx->too_big)
		return "552 5.3.4 Error: message size exceeds fixed limit";
	if (tx->msg->error == ENOSPC || tx->msg->error == EDQUOT)
		return "452 4.3.1 Error: insufficient system storage";
	if (tx->msg->error)
		return "451 4.3.0 Error: queue file write error";
	return NULL;
}

static void
smtp_data_refuse(struct smtp_session *s, const char *reply)
{
	struct smtp_tx *tx = s->tx;

	log_info("%s: reject: %s from %s[%s]", tx->id, reply, s->host, s->ip);
	smtp_reply(s, "%s", reply);
	smtp_tx_free(s);
	s->state = SESS_CMD;
}

/* The whole message is in: hand it to the group commit. */
static void
smtp_data_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const char *reply;

	if ((reply = smtp_data_refusal(s)) == NULL &&
	    spool_msg_finish(tx->msg, &tx->body) == -1)
		reply = smtp_data_refusal(s);
	if (reply != NULL) {
		if (tx->msg->error)
			log_warnx("%s: spool: %s", tx->id,
			    strerror(tx->msg->error));
		smtp_data_refuse(s, reply);
		return;
	}
	s->state = SESS_WAIT;
	bufferevent_disable(s->bev, EV_READ);
	spool_msg_commit(tx->msg, s->ctx->notify, smtp_commit_cb, s);
}

static void
smtp_commit_cb(struct spool_msg *msg, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;
	int ok = msg->error == 0;
	char id[SPOOL_ID_LEN + 1];

	strlcpy(id, msg->id, sizeof(id));
	tx->msg = NULL;		/* ours now, not the transaction's */
	if (ok) {
		log_info("%s: from=<%s>, size=%" PRIu64 ", nrcpt=%u (queue "
		    "active)", msg->id, tx->mail.path.addr, msg->msg_len,
		    tx->nrcpts);
		spool_msg_free(msg);
		queue_submit(id);
		smtp_cap_count(s);
	} else {
		/* Not durable, so never acknowledged: take it back. */
		log_warnx("%s: spool commit: %s", msg->id,
		    strerror(msg->error));
		spool_msg_abort(msg);
	}
	smtp_tx_free(s);
	if (s->dead) {
		/* The client left before the reply; the message stays. */
		s->state = SESS_CMD;
		smtp_session_free(s);
		return;
	}
	s->state = SESS_CMD;
	smtp_set_timeout(s, s->ctx->cfg->command_timeout);
	if (ok)
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", id);
	else
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
	smtp_resume(s);
}

/* DATA: decode up to the end of data or of what is buffered. */
static size_t
smtp_dot_read(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct smtp_tx *tx = s->tx;
	struct evbuffer_iovec v[8];
	enum data_status st = DATA_AGAIN;
	size_t used = 0;
	int i, n;

	n = evbuffer_peek(in, -1, NULL, v, 8);
	for (i = 0; i < n && i < 8 && st == DATA_AGAIN; i++)
		used += data_decode(&tx->dec, v[i].iov_base, v[i].iov_len,
		    &tx->body, &st);
	evbuffer_drain(in, used);
	smtp_data_account(s);
	if (st == DATA_DONE)
		smtp_data_end(s);
	return used;
}

/* The current BDAT chunk is all in. */
static void
smtp_bdat_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const char *reply;

	s->state = SESS_CMD;
	smtp_set_timeout(s, s->ctx->cfg->command_timeout);
	if (tx == NULL || tx->bdat_fail != NULL) {
		reply = tx ? tx->bdat_fail : "503 5.5.1 Error: need MAIL "
		    "and RCPT before BDAT";
		smtp_reply(s, "%s", reply);
		smtp_tx_free(s);
		smtp_error(s);
		return;
	}
	if (tx->bdat_last) {
		if (!tx->dec.error && !tx->too_big)
			data_decode_finish(&tx->dec, &tx->body);
		smtp_data_account(s);
		smtp_data_end(s);
		return;
	}
	if ((reply = smtp_data_refusal(s)) != NULL) {
		smtp_data_refuse(s, reply);
		return;
	}
	smtp_reply(s, "250 2.0.0 %" PRIu64 " octets received",
	    tx->dec.out_bytes);
}

/* BDAT: take this chunk's octets, decoding unless it is refused. */
static size_t
smtp_bdat_read(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct smtp_tx *tx = s->tx;
	struct evbuffer_iovec v[8];
	enum data_status st;
	size_t used = 0;
	int i, n;

	n = evbuffer_peek(in, -1, NULL, v, 8);
	for (i = 0; i < n && i < 8 && used < tx->bdat_left; i++) {
		size_t take = v[i].iov_len;

		if (take > tx->bdat_left - used)
			take = (size_t)(tx->bdat_left - used);
		if (tx->bdat_fail == NULL)
			data_decode(&tx->dec, v[i].iov_base, take, &tx->body,
			    &st);
		used += take;
	}
	evbuffer_drain(in, used);
	tx->bdat_left -= used;
	if (tx->bdat_fail == NULL)
		smtp_data_account(s);
	if (tx->bdat_left == 0)
		smtp_bdat_end(s);
	return used;
}

size_t
smtp_data_read(struct smtp_session *s)
{
	return s->state == SESS_DATA ? smtp_dot_read(s) : smtp_bdat_read(s);
}

void
smtp_bdat_start(struct smtp_session *s, uint64_t size, int last)
{
	struct smtp_tx *tx = s->tx;

	/* A refused chunk is still read, so the session stays in sync
	 * (RFC 3030 2); its reply comes when the chunk is all in. */
	if (tx == NULL) {
		tx = s->tx = xcalloc(1, sizeof(*tx));
		buf_init(&tx->body);
		tx->bdat_fail = s->helo[0] ? "503 5.5.1 Error: need MAIL "
		    "command" : "503 5.5.1 Error: send HELO/EHLO first";
	} else if (tx->data == TX_DATA_NONE && tx->nrcpts == 0)
		tx->bdat_fail = "503 5.5.1 Error: no valid recipients";
	else if (tx->data == TX_DATA_NONE)
		smtp_data_begin(s, TX_DATA_BDAT);
	if (tx->bdat_fail == NULL &&
	    tx->dec.out_bytes + size > s->ctx->cfg->max_message_size)
		tx->too_big = 1;
	tx->bdat_left = size;
	tx->bdat_last = last;
	s->state = SESS_BDAT;
	smtp_set_timeout(s, s->ctx->cfg->data_timeout);
	if (size == 0)
		smtp_bdat_end(s);
}
