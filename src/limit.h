/*
 * limit.h -- protection against abuse and overload, shared by all
 * worker threads (thread-safe): concurrent sessions and new connections
 * per client IP, failed-AUTH tracking with temporary bans, and sending
 * caps per user or per trusted network with counters that survive a
 * restart.
 */
#ifndef SLUICE_LIMIT_H
#define SLUICE_LIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct limit_params {
	unsigned	 max_sessions_per_ip;	/* 0 = unlimited */
	unsigned	 max_connect_rate;	/* new connections per IP per
						   minute; 0 = unlimited */
	unsigned	 auth_fail_max;		/* failures per IP ... */
	unsigned	 auth_fail_window;	/* ... within this many s ... */
	unsigned	 auth_ban_time;		/* ... ban the IP this long */
	const char	*counters_path;		/* caps persisted here */
};

void	limit_init(const struct limit_params *);
/* Write the cap counters now (also done periodically by the caller). */
int	limit_save(void);
void	limit_shutdown(void);

enum limit_verdict {
	LIMIT_OK,
	LIMIT_TOO_MANY_SESSIONS,	/* per IP */
	LIMIT_TOO_FAST,			/* connection rate per IP */
	LIMIT_BANNED,			/* too many AUTH failures */
};

/*
 * A client connects: count it (only when LIMIT_OK is returned; then
 * limit_disconnect() must follow).  ip is the text form.
 */
enum limit_verdict limit_connect(const char *ip, time_t now);
void	limit_disconnect(const char *ip);
/* Is this IP banned now? (checked again at AUTH) */
int	limit_is_banned(const char *ip, time_t now);
/* Record a failed AUTH; returns 1 if the IP is now banned. */
int	limit_auth_failed(const char *ip, time_t now);

/*
 * Sending caps.  key names the sender: "user:NAME" or "net:CIDR".
 * limit_cap_check() tells whether one more message fits in the last hour
 * and the last day (sliding, minute buckets are fine); limit_cap_add()
 * counts a message once it is accepted.
 */
int	limit_cap_check(const char *key, unsigned per_hour, unsigned per_day,
	    time_t now);
void	limit_cap_add(const char *key, time_t now);

/* Per-IP entries held now (for tests: the table is bounded). */
size_t	limit_table_size(void);

#endif
