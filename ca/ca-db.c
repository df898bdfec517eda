/*
 * botid-ca's storage (ca-db.h): the one place that picks a backend from
 * the configured database (a postgresql:// URI or a SQLite file path),
 * then hands every call to it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ca/ca-db-backend.h"
#include "lib/botid.h"

int
ca_db_is_postgres(const char *database)
{
	return strncmp(database, "postgresql://", 13) == 0 ||
	    strncmp(database, "postgres://", 11) == 0;
}

int
ca_db_open(const char *database, struct ca_db **dbp, char *err,
    size_t errlen)
{
	*dbp = NULL;
	if (ca_db_is_postgres(database))
		return ca_db_postgres.open(database, dbp, err, errlen);
	return ca_db_sqlite.open(database, dbp, err, errlen);
}

void
ca_db_close(struct ca_db *db)
{
	if (db != NULL)
		db->ops->close(db);
}

int
ca_db_ping(struct ca_db *db)
{
	return db->ops->ping(db);
}

int
ca_db_begin(struct ca_db *db)
{
	return db->ops->begin(db);
}

int
ca_db_commit(struct ca_db *db)
{
	return db->ops->commit(db);
}

void
ca_db_rollback(struct ca_db *db)
{
	db->ops->rollback(db);
}

int
ca_db_token_add(struct ca_db *db, const uint8_t hash[32], time_t expires,
    const char *bots)
{
	return db->ops->token_add(db, hash, expires, bots);
}

int
ca_db_token_check(struct ca_db *db, const uint8_t hash[32], time_t now,
    char **bots)
{
	*bots = NULL;
	return db->ops->token_check(db, hash, now, bots);
}

int
ca_db_token_use(struct ca_db *db, const uint8_t hash[32], time_t now,
    const char *host_id)
{
	return db->ops->token_use(db, hash, now, host_id);
}

int
ca_db_session_add(struct ca_db *db, const struct ca_session *s)
{
	return db->ops->session_add(db, s);
}

int
ca_db_session_get(struct ca_db *db, const char *id, struct ca_session *s)
{
	return db->ops->session_get(db, id, s);
}

int
ca_db_session_use(struct ca_db *db, const char *id)
{
	return db->ops->session_use(db, id);
}

void
ca_session_clear(struct ca_session *s)
{
	free(s->ak_pub);
	free(s->hk_pub);
	free(s->bots);
	OPENSSL_cleanse(s, sizeof(*s));
}

int
ca_db_host_add(struct ca_db *db, const char *id, const char *ek_fpr,
    const struct ca_session *s, time_t now)
{
	return db->ops->host_add(db, id, ek_fpr, s, now);
}

int
ca_db_host_get(struct ca_db *db, const char *id, struct ca_host *h)
{
	return db->ops->host_get(db, id, h);
}

int
ca_db_host_revoke(struct ca_db *db, const char *id, time_t now)
{
	return db->ops->host_revoke(db, id, now);
}

void
ca_host_clear(struct ca_host *h)
{
	free(h->ak_pub);
	free(h->hk_pub);
	free(h->bots);
	memset(h, 0, sizeof(*h));
}

int
ca_db_nonce_add(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t expires)
{
	return db->ops->nonce_add(db, nonce, len, host_id, expires);
}

int
ca_db_nonce_use(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t now)
{
	return db->ops->nonce_use(db, nonce, len, host_id, now);
}

int
ca_db_cert_add(struct ca_db *db, const char *serial, const char *host_id,
    const char *bot, const char *spiffe_id, time_t not_after,
    const char *attestation, time_t now)
{
	return db->ops->cert_add(db, serial, host_id, bot, spiffe_id, not_after,
	    attestation, now);
}

int
ca_db_cert_revoke_spiffe(struct ca_db *db, const char *spiffe_id, time_t now,
    int *n)
{
	*n = 0;
	return db->ops->cert_revoke_spiffe(db, spiffe_id, now, n);
}

int
ca_db_cert_revoke_serial(struct ca_db *db, const char *serial,
    const char *host_id, int reason, time_t now, int *already)
{
	*already = 0;
	return db->ops->cert_revoke_serial(db, serial, host_id, reason, now,
	    already);
}

int
ca_db_host_revoke_certs(struct ca_db *db, const char *host_id, int reason,
    time_t now, int (*fn)(const char *, void *), void *arg)
{
	return db->ops->host_revoke_certs(db, host_id, reason, now, fn, arg);
}

int
ca_db_revoked(struct ca_db *db, time_t now,
    int (*fn)(const char *, time_t, int, void *), void *arg)
{
	return db->ops->revoked(db, now, fn, arg);
}

int
ca_db_token_key_add(struct ca_db *db, const char *serial, const char *kid,
    const char *jwk)
{
	return db->ops->token_key_add(db, serial, kid, jwk);
}

int
ca_db_token_keys(struct ca_db *db, time_t now, long overlap,
    int (*fn)(const char *, void *), void *arg)
{
	return db->ops->token_keys(db, now, overlap, fn, arg);
}

int
ca_db_inventory(struct ca_db *db, FILE *f)
{
	return db->ops->inventory(db, f);
}

int
ca_db_ssh_cert_bot(struct ca_db *db, const char *serial, time_t now,
    char **bot, char **spiffe_id)
{
	*bot = *spiffe_id = NULL;
	return db->ops->ssh_cert_bot(db, serial, now, bot, spiffe_id);
}

int
ca_db_ssh_key_add(struct ca_db *db, const char *serial, const char *key_line)
{
	return db->ops->ssh_key_add(db, serial, key_line);
}

int
ca_db_ssh_revoked_keys(struct ca_db *db, time_t now,
    int (*fn)(const char *, void *), void *arg)
{
	return db->ops->ssh_revoked_keys(db, now, fn, arg);
}
