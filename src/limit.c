/*
 * limit.c -- abuse and overload protection (see limit.h), shared by every
 * worker thread.  Two tables:
 *
 * - Per client IP: open sessions, new connections in the last minute and
 *   recent AUTH failures with a temporary ban.  It sits on the connect
 *   path, so it is split into LIMIT_SHARDS stripes, each with its own
 *   mutex, chained hash and LRU list.  The IPs are chosen by peers: the
 *   hash is seeded at start-up, and the table is bounded (LIMIT_TABLE_MAX)
 *   by dropping entries that carry no state and, when full, the least
 *   recently seen entry without open sessions.
 *
 * - Sending caps per key ("user:NAME", "net:CIDR"): messages in the last
 *   hour (61 one-minute buckets) and the last day (97 fifteen-minute
 *   buckets).  One bucket more than the window keeps the count
 *   conservative: a message weighs on the hourly cap for 60 to 61
 *   minutes and on the daily one for 24 h to 24 h 15.  User names are
 *   only compared and escaped into the counters file.
 *
 * Counters file (limit_save(), written atomically; read by limit_init()):
 *
 *	sluice-counters 1
 *	KEY h<start>:<count> ... d<start>:<count> ...
 *	end <number of key lines>
 *
 * KEY is the key with bytes <= 0x20, >= 0x7f and '%' written as %XX;
 * <start> is the first second (Unix time) of a minute bucket (h) or a
 * 15-minute bucket (d), <count> the messages in it.  A file that does
 * not parse, or lacks the end line, is logged and ignored.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "limit.h"
#include "log.h"
#include "util.h"

#define LIMIT_SHARDS		64	/* lock stripes on the connect path */
#define LIMIT_TABLE_MAX		100000	/* IP entries, all stripes */
#define LIMIT_SHARD_MAX		(LIMIT_TABLE_MAX / LIMIT_SHARDS)
#define LIMIT_SHARD_BUCKETS	2048	/* a power of two > LIMIT_SHARD_MAX */
#define LIMIT_IP_MAX		64	/* INET6_ADDRSTRLEN plus a zone id */
#define LIMIT_RATE_WINDOW	60	/* max_connect_rate is per minute */
#define LIMIT_RATE_SLOT_SEC	6
#define LIMIT_RATE_SLOTS	(LIMIT_RATE_WINDOW / LIMIT_RATE_SLOT_SEC)
#define LIMIT_FAIL_RING_MAX	1024	/* larger auth_fail_max is clamped */
#define LIMIT_EVICT_SCAN	64	/* LRU entries looked at when full */
#define LIMIT_PRUNE_PER_CALL	4	/* LRU tail entries seen per call */

#define LIMIT_HOUR_SLOT_SEC	60
#define LIMIT_HOUR_SLOTS	(3600 / LIMIT_HOUR_SLOT_SEC + 1)
#define LIMIT_DAY_SLOT_SEC	900
#define LIMIT_DAY_SLOTS		(86400 / LIMIT_DAY_SLOT_SEC + 1)
#define LIMIT_CAP_BUCKETS_MIN	64
#define LIMIT_FILE_MAGIC	"sluice-counters 1"
#define LIMIT_LINE_MAX		65536

struct limit_ip {
	struct limit_ip	*hnext;			/* hash chain */
	struct limit_ip	*prev, *next;		/* LRU, head = newest */
	time_t		 seen;			/* last connect or failure */
	time_t		 ban_until;
	int64_t		 rate_last;		/* newest rate slot number */
	time_t		*fails;			/* failure times, lazily */
	uint32_t	 nfails;
	uint32_t	 fail_next;		/* ring slot written next */
	uint32_t	 sessions;
	uint32_t	 rate[LIMIT_RATE_SLOTS];
	char		 ip[LIMIT_IP_MAX];
};

struct limit_shard {
	pthread_mutex_t	 mtx;
	struct limit_ip	*lru_head, *lru_tail;
	size_t		 count;
	struct limit_ip	*buckets[LIMIT_SHARD_BUCKETS];
};

/* A window of fixed-width buckets; slots (last - n, last] are valid. */
struct limit_ring {
	uint32_t	*cnt;
	size_t		 n;
	int64_t		*last;
	time_t		 width;
};

struct limit_cap {
	struct limit_cap *next;
	char		*key;
	int64_t		 hour_last;
	int64_t		 day_last;
	uint32_t	 hour[LIMIT_HOUR_SLOTS];
	uint32_t	 day[LIMIT_DAY_SLOTS];
};

struct limit_caps {
	pthread_mutex_t	  mtx;
	struct limit_cap **buckets;
	size_t		  nbuckets;		/* a power of two */
	size_t		  count;
};

static uint64_t		 limit_hash(const char *);
static void		 limit_ip_key(char *, const char *);
static time_t		 limit_clamp(time_t);
static struct limit_shard *limit_shard_of(const char *, uint64_t *);
static struct limit_ip	*limit_ip_find(struct limit_shard *, const char *,
			    uint64_t);
static struct limit_ip	*limit_ip_get(struct limit_shard *, const char *,
			    uint64_t, time_t);
static void		 limit_ip_drop(struct limit_shard *, struct limit_ip *,
			    uint64_t);
static void		 limit_lru_unlink(struct limit_shard *,
			    struct limit_ip *);
static void		 limit_lru_push(struct limit_shard *, struct limit_ip *);
static enum limit_verdict limit_ip_verdict(struct limit_ip *, time_t);
static int		 limit_ip_is_idle(const struct limit_ip *, time_t);
static void		 limit_shard_prune(struct limit_shard *, time_t);
static int		 limit_shard_evict(struct limit_shard *, time_t);
static uint64_t		 limit_rate_count(struct limit_ip *, time_t);
static uint32_t		 limit_fails_recent(const struct limit_ip *, time_t);
static void		 limit_ring_advance(struct limit_ring *, int64_t);
static uint64_t		 limit_ring_sum(struct limit_ring *, time_t);
static void		 limit_ring_put(struct limit_ring *, time_t, uint32_t);
static void		 limit_cap_rings(struct limit_cap *, struct limit_ring *,
			    struct limit_ring *);
static struct limit_cap	*limit_cap_find(const char *);
static struct limit_cap	*limit_cap_get(const char *, time_t);
static int		 limit_cap_is_empty(struct limit_cap *, time_t);
static void		 limit_caps_prune(time_t);
static void		 limit_caps_clear(void);
static void		 limit_caps_dump(struct buf *, time_t);
static void		 limit_ring_dump(struct buf *, char, struct limit_ring *);
static void		 limit_key_escape(struct buf *, const char *);
static int		 limit_hexval(char);
static char		*limit_key_unescape(const char *, size_t);
static int		 limit_write_atomic(const char *, const char *, size_t);
static void		 limit_fsync_dir(const char *);
static void		 limit_load(const char *);
static int		 limit_load_file(FILE *, const char *, time_t);
static int		 limit_load_line(char *, time_t);
static int		 limit_load_bucket(struct limit_cap *, const char *,
			    size_t, time_t);

static struct limit_params	 limit_params;	/* counters_path unused */
static char			*limit_path;	/* NULL: caps not saved */
static unsigned			 limit_fail_max;	/* ring size */
static uint64_t			 limit_seed;
static int			 limit_ready;
static struct limit_shard	*limit_shards;
static struct limit_caps	 limit_caps;
static pthread_mutex_t		 limit_save_mtx = PTHREAD_MUTEX_INITIALIZER;

/*
 * Set-up and tear-down; both run before the workers start or after they
 * stop.
 */

void
limit_init(const struct limit_params *p)
{
	size_t i;

	if (limit_ready)
		limit_shutdown();
	limit_params = *p;
	limit_params.counters_path = NULL;
	if (p->counters_path != NULL && p->counters_path[0] != '\0')
		limit_path = xstrdup(p->counters_path);
	limit_fail_max = p->auth_fail_max;
	if (limit_fail_max > LIMIT_FAIL_RING_MAX) {
		log_warnx("limit: auth_fail_max %u clamped to %u",
		    limit_fail_max, LIMIT_FAIL_RING_MAX);
		limit_fail_max = LIMIT_FAIL_RING_MAX;
	}
	arc4random_buf(&limit_seed, sizeof(limit_seed));
	limit_shards = xcalloc(LIMIT_SHARDS, sizeof(*limit_shards));
	for (i = 0; i < LIMIT_SHARDS; i++)
		if (pthread_mutex_init(&limit_shards[i].mtx, NULL) != 0)
			fatalx("limit: pthread_mutex_init");
	if (pthread_mutex_init(&limit_caps.mtx, NULL) != 0)
		fatalx("limit: pthread_mutex_init");
	limit_caps.nbuckets = LIMIT_CAP_BUCKETS_MIN;
	limit_caps.buckets = xcalloc(limit_caps.nbuckets,
	    sizeof(*limit_caps.buckets));
	limit_caps.count = 0;
	if (limit_path != NULL)
		limit_load(limit_path);
	limit_ready = 1;
}

void
limit_shutdown(void)
{
	struct limit_shard *s;
	struct limit_ip *e, *next;
	size_t i;

	if (!limit_ready)
		return;
	limit_save();
	limit_ready = 0;
	for (i = 0; i < LIMIT_SHARDS; i++) {
		s = &limit_shards[i];
		for (e = s->lru_head; e != NULL; e = next) {
			next = e->next;
			free(e->fails);
			free(e);
		}
		pthread_mutex_destroy(&s->mtx);
	}
	free(limit_shards);
	limit_shards = NULL;
	limit_caps_clear();
	free(limit_caps.buckets);
	limit_caps.buckets = NULL;
	pthread_mutex_destroy(&limit_caps.mtx);
	free(limit_path);
	limit_path = NULL;
}

/*
 * Per-IP limits.
 */

enum limit_verdict
limit_connect(const char *ip, time_t now)
{
	char key[LIMIT_IP_MAX];
	struct limit_shard *s;
	struct limit_ip *e;
	enum limit_verdict v;
	uint32_t *slot;
	uint64_t h;

	if (!limit_ready)
		return LIMIT_OK;
	now = limit_clamp(now);
	limit_ip_key(key, ip);
	s = limit_shard_of(key, &h);
	pthread_mutex_lock(&s->mtx);
	limit_shard_prune(s, now);
	e = limit_ip_get(s, key, h, now);
	if ((v = limit_ip_verdict(e, now)) == LIMIT_OK) {
		/* Only accepted connections count towards the rate. */
		slot = &e->rate[(uint64_t)e->rate_last % LIMIT_RATE_SLOTS];
		if (*slot < UINT32_MAX)
			(*slot)++;
		e->sessions++;
	}
	pthread_mutex_unlock(&s->mtx);
	return v;
}

/* Also moves the rate window to now, for the caller to count in. */
static enum limit_verdict
limit_ip_verdict(struct limit_ip *e, time_t now)
{
	uint64_t rate = limit_rate_count(e, now);

	if (e->ban_until > now)
		return LIMIT_BANNED;
	if (limit_params.max_sessions_per_ip != 0 &&
	    e->sessions >= limit_params.max_sessions_per_ip)
		return LIMIT_TOO_MANY_SESSIONS;
	if (limit_params.max_connect_rate != 0 &&
	    rate >= limit_params.max_connect_rate)
		return LIMIT_TOO_FAST;
	return LIMIT_OK;
}

void
limit_disconnect(const char *ip)
{
	char key[LIMIT_IP_MAX];
	struct limit_shard *s;
	struct limit_ip *e;
	uint64_t h;

	if (!limit_ready)
		return;
	limit_ip_key(key, ip);
	s = limit_shard_of(key, &h);
	pthread_mutex_lock(&s->mtx);
	/* Entries with sessions are never evicted, so e is there. */
	e = limit_ip_find(s, key, h);
	if (e != NULL && e->sessions > 0)
		e->sessions--;
	pthread_mutex_unlock(&s->mtx);
}

int
limit_is_banned(const char *ip, time_t now)
{
	char key[LIMIT_IP_MAX];
	struct limit_shard *s;
	struct limit_ip *e;
	uint64_t h;
	int banned;

	if (!limit_ready)
		return 0;
	now = limit_clamp(now);
	limit_ip_key(key, ip);
	s = limit_shard_of(key, &h);
	pthread_mutex_lock(&s->mtx);
	e = limit_ip_find(s, key, h);
	banned = e != NULL && e->ban_until > now;
	pthread_mutex_unlock(&s->mtx);
	return banned;
}

int
limit_auth_failed(const char *ip, time_t now)
{
	char key[LIMIT_IP_MAX], esc[LIMIT_IP_MAX * 4];
	struct limit_shard *s;
	struct limit_ip *e;
	uint64_t h;
	int banned, newban = 0;

	if (!limit_ready || limit_fail_max == 0)
		return 0;
	now = limit_clamp(now);
	limit_ip_key(key, ip);
	s = limit_shard_of(key, &h);
	pthread_mutex_lock(&s->mtx);
	limit_shard_prune(s, now);
	e = limit_ip_get(s, key, h, now);
	if (e->ban_until <= now) {
		if (e->fails == NULL)
			e->fails = xcalloc(limit_fail_max, sizeof(*e->fails));
		e->fails[e->fail_next] = now;
		e->fail_next = (e->fail_next + 1) % limit_fail_max;
		if (e->nfails < limit_fail_max)
			e->nfails++;
		if (limit_fails_recent(e, now) >= limit_fail_max) {
			/* Counting starts afresh once the ban is over. */
			e->ban_until = now + (time_t)limit_params.auth_ban_time;
			free(e->fails);
			e->fails = NULL;
			e->nfails = e->fail_next = 0;
			newban = e->ban_until > now;
		}
	}
	banned = e->ban_until > now;
	pthread_mutex_unlock(&s->mtx);
	if (newban)
		log_info("limit ban ip=%s failures=%u seconds=%u",
		    log_escape(esc, sizeof(esc), key, strlen(key)),
		    limit_fail_max, limit_params.auth_ban_time);
	return banned;
}

size_t
limit_table_size(void)
{
	size_t i, n = 0;

	if (!limit_ready)
		return 0;
	for (i = 0; i < LIMIT_SHARDS; i++) {
		pthread_mutex_lock(&limit_shards[i].mtx);
		n += limit_shards[i].count;
		pthread_mutex_unlock(&limit_shards[i].mtx);
	}
	return n;
}

/* Seeded FNV-1a with a final mix: peers choose the IPs they come from. */
static uint64_t
limit_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ limit_seed;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Text forms come from inet_ntop(); anything longer is cut to fit. */
static void
limit_ip_key(char *dst, const char *ip)
{
	strlcpy(dst, ip != NULL ? ip : "", LIMIT_IP_MAX);
}

/* Keeps bucket numbers non-negative, so slot = number % size. */
static time_t
limit_clamp(time_t now)
{
	return now < 0 ? 0 : now;
}

static struct limit_shard *
limit_shard_of(const char *key, uint64_t *h)
{
	*h = limit_hash(key);
	return &limit_shards[*h % LIMIT_SHARDS];
}

static struct limit_ip *
limit_ip_find(struct limit_shard *s, const char *key, uint64_t h)
{
	struct limit_ip *e;

	e = s->buckets[(h / LIMIT_SHARDS) % LIMIT_SHARD_BUCKETS];
	for (; e != NULL; e = e->hnext)
		if (strcmp(e->ip, key) == 0)
			return e;
	return NULL;
}

/* Find or create, and mark as most recently seen (refused or not). */
static struct limit_ip *
limit_ip_get(struct limit_shard *s, const char *key, uint64_t h, time_t now)
{
	struct limit_ip *e, **head;

	if ((e = limit_ip_find(s, key, h)) != NULL) {
		e->seen = now;
		limit_lru_unlink(s, e);
		limit_lru_push(s, e);
		return e;
	}
	if (s->count >= LIMIT_SHARD_MAX)
		(void)limit_shard_evict(s, now);
	e = xcalloc(1, sizeof(*e));
	strlcpy(e->ip, key, sizeof(e->ip));
	e->seen = now;
	e->rate_last = now / LIMIT_RATE_SLOT_SEC;
	head = &s->buckets[(h / LIMIT_SHARDS) % LIMIT_SHARD_BUCKETS];
	e->hnext = *head;
	*head = e;
	limit_lru_push(s, e);
	s->count++;
	return e;
}

static void
limit_ip_drop(struct limit_shard *s, struct limit_ip *e, uint64_t h)
{
	struct limit_ip **pp;

	pp = &s->buckets[(h / LIMIT_SHARDS) % LIMIT_SHARD_BUCKETS];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	limit_lru_unlink(s, e);
	s->count--;
	free(e->fails);
	free(e);
}

static void
limit_lru_unlink(struct limit_shard *s, struct limit_ip *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		s->lru_head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		s->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void
limit_lru_push(struct limit_shard *s, struct limit_ip *e)
{
	e->prev = NULL;
	e->next = s->lru_head;
	if (s->lru_head != NULL)
		s->lru_head->prev = e;
	else
		s->lru_tail = e;
	s->lru_head = e;
}

/* No session, no connect in the rate window, no ban, no live failure. */
static int
limit_ip_is_idle(const struct limit_ip *e, time_t now)
{
	return e->sessions == 0 && e->ban_until <= now &&
	    now - e->seen >= LIMIT_RATE_WINDOW &&
	    limit_fails_recent(e, now) == 0;
}

/*
 * The LRU is in the order entries were seen, so the tail is the oldest:
 * drop it while it is idle, a few per call to keep pace with a flood of
 * new IPs.  An old entry kept by a session, a ban or failures would stop
 * the walk for long: it goes back to the head instead.
 */
static void
limit_shard_prune(struct limit_shard *s, time_t now)
{
	struct limit_ip *e;
	int i;

	for (i = 0; i < LIMIT_PRUNE_PER_CALL; i++) {
		if ((e = s->lru_tail) == NULL ||
		    now - e->seen < LIMIT_RATE_WINDOW)
			break;
		if (limit_ip_is_idle(e, now))
			limit_ip_drop(s, e, limit_hash(e->ip));
		else {
			limit_lru_unlink(s, e);
			limit_lru_push(s, e);
		}
	}
}

/*
 * The stripe is full: evict the oldest entry without sessions, sparing
 * bans if one without can be found.  Entries with sessions cannot go
 * (limit_disconnect() needs them); they move to the head so later scans
 * skip them.  If none can go the stripe grows, by at most the sessions
 * open.
 */
static int
limit_shard_evict(struct limit_shard *s, time_t now)
{
	struct limit_ip *e, *prev, *victim = NULL, *banned = NULL;
	int n;

	for (e = s->lru_tail, n = 0; e != NULL && n < LIMIT_EVICT_SCAN;
	    e = prev, n++) {
		prev = e->prev;
		if (e->sessions > 0) {
			limit_lru_unlink(s, e);
			limit_lru_push(s, e);
		} else if (e->ban_until <= now) {
			victim = e;
			break;
		} else if (banned == NULL)
			banned = e;
	}
	if (victim == NULL)
		victim = banned;
	if (victim == NULL)
		return -1;
	limit_ip_drop(s, victim, limit_hash(victim->ip));
	return 0;
}

/* Connections accepted in the last minute, in LIMIT_RATE_SLOT_SEC steps. */
static uint64_t
limit_rate_count(struct limit_ip *e, time_t now)
{
	struct limit_ring r;

	r.cnt = e->rate;
	r.n = LIMIT_RATE_SLOTS;
	r.last = &e->rate_last;
	r.width = LIMIT_RATE_SLOT_SEC;
	return limit_ring_sum(&r, now);
}

/* Failures within auth_fail_window (0: all those remembered). */
static uint32_t
limit_fails_recent(const struct limit_ip *e, time_t now)
{
	uint32_t i, n = 0;

	if (limit_params.auth_fail_window == 0)
		return e->nfails;
	for (i = 0; i < e->nfails; i++)
		if (now - e->fails[i] <
		    (time_t)limit_params.auth_fail_window)
			n++;
	return n;
}

/*
 * Bucket rings, shared by the connect rate and the caps.  Time that
 * goes backwards counts in the newest bucket.
 */

static void
limit_ring_advance(struct limit_ring *r, int64_t b)
{
	int64_t i;

	if (b <= *r->last)
		return;
	if (b - *r->last >= (int64_t)r->n)
		memset(r->cnt, 0, r->n * sizeof(*r->cnt));
	else
		for (i = *r->last + 1; i <= b; i++)
			r->cnt[(uint64_t)i % r->n] = 0;
	*r->last = b;
}

static uint64_t
limit_ring_sum(struct limit_ring *r, time_t now)
{
	uint64_t sum = 0;
	size_t i;

	limit_ring_advance(r, now / r->width);
	for (i = 0; i < r->n; i++)
		sum += r->cnt[i];
	return sum;
}

/* Add count to the bucket holding t, if it is still in the window. */
static void
limit_ring_put(struct limit_ring *r, time_t t, uint32_t count)
{
	int64_t b = t / r->width;
	uint32_t *c;

	limit_ring_advance(r, b);
	if (b <= *r->last - (int64_t)r->n)
		return;
	if (b > *r->last)
		b = *r->last;
	c = &r->cnt[(uint64_t)b % r->n];
	*c = UINT32_MAX - *c < count ? UINT32_MAX : *c + count;
}

/*
 * Sending caps.
 */

int
limit_cap_check(const char *key, unsigned per_hour, unsigned per_day,
    time_t now)
{
	struct limit_ring hr, dr;
	struct limit_cap *c;
	uint64_t hour = 0, day = 0;

	if (!limit_ready || (per_hour == 0 && per_day == 0))
		return 1;
	now = limit_clamp(now);
	pthread_mutex_lock(&limit_caps.mtx);
	if ((c = limit_cap_find(key)) != NULL) {
		limit_cap_rings(c, &hr, &dr);
		hour = limit_ring_sum(&hr, now);
		day = limit_ring_sum(&dr, now);
	}
	pthread_mutex_unlock(&limit_caps.mtx);
	/* XXX: check then add is not atomic; parallel sends may overshoot. */
	return (per_hour == 0 || hour < per_hour) &&
	    (per_day == 0 || day < per_day);
}

void
limit_cap_add(const char *key, time_t now)
{
	struct limit_ring hr, dr;
	struct limit_cap *c;

	if (!limit_ready)
		return;
	now = limit_clamp(now);
	pthread_mutex_lock(&limit_caps.mtx);
	c = limit_cap_get(key, now);
	limit_cap_rings(c, &hr, &dr);
	limit_ring_put(&hr, now, 1);
	limit_ring_put(&dr, now, 1);
	pthread_mutex_unlock(&limit_caps.mtx);
}

static void
limit_cap_rings(struct limit_cap *c, struct limit_ring *hr,
    struct limit_ring *dr)
{
	hr->cnt = c->hour;
	hr->n = LIMIT_HOUR_SLOTS;
	hr->last = &c->hour_last;
	hr->width = LIMIT_HOUR_SLOT_SEC;
	dr->cnt = c->day;
	dr->n = LIMIT_DAY_SLOTS;
	dr->last = &c->day_last;
	dr->width = LIMIT_DAY_SLOT_SEC;
}

static struct limit_cap *
limit_cap_find(const char *key)
{
	struct limit_cap *c;

	c = limit_caps.buckets[limit_hash(key) & (limit_caps.nbuckets - 1)];
	for (; c != NULL; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

/* Find or create; the table drops empty entries before it grows. */
static struct limit_cap *
limit_cap_get(const char *key, time_t now)
{
	struct limit_cap *c, *next, **nb, **head;
	size_t i, n;

	if ((c = limit_cap_find(key)) != NULL)
		return c;
	if (limit_caps.count >= limit_caps.nbuckets)
		limit_caps_prune(now);
	if (limit_caps.count >= limit_caps.nbuckets) {
		n = limit_caps.nbuckets * 2;
		nb = xcalloc(n, sizeof(*nb));
		for (i = 0; i < limit_caps.nbuckets; i++)
			for (c = limit_caps.buckets[i]; c != NULL; c = next) {
				next = c->next;
				head = &nb[limit_hash(c->key) & (n - 1)];
				c->next = *head;
				*head = c;
			}
		free(limit_caps.buckets);
		limit_caps.buckets = nb;
		limit_caps.nbuckets = n;
	}
	c = xcalloc(1, sizeof(*c));
	c->key = xstrdup(key);
	c->hour_last = now / LIMIT_HOUR_SLOT_SEC;
	c->day_last = now / LIMIT_DAY_SLOT_SEC;
	head = &limit_caps.buckets[limit_hash(key) & (limit_caps.nbuckets - 1)];
	c->next = *head;
	*head = c;
	limit_caps.count++;
	return c;
}

static int
limit_cap_is_empty(struct limit_cap *c, time_t now)
{
	struct limit_ring hr, dr;

	limit_cap_rings(c, &hr, &dr);
	return limit_ring_sum(&hr, now) == 0 && limit_ring_sum(&dr, now) == 0;
}

static void
limit_caps_prune(time_t now)
{
	struct limit_cap **pp, *c;
	size_t i;

	for (i = 0; i < limit_caps.nbuckets; i++)
		for (pp = &limit_caps.buckets[i]; (c = *pp) != NULL;) {
			if (!limit_cap_is_empty(c, now)) {
				pp = &c->next;
				continue;
			}
			*pp = c->next;
			free(c->key);
			free(c);
			limit_caps.count--;
		}
}

static void
limit_caps_clear(void)
{
	struct limit_cap *c, *next;
	size_t i;

	for (i = 0; i < limit_caps.nbuckets; i++) {
		for (c = limit_caps.buckets[i]; c != NULL; c = next) {
			next = c->next;
			free(c->key);
			free(c);
		}
		limit_caps.buckets[i] = NULL;
	}
	limit_caps.count = 0;
}

/*
 * Persistence.
 */

int
limit_save(void)
{
	struct buf b;
	int r;

	if (!limit_ready || limit_path == NULL)
		return 0;
	/* One writer at a time, so an older snapshot never lands last. */
	pthread_mutex_lock(&limit_save_mtx);
	buf_init(&b);
	pthread_mutex_lock(&limit_caps.mtx);
	limit_caps_dump(&b, limit_clamp(time(NULL)));
	pthread_mutex_unlock(&limit_caps.mtx);
	r = limit_write_atomic(limit_path, b.data, b.len);
	buf_free(&b);
	pthread_mutex_unlock(&limit_save_mtx);
	return r;
}

/* Also drops the entries with nothing left in their windows. */
static void
limit_caps_dump(struct buf *b, time_t now)
{
	struct limit_ring hr, dr;
	struct limit_cap *c;
	size_t i, n = 0;

	limit_caps_prune(now);
	buf_appendf(b, "%s\n", LIMIT_FILE_MAGIC);
	for (i = 0; i < limit_caps.nbuckets; i++)
		for (c = limit_caps.buckets[i]; c != NULL; c = c->next) {
			limit_cap_rings(c, &hr, &dr);
			limit_key_escape(b, c->key);
			limit_ring_dump(b, 'h', &hr);
			limit_ring_dump(b, 'd', &dr);
			buf_appendc(b, '\n');
			n++;
		}
	buf_appendf(b, "end %zu\n", n);
}

static void
limit_ring_dump(struct buf *b, char tag, struct limit_ring *r)
{
	int64_t i;
	uint32_t cnt;

	for (i = *r->last - (int64_t)r->n + 1; i <= *r->last; i++) {
		if (i < 0 || (cnt = r->cnt[(uint64_t)i % r->n]) == 0)
			continue;
		buf_appendf(b, " %c%lld:%lu", tag,
		    (long long)(i * r->width), (unsigned long)cnt);
	}
}

static void
limit_key_escape(struct buf *b, const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '%') {
			buf_appendc(b, (char)*p);
			continue;
		}
		buf_appendc(b, '%');
		buf_appendc(b, hex[*p >> 4]);
		buf_appendc(b, hex[*p & 15]);
	}
}

static int
limit_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Returns a fresh string, or NULL if s is not a well-formed key. */
static char *
limit_key_unescape(const char *s, size_t len)
{
	char *key, *o;
	size_t i;
	int hi, lo;

	if (len == 0)
		return NULL;
	key = o = xmalloc(len + 1);
	for (i = 0; i < len; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= len)
			goto bad;
		if ((hi = limit_hexval(s[i + 1])) < 0 ||
		    (lo = limit_hexval(s[i + 2])) < 0 || hi + lo == 0)
			goto bad;
		*o++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*o = '\0';
	return key;
bad:
	free(key);
	return NULL;
}

/* Temp file in the same directory, fsync, rename, fsync the directory. */
static int
limit_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, n;

	n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		log_warnx("limit: counters path too long");
		return -1;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		log_warn("limit: mkstemp %s", tmp);
		return -1;
	}
	if (write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		log_warn("limit: write %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		log_warn("limit: save %s", path);
		unlink(tmp);
		return -1;
	}
	limit_fsync_dir(path);
	return 0;
}

/* Makes the rename durable; a failure only risks the last snapshot. */
static void
limit_fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	strlcpy(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) == NULL)
		strlcpy(dir, ".", sizeof(dir));
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if (fsync(fd) == -1)
		log_warn("limit: fsync %s", dir);
	close(fd);
}

/* Never fatal: a missing or damaged file only loses the counters. */
static void
limit_load(const char *path)
{
	FILE *fp;
	int n;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno != ENOENT)
			log_warn("limit: open %s", path);
		return;
	}
	if ((n = limit_load_file(fp, path, limit_clamp(time(NULL)))) == -1)
		limit_caps_clear();
	else
		log_info("limit: loaded %d cap counters from %s", n, path);
	fclose(fp);
}

/* Returns the number of key lines, or -1 (logged) if damaged. */
static int
limit_load_file(FILE *fp, const char *path, time_t now)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	uint64_t n;
	int nkeys = 0, r = -1;

	while ((len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (len > LIMIT_LINE_MAX || line[len - 1] != '\n')
			break;
		line[len - 1] = '\0';
		if (lineno == 1) {
			if (strcmp(line, LIMIT_FILE_MAGIC) != 0)
				break;
		} else if (strncmp(line, "end ", 4) == 0) {
			if (parse_u64(line + 4, 0, INT_MAX, &n) == 0 &&
			    n == (uint64_t)nkeys && getc(fp) == EOF)
				r = nkeys;
			break;
		} else if (nkeys == INT_MAX || limit_load_line(line, now) == -1)
			break;
		else
			nkeys++;
	}
	free(line);
	if (r == -1 || ferror(fp))
		log_warnx("%s:%zu: damaged counters file, ignored", path,
		    lineno);
	return ferror(fp) ? -1 : r;
}

static int
limit_load_line(char *line, time_t now)
{
	struct limit_cap *c;
	char *key, *tok, *end;

	if ((end = strchr(line, ' ')) == NULL)
		end = line + strlen(line);
	if ((key = limit_key_unescape(line, (size_t)(end - line))) == NULL)
		return -1;
	if (limit_cap_find(key) != NULL) {
		free(key);
		return -1;
	}
	c = limit_cap_get(key, now);
	free(key);
	for (tok = end; *tok == ' '; tok = end) {
		tok++;
		if ((end = strchr(tok, ' ')) == NULL)
			end = tok + strlen(tok);
		if (limit_load_bucket(c, tok, (size_t)(end - tok), now) == -1)
			return -1;
	}
	return *tok == '\0' ? 0 : -1;
}

/* "h<start>:<count>" or "d<start>:<count>"; stale buckets are skipped. */
static int
limit_load_bucket(struct limit_cap *c, const char *s, size_t len,
    time_t now)
{
	struct limit_ring hr, dr, *r;
	const char *colon;
	uint64_t start, count;

	limit_cap_rings(c, &hr, &dr);
	if (len < 4 || (s[0] != 'h' && s[0] != 'd'))
		return -1;
	r = s[0] == 'h' ? &hr : &dr;
	if ((colon = memchr(s, ':', len)) == NULL ||
	    parse_u64n(s + 1, (size_t)(colon - s - 1), 0, INT64_MAX,
	    &start) == -1 ||
	    parse_u64n(colon + 1, len - (size_t)(colon - s) - 1, 1,
	    UINT32_MAX, &count) == -1 || start % (uint64_t)r->width != 0)
		return -1;
	/* Older than a day, or ahead of our clock: not worth keeping. */
	if ((time_t)start <= now - 86400 - r->width || (time_t)start > now)
		return 0;
	limit_ring_put(r, (time_t)start, (uint32_t)count);
	return 0;
}
