/*
 * lmtp_verify.h -- recipient verification against the LMTP server
 * (lmtp_address) at RCPT time, so an unknown mailbox is refused with
 * 550 5.1.1 instead of bounced later to a possibly forged sender.
 */
#ifndef SLUICE_LMTP_VERIFY_H
#define SLUICE_LMTP_VERIFY_H

#include <stddef.h>

struct config;

#define LMTP_VERIFY_TEXT_MAX	200	/* kept of the server's reply */

enum lmtp_verify_status {
	LMTP_VERIFY_NONE,	/* not known yet: to be probed */
	LMTP_VERIFY_EXISTS,	/* 2xx to RCPT */
	LMTP_VERIFY_UNKNOWN,	/* 5xx to RCPT: refuse with 550 5.1.1 */
	LMTP_VERIFY_TEMPFAIL,	/* 4xx, timeout, refused: 451 4.4.3 */
};

struct lmtp_verify_addr {
	const char		*addr;	/* the caller's; as sent in RCPT TO */
	enum lmtp_verify_status	 status;
	char			 text[LMTP_VERIFY_TEXT_MAX]; /* UNKNOWN, TEMPFAIL */
};

/*
 * Fill v->status (and v->text) from the cache of earlier answers;
 * leaves LMTP_VERIFY_NONE when addr is not cached.  Thread-safe.
 */
void	lmtp_verify_cached(struct lmtp_verify_addr *v);
/*
 * Blocking, for a pool thread: ask the LMTP server at cfg->lmtp_address
 * about every entry still LMTP_VERIFY_NONE, in one session, and cache
 * the definite answers.  Every such entry has a status afterwards.
 */
void	lmtp_verify_probe(const struct config *, struct lmtp_verify_addr *v,
	    size_t n);

#endif
