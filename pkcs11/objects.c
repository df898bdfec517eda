/*
 * Builds the token's objects from what the agent sends: the public key
 * (DER SubjectPublicKeyInfo) and the leaf certificate of each bot. Both
 * come over a socket and are parsed with OpenSSL with no trailing bytes
 * allowed; a certificate for another key (left over from before a key
 * rotation) is not shown.
 */
#include "botid-config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "lib/botid.h"
#include "lib/limits.h"
#include "pkcs11/objects.h"

/* A certificate larger than this is not a bot's leaf. */
#define OBJECTS_MAX_CERT	(16u * 1024u)
/* Attributes of the largest object, with room to spare. */
#define OBJECTS_MAX_ATTRS	48u

/* What the key objects of one bot share, owned by the caller. */
struct key_facts {
	CK_KEY_TYPE	 key_type;
	size_t		 sig_len;
	uint8_t		 id[SHA_DIGEST_LENGTH];
	uint8_t		*spki, *ec_params, *ec_point, *modulus, *exponent;
	size_t		 spki_len, ec_params_len, ec_point_len, modulus_len,
			 exponent_len;
	CK_ULONG	 modulus_bits;
	uint8_t		*subject;	/* the certificate's, when there is one */
	size_t		 subject_len;
};

static void
key_facts_free(struct key_facts *k)
{
	OPENSSL_free(k->spki);
	OPENSSL_free(k->ec_params);
	OPENSSL_free(k->ec_point);
	OPENSSL_free(k->modulus);
	OPENSSL_free(k->exponent);
	OPENSSL_free(k->subject);
	memset(k, 0, sizeof(*k));
}

static void
object_free(struct botid_p11_object *o)
{
	size_t i;

	for (i = 0; i < o->nattrs; i++)
		free(o->attrs[i].data);
	free(o->attrs);
	free(o->bot);
	memset(o, 0, sizeof(*o));
}

void
objects_clear(struct botid_p11_objects *objs)
{
	size_t i;

	if (objs == NULL)
		return;
	for (i = 0; i < objs->n; i++)
		object_free(&objs->list[i]);
	free(objs->list);
	objs->list = NULL;
	objs->n = 0;
}

static int
attr_add(struct botid_p11_object *o, CK_ATTRIBUTE_TYPE type,
    const void *data, size_t len)
{
	struct botid_p11_attr *a;

	if (o->nattrs >= OBJECTS_MAX_ATTRS)
		return BOTID_ERR_INTERNAL;
	a = &o->attrs[o->nattrs];
	memset(a, 0, sizeof(*a));
	a->type = type;
	/* One byte for an empty value keeps data non-NULL. */
	if ((a->data = malloc(len == 0 ? 1 : len)) == NULL)
		return BOTID_ERR_ALLOC;
	if (len > 0)
		memcpy(a->data, data, len);
	a->len = len;
	o->nattrs++;
	return 0;
}

static int
attr_add_bool(struct botid_p11_object *o, CK_ATTRIBUTE_TYPE type, int v)
{
	CK_BBOOL b = v ? CK_TRUE : CK_FALSE;

	return attr_add(o, type, &b, sizeof(b));
}

static int
attr_add_ulong(struct botid_p11_object *o, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	return attr_add(o, type, &v, sizeof(v));
}

static int
attr_add_sensitive(struct botid_p11_object *o, CK_ATTRIBUTE_TYPE type)
{
	int r;

	if ((r = attr_add(o, type, NULL, 0)) == 0)
		o->attrs[o->nattrs - 1].sensitive = 1;
	return r;
}

/* The DER of a BIGNUM parameter of pkey, big-endian and unsigned. */
static int
bn_param(const EVP_PKEY *pkey, const char *name, uint8_t **out, size_t *len)
{
	BIGNUM *bn = NULL;
	int r = BOTID_ERR_INVALID, n;

	if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1 ||
	    (n = BN_num_bytes(bn)) <= 0)
		goto out;
	if ((*out = OPENSSL_malloc((size_t)n)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	*len = (size_t)BN_bn2bin(bn, *out);
	r = 0;
 out:
	BN_free(bn);
	return r;
}

/*
 * EC facts straight from the SubjectPublicKeyInfo (RFC 5480): the curve
 * OID in the algorithm parameters and the point in the BIT STRING. The
 * EVP_PKEY parameter getters are not used: with an engine set as default
 * (openssl -engine pkcs11, as libp11 users do) the key is a legacy one
 * that does not answer them.
 */
static int
ec_facts(X509_PUBKEY *xpk, const unsigned char *bits, int bits_len,
    struct key_facts *k)
{
	const ASN1_OBJECT *alg_oid = NULL, *curve = NULL;
	const void *pval = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_OCTET_STRING *os = NULL;
	unsigned char *der = NULL;
	size_t field;
	int r = BOTID_ERR_INVALID, ptype = 0, len;

	if (X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, xpk) != 1)
		goto out;
	X509_ALGOR_get0(&alg_oid, &ptype, &pval, alg);
	if (ptype != V_ASN1_OBJECT || (curve = pval) == NULL)
		goto out;
	switch (OBJ_obj2nid(curve)) {
	case NID_X9_62_prime256v1:
		field = 32;
		break;
	case NID_secp384r1:
		field = 48;
		break;
	case NID_secp521r1:
		field = 66;
		break;
	default:
		goto out;
	}
	/* Uncompressed points only; OpenSSL has checked it is on the curve. */
	if (bits_len <= 0 || (size_t)bits_len != 1 + 2 * field || bits[0] != 4)
		goto out;
	if ((len = i2d_ASN1_OBJECT(curve, &der)) <= 0)
		goto out;
	k->ec_params = der;
	k->ec_params_len = (size_t)len;
	der = NULL;
	/* CKA_EC_POINT is the DER OCTET STRING holding the point. */
	if ((os = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(os, bits, bits_len) != 1 ||
	    (len = i2d_ASN1_OCTET_STRING(os, &der)) <= 0)
		goto out;
	k->ec_point = der;
	k->ec_point_len = (size_t)len;
	der = NULL;
	k->sig_len = 2 * field;
	k->key_type = CKK_EC;
	r = 0;
 out:
	ASN1_OCTET_STRING_free(os);
	OPENSSL_free(der);
	return r;
}

static int
rsa_facts(const EVP_PKEY *pkey, struct key_facts *k)
{
	int r, bits;

	if ((r = bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &k->modulus,
	    &k->modulus_len)) != 0 ||
	    (r = bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &k->exponent,
	    &k->exponent_len)) != 0)
		return r;
	bits = EVP_PKEY_get_bits(pkey);
	if (bits < 1024 || k->modulus_len > BOTID_MAX_SIGNATURE)
		return BOTID_ERR_INVALID;
	k->modulus_bits = (CK_ULONG)bits;
	k->sig_len = k->modulus_len;
	k->key_type = CKK_RSA;
	return 0;
}

/* Parses spki into k: key type, key material and CKA_ID. */
static int
key_facts_parse(const uint8_t *spki, size_t spki_len, struct key_facts *k)
{
	const unsigned char *p = spki;
	const unsigned char *bits = NULL;
	X509_PUBKEY *xpk = NULL;
	EVP_PKEY *pkey = NULL;
	int r = BOTID_ERR_INVALID, bits_len = 0;

	if (spki_len == 0 || spki_len > BOTID_MAX_PUBKEY)
		goto out;
	if ((xpk = d2i_X509_PUBKEY(NULL, &p, (long)spki_len)) == NULL ||
	    p != spki + spki_len ||
	    X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, xpk) != 1 ||
	    bits_len <= 0 || (pkey = X509_PUBKEY_get(xpk)) == NULL)
		goto out;
	/* RFC 5280 4.2.1.2 (1): SHA-1 of the public key's BIT STRING. */
	SHA1(bits, (size_t)bits_len, k->id);
	if ((k->spki = OPENSSL_memdup(spki, spki_len)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	k->spki_len = spki_len;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_EC:
		r = ec_facts(xpk, bits, bits_len, k);
		break;
	case EVP_PKEY_RSA:
		r = rsa_facts(pkey, k);
		break;
	default:
		r = BOTID_ERR_INVALID;
	}
 out:
	EVP_PKEY_free(pkey);
	X509_PUBKEY_free(xpk);
	return r;
}

/* Hands the DER an i2d_*() call wrote to *der (len bytes) over to *out. */
static int
der_take(int len, unsigned char **der, uint8_t **out, size_t *out_len)
{
	if (len <= 0)
		return BOTID_ERR_INVALID;
	*out = *der;
	*out_len = (size_t)len;
	*der = NULL;
	return 0;
}

/* The certificate object of o's bot, or BOTID_ERR_INVALID to leave it out. */
static int
cert_object(struct botid_p11_object *o, struct key_facts *k,
    const uint8_t *cert, size_t cert_len)
{
	const unsigned char *p = cert;
	unsigned char *der = NULL;
	uint8_t *subject = NULL, *issuer = NULL, *serial = NULL;
	size_t subject_len = 0, issuer_len = 0, serial_len = 0;
	X509 *x = NULL;
	int r = BOTID_ERR_INVALID, len;

	if (cert_len == 0 || cert_len > OBJECTS_MAX_CERT)
		goto out;
	if ((x = d2i_X509(NULL, &p, (long)cert_len)) == NULL ||
	    p != cert + cert_len)
		goto out;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (len <= 0 || (size_t)len != k->spki_len ||
	    memcmp(der, k->spki, k->spki_len) != 0)
		goto out;
	OPENSSL_free(der);
	der = NULL;
	len = i2d_X509_NAME(X509_get_subject_name(x), &der);
	if ((r = der_take(len, &der, &subject, &subject_len)) != 0)
		goto out;
	len = i2d_X509_NAME(X509_get_issuer_name(x), &der);
	if ((r = der_take(len, &der, &issuer, &issuer_len)) != 0)
		goto out;
	len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
	if ((r = der_take(len, &der, &serial, &serial_len)) != 0)
		goto out;
	if ((r = attr_add_ulong(o, CKA_CLASS, CKO_CERTIFICATE)) != 0 ||
	    (r = attr_add_ulong(o, CKA_CERTIFICATE_TYPE, CKC_X_509)) != 0 ||
	    (r = attr_add_ulong(o, CKA_CERTIFICATE_CATEGORY, 1)) != 0 ||
	    (r = attr_add_bool(o, CKA_TRUSTED, 0)) != 0 ||
	    (r = attr_add(o, CKA_VALUE, cert, cert_len)) != 0 ||
	    (r = attr_add(o, CKA_SUBJECT, subject, subject_len)) != 0 ||
	    (r = attr_add(o, CKA_ISSUER, issuer, issuer_len)) != 0 ||
	    (r = attr_add(o, CKA_SERIAL_NUMBER, serial, serial_len)) != 0)
		goto out;
	o->klass = CKO_CERTIFICATE;
	/* The keys carry the certificate's subject too. */
	k->subject = subject;
	k->subject_len = subject_len;
	subject = NULL;
	r = 0;
 out:
	X509_free(x);
	OPENSSL_free(der);
	OPENSSL_free(subject);
	OPENSSL_free(issuer);
	OPENSSL_free(serial);
	return r;
}

/* Attributes every object of a bot has. */
static int
common_attrs(struct botid_p11_object *o, const char *bot,
    const struct key_facts *k)
{
	int r;

	if ((r = attr_add_bool(o, CKA_TOKEN, 1)) != 0 ||
	    (r = attr_add_bool(o, CKA_PRIVATE, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_MODIFIABLE, 0)) != 0 ||
	    (r = attr_add(o, CKA_LABEL, bot, strlen(bot))) != 0 ||
	    (r = attr_add(o, CKA_ID, k->id, sizeof(k->id))) != 0)
		return r;
	return 0;
}

/* Key attributes shared by the private and the public key. */
static int
key_attrs(struct botid_p11_object *o, const struct key_facts *k)
{
	int r;

	if ((r = attr_add_ulong(o, CKA_KEY_TYPE, k->key_type)) != 0 ||
	    (r = attr_add(o, CKA_SUBJECT, k->subject, k->subject_len)) != 0 ||
	    (r = attr_add_bool(o, CKA_LOCAL, 1)) != 0 ||
	    (r = attr_add_bool(o, CKA_DERIVE, 0)) != 0 ||
	    (r = attr_add(o, CKA_PUBLIC_KEY_INFO, k->spki, k->spki_len)) != 0)
		return r;
	if (k->key_type == CKK_EC) {
		if ((r = attr_add(o, CKA_EC_PARAMS, k->ec_params,
		    k->ec_params_len)) != 0 ||
		    (r = attr_add(o, CKA_EC_POINT, k->ec_point,
		    k->ec_point_len)) != 0)
			return r;
	} else {
		if ((r = attr_add(o, CKA_MODULUS, k->modulus,
		    k->modulus_len)) != 0 ||
		    (r = attr_add(o, CKA_PUBLIC_EXPONENT, k->exponent,
		    k->exponent_len)) != 0)
			return r;
	}
	return 0;
}

static int
private_attrs(struct botid_p11_object *o, const struct key_facts *k)
{
	static const CK_ATTRIBUTE_TYPE rsa_secret[] = {
		CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2,
		CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT,
	};
	size_t i;
	int r;

	if ((r = attr_add_ulong(o, CKA_CLASS, CKO_PRIVATE_KEY)) != 0 ||
	    (r = key_attrs(o, k)) != 0 ||
	    (r = attr_add_bool(o, CKA_SIGN, 1)) != 0 ||
	    (r = attr_add_bool(o, CKA_SIGN_RECOVER, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_DECRYPT, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_UNWRAP, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_SENSITIVE, 1)) != 0 ||
	    (r = attr_add_bool(o, CKA_ALWAYS_SENSITIVE, 1)) != 0 ||
	    (r = attr_add_bool(o, CKA_EXTRACTABLE, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_NEVER_EXTRACTABLE, 1)) != 0 ||
	    (r = attr_add_bool(o, CKA_ALWAYS_AUTHENTICATE, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_WRAP_WITH_TRUSTED, 0)) != 0)
		return r;
	if (k->key_type == CKK_EC)
		return attr_add_sensitive(o, CKA_VALUE);
	for (i = 0; i < sizeof(rsa_secret) / sizeof(rsa_secret[0]); i++)
		if ((r = attr_add_sensitive(o, rsa_secret[i])) != 0)
			return r;
	return 0;
}

static int
public_attrs(struct botid_p11_object *o, const struct key_facts *k)
{
	int r;

	if ((r = attr_add_ulong(o, CKA_CLASS, CKO_PUBLIC_KEY)) != 0 ||
	    (r = key_attrs(o, k)) != 0 ||
	    (r = attr_add_bool(o, CKA_VERIFY, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_VERIFY_RECOVER, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_ENCRYPT, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_WRAP, 0)) != 0 ||
	    (r = attr_add_bool(o, CKA_TRUSTED, 0)) != 0)
		return r;
	if (k->key_type == CKK_RSA)
		return attr_add_ulong(o, CKA_MODULUS_BITS, k->modulus_bits);
	return 0;
}

static int
object_init(struct botid_p11_object *o, CK_OBJECT_HANDLE h, const char *bot,
    const struct key_facts *k)
{
	memset(o, 0, sizeof(*o));
	o->handle = h;
	o->key_type = k->key_type;
	o->sig_len = k->sig_len;
	if ((o->bot = strdup(bot)) == NULL ||
	    (o->attrs = calloc(OBJECTS_MAX_ATTRS, sizeof(*o->attrs))) == NULL)
		return BOTID_ERR_ALLOC;
	return common_attrs(o, bot, k);
}

int
objects_add_bot(struct botid_p11_objects *objs, size_t index, const char *bot,
    const uint8_t *spki, size_t spki_len, const uint8_t *cert, size_t cert_len)
{
	struct botid_p11_object o[3], *nl;
	struct key_facts k;
	CK_OBJECT_HANDLE base;
	size_t n = 0, i;
	int r;

	memset(&k, 0, sizeof(k));
	memset(o, 0, sizeof(o));
	if (index > (ULONG_MAX - 3) / OBJECTS_HANDLES_PER_BOT) {
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	base = (CK_OBJECT_HANDLE)index * OBJECTS_HANDLES_PER_BOT;
	if ((r = key_facts_parse(spki, spki_len, &k)) != 0)
		goto out;
	/* The certificate first: the keys take its subject. */
	if (cert != NULL) {
		if ((r = object_init(&o[2], base + 3, bot, &k)) != 0)
			goto out;
		if ((r = cert_object(&o[2], &k, cert, cert_len)) == BOTID_ERR_ALLOC)
			goto out;
		if (r != 0)
			object_free(&o[2]);
	}
	if ((r = object_init(&o[0], base + 1, bot, &k)) != 0 ||
	    (r = private_attrs(&o[0], &k)) != 0 ||
	    (r = object_init(&o[1], base + 2, bot, &k)) != 0 ||
	    (r = public_attrs(&o[1], &k)) != 0)
		goto out;
	o[0].klass = CKO_PRIVATE_KEY;
	o[1].klass = CKO_PUBLIC_KEY;
	n = o[2].handle != 0 ? 3 : 2;
	if ((nl = reallocarray(objs->list, objs->n + n, sizeof(*nl))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	objs->list = nl;
	for (i = 0; i < n; i++) {
		objs->list[objs->n++] = o[i];
		memset(&o[i], 0, sizeof(o[i]));
	}
	r = 0;
 out:
	for (i = 0; i < 3; i++)
		object_free(&o[i]);
	key_facts_free(&k);
	return r;
}

const struct botid_p11_object *
objects_find(const struct botid_p11_objects *objs, CK_OBJECT_HANDLE h)
{
	size_t i;

	for (i = 0; i < objs->n; i++)
		if (objs->list[i].handle == h)
			return &objs->list[i];
	return NULL;
}

static const struct botid_p11_attr *
attr_find(const struct botid_p11_object *o, CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < o->nattrs; i++)
		if (o->attrs[i].type == type)
			return &o->attrs[i];
	return NULL;
}

int
objects_match(const struct botid_p11_object *o, const CK_ATTRIBUTE *tmpl,
    CK_ULONG n)
{
	const struct botid_p11_attr *a;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if ((a = attr_find(o, tmpl[i].type)) == NULL || a->sensitive ||
		    a->len != tmpl[i].ulValueLen ||
		    (a->len > 0 && (tmpl[i].pValue == NULL ||
		    memcmp(a->data, tmpl[i].pValue, a->len) != 0)))
			return 0;
	}
	return 1;
}

CK_RV
objects_get_attributes(const struct botid_p11_object *o, CK_ATTRIBUTE *tmpl,
    CK_ULONG n)
{
	const struct botid_p11_attr *a;
	CK_RV rv = CKR_OK;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if ((a = attr_find(o, tmpl[i].type)) == NULL) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (a->sensitive) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_SENSITIVE;
		} else if (tmpl[i].pValue == NULL)
			tmpl[i].ulValueLen = a->len;
		else if (tmpl[i].ulValueLen < a->len) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
		} else {
			memcpy(tmpl[i].pValue, a->data, a->len);
			tmpl[i].ulValueLen = a->len;
		}
	}
	return rv;
}
