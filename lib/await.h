/*
 * Waiting for a reply on a local socket. Waking a thread that sleeps in
 * recv() or poll() costs tens of microseconds on a virtual machine, as
 * much as a SoftHSM2 signature. A client whose recent replies came within
 * the spin window therefore polls the socket for up to that long before
 * it sleeps; one whose replies come later (a TPM, a loaded agent) sleeps
 * at once and spends no CPU waiting. BOTID_SPIN_US in the environment sets
 * the window (0 turns polling off); see botid(1).
 *
 * Polling only pays while the CPU is free: beside other busy tasks a
 * polling thread spends its share of the CPU on nothing and then waits
 * behind them for its turn, where a sleeping one is woken first. The spin
 * gate below notices that and stops polling for a while; the agent's event
 * loop uses it for its own polling too.
 */
#ifndef BOTID_LIB_AWAIT_H
#define BOTID_LIB_AWAIT_H

#include <stdint.h>

#define BOTID_AWAIT_SPIN_US	150u	/* default window */
#define BOTID_AWAIT_MAX_SPIN_US	10000u	/* largest BOTID_SPIN_US taken */

/*
 * One round of a polling loop (a zero-timeout poll, a sched_yield) takes
 * a microsecond or two. A round that took this long means the thread was
 * off its CPU while another task ran there: the CPU is contended.
 */
#define BOTID_SPIN_PREEMPT_NS	50000u
/* Waits to sleep through after the first failed spin. */
#define BOTID_SPIN_BACKOFF_MIN	16u
/* The back-off doubles at each failed probe up to this many waits. */
#define BOTID_SPIN_BACKOFF_MAX	1024u
/* Good spins in a row after which the back-off starts again from MIN. */
#define BOTID_SPIN_FORGET	64u
/*
 * Failed spins in a row (a late reply, a preempted round) before they
 * count as a failure: one late reply is the device's, one preemption a
 * short task's or the host's (a process of higher priority, a virtual CPU
 * paused for a moment); several in a row are a busy machine's.
 */
#define BOTID_SPIN_MISSES	2u

/*
 * Whether a thread may poll, from how its recent polling went. A spin
 * fails when one of its rounds was preempted (BOTID_SPIN_PREEMPT_NS) or
 * when it ended without its event (CPU spent for nothing); it is a
 * failure of the gate after BOTID_SPIN_MISSES such spins in a row. After a
 * failure the thread sleeps through its next `backoff` waits, then polls
 * once as a probe; each failed probe doubles the back-off, good spins
 * leave it, and BOTID_SPIN_FORGET good spins in a row reset it.
 */
struct botid_spin_gate {
	uint32_t	backoff;	/* the last back-off; 0: none */
	uint32_t	skip;		/* waits left to sleep through */
	uint32_t	good;		/* good spins since the last failure */
	uint32_t	missed;		/* failed spins in a row */
};

/* How a spin ended, as await_gate_record() judged it. */
enum botid_spin_result {
	BOTID_SPIN_GOOD,	/* the event came, no round preempted */
	BOTID_SPIN_MISSED,	/* the window ran out without it */
	BOTID_SPIN_PREEMPTED,	/* a round lost the CPU to another task */
};

/*
 * A slept wait is the reply's time plus the wake-up, which on a virtual
 * machine can by itself exceed the window: once a client sleeps, its
 * average would then keep it asleep however quick the agent is. So while
 * the average rules polling out, every probe_every-th wait polls anyway;
 * a reply within the window puts the average back at that wait, and each
 * probe that fails doubles probe_every (BOTID_SPIN_BACKOFF_MIN to _MAX).
 */
struct botid_await {
	uint64_t		spin_ns;	/* the window; 0: never poll */
	uint64_t		avg_ns;		/* moving average of waits */
	uint32_t		probe_every;	/* 0: no probe failed yet */
	uint32_t		probe_in;	/* waits before the next probe */
	struct botid_spin_gate	gate;
};

/* Reads BOTID_SPIN_US (a bad value keeps the default). */
void	await_init(struct botid_await *w);
/*
 * Returns 0 once fd is readable (data, end of file or an error for the
 * next recv to report), BOTID_ERR_TIMEOUT after timeout_ms, BOTID_ERR_IO
 * if poll fails.
 */
int	await_readable(struct botid_await *w, int fd, int timeout_ms);
/*
 * Folds one wait of waited_ns into w's moving average, as await_readable
 * does after each wait: polling goes on while the average stays within
 * the window.
 */
void	await_record(struct botid_await *w, uint64_t waited_ns);

/*
 * Asks the gate before a wait: 1 if the wait may poll, 0 if it must
 * sleep (one wait of the back-off is then used up). A zeroed gate is
 * open.
 */
int	await_gate_open(struct botid_spin_gate *g);
/*
 * Tells the gate how a spin it opened went: longest_round_ns, the longest
 * round of the polling loop (event check and yield), and whether the
 * event came while polling. Returns the judgement.
 */
enum botid_spin_result await_gate_record(struct botid_spin_gate *g,
	    uint64_t longest_round_ns, int got_event);

#endif /* BOTID_LIB_AWAIT_H */
