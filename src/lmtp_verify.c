/*
 * lmtp_verify.c -- ask the LMTP server whether local mailboxes exist,
 * while the client waits for its RCPT reply (as Postfix's
 * reject_unverified_recipient, but synchronous): greeting, LHLO,
 * MAIL FROM:<>, one RCPT TO per address, RSET, QUIT (RFC 2033).  Runs
 * blocking on the async pool, every step under a timeout and the whole
 * probe under a deadline.  Definite answers are cached (positive 10
 * minutes, negative 1 minute, oldest evicted), shared by every worker.
 * The server's replies are untrusted: lines and line counts are bounded
 * and only printable ASCII of them is kept.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "lmtp_verify.h"
#include "log.h"
#include "util.h"

#define LMTP_VERIFY_TIMEOUT	10	/* seconds, each step */
#define LMTP_VERIFY_DEADLINE	20	/* seconds, the whole probe */
#define LMTP_VERIFY_LINE_MAX	1024	/* RFC 5321 4.5.3.1.5 says 512 */
#define LMTP_VERIFY_LINES_MAX	100	/* lines of one reply */
#define LMTP_VERIFY_ADDR_MAX	320
#define LMTP_CACHE_MAX		10000
#define LMTP_CACHE_BUCKETS	16384	/* a power of two */
#define LMTP_CACHE_POS_TTL	600	/* seconds: mailboxes rarely go */
#define LMTP_CACHE_NEG_TTL	60	/* a new one must show up soon */
#define USEC			1000000ULL

struct lmtp_cache_ent {
	char		*addr;		/* lowercased; NULL while unused */
	char		*text;		/* a negative answer's reply line */
	uint64_t	 expires;	/* monotonic seconds */
	int		 exists;
	int		 next;		/* bucket chain; -1 ends it */
};

struct lmtp_conn {
	int		 fd;
	int		 broken;	/* I/O failed: no RSET, no QUIT */
	uint64_t	 deadline;	/* monotonic usec */
	char		 err[LMTP_VERIFY_TEXT_MAX];
	char		 in[LMTP_VERIFY_LINE_MAX * 2];
	size_t		 inlen;
};

static struct {
	pthread_mutex_t		 lock;
	struct lmtp_cache_ent	*ents;		/* a ring: the oldest goes */
	int			*buckets;
	unsigned		 head;
	uint64_t		 down_until;	/* after a timeout: fail fast */
} lv = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t
lmtp_now(void)
{
	return now_mono_usec() / USEC;
}

/* Lowercased addr in key; -1 if too long to cache. */
static int
lmtp_cache_key(const char *addr, char *key, size_t len)
{
	size_t i;

	for (i = 0; addr[i] != '\0'; i++) {
		if (i + 1 >= len)
			return -1;
		key[i] = (char)tolower((unsigned char)addr[i]);
	}
	key[i] = '\0';
	return 0;
}

static unsigned
lmtp_cache_hash(const char *key)
{
	uint32_t h = 2166136261u;		/* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h & (LMTP_CACHE_BUCKETS - 1);
}

/* Index of key's entry, or -1.  Called locked. */
static int
lmtp_cache_find(const char *key, unsigned h)
{
	int i;

	if (lv.ents == NULL)
		return -1;
	for (i = lv.buckets[h]; i != -1; i = lv.ents[i].next)
		if (strcmp(lv.ents[i].addr, key) == 0)
			return i;
	return -1;
}

/* The oldest slot, taken out of its chain for reuse.  Called locked. */
static int
lmtp_cache_take(void)
{
	struct lmtp_cache_ent *e;
	int i, *pp;

	if (lv.ents == NULL) {
		lv.ents = xcalloc(LMTP_CACHE_MAX, sizeof(*lv.ents));
		lv.buckets = xreallocarray(NULL, LMTP_CACHE_BUCKETS,
		    sizeof(*lv.buckets));
		for (i = 0; i < LMTP_CACHE_BUCKETS; i++)
			lv.buckets[i] = -1;
	}
	i = (int)lv.head;
	lv.head = (lv.head + 1) % LMTP_CACHE_MAX;
	e = &lv.ents[i];
	if (e->addr != NULL) {
		pp = &lv.buckets[lmtp_cache_hash(e->addr)];
		while (*pp != i)
			pp = &lv.ents[*pp].next;
		*pp = e->next;
		free(e->addr);
		free(e->text);
		e->addr = e->text = NULL;
	}
	return i;
}

/* Remember a definite answer; a temporary failure is never cached. */
static void
lmtp_cache_store(const struct lmtp_verify_addr *v)
{
	char key[LMTP_VERIFY_ADDR_MAX];
	struct lmtp_cache_ent *e;
	unsigned h;
	int i;

	if ((v->status != LMTP_VERIFY_EXISTS &&
	    v->status != LMTP_VERIFY_UNKNOWN) ||
	    lmtp_cache_key(v->addr, key, sizeof(key)) == -1)
		return;
	h = lmtp_cache_hash(key);
	pthread_mutex_lock(&lv.lock);
	if ((i = lmtp_cache_find(key, h)) == -1) {
		i = lmtp_cache_take();
		lv.ents[i].addr = xstrdup(key);
		lv.ents[i].next = lv.buckets[h];
		lv.buckets[h] = i;
	}
	e = &lv.ents[i];
	free(e->text);
	e->exists = v->status == LMTP_VERIFY_EXISTS;
	e->text = e->exists ? NULL : xstrdup(v->text);
	e->expires = lmtp_now() + (e->exists ? LMTP_CACHE_POS_TTL :
	    LMTP_CACHE_NEG_TTL);
	pthread_mutex_unlock(&lv.lock);
}

void
lmtp_verify_cached(struct lmtp_verify_addr *v)
{
	char key[LMTP_VERIFY_ADDR_MAX];
	const struct lmtp_cache_ent *e;
	unsigned h;
	int i;

	v->status = LMTP_VERIFY_NONE;
	v->text[0] = '\0';
	if (lmtp_cache_key(v->addr, key, sizeof(key)) == -1)
		return;
	h = lmtp_cache_hash(key);
	pthread_mutex_lock(&lv.lock);
	if ((i = lmtp_cache_find(key, h)) != -1 &&
	    lv.ents[i].expires > lmtp_now()) {
		e = &lv.ents[i];
		v->status = e->exists ? LMTP_VERIFY_EXISTS :
		    LMTP_VERIFY_UNKNOWN;
		strlcpy(v->text, e->text ? e->text : "", sizeof(v->text));
	}
	pthread_mutex_unlock(&lv.lock);
}

/* A server that timed out is not asked again for a while: each probe
 * would hold a pool thread (shared with AUTH) for the whole timeout. */
static int
lmtp_is_down(void)
{
	int down;

	pthread_mutex_lock(&lv.lock);
	down = lv.down_until > lmtp_now();
	pthread_mutex_unlock(&lv.lock);
	return down;
}

static void
lmtp_mark_down(void)
{
	pthread_mutex_lock(&lv.lock);
	lv.down_until = lmtp_now() + LMTP_VERIFY_TIMEOUT;
	pthread_mutex_unlock(&lv.lock);
}

/* "IP:PORT", "[IP]:PORT" or "[IPv6:IP]:PORT", as deliver.c reads it. */
static int
lmtp_parse_address(const char *a, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(a, ':'), *h = a;
	char host[128];
	uint64_t port;
	size_t hlen;

	if (colon == NULL || parse_u64(colon + 1, 1, 65535, &port) == -1)
		return -1;
	hlen = (size_t)(colon - a);
	if (hlen > 2 && a[0] == '[' && a[hlen - 1] == ']') {
		h++;
		hlen -= 2;
		if (hlen > 5 && strncasecmp(h, "IPv6:", 5) == 0)
			h += 5, hlen -= 5;
	}
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*s6);
	} else
		return -1;
	return 0;
}

/* Bound the next socket call by the step timeout and the deadline. */
static int
lmtp_conn_timeout(struct lmtp_conn *c)
{
	uint64_t now = now_mono_usec(), left;
	struct timeval tv;

	if (now >= c->deadline) {
		errno = ETIMEDOUT;
		return -1;
	}
	left = c->deadline - now;
	if (left > LMTP_VERIFY_TIMEOUT * USEC)
		left = LMTP_VERIFY_TIMEOUT * USEC;
	tv.tv_sec = (time_t)(left / USEC);
	tv.tv_usec = (suseconds_t)(left % USEC);
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ==
	    -1 || setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
	    sizeof(tv)) == -1)
		return -1;
	return 0;
}

/* Note an I/O failure of step; a timeout marks the server down. */
static int
lmtp_conn_failed(struct lmtp_conn *c, const char *step)
{
	int e = errno;

	c->broken = 1;
	snprintf(c->err, sizeof(c->err), "%s: %s", step, e == EAGAIN ||
	    e == EWOULDBLOCK || e == EINPROGRESS ? "timed out" : strerror(e));
	if (e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS ||
	    e == ETIMEDOUT)
		lmtp_mark_down();
	return -1;
}

static int
lmtp_conn_open(struct lmtp_conn *c, const char *address)
{
	struct sockaddr_storage ss;
	socklen_t sslen;

	c->deadline = now_mono_usec() + LMTP_VERIFY_DEADLINE * USEC;
	if (lmtp_parse_address(address, &ss, &sslen) == -1) {
		errno = EINVAL;
		return -1;
	}
	/* Blocking connect(2) gives up after SO_SNDTIMEO (EINPROGRESS). */
	if ((c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
	    -1 || lmtp_conn_timeout(c) == -1 ||
	    connect(c->fd, (struct sockaddr *)&ss, sslen) == -1)
		return -1;
	return 0;
}

static int
lmtp_send(struct lmtp_conn *c, const char *fmt, ...)
{
	char line[LMTP_VERIFY_LINE_MAX];
	size_t off = 0, n;
	va_list ap;
	ssize_t w;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= sizeof(line) - 2) {
		errno = EMSGSIZE;
		return -1;
	}
	n = (size_t)r;
	memcpy(line + n, "\r\n", 2);
	n += 2;
	while (off < n) {
		if (lmtp_conn_timeout(c) == -1)
			return -1;
		if ((w = send(c->fd, line + off, n - off, MSG_NOSIGNAL)) ==
		    -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

/* One line, CRLF removed, into line; -1 on error, EOF or overflow. */
static int
lmtp_read_line(struct lmtp_conn *c, char *line, size_t len)
{
	size_t l, used;
	char *nl;
	ssize_t n;

	while ((nl = memchr(c->in, '\n', c->inlen)) == NULL) {
		if (c->inlen == sizeof(c->in)) {
			errno = EMSGSIZE;
			return -1;
		}
		if (lmtp_conn_timeout(c) == -1)
			return -1;
		n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
		if (n == 0)
			errno = ECONNRESET;
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->inlen += (size_t)n;
	}
	used = (size_t)(nl - c->in) + 1;
	l = used - 1;
	if (l > 0 && c->in[l - 1] == '\r')
		l--;
	if (l >= len) {
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(line, c->in, l);
	line[l] = '\0';
	memmove(c->in, c->in + used, c->inlen - used);
	c->inlen -= used;
	return 0;
}

/* The printable ASCII of untrusted server text. */
static void
lmtp_copy_text(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

/*
 * A whole reply (RFC 5321 4.2.1: "ddd-" lines, then "ddd "); its code,
 * with the last line in text, or -1 (errno set) on I/O or bad syntax.
 */
static int
lmtp_read_reply(struct lmtp_conn *c, char *text, size_t len)
{
	char line[LMTP_VERIFY_LINE_MAX];
	int i;

	for (i = 0; i < LMTP_VERIFY_LINES_MAX; i++) {
		if (lmtp_read_line(c, line, sizeof(line)) == -1)
			return -1;
		if (strlen(line) < 3 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]) || (line[3] != '\0' &&
		    line[3] != ' ' && line[3] != '-'))
			break;
		if (line[3] == '-')
			continue;
		lmtp_copy_text(text, len, line);
		return (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
	}
	errno = EPROTO;
	return -1;
}

/* Send cmd (NULL: read the greeting); 0 on a 2xx reply, else -1. */
static int
lmtp_step(struct lmtp_conn *c, const char *cmd, const char *step)
{
	int code;

	if (cmd != NULL && lmtp_send(c, "%s", cmd) == -1)
		return lmtp_conn_failed(c, step);
	if ((code = lmtp_read_reply(c, c->err, sizeof(c->err))) == -1)
		return lmtp_conn_failed(c, step);
	return code / 100 == 2 ? 0 : -1;
}

/* Up to the MAIL FROM:<> a RCPT needs; -1 with c->err set. */
static int
lmtp_conn_start(struct lmtp_conn *c, const struct config *cfg)
{
	char lhlo[300];

	if (lmtp_is_down()) {
		strlcpy(c->err, "not answering", sizeof(c->err));
		return -1;
	}
	if (lmtp_conn_open(c, cfg->lmtp_address) == -1)
		return lmtp_conn_failed(c, "connect");
	snprintf(lhlo, sizeof(lhlo), "LHLO %s", cfg->hostname);
	if (lmtp_step(c, NULL, "greeting") == -1 ||
	    lmtp_step(c, lhlo, "LHLO") == -1 ||
	    lmtp_step(c, "MAIL FROM:<>", "MAIL") == -1)
		return -1;
	return 0;
}

static void
lmtp_conn_close(struct lmtp_conn *c)
{
	if (c->fd == -1)
		return;
	if (!c->broken && lmtp_step(c, "RSET", "RSET") == 0)
		(void)lmtp_step(c, "QUIT", "QUIT");
	close(c->fd);
	c->fd = -1;
}

/* What RCPT TO:<addr> may carry: no space, control or angle bracket. */
static int
lmtp_valid_addr(const char *a)
{
	size_t i;

	for (i = 0; a[i] != '\0'; i++)
		if ((unsigned char)a[i] <= ' ' || a[i] == 0x7f ||
		    a[i] == '<' || a[i] == '>')
			return 0;
	return i > 0 && i < LMTP_VERIFY_ADDR_MAX;
}

/* Ask about one address; -1 if the session broke. */
static int
lmtp_rcpt(struct lmtp_conn *c, struct lmtp_verify_addr *v)
{
	char cmd[LMTP_VERIFY_ADDR_MAX + 16];
	int code;

	if (!lmtp_valid_addr(v->addr)) {
		v->status = LMTP_VERIFY_TEMPFAIL;
		strlcpy(v->text, "address cannot be verified", sizeof(v->text));
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", v->addr);
	if (lmtp_send(c, "%s", cmd) == -1 ||
	    (code = lmtp_read_reply(c, v->text, sizeof(v->text))) == -1)
		return lmtp_conn_failed(c, "RCPT");
	/* 2xx: the mailbox exists; 5xx: it does not (RFC 2033 4.2). */
	v->status = code / 100 == 2 ? LMTP_VERIFY_EXISTS : code / 100 == 5 ?
	    LMTP_VERIFY_UNKNOWN : LMTP_VERIFY_TEMPFAIL;
	lmtp_cache_store(v);
	log_debug("lmtp verify <%s>: %s", v->addr, v->text);
	return 0;
}

void
lmtp_verify_probe(const struct config *cfg, struct lmtp_verify_addr *v,
    size_t n)
{
	struct lmtp_conn c;
	size_t i;
	int ok;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	ok = lmtp_conn_start(&c, cfg) == 0;
	for (i = 0; ok && i < n; i++)
		if (v[i].status == LMTP_VERIFY_NONE && lmtp_rcpt(&c, &v[i]) == -1)
			ok = 0;
	if (!ok)
		log_warnx("lmtp verify: %s: %s", cfg->lmtp_address, c.err);
	lmtp_conn_close(&c);
	for (i = 0; i < n; i++)
		if (v[i].status == LMTP_VERIFY_NONE) {
			v[i].status = LMTP_VERIFY_TEMPFAIL;
			strlcpy(v[i].text, c.err, sizeof(v[i].text));
		}
}
