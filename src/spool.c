/*
 * spool.c -- writing messages into the queue and making them durable.
 *
 * Run by the worker threads (writing) and by one commit thread (fsync).
 * The durability rule: a message's callback reports success only after
 * its data, inode and queue/ directory entry are on stable storage.  One
 * syncfs() covers every message finished since the last round, so the
 * cost of a flush is shared by all sessions that ended DATA meanwhile.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "notify.h"
#include "spool.h"
#include "spool_file.h"
#include "util.h"


/* How long a sync nobody waits for may wait for a commit to share. */
#define SPOOL_LAZY_SYNC_USEC	20000

struct spool_msg_priv {
	struct spool_msg pub;
	struct buf	 env;
};

static struct {
	int		 top_fd;	/* spool_dir, flock()ed */
	int		 incoming_fd;
	int		 queue_fd;
	enum spool_sync_mode mode;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct spool_msg *head;
	struct spool_msg **tail;
	int		 stopping;
	int		 running;
	int		 sync_wanted;	/* spool_sync_soon() was called */
	pthread_t	 thread;
} spool = { .top_fd = -1, .incoming_fd = -1, .queue_fd = -1,
    .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void	*spool_commit_main(void *);
static void	 spool_msg_done(struct notify_item *);

static int
spool_open_dir(int parent, const char *name, char *err, size_t errlen)
{
	int fd;

	if (mkdirat(parent, name, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", name, strerror(errno));
		return -1;
	}
	/* Root opens these before the privilege drop, and the daemon's
	 * user owns them: never follow a symlink it may have planted. */
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		snprintf(err, errlen, "open %s: %s", name, strerror(errno));
	return fd;
}

int
spool_init(const struct config *cfg, char *err, size_t errlen)
{
	int top;

	if (mkdir(cfg->spool_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "spool_dir %s: %s", cfg->spool_dir,
		    strerror(errno));
		return -1;
	}
	top = open(cfg->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top == -1) {
		snprintf(err, errlen, "spool_dir %s: %s", cfg->spool_dir,
		    strerror(errno));
		return -1;
	}
	/* One daemon per spool: a second one's recovery would delete the
	 * first one's messages in flight.  Held until exit. */
	if (flock(top, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "spool_dir %s: %s", cfg->spool_dir,
		    errno == EWOULDBLOCK ? "in use by another sluiced" :
		    strerror(errno));
		close(top);
		return -1;
	}
	spool.top_fd = top;
	spool.incoming_fd = spool_open_dir(top, "incoming", err, errlen);
	if (spool.incoming_fd != -1)
		spool.queue_fd = spool_open_dir(top, "queue", err, errlen);
	/* The new directories themselves must survive a crash. */
	if (spool.queue_fd != -1)
		fsync(top);
	spool.mode = cfg->spool_sync;
	spool.tail = &spool.head;
	return spool.queue_fd == -1 ? -1 : 0;
}

/* Is the queue file complete?  A crash before the commit can leave one
 * renamed but short; it was never acknowledged. */
static int
spool_file_complete(int fd)
{
	char hdr[SPOOL_HDR_LEN];
	uint64_t env_len, msg_len;
	struct stat st;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    spool_parse_header(hdr, sizeof(hdr), &env_len, &msg_len) == -1)
		return 0;
	return (uint64_t)st.st_size >= env_len + msg_len;
}

/* Queue files left by an earlier run as another user, and the counters. */
static int
spool_chown_files(int dirfd, uid_t uid, gid_t gid)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL)
		return -1;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		/* Only plain files with one link, not links the daemon's
		 * user could point at files root must keep. */
		if (de->d_name[0] == '.' || fstatat(dirfd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode) ||
		    st.st_nlink != 1 || st.st_uid == uid)
			continue;
		if (fchownat(dirfd, de->d_name, uid, gid,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

static unsigned
spool_sweep(int dirfd, int check)
{
	struct dirent *de;
	unsigned n = 0, removed = 0;
	DIR *d;
	int fd;

	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL)
		fatal("spool: opendir");
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		int mfd, ok = 0;

		if (de->d_name[0] == '.')
			continue;
		if (check) {
			mfd = openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW |
			    O_NONBLOCK | O_CLOEXEC);
			ok = mfd != -1 && spool_file_complete(mfd);
			if (mfd != -1)
				close(mfd);
		}
		if (ok) {
			n++;
			continue;
		}
		if (unlinkat(dirfd, de->d_name, 0) == -1)
			log_warn("%s: unlink", de->d_name);
		else
			log_info("%s: removed partial spool file",
			    de->d_name);
		removed++;
	}
	closedir(d);
	if (removed)
		fsync(dirfd);
	return check ? n : removed;
}

/* The spool belongs to the user the daemon drops to. */
int
spool_chown(const struct config *cfg)
{
	struct passwd *pw = getpwnam(cfg->user);

	if (pw == NULL)
		return 0;	/* privsep_drop() reports it */
	if (fchown(spool.top_fd, pw->pw_uid, pw->pw_gid) == -1 ||
	    fchown(spool.incoming_fd, pw->pw_uid, pw->pw_gid) == -1 ||
	    fchown(spool.queue_fd, pw->pw_uid, pw->pw_gid) == -1 ||
	    spool_chown_files(spool.top_fd, pw->pw_uid, pw->pw_gid) == -1 ||
	    spool_chown_files(spool.queue_fd, pw->pw_uid, pw->pw_gid) == -1)
		return -1;
	return 0;
}

int
spool_recover(unsigned *queued, unsigned *removed)
{
	*removed = spool_sweep(spool.incoming_fd, 0);
	*queued = spool_sweep(spool.queue_fd, 1);
	return 0;
}

void
spool_new_id(char id[SPOOL_ID_LEN + 1])
{
	static atomic_uint counter;
	static const char hex[] = "0123456789ABCDEF";
	uint64_t v = (now_wall_usec() << 12) |
	    (atomic_fetch_add(&counter, 1) & 0xfff);
	int i;

	/* Time-ordered, so ls and sluicectl list in arrival order. */
	for (i = SPOOL_ID_LEN - 1; i >= 0; i--, v >>= 4)
		id[i] = hex[v & 15];
	id[SPOOL_ID_LEN] = '\0';
}

struct spool_msg *
spool_msg_new(const char *id, const struct buf *env)
{
	struct spool_msg_priv *p = xcalloc(1, sizeof(*p));

	strlcpy(p->pub.id, id, sizeof(p->pub.id));
	p->pub.fd = -1;
	buf_init(&p->env);
	buf_append(&p->env, env->data, env->len);
	p->pub.env_len = SPOOL_HDR_LEN + env->len;
	return &p->pub;
}

static void
spool_header(char hdr[SPOOL_HDR_LEN + 1], uint64_t env_len, uint64_t msg_len)
{
	snprintf(hdr, SPOOL_HDR_LEN + 1, SPOOL_MAGIC "%010" PRIu64 " %020"
	    PRIu64 "\n", env_len, msg_len);
}

/* Write all of iov, retrying short writes. */
static int
spool_writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* First write: create incoming/ID holding header, envelope, data. */
static int
spool_msg_create(struct spool_msg *m, struct buf *pending, int final)
{
	struct spool_msg_priv *p = (struct spool_msg_priv *)m;
	char hdr[SPOOL_HDR_LEN + 1];
	struct iovec iov[3];

	m->fd = openat(spool.incoming_fd, m->id,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (m->fd == -1)
		return -1;
	m->created = 1;
	/* A message written in one go gets its real header at once. */
	spool_header(hdr, m->env_len, final ? m->msg_len + pending->len : 0);
	iov[0].iov_base = hdr;
	iov[0].iov_len = SPOOL_HDR_LEN;
	iov[1].iov_base = p->env.data;
	iov[1].iov_len = p->env.len;
	iov[2].iov_base = pending->data;
	iov[2].iov_len = pending->len;
	return spool_writev_all(m->fd, iov, 3);
}

int
spool_msg_write(struct spool_msg *m, struct buf *pending, int flush)
{
	struct iovec iov;
	int r;

	if (m->error)
		goto fail;
	if (!flush && pending->len < SPOOL_WRITE_CHUNK)
		return 0;
	if (m->fd == -1)
		r = spool_msg_create(m, pending, flush);
	else {
		iov.iov_base = pending->data;
		iov.iov_len = pending->len;
		r = spool_writev_all(m->fd, &iov, 1);
	}
	if (r == -1) {
		m->error = errno ? errno : EIO;
		goto fail;
	}
	m->msg_len += pending->len;
	buf_reset(pending);
	return 0;
 fail:
	buf_reset(pending);
	return -1;
}

int
spool_msg_finish(struct spool_msg *m, struct buf *pending)
{
	char hdr[SPOOL_HDR_LEN + 1];
	int one_write = m->fd == -1;

	/* A small message is created, complete, in a single writev. */
	if (spool_msg_write(m, pending, 1) == -1)
		return -1;
	if (!one_write) {
		spool_header(hdr, m->env_len, m->msg_len);
		if (pwrite(m->fd, hdr, SPOOL_HDR_LEN, 0) != SPOOL_HDR_LEN) {
			m->error = errno ? errno : EIO;
			return -1;
		}
	}
	if (renameat(spool.incoming_fd, m->id, spool.queue_fd, m->id) == -1) {
		m->error = errno;
		return -1;
	}
	return 0;
}

void
spool_msg_free(struct spool_msg *m)
{
	struct spool_msg_priv *p = (struct spool_msg_priv *)m;

	if (m == NULL)
		return;
	if (m->fd != -1)
		close(m->fd);
	buf_free(&p->env);
	free(p);
}

void
spool_msg_abort(struct spool_msg *m)
{
	if (m == NULL)
		return;
	if (m->created) {
		/* It may be in either directory, depending on the failure;
		 * a failed commit must not come back at the next start. */
		if (unlinkat(spool.incoming_fd, m->id, 0) == -1 &&
		    unlinkat(spool.queue_fd, m->id, 0) == 0)
			spool_sync_soon();
	}
	spool_msg_free(m);
}

void
spool_msg_commit(struct spool_msg *m, struct notify *n,
    void (*cb)(struct spool_msg *, void *), void *arg)
{
	m->notify = n;
	m->item.fn = spool_msg_done;
	m->done_cb = cb;
	m->done_arg = arg;
	m->next = NULL;
	pthread_mutex_lock(&spool.lock);
	*spool.tail = m;
	spool.tail = &m->next;
	pthread_cond_signal(&spool.cond);
	pthread_mutex_unlock(&spool.lock);
}

/* Make one batch durable (and, with all, every pending change of the
 * spool: removals, state records); sets each message's error. */
static void
spool_sync_batch(struct spool_msg *batch, int all)
{
	struct spool_msg *m;
	int err = 0;

	if (spool.mode == SPOOL_SYNC_SYNCFS || all) {
		if (syncfs(spool.queue_fd) == -1)
			err = errno;
	} else {
		for (m = batch; m != NULL; m = m->next)
			if (fdatasync(m->fd) == -1)
				m->error = errno;
		if (fsync(spool.queue_fd) == -1)
			err = errno;
	}
	if (err)
		log_warnx("spool: sync failed: %s", strerror(err));
	for (m = batch; m != NULL; m = m->next) {
		if (err && !m->error)
			m->error = err;
		close(m->fd);
		m->fd = -1;
	}
}

/* Hand each message of the batch back to its session's thread. */
static void
spool_deliver_batch(struct spool_msg *batch)
{
	struct spool_msg *m, *next;

	for (m = batch; m != NULL; m = next) {
		next = m->next;
		notify_post(m->notify, &m->item);
	}
}

static void
spool_msg_done(struct notify_item *it)
{
	struct spool_msg *m = NOTIFY_CONTAINER(it, struct spool_msg, item);

	m->done_cb(m, m->done_arg);
}

/*
 * Take the next batch.  A sync nobody waits for (removals, state
 * records) is delayed up to SPOOL_LAZY_SYNC_USEC: a commit arriving
 * meanwhile covers it, so under load it costs nothing extra.
 */
static struct spool_msg *
spool_next_batch(int *sync_all)
{
	struct spool_msg *batch;
	struct timespec until;

	pthread_mutex_lock(&spool.lock);
	while (spool.head == NULL && !spool.sync_wanted && !spool.stopping)
		pthread_cond_wait(&spool.cond, &spool.lock);
	if (spool.head == NULL && spool.sync_wanted && !spool.stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += SPOOL_LAZY_SYNC_USEC * 1000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (spool.head == NULL && !spool.stopping &&
		    pthread_cond_timedwait(&spool.cond, &spool.lock,
		    &until) == 0)
			;
	}
	batch = spool.head;
	spool.head = NULL;
	spool.tail = &spool.head;
	*sync_all = spool.sync_wanted;
	spool.sync_wanted = 0;
	pthread_mutex_unlock(&spool.lock);
	return batch;
}

static void *
spool_commit_main(void *arg)
{
	struct spool_msg *batch;
	int sync_all;

	(void)arg;
	for (;;) {
		batch = spool_next_batch(&sync_all);
		if (batch == NULL && sync_all) {
			if (syncfs(spool.queue_fd) == -1)
				log_warn("spool: syncfs");
			continue;
		}
		if (batch == NULL)
			break;
		spool_sync_batch(batch, sync_all);
		spool_deliver_batch(batch);
	}
	return NULL;
}

void
spool_sync_soon(void)
{
	pthread_mutex_lock(&spool.lock);
	if (!spool.sync_wanted) {
		spool.sync_wanted = 1;
		pthread_cond_signal(&spool.cond);
	}
	pthread_mutex_unlock(&spool.lock);
}

int
spool_dir_fd(void)
{
	return spool.top_fd;
}

int
spool_queue_open(const char *id)
{
	return openat(spool.queue_fd, id, O_RDWR | O_APPEND | O_CLOEXEC);
}

int
spool_queue_remove(const char *id)
{
	if (unlinkat(spool.queue_fd, id, 0) == -1)
		return -1;
	spool_sync_soon();
	return 0;
}

int
spool_append(int fd, const struct buf *records)
{
	struct iovec iov = { .iov_base = records->data,
	    .iov_len = records->len };
	struct stat st;

	if (records->len == 0)
		return 0;
	if (fstat(fd, &st) == -1)
		return -1;
	if (spool_writev_all(fd, &iov, 1) == 0)
		return 0;
	/* No torn record may stay to glue onto the next one. */
	if (ftruncate(fd, st.st_size) == -1)
		log_warn("spool: truncate after a failed append");
	return -1;
}

void
spool_queue_scan(void (*fn)(const char *, void *), void *arg)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(spool.queue_fd)) == -1 || (d = fdopendir(fd)) == NULL)
		fatal("spool: opendir queue");
	rewinddir(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			fn(de->d_name, arg);
	closedir(d);
}

void
spool_start(void)
{
	int r = pthread_create(&spool.thread, NULL, spool_commit_main, NULL);

	if (r != 0) {
		errno = r;
		fatal("spool: pthread_create");
	}
	spool.running = 1;
}

void
spool_stop(void)
{
	if (!spool.running)
		return;
	pthread_mutex_lock(&spool.lock);
	spool.stopping = 1;
	pthread_cond_signal(&spool.cond);
	pthread_mutex_unlock(&spool.lock);
	pthread_join(spool.thread, NULL);
	spool.running = 0;
}
