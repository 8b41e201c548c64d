/*
 * testutil.h -- helpers shared by the unit tests: temp directories made
 * and removed, files written, shell commands and Python checks run.
 * Header-only (static inline), because the Makefile builds each
 * tests/unit/test_*.c into its own program with nothing else linked in.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define TU_PYTHON	"/usr/bin/python3"

static inline int
tu_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a shell command made like printf; 0 if it exits 0, else -1. */
static inline int
tu_run(const char *fmt, ...)
{
	char	 cmd[4096];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * Make the temp directory named by the template dir ("...XXXXXX"), and,
 * with a name, put "dir/name" in path.  0, or -1 (for a cmocka setup).
 */
static inline int
tu_mkdtemp(char *dir, char *path, size_t len, const char *name)
{
	int	 n;

	if (mkdtemp(dir) == NULL)
		return -1;
	if (name == NULL)
		return 0;
	n = snprintf(path, len, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Remove dir and all below it; 0 or -1 (for a cmocka teardown). */
static inline int
tu_rm_rf(const char *dir)
{
	return tu_run("rm -rf '%s'", dir);
}

/* Write text to path, truncating it; 0, or -1 with errno set. */
static inline int
tu_try_write_file(const char *path, const char *text)
{
	FILE	*fp;
	int	 rc = 0;

	if ((fp = fopen(path, "w")) == NULL)
		return -1;
	if (fputs(text, fp) < 0)
		rc = -1;
	if (fclose(fp) != 0)
		rc = -1;
	return rc;
}

/* Write text to path, failing the test if it cannot. */
static inline void
tu_write_file(const char *path, const char *text)
{
	if (tu_try_write_file(path, text) == -1)
		fail_msg("writing %s: %s", path, strerror(errno));
}

/* The whole of path, NUL-terminated; the test fails if it cannot be
 * read.  The caller frees. */
static inline char *
tu_read_file(const char *path)
{
	FILE	*fp;
	char	*s = NULL;
	size_t	 len = 0, cap = 0, n;

	if ((fp = fopen(path, "r")) == NULL)
		fail_msg("reading %s: %s", path, strerror(errno));
	do {
		if (cap - len < 4096) {
			cap = cap == 0 ? 65536 : cap * 2;
			assert_non_null(s = realloc(s, cap));
		}
		n = fread(s + len, 1, cap - len - 1, fp);
		len += n;
	} while (n > 0);
	assert_int_equal(ferror(fp), 0);
	fclose(fp);
	s[len] = '\0';
	return s;
}

/*
 * Write script to dir/check.py and run it with arg; the test fails
 * unless it exits 0.  Callers skip() first when TU_PYTHON is missing.
 */
static inline void
tu_python_check(const char *dir, const char *script, const char *arg)
{
	char	 py[PATH_MAX];

	snprintf(py, sizeof(py), "%s/check.py", dir);
	tu_write_file(py, script);
	if (tu_run(TU_PYTHON " '%s' '%s'", py, arg) != 0)
		fail_msg("%s '%s' '%s' failed", TU_PYTHON, py, arg);
}

#endif /* TESTUTIL_H */
