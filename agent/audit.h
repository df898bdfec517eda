/*
 * Audit log: one JSON object per line for every operation, allowed or
 * denied, appended to a file created 0600. Never records a secret: what
 * was signed appears only as its SHA-256. Entries form a hash chain, and
 * checkpoints signed by the host's TPM key seal it (doc/audit.md).
 * Used only from the event loop thread; signing runs on a worker.
 */
#ifndef BOTID_AGENT_AUDIT_H
#define BOTID_AGENT_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/peer.h"
#include "agent/registry.h"

struct botid_audit_event {
	const char		*op;		/* "sign-digest", "list", ... */
	const char		*bot;		/* NULL when none */
	const struct botid_peer	*peer;		/* NULL: callers not kept */
	const char		*hash;		/* "sha256"..., or NULL */
	const uint8_t		*digest;	/* the digest the key signed, or NULL */
	size_t			 digest_len;
	const uint8_t		*data_sha256;	/* SHA-256 of signed data, or NULL */
	const char		*result;	/* "ok", "denied", "error" */
	const char		*detail;	/* short reason, or NULL */
	uint64_t		 micros;	/* time taken */
	uint64_t		 count;		/* events one line stands for;
						 * 0: one, and no "count" */
};

/*
 * Opens (creating 0600, appending) path and continues the chain from its
 * last line; NULL path disables auditing. Errors: BOTID_ERR_IO.
 */
int	audit_open(const char *path);
/*
 * At start, after audit_open: checks that the log ends with the final
 * checkpoint this agent wrote last (STATE_DIR/audit.state, its signature
 * by the host key when provisioned); if not, the first checkpoint of this
 * run is a signed "break" saying what was found. Draws the run identity.
 * Errors: BOTID_ERR_CRYPTO, _ALLOC (fatal: the agent must not start).
 */
int	audit_resume(const struct botid_agent_config *cfg);
/* Takes the checkpoint period and syslog forwarding from cfg. */
void	audit_configure(const struct botid_agent_config *cfg);
/*
 * Writes one event in full before the caller answers: for a signature,
 * token or key operation, whose reply must not leave without its entry.
 * Aggregated lines still pending are written first, so the log keeps the
 * order of events. Returns 0 once write(2) took the whole line, or when
 * auditing is off (no audit_log); BOTID_ERR_AUDIT_UNAVAILABLE when it
 * could not be written (a cut line is removed again: the chain stays
 * whole). The failure is logged at most once a second, with a count.
 */
int	audit_write(const struct botid_audit_event *ev);
/*
 * Records an event that may be aggregated: a denial or a read that
 * produced no signature, token or key operation. The first event of a
 * caller, op, bot, result and detail is written at once; more of the
 * same within the second and the next are counted into one line written
 * when the second rolls over (audit_flush_due), before the next entry of
 * audit_write, or at audit_flush. One that cannot be written yet stays
 * counted and is written with a later flush; when every slot holds such
 * a count, it is counted by op and result alone (a line with no caller),
 * so no event is dropped uncounted.
 */
void	audit_note(const struct botid_audit_event *ev);
/* Writes the aggregated lines whose second is over; call once a loop. */
void	audit_flush_due(void);
/* Writes every aggregated line now (before sealing or closing). */
void	audit_flush(void);

/*
 * Starts the thread that has the host key sign checkpoints (after the
 * privilege drop). Errors: BOTID_ERR_INTERNAL.
 */
int	audit_signer_start(void);
/* The eventfd that becomes readable when a signed checkpoint waits. */
int	audit_signer_fd(void);
/* Asks for a checkpoint when one is due (entries or interval). */
void	audit_tick(struct botid_registry *reg);
/* Writes the checkpoint the worker signed, if still needed. */
void	audit_finish(void);
/*
 * Writes a checkpoint sealing every entry so far, signed at once (on
 * rotation and at shutdown: the only times the loop waits for the TPM).
 */
void	audit_seal(struct botid_registry *reg, const char *reason);
/* Stops the signing thread, dropping a checkpoint not yet written. */
void	audit_signer_stop(void);

/* Seals the current file, then reopens path (after logrotate) on reload. */
int	audit_reopen(const char *path, struct botid_registry *reg);
/* Closes the log; counts it could not take are logged as lost, exactly. */
void	audit_close(void);

#endif /* BOTID_AGENT_AUDIT_H */
