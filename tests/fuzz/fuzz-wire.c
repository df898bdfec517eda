/*
 * libFuzzer harness for lib/wire.c: the input is what a peer could send,
 * taken apart the way the agent does (frames out of a bounded, chunk-filled
 * input buffer, then the request decoder) and the way clients do (reply
 * header, then fields). Invariants that must hold on any input abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/wire.h"
#include "tests/fuzz/fuzz.h"

/* Smaller than the agent's read size, so frames straddle reads here. */
#define FUZZ_READ_CHUNK	4093

/* A decoded request must satisfy what the decoder promises its callers. */
static void
check_request(const uint8_t *body, size_t len, const struct botid_request *r)
{
	size_t bot_len = strlen(r->bot);

	size_t i;

	FUZZ_CHECK(r->op >= BOTID_OP_HELLO && r->op <= BOTID_OP_DEPROVISION);
	FUZZ_CHECK(bot_len == 0 || wire_bot_name_valid(r->bot, bot_len));
	/* Every operation on one bot names it; INVENTORY takes no fields. */
	if ((r->op >= BOTID_OP_PUBKEY && r->op <= BOTID_OP_JWT) ||
	    r->op == BOTID_OP_ROTATE)
		FUZZ_CHECK(bot_len > 0);
	if (r->op == BOTID_OP_INVENTORY || r->op == BOTID_OP_DEPROVISION)
		FUZZ_CHECK(bot_len == 0 && r->nscopes == 0);
	FUZZ_CHECK(r->hash == 0 || wire_hash_len(r->hash) != 0);
	FUZZ_CHECK(r->scheme <= BOTID_SCHEME_ECDSA);
	FUZZ_CHECK(r->format <= BOTID_FORMAT_RAW);
	/* Views must lie inside the body they were decoded from. */
	if (r->digest != NULL)
		FUZZ_CHECK(r->digest >= body && r->digest_len <=
		    len - (size_t)(r->digest - body));
	if (r->data != NULL)
		FUZZ_CHECK(r->data >= body && r->data_len <=
		    len - (size_t)(r->data - body));
	if (r->op == BOTID_OP_SIGN_DIGEST)
		FUZZ_CHECK(r->digest_len == wire_hash_len(r->hash) &&
		    r->digest_len <= BOTID_MAX_DIGEST);
	if (r->op == BOTID_OP_JWT)
		FUZZ_CHECK(wire_audience_valid(r->audience,
		    strlen(r->audience)));
	FUZZ_CHECK(r->nscopes <= BOTID_MAX_SCOPES);
	for (i = 0; i < r->nscopes; i++)
		FUZZ_CHECK(wire_scope_valid(r->scopes[i],
		    strlen(r->scopes[i])));
}

/*
 * Re-encodes a decoded request and decodes it again: the encoder must
 * accept everything the decoder accepted, and nothing may change.
 */
static void
check_reencode(const struct botid_request *r)
{
	struct botid_request again;
	struct botid_buf out;
	size_t mark, body_len, i;
	int ok;

	buf_init(&out, 4 + BOTID_MAX_FRAME);
	ok = wire_frame_begin(&out, r->op, r->id, NULL, &mark) == 0 &&
	    ((r->present & (1u << BOTID_TAG_VERSION)) == 0 ||
	    wire_put_u32(&out, BOTID_TAG_VERSION, r->version) == 0) &&
	    ((r->present & (1u << BOTID_TAG_BOT)) == 0 ||
	    wire_put_string(&out, BOTID_TAG_BOT, r->bot) == 0) &&
	    ((r->present & (1u << BOTID_TAG_HASH)) == 0 ||
	    wire_put_u32(&out, BOTID_TAG_HASH, r->hash) == 0) &&
	    ((r->present & (1u << BOTID_TAG_DIGEST)) == 0 ||
	    wire_put_bytes(&out, BOTID_TAG_DIGEST, r->digest,
	    r->digest_len) == 0) &&
	    ((r->present & (1u << BOTID_TAG_DATA)) == 0 ||
	    wire_put_bytes(&out, BOTID_TAG_DATA, r->data, r->data_len) == 0) &&
	    ((r->present & (1u << BOTID_TAG_SCHEME)) == 0 ||
	    wire_put_u32(&out, BOTID_TAG_SCHEME, r->scheme) == 0) &&
	    ((r->present & (1u << BOTID_TAG_FORMAT)) == 0 ||
	    wire_put_u32(&out, BOTID_TAG_FORMAT, r->format) == 0) &&
	    ((r->present & (1u << BOTID_TAG_AUDIENCE)) == 0 ||
	    wire_put_string(&out, BOTID_TAG_AUDIENCE, r->audience) == 0) &&
	    ((r->present & (1u << BOTID_TAG_TTL)) == 0 ||
	    wire_put_u32(&out, BOTID_TAG_TTL, r->ttl) == 0);
	for (i = 0; ok && i < r->nscopes; i++)
		ok = wire_put_string(&out, BOTID_TAG_SCOPE, r->scopes[i]) == 0;
	ok = ok && wire_frame_end(&out, mark) == 0;
	FUZZ_CHECK(ok);
	FUZZ_CHECK(wire_frame_peek(&out, BOTID_MAX_FRAME, &body_len) == 0);
	FUZZ_CHECK(body_len + 4 == buf_len(&out));
	FUZZ_CHECK(wire_decode_request(buf_ptr(&out) + 4, body_len,
	    &again) == 0);
	FUZZ_CHECK(again.op == r->op && again.id == r->id &&
	    again.present == r->present && again.version == r->version &&
	    again.hash == r->hash && again.scheme == r->scheme &&
	    again.format == r->format && strcmp(again.bot, r->bot) == 0 &&
	    again.digest_len == r->digest_len &&
	    again.data_len == r->data_len && again.ttl == r->ttl &&
	    again.nscopes == r->nscopes &&
	    strcmp(again.audience, r->audience) == 0);
	for (i = 0; i < r->nscopes; i++)
		FUZZ_CHECK(strcmp(again.scopes[i], r->scopes[i]) == 0);
	FUZZ_CHECK(r->digest_len == 0 ||
	    memcmp(again.digest, r->digest, r->digest_len) == 0);
	FUZZ_CHECK(r->data_len == 0 ||
	    memcmp(again.data, r->data, r->data_len) == 0);
	buf_reset(&out);
}

/*
 * Reads one reply body the way a client does. Checks that a failed field
 * read consumes nothing and that every value lies inside the body.
 */
static void
read_reply(const uint8_t *p, size_t len)
{
	struct botid_buf body, before;
	const uint8_t *value;
	uint32_t id, status;
	uint16_t tag;
	size_t vlen, n = 0;
	uint8_t op;
	int r;

	buf_init_view(&body, p, len);
	r = wire_get_reply_header(&body, &op, &id, &status);
	if (r != 0) {
		FUZZ_CHECK(buf_len(&body) == len && op == 0 && id == 0 &&
		    status == 0);
		return;
	}
	FUZZ_CHECK(len >= 9 && (op & BOTID_OP_REPLY) != 0);
	(void)wire_status_to_err(status);
	for (;;) {
		before = body;
		r = wire_get_field(&body, &tag, &value, &vlen);
		if (r != 0) {
			FUZZ_CHECK(r == BOTID_ERR_INCOMPLETE ||
			    r == BOTID_ERR_INVALID);
			FUZZ_CHECK(body.off == before.off && value == NULL &&
			    vlen == 0);
			FUZZ_CHECK(r != BOTID_ERR_INCOMPLETE ||
			    buf_len(&body) == 0);
			break;
		}
		FUZZ_CHECK(value >= p && vlen <= len - (size_t)(value - p));
		FUZZ_CHECK(++n <= len / 6);
	}
}

/* What the agent does with one complete frame body: decode, reply. */
static void
agent_frame(const uint8_t *body, size_t len, struct botid_buf *out)
{
	struct botid_request req;
	uint32_t status;
	size_t mark;
	int r;

	r = wire_decode_request(body, len, &req);
	if (r != 0) {
		/* Only the header may survive a failed decode. */
		FUZZ_CHECK(req.present == 0 && req.bot[0] == '\0' &&
		    req.digest == NULL && req.data == NULL);
		status = r == BOTID_ERR_UNSUPPORTED ?
		    BOTID_STATUS_UNKNOWN_OP : wire_err_to_status(r);
		FUZZ_CHECK(status != BOTID_STATUS_OK);
		FUZZ_CHECK(wire_put_error(out, req.op, req.id, status,
		    "malformed request") == 0);
		return;
	}
	check_request(body, len, &req);
	check_reencode(&req);
	/* A success reply echoing the bot, as PUBKEY and LIST replies do. */
	status = BOTID_STATUS_OK;
	FUZZ_CHECK(wire_frame_begin(out, req.op, req.id, &status, &mark) == 0);
	if (req.bot[0] != '\0')
		FUZZ_CHECK(wire_put_string(out, BOTID_TAG_BOT, req.bot) == 0);
	FUZZ_CHECK(wire_frame_end(out, mark) == 0);
}

/*
 * The agent's input path: fill a bounded buffer in chunks, take every
 * complete frame, stop for good at a bad length as the agent hangs up.
 * Each reply is then read back with the client-side reader.
 */
static void
agent_stream(const uint8_t *data, size_t size)
{
	struct botid_buf in, out;
	size_t body_len, fed = 0, want, reply_len;
	uint8_t *p;
	int r, dead = 0;

	buf_init(&in, 4 + BOTID_MAX_FRAME);
	buf_init(&out, 4 + BOTID_MAX_FRAME);
	while (!dead && fed < size) {
		buf_compact(&in);
		want = in.max - buf_len(&in);
		if (want > FUZZ_READ_CHUNK)
			want = FUZZ_READ_CHUNK;
		if (want > size - fed)
			want = size - fed;
		/* A full buffer always holds a whole frame, or a bad length. */
		FUZZ_CHECK(want > 0);
		FUZZ_CHECK(buf_reserve(&in, want, &p) == 0);
		memcpy(p, data + fed, want);
		fed += want;
		for (;;) {
			r = wire_frame_peek(&in, BOTID_MAX_FRAME, &body_len);
			if (r == BOTID_ERR_INCOMPLETE)
				break;
			if (r != 0) {
				FUZZ_CHECK(r == BOTID_ERR_TOO_LARGE ||
				    r == BOTID_ERR_INVALID);
				FUZZ_CHECK(wire_put_error(&out, 0, 0,
				    wire_err_to_status(r), NULL) == 0);
				dead = 1;
			} else {
				FUZZ_CHECK(body_len > 0 &&
				    body_len <= BOTID_MAX_FRAME &&
				    body_len <= buf_len(&in) - 4);
				FUZZ_CHECK(buf_consume(&in, 4) == 0);
				agent_frame(buf_ptr(&in), body_len, &out);
				FUZZ_CHECK(buf_consume(&in, body_len) == 0);
			}
			/* Our own reply must read back as a well-formed one. */
			FUZZ_CHECK(wire_frame_peek(&out, BOTID_MAX_FRAME,
			    &reply_len) == 0);
			FUZZ_CHECK(reply_len + 4 == buf_len(&out));
			read_reply(buf_ptr(&out) + 4, reply_len);
			buf_reset(&out);
			if (dead)
				break;
		}
	}
	buf_reset(&in);
	buf_reset(&out);
}

/* The client's input path: frames of replies, each read field by field. */
static void
client_stream(const uint8_t *data, size_t size)
{
	struct botid_buf in;
	size_t body_len;

	buf_init_view(&in, data, size);
	while (wire_frame_peek(&in, BOTID_MAX_FRAME, &body_len) == 0) {
		FUZZ_CHECK(buf_consume(&in, 4) == 0);
		read_reply(buf_ptr(&in), body_len);
		FUZZ_CHECK(buf_consume(&in, body_len) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct botid_request req;

	agent_stream(data, size);
	client_stream(data, size);
	/* The whole input as one body: reaches the parsers without framing. */
	if (wire_decode_request(data, size, &req) == 0)
		check_request(data, size, &req);
	read_reply(data, size);
	return 0;
}
