/*
 * Who sent a request on a Unix socket: the credentials the kernel attaches
 * to every message (SO_PASSCRED, pinned to one process by a pidfd), plus
 * what /proc says about that process, kept only while the process provably
 * stayed the same one.
 */
#ifndef BOTID_AGENT_PEER_H
#define BOTID_AGENT_PEER_H

#include <sys/stat.h>
#include <sys/types.h>

#include "lib/limits.h"

/* Supplementary groups kept per peer; more are ignored (rules only grant,
 * so a missing group can only deny). */
#define BOTID_PEER_MAX_GROUPS	256u

struct botid_peer {
	uid_t			uid;	/* as the kernel attached it */
	gid_t			gid;	/* as the kernel attached it */
	pid_t			pid;	/* 0 if the kernel could not tell */
	gid_t			groups[BOTID_PEER_MAX_GROUPS];
	size_t			ngroups; /* 0 unless /proc was trusted */
	char			exe[BOTID_MAX_PATH]; /* resolved, absolute */
	int			have_exe;
	dev_t			exe_dev;	/* the file it runs, if have_exe */
	ino_t			exe_ino;
	char			unit[256];	/* NAME.service / NAME.scope */
	int			have_unit;
	unsigned long long	start_time; /* /proc/PID/stat field 22; 0: unknown */
};

/*
 * Fills *peer (zeroed on entry) for the process that connected on fd,
 * and turns on per-message credentials on fd (peer_socket_setup()).
 * uid, gid and pid come from SO_PEERCRED and are always set on success;
 * they say who connected, not who sends later: requests are judged by
 * peer_sender_identify().
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

/* What one read from a connection carried about the process that sent it. */
struct botid_cred {
	int	have;	/* SCM_CREDENTIALS came with the bytes */
	pid_t	pid;	/* 0: the kernel could not tell */
	uid_t	uid;
	gid_t	gid;
	int	pidfd;	/* pins the sender; -1: none (gone, or pid 0) */
	int	pin_dir; /* pidfd is a /proc/PID directory (no pidfd_open) */
};

/*
 * The last sender identified on one connection, kept so that a request
 * from the same process running the same file costs no /proc read.
 */
struct botid_sender {
	int		valid;
	pid_t		pid;
	uid_t		uid;
	gid_t		gid;
	int		pidfd;	/* -1: none (procfd is then the pin) */
	int		procfd;	/* /proc/PID, when there is no pidfd; or -1 */
	int		have_exe_id;
	dev_t		exe_dev;
	ino_t		exe_ino;
};

/* How the sending process is pinned (peer_mechanism_init()). */
enum botid_peer_mechanism {
	BOTID_PEER_PASSPIDFD = 1,	/* SCM_PIDFD with each message */
	BOTID_PEER_PIDFD_OPEN = 2,	/* pidfd_open(pid) on receipt */
};

/*
 * Chooses the mechanism once, before any connection: SO_PASSPIDFD where
 * the kernel has it (Linux 6.5), else pidfd_open() on receipt (or, where
 * that system call is missing, as under valgrind, the /proc/PID directory,
 * which goes stale with its process just as well); the environment
 * variable BOTID_PEER_FALLBACK=1 forces the fallback (tests).
 * Returns the mechanism; never fails.
 */
enum botid_peer_mechanism peer_mechanism_init(void);

/* A one-line description of the mechanism peer_mechanism_init() chose. */
const char *peer_mechanism_name(void);

/*
 * Asks the kernel to attach the sender's credentials (and, with
 * SO_PASSPIDFD, a pidfd) to every message read from fd: a listening socket
 * (accepted sockets inherit it, so bytes sent before accept carry them)
 * or a connected one. Returns 0, or BOTID_ERR_IO.
 */
int	peer_socket_setup(int fd);

/*
 * recvmsg(2) of up to len bytes from non-blocking fd into buf, with the
 * sender's credentials into *cred (zeroed on entry; its pidfd is then the
 * caller's, see peer_cred_clear()). The kernel never returns bytes of two
 * senders in one read. *got is 0 at end of file. Returns 0,
 * BOTID_ERR_INCOMPLETE when nothing is waiting, or BOTID_ERR_IO.
 */
int	peer_recv(int fd, void *buf, size_t len, size_t *got,
	    struct botid_cred *cred);

/* Closes cred's pidfd and marks it empty. NULL is fine. */
void	peer_cred_clear(struct botid_cred *cred);

/*
 * Returns 1 if a and b (in this order on one stream) were sent by the
 * same process: same pid, uid and gid, and a's process still alive (then
 * nobody else can hold its pid). Else 0.
 */
int	peer_cred_same(const struct botid_cred *a, const struct botid_cred *b);

/* An empty cache; peer_sender_clear() closes what a used one holds. */
void	peer_sender_init(struct botid_sender *sender);
void	peer_sender_clear(struct botid_sender *sender);

/*
 * The identity of the process that sent cred's bytes, into *peer. Fast
 * path: when sender caches that process (same pid, uid and gid, still
 * alive) and it still runs the same file (st_dev/st_ino of
 * /proc/PID/exe, read while the pinned process held the pid), *peer is left
 * as it is and *changed is 0. Otherwise, if may_change, *peer is rebuilt
 * from /proc (only facts read while the pidfd's process held the pid;
 * exe and unit stay unknown for a sender that is gone), the cache
 * follows and *changed is 1. Returns 0, BOTID_ERR_BUSY when the identity
 * changed but !may_change (*peer and the cache untouched), BOTID_ERR_DENIED
 * when cred carries no credentials, or BOTID_ERR_ALLOC.
 */
int	peer_sender_identify(struct botid_sender *sender,
	    const struct botid_cred *cred, int may_change,
	    struct botid_peer *peer, int *changed);

#endif /* BOTID_AGENT_PEER_H */
