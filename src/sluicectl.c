/*
 * sluicectl.c -- the administrator's tool.  M1: "queue list" shows what
 * the spool holds, as a table (like Postfix's mailq) or as JSON.  It only
 * reads queue files; a file being written or damaged is reported and
 * skipped.  M3: "user add|passwd|del|list" edit the SMTP AUTH password
 * file (auth.c); passwords come from stdin, never from argv, which any
 * local user can read in /proc.
 */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "spool_file.h"
#include "util.h"

/* What the options chose; the config is loaded only if a command needs it. */
struct ctl_ctx {
	const char	*conf_file;	/* -f */
	const char	*passwd_file;	/* -p, else the config's passwd_file */
	struct config	*cfg;
};

/* "NOUN VERB [ARG...]": min_args..max_args words follow the verb. */
struct ctl_cmd {
	const char	*noun;
	const char	*verb;
	int		 min_args;
	int		 max_args;
	int		(*fn)(struct ctl_ctx *, int, char **);
};

static void	usage(void);
static struct config *ctl_config(struct ctl_ctx *);
static const char *ctl_passwd_file(struct ctl_ctx *);
static void	ctl_tty_restore_cb(int);
static int	ctl_read_line(const char *, char *, size_t);
static int	ctl_read_password(char *, size_t);
static int	cmd_queue_list(struct ctl_ctx *, int, char **);
static int	cmd_user_set(struct ctl_ctx *, const char *, int);
static int	cmd_user_add(struct ctl_ctx *, int, char **);
static int	cmd_user_passwd(struct ctl_ctx *, int, char **);
static int	cmd_user_del(struct ctl_ctx *, int, char **);
static int	cmd_user_list(struct ctl_ctx *, int, char **);

static const struct ctl_cmd ctl_cmds[] = {
	{ "queue",	"list",		0, 1, cmd_queue_list },
	{ "user",	"add",		1, 1, cmd_user_add },
	{ "user",	"passwd",	1, 1, cmd_user_passwd },
	{ "user",	"del",		1, 1, cmd_user_del },
	{ "user",	"list",		0, 0, cmd_user_list },
};

/* The terminal's settings while echo is off (restored on a signal). */
static struct termios	ctl_tty_saved;
static volatile sig_atomic_t ctl_tty_off;

static void
usage(void)
{
	fprintf(stderr,
	    "usage: sluicectl [-f conf] queue list [--json]\n"
	    "       sluicectl [-f conf] [-p passwd_file] user add|passwd|del "
	    "NAME\n"
	    "       sluicectl [-f conf] [-p passwd_file] user list\n"
	    "user add/passwd read the password from stdin (first line).\n");
	exit(2);
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The queue ids in dir, sorted (ids sort in arrival order). */
static char **
queue_ids(const char *dir, size_t *n)
{
	char **ids = NULL;
	struct dirent *de;
	DIR *d;

	*n = 0;
	if ((d = opendir(dir)) == NULL) {
		perror(dir);
		exit(1);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		ids = xreallocarray(ids, *n + 1, sizeof(*ids));
		ids[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n)
		qsort(ids, *n, sizeof(*ids), id_cmp);
	return ids;
}

static void
json_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

static void
list_json(FILE *fp, const struct spool_env *e, int first)
{
	size_t i;

	fprintf(fp, "%s\n  {\"id\": ", first ? "" : ",");
	json_str(fp, e->id);
	fprintf(fp, ", \"arrival\": %" PRIu64 ".%06" PRIu64 ", \"size\": %"
	    PRIu64 ", \"sender\": ", e->arrival_usec / 1000000,
	    e->arrival_usec % 1000000, e->msg_len);
	json_str(fp, e->from);
	fprintf(fp, ", \"recipients\": [");
	for (i = 0; i < e->nrcpts; i++) {
		fprintf(fp, "%s{\"address\": ", i ? ", " : "");
		json_str(fp, e->rcpts[i].addr);
		fprintf(fp, ", \"state\": ");
		json_str(fp, rcpt_state_name(e->rcpts[i].state));
		fprintf(fp, ", \"reply\": ");
		if (e->rcpts[i].reply)
			json_str(fp, e->rcpts[i].reply);
		else
			fprintf(fp, "null");
		fprintf(fp, "}");
	}
	fprintf(fp, "]}");
}

/* Postfix mailq's shape: id, size, arrival, sender; then recipients. */
static void
list_text(FILE *fp, const struct spool_env *e)
{
	char when[64];
	time_t t = (time_t)(e->arrival_usec / 1000000);
	struct tm tm;
	size_t i;

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
	fprintf(fp, "%-16s %8" PRIu64 " %s  <%s>\n", e->id, e->msg_len, when,
	    e->from);
	for (i = 0; i < e->nrcpts; i++) {
		fprintf(fp, "%43s<%s> (%s)\n", "", e->rcpts[i].addr,
		    rcpt_state_name(e->rcpts[i].state));
		if (e->rcpts[i].reply)
			fprintf(fp, "%45s%s\n", "", e->rcpts[i].reply);
	}
	fputc('\n', fp);
}

static int
queue_list(const struct config *cfg, int json)
{
	char dir[4200], path[4300], err[256];
	size_t n, i, shown = 0;
	char **ids;

	snprintf(dir, sizeof(dir), "%s/queue", cfg->spool_dir);
	ids = queue_ids(dir, &n);
	if (json)
		printf("[");
	for (i = 0; i < n; i++) {
		struct spool_env e;

		snprintf(path, sizeof(path), "%s/%s", dir, ids[i]);
		if (spool_env_read(path, &e, err, sizeof(err)) == -1) {
			fprintf(stderr, "sluicectl: %s: %s\n", ids[i], err);
		} else {
			if (json)
				list_json(stdout, &e, shown == 0);
			else
				list_text(stdout, &e);
			shown++;
			spool_env_free(&e);
		}
		free(ids[i]);
	}
	free(ids);
	if (json)
		printf("%s]\n", shown ? "\n" : "");
	else if (shown == 0)
		printf("Mail queue is empty\n");
	else
		printf("-- %zu message%s\n", shown, shown == 1 ? "" : "s");
	return 0;
}

/* The configuration, loaded on first use; exits on error. */
static struct config *
ctl_config(struct ctl_ctx *ctx)
{
	char err[CONFIG_ERR_MAX];

	if (ctx->cfg != NULL)
		return ctx->cfg;
	ctx->cfg = xcalloc(1, sizeof(*ctx->cfg));
	if (config_load(ctx->cfg, ctx->conf_file, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	return ctx->cfg;
}

static int
cmd_queue_list(struct ctl_ctx *ctx, int argc, char **argv)
{
	int json = 0;

	if (argc == 1) {
		if (strcmp(argv[0], "--json") != 0)
			usage();
		json = 1;
	}
	return queue_list(ctl_config(ctx), json);
}

/* -p wins; else the config's passwd_file, which must be set. */
static const char *
ctl_passwd_file(struct ctl_ctx *ctx)
{
	const struct config *cfg;

	if (ctx->passwd_file != NULL)
		return ctx->passwd_file;
	cfg = ctl_config(ctx);
	if (cfg->passwd_file[0] == '\0') {
		fprintf(stderr, "sluicectl: %s: passwd_file is not set "
		    "(or use -p FILE)\n", ctx->conf_file);
		exit(1);
	}
	return cfg->passwd_file;
}

static void
ctl_tty_restore_cb(int sig)
{
	if (ctl_tty_off)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * One line from stdin without its newline; with prompt (a terminal),
 * echo is off meanwhile.  A line that does not fit is refused.
 */
static int
ctl_read_line(const char *prompt, char *buf, size_t len)
{
	struct termios t;
	size_t n;
	int ok;

	if (prompt != NULL) {
		fputs(prompt, stderr);
		if (tcgetattr(STDIN_FILENO, &ctl_tty_saved) == 0) {
			t = ctl_tty_saved;
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			ctl_tty_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0;
		}
	}
	ok = fgets(buf, (int)len, stdin) != NULL;
	if (ctl_tty_off) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_tty_saved);
		ctl_tty_off = 0;
		fputc('\n', stderr);
	}
	if (!ok)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(stdin))
		return -1;		/* longer than the buffer */
	return 0;
}

/* From a terminal: asked twice, without echo.  Else: stdin's first line. */
static int
ctl_read_password(char *pass, size_t len)
{
	char again[AUTH_PASS_MAX + 2];
	int tty = isatty(STDIN_FILENO), rc = 0;

	if (tty) {
		signal(SIGINT, ctl_tty_restore_cb);
		signal(SIGTERM, ctl_tty_restore_cb);
	}
	if (ctl_read_line(tty ? "Password: " : NULL, pass, len) == -1) {
		fprintf(stderr, "sluicectl: no password read (at most %d "
		    "octets)\n", AUTH_PASS_MAX - 1);
		rc = -1;
	} else if (tty && (ctl_read_line("Retype password: ", again,
	    sizeof(again)) == -1 || strcmp(pass, again) != 0)) {
		fprintf(stderr, "sluicectl: passwords do not match\n");
		rc = -1;
	}
	explicit_bzero(again, sizeof(again));
	if (rc == -1)
		explicit_bzero(pass, len);
	return rc;
}

static int
cmd_user_set(struct ctl_ctx *ctx, const char *user, int must_exist)
{
	char pass[AUTH_PASS_MAX + 2], err[1024];
	const char *path = ctl_passwd_file(ctx);
	int rc;

	if (ctl_read_password(pass, sizeof(pass)) == -1)
		return 1;
	rc = auth_file_set(path, user, pass, must_exist, err, sizeof(err));
	explicit_bzero(pass, sizeof(pass));
	if (rc == -1) {
		fprintf(stderr, "sluicectl: %s\n", err);
		return 1;
	}
	return 0;
}

static int
cmd_user_add(struct ctl_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	return cmd_user_set(ctx, argv[0], 0);
}

static int
cmd_user_passwd(struct ctl_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	return cmd_user_set(ctx, argv[0], 1);
}

static int
cmd_user_del(struct ctl_ctx *ctx, int argc, char **argv)
{
	char err[1024];

	(void)argc;
	if (auth_file_del(ctl_passwd_file(ctx), argv[0], err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "sluicectl: %s\n", err);
		return 1;
	}
	return 0;
}

static int
cmd_user_list(struct ctl_ctx *ctx, int argc, char **argv)
{
	char err[1024];

	(void)argc;
	(void)argv;
	if (auth_file_list(ctl_passwd_file(ctx), stdout, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "sluicectl: %s\n", err);
		return 1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct ctl_ctx ctx = { "/etc/sluice/sluice.conf", NULL, NULL };
	const struct ctl_cmd *c;
	size_t i;
	int ch, rc;

	while ((ch = getopt(argc, argv, "+f:p:")) != -1) {
		if (ch == 'f')
			ctx.conf_file = optarg;
		else if (ch == 'p')
			ctx.passwd_file = optarg;
		else
			usage();
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		usage();
	for (i = 0; i < nitems(ctl_cmds); i++) {
		c = &ctl_cmds[i];
		if (strcmp(argv[0], c->noun) == 0 &&
		    strcmp(argv[1], c->verb) == 0)
			break;
	}
	if (i == nitems(ctl_cmds) || argc - 2 < c->min_args ||
	    argc - 2 > c->max_args)
		usage();
	rc = c->fn(&ctx, argc - 2, argv + 2);
	free(ctx.cfg);
	return rc;
}
