/*
 * Compact JWS: encoding for the agent and libbotid, and the parser that
 * faces tokens from the network. The parser decides only what a token
 * says; whether to believe it is lib/verify.c's job.
 */
#include "botid-config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/certid.h"
#include "lib/grant.h"
#include "lib/error.h"
#include "lib/jws.h"
#include "lib/limits.h"
#include "lib/sig.h"

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
jws_b64url_encode(const uint8_t *in, size_t len, char **out)
{
	size_t i, o = 0, n;
	uint32_t v;
	char *s;

	*out = NULL;
	if (len > (SIZE_MAX - 4) / 4 * 3)
		return BOTID_ERR_TOO_LARGE;
	n = len / 3 * 4 + 4;
	if ((s = malloc(n + 1)) == NULL)
		return BOTID_ERR_ALLOC;
	for (i = 0; len - i >= 3; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		s[o++] = b64url_chars[(v >> 18) & 63];
		s[o++] = b64url_chars[(v >> 12) & 63];
		s[o++] = b64url_chars[(v >> 6) & 63];
		s[o++] = b64url_chars[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		s[o++] = b64url_chars[(v >> 18) & 63];
		s[o++] = b64url_chars[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		s[o++] = b64url_chars[(v >> 18) & 63];
		s[o++] = b64url_chars[(v >> 12) & 63];
		s[o++] = b64url_chars[(v >> 6) & 63];
	}
	s[o] = '\0';
	*out = s;
	return 0;
}

static int
b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
jws_b64url_decode(const char *in, size_t len, size_t max, uint8_t **out,
    size_t *outlen)
{
	size_t i, o = 0, n, rem = len % 4;
	uint32_t acc = 0;
	uint8_t *p;
	int v;

	*out = NULL;
	*outlen = 0;
	if (rem == 1)
		return BOTID_ERR_INVALID;
	n = len / 4 * 3 + (rem == 0 ? 0 : rem - 1);
	if (n > max)
		return BOTID_ERR_TOO_LARGE;
	if ((p = malloc(n + 1)) == NULL)
		return BOTID_ERR_ALLOC;
	for (i = 0; i < len; i++) {
		if ((v = b64url_value(in[i])) < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			p[o++] = (uint8_t)(acc >> 16);
			p[o++] = (uint8_t)(acc >> 8);
			p[o++] = (uint8_t)acc;
			acc = 0;
		}
	}
	/* A canonical encoding leaves the unused low bits zero. */
	if (rem == 2) {
		if ((acc & 0x0f) != 0)
			goto bad;
		p[o++] = (uint8_t)(acc >> 4);
	} else if (rem == 3) {
		if ((acc & 0x03) != 0)
			goto bad;
		p[o++] = (uint8_t)(acc >> 10);
		p[o++] = (uint8_t)(acc >> 2);
	}
	p[o] = '\0';
	*out = p;
	*outlen = o;
	return 0;
 bad:
	free(p);
	return BOTID_ERR_INVALID;
}

static const struct {
	enum jws_alg	 alg;
	const char	*name;
	uint32_t	 hash;
	uint32_t	 scheme;
	size_t		 field_len;	/* ECDSA r and s; 0 for RSA */
} algs[] = {
	{ JWS_ALG_ES256, "ES256", BOTID_HASH_SHA256, BOTID_SCHEME_ECDSA, 32 },
	{ JWS_ALG_ES384, "ES384", BOTID_HASH_SHA384, BOTID_SCHEME_ECDSA, 48 },
	{ JWS_ALG_RS256, "RS256", BOTID_HASH_SHA256, BOTID_SCHEME_PKCS1, 0 },
	{ JWS_ALG_PS256, "PS256", BOTID_HASH_SHA256, BOTID_SCHEME_PSS, 0 },
};
#define NALGS	(sizeof(algs) / sizeof(algs[0]))

const char *
jws_alg_name(enum jws_alg alg)
{
	size_t i;

	for (i = 0; i < NALGS; i++)
		if (algs[i].alg == alg)
			return algs[i].name;
	return NULL;
}

int
jws_alg_parse(const char *name, enum jws_alg *alg)
{
	size_t i;

	for (i = 0; i < NALGS; i++) {
		if (strcmp(algs[i].name, name) == 0) {
			*alg = algs[i].alg;
			return 0;
		}
	}
	return BOTID_ERR_UNSUPPORTED;
}

uint32_t
jws_alg_hash(enum jws_alg alg)
{
	size_t i;

	for (i = 0; i < NALGS; i++)
		if (algs[i].alg == alg)
			return algs[i].hash;
	return 0;
}

uint32_t
jws_alg_scheme(enum jws_alg alg)
{
	size_t i;

	for (i = 0; i < NALGS; i++)
		if (algs[i].alg == alg)
			return algs[i].scheme;
	return 0;
}

static size_t
jws_alg_field_len(enum jws_alg alg)
{
	size_t i;

	for (i = 0; i < NALGS; i++)
		if (algs[i].alg == alg)
			return algs[i].field_len;
	return 0;
}

int
jws_leaf_kid(const struct botid_blob *leaf, char **kid)
{
	const unsigned char *p = leaf->data;
	X509 *x = NULL;
	EVP_PKEY *pk;
	int r;

	*kid = NULL;
	if (leaf->len > LONG_MAX ||
	    (x = d2i_X509(NULL, &p, (long)leaf->len)) == NULL ||
	    p != leaf->data + leaf->len) {
		ERR_clear_error();
		X509_free(x);
		return BOTID_ERR_INVALID;
	}
	if ((pk = X509_get0_pubkey(x)) == NULL) {
		ERR_clear_error();
		r = BOTID_ERR_INVALID;
	} else
		r = jwk_thumbprint(pk, kid);
	X509_free(x);
	return r;
}

int
jws_header_build(enum jws_alg alg, const char *typ,
    const struct botid_blob *chain, size_t n, char **json)
{
	json_t *h = NULL, *x5c = NULL;
	char *kid = NULL, *b64 = NULL, *s = NULL;
	size_t i;
	int r = BOTID_ERR_INTERNAL;

	*json = NULL;
	if (n == 0 || n > BOTID_MAX_CHAIN || jws_alg_name(alg) == NULL)
		return BOTID_ERR_INVALID;
	/* kid: the RFC 7638 thumbprint of the leaf's key, as in a JWK Set. */
	if ((r = jws_leaf_kid(&chain[0], &kid)) != 0)
		goto out;
	r = BOTID_ERR_ALLOC;
	if ((h = json_object()) == NULL || (x5c = json_array()) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if ((r = base64_encode(chain[i].data, chain[i].len, &b64)) != 0)
			goto out;
		r = BOTID_ERR_ALLOC;
		if (json_array_append_new(x5c, json_string(b64)) != 0)
			goto out;
		free(b64);
		b64 = NULL;
	}
	if (json_object_set_new(h, "alg", json_string(jws_alg_name(alg))) != 0 ||
	    (typ != NULL &&
	    json_object_set_new(h, "typ", json_string(typ)) != 0) ||
	    json_object_set_new(h, "kid", json_string(kid)) != 0 ||
	    json_object_set(h, "x5c", x5c) != 0)
		goto out;
	if ((s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	*json = s;
	r = 0;
 out:
	free(b64);
	free(kid);
	json_decref(x5c);
	json_decref(h);
	return r;
}

int
jws_signing_input(const char *header, const uint8_t *payload,
    size_t payload_len, char **input)
{
	char *h = NULL, *p = NULL;
	int r;

	*input = NULL;
	if ((r = jws_b64url_encode((const uint8_t *)header, strlen(header),
	    &h)) != 0 ||
	    (r = jws_b64url_encode(payload, payload_len, &p)) != 0)
		goto out;
	if (asprintf(input, "%s.%s", h, p) == -1) {
		*input = NULL;
		r = BOTID_ERR_ALLOC;
	}
 out:
	free(h);
	free(p);
	return r;
}

int
jws_finish(const char *input, int detached, const uint8_t *sig,
    size_t sig_len, char **token)
{
	const char *dot;
	char *s = NULL;
	int r, n;

	*token = NULL;
	if ((dot = strchr(input, '.')) == NULL ||
	    (size_t)(dot - input) > BOTID_MAX_TOKEN)
		return BOTID_ERR_INVALID;
	if ((r = jws_b64url_encode(sig, sig_len, &s)) != 0)
		return r;
	if (detached)
		n = asprintf(token, "%.*s..%s", (int)(dot - input), input, s);
	else
		n = asprintf(token, "%s.%s", input, s);
	free(s);
	if (n == -1) {
		*token = NULL;
		return BOTID_ERR_ALLOC;
	}
	return 0;
}

int
jws_sig_to_der(enum jws_alg alg, const uint8_t *sig, size_t len,
    uint8_t **der, size_t *der_len)
{
	size_t field = jws_alg_field_len(alg);

	*der = NULL;
	*der_len = 0;
	if (field != 0) {
		/* JOSE fixes the length; DER-in-JOSE is a known confusion. */
		if (len != 2 * field)
			return BOTID_ERR_INVALID;
		return sig_ecdsa_raw_to_der(sig, len, der, der_len);
	}
	if (len == 0 || len > BOTID_MAX_SIGNATURE)
		return BOTID_ERR_INVALID;
	if ((*der = malloc(len)) == NULL)
		return BOTID_ERR_ALLOC;
	memcpy(*der, sig, len);
	*der_len = len;
	return 0;
}

static int __attribute__((format(printf, 4, 5)))
jws_fail(int r, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* x5c: a non-empty array of standard base64 DER certificates. */
static int
jws_parse_x5c(const json_t *x5c, struct jws_parsed *out, char *err,
    size_t errlen)
{
	const char *s;
	size_t i, n;
	int r;

	if (!json_is_array(x5c) || (n = json_array_size(x5c)) == 0)
		return jws_fail(BOTID_ERR_INVALID, err, errlen,
		    "x5c is not a non-empty array");
	if (n > BOTID_MAX_CHAIN)
		return jws_fail(BOTID_ERR_TOO_LARGE, err, errlen,
		    "x5c has more than %u certificates", BOTID_MAX_CHAIN);
	if ((out->x5c = calloc(n, sizeof(*out->x5c))) == NULL)
		return BOTID_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		if ((s = json_string_value(json_array_get(x5c, i))) == NULL)
			return jws_fail(BOTID_ERR_INVALID, err, errlen,
			    "x5c[%zu] is not a string", i);
		if ((r = base64_decode(s, BOTID_MAX_TOKEN, &out->x5c[i].data,
		    &out->x5c[i].len)) != 0)
			return jws_fail(r, err, errlen,
			    "x5c[%zu] is not base64", i);
		out->nx5c++;
	}
	return 0;
}

int
jws_parse(const char *token, size_t len, struct jws_parsed *out, char *err,
    size_t errlen)
{
	const char *d1, *d2, *alg;
	const char *key;
	json_t *value;
	json_error_t jerr;
	uint8_t *hjson = NULL;
	size_t hlen, plen, slen;
	int r = BOTID_ERR_INTERNAL;

	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (token == NULL)
		return jws_fail(BOTID_ERR_INVALID, err, errlen, "no token");
	if (len > BOTID_MAX_TOKEN)
		return jws_fail(BOTID_ERR_TOO_LARGE, err, errlen,
		    "token longer than %u bytes", BOTID_MAX_TOKEN);
	if (len == 0 || memchr(token, '\0', len) != NULL)
		return jws_fail(BOTID_ERR_INVALID, err, errlen,
		    "empty token or NUL byte in token");
	if ((d1 = memchr(token, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token))) ==
	    NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
		return jws_fail(BOTID_ERR_INVALID, err, errlen,
		    "token does not have exactly three parts");
	hlen = (size_t)(d1 - token);
	plen = (size_t)(d2 - d1 - 1);
	slen = len - (size_t)(d2 + 1 - token);
	if ((r = jws_b64url_decode(token, hlen, BOTID_MAX_TOKEN, &hjson,
	    &hlen)) != 0) {
		r = jws_fail(r, err, errlen, "header is not base64url");
		goto out;
	}
	if ((out->header = json_loadb((const char *)hjson, hlen,
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		r = jws_fail(BOTID_ERR_INVALID, err, errlen,
		    "header is not JSON: %s", jerr.text);
		goto out;
	}
	if (!json_is_object(out->header)) {
		r = jws_fail(BOTID_ERR_INVALID, err, errlen,
		    "header is not a JSON object");
		goto out;
	}
	if ((alg = json_string_value(json_object_get(out->header, "alg"))) ==
	    NULL) {
		r = jws_fail(BOTID_ERR_INVALID, err, errlen,
		    "header has no alg");
		goto out;
	}
	if (strcmp(alg, "none") == 0) {
		r = jws_fail(BOTID_ERR_UNSUPPORTED, err, errlen,
		    "alg none: unsigned tokens are refused");
		goto out;
	}
	if (jws_alg_parse(alg, &out->alg) != 0) {
		r = jws_fail(BOTID_ERR_UNSUPPORTED, err, errlen,
		    "alg '%.16s' is not ES256, ES384, RS256 or PS256", alg);
		goto out;
	}
	/* Parameters change meaning (crit, b64 false, jku): refuse unknown. */
	json_object_foreach(out->header, key, value) {
		if (strcmp(key, "alg") == 0 || strcmp(key, "kid") == 0 ||
		    strcmp(key, "x5c") == 0)
			continue;
		if ((strcmp(key, "typ") == 0 || strcmp(key, "cty") == 0) &&
		    json_is_string(value))
			continue;
		if (strcmp(key, "b64") == 0 && json_is_true(value))
			continue;
		r = jws_fail(BOTID_ERR_UNSUPPORTED, err, errlen,
		    "unsupported header parameter '%.32s'", key);
		goto out;
	}
	if (json_object_get(out->header, "kid") != NULL &&
	    !json_is_string(json_object_get(out->header, "kid"))) {
		r = jws_fail(BOTID_ERR_INVALID, err, errlen,
		    "kid is not a string");
		goto out;
	}
	if ((value = json_object_get(out->header, "x5c")) != NULL &&
	    (r = jws_parse_x5c(value, out, err, errlen)) != 0)
		goto out;
	out->detached = plen == 0;
	if (!out->detached && (r = jws_b64url_decode(d1 + 1, plen,
	    BOTID_MAX_TOKEN, &out->payload, &out->payload_len)) != 0) {
		r = jws_fail(r, err, errlen, "payload is not base64url");
		goto out;
	}
	if (slen == 0) {
		r = jws_fail(BOTID_ERR_INVALID, err, errlen,
		    "signature is empty");
		goto out;
	}
	if ((r = jws_b64url_decode(d2 + 1, slen, BOTID_MAX_SIGNATURE,
	    &out->sig, &out->sig_len)) != 0) {
		r = jws_fail(r, err, errlen, "signature is not base64url");
		goto out;
	}
	if ((out->signing_input = strndup(token, (size_t)(d2 - token))) ==
	    NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	out->signing_input_len = (size_t)(d2 - token);
	r = 0;
 out:
	free(hjson);
	if (r != 0)
		jws_parsed_free(out);
	return r;
}

void
jws_parsed_free(struct jws_parsed *p)
{
	size_t i;

	if (p == NULL)
		return;
	json_decref(p->header);
	free(p->signing_input);
	free(p->payload);
	free(p->sig);
	for (i = 0; i < p->nx5c; i++)
		free(p->x5c[i].data);
	free(p->x5c);
	memset(p, 0, sizeof(*p));
}
