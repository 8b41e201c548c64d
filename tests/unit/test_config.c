/*
 * test_config.c -- unit tests for config.c: defaults, every value type,
 * bounds at and one past each limit, and the exact "FILE:LINE: ..."
 * error strings.  Writes its config files to a fresh temp directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "util.h"

static char	tmpdir[64];
static char	conf_path[128];
static char	err[CONFIG_ERR_MAX];

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* Write text to the test file and load it; returns config_load's result. */
static int
load_text(struct config *cfg, const char *text)
{
	write_file(conf_path, text);
	err[0] = '\0';
	return config_load(cfg, conf_path, err, sizeof(err));
}

/* The load must fail with exactly "PATH:LINE: msg". */
static void
expect_error(const char *text, unsigned line, const char *msg)
{
	struct config cfg;
	char want[CONFIG_ERR_MAX];

	snprintf(want, sizeof(want), "%s:%u: %s", conf_path, line, msg);
	if (load_text(&cfg, text) != -1)
		fail_msg("accepted: %s", text);
	assert_string_equal(err, want);
}

static void
expect_ok(struct config *cfg, const char *text)
{
	if (load_text(cfg, text) != 0)
		fail_msg("rejected: %s -> %s", text, err);
	assert_string_equal(err, "");
}

static void
test_defaults(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	assert_true(cfg.hostname[0] != '\0');
	assert_string_equal(cfg.spool_dir, "./var/spool");
	assert_int_equal(cfg.workers, 0);
	assert_int_equal(cfg.spool_sync, SPOOL_SYNC_SYNCFS);
	assert_int_equal(cfg.nlisteners, 1);
	assert_string_equal(cfg.listeners[0].address, "127.0.0.1:2525");
	assert_string_equal(cfg.listeners[0].host, "127.0.0.1");
	assert_string_equal(cfg.listeners[0].port, "2525");
	assert_int_equal(cfg.listeners[0].role, LISTENER_SMTP);
	assert_int_equal(cfg.max_message_size, 26214400);
	assert_int_equal(cfg.max_recipients, 1000);
	assert_int_equal(cfg.max_command_line, 512);
	assert_int_equal(cfg.max_text_line, 1000);
	assert_int_equal(cfg.max_errors, 20);
	assert_int_equal(cfg.max_sessions, 10000);
	assert_int_equal(cfg.command_timeout, 300);
	assert_int_equal(cfg.data_timeout, 180);
	assert_int_equal(cfg.greeting_delay, 0);
	assert_int_equal(cfg.log_level, LOG_LVL_INFO);
}

/* An empty file gives the defaults, plus the file name. */
static void
test_empty_file(void **state)
{
	struct config cfg, def;

	(void)state;
	expect_ok(&cfg, "# nothing\n");
	config_defaults(&def);
	assert_string_equal(cfg.file, conf_path);
	strlcpy(def.file, conf_path, sizeof(def.file));
	assert_memory_equal(&cfg, &def, sizeof(cfg));
}

static const char full_conf[] =
    "hostname = \"mx.example.org\";\n"
    "spool_dir = \"/var/spool/sluice\";\n"
    "workers = 8;\n"
    "spool_sync = \"fsync\";\n"
    "listeners = (\n"
    "  { address = \"192.0.2.1:25\"; },\n"
    "  { address = \"[2001:db8::1]:587\"; role = \"submission\"; },\n"
    "  { address = \"[::]:465\"; role = \"submissions\"; }\n"
    ");\n"
    "max_message_size = \"50M\";\n"
    "max_recipients = 500;\n"
    "max_command_line = 2048;\n"
    "max_text_line = 2000;\n"
    "max_errors = 5;\n"
    "max_sessions = 300;\n"
    "command_timeout = \"1h\";\n"
    "data_timeout = 90;\n"
    "greeting_delay = \"5s\";\n"
    "log_level = \"debug\";\n";

static void
test_full(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok(&cfg, full_conf);
	assert_string_equal(cfg.hostname, "mx.example.org");
	assert_string_equal(cfg.spool_dir, "/var/spool/sluice");
	assert_int_equal(cfg.workers, 8);
	assert_int_equal(cfg.spool_sync, SPOOL_SYNC_FSYNC);
	assert_int_equal(cfg.nlisteners, 3);
	assert_string_equal(cfg.listeners[0].host, "192.0.2.1");
	assert_string_equal(cfg.listeners[0].port, "25");
	assert_int_equal(cfg.listeners[0].role, LISTENER_SMTP);
	assert_string_equal(cfg.listeners[1].address, "[2001:db8::1]:587");
	assert_string_equal(cfg.listeners[1].host, "2001:db8::1");
	assert_string_equal(cfg.listeners[1].port, "587");
	assert_int_equal(cfg.listeners[1].role, LISTENER_SUBMISSION);
	assert_string_equal(cfg.listeners[2].host, "::");
	assert_int_equal(cfg.listeners[2].role, LISTENER_SUBMISSIONS);
	assert_int_equal(cfg.max_message_size, 50 * 1024 * 1024);
	assert_int_equal(cfg.max_recipients, 500);
	assert_int_equal(cfg.max_command_line, 2048);
	assert_int_equal(cfg.max_text_line, 2000);
	assert_int_equal(cfg.max_errors, 5);
	assert_int_equal(cfg.max_sessions, 300);
	assert_int_equal(cfg.command_timeout, 3600);
	assert_int_equal(cfg.data_timeout, 90);
	assert_int_equal(cfg.greeting_delay, 5);
	assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
}

struct uint_case {
	const char	*key;
	unsigned	 min;
	unsigned	 max;
	const char	*ref;		/* ends the below-minimum error */
	size_t		 off;
};

#define UC(k, lo, hi, ref) { #k, lo, hi, ref, offsetof(struct config, k) }

static const struct uint_case uint_cases[] = {
	UC(workers, 0, 64, ""),
	UC(max_recipients, 100, 100000, " (RFC 5321 4.5.3.1.8)"),
	UC(max_command_line, 512, 65536, " (RFC 5321 4.5.3.1.4)"),
	UC(max_text_line, 1000, 1000000, " (RFC 5321 4.5.3.1.6)"),
	UC(max_errors, 1, 1000, ""),
	UC(max_sessions, 1, 1000000, ""),
};

/* Each unsigned key at min and max, then one below and one above. */
static void
test_uint_bounds(void **state)
{
	const struct uint_case *c;
	struct config cfg;
	char text[256], msg[256];
	unsigned v;
	size_t i;

	(void)state;
	for (i = 0; i < nitems(uint_cases); i++) {
		c = &uint_cases[i];
		snprintf(text, sizeof(text), "# x\n\n%s = %u;\n", c->key,
		    c->min);
		expect_ok(&cfg, text);
		memcpy(&v, (char *)&cfg + c->off, sizeof(v));
		assert_int_equal(v, c->min);
		snprintf(text, sizeof(text), "%s = %u;\n", c->key, c->max);
		expect_ok(&cfg, text);
		memcpy(&v, (char *)&cfg + c->off, sizeof(v));
		assert_int_equal(v, c->max);
		snprintf(text, sizeof(text), "# x\n\n%s = %u;\n", c->key,
		    c->max + 1);
		snprintf(msg, sizeof(msg), "%s: %u is above the maximum %u",
		    c->key, c->max + 1, c->max);
		expect_error(text, 3, msg);
		if (c->min == 0)
			continue;
		snprintf(text, sizeof(text), "\n%s = %u;\n", c->key,
		    c->min - 1);
		snprintf(msg, sizeof(msg), "%s: %u is below the minimum %u%s",
		    c->key, c->min - 1, c->min, c->ref);
		expect_error(text, 2, msg);
	}
	expect_error("workers = -1;\n", 1,
	    "workers: -1 is below the minimum 0");
}

static void
test_max_recipients_message(void **state)
{
	(void)state;
	expect_error("hostname = \"a.example\";\n\n\n\n\n\n"
	    "max_recipients = 50;\n", 7,
	    "max_recipients: 50 is below the minimum 100 (RFC 5321 4.5.3.1.8)");
}

static void
test_size(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "max_message_size = 10240;\n");
	assert_int_equal(cfg.max_message_size, 10240);
	expect_ok(&cfg, "max_message_size = \"10K\";\n");
	assert_int_equal(cfg.max_message_size, 10240);
	expect_ok(&cfg, "max_message_size = \"25m\";\n");
	assert_int_equal(cfg.max_message_size, 26214400);
	expect_ok(&cfg, "max_message_size = \"2G\";\n");
	assert_int_equal(cfg.max_message_size, 2147483648ULL);
	expect_ok(&cfg, "max_message_size = 2147483648L;\n");
	assert_int_equal(cfg.max_message_size, 2147483648ULL);
	expect_ok(&cfg, "max_message_size = \"1000000\";\n");
	assert_int_equal(cfg.max_message_size, 1000000);
	expect_error("max_message_size = 10239;\n", 1,
	    "max_message_size: 10239 is below the minimum 10K");
	expect_error("max_message_size = 2147483649L;\n", 1,
	    "max_message_size: 2147483649 is above the maximum 2G");
	expect_error("max_message_size = \"3G\";\n", 1,
	    "max_message_size: 3G is above the maximum 2G");
	expect_error("max_message_size = \"25X\";\n", 1,
	    "max_message_size: expected a size: octets or a string like "
	    "\"25M\" (K, M, G)");
	expect_error("max_message_size = \"M\";\n", 1,
	    "max_message_size: expected a size: octets or a string like "
	    "\"25M\" (K, M, G)");
	expect_error("max_message_size = 1.5;\n", 1,
	    "max_message_size: expected a size: octets or a string like "
	    "\"25M\" (K, M, G)");
	expect_error("max_message_size = \"99999999999999999999G\";\n", 1,
	    "max_message_size: expected a size: octets or a string like "
	    "\"25M\" (K, M, G)");
}

static void
test_duration(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "command_timeout = 1;\ndata_timeout = \"60m\";\n"
	    "greeting_delay = \"5m\";\n");
	assert_int_equal(cfg.command_timeout, 1);
	assert_int_equal(cfg.data_timeout, 3600);
	assert_int_equal(cfg.greeting_delay, 300);
	expect_ok(&cfg, "command_timeout = \"90s\";\ndata_timeout = \"1h\";\n"
	    "greeting_delay = 0;\n");
	assert_int_equal(cfg.command_timeout, 90);
	assert_int_equal(cfg.data_timeout, 3600);
	assert_int_equal(cfg.greeting_delay, 0);
	expect_error("\ncommand_timeout = 0;\n", 2,
	    "command_timeout: 0 is below the minimum 1s (RFC 5321 4.5.3.2.7)");
	expect_error("data_timeout = 3601;\n", 1,
	    "data_timeout: 3601s is above the maximum 1h");
	expect_error("data_timeout = \"1d\";\n", 1,
	    "data_timeout: 1d is above the maximum 1h");
	expect_error("greeting_delay = \"301s\";\n", 1,
	    "greeting_delay: 301s is above the maximum 5m");
	expect_error("command_timeout = \"5 m\";\n", 1,
	    "command_timeout: expected a duration: seconds or a string like "
	    "\"5m\" (s, m, h, d)");
	expect_error("command_timeout = \"5M\";\n", 1,
	    "command_timeout: expected a duration: seconds or a string like "
	    "\"5m\" (s, m, h, d)");
}

static void
test_strings(void **state)
{
	struct config cfg;
	char text[512], name[300];

	(void)state;
	expect_ok(&cfg, "hostname = \"localhost\";\n");
	assert_string_equal(cfg.hostname, "localhost");
	expect_error("hostname = \"\";\n", 1, "hostname: must not be empty");
	expect_error("hostname = \"bad_name.example\";\n", 1,
	    "hostname: not a domain name (letters, digits, '-' and '.'; "
	    "labels of 1 to 63)");
	expect_error("hostname = \"a..b\";\n", 1,
	    "hostname: not a domain name (letters, digits, '-' and '.'; "
	    "labels of 1 to 63)");
	expect_error("hostname = 5;\n", 1, "hostname: expected a string");
	/* 255 characters is the limit (RFC 5321 4.5.3.1.2). */
	memset(name, 'a', sizeof(name));
	for (size_t i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	name[255] = '\0';
	snprintf(text, sizeof(text), "hostname = \"%s\";\n", name);
	expect_ok(&cfg, text);
	assert_int_equal(strlen(cfg.hostname), 255);
	name[255] = 'a';
	name[256] = '\0';
	snprintf(text, sizeof(text), "hostname = \"%s\";\n", name);
	expect_error(text, 1, "hostname: longer than 255 characters");
	expect_error("spool_dir = \"\";\n", 1, "spool_dir: must not be empty");
	expect_error("spool_dir = \"a\\nb\";\n", 1,
	    "spool_dir: contains a control character");
}

static void
test_enums(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "log_level = \"warn\";\nspool_sync = \"syncfs\";\n");
	assert_int_equal(cfg.log_level, LOG_LVL_WARN);
	assert_int_equal(cfg.spool_sync, SPOOL_SYNC_SYNCFS);
	expect_error("# a\n# b\n# c\nspool_sync = \"sync\";\n", 4,
	    "spool_sync: expected one of \"syncfs\", \"fsync\"");
	expect_error("log_level = \"INFO\";\n", 1,
	    "log_level: expected one of \"warn\", \"info\", \"debug\"");
	expect_error("log_level = 2;\n", 1,
	    "log_level: expected one of \"warn\", \"info\", \"debug\"");
	expect_error("listeners = (\n{ address = \"127.0.0.1:25\";\n"
	    "role = \"mx\"; });\n", 3, "listeners[0].role: expected one of "
	    "\"smtp\", \"submission\", \"submissions\"");
}

static void
test_unknown_keys(void **state)
{
	(void)state;
	expect_error("hostname = \"a.example\";\n\nmax_recipient = 100;\n", 3,
	    "unknown key 'max_recipient'");
	expect_error("listeners = (\n  { address = \"127.0.0.1:25\"; },\n"
	    "  { address = \"127.0.0.1:26\";\n    port = 26; }\n);\n", 4,
	    "listeners[1]: unknown key 'port'");
	expect_error("tls = { cert = \"x\"; };\n", 1, "unknown key 'tls'");
}

static void
test_types(void **state)
{
	(void)state;
	expect_error("max_errors = \"5\";\n", 1,
	    "max_errors: expected an unsigned integer");
	expect_error("max_errors = 5.0;\n", 1,
	    "max_errors: expected an unsigned integer");
	expect_error("max_errors = true;\n", 1,
	    "max_errors: expected an unsigned integer");
	expect_error("max_errors = [5];\n", 1,
	    "max_errors: expected an unsigned integer");
	/* libconfig 1.5 would wrap this to 100 without the scan. */
	expect_error("\nmax_recipients = 4294967396;\n", 2,
	    "max_recipients: 4294967396 does not fit in 32 bits; add an L "
	    "suffix or write it as a string");
	expect_error("max_errors = 0x100000000;\n", 1,
	    "max_errors: 0x100000000 does not fit in 32 bits; add an L "
	    "suffix or write it as a string");
	expect_error("max_recipients = 4294967396L;\n", 1,
	    "max_recipients: 4294967396 is above the maximum 100000");
}

#define V4	"not a numeric IPv4 address (IPv6 goes in [])"

static void
test_addresses(void **state)
{
	static const struct {
		const char *addr, *why;
	} bad[] = {
		{ "127.0.0.1", "expected \"IP:PORT\", e.g. \"127.0.0.1:25\" or "
		    "\"[::1]:25\"" },
		{ "localhost:25", V4 },
		{ "::1:25", V4 },
		{ "[::1:25", "an IPv6 address is written \"[::1]:25\"" },
		{ "[127.0.0.1]:25", "not a numeric IPv6 address" },
		{ "127.0.0.1:0", "port must be a number from 1 to 65535" },
		{ "127.0.0.1:65536", "port must be a number from 1 to 65535" },
		{ "127.0.0.1:", "port must be a number from 1 to 65535" },
		{ "127.0.0.1:smtp", "port must be a number from 1 to 65535" },
		{ "300.0.0.1:25", V4 },
	};
	struct config cfg;
	char text[256], msg[256];
	size_t i;

	(void)state;
	for (i = 0; i < nitems(bad); i++) {
		snprintf(text, sizeof(text), "listeners = (\n"
		    "{ role = \"smtp\";\n  address = \"%s\"; }\n);\n",
		    bad[i].addr);
		snprintf(msg, sizeof(msg), "listeners[0].address: \"%s\": %s",
		    bad[i].addr, bad[i].why);
		expect_error(text, 3, msg);
	}
	expect_ok(&cfg, "listeners = ({ address = \"[::1]:2525\"; },\n"
	    "{ address = \"[0:0::ffff:7f00:1]:65535\"; });\n");
	assert_string_equal(cfg.listeners[0].host, "::1");
	assert_string_equal(cfg.listeners[0].port, "2525");
	assert_string_equal(cfg.listeners[1].host, "::ffff:127.0.0.1");
	assert_string_equal(cfg.listeners[1].port, "65535");
	expect_error("listeners = ({ address = \"[::1]:25\"; },\n"
	    "{ address = \"[0::1]:25\"; });\n", 2,
	    "listeners[1]: address [0::1]:25 is already used by listeners[0]");
}

static void
test_listener_shapes(void **state)
{
	struct config cfg;
	char text[2048];
	size_t len;
	int i;

	(void)state;
	expect_error("listeners = ();\n", 1,
	    "listeners: at least one listener is required");
	expect_error("listeners = { address = \"127.0.0.1:25\"; };\n", 1,
	    "listeners: expected a list of groups ( { address = \"IP:PORT\"; "
	    "}, ... )");
	expect_error("listeners = \"127.0.0.1:25\";\n", 1,
	    "listeners: expected a list of groups ( { address = \"IP:PORT\"; "
	    "}, ... )");
	expect_error("listeners = ( \"127.0.0.1:25\" );\n", 1,
	    "listeners[0]: expected a group { address = \"IP:PORT\"; "
	    "role = \"smtp\"; }");
	expect_error("listeners = (\n\n  { role = \"smtp\"; }\n);\n", 3,
	    "listeners[0]: address is required");
	len = strlcpy(text, "listeners = (\n", sizeof(text));
	for (i = 0; i < CONFIG_LISTENERS_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "{ address = \"127.0.0.1:%d\"; },\n", 2500 + i);
	strlcpy(text + len, "{ address = \"127.0.0.1:9999\"; } );\n",
	    sizeof(text) - len);
	expect_error(text, 1,
	    "listeners: 17 listeners, at most 16 are allowed");
	strlcpy(strrchr(text, '{'), ");\n", 4);
	text[len - 2] = ' ';		/* drop the comma after the 16th */
	expect_ok(&cfg, text);
	assert_int_equal(cfg.nlisteners, CONFIG_LISTENERS_MAX);
	assert_string_equal(cfg.listeners[15].port, "2515");
}

static void
test_file_errors(void **state)
{
	struct config cfg;
	char path[256], want[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	assert_int_equal(config_load(&cfg, tmpdir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: Is a directory", tmpdir);
	assert_string_equal(err, want);
	expect_error("workers = 4;\nmax_errors = ;\n", 2, "syntax error");
	expect_error("workers = 4;\nworkers = 5;\n", 2,
	    "duplicate setting name");
}

/* A failed load leaves the caller's config as it was (reloads). */
static void
test_failed_load_keeps_config(void **state)
{
	struct config cfg, copy;

	(void)state;
	expect_ok(&cfg, full_conf);
	copy = cfg;
	assert_int_equal(load_text(&cfg, "workers = 2;\nmax_errors = 0;\n"),
	    -1);
	assert_memory_equal(&cfg, &copy, sizeof(cfg));
}

/* config_dump writes a file that loads back to the same config. */
static void
test_dump_round_trip(void **state)
{
	struct config cfg, again;
	char path[256];
	FILE *fp;

	(void)state;
	expect_ok(&cfg, full_conf);
	snprintf(path, sizeof(path), "%s/dump.conf", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	config_dump(&cfg, fp);
	assert_int_equal(fclose(fp), 0);
	if (config_load(&again, path, err, sizeof(err)) != 0)
		fail_msg("dump does not load: %s", err);
	strlcpy(again.file, cfg.file, sizeof(again.file));
	assert_memory_equal(&cfg, &again, sizeof(cfg));
	unlink(path);
}

/* The bundled file, when run from the top of the tree as `make unit` does. */
static void
test_bundled_config(void **state)
{
	struct config cfg;

	(void)state;
	if (access("etc/sluice.conf", R_OK) != 0)
		skip();
	if (config_load(&cfg, "etc/sluice.conf", err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg.hostname, "sluice.localdomain");
	assert_int_equal(cfg.nlisteners, 1);
	assert_string_equal(cfg.listeners[0].address, "127.0.0.1:2525");
}

static int
setup(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX",
	    base != NULL && strlen(base) < 32 ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/sluice.conf", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(conf_path);
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_uint_bounds),
		cmocka_unit_test(test_max_recipients_message),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_listener_shapes),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_failed_load_keeps_config),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_bundled_config),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
