/*
 * fuzz_address.c -- libFuzzer target: the input as a bare path, as the
 * argument of MAIL and of RCPT (with and without SMTPUTF8), and as xtext
 * and HELO text.  Checks that SMTPUTF8 only ever widens what is accepted.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_path(const char *s, size_t size)
{
	struct smtp_path p0, p1;
	enum smtp_parse_err e0, e1;
	size_t c0, c1;

	e0 = smtp_parse_path(s, size, 0, &p0, &c0);
	e1 = smtp_parse_path(s, size, 1, &p1, &c1);
	if (e0 == SMTP_PARSE_OK) {
		check_path(&p0);
		if (c0 < 2 || c0 > size || p0.utf8)
			abort();
		if (e1 != SMTP_PARSE_OK || c1 != c0 ||
		    strcmp(p0.addr, p1.addr) != 0)
			abort();
	}
	if (e1 == SMTP_PARSE_OK) {
		check_path(&p1);
		if (c1 < 2 || c1 > size)
			abort();
		if (e0 != SMTP_PARSE_OK && e0 != SMTP_PARSE_NEEDS_SMTPUTF8)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct smtp_mail_args m;
	struct smtp_rcpt_args r0, r1;
	enum smtp_parse_err e0, e1;

	fuzz_path(s, size);
	if (smtp_parse_mail(s, size, &m) == SMTP_PARSE_OK) {
		check_path(&m.path);
		if (m.path.utf8 && !m.smtputf8)
			abort();
	}
	e0 = smtp_parse_rcpt(s, size, 0, &r0);
	e1 = smtp_parse_rcpt(s, size, 1, &r1);
	if (e0 == SMTP_PARSE_OK && (e1 != SMTP_PARSE_OK || r0.path.utf8 ||
	    strcmp(r0.path.addr, r1.path.addr) != 0))
		abort();
	if (e1 == SMTP_PARSE_OK)
		check_path(&r1.path);
	(void)smtp_valid_xtext(s, size);
	(void)smtp_valid_helo(s, size);
	return 0;
}
