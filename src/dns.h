/*
 * dns.h -- asynchronous DNS for delivery (libunbound on a libevent loop):
 * the mail exchangers of a domain per RFC 5321 section 5.1 and RFC 7505,
 * and the addresses of a single host (smarthosts).  libunbound caches
 * answers for their TTL.
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <sys/socket.h>

#include <stddef.h>

struct event_base;
struct dns;

#define DNS_HOSTS_MAX	16	/* mail exchangers kept per domain */
#define DNS_ADDRS_MAX	8	/* addresses kept per exchanger */
#define DNS_NAME_MAX	256

enum dns_status {
	DNS_OK,			/* hosts[] has at least one address */
	DNS_NOTFOUND,		/* NXDOMAIN, or no MX and no A/AAAA: bounce */
	DNS_NULLMX,		/* RFC 7505 "MX 0 .": bounce with 5.1.10 */
	DNS_TEMPFAIL,		/* SERVFAIL, timeout, ...: defer */
};

struct dns_host {
	char			 name[DNS_NAME_MAX];
	unsigned		 pref;		/* MX preference */
	unsigned		 naddrs;
	struct sockaddr_storage	 addrs[DNS_ADDRS_MAX];	/* port 0 */
};

struct dns_result {
	enum dns_status		 status;
	char			 error[256];	/* why, for logs and DSNs */
	int			 implicit;	/* no MX: the domain itself */
	unsigned		 nhosts;
	struct dns_host		 hosts[DNS_HOSTS_MAX];	/* try in order */
};

typedef void (*dns_cb)(const struct dns_result *, void *arg);

/*
 * A resolver on base.  forwarder is "IP" or "IP@PORT" to send every
 * query to (tests, or a site resolver), NULL for /etc/resolv.conf.
 * Returns NULL with a message in err.
 */
struct dns	*dns_new(struct event_base *base, const char *forwarder,
		    int ipv6, char *err, size_t errlen);
void		 dns_free(struct dns *);

/*
 * Mail exchangers of domain: MX records sorted by preference, random
 * order among equal preference, CNAMEs followed, hosts with no address
 * skipped; the domain's own A/AAAA when it has no MX.  cb runs exactly
 * once, always from the event loop (never inside this call).
 */
void		 dns_resolve_mx(struct dns *, const char *domain, dns_cb, void *);
/* The addresses of one host, as a single-host result. */
void		 dns_resolve_host(struct dns *, const char *host, dns_cb, void *);

#endif
