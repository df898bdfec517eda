/*
 * Mechanism table of botid-pkcs11 and the checks on what callers pass
 * with a mechanism: PSS parameters and the DigestInfo of CKM_RSA_PKCS.
 * The agent signs digests only, so every mechanism ends in a digest, a
 * hash and a scheme.
 */
#include "botid-config.h"

#include <string.h>

#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "lib/botid.h"
#include "lib/limits.h"
#include "pkcs11/mechanisms.h"

static const struct botid_p11_mechanism mechanisms[] = {
	{ CKM_ECDSA, CKK_EC, 0, BOTID_SCHEME_ECDSA, 0 },
	{ CKM_ECDSA_SHA256, CKK_EC, BOTID_HASH_SHA256, BOTID_SCHEME_ECDSA, 1 },
	{ CKM_ECDSA_SHA384, CKK_EC, BOTID_HASH_SHA384, BOTID_SCHEME_ECDSA, 1 },
	{ CKM_ECDSA_SHA512, CKK_EC, BOTID_HASH_SHA512, BOTID_SCHEME_ECDSA, 1 },
	{ CKM_RSA_PKCS, CKK_RSA, 0, BOTID_SCHEME_PKCS1, 0 },
	{ CKM_SHA256_RSA_PKCS, CKK_RSA, BOTID_HASH_SHA256, BOTID_SCHEME_PKCS1, 1 },
	{ CKM_SHA384_RSA_PKCS, CKK_RSA, BOTID_HASH_SHA384, BOTID_SCHEME_PKCS1, 1 },
	{ CKM_SHA512_RSA_PKCS, CKK_RSA, BOTID_HASH_SHA512, BOTID_SCHEME_PKCS1, 1 },
	{ CKM_RSA_PKCS_PSS, CKK_RSA, 0, BOTID_SCHEME_PSS, 0 },
	{ CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, BOTID_HASH_SHA256, BOTID_SCHEME_PSS, 1 },
	{ CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, BOTID_HASH_SHA384, BOTID_SCHEME_PSS, 1 },
	{ CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, BOTID_HASH_SHA512, BOTID_SCHEME_PSS, 1 },
};

size_t
mechanisms_count(void)
{
	return sizeof(mechanisms) / sizeof(mechanisms[0]);
}

const struct botid_p11_mechanism *
mechanisms_at(size_t i)
{
	return i < mechanisms_count() ? &mechanisms[i] : NULL;
}

const struct botid_p11_mechanism *
mechanisms_find(CK_MECHANISM_TYPE type)
{
	size_t i;

	for (i = 0; i < mechanisms_count(); i++)
		if (mechanisms[i].type == type)
			return &mechanisms[i];
	return NULL;
}

uint32_t
mechanisms_hash_for_length(size_t len)
{
	switch (len) {
	case 32:
		return BOTID_HASH_SHA256;
	case 48:
		return BOTID_HASH_SHA384;
	case 64:
		return BOTID_HASH_SHA512;
	}
	return 0;
}

size_t
mechanisms_hash_length(uint32_t hash)
{
	switch (hash) {
	case BOTID_HASH_SHA256:
		return 32;
	case BOTID_HASH_SHA384:
		return 48;
	case BOTID_HASH_SHA512:
		return 64;
	}
	return 0;
}

/* The PSS hash and MGF1 of a PKCS#11 hash mechanism, as a botid hash. */
static uint32_t
pss_hash(CK_MECHANISM_TYPE hash_mech, CK_RSA_PKCS_MGF_TYPE mgf)
{
	if (hash_mech == CKM_SHA256 && mgf == CKG_MGF1_SHA256)
		return BOTID_HASH_SHA256;
	if (hash_mech == CKM_SHA384 && mgf == CKG_MGF1_SHA384)
		return BOTID_HASH_SHA384;
	if (hash_mech == CKM_SHA512 && mgf == CKG_MGF1_SHA512)
		return BOTID_HASH_SHA512;
	return 0;
}

CK_RV
mechanisms_check_params(const struct botid_p11_mechanism *m,
    const CK_MECHANISM *mech, uint32_t *hash)
{
	const CK_RSA_PKCS_PSS_PARAMS *pss;
	uint32_t h;

	*hash = m->hash;
	if (m->scheme != BOTID_SCHEME_PSS) {
		if (mech->pParameter != NULL || mech->ulParameterLen != 0)
			return CKR_MECHANISM_PARAM_INVALID;
		return CKR_OK;
	}
	if (mech->pParameter == NULL ||
	    mech->ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS))
		return CKR_MECHANISM_PARAM_INVALID;
	pss = mech->pParameter;
	if ((h = pss_hash(pss->hashAlg, pss->mgf)) == 0 ||
	    (m->hash != 0 && h != m->hash) ||
	    pss->sLen != mechanisms_hash_length(h))
		return CKR_MECHANISM_PARAM_INVALID;
	*hash = h;
	return CKR_OK;
}

int
mechanisms_parse_digest_info(const uint8_t *der, size_t der_len,
    uint32_t *hash, uint8_t *digest, size_t *digest_len)
{
	const unsigned char *p = der;
	const X509_ALGOR *alg = NULL;
	const ASN1_OCTET_STRING *dig = NULL;
	const ASN1_OBJECT *oid = NULL;
	const void *alg_param = NULL;
	X509_SIG *sig = NULL;
	int r = BOTID_ERR_INVALID, ptype = 0;
	uint32_t h;

	*hash = 0;
	*digest_len = 0;
	if (der_len == 0 || der_len > 128)
		goto out;
	if ((sig = d2i_X509_SIG(NULL, &p, (long)der_len)) == NULL ||
	    p != der + der_len)
		goto out;
	X509_SIG_get0(sig, &alg, &dig);
	X509_ALGOR_get0(&oid, &ptype, &alg_param, alg);
	/* RFC 8017 writes NULL parameters; absent ones are seen too. */
	if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		goto out;
	switch (OBJ_obj2nid(oid)) {
	case NID_sha256:
		h = BOTID_HASH_SHA256;
		break;
	case NID_sha384:
		h = BOTID_HASH_SHA384;
		break;
	case NID_sha512:
		h = BOTID_HASH_SHA512;
		break;
	default:
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	if ((size_t)ASN1_STRING_length(dig) != mechanisms_hash_length(h))
		goto out;
	memcpy(digest, ASN1_STRING_get0_data(dig), mechanisms_hash_length(h));
	*digest_len = mechanisms_hash_length(h);
	*hash = h;
	r = 0;
 out:
	X509_SIG_free(sig);
	return r;
}
