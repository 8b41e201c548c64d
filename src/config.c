/*
 * config.c -- read the configuration file into struct config.
 * Run by the parent at start-up (and by `sluiced -n`), before privileges
 * are dropped.  The file is the operator's, not a peer's, but every key,
 * type and bound is checked: all of them come from one table,
 * config_params[], which loading, defaults and config_dump() all read.
 * Adding a key is adding a row (and a field in config.h).
 *
 * Every error reads "FILE:LINE: key: message", or "FILE: message" when
 * the file cannot be read at all.
 */
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define CONFIG_FILE_MAX		(1024 * 1024)	/* far above any real file */
#define CONFIG_SCOPE_MAX	32
#define CONFIG_VALUE_MAX	64		/* a formatted number */

#define KIB			1024ULL
#define MIB			(1024ULL * KIB)
#define GIB			(1024ULL * MIB)

enum param_type {
	PARAM_STRING,		/* min/max bound the length */
	PARAM_UINT,
	PARAM_SIZE,		/* octets, or "25M" (K, M, G; binary) */
	PARAM_DURATION,		/* seconds, or "5m" (s, m, h, d) */
	PARAM_ENUM,		/* a string from names[] */
	PARAM_ADDRESS,		/* "IP:PORT"; also fills host and port */
	PARAM_LISTENERS,	/* a list of groups read with listener_params */
};

#define PARAM_F_REQUIRED	0x01	/* no default: the key must be set */

struct config_enum {
	const char	*name;
	unsigned	 value;
};

struct config_param {
	const char	*name;		/* file key == struct field */
	enum param_type	 type;
	const char	*def;		/* in the file's syntax; NULL: none */
	uint64_t	 min;
	uint64_t	 max;
	size_t		 off;		/* of the field in its struct */
	size_t		 size;		/* of the field */
	int		 flags;
	const struct config_enum *names; /* PARAM_ENUM; ends with NULL */
	const char	*(*check)(const char *); /* PARAM_STRING: NULL or why */
	const char	*ref;		/* cited by bound errors */
	const char	*desc;		/* one line, for docs and dumps */
};

struct config_ctx {
	const char	*path;
	char		*err;
	size_t		 errlen;
	char		 scope[CONFIG_SCOPE_MAX]; /* "listeners[0]" or "" */
};

/* Fields are stored through memcpy by size; enums must be this wide. */
_Static_assert(sizeof(enum spool_sync_mode) == sizeof(unsigned), "enum");
_Static_assert(sizeof(enum listener_role) == sizeof(unsigned), "enum");
_Static_assert(sizeof(int) == sizeof(unsigned), "int");

static const char *config_valid_hostname(const char *);
static const char *config_valid_path(const char *);
static int	config_load_group(struct config_ctx *,
		    const config_setting_t *, const struct config_param *,
		    size_t, void *);
static void	config_dump_group(const struct config_param *, size_t,
		    const void *, FILE *, const char *);

static const struct config_enum config_sync_names[] = {
	{ "syncfs",		SPOOL_SYNC_SYNCFS },
	{ "fsync",		SPOOL_SYNC_FSYNC },
	{ NULL,			0 },
};

static const struct config_enum config_role_names[] = {
	{ "smtp",		LISTENER_SMTP },
	{ "submission",		LISTENER_SUBMISSION },
	{ "submissions",	LISTENER_SUBMISSIONS },
	{ NULL,			0 },
};

static const struct config_enum config_log_names[] = {
	{ "warn",		LOG_LVL_WARN },
	{ "info",		LOG_LVL_INFO },
	{ "debug",		LOG_LVL_DEBUG },
	{ NULL,			0 },
};

#define FIELD(type, m)	.off = offsetof(type, m),			\
			.size = sizeof(((type *)0)->m)
#define CFG(m)		FIELD(struct config, m)
#define LSN(m)		FIELD(struct config_listener, m)

/* The keys of one listeners entry. */
static const struct config_param listener_params[] = {
	{ .name = "address", .type = PARAM_ADDRESS, .min = 1, .max = 65535,
	  LSN(address), .flags = PARAM_F_REQUIRED,
	  .desc = "numeric \"IPv4:PORT\" or \"[IPv6]:PORT\" to listen on" },
	{ .name = "role", .type = PARAM_ENUM, .def = "smtp", LSN(role),
	  .names = config_role_names,
	  .desc = "smtp (MX, port 25), submission (587), submissions (465)" },
};

/*
 * Every top-level key.  hostname's default is computed (the FQDN), so
 * its def is NULL; the listeners default is one smtp listener.
 */
static const struct config_param config_params[] = {
	{ .name = "hostname", .type = PARAM_STRING, .min = 1, .max = 255,
	  CFG(hostname), .check = config_valid_hostname,
	  .desc = "FQDN used in the greeting, EHLO and Received:" },
	{ .name = "spool_dir", .type = PARAM_STRING, .def = "./var/spool",
	  .min = 1, .max = 4095, CFG(spool_dir), .check = config_valid_path,
	  .desc = "spool directory; relative to the working directory" },
	{ .name = "workers", .type = PARAM_UINT, .def = "0", .max = 64,
	  CFG(workers), .desc = "worker threads; 0 is one per CPU" },
	{ .name = "spool_sync", .type = PARAM_ENUM, .def = "syncfs",
	  CFG(spool_sync), .names = config_sync_names,
	  .desc = "syncfs: one syncfs() per batch; fsync: per file" },
	{ .name = "listeners", .type = PARAM_LISTENERS,
	  .def = "127.0.0.1:2525", .max = CONFIG_LISTENERS_MAX,
	  CFG(listeners), .desc = "addresses to accept SMTP on" },
	{ .name = "max_message_size", .type = PARAM_SIZE, .def = "25M",
	  .min = 10 * KIB, .max = 2 * GIB, CFG(max_message_size),
	  .desc = "largest message accepted, advertised with SIZE" },
	{ .name = "max_recipients", .type = PARAM_UINT, .def = "1000",
	  .min = 100, .max = 100000, CFG(max_recipients),
	  .ref = "RFC 5321 4.5.3.1.8", .desc = "RCPT TO per transaction" },
	{ .name = "max_command_line", .type = PARAM_UINT, .def = "512",
	  .min = 512, .max = 65536, CFG(max_command_line),
	  .ref = "RFC 5321 4.5.3.1.4",
	  .desc = "longest command line in octets, CRLF included" },
	{ .name = "max_text_line", .type = PARAM_UINT, .def = "1000",
	  .min = 1000, .max = 1000000, CFG(max_text_line),
	  .ref = "RFC 5321 4.5.3.1.6",
	  .desc = "longest message text line in octets, CRLF included" },
	{ .name = "max_errors", .type = PARAM_UINT, .def = "20", .min = 1,
	  .max = 1000, CFG(max_errors),
	  .desc = "bad commands in a session before 421 and hang-up" },
	{ .name = "max_sessions", .type = PARAM_UINT, .def = "10000",
	  .min = 1, .max = 1000000, CFG(max_sessions),
	  .desc = "concurrent SMTP sessions, all listeners together" },
	{ .name = "command_timeout", .type = PARAM_DURATION, .def = "5m",
	  .min = 1, .max = 3600, CFG(command_timeout),
	  .ref = "RFC 5321 4.5.3.2.7",
	  .desc = "idle time waiting for a command" },
	{ .name = "data_timeout", .type = PARAM_DURATION, .def = "3m",
	  .min = 1, .max = 3600, CFG(data_timeout),
	  .ref = "RFC 5321 4.5.3.2.5", .desc = "idle time inside DATA/BDAT" },
	{ .name = "greeting_delay", .type = PARAM_DURATION, .def = "0",
	  .max = 300, CFG(greeting_delay),
	  .desc = "wait before the 220 banner; early talkers are rejected" },
	{ .name = "log_level", .type = PARAM_ENUM, .def = "info",
	  CFG(log_level), .names = config_log_names,
	  .desc = "warn, info or debug" },
};

/*
 * Write "FILE:LINE: [scope.]key: message" into ctx->err.  key may be NULL
 * for a message about the scope itself.
 */
static int __attribute__((format(printf, 4, 5)))
config_err(struct config_ctx *ctx, const config_setting_t *s,
    const char *key, const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	size_t n;
	va_list ap;
	int len;

	len = snprintf(ctx->err, ctx->errlen, "%s:%u: %s%s%s%s",
	    file ? file : ctx->path, (unsigned)config_setting_source_line(s),
	    ctx->scope, *ctx->scope && key ? "." : "", key ? key : "",
	    *ctx->scope || key ? ": " : "");
	n = len < 0 ? 0 : (size_t)len;
	if (n < ctx->errlen) {
		va_start(ap, fmt);
		vsnprintf(ctx->err + n, ctx->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const struct config_param *
config_param_find(const struct config_param *tab, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(tab[i].name, name) == 0)
			return &tab[i];
	return NULL;
}

static void
config_store(void *base, const struct config_param *p, uint64_t v)
{
	char *f = (char *)base + p->off;

	if (p->size == sizeof(uint64_t)) {
		memcpy(f, &v, sizeof(v));
	} else {
		unsigned u = (unsigned)v;

		assert(p->size == sizeof(u) && v <= UINT32_MAX);
		memcpy(f, &u, sizeof(u));
	}
}

static uint64_t
config_fetch(const void *base, const struct config_param *p)
{
	const char *f = (const char *)base + p->off;
	uint64_t v;
	unsigned u;

	if (p->size == sizeof(v)) {
		memcpy(&v, f, sizeof(v));
		return v;
	}
	memcpy(&u, f, sizeof(u));
	return u;
}

/* Digits with an optional unit suffix from units[] scaled by mult[]. */
static int
config_parse_unit(const char *s, const char *units, const uint64_t *mult,
    uint64_t *out)
{
	size_t len = strlen(s);
	const char *u;
	uint64_t m = 1, v;

	if (len > 0 && (u = strchr(units, s[len - 1])) != NULL) {
		m = mult[u - units];
		len--;
	}
	if (parse_u64n(s, len, 0, UINT64_MAX / m, &v) == -1)
		return -1;
	*out = v * m;
	return 0;
}

static int
config_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { KIB, MIB, GIB, KIB, MIB, GIB };

	return config_parse_unit(s, "KMGkmg", mult, out);
}

static int
config_parse_duration(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400 };

	return config_parse_unit(s, "smhd", mult, out);
}

/* The largest unit that divides v exactly, as config_parse_unit reads. */
static void
config_fmt_unit(char *buf, size_t len, uint64_t v, const char *units,
    const uint64_t *mult, size_t nunits)
{
	size_t i;

	/* A space unit means "no suffix": sizes print plain octets. */
	for (i = nunits; i-- > 0; ) {
		if (v != 0 && units[i] != ' ' && v % mult[i] == 0) {
			snprintf(buf, len, "%llu%c",
			    (unsigned long long)(v / mult[i]), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void
config_fmt_value(const struct config_param *p, uint64_t v, char *buf,
    size_t len)
{
	static const uint64_t size_mult[] = { 1, KIB, MIB, GIB };
	static const uint64_t dur_mult[] = { 1, 60, 3600, 86400 };

	if (p->type == PARAM_SIZE)
		config_fmt_unit(buf, len, v, " KMG", size_mult, 4);
	else if (p->type == PARAM_DURATION)
		config_fmt_unit(buf, len, v, "smhd", dur_mult, 4);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* A number from a string in the type's own syntax (defaults use it). */
static int
config_parse_value(const struct config_param *p, const char *s,
    uint64_t *out)
{
	switch (p->type) {
	case PARAM_SIZE:
		return config_parse_size(s, out);
	case PARAM_DURATION:
		return config_parse_duration(s, out);
	default:
		return parse_u64(s, 0, UINT64_MAX, out);
	}
}

static const char *
config_type_error(const struct config_param *p)
{
	switch (p->type) {
	case PARAM_SIZE:
		return "expected a size: octets or a string like \"25M\" "
		    "(K, M, G)";
	case PARAM_DURATION:
		return "expected a duration: seconds or a string like \"5m\" "
		    "(s, m, h, d)";
	case PARAM_STRING:
	case PARAM_ADDRESS:
		return "expected a string";
	default:
		return "expected an unsigned integer";
	}
}

static int
config_err_below(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, const char *have)
{
	char lim[CONFIG_VALUE_MAX];

	config_fmt_value(p, p->min, lim, sizeof(lim));
	return config_err(ctx, s, p->name, "%s is below the minimum %s%s%s%s",
	    have, lim, p->ref ? " (" : "", p->ref ? p->ref : "",
	    p->ref ? ")" : "");
}

/* The number in s, checked against the row's bounds. */
static int
config_load_number(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, uint64_t *out)
{
	char have[CONFIG_VALUE_MAX], lim[CONFIG_VALUE_MAX];
	long long sv;
	int t = config_setting_type(s);

	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
		sv = config_setting_get_int64(s);
		if (sv < 0) {
			snprintf(have, sizeof(have), "%lld", sv);
			return config_err_below(ctx, p, s, have);
		}
		*out = (uint64_t)sv;
	} else if (t != CONFIG_TYPE_STRING || p->type == PARAM_UINT ||
	    config_parse_value(p, config_setting_get_string(s), out) == -1)
		return config_err(ctx, s, p->name, "%s", config_type_error(p));
	config_fmt_value(p, *out, have, sizeof(have));
	if (*out < p->min)
		return config_err_below(ctx, p, s, have);
	if (*out > p->max) {
		config_fmt_value(p, p->max, lim, sizeof(lim));
		return config_err(ctx, s, p->name,
		    "%s is above the maximum %s", have, lim);
	}
	return 0;
}

static int
config_enum_lookup(const struct config_enum *names, const char *s,
    unsigned *out)
{
	for (; names->name != NULL; names++) {
		if (strcmp(names->name, s) == 0) {
			*out = names->value;
			return 0;
		}
	}
	return -1;
}

static const char *
config_enum_name(const struct config_enum *names, unsigned v)
{
	for (; names->name != NULL; names++)
		if (names->value == v)
			return names->name;
	return "?";
}

static int
config_load_enum(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	char list[256] = "";
	const struct config_enum *e;
	const char *str = config_setting_get_string(s);
	unsigned v;

	if (str != NULL && config_enum_lookup(p->names, str, &v) == 0) {
		config_store(base, p, v);
		return 0;
	}
	for (e = p->names; e->name != NULL; e++) {
		if (e != p->names)
			strlcat(list, ", ", sizeof(list));
		strlcat(list, "\"", sizeof(list));
		strlcat(list, e->name, sizeof(list));
		strlcat(list, "\"", sizeof(list));
	}
	return config_err(ctx, s, p->name, "expected one of %s", list);
}

static int
config_load_string(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	const char *str = config_setting_get_string(s), *why;
	size_t len;

	if (str == NULL)
		return config_err(ctx, s, p->name, "expected a string");
	len = strlen(str);
	if (len < p->min)
		return config_err(ctx, s, p->name, "must not be empty");
	if (len > p->max || len >= p->size)
		return config_err(ctx, s, p->name,
		    "longer than %llu characters", (unsigned long long)p->max);
	if (p->check != NULL && (why = p->check(str)) != NULL)
		return config_err(ctx, s, p->name, "%s", why);
	strlcpy((char *)base + p->off, str, p->size);
	return 0;
}

/*
 * "a.b.c.d:port" or "[v6]:port" into l's host and port, host in its
 * canonical form so that duplicates compare equal.  Returns NULL or
 * what is wrong.
 */
static const char *
config_parse_address(struct config_listener *l, const char *str)
{
	char host[INET6_ADDRSTRLEN + 2];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *colon, *h = str, *port;
	size_t hlen;
	uint64_t v;
	int af = AF_INET;

	if ((colon = strrchr(str, ':')) == NULL)
		return "expected \"IP:PORT\", e.g. \"127.0.0.1:25\" or "
		    "\"[::1]:25\"";
	hlen = (size_t)(colon - str);
	port = colon + 1;
	if (*str == '[') {
		if (hlen < 2 || str[hlen - 1] != ']')
			return "an IPv6 address is written \"[::1]:25\"";
		af = AF_INET6;
		h = str + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return "not a numeric IP address";
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (inet_pton(af, host, bin) != 1)
		return af == AF_INET6 ? "not a numeric IPv6 address" :
		    "not a numeric IPv4 address (IPv6 goes in [])";
	if (parse_u64(port, 1, 65535, &v) == -1)
		return "port must be a number from 1 to 65535";
	inet_ntop(af, bin, l->host, sizeof(l->host));
	snprintf(l->port, sizeof(l->port), "%u", (unsigned)v);
	return NULL;
}

static int
config_load_address(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	struct config_listener *l = base;
	const char *str = config_setting_get_string(s), *why;

	if (str == NULL)
		return config_err(ctx, s, p->name, "expected a string");
	if (strlcpy(l->address, str, sizeof(l->address)) >= sizeof(l->address))
		return config_err(ctx, s, p->name, "too long");
	if ((why = config_parse_address(l, str)) != NULL)
		return config_err(ctx, s, p->name, "\"%s\": %s", str, why);
	return 0;
}

/* The table's defaults; address NULL leaves it empty (it is required). */
static void
config_listener_defaults(struct config_listener *l, const char *address)
{
	size_t i;
	unsigned v;

	memset(l, 0, sizeof(*l));
	for (i = 0; i < nitems(listener_params); i++) {
		const struct config_param *p = &listener_params[i];

		if (p->type == PARAM_ENUM && p->def != NULL) {
			if (config_enum_lookup(p->names, p->def, &v) == -1)
				fatalx("config: bad default for %s", p->name);
			config_store(l, p, v);
		}
	}
	if (address == NULL)
		return;
	strlcpy(l->address, address, sizeof(l->address));
	if (config_parse_address(l, address) != NULL)
		fatalx("config: bad default listener %s", address);
}

/* Two entries for one socket would fail at bind(); say so here. */
static int
config_check_duplicate(struct config_ctx *ctx, const config_setting_t *s,
    const struct config *cfg, const struct config_listener *l)
{
	unsigned i;

	for (i = 0; i < cfg->nlisteners; i++) {
		if (strcmp(cfg->listeners[i].host, l->host) == 0 &&
		    strcmp(cfg->listeners[i].port, l->port) == 0)
			return config_err(ctx, s, NULL,
			    "address %s is already used by listeners[%u]",
			    l->address, i);
	}
	return 0;
}

static int
config_load_listener(struct config_ctx *ctx, const config_setting_t *e,
    struct config *cfg)
{
	struct config_listener l;
	size_t i;

	if (!config_setting_is_group(e))
		return config_err(ctx, e, NULL, "expected a group "
		    "{ address = \"IP:PORT\"; role = \"smtp\"; }");
	config_listener_defaults(&l, NULL);
	if (config_load_group(ctx, e, listener_params,
	    nitems(listener_params), &l) == -1)
		return -1;
	for (i = 0; i < nitems(listener_params); i++) {
		const struct config_param *p = &listener_params[i];

		if ((p->flags & PARAM_F_REQUIRED) &&
		    config_setting_get_member(e, p->name) == NULL)
			return config_err(ctx, e, NULL, "%s is required",
			    p->name);
	}
	if (config_check_duplicate(ctx, e, cfg, &l) == -1)
		return -1;
	cfg->listeners[cfg->nlisteners++] = l;
	return 0;
}

static int
config_load_listeners(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, struct config *cfg)
{
	int i, n = config_setting_length(s);

	if (!config_setting_is_list(s) && !config_setting_is_array(s))
		return config_err(ctx, s, p->name, "expected a list of groups "
		    "( { address = \"IP:PORT\"; }, ... )");
	if (n == 0)
		return config_err(ctx, s, p->name,
		    "at least one listener is required");
	if ((uint64_t)n > p->max)
		return config_err(ctx, s, p->name,
		    "%d listeners, at most %llu are allowed", n,
		    (unsigned long long)p->max);
	cfg->nlisteners = 0;
	for (i = 0; i < n; i++) {
		snprintf(ctx->scope, sizeof(ctx->scope), "%s[%d]", p->name, i);
		if (config_load_listener(ctx, config_setting_get_elem(s,
		    (unsigned)i), cfg) == -1)
			return -1;
	}
	ctx->scope[0] = '\0';
	return 0;
}

static int
config_load_param(struct config_ctx *ctx, const struct config_param *p,
    const config_setting_t *s, void *base)
{
	uint64_t v;

	switch (p->type) {
	case PARAM_STRING:
		return config_load_string(ctx, p, s, base);
	case PARAM_ENUM:
		return config_load_enum(ctx, p, s, base);
	case PARAM_ADDRESS:
		return config_load_address(ctx, p, s, base);
	case PARAM_LISTENERS:
		return config_load_listeners(ctx, p, s, base);
	case PARAM_UINT:
	case PARAM_SIZE:
	case PARAM_DURATION:
		if (config_load_number(ctx, p, s, &v) == -1)
			return -1;
		config_store(base, p, v);
		return 0;
	}
	return config_err(ctx, s, p->name, "internal: bad type");
}

/* Each member of grp must be a row of tab; libconfig refuses duplicates. */
static int
config_load_group(struct config_ctx *ctx, const config_setting_t *grp,
    const struct config_param *tab, size_t n, void *base)
{
	const struct config_param *p;
	config_setting_t *s;
	int i;

	for (i = 0; (s = config_setting_get_elem(grp, (unsigned)i)); i++) {
		p = config_param_find(tab, n, config_setting_name(s));
		if (p == NULL)
			return config_err(ctx, s, NULL, "unknown key '%s'",
			    config_setting_name(s));
		if (config_load_param(ctx, p, s, base) == -1)
			return -1;
	}
	return 0;
}

/* RFC 1035 2.3.1: letters, digits, inner hyphens; labels of 1..63. */
static const char *
config_valid_hostname(const char *s)
{
	static const char bad[] = "not a domain name (letters, digits, "
	    "'-' and '.'; labels of 1 to 63)";
	size_t label = 0;
	char prev = '.';

	for (; *s != '\0'; prev = *s++) {
		if (*s == '.') {
			if (label == 0 || prev == '-')
				return bad;
			label = 0;
			continue;
		}
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && *s != '-')
			return bad;
		if ((*s == '-' && label == 0) || ++label > 63)
			return bad;
	}
	return label == 0 || prev == '-' ? bad : NULL;
}

/* A path goes into open() and log lines; refuse control characters. */
static const char *
config_valid_path(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "contains a control character";
	return NULL;
}

/*
 * gethostname(), made fully qualified through the resolver (/etc/hosts
 * first) when it has no dot, as Postfix's myhostname does.  Computed
 * once: a slow resolver must not stall every config_defaults().
 */
static const char *
config_default_hostname(void)
{
	static char name[256];
	struct addrinfo hints, *res = NULL;

	if (name[0] != '\0')
		return name;
	if (gethostname(name, sizeof(name)) == -1 ||
	    memchr(name, '\0', sizeof(name)) == NULL)
		name[0] = '\0';
	if (name[0] != '\0' && strchr(name, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		if (getaddrinfo(name, NULL, &hints, &res) == 0 &&
		    res->ai_canonname != NULL &&
		    strchr(res->ai_canonname, '.') != NULL)
			strlcpy(name, res->ai_canonname, sizeof(name));
		if (res != NULL)
			freeaddrinfo(res);
	}
	if (config_valid_hostname(name) != NULL)
		strlcpy(name, "localhost", sizeof(name));
	return name;
}

static void
config_param_default(const struct config_param *p, void *base)
{
	uint64_t v;
	unsigned e;

	switch (p->type) {
	case PARAM_STRING:
		strlcpy((char *)base + p->off, p->def, p->size);
		break;
	case PARAM_ENUM:
		if (config_enum_lookup(p->names, p->def, &e) == -1)
			fatalx("config: bad default for %s", p->name);
		config_store(base, p, e);
		break;
	case PARAM_LISTENERS:
		config_listener_defaults(&((struct config *)base)->listeners[0],
		    p->def);
		((struct config *)base)->nlisteners = 1;
		break;
	default:
		if (config_parse_value(p, p->def, &v) == -1 ||
		    v < p->min || v > p->max)
			fatalx("config: bad default for %s", p->name);
		config_store(base, p, v);
		break;
	}
}

void
config_defaults(struct config *cfg)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < nitems(config_params); i++)
		if (config_params[i].def != NULL)
			config_param_default(&config_params[i], cfg);
	strlcpy(cfg->hostname, config_default_hostname(),
	    sizeof(cfg->hostname));
}

/*
 * libconfig 1.5 reads a decimal or hex integer beyond 32 bits without an
 * L suffix as a silently truncated int (4294967396 becomes 100).  Scan
 * the text as its lexer does and refuse such literals.
 */
static const char *
config_skip_noise(const char *p, unsigned *line)
{
	for (;;) {
		if (*p == '\n')
			(*line)++;
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
		    *p == '\f')
			p++;
		else if (*p == '#' || (p[0] == '/' && p[1] == '/'))
			p += strcspn(p, "\n");
		else if (p[0] == '/' && p[1] == '*') {
			for (p += 2; *p != '\0'; p++) {
				if (p[0] == '*' && p[1] == '/')
					break;
				if (*p == '\n')
					(*line)++;
			}
			p += *p != '\0' ? 2 : 0;
		} else if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p == '\n')
					(*line)++;
				if (*p == '\\' && p[1] != '\0')
					p++;
			}
			p += *p != '\0';
		} else
			return p;
	}
}

/* Length of the integer literal at p if it does not fit an int, else 0. */
static size_t
config_wide_int(const char *p)
{
	const char *d = p + (*p == '-' || *p == '+');
	size_t n;
	uint64_t v;

	if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
		n = 2 + strspn(d + 2, "0123456789abcdefABCDEF");
		v = strtoull(d, NULL, 16);	/* saturates at UINT64_MAX */
		if (d[n] == 'L' || v <= INT32_MAX)
			return 0;
	} else {
		n = strspn(d, "0123456789");
		if (strchr(".eEL", d[n]) != NULL && d[n] != '\0')
			return 0;	/* float or int64 */
		if (parse_u64n(d, n, 0, *p == '-' ? 2147483648ULL :
		    INT32_MAX, &v) == 0)
			return 0;
	}
	return (size_t)(d - p) + n;
}

static int
config_check_ints(struct config_ctx *ctx, const char *text)
{
	const char *p = text, *name = "", *start;
	size_t namelen = 0, n;
	unsigned line = 1;

	while (*(p = config_skip_noise(p, &line)) != '\0') {
		start = p;
		if ((*p >= '0' && *p <= '9') || ((*p == '-' || *p == '+') &&
		    p[1] >= '0' && p[1] <= '9')) {
			if ((n = config_wide_int(p)) > 0) {
				snprintf(ctx->err, ctx->errlen, "%s:%u: %.*s: "
				    "%.*s does not fit in 32 bits; add an L "
				    "suffix or write it as a string", ctx->path,
				    line, (int)namelen, name, (int)n, p);
				return -1;
			}
			p += strspn(p, "+-0123456789abcdefABCDEFxXL.");
			continue;
		}
		p += strspn(p, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_*-");
		if (p != start) {
			name = start;
			namelen = (size_t)(p - start);
		} else
			p++;
	}
	return 0;
}

/* The whole file, NUL-terminated, or NULL with "FILE: reason" in err. */
static char *
config_slurp(struct config_ctx *ctx)
{
	struct stat st;
	FILE *fp;
	char *text = NULL;
	size_t n;
	int saved;

	if ((fp = fopen(ctx->path, "r")) == NULL)
		goto fail;
	errno = 0;
	if (fstat(fileno(fp), &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : S_ISREG(st.st_mode) ?
		    EFBIG : EINVAL;
		goto fail;
	}
	text = xmalloc((size_t)st.st_size + 1);
	n = fread(text, 1, (size_t)st.st_size, fp);
	if (ferror(fp))
		goto fail;
	text[n] = '\0';
	if (strlen(text) != n) {
		snprintf(ctx->err, ctx->errlen, "%s: contains a NUL byte",
		    ctx->path);
		free(text);
		text = NULL;
	}
	fclose(fp);
	return text;
fail:
	saved = errno ? errno : EIO;
	snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->path, strerror(saved));
	free(text);
	if (fp != NULL)
		fclose(fp);
	return NULL;
}

/* @include paths are relative to the including file's directory. */
static int
config_parse_text(struct config_ctx *ctx, config_t *lc, const char *text)
{
	char dir[sizeof(((struct config *)0)->file)];
	char *slash;

	strlcpy(dir, ctx->path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL) {
		if (slash == dir)
			slash++;	/* "/sluice.conf": keep the root */
		*slash = '\0';
		config_set_include_dir(lc, dir);
	}
	if (config_read_string(lc, text) == CONFIG_TRUE)
		return config_check_ints(ctx, text);
	snprintf(ctx->err, ctx->errlen, "%s:%d: %s",
	    config_error_file(lc) ? config_error_file(lc) : ctx->path,
	    config_error_line(lc), config_error_text(lc));
	return -1;
}

/*
 * The new configuration is built apart and copied to cfg only when it
 * is valid, so a failed reload leaves the running one intact.
 */
int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config_ctx ctx = { .path = path, .err = err, .errlen = errlen };
	struct config *next;
	config_t lc;
	char *text;
	int rc = -1;

	if (errlen > 0)
		err[0] = '\0';
	next = xmalloc(sizeof(*next));
	config_defaults(next);
	if (strlcpy(next->file, path, sizeof(next->file)) >=
	    sizeof(next->file)) {
		snprintf(err, errlen, "%s: %s", path, strerror(ENAMETOOLONG));
		free(next);
		return -1;
	}
	if ((text = config_slurp(&ctx)) == NULL) {
		free(next);
		return -1;
	}
	config_init(&lc);
	if (config_parse_text(&ctx, &lc, text) == 0 &&
	    config_load_group(&ctx, config_root_setting(&lc), config_params,
	    nitems(config_params), next) == 0) {
		*cfg = *next;
		rc = 0;
	}
	config_destroy(&lc);
	free(text);
	free(next);
	return rc;
}

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

static void
config_dump_listeners(const struct config_param *p, const void *base,
    FILE *fp, const char *indent)
{
	const struct config *cfg = base;
	unsigned i;

	fprintf(fp, "%s%s = (\n", indent, p->name);
	for (i = 0; i < cfg->nlisteners; i++) {
		fprintf(fp, "%s\t{\n", indent);
		config_dump_group(listener_params, nitems(listener_params),
		    &cfg->listeners[i], fp, "\t\t");
		fprintf(fp, "%s\t}%s\n", indent,
		    i + 1 < cfg->nlisteners ? "," : "");
	}
	fprintf(fp, "%s);\n", indent);
}

static void
config_dump_param(const struct config_param *p, const void *base, FILE *fp,
    const char *indent)
{
	char buf[CONFIG_VALUE_MAX];
	uint64_t v;

	if (*indent == '\0')
		fprintf(fp, "\n# %s\n", p->desc);
	if (p->type == PARAM_LISTENERS) {
		config_dump_listeners(p, base, fp, indent);
		return;
	}
	fprintf(fp, "%s%s = ", indent, p->name);
	if (p->type == PARAM_STRING || p->type == PARAM_ADDRESS) {
		config_dump_string((const char *)base + p->off, fp);
	} else if (p->type == PARAM_ENUM) {
		config_dump_string(config_enum_name(p->names,
		    (unsigned)config_fetch(base, p)), fp);
	} else {
		v = config_fetch(base, p);
		config_fmt_value(p, v, buf, sizeof(buf));
		/* Suffixed or past 32 bits: a string (config_check_ints). */
		if (strspn(buf, "0123456789") != strlen(buf) || v > INT32_MAX)
			config_dump_string(buf, fp);
		else
			fputs(buf, fp);
	}
	fputs(";\n", fp);
}

static void
config_dump_group(const struct config_param *tab, size_t n, const void *base,
    FILE *fp, const char *indent)
{
	size_t i;

	for (i = 0; i < n; i++)
		config_dump_param(&tab[i], base, fp, indent);
}

void
config_dump(const struct config *cfg, FILE *fp)
{
	fprintf(fp, "# effective configuration");
	if (cfg->file[0] != '\0')
		fprintf(fp, " read from %s", cfg->file);
	fputc('\n', fp);
	config_dump_group(config_params, nitems(config_params), cfg, fp, "");
}
