/*
 * Unit tests for lib/sig.c: ECDSA raw <-> DER round trips against OpenSSL,
 * malformed DER, and digests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/crypto.h>

#include "lib/error.h"
#include "lib/sig.h"
#include "lib/wire.h"

static void
test_raw_der_roundtrip(void **state)
{
	uint8_t raw[64], *der = NULL, *back = NULL;
	size_t der_len = 0, back_len = 0, i;

	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 7 + 1);
	raw[0] = 0x80;	/* high bit: DER needs a leading zero */
	raw[32] = 0x00;	/* leading zero: DER drops it */
	assert_int_equal(sig_ecdsa_raw_to_der(raw, sizeof(raw), &der,
	    &der_len), 0);
	assert_true(der_len > 8 && der[0] == 0x30);
	assert_int_equal(sig_ecdsa_der_to_raw(der, der_len, 32, &back,
	    &back_len), 0);
	assert_int_equal(back_len, 64);
	assert_memory_equal(back, raw, 64);
	free(back);
	/* r does not fit in 16 bytes. */
	assert_int_equal(sig_ecdsa_der_to_raw(der, der_len, 16, &back,
	    &back_len), BOTID_ERR_INVALID);
	assert_null(back);
	OPENSSL_free(der);
}

static void
test_raw_rejects_bad_lengths(void **state)
{
	uint8_t raw[3] = { 1, 2, 3 }, *der = (uint8_t *)"x";
	size_t der_len = 9;

	assert_int_equal(sig_ecdsa_raw_to_der(raw, 3, &der, &der_len),
	    BOTID_ERR_INVALID);
	assert_null(der);
	assert_int_equal(der_len, 0);
	assert_int_equal(sig_ecdsa_raw_to_der(raw, 0, &der, &der_len),
	    BOTID_ERR_INVALID);
}

static void
test_der_malformed(void **state)
{
	uint8_t raw[64], *der = NULL, *back = NULL, *copy;
	size_t der_len, back_len, i, cut;
	int bit;

	memset(raw, 0x5a, sizeof(raw));
	assert_int_equal(sig_ecdsa_raw_to_der(raw, 64, &der, &der_len), 0);
	/* Every truncation is refused. */
	for (cut = 0; cut < der_len; cut++)
		assert_int_not_equal(sig_ecdsa_der_to_raw(der, cut, 32, &back,
		    &back_len), 0);
	/* Trailing bytes are refused. */
	copy = malloc(der_len + 1);
	assert_non_null(copy);
	memcpy(copy, der, der_len);
	copy[der_len] = 0;
	assert_int_equal(sig_ecdsa_der_to_raw(copy, der_len + 1, 32, &back,
	    &back_len), BOTID_ERR_INVALID);
	/* Bit flips never crash; what decodes is the right size. */
	for (i = 0; i < der_len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, der, der_len);
			copy[i] ^= (uint8_t)(1 << bit);
			if (sig_ecdsa_der_to_raw(copy, der_len, 32, &back,
			    &back_len) == 0) {
				assert_int_equal(back_len, 64);
				free(back);
			}
		}
	}
	free(copy);
	OPENSSL_free(der);
}

static void
test_digest(void **state)
{
	static const uint8_t abc256[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41,
		0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3,
		0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
		0x15, 0xad,
	};
	uint8_t out[64];
	size_t len;

	assert_int_equal(sig_digest(BOTID_HASH_SHA256, "abc", 3, out, &len), 0);
	assert_int_equal(len, 32);
	assert_memory_equal(out, abc256, 32);
	assert_int_equal(sig_digest(BOTID_HASH_SHA384, "abc", 3, out, &len), 0);
	assert_int_equal(len, 48);
	assert_int_equal(sig_digest(BOTID_HASH_SHA512, "", 0, out, &len), 0);
	assert_int_equal(len, 64);
	assert_int_equal(sig_digest(9, "abc", 3, out, &len), BOTID_ERR_INVALID);
	assert_int_equal(len, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_der_roundtrip),
		cmocka_unit_test(test_raw_rejects_bad_lengths),
		cmocka_unit_test(test_der_malformed),
		cmocka_unit_test(test_digest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
