/* The PKCS#11 bot vouching message (certify-tbs.h). */
#include <stdlib.h>
#include <string.h>

#include "lib/botid.h"
#include "lib/certify-tbs.h"
#include "lib/limits.h"

#define TBS_LABEL	"botid-pkcs11-certify-v2"
#define TBS_PART_MAX	(1u << 20)	/* no nonce, name or key is larger */

static size_t
put_be32(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

int
certify_pkcs11_tbs(const uint8_t *nonce, size_t nonce_len, const char *bot,
    const uint8_t *spki, size_t spki_len, uint8_t **out, size_t *out_len)
{
	size_t blen = strlen(bot), off = 0;
	uint8_t *t;

	*out = NULL;
	*out_len = 0;
	if (nonce == NULL || nonce_len != BOTID_NONCE_LEN)
		return BOTID_ERR_INVALID;
	if (blen > TBS_PART_MAX || spki_len > TBS_PART_MAX)
		return BOTID_ERR_TOO_LARGE;
	/* The label goes in with its NUL. */
	if ((t = malloc(sizeof(TBS_LABEL) + 4 + nonce_len + 4 + blen + 4 +
	    spki_len)) == NULL)
		return BOTID_ERR_ALLOC;
	memcpy(t, TBS_LABEL, sizeof(TBS_LABEL));
	off += sizeof(TBS_LABEL);
	off += put_be32(t + off, nonce_len);
	memcpy(t + off, nonce, nonce_len);
	off += nonce_len;
	off += put_be32(t + off, blen);
	memcpy(t + off, bot, blen);
	off += blen;
	off += put_be32(t + off, spki_len);
	memcpy(t + off, spki, spki_len);
	off += spki_len;
	*out = t;
	*out_len = off;
	return 0;
}
