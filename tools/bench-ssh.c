/*
 * botid-bench's ssh-agent signer: a client of the ssh-agent protocol
 * (draft-miller-ssh-agent) that signs with the first identity the agent
 * holds, which is the PKCS#11 key after `ssh-add -s MODULE` on a token
 * holding one key. Spec: SOCKET. Replies are parsed with lib/buf.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/error.h"
#include "tools/bench.h"

#define SSH_AGENTC_REQUEST_IDENTITIES	11
#define SSH_AGENT_IDENTITIES_ANSWER	12
#define SSH_AGENTC_SIGN_REQUEST		13
#define SSH_AGENT_SIGN_RESPONSE		14
#define SSH_AGENT_MAX_REPLY		(256u * 1024u)	/* as OpenSSH */
#define SSH_MAX_KEY_BLOB		8192u

struct ssh_ctx {
	int		 fd;
	struct botid_buf req;	/* the SIGN_REQUEST frame, sent as is */
	struct botid_buf in;
};

static int
ssh_io(struct ssh_ctx *c, const struct botid_buf *req, uint8_t want)
{
	const uint8_t *p = buf_ptr(req);
	size_t n = buf_len(req);
	uint8_t *room, type;
	uint32_t len;
	ssize_t got;
	int r;

	while (n > 0) {
		got = send(c->fd, p, n, MSG_NOSIGNAL);
		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			return BOTID_ERR_IO;
		p += got;
		n -= (size_t)got;
	}
	/* The previous reply was read whole: start from an empty buffer. */
	(void)buf_consume(&c->in, buf_len(&c->in));
	buf_compact(&c->in);
	for (;;) {
		if (buf_len(&c->in) >= 4) {
			if ((r = buf_peek_u32(&c->in, &len)) != 0)
				return r;
			if (len == 0 || len > SSH_AGENT_MAX_REPLY)
				return BOTID_ERR_PROTOCOL;
			if (buf_len(&c->in) - 4 >= len)
				break;
		}
		if ((r = buf_reserve(&c->in, 4096, &room)) != 0)
			return r;
		got = recv(c->fd, room, 4096, 0);
		(void)buf_unreserve(&c->in, 4096 - (got > 0 ? (size_t)got : 0));
		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			return got == 0 ? BOTID_ERR_CLOSED : BOTID_ERR_IO;
	}
	if ((r = buf_get_u32(&c->in, &len)) != 0 ||
	    (r = buf_get_u8(&c->in, &type)) != 0)
		return r;
	return type == want ? 0 : BOTID_ERR_DENIED;
}

static void
ssh_close(void *arg)
{
	struct ssh_ctx *c = arg;

	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	buf_reset(&c->req);
	buf_reset(&c->in);
	free(c);
}

static int
ssh_open(const char *spec, void **ctxp)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	static const uint8_t data[32] = { 0x5a };
	struct botid_buf q;
	struct ssh_ctx *c;
	const uint8_t *blob;
	uint32_t nkeys;
	size_t blob_len;
	int r = BOTID_ERR_INVALID;

	*ctxp = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return BOTID_ERR_ALLOC;
	c->fd = -1;
	buf_init(&c->req, 4 + 1 + 4 + SSH_MAX_KEY_BLOB + 4 + 32 + 4);
	buf_init(&c->in, 4 + SSH_AGENT_MAX_REPLY + 4096);
	buf_init(&q, 16);
	if (strlen(spec) >= sizeof(sun.sun_path))
		goto out;
	memcpy(sun.sun_path, spec, strlen(spec) + 1);
	r = BOTID_ERR_IO;
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "botid-bench: ssh-agent %s: %s\n", spec,
		    strerror(errno));
		goto out;
	}
	if ((r = buf_put_u32(&q, 1)) != 0 ||
	    (r = buf_put_u8(&q, SSH_AGENTC_REQUEST_IDENTITIES)) != 0 ||
	    (r = ssh_io(c, &q, SSH_AGENT_IDENTITIES_ANSWER)) != 0 ||
	    (r = buf_get_u32(&c->in, &nkeys)) != 0)
		goto fail;
	if (nkeys == 0) {
		fprintf(stderr, "botid-bench: ssh-agent %s holds no keys\n",
		    spec);
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = buf_get_string_direct(&c->in, &blob, &blob_len,
	    SSH_MAX_KEY_BLOB)) != 0)
		goto fail;
	if (blob_len > SSH_MAX_KEY_BLOB) {
		r = BOTID_ERR_TOO_LARGE;
		goto fail;
	}
	/* SIGN_REQUEST: key blob, data, flags 0; its length goes first. */
	if ((r = buf_put_u32(&c->req, (uint32_t)(1 + 4 + blob_len + 4 +
	    sizeof(data) + 4))) != 0 ||
	    (r = buf_put_u8(&c->req, SSH_AGENTC_SIGN_REQUEST)) != 0 ||
	    (r = buf_put_string(&c->req, blob, blob_len)) != 0 ||
	    (r = buf_put_string(&c->req, data, sizeof(data))) != 0 ||
	    (r = buf_put_u32(&c->req, 0)) != 0)
		goto fail;
	*ctxp = c;
	c = NULL;
	r = 0;
	goto out;
 fail:
	fprintf(stderr, "botid-bench: ssh-agent %s: %s\n", spec,
	    botid_strerror(r));
 out:
	buf_reset(&q);
	ssh_close(c);
	return r;
}

static int
ssh_sign(void *arg)
{
	struct ssh_ctx *c = arg;
	const uint8_t *sig;
	size_t len;
	int r;

	if ((r = ssh_io(c, &c->req, SSH_AGENT_SIGN_RESPONSE)) != 0 ||
	    (r = buf_get_string_direct(&c->in, &sig, &len,
	    SSH_AGENT_MAX_REPLY)) != 0)
		return r;
	return len > 0 ? 0 : BOTID_ERR_PROTOCOL;
}

const struct bench_signer bench_signer_ssh = {
	.kind = "ssh-agent",
	.open = ssh_open,
	.sign = ssh_sign,
	.close = ssh_close,
	.serial = 0,
};
