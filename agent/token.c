/*
 * The agent's half of JWTs. The request only chooses audience, scopes
 * within the bot's grant and a lifetime within its maximum; everything a
 * verifier trusts about who and when comes from here.
 */
#include "botid-config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "agent/token.h"
#include "lib/certid.h"
#include "lib/error.h"
#include "lib/grant.h"
#include "lib/limits.h"

int
token_check(const struct botid_bot_config *bot,
    const struct botid_request *req, char *why, size_t whylen)
{
	size_t i, j;

	why[0] = '\0';
	for (i = 0; i < req->nscopes; i++) {
		for (j = 0; j < bot->nscopes; j++)
			if (strcmp(req->scopes[i], bot->scopes[j]) == 0)
				break;
		if (j == bot->nscopes) {
			snprintf(why, whylen, "scope %s not granted",
			    req->scopes[i]);
			return BOTID_ERR_DENIED;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(req->scopes[i], req->scopes[j]) == 0) {
				snprintf(why, whylen, "scope %s repeated",
				    req->scopes[i]);
				return BOTID_ERR_DENIED;
			}
		}
	}
	if (req->ttl > bot->max_token_ttl) {
		snprintf(why, whylen, "ttl %u above max_token_ttl %u",
		    req->ttl, bot->max_token_ttl);
		return BOTID_ERR_DENIED;
	}
	return 0;
}

int
token_alg(const struct botid_bot_config *bot, uint32_t scheme,
    enum jws_alg *alg)
{
	int ec = bot->key_type == BOTID_KEY_ECDSA_P256 ||
	    bot->key_type == BOTID_KEY_ECDSA_P384;

	if (ec) {
		if (scheme != BOTID_SCHEME_AUTO && scheme != BOTID_SCHEME_ECDSA)
			return BOTID_ERR_UNSUPPORTED;
		*alg = bot->key_type == BOTID_KEY_ECDSA_P256 ? JWS_ALG_ES256 :
		    JWS_ALG_ES384;
		return 0;
	}
	switch (scheme) {
	case BOTID_SCHEME_AUTO:
	case BOTID_SCHEME_PKCS1:
		*alg = JWS_ALG_RS256;
		return 0;
	case BOTID_SCHEME_PSS:
		*alg = JWS_ALG_PS256;
		return 0;
	}
	return BOTID_ERR_UNSUPPORTED;
}

static int
token_claims(const char *issuer, const char *spiffe,
    const struct botid_request *req,
    json_int_t now, json_int_t ttl, const char *jti, char **out)
{
	json_t *c = NULL;
	char scope[BOTID_MAX_SCOPES * (BOTID_MAX_SCOPE + 1)];
	size_t i, o = 0, n;
	int r = BOTID_ERR_ALLOC;

	*out = NULL;
	for (i = 0; i < req->nscopes; i++) {
		n = strlen(req->scopes[i]);
		if (i > 0)
			scope[o++] = ' ';
		memcpy(scope + o, req->scopes[i], n);
		o += n;
	}
	scope[o] = '\0';
	if ((c = json_object()) == NULL)
		goto out;
	if (json_object_set_new(c, "iss", json_string(issuer)) != 0 ||
	    json_object_set_new(c, "sub", json_string(spiffe)) != 0 ||
	    json_object_set_new(c, "aud", json_string(req->audience)) != 0 ||
	    json_object_set_new(c, "iat", json_integer(now)) != 0 ||
	    json_object_set_new(c, "nbf", json_integer(now)) != 0 ||
	    json_object_set_new(c, "exp", json_integer(now + ttl)) != 0 ||
	    json_object_set_new(c, "jti", json_string(jti)) != 0 ||
	    (req->nscopes > 0 &&
	    json_object_set_new(c, "scope", json_string(scope)) != 0))
		goto out;
	if ((*out = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	r = 0;
 out:
	json_decref(c);
	return r;
}

/*
 * The grant botid-ca wrote into the token key's certificate: the agent
 * holds a request to it too, so that it never signs a token that a
 * verifier checking the grant would refuse (the CA may cap the lifetime
 * below max_token_ttl).
 */
static int
token_grant(const struct botid_blob *leaf, const struct botid_request *req,
    unsigned *ttl, struct botid_grant *g)
{
	const unsigned char *p = leaf->data;
	X509 *x = NULL;
	size_t i;
	int r;

	memset(g, 0, sizeof(*g));
	if (leaf->len > LONG_MAX ||
	    (x = d2i_X509(NULL, &p, (long)leaf->len)) == NULL) {
		ERR_clear_error();
		return BOTID_ERR_INVALID;
	}
	r = grant_from_cert(x, g);
	X509_free(x);
	if (r != 0)
		return r;
	if (*ttl > (unsigned long)g->max_ttl) {
		if (req->ttl != 0) {
			grant_free(g);
			return BOTID_ERR_DENIED;
		}
		*ttl = (unsigned)g->max_ttl;
	}
	for (i = 0; i < req->nscopes; i++)
		if (!grant_has_scope(g, req->scopes[i])) {
			grant_free(g);
			return BOTID_ERR_DENIED;
		}
	return 0;
}

int
token_build(const struct botid_bot_config *bot, enum jws_alg alg,
    const struct botid_blob *chain, size_t n,
    const struct botid_request *req, time_t now, char **input, char **jti)
{
	struct botid_grant grant;
	uint8_t rnd[16];
	char *spiffe = NULL, *header = NULL, *claims = NULL, *id = NULL;
	unsigned ttl = req->ttl != 0 ? req->ttl : bot->max_token_ttl;
	int r;

	*input = NULL;
	*jti = NULL;
	memset(&grant, 0, sizeof(grant));
	if ((r = certid_spiffe_id(chain[0].data, chain[0].len, &spiffe)) != 0 ||
	    (r = token_grant(&chain[0], req, &ttl, &grant)) != 0)
		goto out;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	if ((r = jws_b64url_encode(rnd, sizeof(rnd), &id)) != 0 ||
	    (r = jws_header_build(alg, "JWT", chain, n, &header)) != 0 ||
	    (r = token_claims(grant.issuer, spiffe, req, (json_int_t)now,
	    (json_int_t)ttl, id, &claims)) != 0 ||
	    (r = jws_signing_input(header, (const uint8_t *)claims,
	    strlen(claims), input)) != 0)
		goto out;
	/* Room for the largest signature (RSA-4096: 683 characters). */
	if (strlen(*input) > BOTID_MAX_TOKEN - 1 - 700) {
		free(*input);
		*input = NULL;
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	*jti = id;
	id = NULL;
	r = 0;
 out:
	grant_free(&grant);
	free(spiffe);
	free(header);
	free(claims);
	free(id);
	return r;
}
