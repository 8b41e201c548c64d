/*
 * aliases.h -- the alias table for local domains: address -> one or more
 * addresses, local or remote (file format in docs/configuration.md).
 */
#ifndef SLUICE_ALIASES_H
#define SLUICE_ALIASES_H

#include <stddef.h>

struct aliases;

#define ALIASES_DEPTH_MAX	10	/* alias chains longer than this fail */
#define ALIASES_EXPAND_MAX	1000	/* addresses one expansion may yield */

/*
 * Load "key: target, target ..." lines; '#' starts a comment; a key is a
 * full address (user@domain) or a bare local part (user) that applies to
 * every local domain.  Returns NULL with "FILE:LINE: message" in err.
 */
struct aliases *aliases_load(const char *path, char *err, size_t errlen);
void	aliases_free(struct aliases *);

/* Is this address (or its local part) a key?  1 or 0. */
int	aliases_has(const struct aliases *, const char *addr);

/*
 * Expand addr recursively (keys match case-insensitively; targets that
 * are not keys are final).  is_local(domain, arg) tells whether a bare
 * local-part key may apply.  Results are deduplicated; out is an array of
 * allocated strings the caller frees with aliases_list_free().  Returns
 * the count, or -1 on a loop deeper than ALIASES_DEPTH_MAX or more than
 * ALIASES_EXPAND_MAX results.  An address that is no key yields itself.
 */
int	aliases_expand(const struct aliases *, const char *addr,
	    int (*is_local)(const char *domain, void *), void *arg,
	    char ***out);
void	aliases_list_free(char **, int n);

#endif
