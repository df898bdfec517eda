/*
 * Small files read with a size cap and written atomically (temporary name,
 * fsync, rename, fsync of the directory), for state and certificates.
 */
#ifndef BOTID_FILE_H
#define BOTID_FILE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the regular file at path, refusing one larger than max bytes. On
 * success *data (malloc'd, NUL-terminated after *len bytes, owned by the
 * caller) holds its content. Errors: BOTID_ERR_NOT_FOUND (no such file),
 * _TOO_LARGE, _IO (errno set), _ALLOC.
 */
int	file_read(const char *path, size_t max, uint8_t **data, size_t *len);

/*
 * Replaces the file at path with len bytes of data, created with mode
 * (before umask), so that a crash leaves either the old or the new
 * content. Errors: BOTID_ERR_IO (errno set, logged), _ALLOC.
 */
int	file_write_atomic(const char *path, const void *data, size_t len,
	    mode_t mode);

/* Writes all len bytes to fd, retrying on EINTR; -1 with errno on error. */
int	file_write_all(int fd, const void *p, size_t len);

#endif /* BOTID_FILE_H */
