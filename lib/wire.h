/*
 * botid wire protocol v1 codec (specified in doc/protocol.md): frames of
 * a u32 big-endian length and a body; a body is an op byte, a u32 request
 * id, (in replies) a u32 status, then typed fields (u16 tag, u32 length,
 * value). Shared by the agent, libbotid and the PKCS#11 module.
 */
#ifndef BOTID_WIRE_H
#define BOTID_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/botid.h"
#include "lib/buf.h"
#include "lib/limits.h"

/* Operations (request op byte; a reply carries op | BOTID_OP_REPLY). */
enum botid_op {
	BOTID_OP_HELLO = 0x01,
	BOTID_OP_LIST = 0x02,
	BOTID_OP_PUBKEY = 0x03,
	BOTID_OP_CERT_CHAIN = 0x04,
	BOTID_OP_SIGN_DIGEST = 0x05,
	BOTID_OP_SIGN_DATA = 0x06,
	BOTID_OP_JWT = 0x07,
	BOTID_OP_INVENTORY = 0x08,
	BOTID_OP_ROTATE = 0x09,
	BOTID_OP_DEPROVISION = 0x0a,
};
#define BOTID_OP_REPLY		0x80u

/* Field tags. */
enum botid_tag {
	BOTID_TAG_VERSION = 1,		/* u32 */
	BOTID_TAG_AGENT = 2,		/* string: agent name and version */
	BOTID_TAG_BOT = 3,		/* string: bot name */
	BOTID_TAG_KEY_TYPE = 4,		/* string: ecdsa-p256 ... */
	BOTID_TAG_BACKEND = 5,		/* string: tpm | pkcs11 */
	BOTID_TAG_PUBKEY = 6,		/* bytes: DER SubjectPublicKeyInfo */
	BOTID_TAG_CERT = 7,		/* bytes: DER certificate, repeatable */
	BOTID_TAG_HASH = 8,		/* u32: enum botid_hash */
	BOTID_TAG_DIGEST = 9,		/* bytes */
	BOTID_TAG_DATA = 10,		/* bytes */
	BOTID_TAG_SCHEME = 11,		/* u32: enum botid_scheme */
	BOTID_TAG_FORMAT = 12,		/* u32: enum botid_sig_format */
	BOTID_TAG_SIGNATURE = 13,	/* bytes */
	BOTID_TAG_MESSAGE = 14,		/* string: one-line error text */
	BOTID_TAG_AUDIENCE = 15,	/* string: JWT aud */
	BOTID_TAG_SCOPE = 16,		/* string: one JWT scope, repeatable */
	BOTID_TAG_TTL = 17,		/* u32: JWT lifetime in seconds */
	BOTID_TAG_JWT = 18,		/* string: compact JWS */
	/* INVENTORY reply: BOT opens each bot's group of fields. */
	BOTID_TAG_FINGERPRINT = 19,	/* bytes: SHA-256 of PUBKEY */
	BOTID_TAG_KEY_ATTRIBUTE = 20,	/* string: NAME=0|1, repeatable */
	BOTID_TAG_SERIAL = 21,		/* string: leaf serial, hex */
	BOTID_TAG_SPIFFE_ID = 22,	/* string */
	BOTID_TAG_NOT_AFTER = 23,	/* u64: Unix time */
	BOTID_TAG_ATTESTATION = 24,	/* string: tpm | pkcs11 */
	BOTID_TAG_ALLOW = 25,		/* string: one allow line, repeatable */
	BOTID_TAG_LAST_USED = 26,	/* u64: Unix time */
	BOTID_TAG_OPS = 27,		/* u64 */
	BOTID_TAG_DENIALS = 28,		/* u64 */
	BOTID_TAG_RENEWED = 29,		/* u64: Unix time of the last attempt */
	BOTID_TAG_RENEW_OK = 30,	/* u32: 1 ok, 0 failed */
	BOTID_TAG_ERROR = 31,		/* string: the bot's last error */
	BOTID_TAG_GENERATION = 32,	/* u32: key generation (rotations) */
	BOTID_TAG_RETRY_AFTER = 33,	/* u32: BUSY: ms before a retry */
};

/* Reply status codes (u32 on the wire; 0 is success). */
enum botid_status {
	BOTID_STATUS_OK = 0,
	BOTID_STATUS_MALFORMED = 1,	/* frame or field could not be parsed */
	BOTID_STATUS_VERSION = 2,	/* unsupported version / hello missing */
	BOTID_STATUS_UNKNOWN_OP = 3,
	BOTID_STATUS_DENIED = 4,	/* not allowed, or no such bot */
	BOTID_STATUS_UNSUPPORTED = 5,	/* parameters the key cannot do */
	BOTID_STATUS_BACKEND = 6,	/* the TPM/token failed */
	BOTID_STATUS_BUSY = 7,		/* too much in flight; retry */
	BOTID_STATUS_TOO_LARGE = 8,
	BOTID_STATUS_INTERNAL = 9,
	BOTID_STATUS_NO_CERT = 10,	/* the bot has no certificate yet */
	BOTID_STATUS_UNAVAILABLE = 11,	/* its TPM/token is down; retry later */
	BOTID_STATUS_AUDIT_UNAVAILABLE = 12, /* the audit log cannot be
					 * written: nothing was signed */
};

/* A decoded request. Pointers point into the frame body given to decode. */
struct botid_request {
	uint8_t		 op;
	uint32_t	 id;
	uint32_t	 version;		/* HELLO */
	char		 bot[BOTID_MAX_BOT_NAME + 1];
	uint32_t	 hash;			/* 0 if absent */
	uint32_t	 scheme;
	uint32_t	 format;
	const uint8_t	*digest;
	size_t		 digest_len;
	const uint8_t	*data;
	size_t		 data_len;
	char		 audience[BOTID_MAX_AUDIENCE + 1];	/* JWT */
	char		 scopes[BOTID_MAX_SCOPES][BOTID_MAX_SCOPE + 1];
	size_t		 nscopes;
	uint32_t	 ttl;			/* 0 if absent */
	uint32_t	 present;		/* bit (1 << tag) per field seen */
};

/*
 * Looks at the front of b for a complete frame without consuming it. On 0
 * *body_len is the body length and the whole frame is in b. Returns
 * BOTID_ERR_INCOMPLETE (wait for more), or BOTID_ERR_TOO_LARGE /
 * BOTID_ERR_INVALID (length over max or zero: drop the peer).
 */
int	wire_frame_peek(const struct botid_buf *b, size_t max, size_t *body_len);

/*
 * Decodes a request body of len bytes at p into *req. Unknown ops decode
 * to BOTID_ERR_UNSUPPORTED with req->op and req->id filled so that an
 * error reply can be sent. Unknown, duplicate or misplaced fields, bad
 * bot names, trailing bytes and missing required fields give
 * BOTID_ERR_INVALID; req->id is filled whenever the header was readable.
 * Also BOTID_ERR_INVALID: a u32 field not 4 bytes long, a HASH, SCHEME or
 * FORMAT out of range, a DIGEST whose length is not its HASH's, an
 * AUDIENCE not 1..BOTID_MAX_AUDIENCE printable ASCII bytes, an invalid
 * SCOPE or more than BOTID_MAX_SCOPES of them (SCOPE alone may repeat),
 * a TTL of 0; a body
 * over BOTID_MAX_FRAME gives BOTID_ERR_TOO_LARGE. On error only op and
 * id are set; on success req's pointers point into p.
 */
int	wire_decode_request(const uint8_t *p, size_t len,
	    struct botid_request *req);

/*
 * Checks a bot name: 1..64 bytes of [A-Za-z0-9._-], not starting with '.'.
 * Returns 1 if valid, 0 if not.
 */
int	wire_bot_name_valid(const char *name, size_t len);

/*
 * Checks a JWT audience: 1..BOTID_MAX_AUDIENCE bytes of printable ASCII
 * without space, '"' or '\\'. Returns 1 if valid, 0 if not.
 */
int	wire_audience_valid(const char *aud, size_t len);

/*
 * Checks a JWT scope: 1..BOTID_MAX_SCOPE bytes of [A-Za-z0-9:._/-].
 * Returns 1 if valid, 0 if not.
 */
int	wire_scope_valid(const char *scope, size_t len);

/*
 * Starts a frame (reply when status is not NULL, request otherwise) in
 * out, remembering where its length goes in *mark. Fields follow with
 * wire_put_*; wire_frame_end() patches the length. On any error the frame
 * must be abandoned with wire_frame_abort(). The mark counts from out's
 * read position, so nothing may be consumed from out while a frame is
 * open. A failed wire_put_* leaves out as it was. Errors: those of
 * buf_reserve(); wire_frame_end() gives BOTID_ERR_TOO_LARGE for a body
 * over BOTID_MAX_FRAME and BOTID_ERR_INVALID for a bad mark.
 */
int	wire_frame_begin(struct botid_buf *out, uint8_t op, uint32_t id,
	    const uint32_t *status, size_t *mark);
int	wire_put_u32(struct botid_buf *out, uint16_t tag, uint32_t v);
int	wire_put_u64(struct botid_buf *out, uint16_t tag, uint64_t v);
int	wire_put_bytes(struct botid_buf *out, uint16_t tag, const void *p,
	    size_t n);
int	wire_put_string(struct botid_buf *out, uint16_t tag, const char *s);
int	wire_frame_end(struct botid_buf *out, size_t mark);
void	wire_frame_abort(struct botid_buf *out, size_t mark);

/*
 * Encodes a whole error reply (op | BOTID_OP_REPLY) with a one-line
 * message (NULL: none). A status of OK gives BOTID_ERR_INVALID; on any
 * error out is left as it was.
 */
int	wire_put_error(struct botid_buf *out, uint8_t op, uint32_t id,
	    uint32_t status, const char *message);

/*
 * A BUSY reply with RETRY_AFTER (milliseconds after which a retry may be
 * served) and a one-line message (NULL: none). Errors as wire_put_error();
 * out is left as it was.
 */
int	wire_put_busy(struct botid_buf *out, uint8_t op, uint32_t id,
	    uint32_t retry_ms, const char *message);

/*
 * Reply header reader for clients: reads op, id and status from a body
 * view; fields are then read one by one with wire_get_field(), which
 * returns BOTID_ERR_INCOMPLETE at the clean end of the body and
 * BOTID_ERR_INVALID on a truncated field. Any tag is returned: clients
 * skip the ones they do not know. The header reader gives
 * BOTID_ERR_INVALID for a body under 9 bytes or an op without the reply
 * bit. On error nothing is consumed and the outputs are zero.
 */
int	wire_get_reply_header(struct botid_buf *body, uint8_t *op,
	    uint32_t *id, uint32_t *status);
int	wire_get_field(struct botid_buf *body, uint16_t *tag,
	    const uint8_t **value, size_t *len);

/*
 * Reads a u32 or u64 field value (exactly 4 or 8 big-endian bytes) for
 * clients. Errors: BOTID_ERR_INVALID (another length); *v is then 0.
 */
int	wire_field_u32(const uint8_t *value, size_t len, uint32_t *v);
int	wire_field_u64(const uint8_t *value, size_t len, uint64_t *v);

/* Maps a status to a BOTID_ERR_* code, and back. */
int	wire_status_to_err(uint32_t status);
uint32_t wire_err_to_status(int r);

/* Returns the digest length of a botid_hash, or 0 if unknown. */
size_t	wire_hash_len(uint32_t hash);

#endif /* BOTID_WIRE_H */
