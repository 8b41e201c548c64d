/*
 * test_limit.c -- unit tests of limit.c: sessions and connection rate per
 * IP, AUTH failure bans and their window, unlimited when 0, hourly and
 * daily caps sliding, the counters file (round trip, hostile keys,
 * damaged files), the table bound under a flood of IPs, and counts that
 * stay consistent under four threads.  Time is driven by the tests.
 */
#include <sys/types.h>

#include <dirent.h>
#include <limits.h>
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

#include "limit.h"
#include "util.h"
#include "testutil.h"

#define T0		((time_t)1700002800)	/* on a 15-minute boundary */
#define TABLE_MAX	100000
#define NTHREADS	4
#define NLOOPS		20000
#define NSHARED		8

static char test_dir[] = "/tmp/test_limit.XXXXXX";
static char counters[PATH_MAX];

/*
 * Helpers.
 */

static int
setup_dir(void **state)
{
	(void)state;
	return tu_mkdtemp(test_dir, counters, sizeof(counters), "counters");
}

static int
teardown_dir(void **state)
{
	(void)state;
	return tu_rm_rf(test_dir);
}

static int
teardown_limit(void **state)
{
	(void)state;
	limit_shutdown();
	unlink(counters);
	return 0;
}

static void
init(unsigned sessions, unsigned rate, unsigned fmax, unsigned fwin,
    unsigned ban, const char *path)
{
	struct limit_params p;

	memset(&p, 0, sizeof(p));
	p.max_sessions_per_ip = sessions;
	p.max_connect_rate = rate;
	p.auth_fail_max = fmax;
	p.auth_fail_window = fwin;
	p.auth_ban_time = ban;
	p.counters_path = path;
	limit_init(&p);
}

/* Connect and hang up at once: only the rate is left behind. */
static enum limit_verdict
touch(const char *ip, time_t now)
{
	enum limit_verdict v;

	if ((v = limit_connect(ip, now)) == LIMIT_OK)
		limit_disconnect(ip);
	return v;
}

/* Only the counters file is left in the directory: no temp files. */
static void
assert_no_temp_files(void)
{
	struct dirent *de;
	DIR *d;

	assert_non_null(d = opendir(test_dir));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			assert_string_equal(de->d_name, "counters");
	closedir(d);
}

/*
 * Per-IP limits.
 */

static void
test_sessions(void **state)
{
	(void)state;
	init(2, 0, 0, 0, 0, NULL);
	assert_int_equal(limit_connect("192.0.2.1", T0), LIMIT_OK);
	assert_int_equal(limit_connect("192.0.2.1", T0), LIMIT_OK);
	assert_int_equal(limit_connect("192.0.2.1", T0),
	    LIMIT_TOO_MANY_SESSIONS);
	assert_int_equal(limit_connect("2001:db8::1", T0), LIMIT_OK);
	limit_disconnect("192.0.2.1");
	assert_int_equal(limit_connect("192.0.2.1", T0 + 1), LIMIT_OK);
	assert_int_equal(limit_connect("192.0.2.1", T0 + 1),
	    LIMIT_TOO_MANY_SESSIONS);
	limit_disconnect("192.0.2.1");
	limit_disconnect("192.0.2.1");
	limit_disconnect("2001:db8::1");
	/* An unmatched disconnect does not go below zero. */
	limit_disconnect("192.0.2.1");
	limit_disconnect("198.51.100.7");
	assert_int_equal(limit_connect("192.0.2.1", T0 + 2), LIMIT_OK);
	assert_int_equal(limit_connect("192.0.2.1", T0 + 2), LIMIT_OK);
	assert_int_equal(limit_connect("192.0.2.1", T0 + 2),
	    LIMIT_TOO_MANY_SESSIONS);
}

static void
test_rate_sliding(void **state)
{
	int i;

	(void)state;
	init(0, 4, 0, 0, 0, NULL);
	assert_int_equal(touch("192.0.2.1", T0), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 1), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 30), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 31), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 31), LIMIT_TOO_FAST);
	assert_int_equal(touch("192.0.2.2", T0 + 31), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 59), LIMIT_TOO_FAST);
	/* The first two slide out; refusals did not count. */
	assert_int_equal(touch("192.0.2.1", T0 + 60), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 61), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 62), LIMIT_TOO_FAST);
	assert_int_equal(touch("192.0.2.1", T0 + 90), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 91), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 92), LIMIT_TOO_FAST);
	/* A long pause clears everything. */
	for (i = 0; i < 4; i++)
		assert_int_equal(touch("192.0.2.1", T0 + 1000), LIMIT_OK);
	assert_int_equal(touch("192.0.2.1", T0 + 1000), LIMIT_TOO_FAST);
	/* A clock that steps back does not reopen the window. */
	assert_int_equal(touch("192.0.2.1", T0 + 900), LIMIT_TOO_FAST);
}

static void
test_ban(void **state)
{
	(void)state;
	init(0, 0, 3, 60, 300, NULL);
	assert_int_equal(limit_connect("192.0.2.1", T0), LIMIT_OK);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0), 0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 10), 0);
	assert_int_equal(limit_auth_failed("192.0.2.2", T0 + 10), 0);
	assert_false(limit_is_banned("192.0.2.1", T0 + 15));
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 20), 1);
	assert_true(limit_is_banned("192.0.2.1", T0 + 20));
	assert_false(limit_is_banned("192.0.2.2", T0 + 20));
	assert_false(limit_is_banned("192.0.2.99", T0 + 20));
	limit_disconnect("192.0.2.1");
	assert_int_equal(limit_connect("192.0.2.1", T0 + 21), LIMIT_BANNED);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 100), 1);
	assert_true(limit_is_banned("192.0.2.1", T0 + 319));
	assert_int_equal(limit_connect("192.0.2.1", T0 + 319), LIMIT_BANNED);
	/* Expired: counting starts afresh. */
	assert_false(limit_is_banned("192.0.2.1", T0 + 320));
	assert_int_equal(touch("192.0.2.1", T0 + 320), LIMIT_OK);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 321), 0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 322), 0);
	assert_false(limit_is_banned("192.0.2.1", T0 + 322));
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 323), 1);
}

static void
test_fail_window(void **state)
{
	(void)state;
	init(0, 0, 3, 60, 300, NULL);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0), 0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 40), 0);
	/* The first one is 80 s old: out of the window. */
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 80), 0);
	assert_false(limit_is_banned("192.0.2.1", T0 + 80));
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 200), 0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 400), 0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 600), 0);
	assert_false(limit_is_banned("192.0.2.1", T0 + 600));
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 610), 0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0 + 620), 1);
	assert_int_equal(limit_connect("192.0.2.1", T0 + 620), LIMIT_BANNED);
}

static void
test_unlimited(void **state)
{
	int i;

	(void)state;
	init(0, 0, 0, 60, 300, NULL);
	for (i = 0; i < 1000; i++)
		assert_int_equal(limit_connect("192.0.2.1", T0), LIMIT_OK);
	for (i = 0; i < 100; i++)
		assert_int_equal(limit_auth_failed("192.0.2.1", T0), 0);
	assert_false(limit_is_banned("192.0.2.1", T0));
	for (i = 0; i < 1000; i++)
		limit_disconnect("192.0.2.1");
	for (i = 0; i < 1000; i++)
		limit_cap_add("user:alice", T0);
	assert_int_equal(limit_cap_check("user:alice", 0, 0, T0), 1);
	/* A zero ban time never bans. */
	limit_shutdown();
	init(0, 0, 2, 60, 0, NULL);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0), 0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0), 0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0), 0);
	assert_int_equal(limit_connect("192.0.2.1", T0), LIMIT_OK);
	limit_disconnect("192.0.2.1");
}

/*
 * Caps.
 */

static void
test_cap_hour(void **state)
{
	(void)state;
	init(0, 0, 0, 0, 0, NULL);
	assert_int_equal(limit_cap_check("user:alice", 3, 0, T0), 1);
	limit_cap_add("user:alice", T0);
	limit_cap_add("user:alice", T0 + 1800);
	limit_cap_add("user:alice", T0 + 1810);
	assert_int_equal(limit_cap_check("user:alice", 3, 0, T0 + 1810), 0);
	assert_int_equal(limit_cap_check("user:alice", 4, 0, T0 + 1810), 1);
	assert_int_equal(limit_cap_check("user:bob", 3, 0, T0 + 1810), 1);
	assert_int_equal(limit_cap_check("user:alice", 3, 0, T0 + 3540), 0);
	/* The first slides out after 60 to 61 minutes. */
	assert_int_equal(limit_cap_check("user:alice", 3, 0, T0 + 3660), 1);
	limit_cap_add("user:alice", T0 + 3660);
	assert_int_equal(limit_cap_check("user:alice", 3, 0, T0 + 3660), 0);
	assert_int_equal(limit_cap_check("user:alice", 3, 0, T0 + 5400), 0);
	assert_int_equal(limit_cap_check("user:alice", 3, 0, T0 + 5480), 1);
	/* Both at T0 + 1800 went; the one at T0 + 3660 stays. */
	assert_int_equal(limit_cap_check("user:alice", 1, 0, T0 + 5480), 0);
	assert_int_equal(limit_cap_check("user:alice", 2, 0, T0 + 5480), 1);
	assert_int_equal(limit_cap_check("user:alice", 3, 0, T0 + 7400), 1);
	assert_int_equal(limit_cap_check("user:alice", 1, 0, T0 + 7400), 1);
	/* Only the hourly cap was asked: the day is not limited. */
	assert_int_equal(limit_cap_check("user:alice", 0, 0, T0 + 7400), 1);
}

static void
test_cap_day(void **state)
{
	int i;

	(void)state;
	init(0, 0, 0, 0, 0, NULL);
	limit_cap_add("net:10.0.0.0/8", T0);
	for (i = 0; i < 4; i++)
		limit_cap_add("net:10.0.0.0/8", T0 + 6 * 3600);
	assert_int_equal(limit_cap_check("net:10.0.0.0/8", 0, 5,
	    T0 + 6 * 3600), 0);
	assert_int_equal(limit_cap_check("net:10.0.0.0/8", 0, 6,
	    T0 + 6 * 3600), 1);
	assert_int_equal(limit_cap_check("net:10.0.0.0/8", 0, 5,
	    T0 + 86400 - 60), 0);
	/* Hours later the hourly window is empty, the daily one is not. */
	assert_int_equal(limit_cap_check("net:10.0.0.0/8", 1, 0,
	    T0 + 86400 - 60), 1);
	/* The first slides out after 24 h to 24 h 15. */
	assert_int_equal(limit_cap_check("net:10.0.0.0/8", 0, 5,
	    T0 + 86400 + 900), 1);
	assert_int_equal(limit_cap_check("net:10.0.0.0/8", 0, 4,
	    T0 + 86400 + 900), 0);
	assert_int_equal(limit_cap_check("net:10.0.0.0/8", 0, 1,
	    T0 + 30 * 3600 + 900), 1);

	/* Both caps: whichever is reached first refuses. */
	limit_cap_add("user:carol", T0);
	limit_cap_add("user:carol", T0);
	assert_int_equal(limit_cap_check("user:carol", 2, 3, T0), 0);
	assert_int_equal(limit_cap_check("user:carol", 2, 3, T0 + 7200), 1);
	limit_cap_add("user:carol", T0 + 7200);
	assert_int_equal(limit_cap_check("user:carol", 2, 3, T0 + 7200), 0);
	assert_int_equal(limit_cap_check("user:carol", 2, 3, T0 + 20 * 3600),
	    0);
	assert_int_equal(limit_cap_check("user:carol", 2, 3, T0 + 25 * 3600),
	    1);
}

/*
 * The counters file.
 */

static void
test_persist(void **state)
{
	const char *odd = "user:al ice\n%x\t\xc3\xa9";
	time_t now = time(NULL);
	char *text;
	int i;

	(void)state;
	init(0, 0, 0, 0, 0, counters);
	for (i = 0; i < 3; i++)
		limit_cap_add("user:alice", now - 7200);
	limit_cap_add("user:alice", now - 60);
	limit_cap_add("user:alice", now - 30);
	limit_cap_add(odd, now - 10);
	limit_cap_add("net:192.0.2.0/24", now - 3 * 86400);
	assert_int_equal(limit_save(), 0);
	assert_no_temp_files();
	text = tu_read_file(counters);
	assert_non_null(strstr(text, "sluice-counters 1\n"));
	assert_non_null(strstr(text, "user:al%20ice%0A%25x%09%C3%A9 h"));
	assert_non_null(strstr(text, "end 2\n"));
	assert_null(strstr(text, "192.0.2.0"));
	free(text);
	limit_shutdown();
	assert_no_temp_files();

	init(0, 0, 0, 0, 0, counters);
	assert_int_equal(limit_cap_check("user:alice", 2, 0, now), 0);
	assert_int_equal(limit_cap_check("user:alice", 3, 0, now), 1);
	assert_int_equal(limit_cap_check("user:alice", 0, 5, now), 0);
	assert_int_equal(limit_cap_check("user:alice", 0, 6, now), 1);
	assert_int_equal(limit_cap_check(odd, 1, 0, now), 0);
	assert_int_equal(limit_cap_check(odd, 2, 0, now), 1);
	assert_int_equal(limit_cap_check("net:192.0.2.0/24", 1, 1, now), 1);
	/* Still sliding after the restart. */
	assert_int_equal(limit_cap_check("user:alice", 0, 5,
	    now - 7200 + 86400 + 900), 1);
}

/* A sound file first, so the damaged ones are known to matter. */
static void
read_sound_file(time_t now)
{
	char text[512];

	snprintf(text, sizeof(text),
	    "sluice-counters 1\nuser:bob h%lld:5 d%lld:5\nend 1\n",
	    (long long)now, (long long)(now / 900 * 900));
	tu_write_file(counters, text);
	init(0, 0, 0, 0, 0, counters);
	assert_int_equal(limit_cap_check("user:bob", 5, 0, now), 0);
	assert_int_equal(limit_cap_check("user:bob", 0, 5, now), 0);
	assert_int_equal(limit_cap_check("user:bob", 0, 6, now), 1);
	limit_shutdown();
}

static void
test_damaged(void **state)
{
	static const char *bad[] = {
		"",
		"sluice-counters 2\nuser:bob h%lld:5\nend 1\n",
		"sluice-counters 1\nuser:bob h%lld:5\n",
		"sluice-counters 1\nuser:bob h%lld:5\nend 2\n",
		"sluice-counters 1\nuser:bob h%lld:5\nend 1",
		"sluice-counters 1\nuser:bob h%lld:5\nend 1\njunk\n",
		"sluice-counters 1\nuser:bob h%lld:5 x1:2\nend 1\n",
		"sluice-counters 1\nuser:bob h%lld:0\nend 1\n",
		"sluice-counters 1\nuser:bob h%lld:-5\nend 1\n",
		"sluice-counters 1\nuser:bob h%lld:99999999999\nend 1\n",
		"sluice-counters 1\nuser:bob h%lld5\nend 1\n",
		"sluice-counters 1\nuser:bob h%lld:5  \nend 1\n",
		"sluice-counters 1\nuser%%2:bob h%lld:5\nend 1\n",
		"sluice-counters 1\nuser%%00bob h%lld:5\nend 1\n",
		"sluice-counters 1\nuser:bob h%lld:5\nuser:bob h1:1\nend 2\n",
		"sluice-counters 1\n h%lld:5\nend 1\n",
		"\x7f\x45LF\x02\x01\x01%lld\n\n\n",
	};
	time_t now = time(NULL) / 60 * 60;
	char text[512];
	size_t i;

	(void)state;
	read_sound_file(now);
	for (i = 0; i < nitems(bad); i++) {
		snprintf(text, sizeof(text), bad[i], (long long)now);
		tu_write_file(counters, text);
		init(0, 0, 0, 0, 0, counters);
		if (limit_cap_check("user:bob", 1, 1, now) != 1)
			fail_msg("damaged file %zu was read", i);
		limit_shutdown();
	}

	/* A missing file or directory is no error either. */
	unlink(counters);
	init(0, 0, 0, 0, 0, "/nonexistent/dir/counters");
	assert_int_equal(limit_cap_check("user:bob", 1, 1, now), 1);
	limit_cap_add("user:bob", now);
	assert_int_equal(limit_save(), -1);
}

/*
 * Bounds and threads.
 */

static void
test_table_bound(void **state)
{
	char ip[64];
	int i;

	(void)state;
	init(1, 10, 3, 600, 3600, NULL);
	/* State that must survive the flood: a session and a ban. */
	assert_int_equal(limit_connect("192.0.2.1", T0), LIMIT_OK);
	for (i = 0; i < 200000; i++) {
		snprintf(ip, sizeof(ip), "2001:db8::%x:%x", i >> 16,
		    i & 0xffff);
		assert_int_equal(touch(ip, T0), LIMIT_OK);
	}
	assert_true(limit_table_size() <= TABLE_MAX);
	assert_true(limit_table_size() >= TABLE_MAX / 2);
	assert_int_equal(limit_connect("192.0.2.1", T0),
	    LIMIT_TOO_MANY_SESSIONS);
	limit_disconnect("192.0.2.1");
	assert_int_equal(limit_connect("192.0.2.1", T0), LIMIT_OK);
	limit_disconnect("192.0.2.1");
	limit_shutdown();

	/* With time passing, idle entries go long before the cap. */
	init(1, 10, 3, 600, 3600, NULL);
	limit_auth_failed("192.0.2.1", T0);
	limit_auth_failed("192.0.2.1", T0);
	assert_int_equal(limit_auth_failed("192.0.2.1", T0), 1);
	for (i = 0; i < 200000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16,
		    (i >> 8) & 255, i & 255);
		assert_int_equal(touch(ip, T0 + i / 100), LIMIT_OK);
	}
	assert_true(limit_table_size() < 20000);
	/* Still banned: T0 + 1999 < T0 + 3600. */
	assert_true(limit_is_banned("192.0.2.1", T0 + 1999));
}

struct worker_arg {
	int	id;
	int	refused;
};

static void *
worker(void *arg)
{
	struct worker_arg *w = arg;
	char a[32], b[32], own[32];
	int i;

	for (i = 0; i < NLOOPS; i++) {
		snprintf(a, sizeof(a), "10.0.0.%d", (i + w->id) % NSHARED);
		snprintf(b, sizeof(b), "10.0.0.%d",
		    (i + w->id + 1) % NSHARED);
		snprintf(own, sizeof(own), "172.16.%d.%d", w->id, i % 5000);
		w->refused += limit_connect(a, T0 + i / 1000) != LIMIT_OK;
		w->refused += limit_connect(b, T0 + i / 1000) != LIMIT_OK;
		w->refused += touch(own, T0 + i / 1000) != LIMIT_OK;
		limit_disconnect(a);
		limit_disconnect(b);
		if (i % 20 == 0) {
			limit_cap_add("user:shared", T0);
			(void)limit_cap_check("user:shared", 1, 1, T0);
			(void)limit_is_banned(a, T0);
		}
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t th[NTHREADS];
	struct worker_arg args[NTHREADS];
	char ip[32];
	int i, j;

	(void)state;
	init(NTHREADS, 0, 0, 0, 0, NULL);
	for (i = 0; i < NTHREADS; i++) {
		args[i].id = i;
		args[i].refused = 0;
		assert_int_equal(pthread_create(&th[i], NULL, worker,
		    &args[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].refused, 0);
	}
	/* Every session was closed: the full quota is free again. */
	for (i = 0; i < NSHARED; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i);
		for (j = 0; j < NTHREADS; j++)
			assert_int_equal(limit_connect(ip, T0 + 100), LIMIT_OK);
		assert_int_equal(limit_connect(ip, T0 + 100),
		    LIMIT_TOO_MANY_SESSIONS);
	}
	i = NTHREADS * (NLOOPS / 20);
	assert_int_equal(limit_cap_check("user:shared", (unsigned)i, 0, T0),
	    0);
	assert_int_equal(limit_cap_check("user:shared", (unsigned)i + 1, 0,
	    T0), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sessions, teardown_limit),
		cmocka_unit_test_teardown(test_rate_sliding, teardown_limit),
		cmocka_unit_test_teardown(test_ban, teardown_limit),
		cmocka_unit_test_teardown(test_fail_window, teardown_limit),
		cmocka_unit_test_teardown(test_unlimited, teardown_limit),
		cmocka_unit_test_teardown(test_cap_hour, teardown_limit),
		cmocka_unit_test_teardown(test_cap_day, teardown_limit),
		cmocka_unit_test_teardown(test_persist, teardown_limit),
		cmocka_unit_test_teardown(test_damaged, teardown_limit),
		cmocka_unit_test_teardown(test_table_bound, teardown_limit),
		cmocka_unit_test_teardown(test_threads, teardown_limit),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
