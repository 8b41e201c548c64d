/*
 * privsep.h -- privilege separation.  Started as root, sluiced forks: the
 * parent keeps root only to read TLS keys again on SIGHUP and does
 * nothing else; the child binds the listeners, drops to the configured
 * user and runs everything.  They talk over a socketpair with typed,
 * bounds-checked messages.
 */
#ifndef SLUICE_PRIVSEP_H
#define SLUICE_PRIVSEP_H

struct config;
struct tls_pem;

/*
 * Fork if root.  Returns in the child (or in the only process when not
 * root) with *fd set to the channel to the parent, or -1 without one.
 * The parent never returns: it exits with the child's status.
 */
void	privsep_fork(const struct config *, int *fd);
/* Child: switch to cfg->user; fatal on any failure, or if that is root. */
void	privsep_drop(const struct config *);
/* Child: ask the parent for fresh certificates. */
void	privsep_request_certs(int fd);
/* Child: read one certificate message into pems (tls_pem_free each).
 * Returns the count; fatal on a malformed message. */
int	privsep_recv_certs(int fd, struct tls_pem *pems, unsigned max);
/* Read the configured certificates as PEM text.  Count or -1 (err). */
int	privsep_read_certs(const struct config *, struct tls_pem *,
	    char *err, size_t errlen);

#endif
