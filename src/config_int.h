/*
 * config_int.h -- private to config.c, config_check.c and config_dump.c:
 * the parameter table's types and the helpers they share.  Nothing else
 * includes this; the rest of the tree sees config.h only.
 */
#ifndef SLUICE_CONFIG_INT_H
#define SLUICE_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>

#define CONFIG_SCOPE_MAX	32		/* "users[255].senders[31]" */
#define CONFIG_VALUE_MAX	64		/* a formatted number */
#define CONFIG_SECRET_MASK	"********"

enum param_type {
	PARAM_STRING,		/* min/max bound the length */
	PARAM_UINT,
	PARAM_BOOL,		/* true or false; stored as 1 or 0 */
	PARAM_SIZE,		/* octets, or "25M" (K, M, G; binary) */
	PARAM_DURATION,		/* seconds, or "5m" (s, m, h, d) */
	PARAM_ENUM,		/* a string from names[] */
	PARAM_ADDRESS,		/* "IP:PORT" or "[IPv6]:PORT"; min 0: "" too */
	PARAM_STRLIST,		/* [ "a", ... ]: each entry a PARAM_STRING of
				   elem - 1 octets at most (or strsize - 1 at
				   the start of a struct); no duplicates */
	PARAM_GROUP,		/* { ... } read with schema; absent: all 0 */
	PARAM_LIST,		/* ( { ... }, ... ) each read with schema */
};

#define PARAM_F_REQUIRED	0x01	/* no default: the key must be set */
#define PARAM_F_SECRET		0x02	/* dumped as CONFIG_SECRET_MASK */
#define PARAM_F_LOWER		0x04	/* strings: lowercased as loaded */
#define PARAM_F_READABLE	0x08	/* strings: a file we can open, if set */
/* Schema rows shared by a PARAM_LIST and a lone PARAM_GROUP: */
#define PARAM_F_LIST_ONLY	0x10	/* a key of list entries only */
#define PARAM_F_GROUP_REQUIRED	0x20	/* required in the lone group */
/* With PARAM_F_READABLE, a file of secrets (STYLE 7, check_file_secrecy): */
#define PARAM_F_NO_OTHERS	0x40	/* others have no access to it */
#define PARAM_F_NO_GROUP	0x80	/* nor has its group */
#define PARAM_F_LOWER_DOMAIN	0x100	/* strings: lowercased after the last
					   '@' (the domain of an address) */

struct config_enum {
	const char	*name;
	unsigned	 value;
};

struct config_ctx;
struct config_schema;

/*
 * One key.  The lists (PARAM_STRLIST, PARAM_LIST) count their entries
 * with min..max and keep the count in an unsigned at count; every other
 * type is bounded by min..max as its comment says.
 */
struct config_param {
	const char	*name;		/* file key == struct field */
	enum param_type	 type;
	const char	*def;		/* in the file's syntax; NULL: none */
	uint64_t	 min;
	uint64_t	 max;
	size_t		 off;		/* of the field in its struct */
	size_t		 size;		/* of the field */
	size_t		 elem;		/* lists: of one entry */
	size_t		 count;		/* lists: offset of the count */
	size_t		 strsize;	/* PARAM_STRLIST of structs: the size
					   of the string each one starts with;
					   0: the entry is the string */
	int		 flags;
	const struct config_enum *names; /* PARAM_ENUM; ends with NULL */
	const char	*(*check)(const char *); /* strings: NULL or why */
	/*
	 * PARAM_GROUP, PARAM_LIST: the members.  PARAM_STRLIST: only its
	 * check, run on each entry once its string is loaded.
	 */
	const struct config_schema *schema;
	const char	*at_least;	/* a key this one must not be below */
	const char	*at_most;	/* a key this one must not be above;
					   lowered to it when not in the file */
	const char	*ref;		/* cited by bound errors */
	const char	*desc;		/* one line, for docs and dumps */
};

/* The members of a group, alone (PARAM_GROUP) or listed (PARAM_LIST). */
struct config_schema {
	const struct config_param *params;
	size_t		 nparams;
	const char	*example;	/* one group, shown by shape errors */
	/*
	 * Entry i of the array at entries is loaded; check it against
	 * itself and entries 0..i-1, and fill derived fields.  A lone
	 * group is entry 0.  Returns 0, or -1 with the error written.
	 */
	int		(*check)(struct config_ctx *, const config_setting_t *,
			    void *entries, unsigned i);
};

/* One load: where errors go, and which entry is being read. */
struct config_ctx {
	const char	*path;
	char		*err;
	size_t		 errlen;
	char		 scope[CONFIG_SCOPE_MAX]; /* "listeners[0]" or "" */
};

/* The table, in config.c. */
extern const struct config_param config_params[];
extern const size_t config_nparams;

uint64_t	config_fetch(const void *base, const struct config_param *p);
unsigned	config_fetch_count(const void *base,
		    const struct config_param *p);
/* v as the file writes it: "25M", "5m", "1000". */
void		config_fmt_value(const struct config_param *p, uint64_t v,
		    char *buf, size_t len);
const char	*config_enum_name(const struct config_enum *names,
		    unsigned v);
/*
 * Write "FILE:LINE: [scope.]key: message" into ctx->err and return -1.
 * key may be NULL for a message about the scope itself.
 */
int		config_err(struct config_ctx *ctx, const config_setting_t *s,
		    const char *key, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));

/*
 * config_check.c: a string's check returns NULL, or what is wrong with
 * it; an entry's check is a struct config_schema's.
 */
const char	*config_parse_address(const char *str, char *hostbuf,
		    size_t hostlen, char *portbuf, size_t portlen);
const char	*config_valid_hostname(const char *);
const char	*config_valid_route_domain(const char *);
const char	*config_valid_host(const char *);
const char	*config_valid_path(const char *);
const char	*config_valid_forwarder(const char *);
const char	*config_valid_unix_name(const char *);
const char	*config_valid_user_name(const char *);
const char	*config_valid_sender(const char *);
int		config_check_listener(struct config_ctx *,
		    const config_setting_t *, void *, unsigned);
int		config_check_route(struct config_ctx *,
		    const config_setting_t *, void *, unsigned);
int		config_check_network(struct config_ctx *,
		    const config_setting_t *, void *, unsigned);
int		config_check_user(struct config_ctx *,
		    const config_setting_t *, void *, unsigned);

#endif
