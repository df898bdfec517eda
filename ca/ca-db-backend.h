/*
 * What a botid-ca storage backend provides (ca-db.c dispatches to it):
 * one function per ca-db.h call, with that call's contract. A backend's
 * handle starts with a struct ca_db naming its table of functions.
 */
#ifndef BOTID_ATTEST_CA_DB_BACKEND_H
#define BOTID_ATTEST_CA_DB_BACKEND_H

#include "ca/ca-db.h"

struct ca_db_ops {
	int	(*open)(const char *, struct ca_db **, char *, size_t);
	void	(*close)(struct ca_db *);
	int	(*ping)(struct ca_db *);
	int	(*begin)(struct ca_db *);
	int	(*commit)(struct ca_db *);
	void	(*rollback)(struct ca_db *);
	int	(*token_add)(struct ca_db *, const uint8_t *, time_t,
		    const char *);
	int	(*token_check)(struct ca_db *, const uint8_t *, time_t,
		    char **);
	int	(*token_use)(struct ca_db *, const uint8_t *, time_t,
		    const char *);
	int	(*session_add)(struct ca_db *, const struct ca_session *);
	int	(*session_get)(struct ca_db *, const char *,
		    struct ca_session *);
	int	(*session_use)(struct ca_db *, const char *);
	int	(*host_add)(struct ca_db *, const char *, const char *,
		    const struct ca_session *, time_t);
	int	(*host_get)(struct ca_db *, const char *, struct ca_host *);
	int	(*host_revoke)(struct ca_db *, const char *, time_t);
	int	(*nonce_add)(struct ca_db *, const uint8_t *, size_t,
		    const char *, time_t);
	int	(*nonce_use)(struct ca_db *, const uint8_t *, size_t,
		    const char *, time_t);
	int	(*cert_add)(struct ca_db *, const char *, const char *,
		    const char *, const char *, time_t, const char *, time_t);
	int	(*cert_revoke_spiffe)(struct ca_db *, const char *, time_t,
		    int *);
	int	(*cert_revoke_serial)(struct ca_db *, const char *,
		    const char *, int, time_t, int *);
	int	(*host_revoke_certs)(struct ca_db *, const char *, int, time_t,
		    int (*)(const char *, void *), void *);
	int	(*revoked)(struct ca_db *, time_t,
		    int (*)(const char *, time_t, int, void *), void *);
	int	(*inventory)(struct ca_db *, FILE *);
	int	(*token_keys)(struct ca_db *, time_t, long,
		    int (*)(const char *, void *), void *);
	int	(*anchor_latest)(struct ca_db *, const char *,
		    struct ca_anchor *);
	int	(*anchor_add)(struct ca_db *, const struct ca_anchor *,
		    unsigned);
	int	(*anchor_each)(struct ca_db *,
		    int (*)(const struct ca_anchor *, void *), void *);
	int	(*ek_revoked)(struct ca_db *, const char *);
	/* A token key's JWK (kid, jwk; NULL: none) in the same transaction. */
	int	(*cert_add_live)(struct ca_db *, const char *, const char *,
		    const char *, const char *, const char *, time_t,
		    const char *, time_t, const char *, const char *,
		    enum ca_refusal *);
	int	(*bot_lift)(struct ca_db *, const char *);
	int	(*nonce_add_capped)(struct ca_db *, const uint8_t *, size_t,
		    const char *, time_t, time_t, unsigned int);
	int	(*purge)(struct ca_db *, time_t, long,
		    struct ca_purge_counts *);
	int	(*boot_get)(struct ca_db *, const char *, struct ca_boot *);
	int	(*boot_adopt)(struct ca_db *, const char *, uint32_t,
		    const uint8_t *, size_t, time_t);
	int	(*boot_mark)(struct ca_db *, const char *, uint32_t,
		    const uint8_t *, size_t, int, time_t);
	int	(*boot_approve)(struct ca_db *, const char *, time_t);
	int	(*boot_inventory)(struct ca_db *, FILE *);
	int	(*ssh_cert_bot)(struct ca_db *, const char *, time_t, char **,
		    char **);
	int	(*ssh_key_add)(struct ca_db *, const char *, const char *);
	int	(*ssh_revoked_keys)(struct ca_db *, time_t,
		    int (*)(const char *, void *), void *);
	/* Host groups; token_add_group is token_add then this, in one tx. */
	int	(*token_set_group)(struct ca_db *, const uint8_t *,
		    const char *);
	int	(*token_group)(struct ca_db *, const uint8_t *, char **);
	int	(*host_group)(struct ca_db *, const char *, char **);
	int	(*host_set_group)(struct ca_db *, const char *, const char *);
	int	(*host_group_each)(struct ca_db *,
		    int (*)(const char *, const char *, void *), void *);
	int	(*sync_relax)(struct ca_db *);
	int	(*ssh_revoked_certs)(struct ca_db *, time_t,
		    int (*)(const char *, const char *, void *), void *);
};

/* Host groups' listing, the same SQL for both backends. */
#define CA_DB_HOST_GROUPS_SQL						\
	"SELECT id, host_group FROM hosts WHERE revoked_at IS NULL ORDER BY " \
	"COALESCE(host_group, ''), id"

/*
 * SSH certificates' queries, the same SQL for both backends: a bot's
 * signing certificate (it has a bot, it is no token key) valid now, and
 * the keys to refuse (their certificate or host revoked, not yet expired).
 */
#define CA_DB_SSH_CERT_BOT_SQL(SERIAL, NOW)				\
	"SELECT c.bot, c.spiffe_id FROM certs c JOIN hosts h ON " \
	"h.id = c.host_id WHERE c.serial = " SERIAL " AND c.bot IS NOT " \
	"NULL AND c.revoked_at IS NULL AND h.revoked_at IS NULL AND " \
	"c.not_after > " NOW " AND c.serial NOT IN (SELECT serial FROM " \
	"token_keys)"
#define CA_DB_SSH_REVOKED_SQL(NOW)					\
	"SELECT DISTINCT k.key_line FROM ssh_keys k JOIN certs c ON " \
	"c.serial = k.serial JOIN hosts h ON h.id = c.host_id WHERE " \
	"(c.revoked_at IS NOT NULL OR h.revoked_at IS NOT NULL) AND " \
	"c.not_after > " NOW " ORDER BY k.key_line"
/* The same certificates for the KRL, each with its serial. */
#define CA_DB_SSH_KRL_SQL(NOW)						\
	"SELECT k.serial, k.key_line FROM ssh_keys k JOIN certs c ON " \
	"c.serial = k.serial JOIN hosts h ON h.id = c.host_id WHERE " \
	"(c.revoked_at IS NOT NULL OR h.revoked_at IS NOT NULL) AND " \
	"c.not_after > " NOW " ORDER BY k.serial"

/*
 * The purge keeps, past cert_retention, the certificates of a revoked bot
 * (until an operator lifts it) and of a revoked host: the refusals of
 * ca_db_cert_add_live (a revoked bot's key under another name, a key bound
 * to another host or bot) are lookups of these rows, and would end with
 * them. Keeping rows rather than copying keys into a table of their own
 * needs no migration (a certificate revoked before an upgrade is covered
 * while its row is there), and their number is bounded: neither a revoked
 * bot nor a revoked host gets a new certificate. CUTOFF is the backend's
 * placeholder for now - cert_retention.
 */
#define CA_DB_PURGEABLE_SQL(CUTOFF)					\
	"SELECT c.serial FROM certs c WHERE c.not_after < " CUTOFF " AND " \
	"NOT EXISTS (SELECT 1 FROM revoked_bots b WHERE b.spiffe_id = " \
	"c.spiffe_id) AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = " \
	"c.host_id AND h.revoked_at IS NOT NULL)"

/*
 * A key belongs to the host and bot that first had it certified: a row
 * for the same key under another host or another bot name (1 if another
 * host, 0 if another bot of the same host, none if neither). Without it a
 * host could vouch for another host's PKCS#11 key, read from its
 * certificate, and have that key revoked with its own bots; and one key
 * under two bot names would be listed twice in the JWK Set.
 */
#define CA_DB_KEY_OWNER_SQL(KEY, HOST, BOT)				\
	"SELECT CASE WHEN host_id <> " HOST " THEN 1 ELSE 0 END FROM " \
	"certs WHERE key_fpr = " KEY " AND (host_id <> " HOST " OR " \
	"COALESCE(bot, '') <> " BOT ") ORDER BY 1 DESC LIMIT 1"

struct ca_db {
	const struct ca_db_ops	*ops;
};

extern const struct ca_db_ops ca_db_sqlite;	/* ca-db-sqlite.c */
extern const struct ca_db_ops ca_db_postgres;	/* ca-db-postgres.c */

/*
 * The JWK Set's query, the same SQL for both backends (NOW and OVERLAP
 * are their placeholders): a token key is served while its certificate
 * and host are not revoked and the certificate has not expired, only from
 * its newest certificate (renewals re-certify the same key), while its
 * bot still holds a valid signing certificate (a removed bot's keys go
 * with the revocation of that certificate), and no longer than OVERLAP
 * seconds after a newer token key of the same bot was certified (a
 * rotation: the agent signs nothing more with the old one, and the tokens
 * it signed expire within token_max_ttl).
 */
#define CA_DB_TOKEN_KEYS_SQL(NOW, OVERLAP)				\
	"SELECT k.jwk FROM token_keys k JOIN certs c ON c.serial = k.serial " \
	"JOIN hosts h ON h.id = c.host_id WHERE c.revoked_at IS NULL AND " \
	"h.revoked_at IS NULL AND c.not_after > " NOW " AND EXISTS (" \
	"SELECT 1 FROM certs s WHERE s.spiffe_id = c.spiffe_id AND " \
	"s.revoked_at IS NULL AND s.not_after > " NOW " AND s.serial NOT IN " \
	"(SELECT serial FROM token_keys)) AND NOT EXISTS (" \
	"SELECT 1 FROM token_keys k2 JOIN certs c2 ON c2.serial = k2.serial " \
	"WHERE c2.spiffe_id = c.spiffe_id AND c2.revoked_at IS NULL AND " \
	"c2.not_after > " NOW " AND ((k2.kid = k.kid AND (c2.issued > " \
	"c.issued OR (c2.issued = c.issued AND k2.serial > k.serial))) OR " \
	"(k2.kid <> k.kid AND c2.issued > c.issued AND c2.issued + " OVERLAP \
	" <= " NOW "))) ORDER BY c.issued, k.serial"

#endif /* BOTID_ATTEST_CA_DB_BACKEND_H */
