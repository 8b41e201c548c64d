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

enum listener_role {
	LISTENER_SMTP,		/* port 25: MX for local domains, relay if allowed */
	LISTENER_SUBMISSION,	/* port 587, RFC 6409: AUTH before MAIL (M3) */
	LISTENER_SUBMISSIONS,	/* port 465, implicit TLS, RFC 8314 (M3) */
};

enum spool_sync_mode {
	SPOOL_SYNC_SYNCFS,	/* group commit: one syncfs() per batch */
	SPOOL_SYNC_FSYNC,	/* fdatasync() each file, then the directory */
};

struct config_listener {
	char			 address[128];	/* as written: "host:port" */
	char			 host[64];	/* numeric IPv4 or IPv6 */
	char			 port[8];
	enum listener_role	 role;
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
