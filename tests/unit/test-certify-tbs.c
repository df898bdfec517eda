/*
 * The PKCS#11 vouching message (lib/certify-tbs.c): its exact bytes, a
 * length prefix on every part so that moving bytes between the nonce and
 * the bot name changes the message, and exactly 32-byte nonces (issue 21:
 * the nonce had no prefix and up to 64 bytes were taken).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/botid.h"
#include "lib/certify-tbs.h"
#include "lib/limits.h"

static const char label[] = "botid-pkcs11-certify-v2";

static void
test_vector(void **state)
{
	uint8_t nonce[32], spki[3] = { 0x30, 0x01, 0x00 }, *t = NULL;
	uint8_t want[sizeof(label) + 4 + 32 + 4 + 2 + 4 + 3];
	size_t len = 0, off = 0, i;

	(void)state;
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)i;
	memcpy(want, label, sizeof(label));
	off = sizeof(label);
	memcpy(want + off, "\0\0\0\x20", 4);
	off += 4;
	memcpy(want + off, nonce, 32);
	off += 32;
	memcpy(want + off, "\0\0\0\x02" "ab", 6);
	off += 6;
	memcpy(want + off, "\0\0\0\x03", 4);
	off += 4;
	memcpy(want + off, spki, 3);
	off += 3;
	assert_int_equal(off, sizeof(want));
	assert_int_equal(certify_pkcs11_tbs(nonce, sizeof(nonce), "ab", spki,
	    sizeof(spki), &t, &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(t, want, sizeof(want));
	free(t);
}

static void
test_nonce_length(void **state)
{
	uint8_t nonce[65], spki[1] = { 0 }, *t = (uint8_t *)1;
	size_t n, len = 1;

	(void)state;
	memset(nonce, 7, sizeof(nonce));
	for (n = 0; n <= sizeof(nonce); n++) {
		if (n == BOTID_NONCE_LEN)
			continue;
		assert_int_equal(certify_pkcs11_tbs(nonce, n, "bot", spki,
		    sizeof(spki), &t, &len), BOTID_ERR_INVALID);
		assert_null(t);
		assert_int_equal(len, 0);
		t = (uint8_t *)1;
		len = 1;
	}
	assert_int_equal(certify_pkcs11_tbs(NULL, BOTID_NONCE_LEN, "bot",
	    spki, sizeof(spki), &t, &len), BOTID_ERR_INVALID);
}

/* Different parts never give the same bytes. */
static void
test_parts_are_delimited(void **state)
{
	uint8_t nonce[32], spki[4] = { 1, 2, 3, 4 }, *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	(void)state;
	memset(nonce, 'x', sizeof(nonce));
	assert_int_equal(certify_pkcs11_tbs(nonce, 32, "ab", spki, 4, &a,
	    &alen), 0);
	assert_int_equal(certify_pkcs11_tbs(nonce, 32, "a", spki, 4, &b,
	    &blen), 0);
	assert_true(alen != blen || memcmp(a, b, alen) != 0);
	free(b);
	b = NULL;
	assert_int_equal(certify_pkcs11_tbs(nonce, 32, "ab", spki, 3, &b,
	    &blen), 0);
	assert_true(alen != blen || memcmp(a, b, alen) != 0);
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_nonce_length),
		cmocka_unit_test(test_parts_are_delimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
