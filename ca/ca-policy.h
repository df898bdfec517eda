/*
 * botid-ca's key policy (ca.conf key_rsa_min_bits, key_ecc_curves,
 * ek_purpose_check): which key algorithms and sizes it accepts for EKs,
 * attestation keys, host keys and bot keys, TPM and PKCS#11 alike.
 */
#ifndef BOTID_CA_POLICY_H
#define BOTID_CA_POLICY_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_tpm2_types.h>

#include "ca/ca-config.h"

/*
 * Whether a TPM public area's key meets the policy: RSA of at least
 * key_rsa_min_bits, or ECC on a curve of key_ecc_curves. Checked on the
 * public area itself, before any conversion can fail on a curve OpenSSL
 * does not have. 0, or BOTID_ERR_DENIED with why (one line) filled.
 */
int	ca_policy_tpm_key(const struct ca_config *c, const TPM2B_PUBLIC *pub,
	    char *why, size_t whylen);

/* The same for a key from a SubjectPublicKeyInfo (PKCS#11 bots). */
int	ca_policy_pkey(const struct ca_config *c, EVP_PKEY *pk, char *why,
	    size_t whylen);

/*
 * With ek_purpose_check: an EK certificate that carries an extended key
 * usage must list the TCG EK purpose (2.23.133.8.1); one without the
 * extension passes. 0, or BOTID_ERR_DENIED with why filled.
 */
int	ca_policy_ek_cert(const struct ca_config *c, X509 *ek, char *why,
	    size_t whylen);

#endif /* BOTID_CA_POLICY_H */
