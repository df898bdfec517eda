/*
 * Signed messages: a JWS with detached payload (RFC 7515 appendix F) made
 * from the bot's certificate chain and a SIGN_DIGEST of the signing input
 * (hashed here, so a message of any size costs one small frame).
 * The payload travels separately; the JWS says who signed it.
 */
#include "botid-config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/botid.h"
#include "lib/jws.h"
#include "lib/limits.h"
#include "lib/sig.h"

/* The algorithm for the leaf's key: what the bot's key can sign with. */
static int
message_alg(const char *key_type, enum jws_alg *alg)
{
	if (strcmp(key_type, "ecdsa-p256") == 0)
		*alg = JWS_ALG_ES256;
	else if (strcmp(key_type, "ecdsa-p384") == 0)
		*alg = JWS_ALG_ES384;
	else if (strncmp(key_type, "rsa-", 4) == 0)
		*alg = JWS_ALG_RS256;
	else
		return BOTID_ERR_UNSUPPORTED;
	return 0;
}

int
botid_sign_msg(struct botid_client *c, const char *bot, const void *data,
    size_t len, char **jwsp)
{
	struct botid_bot_info *bots = NULL;
	struct botid_blob *chain = NULL;
	enum jws_alg alg = JWS_ALG_ES256;
	uint8_t digest[BOTID_MAX_DIGEST], *sig = NULL;
	char *header = NULL, *input = NULL;
	size_t nbots = 0, nchain = 0, sig_len = 0, digest_len = 0, i;
	int r;

	*jwsp = NULL;
	if ((r = botid_list(c, &bots, &nbots)) != 0)
		goto out;
	for (i = 0; i < nbots; i++)
		if (strcmp(bots[i].name, bot) == 0)
			break;
	if (i == nbots) {
		r = BOTID_ERR_DENIED;
		goto out;
	}
	if ((r = message_alg(bots[i].key_type, &alg)) != 0 ||
	    (r = botid_cert_chain(c, bot, &chain, &nchain)) != 0)
		goto out;
	if (nchain == 0) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	if (nchain > BOTID_MAX_CHAIN) {
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	if ((r = jws_header_build(alg, NULL, chain, nchain, &header)) != 0 ||
	    (r = jws_signing_input(header, data, len, &input)) != 0 ||
	    (r = sig_digest(jws_alg_hash(alg), input, strlen(input), digest,
	    &digest_len)) != 0 ||
	    (r = botid_sign_digest(c, bot, jws_alg_hash(alg),
	    jws_alg_scheme(alg), jws_alg_scheme(alg) == BOTID_SCHEME_ECDSA ?
	    BOTID_FORMAT_RAW : BOTID_FORMAT_DER, digest, digest_len, &sig,
	    &sig_len)) != 0 ||
	    (r = jws_finish(input, 1, sig, sig_len, jwsp)) != 0)
		goto out;
	r = 0;
 out:
	free(sig);
	free(input);
	free(header);
	botid_blobs_free(chain, nchain);
	botid_bot_info_free(bots, nbots);
	return r;
}
