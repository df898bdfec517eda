/*
 * Unit tests for a host's own revocation at botid-ca (POST /v1/revoke,
 * attest/ca-revoke.c and handle_revoke in ca/ca-api.c): the signed
 * message byte by byte, the reason names, and the handler against a real
 * SQLite CA in a temporary directory. Two enrolled hosts hold software
 * P-256 "host keys" in TPM2B_PUBLIC form and sign TPMT_SIGNATUREs, as a
 * TPM would; the handler must accept only a fresh nonce of the host's own,
 * signed by that host's key over exactly what it asks, for a certificate
 * issued to it.
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
#include <openssl/sha.h>
#include <tss2/tss2_mu.h>

#include "attest/ca-revoke.h"
#include "lib/base64.h"
#include "lib/botid.h"
#include "lib/log.h"
#include "tests/unit/ca-fixture.h"

#define HOST_A		"00000000000000aa"
#define HOST_B		"00000000000000bb"
#define SERIAL_A1	"A1A1A1A1A1A1A1A1A1A1A1A1A1A1A1A1"
#define SERIAL_A2	"A2A2A2A2A2A2A2A2A2A2A2A2A2A2A2A2"
#define SERIAL_A3	"A3A3A3A3A3A3A3A3A3A3A3A3A3A3A3A3"
#define SERIAL_B1	"B1B1B1B1B1B1B1B1B1B1B1B1B1B1B1B1"

static struct ca_fixture fx;
static struct ca_fixture_host host_a = { HOST_A, NULL };
static struct ca_fixture_host host_b = { HOST_B, NULL };

/* --- The signed message ------------------------------------------------ */

static void
put_string(uint8_t *p, size_t *off, const char *s)
{
	size_t n = strlen(s);

	p[(*off)++] = (uint8_t)(n >> 24);
	p[(*off)++] = (uint8_t)(n >> 16);
	p[(*off)++] = (uint8_t)(n >> 8);
	p[(*off)++] = (uint8_t)n;
	memcpy(p + *off, s, n);
	*off += n;
}

static void
test_tbs_layout(void **state)
{
	static const uint8_t nonce[] = { 0x00, 0x01, 0xfe, 0xff, 0x42 };
	uint8_t want[256], digest[32], sha[32], *tbs = NULL;
	size_t off = 0, len = 0;

	(void)state;
	memcpy(want, "botid-revoke-v1", 16);	/* with its NUL */
	off = 16;
	memcpy(want + off, nonce, sizeof(nonce));
	off += sizeof(nonce);
	put_string(want, &off, HOST_A);
	put_string(want, &off, SERIAL_A1);
	put_string(want, &off, "superseded");
	assert_int_equal(ca_revoke_tbs(nonce, sizeof(nonce), HOST_A,
	    SERIAL_A1, "superseded", &tbs, &len), 0);
	assert_int_equal(len, off);
	assert_memory_equal(tbs, want, off);
	assert_int_equal(ca_revoke_digest(nonce, sizeof(nonce), HOST_A,
	    SERIAL_A1, "superseded", digest), 0);
	SHA256(want, off, sha);
	assert_memory_equal(digest, sha, 32);
	free(tbs);
}

static void
test_tbs_fields(void **state)
{
	static const uint8_t n1[] = { 1, 2, 3, 4 }, n2[] = { 1, 2, 3, 5 };
	/* The base message, then each with one field changed. */
	static const struct {
		const uint8_t	*nonce;
		size_t		 nonce_len;
		const char	*host, *target, *reason;
	} v[] = {
		{ n1, 4, HOST_A, SERIAL_A1, "superseded" },
		{ n2, 4, HOST_A, SERIAL_A1, "superseded" },
		{ n1, 3, HOST_A, SERIAL_A1, "superseded" },
		{ n1, 4, HOST_B, SERIAL_A1, "superseded" },
		{ n1, 4, HOST_A, SERIAL_A2, "superseded" },
		{ n1, 4, HOST_A, CA_REVOKE_HOST, "superseded" },
		{ n1, 4, HOST_A, SERIAL_A1, "keyCompromise" },
		/* Lengths keep the fields apart: moving a boundary changes it. */
		{ n1, 4, HOST_A, "ab", "c" },
		{ n1, 4, HOST_A, "a", "bc" },
	};
	uint8_t d[sizeof(v) / sizeof(v[0])][32];
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(ca_revoke_digest(v[i].nonce, v[i].nonce_len,
		    v[i].host, v[i].target, v[i].reason, d[i]), 0);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		for (k = i + 1; k < sizeof(v) / sizeof(v[0]); k++)
			if (memcmp(d[i], d[k], 32) == 0)
				fail_msg("messages %zu and %zu have one digest",
				    i, k);
}

static void
test_tbs_too_large(void **state)
{
	static const uint8_t nonce[32];
	char *big;
	uint8_t *tbs = (uint8_t *)"x", d[32];
	size_t len = 99;

	(void)state;
	big = malloc(8192);
	assert_non_null(big);
	memset(big, 'a', 8191);
	big[8191] = '\0';
	assert_int_equal(ca_revoke_tbs(nonce, sizeof(nonce), big, SERIAL_A1,
	    "superseded", &tbs, &len), BOTID_ERR_TOO_LARGE);
	assert_null(tbs);
	assert_int_equal(len, 0);
	assert_int_equal(ca_revoke_digest(nonce, sizeof(nonce), HOST_A,
	    SERIAL_A1, big, d), BOTID_ERR_TOO_LARGE);
	free(big);
}

static void
test_reason_codes(void **state)
{
	static const char *const refused[] = {
		"", "Superseded", "superseded ", " superseded", "keycompromise",
		"KEYCOMPROMISE", "certificateHold", "removeFromCRL",
		"affiliationChanged", "privilegeWithdrawn", "aACompromise",
		"cACompromise", "4", "unspecifiedx",
	};
	size_t i;

	(void)state;
	assert_int_equal(ca_revoke_reason_code("unspecified"), 0);
	assert_int_equal(ca_revoke_reason_code("keyCompromise"), 1);
	assert_int_equal(ca_revoke_reason_code("superseded"), 4);
	assert_int_equal(ca_revoke_reason_code("cessationOfOperation"), 5);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_int_equal(ca_revoke_reason_code(refused[i]), -1);
}

/* --- A CA with two enrolled hosts ---------------------------------------- */

static void
cert_add(const char *serial, const char *host_id, const char *bot)
{
	char spiffe[128];

	snprintf(spiffe, sizeof(spiffe), "spiffe://test.botid/host/%s/bot/%s",
	    host_id, bot);
	assert_int_equal(ca_db_cert_add(fx.db, serial, host_id, bot, spiffe,
	    time(NULL) + 3600, "tpm", time(NULL)), 0);
}

static int
ca_setup(void **state)
{
	(void)state;
	if (ca_fixture_open(&fx, "test-ca-revoke", NULL) != 0)
		return -1;
	ca_fixture_enrol(&fx, &host_a);
	ca_fixture_enrol(&fx, &host_b);
	cert_add(SERIAL_A1, HOST_A, "one");
	cert_add(SERIAL_A2, HOST_A, "two");
	cert_add(SERIAL_A3, HOST_A, "three");
	cert_add(SERIAL_B1, HOST_B, "one");
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

/* A fresh nonce for host_id from /v1/nonce: its base64, malloc'd. */
static char *
nonce_get(const char *host_id)
{
	char body[64], *nb;
	json_t *a = NULL;

	snprintf(body, sizeof(body), "{\"host_id\": \"%s\"}", host_id);
	assert_int_equal(post("/v1/nonce", body, &a), 200);
	nb = strdup(json_string_value(json_object_get(a, "nonce")));
	assert_non_null(nb);
	json_decref(a);
	return nb;
}

/*
 * key's signature, as a base64 marshalled TPMT_SIGNATURE (ECDSA, SHA-256),
 * over the revocation message of nonce (base64), host_id, target, reason.
 */
static char *
sign_revocation(EVP_PKEY *key, const char *nonce_b64, const char *host_id,
    const char *target, const char *reason)
{
	uint8_t *nonce = NULL, digest[32], der[80];
	uint8_t out[sizeof(TPMT_SIGNATURE)];
	const uint8_t *p = der;
	size_t nonce_len = 0, der_len = sizeof(der), off = 0;
	const BIGNUM *r, *s;
	TPMT_SIGNATURE sig;
	ECDSA_SIG *es;
	EVP_PKEY_CTX *ctx;
	char *b64 = NULL;

	assert_int_equal(base64_decode(nonce_b64, 64,
	    &nonce, &nonce_len), 0);
	assert_int_equal(ca_revoke_digest(nonce, nonce_len, host_id, target,
	    reason, digest), 0);
	ctx = EVP_PKEY_CTX_new(key, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, der, &der_len, digest, 32), 1);
	es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	assert_non_null(es);
	ECDSA_SIG_get0(es, &r, &s);
	memset(&sig, 0, sizeof(sig));
	sig.sigAlg = TPM2_ALG_ECDSA;
	sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
	sig.signature.ecdsa.signatureR.size = 32;
	sig.signature.ecdsa.signatureS.size = 32;
	assert_int_equal(BN_bn2binpad(r, sig.signature.ecdsa.signatureR.buffer,
	    32), 32);
	assert_int_equal(BN_bn2binpad(s, sig.signature.ecdsa.signatureS.buffer,
	    32), 32);
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, out, sizeof(out),
	    &off), 0);
	assert_int_equal(base64_encode(out, off, &b64), 0);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(ctx);
	free(nonce);
	return b64;
}

/* The body of a revocation of serial (NULL: the host itself). */
static char *
revoke_body(const char *host_id, const char *nonce, const char *serial,
    const char *reason, const char *sig)
{
	json_t *j;
	char *s;

	j = json_pack("{s:s, s:s, s:s, s:s}", "host_id", host_id, "nonce",
	    nonce, "reason", reason, "signature", sig);
	assert_non_null(j);
	if (serial != NULL)
		assert_int_equal(json_object_set_new(j, "serial",
		    json_string(serial)), 0);
	else
		assert_int_equal(json_object_set_new(j, "host", json_true()), 0);
	s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	json_decref(j);
	return s;
}

/*
 * Asks for a revocation as host h signed by signer_key over signed_*, and
 * sends it naming serial and reason: returns the status; *answer if not
 * NULL. The nonce is fresh unless nonce_in is given.
 */
static int
revoke_ask(const struct ca_fixture_host *h, EVP_PKEY *signer_key, const char *nonce_in,
    const char *serial, const char *reason, const char *signed_target,
    const char *signed_reason, json_t **answer)
{
	char *nonce, *sig, *body;
	int status;

	nonce = nonce_in != NULL ? strdup(nonce_in) : nonce_get(h->id);
	assert_non_null(nonce);
	sig = sign_revocation(signer_key, nonce, h->id, signed_target,
	    signed_reason);
	body = revoke_body(h->id, nonce, serial, reason, sig);
	status = post("/v1/revoke", body, answer);
	free(body);
	free(sig);
	free(nonce);
	return status;
}

struct revoked_find {
	const char	*serial;
	int		 reason;	/* -1: not revoked */
};

static int
revoked_find_fn(const char *serial, time_t when, int reason, void *arg)
{
	struct revoked_find *f = arg;

	(void)when;
	if (strcmp(serial, f->serial) == 0)
		f->reason = reason;
	return 0;
}

/* The CRL reason code serial is revoked with, or -1. */
static int
revoked_reason(const char *serial)
{
	struct revoked_find f = { serial, -1 };

	assert_int_equal(ca_db_revoked(fx.db, time(NULL), revoked_find_fn, &f),
	    0);
	return f.reason;
}

/* --- The handler --------------------------------------------------------- */

static void
test_revoke_own_serial(void **state)
{
	unsigned long long before = fx.api.metrics.revoked_bot;
	json_t *a = NULL;
	char *nonce;

	(void)state;
	assert_int_equal(revoked_reason(SERIAL_A1), -1);
	/* Lower case is accepted; what was signed is the serial as sent. */
	nonce = nonce_get(HOST_A);
	assert_int_equal(revoke_ask(&host_a, host_a.key, nonce,
	    "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "superseded",
	    "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "superseded", &a), 200);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(a, "revoked"), 0)), SERIAL_A1);
	assert_true(json_is_false(json_object_get(a, "already")));
	json_decref(a);
	assert_int_equal(revoked_reason(SERIAL_A1), 4);
	assert_int_equal(fx.api.metrics.revoked_bot, before + 1);
	/* The same body again: its nonce is spent. */
	assert_int_equal(revoke_ask(&host_a, host_a.key, nonce,
	    "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "superseded",
	    "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "superseded", NULL), 409);
	free(nonce);
	/* Asked again with a fresh nonce: already revoked, counted once. */
	assert_int_equal(revoke_ask(&host_a, host_a.key, NULL, SERIAL_A1,
	    "superseded", SERIAL_A1, "superseded", &a), 200);
	assert_true(json_is_true(json_object_get(a, "already")));
	json_decref(a);
	assert_int_equal(fx.api.metrics.revoked_bot, before + 1);
	assert_int_equal(revoked_reason(SERIAL_A1), 4);
}

static void
test_revoke_bad_signatures(void **state)
{
	char *nonce, *sig, *body, *other;
	uint8_t *raw = NULL;
	size_t raw_len = 0;

	(void)state;
	/* Signed by another host's key. */
	assert_int_equal(revoke_ask(&host_a, host_b.key, NULL, SERIAL_A2,
	    "superseded", SERIAL_A2, "superseded", NULL), 403);
	/* Signed over another serial, or another reason. */
	assert_int_equal(revoke_ask(&host_a, host_a.key, NULL, SERIAL_A2,
	    "superseded", SERIAL_A3, "superseded", NULL), 403);
	assert_int_equal(revoke_ask(&host_a, host_a.key, NULL, SERIAL_A2,
	    "keyCompromise", SERIAL_A2, "superseded", NULL), 403);
	/* Signed over the host rather than the serial. */
	assert_int_equal(revoke_ask(&host_a, host_a.key, NULL, SERIAL_A2,
	    "superseded", CA_REVOKE_HOST, "superseded", NULL), 403);
	/* Signed over another nonce of the host's own. */
	nonce = nonce_get(HOST_A);
	other = nonce_get(HOST_A);
	sig = sign_revocation(host_a.key, other, HOST_A, SERIAL_A2,
	    "superseded");
	body = revoke_body(HOST_A, nonce, SERIAL_A2, "superseded", sig);
	assert_int_equal(post("/v1/revoke", body, NULL), 403);
	free(body);
	free(sig);
	/* A refused signature spends the nonce all the same. */
	sig = sign_revocation(host_a.key, nonce, HOST_A, SERIAL_A2,
	    "superseded");
	body = revoke_body(HOST_A, nonce, SERIAL_A2, "superseded", sig);
	assert_int_equal(post("/v1/revoke", body, NULL), 409);
	free(body);
	free(sig);
	free(nonce);
	/* A bit flipped in R, and a signature cut short. */
	nonce = other;
	sig = sign_revocation(host_a.key, nonce, HOST_A, SERIAL_A2,
	    "superseded");
	assert_int_equal(base64_decode(sig, 4096, &raw,
	    &raw_len), 0);
	free(sig);
	raw[8] ^= 0x01;
	assert_int_equal(base64_encode(raw, raw_len, &sig), 0);
	body = revoke_body(HOST_A, nonce, SERIAL_A2, "superseded", sig);
	assert_int_equal(post("/v1/revoke", body, NULL), 403);
	free(body);
	free(sig);
	free(nonce);
	raw[8] ^= 0x01;
	nonce = nonce_get(HOST_A);
	assert_int_equal(base64_encode(raw, raw_len - 1, &sig), 0);
	body = revoke_body(HOST_A, nonce, SERIAL_A2, "superseded", sig);
	assert_int_equal(post("/v1/revoke", body, NULL), 403);
	free(body);
	free(sig);
	free(nonce);
	free(raw);
	assert_int_equal(revoked_reason(SERIAL_A2), -1);
}

static void
test_revoke_not_own(void **state)
{
	char *nonce;

	(void)state;
	/* Another host's certificate, signed properly by the asking host. */
	assert_int_equal(revoke_ask(&host_a, host_a.key, NULL, SERIAL_B1,
	    "keyCompromise", SERIAL_B1, "keyCompromise", NULL), 403);
	assert_int_equal(revoked_reason(SERIAL_B1), -1);
	/* A serial never issued. */
	assert_int_equal(revoke_ask(&host_a, host_a.key, NULL, "DEADBEEF",
	    "superseded", "DEADBEEF", "superseded", NULL), 404);
	/* Another host's nonce. */
	nonce = nonce_get(HOST_B);
	assert_int_equal(revoke_ask(&host_a, host_a.key, nonce, SERIAL_A2,
	    "superseded", SERIAL_A2, "superseded", NULL), 403);
	free(nonce);
	/* An unknown host, and a host id that is not one. */
	assert_int_equal(post("/v1/revoke", "{\"host_id\": \"00000000000000cc\","
	    " \"nonce\": \"AAAA\", \"serial\": \"A2\", \"reason\": "
	    "\"superseded\", \"signature\": \"AAAA\"}", NULL), 403);
	assert_int_equal(post("/v1/revoke", "{\"host_id\": \"../../etc\","
	    " \"nonce\": \"AAAA\", \"serial\": \"A2\", \"reason\": "
	    "\"superseded\", \"signature\": \"AAAA\"}", NULL), 403);
	assert_int_equal(revoked_reason(SERIAL_A2), -1);
}

static void
test_revoke_malformed(void **state)
{
	static const char *const bodies[] = {
		"",
		"not json",
		"[]",
		"{\"host_id\": \"" HOST_A "\"}",
		/* Neither serial nor host, and both. */
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"reason\": \"superseded\", \"signature\": \"AAAA\"}",
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"serial\": \"A2\", \"host\": true, "
		    "\"reason\": \"superseded\", \"signature\": \"AAAA\"}",
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"host\": false, "
		    "\"reason\": \"superseded\", \"signature\": \"AAAA\"}",
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"host\": 1, "
		    "\"reason\": \"superseded\", \"signature\": \"AAAA\"}",
		/* An unknown member, a duplicate one, a wrong type. */
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"serial\": \"A2\", \"reason\": \"superseded\", "
		    "\"signature\": \"AAAA\", \"extra\": 1}",
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"serial\": \"A2\", \"serial\": \"A3\", "
		    "\"reason\": \"superseded\", \"signature\": \"AAAA\"}",
		"{\"host_id\": \"" HOST_A "\", \"nonce\": 7, "
		    "\"serial\": \"A2\", \"reason\": \"superseded\", "
		    "\"signature\": \"AAAA\"}",
		/* Serials: not hex, empty, too long. */
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"serial\": \"A2G\", \"reason\": \"superseded\", "
		    "\"signature\": \"AAAA\"}",
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"serial\": \"\", \"reason\": \"superseded\", "
		    "\"signature\": \"AAAA\"}",
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"serial\": \"" SERIAL_A2 "123456789\", "
		    "\"reason\": \"superseded\", \"signature\": \"AAAA\"}",
		/* A reason RFC 5280 has but the API does not take. */
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"serial\": \"A2\", \"reason\": \"certificateHold\", "
		    "\"signature\": \"AAAA\"}",
		/* Not base64. */
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AA*A\", "
		    "\"serial\": \"A2\", \"reason\": \"superseded\", "
		    "\"signature\": \"AAAA\"}",
		"{\"host_id\": \"" HOST_A "\", \"nonce\": \"AAAA\", "
		    "\"serial\": \"A2\", \"reason\": \"superseded\", "
		    "\"signature\": \"AAA\"}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		if (post("/v1/revoke", bodies[i], NULL) != 400)
			fail_msg("body %zu is not refused with 400: %s", i,
			    bodies[i]);
	}
	assert_int_equal(revoked_reason(SERIAL_A2), -1);
}

/* Last: it revokes host A for good. */
static void
test_revoke_host(void **state)
{
	unsigned long long before = fx.api.metrics.revoked_host;
	json_t *a = NULL, *list;
	char body[64];
	size_t i;
	int seen2 = 0, seen3 = 0;

	(void)state;
	/* Signed over a serial, sent for the host: refused. */
	assert_int_equal(revoke_ask(&host_a, host_a.key, NULL, NULL,
	    "cessationOfOperation", SERIAL_A2, "cessationOfOperation", NULL),
	    403);
	assert_int_equal(revoke_ask(&host_a, host_a.key, NULL, NULL,
	    "cessationOfOperation", CA_REVOKE_HOST, "cessationOfOperation",
	    &a), 200);
	/* What was still valid: A2 and A3 (A1 was revoked before). */
	list = json_object_get(a, "revoked");
	assert_int_equal(json_array_size(list), 2);
	for (i = 0; i < json_array_size(list); i++) {
		seen2 |= strcmp(json_string_value(json_array_get(list, i)),
		    SERIAL_A2) == 0;
		seen3 |= strcmp(json_string_value(json_array_get(list, i)),
		    SERIAL_A3) == 0;
	}
	assert_true(seen2 && seen3);
	json_decref(a);
	assert_int_equal(fx.api.metrics.revoked_host, before + 1);
	assert_int_equal(revoked_reason(SERIAL_A2), 5);
	assert_int_equal(revoked_reason(SERIAL_A3), 5);
	assert_int_equal(revoked_reason(SERIAL_A1), 4);	/* kept */
	assert_int_equal(revoked_reason(SERIAL_B1), -1);	/* other host */
	/* A revoked host gets no nonce, so can ask nothing more. */
	snprintf(body, sizeof(body), "{\"host_id\": \"%s\"}", HOST_A);
	assert_int_equal(post("/v1/nonce", body, NULL), 403);
	/* Host B is unaffected. */
	free(nonce_get(HOST_B));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tbs_layout),
		cmocka_unit_test(test_tbs_fields),
		cmocka_unit_test(test_tbs_too_large),
		cmocka_unit_test(test_reason_codes),
		cmocka_unit_test(test_revoke_own_serial),
		cmocka_unit_test(test_revoke_bad_signatures),
		cmocka_unit_test(test_revoke_not_own),
		cmocka_unit_test(test_revoke_malformed),
		cmocka_unit_test(test_revoke_host),
	};

	return cmocka_run_group_tests(tests, ca_setup, ca_teardown);
}
