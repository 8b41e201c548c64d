/*
 * privsep.c -- the root parent and the privilege drop (privsep.h).
 * Messages on the channel: a 4-octet type, then for PRIV_CERTS a count
 * and per certificate two length-prefixed PEM blobs.  Every length is
 * checked; a malformed message is fatal to the reader (STYLE 1).
 */
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privsep.h"
#include "tls.h"
#include "util.h"

#define PRIV_BLOB_MAX	(1024 * 1024)

enum priv_msg { PRIV_RELOAD = 1, PRIV_CERTS = 2 };

static int
priv_io(int fd, void *p, size_t len, int out)
{
	char *c = p;

	while (len > 0) {
		ssize_t r = out ? write(fd, c, len) : read(fd, c, len);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		len -= (size_t)r;
	}
	return 0;
}

int
privsep_read_certs(const struct config *cfg, struct tls_pem *pems,
    char *err, size_t errlen)
{
	unsigned i;

	for (i = 0; i < cfg->ntls_certificates; i++)
		if (tls_pem_read(cfg->tls_certificates[i].cert,
		    cfg->tls_certificates[i].key, &pems[i], err,
		    errlen) == -1) {
			while (i-- > 0)
				tls_pem_free(&pems[i]);
			return -1;
		}
	return (int)cfg->ntls_certificates;
}

static int
priv_send_blob(int fd, const char *p, size_t len)
{
	uint32_t n = (uint32_t)len;

	return priv_io(fd, &n, sizeof(n), 1) == -1 ||
	    priv_io(fd, (void *)p, len, 1) == -1 ? -1 : 0;
}

static void
priv_send_certs(int fd, const struct config *cfg)
{
	struct tls_pem pems[CONFIG_CERTS_MAX];
	char err[512];
	uint32_t hdr[2] = { PRIV_CERTS, 0 };
	int i, n;

	if ((n = privsep_read_certs(cfg, pems, err, sizeof(err))) == -1) {
		log_warnx("reload: %s; keeping the old certificates", err);
		return;
	}
	hdr[1] = (uint32_t)n;
	if (priv_io(fd, hdr, sizeof(hdr), 1) == -1)
		log_warn("privsep: send");
	for (i = 0; i < n; i++) {
		if (priv_send_blob(fd, pems[i].chain, pems[i].chain_len) == -1 ||
		    priv_send_blob(fd, pems[i].key, pems[i].key_len) == -1)
			log_warn("privsep: send");
		tls_pem_free(&pems[i]);
	}
}

/* Forward a signal, or serve a reload; exit when the child has. */
static void
priv_signal(const struct config *cfg, pid_t child, int fd, int sig)
{
	int status;

	if (sig == SIGHUP)
		priv_send_certs(fd, cfg);
	else if (sig != SIGCHLD)
		kill(child, sig);
	if (waitpid(child, &status, WNOHANG) == child)
		exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* The parent: forward signals, serve reloads, exit with the child. */
static void __attribute__((noreturn))
priv_parent(const struct config *cfg, pid_t child, int fd)
{
	struct signalfd_siginfo si;
	sigset_t set;
	uint32_t type;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	/* The child may have died before SIGCHLD was blocked. */
	priv_signal(cfg, child, fd, SIGCHLD);
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = fd, .events = POLLIN },
		};

		if (poll(pfd, 2, -1) == -1)
			continue;
		if ((pfd[0].revents & POLLIN) &&
		    read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			priv_signal(cfg, child, fd, (int)si.ssi_signo);
		if (!(pfd[1].revents & (POLLIN | POLLHUP)))
			continue;
		if (priv_io(fd, &type, sizeof(type), 0) == -1) {
			/* The child is gone: its SIGCHLD ends us. */
			close(fd);
			fd = -1;
			continue;
		}
		if (type != PRIV_RELOAD)
			fatalx("privsep: bad message %u", type);
		priv_send_certs(fd, cfg);
	}
}

void
privsep_fork(const struct config *cfg, int *fd)
{
	int sv[2];
	pid_t pid;

	*fd = -1;
	if (geteuid() != 0)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid != 0) {
		close(sv[1]);
		priv_parent(cfg, pid, sv[0]);
	}
	close(sv[0]);
	/* Die with the parent (even kill -9) rather than run unsupervised. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	*fd = sv[1];
}

void
privsep_drop(const struct config *cfg)
{
	struct passwd *pw;
	struct group *gr;
	gid_t gid;

	if (geteuid() != 0)
		return;		/* started unprivileged: nothing to drop */
	if ((pw = getpwnam(cfg->user)) == NULL)
		fatalx("user %s: no such user (create it, or set \"user\")",
		    cfg->user);
	if (pw->pw_uid == 0)
		fatalx("user %s is root: refusing to run sessions as root",
		    cfg->user);
	gid = pw->pw_gid;
	if (cfg->group[0]) {
		if ((gr = getgrnam(cfg->group)) == NULL)
			fatalx("group %s: no such group", cfg->group);
		gid = gr->gr_gid;
	}
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("dropping privileges to %s", cfg->user);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	/* Belt and braces: root must be gone for good. */
	if (setuid(0) != -1 || geteuid() == 0)
		fatalx("privilege drop did not stick");
	log_info("running as %s (uid %u, gid %u)", cfg->user,
	    (unsigned)pw->pw_uid, (unsigned)gid);
}

void
privsep_request_certs(int fd)
{
	uint32_t type = PRIV_RELOAD;

	if (priv_io(fd, &type, sizeof(type), 1) == -1)
		log_warn("privsep: request");
}

static char *
priv_recv_blob(int fd, size_t *len)
{
	uint32_t n;
	char *p;

	if (priv_io(fd, &n, sizeof(n), 0) == -1 || n > PRIV_BLOB_MAX)
		fatalx("privsep: bad certificate message");
	p = xmalloc((size_t)n + 1);
	if (priv_io(fd, p, n, 0) == -1)
		fatalx("privsep: short certificate message");
	p[n] = '\0';
	*len = n;
	return p;
}

int
privsep_recv_certs(int fd, struct tls_pem *pems, unsigned max)
{
	uint32_t hdr[2];
	unsigned i;

	if (priv_io(fd, hdr, sizeof(hdr), 0) == -1)
		fatalx("privsep: parent gone");
	if (hdr[0] != PRIV_CERTS || hdr[1] > max)
		fatalx("privsep: bad message %u/%u", hdr[0], hdr[1]);
	for (i = 0; i < hdr[1]; i++) {
		pems[i].chain = priv_recv_blob(fd, &pems[i].chain_len);
		pems[i].key = priv_recv_blob(fd, &pems[i].key_len);
	}
	return (int)hdr[1];
}
