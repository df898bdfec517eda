/*
 * Who is at the other end of a connected Unix socket: the kernel's
 * credentials (SO_PEERCRED) plus what /proc says about that process,
 * kept only while the process provably stayed the same one.
 */
#ifndef BOTID_AGENT_PEER_H
#define BOTID_AGENT_PEER_H

#include <sys/types.h>

#include "lib/limits.h"

/* Supplementary groups kept per peer; more are ignored (rules only grant,
 * so a missing group can only deny). */
#define BOTID_PEER_MAX_GROUPS	256u

struct botid_peer {
	uid_t			uid;	/* effective, at connect(2) time */
	gid_t			gid;	/* effective, at connect(2) time */
	pid_t			pid;	/* 0 if the kernel could not tell */
	gid_t			groups[BOTID_PEER_MAX_GROUPS];
	size_t			ngroups; /* 0 unless /proc was trusted */
	char			exe[BOTID_MAX_PATH]; /* resolved, absolute */
	int			have_exe;
	char			unit[256];	/* NAME.service / NAME.scope */
	int			have_unit;
	unsigned long long	start_time; /* /proc/PID/stat field 22; 0: unknown */
};

/*
 * Fills *peer (zeroed on entry) for the process connected on fd.
 * uid, gid and pid come from SO_PEERCRED and are always set on success.
 * Supplementary groups, exe and unit come from /proc/PID and are set only
 * if the process kept its start time and credentials while they were
 * read; otherwise ngroups, have_exe and have_unit stay 0, which is not an
 * error. Returns 0, or BOTID_ERR_IO if fd has no peer credentials.
 */
int	peer_identify(int fd, struct botid_peer *peer);

/*
 * The /proc part of peer_identify() for a process whose SO_PEERCRED
 * credentials are uid, gid and pid, with proc_root in place of "/proc"
 * (tests use fake trees). Returns 0, or BOTID_ERR_INVALID if proc_root
 * is too long.
 */
int	peer_identify_pid(pid_t pid, uid_t uid, gid_t gid,
	    const char *proc_root, struct botid_peer *peer);

/*
 * Writes "uid=U gid=G pid=P [unit=UNIT] [exe=PATH]" into out (always
 * NUL-terminated when len > 0, truncated if needed) for logs; bytes in
 * exe that could forge a log line are written as \xNN.
 */
void	peer_describe(const struct botid_peer *peer, char *out, size_t len);

#endif /* BOTID_AGENT_PEER_H */
