/*
 * Unit tests for the audit anchor at botid-ca (POST /v1/audit/anchor and
 * GET /v1/audit/anchor/HOST in ca/ca-api.c, the audit_anchors table)
 * against a real SQLite CA in a temporary directory. Two enrolled hosts
 * hold software P-256 "host keys" in TPM2B_PUBLIC form and sign version 2
 * checkpoint lines as the agent writes them; the CA must keep, per host,
 * only checkpoints signed by that host's key, with a number above the one
 * it holds (the same one again is answered as held), and at most
 * audit_anchor_history of them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <tss2/tss2_mu.h>

#include "lib/auditlog.h"
#include "lib/base64.h"
#include "lib/botid.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "tests/unit/ca-fixture.h"

#define HOST_A		"00000000000000aa"
#define HOST_B		"00000000000000bb"
#define HOST_UNKNOWN	"00000000000000cc"

static struct ca_fixture fx;
static struct ca_fixture_host host_a = { HOST_A, NULL };
static struct ca_fixture_host host_b = { HOST_B, NULL };

static int
ca_setup(void **state)
{
	(void)state;
	if (ca_fixture_open(&fx, "test-ca-anchor",
	    "audit_anchor_history = 3\n") != 0)
		return -1;
	ca_fixture_enrol(&fx, &host_a);
	ca_fixture_enrol(&fx, &host_b);
	return 0;
}

static int
ca_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(host_a.key);
	EVP_PKEY_free(host_b.key);
	ca_fixture_close(&fx);
	return 0;
}

/* --- Requests ------------------------------------------------------------ */

/* POSTs body to path; returns the status, the answer in *answer. */
static int
post(const char *path, const char *body, json_t **answer)
{
	return ca_fixture_call(&fx, "POST", path, body, answer);
}

static int
get(const char *path, json_t **answer)
{
	return ca_fixture_call(&fx, "GET", path, "", answer);
}

/*
 * A version 2 checkpoint line as the agent writes it, number n, reason
 * reason, signed by key (NULL: unsigned); malloc'd.
 */
static char *
checkpoint_line(EVP_PKEY *key, uint64_t n, const char *reason)
{
	struct auditlog_checkpoint c;
	EVP_PKEY_CTX *ctx;
	uint8_t digest[AUDITLOG_HASH_LEN], sig[256];
	size_t sig_len = sizeof(sig);
	char run[2 * AUDITLOG_RUN_LEN + 1], hash[2 * AUDITLOG_HASH_LEN + 1];
	char *b64 = NULL, *line = NULL;

	memset(&c, 0, sizeof(c));
	c.number = n;
	memset(c.run, 0x5a, sizeof(c.run));
	c.time = "2026-12-03T07:00:01.000000Z";
	c.reason = reason;
	c.sealed_seq = 10 * n + 8;
	memset(c.sealed_hash, 0x11, sizeof(c.sealed_hash));
	memset(c.prev_checkpoint, 0x22, sizeof(c.prev_checkpoint));
	c.found = "";
	hex_encode(c.run, sizeof(c.run), run);
	hex_encode(c.sealed_hash, sizeof(c.sealed_hash), hash);
	if (key != NULL) {
		assert_int_equal(auditlog_checkpoint_digest_v2(&c, digest), 0);
		assert_non_null(ctx = EVP_PKEY_CTX_new(key, NULL));
		assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
		assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx,
		    EVP_sha256()), 1);
		assert_int_equal(EVP_PKEY_sign(ctx, sig, &sig_len, digest,
		    sizeof(digest)), 1);
		EVP_PKEY_CTX_free(ctx);
		assert_int_equal(base64_encode(sig, sig_len, &b64), 0);
	}
	assert_true(asprintf(&line, "{\"seq\":%llu,\"prev\":\"%s\","
	    "\"time\":\"%s\",\"op\":\"checkpoint\",\"result\":\"%s\","
	    "\"reason\":\"%s\",\"v\":2,\"number\":%llu,\"run\":\"%s\","
	    "\"sealed_seq\":%llu,\"sealed_hash\":\"%s\",\"prev_checkpoint\":"
	    "\"2222222222222222222222222222222222222222222222222222222222222222\""
	    "%s%s%s}", (unsigned long long)(10 * n + 9), hash, c.time,
	    key != NULL ? "signed" : "unsigned", reason,
	    (unsigned long long)n, run, (unsigned long long)c.sealed_seq, hash,
	    key != NULL ? ",\"alg\":\"ES256\",\"sig\":\"" : ",\"detail\":\"x",
	    key != NULL ? b64 : "", "\"") != -1);
	free(b64);
	return line;
}

/* POSTs {"host_id", "checkpoint": line}; the status, *answer. */
static int
anchor(const char *host_id, const char *line, json_t **answer)
{
	json_t *req;
	char *body;
	int status;

	assert_non_null(req = json_pack("{s:s, s:s}", "host_id", host_id,
	    "checkpoint", line));
	assert_non_null(body = json_dumps(req, JSON_COMPACT));
	status = post("/v1/audit/anchor", body, answer);
	free(body);
	json_decref(req);
	return status;
}

static void
expect_error(json_t *answer, const char *want)
{
	const char *e = json_string_value(json_object_get(answer, "error"));

	assert_non_null(e);
	if (strstr(e, want) == NULL)
		fail_msg("error '%s' lacks '%s'", e, want);
}

/* The number the CA holds for host_id, or -1. */
static long long
held(const char *host_id)
{
	char path[64];
	json_t *a = NULL;
	long long n = -1;

	snprintf(path, sizeof(path), "/v1/audit/anchor/%s", host_id);
	if (get(path, &a) == 200)
		n = json_integer_value(json_object_get(a, "number"));
	json_decref(a);
	return n;
}

static int
rows(const char *host_id)
{
	char path[256];
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	int n;

	snprintf(path, sizeof(path), "%s/ca.db", fx.dir);
	assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, "SELECT COUNT(*) FROM "
	    "audit_anchors WHERE host_id = ?", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(s);
	return n;
}

/* --- Tests --------------------------------------------------------------- */

static void
test_anchor_kept(void **state)
{
	json_t *a = NULL;
	char *line0, *line1;

	(void)state;
	assert_int_equal(held(HOST_A), -1);
	line0 = checkpoint_line(host_a.key, 0, "entries");
	line1 = checkpoint_line(host_a.key, 1, "shutdown");
	assert_int_equal(anchor(HOST_A, line0, &a), 200);
	assert_int_equal(json_integer_value(json_object_get(a, "number")), 0);
	assert_true(json_is_false(json_object_get(a, "already")));
	json_decref(a);
	assert_int_equal(anchor(HOST_A, line1, &a), 200);
	json_decref(a);
	/* The same again: held, nothing changes. */
	assert_int_equal(anchor(HOST_A, line1, &a), 200);
	assert_true(json_is_true(json_object_get(a, "already")));
	json_decref(a);
	assert_int_equal(get("/v1/audit/anchor/" HOST_A, &a), 200);
	assert_string_equal(json_string_value(json_object_get(a,
	    "checkpoint")), line1);
	assert_string_equal(json_string_value(json_object_get(a, "reason")),
	    "shutdown");
	assert_int_equal(json_integer_value(json_object_get(a, "seq")), 19);
	json_decref(a);
	free(line0);
	free(line1);
}

static void
test_anchor_replays(void **state)
{
	json_t *a = NULL;
	char *old, *other;

	(void)state;
	/* Older than the newest held (test_anchor_kept left number 1). */
	old = checkpoint_line(host_a.key, 0, "entries");
	assert_int_equal(anchor(HOST_A, old, &a), 409);
	expect_error(a, "checkpoint number 0 is not after number 1, the "
	    "newest held (replay)");
	json_decref(a);
	/* Another checkpoint under the number held. */
	other = checkpoint_line(host_a.key, 1, "rotate");
	assert_int_equal(anchor(HOST_A, other, &a), 409);
	json_decref(a);
	/* Host A's checkpoint posted as host B's. */
	free(old);
	old = checkpoint_line(host_a.key, 7, "entries");
	assert_int_equal(anchor(HOST_B, old, &a), 403);
	expect_error(a, "host " HOST_B ": the checkpoint's signature does not "
	    "verify with the host key");
	json_decref(a);
	assert_int_equal(held(HOST_B), -1);
	assert_int_equal(held(HOST_A), 1);
	free(old);
	free(other);
}

static void
test_anchor_refused(void **state)
{
	static const char *const bad_bodies[] = {
		"{}",
		"{\"host_id\":\"" HOST_A "\"}",
		"{\"host_id\":\"" HOST_A "\",\"checkpoint\":7}",
		"{\"host_id\":\"" HOST_A "\",\"checkpoint\":\"x\",\"more\":1}",
		"{\"host_id\":\"" HOST_A "\",\"checkpoint\":\"not json\"}",
		"{\"host_id\":\"" HOST_A "\",\"checkpoint\":\"{\\\"seq\\\":1}\"}",
	};
	json_t *a = NULL;
	char *line, *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
		assert_int_equal(post("/v1/audit/anchor", bad_bodies[i], &a),
		    400);
		json_decref(a);
	}
	line = checkpoint_line(host_a.key, 9, "entries");
	assert_int_equal(anchor(HOST_UNKNOWN, line, &a), 403);
	expect_error(a, "unknown host");
	json_decref(a);
	/* Relabelled: the signature covers the reason. */
	assert_non_null(p = strstr(line, "\"reason\":\"entries\""));
	memcpy(p, "\"reason\":\"rotate\" ", 18);
	assert_int_equal(anchor(HOST_A, line, &a), 403);
	json_decref(a);
	free(line);
	/* Unsigned. */
	line = checkpoint_line(NULL, 9, "entries");
	assert_int_equal(anchor(HOST_A, line, &a), 400);
	expect_error(a, "not a signed version 2 audit checkpoint");
	json_decref(a);
	free(line);
	assert_int_equal(held(HOST_A), 1);
	assert_int_equal(get("/v1/audit/anchor/nothex", &a), 404);
	json_decref(a);
}

static void
test_anchor_history(void **state)
{
	const char *ctype = NULL;
	char *line, *out = NULL, want[128];
	json_t *a = NULL;
	uint64_t n;

	(void)state;
	for (n = 2; n < 8; n++) {
		line = checkpoint_line(host_a.key, n, "entries");
		assert_int_equal(anchor(HOST_A, line, &a), 200);
		json_decref(a);
		free(line);
	}
	assert_int_equal(held(HOST_A), 7);
	assert_int_equal(rows(HOST_A), 3);	/* audit_anchor_history */
	assert_int_equal(ca_api_handle(&fx.api, "GET", "/metrics", "", 0, "test",
	    &out, &ctype), 200);
	snprintf(want, sizeof(want), "\nbotid_ca_audit_anchor_number{host=\""
	    HOST_A "\"} 7\n");
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "\nbotid_ca_audit_anchor_age_seconds{host=\""
	    HOST_A "\"} "));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anchor_kept),
		cmocka_unit_test(test_anchor_replays),
		cmocka_unit_test(test_anchor_refused),
		cmocka_unit_test(test_anchor_history),
	};

	return cmocka_run_group_tests(tests, ca_setup, ca_teardown);
}
