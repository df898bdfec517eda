/*
 * What a host key signs to revoke at botid-ca (POST /v1/revoke,
 * doc/ca-api.md): the reason names the API takes, and the digest, built
 * once here for the agent that signs it and the CA that checks it.
 */
#ifndef BOTID_ATTEST_CA_REVOKE_H
#define BOTID_ATTEST_CA_REVOKE_H

#include <stddef.h>
#include <stdint.h>

/* The target that names the host itself rather than a certificate serial. */
#define CA_REVOKE_HOST		"host"
/* Longest serial the API takes, in hex digits (ours are 32). */
#define CA_REVOKE_SERIAL_MAX	40

/*
 * The RFC 5280 CRLReason code of a reason name ("unspecified",
 * "keyCompromise", "superseded", "cessationOfOperation"), or -1 for any
 * other name.
 */
int	ca_revoke_reason_code(const char *name);

/*
 * The bytes the host key signs: "botid-revoke-v1" 0x00 || nonce ||
 * u32be(len(host_id)) || host_id || u32be(len(target)) || target ||
 * u32be(len(reason)) || reason, where target is a serial in hex or
 * CA_REVOKE_HOST. *tbs (malloc'd, the caller's) is for a verifier that
 * hashes; ca_revoke_digest gives its SHA-256 for a signer of digests.
 * Errors: BOTID_ERR_TOO_LARGE, _ALLOC, _CRYPTO (digest only).
 */
int	ca_revoke_tbs(const uint8_t *nonce, size_t nonce_len,
	    const char *host_id, const char *target, const char *reason,
	    uint8_t **tbs, size_t *tbs_len);
int	ca_revoke_digest(const uint8_t *nonce, size_t nonce_len,
	    const char *host_id, const char *target, const char *reason,
	    uint8_t digest[32]);

#endif /* BOTID_ATTEST_CA_REVOKE_H */
