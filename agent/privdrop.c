/*
 * Dropping root for good, before any thread exists. setresuid() from root
 * clears every capability; CAP_SYS_PTRACE is kept through PR_SET_KEEPCAPS
 * and capset() when, and only when, an exe: rule needs it. Threads made
 * later inherit it: they share one address space, so keeping it from them
 * would protect nothing.
 */
#include "botid-config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/privdrop.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/log.h"

#define PRIVDROP_NSS_BUF	(64 * 1024)

int
privdrop_needs_ptrace(const struct botid_agent_config *cfg)
{
	size_t b, a, t;

	for (b = 0; b < cfg->nbots; b++)
		for (a = 0; a < cfg->bots[b].nallow; a++)
			for (t = 0; t < cfg->bots[b].allow[a].nterms; t++)
				if (cfg->bots[b].allow[a].terms[t].kind ==
				    BOTID_ALLOW_EXE)
					return 1;
	for (a = 0; a < cfg->nadmin; a++)
		for (t = 0; t < cfg->admin[a].nterms; t++)
			if (cfg->admin[a].terms[t].kind == BOTID_ALLOW_EXE)
				return 1;
	return 0;
}

/*
 * Gives the open file fd (path, for messages) to uid:gid unless it is
 * theirs already. A regular file with more than one link is refused: the
 * other name may be a file the agent's user must not own.
 */
static int
chown_fd(int fd, const char *path, const struct stat *st, uid_t uid,
    gid_t gid)
{
	if (S_ISREG(st->st_mode) && st->st_nlink > 1) {
		log_err("refusing to give %s to the agent's user: it has %lu "
		    "hard links", path, (unsigned long)st->st_nlink);
		return BOTID_ERR_CONFIG;
	}
	if (st->st_uid == uid && st->st_gid == gid)
		return 0;
	if (fchown(fd, uid, gid) == -1) {
		log_err("cannot give %s to the agent's user: %s", path,
		    strerror(errno));
		return BOTID_ERR_IO;
	}
	return 0;
}

/*
 * Gives the directory open as dfd, and everything under it, to uid:gid.
 * The agent's user owns these directories and may rename, replace or
 * link anything in them meanwhile, so nothing is named by a path from the
 * top: each entry is reached from its parent's descriptor and opened with
 * O_NOFOLLOW before fchown(), and what cannot be opened is changed with
 * fchownat(AT_SYMLINK_NOFOLLOW), which never reaches through a link. A
 * directory swapped for a link after it was listed fails to open (ELOOP).
 * Symbolic links are left as they are: never followed, never re-owned.
 */
static int
chown_dir(int dfd, const char *path, uid_t uid, gid_t gid, unsigned depth)
{
	struct stat st;
	struct dirent *de;
	char *sub = NULL;
	DIR *d = NULL;
	int fd = -1, r = BOTID_ERR_IO;

	if (fstat(dfd, &st) == -1) {
		log_err("%s: fstat: %s", path, strerror(errno));
		goto out;
	}
	if ((r = chown_fd(dfd, path, &st, uid, gid)) != 0)
		goto out;
	r = BOTID_ERR_IO;
	if ((fd = dup(dfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		log_err("%s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;	/* d owns it */
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0) {
				log_err("%s: readdir: %s", path,
				    strerror(errno));
				goto out;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		free(sub);
		if (asprintf(&sub, "%s/%s", path, de->d_name) == -1) {
			sub = NULL;
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)
				continue;	/* gone meanwhile */
			log_err("%s: %s", sub, strerror(errno));
			goto out;
		}
		if (S_ISLNK(st.st_mode))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth >= BOTID_MAX_STATE_DEPTH) {
				log_err("refusing to give %s to the agent's "
				    "user: more than %u directory levels", sub,
				    BOTID_MAX_STATE_DEPTH);
				r = BOTID_ERR_CONFIG;
				goto out;
			}
			fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		} else if (S_ISREG(st.st_mode))
			fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW |
			    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		else {
			/* Sockets, FIFOs: nothing to open, nothing to follow. */
			if ((st.st_uid != uid || st.st_gid != gid) &&
			    fchownat(dfd, de->d_name, uid, gid,
			    AT_SYMLINK_NOFOLLOW) == -1 && errno != ENOENT) {
				log_err("cannot give %s to the agent's user: %s",
				    sub, strerror(errno));
				goto out;
			}
			continue;
		}
		if (fd == -1) {
			log_err("refusing to give %s to the agent's user: it "
			    "changed while being handed over (%s)", sub,
			    strerror(errno));
			r = BOTID_ERR_CONFIG;
			goto out;
		}
		if (S_ISDIR(st.st_mode))
			r = chown_dir(fd, sub, uid, gid, depth + 1);
		else if (fstat(fd, &st) == -1) {
			log_err("%s: fstat: %s", sub, strerror(errno));
			r = BOTID_ERR_IO;
		} else
			r = chown_fd(fd, sub, &st, uid, gid);
		close(fd);
		fd = -1;
		if (r != 0)
			goto out;
		r = BOTID_ERR_IO;
	}
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	if (d != NULL)
		closedir(d);
	free(sub);
	return r;
}

/* Gives state_dir (not followed if it is a link) and its tree to uid:gid. */
static int
chown_state(const char *state_dir, uid_t uid, gid_t gid)
{
	int fd, r;

	if ((fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		log_err("cannot give %s to the agent's user: %s", state_dir,
		    strerror(errno));
		return BOTID_ERR_IO;
	}
	r = chown_dir(fd, state_dir, uid, gid, 0);
	close(fd);
	return r;
}

/*
 * Gives the audit log to uid:gid through a descriptor opened without
 * following a link: a link planted in its place since audit_open() is
 * refused, never followed to the file it names.
 */
static int
chown_audit_log(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	int fd, r = BOTID_ERR_IO;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		log_err("refusing to give %s to the agent's user: %s", path,
		    errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		return errno == ELOOP ? BOTID_ERR_CONFIG : BOTID_ERR_IO;
	}
	if (fstat(fd, &st) == -1)
		log_err("%s: fstat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode)) {
		log_err("refusing to give %s to the agent's user: not a "
		    "regular file", path);
		r = BOTID_ERR_CONFIG;
	} else
		r = chown_fd(fd, path, &st, uid, gid);
	close(fd);
	return r;
}

/* Keeps only CAP_SYS_PTRACE, effective and permitted. */
static int
keep_ptrace_only(void)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	data[CAP_TO_INDEX(CAP_SYS_PTRACE)].effective =
	    CAP_TO_MASK(CAP_SYS_PTRACE);
	data[CAP_TO_INDEX(CAP_SYS_PTRACE)].permitted =
	    CAP_TO_MASK(CAP_SYS_PTRACE);
	return (int)syscall(SYS_capset, &hdr, data);
}

int
privdrop_apply(const struct botid_agent_config *cfg)
{
	struct passwd pw, *res = NULL;
	char *buf = NULL;
	int ptrace_cap, e, r = BOTID_ERR_IO;

	if (cfg->user == NULL || getuid() == cfg->user_uid)
		return 0;
	if (geteuid() != 0) {
		log_err("user = %s: the agent must start as root to become it",
		    cfg->user);
		return BOTID_ERR_CONFIG;
	}
	if ((buf = malloc(PRIVDROP_NSS_BUF)) == NULL)
		return BOTID_ERR_ALLOC;
	if ((e = getpwuid_r(cfg->user_uid, &pw, buf, PRIVDROP_NSS_BUF,
	    &res)) != 0 || res == NULL) {
		log_err("user = %s: no passwd entry for uid %lu%s%s", cfg->user,
		    (unsigned long)cfg->user_uid, e != 0 ? ": " : "",
		    e != 0 ? strerror(e) : "");
		goto out;
	}
	if ((r = chown_state(cfg->state_dir, pw.pw_uid, pw.pw_gid)) != 0 ||
	    (cfg->audit_log != NULL && (r = chown_audit_log(cfg->audit_log,
	    pw.pw_uid, pw.pw_gid)) != 0))
		goto out;
	r = BOTID_ERR_IO;
	ptrace_cap = privdrop_needs_ptrace(cfg);
	if (ptrace_cap && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1) {
		log_err("PR_SET_KEEPCAPS: %s", strerror(errno));
		goto out;
	}
	/* Supplementary groups from the group database (tss for a TPM). */
	if (initgroups(pw.pw_name, pw.pw_gid) == -1 ||
	    setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) == -1 ||
	    setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) == -1) {
		log_err("cannot become %s: %s", cfg->user, strerror(errno));
		goto out;
	}
	if (ptrace_cap && (keep_ptrace_only() == -1 ||
	    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1)) {
		log_err("cannot keep CAP_SYS_PTRACE for exe: rules: %s",
		    strerror(errno));
		goto out;
	}
	/* Paranoia: root must be out of reach now. */
	if (setuid(0) != -1 || seteuid(0) != -1) {
		log_err("still able to regain root after dropping it");
		goto out;
	}
	/* A uid change resets dumpability: set it, and no_new_privs, again. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_err("prctl after dropping root: %s", strerror(errno));
		goto out;
	}
	log_info("running as %s (uid %lu)%s", cfg->user,
	    (unsigned long)pw.pw_uid, ptrace_cap ?
	    ", keeping CAP_SYS_PTRACE for exe: rules" : "");
	r = 0;
 out:
	free(buf);
	return r;
}
