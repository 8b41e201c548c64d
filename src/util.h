/*
 * util.h -- leaf helpers used everywhere: allocation that never returns
 * NULL, bounded string copies and number parsing.  No protocol knowledge.
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
/* Print into a fresh allocation; never fails. */
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

size_t	 strlcpy(char *, const char *, size_t);
size_t	 strlcat(char *, const char *, size_t);

/*
 * Parse a decimal unsigned number in [min, max] from the whole of s.
 * Returns 0 and stores the value, or -1 (bad syntax or out of range).
 */
int	 parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Same on a counted, not NUL-terminated string. */
int	 parse_u64n(const char *s, size_t len, uint64_t min, uint64_t max,
	    uint64_t *out);

/* Write all of p, retrying short writes and EINTR.  0 or -1 (errno). */
int	 write_all(int fd, const void *p, size_t len);

/* Case-insensitive compare of ASCII, as SMTP verbs and domains need. */
int	 ascii_casecmp_n(const char *a, const char *b, size_t n);

/* Monotonic and wall-clock time in microseconds. */
uint64_t now_mono_usec(void);
uint64_t now_wall_usec(void);

/* RFC 5322 date-time, e.g. "Sun, 29 Nov 2026 06:25:04 +0000". */
void	 rfc5322_date(char *dst, size_t len, time_t t);

#endif
