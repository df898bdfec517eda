/*
 * Attacks on "judge each request by the process that sent it", for
 * agent-identity.sh. The test installs two copies of this program: one at
 * the path an exe: rule allows, one elsewhere. Each attack prints one
 * line per try, "signed" or "refused", and the test counts them.
 *
 *   sign SOCK BOT                  connect, hello, sign (the legitimate path)
 *   idle FD                        wait until FD (a pipe) reaches EOF
 *   fork-exec SOCK BOT ALLOWED     connect; the parent execs ALLOWED (idle),
 *                                  the child signs on the socket
 *   exec-away SOCK BOT OTHER       connect, hello, exec OTHER (sign-fd) with
 *                                  the socket still open
 *   sign-fd FD BOT                 sign on an inherited connection
 *   pass SOCK BOT OTHER            connect, hello, hand the socket to OTHER
 *                                  (recv-sign) with SCM_RIGHTS
 *   recv-sign FD BOT               receive a connection on FD and sign
 *   split SOCK BOT OTHER           connect, hello, hand the socket to OTHER
 *                                  (prefix), which writes the first half of
 *                                  a signing request; write the rest
 *   prefix FD BOT                  receive a connection on FD, write the
 *                                  first half of a signing request
 *   claim SOCK BOT ALLOWED         (as root of a user and pid namespace of
 *                                  its own: unshare -Urpf) start ALLOWED,
 *                                  then sign naming its pid in
 *                                  SCM_CREDENTIALS
 *   pid-reuse SOCK BOT ALLOWED AGENT_PID
 *                                  stop the agent; a child connects, asks
 *                                  for a signature and exits; ALLOWED takes
 *                                  its pid (ns_last_pid); the agent resumes
 *
 * Exit status: 0 when every try was carried out (whatever the agent
 * answered), 1 on a failure of the attack itself, 2 when pid-reuse could
 * not land on the freed pid (the test retries).
 */
#include "botid-config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/limits.h"
#include "lib/wire.h"

static void
die(const char *what)
{
	fprintf(stderr, "identity-attack: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
connect_agent(const char *path, int cloexec)
{
	struct sockaddr_un sa;
	int fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | (cloexec ? SOCK_CLOEXEC : 0),
	    0)) == -1)
		die("socket");
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		die("socket path");
	}
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die("connect");
	return fd;
}

static void
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Appends a HELLO and/or a SIGN_DATA request for bot to b. */
static void
put_requests(struct botid_buf *b, int hello, const char *bot)
{
	static const char data[] = "identity attack\n";
	size_t mark;

	if (hello && (wire_frame_begin(b, BOTID_OP_HELLO, 1, NULL, &mark) != 0 ||
	    wire_put_u32(b, BOTID_TAG_VERSION, BOTID_PROTOCOL_VERSION) != 0 ||
	    wire_frame_end(b, mark) != 0)) {
		errno = EINVAL;
		die("encode hello");
	}
	if (bot != NULL && (wire_frame_begin(b, BOTID_OP_SIGN_DATA, 2, NULL,
	    &mark) != 0 ||
	    wire_put_string(b, BOTID_TAG_BOT, bot) != 0 ||
	    wire_put_u32(b, BOTID_TAG_HASH, BOTID_HASH_SHA256) != 0 ||
	    wire_put_bytes(b, BOTID_TAG_DATA, data, sizeof(data) - 1) != 0 ||
	    wire_put_u32(b, BOTID_TAG_SCHEME, BOTID_SCHEME_AUTO) != 0 ||
	    wire_put_u32(b, BOTID_TAG_FORMAT, BOTID_FORMAT_DER) != 0 ||
	    wire_frame_end(b, mark) != 0)) {
		errno = EINVAL;
		die("encode sign");
	}
}

static void
send_requests(int fd, int hello, const char *bot)
{
	struct botid_buf b;

	buf_init(&b, 4 + BOTID_MAX_FRAME);
	put_requests(&b, hello, bot);
	write_all(fd, buf_ptr(&b), buf_len(&b));
	buf_reset(&b);
}

/*
 * Reads replies until the one to the SIGN_DATA request: "signed" when it
 * carries a signature, else "refused" (an error reply, or the agent hung
 * up).
 */
static void
read_verdict(int fd)
{
	struct botid_buf in;
	const uint8_t *v;
	uint8_t *p, op;
	uint32_t id, status;
	uint16_t tag;
	size_t body, vlen;
	ssize_t n;
	int signed_ = 0;

	buf_init(&in, 4 + BOTID_MAX_FRAME);
	for (;;) {
		if (wire_frame_peek(&in, BOTID_MAX_FRAME, &body) == 0) {
			struct botid_buf f;

			(void)buf_consume(&in, 4);
			buf_init(&f, body);
			if (buf_put(&f, buf_ptr(&in), body) != 0)
				die("buffer");
			(void)buf_consume(&in, body);
			if (wire_get_reply_header(&f, &op, &id, &status) == 0 &&
			    op == (BOTID_OP_SIGN_DATA | BOTID_OP_REPLY)) {
				while (status == BOTID_STATUS_OK &&
				    wire_get_field(&f, &tag, &v, &vlen) == 0)
					if (tag == BOTID_TAG_SIGNATURE &&
					    vlen > 0)
						signed_ = 1;
				buf_reset(&f);
				break;
			}
			buf_reset(&f);
			continue;
		}
		if (buf_reserve(&in, 4096, &p) != 0)
			die("buffer");
		n = read(fd, p, 4096);
		(void)buf_unreserve(&in, n > 0 ? 4096 - (size_t)n : 4096);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
	buf_reset(&in);
	printf("%s\n", signed_ ? "signed" : "refused");
	fflush(stdout);
}

/* Waits until /proc/PID/exe names path (the exec happened). */
static void
await_exe(pid_t pid, const char *path)
{
	char link[64], exe[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%ld/exe", (long)pid);
	for (;;) {
		n = readlink(link, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			if (strcmp(exe, path) == 0)
				return;
		} else if (errno == ENOENT || errno == ESRCH) {
			errno = ESRCH;
			die("process gone before its exec");
		}
		usleep(200);
	}
}

static void
exec_self(const char *path, char *const argv[])
{
	execv(path, argv);
	die("execv");
}

static char *
fd_arg(int fd)
{
	static char s[16];

	snprintf(s, sizeof(s), "%d", fd);
	return s;
}

static int
cmd_idle(int fd)
{
	ssize_t n;
	char c;

	do
		n = read(fd, &c, 1);
	while (n == -1 && errno == EINTR);
	return 0;
}

static int
cmd_sign(const char *sock, const char *bot)
{
	int fd = connect_agent(sock, 1);

	send_requests(fd, 1, bot);
	read_verdict(fd);
	close(fd);
	return 0;
}

static int
cmd_fork_exec(const char *sock, const char *bot, const char *allowed)
{
	int fd, pipefd[2];
	pid_t child;

	fd = connect_agent(sock, 1);
	if (pipe(pipefd) == -1)
		die("pipe");
	if ((child = fork()) == -1)
		die("fork");
	if (child == 0) {
		close(pipefd[0]);
		/* Sign only once the connecting process runs ALLOWED. */
		await_exe(getppid(), allowed);
		send_requests(fd, 1, bot);
		read_verdict(fd);
		_exit(0);	/* the pipe closes: the parent ends */
	}
	close(pipefd[1]);
	{
		char *argv[] = { (char *)"bot", (char *)"idle",
		    fd_arg(pipefd[0]), NULL };

		/* The connection stays open across exec in the child only. */
		exec_self(allowed, argv);
	}
	return 1;
}

static int
cmd_exec_away(const char *sock, const char *bot, const char *other)
{
	int fd = connect_agent(sock, 0);
	char *argv[] = { (char *)"bot", (char *)"sign-fd", NULL, (char *)bot,
	    NULL };

	send_requests(fd, 1, NULL);
	argv[2] = fd_arg(fd);
	exec_self(other, argv);
	return 1;
}

static int
cmd_sign_fd(int fd, const char *bot)
{
	send_requests(fd, 0, bot);
	read_verdict(fd);
	return 0;
}

static void
send_fd(int via, int fd)
{
	union {
		struct cmsghdr	align;
		char		space[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	char c = 'x';

	memset(&msg, 0, sizeof(msg));
	memset(&u, 0, sizeof(u));
	iov.iov_base = &c;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.space;
	msg.msg_controllen = sizeof(u.space);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(via, &msg, 0) != 1)
		die("sendmsg");
}

static int
recv_fd(int via)
{
	union {
		struct cmsghdr	align;
		char		space[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	char c;
	int fd;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &c;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.space;
	msg.msg_controllen = sizeof(u.space);
	if (recvmsg(via, &msg, 0) != 1 || (cm = CMSG_FIRSTHDR(&msg)) == NULL ||
	    cm->cmsg_type != SCM_RIGHTS) {
		errno = EPROTO;
		die("recvmsg");
	}
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * Runs OTHER as `bot SUBCMD FD BOT`, FD being the agent connection fd
 * handed over through a socketpair (SCM_RIGHTS), and waits for it while
 * this process keeps the connection open: its exit status.
 */
static int
hand_over(int fd, const char *subcmd, const char *bot, const char *other)
{
	int sv[2], status;
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		die("socketpair");
	if ((child = fork()) == -1)
		die("fork");
	if (child == 0) {
		char *argv[] = { (char *)"bot", (char *)subcmd, NULL,
		    (char *)bot, NULL };

		/* Only the socketpair end crosses the exec, not the agent's. */
		if (fcntl(sv[1], F_SETFD, 0) == -1)
			die("fcntl");
		argv[2] = fd_arg(sv[1]);
		exec_self(other, argv);
	}
	send_fd(sv[0], fd);
	if (waitpid(child, &status, 0) == -1)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int
cmd_pass(const char *sock, const char *bot, const char *other)
{
	int fd, r;

	fd = connect_agent(sock, 1);
	send_requests(fd, 1, NULL);
	/* Stays alive, the connection open, while the other signs. */
	r = hand_over(fd, "recv-sign", bot, other);
	close(fd);
	return r;
}

static int
cmd_recv_sign(int via, const char *bot)
{
	int fd = recv_fd(via);

	send_requests(fd, 0, bot);
	read_verdict(fd);
	return 0;
}

/* The signing request for bot, as one buffer. */
static void
sign_frame(struct botid_buf *b, const char *bot)
{
	buf_init(b, 4 + BOTID_MAX_FRAME);
	put_requests(b, 0, bot);
}

static int
cmd_split(const char *sock, const char *bot, const char *other)
{
	struct botid_buf b;
	size_t half;
	int fd;

	fd = connect_agent(sock, 1);
	send_requests(fd, 1, NULL);
	if (hand_over(fd, "prefix", bot, other) != 0)
		return 1;
	sign_frame(&b, bot);
	half = buf_len(&b) / 2;
	write_all(fd, buf_ptr(&b) + half, buf_len(&b) - half);
	buf_reset(&b);
	read_verdict(fd);
	close(fd);
	return 0;
}

static int
cmd_prefix(int via, const char *bot)
{
	struct botid_buf b;
	int fd = recv_fd(via);

	sign_frame(&b, bot);
	write_all(fd, buf_ptr(&b), buf_len(&b) / 2);
	buf_reset(&b);
	return 0;
}

static int
cmd_claim(const char *sock, const char *bot, const char *allowed)
{
	union {
		struct cmsghdr	align;
		char		space[CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct botid_buf b;
	struct ucred uc;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	int fd, pipefd[2], sync[2], status;
	ssize_t n;
	pid_t child;
	char c;

	if (pipe2(pipefd, O_CLOEXEC) == -1 || pipe2(sync, O_CLOEXEC) == -1)
		die("pipe");
	if ((child = fork()) == -1)
		die("fork");
	if (child == 0) {
		char *argv[] = { (char *)"bot", (char *)"idle", NULL, NULL };

		close(pipefd[1]);
		close(sync[0]);
		if (fcntl(pipefd[0], F_SETFD, 0) == -1)
			die("fcntl");
		argv[2] = fd_arg(pipefd[0]);
		exec_self(allowed, argv);
	}
	close(pipefd[0]);
	/*
	 * /proc here is the outer pid namespace's: wait for the exec by
	 * the close-on-exec end of sync instead.
	 */
	close(sync[1]);
	do
		n = read(sync[0], &c, 1);
	while (n == -1 && errno == EINTR);
	close(sync[0]);
	fd = connect_agent(sock, 1);
	buf_init(&b, 4 + BOTID_MAX_FRAME);
	put_requests(&b, 1, bot);
	memset(&msg, 0, sizeof(msg));
	memset(&u, 0, sizeof(u));
	iov.iov_base = (void *)buf_ptr(&b);
	iov.iov_len = buf_len(&b);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.space;
	msg.msg_controllen = sizeof(u.space);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(uc));
	uc.pid = child;		/* the allowed program, not us */
	uc.uid = getuid();
	uc.gid = getgid();
	memcpy(CMSG_DATA(cm), &uc, sizeof(uc));
	if (sendmsg(fd, &msg, 0) != (ssize_t)buf_len(&b))
		die("sendmsg claiming another pid");
	buf_reset(&b);
	read_verdict(fd);
	close(fd);
	close(pipefd[1]);
	if (waitpid(child, &status, 0) == -1)
		die("waitpid");
	return 0;
}

static char
proc_state(pid_t pid)
{
	char path[64], buf[512], *s;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		die("open stat");
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die("read stat");
	buf[n] = '\0';
	if ((s = strrchr(buf, ')')) == NULL || s[1] != ' ')
		die("parse stat");
	return s[2];
}

static void
set_last_pid(pid_t pid)
{
	char s[32];
	int fd, n;

	if ((fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY |
	    O_CLOEXEC)) == -1)
		die("open ns_last_pid");
	n = snprintf(s, sizeof(s), "%ld", (long)pid);
	if (write(fd, s, (size_t)n) != n)
		die("write ns_last_pid");
	close(fd);
}

static int
cmd_pid_reuse(const char *sock, const char *bot, const char *allowed,
    pid_t agent)
{
	int sv[2], pipefd[2], fd, status, r = 1;
	pid_t x, y;

	if (kill(agent, SIGSTOP) == -1)
		die("SIGSTOP");
	while (proc_state(agent) != 'T')
		usleep(200);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    pipe2(pipefd, O_CLOEXEC) == -1)
		die("socketpair");
	if ((x = fork()) == -1)
		die("fork");
	if (x == 0) {
		/* The connecting process asks, hands the socket over, exits. */
		fd = connect_agent(sock, 1);
		send_requests(fd, 1, bot);
		send_fd(sv[1], fd);
		_exit(0);
	}
	fd = recv_fd(sv[0]);
	if (waitpid(x, &status, 0) == -1)
		die("waitpid");
	/* The allowed program takes the freed pid. */
	set_last_pid(x - 1);
	if ((y = fork()) == -1)
		die("fork");
	if (y == 0) {
		char *argv[] = { (char *)"bot", (char *)"idle", NULL, NULL };

		close(pipefd[1]);
		if (fcntl(pipefd[0], F_SETFD, 0) == -1)
			die("fcntl");
		argv[2] = fd_arg(pipefd[0]);
		exec_self(allowed, argv);
	}
	close(pipefd[0]);
	if (y != x) {
		r = 2;		/* someone else took it first */
		printf("missed\n");
		fflush(stdout);
	} else {
		await_exe(y, allowed);
		r = 0;
	}
	if (kill(agent, SIGCONT) == -1)
		die("SIGCONT");
	if (r == 0)
		read_verdict(fd);
	close(fd);
	close(pipefd[1]);
	if (waitpid(y, &status, 0) == -1)
		die("waitpid");
	return r;
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	/* Replies to a process that is gone must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(cmd, "idle") == 0 && argc == 3)
		return cmd_idle(atoi(argv[2]));
	if (strcmp(cmd, "sign") == 0 && argc == 4)
		return cmd_sign(argv[2], argv[3]);
	if (strcmp(cmd, "fork-exec") == 0 && argc == 5)
		return cmd_fork_exec(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "exec-away") == 0 && argc == 5)
		return cmd_exec_away(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "sign-fd") == 0 && argc == 4)
		return cmd_sign_fd(atoi(argv[2]), argv[3]);
	if (strcmp(cmd, "pass") == 0 && argc == 5)
		return cmd_pass(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "recv-sign") == 0 && argc == 4)
		return cmd_recv_sign(atoi(argv[2]), argv[3]);
	if (strcmp(cmd, "split") == 0 && argc == 5)
		return cmd_split(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "prefix") == 0 && argc == 4)
		return cmd_prefix(atoi(argv[2]), argv[3]);
	if (strcmp(cmd, "claim") == 0 && argc == 5)
		return cmd_claim(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "pid-reuse") == 0 && argc == 6)
		return cmd_pid_reuse(argv[2], argv[3], argv[4],
		    (pid_t)atoi(argv[5]));
	fprintf(stderr, "identity-attack: bad arguments\n");
	return 1;
}
