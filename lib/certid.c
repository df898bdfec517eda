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

#include "lib/certid.h"
#include "lib/error.h"
#include "lib/jws.h"

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

int
certid_attestation(const uint8_t *der, size_t len, char **kind)
{
	ASN1_OBJECT *oid = NULL;
	ASN1_UTF8STRING *u = NULL;
	const ASN1_OCTET_STRING *os;
	const unsigned char *p;
	X509_EXTENSION *ext;
	X509 *x = NULL;
	int idx, r = BOTID_ERR_INTERNAL;

	*kind = NULL;
	if ((x = certid_parse(der, len)) == NULL)
		return BOTID_ERR_INVALID;
	if ((oid = OBJ_txt2obj(BOTID_OID_ATTESTATION, 1)) == NULL) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	if ((idx = X509_get_ext_by_OBJ(x, oid, -1)) < 0) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	/* A second copy of the extension would make the first meaningless. */
	if (X509_get_ext_by_OBJ(x, oid, idx) >= 0) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	ext = X509_get_ext(x, idx);
	os = X509_EXTENSION_get_data(ext);
	p = ASN1_STRING_get0_data(os);
	if ((u = d2i_ASN1_UTF8STRING(NULL, &p, ASN1_STRING_length(os))) ==
	    NULL || p != ASN1_STRING_get0_data(os) + ASN1_STRING_length(os) ||
	    memchr(ASN1_STRING_get0_data(u), '\0',
	    (size_t)ASN1_STRING_length(u)) != NULL) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((*kind = strndup((const char *)ASN1_STRING_get0_data(u),
	    (size_t)ASN1_STRING_length(u))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	r = 0;
 out:
	ASN1_UTF8STRING_free(u);
	ASN1_OBJECT_free(oid);
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
