/*
 * Unit tests for attest/makecred.c: the shape of its output for the swtpm
 * EKs of tpm-vectors.h, and every refusal. That the TPM accepts the
 * credentials is attest-evidence.sh's job.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include <tss2/tss2_mu.h>

#include "attest/makecred.h"
#include "attest/tpm-verify.h"
#include "lib/error.h"
#include "tests/unit/tpm-vectors.h"

static const uint8_t secret[48] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

static void
parse(const uint8_t *buf, size_t len, TPM2B_PUBLIC *pub)
{
	assert_int_equal(tpm_public_parse(buf, len, pub), 0);
}

static int
make(const TPM2B_PUBLIC *ek, const uint8_t *name, size_t name_len,
    size_t secret_len, TPM2B_ID_OBJECT *id, TPM2B_ENCRYPTED_SECRET *es)
{
	uint8_t *blob = (uint8_t *)1, *enc = (uint8_t *)1;
	size_t blob_len = 1, enc_len = 1, off;
	int r;

	r = tpm_make_credential(ek, name, name_len, secret, secret_len, &blob,
	    &blob_len, &enc, &enc_len);
	if (r != 0) {
		assert_null(blob);
		assert_null(enc);
		assert_int_equal(blob_len, 0);
		assert_int_equal(enc_len, 0);
		return r;
	}
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len,
	    &off, id), 0);
	assert_int_equal(off, blob_len);
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(enc, enc_len,
	    &off, es), 0);
	assert_int_equal(off, enc_len);
	free(blob);
	free(enc);
	return 0;
}

static void
test_makecred_rsa(void **state)
{
	TPM2B_PUBLIC ek;
	TPM2B_ID_OBJECT id, id2;
	TPM2B_ENCRYPTED_SECRET es, es2;

	parse(ek_rsa_pub, sizeof(ek_rsa_pub), &ek);
	assert_int_equal(make(&ek, ak_ecc_name, sizeof(ak_ecc_name), 32, &id,
	    &es), 0);
	/* TPM2B(HMAC-SHA256) || CFB(TPM2B(secret)): no padding. */
	assert_int_equal(id.size, 2 + 32 + 2 + 32);
	assert_int_equal(es.size, 256);
	assert_int_equal(make(&ek, ak_ecc_name, sizeof(ak_ecc_name), 32, &id2,
	    &es2), 0);
	assert_memory_not_equal(es.secret, es2.secret, es.size);
	assert_memory_not_equal(id.credential, id2.credential, id.size);
	assert_int_equal(make(&ek, ak_ecc_name, sizeof(ak_ecc_name), 1, &id,
	    &es), 0);
	assert_int_equal(id.size, 2 + 32 + 2 + 1);
}

/* The ECC secret is an ephemeral point on the EK's curve. */
static void
check_ecc(const uint8_t *vec, size_t vec_len, size_t field, size_t digest)
{
	TPM2B_PUBLIC ek, eph;
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	EVP_PKEY *pkey = NULL;
	size_t off = 0;

	parse(vec, vec_len, &ek);
	assert_int_equal(make(&ek, ak_ecc_name, sizeof(ak_ecc_name), digest,
	    &id, &es), 0);
	assert_int_equal(id.size, 2 + digest + 2 + digest);
	eph = ek;
	assert_int_equal(Tss2_MU_TPMS_ECC_POINT_Unmarshal(es.secret, es.size,
	    &off, &eph.publicArea.unique.ecc), 0);
	assert_int_equal(off, es.size);
	assert_int_equal(eph.publicArea.unique.ecc.x.size, field);
	assert_int_equal(eph.publicArea.unique.ecc.y.size, field);
	assert_int_equal(tpm_public_to_pkey(&eph, &pkey), 0);
	EVP_PKEY_free(pkey);
}

static void
test_makecred_ecc(void **state)
{
	check_ecc(ek_p256_pub, sizeof(ek_p256_pub), 32, 32);
	check_ecc(ek_p384_pub, sizeof(ek_p384_pub), 48, 48);
}

static void
test_makecred_refusals(void **state)
{
	TPM2B_PUBLIC ek, p384, bad;
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	const uint8_t *n = ak_ecc_name;
	size_t nl = sizeof(ak_ecc_name);

	parse(ek_rsa_pub, sizeof(ek_rsa_pub), &ek);
	parse(ek_p384_pub, sizeof(ek_p384_pub), &p384);
	/* Secrets: empty, longer than the nameAlg digest. */
	assert_int_equal(make(&ek, n, nl, 0, &id, &es), BOTID_ERR_INVALID);
	assert_int_equal(make(&ek, n, nl, 33, &id, &es), BOTID_ERR_INVALID);
	assert_int_equal(make(&p384, n, nl, 48, &id, &es), 0);
	assert_int_equal(make(&p384, n, nl, 49, &id, &es), BOTID_ERR_INVALID);
	/* Names: missing, too short, too long. */
	assert_int_equal(make(&ek, NULL, nl, 32, &id, &es), BOTID_ERR_INVALID);
	assert_int_equal(make(&ek, n, 1, 32, &id, &es), BOTID_ERR_INVALID);
	assert_int_equal(make(&ek, n, sizeof(TPMU_NAME) + 1, 32, &id, &es),
	    BOTID_ERR_INVALID);
	/* Not a storage key: an AK. */
	parse(ak_rsa_pub, sizeof(ak_rsa_pub), &bad);
	assert_int_equal(make(&bad, n, nl, 32, &id, &es), BOTID_ERR_INVALID);
	/* Symmetric and name algorithms, key sizes and curves we refuse. */
	bad = ek;
	bad.publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_OFB;
	assert_int_equal(make(&bad, n, nl, 32, &id, &es),
	    BOTID_ERR_UNSUPPORTED);
	bad = ek;
	bad.publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 192;
	assert_int_equal(make(&bad, n, nl, 32, &id, &es),
	    BOTID_ERR_UNSUPPORTED);
	bad = ek;
	bad.publicArea.parameters.rsaDetail.symmetric.algorithm =
	    TPM2_ALG_NULL;
	assert_int_equal(make(&bad, n, nl, 32, &id, &es),
	    BOTID_ERR_UNSUPPORTED);
	bad = ek;
	bad.publicArea.nameAlg = TPM2_ALG_SHA512;
	assert_int_equal(make(&bad, n, nl, 32, &id, &es),
	    BOTID_ERR_UNSUPPORTED);
	bad = ek;
	bad.publicArea.parameters.rsaDetail.keyBits = 3072;
	assert_int_equal(make(&bad, n, nl, 32, &id, &es),
	    BOTID_ERR_UNSUPPORTED);
	bad = p384;
	bad.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P521;
	assert_int_equal(make(&bad, n, nl, 32, &id, &es),
	    BOTID_ERR_UNSUPPORTED);
	bad = ek;
	bad.publicArea.type = TPM2_ALG_KEYEDHASH;
	assert_int_equal(make(&bad, n, nl, 32, &id, &es),
	    BOTID_ERR_UNSUPPORTED);
	/* An EK point off its curve is malformed. */
	bad = p384;
	bad.publicArea.unique.ecc.y.buffer[3] ^= 1;
	assert_int_equal(make(&bad, n, nl, 32, &id, &es), BOTID_ERR_PROTOCOL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_makecred_rsa),
		cmocka_unit_test(test_makecred_ecc),
		cmocka_unit_test(test_makecred_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
