/* Lowercase hexadecimal text of bytes. */
#ifndef BOTID_LIB_HEX_H
#define BOTID_LIB_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 2n digits of p[0..n) and a NUL into out[2n + 1]. */
void	hex_encode(const uint8_t *p, size_t n, char *out);

#endif /* BOTID_LIB_HEX_H */
