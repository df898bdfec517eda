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

void
ca_anchor_clear(struct ca_anchor *a)
{
	if (a == NULL)
		return;
	free(a->line);
	memset(a, 0, sizeof(*a));
}

int
ca_db_anchor_latest(struct ca_db *db, const char *host_id,
    struct ca_anchor *a)
{
	memset(a, 0, sizeof(*a));
	return db->ops->anchor_latest(db, host_id, a);
}

int
ca_db_anchor_add(struct ca_db *db, const struct ca_anchor *a, unsigned keep)
{
	return db->ops->anchor_add(db, a, keep);
}

int
ca_db_anchor_each(struct ca_db *db,
    int (*fn)(const struct ca_anchor *, void *), void *arg)
{
	return db->ops->anchor_each(db, fn, arg);
}

int
ca_db_ek_revoked(struct ca_db *db, const char *ek_fpr)
{
	return db->ops->ek_revoked(db, ek_fpr);
}

int
ca_db_cert_add_live(struct ca_db *db, const char *serial,
    const char *host_id, const char *bot, const char *spiffe_id,
    const char *key_fpr, time_t not_after, const char *attestation,
    time_t now, enum ca_refusal *refused)
{
	*refused = CA_REFUSED_NONE;
	return db->ops->cert_add_live(db, serial, host_id, bot, spiffe_id,
	    key_fpr, not_after, attestation, now, NULL, NULL, refused);
}

int
ca_db_token_cert_add_live(struct ca_db *db, const char *serial,
    const char *host_id, const char *bot, const char *spiffe_id,
    const char *key_fpr, time_t not_after, const char *attestation,
    time_t now, const char *kid, const char *jwk, enum ca_refusal *refused)
{
	*refused = CA_REFUSED_NONE;
	return db->ops->cert_add_live(db, serial, host_id, bot, spiffe_id,
	    key_fpr, not_after, attestation, now, kid, jwk, refused);
}

int
ca_db_bot_lift(struct ca_db *db, const char *spiffe_id)
{
	return db->ops->bot_lift(db, spiffe_id);
}

int
ca_db_nonce_add_capped(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t expires, time_t now, unsigned int max)
{
	return db->ops->nonce_add_capped(db, nonce, len, host_id, expires, now,
	    max);
}

int
ca_db_purge(struct ca_db *db, time_t now, long cert_retention,
    struct ca_purge_counts *c)
{
	memset(c, 0, sizeof(*c));
	return db->ops->purge(db, now, cert_retention, c);
}

int
ca_db_boot_get(struct ca_db *db, const char *host_id, struct ca_boot *b)
{
	return db->ops->boot_get(db, host_id, b);
}

int
ca_db_boot_adopt(struct ca_db *db, const char *host_id, uint32_t select,
    const uint8_t *values, size_t len, time_t now)
{
	return db->ops->boot_adopt(db, host_id, select, values, len, now);
}

int
ca_db_boot_mark(struct ca_db *db, const char *host_id, uint32_t select,
    const uint8_t *values, size_t len, int changed, time_t now)
{
	return db->ops->boot_mark(db, host_id, select, values, len, changed,
	    now);
}

int
ca_db_boot_approve(struct ca_db *db, const char *host_id, time_t now)
{
	return db->ops->boot_approve(db, host_id, now);
}

int
ca_db_boot_inventory(struct ca_db *db, FILE *f)
{
	return db->ops->boot_inventory(db, f);
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

int
ca_db_ssh_revoked_certs(struct ca_db *db, time_t now,
    int (*fn)(const char *, const char *, void *), void *arg)
{
	return db->ops->ssh_revoked_certs(db, now, fn, arg);
}

int
ca_db_token_add_group(struct ca_db *db, const uint8_t hash[32],
    time_t expires, const char *bots, const char *group)
{
	int r;

	if ((r = db->ops->begin(db)) != 0)
		return r;
	/* A token never exists outside its group, even for a moment. */
	if ((r = db->ops->token_add(db, hash, expires, bots)) != 0 ||
	    (group != NULL &&
	    (r = db->ops->token_set_group(db, hash, group)) != 0) ||
	    (r = db->ops->commit(db)) != 0) {
		db->ops->rollback(db);
		return r;
	}
	return 0;
}

int
ca_db_token_group(struct ca_db *db, const uint8_t hash[32], char **group)
{
	*group = NULL;
	return db->ops->token_group(db, hash, group);
}

int
ca_db_host_group(struct ca_db *db, const char *host_id, char **group)
{
	*group = NULL;
	return db->ops->host_group(db, host_id, group);
}

int
ca_db_host_set_group(struct ca_db *db, const char *host_id,
    const char *group)
{
	return db->ops->host_set_group(db, host_id, group);
}

int
ca_db_host_group_each(struct ca_db *db,
    int (*fn)(const char *, const char *, void *), void *arg)
{
	return db->ops->host_group_each(db, fn, arg);
}

int
ca_db_sync_relax(struct ca_db *db)
{
	return db->ops->sync_relax(db);
}
