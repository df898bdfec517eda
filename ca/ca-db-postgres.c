/*
 * botid-ca's PostgreSQL store (ca-db.h), for several replicas on one
 * database. Correctness between replicas comes from the database alone:
 * single-use items are consumed by UPDATE ... WHERE unused RETURNING (a
 * concurrent UPDATE of the same row waits for the first to commit, then
 * sees it used), serials are a primary key, and enrolment writes in one
 * transaction, so a replica that dies mid-way leaves nothing behind.
 * Migrations run under a transaction-scoped advisory lock, so replicas
 * starting together migrate once. A lost connection is reset at the next
 * call outside a transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ca/ca-db-backend.h"
#include "lib/botid.h"
#include "lib/log.h"

#define PG_MAX_PARAMS		10
/* pg_advisory_xact_lock key for migrations: "botidca" in ASCII. */
#define PG_MIGRATION_LOCK	"62746964636100"

struct pg_db {
	struct ca_db	 base;		/* first: struct ca_db * points here */
	PGconn		*conn;
	int		 in_tx;
};

#define PG(db)	((struct pg_db *)(db))

/* Bound parameters of one statement: text, binary (bytea) or integer. */
struct pg_params {
	int		 n;
	const char	*value[PG_MAX_PARAMS];
	int		 len[PG_MAX_PARAMS];
	int		 binary[PG_MAX_PARAMS];
	char		 number[PG_MAX_PARAMS][24];
};

/* Schema versions; each entry migrates from the previous one. */
static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE tokens ("
	"  hash BYTEA PRIMARY KEY, created BIGINT NOT NULL,"
	"  expires BIGINT NOT NULL, bots TEXT, used_at BIGINT,"
	"  host_id TEXT);"
	"CREATE TABLE sessions ("
	"  id TEXT PRIMARY KEY, secret_hash BYTEA NOT NULL,"
	"  nonce BYTEA NOT NULL, token_hash BYTEA, ek_fpr TEXT NOT NULL,"
	"  ak_public BYTEA NOT NULL, hk_public BYTEA NOT NULL, bots TEXT,"
	"  expires BIGINT NOT NULL, used INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE hosts ("
	"  id TEXT PRIMARY KEY, ek_fpr TEXT NOT NULL,"
	"  ak_public BYTEA NOT NULL, hk_public BYTEA NOT NULL, bots TEXT,"
	"  enrolled BIGINT NOT NULL, revoked_at BIGINT);"
	"CREATE TABLE nonces ("
	"  value BYTEA PRIMARY KEY, host_id TEXT NOT NULL,"
	"  expires BIGINT NOT NULL, used INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE certs ("
	"  serial TEXT PRIMARY KEY, host_id TEXT NOT NULL, bot TEXT,"
	"  spiffe_id TEXT NOT NULL, attestation TEXT NOT NULL,"
	"  issued BIGINT NOT NULL, not_after BIGINT NOT NULL,"
	"  revoked_at BIGINT);"
	"CREATE INDEX certs_spiffe ON certs(spiffe_id);"
	"CREATE INDEX certs_host ON certs(host_id);",
	/* 2: the CRLReason of a revocation (NULL: none recorded) */
	"ALTER TABLE certs ADD COLUMN revoke_reason INTEGER"
	"  CHECK (revoke_reason BETWEEN 0 AND 10);",
	/* 3: token keys' JWKs, served while their certificate is valid */
	"CREATE TABLE token_keys ("
	"  serial TEXT PRIMARY KEY REFERENCES certs(serial),"
	"  kid TEXT NOT NULL, jwk TEXT NOT NULL);",
	/* 4: audit anchors, the checkpoints hosts sent (doc/audit.md) */
	"CREATE TABLE audit_anchors ("
	"  host_id TEXT NOT NULL, number BIGINT NOT NULL,"
	"  seq BIGINT NOT NULL, reason TEXT NOT NULL, time TEXT NOT NULL,"
	"  hash TEXT NOT NULL, received BIGINT NOT NULL, line TEXT NOT NULL,"
	"  PRIMARY KEY (host_id, number));",
	/*
	 * 5: revoked bots (until an operator lifts them) and the key of each
	 * certificate; indexes for revoked EKs, the CRL and the purge.
	 */
	"CREATE TABLE revoked_bots ("
	"  spiffe_id TEXT PRIMARY KEY, revoked_at BIGINT NOT NULL);"
	"ALTER TABLE certs ADD COLUMN key_fpr TEXT;"
	"CREATE INDEX certs_key ON certs(key_fpr);"
	"CREATE INDEX certs_revoked ON certs(revoked_at);"
	"CREATE INDEX certs_not_after ON certs(not_after);"
	"CREATE INDEX hosts_ek ON hosts(ek_fpr);"
	"CREATE INDEX nonces_host ON nonces(host_id, expires);"
	"CREATE INDEX nonces_expires ON nonces(expires);"
	"CREATE INDEX sessions_expires ON sessions(expires);"
	"CREATE INDEX tokens_expires ON tokens(expires);",
	/* 6: boot state under pcr_policy first-use (ca-pcr.h) */
	"CREATE TABLE host_boot ("
	"  host_id TEXT PRIMARY KEY REFERENCES hosts(id),"
	"  pcr_select BIGINT NOT NULL, golden BYTEA NOT NULL,"
	"  last_select BIGINT NOT NULL, last BYTEA NOT NULL,"
	"  changed INTEGER NOT NULL DEFAULT 0, updated BIGINT NOT NULL);",
	/* 7: bot keys given SSH certificates, for RevokedKeys */
	"CREATE TABLE ssh_keys ("
	"  serial TEXT PRIMARY KEY REFERENCES certs(serial),"
	"  key_line TEXT NOT NULL);",
	/* 8: host groups (ca-config.h): a join token's, then its host's */
	"ALTER TABLE tokens ADD COLUMN host_group TEXT;"
	"ALTER TABLE hosts ADD COLUMN host_group TEXT;",
};

static void	pg_close(struct ca_db *);

/* libpq's messages span lines; ours are one. */
static void
pg_log_error(const char *what, const char *msg)
{
	char line[512];
	size_t i;

	snprintf(line, sizeof(line), "%s", msg != NULL ? msg : "?");
	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	while (i > 0 && line[i - 1] == ' ')
		line[--i] = '\0';
	log_err("ca: database: %s: %s", what, line);
}

static void
pp_text(struct pg_params *p, const char *s)
{
	if (p->n >= PG_MAX_PARAMS)
		abort();	/* a statement below has too many parameters */
	p->value[p->n] = s;
	p->len[p->n] = 0;
	p->binary[p->n] = 0;
	p->n++;
}

static void
pp_blob(struct pg_params *p, const void *b, size_t len)
{
	pp_text(p, b);
	p->len[p->n - 1] = (int)len;
	p->binary[p->n - 1] = 1;
}

static void
pp_int(struct pg_params *p, long long v)
{
	if (p->n >= PG_MAX_PARAMS)
		abort();
	snprintf(p->number[p->n], sizeof(p->number[p->n]), "%lld", v);
	pp_text(p, p->number[p->n]);
}

/* A connection lost between transactions is made again here. */
static int
pg_connected(struct ca_db *db)
{
	PGconn *c = PG(db)->conn;

	if (PQstatus(c) == CONNECTION_OK)
		return 0;
	if (PG(db)->in_tx)
		return BOTID_ERR_IO;
	PQreset(c);
	if (PQstatus(c) != CONNECTION_OK) {
		pg_log_error("reconnect", PQerrorMessage(c));
		return BOTID_ERR_IO;
	}
	log_info("ca: database connection made again");
	return 0;
}

/*
 * Runs sql with parameters p (NULL: none). *res, if res is not NULL,
 * holds the rows (PQclear them); *changes, if not NULL, the rows changed.
 */
static int
pg_query(struct ca_db *db, const char *sql, const struct pg_params *p,
    PGresult **res, int *changes)
{
	PGresult *pr = NULL;
	ExecStatusType st;
	int attempt, r = BOTID_ERR_IO;

	if (res != NULL)
		*res = NULL;
	if (changes != NULL)
		*changes = 0;
	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = pg_connected(db)) != 0)
			return r;
		r = BOTID_ERR_IO;
		if (p != NULL)
			pr = PQexecParams(PG(db)->conn, sql, p->n, NULL,
			    p->value, p->len, p->binary, 0);
		else
			pr = PQexec(PG(db)->conn, sql);
		/*
		 * A connection found broken (the server restarted while we
		 * idled) is made again and the statement sent once more,
		 * outside a transaction only. Should the first have run after
		 * all, a conditional UPDATE now finds its row used, and an
		 * INSERT its key taken: a refusal, never a second use.
		 */
		if (PQstatus(PG(db)->conn) == CONNECTION_OK ||
		    PG(db)->in_tx || attempt == 1)
			break;
		PQclear(pr);
		pr = NULL;
	}
	if (pr == NULL) {
		pg_log_error("query", PQerrorMessage(PG(db)->conn));
		goto out;
	}
	st = PQresultStatus(pr);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_log_error("query", PQresultErrorMessage(pr));
		goto out;
	}
	if (changes != NULL)
		*changes = atoi(PQcmdTuples(pr));
	if (res != NULL) {
		*res = pr;
		pr = NULL;
	}
	r = 0;
 out:
	PQclear(pr);
	return r;
}

static long long
col_int(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int
col_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col);
}

/* A bytea column (text format, hex) into a malloc'd copy; NULL if null. */
static int
col_blob(const PGresult *res, int row, int col, uint8_t **out, size_t *len)
{
	unsigned char *b;
	size_t n = 0;

	*out = NULL;
	*len = 0;
	if (PQgetisnull(res, row, col))
		return 0;
	if ((b = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row,
	    col), &n)) == NULL)
		return BOTID_ERR_ALLOC;
	if (n > 0) {
		if ((*out = malloc(n)) == NULL) {
			PQfreemem(b);
			return BOTID_ERR_ALLOC;
		}
		memcpy(*out, b, n);
		*len = n;
	}
	PQfreemem(b);
	return 0;
}

/* A bytea column of exactly len bytes into out. */
static int
col_fixed(const PGresult *res, int row, int col, uint8_t *out, size_t len)
{
	uint8_t *b = NULL;
	size_t n = 0;
	int r;

	if ((r = col_blob(res, row, col, &b, &n)) != 0)
		return r;
	if (n == len)
		memcpy(out, b, len);
	else
		r = BOTID_ERR_INTERNAL;
	free(b);
	return r;
}

static char *
col_strdup(const PGresult *res, int row, int col)
{
	return strdup(PQgetvalue(res, row, col));
}

/* The AK, host key and allowed bots, in three columns from col on. */
static int
col_host_keys(const PGresult *res, int col, uint8_t **ak, size_t *ak_len,
    uint8_t **hk, size_t *hk_len, char **bots)
{
	int r;

	if ((r = col_blob(res, 0, col, ak, ak_len)) != 0 ||
	    (r = col_blob(res, 0, col + 1, hk, hk_len)) != 0)
		return r;
	if (!col_null(res, 0, col + 2) &&
	    (*bots = col_strdup(res, 0, col + 2)) == NULL)
		return BOTID_ERR_ALLOC;
	return 0;
}

static int
pg_begin(struct ca_db *db)
{
	int r;

	if ((r = pg_query(db, "BEGIN", NULL, NULL, NULL)) == 0)
		PG(db)->in_tx = 1;
	return r;
}

static int
pg_commit(struct ca_db *db)
{
	int r = pg_query(db, "COMMIT", NULL, NULL, NULL);

	PG(db)->in_tx = 0;
	return r;
}

static void
pg_rollback(struct ca_db *db)
{
	PGresult *pr;

	PG(db)->in_tx = 0;
	if (PQstatus(PG(db)->conn) == CONNECTION_OK &&
	    (pr = PQexec(PG(db)->conn, "ROLLBACK")) != NULL)
		PQclear(pr);
}

static int
pg_ping(struct ca_db *db)
{
	return pg_query(db, "SELECT 1", NULL, NULL, NULL);
}

/*
 * One transaction holding an advisory lock: a second replica starting at
 * the same time waits, then finds the schema current.
 */
static int
migrate(struct ca_db *db, char *err, size_t errlen)
{
	struct pg_params p;
	PGresult *res = NULL;
	int version = 0, want = (int)(sizeof(migrations) /
	    sizeof(migrations[0])), first = 0, r = BOTID_ERR_IO;

	if (pg_begin(db) != 0 ||
	    pg_query(db, "SELECT pg_advisory_xact_lock(" PG_MIGRATION_LOCK ")",
	    NULL, NULL, NULL) != 0 ||
	    pg_query(db, "CREATE TABLE IF NOT EXISTS botid_schema ("
	    "version INTEGER NOT NULL)", NULL, NULL, NULL) != 0 ||
	    pg_query(db, "SELECT COALESCE(MAX(version), 0) FROM botid_schema",
	    NULL, &res, NULL) != 0 || PQntuples(res) != 1) {
		snprintf(err, errlen, "database: cannot read the schema "
		    "version");
		goto out;
	}
	version = (int)col_int(res, 0, 0);
	if (version > want) {
		snprintf(err, errlen, "database schema version %d is newer "
		    "than this botid-ca (%d)", version, want);
		goto out;
	}
	first = version;
	for (; version < want; version++) {
		memset(&p, 0, sizeof(p));
		pp_int(&p, version + 1);
		if (pg_query(db, migrations[version], NULL, NULL, NULL) != 0 ||
		    pg_query(db, "INSERT INTO botid_schema (version) "
		    "VALUES ($1)", &p, NULL, NULL) != 0) {
			snprintf(err, errlen, "database migration to version "
			    "%d failed", version + 1);
			goto out;
		}
	}
	if (pg_commit(db) != 0) {
		snprintf(err, errlen, "database migration failed at commit");
		goto out;
	}
	if (version != first)
		log_info("ca: database schema at version %d", version);
	r = 0;
 out:
	if (r != 0)
		pg_rollback(db);
	PQclear(res);
	return r;
}

static int
pg_open(const char *conninfo, struct ca_db **dbp, char *err, size_t errlen)
{
	struct pg_db *pg = NULL;
	PGresult *pr;
	int r = BOTID_ERR_IO;

	*dbp = NULL;
	if ((pg = calloc(1, sizeof(*pg))) == NULL)
		return BOTID_ERR_ALLOC;
	pg->base.ops = &ca_db_postgres;
	/* The URI may hold a password: it is never logged. */
	if ((pg->conn = PQconnectdb(conninfo)) == NULL) {
		snprintf(err, errlen, "database: out of memory");
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (PQstatus(pg->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "database: cannot connect: %s",
		    PQerrorMessage(pg->conn));
		err[strcspn(err, "\r\n")] = '\0';
		goto out;
	}
	/* Notices (e.g. "relation already exists, skipping") are not news. */
	pr = PQexec(pg->conn, "SET client_min_messages = warning");
	PQclear(pr);
	if ((r = migrate(&pg->base, err, errlen)) != 0)
		goto out;
	*dbp = &pg->base;
	pg = NULL;
	r = 0;
 out:
	pg_close(pg != NULL ? &pg->base : NULL);
	return r;
}

static void
pg_close(struct ca_db *db)
{
	if (db == NULL)
		return;
	PQfinish(PG(db)->conn);
	free(db);
}

static int
pg_token_add(struct ca_db *db, const uint8_t *hash, time_t expires,
    const char *bots)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_blob(&p, hash, 32);
	pp_int(&p, (long long)time(NULL));
	pp_int(&p, (long long)expires);
	pp_text(&p, bots);
	return pg_query(db, "INSERT INTO tokens (hash, created, expires, bots) "
	    "VALUES ($1, $2, $3, $4)", &p, NULL, NULL);
}

static int
pg_token_check(struct ca_db *db, const uint8_t *hash, time_t now, char **bots)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	*bots = NULL;
	memset(&p, 0, sizeof(p));
	pp_blob(&p, hash, 32);
	if ((r = pg_query(db, "SELECT expires, used_at, bots FROM tokens "
	    "WHERE hash = $1", &p, &res, NULL)) != 0)
		return r;
	if (PQntuples(res) != 1)
		r = BOTID_ERR_NOT_FOUND;
	else if (!col_null(res, 0, 1))
		r = BOTID_ERR_DENIED;
	else if (col_int(res, 0, 0) < (long long)now)
		r = BOTID_ERR_TIMEOUT;
	else if (!col_null(res, 0, 2) &&
	    (*bots = col_strdup(res, 0, 2)) == NULL)
		r = BOTID_ERR_ALLOC;
	PQclear(res);
	return r;
}

static int
pg_token_use(struct ca_db *db, const uint8_t *hash, time_t now,
    const char *host_id)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	pp_text(&p, host_id);
	pp_blob(&p, hash, 32);
	if ((r = pg_query(db, "UPDATE tokens SET used_at = $1, host_id = $2 "
	    "WHERE hash = $3 AND used_at IS NULL AND expires >= $1 "
	    "RETURNING hash", &p, &res, NULL)) != 0)
		return r;
	r = PQntuples(res) == 1 ? 0 : BOTID_ERR_DENIED;
	PQclear(res);
	return r;
}

static int
pg_session_add(struct ca_db *db, const struct ca_session *s)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_text(&p, s->id);
	pp_blob(&p, s->secret_hash, 32);
	pp_blob(&p, s->nonce, 32);
	if (s->has_token)
		pp_blob(&p, s->token_hash, 32);
	else
		pp_text(&p, NULL);
	pp_text(&p, s->ek_fpr);
	pp_blob(&p, s->ak_pub, s->ak_len);
	pp_blob(&p, s->hk_pub, s->hk_len);
	pp_text(&p, s->bots);
	pp_int(&p, (long long)s->expires);
	return pg_query(db, "INSERT INTO sessions (id, secret_hash, nonce, "
	    "token_hash, ek_fpr, ak_public, hk_public, bots, expires) VALUES "
	    "($1, $2, $3, $4, $5, $6, $7, $8, $9)", &p, NULL, NULL);
}

static int
pg_session_get(struct ca_db *db, const char *id, struct ca_session *s)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	memset(s, 0, sizeof(*s));
	memset(&p, 0, sizeof(p));
	pp_text(&p, id);
	if ((r = pg_query(db, "SELECT secret_hash, nonce, token_hash, ek_fpr, "
	    "ak_public, hk_public, bots, expires, used FROM sessions WHERE "
	    "id = $1", &p, &res, NULL)) != 0)
		return r;
	if (PQntuples(res) != 1)
		r = BOTID_ERR_NOT_FOUND;
	else if ((r = col_fixed(res, 0, 0, s->secret_hash, 32)) == 0 &&
	    (r = col_fixed(res, 0, 1, s->nonce, 32)) == 0) {
		snprintf(s->id, sizeof(s->id), "%s", id);
		if (!col_null(res, 0, 2)) {
			s->has_token = 1;
			r = col_fixed(res, 0, 2, s->token_hash, 32);
		}
		snprintf(s->ek_fpr, sizeof(s->ek_fpr), "%s",
		    PQgetvalue(res, 0, 3));
		s->expires = (time_t)col_int(res, 0, 7);
		s->used = (int)col_int(res, 0, 8);
		if (r == 0)
			r = col_host_keys(res, 4, &s->ak_pub, &s->ak_len,
			    &s->hk_pub, &s->hk_len, &s->bots);
	}
	PQclear(res);
	if (r != 0)
		ca_session_clear(s);
	return r;
}

static int
pg_session_use(struct ca_db *db, const char *id)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	pp_text(&p, id);
	if ((r = pg_query(db, "UPDATE sessions SET used = 1 WHERE id = $1 "
	    "AND used = 0 RETURNING id", &p, &res, NULL)) != 0)
		return r;
	r = PQntuples(res) == 1 ? 0 : BOTID_ERR_DENIED;
	PQclear(res);
	return r;
}

static int
pg_host_add(struct ca_db *db, const char *id, const char *ek_fpr,
    const struct ca_session *s, time_t now)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_text(&p, id);
	pp_text(&p, ek_fpr);
	pp_blob(&p, s->ak_pub, s->ak_len);
	pp_blob(&p, s->hk_pub, s->hk_len);
	pp_text(&p, s->bots);
	pp_int(&p, (long long)now);
	return pg_query(db, "INSERT INTO hosts (id, ek_fpr, ak_public, "
	    "hk_public, bots, enrolled) VALUES ($1, $2, $3, $4, $5, $6)", &p,
	    NULL, NULL);
}

static int
pg_host_get(struct ca_db *db, const char *id, struct ca_host *h)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	memset(h, 0, sizeof(*h));
	memset(&p, 0, sizeof(p));
	pp_text(&p, id);
	if ((r = pg_query(db, "SELECT ak_public, hk_public, bots, revoked_at "
	    "FROM hosts WHERE id = $1", &p, &res, NULL)) != 0)
		return r;
	if (PQntuples(res) != 1)
		r = BOTID_ERR_NOT_FOUND;
	else {
		snprintf(h->id, sizeof(h->id), "%s", id);
		h->revoked = !col_null(res, 0, 3);
		r = col_host_keys(res, 0, &h->ak_pub, &h->ak_len, &h->hk_pub,
		    &h->hk_len, &h->bots);
	}
	PQclear(res);
	if (r != 0)
		ca_host_clear(h);
	return r;
}

static int
pg_host_revoke(struct ca_db *db, const char *id, time_t now)
{
	struct pg_params p;
	int changes = 0, r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	pp_text(&p, id);
	if ((r = pg_begin(db)) != 0)
		return r;
	if ((r = pg_query(db, "UPDATE hosts SET revoked_at = $1 WHERE id = $2 "
	    "AND revoked_at IS NULL", &p, NULL, &changes)) != 0)
		goto fail;
	if (changes != 1) {
		r = BOTID_ERR_NOT_FOUND;
		goto fail;
	}
	if ((r = pg_query(db, "UPDATE certs SET revoked_at = $1 WHERE "
	    "host_id = $2 AND revoked_at IS NULL", &p, NULL, NULL)) != 0)
		goto fail;
	return pg_commit(db);
 fail:
	pg_rollback(db);
	return r;
}

static int
pg_nonce_add(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t expires)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_blob(&p, nonce, len);
	pp_text(&p, host_id);
	pp_int(&p, (long long)expires);
	return pg_query(db, "INSERT INTO nonces (value, host_id, expires) "
	    "VALUES ($1, $2, $3)", &p, NULL, NULL);
}

static int
pg_nonce_use(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t now)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	pp_blob(&p, nonce, len);
	pp_text(&p, host_id);
	pp_int(&p, (long long)now);
	if ((r = pg_query(db, "UPDATE nonces SET used = 1 WHERE value = $1 "
	    "AND host_id = $2 AND used = 0 AND expires >= $3 RETURNING value",
	    &p, &res, NULL)) != 0)
		return r;
	if (PQntuples(res) == 1) {
		PQclear(res);
		return 0;
	}
	PQclear(res);
	res = NULL;
	/* Say why, for the log and the client. */
	p.n = 2;
	if ((r = pg_query(db, "SELECT used, expires FROM nonces WHERE "
	    "value = $1 AND host_id = $2", &p, &res, NULL)) != 0)
		return r;
	r = PQntuples(res) != 1 ? BOTID_ERR_NOT_FOUND :
	    col_int(res, 0, 0) != 0 ? BOTID_ERR_DENIED : BOTID_ERR_TIMEOUT;
	PQclear(res);
	return r;
}

static int
pg_cert_add(struct ca_db *db, const char *serial, const char *host_id,
    const char *bot, const char *spiffe_id, time_t not_after,
    const char *attestation, time_t now)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_text(&p, serial);
	pp_text(&p, host_id);
	pp_text(&p, bot);
	pp_text(&p, spiffe_id);
	pp_text(&p, attestation);
	pp_int(&p, (long long)now);
	pp_int(&p, (long long)not_after);
	return pg_query(db, "INSERT INTO certs (serial, host_id, bot, "
	    "spiffe_id, attestation, issued, not_after) VALUES "
	    "($1, $2, $3, $4, $5, $6, $7)", &p, NULL, NULL);
}

/*
 * The certificates are revoked and the SPIFFE ID stays revoked. The host's
 * row is locked first, as a host revocation does, so that a certify at
 * another replica either commits before (and its certificate is revoked
 * here) or waits and finds the SPIFFE ID revoked.
 */
static int	pg_exists(struct ca_db *, const char *, const char *, int *);

static int
pg_cert_revoke_spiffe(struct ca_db *db, const char *spiffe_id, time_t now,
    int *n)
{
	struct pg_params p;
	int found = 0, r;

	*n = 0;
	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	pp_text(&p, spiffe_id);
	if ((r = pg_begin(db)) != 0)
		return r;
	/* spiffe://TD/host/ID/bot/NAME: ID is the fifth part. */
	if ((r = pg_exists(db, "SELECT 1 FROM hosts WHERE id = "
	    "split_part($1, '/', 5) FOR UPDATE", spiffe_id, &found)) != 0 ||
	    (r = pg_query(db, "UPDATE certs SET revoked_at = $1 WHERE "
	    "spiffe_id = $2 AND revoked_at IS NULL", &p, NULL, n)) != 0 ||
	    (r = pg_query(db, "INSERT INTO revoked_bots (spiffe_id, "
	    "revoked_at) VALUES ($2, $1) ON CONFLICT DO NOTHING", &p, NULL,
	    NULL)) != 0)
		goto fail;
	return pg_commit(db);
 fail:
	pg_rollback(db);
	return r;
}

static int
pg_ek_revoked(struct ca_db *db, const char *ek_fpr)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	pp_text(&p, ek_fpr);
	if ((r = pg_query(db, "SELECT 1 FROM hosts WHERE ek_fpr = $1 AND "
	    "revoked_at IS NOT NULL LIMIT 1", &p, &res, NULL)) != 0)
		return r;
	r = PQntuples(res) > 0 ? BOTID_ERR_DENIED : 0;
	PQclear(res);
	return r;
}

static int
pg_exists(struct ca_db *db, const char *sql, const char *arg, int *found)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	*found = 0;
	memset(&p, 0, sizeof(p));
	pp_text(&p, arg);
	if ((r = pg_query(db, sql, &p, &res, NULL)) != 0)
		return r;
	*found = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/*
 * Whether the key is certified to another host or bot (CA_DB_KEY_OWNER_SQL).
 * A transaction-scoped advisory lock on the key (in the two-key space, apart
 * from the nonces' per-host locks) comes first: two replicas certifying one
 * key for two hosts at once would each find no other owner, then both record.
 */
static int
pg_key_owner(struct ca_db *db, const char *key_fpr, const char *host_id,
    const char *bot, enum ca_refusal *refused)
{
	struct pg_params p;
	PGresult *res = NULL;
	int found = 0, r;

	if ((r = pg_exists(db, "SELECT pg_advisory_xact_lock(1, "
	    "hashtext($1))", key_fpr, &found)) != 0)
		return r;
	memset(&p, 0, sizeof(p));
	pp_text(&p, key_fpr);
	pp_text(&p, host_id);
	pp_text(&p, bot);
	if ((r = pg_query(db, CA_DB_KEY_OWNER_SQL("$1", "$2", "$3"), &p, &res,
	    NULL)) != 0)
		return r;
	if (PQntuples(res) > 0)
		*refused = col_int(res, 0, 0) != 0 ? CA_REFUSED_KEY_HOST :
		    CA_REFUSED_KEY_BOT;
	PQclear(res);
	return 0;
}

/*
 * The host's row is locked (FOR SHARE) before anything is checked: a host
 * revocation at another replica updates that row first, so it either waits
 * for this transaction and then revokes this certificate with the others,
 * or has committed and this finds the host revoked. Bot revocations lock
 * the same row (pg_cert_revoke_spiffe).
 */
static int	pg_token_key_add(struct ca_db *, const char *,
		    const char *, const char *);

/*
 * A token key's JWK (kid and jwk not NULL) is recorded in the same
 * transaction: a certificate row without its token_keys row would pass
 * for a signing certificate in the JWK Set and SSH queries.
 */
static int
pg_cert_record(struct ca_db *db, const char *serial, const char *host_id,
    const char *bot, const char *spiffe_id, const char *key_fpr,
    time_t not_after, const char *attestation, time_t now, const char *kid,
    const char *jwk, enum ca_refusal *refused)
{
	struct pg_params p;
	int found = 0, r;

	if ((r = pg_begin(db)) != 0)
		return r;
	if ((r = pg_exists(db, "SELECT 1 FROM hosts WHERE id = $1 AND "
	    "revoked_at IS NULL FOR SHARE", host_id, &found)) != 0)
		goto fail;
	if (!found) {
		*refused = CA_REFUSED_HOST;
		goto refuse;
	}
	if ((r = pg_exists(db, "SELECT 1 FROM revoked_bots WHERE "
	    "spiffe_id = $1", spiffe_id, &found)) != 0)
		goto fail;
	if (found) {
		*refused = CA_REFUSED_BOT;
		goto refuse;
	}
	if ((r = pg_exists(db, "SELECT 1 FROM certs c JOIN revoked_bots b "
	    "ON b.spiffe_id = c.spiffe_id WHERE c.key_fpr = $1 LIMIT 1",
	    key_fpr, &found)) != 0)
		goto fail;
	if (found) {
		*refused = CA_REFUSED_KEY;
		goto refuse;
	}
	if ((r = pg_key_owner(db, key_fpr, host_id, bot, refused)) != 0)
		goto fail;
	if (*refused != CA_REFUSED_NONE)
		goto refuse;
	memset(&p, 0, sizeof(p));
	pp_text(&p, serial);
	pp_text(&p, host_id);
	pp_text(&p, bot);
	pp_text(&p, spiffe_id);
	pp_text(&p, attestation);
	pp_int(&p, (long long)now);
	pp_int(&p, (long long)not_after);
	pp_text(&p, key_fpr);
	if ((r = pg_query(db, "INSERT INTO certs (serial, host_id, bot, "
	    "spiffe_id, attestation, issued, not_after, key_fpr) VALUES "
	    "($1, $2, $3, $4, $5, $6, $7, $8)", &p, NULL, NULL)) != 0)
		goto fail;
	if (kid != NULL && (r = pg_token_key_add(db, serial, kid, jwk)) != 0)
		goto fail;
	if ((r = pg_commit(db)) != 0)
		goto fail;
	return 0;
 refuse:
	pg_rollback(db);
	return 0;
 fail:
	pg_rollback(db);
	return r;
}

static int
pg_bot_lift(struct ca_db *db, const char *spiffe_id)
{
	struct pg_params p;
	int changes = 0, r;

	memset(&p, 0, sizeof(p));
	pp_text(&p, spiffe_id);
	if ((r = pg_query(db, "DELETE FROM revoked_bots WHERE spiffe_id = $1",
	    &p, NULL, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_NOT_FOUND;
}

/*
 * A transaction-scoped advisory lock per host serialises the count and the
 * insert across replicas, without locking the host's row (which a certify
 * holds while it records a certificate).
 */
static int
pg_nonce_add_capped(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t expires, time_t now, unsigned int max)
{
	struct pg_params p;
	int changes = 0, found = 0, r;

	if ((r = pg_begin(db)) != 0)
		return r;
	if ((r = pg_exists(db, "SELECT pg_advisory_xact_lock(hashtext($1))",
	    host_id, &found)) != 0)
		goto fail;
	memset(&p, 0, sizeof(p));
	pp_blob(&p, nonce, len);
	pp_text(&p, host_id);
	pp_int(&p, (long long)expires);
	pp_int(&p, (long long)now);
	pp_int(&p, (long long)max);
	if ((r = pg_query(db, "INSERT INTO nonces (value, host_id, expires) "
	    "SELECT $1, $2, $3 WHERE (SELECT count(*) FROM nonces WHERE "
	    "host_id = $2 AND used = 0 AND expires >= $4) < $5", &p, NULL,
	    &changes)) != 0)
		goto fail;
	if ((r = pg_commit(db)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_BUSY;
 fail:
	pg_rollback(db);
	return r;
}

static int
pg_delete_before(struct ca_db *db, const char *sql, time_t t, long *n)
{
	struct pg_params p;
	int changes = 0, r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)t);
	if ((r = pg_query(db, sql, &p, NULL, &changes)) != 0)
		return r;
	*n = changes;
	return 0;
}

static int
pg_purge(struct ca_db *db, time_t now, long cert_retention,
    struct ca_purge_counts *c)
{
	long dependents;	/* rows of a purged certificate: JWK, SSH key */
	int r;

	if ((r = pg_begin(db)) != 0)
		return r;
	if ((r = pg_delete_before(db, "DELETE FROM nonces WHERE expires < $1",
	    now, &c->nonces)) != 0 ||
	    (r = pg_delete_before(db, "DELETE FROM sessions WHERE "
	    "expires < $1", now, &c->sessions)) != 0 ||
	    (r = pg_delete_before(db, "DELETE FROM tokens WHERE expires < $1",
	    now, &c->tokens)) != 0 ||
	    (r = pg_delete_before(db, "DELETE FROM token_keys WHERE serial IN "
	    "(" CA_DB_PURGEABLE_SQL("$1") ")",
	    now - cert_retention, &dependents)) != 0 ||
	    (r = pg_delete_before(db, "DELETE FROM ssh_keys WHERE serial IN "
	    "(" CA_DB_PURGEABLE_SQL("$1") ")",
	    now - cert_retention, &dependents)) != 0 ||
	    (r = pg_delete_before(db, "DELETE FROM certs WHERE serial IN "
	    "(" CA_DB_PURGEABLE_SQL("$1") ")",
	    now - cert_retention, &c->certs)) != 0) {
		pg_rollback(db);
		return r;
	}
	return pg_commit(db);
}

/*
 * The row is locked (FOR UPDATE) until the caller's transaction ends: a
 * second replica revoking the same serial waits, then finds it revoked.
 */
static int
pg_cert_revoke_serial(struct ca_db *db, const char *serial,
    const char *host_id, int reason, time_t now, int *already)
{
	struct pg_params p;
	PGresult *res = NULL;
	int changes = 0, r;

	*already = 0;
	memset(&p, 0, sizeof(p));
	pp_text(&p, serial);
	if ((r = pg_query(db, "SELECT host_id, revoked_at FROM certs WHERE "
	    "serial = $1 FOR UPDATE", &p, &res, NULL)) != 0)
		return r;
	if (PQntuples(res) != 1)
		r = BOTID_ERR_NOT_FOUND;
	else if (strcmp(PQgetvalue(res, 0, 0), host_id) != 0)
		r = BOTID_ERR_DENIED;
	else if (!col_null(res, 0, 1))
		*already = 1;
	PQclear(res);
	if (r != 0 || *already)
		return r;
	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	pp_int(&p, reason);
	pp_text(&p, serial);
	pp_text(&p, host_id);
	if ((r = pg_query(db, "UPDATE certs SET revoked_at = $1, "
	    "revoke_reason = $2 WHERE serial = $3 AND host_id = $4 AND "
	    "revoked_at IS NULL", &p, NULL, &changes)) != 0)
		return r;
	*already = changes == 0;
	return 0;
}

static int
pg_host_revoke_certs(struct ca_db *db, const char *host_id, int reason,
    time_t now, int (*fn)(const char *, void *), void *arg)
{
	struct pg_params p;
	PGresult *res = NULL;
	int changes = 0, i, r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	pp_text(&p, host_id);
	if ((r = pg_query(db, "UPDATE hosts SET revoked_at = $1 WHERE id = $2 "
	    "AND revoked_at IS NULL", &p, NULL, &changes)) != 0)
		return r;
	if (changes != 1)
		return BOTID_ERR_NOT_FOUND;
	pp_int(&p, reason);
	if ((r = pg_query(db, "UPDATE certs SET revoked_at = $1, "
	    "revoke_reason = $3 WHERE host_id = $2 AND revoked_at IS NULL "
	    "RETURNING serial", &p, &res, NULL)) != 0)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = fn(PQgetvalue(res, i, 0), arg)) != 0)
			break;
	PQclear(res);
	return r;
}

static int
pg_revoked(struct ca_db *db, time_t now,
    int (*fn)(const char *, time_t, int, void *), void *arg)
{
	struct pg_params p;
	PGresult *res = NULL;
	int i, r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	if ((r = pg_query(db, "SELECT serial, revoked_at, revoke_reason FROM "
	    "certs WHERE revoked_at IS NOT NULL AND not_after >= $1 ORDER BY "
	    "revoked_at", &p, &res, NULL)) != 0)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = fn(PQgetvalue(res, i, 0), (time_t)col_int(res, i, 1),
		    col_null(res, i, 2) ? -1 : (int)col_int(res, i, 2),
		    arg)) != 0)
			break;
	PQclear(res);
	return r;
}

static int
pg_token_key_add(struct ca_db *db, const char *serial, const char *kid,
    const char *jwk)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_text(&p, serial);
	pp_text(&p, kid);
	pp_text(&p, jwk);
	return pg_query(db, "INSERT INTO token_keys (serial, kid, jwk) VALUES "
	    "($1, $2, $3)", &p, NULL, NULL);
}

static int
pg_token_keys(struct ca_db *db, time_t now, long overlap,
    int (*fn)(const char *, void *), void *arg)
{
	struct pg_params p;
	PGresult *res = NULL;
	int i, r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	pp_int(&p, (long long)overlap);
	if ((r = pg_query(db, CA_DB_TOKEN_KEYS_SQL("$1", "$2"), &p, &res,
	    NULL)) != 0)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = fn(PQgetvalue(res, i, 0), arg)) != 0)
			break;
	PQclear(res);
	return r;
}

static int
pg_inventory(struct ca_db *db, FILE *f)
{
	PGresult *res = NULL;
	int i, r;

	if ((r = pg_query(db, "SELECT h.id, h.enrolled, h.revoked_at, "
	    "COALESCE(h.bots, '*'), c.serial, c.bot, c.spiffe_id, "
	    "c.attestation, c.issued, c.not_after, c.revoked_at FROM hosts h "
	    "LEFT JOIN certs c ON c.host_id = h.id ORDER BY h.id, c.issued",
	    NULL, &res, NULL)) != 0)
		return r;
	fprintf(f, "%-16s %-8s %-20s %-32s %-7s %-10s %-10s %s\n", "HOST",
	    "STATE", "BOTS", "SERIAL", "ATTEST", "ISSUED", "NOT_AFTER",
	    "SPIFFE_ID");
	for (i = 0; i < PQntuples(res); i++) {
		int cert = !col_null(res, i, 4);

		fprintf(f, "%-16s %-8s %-20s %-32s %-7s %-10lld %-10lld %s%s\n",
		    PQgetvalue(res, i, 0), !col_null(res, i, 2) ? "revoked" :
		    "enrolled", PQgetvalue(res, i, 3),
		    cert ? PQgetvalue(res, i, 4) : "-",
		    cert ? PQgetvalue(res, i, 7) : "-",
		    cert ? col_int(res, i, 8) : 0LL,
		    cert ? col_int(res, i, 9) : 0LL,
		    cert ? PQgetvalue(res, i, 6) : "-",
		    !col_null(res, i, 10) ? " (revoked)" : "");
	}
	PQclear(res);
	return 0;
}

#define ANCHOR_COLUMNS	"host_id, number, seq, reason, time, hash, received, line"

/* Row i of ANCHOR_COLUMNS into *a. */
static int
anchor_row(const PGresult *res, int i, struct ca_anchor *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->host_id, sizeof(a->host_id), "%s", PQgetvalue(res, i, 0));
	a->number = (uint64_t)col_int(res, i, 1);
	a->seq = (uint64_t)col_int(res, i, 2);
	snprintf(a->reason, sizeof(a->reason), "%s", PQgetvalue(res, i, 3));
	snprintf(a->time, sizeof(a->time), "%s", PQgetvalue(res, i, 4));
	snprintf(a->hash, sizeof(a->hash), "%s", PQgetvalue(res, i, 5));
	a->received = (time_t)col_int(res, i, 6);
	if ((a->line = col_strdup(res, i, 7)) == NULL)
		return BOTID_ERR_ALLOC;
	return 0;
}

static int
pg_anchor_latest(struct ca_db *db, const char *host_id, struct ca_anchor *a)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	pp_text(&p, host_id);
	if ((r = pg_query(db, "SELECT " ANCHOR_COLUMNS " FROM audit_anchors "
	    "WHERE host_id = $1 ORDER BY number DESC LIMIT 1", &p, &res,
	    NULL)) != 0)
		return r;
	r = PQntuples(res) == 1 ? anchor_row(res, 0, a) : BOTID_ERR_NOT_FOUND;
	PQclear(res);
	return r;
}

static int
pg_anchor_add(struct ca_db *db, const struct ca_anchor *a, unsigned keep)
{
	struct pg_params p;
	int changes = 0, r;

	memset(&p, 0, sizeof(p));
	pp_text(&p, a->host_id);
	pp_int(&p, (long long)a->number);
	pp_int(&p, (long long)a->seq);
	pp_text(&p, a->reason);
	pp_text(&p, a->time);
	pp_text(&p, a->hash);
	pp_int(&p, (long long)a->received);
	pp_text(&p, a->line);
	/* A number taken meanwhile (another replica) inserts nothing. */
	if ((r = pg_query(db, "INSERT INTO audit_anchors (" ANCHOR_COLUMNS
	    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
	    &p, NULL, &changes)) != 0)
		return r;
	if (changes != 1)
		return BOTID_ERR_DENIED;
	memset(&p, 0, sizeof(p));
	pp_text(&p, a->host_id);
	pp_int(&p, (long long)keep);
	return pg_query(db, "DELETE FROM audit_anchors WHERE host_id = $1 AND "
	    "number NOT IN (SELECT number FROM audit_anchors WHERE host_id = "
	    "$1 ORDER BY number DESC LIMIT $2)", &p, NULL, NULL);
}

static int
pg_anchor_each(struct ca_db *db,
    int (*fn)(const struct ca_anchor *, void *), void *arg)
{
	struct ca_anchor a;
	PGresult *res = NULL;
	int i, r;

	if ((r = pg_query(db, "SELECT " ANCHOR_COLUMNS " FROM audit_anchors x "
	    "WHERE number = (SELECT MAX(number) FROM audit_anchors y WHERE "
	    "y.host_id = x.host_id) ORDER BY host_id", NULL, &res, NULL)) != 0)
		return r;
	for (i = 0; i < PQntuples(res); i++) {
		if ((r = anchor_row(res, i, &a)) == 0)
			r = fn(&a, arg);
		ca_anchor_clear(&a);
		if (r != 0)
			break;
	}
	PQclear(res);
	return r;
}

static int
pg_boot_get(struct ca_db *db, const char *host_id, struct ca_boot *b)
{
	struct pg_params p;
	PGresult *res = NULL;
	uint8_t *g = NULL;
	size_t n = 0;
	int r;

	memset(b, 0, sizeof(*b));
	memset(&p, 0, sizeof(p));
	pp_text(&p, host_id);
	if ((r = pg_query(db, "SELECT pcr_select, golden, changed FROM "
	    "host_boot WHERE host_id = $1", &p, &res, NULL)) != 0)
		return r;
	if (PQntuples(res) != 1)
		r = BOTID_ERR_NOT_FOUND;
	else if ((r = col_blob(res, 0, 1, &g, &n)) == 0) {
		if (n > sizeof(b->golden))
			r = BOTID_ERR_INTERNAL;
		else {
			b->select = (uint32_t)col_int(res, 0, 0);
			if (n > 0)
				memcpy(b->golden, g, n);
			b->golden_len = n;
			b->changed = col_int(res, 0, 2) != 0;
		}
	}
	free(g);
	PQclear(res);
	return r;
}

static int
pg_boot_adopt(struct ca_db *db, const char *host_id, uint32_t select,
    const uint8_t *values, size_t len, time_t now)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_text(&p, host_id);
	pp_int(&p, (long long)select);
	pp_blob(&p, values, len);
	pp_int(&p, (long long)now);
	return pg_query(db, "INSERT INTO host_boot (host_id, pcr_select, "
	    "golden, last_select, last, changed, updated) VALUES ($1, $2, $3, "
	    "$2, $3, 0, $4) ON CONFLICT (host_id) DO NOTHING", &p, NULL, NULL);
}

static int
pg_boot_mark(struct ca_db *db, const char *host_id, uint32_t select,
    const uint8_t *values, size_t len, int changed, time_t now)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)select);
	pp_blob(&p, values, len);
	pp_int(&p, changed != 0);
	pp_int(&p, (long long)now);
	pp_text(&p, host_id);
	return pg_query(db, "UPDATE host_boot SET last_select = $1, last = $2, "
	    "changed = $3, updated = $4 WHERE host_id = $5", &p, NULL, NULL);
}

static int
pg_boot_approve(struct ca_db *db, const char *host_id, time_t now)
{
	struct pg_params p;
	int changes = 0, r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	pp_text(&p, host_id);
	if ((r = pg_query(db, "UPDATE host_boot SET pcr_select = last_select, "
	    "golden = last, changed = 0, updated = $1 WHERE host_id = $2", &p,
	    NULL, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_NOT_FOUND;
}

static int
pg_boot_inventory(struct ca_db *db, FILE *f)
{
	PGresult *res = NULL;
	int i, r, none;

	if ((r = pg_query(db, "SELECT h.id, b.changed, b.updated FROM hosts h "
	    "LEFT JOIN host_boot b ON b.host_id = h.id WHERE h.revoked_at IS "
	    "NULL ORDER BY h.id", NULL, &res, NULL)) != 0)
		return r;
	fprintf(f, "%-16s %-14s %s\n", "HOST", "BOOT", "SINCE");
	for (i = 0; i < PQntuples(res); i++) {
		none = col_null(res, i, 1);
		fprintf(f, "%-16s %-14s %lld\n", PQgetvalue(res, i, 0),
		    none ? "never-quoted" : col_int(res, i, 1) ? "changed" :
		    "good", none ? 0LL : col_int(res, i, 2));
	}
	PQclear(res);
	return 0;
}

static int
pg_ssh_cert_bot(struct ca_db *db, const char *serial, time_t now, char **bot,
    char **spiffe_id)
{
	struct pg_params p;
	PGresult *res = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	pp_text(&p, serial);
	pp_int(&p, (long long)now);
	if ((r = pg_query(db, CA_DB_SSH_CERT_BOT_SQL("$1", "$2"), &p, &res,
	    NULL)) != 0)
		return r;
	if (PQntuples(res) != 1)
		r = BOTID_ERR_NOT_FOUND;
	else if ((*bot = strdup(PQgetvalue(res, 0, 0))) == NULL ||
	    (*spiffe_id = strdup(PQgetvalue(res, 0, 1))) == NULL) {
		free(*bot);
		*bot = NULL;
		r = BOTID_ERR_ALLOC;
	}
	PQclear(res);
	return r;
}

static int
pg_ssh_key_add(struct ca_db *db, const char *serial, const char *key_line)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_text(&p, serial);
	pp_text(&p, key_line);
	return pg_query(db, "INSERT INTO ssh_keys (serial, key_line) VALUES "
	    "($1, $2) ON CONFLICT (serial) DO NOTHING", &p, NULL, NULL);
}

static int
pg_ssh_revoked_keys(struct ca_db *db, time_t now,
    int (*fn)(const char *, void *), void *arg)
{
	struct pg_params p;
	PGresult *res = NULL;
	int i, r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	if ((r = pg_query(db, CA_DB_SSH_REVOKED_SQL("$1"), &p, &res,
	    NULL)) != 0)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = fn(PQgetvalue(res, i, 0), arg)) != 0)
			break;
	PQclear(res);
	return r;
}

static int
pg_ssh_revoked_certs(struct ca_db *db, time_t now,
    int (*fn)(const char *, const char *, void *), void *arg)
{
	struct pg_params p;
	PGresult *res = NULL;
	int i, r;

	memset(&p, 0, sizeof(p));
	pp_int(&p, (long long)now);
	if ((r = pg_query(db, CA_DB_SSH_KRL_SQL("$1"), &p, &res, NULL)) != 0)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = fn(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    arg)) != 0)
			break;
	PQclear(res);
	return r;
}

static int
pg_token_set_group(struct ca_db *db, const uint8_t *hash, const char *group)
{
	struct pg_params p;
	int changes = 0, r;

	memset(&p, 0, sizeof(p));
	pp_text(&p, group);
	pp_blob(&p, hash, 32);
	if ((r = pg_query(db, "UPDATE tokens SET host_group = $1 WHERE "
	    "hash = $2", &p, NULL, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_NOT_FOUND;
}

/* The text column of the one row sql selects with parameters p. */
static int
pg_group_get(struct ca_db *db, const char *sql, const struct pg_params *p,
    char **group)
{
	PGresult *res = NULL;
	int r;

	*group = NULL;
	if ((r = pg_query(db, sql, p, &res, NULL)) != 0)
		return r;
	if (PQntuples(res) != 1)
		r = BOTID_ERR_NOT_FOUND;
	else if (!col_null(res, 0, 0) &&
	    (*group = col_strdup(res, 0, 0)) == NULL)
		r = BOTID_ERR_ALLOC;
	PQclear(res);
	return r;
}

static int
pg_token_group(struct ca_db *db, const uint8_t *hash, char **group)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_blob(&p, hash, 32);
	return pg_group_get(db, "SELECT host_group FROM tokens WHERE "
	    "hash = $1", &p, group);
}

static int
pg_host_group(struct ca_db *db, const char *host_id, char **group)
{
	struct pg_params p;

	memset(&p, 0, sizeof(p));
	pp_text(&p, host_id);
	return pg_group_get(db, "SELECT host_group FROM hosts WHERE id = $1",
	    &p, group);
}

static int
pg_host_set_group(struct ca_db *db, const char *host_id, const char *group)
{
	struct pg_params p;
	int changes = 0, r;

	memset(&p, 0, sizeof(p));
	pp_text(&p, group);
	pp_text(&p, host_id);
	if ((r = pg_query(db, "UPDATE hosts SET host_group = $1 WHERE id = $2 "
	    "AND revoked_at IS NULL", &p, NULL, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_NOT_FOUND;
}

static int
pg_host_group_each(struct ca_db *db,
    int (*fn)(const char *, const char *, void *), void *arg)
{
	PGresult *res = NULL;
	int i, r;

	if ((r = pg_query(db, CA_DB_HOST_GROUPS_SQL, NULL, &res, NULL)) != 0)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = fn(PQgetvalue(res, i, 0), col_null(res, i, 1) ? NULL :
		    PQgetvalue(res, i, 1), arg)) != 0)
			break;
	PQclear(res);
	return r;
}

/* The server's synchronous_commit decides: nothing here. */
static int
pg_sync_relax(struct ca_db *db)
{
	(void)db;
	return 0;
}

const struct ca_db_ops ca_db_postgres = {
	.open = pg_open,
	.close = pg_close,
	.ping = pg_ping,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.token_add = pg_token_add,
	.token_check = pg_token_check,
	.token_use = pg_token_use,
	.session_add = pg_session_add,
	.session_get = pg_session_get,
	.session_use = pg_session_use,
	.host_add = pg_host_add,
	.host_get = pg_host_get,
	.host_revoke = pg_host_revoke,
	.nonce_add = pg_nonce_add,
	.nonce_use = pg_nonce_use,
	.cert_add = pg_cert_add,
	.cert_revoke_spiffe = pg_cert_revoke_spiffe,
	.cert_revoke_serial = pg_cert_revoke_serial,
	.host_revoke_certs = pg_host_revoke_certs,
	.revoked = pg_revoked,
	.inventory = pg_inventory,
	.token_keys = pg_token_keys,
	.anchor_latest = pg_anchor_latest,
	.anchor_add = pg_anchor_add,
	.anchor_each = pg_anchor_each,
	.ek_revoked = pg_ek_revoked,
	.cert_add_live = pg_cert_record,
	.bot_lift = pg_bot_lift,
	.nonce_add_capped = pg_nonce_add_capped,
	.purge = pg_purge,
	.boot_get = pg_boot_get,
	.boot_adopt = pg_boot_adopt,
	.boot_mark = pg_boot_mark,
	.boot_approve = pg_boot_approve,
	.boot_inventory = pg_boot_inventory,
	.ssh_cert_bot = pg_ssh_cert_bot,
	.ssh_key_add = pg_ssh_key_add,
	.ssh_revoked_keys = pg_ssh_revoked_keys,
	.ssh_revoked_certs = pg_ssh_revoked_certs,
	.token_set_group = pg_token_set_group,
	.token_group = pg_token_group,
	.host_group = pg_host_group,
	.host_set_group = pg_host_set_group,
	.host_group_each = pg_host_group_each,
	.sync_relax = pg_sync_relax,
};
