/*
 * dsn.h -- delivery status notifications (RFC 3464, RFC 3461, RFC 6522):
 * builds the bounce, delay or success notice for one message as a
 * complete RFC 5322 message, ready to be queued from <>.
 */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

enum dsn_kind { DSN_FAILURE, DSN_DELAY, DSN_SUCCESS };

struct dsn_rcpt {
	const char	*addr;		/* Final-Recipient (rfc822;addr) */
	const char	*orcpt;		/* ORCPT as given ("rfc822;xtext") or NULL */
	const char	*status;	/* "5.1.1", "4.4.1", "2.0.0" */
	const char	*remote_mta;	/* MX host name, or NULL */
	const char	*diagnostic;	/* remote reply, or NULL */
	time_t		 last_attempt;	/* 0: none */
	const char	*action;	/* NULL: from the kind; or "relayed" */
};

struct dsn_info {
	enum dsn_kind	 kind;
	const char	*reporting_mta;	/* our hostname */
	const char	*queue_id;	/* original message's id */
	const char	*sender;	/* original sender: the notice's To */
	const char	*envid;		/* ENVID or NULL */
	time_t		 arrival;
	time_t		 now;
	int		 ret_hdrs;	/* RET=HDRS: headers only */
	const char	*msg;		/* original message */
	size_t		 msg_len;
	size_t		 max_returned;	/* larger originals: headers only */
	const struct dsn_rcpt *rcpts;
	size_t		 nrcpts;
	time_t		 retry_until;	/* DSN_DELAY: when we give up; 0: unknown */
};

/* Append the whole notice (headers, CRLF line endings) to out. */
void	dsn_build(const struct dsn_info *, struct buf *out);

#endif
