/*
 * sluiced.c -- the daemon's start-up: options, configuration, spool
 * recovery, listeners, worker threads, signals and shutdown.
 */
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "async.h"
#include "auth.h"
#include "config.h"
#include "limit.h"
#include "local.h"
#include "log.h"
#include "privsep.h"
#include "queue.h"
#include "smtp_server.h"
#include "spool.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define ASYNC_THREADS	4	/* password checks, LMTP probes, Maildirs */
#define MAIN_TICK_SECS	5	/* cap counters saved this often */

static void
usage(void)
{
	fprintf(stderr, "usage: sluiced [-dnv] [-f file]\n"
	    "  -f file  configuration file (default /etc/sluice/sluice.conf)\n"
	    "  -d       stay in the foreground, log to stderr\n"
	    "  -n       check the configuration and exit\n"
	    "  -v       with -n: print the effective configuration\n");
	exit(2);
}

/* Block the signals we handle so that only sigwait() sees them. */
static void
signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Build the TLS context from PEM text and make it current. */
static int
tls_install(const struct config *cfg, struct tls_pem *pems, int n)
{
	char err[512];
	SSL_CTX *ctx;
	int i;

	ctx = tls_server_ctx(pems, (unsigned)n, cfg->tls_ciphers,
	    (int)cfg->tls_request_client_cert, err, sizeof(err));
	for (i = 0; i < n; i++)
		tls_pem_free(&pems[i]);
	if (ctx == NULL) {
		log_warnx("tls: %s", err);
		return -1;
	}
	smtp_tls_set_ctx(ctx);
	return 0;
}

/* SIGHUP: certificates again, from the parent when it holds root. */
static void
tls_reload(const struct config *cfg, int privfd)
{
	struct tls_pem pems[CONFIG_CERTS_MAX];
	char err[512];
	int n;

	if (cfg->ntls_certificates == 0)
		return;
	if (privfd != -1) {
		privsep_request_certs(privfd);
		return;		/* the answer arrives on privfd */
	}
	if ((n = privsep_read_certs(cfg, pems, err, sizeof(err))) == -1) {
		log_warnx("reload: %s; keeping the old certificates", err);
		return;
	}
	if (tls_install(cfg, pems, n) == 0)
		log_info("reload: TLS certificates reloaded");
}

static void
tls_setup(const struct config *cfg)
{
	struct tls_pem pems[CONFIG_CERTS_MAX];
	char err[512];
	int n;

	if (cfg->ntls_certificates == 0)
		return;
	if ((n = privsep_read_certs(cfg, pems, err, sizeof(err))) == -1)
		fatalx("%s", err);
	if (tls_install(cfg, pems, n) == -1)
		fatalx("TLS setup failed");
}

/* Maildirs are written by the unprivileged user: give it the root. */
static void
mailbox_root_setup(const struct config *cfg)
{
	struct passwd *pw;

	if (mkdir(cfg->mailbox_root, 0700) == -1 && errno != EEXIST)
		fatal("mailbox_root %s", cfg->mailbox_root);
	if (geteuid() != 0 || (pw = getpwnam(cfg->user)) == NULL)
		return;
	if (chown(cfg->mailbox_root, pw->pw_uid, pw->pw_gid) == -1)
		fatal("chown %s", cfg->mailbox_root);
}

/* A submissions (465) listener is TLS from the first byte. */
static void
check_tls_listeners(const struct config *cfg)
{
	unsigned i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].role == LISTENER_SUBMISSIONS &&
		    cfg->ntls_certificates == 0)
			fatalx("listener %s: role submissions needs "
			    "tls_certificates", cfg->listeners[i].address);
}

/* Each session needs a socket, plus spool files and outbound
 * connections: ask for enough descriptors for max_sessions. */
static void
raise_fd_limit(const struct config *cfg)
{
	rlim_t want = (rlim_t)cfg->max_sessions * 2 +
	    (rlim_t)cfg->outbound_concurrency + 1024;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_max < want && geteuid() == 0)
		rl.rlim_max = want;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
		    (unsigned long long)rl.rlim_cur);
	else if (rl.rlim_cur < want)
		log_warnx("only %llu descriptors for max_sessions %u",
		    (unsigned long long)rl.rlim_cur, cfg->max_sessions);
}

/* Everything that needs root: spool, listeners, keys; then drop it. */
static void
setup_privileged(const struct config *cfg)
{
	char err[CONFIG_ERR_MAX];
	unsigned queued, removed;

	check_tls_listeners(cfg);
	raise_fd_limit(cfg);
	if (spool_init(cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	spool_recover(&queued, &removed);
	log_info("spool %s: %u queued, %u partial removed", cfg->spool_dir,
	    queued, removed);
	if (local_init(cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (workers_bind(cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	tls_setup(cfg);
	if (geteuid() == 0 && spool_chown(cfg) == -1)
		fatal("chown %s", cfg->spool_dir);
	if (cfg->nlocal_domains && !cfg->lmtp_address[0])
		mailbox_root_setup(cfg);
	privsep_drop(cfg);
	if (cfg->nlocal_domains && !cfg->lmtp_address[0] &&
	    access(cfg->mailbox_root, W_OK | X_OK) == -1)
		fatal("mailbox_root %s: not writable by uid %u",
		    cfg->mailbox_root, (unsigned)geteuid());
	if (cfg->passwd_file[0] &&
	    auth_init(cfg->passwd_file, err, sizeof(err)) == -1)
		fatalx("%s", err);
}

static void
limits_start(const struct config *cfg, char *path, size_t len)
{
	struct limit_params lp;

	/* Through the open spool directory: after the privilege drop the
	 * path to it may not be walkable by the daemon's user. */
	snprintf(path, len, "/proc/self/fd/%d/counters", spool_dir_fd());
	memset(&lp, 0, sizeof(lp));
	lp.max_sessions_per_ip = cfg->max_sessions_per_ip;
	lp.max_connect_rate = cfg->max_connect_rate;
	lp.auth_fail_max = cfg->auth_fail_max;
	lp.auth_fail_window = cfg->auth_fail_window;
	lp.auth_ban_time = cfg->auth_ban_time;
	lp.counters_path = path;
	limit_init(&lp);
}

/* Wait for signals, reload answers and the periodic counter save. */
static int
main_loop(const struct config *cfg, int privfd, const sigset_t *set)
{
	struct tls_pem pems[CONFIG_CERTS_MAX];
	struct signalfd_siginfo si;
	int sfd, n;

	if ((sfd = signalfd(-1, set, SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = privfd, .events = POLLIN },
		};

		n = poll(pfd, privfd != -1 ? 2 : 1, MAIN_TICK_SECS * 1000);
		if (n == 0) {
			limit_save();
			continue;
		}
		if (n == -1)
			continue;	/* EINTR */
		if (privfd != -1 && (pfd[1].revents & (POLLIN | POLLHUP))) {
			n = privsep_recv_certs(privfd, pems, CONFIG_CERTS_MAX);
			if (tls_install(cfg, pems, n) == 0)
				log_info("reload: TLS certificates reloaded");
		}
		if (!(pfd[0].revents & POLLIN) ||
		    read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo != SIGHUP) {
			close(sfd);
			return (int)si.ssi_signo;
		}
		tls_reload(cfg, privfd);
	}
}

static void
serve(const struct config *cfg, int privfd)
{
	char counters[4200];
	sigset_t set;
	int sig;

	setup_privileged(cfg);
	signals_block(&set);
	limits_start(cfg, counters, sizeof(counters));
	async_start(ASYNC_THREADS);
	spool_start();
	queue_start(cfg);
	workers_start(cfg);
	log_info("daemon started, listening on %s%s", cfg->listeners[0].address,
	    cfg->nlisteners > 1 ? " and more" : "");
	sig = main_loop(cfg, privfd, &set);
	log_info("shutting down (signal %d)", sig);
	workers_stop();
	queue_stop();
	spool_stop();
	async_stop();
	limit_shutdown();
}

int
main(int argc, char *argv[])
{
	const char *file = "/etc/sluice/sluice.conf";
	char err[CONFIG_ERR_MAX];
	struct config *cfg;
	int ch, debug = 0, check = 0, verbose = 0, privfd;

	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			file = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	cfg = xcalloc(1, sizeof(*cfg));
	if (config_load(cfg, file, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		free(cfg);
		return 1;
	}
	if (check) {
		if (verbose)
			config_dump(cfg, stdout);
		fprintf(stderr, "configuration OK\n");
		free(cfg);
		return 0;
	}
	log_init("sluiced", debug, cfg->log_level);
	if (!debug && daemon(1, 0) == -1)
		fatal("daemon");
	privsep_fork(cfg, &privfd);
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads");
	serve(cfg, privfd);
	free(cfg);
	return 0;
}
