/*
 * Audit log writer. Each entry is a single write(2) on an O_APPEND file so
 * lines never interleave and a crash loses at most the entry being written.
 * Why the chain and checkpoints work this way (doc/audit.md):
 *  - Every line carries its seq and the SHA-256 of the previous line's
 *    exact bytes, so an edit, deletion, move or insertion breaks a link.
 *    The chain state lives here, in the loop thread, and carries across
 *    a reopen and, through the file's last line, across restarts.
 *  - Anyone can recompute SHA-256: what makes the chain evidence is a
 *    checkpoint, the host's TPM key signing "seq S has hash H". Periodic
 *    ones are signed on a worker thread, so the loop never waits behind
 *    the TPM lock for them; they seal the entry that was last when they
 *    were asked for, and entries written meanwhile wait for the next one.
 *  - At rotation and shutdown the loop signs at once, so a file ends
 *    with a checkpoint that seals everything before it and a cut after it
 *    shows.
 *  - A signature, token or key operation is answered only after its entry
 *    was written (audit_write returns the failure); a write the disk cut
 *    short is truncated away again, so the chain never holds a broken line.
 *  - Denials and reads cost a client nothing to repeat: they are counted
 *    per caller, op, bot and result, one line a second (audit_note).
 *    While the disk is full every count is kept: when all slots hold one,
 *    a new kind is counted by op and result alone (overflow_count), so
 *    the counts written later still add up to exactly the events.
 *  - A checkpoint (version 2) signs all it says: its own number, the
 *    agent's run, time, reason, seal and the previous checkpoint's hash,
 *    so that a relabelled, removed or replayed checkpoint shows.
 *  - A final checkpoint is also recorded outside the log (audit.state in
 *    the state directory). A starting agent continues only from a log
 *    that ends with that checkpoint; anything else is sealed by a "break"
 *    checkpoint saying what was found, never silently by the next one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "agent/anchor.h"
#include "agent/audit-line.h"
#include "agent/audit.h"
#include "agent/backend.h"
#include "lib/auditlog.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/file.h"
#include "lib/hex.h"
#include "lib/limits.h"
#include "lib/log.h"

#define DEFAULT_CHECKPOINT_ENTRIES	100
#define DEFAULT_CHECKPOINT_INTERVAL	60
#define NO_HOST_KEY	"host not provisioned, or its TPM unavailable"
#define STATE_FILE	"audit.state"
#define STATE_MAX	1024
#define HOST_CERT_FILE	"attest/host-cert.pem"
#define HOST_CERT_MAX	(64 * 1024)
/* An overflow count's detail, and the pair the last overflow slot keeps. */
#define OVERFLOW_DETAIL	"other callers, counted while the log was full"
#define OVERFLOW_OTHER	"other"

struct checkpoint_job {
	struct botid_registry	*reg;		/* reference held */
	const char		*reason;	/* a static string */
	uint64_t		 sealed_seq;
	uint8_t			 sealed_hash[AUDITLOG_HASH_LEN];
	/* What else a version 2 checkpoint signs. */
	uint64_t		 number;
	struct timespec		 ts;
	char			 time[AUDIT_LINE_TIME_LEN];
	uint8_t			 prev_checkpoint[AUDITLOG_HASH_LEN];
	char			 found[AUDITLOG_FOUND_MAX];
	/* Results. */
	int			 result;
	const char		*alg;
	uint8_t			*sig;
	size_t			 sig_len;
};

static int audit_fd = -1;
static int need_newline;	/* the file ends in a cut line */
/* An entry being written: a newline, the text, its newline. */
static char line[1 + BOTID_MAX_AUDIT_LINE];
static EVP_MD *sha256;		/* fetched once */

/* The chain: what the next entry links to. */
static uint64_t next_seq;
static uint8_t last_hash[AUDITLOG_HASH_LEN];

/* Checkpoints. */
static unsigned every_entries = DEFAULT_CHECKPOINT_ENTRIES;
static unsigned every_seconds = DEFAULT_CHECKPOINT_INTERVAL;
static int to_syslog;
static uint64_t entries_since;	/* since the last checkpoint was asked */
static time_t last_checkpoint;
static int have_sealed;
static uint64_t sealed_seq;	/* of the last checkpoint written */
/* The checkpoints' own chain, and this run's identity. */
static uint8_t run_id[AUDITLOG_RUN_LEN];
static uint64_t next_number;
static uint8_t last_checkpoint_hash[AUDITLOG_HASH_LEN];
static char *state_path;	/* where the last final checkpoint is kept */
static char *state_dir;
static int break_pending;	/* the start found a log it cannot continue */
static char break_found[AUDITLOG_FOUND_MAX];

/* The signing worker; queue and done under lock. */
static pthread_t signer;
static int signer_started;
static pthread_mutex_t signer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t signer_cond = PTHREAD_COND_INITIALIZER;
static struct checkpoint_job *queued, *done;
static int inflight, stop;
static int signer_efd = -1;

/* Writes that failed since the log last worked, and when that was said. */
static uint64_t unwritten;
static int failing;
static time_t failure_logged;

/*
 * Aggregated events (audit_note): one slot per caller, op, bot, result
 * and detail seen in this second or the one before.
 */
struct aggregate {
	int			 used;
	time_t			 last_sec;	/* the last event's second */
	uint64_t		 pending;	/* counted, not yet written */
	uint64_t		 micros;	/* the longest of those */
	char			 op[32];
	char			 result[16];
	int			 has_bot;
	char			 bot[BOTID_MAX_BOT_NAME + 1];
	int			 has_detail;
	char			 detail[BOTID_AUDIT_MAX_DETAIL];
	int			 no_caller;	/* an overflow count */
	struct botid_peer	 peer;
};
static struct aggregate aggregates[BOTID_AUDIT_AGGREGATE_SLOTS];
/*
 * Counts by op and result alone, for events that found every slot above
 * holding a count the log could not take: kept until it can.
 */
static struct aggregate overflow[BOTID_AUDIT_OVERFLOW_SLOTS];
static size_t aggregates_pending;	/* slots of both with pending > 0 */
static time_t aggregates_sec;		/* the second last flushed for */

int
audit_open(const char *path)
{
	static const uint8_t zero[AUDITLOG_HASH_LEN];
	struct stat st;
	uint64_t seq;
	uint8_t hash[AUDITLOG_HASH_LEN];
	int fd, partial, r;

	if (path == NULL)
		return 0;
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		log_err("audit log %s: %s", path, strerror(errno));
		return BOTID_ERR_IO;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_err("audit log %s: not a regular file", path);
		close(fd);
		return BOTID_ERR_IO;
	}
	if ((st.st_mode & 077) != 0)
		log_warn("audit log %s: mode %03o is wider than 0600", path,
		    (unsigned)(st.st_mode & 0777));
	/* A running agent keeps its chain; a starting one takes the file's. */
	if (audit_fd == -1) {
		r = auditlog_tail(fd, &seq, hash, &partial);
		need_newline = partial;
		if (r == 0) {
			next_seq = seq + 1;
			memcpy(last_hash, hash, sizeof(last_hash));
		} else {
			next_seq = 0;
			memcpy(last_hash, zero, sizeof(last_hash));
			if (r != BOTID_ERR_NOT_FOUND)
				log_warn("audit log %s: the last line is %s; a "
				    "new chain starts at seq 0", path, partial ?
				    "cut short" : "not a chained entry");
		}
		last_checkpoint = time(NULL);
	} else
		close(audit_fd);
	audit_fd = fd;
	return 0;
}

void
audit_configure(const struct botid_agent_config *cfg)
{
	every_entries = cfg->audit_checkpoint_entries;
	every_seconds = cfg->audit_checkpoint_interval;
	to_syslog = cfg->audit_syslog;
}

int
audit_reopen(const char *path, struct botid_registry *reg)
{
	if (audit_fd != -1) {
		audit_flush();
		audit_seal(reg, "rotate");
	}
	if (path == NULL) {
		audit_close();
		return 0;
	}
	return audit_open(path);
}

/*
 * The log closes with counts it could not take (the disk still full at a
 * stop): they are lost, so the agent's own log says exactly how many.
 */
static void
aggregates_lost(void)
{
	struct aggregate *a;
	uint64_t events = 0;
	size_t i, lines = aggregates_pending;

	for (i = 0; i < BOTID_AUDIT_AGGREGATE_SLOTS +
	    BOTID_AUDIT_OVERFLOW_SLOTS; i++) {
		a = i < BOTID_AUDIT_AGGREGATE_SLOTS ? &aggregates[i] :
		    &overflow[i - BOTID_AUDIT_AGGREGATE_SLOTS];
		events += a->pending;
		memset(a, 0, sizeof(*a));
	}
	aggregates_pending = 0;
	log_err("audit: %" PRIu64 " counted events (%zu lines) could not be "
	    "written before the log closed: lost", events, lines);
}

void
audit_close(void)
{
	/* After the shutdown checkpoint: the sender tries it once more. */
	anchor_stop();
	if (aggregates_pending > 0)
		aggregates_lost();
	free(state_path);
	state_path = NULL;
	free(state_dir);
	state_dir = NULL;
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = -1;
	EVP_MD_free(sha256);
	sha256 = NULL;
}

/*
 * Takes back the n bytes a short write left at the end of the file, so
 * that the log holds whole lines only and `botid audit verify` still
 * passes; the next write tries the entry again. Only this thread appends,
 * so the last n bytes are ours. If the file cannot be cut, the line is
 * ended before the next entry and verification shows the cut line.
 */
static void
entry_cut(size_t n)
{
	struct stat st;

	if (fstat(audit_fd, &st) == 0 && (uint64_t)st.st_size >= n &&
	    ftruncate(audit_fd, st.st_size - (off_t)n) == 0)
		return;
	log_err("audit: cannot remove a cut line: %s", strerror(errno));
	need_newline = 1;
}

/*
 * Appends the text of an entry as one line and advances the chain past
 * it. text may be the line buffer itself, at its second byte. A line not
 * written whole leaves the chain where it was: the next entry links to the
 * last complete one, and verification shows the damage.
 */
static int
entry_append(const char *text, size_t len)
{
	char *start;
	ssize_t n;
	int saved;

	if (len >= BOTID_MAX_AUDIT_LINE)
		return BOTID_ERR_TOO_LARGE;
	if (text != line + 1)
		memcpy(line + 1, text, len);
	line[1 + len] = '\n';
	/* End a line a crash cut short, so that this one stays whole. */
	line[0] = '\n';
	start = need_newline ? line : line + 1;
	n = write(audit_fd, start, (size_t)need_newline + len + 1);
	if (n != (ssize_t)(need_newline + len + 1)) {
		/* A short write of a regular file means no space (or quota). */
		saved = n == -1 ? errno : ENOSPC;
		if (n > 0)
			entry_cut((size_t)n);
		errno = saved;
		return BOTID_ERR_IO;
	}
	if (sha256 == NULL &&
	    (sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return BOTID_ERR_CRYPTO;
	if (EVP_Digest(line + 1, len + 1, last_hash, NULL, sha256, NULL) != 1)
		return BOTID_ERR_CRYPTO;
	need_newline = 0;
	next_seq++;
	if (to_syslog)
		syslog(LOG_AUTHPRIV | LOG_INFO, "audit: %.*s", (int)len, line + 1);
	return 0;
}

/* Says, at most once a second, that entries cannot be written. */
static void
audit_failed(const char *op, int r, int err)
{
	time_t now = time(NULL);

	unwritten++;
	if (failing && now - failure_logged < (time_t)BOTID_LOG_EVERY_S)
		return;
	log_err("audit: cannot write the entry for %s: %s%s%s; %" PRIu64
	    " entries not written since the log last worked, signatures "
	    "refused until it works", op, botid_strerror(r),
	    r == BOTID_ERR_IO ? ": " : "", r == BOTID_ERR_IO ? strerror(err) :
	    "", unwritten);
	failing = 1;
	failure_logged = now;
}

static void
audit_worked(void)
{
	if (!failing)
		return;
	log_info("audit: the log is written again, after %" PRIu64 " entries "
	    "could not be", unwritten);
	failing = 0;
	unwritten = 0;
}

/* One entry, now: 0, or why it could not be written (errno kept). */
static int
entry_write(const struct botid_audit_event *ev)
{
	struct timespec now;
	size_t len;
	int err, r;

	clock_gettime(CLOCK_REALTIME, &now);
	if ((r = audit_line_event(ev, next_seq, last_hash, &now, line + 1,
	    BOTID_MAX_AUDIT_LINE, &len)) == 0 &&
	    (r = entry_append(line + 1, len)) == 0) {
		entries_since++;
		audit_worked();
		return 0;
	}
	err = errno;
	audit_failed(ev->op, r, err);
	errno = err;
	return r;
}

/* Writes one aggregate's pending count as a line; 0 or an error. */
static int
aggregate_write(struct aggregate *a)
{
	struct botid_audit_event ev;
	int r;

	if (a->pending == 0)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.op = a->op;
	ev.bot = a->has_bot ? a->bot : NULL;
	ev.peer = a->no_caller ? NULL : &a->peer;
	ev.result = a->result;
	ev.detail = a->has_detail ? a->detail : NULL;
	ev.micros = a->micros;
	ev.count = a->pending;
	if ((r = entry_write(&ev)) != 0)
		return r;
	a->pending = 0;
	a->micros = 0;
	aggregates_pending--;
	/* An overflow slot holds nothing but a count. */
	if (a->no_caller)
		a->used = 0;
	return 0;
}

/*
 * Every pending aggregate, oldest slot first, then the overflow counts;
 * 0 if all were written.
 */
static int
aggregates_write(void)
{
	size_t i;
	int r;

	for (i = 0; aggregates_pending > 0 && i < BOTID_AUDIT_AGGREGATE_SLOTS;
	    i++)
		if ((r = aggregate_write(&aggregates[i])) != 0)
			return r;
	for (i = 0; aggregates_pending > 0 && i < BOTID_AUDIT_OVERFLOW_SLOTS;
	    i++)
		if ((r = aggregate_write(&overflow[i])) != 0)
			return r;
	return 0;
}

void
audit_flush(void)
{
	if (audit_fd != -1)
		(void)aggregates_write();
}

void
audit_flush_due(void)
{
	time_t now = time(NULL);
	size_t i;

	if (audit_fd == -1 || now == aggregates_sec)
		return;
	aggregates_sec = now;
	(void)aggregates_write();
	/* A key quiet for a whole second is written at once next time. */
	for (i = 0; i < BOTID_AUDIT_AGGREGATE_SLOTS; i++)
		if (aggregates[i].used && aggregates[i].pending == 0 &&
		    aggregates[i].last_sec < now - 1)
			aggregates[i].used = 0;
}

int
audit_write(const struct botid_audit_event *ev)
{
	if (audit_fd == -1)
		return 0;
	/* Counted events came first: their lines go before this one. */
	if (aggregates_pending > 0 && aggregates_write() != 0)
		return BOTID_ERR_AUDIT_UNAVAILABLE;
	if (entry_write(ev) != 0)
		return BOTID_ERR_AUDIT_UNAVAILABLE;
	return 0;
}

static int
same_text(int has, const char *kept, const char *s)
{
	return has ? s != NULL && strcmp(kept, s) == 0 : s == NULL;
}

/* Whether slot a counts events like ev. */
static int
aggregate_matches(const struct aggregate *a, const struct botid_audit_event *ev)
{
	const struct botid_peer *p = ev->peer;

	return a->used && a->peer.uid == p->uid && a->peer.gid == p->gid &&
	    a->peer.pid == p->pid && a->peer.have_exe == p->have_exe &&
	    a->peer.have_unit == p->have_unit &&
	    (!p->have_exe || strcmp(a->peer.exe, p->exe) == 0) &&
	    (!p->have_unit || strcmp(a->peer.unit, p->unit) == 0) &&
	    strcmp(a->op, ev->op) == 0 && strcmp(a->result, ev->result) == 0 &&
	    same_text(a->has_bot, a->bot, ev->bot) &&
	    same_text(a->has_detail, a->detail, ev->detail);
}

/* A slot for a new key: a free one, or the one quiet the longest. */
static struct aggregate *
aggregate_slot(void)
{
	struct aggregate *a, *best = NULL;
	size_t i;

	for (i = 0; i < BOTID_AUDIT_AGGREGATE_SLOTS; i++) {
		a = &aggregates[i];
		if (!a->used)
			return a;
		if (a->pending == 0 &&
		    (best == NULL || a->last_sec < best->last_sec))
			best = a;
	}
	if (best != NULL)
		return best;
	/* Every slot holds a count: write them all to make room. */
	if (aggregates_write() != 0)
		return NULL;
	return &aggregates[0];
}

/*
 * Counts ev by its op and result alone: every slot holds a count the log
 * could not take, or ev could not be written as it came. The op and result
 * pairs the agent names fit in the overflow slots; the last one counts
 * whatever else comes, as op and result "other", so that no event is ever
 * dropped uncounted.
 */
static void
overflow_count(const struct botid_audit_event *ev)
{
	struct aggregate *a = NULL;
	const char *op = ev->op, *result = ev->result;
	size_t i;

	if (strlen(op) >= sizeof(a->op) || strlen(result) >= sizeof(a->result))
		op = result = OVERFLOW_OTHER;
	for (i = 0; i < BOTID_AUDIT_OVERFLOW_SLOTS; i++)
		if (overflow[i].used && strcmp(overflow[i].op, op) == 0 &&
		    strcmp(overflow[i].result, result) == 0) {
			a = &overflow[i];
			break;
		}
	if (a == NULL) {
		for (i = 0; i + 1 < BOTID_AUDIT_OVERFLOW_SLOTS &&
		    overflow[i].used; i++)
			;
		if (i + 1 == BOTID_AUDIT_OVERFLOW_SLOTS)
			op = result = OVERFLOW_OTHER;
		a = &overflow[i];
	}
	if (!a->used) {
		memset(a, 0, sizeof(*a));
		a->used = 1;
		a->no_caller = 1;
		snprintf(a->op, sizeof(a->op), "%s", op);
		snprintf(a->result, sizeof(a->result), "%s", result);
		a->has_detail = 1;
		snprintf(a->detail, sizeof(a->detail), "%s", OVERFLOW_DETAIL);
	}
	if (a->pending++ == 0)
		aggregates_pending++;
	if (ev->micros > a->micros)
		a->micros = ev->micros;
	a->last_sec = time(NULL);
}

void
audit_note(const struct botid_audit_event *ev)
{
	struct aggregate *a = NULL;
	time_t now;
	size_t i;

	if (audit_fd == -1)
		return;
	/* What a slot cannot hold is written as it comes, or counted. */
	if (strlen(ev->op) >= sizeof(a->op) ||
	    strlen(ev->result) >= sizeof(a->result) ||
	    (ev->bot != NULL && strlen(ev->bot) > BOTID_MAX_BOT_NAME) ||
	    (ev->detail != NULL && strlen(ev->detail) >=
	    BOTID_AUDIT_MAX_DETAIL) || ev->digest != NULL) {
		if (audit_write(ev) != 0)
			overflow_count(ev);
		return;
	}
	audit_flush_due();
	now = time(NULL);
	for (i = 0; i < BOTID_AUDIT_AGGREGATE_SLOTS; i++)
		if (aggregate_matches(&aggregates[i], ev)) {
			a = &aggregates[i];
			break;
		}
	if (a != NULL && (a->last_sec >= now - 1 || a->pending > 0)) {
		/*
		 * The same again within a second, or a count the log could
		 * not take yet: one more in the count.
		 */
		if (a->pending++ == 0)
			aggregates_pending++;
		if (ev->micros > a->micros)
			a->micros = ev->micros;
		a->last_sec = now;
		return;
	}
	if (a == NULL && (a = aggregate_slot()) == NULL) {
		/* No slot free and no disk: counted apart, never dropped. */
		overflow_count(ev);
		return;
	}
	memset(a, 0, sizeof(*a));
	a->used = 1;
	a->last_sec = now;
	snprintf(a->op, sizeof(a->op), "%s", ev->op);
	snprintf(a->result, sizeof(a->result), "%s", ev->result);
	if ((a->has_bot = ev->bot != NULL))
		snprintf(a->bot, sizeof(a->bot), "%s", ev->bot);
	if ((a->has_detail = ev->detail != NULL))
		snprintf(a->detail, sizeof(a->detail), "%s", ev->detail);
	a->peer = *ev->peer;
	/* The first of its kind is written at once; kept if it cannot be. */
	if (audit_write(ev) != 0) {
		a->pending = 1;
		a->micros = ev->micros;
		aggregates_pending++;
	}
}

/*
 * The host key's TPMT_SIGNATURE as what any verifier reads: ES256 as a
 * DER ECDSA-Sig-Value, RS256 as the PKCS#1 v1.5 signature.
 */
static int
signature_from_tpm(const uint8_t *m, size_t len, const char **alg,
    uint8_t **sig, size_t *sig_len)
{
	TPMT_SIGNATURE s;
	ECDSA_SIG *es = NULL;
	BIGNUM *rb = NULL, *sb = NULL;
	unsigned char *der = NULL;
	size_t off = 0;
	int dlen, r = BOTID_ERR_TPM;

	*sig = NULL;
	*sig_len = 0;
	memset(&s, 0, sizeof(s));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(m, len, &off, &s) != 0 ||
	    off != len)
		goto out;
	if (s.sigAlg == TPM2_ALG_RSASSA &&
	    s.signature.rsassa.hash == TPM2_ALG_SHA256) {
		r = BOTID_ERR_ALLOC;
		if ((*sig = malloc(s.signature.rsassa.sig.size)) == NULL)
			goto out;
		memcpy(*sig, s.signature.rsassa.sig.buffer,
		    s.signature.rsassa.sig.size);
		*sig_len = s.signature.rsassa.sig.size;
		*alg = "RS256";
		r = 0;
		goto out;
	}
	if (s.sigAlg != TPM2_ALG_ECDSA ||
	    s.signature.ecdsa.hash != TPM2_ALG_SHA256)
		goto out;
	r = BOTID_ERR_ALLOC;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (rb = BN_bin2bn(s.signature.ecdsa.signatureR.buffer,
	    s.signature.ecdsa.signatureR.size, NULL)) == NULL ||
	    (sb = BN_bin2bn(s.signature.ecdsa.signatureS.buffer,
	    s.signature.ecdsa.signatureS.size, NULL)) == NULL ||
	    ECDSA_SIG_set0(es, rb, sb) != 1)
		goto out;
	rb = sb = NULL;
	if ((dlen = i2d_ECDSA_SIG(es, &der)) <= 0) {
		der = NULL;
		goto out;
	}
	if ((*sig = malloc((size_t)dlen)) == NULL)
		goto out;
	memcpy(*sig, der, (size_t)dlen);
	*sig_len = (size_t)dlen;
	*alg = "ES256";
	r = 0;
 out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	BN_free(rb);
	BN_free(sb);
	return r;
}

/* The statement job signs: everything its line says but seq and prev. */
static void
checkpoint_statement(const struct checkpoint_job *job,
    struct auditlog_checkpoint *c)
{
	memset(c, 0, sizeof(*c));
	c->number = job->number;
	memcpy(c->run, run_id, sizeof(c->run));
	c->time = job->time;
	c->reason = job->reason;
	c->sealed_seq = job->sealed_seq;
	memcpy(c->sealed_hash, job->sealed_hash, sizeof(c->sealed_hash));
	memcpy(c->prev_checkpoint, job->prev_checkpoint,
	    sizeof(c->prev_checkpoint));
	c->found = job->found;
}

static int
checkpoint_digest(const struct checkpoint_job *job,
    uint8_t digest[AUDITLOG_HASH_LEN])
{
	struct auditlog_checkpoint c;

	checkpoint_statement(job, &c);
	return auditlog_checkpoint_digest_v2(&c, digest);
}

/* Has the host key sign job's seal; any thread (the backend serialises). */
static int
checkpoint_sign(struct botid_backend *be, struct checkpoint_job *job)
{
	uint8_t digest[AUDITLOG_HASH_LEN], *tsig = NULL;
	size_t tlen = 0;
	int r;

	if ((r = checkpoint_digest(job, digest)) != 0 ||
	    (r = backend_tpm_host_sign(be, digest, &tsig, &tlen)) != 0)
		goto out;
	r = signature_from_tpm(tsig, tlen, &job->alg, &job->sig,
	    &job->sig_len);
 out:
	free(tsig);
	return r;
}

/*
 * Keeps the final checkpoint just written (the log's last line) outside
 * the log, for the next start to compare the log's tail with. A failure
 * only means that start writes a break.
 */
static void
state_save(uint64_t number, const char *reason)
{
	char text[STATE_MAX], hex[2 * AUDITLOG_HASH_LEN + 1];
	int n;

	if (state_path == NULL)
		return;
	hex_encode(last_hash, sizeof(last_hash), hex);
	n = snprintf(text, sizeof(text), "botid-audit-state-v1\nnumber %"
	    PRIu64 "\nseq %" PRIu64 "\nhash %s\nreason %s\n", number,
	    next_seq - 1, hex, reason);
	if (n < 0 || (size_t)n >= sizeof(text) ||
	    file_write_atomic(state_path, text, (size_t)n, 0600) != 0)
		log_err("audit: cannot record the last checkpoint in %s",
		    state_path);
}

/* Appends the checkpoint for job: signed if it has a signature. */
static void
checkpoint_write(const struct checkpoint_job *job, const char *unsigned_why)
{
	json_t *o = NULL;
	char sealed[2 * AUDITLOG_HASH_LEN + 1], *b64 = NULL, *text = NULL;
	char run[2 * AUDITLOG_RUN_LEN + 1], prev[2 * AUDITLOG_HASH_LEN + 1];
	int r = BOTID_ERR_ALLOC;

	/* Its time is the one signed: when it was asked for. */
	if ((o = audit_line_head(next_seq, last_hash, &job->ts)) == NULL)
		goto out;
	hex_encode(job->sealed_hash, sizeof(job->sealed_hash), sealed);
	hex_encode(run_id, sizeof(run_id), run);
	hex_encode(job->prev_checkpoint, sizeof(job->prev_checkpoint), prev);
	if (json_object_set_new(o, "op", json_string("checkpoint")) != 0 ||
	    json_object_set_new(o, "result", json_string(job->sig != NULL ?
	    "signed" : "unsigned")) != 0 ||
	    json_object_set_new(o, "reason", json_string(job->reason)) != 0 ||
	    json_object_set_new(o, "v", json_integer(2)) != 0 ||
	    json_object_set_new(o, "number",
	    json_integer((json_int_t)job->number)) != 0 ||
	    json_object_set_new(o, "run", json_string(run)) != 0 ||
	    json_object_set_new(o, "sealed_seq",
	    json_integer((json_int_t)job->sealed_seq)) != 0 ||
	    json_object_set_new(o, "sealed_hash", json_string(sealed)) != 0 ||
	    json_object_set_new(o, "prev_checkpoint", json_string(prev)) != 0 ||
	    (job->found[0] != '\0' && json_object_set_new(o, "found",
	    json_string(job->found)) != 0))
		goto out;
	if (job->sig != NULL) {
		if ((r = base64_encode(job->sig, job->sig_len, &b64)) != 0 ||
		    json_object_set_new(o, "alg", json_string(job->alg)) != 0 ||
		    json_object_set_new(o, "sig", json_string(b64)) != 0) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
	} else if (json_object_set_new(o, "detail",
	    json_string(unsigned_why)) != 0)
		goto out;
	r = BOTID_ERR_ALLOC;
	if ((text = json_dumps(o, JSON_COMPACT)) == NULL ||
	    (r = entry_append(text, strlen(text))) != 0)
		goto out;
	if (job->sig != NULL)
		anchor_enqueue(text, strlen(text));
	have_sealed = 1;
	sealed_seq = job->sealed_seq;
	next_number = job->number + 1;
	memcpy(last_checkpoint_hash, last_hash, sizeof(last_checkpoint_hash));
	if (strcmp(job->reason, "rotate") == 0 ||
	    strcmp(job->reason, "shutdown") == 0)
		state_save(job->number, job->reason);
 out:
	if (r != 0)
		log_err("audit: cannot write a checkpoint: %s%s%s",
		    botid_strerror(r), r == BOTID_ERR_IO ? ": " : "",
		    r == BOTID_ERR_IO ? strerror(errno) : "");
	free(b64);
	free(text);
	json_decref(o);
}

static void
job_free(struct checkpoint_job *job)
{
	if (job == NULL)
		return;
	registry_unref(job->reg);
	free(job->sig);
	free(job);
}

static void *
signer_main(void *arg)
{
	struct checkpoint_job *job;
	uint64_t one = 1;

	(void)arg;
	(void)pthread_mutex_lock(&signer_lock);
	for (;;) {
		while (queued == NULL && !stop)
			(void)pthread_cond_wait(&signer_cond, &signer_lock);
		if (stop)
			break;
		job = queued;
		queued = NULL;
		(void)pthread_mutex_unlock(&signer_lock);
		job->result = checkpoint_sign(registry_attest_backend(job->reg),
		    job);
		(void)pthread_mutex_lock(&signer_lock);
		done = job;
		if (write(signer_efd, &one, sizeof(one)) == -1 &&
		    errno != EAGAIN)
			log_err("audit: eventfd: %s", strerror(errno));
	}
	(void)pthread_mutex_unlock(&signer_lock);
	return NULL;
}

int
audit_signer_start(void)
{
	if ((signer_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		log_err("audit: eventfd: %s", strerror(errno));
		return BOTID_ERR_INTERNAL;
	}
	if ((errno = pthread_create(&signer, NULL, signer_main, NULL)) != 0) {
		log_err("audit: pthread_create: %s", strerror(errno));
		close(signer_efd);
		signer_efd = -1;
		return BOTID_ERR_INTERNAL;
	}
	signer_started = 1;
	if (state_dir != NULL && anchor_start(state_dir) != 0)
		log_err("audit: checkpoints are not sent to the CA");
	return 0;
}

int
audit_signer_fd(void)
{
	return signer_efd;
}

void
audit_signer_stop(void)
{
	if (!signer_started)
		return;
	(void)pthread_mutex_lock(&signer_lock);
	stop = 1;
	(void)pthread_cond_signal(&signer_cond);
	(void)pthread_mutex_unlock(&signer_lock);
	(void)pthread_join(signer, NULL);
	signer_started = 0;
	job_free(queued);
	job_free(done);
	queued = done = NULL;
	inflight = 0;
	close(signer_efd);
	signer_efd = -1;
}

/* A job sealing the last entry written. */
static struct checkpoint_job *
job_new(struct botid_registry *reg, const char *reason)
{
	struct checkpoint_job *job;

	if ((job = calloc(1, sizeof(*job))) == NULL) {
		log_err("audit: out of memory for a checkpoint");
		return NULL;
	}
	job->reason = reason;
	job->sealed_seq = next_seq - 1;
	memcpy(job->sealed_hash, last_hash, sizeof(job->sealed_hash));
	job->number = next_number;
	memcpy(job->prev_checkpoint, last_checkpoint_hash,
	    sizeof(job->prev_checkpoint));
	clock_gettime(CLOCK_REALTIME, &job->ts);
	audit_line_time(&job->ts, job->time);
	if (reg != NULL) {
		registry_ref(reg);
		job->reg = reg;
	}
	entries_since = 0;
	last_checkpoint = time(NULL);
	return job;
}

/* Signs job at once on this thread, or says why it is unsigned. */
static void
checkpoint_now(struct botid_registry *reg, struct checkpoint_job *job)
{
	struct botid_backend *be;
	char why[128];
	int r;

	why[0] = '\0';
	be = registry_attest_backend(reg);
	if (be == NULL)
		snprintf(why, sizeof(why), "%s", NO_HOST_KEY);
	else if ((r = checkpoint_sign(be, job)) != 0) {
		log_err("audit: the host key cannot sign the %s checkpoint: %s",
		    job->reason, botid_strerror(r));
		snprintf(why, sizeof(why), "the host key cannot sign: %s",
		    botid_strerror(r));
	}
	checkpoint_write(job, why);
}

/*
 * The first checkpoint of a start that found a log it cannot continue:
 * signed before any entry of this run, it seals what was found and says
 * what was wrong, so verification reports the break at that line.
 */
static void
break_write(struct botid_registry *reg)
{
	struct checkpoint_job *job;

	if (audit_fd == -1 || reg == NULL || next_seq == 0)
		return;
	break_pending = 0;
	if ((job = job_new(NULL, "break")) == NULL)
		return;
	snprintf(job->found, sizeof(job->found), "%s", break_found);
	checkpoint_now(reg, job);
	job_free(job);
}

void
audit_tick(struct botid_registry *reg)
{
	struct checkpoint_job *job;
	const char *reason;
	time_t now = time(NULL);

	if (break_pending)
		break_write(reg);
	if (audit_fd == -1 || !signer_started || inflight || next_seq == 0 ||
	    entries_since == 0)
		return;
	if (entries_since >= every_entries)
		reason = "entries";
	else if (now - last_checkpoint >= (time_t)every_seconds)
		reason = "interval";
	else
		return;
	if (registry_attest_backend(reg) == NULL) {
		/* Nothing to wait for: say at once that nobody signed. */
		if ((job = job_new(NULL, reason)) != NULL)
			checkpoint_write(job, NO_HOST_KEY);
		job_free(job);
		return;
	}
	if ((job = job_new(reg, reason)) == NULL)
		return;
	(void)pthread_mutex_lock(&signer_lock);
	queued = job;
	inflight = 1;
	(void)pthread_cond_signal(&signer_cond);
	(void)pthread_mutex_unlock(&signer_lock);
}

void
audit_finish(void)
{
	struct checkpoint_job *job;
	uint64_t v;

	if (read(signer_efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_err("audit: eventfd: %s", strerror(errno));
	(void)pthread_mutex_lock(&signer_lock);
	job = done;
	done = NULL;
	(void)pthread_mutex_unlock(&signer_lock);
	if (job == NULL)
		return;
	inflight = 0;
	if (job->result != 0)
		log_err("audit: the host key cannot sign a checkpoint: %s",
		    botid_strerror(job->result));
	else if (audit_fd != -1 && job->number == next_number &&
	    (!have_sealed || job->sealed_seq > sealed_seq))
		checkpoint_write(job, NULL);
	job_free(job);
}

void
audit_seal(struct botid_registry *reg, const char *reason)
{
	struct checkpoint_job *job;

	if (break_pending)
		break_write(reg);
	/* No registry: the agent failed at start and wrote nothing. */
	if (audit_fd == -1 || next_seq == 0 || reg == NULL ||
	    (job = job_new(NULL, reason)) == NULL)
		return;
	checkpoint_now(reg, job);
	job_free(job);
}

/* The host certificate's public key, if the host is provisioned. */
static EVP_PKEY *
host_key_load(const char *dir)
{
	char *path = NULL;
	uint8_t *pem = NULL;
	size_t len;
	BIO *bio = NULL;
	X509 *x = NULL;
	EVP_PKEY *key = NULL;

	if (asprintf(&path, "%s/%s", dir, HOST_CERT_FILE) == -1) {
		path = NULL;
		goto out;
	}
	if (file_read(path, HOST_CERT_MAX, &pem, &len) != 0)
		goto out;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		goto out;
	key = X509_get_pubkey(x);
 out:
	X509_free(x);
	BIO_free(bio);
	free(pem);
	free(path);
	return key;
}

/* A lowercase hex digit's value, or -1. */
static int
digit(uint8_t c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
	    c - 'a' + 10 : -1;
}

/*
 * The next line of b, which must be "NAME VALUE": VALUE (no NUL in it)
 * into out[outlen], NUL-terminated. Errors: BOTID_ERR_INVALID.
 */
static int
state_field(struct botid_buf *b, const char *name, char *out, size_t outlen)
{
	const uint8_t *p;
	size_t off, nlen = strlen(name), vlen;

	if (buf_find_byte(b, '\n', &off) != 0 || off <= nlen + 1)
		return BOTID_ERR_INVALID;
	vlen = off - nlen - 1;
	if (vlen >= outlen || buf_get_direct(b, &p, off + 1) != 0 ||
	    memcmp(p, name, nlen) != 0 || p[nlen] != ' ' ||
	    memchr(p + nlen + 1, '\0', vlen) != NULL)
		return BOTID_ERR_INVALID;
	memcpy(out, p + nlen + 1, vlen);
	out[vlen] = '\0';
	return 0;
}

/* A decimal uint64 with no sign, space or leading zero. */
static int
state_u64(const char *s, uint64_t *v)
{
	uint64_t n = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return BOTID_ERR_INVALID;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    n > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return BOTID_ERR_INVALID;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*v = n;
	return 0;
}

/*
 * Reads the state file: the number, seq and line hash of the last final
 * checkpoint the agent wrote, parsed as untrusted input.
 * Errors: BOTID_ERR_NOT_FOUND, _INVALID, _TOO_LARGE, _IO, _ALLOC.
 */
static int
state_load(uint64_t *number, uint64_t *seq, uint8_t hash[AUDITLOG_HASH_LEN])
{
	static const char head[] = "botid-audit-state-v1\n";
	struct botid_buf b;
	char num[24], sq[24], hex[2 * AUDITLOG_HASH_LEN + 1], reason[16];
	const uint8_t *p;
	uint8_t *text = NULL;
	size_t len, i;
	int hi, lo, r;

	if ((r = file_read(state_path, STATE_MAX, &text, &len)) != 0)
		return r;
	buf_init_view(&b, text, len);
	r = BOTID_ERR_INVALID;
	if (buf_get_direct(&b, &p, sizeof(head) - 1) != 0 ||
	    memcmp(p, head, sizeof(head) - 1) != 0 ||
	    state_field(&b, "number", num, sizeof(num)) != 0 ||
	    state_field(&b, "seq", sq, sizeof(sq)) != 0 ||
	    state_field(&b, "hash", hex, sizeof(hex)) != 0 ||
	    state_field(&b, "reason", reason, sizeof(reason)) != 0 ||
	    buf_len(&b) != 0 || state_u64(num, number) != 0 ||
	    state_u64(sq, seq) != 0 || strlen(hex) != 2 * AUDITLOG_HASH_LEN ||
	    (strcmp(reason, "rotate") != 0 && strcmp(reason, "shutdown") != 0))
		goto out;
	for (i = 0; i < AUDITLOG_HASH_LEN; i++) {
		if ((hi = digit((uint8_t)hex[2 * i])) < 0 ||
		    (lo = digit((uint8_t)hex[2 * i + 1])) < 0)
			goto out;
		hash[i] = (uint8_t)(hi << 4 | lo);
	}
	r = 0;
 out:
	free(text);
	return r;
}

int
audit_resume(const struct botid_agent_config *cfg)
{
	struct auditlog_tail_info t;
	EVP_PKEY *key = NULL;
	uint64_t s_number = 0, s_seq = 0;
	uint8_t s_hash[AUDITLOG_HASH_LEN];
	int have_state, partial, r, tr;

	if (audit_fd == -1)
		return 0;
	/* Each run names itself, so a restart shows in the chain. */
	if (RAND_bytes(run_id, sizeof(run_id)) != 1) {
		log_err("audit: no random run identity");
		return BOTID_ERR_CRYPTO;
	}
	free(state_path);
	free(state_dir);
	if ((state_dir = strdup(cfg->state_dir)) == NULL)
		return BOTID_ERR_ALLOC;
	if (asprintf(&state_path, "%s/%s", cfg->state_dir, STATE_FILE) == -1) {
		state_path = NULL;
		return BOTID_ERR_ALLOC;
	}
	r = state_load(&s_number, &s_seq, s_hash);
	if (r != 0 && r != BOTID_ERR_NOT_FOUND)
		log_warn("audit: %s unreadable: the log's tail is checked by "
		    "its signature only", state_path);
	have_state = r == 0;
	key = host_key_load(cfg->state_dir);
	tr = auditlog_tail_check(audit_fd, key, &t, &partial);
	if (tr == BOTID_ERR_NOT_FOUND) {
		/*
		 * An empty file (after logrotate moved the last one):
		 * continue from the checkpoint that ended it, sealing nothing
		 * this run has not written.
		 */
		if (have_state) {
			next_seq = s_seq + 1;
			memcpy(last_hash, s_hash, sizeof(last_hash));
			memcpy(last_checkpoint_hash, s_hash,
			    sizeof(last_checkpoint_hash));
			next_number = s_number + 1;
		}
		r = 0;
		goto out;
	}
	if (tr != 0) {
		/* audit_open started a new chain, which verify reports. */
		r = 0;
		goto out;
	}
	if (have_state)
		memcpy(last_checkpoint_hash, s_hash,
		    sizeof(last_checkpoint_hash));
	next_number = have_state ? s_number + 1 : 0;
	if (t.checkpoint && t.version == 2 && t.number + 1 > next_number)
		next_number = t.number + 1;
	if (!t.checkpoint)
		snprintf(break_found, sizeof(break_found), "the log ends with "
		    "seq %" PRIu64 ", not a checkpoint: a crash, or a cut",
		    t.seq);
	else if (!t.final)
		snprintf(break_found, sizeof(break_found), "the log ends with "
		    "checkpoint seq %" PRIu64 " (%s), not a shutdown or "
		    "rotation one: a crash, or a cut", t.seq, t.reason);
	else if (have_state && (t.seq != s_seq ||
	    memcmp(t.hash, s_hash, sizeof(s_hash)) != 0))
		snprintf(break_found, sizeof(break_found), "the log ends with "
		    "seq %" PRIu64 ", not the checkpoint written last (number %"
		    PRIu64 ", seq %" PRIu64 "): cut, rolled back or replaced",
		    t.seq, s_number, s_seq);
	/*
	 * The state names the exact bytes the agent wrote; without it the
	 * signature is what is left (a host provisioned since that line was
	 * written has a new key: the state, not the signature, is what
	 * lets it continue).
	 */
	else if (!have_state && key != NULL && t.is_signed && !t.sig_ok)
		snprintf(break_found, sizeof(break_found), "the log's last "
		    "checkpoint (seq %" PRIu64 ") is not signed by the host "
		    "key, and no state names it", t.seq);
	else if (!have_state && key != NULL && !t.is_signed)
		/* Written unprovisioned, and nothing kept to compare with. */
		snprintf(break_found, sizeof(break_found), "the log's last "
		    "checkpoint (seq %" PRIu64 ") is unsigned, and no state "
		    "names it", t.seq);
	else {
		if (!have_state)
			log_warn("audit: no %s: continuing from the log's last "
			    "checkpoint (seq %" PRIu64 ")%s", state_path, t.seq,
			    key != NULL ? ", its signature checked" :
			    ", unchecked (host not provisioned)");
		memcpy(last_checkpoint_hash, t.hash,
		    sizeof(last_checkpoint_hash));
		if (t.version != 2)
			next_number = have_state ? s_number + 1 : 0;
		r = 0;
		goto out;
	}
	log_warn("audit: %s; a break checkpoint will say so", break_found);
	break_pending = 1;
	r = 0;
 out:
	EVP_PKEY_free(key);
	return r;
}
