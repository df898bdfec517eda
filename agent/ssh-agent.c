/*
 * ssh-agent protocol frames, read only through lib/buf's bounded getters:
 * every request is parsed whole, with its fields' limits and no trailing
 * bytes, before the event loop acts on it.
 */
#include <string.h>

#include "agent/ssh-agent.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/wire.h"

#define SESSION_BIND	"session-bind@openssh.com"

const char *
ssh_agent_type_name(uint8_t type)
{
	switch (type) {
	case 1:  return "request-rsa1-identities";
	case 9:  return "remove-all-rsa1-identities";
	case 11: return "request-identities";
	case 13: return "sign-request";
	case 17: return "add-identity";
	case 18: return "remove-identity";
	case 19: return "remove-all-identities";
	case 20: return "add-smartcard-key";
	case 21: return "remove-smartcard-key";
	case 22: return "lock";
	case 23: return "unlock";
	case 25: return "add-id-constrained";
	case 26: return "add-smartcard-key-constrained";
	case 27: return "extension";
	}
	return "unknown";
}

static int
decode_sign(struct botid_buf *b, struct ssh_agent_request *req)
{
	int r;

	if ((r = buf_get_string_direct(b, &req->key, &req->key_len,
	    BOTID_SSH_MAX_KEY_BLOB)) != 0 ||
	    (r = buf_get_string_direct(b, &req->data, &req->data_len,
	    BOTID_SSH_MAX_SIGN_DATA)) != 0 ||
	    (r = buf_get_u32(b, &req->flags)) != 0)
		return r;
	req->kind = SSH_REQ_SIGN;
	return 0;
}

static int
decode_extension(struct botid_buf *b, struct ssh_agent_request *req)
{
	const uint8_t *name;
	size_t name_len;
	int r;

	if ((r = buf_get_string_direct(b, &name, &name_len,
	    BOTID_SSH_MAX_EXTENSION)) != 0)
		return r;
	if (name_len != strlen(SESSION_BIND) ||
	    memcmp(name, SESSION_BIND, name_len) != 0) {
		/* An extension we do not know: its body is its own. */
		req->kind = SSH_REQ_REFUSED;
		(void)buf_consume(b, buf_len(b));
		return 0;
	}
	if ((r = buf_get_string_direct(b, &req->key, &req->key_len,
	    BOTID_SSH_MAX_KEY_BLOB)) != 0 ||
	    (r = buf_get_string_direct(b, &req->session_id,
	    &req->session_id_len, BOTID_SSH_MAX_SESSION_ID)) != 0 ||
	    (r = buf_get_string_direct(b, &req->signature,
	    &req->signature_len, BOTID_SSH_MAX_KEY_BLOB)) != 0 ||
	    (r = buf_get_u8(b, &req->forwarding)) != 0)
		return r;
	if (req->forwarding > 1)
		return BOTID_ERR_INVALID;
	req->kind = SSH_REQ_SESSION_BIND;
	return 0;
}

int
ssh_agent_decode(const uint8_t *body, size_t len,
    struct ssh_agent_request *req)
{
	struct botid_buf b;
	int r;

	memset(req, 0, sizeof(*req));
	buf_init_view(&b, body, len);
	if ((r = buf_get_u8(&b, &req->type)) != 0)
		return BOTID_ERR_INVALID;
	switch (req->type) {
	case SSH_AGENTC_REQUEST_IDENTITIES:
		req->kind = SSH_REQ_IDENTITIES;
		break;
	case SSH_AGENTC_SIGN_REQUEST:
		r = decode_sign(&b, req);
		break;
	case SSH_AGENTC_EXTENSION:
		r = decode_extension(&b, req);
		break;
	default:
		/* Refused whatever it holds: it is never parsed. */
		req->kind = SSH_REQ_REFUSED;
		return 0;
	}
	if (r == 0 && buf_len(&b) != 0)
		r = BOTID_ERR_INVALID;
	if (r != 0) {
		uint8_t type = req->type;

		memset(req, 0, sizeof(*req));
		req->type = type;
	}
	return r;
}

int
ssh_agent_sign_alg(enum botid_sshkey_kind kind, uint32_t flags,
    uint32_t *hash, uint32_t *scheme, const char **alg)
{
	*alg = NULL;
	switch (kind) {
	case BOTID_SSHKEY_ECDSA_P256:
		*hash = BOTID_HASH_SHA256;
		break;
	case BOTID_SSHKEY_ECDSA_P384:
		*hash = BOTID_HASH_SHA384;
		break;
	case BOTID_SSHKEY_ECDSA_P521:
		*hash = BOTID_HASH_SHA512;
		break;
	case BOTID_SSHKEY_RSA:
		*scheme = BOTID_SCHEME_PKCS1;
		/* OpenSSH prefers SHA-256 when a client sets both. */
		if (flags & SSH_AGENT_RSA_SHA2_256) {
			*hash = BOTID_HASH_SHA256;
			*alg = "rsa-sha2-256";
		} else if (flags & SSH_AGENT_RSA_SHA2_512) {
			*hash = BOTID_HASH_SHA512;
			*alg = "rsa-sha2-512";
		} else
			return BOTID_ERR_UNSUPPORTED;	/* ssh-rsa: SHA-1 */
		return 0;
	default:
		return BOTID_ERR_UNSUPPORTED;
	}
	*scheme = BOTID_SCHEME_ECDSA;
	*alg = sshkey_type_name(kind);
	return 0;
}

int
ssh_agent_put_status(struct botid_buf *out, uint8_t type)
{
	int r;

	if ((r = buf_put_u32(out, 1)) != 0)
		return r;
	if ((r = buf_put_u8(out, type)) != 0) {
		(void)buf_unreserve(out, 4);
		return r;
	}
	return 0;
}

int
ssh_agent_identities_begin(struct botid_buf *out, size_t *mark)
{
	size_t start = buf_len(out);
	int r;

	*mark = 0;
	if ((r = buf_put_u32(out, 0)) != 0 ||
	    (r = buf_put_u8(out, SSH_AGENT_IDENTITIES_ANSWER)) != 0 ||
	    (r = buf_put_u32(out, 0)) != 0) {
		(void)buf_unreserve(out, buf_len(out) - start);
		return r;
	}
	*mark = start;
	return 0;
}

int
ssh_agent_identities_add(struct botid_buf *out, const uint8_t *blob,
    size_t blob_len, const char *comment)
{
	int r;

	if ((r = buf_put_string(out, blob, blob_len)) != 0 ||
	    (r = buf_put_string(out, comment, strlen(comment))) != 0)
		return r;
	return 0;
}

int
ssh_agent_identities_end(struct botid_buf *out, size_t mark, uint32_t count)
{
	size_t n = buf_len(out), body;
	int r;

	if (mark > n || n - mark < 9)
		return BOTID_ERR_INVALID;
	body = n - mark - 4;
	if (body > BOTID_MAX_FRAME)
		return BOTID_ERR_TOO_LARGE;
	/* Marks count from the read position (see wire_frame_begin). */
	if ((r = buf_poke_u32(out, out->off + mark, (uint32_t)body)) != 0 ||
	    (r = buf_poke_u32(out, out->off + mark + 5, count)) != 0)
		return r;
	return 0;
}

void
ssh_agent_identities_abort(struct botid_buf *out, size_t mark)
{
	size_t n = buf_len(out);

	if (mark <= n)
		(void)buf_unreserve(out, n - mark);
}

int
ssh_agent_put_signature(struct botid_buf *out, enum botid_sshkey_kind kind,
    const char *alg, const uint8_t *sig, size_t sig_len)
{
	size_t start = buf_len(out);
	int r;

	if ((r = buf_put_u32(out, 0)) != 0 ||
	    (r = buf_put_u8(out, SSH_AGENT_SIGN_RESPONSE)) != 0 ||
	    (r = sshkey_put_signature(out, kind, alg, sig, sig_len)) != 0 ||
	    (r = buf_poke_u32(out, out->off + start,
	    (uint32_t)(buf_len(out) - start - 4))) != 0) {
		(void)buf_unreserve(out, buf_len(out) - start);
		return r;
	}
	return 0;
}
