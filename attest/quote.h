/*
 * TPM2_Quote evidence checked in software, for botid-ca: the attestation
 * structure is parsed from untrusted bytes with lib/buf.c's bounded
 * readers, its signature verified with the enrolled AK, and its PCR
 * digest compared with the hash of the PCR values the host sent.
 */
#ifndef BOTID_ATTEST_QUOTE_H
#define BOTID_ATTEST_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

/* PCR 0 to 23: one bit each in a selection mask. */
#define QUOTE_PCR_COUNT		24

/* A PCR selection in one bank: bank a TPM2_ALG_* hash, mask bit i = PCR i. */
struct quote_selection {
	uint16_t	bank;
	uint32_t	mask;
};

/* What a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE says, parsed. */
struct quote_info {
	uint32_t		magic;
	uint16_t		type;
	uint8_t			extra[64];	/* qualifying data */
	size_t			extra_len;
	struct quote_selection	sel;
	uint8_t			digest[64];	/* pcrDigest */
	size_t			digest_len;
};

/*
 * Parses a TPMS_ATTEST (the bytes a TPM2B_ATTEST holds, exactly len
 * bytes, no trailing bytes) whose type is a quote over one bank and PCRs
 * 0 to 23. Errors: BOTID_ERR_PROTOCOL (malformed, several banks, a
 * select larger than 3 bytes), _UNSUPPORTED (a type other than quote).
 */
int	quote_parse(const uint8_t *data, size_t len, struct quote_info *q);

/*
 * Verifies a TPM2_Quote: attest (marshalled TPM2B_ATTEST) signed with sig
 * (marshalled TPMT_SIGNATURE) by ak, magic TPM_GENERATED_VALUE, type
 * TPM_ST_ATTEST_QUOTE, extraData equal to nonce, selection equal to want,
 * and pcrDigest equal to H(values) with H the bank's hash, values being
 * the PCR values of want's PCRs in ascending order (nvalues of them, each
 * of the bank's digest size). Errors: BOTID_ERR_DENIED with *why set
 * ("nonce does not match", "PCR values do not match the quote's
 * digest", ...), _PROTOCOL (malformed, *why set), _UNSUPPORTED (bank).
 */
int	quote_verify(const TPM2B_PUBLIC *ak, const uint8_t *nonce,
	    size_t nonce_len, const struct quote_selection *want,
	    const uint8_t *attest, size_t attest_len, const uint8_t *sig,
	    size_t sig_len, const uint8_t *const *values, size_t nvalues,
	    const char **why);

/* The digest size of bank (a TPM2_ALG_* hash), 0 if not supported. */
size_t	quote_bank_size(uint16_t bank);

#endif /* BOTID_ATTEST_QUOTE_H */
