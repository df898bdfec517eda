/*
 * Signature encodings and digests shared by the agent and clients:
 * ECDSA raw r || s <-> DER ECDSA-Sig-Value, and hashing with the
 * botid_hash identifiers of the wire protocol.
 */
#ifndef BOTID_SIG_H
#define BOTID_SIG_H

#include <stddef.h>
#include <stdint.h>

/*
 * Encodes a raw ECDSA signature (r || s, two equal halves) as DER.
 * *der is allocated (free()). Errors: BOTID_ERR_INVALID, _CRYPTO, _ALLOC.
 */
int	sig_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t **der,
	    size_t *der_len);

/*
 * Decodes a DER ECDSA signature into r || s, each field_len bytes.
 * Errors: BOTID_ERR_INVALID (malformed, trailing bytes, r/s too big), _ALLOC.
 */
int	sig_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t field_len,
	    uint8_t **raw, size_t *raw_len);

/*
 * Hashes len bytes with hash (enum botid_hash) into out (BOTID_MAX_DIGEST
 * bytes) and sets *out_len. Errors: BOTID_ERR_INVALID, _CRYPTO.
 */
int	sig_digest(uint32_t hash, const void *data, size_t len, uint8_t *out,
	    size_t *out_len);

#endif /* BOTID_SIG_H */
