/*
 * botid-ca's signing side: its key (a PEM file for tests, or a PKCS#11
 * token through libp11) and certificate, issuing host and bot
 * certificates, the CRL, and the TLS server certificate it serves with.
 */
#ifndef BOTID_ATTEST_CA_ISSUE_H
#define BOTID_ATTEST_CA_ISSUE_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "ca/ca-config.h"
#include "ca/ca-db.h"
#include "lib/certid.h"
#include "lib/grant.h"

/* The attestation extension (doc/ca-api.md), as every reader looks it up. */
#define CA_ATTEST_OID	BOTID_OID_ATTESTATION

struct ca_signer;

/*
 * Creates what `botid-ca init` makes: for ca_key = file:PATH a P-256 key
 * (0600) if absent, and a self-signed CA certificate at ca_cert if absent.
 * *made says what was created. Errors: _IO, _CRYPTO, _PKCS11 (err set).
 */
int	ca_signer_init(const struct ca_config *c, int *made, char *err,
	    size_t errlen);

/* Loads the CA key and certificate and checks they match. */
int	ca_signer_open(const struct ca_config *c, struct ca_signer **sp,
	    char *err, size_t errlen);
void	ca_signer_close(struct ca_signer *s);

/* The CA certificate as PEM (owned by s). */
const char *ca_signer_bundle(const struct ca_signer *s);

/*
 * The certificate has an empty subject and the SPIFFE ID as its only name,
 * so it matches no host name. serves adds serverAuth (bots may serve mTLS
 * to other bots, which check the SPIFFE ID); hosts only ever connect.
 */
struct ca_issue_req {
	const char	*spiffe_id;	/* the only name: one URI SAN */
	int		 serves;
	EVP_PKEY	*pubkey;
	long		 lifetime;	/* seconds */
	const char	*attestation;	/* "tpm" or "pkcs11" */
	/*
	 * NULL for a bot's or host's key (clientAuth, serverAuth); else a
	 * token-key certificate: only the botid token EKU, and the grant
	 * extension (lib/grant.h).
	 */
	const struct botid_grant *grant;
};

/*
 * Issues a certificate; *chain is PEM (leaf then the CA certificate,
 * malloc'd), serial 32 uppercase hex digits, *not_after its end.
 * Errors: _CRYPTO, _ALLOC.
 */
int	ca_issue(struct ca_signer *s, const struct ca_issue_req *req,
	    char **chain, char serial[33], time_t *not_after);

/*
 * The CRL of every revoked, unexpired certificate, PEM (malloc'd), with an
 * authorityKeyIdentifier and a cRLNumber; signed again only when its entries
 * changed or it is half-way to its nextUpdate (an hour after it).
 */
int	ca_crl(struct ca_signer *s, struct ca_db *db, char **pem);

/*
 * Creates the TLS server key tls_key (P-256, 0600) when absent, and its
 * self-signed certificate tls_cert (for listen's host and public_url's)
 * when absent, each written atomically; *made has 1 when the key was
 * made, 2 when the certificate was. Errors: _CRYPTO, _IO (err set).
 */
int	ca_tls_key_init(const struct ca_config *c, int *made, char *err,
	    size_t errlen);

/*
 * The pin of tls_key for agents (botid provision --ca-pin): "sha256//"
 * and the base64 SHA-256 of its SubjectPublicKeyInfo, as curl pins;
 * *pin malloc'd. Errors: _NOT_FOUND (no tls_key file: a CA from before
 * it), _IO, _CRYPTO, _ALLOC.
 */
int	ca_tls_pin(const struct ca_config *c, char **pin, char *err,
	    size_t errlen);

/*
 * A TLS server context with tls_key and its self-signed certificate
 * (tls_cert, or one made now for host), never issued by the CA key; a CA
 * without a tls_key file serves, as before, a new key with a certificate
 * for host issued by the CA. Errors: _CRYPTO.
 */
int	ca_tls_context(struct ca_signer *s, const char *host, SSL_CTX **ctxp);

#endif /* BOTID_ATTEST_CA_ISSUE_H */
