/*
 * Unit tests for agent/ssh-agent.c and lib/sshkey.c: key blobs compared
 * with what ssh-keygen -i makes of the same keys, request frames written
 * out byte by byte, truncation at every offset, bit flips, the algorithm
 * choice (never SHA-1), reply encodings, and session-bind signatures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "agent/ssh-agent.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/sshkey.h"
#include "lib/wire.h"

/* A P-256 and an RSA-1024 key: DER SPKI and ssh-keygen -i -m PKCS8 blob. */
static const uint8_t ec_spki[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00, 0x04, 0x35, 0x5b, 0xd3, 0x0a, 0x2d, 0xe5, 0x93, 0x33, 0x5d,
	0x42, 0xc7, 0x33, 0x21, 0x8f, 0xb0, 0xf4, 0x37, 0x78, 0x17, 0x01, 0xe0,
	0xfb, 0x48, 0x17, 0xde, 0x1f, 0xe7, 0xdc, 0x2b, 0x5b, 0x8d, 0x12, 0x59,
	0x41, 0x22, 0xb3, 0xdd, 0xf2, 0x70, 0x05, 0x18, 0x1c, 0x7e, 0x32, 0xe3,
	0x0f, 0x9e, 0x39, 0x65, 0x7e, 0x68, 0x9b, 0x25, 0xf4, 0x38, 0xbb, 0xc9,
	0x4b, 0x5b, 0xc4, 0xab, 0xc1, 0x0e, 0x03,
};

static const uint8_t ec_blob[] = {
	0x00, 0x00, 0x00, 0x13, 0x65, 0x63, 0x64, 0x73, 0x61, 0x2d, 0x73, 0x68,
	0x61, 0x32, 0x2d, 0x6e, 0x69, 0x73, 0x74, 0x70, 0x32, 0x35, 0x36, 0x00,
	0x00, 0x00, 0x08, 0x6e, 0x69, 0x73, 0x74, 0x70, 0x32, 0x35, 0x36, 0x00,
	0x00, 0x00, 0x41, 0x04, 0x35, 0x5b, 0xd3, 0x0a, 0x2d, 0xe5, 0x93, 0x33,
	0x5d, 0x42, 0xc7, 0x33, 0x21, 0x8f, 0xb0, 0xf4, 0x37, 0x78, 0x17, 0x01,
	0xe0, 0xfb, 0x48, 0x17, 0xde, 0x1f, 0xe7, 0xdc, 0x2b, 0x5b, 0x8d, 0x12,
	0x59, 0x41, 0x22, 0xb3, 0xdd, 0xf2, 0x70, 0x05, 0x18, 0x1c, 0x7e, 0x32,
	0xe3, 0x0f, 0x9e, 0x39, 0x65, 0x7e, 0x68, 0x9b, 0x25, 0xf4, 0x38, 0xbb,
	0xc9, 0x4b, 0x5b, 0xc4, 0xab, 0xc1, 0x0e, 0x03,
};

static const uint8_t rsa_spki[] = {
	0x30, 0x81, 0x9f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
	0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x81, 0x8d, 0x00, 0x30, 0x81,
	0x89, 0x02, 0x81, 0x81, 0x00, 0xb4, 0x8a, 0x51, 0xd0, 0x42, 0x99, 0xc8,
	0xc3, 0x33, 0x68, 0x9e, 0xdb, 0xec, 0xa6, 0xdf, 0xe9, 0x19, 0x4f, 0x53,
	0x2f, 0x95, 0x17, 0xaf, 0xc0, 0x39, 0x14, 0xd4, 0x5e, 0x5a, 0x60, 0xc1,
	0x6f, 0x4d, 0x9a, 0xa6, 0xff, 0x77, 0x29, 0x17, 0x31, 0xaf, 0x0a, 0xe8,
	0xc8, 0x2e, 0xba, 0xa8, 0xa1, 0x3c, 0x59, 0xd9, 0x64, 0x47, 0x4a, 0x28,
	0x80, 0xa3, 0x5f, 0xef, 0xc5, 0x2d, 0x57, 0xbf, 0xaa, 0x59, 0x42, 0xb6,
	0xdc, 0xcc, 0x5f, 0xc7, 0x05, 0xb9, 0x3e, 0x40, 0xd9, 0xa2, 0x0b, 0x97,
	0x69, 0x4e, 0xa0, 0x35, 0xd7, 0x38, 0xfa, 0x09, 0x40, 0xbf, 0x60, 0x01,
	0xb1, 0x99, 0x28, 0xe7, 0x34, 0x1d, 0x36, 0xf7, 0xda, 0x5a, 0x9f, 0x56,
	0x1c, 0xd7, 0x24, 0x7a, 0xed, 0xc2, 0x4e, 0xef, 0x20, 0x67, 0x50, 0x2c,
	0x34, 0xee, 0x1b, 0x88, 0x5b, 0xcc, 0x4e, 0x37, 0x44, 0xfb, 0x76, 0xe7,
	0x29, 0x02, 0x03, 0x01, 0x00, 0x01,
};

static const uint8_t rsa_blob[] = {
	0x00, 0x00, 0x00, 0x07, 0x73, 0x73, 0x68, 0x2d, 0x72, 0x73, 0x61, 0x00,
	0x00, 0x00, 0x03, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x81, 0x00, 0xb4,
	0x8a, 0x51, 0xd0, 0x42, 0x99, 0xc8, 0xc3, 0x33, 0x68, 0x9e, 0xdb, 0xec,
	0xa6, 0xdf, 0xe9, 0x19, 0x4f, 0x53, 0x2f, 0x95, 0x17, 0xaf, 0xc0, 0x39,
	0x14, 0xd4, 0x5e, 0x5a, 0x60, 0xc1, 0x6f, 0x4d, 0x9a, 0xa6, 0xff, 0x77,
	0x29, 0x17, 0x31, 0xaf, 0x0a, 0xe8, 0xc8, 0x2e, 0xba, 0xa8, 0xa1, 0x3c,
	0x59, 0xd9, 0x64, 0x47, 0x4a, 0x28, 0x80, 0xa3, 0x5f, 0xef, 0xc5, 0x2d,
	0x57, 0xbf, 0xaa, 0x59, 0x42, 0xb6, 0xdc, 0xcc, 0x5f, 0xc7, 0x05, 0xb9,
	0x3e, 0x40, 0xd9, 0xa2, 0x0b, 0x97, 0x69, 0x4e, 0xa0, 0x35, 0xd7, 0x38,
	0xfa, 0x09, 0x40, 0xbf, 0x60, 0x01, 0xb1, 0x99, 0x28, 0xe7, 0x34, 0x1d,
	0x36, 0xf7, 0xda, 0x5a, 0x9f, 0x56, 0x1c, 0xd7, 0x24, 0x7a, 0xed, 0xc2,
	0x4e, 0xef, 0x20, 0x67, 0x50, 0x2c, 0x34, 0xee, 0x1b, 0x88, 0x5b, 0xcc,
	0x4e, 0x37, 0x44, 0xfb, 0x76, 0xe7, 0x29,
};

/* ssh-keygen -l of ec_blob. */
#define EC_FP	"SHA256:OExIifLIz1VCOThqm3zvdfQUka8cIZ9OyLuPr3m3n40"

/* SIGN_REQUEST body: key blob ec_blob, data "hi", flags 0. */
static uint8_t *
sign_request(const uint8_t *blob, size_t blob_len, uint32_t flags,
    size_t *len)
{
	struct botid_buf b;
	uint8_t *out;

	buf_init(&b, 4096);
	assert_int_equal(buf_put_u8(&b, SSH_AGENTC_SIGN_REQUEST), 0);
	assert_int_equal(buf_put_string(&b, blob, blob_len), 0);
	assert_int_equal(buf_put_string(&b, "hi", 2), 0);
	assert_int_equal(buf_put_u32(&b, flags), 0);
	*len = buf_len(&b);
	out = malloc(*len);
	assert_non_null(out);
	memcpy(out, buf_ptr(&b), *len);
	buf_reset(&b);
	return out;
}

static void
test_key_blobs(void **state)
{
	struct botid_buf b;
	enum botid_sshkey_kind kind;
	char fp[BOTID_SSHKEY_FP_LEN];

	(void)state;
	buf_init(&b, BOTID_SSH_MAX_KEY_BLOB);
	assert_int_equal(sshkey_from_spki(ec_spki, sizeof(ec_spki), &b,
	    &kind), 0);
	assert_int_equal(kind, BOTID_SSHKEY_ECDSA_P256);
	assert_int_equal(buf_len(&b), sizeof(ec_blob));
	assert_memory_equal(buf_ptr(&b), ec_blob, sizeof(ec_blob));
	assert_int_equal(sshkey_fingerprint(buf_ptr(&b), buf_len(&b), fp), 0);
	assert_string_equal(fp, EC_FP);
	buf_reset(&b);
	assert_int_equal(sshkey_from_spki(rsa_spki, sizeof(rsa_spki), &b,
	    &kind), 0);
	assert_int_equal(kind, BOTID_SSHKEY_RSA);
	assert_int_equal(buf_len(&b), sizeof(rsa_blob));
	assert_memory_equal(buf_ptr(&b), rsa_blob, sizeof(rsa_blob));
	buf_reset(&b);
	/* Not a key, and a key with trailing bytes. */
	assert_int_equal(sshkey_from_spki(ec_blob, sizeof(ec_blob), &b,
	    &kind), BOTID_ERR_INVALID);
	assert_int_equal(kind, BOTID_SSHKEY_NONE);
	assert_int_equal(sshkey_from_spki(ec_spki, sizeof(ec_spki) - 1, &b,
	    &kind), BOTID_ERR_INVALID);
	buf_reset(&b);
}

static void
test_decode_vectors(void **state)
{
	static const uint8_t identities[] = { 0x0b };
	static const uint8_t add[] = { 0x11, 0xde, 0xad };
	static const uint8_t lock[] = { 0x16, 0, 0, 0, 1, 'x' };
	static const uint8_t other_ext[] = {
		0x1b, 0, 0, 0, 3, 'f', 'o', 'o', 1, 2, 3,
	};
	static const uint8_t trailing_ids[] = { 0x0b, 0x00 };
	struct ssh_agent_request req;
	uint8_t *frame;
	size_t len;

	(void)state;
	assert_int_equal(ssh_agent_decode(identities, sizeof(identities),
	    &req), 0);
	assert_int_equal(req.kind, SSH_REQ_IDENTITIES);
	assert_int_equal(ssh_agent_decode(add, sizeof(add), &req), 0);
	assert_int_equal(req.kind, SSH_REQ_REFUSED);
	assert_string_equal(ssh_agent_type_name(req.type), "add-identity");
	assert_int_equal(ssh_agent_decode(lock, sizeof(lock), &req), 0);
	assert_int_equal(req.kind, SSH_REQ_REFUSED);
	assert_string_equal(ssh_agent_type_name(req.type), "lock");
	assert_int_equal(ssh_agent_decode(other_ext, sizeof(other_ext),
	    &req), 0);
	assert_int_equal(req.kind, SSH_REQ_REFUSED);
	assert_int_equal(ssh_agent_decode(trailing_ids,
	    sizeof(trailing_ids), &req), BOTID_ERR_INVALID);
	assert_int_equal(ssh_agent_decode(identities, 0, &req),
	    BOTID_ERR_INVALID);

	frame = sign_request(ec_blob, sizeof(ec_blob), 0x06, &len);
	assert_int_equal(len, 1 + 4 + sizeof(ec_blob) + 4 + 2 + 4);
	assert_int_equal(ssh_agent_decode(frame, len, &req), 0);
	assert_int_equal(req.kind, SSH_REQ_SIGN);
	assert_int_equal(req.key_len, sizeof(ec_blob));
	assert_memory_equal(req.key, ec_blob, sizeof(ec_blob));
	assert_int_equal(req.data_len, 2);
	assert_memory_equal(req.data, "hi", 2);
	assert_int_equal(req.flags, 0x06);
	free(frame);
}

/* Every proper prefix of a request fails, and consumes nothing outside. */
static void
test_decode_truncation(void **state)
{
	struct ssh_agent_request req;
	uint8_t *frame;
	size_t len, i;

	(void)state;
	frame = sign_request(ec_blob, sizeof(ec_blob), 0, &len);
	for (i = 0; i < len; i++) {
		int r = ssh_agent_decode(frame, i, &req);

		assert_true(r == BOTID_ERR_INCOMPLETE || r == BOTID_ERR_INVALID);
		assert_null(req.key);
		assert_null(req.data);
	}
	/* One byte more is trailing. */
	frame = realloc(frame, len + 1);
	assert_non_null(frame);
	frame[len] = 0;
	assert_int_equal(ssh_agent_decode(frame, len + 1, &req),
	    BOTID_ERR_INVALID);
	free(frame);
}

/* Flipped bits never crash and never yield fields outside the frame. */
static void
test_decode_bit_flips(void **state)
{
	struct ssh_agent_request req;
	uint8_t *frame;
	size_t len, i;
	int bit, r;

	(void)state;
	frame = sign_request(ec_blob, sizeof(ec_blob), 0, &len);
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			frame[i] ^= (uint8_t)(1u << bit);
			r = ssh_agent_decode(frame, len, &req);
			if (r == 0 && req.kind == SSH_REQ_SIGN) {
				assert_true(req.key >= frame &&
				    req.key + req.key_len <= frame + len);
				assert_true(req.data >= frame &&
				    req.data + req.data_len <= frame + len);
			} else if (r != 0)
				assert_int_equal(req.kind, 0);
			frame[i] ^= (uint8_t)(1u << bit);
		}
	}
	free(frame);
}

static void
test_decode_limits(void **state)
{
	struct ssh_agent_request req;
	struct botid_buf b;

	(void)state;
	/* A key blob claiming more than BOTID_SSH_MAX_KEY_BLOB. */
	buf_init(&b, 64);
	assert_int_equal(buf_put_u8(&b, SSH_AGENTC_SIGN_REQUEST), 0);
	assert_int_equal(buf_put_u32(&b, BOTID_SSH_MAX_KEY_BLOB + 1), 0);
	assert_int_equal(ssh_agent_decode(buf_ptr(&b), buf_len(&b), &req),
	    BOTID_ERR_TOO_LARGE);
	buf_reset(&b);
	/* session-bind with a forwarding byte other than 0 or 1. */
	buf_init(&b, 256);
	assert_int_equal(buf_put_u8(&b, SSH_AGENTC_EXTENSION), 0);
	assert_int_equal(buf_put_string(&b, "session-bind@openssh.com", 24), 0);
	assert_int_equal(buf_put_string(&b, "k", 1), 0);
	assert_int_equal(buf_put_string(&b, "s", 1), 0);
	assert_int_equal(buf_put_string(&b, "g", 1), 0);
	assert_int_equal(buf_put_u8(&b, 2), 0);
	assert_int_equal(ssh_agent_decode(buf_ptr(&b), buf_len(&b), &req),
	    BOTID_ERR_INVALID);
	b.data[buf_len(&b) - 1] = 1;
	assert_int_equal(ssh_agent_decode(buf_ptr(&b), buf_len(&b), &req), 0);
	assert_int_equal(req.kind, SSH_REQ_SESSION_BIND);
	assert_int_equal(req.forwarding, 1);
	assert_int_equal(req.session_id_len, 1);
	buf_reset(&b);
}

static void
test_sign_alg(void **state)
{
	uint32_t hash, scheme;
	const char *alg;

	(void)state;
	assert_int_equal(ssh_agent_sign_alg(BOTID_SSHKEY_ECDSA_P256, 0, &hash,
	    &scheme, &alg), 0);
	assert_int_equal(hash, BOTID_HASH_SHA256);
	assert_int_equal(scheme, BOTID_SCHEME_ECDSA);
	assert_string_equal(alg, "ecdsa-sha2-nistp256");
	assert_int_equal(ssh_agent_sign_alg(BOTID_SSHKEY_ECDSA_P384, 0, &hash,
	    &scheme, &alg), 0);
	assert_int_equal(hash, BOTID_HASH_SHA384);
	assert_string_equal(alg, "ecdsa-sha2-nistp384");
	assert_int_equal(ssh_agent_sign_alg(BOTID_SSHKEY_RSA,
	    SSH_AGENT_RSA_SHA2_512, &hash, &scheme, &alg), 0);
	assert_int_equal(hash, BOTID_HASH_SHA512);
	assert_int_equal(scheme, BOTID_SCHEME_PKCS1);
	assert_string_equal(alg, "rsa-sha2-512");
	assert_int_equal(ssh_agent_sign_alg(BOTID_SSHKEY_RSA,
	    SSH_AGENT_RSA_SHA2_256 | SSH_AGENT_RSA_SHA2_512, &hash, &scheme,
	    &alg), 0);
	assert_string_equal(alg, "rsa-sha2-256");
	/* ssh-rsa would be SHA-1: refused. */
	assert_int_equal(ssh_agent_sign_alg(BOTID_SSHKEY_RSA, 0, &hash,
	    &scheme, &alg), BOTID_ERR_UNSUPPORTED);
	assert_null(alg);
	assert_int_equal(ssh_agent_sign_alg(BOTID_SSHKEY_RSA, 0x01, &hash,
	    &scheme, &alg), BOTID_ERR_UNSUPPORTED);
	assert_int_equal(ssh_agent_sign_alg(BOTID_SSHKEY_ED25519, 0, &hash,
	    &scheme, &alg), BOTID_ERR_UNSUPPORTED);
}

static void
test_replies(void **state)
{
	/* r has its top bit set (mpint gains a 0), s has a leading zero. */
	static const uint8_t raw[8] = { 0x80, 1, 2, 3, 0, 0, 5, 6 };
	static const uint8_t want_sig[] = {
		0, 0, 0, 0x2f, 14,
		0, 0, 0, 0x2a,
		0, 0, 0, 19, 'e', 'c', 'd', 's', 'a', '-', 's', 'h', 'a', '2',
		'-', 'n', 'i', 's', 't', 'p', '2', '5', '6',
		0, 0, 0, 0x0f,
		0, 0, 0, 5, 0, 0x80, 1, 2, 3,
		0, 0, 0, 2, 5, 6,
	};
	static const uint8_t want_ids[] = {
		0, 0, 0, 19, 12, 0, 0, 0, 1,
		0, 0, 0, 3, 'k', 'e', 'y',
		0, 0, 0, 3, 'b', 'o', 't',
	};
	static const uint8_t failure[] = { 0, 0, 0, 1, 5 };
	struct botid_buf b;
	size_t mark;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(ssh_agent_put_signature(&b, BOTID_SSHKEY_ECDSA_P256,
	    "ecdsa-sha2-nistp256", raw, sizeof(raw)), 0);
	assert_int_equal(buf_len(&b), sizeof(want_sig));
	assert_memory_equal(buf_ptr(&b), want_sig, sizeof(want_sig));
	buf_reset(&b);
	/* An odd-length ECDSA signature is an error and leaves nothing. */
	assert_int_equal(ssh_agent_put_signature(&b, BOTID_SSHKEY_ECDSA_P256,
	    "ecdsa-sha2-nistp256", raw, 7), BOTID_ERR_INVALID);
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(ssh_agent_identities_begin(&b, &mark), 0);
	assert_int_equal(ssh_agent_identities_add(&b,
	    (const uint8_t *)"key", 3, "bot"), 0);
	assert_int_equal(ssh_agent_identities_end(&b, mark, 1), 0);
	assert_int_equal(buf_len(&b), sizeof(want_ids));
	assert_memory_equal(buf_ptr(&b), want_ids, sizeof(want_ids));
	buf_reset(&b);
	assert_int_equal(ssh_agent_put_status(&b, SSH_AGENT_FAILURE), 0);
	assert_memory_equal(buf_ptr(&b), failure, sizeof(failure));
	buf_reset(&b);
	/* A full buffer: nothing half-written. */
	buf_init(&b, 3);
	assert_int_equal(ssh_agent_put_status(&b, SSH_AGENT_FAILURE),
	    BOTID_ERR_TOO_LARGE);
	assert_int_equal(buf_len(&b), 0);
	buf_reset(&b);
}

/* A session-bind signature as OpenSSH's sshd makes it, by a fresh key. */
static void
bind_vector(const char *type, struct botid_buf *key, struct botid_buf *sig,
    const uint8_t *sid, size_t sid_len)
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md;
	uint8_t raw[32], s[64];
	size_t raw_len = sizeof(raw), s_len = sizeof(s);

	pk = EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_raw_public_key(pk, raw, &raw_len), 1);
	assert_int_equal(buf_put_string(key, "ssh-ed25519", 11), 0);
	assert_int_equal(buf_put_string(key, raw, raw_len), 0);
	md = EVP_MD_CTX_new();
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(md, s, &s_len, sid, sid_len), 1);
	assert_int_equal(buf_put_string(sig, "ssh-ed25519", 11), 0);
	assert_int_equal(buf_put_string(sig, s, s_len), 0);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
}

static void
test_verify(void **state)
{
	static const uint8_t sid[32] = { 1, 2, 3 };
	struct botid_buf key, sig;
	uint8_t *p;
	size_t i, len;

	(void)state;
	buf_init(&key, 256);
	buf_init(&sig, 256);
	bind_vector("ED25519", &key, &sig, sid, sizeof(sid));
	assert_int_equal(sshkey_verify(buf_ptr(&key), buf_len(&key),
	    buf_ptr(&sig), buf_len(&sig), sid, sizeof(sid)), 0);
	/* Another session, a flipped signature bit, truncations: refused. */
	assert_int_equal(sshkey_verify(buf_ptr(&key), buf_len(&key),
	    buf_ptr(&sig), buf_len(&sig), sid, sizeof(sid) - 1),
	    BOTID_ERR_DENIED);
	len = buf_len(&sig);
	p = malloc(len);
	assert_non_null(p);
	memcpy(p, buf_ptr(&sig), len);
	p[len - 1] ^= 1;
	assert_int_equal(sshkey_verify(buf_ptr(&key), buf_len(&key), p, len,
	    sid, sizeof(sid)), BOTID_ERR_DENIED);
	p[len - 1] ^= 1;
	for (i = 0; i < len; i++)
		assert_int_not_equal(sshkey_verify(buf_ptr(&key),
		    buf_len(&key), p, i, sid, sizeof(sid)), 0);
	for (i = 0; i < buf_len(&key); i++)
		assert_int_not_equal(sshkey_verify(buf_ptr(&key), i, p, len,
		    sid, sizeof(sid)), 0);
	/* An ECDSA signature blob under an Ed25519 key's name is refused. */
	assert_int_equal(sshkey_verify(ec_blob, sizeof(ec_blob), p, len, sid,
	    sizeof(sid)), BOTID_ERR_INVALID);
	assert_int_equal(sshkey_verify(rsa_blob, sizeof(rsa_blob), p, len,
	    sid, sizeof(sid)), BOTID_ERR_UNSUPPORTED);
	free(p);
	buf_reset(&key);
	buf_reset(&sig);
}

/* A user certificate for ec_blob's key, as PROTOCOL.certkeys lays it out. */
static void
cert_vector(struct botid_buf *c, uint32_t type)
{
	static const char ct[] = "ecdsa-sha2-nistp256-cert-v01@openssh.com";
	static const uint8_t nonce[32] = { 7 };
	struct botid_buf k;
	const uint8_t *kt;
	size_t kt_len;

	buf_init_view(&k, ec_blob, sizeof(ec_blob));
	assert_int_equal(buf_get_string_direct(&k, &kt, &kt_len, 64), 0);
	assert_int_equal(buf_put_string(c, ct, sizeof(ct) - 1), 0);
	assert_int_equal(buf_put_string(c, nonce, sizeof(nonce)), 0);
	assert_int_equal(buf_put(c, buf_ptr(&k), buf_len(&k)), 0);
	assert_int_equal(buf_put_u64(c, 42), 0);
	assert_int_equal(buf_put_u32(c, type), 0);
	assert_int_equal(buf_put_string(c, "spiffe://t/bot", 14), 0);
	assert_int_equal(buf_put_string(c, "\0\0\0\3bot", 7), 0);
	assert_int_equal(buf_put_u64(c, 1000), 0);
	assert_int_equal(buf_put_u64(c, 2000), 0);
	assert_int_equal(buf_put_string(c, NULL, 0), 0);
}

static void
test_cert_check(void **state)
{
	struct botid_buf c;
	uint64_t before;
	size_t i;

	(void)state;
	buf_init(&c, 1024);
	cert_vector(&c, 1);
	assert_int_equal(sshkey_cert_check(buf_ptr(&c), buf_len(&c), ec_blob,
	    sizeof(ec_blob), &before), 0);
	assert_int_equal(before, 2000);
	/* Another key, a host certificate, any cut of the fields read: refused. */
	assert_int_equal(sshkey_cert_check(buf_ptr(&c), buf_len(&c), rsa_blob,
	    sizeof(rsa_blob), &before), BOTID_ERR_INVALID);
	assert_int_equal(before, 0);
	for (i = 0; i < buf_len(&c) - 4; i++)
		assert_int_not_equal(sshkey_cert_check(buf_ptr(&c), i,
		    ec_blob, sizeof(ec_blob), &before), 0);
	buf_reset(&c);
	cert_vector(&c, 2);
	assert_int_equal(sshkey_cert_check(buf_ptr(&c), buf_len(&c), ec_blob,
	    sizeof(ec_blob), &before), BOTID_ERR_INVALID);
	buf_reset(&c);
	/* A plain key is no certificate. */
	assert_int_equal(sshkey_cert_check(ec_blob, sizeof(ec_blob), ec_blob,
	    sizeof(ec_blob), &before), BOTID_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_blobs),
		cmocka_unit_test(test_decode_vectors),
		cmocka_unit_test(test_decode_truncation),
		cmocka_unit_test(test_decode_bit_flips),
		cmocka_unit_test(test_decode_limits),
		cmocka_unit_test(test_sign_alg),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_cert_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
