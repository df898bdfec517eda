/*
 * Checking TPM evidence in software, for botid-ca: parsing marshalled
 * TPM2B_PUBLIC / TPM2B_ATTEST / TPMT_SIGNATURE from untrusted bytes,
 * object names, TPM2_Certify verification and TPM signature checks.
 * No TPM is needed; everything here is pure OpenSSL + tss2-mu.
 */
#ifndef BOTID_ATTEST_TPM_VERIFY_H
#define BOTID_ATTEST_TPM_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

/*
 * Parses a marshalled TPM2B_PUBLIC of exactly len bytes (no trailing
 * bytes) into *pub. Refuses types other than RSA and ECC, name algorithms
 * other than SHA-256/384/512. Errors: BOTID_ERR_PROTOCOL (malformed).
 */
int	tpm_public_parse(const uint8_t *buf, size_t len, TPM2B_PUBLIC *pub);

/*
 * The TPM object name of pub: nameAlg (u16be) || H_nameAlg(marshalled
 * TPMT_PUBLIC). name must hold sizeof(TPM2B_NAME.name) bytes.
 * Errors: BOTID_ERR_UNSUPPORTED (name algorithm), _INTERNAL.
 */
int	tpm_public_name(const TPM2B_PUBLIC *pub, uint8_t *name,
	    size_t *name_len);

/*
 * The public key of pub as an OpenSSL key (caller frees).
 * Errors: BOTID_ERR_UNSUPPORTED (curve, type), _PROTOCOL, _ALLOC.
 */
int	tpm_public_to_pkey(const TPM2B_PUBLIC *pub, EVP_PKEY **pkey);

/*
 * Whether a and b hold the same public key (same type, same modulus and
 * exponent, or same curve and point). 1 yes, 0 no.
 */
int	tpm_pkey_equal(const EVP_PKEY *a, const EVP_PKEY *b);

/*
 * Attribute profiles checked by tpm_public_check():
 *  AK:       restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin,
 *            not decrypt;
 *  KEY:      sign, fixedTPM, fixedParent, sensitiveDataOrigin, not decrypt,
 *            not restricted (bot keys and the host key).
 */
enum tpm_key_profile {
	TPM_PROFILE_AK,
	TPM_PROFILE_KEY,
};

/*
 * Checks pub's attributes against profile. On refusal returns
 * BOTID_ERR_DENIED and points *why at a static one-line reason such as
 * "key is not fixedTPM".
 */
int	tpm_public_check(const TPM2B_PUBLIC *pub, enum tpm_key_profile profile,
	    const char **why);

/*
 * Verifies a TPMT_SIGNATURE (marshalled, exactly sig_len bytes) made by the
 * key signer over H(data), H being the signature's own hash algorithm
 * (ECDSA, RSASSA, RSAPSS). Errors: BOTID_ERR_DENIED (bad signature, *why
 * set), _PROTOCOL (malformed), _UNSUPPORTED (scheme).
 */
int	tpm_signature_verify(const TPM2B_PUBLIC *signer, const uint8_t *data,
	    size_t data_len, const uint8_t *sig, size_t sig_len,
	    const char **why);

/*
 * Verifies a TPM2_Certify result: attest (marshalled TPM2B_ATTEST) signed
 * with sig (marshalled TPMT_SIGNATURE) by ak, of type
 * TPM_ST_ATTEST_CERTIFY with magic TPM_GENERATED_VALUE, extraData equal to
 * nonce, and certified name equal to the name of key. It does not check
 * key's attributes (tpm_public_check does). Errors: BOTID_ERR_DENIED with
 * *why set ("nonce does not match", "certified name is not the key's",
 * "signature does not verify", ...), _PROTOCOL (malformed input).
 */
int	tpm_certify_verify(const TPM2B_PUBLIC *ak, const TPM2B_PUBLIC *key,
	    const uint8_t *nonce, size_t nonce_len, const uint8_t *attest,
	    size_t attest_len, const uint8_t *sig, size_t sig_len,
	    const char **why);

#endif /* BOTID_ATTEST_TPM_VERIFY_H */
