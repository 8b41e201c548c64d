/*
 * sluiced.c -- the daemon's start-up: options, configuration, spool
 * recovery, listeners, worker threads, signals and shutdown.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "config.h"
#include "local.h"
#include "log.h"
#include "queue.h"
#include "spool.h"
#include "util.h"
#include "worker.h"

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

static void
serve(const struct config *cfg)
{
	char err[CONFIG_ERR_MAX];
	unsigned queued, removed;
	sigset_t set;
	int sig;

	if (spool_init(cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	spool_recover(&queued, &removed);
	log_info("spool %s: %u queued, %u partial removed", cfg->spool_dir,
	    queued, removed);
	if (local_init(cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (workers_bind(cfg, err, sizeof(err)) == -1)
		fatalx("%s", err);
	signals_block(&set);
	spool_start();
	queue_start(cfg);
	workers_start(cfg);
	log_info("daemon started, listening on %s%s", cfg->listeners[0].address,
	    cfg->nlisteners > 1 ? " and more" : "");
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* XXX: reload arrives with the operations milestone. */
			log_info("SIGHUP: reload not supported yet, ignored");
			continue;
		}
		break;
	}
	log_info("shutting down (signal %d)", sig);
	workers_stop();
	queue_stop();
	spool_stop();
}

int
main(int argc, char *argv[])
{
	const char *file = "/etc/sluice/sluice.conf";
	char err[CONFIG_ERR_MAX];
	struct config *cfg;
	int ch, debug = 0, check = 0, verbose = 0;

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
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads");
	serve(cfg);
	free(cfg);
	return 0;
}
