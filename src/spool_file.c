/*
 * spool_file.c -- parse a queue file's header, envelope and state records
 * (docs/spool.md).  Used at recovery, by sluicectl and by delivery.  The
 * file may be truncated or damaged: every field is bounds-checked and a
 * bad file is reported, never trusted.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "spool.h"
#include "spool_file.h"
#include "util.h"

/* Envelopes are small; this bounds what a damaged file can make us read. */
#define SPOOL_ENV_MAX	(16 * 1024 * 1024)

int
spool_parse_header(const char *p, size_t len, uint64_t *env_len,
    uint64_t *msg_len)
{
	if (len < SPOOL_HDR_LEN || memcmp(p, SPOOL_MAGIC, 8) != 0 ||
	    p[18] != ' ' || p[SPOOL_HDR_LEN - 1] != '\n')
		return -1;
	if (parse_u64n(p + 8, 10, SPOOL_HDR_LEN + 1, SPOOL_ENV_MAX,
	    env_len) == -1 ||
	    parse_u64n(p + 19, 20, 0, UINT64_MAX / 2, msg_len) == -1)
		return -1;
	/* A zero length with no envelope is the unfinished placeholder. */
	return 0;
}

const char *
rcpt_state_name(enum rcpt_state s)
{
	switch (s) {
	case RCPT_DELIVERED:
		return "delivered";
	case RCPT_FAILED:
		return "failed";
	default:
		return "pending";
	}
}

static int
read_all(int fd, char *dst, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t r = pread(fd, dst, len, off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		dst += r, len -= (size_t)r, off += r;
	}
	return 0;
}

static struct spool_rcpt *
env_add_rcpt(struct spool_env *e, const char *v)
{
	struct spool_rcpt *r;

	e->rcpts = xreallocarray(e->rcpts, e->nrcpts + 1, sizeof(*e->rcpts));
	r = &e->rcpts[e->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(v);
	return r;
}

/* One "key value" envelope line; -1 if it makes no sense. */
static int
env_line(struct spool_env *e, const char *key, const char *v)
{
	struct spool_rcpt *last = e->nrcpts ? &e->rcpts[e->nrcpts - 1] : NULL;
	char **slot = NULL;

	if (strcmp(key, "id") == 0) {
		strlcpy(e->id, v, sizeof(e->id));
		return 0;
	}
	if (strcmp(key, "arrival") == 0) {
		unsigned long long s = 0, us = 0;
		if (sscanf(v, "%llu.%6llu", &s, &us) < 1)
			return -1;
		e->arrival_usec = s * 1000000 + us;
		return 0;
	}
	if (strcmp(key, "smtputf8") == 0) {
		e->smtputf8 = 1;
		return 0;
	}
	if (strcmp(key, "rcpt") == 0) {
		env_add_rcpt(e, v);
		return 0;
	}
	if (strcmp(key, "client") == 0) slot = &e->client;
	else if (strcmp(key, "helo") == 0) slot = &e->helo;
	else if (strcmp(key, "proto") == 0) slot = &e->proto;
	else if (strcmp(key, "from") == 0) slot = &e->from;
	else if (strcmp(key, "body") == 0) slot = &e->body;
	else if (strcmp(key, "ret") == 0) slot = &e->ret;
	else if (strcmp(key, "envid") == 0) slot = &e->envid;
	else if (strcmp(key, "notify") == 0 && last) slot = &last->notify;
	else if (strcmp(key, "orcpt") == 0 && last) slot = &last->orcpt;
	if (slot == NULL)
		return -1;
	free(*slot);
	*slot = xstrdup(v);
	return 0;
}

/* Split "key value" (value may be empty) and apply it. */
static int
env_apply(struct spool_env *e, char *line)
{
	char *sp = strchr(line, ' ');

	if (sp != NULL)
		*sp++ = '\0';
	return env_line(e, line, sp ? sp : "");
}

/* "state IDX pending|delivered|failed TIME REPLY" */
static int
env_state(struct spool_env *e, char *line)
{
	unsigned long long idx, t;
	char st[16];
	int n = 0;
	struct spool_rcpt *r;

	if (strncmp(line, "notice delay ", 13) == 0) {
		e->delay_notified = 1;
		return 0;
	}
	/* A record we cannot read (torn by a crash or a full disk) is
	 * skipped: the recipient stays in its previous state, which is
	 * always safe (at worst a retry), never a lost message. */
	if (sscanf(line, "state %llu %15s %llu %n", &idx, st, &t, &n) < 3 ||
	    idx >= e->nrcpts)
		return 0;
	r = &e->rcpts[idx];
	if (strcmp(st, "pending") == 0)
		r->state = RCPT_PENDING;
	else if (strcmp(st, "delivered") == 0)
		r->state = RCPT_DELIVERED;
	else if (strcmp(st, "failed") == 0)
		r->state = RCPT_FAILED;
	else
		return 0;
	r->state_time = t;
	free(r->reply);
	r->reply = xstrdup(n ? line + n : "");
	return 0;
}

/* Apply each complete line of p[0..len); fn returns -1 on a bad line. */
static int
env_lines(struct spool_env *e, char *p, size_t len,
    int (*fn)(struct spool_env *, char *), size_t *used)
{
	char *start = p, *end = p + len, *nl;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		*nl = '\0';
		if (nl > p && fn(e, p) == -1)
			return -1;
		p = nl + 1;
	}
	if (used != NULL)
		*used = (size_t)(p - start);
	return 0;
}

static int
spool_env_fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -1;
}

int
spool_env_read_fd(int fd, struct spool_env *e, char *err, size_t errlen)
{
	char hdr[SPOOL_HDR_LEN], *p = NULL;
	uint64_t env_len, msg_len, tail;
	struct stat st;
	size_t used = 0;
	int r = -1;

	memset(e, 0, sizeof(*e));
	if (fstat(fd, &st) == -1)
		return spool_env_fail(err, errlen, strerror(errno));
	if (read_all(fd, hdr, sizeof(hdr), 0) == -1 ||
	    spool_parse_header(hdr, sizeof(hdr), &env_len, &msg_len) == -1 ||
	    (uint64_t)st.st_size < env_len + msg_len) {
		spool_env_fail(err, errlen, "incomplete spool file");
		goto done;
	}
	tail = (uint64_t)st.st_size - env_len - msg_len;
	if (tail > SPOOL_ENV_MAX) {
		spool_env_fail(err, errlen, "state records too large");
		goto done;
	}
	p = xmalloc(env_len + tail + 1);
	if (read_all(fd, p, env_len - SPOOL_HDR_LEN, SPOOL_HDR_LEN) == -1 ||
	    read_all(fd, p + env_len, tail, (off_t)(env_len + msg_len)) == -1) {
		spool_env_fail(err, errlen, strerror(errno ? errno : EIO));
		goto done;
	}
	e->msg_off = env_len;
	e->msg_len = msg_len;
	e->file_size = (uint64_t)st.st_size;
	if (env_lines(e, p, env_len - SPOOL_HDR_LEN, env_apply, NULL) == -1 ||
	    e->from == NULL || e->nrcpts == 0 ||
	    env_lines(e, p + env_len, tail, env_state, &used) == -1) {
		spool_env_fail(err, errlen, "damaged envelope");
		goto done;
	}
	e->records_end = env_len + msg_len + used;
	r = 0;
 done:
	free(p);
	if (r == -1)
		spool_env_free(e);
	return r;
}

int
spool_env_read(const char *path, struct spool_env *e, char *err,
    size_t errlen)
{
	int fd, r;

	memset(e, 0, sizeof(*e));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return spool_env_fail(err, errlen, strerror(errno));
	r = spool_env_read_fd(fd, e, err, errlen);
	close(fd);
	return r;
}

void
spool_env_free(struct spool_env *e)
{
	size_t i;

	for (i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].notify);
		free(e->rcpts[i].orcpt);
		free(e->rcpts[i].reply);
	}
	free(e->rcpts);
	free(e->client);
	free(e->helo);
	free(e->proto);
	free(e->from);
	free(e->body);
	free(e->ret);
	free(e->envid);
	memset(e, 0, sizeof(*e));
}
