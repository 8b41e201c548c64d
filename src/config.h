/*
 * config.h -- the daemon's configuration: one struct filled from one file.
 * Every key, its default and its bounds live in the table in config.c;
 * docs/configuration.md documents each of them.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_LISTENERS_MAX	16
#define CONFIG_ERR_MAX		512
#define CONFIG_DOMAINS_MAX	256
#define CONFIG_ROUTES_MAX	64
#define CONFIG_NETWORKS_MAX	64
#define CONFIG_USERS_MAX	256
#define CONFIG_SENDERS_MAX	32
#define CONFIG_CERTS_MAX	16

enum listener_role {
	LISTENER_SMTP,		/* port 25: MX for local domains, relay if allowed */
	LISTENER_SUBMISSION,	/* port 587, RFC 6409: AUTH before MAIL (M3) */
	LISTENER_SUBMISSIONS,	/* port 465, implicit TLS, RFC 8314 (M3) */
};

enum spool_sync_mode {
	SPOOL_SYNC_SYNCFS,	/* group commit: one syncfs() per batch */
	SPOOL_SYNC_FSYNC,	/* fdatasync() each file, then the directory */
};

/* Outbound TLS (values match enum smtp_client_tls in smtp_client.h). */
enum tls_level {
	TLS_LEVEL_NONE,			/* "none" */
	TLS_LEVEL_OPPORTUNISTIC,	/* "opportunistic": STARTTLS if offered */
	TLS_LEVEL_REQUIRED,		/* "required": STARTTLS, verified cert */
	TLS_LEVEL_IMPLICIT,		/* "implicit": TLS on connect (465) */
};

/*
 * Where mail for some domains goes instead of their MX: a smarthost
 * (host set), or MX delivery with its own TLS level (host empty).
 */
struct config_route {
	char		 domain[256];	/* "example.com"; ".example.com" also
					   matches subdomains; "" in smarthost */
	char		 host[256];	/* name or IP; "" = MX delivery */
	unsigned	 port;		/* default 25 (smtp_port) */
	enum tls_level	 tls;
	char		 auth_user[256];	/* "" = no AUTH */
	char		 auth_password[256];	/* secret; never logged */
};

struct config_listener {
	char			 address[128];	/* as written: "host:port" */
	char			 host[64];	/* numeric IPv4 or IPv6 */
	char			 port[8];
	enum listener_role	 role;
	unsigned		 auth_cleartext; /* AUTH without TLS (loopback) */
};

/* A network trusted to relay: "10.0.0.0/8", "2001:db8::/32". */
struct config_network {
	char		 cidr[64];
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];
	unsigned	 prefix;
};

/* Sending rules for an authenticated user (M3). */
struct config_user {
	char		 name[256];
	/* "alice@example.org" or "@example.org" (a whole domain). */
	char		 senders[CONFIG_SENDERS_MAX][256];
	unsigned	 nsenders;
	unsigned	 allow_null_sender;	/* MAIL FROM:<> allowed */
	unsigned	 max_msgs_per_hour;	/* 0 = the global default */
	unsigned	 max_msgs_per_day;
	unsigned	 max_rcpts_per_msg;
};

/* A server certificate: PEM chain (leaf first) and key. */
struct config_cert {
	char		 cert[4096];
	char		 key[4096];
};

struct config {
	char		 file[4096];		/* path it was read from */

	char		 hostname[256];		/* greeting, Received, ids */
	char		 spool_dir[4096];
	unsigned	 workers;		/* 0: one per CPU */
	enum spool_sync_mode spool_sync;

	struct config_listener listeners[CONFIG_LISTENERS_MAX];
	unsigned	 nlisteners;

	/* Limits (RFC 5321 4.5.3 minimums are enforced by the table). */
	uint64_t	 max_message_size;	/* octets; SIZE advertised */
	unsigned	 max_recipients;	/* per transaction */
	unsigned	 max_command_line;	/* octets incl. CRLF */
	unsigned	 max_text_line;		/* octets incl. CRLF, DATA/BDAT */
	unsigned	 max_errors;		/* bad commands before 421 */
	unsigned	 max_sessions;		/* all sessions of the daemon */

	/* Timeouts in seconds. */
	unsigned	 command_timeout;
	unsigned	 data_timeout;
	unsigned	 greeting_delay;	/* early-talker detection */

	int		 log_level;		/* enum log_level */

	/* Local delivery (M2). */
	char		 local_domains[CONFIG_DOMAINS_MAX][256];
	unsigned	 nlocal_domains;
	char		 mailbox_root[4096];	/* ROOT/domain/local/ Maildirs */
	char		 aliases_file[4096];	/* "" = none */
	char		 lmtp_address[128];	/* "IP:PORT": LMTP, not Maildir */

	/* Relaying (M2). */
	struct config_route smarthost;		/* host "" = direct MX */
	struct config_route routes[CONFIG_ROUTES_MAX];
	unsigned	 nroutes;
	char		 dns_forwarder[128];	/* "IP" or "IP@PORT"; "" = resolv.conf */
	unsigned	 outbound_ipv6;		/* 0/1 */
	unsigned	 smtp_port;		/* remote port for MX delivery */
	enum tls_level	 outbound_tls;		/* for MX delivery */
	char		 tls_ca_file[4096];	/* "" = system store */
	unsigned	 dest_concurrency;	/* connections per destination */
	unsigned	 outbound_concurrency;	/* connections in all */
	unsigned	 max_messages_per_connection;

	/* Outbound timeouts, seconds (RFC 5321 4.5.3.2). */
	unsigned	 connect_timeout;
	unsigned	 smtp_greeting_timeout;
	unsigned	 smtp_command_timeout;
	unsigned	 smtp_data_timeout;
	unsigned	 smtp_done_timeout;

	/* Retries and notices (M2). */
	unsigned	 retry_min;
	unsigned	 retry_max;
	unsigned	 queue_lifetime;
	unsigned	 delay_warning;		/* 0 = never */
	unsigned	 max_received;		/* loop detection */
	uint64_t	 bounce_return_max;	/* larger originals: headers */

	/* Security (M3). */
	char		 user[64];		/* drop to this user when root */
	char		 group[64];		/* "" = the user's group */
	struct config_cert tls_certificates[CONFIG_CERTS_MAX];
	unsigned	 ntls_certificates;	/* 0 = no STARTTLS, no 465 */
	char		 tls_ciphers[1024];	/* TLS 1.2 list; TLS 1.3 fixed */
	unsigned	 tls_request_client_cert;
	char		 passwd_file[4096];	/* SMTP AUTH users; "" = off */
	unsigned	 auth_fail_delay;	/* seconds before a 535 */
	unsigned	 auth_fail_max;		/* failures per IP in window */
	unsigned	 auth_fail_window;
	unsigned	 auth_ban_time;
	struct config_network relay_networks[CONFIG_NETWORKS_MAX];
	unsigned	 nrelay_networks;
	struct config_user users[CONFIG_USERS_MAX];
	unsigned	 nusers;
	unsigned	 max_msgs_per_hour;	/* per user / trusted network */
	unsigned	 max_msgs_per_day;
	unsigned	 max_rcpts_per_msg;
	unsigned	 max_sessions_per_ip;
	unsigned	 max_connect_rate;	/* per IP per minute */
	unsigned	 soft_error_limit;	/* errors before the tarpit */
	unsigned	 error_delay;		/* tarpit: seconds per reply */
};

/*
 * Fill cfg with defaults, then read path.  On error returns -1 and writes
 * "FILE:LINE: message" (or "FILE: message") into err.
 */
int	config_load(struct config *cfg, const char *path, char *err,
	    size_t errlen);
/* The defaults alone (tests, sluicectl without a file). */
void	config_defaults(struct config *cfg);
/* Print the effective configuration in the file's own syntax. */
void	config_dump(const struct config *cfg, FILE *fp);

#endif
