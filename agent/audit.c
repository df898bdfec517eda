/*
 * Audit log writer. Each entry is a single write(2) on an O_APPEND file so
 * lines never interleave and a crash loses at most the entry being written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/audit.h"
#include "lib/error.h"
#include "lib/log.h"

static int audit_fd = -1;

int
audit_open(const char *path)
{
	struct stat st;
	int fd;

	if (path == NULL)
		return 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		log_err("audit log %s: %s", path, strerror(errno));
		return BOTID_ERR_IO;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_err("audit log %s: not a regular file", path);
		close(fd);
		return BOTID_ERR_IO;
	}
	if ((st.st_mode & 077) != 0)
		log_warn("audit log %s: mode %03o is wider than 0600", path,
		    (unsigned)(st.st_mode & 0777));
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = fd;
	return 0;
}

int
audit_reopen(const char *path)
{
	if (path == NULL) {
		audit_close();
		return 0;
	}
	return audit_open(path);
}

void
audit_close(void)
{
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = -1;
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A JSON string for text a caller controls (an exe path may not be UTF-8). */
static json_t *
jstr(const char *s)
{
	json_t *j;
	char *copy;
	size_t i;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	if ((copy = strdup(s)) == NULL)
		return NULL;
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

void
audit_write(const struct botid_audit_event *ev)
{
	json_t *o = NULL;
	char *line = NULL, ts[40], sha[2 * 64 + 1];
	struct timespec now;
	struct tm tm;
	size_t len;
	int ok = 0;

	if (audit_fd == -1)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	len = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + len, sizeof(ts) - len, ".%06ldZ", now.tv_nsec / 1000);
	if ((o = json_object()) == NULL)
		goto out;
	if (json_object_set_new(o, "time", json_string(ts)) != 0 ||
	    json_object_set_new(o, "op", jstr(ev->op)) != 0 ||
	    json_object_set_new(o, "bot",
	    jstr(ev->bot)) != 0 ||
	    json_object_set_new(o, "uid", json_integer(ev->peer->uid)) != 0 ||
	    json_object_set_new(o, "gid", json_integer(ev->peer->gid)) != 0 ||
	    json_object_set_new(o, "pid", json_integer(ev->peer->pid)) != 0 ||
	    json_object_set_new(o, "exe", ev->peer->have_exe ?
	    jstr(ev->peer->exe) : json_null()) != 0 ||
	    json_object_set_new(o, "unit", ev->peer->have_unit ?
	    jstr(ev->peer->unit) : json_null()) != 0 ||
	    json_object_set_new(o, "result", json_string(ev->result)) != 0 ||
	    json_object_set_new(o, "us", json_integer((json_int_t)ev->micros)) != 0)
		goto out;
	if (ev->digest != NULL && ev->digest_len <= 64) {
		hex(ev->digest, ev->digest_len, sha);
		if (json_object_set_new(o, "hash", jstr(ev->hash)) != 0 ||
		    json_object_set_new(o, "digest", json_string(sha)) != 0)
			goto out;
	}
	if (ev->data_sha256 != NULL) {
		hex(ev->data_sha256, 32, sha);
		if (json_object_set_new(o, "sha256", json_string(sha)) != 0)
			goto out;
	}
	if (ev->detail != NULL &&
	    json_object_set_new(o, "detail", jstr(ev->detail)) != 0)
		goto out;
	if ((line = json_dumps(o, JSON_COMPACT)) == NULL)
		goto out;
	len = strlen(line);
	line[len] = '\n';	/* replaces the NUL; the line is written by length */
	if (write(audit_fd, line, len + 1) != (ssize_t)(len + 1))
		goto out;
	ok = 1;
 out:
	if (!ok)
		log_err("audit: cannot write entry for %s: %s", ev->op,
		    strerror(errno));
	free(line);
	json_decref(o);
}
