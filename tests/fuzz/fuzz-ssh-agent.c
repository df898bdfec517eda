/*
 * libFuzzer harness for agent/ssh-agent.c and lib/sshkey.c: the input is
 * what an ssh-agent client could send on ssh_socket, cut into frames as
 * the agent does; each body is decoded, and a session-bind's host key and
 * signature go through sshkey_verify. Invariants that must hold abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ssh-agent.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/sshkey.h"
#include "lib/wire.h"
#include "tests/fuzz/fuzz.h"

/* A view must lie inside the body it was decoded from. */
static void
check_view(const uint8_t *body, size_t len, const uint8_t *p, size_t n)
{
	if (p == NULL) {
		FUZZ_CHECK(n == 0);
		return;
	}
	FUZZ_CHECK(p >= body && n <= len - (size_t)(p - body));
}

static void
check_body(const uint8_t *body, size_t len)
{
	struct ssh_agent_request req;
	char fp[BOTID_SSHKEY_FP_LEN];
	int r;

	r = ssh_agent_decode(body, len, &req);
	if (r != 0) {
		FUZZ_CHECK(req.kind == 0 && req.key == NULL &&
		    req.data == NULL);
		return;
	}
	check_view(body, len, req.key, req.key_len);
	check_view(body, len, req.data, req.data_len);
	check_view(body, len, req.session_id, req.session_id_len);
	check_view(body, len, req.signature, req.signature_len);
	FUZZ_CHECK(req.key_len <= BOTID_SSH_MAX_KEY_BLOB);
	FUZZ_CHECK(req.data_len <= BOTID_SSH_MAX_SIGN_DATA);
	FUZZ_CHECK(req.session_id_len <= BOTID_SSH_MAX_SESSION_ID);
	switch (req.kind) {
	case SSH_REQ_IDENTITIES:
		FUZZ_CHECK(len == 1);
		break;
	case SSH_REQ_SIGN:
		FUZZ_CHECK(len == 1 + 4 + req.key_len + 4 + req.data_len + 4);
		FUZZ_CHECK(sshkey_fingerprint(req.key, req.key_len, fp) == 0);
		FUZZ_CHECK(strncmp(fp, "SHA256:", 7) == 0);
		break;
	case SSH_REQ_SESSION_BIND:
		FUZZ_CHECK(req.forwarding <= 1);
		/* A forged host signature must never verify. */
		FUZZ_CHECK(sshkey_verify(req.key, req.key_len, req.signature,
		    req.signature_len, req.session_id,
		    req.session_id_len) != 0);
		break;
	case SSH_REQ_REFUSED:
		break;
	default:
		FUZZ_CHECK(0);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct botid_buf in;
	size_t body_len;

	buf_init_view(&in, data, size);
	while (wire_frame_peek(&in, BOTID_MAX_FRAME, &body_len) == 0) {
		FUZZ_CHECK(buf_consume(&in, 4) == 0);
		check_body(buf_ptr(&in), body_len);
		FUZZ_CHECK(buf_consume(&in, body_len) == 0);
	}
	return 0;
}
