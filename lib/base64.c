/*
 * Strict base64 over OpenSSL's block coder, which alone would accept
 * whitespace and report padding bytes as data.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/base64.h"
#include "lib/botid.h"

int
base64_encode(const uint8_t *in, size_t len, char **out)
{
	char *s;

	*out = NULL;
	if (len > (size_t)(1 << 30))
		return BOTID_ERR_TOO_LARGE;
	if ((s = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return BOTID_ERR_ALLOC;
	EVP_EncodeBlock((unsigned char *)s, in, (int)len);
	*out = s;
	return 0;
}

int
base64_decode(const char *in, size_t max, uint8_t **out, size_t *len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), pad = 0, i, dlen;
	uint8_t *buf = NULL;
	int got;

	*out = NULL;
	*len = 0;
	if (n % 4 != 0)
		return BOTID_ERR_INVALID;
	if (n / 4 > max / 3 + 1)
		return BOTID_ERR_TOO_LARGE;
	if (n >= 1 && in[n - 1] == '=')
		pad++;
	if (n >= 2 && in[n - 2] == '=')
		pad++;
	for (i = 0; i < n - pad; i++)
		if (in[i] == '\0' || strchr(alphabet, in[i]) == NULL)
			return BOTID_ERR_INVALID;
	dlen = n / 4 * 3 - pad;
	if (dlen > max)
		return BOTID_ERR_TOO_LARGE;
	if ((buf = malloc(n / 4 * 3 + 1)) == NULL)
		return BOTID_ERR_ALLOC;
	got = n == 0 ? 0 : EVP_DecodeBlock(buf, (const unsigned char *)in,
	    (int)n);
	if (got < 0 || (size_t)got != n / 4 * 3) {
		free(buf);
		return BOTID_ERR_INVALID;
	}
	*out = buf;
	*len = dlen;
	return 0;
}
