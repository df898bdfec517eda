/*
 * Unit tests for attest/tpm-verify.c: real swtpm evidence (tpm-vectors.h),
 * truncation at every offset and byte flips of every input, and each
 * refusal, with attestations signed here by a software "AK".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <tss2/tss2_mu.h>

#include "attest/tpm-verify.h"
#include "lib/error.h"
#include "tests/unit/tpm-vectors.h"

#define AK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

static const uint8_t flips[] = { 0x01, 0x80, 0xff };

static void
parse(const uint8_t *buf, size_t len, TPM2B_PUBLIC *pub)
{
	assert_int_equal(tpm_public_parse(buf, len, pub), 0);
}

/* A TPM2B_ATTEST around raw TPMS_ATTEST bytes, as a TPM returns it. */
static size_t
wrap_attest(const uint8_t *raw, size_t len, uint8_t *out)
{
	TPM2B_ATTEST a;
	size_t off = 0;

	assert_true(len <= sizeof(a.attestationData));
	a.size = (uint16_t)len;
	memcpy(a.attestationData, raw, len);
	assert_int_equal(Tss2_MU_TPM2B_ATTEST_Marshal(&a, out,
	    sizeof(TPM2B_ATTEST), &off), 0);
	return off;
}

static int
certify(const uint8_t *ak, size_t ak_len, const uint8_t *key, size_t key_len,
    const uint8_t *n, size_t n_len, const uint8_t *att, size_t att_len,
    const uint8_t *sig, size_t sig_len, const char **why)
{
	TPM2B_PUBLIC a, k;

	parse(ak, ak_len, &a);
	parse(key, key_len, &k);
	return tpm_certify_verify(&a, &k, n, n_len, att, att_len, sig,
	    sig_len, why);
}

static void
test_public_name_matches_tpm2_tools(void **state)
{
	TPM2B_PUBLIC pub;
	uint8_t name[sizeof(TPMU_NAME)];
	size_t len;

	parse(ak_ecc_pub, sizeof(ak_ecc_pub), &pub);
	assert_int_equal(tpm_public_name(&pub, name, &len), 0);
	assert_int_equal(len, sizeof(ak_ecc_name));
	assert_memory_equal(name, ak_ecc_name, len);
	pub.publicArea.nameAlg = TPM2_ALG_SHA1;
	assert_int_equal(tpm_public_name(&pub, name, &len),
	    BOTID_ERR_UNSUPPORTED);
	assert_int_equal(len, 0);
}

static void
test_public_parse_truncated_and_trailing(void **state)
{
	const struct {
		const uint8_t *p;
		size_t len;
	} v[] = {
		{ ak_ecc_pub, sizeof(ak_ecc_pub) },
		{ ak_rsa_pub, sizeof(ak_rsa_pub) },
		{ ek_p384_pub, sizeof(ek_p384_pub) },
	};
	TPM2B_PUBLIC pub;
	uint8_t buf[sizeof(TPM2B_PUBLIC) + 1];
	size_t i, len;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		for (len = 0; len < v[i].len; len++)
			assert_int_equal(tpm_public_parse(v[i].p, len, &pub),
			    BOTID_ERR_PROTOCOL);
		memcpy(buf, v[i].p, v[i].len);
		buf[v[i].len] = 0;
		assert_int_equal(tpm_public_parse(buf, v[i].len + 1, &pub),
		    BOTID_ERR_PROTOCOL);
	}
	assert_int_equal(tpm_public_parse(NULL, 10, &pub), BOTID_ERR_PROTOCOL);
}

/* A flipped byte is refused or yields a key with another name. */
static void
test_public_parse_flips(void **state)
{
	TPM2B_PUBLIC pub;
	uint8_t buf[sizeof(ak_ecc_pub)], name[sizeof(TPMU_NAME)];
	size_t i, f, len;
	int r;

	for (i = 0; i < sizeof(buf); i++) {
		for (f = 0; f < sizeof(flips); f++) {
			memcpy(buf, ak_ecc_pub, sizeof(buf));
			buf[i] ^= flips[f];
			r = tpm_public_parse(buf, sizeof(buf), &pub);
			if (r != 0) {
				assert_int_equal(r, BOTID_ERR_PROTOCOL);
				continue;
			}
			assert_int_equal(tpm_public_name(&pub, name, &len), 0);
			assert_false(len == sizeof(ak_ecc_name) &&
			    memcmp(name, ak_ecc_name, len) == 0);
		}
	}
}

static void
test_public_parse_refuses_types(void **state)
{
	TPM2B_PUBLIC pub, bad;
	uint8_t buf[sizeof(TPM2B_PUBLIC)];
	size_t off;

	parse(key_pub, sizeof(key_pub), &pub);
	bad = pub;
	bad.publicArea.nameAlg = TPM2_ALG_SHA1;
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&bad, buf, sizeof(buf),
	    &off), 0);
	assert_int_equal(tpm_public_parse(buf, off, &pub), BOTID_ERR_PROTOCOL);
	memset(&bad, 0, sizeof(bad));
	bad.publicArea.type = TPM2_ALG_KEYEDHASH;
	bad.publicArea.nameAlg = TPM2_ALG_SHA256;
	bad.publicArea.parameters.keyedHashDetail.scheme.scheme =
	    TPM2_ALG_NULL;
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&bad, buf, sizeof(buf),
	    &off), 0);
	assert_int_equal(tpm_public_parse(buf, off, &pub), BOTID_ERR_PROTOCOL);
}

static void
test_public_to_pkey(void **state)
{
	TPM2B_PUBLIC pub;
	EVP_PKEY *ak = NULL, *ak2 = NULL, *key = NULL, *rsa = NULL;

	parse(ak_ecc_pub, sizeof(ak_ecc_pub), &pub);
	assert_int_equal(tpm_public_to_pkey(&pub, &ak), 0);
	assert_int_equal(tpm_public_to_pkey(&pub, &ak2), 0);
	parse(key_pub, sizeof(key_pub), &pub);
	assert_int_equal(tpm_public_to_pkey(&pub, &key), 0);
	parse(ak_rsa_pub, sizeof(ak_rsa_pub), &pub);
	assert_int_equal(tpm_public_to_pkey(&pub, &rsa), 0);
	assert_true(tpm_pkey_equal(ak, ak2));
	assert_false(tpm_pkey_equal(ak, key));
	assert_false(tpm_pkey_equal(ak, rsa));
	assert_false(tpm_pkey_equal(ak, NULL));
	assert_int_equal(EVP_PKEY_get_bits(rsa), 2048);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(key);

	/* Modulus shorter than keyBits. */
	pub.publicArea.unique.rsa.size--;
	assert_int_equal(tpm_public_to_pkey(&pub, &rsa), BOTID_ERR_PROTOCOL);
	assert_null(rsa);
	/* A point off the curve, a curve we do not take, a long x. */
	parse(key_pub, sizeof(key_pub), &pub);
	pub.publicArea.unique.ecc.y.buffer[0] ^= 1;
	assert_int_equal(tpm_public_to_pkey(&pub, &key), BOTID_ERR_PROTOCOL);
	parse(key_pub, sizeof(key_pub), &pub);
	pub.publicArea.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
	assert_int_equal(tpm_public_to_pkey(&pub, &key),
	    BOTID_ERR_UNSUPPORTED);
	parse(key_pub, sizeof(key_pub), &pub);
	pub.publicArea.unique.ecc.x.size = 33;
	assert_int_equal(tpm_public_to_pkey(&pub, &key), BOTID_ERR_PROTOCOL);
	EVP_PKEY_free(ak);
	EVP_PKEY_free(ak2);
}

static void
test_public_check(void **state)
{
	const struct {
		enum tpm_key_profile profile;
		TPMA_OBJECT clear, set;
		const char *why;
	} v[] = {
		{ TPM_PROFILE_KEY, TPMA_OBJECT_FIXEDTPM, 0,
		    "key is not fixedTPM" },
		{ TPM_PROFILE_KEY, TPMA_OBJECT_FIXEDPARENT, 0,
		    "key is not fixedParent" },
		{ TPM_PROFILE_KEY, TPMA_OBJECT_SENSITIVEDATAORIGIN, 0,
		    "key is not sensitiveDataOrigin (not made in the TPM)" },
		{ TPM_PROFILE_KEY, TPMA_OBJECT_SIGN_ENCRYPT, 0,
		    "key is not a signing key" },
		{ TPM_PROFILE_KEY, 0, TPMA_OBJECT_DECRYPT,
		    "key is a decryption key" },
		{ TPM_PROFILE_KEY, 0, TPMA_OBJECT_RESTRICTED,
		    "key is restricted" },
		{ TPM_PROFILE_AK, TPMA_OBJECT_RESTRICTED, 0,
		    "attestation key is not restricted" },
		{ TPM_PROFILE_AK, TPMA_OBJECT_FIXEDTPM, 0,
		    "key is not fixedTPM" },
		{ TPM_PROFILE_AK, TPMA_OBJECT_SENSITIVEDATAORIGIN, 0,
		    "key is not sensitiveDataOrigin (not made in the TPM)" },
		{ TPM_PROFILE_AK, 0, TPMA_OBJECT_DECRYPT,
		    "key is a decryption key" },
	};
	TPM2B_PUBLIC key, ak, pub;
	const char *why;
	size_t i;

	parse(key_pub, sizeof(key_pub), &key);
	parse(ak_ecc_pub, sizeof(ak_ecc_pub), &ak);
	assert_int_equal(tpm_public_check(&key, TPM_PROFILE_KEY, &why), 0);
	assert_int_equal(tpm_public_check(&ak, TPM_PROFILE_AK, &why), 0);
	assert_null(why);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		pub = v[i].profile == TPM_PROFILE_AK ? ak : key;
		pub.publicArea.objectAttributes &= ~v[i].clear;
		pub.publicArea.objectAttributes |= v[i].set;
		assert_int_equal(tpm_public_check(&pub, v[i].profile, &why),
		    BOTID_ERR_DENIED);
		assert_string_equal(why, v[i].why);
	}
	parse(imported_pub, sizeof(imported_pub), &pub);
	assert_int_equal(tpm_public_check(&pub, TPM_PROFILE_KEY, &why),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "key is not fixedTPM");
	parse(ek_rsa_pub, sizeof(ek_rsa_pub), &pub);
	assert_int_equal(tpm_public_check(&pub, TPM_PROFILE_AK, &why),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "key is not a signing key");
	assert_int_equal(tpm_public_check(&ak, (enum tpm_key_profile)9, &why),
	    BOTID_ERR_DENIED);
}

/* The swtpm certifications by ECDSA, RSASSA and RSAPSS AKs verify. */
static void
test_certify_vectors(void **state)
{
	const struct {
		const uint8_t *ak, *att, *sig;
		size_t ak_len, att_len, sig_len;
	} v[] = {
		{ ak_ecc_pub, att_ecc, sig_ecc, sizeof(ak_ecc_pub),
		    sizeof(att_ecc), sizeof(sig_ecc) },
		{ ak_rsa_pub, att_rsa, sig_rsa, sizeof(ak_rsa_pub),
		    sizeof(att_rsa), sizeof(sig_rsa) },
		{ ak_pss_pub, att_pss, sig_pss, sizeof(ak_pss_pub),
		    sizeof(att_pss), sizeof(sig_pss) },
	};
	uint8_t att[sizeof(TPM2B_ATTEST)], bad[sizeof(nonce)];
	const char *why;
	size_t i, len;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		len = wrap_attest(v[i].att, v[i].att_len, att);
		assert_int_equal(certify(v[i].ak, v[i].ak_len, key_pub,
		    sizeof(key_pub), nonce, sizeof(nonce), att, len, v[i].sig,
		    v[i].sig_len, &why), 0);
		assert_null(why);
		assert_int_equal(certify(v[i].ak, v[i].ak_len, key2_pub,
		    sizeof(key2_pub), nonce, sizeof(nonce), att, len, v[i].sig,
		    v[i].sig_len, &why), BOTID_ERR_DENIED);
		assert_string_equal(why, "certified name is not the key's");
		memcpy(bad, nonce, sizeof(bad));
		bad[sizeof(bad) - 1] ^= 1;
		assert_int_equal(certify(v[i].ak, v[i].ak_len, key_pub,
		    sizeof(key_pub), bad, sizeof(bad), att, len, v[i].sig,
		    v[i].sig_len, &why), BOTID_ERR_DENIED);
		assert_string_equal(why, "nonce does not match");
		assert_int_equal(certify(v[i].ak, v[i].ak_len, key_pub,
		    sizeof(key_pub), nonce, sizeof(nonce) - 1, att, len,
		    v[i].sig, v[i].sig_len, &why), BOTID_ERR_DENIED);
		assert_string_equal(why, "nonce does not match");
		assert_int_equal(certify(v[i].ak, v[i].ak_len, key_pub,
		    sizeof(key_pub), NULL, 0, att, len, v[i].sig,
		    v[i].sig_len, &why), BOTID_ERR_DENIED);
		assert_string_equal(why, "nonce does not match");
	}
	/* Another AK's signature; an ECDSA signature for an RSA key. */
	len = wrap_attest(att_rsa, sizeof(att_rsa), att);
	assert_int_equal(certify(ak_pss_pub, sizeof(ak_pss_pub), key_pub,
	    sizeof(key_pub), nonce, sizeof(nonce), att, len, sig_rsa,
	    sizeof(sig_rsa), &why), BOTID_ERR_DENIED);
	assert_string_equal(why, "signature does not verify");
	len = wrap_attest(att_ecc, sizeof(att_ecc), att);
	assert_int_equal(certify(ak_rsa_pub, sizeof(ak_rsa_pub), key_pub,
	    sizeof(key_pub), nonce, sizeof(nonce), att, len, sig_ecc,
	    sizeof(sig_ecc), &why), BOTID_ERR_DENIED);
	assert_string_equal(why, "signature algorithm does not match the key");
}

static void
test_certify_truncated(void **state)
{
	uint8_t att[sizeof(TPM2B_ATTEST)], sig[sizeof(sig_ecc) + 1];
	const char *why;
	size_t len, n;

	len = wrap_attest(att_ecc, sizeof(att_ecc), att);
	for (n = 0; n < len; n++)
		assert_int_equal(certify(ak_ecc_pub, sizeof(ak_ecc_pub),
		    key_pub, sizeof(key_pub), nonce, sizeof(nonce), att, n,
		    sig_ecc, sizeof(sig_ecc), &why), BOTID_ERR_PROTOCOL);
	for (n = 0; n < sizeof(sig_ecc); n++)
		assert_int_equal(certify(ak_ecc_pub, sizeof(ak_ecc_pub),
		    key_pub, sizeof(key_pub), nonce, sizeof(nonce), att, len,
		    sig_ecc, n, &why), BOTID_ERR_PROTOCOL);
	memcpy(sig, sig_ecc, sizeof(sig_ecc));
	sig[sizeof(sig_ecc)] = 0;
	assert_int_equal(certify(ak_ecc_pub, sizeof(ak_ecc_pub), key_pub,
	    sizeof(key_pub), nonce, sizeof(nonce), att, len, sig,
	    sizeof(sig), &why), BOTID_ERR_PROTOCOL);
	att[len] = 0;
	assert_int_equal(certify(ak_ecc_pub, sizeof(ak_ecc_pub), key_pub,
	    sizeof(key_pub), nonce, sizeof(nonce), att, len + 1, sig_ecc,
	    sizeof(sig_ecc), &why), BOTID_ERR_PROTOCOL);
}

/* No flipped byte of a genuine attestation or signature is accepted. */
static void
test_certify_flips(void **state)
{
	const struct {
		const uint8_t *ak, *att, *sig;
		size_t ak_len, att_len, sig_len;
	} v[] = {
		{ ak_ecc_pub, att_ecc, sig_ecc, sizeof(ak_ecc_pub),
		    sizeof(att_ecc), sizeof(sig_ecc) },
		{ ak_pss_pub, att_pss, sig_pss, sizeof(ak_pss_pub),
		    sizeof(att_pss), sizeof(sig_pss) },
	};
	uint8_t att[sizeof(TPM2B_ATTEST)], sig[512];
	const char *why;
	size_t i, j, f, len;
	int r;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_true(v[i].sig_len <= sizeof(sig));
		memcpy(sig, v[i].sig, v[i].sig_len);
		len = wrap_attest(v[i].att, v[i].att_len, att);
		for (j = 0; j < len; j++) {
			for (f = 0; f < sizeof(flips); f++) {
				att[j] ^= flips[f];
				r = certify(v[i].ak, v[i].ak_len, key_pub,
				    sizeof(key_pub), nonce, sizeof(nonce), att,
				    len, sig, v[i].sig_len, &why);
				assert_true(r == BOTID_ERR_PROTOCOL ||
				    r == BOTID_ERR_DENIED);
				att[j] ^= flips[f];
			}
		}
		for (j = 0; j < v[i].sig_len; j++) {
			for (f = 0; f < sizeof(flips); f++) {
				sig[j] ^= flips[f];
				r = certify(v[i].ak, v[i].ak_len, key_pub,
				    sizeof(key_pub), nonce, sizeof(nonce), att,
				    len, sig, v[i].sig_len, &why);
				assert_int_not_equal(r, 0);
				sig[j] ^= flips[f];
			}
		}
		/* Unchanged, it still verifies: the loops restored it. */
		assert_int_equal(certify(v[i].ak, v[i].ak_len, key_pub,
		    sizeof(key_pub), nonce, sizeof(nonce), att, len, sig,
		    v[i].sig_len, &why), 0);
	}
}

/* A software AK, so that wrong but well-signed attestations can be made. */
struct soft_ak {
	EVP_PKEY	*key;
	TPM2B_PUBLIC	 pub;
};

static void
soft_ak_new(struct soft_ak *ak)
{
	TPMT_PUBLIC *a = &ak->pub.publicArea;
	BIGNUM *x = NULL, *y = NULL;

	memset(ak, 0, sizeof(*ak));
	assert_non_null(ak->key = EVP_EC_gen("P-256"));
	assert_int_equal(EVP_PKEY_get_bn_param(ak->key,
	    OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(ak->key,
	    OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
	a->type = TPM2_ALG_ECC;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = AK_ATTRS;
	a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	a->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	a->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	assert_int_equal(BN_bn2binpad(x, a->unique.ecc.x.buffer, 32), 32);
	assert_int_equal(BN_bn2binpad(y, a->unique.ecc.y.buffer, 32), 32);
	a->unique.ecc.x.size = a->unique.ecc.y.size = 32;
	BN_free(x);
	BN_free(y);
}

/* info marshalled into att (TPM2B_ATTEST) and signed into sig. */
static void
soft_ak_sign(struct soft_ak *ak, const TPMS_ATTEST *info, TPMI_ALG_HASH hash,
    uint8_t *att, size_t *att_len, uint8_t *sig, size_t *sig_len)
{
	TPM2B_ATTEST a;
	TPMT_SIGNATURE s;
	EVP_MD_CTX *ctx;
	ECDSA_SIG *es;
	const BIGNUM *r, *sv;
	const unsigned char *p;
	uint8_t der[128];
	size_t der_len = sizeof(der), off = 0;

	assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(info, a.attestationData,
	    sizeof(a.attestationData), &off), 0);
	a.size = (uint16_t)off;
	*att_len = 0;
	assert_int_equal(Tss2_MU_TPM2B_ATTEST_Marshal(&a, att,
	    sizeof(TPM2B_ATTEST), att_len), 0);
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(ctx, NULL,
	    hash == TPM2_ALG_SHA384 ? EVP_sha384() : EVP_sha256(), NULL,
	    ak->key), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &der_len, a.attestationData,
	    a.size), 1);
	EVP_MD_CTX_free(ctx);
	p = der;
	assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)der_len));
	ECDSA_SIG_get0(es, &r, &sv);
	memset(&s, 0, sizeof(s));
	s.sigAlg = TPM2_ALG_ECDSA;
	s.signature.ecdsa.hash = hash;
	s.signature.ecdsa.signatureR.size = (uint16_t)BN_bn2bin(r,
	    s.signature.ecdsa.signatureR.buffer);
	s.signature.ecdsa.signatureS.size = (uint16_t)BN_bn2bin(sv,
	    s.signature.ecdsa.signatureS.buffer);
	ECDSA_SIG_free(es);
	*sig_len = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, sig, 512,
	    sig_len), 0);
}

static void
good_info(TPMS_ATTEST *info, const TPM2B_PUBLIC *key)
{
	size_t len;

	memset(info, 0, sizeof(*info));
	info->magic = TPM2_GENERATED_VALUE;
	info->type = TPM2_ST_ATTEST_CERTIFY;
	info->extraData.size = sizeof(nonce);
	memcpy(info->extraData.buffer, nonce, sizeof(nonce));
	assert_int_equal(tpm_public_name(key, info->attested.certify.name.name,
	    &len), 0);
	info->attested.certify.name.size = (uint16_t)len;
}

static void
test_certify_refusals(void **state)
{
	struct soft_ak ak;
	TPM2B_PUBLIC key;
	TPMS_ATTEST info;
	uint8_t att[sizeof(TPM2B_ATTEST)], sig[512];
	size_t att_len, sig_len;
	const char *why;

	soft_ak_new(&ak);
	parse(key_pub, sizeof(key_pub), &key);

	good_info(&info, &key);
	soft_ak_sign(&ak, &info, TPM2_ALG_SHA256, att, &att_len, sig, &sig_len);
	assert_int_equal(tpm_certify_verify(&ak.pub, &key, nonce,
	    sizeof(nonce), att, att_len, sig, sig_len, &why), 0);
	/* SHA-384 over the same bytes is fine too: the signature says. */
	soft_ak_sign(&ak, &info, TPM2_ALG_SHA384, att, &att_len, sig, &sig_len);
	assert_int_equal(tpm_certify_verify(&ak.pub, &key, nonce,
	    sizeof(nonce), att, att_len, sig, sig_len, &why), 0);

	good_info(&info, &key);
	info.magic ^= 1;
	soft_ak_sign(&ak, &info, TPM2_ALG_SHA256, att, &att_len, sig, &sig_len);
	assert_int_equal(tpm_certify_verify(&ak.pub, &key, nonce,
	    sizeof(nonce), att, att_len, sig, sig_len, &why),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "attestation is not TPM-generated (bad magic)");

	good_info(&info, &key);
	info.type = TPM2_ST_ATTEST_QUOTE;	/* an empty quote */
	memset(&info.attested, 0, sizeof(info.attested));
	soft_ak_sign(&ak, &info, TPM2_ALG_SHA256, att, &att_len, sig, &sig_len);
	assert_int_equal(tpm_certify_verify(&ak.pub, &key, nonce,
	    sizeof(nonce), att, att_len, sig, sig_len, &why),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "attestation is not a certify");

	good_info(&info, &key);
	info.extraData.size = 0;
	soft_ak_sign(&ak, &info, TPM2_ALG_SHA256, att, &att_len, sig, &sig_len);
	assert_int_equal(tpm_certify_verify(&ak.pub, &key, nonce,
	    sizeof(nonce), att, att_len, sig, sig_len, &why),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "nonce does not match");

	good_info(&info, &key);
	info.attested.certify.name.name[5] ^= 1;
	soft_ak_sign(&ak, &info, TPM2_ALG_SHA256, att, &att_len, sig, &sig_len);
	assert_int_equal(tpm_certify_verify(&ak.pub, &key, nonce,
	    sizeof(nonce), att, att_len, sig, sig_len, &why),
	    BOTID_ERR_DENIED);
	assert_string_equal(why, "certified name is not the key's");

	/* The key's name algorithm is one we do not take. */
	good_info(&info, &key);
	soft_ak_sign(&ak, &info, TPM2_ALG_SHA256, att, &att_len, sig, &sig_len);
	key.publicArea.nameAlg = TPM2_ALG_SHA1;
	assert_int_equal(tpm_certify_verify(&ak.pub, &key, nonce,
	    sizeof(nonce), att, att_len, sig, sig_len, &why),
	    BOTID_ERR_UNSUPPORTED);
	EVP_PKEY_free(ak.key);
}

static void
test_signature_unsupported(void **state)
{
	TPM2B_PUBLIC ak;
	TPMT_SIGNATURE s;
	uint8_t sig[512];
	size_t off;
	const char *why;

	parse(ak_ecc_pub, sizeof(ak_ecc_pub), &ak);
	memset(&s, 0, sizeof(s));
	s.sigAlg = TPM2_ALG_HMAC;
	s.signature.hmac.hashAlg = TPM2_ALG_SHA256;
	off = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, sig, sizeof(sig),
	    &off), 0);
	assert_int_equal(tpm_signature_verify(&ak, sig, 4, sig, off, &why),
	    BOTID_ERR_UNSUPPORTED);
	off = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig_ecc,
	    sizeof(sig_ecc), &off, &s), 0);
	s.signature.ecdsa.hash = TPM2_ALG_SHA1;
	off = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, sig, sizeof(sig),
	    &off), 0);
	assert_int_equal(tpm_signature_verify(&ak, sig, 4, sig, off, &why),
	    BOTID_ERR_UNSUPPORTED);
	assert_int_equal(tpm_signature_verify(&ak, sig, 4, NULL, 0, &why),
	    BOTID_ERR_PROTOCOL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_public_name_matches_tpm2_tools),
		cmocka_unit_test(test_public_parse_truncated_and_trailing),
		cmocka_unit_test(test_public_parse_flips),
		cmocka_unit_test(test_public_parse_refuses_types),
		cmocka_unit_test(test_public_to_pkey),
		cmocka_unit_test(test_public_check),
		cmocka_unit_test(test_certify_vectors),
		cmocka_unit_test(test_certify_truncated),
		cmocka_unit_test(test_certify_flips),
		cmocka_unit_test(test_certify_refusals),
		cmocka_unit_test(test_signature_unsupported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
