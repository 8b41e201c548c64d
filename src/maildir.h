/*
 * maildir.h -- local delivery into a Maildir (tmp/ -> new/ with fsync),
 * readable by Dovecot and Python's mailbox.Maildir.
 */
#ifndef SLUICE_MAILDIR_H
#define SLUICE_MAILDIR_H

#include <stddef.h>
#include <stdint.h>

/*
 * Deliver len octets at off in fd (CRLF line endings, as spooled) into
 * the Maildir at path (created with tmp/new/cur if missing), prefixed by
 * the header lines in prepend (e.g. "Return-Path: <a@b>\r\nDelivered-To:
 * c@d\r\n").  Lines are stored with LF endings.  The file and new/ are
 * fsync'd before returning 0.  On failure returns -1 with a reason in err
 * and *temporary set (disk full, I/O error: 1; bad path: 0).
 */
int	maildir_deliver(const char *path, const char *prepend, int fd,
	    uint64_t off, uint64_t len, char *err, size_t errlen,
	    int *temporary);

#endif
