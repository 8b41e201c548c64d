/*
 * spool_file.h -- read a queue file back: header, envelope and state
 * records (docs/spool.md).  Used by recovery, sluicectl and delivery.
 * The file may be damaged: every field is bounds-checked.
 */
#ifndef SLUICE_SPOOL_FILE_H
#define SLUICE_SPOOL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

enum rcpt_state { RCPT_PENDING, RCPT_DELIVERED, RCPT_FAILED };

struct spool_rcpt {
	char		*addr;
	char		*notify;	/* NULL when absent */
	char		*orcpt;		/* NULL when absent */
	enum rcpt_state	 state;
	uint64_t	 state_time;
	char		*reply;		/* last reply, NULL when none */
};

struct spool_env {
	char		 id[SPOOL_ID_LEN + 1];
	uint64_t	 arrival_usec;
	char		*client;
	char		*helo;
	char		*proto;
	char		*from;		/* "" for the null sender */
	char		*body;		/* BODY= value or NULL */
	int		 smtputf8;
	char		*ret;		/* NULL when absent */
	char		*envid;		/* NULL when absent */
	struct spool_rcpt *rcpts;
	size_t		 nrcpts;
	int		 delay_notified; /* a delay DSN went out ("notice delay") */
	uint64_t	 msg_off;	/* offset of the message in the file */
	uint64_t	 msg_len;
	uint64_t	 file_size;
	uint64_t	 records_end;	/* after the last complete record */
};

/* Parse the spool header line; 0, or -1 when incomplete or damaged. */
int	spool_parse_header(const char *p, size_t len, uint64_t *env_len,
	    uint64_t *msg_len);
/*
 * Read the envelope and state records of the file at path.  Returns 0,
 * or -1 with a reason in err (file incomplete, damaged, unreadable).
 */
int	spool_env_read(const char *path, struct spool_env *,
	    char *err, size_t errlen);
/* The same on an open queue file. */
int	spool_env_read_fd(int fd, struct spool_env *, char *err,
	    size_t errlen);
void	spool_env_free(struct spool_env *);
const char *rcpt_state_name(enum rcpt_state);

#endif
