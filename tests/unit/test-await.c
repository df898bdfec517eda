/*
 * Unit tests for lib/await.c: BOTID_SPIN_US parsing, a reply already
 * there, one that comes while polling, one that comes after the window
 * (the client sleeps), the average leaving and re-entering the window,
 * end of file, and the timeout; the spin gate's back-off, fed synthetic
 * round durations (no clock involved), and await_readable's polling loop
 * with poll, sched_yield and clock_gettime wrapped by the linker: a
 * simulated clock and reply, so what it polls and when it stops polling
 * are checked without timing anything.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/await.h"
#include "lib/error.h"

/*
 * The simulation behind the wrapped calls, when mock.on: a clock that only
 * a sched_yield moves (by round_ns; yield number slow_at by slow_ns, the
 * thread descheduled), a socket readable from zero-timeout poll number
 * ready_at on, and a sleeping poll that always finds the reply.
 */
static struct {
	int		on;
	uint64_t	now_ns;
	uint64_t	round_ns;
	unsigned	slow_at;
	uint64_t	slow_ns;
	unsigned	ready_at;
	unsigned	zero_polls;	/* poll(..., 0) calls */
	unsigned	yields;
	unsigned	sleeps;		/* poll with a timeout */
	uint64_t	sleep_ns;	/* what a sleeping poll takes */
} mock;

int	__real_poll(struct pollfd *, nfds_t, int);
int	__real_sched_yield(void);
int	__real_clock_gettime(clockid_t, struct timespec *);
int	__wrap_poll(struct pollfd *, nfds_t, int);
int	__wrap_sched_yield(void);
int	__wrap_clock_gettime(clockid_t, struct timespec *);

int
__wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	if (!mock.on)
		return __real_poll(fds, nfds, timeout);
	if (timeout == 0 && ++mock.zero_polls < mock.ready_at)
		return 0;
	if (timeout != 0) {
		mock.sleeps++;
		mock.now_ns += mock.sleep_ns;
	}
	fds[0].revents = POLLIN;
	return 1;
}

int
__wrap_sched_yield(void)
{
	if (!mock.on)
		return __real_sched_yield();
	mock.yields++;
	mock.now_ns += mock.yields == mock.slow_at ? mock.slow_ns :
	    mock.round_ns;
	return 0;
}

int
__wrap_clock_gettime(clockid_t clock, struct timespec *ts)
{
	if (!mock.on)
		return __real_clock_gettime(clock, ts);
	ts->tv_sec = (time_t)(mock.now_ns / 1000000000u);
	ts->tv_nsec = (long)(mock.now_ns % 1000000000u);
	return 0;
}

/* One simulated wait; ready_at 0: the reply only comes to a sleeper. */
static void
mock_wait(struct botid_await *w, uint64_t round_ns, unsigned slow_at,
    uint64_t slow_ns, unsigned ready_at)
{
	mock.zero_polls = mock.yields = mock.sleeps = 0;
	mock.round_ns = round_ns;
	mock.slow_at = slow_at;
	mock.slow_ns = slow_ns;
	mock.ready_at = ready_at == 0 ? UINT32_MAX : ready_at;
	mock.on = 1;
	assert_int_equal(await_readable(w, 3, 1000), 0);
	mock.on = 0;
}

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

/*
 * A client whose slept waits take longer than the window (a wake-up on a
 * virtual machine costs as much as the reply) polls again once a probe
 * finds the reply inside the window; probes that miss come ever rarer.
 */
static void
test_probe_after_slow_sleeps(void **state)
{
	struct botid_await w;
	unsigned i, polled;

	(void)state;
	assert_int_equal(unsetenv("BOTID_SPIN_US"), 0);
	await_init(&w);
	/* Slept waits of 200 us put the average out of the 150 us window. */
	mock.sleep_ns = 200000;
	for (i = 0; i < 8; i++)
		await_record(&w, 200000);
	assert_true(w.avg_ns > w.spin_ns);
	/* The first wait out of the window probes: the reply comes at 10 us. */
	mock_wait(&w, 1000, 0, 0, 10);
	assert_int_equal(mock.sleeps, 0);
	assert_true(w.avg_ns <= w.spin_ns);
	/* And polling stays: each next reply is polled for, none slept. */
	for (i = 0; i < 20; i++) {
		mock_wait(&w, 1000, 0, 0, 10);
		assert_int_equal(mock.sleeps, 0);
	}
	/*
	 * Replies only a sleeper gets (past the window): the average leaves
	 * it; then probes miss, at waits 1, 18, 51 (16, then 32 slept
	 * between), and the spin gate, which judges the CPU, is left alone.
	 */
	for (i = 0; i < 8; i++)
		await_record(&w, 200000);
	polled = 0;
	for (i = 1; i <= 60; i++) {
		mock_wait(&w, 1000, 0, 0, 0);
		assert_int_equal(mock.sleeps, 1);
		if (mock.zero_polls > 1) {
			polled++;
			assert_true(i == 1 || i == 18 || i == 51);
		}
	}
	assert_int_equal(polled, 3);
	assert_int_equal(w.gate.backoff, 0);
}

/* Also after a failed assertion, which leaves its test half-way. */
static int
mock_sleep_reset(void **state)
{
	(void)state;
	mock.sleep_ns = 0;
	return 0;
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
	uint32_t expect = BOTID_SPIN_BACKOFF_MIN, j;
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
	 * Each probe preempted (the reply came, but a round lost the CPU),
	 * and the spin after it too: the back-off doubles from MIN up to MAX
	 * and stays there.
	 */
	for (i = 0; i < 10; i++) {
		for (j = 0; j < BOTID_SPIN_MISSES; j++) {
			assert_int_equal(await_gate_open(&g), 1);
			assert_int_equal(await_gate_record(&g,
			    BOTID_SPIN_PREEMPT_NS, 1), BOTID_SPIN_PREEMPTED);
		}
		assert_int_equal(g.backoff, expect);
		gate_shut_for(&g, expect);
		expect = expect * 2 > BOTID_SPIN_BACKOFF_MAX ?
		    BOTID_SPIN_BACKOFF_MAX : expect * 2;
	}
	assert_int_equal(g.backoff, BOTID_SPIN_BACKOFF_MAX);
	/* The probes after the last back-off. */
	for (j = 0; j < BOTID_SPIN_MISSES; j++) {
		assert_int_equal(await_gate_open(&g), 1);
		/* A preempted round counts even when the window ran out. */
		assert_int_equal(await_gate_record(&g, 3000000, 0),
		    BOTID_SPIN_PREEMPTED);
	}
	gate_shut_for(&g, BOTID_SPIN_BACKOFF_MAX);
	assert_int_equal(await_gate_open(&g), 1);
}

static void
test_gate_recovers(void **state)
{
	struct botid_spin_gate g = { 0 };
	uint32_t i;

	(void)state;
	/* Two failures, each two preempted spins: back-off 2 x MIN. */
	for (i = 0; i < 2 * BOTID_SPIN_MISSES; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		(void)await_gate_record(&g, 800000, 1);
		gate_shut_for(&g, g.skip);
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
	for (i = 0; i < BOTID_SPIN_MISSES; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		(void)await_gate_record(&g, BOTID_SPIN_PREEMPT_NS * 10, 1);
	}
	assert_int_equal(g.backoff, BOTID_SPIN_BACKOFF_MIN);
	gate_shut_for(&g, BOTID_SPIN_BACKOFF_MIN);
	assert_int_equal(await_gate_open(&g), 1);
	/* A failure before FORGET good spins doubles it. */
	(void)await_gate_record(&g, 1000, 1);
	for (i = 0; i < BOTID_SPIN_MISSES; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		(void)await_gate_record(&g, BOTID_SPIN_PREEMPT_NS, 1);
	}
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
 * One preempted spin among good ones (a short task of higher priority,
 * a virtual CPU descheduled by its host for a moment) is no contention:
 * the gate stays open; a preemption and a late reply in a row shut it.
 */
static void
test_gate_blip(void **state)
{
	struct botid_spin_gate g = { 0 };
	uint32_t i;

	(void)state;
	for (i = 0; i < 10; i++) {
		assert_int_equal(await_gate_open(&g), 1);
		assert_int_equal(await_gate_record(&g, BOTID_SPIN_PREEMPT_NS,
		    1), BOTID_SPIN_PREEMPTED);
		assert_int_equal(g.skip, 0);
		assert_int_equal(g.backoff, 0);
		assert_int_equal(await_gate_open(&g), 1);
		assert_int_equal(await_gate_record(&g, 1000, 1),
		    BOTID_SPIN_GOOD);
	}
	assert_int_equal(await_gate_open(&g), 1);
	(void)await_gate_record(&g, BOTID_SPIN_PREEMPT_NS * 10, 1);
	assert_int_equal(await_gate_open(&g), 1);
	assert_int_equal(await_gate_record(&g, 1000, 0), BOTID_SPIN_MISSED);
	assert_int_equal(g.backoff, BOTID_SPIN_BACKOFF_MIN);
	assert_int_equal(g.skip, BOTID_SPIN_BACKOFF_MIN);
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

static void
test_polling_loop_simulated(void **state)
{
	struct botid_await w;
	unsigned i;

	(void)state;
	assert_int_equal(unsetenv("BOTID_SPIN_US"), 0);
	await_init(&w);
	mock.now_ns = 1000000000u;
	/*
	 * A quiet machine: 1 us rounds, the reply at the 6th look. Polled
	 * for, no sleep, and the gate stays open.
	 */
	mock_wait(&w, 1000, 0, 0, 6);
	assert_int_equal(mock.zero_polls, 6);
	assert_int_equal(mock.yields, 5);
	assert_int_equal(mock.sleeps, 0);
	assert_int_equal(w.gate.skip, 0);
	assert_int_equal(w.avg_ns, 5000 / 4);
	/*
	 * The second yield takes 2 ms (another task ran): polling stops at
	 * the look after it and the client sleeps for the reply; the next
	 * wait polls again, and the same there shuts the gate for
	 * BOTID_SPIN_BACKOFF_MIN waits.
	 */
	for (i = 0; i < BOTID_SPIN_MISSES; i++) {
		assert_int_equal(w.gate.skip, 0);
		w.avg_ns = 0;
		mock_wait(&w, 1000, 2, 2000000, 0);
		assert_int_equal(mock.zero_polls, 3);
		assert_int_equal(mock.yields, 2);
		assert_int_equal(mock.sleeps, 1);
	}
	assert_int_equal(w.gate.backoff, BOTID_SPIN_BACKOFF_MIN);
	assert_int_equal(w.gate.skip, BOTID_SPIN_BACKOFF_MIN);
	/* Meanwhile every wait looks once and sleeps, never yields. */
	w.avg_ns = 0;
	for (i = 0; i < BOTID_SPIN_BACKOFF_MIN; i++) {
		mock_wait(&w, 1000, 0, 0, 0);
		assert_int_equal(mock.zero_polls, 1);
		assert_int_equal(mock.yields, 0);
		assert_int_equal(mock.sleeps, 1);
	}
	assert_int_equal(w.gate.skip, 0);
	/* The probe: polled again, good, and polling goes on. */
	w.avg_ns = 0;
	mock_wait(&w, 1000, 0, 0, 3);
	assert_int_equal(mock.zero_polls, 3);
	assert_int_equal(mock.sleeps, 0);
	assert_int_equal(w.gate.skip, 0);
	/*
	 * No reply within the window (150 rounds of 1 us): the loop stops
	 * at the window, not before, and the client sleeps. One such spin
	 * leaves the gate open, the second in a row shuts it.
	 */
	w.avg_ns = 0;
	mock_wait(&w, 1000, 0, 0, 0);
	assert_int_equal(mock.yields, BOTID_AWAIT_SPIN_US);
	assert_int_equal(mock.zero_polls, BOTID_AWAIT_SPIN_US + 1);
	assert_int_equal(mock.sleeps, 1);
	assert_int_equal(w.gate.skip, 0);
	w.avg_ns = 0;
	mock_wait(&w, 1000, 0, 0, 0);
	assert_int_equal(w.gate.skip, 2 * BOTID_SPIN_BACKOFF_MIN);
	/* BOTID_SPIN_US=0: one look, then sleep, whatever the gate says. */
	w.spin_ns = 0;
	w.gate.skip = 0;
	mock_wait(&w, 1000, 0, 0, 0);
	assert_int_equal(mock.zero_polls, 1);
	assert_int_equal(mock.yields, 0);
	assert_int_equal(mock.sleeps, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spin_us_from_environment),
		cmocka_unit_test(test_ready_and_eof),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_average_follows_waits),
		cmocka_unit_test_teardown(test_probe_after_slow_sleeps,
		    mock_sleep_reset),
		cmocka_unit_test(test_gate_backoff_grows),
		cmocka_unit_test(test_gate_recovers),
		cmocka_unit_test(test_gate_misses),
		cmocka_unit_test(test_gate_blip),
		cmocka_unit_test(test_readable_uses_gate),
		cmocka_unit_test(test_polling_loop_simulated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
