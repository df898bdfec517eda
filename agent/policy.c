/*
 * The access decision, kept free of I/O so that every case is a unit test.
 * Unknown facts never match: a peer whose exe or unit could not be read
 * (or trusted) fails every term that names one.
 */
#include <string.h>

#include "agent/policy.h"

static int
policy_term_matches(const struct botid_allow_term *t,
    const struct botid_peer *peer)
{
	size_t i;

	switch (t->kind) {
	case BOTID_ALLOW_UID:
		return (unsigned long)peer->uid == t->id;
	case BOTID_ALLOW_GID:
		if ((unsigned long)peer->gid == t->id)
			return 1;
		for (i = 0; i < peer->ngroups && i < BOTID_PEER_MAX_GROUPS; i++)
			if ((unsigned long)peer->groups[i] == t->id)
				return 1;
		return 0;
	case BOTID_ALLOW_EXE:
		/*
		 * The path alone would admit whatever a caller's own mount
		 * namespace shows at it: the file must be the one the path
		 * named in ours when the configuration was loaded.
		 */
		return peer->have_exe && t->text != NULL && t->have_file &&
		    peer->exe_dev == t->dev && peer->exe_ino == t->ino &&
		    strcmp(peer->exe, t->text) == 0;
	case BOTID_ALLOW_UNIT:
		return peer->have_unit && t->text != NULL &&
		    strcmp(peer->unit, t->text) == 0;
	}
	return 0;	/* a kind this code does not know grants nothing */
}

/* A line with no terms would admit everyone; treat it as matching nobody. */
static int
policy_rule_matches(const struct botid_allow_rule *rule,
    const struct botid_peer *peer)
{
	size_t i;

	if (rule->nterms == 0 || rule->terms == NULL)
		return 0;
	for (i = 0; i < rule->nterms; i++)
		if (!policy_term_matches(&rule->terms[i], peer))
			return 0;
	return 1;
}

static int
policy_rules_match(const struct botid_allow_rule *rules, size_t nrules,
    const struct botid_peer *peer)
{
	size_t i;

	if (rules == NULL)
		return 0;
	for (i = 0; i < nrules; i++)
		if (policy_rule_matches(&rules[i], peer))
			return 1;
	return 0;
}

int
policy_allows(const struct botid_bot_config *bot,
    const struct botid_peer *peer)
{
	if (bot == NULL || peer == NULL)
		return 0;
	return policy_rules_match(bot->allow, bot->nallow, peer);
}

int
policy_admin(const struct botid_agent_config *cfg,
    const struct botid_peer *peer)
{
	if (cfg == NULL || peer == NULL)
		return 0;
	/* The inventory shows every bot's grants: root only by default. */
	if (cfg->nadmin == 0)
		return peer->uid == 0;
	return policy_rules_match(cfg->admin, cfg->nadmin, peer);
}
