/*
 * JSON Web Signature (RFC 7515) in compact form, as botid makes and checks
 * it: base64url, the algorithms a bot key can do (ES256, ES384, RS256,
 * PS256), headers with kid and x5c, and a strict parser for tokens from
 * the network (size cap, exactly three parts, no duplicate JSON keys).
 */
#ifndef BOTID_JWS_H
#define BOTID_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/botid.h"

enum jws_alg {
	JWS_ALG_ES256 = 1,
	JWS_ALG_ES384 = 2,
	JWS_ALG_RS256 = 3,
	JWS_ALG_PS256 = 4,
};

/* A parsed compact JWS. Strings are NUL-terminated and owned by it. */
struct jws_parsed {
	json_t		*header;	/* JSON object */
	enum jws_alg	 alg;
	char		*signing_input;	/* "HEADER.PAYLOAD" as received */
	size_t		 signing_input_len;
	uint8_t		*payload;	/* decoded; NULL when detached */
	size_t		 payload_len;
	int		 detached;	/* the middle part was empty */
	uint8_t		*sig;		/* decoded signature (JOSE form) */
	size_t		 sig_len;
	struct botid_blob *x5c;		/* decoded chain, leaf first */
	size_t		 nx5c;
};

/* Encodes len bytes as base64url without padding. Errors: _ALLOC. */
int	jws_b64url_encode(const uint8_t *in, size_t len, char **out);

/*
 * Decodes len characters of strict base64url: no padding, no whitespace,
 * no length of 1 mod 4, unused trailing bits zero. *out is malloc'd
 * (plus a NUL byte after *outlen, for text). Errors: BOTID_ERR_INVALID,
 * _TOO_LARGE (over max decoded bytes), _ALLOC.
 */
int	jws_b64url_decode(const char *in, size_t len, size_t max,
	    uint8_t **out, size_t *outlen);

/* "ES256"... or NULL; and back (0 or BOTID_ERR_UNSUPPORTED: "none", HS*). */
const char *jws_alg_name(enum jws_alg alg);
int	jws_alg_parse(const char *name, enum jws_alg *alg);

/* The digest (enum botid_hash) and signature scheme an algorithm uses. */
uint32_t jws_alg_hash(enum jws_alg alg);
uint32_t jws_alg_scheme(enum jws_alg alg);

/*
 * The RFC 7638 JWK thumbprint of the key in a DER certificate (malloc'd),
 * the kid of botid's JWS headers and JWK Sets. Errors: BOTID_ERR_INVALID
 * (not a certificate), _UNSUPPORTED (key type), _CRYPTO, _ALLOC.
 */
int	jws_leaf_kid(const struct botid_blob *leaf, char **kid);

/*
 * The header {"alg","typ","kid","x5c"} for a chain (leaf first, DER);
 * typ is omitted when NULL. *json is malloc'd compact JSON.
 * Errors: BOTID_ERR_INVALID (empty chain), _CRYPTO, _ALLOC.
 */
int	jws_header_build(enum jws_alg alg, const char *typ,
	    const struct botid_blob *chain, size_t n, char **json);

/*
 * "b64url(header).b64url(payload)" as a malloc'd string; with detached,
 * the payload is left out ("b64url(header)."), and the caller signs the
 * full input. Errors: _ALLOC.
 */
int	jws_signing_input(const char *header, const uint8_t *payload,
	    size_t payload_len, char **input);

/*
 * Appends '.' and the base64url of a JOSE signature to input, returning
 * the token; with detached, the middle part is emptied first.
 * Errors: _ALLOC, _INVALID.
 */
int	jws_finish(const char *input, int detached, const uint8_t *sig,
	    size_t sig_len, char **token);

/*
 * Converts a signature between the agent's form and JOSE's: for ES*
 * algorithms JOSE is r || s, each field_len bytes (32 or 48), which is
 * what the agent returns for FORMAT_RAW; RSA signatures are the same in
 * both. jws_sig_to_der gives what OpenSSL verifies.
 * Errors: BOTID_ERR_INVALID, _ALLOC.
 */
int	jws_sig_to_der(enum jws_alg alg, const uint8_t *sig, size_t len,
	    uint8_t **der, size_t *der_len);

/*
 * Parses a compact JWS of len bytes (at most BOTID_MAX_TOKEN): exactly
 * three parts, a header that is a JSON object without duplicate keys,
 * with a known asymmetric "alg" (never "none" or HS*), optional "x5c"
 * (array of base64 DER, at most BOTID_MAX_CHAIN), no "crit". An empty
 * middle part is a detached payload. On error, a one-line reason goes to
 * err. Errors: BOTID_ERR_TOO_LARGE, _INVALID, _UNSUPPORTED (alg), _ALLOC.
 */
int	jws_parse(const char *token, size_t len, struct jws_parsed *out,
	    char *err, size_t errlen);

/* Frees what jws_parse() filled; accepts a zeroed or freed struct. */
void	jws_parsed_free(struct jws_parsed *p);

#endif /* BOTID_JWS_H */
