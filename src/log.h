/*
 * log.h -- one event per line, to syslog or (foreground) to stderr.
 * Lines about a message start with its queue id, as Postfix's do.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern int log_verbose;		/* current enum log_level */

void	log_init(const char *ident, int foreground, int level);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug_(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The level is tested before the arguments are evaluated. */
#define log_debug(...) do {						\
	if (log_verbose >= LOG_LVL_DEBUG)				\
		log_debug_(__VA_ARGS__);				\
} while (0)

/*
 * Copy untrusted text for logging: control characters, '\\' and bytes
 * >= 0x7f become \xHH; the result is cut to fit dst (NUL-terminated).
 */
char	*log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);

#endif
