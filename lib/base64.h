/*
 * Standard base64 (RFC 4648 section 4, padded), strict: decoding refuses
 * whitespace, bad characters, bad padding and lengths not a multiple of 4.
 */
#ifndef BOTID_BASE64_H
#define BOTID_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes len bytes into a malloc'd NUL-terminated string. Errors: _ALLOC. */
int	base64_encode(const uint8_t *in, size_t len, char **out);

/*
 * Decodes the NUL-terminated string in (at most max decoded bytes) into a
 * malloc'd buffer. Errors: BOTID_ERR_INVALID (not strict base64),
 * _TOO_LARGE, _ALLOC.
 */
int	base64_decode(const char *in, size_t max, uint8_t **out, size_t *len);

#endif /* BOTID_BASE64_H */
