/*
 * route.h -- where a recipient's mail goes: a local mailbox, the LMTP
 * server, a smarthost, or the domain's MX hosts.
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H

#include <stddef.h>

struct config;
struct config_route;

enum route_kind {
	ROUTE_LOCAL,		/* Maildir under mailbox_root */
	ROUTE_LMTP,		/* lmtp_address */
	ROUTE_RELAY,		/* a smarthost: host:port, no MX lookup */
	ROUTE_MX,		/* the domain's mail exchangers */
};

struct route {
	enum route_kind		 kind;
	const struct config_route *via;	/* RELAY; MX with a TLS policy */
	char			 key[300];	/* destination: groups
						   recipients and connections */
	char			 domain[256];	/* MX: lowercased domain */
};

/* Is domain one of ours?  Case-insensitive; 1 or 0. */
int	route_is_local_domain(const struct config *, const char *domain);
/* The route for an address (local@domain). */
void	route_lookup(const struct config *, const char *addr, struct route *);

#endif
