/*
 * dns.c -- asynchronous DNS for delivery: the mail exchangers of a domain
 * (RFC 5321 section 5.1, RFC 7505 null MX) and the addresses of a single
 * host.  libunbound resolves in a background thread; its pipe is watched
 * on the delivery worker's libevent loop and every answer is handled
 * there.  The domain (from a recipient) and every answer are untrusted:
 * names are checked to be letters, digits, '-' and '_' and record data is
 * bounds-checked before use.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "dns.h"
#include "log.h"
#include "util.h"

#define DNS_MX_MAX	64	/* MX records looked at per domain */
#define DNS_QUERIES_MAX	(1 + 2 * DNS_HOSTS_MAX)	/* MX, then A+AAAA each */
#define DNS_TIMEOUT_SEC	60	/* a whole request, every lookup in it */
#define DNS_TEXT_MAX	253	/* RFC 1035 section 2.3.4, no final dot */
#define DNS_LABEL_MAX	63

#define RR_A		1
#define RR_MX		15
#define RR_AAAA		28
#define RR_CLASS_IN	1
#define RCODE_NXDOMAIN	3

enum dns_phase {
	DNS_PHASE_MX,
	DNS_PHASE_ADDR,
};

struct dns {
	struct event_base	*base;
	struct ub_ctx		*ub;
	struct event		*ev;		/* ub_fd() readable */
	int			 ipv6;
	TAILQ_HEAD(, dns_req)	 reqs;		/* not yet delivered */
};

/* One libunbound query; lives in its request, so never outlives it. */
struct dns_query {
	struct dns_req		*req;
	int			 id;		/* for ub_cancel() */
	int			 active;
	int			 rrtype;
	unsigned		 host;		/* index in res.hosts */
};

/* The addresses of one exchanger as they arrive, per family. */
struct dns_target {
	unsigned		 n4;
	unsigned		 n6;
	uint8_t			 a4[DNS_ADDRS_MAX][4];
	uint8_t			 a6[DNS_ADDRS_MAX][16];
	int			 tempfail;	/* a lookup of it failed */
};

struct dns_mx {
	unsigned		 pref;
	char			 name[DNS_NAME_MAX];	/* "" is the root */
};

/* One dns_resolve_*() call, owned by its struct dns until delivered. */
struct dns_req {
	TAILQ_ENTRY(dns_req)	 entry;
	struct dns		*dns;
	dns_cb			 cb;
	void			*arg;
	struct event		*ev;		/* deadline, then delivery */
	enum dns_phase		 phase;
	int			 done;		/* res is final */
	unsigned		 npending;
	char			 name[DNS_NAME_MAX];	/* normalised */
	char			 temperr[256];
	struct dns_query	 q[DNS_QUERIES_MAX];
	struct dns_target	 t[DNS_HOSTS_MAX];
	struct dns_result	 res;
};

static void	 dns_errorf(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	 dns_configure(struct dns *, const char *, char *, size_t);
static void	 dns_fd_cb(evutil_socket_t, short, void *);
static int	 dns_is_name_char(unsigned char);
static int	 dns_normalise(char *, size_t, const char *);
static struct dns_req *dns_req_new(struct dns *, const char *, dns_cb,
		    void *);
static void	 dns_req_done(struct dns_req *);
static void	 dns_req_cb(evutil_socket_t, short, void *);
static void	 dns_req_timeout(struct dns_req *);
static void	 dns_req_cancel(struct dns_req *);
static void	 dns_req_free(struct dns_req *);
static int	 dns_query_start(struct dns_req *, int, const char *,
		    unsigned);
static void	 dns_ub_cb(void *, int, struct ub_result *);
static const char *dns_type_name(int);
static enum dns_status dns_classify(struct dns_req *, const char *, int,
		    int, struct ub_result *);
static void	 dns_mx_answer(struct dns_req *, int, struct ub_result *);
static int	 dns_wire_name(const uint8_t *, size_t, char *, size_t);
static int	 dns_mx_rdata(const char *, int, struct dns_mx *);
static void	 dns_mx_parse(struct dns_req *, struct ub_result *);
static void	 dns_mx_order(const struct dns_mx *, unsigned, unsigned *);
static void	 dns_mx_keep(struct dns_req *, const struct dns_mx *,
		    const unsigned *, unsigned);
static void	 dns_addr_start(struct dns_req *);
static void	 dns_addr_answer(struct dns_req *, struct dns_query *, int,
		    struct ub_result *);
static void	 dns_addr_store(struct dns_target *, int, struct ub_result *);
static void	 dns_addr_fill(struct dns_host *, const struct dns_target *);
static void	 dns_addr_result(struct dns_req *);

/* Reasons may be cut short: a 253-byte name fills most of error[]. */
static void
dns_errorf(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(dst, len, fmt, ap);
	va_end(ap);
}

struct dns *
dns_new(struct event_base *base, const char *forwarder, int ipv6, char *err,
    size_t errlen)
{
	struct dns *dns;

	dns = xcalloc(1, sizeof(*dns));
	dns->base = base;
	dns->ipv6 = ipv6;
	TAILQ_INIT(&dns->reqs);
	if ((dns->ub = ub_ctx_create()) == NULL) {
		dns_errorf(err, errlen, "dns: cannot create a resolver");
		goto fail;
	}
	if (dns_configure(dns, forwarder, err, errlen) == -1)
		goto fail;
	dns->ev = event_new(base, ub_fd(dns->ub), EV_READ | EV_PERSIST,
	    dns_fd_cb, dns);
	if (dns->ev == NULL || event_add(dns->ev, NULL) == -1) {
		dns_errorf(err, errlen, "dns: cannot watch the resolver");
		goto fail;
	}
	return dns;
fail:
	dns_free(dns);
	return NULL;
}

static int
dns_configure(struct dns *dns, const char *forwarder, char *err,
    size_t errlen)
{
	int r;

	/* A thread, not a fork: the worker may be sandboxed later. */
	if ((r = ub_ctx_async(dns->ub, 1)) != 0) {
		dns_errorf(err, errlen, "dns: async: %s", ub_strerror(r));
		return -1;
	}
	/* A forwarder (or resolv.conf server) on 127.0.0.1 must be used. */
	r = ub_ctx_set_option(dns->ub, "do-not-query-localhost:", "no");
	if (r != 0) {
		dns_errorf(err, errlen, "dns: options: %s", ub_strerror(r));
		return -1;
	}
	if (forwarder != NULL) {
		if ((r = ub_ctx_set_fwd(dns->ub, forwarder)) != 0) {
			dns_errorf(err, errlen, "dns: forwarder \"%s\": %s",
			    forwarder, ub_strerror(r));
			return -1;
		}
		/*
		 * Every query goes to the forwarder, names under "test."
		 * too: RFC 6761 section 6.2 lets a resolver serve them,
		 * libunbound answers NXDOMAIN itself by default.  Last, as
		 * it finalizes the context.
		 */
		if ((r = ub_ctx_zone_remove(dns->ub, "test.")) != 0) {
			dns_errorf(err, errlen, "dns: zone test.: %s",
			    ub_strerror(r));
			return -1;
		}
		return 0;
	}
	if ((r = ub_ctx_resolvconf(dns->ub, NULL)) != 0) {
		dns_errorf(err, errlen, "dns: /etc/resolv.conf: %s",
		    ub_strerror(r));
		return -1;
	}
	/* Not fatal: a host without /etc/hosts still resolves. */
	if ((r = ub_ctx_hosts(dns->ub, "/etc/hosts")) != 0)
		log_warnx("dns: /etc/hosts: %s", ub_strerror(r));
	return 0;
}

/*
 * Cancel what is outstanding without calling back, and free it all.
 * Safe from inside a dns_cb: a request being delivered is already off
 * the list.
 */
void
dns_free(struct dns *dns)
{
	struct dns_req *req;

	if (dns == NULL)
		return;
	while ((req = TAILQ_FIRST(&dns->reqs)) != NULL) {
		TAILQ_REMOVE(&dns->reqs, req, entry);
		dns_req_cancel(req);
		dns_req_free(req);
	}
	if (dns->ev != NULL)
		event_free(dns->ev);
	if (dns->ub != NULL)
		ub_ctx_delete(dns->ub);
	free(dns);
}

static void
dns_fd_cb(evutil_socket_t fd, short events, void *arg)
{
	struct dns *dns = arg;
	int r;

	(void)fd;
	(void)events;
	if ((r = ub_process(dns->ub)) != 0)
		log_warnx("dns: process: %s", ub_strerror(r));
}

void
dns_resolve_mx(struct dns *dns, const char *domain, dns_cb cb, void *arg)
{
	struct dns_req *req;

	if ((req = dns_req_new(dns, domain, cb, arg)) == NULL)
		return;
	if (dns_query_start(req, RR_MX, req->name, 0) == -1) {
		strlcpy(req->res.error, req->temperr, sizeof(req->res.error));
		dns_req_done(req);
	}
}

void
dns_resolve_host(struct dns *dns, const char *host, dns_cb cb, void *arg)
{
	struct dns_req *req;

	if ((req = dns_req_new(dns, host, cb, arg)) == NULL)
		return;
	req->res.nhosts = 1;
	strlcpy(req->res.hosts[0].name, req->name,
	    sizeof(req->res.hosts[0].name));
	dns_addr_start(req);
}

static int
dns_is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * Lower-case src into dst without its final dot.  Only LDH labels (and
 * '_', seen in the wild) are accepted: they need no escaping for
 * libunbound or in logs.  XXX: U-labels (RFC 6531) must arrive as
 * A-labels.
 */
static int
dns_normalise(char *dst, size_t dstlen, const char *src)
{
	size_t i, n, label = 0;

	n = strlen(src);
	if (n > 0 && src[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_TEXT_MAX || n >= dstlen)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (!dns_is_name_char(c) || ++label > DNS_LABEL_MAX)
			return -1;
		dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') :
		    (char)c;
	}
	dst[n] = '\0';
	return label == 0 ? -1 : 0;
}

/* A new request; NULL if it is already finished (bad name). */
static struct dns_req *
dns_req_new(struct dns *dns, const char *name, dns_cb cb, void *arg)
{
	struct dns_req *req;
	struct timeval tv = { DNS_TIMEOUT_SEC, 0 };
	char esc[128];

	req = xcalloc(1, sizeof(*req));
	req->dns = dns;
	req->cb = cb;
	req->arg = arg;
	req->res.status = DNS_TEMPFAIL;
	if ((req->ev = evtimer_new(dns->base, dns_req_cb, req)) == NULL)
		fatalx("dns: evtimer_new");
	TAILQ_INSERT_TAIL(&dns->reqs, req, entry);
	if (evtimer_add(req->ev, &tv) == -1)
		fatalx("dns: evtimer_add");
	if (dns_normalise(req->name, sizeof(req->name), name) == -1) {
		log_escape(esc, sizeof(esc), name, strlen(name));
		dns_errorf(req->res.error, sizeof(req->res.error),
		    "Malformed domain name: %s", esc);
		req->res.status = DNS_NOTFOUND;
		dns_req_done(req);
		return NULL;
	}
	return req;
}

/*
 * res is final: deliver it from the loop, outside ub_process(), so the
 * callback may start lookups or even dns_free().
 */
static void
dns_req_done(struct dns_req *req)
{
	struct timeval tv = { 0, 0 };

	req->done = 1;
	evtimer_del(req->ev);
	if (evtimer_add(req->ev, &tv) == -1)
		fatalx("dns: evtimer_add");
}

static void
dns_req_cb(evutil_socket_t fd, short events, void *arg)
{
	struct dns_req *req = arg;
	const struct dns_result *res = &req->res;

	(void)fd;
	(void)events;
	if (!req->done)
		dns_req_timeout(req);
	TAILQ_REMOVE(&req->dns->reqs, req, entry);
	log_debug("dns name=%s status=%d implicit=%d hosts=%u error=\"%s\"",
	    req->name, (int)res->status, res->implicit, res->nhosts,
	    res->error);
	req->cb(res, req->arg);
	dns_req_free(req);
}

/* Out of time: what has an address so far is used, the rest deferred. */
static void
dns_req_timeout(struct dns_req *req)
{
	dns_req_cancel(req);
	dns_errorf(req->temperr, sizeof(req->temperr),
	    "Host or domain name not found. Name service error for "
	    "name=%s: timeout after %d seconds", req->name, DNS_TIMEOUT_SEC);
	if (req->phase == DNS_PHASE_ADDR) {
		dns_addr_result(req);
		return;
	}
	req->res.status = DNS_TEMPFAIL;
	strlcpy(req->res.error, req->temperr, sizeof(req->res.error));
}

/* Stop every lookup still running; their callbacks never run. */
static void
dns_req_cancel(struct dns_req *req)
{
	struct dns_query *q;
	unsigned i;

	for (i = 0; i < nitems(req->q); i++) {
		q = &req->q[i];
		if (!q->active)
			continue;
		(void)ub_cancel(req->dns->ub, q->id);
		q->active = 0;
		if (q->rrtype != RR_MX)
			req->t[q->host].tempfail = 1;
	}
	req->npending = 0;
}

static void
dns_req_free(struct dns_req *req)
{
	event_free(req->ev);
	free(req);
}

/* Start one lookup; on failure the reason is in req->temperr. */
static int
dns_query_start(struct dns_req *req, int rrtype, const char *name,
    unsigned host)
{
	struct dns_query *q = NULL;
	unsigned i;
	int r;

	for (i = 0; i < nitems(req->q) && q == NULL; i++)
		if (!req->q[i].active)
			q = &req->q[i];
	if (q == NULL)
		fatalx("dns: query table full");
	q->req = req;
	q->rrtype = rrtype;
	q->host = host;
	q->active = 1;
	req->npending++;
	r = ub_resolve_async(req->dns->ub, name, rrtype, RR_CLASS_IN, q,
	    dns_ub_cb, &q->id);
	if (r != 0) {
		q->active = 0;
		req->npending--;
		dns_errorf(req->temperr, sizeof(req->temperr),
		    "Name service error for name=%s type=%s: %s", name,
		    dns_type_name(rrtype), ub_strerror(r));
		return -1;
	}
	return 0;
}

/* Runs inside ub_process(), from dns_fd_cb(). */
static void
dns_ub_cb(void *arg, int err, struct ub_result *result)
{
	struct dns_query *q = arg;
	struct dns_req *req = q->req;

	if (q->active) {
		q->active = 0;
		req->npending--;
		if (q->rrtype == RR_MX)
			dns_mx_answer(req, err, result);
		else
			dns_addr_answer(req, q, err, result);
	}
	if (result != NULL)
		ub_resolve_free(result);
}

static const char *
dns_type_name(int rrtype)
{
	switch (rrtype) {
	case RR_A:
		return "A";
	case RR_AAAA:
		return "AAAA";
	case RR_MX:
		return "MX";
	default:
		return "?";
	}
}

/*
 * DNS_OK if the answer has data; DNS_NOTFOUND for NXDOMAIN or NODATA
 * with the reason in res.error; DNS_TEMPFAIL otherwise with the reason
 * in temperr.  The wording is Postfix's, which operators know.
 */
static enum dns_status
dns_classify(struct dns_req *req, const char *name, int rrtype, int err,
    struct ub_result *r)
{
	const char *why;
	const char *type = dns_type_name(rrtype);

	if (err == 0 && r != NULL && r->havedata && !r->bogus)
		return DNS_OK;
	if (err == 0 && r != NULL && !r->bogus &&
	    (r->nxdomain || r->rcode == RCODE_NXDOMAIN || r->rcode == 0)) {
		why = (r->nxdomain || r->rcode == RCODE_NXDOMAIN) ?
		    "Host not found" :
		    "Host found but no data record of requested type";
		/* Keep the A reason over the AAAA one for the same host. */
		if (rrtype != RR_AAAA || req->res.error[0] == '\0')
			dns_errorf(req->res.error, sizeof(req->res.error),
			    "Host or domain name not found. Name service "
			    "error for name=%s type=%s: %s", name, type, why);
		return DNS_NOTFOUND;
	}
	if (err != 0)
		why = ub_strerror(err);
	else if (r == NULL)
		why = "no result";
	else if (r->bogus)
		why = "DNSSEC validation failed";
	else
		why = "Host not found, try again";
	dns_errorf(req->temperr, sizeof(req->temperr), "Host or domain name "
	    "not found. Name service error for name=%s type=%s: %s", name,
	    type, why);
	return DNS_TEMPFAIL;
}

static void
dns_mx_answer(struct dns_req *req, int err, struct ub_result *r)
{
	struct dns_result *res = &req->res;

	switch (dns_classify(req, req->name, RR_MX, err, r)) {
	case DNS_OK:
		dns_mx_parse(req, r);
		break;
	case DNS_NOTFOUND:
		if (r->nxdomain || r->rcode == RCODE_NXDOMAIN) {
			res->status = DNS_NOTFOUND;
			dns_req_done(req);
			return;
		}
		/* RFC 5321 section 5.1: no MX, the domain is its own. */
		res->error[0] = '\0';
		res->implicit = 1;
		res->nhosts = 1;
		strlcpy(res->hosts[0].name, req->name,
		    sizeof(res->hosts[0].name));
		break;
	default:
		res->status = DNS_TEMPFAIL;
		strlcpy(res->error, req->temperr, sizeof(res->error));
		dns_req_done(req);
		return;
	}
	if (req->done)
		return;
	dns_addr_start(req);
}

/*
 * A name in wire format (RFC 1035 section 3.1) filling all of p; "" for
 * the root.  libunbound hands out record data uncompressed, so a
 * pointer (RFC 1035 section 4.1.4) is refused like any bad length.
 */
static int
dns_wire_name(const uint8_t *p, size_t len, char *dst, size_t dstlen)
{
	size_t i = 0, o = 0, l, k;

	while (i < len) {
		if ((l = p[i++]) == 0) {
			dst[o] = '\0';
			return i == len ? 0 : -1;
		}
		if (l > DNS_LABEL_MAX || l > len - i)
			return -1;
		if (o != 0)
			dst[o++] = '.';
		if (o + l > DNS_TEXT_MAX || o + l >= dstlen)
			return -1;
		for (k = 0; k < l; k++) {
			if (!dns_is_name_char(p[i + k]))
				return -1;
			dst[o++] = (p[i + k] >= 'A' && p[i + k] <= 'Z') ?
			    (char)(p[i + k] - 'A' + 'a') : (char)p[i + k];
		}
		i += l;
	}
	return -1;
}

/* MX rdata: 16-bit preference, then the exchange (RFC 1035 3.3.9). */
static int
dns_mx_rdata(const char *data, int len, struct dns_mx *mx)
{
	const uint8_t *p = (const uint8_t *)data;

	if (data == NULL || len < 3)
		return -1;
	mx->pref = (unsigned)p[0] << 8 | p[1];
	return dns_wire_name(p + 2, (size_t)len - 2, mx->name,
	    sizeof(mx->name));
}

static void
dns_mx_parse(struct dns_req *req, struct ub_result *r)
{
	struct dns_mx mx[DNS_MX_MAX];
	unsigned idx[DNS_MX_MAX], n = 0, i, nrec = 0, nroot = 0;
	struct dns_result *res = &req->res;

	for (i = 0; r->data[i] != NULL && n < DNS_MX_MAX; i++) {
		nrec++;
		if (dns_mx_rdata(r->data[i], r->len[i], &mx[n]) == -1)
			continue;	/* a bad record, not a bad domain */
		if (mx[n].name[0] == '\0')
			nroot++;
		else
			n++;
	}
	/*
	 * RFC 7505 section 3: a single MX whose exchange is the root.  Its
	 * preference should be 0; any is taken, the intent is plain.  A
	 * root among other MXs is only skipped (section 4.3).
	 */
	if (nrec == 1 && nroot == 1) {
		res->status = DNS_NULLMX;
		dns_errorf(res->error, sizeof(res->error),
		    "Domain %s does not accept mail (nullMX)", req->name);
		dns_req_done(req);
		return;
	}
	if (n == 0) {
		res->status = DNS_TEMPFAIL;
		dns_errorf(res->error, sizeof(res->error),
		    "Name service error for name=%s type=MX: "
		    "no valid mail exchanger in the reply", req->name);
		dns_req_done(req);
		return;
	}
	dns_mx_order(mx, n, idx);
	dns_mx_keep(req, mx, idx, n);
}

/*
 * Shuffle, then sort stably by preference: equal preferences end in
 * random order to spread the load (RFC 5321 section 5.1).
 */
static void
dns_mx_order(const struct dns_mx *mx, unsigned n, unsigned *idx)
{
	unsigned i, j, tmp;

	for (i = 0; i < n; i++)
		idx[i] = i;
	for (i = n; i > 1; i--) {
		j = arc4random_uniform(i);
		tmp = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = tmp;
	}
	for (i = 1; i < n; i++) {
		tmp = idx[i];
		for (j = i; j > 0 && mx[idx[j - 1]].pref > mx[tmp].pref; j--)
			idx[j] = idx[j - 1];
		idx[j] = tmp;
	}
}

/* The best DNS_HOSTS_MAX distinct exchangers, in order. */
static void
dns_mx_keep(struct dns_req *req, const struct dns_mx *mx,
    const unsigned *idx, unsigned n)
{
	struct dns_result *res = &req->res;
	unsigned i, k;

	for (i = 0; i < n && res->nhosts < DNS_HOSTS_MAX; i++) {
		const struct dns_mx *m = &mx[idx[i]];

		for (k = 0; k < res->nhosts; k++)
			if (strcmp(res->hosts[k].name, m->name) == 0)
				break;
		if (k < res->nhosts)
			continue;
		res->hosts[k].pref = m->pref;
		strlcpy(res->hosts[k].name, m->name,
		    sizeof(res->hosts[k].name));
		res->nhosts++;
	}
}

/* Every exchanger's A (and AAAA) lookups at once. */
static void
dns_addr_start(struct dns_req *req)
{
	struct dns_result *res = &req->res;
	unsigned i;

	req->phase = DNS_PHASE_ADDR;
	for (i = 0; i < res->nhosts; i++) {
		if (dns_query_start(req, RR_A, res->hosts[i].name, i) == -1)
			req->t[i].tempfail = 1;
		if (req->dns->ipv6 && dns_query_start(req, RR_AAAA,
		    res->hosts[i].name, i) == -1)
			req->t[i].tempfail = 1;
	}
	if (req->npending == 0) {
		dns_addr_result(req);
		dns_req_done(req);
	}
}

static void
dns_addr_answer(struct dns_req *req, struct dns_query *q, int err,
    struct ub_result *r)
{
	struct dns_target *t = &req->t[q->host];

	switch (dns_classify(req, req->res.hosts[q->host].name, q->rrtype,
	    err, r)) {
	case DNS_OK:
		dns_addr_store(t, q->rrtype, r);
		break;
	case DNS_TEMPFAIL:
		t->tempfail = 1;
		break;
	default:
		break;
	}
	if (req->npending == 0) {
		dns_addr_result(req);
		dns_req_done(req);
	}
}

static void
dns_addr_store(struct dns_target *t, int rrtype, struct ub_result *r)
{
	unsigned i;

	for (i = 0; r->data[i] != NULL; i++) {
		if (rrtype == RR_A && r->len[i] == 4 &&
		    t->n4 < DNS_ADDRS_MAX)
			memcpy(t->a4[t->n4++], r->data[i], 4);
		else if (rrtype == RR_AAAA && r->len[i] == 16 &&
		    t->n6 < DNS_ADDRS_MAX)
			memcpy(t->a6[t->n6++], r->data[i], 16);
	}
}

/*
 * IPv6 first, then IPv4; when both exist each keeps at least half the
 * slots, so a broken path of one family leaves the other to try.
 */
static void
dns_addr_fill(struct dns_host *h, const struct dns_target *t)
{
	unsigned i, n4, n6;

	n4 = t->n4 < DNS_ADDRS_MAX / 2 ? t->n4 : DNS_ADDRS_MAX / 2;
	n6 = t->n6 < DNS_ADDRS_MAX - n4 ? t->n6 : DNS_ADDRS_MAX - n4;
	n4 = t->n4 < DNS_ADDRS_MAX - n6 ? t->n4 : DNS_ADDRS_MAX - n6;
	memset(h->addrs, 0, sizeof(h->addrs));
	h->naddrs = 0;
	for (i = 0; i < n6; i++) {
		struct sockaddr_in6 *sin6 = (void *)&h->addrs[h->naddrs++];

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, t->a6[i], 16);
	}
	for (i = 0; i < n4; i++) {
		struct sockaddr_in *sin = (void *)&h->addrs[h->naddrs++];

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, t->a4[i], 4);
	}
}

/*
 * Keep the exchangers with an address, in order.  With none: defer if
 * any lookup failed temporarily, else it is a bounce.
 */
static void
dns_addr_result(struct dns_req *req)
{
	struct dns_result *res = &req->res;
	unsigned i, n = 0;
	int tempfail = 0;

	for (i = 0; i < res->nhosts; i++) {
		const struct dns_target *t = &req->t[i];

		if (t->n4 + t->n6 == 0) {
			tempfail |= t->tempfail;
			continue;
		}
		if (n != i) {
			res->hosts[n].pref = res->hosts[i].pref;
			strlcpy(res->hosts[n].name, res->hosts[i].name,
			    sizeof(res->hosts[n].name));
		}
		dns_addr_fill(&res->hosts[n], t);
		n++;
	}
	res->nhosts = n;
	if (n > 0) {
		res->status = DNS_OK;
		res->error[0] = '\0';
	} else if (tempfail) {
		res->status = DNS_TEMPFAIL;
		strlcpy(res->error, req->temperr, sizeof(res->error));
	} else {
		res->status = DNS_NOTFOUND;
		if (res->error[0] == '\0')
			dns_errorf(res->error, sizeof(res->error),
			    "Host or domain name not found. Name service "
			    "error for name=%s type=A: Host not found",
			    req->name);
	}
}
