/*
 * JWT issuing in the agent: checks a request against the bot's scopes
 * and max_token_ttl, and builds the signing input whose digest the bot's
 * key signs. The agent, not the caller, fills identity and time claims.
 */
#ifndef BOTID_AGENT_TOKEN_H
#define BOTID_AGENT_TOKEN_H

#include <stddef.h>
#include <time.h>

#include "agent/config.h"
#include "lib/botid.h"
#include "lib/jws.h"
#include "lib/wire.h"

/*
 * Checks that every requested scope is one of the bot's and that the ttl
 * (0: the bot's maximum) is within max_token_ttl. On refusal returns
 * BOTID_ERR_DENIED with a short reason (for the caller and the audit log)
 * in why.
 */
int	token_check(const struct botid_bot_config *bot,
	    const struct botid_request *req, char *why, size_t whylen);

/*
 * The algorithm for the bot's key type; scheme PSS asks for PS256 with an
 * RSA key. Errors: BOTID_ERR_UNSUPPORTED (PSS with an EC key, or an
 * unknown scheme).
 */
int	token_alg(const struct botid_bot_config *bot, uint32_t scheme,
	    enum jws_alg *alg);

/*
 * Builds "b64url(header).b64url(claims)" for the bot whose token-key
 * chain (leaf first) is given: iss from the leaf's grant extension, sub
 * from its SPIFFE ID, aud, iat, nbf, exp = now + ttl, a random jti,
 * scope. *input and *jti are malloc'd. Errors: BOTID_ERR_NOT_FOUND (the
 * leaf has no SPIFFE ID), _DENIED (the leaf is not a token-key
 * certificate, or ttl or a scope exceeds its grant), _TOO_LARGE
 * (the token would exceed BOTID_MAX_TOKEN: a very long chain), _CRYPTO,
 * _ALLOC.
 */
int	token_build(const struct botid_bot_config *bot, enum jws_alg alg,
	    const struct botid_blob *chain, size_t n,
	    const struct botid_request *req, time_t now, char **input,
	    char **jti);

#endif /* BOTID_AGENT_TOKEN_H */
