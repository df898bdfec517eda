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

struct botid_pool {
	struct botid_backend	*be;
	struct botid_done	*done;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct botid_fairq	*ring_head;
	struct botid_fairq	*ring_tail;
	size_t			 pending;
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

/* Called with p->mu held: the next job in round-robin order, or NULL. */
static struct botid_job *
pool_next_locked(struct botid_pool *p)
{
	struct botid_fairq *q = p->ring_head;
	struct botid_job *job;

	if (q == NULL)
		return NULL;
	job = q->head;
	q->head = job->next;
	if (q->head == NULL)
		q->tail = NULL;
	/* Unlink the bot from the front; put it back last if it has more. */
	p->ring_head = q->ring_next;
	if (p->ring_head == NULL)
		p->ring_tail = NULL;
	q->ring_next = NULL;
	q->in_ring = 0;
	if (q->head != NULL) {
		if (p->ring_tail != NULL)
			p->ring_tail->ring_next = q;
		else
			p->ring_head = q;
		p->ring_tail = q;
		q->in_ring = 1;
	}
	job->next = NULL;
	return job;
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
		pthread_mutex_unlock(&p->mu);
		spin = 1;
		if (job == NULL)
			break;
		pool_run_job(p, job);
		pthread_mutex_lock(&p->mu);
		p->pending--;
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

void
pool_submit(struct botid_pool *p, struct botid_job *job)
{
	struct botid_fairq *q = job->fairq;

	job->next = NULL;
	pthread_mutex_lock(&p->mu);
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
	p->pending++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
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
	if ((run = p->inline_ok && p->pending == 0 && !p->stopping))
		p->pending++;
	pthread_mutex_unlock(&p->mu);
	if (!run)
		return 0;
	pool_run_job(p, job);
	pthread_mutex_lock(&p->mu);
	p->pending--;
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
