/*
 * Dropping root: once the socket is bound and the audit log open, the
 * agent gives its state to the configured user and becomes that user,
 * keeping only the capability its caller rules need. The TPM, the tokens
 * and their PIN files are opened afterwards, as that user.
 */
#ifndef BOTID_AGENT_PRIVDROP_H
#define BOTID_AGENT_PRIVDROP_H

#include "agent/config.h"

/*
 * Whether cfg's caller rules need CAP_SYS_PTRACE: an exe: rule reads
 * /proc/PID/exe of callers, which a process of another uid may do only
 * with that capability. uid:, gid: and unit: rules need nothing.
 */
int	privdrop_needs_ptrace(const struct botid_agent_config *cfg);

/*
 * When cfg->user is set: hands the state directory tree and the audit log
 * to that user (through descriptors, never following a link; a hard-linked
 * file or one swapped for a link mid-walk is refused), then switches to its uid, gid and groups for good, keeping
 * CAP_SYS_PTRACE only when privdrop_needs_ptrace(), and leaves the process
 * non-dumpable with no_new_privs set. Call it before starting any thread. Nothing to do when cfg->user is NULL or the agent
 * already runs as that user. Errors: BOTID_ERR_CONFIG (started neither as
 * root nor as that user), BOTID_ERR_IO (a step failed; logged).
 */
int	privdrop_apply(const struct botid_agent_config *cfg);

#endif /* BOTID_AGENT_PRIVDROP_H */
