/*
 * The audit anchor (doc/audit.md): every signed checkpoint the agent
 * writes is also sent to botid-ca (POST /v1/audit/anchor), so that a log
 * cut or rolled back on this host shows against the copy held elsewhere.
 * Sending runs on its own thread: the event loop only hands a line over.
 * What could not be sent yet (the CA down) waits, in order, in
 * STATE_DIR/audit-anchor.queue, across restarts.
 */
#ifndef BOTID_AGENT_ANCHOR_H
#define BOTID_AGENT_ANCHOR_H

#include <stddef.h>

/*
 * Starts the sender when the host is enrolled (no CA: nothing to do),
 * loading what an earlier run left queued. Call after libcurl's global
 * setup and the privilege drop. Errors: BOTID_ERR_INTERNAL, _ALLOC.
 */
int	anchor_start(const char *state_dir);
/*
 * Queues one signed checkpoint line (without its line end) for the CA;
 * never waits for the network. After anchor_stop it goes straight to the
 * queue file, for the next run to send. Any thread.
 */
void	anchor_enqueue(const char *line, size_t len);
/*
 * Stops the sender after one more attempt to send what is queued (it
 * stops at the first failure), and writes what is left to the queue file.
 */
void	anchor_stop(void);

#endif /* BOTID_AGENT_ANCHOR_H */
