/*
 * test_data_decode.c -- unit tests of the DATA/BDAT stream decoder in
 * smtp_parse.c: dot-unstuffing, the end-of-data marker, the SMTP
 * smuggling payloads, line limits and input split at any byte.
 */
#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "buf.h"
#include "smtp_parse.h"
#include "util.h"

#define S(x)		(x), (sizeof(x) - 1)
#define RANDOM_SPLITS	50

enum chunking { CHUNK_WHOLE, CHUNK_BYTE, CHUNK_RANDOM };

struct run {
	struct buf	 out;
	size_t		 consumed;
	enum data_status status;
	enum data_error	 error;
	uint64_t	 out_bytes;
};

/* Feed in[0..len) in chunks; RAW mode ends with data_decode_finish. */
static void
run_decoder(enum data_mode mode, size_t max_line, const char *in,
    size_t len, enum chunking how, struct run *r)
{
	struct data_decoder d;
	size_t off = 0, n, used;

	buf_init(&r->out);
	data_decoder_init(&d, mode, max_line);
	r->status = DATA_AGAIN;
	while (off < len) {
		n = len - off;
		if (how == CHUNK_BYTE)
			n = 1;
		else if (how == CHUNK_RANDOM)
			n = 1 + (size_t)rand() % n;
		used = data_decode(&d, in + off, n, &r->out, &r->status);
		off += used;
		if (r->status == DATA_DONE)
			break;
		assert_int_equal(used, n);	/* AGAIN eats everything */
	}
	r->error = mode == DATA_MODE_RAW ? data_decode_finish(&d, &r->out) :
	    d.error;
	assert_int_equal(r->error, d.error);
	r->consumed = off;
	r->out_bytes = d.out_bytes;
	assert_int_equal(d.out_bytes, r->out.len);
}

/* Every chunking must give exactly the expected result. */
static void
check(enum data_mode mode, size_t max_line, const char *in, size_t len,
    const char *want, size_t wantlen, size_t consumed,
    enum data_status status, enum data_error error)
{
	struct run r;
	int i;

	for (i = 0; i < 2 + RANDOM_SPLITS; i++) {
		run_decoder(mode, max_line, in, len,
		    i == 0 ? CHUNK_WHOLE : i == 1 ? CHUNK_BYTE : CHUNK_RANDOM,
		    &r);
		if (r.status != status || r.error != error ||
		    r.consumed != consumed || r.out.len != wantlen ||
		    (wantlen && memcmp(r.out.data, want, wantlen) != 0))
			fail_msg("input %zu octets \"%.*s\" chunking %d: status "
			    "%d/%d error %d/%d consumed %zu/%zu out %zu/%zu",
			    len, (int)len, in, i, r.status, status, r.error,
			    error, r.consumed, consumed, r.out.len, wantlen);
		buf_free(&r.out);
	}
}

/* DOT mode, whole input consumed, ends with CRLF.CRLF, no error. */
static void
check_dot(const char *in, size_t len, const char *want, size_t wantlen)
{
	check(DATA_MODE_DOT, 1000, in, len, want, wantlen, len, DATA_DONE,
	    DATA_ERR_NONE);
}

static void
test_dot_basic(void **state)
{
	(void)state;
	check_dot(S("Subject: hi\r\n\r\nbody\r\n.\r\n"),
	    S("Subject: hi\r\n\r\nbody\r\n"));
	check_dot(S(".\r\n"), S(""));
	check_dot(S("\r\n.\r\n"), S("\r\n"));
	check_dot(S("a.b\r\nc.\r\n.\r\n"), S("a.b\r\nc.\r\n"));
	check_dot(S("\r\n\r\n\r\n.\r\n"), S("\r\n\r\n\r\n"));
}

static void
test_dot_unstuffing(void **state)
{
	(void)state;
	check_dot(S("..\r\n.\r\n"), S(".\r\n"));
	check_dot(S(".x\r\n.\r\n"), S("x\r\n"));
	check_dot(S("...\r\n.\r\n"), S("..\r\n"));
	check_dot(S(". \r\n.\r\n"), S(" \r\n"));
	check_dot(S("a\r\n..\r\n.x.\r\n.\r\n"), S("a\r\n.\r\nx.\r\n"));
	check_dot(S(".\x00\r\n.\r\n"), S("\x00\r\n"));
}

/* Stuff msg (CRLF lines) as a client would, decode, expect msg back. */
static void
round_trip(const char *msg, size_t len)
{
	struct buf in;
	size_t i;

	buf_init(&in);
	for (i = 0; i < len; i++) {
		if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n'))
			buf_appendc(&in, '.');
		buf_appendc(&in, msg[i]);
	}
	buf_append(&in, ".\r\n", 3);
	check_dot(in.data, in.len, msg, len);
	buf_free(&in);
}

static void
test_dot_round_trip(void **state)
{
	static const char alphabet[] = ".a. \t\x80\xff";
	char msg[600];
	size_t n, i;
	int k;

	(void)state;
	round_trip(S(""));
	round_trip(S(".\r\n"));
	round_trip(S("..\r\n.\r\n...\r\n"));
	round_trip(S("From: a\r\n\r\n.\r\n.end\r\nx\r\n"));
	srand(5321);
	for (k = 0; k < 200; k++) {
		/* Random lines of dots, letters, blanks and 8-bit octets. */
		for (n = 0; n < sizeof(msg) - 20; ) {
			size_t ll = (size_t)rand() % 8;
			for (i = 0; i < ll; i++)
				msg[n++] = alphabet[rand() %
				    (int)(sizeof(alphabet) - 1)];
			msg[n++] = '\r';
			msg[n++] = '\n';
			if (rand() % 10 == 0)
				break;
		}
		round_trip(msg, n);
	}
}

static void
test_dot_leftover(void **state)
{
	static const char in[] = "a\r\n.\r\nQUIT\r\n";
	struct data_decoder d;
	enum data_status st;
	struct buf out;
	size_t used;

	(void)state;
	check(DATA_MODE_DOT, 1000, S(in), S("a\r\n"), 6, DATA_DONE,
	    DATA_ERR_NONE);
	/* After DONE nothing more is consumed. */
	buf_init(&out);
	data_decoder_init(&d, DATA_MODE_DOT, 1000);
	used = data_decode(&d, S(in), &out, &st);
	assert_int_equal(used, 6);
	assert_int_equal(st, DATA_DONE);
	used = data_decode(&d, S("more\r\n"), &out, &st);
	assert_int_equal(used, 0);
	assert_int_equal(st, DATA_DONE);
	assert_int_equal(out.len, 3);
	assert_int_equal(d.out_bytes, 3);
	buf_free(&out);
	/* Nothing yet. */
	check(DATA_MODE_DOT, 1000, S("abc\r\n."), S("abc\r\n"), 6,
	    DATA_AGAIN, DATA_ERR_NONE);
	check(DATA_MODE_DOT, 1000, S(""), S(""), 0, DATA_AGAIN,
	    DATA_ERR_NONE);
}

/*
 * SMTP smuggling (CVE-2023-51764 and friends): none of these may end the
 * data; the real CRLF.CRLF later still must, with the error set.
 */
static void
test_dot_smuggling(void **state)
{
	static const struct {
		const char *payload;
		enum data_error err;
		size_t good;	/* octets of payload output before the error */
	} t[] = {
		{ "\n.\n", DATA_ERR_BARE_LF, 0 },
		{ "\r.\r", DATA_ERR_BARE_CR, 0 },
		{ "\n.\r\n", DATA_ERR_BARE_LF, 0 },
		{ "\r\n.\n", DATA_ERR_BARE_LF, 2 },
		{ "\r.\r\n", DATA_ERR_BARE_CR, 0 },
		{ "\n.\r", DATA_ERR_BARE_LF, 0 },
	};
	char in[256];
	size_t i, n, pre;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		n = strlcpy(in, "Subject: x\r\n\r\nbody", sizeof(in));
		pre = n;
		n = strlcat(in, t[i].payload, sizeof(in));
		n = strlcat(in, "MAIL FROM:<evil@example>\r\n"
		    "RCPT TO:<victim@example>\r\nDATA\r\n\r\n.\r\n", sizeof(in));
		/* Output stops at the first bad octet, which is in payload. */
		check(DATA_MODE_DOT, 1000, in, n, in, pre + t[i].good, n,
		    DATA_DONE, t[i].err);
	}
	/* A bare LF right at the start, and a lone ".\n". */
	check(DATA_MODE_DOT, 1000, S(".\n.\r\n"), S(""), 5, DATA_AGAIN,
	    DATA_ERR_BARE_LF);
	check(DATA_MODE_DOT, 1000, S("\n.\r\n"), S(""), 0 + 4, DATA_AGAIN,
	    DATA_ERR_BARE_LF);
}

static void
test_dot_bare(void **state)
{
	(void)state;
	check(DATA_MODE_DOT, 1000, S("ab\ncd\r\n.\r\n"), S("ab"), 10,
	    DATA_DONE, DATA_ERR_BARE_LF);
	check(DATA_MODE_DOT, 1000, S("ab\rcd\r\n.\r\n"), S("ab"), 10,
	    DATA_DONE, DATA_ERR_BARE_CR);
	/* CR CR LF: the first CR is bare, the second ends the line. */
	check(DATA_MODE_DOT, 1000, S("ab\r\r\n.\r\n"), S("ab"), 8,
	    DATA_DONE, DATA_ERR_BARE_CR);
	/* ".\r" then not LF. */
	check(DATA_MODE_DOT, 1000, S("a\r\n.\rx\r\n.\r\n"), S("a\r\n"), 11,
	    DATA_DONE, DATA_ERR_BARE_CR);
	/* The first error sticks. */
	check(DATA_MODE_DOT, 1000, S("a\nb\rc\r\n.\r\n"), S("a"), 10,
	    DATA_DONE, DATA_ERR_BARE_LF);
	/* A bare LF starts no line: the ".\r\n" after it is no end. */
	check(DATA_MODE_DOT, 1000, S("a\r\r\n\n.\r\n"), S("a"), 8,
	    DATA_AGAIN, DATA_ERR_BARE_CR);
}

static void
test_dot_line_length(void **state)
{
	(void)state;
	/* max_line counts the CRLF: 8 + 2 = 10 fits, 9 + 2 does not. */
	check(DATA_MODE_DOT, 10, S("12345678\r\n.\r\n"), S("12345678\r\n"),
	    13, DATA_DONE, DATA_ERR_NONE);
	check(DATA_MODE_DOT, 10, S("12345678\r\n123456789\r\nx\r\n.\r\n"),
	    S("12345678\r\n123456789"), 27, DATA_DONE,
	    DATA_ERR_LINE_TOO_LONG);
	check(DATA_MODE_DOT, 10, S("1234567890\r\n.\r\n"), S("1234567890"),
	    15, DATA_DONE, DATA_ERR_LINE_TOO_LONG);
	check(DATA_MODE_DOT, 10, S("123456789012345\r\n.\r\n"),
	    S("1234567890"), 20, DATA_DONE, DATA_ERR_LINE_TOO_LONG);
	/* The stuffing dot counts: the line is measured as received. */
	check(DATA_MODE_DOT, 10, S(".1234567\r\n.\r\n"), S("1234567\r\n"),
	    13, DATA_DONE, DATA_ERR_NONE);
	check(DATA_MODE_DOT, 10, S(".12345678\r\n.\r\n"), S("12345678"), 14,
	    DATA_DONE, DATA_ERR_LINE_TOO_LONG);
	/* A long unterminated line is caught before its end arrives. */
	check(DATA_MODE_DOT, 4, S("abcdefgh"), S("abcd"), 8, DATA_AGAIN,
	    DATA_ERR_LINE_TOO_LONG);
	/* 0 is no limit. */
	check(DATA_MODE_DOT, 0, S("abcdefghijklmnop\r\n.\r\n"),
	    S("abcdefghijklmnop\r\n"), 21, DATA_DONE, DATA_ERR_NONE);
}

static void
test_raw(void **state)
{
	(void)state;
	check(DATA_MODE_RAW, 1000, S("abc\r\ndef"), S("abc\r\ndef\r\n"), 8,
	    DATA_AGAIN, DATA_ERR_NONE);
	check(DATA_MODE_RAW, 1000, S("abc\r\n"), S("abc\r\n"), 5, DATA_AGAIN,
	    DATA_ERR_NONE);
	check(DATA_MODE_RAW, 1000, S(""), S(""), 0, DATA_AGAIN,
	    DATA_ERR_NONE);
	/* No dot handling at all. */
	check(DATA_MODE_RAW, 1000, S("a\r\n.\r\n..x\r\n"),
	    S("a\r\n.\r\n..x\r\n"), 11, DATA_AGAIN, DATA_ERR_NONE);
	check(DATA_MODE_RAW, 1000, S(".\r\n"), S(".\r\n"), 3, DATA_AGAIN,
	    DATA_ERR_NONE);
	/* Bare CR / LF, and a lone CR at the very end. */
	check(DATA_MODE_RAW, 1000, S("ab\ncd\r\n"), S("ab"), 7, DATA_AGAIN,
	    DATA_ERR_BARE_LF);
	check(DATA_MODE_RAW, 1000, S("ab\rcd\r\n"), S("ab"), 7, DATA_AGAIN,
	    DATA_ERR_BARE_CR);
	check(DATA_MODE_RAW, 1000, S("abc\r"), S("abc"), 4, DATA_AGAIN,
	    DATA_ERR_BARE_CR);
	check(DATA_MODE_RAW, 1000, S("\r"), S(""), 1, DATA_AGAIN,
	    DATA_ERR_BARE_CR);
	/* Line length. */
	check(DATA_MODE_RAW, 5, S("abc\r\nabcd\r\n"), S("abc\r\nabcd"), 11,
	    DATA_AGAIN, DATA_ERR_LINE_TOO_LONG);
}

/* BDAT chunks split a CRLF across data_decode calls and finish once. */
static void
test_raw_chunks(void **state)
{
	struct data_decoder d;
	enum data_status st;
	struct buf out;

	(void)state;
	buf_init(&out);
	data_decoder_init(&d, DATA_MODE_RAW, 1000);
	assert_int_equal(data_decode(&d, S("line\r"), &out, &st), 5);
	assert_int_equal(st, DATA_AGAIN);
	assert_int_equal(data_decode(&d, S("\nlast"), &out, &st), 5);
	assert_int_equal(data_decode_finish(&d, &out), DATA_ERR_NONE);
	assert_int_equal(out.len, 12);
	assert_memory_equal(out.data, "line\r\nlast\r\n", 12);
	assert_int_equal(d.out_bytes, 12);
	/* finish is idempotent. */
	assert_int_equal(data_decode_finish(&d, &out), DATA_ERR_NONE);
	assert_int_equal(out.len, 12);
	buf_free(&out);
}

/* Fixed inputs: every chunking gives the whole-input result. */
static void
test_split_equivalence(void **state)
{
	static const char *t[] = {
		"a\r\n.\r\n", "..\r\n.x\r\n\r\n.\r\nrest", "a\nb\r\n.\r\n",
		"a\r.\rb\r\n.\r\n", "\r\n\r\n.\r", "x\r\r\r\n\n\n.\r\n",
		".\r.\r\n.\r\n", "0123456789abcdef\r\n.\r\n",
	};
	struct run whole, part;
	size_t i, len, max;
	int m, k;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		len = strlen(t[i]);
		for (m = 0; m < 2; m++) {
			for (max = 3; max < 20; max += 4) {
				run_decoder((enum data_mode)m, max, t[i], len,
				    CHUNK_WHOLE, &whole);
				for (k = 0; k < 20; k++) {
					run_decoder((enum data_mode)m, max,
					    t[i], len, k ? CHUNK_RANDOM :
					    CHUNK_BYTE, &part);
					assert_int_equal(part.status,
					    whole.status);
					assert_int_equal(part.error,
					    whole.error);
					assert_int_equal(part.consumed,
					    whole.consumed);
					assert_int_equal(part.out.len,
					    whole.out.len);
					if (whole.out.len)
						assert_memory_equal(
						    part.out.data,
						    whole.out.data,
						    whole.out.len);
					buf_free(&part.out);
				}
				buf_free(&whole.out);
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_basic),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_dot_round_trip),
		cmocka_unit_test(test_dot_leftover),
		cmocka_unit_test(test_dot_smuggling),
		cmocka_unit_test(test_dot_bare),
		cmocka_unit_test(test_dot_line_length),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_raw_chunks),
		cmocka_unit_test(test_split_equivalence),
	};

	srand(3030);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
