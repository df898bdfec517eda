/*
 * Unit tests for ca/ca-ratelimit.c: the burst, the refill by the clock,
 * Retry-After rounded up, one "first" per episode, hosts apart, bad
 * arguments, and a full table (refilled entries dropped, then uncounted).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ca/ca-ratelimit.h"
#include "lib/botid.h"
#include "lib/limits.h"

static void
test_burst_then_rate(void **state)
{
	struct ca_ratelimit *rl = NULL;
	unsigned wait;
	int first, i;

	(void)state;
	/* 6 a minute: one every 10 s, 3 at once. */
	assert_int_equal(ca_ratelimit_new(6, 3, &rl), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(ca_ratelimit_take(rl, "00000000000000aa",
		    100.0, &wait, &first), 0);
	assert_int_equal(ca_ratelimit_take(rl, "00000000000000aa", 100.0,
	    &wait, &first), BOTID_ERR_BUSY);
	assert_int_equal(wait, 10);
	assert_int_equal(first, 1);
	/* 2.5 s later: 7.5 s to go, said as 8. */
	assert_int_equal(ca_ratelimit_take(rl, "00000000000000aa", 102.5,
	    &wait, &first), BOTID_ERR_BUSY);
	assert_int_equal(wait, 8);
	assert_int_equal(first, 0);
	/* Another host is not held back. */
	assert_int_equal(ca_ratelimit_take(rl, "00000000000000bb", 102.5,
	    &wait, &first), 0);
	/* After 10 s one token, and the next episode is "first" again. */
	assert_int_equal(ca_ratelimit_take(rl, "00000000000000aa", 110.0,
	    &wait, &first), 0);
	assert_int_equal(ca_ratelimit_take(rl, "00000000000000aa", 110.0,
	    &wait, &first), BOTID_ERR_BUSY);
	assert_int_equal(first, 1);
	/* A long pause refills to the burst, not beyond. */
	for (i = 0; i < 3; i++)
		assert_int_equal(ca_ratelimit_take(rl, "00000000000000aa",
		    10000.0, &wait, &first), 0);
	assert_int_equal(ca_ratelimit_take(rl, "00000000000000aa", 10000.0,
	    &wait, &first), BOTID_ERR_BUSY);
	/* A clock that goes back refills nothing. */
	assert_int_equal(ca_ratelimit_take(rl, "00000000000000aa", 50.0,
	    &wait, &first), BOTID_ERR_BUSY);
	ca_ratelimit_free(rl);
}

static void
test_bad_arguments(void **state)
{
	struct ca_ratelimit *rl = NULL;
	unsigned wait = 7;
	int first = 7;

	(void)state;
	assert_int_equal(ca_ratelimit_new(0, 3, &rl), BOTID_ERR_INVALID);
	assert_null(rl);
	assert_int_equal(ca_ratelimit_new(3, 0, &rl), BOTID_ERR_INVALID);
	assert_int_equal(ca_ratelimit_new(3, 1, &rl), 0);
	assert_int_equal(ca_ratelimit_take(rl, "", 1.0, &wait, &first),
	    BOTID_ERR_INVALID);
	assert_int_equal(wait, 0);
	assert_int_equal(first, 0);
	assert_int_equal(ca_ratelimit_take(rl, "00000000000000aaa", 1.0,
	    &wait, &first), BOTID_ERR_INVALID);
	ca_ratelimit_free(rl);
	ca_ratelimit_free(NULL);
}

static void
test_full_table(void **state)
{
	struct ca_ratelimit *rl = NULL;
	char key[17];
	unsigned wait, i;
	int first;

	(void)state;
	/* 60 a minute, 1 at once: each key's one token taken. */
	assert_int_equal(ca_ratelimit_new(60, 1, &rl), 0);
	for (i = 0; i < BOTID_CA_RATE_HOSTS; i++) {
		snprintf(key, sizeof(key), "%016x", i);
		assert_int_equal(ca_ratelimit_take(rl, key, 0.0, &wait,
		    &first), 0);
	}
	/* Full, none refilled: a new key goes uncounted, the old held. */
	assert_int_equal(ca_ratelimit_take(rl, "ffffffffffffffff", 0.0,
	    &wait, &first), 0);
	assert_int_equal(ca_ratelimit_take(rl, "ffffffffffffffff", 0.0,
	    &wait, &first), 0);
	assert_int_equal(ca_ratelimit_take(rl, "0000000000000000", 0.0,
	    &wait, &first), BOTID_ERR_BUSY);
	/* A second on, all refilled: dropped, and the new key is counted. */
	assert_int_equal(ca_ratelimit_take(rl, "ffffffffffffffff", 1.0,
	    &wait, &first), 0);
	assert_int_equal(ca_ratelimit_take(rl, "ffffffffffffffff", 1.0,
	    &wait, &first), BOTID_ERR_BUSY);
	ca_ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_full_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
