/*
 * libbotid: sign with a bot's hardware-backed key through the botid agent.
 *
 * Link with `pkg-config --libs libbotid`. Every function returns 0 or a
 * negative BOTID_ERR_* code (botid_strerror() names it); results come back
 * through out-parameters that the caller frees with botid_free(). A
 * client handle is for one thread at a time.
 */
#ifndef BOTID_H
#define BOTID_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum botid_err {
	BOTID_OK = 0,
	BOTID_ERR_INTERNAL = -1,	/* broken invariant or unexpected failure */
	BOTID_ERR_ALLOC = -2,		/* out of memory */
	BOTID_ERR_INCOMPLETE = -3,	/* input ended early; more may come */
	BOTID_ERR_TOO_LARGE = -4,	/* a length exceeds its limit */
	BOTID_ERR_INVALID = -5,		/* malformed input or argument */
	BOTID_ERR_UNSUPPORTED = -6,	/* valid but not supported */
	BOTID_ERR_DENIED = -7,		/* the caller may not do this */
	BOTID_ERR_NOT_FOUND = -8,	/* no such bot, key, file or object */
	BOTID_ERR_IO = -9,		/* a system call failed; see errno */
	BOTID_ERR_CONFIG = -10,		/* configuration is invalid */
	BOTID_ERR_CRYPTO = -11,		/* OpenSSL reported a failure */
	BOTID_ERR_TPM = -12,		/* the TPM or TSS reported a failure */
	BOTID_ERR_PKCS11 = -13,		/* the PKCS#11 module reported a failure */
	BOTID_ERR_EXPORTABLE = -14,	/* a key is, or was ever, extractable */
	BOTID_ERR_BUSY = -15,		/* a limit on concurrent work was hit */
	BOTID_ERR_PROTOCOL = -16,	/* the peer broke the wire protocol */
	BOTID_ERR_CLOSED = -17,		/* the peer closed the connection */
	BOTID_ERR_VERSION = -18,	/* unsupported protocol version */
	BOTID_ERR_TIMEOUT = -19,	/* an operation took too long */
	BOTID_ERR_UNAVAILABLE = -20,	/* a backend is down; retry later */
	BOTID_ERR_AUDIT_UNAVAILABLE = -21, /* the agent cannot write its audit
					 * log, so it signs nothing; retry */
};

enum botid_hash {
	BOTID_HASH_SHA256 = 1,
	BOTID_HASH_SHA384 = 2,
	BOTID_HASH_SHA512 = 3,
};

enum botid_scheme {
	BOTID_SCHEME_AUTO = 0,		/* ECDSA for EC keys, PKCS#1 v1.5 for RSA */
	BOTID_SCHEME_PKCS1 = 1,		/* RSASSA-PKCS1-v1_5 */
	BOTID_SCHEME_PSS = 2,		/* RSASSA-PSS, MGF1 same hash, salt = hash length */
	BOTID_SCHEME_ECDSA = 3,
};

enum botid_sig_format {
	BOTID_FORMAT_DER = 0,		/* ECDSA-Sig-Value; the only form for RSA */
	BOTID_FORMAT_RAW = 1,		/* ECDSA r || s, each the curve's size */
};

/* Default socket when neither an argument nor $BOTID_SOCKET names one. */
#define BOTID_DEFAULT_SOCKET	"/run/botid/agent.sock"

struct botid_client;

struct botid_bot_info {
	char	*name;
	char	*key_type;	/* "ecdsa-p256", "rsa-2048", ... */
	char	*backend;	/* "tpm" or "pkcs11" */
};

struct botid_blob {
	uint8_t	*data;
	size_t	 len;
};

/* Returns a static one-line description of an error code. */
const char *botid_strerror(int r);

/*
 * Connects to the agent at path (NULL: $BOTID_SOCKET, else the default)
 * and performs the version handshake. *cp is the caller's (botid_close()).
 * Errors: BOTID_ERR_IO (cannot connect), _VERSION, _PROTOCOL, _ALLOC.
 */
int	botid_connect(const char *path, struct botid_client **cp);

/* Closes the connection and frees c; accepts NULL. */
void	botid_close(struct botid_client *c);

/* The agent's one-line message for the last failed request, or "". */
const char *botid_message(const struct botid_client *c);

/*
 * After a request failed with BOTID_ERR_BUSY (the bot's queue in the agent
 * is longer than its max_queue_wait): the milliseconds the agent suggests
 * waiting before a retry (at least 1), or 0 when it gave no hint (a
 * connection with too many requests in flight: read a reply first). Reset
 * by every request.
 */
uint32_t botid_retry_after(const struct botid_client *c);

/* The agent's name and version from the handshake. */
const char *botid_agent_version(const struct botid_client *c);

/*
 * Lists the bots this process may use. *bots is an array of *nbots entries
 * (botid_bot_info_free()). Errors: transport errors, _PROTOCOL.
 */
int	botid_list(struct botid_client *c, struct botid_bot_info **bots,
	    size_t *nbots);
void	botid_bot_info_free(struct botid_bot_info *bots, size_t nbots);

/* A key protection attribute as the TPM or token reported it. */
struct botid_key_attr {
	char	*name;		/* "fixedTPM", "CKA_SENSITIVE", ... */
	int	 set;
};

/* One bot as an administrator sees it (botid_inventory()). */
struct botid_inventory_entry {
	char			*name;
	char			*key_type;
	char			*backend;
	uint8_t			 fingerprint[32]; /* SHA-256 of the DER SPKI */
	int			 has_fingerprint; /* 0: the key is unusable */
	struct botid_key_attr	*attrs;		/* read from the device now */
	size_t			 nattrs;
	char			*serial;	/* leaf, hex; NULL: no certificate */
	char			*spiffe_id;	/* NULL when absent */
	char			*attestation;	/* "tpm", "pkcs11" or NULL */
	int64_t			 not_after;	/* 0: no valid certificate */
	char			**allow;	/* allow lines as configured */
	size_t			 nallow;
	char			**scopes;
	size_t			 nscopes;
	int64_t			 last_used;	/* 0: not since the agent started */
	uint64_t		 ops;		/* answered since the agent started */
	uint64_t		 denials;
	int64_t			 renewed;	/* last renewal; 0: none yet */
	int			 renew_ok;
	char			*error;		/* the bot's last error, or NULL */
	uint32_t		 key_generation; /* rotations of its key so far */
};

/*
 * Every bot of the agent with its key, certificate, grants and counters;
 * only for callers the agent's admin lines admit (uid 0 by default).
 * *bots is an array of *nbots entries (botid_inventory_free()).
 * Errors: BOTID_ERR_DENIED, _TOO_LARGE (too many bots for one reply),
 * _PROTOCOL, transport errors.
 */
int	botid_inventory(struct botid_client *c,
	    struct botid_inventory_entry **bots, size_t *nbots);
void	botid_inventory_free(struct botid_inventory_entry *bots, size_t nbots);

/*
 * Rotates the bot's key now, for an administrator of the agent: returns
 * once a new key, certified by the CA, is the one the bot signs with;
 * *generation is its number. The old key is destroyed and its certificate
 * revoked after the agent's rotate_grace. Errors: BOTID_ERR_DENIED (not
 * an administrator, or no such bot), _BACKEND... as the agent says
 * (botid_message()), transport errors.
 */
int	botid_rotate(struct botid_client *c, const char *bot,
	    uint32_t *generation);

/*
 * Deprovisions the host, for an administrator of the agent: the agent
 * has the CA revoke the host (and so every certificate issued to it),
 * destroys every key it made (all bots, all generations, the host's
 * attestation and host keys) and stops. Errors: BOTID_ERR_DENIED, or what
 * the agent says (botid_message()), transport errors.
 */
int	botid_deprovision(struct botid_client *c);

/*
 * The bot's public key as DER SubjectPublicKeyInfo (botid_free()).
 * Errors: BOTID_ERR_DENIED (not allowed, or no such bot), transport errors.
 */
int	botid_pubkey(struct botid_client *c, const char *bot, uint8_t **der,
	    size_t *der_len);

/*
 * The bot's certificate chain, leaf first, DER (botid_blobs_free()); empty
 * until the agent has a certificate. Errors: as botid_pubkey().
 */
int	botid_cert_chain(struct botid_client *c, const char *bot,
	    struct botid_blob **certs, size_t *ncerts);
void	botid_blobs_free(struct botid_blob *blobs, size_t n);

/*
 * Signs a digest (its length must match hash) or data (hashed by the agent
 * with hash) with the bot's key. *sig is the caller's (botid_free()).
 * Errors: BOTID_ERR_DENIED, _UNSUPPORTED (scheme not for this key),
 * _INVALID, _UNAVAILABLE (device down), _BUSY, transport errors.
 */
int	botid_sign_digest(struct botid_client *c, const char *bot,
	    enum botid_hash hash, enum botid_scheme scheme,
	    enum botid_sig_format format, const uint8_t *digest,
	    size_t digest_len, uint8_t **sig, size_t *sig_len);
int	botid_sign_data(struct botid_client *c, const char *bot,
	    enum botid_hash hash, enum botid_scheme scheme,
	    enum botid_sig_format format, const void *data, size_t data_len,
	    uint8_t **sig, size_t *sig_len);

/*
 * Asks the agent for a JWT (compact JWS) naming the bot: iss and sub are
 * its SPIFFE ID, aud is aud, scope the nscopes scopes (each one the bot
 * was granted), exp is ttl seconds away (0: the bot's max_token_ttl).
 * *jwt is the caller's (botid_free()). Errors: BOTID_ERR_DENIED (not
 * allowed, a scope not granted, ttl above the maximum; botid_message()
 * says which), _NOT_FOUND (the bot has no certificate yet), _INVALID
 * (bad name, audience or scope), transport errors.
 */
int	botid_jwt(struct botid_client *c, const char *bot, const char *aud,
	    const char *const *scopes, size_t nscopes, uint32_t ttl,
	    char **jwt);

/*
 * botid_jwt() with a signature scheme: BOTID_SCHEME_PSS asks for PS256
 * from an RSA bot; AUTO gives ES256/ES384/RS256 by key type. Errors: as
 * botid_jwt(), and BOTID_ERR_UNSUPPORTED (PSS with an ECDSA key).
 */
int	botid_jwt_scheme(struct botid_client *c, const char *bot,
	    const char *aud, const char *const *scopes, size_t nscopes,
	    uint32_t ttl, enum botid_scheme scheme, char **jwt);

/*
 * Signs len bytes of data as a JWS with detached payload (RFC 7515
 * appendix F: "HEADER..SIGNATURE"), the header carrying alg, kid and the
 * bot's chain in x5c. *jws is the caller's (botid_free()). Errors: as
 * botid_sign_data(), and BOTID_ERR_NOT_FOUND (no certificate yet).
 */
int	botid_sign_msg(struct botid_client *c, const char *bot,
	    const void *data, size_t len, char **jws);

/* What a verifier requires; zero what does not apply. */
struct botid_verify_opts {
	const char	 *bundle;	/* PEM file of trusted CA certificates */
	const char	 *crl;		/* PEM file of CRLs, or NULL */
	const char	 *audience;	/* JWT: aud must contain it */
	const char *const *scopes;	/* JWT: each must be in scope */
	size_t		  nscopes;
	const char	 *spiffe_id;	/* NULL: any bot of the trust domain */
	int		  require_tpm;	/* attestation extension must be "tpm" */
	long		  leeway;	/* seconds of clock skew tolerated */
	int64_t		  now;		/* 0: the current time */
	const char	 *issuer;	/* JWT: iss must be it; NULL: any */
};
#define BOTID_DEFAULT_LEEWAY	60

/* What a verification established; botid_verified_free() frees it. */
struct botid_verified {
	char	*spiffe_id;	/* the leaf's SPIFFE ID */
	char	*attestation;	/* "tpm", "pkcs11", or NULL if absent */
	char	*alg;		/* "ES256"...; NULL for a bare chain */
	char	*claims;	/* JWT: the claims as JSON; otherwise NULL */
};

/*
 * Verify a JWT, a detached-payload JWS over data, or a certificate chain
 * (DER, leaf first) against opts: the chain (x5c) to the bundle, with the
 * CRL when given, validity within leeway, kid (when present) the RFC 7638
 * thumbprint of the leaf's key, alg matching the leaf's key (never "none"
 * or HS*), the signature, and for a JWT: a leaf that is a token-key
 * certificate (botid token EKU and grant: a bot's signing key cannot make
 * a token), iss the grant's issuer (and opts->issuer when set), sub the
 * leaf's SPIFFE ID, aud, exp, nbf, iat (required), exp - iat within the
 * grant's maximum, every scope within the grant, and the required scopes.
 * On success *v is the caller's. On failure err holds a one-line reason.
 * Errors: BOTID_ERR_INVALID (malformed), _TOO_LARGE (over
 * BOTID_MAX_TOKEN), _UNSUPPORTED (alg), _DENIED (well-formed but not
 * acceptable: signature, chain, time, audience, scope, identity), _IO
 * (bundle or CRL unreadable), _ALLOC.
 */
int	botid_verify_jwt(const struct botid_verify_opts *opts,
	    const char *token, struct botid_verified **v, char *err,
	    size_t errlen);
int	botid_verify_msg(const struct botid_verify_opts *opts,
	    const void *data, size_t len, const char *jws,
	    struct botid_verified **v, char *err, size_t errlen);
int	botid_verify_cert(const struct botid_verify_opts *opts,
	    const struct botid_blob *chain, size_t n,
	    struct botid_verified **v, char *err, size_t errlen);
void	botid_verified_free(struct botid_verified *v);

/*
 * botid_verify_jwt() for a relying party that also holds botid-ca's JWK
 * Set (GET /.well-known/jwks.json, jwks_len bytes of JSON, at most
 * BOTID_MAX_JWKS): the token's kid must name a key of the set whose x5c
 * leaf is the token's, so a token key whose certificate was revoked, or
 * that expired, is refused as soon as the caller fetches the set again.
 * Errors: as botid_verify_jwt(), and _DENIED (kid not in the set),
 * _INVALID (the set is not a JWK Set), _TOO_LARGE.
 */
int	botid_verify_jwt_jwks(const struct botid_verify_opts *opts,
	    const char *jwks, size_t jwks_len, const char *token,
	    struct botid_verified **v, char *err, size_t errlen);

/* Frees memory returned by this library; accepts NULL. */
void	botid_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* BOTID_H */
