/*
 * ECDSA signature encodings and digests, with OpenSSL doing the ASN.1.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "lib/error.h"
#include "lib/limits.h"
#include "lib/sig.h"
#include "lib/wire.h"

int
sig_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t **der,
    size_t *der_len)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *p = NULL;
	int n, ret = BOTID_ERR_CRYPTO;
	size_t half;

	*der = NULL;
	*der_len = 0;
	if (raw_len == 0 || raw_len % 2 != 0 || raw_len > BOTID_MAX_SIGNATURE)
		return BOTID_ERR_INVALID;
	half = raw_len / 2;
	if ((sig = ECDSA_SIG_new()) == NULL ||
	    (r = BN_bin2bn(raw, (int)half, NULL)) == NULL ||
	    (s = BN_bin2bn(raw + half, (int)half, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(sig, r, s) != 1)
		goto out;
	r = s = NULL;	/* owned by sig now */
	if ((n = i2d_ECDSA_SIG(sig, &p)) <= 0)
		goto out;
	*der = p;
	*der_len = (size_t)n;
	p = NULL;
	ret = 0;
 out:
	OPENSSL_free(p);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return ret;
}

int
sig_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t field_len,
    uint8_t **raw, size_t *raw_len)
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig = NULL;
	uint8_t *out = NULL;
	int ret = BOTID_ERR_INVALID;

	*raw = NULL;
	*raw_len = 0;
	if (der_len == 0 || der_len > BOTID_MAX_SIGNATURE || field_len == 0 ||
	    field_len > BOTID_MAX_SIGNATURE / 2)
		return BOTID_ERR_INVALID;
	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL ||
	    p != der + der_len)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if ((size_t)BN_num_bytes(r) > field_len ||
	    (size_t)BN_num_bytes(s) > field_len)
		goto out;
	if ((out = malloc(2 * field_len)) == NULL) {
		ret = BOTID_ERR_ALLOC;
		goto out;
	}
	if (BN_bn2binpad(r, out, (int)field_len) < 0 ||
	    BN_bn2binpad(s, out + field_len, (int)field_len) < 0) {
		ret = BOTID_ERR_CRYPTO;
		goto out;
	}
	*raw = out;
	*raw_len = 2 * field_len;
	out = NULL;
	ret = 0;
 out:
	free(out);
	ECDSA_SIG_free(sig);
	return ret;
}

int
sig_digest(uint32_t hash, const void *data, size_t len, uint8_t *out,
    size_t *out_len)
{
	const EVP_MD *md;
	unsigned int n = 0;

	*out_len = 0;
	switch (hash) {
	case BOTID_HASH_SHA256:
		md = EVP_sha256();
		break;
	case BOTID_HASH_SHA384:
		md = EVP_sha384();
		break;
	case BOTID_HASH_SHA512:
		md = EVP_sha512();
		break;
	default:
		return BOTID_ERR_INVALID;
	}
	if (EVP_Digest(data, len, out, &n, md, NULL) != 1)
		return BOTID_ERR_CRYPTO;
	*out_len = n;
	return 0;
}
