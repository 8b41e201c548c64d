/*
 * fuzz_check.h -- invariants every parsed path must keep, shared by the
 * fuzz targets: a NUL-terminated address within RFC 5321 4.5.3.1 limits,
 * with `at` pointing at the '@' (or the end, for a bare postmaster).
 */
#ifndef SLUICE_FUZZ_CHECK_H
#define SLUICE_FUZZ_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

static void
check_path(const struct smtp_path *p)
{
	size_t n = strnlen(p->addr, sizeof(p->addr));

	if (n >= sizeof(p->addr) || n > SMTP_PATH_MAX - 2)
		abort();
	if (p->is_null ? (n != 0 || p->at != 0) :
	    (p->at > n || (p->at < n && p->addr[p->at] != '@')))
		abort();
	if (p->at > SMTP_LOCAL_MAX || (n > p->at && n - p->at - 1 >
	    SMTP_DOMAIN_MAX))
		abort();
}

#endif
