/*
 * Unit tests for lib/jws.c: base64url edge cases, the RFC 7515 appendix
 * A.3 ES256 example and RFC 7519 section 3.1's example token through the
 * parser, header building, and the parser under truncation at every
 * offset and a byte-flip at every position.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/error.h"
#include "lib/grant.h"
#include "lib/jws.h"
#include "lib/limits.h"

/* RFC 7515 appendix A.3: ES256 over the JWT of RFC 7519 section 3.1. */
static const char rfc7515_a3[] =
    "eyJhbGciOiJFUzI1NiJ9"
    "."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA"
    "pmWQxfKTUJqPP3-Kg6NU1Q";

/* RFC 7519 section 3.1 (HS256): the parser must refuse the algorithm. */
static const char rfc7519_31[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    "."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

static void
test_b64url_vectors(void **state)
{
	/* RFC 4648 section 10, in the URL alphabet without padding. */
	static const struct { const char *in, *out; } v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" },
	};
	static const uint8_t hi[] = { 0xfb, 0xff, 0xfe };
	uint8_t *dec;
	size_t i, len;
	char *enc;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(jws_b64url_encode((const uint8_t *)v[i].in,
		    strlen(v[i].in), &enc), 0);
		assert_string_equal(enc, v[i].out);
		free(enc);
		assert_int_equal(jws_b64url_decode(v[i].out, strlen(v[i].out),
		    64, &dec, &len), 0);
		assert_int_equal(len, strlen(v[i].in));
		assert_memory_equal(dec, v[i].in, len);
		free(dec);
	}
	/* The two URL-safe characters. */
	assert_int_equal(jws_b64url_encode(hi, sizeof(hi), &enc), 0);
	assert_string_equal(enc, "-__-");
	free(enc);
}

static void
test_b64url_strict(void **state)
{
	static const char *const bad[] = {
		"Zg==",		/* padding */
		"Zm9v+A",	/* standard alphabet */
		"Zm9v/A",
		"Zm 9v",	/* whitespace */
		"Zm9v\n",
		"Z",		/* length 1 mod 4 */
		"Zh",		/* non-zero unused bits */
		"Zm9",		/* "fo" is Zm8; Zm9 leaves bits set */
	};
	uint8_t *dec = (uint8_t *)1;
	size_t i, len = 1;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(jws_b64url_decode(bad[i], strlen(bad[i]), 64,
		    &dec, &len), BOTID_ERR_INVALID);
		assert_null(dec);
		assert_int_equal(len, 0);
	}
	assert_int_equal(jws_b64url_decode("Zm9vYmFy", 8, 5, &dec, &len),
	    BOTID_ERR_TOO_LARGE);
	/* A NUL inside the given length is a bad character, not an end. */
	assert_int_equal(jws_b64url_decode("Zm\0v", 4, 64, &dec, &len),
	    BOTID_ERR_INVALID);
}

static void
test_parse_rfc7515_a3(void **state)
{
	struct jws_parsed p;
	char err[128];

	(void)state;
	assert_int_equal(jws_parse(rfc7515_a3, strlen(rfc7515_a3), &p, err,
	    sizeof(err)), 0);
	assert_int_equal(p.alg, JWS_ALG_ES256);
	assert_false(p.detached);
	assert_int_equal(p.sig_len, 64);
	assert_int_equal(p.nx5c, 0);
	assert_int_equal(p.signing_input_len,
	    strchr(strchr(rfc7515_a3, '.') + 1, '.') - rfc7515_a3);
	assert_non_null(strstr((const char *)p.payload, "\"iss\":\"joe\""));
	jws_parsed_free(&p);
	jws_parsed_free(&p);	/* twice: the struct is zeroed */
}

static void
test_parse_refusals(void **state)
{
	static const struct { const char *token, *why; int r; } v[] = {
		{ "eyJhbGciOiJub25lIn0.e30.", "alg none",
		    BOTID_ERR_UNSUPPORTED },		/* {"alg":"none"} */
		{ "eyJhbGciOiJub25lIn0.e30.AAAA", "alg none",
		    BOTID_ERR_UNSUPPORTED },
		{ "eyJhbGciOiJFUzI1NiJ9.e30", "three parts",
		    BOTID_ERR_INVALID },
		{ "eyJhbGciOiJFUzI1NiJ9.e30.AAAA.AAAA", "three parts",
		    BOTID_ERR_INVALID },
		{ "eyJhbGciOiJFUzI1NiJ9.e30.", "signature is empty",
		    BOTID_ERR_INVALID },
		/* {"alg":"ES256","alg":"none"}: duplicate key */
		{ "eyJhbGciOiJFUzI1NiIsImFsZyI6Im5vbmUifQ.e30.AAAA",
		    "not JSON", BOTID_ERR_INVALID },
		/* [] */
		{ "W10.e30.AAAA", "not a JSON object", BOTID_ERR_INVALID },
		/* {"typ":"JWT"} */
		{ "eyJ0eXAiOiJKV1QifQ.e30.AAAA", "no alg", BOTID_ERR_INVALID },
		/* {"alg":"ES256","crit":["b64"],"b64":false} */
		{ "eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiYjY0Il0sImI2NCI6ZmFsc2V9"
		    ".e30.AAAA", "unsupported header", BOTID_ERR_UNSUPPORTED },
		/* {"alg":"ES256","jku":"http://x"} */
		{ "eyJhbGciOiJFUzI1NiIsImprdSI6Imh0dHA6Ly94In0.e30.AAAA",
		    "unsupported header", BOTID_ERR_UNSUPPORTED },
		/* {"alg":"ES256","x5c":"x"} */
		{ "eyJhbGciOiJFUzI1NiIsIng1YyI6IngifQ.e30.AAAA", "x5c",
		    BOTID_ERR_INVALID },
		/* {"alg":"ES256","x5c":["!!"]} */
		{ "eyJhbGciOiJFUzI1NiIsIng1YyI6WyIhISJdfQ.e30.AAAA", "base64",
		    BOTID_ERR_INVALID },
		{ "eyJhbGciOiJFUzI1NiJ9.e30=.AAAA", "payload",
		    BOTID_ERR_INVALID },
	};
	struct jws_parsed p;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(jws_parse(v[i].token, strlen(v[i].token), &p,
		    err, sizeof(err)), v[i].r);
		if (strstr(err, v[i].why) == NULL)
			fail_msg("%s: reason '%s' lacks '%s'", v[i].token, err,
			    v[i].why);
		assert_null(p.header);
	}
	assert_int_equal(jws_parse(rfc7519_31, strlen(rfc7519_31), &p, err,
	    sizeof(err)), BOTID_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "HS256"));
}

static void
test_parse_limits(void **state)
{
	struct jws_parsed p;
	char err[128], *big;

	(void)state;
	assert_non_null(big = malloc(BOTID_MAX_TOKEN + 2));
	memset(big, 'A', BOTID_MAX_TOKEN + 1);
	big[BOTID_MAX_TOKEN + 1] = '\0';
	assert_int_equal(jws_parse(big, BOTID_MAX_TOKEN + 1, &p, err,
	    sizeof(err)), BOTID_ERR_TOO_LARGE);
	assert_non_null(strstr(err, "longer than"));
	free(big);
	assert_int_equal(jws_parse(NULL, 0, &p, err, sizeof(err)),
	    BOTID_ERR_INVALID);
	assert_int_equal(jws_parse("", 0, &p, err, sizeof(err)),
	    BOTID_ERR_INVALID);
	assert_int_equal(jws_parse("a.\0.c", 5, &p, err, sizeof(err)),
	    BOTID_ERR_INVALID);
}

/* No prefix and no single-byte change may crash or leak (valgrind). */
static void
test_parse_truncate_and_flip(void **state)
{
	struct jws_parsed p;
	size_t len = strlen(rfc7515_a3), i;
	char *copy, err[128];
	unsigned bit;
	int r;

	(void)state;
	for (i = 0; i < len; i++) {
		assert_non_null(copy = strndup(rfc7515_a3, i));
		r = jws_parse(copy, i, &p, err, sizeof(err));
		/* Only a cut inside the signature can still parse. */
		if (r == 0)
			assert_true(i > p.signing_input_len);
		jws_parsed_free(&p);
		free(copy);
	}
	assert_non_null(copy = strdup(rfc7515_a3));
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			copy[i] ^= (char)(1u << bit);
			(void)jws_parse(copy, len, &p, err, sizeof(err));
			jws_parsed_free(&p);
			copy[i] ^= (char)(1u << bit);
		}
	}
	free(copy);
}

static void
test_sig_conversion(void **state)
{
	uint8_t raw[64], *der;
	size_t der_len;

	(void)state;
	memset(raw, 0x11, sizeof(raw));
	assert_int_equal(jws_sig_to_der(JWS_ALG_ES256, raw, 64, &der,
	    &der_len), 0);
	assert_int_equal(der[0], 0x30);
	free(der);
	/* A DER signature in a JOSE token is refused, not guessed at. */
	assert_int_equal(jws_sig_to_der(JWS_ALG_ES256, raw, 63, &der,
	    &der_len), BOTID_ERR_INVALID);
	assert_int_equal(jws_sig_to_der(JWS_ALG_ES384, raw, 64, &der,
	    &der_len), BOTID_ERR_INVALID);
	assert_int_equal(jws_sig_to_der(JWS_ALG_RS256, raw, 64, &der,
	    &der_len), 0);
	assert_int_equal(der_len, 64);
	free(der);
	assert_int_equal(jws_sig_to_der(JWS_ALG_RS256, raw, 0, &der,
	    &der_len), BOTID_ERR_INVALID);
}

static void
test_algs(void **state)
{
	enum jws_alg a;

	(void)state;
	assert_int_equal(jws_alg_parse("ES384", &a), 0);
	assert_int_equal(a, JWS_ALG_ES384);
	assert_int_equal(jws_alg_hash(a), BOTID_HASH_SHA384);
	assert_int_equal(jws_alg_parse("PS256", &a), 0);
	assert_int_equal(jws_alg_scheme(a), BOTID_SCHEME_PSS);
	assert_int_equal(jws_alg_parse("none", &a), BOTID_ERR_UNSUPPORTED);
	assert_int_equal(jws_alg_parse("HS256", &a), BOTID_ERR_UNSUPPORTED);
	assert_int_equal(jws_alg_parse("es256", &a), BOTID_ERR_UNSUPPORTED);
	assert_null(jws_alg_name((enum jws_alg)0));
}

/* A self-signed certificate for a fresh P-256 key, DER. */
static uint8_t *
make_cert(EVP_PKEY **pkp, size_t *len)
{
	EVP_PKEY *pk;
	X509 *x;
	unsigned char *der = NULL;
	int n;

	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	assert_non_null(x = X509_new());
	assert_int_equal(X509_set_pubkey(x, pk), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 60);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	assert_true((n = i2d_X509(x, &der)) > 0);
	X509_free(x);
	*pkp = pk;
	*len = (size_t)n;
	return der;
}

static void
test_build(void **state)
{
	/* Not a certificate: no key, so no kid. */
	uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	struct botid_blob chain = { junk, sizeof(junk) };
	struct jws_parsed p;
	EVP_PKEY *pk;
	uint8_t *cert;
	size_t cert_len;
	char *header, *input, *token, err[128], *kid, *want, *x5c;
	uint8_t sig[64];

	(void)state;
	assert_int_equal(jws_header_build(JWS_ALG_ES256, "JWT", &chain, 0,
	    &header), BOTID_ERR_INVALID);
	assert_int_equal(jws_header_build(JWS_ALG_ES256, "JWT", &chain, 1,
	    &header), BOTID_ERR_INVALID);
	cert = make_cert(&pk, &cert_len);
	chain.data = cert;
	chain.len = cert_len;
	assert_int_equal(jws_header_build(JWS_ALG_ES256, "JWT", &chain, 1,
	    &header), 0);
	/* kid is the key's RFC 7638 thumbprint, as in botid-ca's JWK Set. */
	assert_int_equal(jwk_thumbprint(pk, &kid), 0);
	assert_true(asprintf(&want, "\"alg\":\"ES256\",\"typ\":\"JWT\","
	    "\"kid\":\"%s\"", kid) > 0);
	assert_non_null(strstr(header, want));
	assert_int_equal(base64_encode(cert, cert_len, &x5c), 0);
	assert_non_null(strstr(header, x5c));
	free(x5c);
	free(want);
	free(kid);
	EVP_PKEY_free(pk);
	assert_int_equal(jws_signing_input(header, (const uint8_t *)"{}", 2,
	    &input), 0);
	memset(sig, 7, sizeof(sig));
	assert_int_equal(jws_finish(input, 0, sig, sizeof(sig), &token), 0);
	assert_int_equal(jws_parse(token, strlen(token), &p, err,
	    sizeof(err)), 0);
	assert_int_equal(p.nx5c, 1);
	assert_memory_equal(p.x5c[0].data, cert, cert_len);
	assert_memory_equal(p.payload, "{}", 2);
	assert_memory_equal(p.sig, sig, sizeof(sig));
	jws_parsed_free(&p);
	free(token);
	/* Detached: the middle part is empty, and parses as such. */
	assert_int_equal(jws_finish(input, 1, sig, sizeof(sig), &token), 0);
	assert_non_null(strstr(token, ".."));
	assert_int_equal(jws_parse(token, strlen(token), &p, err,
	    sizeof(err)), 0);
	assert_true(p.detached);
	assert_null(p.payload);
	jws_parsed_free(&p);
	free(token);
	free(input);
	free(header);
	OPENSSL_free(cert);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_strict),
		cmocka_unit_test(test_parse_rfc7515_a3),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_parse_truncate_and_flip),
		cmocka_unit_test(test_sig_conversion),
		cmocka_unit_test(test_algs),
		cmocka_unit_test(test_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
