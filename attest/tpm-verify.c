/*
 * TPM evidence checked in software (tpm-verify.h). Every structure comes
 * from the network: it is unmarshalled by tss2-mu's bounded parsers, must
 * use exactly the bytes given, and is checked field by field before any
 * key is built from it. Signatures are verified over the exact bytes the
 * TPM signed (the attestation data inside the TPM2B_ATTEST).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <tss2/tss2_mu.h>

#include "attest/tpm-verify.h"
#include "lib/botid.h"

static const EVP_MD *
hash_md(TPMI_ALG_HASH alg)
{
	switch (alg) {
	case TPM2_ALG_SHA256:	return EVP_sha256();
	case TPM2_ALG_SHA384:	return EVP_sha384();
	case TPM2_ALG_SHA512:	return EVP_sha512();
	}
	return NULL;
}

int
tpm_public_parse(const uint8_t *buf, size_t len, TPM2B_PUBLIC *pub)
{
	size_t off = 0;

	memset(pub, 0, sizeof(*pub));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, pub) != 0 ||
	    off != len)
		return BOTID_ERR_PROTOCOL;
	if (pub->publicArea.type != TPM2_ALG_RSA &&
	    pub->publicArea.type != TPM2_ALG_ECC)
		return BOTID_ERR_PROTOCOL;
	if (hash_md(pub->publicArea.nameAlg) == NULL)
		return BOTID_ERR_PROTOCOL;
	return 0;
}

int
tpm_public_name(const TPM2B_PUBLIC *pub, uint8_t *name, size_t *name_len)
{
	uint8_t buf[sizeof(TPMT_PUBLIC)];
	const EVP_MD *md = hash_md(pub->publicArea.nameAlg);
	unsigned int dlen = 0;
	size_t off = 0;

	*name_len = 0;
	if (md == NULL)
		return BOTID_ERR_UNSUPPORTED;
	if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof(buf),
	    &off) != 0)
		return BOTID_ERR_INTERNAL;
	name[0] = (uint8_t)(pub->publicArea.nameAlg >> 8);
	name[1] = (uint8_t)pub->publicArea.nameAlg;
	if (EVP_Digest(buf, off, name + 2, &dlen, md, NULL) != 1)
		return BOTID_ERR_CRYPTO;
	*name_len = 2 + dlen;
	return 0;
}

static const char *
curve_name(TPMI_ECC_CURVE c)
{
	switch (c) {
	case TPM2_ECC_NIST_P256:	return "P-256";
	case TPM2_ECC_NIST_P384:	return "P-384";
	case TPM2_ECC_NIST_P521:	return "P-521";
	}
	return NULL;
}

int
tpm_public_to_pkey(const TPM2B_PUBLIC *pub, EVP_PKEY **pkey)
{
	const TPMT_PUBLIC *p = &pub->publicArea;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t point[1 + 2 * 66];
	const char *curve;
	size_t clen;
	int r = BOTID_ERR_ALLOC;

	*pkey = NULL;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (p->type == TPM2_ALG_RSA) {
		if (p->unique.rsa.size == 0 ||
		    p->unique.rsa.size * 8 != p->parameters.rsaDetail.keyBits) {
			r = BOTID_ERR_PROTOCOL;
			goto out;
		}
		if ((n = BN_bin2bn(p->unique.rsa.buffer, p->unique.rsa.size,
		    NULL)) == NULL || (e = BN_new()) == NULL ||
		    BN_set_word(e, p->parameters.rsaDetail.exponent == 0 ?
		    65537 : p->parameters.rsaDetail.exponent) != 1 ||
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
			goto out;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else if (p->type == TPM2_ALG_ECC) {
		if ((curve = curve_name(p->parameters.eccDetail.curveID)) ==
		    NULL) {
			r = BOTID_ERR_UNSUPPORTED;
			goto out;
		}
		clen = p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 ?
		    32 : p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P384 ?
		    48 : 66;
		if (p->unique.ecc.x.size != clen ||
		    p->unique.ecc.y.size != clen) {
			r = BOTID_ERR_PROTOCOL;
			goto out;
		}
		point[0] = 0x04;
		memcpy(point + 1, p->unique.ecc.x.buffer, clen);
		memcpy(point + 1 + clen, p->unique.ecc.y.buffer, clen);
		if (OSSL_PARAM_BLD_push_utf8_string(bld,
		    OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) != 1 ||
		    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
		    point, 1 + 2 * clen) != 1)
			goto out;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	} else {
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	if (ctx == NULL || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	r = BOTID_ERR_PROTOCOL;	/* not a valid point or modulus */
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		*pkey = NULL;
		goto out;
	}
	r = 0;
 out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	return r;
}

int
tpm_pkey_equal(const EVP_PKEY *a, const EVP_PKEY *b)
{
	return a != NULL && b != NULL && EVP_PKEY_eq(a, b) == 1;
}

int
tpm_public_check(const TPM2B_PUBLIC *pub, enum tpm_key_profile profile,
    const char **why)
{
	TPMA_OBJECT a = pub->publicArea.objectAttributes;

	*why = NULL;
	if (profile != TPM_PROFILE_AK && profile != TPM_PROFILE_KEY)
		*why = "unknown attribute profile";
	else if ((a & TPMA_OBJECT_FIXEDTPM) == 0)
		*why = "key is not fixedTPM";
	else if ((a & TPMA_OBJECT_FIXEDPARENT) == 0)
		*why = "key is not fixedParent";
	else if ((a & TPMA_OBJECT_SENSITIVEDATAORIGIN) == 0)
		*why = "key is not sensitiveDataOrigin (not made in the TPM)";
	else if ((a & TPMA_OBJECT_SIGN_ENCRYPT) == 0)
		*why = "key is not a signing key";
	else if ((a & TPMA_OBJECT_DECRYPT) != 0)
		*why = "key is a decryption key";
	else if (profile == TPM_PROFILE_AK &&
	    (a & TPMA_OBJECT_RESTRICTED) == 0)
		*why = "attestation key is not restricted";
	else if (profile == TPM_PROFILE_KEY &&
	    (a & TPMA_OBJECT_RESTRICTED) != 0)
		*why = "key is restricted";
	return *why == NULL ? 0 : BOTID_ERR_DENIED;
}

/* Verifies sig (DER for ECDSA) over H(data) with pk. */
static int
evp_verify(EVP_PKEY *pk, const EVP_MD *md, int pss, const uint8_t *data,
    size_t data_len, const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pk) != 1)
		goto out;
	if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx,
	    RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1))
		goto out;
	ok = EVP_DigestVerify(ctx, sig, sig_len, data, data_len) == 1;
 out:
	EVP_MD_CTX_free(ctx);
	return ok;
}

int
tpm_signature_verify(const TPM2B_PUBLIC *signer, const uint8_t *data,
    size_t data_len, const uint8_t *sig, size_t sig_len, const char **why)
{
	TPMT_SIGNATURE s;
	EVP_PKEY *pk = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r_bn = NULL, *s_bn = NULL;
	const EVP_MD *md;
	uint8_t *der = NULL;
	int der_len, ok = 0, r;
	size_t off = 0;

	*why = NULL;
	memset(&s, 0, sizeof(s));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &s) != 0 ||
	    off != sig_len) {
		*why = "malformed TPMT_SIGNATURE";
		return BOTID_ERR_PROTOCOL;
	}
	if ((r = tpm_public_to_pkey(signer, &pk)) != 0) {
		*why = "unusable signing key";
		return r;
	}
	r = BOTID_ERR_UNSUPPORTED;
	switch (s.sigAlg) {
	case TPM2_ALG_ECDSA:
		if (signer->publicArea.type != TPM2_ALG_ECC) {
			*why = "signature algorithm does not match the key";
			r = BOTID_ERR_DENIED;
			goto out;
		}
		if ((md = hash_md(s.signature.ecdsa.hash)) == NULL) {
			*why = "unsupported signature hash";
			goto out;
		}
		r = BOTID_ERR_ALLOC;
		if ((es = ECDSA_SIG_new()) == NULL ||
		    (r_bn = BN_bin2bn(s.signature.ecdsa.signatureR.buffer,
		    s.signature.ecdsa.signatureR.size, NULL)) == NULL ||
		    (s_bn = BN_bin2bn(s.signature.ecdsa.signatureS.buffer,
		    s.signature.ecdsa.signatureS.size, NULL)) == NULL ||
		    ECDSA_SIG_set0(es, r_bn, s_bn) != 1)
			goto out;
		r_bn = s_bn = NULL;
		if ((der_len = i2d_ECDSA_SIG(es, &der)) <= 0) {
			der = NULL;
			goto out;
		}
		ok = evp_verify(pk, md, 0, data, data_len, der,
		    (size_t)der_len);
		break;
	case TPM2_ALG_RSASSA:
	case TPM2_ALG_RSAPSS:
		if (signer->publicArea.type != TPM2_ALG_RSA) {
			*why = "signature algorithm does not match the key";
			r = BOTID_ERR_DENIED;
			goto out;
		}
		if ((md = hash_md(s.signature.rsassa.hash)) == NULL) {
			*why = "unsupported signature hash";
			goto out;
		}
		ok = evp_verify(pk, md, s.sigAlg == TPM2_ALG_RSAPSS, data,
		    data_len, s.signature.rsassa.sig.buffer,
		    s.signature.rsassa.sig.size);
		break;
	default:
		*why = "unsupported signature scheme";
		goto out;
	}
	if (!ok) {
		*why = "signature does not verify";
		r = BOTID_ERR_DENIED;
		goto out;
	}
	r = 0;
 out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	BN_free(r_bn);
	BN_free(s_bn);
	EVP_PKEY_free(pk);
	return r;
}

int
tpm_certify_verify(const TPM2B_PUBLIC *ak, const TPM2B_PUBLIC *key,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *attest,
    size_t attest_len, const uint8_t *sig, size_t sig_len, const char **why)
{
	TPM2B_ATTEST a;
	TPMS_ATTEST info;
	uint8_t name[sizeof(TPMU_NAME) + 2];
	size_t off = 0, name_len = 0;
	int r;

	*why = NULL;
	memset(&a, 0, sizeof(a));
	memset(&info, 0, sizeof(info));
	if (Tss2_MU_TPM2B_ATTEST_Unmarshal(attest, attest_len, &off, &a) != 0 ||
	    off != attest_len) {
		*why = "malformed TPM2B_ATTEST";
		return BOTID_ERR_PROTOCOL;
	}
	off = 0;
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(a.attestationData, a.size, &off,
	    &info) != 0 || off != a.size) {
		*why = "malformed TPMS_ATTEST";
		return BOTID_ERR_PROTOCOL;
	}
	/* The signature first: nothing unsigned is worth reporting on. */
	if ((r = tpm_signature_verify(ak, a.attestationData, a.size, sig,
	    sig_len, why)) != 0)
		return r;
	if (info.magic != TPM2_GENERATED_VALUE) {
		*why = "attestation is not TPM-generated (bad magic)";
		return BOTID_ERR_DENIED;
	}
	if (info.type != TPM2_ST_ATTEST_CERTIFY) {
		*why = "attestation is not a certify";
		return BOTID_ERR_DENIED;
	}
	if (info.extraData.size != nonce_len ||
	    CRYPTO_memcmp(info.extraData.buffer, nonce, nonce_len) != 0) {
		*why = "nonce does not match";
		return BOTID_ERR_DENIED;
	}
	if ((r = tpm_public_name(key, name, &name_len)) != 0) {
		*why = "cannot compute the key's name";
		return r;
	}
	if (info.attested.certify.name.size != name_len ||
	    memcmp(info.attested.certify.name.name, name, name_len) != 0) {
		*why = "certified name is not the key's";
		return BOTID_ERR_DENIED;
	}
	return 0;
}
