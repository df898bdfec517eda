/*
 * Capped reads and atomic writes of small files. A crash or a full disk
 * while writing never leaves a half-written file under the final name: the
 * temporary file is removed and the old content stays.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/botid.h"
#include "lib/file.h"
#include "lib/log.h"

int
file_read(const char *path, size_t max, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd = -1, r = BOTID_ERR_IO;

	*data = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		r = errno == ENOENT ? BOTID_ERR_NOT_FOUND : BOTID_ERR_IO;
		goto out;
	}
	if (fstat(fd, &st) == -1)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	if ((uintmax_t)st.st_size > max) {
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	/* The file may shrink or grow meanwhile: read what fits, no more. */
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto out;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*data = buf;
	*len = got;
	buf = NULL;
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	free(buf);
	return r;
}

int
file_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Temporary names handed out by this process, so that no two collide. */
static unsigned long file_tmp_seq;

int
file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode)
{
	char *tmp = NULL, *dcopy = NULL;
	int fd = -1, dfd = -1, made = 0, saved, r = BOTID_ERR_IO;

	/*
	 * One name per writer: two threads (or two calls of one) replacing
	 * the same file must not write into one temporary file, or one
	 * could rename the other's half-written content into place.
	 */
	if (asprintf(&tmp, "%s.%ld.%ld.%lu.tmp", path, (long)getpid(),
	    (long)gettid(), __atomic_fetch_add(&file_tmp_seq, 1,
	    __ATOMIC_RELAXED)) == -1) {
		tmp = NULL;
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd == -1 && errno == EEXIST) {
		/* Left by a crashed process that had our pid and tid. */
		(void)unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, mode);
	}
	if (fd == -1) {
		log_err("%s: %s", tmp, strerror(errno));
		goto out;
	}
	made = 1;
	if (file_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		log_err("%s: write: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		log_err("%s: close: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		log_err("renaming %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	made = 0;
	if ((dcopy = strdup(path)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || fsync(dfd) == -1) {
		log_err("%s: fsync of its directory: %s", path,
		    strerror(errno));
		goto out;
	}
	r = 0;
 out:
	saved = errno;
	if (fd != -1)
		close(fd);
	if (dfd != -1)
		close(dfd);
	if (made)
		(void)unlink(tmp);
	free(tmp);
	free(dcopy);
	errno = saved;
	return r;
}
