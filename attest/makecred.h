/*
 * TPM2_MakeCredential computed in software (TPM 2.0 Part 1, 24 "Credential
 * Protection"), for botid-ca: RSA EKs (OAEP, label "IDENTITY") and ECC EKs
 * (ECDH with an ephemeral key, KDFe), then KDFa, AES-CFB and the outer HMAC.
 */
#ifndef BOTID_ATTEST_MAKECRED_H
#define BOTID_ATTEST_MAKECRED_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

/*
 * Wraps secret (1..64 bytes) for the object named name (an AK name:
 * nameAlg || digest) so that only the TPM holding ek can recover it with
 * TPM2_ActivateCredential. ek must be a storage key (restricted, decrypt)
 * with a symmetric algorithm (AES-CFB). On success *blob is a marshalled
 * TPM2B_ID_OBJECT and *enc a marshalled TPM2B_ENCRYPTED_SECRET, both
 * malloc'd and owned by the caller; intermediate seeds and keys are wiped.
 * Errors: BOTID_ERR_UNSUPPORTED (EK type, curve, symmetric), _INVALID,
 * _CRYPTO (OpenSSL failure), _ALLOC.
 */
int	tpm_make_credential(const TPM2B_PUBLIC *ek, const uint8_t *name,
	    size_t name_len, const uint8_t *secret, size_t secret_len,
	    uint8_t **blob, size_t *blob_len, uint8_t **enc, size_t *enc_len);

#endif /* BOTID_ATTEST_MAKECRED_H */
