/*
 * sluicectl.c -- the administrator's tool.  M1: "queue list" shows what
 * the spool holds, as a table (like Postfix's mailq) or as JSON.  It only
 * reads queue files; a file being written or damaged is reported and
 * skipped.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "spool_file.h"
#include "util.h"

static void
usage(void)
{
	fprintf(stderr, "usage: sluicectl [-f file] queue list [--json]\n");
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

int
main(int argc, char *argv[])
{
	const char *file = "/etc/sluice/sluice.conf";
	char err[CONFIG_ERR_MAX];
	struct config *cfg;
	int ch, json = 0;

	while ((ch = getopt(argc, argv, "+f:")) != -1) {
		if (ch != 'f')
			usage();
		file = optarg;
	}
	argc -= optind;
	argv += optind;
	if (argc < 2 || strcmp(argv[0], "queue") != 0 ||
	    strcmp(argv[1], "list") != 0)
		usage();
	if (argc == 3 && strcmp(argv[2], "--json") == 0)
		json = 1;
	else if (argc != 2)
		usage();
	cfg = xcalloc(1, sizeof(*cfg));
	if (config_load(cfg, file, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		free(cfg);
		return 1;
	}
	ch = queue_list(cfg, json);
	free(cfg);
	return ch;
}
