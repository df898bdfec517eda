/*
 * Audit log chain and checkpoints (auditlog.h, doc/audit.md). Each line
 * names its predecessor by the SHA-256 of its exact bytes; a checkpoint
 * signed by the host key seals an entry, and with it the whole chain up
 * to there. The verifier reads lines one at a time, so a log of any size
 * needs memory only for the entries not yet sealed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "lib/auditlog.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/hex.h"
#include "lib/limits.h"

#define READ_CHUNK	65536
#define SIG_MAX		1024	/* decoded signature bytes */
#define NAME_MAX_SHOWN	200	/* of a file name in messages */

static const char checkpoint_label[] = "botid-audit-checkpoint-v1\n";
static const char checkpoint_label_v2[] = "botid-audit-checkpoint-v2\n";

struct pending {
	uint8_t	hash[AUDITLOG_HASH_LEN];
	int	checkpoint;
};

struct auditlog_verifier {
	EVP_PKEY	*key;
	int		 failed;	/* first error, 0 if none */
	char		 msg[768];	/* and what it was */
	int		 started;
	uint64_t	 next_seq;
	uint8_t		 last_hash[AUDITLOG_HASH_LEN];
	char		 last_where[NAME_MAX_SHOWN + 64];
	/* Entries from pending_base on, not sealed yet. */
	uint64_t	 pending_base;
	struct pending	*pending;
	size_t		 npending;
	size_t		 cap;
	int		 last_final;	/* last entry: a final checkpoint */
	struct auditlog_summary sum;
	/* Failures past the first, and where the chain is taken up again. */
	auditlog_report_fn *report;
	void		*report_arg;
	int		 resync;	/* the next line starts afresh */
	/* Where the entry pending_base is. */
	char		 pending_where[NAME_MAX_SHOWN + 64];
	/* The last checkpoint read: the next one links to it. */
	int		 have_cp;
	int		 cp_version;
	int		 cp_final;
	uint8_t		 cp_run[AUDITLOG_RUN_LEN];
	/* The anchor held elsewhere, and whether the chain reached it. */
	int		 have_anchor;
	struct auditlog_anchor anchor;
	char		*anchor_source;
	int		 anchor_seen;
	char		 cp_where[NAME_MAX_SHOWN + 64];
};

/* What a line says, as far as the chain is concerned. */
struct entry {
	uint64_t	 seq;
	uint8_t		 prev[AUDITLOG_HASH_LEN];
	int		 checkpoint;
	int		 is_signed;
	int		 final;		/* at shutdown or rotation */
	uint64_t	 sealed_seq;
	uint8_t		 sealed_hash[AUDITLOG_HASH_LEN];
	const char	*alg;
	const char	*sig;
	const char	*detail;
	/* Version 2: what else the signature covers. */
	int		 version;
	const char	*reason;
	int		 is_break;
	struct auditlog_checkpoint cp;
};

int
auditlog_checkpoint_digest(uint64_t sealed_seq,
    const uint8_t hash[AUDITLOG_HASH_LEN], uint8_t digest[AUDITLOG_HASH_LEN])
{
	char msg[sizeof(checkpoint_label) + 24 + 2 * AUDITLOG_HASH_LEN + 2];
	size_t n;

	n = (size_t)snprintf(msg, sizeof(msg), "%s%" PRIu64 "\n",
	    checkpoint_label, sealed_seq);
	hex_encode(hash, AUDITLOG_HASH_LEN, msg + n);
	n += 2 * AUDITLOG_HASH_LEN;
	msg[n++] = '\n';
	return EVP_Digest(msg, n, digest, NULL, EVP_sha256(), NULL) == 1 ? 0 :
	    BOTID_ERR_CRYPTO;
}

/* Printable ASCII, shorter than max with its NUL: fits one text line. */
static int
printable(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i + 1 >= max || s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

int
auditlog_checkpoint_digest_v2(const struct auditlog_checkpoint *c,
    uint8_t digest[AUDITLOG_HASH_LEN])
{
	char msg[sizeof(checkpoint_label_v2) + 3 * 2 * AUDITLOG_HASH_LEN +
	    AUDITLOG_TIME_MAX + AUDITLOG_FOUND_MAX + 256];
	char run[2 * AUDITLOG_RUN_LEN + 1], sealed[2 * AUDITLOG_HASH_LEN + 1];
	char prev[2 * AUDITLOG_HASH_LEN + 1];
	int n;

	if (!printable(c->time, AUDITLOG_TIME_MAX) ||
	    !printable(c->reason, 16) ||
	    !printable(c->found, AUDITLOG_FOUND_MAX))
		return BOTID_ERR_INVALID;
	hex_encode(c->run, AUDITLOG_RUN_LEN, run);
	hex_encode(c->sealed_hash, AUDITLOG_HASH_LEN, sealed);
	hex_encode(c->prev_checkpoint, AUDITLOG_HASH_LEN, prev);
	n = snprintf(msg, sizeof(msg), "%snumber %" PRIu64 "\nrun %s\n"
	    "time %s\nreason %s\nsealed_seq %" PRIu64 "\nsealed_hash %s\n"
	    "prev_checkpoint %s\nfound %s\n", checkpoint_label_v2, c->number,
	    run, c->time, c->reason, c->sealed_seq, sealed, prev, c->found);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return BOTID_ERR_INVALID;
	return EVP_Digest(msg, (size_t)n, digest, NULL, EVP_sha256(),
	    NULL) == 1 ? 0 : BOTID_ERR_CRYPTO;
}

/* Exactly 2 * len lowercase hex digits. */
static int
hex_decode_n(const char *s, uint8_t *out, size_t len)
{
	size_t i;
	int hi, lo;

	if (strlen(s) != 2 * len)
		return BOTID_ERR_INVALID;
	for (i = 0; i < len; i++) {
		hi = s[2 * i] >= '0' && s[2 * i] <= '9' ? s[2 * i] - '0' :
		    s[2 * i] >= 'a' && s[2 * i] <= 'f' ? s[2 * i] - 'a' + 10 :
		    -1;
		lo = s[2 * i + 1] >= '0' && s[2 * i + 1] <= '9' ?
		    s[2 * i + 1] - '0' : s[2 * i + 1] >= 'a' &&
		    s[2 * i + 1] <= 'f' ? s[2 * i + 1] - 'a' + 10 : -1;
		if (hi < 0 || lo < 0)
			return BOTID_ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int
hex_decode_hash(const char *s, uint8_t out[AUDITLOG_HASH_LEN])
{
	return hex_decode_n(s, out, AUDITLOG_HASH_LEN);
}

static int
get_seq(json_t *o, const char *key, uint64_t *v)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return BOTID_ERR_INVALID;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

static const char *
get_str(json_t *o, const char *key)
{
	json_t *j = json_object_get(o, key);

	return json_is_string(j) ? json_string_value(j) : NULL;
}

/*
 * Parses one line (without its line end) into *e, whose strings point
 * into *root (the caller's to json_decref). *why says what is wrong.
 */
static int
entry_parse(const uint8_t *line, size_t len, json_t **root, struct entry *e,
    const char **why)
{
	json_error_t jerr;
	const char *s, *result, *reason;
	json_t *o, *j;

	*root = NULL;
	memset(e, 0, sizeof(*e));
	if ((o = json_loadb((const char *)line, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		*why = "not JSON";
		return BOTID_ERR_INVALID;
	}
	*root = o;
	if (!json_is_object(o)) {
		*why = "not a JSON object";
		return BOTID_ERR_INVALID;
	}
	if (get_seq(o, "seq", &e->seq) != 0) {
		*why = "no valid \"seq\"";
		return BOTID_ERR_INVALID;
	}
	if ((s = get_str(o, "prev")) == NULL ||
	    hex_decode_hash(s, e->prev) != 0) {
		*why = "no valid \"prev\"";
		return BOTID_ERR_INVALID;
	}
	if ((s = get_str(o, "op")) == NULL) {
		*why = "no \"op\"";
		return BOTID_ERR_INVALID;
	}
	if (strcmp(s, "checkpoint") != 0)
		return 0;
	e->checkpoint = 1;
	e->version = 1;
	if ((j = json_object_get(o, "v")) != NULL) {
		if (!json_is_integer(j) || json_integer_value(j) != 2) {
			*why = "checkpoint of an unknown version";
			return BOTID_ERR_INVALID;
		}
		e->version = 2;
	}
	result = get_str(o, "result");
	reason = get_str(o, "reason");
	if (result == NULL || reason == NULL ||
	    (strcmp(reason, "entries") != 0 && strcmp(reason, "interval") != 0 &&
	    strcmp(reason, "rotate") != 0 && strcmp(reason, "shutdown") != 0 &&
	    (e->version == 1 || strcmp(reason, "break") != 0))) {
		*why = "checkpoint without a valid \"result\" and \"reason\"";
		return BOTID_ERR_INVALID;
	}
	e->reason = reason;
	e->is_break = strcmp(reason, "break") == 0;
	e->final = strcmp(reason, "rotate") == 0 ||
	    strcmp(reason, "shutdown") == 0;
	if (get_seq(o, "sealed_seq", &e->sealed_seq) != 0 ||
	    (s = get_str(o, "sealed_hash")) == NULL ||
	    hex_decode_hash(s, e->sealed_hash) != 0) {
		*why = "checkpoint without a valid \"sealed_seq\" and "
		    "\"sealed_hash\"";
		return BOTID_ERR_INVALID;
	}
	if (e->sealed_seq >= e->seq) {
		*why = "checkpoint seals an entry that is not before it";
		return BOTID_ERR_INVALID;
	}
	if (e->version == 2) {
		e->cp.reason = reason;
		e->cp.sealed_seq = e->sealed_seq;
		memcpy(e->cp.sealed_hash, e->sealed_hash, AUDITLOG_HASH_LEN);
		e->cp.time = get_str(o, "time");
		e->cp.found = get_str(o, "found");
		if (e->cp.found == NULL && !e->is_break)
			e->cp.found = "";
		if (get_seq(o, "number", &e->cp.number) != 0 ||
		    (s = get_str(o, "run")) == NULL ||
		    hex_decode_n(s, e->cp.run, AUDITLOG_RUN_LEN) != 0 ||
		    (s = get_str(o, "prev_checkpoint")) == NULL ||
		    hex_decode_hash(s, e->cp.prev_checkpoint) != 0 ||
		    e->cp.time == NULL ||
		    !printable(e->cp.time, AUDITLOG_TIME_MAX) ||
		    e->cp.found == NULL ||
		    !printable(e->cp.found, AUDITLOG_FOUND_MAX)) {
			*why = "version 2 checkpoint without a valid "
			    "\"number\", \"run\", \"time\", "
			    "\"prev_checkpoint\" or \"found\"";
			return BOTID_ERR_INVALID;
		}
	}
	if (strcmp(result, "unsigned") == 0) {
		e->detail = get_str(o, "detail");
		return 0;
	}
	if (strcmp(result, "signed") != 0) {
		*why = "checkpoint \"result\" is neither signed nor unsigned";
		return BOTID_ERR_INVALID;
	}
	e->is_signed = 1;
	e->alg = get_str(o, "alg");
	e->sig = get_str(o, "sig");
	if (e->alg == NULL || e->sig == NULL ||
	    (strcmp(e->alg, "ES256") != 0 && strcmp(e->alg, "RS256") != 0)) {
		*why = "signed checkpoint without a valid \"alg\" and \"sig\"";
		return BOTID_ERR_INVALID;
	}
	return 0;
}

/* The checkpoint's signature over its seal, by the host key. */
static int
checkpoint_sig_ok(EVP_PKEY *key, const struct entry *e)
{
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t digest[AUDITLOG_HASH_LEN], *sig = NULL;
	size_t sig_len = 0;
	int ec, ok = 0;

	ec = EVP_PKEY_is_a(key, "EC");
	if ((strcmp(e->alg, "ES256") == 0) != ec ||
	    (!ec && !EVP_PKEY_is_a(key, "RSA")))
		goto out;
	if (base64_decode(e->sig, SIG_MAX, &sig, &sig_len) != 0)
		goto out;
	if (e->version == 2 ? auditlog_checkpoint_digest_v2(&e->cp,
	    digest) != 0 : auditlog_checkpoint_digest(e->sealed_seq,
	    e->sealed_hash, digest) != 0)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new(key, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
	    (!ec && EVP_PKEY_CTX_set_rsa_padding(ctx,
	    RSA_PKCS1_PADDING) != 1))
		goto out;
	ok = EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof(digest)) == 1;
 out:
	EVP_PKEY_CTX_free(ctx);
	free(sig);
	return ok;
}

int
auditlog_verifier_new(EVP_PKEY *host_key, struct auditlog_verifier **vp)
{
	struct auditlog_verifier *v;

	*vp = NULL;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return BOTID_ERR_ALLOC;
	if (host_key != NULL) {
		if (EVP_PKEY_up_ref(host_key) != 1) {
			free(v);
			return BOTID_ERR_CRYPTO;
		}
		v->key = host_key;
	}
	*vp = v;
	return 0;
}

void
auditlog_verifier_free(struct auditlog_verifier *v)
{
	if (v == NULL)
		return;
	EVP_PKEY_free(v->key);
	free(v->pending);
	free(v->anchor_source);
	free(v);
}

/*
 * Records a failure as "NAME:LINE (seq N): message": the first one is what
 * every call returns from then on; each goes to the report function, so
 * that one run names every place in doubt.
 */
static int __attribute__((format(printf, 7, 8)))
verify_fail(struct auditlog_verifier *v, int r, const char *where,
    const struct entry *e, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[512], line[sizeof(v->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e != NULL)
		snprintf(line, sizeof(line), "%s (seq %" PRIu64 "): %s",
		    where, e->seq, msg);
	else
		snprintf(line, sizeof(line), "%s: %s", where, msg);
	if (v->failed == 0) {
		v->failed = r;
		memcpy(v->msg, line, sizeof(v->msg));
	}
	v->sum.failures++;
	if (v->report != NULL && v->sum.failures <= BOTID_MAX_AUDIT_FAILURES)
		v->report(v->report_arg, line);
	else if (v->report != NULL &&
	    v->sum.failures == BOTID_MAX_AUDIT_FAILURES + 1)
		v->report(v->report_arg, "more failures: not shown");
	snprintf(err, errlen, "%s", v->msg);
	return r;
}

int
auditlog_verifier_set_anchor(struct auditlog_verifier *v,
    const struct auditlog_anchor *a, const char *source)
{
	free(v->anchor_source);
	if ((v->anchor_source = strdup(source)) == NULL)
		return BOTID_ERR_ALLOC;
	v->anchor = *a;
	v->have_anchor = 1;
	return 0;
}

int
auditlog_checkpoint_check(const uint8_t *line, size_t len, EVP_PKEY *key,
    struct auditlog_anchor *a)
{
	struct entry e;
	EVP_MD_CTX *ctx = NULL;
	json_t *root = NULL;
	const char *why;
	int r = BOTID_ERR_INVALID;

	memset(a, 0, sizeof(*a));
	if (len >= BOTID_MAX_AUDIT_LINE)
		return BOTID_ERR_TOO_LARGE;
	if (entry_parse(line, len, &root, &e, &why) != 0 || !e.checkpoint ||
	    e.version != 2 || !e.is_signed)
		goto out;
	/* The hash the next entry links to: the line with its line end. */
	r = BOTID_ERR_CRYPTO;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, line, len) != 1 ||
	    EVP_DigestUpdate(ctx, "\n", 1) != 1 ||
	    EVP_DigestFinal_ex(ctx, a->hash, NULL) != 1)
		goto out;
	r = BOTID_ERR_DENIED;
	if (key != NULL && !checkpoint_sig_ok(key, &e))
		goto out;
	a->number = e.cp.number;
	a->seq = e.seq;
	a->sealed_seq = e.sealed_seq;
	memcpy(a->run, e.cp.run, sizeof(a->run));
	snprintf(a->reason, sizeof(a->reason), "%s", e.reason);
	snprintf(a->time, sizeof(a->time), "%s", e.cp.time);
	r = 0;
 out:
	EVP_MD_CTX_free(ctx);
	json_decref(root);
	return r;
}

void
auditlog_verifier_set_report(struct auditlog_verifier *v,
    auditlog_report_fn *fn, void *arg)
{
	v->report = fn;
	v->report_arg = arg;
}

static int
pending_push(struct auditlog_verifier *v, const uint8_t *hash, int checkpoint)
{
	struct pending *n;
	size_t cap;

	if (v->npending == v->cap) {
		if (v->cap >= BOTID_MAX_AUDIT_UNSEALED)
			return BOTID_ERR_TOO_LARGE;
		cap = v->cap == 0 ? 256 : v->cap * 2;
		if ((n = reallocarray(v->pending, cap, sizeof(*n))) == NULL)
			return BOTID_ERR_ALLOC;
		v->pending = n;
		v->cap = cap;
	}
	memcpy(v->pending[v->npending].hash, hash, AUDITLOG_HASH_LEN);
	v->pending[v->npending].checkpoint = checkpoint;
	v->npending++;
	return 0;
}

/* Forgets the entries not sealed yet: from seq base on, at where. */
static void
pending_restart(struct auditlog_verifier *v, uint64_t base, const char *where)
{
	v->npending = 0;
	v->pending_base = base;
	snprintf(v->pending_where, sizeof(v->pending_where), "%s", where);
}

/*
 * A version 2 checkpoint also links to the checkpoint before it (number
 * and line hash), and a new run of the agent may only follow a shutdown
 * or rotation checkpoint: anything else is a cut, a removal or a rollback
 * that a restart sealed. A break says the agent found such a thing.
 */
static int
verify_checkpoint_v2(struct auditlog_verifier *v, const char *where,
    const struct entry *e, char *err, size_t errlen)
{
	int r = 0;

	if (e->is_break)
		return verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "the agent restarted on a log it could not verify (%s): "
		    "entries up to seq %" PRIu64 " are in doubt", e->cp.found,
		    e->sealed_seq);
	if (!v->have_cp || v->cp_version != 2)
		return 0;
	if (e->cp.number != v->sum.last_number + 1)
		r = verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "checkpoint number %" PRIu64 " where %" PRIu64 " was "
		    "expected: checkpoints removed or replayed", e->cp.number,
		    v->sum.last_number + 1);
	else if (CRYPTO_memcmp(e->cp.prev_checkpoint, v->sum.last_checkpoint,
	    AUDITLOG_HASH_LEN) != 0)
		r = verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "checkpoint does not link to the checkpoint before it, %s "
		    "(seq %" PRIu64 "): a checkpoint replaced", v->cp_where,
		    v->sum.last_checkpoint_seq);
	else if (CRYPTO_memcmp(e->cp.run, v->cp_run, AUDITLOG_RUN_LEN) != 0 &&
	    !v->cp_final)
		r = verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "a new agent run continues from %s (seq %" PRIu64 "), "
		    "not a shutdown or rotation checkpoint: the log was cut or "
		    "rolled back there", v->cp_where,
		    v->sum.last_checkpoint_seq);
	return r;
}

/* A checkpoint: its seal must be an entry given, after the last seal. */
static int
verify_checkpoint(struct auditlog_verifier *v, const char *where,
    const struct entry *e, const uint8_t line_hash[AUDITLOG_HASH_LEN],
    char *err, size_t errlen)
{
	uint64_t drop;
	int r = 0;

	v->sum.checkpoints++;
	if (e->version == 1)
		v->sum.v1_checkpoints++;
	if (e->version == 1 && v->sum.have_number)
		r = verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "a version 1 checkpoint after version 2 ones: forged");
	else if (v->sum.have_seal && e->sealed_seq <= v->sum.sealed_seq)
		r = verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "checkpoint seals seq %" PRIu64 ", not after the last "
		    "sealed seq %" PRIu64, e->sealed_seq, v->sum.sealed_seq);
	else if (e->sealed_seq >= v->pending_base &&
	    CRYPTO_memcmp(v->pending[e->sealed_seq - v->pending_base].hash,
	    e->sealed_hash, AUDITLOG_HASH_LEN) != 0)
		r = verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "checkpoint seals seq %" PRIu64 " with another hash than "
		    "that entry's: it was edited, or the chain rewritten; seq %"
		    PRIu64 " (%s) to %" PRIu64 " are in doubt", e->sealed_seq,
		    v->pending_base, v->pending_where, e->sealed_seq);
	else if (v->key != NULL && !e->is_signed)
		r = verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "checkpoint is unsigned (%s)", e->detail != NULL ?
		    e->detail : "no reason given");
	else if (v->key != NULL && !checkpoint_sig_ok(v->key, e))
		r = verify_fail(v, BOTID_ERR_DENIED, where, e, err, errlen,
		    "checkpoint signature does not verify with the host "
		    "certificate's key");
	else if (e->version == 2)
		r = verify_checkpoint_v2(v, where, e, err, errlen);
	if (r == 0 && v->key != NULL)
		v->sum.signed_checkpoints++;
	/* The next checkpoint links to this line, whatever it says. */
	v->have_cp = 1;
	v->cp_version = e->version;
	v->cp_final = e->final;
	snprintf(v->cp_where, sizeof(v->cp_where), "%s", where);
	memcpy(v->sum.last_checkpoint, line_hash, AUDITLOG_HASH_LEN);
	v->sum.last_checkpoint_seq = e->seq;
	if (e->version == 2 && v->have_anchor &&
	    e->cp.number == v->anchor.number) {
		v->anchor_seen = 1;
		v->sum.anchor_seen = 1;
		if (CRYPTO_memcmp(line_hash, v->anchor.hash,
		    AUDITLOG_HASH_LEN) != 0 && r == 0)
			r = verify_fail(v, BOTID_ERR_DENIED, where, e, err,
			    errlen, "checkpoint number %" PRIu64 " is not the "
			    "one %s holds (seq %" PRIu64 ", %s, %s): replaced",
			    e->cp.number, v->anchor_source, v->anchor.seq,
			    v->anchor.reason, v->anchor.time);
	}
	if (e->version == 2) {
		v->sum.have_number = 1;
		v->sum.last_number = e->cp.number;
		memcpy(v->cp_run, e->cp.run, AUDITLOG_RUN_LEN);
	}
	if (r != 0) {
		/* Nothing before it is sealed by it: start after it. */
		pending_restart(v, e->seq + 1, where);
		return r;
	}
	/* A seal before the first entry given says nothing about them. */
	if (e->sealed_seq < v->pending_base)
		return 0;
	drop = e->sealed_seq - v->pending_base + 1;
	memmove(v->pending, v->pending + drop,
	    (v->npending - (size_t)drop) * sizeof(*v->pending));
	v->npending -= (size_t)drop;
	v->pending_base = e->sealed_seq + 1;
	v->sum.have_seal = 1;
	v->sum.sealed_seq = e->sealed_seq;
	return 0;
}

/*
 * One line, with its line end, at where ("NAME:LINE"). After a failure
 * the chain is taken up again at the next line that parses, so that one
 * damage is reported once and later damage still shows.
 */
static int
verify_line(struct auditlog_verifier *v, const char *where,
    const uint8_t *line, size_t len, char *err, size_t errlen)
{
	static const uint8_t zero[AUDITLOG_HASH_LEN];
	uint8_t hash[AUDITLOG_HASH_LEN];
	struct entry e;
	json_t *root = NULL;
	const char *why = NULL;
	int r, fresh = 0;

	if ((r = entry_parse(line, len - 1, &root, &e, &why)) != 0) {
		r = verify_fail(v, r, where, NULL, err, errlen,
		    "not an audit entry: %s", why);
		v->resync = 1;
		goto out;
	}
	if (EVP_Digest(line, len, hash, NULL, EVP_sha256(), NULL) != 1) {
		r = verify_fail(v, BOTID_ERR_CRYPTO, where, &e, err, errlen,
		    "cannot hash the line");
		v->resync = 1;
		goto out;
	}
	if (!v->started) {
		v->started = 1;
		v->sum.first_seq = e.seq;
		fresh = 1;
		if (e.seq == 0 && CRYPTO_memcmp(e.prev, zero,
		    sizeof(zero)) != 0)
			(void)verify_fail(v, BOTID_ERR_DENIED, where, &e, err,
			    errlen, "the first entry of a chain links to "
			    "another entry");
	} else if (v->resync)
		fresh = 1;
	else if (e.seq < v->next_seq) {
		(void)verify_fail(v, BOTID_ERR_DENIED, where, &e, err, errlen,
		    "seq %" PRIu64 " where %" PRIu64 " was expected: entries "
		    "moved or inserted", e.seq, v->next_seq);
		fresh = 1;
	} else if (e.seq > v->next_seq) {
		(void)verify_fail(v, BOTID_ERR_DENIED, where, &e, err, errlen,
		    "seq %" PRIu64 " where %" PRIu64 " was expected: entries "
		    "deleted or moved", e.seq, v->next_seq);
		fresh = 1;
	} else if (CRYPTO_memcmp(e.prev, v->last_hash, sizeof(hash)) != 0) {
		(void)verify_fail(v, BOTID_ERR_DENIED, where, &e, err, errlen,
		    "does not link to the entry before it, %s (seq %" PRIu64
		    "): that entry was edited, or this one inserted",
		    v->last_where, e.seq - 1);
		fresh = 1;
	}
	if (fresh) {
		/* What came before is reported: go on from this line. */
		pending_restart(v, e.seq, where);
		v->resync = 0;
	}
	if ((r = pending_push(v, hash, e.checkpoint)) != 0) {
		r = verify_fail(v, r, where, &e, err, errlen, "more than %u "
		    "entries without a checkpoint", BOTID_MAX_AUDIT_UNSEALED);
		v->resync = 1;
		goto out;
	}
	if (e.checkpoint)
		(void)verify_checkpoint(v, where, &e, hash, err, errlen);
	v->last_final = e.checkpoint && e.final && e.sealed_seq + 1 == e.seq &&
	    (v->key == NULL || e.is_signed);
	memcpy(v->last_hash, hash, sizeof(hash));
	snprintf(v->last_where, sizeof(v->last_where), "%s", where);
	v->next_seq = e.seq + 1;
	v->sum.last_seq = e.seq;
	v->sum.entries++;
	r = 0;
 out:
	json_decref(root);
	return r;
}

/*
 * Every complete line in b; at eof, what is left is a cut line. Fails only
 * when the rest of b cannot be read as lines (a line over the limit).
 */
static int
verify_lines(struct auditlog_verifier *v, const char *name,
    struct botid_buf *b, int eof, uint64_t *lineno, char *err, size_t errlen)
{
	char where[NAME_MAX_SHOWN + 32];
	const uint8_t *line;
	size_t off;
	int r;

	for (;;) {
		snprintf(where, sizeof(where), "%.*s:%" PRIu64,
		    NAME_MAX_SHOWN, name, *lineno + 1);
		if (buf_find_byte(b, '\n', &off) != 0)
			break;
		if (off >= BOTID_MAX_AUDIT_LINE)
			return verify_fail(v, BOTID_ERR_TOO_LARGE, where, NULL,
			    err, errlen, "line longer than %u bytes",
			    BOTID_MAX_AUDIT_LINE);
		if ((r = buf_get_direct(b, &line, off + 1)) != 0)
			return verify_fail(v, r, where, NULL, err, errlen,
			    "internal error");
		(*lineno)++;
		(void)verify_line(v, where, line, off + 1, err, errlen);
	}
	if (buf_len(b) >= BOTID_MAX_AUDIT_LINE)
		return verify_fail(v, BOTID_ERR_TOO_LARGE, where, NULL, err,
		    errlen, "line longer than %u bytes", BOTID_MAX_AUDIT_LINE);
	if (eof && buf_len(b) > 0) {
		v->resync = 1;
		return verify_fail(v, BOTID_ERR_INVALID, where, NULL, err,
		    errlen, "the last line is cut short (no line end)");
	}
	return 0;
}

/* What a call returns: the first failure so far, its line in err. */
static int
verify_result(struct auditlog_verifier *v, char *err, size_t errlen)
{
	if (v->failed != 0)
		snprintf(err, errlen, "%s", v->msg);
	return v->failed;
}

int
auditlog_verify_data(struct auditlog_verifier *v, const char *name,
    const uint8_t *data, size_t len, char *err, size_t errlen)
{
	struct botid_buf b;
	uint64_t lineno = 0;

	buf_init_view(&b, data, len);
	(void)verify_lines(v, name, &b, 1, &lineno, err, errlen);
	return verify_result(v, err, errlen);
}

int
auditlog_verify_file(struct auditlog_verifier *v, const char *path,
    char *err, size_t errlen)
{
	struct botid_buf b;
	uint64_t lineno = 0;
	uint8_t *p;
	size_t want;
	ssize_t n;
	int fd = -1, r;

	buf_init(&b, BOTID_MAX_AUDIT_LINE + READ_CHUNK);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		(void)verify_fail(v, BOTID_ERR_IO, path, NULL, err, errlen,
		    "%s", strerror(errno));
		v->resync = 1;
		goto out;
	}
	for (;;) {
		buf_compact(&b);
		want = b.max - buf_len(&b);
		if (want > READ_CHUNK)
			want = READ_CHUNK;
		if ((r = buf_reserve(&b, want, &p)) != 0) {
			(void)verify_fail(v, r, path, NULL, err, errlen,
			    "out of memory");
			goto out;
		}
		n = read(fd, p, want);
		(void)buf_unreserve(&b, n > 0 ? want - (size_t)n : want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			(void)verify_fail(v, BOTID_ERR_IO, path, NULL, err,
			    errlen, "%s", strerror(errno));
			v->resync = 1;
			goto out;
		}
		if (verify_lines(v, path, &b, n == 0, &lineno, err,
		    errlen) != 0) {
			v->resync = 1;
			goto out;
		}
		if (n == 0)
			goto out;
	}
 out:
	buf_reset(&b);
	if (fd != -1)
		close(fd);
	return verify_result(v, err, errlen);
}

int
auditlog_verify_end(struct auditlog_verifier *v, int require_sealed,
    struct auditlog_summary *s, char *err, size_t errlen)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	if (v->have_anchor && v->started && (!v->sum.have_number ||
	    v->sum.last_number < v->anchor.number)) {
		if (v->sum.have_number)
			(void)verify_fail(v, BOTID_ERR_DENIED, v->cp_where,
			    NULL, err, errlen, "the log ends at checkpoint "
			    "number %" PRIu64 " (seq %" PRIu64 "), before the "
			    "newest one %s holds, number %" PRIu64 " (seq %"
			    PRIu64 ", %s, %s): entries after seq %" PRIu64
			    " were cut or rolled back", v->sum.last_number,
			    v->sum.last_checkpoint_seq, v->anchor_source,
			    v->anchor.number, v->anchor.seq, v->anchor.reason,
			    v->anchor.time, v->sum.last_checkpoint_seq);
		else
			(void)verify_fail(v, BOTID_ERR_DENIED, v->last_where,
			    NULL, err, errlen, "the log holds no version 2 "
			    "checkpoint; %s holds number %" PRIu64 " (seq %"
			    PRIu64 ", %s, %s): cut or rolled back",
			    v->anchor_source, v->anchor.number, v->anchor.seq,
			    v->anchor.reason, v->anchor.time);
	}
	v->sum.unsealed = 0;
	for (i = 0; i < v->npending; i++)
		if (!v->pending[i].checkpoint)
			v->sum.unsealed++;
	v->sum.ends_sealed = v->started && v->last_final;
	*s = v->sum;
	if (v->failed != 0)
		return verify_result(v, err, errlen);
	if (!v->started)
		return verify_fail(v, BOTID_ERR_INVALID, "audit log", NULL, err,
		    errlen, "no entries");
	if (!require_sealed || v->last_final)
		return 0;
	if (s->unsealed > 0 && s->have_seal)
		return verify_fail(v, BOTID_ERR_DENIED, v->last_where, NULL,
		    err, errlen, "%" PRIu64 " entries after seq %" PRIu64 ", "
		    "the last sealed, are unsealed: the log was cut after its "
		    "last checkpoint, or the agent did not stop cleanly",
		    s->unsealed, s->sealed_seq);
	if (s->unsealed > 0)
		return verify_fail(v, BOTID_ERR_DENIED, v->last_where, NULL,
		    err, errlen, "no checkpoint seals the %" PRIu64 " entries "
		    "unsealed: the log was cut after its last checkpoint, or "
		    "the agent did not stop cleanly", s->unsealed);
	return verify_fail(v, BOTID_ERR_DENIED, v->last_where, NULL, err,
	    errlen, "the log does not end with a shutdown or rotation "
	    "checkpoint (last seq %" PRIu64 "): entries after it may have "
	    "been cut", s->last_seq);
}

/*
 * The last line of the log at fd, parsed into *e (strings in *root, the
 * caller's), its hash in hash.
 */
static int
tail_read(int fd, uint8_t hash[AUDITLOG_HASH_LEN], int *partial,
    json_t **root, struct entry *e)
{
	struct botid_buf b;
	struct stat st;
	const char *why;
	const uint8_t *p;
	uint8_t *dst;
	off_t start;
	size_t n, off, last = 0;
	int r = BOTID_ERR_IO;

	*partial = 0;
	*root = NULL;
	buf_init(&b, BOTID_MAX_AUDIT_LINE + 1);
	if (fstat(fd, &st) == -1)
		goto out;
	if (st.st_size == 0) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	n = st.st_size > (off_t)(BOTID_MAX_AUDIT_LINE + 1) ?
	    BOTID_MAX_AUDIT_LINE + 1 : (size_t)st.st_size;
	start = st.st_size - (off_t)n;
	if ((r = buf_reserve(&b, n, &dst)) != 0)
		goto out;
	r = BOTID_ERR_IO;
	if (pread(fd, dst, n, start) != (ssize_t)n)
		goto out;
	/* The last line runs from the line end before it to the end. */
	r = BOTID_ERR_INVALID;
	while (buf_find_byte(&b, '\n', &off) == 0) {
		if (off + 1 == buf_len(&b))
			break;
		last += off + 1;
		(void)buf_consume(&b, off + 1);
	}
	if (buf_find_byte(&b, '\n', &off) != 0) {
		*partial = 1;
		goto out;
	}
	if (last == 0 && start != 0)
		goto out;	/* a line too long to be an entry */
	if (buf_get_direct(&b, &p, off + 1) != 0)
		goto out;
	if (entry_parse(p, off, root, e, &why) != 0)
		goto out;
	if (EVP_Digest(p, off + 1, hash, NULL, EVP_sha256(), NULL) != 1) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	r = 0;
 out:
	buf_reset(&b);
	return r;
}

int
auditlog_tail(int fd, uint64_t *seq, uint8_t hash[AUDITLOG_HASH_LEN],
    int *partial)
{
	struct entry e;
	json_t *root = NULL;
	int r;

	*seq = 0;
	if ((r = tail_read(fd, hash, partial, &root, &e)) == 0)
		*seq = e.seq;
	json_decref(root);
	return r;
}

int
auditlog_tail_check(int fd, EVP_PKEY *key, struct auditlog_tail_info *t,
    int *partial)
{
	struct entry e;
	json_t *root = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	if ((r = tail_read(fd, t->hash, partial, &root, &e)) != 0)
		goto out;
	t->seq = e.seq;
	if (!e.checkpoint)
		goto out;
	t->checkpoint = 1;
	t->version = e.version;
	t->final = e.final;
	t->is_signed = e.is_signed;
	t->number = e.cp.number;
	snprintf(t->reason, sizeof(t->reason), "%s", e.reason);
	t->sig_ok = key != NULL && e.is_signed && checkpoint_sig_ok(key, &e);
 out:
	json_decref(root);
	return r;
}
