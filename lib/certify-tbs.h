/*
 * The bytes a host key signs to vouch for a PKCS#11 bot key at botid-ca
 * (doc/ca-api.md): built once here for the agent that signs them and the
 * CA that checks them.
 */
#ifndef BOTID_CERTIFY_TBS_H
#define BOTID_CERTIFY_TBS_H

#include <stddef.h>
#include <stdint.h>

/*
 * "botid-pkcs11-certify-v2" 0x00 || u32be(len(nonce)) || nonce ||
 * u32be(len(bot)) || bot || u32be(len(spki)) || spki, in a malloc'd *out.
 * Every part is length-prefixed, so no two inputs give the same bytes; the
 * nonce is exactly BOTID_NONCE_LEN bytes, as the CA makes them. Errors:
 * BOTID_ERR_INVALID (nonce length), _TOO_LARGE, _ALLOC.
 */
int	certify_pkcs11_tbs(const uint8_t *nonce, size_t nonce_len,
	    const char *bot, const uint8_t *spki, size_t spki_len,
	    uint8_t **out, size_t *out_len);

#endif /* BOTID_CERTIFY_TBS_H */
