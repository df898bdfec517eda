/*
 * Event loop. Every step of a request is one call: frame (wire), peer
 * identity (of the process that sent it), policy, pool (backend), reply,
 * audit. The loop never waits on a device: a slow TPM only delays its own
 * queue, and a slow or hostile client only its own connection.
 */
#include "botid-config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "agent/audit.h"
#include "agent/peer.h"
#include "agent/policy.h"
#include "agent/privdrop.h"
#include "agent/registry.h"
#include "agent/renew.h"
#include "agent/server.h"
#include "agent/ssh-agent.h"
#include "agent/token.h"
#include "attest/host-state.h"
#include "lib/await.h"
#include "lib/buf.h"
#include "lib/certid.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/sig.h"
#include "lib/sshkey.h"
#include "lib/wire.h"

#define READ_CHUNK	16384
#define MAX_EVENTS	64
#define DRAIN_SECONDS	10
/* How long the loop polls after sending a reply (see server_run). */
#define LOOP_SPIN_US	100
/*
 * Connections accepted per wake-up: a flood of connects must not keep the
 * loop from the requests of connections already open (epoll wakes it
 * again while more wait).
 */
#define ACCEPT_BATCH	64
/*
 * A bot's TPM or token that was down when its key was to be opened is
 * tried again this long after, the wait doubling up to the last value.
 */
#define BACKEND_RETRY_FIRST_S	1u
#define BACKEND_RETRY_MAX_S	30u

struct conn {
	struct conn		*prev, *next;
	int			 fd;		/* -1 once closed */
	int			 closing;	/* close when output is flushed */
	int			 hello;
	unsigned		 inflight;
	uint32_t		 events;	/* current epoll interest */
	struct botid_peer	 peer;	/* who sent the frames being read */
	int			 ident_ready;	/* sender and in_cred set up */
	struct botid_sender	 sender;	/* cache behind peer */
	struct botid_cred	 in_cred;	/* sender of a partial frame in in */
	struct botid_buf	 in;
	struct botid_buf	 out;
	time_t			 last_active;
	time_t			 frame_started;	/* 0: no partial frame */
	time_t			 accepted;	/* HELLO is due within
						 * first_request_timeout */
	uid_t			 owner;		/* SO_PEERCRED at accept: whose
						 * share the connection uses */
	int			 ssh;		/* ssh-agent protocol (ssh_socket) */
	char			 ssh_host[BOTID_SSHKEY_FP_LEN]; /* bound host
						 * key (session-bind), or "" */
};

/* A signing request in a pool; the job comes first so we can cast back. */
struct request {
	struct botid_job	 job;
	struct conn		*conn;
	struct botid_registry	*reg;
	struct botid_bot	*bot;
	uint8_t			 op;
	uint32_t		 id;
	uint32_t		 format;
	uint32_t		 hash;
	int			 has_data_sha;
	uint8_t			 data_sha256[SHA256_DIGEST_LENGTH];
	char			*jwt_input;	/* JWT: header.claims */
	char			*jwt_detail;	/* JWT, ssh: audit detail */
	enum botid_sshkey_kind	 ssh_kind;	/* ssh: the key's type */
	const char		*ssh_alg;	/* ssh: signature algorithm */
	struct timespec		 t0;
};

/*
 * An INVENTORY in progress: one attribute job per served bot, through the
 * bots' queues like signatures; the reply is built when the last is back.
 */
struct inventory {
	struct conn		*conn;
	struct botid_registry	*reg;		/* reference held */
	uint8_t			 op;
	uint32_t		 id;
	size_t			 pending;
	struct botid_job	*jobs;		/* one per bot; unused: no key */
	struct timespec		 t0;
};

/* A ROTATE waiting for the renewer's worker. */
struct rotation {
	struct server		*server;
	struct conn		*conn;
	uint8_t			 op;
	uint32_t		 id;
	char			 bot[BOTID_MAX_BOT_NAME + 1];
	struct timespec		 t0;
	int			 was_revoked;	/* by the CA, before */
};

/*
 * A bot's key in SSH form, kept by the bot's index: d2i and the point
 * checks cost more than the rest of an SSH request. An entry is used only
 * while the key it was made from is byte for byte the bot's current one.
 */
struct ssh_cached {
	uint8_t			*spki;
	size_t			 spki_len;
	uint8_t			*blob;	/* NULL: the key has no SSH form */
	size_t			 blob_len;
	enum botid_sshkey_kind	 kind;
	char			 fp[BOTID_SSHKEY_FP_LEN];
};

/* Connections each uid holds, for max_connections_per_uid and eviction. */
struct uid_count {
	uid_t			 uid;
	unsigned		 n;
};

/* A refusal a flood repeats: logged at most once a second, with a count. */
struct ratelog {
	time_t			 last;
	unsigned long		 count;	/* since the last line */
};

struct server {
	const char		*config_path;
	struct botid_registry	*reg;
	struct botid_renewer	*renew;		/* NULL: not provisioned */
	struct botid_done	 done;
	int			 epfd;
	int			 listen_fd;
	int			 ssh_fd;	/* ssh_socket, or -1 */
	int			 sig_fd;
	struct conn		*conns;
	struct conn		*graveyard;	/* freed after each event batch */
	unsigned		 nconns;
	int			 stopping;
	/*
	 * A deprovisioning the CA has answered, waiting for the key
	 * creations in a pool to come back before it destroys every key:
	 * a key made after the destruction would be left behind.
	 */
	struct rotation		*deprov_wait;
	int			 inline_budget;	/* jobs to sign in the loop */
	uint64_t		 spin_from;	/* the last reply sent */
	int			 spinning;	/* polling since spin_from */
	uint64_t		 spin_mark;	/* the last polling round */
	uint64_t		 spin_longest;	/* its longest round */
	struct botid_spin_gate	 spin_gate;	/* whether polling pays */
	size_t			 queued;	/* jobs handed to pools, not back */
	uint64_t		 expire_at;	/* a job's deadline, or 0 */
	struct uid_count	*uids;		/* uids holding connections */
	size_t			 nuids, uids_cap;
	struct ratelog		 log_full, log_uid, log_evict, log_hello,
				 log_frame, log_cred, log_busy, log_accept;
	struct ssh_cached	*ssh_keys;	/* by bot index */
	size_t			 nssh_keys;
	unsigned		 conn_cap;	/* max_connections, within the
						 * descriptor limit */
	/*
	 * A token failed a request with UNAVAILABLE: the index + 1 of a bot
	 * of down_reg that uses it (0: none), for token_drop().
	 */
	size_t			 down_bot;
	const struct botid_registry *down_reg;
	time_t			 retry_at;	/* next backend try; 0: none */
	unsigned		 retry_delay;	/* seconds, before doubling */
};

static const char *
op_name(uint8_t op)
{
	switch (op) {
	case BOTID_OP_HELLO:		return "hello";
	case BOTID_OP_LIST:		return "list";
	case BOTID_OP_PUBKEY:		return "pubkey";
	case BOTID_OP_CERT_CHAIN:	return "cert-chain";
	case BOTID_OP_SIGN_DIGEST:	return "sign-digest";
	case BOTID_OP_SIGN_DATA:	return "sign-data";
	case BOTID_OP_JWT:		return "jwt";
	case BOTID_OP_INVENTORY:	return "inventory";
	case BOTID_OP_ROTATE:		return "rotate";
	case BOTID_OP_DEPROVISION:	return "deprovision";
	case SSH_AGENT_OP_SIGN:		return "ssh-sign";
	}
	return "unknown";
}

static const char *
hash_name(uint32_t hash)
{
	switch (hash) {
	case BOTID_HASH_SHA256:	return "sha256";
	case BOTID_HASH_SHA384:	return "sha384";
	case BOTID_HASH_SHA512:	return "sha512";
	}
	return NULL;
}

static uint64_t
micros_since(const struct timespec *t0)
{
	struct timespec now;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (int64_t)(now.tv_sec - t0->tv_sec) * 1000000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000;
	return us < 0 ? 0 : (uint64_t)us;
}

/*
 * One round of the loop's polling after a reply (see server_run), with
 * got_event if epoll_wait(0) found something. Polling ends when that
 * happens, when its window is over, when a round lost the CPU to another
 * task (the spin gate then keeps the loop from polling for a while), or
 * when pools hold jobs, whose workers need the core more.
 */
static void
spin_round(struct server *s, int got_event)
{
	uint64_t now = pool_now_ns();

	if (s->spin_mark != 0 && now - s->spin_mark > s->spin_longest)
		s->spin_longest = now - s->spin_mark;
	s->spin_mark = now;
	if (got_event || s->spin_longest >= BOTID_SPIN_PREEMPT_NS ||
	    now - s->spin_from >= LOOP_SPIN_US * 1000u) {
		(void)await_gate_record(&s->spin_gate, s->spin_longest,
		    got_event);
		s->spinning = 0;
	} else if (s->queued > 0)
		s->spinning = 0;
}

/*
 * A denial, a refusal or a read: nothing signed, so it may be aggregated
 * with its like (audit_note) and its reply need not wait for the disk.
 */
static void
audit_simple(const struct conn *c, const char *op, const char *bot,
    const char *result, const char *detail, const struct timespec *t0)
{
	struct botid_audit_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.bot = bot;
	ev.peer = &c->peer;
	ev.result = result;
	ev.detail = detail;
	ev.micros = micros_since(t0);
	audit_note(&ev);
}

/*
 * The outcome of a key operation (rotation, deprovisioning), written in
 * full before its reply: BOTID_ERR_AUDIT_UNAVAILABLE if it could not be.
 */
static int
audit_key_op(const struct conn *c, const char *op, const char *bot,
    const char *result, const char *detail, const struct timespec *t0)
{
	struct botid_audit_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.bot = bot;
	ev.peer = &c->peer;
	ev.result = result;
	ev.detail = detail;
	ev.micros = micros_since(t0);
	return audit_write(&ev);
}

/* What a client hears when its result cannot be recorded. */
#define AUDIT_REFUSAL	"the agent cannot write its audit log; nothing is " \
			"signed until it can"
/* A rotation or deprovisioning took place but is not in the log. */
#define AUDIT_REFUSAL_DONE "the agent cannot write its audit log: what " \
			"was done is not recorded there"

/* Logs at most once per BOTID_LOG_EVERY_S, with how many it stands for. */
static void __attribute__((format(printf, 2, 3)))
log_limited(struct ratelog *rl, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	time_t now = time(NULL);

	rl->count++;
	if (rl->last != 0 && now - rl->last < (time_t)BOTID_LOG_EVERY_S)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rl->count > 1)
		log_warn("%s (%lu times since the last such line)", msg,
		    rl->count);
	else
		log_warn("%s", msg);
	rl->count = 0;
	rl->last = now;
}

static struct uid_count *
uid_find(struct server *s, uid_t uid)
{
	size_t i;

	for (i = 0; i < s->nuids; i++)
		if (s->uids[i].uid == uid)
			return &s->uids[i];
	return NULL;
}

static unsigned
uid_connections(struct server *s, uid_t uid)
{
	struct uid_count *u = uid_find(s, uid);

	return u != NULL ? u->n : 0;
}

/* One more connection for uid; BOTID_ERR_ALLOC if it cannot be counted. */
static int
uid_add(struct server *s, uid_t uid)
{
	struct uid_count *u;
	size_t cap;

	if ((u = uid_find(s, uid)) != NULL) {
		u->n++;
		return 0;
	}
	if (s->nuids == s->uids_cap) {
		cap = s->uids_cap == 0 ? 16 : s->uids_cap * 2;
		if ((u = reallocarray(s->uids, cap, sizeof(*u))) == NULL)
			return BOTID_ERR_ALLOC;
		s->uids = u;
		s->uids_cap = cap;
	}
	s->uids[s->nuids].uid = uid;
	s->uids[s->nuids].n = 1;
	s->nuids++;
	return 0;
}

static void
uid_remove(struct server *s, uid_t uid)
{
	struct uid_count *u = uid_find(s, uid);

	if (u == NULL)
		return;
	if (--u->n == 0)
		*u = s->uids[--s->nuids];
}

static void
conn_set_events(struct server *s, struct conn *c, uint32_t events)
{
	struct epoll_event ev;

	if (c->fd == -1 || events == c->events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		log_err("epoll_ctl: %s", strerror(errno));
	c->events = events;
}

/* What the connection should wait for, given its state. */
static void
conn_update_events(struct server *s, struct conn *c)
{
	uint32_t ev = 0;

	/* Stop reading while replies back up, so memory stays bounded. */
	if (!c->closing && !s->stopping && buf_len(&c->out) < BOTID_MAX_OUTBUF / 2)
		ev |= EPOLLIN;
	if (buf_len(&c->out) > 0)
		ev |= EPOLLOUT;
	conn_set_events(s, c, ev);
}

/*
 * Unlinks a closed connection. It is freed only after the current batch
 * of epoll events, which may still name it.
 */
static void
conn_free(struct server *s, struct conn *c)
{
	if (c->ident_ready) {
		peer_sender_clear(&c->sender);
		peer_cred_clear(&c->in_cred);
		c->ident_ready = 0;
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	buf_reset(&c->in);
	buf_reset(&c->out);
	c->prev = NULL;
	c->next = s->graveyard;
	s->graveyard = c;
	s->nconns--;
}

static void
graveyard_empty(struct server *s)
{
	struct conn *c;

	while ((c = s->graveyard) != NULL) {
		s->graveyard = c->next;
		free(c);
	}
}

/* Closes the socket; the struct lives until its last job comes back. */
static void
conn_close(struct server *s, struct conn *c)
{
	if (c->fd != -1) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		uid_remove(s, c->owner);
	}
	if (c->inflight == 0)
		conn_free(s, c);
}

/* Writes what it can; returns -1 if the connection was closed. */
static int
conn_flush(struct server *s, struct conn *c)
{
	ssize_t n;

	while (buf_len(&c->out) > 0) {
		n = send(c->fd, buf_ptr(&c->out), buf_len(&c->out),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			(void)buf_consume(&c->out, (size_t)n);
			/* A reply went out: its client may ask again soon. */
			if (s->spinning || await_gate_open(&s->spin_gate)) {
				if (!s->spinning) {
					s->spin_mark = 0;
					s->spin_longest = 0;
				}
				s->spin_from = pool_now_ns();
				s->spinning = 1;
			}
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* Peer vanished mid-reply: nothing more to say to it. */
		conn_close(s, c);
		return -1;
	}
	if (buf_len(&c->out) == 0) {
		buf_compact(&c->out);
		if (c->closing) {
			conn_close(s, c);
			return -1;
		}
	}
	conn_update_events(s, c);
	return 0;
}

static void
reply_error(struct conn *c, uint8_t op, uint32_t id, uint32_t status,
    const char *msg)
{
	/* The ssh-agent protocol has one way to say no, without a reason. */
	if (c->ssh) {
		if (ssh_agent_put_status(&c->out, SSH_AGENT_FAILURE) != 0)
			c->closing = 1;
		return;
	}
	if (wire_put_error(&c->out, op, id, status, msg) != 0)
		c->closing = 1;	/* cannot even say why: hang up */
}

static int
policy_ok(const struct botid_bot *bot, const struct conn *c)
{
	return bot != NULL && policy_allows(bot->cfg, &c->peer);
}

/*
 * A bot whose TPM or token was down when its key was to be opened: to a
 * caller it serves, an outage (UNAVAILABLE, retry later), never a refusal;
 * to anyone else the same denial as for any bot. Returns 1 if it replied.
 */
static int
refuse_unavailable(struct server *s, struct conn *c,
    const struct botid_request *req, const struct timespec *t0)
{
	struct botid_bot *down;

	if ((down = registry_find_unavailable(s->reg, req->bot)) == NULL ||
	    !policy_ok(down, c))
		return 0;
	if (down->creation != NULL) {
		reply_error(c, req->op, req->id, BOTID_STATUS_UNAVAILABLE,
		    "the bot's key is being created; retry shortly");
		audit_simple(c, op_name(req->op), req->bot, "error",
		    "key being created", t0);
		return 1;
	}
	reply_error(c, req->op, req->id, BOTID_STATUS_UNAVAILABLE,
	    "backend unavailable: the bot's TPM or token was down when its "
	    "key was to be opened; the agent keeps trying, retry later");
	audit_simple(c, op_name(req->op), req->bot, "error",
	    "backend unavailable", t0);
	return 1;
}

static void
handle_hello(struct conn *c, const struct botid_request *req)
{
	uint32_t status = BOTID_STATUS_OK;
	size_t mark;

	if (req->version != BOTID_PROTOCOL_VERSION) {
		status = BOTID_STATUS_VERSION;
		if (wire_frame_begin(&c->out, req->op, req->id, &status,
		    &mark) != 0)
			goto fail;
		if (wire_put_u32(&c->out, BOTID_TAG_VERSION,
		    BOTID_PROTOCOL_VERSION) != 0 ||
		    wire_put_string(&c->out, BOTID_TAG_MESSAGE,
		    "unsupported protocol version") != 0 ||
		    wire_frame_end(&c->out, mark) != 0) {
			wire_frame_abort(&c->out, mark);
			goto fail;
		}
		return;
	}
	if (wire_frame_begin(&c->out, req->op, req->id, &status, &mark) != 0)
		goto fail;
	if (wire_put_u32(&c->out, BOTID_TAG_VERSION, BOTID_PROTOCOL_VERSION) != 0 ||
	    wire_put_string(&c->out, BOTID_TAG_AGENT,
	    PACKAGE_NAME "-agent " PACKAGE_VERSION) != 0 ||
	    wire_frame_end(&c->out, mark) != 0) {
		wire_frame_abort(&c->out, mark);
		goto fail;
	}
	c->hello = 1;
	return;
 fail:
	c->closing = 1;
}

static void
handle_list(struct server *s, struct conn *c, const struct botid_request *req,
    const struct timespec *t0)
{
	uint32_t status = BOTID_STATUS_OK;
	size_t i, mark, shown = 0;
	char detail[64];

	if (wire_frame_begin(&c->out, req->op, req->id, &status, &mark) != 0)
		goto fail;
	for (i = 0; i < s->reg->nbots; i++) {
		struct botid_bot *bot = &s->reg->bots[i];

		if (bot->key == NULL || !policy_ok(bot, c))
			continue;
		if (wire_put_string(&c->out, BOTID_TAG_BOT, bot->cfg->name) != 0 ||
		    wire_put_string(&c->out, BOTID_TAG_KEY_TYPE,
		    config_key_type_name(bot->cfg->key_type)) != 0 ||
		    wire_put_string(&c->out, BOTID_TAG_BACKEND,
		    config_backend_name(bot->cfg->backend)) != 0)
			goto too_large;
		shown++;
	}
	/* The fields fit the output buffer but may still exceed one frame. */
	if (wire_frame_end(&c->out, mark) != 0)
		goto too_large;
	snprintf(detail, sizeof(detail), "%zu bots", shown);
	audit_simple(c, "list", NULL, "ok", detail, t0);
	return;
 too_large:
	wire_frame_abort(&c->out, mark);
	reply_error(c, req->op, req->id, BOTID_STATUS_TOO_LARGE,
	    "too many bots for one reply");
	audit_simple(c, "list", NULL, "error", "reply too large", t0);
	return;
 fail:
	c->closing = 1;
}

/* One allow line as it was configured, in the config file's syntax. */
static void
allow_line_format(const struct botid_allow_rule *rule, char *out, size_t len)
{
	const struct botid_allow_term *t;
	size_t i, o = 0;
	int n;

	out[0] = '\0';
	for (i = 0; i < rule->nterms && o < len; i++) {
		t = &rule->terms[i];
		switch (t->kind) {
		case BOTID_ALLOW_UID:
		case BOTID_ALLOW_GID:
			n = snprintf(out + o, len - o, "%s%s:%lu",
			    i > 0 ? " " : "",
			    t->kind == BOTID_ALLOW_UID ? "uid" : "gid", t->id);
			break;
		default:
			n = snprintf(out + o, len - o, "%s%s:%s",
			    i > 0 ? " " : "",
			    t->kind == BOTID_ALLOW_EXE ? "exe" : "unit",
			    t->text != NULL ? t->text : "");
			break;
		}
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

/*
 * Appends one bot's inventory fields, BOT first. The key attributes come
 * from the device now: a TPM or token that changed under the agent shows.
 */
static int
inventory_put_bot(struct server *s, struct conn *c, struct botid_bot *bot,
    const struct botid_job *job)
{
	struct renew_status st;
	const struct botid_blob *certs = NULL;
	const uint8_t *spki;
	uint8_t fp[SHA256_DIGEST_LENGTH];
	char line[BOTID_MAX_PATH + 64], *spiffe = NULL, *kind = NULL;
	const char *error = NULL;
	size_t i, n = 0, spki_len;
	int r;

	if ((r = wire_put_string(&c->out, BOTID_TAG_BOT, bot->cfg->name)) != 0 ||
	    (r = wire_put_string(&c->out, BOTID_TAG_BACKEND,
	    config_backend_name(bot->cfg->backend))) != 0 ||
	    (r = wire_put_string(&c->out, BOTID_TAG_KEY_TYPE,
	    config_key_type_name(bot->cfg->key_type))) != 0)
		goto out;
	renew_status(s->renew, bot->cfg->name, &st);
	if (bot->key == NULL && bot->creation != NULL)
		error = "key being created";
	else if (bot->key == NULL)
		error = "key unusable: bot not served";
	else {
		spki = registry_spki(bot, &spki_len);
		if (SHA256(spki, spki_len, fp) == NULL) {
			r = BOTID_ERR_CRYPTO;
			goto out;
		}
		if ((r = wire_put_bytes(&c->out, BOTID_TAG_FINGERPRINT, fp,
		    sizeof(fp))) != 0)
			goto out;
		if (job->result != 0)
			error = "cannot read the key's attributes";
		for (i = 0; job->result == 0 && i < job->nattrs; i++) {
			snprintf(line, sizeof(line), "%s=%d", job->attrs[i].name,
			    job->attrs[i].set);
			if ((r = wire_put_string(&c->out,
			    BOTID_TAG_KEY_ATTRIBUTE, line)) != 0)
				goto out;
		}
		renew_chain(s->renew, bot->cfg->name, spki, spki_len, &certs,
		    &n);
	}
	if (n > 0) {
		/* A leaf without them is still served: leave the field out. */
		(void)certid_spiffe_id(certs[0].data, certs[0].len, &spiffe);
		(void)certid_attestation(certs[0].data, certs[0].len, &kind);
		if ((st.serial[0] != '\0' && (r = wire_put_string(&c->out,
		    BOTID_TAG_SERIAL, st.serial)) != 0) ||
		    (spiffe != NULL && (r = wire_put_string(&c->out,
		    BOTID_TAG_SPIFFE_ID, spiffe)) != 0) ||
		    (kind != NULL && (r = wire_put_string(&c->out,
		    BOTID_TAG_ATTESTATION, kind)) != 0) ||
		    (r = wire_put_u64(&c->out, BOTID_TAG_NOT_AFTER,
		    (uint64_t)st.not_after)) != 0)
			goto out;
	}
	for (i = 0; i < bot->cfg->nallow; i++) {
		allow_line_format(&bot->cfg->allow[i], line, sizeof(line));
		if ((r = wire_put_string(&c->out, BOTID_TAG_ALLOW, line)) != 0)
			goto out;
	}
	for (i = 0; i < bot->cfg->nscopes; i++)
		if ((r = wire_put_string(&c->out, BOTID_TAG_SCOPE,
		    bot->cfg->scopes[i])) != 0)
			goto out;
	if (bot->key != NULL && (r = wire_put_u32(&c->out,
	    BOTID_TAG_GENERATION, registry_key_gen(bot))) != 0)
		goto out;
	if ((bot->last_used != 0 && (r = wire_put_u64(&c->out,
	    BOTID_TAG_LAST_USED, (uint64_t)bot->last_used)) != 0) ||
	    (r = wire_put_u64(&c->out, BOTID_TAG_OPS, bot->ops)) != 0 ||
	    (r = wire_put_u64(&c->out, BOTID_TAG_DENIALS, bot->denials)) != 0)
		goto out;
	if (st.attempted != 0) {
		if ((r = wire_put_u64(&c->out, BOTID_TAG_RENEWED,
		    (uint64_t)st.attempted)) != 0 ||
		    (r = wire_put_u32(&c->out, BOTID_TAG_RENEW_OK,
		    st.ok ? 1 : 0)) != 0)
			goto out;
		if (error == NULL && !st.ok && st.error[0] != '\0')
			error = st.error;
	}
	if (error != NULL &&
	    (r = wire_put_string(&c->out, BOTID_TAG_ERROR, error)) != 0)
		goto out;
	r = 0;
 out:
	free(spiffe);
	free(kind);
	return r;
}

static void
inventory_free(struct inventory *inv)
{
	registry_unref(inv->reg);
	free(inv->jobs);
	free(inv);
}

/*
 * A request answered after its frame was handled (inventory, rotation,
 * deprovisioning): its reply is flushed, or a connection closed meanwhile
 * is freed with its last such request.
 */
static void
conn_request_done(struct server *s, struct conn *c)
{
	c->inflight--;
	if (c->fd == -1) {
		if (c->inflight == 0)
			conn_free(s, c);
	} else
		(void)conn_flush(s, c);
}

/* Every attribute read is back: the reply, from the registry asked. */
static void
inventory_reply(struct server *s, struct conn *c, struct inventory *inv)
{
	uint32_t status = BOTID_STATUS_OK;
	size_t i, mark;
	char detail[64];
	int r;

	if (wire_frame_begin(&c->out, inv->op, inv->id, &status, &mark) != 0) {
		c->closing = 1;
		return;
	}
	for (i = 0, r = 0; i < inv->reg->nbots && r == 0; i++)
		r = inventory_put_bot(s, c, &inv->reg->bots[i], &inv->jobs[i]);
	if (r != 0 || (r = wire_frame_end(&c->out, mark)) != 0) {
		wire_frame_abort(&c->out, mark);
		reply_error(c, inv->op, inv->id, wire_err_to_status(r),
		    r == BOTID_ERR_TOO_LARGE ? "too many bots for one reply" :
		    botid_strerror(r));
		audit_simple(c, op_name(inv->op), NULL, "error",
		    botid_strerror(r), &inv->t0);
		return;
	}
	snprintf(detail, sizeof(detail), "%zu bots", inv->reg->nbots);
	audit_simple(c, op_name(inv->op), NULL, "ok", detail, &inv->t0);
}

/* One attribute job is back; the last one answers the request. */
static void
inventory_job_done(struct server *s, struct inventory *inv)
{
	struct conn *c = inv->conn;

	if (--inv->pending > 0)
		return;
	if (c->fd != -1)
		inventory_reply(s, c, inv);
	inventory_free(inv);
	conn_request_done(s, c);
}

/*
 * Every bot, for an administrator: what botid inventory and botid status
 * print. Anyone else is refused and audited like any other denial. The
 * key attributes are read from the devices for this request, each read
 * queued behind its bot's signatures, never in the loop.
 */
static void
handle_inventory(struct server *s, struct conn *c,
    const struct botid_request *req, const struct timespec *t0)
{
	struct inventory *inv = NULL;
	struct botid_bot *bot;
	size_t i;

	if (!policy_admin(s->reg->cfg, &c->peer)) {
		reply_error(c, req->op, req->id, BOTID_STATUS_DENIED, "denied");
		audit_simple(c, op_name(req->op), NULL, "denied", NULL, t0);
		return;
	}
	if (c->inflight >= BOTID_MAX_INFLIGHT) {
		reply_error(c, req->op, req->id, BOTID_STATUS_BUSY,
		    "too many requests in flight on this connection");
		audit_simple(c, op_name(req->op), NULL, "error", "busy", t0);
		return;
	}
	/* One more job than bots, so that no bots is no special case. */
	if ((inv = calloc(1, sizeof(*inv))) == NULL ||
	    (inv->jobs = calloc(s->reg->nbots + 1, sizeof(*inv->jobs))) == NULL) {
		free(inv);
		reply_error(c, req->op, req->id, BOTID_STATUS_INTERNAL,
		    "out of memory");
		return;
	}
	inv->conn = c;
	inv->reg = s->reg;
	registry_ref(s->reg);
	inv->op = req->op;
	inv->id = req->id;
	inv->t0 = *t0;
	c->inflight++;
	/* Counted before any is queued: none can come back in the meantime. */
	inv->pending = 1;
	for (i = 0; i < s->reg->nbots; i++)
		if (s->reg->bots[i].key != NULL)
			inv->pending++;
	for (i = 0; i < s->reg->nbots; i++) {
		bot = &s->reg->bots[i];
		if (bot->key == NULL)
			continue;
		inv->jobs[i].kind = BOTID_JOB_ATTRIBUTES;
		inv->jobs[i].key = registry_key(bot);
		inv->jobs[i].fairq = &bot->fairq;
		inv->jobs[i].owner = inv;
		pool_submit(registry_pool(bot), &inv->jobs[i]);
		s->queued++;
	}
	/* The extra count: answers at once when no bot has a key. */
	inventory_job_done(s, inv);
}

/* The rotation is over: the answer, on a connection that may be gone. */
static void
rotate_done(void *cookie, int result, const char *error, uint32_t gen)
{
	struct rotation *rot = cookie;
	struct server *s = rot->server;
	struct conn *c = rot->conn;
	uint32_t status = BOTID_STATUS_OK;
	char detail[64];
	size_t mark;
	int audited;

	/* The outcome is recorded before anyone hears of it. */
	snprintf(detail, sizeof(detail), "generation %u", (unsigned)gen);
	audited = audit_key_op(c, op_name(rot->op), rot->bot, result == 0 ?
	    "ok" : "error", result == 0 ? detail : error, &rot->t0);
	if (c->fd != -1 && audited != 0)
		reply_error(c, rot->op, rot->id,
		    BOTID_STATUS_AUDIT_UNAVAILABLE, AUDIT_REFUSAL_DONE);
	else if (c->fd != -1 && result == 0) {
		if (wire_frame_begin(&c->out, rot->op, rot->id, &status,
		    &mark) != 0 || wire_put_u32(&c->out, BOTID_TAG_GENERATION,
		    gen) != 0 || wire_frame_end(&c->out, mark) != 0) {
			wire_frame_abort(&c->out, mark);
			c->closing = 1;
		}
	} else if (c->fd != -1)
		reply_error(c, rot->op, rot->id, result == BOTID_ERR_BUSY ?
		    BOTID_STATUS_BUSY : BOTID_STATUS_BACKEND, error);
	free(rot);
	conn_request_done(s, c);
}

/*
 * A new key for the bot now (botid rotate), for an administrator only:
 * the answer comes once the new key is certified and current.
 */
static void
handle_rotate(struct server *s, struct conn *c, const struct botid_request *req,
    const struct timespec *t0)
{
	struct rotation *rot = NULL;
	struct botid_bot *bot;
	const char *why = NULL;
	uint32_t status = BOTID_STATUS_BACKEND;
	int r;

	if (!policy_admin(s->reg->cfg, &c->peer)) {
		reply_error(c, req->op, req->id, BOTID_STATUS_DENIED, "denied");
		audit_simple(c, op_name(req->op), req->bot, "denied", NULL, t0);
		return;
	}
	if ((bot = registry_find(s->reg, req->bot)) == NULL) {
		why = "no such bot, or its key is unusable";
		status = BOTID_STATUS_DENIED;
		goto fail;
	}
	if (c->inflight >= BOTID_MAX_INFLIGHT) {
		why = "too many requests in flight on this connection";
		status = BOTID_STATUS_BUSY;
		goto fail;
	}
	if ((rot = calloc(1, sizeof(*rot))) == NULL) {
		why = "out of memory";
		status = BOTID_STATUS_INTERNAL;
		goto fail;
	}
	rot->server = s;
	rot->conn = c;
	rot->op = req->op;
	rot->id = req->id;
	rot->t0 = *t0;
	snprintf(rot->bot, sizeof(rot->bot), "%s", req->bot);
	if ((r = renew_rotate(s->renew, s->reg, bot, rotate_done, rot)) != 0) {
		free(rot);
		if (r == BOTID_ERR_NOT_FOUND)
			why = "the host is not provisioned: a new key needs a "
			    "certificate from the CA (botid provision)";
		else if (r == BOTID_ERR_BUSY) {
			why = "a rotation of this bot is already under way";
			status = BOTID_STATUS_BUSY;
		} else if (r == BOTID_ERR_UNAVAILABLE)
			why = "the bot's key or the TPM is unavailable now";
		else
			why = botid_strerror(r);
		goto fail;
	}
	c->inflight++;
	return;
 fail:
	reply_error(c, req->op, req->id, status, why);
	audit_simple(c, op_name(req->op), req->bot, status ==
	    BOTID_STATUS_DENIED ? "denied" : "error", why, t0);
}

/*
 * The host is revoked (or was never enrolled): every key goes, then the
 * host's own keys and enrolment, and the agent stops. The answer says
 * what could not be destroyed, if anything.
 */
static void
deprovision_destroy(struct server *s, struct rotation *rot)
{
	struct conn *c = rot->conn;
	char err[BOTID_MAX_PATH + 64];
	const char *why = NULL;
	uint32_t status = BOTID_STATUS_OK;
	size_t mark;
	int r;

	err[0] = '\0';
	if ((r = registry_destroy_all(s->reg, &s->done)) != 0)
		why = "some bot keys could not be destroyed (see the agent's log)";
	else if ((r = host_state_remove(s->reg->cfg->state_dir, err,
	    sizeof(err))) != 0)
		why = err[0] != '\0' ? err : botid_strerror(r);
	if (audit_key_op(c, op_name(rot->op), NULL, why == NULL ? "ok" :
	    "error", why != NULL ? why : rot->was_revoked ? "host already "
	    "revoked at the CA, every key destroyed" : "host revoked, every "
	    "key destroyed", &rot->t0) != 0) {
		if (c->fd != -1)
			reply_error(c, rot->op, rot->id,
			    BOTID_STATUS_AUDIT_UNAVAILABLE, AUDIT_REFUSAL_DONE);
	} else if (c->fd != -1) {
		if (why != NULL)
			reply_error(c, rot->op, rot->id, BOTID_STATUS_BACKEND, why);
		else if (wire_frame_begin(&c->out, rot->op, rot->id, &status,
		    &mark) != 0 || wire_frame_end(&c->out, mark) != 0) {
			wire_frame_abort(&c->out, mark);
			c->closing = 1;
		}
	}
	log_warn("deprovisioned%s%s: stopping", why != NULL ? " with errors: " :
	    "", why != NULL ? why : "");
	s->stopping = 1;
}

/*
 * The waiting deprovisioning, once no key creation is in a pool (none
 * begins after registry_creations_cancel()): every key is destroyed.
 */
static void
deprovision_resume(struct server *s)
{
	struct rotation *rot = s->deprov_wait;

	if (rot == NULL || registry_creations_in_pool() > 0)
		return;
	s->deprov_wait = NULL;
	deprovision_destroy(s, rot);
	conn_request_done(s, rot->conn);
	free(rot);
}

static void
deprovision_done(void *cookie, int result, const char *error)
{
	struct rotation *rot = cookie;
	struct server *s = rot->server;
	struct conn *c = rot->conn;
	char why[512];

	if (result == 0) {
		/* An operator's botid-ca revoke host came first. */
		if (error[0] != '\0') {
			rot->was_revoked = 1;
			log_warn("deprovisioning: %s: every key is destroyed",
			    error);
		}
		/* No key is made from now on; those being made come back. */
		registry_creations_cancel();
		if (registry_creations_in_pool() > 0) {
			log_info("deprovisioning: waiting for the key creations "
			    "in progress, to destroy their keys too");
			s->deprov_wait = rot;
			return;
		}
		deprovision_destroy(s, rot);
	} else {
		snprintf(why, sizeof(why), "the CA did not revoke the host, "
		    "nothing was destroyed: %.400s", error);
		if (audit_key_op(c, op_name(rot->op), NULL, "error", why,
		    &rot->t0) != 0 && c->fd != -1)
			reply_error(c, rot->op, rot->id,
			    BOTID_STATUS_AUDIT_UNAVAILABLE, AUDIT_REFUSAL);
		else if (c->fd != -1)
			reply_error(c, rot->op, rot->id, BOTID_STATUS_BACKEND, why);
	}
	free(rot);
	conn_request_done(s, c);
}

/*
 * botid deprovision, for an administrator: the host revoked at the CA,
 * then every key the agent made destroyed, then the agent stops.
 */
static void
handle_deprovision(struct server *s, struct conn *c,
    const struct botid_request *req, const struct timespec *t0)
{
	struct rotation *rot = NULL;
	const char *why = NULL;
	int r;

	if (!policy_admin(s->reg->cfg, &c->peer)) {
		reply_error(c, req->op, req->id, BOTID_STATUS_DENIED, "denied");
		audit_simple(c, op_name(req->op), NULL, "denied", NULL, t0);
		return;
	}
	if ((rot = calloc(1, sizeof(*rot))) == NULL) {
		reply_error(c, req->op, req->id, BOTID_STATUS_INTERNAL,
		    "out of memory");
		return;
	}
	rot->server = s;
	rot->conn = c;
	rot->op = req->op;
	rot->id = req->id;
	rot->t0 = *t0;
	c->inflight++;
	r = renew_deprovision(s->renew, s->reg, deprovision_done, rot);
	if (r == BOTID_ERR_NOT_FOUND) {
		/* Never enrolled: nothing to revoke, keys to destroy. */
		deprovision_done(rot, 0, "");
		return;
	}
	if (r != 0) {
		c->inflight--;
		free(rot);
		why = r == BOTID_ERR_UNAVAILABLE ? "the TPM holding the host "
		    "key is unavailable: the host cannot be revoked now" :
		    botid_strerror(r);
		reply_error(c, req->op, req->id, BOTID_STATUS_BACKEND, why);
		audit_simple(c, op_name(req->op), NULL, "error", why, t0);
	}
}

/* A request a bot answered: counted for the inventory. */
static void
bot_used(struct botid_bot *bot)
{
	bot->ops++;
	bot->last_used = time(NULL);
}

static void
handle_pubkey(struct server *s, struct conn *c, const struct botid_request *req,
    struct botid_bot *bot, const struct timespec *t0)
{
	uint32_t status = BOTID_STATUS_OK;
	const uint8_t *spki;
	size_t len, mark;

	spki = registry_spki(bot, &len);
	if (wire_frame_begin(&c->out, req->op, req->id, &status, &mark) != 0)
		goto fail;
	if (wire_put_bytes(&c->out, BOTID_TAG_PUBKEY, spki, len) != 0 ||
	    wire_frame_end(&c->out, mark) != 0) {
		wire_frame_abort(&c->out, mark);
		goto fail;
	}
	bot_used(bot);
	audit_simple(c, op_name(req->op), bot->cfg->name, "ok", NULL, t0);
	return;
 fail:
	c->closing = 1;
}

static void
handle_cert_chain(struct server *s, struct conn *c,
    const struct botid_request *req, struct botid_bot *bot,
    const struct timespec *t0)
{
	const struct botid_blob *certs;
	const uint8_t *spki;
	uint32_t status = BOTID_STATUS_OK;
	size_t mark, n, i, spki_len;

	/* Empty until the CA issued one (doc/protocol.md says so). */
	spki = registry_spki(bot, &spki_len);
	renew_chain(s->renew, bot->cfg->name, spki, spki_len, &certs, &n);
	if (wire_frame_begin(&c->out, req->op, req->id, &status, &mark) != 0) {
		c->closing = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		if (wire_put_bytes(&c->out, BOTID_TAG_CERT, certs[i].data,
		    certs[i].len) != 0) {
			wire_frame_abort(&c->out, mark);
			c->closing = 1;
			return;
		}
	}
	if (wire_frame_end(&c->out, mark) != 0) {
		c->closing = 1;
		return;
	}
	bot_used(bot);
	audit_simple(c, op_name(req->op), bot->cfg->name, "ok", NULL, t0);
}

static void	finish_job(struct server *, struct botid_job *, int);

/*
 * A request answered (its reply queued): freed, and its connection freed
 * with it if the client is gone and nothing else is in flight, or
 * flushed.
 */
static void
request_done(struct server *s, struct conn *c, struct request *rq, int flush)
{
	free(rq->jwt_input);
	free(rq->jwt_detail);
	registry_unref(rq->reg);
	free(rq);
	c->inflight--;
	if (c->fd == -1) {
		if (c->inflight == 0)
			conn_free(s, c);
	} else if (flush)
		(void)conn_flush(s, c);
}

/* Why a request is answered BUSY by its bot's queue, as the audit says. */
#define QUEUE_BUSY_DETAIL	"busy: over max_queue_wait"

/*
 * A request its bot's queue could not serve within max_queue_wait: BUSY
 * with when to retry, refused before anything was signed, so audited as
 * any such refusal (aggregated, doc/audit.md). flush: send the reply now.
 */
static void
request_busy(struct server *s, struct request *rq, uint32_t retry_ms,
    const char *why, int flush)
{
	struct conn *c = rq->conn;

	/* RETRY_AFTER says when; the message, why. */
	if (c->fd != -1 && c->ssh)
		reply_error(c, rq->op, rq->id, BOTID_STATUS_BUSY, NULL);
	else if (c->fd != -1 &&
	    wire_put_busy(&c->out, rq->op, rq->id, retry_ms, why) != 0)
		c->closing = 1;
	audit_simple(c, op_name(rq->op), rq->bot->cfg->name, "error",
	    QUEUE_BUSY_DETAIL, &rq->t0);
	log_limited(&s->log_busy, "bot %s: %s: answered BUSY (retry after "
	    "%u ms)", rq->bot->cfg->name, why, (unsigned)retry_ms);
	request_done(s, c, rq, flush);
}

/*
 * Hands a signing job to its bot's pool, or, when the loop woke for this
 * connection alone and the pool is idle and quick, signs it here and
 * answers at once (pool_run_inline). A queue whose wait is estimated over
 * max_queue_wait answers BUSY at once instead.
 */
static void
submit_job(struct server *s, struct botid_pool *pool, struct botid_job *job)
{
	uint64_t max_wait = (uint64_t)s->reg->cfg->max_queue_wait_ms * 1000000u;
	uint32_t retry_ms;

	if (s->inline_budget > 0 && pool_run_inline(pool, job)) {
		s->inline_budget--;
		finish_job(s, job, 0);
		return;
	}
	if (pool_submit_bounded(pool, job, max_wait, &retry_ms) != 0) {
		request_busy(s, job->owner, retry_ms, "the bot's queue would "
		    "take longer than max_queue_wait", 0);
		return;
	}
	s->queued++;
	if (job->deadline_ns != 0 &&
	    (s->expire_at == 0 || job->deadline_ns < s->expire_at))
		s->expire_at = job->deadline_ns;
}

/* Picks the scheme for AUTO and refuses ones the key cannot do. */
static int
resolve_scheme(const struct botid_bot *bot, uint32_t scheme, uint32_t *out)
{
	int ec = registry_key_is_ec(bot);

	if (scheme == BOTID_SCHEME_AUTO)
		scheme = ec ? BOTID_SCHEME_ECDSA : BOTID_SCHEME_PKCS1;
	if (ec != (scheme == BOTID_SCHEME_ECDSA))
		return BOTID_ERR_UNSUPPORTED;
	*out = scheme;
	return 0;
}

static void
handle_sign(struct server *s, struct conn *c, const struct botid_request *req,
    struct botid_bot *bot, const struct timespec *t0)
{
	struct request *rq = NULL;
	uint32_t hash = req->hash, status;
	const char *why, *detail;

	/* Every refusal below goes through refuse: reply, audit, free. */
	if (c->inflight >= BOTID_MAX_INFLIGHT) {
		status = BOTID_STATUS_BUSY;
		why = "too many requests in flight on this connection";
		detail = "busy";
		goto refuse;
	}
	if ((rq = calloc(1, sizeof(*rq))) == NULL) {
		status = BOTID_STATUS_INTERNAL;
		why = detail = "out of memory";
		goto refuse;
	}
	if (req->op == BOTID_OP_SIGN_DATA) {
		if (hash == 0)
			hash = BOTID_HASH_SHA256;
		if (sig_digest(hash, req->data, req->data_len, rq->job.digest,
		    &rq->job.digest_len) != 0 ||
		    sig_digest(BOTID_HASH_SHA256, req->data, req->data_len,
		    rq->data_sha256, &(size_t){ 0 }) != 0) {
			status = BOTID_STATUS_INTERNAL;
			why = detail = "cannot hash data";
			goto refuse;
		}
		rq->has_data_sha = 1;
	} else {
		if (req->digest_len != wire_hash_len(hash)) {
			status = BOTID_STATUS_MALFORMED;
			why = "digest length does not match hash";
			detail = "bad digest length";
			goto refuse;
		}
		memcpy(rq->job.digest, req->digest, req->digest_len);
		rq->job.digest_len = req->digest_len;
	}
	/* r || s only exists for ECDSA; an RSA signature has one form. */
	if (req->format == BOTID_FORMAT_RAW && !registry_key_is_ec(bot)) {
		status = BOTID_STATUS_UNSUPPORTED;
		why = "format raw applies to ECDSA keys only";
		detail = "format not supported";
		goto refuse;
	}
	if (resolve_scheme(bot, req->scheme, &rq->job.params.scheme) != 0) {
		status = BOTID_STATUS_UNSUPPORTED;
		why = "scheme not supported by this bot's key";
		detail = "scheme not supported";
		goto refuse;
	}
	rq->job.params.hash = hash;
	rq->job.key = registry_key(bot);
	rq->job.fairq = &bot->fairq;
	rq->job.owner = rq;
	rq->conn = c;
	rq->reg = s->reg;
	registry_ref(s->reg);
	rq->bot = bot;
	rq->op = req->op;
	rq->id = req->id;
	rq->hash = hash;
	rq->format = req->format;
	rq->t0 = *t0;
	c->inflight++;
	submit_job(s, registry_pool(bot), &rq->job);
	return;
 refuse:
	reply_error(c, req->op, req->id, status, why);
	audit_simple(c, op_name(req->op), bot->cfg->name, "error", detail, t0);
	free(rq);
}

/*
 * A JWT: the request is checked against the bot's grant, the agent
 * builds header and claims, and the signing input's digest joins the
 * bot's queue like any signature; finish_jobs() assembles the token.
 * It is signed by the bot's token key, which no other operation reaches,
 * so a token its certificate vouches for holds only what was checked here.
 */
static void
handle_jwt(struct server *s, struct conn *c, const struct botid_request *req,
    struct botid_bot *bot, const struct timespec *t0)
{
	const struct botid_blob *certs;
	const uint8_t *spki;
	struct request *rq = NULL;
	enum jws_alg alg;
	char why[128], *input = NULL, *jti = NULL;
	char tname[BOTID_MAX_KEY_NAME + 1];
	size_t n, spki_len, o, i;
	int r;

	if ((r = token_check(bot->cfg, req, why, sizeof(why))) != 0) {
		bot->denials++;
		reply_error(c, req->op, req->id, BOTID_STATUS_DENIED, why);
		audit_simple(c, op_name(req->op), bot->cfg->name, "denied",
		    why, t0);
		return;
	}
	if (token_alg(bot->cfg, req->scheme, &alg) != 0) {
		reply_error(c, req->op, req->id, BOTID_STATUS_UNSUPPORTED,
		    "scheme not supported by this bot's key");
		audit_simple(c, op_name(req->op), bot->cfg->name, "error",
		    "scheme not supported", t0);
		return;
	}
	spki = registry_token_spki(bot, &spki_len);
	snprintf(tname, sizeof(tname), "%s%s", bot->cfg->name,
	    BOTID_TOKEN_KEY_SUFFIX);
	n = 0;
	if (spki != NULL)
		renew_chain(s->renew, tname, spki, spki_len, &certs, &n);
	if (n == 0) {
		reply_error(c, req->op, req->id, BOTID_STATUS_NO_CERT,
		    "bot has no token-key certificate yet");
		audit_simple(c, op_name(req->op), bot->cfg->name, "error",
		    "no certificate", t0);
		return;
	}
	if (c->inflight >= BOTID_MAX_INFLIGHT) {
		reply_error(c, req->op, req->id, BOTID_STATUS_BUSY,
		    "too many requests in flight on this connection");
		audit_simple(c, op_name(req->op), bot->cfg->name, "error",
		    "busy", t0);
		return;
	}
	if ((r = token_build(bot->cfg, alg, certs, n, req, time(NULL), &input,
	    &jti)) != 0 || (rq = calloc(1, sizeof(*rq))) == NULL ||
	    (rq->jwt_detail = malloc(BOTID_MAX_AUDIENCE + 64 +
	    BOTID_MAX_SCOPES * (BOTID_MAX_SCOPE + 1))) == NULL) {
		if (r == 0)
			r = BOTID_ERR_ALLOC;
		reply_error(c, req->op, req->id, wire_err_to_status(r),
		    r == BOTID_ERR_TOO_LARGE ? "token would be too large" :
		    r == BOTID_ERR_DENIED ? "beyond the grant in the token "
		    "key's certificate" : "cannot build token");
		audit_simple(c, op_name(req->op), bot->cfg->name,
		    r == BOTID_ERR_DENIED ? "denied" : "error",
		    r == BOTID_ERR_DENIED ? "beyond the certificate's grant" :
		    botid_strerror(r), t0);
		if (rq != NULL)
			free(rq->jwt_detail);
		free(rq);
		free(input);
		free(jti);
		return;
	}
	o = (size_t)snprintf(rq->jwt_detail, BOTID_MAX_AUDIENCE + 64,
	    "jti=%s aud=%s scope=", jti, req->audience);
	for (i = 0; i < req->nscopes; i++)
		o += (size_t)sprintf(rq->jwt_detail + o, "%s%s",
		    i > 0 ? "," : "", req->scopes[i]);
	free(jti);
	rq->jwt_input = input;
	rq->job.params.hash = jws_alg_hash(alg);
	rq->job.params.scheme = jws_alg_scheme(alg);
	if (sig_digest(rq->job.params.hash, input, strlen(input),
	    rq->job.digest, &rq->job.digest_len) != 0) {
		reply_error(c, req->op, req->id, BOTID_STATUS_INTERNAL,
		    "cannot hash token");
		free(rq->jwt_detail);
		free(rq->jwt_input);
		free(rq);
		return;
	}
	rq->job.key = registry_token_key(bot);
	rq->job.fairq = &bot->fairq;
	rq->job.owner = rq;
	rq->conn = c;
	rq->reg = s->reg;
	registry_ref(s->reg);
	rq->bot = bot;
	rq->op = req->op;
	rq->id = req->id;
	rq->hash = rq->job.params.hash;
	rq->format = BOTID_FORMAT_RAW;	/* JOSE wants r || s */
	rq->t0 = *t0;
	c->inflight++;
	submit_job(s, registry_pool(bot), &rq->job);
}

/* Encodes the reply to a finished job: a signature, or a whole JWT. */
static int
reply_signature(struct conn *c, const struct request *rq, const uint8_t *sig,
    size_t sig_len)
{
	uint32_t status = BOTID_STATUS_OK;
	char *token = NULL;
	size_t mark;
	int r;

	if (rq->op == SSH_AGENT_OP_SIGN)
		return ssh_agent_put_signature(&c->out, rq->ssh_kind,
		    rq->ssh_alg, sig, sig_len);
	if (rq->op == BOTID_OP_JWT &&
	    (r = jws_finish(rq->jwt_input, 0, sig, sig_len, &token)) != 0)
		return r;
	if (wire_frame_begin(&c->out, rq->op, rq->id, &status, &mark) != 0)
		r = BOTID_ERR_ALLOC;
	else if ((token != NULL ?
	    wire_put_string(&c->out, BOTID_TAG_JWT, token) :
	    wire_put_bytes(&c->out, BOTID_TAG_SIGNATURE, sig, sig_len)) != 0 ||
	    wire_frame_end(&c->out, mark) != 0) {
		wire_frame_abort(&c->out, mark);
		r = BOTID_ERR_ALLOC;
	} else
		r = 0;
	free(token);
	return r;
}

/* One complete frame body from c. */
static void
handle_frame(struct server *s, struct conn *c, const uint8_t *body, size_t len)
{
	struct botid_request req;
	struct botid_bot *bot = NULL;
	struct timespec t0;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = wire_decode_request(body, len, &req);
	if (r == BOTID_ERR_UNSUPPORTED) {
		reply_error(c, req.op, req.id, BOTID_STATUS_UNKNOWN_OP,
		    "unknown operation");
		return;
	}
	if (r != 0) {
		reply_error(c, req.op, req.id, wire_err_to_status(r),
		    "malformed request");
		return;
	}
	if (req.op == BOTID_OP_HELLO) {
		handle_hello(c, &req);
		return;
	}
	if (!c->hello) {
		reply_error(c, req.op, req.id, BOTID_STATUS_VERSION,
		    "hello required");
		return;
	}
	if (req.op == BOTID_OP_LIST) {
		handle_list(s, c, &req, &t0);
		return;
	}
	if (req.op == BOTID_OP_INVENTORY) {
		handle_inventory(s, c, &req, &t0);
		return;
	}
	if (req.op == BOTID_OP_ROTATE) {
		handle_rotate(s, c, &req, &t0);
		return;
	}
	if (req.op == BOTID_OP_DEPROVISION) {
		handle_deprovision(s, c, &req, &t0);
		return;
	}
	/* Every other op names a bot: unknown and not allowed look the same. */
	bot = registry_find(s->reg, req.bot);
	if (bot == NULL && refuse_unavailable(s, c, &req, &t0))
		return;
	if (!policy_ok(bot, c)) {
		if (bot != NULL)
			bot->denials++;
		reply_error(c, req.op, req.id, BOTID_STATUS_DENIED, "denied");
		audit_simple(c, op_name(req.op), req.bot, "denied", NULL, &t0);
		return;
	}
	switch (req.op) {
	case BOTID_OP_PUBKEY:
		handle_pubkey(s, c, &req, bot, &t0);
		break;
	case BOTID_OP_CERT_CHAIN:
		handle_cert_chain(s, c, &req, bot, &t0);
		break;
	case BOTID_OP_SIGN_DIGEST:
	case BOTID_OP_SIGN_DATA:
		handle_sign(s, c, &req, bot, &t0);
		break;
	case BOTID_OP_JWT:
		handle_jwt(s, c, &req, bot, &t0);
		break;
	default:
		reply_error(c, req.op, req.id, BOTID_STATUS_UNKNOWN_OP,
		    "unknown operation");
		break;
	}
}

static void
ssh_cache_free(struct server *s)
{
	size_t i;

	for (i = 0; i < s->nssh_keys; i++) {
		free(s->ssh_keys[i].spki);
		free(s->ssh_keys[i].blob);
	}
	free(s->ssh_keys);
	s->ssh_keys = NULL;
	s->nssh_keys = 0;
}

/*
 * The SSH form of bot i's key in the current registry. Errors:
 * BOTID_ERR_UNSUPPORTED (no SSH form), _ALLOC, and sshkey_from_spki's.
 */
static int
ssh_bot_key(struct server *s, size_t i, const struct ssh_cached **out)
{
	struct botid_buf blob;
	struct ssh_cached *e, *grown;
	const uint8_t *spki;
	size_t spki_len, n;
	int r;

	*out = NULL;
	if (i >= s->nssh_keys) {
		n = s->reg->nbots;
		if ((grown = reallocarray(s->ssh_keys, n, sizeof(*grown))) ==
		    NULL)
			return BOTID_ERR_ALLOC;
		memset(grown + s->nssh_keys, 0, (n - s->nssh_keys) *
		    sizeof(*grown));
		s->ssh_keys = grown;
		s->nssh_keys = n;
	}
	e = &s->ssh_keys[i];
	spki = registry_spki(&s->reg->bots[i], &spki_len);
	if (e->spki == NULL || e->spki_len != spki_len ||
	    memcmp(e->spki, spki, spki_len) != 0) {
		free(e->spki);
		free(e->blob);
		memset(e, 0, sizeof(*e));
		if ((e->spki = malloc(spki_len)) == NULL)
			return BOTID_ERR_ALLOC;
		memcpy(e->spki, spki, spki_len);
		e->spki_len = spki_len;
		buf_init(&blob, BOTID_SSH_MAX_KEY_BLOB);
		if ((r = sshkey_from_spki(spki, spki_len, &blob,
		    &e->kind)) == 0 &&
		    (r = sshkey_fingerprint(buf_ptr(&blob), buf_len(&blob),
		    e->fp)) == 0) {
			if ((e->blob = malloc(buf_len(&blob))) == NULL)
				r = BOTID_ERR_ALLOC;
			else {
				memcpy(e->blob, buf_ptr(&blob), buf_len(&blob));
				e->blob_len = buf_len(&blob);
			}
		}
		buf_reset(&blob);
		if (r != 0 && r != BOTID_ERR_UNSUPPORTED) {
			/* Not remembered: the next request tries again. */
			free(e->spki);
			e->spki = NULL;
			return r;
		}
	}
	if (e->blob == NULL)
		return BOTID_ERR_UNSUPPORTED;
	*out = e;
	return 0;
}

/* The bot's SSH certificate, if botid-ca gave it one: BOTID_ERR_NOT_FOUND. */
static int
ssh_bot_cert(struct server *s, const struct botid_bot *bot,
    const uint8_t **cert, size_t *len)
{
	const uint8_t *spki;
	size_t spki_len;

	spki = registry_spki(bot, &spki_len);
	renew_ssh_cert(s->renew, bot->cfg->name, spki, spki_len, cert, len);
	return *cert != NULL ? 0 : BOTID_ERR_NOT_FOUND;
}

/* REQUEST_IDENTITIES: the bots this caller may use, and only those. */
static void
ssh_identities(struct server *s, struct conn *c, const struct timespec *t0)
{
	const struct ssh_cached *key;
	const uint8_t *cert;
	size_t i, mark, cert_len;
	uint32_t shown = 0;
	char detail[64];
	int r;

	if ((r = ssh_agent_identities_begin(&c->out, &mark)) != 0) {
		c->closing = 1;
		return;
	}
	for (i = 0; i < s->reg->nbots; i++) {
		struct botid_bot *bot = &s->reg->bots[i];

		if (bot->key == NULL || !policy_ok(bot, c))
			continue;
		/* A key SSH cannot name is left out, not an error for all. */
		if (ssh_bot_key(s, i, &key) != 0)
			continue;
		if ((r = ssh_agent_identities_add(&c->out, key->blob,
		    key->blob_len, bot->cfg->name)) != 0)
			break;
		shown++;
		/* Its SSH certificate from botid-ca, when it has one. */
		if (ssh_bot_cert(s, bot, &cert, &cert_len) == 0) {
			if ((r = ssh_agent_identities_add(&c->out, cert,
			    cert_len, bot->cfg->name)) != 0)
				break;
			shown++;
		}
	}
	if (r != 0 || (r = ssh_agent_identities_end(&c->out, mark,
	    shown)) != 0) {
		ssh_agent_identities_abort(&c->out, mark);
		reply_error(c, 0, 0, BOTID_STATUS_TOO_LARGE, NULL);
		audit_simple(c, "ssh-list", NULL, "error", "reply too large",
		    t0);
		return;
	}
	snprintf(detail, sizeof(detail), "%u keys", (unsigned)shown);
	audit_simple(c, "ssh-list", NULL, "ok", detail, t0);
}

/*
 * SIGN_REQUEST: the bot whose key the client names, if this caller may
 * use it; otherwise the same FAILURE as for a key the agent never had.
 */
static void
ssh_sign(struct server *s, struct conn *c, const struct ssh_agent_request *req,
    const struct timespec *t0)
{
	const struct ssh_cached *key = NULL;
	const uint8_t *cert;
	size_t cert_len;
	struct botid_bot *bot = NULL, *denied = NULL;
	struct request *rq = NULL;
	enum botid_sshkey_kind kind = BOTID_SSHKEY_NONE;
	const char *alg, *why = NULL, *result = "error";
	char fp[BOTID_SSHKEY_FP_LEN], detail[192];
	uint32_t hash = 0, scheme = 0;
	size_t i;

	fp[0] = '\0';
	for (i = 0; i < s->reg->nbots && bot == NULL && denied == NULL; i++) {
		struct botid_bot *b = &s->reg->bots[i];

		if (b->key == NULL || ssh_bot_key(s, i, &key) != 0)
			continue;
		/* The client names the key, or its certificate. */
		if ((key->blob_len != req->key_len ||
		    memcmp(key->blob, req->key, req->key_len) != 0) &&
		    (ssh_bot_cert(s, b, &cert, &cert_len) != 0 ||
		    cert_len != req->key_len ||
		    memcmp(cert, req->key, req->key_len) != 0))
			continue;
		kind = key->kind;
		snprintf(fp, sizeof(fp), "%s", key->fp);
		if (policy_ok(b, c))
			bot = b;
		else
			denied = b;
	}
	if (fp[0] == '\0' && sshkey_fingerprint(req->key, req->key_len,
	    fp) != 0)
		snprintf(fp, sizeof(fp), "?");
	snprintf(detail, sizeof(detail), "key %s%s%s", fp,
	    c->ssh_host[0] != '\0' ? " host " : "", c->ssh_host);
	if (bot == NULL) {
		if (denied != NULL)
			denied->denials++;
		reply_error(c, 0, 0, BOTID_STATUS_DENIED, NULL);
		audit_simple(c, op_name(SSH_AGENT_OP_SIGN), denied != NULL ?
		    denied->cfg->name : NULL, "denied", detail, t0);
		goto out;
	}
	if (ssh_agent_sign_alg(kind, req->flags, &hash, &scheme, &alg) != 0) {
		why = "algorithm not supported (never ssh-rsa with SHA-1)";
		goto refuse;
	}
	if (c->inflight >= BOTID_MAX_INFLIGHT) {
		why = "busy";
		goto refuse;
	}
	if ((rq = calloc(1, sizeof(*rq))) == NULL ||
	    (rq->jwt_detail = strdup(detail)) == NULL) {
		why = "out of memory";
		goto refuse;
	}
	if (sig_digest(hash, req->data, req->data_len, rq->job.digest,
	    &rq->job.digest_len) != 0 ||
	    sig_digest(BOTID_HASH_SHA256, req->data, req->data_len,
	    rq->data_sha256, &(size_t){ 0 }) != 0) {
		why = "cannot hash data";
		goto refuse;
	}
	rq->has_data_sha = 1;
	rq->job.params.hash = hash;
	rq->job.params.scheme = scheme;
	rq->job.key = registry_key(bot);
	rq->job.fairq = &bot->fairq;
	rq->job.owner = rq;
	rq->conn = c;
	rq->reg = s->reg;
	registry_ref(s->reg);
	rq->bot = bot;
	rq->op = SSH_AGENT_OP_SIGN;
	rq->hash = hash;
	rq->format = BOTID_FORMAT_RAW;	/* r || s: SSH wants two mpints */
	rq->ssh_kind = kind;
	rq->ssh_alg = alg;
	rq->t0 = *t0;
	c->inflight++;
	submit_job(s, registry_pool(bot), &rq->job);
	rq = NULL;
	goto out;
 refuse:
	reply_error(c, 0, 0, BOTID_STATUS_UNSUPPORTED, NULL);
	audit_simple(c, op_name(SSH_AGENT_OP_SIGN), bot->cfg->name, result,
	    why, t0);
 out:
	if (rq != NULL)
		free(rq->jwt_detail);
	free(rq);
}

/*
 * session-bind@openssh.com: the host key the client is talking to, kept
 * for the audit lines of this connection's signatures once the host's
 * signature over the session identifier checks out.
 */
static void
ssh_session_bind(struct conn *c, const struct ssh_agent_request *req,
    const struct timespec *t0)
{
	char fp[BOTID_SSHKEY_FP_LEN], detail[128];
	int r;

	if (sshkey_fingerprint(req->key, req->key_len, fp) != 0)
		snprintf(fp, sizeof(fp), "?");
	r = sshkey_verify(req->key, req->key_len, req->signature,
	    req->signature_len, req->session_id, req->session_id_len);
	snprintf(detail, sizeof(detail), "host %s%s%s", fp,
	    req->forwarding ? " forwarding" : "",
	    r == 0 ? "" : r == BOTID_ERR_UNSUPPORTED ?
	    ": host key type not supported" : ": bad signature");
	if (r != 0) {
		reply_error(c, 0, 0, BOTID_STATUS_DENIED, NULL);
		audit_simple(c, "ssh-bind", NULL, "error", detail, t0);
		return;
	}
	snprintf(c->ssh_host, sizeof(c->ssh_host), "%s", fp);
	if (ssh_agent_put_status(&c->out, SSH_AGENT_SUCCESS) != 0)
		c->closing = 1;
	audit_simple(c, "ssh-bind", NULL, "ok", detail, t0);
}

/* One complete ssh-agent frame body from c (ssh_socket). */
static void
handle_ssh_frame(struct server *s, struct conn *c, const uint8_t *body,
    size_t len)
{
	struct ssh_agent_request req;
	struct timespec t0;
	char detail[64];
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The first request answers first_request_timeout. */
	c->hello = 1;
	if ((r = ssh_agent_decode(body, len, &req)) != 0) {
		reply_error(c, 0, 0, BOTID_STATUS_MALFORMED, NULL);
		snprintf(detail, sizeof(detail), "malformed %s",
		    ssh_agent_type_name(req.type));
		audit_simple(c, "ssh-request", NULL, "error", detail, &t0);
		return;
	}
	switch (req.kind) {
	case SSH_REQ_IDENTITIES:
		ssh_identities(s, c, &t0);
		break;
	case SSH_REQ_SIGN:
		ssh_sign(s, c, &req, &t0);
		break;
	case SSH_REQ_SESSION_BIND:
		ssh_session_bind(c, &req, &t0);
		break;
	default:
		/* Keys come only from the configuration. */
		reply_error(c, 0, 0, BOTID_STATUS_DENIED, NULL);
		snprintf(detail, sizeof(detail), "%s not served",
		    ssh_agent_type_name(req.type));
		audit_simple(c, "ssh-request", NULL, "denied", detail, &t0);
		break;
	}
}

/* Decodes every complete frame in c's input. */
static void
conn_process_input(struct server *s, struct conn *c)
{
	size_t body_len;
	int r;

	while (!c->closing && c->fd != -1) {
		r = wire_frame_peek(&c->in, BOTID_MAX_FRAME, &body_len);
		if (r == BOTID_ERR_INCOMPLETE)
			break;
		if (r != 0) {
			/* A bad length loses framing: say why, then hang up. */
			if (!c->ssh)
				reply_error(c, 0, 0, r == BOTID_ERR_TOO_LARGE ?
			    BOTID_STATUS_TOO_LARGE : BOTID_STATUS_MALFORMED,
			    r == BOTID_ERR_TOO_LARGE ? "frame too large" :
			    "malformed frame");
			c->closing = 1;
			break;
		}
		(void)buf_consume(&c->in, 4);
		if (c->ssh)
			handle_ssh_frame(s, c, buf_ptr(&c->in), body_len);
		else
			handle_frame(s, c, buf_ptr(&c->in), body_len);
		(void)buf_consume(&c->in, body_len);
		/* The clock runs per frame, from its first byte. */
		c->frame_started = 0;
	}
	if (buf_len(&c->in) == 0)
		buf_reset(&c->in);	/* idle connections hold no buffer */
	else if (c->frame_started == 0)
		c->frame_started = time(NULL);
}

/*
 * Refuses what c's current sender sent and hangs up: the frame cannot be
 * judged by one process. The audit line names the sender of the last read.
 */
static void
conn_refuse_sender(struct conn *c, const struct botid_cred *cred,
    const char *why)
{
	struct timespec t0;
	char who[256];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	c->peer.uid = cred->uid;
	c->peer.gid = cred->gid;
	c->peer.pid = cred->pid;
	c->peer.ngroups = 0;
	c->peer.have_exe = 0;
	c->peer.have_unit = 0;
	peer_sender_clear(&c->sender);
	peer_describe(&c->peer, who, sizeof(who));
	log_warn("connection closed: %s (%s)", why, who);
	reply_error(c, 0, 0, BOTID_STATUS_DENIED, "denied");
	audit_simple(c, "frame", NULL, "denied", why, &t0);
	buf_reset(&c->in);
	c->closing = 1;
}

/*
 * Takes the sender of the bytes just read (held: bytes already buffered,
 * all part of one unfinished frame) and makes c->peer that sender's
 * identity. Returns 0, or -1 after refusing the connection.
 */
static int
conn_take_sender(struct conn *c, struct botid_cred *cred, size_t held)
{
	int changed, r;

	if (!cred->have) {
		conn_refuse_sender(c, cred, "no sender credentials");
		peer_cred_clear(cred);
		return -1;
	}
	if (held > 0 && !peer_cred_same(&c->in_cred, cred)) {
		conn_refuse_sender(c, cred, "one frame from two senders");
		peer_cred_clear(cred);
		return -1;
	}
	peer_cred_clear(&c->in_cred);
	c->in_cred = *cred;
	cred->have = 0;
	cred->pidfd = -1;
	/*
	 * Replies and audit lines of requests in flight use c->peer: another
	 * sender must wait for them, which a client sharing its connection
	 * between processes has no reason to do.
	 */
	r = peer_sender_identify(&c->sender, &c->in_cred, c->inflight == 0,
	    &c->peer, &changed);
	if (r == BOTID_ERR_BUSY) {
		conn_refuse_sender(c, &c->in_cred,
		    "sender changed with requests in flight");
		return -1;
	}
	if (r != 0) {
		conn_refuse_sender(c, &c->in_cred, botid_strerror(r));
		return -1;
	}
	/* The same process, but it exec'd another program mid-frame. */
	if (held > 0 && changed) {
		conn_refuse_sender(c, &c->in_cred,
		    "one frame from two programs");
		return -1;
	}
	return 0;
}

/*
 * Reads and handles what c sent, one read at a time: the kernel ends a
 * read where the sender changes, and every frame is judged by the process
 * that wrote it, not by the one that connected.
 */
static void
conn_readable(struct server *s, struct conn *c)
{
	struct botid_cred cred;
	uint8_t *p;
	size_t want, got, held;
	int r;

	if (!c->ident_ready) {
		peer_sender_init(&c->sender);
		memset(&c->in_cred, 0, sizeof(c->in_cred));
		c->in_cred.pidfd = -1;
		c->ident_ready = 1;
	}
	for (;;) {
		buf_compact(&c->in);
		held = buf_len(&c->in);
		want = c->in.max - held;
		if (want > READ_CHUNK)
			want = READ_CHUNK;
		if (want == 0)
			break;
		if ((r = buf_reserve(&c->in, want, &p)) != 0) {
			conn_close(s, c);
			return;
		}
		r = peer_recv(c->fd, p, want, &got, &cred);
		(void)buf_unreserve(&c->in, want - got);
		if (r == BOTID_ERR_INCOMPLETE)
			break;
		if (r != 0 || got == 0) {
			peer_cred_clear(&cred);
			conn_close(s, c);	/* EOF or error */
			return;
		}
		c->last_active = time(NULL);
		if (conn_take_sender(c, &cred, held) != 0)
			break;
		conn_process_input(s, c);
		/* Only an unfinished frame may need its sender again. */
		if (buf_len(&c->in) == 0)
			peer_cred_clear(&c->in_cred);
		if (c->closing || c->fd == -1 || got < want)
			break;
	}
	if (c->fd != -1)
		(void)conn_flush(s, c);
}

/*
 * max_connections, but no more than the descriptor limit leaves room for
 * (BOTID_AGENT_FDS_PER_CONN each, after BOTID_AGENT_FD_RESERVE): past it
 * accept() would fail for everyone, and eviction could not make room for a
 * newcomer of another uid. Logged when it changes.
 */
static void
conn_cap_update(struct server *s, const struct botid_agent_config *cfg)
{
	struct rlimit rl;
	unsigned cap = cfg->max_connections;
	rlim_t fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		fit = rl.rlim_cur <= BOTID_AGENT_FD_RESERVE ? 0 :
		    (rl.rlim_cur - BOTID_AGENT_FD_RESERVE) /
		    BOTID_AGENT_FDS_PER_CONN;
		if (fit < 1)
			fit = 1;
		if (fit < cap)
			cap = (unsigned)fit;
	}
	if (cap == s->conn_cap)
		return;
	s->conn_cap = cap;
	if (cap < cfg->max_connections)
		log_warn("max_connections %u capped to %u: the descriptor "
		    "limit is %llu (%u per connection, %u kept for the rest; "
		    "raise LimitNOFILE)", cfg->max_connections, cap,
		    (unsigned long long)rl.rlim_cur, BOTID_AGENT_FDS_PER_CONN,
		    BOTID_AGENT_FD_RESERVE);
}

/*
 * The agent is full and uid wants in: closes the oldest idle connection of
 * the uid holding the most, if that is another uid holding more. Returns
 * whether one was closed.
 */
static int
evict_for(struct server *s, uid_t uid)
{
	struct uid_count *top = NULL;
	struct conn *c, *victim = NULL;
	size_t i;

	for (i = 0; i < s->nuids; i++)
		if (top == NULL || s->uids[i].n > top->n)
			top = &s->uids[i];
	if (top == NULL || top->uid == uid ||
	    top->n <= uid_connections(s, uid) + 1)
		return 0;
	/* Idle: nothing in flight, nothing to send, no frame begun. */
	for (c = s->conns; c != NULL; c = c->next)
		if (c->fd != -1 && c->owner == top->uid &&
		    c->inflight == 0 && buf_len(&c->out) == 0 &&
		    buf_len(&c->in) == 0 &&
		    (victim == NULL || c->last_active < victim->last_active))
			victim = c;
	if (victim == NULL)
		return 0;
	log_limited(&s->log_evict, "connection of uid %lu closed: the agent "
	    "is full and that uid holds the most (%u)",
	    (unsigned long)top->uid, top->n);
	conn_close(s, victim);
	return 1;
}

/*
 * Accepts every waiting connection that its uid's share and the agent's
 * size allow. Refusals are logged at most once a second: a flood of them
 * is one line with a count, not one each.
 */
static void
accept_all(struct server *s, const struct botid_agent_config *cfg,
    int listen_fd, int ssh)
{
	struct epoll_event ev;
	struct ucred cred;
	socklen_t len;
	struct conn *c;
	int fd, n;

	for (n = 0; n < ACCEPT_BATCH; n++) {
		fd = accept4(listen_fd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_limited(&s->log_accept, "accept: %s",
				    strerror(errno));
			return;
		}
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
		    &len) == -1 || len != sizeof(cred)) {
			log_limited(&s->log_cred, "connection refused: no peer "
			    "credentials");
			close(fd);
			continue;
		}
		if (uid_connections(s, cred.uid) >=
		    cfg->max_connections_per_uid) {
			log_limited(&s->log_uid, "connection of uid %lu "
			    "refused: max_connections_per_uid %u reached",
			    (unsigned long)cred.uid,
			    cfg->max_connections_per_uid);
			close(fd);
			continue;
		}
		if (s->nconns >= s->conn_cap &&
		    !evict_for(s, cred.uid)) {
			log_limited(&s->log_full, "connection refused: "
			    "limit of %u reached", s->conn_cap);
			close(fd);
			continue;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		if (peer_identify(fd, &c->peer) != 0) {
			log_limited(&s->log_cred, "connection refused: no peer "
			    "credentials");
			free(c);
			close(fd);
			continue;
		}
		c->owner = cred.uid;
		if (uid_add(s, c->owner) != 0) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->ssh = ssh;
		buf_init(&c->in, 4 + BOTID_MAX_FRAME);
		buf_init(&c->out, BOTID_MAX_OUTBUF + 4 + BOTID_MAX_FRAME);
		c->last_active = c->accepted = time(NULL);
		c->events = EPOLLIN;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			log_err("epoll_ctl: %s", strerror(errno));
			uid_remove(s, c->owner);
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
}

/*
 * Turns a finished signing job into its audit entry and then its reply:
 * a signature or token leaves only once its entry is written (doc/audit.md);
 * while the log cannot be written the client hears AUDIT_UNAVAILABLE and
 * the signature is dropped. flush: send the reply now (from the loop; the
 * read handler sends its own at the end).
 */
static void
finish_job(struct server *s, struct botid_job *job, int flush)
{
	struct request *rq;
	struct conn *c;
	struct botid_audit_event ev;
	uint8_t *der = NULL;
	const uint8_t *sig = job->sig;
	size_t sig_len = job->sig_len;
	int r = job->result, audited;

	rq = job->owner;
	c = rq->conn;
	/* The pool's answer to a job that waited out max_queue_wait. */
	if (r == BOTID_ERR_BUSY && job->retry_ms != 0) {
		request_busy(s, rq, job->retry_ms, "waited max_queue_wait "
		    "without reaching the device", flush);
		return;
	}
	if (r == 0 && rq->job.params.scheme == BOTID_SCHEME_ECDSA &&
	    rq->format == BOTID_FORMAT_DER) {
		if ((r = sig_ecdsa_raw_to_der(job->sig, job->sig_len,
		    &der, &sig_len)) == 0)
			sig = der;
	}
	memset(&ev, 0, sizeof(ev));
	ev.op = op_name(rq->op);
	ev.bot = rq->bot->cfg->name;
	ev.peer = &c->peer;
	ev.hash = hash_name(rq->hash);
	ev.digest = job->digest;
	ev.digest_len = job->digest_len;
	ev.data_sha256 = rq->has_data_sha ? rq->data_sha256 : NULL;
	ev.result = r == 0 ? "ok" : "error";
	ev.detail = r == 0 ? rq->jwt_detail : botid_strerror(r);
	ev.micros = micros_since(&rq->t0);
	audited = audit_write(&ev);
	if (c->fd != -1) {
		if (r == 0 && audited != 0)
			reply_error(c, rq->op, rq->id,
			    BOTID_STATUS_AUDIT_UNAVAILABLE, AUDIT_REFUSAL);
		else if (r == 0) {
			if (reply_signature(c, rq, sig, sig_len) != 0)
				c->closing = 1;
		} else
			reply_error(c, rq->op, rq->id,
			    wire_err_to_status(r), botid_strerror(r));
	}
	if (r == 0 && audited == 0)
		bot_used(rq->bot);
	else if (r != 0)
		log_warn("bot %s: %s failed: %s", rq->bot->cfg->name,
		    ev.op, botid_strerror(r));
	if (r == BOTID_ERR_UNAVAILABLE && rq->reg == s->reg &&
	    rq->bot->cfg->backend == BOTID_BACKEND_PKCS11) {
		s->down_reg = rq->reg;
		s->down_bot = (size_t)(rq->bot - rq->reg->bots) + 1;
	}
	OPENSSL_free(der);
	free(job->sig);
	request_done(s, c, rq, flush);
}

/* Turns finished jobs into replies and audit entries. */
static void
finish_jobs(struct server *s)
{
	struct botid_job *job, *next;
	int created = 0;

	for (job = done_take_all(&s->done); job != NULL; job = next) {
		next = job->next;
		/* A key made in the background: its bot is served now. */
		if (job->kind == BOTID_JOB_CALL) {
			created |= registry_creation_done(s->reg, job);
			continue;
		}
		s->queued--;
		/* The owner is an inventory or a request, by the job's kind. */
		if (job->kind == BOTID_JOB_ATTRIBUTES)
			inventory_job_done(s, job->owner);
		else
			finish_job(s, job, 1);
	}
	/* Its certificate is asked for at once. */
	if (created && !s->stopping)
		renew_tick(s->renew, s->reg);
	deprovision_resume(s);
}

/*
 * Jobs past their max_queue_wait deadline leave their queues; each comes
 * back through the done list (finish_jobs) and is answered BUSY.
 */
static void
expire_jobs(struct server *s)
{
	uint64_t now;

	if (s->expire_at == 0 || (now = pool_now_ns()) < s->expire_at)
		return;
	registry_expire(now, &s->expire_at);
}

/* How long epoll may sleep: a second, or until the next deadline. */
static int
loop_timeout(const struct server *s)
{
	uint64_t now, ms;

	if (s->expire_at == 0)
		return 1000;
	if ((now = pool_now_ns()) >= s->expire_at)
		return 0;
	ms = (s->expire_at - now + 999999u) / 1000000u;
	return ms < 1000 ? (int)ms : 1000;
}

/*
 * Drops idle connections, ones that stall half-way through a frame, and
 * ones that never said HELLO within first_request_timeout (a connection
 * that has not asked for anything holds a slot for nothing).
 */
static void
sweep(struct server *s, const struct botid_agent_config *cfg)
{
	struct conn *c, *next;
	time_t now = time(NULL);

	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->fd == -1)
			continue;
		if (c->frame_started != 0 &&
		    now - c->frame_started > (time_t)BOTID_FRAME_TIMEOUT_S) {
			log_limited(&s->log_frame, "dropping a connection: "
			    "frame not completed in %u s",
			    BOTID_FRAME_TIMEOUT_S);
			conn_close(s, c);
		} else if (!c->hello && c->inflight == 0 &&
		    now - c->accepted > (time_t)cfg->first_request_timeout) {
			log_limited(&s->log_hello, "dropping a connection of "
			    "uid %lu: no HELLO within first_request_timeout "
			    "%u s",
			    (unsigned long)c->owner,
			    cfg->first_request_timeout);
			conn_close(s, c);
		} else if (c->inflight == 0 && buf_len(&c->out) == 0 &&
		    now - c->last_active > (time_t)cfg->idle_timeout)
			conn_close(s, c);
	}
}

/*
 * Called whenever s->reg changes: while bots wait for a TPM or token that
 * was down, the loop tries it again on its own (retry_backends). Said
 * once when bots start waiting, not at every try.
 */
static void
retry_schedule(struct server *s)
{
	size_t n = registry_unavailable_count(s->reg);

	if (n == 0) {
		s->retry_at = 0;
		return;
	}
	if (s->retry_at != 0)
		return;
	s->retry_delay = BACKEND_RETRY_FIRST_S;
	s->retry_at = time(NULL) + s->retry_delay;
	log_warn("%zu bot%s wait%s for a TPM or token that is unavailable: "
	    "trying it again on its own, every %u s at first, then less often "
	    "(every %u s at most)", n, n == 1 ? "" : "s", n == 1 ? "s" : "",
	    BACKEND_RETRY_FIRST_S, BACKEND_RETRY_MAX_S);
}

/*
 * When due, opens again the backends of the bots that wait for one, and
 * serves them with a registry of the same configuration as soon as one
 * opens; bots served already keep their keys. Failed tries log at debug
 * level only (registry_retry): each bot that comes back is one line, and
 * the end of the wait another.
 */
static void
retry_backends(struct server *s)
{
	struct botid_registry *reg = NULL;
	time_t now = time(NULL);
	size_t i, left;
	int r;

	if (s->retry_at == 0 || now < s->retry_at || s->stopping)
		return;
	r = registry_retry(s->reg, &s->done, &reg);
	if (r == 0) {
		/* The same configuration: the same bots at the same index. */
		/*
		 * A bot whose key did not exist yet has it made in the
		 * background now: served once registry_creation_done() says.
		 */
		for (i = 0; i < reg->nbots && i < s->reg->nbots; i++)
			if (s->reg->bots[i].key == NULL &&
			    s->reg->bots[i].creation == NULL &&
			    (reg->bots[i].key != NULL ||
			    reg->bots[i].creation != NULL))
				log_info("bot %s: its %s is available again: "
				    "%s", reg->bots[i].cfg->name,
				    reg->bots[i].cfg->backend ==
				    BOTID_BACKEND_TPM ? "TPM" : "token",
				    reg->bots[i].key != NULL ? "served" :
				    "its key is being made");
		registry_unref(s->reg);
		s->reg = reg;
		renew_tick(s->renew, s->reg);
	} else if (r != BOTID_ERR_UNAVAILABLE)
		log_err("retrying unavailable backends: %s", botid_strerror(r));
	if ((left = registry_unavailable_count(s->reg)) == 0) {
		log_info("every bot's TPM or token is available");
		s->retry_at = 0;
		return;
	}
	if (s->retry_delay < BACKEND_RETRY_MAX_S / 2)
		s->retry_delay *= 2;
	else
		s->retry_delay = BACKEND_RETRY_MAX_S;
	s->retry_at = time(NULL) + s->retry_delay;
	log_debug("%zu bots still wait for their TPM or token: next try in "
	    "%u s", left, s->retry_delay);
}

/*
 * A token that answered UNAVAILABLE (removed, its storage gone, its
 * device failing) may need to be opened anew to come back: a module keeps
 * a token it lost invalid until it is initialised again (SoftHSM2 does).
 * Its bots are served by none of it until then: the registry drops it,
 * it closes when requests in flight on it end, and retry_backends() opens
 * it again. Called from the loop, never inside a request's handling.
 */
static void
token_drop(struct server *s)
{
	struct botid_registry *reg = NULL;
	struct botid_bot *bot;
	size_t i;
	int r;

	if (s->down_bot == 0)
		return;
	i = s->down_bot - 1;
	s->down_bot = 0;
	if (s->down_reg != s->reg || i >= s->reg->nbots ||
	    (bot = &s->reg->bots[i])->key == NULL ||
	    bot->cfg->backend != BOTID_BACKEND_PKCS11 || s->stopping)
		return;
	if ((r = registry_drop_backend(s->reg, registry_backend(bot),
	    &reg)) != 0) {
		log_err("bot %s: its token is unavailable and cannot be "
		    "dropped: %s", bot->cfg->name, botid_strerror(r));
		return;
	}
	log_warn("bot %s: its token is unavailable: the bots on it wait "
	    "until the agent opens it anew", bot->cfg->name);
	registry_unref(s->reg);
	s->reg = reg;
	renew_tick(s->renew, s->reg);
	retry_schedule(s);
}

static void
reload(struct server *s)
{
	struct botid_agent_config *cfg = NULL;
	struct botid_registry *reg = NULL;
	char err[512];
	int r;

	log_info("reloading %s", s->config_path);
	if ((r = config_load(s->config_path, &cfg, err, sizeof(err))) != 0) {
		log_err("reload refused, keeping the running configuration: %s",
		    err);
		return;
	}
	if (strcmp(cfg->socket_path, s->reg->cfg->socket_path) != 0)
		log_warn("socket path changes take effect at restart");
	if ((cfg->user == NULL) != (s->reg->cfg->user == NULL) ||
	    (cfg->user != NULL && cfg->user_uid != s->reg->cfg->user_uid))
		log_warn("user changes take effect at restart");
	else if (cfg->user != NULL && privdrop_needs_ptrace(cfg) &&
	    !privdrop_needs_ptrace(s->reg->cfg))
		log_warn("exe: rules need CAP_SYS_PTRACE, kept only from a "
		    "start with such a rule: restart for them to match "
		    "other users' processes");
	if ((r = registry_build(cfg, s->reg, &s->done, &reg)) != 0) {
		log_err("reload failed: %s", botid_strerror(r));
		return;	/* registry_build freed nothing it did not own */
	}
	audit_configure(reg->cfg);
	if (audit_reopen(reg->cfg->audit_log, reg) != 0)
		log_err("reload: audit log not reopened");
	registry_unref(s->reg);
	s->reg = reg;
	conn_cap_update(s, s->reg->cfg);
	renew_tick(s->renew, s->reg);
	retry_schedule(s);
}

/*
 * A rotation made a new key current: a registry that serves it. Requests
 * in flight keep the old registry, and the old key, until they finish.
 */
static void
rotation_switch(struct server *s)
{
	struct botid_registry *reg;
	int r;

	if ((r = registry_rebuild(s->reg, &s->done, &reg)) != 0) {
		log_err("rotation: cannot serve the new key: %s",
		    botid_strerror(r));
		return;
	}
	registry_unref(s->reg);
	s->reg = reg;
	renew_tick(s->renew, s->reg);
	retry_schedule(s);
}

static int
signals_setup(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void
handle_signals(struct server *s)
{
	struct signalfd_siginfo si;

	while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload(s);
		else if (!s->stopping) {
			log_info("signal %u: draining and exiting", si.ssi_signo);
			s->stopping = 1;
		}
	}
}

static int
epoll_add(int epfd, int fd, void *tag)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = tag;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Stops accepting and reading; the loop ends once replies are out. */
static void
begin_drain(struct server *s)
{
	struct conn *c;

	registry_creations_cancel();
	if (s->listen_fd != -1) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	if (s->ssh_fd != -1) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->ssh_fd, NULL);
		close(s->ssh_fd);
		s->ssh_fd = -1;
	}
	for (c = s->conns; c != NULL; c = c->next)
		if (c->fd != -1)
			conn_update_events(s, c);
}

static int
drained(struct server *s)
{
	struct conn *c;

	for (c = s->conns; c != NULL; c = c->next)
		if (c->inflight > 0 || (c->fd != -1 && buf_len(&c->out) > 0))
			return 0;
	return 1;
}

int
server_run(const char *config_path, struct botid_agent_config *cfg,
    int listen_fd, int ssh_fd)
{
	static char ssh_tag, listen_tag, signal_tag, done_tag, renew_tag, audit_tag;
	struct epoll_event events[MAX_EVENTS];
	struct server s;
	time_t last_sweep = time(NULL), drain_deadline = 0;
	int i, n, r = BOTID_ERR_IO;

	memset(&s, 0, sizeof(s));
	s.config_path = config_path;
	s.listen_fd = listen_fd;
	s.ssh_fd = ssh_fd;
	/* Bytes sent before accept(2) carry credentials too. */
	(void)peer_mechanism_init();
	if (peer_socket_setup(listen_fd) != 0 ||
	    (ssh_fd != -1 && peer_socket_setup(ssh_fd) != 0)) {
		log_err("caller identity: SO_PASSCRED: %s", strerror(errno));
		config_free(cfg);
		return BOTID_ERR_IO;
	}
	log_info("caller identity: %s", peer_mechanism_name());
	s.epfd = s.sig_fd = -1;
	if ((r = done_init(&s.done)) != 0) {
		config_free(cfg);
		return r;
	}
	r = BOTID_ERR_IO;
	if ((s.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (s.sig_fd = signals_setup()) == -1 ||
	    epoll_add(s.epfd, listen_fd, &listen_tag) == -1 ||
	    epoll_add(s.epfd, s.sig_fd, &signal_tag) == -1 ||
	    epoll_add(s.epfd, s.done.efd, &done_tag) == -1 ||
	    (ssh_fd != -1 && epoll_add(s.epfd, ssh_fd, &ssh_tag) == -1)) {
		log_err("event loop setup: %s", strerror(errno));
		config_free(cfg);
		goto out;
	}
	/*
	 * The socket is bound and the audit log open: root is not needed for
	 * anything else. Dropping it before any thread starts and any key is
	 * made means every file the TPM and token libraries create is the
	 * agent user's, as it is under systemd's User=.
	 */
	if ((r = privdrop_apply(cfg)) != 0) {
		config_free(cfg);
		goto out;
	}
	/* Before any thread: libcurl's global setup is not thread-safe. */
	if ((r = renew_open(cfg, &s.renew)) == BOTID_ERR_NOT_FOUND) {
		for (i = 0; i < (int)cfg->nbots; i++)
			if (cfg->bots[i].rotate_every != 0)
				break;
		if (i < (int)cfg->nbots)
			log_warn("bot %s: rotate_every needs a provisioned host "
			    "(a new key needs a certificate): not rotating",
			    cfg->bots[i].name);
	} else if (r != 0)
		log_err("certificates disabled: %s", botid_strerror(r));
	if (s.renew != NULL &&
	    epoll_add(s.epfd, renew_fd(s.renew), &renew_tag) == -1) {
		log_err("event loop setup: %s", strerror(errno));
		config_free(cfg);
		r = BOTID_ERR_IO;
		goto out;
	}
	if (audit_signer_start() != 0 ||
	    epoll_add(s.epfd, audit_signer_fd(), &audit_tag) == -1) {
		log_err("event loop setup: audit checkpoints");
		config_free(cfg);
		r = BOTID_ERR_INTERNAL;
		goto out;
	}
	if ((r = registry_build(cfg, NULL, &s.done, &s.reg)) != 0)
		goto out;
	renew_tick(s.renew, s.reg);
	retry_schedule(&s);
	audit_tick(s.reg);	/* a break checkpoint before any entry */
	conn_cap_update(&s, s.reg->cfg);
	log_info("ready: %u connections max", s.conn_cap);
	for (;;) {
		if (s.stopping) {
			if (drain_deadline == 0) {
				begin_drain(&s);
				drain_deadline = time(NULL) + DRAIN_SECONDS;
			}
			if (drained(&s) || time(NULL) > drain_deadline)
				break;
		}
		/*
		 * Right after sending a reply, poll for the client's next
		 * request for LOOP_SPIN_US before sleeping: a sequential client
		 * sends it within tens of microseconds, and waking from
		 * epoll_wait costs more than that on a virtual machine. Idle,
		 * the loop sleeps; so it does while pools hold jobs, whose
		 * replies wake it through the done eventfd, for polling then
		 * takes a core from the workers, and while the spin gate says
		 * the CPU is contended (lib/await.h): beside other busy tasks
		 * the polling loop would wait behind them for its turn.
		 */
		if (s.spinning)
			spin_round(&s, 0);
		n = epoll_wait(s.epfd, events, MAX_EVENTS, s.spinning ? 0 :
		    loop_timeout(&s));
		if (s.spinning) {
			if (n == 0)
				continue;
			if (n > 0)
				spin_round(&s, 1);
			s.spinning = 0;
		}
		/* One ready connection: its request may be signed right here. */
		s.inline_budget = n == 1;
		if (n == -1 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			void *tag = events[i].data.ptr;
			struct conn *c = tag;

			if (tag == &listen_tag) {
				if (!s.stopping)
					accept_all(&s, s.reg->cfg, s.listen_fd,
					    0);
			} else if (tag == &ssh_tag) {
				if (!s.stopping)
					accept_all(&s, s.reg->cfg, s.ssh_fd, 1);
			} else if (tag == &signal_tag)
				handle_signals(&s);
			else if (tag == &done_tag)
				finish_jobs(&s);
			else if (tag == &renew_tag) {
				if (renew_finish(s.renew))
					rotation_switch(&s);
			}
			else if (tag == &audit_tag)
				audit_finish();
			else if (c->fd == -1)
				continue;
			else if (events[i].events & (EPOLLERR | EPOLLHUP) &&
			    !(events[i].events & EPOLLIN))
				conn_close(&s, c);
			else {
				if (events[i].events & EPOLLOUT &&
				    conn_flush(&s, c) == -1)
					continue;
				if (events[i].events & EPOLLIN)
					conn_readable(&s, c);
			}
		}
		expire_jobs(&s);
		graveyard_empty(&s);
		token_drop(&s);
		audit_flush_due();
		if (!s.stopping)
			audit_tick(s.reg);
		if (time(NULL) != last_sweep) {
			last_sweep = time(NULL);
			sweep(&s, s.reg->cfg);
			registry_creations_retry();
			retry_backends(&s);
			if (!s.stopping)
				renew_tick(s.renew, s.reg);
		}
	}
	r = 0;
 out:
	registry_creations_cancel();
	/* Workers must be idle before connections and the registry go. */
	while (s.reg != NULL && registry_pending() > 0)
		usleep(10000);
	if (s.done.lock != NULL)
		finish_jobs(&s);
	registry_creations_drop();
	while (s.conns != NULL) {
		struct conn *c = s.conns;

		c->inflight = 0;
		conn_close(&s, c);
	}
	graveyard_empty(&s);
	/* The last entries are in: seal them, with the TPM still open. */
	audit_signer_stop();
	audit_flush();
	audit_seal(s.reg, "shutdown");
	/* Drops the registry references its jobs hold. */
	renew_close(s.renew);
	registry_unref(s.reg);
	if (s.listen_fd != -1)
		close(s.listen_fd);
	if (s.ssh_fd != -1)
		close(s.ssh_fd);
	if (s.sig_fd != -1)
		close(s.sig_fd);
	if (s.epfd != -1)
		close(s.epfd);
	done_free(&s.done);
	free(s.uids);
	ssh_cache_free(&s);
	return r;
}
