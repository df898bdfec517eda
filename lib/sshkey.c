/*
 * OpenSSH wire encodings of botid's keys and signatures. Keys come from
 * our own devices (DER SPKI) and are trusted; the only peer input here is
 * a host key and signature checked by sshkey_verify, read through lib/buf.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/sig.h"
#include "lib/sshkey.h"

/* Longest SSH field botid reads from a peer's host key or signature. */
#define SSHKEY_MAX_FIELD	BOTID_SSH_MAX_KEY_BLOB

const char *
sshkey_type_name(enum botid_sshkey_kind kind)
{
	switch (kind) {
	case BOTID_SSHKEY_ECDSA_P256:	return "ecdsa-sha2-nistp256";
	case BOTID_SSHKEY_ECDSA_P384:	return "ecdsa-sha2-nistp384";
	case BOTID_SSHKEY_ECDSA_P521:	return "ecdsa-sha2-nistp521";
	case BOTID_SSHKEY_RSA:		return "ssh-rsa";
	case BOTID_SSHKEY_ED25519:	return "ssh-ed25519";
	case BOTID_SSHKEY_NONE:		break;
	}
	return NULL;
}

static const char *
curve_ssh_name(enum botid_sshkey_kind kind)
{
	switch (kind) {
	case BOTID_SSHKEY_ECDSA_P256:	return "nistp256";
	case BOTID_SSHKEY_ECDSA_P384:	return "nistp384";
	case BOTID_SSHKEY_ECDSA_P521:	return "nistp521";
	default:			return NULL;
	}
}

static const char *
curve_ossl_name(enum botid_sshkey_kind kind)
{
	switch (kind) {
	case BOTID_SSHKEY_ECDSA_P256:	return "prime256v1";
	case BOTID_SSHKEY_ECDSA_P384:	return "secp384r1";
	case BOTID_SSHKEY_ECDSA_P521:	return "secp521r1";
	default:			return NULL;
	}
}

static int
put_cstring(struct botid_buf *b, const char *s)
{
	return buf_put_string(b, s, strlen(s));
}

int
sshkey_put_mpint(struct botid_buf *b, const uint8_t *p, size_t n)
{
	int r;

	while (n > 0 && p[0] == 0) {
		p++;
		n--;
	}
	if (n > 0 && (p[0] & 0x80) != 0) {
		if (n > UINT32_MAX - 1)
			return BOTID_ERR_TOO_LARGE;
		if ((r = buf_put_u32(b, (uint32_t)n + 1)) != 0 ||
		    (r = buf_put_u8(b, 0)) != 0)
			return r;
		return buf_put(b, p, n);
	}
	return buf_put_string(b, p, n);
}

static int
put_bn_mpint(struct botid_buf *b, const BIGNUM *bn)
{
	uint8_t tmp[1024];
	int n;

	if ((n = BN_num_bytes(bn)) < 0 || (size_t)n > sizeof(tmp))
		return BOTID_ERR_UNSUPPORTED;
	if (BN_bn2bin(bn, tmp) != n)
		return BOTID_ERR_CRYPTO;
	return sshkey_put_mpint(b, tmp, (size_t)n);
}

static enum botid_sshkey_kind
kind_from_group(const char *group)
{
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
		return BOTID_SSHKEY_ECDSA_P256;
	if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
		return BOTID_SSHKEY_ECDSA_P384;
	if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
		return BOTID_SSHKEY_ECDSA_P521;
	return BOTID_SSHKEY_NONE;
}

int
sshkey_from_spki(const uint8_t *spki, size_t spki_len, struct botid_buf *blob,
    enum botid_sshkey_kind *kind)
{
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	const unsigned char *p = spki;
	enum botid_sshkey_kind k = BOTID_SSHKEY_NONE;
	uint8_t point[160];
	char group[64];
	size_t point_len = 0;
	int r = BOTID_ERR_INVALID;

	*kind = BOTID_SSHKEY_NONE;
	if (spki_len > BOTID_MAX_PUBKEY ||
	    (pkey = d2i_PUBKEY(NULL, &p, (long)spki_len)) == NULL ||
	    p != spki + spki_len)
		goto out;
	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(pkey,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
		    NULL) != 1 ||
		    (k = kind_from_group(group)) == BOTID_SSHKEY_NONE) {
			r = BOTID_ERR_UNSUPPORTED;
			goto out;
		}
		if (EVP_PKEY_get_octet_string_param(pkey,
		    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
		    &point_len) != 1) {
			r = BOTID_ERR_CRYPTO;
			goto out;
		}
		if ((r = put_cstring(blob, sshkey_type_name(k))) != 0 ||
		    (r = put_cstring(blob, curve_ssh_name(k))) != 0 ||
		    (r = buf_put_string(blob, point, point_len)) != 0)
			goto out;
	} else if (EVP_PKEY_is_a(pkey, "RSA")) {
		k = BOTID_SSHKEY_RSA;
		if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N,
		    &n) != 1 || EVP_PKEY_get_bn_param(pkey,
		    OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
			r = BOTID_ERR_CRYPTO;
			goto out;
		}
		/* RFC 4253: e before n. */
		if ((r = put_cstring(blob, "ssh-rsa")) != 0 ||
		    (r = put_bn_mpint(blob, e)) != 0 ||
		    (r = put_bn_mpint(blob, n)) != 0)
			goto out;
	} else {
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	*kind = k;
	r = 0;
 out:
	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(pkey);
	return r;
}

int
sshkey_put_signature(struct botid_buf *b, enum botid_sshkey_kind kind,
    const char *alg, const uint8_t *sig, size_t sig_len)
{
	struct botid_buf inner, rs;
	int r;

	buf_init(&inner, BOTID_MAX_SIGNATURE + 128);
	buf_init(&rs, BOTID_MAX_SIGNATURE + 16);
	if ((r = put_cstring(&inner, alg)) != 0)
		goto out;
	if (kind == BOTID_SSHKEY_RSA) {
		if ((r = buf_put_string(&inner, sig, sig_len)) != 0)
			goto out;
	} else {
		if (sig_len == 0 || sig_len % 2 != 0) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		if ((r = sshkey_put_mpint(&rs, sig, sig_len / 2)) != 0 ||
		    (r = sshkey_put_mpint(&rs, sig + sig_len / 2,
		    sig_len / 2)) != 0 ||
		    (r = buf_put_string(&inner, buf_ptr(&rs),
		    buf_len(&rs))) != 0)
			goto out;
	}
	r = buf_put_string(b, buf_ptr(&inner), buf_len(&inner));
 out:
	buf_reset(&inner);
	buf_reset(&rs);
	return r;
}

int
sshkey_fingerprint(const uint8_t *blob, size_t blob_len,
    char out[BOTID_SSHKEY_FP_LEN])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char *b64 = NULL;
	size_t n;
	int r;

	out[0] = '\0';
	if (SHA256(blob, blob_len, md) == NULL)
		return BOTID_ERR_CRYPTO;
	if ((r = base64_encode(md, sizeof(md), &b64)) != 0)
		return r;
	/* OpenSSH prints it without the padding. */
	n = strlen(b64);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	if (n > 43)
		n = 43;
	memcpy(out, "SHA256:", 7);
	memcpy(out + 7, b64, n);
	out[7 + n] = '\0';
	free(b64);
	return 0;
}

/* Whether the string just read equals the C string s. */
static int
string_is(const uint8_t *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* A public key from a peer's blob, for sshkey_verify. */
static int
pkey_from_blob(const uint8_t *key, size_t key_len, EVP_PKEY **pkeyp,
    enum botid_sshkey_kind *kind)
{
	struct botid_buf b;
	const uint8_t *type, *curve, *q;
	size_t type_len, curve_len, q_len;
	enum botid_sshkey_kind k = BOTID_SSHKEY_NONE;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int r;

	*pkeyp = NULL;
	buf_init_view(&b, key, key_len);
	if ((r = buf_get_string_direct(&b, &type, &type_len,
	    SSHKEY_MAX_FIELD)) != 0)
		goto out;
	if (string_is(type, type_len, "ssh-ed25519")) {
		if ((r = buf_get_string_direct(&b, &q, &q_len,
		    SSHKEY_MAX_FIELD)) != 0)
			goto out;
		if (q_len != 32 || buf_len(&b) != 0) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		if ((*pkeyp = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
		    NULL, q, q_len)) == NULL) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		*kind = BOTID_SSHKEY_ED25519;
		r = 0;
		goto out;
	}
	if (string_is(type, type_len, "ecdsa-sha2-nistp256"))
		k = BOTID_SSHKEY_ECDSA_P256;
	else if (string_is(type, type_len, "ecdsa-sha2-nistp384"))
		k = BOTID_SSHKEY_ECDSA_P384;
	else {
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	if ((r = buf_get_string_direct(&b, &curve, &curve_len,
	    SSHKEY_MAX_FIELD)) != 0 ||
	    (r = buf_get_string_direct(&b, &q, &q_len,
	    SSHKEY_MAX_FIELD)) != 0)
		goto out;
	if (!string_is(curve, curve_len, curve_ssh_name(k)) ||
	    buf_len(&b) != 0) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	r = BOTID_ERR_INVALID;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    curve_ossl_name(k), 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    q, q_len) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, pkeyp, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	*kind = k;
	r = 0;
 out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

int
sshkey_verify(const uint8_t *key, size_t key_len, const uint8_t *sig,
    size_t sig_len, const uint8_t *data, size_t data_len)
{
	struct botid_buf b, rs;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	const EVP_MD *hash = NULL;
	enum botid_sshkey_kind kind = BOTID_SSHKEY_NONE;
	const uint8_t *alg, *s, *rr, *ss;
	size_t alg_len, s_len, r_len, ss_len, field;
	uint8_t raw[2 * 66], *der = NULL;
	size_t der_len = 0;
	int r;

	if ((r = pkey_from_blob(key, key_len, &pkey, &kind)) != 0)
		goto out;
	buf_init_view(&b, sig, sig_len);
	if ((r = buf_get_string_direct(&b, &alg, &alg_len,
	    SSHKEY_MAX_FIELD)) != 0 ||
	    (r = buf_get_string_direct(&b, &s, &s_len,
	    SSHKEY_MAX_FIELD)) != 0)
		goto out;
	if (buf_len(&b) != 0 ||
	    !string_is(alg, alg_len, sshkey_type_name(kind))) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if (kind != BOTID_SSHKEY_ED25519) {
		/* mpint r, mpint s: back to a fixed-width r || s, then DER. */
		field = kind == BOTID_SSHKEY_ECDSA_P256 ? 32 : 48;
		hash = kind == BOTID_SSHKEY_ECDSA_P256 ? EVP_sha256() :
		    EVP_sha384();
		buf_init_view(&rs, s, s_len);
		if ((r = buf_get_string_direct(&rs, &rr, &r_len,
		    field + 1)) != 0 ||
		    (r = buf_get_string_direct(&rs, &ss, &ss_len,
		    field + 1)) != 0)
			goto out;
		if (buf_len(&rs) != 0) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		while (r_len > 0 && rr[0] == 0) {
			rr++;
			r_len--;
		}
		while (ss_len > 0 && ss[0] == 0) {
			ss++;
			ss_len--;
		}
		if (r_len > field || ss_len > field) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		memset(raw, 0, sizeof(raw));
		memcpy(raw + field - r_len, rr, r_len);
		memcpy(raw + 2 * field - ss_len, ss, ss_len);
		if ((r = sig_ecdsa_raw_to_der(raw, 2 * field, &der,
		    &der_len)) != 0)
			goto out;
		s = der;
		s_len = der_len;
	}
	r = BOTID_ERR_CRYPTO;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, hash, NULL, pkey) != 1)
		goto out;
	r = EVP_DigestVerify(md, s, s_len, data, data_len) == 1 ? 0 :
	    BOTID_ERR_DENIED;
 out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	return r;
}

int
sshkey_cert_check(const uint8_t *cert, size_t cert_len, const uint8_t *key,
    size_t key_len, uint64_t *valid_before)
{
	static const char suffix[] = "-cert-v01@openssh.com";
	struct botid_buf c, k;
	const uint8_t *ctype, *ktype, *nonce, *fields, *id, *principals;
	size_t ctype_len, ktype_len, nonce_len, id_len, principals_len;
	uint64_t serial, after, before;
	uint32_t type;
	int r;

	*valid_before = 0;
	buf_init_view(&c, cert, cert_len);
	buf_init_view(&k, key, key_len);
	if ((r = buf_get_string_direct(&k, &ktype, &ktype_len, 64)) != 0 ||
	    (r = buf_get_string_direct(&c, &ctype, &ctype_len, 128)) != 0)
		return r;
	if (ctype_len != ktype_len + sizeof(suffix) - 1 ||
	    memcmp(ctype, ktype, ktype_len) != 0 ||
	    memcmp(ctype + ktype_len, suffix, sizeof(suffix) - 1) != 0)
		return BOTID_ERR_INVALID;
	/* After the nonce come the key's own fields, byte for byte. */
	if ((r = buf_get_string_direct(&c, &nonce, &nonce_len, 64)) != 0 ||
	    (r = buf_get_direct(&c, &fields, buf_len(&k))) != 0)
		return r;
	if (memcmp(fields, buf_ptr(&k), buf_len(&k)) != 0)
		return BOTID_ERR_INVALID;
	if ((r = buf_get_u64(&c, &serial)) != 0 ||
	    (r = buf_get_u32(&c, &type)) != 0 ||
	    (r = buf_get_string_direct(&c, &id, &id_len,
	    SSHKEY_MAX_FIELD)) != 0 ||
	    (r = buf_get_string_direct(&c, &principals, &principals_len,
	    SSHKEY_MAX_FIELD)) != 0 ||
	    (r = buf_get_u64(&c, &after)) != 0 ||
	    (r = buf_get_u64(&c, &before)) != 0)
		return r;
	if (type != 1)
		return BOTID_ERR_INVALID;
	*valid_before = before;
	return 0;
}
