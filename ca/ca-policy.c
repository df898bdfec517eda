/*
 * botid-ca's key policy (ca-policy.h). The defaults (RSA of 2048 bits or
 * more, ECC on P-256 or P-384) are what a TPM 2.0 and the common HSMs
 * make; anything weaker is refused with the reason, whoever vouches for it.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ca/ca-policy.h"
#include "lib/botid.h"

#define TCG_EK_PURPOSE	"2.23.133.8.1"

static int
curve_allowed(const struct ca_config *c, const char *name)
{
	return (strcmp(name, "P-256") == 0 &&
	    (c->key_ecc_curves & CA_CURVE_P256) != 0) ||
	    (strcmp(name, "P-384") == 0 &&
	    (c->key_ecc_curves & CA_CURVE_P384) != 0) ||
	    (strcmp(name, "P-521") == 0 &&
	    (c->key_ecc_curves & CA_CURVE_P521) != 0);
}

static int
rsa_check(const struct ca_config *c, unsigned bits, char *why,
    size_t whylen)
{
	if (bits >= c->key_rsa_min_bits)
		return 0;
	snprintf(why, whylen, "key policy: RSA key of %u bits, the policy "
	    "wants at least %u", bits, c->key_rsa_min_bits);
	return BOTID_ERR_DENIED;
}

static int
curve_check(const struct ca_config *c, const char *name, char *why,
    size_t whylen)
{
	if (curve_allowed(c, name))
		return 0;
	snprintf(why, whylen, "key policy: ECC curve %s is not allowed", name);
	return BOTID_ERR_DENIED;
}

int
ca_policy_tpm_key(const struct ca_config *c, const TPM2B_PUBLIC *pub,
    char *why, size_t whylen)
{
	const TPMT_PUBLIC *p = &pub->publicArea;
	const char *name;

	if (p->type == TPM2_ALG_RSA)
		return rsa_check(c, p->parameters.rsaDetail.keyBits, why,
		    whylen);
	if (p->type != TPM2_ALG_ECC) {
		snprintf(why, whylen, "key policy: TPM key type 0x%04x is not "
		    "RSA or ECC", (unsigned)p->type);
		return BOTID_ERR_DENIED;
	}
	switch (p->parameters.eccDetail.curveID) {
	case TPM2_ECC_NIST_P192: name = "P-192"; break;
	case TPM2_ECC_NIST_P224: name = "P-224"; break;
	case TPM2_ECC_NIST_P256: name = "P-256"; break;
	case TPM2_ECC_NIST_P384: name = "P-384"; break;
	case TPM2_ECC_NIST_P521: name = "P-521"; break;
	case TPM2_ECC_BN_P256: name = "BN-P256"; break;
	case TPM2_ECC_BN_P638: name = "BN-P638"; break;
	case TPM2_ECC_SM2_P256: name = "SM2-P256"; break;
	default: name = "unknown"; break;
	}
	return curve_check(c, name, why, whylen);
}

int
ca_policy_pkey(const struct ca_config *c, EVP_PKEY *pk, char *why,
    size_t whylen)
{
	char group[64];
	const char *name;
	int bits;

	if (EVP_PKEY_is_a(pk, "RSA")) {
		bits = EVP_PKEY_get_bits(pk);
		return rsa_check(c, bits > 0 ? (unsigned)bits : 0, why, whylen);
	}
	if (!EVP_PKEY_is_a(pk, "EC")) {
		snprintf(why, whylen, "key policy: %s keys are not allowed",
		    (name = EVP_PKEY_get0_type_name(pk)) != NULL ? name :
		    "unknown");
		return BOTID_ERR_DENIED;
	}
	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), NULL) != 1) {
		ERR_clear_error();
		snprintf(why, whylen, "key policy: an ECC key on explicit "
		    "parameters or an unnamed curve");
		return BOTID_ERR_DENIED;
	}
	/* OpenSSL names P-256 "prime256v1" and P-384 "secp384r1". */
	name = strcmp(group, "prime256v1") == 0 ? "P-256" :
	    strcmp(group, "secp384r1") == 0 ? "P-384" :
	    strcmp(group, "secp521r1") == 0 ? "P-521" :
	    strcmp(group, "secp224r1") == 0 ? "P-224" : group;
	return curve_check(c, name, why, whylen);
}

int
ca_policy_ek_cert(const struct ca_config *c, X509 *ek, char *why,
    size_t whylen)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	ASN1_OBJECT *tcg = NULL;
	int crit = 0, i, found = 0, r = BOTID_ERR_DENIED;

	if (!c->ek_purpose_check)
		return 0;
	eku = X509_get_ext_d2i(ek, NID_ext_key_usage, &crit, NULL);
	if (eku == NULL) {
		/* -1: no extension; anything else: a malformed one. */
		if (crit == -1)
			r = 0;
		else
			snprintf(why, whylen, "EK certificate: malformed "
			    "extended key usage");
		goto out;
	}
	if ((tcg = OBJ_txt2obj(TCG_EK_PURPOSE, 1)) == NULL) {
		snprintf(why, whylen, "EK certificate: out of memory");
		goto out;
	}
	for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
		if (OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), tcg) == 0)
			found = 1;
	if (found)
		r = 0;
	else
		snprintf(why, whylen, "EK certificate: its extended key usage "
		    "lacks the TCG EK purpose (%s)", TCG_EK_PURPOSE);
 out:
	ERR_clear_error();
	ASN1_OBJECT_free(tcg);
	EXTENDED_KEY_USAGE_free(eku);
	return r;
}
