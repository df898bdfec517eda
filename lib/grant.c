/*
 * The token-key certificate's grant extension and EKU, and JWKs. DER goes
 * through OpenSSL's ASN.1 templates (bounded, no trailing bytes checked
 * here); every string is checked against lib/limits.h before use.
 */
#include "botid-config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "lib/error.h"
#include "lib/grant.h"
#include "lib/jws.h"
#include "lib/limits.h"
#include "lib/wire.h"

typedef struct {
	ASN1_UTF8STRING			*issuer;
	ASN1_INTEGER			*max_ttl;
	STACK_OF(ASN1_UTF8STRING)	*scopes;
} BOTID_GRANT;

ASN1_SEQUENCE(BOTID_GRANT) = {
	ASN1_SIMPLE(BOTID_GRANT, issuer, ASN1_UTF8STRING),
	ASN1_SIMPLE(BOTID_GRANT, max_ttl, ASN1_INTEGER),
	ASN1_SEQUENCE_OF(BOTID_GRANT, scopes, ASN1_UTF8STRING),
} static_ASN1_SEQUENCE_END(BOTID_GRANT)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(BOTID_GRANT)
IMPLEMENT_STATIC_ASN1_ENCODE_FUNCTIONS(BOTID_GRANT)

void
grant_free(struct botid_grant *g)
{
	size_t i;

	if (g == NULL)
		return;
	for (i = 0; i < g->nscopes; i++)
		free(g->scopes[i]);
	free(g->scopes);
	free(g->issuer);
	memset(g, 0, sizeof(*g));
}

/* An issuer is a printable URL; it becomes a JSON string and a log word. */
static int
grant_issuer_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > BOTID_MAX_ISSUER)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
			return 0;
	return 1;
}

static int
grant_valid(const struct botid_grant *g)
{
	size_t i;

	if (g->issuer == NULL ||
	    !grant_issuer_valid(g->issuer, strlen(g->issuer)) ||
	    g->max_ttl < 1 || g->max_ttl > (long)BOTID_MAX_TOKEN_TTL ||
	    g->nscopes == 0 || g->nscopes > BOTID_MAX_SCOPES)
		return 0;
	for (i = 0; i < g->nscopes; i++)
		if (!wire_scope_valid(g->scopes[i], strlen(g->scopes[i])))
			return 0;
	return 1;
}

int
grant_encode(const struct botid_grant *g, uint8_t **der, size_t *len)
{
	BOTID_GRANT *a = NULL;
	ASN1_UTF8STRING *u = NULL;
	unsigned char *out = NULL;
	size_t i;
	int n, r = BOTID_ERR_ALLOC;

	*der = NULL;
	*len = 0;
	if (!grant_valid(g))
		return BOTID_ERR_INVALID;
	if ((a = BOTID_GRANT_new()) == NULL ||
	    ASN1_STRING_set(a->issuer, g->issuer, -1) != 1 ||
	    ASN1_INTEGER_set(a->max_ttl, g->max_ttl) != 1)
		goto out;
	for (i = 0; i < g->nscopes; i++) {
		if ((u = ASN1_UTF8STRING_new()) == NULL ||
		    ASN1_STRING_set(u, g->scopes[i], -1) != 1 ||
		    sk_ASN1_UTF8STRING_push(a->scopes, u) <= 0)
			goto out;
		u = NULL;
	}
	if ((n = i2d_BOTID_GRANT(a, &out)) <= 0) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	*der = out;
	*len = (size_t)n;
	r = 0;
 out:
	ASN1_UTF8STRING_free(u);
	BOTID_GRANT_free(a);
	return r;
}

/* A UTF8String's bytes as a C string: no NUL inside, at most max bytes. */
static int
grant_string(const ASN1_UTF8STRING *u, size_t max, char **s)
{
	int len = ASN1_STRING_length(u);
	const unsigned char *d = ASN1_STRING_get0_data(u);

	*s = NULL;
	if (len <= 0 || (size_t)len > max || memchr(d, '\0', (size_t)len) != NULL)
		return BOTID_ERR_INVALID;
	if ((*s = strndup((const char *)d, (size_t)len)) == NULL)
		return BOTID_ERR_ALLOC;
	return 0;
}

int
grant_decode(const uint8_t *der, size_t len, struct botid_grant *g)
{
	BOTID_GRANT *a = NULL;
	const unsigned char *p = der;
	struct botid_grant t;
	long ttl;
	int i, n, r = BOTID_ERR_INVALID;

	memset(g, 0, sizeof(*g));
	memset(&t, 0, sizeof(t));
	if (len == 0 || len > BOTID_MAX_TOKEN ||
	    (a = d2i_BOTID_GRANT(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		ERR_clear_error();
		goto out;
	}
	ttl = ASN1_INTEGER_get(a->max_ttl);
	n = sk_ASN1_UTF8STRING_num(a->scopes);
	if (ttl < 1 || ttl > (long)BOTID_MAX_TOKEN_TTL || n < 1 ||
	    n > (int)BOTID_MAX_SCOPES)
		goto out;
	t.max_ttl = ttl;
	if ((r = grant_string(a->issuer, BOTID_MAX_ISSUER, &t.issuer)) != 0)
		goto out;
	if ((t.scopes = calloc((size_t)n, sizeof(*t.scopes))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((r = grant_string(sk_ASN1_UTF8STRING_value(a->scopes, i),
		    BOTID_MAX_SCOPE, &t.scopes[i])) != 0)
			goto out;
		t.nscopes++;
	}
	if (!grant_valid(&t)) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	*g = t;
	memset(&t, 0, sizeof(t));
	r = 0;
 out:
	grant_free(&t);
	BOTID_GRANT_free(a);
	return r;
}

/* The one extension with oid in x, or NULL (none, or two: ambiguous). */
static X509_EXTENSION *
grant_ext(X509 *x, const char *oid_text, int *dup)
{
	ASN1_OBJECT *oid;
	int idx;

	*dup = 0;
	if ((oid = OBJ_txt2obj(oid_text, 1)) == NULL)
		return NULL;
	idx = X509_get_ext_by_OBJ(x, oid, -1);
	if (idx >= 0 && X509_get_ext_by_OBJ(x, oid, idx) >= 0)
		*dup = 1;
	ASN1_OBJECT_free(oid);
	return idx >= 0 && !*dup ? X509_get_ext(x, idx) : NULL;
}

int
grant_from_cert(X509 *x, struct botid_grant *g)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	X509_EXTENSION *ext;
	ASN1_OBJECT *want = NULL;
	const ASN1_OCTET_STRING *os;
	int i, n, found = 0, dup, crit, r = BOTID_ERR_DENIED;

	memset(g, 0, sizeof(*g));
	if ((want = OBJ_txt2obj(BOTID_OID_TOKEN_EKU, 1)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL)) ==
	    NULL) {
		ERR_clear_error();
		goto out;
	}
	n = sk_ASN1_OBJECT_num(eku);
	for (i = 0; i < n; i++) {
		const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);

		/* A token key is for tokens only, never for TLS. */
		if (OBJ_obj2nid(o) == NID_server_auth ||
		    OBJ_obj2nid(o) == NID_client_auth ||
		    OBJ_obj2nid(o) == NID_anyExtendedKeyUsage)
			goto out;
		if (OBJ_cmp(o, want) == 0)
			found = 1;
	}
	if (!found)
		goto out;
	if ((ext = grant_ext(x, BOTID_OID_TOKEN_GRANT, &dup)) == NULL) {
		r = dup ? BOTID_ERR_INVALID : BOTID_ERR_DENIED;
		goto out;
	}
	os = X509_EXTENSION_get_data(ext);
	r = grant_decode(ASN1_STRING_get0_data(os),
	    (size_t)ASN1_STRING_length(os), g);
 out:
	EXTENDED_KEY_USAGE_free(eku);
	ASN1_OBJECT_free(want);
	return r;
}

int
grant_has_scope(const struct botid_grant *g, const char *scope)
{
	size_t i;

	for (i = 0; i < g->nscopes; i++)
		if (strcmp(g->scopes[i], scope) == 0)
			return 1;
	return 0;
}

/* A big number as base64url of its big-endian bytes, padded to width. */
static int
jwk_bn(EVP_PKEY *pk, const char *param, size_t width, char **out)
{
	BIGNUM *bn = NULL;
	uint8_t *b = NULL;
	size_t len;
	int r = BOTID_ERR_CRYPTO;

	*out = NULL;
	if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
		goto out;
	len = width != 0 ? width : (size_t)BN_num_bytes(bn);
	if (len == 0 || (b = malloc(len)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (BN_bn2binpad(bn, b, (int)len) < 0)
		goto out;
	r = jws_b64url_encode(b, len, out);
 out:
	ERR_clear_error();
	free(b);
	BN_free(bn);
	return r;
}

int
jwk_from_pkey(EVP_PKEY *pk, json_t **jwkp)
{
	json_t *j = NULL;
	char *a = NULL, *b = NULL, group[32];
	const char *crv;
	size_t width;
	int r = BOTID_ERR_ALLOC;

	*jwkp = NULL;
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(pk,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
		    NULL) != 1) {
			ERR_clear_error();
			return BOTID_ERR_CRYPTO;
		}
		if (strcmp(group, "prime256v1") == 0) {
			crv = "P-256";
			width = 32;
		} else if (strcmp(group, "secp384r1") == 0) {
			crv = "P-384";
			width = 48;
		} else
			return BOTID_ERR_UNSUPPORTED;
		if ((r = jwk_bn(pk, OSSL_PKEY_PARAM_EC_PUB_X, width, &a)) != 0 ||
		    (r = jwk_bn(pk, OSSL_PKEY_PARAM_EC_PUB_Y, width, &b)) != 0)
			goto out;
		if ((j = json_pack("{s:s, s:s, s:s, s:s}", "crv", crv, "kty",
		    "EC", "x", a, "y", b)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
	} else if (EVP_PKEY_is_a(pk, "RSA")) {
		if ((r = jwk_bn(pk, OSSL_PKEY_PARAM_RSA_E, 0, &a)) != 0 ||
		    (r = jwk_bn(pk, OSSL_PKEY_PARAM_RSA_N, 0, &b)) != 0)
			goto out;
		if ((j = json_pack("{s:s, s:s, s:s}", "e", a, "kty", "RSA",
		    "n", b)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
	} else
		return BOTID_ERR_UNSUPPORTED;
	*jwkp = j;
	r = 0;
 out:
	free(a);
	free(b);
	return r;
}

int
jwk_thumbprint(EVP_PKEY *pk, char **kid)
{
	json_t *j = NULL;
	char *s = NULL;
	uint8_t md[32];
	int r;

	*kid = NULL;
	if ((r = jwk_from_pkey(pk, &j)) != 0)
		return r;
	/*
	 * RFC 7638: the required members, sorted, no whitespace. Every value
	 * is ASCII without escapes, so jansson's compact sorted dump is it.
	 */
	if ((s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (EVP_Digest(s, strlen(s), md, NULL, EVP_sha256(), NULL) != 1) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	r = jws_b64url_encode(md, sizeof(md), kid);
 out:
	free(s);
	json_decref(j);
	return r;
}

int
jwk_thumbprint_spki(const uint8_t *spki, size_t len, char **kid)
{
	const unsigned char *p = spki;
	EVP_PKEY *pk = NULL;
	int r;

	*kid = NULL;
	if (len > BOTID_MAX_PUBKEY ||
	    (pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL ||
	    p != spki + len) {
		ERR_clear_error();
		EVP_PKEY_free(pk);
		return BOTID_ERR_INVALID;
	}
	r = jwk_thumbprint(pk, kid);
	EVP_PKEY_free(pk);
	return r;
}
