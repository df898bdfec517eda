/*
 * The signing mechanisms botid-pkcs11 offers and how each maps onto the
 * agent's SIGN_DIGEST request: which key type, which hash, which scheme,
 * and whether the module hashes the data first.
 */
#ifndef BOTID_PKCS11_MECHANISMS_H
#define BOTID_PKCS11_MECHANISMS_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

struct botid_p11_mechanism {
	CK_MECHANISM_TYPE	 type;
	CK_KEY_TYPE		 key_type;	/* CKK_EC or CKK_RSA */
	uint32_t		 hash;		/* enum botid_hash; 0: from input */
	uint32_t		 scheme;	/* enum botid_scheme */
	int			 hashes_data;	/* the module hashes the input */
};

/* Number of mechanisms and the i-th one (i < mechanisms_count()). */
size_t	mechanisms_count(void);
const struct botid_p11_mechanism *mechanisms_at(size_t i);

/* The mechanism of type, or NULL when botid-pkcs11 does not offer it. */
const struct botid_p11_mechanism *mechanisms_find(CK_MECHANISM_TYPE type);

/*
 * Checks the parameters of mech for m: none for ECDSA and PKCS#1 v1.5; for
 * PSS a CK_RSA_PKCS_PSS_PARAMS whose hash and MGF1 hash agree (with the
 * mechanism's own hash for the SHAxxx_ variants) and whose salt length is
 * the hash length, the only salt the agent uses. Sets *hash to the hash
 * the parameters fix (0: decided by the input). Returns CKR_OK or
 * CKR_MECHANISM_PARAM_INVALID.
 */
CK_RV	mechanisms_check_params(const struct botid_p11_mechanism *m,
	    const CK_MECHANISM *mech, uint32_t *hash);

/* The enum botid_hash whose digest is len bytes, or 0. */
uint32_t mechanisms_hash_for_length(size_t len);

/* The digest length of hash (enum botid_hash), or 0. */
size_t	mechanisms_hash_length(uint32_t hash);

/*
 * Parses a DER DigestInfo (the input of CKM_RSA_PKCS) with OpenSSL and
 * returns its hash and a copy of the digest in digest (BOTID_MAX_DIGEST
 * bytes). Only SHA-256/384/512 with a digest of the right length and no
 * trailing bytes are accepted. Errors: BOTID_ERR_INVALID,
 * BOTID_ERR_UNSUPPORTED (another hash).
 */
int	mechanisms_parse_digest_info(const uint8_t *der, size_t der_len,
	    uint32_t *hash, uint8_t *digest, size_t *digest_len);

#endif /* BOTID_PKCS11_MECHANISMS_H */
