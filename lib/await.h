/*
 * Waiting for a reply on a local socket. Waking a thread that sleeps in
 * recv() or poll() costs tens of microseconds on a virtual machine, as
 * much as a SoftHSM2 signature. A client whose recent replies came within
 * the spin window therefore polls the socket for up to that long before
 * it sleeps; one whose replies come later (a TPM, a loaded agent) sleeps
 * at once and spends no CPU waiting. BOTID_SPIN_US in the environment sets
 * the window (0 turns polling off); see botid(1).
 */
#ifndef BOTID_LIB_AWAIT_H
#define BOTID_LIB_AWAIT_H

#include <stdint.h>

#define BOTID_AWAIT_SPIN_US	150u	/* default window */
#define BOTID_AWAIT_MAX_SPIN_US	10000u	/* largest BOTID_SPIN_US taken */

struct botid_await {
	uint64_t	spin_ns;	/* the window; 0: never poll */
	uint64_t	avg_ns;		/* moving average of recent waits */
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

#endif /* BOTID_LIB_AWAIT_H */
