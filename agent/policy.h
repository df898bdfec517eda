/*
 * Who may use which bot: a bot's allow lines are alternatives, and a line
 * admits a caller only when every one of its terms holds.
 */
#ifndef BOTID_AGENT_POLICY_H
#define BOTID_AGENT_POLICY_H

#include "agent/config.h"
#include "agent/peer.h"

/*
 * Returns 1 if peer satisfies every term of at least one of bot's allow
 * lines, else 0 (also for a bot without allow lines, or NULL arguments).
 * uid: the peer's uid; gid: its gid or any supplementary group; exe: and
 * unit: only when peer_identify() could establish them. Pure function.
 */
int	policy_allows(const struct botid_bot_config *bot,
	    const struct botid_peer *peer);

#endif /* BOTID_AGENT_POLICY_H */
