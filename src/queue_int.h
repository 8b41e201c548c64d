/*
 * queue_int.h -- shared by queue.c (messages, state, retries, notices)
 * and deliver.c (destinations, connections, local delivery).  Everything
 * here lives in the delivery thread only.
 */
#ifndef SLUICE_QUEUE_INT_H
#define SLUICE_QUEUE_INT_H

#include <stdint.h>

#include "async.h"
#include "route.h"
#include "smtp_client.h"
#include "spool_file.h"

struct event_base;
struct config;
struct dns;

/* In-memory recipient status; the spool file has the durable one. */
enum rs {
	RS_PENDING,		/* to be tried */
	RS_BUSY,		/* in a job now */
	RS_DEFERRED,		/* 4xx this round: retry later */
	RS_SENT,		/* delivered, recorded */
	RS_FAILED_NEW,		/* 5xx this round: bounce, then record */
	RS_FAILED,		/* failed and recorded */
};

struct qmsg {
	char		 id[SPOOL_ID_LEN + 1];
	struct spool_env env;
	int		 fd;		/* open while jobs run */
	unsigned char	*rs;		/* enum rs per recipient */
	char		**remote;	/* Remote-MTA per recipient, or NULL */
	int		*code;		/* last SMTP code per recipient */
	unsigned char	*dsn_passed;	/* the next hop took NOTIFY over */
	unsigned	 attempts;
	unsigned	 jobs;		/* in flight */
	unsigned	 nreceived;	/* Received: headers (loops) */
	uint64_t	 loaded_usec;	/* entered the delivery thread */
	struct event	*retry_ev;
	struct qmsg	*next;		/* all messages, for shutdown */
	struct qmsg	*prev;
};

/* One transaction: a message's recipients for one destination. */
struct job {
	struct qmsg		*msg;
	struct route		 route;
	unsigned		 n;
	unsigned		*idx;		/* recipient indexes in msg */
	struct smtp_client_rcpt	*rcpts;		/* results land here */
	struct smtp_client_msg	 cmsg;
	uint64_t		 queued_usec;
	uint64_t		 start_usec;
	uint64_t		 setup_usec;	/* connection set-up time */
	char			 relay[300];	/* "host[ip]:port", "local" */
	struct async_job	 async;		/* local delivery off the loop */
	struct job		*next;
};

extern const struct config *queue_cfg;
extern struct event_base *queue_base;

/* queue.c: a job finished; results are in job->rcpts. Frees the job. */
void	queue_job_done(struct job *);

/* deliver.c */
void	deliver_init(void);
void	deliver_free(void);
/* Hand a job to its destination; queue_job_done() follows, always. */
void	deliver_job(struct job *);

#endif
