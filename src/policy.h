/*
 * policy.h -- who may do what: trusted networks (relay without AUTH),
 * the rules of an authenticated user (which senders it may use), and the
 * sending-cap key and limits that apply to a session.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include <sys/socket.h>

struct config;
struct config_network;
struct config_user;

/* The trusted network the client address is in, or NULL. */
const struct config_network *policy_trusted(const struct config *,
	    const struct sockaddr *);
/* The configured rules of a user, or NULL (defaults apply). */
const struct config_user *policy_user(const struct config *,
	    const char *login);
/*
 * May this authenticated login send as sender ("" is <>)?  Configured
 * senders ("addr" or "@domain"), plus the login itself when it is an
 * address.  Domains compare case-insensitively, local parts exactly
 * except for case (mailbox names are case-insensitive here).  1 or 0.
 */
int	policy_sender_ok(const struct config_user *, const char *login,
	    const char *sender);

#endif
