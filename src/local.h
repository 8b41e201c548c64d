/*
 * local.h -- recipients in our local domains: alias expansion and the
 * mailbox check done at RCPT time, and the Maildir of a mailbox.
 */
#ifndef SLUICE_LOCAL_H
#define SLUICE_LOCAL_H

#include <stddef.h>

struct config;

enum local_result {
	LOCAL_OK,		/* *out holds the final addresses */
	LOCAL_UNKNOWN,		/* no such mailbox: 550 5.1.1 */
	LOCAL_TEMPFAIL,		/* alias loop or overflow: 451 4.3.0 */
};

/* Load the alias table (once, before the workers start). */
int	local_init(const struct config *, char *err, size_t errlen);
void	local_free(void);
/*
 * Resolve addr, which is in a local domain (or is a bare "postmaster"):
 * aliases expanded, each local result checked to be a mailbox.  The
 * caller frees *out with local_list_free().
 */
enum local_result local_resolve(const struct config *, const char *addr,
	    char ***out, int *n);
void	local_list_free(char **, int);
/* postmaster or abuse, in any domain or bare: they always exist. */
int	local_is_role(const char *addr);
/*
 * 1 if addr, a final address of local_resolve(), is a mailbox only the
 * LMTP server knows (lmtp_address set, a local domain, no role account):
 * it must be verified there before it is accepted (lmtp_verify.h).
 */
int	local_is_lmtp_mailbox(const struct config *, const char *addr);
/* ROOT/domain/mailbox of a local address; -1 if it names no mailbox. */
int	local_maildir(const struct config *, const char *addr, char *path,
	    size_t len);

#endif
