/*
 * Worker pools: backend work runs off the event loop. One pool per opened
 * backend (a TPM gets one thread: its ESYS context is not thread-safe and
 * the chip is serial; a token gets one thread per session). Jobs are
 * served round-robin across bots so one busy bot cannot starve others,
 * and a job may carry a bound on its wait (max_queue_wait): refused at
 * once when the queue ahead would take longer, answered BUSY when it has
 * waited that long without a worker taking it. Where the backend swaps
 * keys (key_loaded), a bot whose key is still loaded after its job may
 * have up to BOTID_POOL_BATCH jobs in its turn, and gives up one later
 * turn for each extra job: fewer swaps, every bot's share unchanged, and
 * a bot asking once waits for at most that many jobs of each other bot.
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
	size_t			 len;		/* jobs queued */
	unsigned		 turn_jobs;	/* taken in its turn */
	unsigned		 owed;		/* turns to give up */
};

/* What a job asks of the device. */
enum botid_job_kind {
	BOTID_JOB_SIGN = 0,		/* sign digest with key */
	BOTID_JOB_ATTRIBUTES,		/* read key's attributes back */
	BOTID_JOB_CALL,			/* result = call(owner) */
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
	int			(*call)(void *);	/* JOB_CALL */
	/* Set by pool_submit_bounded(): 0 for a job without a bound. */
	uint64_t		 deadline_ns;	/* pool_now_ns() to expire */
	uint64_t		 max_wait_ns;
	/* Output, filled by a worker. */
	int			 result;
	uint8_t			*sig;
	size_t			 sig_len;
	struct botid_key_attribute attrs[BOTID_MAX_KEY_ATTRIBUTES];
	size_t			 nattrs;
	struct timespec		 started;	/* when a worker took it */
	struct timespec		 finished;
	/* result BOTID_ERR_BUSY: it expired unrun; when to retry. */
	uint32_t		 retry_ms;
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
 * Starts nthreads workers that call be->ops->sign (or key_attributes, or
 * the job's own call, by the job's kind) and post results to done.
 * Errors: BOTID_ERR_ALLOC, BOTID_ERR_INTERNAL (thread creation).
 */
int	pool_create(struct botid_backend *be, unsigned nthreads,
	    struct botid_done *done, struct botid_pool **pp);

/* Queues a job behind others of its bot. Never blocks on the device. */
void	pool_submit(struct botid_pool *p, struct botid_job *job);

/*
 * Queues a job as pool_submit() does unless max_wait_ns (0: no bound) is
 * exceeded by the estimated wait: the jobs its bot's round-robin turn
 * comes after, and those running, times the pool's recent time per
 * operation, over its workers. A queued job gets a deadline: if no worker
 * has taken it by then, it comes back through done with result
 * BOTID_ERR_BUSY (pool_expire(), or the worker that reaches it late).
 * Returns 0 (queued), or BOTID_ERR_BUSY with *retry_ms, the estimated
 * milliseconds until the queue ahead is short enough (at least one
 * operation, 1..BOTID_MAX_RETRY_MS); the job is then not queued.
 */
int	pool_submit_bounded(struct botid_pool *p, struct botid_job *job,
	    uint64_t max_wait_ns, uint32_t *retry_ms);

/*
 * Takes every queued job whose deadline is at or before now_ns out of the
 * queue and posts it to done with result BOTID_ERR_BUSY and a retry hint.
 * *next_ns is the earliest deadline still queued (0: none). Returns how
 * many jobs expired.
 */
size_t	pool_expire(struct botid_pool *p, uint64_t now_ns,
	    uint64_t *next_ns);

/* CLOCK_MONOTONIC in nanoseconds: the clock of deadlines. */
uint64_t pool_now_ns(void);

/* The pool's recent time per operation in ns (0: none measured yet). */
uint64_t pool_op_ns(struct botid_pool *p);

/* Lets pool_run_inline() run jobs: for devices that answer in microseconds. */
void	pool_allow_inline(struct botid_pool *p);

/*
 * Runs job in the calling thread, as a worker would, if the pool allows
 * it, has nothing queued or running and its recent operations took at
 * most BOTID_INLINE_MAX_US (a token that became slow is left to the
 * workers, so the loop never waits on it): then the caller answers at once
 * instead of handing the job to a worker and the result back (two thread
 * wake-ups, which cost more than a SoftHSM2 signature on a virtual
 * machine). Returns 1 if it ran the job (its result is set and nothing is
 * posted to done), 0 if the caller must pool_submit() it.
 */
int	pool_run_inline(struct botid_pool *p, struct botid_job *job);

/* Jobs queued and not yet finished. */
size_t	pool_pending(struct botid_pool *p);

/* Finishes queued jobs, stops and joins the workers, frees p. Accepts NULL. */
void	pool_destroy(struct botid_pool *p);

#endif /* BOTID_AGENT_POOL_H */
