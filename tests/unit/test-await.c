/*
 * Unit tests for lib/await.c: BOTID_SPIN_US parsing, a reply already
 * there, one that comes while polling, one that comes after the window
 * (the client sleeps), the average leaving and re-entering the window,
 * end of file, and the timeout.
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spin_us_from_environment),
		cmocka_unit_test(test_ready_and_eof),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_average_follows_waits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
