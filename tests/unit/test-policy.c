/*
 * Unit tests for agent/policy.c: each term kind, conjunction within a
 * line, alternatives across lines, and facts the peer could not prove.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent/config.h"
#include "agent/peer.h"
#include "agent/policy.h"

static struct botid_allow_term t_uid1000 = { BOTID_ALLOW_UID, 1000,
	NULL, 0, 0, 0 };
static struct botid_allow_term t_uid0 = { BOTID_ALLOW_UID, 0,
	NULL, 0, 0, 0 };
static struct botid_allow_term t_gid50 = { BOTID_ALLOW_GID, 50,
	NULL, 0, 0, 0 };
static struct botid_allow_term t_gid60 = { BOTID_ALLOW_GID, 60,
	NULL, 0, 0, 0 };
static struct botid_allow_term t_exe = { BOTID_ALLOW_EXE, 0,
	(char *)"/usr/bin/bot", 1, 2049, 131 };
static struct botid_allow_term t_unit = { BOTID_ALLOW_UNIT, 0,
	(char *)"bot.service", 0, 0, 0 };

static struct botid_peer peer;

static int
setup(void **state)
{
	memset(&peer, 0, sizeof(peer));
	peer.uid = 1000;
	peer.gid = 1000;
	peer.pid = 4242;
	peer.groups[0] = 27;
	peer.groups[1] = 50;
	peer.ngroups = 2;
	strcpy(peer.exe, "/usr/bin/bot");
	peer.have_exe = 1;
	peer.exe_dev = 2049;
	peer.exe_ino = 131;
	strcpy(peer.unit, "bot.service");
	peer.have_unit = 1;
	return 0;
}

/* A bot whose only allow line is the given terms. */
static int
allows_line(struct botid_allow_term *terms, size_t n)
{
	struct botid_allow_term copy[BOTID_MAX_ALLOW_TERMS];
	struct botid_allow_rule rule;
	struct botid_bot_config bot;
	size_t i;

	for (i = 0; i < n; i++)
		copy[i] = terms[i];
	memset(&bot, 0, sizeof(bot));
	rule.terms = copy;
	rule.nterms = n;
	rule.line = 1;
	bot.name = (char *)"b";
	bot.allow = &rule;
	bot.nallow = 1;
	return policy_allows(&bot, &peer);
}

static void
test_uid(void **state)
{
	assert_int_equal(allows_line(&t_uid1000, 1), 1);
	assert_int_equal(allows_line(&t_uid0, 1), 0);
	peer.uid = 0;
	assert_int_equal(allows_line(&t_uid0, 1), 1);
	assert_int_equal(allows_line(&t_uid1000, 1), 0);
}

static void
test_gid(void **state)
{
	struct botid_allow_term primary = { BOTID_ALLOW_GID, 1000,
		NULL, 0, 0, 0 };

	assert_int_equal(allows_line(&primary, 1), 1);
	assert_int_equal(allows_line(&t_gid50, 1), 1);	/* supplementary */
	assert_int_equal(allows_line(&t_gid60, 1), 0);
	/* Groups /proc could not vouch for do not count. */
	peer.ngroups = 0;
	assert_int_equal(allows_line(&t_gid50, 1), 0);
	assert_int_equal(allows_line(&primary, 1), 1);
	/* Nor do stale entries past ngroups. */
	peer.ngroups = 1;
	assert_int_equal(allows_line(&t_gid50, 1), 0);
	/* A gid term is not a uid term. */
	primary.id = 1001;
	peer.gid = 1002;
	assert_int_equal(allows_line(&primary, 1), 0);
}

static void
test_exe(void **state)
{
	struct botid_allow_term other = { BOTID_ALLOW_EXE, 0,
		(char *)"/usr/bin/bot2", 1, 2049, 131 };
	struct botid_allow_term prefix = { BOTID_ALLOW_EXE, 0,
		(char *)"/usr/bin/bo", 1, 2049, 131 };
	struct botid_allow_term no_file = { BOTID_ALLOW_EXE, 0,
		(char *)"/usr/bin/bot", 0, 2049, 131 };
	struct botid_allow_term other_ino = { BOTID_ALLOW_EXE, 0,
		(char *)"/usr/bin/bot", 1, 2049, 132 };
	struct botid_allow_term other_dev = { BOTID_ALLOW_EXE, 0,
		(char *)"/usr/bin/bot", 1, 2050, 131 };

	assert_int_equal(allows_line(&t_exe, 1), 1);
	assert_int_equal(allows_line(&other, 1), 0);
	assert_int_equal(allows_line(&prefix, 1), 0);
	/*
	 * The right path to another file (a bind mount in the caller's
	 * namespace), or a file missing at load, never matches.
	 */
	assert_int_equal(allows_line(&no_file, 1), 0);
	assert_int_equal(allows_line(&other_ino, 1), 0);
	assert_int_equal(allows_line(&other_dev, 1), 0);
	/* Unknown exe never matches, whatever the buffer holds. */
	peer.have_exe = 0;
	assert_int_equal(allows_line(&t_exe, 1), 0);
}

static void
test_unit(void **state)
{
	struct botid_allow_term other = { BOTID_ALLOW_UNIT, 0,
		(char *)"bot.scope", 0, 0, 0 };

	assert_int_equal(allows_line(&t_unit, 1), 1);
	assert_int_equal(allows_line(&other, 1), 0);
	peer.have_unit = 0;
	assert_int_equal(allows_line(&t_unit, 1), 0);
}

static void
test_conjunction(void **state)
{
	struct botid_allow_term all[] = { t_uid1000, t_gid50, t_exe, t_unit };
	struct botid_allow_term bad_uid[] = { t_uid0, t_exe };
	struct botid_allow_term bad_gid[] = { t_uid1000, t_gid50, t_gid60 };

	assert_int_equal(allows_line(all, 4), 1);
	assert_int_equal(allows_line(bad_uid, 2), 0);
	assert_int_equal(allows_line(bad_gid, 3), 0);
	peer.have_unit = 0;
	assert_int_equal(allows_line(all, 4), 0);
	assert_int_equal(allows_line(all, 3), 1);
}

static void
test_alternatives(void **state)
{
	struct botid_allow_term l0[] = { t_uid0 };
	struct botid_allow_term l1[] = { t_uid1000, t_gid60 };
	struct botid_allow_term l2[] = { t_exe, t_unit };
	struct botid_allow_rule rules[3] = {
		{ l0, 1, 1 }, { l1, 2, 2 }, { l2, 2, 3 },
	};
	struct botid_bot_config bot;

	memset(&bot, 0, sizeof(bot));
	bot.allow = rules;
	bot.nallow = 3;
	assert_int_equal(policy_allows(&bot, &peer), 1);	/* line 3 */
	peer.have_exe = 0;
	assert_int_equal(policy_allows(&bot, &peer), 0);
	peer.uid = 0;
	assert_int_equal(policy_allows(&bot, &peer), 1);	/* line 1 */
	bot.nallow = 0;
	assert_int_equal(policy_allows(&bot, &peer), 0);
}

static void
test_nobody(void **state)
{
	struct botid_allow_term unknown = { 99, 0, NULL, 0, 0, 0 };
	struct botid_allow_rule empty = { NULL, 0, 1 };
	struct botid_bot_config bot;

	memset(&bot, 0, sizeof(bot));
	/* No allow line: nobody. */
	assert_int_equal(policy_allows(&bot, &peer), 0);
	/* An empty line would be vacuously true: it admits nobody. */
	bot.allow = &empty;
	bot.nallow = 1;
	assert_int_equal(policy_allows(&bot, &peer), 0);
	/* A term kind policy does not know grants nothing. */
	assert_int_equal(allows_line(&unknown, 1), 0);
	/* A text term without text matches nothing. */
	{
		struct botid_allow_term e = { BOTID_ALLOW_EXE, 0,
		    NULL, 0, 0, 0 };
		struct botid_allow_term u = { BOTID_ALLOW_UNIT, 0,
		    NULL, 0, 0, 0 };

		assert_int_equal(allows_line(&e, 1), 0);
		assert_int_equal(allows_line(&u, 1), 0);
	}
	assert_int_equal(policy_allows(NULL, &peer), 0);
	assert_int_equal(policy_allows(&bot, NULL), 0);
}

/* Who may read the inventory: root by default, else the admin lines. */
static void
test_admin(void **state)
{
	struct botid_allow_term uid_exe[] = { t_uid1000, t_exe };
	struct botid_allow_rule rules[] = {
		{ &t_gid60, 1, 1 },
		{ uid_exe, 2, 2 },
	};
	struct botid_agent_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(policy_admin(&cfg, &peer), 0);
	peer.uid = 0;
	assert_int_equal(policy_admin(&cfg, &peer), 1);
	assert_int_equal(policy_admin(NULL, &peer), 0);
	assert_int_equal(policy_admin(&cfg, NULL), 0);

	/* With admin lines, root is only an admin if a line says so. */
	cfg.admin = rules;
	cfg.nadmin = 1;
	assert_int_equal(policy_admin(&cfg, &peer), 0);
	peer.uid = 1000;
	assert_int_equal(policy_admin(&cfg, &peer), 0);
	cfg.nadmin = 2;
	assert_int_equal(policy_admin(&cfg, &peer), 1);
	peer.have_exe = 0;
	assert_int_equal(policy_admin(&cfg, &peer), 0);
	peer.groups[1] = 60;
	assert_int_equal(policy_admin(&cfg, &peer), 1);
	/* A line without terms admits nobody. */
	rules[0].nterms = 0;
	assert_int_equal(policy_admin(&cfg, &peer), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_uid, setup),
		cmocka_unit_test_setup(test_gid, setup),
		cmocka_unit_test_setup(test_exe, setup),
		cmocka_unit_test_setup(test_unit, setup),
		cmocka_unit_test_setup(test_conjunction, setup),
		cmocka_unit_test_setup(test_alternatives, setup),
		cmocka_unit_test_setup(test_nobody, setup),
		cmocka_unit_test_setup(test_admin, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
