/*
 * config.c -- read the configuration file into struct config.
 * Run by the parent at start-up (and by `sluiced -n`), before privileges
 * are dropped.  The file is the operator's, not a peer's, but every key,
 * type and bound is checked: all of them come from one table,
 * config_params[], which loading, defaults and config_dump() all read.
 * The checks of single values and entries are in config_check.c.
 * Adding a key is adding a row (and a field in config.h).  Keys that
 * hold groups (listeners, smarthost, routes, tls_certificates, users)
 * read their members with a sub-table of the same rows, a struct
 * config_schema; a list of strings parsed into structs (relay_networks)
 * has a schema for its check alone.  config_dump.c prints the result.
 *
 * Every error reads "FILE:LINE: key: message", or "FILE: message" when
 * the file cannot be read at all.
 */
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "util.h"

#define CONFIG_FILE_MAX		(1024 * 1024)	/* far above any real file */
#define CONFIG_DEFAULT_MAX	512		/* "key = def;" of a list row */
#define CONFIG_UNIX_NAME_MAX	32		/* useradd's limit */
#define KIB			1024ULL
#define MIB			(1024ULL * KIB)
#define GIB			(1024ULL * MIB)

/* Fields are stored through memcpy by size; enums must be this wide. */
_Static_assert(sizeof(enum spool_sync_mode) == sizeof(unsigned), "enum");
_Static_assert(sizeof(enum listener_role) == sizeof(unsigned), "enum");
_Static_assert(sizeof(enum tls_level) == sizeof(unsigned), "enum");
_Static_assert(sizeof(int) == sizeof(unsigned), "int");
/* A PARAM_STRLIST of structs keeps each string at the start of one. */
_Static_assert(offsetof(struct config_network, cidr) == 0, "cidr");

static int	config_load_param(struct config_ctx *,
		    const struct config_param *, const config_setting_t *,
		    void *);

static const struct config_enum config_sync_names[] = {
	{ "syncfs",		SPOOL_SYNC_SYNCFS },
	{ "fsync",		SPOOL_SYNC_FSYNC },
	{ NULL,			0 },
};

static const struct config_enum config_role_names[] = {
	{ "smtp",		LISTENER_SMTP },
	{ "submission",		LISTENER_SUBMISSION },
	{ "submissions",	LISTENER_SUBMISSIONS },
	{ NULL,			0 },
};

static const struct config_enum config_log_names[] = {
	{ "warn",		LOG_LVL_WARN },
	{ "info",		LOG_LVL_INFO },
	{ "debug",		LOG_LVL_DEBUG },
	{ NULL,			0 },
};

/* A smarthost or route may also use TLS from the first byte (465). */
static const struct config_enum config_tls_names[] = {
	{ "none",		TLS_LEVEL_NONE },
	{ "opportunistic",	TLS_LEVEL_OPPORTUNISTIC },
	{ "required",		TLS_LEVEL_REQUIRED },
	{ "implicit",		TLS_LEVEL_IMPLICIT },
	{ NULL,			0 },
};

/* MX delivery is always port 25 with STARTTLS (RFC 3207), never 465. */
static const struct config_enum config_mx_tls_names[] = {
	{ "none",		TLS_LEVEL_NONE },
	{ "opportunistic",	TLS_LEVEL_OPPORTUNISTIC },
	{ "required",		TLS_LEVEL_REQUIRED },
	{ NULL,			0 },
};

#define FIELD(type, m)	.off = offsetof(type, m),			\
			.size = sizeof(((type *)0)->m)
/* An array field m with its count in field n. */
#define LIST(type, m, n) FIELD(type, m),				\
			.elem = sizeof(((type *)0)->m[0]),		\
			.count = offsetof(type, n)
#define CFG(m)		FIELD(struct config, m)
#define CFG_LIST(m, n)	LIST(struct config, m, n)
#define LSN(m)		FIELD(struct config_listener, m)
#define RTE(m)		FIELD(struct config_route, m)
#define CRT(m)		FIELD(struct config_cert, m)
#define USR(m)		FIELD(struct config_user, m)

/* The keys of one listeners entry; the check fills host and port. */
static const struct config_param listener_params[] = {
	{ .name = "address", .type = PARAM_ADDRESS, .min = 1, .max = 127,
	  LSN(address), .flags = PARAM_F_REQUIRED,
	  .desc = "numeric \"IPv4:PORT\" or \"[IPv6]:PORT\" to listen on" },
	{ .name = "role", .type = PARAM_ENUM, .def = "smtp", LSN(role),
	  .names = config_role_names,
	  .desc = "smtp (MX, port 25), submission (587), submissions (465)" },
	{ .name = "auth_cleartext", .type = PARAM_BOOL, .def = "false",
	  .max = 1, LSN(auth_cleartext),
	  .desc = "offer AUTH before TLS (loopback and tests only)" },
};

static const struct config_schema listener_schema = {
	listener_params, nitems(listener_params),
	"{ address = \"IP:PORT\"; }", config_check_listener,
};

/*
 * The keys of one routes entry.  smarthost is the same group without
 * domain, and there host is required.
 */
static const struct config_param route_params[] = {
	{ .name = "domain", .type = PARAM_STRING, .min = 1, .max = 255,
	  RTE(domain), .check = config_valid_route_domain,
	  .flags = PARAM_F_REQUIRED | PARAM_F_LIST_ONLY | PARAM_F_LOWER,
	  .desc = "\"example.com\"; \".example.com\" for its subdomains" },
	{ .name = "host", .type = PARAM_STRING, .def = "", .max = 255,
	  RTE(host), .check = config_valid_host,
	  .flags = PARAM_F_GROUP_REQUIRED,
	  .desc = "host name or IP to relay to; \"\" delivers by MX" },
	{ .name = "port", .type = PARAM_UINT, .def = "25", .min = 1,
	  .max = 65535, RTE(port), .desc = "port on host" },
	{ .name = "tls", .type = PARAM_ENUM, .def = "opportunistic",
	  RTE(tls), .names = config_tls_names,
	  .desc = "none, opportunistic, required or implicit" },
	{ .name = "auth_user", .type = PARAM_STRING, .def = "", .max = 255,
	  RTE(auth_user), .desc = "AUTH user name; \"\" is no AUTH" },
	{ .name = "auth_password", .type = PARAM_STRING, .def = "",
	  .max = 255, RTE(auth_password), .flags = PARAM_F_SECRET,
	  .desc = "AUTH password" },
};

static const struct config_schema route_schema = {
	route_params, nitems(route_params),
	"{ domain = \"example.com\"; host = \"smtp.example.net\"; }",
	config_check_route,
};

/* A server certificate: both files read by the parent, as root. */
static const struct config_param cert_params[] = {
	{ .name = "cert", .type = PARAM_STRING, .min = 1, .max = 4095,
	  CRT(cert), .check = config_valid_path,
	  .flags = PARAM_F_REQUIRED | PARAM_F_READABLE,
	  .desc = "PEM certificate chain, leaf first" },
	{ .name = "key", .type = PARAM_STRING, .min = 1, .max = 4095,
	  CRT(key), .check = config_valid_path,
	  .flags = PARAM_F_REQUIRED | PARAM_F_READABLE | PARAM_F_NO_OTHERS |
	  PARAM_F_NO_GROUP, .desc = "PEM private key of cert" },
};

static const struct config_schema cert_schema = {
	cert_params, nitems(cert_params),
	"{ cert = \"/path/chain.pem\"; key = \"/path/key.pem\"; }", NULL,
};

/* relay_networks: strings whose check fills family, addr and prefix. */
static const struct config_schema network_schema = {
	NULL, 0, NULL, config_check_network,
};

/* The sending rules of one AUTH user. */
static const struct config_param user_params[] = {
	{ .name = "name", .type = PARAM_STRING, .min = 1, .max = 255,
	  USR(name), .check = config_valid_user_name,
	  .flags = PARAM_F_REQUIRED, .desc = "the AUTH user name" },
	{ .name = "senders", .type = PARAM_STRLIST,
	  .max = CONFIG_SENDERS_MAX, LIST(struct config_user, senders,
	  nsenders), .check = config_valid_sender,
	  .flags = PARAM_F_LOWER_DOMAIN,
	  .desc = "MAIL FROM allowed: \"local@domain\" or \"@domain\"" },
	{ .name = "allow_null_sender", .type = PARAM_BOOL, .def = "false",
	  .max = 1, USR(allow_null_sender),
	  .desc = "MAIL FROM:<> allowed" },
	{ .name = "max_msgs_per_hour", .type = PARAM_UINT, .def = "0",
	  .max = 10000000, USR(max_msgs_per_hour),
	  .desc = "messages per hour; 0 is the global max_msgs_per_hour" },
	{ .name = "max_msgs_per_day", .type = PARAM_UINT, .def = "0",
	  .max = 10000000, USR(max_msgs_per_day),
	  .desc = "messages per day; 0 is the global max_msgs_per_day" },
	{ .name = "max_rcpts_per_msg", .type = PARAM_UINT, .def = "0",
	  .max = 10000000, USR(max_rcpts_per_msg),
	  .desc = "recipients per message; 0 is the global one" },
};

static const struct config_schema user_schema = {
	user_params, nitems(user_params),
	"{ name = \"alice@example.org\"; senders = [ \"@example.org\" ]; }",
	config_check_user,
};

/*
 * Every top-level key.  A NULL def leaves the field zero: an empty list,
 * an absent group; hostname's default is computed (the FQDN).
 */
const struct config_param config_params[] = {
	{ .name = "hostname", .type = PARAM_STRING, .min = 1, .max = 255,
	  CFG(hostname), .check = config_valid_hostname,
	  .desc = "FQDN used in the greeting, EHLO and Received:" },
	{ .name = "spool_dir", .type = PARAM_STRING, .def = "./var/spool",
	  .min = 1, .max = 4095, CFG(spool_dir), .check = config_valid_path,
	  .desc = "spool directory; relative to the working directory" },
	{ .name = "workers", .type = PARAM_UINT, .def = "0", .max = 64,
	  CFG(workers), .desc = "worker threads; 0 is one per CPU" },
	{ .name = "spool_sync", .type = PARAM_ENUM, .def = "syncfs",
	  CFG(spool_sync), .names = config_sync_names,
	  .desc = "syncfs: one syncfs() per batch; fsync: per file" },
	{ .name = "listeners", .type = PARAM_LIST,
	  .def = "( { address = \"127.0.0.1:2525\"; } )", .min = 1,
	  .max = CONFIG_LISTENERS_MAX, CFG_LIST(listeners, nlisteners),
	  .schema = &listener_schema, .desc = "addresses to accept SMTP on" },
	{ .name = "max_message_size", .type = PARAM_SIZE, .def = "25M",
	  .min = 10 * KIB, .max = 2 * GIB, CFG(max_message_size),
	  .desc = "largest message accepted, advertised with SIZE" },
	{ .name = "max_recipients", .type = PARAM_UINT, .def = "1000",
	  .min = 100, .max = 100000, CFG(max_recipients),
	  .ref = "RFC 5321 4.5.3.1.8", .desc = "RCPT TO per transaction" },
	{ .name = "max_command_line", .type = PARAM_UINT, .def = "512",
	  .min = 512, .max = 65536, CFG(max_command_line),
	  .ref = "RFC 5321 4.5.3.1.4",
	  .desc = "longest command line in octets, CRLF included" },
	{ .name = "max_text_line", .type = PARAM_UINT, .def = "1000",
	  .min = 1000, .max = 1000000, CFG(max_text_line),
	  .ref = "RFC 5321 4.5.3.1.6",
	  .desc = "longest message text line in octets, CRLF included" },
	{ .name = "max_errors", .type = PARAM_UINT, .def = "20", .min = 1,
	  .max = 1000, CFG(max_errors),
	  .desc = "bad commands in a session before 421 and hang-up" },
	{ .name = "max_sessions", .type = PARAM_UINT, .def = "10000",
	  .min = 1, .max = 1000000, CFG(max_sessions),
	  .desc = "concurrent SMTP sessions, all listeners together" },
	{ .name = "command_timeout", .type = PARAM_DURATION, .def = "5m",
	  .min = 1, .max = 3600, CFG(command_timeout),
	  .ref = "RFC 5321 4.5.3.2.7",
	  .desc = "idle time waiting for a command" },
	{ .name = "data_timeout", .type = PARAM_DURATION, .def = "3m",
	  .min = 1, .max = 3600, CFG(data_timeout),
	  .ref = "RFC 5321 4.5.3.2.5", .desc = "idle time inside DATA/BDAT" },
	{ .name = "greeting_delay", .type = PARAM_DURATION, .def = "0",
	  .max = 300, CFG(greeting_delay),
	  .desc = "wait before the 220 banner; early talkers are rejected" },
	{ .name = "log_level", .type = PARAM_ENUM, .def = "info",
	  CFG(log_level), .names = config_log_names,
	  .desc = "warn, info or debug" },

	/* Local delivery. */
	{ .name = "local_domains", .type = PARAM_STRLIST,
	  .max = CONFIG_DOMAINS_MAX, CFG_LIST(local_domains, nlocal_domains),
	  .flags = PARAM_F_LOWER, .check = config_valid_hostname,
	  .desc = "domains delivered here; all others are relayed" },
	{ .name = "mailbox_root", .type = PARAM_STRING, .def = "./var/mail",
	  .min = 1, .max = 4095, CFG(mailbox_root),
	  .check = config_valid_path,
	  .desc = "Maildirs live in ROOT/domain/localpart/" },
	{ .name = "aliases_file", .type = PARAM_STRING, .def = "",
	  .max = 4095, CFG(aliases_file), .check = config_valid_path,
	  .flags = PARAM_F_READABLE, .desc = "alias table; \"\" is none" },
	{ .name = "lmtp_address", .type = PARAM_ADDRESS, .def = "",
	  .max = 127, CFG(lmtp_address),
	  .desc = "\"IP:PORT\" of an LMTP server; \"\" writes Maildirs" },

	/* Relaying. */
	{ .name = "smarthost", .type = PARAM_GROUP, CFG(smarthost),
	  .schema = &route_schema,
	  .desc = "relay all outbound mail through this host" },
	{ .name = "routes", .type = PARAM_LIST, .max = CONFIG_ROUTES_MAX,
	  CFG_LIST(routes, nroutes), .schema = &route_schema,
	  .desc = "per-domain smarthosts or TLS levels, before smarthost" },
	{ .name = "dns_forwarder", .type = PARAM_STRING, .def = "",
	  .max = 127, CFG(dns_forwarder), .check = config_valid_forwarder,
	  .desc = "\"IP\" or \"IP@PORT\" to resolve with; \"\": resolv.conf" },
	{ .name = "outbound_ipv6", .type = PARAM_BOOL, .def = "true",
	  .max = 1, CFG(outbound_ipv6),
	  .desc = "also connect to IPv6 addresses of MX hosts" },
	{ .name = "smtp_port", .type = PARAM_UINT, .def = "25", .min = 1,
	  .max = 65535, CFG(smtp_port),
	  .desc = "port of MX hosts (tests use another)" },
	{ .name = "dest_concurrency", .type = PARAM_UINT, .def = "20",
	  .min = 1, .max = 1000, CFG(dest_concurrency),
	  .desc = "connections to one destination at a time" },
	{ .name = "outbound_concurrency", .type = PARAM_UINT, .def = "200",
	  .min = 1, .max = 10000, CFG(outbound_concurrency),
	  .desc = "outbound connections at a time, all together" },
	{ .name = "max_messages_per_connection", .type = PARAM_UINT,
	  .def = "100", .min = 1, .max = 100000,
	  CFG(max_messages_per_connection),
	  .desc = "messages sent over one connection before QUIT" },

	/* Outbound TLS. */
	{ .name = "outbound_tls", .type = PARAM_ENUM, .def = "opportunistic",
	  CFG(outbound_tls), .names = config_mx_tls_names,
	  .desc = "MX delivery: none, opportunistic or required" },
	{ .name = "tls_ca_file", .type = PARAM_STRING, .def = "",
	  .max = 4095, CFG(tls_ca_file), .check = config_valid_path,
	  .flags = PARAM_F_READABLE,
	  .desc = "CA certificates (PEM); \"\" is the system store" },

	/* Outbound timeouts. */
	{ .name = "connect_timeout", .type = PARAM_DURATION, .def = "30s",
	  .min = 1, .max = 600, CFG(connect_timeout),
	  .desc = "TCP connect to a server" },
	{ .name = "smtp_greeting_timeout", .type = PARAM_DURATION,
	  .def = "5m", .min = 1, .max = 3600, CFG(smtp_greeting_timeout),
	  .ref = "RFC 5321 4.5.3.2.1", .desc = "wait for the 220 greeting" },
	{ .name = "smtp_command_timeout", .type = PARAM_DURATION,
	  .def = "5m", .min = 1, .max = 3600, CFG(smtp_command_timeout),
	  .ref = "RFC 5321 4.5.3.2.2",
	  .desc = "wait for the reply to EHLO, MAIL, RCPT, DATA, ..." },
	{ .name = "smtp_data_timeout", .type = PARAM_DURATION, .def = "3m",
	  .min = 1, .max = 3600, CFG(smtp_data_timeout),
	  .ref = "RFC 5321 4.5.3.2.5",
	  .desc = "wait for the server to take a block of message text" },
	{ .name = "smtp_done_timeout", .type = PARAM_DURATION, .def = "10m",
	  .min = 1, .max = 3600, CFG(smtp_done_timeout),
	  .ref = "RFC 5321 4.5.3.2.6",
	  .desc = "wait for the reply to the end of data" },

	/* Retries and notices. */
	{ .name = "retry_min", .type = PARAM_DURATION, .def = "5m",
	  .min = 1, .max = 86400, CFG(retry_min),
	  .desc = "first retry after a temporary failure" },
	{ .name = "retry_max", .type = PARAM_DURATION, .def = "1h",
	  .min = 1, .max = 7 * 86400, CFG(retry_max),
	  .at_least = "retry_min",
	  .desc = "longest wait between retries (the backoff's cap)" },
	{ .name = "queue_lifetime", .type = PARAM_DURATION, .def = "5d",
	  .min = 1, .max = 100 * 86400, CFG(queue_lifetime),
	  .desc = "give up and bounce after this long in the queue" },
	{ .name = "delay_warning", .type = PARAM_DURATION, .def = "4h",
	  .max = 100 * 86400, CFG(delay_warning),
	  .desc = "warn the sender after this long; 0 never" },
	{ .name = "max_received", .type = PARAM_UINT, .def = "50", .min = 1,
	  .max = 1000, CFG(max_received),
	  .desc = "Received: fields beyond which a message is a loop" },
	{ .name = "bounce_return_max", .type = PARAM_SIZE, .def = "1M",
	  .max = 100 * MIB, CFG(bounce_return_max),
	  .desc = "bounces quote larger originals' headers only" },

	/* Security. */
	{ .name = "user", .type = PARAM_STRING, .def = "sluice", .min = 1,
	  .max = CONFIG_UNIX_NAME_MAX, CFG(user),
	  .check = config_valid_unix_name,
	  .desc = "run as this user once the listeners are open (as root)" },
	{ .name = "group", .type = PARAM_STRING, .def = "",
	  .max = CONFIG_UNIX_NAME_MAX, CFG(group),
	  .check = config_valid_unix_name,
	  .desc = "and this group; \"\" is the user's primary group" },
	{ .name = "tls_certificates", .type = PARAM_LIST,
	  .max = CONFIG_CERTS_MAX,
	  CFG_LIST(tls_certificates, ntls_certificates),
	  .schema = &cert_schema,
	  .desc = "server certificates; none: no STARTTLS, no submissions" },
	{ .name = "tls_ciphers", .type = PARAM_STRING,
	  .def = "ECDHE+AESGCM:ECDHE+CHACHA20", .min = 1, .max = 1023,
	  CFG(tls_ciphers),
	  .desc = "OpenSSL cipher list for TLS 1.2 (1.3 uses its own)" },
	{ .name = "tls_request_client_cert", .type = PARAM_BOOL,
	  .def = "false", .max = 1, CFG(tls_request_client_cert),
	  .desc = "ask clients for a certificate (logged, not required)" },
	{ .name = "passwd_file", .type = PARAM_STRING, .def = "",
	  .max = 4095, CFG(passwd_file), .check = config_valid_path,
	  .flags = PARAM_F_READABLE | PARAM_F_NO_OTHERS,
	  .desc = "AUTH users and password hashes; \"\" turns AUTH off" },
	{ .name = "auth_fail_delay", .type = PARAM_DURATION, .def = "2s",
	  .max = 60, CFG(auth_fail_delay),
	  .desc = "pause before each failed-AUTH reply" },
	{ .name = "auth_fail_max", .type = PARAM_UINT, .def = "5",
	  .max = 1000, CFG(auth_fail_max),
	  .desc = "failed AUTHs from one IP in auth_fail_window: a ban; 0 "
	  "never" },
	{ .name = "auth_fail_window", .type = PARAM_DURATION, .def = "10m",
	  .min = 1, .max = 86400, CFG(auth_fail_window),
	  .desc = "the time over which auth_fail_max counts" },
	{ .name = "auth_ban_time", .type = PARAM_DURATION, .def = "1h",
	  .min = 1, .max = 30 * 86400, CFG(auth_ban_time),
	  .desc = "how long a banned IP is refused" },
	{ .name = "relay_networks", .type = PARAM_STRLIST,
	  .def = "[ \"127.0.0.0/8\", \"::1/128\" ]",
	  .max = CONFIG_NETWORKS_MAX,
	  CFG_LIST(relay_networks, nrelay_networks),
	  .strsize = sizeof(((struct config_network *)0)->cidr),
	  .schema = &network_schema,
	  .desc = "clients that may relay without AUTH: \"IP/PREFIX\"" },
	{ .name = "users", .type = PARAM_LIST, .max = CONFIG_USERS_MAX,
	  CFG_LIST(users, nusers), .schema = &user_schema,
	  .desc = "per-user senders and caps; AUTH users not listed get "
	  "the defaults" },
	{ .name = "max_msgs_per_hour", .type = PARAM_UINT, .def = "0",
	  .max = 10000000, CFG(max_msgs_per_hour),
	  .desc = "messages per user or relay network per hour; 0 no cap" },
	{ .name = "max_msgs_per_day", .type = PARAM_UINT, .def = "0",
	  .max = 10000000, CFG(max_msgs_per_day),
	  .desc = "messages per user or relay network per day; 0 no cap" },
	{ .name = "max_rcpts_per_msg", .type = PARAM_UINT, .def = "0",
	  .max = 10000000, CFG(max_rcpts_per_msg),
	  .desc = "recipients per relayed message; 0: max_recipients only" },
	{ .name = "max_sessions_per_ip", .type = PARAM_UINT, .def = "50",
	  .max = 100000, CFG(max_sessions_per_ip),
	  .desc = "concurrent sessions from one IP; 0 no limit" },
	{ .name = "max_connect_rate", .type = PARAM_UINT, .def = "120",
	  .max = 100000, CFG(max_connect_rate),
	  .desc = "new connections from one IP per minute; 0 no limit" },
	{ .name = "soft_error_limit", .type = PARAM_UINT, .def = "10",
	  .max = 1000, CFG(soft_error_limit), .at_most = "max_errors",
	  .desc = "errors in a session before each reply waits error_delay;"
	  " 0 never" },
	{ .name = "error_delay", .type = PARAM_DURATION, .def = "1s",
	  .max = 60, CFG(error_delay),
	  .desc = "the wait before each reply past soft_error_limit" },
};

const size_t config_nparams = nitems(config_params);

/*
 * Write "FILE:LINE: [scope.]key: message" into ctx->err.  key may be NULL
 * for a message about the scope itself.
 */
int
config_err(struct config_ctx *ctx, const config_setting_t *s,
    const char *key, const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	size_t n;
	va_list ap;
	int len;

	len = snprintf(ctx->err, ctx->errlen, "%s:%u: %s%s%s%s",
	    file ? file : ctx->path, (unsigned)config_setting_source_line(s),
	    ctx->scope, *ctx->scope && key ? "." : "", key ? key : "",
	    *ctx->scope || key ? ": " : "");
	n = len < 0 ? 0 : (size_t)len;
	if (n < ctx->errlen) {
		va_start(ap, fmt);
		vsnprintf(ctx->err + n, ctx->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const struct config_param *
config_param_find(const struct config_param *tab, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(tab[i].name, name) == 0)
			return &tab[i];
	return NULL;
}

static void
config_store(void *base, const struct config_param *p, uint64_t v)
{
	char *f = (char *)base + p->off;

	if (p->size == sizeof(uint64_t)) {
		memcpy(f, &v, sizeof(v));
	} else {
		unsigned u = (unsigned)v;

		assert(p->size == sizeof(u) && v <= UINT32_MAX);
		memcpy(f, &u, sizeof(u));
	}
}

uint64_t
config_fetch(const void *base, const struct config_param *p)
{
	const char *f = (const char *)base + p->off;
	uint64_t v;
	unsigned u;

	if (p->size == sizeof(v)) {
		memcpy(&v, f, sizeof(v));
		return v;
	}
	memcpy(&u, f, sizeof(u));
	return u;
}

/* Digits with an optional unit suffix from units[] scaled by mult[]. */
static int
config_parse_unit(const char *s, const char *units, const uint64_t *mult,
    uint64_t *out)
{
	size_t len = strlen(s);
	const char *u;
	uint64_t m = 1, v;

	if (len > 0 && (u = strchr(units, s[len - 1])) != NULL) {
		m = mult[u - units];
		len--;
	}
	if (parse_u64n(s, len, 0, UINT64_MAX / m, &v) == -1)
		return -1;
	*out = v * m;
	return 0;
}

static int
config_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { KIB, MIB, GIB, KIB, MIB, GIB };

	return config_parse_unit(s, "KMGkmg", mult, out);
}

static int
config_parse_duration(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400 };

	return config_parse_unit(s, "smhd", mult, out);
}

/* The largest unit that divides v exactly, as config_parse_unit reads. */
static void
config_fmt_unit(char *buf, size_t len, uint64_t v, const char *units,
    const uint64_t *mult, size_t nunits)
{
	size_t i;

	/* A space unit means "no suffix": sizes print plain octets. */
	for (i = nunits; i-- > 0; ) {
		if (v != 0 && units[i] != ' ' && v % mult[i] == 0) {
			snprintf(buf, len, "%llu%c",
			    (unsigned long long)(v / mult[i]), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

void
config_fmt_value(const struct config_param *p, uint64_t v, char *buf,
    size_t len)
{
	static const uint64_t size_mult[] = { 1, KIB, MIB, GIB };
	static const uint64_t dur_mult[] = { 1, 60, 3600, 86400 };

	if (p->type == PARAM_SIZE)
		config_fmt_unit(buf, len, v, " KMG", size_mult, 4);
	else if (p->type == PARAM_DURATION)
		config_fmt_unit(buf, len, v, "smhd", dur_mult, 4);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* A number from a string in the type's own syntax (defaults use it). */
static int
config_parse_value(const struct config_param *p, const char *s,
    uint64_t *out)
{
	switch (p->type) {
	case PARAM_SIZE:
		return config_parse_size(s, out);
	case PARAM_DURATION:
		return config_parse_duration(s, out);
	default:
		return parse_u64(s, 0, UINT64_MAX, out);
	}
}

static const char *
config_type_error(const struct config_param *p)
{
	switch (p->type) {
	case PARAM_SIZE:
		return "expected a size: octets or a string like \"25M\" "
		    "(K, M, G)";
	case PARAM_DURATION:
		return "expected a duration: seconds or a string like \"5m\" "
		    "(s, m, h, d)";
	case PARAM_STRING:
	case PARAM_ADDRESS:
		return "expected a string";
	default:
		return "expected an unsigned integer";
	}
}

static int
config_err_below(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, const char *have)
{
	char lim[CONFIG_VALUE_MAX];

	config_fmt_value(p, p->min, lim, sizeof(lim));
	return config_err(ctx, s, p->name, "%s is below the minimum %s%s%s%s",
	    have, lim, p->ref ? " (" : "", p->ref ? p->ref : "",
	    p->ref ? ")" : "");
}

/* The number in s, checked against the row's bounds. */
static int
config_load_number(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, uint64_t *out)
{
	char have[CONFIG_VALUE_MAX], lim[CONFIG_VALUE_MAX];
	long long sv;
	int t = config_setting_type(s);

	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
		sv = config_setting_get_int64(s);
		if (sv < 0) {
			snprintf(have, sizeof(have), "%lld", sv);
			return config_err_below(ctx, p, s, have);
		}
		*out = (uint64_t)sv;
	} else if (t != CONFIG_TYPE_STRING || p->type == PARAM_UINT ||
	    config_parse_value(p, config_setting_get_string(s), out) == -1)
		return config_err(ctx, s, p->name, "%s", config_type_error(p));
	config_fmt_value(p, *out, have, sizeof(have));
	if (*out < p->min)
		return config_err_below(ctx, p, s, have);
	if (*out > p->max) {
		config_fmt_value(p, p->max, lim, sizeof(lim));
		return config_err(ctx, s, p->name,
		    "%s is above the maximum %s", have, lim);
	}
	return 0;
}

static int
config_enum_lookup(const struct config_enum *names, const char *s,
    unsigned *out)
{
	for (; names->name != NULL; names++) {
		if (strcmp(names->name, s) == 0) {
			*out = names->value;
			return 0;
		}
	}
	return -1;
}

const char *
config_enum_name(const struct config_enum *names, unsigned v)
{
	for (; names->name != NULL; names++)
		if (names->value == v)
			return names->name;
	return "?";
}

static int
config_load_enum(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	char list[256] = "";
	const struct config_enum *e;
	const char *str = config_setting_get_string(s);
	unsigned v;

	if (str != NULL && config_enum_lookup(p->names, str, &v) == 0) {
		config_store(base, p, v);
		return 0;
	}
	for (e = p->names; e->name != NULL; e++) {
		if (e != p->names)
			strlcat(list, ", ", sizeof(list));
		strlcat(list, "\"", sizeof(list));
		strlcat(list, e->name, sizeof(list));
		strlcat(list, "\"", sizeof(list));
	}
	return config_err(ctx, s, p->name, "expected one of %s", list);
}

/* A file the daemon will read: 0, or why not as an errno; its mode. */
static int
config_readable(const char *path, mode_t *mode)
{
	struct stat st;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return errno;
	if (fstat(fd, &st) == -1)
		rc = errno;
	else if (S_ISDIR(st.st_mode))
		rc = EISDIR;
	*mode = st.st_mode;
	close(fd);
	return rc;
}

/*
 * PARAM_F_READABLE: the file opens.  A file of secrets must also be
 * closed to others (PARAM_F_NO_OTHERS) and its group (PARAM_F_NO_GROUP),
 * as OpenSMTPD's check_file_secrecy: a key anyone can read is no key.
 */
static int
config_check_file(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, const char *path)
{
	mode_t mode = 0, deny = 0;
	int e;

	if ((e = config_readable(path, &mode)) != 0)
		return config_err(ctx, s, p->name, "%s: %s", path,
		    strerror(e));
	if (p->flags & PARAM_F_NO_OTHERS)
		deny |= S_IRWXO;
	if (p->flags & PARAM_F_NO_GROUP)
		deny |= S_IRWXG;
	if ((mode & deny) != 0)
		return config_err(ctx, s, p->name, "%s: mode %04o lets %s "
		    "read it (chmod %s)", path, (unsigned)(mode & 07777),
		    (deny & S_IRWXG) ? "group or others" : "others",
		    (deny & S_IRWXG) ? "600" : "o-rwx");
	return 0;
}

static int
config_load_string(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	const char *str = config_setting_get_string(s), *why, *at;
	char *f = (char *)base + p->off;
	size_t i, len, low = 0;

	if (str == NULL)
		return config_err(ctx, s, p->name, "expected a string");
	len = strlen(str);
	if (len < p->min)
		return config_err(ctx, s, p->name, "must not be empty");
	if (len > p->max || len >= p->size)
		return config_err(ctx, s, p->name,
		    "longer than %llu characters", (unsigned long long)p->max);
	strlcpy(f, str, p->size);
	if (!(p->flags & (PARAM_F_LOWER | PARAM_F_LOWER_DOMAIN)))
		low = len;
	else if ((p->flags & PARAM_F_LOWER_DOMAIN) &&
	    (at = strrchr(f, '@')) != NULL)
		low = (size_t)(at - f);
	for (i = low; i < len; i++)
		if (f[i] >= 'A' && f[i] <= 'Z')
			f[i] = (char)(f[i] - 'A' + 'a');
	if (len == 0)
		return 0;
	if (p->check != NULL && (why = p->check(f)) != NULL)
		return config_err(ctx, s, p->name, "%s", why);
	if (p->flags & PARAM_F_READABLE)
		return config_check_file(ctx, p, s, f);
	return 0;
}

/* A string, kept as written, that must parse as an address if set. */
static int
config_load_address(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	char host[INET6_ADDRSTRLEN], port[8];
	const char *str = (const char *)base + p->off, *why;

	if (config_load_string(ctx, p, s, base) == -1)
		return -1;
	if (*str != '\0' &&
	    (why = config_parse_address(str, host, sizeof(host), port,
	    sizeof(port))) != NULL)
		return config_err(ctx, s, p->name, "\"%s\": %s", str, why);
	return 0;
}

static int
config_load_bool(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return config_err(ctx, s, p->name, "expected true or false");
	config_store(base, p, config_setting_get_bool(s) ? 1 : 0);
	return 0;
}

static void
config_store_count(void *base, const struct config_param *p, unsigned n)
{
	memcpy((char *)base + p->count, &n, sizeof(n));
}

unsigned
config_fetch_count(const void *base, const struct config_param *p)
{
	unsigned n;

	memcpy(&n, (const char *)base + p->count, sizeof(n));
	return n;
}

/* s is a list or array of min..max entries; their number in *np. */
static int
config_list_length(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, const char *shape, unsigned *np)
{
	int n = config_setting_length(s);

	if (!config_setting_is_list(s) && !config_setting_is_array(s))
		return config_err(ctx, s, p->name, "expected a list %s",
		    shape);
	assert(p->min <= 1 && p->max * p->elem <= p->size);
	if (n == 0 && p->min > 0)
		return config_err(ctx, s, p->name, "must not be empty");
	if ((uint64_t)n > p->max)
		return config_err(ctx, s, p->name,
		    "%d %s, at most %llu are allowed", n, p->name,
		    (unsigned long long)p->max);
	*np = (unsigned)n;
	return 0;
}

/*
 * Each entry a string read as a PARAM_STRING row of its own, at the
 * start of an entry of elem octets; then the schema's check, if any.
 * Inside a group the scope grows: "users[0].senders[1]".
 */
static int
config_load_strlist(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	char outer[CONFIG_SCOPE_MAX];
	struct config_param ep = *p;
	const config_setting_t *e;
	const char *str, *prev;
	unsigned i, j, n;
	int len;

	if (config_list_length(ctx, p, s, "of strings [ \"...\", ... ]",
	    &n) == -1)
		return -1;
	memset((char *)base + p->off, 0, p->size);
	memcpy(outer, ctx->scope, sizeof(outer));
	ep.name = NULL;		/* errors name the entry: "key[1]" */
	ep.type = PARAM_STRING;
	ep.size = p->strsize != 0 ? p->strsize : p->elem;
	ep.min = 1;
	ep.max = ep.size - 1;
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, i);
		len = snprintf(ctx->scope, sizeof(ctx->scope), "%s%s%s[%u]",
		    outer, *outer != '\0' ? "." : "", p->name, i);
		assert(len > 0 && (size_t)len < sizeof(ctx->scope));
		ep.off = p->off + i * p->elem;
		if (config_load_string(ctx, &ep, e, base) == -1)
			return -1;
		str = (const char *)base + ep.off;
		for (j = 0; j < i; j++) {
			prev = (const char *)base + p->off + j * p->elem;
			if (strcmp(prev, str) == 0)
				return config_err(ctx, e, NULL,
				    "%s is already listed as %s[%u]", str,
				    p->name, j);
		}
		if (p->schema != NULL && p->schema->check(ctx, e,
		    (char *)base + p->off, i) == -1)
			return -1;
	}
	memcpy(ctx->scope, outer, sizeof(outer));
	config_store_count(base, p, n);
	return 0;
}

/* Each member of grp must be a row of tab; libconfig refuses duplicates. */
static int
config_load_members(struct config_ctx *ctx, const config_setting_t *grp,
    const struct config_param *tab, size_t n, int skip, void *base)
{
	const struct config_param *p;
	config_setting_t *s;
	int i;

	for (i = 0; (s = config_setting_get_elem(grp, (unsigned)i)); i++) {
		p = config_param_find(tab, n, config_setting_name(s));
		if (p == NULL || (p->flags & skip))
			return config_err(ctx, s, NULL, "unknown key '%s'",
			    config_setting_name(s));
		if (config_load_param(ctx, p, s, base) == -1)
			return -1;
	}
	return 0;
}

static void
config_param_default(const struct config_param *, void *);

/*
 * Entry i of the array at entries (a lone group: entry 0 of itself),
 * from its defaults and then the members of e.  ctx->scope names it.
 */
static int
config_load_entry(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *e, void *entries, unsigned i)
{
	const struct config_schema *sc = p->schema;
	const struct config_param *q;
	int lone = p->type == PARAM_GROUP;
	int skip = lone ? PARAM_F_LIST_ONLY : 0;
	int need = PARAM_F_REQUIRED | (lone ? PARAM_F_GROUP_REQUIRED : 0);
	void *entry = (char *)entries + i * (lone ? p->size : p->elem);
	const config_setting_t *m;
	size_t k;

	if (!config_setting_is_group(e))
		return config_err(ctx, e, NULL, "expected a group %s",
		    sc->example);
	for (k = 0; k < sc->nparams; k++)
		if (sc->params[k].def != NULL)
			config_param_default(&sc->params[k], entry);
	if (config_load_members(ctx, e, sc->params, sc->nparams, skip,
	    entry) == -1)
		return -1;
	for (k = 0; k < sc->nparams; k++) {
		q = &sc->params[k];
		if (!(q->flags & need) || (q->flags & skip))
			continue;
		if ((m = config_setting_get_member(e, q->name)) == NULL)
			return config_err(ctx, e, NULL, "%s is required",
			    q->name);
		if (q->type == PARAM_STRING &&
		    *((const char *)entry + q->off) == '\0')
			return config_err(ctx, m, q->name,
			    "must not be empty");
	}
	return sc->check != NULL ? sc->check(ctx, e, entries, i) : 0;
}

static int
config_load_group(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	char *f = (char *)base + p->off;

	memset(f, 0, p->size);
	snprintf(ctx->scope, sizeof(ctx->scope), "%s", p->name);
	if (config_load_entry(ctx, p, s, f, 0) == -1)
		return -1;
	ctx->scope[0] = '\0';
	return 0;
}

static int
config_load_list(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	char shape[CONFIG_DEFAULT_MAX];
	char *f = (char *)base + p->off;
	unsigned i, n;

	snprintf(shape, sizeof(shape), "of groups ( %s, ... )",
	    p->schema->example);
	if (config_list_length(ctx, p, s, shape, &n) == -1)
		return -1;
	memset(f, 0, p->size);
	for (i = 0; i < n; i++) {
		snprintf(ctx->scope, sizeof(ctx->scope), "%s[%u]", p->name, i);
		if (config_load_entry(ctx, p, config_setting_get_elem(s, i),
		    f, i) == -1)
			return -1;
	}
	ctx->scope[0] = '\0';
	config_store_count(base, p, n);
	return 0;
}

static int
config_load_param(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	uint64_t v;

	switch (p->type) {
	case PARAM_STRING:
		return config_load_string(ctx, p, s, base);
	case PARAM_BOOL:
		return config_load_bool(ctx, p, s, base);
	case PARAM_ENUM:
		return config_load_enum(ctx, p, s, base);
	case PARAM_ADDRESS:
		return config_load_address(ctx, p, s, base);
	case PARAM_STRLIST:
		return config_load_strlist(ctx, p, s, base);
	case PARAM_GROUP:
		return config_load_group(ctx, p, s, base);
	case PARAM_LIST:
		return config_load_list(ctx, p, s, base);
	case PARAM_UINT:
	case PARAM_SIZE:
	case PARAM_DURATION:
		if (config_load_number(ctx, p, s, &v) == -1)
			return -1;
		config_store(base, p, v);
		return 0;
	}
	return config_err(ctx, s, p->name, "internal: bad type");
}

/*
 * gethostname(), made fully qualified through the resolver (/etc/hosts
 * first) when it has no dot, as Postfix's myhostname does.  Computed
 * once: a slow resolver must not stall every config_defaults().
 */
static const char *
config_default_hostname(void)
{
	static char name[256];
	struct addrinfo hints, *res = NULL;

	if (name[0] != '\0')
		return name;
	if (gethostname(name, sizeof(name)) == -1 ||
	    memchr(name, '\0', sizeof(name)) == NULL)
		name[0] = '\0';
	if (name[0] != '\0' && strchr(name, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		if (getaddrinfo(name, NULL, &hints, &res) == 0 &&
		    res->ai_canonname != NULL &&
		    strchr(res->ai_canonname, '.') != NULL)
			strlcpy(name, res->ai_canonname, sizeof(name));
		if (res != NULL)
			freeaddrinfo(res);
	}
	if (config_valid_hostname(name) != NULL)
		strlcpy(name, "localhost", sizeof(name));
	return name;
}

/* A list or group default: "key = def;" read as if from a file. */
static void
config_default_text(const struct config_param *p, void *base)
{
	char text[CONFIG_DEFAULT_MAX], err[CONFIG_ERR_MAX] = "";
	struct config_ctx ctx = { .path = "(default)", .err = err,
	    .errlen = sizeof(err) };
	config_t lc;
	int rc = -1;

	snprintf(text, sizeof(text), "%s = %s;", p->name, p->def);
	config_init(&lc);
	if (config_read_string(&lc, text) == CONFIG_TRUE)
		rc = config_load_param(&ctx, p,
		    config_setting_get_member(config_root_setting(&lc),
		    p->name), base);
	config_destroy(&lc);
	if (rc == -1)
		fatalx("config: bad default for %s: %s", p->name, err);
}

static int
config_parse_bool(const char *s, uint64_t *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
		*out = s[0] == 't';
		return 0;
	}
	return -1;
}

static void
config_param_default(const struct config_param *p, void *base)
{
	uint64_t v;
	unsigned e;

	switch (p->type) {
	case PARAM_STRING:
	case PARAM_ADDRESS:
		strlcpy((char *)base + p->off, p->def, p->size);
		break;
	case PARAM_ENUM:
		if (config_enum_lookup(p->names, p->def, &e) == -1)
			fatalx("config: bad default for %s", p->name);
		config_store(base, p, e);
		break;
	case PARAM_STRLIST:
	case PARAM_GROUP:
	case PARAM_LIST:
		config_default_text(p, base);
		break;
	default:
		if ((p->type == PARAM_BOOL ? config_parse_bool(p->def, &v) :
		    config_parse_value(p, p->def, &v)) == -1 ||
		    v < p->min || v > p->max)
			fatalx("config: bad default for %s", p->name);
		config_store(base, p, v);
		break;
	}
}

void
config_defaults(struct config *cfg)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < config_nparams; i++)
		if (config_params[i].def != NULL)
			config_param_default(&config_params[i], cfg);
	strlcpy(cfg->hostname, config_default_hostname(),
	    sizeof(cfg->hostname));
}

/*
 * libconfig 1.5 reads a decimal or hex integer beyond 32 bits without an
 * L suffix as a silently truncated int (4294967396 becomes 100).  Scan
 * the text as its lexer does and refuse such literals.
 */
static const char *
config_skip_noise(const char *p, unsigned *line)
{
	for (;;) {
		if (*p == '\n')
			(*line)++;
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
		    *p == '\f')
			p++;
		else if (*p == '#' || (p[0] == '/' && p[1] == '/'))
			p += strcspn(p, "\n");
		else if (p[0] == '/' && p[1] == '*') {
			for (p += 2; *p != '\0'; p++) {
				if (p[0] == '*' && p[1] == '/')
					break;
				if (*p == '\n')
					(*line)++;
			}
			p += *p != '\0' ? 2 : 0;
		} else if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p == '\n')
					(*line)++;
				if (*p == '\\' && p[1] != '\0')
					p++;
			}
			p += *p != '\0';
		} else
			return p;
	}
}

/* Length of the integer literal at p if it does not fit an int, else 0. */
static size_t
config_wide_int(const char *p)
{
	const char *d = p + (*p == '-' || *p == '+');
	size_t n;
	uint64_t v;

	if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
		n = 2 + strspn(d + 2, "0123456789abcdefABCDEF");
		v = strtoull(d, NULL, 16);	/* saturates at UINT64_MAX */
		if (d[n] == 'L' || v <= INT32_MAX)
			return 0;
	} else {
		n = strspn(d, "0123456789");
		if (strchr(".eEL", d[n]) != NULL && d[n] != '\0')
			return 0;	/* float or int64 */
		if (parse_u64n(d, n, 0, *p == '-' ? 2147483648ULL :
		    INT32_MAX, &v) == 0)
			return 0;
	}
	return (size_t)(d - p) + n;
}

static int
config_check_ints(struct config_ctx *ctx, const char *text)
{
	const char *p = text, *name = "", *start;
	size_t namelen = 0, n;
	unsigned line = 1;

	while (*(p = config_skip_noise(p, &line)) != '\0') {
		start = p;
		if ((*p >= '0' && *p <= '9') || ((*p == '-' || *p == '+') &&
		    p[1] >= '0' && p[1] <= '9')) {
			if ((n = config_wide_int(p)) > 0) {
				snprintf(ctx->err, ctx->errlen, "%s:%u: %.*s: "
				    "%.*s does not fit in 32 bits; add an L "
				    "suffix or write it as a string", ctx->path,
				    line, (int)namelen, name, (int)n, p);
				return -1;
			}
			p += strspn(p, "+-0123456789abcdefABCDEFxXL.");
			continue;
		}
		p += strspn(p, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_*-");
		if (p != start) {
			name = start;
			namelen = (size_t)(p - start);
		} else
			p++;
	}
	return 0;
}

/* The whole file, NUL-terminated, or NULL with "FILE: reason" in err. */
static char *
config_slurp(struct config_ctx *ctx)
{
	struct stat st;
	FILE *fp;
	char *text = NULL;
	size_t n;
	int saved;

	if ((fp = fopen(ctx->path, "r")) == NULL)
		goto fail;
	errno = 0;
	if (fstat(fileno(fp), &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : S_ISREG(st.st_mode) ?
		    EFBIG : EINVAL;
		goto fail;
	}
	text = xmalloc((size_t)st.st_size + 1);
	n = fread(text, 1, (size_t)st.st_size, fp);
	if (ferror(fp))
		goto fail;
	text[n] = '\0';
	if (strlen(text) != n) {
		snprintf(ctx->err, ctx->errlen, "%s: contains a NUL byte",
		    ctx->path);
		free(text);
		text = NULL;
	}
	fclose(fp);
	return text;
fail:
	saved = errno ? errno : EIO;
	snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->path, strerror(saved));
	free(text);
	if (fp != NULL)
		fclose(fp);
	return NULL;
}

/* @include paths are relative to the including file's directory. */
static int
config_parse_text(struct config_ctx *ctx, config_t *lc, const char *text)
{
	char dir[sizeof(((struct config *)0)->file)];
	char *slash;

	strlcpy(dir, ctx->path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL) {
		if (slash == dir)
			slash++;	/* "/sluice.conf": keep the root */
		*slash = '\0';
		config_set_include_dir(lc, dir);
	}
	if (config_read_string(lc, text) == CONFIG_TRUE)
		return config_check_ints(ctx, text);
	snprintf(ctx->err, ctx->errlen, "%s:%d: %s",
	    config_error_file(lc) ? config_error_file(lc) : ctx->path,
	    config_error_line(lc), config_error_text(lc));
	return -1;
}

/*
 * p must not be below q (at_least) or above it (at_most).  The error
 * goes on the line of p, or of q when only that is in the file (the
 * defaults are in order).  An at_most key the file leaves out follows q
 * down instead: max_errors = 5 alone lowers soft_error_limit to 5.
 */
static int
config_check_pair(struct config_ctx *ctx, const config_setting_t *root,
    struct config *cfg, const struct config_param *p, int at_most)
{
	char have[CONFIG_VALUE_MAX], lim[CONFIG_VALUE_MAX];
	const struct config_param *q;
	const config_setting_t *s;
	uint64_t v, w;

	q = config_param_find(config_params, config_nparams,
	    at_most ? p->at_most : p->at_least);
	assert(q != NULL);
	v = config_fetch(cfg, p);
	w = config_fetch(cfg, q);
	if (at_most ? v <= w : v >= w)
		return 0;
	config_fmt_value(p, v, have, sizeof(have));
	config_fmt_value(q, w, lim, sizeof(lim));
	if ((s = config_setting_get_member(root, p->name)) != NULL)
		return config_err(ctx, s, p->name, "%s is %s %s (%s)", have,
		    at_most ? "above" : "below", q->name, lim);
	if (at_most) {
		config_store(cfg, p, w);
		return 0;
	}
	s = config_setting_get_member(root, q->name);
	assert(s != NULL);
	return config_err(ctx, s, q->name, "%s is above %s (%s)", lim,
	    p->name, have);
}

/* Keys that bound each other: retry_max >= retry_min, and the like. */
static int
config_check_order(struct config_ctx *ctx, const config_setting_t *root,
    struct config *cfg)
{
	const struct config_param *p;
	size_t i;

	for (i = 0; i < config_nparams; i++) {
		p = &config_params[i];
		if (p->at_least != NULL &&
		    config_check_pair(ctx, root, cfg, p, 0) == -1)
			return -1;
		if (p->at_most != NULL &&
		    config_check_pair(ctx, root, cfg, p, 1) == -1)
			return -1;
	}
	return 0;
}

/*
 * The new configuration is built apart and copied to cfg only when it
 * is valid, so a failed reload leaves the running one intact.  Copies of
 * secrets (auth_password) are wiped; libconfig's own are not.
 * XXX: libconfig frees its copy of the text without wiping it.
 */
int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config_ctx ctx = { .path = path, .err = err, .errlen = errlen };
	struct config *next;
	config_t lc;
	char *text;
	int rc = -1;

	if (errlen > 0)
		err[0] = '\0';
	next = xmalloc(sizeof(*next));
	config_defaults(next);
	if (strlcpy(next->file, path, sizeof(next->file)) >=
	    sizeof(next->file)) {
		snprintf(err, errlen, "%s: %s", path, strerror(ENAMETOOLONG));
		free(next);
		return -1;
	}
	if ((text = config_slurp(&ctx)) == NULL) {
		free(next);
		return -1;
	}
	config_init(&lc);
	if (config_parse_text(&ctx, &lc, text) == 0 &&
	    config_load_members(&ctx, config_root_setting(&lc), config_params,
	    config_nparams, 0, next) == 0 &&
	    config_check_order(&ctx, config_root_setting(&lc), next) == 0) {
		*cfg = *next;
		rc = 0;
	}
	config_destroy(&lc);
	explicit_bzero(text, strlen(text));
	free(text);
	explicit_bzero(next, sizeof(*next));
	free(next);
	return rc;
}
