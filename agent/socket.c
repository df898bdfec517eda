/*
 * Listening socket setup. The socket is bound under umask 0177 so it is
 * never briefly wider than its final mode, then given the configured mode
 * and group before listen(2) lets anyone connect.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/socket.h"
#include "lib/error.h"
#include "lib/log.h"

#define SD_LISTEN_FDS_START 3

/* The first socket systemd passed us, or -1. */
static int
socket_from_systemd(void)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	char *end;
	long pid, fds;
	int accepting = 0, type = 0;
	socklen_t len;

	if (pid_s == NULL || fds_s == NULL)
		return -1;
	errno = 0;
	pid = strtol(pid_s, &end, 10);
	if (errno != 0 || *end != '\0' || pid != (long)getpid())
		return -1;
	fds = strtol(fds_s, &end, 10);
	if (errno != 0 || *end != '\0' || fds < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	len = sizeof(type);
	if (getsockopt(SD_LISTEN_FDS_START, SOL_SOCKET, SO_TYPE, &type,
	    &len) == -1 || type != SOCK_STREAM)
		return -1;
	len = sizeof(accepting);
	if (getsockopt(SD_LISTEN_FDS_START, SOL_SOCKET, SO_ACCEPTCONN,
	    &accepting, &len) == -1 || !accepting)
		return -1;
	return SD_LISTEN_FDS_START;
}

/* Removes a stale socket left by a dead agent; refuses a live one. */
static int
socket_clear_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : BOTID_ERR_IO;
	if (!S_ISSOCK(st.st_mode)) {
		log_err("socket %s: exists and is not a socket", path);
		return BOTID_ERR_CONFIG;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return BOTID_ERR_IO;
	r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (r == 0) {
		log_err("socket %s: another agent is listening there", path);
		return BOTID_ERR_CONFIG;
	}
	if (unlink(path) == -1 && errno != ENOENT)
		return BOTID_ERR_IO;
	return 0;
}

/*
 * Mode of a socket directory the agent makes, whatever its umask (0077,
 * main.c): the DirectoryMode= botid-agent.socket gives /run/botid. Anyone
 * may search it so that socket_group's members reach the socket, whose
 * own mode and group decide who may connect.
 */
#define SOCKET_DIR_MODE	0755

/*
 * Warns when an existing directory, which the agent leaves as it is, keeps
 * the members of the socket's group from reaching the socket.
 */
static void
socket_dir_check_reach(const struct botid_agent_config *cfg,
    const char *dir, const struct stat *st)
{
	gid_t gid = cfg->socket_group != NULL ? cfg->socket_gid : getegid();

	if ((cfg->socket_mode & 0070) == 0 || (st->st_mode & S_IXOTH) != 0 ||
	    ((st->st_mode & S_IXGRP) != 0 && st->st_gid == gid))
		return;
	log_warn("socket directory %s: mode %04o and group %lu keep group "
	    "%lu from the socket", dir, (unsigned)(st->st_mode & 07777),
	    (unsigned long)st->st_gid, (unsigned long)gid);
}

/*
 * Makes the directory of the socket at path (not its parents) when it is
 * missing, mode SOCKET_DIR_MODE: /run is a tmpfs, so without systemd's
 * socket unit the directory is gone after each boot. Through descriptors,
 * and only a directory this process just made and owns is given its mode:
 * an existing directory is used as it is, never loosened, never re-owned.
 * A link in the directory's place is refused.
 */
static int
socket_dir_prepare(const struct botid_agent_config *cfg, const char *path)
{
	char dir[PATH_MAX], parent[PATH_MAX], *slash;
	const char *name;
	struct stat st;
	int pfd = -1, dfd = -1, made = 0, e, r = BOTID_ERR_IO;

	if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir))
		return BOTID_ERR_TOO_LARGE;
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;	/* directly under / (or relative): nothing to make */
	*slash = '\0';
	memcpy(parent, dir, sizeof(parent));
	slash = strrchr(parent, '/');	/* dir is absolute: never NULL */
	if (slash == NULL)
		return 0;
	name = dir + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = '\0';	/* the parent is / itself */
	else
		*slash = '\0';
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_err("socket directory %s: %s", dir, strerror(errno));
		goto out;
	}
	/* Made private first; widened below once known to be ours. */
	if (mkdirat(pfd, name, 0700) == 0)
		made = 1;
	else if (errno != EEXIST) {
		log_err("socket directory %s: %s", dir, strerror(errno));
		goto out;
	}
	if ((dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		/* O_DIRECTORY answers ENOTDIR for a link: say which it is. */
		e = errno;
		if (e == ELOOP || (e == ENOTDIR && fstatat(pfd, name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))) {
			log_err("socket directory %s: is a symbolic link", dir);
			r = BOTID_ERR_CONFIG;
		} else {
			log_err("socket directory %s: %s", dir, strerror(e));
			r = e == ENOTDIR ? BOTID_ERR_CONFIG : BOTID_ERR_IO;
		}
		goto out;
	}
	if (fstat(dfd, &st) == -1) {
		log_err("socket directory %s: %s", dir, strerror(errno));
		goto out;
	}
	if (!made) {
		socket_dir_check_reach(cfg, dir, &st);
		r = 0;
		goto out;
	}
	if (st.st_uid != geteuid()) {
		log_err("socket directory %s: replaced by uid %lu while made",
		    dir, (unsigned long)st.st_uid);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if (fchmod(dfd, SOCKET_DIR_MODE) == -1) {
		log_err("socket directory %s: chmod: %s", dir, strerror(errno));
		goto out;
	}
	log_info("made socket directory %s, mode %04o", dir, SOCKET_DIR_MODE);
	r = 0;
 out:
	if (dfd != -1)
		close(dfd);
	if (pfd != -1)
		close(pfd);
	return r;
}

/*
 * Binds and listens on path with the configured mode and group: the
 * main socket and the ssh-agent one are made the same way.
 */
static int
socket_bind_path(const struct botid_agent_config *cfg, const char *path,
    int *fdp)
{
	struct sockaddr_un sun;
	mode_t old_mask;
	int fd = -1, r = BOTID_ERR_IO, rc;

	*fdp = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("socket %s: path too long", path);
		return BOTID_ERR_TOO_LARGE;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((r = socket_dir_prepare(cfg, path)) != 0)
		return r;
	if ((r = socket_clear_stale(path, &sun)) != 0)
		return r;
	r = BOTID_ERR_IO;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		goto out;
	/* Never a moment when the socket exists with a wider mode. */
	old_mask = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	if (rc == -1) {
		log_err("socket %s: bind: %s", path, strerror(errno));
		goto out;
	}
	/* config_load() resolved the group name, so a typo fails there. */
	if (cfg->socket_group != NULL) {
		if (chown(path, (uid_t)-1, cfg->socket_gid) == -1) {
			log_err("socket %s: chown: %s", path,
			    strerror(errno));
			goto out;
		}
	}
	if (chmod(path, cfg->socket_mode) == -1) {
		log_err("socket %s: chmod: %s", path, strerror(errno));
		goto out;
	}
	if (listen(fd, SOMAXCONN) == -1) {
		log_err("socket %s: listen: %s", path, strerror(errno));
		goto out;
	}
	*fdp = fd;
	fd = -1;
	r = 0;
 out:
	if (fd != -1) {
		close(fd);
		unlink(path);
	}
	return r;
}

int
socket_listen(const struct botid_agent_config *cfg, int *fdp, int *activated)
{
	int fd, flags;

	*fdp = -1;
	*activated = 0;
	if ((fd = socket_from_systemd()) != -1) {
		if ((flags = fcntl(fd, F_GETFL)) == -1 ||
		    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
			return BOTID_ERR_IO;
		log_info("using the socket passed by systemd");
		*fdp = fd;
		*activated = 1;
		return 0;
	}
	return socket_bind_path(cfg, cfg->socket_path, fdp);
}

int
socket_listen_ssh(const struct botid_agent_config *cfg, int *fdp)
{
	*fdp = -1;
	if (cfg->ssh_socket_path == NULL)
		return 0;
	return socket_bind_path(cfg, cfg->ssh_socket_path, fdp);
}
