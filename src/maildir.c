/*
 * maildir.c -- local delivery into a Maildir (see maildir.h), following
 * the protocol in https://cr.yp.to/proto/maildir.html: write tmp/<name>,
 * fsync it, link it into new/, fsync new/.  Run by the delivery workers,
 * possibly from several threads at once; the message bytes come from the
 * spool (peer data, copied verbatim apart from CRLF -> LF) and the path
 * from the configuration or the alias table.
 */
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"
#include "util.h"

#define MAILDIR_CHUNK		(64 * 1024)
#define MAILDIR_HOST_MAX	256
#define MAILDIR_NAME_MAX	(64 + MAILDIR_HOST_MAX * 4)

/* Deliveries by this process, the "Q" of the unique name. */
static atomic_ulong maildir_counter;

struct maildir_out {
	int		 fd;
	char		*buf;		/* MAILDIR_CHUNK octets */
	size_t		 len;
	int		 pending_cr;	/* a CR ended the last input chunk */
};

static int	maildir_temporary(int);
static int	maildir_fail(char *, size_t, int *, int, const char *,
		    const char *);
static int	maildir_sync_dir(const char *);
static int	maildir_mkdir(const char *, char *, size_t, int *);
static int	maildir_mkdir_p(const char *, char *, size_t, int *);
static void	maildir_unique(char *, size_t);
static int	maildir_flush(struct maildir_out *);
static int	maildir_put(struct maildir_out *, const char *, size_t);
static int	maildir_copy(struct maildir_out *, int, uint64_t, uint64_t);
static int	maildir_write(int, const char *, int, uint64_t, uint64_t);
static int	maildir_link(const char *, const char *);

/*
 * Which errno values an administrator or time can cure.  A path that
 * cannot be a directory cannot; everything else (a full disk, quota, I/O,
 * permissions, a read-only mount) is worth retrying.
 */
static int
maildir_temporary(int e)
{
	switch (e) {
	case ENOTDIR:
	case ENAMETOOLONG:
	case ELOOP:
	case EINVAL:
		return 0;
	default:
		return 1;
	}
}

static int
maildir_fail(char *err, size_t errlen, int *temporary, int e,
    const char *what, const char *path)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
	*temporary = maildir_temporary(e);
	return -1;
}

/* fsync a directory so a new entry in it survives a crash. */
static int
maildir_sync_dir(const char *dir)
{
	int fd, rc, e;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* mkdir one level (0700) unless it is a directory already. */
static int
maildir_mkdir(const char *dir, char *err, size_t errlen, int *temporary)
{
	struct stat st;
	char parent[PATH_MAX];
	char *slash;

	if (mkdir(dir, 0700) == 0) {
		strlcpy(parent, dir, sizeof(parent));
		slash = strrchr(parent, '/');
		if (slash == parent)
			slash[1] = '\0';
		else if (slash != NULL)
			*slash = '\0';
		else
			strlcpy(parent, ".", sizeof(parent));
		if (maildir_sync_dir(parent) == -1)
			return maildir_fail(err, errlen, temporary, errno,
			    "fsync", parent);
		return 0;
	}
	if (errno != EEXIST)
		return maildir_fail(err, errlen, temporary, errno, "mkdir",
		    dir);
	if (stat(dir, &st) == -1)
		return maildir_fail(err, errlen, temporary, errno, "stat", dir);
	if (!S_ISDIR(st.st_mode))
		return maildir_fail(err, errlen, temporary, ENOTDIR, "mkdir",
		    dir);
	return 0;
}

/* mkdir -p: every missing component of path. */
static int
maildir_mkdir_p(const char *path, char *err, size_t errlen, int *temporary)
{
	char dir[PATH_MAX];
	char *p;

	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir))
		return maildir_fail(err, errlen, temporary, ENAMETOOLONG,
		    "mkdir", path);
	for (p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
		if (p[-1] == '/')
			continue;
		*p = '\0';
		if (maildir_mkdir(dir, err, errlen, temporary) == -1)
			return -1;
		*p = '/';
	}
	return maildir_mkdir(dir, err, errlen, temporary);
}

/*
 * "<sec>.M<usec>P<pid>Q<n>.<host>", unique per the Maildir spec: '/' and
 * ':' in the host name become \057 and \072.
 */
static void
maildir_unique(char *dst, size_t len)
{
	char host[MAILDIR_HOST_MAX], safe[MAILDIR_HOST_MAX * 4];
	struct timeval tv;
	size_t i, j = 0;

	if (gethostname(host, sizeof(host)) == -1)
		strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && j + 5 < sizeof(safe); i++) {
		if (host[i] == '/' || host[i] == ':') {
			snprintf(safe + j, 5, "\\%03o",
			    (unsigned)(unsigned char)host[i]);
			j += 4;
		} else
			safe[j++] = host[i];
	}
	safe[j] = '\0';
	gettimeofday(&tv, NULL);
	snprintf(dst, len, "%lld.M%ldP%ldQ%lu.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(),
	    atomic_fetch_add(&maildir_counter, 1) + 1, safe);
}

static int
maildir_flush(struct maildir_out *o)
{
	size_t done = 0;
	ssize_t n;

	while (done < o->len) {
		n = write(o->fd, o->buf + done, o->len - done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		done += (size_t)n;
	}
	o->len = 0;
	return 0;
}

/*
 * Append n octets, turning CRLF into LF.  A CR at the end of the input is
 * held back until the next call shows whether an LF follows it.
 */
static int
maildir_put(struct maildir_out *o, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (o->len + 2 > MAILDIR_CHUNK && maildir_flush(o) == -1)
			return -1;
		if (o->pending_cr) {
			o->pending_cr = 0;
			if (p[i] != '\n')
				o->buf[o->len++] = '\r';
		}
		if (p[i] == '\r')
			o->pending_cr = 1;
		else
			o->buf[o->len++] = p[i];
	}
	return 0;
}

/* Copy len octets at off in fd through maildir_put(). */
static int
maildir_copy(struct maildir_out *o, int fd, uint64_t off, uint64_t len)
{
	char *in = xmalloc(MAILDIR_CHUNK);
	ssize_t n;
	size_t want;
	int rc = 0;

	while (len > 0) {
		want = len < MAILDIR_CHUNK ? (size_t)len : MAILDIR_CHUNK;
		n = pread(fd, in, want, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO;	/* spool file shorter than said */
		if (n <= 0 || maildir_put(o, in, (size_t)n) == -1) {
			rc = -1;
			break;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	free(in);
	return rc;
}

/* Write prepend and the message to the new file fd, then fsync it. */
static int
maildir_write(int fd, const char *prepend, int in, uint64_t off,
    uint64_t len)
{
	struct maildir_out o;
	int rc = -1;

	o.fd = fd;
	o.buf = xmalloc(MAILDIR_CHUNK);
	o.len = 0;
	o.pending_cr = 0;
	if (prepend != NULL && maildir_put(&o, prepend, strlen(prepend)) == -1)
		goto out;
	if (maildir_copy(&o, in, off, len) == -1)
		goto out;
	if (o.pending_cr) {	/* a lone CR at the very end stays */
		o.pending_cr = 0;
		o.buf[o.len++] = '\r';
	}
	if (maildir_flush(&o) == -1 || fsync(fd) == -1)
		goto out;
	rc = 0;
out:
	free(o.buf);
	return rc;
}

/*
 * link() never replaces an existing message; file systems without hard
 * links get rename(), which the unique name makes safe enough.
 */
static int
maildir_link(const char *from, const char *to)
{
	if (link(from, to) == 0)
		return unlink(from);
	if (errno != EPERM && errno != EXDEV && errno != ENOSYS &&
	    errno != EOPNOTSUPP)
		return -1;
	return rename(from, to);
}

int
maildir_deliver(const char *path, const char *prepend, int fd,
    uint64_t off, uint64_t len, char *err, size_t errlen, int *temporary)
{
	char sub[PATH_MAX], tmp[PATH_MAX], new[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	static const char *subs[] = { "tmp", "new", "cur" };
	size_t i;
	int out, e;

	if (path == NULL || *path == '\0')
		return maildir_fail(err, errlen, temporary, EINVAL, "maildir",
		    "\"\"");
	if (maildir_mkdir_p(path, err, errlen, temporary) == -1)
		return -1;
	for (i = 0; i < nitems(subs); i++) {
		snprintf(sub, sizeof(sub), "%s/%s", path, subs[i]);
		if (maildir_mkdir(sub, err, errlen, temporary) == -1)
			return -1;
	}
	maildir_unique(name, sizeof(name));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp/%s", path, name) >=
	    sizeof(tmp) || (size_t)snprintf(new, sizeof(new), "%s/new/%s",
	    path, name) >= sizeof(new))
		return maildir_fail(err, errlen, temporary, ENAMETOOLONG,
		    "open", path);
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out == -1)
		return maildir_fail(err, errlen, temporary, errno, "open", tmp);
	if (maildir_write(out, prepend, fd, off, len) == -1) {
		e = errno;
		close(out);
		unlink(tmp);
		return maildir_fail(err, errlen, temporary, e, "copy to", tmp);
	}
	/* close() reports deferred write errors (NFS, quotas). */
	if (close(out) == -1 || maildir_link(tmp, new) == -1) {
		e = errno;
		unlink(tmp);
		return maildir_fail(err, errlen, temporary, e, "deliver", new);
	}
	/* Not durable is not delivered: take it back so a retry is no dup. */
	snprintf(sub, sizeof(sub), "%s/new", path);
	if (maildir_sync_dir(sub) == -1) {
		e = errno;
		unlink(new);
		return maildir_fail(err, errlen, temporary, e, "fsync", sub);
	}
	return 0;
}
