/*
 * The provisioning state files (host-state.h). Files are parsed as
 * untrusted input: capped, TPM structures through the bounded tss2-mu
 * unmarshallers with no trailing bytes, host.json through jansson with
 * required string members. Writes are atomic, so a crash mid-provisioning
 * leaves a state that the next run completes.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <tss2/tss2_mu.h>

#include "attest/host-state.h"
#include "lib/botid.h"
#include "lib/file.h"

#define STATE_FILE_MAX	(64u * 1024u)

static char *
path_in(const struct host_state *hs, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", hs->dir, name) == -1)
		return NULL;
	return p;
}

enum blob_kind { BLOB_PUBLIC, BLOB_PRIVATE };

/* Reads name into a TPM2B_PUBLIC or TPM2B_PRIVATE; 1 when absent. */
static int
read_tpm(struct host_state *hs, const char *name, enum blob_kind kind,
    void *dst, char *err, size_t errlen)
{
	uint8_t *data = NULL;
	size_t len = 0, off = 0;
	TSS2_RC rc;
	char *path;
	int r;

	if ((path = path_in(hs, name)) == NULL)
		return BOTID_ERR_ALLOC;
	r = file_read(path, STATE_FILE_MAX, &data, &len);
	if (r == BOTID_ERR_NOT_FOUND)
		r = 1;
	else if (r != 0)
		snprintf(err, errlen, "%s: %s", path, r == BOTID_ERR_IO ?
		    strerror(errno) : botid_strerror(r));
	else {
		rc = kind == BLOB_PUBLIC ?
		    Tss2_MU_TPM2B_PUBLIC_Unmarshal(data, len, &off, dst) :
		    Tss2_MU_TPM2B_PRIVATE_Unmarshal(data, len, &off, dst);
		if (rc != 0 || off != len) {
			snprintf(err, errlen, "%s: not a TPM structure of the "
			    "expected kind (damaged state)", path);
			r = BOTID_ERR_CONFIG;
		}
	}
	free(data);
	free(path);
	return r;
}

/* Replaces the enrolment fields of hs with copies of these. */
static int
set_identity(struct host_state *hs, const char *id, const char *spiffe,
    const char *url)
{
	free(hs->host_id);
	free(hs->spiffe_id);
	free(hs->ca_url);
	hs->host_id = strdup(id);
	hs->spiffe_id = strdup(spiffe);
	hs->ca_url = strdup(url);
	if (hs->host_id == NULL || hs->spiffe_id == NULL || hs->ca_url == NULL)
		return BOTID_ERR_ALLOC;
	hs->enrolled = 1;
	return 0;
}

static int
load_host_json(struct host_state *hs, char *err, size_t errlen)
{
	const char *id, *spiffe, *url;
	json_error_t je;
	uint8_t *data = NULL;
	size_t len = 0;
	json_t *j = NULL;
	char *path;
	int r;

	if ((path = path_in(hs, "host.json")) == NULL)
		return BOTID_ERR_ALLOC;
	r = file_read(path, STATE_FILE_MAX, &data, &len);
	if (r == BOTID_ERR_NOT_FOUND) {
		r = 0;
		goto out;
	}
	if (r != 0) {
		snprintf(err, errlen, "%s: %s", path, botid_strerror(r));
		goto out;
	}
	if ((j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES,
	    &je)) == NULL ||
	    json_unpack_ex(j, &je, JSON_STRICT, "{s:s, s:s, s:s}", "host_id",
	    &id, "spiffe_id", &spiffe, "ca_url", &url) != 0) {
		snprintf(err, errlen, "%s: damaged: %s", path, je.text);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	r = set_identity(hs, id, spiffe, url);
 out:
	json_decref(j);
	free(data);
	free(path);
	return r;
}

int
host_state_load(const char *state_dir, struct host_state *hs, char *err,
    size_t errlen)
{
	struct stat st;
	int r, absent = 0;

	memset(hs, 0, sizeof(*hs));
	if (asprintf(&hs->dir, "%s/%s", state_dir, HOST_STATE_SUBDIR) == -1) {
		hs->dir = NULL;
		return BOTID_ERR_ALLOC;
	}
	if ((hs->bundle_path = path_in(hs, "ca-bundle.pem")) == NULL ||
	    (hs->host_cert_path = path_in(hs, "host-cert.pem")) == NULL)
		return BOTID_ERR_ALLOC;
	if (lstat(hs->dir, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", hs->dir, strerror(errno));
		return BOTID_ERR_IO;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(err, errlen, "%s: refusing: not a directory owned by "
		    "uid %lu and writable only by it", hs->dir,
		    (unsigned long)geteuid());
		return BOTID_ERR_CONFIG;
	}
	if ((r = read_tpm(hs, "ak.pub", BLOB_PUBLIC,
	    &hs->ak_pub, err, errlen)) < 0)
		return r;
	absent += r;
	if ((r = read_tpm(hs, "ak.priv",
	    BLOB_PRIVATE, &hs->ak_priv, err,
	    errlen)) < 0)
		return r;
	absent += r;
	if ((r = read_tpm(hs, "hostkey.pub",
	    BLOB_PUBLIC, &hs->hk_pub, err,
	    errlen)) < 0)
		return r;
	absent += r;
	if ((r = read_tpm(hs, "hostkey.priv",
	    BLOB_PRIVATE, &hs->hk_priv, err,
	    errlen)) < 0)
		return r;
	absent += r;
	hs->have_keys = absent == 0;
	if ((r = load_host_json(hs, err, errlen)) != 0)
		return r;
	if (hs->enrolled && !hs->have_keys) {
		snprintf(err, errlen, "%s: host.json without the key blobs "
		    "(damaged state): remove the directory and provision again",
		    hs->dir);
		return BOTID_ERR_CONFIG;
	}
	return 0;
}

static int
save_tpm(struct host_state *hs, const char *name, enum blob_kind kind,
    const void *src, char *err, size_t errlen)
{
	uint8_t buf[sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
	size_t off = 0;
	TSS2_RC rc;
	char *path;
	int r;

	rc = kind == BLOB_PUBLIC ?
	    Tss2_MU_TPM2B_PUBLIC_Marshal(src, buf, sizeof(buf), &off) :
	    Tss2_MU_TPM2B_PRIVATE_Marshal(src, buf, sizeof(buf), &off);
	if (rc != 0)
		return BOTID_ERR_INTERNAL;
	if ((path = path_in(hs, name)) == NULL)
		return BOTID_ERR_ALLOC;
	if ((r = file_write_atomic(path, buf, off, 0600)) != 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	free(path);
	return r;
}

int
host_state_save_keys(struct host_state *hs, char *err, size_t errlen)
{
	char *parent;
	int r;

	/* The agent's state directory too, if this runs before the agent. */
	if ((parent = strdup(hs->dir)) == NULL)
		return BOTID_ERR_ALLOC;
	parent[strlen(parent) - strlen("/" HOST_STATE_SUBDIR)] = '\0';
	if (mkdir(parent, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", parent, strerror(errno));
		free(parent);
		return BOTID_ERR_IO;
	}
	free(parent);
	if (mkdir(hs->dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", hs->dir, strerror(errno));
		return BOTID_ERR_IO;
	}
	if ((r = save_tpm(hs, "ak.pub", BLOB_PUBLIC,
	    &hs->ak_pub, err, errlen)) != 0 ||
	    (r = save_tpm(hs, "ak.priv", BLOB_PRIVATE,
	    &hs->ak_priv, err, errlen)) != 0 ||
	    (r = save_tpm(hs, "hostkey.pub",
	    BLOB_PUBLIC, &hs->hk_pub, err,
	    errlen)) != 0 ||
	    (r = save_tpm(hs, "hostkey.priv",
	    BLOB_PRIVATE, &hs->hk_priv, err,
	    errlen)) != 0)
		return r;
	hs->have_keys = 1;
	return 0;
}

int
host_state_save_enrolment(struct host_state *hs, const char *host_id,
    const char *spiffe_id, const char *ca_url, const char *bundle_pem,
    const char *host_cert_pem, char *err, size_t errlen)
{
	json_t *j = NULL;
	char *text = NULL, *path = NULL;
	int r = BOTID_ERR_ALLOC;

	if ((j = json_pack("{s:s, s:s, s:s}", "host_id", host_id,
	    "spiffe_id", spiffe_id, "ca_url", ca_url)) == NULL ||
	    (text = json_dumps(j, JSON_INDENT(2))) == NULL ||
	    (path = path_in(hs, "host.json")) == NULL)
		goto out;
	r = BOTID_ERR_IO;
	if (file_write_atomic(hs->bundle_path, bundle_pem, strlen(bundle_pem),
	    0644) != 0) {
		snprintf(err, errlen, "%s: %s", hs->bundle_path,
		    strerror(errno));
		goto out;
	}
	if (file_write_atomic(hs->host_cert_path, host_cert_pem,
	    strlen(host_cert_pem), 0644) != 0) {
		snprintf(err, errlen, "%s: %s", hs->host_cert_path,
		    strerror(errno));
		goto out;
	}
	if (file_write_atomic(path, text, strlen(text), 0644) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	r = set_identity(hs, host_id, spiffe_id, ca_url);
 out:
	json_decref(j);
	free(text);
	free(path);
	return r;
}

int
host_state_remove(const char *state_dir, char *err, size_t errlen)
{
	static const char *const files[] = { "host.json", "ak.priv",
	    "hostkey.priv", "ak.pub", "hostkey.pub", "host-cert.pem",
	    "ca-bundle.pem", "ca-tls-pin", NULL };
	char *dir = NULL, *path = NULL;
	size_t i;
	int fd, r = BOTID_ERR_ALLOC;

	if (asprintf(&dir, "%s/%s", state_dir, HOST_STATE_SUBDIR) == -1) {
		dir = NULL;
		goto out;
	}
	for (i = 0; files[i] != NULL; i++) {
		if (asprintf(&path, "%s/%s", dir, files[i]) == -1) {
			path = NULL;
			goto out;
		}
		if (unlink(path) == -1 && errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			r = BOTID_ERR_IO;
			goto out;
		}
		free(path);
		path = NULL;
	}
	/* The unlinks are durable before anyone is told they happened. */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
	if (rmdir(dir) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	r = 0;
 out:
	free(path);
	free(dir);
	return r;
}

void
host_state_free(struct host_state *hs)
{
	if (hs == NULL)
		return;
	free(hs->dir);
	free(hs->host_id);
	free(hs->spiffe_id);
	free(hs->ca_url);
	free(hs->bundle_path);
	free(hs->host_cert_path);
	memset(hs, 0, sizeof(*hs));
}
