/*
 * Unit tests for ca/ca-policy.c: the default key policy (RSA of 2048 bits
 * or more, ECC on P-256 or P-384) on TPM public areas and on OpenSSL keys,
 * a configured policy, keys of other types, and the EK certificate's TCG
 * purpose with the check on and off, with and without the extension.
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
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ca-policy.h"
#include "lib/botid.h"

static struct ca_config
policy_default(void)
{
	struct ca_config c;

	memset(&c, 0, sizeof(c));
	c.path = "test.conf";
	c.key_rsa_min_bits = 2048;
	c.key_ecc_curves = CA_CURVE_P256 | CA_CURVE_P384;
	c.ek_purpose_check = 1;
	return c;
}

static TPM2B_PUBLIC
tpm_rsa(unsigned bits)
{
	TPM2B_PUBLIC p;

	memset(&p, 0, sizeof(p));
	p.publicArea.type = TPM2_ALG_RSA;
	p.publicArea.parameters.rsaDetail.keyBits = bits;
	return p;
}

static TPM2B_PUBLIC
tpm_ecc(TPM2_ECC_CURVE curve)
{
	TPM2B_PUBLIC p;

	memset(&p, 0, sizeof(p));
	p.publicArea.type = TPM2_ALG_ECC;
	p.publicArea.parameters.eccDetail.curveID = curve;
	return p;
}

static void
test_tpm_keys(void **state)
{
	struct ca_config c = policy_default();
	TPM2B_PUBLIC p;
	char why[256];

	(void)state;
	p = tpm_rsa(2048);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)), 0);
	p = tpm_rsa(3072);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)), 0);
	p = tpm_rsa(1024);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "key policy: RSA key of 1024 bits, the "
	    "policy wants at least 2048");
	p = tpm_ecc(TPM2_ECC_NIST_P256);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)), 0);
	p = tpm_ecc(TPM2_ECC_NIST_P384);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)), 0);
	p = tpm_ecc(TPM2_ECC_NIST_P224);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "key policy: ECC curve P-224 is not allowed");
	p = tpm_ecc(TPM2_ECC_NIST_P521);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	p = tpm_ecc(TPM2_ECC_BN_P256);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "key policy: ECC curve BN-P256 is not "
	    "allowed");
	p = tpm_ecc(0x7777);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "key policy: ECC curve unknown is not allowed");
	memset(&p, 0, sizeof(p));
	p.publicArea.type = TPM2_ALG_KEYEDHASH;
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "key policy: TPM key type 0x0008 is not RSA "
	    "or ECC");
	/* A configured policy: P-521 only, RSA of 4096. */
	c.key_ecc_curves = CA_CURVE_P521;
	c.key_rsa_min_bits = 4096;
	p = tpm_ecc(TPM2_ECC_NIST_P521);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)), 0);
	p = tpm_ecc(TPM2_ECC_NIST_P256);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	p = tpm_rsa(3072);
	assert_int_equal(ca_policy_tpm_key(&c, &p, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "key policy: RSA key of 3072 bits, the "
	    "policy wants at least 4096");
}

static EVP_PKEY *
gen(const char *alg, const char *param, int bits)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *k = NULL;

	if (strcmp(alg, "EC") == 0)
		return EVP_EC_gen(param);
	if (strcmp(alg, "RSA") == 0)
		return EVP_RSA_gen((unsigned)bits);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &k), 1);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static void
check_pkey(const struct ca_config *c, EVP_PKEY *k, int want,
    const char *reason)
{
	char why[256];

	assert_non_null(k);
	assert_int_equal(ca_policy_pkey(c, k, why, sizeof(why)), want);
	if (reason != NULL)
		assert_string_equal(why, reason);
	EVP_PKEY_free(k);
}

static void
test_pkeys(void **state)
{
	struct ca_config c = policy_default();

	(void)state;
	check_pkey(&c, gen("EC", "P-256", 0), 0, NULL);
	check_pkey(&c, gen("EC", "P-384", 0), 0, NULL);
	check_pkey(&c, gen("EC", "P-224", 0), BOTID_ERR_DENIED,
	    "key policy: ECC curve P-224 is not allowed");
	check_pkey(&c, gen("EC", "P-521", 0), BOTID_ERR_DENIED,
	    "key policy: ECC curve P-521 is not allowed");
	check_pkey(&c, gen("EC", "secp256k1", 0), BOTID_ERR_DENIED,
	    "key policy: ECC curve secp256k1 is not allowed");
	check_pkey(&c, gen("RSA", NULL, 2048), 0, NULL);
	check_pkey(&c, gen("RSA", NULL, 1024), BOTID_ERR_DENIED,
	    "key policy: RSA key of 1024 bits, the policy wants at least 2048");
	check_pkey(&c, gen("RSA", NULL, 512), BOTID_ERR_DENIED,
	    "key policy: RSA key of 512 bits, the policy wants at least 2048");
	check_pkey(&c, gen("ED25519", NULL, 0), BOTID_ERR_DENIED,
	    "key policy: ED25519 keys are not allowed");
	c.key_ecc_curves = CA_CURVE_P521;
	check_pkey(&c, gen("EC", "P-521", 0), 0, NULL);
	check_pkey(&c, gen("EC", "P-256", 0), BOTID_ERR_DENIED,
	    "key policy: ECC curve P-256 is not allowed");
}

/* A self-signed certificate, with an extendedKeyUsage of eku if not NULL. */
static X509 *
cert_with_eku(const char *eku)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(X509_set_pubkey(x, k), 1);
	if (eku != NULL) {
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, eku);
		assert_non_null(e);
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	return x;
}

static void
test_ek_purpose(void **state)
{
	struct ca_config c = policy_default();
	char why[256];
	X509 *none = cert_with_eku(NULL);
	X509 *tcg = cert_with_eku("2.23.133.8.1");
	X509 *both = cert_with_eku("serverAuth,2.23.133.8.1");
	X509 *other = cert_with_eku("serverAuth,clientAuth");

	(void)state;
	assert_int_equal(ca_policy_ek_cert(&c, none, why, sizeof(why)), 0);
	assert_int_equal(ca_policy_ek_cert(&c, tcg, why, sizeof(why)), 0);
	assert_int_equal(ca_policy_ek_cert(&c, both, why, sizeof(why)), 0);
	assert_int_equal(ca_policy_ek_cert(&c, other, why, sizeof(why)),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "EK certificate: its extended key usage lacks "
	    "the TCG EK purpose (2.23.133.8.1)");
	c.ek_purpose_check = 0;
	assert_int_equal(ca_policy_ek_cert(&c, other, why, sizeof(why)), 0);
	X509_free(none);
	X509_free(tcg);
	X509_free(both);
	X509_free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tpm_keys),
		cmocka_unit_test(test_pkeys),
		cmocka_unit_test(test_ek_purpose),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
