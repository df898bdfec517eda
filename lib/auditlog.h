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
#define AUDITLOG_RUN_LEN	16	/* an agent run's random identity */
#define AUDITLOG_TIME_MAX	40	/* a checkpoint's time, with its NUL */
#define AUDITLOG_FOUND_MAX	240	/* a break's "found", with its NUL */

/*
 * What a version 2 checkpoint asserts, every member signed: its own number
 * (0, 1, ... across files and restarts), the run of the agent that made
 * it, when it was asked for, why, the entry it seals, the SHA-256 of the
 * previous checkpoint's line (zeros for the first) and, for a "break",
 * what the agent found at start. Strings are printable ASCII.
 */
struct auditlog_checkpoint {
	uint64_t	 number;
	uint8_t		 run[AUDITLOG_RUN_LEN];
	const char	*time;
	const char	*reason;	/* entries ... shutdown, break */
	uint64_t	 sealed_seq;
	uint8_t		 sealed_hash[AUDITLOG_HASH_LEN];
	uint8_t		 prev_checkpoint[AUDITLOG_HASH_LEN];
	const char	*found;		/* "" unless a break */
};

/*
 * The SHA-256 digest the host key signs for a checkpoint that seals the
 * entry sealed_seq whose line hashes to hash. Errors: BOTID_ERR_CRYPTO.
 */
int	auditlog_checkpoint_digest(uint64_t sealed_seq,
	    const uint8_t hash[AUDITLOG_HASH_LEN],
	    uint8_t digest[AUDITLOG_HASH_LEN]);

/*
 * The SHA-256 digest the host key signs for a version 2 checkpoint: that
 * of the text "botid-audit-checkpoint-v2\n" then "NAME VALUE\n" for
 * number, run, time, reason, sealed_seq, sealed_hash, prev_checkpoint and
 * found, in that order (integers in decimal, hashes in lowercase hex).
 * Errors: BOTID_ERR_INVALID (a string not printable ASCII, or too long),
 * _CRYPTO.
 */
int	auditlog_checkpoint_digest_v2(const struct auditlog_checkpoint *c,
	    uint8_t digest[AUDITLOG_HASH_LEN]);

/* The last line of a log, as a starting agent checks it. */
struct auditlog_tail_info {
	uint64_t	seq;
	uint8_t		hash[AUDITLOG_HASH_LEN];	/* of the line */
	int		checkpoint;	/* the line is a checkpoint */
	int		version;	/* its version, 1 or 2 */
	int		final;		/* reason rotate or shutdown */
	int		is_signed;
	int		sig_ok;		/* signature verified */
	uint64_t	number;		/* version 2: its number */
	char		reason[16];
};

/*
 * Reads the last line of the log at fd like auditlog_tail, and says what
 * it is; with key (may be NULL), whether its signature verifies.
 * Errors: those of auditlog_tail.
 */
int	auditlog_tail_check(int fd, EVP_PKEY *key,
	    struct auditlog_tail_info *t, int *partial);

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

/* A checkpoint as the CA anchors it (doc/audit.md, "The anchor"). */
struct auditlog_anchor {
	uint64_t	number;
	uint64_t	seq;		/* of the checkpoint line */
	uint64_t	sealed_seq;
	uint8_t		hash[AUDITLOG_HASH_LEN];	/* line + '\n' */
	uint8_t		run[AUDITLOG_RUN_LEN];
	char		reason[16];
	char		time[AUDITLOG_TIME_MAX];
};

/*
 * Parses one log line (without its line end) that must be a signed
 * version 2 checkpoint, and with key (may be NULL) checks its signature.
 * Errors: BOTID_ERR_INVALID (not such a checkpoint), _DENIED (the
 * signature does not verify), _TOO_LARGE.
 */
int	auditlog_checkpoint_check(const uint8_t *line, size_t len,
	    EVP_PKEY *key, struct auditlog_anchor *a);

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
	uint64_t	v1_checkpoints;	/* reason, time unsigned */
	uint64_t	failures;	/* reported through the callback */
	int		have_number;	/* a version 2 checkpoint was read */
	uint64_t	last_number;	/* the last one's number */
	uint8_t		last_checkpoint[AUDITLOG_HASH_LEN]; /* its line hash */
	uint64_t	last_checkpoint_seq;
	int		anchor_seen;	/* the anchor's checkpoint was read */
};

/*
 * Called once for each failure, with its one line (as err gets the first
 * one): the verifier reports every failure it finds, taking up the chain
 * again at the line after it.
 */
typedef void auditlog_report_fn(void *arg, const char *line);


/*
 * A verifier for one chain, spread over files given oldest first.
 * host_key (reference taken; NULL: signatures are not checked, and an
 * unsigned checkpoint is no error) is the host certificate's public key.
 * Errors: BOTID_ERR_ALLOC.
 */
int	auditlog_verifier_new(EVP_PKEY *host_key,
	    struct auditlog_verifier **vp);
void	auditlog_verifier_free(struct auditlog_verifier *v);
/* Sets the function told of each failure (NULL: none). */
void	auditlog_verifier_set_report(struct auditlog_verifier *v,
	    auditlog_report_fn *fn, void *arg);

/*
 * The newest checkpoint held outside the host (source names it in
 * messages, e.g. the CA's URL): verification fails when the chain ends
 * before it, or holds another checkpoint under its number.
 * Errors: BOTID_ERR_ALLOC.
 */
int	auditlog_verifier_set_anchor(struct auditlog_verifier *v,
	    const struct auditlog_anchor *a, const char *source);

/*
 * Checks the next file of the chain (or len bytes of data, named name in
 * messages), to its end. On failure err holds one line, "NAME:LINE (seq
 * N): what is wrong", the first failure found, and later calls return it
 * too (each further failure goes to the report function). Errors: BOTID_ERR_DENIED (the chain or
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
