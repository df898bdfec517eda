/*
 * LD_PRELOAD shim for agent-privdrop.sh: plays the agent user who swaps a
 * path for a symbolic link while the agent, still root, hands its files
 * over. At the first chown-family call that reaches below BOTID_SWAP_DIR
 * (or reaches BOTID_SWAP_FILE), before the call runs, that path is renamed
 * to PATH.away and replaced by a link to BOTID_SWAP_DIR_TARGET (or
 * BOTID_SWAP_FILE_TARGET). The race an attacker must win is then won
 * every time: code that names files by path follows the link, code that
 * holds descriptors does not.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int dir_swapped, file_swapped;

static void
swap(const char *path, const char *target)
{
	char away[PATH_MAX];

	snprintf(away, sizeof(away), "%s.away", path);
	if (rename(path, away) == 0 && symlink(target, path) == 0)
		fprintf(stderr, "swap-preload: %s is now a link to %s\n", path,
		    target);
	else
		fprintf(stderr, "swap-preload: cannot swap %s\n", path);
}

/* Whether path is dir or below it. */
static int
below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 &&
	    (path[n] == '/' || path[n] == '\0');
}

static void
maybe_swap(const char *path)
{
	const char *d = getenv("BOTID_SWAP_DIR");
	const char *dt = getenv("BOTID_SWAP_DIR_TARGET");
	const char *f = getenv("BOTID_SWAP_FILE");
	const char *ft = getenv("BOTID_SWAP_FILE_TARGET");

	if (path == NULL)
		return;
	/* The directory itself is handed over first: swap below it. */
	if (!dir_swapped && d != NULL && dt != NULL && below(path, d) &&
	    strcmp(path, d) != 0) {
		dir_swapped = 1;
		swap(d, dt);
	}
	if (!file_swapped && f != NULL && ft != NULL && strcmp(path, f) == 0) {
		file_swapped = 1;
		swap(f, ft);
	}
}

/* The path an fd, or a name relative to a directory fd, stands for. */
static void
fd_path(int fd, const char *name, char *out, size_t len)
{
	char link[64];
	ssize_t n;

	out[0] = '\0';
	if (name != NULL && name[0] == '/') {
		snprintf(out, len, "%s", name);
		return;
	}
	if (fd == AT_FDCWD) {
		if (getcwd(out, len) == NULL)
			out[0] = '\0';
	} else {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		if ((n = readlink(link, out, len - 1)) < 0)
			n = 0;
		out[n] = '\0';
	}
	if (name != NULL && name[0] != '\0') {
		size_t l = strlen(out);

		snprintf(out + l, len - l, "/%s", name);
	}
}

int
chown(const char *path, uid_t uid, gid_t gid)
{
	int (*real)(const char *, uid_t, gid_t) =
	    (int (*)(const char *, uid_t, gid_t))dlsym(RTLD_NEXT, "chown");
	char abs[PATH_MAX];

	fd_path(AT_FDCWD, path, abs, sizeof(abs));
	maybe_swap(abs);
	return real(path, uid, gid);
}

int
lchown(const char *path, uid_t uid, gid_t gid)
{
	int (*real)(const char *, uid_t, gid_t) =
	    (int (*)(const char *, uid_t, gid_t))dlsym(RTLD_NEXT, "lchown");
	char abs[PATH_MAX];

	fd_path(AT_FDCWD, path, abs, sizeof(abs));
	maybe_swap(abs);
	return real(path, uid, gid);
}

int
fchown(int fd, uid_t uid, gid_t gid)
{
	int (*real)(int, uid_t, gid_t) =
	    (int (*)(int, uid_t, gid_t))dlsym(RTLD_NEXT, "fchown");
	char abs[PATH_MAX];

	fd_path(fd, NULL, abs, sizeof(abs));
	maybe_swap(abs);
	return real(fd, uid, gid);
}

int
fchownat(int dfd, const char *name, uid_t uid, gid_t gid, int flags)
{
	int (*real)(int, const char *, uid_t, gid_t, int) =
	    (int (*)(int, const char *, uid_t, gid_t, int))dlsym(RTLD_NEXT,
	    "fchownat");
	char abs[PATH_MAX];

	fd_path(dfd, name, abs, sizeof(abs));
	maybe_swap(abs);
	return real(dfd, name, uid, gid, flags);
}
