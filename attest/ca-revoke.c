/*
 * The revocation message (ca-revoke.h). It is built with the bounded
 * buffer API and carries a label, so a host key signature made for one
 * purpose (certify, revoke) can never be replayed as another.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attest/ca-revoke.h"
#include "lib/botid.h"
#include "lib/buf.h"

#define REVOKE_LABEL	"botid-revoke-v1"
#define REVOKE_TBS_MAX	4096	/* label, nonce, host id, serial, reason */

static const struct {
	const char	*name;
	int		 code;
} reasons[] = {
	{ "unspecified", 0 },
	{ "keyCompromise", 1 },
	{ "superseded", 4 },
	{ "cessationOfOperation", 5 },
};

int
ca_revoke_reason_code(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcmp(name, reasons[i].name) == 0)
			return reasons[i].code;
	return -1;
}

int
ca_revoke_tbs(const uint8_t *nonce, size_t nonce_len, const char *host_id,
    const char *target, const char *reason, uint8_t **tbs, size_t *tbs_len)
{
	struct botid_buf b;
	int r;

	*tbs = NULL;
	*tbs_len = 0;
	buf_init(&b, REVOKE_TBS_MAX);
	buf_set_secret(&b);	/* it holds the nonce */
	/* The label goes in with its NUL. */
	if ((r = buf_put(&b, REVOKE_LABEL, sizeof(REVOKE_LABEL))) != 0 ||
	    (r = buf_put(&b, nonce, nonce_len)) != 0 ||
	    (r = buf_put_string(&b, host_id, strlen(host_id))) != 0 ||
	    (r = buf_put_string(&b, target, strlen(target))) != 0 ||
	    (r = buf_put_string(&b, reason, strlen(reason))) != 0)
		goto out;
	if ((*tbs = malloc(buf_len(&b))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	memcpy(*tbs, buf_ptr(&b), buf_len(&b));
	*tbs_len = buf_len(&b);
	r = 0;
 out:
	buf_reset(&b);
	return r;
}

int
ca_revoke_digest(const uint8_t *nonce, size_t nonce_len, const char *host_id,
    const char *target, const char *reason, uint8_t digest[32])
{
	uint8_t *tbs = NULL;
	size_t len = 0;
	int r;

	if ((r = ca_revoke_tbs(nonce, nonce_len, host_id, target, reason,
	    &tbs, &len)) != 0)
		goto out;
	r = EVP_Digest(tbs, len, digest, NULL, EVP_sha256(), NULL) == 1 ? 0 :
	    BOTID_ERR_CRYPTO;
 out:
	if (tbs != NULL)
		OPENSSL_cleanse(tbs, len);
	free(tbs);
	return r;
}
