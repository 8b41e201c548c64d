/*
 * aliases.c -- the alias table for local domains (see aliases.h).
 * Loaded by the parent at start-up or reload from an operator's file;
 * looked up by the delivery workers, read-only once loaded, so lookups
 * from several threads need no lock.  The addresses handed to
 * aliases_expand() come from peers (RCPT TO) and are only compared and
 * copied, never interpreted.
 *
 * File format, Postfix /etc/aliases style:
 *
 *	# comment (a '#' at the start of a line or after white space)
 *	postmaster: root
 *	root: alice@example.org, bob
 *	staff@example.com: carol@example.net,
 *		dave@example.net	(continuation: leading blank)
 *
 * A key with '@' is a full address; a bare key (no '@') applies to the
 * local part of every local domain.  A target with '@' is a full address;
 * a bare target means "this local part in the domain of the address being
 * expanded" (postmaster@a.example -> root@a.example).  Pipes, files and
 * :include: are not supported.  Keys match case-insensitively.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "util.h"

#define ALIASES_ADDR_MAX	256	/* RFC 5321 4.5.3.1.3 path limit */
#define ALIASES_HTAB_MIN	64

struct alias_ent {
	char		**targets;	/* as written, possibly bare */
	size_t		  ntargets;
	size_t		  line;		/* where the key was defined */
};

/* Open addressing, linear probing; keys are lower-cased copies. */
struct htab {
	char		**keys;
	void		**vals;
	size_t		  cap;		/* a power of two */
	size_t		  count;
};

struct aliases {
	struct htab	  tab;		/* key -> struct alias_ent */
};

struct aliases_load_ctx {
	const char	 *path;
	size_t		  lineno;
	struct aliases	 *al;
	struct alias_ent *cur;		/* entry continuation lines extend */
	char		 *err;
	size_t		  errlen;
};

struct aliases_exp {
	const struct aliases *al;
	int		(*is_local)(const char *, void *);
	void		 *arg;
	struct htab	  seen;		/* reached addresses, lower case */
	struct htab	  emitted;	/* addresses in out, lower case */
	char		**out;
	int		  n;
};

static uint64_t	htab_hash(const char *);
static void	htab_init(struct htab *);
static void	htab_free(struct htab *);
static size_t	htab_slot(const struct htab *, const char *);
static void	*htab_get(const struct htab *, const char *);
static int	htab_put(struct htab *, const char *, void *);
static char	*aliases_lower(const char *);
static void	aliases_ent_free(struct alias_ent *);
static int	aliases_error(struct aliases_load_ctx *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static const char *aliases_check_addr(const char *, size_t, int);
static int	aliases_add_targets(struct aliases_load_ctx *, const char *);
static int	aliases_finish_entry(struct aliases_load_ctx *);
static int	aliases_parse_line(struct aliases_load_ctx *, char *);
static const struct alias_ent *aliases_lookup(const struct aliases *,
		    const char *, int (*)(const char *, void *), void *);
static int	aliases_emit(struct aliases_exp *, const char *);
static int	aliases_expand_one(struct aliases_exp *, const char *, int);

/*
 * The hash table.
 */

static uint64_t
htab_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void
htab_init(struct htab *t)
{
	t->cap = ALIASES_HTAB_MIN;
	t->count = 0;
	t->keys = xcalloc(t->cap, sizeof(*t->keys));
	t->vals = xcalloc(t->cap, sizeof(*t->vals));
}

static void
htab_free(struct htab *t)
{
	size_t i;

	for (i = 0; i < t->cap; i++)
		free(t->keys[i]);
	free(t->keys);
	free(t->vals);
	t->keys = NULL;
	t->vals = NULL;
	t->cap = t->count = 0;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t
htab_slot(const struct htab *t, const char *key)
{
	size_t i = (size_t)htab_hash(key) & (t->cap - 1);

	while (t->keys[i] != NULL && strcmp(t->keys[i], key) != 0)
		i = (i + 1) & (t->cap - 1);
	return i;
}

static void *
htab_get(const struct htab *t, const char *key)
{
	size_t i = htab_slot(t, key);

	return t->keys[i] != NULL ? t->vals[i] : NULL;
}

/* Insert a copy of key (already lower case); -1 if it is there already. */
static int
htab_put(struct htab *t, const char *key, void *val)
{
	size_t i;

	if (t->keys[htab_slot(t, key)] != NULL)
		return -1;
	if ((t->count + 1) * 2 > t->cap) {	/* keep it half empty */
		struct htab old = *t;

		t->cap = old.cap * 2;
		t->keys = xcalloc(t->cap, sizeof(*t->keys));
		t->vals = xcalloc(t->cap, sizeof(*t->vals));
		for (i = 0; i < old.cap; i++) {
			size_t j;
			if (old.keys[i] == NULL)
				continue;
			j = htab_slot(t, old.keys[i]);
			t->keys[j] = old.keys[i];
			t->vals[j] = old.vals[i];
		}
		free(old.keys);
		free(old.vals);
	}
	i = htab_slot(t, key);
	t->keys[i] = xstrdup(key);
	t->vals[i] = val;
	t->count++;
	return 0;
}

/*
 * Loading.
 */

static char *
aliases_lower(const char *s)
{
	char *p, *l = xstrdup(s);

	for (p = l; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return l;
}

static void
aliases_ent_free(struct alias_ent *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->ntargets; i++)
		free(e->targets[i]);
	free(e->targets);
	free(e);
}

static int
aliases_error(struct aliases_load_ctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%zu: %s", c->path, c->lineno, msg);
	return -1;
}

/*
 * Check a key or target of n octets; NULL if acceptable, else why not.
 * Quoted local parts are not supported, so one '@' at most, and nothing
 * that would need quoting in a path (RFC 5321 4.1.2).
 */
static const char *
aliases_check_addr(const char *s, size_t n, int is_key)
{
	const char *at;
	size_t i;

	if (n == 0)
		return "empty address";
	if (n > ALIASES_ADDR_MAX)
		return "address too long";
	if (!is_key && (s[0] == '|' || s[0] == '/' || s[0] == ':'))
		return "pipes, files and :include: are not supported";
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f)
			return "bad character in address";
		if (strchr("<>()\",;\\", ch) != NULL)
			return "bad character in address";
	}
	at = memchr(s, '@', n);
	if (at != NULL && (at == s || at == s + n - 1 ||
	    memchr(at + 1, '@', n - (size_t)(at - s) - 1) != NULL))
		return "bad address";
	return NULL;
}

/* Add the comma-separated targets in s to the current entry. */
static int
aliases_add_targets(struct aliases_load_ctx *c, const char *s)
{
	struct alias_ent *e = c->cur;

	for (;;) {
		const char *end, *why;
		size_t n;

		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			return 0;
		end = s + strcspn(s, ",");
		n = (size_t)(end - s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
			s++;
			n -= 2;
		}
		/* "a: b,,c" and a trailing ',' are tolerated, as in Postfix. */
		if (n > 0) {
			if ((why = aliases_check_addr(s, n, 0)) != NULL)
				return aliases_error(c, "%s", why);
			e->targets = xreallocarray(e->targets,
			    e->ntargets + 1, sizeof(*e->targets));
			e->targets[e->ntargets++] = xstrndup(s, n);
		}
		s = *end == ',' ? end + 1 : end;
	}
}

static int
aliases_finish_entry(struct aliases_load_ctx *c)
{
	if (c->cur != NULL && c->cur->ntargets == 0) {
		c->lineno = c->cur->line;
		return aliases_error(c, "empty target list");
	}
	c->cur = NULL;
	return 0;
}

/* One physical line, without its line end. */
static int
aliases_parse_line(struct aliases_load_ctx *c, char *line)
{
	struct alias_ent *e, *old;
	char *p, *colon, *key;
	const char *why;
	size_t n;

	/* '#' starts a comment at the start or after white space. */
	for (p = line; (p = strchr(p, '#')) != NULL; p++)
		if (p == line || p[-1] == ' ' || p[-1] == '\t') {
			*p = '\0';
			break;
		}
	for (p = line; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0')
		return 0;
	if (p != line) {
		if (c->cur == NULL)
			return aliases_error(c, "continuation line without "
			    "an alias");
		return aliases_add_targets(c, p);
	}
	if (aliases_finish_entry(c) == -1)
		return -1;
	if ((colon = strchr(line, ':')) == NULL)
		return aliases_error(c, "missing ':' after the alias name");
	for (n = (size_t)(colon - line); n > 0 && (line[n - 1] == ' ' ||
	    line[n - 1] == '\t'); n--)
		;
	if ((why = aliases_check_addr(line, n, 1)) != NULL)
		return aliases_error(c, "alias name: %s", why);
	line[n] = '\0';
	key = aliases_lower(line);
	e = xcalloc(1, sizeof(*e));
	e->line = c->lineno;
	if (htab_put(&c->al->tab, key, e) == -1) {
		old = htab_get(&c->al->tab, key);
		aliases_ent_free(e);
		aliases_error(c, "duplicate alias \"%s\" (first at line %zu)",
		    key, old->line);
		free(key);
		return -1;
	}
	free(key);
	c->cur = e;
	return aliases_add_targets(c, colon + 1);
}

struct aliases *
aliases_load(const char *path, char *err, size_t errlen)
{
	struct aliases_load_ctx c;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *fp;
	int rc = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	memset(&c, 0, sizeof(c));
	c.path = path;
	c.err = err;
	c.errlen = errlen;
	c.al = xcalloc(1, sizeof(*c.al));
	htab_init(&c.al->tab);
	while (rc == 0 && (n = getline(&line, &cap, fp)) != -1) {
		c.lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (strlen(line) != (size_t)n)
			rc = aliases_error(&c, "NUL character");
		else
			rc = aliases_parse_line(&c, line);
	}
	if (rc == 0 && ferror(fp))
		rc = aliases_error(&c, "read error: %s", strerror(errno));
	if (rc == 0)
		rc = aliases_finish_entry(&c);
	free(line);
	fclose(fp);
	if (rc == -1) {
		aliases_free(c.al);
		return NULL;
	}
	return c.al;
}

void
aliases_free(struct aliases *al)
{
	size_t i;

	if (al == NULL)
		return;
	for (i = 0; i < al->tab.cap; i++)
		aliases_ent_free(al->tab.vals[i]);
	htab_free(&al->tab);
	free(al);
}

/*
 * Lookup and expansion.
 */

/* The entry for addr: the full key first, then the bare local part. */
static const struct alias_ent *
aliases_lookup(const struct aliases *al, const char *addr,
    int (*is_local)(const char *, void *), void *arg)
{
	const struct alias_ent *e;
	const char *at = strrchr(addr, '@');
	char *key = aliases_lower(addr);

	e = htab_get(&al->tab, key);
	if (e == NULL && at != NULL && (is_local == NULL ||
	    is_local(at + 1, arg))) {
		key[at - addr] = '\0';
		e = htab_get(&al->tab, key);
	}
	free(key);
	return e;
}

int
aliases_has(const struct aliases *al, const char *addr)
{
	return aliases_lookup(al, addr, NULL, NULL) != NULL;
}

/* Add addr to the result once; -1 past ALIASES_EXPAND_MAX. */
static int
aliases_emit(struct aliases_exp *x, const char *addr)
{
	char *lc = aliases_lower(addr);
	int dup;

	dup = htab_put(&x->emitted, lc, NULL) == -1;
	free(lc);
	if (dup)
		return 0;
	if (x->n >= ALIASES_EXPAND_MAX)
		return -1;
	x->out = xreallocarray(x->out, (size_t)x->n + 1, sizeof(*x->out));
	x->out[x->n++] = xstrdup(addr);
	return 0;
}

/*
 * Expand addr at depth.  An address reached a second time is not
 * expanded again (loop and duplicate); an alias naming itself ("a: a, b")
 * delivers to itself, the sendmail and Postfix convention.
 */
static int
aliases_expand_one(struct aliases_exp *x, const char *addr, int depth)
{
	const struct alias_ent *e;
	const char *at = strrchr(addr, '@');
	char *lc = aliases_lower(addr), *t;
	size_t i;
	int rc = 0, dup;

	dup = htab_put(&x->seen, lc, NULL) == -1;
	free(lc);
	if (dup)
		return 0;
	if ((e = aliases_lookup(x->al, addr, x->is_local, x->arg)) == NULL)
		return aliases_emit(x, addr);
	if (depth >= ALIASES_DEPTH_MAX)
		return -1;
	for (i = 0; rc == 0 && i < e->ntargets; i++) {
		/* A bare target takes the domain of the address expanded. */
		if (strchr(e->targets[i], '@') == NULL && at != NULL)
			t = xasprintf("%s%s", e->targets[i], at);
		else
			t = xstrdup(e->targets[i]);
		if (ascii_casecmp_n(t, addr, SIZE_MAX) == 0)
			rc = aliases_emit(x, addr);
		else
			rc = aliases_expand_one(x, t, depth + 1);
		free(t);
	}
	return rc;
}

int
aliases_expand(const struct aliases *al, const char *addr,
    int (*is_local)(const char *domain, void *), void *arg, char ***out)
{
	struct aliases_exp x;
	int rc;

	memset(&x, 0, sizeof(x));
	x.al = al;
	x.is_local = is_local;
	x.arg = arg;
	htab_init(&x.seen);
	htab_init(&x.emitted);
	rc = aliases_expand_one(&x, addr, 0);
	htab_free(&x.seen);
	htab_free(&x.emitted);
	/* A pure loop (a: b, b: a) leaves nobody to deliver to. */
	if (rc == -1 || x.n == 0) {
		aliases_list_free(x.out, x.n);
		*out = NULL;
		return -1;
	}
	*out = x.out;
	return x.n;
}

void
aliases_list_free(char **list, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}
