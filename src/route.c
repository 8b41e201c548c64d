/*
 * route.c -- choose the destination of each recipient: local domains go
 * to Maildirs or LMTP; a matching route or the smarthost relays; the
 * rest goes to the domain's MX hosts (RFC 5321 5.1).  Run by the
 * delivery thread and, for route_is_local_domain(), by the workers.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "route.h"
#include "util.h"

int
route_is_local_domain(const struct config *cfg, const char *domain)
{
	unsigned i;

	for (i = 0; i < cfg->nlocal_domains; i++)
		if (strcasecmp(cfg->local_domains[i], domain) == 0)
			return 1;
	return 0;
}

/* "example.com" matches itself; ".example.com" also its subdomains. */
static int
route_matches(const char *pattern, const char *domain)
{
	size_t pl = strlen(pattern), dl = strlen(domain);

	if (pattern[0] != '.')
		return strcasecmp(pattern, domain) == 0;
	if (strcasecmp(pattern + 1, domain) == 0)
		return 1;
	return dl > pl && strcasecmp(domain + dl - pl, pattern) == 0;
}

static void
route_lower(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static void
route_relay(struct route *r, const struct config_route *via)
{
	r->kind = ROUTE_RELAY;
	r->via = via;
	snprintf(r->key, sizeof(r->key), "relay:%s:%u", via->host, via->port);
}

void
route_lookup(const struct config *cfg, const char *addr, struct route *r)
{
	const char *at = strrchr(addr, '@');
	const char *domain = at ? at + 1 : "";
	unsigned i;

	memset(r, 0, sizeof(*r));
	route_lower(r->domain, sizeof(r->domain), domain);
	/* A bare "postmaster" (RFC 5321 4.5.1) is ours. */
	if (at == NULL || route_is_local_domain(cfg, r->domain)) {
		r->kind = cfg->lmtp_address[0] ? ROUTE_LMTP : ROUTE_LOCAL;
		strlcpy(r->key, r->kind == ROUTE_LMTP ? "lmtp" : "local",
		    sizeof(r->key));
		return;
	}
	for (i = 0; i < cfg->nroutes; i++) {
		if (!route_matches(cfg->routes[i].domain, r->domain))
			continue;
		if (cfg->routes[i].host[0]) {
			route_relay(r, &cfg->routes[i]);
			return;
		}
		r->via = &cfg->routes[i];	/* MX with this TLS level */
		break;
	}
	if (r->via == NULL && cfg->smarthost.host[0]) {
		route_relay(r, &cfg->smarthost);
		return;
	}
	r->kind = ROUTE_MX;
	snprintf(r->key, sizeof(r->key), "mx:%s", r->domain);
}
