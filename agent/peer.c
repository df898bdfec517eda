/*
 * Peer identity from SO_PEERCRED and /proc. Everything read from /proc is
 * tied to one process: files are opened relative to one /proc/PID
 * directory fd (which goes stale rather than following a reused pid), the
 * start time is read before and after, and the credentials /proc reports
 * must still be the ones the kernel recorded at connect(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/peer.h"
#include "lib/error.h"

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

/* The executable, unless it is gone or its path does not fit. */
static void
peer_read_exe(int dfd, struct botid_peer *peer)
{
	size_t dlen = strlen(PEER_DELETED);
	ssize_t n;

	peer->have_exe = 0;
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
	peer->have_exe = 1;
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

/* Checks that the effective id (second field of "Uid:"/"Gid:") is want. */
static int
peer_check_id(const char *s, unsigned long long want)
{
	unsigned long long real, effective;

	s += strspn(s, " \t");
	if (peer_parse_number(&s, UINT_MAX, &real) != 0)
		return BOTID_ERR_INVALID;
	s += strspn(s, " \t");
	if (peer_parse_number(&s, UINT_MAX, &effective) != 0)
		return BOTID_ERR_INVALID;
	return effective == want ? 0 : BOTID_ERR_DENIED;
}

/*
 * Reads the supplementary groups from /proc/PID/status, after checking
 * that its effective uid and gid are still those SO_PEERCRED recorded:
 * if not, the pid now belongs to someone else (or the process changed
 * credentials), and nothing /proc says about it can be trusted.
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
