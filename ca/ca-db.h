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
 * Records the JWK (compact JSON with kid, x5c...) of the token key whose
 * certificate serial was just added with ca_db_cert_add.
 */
int	ca_db_token_key_add(struct ca_db *db, const char *serial,
	    const char *kid, const char *jwk);
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
int	ca_db_ssh_revoked_keys(struct ca_db *db, time_t now,
	    int (*fn)(const char *, void *), void *arg);
/* Writes hosts and their issuance history as text to f. */
int	ca_db_inventory(struct ca_db *db, FILE *f);

#endif /* BOTID_ATTEST_CA_DB_H */
