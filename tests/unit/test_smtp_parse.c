/*
 * test_smtp_parse.c -- unit tests of the command, path, parameter, xtext
 * and HELO parsers in smtp_parse.c.
 */
#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "smtp_parse.h"
#include "util.h"

#define S(x)	(x), strlen(x)

/*
 * Helpers.
 */

/* Like assert_int_equal, naming the input that failed. */
static void
expect(int got, int want, const char *input)
{
	if (got != want)
		fail_msg("\"%s\": got %d, want %d", input, got, want);
}

static enum smtp_parse_err
mail(const char *arg, struct smtp_mail_args *a)
{
	return smtp_parse_mail(arg, strlen(arg), a);
}

static enum smtp_parse_err
mail_err(const char *arg)
{
	struct smtp_mail_args a;

	return smtp_parse_mail(arg, strlen(arg), &a);
}

static enum smtp_parse_err
rcpt(const char *arg, int utf8, struct smtp_rcpt_args *a)
{
	return smtp_parse_rcpt(arg, strlen(arg), utf8, a);
}

static enum smtp_parse_err
rcpt_err(const char *arg, int utf8)
{
	struct smtp_rcpt_args a;

	return smtp_parse_rcpt(arg, strlen(arg), utf8, &a);
}

/* prefix + local "@" domain ">", from runs of 'a' and 63-octet labels. */
static char *
long_path(char *dst, size_t dstlen, const char *prefix, size_t local,
    size_t domain)
{
	size_t n, i;

	n = strlcpy(dst, prefix, dstlen);
	assert_true(n + local + domain + 3 < dstlen);
	for (i = 0; i < local; i++)
		dst[n++] = 'a';
	dst[n++] = '@';
	for (i = 0; i < domain; i++)
		dst[n++] = (i % 64 == 63 && i + 1 < domain) ? '.' : 'b';
	dst[n++] = '>';
	dst[n] = '\0';
	return dst;
}

/*
 * smtp_parse_command
 */

static void
test_command_verbs(void **state)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
	} t[] = {
		{ "HELO x", SMTP_CMD_HELO }, { "EHLO x", SMTP_CMD_EHLO },
		{ "MAIL FROM:<>", SMTP_CMD_MAIL },
		{ "RCPT TO:<a@b>", SMTP_CMD_RCPT }, { "DATA", SMTP_CMD_DATA },
		{ "BDAT 10 LAST", SMTP_CMD_BDAT }, { "RSET", SMTP_CMD_RSET },
		{ "NOOP", SMTP_CMD_NOOP }, { "QUIT", SMTP_CMD_QUIT },
		{ "HELP", SMTP_CMD_HELP }, { "VRFY a", SMTP_CMD_VRFY },
		{ "EXPN a", SMTP_CMD_EXPN }, { "STARTTLS", SMTP_CMD_STARTTLS },
		{ "AUTH PLAIN", SMTP_CMD_AUTH },
		{ "mail from:<>", SMTP_CMD_MAIL }, { "QuIt", SMTP_CMD_QUIT },
		{ "starttls", SMTP_CMD_STARTTLS },
	};
	struct smtp_cmd cmd;
	size_t i;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		assert_int_equal(smtp_parse_command(S(t[i].line), &cmd), 0);
		assert_int_equal(cmd.verb, t[i].verb);
	}
}

static void
test_command_args(void **state)
{
	struct smtp_cmd cmd;

	(void)state;
	assert_int_equal(smtp_parse_command(S("MAIL FROM:<a@b> SIZE=1"),
	    &cmd), 0);
	assert_int_equal(cmd.arglen, strlen("FROM:<a@b> SIZE=1"));
	assert_memory_equal(cmd.arg, "FROM:<a@b> SIZE=1", cmd.arglen);

	assert_int_equal(smtp_parse_command(S("DATA"), &cmd), 0);
	assert_int_equal(cmd.arglen, 0);
	assert_string_equal(cmd.arg, "");

	/* Extra spaces before the argument and trailing blanks tolerated. */
	assert_int_equal(smtp_parse_command(S("EHLO   host.example \t"),
	    &cmd), 0);
	assert_int_equal(cmd.verb, SMTP_CMD_EHLO);
	assert_int_equal(cmd.arglen, strlen("host.example"));
	assert_memory_equal(cmd.arg, "host.example", cmd.arglen);

	assert_int_equal(smtp_parse_command(S("QUIT "), &cmd), 0);
	assert_int_equal(cmd.verb, SMTP_CMD_QUIT);
	assert_int_equal(cmd.arglen, 0);

	/* HTAB is allowed inside the argument. */
	assert_int_equal(smtp_parse_command(S("NOOP a\tb"), &cmd), 0);
	assert_int_equal(cmd.arglen, 3);
}

static void
test_command_forbidden(void **state)
{
	static const char *t[] = {
		"GET / HTTP/1.1", "POST /x HTTP/1.0", "PUT /", "HEAD /",
		"CONNECT mx.example:25 HTTP/1.1", "OPTIONS *", "get /",
		"USER bob", "PASS secret", "DELETE /", "TRACE /",
	};
	struct smtp_cmd cmd;
	size_t i;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		assert_int_equal(smtp_parse_command(S(t[i]), &cmd), 0);
		assert_int_equal(cmd.verb, SMTP_CMD_FORBIDDEN);
	}
}

static void
test_command_unknown(void **state)
{
	static const char *t[] = {
		"XYZZY", "MAILFROM:<a@b>", "MAI", "HELOx", "Host: example",
		"\xff\xfe", "EHLO\tx", "DATAX",
	};
	struct smtp_cmd cmd;
	size_t i;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		assert_int_equal(smtp_parse_command(S(t[i]), &cmd), 0);
		assert_int_equal(cmd.verb, SMTP_CMD_UNKNOWN);
	}
}

static void
test_command_bad(void **state)
{
	struct smtp_cmd cmd;

	(void)state;
	assert_int_equal(smtp_parse_command("NOOP\0x", 6, &cmd), -1);
	assert_int_equal(smtp_parse_command(S("NOOP\r"), &cmd), -1);
	assert_int_equal(smtp_parse_command(S("NO\nOP"), &cmd), -1);
	assert_int_equal(smtp_parse_command(S("NOOP \x1b[1m"), &cmd), -1);
	assert_int_equal(smtp_parse_command(S("NOOP \x7f"), &cmd), -1);
	assert_int_equal(smtp_parse_command(S(""), &cmd), -1);
	assert_int_equal(smtp_parse_command(S("   "), &cmd), -1);
	assert_int_equal(smtp_parse_command(S(" QUIT"), &cmd), -1);
}

/*
 * smtp_parse_mail
 */

static void
test_mail_basic(void **state)
{
	struct smtp_mail_args a;

	(void)state;
	assert_int_equal(mail("FROM:<alice@example.org>", &a), 0);
	assert_string_equal(a.path.addr, "alice@example.org");
	assert_int_equal(a.path.at, 5);
	assert_false(a.path.is_null || a.path.quoted || a.path.utf8 ||
	    a.path.literal || a.has_size || a.smtputf8 || a.has_auth);
	assert_int_equal(a.body, SMTP_BODY_NONE);
	assert_int_equal(a.ret, SMTP_RET_NONE);

	assert_int_equal(mail("from:<A.B-c+tag@Sub.Example.ORG>", &a), 0);
	assert_string_equal(a.path.addr, "A.B-c+tag@Sub.Example.ORG");

	/* One optional space after the colon. */
	assert_int_equal(mail("FROM: <a@b.c>", &a), 0);
	assert_string_equal(a.path.addr, "a@b.c");
	assert_int_equal(mail_err("FROM:  <a@b.c>"), SMTP_PARSE_SYNTAX);

	assert_int_equal(mail("FROM:<>", &a), 0);
	assert_true(a.path.is_null);
	assert_string_equal(a.path.addr, "");
	assert_int_equal(a.path.at, 0);

	assert_int_equal(mail("FROM:<!#$%&'*+-/=?^_`{|}~@x.y>", &a), 0);
	assert_int_equal(mail("FROM:<a@x>", &a), 0);	/* single label */
	assert_int_equal(mail("FROM:<a@1-2.x9>", &a), 0);
}

static void
test_mail_syntax(void **state)
{
	static const char *t[] = {
		"", "FROM", "FROM:", "FROM:a@b.c", "FRM:<a@b.c>",
		"TO:<a@b.c>", "FROM:<a@b.c", "FROM:<a@b.c>x", "FROM:<>x",
		"FROM:<", "FROM:<a", "FROM:<a@", "FROM:<\"abc",
		"FROM:<a@b.c> @@", "FROM:<a@b.c> =1", "FROM:<a@b.c> -X",
		"FROM:<@a.b", "FROM:<a@[1.2.3.4",
		"FROM:\t<a@b.c>", "FROM :<a@b.c>",
	};
	size_t i;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		expect(mail_err(t[i]), SMTP_PARSE_SYNTAX, t[i]);
	}
}

static void
test_mail_bad_address(void **state)
{
	static const char *t[] = {
		"FROM:<a b@c.d>", "FROM:<a@b c.d>", "FROM:<a@b.c.>",
		"FROM:<a@.b.c>", "FROM:<a@b..c>", "FROM:<a@-b.c>",
		"FROM:<a@b-.c>", "FROM:<a@b_c.d>", "FROM:<.a@b.c>",
		"FROM:<a.@b.c>", "FROM:<a..b@c.d>", "FROM:<@b.c>",
		"FROM:<a>", "FROM:<postmaster>", "FROM:<a@>",
		"FROM:<a@b@c.d>", "FROM:<a\x01@b.c>", "FROM:<a@b\x01.c>",
		"FROM:<a(b)@c.d>", "FROM:<\"a\x01\"@b.c>", "FROM:<\"a\\\x01\"@b.c>",
		"FROM:<\"a\"b@c.d>", "FROM:<a@[1.2.3]>", "FROM:<a@[1.2.3.256]>",
		"FROM:<a@[IPv6:1::2::3]>", "FROM:<a@[IPv6:1.2.3.4]>",
		"FROM:<a@[::1]>", "FROM:<a@[x-tag:foo]>", "FROM:<a@[]>",
		"FROM:<a@[1.2.3.4]x>", "FROM:<a@[IPv6:fe80::1%eth0]>",
		"FROM:<@a.b,c.d:u@e.f>", "FROM:<@a.b:>", "FROM:<@a.b;u@c.d>",
		"FROM:<@[1.2.3.4]:u@c.d>", "FROM:<@a..b:u@c.d>",
		"FROM:<a@b.c\xff>",
	};
	size_t i;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		expect(mail_err(t[i]), SMTP_PARSE_BAD_ADDRESS, t[i]);
	}
}

static void
test_mail_quoted(void **state)
{
	struct smtp_mail_args a;

	(void)state;
	assert_int_equal(mail("FROM:<\"john doe\"@example.org>", &a), 0);
	assert_true(a.path.quoted);
	assert_string_equal(a.path.addr, "\"john doe\"@example.org");
	assert_int_equal(a.path.at, 10);

	/* Quoted pairs and specials, kept exactly as sent. */
	assert_int_equal(mail("FROM:<\"a\\\"b\\\\c@<>,:\"@x.y>", &a), 0);
	assert_string_equal(a.path.addr, "\"a\\\"b\\\\c@<>,:\"@x.y");
	assert_int_equal(a.path.addr[a.path.at], '@');
	assert_int_equal(a.path.at, strlen("\"a\\\"b\\\\c@<>,:\""));

	assert_int_equal(mail("FROM:<\"\"@x.y>", &a), 0);
	assert_string_equal(a.path.addr, "\"\"@x.y");
	assert_int_equal(mail("FROM:<\"a>b\"@x.y>", &a), 0);
	assert_string_equal(a.path.addr, "\"a>b\"@x.y");
}

static void
test_mail_literal(void **state)
{
	struct smtp_mail_args a;

	(void)state;
	assert_int_equal(mail("FROM:<a@[192.0.2.1]>", &a), 0);
	assert_true(a.path.literal);
	assert_string_equal(a.path.addr, "a@[192.0.2.1]");
	assert_int_equal(mail("FROM:<a@[IPv6:2001:db8::1]>", &a), 0);
	assert_true(a.path.literal);
	assert_int_equal(mail("FROM:<a@[ipv6:::1]>", &a), 0);
	assert_int_equal(mail("FROM:<a@[IPv6:::ffff:192.0.2.1]>", &a), 0);
	assert_string_equal(a.path.addr, "a@[IPv6:::ffff:192.0.2.1]");
}

static void
test_mail_source_route(void **state)
{
	struct smtp_mail_args a;
	struct smtp_rcpt_args r;

	(void)state;
	assert_int_equal(mail("FROM:<@relay.example:u@dest.example>", &a), 0);
	assert_string_equal(a.path.addr, "u@dest.example");
	assert_int_equal(a.path.at, 1);
	assert_int_equal(rcpt("TO:<@a.example,@b.example:u@c.example> "
	    "NOTIFY=NEVER", 0, &r), 0);
	assert_string_equal(r.path.addr, "u@c.example");
	assert_int_equal(r.notify, SMTP_NOTIFY_NEVER);
	assert_int_equal(rcpt("TO:<@a.example:postmaster>", 0, &r), 0);
	assert_string_equal(r.path.addr, "postmaster");
}

static void
test_mail_lengths(void **state)
{
	char l[1024];
	struct smtp_rcpt_args r;
	struct smtp_mail_args a;

	(void)state;
	/* Local part: 64 ok, 65 too long. */
	assert_int_equal(rcpt(long_path(l, sizeof(l), "TO:<", 64, 10), 0, &r),
	    0);
	assert_int_equal(r.path.at, 64);
	assert_int_equal(rcpt_err(long_path(l, sizeof(l), "TO:<", 65, 10), 0),
	    SMTP_PARSE_LOCAL_TOO_LONG);
	assert_int_equal(mail_err(long_path(l, sizeof(l), "FROM:<", 65, 3)),
	    SMTP_PARSE_LOCAL_TOO_LONG);
	/* Path with brackets: 256 ok, 257 too long. */
	assert_int_equal(rcpt(long_path(l, sizeof(l), "TO:<", 64, 189), 0,
	    &r), 0);
	assert_int_equal(strlen(r.path.addr), 254);
	assert_int_equal(mail(long_path(l, sizeof(l), "FROM:<", 64, 189), &a),
	    0);
	assert_int_equal(rcpt_err(long_path(l, sizeof(l), "TO:<", 64, 190), 0),
	    SMTP_PARSE_PATH_TOO_LONG);
	assert_int_equal(rcpt_err(long_path(l, sizeof(l), "TO:<", 1, 253), 0),
	    SMTP_PARSE_PATH_TOO_LONG);
	/* Domain: 255 only fails the path limit, 256 is too long itself. */
	assert_int_equal(rcpt_err(long_path(l, sizeof(l), "TO:<", 1, 255), 0),
	    SMTP_PARSE_PATH_TOO_LONG);
	assert_int_equal(rcpt_err(long_path(l, sizeof(l), "TO:<", 1, 256), 0),
	    SMTP_PARSE_DOMAIN_TOO_LONG);
	assert_int_equal(mail_err(long_path(l, sizeof(l), "FROM:<", 1, 256)),
	    SMTP_PARSE_DOMAIN_TOO_LONG);
	/* A source route counts towards the 256 octets. */
	assert_int_equal(mail_err(long_path(l, sizeof(l), "FROM:<@r.example:",
	    64, 189)), SMTP_PARSE_PATH_TOO_LONG);
	assert_int_equal(mail(long_path(l, sizeof(l), "FROM:<@r.example:",
	    64, 189 - 11), &a), 0);
	/* A label of 63 octets is fine, 64 is not. */
	assert_int_equal(mail(long_path(l, sizeof(l), "FROM:<", 1, 63), &a),
	    0);
	memset(l, 'x', 80);
	memcpy(l, "FROM:<a@", 8);
	memcpy(l + 8 + 64, ">", 2);
	assert_int_equal(mail_err(l), SMTP_PARSE_BAD_ADDRESS);
}

static void
test_mail_utf8(void **state)
{
	struct smtp_mail_args a;

	(void)state;
	assert_int_equal(mail_err("FROM:<j\xc3\xb6rg@example.org>"),
	    SMTP_PARSE_NEEDS_SMTPUTF8);
	assert_int_equal(mail_err("FROM:<jorg@b\xc3\xbc" "cher.example>"),
	    SMTP_PARSE_NEEDS_SMTPUTF8);
	assert_int_equal(mail("FROM:<j\xc3\xb6rg@example.org> SMTPUTF8", &a),
	    0);
	assert_true(a.path.utf8);
	assert_true(a.smtputf8);
	assert_int_equal(mail("FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b"
	    "\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a> smtputf8 BODY=8BITMIME",
	    &a), 0);
	assert_int_equal(mail("FROM:<\"\xc3\xa9 x\"@a.b> SMTPUTF8", &a), 0);
	assert_true(a.path.quoted && a.path.utf8);
	assert_int_equal(mail("FROM:<\xf0\x9f\x98\x80@a.b> SMTPUTF8", &a), 0);
	/* ASCII with SMTPUTF8 is fine and not flagged. */
	assert_int_equal(mail("FROM:<a@b.c> SMTPUTF8", &a), 0);
	assert_false(a.path.utf8);
	/* Ill-formed UTF-8 is a bad address, with or without SMTPUTF8. */
	assert_int_equal(mail_err("FROM:<\xc0\xaf@a.b> SMTPUTF8"),
	    SMTP_PARSE_BAD_ADDRESS);			/* overlong '/' */
	assert_int_equal(mail_err("FROM:<\xe0\x80\xaf@a.b> SMTPUTF8"),
	    SMTP_PARSE_BAD_ADDRESS);			/* overlong */
	assert_int_equal(mail_err("FROM:<\xed\xa0\x80@a.b> SMTPUTF8"),
	    SMTP_PARSE_BAD_ADDRESS);			/* surrogate */
	assert_int_equal(mail_err("FROM:<\xf4\x90\x80\x80@a.b> SMTPUTF8"),
	    SMTP_PARSE_BAD_ADDRESS);			/* > U+10FFFF */
	assert_int_equal(mail_err("FROM:<\xc3@a.b> SMTPUTF8"),
	    SMTP_PARSE_BAD_ADDRESS);			/* truncated */
	assert_int_equal(mail_err("FROM:<\x80@a.b> SMTPUTF8"),
	    SMTP_PARSE_BAD_ADDRESS);			/* lone continuation */
	assert_int_equal(mail_err("FROM:<\xc3\xb6@a.b>"),
	    SMTP_PARSE_NEEDS_SMTPUTF8);
	assert_int_equal(mail_err("FROM:<\xc0\xaf@a.b>"),
	    SMTP_PARSE_BAD_ADDRESS);
}

static void
test_mail_params(void **state)
{
	struct smtp_mail_args a;

	(void)state;
	assert_int_equal(mail("FROM:<a@b.c> SIZE=12345 BODY=8BITMIME "
	    "RET=HDRS ENVID=QQ+2B314 AUTH=<>", &a), 0);
	assert_true(a.has_size);
	assert_int_equal(a.size, 12345);
	assert_int_equal(a.body, SMTP_BODY_8BITMIME);
	assert_int_equal(a.ret, SMTP_RET_HDRS);
	assert_string_equal(a.envid, "QQ+2B314");
	assert_true(a.has_auth);
	assert_string_equal(a.auth, "<>");

	assert_int_equal(mail("FROM:<> size=0 body=7bit ret=full "
	    "auth=e+3Dmc2@example.com", &a), 0);
	assert_true(a.has_size);
	assert_int_equal(a.size, 0);
	assert_int_equal(a.body, SMTP_BODY_7BIT);
	assert_int_equal(a.ret, SMTP_RET_FULL);
	assert_string_equal(a.auth, "e+3Dmc2@example.com");

	assert_int_equal(mail("FROM:<a@b.c> BODY=BinaryMIME", &a), 0);
	assert_int_equal(a.body, SMTP_BODY_BINARYMIME);
	assert_int_equal(mail("FROM:<a@b.c> SIZE=18446744073709551615", &a),
	    0);
	assert_true(a.size == UINT64_MAX);
	/* Extra blanks between and after parameters are tolerated. */
	assert_int_equal(mail("FROM:<a@b.c>  SIZE=1   SMTPUTF8 ", &a), 0);
	assert_true(a.smtputf8);
}

static void
test_mail_params_bad(void **state)
{
	static const char *bad[] = {
		"SIZE", "SIZE=", "SIZE=-1", "SIZE=1x", "SIZE=18446744073709551616",
		"SIZE=000000000000000000001", "SIZE=1 SIZE=1", "SIZE=+1",
		"BODY", "BODY=8BIT", "BODY=7BIT BODY=7BIT", "BODY=",
		"SMTPUTF8=yes", "SMTPUTF8 SMTPUTF8", "SMTPUTF8=",
		"RET", "RET=ALL", "RET=FULL RET=HDRS",
		"ENVID", "ENVID=a+2b", "ENVID=a+2", "ENVID=a=b", "ENVID=\xc3\xa9",
		"ENVID=1 ENVID=1",
		"AUTH", "AUTH=", "AUTH=a+", "AUTH=<> AUTH=<>", "AUTH=a=b", "AUTH=\xc3\xa9",
		"size=1 Size=2",
	};
	static const char *unknown[] = {
		"FOO", "FOO=bar", "X-SIZE=1", "NOTIFY=NEVER", "ORCPT=rfc822;a",
		"MT-PRIORITY=3", "SIZEX=1", "REQUIRETLS",
	};
	char line[1024];
	size_t i;

	(void)state;
	for (i = 0; i < nitems(bad); i++) {
		strlcpy(line, "FROM:<a@b.c> ", sizeof(line));
		strlcat(line, bad[i], sizeof(line));
		expect(mail_err(line), SMTP_PARSE_BAD_PARAM, line);
	}
	for (i = 0; i < nitems(unknown); i++) {
		strlcpy(line, "FROM:<a@b.c> ", sizeof(line));
		strlcat(line, unknown[i], sizeof(line));
		expect(mail_err(line), SMTP_PARSE_UNKNOWN_PARAM, line);
	}
}

static void
test_mail_param_limits(void **state)
{
	char line[1024], *p;
	struct smtp_mail_args a;

	(void)state;
	/* ENVID: 100 ok, 101 bad. */
	strlcpy(line, "FROM:<> ENVID=", sizeof(line));
	p = line + strlen(line);
	memset(p, 'e', 100);
	p[100] = '\0';
	assert_int_equal(mail(line, &a), 0);
	assert_int_equal(strlen(a.envid), 100);
	p[100] = 'e';
	p[101] = '\0';
	assert_int_equal(mail_err(line), SMTP_PARSE_BAD_PARAM);
	/* AUTH: 512 ok, 513 bad. */
	strlcpy(line, "FROM:<> AUTH=", sizeof(line));
	p = line + strlen(line);
	memset(p, 'u', 512);
	p[512] = '\0';
	assert_int_equal(mail(line, &a), 0);
	assert_int_equal(strlen(a.auth), 512);
	p[512] = 'u';
	p[513] = '\0';
	assert_int_equal(mail_err(line), SMTP_PARSE_BAD_PARAM);
	/* SIZE: 20 digits is the most parse_u64n takes. */
	assert_int_equal(mail("FROM:<> SIZE=00000000000000000001", &a), 0);
	assert_int_equal(a.size, 1);
}

/*
 * smtp_parse_rcpt
 */

static void
test_rcpt_basic(void **state)
{
	struct smtp_rcpt_args r;

	(void)state;
	assert_int_equal(rcpt("TO:<bob@example.net>", 0, &r), 0);
	assert_string_equal(r.path.addr, "bob@example.net");
	assert_int_equal(r.path.at, 3);
	assert_int_equal(r.notify, 0);
	assert_string_equal(r.orcpt, "");
	assert_int_equal(rcpt("to: <bob@example.net>", 0, &r), 0);
	assert_int_equal(rcpt_err("TO:<>", 0), SMTP_PARSE_NULL_RCPT);
	assert_int_equal(rcpt_err("TO:<> NOTIFY=NEVER", 0),
	    SMTP_PARSE_NULL_RCPT);
	assert_int_equal(rcpt_err("TO:bob@example.net", 0), SMTP_PARSE_SYNTAX);
	assert_int_equal(rcpt_err("FROM:<bob@example.net>", 0),
	    SMTP_PARSE_SYNTAX);
	assert_int_equal(rcpt_err("TO:<bob@example.net> SIZE=1", 0),
	    SMTP_PARSE_UNKNOWN_PARAM);
	assert_int_equal(rcpt_err("TO:<bob@example.net>,", 0),
	    SMTP_PARSE_SYNTAX);
	assert_int_equal(rcpt_err("TO:<bob>", 0), SMTP_PARSE_BAD_ADDRESS);
}

static void
test_rcpt_postmaster(void **state)
{
	struct smtp_rcpt_args r;

	(void)state;
	assert_int_equal(rcpt("TO:<postmaster>", 0, &r), 0);
	assert_string_equal(r.path.addr, "postmaster");
	assert_int_equal(r.path.at, strlen("postmaster"));
	assert_int_equal(r.path.addr[r.path.at], '\0');
	assert_int_equal(rcpt("TO:<PostMaster>", 0, &r), 0);
	assert_string_equal(r.path.addr, "postmaster");
	assert_int_equal(rcpt("TO:<postmaster@example.net>", 0, &r), 0);
	assert_int_equal(r.path.at, strlen("postmaster"));
	assert_int_equal(rcpt_err("TO:<\"postmaster\">", 0),
	    SMTP_PARSE_BAD_ADDRESS);
	assert_int_equal(rcpt_err("TO:<postmasters>", 0),
	    SMTP_PARSE_BAD_ADDRESS);
}

static void
test_rcpt_utf8(void **state)
{
	struct smtp_rcpt_args r;

	(void)state;
	assert_int_equal(rcpt_err("TO:<\xc3\xa9@a.b>", 0),
	    SMTP_PARSE_NEEDS_SMTPUTF8);
	assert_int_equal(rcpt("TO:<\xc3\xa9@a.b>", 1, &r), 0);
	assert_true(r.path.utf8);
	assert_int_equal(rcpt_err("TO:<\xed\xbf\xbf@a.b>", 1),
	    SMTP_PARSE_BAD_ADDRESS);
	assert_int_equal(rcpt_err("TO:<a@\xc3\xa9-.b>", 1),
	    SMTP_PARSE_BAD_ADDRESS);
}

static void
test_rcpt_notify(void **state)
{
	static const char *bad[] = {
		"NOTIFY", "NOTIFY=", "NOTIFY=NEVER,SUCCESS", "NOTIFY=FAILURE,NEVER",
		"NOTIFY=SUCCESS,", "NOTIFY=,SUCCESS", "NOTIFY=SUCCESS,,DELAY",
		"NOTIFY=ALWAYS", "NOTIFY=SUCCESS,SUCCESS",
		"NOTIFY=NEVER NOTIFY=NEVER",
	};
	struct smtp_rcpt_args r;
	char line[256];
	size_t i;

	(void)state;
	assert_int_equal(rcpt("TO:<a@b.c> NOTIFY=NEVER", 0, &r), 0);
	assert_int_equal(r.notify, SMTP_NOTIFY_NEVER);
	assert_int_equal(rcpt("TO:<a@b.c> notify=success,Delay,FAILURE", 0,
	    &r), 0);
	assert_int_equal(r.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY |
	    SMTP_NOTIFY_FAILURE);
	assert_int_equal(rcpt("TO:<a@b.c> NOTIFY=FAILURE", 0, &r), 0);
	assert_int_equal(r.notify, SMTP_NOTIFY_FAILURE);
	for (i = 0; i < nitems(bad); i++) {
		strlcpy(line, "TO:<a@b.c> ", sizeof(line));
		strlcat(line, bad[i], sizeof(line));
		expect(rcpt_err(line, 0), SMTP_PARSE_BAD_PARAM, line);
	}
}

static void
test_rcpt_orcpt(void **state)
{
	static const char *bad[] = {
		"ORCPT", "ORCPT=", "ORCPT=rfc822", "ORCPT=;a@b",
		"ORCPT=rfc 822;a", "ORCPT=rfc822;a+2x", "ORCPT=rfc822;a=b",
		"ORCPT=rfc822;a ORCPT=rfc822;a", "ORCPT=rf(c;a",
	};
	struct smtp_rcpt_args r;
	char line[1024], *p;
	size_t i;

	(void)state;
	assert_int_equal(rcpt("TO:<a@b.c> ORCPT=rfc822;Bob+40example.net "
	    "NOTIFY=DELAY", 0, &r), 0);
	assert_string_equal(r.orcpt, "rfc822;Bob+40example.net");
	assert_int_equal(r.notify, SMTP_NOTIFY_DELAY);
	assert_int_equal(rcpt("TO:<a@b.c> ORCPT=utf-8;x", 0, &r), 0);
	for (i = 0; i < nitems(bad); i++) {
		strlcpy(line, "TO:<a@b.c> ", sizeof(line));
		strlcat(line, bad[i], sizeof(line));
		expect(rcpt_err(line, 0), SMTP_PARSE_BAD_PARAM, line);
	}
	/* 500 octets encoded is the limit. */
	strlcpy(line, "TO:<a@b.c> ORCPT=rfc822;", sizeof(line));
	p = line + strlen(line);
	memset(p, 'o', 500 - 7);
	p[500 - 7] = '\0';
	assert_int_equal(rcpt(line, 0, &r), 0);
	assert_int_equal(strlen(r.orcpt), 500);
	p[500 - 7] = 'o';
	p[500 - 6] = '\0';
	assert_int_equal(rcpt_err(line, 0), SMTP_PARSE_BAD_PARAM);
}

/*
 * smtp_parse_path directly
 */

static void
test_path_consumed(void **state)
{
	struct smtp_path p;
	size_t used;

	(void)state;
	assert_int_equal(smtp_parse_path(S("<a@b.c> SIZE=1"), 0, &p, &used),
	    0);
	assert_int_equal(used, 7);
	assert_int_equal(smtp_parse_path(S("<>"), 0, &p, &used), 0);
	assert_int_equal(used, 2);
	assert_true(p.is_null);
	assert_int_equal(smtp_parse_path(S("<\"a>\"@b>x"), 0, &p, &used), 0);
	assert_int_equal(used, 8);
	assert_int_equal(smtp_parse_path(S("a@b"), 0, &p, &used),
	    SMTP_PARSE_SYNTAX);
	assert_int_equal(smtp_parse_path(S("<"), 0, &p, &used),
	    SMTP_PARSE_SYNTAX);
	assert_int_equal(smtp_parse_path(S("<\xc3\xa9@b>"), 0, &p, &used),
	    SMTP_PARSE_NEEDS_SMTPUTF8);
	assert_int_equal(smtp_parse_path(S("<\xc3\xa9@b>"), 1, &p, &used), 0);
	assert_true(p.utf8);
	assert_int_equal(smtp_parse_path("<a\0@b>", 6, 0, &p, &used),
	    SMTP_PARSE_BAD_ADDRESS);
	assert_int_equal(smtp_parse_path("<a@[1.2.3.4\0]>", 14, 0, &p, &used),
	    SMTP_PARSE_BAD_ADDRESS);
	assert_int_equal(smtp_parse_path("<a@[IPv6:::1\0]>", 15, 0, &p,
	    &used), SMTP_PARSE_BAD_ADDRESS);
}

/*
 * Replies, xtext, HELO
 */

static void
test_replies(void **state)
{
	(void)state;
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_SYNTAX, 0),
	    "501 5.5.2 Syntax: MAIL FROM:<address>");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_SYNTAX, 1),
	    "501 5.5.2 Syntax: RCPT TO:<address>");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_BAD_ADDRESS, 0),
	    "501 5.1.7 Bad sender address syntax");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_BAD_ADDRESS, 1),
	    "501 5.1.3 Bad recipient address syntax");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_PATH_TOO_LONG, 1),
	    "501 5.5.4 Path too long");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_LOCAL_TOO_LONG, 1),
	    "553 5.1.3 Local part too long");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_LOCAL_TOO_LONG, 0),
	    "553 5.1.7 Local part too long");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_DOMAIN_TOO_LONG, 1),
	    "553 5.1.3 Domain too long");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_NEEDS_SMTPUTF8, 0),
	    "553 5.6.7 UTF-8 address needs SMTPUTF8");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_UNKNOWN_PARAM, 0),
	    "555 5.5.4 Unsupported parameter");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_BAD_PARAM, 1),
	    "501 5.5.4 Invalid parameter value");
	assert_string_equal(smtp_parse_reply(SMTP_PARSE_NULL_RCPT, 1),
	    "501 5.1.3 Null recipient not allowed");
	assert_non_null(smtp_parse_reply((enum smtp_parse_err)99, 0));
}

static void
test_xtext(void **state)
{
	(void)state;
	assert_true(smtp_valid_xtext(S("")));
	assert_true(smtp_valid_xtext(S("abc")));
	assert_true(smtp_valid_xtext(S("a+2Bb+3D")));
	assert_true(smtp_valid_xtext(S("!~\"<>@")));
	assert_true(smtp_valid_xtext(S("+00+FF")));
	assert_false(smtp_valid_xtext(S("a+2b")));
	assert_false(smtp_valid_xtext(S("a+")));
	assert_false(smtp_valid_xtext(S("a+2")));
	assert_false(smtp_valid_xtext(S("a+G0")));
	assert_false(smtp_valid_xtext(S("a=b")));
	assert_false(smtp_valid_xtext(S("a b")));
	assert_false(smtp_valid_xtext(S("a\x7f")));
	assert_false(smtp_valid_xtext(S("\xc3\xa9")));
	assert_false(smtp_valid_xtext("a\0", 2));
	assert_false(smtp_valid_xtext("+2\0", 3));
}

static void
test_helo(void **state)
{
	char name[300];

	(void)state;
	assert_true(smtp_valid_helo(S("mail.example.org")));
	assert_true(smtp_valid_helo(S("localhost")));
	assert_true(smtp_valid_helo(S("my_host.corp.example")));
	assert_true(smtp_valid_helo(S("DESKTOP-ABC123")));
	assert_true(smtp_valid_helo(S("[192.0.2.1]")));
	assert_true(smtp_valid_helo(S("[IPv6:2001:db8::1]")));
	assert_false(smtp_valid_helo(S("")));
	assert_false(smtp_valid_helo(S("a b")));
	assert_false(smtp_valid_helo(S("a\tb")));
	assert_false(smtp_valid_helo(S("a..b")));
	assert_false(smtp_valid_helo(S(".a")));
	assert_false(smtp_valid_helo(S("a.")));
	assert_false(smtp_valid_helo(S("[1.2.3]")));
	assert_false(smtp_valid_helo(S("[1.2.3.4")));
	assert_false(smtp_valid_helo(S("h\xc3\xa9.example")));
	assert_false(smtp_valid_helo(S("a\x01")));
	assert_false(smtp_valid_helo("a\0b", 3));
	/* 255 octets ok, 256 not. */
	memset(name, 'h', sizeof(name));
	name[63] = name[127] = name[191] = '.';
	assert_true(smtp_valid_helo(name, 255));
	assert_false(smtp_valid_helo(name, 256));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_verbs),
		cmocka_unit_test(test_command_args),
		cmocka_unit_test(test_command_forbidden),
		cmocka_unit_test(test_command_unknown),
		cmocka_unit_test(test_command_bad),
		cmocka_unit_test(test_mail_basic),
		cmocka_unit_test(test_mail_syntax),
		cmocka_unit_test(test_mail_bad_address),
		cmocka_unit_test(test_mail_quoted),
		cmocka_unit_test(test_mail_literal),
		cmocka_unit_test(test_mail_source_route),
		cmocka_unit_test(test_mail_lengths),
		cmocka_unit_test(test_mail_utf8),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_mail_params_bad),
		cmocka_unit_test(test_mail_param_limits),
		cmocka_unit_test(test_rcpt_basic),
		cmocka_unit_test(test_rcpt_postmaster),
		cmocka_unit_test(test_rcpt_utf8),
		cmocka_unit_test(test_rcpt_notify),
		cmocka_unit_test(test_rcpt_orcpt),
		cmocka_unit_test(test_path_consumed),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_helo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
