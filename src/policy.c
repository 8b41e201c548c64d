/*
 * policy.c -- relay and sender policy decisions (policy.h).  Pure
 * functions over the configuration; run by the worker threads.  The
 * inputs (client address, login, MAIL FROM) are untrusted but already
 * parsed and bounded by smtp_parse.c and auth.c.
 */
#include <netinet/in.h>

#include <string.h>
#include <strings.h>

#include "config.h"
#include "policy.h"

static int
policy_prefix_match(const unsigned char *a, const unsigned char *net,
    unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ net[full]) & (0xff << (8 - rest))) == 0;
}

const struct config_network *
policy_trusted(const struct config *cfg, const struct sockaddr *sa)
{
	const unsigned char *a;
	unsigned char mapped[4];
	int family = sa->sa_family;
	unsigned i;

	if (family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		a = a6->s6_addr;
		/* ::ffff:10.1.2.3 is the IPv4 client 10.1.2.3. */
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(mapped, a + 12, 4);
			a = mapped;
			family = AF_INET;
		}
	} else
		a = (const unsigned char *)
		    &((const struct sockaddr_in *)sa)->sin_addr;
	for (i = 0; i < cfg->nrelay_networks; i++) {
		const struct config_network *n = &cfg->relay_networks[i];
		if (n->family == family &&
		    policy_prefix_match(a, n->addr, n->prefix))
			return n;
	}
	return NULL;
}

const struct config_user *
policy_user(const struct config *cfg, const char *login)
{
	unsigned i;

	/* Exact, as auth.c matches logins. */
	for (i = 0; i < cfg->nusers; i++)
		if (strcmp(cfg->users[i].name, login) == 0)
			return &cfg->users[i];
	return NULL;
}

static int
policy_sender_match(const char *rule, const char *sender)
{
	const char *at = strrchr(sender, '@');

	if (rule[0] == '@')
		return at != NULL && strcasecmp(rule + 1, at + 1) == 0;
	return strcasecmp(rule, sender) == 0;
}

int
policy_sender_ok(const struct config_user *u, const char *login,
    const char *sender)
{
	unsigned i;

	if (sender[0] == '\0')
		return u != NULL && u->allow_null_sender;
	if (strchr(login, '@') != NULL && strcasecmp(login, sender) == 0)
		return 1;
	if (u == NULL)
		return 0;
	for (i = 0; i < u->nsenders; i++)
		if (policy_sender_match(u->senders[i], sender))
			return 1;
	return 0;
}
