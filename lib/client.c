/*
 * libbotid: a blocking client for the agent's wire protocol, one request
 * at a time. Every reply is read through the bounded buffer API and checked
 * against the request it answers.
 */
#include "botid-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/await.h"
#include "lib/botid.h"
#include "lib/buf.h"
#include "lib/limits.h"
#include "lib/wire.h"

#define CLIENT_TIMEOUT_S	60

struct botid_client {
	int		 fd;
	uint32_t	 next_id;
	char		 message[256];
	uint32_t	 retry_ms;	/* the last BUSY's RETRY_AFTER, or 0 */
	char		 agent[128];
	struct botid_buf body;		/* the last reply's body */
	struct botid_await await;	/* how to wait for a reply */
};

void
botid_free(void *p)
{
	free(p);
}

const char *
botid_message(const struct botid_client *c)
{
	return c == NULL ? "" : c->message;
}

uint32_t
botid_retry_after(const struct botid_client *c)
{
	return c == NULL ? 0 : c->retry_ms;
}

const char *
botid_agent_version(const struct botid_client *c)
{
	return c == NULL ? "" : c->agent;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return errno == EAGAIN ? BOTID_ERR_TIMEOUT : BOTID_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, uint8_t *p, size_t n)
{
	ssize_t got;

	while (n > 0) {
		got = recv(fd, p, n, 0);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			return errno == EAGAIN ? BOTID_ERR_TIMEOUT : BOTID_ERR_IO;
		if (got == 0)
			return BOTID_ERR_CLOSED;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

/*
 * Sends the request frame in req and reads the reply into c->body,
 * positioned after the header. Non-OK statuses become error codes with the
 * agent's message kept in c->message.
 */
static int
transact(struct botid_client *c, struct botid_buf *req, uint8_t op,
    uint32_t id)
{
	uint8_t lenb[4], rop, *p;
	uint32_t rid, status, len;
	struct botid_buf hdr;
	const uint8_t *v;
	uint16_t tag;
	size_t vlen;
	int r;

	c->message[0] = '\0';
	c->retry_ms = 0;
	buf_reset(&c->body);
	if ((r = write_all(c->fd, buf_ptr(req), buf_len(req))) != 0 ||
	    (r = await_readable(&c->await, c->fd,
	    CLIENT_TIMEOUT_S * 1000)) != 0)
		return r;
	if ((r = read_all(c->fd, lenb, sizeof(lenb))) != 0)
		return r;
	buf_init_view(&hdr, lenb, sizeof(lenb));
	if ((r = buf_get_u32(&hdr, &len)) != 0)
		return r;
	if (len == 0 || len > BOTID_MAX_FRAME)
		return BOTID_ERR_PROTOCOL;
	buf_init(&c->body, len);
	if ((r = buf_reserve(&c->body, len, &p)) != 0)
		return r;
	if ((r = read_all(c->fd, p, len)) != 0)
		return r;
	if ((r = wire_get_reply_header(&c->body, &rop, &rid, &status)) != 0)
		return BOTID_ERR_PROTOCOL;
	if (rid != id || rop != (op | BOTID_OP_REPLY))
		return BOTID_ERR_PROTOCOL;
	if (status == BOTID_STATUS_OK)
		return 0;
	/* Keep the agent's reason; it is one line by protocol. */
	while (wire_get_field(&c->body, &tag, &v, &vlen) == 0) {
		if (tag == BOTID_TAG_MESSAGE) {
			if (vlen >= sizeof(c->message))
				vlen = sizeof(c->message) - 1;
			memcpy(c->message, v, vlen);
			c->message[vlen] = '\0';
			for (size_t i = 0; i < vlen; i++)
				if ((unsigned char)c->message[i] < 0x20)
					c->message[i] = '?';
		} else if (tag == BOTID_TAG_RETRY_AFTER &&
		    status == BOTID_STATUS_BUSY &&
		    wire_field_u32(v, vlen, &c->retry_ms) != 0)
			return BOTID_ERR_PROTOCOL;
	}
	return wire_status_to_err(status);
}

/* Builds a request with the given fields already appended by fill(). */
static int
request_begin(struct botid_client *c, struct botid_buf *req, uint8_t op,
    uint32_t *id, size_t *mark)
{
	*id = c->next_id++;
	buf_init(req, 4 + BOTID_MAX_FRAME);
	return wire_frame_begin(req, op, *id, NULL, mark);
}

static int
hello(struct botid_client *c)
{
	struct botid_buf req;
	const uint8_t *v;
	uint16_t tag;
	size_t mark, vlen;
	uint32_t id;
	int r, have_version = 0;

	if ((r = request_begin(c, &req, BOTID_OP_HELLO, &id, &mark)) != 0 ||
	    (r = wire_put_u32(&req, BOTID_TAG_VERSION,
	    BOTID_PROTOCOL_VERSION)) != 0 ||
	    (r = wire_frame_end(&req, mark)) != 0)
		goto out;
	if ((r = transact(c, &req, BOTID_OP_HELLO, id)) != 0)
		goto out;
	while ((r = wire_get_field(&c->body, &tag, &v, &vlen)) == 0) {
		if (tag == BOTID_TAG_VERSION && vlen == 4)
			have_version = 1;
		else if (tag == BOTID_TAG_AGENT && vlen < sizeof(c->agent)) {
			memcpy(c->agent, v, vlen);
			c->agent[vlen] = '\0';
		}
	}
	r = (r == BOTID_ERR_INCOMPLETE && have_version) ? 0 : BOTID_ERR_PROTOCOL;
 out:
	buf_reset(&req);
	return r;
}

int
botid_connect(const char *path, struct botid_client **cp)
{
	struct botid_client *c = NULL;
	struct sockaddr_un sun;
	struct timeval tv = { CLIENT_TIMEOUT_S, 0 };
	int r = BOTID_ERR_IO;

	*cp = NULL;
	/*
	 * secure_getenv: this library (and the PKCS#11 module on it) may be
	 * loaded into a setuid or setgid program, whose caller must not
	 * point it at a socket of their choosing.
	 */
	if (path == NULL && (path = secure_getenv("BOTID_SOCKET")) == NULL)
		path = BOTID_DEFAULT_SOCKET;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return BOTID_ERR_TOO_LARGE;
	memcpy(sun.sun_path, path, strlen(path));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return BOTID_ERR_ALLOC;
	c->next_id = 1;
	buf_init(&c->body, 0);
	await_init(&c->await);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		goto out;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		goto out;
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		goto out;
	if ((r = hello(c)) != 0)
		goto out;
	*cp = c;
	c = NULL;
	r = 0;
 out:
	botid_close(c);
	return r;
}

void
botid_close(struct botid_client *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	buf_reset(&c->body);
	free(c);
}

static char *
strndup_field(const uint8_t *v, size_t len)
{
	char *s;

	if (memchr(v, '\0', len) != NULL || (s = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(s, v, len);
	s[len] = '\0';
	return s;
}

void
botid_bot_info_free(struct botid_bot_info *bots, size_t nbots)
{
	size_t i;

	if (bots == NULL)
		return;
	for (i = 0; i < nbots; i++) {
		free(bots[i].name);
		free(bots[i].key_type);
		free(bots[i].backend);
	}
	free(bots);
}

int
botid_list(struct botid_client *c, struct botid_bot_info **botsp,
    size_t *nbotsp)
{
	struct botid_bot_info *bots = NULL, *nb;
	struct botid_buf req;
	const uint8_t *v;
	uint16_t tag;
	size_t mark, vlen, n = 0;
	uint32_t id;
	char **slot;
	int r;

	*botsp = NULL;
	*nbotsp = 0;
	if ((r = request_begin(c, &req, BOTID_OP_LIST, &id, &mark)) != 0 ||
	    (r = wire_frame_end(&req, mark)) != 0 ||
	    (r = transact(c, &req, BOTID_OP_LIST, id)) != 0)
		goto out;
	while ((r = wire_get_field(&c->body, &tag, &v, &vlen)) == 0) {
		if (tag == BOTID_TAG_BOT) {
			if ((nb = reallocarray(bots, n + 1, sizeof(*bots))) == NULL) {
				r = BOTID_ERR_ALLOC;
				goto out;
			}
			bots = nb;
			memset(&bots[n++], 0, sizeof(*bots));
			slot = &bots[n - 1].name;
		} else if (tag == BOTID_TAG_KEY_TYPE && n > 0)
			slot = &bots[n - 1].key_type;
		else if (tag == BOTID_TAG_BACKEND && n > 0)
			slot = &bots[n - 1].backend;
		else
			continue;	/* unknown tags are skipped by design */
		free(*slot);
		if ((*slot = strndup_field(v, vlen)) == NULL) {
			r = BOTID_ERR_PROTOCOL;
			goto out;
		}
	}
	if (r != BOTID_ERR_INCOMPLETE) {
		r = BOTID_ERR_PROTOCOL;
		goto out;
	}
	*botsp = bots;
	*nbotsp = n;
	bots = NULL;
	r = 0;
 out:
	botid_bot_info_free(bots, n);
	buf_reset(&req);
	return r;
}

static void
strings_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

void
botid_inventory_free(struct botid_inventory_entry *bots, size_t nbots)
{
	struct botid_inventory_entry *b;
	size_t i, j;

	if (bots == NULL)
		return;
	for (i = 0; i < nbots; i++) {
		b = &bots[i];
		free(b->name);
		free(b->key_type);
		free(b->backend);
		for (j = 0; j < b->nattrs; j++)
			free(b->attrs[j].name);
		free(b->attrs);
		free(b->serial);
		free(b->spiffe_id);
		free(b->attestation);
		strings_free(b->allow, b->nallow);
		strings_free(b->scopes, b->nscopes);
		free(b->error);
	}
	free(bots);
}

/* Appends a copy of a string field to a growing array. */
static int
strings_add(char ***v, size_t *n, const uint8_t *p, size_t len)
{
	char **nv, *s;

	if ((s = strndup_field(p, len)) == NULL)
		return BOTID_ERR_PROTOCOL;
	if ((nv = reallocarray(*v, *n + 1, sizeof(*nv))) == NULL) {
		free(s);
		return BOTID_ERR_ALLOC;
	}
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

/* "NAME=0" or "NAME=1", as the agent sends a key attribute. */
static int
inventory_attr_add(struct botid_inventory_entry *b, const uint8_t *p,
    size_t len)
{
	struct botid_key_attr *na;
	char *s;

	if (len < 3 || p[len - 2] != '=' || (p[len - 1] != '0' &&
	    p[len - 1] != '1') || (s = strndup_field(p, len - 2)) == NULL)
		return BOTID_ERR_PROTOCOL;
	if ((na = reallocarray(b->attrs, b->nattrs + 1, sizeof(*na))) == NULL) {
		free(s);
		return BOTID_ERR_ALLOC;
	}
	na[b->nattrs].name = s;
	na[b->nattrs].set = p[len - 1] == '1';
	b->attrs = na;
	b->nattrs++;
	return 0;
}

/* Stores one field of the bot b; unknown tags are skipped by design. */
static int
inventory_field(struct botid_inventory_entry *b, uint16_t tag,
    const uint8_t *v, size_t vlen)
{
	char **slot = NULL;
	uint64_t u64;
	uint32_t u32;
	int r;

	switch (tag) {
	case BOTID_TAG_KEY_TYPE:
		slot = &b->key_type;
		break;
	case BOTID_TAG_BACKEND:
		slot = &b->backend;
		break;
	case BOTID_TAG_SERIAL:
		slot = &b->serial;
		break;
	case BOTID_TAG_SPIFFE_ID:
		slot = &b->spiffe_id;
		break;
	case BOTID_TAG_ATTESTATION:
		slot = &b->attestation;
		break;
	case BOTID_TAG_ERROR:
		slot = &b->error;
		break;
	case BOTID_TAG_FINGERPRINT:
		if (vlen != sizeof(b->fingerprint))
			return BOTID_ERR_PROTOCOL;
		memcpy(b->fingerprint, v, vlen);
		b->has_fingerprint = 1;
		return 0;
	case BOTID_TAG_KEY_ATTRIBUTE:
		return inventory_attr_add(b, v, vlen);
	case BOTID_TAG_ALLOW:
		return strings_add(&b->allow, &b->nallow, v, vlen);
	case BOTID_TAG_SCOPE:
		return strings_add(&b->scopes, &b->nscopes, v, vlen);
	case BOTID_TAG_RENEW_OK:
		if (wire_field_u32(v, vlen, &u32) != 0 || u32 > 1)
			return BOTID_ERR_PROTOCOL;
		b->renew_ok = (int)u32;
		return 0;
	case BOTID_TAG_GENERATION:
		if (wire_field_u32(v, vlen, &u32) != 0)
			return BOTID_ERR_PROTOCOL;
		b->key_generation = u32;
		return 0;
	case BOTID_TAG_NOT_AFTER:
	case BOTID_TAG_LAST_USED:
	case BOTID_TAG_OPS:
	case BOTID_TAG_DENIALS:
	case BOTID_TAG_RENEWED:
		if ((r = wire_field_u64(v, vlen, &u64)) != 0)
			return BOTID_ERR_PROTOCOL;
		/* Times past 2^63 are not times: refuse rather than wrap. */
		if (tag != BOTID_TAG_OPS && tag != BOTID_TAG_DENIALS &&
		    u64 > INT64_MAX)
			return BOTID_ERR_PROTOCOL;
		if (tag == BOTID_TAG_NOT_AFTER)
			b->not_after = (int64_t)u64;
		else if (tag == BOTID_TAG_LAST_USED)
			b->last_used = (int64_t)u64;
		else if (tag == BOTID_TAG_RENEWED)
			b->renewed = (int64_t)u64;
		else if (tag == BOTID_TAG_OPS)
			b->ops = u64;
		else
			b->denials = u64;
		return 0;
	default:
		return 0;
	}
	free(*slot);
	if ((*slot = strndup_field(v, vlen)) == NULL)
		return BOTID_ERR_PROTOCOL;
	/* An error may quote the CA: keep it one line of printable ASCII. */
	for (v = (const uint8_t *)*slot; *v != '\0'; v++)
		if (*v < 0x20 || *v >= 0x7f)
			(*slot)[v - (const uint8_t *)*slot] = '?';
	return 0;
}

int
botid_inventory(struct botid_client *c, struct botid_inventory_entry **botsp,
    size_t *nbotsp)
{
	struct botid_inventory_entry *bots = NULL, *nb;
	struct botid_buf req;
	const uint8_t *v;
	uint16_t tag;
	size_t mark, vlen, n = 0;
	uint32_t id;
	int r;

	*botsp = NULL;
	*nbotsp = 0;
	if ((r = request_begin(c, &req, BOTID_OP_INVENTORY, &id, &mark)) != 0 ||
	    (r = wire_frame_end(&req, mark)) != 0 ||
	    (r = transact(c, &req, BOTID_OP_INVENTORY, id)) != 0)
		goto out;
	while ((r = wire_get_field(&c->body, &tag, &v, &vlen)) == 0) {
		if (tag == BOTID_TAG_BOT) {
			if ((nb = reallocarray(bots, n + 1,
			    sizeof(*bots))) == NULL) {
				r = BOTID_ERR_ALLOC;
				goto out;
			}
			bots = nb;
			memset(&bots[n++], 0, sizeof(*bots));
			if ((bots[n - 1].name = strndup_field(v, vlen)) == NULL) {
				r = BOTID_ERR_PROTOCOL;
				goto out;
			}
			continue;
		}
		/* Every field belongs to the bot named before it. */
		if (n == 0) {
			r = BOTID_ERR_PROTOCOL;
			goto out;
		}
		if ((r = inventory_field(&bots[n - 1], tag, v, vlen)) != 0)
			goto out;
	}
	if (r != BOTID_ERR_INCOMPLETE) {
		r = BOTID_ERR_PROTOCOL;
		goto out;
	}
	*botsp = bots;
	*nbotsp = n;
	bots = NULL;
	r = 0;
 out:
	botid_inventory_free(bots, n);
	buf_reset(&req);
	return r;
}

/* Sends a request naming bot and returns the first field with want_tag. */
static int
bot_request(struct botid_client *c, uint8_t op, const char *bot,
    uint16_t want_tag, uint8_t **out, size_t *out_len)
{
	struct botid_buf req;
	const uint8_t *v;
	uint16_t tag;
	size_t mark, vlen;
	uint32_t id;
	int r;

	*out = NULL;
	*out_len = 0;
	if ((r = request_begin(c, &req, op, &id, &mark)) != 0 ||
	    (r = wire_put_string(&req, BOTID_TAG_BOT, bot)) != 0 ||
	    (r = wire_frame_end(&req, mark)) != 0 ||
	    (r = transact(c, &req, op, id)) != 0)
		goto out;
	r = BOTID_ERR_PROTOCOL;
	while (wire_get_field(&c->body, &tag, &v, &vlen) == 0) {
		if (tag != want_tag)
			continue;
		if (vlen == 0 || (*out = malloc(vlen)) == NULL)
			goto out;
		memcpy(*out, v, vlen);
		*out_len = vlen;
		r = 0;
		break;
	}
 out:
	buf_reset(&req);
	return r;
}

int
botid_deprovision(struct botid_client *c)
{
	struct botid_buf req;
	size_t mark;
	uint32_t id;
	int r;

	if ((r = request_begin(c, &req, BOTID_OP_DEPROVISION, &id,
	    &mark)) == 0 && (r = wire_frame_end(&req, mark)) == 0)
		r = transact(c, &req, BOTID_OP_DEPROVISION, id);
	buf_reset(&req);
	return r;
}

int
botid_rotate(struct botid_client *c, const char *bot, uint32_t *generation)
{
	struct botid_buf req;
	const uint8_t *v;
	uint16_t tag;
	size_t mark, vlen;
	uint32_t id;
	int r;

	*generation = 0;
	if (!wire_bot_name_valid(bot, strlen(bot)))
		return BOTID_ERR_INVALID;
	if ((r = request_begin(c, &req, BOTID_OP_ROTATE, &id, &mark)) != 0 ||
	    (r = wire_put_string(&req, BOTID_TAG_BOT, bot)) != 0 ||
	    (r = wire_frame_end(&req, mark)) != 0 ||
	    (r = transact(c, &req, BOTID_OP_ROTATE, id)) != 0)
		goto out;
	r = BOTID_ERR_PROTOCOL;
	while (wire_get_field(&c->body, &tag, &v, &vlen) == 0) {
		if (tag == BOTID_TAG_GENERATION &&
		    wire_field_u32(v, vlen, generation) == 0) {
			r = 0;
			break;
		}
	}
 out:
	buf_reset(&req);
	return r;
}

int
botid_pubkey(struct botid_client *c, const char *bot, uint8_t **der,
    size_t *der_len)
{
	if (!wire_bot_name_valid(bot, strlen(bot)))
		return BOTID_ERR_INVALID;
	return bot_request(c, BOTID_OP_PUBKEY, bot, BOTID_TAG_PUBKEY, der,
	    der_len);
}

void
botid_blobs_free(struct botid_blob *blobs, size_t n)
{
	size_t i;

	if (blobs == NULL)
		return;
	for (i = 0; i < n; i++)
		free(blobs[i].data);
	free(blobs);
}

int
botid_cert_chain(struct botid_client *c, const char *bot,
    struct botid_blob **certsp, size_t *ncertsp)
{
	struct botid_blob *certs = NULL, *nc;
	struct botid_buf req;
	const uint8_t *v;
	uint16_t tag;
	size_t mark, vlen, n = 0;
	uint32_t id;
	int r;

	*certsp = NULL;
	*ncertsp = 0;
	if (!wire_bot_name_valid(bot, strlen(bot)))
		return BOTID_ERR_INVALID;
	if ((r = request_begin(c, &req, BOTID_OP_CERT_CHAIN, &id, &mark)) != 0 ||
	    (r = wire_put_string(&req, BOTID_TAG_BOT, bot)) != 0 ||
	    (r = wire_frame_end(&req, mark)) != 0 ||
	    (r = transact(c, &req, BOTID_OP_CERT_CHAIN, id)) != 0)
		goto out;
	while ((r = wire_get_field(&c->body, &tag, &v, &vlen)) == 0) {
		if (tag != BOTID_TAG_CERT || vlen == 0)
			continue;
		if ((nc = reallocarray(certs, n + 1, sizeof(*certs))) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		certs = nc;
		if ((certs[n].data = malloc(vlen)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		memcpy(certs[n].data, v, vlen);
		certs[n++].len = vlen;
	}
	if (r != BOTID_ERR_INCOMPLETE) {
		r = BOTID_ERR_PROTOCOL;
		goto out;
	}
	*certsp = certs;
	*ncertsp = n;
	certs = NULL;
	r = 0;
 out:
	botid_blobs_free(certs, n);
	buf_reset(&req);
	return r;
}

static int
sign_request(struct botid_client *c, uint8_t op, const char *bot,
    enum botid_hash hash, enum botid_scheme scheme,
    enum botid_sig_format format, uint16_t payload_tag, const void *payload,
    size_t payload_len, uint8_t **sig, size_t *sig_len)
{
	struct botid_buf req;
	const uint8_t *v;
	uint16_t tag;
	size_t mark, vlen;
	uint32_t id;
	int r;

	*sig = NULL;
	*sig_len = 0;
	if (!wire_bot_name_valid(bot, strlen(bot)))
		return BOTID_ERR_INVALID;
	if ((r = request_begin(c, &req, op, &id, &mark)) != 0 ||
	    (r = wire_put_string(&req, BOTID_TAG_BOT, bot)) != 0 ||
	    (r = wire_put_u32(&req, BOTID_TAG_HASH, hash)) != 0 ||
	    (r = wire_put_bytes(&req, payload_tag, payload, payload_len)) != 0 ||
	    (r = wire_put_u32(&req, BOTID_TAG_SCHEME, scheme)) != 0 ||
	    (r = wire_put_u32(&req, BOTID_TAG_FORMAT, format)) != 0 ||
	    (r = wire_frame_end(&req, mark)) != 0 ||
	    (r = transact(c, &req, op, id)) != 0)
		goto out;
	r = BOTID_ERR_PROTOCOL;
	while (wire_get_field(&c->body, &tag, &v, &vlen) == 0) {
		if (tag != BOTID_TAG_SIGNATURE)
			continue;
		if (vlen == 0 || vlen > BOTID_MAX_SIGNATURE ||
		    (*sig = malloc(vlen)) == NULL)
			goto out;
		memcpy(*sig, v, vlen);
		*sig_len = vlen;
		r = 0;
		break;
	}
 out:
	buf_reset(&req);
	return r;
}

int
botid_sign_digest(struct botid_client *c, const char *bot, enum botid_hash hash,
    enum botid_scheme scheme, enum botid_sig_format format,
    const uint8_t *digest, size_t digest_len, uint8_t **sig, size_t *sig_len)
{
	return sign_request(c, BOTID_OP_SIGN_DIGEST, bot, hash, scheme, format,
	    BOTID_TAG_DIGEST, digest, digest_len, sig, sig_len);
}

int
botid_sign_data(struct botid_client *c, const char *bot, enum botid_hash hash,
    enum botid_scheme scheme, enum botid_sig_format format, const void *data,
    size_t data_len, uint8_t **sig, size_t *sig_len)
{
	return sign_request(c, BOTID_OP_SIGN_DATA, bot, hash, scheme, format,
	    BOTID_TAG_DATA, data, data_len, sig, sig_len);
}

int
botid_jwt(struct botid_client *c, const char *bot, const char *aud,
    const char *const *scopes, size_t nscopes, uint32_t ttl, char **jwtp)
{
	return botid_jwt_scheme(c, bot, aud, scopes, nscopes, ttl,
	    BOTID_SCHEME_AUTO, jwtp);
}

int
botid_jwt_scheme(struct botid_client *c, const char *bot, const char *aud,
    const char *const *scopes, size_t nscopes, uint32_t ttl,
    enum botid_scheme scheme, char **jwtp)
{
	struct botid_buf req;
	const uint8_t *v;
	char *jwt = NULL;
	uint16_t tag;
	size_t mark, vlen, i;
	uint32_t id;
	int r;

	*jwtp = NULL;
	buf_init(&req, 0);
	if (!wire_bot_name_valid(bot, strlen(bot)) || aud == NULL ||
	    !wire_audience_valid(aud, strlen(aud)) ||
	    nscopes > BOTID_MAX_SCOPES || (nscopes > 0 && scopes == NULL))
		return BOTID_ERR_INVALID;
	for (i = 0; i < nscopes; i++)
		if (!wire_scope_valid(scopes[i], strlen(scopes[i])))
			return BOTID_ERR_INVALID;
	if ((r = request_begin(c, &req, BOTID_OP_JWT, &id, &mark)) != 0 ||
	    (r = wire_put_string(&req, BOTID_TAG_BOT, bot)) != 0 ||
	    (r = wire_put_string(&req, BOTID_TAG_AUDIENCE, aud)) != 0)
		goto out;
	for (i = 0; i < nscopes; i++)
		if ((r = wire_put_string(&req, BOTID_TAG_SCOPE,
		    scopes[i])) != 0)
			goto out;
	if ((ttl != 0 && (r = wire_put_u32(&req, BOTID_TAG_TTL, ttl)) != 0) ||
	    (scheme != BOTID_SCHEME_AUTO &&
	    (r = wire_put_u32(&req, BOTID_TAG_SCHEME, scheme)) != 0) ||
	    (r = wire_frame_end(&req, mark)) != 0 ||
	    (r = transact(c, &req, BOTID_OP_JWT, id)) != 0)
		goto out;
	while ((r = wire_get_field(&c->body, &tag, &v, &vlen)) == 0) {
		if (tag != BOTID_TAG_JWT)
			continue;
		if (jwt != NULL || vlen == 0 || vlen > BOTID_MAX_TOKEN ||
		    memchr(v, '\0', vlen) != NULL) {
			r = BOTID_ERR_PROTOCOL;
			goto out;
		}
		if ((jwt = strndup_field(v, vlen)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
	}
	if (r != BOTID_ERR_INCOMPLETE || jwt == NULL) {
		r = BOTID_ERR_PROTOCOL;
		goto out;
	}
	*jwtp = jwt;
	jwt = NULL;
	r = 0;
 out:
	free(jwt);
	buf_reset(&req);
	return r;
}
