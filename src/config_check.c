/*
 * config_check.c -- the checks config.c's table names: single values
 * (host names, paths, addresses, sender rules; NULL or what is wrong)
 * and whole entries of a list (duplicates, keys that go together, fields
 * derived from the text, such as a listener's host and port or a relay
 * network's address and prefix).  Run by the parent and by `sluiced -n`
 * on the operator's file, before privileges are dropped.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libconfig.h>

#include "config.h"
#include "config_int.h"
#include "util.h"

#define CONFIG_LOCAL_PART_MAX	64		/* RFC 5321 4.5.3.1.1 */

/*
 * "a.b.c.d:port" or "[v6]:port" into host and port, host in its
 * canonical form so that duplicates compare equal.  Returns NULL or
 * what is wrong.
 */
const char *
config_parse_address(const char *str, char *hostbuf, size_t hostlen,
    char *portbuf, size_t portlen)
{
	char host[INET6_ADDRSTRLEN + 2];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *colon, *h = str, *port;
	size_t hlen;
	uint64_t v;
	int af = AF_INET;

	if ((colon = strrchr(str, ':')) == NULL)
		return "expected \"IP:PORT\", e.g. \"127.0.0.1:25\" or "
		    "\"[::1]:25\"";
	hlen = (size_t)(colon - str);
	port = colon + 1;
	if (*str == '[') {
		if (hlen < 2 || str[hlen - 1] != ']')
			return "an IPv6 address is written \"[::1]:25\"";
		af = AF_INET6;
		h = str + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return "not a numeric IP address";
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (inet_pton(af, host, bin) != 1)
		return af == AF_INET6 ? "not a numeric IPv6 address" :
		    "not a numeric IPv4 address (IPv6 goes in [])";
	if (parse_u64(port, 1, 65535, &v) == -1)
		return "port must be a number from 1 to 65535";
	if (inet_ntop(af, bin, hostbuf, (socklen_t)hostlen) == NULL ||
	    (size_t)snprintf(portbuf, portlen, "%u", (unsigned)v) >= portlen)
		return "too long";
	return NULL;
}

/*
 * A listener's host and port, canonical; two entries for one socket
 * would fail at bind(), so say so here.
 */
int
config_check_listener(struct config_ctx *ctx, const config_setting_t *e,
    void *entries, unsigned i)
{
	struct config_listener *ls = entries, *l = &ls[i];
	unsigned j;

	if (config_parse_address(l->address, l->host, sizeof(l->host),
	    l->port, sizeof(l->port)) != NULL)
		return config_err(ctx, e, NULL, "internal: bad address");
	for (j = 0; j < i; j++) {
		if (strcmp(ls[j].host, l->host) == 0 &&
		    strcmp(ls[j].port, l->port) == 0)
			return config_err(ctx, e, NULL,
			    "address %s is already used by listeners[%u]",
			    l->address, j);
	}
	return 0;
}

/*
 * AUTH needs both halves and a host: credentials never go to whatever
 * MX a domain names.  MX delivery (no host) is STARTTLS on port 25, as
 * outbound_tls.  A domain has one route (smarthost: entry 0, alone).
 */
int
config_check_route(struct config_ctx *ctx, const config_setting_t *e,
    void *entries, unsigned i)
{
	const struct config_route *rs = entries, *r = &rs[i];
	const char *set;
	unsigned j;

	if ((r->auth_user[0] == '\0') != (r->auth_password[0] == '\0')) {
		set = r->auth_user[0] != '\0' ? "auth_user" : "auth_password";
		return config_err(ctx, config_setting_get_member(e, set), set,
		    "set without %s", r->auth_user[0] != '\0' ?
		    "auth_password" : "auth_user");
	}
	if (r->host[0] == '\0' && r->auth_user[0] != '\0')
		return config_err(ctx, config_setting_get_member(e,
		    "auth_user"), "auth_user", "needs a host (credentials "
		    "are not sent to MX hosts)");
	if (r->host[0] == '\0' && r->tls == TLS_LEVEL_IMPLICIT)
		return config_err(ctx, config_setting_get_member(e, "tls"),
		    "tls", "\"implicit\" needs a host (MX hosts use STARTTLS)");
	for (j = 0; j < i; j++)
		if (strcmp(rs[j].domain, r->domain) == 0)
			return config_err(ctx,
			    config_setting_get_member(e, "domain"), "domain",
			    "%s is already routed by routes[%u]", r->domain,
			    j);
	return 0;
}

/*
 * "IP/PREFIX", or a bare IP for one host, into family, addr and prefix.
 * Host bits past the prefix are an error, not rounded away: "10.0.0.1/8"
 * is likelier a mistyped /32 than a wish to trust 16M hosts.  The same
 * network twice, however written, is an error too.
 */
int
config_check_network(struct config_ctx *ctx, const config_setting_t *e,
    void *entries, unsigned i)
{
	struct config_network *ns = entries, *n = &ns[i];
	char ip[INET6_ADDRSTRLEN];
	unsigned char net[sizeof(n->addr)];
	const char *slash = strchr(n->cidr, '/');
	size_t len = slash != NULL ? (size_t)(slash - n->cidr) :
	    strlen(n->cidr);
	unsigned j, bits;
	uint64_t v;

	if (len >= sizeof(ip))
		len = 0;		/* too long for an address */
	memcpy(ip, n->cidr, len);
	ip[len] = '\0';
	n->family = memchr(ip, ':', len) != NULL ? AF_INET6 : AF_INET;
	bits = n->family == AF_INET ? 32 : 128;
	if (len == 0 || inet_pton(n->family, ip, n->addr) != 1)
		return config_err(ctx, e, NULL, "%s: not a numeric network, "
		    "e.g. \"192.0.2.0/24\", \"2001:db8::/32\" or an IP",
		    n->cidr);
	if (slash != NULL && parse_u64(slash + 1, 0, bits, &v) == -1)
		return config_err(ctx, e, NULL, "%s: the prefix of an IPv%c "
		    "network is 0 to %u", n->cidr,
		    n->family == AF_INET ? '4' : '6', bits);
	n->prefix = slash != NULL ? (unsigned)v : bits;
	memset(net, 0, sizeof(net));
	memcpy(net, n->addr, n->prefix / 8);
	if (n->prefix % 8 != 0)
		net[n->prefix / 8] = (unsigned char)(n->addr[n->prefix / 8] &
		    (0xff00 >> (n->prefix % 8)));
	if (memcmp(net, n->addr, sizeof(net)) != 0) {
		inet_ntop(n->family, net, ip, sizeof(ip));
		return config_err(ctx, e, NULL, "%s: host bits set (the "
		    "network is %s/%u)", n->cidr, ip, n->prefix);
	}
	for (j = 0; j < i; j++)
		if (ns[j].family == n->family && ns[j].prefix == n->prefix &&
		    memcmp(ns[j].addr, n->addr, sizeof(n->addr)) == 0)
			return config_err(ctx, e, NULL, "%s is the same "
			    "network as relay_networks[%u] (%s)", n->cidr, j,
			    ns[j].cidr);
	return 0;
}

/*
 * One entry per AUTH name, compared without case as policy_user() looks
 * them up: a second "Alice" would never be found.
 */
int
config_check_user(struct config_ctx *ctx, const config_setting_t *e,
    void *entries, unsigned i)
{
	const struct config_user *us = entries, *u = &us[i];
	unsigned j;

	for (j = 0; j < i; j++)
		if (strcasecmp(us[j].name, u->name) == 0)
			return config_err(ctx,
			    config_setting_get_member(e, "name"), "name",
			    "%s is already listed as users[%u]", u->name, j);
	return 0;
}

/* user, group: a POSIX-portable name as useradd takes it. */
const char *
config_valid_unix_name(const char *s)
{
	static const char bad[] = "not a user or group name ([a-z_] then "
	    "[a-z0-9_-])";

	if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
		return bad;
	for (s++; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '_' || *s == '-'))
			return bad;
	return NULL;
}

/* An AUTH user name as passwd_file allows it (auth_valid_user()). */
const char *
config_valid_user_name(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f || *s == ':')
			return "contains a space, a control character or ':'";
	return NULL;
}

/*
 * A sender rule: "local@domain" (one address) or "@domain" (all of
 * it).  The domain is a domain name, lowercased as loaded; the local part
 * is kept as written (RFC 5321 2.4).  No spaces, controls or brackets.
 */
const char *
config_valid_sender(const char *s)
{
	const char *at = strrchr(s, '@'), *p;

	if (at == NULL || strchr(s, '@') != at)
		return "expected \"local@domain\" or \"@domain\"";
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '<' ||
		    *p == '>')
			return "contains a space, a control character, '<' "
			    "or '>'";
	if (at - s > CONFIG_LOCAL_PART_MAX)
		return "local part longer than 64 characters "
		    "(RFC 5321 4.5.3.1.1)";
	if (config_valid_hostname(at + 1) != NULL)
		return "the part after '@' is not a domain name";
	return NULL;
}

/* RFC 1035 2.3.1: letters, digits, inner hyphens; labels of 1..63. */
const char *
config_valid_hostname(const char *s)
{
	static const char bad[] = "not a domain name (letters, digits, "
	    "'-' and '.'; labels of 1 to 63)";
	size_t label = 0;
	char prev = '.';

	for (; *s != '\0'; prev = *s++) {
		if (*s == '.') {
			if (label == 0 || prev == '-')
				return bad;
			label = 0;
			continue;
		}
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && *s != '-')
			return bad;
		if ((*s == '-' && label == 0) || ++label > 63)
			return bad;
	}
	return label == 0 || prev == '-' ? bad : NULL;
}

/* A route's domain: a domain name, or ".domain" for its subdomains. */
const char *
config_valid_route_domain(const char *s)
{
	return config_valid_hostname(*s == '.' ? s + 1 : s);
}

/* A host to connect to: a name, numeric IPv4 (a name too) or IPv6. */
const char *
config_valid_host(const char *s)
{
	unsigned char bin[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET6, s, bin) == 1 ||
	    config_valid_hostname(s) == NULL)
		return NULL;
	return "not a host name or numeric IP address";
}

/* A path goes into open() and log lines; refuse control characters. */
const char *
config_valid_path(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "contains a control character";
	return NULL;
}

/* "IP" or "IP@PORT", IPv4 or IPv6, numeric: the resolver's upstream. */
const char *
config_valid_forwarder(const char *s)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *at = strchr(s, '@');
	size_t len = at != NULL ? (size_t)(at - s) : strlen(s);
	uint64_t v;

	if (len >= sizeof(ip))
		return "expected a numeric IP address, \"IP\" or \"IP@PORT\"";
	memcpy(ip, s, len);
	ip[len] = '\0';
	if (inet_pton(AF_INET, ip, bin) != 1 &&
	    inet_pton(AF_INET6, ip, bin) != 1)
		return "expected a numeric IP address, \"IP\" or \"IP@PORT\"";
	if (at != NULL && parse_u64(at + 1, 1, 65535, &v) == -1)
		return "port must be a number from 1 to 65535";
	return NULL;
}
