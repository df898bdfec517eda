/*
 * OpenSSH key and signature encodings (RFC 4253 6.6, RFC 5656 3.1, RFC 8332,
 * PROTOCOL.agent) built from DER public keys and raw device signatures,
 * and the few checks botid makes on keys a peer sends.
 */
#ifndef BOTID_SSHKEY_H
#define BOTID_SSHKEY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

enum botid_sshkey_kind {
	BOTID_SSHKEY_NONE = 0,
	BOTID_SSHKEY_ECDSA_P256,
	BOTID_SSHKEY_ECDSA_P384,
	BOTID_SSHKEY_ECDSA_P521,
	BOTID_SSHKEY_RSA,
	BOTID_SSHKEY_ED25519,	/* only as a peer's host key */
};

/* "SHA256:" and 43 base64 characters, as ssh-keygen -l prints. */
#define BOTID_SSHKEY_FP_LEN	(7u + 43u + 1u)

/*
 * Appends to blob the SSH public key blob (without length prefix) of the
 * DER SubjectPublicKeyInfo spki and sets *kind. Errors:
 * BOTID_ERR_UNSUPPORTED (key type or curve), BOTID_ERR_INVALID (not a
 * public key), buf_put errors.
 */
int	sshkey_from_spki(const uint8_t *spki, size_t spki_len,
	    struct botid_buf *blob, enum botid_sshkey_kind *kind);

/* The key type name in a blob ("ecdsa-sha2-nistp256"...), or NULL. */
const char *sshkey_type_name(enum botid_sshkey_kind kind);

/*
 * Appends an mpint holding the unsigned big-endian magnitude p[0..n):
 * leading zeros dropped, a zero byte prepended when the top bit is set.
 */
int	sshkey_put_mpint(struct botid_buf *b, const uint8_t *p, size_t n);

/*
 * Appends, as one string, the SSH signature blob for a device signature:
 * alg (e.g. "rsa-sha2-256"), then for ECDSA the raw r || s as two mpints,
 * for RSA the modulus-sized octets. Errors: BOTID_ERR_INVALID (odd ECDSA
 * length), buf_put errors.
 */
int	sshkey_put_signature(struct botid_buf *b, enum botid_sshkey_kind kind,
	    const char *alg, const uint8_t *sig, size_t sig_len);

/* Writes "SHA256:<base64 without padding>" of blob into out. */
int	sshkey_fingerprint(const uint8_t *blob, size_t blob_len,
	    char out[BOTID_SSHKEY_FP_LEN]);

/*
 * Checks that sig (an SSH signature blob) is key's signature over data,
 * for ssh-ed25519 and ecdsa-sha2-nistp256/384 keys. Returns 0 if it is;
 * BOTID_ERR_DENIED (bad signature), BOTID_ERR_UNSUPPORTED (key type),
 * BOTID_ERR_INVALID / _INCOMPLETE (malformed blobs).
 */
int	sshkey_verify(const uint8_t *key, size_t key_len, const uint8_t *sig,
	    size_t sig_len, const uint8_t *data, size_t data_len);

/*
 * Checks that cert is an OpenSSH user certificate (PROTOCOL.certkeys) for
 * the key blob key: its type is the key's with "-cert-v01@openssh.com",
 * its key fields are the key's. Sets *valid_before. The CA's signature is
 * not checked (sshd does). Errors: BOTID_ERR_INVALID (another key or
 * type, not a user certificate), _INCOMPLETE, _TOO_LARGE (malformed).
 */
int	sshkey_cert_check(const uint8_t *cert, size_t cert_len,
	    const uint8_t *key, size_t key_len, uint64_t *valid_before);

#endif /* BOTID_SSHKEY_H */
