/*
 * test_aliases.c -- unit tests of aliases.c: load errors with their line
 * numbers, lookups and recursive expansion (loops, duplicates, limits).
 */
#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aliases.h"
#include "buf.h"
#include "util.h"
#include "testutil.h"

/*
 * Helpers.
 */

static char test_dir[] = "/tmp/test_aliases.XXXXXX";
static char test_path[sizeof(test_dir) + 16];

static int
setup_dir(void **state)
{
	(void)state;
	return tu_mkdtemp(test_dir, test_path, sizeof(test_path), "aliases");
}

static int
teardown_dir(void **state)
{
	(void)state;
	return tu_rm_rf(test_dir);
}

static struct aliases *
load(const char *text)
{
	struct aliases *al;
	char err[512];

	tu_write_file(test_path, text);
	al = aliases_load(test_path, err, sizeof(err));
	if (al == NULL)
		fail_msg("load failed: %s", err);
	return al;
}

/* The load must fail with "PATH:LINE: <contains>". */
static void
load_err(const char *text, int line, const char *contains)
{
	char err[512], want[512];

	tu_write_file(test_path, text);
	err[0] = '\0';
	assert_null(aliases_load(test_path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:%d: ", test_path, line);
	if (strncmp(err, want, strlen(want)) != 0 ||
	    strstr(err, contains) == NULL)
		fail_msg("got \"%s\", want \"%s...%s\"", err, want, contains);
}

static int
local_example(const char *domain, void *arg)
{
	(void)arg;
	return strcmp(domain, "example.com") == 0 ||
	    strcmp(domain, "example.org") == 0;
}

/* Expand and compare with the space-separated list want ("" on -1). */
static void
expect(const struct aliases *al, const char *addr, const char *want)
{
	struct buf b;
	char **out;
	int i, n;

	n = aliases_expand(al, addr, local_example, NULL, &out);
	buf_init(&b);
	for (i = 0; i < n; i++)
		buf_appendf(&b, "%s%s", i ? " " : "", out[i]);
	if (strcmp(buf_cstr(&b), want) != 0)
		fail_msg("%s: got \"%s\" (%d), want \"%s\"", addr,
		    buf_cstr(&b), n, want);
	if (n > 0)
		aliases_list_free(out, n);
	else
		assert_null(out);
	buf_free(&b);
}

/*
 * Loading.
 */

static void
test_load_errors(void **state)
{
	(void)state;
	load_err("# c\n\nfoo bar\n", 3, "missing ':'");
	load_err("a: b\nc:\n", 2, "empty target list");
	load_err("a: b\nc:\n# nothing follows\n\n", 2, "empty target list");
	load_err("a: b\nc: ,\n", 2, "empty target list");
	load_err("a: b\nb c: d\n", 2, "alias name: bad character");
	load_err(": d\n", 1, "alias name: empty address");
	load_err("a: b c\n", 1, "bad character");
	load_err("a: b\x01x\n", 1, "bad character");
	load_err("a: <b>, \"q\"@x\n", 1, "bad character");
	load_err("a: b@c@d\n", 1, "bad address");
	load_err("a: @d\n", 1, "bad address");
	load_err("a: b@\n", 1, "bad address");
	load_err("a: |/bin/cat\n", 1, "not supported");
	load_err("a: /var/mail/a\n", 1, "not supported");
	load_err("a: :include:/x\n", 1, "not supported");
	load_err("a: b\nx: y\nA: c\n", 3, "duplicate alias \"a\" (first at "
	    "line 1)");
	load_err("  b@c\n", 1, "continuation line without an alias");
	load_err("a: b,\n  c,\n  d e\n", 3, "bad character");
}

static void
test_load_missing_file(void **state)
{
	char err[512];

	(void)state;
	assert_null(aliases_load("/nonexistent/aliases", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/aliases: No such file or "
	    "directory");
}

static void
test_has(void **state)
{
	struct aliases *al;

	(void)state;
	al = load("Postmaster: root\nsales@example.com: bob@example.net\n");
	assert_int_equal(aliases_has(al, "postmaster"), 1);
	assert_int_equal(aliases_has(al, "POSTMASTER@anything.example"), 1);
	assert_int_equal(aliases_has(al, "Sales@Example.COM"), 1);
	assert_int_equal(aliases_has(al, "sales@example.org"), 0);
	assert_int_equal(aliases_has(al, "root@example.com"), 0);
	aliases_free(al);
}

/*
 * Expansion.
 */

static void
test_simple(void **state)
{
	struct aliases *al;

	(void)state;
	al = load("# the usual\n"
	    "info@example.com: alice@example.net\n"
	    "team@example.com:alice@example.net ,bob@example.net,  "
	    "<carol@example.net>   # three\n"
	    "x#y@example.com: z@example.net\n");
	expect(al, "info@example.com", "alice@example.net");
	expect(al, "team@example.com",
	    "alice@example.net bob@example.net carol@example.net");
	expect(al, "x#y@example.com", "z@example.net");
	/* Not a key: itself. */
	expect(al, "nobody@example.com", "nobody@example.com");
	expect(al, "info@example.org", "info@example.org");
	aliases_free(al);
}

static void
test_case_insensitive(void **state)
{
	struct aliases *al;

	(void)state;
	al = load("Info@Example.COM: Alice@Example.net\n");
	expect(al, "INFO@example.com", "Alice@Example.net");
	expect(al, "info@EXAMPLE.com", "Alice@Example.net");
	aliases_free(al);
}

static void
test_bare_keys(void **state)
{
	struct aliases *al;

	(void)state;
	al = load("postmaster: root\n"
	    "root: admin@example.net, ops\n"
	    "abuse: abuse, abuse@example.net\n");
	/* Bare targets take the domain of the address being expanded. */
	expect(al, "postmaster@example.com",
	    "admin@example.net ops@example.com");
	expect(al, "Root@example.org", "admin@example.net ops@example.org");
	/* Only for local domains. */
	expect(al, "postmaster@remote.example", "postmaster@remote.example");
	/* A bare key matching itself as a target delivers to itself. */
	expect(al, "abuse@example.com", "abuse@example.com abuse@example.net");
	aliases_free(al);
}

static void
test_full_key_wins(void **state)
{
	struct aliases *al;

	(void)state;
	al = load("info: generic@example.net\n"
	    "info@example.org: special@example.net\n");
	expect(al, "info@example.org", "special@example.net");
	expect(al, "info@example.com", "generic@example.net");
	aliases_free(al);
}

static void
test_continuation(void **state)
{
	struct aliases *al;

	(void)state;
	al = load("list@example.com: a@example.net,\r\n"
	    "\tb@example.net\r\n"
	    "    # a comment inside the list\n"
	    "\n"
	    "  , c@example.net\n"
	    "next@example.com: d@example.net\n");
	expect(al, "list@example.com",
	    "a@example.net b@example.net c@example.net");
	expect(al, "next@example.com", "d@example.net");
	aliases_free(al);
}

static void
test_recursion_dedup(void **state)
{
	struct aliases *al;

	(void)state;
	al = load("all@example.com: dev@example.com, ops@example.com, "
	    "x@example.net\n"
	    "dev@example.com: a@example.net, X@example.net\n"
	    "ops@example.com: a@example.net, b@example.net, dev@example.com\n");
	expect(al, "all@example.com",
	    "a@example.net X@example.net b@example.net");
	aliases_free(al);
}

static void
test_loops(void **state)
{
	struct aliases *al;

	(void)state;
	al = load("a@example.com: a@example.com, b@example.net\n"
	    "p@example.com: q@example.com\n"
	    "q@example.com: p@example.com\n"
	    "r@example.com: s@example.com, t@example.net\n"
	    "s@example.com: r@example.com, s@example.com\n"
	    "dup@example.com: dup@example.com, DUP@example.com\n");
	/* Self-reference: final delivery to the alias itself. */
	expect(al, "a@example.com", "a@example.com b@example.net");
	/* A pure loop leaves nobody: an error. */
	expect(al, "p@example.com", "");
	/* A loop with a way out: the loop is cut. */
	expect(al, "r@example.com", "s@example.com t@example.net");
	expect(al, "dup@example.com", "dup@example.com");
	aliases_free(al);
}

static void
test_depth(void **state)
{
	struct aliases *al;
	struct buf b;
	int i;

	(void)state;
	buf_init(&b);
	/* c0 -> c1 -> ... -> c11 (final): 11 expansions. */
	for (i = 0; i <= ALIASES_DEPTH_MAX; i++)
		buf_appendf(&b, "c%d: c%d\n", i, i + 1);
	al = load(buf_cstr(&b));
	expect(al, "c0@example.com", "");
	expect(al, "c1@example.com", "c11@example.com");
	expect(al, "c11@example.com", "c11@example.com");
	aliases_free(al);
	buf_free(&b);
}

static void
test_expand_max(void **state)
{
	struct aliases *al;
	struct buf b;
	char **out;
	int i;

	(void)state;
	buf_init(&b);
	buf_appendf(&b, "big:");
	for (i = 0; i < ALIASES_EXPAND_MAX; i++)
		buf_appendf(&b, "%s u%d@example.net", i ? "," : "", i);
	buf_appendf(&b, "\nbigger: big, extra@example.net\n");
	al = load(buf_cstr(&b));
	assert_int_equal(aliases_expand(al, "big@example.com", local_example,
	    NULL, &out), ALIASES_EXPAND_MAX);
	assert_string_equal(out[ALIASES_EXPAND_MAX - 1], "u999@example.net");
	aliases_list_free(out, ALIASES_EXPAND_MAX);
	assert_int_equal(aliases_expand(al, "bigger@example.com",
	    local_example, NULL, &out), -1);
	assert_null(out);
	aliases_free(al);
	buf_free(&b);
}

static void
test_many_keys(void **state)
{
	struct aliases *al;
	struct buf b;
	char addr[64], want[64];
	int i;

	(void)state;
	buf_init(&b);
	for (i = 0; i < 5000; i++)
		buf_appendf(&b, "k%d@example.com: t%d@example.net\n", i, i);
	al = load(buf_cstr(&b));
	for (i = 0; i < 5000; i += 7) {
		snprintf(addr, sizeof(addr), "K%d@example.com", i);
		snprintf(want, sizeof(want), "t%d@example.net", i);
		expect(al, addr, want);
	}
	expect(al, "k5000@example.com", "k5000@example.com");
	aliases_free(al);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_has),
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_case_insensitive),
		cmocka_unit_test(test_bare_keys),
		cmocka_unit_test(test_full_key_wins),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_recursion_dedup),
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_expand_max),
		cmocka_unit_test(test_many_keys),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
