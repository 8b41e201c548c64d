/*
 * queue.c -- the queue manager.  One delivery thread owns every queued
 * message: it loads the spool at start, takes new messages from the
 * workers, splits recipients into jobs per destination (deliver.c),
 * records each outcome in the queue file before acting on it, retries
 * deferred recipients with exponential backoff, expires them after
 * queue_lifetime, and sends bounces, delay and success notices (RFC 3464)
 * from <>.  Nothing here trusts the queue file: spool_file.c checks it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "config.h"
#include "dsn.h"
#include "log.h"
#include "notify.h"
#include "queue.h"
#include "queue_int.h"
#include "spool.h"
#include "util.h"

/* Header octets scanned for Received: lines (loop detection). */
#define QUEUE_HDR_SCAN	(64 * 1024)

struct inbox_item {
	struct notify_item	 item;
	char			 id[SPOOL_ID_LEN + 1];
};

const struct config	*queue_cfg;
struct event_base	*queue_base;

static struct {
	pthread_t		 thread;
	struct notify		*notify;	/* new ids, our own commits */
	struct qmsg		*all;
	int			 running;
} q;

static void	queue_load(const char *id);
static void	queue_attempt(struct qmsg *);
static void	queue_settle(struct qmsg *);
static void	queue_retry_cb(evutil_socket_t, short, void *);

static double
usec_to_s(uint64_t us)
{
	return (double)us / 1e6;
}

static void
queue_msg_free(struct qmsg *m)
{
	size_t i;

	if (m->prev)
		m->prev->next = m->next;
	else
		q.all = m->next;
	if (m->next)
		m->next->prev = m->prev;
	if (m->fd != -1)
		close(m->fd);
	if (m->retry_ev)
		event_free(m->retry_ev);
	for (i = 0; i < m->env.nrcpts; i++)
		free(m->remote[i]);
	free(m->remote);
	free(m->rs);
	free(m->code);
	free(m->dsn_passed);
	spool_env_free(&m->env);
	free(m);
}

/* Count Received: header fields; a message with too many is looping
 * (RFC 5321 6.3). */
static unsigned
queue_count_received(struct qmsg *m)
{
	char *hdr = xmalloc(QUEUE_HDR_SCAN + 1);
	uint64_t want = m->env.msg_len < QUEUE_HDR_SCAN ? m->env.msg_len :
	    QUEUE_HDR_SCAN;
	ssize_t r = pread(m->fd, hdr, want, (off_t)m->env.msg_off);
	unsigned n = 0;
	char *p, *end;

	if (r <= 0) {
		free(hdr);
		return 0;
	}
	end = hdr + r;
	for (p = hdr; p < end; ) {
		char *nl = memchr(p, '\n', (size_t)(end - p));

		if (*p == '\r' || *p == '\n')
			break;		/* end of the header section */
		if (end - p >= 9 && strncasecmp(p, "Received:", 9) == 0)
			n++;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	free(hdr);
	return n;
}

static void
queue_load(const char *id)
{
	char err[256];
	struct qmsg *m = xcalloc(1, sizeof(*m));
	size_t i;

	/* Through the spool's directory descriptor: the unprivileged
	 * daemon need not be able to walk the path to spool_dir. */
	if ((m->fd = spool_queue_open(id)) == -1 ||
	    spool_env_read_fd(m->fd, &m->env, err, sizeof(err)) == -1) {
		log_warnx("%s: cannot load queue file: %s", id,
		    m->fd == -1 ? strerror(errno) : err);
		if (m->fd != -1)
			close(m->fd);
		free(m);
		return;
	}
	strlcpy(m->id, id, sizeof(m->id));
	/* A record torn by a crash would swallow the next one appended. */
	if (m->env.records_end < m->env.file_size &&
	    ftruncate(m->fd, (off_t)m->env.records_end) == -1)
		log_warn("%s: truncate a torn state record", id);
	m->rs = xcalloc(m->env.nrcpts, 1);
	m->remote = xcalloc(m->env.nrcpts, sizeof(char *));
	m->code = xcalloc(m->env.nrcpts, sizeof(int));
	m->dsn_passed = xcalloc(m->env.nrcpts, 1);
	for (i = 0; i < m->env.nrcpts; i++)
		m->rs[i] = m->env.rcpts[i].state == RCPT_DELIVERED ? RS_SENT :
		    m->env.rcpts[i].state == RCPT_FAILED ? RS_FAILED :
		    RS_PENDING;
	m->nreceived = queue_count_received(m);
	m->loaded_usec = now_wall_usec();
	m->retry_ev = evtimer_new(queue_base, queue_retry_cb, m);
	m->next = q.all;
	if (q.all)
		q.all->prev = m;
	q.all = m;
	queue_attempt(m);
}

static void
queue_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	queue_attempt(arg);
}

/* Fail every pending recipient at once with one reply. */
static void
queue_fail_pending(struct qmsg *m, int code, const char *reply)
{
	size_t i;

	for (i = 0; i < m->env.nrcpts; i++) {
		if (m->rs[i] != RS_PENDING && m->rs[i] != RS_DEFERRED)
			continue;
		m->rs[i] = RS_FAILED_NEW;
		m->code[i] = code;
		free(m->env.rcpts[i].reply);
		m->env.rcpts[i].reply = xstrdup(reply);
		log_info("%s: to=<%s>, relay=none, delay=%.2g, status=%s (%s)",
		    m->id, m->env.rcpts[i].addr,
		    usec_to_s(now_wall_usec() - m->env.arrival_usec),
		    code >= 500 ? "bounced" : "expired", reply);
	}
}

static struct job *
queue_job_new(struct qmsg *m, const struct route *r)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->msg = m;
	j->route = *r;
	j->idx = xcalloc(m->env.nrcpts, sizeof(*j->idx));
	j->rcpts = xcalloc(m->env.nrcpts, sizeof(*j->rcpts));
	j->queued_usec = now_wall_usec();
	j->cmsg.id = m->id;
	j->cmsg.sender = m->env.from;
	j->cmsg.fd = m->fd;
	j->cmsg.off = m->env.msg_off;
	j->cmsg.len = m->env.msg_len;
	j->cmsg.smtputf8 = m->env.smtputf8;
	j->cmsg.body = m->env.body;
	j->cmsg.ret = m->env.ret;
	j->cmsg.envid = m->env.envid;
	j->cmsg.rcpts = j->rcpts;
	return j;
}

static void
queue_job_add_rcpt(struct job *j, size_t i)
{
	struct spool_rcpt *r = &j->msg->env.rcpts[i];

	j->idx[j->n] = (unsigned)i;
	j->rcpts[j->n].addr = r->addr;
	j->rcpts[j->n].notify = r->notify;
	j->rcpts[j->n].orcpt = r->orcpt;
	j->n++;
	j->cmsg.nrcpts = j->n;
	j->msg->rs[i] = RS_BUSY;
}

/* Group the pending recipients by destination, one job each. */
static void
queue_make_jobs(struct qmsg *m)
{
	struct job *jobs = NULL, *j;
	struct route r;
	size_t i;

	for (i = 0; i < m->env.nrcpts; i++) {
		if (m->rs[i] != RS_PENDING && m->rs[i] != RS_DEFERRED)
			continue;
		route_lookup(queue_cfg, m->env.rcpts[i].addr, &r);
		for (j = jobs; j != NULL; j = j->next)
			if (strcmp(j->route.key, r.key) == 0)
				break;
		if (j == NULL) {
			j = queue_job_new(m, &r);
			j->next = jobs;
			jobs = j;
		}
		queue_job_add_rcpt(j, i);
	}
	while ((j = jobs) != NULL) {
		jobs = j->next;
		j->next = NULL;
		m->jobs++;
		deliver_job(j);
	}
}

static void
queue_attempt(struct qmsg *m)
{
	char reply[256];

	if (m->fd == -1 && (m->fd = spool_queue_open(m->id)) == -1) {
		log_warn("%s: open", m->id);
		evtimer_add(m->retry_ev, &(struct timeval){ .tv_sec =
		    queue_cfg->retry_min });
		return;
	}
	m->attempts++;
	if (m->nreceived > queue_cfg->max_received) {
		snprintf(reply, sizeof(reply), "554 5.4.6 mail forwarding loop"
		    " (%u Received: headers)", m->nreceived);
		queue_fail_pending(m, 554, reply);
	}
	queue_make_jobs(m);
	if (m->jobs == 0)
		queue_settle(m);
}

/* The enhanced status code in a reply, or one from its class. */
static void
queue_status(int code, const char *reply, char *dst, size_t len)
{
	const char *p = reply;
	size_t n = 0;

	while (*p && *p != ' ')
		p++;
	while (*p == ' ')
		p++;
	while (p[n] && (isdigit((unsigned char)p[n]) || p[n] == '.'))
		n++;
	if (n >= 5 && n < len && code >= 200 && code < 600 &&
	    p[0] == '0' + code / 100 && p[1] == '.') {
		memcpy(dst, p, n);
		dst[n] = '\0';
		return;
	}
	snprintf(dst, len, "%d.0.0", code >= 200 && code < 600 ?
	    code / 100 : 4);
}

static void
queue_log_rcpt(struct job *j, unsigned k, const char *status)
{
	struct qmsg *m = j->msg;
	uint64_t now = now_wall_usec();
	char dsn[16];
	uint64_t a = m->loaded_usec > m->env.arrival_usec ?
	    m->loaded_usec - m->env.arrival_usec : 0;
	uint64_t b = j->start_usec > j->queued_usec ?
	    j->start_usec - j->queued_usec : 0;
	uint64_t d = now > j->start_usec ? now - j->start_usec : 0;

	queue_status(j->rcpts[k].code, j->rcpts[k].reply, dsn, sizeof(dsn));
	log_info("%s: to=<%s>, relay=%s, delay=%.2f, delays=%.2f/%.2f/%.2f/"
	    "%.2f, dsn=%s, status=%s (%s)", m->id, j->rcpts[k].addr,
	    j->relay[0] ? j->relay : "none",
	    usec_to_s(now - m->env.arrival_usec), usec_to_s(a), usec_to_s(b),
	    usec_to_s(j->setup_usec), usec_to_s(d), dsn, status,
	    j->rcpts[k].reply);
}

void
queue_job_done(struct job *j)
{
	struct qmsg *m = j->msg;
	struct buf rec;
	unsigned k;

	buf_init(&rec);
	for (k = 0; k < j->n; k++) {
		unsigned i = j->idx[k];
		int code = j->rcpts[k].code;
		const char *reply = j->rcpts[k].reply[0] ? j->rcpts[k].reply :
		    "451 4.3.0 delivery not attempted";

		m->code[i] = code;
		free(m->env.rcpts[i].reply);
		m->env.rcpts[i].reply = xstrdup(reply);
		free(m->remote[i]);
		/* Remote-MTA is a host name: "mx.example" of "mx.example[ip]:25". */
		m->remote[i] = j->relay[0] && strcmp(j->relay, "local") != 0 ?
		    xstrndup(j->relay, strcspn(j->relay, "[")) : NULL;
		if (code >= 200 && code < 300) {
			m->rs[i] = RS_SENT;
			m->dsn_passed[i] = (unsigned char)j->cmsg.dsn_passed;
			buf_appendf(&rec, "state %u delivered %lld %s\n", i,
			    (long long)time(NULL), reply);
			queue_log_rcpt(j, k, "sent");
		} else if (code >= 500 && code < 600) {
			m->rs[i] = RS_FAILED_NEW;
			queue_log_rcpt(j, k, "bounced");
		} else {
			m->rs[i] = RS_DEFERRED;
			buf_appendf(&rec, "state %u pending %lld %s\n", i,
			    (long long)time(NULL), reply);
			queue_log_rcpt(j, k, "deferred");
		}
	}
	if (spool_append(m->fd, &rec) == -1)
		log_warn("%s: append state", m->id);
	buf_free(&rec);
	free(j->idx);
	free(j->rcpts);
	free(j);
	if (--m->jobs == 0)
		queue_settle(m);
}

/* Does this recipient want a notice of kind (RFC 3461 4.1)? */
static int
queue_wants_notice(const struct qmsg *m, size_t i, enum dsn_kind kind)
{
	const char *n = m->env.rcpts[i].notify;

	if (m->env.from[0] == '\0')
		return 0;		/* never notify <> (RFC 5321 6.1) */
	if (n == NULL)			/* default: failures and delays */
		return kind != DSN_SUCCESS;
	return strstr(n, kind == DSN_FAILURE ? "FAILURE" :
	    kind == DSN_DELAY ? "DELAY" : "SUCCESS") != NULL;
}

/* The envelope of a notice: from <>, to the original sender. */
static void
queue_notice_env(const char *id, const char *rcpt, struct buf *env)
{
	uint64_t now = now_wall_usec();

	buf_appendf(env, "id %s\narrival %" PRIu64 ".%06" PRIu64 "\n"
	    "client 127.0.0.1\nhelo %s\nproto LOCAL\nfrom \nrcpt %s\n\n", id,
	    now / 1000000, now % 1000000, queue_cfg->hostname, rcpt);
}

/* Read the original message, or its first max octets, for a notice. */
static char *
queue_read_msg(struct qmsg *m, size_t max, size_t *len)
{
	size_t want = m->env.msg_len < max ? (size_t)m->env.msg_len : max;
	char *p = xmalloc(want + 1);
	ssize_t r = pread(m->fd, p, want, (off_t)m->env.msg_off);

	*len = r > 0 ? (size_t)r : 0;
	return p;
}

struct notice_ctx {
	struct qmsg	*msg;
	enum dsn_kind	 kind;
	char		 id[SPOOL_ID_LEN + 1];
};

static void	queue_notice_done(struct spool_msg *, void *);
static void	queue_finish(struct qmsg *);

/* The notice's rows: recipients in state `want` that asked for it.
 * status[] holds each row's status text.  Returns the row count. */
static size_t
queue_notice_rows(struct qmsg *m, enum dsn_kind kind, int want,
    struct dsn_rcpt *dr, char (*status)[16])
{
	size_t i, n = 0;

	for (i = 0; i < m->env.nrcpts; i++) {
		if (m->rs[i] != want || !queue_wants_notice(m, i, kind) ||
		    (kind == DSN_SUCCESS && m->dsn_passed[i]))
			continue;
		queue_status(m->code[i] ? m->code[i] : 450,
		    m->env.rcpts[i].reply ? m->env.rcpts[i].reply : "",
		    status[n], sizeof(status[n]));
		dr[n].addr = m->env.rcpts[i].addr;
		dr[n].orcpt = m->env.rcpts[i].orcpt;
		dr[n].status = kind == DSN_SUCCESS ? "2.0.0" : status[n];
		/* RFC 3461 5.2.2: handed to a server that knows no DSN. */
		if (kind == DSN_SUCCESS && m->remote[i] != NULL)
			dr[n].action = "relayed";
		dr[n].remote_mta = m->remote[i];
		dr[n].diagnostic = m->env.rcpts[i].reply;
		dr[n].last_attempt = time(NULL);
		n++;
	}
	return n;
}

/* Everything about the message the notice reports on. */
static void
queue_notice_info(struct qmsg *m, enum dsn_kind kind, struct dsn_info *di)
{
	memset(di, 0, sizeof(*di));
	di->kind = kind;
	di->reporting_mta = queue_cfg->hostname;
	di->queue_id = m->id;
	di->sender = m->env.from;
	di->envid = m->env.envid;
	di->arrival = (time_t)(m->env.arrival_usec / 1000000);
	di->now = time(NULL);
	di->retry_until = di->arrival + (time_t)queue_cfg->queue_lifetime;
	di->ret_hdrs = kind != DSN_FAILURE ||
	    (m->env.ret && strcmp(m->env.ret, "HDRS") == 0);
	di->max_returned = (size_t)queue_cfg->bounce_return_max;
}

/* Spool the notice and commit it; queue_notice_done() follows. */
static int
queue_notice_spool(struct qmsg *m, enum dsn_kind kind,
    const struct dsn_info *di)
{
	struct notice_ctx *nc = xcalloc(1, sizeof(*nc));
	struct spool_msg *sm;
	struct buf env, body;
	int r = 1;

	nc->msg = m;
	nc->kind = kind;
	spool_new_id(nc->id);
	buf_init(&env);
	buf_init(&body);
	queue_notice_env(nc->id, m->env.from, &env);
	dsn_build(di, &body);
	sm = spool_msg_new(nc->id, &env);
	if (spool_msg_finish(sm, &body) == -1) {
		log_warnx("%s: cannot queue notice: %s", m->id,
		    strerror(sm->error));
		spool_msg_abort(sm);
		free(nc);
		r = -1;
	} else
		spool_msg_commit(sm, q.notify, queue_notice_done, nc);
	buf_free(&env);
	buf_free(&body);
	return r;
}

/*
 * Queue a notice of kind for the recipients in state `want` (RS_*) that
 * asked for one.  Returns 1 if a notice is on its way
 * (queue_notice_done() follows), 0 if none was needed, -1 on error.
 */
static int
queue_notice(struct qmsg *m, enum dsn_kind kind, int want)
{
	struct dsn_rcpt *dr = xcalloc(m->env.nrcpts, sizeof(*dr));
	char (*status)[16] = xcalloc(m->env.nrcpts, sizeof(*status));
	struct dsn_info di;
	size_t mlen;
	char *orig;
	int r = 0;

	di.nrcpts = queue_notice_rows(m, kind, want, dr, status);
	if (di.nrcpts > 0) {
		size_t n = di.nrcpts;

		queue_notice_info(m, kind, &di);
		orig = queue_read_msg(m, di.ret_hdrs ? QUEUE_HDR_SCAN :
		    di.max_returned + 1, &mlen);
		di.msg = orig;
		di.msg_len = mlen;
		di.rcpts = dr;
		di.nrcpts = n;
		r = queue_notice_spool(m, kind, &di);
		free(orig);
	}
	free(dr);
	free(status);
	return r;
}

static const char *
queue_notice_name(enum dsn_kind k)
{
	return k == DSN_FAILURE ? "non-delivery" : k == DSN_DELAY ?
	    "delay" : "success";
}

static void
queue_notice_done(struct spool_msg *sm, void *arg)
{
	struct notice_ctx *nc = arg;
	struct qmsg *m = nc->msg;
	enum dsn_kind kind = nc->kind;
	struct buf rec;
	size_t i;

	if (sm->error) {
		log_warnx("%s: notice not queued: %s", m->id,
		    strerror(sm->error));
		spool_msg_abort(sm);
	} else {
		log_info("%s: sender %s notification: %s", m->id,
		    queue_notice_name(nc->kind), nc->id);
		spool_msg_free(sm);
		queue_load(nc->id);
	}
	buf_init(&rec);
	if (nc->kind == DSN_DELAY)
		buf_appendf(&rec, "notice delay %lld\n", (long long)time(NULL));
	else if (nc->kind == DSN_FAILURE) {
		/* Failed recipients are final only once the bounce is
		 * queued; after a crash before this they are retried. */
		for (i = 0; i < m->env.nrcpts; i++)
			if (m->rs[i] == RS_FAILED_NEW) {
				m->rs[i] = RS_FAILED;
				buf_appendf(&rec, "state %zu failed %lld %s\n",
				    i, (long long)time(NULL),
				    m->env.rcpts[i].reply);
			}
	}
	spool_append(m->fd, &rec);
	spool_sync_soon();
	buf_free(&rec);
	if (kind == DSN_DELAY)
		m->env.delay_notified = 1;
	free(nc);
	if (kind == DSN_SUCCESS)
		queue_finish(m);
	else
		queue_settle(m);
}

static int
queue_has(const struct qmsg *m, int rs1, int rs2)
{
	size_t i;

	for (i = 0; i < m->env.nrcpts; i++)
		if (m->rs[i] == rs1 || m->rs[i] == rs2)
			return 1;
	return 0;
}

/* Record failures that need no bounce (NOTIFY, or the sender is <>). */
static void
queue_record_failed(struct qmsg *m)
{
	struct buf rec;
	size_t i;

	buf_init(&rec);
	for (i = 0; i < m->env.nrcpts; i++)
		if (m->rs[i] == RS_FAILED_NEW) {
			m->rs[i] = RS_FAILED;
			buf_appendf(&rec, "state %zu failed %lld %s\n", i,
			    (long long)time(NULL), m->env.rcpts[i].reply);
		}
	spool_append(m->fd, &rec);
	buf_free(&rec);
}

/* Retry in retry_min * 2^(attempts-1), at most retry_max, and never
 * past the end of the queue lifetime. */
static void
queue_schedule(struct qmsg *m)
{
	uint64_t delay = queue_cfg->retry_min, age, left;
	unsigned i;

	for (i = 1; i < m->attempts && delay < queue_cfg->retry_max; i++)
		delay *= 2;
	if (delay > queue_cfg->retry_max)
		delay = queue_cfg->retry_max;
	age = (now_wall_usec() - m->env.arrival_usec) / 1000000;
	left = age < queue_cfg->queue_lifetime ?
	    queue_cfg->queue_lifetime - age : 0;
	if (delay > left)
		delay = left ? left : 1;
	/* Idle messages hold no descriptor: there may be many. */
	close(m->fd);
	m->fd = -1;
	evtimer_add(m->retry_ev, &(struct timeval){ .tv_sec = (time_t)delay });
}

/* Expire or keep waiting: what deferred recipients need after a round. */
static int
queue_settle_deferred(struct qmsg *m)
{
	uint64_t age = (now_wall_usec() - m->env.arrival_usec) / 1000000;
	size_t i;

	if (age >= queue_cfg->queue_lifetime) {
		for (i = 0; i < m->env.nrcpts; i++)
			if (m->rs[i] == RS_DEFERRED || m->rs[i] == RS_PENDING) {
				m->rs[i] = RS_FAILED_NEW;
				log_info("%s: to=<%s>, status=expired, returned "
				    "to sender (%s)", m->id,
				    m->env.rcpts[i].addr,
				    m->env.rcpts[i].reply ?
				    m->env.rcpts[i].reply : "");
			}
		return 0;	/* settle again: they bounce now */
	}
	if (queue_cfg->delay_warning && !m->env.delay_notified &&
	    age >= queue_cfg->delay_warning) {
		m->env.delay_notified = 1;	/* once, even if unwanted */
		if (queue_notice(m, DSN_DELAY, RS_DEFERRED) == 1)
			return 1;
	}
	queue_schedule(m);
	return 1;
}

/* All jobs of a round are done: notices, retries, or removal. */
static void
queue_settle(struct qmsg *m)
{
	int r;

	if (queue_has(m, RS_FAILED_NEW, -1)) {
		r = queue_notice(m, DSN_FAILURE, RS_FAILED_NEW);
		if (r == 1)
			return;		/* queue_notice_done() goes on */
		if (r == -1) {
			queue_schedule(m);	/* bounce again later */
			return;
		}
		queue_record_failed(m);
	}
	if (queue_has(m, RS_DEFERRED, RS_PENDING)) {
		if (queue_settle_deferred(m))
			return;
		queue_settle(m);
		return;
	}
	if (queue_notice(m, DSN_SUCCESS, RS_SENT) == 1)
		return;
	queue_finish(m);
}

static void
queue_finish(struct qmsg *m)
{
	if (spool_queue_remove(m->id) == -1)
		log_warn("%s: remove", m->id);
	else
		log_info("%s: removed", m->id);
	queue_msg_free(m);
}

static void
queue_inbox_cb(struct notify_item *it)
{
	struct inbox_item *in = NOTIFY_CONTAINER(it, struct inbox_item, item);

	queue_load(in->id);
	free(in);
}

void
queue_submit(const char *id)
{
	struct inbox_item *in = xcalloc(1, sizeof(*in));

	strlcpy(in->id, id, sizeof(in->id));
	in->item.fn = queue_inbox_cb;
	notify_post(q.notify, &in->item);
}

static void *
queue_main(void *arg)
{
	(void)arg;
	event_base_dispatch(queue_base);
	return NULL;
}

static void
queue_scan_cb(const char *id, void *arg)
{
	(void)arg;
	queue_submit(id);
}

void
queue_start(const struct config *cfg)
{
	int r;

	queue_cfg = cfg;
	if ((queue_base = event_base_new()) == NULL)
		fatalx("queue: event_base_new");
	q.notify = notify_new(queue_base);
	deliver_init();
	/* Before the workers run, so no message is both found and sent. */
	spool_queue_scan(queue_scan_cb, NULL);
	if ((r = pthread_create(&q.thread, NULL, queue_main, NULL)) != 0) {
		errno = r;
		fatal("queue: pthread_create");
	}
	q.running = 1;
}

void
queue_stop(void)
{
	if (!q.running)
		return;
	event_base_loopexit(queue_base, NULL);
	pthread_join(q.thread, NULL);
	q.running = 0;
}
