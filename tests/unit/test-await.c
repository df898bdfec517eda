/*
 * Unit tests for lib/await.c: BOTID_SPIN_US parsing, a reply already
 * there, one that comes while polling, one that comes after the window
 * (the client sleeps), the average leaving and re-entering the window,
 * end of file, and the timeout; the spin gate's back-off, fed synthetic
 * round durations (no clock involved).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/await.h"
#include "lib/error.h"

struct later {
	int		fd;
	unsigned	delay_us;
};

static void *
write_later(void *arg)
{
	struct later *l = arg;

	usleep(l->delay_us);
	if (write(l->fd, "x", 1) != 1)
		abort();
	return NULL;
}

/* Waits on sv[0] for one byte written to sv[1] after delay_us. */
static void
wait_reply(struct botid_await *w, int sv[2], unsigned delay_us)
{
	struct later l = { sv[1], delay_us };
	pthread_t t;
	char c;

	assert_int_equal(pthread_create(&t, NULL, write_later, &l), 0);
	assert_int_equal(await_readable(w, sv[0], 5000), 0);
	assert_int_equal(read(sv[0], &c, 1), 1);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static void
test_spin_us_from_environment(void **state)
{
	static const struct {
		const char	*value;
		uint64_t	 ns;
	} cases[] = {
		{ "0", 0 }, { "300", 300000 }, { "10000", 10000000 },
		{ "10001", BOTID_AWAIT_SPIN_US * 1000ull },
		{ "-5", BOTID_AWAIT_SPIN_US * 1000ull },
		{ "12us", BOTID_AWAIT_SPIN_US * 1000ull },
		{ "", BOTID_AWAIT_SPIN_US * 1000ull },
		{ "99999999999999999999", BOTID_AWAIT_SPIN_US * 1000ull },
	};
	struct botid_await w;
	size_t i;

	(void)state;
	assert_int_equal(unsetenv("BOTID_SPIN_US"), 0);
	await_init(&w);
	assert_int_equal(w.spin_ns, BOTID_AWAIT_SPIN_US * 1000ull);
	assert_int_equal(w.avg_ns, 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(setenv("BOTID_SPIN_US", cases[i].value, 1), 0);
		await_init(&w);
		assert_int_equal(w.spin_ns, cases[i].ns);
	}
	assert_int_equal(unsetenv("BOTID_SPIN_US"), 0);
}

static void
test_ready_and_eof(void **state)
{
	struct botid_await w;
	int sv[2];
	char c;

	(void)state;
	await_init(&w);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "y", 1), 1);
	assert_int_equal(await_readable(&w, sv[0], 0), 0);
	assert_int_equal(read(sv[0], &c, 1), 1);
	/* A closed peer is readable: the next recv reports it. */
	close(sv[1]);
	assert_int_equal(await_readable(&w, sv[0], 1000), 0);
	assert_int_equal(read(sv[0], &c, 1), 0);
	close(sv[0]);
}

static void
test_timeout(void **state)
{
	struct botid_await w;
	int sv[2];

	(void)state;
	await_init(&w);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(await_readable(&w, sv[0], 20), BOTID_ERR_TIMEOUT);
	/* The same with polling off. */
	w.spin_ns = 0;
	assert_int_equal(await_readable(&w, sv[0], 20), BOTID_ERR_TIMEOUT);
	close(sv[0]);
	close(sv[1]);
}

static void
test_average_follows_waits(void **state)
{
	struct botid_await w;
	int sv[2], i;

	(void)state;
	assert_int_equal(unsetenv("BOTID_SPIN_US"), 0);
	await_init(&w);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/*
	 * Replies after 5 ms: past the window, the average leaves it. A
	 * reply is never earlier than its writer's sleep, so however busy
	 * the machine, each wait is at least 5 ms.
	 */
	for (i = 0; i < 8; i++)
		wait_reply(&w, sv, 5000);
	assert_true(w.avg_ns > w.spin_ns);
	assert_true(w.avg_ns >= 2000000);
	/*
	 * Quick replies bring it back inside, and polling resumes. How quick
	 * a real reply is depends on the scheduler, so these waits are given,
	 * not measured: 40 of them take any average of a few ms inside.
	 */
	for (i = 0; i < 40; i++)
		await_record(&w, 1000);
	assert_true(w.avg_ns <= w.spin_ns);
	/* A reply within the window while polling is still received. */
	wait_reply(&w, sv, 50);
	close(sv[0]);
	close(sv[1]);
}

/* Sleeps through n waits: the gate stays shut for each of them. */
static void
gate_shut_for(struct botid_spin_gate *g, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		assert_int_equal(await_gate_open(g), 0);
}

static void
test_gate_backoff_grows(void **state)
{
	struct botid_spin_gate g = { 0 };
	uint32_t expect = BOTID_SPIN_BACKOFF_MIN;
	int i;

	(void)state;
	/* A zeroed gate is open, and good spins keep it so. */
	for (i = 0; i < 200; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		assert_int_equal(await_gate_record(&g, 2000, 1),
		    BOTID_SPIN_GOOD);
	}
	/* Just under the bound is a round, not a preemption. */
	assert_int_equal(await_gate_open(&g), 1);
	assert_int_equal(await_gate_record(&g, BOTID_SPIN_PREEMPT_NS - 1, 1),
	    BOTID_SPIN_GOOD);
	/*
	 * Each probe preempted (the reply came, but a round lost the CPU):
	 * the back-off doubles from MIN up to MAX and stays there.
	 */
	for (i = 0; i < 10; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		assert_int_equal(await_gate_record(&g, BOTID_SPIN_PREEMPT_NS,
		    1), BOTID_SPIN_PREEMPTED);
		assert_int_equal(g.backoff, expect);
		gate_shut_for(&g, expect);
		expect = expect * 2 > BOTID_SPIN_BACKOFF_MAX ?
		    BOTID_SPIN_BACKOFF_MAX : expect * 2;
	}
	assert_int_equal(g.backoff, BOTID_SPIN_BACKOFF_MAX);
	/* The probe after the last back-off. */
	assert_int_equal(await_gate_open(&g), 1);
	/* A preempted round counts even when the window ran out. */
	assert_int_equal(await_gate_record(&g, 3000000, 0),
	    BOTID_SPIN_PREEMPTED);
	gate_shut_for(&g, BOTID_SPIN_BACKOFF_MAX);
	assert_int_equal(await_gate_open(&g), 1);
}

static void
test_gate_recovers(void **state)
{
	struct botid_spin_gate g = { 0 };
	uint32_t i;

	(void)state;
	/* Two failures: back-off 2 x MIN. */
	for (i = 0; i < 2; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		(void)await_gate_record(&g, 800000, 1);
		gate_shut_for(&g, g.backoff);
	}
	assert_int_equal(g.backoff, 2 * BOTID_SPIN_BACKOFF_MIN);
	/*
	 * Good probes reopen polling at once but keep the back-off until
	 * FORGET of them in a row: contention that comes back soon backs
	 * off longer.
	 */
	for (i = 0; i + 1 < BOTID_SPIN_FORGET; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		(void)await_gate_record(&g, 1000, 1);
	}
	assert_int_equal(g.backoff, 2 * BOTID_SPIN_BACKOFF_MIN);
	assert_int_equal(await_gate_open(&g), 1);
	(void)await_gate_record(&g, 1000, 1);
	assert_int_equal(g.backoff, 0);
	/* So the next failure starts again from MIN. */
	assert_int_equal(await_gate_open(&g), 1);
	(void)await_gate_record(&g, BOTID_SPIN_PREEMPT_NS * 10, 1);
	assert_int_equal(g.backoff, BOTID_SPIN_BACKOFF_MIN);
	gate_shut_for(&g, BOTID_SPIN_BACKOFF_MIN);
	assert_int_equal(await_gate_open(&g), 1);
	/* A failure before FORGET good spins doubles it. */
	(void)await_gate_record(&g, 1000, 1);
	assert_int_equal(await_gate_open(&g), 1);
	(void)await_gate_record(&g, BOTID_SPIN_PREEMPT_NS, 1);
	assert_int_equal(g.backoff, 2 * BOTID_SPIN_BACKOFF_MIN);
}

static void
test_gate_misses(void **state)
{
	struct botid_spin_gate g = { 0 };
	uint32_t i;

	(void)state;
	/* One late reply (the device's) leaves the gate open... */
	assert_int_equal(await_gate_open(&g), 1);
	assert_int_equal(await_gate_record(&g, 1000, 0), BOTID_SPIN_MISSED);
	assert_int_equal(g.skip, 0);
	/* ...and a good spin between two of them forgets it. */
	assert_int_equal(await_gate_open(&g), 1);
	(void)await_gate_record(&g, 1000, 1);
	assert_int_equal(await_gate_open(&g), 1);
	assert_int_equal(await_gate_record(&g, 1000, 0), BOTID_SPIN_MISSED);
	assert_int_equal(g.skip, 0);
	/* BOTID_SPIN_MISSES in a row shut it. */
	for (i = 1; i < BOTID_SPIN_MISSES; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		assert_int_equal(await_gate_record(&g, 1000, 0),
		    BOTID_SPIN_MISSED);
	}
	assert_int_equal(g.backoff, BOTID_SPIN_BACKOFF_MIN);
	gate_shut_for(&g, BOTID_SPIN_BACKOFF_MIN);
	assert_int_equal(await_gate_open(&g), 1);
}

/*
 * await_readable consults the gate: with it shut, a reply that comes
 * within the window is slept for (the gate's skip counts it), and a
 * BOTID_SPIN_US=0 client never asks the gate.
 */
static void
test_readable_uses_gate(void **state)
{
	struct botid_await w;
	int sv[2];

	(void)state;
	assert_int_equal(unsetenv("BOTID_SPIN_US"), 0);
	await_init(&w);
	assert_int_equal(w.gate.backoff, 0);
	assert_int_equal(w.gate.skip, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	w.gate.skip = 3;
	wait_reply(&w, sv, 50);
	assert_int_equal(w.gate.skip, 2);
	w.spin_ns = 0;
	wait_reply(&w, sv, 50);
	assert_int_equal(w.gate.skip, 2);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spin_us_from_environment),
		cmocka_unit_test(test_ready_and_eof),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_average_follows_waits),
		cmocka_unit_test(test_gate_backoff_grows),
		cmocka_unit_test(test_gate_recovers),
		cmocka_unit_test(test_gate_misses),
		cmocka_unit_test(test_readable_uses_gate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
