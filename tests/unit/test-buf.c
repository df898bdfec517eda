/*
 * Unit tests for lib/buf.c: every getter at the end of data, limits on
 * growth, views, secrets and compaction.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/error.h"

static void
test_put_get_roundtrip(void **state)
{
	struct botid_buf b;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *p;
	size_t n;

	buf_init(&b, 1024);
	assert_int_equal(buf_put_u8(&b, 0xab), 0);
	assert_int_equal(buf_put_u16(&b, 0xbeef), 0);
	assert_int_equal(buf_put_u32(&b, 0xdeadbeef), 0);
	assert_int_equal(buf_put_u64(&b, 0x0102030405060708ULL), 0);
	assert_int_equal(buf_put_string(&b, "hello", 5), 0);
	assert_int_equal(buf_len(&b), 1 + 2 + 4 + 8 + 4 + 5);
	/* Big-endian on the wire. */
	assert_memory_equal(buf_ptr(&b) + 3, "\xde\xad\xbe\xef", 4);
	assert_int_equal(buf_get_u8(&b, &u8), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(buf_get_u16(&b, &u16), 0);
	assert_int_equal(u16, 0xbeef);
	assert_int_equal(buf_get_u32(&b, &u32), 0);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(buf_get_u64(&b, &u64), 0);
	assert_true(u64 == 0x0102030405060708ULL);
	assert_int_equal(buf_get_string_direct(&b, &p, &n, 16), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "hello", 5);
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(buf_get_u8(&b, &u8), BOTID_ERR_INCOMPLETE);
	buf_reset(&b);
}

static void
test_getters_at_every_truncation(void **state)
{
	static const uint8_t full[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct botid_buf b;
	uint16_t u16 = 0x7777;
	uint32_t u32 = 0x77777777;
	uint64_t u64 = 7;
	size_t len;

	for (len = 0; len < sizeof(full); len++) {
		buf_init_view(&b, full, len);
		if (len < 2) {
			assert_int_equal(buf_get_u16(&b, &u16), BOTID_ERR_INCOMPLETE);
			assert_int_equal(u16, 0x7777);
		}
		if (len < 4) {
			assert_int_equal(buf_get_u32(&b, &u32), BOTID_ERR_INCOMPLETE);
			assert_int_equal(u32, 0x77777777);
		}
		assert_int_equal(buf_get_u64(&b, &u64), BOTID_ERR_INCOMPLETE);
		assert_int_equal(u64, 7);
		/* A failed read consumes nothing. */
		assert_int_equal(buf_len(&b), len);
	}
}

static void
test_string_length_checks(void **state)
{
	struct botid_buf b;
	const uint8_t *p = NULL;
	size_t n = 99;
	/* Claims 0xffffffff bytes: too large before any data is needed. */
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 'a' };
	/* Claims 4 bytes, has 3. */
	static const uint8_t short4[] = { 0, 0, 0, 4, 'a', 'b', 'c' };

	buf_init_view(&b, huge, sizeof(huge));
	assert_int_equal(buf_get_string_direct(&b, &p, &n, 1024),
	    BOTID_ERR_TOO_LARGE);
	assert_int_equal(buf_len(&b), sizeof(huge));
	assert_null(p);
	assert_int_equal(n, 99);

	buf_init_view(&b, short4, sizeof(short4));
	assert_int_equal(buf_get_string_direct(&b, &p, &n, 1024),
	    BOTID_ERR_INCOMPLETE);
	assert_int_equal(buf_len(&b), sizeof(short4));
	/* With the limit at exactly the length it is accepted once complete. */
	buf_init_view(&b, short4, 3);
	assert_int_equal(buf_get_string_direct(&b, &p, &n, 4),
	    BOTID_ERR_INCOMPLETE);
}

static void
test_max_size_enforced(void **state)
{
	struct botid_buf b;
	uint8_t *p;

	buf_init(&b, 8);
	assert_int_equal(buf_put(&b, "12345678", 8), 0);
	assert_int_equal(buf_put_u8(&b, 9), BOTID_ERR_TOO_LARGE);
	assert_int_equal(buf_reserve(&b, SIZE_MAX, &p), BOTID_ERR_TOO_LARGE);
	assert_null(p);
	/* Consuming frees room: compaction reclaims it on the next write. */
	assert_int_equal(buf_consume(&b, 4), 0);
	assert_int_equal(buf_put(&b, "abcd", 4), 0);
	assert_int_equal(buf_len(&b), 8);
	assert_memory_equal(buf_ptr(&b), "5678abcd", 8);
	assert_int_equal(buf_put_string(&b, "x", 1), BOTID_ERR_TOO_LARGE);
	/* A failed put_string leaves no half-written length behind. */
	assert_int_equal(buf_len(&b), 8);
	buf_reset(&b);
}

/*
 * Found by fuzzing the config parser on an empty buffer: an empty put
 * into a buffer that never held data computed NULL + 0, undefined
 * behaviour that UBSan stops on.
 */
static void
test_empty_put_into_empty_buffer(void **state)
{
	struct botid_buf b;
	uint8_t *p;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_put(&b, "", 0), 0);
	assert_int_equal(buf_reserve(&b, 0, &p), 0);
	assert_null(p);
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(buf_put(&b, "ab", 2), 0);
	assert_int_equal(buf_reserve(&b, 0, &p), 0);
	assert_ptr_equal(p, buf_ptr(&b) + 2);
	assert_int_equal(buf_len(&b), 2);
	buf_reset(&b);
}

static void
test_view_is_read_only(void **state)
{
	struct botid_buf b;
	uint8_t *p;

	buf_init_view(&b, "abc", 3);
	assert_int_equal(buf_put_u8(&b, 1), BOTID_ERR_INVALID);
	assert_int_equal(buf_reserve(&b, 1, &p), BOTID_ERR_INVALID);
	assert_int_equal(buf_poke_u32(&b, 0, 1), BOTID_ERR_INVALID);
	buf_reset(&b);
	assert_int_equal(buf_len(&b), 0);
}

static void
test_poke_and_unreserve(void **state)
{
	struct botid_buf b;
	uint32_t v;

	buf_init(&b, 64);
	assert_int_equal(buf_put_u32(&b, 0), 0);
	assert_int_equal(buf_put_u8(&b, 0x11), 0);
	assert_int_equal(buf_poke_u32(&b, 0, 0xcafef00d), 0);
	assert_int_equal(buf_poke_u32(&b, 2, 1), BOTID_ERR_INVALID);
	assert_int_equal(buf_peek_u32(&b, &v), 0);
	assert_int_equal(v, 0xcafef00d);
	assert_int_equal(buf_unreserve(&b, 1), 0);
	assert_int_equal(buf_len(&b), 4);
	assert_int_equal(buf_unreserve(&b, 5), BOTID_ERR_INVALID);
	buf_reset(&b);
}

static void
test_secret_growth(void **state)
{
	struct botid_buf b;
	size_t i;

	buf_init(&b, 1 << 16);
	buf_set_secret(&b);
	for (i = 0; i < 5000; i++)
		assert_int_equal(buf_put_u8(&b, (uint8_t)i), 0);
	for (i = 0; i < 5000; i++)
		assert_int_equal(buf_ptr(&b)[i], (uint8_t)i);
	buf_reset(&b);
	assert_null(b.data);
	buf_reset(NULL);
}

static void
test_find_byte(void **state)
{
	struct botid_buf b;
	size_t off = 99;

	buf_init_view(&b, "ab\ncd\n", 6);
	assert_int_equal(buf_find_byte(&b, '\n', &off), 0);
	assert_int_equal(off, 2);
	assert_int_equal(buf_consume(&b, 3), 0);
	off = 99;
	assert_int_equal(buf_find_byte(&b, '\n', &off), 0);
	assert_int_equal(off, 2);
	assert_int_equal(buf_find_byte(&b, 'x', &off), BOTID_ERR_INCOMPLETE);
	assert_int_equal(buf_consume(&b, 3), 0);
	assert_int_equal(buf_find_byte(&b, '\n', &off), BOTID_ERR_INCOMPLETE);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_roundtrip),
		cmocka_unit_test(test_getters_at_every_truncation),
		cmocka_unit_test(test_string_length_checks),
		cmocka_unit_test(test_max_size_enforced),
		cmocka_unit_test(test_empty_put_into_empty_buffer),
		cmocka_unit_test(test_view_is_read_only),
		cmocka_unit_test(test_poke_and_unreserve),
		cmocka_unit_test(test_secret_growth),
		cmocka_unit_test(test_find_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
