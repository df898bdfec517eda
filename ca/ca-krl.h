/*
 * OpenSSH key revocation lists (OpenSSH's PROTOCOL.krl) for sshd's
 * RevokedKeys: the serials of revoked SSH certificates under one CA key,
 * and the keys they certified, so that the plain key is refused as well.
 */
#ifndef BOTID_CA_KRL_H
#define BOTID_CA_KRL_H

#include <stddef.h>
#include <stdint.h>

#define CA_KRL_DIGEST_LEN	32u	/* SHA-256 */

struct ca_krl;

/* An empty list (*krlp, freed with ca_krl_free()). Errors: _ALLOC. */
int	ca_krl_new(struct ca_krl **krlp);
void	ca_krl_free(struct ca_krl *krl);

/*
 * Adds a revoked certificate: its SSH serial and the plain key it
 * certified, as an OpenSSH line "TYPE BASE64[ COMMENT]" whose blob names
 * TYPE first. Serial 0 revokes by key only (sshd ignores a certificate's
 * serial 0 and refuses a KRL that lists it). Errors: BOTID_ERR_INVALID
 * (not such a line, or a certificate's), _TOO_LARGE (the list would
 * exceed BOTID_MAX_KRL), _ALLOC.
 */
int	ca_krl_add(struct ca_krl *krl, uint64_t serial, const char *key_line);

/*
 * SHA-256 of the serials and keys, sorted and each once: two lists revoke
 * the same when their digests are equal, whatever the order of adding.
 * Errors: BOTID_ERR_TOO_LARGE, _ALLOC, _CRYPTO.
 */
int	ca_krl_digest(struct ca_krl *krl, uint8_t digest[CA_KRL_DIGEST_LEN]);

/*
 * Encodes the KRL: the header (krl_version version, generated_date date,
 * no flags, comment), then, when there are serials, one certificates
 * section for ca_key (the CA's SSH public key blob) listing them in
 * ascending order, and, when there are keys, one explicit key section
 * listing them in ascending byte order; no signature section. *out
 * (malloc'd, *out_len bytes) is the caller's. Errors: BOTID_ERR_INVALID
 * (empty ca_key), _TOO_LARGE (more than BOTID_MAX_KRL bytes), _ALLOC.
 */
int	ca_krl_encode(struct ca_krl *krl, const uint8_t *ca_key,
	    size_t ca_key_len, uint64_t version, uint64_t date,
	    const char *comment, uint8_t **out, size_t *out_len);

#endif /* BOTID_CA_KRL_H */
