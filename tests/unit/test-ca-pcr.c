/*
 * Unit tests for ca/ca-pcr.c: the ca.conf keys of the boot-state policy
 * (each malformed value refused), the whole-policy check, and the
 * comparisons that name the PCRs that differ; and ca/ca-config.c's host
 * groups ([group NAME] sections, each with a policy of its own).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ca/ca-config.h"
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

#define BASE "[ca]\ntrust_domain = t.example\nlisten = 127.0.0.1:0\n" \
	"database = /nonexistent/ca.db\nca_cert = /nonexistent/ca.pem\n" \
	"ca_key = file:/nonexistent/ca.key\nek_root = /nonexistent/ek.pem\n"
#define ALLOW16 "pcr_allow = 16:" H0 "\n"

/*
 * Loads text as ca.conf: 0 and *cp, or the error with its message in err
 * (the file's path cut off, so that it compares).
 */
static int
load_text(const char *text, struct ca_config **cp, char *err, size_t errlen)
{
	char path[] = "/tmp/test-ca-pcr.XXXXXX", *colon;
	FILE *f;
	int fd, r;

	*cp = NULL;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	r = ca_config_load(path, cp, err, errlen);
	assert_int_equal(unlink(path), 0);
	if (r != 0 && strncmp(err, path, strlen(path)) == 0 &&
	    *(colon = err + strlen(path)) == ':') {
		colon += colon[1] == ' ' ? 2 : 1;
		memmove(err, colon, strlen(colon) + 1);
	}
	return r;
}

/* text is refused, with message (after "PATH[:LINE]: ") in the error. */
static void
refused(const char *text, const char *message)
{
	struct ca_config *c;
	char err[512];

	assert_int_equal(load_text(text, &c, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	assert_null(c);
	assert_string_equal(err, message);
}

static void
test_groups(void **state)
{
	struct ca_config *c;
	const struct ca_pcr_policy *p;
	char err[512];

	(void)state;
	/* No group: the top-level policy for every host, as before. */
	assert_int_equal(load_text(BASE, &c, err, sizeof(err)), 0);
	assert_int_equal(c->ngroups, 0);
	assert_ptr_equal(ca_config_pcr(c, NULL), &c->pcr);
	assert_null(ca_config_pcr(c, "lab"));
	assert_int_equal(ca_config_pcr_any(c), 0);
	ca_config_free(c);

	/* Two groups, each whole, beside a default of none. */
	assert_int_equal(load_text(BASE "[group strict]\npcr_policy = exact\n"
	    "pcr_select = 16\n" ALLOW16 "; a comment\npcr_eventlog = yes\n"
	    "[group lab-2.x_y]\npcr_policy = none\n", &c, err, sizeof(err)),
	    0);
	assert_int_equal(c->ngroups, 2);
	assert_int_equal(c->pcr.mode, CA_PCR_NONE);
	assert_non_null(p = ca_config_pcr(c, "strict"));
	assert_int_equal(p->mode, CA_PCR_EXACT);
	assert_int_equal(p->select, 1u << 16);
	assert_int_equal(p->nsets, 1);
	assert_int_equal(p->eventlog, 1);
	assert_non_null(p = ca_config_pcr(c, "lab-2.x_y"));
	assert_int_equal(p->mode, CA_PCR_NONE);
	assert_null(ca_config_pcr(c, "Strict"));
	assert_null(ca_config_pcr(c, "default"));
	assert_int_equal(ca_config_pcr_any(c), 1);
	ca_config_free(c);

	/* A group may come before [ca]; [ca] may go on after it. */
	assert_int_equal(load_text("[group a]\npcr_policy = first-use\n"
	    "pcr_select = 7\n" BASE "[group b]\npcr_policy = none\n"
	    "[ca]\nnonce_max = 5\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c->ngroups, 2);
	assert_int_equal(ca_config_pcr(c, "a")->mode, CA_PCR_FIRST_USE);
	assert_int_equal(c->nonce_max, 5);
	ca_config_free(c);

	/* Each group's policy is checked on its own. */
	refused(BASE "[group lab]\npcr_select = 23\n",
	    "[group lab]: pcr_policy is missing (a group names its policy, "
	    "none included)");
	refused(BASE "[group s]\npcr_policy = exact\npcr_select = 16\n",
	    "[group s]: pcr_policy exact needs at least one pcr_allow");
	refused(BASE "[group s]\npcr_policy = none\npcr_eventlog = yes\n",
	    "[group s]: pcr_eventlog needs pcr_policy exact or first-use");
	refused(BASE "[group s]\npcr_policy = exact\npcr_allow = 1:" H0 "\n",
	    "10: [group s]: pcr_allow needs pcr_select before it");
	refused(BASE "[group s]\npcr_policy = strict\n",
	    "9: [group s]: pcr_policy must be none, exact or first-use");
	/* Only pcr_* keys in a group. */
	refused(BASE "[group s]\npcr_policy = none\nnonce_max = 3\n",
	    "10: unknown key 'nonce_max' in [group s] (a group holds pcr_* "
	    "keys only)");
	/* Names: charset, length, "default" reserved, empty. */
	refused(BASE "[group a b]\npcr_policy = none\n",
	    "9: [group a b]: a group name is 1 to 32 letters, digits, '.', "
	    "'-' or '_', and not 'default'");
	refused(BASE "[group default]\npcr_policy = none\n",
	    "9: [group default]: a group name is 1 to 32 letters, digits, "
	    "'.', '-' or '_', and not 'default'");
	refused(BASE "[group ]\npcr_policy = none\n",
	    "9: [group ]: a group name is 1 to 32 letters, digits, '.', "
	    "'-' or '_', and not 'default'");
	refused(BASE "[group 0123456789abcdef0123456789abcdefX]\n"
	    "pcr_policy = none\n", "9: [group 0123456789abcdef0123456789"
	    "abcdefX]: a group name is 1 to 32 letters, digits, '.', '-' or "
	    "'_', and not 'default'");
	/* A section given twice, and an unknown section. */
	refused(BASE "[group a]\npcr_policy = none\n[ca]\nnonce_max = 3\n"
	    "[group a]\npcr_select = 1\n", "13: [group a] is given twice");
	refused(BASE "[groups a]\npcr_policy = none\n",
	    "9: unknown section [groups a]");
	assert_true(ca_group_name_valid("x"));
	assert_true(ca_group_name_valid("0123456789abcdef0123456789abcdef"));
	assert_false(ca_group_name_valid("0123456789abcdef0123456789abcdefg"));
	assert_false(ca_group_name_valid("a/b"));
	assert_false(ca_group_name_valid(""));
}

/* More groups than CA_MAX_GROUPS are refused, at the first one too many. */
static void
test_groups_max(void **state)
{
	struct ca_config *c;
	char text[8192], err[512], want[128];
	size_t used;
	int i;

	(void)state;
	used = (size_t)snprintf(text, sizeof(text), "%s", BASE);
	for (i = 0; i <= CA_MAX_GROUPS; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used,
		    "[group g%d]\npcr_policy = none\n", i);
	assert_true(used < sizeof(text));
	assert_int_equal(load_text(text, &c, err, sizeof(err)),
	    BOTID_ERR_CONFIG);
	snprintf(want, sizeof(want), "%d: more than %d [group] sections",
	    7 + 2 * (CA_MAX_GROUPS + 1), CA_MAX_GROUPS);
	assert_string_equal(err, want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_diff_and_exact),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_groups_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
