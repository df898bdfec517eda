/*
 * Bounded byte buffers. All length checks are written as subtractions from
 * what is available so that no untrusted length can overflow a size_t.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lib/buf.h"
#include "lib/error.h"

#define BUF_MIN_CAP	256

void
buf_init(struct botid_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
buf_init_view(struct botid_buf *b, const void *p, size_t len)
{
	memset(b, 0, sizeof(*b));
	/* A view never writes; the cast only lets it share the struct. */
	b->data = (uint8_t *)(uintptr_t)p;
	b->cap = b->len = b->max = len;
	b->readonly = 1;
}

void
buf_set_secret(struct botid_buf *b)
{
	b->secret = 1;
}

void
buf_reset(struct botid_buf *b)
{
	if (b == NULL)
		return;
	if (!b->readonly) {
		if (b->secret && b->data != NULL)
			OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	} else {
		b->data = NULL;
		b->cap = b->max = 0;
	}
	b->off = b->len = 0;
}

size_t
buf_len(const struct botid_buf *b)
{
	return b->len - b->off;
}

const uint8_t *
buf_ptr(const struct botid_buf *b)
{
	return b->data == NULL ? (const uint8_t *)"" : b->data + b->off;
}

void
buf_compact(struct botid_buf *b)
{
	size_t n;

	if (b->readonly || b->off == 0)
		return;
	n = b->len - b->off;
	if (n > 0)
		memmove(b->data, b->data + b->off, n);
	if (b->secret)
		OPENSSL_cleanse(b->data + n, b->len - n);
	b->off = 0;
	b->len = n;
}

static int
buf_grow(struct botid_buf *b, size_t need)
{
	size_t ncap;
	uint8_t *n;

	if (need <= b->cap)
		return 0;
	if (need > b->max)
		return BOTID_ERR_TOO_LARGE;
	ncap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (ncap < need)
		ncap = ncap > b->max / 2 ? b->max : ncap * 2;
	if (ncap > b->max)
		ncap = b->max;
	if (b->secret) {
		/* realloc could leave a copy of the secret behind: move by hand. */
		if ((n = malloc(ncap)) == NULL)
			return BOTID_ERR_ALLOC;
		if (b->data != NULL) {
			memcpy(n, b->data, b->len);
			OPENSSL_cleanse(b->data, b->cap);
			free(b->data);
		}
	} else if ((n = realloc(b->data, ncap)) == NULL)
		return BOTID_ERR_ALLOC;
	b->data = n;
	b->cap = ncap;
	return 0;
}

int
buf_reserve(struct botid_buf *b, size_t n, uint8_t **p)
{
	int r;

	*p = NULL;
	if (b->readonly)
		return BOTID_ERR_INVALID;
	/* Nothing to reserve: a buffer that never held data has no storage
	 * to point into (NULL + 0 is undefined behaviour). */
	if (n == 0) {
		if (b->data != NULL)
			*p = b->data + b->len;
		return 0;
	}
	if (n > b->max || b->len > b->max - n) {
		/* Reclaim consumed space before declaring the buffer full. */
		buf_compact(b);
		if (n > b->max || b->len > b->max - n)
			return BOTID_ERR_TOO_LARGE;
	}
	if ((r = buf_grow(b, b->len + n)) != 0)
		return r;
	*p = b->data + b->len;
	b->len += n;
	return 0;
}

int
buf_unreserve(struct botid_buf *b, size_t n)
{
	if (b->readonly || n > b->len - b->off)
		return BOTID_ERR_INVALID;
	b->len -= n;
	return 0;
}

int
buf_put(struct botid_buf *b, const void *p, size_t n)
{
	uint8_t *d;
	int r;

	if ((r = buf_reserve(b, n, &d)) != 0)
		return r;
	if (n > 0)
		memcpy(d, p, n);
	return 0;
}

int
buf_put_u8(struct botid_buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

int
buf_put_u16(struct botid_buf *b, uint16_t v)
{
	uint8_t d[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	return buf_put(b, d, sizeof(d));
}

int
buf_put_u32(struct botid_buf *b, uint32_t v)
{
	uint8_t d[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
	    (uint8_t)(v >> 8), (uint8_t)v };

	return buf_put(b, d, sizeof(d));
}

int
buf_put_u64(struct botid_buf *b, uint64_t v)
{
	int r;

	if ((r = buf_put_u32(b, (uint32_t)(v >> 32))) != 0)
		return r;
	return buf_put_u32(b, (uint32_t)v);
}

int
buf_put_string(struct botid_buf *b, const void *p, size_t n)
{
	size_t start = b->len;
	int r;

	if (n > UINT32_MAX)
		return BOTID_ERR_TOO_LARGE;
	if ((r = buf_put_u32(b, (uint32_t)n)) != 0)
		return r;
	if ((r = buf_put(b, p, n)) != 0) {
		b->len = start;
		return r;
	}
	return 0;
}

int
buf_poke_u32(struct botid_buf *b, size_t pos, uint32_t v)
{
	if (b->readonly || pos > b->len || b->len - pos < 4)
		return BOTID_ERR_INVALID;
	b->data[pos] = (uint8_t)(v >> 24);
	b->data[pos + 1] = (uint8_t)(v >> 16);
	b->data[pos + 2] = (uint8_t)(v >> 8);
	b->data[pos + 3] = (uint8_t)v;
	return 0;
}

int
buf_get_direct(struct botid_buf *b, const uint8_t **p, size_t n)
{
	if (n > b->len - b->off)
		return BOTID_ERR_INCOMPLETE;
	*p = buf_ptr(b);
	b->off += n;
	return 0;
}

int
buf_get(struct botid_buf *b, void *p, size_t n)
{
	const uint8_t *s;
	int r;

	if ((r = buf_get_direct(b, &s, n)) != 0)
		return r;
	if (n > 0)
		memcpy(p, s, n);
	return 0;
}

int
buf_get_u8(struct botid_buf *b, uint8_t *v)
{
	return buf_get(b, v, 1);
}

int
buf_get_u16(struct botid_buf *b, uint16_t *v)
{
	const uint8_t *p;
	int r;

	if ((r = buf_get_direct(b, &p, 2)) != 0)
		return r;
	*v = (uint16_t)((p[0] << 8) | p[1]);
	return 0;
}

int
buf_find_byte(const struct botid_buf *b, uint8_t c, size_t *off)
{
	const uint8_t *p;

	if (b->len == b->off)
		return BOTID_ERR_INCOMPLETE;
	p = memchr(buf_ptr(b), c, b->len - b->off);
	if (p == NULL)
		return BOTID_ERR_INCOMPLETE;
	*off = (size_t)(p - buf_ptr(b));
	return 0;
}

int
buf_peek_u32(const struct botid_buf *b, uint32_t *v)
{
	const uint8_t *p;

	if (b->len - b->off < 4)
		return BOTID_ERR_INCOMPLETE;
	p = buf_ptr(b);
	*v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | (uint32_t)p[3];
	return 0;
}

int
buf_get_u32(struct botid_buf *b, uint32_t *v)
{
	int r;

	if ((r = buf_peek_u32(b, v)) != 0)
		return r;
	b->off += 4;
	return 0;
}

int
buf_get_u64(struct botid_buf *b, uint64_t *v)
{
	uint32_t hi = 0, lo = 0;
	int r;

	if (b->len - b->off < 8)
		return BOTID_ERR_INCOMPLETE;
	if ((r = buf_get_u32(b, &hi)) != 0 || (r = buf_get_u32(b, &lo)) != 0)
		return r;
	*v = ((uint64_t)hi << 32) | lo;
	return 0;
}

int
buf_get_string_direct(struct botid_buf *b, const uint8_t **p, size_t *n,
    size_t max)
{
	uint32_t len;
	size_t avail;
	int r;

	if ((r = buf_peek_u32(b, &len)) != 0)
		return r;
	if (len > max)
		return BOTID_ERR_TOO_LARGE;
	avail = b->len - b->off;
	if (len > avail - 4)
		return BOTID_ERR_INCOMPLETE;
	b->off += 4;
	*p = buf_ptr(b);
	*n = len;
	b->off += len;
	return 0;
}

int
buf_consume(struct botid_buf *b, size_t n)
{
	if (n > b->len - b->off)
		return BOTID_ERR_INCOMPLETE;
	b->off += n;
	return 0;
}
