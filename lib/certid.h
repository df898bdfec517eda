/*
 * What a botid certificate says about its bot: the SPIFFE ID in its URI
 * SAN, the attestation extension (doc/ca-api.md) and its SHA-256
 * thumbprint, read from DER with OpenSSL.
 */
#ifndef BOTID_CERTID_H
#define BOTID_CERTID_H

#include <stddef.h>
#include <stdint.h>

/* The attestation extension: a DER UTF8String "tpm" or "pkcs11". */
#define BOTID_OID_ATTESTATION	"2.25.270483204527800964550038576487470208458"

/*
 * The certificate's single spiffe:// URI SAN as a malloc'd string.
 * Errors: BOTID_ERR_INVALID (not a certificate), _NOT_FOUND (no spiffe
 * URI), _UNSUPPORTED (more than one), _ALLOC.
 */
int	certid_spiffe_id(const uint8_t *der, size_t len, char **id);

/*
 * The attestation extension's value ("tpm", "pkcs11") as a malloc'd
 * string. Errors: BOTID_ERR_INVALID, _NOT_FOUND, _ALLOC.
 */
int	certid_attestation(const uint8_t *der, size_t len, char **kind);

/*
 * base64url (no padding) SHA-256 of the DER certificate, as in JOSE
 * "x5t#S256"; botid uses it as "kid". Errors: BOTID_ERR_CRYPTO, _ALLOC.
 */
int	certid_thumbprint(const uint8_t *der, size_t len, char **kid);

#endif /* BOTID_CERTID_H */
