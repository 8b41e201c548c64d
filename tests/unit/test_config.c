/*
 * test_config.c -- unit tests for config.c: defaults, every value type,
 * bounds at and one past each limit, and the exact "FILE:LINE: ..."
 * error strings.  Writes its config files to a fresh temp directory.
 * A struct config is 2.4 MB (users[]): tests that hold two keep them
 * static, so as not to crowd the stack.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
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
#include "testutil.h"

static char	tmpdir[64];
static char	conf_path[128];
static char	err[CONFIG_ERR_MAX];

/* A file the load must refuse, with exactly "PATH:LINE: msg". */
struct err_case {
	const char	*text;
	unsigned	 line;
	const char	*msg;
};

/* Each case in a table; a failure names the test and the row. */
#define EXPECT_ERRORS(cases)	expect_errors(__func__, (cases), nitems(cases))

/* Write text to the test file and load it; returns config_load's result. */
static int
load_text(struct config *cfg, const char *text)
{
	tu_write_file(conf_path, text);
	err[0] = '\0';
	return config_load(cfg, conf_path, err, sizeof(err));
}

/* The load must fail with exactly "PATH:LINE: msg"; where names the case. */
static void
check_error(const char *where, const char *text, unsigned line,
    const char *msg)
{
	static struct config cfg;
	char want[CONFIG_ERR_MAX];

	snprintf(want, sizeof(want), "%s:%u: %s", conf_path, line, msg);
	if (load_text(&cfg, text) != -1)
		fail_msg("%saccepted: %s", where, text);
	if (strcmp(err, want) != 0)
		fail_msg("%s%s\n got: %s\nwant: %s", where, text, err, want);
}

static void
expect_error(const char *text, unsigned line, const char *msg)
{
	check_error("", text, line, msg);
}

static void
expect_errors(const char *test, const struct err_case *cases, size_t n)
{
	char where[128];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "%s, case %zu: ", test, i);
		check_error(where, cases[i].text, cases[i].line, cases[i].msg);
	}
}

static void
expect_ok(struct config *cfg, const char *text)
{
	if (load_text(cfg, text) != 0)
		fail_msg("rejected: %s -> %s", text, err);
	assert_string_equal(err, "");
}

/* Load text; the unsigned at offset off in the config must be want. */
static void
expect_uint(const char *text, size_t off, unsigned want)
{
	static struct config cfg;
	unsigned v;

	expect_ok(&cfg, text);
	memcpy(&v, (char *)&cfg + off, sizeof(v));
	if (v != want)
		fail_msg("%s-> %u, want %u", text, v, want);
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

	assert_int_equal(cfg.nlocal_domains, 0);
	assert_string_equal(cfg.mailbox_root, "./var/mail");
	assert_string_equal(cfg.aliases_file, "");
	assert_string_equal(cfg.lmtp_address, "");
	assert_string_equal(cfg.smarthost.host, "");
	assert_int_equal(cfg.nroutes, 0);
	assert_string_equal(cfg.dns_forwarder, "");
	assert_int_equal(cfg.outbound_ipv6, 1);
	assert_int_equal(cfg.smtp_port, 25);
	assert_int_equal(cfg.outbound_tls, TLS_LEVEL_OPPORTUNISTIC);
	assert_string_equal(cfg.tls_ca_file, "");
	assert_int_equal(cfg.dest_concurrency, 20);
	assert_int_equal(cfg.outbound_concurrency, 200);
	assert_int_equal(cfg.max_messages_per_connection, 100);
	assert_int_equal(cfg.connect_timeout, 30);
	assert_int_equal(cfg.smtp_greeting_timeout, 300);
	assert_int_equal(cfg.smtp_command_timeout, 300);
	assert_int_equal(cfg.smtp_data_timeout, 180);
	assert_int_equal(cfg.smtp_done_timeout, 600);
	assert_int_equal(cfg.retry_min, 300);
	assert_int_equal(cfg.retry_max, 3600);
	assert_int_equal(cfg.queue_lifetime, 5 * 86400);
	assert_int_equal(cfg.delay_warning, 4 * 3600);
	assert_int_equal(cfg.max_received, 50);
	assert_int_equal(cfg.bounce_return_max, 1024 * 1024);

	assert_int_equal(cfg.listeners[0].auth_cleartext, 0);
	assert_string_equal(cfg.user, "sluice");
	assert_string_equal(cfg.group, "");
	assert_int_equal(cfg.ntls_certificates, 0);
	assert_string_equal(cfg.tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");
	assert_int_equal(cfg.tls_request_client_cert, 0);
	assert_string_equal(cfg.passwd_file, "");
	assert_int_equal(cfg.auth_fail_delay, 2);
	assert_int_equal(cfg.auth_fail_max, 5);
	assert_int_equal(cfg.auth_fail_window, 600);
	assert_int_equal(cfg.auth_ban_time, 3600);
	assert_int_equal(cfg.nrelay_networks, 2);
	assert_string_equal(cfg.relay_networks[0].cidr, "127.0.0.0/8");
	assert_int_equal(cfg.relay_networks[0].family, AF_INET);
	assert_int_equal(cfg.relay_networks[0].prefix, 8);
	assert_memory_equal(cfg.relay_networks[0].addr,
	    "\x7f\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
	assert_string_equal(cfg.relay_networks[1].cidr, "::1/128");
	assert_int_equal(cfg.relay_networks[1].family, AF_INET6);
	assert_int_equal(cfg.relay_networks[1].prefix, 128);
	assert_memory_equal(cfg.relay_networks[1].addr,
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
	assert_int_equal(cfg.nusers, 0);
	assert_int_equal(cfg.max_msgs_per_hour, 0);
	assert_int_equal(cfg.max_msgs_per_day, 0);
	assert_int_equal(cfg.max_rcpts_per_msg, 0);
	assert_int_equal(cfg.max_sessions_per_ip, 50);
	assert_int_equal(cfg.max_connect_rate, 120);
	assert_int_equal(cfg.soft_error_limit, 10);
	assert_int_equal(cfg.error_delay, 1);
}

/* An empty file gives the defaults, plus the file name. */
static void
test_empty_file(void **state)
{
	static struct config cfg, def;

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
    "log_level = \"debug\";\n"
    "local_domains = [ \"Example.ORG\", \"example.net\" ];\n"
    "mailbox_root = \"/var/mail/sluice\";\n"
    "lmtp_address = \"[::1]:24\";\n"
    "smarthost = {\n"
    "  host = \"smtp.provider.example\"; port = 587; tls = \"required\";\n"
    "  auth_user = \"relay@example.org\"; auth_password = \"s3cr\\\"t\";\n"
    "};\n"
    "routes = (\n"
    "  { domain = \"Partner.example\"; host = \"192.0.2.25\";"
    " tls = \"implicit\"; port = 465; },\n"
    "  { domain = \".partner.example\"; tls = \"none\"; },\n"
    "  { domain = \"bank.example\"; tls = \"required\"; }\n"
    ");\n"
    "dns_forwarder = \"2001:db8::53@5353\";\n"
    "outbound_ipv6 = false;\n"
    "smtp_port = 2525;\n"
    "outbound_tls = \"required\";\n"
    "dest_concurrency = 5;\n"
    "outbound_concurrency = 50;\n"
    "max_messages_per_connection = 10;\n"
    "connect_timeout = \"10s\";\n"
    "smtp_greeting_timeout = \"2m\";\n"
    "smtp_command_timeout = 120;\n"
    "smtp_data_timeout = \"1h\";\n"
    "smtp_done_timeout = \"15m\";\n"
    "retry_min = \"1m\";\n"
    "retry_max = \"2h\";\n"
    "queue_lifetime = \"3d\";\n"
    "delay_warning = 0;\n"
    "max_received = 30;\n"
    "bounce_return_max = \"100K\";\n";

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

	assert_int_equal(cfg.nlocal_domains, 2);
	assert_string_equal(cfg.local_domains[0], "example.org");
	assert_string_equal(cfg.local_domains[1], "example.net");
	assert_string_equal(cfg.mailbox_root, "/var/mail/sluice");
	assert_string_equal(cfg.lmtp_address, "[::1]:24");
	assert_string_equal(cfg.smarthost.domain, "");
	assert_string_equal(cfg.smarthost.host, "smtp.provider.example");
	assert_int_equal(cfg.smarthost.port, 587);
	assert_int_equal(cfg.smarthost.tls, TLS_LEVEL_REQUIRED);
	assert_string_equal(cfg.smarthost.auth_user, "relay@example.org");
	assert_string_equal(cfg.smarthost.auth_password, "s3cr\"t");
	assert_int_equal(cfg.nroutes, 3);
	assert_string_equal(cfg.routes[0].domain, "partner.example");
	assert_string_equal(cfg.routes[0].host, "192.0.2.25");
	assert_int_equal(cfg.routes[0].port, 465);
	assert_int_equal(cfg.routes[0].tls, TLS_LEVEL_IMPLICIT);
	assert_string_equal(cfg.routes[1].domain, ".partner.example");
	assert_string_equal(cfg.routes[1].host, "");
	assert_int_equal(cfg.routes[1].port, 25);
	assert_int_equal(cfg.routes[1].tls, TLS_LEVEL_NONE);
	assert_string_equal(cfg.routes[1].auth_user, "");
	assert_int_equal(cfg.routes[2].tls, TLS_LEVEL_REQUIRED);
	assert_string_equal(cfg.dns_forwarder, "2001:db8::53@5353");
	assert_int_equal(cfg.outbound_ipv6, 0);
	assert_int_equal(cfg.smtp_port, 2525);
	assert_int_equal(cfg.outbound_tls, TLS_LEVEL_REQUIRED);
	assert_int_equal(cfg.dest_concurrency, 5);
	assert_int_equal(cfg.outbound_concurrency, 50);
	assert_int_equal(cfg.max_messages_per_connection, 10);
	assert_int_equal(cfg.connect_timeout, 10);
	assert_int_equal(cfg.smtp_greeting_timeout, 120);
	assert_int_equal(cfg.smtp_command_timeout, 120);
	assert_int_equal(cfg.smtp_data_timeout, 3600);
	assert_int_equal(cfg.smtp_done_timeout, 900);
	assert_int_equal(cfg.retry_min, 60);
	assert_int_equal(cfg.retry_max, 7200);
	assert_int_equal(cfg.queue_lifetime, 3 * 86400);
	assert_int_equal(cfg.delay_warning, 0);
	assert_int_equal(cfg.max_received, 30);
	assert_int_equal(cfg.bounce_return_max, 100 * 1024);
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
	UC(smtp_port, 1, 65535, ""),
	UC(dest_concurrency, 1, 1000, ""),
	UC(outbound_concurrency, 1, 10000, ""),
	UC(max_messages_per_connection, 1, 100000, ""),
	UC(max_received, 1, 1000, ""),
	UC(auth_fail_max, 0, 1000, ""),
	UC(max_msgs_per_hour, 0, 10000000, ""),
	UC(max_msgs_per_day, 0, 10000000, ""),
	UC(max_rcpts_per_msg, 0, 10000000, ""),
	UC(max_sessions_per_ip, 0, 100000, ""),
	UC(max_connect_rate, 0, 100000, ""),
};

/* Each unsigned key at min and max, then one below and one above. */
static void
test_uint_bounds(void **state)
{
	const struct uint_case *c;
	char text[256], msg[256];
	size_t i;

	(void)state;
	for (i = 0; i < nitems(uint_cases); i++) {
		c = &uint_cases[i];
		snprintf(text, sizeof(text), "# x\n\n%s = %u;\n", c->key,
		    c->min);
		expect_uint(text, c->off, c->min);
		snprintf(text, sizeof(text), "%s = %u;\n", c->key, c->max);
		expect_uint(text, c->off, c->max);
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
	static const struct err_case errors[] = {
		{ "max_message_size = 10239;\n", 1,
		    "max_message_size: 10239 is below the minimum 10K" },
		{ "max_message_size = 2147483649L;\n", 1,
		    "max_message_size: 2147483649 is above the maximum 2G" },
		{ "max_message_size = \"3G\";\n", 1,
		    "max_message_size: 3G is above the maximum 2G" },
		{ "max_message_size = \"25X\";\n", 1,
		    "max_message_size: expected a size: octets or a string "
		    "like \"25M\" (K, M, G)" },
		{ "max_message_size = \"M\";\n", 1,
		    "max_message_size: expected a size: octets or a string "
		    "like \"25M\" (K, M, G)" },
		{ "max_message_size = 1.5;\n", 1,
		    "max_message_size: expected a size: octets or a string "
		    "like \"25M\" (K, M, G)" },
		{ "max_message_size = \"99999999999999999999G\";\n", 1,
		    "max_message_size: expected a size: octets or a string "
		    "like \"25M\" (K, M, G)" },
	};
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
	EXPECT_ERRORS(errors);
}

static void
test_duration(void **state)
{
	static const struct err_case errors[] = {
		{ "\ncommand_timeout = 0;\n", 2,
		    "command_timeout: 0 is below the minimum 1s (RFC 5321 "
		    "4.5.3.2.7)" },
		{ "data_timeout = 3601;\n", 1,
		    "data_timeout: 3601s is above the maximum 1h" },
		{ "data_timeout = \"1d\";\n", 1,
		    "data_timeout: 1d is above the maximum 1h" },
		{ "greeting_delay = \"301s\";\n", 1,
		    "greeting_delay: 301s is above the maximum 5m" },
		{ "command_timeout = \"5 m\";\n", 1,
		    "command_timeout: expected a duration: seconds or a "
		    "string like \"5m\" (s, m, h, d)" },
		{ "command_timeout = \"5M\";\n", 1,
		    "command_timeout: expected a duration: seconds or a "
		    "string like \"5m\" (s, m, h, d)" },
	};
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
	EXPECT_ERRORS(errors);
}

static void
test_strings(void **state)
{
	static const struct err_case errors[] = {
		{ "hostname = \"\";\n", 1, "hostname: must not be empty" },
		{ "hostname = \"bad_name.example\";\n", 1,
		    "hostname: not a domain name (letters, digits, '-' and "
		    "'.'; labels of 1 to 63)" },
		{ "hostname = \"a..b\";\n", 1,
		    "hostname: not a domain name (letters, digits, '-' and "
		    "'.'; labels of 1 to 63)" },
		{ "hostname = 5;\n", 1, "hostname: expected a string" },
	};
	struct config cfg;
	char text[512], name[300];

	(void)state;
	expect_ok(&cfg, "hostname = \"localhost\";\n");
	assert_string_equal(cfg.hostname, "localhost");
	EXPECT_ERRORS(errors);
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
	static const struct err_case errors[] = {
		{ "# a\n# b\n# c\nspool_sync = \"sync\";\n", 4,
		    "spool_sync: expected one of \"syncfs\", \"fsync\"" },
		{ "log_level = \"INFO\";\n", 1,
		    "log_level: expected one of \"warn\", \"info\", "
		    "\"debug\"" },
		{ "log_level = 2;\n", 1,
		    "log_level: expected one of \"warn\", \"info\", "
		    "\"debug\"" },
		{ "listeners = (\n{ address = \"127.0.0.1:25\";\n"
		    "role = \"mx\"; });\n", 3,
		    "listeners[0].role: expected one of \"smtp\", "
		    "\"submission\", \"submissions\"" },
	};
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "log_level = \"warn\";\nspool_sync = \"syncfs\";\n");
	assert_int_equal(cfg.log_level, LOG_LVL_WARN);
	assert_int_equal(cfg.spool_sync, SPOOL_SYNC_SYNCFS);
	EXPECT_ERRORS(errors);
}

#define V4	"not a numeric IPv4 address (IPv6 goes in [])"

struct dur_case {
	const char	*key;
	unsigned	 min;
	unsigned	 max;
	const char	*min_text;	/* as errors print the bounds */
	const char	*max_text;
	const char	*ref;
	size_t		 off;
};

#define DC(k, lo, hi, lt, ht, ref)					\
	{ #k, lo, hi, lt, ht, ref, offsetof(struct config, k) }

static const struct dur_case dur_cases[] = {
	DC(connect_timeout, 1, 600, "1s", "10m", ""),
	DC(smtp_greeting_timeout, 1, 3600, "1s", "1h",
	    " (RFC 5321 4.5.3.2.1)"),
	DC(smtp_command_timeout, 1, 3600, "1s", "1h",
	    " (RFC 5321 4.5.3.2.2)"),
	DC(smtp_data_timeout, 1, 3600, "1s", "1h", " (RFC 5321 4.5.3.2.5)"),
	DC(smtp_done_timeout, 1, 3600, "1s", "1h", " (RFC 5321 4.5.3.2.6)"),
	DC(retry_min, 1, 86400, "1s", "1d", ""),
	DC(queue_lifetime, 1, 8640000, "1s", "100d", ""),
	DC(delay_warning, 0, 8640000, "0", "100d", ""),
	DC(auth_fail_delay, 0, 60, "0", "1m", ""),
	DC(auth_fail_window, 1, 86400, "1s", "1d", ""),
	DC(auth_ban_time, 1, 2592000, "1s", "30d", ""),
	DC(error_delay, 0, 60, "0", "1m", ""),
};

/* The outbound durations at their bounds, and one past each. */
static void
test_duration_bounds(void **state)
{
	const struct dur_case *c;
	char text[256], msg[256];
	size_t i;

	(void)state;
	for (i = 0; i < nitems(dur_cases); i++) {
		c = &dur_cases[i];
		snprintf(text, sizeof(text), "%s = %u;\n", c->key, c->min);
		expect_uint(text, c->off, c->min);
		/* retry_max must stay >= retry_min (default 1h). */
		snprintf(text, sizeof(text), "%s = \"%s\";\nretry_max = "
		    "\"7d\";\n", c->key, c->max_text);
		expect_uint(text, c->off, c->max);
		snprintf(text, sizeof(text), "\n\n%s = %u;\n", c->key,
		    c->max + 1);
		snprintf(msg, sizeof(msg), "%s: %us is above the maximum %s",
		    c->key, c->max + 1, c->max_text);
		expect_error(text, 3, msg);
		if (c->min == 0)
			continue;
		snprintf(text, sizeof(text), "%s = 0;\n", c->key);
		snprintf(msg, sizeof(msg), "%s: 0 is below the minimum %s%s",
		    c->key, c->min_text, c->ref);
		expect_error(text, 1, msg);
	}
	expect_error("retry_max = \"8d\";\n", 1,
	    "retry_max: 8d is above the maximum 7d");
}

/* retry_max >= retry_min, reported where the file breaks it. */
static void
test_retry_order(void **state)
{
	static const struct err_case errors[] = {
		{ "retry_max = \"10m\";\n\nretry_min = \"15m\";\n", 1,
		    "retry_max: 10m is below retry_min (15m)" },
		{ "retry_max = \"4m\";\n", 1,
		    "retry_max: 4m is below retry_min (5m)" },
		{ "# only the minimum\nretry_min = \"2h\";\n", 2,
		    "retry_min: 2h is above retry_max (1h)" },
	};
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "retry_min = \"1h\";\nretry_max = \"1h\";\n");
	assert_int_equal(cfg.retry_min, 3600);
	assert_int_equal(cfg.retry_max, 3600);
	EXPECT_ERRORS(errors);
}

static void
test_bool(void **state)
{
	static const struct err_case errors[] = {
		{ "\noutbound_ipv6 = 0;\n", 2,
		    "outbound_ipv6: expected true or false" },
		{ "outbound_ipv6 = \"yes\";\n", 1,
		    "outbound_ipv6: expected true or false" },
		{ "smtp_port = true;\n", 1,
		    "smtp_port: expected an unsigned integer" },
	};
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "outbound_ipv6 = false;\n");
	assert_int_equal(cfg.outbound_ipv6, 0);
	expect_ok(&cfg, "outbound_ipv6 = true;\n");
	assert_int_equal(cfg.outbound_ipv6, 1);
	expect_ok(&cfg, "outbound_ipv6 = FALSE;\n");
	assert_int_equal(cfg.outbound_ipv6, 0);
	EXPECT_ERRORS(errors);
}

static void
test_size_bounce(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "bounce_return_max = 0;\n");
	assert_int_equal(cfg.bounce_return_max, 0);
	expect_ok(&cfg, "bounce_return_max = \"100M\";\n");
	assert_int_equal(cfg.bounce_return_max, 100 * 1024 * 1024);
	expect_error("bounce_return_max = 104857601;\n", 1,
	    "bounce_return_max: 104857601 is above the maximum 100M");
}

#define NOT_DOMAIN "not a domain name (letters, digits, '-' and '.'; " \
	"labels of 1 to 63)"

static void
test_local_domains(void **state)
{
	static const struct err_case errors[] = {
		{ "local_domains = [\n  \"a.example\",\n  \"b.example\","
		    "\n  \"A.EXAMPLE\" ];\n", 4,
		    "local_domains[2]: a.example is already listed as "
		    "local_domains[0]" },
		{ "local_domains = [\n\"a.example\",\n\"bad_name\" ];\n", 3,
		    "local_domains[1]: " NOT_DOMAIN },
		{ "local_domains = [ \"\" ];\n", 1,
		    "local_domains[0]: must not be empty" },
		{ "local_domains = ( \"a.example\",\n 5 );\n", 2,
		    "local_domains[1]: expected a string" },
		{ "local_domains = \"a.example\";\n", 1,
		    "local_domains: expected a list of strings [ \"...\", "
		    "... ]" },
		{ "local_domains = ( { domain = \"a.example\"; } );\n", 1,
		    "local_domains[0]: expected a string" },
	};
	struct config cfg;
	char *text;
	size_t len, cap = (CONFIG_DOMAINS_MAX + 2) * 32;
	int i;

	(void)state;
	expect_ok(&cfg, "local_domains = [];\n");
	assert_int_equal(cfg.nlocal_domains, 0);
	expect_ok(&cfg, "local_domains = ( \"A.Example\" );\n");
	assert_int_equal(cfg.nlocal_domains, 1);
	assert_string_equal(cfg.local_domains[0], "a.example");
	/* libconfig dates an entry by the token after it: "," or "]". */
	EXPECT_ERRORS(errors);
	text = malloc(cap);
	assert_non_null(text);
	len = strlcpy(text, "local_domains = [\n", cap);
	for (i = 0; i < CONFIG_DOMAINS_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "\"d%d.example\",\n", i);
	strlcpy(text + len, "\"one.more\" ];\n", cap - len);
	expect_error(text, 1,
	    "local_domains: 257 local_domains, at most 256 are allowed");
	strlcpy(text + len - 2, " ];\n", cap - len + 2);
	expect_ok(&cfg, text);
	assert_int_equal(cfg.nlocal_domains, CONFIG_DOMAINS_MAX);
	assert_string_equal(cfg.local_domains[255], "d255.example");
	free(text);
}

static void
test_paths(void **state)
{
	static const struct err_case errors[] = {
		{ "mailbox_root = \"\";\n", 1,
		    "mailbox_root: must not be empty" },
		{ "\naliases_file = \"/nonexistent/aliases\";\n", 2,
		    "aliases_file: /nonexistent/aliases: No such file or "
		    "directory" },
		{ "tls_ca_file = \"/nonexistent/ca.pem\";\n", 1,
		    "tls_ca_file: /nonexistent/ca.pem: No such file or "
		    "directory" },
	};
	struct config cfg;
	char text[1024], msg[512], path[256];

	(void)state;
	expect_ok(&cfg, "mailbox_root = \"mail\";\naliases_file = \"\";\n");
	assert_string_equal(cfg.mailbox_root, "mail");
	EXPECT_ERRORS(errors);
	snprintf(text, sizeof(text), "tls_ca_file = \"%s\";\n", tmpdir);
	snprintf(msg, sizeof(msg), "tls_ca_file: %s: Is a directory",
	    tmpdir);
	expect_error(text, 1, msg);
	expect_error("aliases_file = \"a\\tb\";\n", 1,
	    "aliases_file: contains a control character");
	/* The config file itself is readable. */
	snprintf(path, sizeof(path), "%s/aliases", tmpdir);
	tu_write_file(path, "postmaster: root\n");
	snprintf(text, sizeof(text), "aliases_file = \"%s\";\n"
	    "tls_ca_file = \"%s\";\n", path, path);
	expect_ok(&cfg, text);
	assert_string_equal(cfg.aliases_file, path);
	assert_string_equal(cfg.tls_ca_file, path);
	unlink(path);
}

static void
test_lmtp_and_forwarder(void **state)
{
	static const struct err_case errors[] = {
		{ "lmtp_address = \"localhost:24\";\n", 1,
		    "lmtp_address: \"localhost:24\": " V4 },
		{ "\nlmtp_address = \"[::1]:0\";\n", 2,
		    "lmtp_address: \"[::1]:0\": port must be a number from "
		    "1 to 65535" },
		{ "dns_forwarder = \"ns.example\";\n", 1,
		    "dns_forwarder: expected a numeric IP address, \"IP\" "
		    "or \"IP@PORT\"" },
		{ "dns_forwarder = \"[::1]:53\";\n", 1,
		    "dns_forwarder: expected a numeric IP address, \"IP\" "
		    "or \"IP@PORT\"" },
		{ "dns_forwarder = \"ffff:ffff:ffff:ffff:ffff:ffff:"
		    "255.255.255.2555\";\n", 1,
		    "dns_forwarder: expected a numeric IP address, \"IP\" "
		    "or \"IP@PORT\"" },
		{ "dns_forwarder = \"192.0.2.53@65536\";\n", 1,
		    "dns_forwarder: port must be a number from 1 to 65535" },
		{ "dns_forwarder = \"192.0.2.53@\";\n", 1,
		    "dns_forwarder: port must be a number from 1 to 65535" },
	};
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "lmtp_address = \"127.0.0.1:24\";\n"
	    "dns_forwarder = \"127.0.0.53\";\n");
	assert_string_equal(cfg.lmtp_address, "127.0.0.1:24");
	assert_string_equal(cfg.dns_forwarder, "127.0.0.53");
	expect_ok(&cfg, "lmtp_address = \"\";\n"
	    "dns_forwarder = \"192.0.2.53@5353\";\n");
	assert_string_equal(cfg.lmtp_address, "");
	expect_ok(&cfg, "dns_forwarder = \"::1\";\n");
	EXPECT_ERRORS(errors);
}

static void
test_outbound_tls(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "outbound_tls = \"none\";\n");
	assert_int_equal(cfg.outbound_tls, TLS_LEVEL_NONE);
	expect_error("outbound_tls = \"implicit\";\n", 1,
	    "outbound_tls: expected one of \"none\", \"opportunistic\", "
	    "\"required\"");
}

static void
test_smarthost(void **state)
{
	static const struct err_case errors[] = {
		{ "smarthost = {\n  port = 587;\n};\n", 1,
		    "smarthost: host is required" },
		{ "smarthost = {\n  host = \"\";\n};\n", 2,
		    "smarthost.host: must not be empty" },
		{ "smarthost = {\n  host = \"a.example\";\n"
		    "  domain = \"b.example\";\n};\n", 3,
		    "smarthost: unknown key 'domain'" },
		{ "smarthost = { host = \"a.example\";\n"
		    "  auth_user = \"u\"; };\n", 2,
		    "smarthost.auth_user: set without auth_password" },
		{ "smarthost = { host = \"a.example\";\n"
		    "  auth_user = \"\";\n  auth_password = \"p\"; };\n", 3,
		    "smarthost.auth_password: set without auth_user" },
		{ "smarthost = { host = \"a.example\"; port = 0; };\n", 1,
		    "smarthost.port: 0 is below the minimum 1" },
		{ "smarthost = { host = \"a.example\";\nport = 65536; };\n", 2,
		    "smarthost.port: 65536 is above the maximum 65535" },
		{ "smarthost = { host = \"a.example\"; tls = \"yes\"; };\n", 1,
		    "smarthost.tls: expected one of \"none\", "
		    "\"opportunistic\", \"required\", \"implicit\"" },
		{ "smarthost = { host = \"a_b.example\"; };\n", 1,
		    "smarthost.host: not a host name or numeric IP address" },
		{ "smarthost = \"relay.example\";\n", 1,
		    "smarthost: expected a group { domain = "
		    "\"example.com\"; host = \"smtp.example.net\"; }" },
	};
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "smarthost = { host = \"relay.example\"; };\n");
	assert_string_equal(cfg.smarthost.host, "relay.example");
	assert_int_equal(cfg.smarthost.port, 25);
	assert_int_equal(cfg.smarthost.tls, TLS_LEVEL_OPPORTUNISTIC);
	assert_string_equal(cfg.smarthost.auth_user, "");
	expect_ok(&cfg, "smarthost = { host = \"2001:db8::25\"; "
	    "tls = \"implicit\"; port = 465; };\n");
	assert_int_equal(cfg.smarthost.tls, TLS_LEVEL_IMPLICIT);
	EXPECT_ERRORS(errors);
}

static void
test_routes(void **state)
{
	static const struct err_case errors[] = {
		{ "routes = (\n  { host = \"mx.example.net\"; }\n);\n", 2,
		    "routes[0]: domain is required" },
		{ "routes = ( { domain = \"a.example\"; },\n"
		    "  { tls = \"none\";\n    domain = \"A.example\"; } );\n",
		    3,
		    "routes[1].domain: a.example is already routed by "
		    "routes[0]" },
		{ "routes = ( { domain = \"..example\"; } );\n", 1,
		    "routes[0].domain: " NOT_DOMAIN },
		{ "routes = ( { domain = \".\"; } );\n", 1, "routes[0].domain: "
		    NOT_DOMAIN },
		{ "routes = ( { domain = \"a.example\"; colour = 1; } );\n", 1,
		    "routes[0]: unknown key 'colour'" },
		{ "routes = ( { domain = \"a.example\";\n"
		    "  auth_user = \"u\"; auth_password = \"p\"; } );\n", 2,
		    "routes[0].auth_user: needs a host (credentials are not "
		    "sent to MX hosts)" },
		{ "routes = ( { domain = \"a.example\";\n"
		    "  tls = \"implicit\"; } );\n", 2,
		    "routes[0].tls: \"implicit\" needs a host (MX hosts use "
		    "STARTTLS)" },
		{ "routes = ( { domain = \"a.example\";\n"
		    "auth_password = \"p\"; } );\n", 2,
		    "routes[0].auth_password: set without auth_user" },
		{ "routes = { domain = \"a.example\"; };\n", 1,
		    "routes: expected a list of groups ( { domain = "
		    "\"example.com\"; host = \"smtp.example.net\"; }, ... )" },
	};
	struct config cfg;
	char *text;
	size_t len, cap = (CONFIG_ROUTES_MAX + 2) * 48;
	int i;

	(void)state;
	expect_ok(&cfg, "routes = ();\n");
	assert_int_equal(cfg.nroutes, 0);
	expect_ok(&cfg, "routes = ( { domain = \"example.com\"; },\n"
	    "{ domain = \".EXAMPLE.com\"; host = \"mx.example.net\";\n"
	    "  auth_user = \"u\"; auth_password = \"p\"; } );\n");
	assert_int_equal(cfg.nroutes, 2);
	assert_string_equal(cfg.routes[0].domain, "example.com");
	assert_string_equal(cfg.routes[0].host, "");
	assert_int_equal(cfg.routes[0].port, 25);
	assert_int_equal(cfg.routes[0].tls, TLS_LEVEL_OPPORTUNISTIC);
	assert_string_equal(cfg.routes[1].domain, ".example.com");
	assert_string_equal(cfg.routes[1].auth_password, "p");
	EXPECT_ERRORS(errors);
	text = malloc(cap);
	assert_non_null(text);
	len = strlcpy(text, "routes = (\n", cap);
	for (i = 0; i < CONFIG_ROUTES_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "{ domain = \"d%d.example\"; },\n", i);
	strlcpy(text + len, "{ domain = \"one.more\"; } );\n", cap - len);
	expect_error(text, 1, "routes: 65 routes, at most 64 are allowed");
	strlcpy(text + len - 2, " );\n", cap - len + 2);
	expect_ok(&cfg, text);
	assert_int_equal(cfg.nroutes, CONFIG_ROUTES_MAX);
	assert_string_equal(cfg.routes[63].domain, "d63.example");
	free(text);
}

static void
test_unknown_keys(void **state)
{
	static const struct err_case errors[] = {
		{ "hostname = \"a.example\";\n\nmax_recipient = 100;\n", 3,
		    "unknown key 'max_recipient'" },
		{ "listeners = (\n  { address = \"127.0.0.1:25\"; },\n"
		    "  { address = \"127.0.0.1:26\";\n    port = 26; }\n);\n",
		    4, "listeners[1]: unknown key 'port'" },
		{ "tls = { cert = \"x\"; };\n", 1, "unknown key 'tls'" },
	};

	(void)state;
	EXPECT_ERRORS(errors);
}

static void
test_types(void **state)
{
	static const struct err_case errors[] = {
		{ "max_errors = \"5\";\n", 1,
		    "max_errors: expected an unsigned integer" },
		{ "max_errors = 5.0;\n", 1,
		    "max_errors: expected an unsigned integer" },
		{ "max_errors = true;\n", 1,
		    "max_errors: expected an unsigned integer" },
		{ "max_errors = [5];\n", 1,
		    "max_errors: expected an unsigned integer" },
		/* libconfig 1.5 would wrap this to 100 without the scan. */
		{ "\nmax_recipients = 4294967396;\n", 2,
		    "max_recipients: 4294967396 does not fit in 32 bits; "
		    "add an L suffix or write it as a string" },
		{ "max_errors = 0x100000000;\n", 1,
		    "max_errors: 0x100000000 does not fit in 32 bits; add "
		    "an L suffix or write it as a string" },
		{ "max_recipients = 4294967396L;\n", 1,
		    "max_recipients: 4294967396 is above the maximum 100000" },
	};

	(void)state;
	EXPECT_ERRORS(errors);
}

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
	static const struct err_case errors[] = {
		{ "listeners = ();\n", 1, "listeners: must not be empty" },
		{ "listeners = { address = \"127.0.0.1:25\"; };\n", 1,
		    "listeners: expected a list of groups ( { address = "
		    "\"IP:PORT\"; }, ... )" },
		{ "listeners = \"127.0.0.1:25\";\n", 1,
		    "listeners: expected a list of groups ( { address = "
		    "\"IP:PORT\"; }, ... )" },
		{ "listeners = ( \"127.0.0.1:25\" );\n", 1,
		    "listeners[0]: expected a group { address = "
		    "\"IP:PORT\"; }" },
		{ "listeners = (\n\n  { role = \"smtp\"; }\n);\n", 3,
		    "listeners[0]: address is required" },
	};
	struct config cfg;
	char text[2048];
	size_t len;
	int i;

	(void)state;
	EXPECT_ERRORS(errors);
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
	static struct config cfg, copy;

	(void)state;
	expect_ok(&cfg, full_conf);
	copy = cfg;
	assert_int_equal(load_text(&cfg, "workers = 2;\nmax_errors = 0;\n"),
	    -1);
	assert_memory_equal(&cfg, &copy, sizeof(cfg));
}

/* Dump cfg to path and load it back into again. */
static void
dump_and_load(const struct config *cfg, const char *path,
    struct config *again)
{
	FILE *fp;

	fp = fopen(path, "w");
	assert_non_null(fp);
	config_dump(cfg, fp);
	assert_int_equal(fclose(fp), 0);
	if (config_load(again, path, err, sizeof(err)) != 0)
		fail_msg("dump does not load: %s", err);
	strlcpy(again->file, cfg->file, sizeof(again->file));
}

/*
 * config_dump writes a file that loads back to the same config, but
 * for the secret, which it masks.
 */
static void
test_dump_round_trip(void **state)
{
	static struct config cfg, again;
	char path[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/dump.conf", tmpdir);
	expect_ok(&cfg, full_conf);
	dump_and_load(&cfg, path, &again);
	assert_string_equal(again.smarthost.auth_password, "********");
	memcpy(again.smarthost.auth_password, cfg.smarthost.auth_password,
	    sizeof(again.smarthost.auth_password));
	assert_memory_equal(&cfg, &again, sizeof(cfg));

	/* The defaults: empty lists, no smarthost. */
	expect_ok(&cfg, "# nothing\n");
	dump_and_load(&cfg, path, &again);
	assert_memory_equal(&cfg, &again, sizeof(cfg));
	unlink(path);
}

/* auth_password never reaches a dump; an unset one shows as unset. */
static void
test_dump_secret(void **state)
{
	struct config cfg;
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	(void)state;
	expect_ok(&cfg, "smarthost = { host = \"relay.example\";\n"
	    "  auth_user = \"u\"; auth_password = \"hunter2-secret\"; };\n"
	    "routes = ( { domain = \"a.example\"; host = \"b.example\";\n"
	    "  auth_user = \"v\";\n"
	    "  auth_password = \"other-secret\"; },\n"
	    "  { domain = \"b.example\"; } );\n");
	fp = open_memstream(&text, &len);
	assert_non_null(fp);
	config_dump(&cfg, fp);
	assert_int_equal(fclose(fp), 0);
	assert_null(strstr(text, "secret"));
	assert_non_null(strstr(text,
	    "\tauth_password = \"********\";\n"));
	assert_non_null(strstr(text,
	    "\t\tauth_password = \"********\";\n"));
	assert_non_null(strstr(text, "\t\tauth_password = \"\";\n"));
	assert_non_null(strstr(text, "local_domains = [];\n"));
	free(text);

	config_defaults(&cfg);
	fp = open_memstream(&text, &len);
	assert_non_null(fp);
	config_dump(&cfg, fp);
	assert_int_equal(fclose(fp), 0);
	assert_non_null(strstr(text, "# smarthost is not set\n"));
	assert_non_null(strstr(text, "routes = ();\n"));
	assert_non_null(strstr(text, "outbound_ipv6 = true;\n"));
	free(text);
}

/* A file in tmpdir with mode; its path in path. */
static void
write_mode(char *path, size_t len, const char *name, mode_t mode)
{
	snprintf(path, len, "%s/%s", tmpdir, name);
	tu_write_file(path, "-----BEGIN X-----\n");
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_auth_cleartext(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "listeners = (\n"
	    "  { address = \"127.0.0.1:25\"; },\n"
	    "  { address = \"127.0.0.1:587\"; role = \"submission\";\n"
	    "    auth_cleartext = true; } );\n");
	assert_int_equal(cfg.listeners[0].auth_cleartext, 0);
	assert_int_equal(cfg.listeners[1].auth_cleartext, 1);
	expect_error("listeners = (\n  { address = \"127.0.0.1:25\";\n"
	    "    auth_cleartext = \"yes\"; } );\n", 3,
	    "listeners[0].auth_cleartext: expected true or false");
}

#define NOT_UNIX "not a user or group name ([a-z_] then [a-z0-9_-])"

static void
test_user_group(void **state)
{
	static const struct err_case errors[] = {
		{ "user = \"abcdefghijklmnopqrstuvwxyz0123456\";\n", 1,
		    "user: longer than 32 characters" },
		{ "\nuser = \"\";\n", 2, "user: must not be empty" },
		{ "user = \"Sluice\";\n", 1, "user: " NOT_UNIX },
		{ "user = \"1sluice\";\n", 1, "user: " NOT_UNIX },
		{ "user = \"-sluice\";\n", 1, "user: " NOT_UNIX },
		{ "group = \"mail group\";\n", 1, "group: " NOT_UNIX },
		{ "group = \"mail:x\";\n", 1, "group: " NOT_UNIX },
		{ "user = 0;\n", 1, "user: expected a string" },
	};
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "user = \"_sluice-2\";\ngroup = \"mail\";\n");
	assert_string_equal(cfg.user, "_sluice-2");
	assert_string_equal(cfg.group, "mail");
	expect_ok(&cfg, "user = \"abcdefghijklmnopqrstuvwxyz012345\";\n"
	    "group = \"\";\n");
	assert_string_equal(cfg.group, "");
	EXPECT_ERRORS(errors);
}

static void
test_tls_certificates(void **state)
{
	static const struct err_case errors[] = {
		{ "tls_certificates = { cert = \"a\"; key = \"b\"; };\n", 1,
		    "tls_certificates: expected a list of groups ( { cert = "
		    "\"/path/chain.pem\"; key = \"/path/key.pem\"; }, ... )" },
		{ "tls_ciphers = \"\";\n", 1,
		    "tls_ciphers: must not be empty" },
		{ "tls_request_client_cert = 1;\n", 1,
		    "tls_request_client_cert: expected true or false" },
	};
	struct config cfg;
	char cert[256], key[256], key2[256], text[2048], msg[512];
	size_t len;
	int i;

	(void)state;
	write_mode(cert, sizeof(cert), "chain.pem", 0644);
	write_mode(key, sizeof(key), "key.pem", 0600);
	write_mode(key2, sizeof(key2), "key2.pem", 0400);
	snprintf(text, sizeof(text), "tls_certificates = (\n"
	    "  { cert = \"%s\"; key = \"%s\"; },\n"
	    "  { key = \"%s\"; cert = \"%s\"; } );\n"
	    "tls_ciphers = \"HIGH:!aNULL\";\n"
	    "tls_request_client_cert = true;\n", cert, key, key2, cert);
	expect_ok(&cfg, text);
	assert_int_equal(cfg.ntls_certificates, 2);
	assert_string_equal(cfg.tls_certificates[0].cert, cert);
	assert_string_equal(cfg.tls_certificates[0].key, key);
	assert_string_equal(cfg.tls_certificates[1].key, key2);
	assert_string_equal(cfg.tls_ciphers, "HIGH:!aNULL");
	assert_int_equal(cfg.tls_request_client_cert, 1);
	expect_ok(&cfg, "tls_certificates = ();\n");
	assert_int_equal(cfg.ntls_certificates, 0);

	/* A key the group or others can read is refused (STYLE 7). */
	assert_int_equal(chmod(key, 0640), 0);
	snprintf(text, sizeof(text), "tls_certificates = (\n"
	    "  { cert = \"%s\";\n    key = \"%s\"; } );\n", cert, key);
	snprintf(msg, sizeof(msg), "tls_certificates[0].key: %s: mode 0640 "
	    "lets group or others read it (chmod 600)", key);
	expect_error(text, 3, msg);
	assert_int_equal(chmod(key, 0604), 0);
	snprintf(msg, sizeof(msg), "tls_certificates[0].key: %s: mode 0604 "
	    "lets group or others read it (chmod 600)", key);
	expect_error(text, 3, msg);
	assert_int_equal(chmod(key, 0600), 0);

	snprintf(text, sizeof(text), "tls_certificates = (\n"
	    "  { cert = \"/nonexistent/chain.pem\"; key = \"%s\"; } );\n",
	    key);
	expect_error(text, 2, "tls_certificates[0].cert: "
	    "/nonexistent/chain.pem: No such file or directory");
	snprintf(text, sizeof(text), "tls_certificates = (\n"
	    "  { cert = \"%s\"; }\n);\n", cert);
	expect_error(text, 2, "tls_certificates[0]: key is required");
	snprintf(text, sizeof(text), "tls_certificates = (\n"
	    "  { cert = \"%s\"; key = \"\"; }\n);\n", cert);
	expect_error(text, 2, "tls_certificates[0].key: must not be empty");
	snprintf(text, sizeof(text), "tls_certificates = (\n"
	    "  { cert = \"%s\"; key = \"%s\"; chain = \"x\"; }\n);\n", cert,
	    key);
	expect_error(text, 2, "tls_certificates[0]: unknown key 'chain'");
	EXPECT_ERRORS(errors);

	len = strlcpy(text, "tls_certificates = (\n", sizeof(text));
	for (i = 0; i <= CONFIG_CERTS_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "{ cert = \"%s\"; key = \"%s\"; }%s\n", cert, key,
		    i < CONFIG_CERTS_MAX ? "," : " );");
	assert_true(len < sizeof(text));
	expect_error(text, 1, "tls_certificates: 17 tls_certificates, at "
	    "most 16 are allowed");
	unlink(cert);
	unlink(key);
	unlink(key2);
}

static void
test_passwd_file(void **state)
{
	struct config cfg;
	char path[256], text[512], msg[512];

	(void)state;
	expect_ok(&cfg, "passwd_file = \"\";\n");
	assert_string_equal(cfg.passwd_file, "");
	/* sluicectl writes it 0640, for the daemon's group. */
	write_mode(path, sizeof(path), "passwd", 0640);
	snprintf(text, sizeof(text), "\npasswd_file = \"%s\";\n", path);
	expect_ok(&cfg, text);
	assert_string_equal(cfg.passwd_file, path);
	assert_int_equal(chmod(path, 0644), 0);
	snprintf(msg, sizeof(msg), "passwd_file: %s: mode 0644 lets others "
	    "read it (chmod o-rwx)", path);
	expect_error(text, 2, msg);
	unlink(path);
	snprintf(msg, sizeof(msg), "passwd_file: %s: No such file or "
	    "directory", path);
	expect_error(text, 2, msg);
	expect_error("passwd_file = \"a\\nb\";\n", 1,
	    "passwd_file: contains a control character");
}

static void
test_relay_networks(void **state)
{
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	static const unsigned char host[16] = { 192, 0, 2, 7 };
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "relay_networks = [ \"10.0.0.0/8\", \"192.0.2.7\",\n"
	    "  \"2001:DB8::/32\", \"::/0\", \"0.0.0.0/0\", \"fe80::1\",\n"
	    "  \"172.16.0.0/12\", \"192.0.2.128/25\" ];\n");
	assert_int_equal(cfg.nrelay_networks, 8);
	assert_string_equal(cfg.relay_networks[0].cidr, "10.0.0.0/8");
	assert_int_equal(cfg.relay_networks[0].family, AF_INET);
	assert_int_equal(cfg.relay_networks[0].prefix, 8);
	assert_int_equal(cfg.relay_networks[0].addr[0], 10);
	assert_int_equal(cfg.relay_networks[1].prefix, 32);
	assert_memory_equal(cfg.relay_networks[1].addr, host, 16);
	assert_string_equal(cfg.relay_networks[2].cidr, "2001:DB8::/32");
	assert_int_equal(cfg.relay_networks[2].family, AF_INET6);
	assert_int_equal(cfg.relay_networks[2].prefix, 32);
	assert_memory_equal(cfg.relay_networks[2].addr, v6, 16);
	assert_int_equal(cfg.relay_networks[3].prefix, 0);
	assert_int_equal(cfg.relay_networks[3].family, AF_INET6);
	assert_int_equal(cfg.relay_networks[4].prefix, 0);
	assert_int_equal(cfg.relay_networks[4].family, AF_INET);
	assert_int_equal(cfg.relay_networks[5].prefix, 128);
	assert_int_equal(cfg.relay_networks[6].addr[1], 16);
	assert_int_equal(cfg.relay_networks[7].addr[3], 128);
	assert_int_equal(cfg.relay_networks[7].prefix, 25);
	expect_ok(&cfg, "relay_networks = [];\n");
	assert_int_equal(cfg.nrelay_networks, 0);
	expect_ok(&cfg, "relay_networks = ( \"::1\" );\n");
	assert_int_equal(cfg.nrelay_networks, 1);
}

#define NOT_NET ": not a numeric network, e.g. \"192.0.2.0/24\", " \
	"\"2001:db8::/32\" or an IP"

static void
test_relay_network_errors(void **state)
{
	static const struct err_case errors[] = {
		{ "relay_networks = [\n  \"10.0.0.0/8\",\n"
		    "  \"10.0.0.1/8\" ];\n", 3,
		    "relay_networks[1]: 10.0.0.1/8: host bits set (the "
		    "network is 10.0.0.0/8)" },
		{ "relay_networks = [ \"192.0.2.129/25\" ];\n", 1,
		    "relay_networks[0]: 192.0.2.129/25: host bits set (the "
		    "network is 192.0.2.128/25)" },
		{ "\nrelay_networks = [ \"2001:db8::1/32\" ];\n", 2,
		    "relay_networks[0]: 2001:db8::1/32: host bits set (the "
		    "network is 2001:db8::/32)" },
		{ "relay_networks = [ \"10.0.0.0/0\" ];\n", 1,
		    "relay_networks[0]: 10.0.0.0/0: host bits set (the "
		    "network is 0.0.0.0/0)" },
		{ "relay_networks = [ \"10.0.0.0/33\" ];\n", 1,
		    "relay_networks[0]: 10.0.0.0/33: the prefix of an IPv4 "
		    "network is 0 to 32" },
		{ "relay_networks = [ \"::/129\" ];\n", 1,
		    "relay_networks[0]: ::/129: the prefix of an IPv6 "
		    "network is 0 to 128" },
		{ "relay_networks = [ \"10.0.0.0/\" ];\n", 1,
		    "relay_networks[0]: 10.0.0.0/: the prefix of an IPv4 "
		    "network is 0 to 32" },
		{ "relay_networks = [ \"10.0.0.0/8/8\" ];\n", 1,
		    "relay_networks[0]: 10.0.0.0/8/8: the prefix of an IPv4 "
		    "network is 0 to 32" },
		{ "relay_networks = [ \"10.0.0.0/-8\" ];\n", 1,
		    "relay_networks[0]: 10.0.0.0/-8: the prefix of an IPv4 "
		    "network is 0 to 32" },
		{ "relay_networks = [ \"localhost\" ];\n", 1,
		    "relay_networks[0]: localhost" NOT_NET },
		{ "relay_networks = [ \"10.0.0/8\" ];\n", 1,
		    "relay_networks[0]: 10.0.0/8" NOT_NET },
		{ "relay_networks = [ \"[::1]/128\" ];\n", 1,
		    "relay_networks[0]: [::1]/128" NOT_NET },
		{ "relay_networks = [ \"/8\" ];\n", 1, "relay_networks[0]: /8"
		    NOT_NET },
		{ "relay_networks = [ \"ffff:ffff:ffff:ffff:ffff:ffff:"
		    "255.255.255.255x/128\" ];\n", 1,
		    "relay_networks[0]: "
		    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255x/128"
		    NOT_NET },
		{ "relay_networks = [ \"\" ];\n", 1,
		    "relay_networks[0]: must not be empty" },
		{ "relay_networks = [ \"0000:0000:0000:0000:0000:0000:"
		    "0000:0000/000000000000000000000000000000128\" ];\n", 1,
		    "relay_networks[0]: longer than 63 characters" },
		{ "relay_networks = [ 10 ];\n", 1,
		    "relay_networks[0]: expected a string" },
		{ "relay_networks = \"10.0.0.0/8\";\n", 1,
		    "relay_networks: expected a list of strings [ \"...\", "
		    "... ]" },
		/* Duplicates: as written, then as parsed. */
		{ "relay_networks = [ \"10.0.0.0/8\",\n"
		    "  \"10.0.0.0/8\" ];\n", 2,
		    "relay_networks[1]: 10.0.0.0/8 is already listed as "
		    "relay_networks[0]" },
		{ "relay_networks = [ \"10.0.0.0/8\", \"::1\",\n"
		    "  \"10.0.0.0/08\" ];\n", 2,
		    "relay_networks[2]: 10.0.0.0/08 is the same network as "
		    "relay_networks[0] (10.0.0.0/8)" },
		{ "relay_networks = [ \"::1\",\n  \"0:0::1/128\" ];\n", 2,
		    "relay_networks[1]: 0:0::1/128 is the same network as "
		    "relay_networks[0] (::1)" },
	};
	char *text;
	size_t len, cap = (CONFIG_NETWORKS_MAX + 2) * 32;
	int i;

	(void)state;
	EXPECT_ERRORS(errors);
	text = malloc(cap);
	assert_non_null(text);
	len = strlcpy(text, "relay_networks = [\n", cap);
	for (i = 0; i <= CONFIG_NETWORKS_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "\"10.%d.0.0/16\"%s\n", i,
		    i < CONFIG_NETWORKS_MAX ? "," : " ];");
	expect_error(text, 1, "relay_networks: 65 relay_networks, at most 64 "
	    "are allowed");
	free(text);
}

static void
test_users(void **state)
{
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "users = (\n"
	    "  { name = \"alice@example.org\";\n"
	    "    senders = [ \"Alice@Example.ORG\", \"@EXAMPLE.net\" ];\n"
	    "    allow_null_sender = true;\n"
	    "    max_msgs_per_hour = 100; max_msgs_per_day = 1000;\n"
	    "    max_rcpts_per_msg = 50; },\n"
	    "  { name = \"Bob\"; senders = []; }\n"
	    ");\n");
	assert_int_equal(cfg.nusers, 2);
	assert_string_equal(cfg.users[0].name, "alice@example.org");
	assert_int_equal(cfg.users[0].nsenders, 2);
	/* The domain is lowercased, the local part kept (RFC 5321 2.4). */
	assert_string_equal(cfg.users[0].senders[0], "Alice@example.org");
	assert_string_equal(cfg.users[0].senders[1], "@example.net");
	assert_int_equal(cfg.users[0].allow_null_sender, 1);
	assert_int_equal(cfg.users[0].max_msgs_per_hour, 100);
	assert_int_equal(cfg.users[0].max_msgs_per_day, 1000);
	assert_int_equal(cfg.users[0].max_rcpts_per_msg, 50);
	assert_string_equal(cfg.users[1].name, "Bob");
	assert_int_equal(cfg.users[1].nsenders, 0);
	assert_int_equal(cfg.users[1].allow_null_sender, 0);
	assert_int_equal(cfg.users[1].max_msgs_per_hour, 0);
	assert_int_equal(cfg.users[1].max_msgs_per_day, 0);
	assert_int_equal(cfg.users[1].max_rcpts_per_msg, 0);
	/* Names compare without case, as policy_user() looks them up. */
	expect_error("users = ( { name = \"Bob\"; },\n { name = \"bob\"; } );\n",
	    2, "users[1].name: bob is already listed as users[0]");
	expect_ok(&cfg, "max_msgs_per_hour = 10000000;\n"
	    "users = ( { name = \"a\"; max_msgs_per_day = 10000000; } );\n");
	assert_int_equal(cfg.users[0].max_msgs_per_day, 10000000);
}

#define NOT_SENDER "expected \"local@domain\" or \"@domain\""
#define BAD_CHAR "contains a space, a control character, '<' or '>'"

static void
test_user_errors(void **state)
{
	static const struct err_case errors1[] = {
		{ "users = (\n  { senders = [ \"@a.example\" ]; }\n);\n", 2,
		    "users[0]: name is required" },
		{ "users = ( { name = \"\"; } );\n", 1,
		    "users[0].name: must not be empty" },
		{ "users = ( { name = \"al ice\"; } );\n", 1,
		    "users[0].name: contains a space, a control character "
		    "or ':'" },
		{ "users = ( { name = \"a:b\"; } );\n", 1,
		    "users[0].name: contains a space, a control character "
		    "or ':'" },
		{ "users = ( { name = \"a\"; },\n  { name = \"b\"; },\n"
		    "  { max_msgs_per_day = 1;\n    name = \"a\"; } );\n", 4,
		    "users[2].name: a is already listed as users[0]" },
		{ "users = ( { name = \"a\";\n"
		    "  senders = [ \"a.example\" ]; } );\n", 2,
		    "users[0].senders[0]: " NOT_SENDER },
		{ "users = ( { name = \"a\";\n"
		    "  senders = [ \"@a.example\", \"a@@a.example\" ]; } );\n",
		    2, "users[0].senders[1]: " NOT_SENDER },
		{ "users = ( { name = \"a\";\n"
		    "  senders = [ \"a b@a.example\" ]; } );\n", 2,
		    "users[0].senders[0]: " BAD_CHAR },
		{ "users = ( { name = \"a\";\n"
		    "  senders = [ \"<a@a.example>\" ]; } );\n", 2,
		    "users[0].senders[0]: " BAD_CHAR },
		{ "users = ( { name = \"a\";\n"
		    "  senders = [ \"a@\" ]; } );\n", 2,
		    "users[0].senders[0]: the part after '@' is not a "
		    "domain name" },
		{ "users = ( { name = \"a\";\n"
		    "  senders = [ \"a@b_c.example\" ]; } );\n", 2,
		    "users[0].senders[0]: the part after '@' is not a "
		    "domain name" },
		{ "users = ( { name = \"a\";\n" "  senders = [ \"\" ]; } );\n",
		    2, "users[0].senders[0]: must not be empty" },
	};
	static const struct err_case errors2[] = {
		{ "users = ( { name = \"a\";\n"
		    "  senders = [ \"a@B.example\",\n"
		    "    \"a@b.EXAMPLE\" ]; } );\n", 3,
		    "users[0].senders[1]: a@b.example is already listed as "
		    "senders[0]" },
		{ "users = ( { name = \"a\"; },\n { name = \"b\";\n"
		    "  senders = \"@a.example\"; } );\n", 3,
		    "users[1].senders: expected a list of strings [ "
		    "\"...\", ... ]" },
		{ "users = ( { name = \"a\";\n"
		    "  max_msgs_per_hour = 10000001; } );\n", 2,
		    "users[0].max_msgs_per_hour: 10000001 is above the "
		    "maximum 10000000" },
		{ "users = ( { name = \"a\";\n"
		    "  allow_null_sender = 1; } );\n", 2,
		    "users[0].allow_null_sender: expected true or false" },
		{ "users = ( { name = \"a\";\n" "  password = \"x\"; } );\n", 2,
		    "users[0]: unknown key 'password'" },
		{ "users = { name = \"a\"; };\n", 1,
		    "users: expected a list of groups ( { name = "
		    "\"alice@example.org\"; senders = [ \"@example.org\" ]; "
		    "}, ... )" },
	};
	char *text, local[80];
	size_t len, cap = (CONFIG_USERS_MAX + 2) * 32;
	int i;

	(void)state;
	EXPECT_ERRORS(errors1);
	memset(local, 'x', 65);
	local[65] = '\0';
	text = malloc(cap);
	assert_non_null(text);
	snprintf(text, cap, "users = ( { name = \"a\";\n"
	    "  senders = [ \"%s@a.example\" ]; } );\n", local);
	expect_error(text, 2, "users[0].senders[0]: local part longer than "
	    "64 characters (RFC 5321 4.5.3.1.1)");
	/* Compared once the domain is lowercased. */
	EXPECT_ERRORS(errors2);
	/* At most CONFIG_SENDERS_MAX senders, CONFIG_USERS_MAX users. */
	len = strlcpy(text, "users = ( { name = \"a\"; senders = [\n", cap);
	for (i = 0; i <= CONFIG_SENDERS_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "\"@d%d.example\"%s\n", i,
		    i < CONFIG_SENDERS_MAX ? "," : " ]; } );");
	expect_error(text, 1, "users[0].senders: 33 senders, at most 32 are "
	    "allowed");
	len = strlcpy(text, "users = (\n", cap);
	for (i = 0; i <= CONFIG_USERS_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "{ name = \"u%d\"; }%s\n", i,
		    i < CONFIG_USERS_MAX ? "," : " );");
	expect_error(text, 1, "users: 257 users, at most 256 are allowed");
	free(text);
}

/* soft_error_limit <= max_errors, reported on soft_error_limit's line. */
static void
test_soft_error_limit(void **state)
{
	static const struct err_case errors[] = {
		{ "max_errors = 5;\n\nsoft_error_limit = 6;\n", 3,
		    "soft_error_limit: 6 is above max_errors (5)" },
		{ "soft_error_limit = 6;\n\nmax_errors = 5;\n", 1,
		    "soft_error_limit: 6 is above max_errors (5)" },
		{ "\nsoft_error_limit = 21;\n", 2,
		    "soft_error_limit: 21 is above max_errors (20)" },
		{ "max_errors = 1000;\nsoft_error_limit = 1001;\n", 2,
		    "soft_error_limit: 1001 is above the maximum 1000" },
	};
	struct config cfg;

	(void)state;
	expect_ok(&cfg, "max_errors = 30;\nsoft_error_limit = 30;\n"
	    "error_delay = \"1m\";\n");
	assert_int_equal(cfg.soft_error_limit, 30);
	assert_int_equal(cfg.error_delay, 60);
	expect_ok(&cfg, "soft_error_limit = 0;\nmax_errors = 1;\n");
	assert_int_equal(cfg.soft_error_limit, 0);
	/* Unset, it follows max_errors down rather than fail. */
	expect_ok(&cfg, "max_errors = 5;\n");
	assert_int_equal(cfg.soft_error_limit, 5);
	expect_ok(&cfg, "max_errors = 500;\n");
	assert_int_equal(cfg.soft_error_limit, 10);
	EXPECT_ERRORS(errors);
}

static const char security_conf[] =
    "listeners = (\n"
    "  { address = \"127.0.0.1:25\"; },\n"
    "  { address = \"127.0.0.1:587\"; role = \"submission\";\n"
    "    auth_cleartext = true; } );\n"
    "user = \"mail\";\n"
    "group = \"mail\";\n"
    "tls_certificates = ( { cert = \"%s\"; key = \"%s\"; } );\n"
    "tls_ciphers = \"HIGH:!aNULL:!\\\"odd\\\\\";\n"
    "tls_request_client_cert = true;\n"
    "passwd_file = \"%s\";\n"
    "auth_fail_delay = 0;\n"
    "auth_fail_max = 0;\n"
    "auth_fail_window = \"1d\";\n"
    "auth_ban_time = \"30d\";\n"
    "relay_networks = [ \"192.0.2.0/24\", \"2001:db8::/32\", \"::1\" ];\n"
    "users = (\n"
    "  { name = \"alice@example.org\";\n"
    "    senders = [ \"alice@example.org\", \"@Example.NET\" ];\n"
    "    allow_null_sender = true; max_msgs_per_hour = 7; },\n"
    "  { name = \"bob\"; max_rcpts_per_msg = 3; }\n"
    ");\n"
    "smarthost = { host = \"relay.example\";\n"
    "  auth_user = \"u\"; auth_password = \"hunter2-secret\"; };\n"
    "max_msgs_per_hour = 100;\n"
    "max_msgs_per_day = 1000;\n"
    "max_rcpts_per_msg = 20;\n"
    "max_sessions_per_ip = 0;\n"
    "max_connect_rate = 0;\n"
    "soft_error_limit = 3;\n"
    "error_delay = 5;\n";

/* Every security key set; the dump loads back to the same, but for the
 * masked password, and shows no secret. */
static void
test_security_dump(void **state)
{
	static struct config cfg, again;
	char cert[256], key[256], pw[256], path[256], text[4096];
	char *out = NULL;
	size_t len = 0;
	FILE *fp;

	(void)state;
	write_mode(cert, sizeof(cert), "chain.pem", 0644);
	write_mode(key, sizeof(key), "key.pem", 0600);
	write_mode(pw, sizeof(pw), "passwd", 0640);
	snprintf(path, sizeof(path), "%s/dump.conf", tmpdir);
	snprintf(text, sizeof(text), security_conf, cert, key, pw);
	expect_ok(&cfg, text);
	assert_int_equal(cfg.listeners[1].auth_cleartext, 1);
	assert_string_equal(cfg.user, "mail");
	assert_string_equal(cfg.tls_ciphers, "HIGH:!aNULL:!\"odd\\");
	assert_int_equal(cfg.auth_fail_window, 86400);
	assert_int_equal(cfg.auth_ban_time, 30 * 86400);
	assert_int_equal(cfg.nrelay_networks, 3);
	assert_int_equal(cfg.relay_networks[2].prefix, 128);
	assert_string_equal(cfg.users[0].senders[1], "@example.net");
	assert_int_equal(cfg.users[1].max_rcpts_per_msg, 3);
	assert_int_equal(cfg.max_sessions_per_ip, 0);
	assert_int_equal(cfg.soft_error_limit, 3);
	assert_int_equal(cfg.error_delay, 5);

	dump_and_load(&cfg, path, &again);
	assert_string_equal(again.smarthost.auth_password, "********");
	memcpy(again.smarthost.auth_password, cfg.smarthost.auth_password,
	    sizeof(again.smarthost.auth_password));
	assert_memory_equal(&cfg, &again, sizeof(cfg));

	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	config_dump(&cfg, fp);
	assert_int_equal(fclose(fp), 0);
	assert_null(strstr(out, "hunter2"));
	assert_non_null(strstr(out, "\tauth_password = \"********\";\n"));
	assert_non_null(strstr(out, "\t\tauth_cleartext = true;\n"));
	assert_non_null(strstr(out, "users = (\n\t{\n"
	    "\t\tname = \"alice@example.org\";\n\t\tsenders = [\n"
	    "\t\t\t\"alice@example.org\",\n\t\t\t\"@example.net\"\n"
	    "\t\t];\n\t\tallow_null_sender = true;\n"));
	assert_non_null(strstr(out, "\t\tname = \"bob\";\n"
	    "\t\tsenders = [];\n"));
	assert_non_null(strstr(out, "relay_networks = [\n"
	    "\t\"192.0.2.0/24\",\n\t\"2001:db8::/32\",\n\t\"::1\"\n];\n"));
	free(out);
	out = NULL;

	/* The defaults dump and load back too. */
	config_defaults(&cfg);
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	config_dump(&cfg, fp);
	assert_int_equal(fclose(fp), 0);
	assert_non_null(strstr(out, "\nuser = \"sluice\";\n"));
	assert_non_null(strstr(out, "\ntls_certificates = ();\n"));
	assert_non_null(strstr(out, "\nusers = ();\n"));
	assert_non_null(strstr(out, "\nrelay_networks = [\n"
	    "\t\"127.0.0.0/8\",\n\t\"::1/128\"\n];\n"));
	assert_non_null(strstr(out, "\nauth_fail_window = \"10m\";\n"));
	free(out);
	expect_ok(&cfg, "relay_networks = [];\n");
	dump_and_load(&cfg, path, &again);
	assert_memory_equal(&cfg, &again, sizeof(cfg));
	unlink(path);
	unlink(cert);
	unlink(key);
	unlink(pw);
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
	return tu_mkdtemp(tmpdir, conf_path, sizeof(conf_path), "sluice.conf");
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
		cmocka_unit_test(test_duration_bounds),
		cmocka_unit_test(test_retry_order),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_size_bounce),
		cmocka_unit_test(test_local_domains),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_lmtp_and_forwarder),
		cmocka_unit_test(test_outbound_tls),
		cmocka_unit_test(test_smarthost),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_listener_shapes),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_failed_load_keeps_config),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_dump_secret),
		cmocka_unit_test(test_auth_cleartext),
		cmocka_unit_test(test_user_group),
		cmocka_unit_test(test_tls_certificates),
		cmocka_unit_test(test_passwd_file),
		cmocka_unit_test(test_relay_networks),
		cmocka_unit_test(test_relay_network_errors),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_user_errors),
		cmocka_unit_test(test_soft_error_limit),
		cmocka_unit_test(test_security_dump),
		cmocka_unit_test(test_bundled_config),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
