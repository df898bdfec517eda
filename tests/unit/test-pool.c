/*
 * Unit tests for agent/pool.c: every job comes back exactly once with the
 * backend's result, and bots share a serial device round-robin.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/pool.h"
#include "lib/error.h"

/* A fake device: signs with the key's first byte and records the order. */
static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t order_cv = PTHREAD_COND_INITIALIZER;
static char order[256];
static size_t norder;
static size_t entered;	/* fake_sign calls begun */
static size_t allow = SIZE_MAX;	/* fake_sign calls that may go past entry */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;

static int
fake_sign(struct botid_backend *be, struct botid_key *key,
    const struct botid_sign_params *p, const uint8_t *digest, size_t len,
    uint8_t **sig, size_t *sig_len)
{
	char name = *(char *)key;

	size_t me;

	pthread_mutex_lock(&order_mu);
	me = ++entered;
	pthread_cond_broadcast(&order_cv);
	while (me > allow)
		pthread_cond_wait(&order_cv, &order_mu);
	pthread_mutex_unlock(&order_mu);
	/* The test holds the gate while it queues, so the order is decided
	 * by the queue and not by thread timing. */
	pthread_mutex_lock(&gate_mu);
	pthread_mutex_unlock(&gate_mu);
	pthread_mutex_lock(&order_mu);
	if (norder < sizeof(order))
		order[norder++] = name;
	pthread_mutex_unlock(&order_mu);
	/* A slow device: each signature takes at least 20 ms. */
	if (name == 'S') {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		while (nanosleep(&ts, &ts) != 0)
			;
	}
	if (name == 'X')
		return BOTID_ERR_TPM;
	if ((*sig = malloc(1)) == NULL)
		return BOTID_ERR_ALLOC;
	**sig = digest[0];
	*sig_len = 1;
	return 0;
}

/* Reports one attribute named after the key; key 'X' fails. */
static int
fake_key_attributes(struct botid_backend *be, struct botid_key *key,
    struct botid_key_attribute *attrs, size_t *n)
{
	char name = *(char *)key;

	*n = 0;
	if (name == 'X')
		return BOTID_ERR_PKCS11;
	attrs[0].name = name == 'A' ? "A" : "other";
	attrs[0].set = 1;
	*n = 1;
	return 0;
}

static const struct botid_backend_ops fake_ops = {
	.name = "fake",
	.sign = fake_sign,
	.key_attributes = fake_key_attributes,
};

static size_t	collect(struct botid_done *, size_t, struct botid_job **);
static void	submit_spec(struct botid_pool *, const char *,
		    struct botid_job *, struct botid_fairq *, char *);

/* A device that swaps keys: every key but 'U' stays loaded. */
static int
fake_key_loaded(struct botid_backend *be, struct botid_key *key)
{
	(void)be;
	return *(char *)key != 'U';
}

static const struct botid_backend_ops swap_ops = {
	.name = "swap",
	.sign = fake_sign,
	.key_attributes = fake_key_attributes,
	.key_loaded = fake_key_loaded,
};

/* Waits until n fake_sign calls have begun (the worker holds a job). */
static void
wait_entered(size_t n)
{
	pthread_mutex_lock(&order_mu);
	while (entered < n)
		pthread_cond_wait(&order_cv, &order_mu);
	pthread_mutex_unlock(&order_mu);
}

/* Lets the first n fake_sign calls past their entry, the others wait. */
static void
set_allow(size_t n)
{
	pthread_mutex_lock(&order_mu);
	allow = n;
	pthread_cond_broadcast(&order_cv);
	pthread_mutex_unlock(&order_mu);
}

/*
 * Runs a job of bot Z and holds it while spec's jobs are queued, then
 * lets Z finish and holds the first job the worker takes next: the order
 * the pool decides without any race between the worker's first pick and
 * the test's queueing (under valgrind the worker used to pick the first
 * of spec's jobs before the rest were queued).
 */
static void
hold_second(struct botid_pool *pool, const char *spec, struct botid_job *jobs,
    struct botid_fairq *qs, char *keys)
{
	set_allow(1);
	pthread_mutex_lock(&gate_mu);
	submit_spec(pool, "Z", jobs, qs, keys);
	wait_entered(1);	/* Z runs, held at the gate */
	submit_spec(pool, spec, jobs + 1, qs, keys);
	pthread_mutex_unlock(&gate_mu);
	wait_entered(2);	/* the next job runs, held by allow */
}

/*
 * Queues jobs for bots named by the letters of spec ("AAAB": three of A,
 * one of B), one fairq per letter (qs indexed by letter - 'A').
 */
static void
submit_spec(struct botid_pool *pool, const char *spec, struct botid_job *jobs,
    struct botid_fairq *qs, char *keys)
{
	size_t i;

	for (i = 0; spec[i] != '\0'; i++) {
		int b = spec[i] == 'U' ? 20 : spec[i] - 'A';

		keys[b] = spec[i];
		jobs[i].key = (struct botid_key *)&keys[b];
		jobs[i].fairq = &qs[b];
		jobs[i].digest_len = 32;
		pool_submit(pool, &jobs[i]);
	}
}

static void
collect_free(struct botid_done *done, size_t n)
{
	struct botid_job *got[32];
	size_t i;

	assert_true(n <= 32);
	assert_int_equal(collect(done, n, got), n);
	for (i = 0; i < n; i++) {
		assert_int_equal(got[i]->result, 0);
		free(got[i]->sig);
	}
}

/*
 * A bot whose first job comes while another bot's job runs goes before
 * that bot's next job: before, the bot served was back in the ring at
 * once, so a bot asking during a key creation waited for the next one too.
 */
static void
test_newcomer_before_served_bot(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct botid_fairq qs[26];
	struct botid_job jobs[8];
	struct botid_done done;
	struct botid_pool *pool;
	char keys[26];

	memset(qs, 0, sizeof(qs));
	memset(jobs, 0, sizeof(jobs));
	norder = entered = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 1, &done, &pool), 0);
	hold_second(pool, "AAA", jobs, qs, keys);	/* A's first job runs */
	submit_spec(pool, "B", jobs + 4, qs, keys);
	set_allow(SIZE_MAX);
	collect_free(&done, 5);
	assert_int_equal(norder, 5);
	assert_memory_equal(order, "ZABAA", 5);
	pool_destroy(pool);
	done_free(&done);
}

/*
 * Where keys are swapped, a bot whose key is still loaded has up to
 * BOTID_POOL_BATCH jobs in its turn, then the others have theirs: no
 * bot waits for more than that many jobs of another, and a bot that had
 * an extra job gives up its next turn while others wait, so that its
 * share stays the same. A bot whose key is not loaded ('U') has one job
 * per turn.
 */
static void
test_batch_while_loaded(void **state)
{
	struct botid_backend be = { .ops = &swap_ops };
	struct botid_fairq qs[26];
	struct botid_job jobs[16];
	struct botid_done done;
	struct botid_pool *pool;
	char keys[26];

	assert_int_equal(BOTID_POOL_BATCH, 2);
	memset(qs, 0, sizeof(qs));
	memset(jobs, 0, sizeof(jobs));
	norder = entered = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 1, &done, &pool), 0);
	hold_second(pool, "AAAAA", jobs, qs, keys);	/* A's first job runs */
	submit_spec(pool, "BBBUUU", jobs + 6, qs, keys);
	set_allow(SIZE_MAX);
	collect_free(&done, 12);
	assert_int_equal(norder, 12);
	/*
	 * After Z, A ran alone, then: B's two, U's one; A and B gave up their next
	 * turns for their second jobs (U's second goes first), then A's two
	 * more, B's last, U's last, and A's, alone.
	 */
	assert_memory_equal(order, "ZAABBUUAABUA", 12);
	pool_destroy(pool);
	done_free(&done);
}

static size_t
collect(struct botid_done *done, size_t want, struct botid_job **jobs)
{
	struct pollfd pfd = { .fd = done->efd, .events = POLLIN };
	struct botid_job *j, *next;
	size_t n = 0;

	while (n < want) {
		assert_true(poll(&pfd, 1, 5000) == 1);
		for (j = done_take_all(done); j != NULL; j = next) {
			next = j->next;
			jobs[n++] = j;
		}
	}
	return n;
}

static void
test_round_robin_across_bots(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct botid_fairq qa, qb;
	struct botid_job jobs[12], *got[12];
	struct botid_done done;
	struct botid_pool *pool;
	char ka = 'A', kb = 'B';
	size_t i, n, first_b = 99, last_b = 0;

	memset(&qa, 0, sizeof(qa));
	memset(&qb, 0, sizeof(qb));
	memset(jobs, 0, sizeof(jobs));
	norder = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 1, &done, &pool), 0);
	pthread_mutex_lock(&gate_mu);
	/* Ten jobs for A queued before two for B. */
	for (i = 0; i < 12; i++) {
		jobs[i].key = (struct botid_key *)(i < 10 ? &ka : &kb);
		jobs[i].fairq = i < 10 ? &qa : &qb;
		jobs[i].digest[0] = (uint8_t)i;
		jobs[i].digest_len = 32;
		pool_submit(pool, &jobs[i]);
	}
	pthread_mutex_unlock(&gate_mu);
	n = collect(&done, 12, got);
	assert_int_equal(n, 12);
	for (i = 0; i < 12; i++) {
		assert_int_equal(got[i]->result, 0);
		assert_int_equal(got[i]->sig_len, 1);
		assert_int_equal(got[i]->sig[0], got[i]->digest[0]);
		free(got[i]->sig);
	}
	for (i = 0; i < norder; i++) {
		if (order[i] == 'B') {
			if (first_b == 99)
				first_b = i;
			last_b = i;
		}
	}
	/* B does not wait behind all of A's jobs. */
	assert_true(first_b <= 2);
	assert_true(last_b <= 4);
	assert_int_equal(pool_pending(pool), 0);
	pool_destroy(pool);
	done_free(&done);
}

static void
test_errors_and_threads(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct botid_fairq q[4];
	struct botid_job jobs[200], *got[200];
	struct botid_done done;
	struct botid_pool *pool;
	char keys[4] = { 'A', 'B', 'C', 'X' };
	size_t i, errors = 0;

	memset(q, 0, sizeof(q));
	memset(jobs, 0, sizeof(jobs));
	norder = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 4, &done, &pool), 0);
	for (i = 0; i < 200; i++) {
		jobs[i].key = (struct botid_key *)&keys[i % 4];
		jobs[i].fairq = &q[i % 4];
		pool_submit(pool, &jobs[i]);
	}
	assert_int_equal(collect(&done, 200, got), 200);
	for (i = 0; i < 200; i++) {
		if (got[i]->result == BOTID_ERR_TPM) {
			errors++;
			assert_null(got[i]->sig);
		} else
			free(got[i]->sig);
	}
	assert_int_equal(errors, 50);
	pool_destroy(pool);
	done_free(&done);
	pool_destroy(NULL);
}

/*
 * pool_run_inline: refused until allowed, then runs an idle pool's job in
 * the caller (nothing posted to done), and refuses while a worker's job is
 * queued or running.
 */
static void
test_run_inline(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct pollfd pfd;
	struct botid_fairq q;
	struct botid_job blocker, job, *got[1];
	struct botid_done done;
	struct botid_pool *pool;
	char k = 'A';

	memset(&q, 0, sizeof(q));
	memset(&blocker, 0, sizeof(blocker));
	memset(&job, 0, sizeof(job));
	norder = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 1, &done, &pool), 0);
	job.key = (struct botid_key *)&k;
	job.fairq = &q;
	job.digest[0] = 7;
	job.digest_len = 32;
	assert_int_equal(pool_run_inline(pool, &job), 0);
	pool_allow_inline(pool);
	assert_int_equal(pool_run_inline(pool, &job), 1);
	assert_int_equal(job.result, 0);
	assert_int_equal(job.sig_len, 1);
	assert_int_equal(job.sig[0], 7);
	free(job.sig);
	job.sig = NULL;
	pfd.fd = done.efd;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 0), 0);	/* nothing posted */
	/* A job held in the worker: the next one must be queued instead. */
	blocker.key = (struct botid_key *)&k;
	blocker.fairq = &q;
	pthread_mutex_lock(&gate_mu);
	pool_submit(pool, &blocker);
	assert_int_equal(pool_run_inline(pool, &job), 0);
	pthread_mutex_unlock(&gate_mu);
	assert_int_equal(collect(&done, 1, got), 1);
	assert_ptr_equal(got[0], &blocker);
	free(blocker.sig);
	assert_int_equal(pool_pending(pool), 0);
	pool_destroy(pool);
	done_free(&done);
}

static void
test_create_rejects_zero_threads(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct botid_done done;
	struct botid_pool *pool = (struct botid_pool *)&be;

	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 0, &done, &pool), BOTID_ERR_INVALID);
	assert_null(pool);
	done_free(&done);
}

/* Attribute jobs share the bots' queues with signatures. */
static void
test_attribute_jobs(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct botid_fairq qa, qx;
	struct botid_job jobs[4], *got[4];
	struct botid_done done;
	struct botid_pool *pool;
	char ka = 'A', kx = 'X';
	size_t i;

	memset(&qa, 0, sizeof(qa));
	memset(&qx, 0, sizeof(qx));
	memset(jobs, 0, sizeof(jobs));
	norder = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 2, &done, &pool), 0);
	for (i = 0; i < 4; i++) {
		jobs[i].kind = i % 2 == 0 ? BOTID_JOB_ATTRIBUTES : BOTID_JOB_SIGN;
		jobs[i].key = (struct botid_key *)(i < 2 ? &ka : &kx);
		jobs[i].fairq = i < 2 ? &qa : &qx;
		jobs[i].digest[0] = 7;
		jobs[i].digest_len = 32;
		jobs[i].nattrs = 99;
		pool_submit(pool, &jobs[i]);
	}
	assert_int_equal(collect(&done, 4, got), 4);
	/* A's attributes and signature; X's read failed, as its signature. */
	assert_int_equal(jobs[0].result, 0);
	assert_int_equal(jobs[0].nattrs, 1);
	assert_string_equal(jobs[0].attrs[0].name, "A");
	assert_null(jobs[0].sig);
	assert_int_equal(jobs[1].result, 0);
	assert_int_equal(jobs[1].nattrs, 0);
	assert_int_equal(jobs[1].sig[0], 7);
	free(jobs[1].sig);
	assert_int_equal(jobs[2].result, BOTID_ERR_PKCS11);
	assert_int_equal(jobs[2].nattrs, 0);
	assert_int_equal(jobs[3].result, BOTID_ERR_TPM);
	/* Only the signatures went through sign. */
	assert_int_equal(norder, 2);
	pool_destroy(pool);
	done_free(&done);
	(void)state;
}

/* A pool whose device took >= 20 ms per signature (one measured). */
static void
slow_pool(struct botid_done *done, struct botid_pool **pool,
    struct botid_fairq *q, char *k)
{
	static struct botid_backend be = { .ops = &fake_ops };
	struct botid_job job, *got[1];

	memset(&job, 0, sizeof(job));
	assert_int_equal(done_init(done), 0);
	assert_int_equal(pool_create(&be, 1, done, pool), 0);
	job.key = (struct botid_key *)k;
	job.fairq = q;
	job.digest_len = 32;
	pool_submit(*pool, &job);
	assert_int_equal(collect(done, 1, got), 1);
	free(job.sig);
	assert_true(pool_op_ns(*pool) >= 20u * 1000 * 1000);
}

/*
 * max_queue_wait at enqueue: with a job ahead on a 20 ms device, a 1 ms
 * bound is refused at once with a retry hint of about one signature; an
 * unbounded job is still queued.
 */
static void
test_bounded_refused_at_enqueue(void **state)
{
	struct botid_fairq q;
	struct botid_job first, second, third, fourth, *got[2];
	struct botid_done done;
	struct botid_pool *pool;
	char k = 'S';
	uint32_t retry = 99, retry2 = 0;
	uint64_t t0, elapsed_ms;

	memset(&q, 0, sizeof(q));
	memset(&first, 0, sizeof(first));
	memset(&second, 0, sizeof(second));
	memset(&third, 0, sizeof(third));
	memset(&fourth, 0, sizeof(fourth));
	norder = 0;
	slow_pool(&done, &pool, &q, &k);
	first.key = second.key = third.key = fourth.key =
	    (struct botid_key *)&k;
	first.fairq = second.fairq = third.fairq = fourth.fairq = &q;
	pthread_mutex_lock(&gate_mu);
	/*
	 * An empty queue: nothing ahead. (A bound of an hour: the worker
	 * may take the job late on a busy machine, and must not find it
	 * expired.)
	 */
	assert_int_equal(pool_submit_bounded(pool, &first, 3600000000000u,
	    &retry), 0);
	assert_int_equal(retry, 0);
	t0 = pool_now_ns();
	assert_int_equal(pool_submit_bounded(pool, &second, 1000000u, &retry),
	    BOTID_ERR_BUSY);
	assert_true(retry >= 19 && retry <= BOTID_MAX_RETRY_MS);
	/*
	 * Refused right after, it hears a later time: the one before it
	 * comes back first, one signature (>= 20 ms) earlier. Both hints
	 * are from their own call's time (and rounded up), hence the time
	 * between the calls.
	 */
	assert_int_equal(pool_submit_bounded(pool, &fourth, 1000000u,
	    &retry2), BOTID_ERR_BUSY);
	elapsed_ms = (pool_now_ns() - t0) / 1000000u + 1;
	assert_true((uint64_t)retry2 + elapsed_ms + 1 >= (uint64_t)retry + 20);
	assert_true(retry2 <= BOTID_MAX_RETRY_MS);
	/* No bound (0): queued behind it. */
	assert_int_equal(pool_submit_bounded(pool, &third, 0, &retry), 0);
	assert_int_equal(third.deadline_ns, 0);
	pthread_mutex_unlock(&gate_mu);
	assert_int_equal(collect(&done, 2, got), 2);
	assert_int_equal(first.result, 0);
	assert_int_equal(third.result, 0);
	free(first.sig);
	free(third.sig);
	assert_int_equal(pool_pending(pool), 0);
	pool_destroy(pool);
	done_free(&done);
	(void)state;
}

/*
 * With a job ahead, a bound under two signatures is refused at once (one
 * signature of slack: the old rule queued it, to answer BUSY after the
 * whole wait whenever the device ran a little slower than its average);
 * refusals close together get hints one signature apart, so that clients
 * refused together come back one by one, and no hint goes further than
 * max_wait past the first one's. The hints are checked against clock
 * readings taken around each call, so a stall between calls cannot fail
 * the test.
 */
static void
test_bounded_hints_spread(void **state)
{
	struct botid_fairq q;
	struct botid_job first, late[4], fits, *got[2];
	struct botid_done done;
	struct botid_pool *pool;
	char k = 'S';
	uint64_t op, bound, before[4], after[4];
	uint32_t hint[4], retry;
	size_t i;

	memset(&q, 0, sizeof(q));
	memset(&first, 0, sizeof(first));
	memset(late, 0, sizeof(late));
	memset(&fits, 0, sizeof(fits));
	norder = 0;
	slow_pool(&done, &pool, &q, &k);
	first.key = fits.key = (struct botid_key *)&k;
	first.fairq = fits.fairq = &q;
	pthread_mutex_lock(&gate_mu);
	assert_int_equal(pool_submit_bounded(pool, &first, 3600000000000u,
	    &retry), 0);
	op = pool_op_ns(pool);
	bound = op + op / 2;
	for (i = 0; i < 4; i++) {
		late[i].key = (struct botid_key *)&k;
		late[i].fairq = &q;
		before[i] = pool_now_ns();
		assert_int_equal(pool_submit_bounded(pool, &late[i], bound,
		    &hint[i]), BOTID_ERR_BUSY);
		after[i] = pool_now_ns();
		/* At least a signature; at most max_wait past that. */
		assert_true((uint64_t)hint[i] * 1000000u + 1000000u >= op);
		assert_true((uint64_t)hint[i] * 1000000u <= op + bound +
		    2000000u);
	}
	/* The second comes back a signature after the first. */
	assert_true(after[1] + (uint64_t)hint[1] * 1000000u + 1000000u >=
	    before[0] + (uint64_t)hint[0] * 1000000u + op);
	/* Two and a half signatures hold one ahead and its slack. */
	assert_int_equal(pool_submit_bounded(pool, &fits, 2 * op + op / 2,
	    &retry), 0);
	pthread_mutex_unlock(&gate_mu);
	assert_int_equal(collect(&done, 2, got), 2);
	assert_int_equal(first.result, 0);
	/* Its deadline may pass on a very busy machine: BUSY then. */
	assert_true(fits.result == 0 || fits.result == BOTID_ERR_BUSY);
	free(first.sig);
	free(fits.sig);
	pool_destroy(pool);
	done_free(&done);
	(void)state;
}

/*
 * The estimate follows round-robin: a bot with 30 jobs queued is refused
 * a bound of 5 signatures, while a bot asking once, whose turn comes after
 * one job of each other bot, is queued under the same bound.
 */
static void
test_bounded_estimate_is_fair(void **state)
{
	struct botid_fairq qa, qb;
	struct botid_job hog[30], more, once, *got[32];
	struct botid_done done;
	struct botid_pool *pool;
	char ka = 'S', kb = 'B';
	uint64_t bound;
	uint32_t retry;
	size_t i;

	memset(&qa, 0, sizeof(qa));
	memset(&qb, 0, sizeof(qb));
	memset(hog, 0, sizeof(hog));
	memset(&more, 0, sizeof(more));
	memset(&once, 0, sizeof(once));
	norder = 0;
	slow_pool(&done, &pool, &qa, &ka);
	/* Nothing finishes while the gate is held: the average stays. */
	pthread_mutex_lock(&gate_mu);
	for (i = 0; i < 30; i++) {
		hog[i].key = (struct botid_key *)&ka;
		hog[i].fairq = &qa;
		pool_submit(pool, &hog[i]);
	}
	bound = 5 * pool_op_ns(pool);
	more.key = (struct botid_key *)&ka;
	more.fairq = &qa;
	assert_int_equal(pool_submit_bounded(pool, &more, bound, &retry),
	    BOTID_ERR_BUSY);
	/* 30 jobs ahead, a bound of 5: about 25 signatures to wait. */
	assert_true(retry >= 20 * 20);
	once.key = (struct botid_key *)&kb;
	once.fairq = &qb;
	assert_int_equal(pool_submit_bounded(pool, &once, bound, &retry), 0);
	pthread_mutex_unlock(&gate_mu);
	assert_int_equal(collect(&done, 31, got), 31);
	/*
	 * B's job ran among the first three, not after A's thirty (unless
	 * a very busy machine let its deadline, five signatures, pass).
	 */
	for (i = 0; i < norder && order[i] != 'B'; i++)
		;
	if (once.result == 0)
		assert_true(i <= 3);
	else
		assert_int_equal(once.result, BOTID_ERR_BUSY);
	for (i = 0; i < 31; i++)
		free(got[i]->sig);
	pool_destroy(pool);
	done_free(&done);
	(void)state;
}

/*
 * Jobs still queued at their deadline: pool_expire() answers them BUSY
 * (never signed) and says when the next deadline is; the job the worker
 * holds finishes normally.
 */
static void
test_expire_queued(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct botid_fairq qa, qb;
	struct botid_job blocker, jobs[3], late, *got[4];
	struct botid_done done;
	struct botid_pool *pool;
	char k = 'A';
	uint64_t next, now;
	uint32_t retry;
	size_t i;

	memset(&qa, 0, sizeof(qa));
	memset(&qb, 0, sizeof(qb));
	memset(&blocker, 0, sizeof(blocker));
	memset(jobs, 0, sizeof(jobs));
	memset(&late, 0, sizeof(late));
	norder = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 1, &done, &pool), 0);
	pthread_mutex_lock(&gate_mu);
	blocker.key = (struct botid_key *)&k;
	blocker.fairq = &qa;
	pool_submit(pool, &blocker);
	/* No time measured yet: nothing is refused at enqueue. */
	for (i = 0; i < 3; i++) {
		jobs[i].key = (struct botid_key *)&k;
		jobs[i].fairq = i == 2 ? &qb : &qa;
		assert_int_equal(pool_submit_bounded(pool, &jobs[i], 1000000u,
		    &retry), 0);
		assert_true(jobs[i].deadline_ns != 0);
	}
	late.key = (struct botid_key *)&k;
	late.fairq = &qb;
	assert_int_equal(pool_submit_bounded(pool, &late, 3600000000000u,
	    &retry), 0);
	/* Before any deadline: nothing expires; the next one is reported. */
	assert_int_equal(pool_expire(pool, jobs[0].deadline_ns - 1, &next), 0);
	assert_true(next != 0 && next <= jobs[0].deadline_ns);
	/* Past the 1 ms deadlines (the clock is passed in: no waiting). */
	now = jobs[2].deadline_ns + 1;
	assert_int_equal(pool_expire(pool, now, &next), 3);
	assert_int_equal(next, late.deadline_ns);
	assert_int_equal(collect(&done, 3, got), 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(got[i]->result, BOTID_ERR_BUSY);
		assert_true(got[i]->retry_ms >= 1);
		assert_null(got[i]->sig);
	}
	pthread_mutex_unlock(&gate_mu);
	assert_int_equal(collect(&done, 2, got), 2);
	assert_int_equal(blocker.result, 0);
	assert_int_equal(late.result, 0);
	free(blocker.sig);
	free(late.sig);
	/* Only the blocker and the late job reached the device. */
	assert_int_equal(norder, 2);
	assert_int_equal(pool_pending(pool), 0);
	pool_destroy(pool);
	done_free(&done);
	(void)state;
}

/* A worker that reaches a job past its deadline answers BUSY unsigned. */
static void
test_expire_by_worker(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct botid_fairq q;
	struct botid_job blocker, job, *got[2];
	struct botid_done done;
	struct botid_pool *pool;
	struct timespec ts = { 0, 1000000 };
	char k = 'A';
	uint32_t retry;

	memset(&q, 0, sizeof(q));
	memset(&blocker, 0, sizeof(blocker));
	memset(&job, 0, sizeof(job));
	norder = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 1, &done, &pool), 0);
	pthread_mutex_lock(&gate_mu);
	blocker.key = job.key = (struct botid_key *)&k;
	blocker.fairq = job.fairq = &q;
	pool_submit(pool, &blocker);
	assert_int_equal(pool_submit_bounded(pool, &job, 1000000u, &retry), 0);
	/* Wait for the clock to pass the deadline, not for a time span. */
	while (pool_now_ns() <= job.deadline_ns)
		(void)nanosleep(&ts, NULL);
	pthread_mutex_unlock(&gate_mu);
	assert_int_equal(collect(&done, 2, got), 2);
	assert_int_equal(blocker.result, 0);
	assert_int_equal(job.result, BOTID_ERR_BUSY);
	assert_true(job.retry_ms >= 1);
	assert_null(job.sig);
	assert_int_equal(norder, 1);
	free(blocker.sig);
	pool_destroy(pool);
	done_free(&done);
	(void)state;
}

/* The loop signs in its thread only for a device measured fast. */
static void
test_inline_refused_when_slow(void **state)
{
	struct botid_fairq q;
	struct botid_job job, *got[1];
	struct botid_done done;
	struct botid_pool *pool;
	char k = 'S';

	memset(&q, 0, sizeof(q));
	memset(&job, 0, sizeof(job));
	norder = 0;
	slow_pool(&done, &pool, &q, &k);
	pool_allow_inline(pool);
	job.key = (struct botid_key *)&k;
	job.fairq = &q;
	job.digest_len = 32;
	assert_int_equal(pool_run_inline(pool, &job), 0);
	pool_submit(pool, &job);
	assert_int_equal(collect(&done, 1, got), 1);
	free(job.sig);
	pool_destroy(pool);
	done_free(&done);
	(void)state;
}

/* A job's own call (a key creation) runs on a worker, its result kept. */
static int
fake_call(void *arg)
{
	int *n = arg;

	return ++*n == 1 ? 0 : BOTID_ERR_TPM;
}

static void
test_call_jobs(void **state)
{
	struct botid_backend be = { .ops = &fake_ops };
	struct botid_fairq qc, qa;
	struct botid_job calls[2], sign, *got[3];
	struct botid_done done;
	struct botid_pool *pool;
	char k = 'A';
	int n = 0;

	memset(&qc, 0, sizeof(qc));
	memset(&qa, 0, sizeof(qa));
	memset(calls, 0, sizeof(calls));
	memset(&sign, 0, sizeof(sign));
	norder = 0;
	assert_int_equal(done_init(&done), 0);
	assert_int_equal(pool_create(&be, 1, &done, &pool), 0);
	calls[0].kind = calls[1].kind = BOTID_JOB_CALL;
	calls[0].call = calls[1].call = fake_call;
	calls[0].owner = calls[1].owner = &n;
	calls[0].fairq = calls[1].fairq = &qc;
	pool_submit(pool, &calls[0]);
	pool_submit(pool, &calls[1]);
	sign.key = (struct botid_key *)&k;
	sign.fairq = &qa;
	sign.digest_len = 32;
	pool_submit(pool, &sign);
	assert_int_equal(collect(&done, 3, got), 3);
	assert_int_equal(n, 2);
	assert_int_equal(calls[0].result, 0);
	assert_int_equal(calls[1].result, BOTID_ERR_TPM);
	assert_null(calls[0].sig);
	assert_int_equal(sign.result, 0);
	/* Only the signature went through the device's sign. */
	assert_int_equal(norder, 1);
	free(sign.sig);
	pool_destroy(pool);
	done_free(&done);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_robin_across_bots),
		cmocka_unit_test(test_newcomer_before_served_bot),
		cmocka_unit_test(test_batch_while_loaded),
		cmocka_unit_test(test_attribute_jobs),
		cmocka_unit_test(test_errors_and_threads),
		cmocka_unit_test(test_run_inline),
		cmocka_unit_test(test_create_rejects_zero_threads),
		cmocka_unit_test(test_bounded_refused_at_enqueue),
		cmocka_unit_test(test_bounded_estimate_is_fair),
		cmocka_unit_test(test_bounded_hints_spread),
		cmocka_unit_test(test_expire_queued),
		cmocka_unit_test(test_expire_by_worker),
		cmocka_unit_test(test_inline_refused_when_slow),
		cmocka_unit_test(test_call_jobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
