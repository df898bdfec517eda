/*
 * The audit log's hash chain and checkpoints (doc/audit.md): what the
 * agent needs to continue a chain and seal it, and the verifier behind
 * `botid audit verify`. Every byte of a log file is untrusted input.
 */
#ifndef BOTID_AUDITLOG_H
#define BOTID_AUDITLOG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define AUDITLOG_HASH_LEN	32	/* SHA-256 */

/*
 * The SHA-256 digest the host key signs for a checkpoint that seals the
 * entry sealed_seq whose line hashes to hash. Errors: BOTID_ERR_CRYPTO.
 */
int	auditlog_checkpoint_digest(uint64_t sealed_seq,
	    const uint8_t hash[AUDITLOG_HASH_LEN],
	    uint8_t digest[AUDITLOG_HASH_LEN]);

/*
 * Reads the last line of the log open for reading at fd: its seq and the
 * hash of its bytes (with the line end), for the next entry to link to.
 * *partial is set when the file does not end with a line end (a write
 * was cut short): the caller must end that line before appending.
 * Errors: BOTID_ERR_NOT_FOUND (empty file), _INVALID (the last line is not
 * an entry), _IO, _ALLOC.
 */
int	auditlog_tail(int fd, uint64_t *seq, uint8_t hash[AUDITLOG_HASH_LEN],
	    int *partial);

struct auditlog_verifier;

struct auditlog_summary {
	uint64_t	entries;	/* lines read, checkpoints included */
	uint64_t	checkpoints;
	uint64_t	signed_checkpoints; /* their signature verified */
	uint64_t	first_seq;	/* of the first entry given */
	uint64_t	last_seq;
	int		have_seal;	/* a checkpoint sealed given entries */
	uint64_t	sealed_seq;	/* the last entry sealed */
	uint64_t	unsealed;	/* entries after it, checkpoints aside */
	int		ends_sealed;	/* ends with a shutdown or rotation
					 * checkpoint sealing all before it */
};

/*
 * A verifier for one chain, spread over files given oldest first.
 * host_key (reference taken; NULL: signatures are not checked, and an
 * unsigned checkpoint is no error) is the host certificate's public key.
 * Errors: BOTID_ERR_ALLOC.
 */
int	auditlog_verifier_new(EVP_PKEY *host_key,
	    struct auditlog_verifier **vp);
void	auditlog_verifier_free(struct auditlog_verifier *v);

/*
 * Checks the next file of the chain (or len bytes of data, named name in
 * messages). On failure err holds one line, "NAME:LINE (seq N): what is
 * wrong", and later calls fail too. Errors: BOTID_ERR_DENIED (the chain or
 * a signature does not verify: an entry edited, removed, moved or
 * inserted), _INVALID (a line that is no entry: malformed, cut short),
 * _TOO_LARGE (a line over BOTID_MAX_AUDIT_LINE, or too many entries
 * without a checkpoint), _IO (errno set), _ALLOC.
 */
int	auditlog_verify_file(struct auditlog_verifier *v, const char *path,
	    char *err, size_t errlen);
int	auditlog_verify_data(struct auditlog_verifier *v, const char *name,
	    const uint8_t *data, size_t len, char *err, size_t errlen);

/*
 * Ends the chain and fills *s. With require_sealed, fails unless the last
 * entry is a shutdown or rotation checkpoint that seals every entry
 * before it (with a host key: signed and verified), which a log cut after
 * its last checkpoint is not. After a failed call, returns that code
 * again with its message in err. Errors: BOTID_ERR_DENIED (unsealed),
 * _INVALID (nothing was read).
 */
int	auditlog_verify_end(struct auditlog_verifier *v, int require_sealed,
	    struct auditlog_summary *s, char *err, size_t errlen);

#endif /* BOTID_AUDITLOG_H */
