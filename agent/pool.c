/*
 * Worker pools. The queue is a ring of bots that have work; a worker takes
 * one job from the bot at the front and moves that bot to the back, which
 * gives every bot an equal share of a slow, serial device.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/pool.h"
#include "lib/error.h"
#include "lib/log.h"

/* How long a worker that just finished looks for more work before sleeping. */
#define POOL_SPIN_NS	100000L
/* The time per operation is a moving average: each new one weighs 1/8. */
#define POOL_AVERAGE_WEIGHT	8u

struct botid_pool {
	struct botid_backend	*be;
	struct botid_done	*done;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct botid_fairq	*ring_head;
	struct botid_fairq	*ring_tail;
	/*
	 * The bot served last, with more jobs: back at the ring's tail at
	 * the next pick, not at once, so that a bot whose first job came
	 * meanwhile goes before it (with a key creation of 300 ms running,
	 * a bot asking then waited for the next creation too).
	 */
	struct botid_fairq	*resting;
	size_t			 pending;	/* queued and running */
	size_t			 queued;	/* in the bots' queues */
	uint64_t		 op_ns;		/* recent time per op */
	/*
	 * When the next client told BUSY is to come back (pool_now_ns()):
	 * each refusal takes the next slot, one operation apart, so that
	 * refused clients return as the queue drains, not all at once.
	 */
	uint64_t		 retry_next_ns;
	int			 stopping;
	int			 inline_ok;	/* pool_run_inline() may run jobs */
	pthread_t		*threads;
	unsigned		 nthreads;
};

int
done_init(struct botid_done *d)
{
	pthread_mutex_t *mu;

	memset(d, 0, sizeof(*d));
	d->efd = -1;
	if ((mu = calloc(1, sizeof(*mu))) == NULL)
		return BOTID_ERR_ALLOC;
	if (pthread_mutex_init(mu, NULL) != 0) {
		free(mu);
		return BOTID_ERR_INTERNAL;
	}
	if ((d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		pthread_mutex_destroy(mu);
		free(mu);
		return BOTID_ERR_IO;
	}
	d->lock = mu;
	return 0;
}

static void
done_post(struct botid_done *d, struct botid_job *job)
{
	uint64_t one = 1;
	int wake;

	job->next = NULL;
	pthread_mutex_lock(d->lock);
	wake = d->head == NULL;
	if (d->tail != NULL)
		d->tail->next = job;
	else
		d->head = job;
	d->tail = job;
	pthread_mutex_unlock(d->lock);
	/* One wake-up per batch: the loop takes everything at once. */
	if (wake && write(d->efd, &one, sizeof(one)) != sizeof(one) &&
	    errno != EAGAIN)
		log_err("pool: eventfd write: %s", strerror(errno));
}

struct botid_job *
done_take_all(struct botid_done *d)
{
	struct botid_job *head;
	uint64_t n;

	if (read(d->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("pool: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(d->lock);
	head = d->head;
	d->head = d->tail = NULL;
	pthread_mutex_unlock(d->lock);
	return head;
}

void
done_free(struct botid_done *d)
{
	if (d->lock != NULL) {
		pthread_mutex_destroy(d->lock);
		free(d->lock);
		d->lock = NULL;
	}
	if (d->efd != -1)
		close(d->efd);
	d->efd = -1;
}

/* Called with p->mu held: the bot served last takes its place again. */
static void
pool_rest_end_locked(struct botid_pool *p)
{
	struct botid_fairq *q = p->resting;

	if (q == NULL)
		return;
	p->resting = NULL;
	q->ring_next = NULL;
	if (p->ring_tail != NULL)
		p->ring_tail->ring_next = q;
	else
		p->ring_head = q;
	p->ring_tail = q;
}

/* Jobs a bot may have per turn: more only where keys are swapped. */
static unsigned
pool_batch(const struct botid_pool *p)
{
	return p->be->ops->key_loaded != NULL ? BOTID_POOL_BATCH : 1;
}

/*
 * Called with p->mu held: whether the resting bot's next job goes before
 * the others' (its turn goes on). Only a signature whose key is still
 * loaded: another bot's would first cost the device a swap (a flush and
 * a load), and only up to the batch, so every bot keeps its turn.
 */
static int
pool_turn_goes_on_locked(const struct botid_pool *p,
    const struct botid_fairq *q)
{
	const struct botid_job *job = q->head;

	return job != NULL && job->kind == BOTID_JOB_SIGN &&
	    q->turn_jobs < pool_batch(p) && p->be->ops->key_loaded != NULL &&
	    p->be->ops->key_loaded(p->be, job->key);
}

/* Called with p->mu held: the next job in round-robin order, or NULL. */
static struct botid_job *
pool_next_locked(struct botid_pool *p)
{
	struct botid_fairq *q;
	struct botid_job *job;

	if ((q = p->resting) != NULL && pool_turn_goes_on_locked(p, q)) {
		job = q->head;
		q->head = job->next;
		if (q->head == NULL) {
			q->tail = NULL;
			q->in_ring = 0;
			p->resting = NULL;
		}
		q->len--;
		p->queued--;
		q->turn_jobs++;
		q->owed++;	/* out of turn: paid back below */
		job->next = NULL;
		return job;
	}
	pool_rest_end_locked(p);
	/*
	 * A bot that took extra jobs in a turn gives up as many later turns
	 * while others wait: under equal demand every bot keeps its share
	 * (a bot with two requests always queued would otherwise sign twice
	 * as often as one with one), and the swaps saved stay saved.
	 */
	while ((q = p->ring_head) != NULL && q->owed > 0 &&
	    q != p->ring_tail) {
		q->owed--;
		p->ring_head = q->ring_next;
		q->ring_next = NULL;
		p->ring_tail->ring_next = q;
		p->ring_tail = q;
	}
	if (q == NULL)
		return NULL;
	if (q->owed > 0)
		q->owed--;	/* alone: its turn is not anyone's loss */
	q->turn_jobs = 1;
	job = q->head;
	q->head = job->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->len--;
	p->queued--;
	/*
	 * Unlink the bot from the front; if it has more, it rests until the
	 * next pick (still in_ring: its jobs join its queue, not the ring).
	 */
	p->ring_head = q->ring_next;
	if (p->ring_head == NULL)
		p->ring_tail = NULL;
	q->ring_next = NULL;
	q->in_ring = q->head != NULL;
	if (q->in_ring)
		p->resting = q;
	job->next = NULL;
	return job;
}

uint64_t
pool_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
timespec_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* Called with p->mu held: job ran, its time joins the average. */
static void
pool_measure_locked(struct botid_pool *p, const struct botid_job *job)
{
	uint64_t t0 = timespec_ns(&job->started);
	uint64_t t1 = timespec_ns(&job->finished);
	uint64_t d = t1 > t0 ? t1 - t0 : 0;

	if (p->op_ns == 0)
		p->op_ns = d;
	else
		p->op_ns = (p->op_ns * (POOL_AVERAGE_WEIGHT - 1) + d) /
		    POOL_AVERAGE_WEIGHT;
}

/*
 * Called with p->mu held: how long a new job of q would wait. Round-robin
 * serves q's next job after k more of its own (k queued): a bot ahead of
 * q in the ring gets k + 1 turns before it, one behind gets k, and a bot
 * gets no turn it has no job for. A bot that hogs the queue thus lengthens
 * its own wait, not that of a bot asking once.
 */
static uint64_t
pool_estimate_locked(const struct botid_pool *p, const struct botid_fairq *q)
{
	const struct botid_fairq *r;
	size_t k = q->len, ahead, before = 1, turns, batch = pool_batch(p);

	ahead = k + (p->pending - p->queued);	/* and the ones running */
	/* The resting bot comes last: after q, wherever q is. */
	for (r = p->ring_head; r != NULL; r = r->ring_next) {
		if (r == q) {
			before = 0;
			continue;
		}
		turns = (k + before) * batch;
		ahead += r->len < turns ? r->len : turns;
	}
	if ((r = p->resting) != NULL && r != q)
		ahead += r->len < k * batch ? r->len : k * batch;
	return (uint64_t)ahead * p->op_ns / p->nthreads;
}

/* When to ask again: once the wait ahead fits max_wait, one op at least. */
static uint32_t
pool_retry_ms(uint64_t estimate_ns, uint64_t max_wait_ns, uint64_t op_ns)
{
	uint64_t ns, ms;

	ns = estimate_ns > max_wait_ns ? estimate_ns - max_wait_ns : 0;
	if (ns < op_ns)
		ns = op_ns;
	ms = ns / 1000000u + (ns % 1000000u != 0);
	if (ms < 1)
		ms = 1;
	if (ms > BOTID_MAX_RETRY_MS)
		ms = BOTID_MAX_RETRY_MS;
	return (uint32_t)ms;
}

/*
 * Called with p->mu held: the hint for a request refused now, from the
 * estimated wait ahead of it. It comes back once the queue ahead is short
 * enough (pool_retry_ms), and after the clients refused before it, one
 * operation of the device apart: 64 clients refused at once used to hear
 * the same hint and meet BUSY again together.
 */
static uint32_t
pool_retry_spread_locked(struct botid_pool *p, uint64_t now_ns,
    uint64_t estimate_ns, uint64_t max_wait_ns)
{
	uint64_t at, base, step = p->op_ns / p->nthreads;
	uint32_t ms = pool_retry_ms(estimate_ns, max_wait_ns, p->op_ns);

	base = now_ns + (uint64_t)ms * 1000000u;
	at = p->retry_next_ns > base ? p->retry_next_ns : base;
	/*
	 * Over one max_queue_wait (or the wait itself, if longer) at most,
	 * then from the start again: clients that come back early, ignoring
	 * the hint, must not push the others' hints back without end.
	 */
	if (at - base > max_wait_ns && at - base > base - now_ns)
		at = base;
	p->retry_next_ns = at + step;
	return pool_retry_ms(at - now_ns + max_wait_ns, max_wait_ns, 0);
}

/*
 * Called with p->mu held, for a job just taken from the queue: if its
 * deadline has passed it is answered BUSY without running; returns 1 then.
 */
static int
pool_expired_locked(struct botid_pool *p, struct botid_job *job,
    uint64_t now_ns)
{
	if (job->deadline_ns == 0 || now_ns < job->deadline_ns)
		return 0;
	job->result = BOTID_ERR_BUSY;
	job->sig = NULL;
	job->sig_len = 0;
	job->nattrs = 0;
	job->retry_ms = pool_retry_spread_locked(p, now_ns,
	    pool_estimate_locked(p, job->fairq), job->max_wait_ns);
	p->pending--;
	return 1;
}

/* Calls the backend for job, timing it. */
static void
pool_run_job(struct botid_pool *p, struct botid_job *job)
{
	clock_gettime(CLOCK_MONOTONIC, &job->started);
	job->sig = NULL;
	job->sig_len = 0;
	job->nattrs = 0;
	if (job->kind == BOTID_JOB_ATTRIBUTES)
		job->result = p->be->ops->key_attributes(p->be, job->key,
		    job->attrs, &job->nattrs);
	else if (job->kind == BOTID_JOB_CALL)
		job->result = job->call(job->owner);
	else
		job->result = p->be->ops->sign(p->be, job->key, &job->params,
		    job->digest, job->digest_len, &job->sig, &job->sig_len);
	clock_gettime(CLOCK_MONOTONIC, &job->finished);
}

static void *
pool_worker(void *arg)
{
	struct botid_pool *p = arg;
	struct botid_job *job;
	int spin = 0;	/* only right after a job */

	for (;;) {
		pthread_mutex_lock(&p->mu);
		job = pool_next_locked(p);
		/*
		 * A client that waits for each reply sends its next request
		 * a socket round trip after our last job: look for it a
		 * little before sleeping, since waking a sleeping thread
		 * costs more than the signature on a virtual machine. Not in
		 * a pool whose jobs may run in the loop: the loop signs for
		 * such a client itself, and with several clients the polling
		 * takes the CPU the other workers need (8 clients on two
		 * cores: about 12% more signatures/s without it).
		 */
		if (job == NULL && !p->stopping && spin && !p->inline_ok) {
			struct timespec t0, now;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			do {
				pthread_mutex_unlock(&p->mu);
				sched_yield();
				pthread_mutex_lock(&p->mu);
				clock_gettime(CLOCK_MONOTONIC, &now);
				job = pool_next_locked(p);
			} while (job == NULL && !p->stopping &&
			    (now.tv_sec - t0.tv_sec) * 1000000000L +
			    (now.tv_nsec - t0.tv_nsec) < POOL_SPIN_NS);
		}
		while (job == NULL && !p->stopping) {
			pthread_cond_wait(&p->cv, &p->mu);
			job = pool_next_locked(p);
		}
		/* Its client has heard BUSY's worth of waiting: not run. */
		if (job != NULL && pool_expired_locked(p, job, pool_now_ns())) {
			pthread_mutex_unlock(&p->mu);
			done_post(p->done, job);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		spin = 1;
		if (job == NULL)
			break;
		pool_run_job(p, job);
		pthread_mutex_lock(&p->mu);
		p->pending--;
		if (job->kind == BOTID_JOB_SIGN)
			pool_measure_locked(p, job);
		pthread_mutex_unlock(&p->mu);
		done_post(p->done, job);
	}
	return NULL;
}

int
pool_create(struct botid_backend *be, unsigned nthreads,
    struct botid_done *done, struct botid_pool **pp)
{
	struct botid_pool *p = NULL;
	int r = BOTID_ERR_INTERNAL;
	unsigned i;

	*pp = NULL;
	if (nthreads == 0)
		return BOTID_ERR_INVALID;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->threads = calloc(nthreads, sizeof(*p->threads))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	p->be = be;
	p->done = done;
	if (pthread_mutex_init(&p->mu, NULL) != 0)
		goto out;
	if (pthread_cond_init(&p->cv, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		goto out;
	}
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_worker, p) != 0) {
			log_err("pool: cannot start worker thread");
			p->nthreads = i;
			pool_destroy(p);
			p = NULL;
			goto out;
		}
	}
	p->nthreads = nthreads;
	*pp = p;
	p = NULL;
	r = 0;
 out:
	if (p != NULL) {
		free(p->threads);
		free(p);
	}
	return r;
}

/* Called with p->mu held: job joins its bot's queue. */
static void
pool_enqueue_locked(struct botid_pool *p, struct botid_job *job)
{
	struct botid_fairq *q = job->fairq;

	job->next = NULL;
	if (q->tail != NULL)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	if (!q->in_ring) {
		if (p->ring_tail != NULL)
			p->ring_tail->ring_next = q;
		else
			p->ring_head = q;
		p->ring_tail = q;
		q->ring_next = NULL;
		q->in_ring = 1;
	}
	q->len++;
	p->queued++;
	p->pending++;
	pthread_cond_signal(&p->cv);
}

void
pool_submit(struct botid_pool *p, struct botid_job *job)
{
	job->deadline_ns = 0;
	job->max_wait_ns = 0;
	pthread_mutex_lock(&p->mu);
	pool_enqueue_locked(p, job);
	pthread_mutex_unlock(&p->mu);
}

int
pool_submit_bounded(struct botid_pool *p, struct botid_job *job,
    uint64_t max_wait_ns, uint32_t *retry_ms)
{
	uint64_t estimate, now = pool_now_ns();
	int r = 0;

	*retry_ms = 0;
	job->deadline_ns = max_wait_ns != 0 ? now + max_wait_ns : 0;
	job->max_wait_ns = max_wait_ns;
	pthread_mutex_lock(&p->mu);
	/*
	 * With anything ahead, one op of slack: the estimate is an average,
	 * and a job admitted at the edge would often reach its deadline a
	 * little before the device and be answered BUSY after waiting all
	 * of max_wait, where a refusal now costs the client microseconds.
	 */
	estimate = pool_estimate_locked(p, job->fairq);
	if (max_wait_ns != 0 && estimate > 0 &&
	    estimate + p->op_ns / p->nthreads > max_wait_ns) {
		*retry_ms = pool_retry_spread_locked(p, now, estimate,
		    max_wait_ns);
		r = BOTID_ERR_BUSY;
	} else
		pool_enqueue_locked(p, job);
	pthread_mutex_unlock(&p->mu);
	return r;
}

size_t
pool_expire(struct botid_pool *p, uint64_t now_ns, uint64_t *next_ns)
{
	struct botid_fairq *q, *prev = NULL, *next;
	struct botid_job *expired = NULL, **tail = &expired, *job, **jp;
	struct botid_job *last;
	size_t n = 0;

	*next_ns = 0;
	pthread_mutex_lock(&p->mu);
	/* The resting bot's jobs expire too: it takes its place now. */
	pool_rest_end_locked(p);
	for (q = p->ring_head; q != NULL; q = next) {
		next = q->ring_next;
		/*
		 * The whole queue, not only its oldest job: an unbounded job
		 * (an inventory's) may stand before bounded ones.
		 */
		last = NULL;
		for (jp = &q->head; (job = *jp) != NULL;) {
			if (job->deadline_ns == 0 ||
			    job->deadline_ns > now_ns) {
				if (job->deadline_ns != 0 && (*next_ns == 0 ||
				    job->deadline_ns < *next_ns))
					*next_ns = job->deadline_ns;
				last = job;
				jp = &job->next;
				continue;
			}
			*jp = job->next;
			q->len--;
			p->queued--;
			job->next = NULL;
			*tail = job;
			tail = &job->next;
			n++;
		}
		q->tail = last;
		if (q->head != NULL) {
			prev = q;
			continue;
		}
		/* Nothing left: out of the ring. */
		if (prev != NULL)
			prev->ring_next = next;
		else
			p->ring_head = next;
		if (p->ring_tail == q)
			p->ring_tail = prev;
		q->ring_next = NULL;
		q->in_ring = 0;
	}
	/* The hints, once the expired jobs are out of the estimate. */
	for (job = expired; job != NULL; job = job->next)
		(void)pool_expired_locked(p, job, now_ns);
	pthread_mutex_unlock(&p->mu);
	while ((job = expired) != NULL) {
		expired = job->next;
		done_post(p->done, job);
	}
	return n;
}

uint64_t
pool_op_ns(struct botid_pool *p)
{
	uint64_t ns;

	pthread_mutex_lock(&p->mu);
	ns = p->op_ns;
	pthread_mutex_unlock(&p->mu);
	return ns;
}

void
pool_allow_inline(struct botid_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->inline_ok = 1;
	pthread_mutex_unlock(&p->mu);
}

int
pool_run_inline(struct botid_pool *p, struct botid_job *job)
{
	int run;

	pthread_mutex_lock(&p->mu);
	/* Counted while it runs, as a worker's job is (pool_pending). */
	if ((run = p->inline_ok && p->pending == 0 && !p->stopping &&
	    p->op_ns <= (uint64_t)BOTID_INLINE_MAX_US * 1000u))
		p->pending++;
	pthread_mutex_unlock(&p->mu);
	if (!run)
		return 0;
	job->deadline_ns = 0;
	job->max_wait_ns = 0;
	pool_run_job(p, job);
	pthread_mutex_lock(&p->mu);
	p->pending--;
	if (job->kind == BOTID_JOB_SIGN)
		pool_measure_locked(p, job);
	pthread_mutex_unlock(&p->mu);
	return 1;
}

size_t
pool_pending(struct botid_pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->mu);
	n = p->pending;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void
pool_destroy(struct botid_pool *p)
{
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
