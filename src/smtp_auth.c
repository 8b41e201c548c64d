/*
 * smtp_auth.c -- the AUTH command (RFC 4954) with PLAIN (RFC 4616) and
 * LOGIN.  Offered only inside TLS unless the listener allows cleartext.
 * Password checks run on the async pool (a yescrypt hash costs
 * milliseconds: never on the event loop).  A failure is answered after
 * auth_fail_delay and counted against the client IP, which is banned
 * after auth_fail_max failures (limit.c).  Credentials are untrusted,
 * bounded, never logged, and wiped after use.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "async.h"
#include "auth.h"
#include "config.h"
#include "limit.h"
#include "log.h"
#include "policy.h"
#include "smtp_server.h"
#include "smtp_session.h"
#include "util.h"

struct smtp_auth_req {
	struct async_job	 job;
	struct smtp_session	*s;
	char			 user[AUTH_USER_MAX];
	char			 pass[AUTH_PASS_MAX];
	int			 result;	/* auth_check() */
};

int
smtp_auth_offered(const struct smtp_session *s)
{
	return s->ctx->cfg->passwd_file[0] != '\0' &&
	    (s->ssl != NULL || s->listener->auth_cleartext);
}

static void
smtp_auth_work(struct async_job *j)
{
	struct smtp_auth_req *r = (struct smtp_auth_req *)j;

	r->result = auth_check(r->user, r->pass);
	explicit_bzero(r->pass, sizeof(r->pass));
}

static void
smtp_auth_failed(struct smtp_session *s, const char *user)
{
	const struct config *cfg = s->ctx->cfg;
	char esc[128];

	log_warnx("%s[%s]: SASL %s authentication failed, sasl_username=%s",
	    s->host, s->ip, s->auth_mech,
	    log_escape(esc, sizeof(esc), user, strlen(user)));
	if (s->net == NULL && limit_auth_failed(s->ip, time(NULL))) {
		log_warnx("%s[%s]: banned for %us after repeated AUTH "
		    "failures", s->host, s->ip, cfg->auth_ban_time);
		smtp_close(s, "421 4.7.0 %s Error: too many failed logins",
		    cfg->hostname);
		return;
	}
	smtp_error(s);
	if (s->state == SESS_CLOSING)
		return;
	/* The delay costs a guesser time; it is the same for every
	 * wrong password, whether or not the user exists. */
	smtp_pause(s, cfg->auth_fail_delay, "535 5.7.8 Error: authentication "
	    "failed");
}

static void
smtp_auth_done(struct notify_item *it)
{
	struct smtp_auth_req *r = NOTIFY_CONTAINER(it, struct smtp_auth_req,
	    job.done);
	struct smtp_session *s = r->s;

	s->auth_req = NULL;
	s->auth_step = AUTH_STEP_NONE;
	s->state = SESS_CMD;
	if (s->dead) {
		free(r);
		smtp_session_free(s);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	if (r->result == 1) {
		char esc[128];

		strlcpy(s->auth_user, r->user, sizeof(s->auth_user));
		s->user = policy_user(s->ctx->cfg, s->auth_user);
		log_info("%s[%s]: sasl_method=%s, sasl_username=%s", s->host,
		    s->ip, s->auth_mech, log_escape(esc, sizeof(esc),
		    s->auth_user, strlen(s->auth_user)));
		smtp_reply(s, "235 2.7.0 Authentication successful");
		s->cmd_ok[SMTP_CMD_AUTH]++;
		free(r);
		smtp_resume(s);
		return;
	}
	smtp_auth_failed(s, r->user);
	free(r);
	if (s->state == SESS_CMD && !s->paused)
		smtp_resume(s);
}

/* Hand user/pass to the pool; the session waits, reading nothing. */
static void
smtp_auth_verify(struct smtp_session *s, const char *user, char *pass)
{
	struct smtp_auth_req *r = xcalloc(1, sizeof(*r));

	r->s = s;
	strlcpy(r->user, user, sizeof(r->user));
	strlcpy(r->pass, pass, sizeof(r->pass));
	explicit_bzero(pass, strlen(pass));
	r->job.work = smtp_auth_work;
	r->job.done.fn = smtp_auth_done;
	s->auth_req = r;
	s->auth_step = AUTH_STEP_CHECKING;
	s->state = SESS_WAIT;
	bufferevent_disable(s->bev, EV_READ);
	async_run(&r->job, s->ctx->notify);
}

static void
smtp_auth_syntax(struct smtp_session *s)
{
	s->auth_step = AUTH_STEP_NONE;
	smtp_reply(s, "501 5.5.2 Error: malformed authentication response");
	smtp_error(s);
}

static void
smtp_auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
	char user[AUTH_USER_MAX], pass[AUTH_PASS_MAX];

	if (auth_decode_plain(b64, len, user, sizeof(user), pass,
	    sizeof(pass)) == -1) {
		explicit_bzero(pass, sizeof(pass));
		smtp_auth_syntax(s);
		return;
	}
	smtp_auth_verify(s, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

static int
smtp_auth_refused(struct smtp_session *s)
{
	if (!smtp_auth_offered(s)) {
		if (s->ctx->cfg->passwd_file[0] && s->ssl == NULL)
			smtp_reply(s, "538 5.7.11 Error: encryption required "
			    "for authentication");
		else
			smtp_reply(s, "503 5.5.1 Error: authentication not "
			    "enabled");
	} else if (s->auth_user[0])
		smtp_reply(s, "503 5.5.1 Error: already authenticated");
	else if (s->tx != NULL)
		smtp_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
	else if (s->helo[0] == '\0')
		smtp_reply(s, "503 5.5.1 Error: send EHLO first");
	else
		return 0;
	return 1;
}

int
smtp_auth_cmd(struct smtp_session *s, const char *arg, size_t len)
{
	const char *sp = memchr(arg, ' ', len);
	size_t mlen = sp ? (size_t)(sp - arg) : len;
	const char *init = sp ? sp + 1 : NULL;
	size_t ilen = sp ? len - mlen - 1 : 0;

	if (smtp_auth_refused(s))
		return -1;
	if (s->net == NULL && limit_is_banned(s->ip, time(NULL))) {
		smtp_close(s, "421 4.7.0 %s Error: too many failed logins",
		    s->ctx->cfg->hostname);
		return -1;
	}
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		strlcpy(s->auth_mech, "PLAIN", sizeof(s->auth_mech));
		if (init == NULL) {
			s->auth_step = AUTH_STEP_PLAIN;
			smtp_reply(s, "334 ");
		} else		/* "=" is an empty response (RFC 4954 4) */
			smtp_auth_plain(s, init, ilen == 1 && *init == '=' ?
			    0 : ilen);
		return 0;
	}
	if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
		strlcpy(s->auth_mech, "LOGIN", sizeof(s->auth_mech));
		s->auth_step = AUTH_STEP_LOGIN_USER;
		if (init == NULL)
			smtp_reply(s, "334 VXNlcm5hbWU6");	/* Username: */
		else
			smtp_auth_line(s, init, ilen);
		return 0;
	}
	smtp_reply(s, "504 5.5.4 Error: unsupported authentication "
	    "mechanism");
	return -1;
}

/* A client response while an exchange is open. */
void
smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	char pass[AUTH_PASS_MAX];

	if (len == 1 && line[0] == '*') {
		s->auth_step = AUTH_STEP_NONE;
		smtp_reply(s, "501 5.0.0 Error: authentication aborted");
		smtp_error(s);
		return;
	}
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN:
		smtp_auth_plain(s, line, len);
		break;
	case AUTH_STEP_LOGIN_USER:
		if (auth_decode_b64(line, len, s->auth_login,
		    sizeof(s->auth_login)) == -1) {
			smtp_auth_syntax(s);
			return;
		}
		s->auth_step = AUTH_STEP_LOGIN_PASS;
		smtp_reply(s, "334 UGFzc3dvcmQ6");		/* Password: */
		break;
	case AUTH_STEP_LOGIN_PASS:
		if (auth_decode_b64(line, len, pass, sizeof(pass)) == -1) {
			explicit_bzero(pass, sizeof(pass));
			smtp_auth_syntax(s);
			return;
		}
		smtp_auth_verify(s, s->auth_login, pass);
		explicit_bzero(pass, sizeof(pass));
		break;
	default:
		break;
	}
}
