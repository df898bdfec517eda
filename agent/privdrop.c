/*
 * Dropping root for good, before any thread exists. setresuid() from root
 * clears every capability; CAP_SYS_PTRACE is kept through PR_SET_KEEPCAPS
 * and capset() when, and only when, an exe: rule needs it. Threads made
 * later inherit it: they share one address space, so keeping it from them
 * would protect nothing.
 */
#include "botid-config.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/privdrop.h"
#include "lib/error.h"
#include "lib/log.h"

#define PRIVDROP_NSS_BUF	(64 * 1024)

/* nftw() offers no context pointer: the owner being given out. */
static uid_t chown_uid;
static gid_t chown_gid;

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

static int
chown_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_SL || type == FTW_SLN)
		return 0;	/* never follow or re-own a link */
	if (st->st_uid == chown_uid && st->st_gid == chown_gid)
		return 0;
	if (lchown(path, chown_uid, chown_gid) == -1) {
		log_err("cannot give %s to the agent's user: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
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
	chown_uid = pw.pw_uid;
	chown_gid = pw.pw_gid;
	if (nftw(cfg->state_dir, chown_entry, 16, FTW_PHYS) != 0)
		goto out;
	if (cfg->audit_log != NULL && chown(cfg->audit_log, pw.pw_uid,
	    pw.pw_gid) == -1 && errno != ENOENT) {
		log_err("cannot give %s to the agent's user: %s",
		    cfg->audit_log, strerror(errno));
		goto out;
	}
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
