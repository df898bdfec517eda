/*
 * What a bot's token-key certificate says it may do: the botid token
 * extended key usage (only the agent's JWT builder signs with such a
 * key) and the grant extension (issuer, maximum token lifetime, scopes),
 * both set by botid-ca (doc/ca-api.md); and the key as a JWK with its
 * RFC 7638 thumbprint, the "kid" of tokens and of botid-ca's JWK Set.
 */
#ifndef BOTID_GRANT_H
#define BOTID_GRANT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/limits.h"

/*
 * Under botid's token arc: a UUID of botid's (deca09bd-6f99-49e1-a1f4-
 * 2ddd3b7309ea) written under 1.2.840.113556.1.8000.2554, the arc
 * Microsoft publishes for turning a UUID into an OID without registering,
 * as lib/certid.h does for the attestation claim. No arc is wider than
 * 24 bits: GnuTLS, python3-cryptography 38 and Go (2^31) parse them.
 */
#define BOTID_OID_TOKEN_ARC \
	"1.2.840.113556.1.8000.2554.57034.2493.28569.18913.41460.3005755.7539178"
#define BOTID_OID_TOKEN_EKU	BOTID_OID_TOKEN_ARC ".1"
#define BOTID_OID_TOKEN_GRANT	BOTID_OID_TOKEN_ARC ".2"


/*
 * BotidTokenGrant ::= SEQUENCE {
 *     issuer       UTF8String,            -- the iss tokens carry
 *     maxLifetime  INTEGER (1..2^31-1),   -- seconds, exp - iat at most
 *     scopes       SEQUENCE SIZE (1..BOTID_MAX_SCOPES) OF UTF8String }
 */
struct botid_grant {
	char		*issuer;
	long		 max_ttl;
	char		**scopes;
	size_t		 nscopes;
};

/* Frees what the grant holds; accepts a zeroed or freed grant. */
void	grant_free(struct botid_grant *g);

/*
 * The extension's DER value (the OCTET STRING's contents) for g; *der is
 * malloc'd. Errors: BOTID_ERR_INVALID (empty or oversized fields),
 * _CRYPTO, _ALLOC.
 */
int	grant_encode(const struct botid_grant *g, uint8_t **der, size_t *len);

/*
 * Parses an extension value into g (owned by the caller, grant_free):
 * no trailing bytes, limits as in grant_encode. Errors: BOTID_ERR_INVALID,
 * _ALLOC.
 */
int	grant_decode(const uint8_t *der, size_t len, struct botid_grant *g);

/*
 * The certificate's grant: 0 only when it carries the token EKU (and
 * neither serverAuth nor clientAuth) and exactly one valid grant
 * extension. Errors: BOTID_ERR_DENIED (not a token-key certificate),
 * _INVALID (malformed grant), _ALLOC.
 */
int	grant_from_cert(X509 *x, struct botid_grant *g);

/* 1 if scope is one of g's scopes. */
int	grant_has_scope(const struct botid_grant *g, const char *scope);

/*
 * The public key as a JWK object with only its required members (EC:
 * crv, kty, x, y for P-256/P-384; RSA: e, kty, n). Errors:
 * BOTID_ERR_UNSUPPORTED (another key type), _CRYPTO, _ALLOC.
 */
int	jwk_from_pkey(EVP_PKEY *pk, json_t **jwk);

/*
 * The RFC 7638 thumbprint of pk: base64url (no padding) of SHA-256 over
 * the required members in lexicographic order, malloc'd.
 * Errors: as jwk_from_pkey.
 */
int	jwk_thumbprint(EVP_PKEY *pk, char **kid);

/* The same from a DER SubjectPublicKeyInfo. Errors: also _INVALID. */
int	jwk_thumbprint_spki(const uint8_t *spki, size_t len, char **kid);

#endif /* BOTID_GRANT_H */
