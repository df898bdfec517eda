/*
 * Unit tests for agent/peer.c: the real thing over a socketpair, then fake
 * /proc trees with hostile contents. openat is wrapped so that the second
 * read of /proc/PID/stat can see a different (or vanished) process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/peer.h"
#include "lib/error.h"

#define FAKE_PID	123
#define FAKE_UID	1000
#define FAKE_GID	1001

static char root[64];	/* small: paths built from it always fit */
static int swap_stat;		/* second open of "stat" reads "stat.second" */
static unsigned stat_opens;

int	__real_openat(int, const char *, int, ...);
int	__wrap_openat(int, const char *, int, ...);

int
__wrap_openat(int dfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (swap_stat && strcmp(path, "stat") == 0 && ++stat_opens == 2)
		path = "stat.second";
	return __real_openat(dfd, path, flags, mode);
}

/*
 * The fake exe links lead to files that do not exist: give each absolute
 * target that is missing one made-up identity, the same through the link
 * (fstatat) and through the path (stat), so that the agent's check that
 * the path names the file the process runs can be made to pass or fail.
 */
#define FAKE_DEV	((dev_t)0x0700)

int	__real_fstatat(int, const char *, struct stat *, int);
int	__wrap_fstatat(int, const char *, struct stat *, int);
int	__real_stat(const char *, struct stat *);
int	__wrap_stat(const char *, struct stat *);
static int fake_other_file;	/* stat() of a path finds another file */

static int
fake_identity(const char *target, struct stat *st, int other)
{
	unsigned long h = 5381;
	const char *c;

	if (target[0] != '/') {
		errno = ENOENT;
		return -1;
	}
	for (c = target; *c != '\0'; c++)
		h = h * 33 + (unsigned char)*c;
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0755;
	st->st_dev = FAKE_DEV;
	st->st_ino = (ino_t)(h + (other ? 1 : 0));
	return 0;
}

int
__wrap_fstatat(int dfd, const char *path, struct stat *st, int flags)
{
	char target[PATH_MAX];
	ssize_t n;

	if (__real_fstatat(dfd, path, st, flags) == 0)
		return 0;
	if (errno != ENOENT || strcmp(path, "exe") != 0 ||
	    (n = readlinkat(dfd, path, target, sizeof(target) - 1)) <= 0)
		return -1;
	target[n] = '\0';
	return fake_identity(target, st, 0);
}

int
__wrap_stat(const char *path, struct stat *st)
{
	if (__real_stat(path, st) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	return fake_identity(path, st, fake_other_file);
}

static void
fake_path(char *buf, size_t len, const char *name)
{
	int n;

	n = snprintf(buf, len, "%s/%d/%s", root, FAKE_PID, name);
	assert_true(n > 0 && (size_t)n < len);
}

static void
fake_write(const char *name, const char *text, size_t len)
{
	char path[PATH_MAX];
	int fd;

	fake_path(path, sizeof(path), name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void
fake_put(const char *name, const char *text)
{
	fake_write(name, text, strlen(text));
}

static void
fake_remove(const char *name)
{
	char path[PATH_MAX];

	fake_path(path, sizeof(path), name);
	assert_true(unlink(path) == 0 || errno == ENOENT);
}

static void
fake_exe(const char *target)
{
	char path[PATH_MAX];

	fake_remove("exe");
	fake_path(path, sizeof(path), "exe");
	assert_int_equal(symlink(target, path), 0);
}

/* A stat line as the kernel writes it, with the given comm and field 22. */
static void
fake_stat(const char *name, const char *comm, const char *start)
{
	char text[8192];
	int n;

	n = snprintf(text, sizeof(text), "%d (%s) S 1 %d %d 0 -1 4194560 "
	    "100 0 0 0 1 2 0 0 20 0 1 0 %s 1000000 100 "
	    "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 3 0 0 0 0 0\n",
	    FAKE_PID, comm, FAKE_PID, FAKE_PID, start);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	fake_put(name, text);
}

static void
fake_status(const char *uid, const char *gid, const char *groups)
{
	char text[4096];
	int n;

	n = snprintf(text, sizeof(text), "Name:\tbot\nUmask:\t0022\n"
	    "State:\tS (sleeping)\nTgid:\t%d\nPid:\t%d\nPPid:\t1\n"
	    "TracerPid:\t0\n%s%s%s%s%s%s\nNStgid:\t%d\nVmPeak:\t  1000 kB\n",
	    FAKE_PID, FAKE_PID,
	    uid != NULL ? "Uid:\t" : "", uid != NULL ? uid : "",
	    gid != NULL ? "\nGid:\t" : "", gid != NULL ? gid : "",
	    groups != NULL ? "\nFDSize:\t64\nGroups:\t" : "\nFDSize:\t64",
	    groups != NULL ? groups : "", FAKE_PID);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	fake_put("status", text);
}

/* A well-behaved process: everything readable and consistent. */
static int
setup(void **state)
{
	char dir[PATH_MAX];

	swap_stat = 0;
	stat_opens = 0;
	snprintf(dir, sizeof(dir), "%s/%d", root, FAKE_PID);
	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		return -1;
	fake_stat("stat", "bot", "987654");
	fake_stat("stat.second", "bot", "987654");
	fake_status("1000\t1000\t1000\t1000", "1001\t1001\t1001\t1001",
	    "4 24 27 1001 ");
	fake_put("cgroup", "0::/system.slice/bot.service\n");
	fake_exe("/usr/bin/bot");
	return 0;
}

static int
group_setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/botid-test-peer.XXXXXX");
	return mkdtemp(root) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void
identify_fake(struct botid_peer *p)
{
	stat_opens = 0;
	assert_int_equal(peer_identify_pid(FAKE_PID, FAKE_UID, FAKE_GID, root,
	    p), 0);
	assert_int_equal(p->uid, FAKE_UID);
	assert_int_equal(p->gid, FAKE_GID);
	assert_int_equal(p->pid, FAKE_PID);
}

/* Nothing from /proc was kept; the kernel's credentials were. */
static void
assert_untrusted(const struct botid_peer *p)
{
	assert_int_equal(p->uid, FAKE_UID);
	assert_int_equal(p->gid, FAKE_GID);
	assert_int_equal(p->have_exe, 0);
	assert_string_equal(p->exe, "");
	assert_int_equal(p->have_unit, 0);
	assert_string_equal(p->unit, "");
	assert_int_equal(p->ngroups, 0);
}

static void
test_self(void **state)
{
	struct botid_peer p;
	gid_t groups[BOTID_PEER_MAX_GROUPS];
	char exe[PATH_MAX];
	ssize_t n;
	int sv[2], ng, i, dfd;
	size_t j;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	assert_int_equal(peer_identify(sv[0], &p), 0);
	assert_int_equal(p.uid, geteuid());
	assert_int_equal(p.gid, getegid());
	assert_int_equal(p.pid, getpid());
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_int_equal(p.have_exe, 1);
	/*
	 * Valgrind answers readlink("/proc/self/exe") with the program it
	 * runs, but the kernel (and so peer.c) names valgrind's own tool.
	 */
	if (strcmp(p.exe, exe) != 0) {
		dfd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(dfd != -1);
		n = readlinkat(dfd, "exe", exe, sizeof(exe) - 1);
		assert_true(n > 0);
		exe[n] = '\0';
		close(dfd);
		print_message("running under an emulator: exe is %s\n", exe);
	}
	assert_string_equal(p.exe, exe);
	assert_true(p.start_time > 0);
	ng = getgroups(BOTID_PEER_MAX_GROUPS, groups);
	if (ng >= 0) {
		assert_int_equal(p.ngroups, (size_t)ng);
		for (i = 0; i < ng; i++) {
			for (j = 0; j < p.ngroups; j++)
				if (p.groups[j] == groups[i])
					break;
			assert_true(j < p.ngroups);
		}
	}
	if (p.have_unit) {
		n = (ssize_t)strlen(p.unit);
		assert_true((n > 8 && strcmp(p.unit + n - 8, ".service") == 0) ||
		    (n > 6 && strcmp(p.unit + n - 6, ".scope") == 0));
	}
	close(sv[0]);
	close(sv[1]);
}

static void
test_not_a_peer(void **state)
{
	struct botid_peer p;
	int fds[2], fd;

	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(peer_identify(fds[0], &p), BOTID_ERR_IO);
	assert_int_equal(p.uid, 0);
	assert_int_equal(p.have_exe, 0);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(peer_identify(-1, &p), BOTID_ERR_IO);
	/* A socket nobody connected to has no credentials. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	assert_int_equal(peer_identify(fd, &p), BOTID_ERR_IO);
	close(fd);
}

static void
test_dead_process(void **state)
{
	struct botid_peer p;
	pid_t child;
	int status;

	child = fork();
	assert_true(child != -1);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(peer_identify_pid(child, 5, 6, "/proc", &p), 0);
	assert_int_equal(p.uid, 5);
	assert_int_equal(p.gid, 6);
	assert_int_equal(p.pid, child);
	assert_int_equal(p.have_exe, 0);
	assert_int_equal(p.have_unit, 0);
	assert_int_equal(p.ngroups, 0);
	assert_int_equal(p.start_time, 0);
}

static void
test_bad_arguments(void **state)
{
	struct botid_peer p;
	char *longroot;

	/* pid 0: the peer is outside our pid namespace; nothing to read. */
	assert_int_equal(peer_identify_pid(0, 7, 8, root, &p), 0);
	assert_int_equal(p.uid, 7);
	assert_int_equal(p.gid, 8);
	assert_int_equal(p.pid, 0);
	assert_int_equal(p.have_exe, 0);
	assert_int_equal(peer_identify_pid(-5, 7, 8, root, &p), 0);
	assert_int_equal(p.pid, 0);

	longroot = malloc(PATH_MAX + 1);
	assert_non_null(longroot);
	memset(longroot, 'r', PATH_MAX);
	longroot[PATH_MAX] = '\0';
	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(peer_identify_pid(FAKE_PID, 7, 8, longroot, &p),
	    BOTID_ERR_INVALID);
	assert_int_equal(p.uid, 0);
	assert_int_equal(p.have_exe, 0);
	free(longroot);

	/* No /proc/PID at all. */
	assert_int_equal(peer_identify_pid(FAKE_PID + 1, FAKE_UID, FAKE_GID,
	    root, &p), 0);
	assert_int_equal(p.pid, FAKE_PID + 1);
	assert_untrusted(&p);
	assert_int_equal(p.start_time, 0);
}

static void
test_fake_good(void **state)
{
	struct botid_peer p;

	identify_fake(&p);
	assert_int_equal(p.start_time, 987654);
	assert_int_equal(p.have_exe, 1);
	assert_string_equal(p.exe, "/usr/bin/bot");
	assert_int_equal(p.have_unit, 1);
	assert_string_equal(p.unit, "bot.service");
	assert_int_equal(p.ngroups, 4);
	assert_int_equal(p.groups[0], 4);
	assert_int_equal(p.groups[1], 24);
	assert_int_equal(p.groups[2], 27);
	assert_int_equal(p.groups[3], 1001);
}

static void
test_fake_comm(void **state)
{
	static const char *const comms[] = {
		") (",
		"a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 666 (",
		"my bot",
		"))))",
		"(",
		"",
	};
	struct botid_peer p;
	size_t i;

	swap_stat = 1;
	for (i = 0; i < sizeof(comms) / sizeof(comms[0]); i++) {
		fake_stat("stat", comms[i], "4242");
		fake_stat("stat.second", comms[i], "4243");
		identify_fake(&p);
		assert_int_equal(p.start_time, 4242);
		assert_int_equal(p.have_exe, 0);	/* stat.second differs */
		fake_stat("stat.second", comms[i], "4242");
		identify_fake(&p);
		assert_int_equal(p.start_time, 4242);
		assert_int_equal(p.have_exe, 1);
	}
}

static void
test_fake_bad_stat(void **state)
{
	struct botid_peer p;
	char *big;

/* Fields 1 to 21; field 22 is the start time. */
#define F21 "123 (bot) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18"
	static const char *const bad[] = {
		"123 bot S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 20\n",
		F21 "\n",
		F21,
		F21 " \n",
		F21 " x\n",
		F21 " 12a 1\n",
		F21 " -12 1\n",
		F21 " 18446744073709551616 1\n",
		F21 " 99999999999999999999999 1\n",
		"123 (bot) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16  17 18 "
		    "20 1\n",
		"123 (bot)S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
		    "20 1\n",
		"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fake_put("stat", bad[i]);
		fake_put("stat.second", bad[i]);
		identify_fake(&p);
		assert_untrusted(&p);
		assert_int_equal(p.start_time, 0);
	}

	/* The reference line these are broken from is fine. */
	fake_put("stat", F21 " 20 1\n");
	fake_put("stat.second", F21 " 20\n");
	identify_fake(&p);
	assert_int_equal(p.start_time, 20);
	assert_int_equal(p.have_exe, 1);
#undef F21

	/* The largest start time is fine. */
	fake_stat("stat", "bot", "18446744073709551615");
	fake_stat("stat.second", "bot", "18446744073709551615");
	identify_fake(&p);
	assert_int_equal(p.start_time, 18446744073709551615ULL);
	assert_int_equal(p.have_exe, 1);

	/* A NUL byte would hide the rest of the line from the parser. */
#define NULSTAT "123 (b\0ot) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 " \
	    "18 20 1\n"
	fake_write("stat", NULSTAT, sizeof(NULSTAT) - 1);
#undef NULSTAT
	identify_fake(&p);
	assert_untrusted(&p);

	/* Larger than any real stat line: refused, not parsed in part. */
	big = malloc(8192);
	assert_non_null(big);
	memset(big, 'c', 5000);
	big[5000] = '\0';
	fake_stat("stat", big, "4242");
	identify_fake(&p);
	assert_untrusted(&p);
	free(big);

	fake_remove("stat");
	identify_fake(&p);
	assert_untrusted(&p);
	assert_int_equal(p.start_time, 0);
}

static void
test_fake_reused(void **state)
{
	struct botid_peer p;

	/* The process changed between the two reads of its start time. */
	swap_stat = 1;
	fake_stat("stat.second", "other", "987655");
	identify_fake(&p);
	assert_untrusted(&p);
	assert_int_equal(stat_opens, 2);

	/* ... or went away. */
	stat_opens = 0;
	fake_remove("stat.second");
	identify_fake(&p);
	assert_untrusted(&p);

	/* Same start time: trusted. */
	stat_opens = 0;
	fake_stat("stat.second", "bot", "987654");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 1);
	assert_int_equal(p.have_unit, 1);
	assert_int_equal(p.ngroups, 4);
}

static void
test_fake_exe(void **state)
{
	struct botid_peer p;

	fake_exe("/usr/bin/bot (deleted)");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 0);
	assert_string_equal(p.exe, "");
	/* The rest still stands: the process itself is still the same. */
	assert_int_equal(p.have_unit, 1);
	assert_int_equal(p.ngroups, 4);

	fake_exe("bot");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 0);

	fake_exe(" (deleted)");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 0);

	fake_exe("/opt/a bot/with (parens)");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 1);
	assert_string_equal(p.exe, "/opt/a bot/with (parens)");

	/* EACCES (not root) or a kernel thread: simply unknown. */
	fake_remove("exe");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 0);
	assert_int_equal(p.have_unit, 1);
}

/*
 * A path that leads to another file in the agent's mount namespace than
 * the one the process runs (a bind mount in the caller's namespace): the
 * identity is the file's, and the path says it is not this file.
 */
static void
test_fake_exe_elsewhere(void **state)
{
	struct botid_peer p;
	struct stat st;

	identify_fake(&p);
	assert_int_equal(p.have_exe, 1);
	assert_string_equal(p.exe, "/usr/bin/bot");
	assert_int_equal(fake_identity("/usr/bin/bot", &st, 0), 0);
	assert_true(p.exe_dev == st.st_dev && p.exe_ino == st.st_ino);
	fake_other_file = 1;
	identify_fake(&p);
	fake_other_file = 0;
	assert_int_equal(p.have_exe, 1);
	assert_true(p.exe_dev == st.st_dev && p.exe_ino == st.st_ino);
	assert_true(strncmp(p.exe, "/usr/bin/bot (not this file: dev 7:0 "
	    "ino ", 36) == 0);
}

static void
test_fake_status(void **state)
{
	struct botid_peer p;
	char groups[4096];
	size_t off = 0;
	int i;

	/*
	 * Credentials other than those the kernel attached: none of the
	 * real, effective and saved ids (a sender may claim any of them;
	 * the fourth, the filesystem id, it may not).
	 */
	fake_status("0\t0\t0\t1000", "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("1000\t1000\t1000\t1000", "0\t0\t0\t1001", "4");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("0\t1000\t0\t0", "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 1);	/* effective */
	fake_status("1000\t0\t0\t0", "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 1);	/* real, as in a message */
	fake_status("0\t0\t1000\t0", "0\t0\t1001\t0", "4");
	identify_fake(&p);
	assert_int_equal(p.have_exe, 1);	/* saved */

	/* Missing or malformed credentials. */
	fake_status(NULL, "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("1000\t1000\t1000\t1000", NULL, "4");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("1000", "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("x\t1000", "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("1000\tx", "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("1000\t1000x", "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("1000\t99999999999", "1001\t1001\t1001\t1001", "4");
	identify_fake(&p);
	assert_untrusted(&p);

	/* Malformed groups. */
	fake_status("1000\t1000", "1001\t1001", "4 x 5");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("1000\t1000", "1001\t1001", "4 -5");
	identify_fake(&p);
	assert_untrusted(&p);
	fake_status("1000\t1000", "1001\t1001", "4 4294967296");
	identify_fake(&p);
	assert_untrusted(&p);

	/* No groups, or no Groups line: just no supplementary groups. */
	fake_status("1000\t1000", "1001\t1001", "");
	identify_fake(&p);
	assert_int_equal(p.ngroups, 0);
	assert_int_equal(p.have_exe, 1);
	fake_status("1000\t1000", "1001\t1001", NULL);
	identify_fake(&p);
	assert_int_equal(p.ngroups, 0);
	assert_int_equal(p.have_exe, 1);

	/* More groups than we keep: the first BOTID_PEER_MAX_GROUPS. */
	for (i = 0; i < 300; i++)
		off += (size_t)snprintf(groups + off, sizeof(groups) - off,
		    "%d ", i + 100);
	fake_status("1000\t1000", "1001\t1001", groups);
	identify_fake(&p);
	assert_int_equal(p.ngroups, BOTID_PEER_MAX_GROUPS);
	assert_int_equal(p.groups[0], 100);
	assert_int_equal(p.groups[BOTID_PEER_MAX_GROUPS - 1],
	    100 + BOTID_PEER_MAX_GROUPS - 1);

	fake_remove("status");
	identify_fake(&p);
	assert_untrusted(&p);
}

static void
test_fake_status_cut(void **state)
{
	static const char head[] = "Uid:\t1000\t1000\nGid:\t1001\t1001\n"
	    "Groups:";
	struct botid_peer p;
	size_t max = 64 * 1024, len = 80 * 1024, hl = sizeof(head) - 1;
	char *text;

	/*
	 * The file is cut in the middle of "2222222": the cut number must
	 * not be read as group 2222.
	 */
	text = malloc(len);
	assert_non_null(text);
	memcpy(text, head, hl);
	memset(text + hl, ' ', len - hl);
	memcpy(text + max - 1 - 7, "11 2222222", 10);
	text[len - 1] = '\n';
	fake_write("status", text, len);
	identify_fake(&p);
	assert_int_equal(p.have_exe, 1);
	assert_int_equal(p.ngroups, 1);
	assert_int_equal(p.groups[0], 11);
	free(text);
}

static void
test_fake_cgroup(void **state)
{
	static const struct {
		const char	*text;
		const char	*unit;	/* NULL: none */
	} cases[] = {
		{ "0::/system.slice/bot.service\n", "bot.service" },
		{ "0::/system.slice/bot.service", "bot.service" },
		{ "0::/system.slice/system-getty.slice/getty@tty1.service\n",
		    "getty@tty1.service" },
		{ "0::/init.scope\n", "init.scope" },
		{ "0::/user.slice/user-1000.slice/session-3.scope\n",
		    "session-3.scope" },
		/* Below a unit, cgroups are named by whoever it delegated
		 * to: a user's own "bar.service" is not the system's. */
		{ "0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
		    "bar.service\n", "user@1000.service" },
		{ "0::/system.slice/docker.service/payload/evil.service\n",
		    "docker.service" },
		{ "0::/machine.slice/machine-x.scope/payload\n",
		    "machine-x.scope" },
		{ "0::/system.slice/foo\\x2dbar.service\n",
		    "foo\\x2dbar.service" },
		/* cgroup v2 wins over the v1 systemd hierarchy. */
		{ "12:pids:/system.slice/x.service\n"
		    "1:name=systemd:/system.slice/v1.service\n"
		    "0::/system.slice/v2.service\n", "v2.service" },
		{ "3:cpu,cpuacct:/\n1:name=systemd:/system.slice/old.service\n",
		    "old.service" },
		{ "3:cpu:/\n1:name=systemd:/system.slice/old.service",
		    "old.service" },
		{ "0::/\n", NULL },
		{ "0::/system.slice\n", NULL },
		{ "0::/system.slice/.service\n", NULL },
		{ "0::/system.slice/a b.service\n", NULL },
		{ "0::/system.slice/a\tb.service\n", NULL },
		{ "0::/system.slice/a$b.service/c.service\n", NULL },
		{ "0::system.slice/bot.service\n", NULL },
		{ "0::\n", NULL },
		{ "1:cpu:/system.slice/bot.service\n", NULL },
		{ "1:name=systemdx:/system.slice/bot.service\n", NULL },
		{ "0:/system.slice/bot.service\n", NULL },
		{ "", NULL },
	};
	struct botid_peer p;
	char *text;
	size_t i, len;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_put("cgroup", cases[i].text);
		identify_fake(&p);
		if (cases[i].unit == NULL) {
			if (p.have_unit)
				print_message("case %zu: got %s\n", i, p.unit);
			assert_int_equal(p.have_unit, 0);
			assert_string_equal(p.unit, "");
		} else {
			assert_int_equal(p.have_unit, 1);
			assert_string_equal(p.unit, cases[i].unit);
		}
		assert_int_equal(p.have_exe, 1);
	}

	/* A unit name longer than systemd allows. */
	text = malloc(1024);
	assert_non_null(text);
	len = (size_t)snprintf(text, 1024, "0::/system.slice/");
	memset(text + len, 'u', 300);
	snprintf(text + len + 300, 1024 - len - 300, ".service\n");
	fake_put("cgroup", text);
	identify_fake(&p);
	assert_int_equal(p.have_unit, 0);
	free(text);

	/* A path cut off by the read limit names a parent: refused. */
	len = 70 * 1024;
	text = malloc(len + 1);
	assert_non_null(text);
	memcpy(text, "0::/system.slice/bot.service/", 29);
	memset(text + 29, 'a', len - 29);
	text[len] = '\0';
	fake_put("cgroup", text);
	identify_fake(&p);
	assert_int_equal(p.have_unit, 0);
	free(text);

	fake_write("cgroup", "0::/system.slice/b\0t.service\n",
	    sizeof("0::/system.slice/b\0t.service\n") - 1);
	identify_fake(&p);
	assert_int_equal(p.have_unit, 0);

	fake_remove("cgroup");
	identify_fake(&p);
	assert_int_equal(p.have_unit, 0);
	assert_int_equal(p.have_exe, 1);
}

/* Reads what is waiting on fd with its sender's credentials. */
static size_t
recv_cred(int fd, struct botid_cred *c)
{
	uint8_t buf[64];
	size_t got;

	assert_int_equal(peer_recv(fd, buf, sizeof(buf), &got, c), 0);
	return got;
}

static void
child_writes(int fd, const char *text)
{
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid != -1);
	if (pid == 0)
		_exit(write(fd, text, strlen(text)) == (ssize_t)strlen(text) ?
		    0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * Per-message identity on a real socket, with the mechanism the kernel
 * offers and with the pidfd_open fallback: the sender's credentials come
 * with each read, a read never spans two senders, the cache answers for
 * the same living process and not for another, and a sender that is gone
 * is known by uid and gid only.
 */
static void
sender_round(int fallback)
{
	struct botid_cred c1, c2, c3, c4;
	struct botid_sender cache;
	struct botid_peer *p;
	struct stat st;
	int sv[2], changed;

	if (fallback)
		assert_int_equal(setenv("BOTID_PEER_FALLBACK", "1", 1), 0);
	else
		assert_int_equal(unsetenv("BOTID_PEER_FALLBACK"), 0);
	assert_int_equal(peer_mechanism_init(), fallback ?
	    BOTID_PEER_PIDFD_OPEN : peer_mechanism_init());
	assert_non_null(peer_mechanism_name());
	assert_non_null(p = calloc(1, sizeof(*p)));
	peer_sender_init(&cache);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	assert_int_equal(peer_socket_setup(sv[0]), 0);

	assert_int_equal(write(sv[1], "ab", 2), 2);
	assert_int_equal(recv_cred(sv[0], &c1), 2);
	assert_int_equal(c1.have, 1);
	assert_int_equal(c1.pid, getpid());
	assert_int_equal(c1.uid, getuid());
	assert_int_equal(c1.gid, getgid());
	assert_true(c1.pidfd >= 0);
	assert_int_equal(peer_sender_identify(&cache, &c1, 1, p, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(p->pid, getpid());
	assert_int_equal(p->have_exe, 1);
	assert_int_equal(stat("/proc/self/exe", &st), 0);
	assert_true(p->exe_dev == st.st_dev && p->exe_ino == st.st_ino);

	/* The same process again: the cache answers. */
	assert_int_equal(write(sv[1], "c", 1), 1);
	assert_int_equal(recv_cred(sv[0], &c2), 1);
	assert_int_equal(peer_cred_same(&c1, &c2), 1);
	p->pid = 0;	/* a fast path leaves *peer alone */
	assert_int_equal(peer_sender_identify(&cache, &c2, 0, p, &changed), 0);
	assert_int_equal(changed, 0);
	assert_int_equal(p->pid, 0);
	p->pid = getpid();

	/* Bytes of two writers: two reads, the second the child's. */
	assert_int_equal(write(sv[1], "x", 1), 1);
	child_writes(sv[1], "yz");
	assert_int_equal(recv_cred(sv[0], &c3), 1);
	assert_int_equal(c3.pid, getpid());
	peer_cred_clear(&c3);
	assert_int_equal(recv_cred(sv[0], &c3), 2);
	assert_true(c3.pid > 0 && c3.pid != getpid());
	assert_int_equal(peer_cred_same(&c2, &c3), 0);
	assert_int_equal(peer_cred_same(&c3, &c2), 0);
	/* Another sender with requests in flight: refused, nothing changed. */
	assert_int_equal(peer_sender_identify(&cache, &c3, 0, p, &changed),
	    BOTID_ERR_BUSY);
	assert_int_equal(p->pid, getpid());
	/* Gone (reaped): its uid and gid, nothing from /proc. */
	assert_int_equal(peer_sender_identify(&cache, &c3, 1, p, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(p->pid, c3.pid);
	assert_int_equal(p->uid, getuid());
	assert_int_equal(p->have_exe, 0);
	assert_int_equal(p->have_unit, 0);
	assert_int_equal(p->ngroups, 0);
	/* Back to the living parent: identified again from /proc. */
	assert_int_equal(peer_sender_identify(&cache, &c2, 1, p, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(p->have_exe, 1);

	/* A socket without per-message credentials: nothing to judge. */
	assert_int_equal(write(sv[0], "q", 1), 1);
	assert_int_equal(recv_cred(sv[1], &c4), 1);
	assert_int_equal(c4.have, 0);
	assert_int_equal(c4.pidfd, -1);
	assert_int_equal(peer_sender_identify(&cache, &c4, 1, p, &changed),
	    BOTID_ERR_DENIED);
	assert_int_equal(peer_cred_same(&c4, &c4), 0);
	/* Nothing waiting. */
	{
		uint8_t b[4];
		size_t got = 1;

		assert_int_equal(peer_recv(sv[0], b, sizeof(b), &got, &c4),
		    BOTID_ERR_INCOMPLETE);
		assert_int_equal(got, 0);
	}
	/* End of file. */
	close(sv[1]);
	assert_int_equal(recv_cred(sv[0], &c4), 0);

	peer_cred_clear(&c1);
	peer_cred_clear(&c2);
	peer_cred_clear(&c3);
	peer_cred_clear(&c4);
	peer_cred_clear(NULL);
	peer_sender_clear(&cache);
	peer_sender_clear(NULL);
	close(sv[0]);
	free(p);
	assert_int_equal(unsetenv("BOTID_PEER_FALLBACK"), 0);
}

static void
test_sender_kernel(void **state)
{
	sender_round(0);
}

static void
test_sender_fallback(void **state)
{
	sender_round(1);
}

/*
 * A sender may name its ids itself (SCM_CREDENTIALS): root may claim any,
 * others only their real, effective or saved ones; the kernel checks, and
 * what it let through is what peer_recv() reports.
 */
static void
test_sender_claim(void **state)
{
	union {
		struct cmsghdr	align;
		char		space[CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct botid_cred c;
	struct ucred uc;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	int sv[2];
	char x = 'x';

	(void)peer_mechanism_init();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	assert_int_equal(peer_socket_setup(sv[0]), 0);
	memset(&msg, 0, sizeof(msg));
	memset(&u, 0, sizeof(u));
	iov.iov_base = &x;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.space;
	msg.msg_controllen = sizeof(u.space);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(uc));
	uc.pid = getpid();
	uc.uid = geteuid() == 0 ? 12345 : geteuid();
	uc.gid = getegid() == 0 ? 23456 : getegid();
	memcpy(CMSG_DATA(cm), &uc, sizeof(uc));
	assert_int_equal(sendmsg(sv[1], &msg, 0), 1);
	assert_int_equal(recv_cred(sv[0], &c), 1);
	assert_int_equal(c.have, 1);
	assert_int_equal(c.pid, getpid());
	assert_int_equal(c.uid, uc.uid);
	assert_int_equal(c.gid, uc.gid);
	peer_cred_clear(&c);
	if (geteuid() != 0) {
		/* Another uid is refused by the kernel: nothing is sent. */
		uc.uid = geteuid() + 1;
		memcpy(CMSG_DATA(cm), &uc, sizeof(uc));
		assert_int_equal(sendmsg(sv[1], &msg, 0), -1);
	}
	close(sv[0]);
	close(sv[1]);
}

static void
test_describe(void **state)
{
	struct botid_peer p;
	char out[256];

	memset(&p, 0, sizeof(p));
	p.uid = 1000;
	p.gid = 1001;
	p.pid = 123;
	peer_describe(&p, out, sizeof(out));
	assert_string_equal(out, "uid=1000 gid=1001 pid=123");

	strcpy(p.exe, "/usr/bin/x");
	p.have_exe = 1;
	strcpy(p.unit, "x.service");
	p.have_unit = 1;
	peer_describe(&p, out, sizeof(out));
	assert_string_equal(out,
	    "uid=1000 gid=1001 pid=123 unit=x.service exe=/usr/bin/x");

	/* Nothing in exe can break the line or fake an escape. */
	strcpy(p.exe, "/tmp/a\nb\\c\x7f d\xc3\xa9");
	p.have_unit = 0;
	peer_describe(&p, out, sizeof(out));
	assert_string_equal(out, "uid=1000 gid=1001 pid=123 "
	    "exe=/tmp/a\\x0ab\\x5cc\\x7f d\xc3\xa9");

	/* Truncation never splits an escape and always terminates. */
	memset(out, 'z', sizeof(out));
	peer_describe(&p, out, 38);
	assert_string_equal(out, "uid=1000 gid=1001 pid=123 exe=/tmp/a");
	memset(out, 'z', sizeof(out));
	peer_describe(&p, out, 41);
	assert_string_equal(out, "uid=1000 gid=1001 pid=123 exe=/tmp/a\\x0a");
	memset(out, 'z', sizeof(out));
	peer_describe(&p, out, 10);
	assert_string_equal(out, "uid=1000 ");
	p.have_unit = 1;
	peer_describe(&p, out, 30);
	assert_string_equal(out, "uid=1000 gid=1001 pid=123 uni");
	peer_describe(&p, out, 44);
	assert_string_equal(out, "uid=1000 gid=1001 pid=123 unit=x.service ex");

	out[0] = 'q';
	peer_describe(&p, out, 0);
	assert_int_equal(out[0], 'q');
	peer_describe(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_not_a_peer),
		cmocka_unit_test(test_dead_process),
		cmocka_unit_test_setup(test_bad_arguments, setup),
		cmocka_unit_test_setup(test_fake_good, setup),
		cmocka_unit_test_setup(test_fake_comm, setup),
		cmocka_unit_test_setup(test_fake_bad_stat, setup),
		cmocka_unit_test_setup(test_fake_reused, setup),
		cmocka_unit_test_setup(test_fake_exe, setup),
		cmocka_unit_test_setup(test_fake_exe_elsewhere, setup),
		cmocka_unit_test_setup(test_fake_status, setup),
		cmocka_unit_test_setup(test_fake_status_cut, setup),
		cmocka_unit_test_setup(test_fake_cgroup, setup),
		cmocka_unit_test(test_sender_kernel),
		cmocka_unit_test(test_sender_fallback),
		cmocka_unit_test(test_sender_claim),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
