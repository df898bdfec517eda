/*
 * Unit tests for lib/verify.c: a software CA issues bot certificates like
 * botid-ca's (SPIFFE URI SAN, attestation extension; token-key ones with
 * the token EKU and a grant), software keys sign tokens, and the verifier
 * must accept the good ones and refuse alg none, HS256, algorithm
 * confusion, expiry, wrong audience, a changed payload, another bot's
 * signature, a foreign CA, missing scopes, non-TPM keys when TPM is
 * required, a token signed by a bot's general signing key, scopes beyond
 * the grant and a lifetime beyond its maximum; plus truncation and byte
 * flips of a good token.
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

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/botid.h"
#include "lib/certid.h"
#include "lib/grant.h"
#include "lib/jws.h"
#include "lib/sig.h"

#define TD	"spiffe://test.botid/host/0123/bot/"
#define ISSUER	"spiffe://test.botid"
#define GRANT_TTL	600

struct bot {
	EVP_PKEY		*key;
	uint8_t			*der;
	size_t			 der_len;
	struct botid_blob	 chain[2];
	char			 spiffe[128];
};

static EVP_PKEY *ca_key, *other_ca_key;
static X509 *ca_cert, *other_ca_cert;
static struct bot bot_a, bot_b, bot_r, bot_old, bot_foreign, bot_plain;
/* Leaves are token-key certificates unless this is 0 (bot_plain). */
static int leaf_token = 1;

/* The token EKU and grant botid-ca gives a token key. */
static void
add_token_purpose(X509 *x, X509 *issuer)
{
	char *scopes[] = { "inventory:read", "inventory:write" };
	struct botid_grant g = { ISSUER, GRANT_TTL, scopes, 2 };
	ASN1_OBJECT *oid = OBJ_txt2obj(BOTID_OID_TOKEN_GRANT, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	uint8_t *der;
	size_t len;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &ctx,
	    NID_ext_key_usage, "critical," BOTID_OID_TOKEN_EKU));
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	assert_int_equal(grant_encode(&g, &der, &len), 0);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, (int)len), 1);
	assert_non_null(ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os));
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	free(der);
}
static char bundle[64] = "/tmp/test-verify-bundle.XXXXXX";
static uint8_t *ca_der;
static size_t ca_der_len;
static time_t now;

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value));
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
    const char *spiffe, const char *attestation, long from, long to)
{
	static long serial = 1;
	X509 *x;
	X509_NAME *name;

	assert_non_null(x = X509_new());
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_time_adj_ex(X509_getm_notBefore(x), 0, from, &now);
	X509_time_adj_ex(X509_getm_notAfter(x), 0, to, &now);
	assert_non_null(name = X509_NAME_new());
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name), 1);
	X509_NAME_free(name);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (issuer == NULL) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		char san[160];

		snprintf(san, sizeof(san), "URI:%s", spiffe);
		add_ext(x, issuer, NID_subject_alt_name, san);
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
		if (leaf_token)
			add_token_purpose(x, issuer);
		else
			add_ext(x, issuer, NID_ext_key_usage,
			    "clientAuth,serverAuth");
	}
	if (attestation != NULL) {
		ASN1_OBJECT *oid = OBJ_txt2obj(BOTID_OID_ATTESTATION, 1);
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
		unsigned char v[16];
		size_t n = strlen(attestation);
		X509_EXTENSION *ext;

		v[0] = 0x0c;	/* UTF8String */
		v[1] = (unsigned char)n;
		memcpy(v + 2, attestation, n);
		assert_int_equal(ASN1_OCTET_STRING_set(os, v, (int)n + 2), 1);
		assert_non_null(ext = X509_EXTENSION_create_by_OBJ(NULL, oid,
		    0, os));
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
		ASN1_OCTET_STRING_free(os);
		ASN1_OBJECT_free(oid);
	}
	assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key,
	    EVP_sha256()) > 0);
	return x;
}

static uint8_t *
to_der(X509 *x, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	assert_true(n > 0);
	*len = (size_t)n;
	return der;
}

static void
make_bot(struct bot *b, const char *name, const char *keyspec,
    const char *attestation, X509 *issuer, EVP_PKEY *issuer_key,
    long from, long to)
{
	X509 *x;

	if (strcmp(keyspec, "rsa") == 0)
		b->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		b->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", keyspec);
	assert_non_null(b->key);
	snprintf(b->spiffe, sizeof(b->spiffe), TD "%s", name);
	x = make_cert(b->key, name, issuer, issuer_key, b->spiffe,
	    attestation, from, to);
	b->der = to_der(x, &b->der_len);
	X509_free(x);
	b->chain[0].data = b->der;
	b->chain[0].len = b->der_len;
	b->chain[1].data = ca_der;
	b->chain[1].len = ca_der_len;
}

static int
setup(void **state)
{
	FILE *f;
	int fd;

	(void)state;
	now = time(NULL);
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	other_ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca_cert = make_cert(ca_key, "test CA", NULL, NULL, NULL, NULL,
	    -3600, 86400);
	other_ca_cert = make_cert(other_ca_key, "test CA", NULL, NULL, NULL,
	    NULL, -3600, 86400);
	ca_der = to_der(ca_cert, &ca_der_len);
	make_bot(&bot_a, "a", "P-256", "tpm", ca_cert, ca_key, -60, 3600);
	make_bot(&bot_b, "b", "P-384", "pkcs11", ca_cert, ca_key, -60, 3600);
	make_bot(&bot_r, "r", "rsa", "pkcs11", ca_cert, ca_key, -60, 3600);
	make_bot(&bot_old, "old", "P-256", "tpm", ca_cert, ca_key, -7200,
	    -600);
	make_bot(&bot_foreign, "a", "P-256", "tpm", other_ca_cert,
	    other_ca_key, -60, 3600);
	/* A bot's general signing key, as botid-ca certifies it. */
	leaf_token = 0;
	make_bot(&bot_plain, "a", "P-256", "tpm", ca_cert, ca_key, -60, 3600);
	leaf_token = 1;
	assert_true((fd = mkstemp(bundle)) != -1);
	assert_non_null(f = fdopen(fd, "w"));
	assert_int_equal(PEM_write_X509(f, ca_cert), 1);
	assert_int_equal(fclose(f), 0);
	return 0;
}

static void
free_bot(struct bot *b)
{
	EVP_PKEY_free(b->key);
	OPENSSL_free(b->der);
}

static int
teardown(void **state)
{
	(void)state;
	unlink(bundle);
	free_bot(&bot_a);
	free_bot(&bot_b);
	free_bot(&bot_r);
	free_bot(&bot_old);
	free_bot(&bot_foreign);
	free_bot(&bot_plain);
	OPENSSL_free(ca_der);
	X509_free(ca_cert);
	X509_free(other_ca_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_ca_key);
	return 0;
}

/* Signs input with b's key in JOSE form for alg. */
static void
sign_jose(const struct bot *b, enum jws_alg alg, const char *input,
    uint8_t **sig, size_t *sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *h = alg == JWS_ALG_ES384 ? EVP_sha384() : EVP_sha256();
	uint8_t der[1024];
	size_t der_len = sizeof(der);

	assert_int_equal(EVP_DigestSignInit(md, &pctx, h, NULL, b->key), 1);
	if (alg == JWS_ALG_PS256) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
		    RSA_PSS_SALTLEN_DIGEST), 1);
	}
	assert_int_equal(EVP_DigestSign(md, der, &der_len,
	    (const unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(md);
	if (alg == JWS_ALG_ES256 || alg == JWS_ALG_ES384) {
		assert_int_equal(sig_ecdsa_der_to_raw(der, der_len,
		    alg == JWS_ALG_ES256 ? 32 : 48, sig, sig_len), 0);
		return;
	}
	assert_non_null(*sig = malloc(der_len));
	memcpy(*sig, der, der_len);
	*sig_len = der_len;
}

/*
 * The claims templates below are data: fill them in one place. glibc wants
 * every argument up to the last one a template names (%1$s, %2$lld, %3$lld).
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static char *
fill_claims(const char *fmt, const struct bot *b, long exp_in)
{
	char *claims;

	assert_true(asprintf(&claims, fmt, b->spiffe, (long long)now,
	    (long long)(now + exp_in)) > 0);
	return claims;
}
#pragma GCC diagnostic pop

/*
 * A token from b with the given alg; the claims are printf'd with the
 * SPIFFE ID (%1$s) and the times iat (%2$lld) and exp (%3$lld).
 */
static char *
make_token(const struct bot *b, enum jws_alg alg, const char *claims_fmt,
    long exp_in)
{
	char *header, *claims, *input, *token;
	uint8_t *sig;
	size_t sig_len;

	assert_int_equal(jws_header_build(alg, "JWT", b->chain, 2, &header),
	    0);
	claims = fill_claims(claims_fmt, b, exp_in);
	assert_int_equal(jws_signing_input(header, (const uint8_t *)claims,
	    strlen(claims), &input), 0);
	sign_jose(b, alg, input, &sig, &sig_len);
	assert_int_equal(jws_finish(input, 0, sig, sig_len, &token), 0);
	free(sig);
	free(input);
	free(claims);
	free(header);
	return token;
}

static const char good_claims[] =
    "{\"iss\":\"" ISSUER "\",\"sub\":\"%1$s\",\"aud\":\"inventory\","
    "\"iat\":%2$lld,\"nbf\":%2$lld,\"exp\":%3$lld,\"jti\":\"x\","
    "\"scope\":\"inventory:read inventory:write\"}";

static void
opts_init(struct botid_verify_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->bundle = bundle;
	o->audience = "inventory";
	o->leeway = 60;
}

/* Expects r from verifying token, and a reason containing why. */
static void
expect(const struct botid_verify_opts *o, const char *token, int r,
    const char *why)
{
	struct botid_verified *v = NULL;
	char err[256] = "";

	if (botid_verify_jwt(o, token, &v, err, sizeof(err)) != r)
		fail_msg("expected %d, reason '%s'", r, err);
	if (r == 0) {
		assert_non_null(v);
		assert_non_null(v->claims);
	} else
		assert_null(v);
	if (why != NULL && strstr(err, why) == NULL)
		fail_msg("reason '%s' lacks '%s'", err, why);
	botid_verified_free(v);
}

static void
test_good(void **state)
{
	struct botid_verify_opts o;
	struct botid_verified *v = NULL;
	const char *scopes[] = { "inventory:write", "inventory:read" };
	char err[256], *t;

	(void)state;
	opts_init(&o);
	t = make_token(&bot_a, JWS_ALG_ES256, good_claims, 300);
	o.scopes = scopes;
	o.nscopes = 2;
	o.require_tpm = 1;
	o.spiffe_id = bot_a.spiffe;
	assert_int_equal(botid_verify_jwt(&o, t, &v, err, sizeof(err)), 0);
	assert_string_equal(v->spiffe_id, TD "a");
	assert_string_equal(v->attestation, "tpm");
	assert_string_equal(v->alg, "ES256");
	assert_non_null(strstr(v->claims, "\"aud\":\"inventory\""));
	botid_verified_free(v);
	free(t);

	/* ES384, RS256 and PS256 with keys of their kind. */
	t = make_token(&bot_b, JWS_ALG_ES384, good_claims, 300);
	expect(&o, t, BOTID_ERR_DENIED, "not attested as TPM");
	o.require_tpm = 0;
	o.spiffe_id = NULL;
	expect(&o, t, 0, NULL);
	free(t);
	t = make_token(&bot_r, JWS_ALG_RS256, good_claims, 300);
	expect(&o, t, 0, NULL);
	free(t);
	t = make_token(&bot_r, JWS_ALG_PS256, good_claims, 300);
	expect(&o, t, 0, NULL);
	free(t);
	/* aud as an array containing ours; no scope needed, none given. */
	o.nscopes = 0;
	t = make_token(&bot_a, JWS_ALG_ES256,
	    "{\"iss\":\"" ISSUER "\",\"sub\":\"%1$s\",\"aud\":[\"x\",\"inventory\"],"
	    "\"iat\":%2$lld,\"exp\":%3$lld}", 300);
	expect(&o, t, 0, NULL);
	free(t);
}

static void
test_refusals(void **state)
{
	struct botid_verify_opts o;
	const char *scopes[] = { "admin" };
	char *t, *u, *dot;

	(void)state;
	opts_init(&o);
	t = make_token(&bot_a, JWS_ALG_ES256, good_claims, 300);

	o.audience = "billing";
	expect(&o, t, BOTID_ERR_DENIED, "not for audience billing");
	opts_init(&o);
	o.scopes = scopes;
	o.nscopes = 1;
	expect(&o, t, BOTID_ERR_DENIED, "lacks scope admin");
	opts_init(&o);
	o.spiffe_id = TD "b";
	expect(&o, t, BOTID_ERR_DENIED, "not " TD "b");
	opts_init(&o);
	/* Later than exp + leeway, and earlier than nbf - leeway. */
	o.now = now + 300 + 61;
	expect(&o, t, BOTID_ERR_DENIED, "expired");
	o.now = now + 300 + 59;
	expect(&o, t, 0, NULL);
	o.now = now - 61;
	expect(&o, t, BOTID_ERR_DENIED, "not valid before");
	opts_init(&o);

	/* Changed payload: one claim byte. */
	assert_non_null(u = strdup(t));
	dot = strchr(u, '.');
	dot[5] = dot[5] == 'A' ? 'B' : 'A';
	expect(&o, u, BOTID_ERR_DENIED, NULL);
	free(u);
	free(t);

	/* Expired token, no leeway left. */
	t = make_token(&bot_a, JWS_ALG_ES256, good_claims, -61);
	expect(&o, t, BOTID_ERR_DENIED, "expired");
	free(t);
	/* iss is not the certificate's. */
	t = make_token(&bot_a, JWS_ALG_ES256,
	    "{\"iss\":\"spiffe://x/y\",\"sub\":\"%1$s\",\"aud\":\"inventory\","
	    "\"iat\":%2$lld,\"exp\":%3$lld}", 300);
	expect(&o, t, BOTID_ERR_DENIED, "iss is not the issuer");
	free(t);
	/* exp missing, or not an integer. */
	t = make_token(&bot_a, JWS_ALG_ES256,
	    "{\"iss\":\"" ISSUER "\",\"sub\":\"%1$s\",\"aud\":\"inventory\"}", 0);
	expect(&o, t, BOTID_ERR_DENIED, "no exp");
	free(t);
	t = make_token(&bot_a, JWS_ALG_ES256,
	    "{\"iss\":\"" ISSUER "\",\"sub\":\"%1$s\",\"aud\":\"inventory\","
	    "\"exp\":1e99}", 0);
	expect(&o, t, BOTID_ERR_DENIED, "whole number");
	free(t);
	/* Duplicate claim keys. */
	t = make_token(&bot_a, JWS_ALG_ES256,
	    "{\"iss\":\"" ISSUER "\",\"sub\":\"%1$s\",\"aud\":\"x\","
	    "\"aud\":\"inventory\",\"iat\":%2$lld,\"exp\":%3$lld}", 300);
	expect(&o, t, BOTID_ERR_INVALID, "not JSON");
	free(t);
	/* A certificate that expired, and one from another CA. */
	t = make_token(&bot_old, JWS_ALG_ES256, good_claims, 300);
	expect(&o, t, BOTID_ERR_DENIED, "expired");
	free(t);
	t = make_token(&bot_foreign, JWS_ALG_ES256, good_claims, 300);
	expect(&o, t, BOTID_ERR_DENIED, "does not verify to the bundle");
	free(t);
}

/* Header and claims of one bot with the signature of another. */
static void
test_other_bots_signature(void **state)
{
	struct botid_verify_opts o;
	char *a, *b, *spliced;

	(void)state;
	opts_init(&o);
	a = make_token(&bot_a, JWS_ALG_ES256, good_claims, 300);
	b = make_token(&bot_foreign, JWS_ALG_ES256, good_claims, 300);
	assert_true(asprintf(&spliced, "%.*s%s", (int)(strrchr(a, '.') - a),
	    a, strrchr(b, '.')) > 0);
	expect(&o, spliced, BOTID_ERR_DENIED, "signature does not verify");
	free(spliced);
	free(a);
	free(b);
}

static void
test_algorithms(void **state)
{
	struct botid_verify_opts o;
	char *header, *t, *input, *claims;
	uint8_t *sig;
	size_t sig_len;

	(void)state;
	opts_init(&o);
	claims = fill_claims(good_claims, &bot_a, 300);
	/* {"alg":"none"} with and without a signature. */
	assert_true(asprintf(&t, "eyJhbGciOiJub25lIn0.%s.", "e30") > 0);
	expect(&o, t, BOTID_ERR_UNSUPPORTED, "alg none");
	free(t);
	/* HS256 (RFC 7519 3.1's token). */
	expect(&o, "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiL"
	    "A0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb"
	    "290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	    BOTID_ERR_UNSUPPORTED, "HS256");
	/* RS256 claimed over an EC key, ES384 over P-256, ES256 over RSA. */
	assert_int_equal(jws_header_build(JWS_ALG_RS256, "JWT", bot_a.chain, 2,
	    &header), 0);
	assert_int_equal(jws_signing_input(header, (const uint8_t *)claims,
	    strlen(claims), &input), 0);
	sign_jose(&bot_a, JWS_ALG_ES256, input, &sig, &sig_len);
	assert_int_equal(jws_finish(input, 0, sig, sig_len, &t), 0);
	expect(&o, t, BOTID_ERR_DENIED, "does not match");
	free(t);
	free(sig);
	free(input);
	free(header);
	assert_int_equal(jws_header_build(JWS_ALG_ES384, "JWT", bot_a.chain, 2,
	    &header), 0);
	assert_int_equal(jws_signing_input(header, (const uint8_t *)claims,
	    strlen(claims), &input), 0);
	sign_jose(&bot_a, JWS_ALG_ES256, input, &sig, &sig_len);
	assert_int_equal(jws_finish(input, 0, sig, sig_len, &t), 0);
	expect(&o, t, BOTID_ERR_DENIED, "does not match");
	free(t);
	free(sig);
	free(input);
	free(header);
	assert_int_equal(jws_header_build(JWS_ALG_ES256, "JWT", bot_r.chain, 2,
	    &header), 0);
	assert_int_equal(jws_signing_input(header, (const uint8_t *)claims,
	    strlen(claims), &input), 0);
	sign_jose(&bot_a, JWS_ALG_ES256, input, &sig, &sig_len);
	assert_int_equal(jws_finish(input, 0, sig, sig_len, &t), 0);
	expect(&o, t, BOTID_ERR_DENIED, "does not match");
	free(t);
	free(sig);
	free(input);
	free(header);
	free(claims);
	/* A kid naming another certificate. */
	assert_int_equal(jws_header_build(JWS_ALG_ES256, "JWT", bot_a.chain, 2,
	    &header), 0);
	{
		char *k = strstr(header, "\"kid\":\"") + 7;

		*k = *k == 'A' ? 'B' : 'A';
	}
	claims = fill_claims(good_claims, &bot_a, 300);
	assert_int_equal(jws_signing_input(header, (const uint8_t *)claims,
	    strlen(claims), &input), 0);
	sign_jose(&bot_a, JWS_ALG_ES256, input, &sig, &sig_len);
	assert_int_equal(jws_finish(input, 0, sig, sig_len, &t), 0);
	expect(&o, t, BOTID_ERR_DENIED, "kid is not the JWK thumbprint");
	free(t);
	free(sig);
	free(input);
	free(header);
	free(claims);
	/* No x5c: nothing to trust. */
	expect(&o, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", BOTID_ERR_INVALID,
	    "no certificate chain");
}

/*
 * Issue 19's forgery: claims built by hand (a scope never granted, exp 30
 * days ahead) signed by the bot's general signing key; and the grant's
 * two bounds on a token-key certificate.
 */
static void
test_grant(void **state)
{
	struct botid_verify_opts o;
	char *t;
	static const char forged[] =
	    "{\"iss\":\"" ISSUER "\",\"sub\":\"%1$s\",\"aud\":\"inventory\","
	    "\"iat\":%2$lld,\"exp\":%3$lld,"
	    "\"scope\":\"inventory:read inventory:admin\"}";

	(void)state;
	opts_init(&o);
	/* Signed by the general signing key: refused whatever it says. */
	t = make_token(&bot_plain, JWS_ALG_ES256, forged, 30L * 86400);
	expect(&o, t, BOTID_ERR_DENIED, "not signed by a token key");
	free(t);
	t = make_token(&bot_plain, JWS_ALG_ES256, good_claims, 300);
	expect(&o, t, BOTID_ERR_DENIED, "not signed by a token key");
	free(t);
	/* A scope beyond the grant, even from a token key. */
	t = make_token(&bot_a, JWS_ALG_ES256, forged, 300);
	expect(&o, t, BOTID_ERR_DENIED,
	    "token scope inventory:admin exceeds the certificate's grant");
	free(t);
	/* exp - iat: the grant's maximum passes, one second more does not. */
	t = make_token(&bot_a, JWS_ALG_ES256, good_claims, GRANT_TTL);
	expect(&o, t, 0, NULL);
	free(t);
	t = make_token(&bot_a, JWS_ALG_ES256, good_claims, GRANT_TTL + 1);
	expect(&o, t, BOTID_ERR_DENIED, "exceeds the grant's maximum 600 s");
	free(t);
	t = make_token(&bot_a, JWS_ALG_ES256, good_claims, 30L * 86400);
	expect(&o, t, BOTID_ERR_DENIED, "exceeds the grant's maximum");
	free(t);
	/* Without iat the lifetime cannot be bounded. */
	t = make_token(&bot_a, JWS_ALG_ES256,
	    "{\"iss\":\"" ISSUER "\",\"sub\":\"%1$s\",\"aud\":\"inventory\","
	    "\"nbf\":%2$lld,\"exp\":%3$lld}", 300);
	expect(&o, t, BOTID_ERR_DENIED, "no iat");
	free(t);
	/* The issuer the relying party expects. */
	t = make_token(&bot_a, JWS_ALG_ES256, good_claims, 300);
	o.issuer = ISSUER;
	expect(&o, t, 0, NULL);
	o.issuer = "https://other.example";
	expect(&o, t, BOTID_ERR_DENIED, "iss is not the issuer");
	free(t);
}

/* No truncation or byte flip of a good token verifies, or crashes. */
static void
test_truncate_and_flip(void **state)
{
	struct botid_verify_opts o;
	struct botid_verified *v;
	char *t, *copy, err[256];
	size_t len, i;

	(void)state;
	opts_init(&o);
	t = make_token(&bot_a, JWS_ALG_ES256, good_claims, 300);
	len = strlen(t);
	for (i = 0; i < len; i++) {
		assert_non_null(copy = strndup(t, i));
		assert_int_not_equal(botid_verify_jwt(&o, copy, &v, err,
		    sizeof(err)), 0);
		assert_null(v);
		free(copy);
	}
	assert_non_null(copy = strdup(t));
	/* Every 7th position keeps the loop fast enough for valgrind. */
	for (i = 0; i < len; i += 7) {
		copy[i] ^= 0x01;
		if (botid_verify_jwt(&o, copy, &v, err, sizeof(err)) == 0) {
			/*
			 * Flipping the low bit of a base64url character's
			 * last unused bits is refused as non-canonical; any
			 * acceptance must be of the very same bytes.
			 */
			fail_msg("flipped token at %zu verified", i);
		}
		copy[i] ^= 0x01;
	}
	free(copy);
	free(t);
}

static void
test_messages_and_chains(void **state)
{
	struct botid_verify_opts o;
	struct botid_verified *v = NULL;
	static const char msg[] = "restock 12 widgets\n";
	char *header, *input, *jws, err[256];
	uint8_t *sig;
	size_t sig_len;

	(void)state;
	opts_init(&o);
	/* A token key signs only tokens: its "message" is refused. */
	assert_int_equal(jws_header_build(JWS_ALG_ES256, NULL, bot_a.chain, 2,
	    &header), 0);
	assert_int_equal(jws_signing_input(header, (const uint8_t *)msg,
	    strlen(msg), &input), 0);
	sign_jose(&bot_a, JWS_ALG_ES256, input, &sig, &sig_len);
	assert_int_equal(jws_finish(input, 1, sig, sig_len, &jws), 0);
	assert_int_equal(botid_verify_msg(&o, msg, strlen(msg), jws, &v, err,
	    sizeof(err)), BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "token key"));
	free(jws);
	free(sig);
	free(input);
	free(header);
	/* A signing key's message. */
	assert_int_equal(jws_header_build(JWS_ALG_ES256, NULL, bot_plain.chain,
	    2, &header), 0);
	assert_int_equal(jws_signing_input(header, (const uint8_t *)msg,
	    strlen(msg), &input), 0);
	sign_jose(&bot_plain, JWS_ALG_ES256, input, &sig, &sig_len);
	assert_int_equal(jws_finish(input, 1, sig, sig_len, &jws), 0);
	assert_int_equal(botid_verify_msg(&o, msg, strlen(msg), jws, &v, err,
	    sizeof(err)), 0);
	assert_string_equal(v->spiffe_id, bot_plain.spiffe);
	assert_null(v->claims);
	botid_verified_free(v);
	assert_int_equal(botid_verify_msg(&o, msg, strlen(msg) - 1, jws, &v,
	    err, sizeof(err)), BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "signature"));
	free(jws);
	/* An attached payload is not a detached message. */
	assert_int_equal(jws_finish(input, 0, sig, sig_len, &jws), 0);
	assert_int_equal(botid_verify_msg(&o, msg, strlen(msg), jws, &v, err,
	    sizeof(err)), BOTID_ERR_INVALID);
	free(jws);
	free(sig);
	free(input);
	free(header);

	assert_int_equal(botid_verify_cert(&o, bot_b.chain, 2, &v, err,
	    sizeof(err)), 0);
	assert_string_equal(v->attestation, "pkcs11");
	botid_verified_free(v);
	o.require_tpm = 1;
	assert_int_equal(botid_verify_cert(&o, bot_b.chain, 2, &v, err,
	    sizeof(err)), BOTID_ERR_DENIED);
	assert_int_equal(botid_verify_cert(&o, bot_old.chain, 1, &v, err,
	    sizeof(err)), BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "expired"));
	o.bundle = "/nonexistent/bundle.pem";
	assert_int_equal(botid_verify_cert(&o, bot_a.chain, 2, &v, err,
	    sizeof(err)), BOTID_ERR_IO);
	assert_int_equal(botid_verify_cert(&o, bot_a.chain, 0, &v, err,
	    sizeof(err)), BOTID_ERR_INVALID);
}

/*
 * Writes a CRL signed by the test CA, from now + last to now + next (no
 * nextUpdate when next is 0), listing bot a's certificate when revoke_a.
 */
static void
write_crl(const char *path, long last, long next, int revoke_a)
{
	/*
	 * Times from the clock now, not from the test's start: under
	 * memcheck the tests before this one take minutes, and a CRL 30 s
	 * past its nextUpdate by the start's clock is much older by the
	 * verifier's.
	 */
	time_t at = time(NULL);
	X509_CRL *crl = X509_CRL_new();
	X509_REVOKED *rv;
	ASN1_TIME *t = ASN1_TIME_set(NULL, at + last);
	const unsigned char *p = bot_a.der;
	X509 *a = d2i_X509(NULL, &p, (long)bot_a.der_len);
	FILE *f;

	assert_non_null(crl);
	assert_non_null(t);
	assert_non_null(a);
	assert_int_equal(X509_CRL_set_version(crl, 1), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl,
	    X509_get_subject_name(ca_cert)), 1);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	if (next != 0) {
		assert_non_null(ASN1_TIME_set(t, at + next));
		assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	}
	if (revoke_a) {
		assert_non_null(rv = X509_REVOKED_new());
		assert_int_equal(X509_REVOKED_set_serialNumber(rv,
		    X509_get_serialNumber(a)), 1);
		assert_int_equal(X509_REVOKED_set_revocationDate(rv, t), 1);
		assert_int_equal(X509_CRL_add0_revoked(crl, rv), 1);
	}
	assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	assert_int_equal(fclose(f), 0);
	X509_free(a);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

/*
 * --crl: a fresh CRL that lists the certificate refuses it, one that does
 * not accepts it; a CRL whose nextUpdate passed (beyond the leeway), one
 * without nextUpdate and one from the future are refused whatever they list
 * (issue 21: OpenSSL's own CRL time check was off with the certificate one).
 */
static void
test_crl_freshness(void **state)
{
	struct botid_verify_opts o;
	struct botid_verified *v = NULL;
	char path[64] = "/tmp/test-verify-crl.XXXXXX", err[256];
	int fd;

	(void)state;
	assert_true((fd = mkstemp(path)) != -1);
	close(fd);
	opts_init(&o);
	o.crl = path;
	write_crl(path, -60, 3600, 0);
	assert_int_equal(botid_verify_cert(&o, bot_a.chain, 2, &v, err,
	    sizeof(err)), 0);
	botid_verified_free(v);
	v = NULL;
	write_crl(path, -60, 3600, 1);
	assert_int_equal(botid_verify_cert(&o, bot_a.chain, 2, &v, err,
	    sizeof(err)), BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "revoked"));
	/* Stale: nextUpdate 2 minutes ago, leeway 60 s. */
	write_crl(path, -7200, -120, 0);
	assert_int_equal(botid_verify_cert(&o, bot_a.chain, 2, &v, err,
	    sizeof(err)), BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "stale"));
	/* Within the leeway it is still good. */
	write_crl(path, -7200, -30, 0);
	assert_int_equal(botid_verify_cert(&o, bot_a.chain, 2, &v, err,
	    sizeof(err)), 0);
	botid_verified_free(v);
	v = NULL;
	write_crl(path, -60, 0, 0);
	assert_int_equal(botid_verify_cert(&o, bot_a.chain, 2, &v, err,
	    sizeof(err)), BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "no nextUpdate"));
	write_crl(path, 600, 3600, 0);
	assert_int_equal(botid_verify_cert(&o, bot_a.chain, 2, &v, err,
	    sizeof(err)), BOTID_ERR_DENIED);
	assert_non_null(strstr(err, "not yet valid"));
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_other_bots_signature),
		cmocka_unit_test(test_algorithms),
		cmocka_unit_test(test_grant),
		cmocka_unit_test(test_truncate_and_flip),
		cmocka_unit_test(test_messages_and_chains),
		cmocka_unit_test(test_crl_freshness),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
