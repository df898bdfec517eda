/*
 * The ssh-agent protocol (draft-miller-ssh-agent, OpenSSH PROTOCOL.agent)
 * as botid-agent speaks it on its ssh_socket: decoding a request frame
 * and encoding the replies. Keys come only from the configuration, so
 * only listing, signing and session binding are ever answered with more
 * than SSH_AGENT_FAILURE.
 */
#ifndef BOTID_AGENT_SSH_AGENT_H
#define BOTID_AGENT_SSH_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/sshkey.h"

/* Message numbers. */
#define SSH_AGENT_FAILURE		5
#define SSH_AGENT_SUCCESS		6
#define SSH_AGENTC_REQUEST_IDENTITIES	11
#define SSH_AGENT_IDENTITIES_ANSWER	12
#define SSH_AGENTC_SIGN_REQUEST		13
#define SSH_AGENT_SIGN_RESPONSE		14
#define SSH_AGENTC_EXTENSION		27

/* SIGN_REQUEST flags. */
#define SSH_AGENT_RSA_SHA2_256		0x02u
#define SSH_AGENT_RSA_SHA2_512		0x04u

/*
 * The internal op of an ssh signature in the agent's request queue (never
 * on the botid wire, whose ops are below BOTID_OP_REPLY).
 */
#define SSH_AGENT_OP_SIGN		0x7eu

enum ssh_agent_kind {
	SSH_REQ_IDENTITIES = 1,
	SSH_REQ_SIGN,
	SSH_REQ_SESSION_BIND,	/* EXTENSION session-bind@openssh.com */
	SSH_REQ_REFUSED,	/* a request botid never serves */
};

/* One decoded request; pointers point into the frame body. */
struct ssh_agent_request {
	enum ssh_agent_kind	 kind;
	uint8_t			 type;		/* the message number */
	const uint8_t		*key;		/* SIGN, BIND: key blob */
	size_t			 key_len;
	const uint8_t		*data;		/* SIGN: data to sign */
	size_t			 data_len;
	uint32_t		 flags;		/* SIGN */
	const uint8_t		*session_id;	/* BIND */
	size_t			 session_id_len;
	const uint8_t		*signature;	/* BIND: host's over session_id */
	size_t			 signature_len;
	uint8_t			 forwarding;	/* BIND */
};

/*
 * Decodes one frame body (after its u32 length). Any message number other
 * than REQUEST_IDENTITIES, SIGN_REQUEST and the session-bind extension
 * comes back as SSH_REQ_REFUSED without its body being read. Errors:
 * BOTID_ERR_INVALID (empty, trailing bytes, bad boolean),
 * BOTID_ERR_INCOMPLETE (truncated), BOTID_ERR_TOO_LARGE (a field over its
 * limit in lib/limits.h). *req is zeroed first.
 */
int	ssh_agent_decode(const uint8_t *body, size_t len,
	    struct ssh_agent_request *req);

/* A short name of a message number for the audit log ("add-identity"). */
const char *ssh_agent_type_name(uint8_t type);

/*
 * Picks the signature algorithm for a key of kind and the request's
 * flags: ECDSA by its curve, RSA only as rsa-sha2-512 or rsa-sha2-256 by
 * flag (never SHA-1 ssh-rsa). *hash is an enum botid_hash, *scheme an
 * enum botid_scheme, *alg static. Errors: BOTID_ERR_UNSUPPORTED.
 */
int	ssh_agent_sign_alg(enum botid_sshkey_kind kind, uint32_t flags,
	    uint32_t *hash, uint32_t *scheme, const char **alg);

/* Appends a whole one-byte reply frame (FAILURE or SUCCESS). */
int	ssh_agent_put_status(struct botid_buf *out, uint8_t type);

/*
 * Starts an IDENTITIES_ANSWER frame in out; add each key with
 * ssh_agent_identities_add, then close it with ssh_agent_identities_end
 * (or drop it with ssh_agent_identities_abort on error).
 */
int	ssh_agent_identities_begin(struct botid_buf *out, size_t *mark);
int	ssh_agent_identities_add(struct botid_buf *out, const uint8_t *blob,
	    size_t blob_len, const char *comment);
int	ssh_agent_identities_end(struct botid_buf *out, size_t mark,
	    uint32_t count);
void	ssh_agent_identities_abort(struct botid_buf *out, size_t mark);

/* Appends a whole SIGN_RESPONSE frame for a device signature. */
int	ssh_agent_put_signature(struct botid_buf *out,
	    enum botid_sshkey_kind kind, const char *alg, const uint8_t *sig,
	    size_t sig_len);

#endif /* BOTID_AGENT_SSH_AGENT_H */
