/*
 * The agent's side of attestation, on an open ESYS context: reading the EK
 * certificate and recreating its EK, creating the AK and host key,
 * answering the CA's credential challenge, certifying keys with the AK and
 * signing with the host key. The caller owns the context and serialises.
 */
#ifndef BOTID_ATTEST_EVIDENCE_H
#define BOTID_ATTEST_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_esys.h>

/* The largest secret TPM2_ActivateCredential returns (a TPM2B_DIGEST). */
#define EVIDENCE_SECRET_MAX	64

struct evidence_ek {
	uint32_t	 nv_index;	/* where the certificate was read */
	uint8_t		*cert;		/* DER, malloc'd */
	size_t		 cert_len;
	TPM2B_PUBLIC	 pub;		/* the EK the TPM recreated */
	ESYS_TR		 handle;	/* loaded EK, ESYS_TR_NONE when closed */
};

/*
 * Lists the EK certificate NV indices present (RSA and ECC, low and high
 * range) in the log, then picks the first one botid can recreate (RSA-2048
 * L-1, then ECC P-256 L-2), creates that EK and checks that its public key
 * is the certificate's. On failure *why says what is missing in one line.
 * Errors: BOTID_ERR_NOT_FOUND (no usable EK certificate), _DENIED (the
 * certificate is not this TPM's EK), _TPM, _CRYPTO, _ALLOC.
 */
int	evidence_ek_open(ESYS_CONTEXT *esys, struct evidence_ek *ek,
	    const char **why);

/* Flushes the EK and frees the certificate; accepts an empty ek. */
void	evidence_ek_close(ESYS_CONTEXT *esys, struct evidence_ek *ek);

/*
 * Creates the owner storage primary (tpm2-openssl's template) into *srk.
 * Errors: BOTID_ERR_TPM.
 */
int	evidence_srk_create(ESYS_CONTEXT *esys, ESYS_TR *srk, int *ecc);

/*
 * Creates a key from tmpl under parent; its public and wrapped private
 * parts come back in *pub and *priv. Errors: BOTID_ERR_TPM.
 */
int	evidence_key_create(ESYS_CONTEXT *esys, ESYS_TR parent,
	    const TPM2B_PUBLIC *tmpl, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv);

/*
 * Answers a credential challenge: TPM2_ActivateCredential for the AK at ak
 * with the EK at ek (its policy session satisfied with PolicySecret on the
 * endorsement hierarchy). blob is a marshalled TPM2B_ID_OBJECT, enc a
 * marshalled TPM2B_ENCRYPTED_SECRET. The secret (up to EVIDENCE_SECRET_MAX
 * bytes) is written to secret; the caller wipes it.
 * Errors: BOTID_ERR_INVALID (malformed blob), _DENIED (the TPM refused the
 * credential: it was made for another EK or AK), _TPM.
 */
int	evidence_activate(ESYS_CONTEXT *esys, ESYS_TR ek, ESYS_TR ak,
	    const uint8_t *blob, size_t blob_len, const uint8_t *enc,
	    size_t enc_len, uint8_t *secret, size_t *secret_len);

/*
 * TPM2_Certify of key by ak with qualifyingData nonce (at most 64 bytes).
 * *attest is a marshalled TPM2B_ATTEST, *sig a marshalled TPMT_SIGNATURE,
 * both malloc'd for the caller. Errors: BOTID_ERR_TPM, _INVALID, _ALLOC.
 */
int	evidence_certify(ESYS_CONTEXT *esys, ESYS_TR ak, ESYS_TR key,
	    const uint8_t *nonce, size_t nonce_len, uint8_t **attest,
	    size_t *attest_len, uint8_t **sig, size_t *sig_len);

/*
 * TPM2_Quote by ak over the PCRs of mask (bit i = PCR i, 0 to 23) in bank
 * (a TPM2_ALG_* hash) with qualifyingData nonce, then TPM2_PCR_Read of the
 * same PCRs. *attest is a marshalled TPM2B_ATTEST, *sig a marshalled
 * TPMT_SIGNATURE, *values the PCR values in ascending index order, each
 * the bank's digest size; all malloc'd for the caller.
 * Errors: BOTID_ERR_INVALID (bank, mask or nonce), _TPM, _ALLOC.
 */
int	evidence_quote(ESYS_CONTEXT *esys, ESYS_TR ak, uint16_t bank,
	    uint32_t mask, const uint8_t *nonce, size_t nonce_len,
	    uint8_t **attest, size_t *attest_len, uint8_t **sig,
	    size_t *sig_len, uint8_t **values, size_t *values_len);

/*
 * Signs a SHA-256 digest with the unrestricted host key at key (ECDSA or
 * RSASSA by key type); *sig is a marshalled TPMT_SIGNATURE, malloc'd.
 * Errors: BOTID_ERR_TPM, _ALLOC.
 */
int	evidence_sign(ESYS_CONTEXT *esys, ESYS_TR key, int ecc,
	    const uint8_t digest[32], uint8_t **sig, size_t *sig_len);

#endif /* BOTID_ATTEST_EVIDENCE_H */
