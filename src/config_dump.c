/*
 * config_dump.c -- print a struct config as a file that loads back to
 * it (`sluiced -n -v`), every key from config_params[] with its one-line
 * description, defaults included.  Run by the parent or sluicectl on a
 * configuration config.c has already checked; secrets (PARAM_F_SECRET)
 * are printed as CONFIG_SECRET_MASK, never as they are.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

#define CONFIG_INDENT_MAX	8	/* tabs: a list of groups of lists */

static void	config_dump_param(const struct config_param *, const void *,
		    FILE *, const char *);

/* A libconfig string literal: quotes, backslashes, controls escaped. */
static void
config_dump_string(const char *s, FILE *fp)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			fprintf(fp, "\\x%02x", (unsigned char)*s);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

static int
config_is_zero(const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len > 0 && b[len - 1] == 0)
		len--;
	return len == 0;
}

/* The members of one group, each on its own line at indent. */
static void
config_dump_entry(const struct config_param *p, const void *entry,
    FILE *fp, const char *indent)
{
	const struct config_schema *sc = p->schema;
	size_t k;

	for (k = 0; k < sc->nparams; k++)
		if (p->type == PARAM_LIST ||
		    !(sc->params[k].flags & PARAM_F_LIST_ONLY))
			config_dump_param(&sc->params[k], entry, fp, indent);
}

/* A list at indent: its entries one tab in, a group's members two. */
static void
config_dump_list(const struct config_param *p, const void *base, FILE *fp,
    const char *indent)
{
	char in1[CONFIG_INDENT_MAX + 1], in2[CONFIG_INDENT_MAX + 1];
	const char *f = (const char *)base + p->off;
	unsigned i, n = config_fetch_count(base, p);

	if (n == 0) {
		fprintf(fp, "%s%s = %s;\n", indent, p->name,
		    p->type == PARAM_LIST ? "()" : "[]");
		return;
	}
	snprintf(in1, sizeof(in1), "%s\t", indent);
	snprintf(in2, sizeof(in2), "%s\t\t", indent);
	fprintf(fp, "%s%s = %s\n", indent, p->name,
	    p->type == PARAM_LIST ? "(" : "[");
	for (i = 0; i < n; i++) {
		if (p->type == PARAM_LIST) {
			fprintf(fp, "%s{\n", in1);
			config_dump_entry(p, f + i * p->elem, fp, in2);
			fprintf(fp, "%s}", in1);
		} else {
			fputs(in1, fp);
			config_dump_string(f + i * p->elem, fp);
		}
		fputs(i + 1 < n ? ",\n" : "\n", fp);
	}
	fprintf(fp, "%s%s;\n", indent, p->type == PARAM_LIST ? ")" : "]");
}

static void
config_dump_group(const struct config_param *p, const void *base, FILE *fp)
{
	const char *f = (const char *)base + p->off;

	if (config_is_zero(f, p->size)) {
		fprintf(fp, "# %s is not set\n", p->name);
		return;
	}
	fprintf(fp, "%s = {\n", p->name);
	config_dump_entry(p, f, fp, "\t");
	fputs("};\n", fp);
}

/* Groups are top-level keys; lists of strings may sit in a group too. */
static void
config_dump_param(const struct config_param *p, const void *base, FILE *fp,
    const char *indent)
{
	char buf[CONFIG_VALUE_MAX];
	const char *str;
	uint64_t v;

	if (*indent == '\0')
		fprintf(fp, "\n# %s\n", p->desc);
	switch (p->type) {
	case PARAM_STRLIST:
	case PARAM_LIST:
		config_dump_list(p, base, fp, indent);
		return;
	case PARAM_GROUP:
		config_dump_group(p, base, fp);
		return;
	default:
		break;
	}
	fprintf(fp, "%s%s = ", indent, p->name);
	switch (p->type) {
	case PARAM_STRING:
	case PARAM_ADDRESS:
		str = (const char *)base + p->off;
		if ((p->flags & PARAM_F_SECRET) && *str != '\0')
			str = CONFIG_SECRET_MASK;
		config_dump_string(str, fp);
		break;
	case PARAM_BOOL:
		fputs(config_fetch(base, p) ? "true" : "false", fp);
		break;
	case PARAM_ENUM:
		config_dump_string(config_enum_name(p->names,
		    (unsigned)config_fetch(base, p)), fp);
		break;
	default:
		v = config_fetch(base, p);
		config_fmt_value(p, v, buf, sizeof(buf));
		/* Suffixed or past 32 bits: a string (config_check_ints). */
		if (strspn(buf, "0123456789") != strlen(buf) || v > INT32_MAX)
			config_dump_string(buf, fp);
		else
			fputs(buf, fp);
		break;
	}
	fputs(";\n", fp);
}

void
config_dump(const struct config *cfg, FILE *fp)
{
	size_t i;

	fprintf(fp, "# effective configuration");
	if (cfg->file[0] != '\0')
		fprintf(fp, " read from %s", cfg->file);
	fputc('\n', fp);
	for (i = 0; i < config_nparams; i++)
		config_dump_param(&config_params[i], cfg, fp, "");
}
