/*
 * slowsync.c -- LD_PRELOAD shim that makes every flush slow, as if all the
 * processes that load it shared one disk completing one flush at a time.
 *
 *   cc -shared -fPIC -O2 -o slowsync.so slowsync.c -ldl
 *   LD_PRELOAD=/abs/slowsync.so SLOWSYNC_LOCK=/tmp/x/lock SLOWSYNC_MS=5 prog
 *
 * fsync(), fdatasync() and syncfs() each, before the real call:
 *   1. open SLOWSYNC_LOCK and take an exclusive flock() on it (machine-wide:
 *      every process and thread that loads the shim queues on the same lock);
 *   2. sleep SLOWSYNC_MS milliseconds (default 5) while holding it;
 *   3. make the real call, then release the lock (close).
 * So at most 1000 / SLOWSYNC_MS flushes complete per second, whoever issues
 * them, and a flush waits for those queued before it.
 *
 * SLOWSYNC_COUNT, if set, names a file to which each call appends one byte
 * ('f' fsync, 'd' fdatasync, 's' syncfs): its size is the number of calls.
 *
 * The lock is opened anew on every call, so each call has an open file
 * description of its own: flock() locks belong to the description, and a
 * descriptor shared between threads or inherited across fork() would let
 * a second caller through without waiting.  The lock and counter files
 * must be writable by every user the processes run as.
 *
 * The variables are read once, when the shim is loaded: a program that
 * cleans its environment later (Postfix daemons do) keeps the settings.
 * Calls made through syscall(2) directly, sync(), sync_file_range() and
 * O_SYNC / O_DSYNC writes are not intercepted.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static char	lock_path[PATH_MAX];
static char	count_path[PATH_MAX];
static long	delay_ms = 5;

static int	(*real_fsync)(int);
static int	(*real_fdatasync)(int);
static int	(*real_syncfs)(int);

static void
copy_env(char *dst, size_t len, const char *name)
{
	const char *v = getenv(name);

	dst[0] = '\0';
	if (v != NULL && strlen(v) < len)
		strcpy(dst, v);
}

__attribute__((constructor)) static void
slowsync_init(void)
{
	const char *ms = getenv("SLOWSYNC_MS");
	char *end;
	long v;

	copy_env(lock_path, sizeof(lock_path), "SLOWSYNC_LOCK");
	copy_env(count_path, sizeof(count_path), "SLOWSYNC_COUNT");
	if (ms != NULL && *ms != '\0') {
		v = strtol(ms, &end, 10);
		if (*end == '\0' && v >= 0 && v <= 10000)
			delay_ms = v;
	}
	real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	real_syncfs = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
}

/* Take the disk: returns the lock's descriptor (or -1 without a lock). */
static int
disk_acquire(char tag)
{
	struct timespec ts;
	int fd = -1, cfd;

	if (lock_path[0] != '\0' &&
	    (fd = open(lock_path, O_RDWR | O_CLOEXEC)) != -1) {
		while (flock(fd, LOCK_EX) == -1 && errno == EINTR)
			;
	}
	if (delay_ms > 0) {
		ts.tv_sec = delay_ms / 1000;
		ts.tv_nsec = (delay_ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	if (count_path[0] != '\0' &&
	    (cfd = open(count_path, O_WRONLY | O_APPEND | O_CLOEXEC)) != -1) {
		(void)!write(cfd, &tag, 1);
		close(cfd);
	}
	return fd;
}

static int
disk_release(int fd, int rc)
{
	int saved = errno;

	if (fd != -1)
		close(fd);		/* drops the flock */
	errno = saved;
	return rc;
}

static int
slow_call(int (**real)(int), const char *name, char tag, int fd)
{
	int lfd, saved = errno;

	if (*real == NULL)
		*real = (int (*)(int))dlsym(RTLD_NEXT, name);
	if (*real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	lfd = disk_acquire(tag);
	errno = saved;
	return disk_release(lfd, (*real)(fd));
}

int
fsync(int fd)
{
	return slow_call(&real_fsync, "fsync", 'f', fd);
}

int
fdatasync(int fd)
{
	return slow_call(&real_fdatasync, "fdatasync", 'd', fd);
}

int
syncfs(int fd)
{
	return slow_call(&real_syncfs, "syncfs", 's', fd);
}
