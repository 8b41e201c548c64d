/*
 * log.c -- logging to syslog (daemon) or stderr (foreground, -d).
 * Thread-safe: each line is formatted whole, then written with one call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 2048

int log_verbose = LOG_LVL_INFO;
static int log_foreground = 1;
static const char *log_ident = "sluiced";

void
log_init(const char *ident, int foreground, int level)
{
	log_ident = ident;
	log_foreground = foreground;
	log_verbose = level;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static void
log_vwrite(int pri, const char *fmt, va_list ap, const char *err)
{
	char line[LOG_LINE_MAX];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	if (err != NULL && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ": %s", err);
	if (!log_foreground) {
		syslog(pri, "%s", line);
		return;
	}
	{
		char out[LOG_LINE_MAX + 64], ts[32];
		struct tm tm;
		time_t t = time(NULL);
		int m;

		localtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm);
		m = snprintf(out, sizeof(out), "%s %s[%d]: %s\n", ts,
		    log_ident, (int)getpid(), line);
		if (m > 0) {
			size_t len = (size_t)m < sizeof(out) ? (size_t)m :
			    sizeof(out) - 1;
			ssize_t w = write(STDERR_FILENO, out, len);
			(void)w;
		}
	}
}

#define LOG_FN(name, pri, minlvl, witherr)				\
void									\
name(const char *fmt, ...)						\
{									\
	va_list ap;							\
	const char *e = witherr ? strerror(errno) : NULL;		\
									\
	if (log_verbose < (minlvl))					\
		return;							\
	va_start(ap, fmt);						\
	log_vwrite(pri, fmt, ap, e);					\
	va_end(ap);							\
}

LOG_FN(log_warn, LOG_WARNING, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_WARNING, LOG_LVL_WARN, 0)
LOG_FN(log_info, LOG_INFO, LOG_LVL_INFO, 0)
LOG_FN(log_debug_, LOG_DEBUG, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *e = strerror(errno);

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, e);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

char *
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (dstlen == 0)
		return dst;
	for (i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}
