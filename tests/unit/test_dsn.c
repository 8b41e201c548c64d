/*
 * test_dsn.c -- unit tests of dsn.c: the structure of the multipart/report
 * (parts, fields and their order, boundary), CRLF everywhere and line
 * limits, ENVID/ORCPT decoding, header injection, and a read-back of
 * sample notices with Python's email package.
 */
#include <sys/types.h>

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "dsn.h"
#include "util.h"
#include "testutil.h"

#define NOW	1700000000
#define ORIG	"Subject: original\r\nFrom: <alice@example.org>\r\n" \
		"To: <bob@example.net>\r\n\r\nHello Bob,\r\nthe body.\r\n"

static char test_dir[] = "/tmp/test_dsn.XXXXXX";

static const struct dsn_rcpt rcpts2[] = {
	{ "bob@example.net", "rfc822;Bob+2Bx@example.net", "5.1.1",
	    "mx.example.net", "550 5.1.1 <bob@example.net>: Recipient "
	    "address rejected: User unknown (in reply to RCPT TO command)",
	    NOW - 60, NULL },
	{ "carol@example.net", NULL, "5.4.4", NULL, NULL, 0, NULL },
};

/*
 * Helpers.
 */

static int
setup_dir(void **state)
{
	(void)state;
	return tu_mkdtemp(test_dir, NULL, 0, NULL);
}

static int
teardown_dir(void **state)
{
	(void)state;
	return tu_rm_rf(test_dir);
}

static void
info_init(struct dsn_info *info, enum dsn_kind kind)
{
	memset(info, 0, sizeof(*info));
	info->kind = kind;
	info->reporting_mta = "mx.example.org";
	info->queue_id = "Q1";
	info->sender = "alice@example.org";
	info->arrival = NOW - 3600;
	info->now = NOW;
	info->msg = ORIG;
	info->msg_len = strlen(ORIG);
	info->max_returned = 1024 * 1024;
	info->rcpts = rcpts2;
	info->nrcpts = 2;
}

/*
 * Checks that hold for every notice: CRLF only, lines within 998
 * octets, and the boundary: three parts, closed once at the very end.
 * Stores the boundary (with its leading "--") in delim.
 */
static void
check_common(struct buf *b, char *delim, size_t dlen)
{
	const char *s = buf_cstr(b), *p, *q, *line;
	char close[128];
	size_t i, parts = 0;

	for (i = 0, line = s; i < b->len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			fail_msg("bare LF at %zu", i);
		if (s[i] == '\r' && s[i + 1] != '\n')
			fail_msg("bare CR at %zu", i);
		if (s[i] == '\n') {
			if (s + i - 1 - line > 998)
				fail_msg("line over 998 at %zu", i);
			line = s + i + 1;
		}
	}
	assert_true(b->len >= 2 && s[b->len - 2] == '\r');
	assert_non_null(p = strstr(s, "boundary=\""));
	p += 10;
	assert_non_null(q = strchr(p, '"'));
	assert_true((size_t)(q - p) <= 70);
	snprintf(delim, dlen, "\r\n--%.*s", (int)(q - p), p);
	for (p = s; (p = strstr(p, delim)) != NULL; p++) {
		if (p[strlen(delim)] == '\r')
			parts++;
		else
			assert_memory_equal(p + strlen(delim), "--\r\n", 4);
	}
	assert_int_equal(parts, 3);
	snprintf(close, sizeof(close), "%s--\r\n", delim);
	assert_string_equal(s + b->len - strlen(close), close);
}

/* Each string must occur in s, in this order (NULL-terminated list). */
static void
check_order(const char *s, ...)
{
	const char *want, *at = s;
	va_list ap;

	va_start(ap, s);
	while ((want = va_arg(ap, const char *)) != NULL) {
		const char *p = strstr(at, want);
		if (p == NULL)
			fail_msg("missing or out of order: \"%s\"", want);
		at = p + strlen(want);
		/* A line end may also start the next string. */
		if (at - p >= 2 && at[-2] == '\r' && at[-1] == '\n')
			at -= 2;
	}
	va_end(ap);
}

static void
build(const struct dsn_info *info, struct buf *b, char *delim, size_t dlen)
{
	buf_init(b);
	dsn_build(info, b);
	check_common(b, delim, dlen);
}

static void
save(const struct buf *b, const char *name)
{
	char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", test_dir, name);
	assert_non_null(fp = fopen(path, "wb"));
	assert_int_equal(fwrite(b->data, 1, b->len, fp), b->len);
	assert_int_equal(fclose(fp), 0);
}

/*
 * Tests.
 */

static void
test_failure(void **state)
{
	struct dsn_info info;
	struct buf b;
	char d[128];

	(void)state;
	info_init(&info, DSN_FAILURE);
	info.envid = "env+2B1";
	build(&info, &b, d, sizeof(d));
	check_order(buf_cstr(&b),
	    "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n",
	    "\r\nTo: <alice@example.org>\r\n",
	    "\r\nSubject: Undelivered Mail Returned to Sender\r\n",
	    "\r\nDate: ", "\r\nMessage-ID: <Q1.failure.1700000000@"
	    "mx.example.org>\r\n",
	    "\r\nAuto-Submitted: auto-replied\r\n",
	    "\r\nMIME-Version: 1.0\r\n",
	    "\r\nContent-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"Q1.1700000000/"
	    "mx.example.org\"\r\n",
	    "\r\n\r\n", d, "\r\nContent-Type: text/plain; charset=us-ascii\r\n"
	    "\r\nThis is the mail system at host mx.example.org.\r\n",
	    "I'm sorry to have to inform you that your message could not\r\n"
	    "be delivered to one or more recipients.",
	    "\r\n<bob@example.net>: host mx.example.net said: 550 5.1.1 "
	    "<bob@example.net>:\r\n    Recipient address rejected:",
	    "\r\n<carol@example.net>: 5.4.4\r\n",
	    d, "\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Original-Envelope-Id: env+1\r\n"
	    "Reporting-MTA: dns; mx.example.org\r\n"
	    "Arrival-Date: ", "\r\nX-Sluice-Queue-ID: Q1\r\n"
	    "\r\nOriginal-Recipient: rfc822;Bob+x@example.net\r\n"
	    "Final-Recipient: rfc822; bob@example.net\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\n"
	    "Remote-MTA: dns; mx.example.net\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient "
	    "address\r\n rejected:", "\r\nLast-Attempt-Date: ",
	    "\r\n\r\nFinal-Recipient: rfc822; carol@example.net\r\n"
	    "Action: failed\r\nStatus: 5.4.4\r\n\r\n",
	    d, "\r\nContent-Description: Undelivered Message\r\n"
	    "Content-Type: message/rfc822\r\n\r\n" ORIG, d, "--\r\n", NULL);
	assert_null(strstr(buf_cstr(&b), "Will-Retry-Until"));
	assert_null(strstr(buf_cstr(&b), "8bit"));
	assert_null(strstr(buf_cstr(&b), "\r\nOriginal-Recipient: rfc822;"
	    "carol"));
	save(&b, "failure.eml");
	buf_free(&b);
}

static void
test_delay(void **state)
{
	struct dsn_info info;
	struct buf b;
	char d[128];

	(void)state;
	info_init(&info, DSN_DELAY);
	info.retry_until = info.arrival + 5 * 86400;
	build(&info, &b, d, sizeof(d));
	check_order(buf_cstr(&b),
	    "\r\nSubject: Delayed Mail (still being retried)\r\n",
	    "\r\nMessage-ID: <Q1.delay.1700000000@mx.example.org>\r\n",
	    "YOU DO NOT NEED TO RESEND YOUR MESSAGE",
	    "has not yet been delivered",
	    "will keep trying until the message is 5 days old.\r\n",
	    "\r\nAction: delayed\r\n", "\r\nWill-Retry-Until: ",
	    "\r\nAction: delayed\r\n", "\r\nWill-Retry-Until: ",
	    "\r\nContent-Description: Delayed Message\r\n"
	    "Content-Type: message/rfc822\r\n\r\n" ORIG, NULL);
	assert_null(strstr(buf_cstr(&b), "Original-Envelope-Id"));
	save(&b, "delay.eml");
	buf_free(&b);
}

static void
test_success_headers_only(void **state)
{
	static const struct dsn_rcpt ok[] = {
		{ "bob@example.net", NULL, "2.0.0", "mx.example.net",
		    "250 2.0.0 Ok: queued as 123", NOW, "relayed" },
	};
	struct dsn_info info;
	struct buf b;
	char d[128];

	(void)state;
	info_init(&info, DSN_SUCCESS);
	info.rcpts = ok;
	info.nrcpts = 1;
	build(&info, &b, d, sizeof(d));
	check_order(buf_cstr(&b),
	    "\r\nSubject: Successful Mail Delivery Report\r\n",
	    "successfully delivered",
	    "\r\nAction: relayed\r\nStatus: 2.0.0\r\n",
	    "\r\nContent-Type: text/rfc822-headers\r\n\r\n"
	    "Subject: original\r\nFrom: <alice@example.org>\r\n"
	    "To: <bob@example.net>\r\n", d, "--\r\n", NULL);
	assert_null(strstr(buf_cstr(&b), "Hello Bob"));
	save(&b, "success.eml");
	buf_free(&b);
}

static void
test_ret_hdrs_and_size(void **state)
{
	struct dsn_info info;
	struct buf b;
	char d[128];

	(void)state;
	info_init(&info, DSN_FAILURE);
	info.ret_hdrs = 1;
	build(&info, &b, d, sizeof(d));
	check_order(buf_cstr(&b), "Undelivered Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n\r\nSubject: original\r\n",
	    NULL);
	assert_null(strstr(buf_cstr(&b), "Hello Bob"));
	save(&b, "hdrs.eml");
	buf_free(&b);

	info.ret_hdrs = 0;
	info.max_returned = info.msg_len - 1;
	build(&info, &b, d, sizeof(d));
	assert_non_null(strstr(buf_cstr(&b), "text/rfc822-headers"));
	assert_null(strstr(buf_cstr(&b), "Hello Bob"));
	buf_free(&b);

	info.max_returned = info.msg_len;
	build(&info, &b, d, sizeof(d));
	assert_non_null(strstr(buf_cstr(&b), "Hello Bob"));
	buf_free(&b);
}

/* Bad xtext, or xtext hiding a line break: passed on as given. */
static void
test_xtext(void **state)
{
	static const struct dsn_rcpt r[] = {
		{ "a@example.net", "rfc822;a+ZZ@example.net", "5.0.0", NULL,
		    NULL, 0, NULL },
		{ "b@example.net", "rfc822;b+0D+0AX-Evil:+20y", "5.0.0", NULL,
		    NULL, 0, NULL },
	};
	struct dsn_info info;
	struct buf b;
	char d[128];

	(void)state;
	info_init(&info, DSN_FAILURE);
	info.rcpts = r;
	info.nrcpts = 2;
	info.envid = "x+0Ay";
	build(&info, &b, d, sizeof(d));
	check_order(buf_cstr(&b), "\r\nOriginal-Envelope-Id: x+0Ay\r\n",
	    "\r\nOriginal-Recipient: rfc822;a+ZZ@example.net\r\n",
	    "\r\nOriginal-Recipient: rfc822;b+0D+0AX-Evil:+20y\r\n", NULL);
	buf_free(&b);
}

/* Long and hostile diagnostics: folded, cut, never a new header line. */
static void
test_long_and_hostile(void **state)
{
	struct dsn_rcpt r[3];
	struct dsn_info info;
	struct buf diag, huge, b;
	const char *p;
	char d[128];
	int i;

	(void)state;
	buf_init(&diag);
	buf_init(&huge);
	for (i = 0; i < 100; i++)
		buf_appendf(&diag, "550-word%d ", i);
	for (i = 0; i < 1500; i++)
		buf_appendc(&diag, 'w');
	buf_appendf(&diag, "\xff\x01 end");
	for (i = 0; i < 3000; i++)
		buf_appendf(&huge, "ab ");
	memset(r, 0, sizeof(r));
	r[0].addr = "a@example.net";
	r[0].status = "5.0.0";
	r[0].diagnostic = buf_cstr(&diag);
	r[0].remote_mta = "mx\r\nX-Evil: 1";
	r[1].addr = "b@example.net";
	r[1].status = "5.0.0";
	r[1].diagnostic = "550 no\r\nX-Injected: yes\r\n\r\n--x";
	r[2].addr = "c@example.net";
	r[2].status = "5.0.0";
	r[2].diagnostic = buf_cstr(&huge);
	info_init(&info, DSN_FAILURE);
	info.rcpts = r;
	info.nrcpts = 3;
	build(&info, &b, d, sizeof(d));
	assert_null(strstr(buf_cstr(&b), "\nX-Injected"));
	assert_null(strstr(buf_cstr(&b), "\nX-Evil"));
	check_order(buf_cstr(&b), "\r\nRemote-MTA: dns; mx X-Evil: 1\r\n",
	    "\r\nDiagnostic-Code: smtp; 550-word0 550-word1", "550-word99\r\n "
	    "wwww", "ww\r\n www", "w??", "end\r\n",
	    "Diagnostic-Code: smtp; 550 no X-Injected: yes --x\r\n", NULL);
	/* Cut at about 4 KiB. */
	assert_non_null(p = strstr(buf_cstr(&b), "Diagnostic-Code: smtp; ab"));
	assert_non_null(p = strstr(p, "...\r\n"));
	assert_non_null(strstr(p, "Content-Type: message/rfc822"));
	buf_free(&b);
	buf_free(&diag);
	buf_free(&huge);
}

/* The boundary must not occur in the original; bare LFs become CRLF. */
static void
test_boundary_and_line_ends(void **state)
{
	static const char msg[] = "Subject: x\n\nQ1.1700000000/mx.example.org"
	    "\nlast line without end \xc3\xa9";
	struct dsn_info info;
	struct buf b;
	char d[128];

	(void)state;
	info_init(&info, DSN_FAILURE);
	info.msg = msg;
	info.msg_len = strlen(msg);
	build(&info, &b, d, sizeof(d));
	assert_string_equal(d, "\r\n--Q1.1700000000/mx.example.org.1");
	check_order(buf_cstr(&b), "\r\nContent-Transfer-Encoding: 8bit\r\n",
	    "\r\nContent-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\nSubject: x\r\n\r\n",
	    "without end \xc3\xa9\r\n", d, "--\r\n", NULL);
	save(&b, "8bit.eml");
	buf_free(&b);

	info.msg = NULL;
	info.msg_len = 0;
	build(&info, &b, d, sizeof(d));
	assert_string_equal(d, "\r\n--Q1.1700000000/mx.example.org");
	buf_free(&b);
}

/* Python's email package must read the samples saved above. */
static void
test_python_parses(void **state)
{
	static const char script[] =
	    "import email, email.policy, sys, os\n"
	    "def load(n):\n"
	    "    with open(os.path.join(sys.argv[1], n), 'rb') as f:\n"
	    "        return email.message_from_binary_file(f,\n"
	    "            policy=email.policy.default)\n"
	    "def check(n, action, third, subject):\n"
	    "    m = load(n)\n"
	    "    assert not m.defects, m.defects\n"
	    "    assert m.get_content_type() == 'multipart/report'\n"
	    "    assert m.get_param('report-type') == 'delivery-status'\n"
	    "    assert m['Auto-Submitted'] == 'auto-replied'\n"
	    "    p = m.get_payload()\n"
	    "    assert [x.get_content_type() for x in p] == ['text/plain',\n"
	    "        'message/delivery-status', third], p\n"
	    "    for x in p: assert not x.defects, (n, x.defects)\n"
	    "    ds = p[1].get_payload()\n"
	    "    assert ds[0]['Reporting-MTA'] == 'dns; mx.example.org'\n"
	    "    assert ds[1]['Final-Recipient'] == 'rfc822; bob@example.net'\n"
	    "    for r in ds[1:]: assert r['Action'] == action, r['Action']\n"
	    "    if third == 'message/rfc822':\n"
	    "        o = p[2].get_payload(0)\n"
	    "        assert o['Subject'] == subject, o['Subject']\n"
	    "    else:\n"
	    "        assert 'Subject: original' in p[2].get_content()\n"
	    "check('failure.eml', 'failed', 'message/rfc822', 'original')\n"
	    "check('delay.eml', 'delayed', 'message/rfc822', 'original')\n"
	    "check('success.eml', 'relayed', 'text/rfc822-headers', '')\n"
	    "check('hdrs.eml', 'failed', 'text/rfc822-headers', '')\n"
	    "check('8bit.eml', 'failed', 'message/rfc822', 'x')\n"
	    "ds = load('failure.eml').get_payload()[1].get_payload()\n"
	    "assert ds[1]['Diagnostic-Code'].startswith('smtp; 550 5.1.1')\n"
	    "assert ds[0]['Original-Envelope-Id'] == 'env+1'\n";

	(void)state;
	if (access(TU_PYTHON, X_OK) != 0)
		skip();
	tu_python_check(test_dir, script, test_dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failure),
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_success_headers_only),
		cmocka_unit_test(test_ret_hdrs_and_size),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_long_and_hostile),
		cmocka_unit_test(test_boundary_and_line_ends),
		cmocka_unit_test(test_python_parses),	/* reads the above */
	};

	/* Fixed dates in the samples, whatever the host's zone. */
	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
