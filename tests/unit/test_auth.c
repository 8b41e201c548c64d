/*
 * test_auth.c -- unit tests of auth.c: the password file (each accepted
 * scheme, refused schemes, malformed lines with their line numbers,
 * duplicates), password checks and reloads of the process-wide table,
 * SASL PLAIN/LOGIN decoding, and sluicectl's file edits.  Test hashes are
 * made here with crypt_gensalt, at libcrypt's (cheap) default costs.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <crypt.h>
#include <dirent.h>
#include <pthread.h>
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
#include <openssl/evp.h>

#include "auth.h"
#include "util.h"
#include "testutil.h"

/*
 * Helpers.
 */

static char test_dir[] = "/tmp/test_auth.XXXXXX";
static char test_path[sizeof(test_dir) + 16];

static int
setup_dir(void **state)
{
	(void)state;
	return tu_mkdtemp(test_dir, test_path, sizeof(test_path), "passwd");
}

static int
teardown_dir(void **state)
{
	(void)state;
	auth_shutdown();
	return tu_rm_rf(test_dir);
}

static void
write_file_mode(const char *text, mode_t mode)
{
	tu_write_file(test_path, text);
	assert_int_equal(chmod(test_path, mode), 0);
}

static void
write_file(const char *text)
{
	write_file_mode(text, 0640);
}

/* How many files the test directory holds. */
static int
dir_entries(void)
{
	struct dirent *de;
	DIR *d = opendir(test_dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* crypt(3) of pass with a fresh salt of the given method ("$y$"...). */
static char *
make_hash(const char *method, const char *pass)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *h;
	char *out;

	assert_non_null(crypt_gensalt_rn(method, 0, NULL, 0, salt,
	    (int)sizeof(salt)));
	h = crypt_rn(pass, salt, cd, (int)sizeof(*cd));
	assert_non_null(h);
	out = xstrdup(h);
	free(cd);
	return out;
}

/* The load must fail with "PATH:LINE: ...<contains>...". */
static void
load_err(const char *text, int line, const char *contains)
{
	char err[512], want[512];

	write_file(text);
	err[0] = '\0';
	assert_null(auth_db_load(test_path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:%d: ", test_path, line);
	if (strncmp(err, want, strlen(want)) != 0 ||
	    strstr(err, contains) == NULL)
		fail_msg("for %s: got \"%s\", want \"%s...%s\"", text, err,
		    want, contains);
}

static void
init_ok(void)
{
	char err[512];

	if (auth_init(test_path, err, sizeof(err)) == -1)
		fail_msg("auth_init: %s", err);
}

/* Past auth.c's one stat() per second. */
static void
wait_stat(void)
{
	struct timespec ts = { 1, 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static char *
b64(const void *data, size_t len)
{
	char *out = xcalloc(1, 4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* PLAIN decoding of the raw message msg (len octets, NULs inside). */
static int
plain(const char *msg, size_t len, char *user, char *pass)
{
	char *enc = b64(msg, len);
	int rc;

	rc = auth_decode_plain(enc, strlen(enc), user, AUTH_USER_MAX, pass,
	    AUTH_PASS_MAX);
	free(enc);
	return rc;
}

/*
 * Loading.
 */

static void
test_load_schemes(void **state)
{
	char *y = make_hash("$y$", "pw-y"), *b = make_hash("$2b$", "pw-b");
	char *s = make_hash("$6$", "pw-6"), *text;
	struct auth_db *db;
	char err[512];

	(void)state;
	text = xasprintf(
	    "# users\n"
	    "\n"
	    "yes:%s\n"
	    "blf:{BLF-CRYPT}%s:1000:1000::/home/blf:/bin/sh:extra\n"
	    "sha:{SHA512-CRYPT}%s::\n"
	    "cry:{crypt}%s\n"
	    "bare6:%s\n"
	    "utf8-\xc3\xa9@example.com:%s\n", y, b, s, y, s, b);
	write_file(text);
	db = auth_db_load(test_path, err, sizeof(err));
	if (db == NULL)
		fail_msg("load: %s", err);
	auth_db_free(db);

	init_ok();
	assert_int_equal(auth_check("yes", "pw-y"), 1);
	assert_int_equal(auth_check("yes", "pw-b"), 0);
	assert_int_equal(auth_check("blf", "pw-b"), 1);
	assert_int_equal(auth_check("blf", "pw-B"), 0);
	assert_int_equal(auth_check("sha", "pw-6"), 1);
	assert_int_equal(auth_check("sha", ""), 0);
	assert_int_equal(auth_check("cry", "pw-y"), 1);
	assert_int_equal(auth_check("bare6", "pw-6"), 1);
	assert_int_equal(auth_check("utf8-\xc3\xa9@example.com", "pw-b"), 1);
	assert_int_equal(auth_check("YES", "pw-y"), 0);	/* exact names */
	auth_shutdown();
	free(text);
	free(y);
	free(b);
	free(s);
}

static void
test_load_2y_2a(void **state)
{
	char *b = make_hash("$2b$", "pw"), *text;

	(void)state;
	/* Same algorithm; $2y$ (PHP) and $2a$ ids as Dovecot files have. */
	b[2] = 'y';
	text = xasprintf("a:%s\n", b);
	b[2] = 'a';
	write_file(text);
	init_ok();
	assert_int_equal(auth_check("a", "pw"), 1);
	assert_int_equal(auth_check("a", "pwx"), 0);
	free(text);
	text = xasprintf("a:%s\n", b);
	write_file(text);
	auth_shutdown();
	init_ok();
	assert_int_equal(auth_check("a", "pw"), 1);
	auth_shutdown();
	free(text);
	free(b);
}

static void
test_load_errors(void **state)
{
	char *y = make_hash("$y$", "x"), *s = make_hash("$6$", "x");
	char long_user[300], *t;

	(void)state;
	load_err("a:{PLAIN}secret\n", 1, "user a: unsupported password scheme");
	load_err("# c\na:{SHA256-CRYPT}$5$abc$def\n", 2,
	    "user a: unsupported password scheme");
	load_err("\n\na:$1$abcdefgh$abcdefghijklmnopqrstuv\n", 3,
	    "user a: unsupported password scheme");
	load_err("a:abJnggxhB/yWI\n", 1, "user a: unsupported password scheme");
	load_err("a:$5$rounds=5000$abc$def\n", 1, "unsupported password scheme");
	load_err("a:{plain}x\n", 1, "unsupported password scheme");
	t = xasprintf("a:{SHA512-CRYPT}%s\n", y);	/* prefix vs hash */
	load_err(t, 1, "unsupported password scheme");
	free(t);
	t = xasprintf("a:{BLF-CRYPT}%s\n", s);
	load_err(t, 1, "unsupported password scheme");
	free(t);
	load_err("a:$y$\n", 1, "user a: malformed password hash");
	load_err("a:$6$ab cd\n", 1, "malformed password hash");
	load_err("a:$6$saltsalt\n", 1, "malformed password hash");
	load_err("a:$6$rounds=5000$abc$def\n", 1, "malformed password hash");
	load_err("a:$2b$05$short\n", 1, "malformed password hash");
	load_err("a:$y$j9T$salt\n", 1, "malformed password hash");
	t = xasprintf("a:%s\n", y);
	t[strlen(t) - 2] = '\0';		/* checksum cut short */
	load_err(t, 1, "malformed password hash");
	free(t);
	load_err("a\n", 1, "missing ':'");
	load_err(":$6$x\n", 1, "invalid user name");
	load_err("a b:$6$x\n", 1, "invalid user name");
	load_err(" a:$6$x\n", 1, "invalid user name");
	load_err("a\tb:$6$x\n", 1, "invalid user name");
	load_err("a:\n", 1, "user a: empty password");
	load_err("a::1000\n", 1, "user a: empty password");
	memset(long_user, 'u', 256);
	long_user[256] = '\0';
	t = xasprintf("%s:%s\n", long_user, y);
	load_err(t, 1, "invalid user name");
	free(t);
	long_user[255] = '\0';			/* 255 octets: fine */
	t = xasprintf("%s:%s\n", long_user, y);
	write_file(t);
	{
		char err[512];
		struct auth_db *db = auth_db_load(test_path, err, sizeof(err));

		assert_non_null(db);
		auth_db_free(db);
	}
	free(t);
	t = xasprintf("a:%s\nb:%s\n# c\na:%s\n", y, s, s);
	load_err(t, 4, "user a: duplicate (first at line 1)");
	free(t);
	free(y);
	free(s);
}

static void
test_load_nul_and_mode(void **state)
{
	char err[512];
	FILE *fp;

	(void)state;
	fp = fopen(test_path, "w");
	assert_non_null(fp);
	fwrite("# ok\na\0b:$6$x\n", 1, 14, fp);
	fclose(fp);
	chmod(test_path, 0640);
	assert_null(auth_db_load(test_path, err, sizeof(err)));
	assert_non_null(strstr(err, ":2: "));

	write_file_mode("# empty\n", 0644);
	assert_null(auth_db_load(test_path, err, sizeof(err)));
	assert_non_null(strstr(err, "accessible by others"));
	assert_int_equal(auth_init(test_path, err, sizeof(err)), -1);

	unlink(test_path);
	assert_null(auth_db_load(test_path, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

/*
 * The process-wide table.
 */

static void
test_check_unknown(void **state)
{
	char *y = make_hash("$y$", "pw"), *text, big[1000];

	(void)state;
	auth_shutdown();
	assert_int_equal(auth_check("a", "pw"), -1);	/* no table */
	text = xasprintf("a:%s\n", y);
	write_file(text);
	init_ok();
	assert_int_equal(auth_check("nobody", "pw"), 0);
	assert_int_equal(auth_check("", ""), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(auth_check(big, big), 0);
	assert_int_equal(auth_check("a", big), 0);
	assert_int_equal(auth_check(NULL, "pw"), -1);
	assert_int_equal(auth_check("a", NULL), -1);
	assert_int_equal(auth_check("a", "pw"), 1);
	auth_shutdown();
	free(text);
	free(y);
}

static void
test_reload(void **state)
{
	char *y = make_hash("$y$", "one"), *text, err[512];

	(void)state;
	text = xasprintf("a:%s\n", y);
	write_file(text);
	init_ok();
	assert_int_equal(auth_check("a", "one"), 1);
	assert_int_equal(auth_check("b", "two"), 0);

	/* sluicectl's way: a new file renamed over the old one. */
	assert_int_equal(auth_file_set(test_path, "b", "two", 0, err,
	    sizeof(err)), 0);
	wait_stat();
	assert_int_equal(auth_check("b", "two"), 1);
	assert_int_equal(auth_check("a", "one"), 1);

	/* An editor's way: rewritten in place.  Broken: old table kept. */
	write_file("a:{PLAIN}one\n");
	wait_stat();
	assert_int_equal(auth_check("a", "one"), 1);
	assert_int_equal(auth_check("b", "two"), 1);
	/* Gone: old table kept too. */
	unlink(test_path);
	wait_stat();
	assert_int_equal(auth_check("b", "two"), 1);
	/* Fixed: picked up. */
	write_file(text);
	wait_stat();
	assert_int_equal(auth_check("a", "one"), 1);
	assert_int_equal(auth_check("b", "two"), 0);
	auth_shutdown();
	free(text);
	free(y);
}

static void *
check_thread(void *arg)
{
	int i, *bad = arg;

	for (i = 0; i < 6; i++) {
		if (auth_check("a", "one") != 1 || auth_check("a", "x") != 0)
			(*bad)++;
		usleep(250 * 1000);
	}
	return NULL;
}

/* Workers keep verifying while the table is swapped under them. */
static void
test_threads(void **state)
{
	char *y = make_hash("$y$", "one"), *text, err[512];
	pthread_t t[4];
	int bad[4] = { 0 }, i;

	(void)state;
	text = xasprintf("a:%s\n", y);
	write_file(text);
	init_ok();
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, check_thread,
		    &bad[i]), 0);
	assert_int_equal(auth_file_set(test_path, "b", "two", 0, err,
	    sizeof(err)), 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(bad[i], 0);
	}
	wait_stat();
	assert_int_equal(auth_check("b", "two"), 1);
	auth_shutdown();
	free(text);
	free(y);
}

/*
 * SASL decoding.
 */

static void
test_b64(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;	/* NULL: refused */
	} cases[] = {
		{ "", "" },
		{ "YQ==", "a" },
		{ "YWI=", "ab" },
		{ "YWJj", "abc" },
		{ "YWxpY2U=", "alice" },
		{ "+/+/", "\xfb\xff\xbf" },
		{ "YQ=", NULL },		/* not whole quanta */
		{ "YQ", NULL },			/* padding required */
		{ "YWJ", NULL },
		{ "Y===", NULL },
		{ "====", NULL },
		{ "=", NULL },
		{ "YQ=a", NULL },
		{ "YQ==YWJj", NULL },		/* padding inside */
		{ "YR==", NULL },		/* non-zero pad bits */
		{ "YWJ=", NULL },
		{ " YWJj", NULL },		/* no white space */
		{ "YW Jj", NULL },
		{ "YWJj\r\n", NULL },
		{ "YWJj\n", NULL },
		{ "YW-j", NULL },		/* base64url is not base64 */
		{ "YW_j", NULL },
		{ "AA==", NULL },		/* a NUL */
		{ "YQBi", NULL },		/* "a\0b" */
	};
	char out[64];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		memset(out, 'Z', sizeof(out));
		rc = auth_decode_b64(cases[i].in, strlen(cases[i].in), out,
		    sizeof(out));
		if (cases[i].out == NULL && rc != -1)
			fail_msg("\"%s\" accepted", cases[i].in);
		if (cases[i].out != NULL &&
		    (rc != 0 || strcmp(out, cases[i].out) != 0))
			fail_msg("\"%s\": rc %d", cases[i].in, rc);
	}
	/* Bounded: the output and its NUL must fit. */
	assert_int_equal(auth_decode_b64("YWJj", 4, out, 4), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(auth_decode_b64("YWJj", 4, out, 3), -1);
	assert_int_equal(auth_decode_b64("YWJjZA==", 8, out, 4), -1);
	assert_int_equal(auth_decode_b64("YWJjZA==", 8, out, 5), 0);
	assert_int_equal(auth_decode_b64("YQ==", 4, out, 0), -1);
	/* Counted, not NUL-terminated input. */
	assert_int_equal(auth_decode_b64("YWJjYQ==", 4, out, sizeof(out)), 0);
	assert_string_equal(out, "abc");
}

static void
test_plain(void **state)
{
	char user[AUTH_USER_MAX], pass[AUTH_PASS_MAX], big[2000];

	(void)state;
	assert_int_equal(plain("\0alice\0secret", 13, user, pass), 0);
	assert_string_equal(user, "alice");
	assert_string_equal(pass, "secret");
	assert_int_equal(plain("alice\0alice\0pw", 14, user, pass), 0);
	assert_string_equal(user, "alice");
	assert_string_equal(pass, "pw");
	/* Password with spaces and colons is fine. */
	assert_int_equal(plain("\0bob\0a b:c", 10, user, pass), 0);
	assert_string_equal(pass, "a b:c");

	assert_int_equal(plain("bob\0alice\0pw", 12, user, pass), -1);
	assert_int_equal(plain("alic\0alice\0pw", 13, user, pass), -1);
	assert_int_equal(plain("alice\0pw", 8, user, pass), -1);
	assert_int_equal(plain("alicepw", 7, user, pass), -1);
	assert_int_equal(plain("\0alice\0pw\0", 10, user, pass), -1);
	assert_int_equal(plain("\0alice\0p\0w", 10, user, pass), -1);
	assert_int_equal(plain("\0\0pw", 4, user, pass), -1);
	assert_int_equal(plain("\0alice\0", 7, user, pass), -1);
	assert_int_equal(plain("", 0, user, pass), -1);

	/* Bounds: 255-octet names and passwords fit, 256 do not. */
	memset(big, 'x', sizeof(big));
	big[0] = '\0';
	big[256] = '\0';
	assert_int_equal(plain(big, 256 + 1 + 255, user, pass), 0);
	assert_int_equal(strlen(user), 255);
	assert_int_equal(strlen(pass), 255);
	assert_int_equal(plain(big, 256 + 1 + 256, user, pass), -1);
	big[256] = 'x';
	big[257] = '\0';
	assert_int_equal(plain(big, 257 + 1 + 10, user, pass), -1);
	/* Overlong messages are refused before decoding. */
	big[1] = '\0';
	assert_int_equal(plain(big, sizeof(big), user, pass), -1);

	/* Bad base64. */
	assert_int_equal(auth_decode_plain("AGFsaWNlAHB3", 11, user,
	    sizeof(user), pass, sizeof(pass)), -1);
	assert_int_equal(auth_decode_plain("AGFsaWNlAHB3", 12, user,
	    sizeof(user), pass, sizeof(pass)), 0);
	assert_int_equal(auth_decode_plain("AGFsaWNlAHB3 ", 13, user,
	    sizeof(user), pass, sizeof(pass)), -1);
	/* Small caller buffers. */
	assert_int_equal(auth_decode_plain("AGFsaWNlAHB3", 12, user, 5, pass,
	    sizeof(pass)), -1);
	assert_int_equal(auth_decode_plain("AGFsaWNlAHB3", 12, user, 6, pass,
	    3), 0);
	assert_int_equal(auth_decode_plain("AGFsaWNlAHB3", 12, user, 6, pass,
	    2), -1);
}

/*
 * sluicectl's edits.
 */

static void
test_file_roundtrip(void **state)
{
	char *y = make_hash("$6$", "bobpw"), *head, *text, *got, *want;
	char err[512], *p, *q;
	struct stat st;
	FILE *mem;
	size_t len;

	(void)state;
	head = xasprintf(
	    "# SMTP AUTH users\n"
	    "\n"
	    "bob:{SHA512-CRYPT}%s:1000:1000:Bob::/bin/false\n"
	    "#carol:$6$commented$out\n", y);
	/* Other lines stay as they are, comments included. */
	text = xasprintf("%sdave:%s:1:2:Dave\n", head, y);
	write_file(text);
	assert_int_equal(auth_file_set(test_path, "alice", "apw", 0, err,
	    sizeof(err)), 0);
	got = tu_read_file(test_path);
	assert_int_equal(strncmp(got, text, strlen(text)), 0);
	assert_int_equal(strncmp(got + strlen(text), "alice:$y$", 9), 0);
	assert_non_null(strchr(got + strlen(text), '\n'));
	assert_int_equal(stat(test_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	free(got);

	/* passwd: a new hash, the extra fields kept, alice untouched. */
	assert_int_equal(auth_file_set(test_path, "dave", "newpw", 1, err,
	    sizeof(err)), 0);
	got = tu_read_file(test_path);
	assert_int_equal(strncmp(got, head, strlen(head)), 0);
	p = got + strlen(head);
	assert_int_equal(strncmp(p, "dave:$y$", 8), 0);
	q = strchr(p + 5, ':');
	assert_non_null(q);
	assert_int_equal(strncmp(q, ":1:2:Dave\nalice:$y$", 19), 0);
	free(got);
	init_ok();
	assert_int_equal(auth_check("dave", "newpw"), 1);
	assert_int_equal(auth_check("dave", "bobpw"), 0);
	assert_int_equal(auth_check("alice", "apw"), 1);
	auth_shutdown();

	/* list: names, sorted. */
	assert_non_null(mem = open_memstream(&got, &len));
	assert_int_equal(auth_file_list(test_path, mem, err, sizeof(err)), 0);
	fclose(mem);
	assert_string_equal(got, "alice\nbob\ndave\n");
	free(got);

	/* del: only that line goes. */
	assert_int_equal(auth_file_del(test_path, "dave", err, sizeof(err)),
	    0);
	got = tu_read_file(test_path);
	want = xasprintf("%salice:", head);
	assert_int_equal(strncmp(got, want, strlen(want)), 0);
	assert_null(strstr(got, "dave"));
	assert_int_equal(stat(test_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	free(want);
	free(got);
	free(text);
	free(head);
	free(y);
}

static void
test_file_errors(void **state)
{
	char err[512], *got;

	(void)state;
	unlink(test_path);
	/* passwd/del on a missing file; add creates it. */
	assert_int_equal(auth_file_set(test_path, "a", "pw", 1, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "user a does not exist"));
	assert_int_equal(auth_file_del(test_path, "a", err, sizeof(err)), -1);
	assert_int_equal(access(test_path, F_OK), -1);
	assert_int_equal(auth_file_set(test_path, "a", "pw", 0, err,
	    sizeof(err)), 0);

	assert_int_equal(auth_file_set(test_path, "a", "pw", 0, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "user a already exists"));
	assert_int_equal(auth_file_set(test_path, "b", "pw", 1, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "user b does not exist"));
	assert_int_equal(auth_file_del(test_path, "b", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "user b does not exist"));
	/* A prefix of a name is not the name. */
	assert_int_equal(auth_file_del(test_path, "", err, sizeof(err)), -1);
	write_file("alice:$6$x\n");
	assert_int_equal(auth_file_del(test_path, "ali", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "user ali does not exist"));
	assert_int_equal(auth_file_set(test_path, "alice2", "pw", 0, err,
	    sizeof(err)), 0);
	assert_int_equal(auth_file_set(test_path, "", "pw", 0, err,
	    sizeof(err)), -1);
	assert_int_equal(auth_file_set(test_path, "a:b", "pw", 0, err,
	    sizeof(err)), -1);
	assert_int_equal(auth_file_set(test_path, "a b", "pw", 0, err,
	    sizeof(err)), -1);
	assert_int_equal(auth_file_set(test_path, "a\n", "pw", 0, err,
	    sizeof(err)), -1);
	assert_int_equal(auth_file_set(test_path, "c", "", 0, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "empty password"));

	/* No newline at the end: the new entry starts on its own line. */
	write_file("# no newline");
	assert_int_equal(auth_file_set(test_path, "c", "pw", 0, err,
	    sizeof(err)), 0);
	got = tu_read_file(test_path);
	assert_int_equal(strncmp(got, "# no newline\nc:$y$", 18), 0);
	free(got);
	/* A duplicate: passwd refuses, del removes both. */
	write_file("c:$6$x\n#\nc:$6$y\n");
	assert_int_equal(auth_file_set(test_path, "c", "pw", 1, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "listed 2 times"));
	assert_int_equal(auth_file_del(test_path, "c", err, sizeof(err)), 0);
	got = tu_read_file(test_path);
	assert_string_equal(got, "#\n");
	free(got);
	/* No temp files left behind. */
	assert_int_equal(dir_entries(), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_schemes),
		cmocka_unit_test(test_load_2y_2a),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_nul_and_mode),
		cmocka_unit_test(test_check_unknown),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_file_roundtrip),
		cmocka_unit_test(test_file_errors),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
