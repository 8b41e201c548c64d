/*
 * local.c -- local domains: aliases, mailbox existence, Maildir paths.
 * Run by the workers at RCPT time (the alias table is read-only once
 * loaded) and by the delivery thread.  With lmtp_address set the LMTP
 * server knows the mailboxes: smtp_cmd.c has lmtp_verify.c ask it
 * about each local_is_lmtp_mailbox().  Addresses are untrusted: a local
 * part only names a Maildir if it is made of safe characters, so no
 * address can reach outside mailbox_root.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aliases.h"
#include "config.h"
#include "local.h"
#include "route.h"
#include "util.h"

static struct aliases *local_aliases;

int
local_init(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->aliases_file[0] == '\0')
		return 0;
	local_aliases = aliases_load(cfg->aliases_file, err, errlen);
	return local_aliases ? 0 : -1;
}

void
local_free(void)
{
	aliases_free(local_aliases);
	local_aliases = NULL;
}

static int
local_is_local_cb(const char *domain, void *arg)
{
	return route_is_local_domain(arg, domain);
}

/* Mailbox names: lowercase letters, digits, . _ + -; no leading dot. */
static int
local_safe_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 64 || s[0] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '+' && c != '-')
			return 0;
	}
	return 1;
}

int
local_maildir(const struct config *cfg, const char *addr, char *path,
    size_t len)
{
	const char *at = strrchr(addr, '@');
	const char *domain = at ? at + 1 : (cfg->nlocal_domains ?
	    cfg->local_domains[0] : cfg->hostname);
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);
	char local[65];
	size_t i;
	int n;

	if (!local_safe_name(addr, llen) || strchr(domain, '/') ||
	    domain[0] == '.')
		return -1;
	for (i = 0; i < llen; i++)
		local[i] = (char)tolower((unsigned char)addr[i]);
	local[llen] = '\0';
	n = snprintf(path, len, "%s/%s/%s", cfg->mailbox_root, domain, local);
	for (char *p = path + strlen(cfg->mailbox_root); *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* postmaster and abuse always exist (RFC 5321 4.5.1, RFC 2142). */
int
local_is_role(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);

	return (llen == 10 && strncasecmp(addr, "postmaster", 10) == 0) ||
	    (llen == 5 && strncasecmp(addr, "abuse", 5) == 0);
}

static int
local_mailbox_exists(const struct config *cfg, const char *addr)
{
	char path[4400];
	struct stat st;

	if (local_maildir(cfg, addr, path, sizeof(path)) == -1)
		return 0;
	/* With LMTP the server owns the mailboxes: smtp_cmd.c asks it
	 * (local_is_lmtp_mailbox(), lmtp_verify.c). */
	if (cfg->lmtp_address[0] || local_is_role(addr))
		return 1;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

enum local_result
local_resolve(const struct config *cfg, const char *addr, char ***out,
    int *n)
{
	int i, count;

	*out = NULL;
	*n = 0;
	if (local_aliases == NULL) {
		if (!local_mailbox_exists(cfg, addr))
			return LOCAL_UNKNOWN;
		*out = xcalloc(1, sizeof(char *));
		(*out)[0] = xstrdup(addr);
		*n = 1;
		return LOCAL_OK;
	}
	count = aliases_expand(local_aliases, addr, local_is_local_cb,
	    (void *)cfg, out);
	if (count == -1)
		return LOCAL_TEMPFAIL;
	*n = count;
	for (i = 0; i < count; i++) {
		const char *a = (*out)[i], *at = strrchr(a, '@');

		if ((at == NULL || route_is_local_domain(cfg, at + 1)) &&
		    !local_mailbox_exists(cfg, a)) {
			local_list_free(*out, count);
			*out = NULL;
			*n = 0;
			return LOCAL_UNKNOWN;
		}
	}
	return LOCAL_OK;
}

int
local_is_lmtp_mailbox(const struct config *cfg, const char *addr)
{
	const char *at = strrchr(addr, '@');

	if (cfg->lmtp_address[0] == '\0' || local_is_role(addr))
		return 0;
	return at == NULL || route_is_local_domain(cfg, at + 1);
}

void
local_list_free(char **l, int n)
{
	if (l == NULL)
		return;
	aliases_list_free(l, n);
}
