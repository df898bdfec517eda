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
#include <tss2/tss2_mu.h>

#include "agent/audit-line.h"
#include "agent/audit.h"
#include "agent/backend.h"
#include "lib/auditlog.h"
#include "lib/base64.h"
#include "lib/error.h"
#include "lib/hex.h"
#include "lib/limits.h"
#include "lib/log.h"

#define DEFAULT_CHECKPOINT_ENTRIES	100
#define DEFAULT_CHECKPOINT_INTERVAL	60
#define NO_HOST_KEY	"host not provisioned, or its TPM unavailable"

struct checkpoint_job {
	struct botid_registry	*reg;		/* reference held */
	const char		*reason;	/* a static string */
	uint64_t		 sealed_seq;
	uint8_t			 sealed_hash[AUDITLOG_HASH_LEN];
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
	struct botid_peer	 peer;
};
static struct aggregate aggregates[BOTID_AUDIT_AGGREGATE_SLOTS];
static size_t aggregates_pending;	/* slots with pending > 0 */
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

void
audit_close(void)
{
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = -1;
	EVP_MD_free(sha256);
	sha256 = NULL;
}

/* A new entry: seq, prev and time come first, in that order. */
static json_t *
entry_new(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return audit_line_head(next_seq, last_hash, &now);
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
	ev.peer = &a->peer;
	ev.result = a->result;
	ev.detail = a->has_detail ? a->detail : NULL;
	ev.micros = a->micros;
	ev.count = a->pending;
	if ((r = entry_write(&ev)) != 0)
		return r;
	a->pending = 0;
	a->micros = 0;
	aggregates_pending--;
	return 0;
}

/* Every pending aggregate, oldest slot first; 0 if all were written. */
static int
aggregates_write(void)
{
	size_t i;
	int r;

	for (i = 0; aggregates_pending > 0 && i < BOTID_AUDIT_AGGREGATE_SLOTS;
	    i++)
		if ((r = aggregate_write(&aggregates[i])) != 0)
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

void
audit_note(const struct botid_audit_event *ev)
{
	struct aggregate *a = NULL;
	time_t now;
	size_t i;

	if (audit_fd == -1)
		return;
	/* What a slot cannot hold is written as it comes. */
	if (strlen(ev->op) >= sizeof(a->op) ||
	    strlen(ev->result) >= sizeof(a->result) ||
	    (ev->bot != NULL && strlen(ev->bot) > BOTID_MAX_BOT_NAME) ||
	    (ev->detail != NULL && strlen(ev->detail) >=
	    BOTID_AUDIT_MAX_DETAIL) || ev->digest != NULL) {
		(void)audit_write(ev);
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
		/* No room and no disk: said by audit_failed, with a count. */
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

/* Has the host key sign job's seal; any thread (the backend serialises). */
static int
checkpoint_sign(struct botid_backend *be, struct checkpoint_job *job)
{
	uint8_t digest[AUDITLOG_HASH_LEN], *tsig = NULL;
	size_t tlen = 0;
	int r;

	if ((r = auditlog_checkpoint_digest(job->sealed_seq, job->sealed_hash,
	    digest)) != 0 ||
	    (r = backend_tpm_host_sign(be, digest, &tsig, &tlen)) != 0)
		goto out;
	r = signature_from_tpm(tsig, tlen, &job->alg, &job->sig,
	    &job->sig_len);
 out:
	free(tsig);
	return r;
}

/* Appends the checkpoint for job: signed if it has a signature. */
static void
checkpoint_write(const struct checkpoint_job *job, const char *unsigned_why)
{
	json_t *o = NULL;
	char sealed[2 * AUDITLOG_HASH_LEN + 1], *b64 = NULL, *text = NULL;
	int r = BOTID_ERR_ALLOC;

	if ((o = entry_new()) == NULL)
		goto out;
	hex_encode(job->sealed_hash, sizeof(job->sealed_hash), sealed);
	if (json_object_set_new(o, "op", json_string("checkpoint")) != 0 ||
	    json_object_set_new(o, "result", json_string(job->sig != NULL ?
	    "signed" : "unsigned")) != 0 ||
	    json_object_set_new(o, "reason", json_string(job->reason)) != 0 ||
	    json_object_set_new(o, "sealed_seq",
	    json_integer((json_int_t)job->sealed_seq)) != 0 ||
	    json_object_set_new(o, "sealed_hash", json_string(sealed)) != 0)
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
	have_sealed = 1;
	sealed_seq = job->sealed_seq;
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
	if (reg != NULL) {
		registry_ref(reg);
		job->reg = reg;
	}
	entries_since = 0;
	last_checkpoint = time(NULL);
	return job;
}

void
audit_tick(struct botid_registry *reg)
{
	struct checkpoint_job *job;
	const char *reason;
	time_t now = time(NULL);

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
	else if (audit_fd != -1 &&
	    (!have_sealed || job->sealed_seq > sealed_seq))
		checkpoint_write(job, NULL);
	job_free(job);
}

void
audit_seal(struct botid_registry *reg, const char *reason)
{
	struct checkpoint_job *job;
	struct botid_backend *be;
	char why[128];
	int r;

	why[0] = '\0';
	/* No registry: the agent failed at start and wrote nothing. */
	if (audit_fd == -1 || next_seq == 0 || reg == NULL ||
	    (job = job_new(NULL, reason)) == NULL)
		return;
	be = registry_attest_backend(reg);
	if (be == NULL)
		snprintf(why, sizeof(why), "%s", NO_HOST_KEY);
	else if ((r = checkpoint_sign(be, job)) != 0) {
		log_err("audit: the host key cannot sign the %s checkpoint: %s",
		    reason, botid_strerror(r));
		snprintf(why, sizeof(why), "the host key cannot sign: %s",
		    botid_strerror(r));
	}
	checkpoint_write(job, why);
	job_free(job);
}
