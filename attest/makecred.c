/*
 * TPM2_MakeCredential in software (TPM 2.0 Part 1, 24 "Credential
 * Protection"; Part 3, 12.6). A seed only the EK's TPM can recover is made
 * (RSA: random and OAEP-encrypted with label "IDENTITY"; ECC: from an
 * ephemeral ECDH with KDFe), then KDFa derives from it an AES key bound to
 * the AK's name, which encrypts the credential, and an HMAC key that seals
 * the encrypted credential to that name. The TPM refuses the blob unless
 * both the EK and an object with that name are loaded in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <tss2/tss2_mu.h>

#include "attest/makecred.h"
#include "attest/tpm-verify.h"
#include "lib/botid.h"

#define MAX_DIGEST	64

static const EVP_MD *
name_md(TPMI_ALG_HASH alg)
{
	switch (alg) {
	case TPM2_ALG_SHA256:	return EVP_sha256();
	case TPM2_ALG_SHA384:	return EVP_sha384();
	}
	return NULL;	/* EK templates use SHA-256 or SHA-384 */
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * KDFa (Part 1, 11.4.10.2): HMAC_key(counter || label\0 || u || v || bits),
 * counters from 1, output truncated to bits (a multiple of 8 here).
 */
static int
kdfa(const EVP_MD *md, const uint8_t *key, size_t key_len, const char *label,
    const uint8_t *u, size_t u_len, const uint8_t *v, size_t v_len,
    size_t bits, uint8_t *out)
{
	uint8_t block[MAX_DIGEST], be[4], bb[4];
	size_t done = 0, need = bits / 8, n;
	unsigned int len;
	uint32_t counter = 1;
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	char mdname[32];
	int r = BOTID_ERR_CRYPTO;

	snprintf(mdname, sizeof(mdname), "%s", EVP_MD_get0_name(md));
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    mdname, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		goto out;
	put_be32(bb, (uint32_t)bits);
	while (done < need) {
		size_t outl = 0;

		if ((ctx = EVP_MAC_CTX_new(mac)) == NULL ||
		    EVP_MAC_init(ctx, key, key_len, params) != 1)
			goto out;
		put_be32(be, counter++);
		if (EVP_MAC_update(ctx, be, 4) != 1 ||
		    EVP_MAC_update(ctx, (const uint8_t *)label,
		    strlen(label) + 1) != 1 ||
		    (u_len > 0 && EVP_MAC_update(ctx, u, u_len) != 1) ||
		    (v_len > 0 && EVP_MAC_update(ctx, v, v_len) != 1) ||
		    EVP_MAC_update(ctx, bb, 4) != 1 ||
		    EVP_MAC_final(ctx, block, &outl, sizeof(block)) != 1)
			goto out;
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
		len = (unsigned int)outl;
		n = need - done < len ? need - done : len;
		memcpy(out + done, block, n);
		done += n;
	}
	r = 0;
 out:
	OPENSSL_cleanse(block, sizeof(block));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return r;
}

/*
 * KDFe (Part 1, 11.4.10.3): H(counter || Z || label\0 || u || v), counters
 * from 1, truncated to bits.
 */
static int
kdfe(const EVP_MD *md, const uint8_t *z, size_t z_len, const char *label,
    const uint8_t *u, size_t u_len, const uint8_t *v, size_t v_len,
    size_t bits, uint8_t *out)
{
	uint8_t block[MAX_DIGEST], be[4];
	size_t done = 0, need = bits / 8, n;
	unsigned int len = 0;
	uint32_t counter = 1;
	EVP_MD_CTX *ctx = NULL;
	int r = BOTID_ERR_CRYPTO;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	while (done < need) {
		put_be32(be, counter++);
		if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		    EVP_DigestUpdate(ctx, be, 4) != 1 ||
		    EVP_DigestUpdate(ctx, z, z_len) != 1 ||
		    EVP_DigestUpdate(ctx, label, strlen(label) + 1) != 1 ||
		    EVP_DigestUpdate(ctx, u, u_len) != 1 ||
		    EVP_DigestUpdate(ctx, v, v_len) != 1 ||
		    EVP_DigestFinal_ex(ctx, block, &len) != 1)
			goto out;
		n = need - done < len ? need - done : len;
		memcpy(out + done, block, n);
		done += n;
	}
	r = 0;
 out:
	OPENSSL_cleanse(block, sizeof(block));
	EVP_MD_CTX_free(ctx);
	return r;
}

/* RSA EK: a random seed, OAEP-encrypted under the EK with "IDENTITY". */
static int
seed_rsa(const TPM2B_PUBLIC *ek, const EVP_MD *md, uint8_t *seed,
    size_t seed_len, TPM2B_ENCRYPTED_SECRET *enc)
{
	static const char label[] = "IDENTITY";
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t *lab = NULL;
	size_t outlen = sizeof(enc->secret);
	int r;

	if ((r = tpm_public_to_pkey(ek, &pk)) != 0)
		return r;
	r = BOTID_ERR_CRYPTO;
	if (RAND_bytes(seed, (int)seed_len) != 1 ||
	    (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1)
		goto out;
	/* The label includes its NUL; OpenSSL takes ownership of it. */
	if ((lab = OPENSSL_memdup(label, sizeof(label))) == NULL ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, lab, sizeof(label)) != 1)
		goto out;
	lab = NULL;
	if (EVP_PKEY_encrypt(ctx, enc->secret, &outlen, seed, seed_len) != 1)
		goto out;
	enc->size = (UINT16)outlen;
	r = 0;
 out:
	OPENSSL_free(lab);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return r;
}

/* ECC EK: ECDH with an ephemeral key on the EK's curve, then KDFe. */
static int
seed_ecc(const TPM2B_PUBLIC *ek, const EVP_MD *md, uint8_t *seed,
    size_t seed_len, TPM2B_ENCRYPTED_SECRET *enc)
{
	const TPMS_ECC_POINT *q = &ek->publicArea.unique.ecc;
	EVP_PKEY *pk = NULL, *eph = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	TPMS_ECC_POINT point;
	uint8_t z[128], pub[1 + 2 * 66];
	size_t z_len = sizeof(z), pub_len = 0, clen, off = 0;
	int r;

	if ((r = tpm_public_to_pkey(ek, &pk)) != 0)
		return r;
	r = BOTID_ERR_CRYPTO;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_keygen(ctx, &eph) != 1)
		goto out;
	EVP_PKEY_CTX_free(ctx);
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL)) == NULL ||
	    EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, pk) != 1 ||
	    EVP_PKEY_derive(ctx, z, &z_len) != 1)
		goto out;
	if (EVP_PKEY_get_octet_string_param(eph,
	    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof(pub),
	    &pub_len) != 1 || pub_len < 3 || pub[0] != 0x04)
		goto out;
	clen = (pub_len - 1) / 2;
	memset(&point, 0, sizeof(point));
	point.x.size = (UINT16)clen;
	point.y.size = (UINT16)clen;
	memcpy(point.x.buffer, pub + 1, clen);
	memcpy(point.y.buffer, pub + 1 + clen, clen);
	/* Z is the shared point's x, as wide as the curve. */
	if ((r = kdfe(md, z, z_len, "IDENTITY", point.x.buffer, clen,
	    q->x.buffer, q->x.size, seed_len * 8, seed)) != 0)
		goto out;
	r = BOTID_ERR_INTERNAL;
	if (Tss2_MU_TPMS_ECC_POINT_Marshal(&point, enc->secret,
	    sizeof(enc->secret), &off) != 0)
		goto out;
	enc->size = (UINT16)off;
	r = 0;
 out:
	OPENSSL_cleanse(z, sizeof(z));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(eph);
	EVP_PKEY_free(pk);
	return r;
}

int
tpm_make_credential(const TPM2B_PUBLIC *ek, const uint8_t *name,
    size_t name_len, const uint8_t *secret, size_t secret_len,
    uint8_t **blob, size_t *blob_len, uint8_t **enc, size_t *enc_len)
{
	const TPMT_PUBLIC *p = &ek->publicArea;
	const TPMT_SYM_DEF_OBJECT *sym;
	const EVP_MD *md;
	const EVP_CIPHER *cipher;
	TPM2B_ENCRYPTED_SECRET es;
	TPM2B_DIGEST cred;
	TPM2B_ID_OBJECT id;
	uint8_t seed[MAX_DIGEST], aes[32], hkey[MAX_DIGEST], iv[16];
	uint8_t plain[sizeof(TPM2B_DIGEST)], hmac[MAX_DIGEST];
	uint8_t *b = NULL, *e = NULL;
	size_t seed_len, plain_len = 0, off;
	unsigned int hmac_len = 0;
	EVP_CIPHER_CTX *cctx = NULL;
	size_t hlen;
	int outl = 0, fin = 0, r = BOTID_ERR_UNSUPPORTED;

	*blob = *enc = NULL;
	*blob_len = *enc_len = 0;
	memset(&es, 0, sizeof(es));
	memset(&id, 0, sizeof(id));
	/* A name is nameAlg || digest; the TPM takes no secret longer. */
	if ((md = name_md(p->nameAlg)) == NULL)
		goto out;
	if (secret == NULL || name == NULL || secret_len == 0 ||
	    secret_len > (size_t)EVP_MD_get_size(md) || name_len < 2 + 20 ||
	    name_len > sizeof(TPMU_NAME)) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	/* Only a storage key (restricted decrypt) can activate. */
	if ((p->objectAttributes & (TPMA_OBJECT_RESTRICTED |
	    TPMA_OBJECT_DECRYPT)) != (TPMA_OBJECT_RESTRICTED |
	    TPMA_OBJECT_DECRYPT) || (p->objectAttributes &
	    TPMA_OBJECT_SIGN_ENCRYPT) != 0) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	sym = p->type == TPM2_ALG_RSA ? &p->parameters.rsaDetail.symmetric :
	    p->type == TPM2_ALG_ECC ? &p->parameters.eccDetail.symmetric : NULL;
	if (sym == NULL || sym->algorithm != TPM2_ALG_AES ||
	    sym->mode.aes != TPM2_ALG_CFB)
		goto out;
	/* The EK templates of the TCG profile we recreate and accept. */
	if ((p->type == TPM2_ALG_RSA &&
	    p->parameters.rsaDetail.keyBits != 2048) ||
	    (p->type == TPM2_ALG_ECC &&
	    p->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 &&
	    p->parameters.eccDetail.curveID != TPM2_ECC_NIST_P384))
		goto out;
	cipher = sym->keyBits.aes == 128 ? EVP_aes_128_cfb128() :
	    sym->keyBits.aes == 256 ? EVP_aes_256_cfb128() : NULL;
	if (cipher == NULL)
		goto out;
	seed_len = (size_t)EVP_MD_get_size(md);
	r = p->type == TPM2_ALG_RSA ? seed_rsa(ek, md, seed, seed_len, &es) :
	    seed_ecc(ek, md, seed, seed_len, &es);
	if (r != 0)
		goto out;
	/* encIdentity = CFB(symKey, 0 IV, marshalled TPM2B_DIGEST secret). */
	if ((r = kdfa(md, seed, seed_len, "STORAGE", name, name_len, NULL, 0,
	    sym->keyBits.aes, aes)) != 0)
		goto out;
	cred.size = (UINT16)secret_len;
	memcpy(cred.buffer, secret, secret_len);
	r = BOTID_ERR_INTERNAL;
	if (Tss2_MU_TPM2B_DIGEST_Marshal(&cred, plain, sizeof(plain),
	    &plain_len) != 0)
		goto out;
	/* The ID object: TPM2B outer HMAC, then the encrypted identity. */
	hlen = seed_len;
	id.size = (UINT16)(2 + hlen + plain_len);
	if (id.size > sizeof(id.credential))
		goto out;
	memset(iv, 0, sizeof(iv));
	r = BOTID_ERR_CRYPTO;
	if ((cctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(cctx, cipher, NULL, aes, iv) != 1 ||
	    EVP_EncryptUpdate(cctx, id.credential + 2 + hlen, &outl, plain,
	    (int)plain_len) != 1 ||
	    EVP_EncryptFinal_ex(cctx, id.credential + 2 + hlen + outl,
	    &fin) != 1 || (size_t)(outl + fin) != plain_len)
		goto out;
	if ((r = kdfa(md, seed, seed_len, "INTEGRITY", NULL, 0, NULL, 0,
	    hlen * 8, hkey)) != 0)
		goto out;
	r = BOTID_ERR_CRYPTO;
	{
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		EVP_MAC_CTX *mctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
		OSSL_PARAM params[2];
		char mdname[32];
		size_t ml = 0;
		int ok;

		snprintf(mdname, sizeof(mdname), "%s", EVP_MD_get0_name(md));
		params[0] = OSSL_PARAM_construct_utf8_string(
		    OSSL_MAC_PARAM_DIGEST, mdname, 0);
		params[1] = OSSL_PARAM_construct_end();
		ok = mctx != NULL &&
		    EVP_MAC_init(mctx, hkey, hlen, params) == 1 &&
		    EVP_MAC_update(mctx, id.credential + 2 + hlen,
		    plain_len) == 1 &&
		    EVP_MAC_update(mctx, name, name_len) == 1 &&
		    EVP_MAC_final(mctx, hmac, &ml, sizeof(hmac)) == 1 &&
		    ml == hlen;
		EVP_MAC_CTX_free(mctx);
		EVP_MAC_free(mac);
		if (!ok)
			goto out;
		hmac_len = (unsigned int)ml;
	}
	id.credential[0] = (uint8_t)(hmac_len >> 8);
	id.credential[1] = (uint8_t)hmac_len;
	memcpy(id.credential + 2, hmac, hmac_len);
	r = BOTID_ERR_ALLOC;
	if ((b = malloc(sizeof(TPM2B_ID_OBJECT))) == NULL ||
	    (e = malloc(sizeof(TPM2B_ENCRYPTED_SECRET))) == NULL)
		goto out;
	r = BOTID_ERR_INTERNAL;
	off = 0;
	if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(&id, b, sizeof(TPM2B_ID_OBJECT),
	    &off) != 0)
		goto out;
	*blob_len = off;
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&es, e,
	    sizeof(TPM2B_ENCRYPTED_SECRET), &off) != 0)
		goto out;
	*enc_len = off;
	*blob = b;
	*enc = e;
	b = e = NULL;
	r = 0;
 out:
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(aes, sizeof(aes));
	OPENSSL_cleanse(hkey, sizeof(hkey));
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(&cred, sizeof(cred));
	EVP_CIPHER_CTX_free(cctx);
	free(b);
	free(e);
	if (r != 0)
		*blob_len = *enc_len = 0;
	return r;
}
