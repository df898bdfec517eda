/*
 * Bounded byte buffers: the only place botid does arithmetic on untrusted
 * lengths. Readers consume from the front and fail cleanly at the end of
 * data; writers append and fail cleanly at the buffer's maximum size.
 * Integers are big-endian on the wire.
 */
#ifndef BOTID_BUF_H
#define BOTID_BUF_H

#include <stddef.h>
#include <stdint.h>

struct botid_buf {
	uint8_t	*data;		/* storage; NULL until first write */
	size_t	 cap;		/* bytes allocated */
	size_t	 off;		/* read position */
	size_t	 len;		/* end of valid data */
	size_t	 max;		/* cap may never exceed this */
	int	 secret;	/* wipe storage on reset, free and growth */
	int	 readonly;	/* a view over memory it does not own */
};

/* Prepares an empty growable buffer that will never hold more than max bytes. */
void	buf_init(struct botid_buf *b, size_t max);

/* Prepares a read-only view of len bytes at p; the caller keeps p alive. */
void	buf_init_view(struct botid_buf *b, const void *p, size_t len);

/* Marks b as holding secrets: its storage is wiped before every release. */
void	buf_set_secret(struct botid_buf *b);

/* Releases storage (wiping it if secret) and empties b; b stays usable. */
void	buf_reset(struct botid_buf *b);

/* Returns the number of unread bytes. */
size_t	buf_len(const struct botid_buf *b);

/* Returns a pointer to the unread bytes (valid until the next write). */
const uint8_t *buf_ptr(const struct botid_buf *b);

/* Discards consumed bytes, moving unread ones to the front. */
void	buf_compact(struct botid_buf *b);

/*
 * Makes room for n more bytes and returns a pointer to them in *p; the
 * bytes count as written. Returns BOTID_ERR_TOO_LARGE past max,
 * BOTID_ERR_ALLOC, or BOTID_ERR_INVALID on a read-only view.
 */
int	buf_reserve(struct botid_buf *b, size_t n, uint8_t **p);

/* Removes the last n written bytes (after a failed read(2), say). */
int	buf_unreserve(struct botid_buf *b, size_t n);

/* Appenders: same errors as buf_reserve(). */
int	buf_put(struct botid_buf *b, const void *p, size_t n);
int	buf_put_u8(struct botid_buf *b, uint8_t v);
int	buf_put_u16(struct botid_buf *b, uint16_t v);
int	buf_put_u32(struct botid_buf *b, uint32_t v);
int	buf_put_u64(struct botid_buf *b, uint64_t v);
/* Appends a u32 length and then the n bytes at p. */
int	buf_put_string(struct botid_buf *b, const void *p, size_t n);

/* Overwrites 4 bytes at absolute offset pos (which must already be written). */
int	buf_poke_u32(struct botid_buf *b, size_t pos, uint32_t v);

/*
 * Readers consume from the front. On BOTID_ERR_INCOMPLETE nothing is
 * consumed and the output is untouched.
 */
int	buf_get(struct botid_buf *b, void *p, size_t n);
int	buf_get_u8(struct botid_buf *b, uint8_t *v);
int	buf_get_u16(struct botid_buf *b, uint16_t *v);
int	buf_get_u32(struct botid_buf *b, uint32_t *v);
int	buf_get_u64(struct botid_buf *b, uint64_t *v);
/* Reads n bytes without copying: *p points into b's storage. */
int	buf_get_direct(struct botid_buf *b, const uint8_t **p, size_t n);
/*
 * Reads a u32 length and that many bytes without copying. Fails with
 * BOTID_ERR_TOO_LARGE if the length exceeds max (checked before the data
 * need be present), or BOTID_ERR_INCOMPLETE.
 */
int	buf_get_string_direct(struct botid_buf *b, const uint8_t **p,
	    size_t *n, size_t max);
/*
 * Finds the first byte c among the unread bytes, without consuming
 * anything: *off is its offset from buf_ptr(). BOTID_ERR_INCOMPLETE if
 * there is none (yet).
 */
int	buf_find_byte(const struct botid_buf *b, uint8_t c, size_t *off);
/* Reads a big-endian u32 without consuming it. */
int	buf_peek_u32(const struct botid_buf *b, uint32_t *v);
/* Consumes n bytes. */
int	buf_consume(struct botid_buf *b, size_t n);

#endif /* BOTID_BUF_H */
