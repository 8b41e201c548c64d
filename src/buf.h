/*
 * buf.h -- length-counted, binary-safe growable byte buffer.
 * Growing moves the bytes: keep no pointer into a buf across an append.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	buf_init(struct buf *);
void	buf_free(struct buf *);
void	buf_reset(struct buf *);
void	buf_reserve(struct buf *, size_t extra);
void	buf_append(struct buf *, const void *, size_t);
void	buf_appendc(struct buf *, char);
void	buf_appendf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes. */
void	buf_consume(struct buf *, size_t n);
/* NUL-terminate without counting the NUL; returns data. */
char	*buf_cstr(struct buf *);

#endif
