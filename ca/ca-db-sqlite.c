/*
 * botid-ca's SQLite store (ca-db.h, the default backend: a file path).
 * Every statement is prepared with bound parameters; WAL mode and a busy
 * timeout let the admin commands (token create, revoke) run while the
 * daemon serves.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ca/ca-db-backend.h"
#include "lib/botid.h"
#include "lib/log.h"

struct sqlite_db {
	struct ca_db	 base;		/* first: struct ca_db * points here */
	sqlite3		*h;
};

#define H(db)	(((struct sqlite_db *)(db))->h)

/* How long a statement waits for another process's lock. */
#define BUSY_TIMEOUT_MS	5000
#define WAL_RETRY_MS	10

static void	sqlite_close(struct ca_db *);
static int	sqlite_begin(struct ca_db *);
static int	sqlite_commit(struct ca_db *);
static void	sqlite_rollback(struct ca_db *);

/* Schema versions; each entry migrates from the previous one. */
static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE tokens ("
	"  hash BLOB PRIMARY KEY, created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL, bots TEXT, used_at INTEGER,"
	"  host_id TEXT);"
	"CREATE TABLE sessions ("
	"  id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL,"
	"  nonce BLOB NOT NULL, token_hash BLOB, ek_fpr TEXT NOT NULL,"
	"  ak_public BLOB NOT NULL, hk_public BLOB NOT NULL, bots TEXT,"
	"  expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE hosts ("
	"  id TEXT PRIMARY KEY, ek_fpr TEXT NOT NULL,"
	"  ak_public BLOB NOT NULL, hk_public BLOB NOT NULL, bots TEXT,"
	"  enrolled INTEGER NOT NULL, revoked_at INTEGER);"
	"CREATE TABLE nonces ("
	"  value BLOB PRIMARY KEY, host_id TEXT NOT NULL,"
	"  expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE certs ("
	"  serial TEXT PRIMARY KEY, host_id TEXT NOT NULL, bot TEXT,"
	"  spiffe_id TEXT NOT NULL, attestation TEXT NOT NULL,"
	"  issued INTEGER NOT NULL, not_after INTEGER NOT NULL,"
	"  revoked_at INTEGER);"
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
	"  host_id TEXT NOT NULL, number INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL, reason TEXT NOT NULL, time TEXT NOT NULL,"
	"  hash TEXT NOT NULL, received INTEGER NOT NULL, line TEXT NOT NULL,"
	"  PRIMARY KEY (host_id, number));",
	/*
	 * 5: revoked bots (until an operator lifts them) and the key of each
	 * certificate; indexes for revoked EKs, the CRL and the purge.
	 */
	"CREATE TABLE revoked_bots ("
	"  spiffe_id TEXT PRIMARY KEY, revoked_at INTEGER NOT NULL);"
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
	"  pcr_select INTEGER NOT NULL, golden BLOB NOT NULL,"
	"  last_select INTEGER NOT NULL, last BLOB NOT NULL,"
	"  changed INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL);",
	/* 7: bot keys given SSH certificates, for RevokedKeys */
	"CREATE TABLE ssh_keys ("
	"  serial TEXT PRIMARY KEY REFERENCES certs(serial),"
	"  key_line TEXT NOT NULL);",
	/* 8: host groups (ca-config.h): a join token's, then its host's */
	"ALTER TABLE tokens ADD COLUMN host_group TEXT;"
	"ALTER TABLE hosts ADD COLUMN host_group TEXT;",
};

static int
db_fail(struct ca_db *db, const char *what)
{
	log_err("ca: database: %s: %s", what, sqlite3_errmsg(H(db)));
	return BOTID_ERR_IO;
}

static int
db_exec(struct ca_db *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(H(db), sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("ca: database: %s", msg != NULL ? msg : "?");
		sqlite3_free(msg);
		return BOTID_ERR_IO;
	}
	return 0;
}

static int
db_prepare(struct ca_db *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(H(db), sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_fail(db, "prepare");
	}
	return 0;
}

/*
 * Puts the file in WAL mode. Switching needs an exclusive lock taken from a
 * shared one, so two processes switching a new file at once can each be
 * refused at once (SQLite does not wait where waiting could deadlock):
 * retry for up to the busy timeout. Refuses a file that stays out of WAL.
 */
static int
set_wal(struct ca_db *db, char *err, size_t errlen)
{
	const struct timespec pause = { 0, WAL_RETRY_MS * 1000 * 1000 };
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int rc, ok, tries;

	for (tries = 0; tries < BUSY_TIMEOUT_MS / WAL_RETRY_MS; tries++) {
		rc = sqlite3_prepare_v2(H(db), "PRAGMA journal_mode = WAL", -1,
		    &st, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			mode = sqlite3_column_text(st, 0);
			ok = mode != NULL && strcmp((const char *)mode,
			    "wal") == 0;
			sqlite3_finalize(st);
			if (!ok)
				snprintf(err, errlen, "database: the file "
				    "cannot be put in WAL mode");
			return ok ? 0 : BOTID_ERR_IO;
		}
		sqlite3_finalize(st);
		st = NULL;
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			break;
		(void)nanosleep(&pause, NULL);
	}
	snprintf(err, errlen, "database: journal_mode WAL: %s",
	    sqlite3_errmsg(H(db)));
	return BOTID_ERR_IO;
}

/* Under BEGIN IMMEDIATE: processes opening the file together migrate once. */
static int
migrate(struct ca_db *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int version = 0, first, want = (int)(sizeof(migrations) /
	    sizeof(migrations[0])), r = BOTID_ERR_IO;
	char sql[64];

	if (sqlite_begin(db) != 0) {
		snprintf(err, errlen, "database: cannot begin the migration");
		return BOTID_ERR_IO;
	}
	if (db_prepare(db, "PRAGMA user_version", &st) != 0) {
		snprintf(err, errlen, "database: cannot read the schema "
		    "version");
		goto out;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > want) {
		snprintf(err, errlen, "database schema version %d is newer "
		    "than this botid-ca (%d)", version, want);
		goto out;
	}
	for (first = version; version < want; version++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    version + 1);
		if (db_exec(db, migrations[version]) != 0 ||
		    db_exec(db, sql) != 0) {
			snprintf(err, errlen, "database migration to version "
			    "%d failed", version + 1);
			goto out;
		}
	}
	if (sqlite_commit(db) != 0) {
		snprintf(err, errlen, "database migration failed at commit");
		goto out;
	}
	if (version != first)
		log_info("ca: database schema at version %d", version);
	r = 0;
 out:
	if (r != 0)
		sqlite_rollback(db);
	return r;
}

static int
sqlite_open(const char *path, struct ca_db **dbp, char *err, size_t errlen)
{
	struct sqlite_db *sq = NULL;
	struct ca_db *db = NULL;
	struct stat stb;
	int fd = -1, r = BOTID_ERR_IO;

	*dbp = NULL;
	/*
	 * Create it 0600 ourselves (SQLite would use the umask), but never
	 * open and close an existing file: closing any descriptor of it drops
	 * every POSIX lock this process holds on it, those of a connection
	 * already open here (botid-ca serve's purge thread opens a second
	 * one), and another process could then delete the WAL under it.
	 */
	if (lstat(path, &stb) == 0) {
		if (S_ISLNK(stb.st_mode)) {
			snprintf(err, errlen, "%s: is a symbolic link", path);
			return BOTID_ERR_IO;
		}
	} else if (errno != ENOENT ||
	    ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1 && errno != EEXIST)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return BOTID_ERR_IO;
	} else if (fd != -1)
		close(fd);
	if ((sq = calloc(1, sizeof(*sq))) == NULL)
		return BOTID_ERR_ALLOC;
	sq->base.ops = &ca_db_sqlite;
	db = &sq->base;
	if (sqlite3_open_v2(path, &H(db), SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, H(db) != NULL ?
		    sqlite3_errmsg(H(db)) : "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(H(db), BUSY_TIMEOUT_MS);
	if ((r = set_wal(db, err, errlen)) != 0)
		goto out;
	if (db_exec(db, "PRAGMA foreign_keys = ON") != 0) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(H(db)));
		r = BOTID_ERR_IO;
		goto out;
	}
	if ((r = migrate(db, err, errlen)) != 0)
		goto out;
	*dbp = db;
	db = NULL;
	r = 0;
 out:
	sqlite_close(db);
	return r;
}

static void
sqlite_close(struct ca_db *db)
{
	if (db == NULL)
		return;
	sqlite3_close(H(db));
	free(db);
}

static int
sqlite_ping(struct ca_db *db)
{
	return db_exec(db, "SELECT 1");
}

static int
sqlite_begin(struct ca_db *db)
{
	return db_exec(db, "BEGIN IMMEDIATE");
}

static int
sqlite_commit(struct ca_db *db)
{
	return db_exec(db, "COMMIT");
}

static void
sqlite_rollback(struct ca_db *db)
{
	(void)sqlite3_exec(H(db), "ROLLBACK", NULL, NULL, NULL);
}

/* Runs a statement that returns no rows; *changes if not NULL. */
static int
db_step_done(struct ca_db *db, sqlite3_stmt *st, int *changes)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, "step");
	if (changes != NULL)
		*changes = sqlite3_changes(H(db));
	return 0;
}

static char *
column_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s != NULL ? strdup((const char *)s) : NULL;
}

static int
column_blob(sqlite3_stmt *st, int i, uint8_t **out, size_t *len)
{
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);

	*out = NULL;
	*len = 0;
	if (p == NULL || n <= 0)
		return 0;
	if ((*out = malloc((size_t)n)) == NULL)
		return BOTID_ERR_ALLOC;
	memcpy(*out, p, (size_t)n);
	*len = (size_t)n;
	return 0;
}

/* The AK, host key and allowed bots, in three columns from col on. */
static int
column_host_keys(sqlite3_stmt *st, int col, uint8_t **ak, size_t *ak_len,
    uint8_t **hk, size_t *hk_len, char **bots)
{
	int r;

	if ((r = column_blob(st, col, ak, ak_len)) != 0 ||
	    (r = column_blob(st, col + 1, hk, hk_len)) != 0)
		return r;
	if (sqlite3_column_type(st, col + 2) != SQLITE_NULL &&
	    (*bots = column_strdup(st, col + 2)) == NULL)
		return BOTID_ERR_ALLOC;
	return 0;
}

static int
sqlite_token_add(struct ca_db *db, const uint8_t hash[32], time_t expires,
    const char *bots)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "INSERT INTO tokens (hash, created, expires, "
	    "bots) VALUES (?, ?, ?, ?)", &st)) != 0)
		return r;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	sqlite3_bind_int64(st, 3, (sqlite3_int64)expires);
	if (bots != NULL)
		sqlite3_bind_text(st, 4, bots, -1, SQLITE_STATIC);
	return db_step_done(db, st, NULL);
}

static int
sqlite_token_check(struct ca_db *db, const uint8_t hash[32], time_t now,
    char **bots)
{
	sqlite3_stmt *st;
	int rc, r;

	*bots = NULL;
	if ((r = db_prepare(db, "SELECT expires, used_at, bots FROM tokens "
	    "WHERE hash = ?", &st)) != 0)
		return r;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = BOTID_ERR_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		r = db_fail(db, "token lookup");
	else if (sqlite3_column_type(st, 1) != SQLITE_NULL)
		r = BOTID_ERR_DENIED;
	else if (sqlite3_column_int64(st, 0) < (sqlite3_int64)now)
		r = BOTID_ERR_TIMEOUT;
	else if (sqlite3_column_type(st, 2) != SQLITE_NULL &&
	    (*bots = column_strdup(st, 2)) == NULL)
		r = BOTID_ERR_ALLOC;
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_token_use(struct ca_db *db, const uint8_t hash[32], time_t now,
    const char *host_id)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = db_prepare(db, "UPDATE tokens SET used_at = ?, host_id = ? "
	    "WHERE hash = ? AND used_at IS NULL AND expires >= ?", &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_DENIED;
}

static int
sqlite_session_add(struct ca_db *db, const struct ca_session *s)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "INSERT INTO sessions (id, secret_hash, nonce, "
	    "token_hash, ek_fpr, ak_public, hk_public, bots, expires) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?)", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, s->secret_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, s->nonce, 32, SQLITE_STATIC);
	if (s->has_token)
		sqlite3_bind_blob(st, 4, s->token_hash, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, s->ek_fpr, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, s->ak_pub, (int)s->ak_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, s->hk_pub, (int)s->hk_len, SQLITE_STATIC);
	if (s->bots != NULL)
		sqlite3_bind_text(st, 8, s->bots, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)s->expires);
	return db_step_done(db, st, NULL);
}

static int
sqlite_session_get(struct ca_db *db, const char *id, struct ca_session *s)
{
	sqlite3_stmt *st;
	int rc, r;

	memset(s, 0, sizeof(*s));
	if ((r = db_prepare(db, "SELECT secret_hash, nonce, token_hash, ek_fpr, "
	    "ak_public, hk_public, bots, expires, used FROM sessions WHERE "
	    "id = ?", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = BOTID_ERR_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		r = db_fail(db, "session lookup");
	else if (sqlite3_column_bytes(st, 0) != 32 ||
	    sqlite3_column_bytes(st, 1) != 32)
		r = BOTID_ERR_INTERNAL;
	else {
		snprintf(s->id, sizeof(s->id), "%s", id);
		memcpy(s->secret_hash, sqlite3_column_blob(st, 0), 32);
		memcpy(s->nonce, sqlite3_column_blob(st, 1), 32);
		if (sqlite3_column_bytes(st, 2) == 32) {
			s->has_token = 1;
			memcpy(s->token_hash, sqlite3_column_blob(st, 2), 32);
		}
		snprintf(s->ek_fpr, sizeof(s->ek_fpr), "%s",
		    (const char *)sqlite3_column_text(st, 3));
		s->expires = (time_t)sqlite3_column_int64(st, 7);
		s->used = sqlite3_column_int(st, 8);
		r = column_host_keys(st, 4, &s->ak_pub, &s->ak_len,
		    &s->hk_pub, &s->hk_len, &s->bots);
	}
	sqlite3_finalize(st);
	if (r != 0)
		ca_session_clear(s);
	return r;
}

static int
sqlite_session_use(struct ca_db *db, const char *id)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = db_prepare(db, "UPDATE sessions SET used = 1 WHERE id = ? "
	    "AND used = 0", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_DENIED;
}


static int
sqlite_host_add(struct ca_db *db, const char *id, const char *ek_fpr,
    const struct ca_session *s, time_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "INSERT INTO hosts (id, ek_fpr, ak_public, "
	    "hk_public, bots, enrolled) VALUES (?, ?, ?, ?, ?, ?)", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ek_fpr, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, s->ak_pub, (int)s->ak_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, s->hk_pub, (int)s->hk_len, SQLITE_STATIC);
	if (s->bots != NULL)
		sqlite3_bind_text(st, 5, s->bots, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	return db_step_done(db, st, NULL);
}

static int
sqlite_host_get(struct ca_db *db, const char *id, struct ca_host *h)
{
	sqlite3_stmt *st;
	int rc, r;

	memset(h, 0, sizeof(*h));
	if ((r = db_prepare(db, "SELECT ak_public, hk_public, bots, revoked_at "
	    "FROM hosts WHERE id = ?", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = BOTID_ERR_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		r = db_fail(db, "host lookup");
	else {
		snprintf(h->id, sizeof(h->id), "%s", id);
		h->revoked = sqlite3_column_type(st, 3) != SQLITE_NULL;
		r = column_host_keys(st, 0, &h->ak_pub, &h->ak_len,
		    &h->hk_pub, &h->hk_len, &h->bots);
	}
	sqlite3_finalize(st);
	if (r != 0)
		ca_host_clear(h);
	return r;
}

static int
sqlite_host_revoke(struct ca_db *db, const char *id, time_t now)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = sqlite_begin(db)) != 0)
		return r;
	if ((r = db_prepare(db, "UPDATE hosts SET revoked_at = ? WHERE id = ? "
	    "AND revoked_at IS NULL", &st)) != 0)
		goto fail;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, &changes)) != 0)
		goto fail;
	if (changes != 1) {
		r = BOTID_ERR_NOT_FOUND;
		goto fail;
	}
	if ((r = db_prepare(db, "UPDATE certs SET revoked_at = ? WHERE "
	    "host_id = ? AND revoked_at IS NULL", &st)) != 0)
		goto fail;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, NULL)) != 0)
		goto fail;
	return sqlite_commit(db);
 fail:
	sqlite_rollback(db);
	return r;
}


static int
sqlite_nonce_add(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t expires)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "INSERT INTO nonces (value, host_id, expires) "
	    "VALUES (?, ?, ?)", &st)) != 0)
		return r;
	sqlite3_bind_blob(st, 1, nonce, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)expires);
	return db_step_done(db, st, NULL);
}

static int
sqlite_nonce_use(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t now)
{
	sqlite3_stmt *st;
	int changes = 0, rc, r;

	if ((r = db_prepare(db, "UPDATE nonces SET used = 1 WHERE value = ? "
	    "AND host_id = ? AND used = 0 AND expires >= ?", &st)) != 0)
		return r;
	sqlite3_bind_blob(st, 1, nonce, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	if (changes == 1)
		return 0;
	/* Say why, for the log and the client. */
	if ((r = db_prepare(db, "SELECT used, expires FROM nonces WHERE "
	    "value = ? AND host_id = ?", &st)) != 0)
		return r;
	sqlite3_bind_blob(st, 1, nonce, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc != SQLITE_ROW ? BOTID_ERR_NOT_FOUND :
	    sqlite3_column_int(st, 0) != 0 ? BOTID_ERR_DENIED :
	    BOTID_ERR_TIMEOUT;
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_cert_add(struct ca_db *db, const char *serial, const char *host_id,
    const char *bot, const char *spiffe_id, time_t not_after,
    const char *attestation, time_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "INSERT INTO certs (serial, host_id, bot, "
	    "spiffe_id, attestation, issued, not_after) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?)", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	if (bot != NULL)
		sqlite3_bind_text(st, 3, bot, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, spiffe_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, attestation, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)not_after);
	return db_step_done(db, st, NULL);
}

/* The certificates are revoked and the SPIFFE ID stays revoked. */
static int
sqlite_cert_revoke_spiffe(struct ca_db *db, const char *spiffe_id, time_t now,
    int *n)
{
	sqlite3_stmt *st;
	int r;

	*n = 0;
	if ((r = sqlite_begin(db)) != 0)
		return r;
	if ((r = db_prepare(db, "UPDATE certs SET revoked_at = ? WHERE "
	    "spiffe_id = ? AND revoked_at IS NULL", &st)) != 0)
		goto fail;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_text(st, 2, spiffe_id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, n)) != 0)
		goto fail;
	if ((r = db_prepare(db, "INSERT OR IGNORE INTO revoked_bots "
	    "(spiffe_id, revoked_at) VALUES (?, ?)", &st)) != 0)
		goto fail;
	sqlite3_bind_text(st, 1, spiffe_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	if ((r = db_step_done(db, st, NULL)) != 0)
		goto fail;
	return sqlite_commit(db);
 fail:
	sqlite_rollback(db);
	return r;
}

static int
sqlite_ek_revoked(struct ca_db *db, const char *ek_fpr)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, "SELECT 1 FROM hosts WHERE ek_fpr = ? AND "
	    "revoked_at IS NOT NULL LIMIT 1", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, ek_fpr, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? BOTID_ERR_DENIED : rc == SQLITE_DONE ? 0 :
	    db_fail(db, "revoked EK");
	sqlite3_finalize(st);
	return r;
}

/* Whether a one-row query with one text parameter finds a row. */
static int
db_exists(struct ca_db *db, const char *sql, const char *arg, int *found)
{
	sqlite3_stmt *st;
	int rc, r;

	*found = 0;
	if ((r = db_prepare(db, sql, &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(db, "query");
	sqlite3_finalize(st);
	return r;
}

/* Whether the key is certified to another host or bot (CA_DB_KEY_OWNER_SQL). */
static int
db_key_owner(struct ca_db *db, const char *key_fpr, const char *host_id,
    const char *bot, enum ca_refusal *refused)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, CA_DB_KEY_OWNER_SQL("?1", "?2", "?3"),
	    &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, key_fpr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, bot, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = 0;
	if (rc == SQLITE_ROW)
		*refused = sqlite3_column_int(st, 0) != 0 ?
		    CA_REFUSED_KEY_HOST : CA_REFUSED_KEY_BOT;
	else if (rc != SQLITE_DONE)
		r = db_fail(db, "key owner");
	sqlite3_finalize(st);
	return r;
}

/*
 * BEGIN IMMEDIATE holds the write lock: no revocation runs meanwhile, and
 * no certify of the same key by another host. A token key's JWK (kid and
 * jwk not NULL) goes in the same transaction: a certificate row without
 * its token_keys row would pass for a signing certificate in the JWK Set
 * and SSH queries.
 */
static int	sqlite_token_key_add(struct ca_db *, const char *,
		    const char *, const char *);

static int
sqlite_cert_record(struct ca_db *db, const char *serial,
    const char *host_id, const char *bot, const char *spiffe_id,
    const char *key_fpr, time_t not_after, const char *attestation,
    time_t now, const char *kid, const char *jwk, enum ca_refusal *refused)
{
	sqlite3_stmt *st;
	int found = 0, r;

	if ((r = sqlite_begin(db)) != 0)
		return r;
	if ((r = db_exists(db, "SELECT 1 FROM hosts WHERE id = ? AND "
	    "revoked_at IS NULL", host_id, &found)) != 0)
		goto fail;
	if (!found) {
		*refused = CA_REFUSED_HOST;
		goto refuse;
	}
	if ((r = db_exists(db, "SELECT 1 FROM revoked_bots WHERE "
	    "spiffe_id = ?", spiffe_id, &found)) != 0)
		goto fail;
	if (found) {
		*refused = CA_REFUSED_BOT;
		goto refuse;
	}
	if ((r = db_exists(db, "SELECT 1 FROM certs c JOIN revoked_bots b "
	    "ON b.spiffe_id = c.spiffe_id WHERE c.key_fpr = ? LIMIT 1",
	    key_fpr, &found)) != 0)
		goto fail;
	if (found) {
		*refused = CA_REFUSED_KEY;
		goto refuse;
	}
	if ((r = db_key_owner(db, key_fpr, host_id, bot, refused)) != 0)
		goto fail;
	if (*refused != CA_REFUSED_NONE)
		goto refuse;
	if ((r = db_prepare(db, "INSERT INTO certs (serial, host_id, bot, "
	    "spiffe_id, attestation, issued, not_after, key_fpr) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?)", &st)) != 0)
		goto fail;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, bot, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, spiffe_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, attestation, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)not_after);
	sqlite3_bind_text(st, 8, key_fpr, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, NULL)) != 0)
		goto fail;
	if (kid != NULL && (r = sqlite_token_key_add(db, serial, kid,
	    jwk)) != 0)
		goto fail;
	if ((r = sqlite_commit(db)) != 0)
		goto fail;
	return 0;
 refuse:
	sqlite_rollback(db);
	return 0;
 fail:
	sqlite_rollback(db);
	return r;
}

static int
sqlite_bot_lift(struct ca_db *db, const char *spiffe_id)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = db_prepare(db, "DELETE FROM revoked_bots WHERE spiffe_id = ?",
	    &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, spiffe_id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_NOT_FOUND;
}

/* One INSERT ... SELECT: the count and the insert cannot be split. */
static int
sqlite_nonce_add_capped(struct ca_db *db, const uint8_t *nonce, size_t len,
    const char *host_id, time_t expires, time_t now, unsigned int max)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = db_prepare(db, "INSERT INTO nonces (value, host_id, expires) "
	    "SELECT ?, ?, ? WHERE (SELECT count(*) FROM nonces WHERE "
	    "host_id = ? AND used = 0 AND expires >= ?) < ?", &st)) != 0)
		return r;
	sqlite3_bind_blob(st, 1, nonce, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)expires);
	sqlite3_bind_text(st, 4, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)max);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_BUSY;
}

static int
db_delete_before(struct ca_db *db, const char *sql, time_t t, long *n)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = db_prepare(db, sql, &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)t);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	*n = changes;
	return 0;
}

static int
sqlite_purge(struct ca_db *db, time_t now, long cert_retention,
    struct ca_purge_counts *c)
{
	long dependents;	/* rows of a purged certificate: JWK, SSH key */
	int r;

	if ((r = sqlite_begin(db)) != 0)
		return r;
	if ((r = db_delete_before(db, "DELETE FROM nonces WHERE expires < ?",
	    now, &c->nonces)) != 0 ||
	    (r = db_delete_before(db, "DELETE FROM sessions WHERE "
	    "expires < ?", now, &c->sessions)) != 0 ||
	    (r = db_delete_before(db, "DELETE FROM tokens WHERE expires < ?",
	    now, &c->tokens)) != 0 ||
	    (r = db_delete_before(db, "DELETE FROM token_keys WHERE serial IN "
	    "(" CA_DB_PURGEABLE_SQL("?") ")",
	    now - cert_retention, &dependents)) != 0 ||
	    (r = db_delete_before(db, "DELETE FROM ssh_keys WHERE serial IN "
	    "(" CA_DB_PURGEABLE_SQL("?") ")",
	    now - cert_retention, &dependents)) != 0 ||
	    (r = db_delete_before(db, "DELETE FROM certs WHERE serial IN "
	    "(" CA_DB_PURGEABLE_SQL("?") ")",
	    now - cert_retention, &c->certs)) != 0) {
		sqlite_rollback(db);
		return r;
	}
	return sqlite_commit(db);
}

/*
 * The owner is checked before the conditional UPDATE; should another
 * request revoke it in between, the UPDATE changes nothing: "already".
 */
static int
sqlite_cert_revoke_serial(struct ca_db *db, const char *serial,
    const char *host_id, int reason, time_t now, int *already)
{
	sqlite3_stmt *st;
	int changes = 0, rc, r;

	*already = 0;
	if ((r = db_prepare(db, "SELECT host_id, revoked_at FROM certs WHERE "
	    "serial = ?", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = BOTID_ERR_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		r = db_fail(db, "certificate lookup");
	else if (strcmp((const char *)sqlite3_column_text(st, 0),
	    host_id) != 0)
		r = BOTID_ERR_DENIED;
	else if (sqlite3_column_type(st, 1) != SQLITE_NULL)
		*already = 1;
	sqlite3_finalize(st);
	if (r != 0 || *already)
		return r;
	if ((r = db_prepare(db, "UPDATE certs SET revoked_at = ?, "
	    "revoke_reason = ? WHERE serial = ? AND host_id = ? AND "
	    "revoked_at IS NULL", &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int(st, 2, reason);
	sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, host_id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	*already = changes == 0;
	return 0;
}

static int
sqlite_host_revoke_certs(struct ca_db *db, const char *host_id, int reason,
    time_t now, int (*fn)(const char *, void *), void *arg)
{
	sqlite3_stmt *st;
	int changes = 0, rc, r;

	if ((r = db_prepare(db, "UPDATE hosts SET revoked_at = ? WHERE id = ? "
	    "AND revoked_at IS NULL", &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	if (changes != 1)
		return BOTID_ERR_NOT_FOUND;
	if ((r = db_prepare(db, "UPDATE certs SET revoked_at = ?, "
	    "revoke_reason = ? WHERE host_id = ? AND revoked_at IS NULL "
	    "RETURNING serial", &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int(st, 2, reason);
	sqlite3_bind_text(st, 3, host_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn((const char *)sqlite3_column_text(st, 0),
		    arg)) != 0)
			break;
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, "host certificates revocation");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_revoked(struct ca_db *db, time_t now,
    int (*fn)(const char *, time_t, int, void *), void *arg)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, "SELECT serial, revoked_at, revoke_reason "
	    "FROM certs WHERE revoked_at IS NOT NULL AND not_after >= ? "
	    "ORDER BY revoked_at", &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn((const char *)sqlite3_column_text(st, 0),
		    (time_t)sqlite3_column_int64(st, 1),
		    sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 :
		    sqlite3_column_int(st, 2), arg)) != 0)
			break;
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, "revoked list");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_token_key_add(struct ca_db *db, const char *serial, const char *kid,
    const char *jwk)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "INSERT INTO token_keys (serial, kid, jwk) "
	    "VALUES (?, ?, ?)", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, jwk, -1, SQLITE_STATIC);
	return db_step_done(db, st, NULL);
}

static int
sqlite_token_keys(struct ca_db *db, time_t now, long overlap,
    int (*fn)(const char *, void *), void *arg)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, CA_DB_TOKEN_KEYS_SQL("?1", "?2"), &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)overlap);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn((const char *)sqlite3_column_text(st, 0), arg)) != 0)
			break;
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, "token keys");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_inventory(struct ca_db *db, FILE *f)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, "SELECT h.id, h.enrolled, h.revoked_at, "
	    "COALESCE(h.bots, '*'), c.serial, c.bot, c.spiffe_id, "
	    "c.attestation, c.issued, c.not_after, c.revoked_at FROM hosts h "
	    "LEFT JOIN certs c ON c.host_id = h.id ORDER BY h.id, c.issued",
	    &st)) != 0)
		return r;
	fprintf(f, "%-16s %-8s %-20s %-32s %-7s %-10s %-10s %s\n", "HOST",
	    "STATE", "BOTS", "SERIAL", "ATTEST", "ISSUED", "NOT_AFTER",
	    "SPIFFE_ID");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *serial = (const char *)sqlite3_column_text(st, 4);

		fprintf(f, "%-16s %-8s %-20s %-32s %-7s %-10lld %-10lld %s%s\n",
		    sqlite3_column_text(st, 0),
		    sqlite3_column_type(st, 2) != SQLITE_NULL ? "revoked" :
		    "enrolled", sqlite3_column_text(st, 3),
		    serial != NULL ? serial : "-",
		    serial != NULL ? (const char *)sqlite3_column_text(st, 7) :
		    "-", (long long)sqlite3_column_int64(st, 8),
		    (long long)sqlite3_column_int64(st, 9),
		    serial != NULL ? (const char *)sqlite3_column_text(st, 6) :
		    "-", sqlite3_column_type(st, 10) != SQLITE_NULL ?
		    " (revoked)" : "");
	}
	r = rc == SQLITE_DONE ? 0 : db_fail(db, "inventory");
	sqlite3_finalize(st);
	return r;
}

#define ANCHOR_COLUMNS	"host_id, number, seq, reason, time, hash, received, line"

/* One row of ANCHOR_COLUMNS into *a. */
static int
anchor_row(sqlite3_stmt *st, struct ca_anchor *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->host_id, sizeof(a->host_id), "%s",
	    (const char *)sqlite3_column_text(st, 0));
	a->number = (uint64_t)sqlite3_column_int64(st, 1);
	a->seq = (uint64_t)sqlite3_column_int64(st, 2);
	snprintf(a->reason, sizeof(a->reason), "%s",
	    (const char *)sqlite3_column_text(st, 3));
	snprintf(a->time, sizeof(a->time), "%s",
	    (const char *)sqlite3_column_text(st, 4));
	snprintf(a->hash, sizeof(a->hash), "%s",
	    (const char *)sqlite3_column_text(st, 5));
	a->received = (time_t)sqlite3_column_int64(st, 6);
	if ((a->line = strdup((const char *)sqlite3_column_text(st,
	    7))) == NULL)
		return BOTID_ERR_ALLOC;
	return 0;
}

static int
sqlite_anchor_latest(struct ca_db *db, const char *host_id,
    struct ca_anchor *a)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, "SELECT " ANCHOR_COLUMNS " FROM audit_anchors "
	    "WHERE host_id = ? ORDER BY number DESC LIMIT 1", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = anchor_row(st, a);
	else if (rc == SQLITE_DONE)
		r = BOTID_ERR_NOT_FOUND;
	else
		r = db_fail(db, "anchor lookup");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_anchor_add(struct ca_db *db, const struct ca_anchor *a, unsigned keep)
{
	sqlite3_stmt *st;
	int changes = 0, rc, r;

	if ((r = db_prepare(db, "INSERT INTO audit_anchors (" ANCHOR_COLUMNS
	    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, a->host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)a->number);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)a->seq);
	sqlite3_bind_text(st, 4, a->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->time, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)a->received);
	sqlite3_bind_text(st, 8, a->line, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return BOTID_ERR_DENIED;
	if (rc != SQLITE_DONE)
		return db_fail(db, "anchor insert");
	/* The history is bounded: the newest keep stay. */
	if ((r = db_prepare(db, "DELETE FROM audit_anchors WHERE host_id = ? "
	    "AND number NOT IN (SELECT number FROM audit_anchors WHERE "
	    "host_id = ? ORDER BY number DESC LIMIT ?)", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, a->host_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)keep);
	return db_step_done(db, st, &changes);
}

static int
sqlite_anchor_each(struct ca_db *db,
    int (*fn)(const struct ca_anchor *, void *), void *arg)
{
	struct ca_anchor a;
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, "SELECT " ANCHOR_COLUMNS " FROM audit_anchors "
	    "x WHERE number = (SELECT MAX(number) FROM audit_anchors y WHERE "
	    "y.host_id = x.host_id) ORDER BY host_id", &st)) != 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = anchor_row(st, &a)) == 0)
			r = fn(&a, arg);
		ca_anchor_clear(&a);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, "anchor list");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_boot_get(struct ca_db *db, const char *host_id, struct ca_boot *b)
{
	sqlite3_stmt *st;
	const void *g;
	int rc, n, r;

	memset(b, 0, sizeof(*b));
	if ((r = db_prepare(db, "SELECT pcr_select, golden, changed FROM "
	    "host_boot WHERE host_id = ?", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		g = sqlite3_column_blob(st, 1);
		n = sqlite3_column_bytes(st, 1);
		if (n < 0 || (size_t)n > sizeof(b->golden) ||
		    (n > 0 && g == NULL))
			r = BOTID_ERR_INTERNAL;
		else {
			b->select = (uint32_t)sqlite3_column_int64(st, 0);
			if (n > 0)
				memcpy(b->golden, g, (size_t)n);
			b->golden_len = (size_t)n;
			b->changed = sqlite3_column_int(st, 2) != 0;
		}
	} else if (rc == SQLITE_DONE)
		r = BOTID_ERR_NOT_FOUND;
	else
		r = db_fail(db, "boot state");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_boot_adopt(struct ca_db *db, const char *host_id, uint32_t select,
    const uint8_t *values, size_t len, time_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "INSERT INTO host_boot (host_id, pcr_select, "
	    "golden, last_select, last, changed, updated) VALUES (?, ?, ?, ?, "
	    "?, 0, ?) ON CONFLICT (host_id) DO NOTHING", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)select);
	sqlite3_bind_blob(st, 3, values, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)select);
	sqlite3_bind_blob(st, 5, values, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	return db_step_done(db, st, NULL);
}

static int
sqlite_boot_mark(struct ca_db *db, const char *host_id, uint32_t select,
    const uint8_t *values, size_t len, int changed, time_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "UPDATE host_boot SET last_select = ?, "
	    "last = ?, changed = ?, updated = ? WHERE host_id = ?", &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)select);
	sqlite3_bind_blob(st, 2, values, (int)len, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, changed != 0);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	sqlite3_bind_text(st, 5, host_id, -1, SQLITE_STATIC);
	return db_step_done(db, st, NULL);
}

static int
sqlite_boot_approve(struct ca_db *db, const char *host_id, time_t now)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = db_prepare(db, "UPDATE host_boot SET pcr_select = "
	    "last_select, golden = last, changed = 0, updated = ? WHERE "
	    "host_id = ?", &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_NOT_FOUND;
}

static int
sqlite_boot_inventory(struct ca_db *db, FILE *f)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, "SELECT h.id, b.changed, b.updated FROM hosts "
	    "h LEFT JOIN host_boot b ON b.host_id = h.id WHERE h.revoked_at "
	    "IS NULL ORDER BY h.id", &st)) != 0)
		return r;
	fprintf(f, "%-16s %-14s %s\n", "HOST", "BOOT", "SINCE");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int none = sqlite3_column_type(st, 1) == SQLITE_NULL;

		fprintf(f, "%-16s %-14s %lld\n", sqlite3_column_text(st, 0),
		    none ? "never-quoted" : sqlite3_column_int(st, 1) ?
		    "changed" : "good", none ? 0LL :
		    (long long)sqlite3_column_int64(st, 2));
	}
	r = rc == SQLITE_DONE ? 0 : db_fail(db, "boot inventory");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_ssh_cert_bot(struct ca_db *db, const char *serial, time_t now,
    char **bot, char **spiffe_id)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, CA_DB_SSH_CERT_BOT_SQL("?1", "?2"), &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = BOTID_ERR_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		r = db_fail(db, "ssh certificate");
	else if ((*bot = strdup((const char *)sqlite3_column_text(st,
	    0))) == NULL || (*spiffe_id = strdup((const char *)
	    sqlite3_column_text(st, 1))) == NULL) {
		free(*bot);
		*bot = NULL;
		r = BOTID_ERR_ALLOC;
	} else
		r = 0;
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_ssh_key_add(struct ca_db *db, const char *serial, const char *key_line)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_prepare(db, "INSERT OR IGNORE INTO ssh_keys (serial, "
	    "key_line) VALUES (?, ?)", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key_line, -1, SQLITE_STATIC);
	return db_step_done(db, st, NULL);
}

static int
sqlite_ssh_revoked_keys(struct ca_db *db, time_t now,
    int (*fn)(const char *, void *), void *arg)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	if ((r = db_prepare(db, CA_DB_SSH_REVOKED_SQL("?1"), &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn((const char *)sqlite3_column_text(st, 0), arg)) != 0)
			break;
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, "ssh revoked keys");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_ssh_revoked_certs(struct ca_db *db, time_t now,
    int (*fn)(const char *, const char *, void *), void *arg)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	if ((r = db_prepare(db, CA_DB_SSH_KRL_SQL("?1"), &st)) != 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1), arg)) != 0)
			break;
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, "ssh revoked certificates");
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_token_set_group(struct ca_db *db, const uint8_t *hash,
    const char *group)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = db_prepare(db, "UPDATE tokens SET host_group = ? WHERE "
	    "hash = ?", &st)) != 0)
		return r;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_NOT_FOUND;
}

/* The text column of one row selected by sql with one parameter. */
static int
db_group_get(struct ca_db *db, const char *sql, const void *key, int len,
    char **group)
{
	sqlite3_stmt *st;
	int rc, r;

	*group = NULL;
	if ((r = db_prepare(db, sql, &st)) != 0)
		return r;
	if (len > 0)
		sqlite3_bind_blob(st, 1, key, len, SQLITE_STATIC);
	else
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = BOTID_ERR_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		r = db_fail(db, "group lookup");
	else if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
	    (*group = column_strdup(st, 0)) == NULL)
		r = BOTID_ERR_ALLOC;
	sqlite3_finalize(st);
	return r;
}

static int
sqlite_token_group(struct ca_db *db, const uint8_t *hash, char **group)
{
	return db_group_get(db, "SELECT host_group FROM tokens WHERE hash = ?",
	    hash, 32, group);
}

static int
sqlite_host_group(struct ca_db *db, const char *host_id, char **group)
{
	return db_group_get(db, "SELECT host_group FROM hosts WHERE id = ?",
	    host_id, 0, group);
}

static int
sqlite_host_set_group(struct ca_db *db, const char *host_id,
    const char *group)
{
	sqlite3_stmt *st;
	int changes = 0, r;

	if ((r = db_prepare(db, "UPDATE hosts SET host_group = ? WHERE id = ? "
	    "AND revoked_at IS NULL", &st)) != 0)
		return r;
	if (group != NULL)
		sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host_id, -1, SQLITE_STATIC);
	if ((r = db_step_done(db, st, &changes)) != 0)
		return r;
	return changes == 1 ? 0 : BOTID_ERR_NOT_FOUND;
}

static int
sqlite_host_group_each(struct ca_db *db,
    int (*fn)(const char *, const char *, void *), void *arg)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((r = db_prepare(db, CA_DB_HOST_GROUPS_SQL, &st)) != 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = fn((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1), arg)) != 0)
			break;
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, "host groups");
	sqlite3_finalize(st);
	return r;
}

/*
 * In WAL mode with synchronous NORMAL a commit is written to the WAL but
 * not fsynced (the WAL is at each checkpoint): a crashed process loses
 * nothing, a power loss may lose the last commits, and the file stays
 * consistent (sqlite.org/pragma.html#pragma_synchronous).
 */
static int
sqlite_sync_relax(struct ca_db *db)
{
	return db_exec(db, "PRAGMA synchronous = NORMAL");
}

const struct ca_db_ops ca_db_sqlite = {
	.open = sqlite_open,
	.close = sqlite_close,
	.ping = sqlite_ping,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.token_add = sqlite_token_add,
	.token_check = sqlite_token_check,
	.token_use = sqlite_token_use,
	.session_add = sqlite_session_add,
	.session_get = sqlite_session_get,
	.session_use = sqlite_session_use,
	.host_add = sqlite_host_add,
	.host_get = sqlite_host_get,
	.host_revoke = sqlite_host_revoke,
	.nonce_add = sqlite_nonce_add,
	.nonce_use = sqlite_nonce_use,
	.cert_add = sqlite_cert_add,
	.cert_revoke_spiffe = sqlite_cert_revoke_spiffe,
	.cert_revoke_serial = sqlite_cert_revoke_serial,
	.host_revoke_certs = sqlite_host_revoke_certs,
	.revoked = sqlite_revoked,
	.inventory = sqlite_inventory,
	.token_keys = sqlite_token_keys,
	.anchor_latest = sqlite_anchor_latest,
	.anchor_add = sqlite_anchor_add,
	.anchor_each = sqlite_anchor_each,
	.ek_revoked = sqlite_ek_revoked,
	.cert_add_live = sqlite_cert_record,
	.bot_lift = sqlite_bot_lift,
	.nonce_add_capped = sqlite_nonce_add_capped,
	.purge = sqlite_purge,
	.boot_get = sqlite_boot_get,
	.boot_adopt = sqlite_boot_adopt,
	.boot_mark = sqlite_boot_mark,
	.boot_approve = sqlite_boot_approve,
	.boot_inventory = sqlite_boot_inventory,
	.ssh_cert_bot = sqlite_ssh_cert_bot,
	.ssh_key_add = sqlite_ssh_key_add,
	.ssh_revoked_keys = sqlite_ssh_revoked_keys,
	.ssh_revoked_certs = sqlite_ssh_revoked_certs,
	.token_set_group = sqlite_token_set_group,
	.token_group = sqlite_token_group,
	.host_group = sqlite_host_group,
	.host_set_group = sqlite_host_set_group,
	.host_group_each = sqlite_host_group_each,
	.sync_relax = sqlite_sync_relax,
};
