/*
 * Audit log: one JSON object per line for every operation, allowed or
 * denied, appended to a file created 0600. Never records a secret: what
 * was signed appears only as its SHA-256.
 */
#ifndef BOTID_AGENT_AUDIT_H
#define BOTID_AGENT_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "agent/peer.h"

struct botid_audit_event {
	const char		*op;		/* "sign-digest", "list", ... */
	const char		*bot;		/* NULL when none */
	const struct botid_peer	*peer;
	const char		*hash;		/* "sha256"..., or NULL */
	const uint8_t		*digest;	/* the digest the key signed, or NULL */
	size_t			 digest_len;
	const uint8_t		*data_sha256;	/* SHA-256 of signed data, or NULL */
	const char		*result;	/* "ok", "denied", "error" */
	const char		*detail;	/* short reason, or NULL */
	uint64_t		 micros;	/* time taken */
};

/* Opens (creating 0600, appending) path; NULL path disables auditing.
 * Errors: BOTID_ERR_IO. */
int	audit_open(const char *path);
/* Writes one event; a failure is logged, never fatal to the request. */
void	audit_write(const struct botid_audit_event *ev);
/* Reopens the file (after logrotate) on reload. */
int	audit_reopen(const char *path);
void	audit_close(void);

#endif /* BOTID_AGENT_AUDIT_H */
