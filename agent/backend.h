/*
 * The key backends behind one vtable: a TPM 2.0 (backend-tpm.c) and a
 * PKCS#11 token (backend-pkcs11.c). A backend creates each bot's key
 * inside the device, non-exportable, finds it again on later starts, and
 * signs digests with it. No private key ever passes through this API.
 */
#ifndef BOTID_AGENT_BACKEND_H
#define BOTID_AGENT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"

struct botid_backend;	/* one TPM, or one PKCS#11 token */
struct botid_key;	/* one bot's key in that backend */

struct botid_sign_params {
	uint32_t	hash;	/* enum botid_hash */
	uint32_t	scheme;	/* enum botid_scheme, never AUTO here */
};

#define BOTID_MAX_KEY_ATTRIBUTES	16

/* One protection attribute of a key as its device reports it. */
struct botid_key_attribute {
	const char	*name;	/* static: "fixedTPM", "CKA_SENSITIVE"... */
	int		 set;	/* 1 or 0 */
};

struct botid_backend_ops {
	const char *name;	/* "tpm" or "pkcs11" */
	/*
	 * Finds the key named bot->name (the bot's name, or "NAME~GEN" for a
	 * key made by a rotation), creating it in the device when absent, checks
	 * that it is non-exportable and of the configured type, and returns
	 * its handle and its public key as DER SubjectPublicKeyInfo (caller
	 * frees *spki). Errors: BOTID_ERR_EXPORTABLE (key refused),
	 * BOTID_ERR_TPM / _PKCS11 / _UNAVAILABLE, _IO, _ALLOC.
	 */
	int	(*key_open)(struct botid_backend *be,
		    const struct botid_bot_config *bot, struct botid_key **keyp,
		    uint8_t **spki, size_t *spki_len);
	/*
	 * Signs a digest of wire_hash_len(p->hash) bytes. ECDSA signatures
	 * come back raw (r || s, each the curve's byte size), RSA ones as the
	 * modulus-sized octet string. Caller frees *sig. Safe to call from
	 * several threads at once on the same backend (the backend
	 * serialises what its device needs serialised).
	 * Errors: _UNSUPPORTED (scheme/hash not for this key), _TPM, _PKCS11,
	 * _UNAVAILABLE (device gone; later calls may succeed), _INVALID.
	 */
	int	(*sign)(struct botid_backend *be, struct botid_key *key,
		    const struct botid_sign_params *p, const uint8_t *digest,
		    size_t digest_len, uint8_t **sig, size_t *sig_len);
	/*
	 * Reads the key's protection attributes back from the device now
	 * (TPM2_ReadPublic objectAttributes; the token's CKA_* booleans),
	 * filling at most BOTID_MAX_KEY_ATTRIBUTES entries of attrs and *n.
	 * Serialised with signing like sign(). Errors: _TPM, _PKCS11,
	 * _UNAVAILABLE, _INVALID.
	 */
	int	(*key_attributes)(struct botid_backend *be,
		    struct botid_key *key, struct botid_key_attribute *attrs,
		    size_t *n);
	/*
	 * Destroys the key named bot->name (a key name, see key_open) in the
	 * device, without opening it: the TPM blob is removed (the TPM keeps
	 * no other copy), the token's objects are destroyed. Handles still
	 * open on it must not sign again and are released with key_close.
	 * Errors: BOTID_ERR_NOT_FOUND (no such key), _IO, _TPM, _PKCS11,
	 * _UNAVAILABLE, _INVALID.
	 */
	int	(*key_remove)(struct botid_backend *be,
		    const struct botid_bot_config *bot);
	/*
	 * Whether the key named bot->name (see key_open) exists, without
	 * opening or creating it, and without a device command where the
	 * backend can tell otherwise (the TPM: its blob file): so that the
	 * event loop serves bots whose keys exist at once and leaves the
	 * others' creation to the pool. Safe from any thread. Returns 1, 0,
	 * or an error (as key_open's); NULL in a backend that cannot tell:
	 * key_open is then called directly.
	 */
	int	(*key_exists)(struct botid_backend *be,
		    const struct botid_bot_config *bot);
	/*
	 * Opens the key named bot->name as key_open does when it exists,
	 * without a device command where the backend can do without one (the
	 * TPM: its blob is read and checked against the configuration, not
	 * loaded), so that the event loop serves at once however many keys
	 * exist and however slow the device. The device has not vouched for
	 * the key yet: key_prove does, and so does its first use (a key the
	 * device refuses signs nothing). Never creates a key:
	 * BOTID_ERR_NOT_FOUND when there is none. Other errors as key_open's.
	 * NULL in a backend whose key_open costs no more: key_open is used.
	 */
	int	(*key_open_unproven)(struct botid_backend *be,
		    const struct botid_bot_config *bot, struct botid_key **keyp,
		    uint8_t **spki, size_t *spki_len);
	/*
	 * Has the device vouch for a key key_open_unproven() gave (the TPM
	 * loads it: the blob is this TPM's, under this primary); 0 at once
	 * for a key already proven. Serialised with signing like sign(): for
	 * a worker. Errors: BOTID_ERR_TPM (refused), _UNAVAILABLE, _INVALID.
	 * NULL where key_open_unproven is NULL.
	 */
	int	(*key_prove)(struct botid_backend *be,
		    struct botid_key *key);
	/*
	 * Whether signing with the key now needs no swap in the device (the
	 * TPM: the key holds an object slot). A hint, read without the
	 * backend's lock, from the pool's own lock: the pool may serve such
	 * a bot's next job before another bot's (pool.h). Any thread. NULL
	 * in a backend without swaps (a token).
	 */
	int	(*key_loaded)(struct botid_backend *be,
		    struct botid_key *key);
	/* Releases a key handle (not the key itself); accepts NULL. */
	void	(*key_close)(struct botid_backend *be, struct botid_key *key);
	/* Closes the device; all keys must have been closed. Accepts NULL. */
	void	(*close)(struct botid_backend *be);
};

struct botid_backend {
	const struct botid_backend_ops	*ops;
};

/*
 * Opens the TPM at tcti (NULL: tpm2-tss default) keeping wrapped key blobs
 * in state_dir/tpm/ (created 0700), at most loaded_keys bot keys loaded at
 * once (LRU). Errors: BOTID_ERR_TPM, _UNAVAILABLE, _IO, _ALLOC.
 */
int	backend_tpm_open(const char *tcti, const char *state_dir,
	    unsigned loaded_keys, struct botid_backend **bep);

/*
 * Opens the token labelled token_label in the PKCS#11 module at module and
 * logs in with the PIN read from pin_file (wiped after use), keeping up to
 * sessions sessions for concurrent signing. Errors: BOTID_ERR_PKCS11,
 * _NOT_FOUND (no such token), _DENIED (bad PIN), _UNAVAILABLE (the module
 * loads but cannot initialise, or its token is out of reach), _IO, _ALLOC.
 */
int	backend_pkcs11_open(const char *module, const char *token_label,
	    const char *pin_file, unsigned sessions, struct botid_backend **bep);

struct host_state;

/*
 * TPM backend only: hands it the host's attestation key and host key (from
 * botid provision, see attest/host-state.h), loaded on demand under the
 * same storage primary as the bot keys. Keeps at least 2 keys loadable.
 * Errors: BOTID_ERR_ALLOC, _INTERNAL (already set).
 */
int	backend_tpm_attest_keys(struct botid_backend *be,
	    const struct host_state *hs);

/* A TPM key's public area as a marshalled TPM2B_PUBLIC (caller frees). */
int	backend_tpm_key_public(struct botid_key *key, uint8_t **pub,
	    size_t *len);

/*
 * TPM2_Certify of key by the AK with qualifyingData nonce: *attest is a
 * marshalled TPM2B_ATTEST, *sig a marshalled TPMT_SIGNATURE, both for the
 * caller to free. Errors: BOTID_ERR_NOT_FOUND (no AK), _TPM, _UNAVAILABLE.
 */
int	backend_tpm_certify(struct botid_backend *be, struct botid_key *key,
	    const uint8_t *nonce, size_t nonce_len, uint8_t **attest,
	    size_t *attest_len, uint8_t **sig, size_t *sig_len);

/*
 * TPM2_Quote by the AK over the PCRs of mask in bank with qualifyingData
 * nonce, and the PCR values read after it (evidence_quote()); every output
 * is the caller's to free. Errors: BOTID_ERR_NOT_FOUND (no AK), _INVALID,
 * _TPM, _UNAVAILABLE.
 */
int	backend_tpm_quote(struct botid_backend *be, uint16_t bank,
	    uint32_t mask, const uint8_t *nonce, size_t nonce_len,
	    uint8_t **attest, size_t *attest_len, uint8_t **sig,
	    size_t *sig_len, uint8_t **values, size_t *values_len);

/*
 * Signs a SHA-256 digest with the host key; *sig is a marshalled
 * TPMT_SIGNATURE for the caller to free. Errors: BOTID_ERR_NOT_FOUND (no
 * host key), _TPM, _UNAVAILABLE.
 */
int	backend_tpm_host_sign(struct botid_backend *be,
	    const uint8_t digest[32], uint8_t **sig, size_t *sig_len);

#endif /* BOTID_AGENT_BACKEND_H */
