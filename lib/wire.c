/*
 * botid wire protocol v1 codec (doc/protocol.md). The request decoder is
 * the agent's first contact with untrusted bytes: it reads only through
 * the bounded buffer API and accepts exactly the fields each op allows.
 */
#include <string.h>

#include "lib/buf.h"
#include "lib/error.h"
#include "lib/wire.h"

#define FIELD_BIT(tag)		(1u << (tag))
#define FIELD_HEADER_LEN	6u	/* u16 tag, u32 length */
#define REQUEST_HEADER_LEN	5u	/* u8 op, u32 id */
#define REPLY_HEADER_LEN	9u	/* u8 op, u32 id, u32 status */

/* Which fields each request op may carry, and which it must. */
struct op_fields {
	uint8_t		op;
	uint32_t	allowed;
	uint32_t	required;
};

static const struct op_fields op_fields[] = {
	{ BOTID_OP_HELLO,
	    FIELD_BIT(BOTID_TAG_VERSION),
	    FIELD_BIT(BOTID_TAG_VERSION) },
	{ BOTID_OP_LIST, 0, 0 },
	{ BOTID_OP_PUBKEY,
	    FIELD_BIT(BOTID_TAG_BOT),
	    FIELD_BIT(BOTID_TAG_BOT) },
	{ BOTID_OP_CERT_CHAIN,
	    FIELD_BIT(BOTID_TAG_BOT),
	    FIELD_BIT(BOTID_TAG_BOT) },
	{ BOTID_OP_SIGN_DIGEST,
	    FIELD_BIT(BOTID_TAG_BOT) | FIELD_BIT(BOTID_TAG_HASH) |
	    FIELD_BIT(BOTID_TAG_DIGEST) | FIELD_BIT(BOTID_TAG_SCHEME) |
	    FIELD_BIT(BOTID_TAG_FORMAT),
	    FIELD_BIT(BOTID_TAG_BOT) | FIELD_BIT(BOTID_TAG_HASH) |
	    FIELD_BIT(BOTID_TAG_DIGEST) },
	{ BOTID_OP_SIGN_DATA,
	    FIELD_BIT(BOTID_TAG_BOT) | FIELD_BIT(BOTID_TAG_DATA) |
	    FIELD_BIT(BOTID_TAG_HASH) | FIELD_BIT(BOTID_TAG_SCHEME) |
	    FIELD_BIT(BOTID_TAG_FORMAT),
	    FIELD_BIT(BOTID_TAG_BOT) | FIELD_BIT(BOTID_TAG_DATA) },
	{ BOTID_OP_JWT,
	    FIELD_BIT(BOTID_TAG_BOT) | FIELD_BIT(BOTID_TAG_AUDIENCE) |
	    FIELD_BIT(BOTID_TAG_SCOPE) | FIELD_BIT(BOTID_TAG_TTL) |
	    FIELD_BIT(BOTID_TAG_SCHEME),
	    FIELD_BIT(BOTID_TAG_BOT) | FIELD_BIT(BOTID_TAG_AUDIENCE) },
	{ BOTID_OP_INVENTORY, 0, 0 },
	{ BOTID_OP_ROTATE,
	    FIELD_BIT(BOTID_TAG_BOT),
	    FIELD_BIT(BOTID_TAG_BOT) },
	{ BOTID_OP_DEPROVISION, 0, 0 },
};

int
wire_frame_peek(const struct botid_buf *b, size_t max, size_t *body_len)
{
	uint32_t len;
	int r;

	*body_len = 0;
	if ((r = buf_peek_u32(b, &len)) != 0)
		return r;
	/* Judge the declared length before a single body byte is awaited. */
	if (len == 0)
		return BOTID_ERR_INVALID;
	if (len > max)
		return BOTID_ERR_TOO_LARGE;
	if (len > buf_len(b) - 4)
		return BOTID_ERR_INCOMPLETE;
	*body_len = len;
	return 0;
}

int
wire_bot_name_valid(const char *name, size_t len)
{
	size_t i;
	char c;

	if (name == NULL || len == 0 || len > BOTID_MAX_BOT_NAME ||
	    name[0] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		c = name[i];
		/* Spelled out: isalnum() would follow the locale. */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
wire_audience_valid(const char *aud, size_t len)
{
	size_t i;

	if (aud == NULL || len == 0 || len > BOTID_MAX_AUDIENCE)
		return 0;
	for (i = 0; i < len; i++)
		if (aud[i] <= ' ' || aud[i] > '~' || aud[i] == '"' ||
		    aud[i] == '\\')
			return 0;
	return 1;
}

int
wire_scope_valid(const char *scope, size_t len)
{
	size_t i;
	char c;

	if (scope == NULL || len == 0 || len > BOTID_MAX_SCOPE)
		return 0;
	for (i = 0; i < len; i++) {
		c = scope[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == ':' || c == '.' ||
		    c == '_' || c == '/' || c == '-'))
			return 0;
	}
	return 1;
}

size_t
wire_hash_len(uint32_t hash)
{
	switch (hash) {
	case BOTID_HASH_SHA256:
		return 32;
	case BOTID_HASH_SHA384:
		return 48;
	case BOTID_HASH_SHA512:
		return 64;
	}
	return 0;
}

/* A u32 field value is exactly four big-endian bytes, no more, no less. */
static int
field_u32(const uint8_t *v, size_t len, uint32_t *out)
{
	struct botid_buf view;

	if (len != 4)
		return BOTID_ERR_INVALID;
	buf_init_view(&view, v, len);
	return buf_get_u32(&view, out) == 0 ? 0 : BOTID_ERR_INVALID;
}

/* Stores one field of an already-checked tag into req. */
static int
decode_field(struct botid_request *req, uint16_t tag, const uint8_t *v,
    size_t len)
{
	int r;

	switch (tag) {
	case BOTID_TAG_VERSION:
		return field_u32(v, len, &req->version);
	case BOTID_TAG_HASH:
		if ((r = field_u32(v, len, &req->hash)) != 0)
			return r;
		return wire_hash_len(req->hash) != 0 ? 0 : BOTID_ERR_INVALID;
	case BOTID_TAG_SCHEME:
		if ((r = field_u32(v, len, &req->scheme)) != 0)
			return r;
		return req->scheme <= BOTID_SCHEME_ECDSA ? 0 : BOTID_ERR_INVALID;
	case BOTID_TAG_FORMAT:
		if ((r = field_u32(v, len, &req->format)) != 0)
			return r;
		return req->format <= BOTID_FORMAT_RAW ? 0 : BOTID_ERR_INVALID;
	case BOTID_TAG_BOT:
		if (!wire_bot_name_valid((const char *)v, len))
			return BOTID_ERR_INVALID;
		memcpy(req->bot, v, len);
		req->bot[len] = '\0';
		return 0;
	case BOTID_TAG_DIGEST:
		if (len > BOTID_MAX_DIGEST)
			return BOTID_ERR_INVALID;
		req->digest = v;
		req->digest_len = len;
		return 0;
	case BOTID_TAG_DATA:
		req->data = v;
		req->data_len = len;
		return 0;
	case BOTID_TAG_AUDIENCE:
		if (!wire_audience_valid((const char *)v, len))
			return BOTID_ERR_INVALID;
		memcpy(req->audience, v, len);
		req->audience[len] = '\0';
		return 0;
	case BOTID_TAG_SCOPE:
		if (req->nscopes >= BOTID_MAX_SCOPES ||
		    !wire_scope_valid((const char *)v, len))
			return BOTID_ERR_INVALID;
		memcpy(req->scopes[req->nscopes], v, len);
		req->scopes[req->nscopes][len] = '\0';
		req->nscopes++;
		return 0;
	case BOTID_TAG_TTL:
		if ((r = field_u32(v, len, &req->ttl)) != 0)
			return r;
		return req->ttl != 0 ? 0 : BOTID_ERR_INVALID;
	}
	/* The op's allowed mask let through a tag this switch forgot. */
	return BOTID_ERR_INTERNAL;
}

int
wire_decode_request(const uint8_t *p, size_t len, struct botid_request *req)
{
	const struct op_fields *of = NULL;
	struct botid_buf b;
	const uint8_t *v;
	size_t i, vlen, nfields = 0;
	uint32_t id = 0, bit;
	uint16_t tag;
	uint8_t op = 0;
	int r = BOTID_ERR_INTERNAL;

	memset(req, 0, sizeof(*req));
	if (p == NULL && len != 0)
		return BOTID_ERR_INVALID;
	buf_init_view(&b, p, len);
	if (buf_get_u8(&b, &op) != 0)
		return BOTID_ERR_INVALID;
	req->op = op;
	if (buf_get_u32(&b, &id) != 0)
		return BOTID_ERR_INVALID;
	req->id = id;
	/* Past this point op and id are kept so that an error can be sent. */
	if (len > BOTID_MAX_FRAME) {
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	/* A reply op (0x80 set) matches no entry: it is an unknown request. */
	for (i = 0; i < sizeof(op_fields) / sizeof(op_fields[0]); i++) {
		if (op_fields[i].op == op) {
			of = &op_fields[i];
			break;
		}
	}
	if (of == NULL) {
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	while (buf_len(&b) > 0) {
		if (nfields >= BOTID_MAX_FIELDS) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		nfields++;
		if (buf_get_u16(&b, &tag) != 0 ||
		    buf_get_string_direct(&b, &v, &vlen, BOTID_MAX_FRAME) != 0) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		/* Unknown, misplaced and repeated fields are all refused. */
		bit = tag < 32 ? FIELD_BIT(tag) : 0;
		if ((of->allowed & bit) == 0 || ((req->present & bit) != 0 &&
		    tag != BOTID_TAG_SCOPE)) {
			r = BOTID_ERR_INVALID;
			goto out;
		}
		if ((r = decode_field(req, tag, v, vlen)) != 0)
			goto out;
		req->present |= bit;
	}
	if ((req->present & of->required) != of->required) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	/* A digest of the wrong size for its hash can never be signed. */
	if (op == BOTID_OP_SIGN_DIGEST &&
	    req->digest_len != wire_hash_len(req->hash)) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	r = 0;
 out:
	if (r != 0) {
		/* Half-decoded fields must not be mistaken for a request. */
		memset(req, 0, sizeof(*req));
		req->op = op;
		req->id = id;
	}
	return r;
}

int
wire_frame_begin(struct botid_buf *out, uint8_t op, uint32_t id,
    const uint32_t *status, size_t *mark)
{
	size_t start = buf_len(out);
	int r;

	*mark = 0;
	/*
	 * The mark counts from the read position, not from the start of the
	 * storage: a write may compact consumed bytes away and move the
	 * frame, but never past the unread bytes before it.
	 */
	if ((r = buf_put_u32(out, 0)) != 0 ||
	    (r = buf_put_u8(out, status != NULL ?
	    (uint8_t)(op | BOTID_OP_REPLY) : op)) != 0 ||
	    (r = buf_put_u32(out, id)) != 0 ||
	    (status != NULL && (r = buf_put_u32(out, *status)) != 0)) {
		(void)buf_unreserve(out, buf_len(out) - start);
		return r;
	}
	*mark = start;
	return 0;
}

int
wire_put_bytes(struct botid_buf *out, uint16_t tag, const void *p, size_t n)
{
	size_t start = buf_len(out);
	int r;

	if (p == NULL && n != 0)
		return BOTID_ERR_INVALID;
	if (n > BOTID_MAX_FRAME)
		return BOTID_ERR_TOO_LARGE;
	/* All or nothing, so that a failed field leaves the frame as it was. */
	if ((r = buf_put_u16(out, tag)) != 0 ||
	    (r = buf_put_string(out, p, n)) != 0) {
		(void)buf_unreserve(out, buf_len(out) - start);
		return r;
	}
	return 0;
}

int
wire_put_u32(struct botid_buf *out, uint16_t tag, uint32_t v)
{
	uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
	    (uint8_t)(v >> 8), (uint8_t)v };

	return wire_put_bytes(out, tag, be, sizeof(be));
}

int
wire_put_u64(struct botid_buf *out, uint16_t tag, uint64_t v)
{
	uint8_t be[8];
	size_t i;

	for (i = 0; i < sizeof(be); i++)
		be[i] = (uint8_t)(v >> (56 - 8 * i));
	return wire_put_bytes(out, tag, be, sizeof(be));
}

int
wire_put_string(struct botid_buf *out, uint16_t tag, const char *s)
{
	if (s == NULL)
		return BOTID_ERR_INVALID;
	return wire_put_bytes(out, tag, s, strlen(s));
}

int
wire_frame_end(struct botid_buf *out, size_t mark)
{
	size_t n = buf_len(out), body;

	if (mark > n || n - mark < 4 + REQUEST_HEADER_LEN)
		return BOTID_ERR_INVALID;
	body = n - mark - 4;
	/* Never emit a frame that the peer must refuse. */
	if (body > BOTID_MAX_FRAME)
		return BOTID_ERR_TOO_LARGE;
	/* buf_poke_u32() wants a storage offset; the mark is read-relative. */
	return buf_poke_u32(out, out->off + mark, (uint32_t)body);
}

void
wire_frame_abort(struct botid_buf *out, size_t mark)
{
	size_t n = buf_len(out);

	if (mark <= n)
		(void)buf_unreserve(out, n - mark);
}

int
wire_put_error(struct botid_buf *out, uint8_t op, uint32_t id,
    uint32_t status, const char *message)
{
	size_t mark;
	int r;

	if (status == BOTID_STATUS_OK)
		return BOTID_ERR_INVALID;
	if ((r = wire_frame_begin(out, op, id, &status, &mark)) != 0)
		return r;
	if ((message != NULL &&
	    (r = wire_put_string(out, BOTID_TAG_MESSAGE, message)) != 0) ||
	    (r = wire_frame_end(out, mark)) != 0) {
		wire_frame_abort(out, mark);
		return r;
	}
	return 0;
}

int
wire_put_busy(struct botid_buf *out, uint8_t op, uint32_t id,
    uint32_t retry_ms, const char *message)
{
	uint32_t status = BOTID_STATUS_BUSY;
	size_t mark;
	int r;

	if ((r = wire_frame_begin(out, op, id, &status, &mark)) != 0)
		return r;
	if ((r = wire_put_u32(out, BOTID_TAG_RETRY_AFTER, retry_ms)) != 0 ||
	    (message != NULL &&
	    (r = wire_put_string(out, BOTID_TAG_MESSAGE, message)) != 0) ||
	    (r = wire_frame_end(out, mark)) != 0) {
		wire_frame_abort(out, mark);
		return r;
	}
	return 0;
}

int
wire_get_reply_header(struct botid_buf *body, uint8_t *op, uint32_t *id,
    uint32_t *status)
{
	struct botid_buf probe = *body;
	uint8_t o;
	uint32_t i, s;

	*op = 0;
	*id = 0;
	*status = 0;
	/* Read through a copy so that a refused header consumes nothing. */
	if (buf_get_u8(&probe, &o) != 0 || buf_get_u32(&probe, &i) != 0 ||
	    buf_get_u32(&probe, &s) != 0)
		return BOTID_ERR_INVALID;
	/* Only the agent sends replies; anything else is not one. */
	if ((o & BOTID_OP_REPLY) == 0)
		return BOTID_ERR_INVALID;
	*body = probe;
	*op = o;
	*id = i;
	*status = s;
	return 0;
}

int
wire_get_field(struct botid_buf *body, uint16_t *tag, const uint8_t **value,
    size_t *len)
{
	struct botid_buf probe = *body;
	const uint8_t *v;
	uint16_t t;
	size_t n;

	*tag = 0;
	*value = NULL;
	*len = 0;
	if (buf_len(body) == 0)
		return BOTID_ERR_INCOMPLETE;
	/* Read through a copy: a truncated field must consume nothing. */
	if (buf_get_u16(&probe, &t) != 0 ||
	    buf_get_string_direct(&probe, &v, &n, BOTID_MAX_FRAME) != 0)
		return BOTID_ERR_INVALID;
	*body = probe;
	*tag = t;
	*value = v;
	*len = n;
	return 0;
}

int
wire_field_u32(const uint8_t *value, size_t len, uint32_t *v)
{
	*v = 0;
	return field_u32(value, len, v);
}

int
wire_field_u64(const uint8_t *value, size_t len, uint64_t *v)
{
	struct botid_buf view;

	*v = 0;
	if (value == NULL || len != 8)
		return BOTID_ERR_INVALID;
	buf_init_view(&view, value, len);
	return buf_get_u64(&view, v) == 0 ? 0 : BOTID_ERR_INVALID;
}

int
wire_status_to_err(uint32_t status)
{
	switch (status) {
	case BOTID_STATUS_OK:
		return 0;
	case BOTID_STATUS_MALFORMED:
		return BOTID_ERR_INVALID;
	case BOTID_STATUS_VERSION:
		return BOTID_ERR_VERSION;
	case BOTID_STATUS_UNKNOWN_OP:
	case BOTID_STATUS_UNSUPPORTED:
		return BOTID_ERR_UNSUPPORTED;
	case BOTID_STATUS_DENIED:
		return BOTID_ERR_DENIED;
	case BOTID_STATUS_BACKEND:
	case BOTID_STATUS_UNAVAILABLE:
		return BOTID_ERR_UNAVAILABLE;
	case BOTID_STATUS_BUSY:
		return BOTID_ERR_BUSY;
	case BOTID_STATUS_TOO_LARGE:
		return BOTID_ERR_TOO_LARGE;
	case BOTID_STATUS_INTERNAL:
		return BOTID_ERR_INTERNAL;
	case BOTID_STATUS_NO_CERT:
		return BOTID_ERR_NOT_FOUND;
	case BOTID_STATUS_AUDIT_UNAVAILABLE:
		return BOTID_ERR_AUDIT_UNAVAILABLE;
	}
	/* A status this client does not know means the peer speaks past us. */
	return BOTID_ERR_PROTOCOL;
}

uint32_t
wire_err_to_status(int r)
{
	switch (r) {
	case BOTID_OK:
		return BOTID_STATUS_OK;
	case BOTID_ERR_INVALID:
	case BOTID_ERR_PROTOCOL:
		return BOTID_STATUS_MALFORMED;
	case BOTID_ERR_UNSUPPORTED:
		return BOTID_STATUS_UNSUPPORTED;
	case BOTID_ERR_VERSION:
		return BOTID_STATUS_VERSION;
	case BOTID_ERR_DENIED:
	case BOTID_ERR_NOT_FOUND:
		/* "No such bot" must look exactly like "not yours". */
		return BOTID_STATUS_DENIED;
	case BOTID_ERR_UNAVAILABLE:
		/* An outage, never a refusal: the client may retry. */
		return BOTID_STATUS_UNAVAILABLE;
	case BOTID_ERR_TPM:
	case BOTID_ERR_PKCS11:
	case BOTID_ERR_EXPORTABLE:
		return BOTID_STATUS_BACKEND;
	case BOTID_ERR_BUSY:
		return BOTID_STATUS_BUSY;
	case BOTID_ERR_TOO_LARGE:
		return BOTID_STATUS_TOO_LARGE;
	case BOTID_ERR_AUDIT_UNAVAILABLE:
		return BOTID_STATUS_AUDIT_UNAVAILABLE;
	}
	return BOTID_STATUS_INTERNAL;
}
