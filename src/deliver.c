/*
 * deliver.c -- destinations and connections, in the delivery thread.
 *
 * Jobs (one message's recipients for one destination) wait in their
 * destination's queue.  A destination opens connections up to
 * dest_concurrency (and outbound_concurrency in all), each trying the
 * MX hosts in order until one answers, and then carries job after job
 * (connection reuse) until max_messages_per_connection or a short idle
 * time.  A destination that cannot be reached has its jobs deferred and
 * is left alone for a while; other destinations never wait for it.
 * Local recipients are written to Maildirs here, synchronously.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "dns.h"
#include "local.h"
#include "log.h"
#include "maildir.h"
#include "queue_int.h"
#include "smtp_client.h"
#include "util.h"

#define DEST_BUCKETS		1024
#define CONN_IDLE_SECS		2	/* keep an idle connection this long */
#define DEST_DEAD_SECS_MAX	60	/* leave an unreachable one alone */

struct conn;

struct dest {
	char		 key[300];
	struct route	 route;
	struct job	*head;		/* jobs waiting, FIFO */
	struct job	**tail;
	unsigned	 nready;
	unsigned	 nconns;	/* connecting or connected */
	unsigned	 nconnecting;
	struct conn	*idle;		/* connections waiting for a job */
	uint64_t	 dead_until;	/* usec; 0: alive */
	int		 dead_code;
	char		 dead_reply[SMTP_CLIENT_REPLY_MAX];
	struct dest	*hnext;
};

struct conn {
	struct dest		*dest;
	struct smtp_client	*client;
	struct job		*job;		/* in flight */
	struct dns_result	*hosts;
	unsigned		 hi, ai;	/* next host, address to try */
	int			 ready;
	unsigned		 port;		/* remote port */
	unsigned		 nsent;
	uint64_t		 start_usec;
	uint64_t		 setup_usec;
	struct event		*idle_ev;
	struct conn		*inext;		/* in dest->idle */
	int			 last_code;
	char			 last_reply[SMTP_CLIENT_REPLY_MAX];
	struct smtp_client_params params;
};

static struct {
	struct dest	*buckets[DEST_BUCKETS];
	struct dns	*dns;
	struct notify	*notify;	/* local deliveries coming back */
	SSL_CTX		*ssl_ctx;
	unsigned	 nconns;
} dl;

static void	dest_kick(struct dest *);
static void	conn_try_next(struct conn *);

static unsigned
dest_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % DEST_BUCKETS;
}

static struct dest *
dest_get(const struct route *r)
{
	unsigned h = dest_hash(r->key);
	struct dest *d;

	for (d = dl.buckets[h]; d != NULL; d = d->hnext)
		if (strcmp(d->key, r->key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	strlcpy(d->key, r->key, sizeof(d->key));
	d->route = *r;
	d->tail = &d->head;
	d->hnext = dl.buckets[h];
	dl.buckets[h] = d;
	return d;
}

static struct job *
dest_pop(struct dest *d)
{
	struct job *j = d->head;

	if (j == NULL)
		return NULL;
	d->head = j->next;
	if (d->head == NULL)
		d->tail = &d->head;
	j->next = NULL;
	d->nready--;
	return j;
}

/* Finish a job that never reached a server: every recipient gets code. */
static void
job_fail(struct job *j, int code, const char *reply)
{
	unsigned k;

	if (j->start_usec == 0)
		j->start_usec = now_wall_usec();
	for (k = 0; k < j->n; k++) {
		if (j->rcpts[k].code != 0)
			continue;
		j->rcpts[k].code = code;
		strlcpy(j->rcpts[k].reply, reply, sizeof(j->rcpts[k].reply));
	}
	queue_job_done(j);
}

/* --- local delivery --------------------------------------------------- */

static void
local_deliver_rcpt(struct job *j, unsigned k)
{
	struct smtp_client_rcpt *r = &j->rcpts[k];
	char path[4400], err[256], *prepend;
	int temporary = 0;

	if (local_maildir(queue_cfg, r->addr, path, sizeof(path)) == -1) {
		r->code = 550;
		snprintf(r->reply, sizeof(r->reply), "550 5.1.1 <%s>: no such "
		    "mailbox", r->addr);
		return;
	}
	prepend = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n",
	    j->cmsg.sender, r->addr);
	if (maildir_deliver(path, prepend, j->cmsg.fd, j->cmsg.off,
	    j->cmsg.len, err, sizeof(err), &temporary) == 0) {
		r->code = 250;
		snprintf(r->reply, sizeof(r->reply), "250 2.0.0 delivered to "
		    "maildir");
	} else {
		r->code = temporary ? 451 : 550;
		snprintf(r->reply, sizeof(r->reply), "%d %s maildir delivery "
		    "failed: %s", r->code, temporary ? "4.3.0" : "5.2.0", err);
	}
	free(prepend);
}

/* On a pool thread: Maildir writes and fsyncs must not stall the
 * delivery thread's connections and timers. */
static void
local_deliver_work(struct async_job *a)
{
	struct job *j = NOTIFY_CONTAINER(a, struct job, async);
	unsigned k;

	for (k = 0; k < j->n; k++)
		local_deliver_rcpt(j, k);
}

static void
local_deliver_done(struct notify_item *it)
{
	queue_job_done(NOTIFY_CONTAINER(it, struct job, async.done));
}

/* --- connections ------------------------------------------------------- */

/* Take the connection off its destination's idle list, if it is on it. */
static void
conn_unidle(struct conn *c)
{
	struct conn **pp;

	for (pp = &c->dest->idle; *pp != NULL; pp = &(*pp)->inext)
		if (*pp == c) {
			*pp = c->inext;
			break;
		}
}

static void
conn_free(struct conn *c)
{
	struct dest *d = c->dest;

	conn_unidle(c);
	if (c->idle_ev)
		event_free(c->idle_ev);
	free(c->hosts);
	free(c);
	d->nconns--;
	dl.nconns--;
}

static void
conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	/* Off the idle list first: a job must not reach a closing client. */
	conn_unidle(c);
	smtp_client_quit(c->client);	/* closed() frees c */
}

/* Give the connection its next job, or let it idle, or end it. */
static void
conn_next(struct conn *c)
{
	struct dest *d = c->dest;
	struct job *j;

	if (c->nsent >= queue_cfg->max_messages_per_connection) {
		smtp_client_quit(c->client);
		return;
	}
	if ((j = dest_pop(d)) == NULL) {
		c->inext = d->idle;
		d->idle = c;
		evtimer_add(c->idle_ev, &(struct timeval){ .tv_sec =
		    CONN_IDLE_SECS });
		return;
	}
	c->job = j;
	j->start_usec = now_wall_usec();
	j->setup_usec = c->nsent == 0 ? c->setup_usec : 0;
	strlcpy(j->relay, smtp_client_peer(c->client), sizeof(j->relay));
	smtp_client_send(c->client, &j->cmsg);
}

static void
conn_ready_cb(struct smtp_client *cl, void *arg)
{
	struct conn *c = arg;

	(void)cl;
	c->ready = 1;
	c->dest->nconnecting--;
	c->setup_usec = now_wall_usec() - c->start_usec;
	conn_next(c);
}

static void
conn_done_cb(struct smtp_client *cl, struct smtp_client_msg *msg, void *arg)
{
	struct conn *c = arg;
	struct job *j = c->job;

	(void)cl;
	(void)msg;
	c->job = NULL;
	c->nsent++;
	queue_job_done(j);
	conn_next(c);
}

/* No host of the destination answered: defer (or bounce) its jobs. */
static void
dest_fail(struct dest *d, int code, const char *reply)
{
	struct job *j;

	if (code < 500) {
		uint64_t secs = queue_cfg->retry_min < DEST_DEAD_SECS_MAX ?
		    queue_cfg->retry_min : DEST_DEAD_SECS_MAX;

		d->dead_until = now_wall_usec() + secs * 1000000;
		d->dead_code = code;
		strlcpy(d->dead_reply, reply, sizeof(d->dead_reply));
	}
	while ((j = dest_pop(d)) != NULL)
		job_fail(j, code, reply);
}

static void
conn_closed_cb(struct smtp_client *cl, int code, const char *reply, void *arg)
{
	struct conn *c = arg;
	struct dest *d = c->dest;

	(void)cl;
	c->client = NULL;
	if (!c->ready) {
		/* RFC 5321 5.1: try the next address, then the next MX. */
		c->last_code = code;
		if (reply[0] >= '2' && reply[0] <= '5')
			strlcpy(c->last_reply, reply, sizeof(c->last_reply));
		else
			snprintf(c->last_reply, sizeof(c->last_reply), "%d %s",
			    code, reply);
		log_info("%s: %s", d->key, reply);
		conn_try_next(c);
		return;
	}
	conn_free(c);
	dest_kick(d);
}

static const struct smtp_client_cbs conn_cbs = {
	.ready = conn_ready_cb,
	.done = conn_done_cb,
	.closed = conn_closed_cb,
};

static void
conn_give_up(struct conn *c)
{
	struct dest *d = c->dest;
	int code = c->last_code ? c->last_code : 451;
	char reply[SMTP_CLIENT_REPLY_MAX];

	strlcpy(reply, c->last_reply[0] ? c->last_reply :
	    "451 4.4.1 no server answered", sizeof(reply));
	/* A 5xx greeting is no verdict on the recipients (RFC 5321 3.1). */
	if (code >= 500 && c->hosts != NULL && c->hosts->status == DNS_OK)
		code = 451;
	d->nconnecting--;
	conn_free(c);
	dest_fail(d, code, reply);
}

static void
conn_try_next(struct conn *c)
{
	struct dns_result *h = c->hosts;
	struct sockaddr_storage ss;
	socklen_t sl;

	while (c->hi < h->nhosts && c->ai >= h->hosts[c->hi].naddrs) {
		c->hi++;
		c->ai = 0;
	}
	if (c->hi >= h->nhosts) {
		conn_give_up(c);
		return;
	}
	ss = h->hosts[c->hi].addrs[c->ai++];
	if (ss.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)c->port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)c->port);
		sl = sizeof(struct sockaddr_in);
	}
	c->params.peer_name = h->hosts[c->hi].name;
	c->client = smtp_client_connect(queue_base, (struct sockaddr *)&ss,
	    sl, &c->params, &conn_cbs, c);
}

static void
conn_dns_cb(const struct dns_result *res, void *arg)
{
	struct conn *c = arg;

	c->hosts = xmalloc(sizeof(*c->hosts));
	*c->hosts = *res;
	switch (res->status) {
	case DNS_OK:
		conn_try_next(c);
		return;
	case DNS_NULLMX:
		c->last_code = 556;
		snprintf(c->last_reply, sizeof(c->last_reply), "556 5.1.10 "
		    "recipient domain %s accepts no mail (null MX)",
		    c->dest->route.domain);
		break;
	case DNS_NOTFOUND:
		c->last_code = 550;
		snprintf(c->last_reply, sizeof(c->last_reply), "550 5.4.4 %s",
		    res->error);
		break;
	case DNS_TEMPFAIL:
		c->last_code = 451;
		snprintf(c->last_reply, sizeof(c->last_reply), "451 4.4.3 %s",
		    res->error);
		break;
	}
	conn_give_up(c);
}

/* An IP address (or address literal) needs no DNS: a one-host result. */
static int
conn_static_host(struct conn *c, const char *name)
{
	char ip[DNS_NAME_MAX];
	struct dns_result *r;
	struct sockaddr_in *s4;
	struct sockaddr_in6 *s6;
	size_t len = strlen(name);

	if (name[0] == '[' && len > 2 && name[len - 1] == ']') {
		name++;
		len -= 2;
		if (len > 5 && strncasecmp(name, "IPv6:", 5) == 0)
			name += 5, len -= 5;
	}
	if (len >= sizeof(ip))
		return 0;
	memcpy(ip, name, len);
	ip[len] = '\0';
	r = xcalloc(1, sizeof(*r));
	s4 = (struct sockaddr_in *)&r->hosts[0].addrs[0];
	s6 = (struct sockaddr_in6 *)&r->hosts[0].addrs[0];
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else {
		free(r);
		return 0;
	}
	r->status = DNS_OK;
	r->nhosts = 1;
	r->hosts[0].naddrs = 1;
	strlcpy(r->hosts[0].name, ip, sizeof(r->hosts[0].name));
	c->hosts = r;
	return 1;
}

/* "IP:PORT" or "[IPv6]:PORT" of lmtp_address. */
static int
conn_lmtp_host(struct conn *c, unsigned *port)
{
	char host[128];
	const char *a = queue_cfg->lmtp_address, *colon = strrchr(a, ':');
	uint64_t p;

	if (colon == NULL || (size_t)(colon - a) >= sizeof(host) ||
	    parse_u64(colon + 1, 1, 65535, &p) == -1)
		return 0;
	memcpy(host, a, (size_t)(colon - a));
	host[colon - a] = '\0';
	*port = (unsigned)p;
	return conn_static_host(c, host);
}

static void
conn_params(struct conn *c)
{
	const struct route *r = &c->dest->route;
	struct smtp_client_params *p = &c->params;

	p->lmtp = r->kind == ROUTE_LMTP;
	p->helo = queue_cfg->hostname;
	p->ssl_ctx = dl.ssl_ctx;
	p->tls = (enum smtp_client_tls)(r->via ? r->via->tls :
	    queue_cfg->outbound_tls);
	if (p->lmtp)
		p->tls = CLIENT_TLS_NONE;
	if (r->kind == ROUTE_RELAY && r->via->auth_user[0]) {
		p->auth_user = r->via->auth_user;
		p->auth_pass = r->via->auth_password;
	}
	p->connect_timeout = queue_cfg->connect_timeout;
	p->greeting_timeout = queue_cfg->smtp_greeting_timeout;
	p->command_timeout = queue_cfg->smtp_command_timeout;
	p->data_timeout = queue_cfg->smtp_data_timeout;
	p->done_timeout = queue_cfg->smtp_done_timeout;
}

static void
conn_new(struct dest *d)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	const struct route *r = &d->route;
	unsigned lport;

	c->dest = d;
	c->start_usec = now_wall_usec();
	c->idle_ev = evtimer_new(queue_base, conn_idle_cb, c);
	d->nconns++;
	d->nconnecting++;
	dl.nconns++;
	conn_params(c);
	c->port = r->kind == ROUTE_RELAY ? r->via->port : queue_cfg->smtp_port;
	if (r->kind == ROUTE_LMTP) {
		/* The configuration checked it; a failure here is ours. */
		if (!conn_lmtp_host(c, &lport))
			fatalx("lmtp_address %s", queue_cfg->lmtp_address);
		c->port = lport;
		conn_try_next(c);
	} else if (r->kind == ROUTE_RELAY) {
		if (conn_static_host(c, r->via->host))
			conn_try_next(c);
		else
			dns_resolve_host(dl.dns, r->via->host, conn_dns_cb, c);
	} else if (r->domain[0] == '[') {
		if (conn_static_host(c, r->domain))
			conn_try_next(c);
		else {
			c->last_code = 550;
			snprintf(c->last_reply, sizeof(c->last_reply),
			    "550 5.1.2 bad address literal %s", r->domain);
			conn_give_up(c);
		}
	} else
		dns_resolve_mx(dl.dns, r->domain, conn_dns_cb, c);
}

/* Hand waiting jobs to idle connections; open more if worth it. */
static void
dest_kick(struct dest *d)
{
	struct conn *c;
	struct job *j;

	if (d->dead_until && now_wall_usec() < d->dead_until) {
		while ((j = dest_pop(d)) != NULL)
			job_fail(j, d->dead_code, d->dead_reply);
		return;
	}
	d->dead_until = 0;
	while (d->head != NULL && (c = d->idle) != NULL) {
		d->idle = c->inext;
		evtimer_del(c->idle_ev);
		conn_next(c);
	}
	/* A connection being set up will take a job: open one per job
	 * beyond those, within the limits. */
	while (d->nready > d->nconnecting &&
	    d->nconns < queue_cfg->dest_concurrency &&
	    dl.nconns < queue_cfg->outbound_concurrency)
		conn_new(d);
}

void
deliver_job(struct job *j)
{
	struct dest *d;

	if (j->route.kind == ROUTE_LOCAL) {
		j->start_usec = now_wall_usec();
		strlcpy(j->relay, "local", sizeof(j->relay));
		j->async.work = local_deliver_work;
		j->async.done.fn = local_deliver_done;
		async_run(&j->async, dl.notify);
		return;
	}
	d = dest_get(&j->route);
	*d->tail = j;
	d->tail = &j->next;
	d->nready++;
	dest_kick(d);
}

void
deliver_init(void)
{
	char err[256];

	dl.dns = dns_new(queue_base, queue_cfg->dns_forwarder[0] ?
	    queue_cfg->dns_forwarder : NULL, (int)queue_cfg->outbound_ipv6,
	    err, sizeof(err));
	if (dl.dns == NULL)
		fatalx("dns: %s", err);
	dl.notify = notify_new(queue_base);
	if ((dl.ssl_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		fatalx("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(dl.ssl_ctx, TLS1_2_VERSION);
	if (queue_cfg->tls_ca_file[0]) {
		if (SSL_CTX_load_verify_locations(dl.ssl_ctx,
		    queue_cfg->tls_ca_file, NULL) != 1)
			fatalx("tls_ca_file %s: cannot load",
			    queue_cfg->tls_ca_file);
	} else
		SSL_CTX_set_default_verify_paths(dl.ssl_ctx);
}

void
deliver_free(void)
{
	dns_free(dl.dns);
	notify_free(dl.notify);
	SSL_CTX_free(dl.ssl_ctx);
}
