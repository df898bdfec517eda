/*
 * Unit tests for lib/wire.c: known-good frames written out byte by byte
 * (the same bytes doc/protocol.md and pyclient.py produce), round trips,
 * truncation at every offset, bit and byte flips, and every error path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/error.h"
#include "lib/wire.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* SHA-256("hello"), the digest of every SIGN_DIGEST example. */
#define HELLO_SHA256 \
	0x2c, 0xf2, 0x4d, 0xba, 0x5f, 0xb0, 0xa3, 0x0e, \
	0x26, 0xe8, 0x3b, 0x2a, 0xc5, 0xb9, 0xe2, 0x9e, \
	0x1b, 0x16, 0x1e, 0x5c, 0x1f, 0xa7, 0x42, 0x5e, \
	0x73, 0x04, 0x33, 0x62, 0x93, 0x8b, 0x98, 0x24

static const uint8_t hello_sha256[32] = { HELLO_SHA256 };

/* HELLO id 1, VERSION 1. */
static const uint8_t frame_hello[] = {
	0x00, 0x00, 0x00, 0x0f,			/* body length 15 */
	0x01, 0x00, 0x00, 0x00, 0x01,		/* op HELLO, id 1 */
	0x00, 0x01, 0x00, 0x00, 0x00, 0x04,	/* VERSION, 4 bytes */
	0x00, 0x00, 0x00, 0x01,			/* 1 */
};

/* LIST id 2: no fields. */
static const uint8_t frame_list[] = {
	0x00, 0x00, 0x00, 0x05,
	0x02, 0x00, 0x00, 0x00, 0x02,
};

/* INVENTORY id 3: no fields (tests/fuzz/corpus/wire/inventory). */
static const uint8_t frame_inventory[] = {
	0x00, 0x00, 0x00, 0x05,
	0x08, 0x00, 0x00, 0x00, 0x03,
};

/* Its reply: bot "alpha", NOT_AFTER 0x69300000, OPS 7 (doc/protocol.md). */
static const uint8_t frame_inventory_reply[] = {
	0x00, 0x00, 0x00, 0x30,
	0x88, 0x00, 0x00, 0x00, 0x03,		/* INVENTORY | 0x80, id 3 */
	0x00, 0x00, 0x00, 0x00,			/* OK */
	0x00, 0x03, 0x00, 0x00, 0x00, 0x05,	/* BOT, 5 bytes */
	'a', 'l', 'p', 'h', 'a',
	0x00, 0x17, 0x00, 0x00, 0x00, 0x08,	/* NOT_AFTER, 8 bytes */
	0x00, 0x00, 0x00, 0x00, 0x69, 0x30, 0x00, 0x00,
	0x00, 0x1b, 0x00, 0x00, 0x00, 0x08,	/* OPS, 8 bytes */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
};

/* PUBKEY id 3, BOT "alpha". */
static const uint8_t frame_pubkey[] = {
	0x00, 0x00, 0x00, 0x10,
	0x03, 0x00, 0x00, 0x00, 0x03,
	0x00, 0x03, 0x00, 0x00, 0x00, 0x05,	/* BOT, 5 bytes */
	'a', 'l', 'p', 'h', 'a',
};

/* CERT_CHAIN id 4, BOT "alpha". */
static const uint8_t frame_cert_chain[] = {
	0x00, 0x00, 0x00, 0x10,
	0x04, 0x00, 0x00, 0x00, 0x04,
	0x00, 0x03, 0x00, 0x00, 0x00, 0x05,
	'a', 'l', 'p', 'h', 'a',
};

/* SIGN_DIGEST id 5, BOT "alpha", HASH sha256, DIGEST sha256("hello"). */
static const uint8_t frame_sign_digest[] = {
	0x00, 0x00, 0x00, 0x40,			/* body length 64 */
	0x05, 0x00, 0x00, 0x00, 0x05,
	0x00, 0x03, 0x00, 0x00, 0x00, 0x05,	/* BOT */
	'a', 'l', 'p', 'h', 'a',
	0x00, 0x08, 0x00, 0x00, 0x00, 0x04,	/* HASH */
	0x00, 0x00, 0x00, 0x01,			/* sha256 */
	0x00, 0x09, 0x00, 0x00, 0x00, 0x20,	/* DIGEST, 32 bytes */
	HELLO_SHA256,
};

/* SIGN_DATA id 6, BOT "alpha", DATA "hello" (defaults for the rest). */
static const uint8_t frame_sign_data[] = {
	0x00, 0x00, 0x00, 0x1b,			/* body length 27 */
	0x06, 0x00, 0x00, 0x00, 0x06,
	0x00, 0x03, 0x00, 0x00, 0x00, 0x05,
	'a', 'l', 'p', 'h', 'a',
	0x00, 0x0a, 0x00, 0x00, 0x00, 0x05,	/* DATA */
	'h', 'e', 'l', 'l', 'o',
};

/*
 * SIGN_DATA id 7 with every optional field, put first so that every
 * strict prefix misses a required field: HASH sha384, SCHEME ECDSA,
 * FORMAT raw, BOT "bot-1", DATA "hi".
 */
static const uint8_t frame_sign_data_full[] = {
	0x00, 0x00, 0x00, 0x36,			/* body length 54 */
	0x06, 0x00, 0x00, 0x00, 0x07,
	0x00, 0x08, 0x00, 0x00, 0x00, 0x04,	/* HASH */
	0x00, 0x00, 0x00, 0x02,			/* sha384 */
	0x00, 0x0b, 0x00, 0x00, 0x00, 0x04,	/* SCHEME */
	0x00, 0x00, 0x00, 0x03,			/* ECDSA */
	0x00, 0x0c, 0x00, 0x00, 0x00, 0x04,	/* FORMAT */
	0x00, 0x00, 0x00, 0x01,			/* raw */
	0x00, 0x03, 0x00, 0x00, 0x00, 0x05,
	'b', 'o', 't', '-', '1',
	0x00, 0x0a, 0x00, 0x00, 0x00, 0x02,
	'h', 'i',
};

/* HELLO reply id 1, OK, VERSION 1, AGENT "botid-agent 0.1.0". */
static const uint8_t frame_reply_hello[] = {
	0x00, 0x00, 0x00, 0x2a,			/* body length 42 */
	0x81, 0x00, 0x00, 0x00, 0x01,		/* op HELLO | 0x80, id 1 */
	0x00, 0x00, 0x00, 0x00,			/* status OK */
	0x00, 0x01, 0x00, 0x00, 0x00, 0x04,
	0x00, 0x00, 0x00, 0x01,
	0x00, 0x02, 0x00, 0x00, 0x00, 0x11,	/* AGENT, 17 bytes */
	'b', 'o', 't', 'i', 'd', '-', 'a', 'g', 'e', 'n', 't', ' ',
	'0', '.', '1', '.', '0',
};

/* Error reply to SIGN_DIGEST id 5: DENIED, MESSAGE "denied". */
static const uint8_t frame_reply_denied[] = {
	0x00, 0x00, 0x00, 0x15,			/* body length 21 */
	0x85, 0x00, 0x00, 0x00, 0x05,
	0x00, 0x00, 0x00, 0x04,			/* status DENIED */
	0x00, 0x0e, 0x00, 0x00, 0x00, 0x06,	/* MESSAGE */
	'd', 'e', 'n', 'i', 'e', 'd',
};

struct vector {
	const char	*name;
	const uint8_t	*frame;
	size_t		 len;
};

#define VECTOR(v)	{ #v, v, sizeof(v) }

static const struct vector requests[] = {
	VECTOR(frame_hello),
	VECTOR(frame_list),
	VECTOR(frame_pubkey),
	VECTOR(frame_cert_chain),
	VECTOR(frame_sign_digest),
	VECTOR(frame_sign_data),
	VECTOR(frame_sign_data_full),
};

static const struct vector replies[] = {
	VECTOR(frame_reply_hello),
	VECTOR(frame_reply_denied),
};

/* Re-encodes a decoded request, fields in tag order. */
static int
encode_request(const struct botid_request *req, struct botid_buf *out)
{
	size_t mark;
	int r;

	if ((r = wire_frame_begin(out, req->op, req->id, NULL, &mark)) != 0)
		return r;
	if (((req->present & (1u << BOTID_TAG_VERSION)) != 0 &&
	    (r = wire_put_u32(out, BOTID_TAG_VERSION, req->version)) != 0) ||
	    ((req->present & (1u << BOTID_TAG_BOT)) != 0 &&
	    (r = wire_put_string(out, BOTID_TAG_BOT, req->bot)) != 0) ||
	    ((req->present & (1u << BOTID_TAG_HASH)) != 0 &&
	    (r = wire_put_u32(out, BOTID_TAG_HASH, req->hash)) != 0) ||
	    ((req->present & (1u << BOTID_TAG_DIGEST)) != 0 &&
	    (r = wire_put_bytes(out, BOTID_TAG_DIGEST, req->digest,
	    req->digest_len)) != 0) ||
	    ((req->present & (1u << BOTID_TAG_DATA)) != 0 &&
	    (r = wire_put_bytes(out, BOTID_TAG_DATA, req->data,
	    req->data_len)) != 0) ||
	    ((req->present & (1u << BOTID_TAG_SCHEME)) != 0 &&
	    (r = wire_put_u32(out, BOTID_TAG_SCHEME, req->scheme)) != 0) ||
	    ((req->present & (1u << BOTID_TAG_FORMAT)) != 0 &&
	    (r = wire_put_u32(out, BOTID_TAG_FORMAT, req->format)) != 0) ||
	    (r = wire_frame_end(out, mark)) != 0) {
		wire_frame_abort(out, mark);
		return r;
	}
	return 0;
}

static void
assert_requests_equal(const struct botid_request *a,
    const struct botid_request *b)
{
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->version, b->version);
	assert_string_equal(a->bot, b->bot);
	assert_int_equal(a->hash, b->hash);
	assert_int_equal(a->scheme, b->scheme);
	assert_int_equal(a->format, b->format);
	assert_int_equal(a->digest_len, b->digest_len);
	if (a->digest_len > 0)
		assert_memory_equal(a->digest, b->digest, a->digest_len);
	assert_int_equal(a->data_len, b->data_len);
	if (a->data_len > 0)
		assert_memory_equal(a->data, b->data, a->data_len);
	assert_int_equal(a->present, b->present);
}

/* A decoded request must survive encode and decode unchanged. */
static void
assert_reencodes(const struct botid_request *req)
{
	struct botid_request again;
	struct botid_buf out;
	size_t body_len;

	buf_init(&out, 4 + BOTID_MAX_FRAME);
	assert_int_equal(encode_request(req, &out), 0);
	assert_int_equal(wire_frame_peek(&out, BOTID_MAX_FRAME, &body_len), 0);
	assert_int_equal(body_len + 4, buf_len(&out));
	assert_int_equal(wire_decode_request(buf_ptr(&out) + 4, body_len,
	    &again), 0);
	assert_requests_equal(req, &again);
	buf_reset(&out);
}

/* Builds a request body of fields given as (tag, len, bytes) triples. */
struct field {
	uint16_t	 tag;
	size_t		 len;
	const void	*value;
};

static void
build_body(struct botid_buf *b, uint8_t op, uint32_t id,
    const struct field *f, size_t n)
{
	size_t i;

	buf_init(b, 4 + BOTID_MAX_FRAME + 64);
	assert_int_equal(buf_put_u8(b, op), 0);
	assert_int_equal(buf_put_u32(b, id), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(buf_put_u16(b, f[i].tag), 0);
		assert_int_equal(buf_put_string(b, f[i].value, f[i].len), 0);
	}
}

/* Decodes the fields as a request of op and id 42; returns the result. */
static int
decode_fields(uint8_t op, const struct field *f, size_t n,
    struct botid_request *req)
{
	struct botid_buf b;
	int r;

	build_body(&b, op, 42, f, n);
	r = wire_decode_request(buf_ptr(&b), buf_len(&b), req);
	/* The header was readable, so an error reply can always be sent. */
	assert_int_equal(req->op, op);
	assert_int_equal(req->id, 42);
	if (r != 0) {
		assert_int_equal(req->present, 0);
		assert_null(req->digest);
		assert_null(req->data);
		assert_int_equal(req->bot[0], '\0');
	}
	buf_reset(&b);
	return r;
}

static const uint8_t be_1[4] = { 0, 0, 0, 1 };
static const uint8_t be_2[4] = { 0, 0, 0, 2 };
static const uint8_t be_3[4] = { 0, 0, 0, 3 };

static void
test_frame_peek(void **state)
{
	static const uint8_t zero[] = { 0, 0, 0, 0, 1, 2, 3 };
	static const uint8_t max[] = { 0x00, 0x01, 0x00, 0x00 };
	static const uint8_t over[] = { 0x00, 0x01, 0x00, 0x01 };
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff };
	static const uint8_t two[] = { 0, 0, 0, 2, 0xaa, 0xbb, 0xcc };
	struct botid_buf b;
	size_t body_len, i;

	/* Fewer than four bytes: wait. */
	for (i = 0; i < 4; i++) {
		body_len = 99;
		buf_init_view(&b, two, i);
		assert_int_equal(wire_frame_peek(&b, BOTID_MAX_FRAME,
		    &body_len), BOTID_ERR_INCOMPLETE);
		assert_int_equal(body_len, 0);
	}
	buf_init_view(&b, zero, sizeof(zero));
	assert_int_equal(wire_frame_peek(&b, BOTID_MAX_FRAME, &body_len),
	    BOTID_ERR_INVALID);
	/* Too large is decided from the four length bytes alone. */
	buf_init_view(&b, over, sizeof(over));
	assert_int_equal(wire_frame_peek(&b, BOTID_MAX_FRAME, &body_len),
	    BOTID_ERR_TOO_LARGE);
	buf_init_view(&b, huge, sizeof(huge));
	assert_int_equal(wire_frame_peek(&b, BOTID_MAX_FRAME, &body_len),
	    BOTID_ERR_TOO_LARGE);
	buf_init_view(&b, max, sizeof(max));
	assert_int_equal(wire_frame_peek(&b, BOTID_MAX_FRAME, &body_len),
	    BOTID_ERR_INCOMPLETE);
	/* The caller's max rules, not a fixed one. */
	buf_init_view(&b, two, sizeof(two));
	assert_int_equal(wire_frame_peek(&b, 1, &body_len),
	    BOTID_ERR_TOO_LARGE);
	/* Complete with a byte of the next frame behind it; nothing consumed. */
	assert_int_equal(wire_frame_peek(&b, 2, &body_len), 0);
	assert_int_equal(body_len, 2);
	assert_int_equal(buf_len(&b), sizeof(two));
	buf_init_view(&b, two, 5);
	assert_int_equal(wire_frame_peek(&b, 2, &body_len),
	    BOTID_ERR_INCOMPLETE);
}

static void
test_frame_peek_exact_max(void **state)
{
	struct botid_buf b;
	size_t body_len;
	uint8_t *p;

	buf_init(&b, 4 + BOTID_MAX_FRAME);
	assert_int_equal(buf_put_u32(&b, BOTID_MAX_FRAME), 0);
	assert_int_equal(buf_reserve(&b, BOTID_MAX_FRAME - 1, &p), 0);
	assert_int_equal(wire_frame_peek(&b, BOTID_MAX_FRAME, &body_len),
	    BOTID_ERR_INCOMPLETE);
	assert_int_equal(buf_put_u8(&b, 0), 0);
	assert_int_equal(wire_frame_peek(&b, BOTID_MAX_FRAME, &body_len), 0);
	assert_int_equal(body_len, BOTID_MAX_FRAME);
	buf_reset(&b);
}

static void
test_encode_request_vectors(void **state)
{
	struct botid_buf out;
	size_t mark;

	buf_init(&out, 4 + BOTID_MAX_FRAME);

	assert_int_equal(wire_frame_begin(&out, BOTID_OP_HELLO, 1, NULL,
	    &mark), 0);
	assert_int_equal(wire_put_u32(&out, BOTID_TAG_VERSION, 1), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_hello));
	assert_memory_equal(buf_ptr(&out), frame_hello, sizeof(frame_hello));
	buf_reset(&out);

	assert_int_equal(wire_frame_begin(&out, BOTID_OP_LIST, 2, NULL,
	    &mark), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_list));
	assert_memory_equal(buf_ptr(&out), frame_list, sizeof(frame_list));
	buf_reset(&out);

	assert_int_equal(wire_frame_begin(&out, BOTID_OP_PUBKEY, 3, NULL,
	    &mark), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "alpha"), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_pubkey));
	assert_memory_equal(buf_ptr(&out), frame_pubkey, sizeof(frame_pubkey));
	buf_reset(&out);

	assert_int_equal(wire_frame_begin(&out, BOTID_OP_CERT_CHAIN, 4, NULL,
	    &mark), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "alpha"), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_cert_chain));
	assert_memory_equal(buf_ptr(&out), frame_cert_chain,
	    sizeof(frame_cert_chain));
	buf_reset(&out);

	assert_int_equal(wire_frame_begin(&out, BOTID_OP_SIGN_DIGEST, 5, NULL,
	    &mark), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "alpha"), 0);
	assert_int_equal(wire_put_u32(&out, BOTID_TAG_HASH,
	    BOTID_HASH_SHA256), 0);
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DIGEST, hello_sha256,
	    sizeof(hello_sha256)), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_sign_digest));
	assert_memory_equal(buf_ptr(&out), frame_sign_digest,
	    sizeof(frame_sign_digest));
	buf_reset(&out);

	assert_int_equal(wire_frame_begin(&out, BOTID_OP_SIGN_DATA, 6, NULL,
	    &mark), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "alpha"), 0);
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DATA, "hello", 5), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_sign_data));
	assert_memory_equal(buf_ptr(&out), frame_sign_data,
	    sizeof(frame_sign_data));
	buf_reset(&out);

	assert_int_equal(wire_frame_begin(&out, BOTID_OP_SIGN_DATA, 7, NULL,
	    &mark), 0);
	assert_int_equal(wire_put_u32(&out, BOTID_TAG_HASH,
	    BOTID_HASH_SHA384), 0);
	assert_int_equal(wire_put_u32(&out, BOTID_TAG_SCHEME,
	    BOTID_SCHEME_ECDSA), 0);
	assert_int_equal(wire_put_u32(&out, BOTID_TAG_FORMAT,
	    BOTID_FORMAT_RAW), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "bot-1"), 0);
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DATA, "hi", 2), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_sign_data_full));
	assert_memory_equal(buf_ptr(&out), frame_sign_data_full,
	    sizeof(frame_sign_data_full));
	buf_reset(&out);
}

static void
test_decode_request_vectors(void **state)
{
	struct botid_request req;
	const struct vector *v;
	size_t i;

	assert_int_equal(wire_decode_request(frame_hello + 4,
	    sizeof(frame_hello) - 4, &req), 0);
	assert_int_equal(req.op, BOTID_OP_HELLO);
	assert_int_equal(req.id, 1);
	assert_int_equal(req.version, 1);
	assert_int_equal(req.present, 1u << BOTID_TAG_VERSION);

	assert_int_equal(wire_decode_request(frame_list + 4,
	    sizeof(frame_list) - 4, &req), 0);
	assert_int_equal(req.op, BOTID_OP_LIST);
	assert_int_equal(req.id, 2);
	assert_int_equal(req.present, 0);

	assert_int_equal(wire_decode_request(frame_pubkey + 4,
	    sizeof(frame_pubkey) - 4, &req), 0);
	assert_int_equal(req.op, BOTID_OP_PUBKEY);
	assert_int_equal(req.id, 3);
	assert_string_equal(req.bot, "alpha");

	assert_int_equal(wire_decode_request(frame_cert_chain + 4,
	    sizeof(frame_cert_chain) - 4, &req), 0);
	assert_int_equal(req.op, BOTID_OP_CERT_CHAIN);
	assert_int_equal(req.id, 4);
	assert_string_equal(req.bot, "alpha");

	assert_int_equal(wire_decode_request(frame_sign_digest + 4,
	    sizeof(frame_sign_digest) - 4, &req), 0);
	assert_int_equal(req.op, BOTID_OP_SIGN_DIGEST);
	assert_int_equal(req.id, 5);
	assert_string_equal(req.bot, "alpha");
	assert_int_equal(req.hash, BOTID_HASH_SHA256);
	assert_int_equal(req.scheme, BOTID_SCHEME_AUTO);
	assert_int_equal(req.format, BOTID_FORMAT_DER);
	assert_int_equal(req.digest_len, 32);
	assert_memory_equal(req.digest, hello_sha256, 32);
	/* The digest is a view into the frame, not a copy. */
	assert_ptr_equal(req.digest, frame_sign_digest + 4 + 32);
	assert_null(req.data);

	assert_int_equal(wire_decode_request(frame_sign_data + 4,
	    sizeof(frame_sign_data) - 4, &req), 0);
	assert_int_equal(req.op, BOTID_OP_SIGN_DATA);
	assert_int_equal(req.id, 6);
	assert_string_equal(req.bot, "alpha");
	assert_int_equal(req.hash, 0);		/* absent: agent uses sha256 */
	assert_int_equal(req.data_len, 5);
	assert_memory_equal(req.data, "hello", 5);
	assert_int_equal(req.present,
	    (1u << BOTID_TAG_BOT) | (1u << BOTID_TAG_DATA));

	assert_int_equal(wire_decode_request(frame_sign_data_full + 4,
	    sizeof(frame_sign_data_full) - 4, &req), 0);
	assert_int_equal(req.id, 7);
	assert_string_equal(req.bot, "bot-1");
	assert_int_equal(req.hash, BOTID_HASH_SHA384);
	assert_int_equal(req.scheme, BOTID_SCHEME_ECDSA);
	assert_int_equal(req.format, BOTID_FORMAT_RAW);
	assert_int_equal(req.data_len, 2);
	assert_memory_equal(req.data, "hi", 2);

	/* Each vector re-encodes to a request that decodes the same. */
	for (i = 0; i < NELEM(requests); i++) {
		v = &requests[i];
		assert_int_equal(wire_decode_request(v->frame + 4, v->len - 4,
		    &req), 0);
		assert_reencodes(&req);
	}
}

static void
test_reply_vectors(void **state)
{
	struct botid_buf out, body;
	const uint8_t *value;
	uint32_t id, status;
	uint16_t tag;
	size_t mark, len;
	uint8_t op;

	/* Encode. */
	buf_init(&out, 4 + BOTID_MAX_FRAME);
	status = BOTID_STATUS_OK;
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_HELLO, 1, &status,
	    &mark), 0);
	assert_int_equal(wire_put_u32(&out, BOTID_TAG_VERSION, 1), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_AGENT,
	    "botid-agent 0.1.0"), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_reply_hello));
	assert_memory_equal(buf_ptr(&out), frame_reply_hello,
	    sizeof(frame_reply_hello));
	buf_reset(&out);

	assert_int_equal(wire_put_error(&out, BOTID_OP_SIGN_DIGEST, 5,
	    BOTID_STATUS_DENIED, "denied"), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_reply_denied));
	assert_memory_equal(buf_ptr(&out), frame_reply_denied,
	    sizeof(frame_reply_denied));
	buf_reset(&out);

	/* Decode. */
	buf_init_view(&body, frame_reply_hello + 4,
	    sizeof(frame_reply_hello) - 4);
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status), 0);
	assert_int_equal(op, BOTID_OP_HELLO | BOTID_OP_REPLY);
	assert_int_equal(id, 1);
	assert_int_equal(status, BOTID_STATUS_OK);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len), 0);
	assert_int_equal(tag, BOTID_TAG_VERSION);
	assert_int_equal(len, 4);
	assert_memory_equal(value, be_1, 4);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len), 0);
	assert_int_equal(tag, BOTID_TAG_AGENT);
	assert_int_equal(len, 17);
	assert_memory_equal(value, "botid-agent 0.1.0", 17);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len),
	    BOTID_ERR_INCOMPLETE);
	assert_int_equal(tag, 0);
	assert_null(value);
	assert_int_equal(len, 0);

	buf_init_view(&body, frame_reply_denied + 4,
	    sizeof(frame_reply_denied) - 4);
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status), 0);
	assert_int_equal(op, BOTID_OP_SIGN_DIGEST | BOTID_OP_REPLY);
	assert_int_equal(id, 5);
	assert_int_equal(status, BOTID_STATUS_DENIED);
	assert_int_equal(wire_status_to_err(status), BOTID_ERR_DENIED);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len), 0);
	assert_int_equal(tag, BOTID_TAG_MESSAGE);
	assert_int_equal(len, 6);
	assert_memory_equal(value, "denied", 6);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len),
	    BOTID_ERR_INCOMPLETE);
}

/* Other replies, encoded and read back (these have no fixed vector). */
static void
test_reply_roundtrip(void **state)
{
	static const uint8_t spki[] = { 0x30, 0x59, 0x30, 0x13, 0x06 };
	struct botid_buf out, body;
	const uint8_t *value;
	uint32_t id, status = BOTID_STATUS_OK;
	uint16_t tag;
	size_t mark, len, body_len, n;
	uint8_t op;

	buf_init(&out, 4 + BOTID_MAX_FRAME);
	/* LIST: BOT, KEY_TYPE, BACKEND per bot, in that order. */
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_LIST, 9, &status,
	    &mark), 0);
	for (n = 0; n < 3; n++) {
		assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "b"), 0);
		assert_int_equal(wire_put_string(&out, BOTID_TAG_KEY_TYPE,
		    "ecdsa-p256"), 0);
		assert_int_equal(wire_put_string(&out, BOTID_TAG_BACKEND,
		    "tpm"), 0);
	}
	assert_int_equal(wire_frame_end(&out, mark), 0);
	/* PUBKEY, pipelined behind it in the same buffer. */
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_PUBKEY, 10, &status,
	    &mark), 0);
	assert_int_equal(mark, 4 + 9 + 3 * (7 + 16 + 9));
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_PUBKEY, spki,
	    sizeof(spki)), 0);
	/* An empty value is a field too. */
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_CERT, NULL, 0), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);

	assert_int_equal(wire_frame_peek(&out, BOTID_MAX_FRAME, &body_len), 0);
	assert_int_equal(body_len, 9 + 3 * (7 + 16 + 9));
	buf_init_view(&body, buf_ptr(&out) + 4, body_len);
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status), 0);
	assert_int_equal(op, 0x82);
	assert_int_equal(id, 9);
	for (n = 0; n < 9; n++) {
		assert_int_equal(wire_get_field(&body, &tag, &value, &len), 0);
		assert_int_equal(tag, BOTID_TAG_BOT + n % 3);
	}
	assert_int_equal(wire_get_field(&body, &tag, &value, &len),
	    BOTID_ERR_INCOMPLETE);
	assert_int_equal(buf_consume(&out, 4 + body_len), 0);

	assert_int_equal(wire_frame_peek(&out, BOTID_MAX_FRAME, &body_len), 0);
	assert_int_equal(body_len + 4, buf_len(&out));
	buf_init_view(&body, buf_ptr(&out) + 4, body_len);
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status), 0);
	assert_int_equal(op, 0x83);
	assert_int_equal(id, 10);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len), 0);
	assert_int_equal(tag, BOTID_TAG_PUBKEY);
	assert_int_equal(len, sizeof(spki));
	assert_memory_equal(value, spki, sizeof(spki));
	assert_int_equal(wire_get_field(&body, &tag, &value, &len), 0);
	assert_int_equal(tag, BOTID_TAG_CERT);
	assert_int_equal(len, 0);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len),
	    BOTID_ERR_INCOMPLETE);
	buf_reset(&out);

	/* An error reply without a message is still a reply. */
	assert_int_equal(wire_put_error(&out, 0, 0, BOTID_STATUS_TOO_LARGE,
	    NULL), 0);
	assert_int_equal(buf_len(&out), 4 + 9);
	assert_memory_equal(buf_ptr(&out),
	    "\x00\x00\x00\x09\x80\x00\x00\x00\x00\x00\x00\x00\x08", 13);
	buf_reset(&out);
}

static void
test_request_roundtrip(void **state)
{
	static const char *bots[] = { "a", "A.b_c-9", "-dash",
	    "0123456789012345678901234567890123456789012345678901234567890123" };
	static uint8_t bytes[300];
	struct botid_request req;
	uint32_t hash, scheme, format;
	size_t i, n;

	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 7 + 3);
	for (i = 0; i < NELEM(bots); i++) {
		for (hash = 1; hash <= 3; hash++) {
			for (scheme = 0; scheme <= 3; scheme++) {
				for (format = 0; format <= 1; format++) {
					memset(&req, 0, sizeof(req));
					req.op = BOTID_OP_SIGN_DIGEST;
					req.id = (uint32_t)(i << 16 | hash << 8 |
					    scheme << 4 | format);
					strcpy(req.bot, bots[i]);
					req.hash = hash;
					req.scheme = scheme;
					req.format = format;
					req.digest = bytes;
					req.digest_len = wire_hash_len(hash);
					req.present = 0x1b08;
					assert_reencodes(&req);
				}
			}
		}
		for (n = 0; n < sizeof(bytes); n += 37) {
			memset(&req, 0, sizeof(req));
			req.op = BOTID_OP_SIGN_DATA;
			req.id = UINT32_MAX - (uint32_t)n;
			strcpy(req.bot, bots[i]);
			req.data = n > 0 ? bytes : NULL;
			req.data_len = n;
			req.present = (1u << BOTID_TAG_BOT) |
			    (1u << BOTID_TAG_DATA);
			assert_reencodes(&req);
		}
	}
	memset(&req, 0, sizeof(req));
	req.op = BOTID_OP_HELLO;
	req.version = UINT32_MAX;	/* any version decodes; the agent judges */
	req.present = 1u << BOTID_TAG_VERSION;
	assert_reencodes(&req);
}

/* The largest SIGN_DATA that fits in one frame, and one byte more. */
static void
test_sign_data_max(void **state)
{
	struct botid_request req;
	struct botid_buf out;
	size_t mark, body_len;
	/* body: header 5, BOT "a" 6 + 1, DATA 6 + n */
	const size_t max_data = BOTID_MAX_FRAME - 5 - 7 - 6;
	uint8_t *data;

	assert_non_null(data = calloc(1, max_data + 1));
	buf_init(&out, 4 + BOTID_MAX_FRAME + 16);
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_SIGN_DATA, 1, NULL,
	    &mark), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "a"), 0);
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DATA, data, max_data),
	    0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(wire_frame_peek(&out, BOTID_MAX_FRAME, &body_len), 0);
	assert_int_equal(body_len, BOTID_MAX_FRAME);
	assert_int_equal(wire_decode_request(buf_ptr(&out) + 4, body_len,
	    &req), 0);
	assert_int_equal(req.data_len, max_data);
	buf_reset(&out);

	/* One more byte: the encoder refuses to close the frame. */
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_SIGN_DATA, 1, NULL,
	    &mark), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "a"), 0);
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DATA, data,
	    max_data + 1), 0);
	assert_int_equal(wire_frame_end(&out, mark), BOTID_ERR_TOO_LARGE);
	wire_frame_abort(&out, mark);
	assert_int_equal(buf_len(&out), 0);
	buf_reset(&out);

	/* And the decoder refuses a body over the limit however it came. */
	buf_init(&out, BOTID_MAX_FRAME + 16);
	assert_int_equal(buf_put_u8(&out, BOTID_OP_SIGN_DATA), 0);
	assert_int_equal(buf_put_u32(&out, 77), 0);
	assert_int_equal(buf_put_u16(&out, BOTID_TAG_BOT), 0);
	assert_int_equal(buf_put_string(&out, "a", 1), 0);
	assert_int_equal(buf_put_u16(&out, BOTID_TAG_DATA), 0);
	assert_int_equal(buf_put_string(&out, data, max_data + 1), 0);
	assert_int_equal(wire_decode_request(buf_ptr(&out), buf_len(&out),
	    &req), BOTID_ERR_TOO_LARGE);
	assert_int_equal(req.op, BOTID_OP_SIGN_DATA);
	assert_int_equal(req.id, 77);
	buf_reset(&out);
	free(data);
}

static void
test_truncation_every_offset(void **state)
{
	struct botid_request req;
	struct botid_buf b;
	const struct vector *v;
	size_t i, n, body_len;

	for (i = 0; i < NELEM(requests); i++) {
		v = &requests[i];
		for (n = 0; n < v->len; n++) {
			/* The frame is never complete before its last byte. */
			buf_init_view(&b, v->frame, n);
			assert_int_equal(wire_frame_peek(&b, BOTID_MAX_FRAME,
			    &body_len), BOTID_ERR_INCOMPLETE);
			if (n < 4)
				continue;
			/*
			 * Every strict prefix of a body lacks a required
			 * field, stops inside one or inside the header.
			 */
			memset(&req, 0xa5, sizeof(req));
			assert_int_equal(wire_decode_request(v->frame + 4, n - 4,
			    &req), BOTID_ERR_INVALID);
			assert_int_equal(req.op, n > 4 ? v->frame[4] : 0);
			assert_int_equal(req.id, n >= 9 ? v->frame[8] : 0);
			assert_int_equal(req.present, 0);
		}
	}
}

static void
test_reply_truncation_every_offset(void **state)
{
	/* Field boundaries of the two reply vectors (body offsets). */
	static const size_t hello_ends[] = { 19, 42 };
	static const size_t denied_ends[] = { 21 };
	struct {
		const struct vector	*v;
		const size_t		*ends;
		size_t			 nends;
	} cases[] = {
		{ &replies[0], hello_ends, NELEM(hello_ends) },
		{ &replies[1], denied_ends, NELEM(denied_ends) },
	};
	struct botid_buf body;
	const uint8_t *value;
	uint32_t id, status;
	uint16_t tag;
	size_t i, j, n, len, before, fields, want_fields;
	uint8_t op;
	int r;

	for (i = 0; i < NELEM(cases); i++) {
		const uint8_t *p = cases[i].v->frame + 4;

		for (n = 0; n <= cases[i].v->len - 4; n++) {
			buf_init_view(&body, p, n);
			r = wire_get_reply_header(&body, &op, &id, &status);
			if (n < 9) {
				assert_int_equal(r, BOTID_ERR_INVALID);
				assert_int_equal(buf_len(&body), n);
				assert_int_equal(op, 0);
				continue;
			}
			assert_int_equal(r, 0);
			fields = 0;
			while ((r = wire_get_field(&body, &tag, &value,
			    &len)) == 0)
				fields++;
			/* Clean end exactly at a boundary, else truncated. */
			want_fields = 0;
			r = r == BOTID_ERR_INCOMPLETE ? 1 : 0;
			for (j = 0; j < cases[i].nends; j++)
				if (cases[i].ends[j] <= n)
					want_fields++;
			assert_int_equal(fields, want_fields);
			for (j = 0; j < cases[i].nends; j++)
				if (cases[i].ends[j] == n)
					break;
			assert_int_equal(r, n == 9 || j < cases[i].nends);
			/* A truncated field consumed nothing. */
			before = buf_len(&body);
			if (!r) {
				assert_int_equal(wire_get_field(&body, &tag,
				    &value, &len), BOTID_ERR_INVALID);
				assert_int_equal(buf_len(&body), before);
				assert_null(value);
			}
		}
	}
}

/* Decode or reject, never crash, and a success must re-encode cleanly. */
static void
check_mutant(const uint8_t *frame, size_t len)
{
	struct botid_request req;
	struct botid_buf b, body;
	const uint8_t *value;
	size_t body_len, vlen;
	uint32_t id, status;
	uint16_t tag;
	uint8_t op;
	int r;

	buf_init_view(&b, frame, len);
	r = wire_frame_peek(&b, BOTID_MAX_FRAME, &body_len);
	if (r != 0) {
		assert_true(r == BOTID_ERR_INCOMPLETE ||
		    r == BOTID_ERR_INVALID || r == BOTID_ERR_TOO_LARGE);
		return;
	}
	r = wire_decode_request(frame + 4, body_len, &req);
	if (r == 0)
		assert_reencodes(&req);
	else
		assert_true(r == BOTID_ERR_INVALID ||
		    r == BOTID_ERR_UNSUPPORTED);
	buf_init_view(&body, frame + 4, body_len);
	if (wire_get_reply_header(&body, &op, &id, &status) == 0) {
		/* Every value lies inside the frame it came from. */
		while ((r = wire_get_field(&body, &tag, &value, &vlen)) == 0)
			assert_true(value >= frame + 4 + 9 &&
			    (size_t)(value - frame) <= len &&
			    vlen <= len - (size_t)(value - frame));
		assert_true(r == BOTID_ERR_INCOMPLETE ||
		    r == BOTID_ERR_INVALID);
		(void)wire_status_to_err(status);
	}
}

static void
test_bit_flips(void **state)
{
	const struct vector *all[NELEM(requests) + NELEM(replies)];
	uint8_t frame[256];
	size_t i, bit, n = 0;

	for (i = 0; i < NELEM(requests); i++)
		all[n++] = &requests[i];
	for (i = 0; i < NELEM(replies); i++)
		all[n++] = &replies[i];
	for (i = 0; i < n; i++) {
		assert_true(all[i]->len <= sizeof(frame));
		for (bit = 0; bit < all[i]->len * 8; bit++) {
			memcpy(frame, all[i]->frame, all[i]->len);
			frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			check_mutant(frame, all[i]->len);
		}
	}
}

static void
test_byte_flips(void **state)
{
	const struct vector *all[NELEM(requests) + NELEM(replies)];
	uint8_t frame[256];
	size_t i, pos, n = 0;
	unsigned int val;

	for (i = 0; i < NELEM(requests); i++)
		all[n++] = &requests[i];
	for (i = 0; i < NELEM(replies); i++)
		all[n++] = &replies[i];
	for (i = 0; i < n; i++) {
		for (pos = 0; pos < all[i]->len; pos++) {
			for (val = 0; val < 256; val++) {
				memcpy(frame, all[i]->frame, all[i]->len);
				frame[pos] = (uint8_t)val;
				check_mutant(frame, all[i]->len);
			}
		}
	}
}

/* Bit flips in the body of SIGN_DIGEST that must be rejected, and why. */
static void
test_sign_digest_flips_rejected(void **state)
{
	uint8_t frame[sizeof(frame_sign_digest)];
	struct botid_request req;
	size_t bit;
	int r;

	/* Any flip in a tag, a length, the BOT or the HASH value is fatal. */
	for (bit = 9 * 8; bit < 36 * 8; bit++) {
		memcpy(frame, frame_sign_digest, sizeof(frame));
		frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		r = wire_decode_request(frame + 4, sizeof(frame) - 4, &req);
		/* "alpha" with one bit flipped can still be a valid name. */
		if (r == 0) {
			assert_true(bit / 8 >= 15 && bit / 8 < 20);
			assert_string_not_equal(req.bot, "alpha");
			continue;
		}
		assert_int_equal(r, BOTID_ERR_INVALID);
		assert_int_equal(req.id, 5);
	}
	/* Flips in the digest bytes only change the digest. */
	for (bit = 36 * 8; bit < sizeof(frame) * 8; bit++) {
		memcpy(frame, frame_sign_digest, sizeof(frame));
		frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(wire_decode_request(frame + 4,
		    sizeof(frame) - 4, &req), 0);
		assert_memory_not_equal(req.digest, hello_sha256, 32);
	}
}

static void
test_unknown_op(void **state)
{
	static const uint8_t ops[] = { 0x00, 0x0b, 0x7f, 0x80, 0x81, 0x85,
	    0x86, 0x87, 0x88, 0x89, 0x8a, 0xff };
	struct botid_request req;
	size_t i;

	for (i = 0; i < NELEM(ops); i++) {
		/* Fields of an unknown op are never looked at. */
		struct field f[] = { { 0xffff, 3, "xyz" } };

		assert_int_equal(decode_fields(ops[i], NULL, 0, &req),
		    BOTID_ERR_UNSUPPORTED);
		assert_int_equal(decode_fields(ops[i], f, 1, &req),
		    BOTID_ERR_UNSUPPORTED);
	}
}

/* ROTATE names one bot; DEPROVISION carries nothing. */
static void
test_rotate_deprovision(void **state)
{
	struct field bot[] = { { BOTID_TAG_BOT, 4, "tbot" } };
	struct field bad_name[] = { { BOTID_TAG_BOT, 5, "t/bot" } };
	struct field extra[] = { { BOTID_TAG_BOT, 4, "tbot" },
	    { BOTID_TAG_AUDIENCE, 1, "a" } };
	struct botid_request req;

	(void)state;
	assert_int_equal(decode_fields(BOTID_OP_ROTATE, bot, 1, &req), 0);
	assert_string_equal(req.bot, "tbot");
	assert_int_equal(decode_fields(BOTID_OP_ROTATE, NULL, 0, &req),
	    BOTID_ERR_INVALID);
	assert_int_not_equal(decode_fields(BOTID_OP_ROTATE, bad_name, 1,
	    &req), 0);
	assert_int_not_equal(decode_fields(BOTID_OP_ROTATE, extra, 2, &req),
	    0);
	assert_int_equal(decode_fields(BOTID_OP_DEPROVISION, NULL, 0, &req), 0);
	assert_string_equal(req.bot, "");
	assert_int_not_equal(decode_fields(BOTID_OP_DEPROVISION, bot, 1,
	    &req), 0);
}

/* INVENTORY: the request carries nothing; the reply's u64 fields. */
static void
test_inventory(void **state)
{
	static const uint8_t be8[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct botid_request req;
	struct botid_buf out, body;
	const uint8_t *v;
	uint32_t id, status = BOTID_STATUS_OK, u32;
	uint64_t u64;
	uint16_t tag;
	size_t mark, len, n;
	uint8_t op;

	assert_int_equal(wire_decode_request(frame_inventory + 4,
	    sizeof(frame_inventory) - 4, &req), 0);
	assert_int_equal(req.op, BOTID_OP_INVENTORY);
	assert_int_equal(req.id, 3);
	assert_int_equal(req.present, 0);
	/* No field at all is accepted, not even a bot name. */
	for (tag = 0; tag < 40; tag++) {
		struct field f[] = { { tag, 5, "alpha" } };

		assert_int_equal(decode_fields(BOTID_OP_INVENTORY, f, 1, &req),
		    BOTID_ERR_INVALID);
	}

	/* The reply vector, byte for byte. */
	buf_init(&out, 4 + BOTID_MAX_FRAME);
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_INVENTORY, 3, &status,
	    &mark), 0);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "alpha"), 0);
	assert_int_equal(wire_put_u64(&out, BOTID_TAG_NOT_AFTER, 0x69300000u),
	    0);
	assert_int_equal(wire_put_u64(&out, BOTID_TAG_OPS, 7), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_inventory_reply));
	assert_memory_equal(buf_ptr(&out), frame_inventory_reply,
	    sizeof(frame_inventory_reply));
	buf_reset(&out);

	buf_init_view(&body, frame_inventory_reply + 4,
	    sizeof(frame_inventory_reply) - 4);
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status), 0);
	assert_int_equal(op, BOTID_OP_INVENTORY | BOTID_OP_REPLY);
	assert_int_equal(wire_get_field(&body, &tag, &v, &len), 0);
	assert_int_equal(tag, BOTID_TAG_BOT);
	assert_int_equal(wire_get_field(&body, &tag, &v, &len), 0);
	assert_int_equal(tag, BOTID_TAG_NOT_AFTER);
	assert_int_equal(wire_field_u64(v, len, &u64), 0);
	assert_true(u64 == 0x69300000u);
	assert_int_equal(wire_get_field(&body, &tag, &v, &len), 0);
	assert_int_equal(tag, BOTID_TAG_OPS);
	assert_int_equal(wire_field_u64(v, len, &u64), 0);
	assert_true(u64 == 7);
	assert_int_equal(wire_get_field(&body, &tag, &v, &len),
	    BOTID_ERR_INCOMPLETE);

	/* Every other length is refused, and the output is zeroed. */
	assert_int_equal(wire_field_u64(be8, 8, &u64), 0);
	assert_true(u64 == 0x0102030405060708ull);
	for (n = 0; n < 8; n++) {
		u64 = 99;
		assert_int_equal(wire_field_u64(be8, n, &u64),
		    BOTID_ERR_INVALID);
		assert_true(u64 == 0);
	}
	assert_int_equal(wire_field_u64(NULL, 8, &u64), BOTID_ERR_INVALID);
	assert_int_equal(wire_field_u32(be8, 4, &u32), 0);
	assert_int_equal(u32, 0x01020304u);
	for (n = 0; n <= 8; n++) {
		if (n == 4)
			continue;
		u32 = 99;
		assert_int_equal(wire_field_u32(be8, n, &u32),
		    BOTID_ERR_INVALID);
		assert_int_equal(u32, 0);
	}
	(void)state;
}

static void
test_short_header(void **state)
{
	static const uint8_t hdr[] = { 0x05, 0x11, 0x22, 0x33, 0x44 };
	struct botid_request req;
	size_t n;

	memset(&req, 0xa5, sizeof(req));
	assert_int_equal(wire_decode_request(NULL, 0, &req), BOTID_ERR_INVALID);
	assert_int_equal(req.op, 0);
	assert_int_equal(req.id, 0);
	assert_int_equal(wire_decode_request(NULL, 5, &req), BOTID_ERR_INVALID);
	for (n = 1; n < sizeof(hdr); n++) {
		assert_int_equal(wire_decode_request(hdr, n, &req),
		    BOTID_ERR_INVALID);
		assert_int_equal(req.op, 0x05);
		assert_int_equal(req.id, 0);
	}
	/* The header alone: SIGN_DIGEST without its fields. */
	assert_int_equal(wire_decode_request(hdr, 5, &req), BOTID_ERR_INVALID);
	assert_int_equal(req.id, 0x11223344);
}

static void
test_unknown_tag(void **state)
{
	static const uint16_t tags[] = { 0, 15, 16, 31, 32, 33, 0x100, 0xffff };
	struct botid_request req;
	size_t i;

	for (i = 0; i < NELEM(tags); i++) {
		struct field f[] = {
			{ BOTID_TAG_BOT, 5, "alpha" },
			{ tags[i], 4, be_1 },
		};
		struct field g[] = { { tags[i], 0, NULL } };

		assert_int_equal(decode_fields(BOTID_OP_PUBKEY, f, 2, &req),
		    BOTID_ERR_INVALID);
		assert_int_equal(decode_fields(BOTID_OP_LIST, g, 1, &req),
		    BOTID_ERR_INVALID);
	}
}

static void
test_duplicate_field(void **state)
{
	struct botid_request req;
	struct field bot2[] = {
		{ BOTID_TAG_BOT, 5, "alpha" },
		{ BOTID_TAG_BOT, 5, "alpha" },
	};
	struct field version2[] = {
		{ BOTID_TAG_VERSION, 4, be_1 },
		{ BOTID_TAG_VERSION, 4, be_2 },
	};
	struct field hash2[] = {
		{ BOTID_TAG_BOT, 5, "alpha" },
		{ BOTID_TAG_HASH, 4, be_1 },
		{ BOTID_TAG_DIGEST, 32, hello_sha256 },
		{ BOTID_TAG_HASH, 4, be_1 },
	};
	struct field data2[] = {
		{ BOTID_TAG_BOT, 5, "alpha" },
		{ BOTID_TAG_DATA, 1, "x" },
		{ BOTID_TAG_FORMAT, 4, be_1 },
		{ BOTID_TAG_DATA, 1, "y" },
	};

	assert_int_equal(decode_fields(BOTID_OP_PUBKEY, bot2, 2, &req),
	    BOTID_ERR_INVALID);
	assert_int_equal(decode_fields(BOTID_OP_HELLO, version2, 2, &req),
	    BOTID_ERR_INVALID);
	assert_int_equal(decode_fields(BOTID_OP_SIGN_DIGEST, hash2, 4, &req),
	    BOTID_ERR_INVALID);
	assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, data2, 4, &req),
	    BOTID_ERR_INVALID);
	/* Without the repeat each of them is fine. */
	assert_int_equal(decode_fields(BOTID_OP_PUBKEY, bot2, 1, &req), 0);
	assert_int_equal(decode_fields(BOTID_OP_HELLO, version2, 1, &req), 0);
	assert_int_equal(decode_fields(BOTID_OP_SIGN_DIGEST, hash2, 3, &req),
	    0);
	assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, data2, 3, &req), 0);
}

/* Every known tag in every op that does not allow it. */
static void
test_field_not_allowed(void **state)
{
	static const struct {
		uint8_t		op;
		uint32_t	allowed;
	} ops[] = {
		{ BOTID_OP_HELLO, 1u << BOTID_TAG_VERSION },
		{ BOTID_OP_LIST, 0 },
		{ BOTID_OP_INVENTORY, 0 },
		{ BOTID_OP_PUBKEY, 1u << BOTID_TAG_BOT },
		{ BOTID_OP_CERT_CHAIN, 1u << BOTID_TAG_BOT },
		{ BOTID_OP_SIGN_DIGEST, (1u << BOTID_TAG_BOT) |
		    (1u << BOTID_TAG_HASH) | (1u << BOTID_TAG_DIGEST) |
		    (1u << BOTID_TAG_SCHEME) | (1u << BOTID_TAG_FORMAT) },
		{ BOTID_OP_SIGN_DATA, (1u << BOTID_TAG_BOT) |
		    (1u << BOTID_TAG_DATA) | (1u << BOTID_TAG_HASH) |
		    (1u << BOTID_TAG_SCHEME) | (1u << BOTID_TAG_FORMAT) },
	};
	struct botid_request req;
	uint16_t tag;
	size_t i;

	for (i = 0; i < NELEM(ops); i++) {
		for (tag = BOTID_TAG_VERSION; tag <= BOTID_TAG_MESSAGE; tag++) {
			/* A value that would be valid for tags that take one. */
			struct field f[] = { { tag, 4, be_1 } };

			if ((ops[i].allowed & (1u << tag)) != 0)
				continue;
			assert_int_equal(decode_fields(ops[i].op, f, 1, &req),
			    BOTID_ERR_INVALID);
		}
	}
}

static void
test_missing_required(void **state)
{
	struct botid_request req;
	struct field digest[] = {
		{ BOTID_TAG_BOT, 5, "alpha" },
		{ BOTID_TAG_HASH, 4, be_1 },
		{ BOTID_TAG_DIGEST, 32, hello_sha256 },
	};
	struct field data[] = {
		{ BOTID_TAG_BOT, 5, "alpha" },
		{ BOTID_TAG_DATA, 5, "hello" },
	};
	struct field opt_only[] = {
		{ BOTID_TAG_HASH, 4, be_1 },
		{ BOTID_TAG_SCHEME, 4, be_1 },
		{ BOTID_TAG_FORMAT, 4, be_1 },
	};
	size_t skip, i, n;

	assert_int_equal(decode_fields(BOTID_OP_HELLO, NULL, 0, &req),
	    BOTID_ERR_INVALID);
	assert_int_equal(decode_fields(BOTID_OP_PUBKEY, NULL, 0, &req),
	    BOTID_ERR_INVALID);
	assert_int_equal(decode_fields(BOTID_OP_CERT_CHAIN, NULL, 0, &req),
	    BOTID_ERR_INVALID);
	assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, opt_only, 3, &req),
	    BOTID_ERR_INVALID);
	/* Each required field of SIGN_DIGEST and SIGN_DATA left out in turn. */
	for (skip = 0; skip < NELEM(digest); skip++) {
		struct field f[NELEM(digest)];

		for (i = n = 0; i < NELEM(digest); i++)
			if (i != skip)
				f[n++] = digest[i];
		assert_int_equal(decode_fields(BOTID_OP_SIGN_DIGEST, f, n,
		    &req), BOTID_ERR_INVALID);
	}
	for (skip = 0; skip < NELEM(data); skip++) {
		struct field f[NELEM(data)];

		for (i = n = 0; i < NELEM(data); i++)
			if (i != skip)
				f[n++] = data[i];
		assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, f, n, &req),
		    BOTID_ERR_INVALID);
	}
	/* Any order is fine when everything is there. */
	{
		struct field f[] = { digest[2], digest[0], digest[1] };

		assert_int_equal(decode_fields(BOTID_OP_SIGN_DIGEST, f, 3,
		    &req), 0);
		assert_string_equal(req.bot, "alpha");
	}
}

static void
test_bot_names(void **state)
{
	static const char *good[] = { "a", "alpha", "A-Z_0.9", "-x", "x.",
	    "a..b", "0123456789012345678901234567890123456789012345678901234567890123" };
	static const struct {
		const char	*name;
		size_t		 len;
	} bad[] = {
		{ "", 0 }, { ".", 1 }, { ".hidden", 7 }, { "..", 2 },
		{ "a/b", 3 }, { "../x", 4 }, { "a b", 3 }, { "a\0b", 3 },
		{ "a\nb", 3 }, { "caf\xc3\xa9", 5 }, { "a:b", 3 }, { "\xff", 1 },
		{ "01234567890123456789012345678901234567890123456789012345678901234", 65 },
	};
	struct botid_request req;
	size_t i;

	for (i = 0; i < NELEM(good); i++) {
		struct field f[] = { { BOTID_TAG_BOT, strlen(good[i]), good[i] } };

		assert_int_equal(wire_bot_name_valid(good[i], strlen(good[i])),
		    1);
		assert_int_equal(decode_fields(BOTID_OP_PUBKEY, f, 1, &req), 0);
		assert_string_equal(req.bot, good[i]);
	}
	for (i = 0; i < NELEM(bad); i++) {
		struct field f[] = { { BOTID_TAG_BOT, bad[i].len, bad[i].name } };

		assert_int_equal(wire_bot_name_valid(bad[i].name, bad[i].len),
		    0);
		assert_int_equal(decode_fields(BOTID_OP_CERT_CHAIN, f, 1,
		    &req), BOTID_ERR_INVALID);
	}
	assert_int_equal(wire_bot_name_valid(NULL, 3), 0);
	/* The length rules, not a NUL: "alpha" as 3 bytes is "alp". */
	assert_int_equal(wire_bot_name_valid("alpha", 3), 1);
}

static void
test_trailing_bytes(void **state)
{
	struct botid_request req;
	uint8_t frame[sizeof(frame_sign_digest) + 8];
	size_t extra;

	memcpy(frame, frame_sign_digest, sizeof(frame_sign_digest));
	memset(frame + sizeof(frame_sign_digest), 0, 8);
	/* 1..5 bytes cannot hold a field header; 6 zeros are field tag 0. */
	for (extra = 1; extra <= 8; extra++) {
		assert_int_equal(wire_decode_request(frame + 4,
		    sizeof(frame_sign_digest) - 4 + extra, &req),
		    BOTID_ERR_INVALID);
		assert_int_equal(req.id, 5);
	}
	memcpy(frame, frame_list, sizeof(frame_list));
	frame[sizeof(frame_list)] = 0;
	assert_int_equal(wire_decode_request(frame + 4, sizeof(frame_list) - 3,
	    &req), BOTID_ERR_INVALID);
}

static void
test_u32_fields(void **state)
{
	static const uint8_t five[5] = { 0, 0, 0, 0, 1 };
	static const uint8_t zero[4] = { 0, 0, 0, 0 };
	static const uint8_t four[4] = { 0, 0, 0, 4 };
	static const uint8_t big[4] = { 0xff, 0xff, 0xff, 0xff };
	static const uint8_t high[4] = { 1, 0, 0, 1 };
	struct botid_request req;
	size_t len;

	/* A u32 is exactly four bytes. */
	for (len = 0; len <= 5; len++) {
		struct field f[] = { { BOTID_TAG_VERSION, len, five } };

		if (len == 4)
			continue;
		assert_int_equal(decode_fields(BOTID_OP_HELLO, f, 1, &req),
		    BOTID_ERR_INVALID);
	}
	{
		struct field f[] = { { BOTID_TAG_VERSION, 4, big } };

		assert_int_equal(decode_fields(BOTID_OP_HELLO, f, 1, &req), 0);
		assert_int_equal(req.version, UINT32_MAX);
	}
	/* HASH 1..3, SCHEME 0..3, FORMAT 0..1 and nothing else. */
	{
		const void *hashes[] = { zero, four, big, high };
		const void *schemes[] = { four, big, high };
		const void *formats[] = { be_2, be_3, big, high };
		size_t i;

		for (i = 0; i < NELEM(hashes); i++) {
			struct field f[] = {
				{ BOTID_TAG_BOT, 1, "a" },
				{ BOTID_TAG_DATA, 0, NULL },
				{ BOTID_TAG_HASH, 4, hashes[i] },
			};

			assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, f, 3,
			    &req), BOTID_ERR_INVALID);
		}
		for (i = 0; i < NELEM(schemes); i++) {
			struct field f[] = {
				{ BOTID_TAG_BOT, 1, "a" },
				{ BOTID_TAG_DATA, 0, NULL },
				{ BOTID_TAG_SCHEME, 4, schemes[i] },
			};

			assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, f, 3,
			    &req), BOTID_ERR_INVALID);
		}
		for (i = 0; i < NELEM(formats); i++) {
			struct field f[] = {
				{ BOTID_TAG_BOT, 1, "a" },
				{ BOTID_TAG_DATA, 0, NULL },
				{ BOTID_TAG_FORMAT, 4, formats[i] },
			};

			assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, f, 3,
			    &req), BOTID_ERR_INVALID);
		}
	}
	{
		struct field f[] = {
			{ BOTID_TAG_BOT, 1, "a" },
			{ BOTID_TAG_DATA, 0, NULL },
			{ BOTID_TAG_HASH, 8, "\0\0\0\1\0\0\0\1" },
		};

		assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, f, 3, &req),
		    BOTID_ERR_INVALID);
	}
	/* Every valid value of each enum does decode. */
	{
		struct field f[] = {
			{ BOTID_TAG_BOT, 1, "a" },
			{ BOTID_TAG_DATA, 0, NULL },
			{ BOTID_TAG_HASH, 4, be_3 },
			{ BOTID_TAG_SCHEME, 4, zero },
			{ BOTID_TAG_FORMAT, 4, zero },
		};

		assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, f, 5, &req),
		    0);
		assert_int_equal(req.hash, BOTID_HASH_SHA512);
		assert_int_equal(req.data_len, 0);
		f[3].value = be_3;
		f[4].value = be_1;
		assert_int_equal(decode_fields(BOTID_OP_SIGN_DATA, f, 5, &req),
		    0);
		assert_int_equal(req.scheme, BOTID_SCHEME_ECDSA);
		assert_int_equal(req.format, BOTID_FORMAT_RAW);
	}
}

/* JWT: SCOPE alone may repeat; audience, scope and ttl are checked. */
static void
test_jwt_fields(void **state)
{
	static const uint8_t ttl0[4] = { 0, 0, 0, 0 }, ttl60[4] = { 0, 0, 0, 60 };
	struct botid_request req;
	struct field many[2 + BOTID_MAX_SCOPES + 1];
	size_t i;

	(void)state;
	{
		struct field f[] = {
			{ BOTID_TAG_BOT, 1, "a" },
			{ BOTID_TAG_AUDIENCE, 9, "inventory" },
			{ BOTID_TAG_SCOPE, 14, "inventory:read" },
			{ BOTID_TAG_SCOPE, 15, "inventory:write" },
			{ BOTID_TAG_TTL, 4, ttl60 },
		};
		assert_int_equal(decode_fields(BOTID_OP_JWT, f, 5, &req), 0);
		assert_string_equal(req.audience, "inventory");
		assert_int_equal(req.nscopes, 2);
		assert_string_equal(req.scopes[1], "inventory:write");
		assert_int_equal(req.ttl, 60);
	}
	{
		struct field f[] = {
			{ BOTID_TAG_BOT, 1, "a" },
			{ BOTID_TAG_AUDIENCE, 1, "x" },
			{ BOTID_TAG_AUDIENCE, 1, "y" },
		};
		assert_int_equal(decode_fields(BOTID_OP_JWT, f, 3, &req),
		    BOTID_ERR_INVALID);
	}
	{
		struct field f[] = { { BOTID_TAG_BOT, 1, "a" } };
		assert_int_equal(decode_fields(BOTID_OP_JWT, f, 1, &req),
		    BOTID_ERR_INVALID);	/* no audience */
	}
	{
		static const char *const bad_aud[] = { "", "a b", "a\"b",
		    "a\\b", "\x7f", "\xc3\xa9" };
		for (i = 0; i < NELEM(bad_aud); i++) {
			struct field f[] = {
				{ BOTID_TAG_BOT, 1, "a" },
				{ BOTID_TAG_AUDIENCE, strlen(bad_aud[i]),
				    bad_aud[i] },
			};
			assert_int_equal(decode_fields(BOTID_OP_JWT, f, 2,
			    &req), BOTID_ERR_INVALID);
		}
	}
	{
		static const char *const bad_scope[] = { "", "a b", "a\"",
		    "a,b", "a*" };
		for (i = 0; i < NELEM(bad_scope); i++) {
			struct field f[] = {
				{ BOTID_TAG_BOT, 1, "a" },
				{ BOTID_TAG_AUDIENCE, 1, "x" },
				{ BOTID_TAG_SCOPE, strlen(bad_scope[i]),
				    bad_scope[i] },
			};
			assert_int_equal(decode_fields(BOTID_OP_JWT, f, 3,
			    &req), BOTID_ERR_INVALID);
		}
	}
	{
		struct field f[] = {
			{ BOTID_TAG_BOT, 1, "a" },
			{ BOTID_TAG_AUDIENCE, 1, "x" },
			{ BOTID_TAG_TTL, 4, ttl0 },
		};
		assert_int_equal(decode_fields(BOTID_OP_JWT, f, 3, &req),
		    BOTID_ERR_INVALID);
	}
	many[0] = (struct field){ BOTID_TAG_BOT, 1, "a" };
	many[1] = (struct field){ BOTID_TAG_AUDIENCE, 1, "x" };
	for (i = 0; i <= BOTID_MAX_SCOPES; i++)
		many[2 + i] = (struct field){ BOTID_TAG_SCOPE, 1, "s" };
	assert_int_equal(decode_fields(BOTID_OP_JWT, many,
	    2 + BOTID_MAX_SCOPES, &req), 0);
	assert_int_equal(decode_fields(BOTID_OP_JWT, many,
	    3 + BOTID_MAX_SCOPES, &req), BOTID_ERR_INVALID);
	assert_int_equal(wire_scope_valid("x", 1), 1);
	assert_int_equal(wire_scope_valid(NULL, 0), 0);
}

static void
test_digest_lengths(void **state)
{
	static uint8_t big[BOTID_MAX_DIGEST + 2];
	static const uint8_t *hashes[] = { be_1, be_2, be_3 };
	struct botid_request req;
	size_t h, len;
	int r;

	for (h = 0; h < NELEM(hashes); h++) {
		for (len = 0; len <= sizeof(big); len++) {
			struct field f[] = {
				{ BOTID_TAG_BOT, 1, "a" },
				{ BOTID_TAG_HASH, 4, hashes[h] },
				{ BOTID_TAG_DIGEST, len, big },
			};

			r = decode_fields(BOTID_OP_SIGN_DIGEST, f, 3, &req);
			if (len == wire_hash_len((uint32_t)h + 1)) {
				assert_int_equal(r, 0);
				assert_int_equal(req.digest_len, len);
			} else
				assert_int_equal(r, BOTID_ERR_INVALID);
		}
	}
}

static void
test_field_length_past_end(void **state)
{
	static const uint32_t lens[] = { 6, 7, 100, 0x7fffffff, 0xfffffff9,
	    0xfffffffa, 0xffffffff };
	struct botid_request req;
	struct botid_buf b;
	size_t i;

	for (i = 0; i < NELEM(lens); i++) {
		/* BOT claims lens[i] bytes; five are there. */
		buf_init(&b, 64);
		assert_int_equal(buf_put_u8(&b, BOTID_OP_PUBKEY), 0);
		assert_int_equal(buf_put_u32(&b, 1234), 0);
		assert_int_equal(buf_put_u16(&b, BOTID_TAG_BOT), 0);
		assert_int_equal(buf_put_u32(&b, lens[i]), 0);
		assert_int_equal(buf_put(&b, "alpha", 5), 0);
		assert_int_equal(wire_decode_request(buf_ptr(&b), buf_len(&b),
		    &req), BOTID_ERR_INVALID);
		assert_int_equal(req.op, BOTID_OP_PUBKEY);
		assert_int_equal(req.id, 1234);
		buf_reset(&b);
	}
}

/*
 * A flood of fields: with repeats refused, no v1 request reaches
 * BOTID_MAX_FIELDS, and the flood stops at the first repeat.
 */
static void
test_many_fields(void **state)
{
	struct botid_request req;
	struct field f[BOTID_MAX_FIELDS + 1];
	size_t i;

	for (i = 0; i < NELEM(f); i++) {
		f[i].tag = BOTID_TAG_BOT;
		f[i].len = 1;
		f[i].value = "a";
	}
	assert_int_equal(decode_fields(BOTID_OP_PUBKEY, f, NELEM(f), &req),
	    BOTID_ERR_INVALID);
}

static void
test_encoder_errors(void **state)
{
	struct botid_buf out, view;
	uint32_t status = BOTID_STATUS_OK;
	size_t mark;

	/* Buffer too small for the header: nothing written. */
	buf_init(&out, 8);
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_HELLO, 1, &status,
	    &mark), BOTID_ERR_TOO_LARGE);
	assert_int_equal(buf_len(&out), 0);
	assert_int_equal(mark, 0);
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_HELLO, 1, NULL,
	    &mark), BOTID_ERR_TOO_LARGE);
	buf_reset(&out);

	/* A field that does not fit leaves the frame as it was. */
	buf_init(&out, 20);
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_PUBKEY, 1, NULL,
	    &mark), 0);
	assert_int_equal(buf_len(&out), 9);
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "abcdef"),
	    BOTID_ERR_TOO_LARGE);
	assert_int_equal(buf_len(&out), 9);
	assert_int_equal(wire_put_u32(&out, BOTID_TAG_HASH, 1), 0);
	assert_int_equal(buf_len(&out), 19);
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DATA, "", 0),
	    BOTID_ERR_TOO_LARGE);
	assert_int_equal(buf_len(&out), 19);
	/* Bad arguments. */
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, NULL),
	    BOTID_ERR_INVALID);
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DATA, NULL, 1),
	    BOTID_ERR_INVALID);
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DATA, "x",
	    (size_t)BOTID_MAX_FRAME + 1), BOTID_ERR_TOO_LARGE);
	assert_int_equal(wire_frame_end(&out, 20), BOTID_ERR_INVALID);
	assert_int_equal(wire_frame_end(&out, 11), BOTID_ERR_INVALID);
	wire_frame_abort(&out, 100);	/* a bad mark changes nothing */
	assert_int_equal(buf_len(&out), 19);
	wire_frame_abort(&out, mark);
	assert_int_equal(buf_len(&out), 0);
	buf_reset(&out);

	/* Error replies need an error status. */
	buf_init(&out, 64);
	assert_int_equal(wire_put_error(&out, 1, 1, BOTID_STATUS_OK, "x"),
	    BOTID_ERR_INVALID);
	assert_int_equal(buf_len(&out), 0);
	buf_reset(&out);
	buf_init(&out, 20);
	assert_int_equal(wire_put_error(&out, 1, 1, BOTID_STATUS_INTERNAL,
	    "a message longer than the buffer"), BOTID_ERR_TOO_LARGE);
	assert_int_equal(buf_len(&out), 0);
	buf_reset(&out);

	/* A read-only view cannot be written. */
	buf_init_view(&view, frame_list, sizeof(frame_list));
	assert_int_equal(wire_frame_begin(&view, BOTID_OP_LIST, 1, NULL,
	    &mark), BOTID_ERR_INVALID);
	assert_int_equal(buf_len(&view), sizeof(frame_list));
}

/*
 * Frames appended behind unsent bytes, and a write that has to compact
 * the buffer in the middle of a frame: the length must still land in the
 * right place.
 */
static void
test_frame_after_consumed_bytes(void **state)
{
	struct botid_request req;
	struct botid_buf out;
	size_t mark, body_len;
	uint8_t *p;

	buf_init(&out, 64);
	assert_int_equal(buf_reserve(&out, 50, &p), 0);
	memset(p, 0xee, 50);
	assert_int_equal(buf_consume(&out, 48), 0);	/* 2 unsent bytes */
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_PUBKEY, 3, NULL,
	    &mark), 0);
	assert_int_equal(mark, 2);
	/* 2 + 9 + 11 bytes unread, but 59 + 11 > 64: compaction. */
	assert_int_equal(wire_put_string(&out, BOTID_TAG_BOT, "alpha"), 0);
	assert_int_equal(wire_frame_end(&out, mark), 0);
	assert_int_equal(buf_len(&out), 2 + sizeof(frame_pubkey));
	assert_memory_equal(buf_ptr(&out), "\xee\xee", 2);
	assert_memory_equal(buf_ptr(&out) + 2, frame_pubkey,
	    sizeof(frame_pubkey));
	assert_int_equal(buf_consume(&out, 2), 0);
	assert_int_equal(wire_frame_peek(&out, BOTID_MAX_FRAME, &body_len), 0);
	assert_int_equal(wire_decode_request(buf_ptr(&out) + 4, body_len,
	    &req), 0);
	assert_string_equal(req.bot, "alpha");

	/* Abort after compaction drops exactly the open frame. */
	assert_int_equal(buf_consume(&out, 4), 0);
	assert_int_equal(wire_frame_begin(&out, BOTID_OP_LIST, 2, NULL,
	    &mark), 0);
	assert_int_equal(mark, sizeof(frame_pubkey) - 4);
	/* 6 + 31 + 30 > 64 again. */
	assert_int_equal(wire_put_bytes(&out, BOTID_TAG_DATA,
	    "012345678901234567890123456789", 30), 0);
	assert_int_equal(buf_len(&out), sizeof(frame_pubkey) - 4 + 9 + 36);
	wire_frame_abort(&out, mark);
	assert_int_equal(buf_len(&out), sizeof(frame_pubkey) - 4);
	buf_reset(&out);
}

static void
test_reply_reader_errors(void **state)
{
	static const uint8_t request_op[] = { 0x01, 0, 0, 0, 1, 0, 0, 0, 0 };
	static const uint8_t odd_tag[] = {
		0x82, 0, 0, 0, 1, 0, 0, 0, 0,
		0xff, 0xff, 0, 0, 0, 1, 'z',		/* unknown tag: returned */
		0x00, 0x03, 0, 0, 0, 2, 'h',		/* past the end */
	};
	static const uint8_t huge_len[] = {
		0x82, 0, 0, 0, 1, 0, 0, 0, 0,
		0x00, 0x03, 0xff, 0xff, 0xff, 0xff, 'x',
	};
	struct botid_buf body;
	const uint8_t *value;
	uint32_t id, status;
	uint16_t tag;
	size_t len;
	uint8_t op;

	buf_init_view(&body, request_op, sizeof(request_op));
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status),
	    BOTID_ERR_INVALID);
	assert_int_equal(op, 0);
	assert_int_equal(id, 0);
	assert_int_equal(status, 0);
	/* A refused header consumes nothing (the fuzzer found it did). */
	assert_int_equal(buf_len(&body), sizeof(request_op));

	buf_init_view(&body, odd_tag, sizeof(odd_tag));
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status), 0);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len), 0);
	assert_int_equal(tag, 0xffff);
	assert_int_equal(len, 1);
	assert_int_equal(value[0], 'z');
	assert_int_equal(wire_get_field(&body, &tag, &value, &len),
	    BOTID_ERR_INVALID);
	assert_int_equal(buf_len(&body), 7);
	assert_int_equal(tag, 0);
	assert_null(value);

	buf_init_view(&body, huge_len, sizeof(huge_len));
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status), 0);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len),
	    BOTID_ERR_INVALID);
	assert_int_equal(buf_len(&body), 7);
}

static void
test_status_mapping(void **state)
{
	static const struct {
		int		err;
		uint32_t	status;
	} to_status[] = {
		{ BOTID_OK, BOTID_STATUS_OK },
		{ BOTID_ERR_INVALID, BOTID_STATUS_MALFORMED },
		{ BOTID_ERR_PROTOCOL, BOTID_STATUS_MALFORMED },
		{ BOTID_ERR_UNSUPPORTED, BOTID_STATUS_UNSUPPORTED },
		{ BOTID_ERR_VERSION, BOTID_STATUS_VERSION },
		{ BOTID_ERR_DENIED, BOTID_STATUS_DENIED },
		{ BOTID_ERR_NOT_FOUND, BOTID_STATUS_DENIED },
		{ BOTID_ERR_TPM, BOTID_STATUS_BACKEND },
		{ BOTID_ERR_PKCS11, BOTID_STATUS_BACKEND },
		{ BOTID_ERR_UNAVAILABLE, BOTID_STATUS_UNAVAILABLE },
		{ BOTID_ERR_EXPORTABLE, BOTID_STATUS_BACKEND },
		{ BOTID_ERR_BUSY, BOTID_STATUS_BUSY },
		{ BOTID_ERR_TOO_LARGE, BOTID_STATUS_TOO_LARGE },
		{ BOTID_ERR_INTERNAL, BOTID_STATUS_INTERNAL },
		{ BOTID_ERR_ALLOC, BOTID_STATUS_INTERNAL },
		{ BOTID_ERR_INCOMPLETE, BOTID_STATUS_INTERNAL },
		{ BOTID_ERR_IO, BOTID_STATUS_INTERNAL },
		{ BOTID_ERR_CONFIG, BOTID_STATUS_INTERNAL },
		{ BOTID_ERR_CRYPTO, BOTID_STATUS_INTERNAL },
		{ BOTID_ERR_CLOSED, BOTID_STATUS_INTERNAL },
		{ BOTID_ERR_TIMEOUT, BOTID_STATUS_INTERNAL },
		{ BOTID_ERR_AUDIT_UNAVAILABLE, BOTID_STATUS_AUDIT_UNAVAILABLE },
		{ -1000, BOTID_STATUS_INTERNAL },
		{ 1, BOTID_STATUS_INTERNAL },
	};
	static const struct {
		uint32_t	status;
		int		err;
	} to_err[] = {
		{ BOTID_STATUS_OK, 0 },
		{ BOTID_STATUS_MALFORMED, BOTID_ERR_INVALID },
		{ BOTID_STATUS_VERSION, BOTID_ERR_VERSION },
		{ BOTID_STATUS_UNKNOWN_OP, BOTID_ERR_UNSUPPORTED },
		{ BOTID_STATUS_DENIED, BOTID_ERR_DENIED },
		{ BOTID_STATUS_UNSUPPORTED, BOTID_ERR_UNSUPPORTED },
		{ BOTID_STATUS_BACKEND, BOTID_ERR_UNAVAILABLE },
		{ BOTID_STATUS_BUSY, BOTID_ERR_BUSY },
		{ BOTID_STATUS_TOO_LARGE, BOTID_ERR_TOO_LARGE },
		{ BOTID_STATUS_INTERNAL, BOTID_ERR_INTERNAL },
		{ BOTID_STATUS_NO_CERT, BOTID_ERR_NOT_FOUND },
		{ BOTID_STATUS_UNAVAILABLE, BOTID_ERR_UNAVAILABLE },
		{ BOTID_STATUS_AUDIT_UNAVAILABLE, BOTID_ERR_AUDIT_UNAVAILABLE },
		{ 13, BOTID_ERR_PROTOCOL },
		{ 0x80000000u, BOTID_ERR_PROTOCOL },
		{ UINT32_MAX, BOTID_ERR_PROTOCOL },
	};
	uint32_t s;
	size_t i;

	for (i = 0; i < NELEM(to_status); i++)
		assert_int_equal(wire_err_to_status(to_status[i].err),
		    to_status[i].status);
	for (i = 0; i < NELEM(to_err); i++)
		assert_int_equal(wire_status_to_err(to_err[i].status),
		    to_err[i].err);
	/*
	 * Every status but UNKNOWN_OP survives a trip through an error, and
	 * BACKEND, which a client takes as an outage like UNAVAILABLE.
	 */
	for (s = BOTID_STATUS_OK; s <= BOTID_STATUS_INTERNAL; s++)
		if (s != BOTID_STATUS_UNKNOWN_OP && s != BOTID_STATUS_BACKEND)
			assert_int_equal(wire_err_to_status(
			    wire_status_to_err(s)), s);
	assert_int_equal(wire_err_to_status(wire_status_to_err(
	    BOTID_STATUS_UNAVAILABLE)), BOTID_STATUS_UNAVAILABLE);
}

static void
test_hash_len(void **state)
{
	assert_int_equal(wire_hash_len(BOTID_HASH_SHA256), 32);
	assert_int_equal(wire_hash_len(BOTID_HASH_SHA384), 48);
	assert_int_equal(wire_hash_len(BOTID_HASH_SHA512), 64);
	assert_int_equal(wire_hash_len(0), 0);
	assert_int_equal(wire_hash_len(4), 0);
	assert_int_equal(wire_hash_len(UINT32_MAX), 0);
}

/* A BUSY reply with its retry hint: known bytes, read back by a client. */
static void
test_busy_reply(void **state)
{
	static const uint8_t busy[] = {
		0x00, 0x00, 0x00, 0x1d,
		0x85, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x07,
		0x00, 0x21, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x28,
		0x00, 0x0e, 0x00, 0x00, 0x00, 0x04, 'b', 'u', 's', 'y',
	};
	struct botid_buf out, body;
	const uint8_t *value;
	uint32_t id, status, v;
	uint16_t tag;
	size_t len;
	uint8_t op;

	(void)state;
	buf_init(&out, 4 + BOTID_MAX_FRAME);
	assert_int_equal(wire_put_busy(&out, BOTID_OP_SIGN_DIGEST, 7, 40,
	    "busy"), 0);
	assert_int_equal(buf_len(&out), sizeof(busy));
	assert_memory_equal(buf_ptr(&out), busy, sizeof(busy));
	buf_reset(&out);
	buf_init_view(&body, busy + 4, sizeof(busy) - 4);
	assert_int_equal(wire_get_reply_header(&body, &op, &id, &status), 0);
	assert_int_equal(status, BOTID_STATUS_BUSY);
	assert_int_equal(wire_status_to_err(status), BOTID_ERR_BUSY);
	assert_int_equal(wire_get_field(&body, &tag, &value, &len), 0);
	assert_int_equal(tag, BOTID_TAG_RETRY_AFTER);
	assert_int_equal(wire_field_u32(value, len, &v), 0);
	assert_int_equal(v, 40);
	/* No message: the hint alone. */
	buf_init(&out, 64);
	assert_int_equal(wire_put_busy(&out, 1, 1, 1, NULL), 0);
	assert_int_equal(buf_len(&out), 4 + 9 + 10);
	buf_reset(&out);
	/* Too small a buffer: an error, nothing left behind. */
	buf_init(&out, 20);
	assert_int_equal(wire_put_busy(&out, 1, 1, 1, "a message longer "
	    "than the buffer"), BOTID_ERR_TOO_LARGE);
	assert_int_equal(buf_len(&out), 0);
	buf_reset(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_peek),
		cmocka_unit_test(test_frame_peek_exact_max),
		cmocka_unit_test(test_encode_request_vectors),
		cmocka_unit_test(test_decode_request_vectors),
		cmocka_unit_test(test_reply_vectors),
		cmocka_unit_test(test_reply_roundtrip),
		cmocka_unit_test(test_request_roundtrip),
		cmocka_unit_test(test_sign_data_max),
		cmocka_unit_test(test_truncation_every_offset),
		cmocka_unit_test(test_reply_truncation_every_offset),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_byte_flips),
		cmocka_unit_test(test_sign_digest_flips_rejected),
		cmocka_unit_test(test_unknown_op),
		cmocka_unit_test(test_rotate_deprovision),
		cmocka_unit_test(test_inventory),
		cmocka_unit_test(test_short_header),
		cmocka_unit_test(test_unknown_tag),
		cmocka_unit_test(test_duplicate_field),
		cmocka_unit_test(test_field_not_allowed),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_bot_names),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_u32_fields),
		cmocka_unit_test(test_jwt_fields),
		cmocka_unit_test(test_digest_lengths),
		cmocka_unit_test(test_field_length_past_end),
		cmocka_unit_test(test_many_fields),
		cmocka_unit_test(test_encoder_errors),
		cmocka_unit_test(test_frame_after_consumed_bytes),
		cmocka_unit_test(test_reply_reader_errors),
		cmocka_unit_test(test_status_mapping),
		cmocka_unit_test(test_hash_len),
		cmocka_unit_test(test_busy_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
