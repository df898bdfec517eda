/*
 * Spin-then-sleep wait for a readable socket (await.h). The window adapts
 * by itself: the wait is measured every time, polled or slept, and the
 * client polls only while the moving average of its waits is inside the
 * window. With more busy clients than cores, replies slow down, the
 * average leaves the window and the clients sleep instead of taking the
 * CPU the agent needs; while they sleep, a probe now and then polls
 * again, since a slept wait counts the wake-up too. Beside other busy tasks the average is no guide
 * (a sleeping client's replies come quickly, a polling one's slowly), so
 * the spin gate watches the polling loop itself: a round that lost the
 * CPU stops polling for a back-off that grows while the contention lasts.
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
	w->probe_every = w->probe_in = 0;
	w->gate.backoff = w->gate.skip = w->gate.good = w->gate.missed = 0;
}

/* A back-off doubled, from BOTID_SPIN_BACKOFF_MIN up to _MAX. */
static uint32_t
await_backoff_next(uint32_t backoff)
{
	if (backoff < BOTID_SPIN_BACKOFF_MIN)
		return BOTID_SPIN_BACKOFF_MIN;
	return backoff < BOTID_SPIN_BACKOFF_MAX / 2 ? backoff * 2 :
	    BOTID_SPIN_BACKOFF_MAX;
}

/* Whether this wait, which the average rules out, polls as a probe. */
static int
await_probe_due(struct botid_await *w)
{
	if (w->probe_in > 0) {
		w->probe_in--;
		return 0;
	}
	return 1;
}

static void
await_probe_failed(struct botid_await *w)
{
	w->probe_every = await_backoff_next(w->probe_every);
	w->probe_in = w->probe_every;
}

int
await_readable(struct botid_await *w, int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t t0 = now_ns(), waited, round_start = t0, now, longest = 0;
	int n, polling = 0, probe = 0;

	/*
	 * The gate judges the CPU, the average the replies: a wait the
	 * average rules out uses no back-off, and a probe feeds only its own.
	 */
	if (w->spin_ns > 0 && w->avg_ns <= w->spin_ns)
		polling = await_gate_open(&w->gate);
	else if (w->spin_ns > 0)
		polling = probe = await_probe_due(w);
	for (;;) {
		n = poll(&p, 1, 0);
		if (!polling)
			break;
		/* A round is the poll and the yield before it. */
		now = now_ns();
		if (now - round_start > longest)
			longest = now - round_start;
		if (n != 0 || longest >= BOTID_SPIN_PREEMPT_NS ||
		    now - t0 >= w->spin_ns)
			break;
		sched_yield();
		round_start = now;
	}
	if (probe && n > 0 && longest < BOTID_SPIN_PREEMPT_NS) {
		/* The reply's own time, without a wake-up in it. */
		w->avg_ns = now_ns() - t0;
		w->probe_every = 0;
	} else if (probe)
		await_probe_failed(w);
	else if (polling)
		(void)await_gate_record(&w->gate, longest, n != 0);
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

int
await_gate_open(struct botid_spin_gate *g)
{
	if (g->skip > 0) {
		g->skip--;
		return 0;
	}
	return 1;
}

enum botid_spin_result
await_gate_record(struct botid_spin_gate *g, uint64_t longest_round_ns,
    int got_event)
{
	enum botid_spin_result res;

	if (longest_round_ns >= BOTID_SPIN_PREEMPT_NS)
		res = BOTID_SPIN_PREEMPTED;
	else if (!got_event)
		res = BOTID_SPIN_MISSED;
	else
		res = BOTID_SPIN_GOOD;
	if (res == BOTID_SPIN_GOOD) {
		g->missed = 0;
		if (++g->good >= BOTID_SPIN_FORGET) {
			g->backoff = 0;
			g->good = 0;
		}
		return res;
	}
	g->good = 0;
	if (++g->missed < BOTID_SPIN_MISSES)
		return res;
	g->missed = 0;
	/*
	 * Contention tends to last (a build, a batch job), so each failed
	 * probe doubles the back-off; a probe (and the spin after it, since
	 * one failure alone is forgiven) costs at most a time slice each.
	 */
	g->backoff = await_backoff_next(g->backoff);
	g->skip = g->backoff;
	return res;
}
