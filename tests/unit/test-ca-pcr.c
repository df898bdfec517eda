/*
 * Unit tests for ca/ca-pcr.c: the ca.conf keys of the boot-state policy
 * (each malformed value refused), the whole-policy check, and the
 * comparisons that name the PCRs that differ.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ca/ca-pcr.h"
#include "lib/botid.h"

#define H0 "0000000000000000000000000000000000000000000000000000000000000000"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"

static int
key(struct ca_pcr_policy *p, const char *name, const char *value)
{
	const char *why = NULL;

	assert_int_equal(ca_pcr_config_key(p, name, value, &why), 1);
	return why == NULL ? 0 : -1;
}

static void
test_config_keys(void **state)
{
	struct ca_pcr_policy p;
	const char *why;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(ca_pcr_config_key(&p, "listen", "x", &why), 0);
	assert_int_equal(key(&p, "pcr_policy", "exact"), 0);
	assert_int_equal(p.mode, CA_PCR_EXACT);
	assert_int_equal(key(&p, "pcr_policy", "strict"), -1);
	/* pcr_allow before pcr_select */
	assert_int_equal(key(&p, "pcr_allow", "0:" H0), -1);
	assert_int_equal(key(&p, "pcr_select", "0, 7"), 0);
	assert_int_equal(p.select, 1u << 0 | 1u << 7);
	assert_int_equal(key(&p, "pcr_allow", "0:" H0 ",7:" H1), 0);
	assert_int_equal(p.nsets, 1);
	assert_int_equal(p.sets[0].value[7][31], 0x11);
	/* missing a PCR, an extra one, a repeat, short or bad hex */
	assert_int_equal(key(&p, "pcr_allow", "0:" H0), -1);
	assert_int_equal(key(&p, "pcr_allow", "0:" H0 ",7:" H1 ",8:" H1), -1);
	assert_int_equal(key(&p, "pcr_allow", "0:" H0 ",0:" H1), -1);
	assert_int_equal(key(&p, "pcr_allow", "0:00,7:" H1), -1);
	assert_int_equal(key(&p, "pcr_allow", "0:" H0 ",7:" H1 "x"), -1);
	assert_int_equal(p.nsets, 1);
	/* pcr_select after pcr_allow, out of range, empty, junk */
	assert_int_equal(key(&p, "pcr_select", "1"), -1);
	memset(&p, 0, sizeof(p));
	assert_int_equal(key(&p, "pcr_select", "24"), -1);
	assert_int_equal(key(&p, "pcr_select", ""), -1);
	assert_int_equal(key(&p, "pcr_select", "1,,2"), -1);
	assert_int_equal(key(&p, "pcr_select", "-1"), -1);
	assert_int_equal(key(&p, "pcr_select", "0023"), -1);
}

static void
test_config_check(void **state)
{
	struct ca_pcr_policy p;
	const char *why;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(ca_pcr_config_check(&p, &why), 0);
	p.mode = CA_PCR_FIRST_USE;
	assert_int_equal(ca_pcr_config_check(&p, &why), BOTID_ERR_CONFIG);
	p.select = 1u << 23;
	assert_int_equal(ca_pcr_config_check(&p, &why), 0);
	p.mode = CA_PCR_EXACT;
	assert_int_equal(ca_pcr_config_check(&p, &why), BOTID_ERR_CONFIG);
	assert_string_equal(why, "pcr_policy exact needs at least one "
	    "pcr_allow");
	p.nsets = 1;
	assert_int_equal(ca_pcr_config_check(&p, &why), 0);
	p.mode = CA_PCR_NONE;
	assert_int_equal(ca_pcr_config_check(&p, &why), BOTID_ERR_CONFIG);
}

static void
test_diff_and_exact(void **state)
{
	struct ca_pcr_policy p;
	uint8_t v[3 * CA_PCR_SIZE], g[3 * CA_PCR_SIZE];
	char differ[80];

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(key(&p, "pcr_policy", "exact"), 0);
	assert_int_equal(key(&p, "pcr_select", "0,7,23"), 0);
	assert_int_equal(key(&p, "pcr_allow", "0:" H0 ",7:" H0 ",23:" H0), 0);
	assert_int_equal(key(&p, "pcr_allow", "0:" H0 ",7:" H1 ",23:" H1), 0);
	assert_int_equal(ca_pcr_count(p.select), 3);
	memset(v, 0, sizeof(v));
	assert_int_equal(ca_pcr_check_exact(&p, v, differ, sizeof(differ)), 0);
	memset(v + CA_PCR_SIZE, 0x11, 2 * CA_PCR_SIZE);
	assert_int_equal(ca_pcr_check_exact(&p, v, differ, sizeof(differ)), 0);
	/* One PCR off the second set: named against the closest set. */
	v[2 * CA_PCR_SIZE] = 0x12;
	assert_int_equal(ca_pcr_check_exact(&p, v, differ, sizeof(differ)),
	    BOTID_ERR_DENIED);
	assert_string_equal(differ, "23");
	memset(g, 0, sizeof(g));
	memset(v, 0x22, sizeof(v));
	assert_int_equal(ca_pcr_diff(p.select, v, g, differ, sizeof(differ)),
	    3);
	assert_string_equal(differ, "0,7,23");
	assert_int_equal(ca_pcr_diff(p.select, g, g, differ, sizeof(differ)),
	    0);
	assert_string_equal(differ, "");
	/* A short buffer truncates the list, never overflows. */
	assert_int_equal(ca_pcr_diff(p.select, v, g, differ, 4), 3);
	assert_true(strlen(differ) < 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_diff_and_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
