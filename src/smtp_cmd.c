/*
 * smtp_cmd.c -- the SMTP verbs (RFC 5321 4.1.1, RFC 1869/5321 EHLO,
 * RFC 3030 BDAT).  A table says when each verb is allowed; handlers get
 * the parsed command and answer with an enhanced status code (RFC 3463).
 * Runs in the worker threads; the arguments are untrusted.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "async.h"
#include "config.h"
#include "limit.h"
#include "lmtp_verify.h"
#include "local.h"
#include "log.h"
#include "policy.h"
#include "route.h"
#include "smtp_parse.h"
#include "smtp_server.h"
#include "smtp_session.h"
#include "util.h"

#define CMD_F_HELO	0x01	/* needs HELO/EHLO first */
#define CMD_F_MAIL	0x02	/* needs MAIL */
#define CMD_F_NOTX	0x04	/* refused inside a transaction */
#define CMD_F_SELFOK	0x08	/* the handler counts its own success */

#define CMD_PENDING	1	/* a handler's answer comes later */

struct smtp_command {
	enum smtp_verb	 verb;
	const char	*name;		/* for the disconnect log */
	unsigned	 flags;
	int		(*fn)(struct smtp_session *, const struct smtp_cmd *);
};

/* A RCPT waiting for the LMTP server's word on its mailboxes. */
struct smtp_rcpt_req {
	struct async_job	 job;
	struct smtp_session	*s;
	const struct config	*cfg;
	struct smtp_rcpt_args	 r;		/* as the client gave it */
	char			**list;		/* its final addresses */
	int			 n;
	struct lmtp_verify_addr	*v;		/* those the server knows */
	size_t			 nv;
};

static int	cmd_helo(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_ehlo(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_mail(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_rcpt(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_data(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_bdat(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_rset(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_noop(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_quit(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_help(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_vrfy(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_expn(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_starttls(struct smtp_session *, const struct smtp_cmd *);
static int	cmd_auth(struct smtp_session *, const struct smtp_cmd *);

/* Indexed by enum smtp_verb. */
static const struct smtp_command smtp_commands[SMTP_CMD_COUNT] = {
	[SMTP_CMD_UNKNOWN] =	{ SMTP_CMD_UNKNOWN, "unknown", 0, NULL },
	[SMTP_CMD_HELO] =	{ SMTP_CMD_HELO, "helo", 0, cmd_helo },
	[SMTP_CMD_EHLO] =	{ SMTP_CMD_EHLO, "ehlo", 0, cmd_ehlo },
	[SMTP_CMD_MAIL] =	{ SMTP_CMD_MAIL, "mail", CMD_F_HELO | CMD_F_NOTX,
				    cmd_mail },
	[SMTP_CMD_RCPT] =	{ SMTP_CMD_RCPT, "rcpt", CMD_F_HELO | CMD_F_MAIL,
				    cmd_rcpt },
	[SMTP_CMD_DATA] =	{ SMTP_CMD_DATA, "data", CMD_F_HELO | CMD_F_MAIL,
				    cmd_data },
	/* BDAT checks its own order: its chunk must be read regardless. */
	[SMTP_CMD_BDAT] =	{ SMTP_CMD_BDAT, "bdat", 0, cmd_bdat },
	[SMTP_CMD_RSET] =	{ SMTP_CMD_RSET, "rset", 0, cmd_rset },
	[SMTP_CMD_NOOP] =	{ SMTP_CMD_NOOP, "noop", 0, cmd_noop },
	[SMTP_CMD_QUIT] =	{ SMTP_CMD_QUIT, "quit", 0, cmd_quit },
	[SMTP_CMD_HELP] =	{ SMTP_CMD_HELP, "help", 0, cmd_help },
	[SMTP_CMD_VRFY] =	{ SMTP_CMD_VRFY, "vrfy", 0, cmd_vrfy },
	[SMTP_CMD_EXPN] =	{ SMTP_CMD_EXPN, "expn", 0, cmd_expn },
	[SMTP_CMD_STARTTLS] =	{ SMTP_CMD_STARTTLS, "starttls", CMD_F_NOTX,
				    cmd_starttls },
	[SMTP_CMD_AUTH] =	{ SMTP_CMD_AUTH, "auth", CMD_F_SELFOK, cmd_auth },
	[SMTP_CMD_FORBIDDEN] =	{ SMTP_CMD_FORBIDDEN, "forbidden", 0, NULL },
};

const char *
smtp_verb_name(enum smtp_verb v)
{
	return v < SMTP_CMD_COUNT ? smtp_commands[v].name : "unknown";
}

static void
smtp_forbidden(struct smtp_session *s, const char *line, size_t len)
{
	char esc[128];

	log_warnx("non-SMTP command from %s[%s]: %s", s->host, s->ip,
	    log_escape(esc, sizeof(esc), line, len));
	smtp_close(s, "421 4.7.0 %s Error: non-SMTP command",
	    s->ctx->cfg->hostname);
}

/* Check the table's ordering rules; 0 if the verb may run now. */
static int
smtp_check_order(struct smtp_session *s, const struct smtp_command *c)
{
	if ((c->flags & CMD_F_HELO) && s->helo[0] == '\0')
		smtp_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if ((c->flags & CMD_F_MAIL) && s->tx == NULL)
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
	else if ((c->flags & CMD_F_NOTX) && s->tx != NULL)
		smtp_reply(s, "503 5.5.1 Error: nested MAIL command");
	else
		return 0;
	return -1;
}

void
smtp_command(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_command *c;
	struct smtp_cmd cmd;
	int r;

	if (smtp_parse_command(line, len, &cmd) == -1) {
		s->cmd_total[SMTP_CMD_UNKNOWN]++;
		smtp_reply(s, "500 5.5.2 Error: bad syntax");
		smtp_error(s);
		return;
	}
	c = &smtp_commands[cmd.verb];
	s->cmd_total[cmd.verb]++;
	if (cmd.verb == SMTP_CMD_FORBIDDEN) {
		smtp_forbidden(s, line, len);
		return;
	}
	if (c->fn == NULL) {
		smtp_reply(s, "500 5.5.2 Error: command not recognized");
		smtp_error(s);
		return;
	}
	if (smtp_check_order(s, c) == -1 || (r = c->fn(s, &cmd)) == -1) {
		smtp_error(s);
		return;
	}
	/* A pending answer is counted when it is given. */
	if (r != CMD_PENDING && !(c->flags & CMD_F_SELFOK))
		s->cmd_ok[cmd.verb]++;
}

static int
smtp_set_helo(struct smtp_session *s, const struct smtp_cmd *cmd,
    const char *verb)
{
	if (cmd->arglen == 0 || !smtp_valid_helo(cmd->arg, cmd->arglen) ||
	    cmd->arglen >= sizeof(s->helo)) {
		smtp_reply(s, "501 5.5.4 Syntax: %s hostname", verb);
		return -1;
	}
	memcpy(s->helo, cmd->arg, cmd->arglen);
	s->helo[cmd->arglen] = '\0';
	smtp_tx_free(s);		/* RFC 5321 4.1.4: like RSET */
	return 0;
}

static int
cmd_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (smtp_set_helo(s, cmd, "HELO") == -1)
		return -1;
	s->esmtp = 0;
	smtp_reply(s, "250 %s", s->ctx->cfg->hostname);
	return 0;
}

static int
cmd_ehlo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const struct config *cfg = s->ctx->cfg;

	if (smtp_set_helo(s, cmd, "EHLO") == -1)
		return -1;
	s->esmtp = 1;
	smtp_reply(s, "250-%s", cfg->hostname);
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu",
	    (unsigned long long)cfg->max_message_size);
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250-CHUNKING");
	if (smtp_tls_available() && s->ssl == NULL)
		smtp_reply(s, "250-STARTTLS");
	if (smtp_auth_offered(s))
		smtp_reply(s, "250-AUTH PLAIN LOGIN");
	smtp_reply(s, "250 DSN");
	return 0;
}

/* RFC 3207 4.2: after the handshake the client starts afresh. */
static int
cmd_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	if (cmd->arglen) {
		smtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return -1;
	}
	if (s->ssl != NULL) {
		smtp_reply(s, "554 5.5.1 Error: TLS already active");
		return -1;
	}
	if (!smtp_tls_available()) {
		smtp_reply(s, "502 5.5.1 Error: command not implemented");
		return -1;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* CVE-2011-0411: what was pipelined after STARTTLS came in clear
	 * text and must not be taken as if it came through TLS. */
	if (evbuffer_get_length(in) > 0) {
		log_warnx("%s[%s]: discarded %zu octets pipelined after "
		    "STARTTLS", s->host, s->ip, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	s->helo[0] = '\0';
	s->esmtp = 0;
	/* Even a cleartext login (auth_cleartext) is forgotten. */
	s->auth_user[0] = '\0';
	s->user = NULL;
	s->auth_step = AUTH_STEP_NONE;
	smtp_tx_free(s);
	if (smtp_tls_start(s, -1) == -1) {
		smtp_close(s, "421 4.3.0 %s Error: TLS unavailable",
		    s->ctx->cfg->hostname);
		return -1;
	}
	return 0;
}

static int
cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	return smtp_auth_cmd(s, cmd->arg, cmd->arglen);
}

/* Refuse what the session did not negotiate (RFC 5321 4.1.1.11). */
static const char *
smtp_mail_params_check(struct smtp_session *s, const struct smtp_mail_args *m)
{
	const struct config *cfg = s->ctx->cfg;

	if (!s->esmtp && (m->has_size || m->body != SMTP_BODY_NONE ||
	    m->smtputf8 || m->ret != SMTP_RET_NONE || m->envid[0] ||
	    m->has_auth))
		return "555 5.5.4 Error: parameters need EHLO";
	if (m->body == SMTP_BODY_BINARYMIME)
		return "555 5.5.4 Error: BINARYMIME not supported";
	/* RFC 4954 5: AUTH= is allowed where AUTH is offered; we never
	 * trust the identity it claims, so it is parsed and dropped. */
	if (m->has_auth && !smtp_auth_offered(s))
		return "555 5.5.4 Error: AUTH not offered";
	if (m->has_size && m->size > cfg->max_message_size)
		return "552 5.3.4 Error: message size exceeds fixed limit";
	return NULL;
}

/* Submission needs AUTH first (RFC 6409 4.3); an authenticated user may
 * use only its own senders, so a stolen login cannot spoof others.
 * Returns 0, or -1 after a refusal. */
static int
smtp_mail_policy(struct smtp_session *s, const struct smtp_mail_args *m)
{
	if (s->listener->role != LISTENER_SMTP && s->auth_user[0] == '\0') {
		smtp_reply(s, "530 5.7.0 Error: authentication required");
		return -1;
	}
	if (s->auth_user[0] == '\0' ||
	    policy_sender_ok(s->user, s->auth_user, m->path.addr))
		return 0;
	log_warnx("reject: MAIL from %s[%s]: 553 5.7.1 <%s>: sender not "
	    "owned by user %s", s->host, s->ip, m->path.addr, s->auth_user);
	smtp_reply(s, "553 5.7.1 <%s>: Sender address rejected: not owned "
	    "by user %s", m->path.addr, s->auth_user);
	return -1;
}

/* Over the hourly or daily cap: 451 4.7.1, and the client may retry. */
static int
smtp_mail_capped(struct smtp_session *s)
{
	unsigned per_hour, per_day, rcpts;
	char key[300];

	if (smtp_cap_key(s, key, sizeof(key), &per_hour, &per_day,
	    &rcpts) == NULL || limit_cap_check(key, per_hour, per_day,
	    time(NULL)))
		return 0;
	log_warnx("reject: MAIL from %s[%s]: 451 4.7.1 sending limit reached"
	    " for %s", s->host, s->ip, key);
	smtp_reply(s, "451 4.7.1 Error: sending limit reached, try later");
	return 1;
}

static int
cmd_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_mail_args m;
	enum smtp_parse_err e;
	const char *refuse;

	memset(&m, 0, sizeof(m));
	if ((e = smtp_parse_mail(cmd->arg, cmd->arglen, &m)) != SMTP_PARSE_OK) {
		smtp_reply(s, "%s", smtp_parse_reply(e, 0));
		return -1;
	}
	if ((refuse = smtp_mail_params_check(s, &m)) != NULL) {
		smtp_reply(s, "%s", refuse);
		return -1;
	}
	if (smtp_mail_policy(s, &m) == -1)
		return -1;
	if (smtp_mail_capped(s))
		return 0;
	s->tx = xcalloc(1, sizeof(*s->tx));
	s->tx->mail = m;
	buf_init(&s->tx->body);
	smtp_reply(s, "250 2.1.0 Ok");
	return 0;
}

/* Add a recipient unless the transaction has it already. */
static void
smtp_tx_add_rcpt(struct smtp_tx *tx, const struct smtp_rcpt_args *r)
{
	unsigned i;

	for (i = 0; i < tx->nrcpts; i++)
		if (strcmp(tx->rcpts[i].path.addr, r->path.addr) == 0)
			return;
	if (tx->nrcpts == tx->rcpts_cap) {
		tx->rcpts_cap = tx->rcpts_cap ? tx->rcpts_cap * 2 : 4;
		tx->rcpts = xreallocarray(tx->rcpts, tx->rcpts_cap,
		    sizeof(*tx->rcpts));
	}
	tx->rcpts[tx->nrcpts++] = *r;
}

static int
smtp_rcpt_is_local(struct smtp_session *s, const struct smtp_path *p)
{
	if (p->addr[p->at] == '\0')	/* bare <postmaster> */
		return 1;
	return route_is_local_domain(s->ctx->cfg, p->addr + p->at + 1);
}

/* RFC 3461 4: ORCPT's xtext form of an address. */
static void
smtp_xtext(char *dst, size_t len, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *src && o + 4 < len; src++) {
		unsigned char c = (unsigned char)*src;
		if (c < 33 || c > 126 || c == '+' || c == '=') {
			dst[o++] = '+';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
}

/* Add the final addresses of r, keeping r as ORCPT for notices. */
static void
smtp_rcpt_add_list(struct smtp_tx *tx, const struct smtp_rcpt_args *r,
    char **list, int n)
{
	struct smtp_rcpt_args e;
	const char *at;
	int i;

	for (i = 0; i < n; i++) {
		e = *r;
		if (strlcpy(e.path.addr, list[i], sizeof(e.path.addr)) >=
		    sizeof(e.path.addr))
			continue;
		at = strrchr(e.path.addr, '@');
		e.path.at = at ? (size_t)(at - e.path.addr) :
		    strlen(e.path.addr);
		if (r->orcpt[0] == '\0' && strcmp(list[i], r->path.addr)) {
			strlcpy(e.orcpt, "rfc822;", sizeof(e.orcpt));
			smtp_xtext(e.orcpt + 7, sizeof(e.orcpt) - 7,
			    r->path.addr);
		}
		smtp_tx_add_rcpt(tx, &e);
	}
}

static void
smtp_rcpt_req_free(struct smtp_rcpt_req *q)
{
	local_list_free(q->list, q->n);
	free(q->v);
	free(q);
}

static int
smtp_rcpt_unknown(struct smtp_session *s, const struct smtp_rcpt_req *q,
    const struct lmtp_verify_addr *v)
{
	const char *rcpt = q->r.path.addr;

	log_info("reject: RCPT from %s[%s]: 550 5.1.1 <%s>: User unknown "
	    "(lmtp: <%s>: %s)", s->host, s->ip, rcpt, v->addr, v->text);
	/* An alias's targets are none of the client's business. */
	if (strcmp(v->addr, rcpt) != 0)
		smtp_reply(s, "550 5.1.1 <%s>: Recipient address rejected: "
		    "User unknown", rcpt);
	else
		smtp_reply(s, "550 5.1.1 <%s>: Recipient address rejected: %s",
		    rcpt, v->text);
	return -1;
}

/* Answer the RCPT from what the server (or the cache) said: refuse
 * for any unknown mailbox, defer when one is in doubt -- never accept
 * blindly, never refuse for good on a temporary failure. */
static int
smtp_rcpt_answer(struct smtp_session *s, struct smtp_rcpt_req *q)
{
	size_t i;

	for (i = 0; i < q->nv; i++)
		if (q->v[i].status == LMTP_VERIFY_UNKNOWN)
			return smtp_rcpt_unknown(s, q, &q->v[i]);
	for (i = 0; i < q->nv; i++) {
		if (q->v[i].status == LMTP_VERIFY_EXISTS)
			continue;
		log_warnx("reject: RCPT from %s[%s]: 451 4.4.3 <%s>: "
		    "verification of <%s> failed: %s", s->host, s->ip,
		    q->r.path.addr, q->v[i].addr, q->v[i].text);
		smtp_reply(s, "451 4.4.3 <%s>: Recipient address rejected: "
		    "recipient verification failed, try again later",
		    q->r.path.addr);
		return 0;
	}
	smtp_rcpt_add_list(s->tx, &q->r, q->list, q->n);
	smtp_reply(s, "250 2.1.5 Ok");
	return 0;
}

static void
smtp_rcpt_work(struct async_job *j)
{
	struct smtp_rcpt_req *q = (struct smtp_rcpt_req *)j;

	lmtp_verify_probe(q->cfg, q->v, q->nv);
}

/* Back on the loop: answer, then go on with what was pipelined. */
static void
smtp_rcpt_done(struct notify_item *it)
{
	struct smtp_rcpt_req *q = NOTIFY_CONTAINER(it, struct smtp_rcpt_req,
	    job.done);
	struct smtp_session *s = q->s;
	const struct config *cfg = s->ctx->cfg;
	int r;

	s->state = SESS_CMD;
	if (s->dead) {
		smtp_rcpt_req_free(q);
		smtp_session_free(s);
		return;
	}
	r = smtp_rcpt_answer(s, q);
	smtp_rcpt_req_free(q);
	if (r == -1 && smtp_error(s))
		return;
	if (r == 0)
		s->cmd_ok[SMTP_CMD_RCPT]++;
	/* The tarpit smtp_process() applies after every command. */
	if (!s->peer_eof && cfg->soft_error_limit &&
	    s->nerrors >= cfg->soft_error_limit && cfg->error_delay)
		smtp_pause(s, cfg->error_delay, NULL);
	else
		smtp_resume(s);
}

/*
 * With LMTP only the server knows the mailboxes: ask it (or the cache)
 * before answering, so mail to a wrong address is refused now and not
 * bounced later to a sender that may be forged.  Takes list.  Returns
 * as a handler does, or CMD_PENDING while the pool asks the server;
 * the session reads nothing meanwhile, so pipelined commands keep
 * their order (RFC 2920 3.1).
 */
static int
smtp_rcpt_verify(struct smtp_session *s, const struct smtp_rcpt_args *r,
    char **list, int n)
{
	struct smtp_rcpt_req *q = xcalloc(1, sizeof(*q));
	/* RFC 5321 4.5.1: postmaster is taken, whatever it expands to. */
	int i, ask = 0, ret, role = local_is_role(r->path.addr);

	q->s = s;
	q->cfg = s->ctx->cfg;
	q->r = *r;
	q->list = list;
	q->n = n;
	q->v = xcalloc((size_t)n, sizeof(*q->v));
	for (i = 0; i < n && !role; i++) {
		if (!local_is_lmtp_mailbox(q->cfg, list[i]))
			continue;
		q->v[q->nv].addr = list[i];
		lmtp_verify_cached(&q->v[q->nv]);
		if (q->v[q->nv].status == LMTP_VERIFY_UNKNOWN)
			ask = -1;		/* refused whatever the rest */
		else if (q->v[q->nv].status == LMTP_VERIFY_NONE && ask == 0)
			ask = 1;
		q->nv++;
	}
	if (ask != 1) {
		ret = smtp_rcpt_answer(s, q);
		smtp_rcpt_req_free(q);
		return ret;
	}
	q->job.work = smtp_rcpt_work;
	q->job.done.fn = smtp_rcpt_done;
	s->state = SESS_WAIT;
	bufferevent_disable(s->bev, EV_READ);
	async_run(&q->job, s->ctx->notify);
	return CMD_PENDING;
}

/*
 * A recipient in a local domain: refuse unknown mailboxes now, not with
 * a bounce later; replace an alias by its targets, keeping the address
 * the client gave as ORCPT for notices.
 */
static int
smtp_rcpt_local(struct smtp_session *s, struct smtp_rcpt_args *r)
{
	char **list;
	int n;

	switch (local_resolve(s->ctx->cfg, r->path.addr, &list, &n)) {
	case LOCAL_OK:
		/* An alias's targets count against the recipient limit. */
		if (s->tx->nrcpts + (unsigned)n > s->ctx->cfg->max_recipients) {
			local_list_free(list, n);
			smtp_reply(s, "452 4.5.3 Error: too many recipients");
			return 0;
		}
		break;
	case LOCAL_UNKNOWN:
		log_info("reject: RCPT from %s[%s]: 550 5.1.1 <%s>: User "
		    "unknown", s->host, s->ip, r->path.addr);
		smtp_reply(s, "550 5.1.1 <%s>: Recipient address rejected: "
		    "User unknown", r->path.addr);
		return -1;
	case LOCAL_TEMPFAIL:
		smtp_reply(s, "451 4.3.0 <%s>: alias expansion failed",
		    r->path.addr);
		return 0;
	}
	return smtp_rcpt_verify(s, r, list, n);
}

static int
smtp_rcpt_over_cap(struct smtp_session *s)
{
	unsigned per_hour, per_day, rcpts;
	char key[300];

	if (smtp_cap_key(s, key, sizeof(key), &per_hour, &per_day,
	    &rcpts) == NULL || rcpts == 0 || s->tx->nrcpts < rcpts)
		return 0;
	log_warnx("reject: RCPT from %s[%s]: 451 4.7.1 recipient limit %u "
	    "reached for %s", s->host, s->ip, rcpts, key);
	smtp_reply(s, "451 4.7.1 Error: too many recipients for this sender");
	return 1;
}

static int
cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_tx *tx = s->tx;
	struct smtp_rcpt_args r;
	enum smtp_parse_err e;

	if (tx->data != TX_DATA_NONE) {
		smtp_reply(s, "503 5.5.1 Error: RCPT after BDAT");
		return -1;
	}
	memset(&r, 0, sizeof(r));
	e = smtp_parse_rcpt(cmd->arg, cmd->arglen, tx->mail.smtputf8, &r);
	if (e != SMTP_PARSE_OK) {
		smtp_reply(s, "%s", smtp_parse_reply(e, 1));
		return -1;
	}
	if (!s->esmtp && (r.notify || r.orcpt[0])) {
		smtp_reply(s, "555 5.5.4 Error: parameters need EHLO");
		return -1;
	}
	/* RFC 5321 4.5.3.1.10: 452 for too many, not counted as an error. */
	if (tx->nrcpts >= s->ctx->cfg->max_recipients) {
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return 0;
	}
	if (smtp_rcpt_over_cap(s))
		return 0;
	if (smtp_rcpt_is_local(s, &r.path))
		return smtp_rcpt_local(s, &r);
	/* Never an open relay: other domains only for AUTH or trusted
	 * networks, decided on the parsed address (source route gone). */
	if (s->auth_user[0] == '\0' && s->net == NULL) {
		log_warnx("reject: RCPT from %s[%s]: 554 5.7.1 <%s>: Relay "
		    "access denied; from=<%s> helo=<%s>", s->host, s->ip,
		    r.path.addr, tx->mail.path.addr, s->helo);
		smtp_reply(s, "554 5.7.1 <%s>: Relay access denied",
		    r.path.addr);
		return -1;
	}
	smtp_tx_add_rcpt(tx, &r);
	smtp_reply(s, "250 2.1.5 Ok");
	return 0;
}

static int
cmd_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->arglen) {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
		return -1;
	}
	if (s->tx->data == TX_DATA_BDAT) {
		smtp_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return -1;
	}
	if (s->tx->nrcpts == 0) {
		smtp_reply(s, "503 5.5.1 Error: no valid recipients");
		return -1;
	}
	if (smtp_data_begin(s, TX_DATA_DATA) == -1)
		return -1;
	s->state = SESS_DATA;
	smtp_set_timeout(s, s->ctx->cfg->data_timeout);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	return 0;
}

/* "BDAT size [LAST]" (RFC 3030 2). */
static int
cmd_bdat(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const char *a = cmd->arg, *sp;
	size_t n = cmd->arglen;
	uint64_t size;
	int last = 0;

	sp = memchr(a, ' ', n);
	if (sp != NULL) {
		size_t rest = n - (size_t)(sp - a) - 1;
		if (rest != 4 || ascii_casecmp_n(sp + 1, "LAST", 4) != 0)
			sp = a;		/* force the syntax error below */
		else
			last = 1;
	}
	if (!s->esmtp || sp == a || parse_u64n(a, sp ? (size_t)(sp - a) : n,
	    0, UINT64_MAX / 2, &size) == -1) {
		/* The chunk's length is unknown: we can't stay in sync. */
		smtp_close(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		return -1;
	}
	smtp_bdat_start(s, size, last);
	return 0;
}

static int
cmd_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_tx_free(s);
	smtp_reply(s, "250 2.0.0 Ok");
	return 0;
}

static int
cmd_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, "250 2.0.0 Ok");
	return 0;
}

static int
cmd_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_close(s, "221 2.0.0 Bye");
	return 0;
}

static int
cmd_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
	    "RSET NOOP QUIT HELP VRFY");
	return 0;
}

/* RFC 5321 3.5.3: 252 never tells whether the mailbox exists. */
static int
cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->arglen == 0) {
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address");
		return -1;
	}
	smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
	return 0;
}

static int
cmd_expn(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, "502 5.5.1 Error: EXPN not available");
	return -1;
}
