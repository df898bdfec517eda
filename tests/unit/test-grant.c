/*
 * Unit tests for lib/grant.c: the grant extension's DER round trip, its
 * limits, truncation at every offset and byte flips; what makes a
 * certificate a token-key certificate (the token EKU alone, one grant);
 * and RFC 7638's own JWK thumbprint vector.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/error.h"
#include "lib/grant.h"
#include "lib/jws.h"

static char *two[] = { "inventory:read", "inventory:write" };

static void
test_round_trip(void **state)
{
	struct botid_grant g = { "spiffe://test.botid", 120, two, 2 }, d;
	uint8_t *der;
	size_t len, i;

	(void)state;
	assert_int_equal(grant_encode(&g, &der, &len), 0);
	assert_int_equal(grant_decode(der, len, &d), 0);
	assert_string_equal(d.issuer, "spiffe://test.botid");
	assert_int_equal(d.max_ttl, 120);
	assert_int_equal(d.nscopes, 2);
	assert_string_equal(d.scopes[1], "inventory:write");
	assert_true(grant_has_scope(&d, "inventory:read"));
	assert_false(grant_has_scope(&d, "inventory:admin"));
	assert_false(grant_has_scope(&d, "inventory"));
	grant_free(&d);
	grant_free(&d);		/* a freed grant frees again */
	/* Every truncation fails; no byte flip crashes or leaks. */
	for (i = 0; i < len; i++)
		assert_int_not_equal(grant_decode(der, i, &d), 0);
	for (i = 0; i < len * 8; i++) {
		der[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (grant_decode(der, len, &d) == 0) {
			assert_true(d.max_ttl >= 1);
			assert_true(d.nscopes >= 1);
			grant_free(&d);
		}
		der[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	/* Trailing bytes are refused. */
	der = realloc(der, len + 1);
	der[len] = 0;
	assert_int_equal(grant_decode(der, len + 1, &d), BOTID_ERR_INVALID);
	free(der);
}

static void
test_limits(void **state)
{
	char *bad[] = { "inventory read" };
	char *none[] = { NULL };
	struct botid_grant g = { "spiffe://test.botid", 120, two, 2 };
	uint8_t *der;
	size_t len;

	(void)state;
	g.max_ttl = 0;
	assert_int_equal(grant_encode(&g, &der, &len), BOTID_ERR_INVALID);
	g.max_ttl = 86401;
	assert_int_equal(grant_encode(&g, &der, &len), BOTID_ERR_INVALID);
	g.max_ttl = 120;
	g.nscopes = 0;
	g.scopes = none;
	assert_int_equal(grant_encode(&g, &der, &len), BOTID_ERR_INVALID);
	g.scopes = bad;
	g.nscopes = 1;
	assert_int_equal(grant_encode(&g, &der, &len), BOTID_ERR_INVALID);
	g.scopes = two;
	g.nscopes = 2;
	g.issuer = "has space";
	assert_int_equal(grant_encode(&g, &der, &len), BOTID_ERR_INVALID);
	g.issuer = "";
	assert_int_equal(grant_encode(&g, &der, &len), BOTID_ERR_INVALID);
	assert_null(der);
}

/* A certificate with the given EKU value (NULL: none) and n grants. */
static X509 *
cert_with(const char *eku, int ngrants)
{
	struct botid_grant g = { "spiffe://test.botid", 120, two, 2 };
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	ASN1_OBJECT *oid = OBJ_txt2obj(BOTID_OID_TOKEN_GRANT, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	uint8_t *der;
	size_t len;
	int i;

	assert_non_null(pk);
	assert_int_equal(X509_set_pubkey(x, pk), 1);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (eku != NULL) {
		assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &ctx,
		    NID_ext_key_usage, eku));
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	assert_int_equal(grant_encode(&g, &der, &len), 0);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, (int)len), 1);
	for (i = 0; i < ngrants; i++) {
		assert_non_null(ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0,
		    os));
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	free(der);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	EVP_PKEY_free(pk);
	return x;
}

static void
test_from_cert(void **state)
{
	struct botid_grant g;
	X509 *x;

	(void)state;
	x = cert_with("critical," BOTID_OID_TOKEN_EKU, 1);
	assert_int_equal(grant_from_cert(x, &g), 0);
	assert_int_equal(g.max_ttl, 120);
	grant_free(&g);
	X509_free(x);
	/* A signing key's certificate: TLS usages, no token EKU. */
	x = cert_with("clientAuth,serverAuth", 1);
	assert_int_equal(grant_from_cert(x, &g), BOTID_ERR_DENIED);
	X509_free(x);
	/* The token EKU beside a TLS usage is not a token key. */
	x = cert_with(BOTID_OID_TOKEN_EKU ",clientAuth", 1);
	assert_int_equal(grant_from_cert(x, &g), BOTID_ERR_DENIED);
	X509_free(x);
	x = cert_with("anyExtendedKeyUsage," BOTID_OID_TOKEN_EKU, 1);
	assert_int_equal(grant_from_cert(x, &g), BOTID_ERR_DENIED);
	X509_free(x);
	/* No EKU, no grant, two grants. */
	x = cert_with(NULL, 1);
	assert_int_equal(grant_from_cert(x, &g), BOTID_ERR_DENIED);
	X509_free(x);
	x = cert_with(BOTID_OID_TOKEN_EKU, 0);
	assert_int_equal(grant_from_cert(x, &g), BOTID_ERR_DENIED);
	X509_free(x);
	x = cert_with(BOTID_OID_TOKEN_EKU, 2);
	assert_int_equal(grant_from_cert(x, &g), BOTID_ERR_INVALID);
	X509_free(x);
}

/* RFC 7638 section 3.1: the RSA key of RFC 7517 appendix A.1. */
static void
test_thumbprint_rfc7638(void **state)
{
	static const char n64[] =
	    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu"
	    "1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4"
	    "Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSq"
	    "zs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
	    "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8"
	    "awapJzKnqDKgw";
	OSSL_PARAM_BLD *bld;
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pk = NULL;
	BIGNUM *n, *e;
	uint8_t *raw;
	size_t len;
	char *kid;

	(void)state;
	assert_int_equal(jws_b64url_decode(n64, strlen(n64), 512, &raw, &len),
	    0);
	assert_non_null(n = BN_bin2bn(raw, (int)len, NULL));
	assert_non_null(e = BN_new());
	assert_int_equal(BN_set_word(e, 65537), 1);
	assert_non_null(bld = OSSL_PARAM_BLD_new());
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n),
	    1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e),
	    1);
	assert_non_null(params = OSSL_PARAM_BLD_to_param(bld));
	assert_non_null(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL));
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY,
	    params), 1);
	assert_int_equal(jwk_thumbprint(pk, &kid), 0);
	assert_string_equal(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	free(kid);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(raw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_from_cert),
		cmocka_unit_test(test_thumbprint_rfc7638),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
