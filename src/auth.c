/*
 * auth.c -- SMTP AUTH credentials (see auth.h).  The SMTP workers call
 * auth_check() concurrently; the user table is read under a rwlock and
 * replaced whole when the file changes.  The user names and passwords
 * passed in come from peers (SASL PLAIN/LOGIN, RFC 4954) and are only
 * compared and hashed, never logged.  The password file comes from the
 * operator and is parsed strictly, every error naming FILE:LINE.
 * sluicectl edits the file with auth_file_set()/auth_file_del().
 *
 * File format, Dovecot passwd-file compatible:
 *
 *	# comment
 *	alice:$y$j9T$...:::Alice::	(uid:gid:gecos:home:shell:extra ignored)
 *	bob:{BLF-CRYPT}$2y$05$...
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "buf.h"
#include "log.h"
#include "util.h"

#define AUTH_HASH_MAX		256	/* longest crypt(3) string we keep */
#define AUTH_LINE_MAX		65536	/* a passwd-file line, extras too */
#define AUTH_STAT_USEC		1000000	/* stat() the file at most 1/s */
#define AUTH_PLAIN_MAX		1024	/* decoded PLAIN message, octets */
#define AUTH_ERR_MAX		512
#define AUTH_FILE_MODE		0640	/* the daemon's group reads it */

/* crypt(3)'s alphabet, '$' separators, '=' in "rounds=N". */
#define AUTH_HASH_CHARS "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"abcdefghijklmnopqrstuvwxyz$="

/*
 * Verified for unknown users so that a wrong name costs as much as a
 * wrong password (same yescrypt cost as crypt_gensalt's default).
 */
#define AUTH_DUMMY_HASH \
	"$y$j9T$pKQ5kqWsq08P1KONhddK31$3mdSram9Rt9XtLdeNhy53Tjsjjs23ULyxQykUq0FPM/"

struct auth_user {
	char		*name;
	char		*hash;		/* crypt(3) string, prefix stripped */
	size_t		 line;
};

/* Sorted by name for bsearch. */
struct auth_db {
	struct auth_user *users;
	size_t		  n;
};

/* What identifies one version of the file (changes trigger a reload). */
struct auth_ident {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
};

struct auth_scheme {
	const char	*prefix;	/* Dovecot "{SCHEME}", "" = none */
	const char	*hashes;	/* accepted "$id$" list, "|"-separated */
};

static int	auth_error(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	auth_valid_user(const char *, size_t);
static const char *auth_strip_scheme(const char *, size_t *, const char **);
static int	auth_hash_shape(const char *);
static int	auth_parse_line(struct auth_db *, char *, size_t, const char *,
		    size_t, char *, size_t);
static int	auth_user_cmp_name(const void *, const void *);
static int	auth_user_cmp(const void *, const void *);
static int	auth_db_finish(struct auth_db *, const char *, char *, size_t);
static struct auth_db *auth_db_load_ident(const char *, struct auth_ident *,
		    char *, size_t);
static const char *auth_db_find(const struct auth_db *, const char *);
static int	auth_verify(const char *, const char *);
static void	auth_ident_from(const struct stat *, struct auth_ident *);
static int	auth_ident_eq(const struct auth_ident *,
		    const struct auth_ident *);
static void	auth_swap(struct auth_db *, const struct auth_ident *);
static void	auth_maybe_reload(void);
static int	auth_b64_val(unsigned char);
static ssize_t	auth_b64_decode(const char *, size_t, unsigned char *, size_t);
static int	auth_line_user(const char *, size_t, const char *);
static int	auth_hash_new(const char *, char *, size_t, char *, size_t);
static int	auth_file_read(const char *, struct buf *, struct stat *, int,
		    char *, size_t);
static int	auth_dir_lock(const char *, char *, size_t);
static size_t	auth_file_rewrite(const struct buf *, struct buf *,
		    const char *, const char *);
static int	auth_file_chown(int, const struct stat *);
static int	auth_file_commit(const char *, int, const struct buf *,
		    const struct stat *, char *, size_t);
static int	auth_file_edit(const char *, const char *, const char *, int,
		    char *, size_t);

/* Accepted schemes: the Dovecot prefix must agree with the hash's id. */
static const struct auth_scheme auth_schemes[] = {
	{ "{CRYPT}",		"$y$|$2b$|$2y$|$2a$|$6$" },
	{ "{BLF-CRYPT}",	"$2b$|$2y$|$2a$" },
	{ "{SHA512-CRYPT}",	"$6$" },
	{ "",			"$y$|$2b$|$2y$|$2a$|$6$" },
};

/* The process-wide table and what it was loaded from. */
static pthread_rwlock_t	 auth_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct auth_db	*auth_cur;		/* under auth_lock */
static pthread_mutex_t	 auth_reload_mtx = PTHREAD_MUTEX_INITIALIZER;
static char		 auth_path[4096];	/* under auth_reload_mtx */
static struct auth_ident auth_cur_ident;	/* under auth_reload_mtx */
static uint64_t		 auth_last_stat;	/* under auth_reload_mtx */
static int		 auth_stat_warned;	/* under auth_reload_mtx */

static int
auth_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Loading the file.
 */

/* 1..255 octets; no ':' (the separator), no controls, no spaces. */
static int
auth_valid_user(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= AUTH_USER_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == ':')
			return 0;
	}
	return 1;
}

/*
 * The hash without its Dovecot "{SCHEME}" prefix, or NULL if the scheme
 * or the hash's "$id$" is not one we verify.  *why says which.
 */
static const char *
auth_strip_scheme(const char *pw, size_t *len, const char **why)
{
	const struct auth_scheme *s;
	const char *h, *id;
	size_t i, plen, idlen;

	*why = "unsupported password scheme";
	for (i = 0; i < nitems(auth_schemes); i++) {
		s = &auth_schemes[i];
		plen = strlen(s->prefix);
		if (strncasecmp(pw, s->prefix, plen) == 0)	/* as Dovecot */
			break;
	}
	if (i == nitems(auth_schemes) || (plen == 0 && pw[0] == '{'))
		return NULL;
	h = pw + plen;
	*len -= plen;
	for (id = s->hashes; *id != '\0'; id += idlen + (id[idlen] == '|')) {
		idlen = strcspn(id, "|");
		if (*len >= idlen && strncmp(h, id, idlen) == 0)
			break;
	}
	if (*id == '\0')
		return NULL;
	*why = "malformed password hash";
	if (*len >= AUTH_HASH_MAX || strspn(h, AUTH_HASH_CHARS) != *len ||
	    crypt_checksalt(h) == CRYPT_SALT_INVALID || !auth_hash_shape(h))
		return NULL;
	return h;
}

/*
 * A whole hash, not just a setting (crypt_checksalt accepts "$6$"):
 * bcrypt "$2b$NN$" + 53, else a last '$' field of the checksum's size.
 */
static int
auth_hash_shape(const char *h)
{
	const char *sum = strrchr(h, '$') + 1;
	size_t len = strlen(h), fields = 0, i;

	for (i = 0; i < len; i++)
		fields += h[i] == '$';
	if (h[1] == '2')
		return len == 60 && fields == 3 && h[4] >= '0' && h[4] <= '3' &&
		    h[5] >= '0' && h[5] <= '9' && h[6] == '$';
	if (h[1] == 'y')
		return fields == 4 && strlen(sum) == 43;
	return (fields == 3 || fields == 4) && strlen(sum) == 86;
}

/* One line, without its newline: "user:password[:extra fields]". */
static int
auth_parse_line(struct auth_db *db, char *line, size_t len, const char *path,
    size_t lineno, char *err, size_t errlen)
{
	char *colon, *pw, *user;
	const char *hash, *why;
	size_t pwlen;

	if (len == 0 || line[0] == '#' || strspn(line, " \t") == len)
		return 0;
	if ((colon = memchr(line, ':', len)) == NULL)
		return auth_error(err, errlen, "%s:%zu: missing ':' after "
		    "the user name", path, lineno);
	user = line;
	*colon = '\0';
	if (!auth_valid_user(user, (size_t)(colon - line)))
		return auth_error(err, errlen, "%s:%zu: invalid user name",
		    path, lineno);
	pw = colon + 1;
	pwlen = strcspn(pw, ":");
	pw[pwlen] = '\0';
	if (pwlen == 0)
		return auth_error(err, errlen, "%s:%zu: user %s: empty "
		    "password", path, lineno, user);
	if ((hash = auth_strip_scheme(pw, &pwlen, &why)) == NULL)
		return auth_error(err, errlen, "%s:%zu: user %s: %s", path,
		    lineno, user, why);
	db->users = xreallocarray(db->users, db->n + 1, sizeof(*db->users));
	db->users[db->n].name = xstrdup(user);
	db->users[db->n].hash = xstrndup(hash, pwlen);
	db->users[db->n].line = lineno;
	db->n++;
	return 0;
}

static int
auth_user_cmp_name(const void *a, const void *b)
{
	const struct auth_user *ua = a, *ub = b;

	return strcmp(ua->name, ub->name);
}

static int
auth_user_cmp(const void *a, const void *b)
{
	const struct auth_user *ua = a, *ub = b;
	int c = auth_user_cmp_name(a, b);

	if (c != 0)
		return c;
	return ua->line < ub->line ? -1 : ua->line > ub->line;
}

/* Sort for lookups; the same name twice is an error at its second line. */
static int
auth_db_finish(struct auth_db *db, const char *path, char *err,
    size_t errlen)
{
	size_t i;

	if (db->n > 1)
		qsort(db->users, db->n, sizeof(*db->users), auth_user_cmp);
	for (i = 1; i < db->n; i++)
		if (strcmp(db->users[i - 1].name, db->users[i].name) == 0)
			return auth_error(err, errlen, "%s:%zu: user %s: "
			    "duplicate (first at line %zu)", path,
			    db->users[i].line, db->users[i].name,
			    db->users[i - 1].line);
	return 0;
}

static struct auth_db *
auth_db_load_ident(const char *path, struct auth_ident *id, char *err,
    size_t errlen)
{
	struct auth_db *db = xcalloc(1, sizeof(*db));
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	struct stat st;
	ssize_t n;
	FILE *fp;
	int rc = 0;

	if ((fp = fopen(path, "re")) == NULL) {
		auth_error(err, errlen, "%s: %s", path, strerror(errno));
		free(db);
		return NULL;
	}
	if (fstat(fileno(fp), &st) == -1)
		rc = auth_error(err, errlen, "%s: %s", path, strerror(errno));
	else if (st.st_mode & S_IRWXO)
		rc = auth_error(err, errlen, "%s: accessible by others "
		    "(chmod o-rwx)", path);
	while (rc == 0 && (n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n >= AUTH_LINE_MAX || strlen(line) != (size_t)n)
			rc = auth_error(err, errlen, "%s:%zu: line too long "
			    "or contains NUL", path, lineno);
		else
			rc = auth_parse_line(db, line, (size_t)n, path,
			    lineno, err, errlen);
	}
	if (rc == 0 && ferror(fp))
		rc = auth_error(err, errlen, "%s: read error", path);
	fclose(fp);
	free(line);
	if (rc == 0)
		rc = auth_db_finish(db, path, err, errlen);
	if (rc == -1) {
		auth_db_free(db);
		return NULL;
	}
	if (id != NULL)
		auth_ident_from(&st, id);
	return db;
}

struct auth_db *
auth_db_load(const char *path, char *err, size_t errlen)
{
	return auth_db_load_ident(path, NULL, err, errlen);
}

void
auth_db_free(struct auth_db *db)
{
	size_t i;

	if (db == NULL)
		return;
	for (i = 0; i < db->n; i++) {
		free(db->users[i].name);
		free(db->users[i].hash);
	}
	free(db->users);
	free(db);
}

static const char *
auth_db_find(const struct auth_db *db, const char *user)
{
	struct auth_user key, *u;

	key.name = (char *)(uintptr_t)user;
	key.line = 0;
	u = bsearch(&key, db->users, db->n, sizeof(*db->users),
	    auth_user_cmp_name);
	return u != NULL ? u->hash : NULL;
}

/*
 * Verifying, and the process-wide table.
 */

/*
 * 1 if pass hashes to hash, 0 if not, -1 if libcrypt fails.  The 32 KiB
 * crypt_data is allocated per call: workers run on small stacks and
 * concurrent calls must not share it.
 */
static int
auth_verify(const char *pass, const char *hash)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	size_t hlen = strlen(hash);
	const char *out;
	int ok = -1;

	out = crypt_rn(pass, hash, cd, (int)sizeof(*cd));
	if (out != NULL && out[0] != '*')
		/* The length is no secret; the bytes are compared in
		 * constant time. */
		ok = strlen(out) == hlen && CRYPTO_memcmp(out, hash, hlen) == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static void
auth_ident_from(const struct stat *st, struct auth_ident *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
}

static int
auth_ident_eq(const struct auth_ident *a, const struct auth_ident *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Install db; called with auth_reload_mtx held. */
static void
auth_swap(struct auth_db *db, const struct auth_ident *id)
{
	struct auth_db *old;

	pthread_rwlock_wrlock(&auth_lock);
	old = auth_cur;
	auth_cur = db;
	pthread_rwlock_unlock(&auth_lock);
	auth_db_free(old);
	auth_cur_ident = *id;
	auth_stat_warned = 0;
}

int
auth_init(const char *path, char *err, size_t errlen)
{
	struct auth_ident id;
	struct auth_db *db;

	if (strlen(path) >= sizeof(auth_path))
		return auth_error(err, errlen, "%s: path too long", path);
	if ((db = auth_db_load_ident(path, &id, err, errlen)) == NULL)
		return -1;
	pthread_mutex_lock(&auth_reload_mtx);
	strlcpy(auth_path, path, sizeof(auth_path));
	auth_last_stat = now_mono_usec();
	auth_swap(db, &id);
	pthread_mutex_unlock(&auth_reload_mtx);
	return 0;
}

void
auth_shutdown(void)
{
	struct auth_ident none;

	memset(&none, 0, sizeof(none));
	pthread_mutex_lock(&auth_reload_mtx);
	auth_path[0] = '\0';
	auth_swap(NULL, &none);
	pthread_mutex_unlock(&auth_reload_mtx);
}

/*
 * Reload the file if it changed (at most one stat() a second).  One
 * thread checks while the others go on with the current table; a file
 * that fails to load keeps the old table and is reported once, then not
 * retried until it changes again.
 */
static void
auth_maybe_reload(void)
{
	char err[AUTH_ERR_MAX];
	struct auth_ident id, got;
	struct auth_db *db;
	struct stat st;
	uint64_t now;

	if (pthread_mutex_trylock(&auth_reload_mtx) != 0)
		return;
	now = now_mono_usec();
	if (auth_path[0] == '\0' || now - auth_last_stat < AUTH_STAT_USEC)
		goto out;
	auth_last_stat = now;
	if (stat(auth_path, &st) == -1) {
		if (!auth_stat_warned)
			log_warn("auth: %s: keeping %zu users", auth_path,
			    auth_cur != NULL ? auth_cur->n : 0);
		auth_stat_warned = 1;
		goto out;
	}
	auth_stat_warned = 0;
	auth_ident_from(&st, &id);
	if (auth_ident_eq(&id, &auth_cur_ident))
		goto out;
	if ((db = auth_db_load_ident(auth_path, &got, err, sizeof(err))) ==
	    NULL) {
		log_warnx("auth: %s; keeping the previous users", err);
		auth_cur_ident = id;
		goto out;
	}
	auth_swap(db, &got);
	log_info("auth reload file=%s users=%zu", auth_path, db->n);
 out:
	pthread_mutex_unlock(&auth_reload_mtx);
}

int
auth_check(const char *user, const char *pass)
{
	char hash[AUTH_HASH_MAX];
	const char *h;
	int found, ok;

	if (user == NULL || pass == NULL)
		return -1;
	auth_maybe_reload();
	/* Copy the hash out: crypt runs without holding the lock. */
	pthread_rwlock_rdlock(&auth_lock);
	if (auth_cur == NULL) {
		pthread_rwlock_unlock(&auth_lock);
		return -1;
	}
	h = auth_db_find(auth_cur, user);
	found = h != NULL;
	strlcpy(hash, found ? h : AUTH_DUMMY_HASH, sizeof(hash));
	pthread_rwlock_unlock(&auth_lock);
	/* Longer than sluicectl stores (and libcrypt refuses > 512). */
	if (strlen(pass) >= AUTH_PASS_MAX)
		return 0;
	ok = auth_verify(pass, hash);
	if (ok == -1) {
		log_warnx("auth: crypt failed for a stored hash");
		return -1;
	}
	return found && ok;
}

/*
 * SASL decoding.
 */

static int
auth_b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict RFC 4648 section 4 base64: whole quanta, '=' only to pad the
 * last one, no white space, and zero pad bits (section 3.5), so each
 * message has one encoding.  Returns the decoded length or -1.
 */
static ssize_t
auth_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	size_t i, o = 0, pad = 0;
	uint32_t q = 0;
	int k, v;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad = (len > 1 && in[len - 2] == '=') ? 2 : 1;
	if (len / 4 * 3 - pad > cap)
		return -1;
	for (i = 0; i < len; i += 4) {
		q = 0;
		for (k = 0; k < 4; k++) {
			if (i + (size_t)k >= len - pad)
				v = 0;
			else if ((v = auth_b64_val((unsigned char)in[i + k])) < 0)
				return -1;
			q = q << 6 | (uint32_t)v;
		}
		out[o++] = (unsigned char)(q >> 16);
		if (i + 4 < len || pad < 2)
			out[o++] = (unsigned char)(q >> 8);
		if (i + 4 < len || pad < 1)
			out[o++] = (unsigned char)q;
	}
	/* Non-canonical: bits the padding drops must be zero. */
	if ((pad == 1 && (q & 0xff) != 0) || (pad == 2 && (q & 0xffff) != 0))
		return -1;
	return (ssize_t)o;
}

int
auth_decode_b64(const char *b64, size_t len, char *out, size_t olen)
{
	ssize_t n;

	if (olen == 0)
		return -1;
	n = auth_b64_decode(b64, len, (unsigned char *)out, olen - 1);
	/* LOGIN carries one C string per step: no NUL inside. */
	if (n < 0 || memchr(out, '\0', (size_t)n) != NULL) {
		explicit_bzero(out, olen);
		return -1;
	}
	out[n] = '\0';
	return 0;
}

/*
 * RFC 4616: message = [authzid] NUL authcid NUL passwd, authcid and
 * passwd 1*SAFE.  We do not act for others: authzid must be empty or
 * the authcid itself.
 */
int
auth_decode_plain(const char *b64, size_t len, char *user, size_t ulen,
    char *pass, size_t plen)
{
	unsigned char msg[AUTH_PLAIN_MAX];
	const char *zid, *cid, *pw, *nul1, *nul2;
	size_t zlen, clen, pwlen;
	ssize_t n;
	int rc = -1;

	if ((n = auth_b64_decode(b64, len, msg, sizeof(msg))) < 0)
		goto out;
	zid = (const char *)msg;
	if ((nul1 = memchr(zid, '\0', (size_t)n)) == NULL)
		goto out;
	cid = nul1 + 1;
	if ((nul2 = memchr(cid, '\0', (size_t)n - (size_t)(cid - zid))) ==
	    NULL)
		goto out;
	pw = nul2 + 1;
	zlen = (size_t)(nul1 - zid);
	clen = (size_t)(nul2 - cid);
	pwlen = (size_t)n - (size_t)(pw - zid);
	if (memchr(pw, '\0', pwlen) != NULL || clen == 0 || pwlen == 0 ||
	    clen >= ulen || pwlen >= plen)
		goto out;
	if (zlen != 0 && (zlen != clen || memcmp(zid, cid, clen) != 0))
		goto out;
	memcpy(user, cid, clen);
	user[clen] = '\0';
	memcpy(pass, pw, pwlen);
	pass[pwlen] = '\0';
	rc = 0;
 out:
	explicit_bzero(msg, sizeof(msg));
	return rc;
}

/*
 * Editing the file (sluicectl).  Every line other than the user's is
 * kept byte for byte; the new file replaces the old one atomically.
 */

/* 1 if the line (no newline) is an entry for user. */
static int
auth_line_user(const char *line, size_t len, const char *user)
{
	size_t ulen = strlen(user);

	if (len == 0 || line[0] == '#')
		return 0;
	return len > ulen && line[ulen] == ':' &&
	    memcmp(line, user, ulen) == 0;
}

/* A fresh yescrypt hash of pass, with libcrypt's default cost. */
static int
auth_hash_new(const char *pass, char *out, size_t outlen, char *err,
    size_t errlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *h;
	int rc = 0;

	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof(salt)) ==
	    NULL)
		return auth_error(err, errlen, "crypt_gensalt: %s",
		    strerror(errno));
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(pass, salt, cd, (int)sizeof(*cd));
	if (h == NULL || strncmp(h, "$y$", 3) != 0)
		rc = auth_error(err, errlen, "crypt: %s", strerror(errno));
	else if (strlcpy(out, h, outlen) >= outlen)
		rc = auth_error(err, errlen, "crypt: hash too long");
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

/* The whole file into b; a missing file is empty when missing_ok. */
static int
auth_file_read(const char *path, struct buf *b, struct stat *st,
    int missing_ok, char *err, size_t errlen)
{
	char chunk[8192];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT && missing_ok) {
			memset(st, 0, sizeof(*st));
			st->st_uid = (uid_t)-1;
			return 0;
		}
		return auth_error(err, errlen, "%s: %s", path,
		    strerror(errno));
	}
	if (fstat(fd, st) == -1) {
		close(fd);
		return auth_error(err, errlen, "%s: %s", path,
		    strerror(errno));
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(b, chunk, (size_t)n);
	close(fd);
	if (n == -1)
		return auth_error(err, errlen, "%s: %s", path,
		    strerror(errno));
	return 0;
}

/* The file's directory, opened and locked: one edit at a time. */
static int
auth_dir_lock(const char *path, char *err, size_t errlen)
{
	char *dcopy = xstrdup(path);
	int dfd;

	dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dcopy);
	if (dfd == -1)
		return auth_error(err, errlen, "%s: directory: %s", path,
		    strerror(errno));
	if (flock(dfd, LOCK_EX) == -1) {
		close(dfd);
		return auth_error(err, errlen, "%s: lock: %s", path,
		    strerror(errno));
	}
	return dfd;
}

/* The file's owner, if it had one we are not already. */
static int
auth_file_chown(int fd, const struct stat *st)
{
	if (st->st_uid == (uid_t)-1 ||
	    (st->st_uid == geteuid() && st->st_gid == getegid()))
		return 0;
	return fchown(fd, st->st_uid, st->st_gid);
}

/*
 * Write b to a temp file in the same directory, mode 0640 and the old
 * file's owner (so the daemon's group can still read it), fsync, rename
 * over path, then fsync the directory so the rename is durable.
 */
static int
auth_file_commit(const char *path, int dfd, const struct buf *b,
    const struct stat *st, char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.XXXXXX", path);
	int fd;

	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		auth_error(err, errlen, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	if (fchmod(fd, AUTH_FILE_MODE) == -1 || auth_file_chown(fd, st) == -1 ||
	    write_all(fd, b->data, b->len) == -1 || fsync(fd) == -1) {
		auth_error(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		auth_error(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	if (fsync(dfd) == -1)
		return auth_error(err, errlen, "%s: fsync directory: %s", path,
		    strerror(errno));
	return 0;
}

/*
 * Copy old into new; the user's lines get hash (keeping their extra
 * fields) or, with hash NULL, are dropped.  Returns how many matched.
 */
static size_t
auth_file_rewrite(const struct buf *old, struct buf *new, const char *user,
    const char *hash)
{
	size_t off = 0, len, full, n = 0, ulen = strlen(user);
	const char *line, *nl, *rest;

	while (off < old->len) {
		line = old->data + off;
		nl = memchr(line, '\n', old->len - off);
		len = nl != NULL ? (size_t)(nl - line) : old->len - off;
		full = nl != NULL ? len + 1 : len;
		off += full;
		if (!auth_line_user(line, len, user)) {
			buf_append(new, line, full);
			continue;
		}
		if (++n > 1 || hash == NULL)
			continue;
		buf_appendf(new, "%s:%s", user, hash);
		rest = memchr(line + ulen + 1, ':', len - ulen - 1);
		if (rest != NULL)
			buf_append(new, rest, (size_t)(line + full - rest));
		else if (nl != NULL)
			buf_appendc(new, '\n');
	}
	return n;
}

/* Under the directory lock: read, change the user's line, replace. */
static int
auth_file_edit(const char *path, const char *user, const char *hash,
    int must_exist, char *err, size_t errlen)
{
	struct buf old, new;
	struct stat st;
	int dfd, rc = -1;
	size_t n;

	if ((dfd = auth_dir_lock(path, err, errlen)) == -1)
		return -1;
	buf_init(&old);
	buf_init(&new);
	if (auth_file_read(path, &old, &st, hash != NULL, err, errlen) == -1)
		goto out;
	n = auth_file_rewrite(&old, &new, user, hash);
	if (n == 0 && must_exist)
		auth_error(err, errlen, "%s: user %s does not exist", path,
		    user);
	else if (n > 0 && !must_exist)
		auth_error(err, errlen, "%s: user %s already exists", path,
		    user);
	else if (n > 1 && hash != NULL)
		auth_error(err, errlen, "%s: user %s is listed %zu times",
		    path, user, n);
	else {
		if (n == 0) {
			if (new.len > 0 && new.data[new.len - 1] != '\n')
				buf_appendc(&new, '\n');
			buf_appendf(&new, "%s:%s\n", user, hash);
		}
		rc = auth_file_commit(path, dfd, &new, &st, err, errlen);
	}
 out:
	buf_free(&old);
	buf_free(&new);
	close(dfd);
	return rc;
}

int
auth_file_set(const char *path, const char *user, const char *pass,
    int must_exist, char *err, size_t errlen)
{
	char hash[AUTH_HASH_MAX];
	int rc;

	if (!auth_valid_user(user, strlen(user)))
		return auth_error(err, errlen, "invalid user name (1 to %d "
		    "octets, no ':', spaces or controls)", AUTH_USER_MAX - 1);
	if (pass[0] == '\0')
		return auth_error(err, errlen, "empty password refused");
	if (strlen(pass) >= AUTH_PASS_MAX)
		return auth_error(err, errlen, "password longer than %d "
		    "octets refused", AUTH_PASS_MAX - 1);
	if (auth_hash_new(pass, hash, sizeof(hash), err, errlen) == -1)
		return -1;
	rc = auth_file_edit(path, user, hash, must_exist, err, errlen);
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

int
auth_file_del(const char *path, const char *user, char *err, size_t errlen)
{
	if (!auth_valid_user(user, strlen(user)))
		return auth_error(err, errlen, "invalid user name");
	return auth_file_edit(path, user, NULL, 1, err, errlen);
}

int
auth_file_list(const char *path, FILE *out, char *err, size_t errlen)
{
	struct auth_db *db;
	size_t i;

	if ((db = auth_db_load(path, err, errlen)) == NULL)
		return -1;
	for (i = 0; i < db->n; i++)
		fprintf(out, "%s\n", db->users[i].name);
	auth_db_free(db);
	if (fflush(out) == EOF || ferror(out))
		return auth_error(err, errlen, "write: %s", strerror(errno));
	return 0;
}
