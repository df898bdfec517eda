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
 * unit: only when peer_identify() could establish them, exe: on the path
 * and on the file's identity (st_dev, st_ino) recorded at config load.
 * Pure function.
 */
int	policy_allows(const struct botid_bot_config *bot,
	    const struct botid_peer *peer);

/*
 * Returns 1 if peer may read the inventory of every bot (INVENTORY op):
 * it satisfies one of cfg's admin lines or, with none configured, has uid
 * 0. Else 0 (also for NULL arguments). Pure function.
 */
int	policy_admin(const struct botid_agent_config *cfg,
	    const struct botid_peer *peer);

#endif /* BOTID_AGENT_POLICY_H */
