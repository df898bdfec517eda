/*
 * Unit tests for attest/eventlog.c: the fixture log replays to the values
 * computed independently (eventlog-vectors.h); truncation at every offset,
 * trailing bytes, bit flips and the limits are refused or change the
 * replay, never crash or read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "attest/eventlog.h"
#include "lib/botid.h"
#include "lib/limits.h"
#include "tests/unit/eventlog-vectors.h"

static uint8_t pcrs[EVENTLOG_PCRS][EVENTLOG_SHA256];

static void
test_replay_vector(void **state)
{
	static const uint8_t zero[EVENTLOG_SHA256];
	uint32_t touched = 0;
	const char *why = "unset";
	int i;

	(void)state;
	assert_int_equal(eventlog_replay(evlog_good, sizeof(evlog_good), pcrs,
	    &touched, &why), 0);
	assert_null(why);
	assert_int_equal(touched, 1u << 16 | 1u << 23);
	assert_memory_equal(pcrs[16], evlog_pcr16, EVENTLOG_SHA256);
	assert_memory_equal(pcrs[23], evlog_pcr23, EVENTLOG_SHA256);
	/* The EV_NO_ACTION record for PCR 0 is not extended. */
	for (i = 0; i < 16; i++)
		assert_memory_equal(pcrs[i], zero, EVENTLOG_SHA256);
}

static void
test_truncated_and_trailing(void **state)
{
	uint8_t buf[sizeof(evlog_good) + 1];
	uint32_t touched;
	const char *why;
	size_t n;

	(void)state;
	/* Only a cut between records can parse, and then replays less. */
	for (n = 0; n < sizeof(evlog_good); n++) {
		if (eventlog_replay(evlog_good, n, pcrs, &touched, &why) == 0)
			assert_true(memcmp(pcrs[23], evlog_pcr23,
			    EVENTLOG_SHA256) != 0 || memcmp(pcrs[16],
			    evlog_pcr16, EVENTLOG_SHA256) != 0 || n == 0);
		else
			assert_non_null(why);
	}
	memcpy(buf, evlog_good, sizeof(evlog_good));
	buf[sizeof(evlog_good)] = 0;
	assert_int_not_equal(eventlog_replay(buf, sizeof(buf), pcrs, &touched,
	    &why), 0);
}

static void
test_flips(void **state)
{
	uint8_t buf[sizeof(evlog_good)];
	uint32_t touched;
	const char *why;
	size_t i;
	int bit, r;

	(void)state;
	memcpy(buf, evlog_good, sizeof(buf));
	for (i = 0; i < sizeof(buf); i++)
		for (bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1u << bit);
			r = eventlog_replay(buf, sizeof(buf), pcrs, &touched,
			    &why);
			/*
			 * A flip in the SHA-1 digests or in event data is not
			 * replayed, nor one that only turns the EV_NO_ACTION
			 * record into an event for another PCR; anything else
			 * is refused or changes a replayed PCR.
			 */
			if (r == 0 && memcmp(pcrs[23], evlog_pcr23, 32) == 0 &&
			    memcmp(pcrs[16], evlog_pcr16, 32) == 0)
				assert_int_equal(touched & (1u << 16 | 1u << 23),
				    1u << 16 | 1u << 23);
			else if (r != 0)
				assert_non_null(why);
			buf[i] ^= (uint8_t)(1u << bit);
		}
}

static void
test_refusals(void **state)
{
	uint8_t buf[sizeof(evlog_good)];
	uint8_t *big;
	uint32_t touched;
	const char *why;

	(void)state;
	/* Not crypto-agile: the Spec ID signature changed. */
	memcpy(buf, evlog_good, sizeof(buf));
	buf[32] ^= 0x20;
	assert_int_equal(eventlog_replay(buf, sizeof(buf), pcrs, &touched,
	    &why), BOTID_ERR_UNSUPPORTED);
	/* No SHA-256 bank: its algorithm id (second entry) made SHA-384. */
	memcpy(buf, evlog_good, sizeof(buf));
	assert_int_equal(buf[32 + 16 + 8 + 4 + 4], 0x0b);
	buf[32 + 16 + 8 + 4 + 4] = 0x0c;
	assert_int_not_equal(eventlog_replay(buf, sizeof(buf), pcrs, &touched,
	    &why), 0);
	/* Over the size limit, before anything is read. */
	big = calloc(1, BOTID_MAX_EVENTLOG + 1);
	assert_non_null(big);
	assert_int_equal(eventlog_replay(big, BOTID_MAX_EVENTLOG + 1, pcrs,
	    &touched, &why), BOTID_ERR_TOO_LARGE);
	free(big);
	assert_int_not_equal(eventlog_replay(NULL, 0, pcrs, &touched, &why),
	    0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_vector),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_flips),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
