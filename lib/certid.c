/*
 * Reads a bot's identity out of its certificate. Every lookup parses the
 * DER afresh: the callers hold DER (wire replies, x5c), not X509 objects.
 */
#include "botid-config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/buf.h"
#include "lib/certid.h"
#include "lib/error.h"
#include "lib/jws.h"
#include "lib/limits.h"

static X509 *
certid_parse(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	if (der == NULL || len == 0 || len > LONG_MAX)
		return NULL;
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL)
		return NULL;
	if (p != der + len) {		/* trailing bytes */
		X509_free(x);
		return NULL;
	}
	return x;
}

int
certid_spiffe_id(const uint8_t *der, size_t len, char **id)
{
	GENERAL_NAMES *names = NULL;
	const GENERAL_NAME *gn;
	const unsigned char *s;
	char *found = NULL;
	X509 *x = NULL;
	int i, n, slen, r = BOTID_ERR_INTERNAL;

	*id = NULL;
	if ((x = certid_parse(der, len)) == NULL)
		return BOTID_ERR_INVALID;
	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	n = names == NULL ? 0 : sk_GENERAL_NAME_num(names);
	for (i = 0; i < n; i++) {
		gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type != GEN_URI)
			continue;
		s = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		slen = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (slen < 9 || strncmp((const char *)s, "spiffe://", 9) != 0)
			continue;
		/* SPIFFE allows one ID per SVID; two would be ambiguous. */
		if (found != NULL) {
			r = BOTID_ERR_UNSUPPORTED;
			goto out;
		}
		if (memchr(s, '\0', (size_t)slen) != NULL) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		if ((found = strndup((const char *)s, (size_t)slen)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
	}
	if (found == NULL) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	*id = found;
	found = NULL;
	r = 0;
 out:
	free(found);
	GENERAL_NAMES_free(names);
	X509_free(x);
	return r;
}

/* The DER tag of a UTF8String, the extension value's only form. */
#define CERTID_TAG_UTF8STRING	0x0c

/*
 * A kind is short lowercase ASCII, so that what a certificate says can be
 * printed in an inventory or a log line as it is.
 */
static int
certid_kind_valid(const uint8_t *s, size_t n)
{
	size_t i;

	if (n == 0 || n > BOTID_MAX_ATTESTATION_KIND)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

int
certid_attestation_encode(const char *kind, uint8_t **der, size_t *len)
{
	uint8_t *out;
	size_t n;

	*der = NULL;
	*len = 0;
	n = strnlen(kind, BOTID_MAX_ATTESTATION_KIND + 1);
	if (!certid_kind_valid((const uint8_t *)kind, n))
		return BOTID_ERR_INVALID;
	/* n < 128: the DER length is one byte (short form). */
	if ((out = malloc(n + 2)) == NULL)
		return BOTID_ERR_ALLOC;
	out[0] = CERTID_TAG_UTF8STRING;
	out[1] = (uint8_t)n;
	memcpy(out + 2, kind, n);
	*der = out;
	*len = n + 2;
	return 0;
}

int
certid_attestation_decode(const uint8_t *der, size_t len, char **kind)
{
	struct botid_buf b;
	const uint8_t *s;
	uint8_t tag, n;

	*kind = NULL;
	buf_init_view(&b, der, len);
	/*
	 * The encoder writes only the short form, so a long-form length,
	 * another tag or trailing bytes mean another writer: refuse it.
	 */
	if (buf_get_u8(&b, &tag) != 0 || tag != CERTID_TAG_UTF8STRING ||
	    buf_get_u8(&b, &n) != 0 || n > BOTID_MAX_ATTESTATION_KIND ||
	    buf_get_direct(&b, &s, n) != 0 || buf_len(&b) != 0 ||
	    !certid_kind_valid(s, n))
		return BOTID_ERR_INVALID;
	if ((*kind = strndup((const char *)s, n)) == NULL)
		return BOTID_ERR_ALLOC;
	return 0;
}

/*
 * The index of the extension under oid in *idx, -1 if there is none.
 * A second copy would make the first meaningless: BOTID_ERR_INVALID.
 */
static int
certid_find_ext(X509 *x, const char *oidtxt, int *idx)
{
	ASN1_OBJECT *oid;
	int r = 0;

	*idx = -1;
	if ((oid = OBJ_txt2obj(oidtxt, 1)) == NULL)
		return BOTID_ERR_CRYPTO;
	if ((*idx = X509_get_ext_by_OBJ(x, oid, -1)) >= 0 &&
	    X509_get_ext_by_OBJ(x, oid, *idx) >= 0)
		r = BOTID_ERR_INVALID;
	ASN1_OBJECT_free(oid);
	return r;
}

int
certid_attestation(const uint8_t *der, size_t len, char **kind)
{
	const ASN1_OCTET_STRING *os;
	X509 *x = NULL;
	int idx, old, r = BOTID_ERR_INTERNAL;

	*kind = NULL;
	if ((x = certid_parse(der, len)) == NULL)
		return BOTID_ERR_INVALID;
	if ((r = certid_find_ext(x, BOTID_OID_ATTESTATION, &idx)) != 0 ||
	    (r = certid_find_ext(x, BOTID_OID_ATTESTATION_UUID, &old)) != 0)
		goto out;
	/* botid-ca writes one claim; two could disagree, so trust neither. */
	if (idx >= 0 && old >= 0) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if (idx < 0 && (idx = old) < 0) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	os = X509_EXTENSION_get_data(X509_get_ext(x, idx));
	r = certid_attestation_decode(ASN1_STRING_get0_data(os),
	    (size_t)ASN1_STRING_length(os), kind);
 out:
	X509_free(x);
	return r;
}

int
certid_thumbprint(const uint8_t *der, size_t len, char **kid)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	*kid = NULL;
	if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return BOTID_ERR_CRYPTO;
	return jws_b64url_encode(md, mdlen, kid);
}
