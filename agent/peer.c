/*
 * Peer identity from the kernel's per-message credentials and /proc.
 * Everything read from /proc is tied to one process: files are opened
 * relative to one /proc/PID directory fd (which goes stale rather than
 * following a reused pid), the start time is read before and after, the
 * credentials /proc reports must be the ones the kernel attached, and a
 * pidfd taken from (or right after) the message must still be alive
 * afterwards, so that the pid was the sender's while /proc was read.
 */
#include "botid-config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "agent/peer.h"
#include "lib/error.h"

/* Linux 6.5 UAPI; glibc 2.36 (Debian 12) does not name them yet. */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD	76
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD	0x04
#endif

#define PEER_STAT_MAX	4096		/* /proc/PID/stat: one short line */
#define PEER_FILE_MAX	(64 * 1024)	/* /proc/PID/status and cgroup */
#define PEER_DELETED	" (deleted)"

/*
 * Reads dfd/name into buf (max bytes including the NUL it appends).
 * *truncated tells whether the file held more. A NUL byte in the file is
 * refused: the parsers below would stop at it and read half a field.
 */
static int
peer_read_file(int dfd, const char *name, char *buf, size_t max,
    int *truncated)
{
	ssize_t n;
	size_t len = 0;
	char probe;
	int fd = -1, r = BOTID_ERR_INTERNAL;

	*truncated = 0;
	buf[0] = '\0';
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		r = BOTID_ERR_IO;
		goto out;
	}
	while (len < max - 1) {
		if ((n = read(fd, buf + len, max - 1 - len)) == -1) {
			if (errno == EINTR)
				continue;
			r = BOTID_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == max - 1) {
		while ((n = read(fd, &probe, 1)) == -1 && errno == EINTR)
			;
		if (n == -1) {
			r = BOTID_ERR_IO;
			goto out;
		}
		*truncated = n > 0;
	}
	if (memchr(buf, '\0', len) != NULL) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	buf[len] = '\0';
	r = 0;
out:
	if (fd != -1)
		close(fd);
	return r;
}

/*
 * Parses a decimal number at *sp, advancing past it. The number must be
 * followed by a space, tab, newline or the end of the string, so that a
 * field cut short or glued to garbage is refused.
 */
static int
peer_parse_number(const char **sp, unsigned long long max,
    unsigned long long *v)
{
	const char *s = *sp;
	unsigned long long n = 0;
	unsigned d;

	*v = 0;
	if (*s < '0' || *s > '9')
		return BOTID_ERR_INVALID;
	for (; *s >= '0' && *s <= '9'; s++) {
		d = (unsigned)(*s - '0');
		if (n > (max - d) / 10)
			return BOTID_ERR_INVALID;
		n = n * 10 + d;
	}
	if (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n')
		return BOTID_ERR_INVALID;
	*sp = s;
	*v = n;
	return 0;
}

/*
 * Field 22 of /proc/PID/stat. Field 2 is "(comm)", and comm may hold
 * spaces and parentheses, so counting starts after the last ')'.
 */
static int
peer_parse_start_time(const char *stat, unsigned long long *t)
{
	const char *s;
	int field;

	*t = 0;
	if ((s = strrchr(stat, ')')) == NULL)
		return BOTID_ERR_INVALID;
	s++;
	for (field = 3; field < 22; field++) {
		if (*s != ' ' || s[1] == ' ' || s[1] == '\0' || s[1] == '\n')
			return BOTID_ERR_INVALID;
		for (s++; *s != ' ' && *s != '\0' && *s != '\n'; s++)
			;
	}
	if (*s != ' ')
		return BOTID_ERR_INVALID;
	s++;
	return peer_parse_number(&s, ULLONG_MAX, t);
}

static int
peer_read_start_time(int dfd, unsigned long long *t)
{
	char buf[PEER_STAT_MAX];
	int truncated, r;

	*t = 0;
	if ((r = peer_read_file(dfd, "stat", buf, sizeof(buf),
	    &truncated)) != 0)
		return r;
	if (truncated)
		return BOTID_ERR_TOO_LARGE;
	return peer_parse_start_time(buf, t);
}

/*
 * The executable, unless it is gone or its path does not fit: its path as
 * the kernel names it and the identity (st_dev, st_ino) of the file itself.
 */
static void
peer_read_exe(int dfd, struct botid_peer *peer)
{
	size_t dlen = strlen(PEER_DELETED);
	struct stat st, again, here;
	ssize_t n;
	int m;

	peer->have_exe = 0;
	peer->exe_dev = 0;
	peer->exe_ino = 0;
	/*
	 * The file before and after its path: a process in the middle of
	 * execve(2) could otherwise pair one program's path with another's
	 * identity.
	 */
	if (fstatat(dfd, "exe", &st, 0) == -1) {
		peer->exe[0] = '\0';
		return;
	}
	n = readlinkat(dfd, "exe", peer->exe, sizeof(peer->exe));
	if (n <= 0 || (size_t)n >= sizeof(peer->exe)) {
		peer->exe[0] = '\0';
		return;
	}
	peer->exe[n] = '\0';
	/*
	 * A replaced or deleted binary no longer names what runs; a file
	 * really called "x (deleted)" is refused too, which only denies.
	 */
	if (peer->exe[0] != '/' || ((size_t)n >= dlen &&
	    strcmp(peer->exe + n - dlen, PEER_DELETED) == 0)) {
		peer->exe[0] = '\0';
		return;
	}
	/* The magic link leads to the file whatever the caller mounted. */
	if (fstatat(dfd, "exe", &again, 0) == -1 ||
	    again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
		peer->exe[0] = '\0';
		return;
	}
	peer->exe_dev = st.st_dev;
	peer->exe_ino = st.st_ino;
	peer->have_exe = 1;
	/*
	 * The path is the one in the caller's mount namespace, which an
	 * unprivileged user namespace lets it rearrange (mount --bind over
	 * an allowed path). When the path leads elsewhere in ours, say so,
	 * so that the audit log never names a file the caller did not run.
	 */
	if (stat(peer->exe, &here) == 0 && here.st_dev == st.st_dev &&
	    here.st_ino == st.st_ino)
		return;
	m = snprintf(peer->exe + n, sizeof(peer->exe) - (size_t)n,
	    " (not this file: dev %u:%u ino %llu)", major(st.st_dev),
	    minor(st.st_dev), (unsigned long long)st.st_ino);
	if (m < 0 || (size_t)m >= sizeof(peer->exe) - (size_t)n) {
		peer->exe[0] = '\0';
		peer->have_exe = 0;
	}
}

/* Returns the line of text starting with key, or NULL. */
static const char *
peer_find_line(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *s = text;

	while (s != NULL && *s != '\0') {
		if (strncmp(s, key, klen) == 0)
			return s + klen;
		if ((s = strchr(s, '\n')) != NULL)
			s++;
	}
	return NULL;
}

/*
 * Checks that want is the real, effective or saved id (the first three
 * fields of "Uid:"/"Gid:"): SO_PEERCRED reports the effective id, a
 * message carries the real one, and a sender may claim any of the three
 * (scm_check_creds() in the kernel).
 */
static int
peer_check_id(const char *s, unsigned long long want)
{
	unsigned long long real, effective, saved;

	s += strspn(s, " \t");
	if (peer_parse_number(&s, UINT_MAX, &real) != 0)
		return BOTID_ERR_INVALID;
	s += strspn(s, " \t");
	if (peer_parse_number(&s, UINT_MAX, &effective) != 0)
		return BOTID_ERR_INVALID;
	s += strspn(s, " \t");
	saved = effective;
	if (*s >= '0' && *s <= '9' &&
	    peer_parse_number(&s, UINT_MAX, &saved) != 0)
		return BOTID_ERR_INVALID;
	return real == want || effective == want || saved == want ? 0 :
	    BOTID_ERR_DENIED;
}

/*
 * Reads the supplementary groups from /proc/PID/status, after checking
 * that its uid and gid are still those the kernel recorded (at connect,
 * or with the message): if not, the pid now belongs to someone else (or
 * the process changed credentials), and nothing /proc says about it can
 * be trusted.
 */
static int
peer_read_status(int dfd, struct botid_peer *peer)
{
	unsigned long long g;
	const char *s;
	char *buf = NULL;
	int truncated, r = BOTID_ERR_INTERNAL;

	peer->ngroups = 0;
	if ((buf = malloc(PEER_FILE_MAX)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = peer_read_file(dfd, "status", buf, PEER_FILE_MAX,
	    &truncated)) != 0)
		goto out;
	if ((s = peer_find_line(buf, "Uid:")) == NULL ||
	    (r = peer_check_id(s, peer->uid)) != 0 ||
	    (s = peer_find_line(buf, "Gid:")) == NULL ||
	    (r = peer_check_id(s, peer->gid)) != 0) {
		if (r == 0)
			r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((s = peer_find_line(buf, "Groups:")) != NULL) {
		for (;;) {
			s += strspn(s, " \t");
			if (*s == '\n' || *s == '\0')
				break;
			if ((r = peer_parse_number(&s, UINT_MAX, &g)) != 0)
				goto out;
			/* The last number of a cut-off file may be cut too. */
			if (*s == '\0' && truncated)
				break;
			if (peer->ngroups == BOTID_PEER_MAX_GROUPS)
				break;
			peer->groups[peer->ngroups++] = (gid_t)g;
		}
	}
	r = 0;
out:
	if (r != 0)
		peer->ngroups = 0;
	free(buf);
	return r;
}

static int
peer_unit_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr(":_.@-\\", c) != NULL;
}

/*
 * The unit of a cgroup path: its first component named NAME.service or
 * NAME.scope. Everything below that component is delegated to the unit's
 * own processes (a user manager, a container runtime), which may create
 * cgroups with any name, so only the first one is systemd's word.
 */
static void
peer_parse_unit(const char *path, size_t plen, struct botid_peer *peer)
{
	const char *c = path, *end = path + plen;
	size_t n, i;

	if (plen == 0 || *path != '/')
		return;
	while (c < end) {
		c++;	/* the '/' */
		for (n = 0; c + n < end && c[n] != '/'; n++)
			;
		if ((n > 8 && strncmp(c + n - 8, ".service", 8) == 0) ||
		    (n > 6 && strncmp(c + n - 6, ".scope", 6) == 0)) {
			if (n >= sizeof(peer->unit))
				return;
			for (i = 0; i < n; i++)
				if (!peer_unit_char(c[i]))
					return;
			memcpy(peer->unit, c, n);
			peer->unit[n] = '\0';
			peer->have_unit = 1;
			return;
		}
		c += n;
	}
}

/*
 * The systemd unit from /proc/PID/cgroup: the cgroup v2 line "0::PATH",
 * or on a legacy v1 system the "N:name=systemd:PATH" line.
 */
static void
peer_read_unit(int dfd, struct botid_peer *peer)
{
	const char *line, *path = NULL, *nl, *colon;
	char *buf = NULL;
	size_t plen = 0;
	int truncated;

	peer->have_unit = 0;
	peer->unit[0] = '\0';
	if ((buf = malloc(PEER_FILE_MAX)) == NULL ||
	    peer_read_file(dfd, "cgroup", buf, PEER_FILE_MAX,
	    &truncated) != 0)
		goto out;
	for (line = buf; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL) {
			if (truncated)
				break;	/* a cut-off path names a parent */
			nl = line + strlen(line);
		}
		if (strncmp(line, "0::", 3) == 0) {
			path = line + 3;
			plen = (size_t)(nl - path);
			break;
		}
		if ((colon = strchr(line, ':')) != NULL && colon < nl &&
		    strncmp(colon, ":name=systemd:", 14) == 0 &&
		    (size_t)(nl - colon) >= 14) {
			path = colon + 14;
			plen = (size_t)(nl - path);
		}
		if (*nl == '\0')
			break;
	}
	if (path != NULL)
		peer_parse_unit(path, plen, peer);
out:
	free(buf);
}

/* Fills groups, exe and unit from /proc/PID (dfd), or leaves them empty. */
static void
peer_read_proc(int dfd, struct botid_peer *peer)
{
	unsigned long long again;
	int trusted;

	if (peer_read_start_time(dfd, &peer->start_time) != 0)
		return;
	peer_read_exe(dfd, peer);
	trusted = peer_read_status(dfd, peer) == 0;
	peer_read_unit(dfd, peer);
	if (!trusted || peer_read_start_time(dfd, &again) != 0 ||
	    again != peer->start_time) {
		peer->ngroups = 0;
		peer->have_exe = 0;
		peer->exe[0] = '\0';
		peer->have_unit = 0;
		peer->unit[0] = '\0';
	}
}

int
peer_identify_pid(pid_t pid, uid_t uid, gid_t gid, const char *proc_root,
    struct botid_peer *peer)
{
	struct botid_peer *id = NULL;
	char dir[PATH_MAX];
	int dfd = -1, n, r = BOTID_ERR_INTERNAL;

	memset(peer, 0, sizeof(*peer));
	/* About 5 KiB: not for the event loop's stack. */
	if ((id = calloc(1, sizeof(*id))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	id->uid = uid;
	id->gid = gid;
	if (pid > 0) {
		id->pid = pid;
		n = snprintf(dir, sizeof(dir), "%s/%ld", proc_root, (long)pid);
		if (n < 0 || (size_t)n >= sizeof(dir)) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1)
			peer_read_proc(dfd, id);
	}
	memcpy(peer, id, sizeof(*peer));
	r = 0;
out:
	if (dfd != -1)
		close(dfd);
	free(id);
	return r;
}

int
peer_identify(int fd, struct botid_peer *peer)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	memset(peer, 0, sizeof(*peer));
	if (peer_socket_setup(fd) != 0)
		return BOTID_ERR_IO;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    len != sizeof(cred))
		return BOTID_ERR_IO;
	/* An unconnected socket reports uid and gid -1: nobody to trust. */
	if (cred.uid == (uid_t)-1 || cred.gid == (gid_t)-1)
		return BOTID_ERR_IO;
	return peer_identify_pid(cred.pid, cred.uid, cred.gid, "/proc", peer);
}

void
peer_describe(const struct botid_peer *peer, char *out, size_t len)
{
	const unsigned char *c;
	size_t off;
	int n;

	if (len == 0)
		return;
	out[0] = '\0';
	if (peer == NULL)
		return;
	n = snprintf(out, len, "uid=%lu gid=%lu pid=%ld",
	    (unsigned long)peer->uid, (unsigned long)peer->gid,
	    (long)peer->pid);
	if (n < 0 || (size_t)n >= len)
		return;
	off = (size_t)n;
	if (peer->have_unit) {
		n = snprintf(out + off, len - off, " unit=%s", peer->unit);
		if (n < 0 || (size_t)n >= len - off)
			return;
		off += (size_t)n;
	}
	if (!peer->have_exe)
		return;
	n = snprintf(out + off, len - off, " exe=");
	if (n < 0 || (size_t)n >= len - off)
		return;
	off += (size_t)n;
	for (c = (const unsigned char *)peer->exe; *c != '\0'; c++) {
		if (*c < 0x20 || *c == 0x7f || *c == '\\') {
			if (len - off <= 4)
				break;
			snprintf(out + off, len - off, "\\x%02x", *c);
			off += 4;
		} else {
			if (len - off <= 1)
				break;
			out[off++] = (char)*c;
			out[off] = '\0';
		}
	}
}

static enum botid_peer_mechanism peer_mechanism = BOTID_PEER_PIDFD_OPEN;
/* The agent's own user namespace (/proc/self/ns/user), once known. */
static int peer_userns_known;
static dev_t peer_userns_dev;
static ino_t peer_userns_ino;

#define PEER_OTHER_USERNS	" (other user namespace)"

enum botid_peer_mechanism
peer_mechanism_init(void)
{
	const char *force = getenv("BOTID_PEER_FALLBACK");
	struct stat st;
	int sv[2] = { -1, -1 }, on = 1;


	if (stat("/proc/self/ns/user", &st) == 0) {
		peer_userns_known = 1;
		peer_userns_dev = st.st_dev;
		peer_userns_ino = st.st_ino;
	}
	peer_mechanism = BOTID_PEER_PIDFD_OPEN;
	if (force != NULL && strcmp(force, "1") == 0)
		return peer_mechanism;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0 &&
	    setsockopt(sv[0], SOL_SOCKET, SO_PASSPIDFD, &on,
	    sizeof(on)) == 0)
		peer_mechanism = BOTID_PEER_PASSPIDFD;
	if (sv[0] != -1)
		close(sv[0]);
	if (sv[1] != -1)
		close(sv[1]);
	return peer_mechanism;
}

const char *
peer_mechanism_name(void)
{
	return peer_mechanism == BOTID_PEER_PASSPIDFD ?
	    "SO_PASSCRED with SO_PASSPIDFD (a pidfd with each message)" :
	    "SO_PASSCRED with pidfd_open on receipt (fallback: a sender "
	    "that exits before the read may lose its pid to another)";
}

int
peer_socket_setup(int fd)
{
	int on = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == -1)
		return BOTID_ERR_IO;
	if (peer_mechanism == BOTID_PEER_PASSPIDFD &&
	    setsockopt(fd, SOL_SOCKET, SO_PASSPIDFD, &on, sizeof(on)) == -1)
		return BOTID_ERR_IO;
	return 0;
}

static int
peer_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/*
 * Whether the process pin refers to still holds its pid. A pidfd polls
 * readable once its process has exited (a zombie counts as gone: it runs
 * nothing); a /proc/PID directory goes stale once its process is reaped.
 */
static int
peer_pin_alive(int pin, int is_dir)
{
	struct pollfd pfd;
	int n;

	if (pin < 0)
		return 0;
	if (is_dir)
		return faccessat(pin, "stat", F_OK, 0) == 0;
	pfd.fd = pin;
	pfd.events = POLLIN;
	pfd.revents = 0;
	while ((n = poll(&pfd, 1, 0)) == -1 && errno == EINTR)
		;
	return n == 0;
}

/* Pins the process that holds pid now: a pidfd, or its /proc directory. */
static int
peer_pin_open(pid_t pid, int *is_dir)
{
	char dir[64];
	int fd, n;

	*is_dir = 0;
	if ((fd = peer_pidfd_open(pid)) != -1 || errno != ENOSYS)
		return fd;
	n = snprintf(dir, sizeof(dir), "/proc/%ld", (long)pid);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -1;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1)
		*is_dir = 1;
	return fd;
}

void
peer_cred_clear(struct botid_cred *cred)
{
	if (cred == NULL)
		return;
	if (cred->have && cred->pidfd >= 0)
		close(cred->pidfd);
	memset(cred, 0, sizeof(*cred));
	cred->pidfd = -1;
}

/* Takes the credentials and pidfd out of the control messages of msg. */
static void
peer_cred_parse(struct msghdr *msg, struct botid_cred *cred)
{
	struct cmsghdr *cm;
	struct ucred uc;
	int pidfd;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SCM_CREDENTIALS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(uc))) {
			memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
			cred->have = 1;
			cred->pid = uc.pid;
			cred->uid = uc.uid;
			cred->gid = uc.gid;
		} else if (cm->cmsg_type == SCM_PIDFD &&
		    cm->cmsg_len == CMSG_LEN(sizeof(pidfd))) {
			memcpy(&pidfd, CMSG_DATA(cm), sizeof(pidfd));
			if (cred->pidfd >= 0)
				close(cred->pidfd);
			cred->pidfd = pidfd;
		} else if (cm->cmsg_type == SCM_RIGHTS) {
			/* Nobody sends us descriptors: do not keep them. */
			size_t i, n = (cm->cmsg_len - CMSG_LEN(0)) /
			    sizeof(int);

			for (i = 0; i < n; i++) {
				memcpy(&pidfd, CMSG_DATA(cm) + i * sizeof(int),
				    sizeof(int));
				close(pidfd);
			}
		}
	}
}

int
peer_recv(int fd, void *buf, size_t len, size_t *got,
    struct botid_cred *cred)
{
	union {
		struct cmsghdr	align;
		char		space[CMSG_SPACE(sizeof(struct ucred)) +
				    CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr msg;
	struct iovec iov;
	ssize_t n;

	*got = 0;
	memset(cred, 0, sizeof(*cred));
	cred->pidfd = -1;
	for (;;) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = buf;
		iov.iov_len = len;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.space;
		msg.msg_controllen = sizeof(control.space);
		n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return BOTID_ERR_INCOMPLETE;
		return BOTID_ERR_IO;
	}
	peer_cred_parse(&msg, cred);
	if (!cred->have) {
		/* Credentials arrive with every message or not at all. */
		if (cred->pidfd >= 0)
			close(cred->pidfd);
		cred->pidfd = -1;
	} else if (cred->pidfd < 0 && cred->pid > 0 &&
	    peer_mechanism == BOTID_PEER_PIDFD_OPEN) {
		/* As early as we can; -1 if the sender is already gone. */
		cred->pidfd = peer_pin_open(cred->pid, &cred->pin_dir);
	}
	*got = (size_t)n;
	return 0;
}

int
peer_cred_same(const struct botid_cred *a, const struct botid_cred *b)
{
	if (a == NULL || b == NULL || !a->have || !b->have ||
	    a->pid != b->pid || a->uid != b->uid || a->gid != b->gid)
		return 0;
	/* Without a pid there is nothing but uid and gid to tell apart. */
	if (a->pid == 0)
		return 1;
	return peer_pin_alive(a->pidfd, a->pin_dir);
}

void
peer_sender_init(struct botid_sender *sender)
{
	memset(sender, 0, sizeof(*sender));
	sender->pidfd = -1;
	sender->procfd = -1;
}

void
peer_sender_clear(struct botid_sender *sender)
{
	if (sender == NULL)
		return;
	if (sender->pidfd >= 0)
		close(sender->pidfd);
	if (sender->procfd >= 0)
		close(sender->procfd);
	peer_sender_init(sender);
}

/* Whether sender still describes the process that sent cred's bytes. */
static int
peer_sender_unchanged(const struct botid_sender *sender,
    const struct botid_cred *cred)
{
	struct stat st;
	char exe[64];
	int n, have;

	if (!sender->valid || sender->pid != cred->pid ||
	    sender->uid != cred->uid || sender->gid != cred->gid)
		return 0;
	if (cred->pid == 0)
		return 1;
	/* An exec keeps the pid: compare the file it runs now. */
	if (sender->pidfd >= 0) {
		n = snprintf(exe, sizeof(exe), "/proc/%ld/exe",
		    (long)sender->pid);
		if (n < 0 || (size_t)n >= sizeof(exe))
			return 0;
		have = stat(exe, &st) == 0;
	} else
		have = fstatat(sender->procfd, "exe", &st, 0) == 0;
	/*
	 * The cached process is alive after that, so it held the pid all
	 * along: the file above is the one it runs, and it sent these bytes
	 * (an earlier holder of the pid died before it existed, and its bytes
	 * came before the cached process's on this stream).
	 */
	if (sender->pidfd >= 0 ? !peer_pin_alive(sender->pidfd, 0) :
	    !peer_pin_alive(sender->procfd, 1))
		return 0;
	if (!have)
		return !sender->have_exe_id;
	return sender->have_exe_id && st.st_dev == sender->exe_dev &&
	    st.st_ino == sender->exe_ino;
}

/*
 * A process in another user namespace than the agent's may have claimed
 * its pid in SCM_CREDENTIALS: with CAP_SYS_ADMIN over its own pid
 * namespace, which any user gets with unshare -Urp, a sender may name any
 * process of that namespace, such as an allowed program it started. So
 * for such a process (or one whose namespace cannot be read) the unit is
 * unknown and the executable is marked, which no exe: term matches; uid
 * and gid, which it cannot claim beyond its own, still count.
 */
static void
peer_check_userns(int dfd, struct botid_peer *id)
{
	struct stat st;
	size_t len;

	if (peer_userns_known && fstatat(dfd, "ns/user", &st, 0) == 0 &&
	    st.st_dev == peer_userns_dev && st.st_ino == peer_userns_ino)
		return;
	id->have_unit = 0;
	id->unit[0] = '\0';
	id->ngroups = 0;
	len = strlen(id->exe);
	if (!id->have_exe)
		return;
	if (sizeof(id->exe) - len <= strlen(PEER_OTHER_USERNS)) {
		id->have_exe = 0;
		id->exe[0] = '\0';
		return;
	}
	memcpy(id->exe + len, PEER_OTHER_USERNS,
	    strlen(PEER_OTHER_USERNS) + 1);
}

int
peer_sender_identify(struct botid_sender *sender,
    const struct botid_cred *cred, int may_change, struct botid_peer *peer,
    int *changed)
{
	struct botid_peer *id = NULL;
	char dir[64];
	int dfd = -1, pidfd = -1, n, r = BOTID_ERR_INTERNAL;

	*changed = 0;
	if (!cred->have) {
		r = BOTID_ERR_DENIED;
		goto out;
	}
	if (peer_sender_unchanged(sender, cred)) {
		r = 0;
		goto out;
	}
	if (!may_change) {
		r = BOTID_ERR_BUSY;
		goto out;
	}
	/* About 5 KiB: not for the event loop's stack. */
	if ((id = calloc(1, sizeof(*id))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	id->uid = cred->uid;
	id->gid = cred->gid;
	id->pid = cred->pid;
	if (cred->pid > 0 && cred->pidfd >= 0 &&
	    (pidfd = fcntl(cred->pidfd, F_DUPFD_CLOEXEC, 0)) == -1) {
		r = BOTID_ERR_IO;
		goto out;
	}
	/* A /proc/PID pin is the directory to read, too. */
	if (cred->pin_dir) {
		dfd = pidfd;
		pidfd = -1;
	}
	if (cred->pid > 0 && peer_pin_alive(cred->pin_dir ? dfd : pidfd,
	    cred->pin_dir)) {
		n = snprintf(dir, sizeof(dir), "/proc/%ld", (long)cred->pid);
		if (n < 0 || (size_t)n >= sizeof(dir)) {
			r = BOTID_ERR_INTERNAL;
			goto out;
		}
		if (dfd == -1)
			dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd != -1) {
			peer_read_proc(dfd, id);
			peer_check_userns(dfd, id);
		}
		/*
		 * Alive after the reads: it held the pid all along, so the
		 * directory opened above was its own.
		 */
		if (dfd == -1 || !peer_pin_alive(cred->pin_dir ? dfd : pidfd,
		    cred->pin_dir)) {
			id->ngroups = 0;
			id->have_exe = 0;
			id->exe[0] = '\0';
			id->have_unit = 0;
			id->unit[0] = '\0';
		}
	}
	peer_sender_clear(sender);
	sender->valid = 1;
	sender->pid = cred->pid;
	sender->uid = cred->uid;
	sender->gid = cred->gid;
	/* A sender already gone stays unknown: no cache to reuse. */
	if (cred->pid > 0 && !peer_pin_alive(cred->pin_dir ? dfd : pidfd,
	    cred->pin_dir))
		sender->valid = 0;
	/* One descriptor per connection: the pidfd, else the directory. */
	sender->pidfd = pidfd;
	if (pidfd >= 0 && dfd != -1) {
		close(dfd);
		dfd = -1;
	}
	sender->procfd = dfd;
	sender->have_exe_id = id->have_exe;
	sender->exe_dev = id->exe_dev;
	sender->exe_ino = id->exe_ino;
	pidfd = dfd = -1;
	memcpy(peer, id, sizeof(*peer));
	*changed = 1;
	r = 0;
out:
	if (dfd != -1)
		close(dfd);
	if (pidfd != -1)
		close(pidfd);
	free(id);
	return r;
}
