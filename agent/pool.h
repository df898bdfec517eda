/*
 * Worker pools: backend work runs off the event loop. One pool per opened
 * backend (a TPM gets one thread: its ESYS context is not thread-safe and
 * the chip is serial; a token gets one thread per session). Jobs are
 * served round-robin across bots so one busy bot cannot starve others.
 */
#ifndef BOTID_AGENT_POOL_H
#define BOTID_AGENT_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent/backend.h"
#include "lib/limits.h"

struct botid_pool;

/* Per-bot queue state; lives in the registry's bot entry, used by the pool. */
struct botid_fairq {
	struct botid_job	*head;
	struct botid_job	*tail;
	struct botid_fairq	*ring_next;
	int			 in_ring;
};

/* What a job asks of the device. */
enum botid_job_kind {
	BOTID_JOB_SIGN = 0,		/* sign digest with key */
	BOTID_JOB_ATTRIBUTES,		/* read key's attributes back */
};

struct botid_job {
	struct botid_job	*next;
	/* Input, filled by the loop. */
	enum botid_job_kind	 kind;
	struct botid_key	*key;
	struct botid_fairq	*fairq;
	struct botid_sign_params params;
	uint8_t			 digest[BOTID_MAX_DIGEST];
	size_t			 digest_len;
	void			*owner;		/* opaque to the pool */
	/* Output, filled by a worker. */
	int			 result;
	uint8_t			*sig;
	size_t			 sig_len;
	struct botid_key_attribute attrs[BOTID_MAX_KEY_ATTRIBUTES];
	size_t			 nattrs;
	struct timespec		 started;	/* when a worker took it */
	struct timespec		 finished;
};

/* Where finished jobs go: a list the loop drains when the eventfd fires. */
struct botid_done {
	void			*lock;		/* pthread_mutex_t */
	struct botid_job	*head;
	struct botid_job	*tail;
	int			 efd;		/* eventfd, readable when non-empty */
};

/* Creates the done list and its eventfd. Errors: BOTID_ERR_IO, _ALLOC. */
int	done_init(struct botid_done *d);
/* Takes every finished job (oldest first) and clears the eventfd. */
struct botid_job *done_take_all(struct botid_done *d);
void	done_free(struct botid_done *d);

/*
 * Starts nthreads workers that call be->ops->sign (or key_attributes, by
 * the job's kind) and post results to done.
 * Errors: BOTID_ERR_ALLOC, BOTID_ERR_INTERNAL (thread creation).
 */
int	pool_create(struct botid_backend *be, unsigned nthreads,
	    struct botid_done *done, struct botid_pool **pp);

/* Queues a job behind others of its bot. Never blocks on the device. */
void	pool_submit(struct botid_pool *p, struct botid_job *job);

/* Jobs queued and not yet finished. */
size_t	pool_pending(struct botid_pool *p);

/* Finishes queued jobs, stops and joins the workers, frees p. Accepts NULL. */
void	pool_destroy(struct botid_pool *p);

#endif /* BOTID_AGENT_POOL_H */
