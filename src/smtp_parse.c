/*
 * smtp_parse.c -- pure parsers of SMTP input (see smtp_parse.h): command
 * lines, MAIL/RCPT paths and ESMTP parameters, and the DATA/BDAT stream
 * decoder.  Runs in the unprivileged SMTP worker.  Every byte handed to
 * these functions is untrusted network input: nothing here allocates on
 * the command path, trusts a NUL terminator, or may abort on bad input.
 */
#include <sys/types.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "smtp_parse.h"
#include "util.h"

#define SMTP_LABEL_MAX		63	/* RFC 1035 2.3.4 */
#define SMTP_LITERAL_MAX	64	/* fits any IPv6 text form */

/* Domain syntax flavours. */
#define DOM_LENIENT		0x01	/* HELO: allow '_' as real clients do */
#define DOM_ASCII		0x02	/* refuse bytes >= 0x80 */

/* Private data decoder states (struct data_decoder.state). */
enum data_state {
	DS_BOL,		/* at the start of a line */
	DS_MID,		/* inside a line */
	DS_CR,		/* saw a CR, want LF */
	DS_DOT,		/* DOT: saw "." at the start of a line */
	DS_DOT_CR,	/* DOT: saw "." CR at the start of a line */
	DS_DONE,	/* DOT: saw CRLF.CRLF */
};

/* A cursor over a path being parsed. */
struct path_cur {
	const unsigned char	*s;
	size_t			 len;
	size_t			 pos;
	int			 utf8;	/* saw a byte >= 0x80 */
};

/* Output of the data decoder, gathered into spans contiguous in input. */
struct data_emit {
	struct data_decoder	*d;
	struct buf		*out;
	const char		*start;
	size_t			 len;
};

typedef enum smtp_parse_err (*param_fn)(const char *, size_t, int, void *);

struct param_def {
	const char	*name;
	param_fn	 fn;
};

static enum smtp_parse_err param_size(const char *, size_t, int, void *);
static enum smtp_parse_err param_body(const char *, size_t, int, void *);
static enum smtp_parse_err param_smtputf8(const char *, size_t, int, void *);
static enum smtp_parse_err param_ret(const char *, size_t, int, void *);
static enum smtp_parse_err param_envid(const char *, size_t, int, void *);
static enum smtp_parse_err param_auth(const char *, size_t, int, void *);
static enum smtp_parse_err param_notify(const char *, size_t, int, void *);
static enum smtp_parse_err param_orcpt(const char *, size_t, int, void *);

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} smtp_verbs[] = {
	{ "HELO", SMTP_CMD_HELO },
	{ "EHLO", SMTP_CMD_EHLO },
	{ "MAIL", SMTP_CMD_MAIL },
	{ "RCPT", SMTP_CMD_RCPT },
	{ "DATA", SMTP_CMD_DATA },
	{ "BDAT", SMTP_CMD_BDAT },
	{ "RSET", SMTP_CMD_RSET },
	{ "NOOP", SMTP_CMD_NOOP },
	{ "QUIT", SMTP_CMD_QUIT },
	{ "HELP", SMTP_CMD_HELP },
	{ "VRFY", SMTP_CMD_VRFY },
	{ "EXPN", SMTP_CMD_EXPN },
	{ "STARTTLS", SMTP_CMD_STARTTLS },
	{ "AUTH", SMTP_CMD_AUTH },
	/* Cross-protocol junk: HTTP (incl. proxies' CONNECT) and POP3. */
	{ "GET", SMTP_CMD_FORBIDDEN },
	{ "POST", SMTP_CMD_FORBIDDEN },
	{ "PUT", SMTP_CMD_FORBIDDEN },
	{ "HEAD", SMTP_CMD_FORBIDDEN },
	{ "CONNECT", SMTP_CMD_FORBIDDEN },
	{ "OPTIONS", SMTP_CMD_FORBIDDEN },
	{ "DELETE", SMTP_CMD_FORBIDDEN },
	{ "TRACE", SMTP_CMD_FORBIDDEN },
	{ "PATCH", SMTP_CMD_FORBIDDEN },
	{ "USER", SMTP_CMD_FORBIDDEN },
	{ "PASS", SMTP_CMD_FORBIDDEN },
};

static const struct param_def mail_params[] = {
	{ "SIZE", param_size },		/* RFC 1870 */
	{ "BODY", param_body },		/* RFC 6152, RFC 3030 */
	{ "SMTPUTF8", param_smtputf8 },	/* RFC 6531 */
	{ "RET", param_ret },		/* RFC 3461 4.3 */
	{ "ENVID", param_envid },	/* RFC 3461 4.4 */
	{ "AUTH", param_auth },		/* RFC 4954 5 */
};

static const struct param_def rcpt_params[] = {
	{ "NOTIFY", param_notify },	/* RFC 3461 4.1 */
	{ "ORCPT", param_orcpt },	/* RFC 3461 4.2 */
};

/*
 * Command lines.
 */

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static int
is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* xtext's hexchar wants upper case, RFC 3461 4. */
static int
is_uhex(int c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F');
}

/* Same word, ASCII case-insensitively, and same length. */
static int
word_eq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && ascii_casecmp_n(s, word, len) == 0;
}

static enum smtp_verb
verb_lookup(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < nitems(smtp_verbs); i++)
		if (word_eq(s, len, smtp_verbs[i].name))
			return smtp_verbs[i].verb;
	return SMTP_CMD_UNKNOWN;
}

int
smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd)
{
	size_t i, vlen;

	cmd->verb = SMTP_CMD_UNKNOWN;
	cmd->arg = "";
	cmd->arglen = 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	/* Trailing blanks are harmless and some clients send them. */
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	if (vlen == 0)
		return -1;	/* empty line or leading space: no verb */
	cmd->verb = verb_lookup(line, vlen);
	/* RFC 5321 says one SP; tolerate more before the argument. */
	for (i = vlen; i < len && line[i] == ' '; i++)
		;
	if (i < len) {
		cmd->arg = line + i;
		cmd->arglen = len - i;
	}
	return 0;
}

/*
 * Paths, RFC 5321 4.1.2 with the RFC 6531 UTF-8 extensions.
 */

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629 4: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* RFC 5321 atext (RFC 5322 3.2.3) without the UTF-8 extension. */
static int
is_atext(int c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Consume one UTF-8 sequence; 0 when malformed. */
static int
path_utf8(struct path_cur *c)
{
	size_t n = utf8_seq_len(c->s + c->pos, c->len - c->pos);

	if (n == 0)
		return 0;
	c->pos += n;
	c->utf8 = 1;
	return 1;
}

/* Quoted-string: DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE */
static enum smtp_parse_err
path_quoted(struct path_cur *c)
{
	for (c->pos++; c->pos < c->len; ) {
		unsigned char ch = c->s[c->pos];

		if (ch == '"') {
			c->pos++;
			return SMTP_PARSE_OK;
		}
		if (ch == '\\') {
			if (++c->pos == c->len)
				break;
			if (c->s[c->pos] < 32 || c->s[c->pos] > 126)
				return SMTP_PARSE_BAD_ADDRESS;
			c->pos++;
		} else if (ch >= 0x80) {
			if (!path_utf8(c))
				return SMTP_PARSE_BAD_ADDRESS;
		} else if (ch >= 32 && ch <= 126)
			c->pos++;
		else
			return SMTP_PARSE_BAD_ADDRESS;
	}
	return SMTP_PARSE_SYNTAX;	/* ran off the end */
}

/* Dot-string: Atom *("." Atom), stops at the first other octet. */
static enum smtp_parse_err
path_dotstring(struct path_cur *c)
{
	size_t start = c->pos;
	int prev_dot = 1;

	while (c->pos < c->len) {
		unsigned char ch = c->s[c->pos];

		if (ch == '.') {
			if (prev_dot)
				return SMTP_PARSE_BAD_ADDRESS;
			prev_dot = 1;
			c->pos++;
			continue;
		}
		if (ch >= 0x80) {
			if (!path_utf8(c))
				return SMTP_PARSE_BAD_ADDRESS;
		} else if (is_atext(ch))
			c->pos++;
		else
			break;
		prev_dot = 0;
	}
	if (c->pos == c->len)
		return SMTP_PARSE_SYNTAX;
	if (c->pos == start || prev_dot)
		return SMTP_PARSE_BAD_ADDRESS;
	return SMTP_PARSE_OK;
}

/* Validate "[1.2.3.4]" or "[IPv6:...]" (RFC 5321 4.1.3) with inet_pton. */
static int
valid_addr_literal(const char *p, size_t n)
{
	char tmp[SMTP_LITERAL_MAX];
	unsigned char addr[16];
	int af = AF_INET;
	size_t i;

	if (n < 2 || p[0] != '[' || p[n - 1] != ']')
		return 0;
	p++;
	n -= 2;
	if (n >= 5 && ascii_casecmp_n(p, "IPv6:", 5) == 0) {
		af = AF_INET6;
		p += 5;
		n -= 5;
	}
	if (n == 0 || n >= sizeof(tmp))
		return 0;
	/* inet_pton wants a C string: refuse anything that could cut it. */
	for (i = 0; i < n; i++)
		if (!is_digit(p[i]) && p[i] != '.' && (af == AF_INET ||
		    (p[i] != ':' && !is_hex(p[i]))))
			return 0;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	return inet_pton(af, tmp, addr) == 1;
}

/* Label syntax: let-dig [ldh-str], RFC 5321 4.1.2; UTF-8 counts as a letter. */
static int
valid_label(const unsigned char *p, size_t n, int flags)
{
	int ascii = 1;
	size_t i;

	if (n == 0)
		return 0;
	if (!(flags & DOM_LENIENT) && (p[0] == '-' || p[n - 1] == '-'))
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i] >= 0x80) {
			if (flags & DOM_ASCII)
				return 0;
			ascii = 0;
		} else if (!is_alnum(p[i]) && p[i] != '-' &&
		    !(p[i] == '_' && (flags & DOM_LENIENT)))
			return 0;
	}
	/* A U-label's A-label form may fit where its UTF-8 form does not. */
	return !ascii || n <= SMTP_LABEL_MAX;
}

/* Labels separated by single dots; no empty label, so no trailing dot. */
static int
valid_domain(const unsigned char *p, size_t n, int flags)
{
	const unsigned char *dot;

	for (;;) {
		dot = memchr(p, '.', n);
		if (dot == NULL)
			return valid_label(p, n, flags);
		if (!valid_label(p, (size_t)(dot - p), flags))
			return 0;
		n -= (size_t)(dot - p) + 1;
		p = dot + 1;
	}
}

/* Scan a domain or address literal at c->pos; its span in *start, *dlen. */
static enum smtp_parse_err
path_domain(struct path_cur *c, size_t *start, size_t *dlen, int *literal)
{
	const unsigned char *end;

	*start = c->pos;
	*literal = 0;
	if (c->pos < c->len && c->s[c->pos] == '[') {
		end = memchr(c->s + c->pos, ']', c->len - c->pos);
		if (end == NULL)
			return SMTP_PARSE_SYNTAX;
		c->pos = (size_t)(end - c->s) + 1;
		*literal = 1;
	}
	while (!*literal && c->pos < c->len) {
		unsigned char ch = c->s[c->pos];

		if (ch >= 0x80) {
			if (!path_utf8(c))
				return SMTP_PARSE_BAD_ADDRESS;
		} else if (is_alnum(ch) || ch == '-' || ch == '.')
			c->pos++;
		else
			break;
	}
	*dlen = c->pos - *start;
	if (c->pos == c->len)
		return SMTP_PARSE_SYNTAX;
	if (*dlen > SMTP_DOMAIN_MAX)
		return SMTP_PARSE_DOMAIN_TOO_LONG;
	if (*literal ? !valid_addr_literal((const char *)c->s + *start, *dlen) :
	    !valid_domain(c->s + *start, *dlen, 0))
		return SMTP_PARSE_BAD_ADDRESS;
	return SMTP_PARSE_OK;
}

/*
 * Source route "@a,@b:" (RFC 5321 4.1.2 A-d-l): validated, then dropped as
 * RFC 5321 4.1.1.3 and appendix C allow.
 */
static enum smtp_parse_err
path_route(struct path_cur *c)
{
	enum smtp_parse_err err;
	size_t start, dlen;
	int literal;

	while (c->pos < c->len && c->s[c->pos] == '@') {
		c->pos++;
		if ((err = path_domain(c, &start, &dlen, &literal)) != 0)
			return err;
		if (literal)
			return SMTP_PARSE_BAD_ADDRESS;	/* At-domain is a Domain */
		if (c->s[c->pos] == ':') {
			c->pos++;
			return SMTP_PARSE_OK;
		}
		if (c->s[c->pos] != ',')
			return SMTP_PARSE_BAD_ADDRESS;
		c->pos++;
	}
	return c->pos < c->len ? SMTP_PARSE_BAD_ADDRESS : SMTP_PARSE_SYNTAX;
}

/* Parse the local part; *lstart, *llen give its span as sent. */
static enum smtp_parse_err
path_local(struct path_cur *c, size_t *lstart, size_t *llen, int *quoted)
{
	enum smtp_parse_err err;

	*lstart = c->pos;
	if (c->pos == c->len)
		return SMTP_PARSE_SYNTAX;
	*quoted = c->s[c->pos] == '"';
	err = *quoted ? path_quoted(c) : path_dotstring(c);
	*llen = c->pos - *lstart;
	if (err == SMTP_PARSE_OK && c->pos == c->len)
		err = SMTP_PARSE_SYNTAX;
	return err;
}

/*
 * "<postmaster>" without a domain, RFC 5321 4.5.1.  We store it as addr
 * "postmaster" (lowercased, the name is case-insensitive) with at equal to
 * strlen(addr), i.e. addr[at] is the NUL: callers that split on at see an
 * empty domain and can recognise the case without a special flag.
 */
static enum smtp_parse_err
path_postmaster(struct path_cur *c, size_t lstart, size_t llen, int quoted,
    struct smtp_path *out)
{
	if (quoted || !word_eq((const char *)c->s + lstart, llen, "postmaster"))
		return SMTP_PARSE_BAD_ADDRESS;
	c->pos++;	/* the '>' */
	strlcpy(out->addr, "postmaster", sizeof(out->addr));
	out->at = strlen(out->addr);
	return SMTP_PARSE_OK;
}

/* Check limits, then copy local "@" domain into out->addr. */
static enum smtp_parse_err
path_store(struct path_cur *c, size_t lstart, size_t llen, size_t dstart,
    size_t dlen, struct smtp_path *out)
{
	if (llen > SMTP_LOCAL_MAX)
		return SMTP_PARSE_LOCAL_TOO_LONG;
	if (dlen > SMTP_DOMAIN_MAX)
		return SMTP_PARSE_DOMAIN_TOO_LONG;
	/* addr never exceeds the path minus its brackets, checked later. */
	if (llen + 1 + dlen > SMTP_PATH_MAX - 2)
		return SMTP_PARSE_PATH_TOO_LONG;
	memcpy(out->addr, c->s + lstart, llen);
	out->addr[llen] = '@';
	memcpy(out->addr + llen + 1, c->s + dstart, dlen);
	out->addr[llen + 1 + dlen] = '\0';
	out->at = llen;
	return SMTP_PARSE_OK;
}

/* Everything after '<' (and any source route) up to and including '>'. */
static enum smtp_parse_err
path_mailbox(struct path_cur *c, struct smtp_path *out)
{
	enum smtp_parse_err err;
	size_t lstart, llen, dstart, dlen;

	if ((err = path_local(c, &lstart, &llen, &out->quoted)) != 0)
		return err;
	if (llen > SMTP_LOCAL_MAX)
		return SMTP_PARSE_LOCAL_TOO_LONG;
	if (c->s[c->pos] == '>')
		return path_postmaster(c, lstart, llen, out->quoted, out);
	if (c->s[c->pos] != '@')
		return SMTP_PARSE_BAD_ADDRESS;
	c->pos++;
	if ((err = path_domain(c, &dstart, &dlen, &out->literal)) != 0)
		return err;
	if (c->s[c->pos] != '>')
		return SMTP_PARSE_BAD_ADDRESS;
	c->pos++;
	return path_store(c, lstart, llen, dstart, dlen, out);
}

enum smtp_parse_err
smtp_parse_path(const char *s, size_t len, int smtputf8,
    struct smtp_path *out, size_t *consumed)
{
	struct path_cur c = { (const unsigned char *)s, len, 1, 0 };
	enum smtp_parse_err err;

	memset(out, 0, sizeof(*out));
	*consumed = 0;
	if (len < 2 || s[0] != '<')
		return SMTP_PARSE_SYNTAX;
	if (s[1] == '>') {
		out->is_null = 1;
		*consumed = 2;
		return SMTP_PARSE_OK;
	}
	if (s[1] == '@' && (err = path_route(&c)) != 0)
		return err;
	if ((err = path_mailbox(&c, out)) != 0)
		return err;
	/* RFC 5321 4.5.3.1.3: 256 octets with the punctuation, as sent. */
	if (c.pos > SMTP_PATH_MAX)
		return SMTP_PARSE_PATH_TOO_LONG;
	out->utf8 = c.utf8;
	if (c.utf8 && !smtputf8)
		return SMTP_PARSE_NEEDS_SMTPUTF8;
	*consumed = c.pos;
	return SMTP_PARSE_OK;
}

/*
 * ESMTP parameters, RFC 5321 4.1.2: SP-separated keyword["="value].
 */

int
smtp_valid_xtext(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			if (len - i < 3 || !is_uhex(s[i + 1]) ||
			    !is_uhex(s[i + 2]))
				return 0;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}

static enum smtp_parse_err
param_size(const char *v, size_t n, int hasval, void *arg)
{
	struct smtp_mail_args *a = arg;

	/* parse_u64n bounds it to 20 digits that fit uint64_t. */
	if (!hasval || parse_u64n(v, n, 0, UINT64_MAX, &a->size) == -1)
		return SMTP_PARSE_BAD_PARAM;
	a->has_size = 1;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_err
param_body(const char *v, size_t n, int hasval, void *arg)
{
	struct smtp_mail_args *a = arg;

	if (!hasval)
		return SMTP_PARSE_BAD_PARAM;
	if (word_eq(v, n, "7BIT"))
		a->body = SMTP_BODY_7BIT;
	else if (word_eq(v, n, "8BITMIME"))
		a->body = SMTP_BODY_8BITMIME;
	else if (word_eq(v, n, "BINARYMIME"))
		a->body = SMTP_BODY_BINARYMIME;
	else
		return SMTP_PARSE_BAD_PARAM;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_err
param_smtputf8(const char *v, size_t n, int hasval, void *arg)
{
	struct smtp_mail_args *a = arg;

	(void)v;
	(void)n;
	if (hasval)
		return SMTP_PARSE_BAD_PARAM;	/* RFC 6531 3.4: no value */
	a->smtputf8 = 1;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_err
param_ret(const char *v, size_t n, int hasval, void *arg)
{
	struct smtp_mail_args *a = arg;

	if (hasval && word_eq(v, n, "FULL"))
		a->ret = SMTP_RET_FULL;
	else if (hasval && word_eq(v, n, "HDRS"))
		a->ret = SMTP_RET_HDRS;
	else
		return SMTP_PARSE_BAD_PARAM;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_err
param_envid(const char *v, size_t n, int hasval, void *arg)
{
	struct smtp_mail_args *a = arg;

	if (!hasval || n > SMTP_ENVID_MAX || !smtp_valid_xtext(v, n))
		return SMTP_PARSE_BAD_PARAM;
	memcpy(a->envid, v, n);
	a->envid[n] = '\0';
	return SMTP_PARSE_OK;
}

static enum smtp_parse_err
param_auth(const char *v, size_t n, int hasval, void *arg)
{
	struct smtp_mail_args *a = arg;

	/* RFC 4954 5: AUTH=<> or AUTH=xtext(mailbox). */
	if (!hasval || n > SMTP_AUTH_PARAM_MAX ||
	    (!word_eq(v, n, "<>") && !smtp_valid_xtext(v, n)))
		return SMTP_PARSE_BAD_PARAM;
	memcpy(a->auth, v, n);
	a->auth[n] = '\0';
	a->has_auth = 1;
	return SMTP_PARSE_OK;
}

/* One NOTIFY list element to its flag, or 0. */
static unsigned
notify_flag(const char *v, size_t n)
{
	if (word_eq(v, n, "NEVER"))
		return SMTP_NOTIFY_NEVER;
	if (word_eq(v, n, "SUCCESS"))
		return SMTP_NOTIFY_SUCCESS;
	if (word_eq(v, n, "FAILURE"))
		return SMTP_NOTIFY_FAILURE;
	if (word_eq(v, n, "DELAY"))
		return SMTP_NOTIFY_DELAY;
	return 0;
}

/* RFC 3461 4.1: "NEVER" alone, or a list of SUCCESS, FAILURE, DELAY. */
static enum smtp_parse_err
param_notify(const char *v, size_t n, int hasval, void *arg)
{
	struct smtp_rcpt_args *a = arg;
	const char *comma;
	unsigned flags = 0, f;
	size_t elen;

	if (!hasval)
		return SMTP_PARSE_BAD_PARAM;
	for (;;) {
		comma = memchr(v, ',', n);
		elen = comma ? (size_t)(comma - v) : n;
		f = notify_flag(v, elen);
		if (f == 0 || (flags & f))	/* unknown, or repeated */
			return SMTP_PARSE_BAD_PARAM;
		flags |= f;
		if (comma == NULL)
			break;
		n -= elen + 1;
		v = comma + 1;
	}
	if ((flags & SMTP_NOTIFY_NEVER) && flags != SMTP_NOTIFY_NEVER)
		return SMTP_PARSE_BAD_PARAM;
	a->notify = flags;
	return SMTP_PARSE_OK;
}

/*
 * RFC 3461 4.2: addr-type ";" xtext, addr-type an atom (e.g. rfc822).
 * XXX: RFC 6533 utf-8-addr-xtext is not decoded, only checked as xtext.
 */
static enum smtp_parse_err
param_orcpt(const char *v, size_t n, int hasval, void *arg)
{
	struct smtp_rcpt_args *a = arg;
	const char *semi;
	size_t i, tlen;

	if (!hasval || n > SMTP_ORCPT_MAX ||
	    (semi = memchr(v, ';', n)) == NULL)
		return SMTP_PARSE_BAD_PARAM;
	tlen = (size_t)(semi - v);
	if (tlen == 0)
		return SMTP_PARSE_BAD_PARAM;
	for (i = 0; i < tlen; i++)
		if (!is_atext((unsigned char)v[i]))
			return SMTP_PARSE_BAD_PARAM;
	if (!smtp_valid_xtext(semi + 1, n - tlen - 1))
		return SMTP_PARSE_BAD_PARAM;
	memcpy(a->orcpt, v, n);
	a->orcpt[n] = '\0';
	return SMTP_PARSE_OK;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static int
valid_keyword(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !is_alnum((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* Dispatch one "keyword[=value]" to its handler; seen catches repeats. */
static enum smtp_parse_err
param_one(const char *p, size_t n, const struct param_def *defs,
    size_t ndefs, unsigned *seen, void *args)
{
	const char *eq = memchr(p, '=', n);
	size_t klen = eq ? (size_t)(eq - p) : n;
	size_t i;

	if (!valid_keyword(p, klen))
		return SMTP_PARSE_SYNTAX;
	for (i = 0; i < ndefs; i++) {
		if (!word_eq(p, klen, defs[i].name))
			continue;
		if (*seen & (1u << i))
			return SMTP_PARSE_BAD_PARAM;
		*seen |= 1u << i;
		if (eq != NULL && klen + 1 == n)
			return SMTP_PARSE_BAD_PARAM;	/* "KEY=" */
		return defs[i].fn(eq ? eq + 1 : "", eq ? n - klen - 1 : 0,
		    eq != NULL, args);
	}
	return SMTP_PARSE_UNKNOWN_PARAM;
}

/* The text after the path: empty, or SP then parameters. */
static enum smtp_parse_err
parse_params(const char *p, size_t n, const struct param_def *defs,
    size_t ndefs, void *args)
{
	enum smtp_parse_err err;
	unsigned seen = 0;
	const char *sp;
	size_t tlen;

	if (n > 0 && p[0] != ' ')
		return SMTP_PARSE_SYNTAX;	/* junk right after '>' */
	while (n > 0) {
		/* One SP per RFC 5321; more is tolerated, like trailing SP. */
		if (p[0] == ' ') {
			p++;
			n--;
			continue;
		}
		sp = memchr(p, ' ', n);
		tlen = sp ? (size_t)(sp - p) : n;
		if ((err = param_one(p, tlen, defs, ndefs, &seen, args)) != 0)
			return err;
		p += tlen;
		n -= tlen;
	}
	return SMTP_PARSE_OK;
}

/* "FROM:" / "TO:" then an optional SP; returns the offset of the path. */
static int
path_prefix(const char *arg, size_t len, const char *word, size_t *off)
{
	size_t wlen = strlen(word);

	if (len < wlen || ascii_casecmp_n(arg, word, wlen) != 0)
		return -1;
	/* "MAIL FROM: <a@b>" is common enough to accept (Postfix does). */
	if (wlen < len && arg[wlen] == ' ')
		wlen++;
	*off = wlen;
	return 0;
}

enum smtp_parse_err
smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out)
{
	enum smtp_parse_err err;
	size_t off, used;

	memset(out, 0, sizeof(*out));
	if (path_prefix(arg, len, "FROM:", &off) == -1)
		return SMTP_PARSE_SYNTAX;
	/* SMTPUTF8 follows the path, so judge UTF-8 once the params are in. */
	err = smtp_parse_path(arg + off, len - off, 1, &out->path, &used);
	if (err != SMTP_PARSE_OK)
		return err;
	if (!out->path.is_null && out->path.addr[out->path.at] == '\0')
		return SMTP_PARSE_BAD_ADDRESS;	/* <postmaster> is RCPT only */
	off += used;
	err = parse_params(arg + off, len - off, mail_params,
	    nitems(mail_params), out);
	if (err != SMTP_PARSE_OK)
		return err;
	if (out->path.utf8 && !out->smtputf8)
		return SMTP_PARSE_NEEDS_SMTPUTF8;
	return SMTP_PARSE_OK;
}

enum smtp_parse_err
smtp_parse_rcpt(const char *arg, size_t len, int smtputf8,
    struct smtp_rcpt_args *out)
{
	enum smtp_parse_err err;
	size_t off, used;

	memset(out, 0, sizeof(*out));
	if (path_prefix(arg, len, "TO:", &off) == -1)
		return SMTP_PARSE_SYNTAX;
	err = smtp_parse_path(arg + off, len - off, smtputf8, &out->path,
	    &used);
	if (err != SMTP_PARSE_OK)
		return err;
	if (out->path.is_null)
		return SMTP_PARSE_NULL_RCPT;
	off += used;
	return parse_params(arg + off, len - off, rcpt_params,
	    nitems(rcpt_params), out);
}

const char *
smtp_parse_reply(enum smtp_parse_err err, int is_rcpt)
{
	switch (err) {
	case SMTP_PARSE_OK:
		return is_rcpt ? "250 2.1.5 Ok" : "250 2.1.0 Ok";
	case SMTP_PARSE_SYNTAX:
		return is_rcpt ? "501 5.5.2 Syntax: RCPT TO:<address>" :
		    "501 5.5.2 Syntax: MAIL FROM:<address>";
	case SMTP_PARSE_BAD_ADDRESS:
		return is_rcpt ? "501 5.1.3 Bad recipient address syntax" :
		    "501 5.1.7 Bad sender address syntax";
	case SMTP_PARSE_PATH_TOO_LONG:
		return "501 5.5.4 Path too long";
	case SMTP_PARSE_LOCAL_TOO_LONG:
		return is_rcpt ? "553 5.1.3 Local part too long" :
		    "553 5.1.7 Local part too long";
	case SMTP_PARSE_DOMAIN_TOO_LONG:
		return is_rcpt ? "553 5.1.3 Domain too long" :
		    "553 5.1.7 Domain too long";
	case SMTP_PARSE_NEEDS_SMTPUTF8:
		return "553 5.6.7 UTF-8 address needs SMTPUTF8";
	case SMTP_PARSE_UNKNOWN_PARAM:
		return "555 5.5.4 Unsupported parameter";
	case SMTP_PARSE_BAD_PARAM:
		return "501 5.5.4 Invalid parameter value";
	case SMTP_PARSE_NULL_RCPT:
		return "501 5.1.3 Null recipient not allowed";
	}
	return "501 5.5.2 Syntax error";
}

/*
 * HELO/EHLO argument (RFC 5321 4.1.1.1).  Lenient on purpose: real clients
 * send underscores and single-label names; we only refuse what could not
 * be a host name at all (blanks, controls, non-ASCII, empty labels).
 */
int
smtp_valid_helo(const char *s, size_t len)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return 0;
	if (s[0] == '[')
		return valid_addr_literal(s, len);
	return valid_domain((const unsigned char *)s, len,
	    DOM_LENIENT | DOM_ASCII);
}

/*
 * The DATA/BDAT decoder.  Its reference semantics are byte by byte: a
 * byte that makes the line longer than max_line, a bare LF, or the byte
 * after a bare CR sets the (sticky) error, and out holds exactly what the
 * bytes before it decoded to.  The code below works on whole spans found
 * with memchr but keeps those semantics, so any split of the input gives
 * the same output, status and error (tests/fuzz/fuzz_data.c checks it).
 */

void
data_decoder_init(struct data_decoder *d, enum data_mode mode,
    size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	/* 0 means no limit. */
	d->max_line = max_line ? max_line : SIZE_MAX;
	d->state = DS_BOL;
	d->error = DATA_ERR_NONE;
}

static void
data_set_error(struct data_decoder *d, enum data_error err)
{
	if (d->error == DATA_ERR_NONE)
		d->error = err;
}

/*
 * Add n octets to the current line.  Returns how many of them may be
 * output: n, or fewer when they cross max_line, or 0 after an error.
 */
static size_t
data_count(struct data_decoder *d, size_t n)
{
	size_t room;

	if (d->error != DATA_ERR_NONE)
		return 0;
	room = d->max_line - d->line_len;	/* line_len <= max_line */
	if (n <= room) {
		d->line_len += n;
		return n;
	}
	d->line_len = d->max_line;
	d->error = DATA_ERR_LINE_TOO_LONG;
	return room;
}

static void
data_flush(struct data_emit *em)
{
	if (em->len == 0)
		return;
	buf_append(em->out, em->start, em->len);
	em->d->out_bytes += em->len;
	em->len = 0;
}

/* Queue p[0..n) for output, merged with the pending span if adjacent. */
static void
data_emit(struct data_emit *em, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (em->len == 0 || em->start + em->len != p) {
		data_flush(em);
		em->start = p;
	}
	em->len += n;
}

/* Inside a line: consume up to and including the next CR or LF. */
static size_t
data_scan(struct data_decoder *d, const char *p, size_t n,
    struct data_emit *em)
{
	const char *nl, *cr;
	size_t seg, text, ok;

	nl = memchr(p, '\n', n);
	seg = nl ? (size_t)(nl - p) : n;
	cr = memchr(p, '\r', seg);
	if (cr == NULL) {
		data_emit(em, p, data_count(d, seg));
		if (nl == NULL)
			return seg;
		data_set_error(d, DATA_ERR_BARE_LF);
		return seg + 1;
	}
	text = (size_t)(cr - p);
	if (cr + 1 == nl) {
		/* The common case: a whole "text CRLF" line at once. */
		ok = data_count(d, text + 2);
		data_emit(em, p, ok == text + 2 ? ok : (ok < text ? ok : text));
		d->line_len = 0;
		d->state = DS_BOL;
		return text + 2;
	}
	ok = data_count(d, text + 1);
	data_emit(em, p, ok < text ? ok : text);
	d->state = DS_CR;	/* the CR is output only with its LF */
	return text + 1;
}

/* The LF after a CR; i > 0 means the CR is in[i - 1], in this chunk. */
static void
data_crlf(struct data_decoder *d, const char *in, size_t i,
    struct data_emit *em)
{
	if (data_count(d, 1) == 1) {
		if (i > 0)
			data_emit(em, in + i - 1, 2);
		else {
			data_flush(em);
			buf_append(em->out, "\r\n", 2);
			d->out_bytes += 2;
		}
	}
	d->line_len = 0;
	d->state = DS_BOL;
}

/* Run the state machine on in[i]; returns octets consumed (maybe 0). */
static size_t
data_step(struct data_decoder *d, const char *in, size_t i, size_t len,
    struct data_emit *em)
{
	switch (d->state) {
	case DS_BOL:
		d->state = DS_MID;
		if (d->mode == DATA_MODE_DOT && in[i] == '.') {
			data_count(d, 1);	/* counted, never output */
			d->state = DS_DOT;
			return 1;
		}
		return 0;
	case DS_DOT:
		d->state = DS_MID;	/* ".x" -> "x": the dot is gone */
		if (in[i] != '\r')
			return 0;
		data_count(d, 1);
		d->state = DS_DOT_CR;
		return 1;
	case DS_CR:
	case DS_DOT_CR:
		if (in[i] != '\n') {
			data_set_error(d, DATA_ERR_BARE_CR);
			d->state = DS_MID;
			return 0;
		}
		if (d->state == DS_DOT_CR) {
			d->state = DS_DONE;
			return 1;
		}
		data_crlf(d, in, i, em);
		return 1;
	default:
		return data_scan(d, in + i, len - i, em);
	}
}

size_t
data_decode(struct data_decoder *d, const char *in, size_t len,
    struct buf *out, enum data_status *status)
{
	struct data_emit em = { d, out, NULL, 0 };
	size_t i = 0;

	*status = DATA_AGAIN;
	while (i < len && d->state != DS_DONE)
		i += data_step(d, in, i, len, &em);
	data_flush(&em);
	if (d->state == DS_DONE)
		*status = DATA_DONE;
	return i;
}

enum data_error
data_decode_finish(struct data_decoder *d, struct buf *out)
{
	if (d->mode != DATA_MODE_RAW)
		return d->error;
	if (d->state == DS_CR) {
		data_set_error(d, DATA_ERR_BARE_CR);
		d->state = DS_MID;
	}
	/* RFC 3030 2: the message must end with CRLF; supply it. */
	if (d->error == DATA_ERR_NONE && d->state == DS_MID) {
		buf_append(out, "\r\n", 2);
		d->out_bytes += 2;
		d->state = DS_BOL;
	}
	return d->error;
}
