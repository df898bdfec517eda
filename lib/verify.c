/*
 * The receiving side: believes a token or message only when its x5c chain
 * verifies to the caller's CA bundle, its algorithm is the one the leaf's
 * key implies, its signature checks, and its claims fit the caller's
 * requirements. Every refusal carries a one-line reason.
 */
#include "botid-config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "lib/base64.h"
#include "lib/botid.h"
#include "lib/certid.h"
#include "lib/error.h"
#include "lib/grant.h"
#include "lib/jws.h"
#include "lib/limits.h"
#include "lib/verify.h"

static int __attribute__((format(printf, 4, 5)))
verify_fail(int r, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return r;
}

void
botid_verified_free(struct botid_verified *v)
{
	if (v == NULL)
		return;
	free(v->spiffe_id);
	free(v->attestation);
	free(v->alg);
	free(v->claims);
	free(v);
}

static int64_t
verify_now(const struct botid_verify_opts *o)
{
	return o->now != 0 ? o->now : (int64_t)time(NULL);
}

static X509 *
verify_d2i(const struct botid_blob *b)
{
	const unsigned char *p = b->data;
	X509 *x;

	if (b->len == 0 || b->len > BOTID_MAX_TOKEN)
		return NULL;
	if ((x = d2i_X509(NULL, &p, (long)b->len)) != NULL &&
	    p != b->data + b->len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/*
 * Loads every CRL in a PEM file into the store. OpenSSL's CRL time check
 * is off with its certificate check (X509_V_FLAG_NO_CHECK_TIME turns off
 * both), so each CRL's freshness is checked here: a CRL whose nextUpdate
 * passed more than leeway seconds ago, or that has none, would accept a
 * revoked certificate for ever; one issued after now + leeway is not yet
 * valid. Errors: _IO, _INVALID (no CRL), _DENIED (stale), _CRYPTO.
 */
static int
verify_load_crls(X509_STORE *store, const char *path, int64_t now,
    long leeway, char *err, size_t errlen)
{
	X509_CRL *crl;
	const ASN1_TIME *next, *last;
	time_t early = (time_t)(now + leeway), late = (time_t)(now - leeway);
	FILE *f;
	int n = 0, c, r = 0;

	if ((f = fopen(path, "re")) == NULL)
		return verify_fail(BOTID_ERR_IO, err, errlen,
		    "cannot read CRL file %s", path);
	while (r == 0 &&
	    (crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
		next = X509_CRL_get0_nextUpdate(crl);
		last = X509_CRL_get0_lastUpdate(crl);
		if (next == NULL)
			r = verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "CRL %d of %s has no nextUpdate", n, path);
		else if ((c = X509_cmp_time(next, &late)) == 0 || c < 0)
			r = verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "CRL %d of %s is stale: its nextUpdate passed", n,
			    path);
		else if (last == NULL ||
		    (c = X509_cmp_time(last, &early)) == 0 || c > 0)
			r = verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "CRL %d of %s is not yet valid", n, path);
		else if (X509_STORE_add_crl(store, crl) != 1)
			r = verify_fail(BOTID_ERR_CRYPTO, err, errlen,
			    "cannot use CRL from %s", path);
		X509_CRL_free(crl);
		n++;
	}
	ERR_clear_error();
	fclose(f);
	if (r == 0 && n == 0)
		r = verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "no PEM CRL in %s", path);
	return r;
}

/*
 * Validity with leeway, for every certificate of the verified chain.
 * OpenSSL's own time check has no leeway, so it is turned off and done
 * here instead.
 */
static int
verify_times(STACK_OF(X509) *chain, int64_t now, long leeway, char *err,
    size_t errlen)
{
	time_t early = (time_t)(now + leeway), late = (time_t)(now - leeway);
	int i, c;

	for (i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		if ((c = X509_cmp_time(X509_get0_notBefore(x), &early)) == 0 ||
		    c > 0)
			return verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "certificate %d of the chain is not yet valid", i);
		if ((c = X509_cmp_time(X509_get0_notAfter(x), &late)) == 0 ||
		    c < 0)
			return verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "certificate %d of the chain has expired", i);
	}
	return 0;
}

/* Checks chain (leaf first) to the bundle; the leaf's key in *leaf_key. */
static int
verify_chain(const struct botid_verify_opts *o, const struct botid_blob *der,
    size_t n, EVP_PKEY **leaf_key, struct botid_verified *v, char *err,
    size_t errlen)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509 *leaf = NULL, *x;
	unsigned long flags = X509_V_FLAG_NO_CHECK_TIME;
	size_t i;
	int r = BOTID_ERR_INTERNAL, vr;

	*leaf_key = NULL;
	if (o == NULL || o->bundle == NULL)
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "no CA bundle given");
	if (n == 0)
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "no certificate chain (x5c)");
	if (n > BOTID_MAX_CHAIN)
		return verify_fail(BOTID_ERR_TOO_LARGE, err, errlen,
		    "chain longer than %u certificates", BOTID_MAX_CHAIN);
	if ((leaf = verify_d2i(&der[0])) == NULL)
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "leaf certificate is not DER X.509");
	if ((untrusted = sk_X509_new_null()) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	for (i = 1; i < n; i++) {
		if ((x = verify_d2i(&der[i])) == NULL) {
			r = verify_fail(BOTID_ERR_INVALID, err, errlen,
			    "certificate %zu of the chain is not DER X.509", i);
			goto out;
		}
		if (sk_X509_push(untrusted, x) == 0) {
			X509_free(x);
			r = BOTID_ERR_ALLOC;
			goto out;
		}
	}
	if ((store = X509_STORE_new()) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (X509_STORE_load_file(store, o->bundle) != 1) {
		r = verify_fail(BOTID_ERR_IO, err, errlen,
		    "cannot load CA bundle %s", o->bundle);
		goto out;
	}
	if (o->crl != NULL) {
		if ((r = verify_load_crls(store, o->crl, verify_now(o),
		    o->leeway, err, errlen)) != 0)
			goto out;
		flags |= X509_V_FLAG_CRL_CHECK;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	X509_STORE_CTX_set_flags(ctx, flags);
	if (X509_verify_cert(ctx) != 1) {
		vr = X509_STORE_CTX_get_error(ctx);
		r = verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "certificate chain does not verify to the bundle: %s",
		    X509_verify_cert_error_string(vr));
		goto out;
	}
	if ((r = verify_times(X509_STORE_CTX_get0_chain(ctx), verify_now(o),
	    o->leeway, err, errlen)) != 0)
		goto out;
	r = certid_spiffe_id(der[0].data, der[0].len, &v->spiffe_id);
	if (r == BOTID_ERR_ALLOC)
		goto out;
	if (r != 0) {
		r = verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "leaf certificate has no single spiffe:// URI SAN");
		goto out;
	}
	r = certid_attestation(der[0].data, der[0].len, &v->attestation);
	if (r == BOTID_ERR_ALLOC)
		goto out;
	if (r == BOTID_ERR_INVALID) {
		r = verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "leaf certificate has a malformed attestation extension");
		goto out;
	}
	if (o->require_tpm && (v->attestation == NULL ||
	    strcmp(v->attestation, "tpm") != 0)) {
		r = verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "key is not attested as TPM-resident (attestation: %s)",
		    v->attestation == NULL ? "none" : v->attestation);
		goto out;
	}
	if (o->spiffe_id != NULL && strcmp(o->spiffe_id, v->spiffe_id) != 0) {
		r = verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "signer is %s, not %s", v->spiffe_id, o->spiffe_id);
		goto out;
	}
	if ((*leaf_key = X509_get_pubkey(leaf)) == NULL) {
		r = verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "leaf certificate has an unusable public key");
		goto out;
	}
	r = 0;
 out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	return r;
}

/* The algorithm must be what the leaf's key does: no confusion. */
static int
verify_alg_matches(enum jws_alg alg, EVP_PKEY *key, char *err, size_t errlen)
{
	int id = EVP_PKEY_get_base_id(key), bits = EVP_PKEY_get_bits(key);
	int ok;

	switch (alg) {
	case JWS_ALG_ES256:
		ok = id == EVP_PKEY_EC && bits == 256;
		break;
	case JWS_ALG_ES384:
		ok = id == EVP_PKEY_EC && bits == 384;
		break;
	case JWS_ALG_RS256:
	case JWS_ALG_PS256:
		ok = id == EVP_PKEY_RSA && bits >= 2048;
		break;
	default:
		ok = 0;
		break;
	}
	if (!ok)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "alg %s does not match the certificate's %s-%d key",
		    jws_alg_name(alg), id == EVP_PKEY_EC ? "EC" :
		    id == EVP_PKEY_RSA ? "RSA" : "other", bits);
	return 0;
}

static int
verify_signature(enum jws_alg alg, EVP_PKEY *key, const char *input,
    size_t input_len, const uint8_t *sig, size_t sig_len, char *err,
    size_t errlen)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *hash = jws_alg_hash(alg) == BOTID_HASH_SHA384 ?
	    EVP_sha384() : EVP_sha256();
	uint8_t *der = NULL;
	size_t der_len = 0;
	int r;

	if ((r = verify_alg_matches(alg, key, err, errlen)) != 0)
		return r;
	if ((r = jws_sig_to_der(alg, sig, sig_len, &der, &der_len)) != 0)
		return verify_fail(r == BOTID_ERR_ALLOC ? r : BOTID_ERR_DENIED,
		    err, errlen, "signature has the wrong size for %s",
		    jws_alg_name(alg));
	r = BOTID_ERR_ALLOC;
	if ((md = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestVerifyInit(md, &pctx, hash, NULL, key) != 1) {
		r = verify_fail(BOTID_ERR_CRYPTO, err, errlen,
		    "cannot set up signature verification");
		goto out;
	}
	if (alg == JWS_ALG_PS256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, hash) != 1)) {
		r = verify_fail(BOTID_ERR_CRYPTO, err, errlen,
		    "cannot set up PSS verification");
		goto out;
	}
	if (EVP_DigestVerify(md, der, der_len, (const unsigned char *)input,
	    input_len) != 1) {
		r = verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "signature does not verify with the certificate's key");
		goto out;
	}
	r = 0;
 out:
	EVP_MD_CTX_free(md);
	free(der);
	return r;
}

/* A NumericDate claim: an integer (JSON real values are refused). */
static int
verify_time_claim(json_t *claims, const char *name, int required,
    int64_t *t, char *err, size_t errlen)
{
	json_t *j = json_object_get(claims, name);

	if (j == NULL) {
		if (required)
			return verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "token has no %s claim", name);
		return BOTID_ERR_NOT_FOUND;
	}
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "%s is not a whole number of seconds", name);
	*t = json_integer_value(j);
	return 0;
}

static int
verify_audience(json_t *claims, const char *want, char *err, size_t errlen)
{
	json_t *aud = json_object_get(claims, "aud"), *a;
	size_t i;

	if (json_is_string(aud) && strcmp(json_string_value(aud), want) == 0)
		return 0;
	if (json_is_array(aud))
		json_array_foreach(aud, i, a)
			if (json_is_string(a) &&
			    strcmp(json_string_value(a), want) == 0)
				return 0;
	return verify_fail(BOTID_ERR_DENIED, err, errlen,
	    "token is not for audience %s", want);
}

static int
verify_scopes(json_t *claims, const struct botid_verify_opts *o, char *err,
    size_t errlen)
{
	const char *scope, *p, *end;
	size_t i, len;

	if (o->nscopes == 0)
		return 0;
	if ((scope = json_string_value(json_object_get(claims, "scope"))) ==
	    NULL)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "token has no scope, needs %s", o->scopes[0]);
	for (i = 0; i < o->nscopes; i++) {
		len = strlen(o->scopes[i]);
		for (p = scope; *p != '\0'; p = *end == '\0' ? end : end + 1) {
			if ((end = strchr(p, ' ')) == NULL)
				end = p + strlen(p);
			if ((size_t)(end - p) == len &&
			    memcmp(p, o->scopes[i], len) == 0)
				break;
		}
		if (*p == '\0')
			return verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "token lacks scope %s", o->scopes[i]);
	}
	return 0;
}

/*
 * Every scope the token carries must be in the grant of the token key's
 * certificate: only the agent signs with that key, and it checked them,
 * but a relying party need not take that on faith.
 */
static int
verify_grant_scopes(json_t *claims, const struct botid_grant *g, char *err,
    size_t errlen)
{
	json_t *sj = json_object_get(claims, "scope");
	const char *scope, *p, *end;
	char one[BOTID_MAX_SCOPE + 1];
	size_t len;

	if (sj == NULL)
		return 0;
	if ((scope = json_string_value(sj)) == NULL)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "scope is not a string");
	for (p = scope; *p != '\0'; p = *end == '\0' ? end : end + 1) {
		if ((end = strchr(p, ' ')) == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len == 0 || len > BOTID_MAX_SCOPE)
			return verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "token scope is malformed");
		memcpy(one, p, len);
		one[len] = '\0';
		if (!grant_has_scope(g, one))
			return verify_fail(BOTID_ERR_DENIED, err, errlen,
			    "token scope %s exceeds the certificate's grant",
			    one);
	}
	return 0;
}

static int
verify_claims(json_t *claims, const struct botid_verify_opts *o,
    const char *spiffe, const struct botid_grant *g, char *err,
    size_t errlen)
{
	int64_t now = verify_now(o), exp = 0, nbf = 0, iat = 0;
	const char *iss, *sub;
	int r;

	if (!json_is_object(claims))
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "claims are not a JSON object");
	iss = json_string_value(json_object_get(claims, "iss"));
	sub = json_string_value(json_object_get(claims, "sub"));
	if (iss == NULL || strcmp(iss, g->issuer) != 0 ||
	    (o->issuer != NULL && strcmp(iss, o->issuer) != 0))
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "iss is not the issuer %s", o->issuer != NULL ?
		    o->issuer : g->issuer);
	if (sub == NULL || strcmp(sub, spiffe) != 0)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "sub is not the certificate's SPIFFE ID %s", spiffe);
	if (o->audience == NULL)
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "no audience to check the token against");
	if ((r = verify_audience(claims, o->audience, err, errlen)) != 0)
		return r;
	if ((r = verify_time_claim(claims, "exp", 1, &exp, err, errlen)) != 0)
		return r;
	if (exp <= now - o->leeway)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "token expired %lld seconds ago", (long long)(now - exp));
	r = verify_time_claim(claims, "nbf", 0, &nbf, err, errlen);
	if (r == 0 && nbf > now + o->leeway)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "token not valid before %lld", (long long)nbf);
	if (r != 0 && r != BOTID_ERR_NOT_FOUND)
		return r;
	/* iat is required: the grant bounds exp - iat. */
	if ((r = verify_time_claim(claims, "iat", 1, &iat, err, errlen)) != 0)
		return r;
	if (iat > now + o->leeway || iat > exp)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "token issued in the future");
	if (exp - iat > (int64_t)g->max_ttl)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "token lifetime %lld s exceeds the grant's maximum %ld s",
		    (long long)(exp - iat), g->max_ttl);
	if ((r = verify_grant_scopes(claims, g, err, errlen)) != 0)
		return r;
	return verify_scopes(claims, o, err, errlen);
}

/* A kid that is not the leaf key's thumbprint names another key. */
static int
verify_kid(const struct jws_parsed *p, char *err, size_t errlen)
{
	const char *kid = json_string_value(json_object_get(p->header, "kid"));
	char *want = NULL;
	int r;

	if (kid == NULL || p->nx5c == 0)
		return 0;
	if ((r = jws_leaf_kid(&p->x5c[0], &want)) != 0)
		return verify_fail(r, err, errlen, "cannot compute the x5c "
		    "leaf's key thumbprint");
	r = strcmp(kid, want) == 0 ? 0 : verify_fail(BOTID_ERR_DENIED, err,
	    errlen, "kid is not the JWK thumbprint of the x5c leaf's key");
	free(want);
	return r;
}

/*
 * A JWT must come from a token key: its certificate has the botid token
 * EKU and a grant. A bot's general signing key (sign-msg, SIGN_DATA...)
 * has neither, so a token a bot assembles and signs itself fails here.
 */
static int
verify_token_key(const struct botid_blob *leaf, struct botid_grant *g,
    char *err, size_t errlen)
{
	const unsigned char *p = leaf->data;
	X509 *x;
	int r;

	if (leaf->len > LONG_MAX ||
	    (x = d2i_X509(NULL, &p, (long)leaf->len)) == NULL) {
		ERR_clear_error();
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "leaf certificate is not DER X.509");
	}
	r = grant_from_cert(x, g);
	X509_free(x);
	if (r == BOTID_ERR_ALLOC)
		return r;
	if (r != 0)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "not signed by a token key: the certificate has no botid "
		    "token usage and grant");
	return 0;
}

static int
verify_result(struct botid_verified **vp, struct botid_verified *v,
    enum jws_alg alg)
{
	if (alg != 0 && (v->alg = strdup(jws_alg_name(alg))) == NULL)
		return BOTID_ERR_ALLOC;
	*vp = v;
	return 0;
}

int
botid_verify_jwt(const struct botid_verify_opts *o, const char *token,
    struct botid_verified **vp, char *err, size_t errlen)
{
	struct jws_parsed p;
	struct botid_verified *v = NULL;
	struct botid_grant grant;
	EVP_PKEY *key = NULL;
	json_t *claims = NULL;
	json_error_t jerr;
	size_t len;
	int r;

	*vp = NULL;
	memset(&p, 0, sizeof(p));
	memset(&grant, 0, sizeof(grant));
	if (token == NULL || o == NULL)
		return verify_fail(BOTID_ERR_INVALID, err, errlen, "no token");
	len = strnlen(token, BOTID_MAX_TOKEN + 1);
	if ((r = jws_parse(token, len, &p, err, errlen)) != 0)
		goto out;
	if (p.detached) {
		r = verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "token has no payload");
		goto out;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = verify_chain(o, p.x5c, p.nx5c, &key, v, err, errlen)) != 0 ||
	    (r = verify_token_key(&p.x5c[0], &grant, err, errlen)) != 0 ||
	    (r = verify_kid(&p, err, errlen)) != 0 ||
	    (r = verify_signature(p.alg, key, p.signing_input,
	    p.signing_input_len, p.sig, p.sig_len, err, errlen)) != 0)
		goto out;
	if ((claims = json_loadb((const char *)p.payload, p.payload_len,
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		r = verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "claims are not JSON: %s", jerr.text);
		goto out;
	}
	if ((r = verify_claims(claims, o, v->spiffe_id, &grant, err,
	    errlen)) != 0)
		goto out;
	if ((v->claims = json_dumps(claims, JSON_COMPACT |
	    JSON_PRESERVE_ORDER)) == NULL ||
	    (r = verify_result(vp, v, p.alg)) != 0) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	v = NULL;
	r = 0;
 out:
	json_decref(claims);
	EVP_PKEY_free(key);
	botid_verified_free(v);
	grant_free(&grant);
	jws_parsed_free(&p);
	return r;
}

/*
 * A token key signs only tokens the agent built: a JWT's claims cut out
 * and presented as a detached message are not a message from the bot.
 */
static int
verify_not_token_key(const struct botid_blob *leaf, char *err, size_t errlen)
{
	struct botid_grant g;
	const unsigned char *p = leaf->data;
	X509 *x;
	int r;

	if (leaf->len > LONG_MAX ||
	    (x = d2i_X509(NULL, &p, (long)leaf->len)) == NULL) {
		ERR_clear_error();
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "leaf certificate is not DER X.509");
	}
	r = grant_from_cert(x, &g);
	X509_free(x);
	grant_free(&g);
	if (r == BOTID_ERR_ALLOC)
		return r;
	return r == 0 ? verify_fail(BOTID_ERR_DENIED, err, errlen,
	    "signed by a token key, which signs only tokens") : 0;
}

int
botid_verify_msg(const struct botid_verify_opts *o, const void *data,
    size_t len, const char *jws, struct botid_verified **vp, char *err,
    size_t errlen)
{
	struct jws_parsed p;
	struct botid_verified *v = NULL;
	EVP_PKEY *key = NULL;
	char *input = NULL, *b64 = NULL;
	size_t jlen;
	int r;

	*vp = NULL;
	memset(&p, 0, sizeof(p));
	if (jws == NULL || o == NULL || (data == NULL && len != 0))
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "no signature");
	jlen = strnlen(jws, BOTID_MAX_TOKEN + 1);
	if ((r = jws_parse(jws, jlen, &p, err, errlen)) != 0)
		goto out;
	if (!p.detached) {
		r = verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "signature does not have a detached payload");
		goto out;
	}
	if ((r = jws_b64url_encode(data, len, &b64)) != 0)
		goto out;
	/* p.signing_input is "HEADER." for a detached payload. */
	if (asprintf(&input, "%s%s", p.signing_input, b64) == -1) {
		input = NULL;
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = verify_chain(o, p.x5c, p.nx5c, &key, v, err, errlen)) != 0 ||
	    (r = verify_not_token_key(&p.x5c[0], err, errlen)) != 0 ||
	    (r = verify_kid(&p, err, errlen)) != 0 ||
	    (r = verify_signature(p.alg, key, input, strlen(input), p.sig,
	    p.sig_len, err, errlen)) != 0 ||
	    (r = verify_result(vp, v, p.alg)) != 0)
		goto out;
	v = NULL;
	r = 0;
 out:
	free(input);
	free(b64);
	EVP_PKEY_free(key);
	botid_verified_free(v);
	jws_parsed_free(&p);
	return r;
}

int
botid_verify_cert(const struct botid_verify_opts *o,
    const struct botid_blob *chain, size_t n, struct botid_verified **vp,
    char *err, size_t errlen)
{
	struct botid_verified *v = NULL;
	EVP_PKEY *key = NULL;
	int r;

	*vp = NULL;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return BOTID_ERR_ALLOC;
	if ((r = verify_chain(o, chain, n, &key, v, err, errlen)) != 0 ||
	    (r = verify_result(vp, v, 0)) != 0)
		goto out;
	v = NULL;
 out:
	EVP_PKEY_free(key);
	botid_verified_free(v);
	return r;
}

/* The kid's entry of the JWK Set holds the token's own leaf. */
static int
verify_jwks_has(const char *jwks, size_t len, const struct jws_parsed *p,
    char *err, size_t errlen)
{
	json_t *set = NULL, *keys, *k, *x5c;
	json_error_t jerr;
	const char *kid, *leaf;
	uint8_t *der = NULL;
	size_t i, der_len = 0;
	int r;

	if (len > BOTID_MAX_JWKS)
		return verify_fail(BOTID_ERR_TOO_LARGE, err, errlen,
		    "JWK Set larger than %u bytes", BOTID_MAX_JWKS);
	if ((kid = json_string_value(json_object_get(p->header, "kid"))) ==
	    NULL || p->nx5c == 0)
		return verify_fail(BOTID_ERR_DENIED, err, errlen,
		    "token has no kid and x5c to find in the JWK Set");
	if ((set = json_loadb(jwks, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL || !json_is_array(keys = json_object_get(set, "keys"))) {
		r = verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "the JWK Set is not {\"keys\": [...]}");
		goto out;
	}
	r = verify_fail(BOTID_ERR_DENIED, err, errlen, "kid %s is not in the "
	    "JWK Set (unknown, expired or revoked token key)", kid);
	json_array_foreach(keys, i, k) {
		if (!json_is_string(json_object_get(k, "kid")) ||
		    strcmp(json_string_value(json_object_get(k, "kid")),
		    kid) != 0)
			continue;
		x5c = json_object_get(k, "x5c");
		if ((leaf = json_string_value(json_array_get(x5c, 0))) == NULL ||
		    base64_decode(leaf, BOTID_MAX_TOKEN, &der, &der_len) != 0 ||
		    der_len != p->x5c[0].len ||
		    memcmp(der, p->x5c[0].data, der_len) != 0)
			r = verify_fail(BOTID_ERR_DENIED, err, errlen, "the JWK "
			    "Set's certificate for kid %s is not the token's",
			    kid);
		else
			r = 0;
		break;
	}
 out:
	free(der);
	json_decref(set);
	return r;
}

int
botid_verify_jwt_jwks(const struct botid_verify_opts *o, const char *jwks,
    size_t jwks_len, const char *token, struct botid_verified **vp,
    char *err, size_t errlen)
{
	struct jws_parsed p;
	int r;

	*vp = NULL;
	memset(&p, 0, sizeof(p));
	if (token == NULL || o == NULL || jwks == NULL)
		return verify_fail(BOTID_ERR_INVALID, err, errlen,
		    "no token or JWK Set");
	if ((r = jws_parse(token, strnlen(token, BOTID_MAX_TOKEN + 1), &p,
	    err, errlen)) != 0 ||
	    (r = verify_jwks_has(jwks, jwks_len, &p, err, errlen)) != 0)
		goto out;
	r = botid_verify_jwt(o, token, vp, err, errlen);
 out:
	jws_parsed_free(&p);
	return r;
}
