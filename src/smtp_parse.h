/*
 * smtp_parse.h -- pure parsers of SMTP input: command lines, MAIL/RCPT
 * paths and parameters (RFC 5321 4.1, RFC 1870, 6152, 6531, 3461, 4954)
 * and the DATA/BDAT stream decoder.  No I/O, no allocation on the
 * command path; every input here is untrusted network bytes.
 */
#ifndef SLUICE_SMTP_PARSE_H
#define SLUICE_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* RFC 5321 4.5.3.1 */
#define SMTP_LOCAL_MAX		64
#define SMTP_DOMAIN_MAX		255
#define SMTP_PATH_MAX		256	/* including the angle brackets */
#define SMTP_ENVID_MAX		100	/* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX		500	/* RFC 3461 4.2, encoded */
#define SMTP_AUTH_PARAM_MAX	512

enum smtp_verb {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_HELO, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT,
	SMTP_CMD_DATA, SMTP_CMD_BDAT, SMTP_CMD_RSET, SMTP_CMD_NOOP,
	SMTP_CMD_QUIT, SMTP_CMD_HELP, SMTP_CMD_VRFY, SMTP_CMD_EXPN,
	SMTP_CMD_STARTTLS, SMTP_CMD_AUTH,
	SMTP_CMD_FORBIDDEN,	/* GET, POST, CONNECT, ...: cross-protocol junk */
	SMTP_CMD_COUNT
};

struct smtp_cmd {
	enum smtp_verb	 verb;
	const char	*arg;		/* after "VERB ", into the line; may be "" */
	size_t		 arglen;
};

/*
 * Split one command line (CRLF already removed) into verb and argument.
 * Verbs are case-insensitive.  "MAIL FROM:" / "RCPT TO:" keep everything
 * after the verb's space in arg.  Returns 0, or -1 when the line is not
 * "VERB" or "VERB SP arg" (e.g. contains NUL or a control character).
 */
int	smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd);

/* A parsed forward- or reverse-path. */
struct smtp_path {
	/* local "@" domain, source route removed, "" for the null path <>.
	 * The local part is kept as sent (quoted or dot-string), the domain
	 * as sent (compare it case-insensitively). */
	char	addr[SMTP_PATH_MAX + 1];
	size_t	at;		/* index of the '@' in addr, 0 for <> */
	int	is_null;	/* <> */
	int	quoted;		/* local part was a quoted-string */
	int	utf8;		/* has a byte >= 0x80 (needs SMTPUTF8) */
	int	literal;	/* domain is an address literal [..] */
};

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME,
    SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER	0x01
#define SMTP_NOTIFY_SUCCESS	0x02
#define SMTP_NOTIFY_FAILURE	0x04
#define SMTP_NOTIFY_DELAY	0x08

struct smtp_mail_args {
	struct smtp_path path;
	uint64_t	 size;		/* SIZE=, 0 when absent */
	int		 has_size;
	enum smtp_body	 body;
	int		 smtputf8;
	enum smtp_ret	 ret;
	char		 envid[SMTP_ENVID_MAX + 1];	/* xtext as sent */
	int		 has_auth;
	char		 auth[SMTP_AUTH_PARAM_MAX + 1];	/* AUTH= xtext */
};

struct smtp_rcpt_args {
	struct smtp_path path;
	unsigned	 notify;	/* SMTP_NOTIFY_*, 0 when absent */
	char		 orcpt[SMTP_ORCPT_MAX + 1];	/* "type;xtext" as sent */
};

/* Results of the MAIL/RCPT parsers; smtp_parse_reply() maps them. */
enum smtp_parse_err {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_SYNTAX,		/* 501 5.5.2 no "FROM:<", junk */
	SMTP_PARSE_BAD_ADDRESS,		/* 501 5.1.7 / 5.1.3 bad mailbox */
	SMTP_PARSE_PATH_TOO_LONG,	/* 501 5.5.4 / 553 */
	SMTP_PARSE_LOCAL_TOO_LONG,
	SMTP_PARSE_DOMAIN_TOO_LONG,
	SMTP_PARSE_NEEDS_SMTPUTF8,	/* 553 5.6.7 UTF-8 without SMTPUTF8 */
	SMTP_PARSE_UNKNOWN_PARAM,	/* 555 5.5.4 */
	SMTP_PARSE_BAD_PARAM,		/* 501 5.5.4 bad value or duplicate */
	SMTP_PARSE_NULL_RCPT,		/* RCPT TO:<> */
};

/* arg is what follows "MAIL " (i.e. starts with "FROM:"). */
enum smtp_parse_err smtp_parse_mail(const char *arg, size_t len,
	    struct smtp_mail_args *out);
/* arg follows "RCPT "; smtputf8 tells whether MAIL had SMTPUTF8. */
enum smtp_parse_err smtp_parse_rcpt(const char *arg, size_t len,
	    int smtputf8, struct smtp_rcpt_args *out);
/* Parse a path "<...>" alone (no parameters), as the above do. */
enum smtp_parse_err smtp_parse_path(const char *s, size_t len, int smtputf8,
	    struct smtp_path *out, size_t *consumed);
/* Full reply line (no CRLF) for an error, e.g. "555 5.5.4 Unsupported
 * parameter"; is_rcpt selects 5.1.3 over 5.1.7 and similar. */
const char *smtp_parse_reply(enum smtp_parse_err err, int is_rcpt);

/* Check an RFC 3461 xtext; returns 1 if well-formed. */
int	smtp_valid_xtext(const char *s, size_t len);
/* Check a HELO/EHLO argument: a domain or an address literal. */
int	smtp_valid_helo(const char *s, size_t len);

/*
 * The DATA/BDAT stream decoder.  DOT mode (DATA): removes dot-stuffing and
 * stops after CRLF.CRLF, the only end of data.  RAW mode (BDAT): passes
 * bytes through.  Both refuse a bare CR or bare LF anywhere (the SMTP
 * smuggling class) and lines longer than max_line octets including CRLF.
 * Errors are sticky: the decoder keeps scanning for the end of data so the
 * session stays in sync, but output stops.
 */
enum data_mode { DATA_MODE_DOT, DATA_MODE_RAW };

enum data_status {
	DATA_AGAIN = 0,		/* consumed everything, need more */
	DATA_DONE,		/* DOT: saw CRLF.CRLF (not part of output) */
};

enum data_error {
	DATA_ERR_NONE = 0,
	DATA_ERR_BARE_LF,
	DATA_ERR_BARE_CR,
	DATA_ERR_LINE_TOO_LONG,
};

struct data_decoder {
	enum data_mode	 mode;
	size_t		 max_line;
	size_t		 line_len;	/* octets of the current line so far */
	int		 state;		/* private */
	enum data_error	 error;		/* first error, sticky */
	uint64_t	 out_bytes;	/* octets emitted so far */
};

void	data_decoder_init(struct data_decoder *, enum data_mode,
	    size_t max_line);
/*
 * Decode in[0..len).  Appends message octets to out (none once an error
 * is set) and returns how many input octets were consumed.  In DOT mode,
 * on DATA_DONE the octets after the terminator are left unconsumed: they
 * are the next pipelined commands.
 */
size_t	data_decode(struct data_decoder *, const char *in, size_t len,
	    struct buf *out, enum data_status *status);
/*
 * RAW mode, after the last chunk: flags a trailing bare CR, and appends a
 * CRLF to out if the message did not end with one.  Returns error state.
 */
enum data_error data_decode_finish(struct data_decoder *, struct buf *out);

#endif
