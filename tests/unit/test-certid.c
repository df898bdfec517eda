/*
 * Unit tests for lib/certid.c: the attestation claim's encoding (known
 * vectors, truncation at every offset, every bit flipped), the claim read
 * from whole certificates under the OID botid-ca writes and the old UUID
 * OID, and the arcs every X.509 stack we test must be able to parse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/certid.h"
#include "lib/error.h"
#include "lib/limits.h"

static const uint8_t der_tpm[] = { 0x0c, 0x03, 't', 'p', 'm' };
static const uint8_t der_pkcs11[] = {
	0x0c, 0x06, 'p', 'k', 'c', 's', '1', '1'
};

static int
kind_ok(const char *k)
{
	size_t i, n = strlen(k);

	if (n == 0 || n > BOTID_MAX_ATTESTATION_KIND)
		return 0;
	for (i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		    (k[i] >= '0' && k[i] <= '9') || k[i] == '-'))
			return 0;
	return 1;
}

static void
test_encode_vectors(void **state)
{
	uint8_t *der;
	size_t len;

	(void)state;
	assert_int_equal(certid_attestation_encode("tpm", &der, &len), 0);
	assert_int_equal(len, sizeof(der_tpm));
	assert_memory_equal(der, der_tpm, len);
	free(der);
	assert_int_equal(certid_attestation_encode("pkcs11", &der, &len), 0);
	assert_int_equal(len, sizeof(der_pkcs11));
	assert_memory_equal(der, der_pkcs11, len);
	free(der);
	assert_int_equal(certid_attestation_encode("0123456789abcdef", &der,
	    &len), 0);
	assert_int_equal(len, 18);
	free(der);
}

static void
test_encode_refuses(void **state)
{
	static const char *bad[] = {
		"", "TPM", "t pm", "tpm\n", "tpm/x", "0123456789abcdefg",
		"p\xc3\xa9", "tpm_x",
	};
	uint8_t *der = (uint8_t *)1;
	size_t i, len = 1;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(certid_attestation_encode(bad[i], &der, &len),
		    BOTID_ERR_INVALID);
		assert_null(der);
		assert_int_equal(len, 0);
	}
}

static void
test_decode_vectors(void **state)
{
	char *k;

	(void)state;
	assert_int_equal(certid_attestation_decode(der_tpm, sizeof(der_tpm),
	    &k), 0);
	assert_string_equal(k, "tpm");
	free(k);
	assert_int_equal(certid_attestation_decode(der_pkcs11,
	    sizeof(der_pkcs11), &k), 0);
	assert_string_equal(k, "pkcs11");
	free(k);
}

static void
test_decode_refuses(void **state)
{
	static const struct {
		const char	*why;
		uint8_t		 der[24];
		size_t		 len;
	} bad[] = {
		{ "empty", { 0 }, 0 },
		{ "PrintableString", { 0x13, 0x03, 't', 'p', 'm' }, 5 },
		{ "IA5String", { 0x16, 0x03, 't', 'p', 'm' }, 5 },
		{ "long-form length", { 0x0c, 0x81, 0x03, 't', 'p', 'm' }, 6 },
		{ "trailing byte", { 0x0c, 0x03, 't', 'p', 'm', 0x00 }, 6 },
		{ "length past the end", { 0x0c, 0x04, 't', 'p', 'm' }, 5 },
		{ "empty string", { 0x0c, 0x00 }, 2 },
		{ "NUL inside", { 0x0c, 0x03, 't', 0x00, 'm' }, 5 },
		{ "upper case", { 0x0c, 0x03, 'T', 'P', 'M' }, 5 },
		{ "17 bytes", { 0x0c, 0x11, 'a', 'a', 'a', 'a', 'a', 'a', 'a',
		    'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a' }, 19 },
		{ "constructed", { 0x2c, 0x05, 0x0c, 0x03, 't', 'p', 'm' }, 7 },
	};
	size_t i;
	char *k;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		k = (char *)1;
		if (certid_attestation_decode(bad[i].der, bad[i].len, &k) !=
		    BOTID_ERR_INVALID)
			fail_msg("accepted: %s", bad[i].why);
		assert_null(k);
	}
}

static void
test_decode_truncated(void **state)
{
	uint8_t *copy;
	size_t n;
	char *k;

	(void)state;
	/* Each prefix in a buffer of its own length, so ASan sees overreads. */
	for (n = 0; n < sizeof(der_pkcs11); n++) {
		assert_non_null(copy = malloc(n == 0 ? 1 : n));
		memcpy(copy, der_pkcs11, n);
		k = (char *)1;
		assert_int_equal(certid_attestation_decode(copy, n, &k),
		    BOTID_ERR_INVALID);
		assert_null(k);
		free(copy);
	}
}

static void
test_decode_bitflip(void **state)
{
	uint8_t v[sizeof(der_pkcs11)];
	size_t bit;
	char *k;
	int r;

	(void)state;
	for (bit = 0; bit < sizeof(v) * 8; bit++) {
		memcpy(v, der_pkcs11, sizeof(v));
		v[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		k = NULL;
		r = certid_attestation_decode(v, sizeof(v), &k);
		if (bit < 16) {
			/* Tag or length: never a valid encoding any more. */
			assert_int_equal(r, BOTID_ERR_INVALID);
			assert_null(k);
		} else if (r == 0) {
			/* Another valid kind may come out, never this one. */
			assert_true(kind_ok(k));
			assert_string_not_equal(k, "pkcs11");
			free(k);
		} else {
			assert_int_equal(r, BOTID_ERR_INVALID);
			assert_null(k);
		}
	}
}

/* Every arc of the OID fits in 31 bits (Go's encoding/asn1 limit). */
static void
test_oid_arcs_small(void **state)
{
	const char *p = BOTID_OID_ATTESTATION;
	unsigned long long arc;
	char *end;
	int arcs = 0;
	ASN1_OBJECT *o;
	char back[128];

	(void)state;
	while (*p != '\0') {
		arc = strtoull(p, &end, 10);
		assert_true(end != p);
		assert_true(arc < (1ull << 31));
		arcs++;
		p = *end == '.' ? end + 1 : end;
	}
	assert_true(arcs > 2);
	/* OpenSSL round-trips it, so what the CA writes is this OID. */
	assert_non_null(o = OBJ_txt2obj(BOTID_OID_ATTESTATION, 1));
	assert_true(OBJ_obj2txt(back, sizeof(back), o, 1) > 0);
	assert_string_equal(back, BOTID_OID_ATTESTATION);
	ASN1_OBJECT_free(o);
}

static EVP_PKEY *key;

static int
setup(void **state)
{
	(void)state;
	return (key = EVP_EC_gen("P-256")) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

static void
add_raw_ext(X509 *x, const char *oidtxt, const uint8_t *v, size_t n)
{
	ASN1_OBJECT *oid;
	ASN1_OCTET_STRING *os;
	X509_EXTENSION *e;

	assert_non_null(oid = OBJ_txt2obj(oidtxt, 1));
	assert_non_null(os = ASN1_OCTET_STRING_new());
	assert_int_equal(ASN1_OCTET_STRING_set(os, v, (int)n), 1);
	assert_non_null(e = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os));
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
}

/*
 * A self-signed leaf with a SPIFFE URI SAN and the extensions listed as
 * (OID, value) pairs; DER in *der.
 */
static void
make_cert(uint8_t **der, size_t *len, const char *oid1, const uint8_t *v1,
    size_t n1, const char *oid2, const uint8_t *v2, size_t n2)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	X509_NAME *name;
	X509 *x;
	unsigned char *out = NULL;
	int n;

	assert_non_null(x = X509_new());
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_non_null(name = X509_get_subject_name(x));
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"bot", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	assert_non_null(e = X509V3_EXT_conf_nid(NULL, &ctx,
	    NID_subject_alt_name, "URI:spiffe://test.botid/host/h/bot/b"));
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	if (oid1 != NULL)
		add_raw_ext(x, oid1, v1, n1);
	if (oid2 != NULL)
		add_raw_ext(x, oid2, v2, n2);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	assert_true((n = i2d_X509(x, &out)) > 0);
	/* One byte more, for the trailing-byte test. */
	assert_non_null(*der = malloc((size_t)n + 1));
	memcpy(*der, out, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(out);
	X509_free(x);
}

static int
attestation_of(const char *oid1, const uint8_t *v1, size_t n1,
    const char *oid2, const uint8_t *v2, size_t n2, char **kind)
{
	uint8_t *der;
	size_t len;
	int r;

	make_cert(&der, &len, oid1, v1, n1, oid2, v2, n2);
	r = certid_attestation(der, len, kind);
	free(der);
	return r;
}

static void
test_cert_claims(void **state)
{
	static const uint8_t bad[] = { 0x13, 0x03, 't', 'p', 'm' };
	char *k;

	(void)state;
	/* The OID botid-ca writes. */
	assert_int_equal(attestation_of(BOTID_OID_ATTESTATION, der_tpm,
	    sizeof(der_tpm), NULL, NULL, 0, &k), 0);
	assert_string_equal(k, "tpm");
	free(k);
	assert_int_equal(attestation_of(BOTID_OID_ATTESTATION, der_pkcs11,
	    sizeof(der_pkcs11), NULL, NULL, 0, &k), 0);
	assert_string_equal(k, "pkcs11");
	free(k);
	/* The UUID OID of certificates issued before: still read. */
	assert_int_equal(attestation_of(BOTID_OID_ATTESTATION_UUID, der_tpm,
	    sizeof(der_tpm), NULL, NULL, 0, &k), 0);
	assert_string_equal(k, "tpm");
	free(k);
	/* No claim. */
	assert_int_equal(attestation_of(NULL, NULL, 0, NULL, NULL, 0, &k),
	    BOTID_ERR_NOT_FOUND);
	assert_null(k);
	/* Two claims, even agreeing ones, under one OID or both. */
	assert_int_equal(attestation_of(BOTID_OID_ATTESTATION, der_tpm,
	    sizeof(der_tpm), BOTID_OID_ATTESTATION, der_tpm, sizeof(der_tpm),
	    &k), BOTID_ERR_INVALID);
	assert_null(k);
	assert_int_equal(attestation_of(BOTID_OID_ATTESTATION_UUID, der_tpm,
	    sizeof(der_tpm), BOTID_OID_ATTESTATION_UUID, der_tpm,
	    sizeof(der_tpm), &k), BOTID_ERR_INVALID);
	assert_null(k);
	assert_int_equal(attestation_of(BOTID_OID_ATTESTATION, der_pkcs11,
	    sizeof(der_pkcs11), BOTID_OID_ATTESTATION_UUID, der_tpm,
	    sizeof(der_tpm), &k), BOTID_ERR_INVALID);
	assert_null(k);
	/* A malformed value under either OID. */
	assert_int_equal(attestation_of(BOTID_OID_ATTESTATION, bad,
	    sizeof(bad), NULL, NULL, 0, &k), BOTID_ERR_INVALID);
	assert_null(k);
	assert_int_equal(attestation_of(BOTID_OID_ATTESTATION_UUID, bad,
	    sizeof(bad), NULL, NULL, 0, &k), BOTID_ERR_INVALID);
	assert_null(k);
}

static void
test_cert_truncated_and_flipped(void **state)
{
	uint8_t *der, *copy;
	size_t len, n, bit;
	char *k, *id;
	int r;

	(void)state;
	make_cert(&der, &len, BOTID_OID_ATTESTATION, der_tpm, sizeof(der_tpm),
	    NULL, NULL, 0);
	/* The whole certificate, and one trailing byte refused. */
	assert_int_equal(certid_spiffe_id(der, len, &id), 0);
	assert_string_equal(id, "spiffe://test.botid/host/h/bot/b");
	free(id);
	der[len] = 0;
	assert_int_equal(certid_attestation(der, len + 1, &k),
	    BOTID_ERR_INVALID);
	assert_null(k);
	for (n = 0; n < len; n++) {
		assert_non_null(copy = malloc(n == 0 ? 1 : n));
		memcpy(copy, der, n);
		k = (char *)1;
		assert_int_equal(certid_attestation(copy, n, &k),
		    BOTID_ERR_INVALID);
		assert_null(k);
		free(copy);
	}
	/*
	 * certid does not check the signature (the chain check does), so a
	 * flip may leave a parsable certificate: then the claim read is a
	 * valid kind or cleanly absent, never a crash or garbage.
	 */
	for (bit = 0; bit < len * 8; bit++) {
		der[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		k = NULL;
		r = certid_attestation(der, len, &k);
		if (r == 0) {
			assert_true(kind_ok(k));
			free(k);
		} else {
			assert_true(r == BOTID_ERR_INVALID ||
			    r == BOTID_ERR_NOT_FOUND);
			assert_null(k);
		}
		der[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(der);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_vectors),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_decode_vectors),
		cmocka_unit_test(test_decode_refuses),
		cmocka_unit_test(test_decode_truncated),
		cmocka_unit_test(test_decode_bitflip),
		cmocka_unit_test(test_oid_arcs_small),
		cmocka_unit_test(test_cert_claims),
		cmocka_unit_test(test_cert_truncated_and_flipped),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
