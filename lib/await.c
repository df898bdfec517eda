/*
 * Spin-then-sleep wait for a readable socket (await.h). The window adapts
 * by itself: the wait is measured every time, polled or slept, and the
 * client polls only while the moving average of its waits is inside the
 * window. With more busy clients than cores, replies slow down, the
 * average leaves the window and the clients sleep instead of taking the
 * CPU the agent needs.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "lib/await.h"
#include "lib/error.h"

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
await_init(struct botid_await *w)
{
	/* Not from a setuid caller's environment (see botid_connect()). */
	const char *s = secure_getenv("BOTID_SPIN_US");
	unsigned long us = BOTID_AWAIT_SPIN_US;
	char *end;

	if (s != NULL && *s != '\0') {
		errno = 0;
		us = strtoul(s, &end, 10);
		if (errno != 0 || *end != '\0' || *s == '-' ||
		    us > BOTID_AWAIT_MAX_SPIN_US)
			us = BOTID_AWAIT_SPIN_US;
	}
	w->spin_ns = (uint64_t)us * 1000u;
	w->avg_ns = 0;
}

int
await_readable(struct botid_await *w, int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t t0 = now_ns(), waited;
	int n, polling = w->spin_ns > 0 && w->avg_ns <= w->spin_ns;

	for (;;) {
		n = poll(&p, 1, 0);
		if (n != 0 || !polling)
			break;
		if (now_ns() - t0 >= w->spin_ns)
			break;
		sched_yield();
	}
	while (n == 0 || (n == -1 && errno == EINTR))
		if ((n = poll(&p, 1, timeout_ms)) == 0)
			return BOTID_ERR_TIMEOUT;
	if (n == -1)
		return BOTID_ERR_IO;
	waited = now_ns() - t0;
	await_record(w, waited);
	return 0;
}

void
await_record(struct botid_await *w, uint64_t waited_ns)
{
	/* Three quarters of the old average, a quarter of this wait. */
	w->avg_ns = w->avg_ns - w->avg_ns / 4 + waited_ns / 4;
}
