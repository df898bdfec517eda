/*
 * What a botid certificate says about its bot: the SPIFFE ID in its URI
 * SAN, the attestation extension (doc/ca-api.md) and its SHA-256
 * thumbprint, read from DER with OpenSSL.
 */
#ifndef BOTID_CERTID_H
#define BOTID_CERTID_H

#include <stddef.h>
#include <stdint.h>

/*
 * The attestation extension (doc/ca-api.md): a DER UTF8String "tpm" or
 * "pkcs11". Its OID is the UUID botid chose, written under
 * 1.2.840.113556.1.8000.2554, the arc Microsoft publishes for making OIDs
 * from UUIDs without registration: no arc is wider than 24 bits, so
 * GnuTLS, python3-cryptography 38 and Go's crypto/x509 all parse it.
 */
#define BOTID_OID_ATTESTATION \
	"1.2.840.113556.1.8000.2554.52093.11161.8788.17731.38138.7442963.11539914"
/*
 * The same UUID as a 2.25 OID: botid-ca wrote it before, with a 128-bit
 * arc those stacks refuse. Read during the transition, never written.
 */
#define BOTID_OID_ATTESTATION_UUID \
	"2.25.270483204527800964550038576487470208458"

/*
 * The certificate's single spiffe:// URI SAN as a malloc'd string.
 * Errors: BOTID_ERR_INVALID (not a certificate), _NOT_FOUND (no spiffe
 * URI), _UNSUPPORTED (more than one), _ALLOC.
 */
int	certid_spiffe_id(const uint8_t *der, size_t len, char **id);

/*
 * The attestation extension's value ("tpm", "pkcs11") as a malloc'd
 * string, from the extension under BOTID_OID_ATTESTATION or, failing
 * that, BOTID_OID_ATTESTATION_UUID. Errors: BOTID_ERR_INVALID (not a
 * certificate, a malformed value, the extension twice, or both OIDs),
 * _NOT_FOUND, _CRYPTO, _ALLOC.
 */
int	certid_attestation(const uint8_t *der, size_t len, char **kind);

/*
 * The extension's value for kind (1 to BOTID_MAX_ATTESTATION_KIND bytes
 * of a-z, 0-9, '-'): a DER UTF8String, malloc'd in *der. Errors:
 * BOTID_ERR_INVALID, _ALLOC.
 */
int	certid_attestation_encode(const char *kind, uint8_t **der,
	    size_t *len);

/*
 * Decodes an extension value made by certid_attestation_encode() into a
 * malloc'd kind. Anything else (another tag, a long-form length, trailing
 * bytes, a character outside a-z, 0-9, '-') is BOTID_ERR_INVALID; also
 * _ALLOC.
 */
int	certid_attestation_decode(const uint8_t *der, size_t len,
	    char **kind);

/*
 * base64url (no padding) SHA-256 of the DER certificate, as in JOSE
 * "x5t#S256"; botid uses it as "kid". Errors: BOTID_ERR_CRYPTO, _ALLOC.
 */
int	certid_thumbprint(const uint8_t *der, size_t len, char **kid);

#endif /* BOTID_CERTID_H */
