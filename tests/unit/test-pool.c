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
#include <unistd.h>
#include <cmocka.h>

#include "agent/pool.h"
#include "lib/error.h"

/* A fake device: signs with the key's first byte and records the order. */
static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;
static char order[256];
static size_t norder;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;

static int
fake_sign(struct botid_backend *be, struct botid_key *key,
    const struct botid_sign_params *p, const uint8_t *digest, size_t len,
    uint8_t **sig, size_t *sig_len)
{
	char name = *(char *)key;

	/* The test holds the gate while it queues, so the order is decided
	 * by the queue and not by thread timing. */
	pthread_mutex_lock(&gate_mu);
	pthread_mutex_unlock(&gate_mu);
	pthread_mutex_lock(&order_mu);
	if (norder < sizeof(order))
		order[norder++] = name;
	pthread_mutex_unlock(&order_mu);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_robin_across_bots),
		cmocka_unit_test(test_attribute_jobs),
		cmocka_unit_test(test_errors_and_threads),
		cmocka_unit_test(test_create_rejects_zero_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
