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
 * Private-enterprise-style arcs, every one below 2^63 so that GnuTLS,
 * python3-cryptography and Go parse them (the attestation extension's
 * 2.25 arc is being replaced for that reason).
 */
#define BOTID_OID_TOKEN_EKU	"1.3.6.1.4.1.99999.19.1"
#define BOTID_OID_TOKEN_GRANT	"1.3.6.1.4.1.99999.19.2"


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
