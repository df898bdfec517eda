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
 * "botid-pkcs11-certify-v1" 0x00 || nonce || u32be(len(bot)) || bot ||
 * u32be(len(spki)) || spki, in a malloc'd *out. Errors: BOTID_ERR_ALLOC,
 * _TOO_LARGE.
 */
int	certify_pkcs11_tbs(const uint8_t *nonce, size_t nonce_len,
	    const char *bot, const uint8_t *spki, size_t spki_len,
	    uint8_t **out, size_t *out_len);

#endif /* BOTID_CERTIFY_TBS_H */
