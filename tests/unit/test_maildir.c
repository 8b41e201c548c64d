/*
 * test_maildir.c -- unit tests of maildir.c: layout and modes, CRLF -> LF
 * across read chunks, unique names under threads, error classes and
 * clean-up, and that Python's mailbox.Maildir reads what we write.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <grp.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "maildir.h"
#include "util.h"
#include "testutil.h"


static char test_dir[] = "/tmp/test_maildir.XXXXXX";

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

static int
spool_file(const char *msg, size_t len, uint64_t *off)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/spool.XXXXXX", test_dir);
	assert_int_not_equal(fd = mkstemp(path), -1);
	unlink(path);
	assert_int_equal(write(fd, "JUNK\r\n\r", 7), 7);
	assert_int_equal(write(fd, msg, len), (ssize_t)len);
	assert_int_equal(write(fd, "\nTRAILER", 8), 8);
	*off = 7;
	return fd;
}

/* What the Maildir copy of s must look like. */
static void
crlf_to_lf(struct buf *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
			buf_appendc(out, s[i]);
}

/* Count entries of dir (not . and ..); the last name goes to name. */
static int
count_dir(const char *dir, char *name, size_t namelen)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		n++;
		if (name != NULL)
			strlcpy(name, de->d_name, namelen);
	}
	closedir(d);
	return n;
}

static void
read_file(const char *path, struct buf *out)
{
	char chunk[8192];
	ssize_t n;
	int fd;

	assert_int_not_equal(fd = open(path, O_RDONLY), -1);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)n);
	assert_int_equal(n, 0);
	close(fd);
}

/* Deliver msg into md; the one file in new/ must equal want. */
static void
deliver_check(const char *md, const char *prepend, const char *msg,
    size_t len, const struct buf *want)
{
	char err[512], dir[PATH_MAX], name[256], file[PATH_MAX + 256];
	struct buf got;
	uint64_t off;
	int fd, temp = -1;

	fd = spool_file(msg, len, &off);
	if (maildir_deliver(md, prepend, fd, off, len, err, sizeof(err),
	    &temp) != 0)
		fail_msg("deliver: %s", err);
	close(fd);
	snprintf(dir, sizeof(dir), "%s/new", md);
	assert_int_equal(count_dir(dir, name, sizeof(name)), 1);
	snprintf(file, sizeof(file), "%s/%s", dir, name);
	buf_init(&got);
	read_file(file, &got);
	assert_int_equal(got.len, want->len);
	assert_memory_equal(got.data, want->data, want->len);
	buf_free(&got);
}

/*
 * Tests.
 */

static void
test_layout(void **state)
{
	static const char msg[] = "Subject: hi\r\nTo: c@d\r\n\r\nline 1\r\n"
	    "line 2\r\n";
	static const char pre[] = "Return-Path: <a@b>\r\nDelivered-To: c@d\r\n";
	static const char *subs[] = { "", "/tmp", "/new", "/cur" };
	char md[PATH_MAX], p[PATH_MAX + 8], name[256];
	struct stat st;
	struct buf want;
	size_t i;

	(void)state;
	snprintf(md, sizeof(md), "%s/deep/er/Maildir", test_dir);
	buf_init(&want);
	crlf_to_lf(&want, pre, strlen(pre));
	crlf_to_lf(&want, msg, strlen(msg));
	deliver_check(md, pre, msg, strlen(msg), &want);
	for (i = 0; i < nitems(subs); i++) {
		snprintf(p, sizeof(p), "%s%s", md, subs[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0077, 0);
	}
	snprintf(p, sizeof(p), "%s/tmp", md);
	assert_int_equal(count_dir(p, NULL, 0), 0);
	snprintf(p, sizeof(p), "%s/new", md);
	count_dir(p, name, sizeof(name));
	/* <sec>.M<usec>P<pid>Q<n>.<host> */
	assert_non_null(strstr(name, ".M"));
	assert_non_null(strchr(name, 'P'));
	assert_non_null(strchr(name, 'Q'));
	assert_null(strchr(name, ':'));
	assert_null(strchr(name, '/'));
	assert_string_equal(buf_cstr(&want) + want.len - 7, "line 2\n");
	buf_free(&want);
}

/* CRLF pairs straddling every 64 KiB boundary, and lone CRs. */
static void
test_chunks(void **state)
{
	char md[PATH_MAX];
	struct buf msg, want;
	size_t i;

	(void)state;
	buf_init(&msg);
	buf_appendf(&msg, "Subject: big\r\n\r\n");
	while (msg.len < 65535)
		buf_appendc(&msg, 'x');
	buf_append(&msg, "\r\n", 2);		/* CR at 65535, LF at 65536 */
	for (i = 0; msg.len < 3 * 65536 + 100; i++)
		buf_appendf(&msg, "line %zu with a\rlone CR\r\n", i);
	while (msg.len % 65536 != 65535)
		buf_appendc(&msg, 'y');
	buf_append(&msg, "\r\n", 2);
	buf_append(&msg, "end\r", 4);		/* a lone CR at the end stays */
	buf_init(&want);
	crlf_to_lf(&want, msg.data, msg.len);
	snprintf(md, sizeof(md), "%s/chunks", test_dir);
	deliver_check(md, NULL, msg.data, msg.len, &want);
	buf_free(&msg);
	buf_free(&want);
}

static void
test_empty(void **state)
{
	char md[PATH_MAX];
	struct buf want;

	(void)state;
	buf_init(&want);
	buf_append(&want, "X: y\n", 5);
	snprintf(md, sizeof(md), "%s/empty", test_dir);
	deliver_check(md, "X: y\r\n", "", 0, &want);
	buf_free(&want);
}

static void *
deliver_many_cb(void *arg)
{
	const char *md = arg;
	char err[512];
	uint64_t off;
	int i, fd, temp, rc = 0;

	fd = spool_file("S: t\r\n\r\nb\r\n", 11, &off);
	for (i = 0; i < 25 && rc == 0; i++)
		rc = maildir_deliver(md, NULL, fd, off, 11, err, sizeof(err),
		    &temp);
	close(fd);
	return rc == 0 ? arg : NULL;
}

static void
test_threads_unique(void **state)
{
	char md[PATH_MAX], dir[PATH_MAX + 8];
	pthread_t th[4];
	void *res;
	size_t i;

	(void)state;
	snprintf(md, sizeof(md), "%s/threads", test_dir);
	for (i = 0; i < nitems(th); i++)
		assert_int_equal(pthread_create(&th[i], NULL,
		    deliver_many_cb, md), 0);
	for (i = 0; i < nitems(th); i++) {
		assert_int_equal(pthread_join(th[i], &res), 0);
		assert_non_null(res);
	}
	snprintf(dir, sizeof(dir), "%s/new", md);
	assert_int_equal(count_dir(dir, NULL, 0), 100);
}

static void
test_errors(void **state)
{
	char md[PATH_MAX], file[PATH_MAX + 16], err[512];
	uint64_t off;
	int fd, temp;

	(void)state;
	fd = spool_file("a\r\n", 3, &off);
	/* The path is a file, or under one: permanent. */
	snprintf(file, sizeof(file), "%s/plainfile", test_dir);
	close(open(file, O_WRONLY | O_CREAT, 0600));
	temp = -1;
	assert_int_equal(maildir_deliver(file, NULL, fd, off, 3, err,
	    sizeof(err), &temp), -1);
	assert_int_equal(temp, 0);
	assert_non_null(strstr(err, "Not a directory"));
	snprintf(md, sizeof(md), "%s/plainfile/Maildir", test_dir);
	temp = -1;
	assert_int_equal(maildir_deliver(md, NULL, fd, off, 3, err,
	    sizeof(err), &temp), -1);
	assert_int_equal(temp, 0);
	temp = -1;
	assert_int_equal(maildir_deliver("", NULL, fd, off, 3, err,
	    sizeof(err), &temp), -1);
	assert_int_equal(temp, 0);
	/* A spool file shorter than said: temporary, nothing left behind. */
	snprintf(md, sizeof(md), "%s/short", test_dir);
	temp = -1;
	assert_int_equal(maildir_deliver(md, NULL, fd, off, 1000, err,
	    sizeof(err), &temp), -1);
	assert_int_equal(temp, 1);
	snprintf(file, sizeof(file), "%s/tmp", md);
	assert_int_equal(count_dir(file, NULL, 0), 0);
	snprintf(file, sizeof(file), "%s/new", md);
	assert_int_equal(count_dir(file, NULL, 0), 0);
	close(fd);
}

/* An administrator can fix permissions: temporary.  Root ignores modes. */
/* The check itself; returns 0 when the delivery failed as it should. */
static int
permission_check(const char *md, int fd, uint64_t off)
{
	char err[512];
	int temp = -1;

	if (maildir_deliver(md, NULL, fd, off, 3, err, sizeof(err),
	    &temp) != -1 || temp != 1 || strstr(err, "Permission denied") == NULL)
		return 1;
	return 0;
}

/*
 * A Maildir under a directory the daemon's user may not write: a
 * temporary failure naming the cause.  Root may write anywhere, so as
 * root the check runs in a child that has become nobody (uid 65534).
 */
static void
test_permission(void **state)
{
	char dir[PATH_MAX], md[PATH_MAX + 16];
	uint64_t off;
	int fd, status;
	pid_t pid;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/locked", test_dir);
	assert_int_equal(mkdir(dir, 0500), 0);
	assert_int_equal(chmod(test_dir, 0711), 0);
	snprintf(md, sizeof(md), "%s/Maildir", dir);
	fd = spool_file("a\r\n", 3, &off);
	if (geteuid() != 0)
		assert_int_equal(permission_check(md, fd, off), 0);
	else {
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0) {
			gid_t g = 65534;

			if (setgroups(1, &g) == -1 ||
			    setresgid(65534, 65534, 65534) == -1 ||
			    setresuid(65534, 65534, 65534) == -1)
				_exit(2);
			_exit(permission_check(md, fd, off));
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	close(fd);
	chmod(dir, 0700);
}

/* Python's mailbox.Maildir must read the message back. */
static void
test_python_reads(void **state)
{
	static const char msg[] = "From: a@b\r\nSubject: caf\xc3\xa9 test\r\n"
	    "\r\nbody line\r\n.dot line\r\n\r\nlast\r\n";
	static const char script[] =
	    "import mailbox, sys\n"
	    "md = mailbox.Maildir(sys.argv[1], factory=None, create=False)\n"
	    "ms = list(md)\n"
	    "assert len(ms) == 1, len(ms)\n"
	    "m = ms[0]\n"
	    "assert m['Return-Path'] == '<a@b>', m['Return-Path']\n"
	    "assert m['Delivered-To'] == 'c@d'\n"
	    "assert m['From'] == 'a@b'\n"
	    "p = m.get_payload(decode=True)\n"
	    "assert p == b'body line\\n.dot line\\n\\nlast\\n', p\n"
	    "assert m.get_subdir() == 'new'\n";
	char md[PATH_MAX], err[512];
	uint64_t off;
	int fd, temp;

	(void)state;
	if (access(TU_PYTHON, X_OK) != 0)
		skip();
	snprintf(md, sizeof(md), "%s/python", test_dir);
	fd = spool_file(msg, strlen(msg), &off);
	if (maildir_deliver(md, "Return-Path: <a@b>\r\nDelivered-To: c@d\r\n",
	    fd, off, strlen(msg), err, sizeof(err), &temp) != 0)
		fail_msg("deliver: %s", err);
	close(fd);
	tu_python_check(test_dir, script, md);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_threads_unique),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_permission),
		cmocka_unit_test(test_python_reads),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
