/*
 * dsn.c -- delivery status notifications (see dsn.h): a multipart/report
 * (RFC 6522) with a human-readable part, a message/delivery-status part
 * (RFC 3464) and the original message or its header section.  Run by the
 * queue/delivery side.  Untrusted inputs: remote replies (diagnostics),
 * the remote MX name, addresses, ENVID/ORCPT and the original message;
 * all but the original are cleaned of control and 8-bit octets and
 * folded, so no peer can inject a header line or a MIME boundary.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "dsn.h"
#include "util.h"

#define DSN_WIDTH	78	/* RFC 5322 2.1.1: SHOULD fit 78 */
#define DSN_LINE_MAX	990	/* RFC 5322 2.1.1: MUST fit 998 */
#define DSN_TEXT_MAX	4096	/* longer diagnostics are cut */
#define DSN_BOUNDARY_MAX 70	/* RFC 2046 5.1.1 */
#define DSN_DATE_MAX	64

static const char *dsn_kind_name[] = { "failure", "delay", "success" };
static const char *dsn_action[] = { "failed", "delayed", "delivered" };
static const char *dsn_subject[] = {
	"Undelivered Mail Returned to Sender",
	"Delayed Mail (still being retried)",
	"Successful Mail Delivery Report",
};

static void	dsn_clean(struct buf *, const char *, size_t);
static void	dsn_wrap(struct buf *, const char *, const char *,
		    const char *);
static void	dsn_field(struct buf *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	dsn_date_field(struct buf *, const char *, time_t);
static int	dsn_xtext_decode(const char *, struct buf *);
static int	dsn_in(const char *, const char *);
static int	dsn_has(const struct dsn_info *, const char *);
static void	dsn_boundary(const struct dsn_info *, char *, size_t);
static size_t	dsn_header_len(const char *, size_t);
static int	dsn_is_8bit(const char *, size_t);
static int	dsn_full_return(const struct dsn_info *);
static void	dsn_headers(const struct dsn_info *, const char *, int,
		    struct buf *);
static void	dsn_text_intro(const struct dsn_info *, struct buf *);
static void	dsn_text_part(const struct dsn_info *, struct buf *);
static void	dsn_status_rcpt(const struct dsn_info *,
		    const struct dsn_rcpt *, struct buf *);
static void	dsn_status_part(const struct dsn_info *, struct buf *);
static void	dsn_copy_crlf(struct buf *, const char *, size_t);
static void	dsn_original_part(const struct dsn_info *, struct buf *);

/*
 * Text helpers.
 */

/*
 * Append s with runs of white space and line ends as one space, other
 * control and 8-bit octets as '?' (the parts are us-ascii), cut at max.
 * XXX: RFC 6533 (message/global-delivery-status) would keep UTF-8.
 */
static void
dsn_clean(struct buf *out, const char *s, size_t max)
{
	size_t n = 0;
	int sp = 0;

	for (; s != NULL && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			sp = 1;
			continue;
		}
		if (n >= max) {
			buf_append(out, "...", 3);
			return;
		}
		if (sp && n > 0) {
			buf_appendc(out, ' ');
			n++;
		}
		sp = 0;
		buf_appendc(out, ch < 0x20 || ch >= 0x7f ? '?' : (char)ch);
		n++;
	}
}

/*
 * Append prefix and the words of text (already cleaned), folding before a
 * word that would pass DSN_WIDTH; a continuation line starts with cont.
 * A word too long for any line is broken at DSN_LINE_MAX.
 */
static void
dsn_wrap(struct buf *out, const char *prefix, const char *text,
    const char *cont)
{
	size_t col = strlen(prefix), clen = strlen(cont), n, piece;
	int fresh = 0;

	buf_append(out, prefix, col);
	while (*text != '\0') {
		while (*text == ' ')
			text++;
		if ((n = strcspn(text, " ")) == 0)
			break;
		if (!fresh && col + 1 + n > DSN_WIDTH) {
			buf_appendf(out, "\r\n%s", cont);
			col = clen;
		} else {
			buf_appendc(out, ' ');
			col++;
		}
		while (col + n > DSN_LINE_MAX) {
			piece = DSN_LINE_MAX - col;
			buf_append(out, text, piece);
			buf_appendf(out, "\r\n%s", cont);
			text += piece;
			n -= piece;
			col = clen;
		}
		buf_append(out, text, n);
		text += n;
		col += n;
		fresh = 0;
	}
	buf_append(out, "\r\n", 2);
}

/* "Name: value" with the formatted value cleaned and folded. */
static void
dsn_field(struct buf *out, const char *name, const char *fmt, ...)
{
	struct buf raw, clean;
	char prefix[64];
	va_list ap;
	int n;

	buf_init(&raw);
	buf_init(&clean);
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(&raw, n > 0 ? (size_t)n : 0);
	va_start(ap, fmt);
	vsnprintf(raw.data, raw.cap, fmt, ap);
	va_end(ap);
	dsn_clean(&clean, raw.data, DSN_TEXT_MAX);
	snprintf(prefix, sizeof(prefix), "%s:", name);
	dsn_wrap(out, prefix, buf_cstr(&clean), " ");
	buf_free(&raw);
	buf_free(&clean);
}

static void
dsn_date_field(struct buf *out, const char *name, time_t t)
{
	char date[DSN_DATE_MAX];

	rfc5322_date(date, sizeof(date), t);
	buf_appendf(out, "%s: %s\r\n", name, date);
}

/* RFC 3461 4: decode xtext ("+HH" escapes); -1 unless printable ASCII. */
static int
dsn_xtext_decode(const char *s, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *h, *l;
	int ch;

	for (; *s != '\0'; s++) {
		ch = (unsigned char)*s;
		if (ch == '+') {
			if (s[1] == '\0' || s[2] == '\0' ||
			    (h = strchr(hex, s[1])) == NULL ||
			    (l = strchr(hex, s[2])) == NULL)
				return -1;
			ch = (int)((h - hex) * 16 + (l - hex));
			s += 2;
		}
		if (ch < 0x20 || ch >= 0x7f)
			return -1;
		buf_appendc(out, (char)ch);
	}
	return 0;
}

/*
 * The boundary.
 */

static int
dsn_in(const char *hay, const char *s)
{
	return hay != NULL && strstr(hay, s) != NULL;
}

/* Does s occur anywhere a boundary could be confused with it? */
static int
dsn_has(const struct dsn_info *info, const char *s)
{
	const struct dsn_rcpt *r;
	size_t i;

	if (info->msg != NULL && memmem(info->msg, info->msg_len, s,
	    strlen(s)) != NULL)
		return 1;
	if (dsn_in(info->envid, s) || dsn_in(info->sender, s))
		return 1;
	for (i = 0; i < info->nrcpts; i++) {
		r = &info->rcpts[i];
		if (dsn_in(r->addr, s) || dsn_in(r->orcpt, s) ||
		    dsn_in(r->remote_mta, s) || dsn_in(r->diagnostic, s))
			return 1;
	}
	return 0;
}

/*
 * "<queue id>.<time>/<host>" as Postfix does, kept to RFC 2046 bcharsnospace
 * and 70 octets, with ".<n>" added until it occurs in nothing we enclose
 * (RFC 2046 5.1.1: it must not appear in the encapsulated material).
 */
static void
dsn_boundary(const struct dsn_info *info, char *dst, size_t len)
{
	char base[DSN_BOUNDARY_MAX - 10 + 1], *p;
	unsigned n;

	snprintf(base, sizeof(base), "%s.%lld/%s", info->queue_id,
	    (long long)info->now, info->reporting_mta);
	for (p = base; *p != '\0'; p++)
		if (strchr("'()+_,-./:=?", *p) == NULL &&
		    !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z')))
			*p = '_';
	strlcpy(dst, base, len);
	for (n = 1; dsn_has(info, dst); n++)
		snprintf(dst, len, "%s.%u", base, n);
}

/*
 * The original message.
 */

/* Octets of the header section, up to and including the CRLF before the
 * empty line (all of msg if there is no body). */
static size_t
dsn_header_len(const char *msg, size_t len)
{
	size_t i;

	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 0;
	for (i = 0; i + 1 < len; i++)
		if (msg[i] == '\n' && (msg[i + 1] == '\n' || (i + 2 < len &&
		    msg[i + 1] == '\r' && msg[i + 2] == '\n')))
			return i + 1;
	return len;
}

static int
dsn_is_8bit(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* The whole original goes back: failure and delay, unless RET=HDRS or
 * too large (RFC 3461 4.3; RFC 3462 on returning only headers). */
static int
dsn_full_return(const struct dsn_info *info)
{
	return info->kind != DSN_SUCCESS && !info->ret_hdrs &&
	    info->msg_len <= info->max_returned;
}

/* Copy with every line ending as CRLF, the last line terminated too. */
static void
dsn_copy_crlf(struct buf *out, const char *s, size_t n)
{
	size_t i, start = 0;

	buf_reserve(out, n + n / 32 + 2);
	for (i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			continue;
		buf_append(out, s + start, i - start);
		buf_append(out, "\r\n", 2);
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	buf_append(out, s + start, n - start);
	if (start < n)
		buf_append(out, "\r\n", 2);
}

static void
dsn_original_part(const struct dsn_info *info, struct buf *out)
{
	static const char *what[] = { "Undelivered Message",
	    "Delayed Message", "Delivered Message" };
	size_t n = info->msg != NULL ? info->msg_len : 0;
	int full = dsn_full_return(info);

	if (!full)
		n = dsn_header_len(info->msg, n);
	buf_appendf(out, "Content-Description: %s%s\r\n", what[info->kind],
	    full ? "" : " Headers");
	buf_appendf(out, "Content-Type: %s\r\n",
	    full ? "message/rfc822" : "text/rfc822-headers");
	/* RFC 2046 5.2.1: message/rfc822 may be 7bit, 8bit or binary. */
	if (dsn_is_8bit(info->msg, n))
		buf_appendf(out, "Content-Transfer-Encoding: 8bit\r\n");
	buf_append(out, "\r\n", 2);
	if (n > 0)
		dsn_copy_crlf(out, info->msg, n);
}

/*
 * The notice.
 */

static void
dsn_headers(const struct dsn_info *info, const char *boundary, int is8bit,
    struct buf *out)
{
	char date[DSN_DATE_MAX];

	rfc5322_date(date, sizeof(date), info->now);
	dsn_field(out, "From", "Mail Delivery System <MAILER-DAEMON@%s>",
	    info->reporting_mta);
	dsn_field(out, "To", "<%s>", info->sender);
	buf_appendf(out, "Subject: %s\r\n", dsn_subject[info->kind]);
	buf_appendf(out, "Date: %s\r\n", date);
	dsn_field(out, "Message-ID", "<%s.%s.%lld@%s>", info->queue_id,
	    dsn_kind_name[info->kind], (long long)info->now,
	    info->reporting_mta);
	/* RFC 3834 5: no auto-replies to this one. */
	buf_appendf(out, "Auto-Submitted: auto-replied\r\n");
	buf_appendf(out, "MIME-Version: 1.0\r\n");
	/* RFC 6522 3: report-type is delivery-status for RFC 3464. */
	buf_appendf(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	buf_appendf(out, "Content-Transfer-Encoding: %s\r\n",
	    is8bit ? "8bit" : "7bit");
	buf_appendf(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");
}

static void
dsn_text_intro(const struct dsn_info *info, struct buf *out)
{
	long days;

	buf_appendf(out, "This is the mail system at host %s.\r\n\r\n",
	    info->reporting_mta);
	switch (info->kind) {
	case DSN_FAILURE:
		buf_appendf(out, "I'm sorry to have to inform you that your "
		    "message could not\r\nbe delivered to one or more "
		    "recipients. It's attached below.\r\n\r\n"
		    "For further assistance, please send mail to "
		    "postmaster.\r\n\r\nIf you do so, please include this "
		    "problem report. You can\r\ndelete your own text from "
		    "the attached returned message.\r\n");
		break;
	case DSN_DELAY:
		buf_appendf(out, "#######################################"
		    "#############################\r\n# THIS IS A WARNING "
		    "ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
		    "#######################################"
		    "#############################\r\n\r\n"
		    "Your message has not yet been delivered to one or more "
		    "recipients,\r\nfor the reasons below.\r\n\r\n");
		days = (long)((info->retry_until - info->arrival + 43199) /
		    86400);
		if (info->retry_until > info->arrival)
			buf_appendf(out, "The mail system will keep trying "
			    "until the message is %ld day%s old.\r\n", days,
			    days == 1 ? "" : "s");
		else
			buf_appendf(out, "The mail system will keep trying "
			    "to deliver it.\r\n");
		break;
	case DSN_SUCCESS:
		buf_appendf(out, "Your message was successfully delivered to "
		    "the destination(s)\r\nlisted below. If the message was "
		    "delivered to a mailbox you will\r\nreceive no further "
		    "notifications. Otherwise you may still receive\r\n"
		    "notifications of mail delivery errors from other "
		    "systems.\r\n");
		break;
	}
	buf_appendf(out, "\r\n%*s The mail system\r\n", 18, "");
}

static void
dsn_text_part(const struct dsn_info *info, struct buf *out)
{
	const struct dsn_rcpt *r;
	struct buf text, prefix;
	size_t i;

	buf_appendf(out, "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	dsn_text_intro(info, out);
	buf_init(&text);
	buf_init(&prefix);
	for (i = 0; i < info->nrcpts; i++) {
		r = &info->rcpts[i];
		buf_reset(&text);
		buf_reset(&prefix);
		buf_appendc(&prefix, '<');
		dsn_clean(&prefix, r->addr, DSN_TEXT_MAX);
		buf_appendc(&prefix, '>');
		buf_appendc(&prefix, ':');
		if (r->remote_mta != NULL) {
			buf_appendf(&text, "host ");
			dsn_clean(&text, r->remote_mta, 255);
			buf_appendf(&text, " said: ");
		}
		dsn_clean(&text, r->diagnostic != NULL ? r->diagnostic :
		    info->kind == DSN_SUCCESS ? "delivery successful" :
		    r->status, DSN_TEXT_MAX);
		buf_append(out, "\r\n", 2);
		dsn_wrap(out, buf_cstr(&prefix), buf_cstr(&text), "    ");
	}
	buf_free(&text);
	buf_free(&prefix);
}

static void
dsn_status_rcpt(const struct dsn_info *info, const struct dsn_rcpt *r,
    struct buf *out)
{
	struct buf dec;
	const char *semi;

	buf_init(&dec);
	/* RFC 3464 2.3.1: the ORCPT address type and decoded address. */
	if (r->orcpt != NULL && (semi = strchr(r->orcpt, ';')) != NULL &&
	    dsn_xtext_decode(semi + 1, &dec) == 0)
		dsn_field(out, "Original-Recipient", "%.*s;%s",
		    (int)(semi - r->orcpt), r->orcpt, buf_cstr(&dec));
	else if (r->orcpt != NULL)
		dsn_field(out, "Original-Recipient", "%s", r->orcpt);
	buf_free(&dec);
	dsn_field(out, "Final-Recipient", "rfc822; %s", r->addr);
	buf_appendf(out, "Action: %s\r\n", r->action ? r->action :
	    dsn_action[info->kind]);
	dsn_field(out, "Status", "%s", r->status);
	if (r->remote_mta != NULL)
		dsn_field(out, "Remote-MTA", "dns; %s", r->remote_mta);
	if (r->diagnostic != NULL)
		dsn_field(out, "Diagnostic-Code", "smtp; %s", r->diagnostic);
	if (r->last_attempt != 0)
		dsn_date_field(out, "Last-Attempt-Date", r->last_attempt);
	if (info->kind == DSN_DELAY && info->retry_until != 0)
		dsn_date_field(out, "Will-Retry-Until", info->retry_until);
}

/* RFC 3464 2.1: per-message fields, then one block per recipient. */
static void
dsn_status_part(const struct dsn_info *info, struct buf *out)
{
	struct buf dec;
	size_t i;

	buf_appendf(out, "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	if (info->envid != NULL) {
		/* RFC 3464 2.2.1, RFC 3461 4.4: the decoded ENVID. */
		buf_init(&dec);
		if (dsn_xtext_decode(info->envid, &dec) == -1) {
			buf_reset(&dec);
			buf_appendf(&dec, "%s", info->envid);
		}
		dsn_field(out, "Original-Envelope-Id", "%s", buf_cstr(&dec));
		buf_free(&dec);
	}
	dsn_field(out, "Reporting-MTA", "dns; %s", info->reporting_mta);
	dsn_date_field(out, "Arrival-Date", info->arrival);
	dsn_field(out, "X-Sluice-Queue-ID", "%s", info->queue_id);
	for (i = 0; i < info->nrcpts; i++) {
		buf_append(out, "\r\n", 2);
		dsn_status_rcpt(info, &info->rcpts[i], out);
	}
}

void
dsn_build(const struct dsn_info *info, struct buf *out)
{
	char boundary[DSN_BOUNDARY_MAX + 1];
	size_t n = info->msg != NULL ? info->msg_len : 0;

	if (!dsn_full_return(info))
		n = dsn_header_len(info->msg, n);
	dsn_boundary(info, boundary, sizeof(boundary));
	dsn_headers(info, boundary, dsn_is_8bit(info->msg, n), out);
	buf_appendf(out, "--%s\r\n", boundary);
	dsn_text_part(info, out);
	buf_appendf(out, "\r\n--%s\r\n", boundary);
	dsn_status_part(info, out);
	buf_appendf(out, "\r\n--%s\r\n", boundary);
	dsn_original_part(info, out);
	buf_appendf(out, "\r\n--%s--\r\n", boundary);
}
