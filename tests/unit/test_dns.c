/*
 * test_dns.c -- tests of dns.c against a real DNS server: Debian's
 * unbound (/usr/sbin/unbound) on 127.0.0.1 at a free port, serving the
 * records[] below from static local zones, as tests/helpers/dnsserver.py
 * does for the end-to-end tests (same record format, same config).
 * Every case runs a libevent loop until the callback fires, bounded by a
 * guard timer.  Without unbound installed the whole group fails.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "util.h"

#define UNBOUND		"/usr/sbin/unbound"
#define START_TRIES	3
#define START_MSEC	10000	/* until unbound answers */
#define GUARD_SEC	5	/* per lookup */
#define SHUFFLE_TRIES	64	/* both orders of two: 1 - 2^-63 */

/* "name TYPE data", as in a zone file and in dnsserver.py. */
static const char *records[] = {
	"mx.test MX 10 a.mx.test",
	"mx.test MX 10 b.mx.test",
	"mx.test MX 20 c.mx.test",
	"a.mx.test A 192.0.2.1",
	"a.mx.test AAAA 2001:db8::1",
	"b.mx.test A 192.0.2.2",
	"c.mx.test A 192.0.2.3",
	"c.mx.test AAAA 2001:db8::3",
	"implicit.test A 192.0.2.10",
	"implicit.test AAAA 2001:db8::10",
	"null.test MX 0 .",
	"skip.test MX 5 gone.skip.test",
	"skip.test MX 10 nodata.skip.test",
	"skip.test MX 20 good.skip.test",
	"nodata.skip.test MX 10 good.skip.test",
	"good.skip.test A 192.0.2.20",
	"none.test MX 10 gone.none.test",
	"none.test MX 20 nodata.none.test",
	"nodata.none.test TXT nothing",
	"nomail.test TXT nothing",
	"cname.test MX 10 alias.cname.test",
	"alias.cname.test CNAME real.cname.test",
	"real.cname.test A 192.0.2.30",
	"tempfail.test MX 10 host.refused.test",
	"mixed.test MX 10 host.refused.test",
	"mixed.test MX 20 good.skip.test",
	"big.test A 192.0.2.101", "big.test A 192.0.2.102",
	"big.test A 192.0.2.103", "big.test A 192.0.2.104",
	"big.test A 192.0.2.105", "big.test A 192.0.2.106",
	"big.test AAAA 2001:db8::101", "big.test AAAA 2001:db8::102",
	"big.test AAAA 2001:db8::103", "big.test AAAA 2001:db8::104",
	"big.test AAAA 2001:db8::105", "big.test AAAA 2001:db8::106",
};
/* REFUSED for these and below: the resolver reports SERVFAIL. */
static const char *refused[] = { "refused.test" };

struct outcome {
	int			 ncalls;
	struct dns_result	 res;
};

static char		 tmpdir[64];
static pid_t		 server_pid = -1;
static int		 server_port;
static int		 have_unbound;
static struct event_base *base;
static struct dns	*dns6;		/* ipv6=1 */
static struct dns	*dns4;		/* ipv6=0 */
static struct outcome	 out;

/* A port free for UDP and TCP on 127.0.0.1, as unbound takes both. */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int u, t, port = -1;

	for (;;) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		u = socket(AF_INET, SOCK_DGRAM, 0);
		t = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(u != -1 && t != -1);
		assert_int_equal(bind(u, (void *)&sin, sizeof(sin)), 0);
		assert_int_equal(getsockname(u, (void *)&sin, &len), 0);
		if (bind(t, (void *)&sin, sizeof(sin)) == 0)
			port = ntohs(sin.sin_port);
		close(u);
		close(t);
		if (port != -1)
			return port;
	}
}

static void
write_config(const char *path, int port)
{
	FILE *fp = fopen(path, "w");
	size_t i;

	assert_non_null(fp);
	fprintf(fp, "server:\n\tinterface: 127.0.0.1\n\tport: %d\n"
	    "\tdo-not-query-localhost: no\n\tusername: \"\"\n"
	    "\tchroot: \"\"\n\tdirectory: \"%s\"\n\tpidfile: \"\"\n"
	    "\tuse-syslog: no\n\tlogfile: \"\"\n\tverbosity: 1\n"
	    "\tnum-threads: 1\n\taccess-control: 127.0.0.0/8 allow\n"
	    "\tlocal-zone: \"test.\" static\n", port, tmpdir);
	for (i = 0; i < nitems(refused); i++)
		fprintf(fp, "\tlocal-zone: \"%s.\" always_refuse\n",
		    refused[i]);
	for (i = 0; i < nitems(records); i++)
		fprintf(fp, "\tlocal-data: \"%s\"\n", records[i]);
	fprintf(fp, "remote-control:\n\tcontrol-enable: no\n");
	assert_int_equal(fclose(fp), 0);
}

/* 1 if something answers a query for "test." A on the port. */
static int
probe(int port)
{
	static const uint8_t q[] = { 0x51, 0x73, 1, 0, 0, 1, 0, 0, 0, 0, 0,
	    0, 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1 };
	struct sockaddr_in sin;
	struct pollfd pfd;
	uint8_t reply[512];
	ssize_t n = -1;
	int s;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		return 0;
	pfd.fd = s;
	pfd.events = POLLIN;
	if (sendto(s, q, sizeof(q), 0, (void *)&sin, sizeof(sin)) ==
	    (ssize_t)sizeof(q) && poll(&pfd, 1, 200) == 1)
		n = recv(s, reply, sizeof(reply), 0);
	close(s);
	return n >= 12 && reply[0] == q[0] && reply[1] == q[1];
}

static pid_t
spawn_unbound(const char *conf, const char *logpath)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) != 0)
		return pid;
	fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd != -1) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	execl(UNBOUND, "unbound", "-d", "-c", conf, (char *)NULL);
	_exit(127);
}

static void
sleep_msec(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Start unbound on a free port; 0 once it answers, -1 if it exited. */
static int
start_once(void)
{
	char conf[128], logpath[128];
	int status, waited;

	snprintf(conf, sizeof(conf), "%s/unbound.conf", tmpdir);
	snprintf(logpath, sizeof(logpath), "%s/unbound.log", tmpdir);
	server_port = free_port();
	write_config(conf, server_port);
	assert_true((server_pid = spawn_unbound(conf, logpath)) > 0);
	for (waited = 0; waited < START_MSEC; waited += 250) {
		if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
			server_pid = -1;	/* port taken? try another */
			return -1;
		}
		if (probe(server_port))
			return 0;
		sleep_msec(50);
	}
	fail_msg("unbound did not answer within %d ms, see %s", START_MSEC,
	    logpath);
	return -1;
}

static void
stop_unbound(void)
{
	int i, status;

	if (server_pid <= 0)
		return;
	kill(server_pid, SIGTERM);
	for (i = 0; i < 100; i++) {
		if (waitpid(server_pid, &status, WNOHANG) == server_pid)
			break;
		sleep_msec(50);
	}
	if (i == 100) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, &status, 0);
	}
	server_pid = -1;
}

static int
group_setup(void **state)
{
	char fwd[64], err[256];
	int i;

	(void)state;
	log_init("test_dns", 1, LOG_LVL_WARN);
	/* scripts/install-deps installs it: missing is a failure. */
	if (access(UNBOUND, X_OK) == -1) {
		fprintf(stderr, "%s missing (apt-get install unbound)\n",
		    UNBOUND);
		return -1;
	}
	have_unbound = 1;
	strlcpy(tmpdir, "/tmp/test_dns.XXXXXX", sizeof(tmpdir));
	assert_non_null(mkdtemp(tmpdir));
	for (i = 0; i < START_TRIES && start_once() == -1; i++)
		;
	if (server_pid <= 0)
		fail_msg("unbound would not start, see %s/unbound.log", tmpdir);
	assert_non_null(base = event_base_new());
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", server_port);
	dns6 = dns_new(base, fwd, 1, err, sizeof(err));
	if (dns6 == NULL)
		fail_msg("dns_new: %s", err);
	dns4 = dns_new(base, fwd, 0, err, sizeof(err));
	if (dns4 == NULL)
		fail_msg("dns_new: %s", err);
	return 0;
}

static int
group_teardown(void **state)
{
	char path[128];

	(void)state;
	dns_free(dns6);
	dns_free(dns4);
	if (base != NULL)
		event_base_free(base);
	stop_unbound();
	if (tmpdir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/unbound.log", tmpdir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/unbound.conf", tmpdir);
		unlink(path);
		rmdir(tmpdir);
	}
	return 0;
}

static void
outcome_cb(const struct dns_result *res, void *arg)
{
	struct outcome *o = arg;

	o->ncalls++;
	o->res = *res;
}

static void
guard_cb(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	*(int *)arg = 1;
}

/* Run the loop until o's callback ran, or GUARD_SEC. */
static void
run_until(struct outcome *o)
{
	struct timeval tv = { GUARD_SEC, 0 };
	struct event *guard;
	int expired = 0;

	assert_non_null(guard = evtimer_new(base, guard_cb, &expired));
	evtimer_add(guard, &tv);
	while (o->ncalls == 0 && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	if (o->ncalls == 0)
		fail_msg("no callback within %d seconds", GUARD_SEC);
	/* Exactly once: nothing more is pending for it. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(o->ncalls, 1);
}

static const struct dns_result *
mx(struct dns *d, const char *domain)
{
	if (!have_unbound)
		skip();
	memset(&out, 0, sizeof(out));
	dns_resolve_mx(d, domain, outcome_cb, &out);
	assert_int_equal(out.ncalls, 0);	/* never from inside the call */
	run_until(&out);
	return &out.res;
}

static const struct dns_result *
host(struct dns *d, const char *name)
{
	if (!have_unbound)
		skip();
	memset(&out, 0, sizeof(out));
	dns_resolve_host(d, name, outcome_cb, &out);
	assert_int_equal(out.ncalls, 0);
	run_until(&out);
	return &out.res;
}

static const char *
addr_str(const struct sockaddr_storage *ss)
{
	static char buf[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const void *)ss;
	const struct sockaddr_in6 *sin6 = (const void *)ss;

	if (ss->ss_family == AF_INET) {
		assert_int_equal(sin->sin_port, 0);
		return inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	}
	assert_int_equal(ss->ss_family, AF_INET6);
	assert_int_equal(sin6->sin6_port, 0);
	return inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
}

static void
expect_host(const struct dns_host *h, const char *name, unsigned pref,
    unsigned naddrs)
{
	assert_string_equal(h->name, name);
	assert_int_equal(h->pref, pref);
	assert_int_equal(h->naddrs, naddrs);
}

/* Preference order; IPv6 before IPv4 within a host. */
static void
test_mx_order(void **state)
{
	const struct dns_result *r = mx(dns6, "mx.test");
	const struct dns_host *a;

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->implicit, 0);
	assert_string_equal(r->error, "");
	assert_int_equal(r->nhosts, 3);
	a = strcmp(r->hosts[0].name, "a.mx.test") == 0 ? &r->hosts[0] :
	    &r->hosts[1];
	expect_host(a, "a.mx.test", 10, 2);
	assert_string_equal(addr_str(&a->addrs[0]), "2001:db8::1");
	assert_string_equal(addr_str(&a->addrs[1]), "192.0.2.1");
	expect_host(a == &r->hosts[0] ? &r->hosts[1] : &r->hosts[0],
	    "b.mx.test", 10, 1);
	expect_host(&r->hosts[2], "c.mx.test", 20, 2);
}

/* RFC 5321 section 5.1: equal preferences come in random order. */
static void
test_mx_shuffle(void **state)
{
	int i, a_first = 0, b_first = 0;

	(void)state;
	for (i = 0; i < SHUFFLE_TRIES && !(a_first && b_first); i++) {
		const struct dns_result *r = mx(dns6, "mx.test");

		assert_int_equal(r->nhosts, 3);
		if (strcmp(r->hosts[0].name, "a.mx.test") == 0)
			a_first++;
		else
			b_first++;
		assert_string_equal(r->hosts[2].name, "c.mx.test");
	}
	assert_true(a_first > 0 && b_first > 0);
}

static void
test_mx_ipv4_only(void **state)
{
	const struct dns_result *r = mx(dns4, "mx.test");
	unsigned i;

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->nhosts, 3);
	for (i = 0; i < r->nhosts; i++) {
		assert_int_equal(r->hosts[i].naddrs, 1);
		assert_int_equal(r->hosts[i].addrs[0].ss_family, AF_INET);
	}
}

/* Trailing dot and capitals name the same domain. */
static void
test_mx_normalise(void **state)
{
	const struct dns_result *r = mx(dns6, "MX.Test.");

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->nhosts, 3);
	assert_string_equal(r->hosts[2].name, "c.mx.test");
}

/* RFC 5321 section 5.1: no MX, the domain's own addresses. */
static void
test_implicit_mx(void **state)
{
	const struct dns_result *r = mx(dns6, "implicit.test");

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->implicit, 1);
	assert_int_equal(r->nhosts, 1);
	expect_host(&r->hosts[0], "implicit.test", 0, 2);
	assert_string_equal(addr_str(&r->hosts[0].addrs[0]), "2001:db8::10");
	assert_string_equal(addr_str(&r->hosts[0].addrs[1]), "192.0.2.10");
}

static void
test_no_mx_no_address(void **state)
{
	const struct dns_result *r = mx(dns6, "nomail.test");

	(void)state;
	assert_int_equal(r->status, DNS_NOTFOUND);
	assert_non_null(strstr(r->error, "name=nomail.test type=A: "
	    "Host found but no data record of requested type"));
}

static void
test_null_mx(void **state)
{
	const struct dns_result *r = mx(dns6, "null.test");

	(void)state;
	assert_int_equal(r->status, DNS_NULLMX);
	assert_int_equal(r->nhosts, 0);
	assert_non_null(strstr(r->error, "null.test"));
}

static void
test_nxdomain(void **state)
{
	const struct dns_result *r = mx(dns6, "nx.test");

	(void)state;
	assert_int_equal(r->status, DNS_NOTFOUND);
	assert_string_equal(r->error, "Host or domain name not found. Name "
	    "service error for name=nx.test type=MX: Host not found");
}

/* Exchangers without an address (NXDOMAIN, NODATA) are skipped. */
static void
test_skip_addressless(void **state)
{
	const struct dns_result *r = mx(dns6, "skip.test");

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->nhosts, 1);
	expect_host(&r->hosts[0], "good.skip.test", 20, 1);
	assert_string_equal(addr_str(&r->hosts[0].addrs[0]), "192.0.2.20");
}

static void
test_all_addressless(void **state)
{
	const struct dns_result *r = mx(dns6, "none.test");

	(void)state;
	assert_int_equal(r->status, DNS_NOTFOUND);
	assert_int_equal(r->nhosts, 0);
	assert_non_null(strstr(r->error, "Name service error for name="));
}

static void
test_cname_target(void **state)
{
	const struct dns_result *r = mx(dns6, "cname.test");

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->nhosts, 1);
	expect_host(&r->hosts[0], "alias.cname.test", 10, 1);
	assert_string_equal(addr_str(&r->hosts[0].addrs[0]), "192.0.2.30");
}

static void
test_servfail(void **state)
{
	const struct dns_result *r = mx(dns6, "refused.test");

	(void)state;
	assert_int_equal(r->status, DNS_TEMPFAIL);
	assert_non_null(strstr(r->error, "name=refused.test type=MX"));
}

/* The only exchanger fails temporarily: defer, do not bounce. */
static void
test_target_servfail(void **state)
{
	const struct dns_result *r = mx(dns6, "tempfail.test");

	(void)state;
	assert_int_equal(r->status, DNS_TEMPFAIL);
	assert_non_null(strstr(r->error, "name=host.refused.test"));
}

static void
test_target_servfail_mixed(void **state)
{
	const struct dns_result *r = mx(dns6, "mixed.test");

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->nhosts, 1);
	expect_host(&r->hosts[0], "good.skip.test", 20, 1);
}

/* Both families keep half the slots when both overflow. */
static void
test_addrs_max(void **state)
{
	const struct dns_result *r = host(dns6, "big.test");
	unsigned i;

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->nhosts, 1);
	assert_int_equal(r->hosts[0].naddrs, DNS_ADDRS_MAX);
	for (i = 0; i < DNS_ADDRS_MAX; i++)
		assert_int_equal(r->hosts[0].addrs[i].ss_family,
		    i < DNS_ADDRS_MAX / 2 ? AF_INET6 : AF_INET);
	r = host(dns4, "big.test");
	assert_int_equal(r->hosts[0].naddrs, 6);
}

static void
test_host(void **state)
{
	const struct dns_result *r = host(dns6, "C.MX.TEST.");

	(void)state;
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->implicit, 0);
	assert_int_equal(r->nhosts, 1);
	expect_host(&r->hosts[0], "c.mx.test", 0, 2);
	r = host(dns6, "gone.none.test");
	assert_int_equal(r->status, DNS_NOTFOUND);
	assert_non_null(strstr(r->error, "type=A: Host not found"));
}

/* Rejected before any query, yet still called back from the loop. */
static void
test_malformed(void **state)
{
	static const char *bad[] = { "", ".", "a..test", "bad name.test",
	    "x\\.test", "-\n.test", "a.test..", "\xc3\xa9.test" };
	char big[300];
	size_t i;

	(void)state;
	for (i = 0; i < nitems(bad); i++) {
		const struct dns_result *r = mx(dns6, bad[i]);

		assert_int_equal(r->status, DNS_NOTFOUND);
		assert_non_null(strstr(r->error, "Malformed domain name"));
		assert_null(strchr(r->error, '\n'));
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(mx(dns6, big)->status, DNS_NOTFOUND);
	memset(big, 'a', 64);
	strlcpy(big + 64, ".test", sizeof(big) - 64);
	assert_int_equal(host(dns6, big)->status, DNS_NOTFOUND);
}

static void
never_cb(const struct dns_result *res, void *arg)
{
	(void)res;
	(void)arg;
	fail_msg("callback after dns_free");
}

/* dns_free cancels queries in flight and early results alike. */
static void
test_free_outstanding(void **state)
{
	struct dns *d;
	char fwd[64], err[256];
	struct timeval tv = { 0, 200000 };

	(void)state;
	if (!have_unbound)
		skip();
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", server_port);
	assert_non_null(d = dns_new(base, fwd, 1, err, sizeof(err)));
	dns_resolve_mx(d, "mx.test", never_cb, NULL);
	dns_resolve_mx(d, "cname.test", never_cb, NULL);
	dns_resolve_host(d, "a.mx.test", never_cb, NULL);
	dns_resolve_mx(d, "bad name", never_cb, NULL);
	dns_free(d);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

struct free_ctx {
	struct outcome	 o;
	struct dns	*d;
};

static void
free_in_cb(const struct dns_result *res, void *arg)
{
	struct free_ctx *ctx = arg;

	ctx->o.ncalls++;
	ctx->o.res = *res;
	dns_free(ctx->d);
}

/* A callback may free its resolver, other lookups still in flight. */
static void
test_free_in_callback(void **state)
{
	static struct free_ctx ctx;
	char fwd[64], err[256];

	(void)state;
	if (!have_unbound)
		skip();
	memset(&ctx, 0, sizeof(ctx));
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", server_port);
	assert_non_null(ctx.d = dns_new(base, fwd, 1, err, sizeof(err)));
	dns_resolve_mx(ctx.d, "bad name", free_in_cb, &ctx);
	dns_resolve_mx(ctx.d, "mx.test", never_cb, NULL);
	run_until(&ctx.o);
	assert_int_equal(ctx.o.res.status, DNS_NOTFOUND);
}

static void
test_bad_forwarder(void **state)
{
	char err[256] = "";

	(void)state;
	if (!have_unbound)
		skip();
	assert_null(dns_new(base, "not-an-address", 1, err, sizeof(err)));
	assert_non_null(strstr(err, "not-an-address"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_mx_shuffle),
		cmocka_unit_test(test_mx_ipv4_only),
		cmocka_unit_test(test_mx_normalise),
		cmocka_unit_test(test_implicit_mx),
		cmocka_unit_test(test_no_mx_no_address),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_nxdomain),
		cmocka_unit_test(test_skip_addressless),
		cmocka_unit_test(test_all_addressless),
		cmocka_unit_test(test_cname_target),
		cmocka_unit_test(test_servfail),
		cmocka_unit_test(test_target_servfail),
		cmocka_unit_test(test_target_servfail_mixed),
		cmocka_unit_test(test_addrs_max),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_free_outstanding),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_bad_forwarder),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
