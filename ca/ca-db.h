/*
 * botid-ca's state in SQLite (one CA) or PostgreSQL (several replicas on
 * one database): join tokens (only their SHA-256), enrolment sessions
 * (only the SHA-256 of the challenge secret), hosts, nonces and issued
 * certificates. The schema is versioned and migrated on open. Single-use
 * items are consumed with one conditional UPDATE and serial numbers are a
 * primary key, so two requests, even at two replicas, can never both use
 * the same item or serial. Nothing is cached: every read asks the database.
 */
#ifndef BOTID_ATTEST_CA_DB_H
#define BOTID_ATTEST_CA_DB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct ca_db;

/*
 * Opens and migrates database: a postgresql:// (or postgres://) URI for
 * PostgreSQL, else a SQLite file path (created 0600). Concurrent opens by
 * several replicas migrate once. Errors: BOTID_ERR_IO (err says why).
 */
int	ca_db_open(const char *database, struct ca_db **dbp, char *err,
	    size_t errlen);
void	ca_db_close(struct ca_db *db);
/* Whether database names a PostgreSQL server rather than a file. */
int	ca_db_is_postgres(const char *database);
/* One round trip to the database (readiness). Errors: BOTID_ERR_IO. */
int	ca_db_ping(struct ca_db *db);

/* Transactions (BEGIN [IMMEDIATE] / COMMIT / ROLLBACK). Errors: _IO. */
int	ca_db_begin(struct ca_db *db);
int	ca_db_commit(struct ca_db *db);
void	ca_db_rollback(struct ca_db *db);

/* Join tokens. bots: comma-separated names, or NULL for any bot. */
int	ca_db_token_add(struct ca_db *db, const uint8_t hash[32],
	    time_t expires, const char *bots);
/*
 * Checks a token: 0 and *bots (malloc'd or NULL) when usable;
 * BOTID_ERR_NOT_FOUND unknown, _DENIED already used, _TIMEOUT expired.
 */
int	ca_db_token_check(struct ca_db *db, const uint8_t hash[32], time_t now,
	    char **bots);
/* Marks a token used by host_id; _DENIED if it was used meanwhile. */
int	ca_db_token_use(struct ca_db *db, const uint8_t hash[32], time_t now,
	    const char *host_id);

struct ca_session {
	char		 id[33];		/* 32 hex digits */
	uint8_t		 secret_hash[32];
	uint8_t		 nonce[32];
	int		 has_token;
	uint8_t		 token_hash[32];
	char		 ek_fpr[65];
	uint8_t		*ak_pub;		/* marshalled TPM2B_PUBLIC */
	size_t		 ak_len;
	uint8_t		*hk_pub;
	size_t		 hk_len;
	char		*bots;			/* NULL: any */
	time_t		 expires;
	int		 used;
};

int	ca_db_session_add(struct ca_db *db, const struct ca_session *s);
/* Errors: BOTID_ERR_NOT_FOUND. */
int	ca_db_session_get(struct ca_db *db, const char *id,
	    struct ca_session *s);
/* Consumes the session; _DENIED if already consumed. */
int	ca_db_session_use(struct ca_db *db, const char *id);
void	ca_session_clear(struct ca_session *s);

struct ca_host {
	char		 id[17];
	uint8_t		*ak_pub;
	size_t		 ak_len;
	uint8_t		*hk_pub;
	size_t		 hk_len;
	char		*bots;
	int		 revoked;
};

int	ca_db_host_add(struct ca_db *db, const char *id, const char *ek_fpr,
	    const struct ca_session *s, time_t now);
/* Errors: BOTID_ERR_NOT_FOUND. */
int	ca_db_host_get(struct ca_db *db, const char *id, struct ca_host *h);
/* Revokes the host and every certificate issued to it. _NOT_FOUND. */
int	ca_db_host_revoke(struct ca_db *db, const char *id, time_t now);
void	ca_host_clear(struct ca_host *h);

int	ca_db_nonce_add(struct ca_db *db, const uint8_t *nonce, size_t len,
	    const char *host_id, time_t expires);
/*
 * Consumes a nonce issued to host_id: 0, or BOTID_ERR_NOT_FOUND (never
 * issued to that host), _DENIED (already used), _TIMEOUT (expired).
 */
int	ca_db_nonce_use(struct ca_db *db, const uint8_t *nonce, size_t len,
	    const char *host_id, time_t now);

int	ca_db_cert_add(struct ca_db *db, const char *serial, const char *host_id,
	    const char *bot, const char *spiffe_id, time_t not_after,
	    const char *attestation, time_t now);
/* Revokes every certificate for spiffe_id; *n how many. */
int	ca_db_cert_revoke_spiffe(struct ca_db *db, const char *spiffe_id,
	    time_t now, int *n);
/*
 * Inside the caller's transaction (ca_db_begin): revokes the certificate
 * serial (upper-case hex) if it was issued to host_id, recording reason (an
 * RFC 5280 CRLReason code). *already is 1 when it was revoked before (then
 * nothing changes). Errors: BOTID_ERR_NOT_FOUND (no such serial), _DENIED
 * (issued to another host), _IO.
 */
int	ca_db_cert_revoke_serial(struct ca_db *db, const char *serial,
	    const char *host_id, int reason, time_t now, int *already);
/*
 * Inside the caller's transaction: revokes host_id and every certificate
 * issued to it and not yet revoked, with reason; fn is called with each
 * serial revoked (a non-zero return stops and is returned). Errors:
 * BOTID_ERR_NOT_FOUND (no such host, or already revoked), _IO.
 */
int	ca_db_host_revoke_certs(struct ca_db *db, const char *host_id,
	    int reason, time_t now,
	    int (*fn)(const char *serial, void *arg), void *arg);
/*
 * Calls fn for every revoked certificate not yet expired, with its
 * CRLReason code, or -1 when none was recorded (operator revocations).
 */
int	ca_db_revoked(struct ca_db *db, time_t now,
	    int (*fn)(const char *serial, time_t revoked, int reason,
	    void *arg), void *arg);
/*
 * Calls fn with the JWK of every token key to serve at now: certificate
 * and host not revoked, certificate not expired, its bot holding a valid
 * signing certificate, one entry per key, and a key replaced by a newer
 * one of its bot only for overlap seconds after that one was issued
 * (ca-db-backend.h has the query). A non-zero return from fn stops and is
 * returned.
 */
int	ca_db_token_keys(struct ca_db *db, time_t now, long overlap,
	    int (*fn)(const char *jwk, void *arg), void *arg);

/*
 * SSH certificates (ca-ssh.c). The bot name and SPIFFE ID (both malloc'd)
 * of certificate serial when it is a bot's signing certificate (not a
 * host's, not a token key's), unexpired at now, unrevoked, of an
 * unrevoked host. Errors: BOTID_ERR_NOT_FOUND (not such a certificate),
 * _IO.
 */
int	ca_db_ssh_cert_bot(struct ca_db *db, const char *serial, time_t now,
	    char **bot, char **spiffe_id);
/* Records the OpenSSH public key line of serial's key (once). */
int	ca_db_ssh_key_add(struct ca_db *db, const char *serial,
	    const char *key_line);
/*
 * Calls fn with the key line of every SSH-certified key whose X.509
 * certificate, or host, is revoked and whose certificate is unexpired.
 */
/*
 * database_sync = normal (botid-ca(8)): commits on this connection no
 * longer wait for the disk (SQLite WAL, synchronous NORMAL); a power loss
 * may then undo the last ones. Only `serve` calls it. PostgreSQL: nothing
 * (its synchronous_commit is the server's). Errors: BOTID_ERR_IO.
 */
int	ca_db_sync_relax(struct ca_db *db);

int	ca_db_ssh_revoked_keys(struct ca_db *db, time_t now,
	    int (*fn)(const char *, void *), void *arg);
/*
 * The same certificates for the KRL (GET /v1/ssh/krl): calls fn with the
 * X.509 serial (hex, as ca_db_ssh_key_add() got it) and the key line of
 * each. A non-zero return from fn stops and is returned. Errors: _IO.
 */
int	ca_db_ssh_revoked_certs(struct ca_db *db, time_t now,
	    int (*fn)(const char *serial, const char *key_line, void *arg),
	    void *arg);

/*
 * Whether a host enrolled with the EK of this fingerprint was revoked:
 * 0 no, BOTID_ERR_DENIED yes (the TPM may not enrol again), _IO.
 */
int	ca_db_ek_revoked(struct ca_db *db, const char *ek_fpr);

/* Why ca_db_cert_add_live did not record a certificate. */
enum ca_refusal {
	CA_REFUSED_NONE = 0,
	CA_REFUSED_HOST,	/* the host is revoked (or unknown) */
	CA_REFUSED_BOT,		/* the SPIFFE ID is revoked */
	CA_REFUSED_KEY,		/* the key was certified for a revoked bot */
	CA_REFUSED_KEY_HOST,	/* the key is certified to another host */
	CA_REFUSED_KEY_BOT	/* ... to another bot of this host */
};

/*
 * In its own transaction: records a bot certificate only while its host
 * is unrevoked, its SPIFFE ID not revoked and its key (key_fpr, the
 * SHA-256 of the SubjectPublicKeyInfo, hex) never certified for a revoked
 * SPIFFE ID nor to another host or another bot name (a key belongs to the
 * host and bot it was first certified for, while a certificate row of it
 * is kept: ca_db_purge keeps revoked bots' and hosts' rows); else *refused
 * says why and nothing is recorded. The host's
 * row is locked against a revocation running at the same time (another
 * replica's), which then waits and revokes this certificate too.
 * Errors: _IO.
 */
int	ca_db_cert_add_live(struct ca_db *db, const char *serial,
	    const char *host_id, const char *bot, const char *spiffe_id,
	    const char *key_fpr, time_t not_after, const char *attestation,
	    time_t now, enum ca_refusal *refused);

/*
 * ca_db_cert_add_live for a token key's certificate, recording its JWK
 * (kid, and jwk: compact JSON with kid, x5c...) in the same transaction:
 * both rows or neither, so the certificate never passes for a signing
 * certificate (the JWK Set and SSH queries tell them apart by token_keys).
 * Errors: _IO (nothing recorded).
 */
int	ca_db_token_cert_add_live(struct ca_db *db, const char *serial,
	    const char *host_id, const char *bot, const char *spiffe_id,
	    const char *key_fpr, time_t not_after, const char *attestation,
	    time_t now, const char *kid, const char *jwk,
	    enum ca_refusal *refused);

/*
 * Lifts the revocation of a bot (its SPIFFE ID and the keys certified for
 * it): it may be certified again; its old certificates stay revoked.
 * Errors: BOTID_ERR_NOT_FOUND (not revoked), _IO.
 */
int	ca_db_bot_lift(struct ca_db *db, const char *spiffe_id);

/*
 * Records a nonce for host_id unless the host already holds max unused,
 * unexpired ones (BOTID_ERR_BUSY). Errors: _BUSY, _IO.
 */
int	ca_db_nonce_add_capped(struct ca_db *db, const uint8_t *nonce,
	    size_t len, const char *host_id, time_t expires, time_t now,
	    unsigned int max);

/* What ca_db_purge deleted. */
struct ca_purge_counts {
	long	nonces;
	long	sessions;
	long	tokens;
	long	certs;
};

/*
 * Deletes nonces, enrolment sessions and join tokens that expired before
 * now, and certificates that expired before now - cert_retention (gone
 * from every CRL by then), except those of a revoked bot (until lifted)
 * or a revoked host, whose keys stay refused (ca_db_cert_add_live).
 * Errors: _IO.
 */
int	ca_db_purge(struct ca_db *db, time_t now, long cert_retention,
	    struct ca_purge_counts *c);

/* Writes hosts and their issuance history as text to f. */
int	ca_db_inventory(struct ca_db *db, FILE *f);

/*
 * Audit anchors (doc/audit.md): the signed checkpoints each host sent,
 * newest first, at most the configured number per host.
 */
struct ca_anchor {
	char		 host_id[17];
	uint64_t	 number;	/* the checkpoint's own number */
	uint64_t	 seq;		/* of its line in the host's log */
	char		 reason[16];
	char		 time[40];	/* when the host made it */
	char		 hash[65];	/* SHA-256 of its line, hex */
	time_t		 received;
	char		*line;		/* the line, malloc'd */
};
void	ca_anchor_clear(struct ca_anchor *a);
/*
 * The newest anchor of host_id into *a (clear it after).
 * Errors: BOTID_ERR_NOT_FOUND, _IO, _ALLOC.
 */
int	ca_db_anchor_latest(struct ca_db *db, const char *host_id,
	    struct ca_anchor *a);
/*
 * Inside the caller's transaction: adds a (the caller checked it is newer
 * than the latest) and keeps only the newest keep anchors of its host.
 * Errors: BOTID_ERR_DENIED (that number is taken), _IO.
 */
int	ca_db_anchor_add(struct ca_db *db, const struct ca_anchor *a,
	    unsigned keep);
/* Calls fn with each host's newest anchor, by host id. Errors: _IO. */
int	ca_db_anchor_each(struct ca_db *db,
	    int (*fn)(const struct ca_anchor *, void *), void *arg);

/*
 * Boot state under pcr_policy first-use (ca-pcr.h): a host's golden PCR
 * values (the selection's SHA-256 values, ascending), and whether its
 * last quote differed from them.
 */
#define CA_BOOT_MAX	768	/* 24 SHA-256 values */
struct ca_boot {
	uint32_t	select;
	uint8_t		golden[CA_BOOT_MAX];
	size_t		golden_len;
	int		changed;
};
/* Errors: BOTID_ERR_NOT_FOUND (never quoted). */
int	ca_db_boot_get(struct ca_db *db, const char *host_id,
	    struct ca_boot *b);
/*
 * Makes values the host's golden values unless it has some already (a
 * replica racing this one): the caller reads them back and compares.
 */
int	ca_db_boot_adopt(struct ca_db *db, const char *host_id,
	    uint32_t select, const uint8_t *values, size_t len, time_t now);
/* Records the host's last quoted values and whether they differ. */
int	ca_db_boot_mark(struct ca_db *db, const char *host_id,
	    uint32_t select, const uint8_t *values, size_t len, int changed,
	    time_t now);
/*
 * `botid-ca host approve-boot`: the last quoted values become the golden
 * ones. Errors: BOTID_ERR_NOT_FOUND (no quote recorded for the host).
 */
int	ca_db_boot_approve(struct ca_db *db, const char *host_id, time_t now);
/* Writes each unrevoked host's boot state (good, changed, never quoted). */
int	ca_db_boot_inventory(struct ca_db *db, FILE *f);

/*
 * Host groups (ca-config.h, botid-ca(8)): a join token may name one, the
 * host it enrols belongs to it, and an operator moves hosts between them.
 * NULL is no group: the top-level boot-state policy.
 */
/*
 * In one transaction: a token as ca_db_token_add, in group (NULL: none).
 * Errors: _IO.
 */
int	ca_db_token_add_group(struct ca_db *db, const uint8_t hash[32],
	    time_t expires, const char *bots, const char *group);
/*
 * The group of token hash into *group (malloc'd, NULL for none).
 * Errors: BOTID_ERR_NOT_FOUND (no such token), _IO, _ALLOC.
 */
int	ca_db_token_group(struct ca_db *db, const uint8_t hash[32],
	    char **group);
/*
 * The group of host_id into *group (malloc'd, NULL for none).
 * Errors: BOTID_ERR_NOT_FOUND (no such host), _IO, _ALLOC.
 */
int	ca_db_host_group(struct ca_db *db, const char *host_id, char **group);
/*
 * Puts host_id in group (NULL: none); its recorded boot state stays.
 * Errors: BOTID_ERR_NOT_FOUND (no such unrevoked host), _IO.
 */
int	ca_db_host_set_group(struct ca_db *db, const char *host_id,
	    const char *group);
/*
 * Calls fn with each unrevoked host and its group (NULL: none), ordered by
 * group then host; a non-zero return from fn stops and is returned.
 */
int	ca_db_host_group_each(struct ca_db *db,
	    int (*fn)(const char *host_id, const char *group, void *arg),
	    void *arg);

#endif /* BOTID_ATTEST_CA_DB_H */
