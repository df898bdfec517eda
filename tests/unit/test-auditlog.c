/*
 * Unit tests for lib/auditlog.c on hand-built logs: a good chain across
 * files, each kind of tampering named by line and seq, checkpoints signed
 * by the wrong key or not at all, cuts at every offset, flipped bytes,
 * malformed JSON, and reading the tail of a log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "lib/auditlog.h"
#include "lib/base64.h"
#include "lib/error.h"

#define LOG_MAX	16384

/*
 * Under memcheck (`make check-valgrind` sets BOTID_UNDER_MEMCHECK) the
 * exhaustive loops below take every Nth case instead of all: the same code
 * runs, at a tenth of the cost; the ordinary and sanitizer runs stay
 * exhaustive.
 */
static size_t
sample_step(void)
{
	return getenv("BOTID_UNDER_MEMCHECK") != NULL ? 7 : 1;
}

struct log {
	char		data[LOG_MAX];
	size_t		len;
	size_t		starts[64];	/* offset of each line */
	size_t		nlines;
	uint64_t	seq;
	uint8_t		hash[AUDITLOG_HASH_LEN];
	/* Version 2 checkpoints: the next number, the last one's hash. */
	uint64_t	number;
	uint8_t		cp_hash[AUDITLOG_HASH_LEN];
	uint8_t		run[AUDITLOG_RUN_LEN];
};

static EVP_PKEY *host_key, *other_key;

static void
hexs(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* Appends {"seq":..,"prev":..,BODY}. */
static void
add(struct log *l, const char *body)
{
	char prev[2 * AUDITLOG_HASH_LEN + 1];
	int n;

	hexs(l->hash, sizeof(l->hash), prev);
	l->starts[l->nlines++] = l->len;
	n = snprintf(l->data + l->len, LOG_MAX - l->len,
	    "{\"seq\":%llu,\"prev\":\"%s\",%s}\n", (unsigned long long)l->seq,
	    prev, body);
	assert_true(n > 0 && (size_t)n < LOG_MAX - l->len);
	assert_int_equal(EVP_Digest(l->data + l->len, (size_t)n, l->hash,
	    NULL, EVP_sha256(), NULL), 1);
	l->len += (size_t)n;
	l->seq++;
}

static void
add_op(struct log *l, const char *result)
{
	char body[128];

	snprintf(body, sizeof(body), "\"time\":\"2026-12-03T07:00:00Z\","
	    "\"op\":\"sign-data\",\"bot\":\"b\",\"uid\":0,\"result\":\"%s\"",
	    result);
	add(l, body);
}

/* A checkpoint sealing the last line, signed by key (NULL: unsigned). */
static void
add_checkpoint(struct log *l, EVP_PKEY *key, const char *reason)
{
	EVP_PKEY_CTX *ctx;
	uint8_t digest[AUDITLOG_HASH_LEN], sig[256];
	char body[1024], sealed[2 * AUDITLOG_HASH_LEN + 1], *b64 = NULL;
	size_t sig_len = sizeof(sig);

	hexs(l->hash, sizeof(l->hash), sealed);
	if (key == NULL) {
		snprintf(body, sizeof(body), "\"op\":\"checkpoint\","
		    "\"result\":\"unsigned\",\"reason\":\"%s\","
		    "\"sealed_seq\":%llu,\"sealed_hash\":\"%s\","
		    "\"detail\":\"host not provisioned\"", reason,
		    (unsigned long long)l->seq - 1, sealed);
		add(l, body);
		return;
	}
	assert_int_equal(auditlog_checkpoint_digest(l->seq - 1, l->hash,
	    digest), 0);
	assert_non_null(ctx = EVP_PKEY_CTX_new(key, NULL));
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, sig, &sig_len, digest,
	    sizeof(digest)), 1);
	EVP_PKEY_CTX_free(ctx);
	assert_int_equal(base64_encode(sig, sig_len, &b64), 0);
	snprintf(body, sizeof(body), "\"op\":\"checkpoint\","
	    "\"result\":\"signed\",\"reason\":\"%s\",\"sealed_seq\":%llu,"
	    "\"sealed_hash\":\"%s\",\"alg\":\"ES256\",\"sig\":\"%s\"", reason,
	    (unsigned long long)l->seq - 1, sealed, b64);
	free(b64);
	add(l, body);
}

/* ES256 over digest, base64 (caller frees). */
static char *
sign_b64(EVP_PKEY *key, const uint8_t digest[AUDITLOG_HASH_LEN])
{
	EVP_PKEY_CTX *ctx;
	uint8_t sig[256];
	size_t sig_len = sizeof(sig);
	char *b64 = NULL;

	assert_non_null(ctx = EVP_PKEY_CTX_new(key, NULL));
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, sig, &sig_len, digest,
	    AUDITLOG_HASH_LEN), 1);
	EVP_PKEY_CTX_free(ctx);
	assert_int_equal(base64_encode(sig, sig_len, &b64), 0);
	return b64;
}

/*
 * A version 2 checkpoint sealing the last line, as the agent writes one:
 * signed by key, reason as given, found for a break (else NULL).
 */
static void
add_checkpoint_v2(struct log *l, EVP_PKEY *key, const char *reason,
    const char *found)
{
	struct auditlog_checkpoint c;
	uint8_t digest[AUDITLOG_HASH_LEN];
	char body[2048], sealed[2 * AUDITLOG_HASH_LEN + 1];
	char run[2 * AUDITLOG_RUN_LEN + 1], prev[2 * AUDITLOG_HASH_LEN + 1];
	char fnd[300], *b64;

	memset(&c, 0, sizeof(c));
	c.number = l->number;
	memcpy(c.run, l->run, sizeof(c.run));
	c.time = "2026-12-03T07:00:01.000000Z";
	c.reason = reason;
	c.sealed_seq = l->seq - 1;
	memcpy(c.sealed_hash, l->hash, sizeof(c.sealed_hash));
	memcpy(c.prev_checkpoint, l->cp_hash, sizeof(c.prev_checkpoint));
	c.found = found != NULL ? found : "";
	assert_int_equal(auditlog_checkpoint_digest_v2(&c, digest), 0);
	b64 = sign_b64(key, digest);
	hexs(l->hash, sizeof(l->hash), sealed);
	hexs(l->run, sizeof(l->run), run);
	hexs(l->cp_hash, sizeof(l->cp_hash), prev);
	fnd[0] = '\0';
	if (found != NULL)
		snprintf(fnd, sizeof(fnd), ",\"found\":\"%s\"", found);
	snprintf(body, sizeof(body), "\"time\":\"%s\",\"op\":\"checkpoint\","
	    "\"result\":\"signed\",\"reason\":\"%s\",\"v\":2,"
	    "\"number\":%llu,\"run\":\"%s\",\"sealed_seq\":%llu,"
	    "\"sealed_hash\":\"%s\",\"prev_checkpoint\":\"%s\"%s,"
	    "\"alg\":\"ES256\",\"sig\":\"%s\"", c.time, reason,
	    (unsigned long long)c.number, run, (unsigned long long)c.sealed_seq,
	    sealed, prev, fnd, b64);
	free(b64);
	add(l, body);
	memcpy(l->cp_hash, l->hash, sizeof(l->cp_hash));
	l->number++;
}

/* ops, checkpoint, ops, checkpoint, op, shutdown checkpoint: 12 lines. */
static void
good_log(struct log *l, EVP_PKEY *key)
{
	memset(l, 0, sizeof(*l));
	add_op(l, "ok");
	add_op(l, "denied");
	add_op(l, "ok");
	add_op(l, "ok");
	add_checkpoint(l, key, "entries");
	add_op(l, "ok");
	add_op(l, "error");
	add_op(l, "ok");
	add_checkpoint(l, key, "interval");
	add_op(l, "ok");
	add_op(l, "ok");
	add_checkpoint(l, key, "shutdown");
}

/* Verifies data as one file; returns the first error, err filled. */
static int
verify(EVP_PKEY *key, const void *data, size_t len, int sealed, char *err,
    size_t errlen, struct auditlog_summary *s)
{
	struct auditlog_verifier *v = NULL;
	struct auditlog_summary sum;
	int r;

	err[0] = '\0';
	assert_int_equal(auditlog_verifier_new(key, &v), 0);
	if ((r = auditlog_verify_data(v, "t.log", data, len, err,
	    errlen)) == 0)
		r = auditlog_verify_end(v, sealed, &sum, err, errlen);
	if (s != NULL)
		*s = sum;
	auditlog_verifier_free(v);
	return r;
}

static void
test_good_chain(void **state)
{
	struct auditlog_summary s;
	struct log l;
	char err[512];

	(void)state;
	good_log(&l, host_key);
	assert_int_equal(verify(host_key, l.data, l.len, 1, err, sizeof(err),
	    &s), 0);
	assert_int_equal(s.entries, 12);
	assert_int_equal(s.checkpoints, 3);
	assert_int_equal(s.signed_checkpoints, 3);
	assert_int_equal(s.first_seq, 0);
	assert_int_equal(s.last_seq, 11);
	assert_int_equal(s.sealed_seq, 10);
	assert_int_equal(s.unsealed, 0);
	assert_true(s.ends_sealed);
	/* Without a key: the chain only. */
	assert_int_equal(verify(NULL, l.data, l.len, 1, err, sizeof(err),
	    &s), 0);
	assert_int_equal(s.signed_checkpoints, 0);
}

static void
test_across_files(void **state)
{
	struct auditlog_verifier *v;
	struct auditlog_summary s;
	struct log l;
	size_t cut;
	char err[512];

	(void)state;
	good_log(&l, host_key);
	cut = l.starts[5];	/* after the first checkpoint */
	assert_int_equal(auditlog_verifier_new(host_key, &v), 0);
	assert_int_equal(auditlog_verify_data(v, "old", (uint8_t *)l.data, cut,
	    err, sizeof(err)), 0);
	assert_int_equal(auditlog_verify_data(v, "new",
	    (uint8_t *)l.data + cut, l.len - cut, err, sizeof(err)), 0);
	assert_int_equal(auditlog_verify_end(v, 1, &s, err, sizeof(err)), 0);
	auditlog_verifier_free(v);
	/* The new file alone continues a chain from an earlier file. */
	assert_int_equal(verify(host_key, l.data + cut, l.len - cut, 1, err,
	    sizeof(err), &s), 0);
	assert_int_equal(s.first_seq, 5);
	/* Given in the wrong order. */
	assert_int_equal(auditlog_verifier_new(host_key, &v), 0);
	assert_int_equal(auditlog_verify_data(v, "new",
	    (uint8_t *)l.data + cut, l.len - cut, err, sizeof(err)), 0);
	assert_int_equal(auditlog_verify_data(v, "old", (uint8_t *)l.data, cut,
	    err, sizeof(err)), BOTID_ERR_DENIED);
	assert_string_equal(err, "old:1 (seq 0): seq 0 where 12 was expected: "
	    "entries moved or inserted");
	assert_int_equal(auditlog_verify_end(v, 0, &s, err, sizeof(err)),
	    BOTID_ERR_DENIED);
	auditlog_verifier_free(v);
}

static void
test_edited_deleted_swapped_inserted(void **state)
{
	struct log l;
	char buf[LOG_MAX], err[512], *p;
	size_t n;

	(void)state;
	good_log(&l, host_key);
	/* Edited: line 3 says uid 7; line 4 no longer links to it. */
	memcpy(buf, l.data, l.len);
	assert_non_null(p = strstr(buf + l.starts[2], "\"uid\":0"));
	p[6] = '7';
	assert_int_equal(verify(host_key, buf, l.len, 0, err, sizeof(err),
	    NULL), BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:4 (seq 3): does not link to the entry "
	    "before it, t.log:3 (seq 2): that entry was edited, or this one "
	    "inserted");
	/* Deleted: line 3. */
	memcpy(buf, l.data, l.starts[2]);
	memcpy(buf + l.starts[2], l.data + l.starts[3], l.len - l.starts[3]);
	n = l.len - (l.starts[3] - l.starts[2]);
	assert_int_equal(verify(host_key, buf, n, 0, err, sizeof(err), NULL),
	    BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:3 (seq 3): seq 3 where 2 was expected: "
	    "entries deleted or moved");
	/* Swapped: lines 3 and 4. */
	memcpy(buf, l.data, l.starts[2]);
	n = l.starts[2];
	memcpy(buf + n, l.data + l.starts[3], l.starts[4] - l.starts[3]);
	n += l.starts[4] - l.starts[3];
	memcpy(buf + n, l.data + l.starts[2], l.starts[3] - l.starts[2]);
	n += l.starts[3] - l.starts[2];
	memcpy(buf + n, l.data + l.starts[4], l.len - l.starts[4]);
	assert_int_equal(verify(host_key, buf, l.len, 0, err, sizeof(err),
	    NULL), BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:3 (seq 3): seq 3 where 2 was expected: "
	    "entries deleted or moved");
	/* Inserted: line 2 again after itself. */
	n = l.starts[2];
	memcpy(buf, l.data, n);
	memcpy(buf + n, l.data + l.starts[1], l.starts[2] - l.starts[1]);
	memcpy(buf + n + l.starts[2] - l.starts[1], l.data + n, l.len - n);
	assert_int_equal(verify(host_key, buf, l.len + l.starts[2] -
	    l.starts[1], 0, err, sizeof(err), NULL), BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:3 (seq 1): seq 1 where 2 was expected: "
	    "entries moved or inserted");
}

static void
test_rewritten_chain(void **state)
{
	struct log l, forged;
	char err[512];

	(void)state;
	good_log(&l, host_key);
	/* Rehashed from line 2 on, with the real checkpoint copied over. */
	memset(&forged, 0, sizeof(forged));
	add_op(&forged, "ok");
	add_op(&forged, "ok");	/* was "denied" */
	add_op(&forged, "ok");
	add_op(&forged, "ok");
	add_checkpoint(&forged, other_key, "entries");
	assert_int_equal(verify(host_key, forged.data, forged.len, 0, err,
	    sizeof(err), NULL), BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:5 (seq 4): checkpoint signature does "
	    "not verify with the host certificate's key");
}

static void
test_checkpoints(void **state)
{
	struct auditlog_summary s;
	struct log l;
	char err[512], *p;

	(void)state;
	/* Unsigned: fine for the chain, refused with a host key. */
	good_log(&l, NULL);
	assert_int_equal(verify(NULL, l.data, l.len, 1, err, sizeof(err), &s),
	    0);
	assert_int_equal(verify(host_key, l.data, l.len, 0, err, sizeof(err),
	    NULL), BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:5 (seq 4): checkpoint is unsigned "
	    "(host not provisioned)");
	/* A seal whose hash is not the entry's. */
	good_log(&l, host_key);
	assert_non_null(p = strstr(l.data + l.starts[4], "\"sealed_hash\":\""));
	p[15] = p[15] == 'a' ? 'b' : 'a';
	assert_int_equal(verify(host_key, l.data, l.len, 0, err, sizeof(err),
	    NULL), BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:5 (seq 4): checkpoint seals seq 3 with "
	    "another hash than that entry's: it was edited, or the chain "
	    "rewritten; seq 0 (t.log:1) to 3 are in doubt");
	/* The wrong alg for the key. */
	good_log(&l, host_key);
	assert_non_null(p = strstr(l.data + l.starts[4], "ES256"));
	p[0] = 'R';
	assert_int_equal(verify(host_key, l.data, l.len, 0, err, sizeof(err),
	    NULL), BOTID_ERR_DENIED);
	/* A checkpoint that seals nothing new. */
	memset(&l, 0, sizeof(l));
	add_op(&l, "ok");
	add_checkpoint(&l, host_key, "entries");
	add(&l, "\"op\":\"checkpoint\",\"result\":\"unsigned\","
	    "\"reason\":\"entries\",\"sealed_seq\":0,\"sealed_hash\":"
	    "\"0000000000000000000000000000000000000000000000000000000000000000\"");
	assert_int_equal(verify(NULL, l.data, l.len, 0, err, sizeof(err),
	    NULL), BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:3 (seq 2): checkpoint seals seq 0, not "
	    "after the last sealed seq 0");
}

static void
test_truncation(void **state)
{
	struct auditlog_summary s;
	struct log l;
	char err[512];
	size_t cut, i;
	int r, at_line;

	(void)state;
	good_log(&l, host_key);
	/* The shutdown checkpoint and the entry before it cut. */
	assert_int_equal(verify(host_key, l.data, l.starts[10], 1, err,
	    sizeof(err), &s), BOTID_ERR_DENIED);
	assert_string_equal(err, "t.log:10: 1 entries after seq 7, the last "
	    "sealed, are unsealed: the log was cut after its last checkpoint, "
	    "or the agent did not stop cleanly");
	assert_int_equal(verify(host_key, l.data, l.starts[10], 0, err,
	    sizeof(err), &s), 0);
	assert_int_equal(s.unsealed, 1);
	assert_false(s.ends_sealed);
	/* Cut right after a periodic checkpoint. */
	assert_int_equal(verify(host_key, l.data, l.starts[9], 1, err,
	    sizeof(err), &s), BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "does not end with a shutdown or "
	    "rotation checkpoint"));
	/* Every cut: a line end gives a shorter chain, anything else fails. */
	for (cut = 0; cut < l.len; cut += sample_step()) {
		at_line = 0;
		for (i = 0; i < l.nlines; i++)
			at_line |= l.starts[i] == cut;
		r = verify(host_key, l.data, cut, 0, err, sizeof(err), NULL);
		if (cut == 0)
			assert_int_equal(r, BOTID_ERR_INVALID);
		else if (at_line)
			assert_int_equal(r, 0);
		else
			assert_int_equal(r, BOTID_ERR_INVALID);
		assert_int_not_equal(verify(host_key, l.data, cut, 1, err,
		    sizeof(err), NULL), 0);
	}
	r = verify(host_key, l.data, l.len - 1, 0, err, sizeof(err), NULL);
	assert_string_equal(err, "t.log:12: the last line is cut short (no "
	    "line end)");
}

static void
test_flipped_bytes(void **state)
{
	struct log l;
	char buf[LOG_MAX], err[512];
	size_t i;
	int bit;

	(void)state;
	good_log(&l, host_key);
	/* Only the final checkpoint's own bytes are not sealed by anything. */
	for (i = 0; i < l.len; i += sample_step()) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(buf, l.data, l.len);
			buf[i] ^= (char)(1 << bit);
			if (i < l.starts[11])
				assert_int_not_equal(verify(host_key, buf,
				    l.len, 1, err, sizeof(err), NULL), 0);
			else
				(void)verify(host_key, buf, l.len, 1, err,
				    sizeof(err), NULL);
		}
	}
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"not json\n",
		"[1,2]\n",
		"{\"prev\":\"00\",\"op\":\"x\"}\n",
		"{\"seq\":-1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"x\"}\n",
		"{\"seq\":0,\"prev\":\"000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"x\"}\n",
		"{\"seq\":0,\"prev\":\"000000000000000000000000000000000000000000000000000000000000000A\",\"op\":\"x\"}\n",
		"{\"seq\":0,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n",
		"{\"seq\":0,\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"x\"}\n",
		"{\"seq\":0,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"x\"} x\n",
		"{\"seq\":0,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"x\"\n",
		"{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"checkpoint\",\"result\":\"unsigned\",\"reason\":\"entries\",\"sealed_seq\":1,\"sealed_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n",
		"{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"checkpoint\",\"result\":\"unsigned\",\"reason\":\"whenever\",\"sealed_seq\":0,\"sealed_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n",
		"{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"checkpoint\",\"result\":\"signed\",\"reason\":\"entries\",\"sealed_seq\":0,\"sealed_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"alg\":\"none\",\"sig\":\"\"}\n",
		"\n",
	};
	static const char nul[] = "{\"seq\":0,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"op\":\"x\\u0000\"}\n";
	char err[512], *big;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(verify(NULL, bad[i], strlen(bad[i]), 0, err,
		    sizeof(err), NULL), BOTID_ERR_INVALID);
		assert_non_null(strstr(err, "t.log:1: not an audit entry"));
	}
	assert_int_equal(verify(NULL, nul, strlen(nul), 0, err, sizeof(err),
	    NULL), BOTID_ERR_INVALID);
	/* A chain of one good line, then an empty file. */
	assert_int_equal(verify(NULL, "", 0, 0, err, sizeof(err), NULL),
	    BOTID_ERR_INVALID);
	/* A line over the limit, with or without a line end. */
	assert_non_null(big = malloc(70000));
	memset(big, 'x', 70000);
	assert_int_equal(verify(NULL, big, 70000, 0, err, sizeof(err), NULL),
	    BOTID_ERR_TOO_LARGE);
	big[69999] = '\n';
	assert_int_equal(verify(NULL, big, 70000, 0, err, sizeof(err), NULL),
	    BOTID_ERR_TOO_LARGE);
	free(big);
}

static void
test_file_and_tail(void **state)
{
	struct auditlog_verifier *v;
	struct auditlog_summary s;
	struct log l;
	char path[] = "/tmp/test-auditlog.XXXXXX", err[512];
	uint8_t hash[AUDITLOG_HASH_LEN];
	uint64_t seq;
	int fd, partial;

	(void)state;
	good_log(&l, host_key);
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(auditlog_tail(fd, &seq, hash, &partial),
	    BOTID_ERR_NOT_FOUND);
	assert_int_equal(write(fd, l.data, l.len), (ssize_t)l.len);
	assert_int_equal(auditlog_tail(fd, &seq, hash, &partial), 0);
	assert_int_equal(seq, 11);
	assert_false(partial);
	assert_memory_equal(hash, l.hash, sizeof(hash));
	assert_int_equal(auditlog_verifier_new(host_key, &v), 0);
	assert_int_equal(auditlog_verify_file(v, path, err, sizeof(err)), 0);
	assert_int_equal(auditlog_verify_end(v, 1, &s, err, sizeof(err)), 0);
	auditlog_verifier_free(v);
	/* A write cut short. */
	assert_int_equal(write(fd, "{\"seq\":12", 9), 9);
	assert_int_equal(auditlog_tail(fd, &seq, hash, &partial),
	    BOTID_ERR_INVALID);
	assert_true(partial);
	assert_int_equal(write(fd, "\n", 1), 1);
	assert_int_equal(auditlog_tail(fd, &seq, hash, &partial),
	    BOTID_ERR_INVALID);
	assert_false(partial);
	close(fd);
	unlink(path);
	assert_int_equal(auditlog_verifier_new(NULL, &v), 0);
	assert_int_equal(auditlog_verify_file(v, path, err, sizeof(err)),
	    BOTID_ERR_IO);
	auditlog_verifier_free(v);
}

/* Two runs: 3 ops, entries, 2 ops, shutdown; then op, entries, op, shutdown. */
static void
good_log_v2(struct log *l, EVP_PKEY *key)
{
	memset(l, 0, sizeof(*l));
	memset(l->run, 0x11, sizeof(l->run));
	add_op(l, "ok");
	add_op(l, "denied");
	add_op(l, "ok");
	add_checkpoint_v2(l, key, "entries", NULL);
	add_op(l, "ok");
	add_op(l, "ok");
	add_checkpoint_v2(l, key, "shutdown", NULL);
	memset(l->run, 0x22, sizeof(l->run));
	add_op(l, "ok");
	add_checkpoint_v2(l, key, "entries", NULL);
	add_op(l, "ok");
	add_checkpoint_v2(l, key, "shutdown", NULL);
}

static void
test_v2_digest(void **state)
{
	static const char text[] = "botid-audit-checkpoint-v2\n"
	    "number 7\n"
	    "run 0102030405060708090a0b0c0d0e0f10\n"
	    "time 2026-12-03T07:00:01.000000Z\n"
	    "reason shutdown\n"
	    "sealed_seq 41\n"
	    "sealed_hash aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	    "prev_checkpoint bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
	    "found \n";
	struct auditlog_checkpoint c;
	uint8_t want[AUDITLOG_HASH_LEN], got[AUDITLOG_HASH_LEN];
	size_t i;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.number = 7;
	for (i = 0; i < AUDITLOG_RUN_LEN; i++)
		c.run[i] = (uint8_t)(i + 1);
	c.time = "2026-12-03T07:00:01.000000Z";
	c.reason = "shutdown";
	c.sealed_seq = 41;
	memset(c.sealed_hash, 0xaa, sizeof(c.sealed_hash));
	memset(c.prev_checkpoint, 0xbb, sizeof(c.prev_checkpoint));
	c.found = "";
	assert_int_equal(EVP_Digest(text, strlen(text), want, NULL,
	    EVP_sha256(), NULL), 1);
	assert_int_equal(auditlog_checkpoint_digest_v2(&c, got), 0);
	assert_memory_equal(want, got, sizeof(want));
	/* Each member changes the digest: nothing it says is unsigned. */
	c.reason = "entries";
	assert_int_equal(auditlog_checkpoint_digest_v2(&c, got), 0);
	assert_memory_not_equal(want, got, sizeof(want));
	/* A string that would make another line of the text. */
	c.found = "a\nreason shutdown";
	assert_int_equal(auditlog_checkpoint_digest_v2(&c, got),
	    BOTID_ERR_INVALID);
}

struct reports {
	char	lines[8][512];
	size_t	n;
};

static void
collect(void *arg, const char *line)
{
	struct reports *r = arg;

	if (r->n < 8)
		snprintf(r->lines[r->n], sizeof(r->lines[0]), "%s", line);
	r->n++;
}

/* Verifies data as one file, every failure collected in *rep. */
static int
verify_all(EVP_PKEY *key, const void *data, size_t len, int sealed,
    struct reports *rep, struct auditlog_summary *s)
{
	struct auditlog_verifier *v = NULL;
	char err[512];
	int r;

	memset(rep, 0, sizeof(*rep));
	assert_int_equal(auditlog_verifier_new(key, &v), 0);
	auditlog_verifier_set_report(v, collect, rep);
	(void)auditlog_verify_data(v, "t.log", data, len, err, sizeof(err));
	r = auditlog_verify_end(v, sealed, s, err, sizeof(err));
	auditlog_verifier_free(v);
	if (r != 0)
		assert_string_equal(err, rep->lines[0]);
	return r;
}

static void
test_v2_chain(void **state)
{
	struct auditlog_summary s;
	struct reports rep;
	struct log l;
	char buf[LOG_MAX], err[512], *p;
	size_t n;

	(void)state;
	good_log_v2(&l, host_key);
	assert_int_equal(verify_all(host_key, l.data, l.len, 1, &rep, &s), 0);
	assert_int_equal(s.checkpoints, 4);
	assert_int_equal(s.signed_checkpoints, 4);
	assert_int_equal(s.v1_checkpoints, 0);
	assert_true(s.have_number);
	assert_int_equal(s.last_number, 3);
	assert_memory_equal(s.last_checkpoint, l.hash, AUDITLOG_HASH_LEN);
	assert_true(s.ends_sealed);
	assert_int_equal(rep.n, 0);
	/* Old checkpoints still verify, counted for the warning. */
	good_log(&l, host_key);
	assert_int_equal(verify_all(host_key, l.data, l.len, 1, &rep, &s), 0);
	assert_int_equal(s.v1_checkpoints, 3);

	/* Cut after the second run's periodic checkpoint, relabelled. */
	good_log_v2(&l, host_key);
	n = l.starts[9];
	memcpy(buf, l.data, n);
	buf[n] = '\0';
	assert_int_equal(verify(host_key, buf, n, 1, err, sizeof(err), NULL),
	    BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "t.log:9: the log does not end with a "
	    "shutdown or rotation checkpoint"));
	assert_non_null(p = strstr(buf + l.starts[8], "\"reason\":\"entries\""));
	memcpy(p, "\"reason\":\"rotate\" ", 18);
	assert_int_equal(verify_all(host_key, buf, n, 1, &rep, &s),
	    BOTID_ERR_DENIED);
	assert_string_equal(rep.lines[0], "t.log:9 (seq 8): checkpoint "
	    "signature does not verify with the host certificate's key");
	/* The same log read without a key: the relabel is not seen. */
	assert_int_equal(verify(NULL, buf, n, 1, err, sizeof(err), NULL), 0);

	/* A new run after a periodic checkpoint (a cut, then a restart). */
	memset(&l, 0, sizeof(l));
	add_op(&l, "ok");
	add_checkpoint_v2(&l, host_key, "entries", NULL);
	memset(l.run, 0x33, sizeof(l.run));
	add_op(&l, "ok");
	add_checkpoint_v2(&l, host_key, "shutdown", NULL);
	assert_int_equal(verify_all(host_key, l.data, l.len, 1, &rep, &s),
	    BOTID_ERR_DENIED);
	assert_string_equal(rep.lines[0], "t.log:4 (seq 3): a new agent run "
	    "continues from t.log:2 (seq 1), not a shutdown or rotation "
	    "checkpoint: the log was cut or rolled back there");
	assert_int_equal(rep.n, 1);

	/* A break: reported, however well signed. */
	memset(&l, 0, sizeof(l));
	add_op(&l, "ok");
	add_checkpoint_v2(&l, host_key, "entries", NULL);
	add_op(&l, "ok");
	memset(l.run, 0x33, sizeof(l.run));
	add_checkpoint_v2(&l, host_key, "break", "the log ends with seq 2");
	add_op(&l, "ok");
	add_checkpoint_v2(&l, host_key, "shutdown", NULL);
	assert_int_equal(verify_all(host_key, l.data, l.len, 1, &rep, &s),
	    BOTID_ERR_DENIED);
	assert_string_equal(rep.lines[0], "t.log:4 (seq 3): the agent "
	    "restarted on a log it could not verify (the log ends with seq "
	    "2): entries up to seq 2 are in doubt");
	assert_int_equal(rep.n, 1);
	assert_int_equal(verify(NULL, l.data, l.len, 0, err, sizeof(err),
	    NULL), BOTID_ERR_DENIED);

	/* A checkpoint number skipped; one not linking to the one before. */
	memset(&l, 0, sizeof(l));
	add_op(&l, "ok");
	add_checkpoint_v2(&l, host_key, "entries", NULL);
	add_op(&l, "ok");
	l.number++;
	add_checkpoint_v2(&l, host_key, "entries", NULL);
	add_op(&l, "ok");
	l.cp_hash[0] ^= 1;
	add_checkpoint_v2(&l, host_key, "shutdown", NULL);
	assert_int_equal(verify_all(host_key, l.data, l.len, 1, &rep, &s),
	    BOTID_ERR_DENIED);
	assert_int_equal(rep.n, 2);
	assert_string_equal(rep.lines[0], "t.log:4 (seq 3): checkpoint number "
	    "2 where 1 was expected: checkpoints removed or replayed");
	assert_string_equal(rep.lines[1], "t.log:6 (seq 5): checkpoint does "
	    "not link to the checkpoint before it, t.log:4 (seq 3): a "
	    "checkpoint replaced");

	/* A version 1 checkpoint after version 2 ones. */
	memset(&l, 0, sizeof(l));
	add_op(&l, "ok");
	add_checkpoint_v2(&l, host_key, "entries", NULL);
	add_op(&l, "ok");
	add_checkpoint(&l, host_key, "shutdown");
	assert_int_equal(verify_all(host_key, l.data, l.len, 0, &rep, &s),
	    BOTID_ERR_DENIED);
	assert_string_equal(rep.lines[0], "t.log:4 (seq 3): a version 1 "
	    "checkpoint after version 2 ones: forged");
}

/* Every failure gets its own line, and the chain is taken up again. */
static void
test_every_failure(void **state)
{
	struct auditlog_summary s;
	struct reports rep;
	struct log l;
	char buf[LOG_MAX], *p;
	size_t n;

	(void)state;
	good_log_v2(&l, host_key);
	/* Lines 2 and 3 swapped, and line 8 edited (uid 0 -> 7). */
	memcpy(buf, l.data, l.starts[1]);
	n = l.starts[1];
	memcpy(buf + n, l.data + l.starts[2], l.starts[3] - l.starts[2]);
	n += l.starts[3] - l.starts[2];
	memcpy(buf + n, l.data + l.starts[1], l.starts[2] - l.starts[1]);
	n += l.starts[2] - l.starts[1];
	memcpy(buf + n, l.data + l.starts[3], l.len - l.starts[3]);
	assert_non_null(p = strstr(buf + l.starts[7], "\"uid\":0"));
	p[6] = '7';
	assert_int_equal(verify_all(host_key, buf, l.len, 1, &rep, &s),
	    BOTID_ERR_DENIED);
	assert_int_equal(rep.n, 4);
	assert_string_equal(rep.lines[0], "t.log:2 (seq 2): seq 2 where 1 was "
	    "expected: entries deleted or moved");
	assert_string_equal(rep.lines[1], "t.log:3 (seq 1): seq 1 where 3 was "
	    "expected: entries moved or inserted");
	assert_string_equal(rep.lines[2], "t.log:4 (seq 3): seq 3 where 2 was "
	    "expected: entries deleted or moved");
	assert_string_equal(rep.lines[3], "t.log:9 (seq 8): does not link to "
	    "the entry before it, t.log:8 (seq 7): that entry was edited, or "
	    "this one inserted");
	assert_int_equal(s.failures, 4);
}

static void
test_tail_check(void **state)
{
	struct auditlog_tail_info t;
	struct log l;
	char path[] = "/tmp/test-auditlog.XXXXXX";
	int fd, partial;

	(void)state;
	good_log_v2(&l, host_key);
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(write(fd, l.data, l.starts[9]), (ssize_t)l.starts[9]);
	assert_int_equal(auditlog_tail_check(fd, host_key, &t, &partial), 0);
	assert_true(t.checkpoint);
	assert_int_equal(t.version, 2);
	assert_false(t.final);
	assert_true(t.sig_ok);
	assert_int_equal(t.number, 2);
	assert_string_equal(t.reason, "entries");
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, l.data, l.len, 0), (ssize_t)l.len);
	assert_int_equal(auditlog_tail_check(fd, other_key, &t, &partial), 0);
	assert_true(t.final);
	assert_false(t.sig_ok);
	assert_int_equal(t.seq, 10);
	assert_memory_equal(t.hash, l.hash, sizeof(t.hash));
	close(fd);
	unlink(path);
}

static EVP_PKEY *
ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_chain),
		cmocka_unit_test(test_across_files),
		cmocka_unit_test(test_edited_deleted_swapped_inserted),
		cmocka_unit_test(test_rewritten_chain),
		cmocka_unit_test(test_checkpoints),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_file_and_tail),
		cmocka_unit_test(test_v2_digest),
		cmocka_unit_test(test_v2_chain),
		cmocka_unit_test(test_every_failure),
		cmocka_unit_test(test_tail_check),
	};
	int r;

	host_key = ec_key();
	other_key = ec_key();
	r = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(host_key);
	EVP_PKEY_free(other_key);
	return r;
}
