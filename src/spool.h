/*
 * spool.h -- the durable message queue on disk (format: docs/spool.md).
 *
 * Sessions write a message into incoming/, finish it (header filled in,
 * renamed into queue/) and hand it to the commit thread, which makes
 * whole batches durable with one syncfs() (group commit) and then calls
 * each message's callback on the session's own event loop.
 */
#ifndef SLUICE_SPOOL_H
#define SLUICE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "notify.h"

struct event_base;
struct config;
struct notify;

#define SPOOL_ID_LEN		16
#define SPOOL_HDR_LEN		40	/* "SLUICE1 %010 %020\n" */
#define SPOOL_MAGIC		"SLUICE1 "
/* Buffered message octets are written out beyond this. */
#define SPOOL_WRITE_CHUNK	(64 * 1024)

struct spool_msg {
	char		 id[SPOOL_ID_LEN + 1];
	int		 fd;		/* -1 until created, and after commit */
	int		 created;	/* a file exists (incoming/ or queue/) */
	uint64_t	 env_len;	/* header line + envelope + blank line */
	uint64_t	 msg_len;	/* message octets written so far */
	int		 error;		/* errno of the first failed write */

	/* Set by spool_msg_commit(); used by the commit thread. */
	struct notify	*notify;
	struct notify_item item;
	void		(*done_cb)(struct spool_msg *, void *);
	void		*done_arg;
	struct spool_msg *next;
};

/* Create the spool directories if needed and open them.  0 or -1 (err). */
int	spool_init(const struct config *, char *err, size_t errlen);
/* Give the spool to cfg->user (when started as root).  0 or -1. */
int	spool_chown(const struct config *);
/* Remove incoming/ leftovers and partial queue files; count what stays. */
int	spool_recover(unsigned *queued, unsigned *removed);
/* Start the commit thread.  Call once, after spool_init(). */
void	spool_start(void);
void	spool_stop(void);

/* A fresh unique queue id (thread-safe). */
void	spool_new_id(char id[SPOOL_ID_LEN + 1]);

/*
 * Begin a message whose envelope (without the header line) is env.
 * Nothing touches the disk until the first spool_msg_write() past
 * SPOOL_WRITE_CHUNK or spool_msg_finish().
 */
struct spool_msg *spool_msg_new(const char *id, const struct buf *env);
/* Append message octets from pending and empty it; writes only when
 * pending holds at least SPOOL_WRITE_CHUNK unless flush is set.
 * Returns 0 or -1 (msg->error set). */
int	spool_msg_write(struct spool_msg *, struct buf *pending, int flush);
/* Write what is pending, fill in the header, move the file into queue/.
 * 0 or -1 (msg->error set). */
int	spool_msg_finish(struct spool_msg *, struct buf *pending);
/* Drop a message that will not be acknowledged. */
void	spool_msg_abort(struct spool_msg *);
/*
 * Queue a finished message for the next group commit.  cb runs later on
 * notify's event loop with msg->error 0 (durable) or an errno; it owns
 * msg then and must call spool_msg_free().
 */
void	spool_msg_commit(struct spool_msg *, struct notify *,
	    void (*cb)(struct spool_msg *, void *), void *arg);
void	spool_msg_free(struct spool_msg *);

/* The spool directory itself (locked, open for the daemon's life). */
int	spool_dir_fd(void);
/* Open a committed message read-write (for state records); -1 on error. */
int	spool_queue_open(const char *id);
/* Remove a message that is done; made durable by a later sync. */
int	spool_queue_remove(const char *id);
/* Append state records to an open queue file (docs/spool.md). */
int	spool_append(int fd, const struct buf *records);
/* Ask the commit thread for a sync soon, without waiting for it. */
void	spool_sync_soon(void);
/* Call fn for every message in queue/ (at start-up). */
void	spool_queue_scan(void (*fn)(const char *id, void *), void *arg);

#endif
