/*
 * botid-bench: measures signing through the botid agent (C clients, each
 * with its own connection, optionally pipelining) and, in the same run,
 * the same key signing in-process on the same backend and through the
 * peers botid is compared with. Prints ops/s, latency p50/p99/max and
 * agent/raw ratios as a table or as JSON (botid-bench(1)).
 */
#include "botid-config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "lib/await.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/wire.h"
#include "tools/bench.h"

#define BENCH_MAX_CLIENTS	4096u
#define BENCH_MAX_REQUESTS	10000000ul
#define BENCH_MAX_IDLE		60000u
#define BENCH_MAX_SIGNERS	8u
#define BENCH_MAX_RUNS		101u
#define BENCH_CONNECT_WAIT_MS	60000u	/* --agent-cmd: socket must answer */
#define BENCH_READ_CHUNK	(16u * 1024u)
#define BENCH_REPLY_TIMEOUT_MS	60000	/* an agent that stops answering */
/* Past the agent's BOTID_MAX_INFLIGHT, to see its BUSY replies counted. */
#define BENCH_MAX_DEPTH		(2u * BOTID_MAX_INFLIGHT)
#define BENCH_MAX_BUSY_WAIT_MS	10000u	/* --busy-wait */
#define BENCH_FIRST_POLL_MS	10u	/* --first-signature: retry period */
#define BENCH_MAX_FIRST_WAIT_S	3600u	/* --first-wait */

/* Exit codes, documented in botid-bench(1). */
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

struct bench_opts {
	const char	 *socket;
	char		**bots;
	size_t		  nbots;
	unsigned	  clients;
	unsigned long	  requests;	/* per client */
	unsigned	  depth;	/* requests in flight per connection */
	unsigned	  runs;
	unsigned	  idle;		/* idle connections held meanwhile */
	unsigned	  raw_clients;
	int		  json;
	int		  hello;	/* HELLO instead of SIGN_DIGEST */
	int		  bind;		/* --pick bind: slot g, bot g % nbots */
	unsigned	  busy_wait_ms;	/* pause after a BUSY reply */
	int		  busy_hint;	/* pause as RETRY_AFTER says */
	const char	 *second_bot;	/* --second-bot: a concurrent group */
	unsigned	  second_clients;
	unsigned long	  second_requests;
	int		  first_sign;	/* --first-signature */
	unsigned	  first_wait_s;
	const char	 *agent_cmd;
	struct {
		const struct bench_signer *signer;
		const char	*spec;
		char		 name[32];
		int		 baseline;	/* 1: baseline, 0: peer */
	} signer[BENCH_MAX_SIGNERS];
	size_t		  nsigners;
};

/* One measured phase: the median run of opts.runs. */
struct bench_result {
	char		 name[32];
	unsigned	 clients;
	unsigned	 depth;
	unsigned long	 ops;
	unsigned long	 failed;
	double		 seconds;
	double		 rate;
	double		 p50_us, p99_us, max_us;
	double		 rates[BENCH_MAX_RUNS];	/* every run, in run order */
	unsigned	 nrates;
	int		 baseline;
	int		 second;	/* 1: the --second-bot group */
	/* BUSY replies: neither signatures nor failures. */
	unsigned long	 busy;
	double		 busy_p50_us, busy_p99_us, busy_max_us;
	/* The RETRY_AFTER hints those replies carried, in ms. */
	unsigned long	 hinted;
	double		 hint_min_ms, hint_p50_ms, hint_max_ms;
	/* Per bot, over the window in which every client of the group ran. */
	size_t		 nbots;
	double		 window_s;
	double		 bot_min_rate, bot_max_rate;
	/* Second group: it ended before the first main client did. */
	int		 under_load;
};

struct bench_thread {
	const struct bench_opts		*o;
	const struct bench_signer	*signer;	/* NULL: the agent */
	const char			*spec;
	unsigned			 idx;
	pthread_t			 tid;
	pthread_barrier_t		*start;
	char * const			*bots;		/* its group's bots */
	size_t				 nbots;
	unsigned long			 nreq;		/* requests to send */
	uint64_t			*lat;		/* nreq entries */
	uint64_t			*done_at;	/* when lat[i] ended */
	uint32_t			*done_bot;	/* and for which bot */
	unsigned long			 nlat;
	uint64_t			*busy_lat;	/* nreq entries */
	unsigned long			 nbusy;
	uint64_t			*hint_ms;	/* nreq entries */
	unsigned long			 nhint;
	uint64_t			 finished;	/* its last reply */
	unsigned long			 failed;
	int				 r;
};

static volatile sig_atomic_t bench_timed_out;

uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: botid-bench -s SOCKET (-b BOT | --bots B1,B2,...) "
	    "[-c CLIENTS] [-n REQUESTS]\n"
	    "           [--pipeline DEPTH] [--runs R] [--idle N] [--json]\n"
	    "           [--baseline pkcs11:MODULE,TOKEN,PIN-FILE,KEY-LABEL]\n"
	    "           [--baseline tpm:TCTI,BLOB-FILE] [--raw-clients K]\n"
	    "           [--peer p11-kit:CLIENT-MODULE,TOKEN,PIN-FILE,KEY-LABEL]\n"
	    "           [--peer ssh-agent:SOCKET] [--peer botid-ssh:SOCKET]\n"
	    "           [--agent-cmd COMMAND] [--pick random|bind]\n"
	    "           [--second-bot BOT [--second-clients K]"
	    " [--second-requests N]]\n"
	    "           [--busy-wait MS|hint[:MS]] [--first-signature"
	    " [--first-wait SECONDS]]\n"
	    "  -s, --socket PATH     the agent's socket\n"
	    "  -b, --bot BOT         sign with this bot\n"
	    "      --bots LIST       sign with these bots, picked at random\n"
	    "  -c, --clients N       concurrent clients, one connection each "
	    "(1)\n"
	    "  -n, --requests N      sign requests per client (1000)\n"
	    "  -p, --pipeline DEPTH  requests in flight per connection (1)\n"
	    "      --runs R          repeat each phase; report the median (1)\n"
	    "      --idle N          hold N more idle connections to the agent\n"
	    "      --baseline SPEC   the same key signing in-process\n"
	    "      --peer SPEC       the same key through a peer\n"
	    "      --raw-clients K   threads for baselines and peers (1)\n"
	    "      --agent-cmd CMD   run baselines, then start CMD (the agent)"
	    " and stop it at the end\n"
	    "      --hello           send HELLO, not SIGN_DIGEST: the "
	    "transport alone\n"
	    "      --pick MODE       random: each request a random bot; "
	    "bind: request slot g\n"
	    "                        always signs with bot g mod the number"
	    " of bots\n"
	    "      --second-bot BOT  a second group of clients on BOT, "
	    "beside the first, and\n"
	    "                        alone before it (its p99 with and "
	    "without the load)\n"
	    "      --second-clients K  clients of the second group (4)\n"
	    "      --second-requests N requests per client of the second "
	    "group (-n)\n"
	    "      --busy-wait MS    a client pauses MS after a BUSY reply "
	    "(0)\n"
	    "      --busy-wait hint[:MS] pauses as the reply's RETRY_AFTER "
	    "says, MS without one\n"
	    "      --first-signature with --agent-cmd: time from the "
	    "agent's start to the\n"
	    "                        first signature of the first bot, "
	    "then stop\n"
	    "      --first-wait S    give up on the first signature after "
	    "S seconds (600)\n"
	    "      --json            one JSON object instead of the table\n");
}

static int
parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *v)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    n < min || n > max)
		return BOTID_ERR_INVALID;
	*v = n;
	return 0;
}

static int
parse_bots(struct bench_opts *o, const char *list)
{
	char *copy, *tok, *save = NULL, **v;
	int r = BOTID_ERR_INVALID;

	if ((copy = strdup(list)) == NULL)
		return BOTID_ERR_ALLOC;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (!wire_bot_name_valid(tok, strlen(tok)) ||
		    o->nbots >= BOTID_MAX_BOTS)
			goto out;
		if ((v = reallocarray(o->bots, o->nbots + 1,
		    sizeof(*v))) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		o->bots = v;
		if ((o->bots[o->nbots] = strdup(tok)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		o->nbots++;
	}
	r = o->nbots > 0 ? 0 : BOTID_ERR_INVALID;
 out:
	free(copy);
	return r;
}

static int
parse_signer(struct bench_opts *o, const char *arg, int baseline)
{
	static const struct {
		const char			*prefix;
		const struct bench_signer	*signer;
		const char			*name;
		int				 baseline;
	} kinds[] = {
		{ "pkcs11:", &bench_signer_pkcs11, "raw-pkcs11", 1 },
		{ "tpm:", &bench_signer_tpm, "raw-tpm", 1 },
		{ "p11-kit:", &bench_signer_pkcs11, "p11-kit", 0 },
		{ "ssh-agent:", &bench_signer_ssh, "ssh-agent", 0 },
		/* The agent's own ssh_socket, to set beside OpenSSH's. */
		{ "botid-ssh:", &bench_signer_ssh, "botid-ssh", 0 },
	};
	size_t i, n;

	if (o->nsigners >= BENCH_MAX_SIGNERS)
		return BOTID_ERR_TOO_LARGE;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = strlen(kinds[i].prefix);
		if (strncmp(arg, kinds[i].prefix, n) != 0 ||
		    kinds[i].baseline != baseline)
			continue;
		o->signer[o->nsigners].signer = kinds[i].signer;
		o->signer[o->nsigners].spec = arg + n;
		o->signer[o->nsigners].baseline = baseline;
		snprintf(o->signer[o->nsigners].name,
		    sizeof(o->signer[0].name), "%s", kinds[i].name);
		o->nsigners++;
		return 0;
	}
	return BOTID_ERR_INVALID;
}

/* ------------------------------------------------------------------ */
/* The agent's side: one connection per client, speaking doc/protocol.md */

static int
agent_connect(const char *path, int *fdp)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	*fdp = -1;
	if (strlen(path) >= sizeof(sun.sun_path))
		return BOTID_ERR_INVALID;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return BOTID_ERR_IO;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return BOTID_ERR_IO;
	}
	*fdp = fd;
	return 0;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return BOTID_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Reads until in holds a whole frame, then hands out its body as a view
 * (valid until the next read) and consumes it from in.
 */
static int
agent_read_frame(int fd, struct botid_await *w, struct botid_buf *in,
    struct botid_buf *body)
{
	const uint8_t *p;
	uint8_t *room;
	size_t len;
	ssize_t got;
	uint32_t flen;
	int r;

	for (;;) {
		r = wire_frame_peek(in, BOTID_MAX_FRAME, &len);
		if (r == 0)
			break;
		if (r != BOTID_ERR_INCOMPLETE)
			return BOTID_ERR_PROTOCOL;
		buf_compact(in);
		if ((r = buf_reserve(in, BENCH_READ_CHUNK, &room)) != 0 ||
		    (r = await_readable(w, fd, BENCH_REPLY_TIMEOUT_MS)) != 0) {
			(void)buf_unreserve(in, BENCH_READ_CHUNK);
			return r;
		}
		do {
			got = recv(fd, room, BENCH_READ_CHUNK, 0);
		} while (got == -1 && errno == EINTR);
		(void)buf_unreserve(in, BENCH_READ_CHUNK -
		    (got > 0 ? (size_t)got : 0));
		if (got == 0)
			return BOTID_ERR_CLOSED;
		if (got < 0)
			return BOTID_ERR_IO;
	}
	if ((r = buf_get_u32(in, &flen)) != 0 ||
	    (r = buf_get_direct(in, &p, len)) != 0)
		return r;
	buf_init_view(body, p, len);
	return 0;
}

/* One request and its reply, for HELLO, PUBKEY and the first signature. */
static int
agent_transact(int fd, struct botid_buf *in, struct botid_buf *req,
    uint8_t op, uint32_t id, uint16_t want_tag, uint8_t **val, size_t *vlen)
{
	struct botid_await w;
	struct botid_buf body;
	const uint8_t *v;
	uint32_t rid, status;
	uint16_t tag;
	uint8_t rop;
	size_t len;
	int r;

	*val = NULL;
	*vlen = 0;
	await_init(&w);
	if ((r = write_all(fd, buf_ptr(req), buf_len(req))) != 0 ||
	    (r = agent_read_frame(fd, &w, in, &body)) != 0)
		return r;
	if (wire_get_reply_header(&body, &rop, &rid, &status) != 0 ||
	    rop != (op | BOTID_OP_REPLY) || rid != id)
		return BOTID_ERR_PROTOCOL;
	if (status != BOTID_STATUS_OK)
		return wire_status_to_err(status);
	while (wire_get_field(&body, &tag, &v, &len) == 0) {
		if (tag != want_tag)
			continue;
		if ((*val = malloc(len + 1)) == NULL)
			return BOTID_ERR_ALLOC;
		memcpy(*val, v, len);
		(*val)[len] = '\0';
		*vlen = len;
		return 0;
	}
	return BOTID_ERR_PROTOCOL;
}

/* A HELLO frame with id 1. */
static int
agent_hello_frame(struct botid_buf *req)
{
	size_t mark;
	int r;

	buf_init(req, 64);
	if ((r = wire_frame_begin(req, BOTID_OP_HELLO, 1, NULL, &mark)) != 0 ||
	    (r = wire_put_u32(req, BOTID_TAG_VERSION,
	    BOTID_PROTOCOL_VERSION)) != 0 ||
	    (r = wire_frame_end(req, mark)) != 0)
		buf_reset(req);
	return r;
}

static int
agent_hello(int fd, struct botid_buf *in)
{
	struct botid_buf req;
	uint8_t *v = NULL;
	size_t vlen;
	int r;

	if ((r = agent_hello_frame(&req)) == 0)
		r = agent_transact(fd, in, &req, BOTID_OP_HELLO, 1,
		    BOTID_TAG_VERSION, &v, &vlen);
	free(v);
	buf_reset(&req);
	return r;
}

/* A SIGN_DIGEST frame for bot with id 0; the id is patched per request. */
static int
agent_sign_frame(struct botid_buf *req, const char *bot,
    const uint8_t digest[32])
{
	size_t mark;
	int r;

	buf_init(req, 4 + BOTID_MAX_FRAME);
	if ((r = wire_frame_begin(req, BOTID_OP_SIGN_DIGEST, 0, NULL,
	    &mark)) != 0 ||
	    (r = wire_put_string(req, BOTID_TAG_BOT, bot)) != 0 ||
	    (r = wire_put_u32(req, BOTID_TAG_HASH, BOTID_HASH_SHA256)) != 0 ||
	    (r = wire_put_bytes(req, BOTID_TAG_DIGEST, digest, 32)) != 0 ||
	    (r = wire_put_u32(req, BOTID_TAG_SCHEME, BOTID_SCHEME_AUTO)) != 0 ||
	    (r = wire_put_u32(req, BOTID_TAG_FORMAT, BOTID_FORMAT_DER)) != 0 ||
	    (r = wire_frame_end(req, mark)) != 0)
		buf_reset(req);
	return r;
}

/*
 * Before measuring: the first bot signs once and the signature verifies
 * with its public key, so the figures are for real signatures. Quiet, a
 * failure prints nothing (--first-signature retries).
 */
static int
agent_sign_check(const struct bench_opts *o, const char *bot, int quiet)
{
	struct botid_buf in, req;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t digest[32], *spki = NULL, *sig = NULL;
	const unsigned char *p;
	size_t spki_len, sig_len, mark;
	int fd = -1, r;

	buf_init(&in, 4 + BOTID_MAX_FRAME);
	buf_init(&req, 4 + BOTID_MAX_FRAME);
	memset(digest, 0xa5, sizeof(digest));
	if ((r = agent_connect(o->socket, &fd)) != 0) {
		if (!quiet)
			fprintf(stderr, "botid-bench: cannot connect to %s: "
			    "%s\n", o->socket, strerror(errno));
		goto out;
	}
	if ((r = agent_hello(fd, &in)) != 0 ||
	    (r = wire_frame_begin(&req, BOTID_OP_PUBKEY, 2, NULL,
	    &mark)) != 0 ||
	    (r = wire_put_string(&req, BOTID_TAG_BOT, bot)) != 0 ||
	    (r = wire_frame_end(&req, mark)) != 0 ||
	    (r = agent_transact(fd, &in, &req, BOTID_OP_PUBKEY, 2,
	    BOTID_TAG_PUBKEY, &spki, &spki_len)) != 0)
		goto fail;
	buf_reset(&req);
	if ((r = agent_sign_frame(&req, bot, digest)) != 0 ||
	    (r = buf_poke_u32(&req, 5, 3)) != 0 ||
	    (r = agent_transact(fd, &in, &req, BOTID_OP_SIGN_DIGEST, 3,
	    BOTID_TAG_SIGNATURE, &sig, &sig_len)) != 0)
		goto fail;
	r = BOTID_ERR_CRYPTO;
	p = spki;
	if ((pkey = d2i_PUBKEY(NULL, &p, (long)spki_len)) == NULL ||
	    (pctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL ||
	    EVP_PKEY_verify_init(pctx) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_verify(pctx, sig, sig_len, digest, sizeof(digest)) != 1) {
		if (!quiet)
			fprintf(stderr, "botid-bench: bot '%s': the signature "
			    "does not verify\n", bot);
		goto out;
	}
	r = 0;
	goto out;
 fail:
	if (!quiet)
		fprintf(stderr, "botid-bench: bot '%s': %s\n", bot,
		    botid_strerror(r));
 out:
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pkey);
	free(spki);
	free(sig);
	buf_reset(&in);
	buf_reset(&req);
	if (fd != -1)
		close(fd);
	return r;
}

static int
agent_check(const struct bench_opts *o)
{
	return agent_sign_check(o, o->bots[0], 0);
}

/* xorshift64: cheap, per thread, good enough to pick bots at random. */
static uint64_t
bench_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * The RETRY_AFTER of a BUSY reply's body (read past its header): 0 and
 * *ms set when there is one, 1 when there is none (the agent's refusal
 * of a 33rd request in flight carries none), BOTID_ERR_PROTOCOL when the
 * field is malformed.
 */
static int
busy_hint(struct botid_buf *body, uint32_t *ms)
{
	const uint8_t *v;
	uint16_t tag;
	size_t vlen;

	*ms = 0;
	while (wire_get_field(body, &tag, &v, &vlen) == 0)
		if (tag == BOTID_TAG_RETRY_AFTER)
			return wire_field_u32(v, vlen, ms) == 0 ? 0 :
			    BOTID_ERR_PROTOCOL;
	return 1;
}

/*
 * A client: keeps up to depth requests in flight, each for a bot picked
 * at random (or, with --pick bind, the bot of the slot it refills), and
 * times each from the write that carried it to its reply. BUSY replies
 * are timed apart: a refusal to queue is an answer, not a failure.
 */
static void
agent_client(struct bench_thread *t)
{
	const struct bench_opts *o = t->o;
	struct botid_buf in, out, body, *frames = NULL;
	struct botid_await w;
	struct timespec pause;
	uint64_t *sent_at = NULL, seed, now;
	uint32_t *sent_bot = NULL, *free_bot = NULL;
	uint8_t digest[32], rop;
	uint32_t rid, status, hint;
	unsigned long sent = 0, done = 0, pause_ms;
	size_t i, pos, nframes = 0, nfree = 0;
	int fd = -1, r, hinted;

	buf_init(&in, 4 + BOTID_MAX_FRAME + BENCH_READ_CHUNK);
	buf_init(&out, (size_t)BENCH_MAX_DEPTH * (4 + BOTID_MAX_FRAME));
	await_init(&w);
	seed = 0x9e3779b97f4a7c15ull ^ ((uint64_t)t->idx << 32) ^ t->idx;
	memset(digest, (int)(t->idx & 0xff), sizeof(digest));
	if ((frames = calloc(t->nbots, sizeof(*frames))) == NULL ||
	    (sent_at = calloc(t->nreq, sizeof(*sent_at))) == NULL ||
	    (sent_bot = calloc(t->nreq, sizeof(*sent_bot))) == NULL ||
	    (free_bot = calloc(o->depth, sizeof(*free_bot))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto ready;
	}
	for (nframes = 0; nframes < t->nbots; nframes++)
		if ((r = o->hello ? agent_hello_frame(&frames[nframes]) :
		    agent_sign_frame(&frames[nframes], t->bots[nframes],
		    digest)) != 0)
			goto ready;
	if ((r = agent_connect(o->socket, &fd)) != 0)
		goto ready;
	r = agent_hello(fd, &in);
 ready:
	pthread_barrier_wait(t->start);
	if (r != 0)
		goto out;
	while (done < t->nreq) {
		/* Fill the window, then one write carries it all. */
		buf_compact(&out);
		while (sent < t->nreq && sent - done < o->depth) {
			if (t->nbots == 1)
				i = 0;
			else if (!o->bind)
				i = bench_rand(&seed) % t->nbots;
			else if (nfree > 0)
				i = free_bot[--nfree];
			else	/* the first fill: slot (idx - 1) * depth + k */
				i = ((size_t)(t->idx - 1) * o->depth + sent) %
				    t->nbots;
			pos = buf_len(&out);
			if ((r = buf_put(&out, buf_ptr(&frames[i]),
			    buf_len(&frames[i]))) != 0 ||
			    (r = buf_poke_u32(&out, pos + 5,
			    (uint32_t)sent + 1)) != 0)
				goto out;
			sent_bot[sent] = (uint32_t)i;
			sent++;
		}
		now = bench_now_ns();
		for (i = done; i < sent; i++)
			if (sent_at[i] == 0)
				sent_at[i] = now;
		if ((r = write_all(fd, buf_ptr(&out), buf_len(&out))) != 0 ||
		    (r = buf_consume(&out, buf_len(&out))) != 0)
			goto out;
		if ((r = agent_read_frame(fd, &w, &in, &body)) != 0)
			goto out;
		now = bench_now_ns();
		if (wire_get_reply_header(&body, &rop, &rid, &status) != 0 ||
		    rop != ((o->hello ? BOTID_OP_HELLO : BOTID_OP_SIGN_DIGEST) |
		    BOTID_OP_REPLY) ||
		    rid == 0 || rid > sent || sent_at[rid - 1] == 0 ||
		    sent_at[rid - 1] == UINT64_MAX) {
			r = BOTID_ERR_PROTOCOL;
			goto out;
		}
		hinted = 0;
		if (status == BOTID_STATUS_OK) {
			t->done_at[t->nlat] = now;
			t->done_bot[t->nlat] = sent_bot[rid - 1];
			t->lat[t->nlat++] = now - sent_at[rid - 1];
		} else if (status == BOTID_STATUS_BUSY) {
			t->busy_lat[t->nbusy++] = now - sent_at[rid - 1];
			if ((r = busy_hint(&body, &hint)) < 0)
				goto out;
			if ((hinted = r == 0))
				t->hint_ms[t->nhint++] = hint;
		} else if (t->failed++ == 0)
			t->r = wire_status_to_err(status);
		t->finished = now;
		/* Marks the id answered; the window counts answers. */
		sent_at[rid - 1] = UINT64_MAX;
		if (nfree < o->depth)
			free_bot[nfree++] = sent_bot[rid - 1];
		done++;
		pause_ms = o->busy_wait_ms;
		if (status == BOTID_STATUS_BUSY && o->busy_hint && hinted)
			pause_ms = hint < BENCH_MAX_BUSY_WAIT_MS ? hint :
			    BENCH_MAX_BUSY_WAIT_MS;
		if (status == BOTID_STATUS_BUSY && pause_ms > 0) {
			pause.tv_sec = (time_t)(pause_ms / 1000);
			pause.tv_nsec = (long)(pause_ms % 1000) * 1000000;
			while (nanosleep(&pause, &pause) == -1 &&
			    errno == EINTR)
				;
		}
	}
	r = 0;
 out:
	if (r != 0)
		t->r = r;
	for (i = 0; i < nframes; i++)
		buf_reset(&frames[i]);
	free(frames);
	free(sent_at);
	free(sent_bot);
	free(free_bot);
	buf_reset(&in);
	buf_reset(&out);
	if (fd != -1)
		close(fd);
}

/* A baseline or peer thread: the signer's own loop, timed per call. */
static void
signer_client(struct bench_thread *t)
{
	void *ctx = NULL;
	uint64_t t0;
	unsigned long i;
	int r;

	r = t->signer->open(t->spec, &ctx);
	pthread_barrier_wait(t->start);
	if (r != 0) {
		t->r = r;
		return;
	}
	for (i = 0; i < t->nreq; i++) {
		t0 = bench_now_ns();
		if ((r = t->signer->sign(ctx)) == 0)
			t->lat[t->nlat++] = bench_now_ns() - t0;
		else if (t->failed++ == 0)
			t->r = r;
	}
	t->signer->close(ctx);
}

static void *
bench_thread_main(void *arg)
{
	struct bench_thread *t = arg;

	if (t->signer == NULL)
		agent_client(t);
	else
		signer_client(t);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Phases, statistics and reports */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
percentile_us(const uint64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	/* Nearest rank. */
	i = (size_t)(q * (double)n + 0.999999);
	if (i == 0)
		i = 1;
	if (i > n)
		i = n;
	return (double)v[i - 1] / 1000.0;
}

/*
 * Fills res from threads t[0..n) (but not rates): totals, latency and
 * BUSY percentiles over the phase's wall time t0..t1, and, for a group of
 * several bots, each bot's rate over the window in which every client of
 * the group was still running (until the first one's last reply), so that
 * clients that finished early do not flatter the bots they left.
 */
static int
result_fill(const struct bench_thread *t, unsigned n, uint64_t t0,
    uint64_t t1, struct bench_result *res)
{
	uint64_t *all = NULL, end = UINT64_MAX;
	unsigned long *per_bot = NULL, lo, hi;
	size_t i, j, k = 0, nbots;
	int r = BOTID_ERR_ALLOC;

	memset(res, 0, sizeof(*res));
	res->clients = n;
	res->seconds = (double)(t1 - t0) / 1e9;
	for (i = 0; i < n; i++) {
		res->ops += t[i].nlat;
		res->busy += t[i].nbusy;
		res->failed += t[i].nreq - t[i].nlat - t[i].nbusy;
	}
	nbots = n > 0 && t[0].signer == NULL ? t[0].nbots : 0;
	if ((all = calloc(res->ops + res->busy + 1, sizeof(*all))) == NULL ||
	    (per_bot = calloc(nbots + 1, sizeof(*per_bot))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		memcpy(all + k, t[i].lat, t[i].nlat * sizeof(*all));
		k += t[i].nlat;
	}
	qsort(all, k, sizeof(*all), cmp_u64);
	res->rate = res->seconds > 0 ? (double)res->ops / res->seconds : 0;
	res->p50_us = percentile_us(all, k, 0.50);
	res->p99_us = percentile_us(all, k, 0.99);
	res->max_us = k > 0 ? (double)all[k - 1] / 1000.0 : 0;
	for (i = 0, k = 0; i < n; i++) {
		if (t[i].busy_lat == NULL)
			continue;
		memcpy(all + k, t[i].busy_lat, t[i].nbusy * sizeof(*all));
		k += t[i].nbusy;
	}
	qsort(all, k, sizeof(*all), cmp_u64);
	res->busy_p50_us = percentile_us(all, k, 0.50);
	res->busy_p99_us = percentile_us(all, k, 0.99);
	res->busy_max_us = k > 0 ? (double)all[k - 1] / 1000.0 : 0;
	for (i = 0, k = 0; i < n; i++) {
		if (t[i].hint_ms == NULL)
			continue;
		memcpy(all + k, t[i].hint_ms, t[i].nhint * sizeof(*all));
		k += t[i].nhint;
	}
	qsort(all, k, sizeof(*all), cmp_u64);
	res->hinted = k;
	/* percentile_us() divides by 1000: ms in, ms out after * 1000. */
	res->hint_min_ms = k > 0 ? (double)all[0] : 0;
	res->hint_p50_ms = percentile_us(all, k, 0.50) * 1000.0;
	res->hint_max_ms = k > 0 ? (double)all[k - 1] : 0;
	if (nbots > 1) {
		for (i = 0; i < n; i++)
			if (t[i].finished < end)
				end = t[i].finished;
		for (i = 0; i < n; i++)
			for (j = 0; j < t[i].nlat; j++)
				if (t[i].done_at[j] <= end &&
				    t[i].done_bot[j] < nbots)
					per_bot[t[i].done_bot[j]]++;
		lo = ULONG_MAX;
		hi = 0;
		for (j = 0; j < nbots; j++) {
			if (per_bot[j] < lo)
				lo = per_bot[j];
			if (per_bot[j] > hi)
				hi = per_bot[j];
		}
		res->nbots = nbots;
		res->window_s = end > t0 && end != UINT64_MAX ?
		    (double)(end - t0) / 1e9 : 0;
		if (res->window_s > 0) {
			res->bot_min_rate = (double)lo / res->window_s;
			res->bot_max_rate = (double)hi / res->window_s;
		}
	}
	r = 0;
 out:
	free(all);
	free(per_bot);
	return r;
}

/*
 * One run of a phase: nthreads threads of the signer (NULL: the agent's
 * clients on o->bots), and, for the agent, nsecond more clients of
 * o->second_bot started at the same barrier, reported in *res2. Fills
 * res (and res2) but not rates.
 */
static int
phase_run(const struct bench_opts *o, const struct bench_signer *signer,
    const char *spec, unsigned nthreads, unsigned nsecond,
    struct bench_result *res, struct bench_result *res2)
{
	struct bench_thread *t = NULL;
	pthread_barrier_t start;
	uint64_t t0, t1, first_end = UINT64_MAX, second_end = 0;
	unsigned i, ntotal = nthreads + nsecond, started = 0;
	int r = BOTID_ERR_ALLOC;

	if ((t = calloc(ntotal, sizeof(*t))) == NULL)
		return BOTID_ERR_ALLOC;
	if (pthread_barrier_init(&start, NULL, ntotal + 1) != 0)
		goto out_free;
	for (i = 0; i < ntotal; i++) {
		t[i].o = o;
		t[i].signer = signer;
		t[i].spec = spec;
		t[i].idx = i < nthreads ? i + 1 : i - nthreads + 1;
		t[i].start = &start;
		if (i < nthreads) {
			t[i].bots = o->bots;
			t[i].nbots = o->nbots;
			t[i].nreq = o->requests;
		} else {
			t[i].bots = (char * const *)&o->second_bot;
			t[i].nbots = 1;
			t[i].nreq = o->second_requests;
		}
		if ((t[i].lat = calloc(t[i].nreq, sizeof(uint64_t))) == NULL ||
		    (signer == NULL && ((t[i].done_at = calloc(t[i].nreq,
		    sizeof(uint64_t))) == NULL || (t[i].done_bot =
		    calloc(t[i].nreq, sizeof(uint32_t))) == NULL ||
		    (t[i].busy_lat = calloc(t[i].nreq,
		    sizeof(uint64_t))) == NULL || (t[i].hint_ms =
		    calloc(t[i].nreq, sizeof(uint64_t))) == NULL)))
			break;
	}
	for (started = 0; i == ntotal && started < ntotal; started++)
		if (pthread_create(&t[started].tid, NULL, bench_thread_main,
		    &t[started]) != 0)
			break;
	if (started < ntotal) {
		/* The barrier cannot be met: a broken invariant, not input. */
		fprintf(stderr, "botid-bench: cannot start %u threads\n",
		    ntotal);
		abort();
	}
	/*
	 * Before the barrier: taken after it, the clock could start after a
	 * short run had ended, if this thread was preempted there.
	 */
	t0 = bench_now_ns();
	pthread_barrier_wait(&start);
	for (i = 0; i < ntotal; i++)
		pthread_join(t[i].tid, NULL);
	t1 = bench_now_ns();
	pthread_barrier_destroy(&start);

	r = 0;
	for (i = 0; i < ntotal; i++)
		if (t[i].r != 0 && r == 0)
			r = t[i].r;
	for (i = 0; i < nthreads; i++)
		if (t[i].finished < first_end)
			first_end = t[i].finished;
	for (i = nthreads; i < ntotal; i++)
		if (t[i].finished > second_end)
			second_end = t[i].finished;
	/* The second group's rate is over its own time, not the phase's. */
	if (result_fill(t, nthreads, t0, t1, res) != 0 ||
	    (nsecond > 0 && result_fill(t + nthreads, nsecond, t0,
	    second_end > t0 ? second_end : t1, res2) != 0)) {
		r = BOTID_ERR_ALLOC;
		goto out_free;
	}
	if (nsecond > 0) {
		res2->second = 1;
		res2->under_load = second_end <= first_end;
	}
 out_free:
	for (i = 0; i < ntotal; i++) {
		free(t[i].lat);
		free(t[i].done_at);
		free(t[i].done_bot);
		free(t[i].busy_lat);
		free(t[i].hint_ms);
	}
	free(t);
	return r;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_result_rate(const void *a, const void *b)
{
	double x = ((const struct bench_result *)a)->rate;
	double y = ((const struct bench_result *)b)->rate;

	return x < y ? -1 : x > y;
}

/* One run of a phase, with a line on failure. */
static int
phase_once(const struct bench_opts *o, const char *name,
    const struct bench_signer *signer, const char *spec, unsigned nthreads,
    struct bench_result *run)
{
	struct bench_result unused;
	int r;

	if ((r = phase_run(o, signer, spec, nthreads, 0, run, &unused)) != 0)
		fprintf(stderr, "botid-bench: %s: %lu of %lu requests failed, "
		    "first: %s\n", name, run->failed,
		    run->failed + run->ops + run->busy, botid_strerror(r));
	return r;
}

/* The agent's clients, with the second group beside them or alone. */
static int
phase_agent(const struct bench_opts *o, const char *name, unsigned nthreads,
    unsigned nsecond, struct bench_result *run, struct bench_result *run2)
{
	int r;

	if ((r = phase_run(o, NULL, NULL, nthreads, nsecond, run,
	    run2)) != 0)
		fprintf(stderr, "botid-bench: %s: %lu of %lu requests failed, "
		    "first: %s\n", name, run->failed + run2->failed,
		    run->failed + run->ops + run->busy + run2->failed +
		    run2->ops + run2->busy, botid_strerror(r));
	return r;
}

static int
cmp_result_p99(const void *a, const void *b)
{
	double x = ((const struct bench_result *)a)->p99_us;
	double y = ((const struct bench_result *)b)->p99_us;

	return x < y ? -1 : x > y;
}

/*
 * *res is the run with the median rate of o->runs (for the second group:
 * the median p99), every rate kept.
 */
static void
phase_summary(const struct bench_opts *o, struct bench_result *runs,
    const char *name, unsigned depth, int baseline, struct bench_result *res)
{
	double rates[BENCH_MAX_RUNS];
	unsigned i;

	memset(rates, 0, sizeof(rates));
	for (i = 0; i < o->runs; i++)
		rates[i] = runs[i].rate;
	/* The second group is about its latency: the median p99's run. */
	qsort(runs, o->runs, sizeof(*runs), runs[0].second ? cmp_result_p99 :
	    cmp_result_rate);
	*res = runs[o->runs / 2];
	memcpy(res->rates, rates, sizeof(rates));
	res->nrates = o->runs;
	res->depth = depth;
	res->baseline = baseline;
	snprintf(res->name, sizeof(res->name), "%s", name);
}

/* The agent's pid from the socket, and its resident set from /proc. */
static int
agent_rss(int fd, long *rss_kib, long *hwm_kib)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char path[64], line[128];
	FILE *f;

	*rss_kib = *hwm_kib = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return BOTID_ERR_IO;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)cred.pid);
	if ((f = fopen(path, "re")) == NULL)
		return BOTID_ERR_IO;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld", rss_kib) == 1)
			continue;
		(void)sscanf(line, "VmHWM: %ld", hwm_kib);
	}
	fclose(f);
	return *rss_kib >= 0 ? 0 : BOTID_ERR_NOT_FOUND;
}

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* BUSY replies and per-bot rates, after the table. */
static void
report_extra_text(const struct bench_result *r)
{
	if (r->busy > 0)
		printf("%s: %lu BUSY replies, latency p50 %.1f us, "
		    "p99 %.1f us, max %.1f us\n", r->name, r->busy,
		    r->busy_p50_us, r->busy_p99_us, r->busy_max_us);
	if (r->busy > 0)
		printf("%s: %lu of them with RETRY_AFTER: min %.0f ms, "
		    "p50 %.0f ms, max %.0f ms\n", r->name, r->hinted,
		    r->hint_min_ms, r->hint_p50_ms, r->hint_max_ms);
	if (r->nbots > 1)
		printf("%s: per bot over %.2f s (%zu bots): min %.2f/s, max "
		    "%.2f/s, max/min %.2f\n", r->name, r->window_s, r->nbots,
		    r->bot_min_rate, r->bot_max_rate, r->bot_min_rate > 0 ?
		    r->bot_max_rate / r->bot_min_rate : 0.0);
}

static void
report_extra_json(const struct bench_result *r, int agent)
{
	if (!agent && !r->second)
		return;
	printf(",\"busy\":{\"count\":%lu,\"p50_us\":%.1f,\"p99_us\":%.1f,"
	    "\"max_us\":%.1f,\"hinted\":%lu,\"retry_after_ms\":{"
	    "\"min\":%.0f,\"p50\":%.0f,\"max\":%.0f}}", r->busy,
	    r->busy_p50_us, r->busy_p99_us, r->busy_max_us, r->hinted,
	    r->hint_min_ms, r->hint_p50_ms, r->hint_max_ms);
	if (r->second)
		printf(",\"group\":\"second\",\"under_load\":%s",
		    r->under_load ? "true" : "false");
	if (r->nbots > 1) {
		printf(",\"per_bot\":{\"bots\":%zu,\"window_s\":%.3f,"
		    "\"min_ops_per_sec\":%.3f,\"max_ops_per_sec\":%.3f,"
		    "\"max_over_min\":", r->nbots, r->window_s,
		    r->bot_min_rate, r->bot_max_rate);
		if (r->bot_min_rate > 0)
			printf("%.3f}", r->bot_max_rate / r->bot_min_rate);
		else
			printf("null}");
	}
}

static void
report(const struct bench_opts *o, const struct bench_result *res,
    size_t nres, long rss, long hwm)
{
	const struct bench_result *agent = &res[0];
	double second_ratio = 0;
	size_t i, j, second = 0;

	/* The second group beside the load, then alone: the p99 ratio. */
	for (i = 1; i + 1 < nres; i++)
		if (res[i].second && res[i + 1].second &&
		    res[i + 1].p99_us > 0) {
			second = i;
			second_ratio = res[i].p99_us / res[i + 1].p99_us;
		}

	if (!o->json) {
		printf("%-12s %7s %5s %9s %6s %10s %10s %10s %10s\n", "path",
		    "clients", "depth", "ops", "failed", "ops/s", "p50(us)",
		    "p99(us)", "max(us)");
		for (i = 0; i < nres; i++)
			/* A tenth of a signature a second on a slow chip. */
			printf("%-12s %7u %5u %9lu %6lu %10.*f %10.1f %10.1f "
			    "%10.1f\n", res[i].name, res[i].clients,
			    res[i].depth, res[i].ops, res[i].failed,
			    res[i].rate < 100 ? 1 : 0,
			    res[i].rate, res[i].p50_us, res[i].p99_us,
			    res[i].max_us);
		for (i = 1; i < nres; i++)
			if (res[i].rate > 0 && !res[i].second)
				printf("agent/%s = %.2f\n", res[i].name,
				    agent->rate / res[i].rate);
		for (i = 0; i < nres; i++)
			report_extra_text(&res[i]);
		if (second_ratio > 0)
			printf("p99 second/second-alone = %.2f (%s)\n",
			    second_ratio, res[second].under_load ? "the second "
			    "group ended before the first" : "the second group "
			    "outlasted the first: not all of it under load");
		if (o->runs > 1)
			printf("runs per phase: %u, median shown\n", o->runs);
		if (rss >= 0)
			printf("agent RSS: %ld KiB (peak %ld KiB) with %u idle "
			    "connections\n", rss, hwm, o->idle);
		return;
	}
	printf("{\"tool\":\"botid-bench\",\"socket\":");
	json_string(o->socket);
	printf(",\"bots\":%zu,\"requests_per_client\":%lu,\"runs\":%u,"
	    "\"idle_connections\":%u,\"results\":[", o->nbots, o->requests,
	    o->runs, o->idle);
	for (i = 0; i < nres; i++) {
		printf("%s{\"name\":", i > 0 ? "," : "");
		json_string(res[i].name);
		printf(",\"kind\":\"%s\",\"clients\":%u,\"pipeline\":%u,"
		    "\"ops\":%lu,\"failed\":%lu,\"seconds\":%.6f,"
		    "\"ops_per_sec\":%.1f,\"latency_us\":{\"p50\":%.1f,"
		    "\"p99\":%.1f,\"max\":%.1f},\"runs_ops_per_sec\":[",
		    i == 0 || res[i].second ? "agent" : res[i].baseline ?
		    "baseline" : "peer",
		    res[i].clients, res[i].depth, res[i].ops, res[i].failed,
		    res[i].seconds, res[i].rate, res[i].p50_us, res[i].p99_us,
		    res[i].max_us);
		for (j = 0; j < res[i].nrates; j++)
			printf("%s%.1f", j > 0 ? "," : "", res[i].rates[j]);
		printf("]");
		report_extra_json(&res[i], i == 0);
		printf("}");
	}
	printf("],\"ratios\":{");
	for (i = 1, j = 0; i < nres; i++) {
		if (res[i].rate <= 0 || res[i].second)
			continue;
		printf("%s\"agent/%s\":%.3f", j++ > 0 ? "," : "", res[i].name,
		    agent->rate / res[i].rate);
	}
	if (second_ratio > 0)
		printf("%s\"p99 second/second-alone\":%.3f", j++ > 0 ? "," : "",
		    second_ratio);
	printf("}");
	if (rss >= 0)
		printf(",\"agent_rss_kib\":%ld,\"agent_rss_peak_kib\":%ld",
		    rss, hwm);
	printf("}\n");
}

/* ------------------------------------------------------------------ */
/* --agent-cmd: the agent started after the baselines, stopped at the end */

static void
on_alarm(int sig)
{
	static const char msg[] = "botid-bench: timed out (is the TPM "
	    "still held by the agent? see --agent-cmd)\n";

	ssize_t w;

	(void)sig;
	bench_timed_out = 1;
	w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	_exit(EXIT_FAIL);
}

static int
agent_start(const char *cmd, const char *sock, pid_t *pidp)
{
	pid_t pid;
	unsigned waited;
	int fd;

	*pidp = -1;
	if ((pid = fork()) == -1)
		return BOTID_ERR_IO;
	if (pid == 0) {
		/* Its own group, so that stopping it reaches a shell's child. */
		(void)setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	(void)setpgid(pid, pid);
	*pidp = pid;
	for (waited = 0; waited < BENCH_CONNECT_WAIT_MS; waited += 50) {
		if (agent_connect(sock, &fd) == 0) {
			close(fd);
			return 0;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			*pidp = -1;
			fprintf(stderr, "botid-bench: the agent command "
			    "exited\n");
			return BOTID_ERR_UNAVAILABLE;
		}
		usleep(50 * 1000);
	}
	fprintf(stderr, "botid-bench: %s does not answer\n", sock);
	return BOTID_ERR_TIMEOUT;
}

static int
agent_stop(pid_t pid)
{
	int status;

	if (pid <= 0)
		return 0;
	(void)kill(-pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid)
		return BOTID_ERR_IO;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 :
	    BOTID_ERR_INTERNAL;
}

/* Opens o->idle connections, each after a HELLO, into idle. */
static int
idle_open(const struct bench_opts *o, int *idle, size_t *nidle)
{
	struct botid_buf in;
	int r = 0;

	buf_init(&in, 4 + BOTID_MAX_FRAME + BENCH_READ_CHUNK);
	for (*nidle = 0; *nidle < o->idle; (*nidle)++) {
		buf_reset(&in);
		if ((r = agent_connect(o->socket, &idle[*nidle])) != 0 ||
		    (r = agent_hello(idle[*nidle], &in)) != 0) {
			fprintf(stderr, "botid-bench: idle connection %zu: %s\n",
			    *nidle + 1, botid_strerror(r));
			if (idle[*nidle] != -1)
				close(idle[*nidle]);
			break;
		}
	}
	buf_reset(&in);
	return r;
}

static void
idle_close(int *idle, size_t *nidle)
{
	size_t i;

	for (i = 0; i < *nidle; i++)
		close(idle[i]);
	*nidle = 0;
}

/* Enough descriptors for every client and idle connection. */
static void
raise_nofile(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * --first-signature: starts the agent command o->runs times and measures,
 * from the fork, when its socket first accepts a connection and when the
 * first bot first signs (a verified signature; every failure, BUSY among
 * them, is retried every BENCH_FIRST_POLL_MS). The agent is stopped after
 * each run. Keys the agent made in one run exist in the next: for "keys
 * missing at start", give each run a fresh state (scripts/bench-slow).
 */
static int
first_signature(const struct bench_opts *o)
{
	double sock_ms[BENCH_MAX_RUNS], sign_ms[BENCH_MAX_RUNS], sorted[3];
	struct timespec pause = { 0, (long)BENCH_FIRST_POLL_MS * 1000000 };
	uint64_t t0, now, limit;
	unsigned k, i;
	pid_t pid = -1;
	int fd, r = BOTID_ERR_INTERNAL;

	limit = (uint64_t)o->first_wait_s * 1000000000u;
	for (k = 0; k < o->runs; k++) {
		sock_ms[k] = sign_ms[k] = -1;
		t0 = bench_now_ns();
		if ((pid = fork()) == -1) {
			r = BOTID_ERR_IO;
			goto out;
		}
		if (pid == 0) {
			(void)setpgid(0, 0);
			execl("/bin/sh", "sh", "-c", o->agent_cmd,
			    (char *)NULL);
			_exit(127);
		}
		(void)setpgid(pid, pid);
		for (;;) {
			now = bench_now_ns();
			if (now - t0 > limit) {
				fprintf(stderr, "botid-bench: bot '%s' did not "
				    "sign within %u s of the agent's start\n",
				    o->bots[0], o->first_wait_s);
				r = BOTID_ERR_TIMEOUT;
				goto out;
			}
			if (waitpid(pid, NULL, WNOHANG) == pid) {
				pid = -1;
				fprintf(stderr, "botid-bench: the agent "
				    "command exited\n");
				r = BOTID_ERR_UNAVAILABLE;
				goto out;
			}
			if (sock_ms[k] < 0 && agent_connect(o->socket,
			    &fd) == 0) {
				close(fd);
				sock_ms[k] = (double)(bench_now_ns() - t0) /
				    1e6;
			}
			if (sock_ms[k] >= 0 &&
			    agent_sign_check(o, o->bots[0], 1) == 0) {
				sign_ms[k] = (double)(bench_now_ns() - t0) /
				    1e6;
				break;
			}
			(void)nanosleep(&pause, NULL);
		}
		r = agent_stop(pid);
		pid = -1;
		if (r != 0) {
			fprintf(stderr, "botid-bench: the agent did not exit "
			    "cleanly\n");
			goto out;
		}
	}
	/* The median of each, by sorting copies (runs <= BENCH_MAX_RUNS). */
	for (i = 0; i < 2; i++) {
		double v[BENCH_MAX_RUNS];

		memcpy(v, i == 0 ? sock_ms : sign_ms, o->runs * sizeof(*v));
		qsort(v, o->runs, sizeof(*v), cmp_double);
		sorted[i] = v[o->runs / 2];
	}
	if (o->json) {
		printf("{\"tool\":\"botid-bench\",\"mode\":\"first-signature"
		    "\",\"socket\":");
		json_string(o->socket);
		printf(",\"bot\":");
		json_string(o->bots[0]);
		printf(",\"runs\":%u,\"socket_ms\":[", o->runs);
		for (k = 0; k < o->runs; k++)
			printf("%s%.1f", k > 0 ? "," : "", sock_ms[k]);
		printf("],\"first_signature_ms\":[");
		for (k = 0; k < o->runs; k++)
			printf("%s%.1f", k > 0 ? "," : "", sign_ms[k]);
		printf("],\"median_socket_ms\":%.1f,"
		    "\"median_first_signature_ms\":%.1f}\n", sorted[0],
		    sorted[1]);
	} else {
		for (k = 0; k < o->runs; k++)
			printf("run %u: socket after %.1f ms, first signature "
			    "of '%s' after %.1f ms\n", k + 1, sock_ms[k],
			    o->bots[0], sign_ms[k]);
		printf("median: socket %.1f ms, first signature %.1f ms\n",
		    sorted[0], sorted[1]);
	}
	r = 0;
 out:
	if (pid > 0)
		(void)agent_stop(pid);
	return r;
}

int
main(int argc, char **argv)
{
	enum { OPT_BOTS = 256, OPT_JSON, OPT_BASELINE, OPT_PEER, OPT_RUNS,
	    OPT_IDLE, OPT_RAW_CLIENTS, OPT_AGENT_CMD, OPT_HELLO, OPT_PICK,
	    OPT_SECOND_BOT, OPT_SECOND_CLIENTS, OPT_SECOND_REQUESTS,
	    OPT_BUSY_WAIT, OPT_FIRST, OPT_FIRST_WAIT };
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "bot", required_argument, NULL, 'b' },
		{ "bots", required_argument, NULL, OPT_BOTS },
		{ "clients", required_argument, NULL, 'c' },
		{ "requests", required_argument, NULL, 'n' },
		{ "pipeline", required_argument, NULL, 'p' },
		{ "runs", required_argument, NULL, OPT_RUNS },
		{ "idle", required_argument, NULL, OPT_IDLE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "baseline", required_argument, NULL, OPT_BASELINE },
		{ "peer", required_argument, NULL, OPT_PEER },
		{ "raw-clients", required_argument, NULL, OPT_RAW_CLIENTS },
		{ "agent-cmd", required_argument, NULL, OPT_AGENT_CMD },
		{ "hello", no_argument, NULL, OPT_HELLO },
		{ "pick", required_argument, NULL, OPT_PICK },
		{ "second-bot", required_argument, NULL, OPT_SECOND_BOT },
		{ "second-clients", required_argument, NULL,
		    OPT_SECOND_CLIENTS },
		{ "second-requests", required_argument, NULL,
		    OPT_SECOND_REQUESTS },
		{ "busy-wait", required_argument, NULL, OPT_BUSY_WAIT },
		{ "first-signature", no_argument, NULL, OPT_FIRST },
		{ "first-wait", required_argument, NULL, OPT_FIRST_WAIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = {
		.clients = 1, .requests = 1000, .depth = 1, .runs = 1,
		.raw_clients = 1, .second_clients = 4, .first_wait_s = 600,
	};
	struct bench_result res[3 + BENCH_MAX_SIGNERS], *runs = NULL, unused;
	unsigned long v;
	unsigned k, round, rounds = 1, per;
	long rss = -1, hwm = -1;
	int ch, *idle = NULL, rc = EXIT_FAIL, r;
	pid_t agent_pid = -1;
	size_t i, nidle = 0, nres = 0;

	memset(res, 0, sizeof(res));
	while ((ch = getopt_long(argc, argv, "s:b:c:n:p:h", longopts,
	    NULL)) != -1) {
		r = 0;
		switch (ch) {
		case 's':
			o.socket = optarg;
			break;
		case 'b':
		case OPT_BOTS:
			r = parse_bots(&o, optarg);
			break;
		case 'c':
			if ((r = parse_ulong(optarg, 1, BENCH_MAX_CLIENTS,
			    &v)) == 0)
				o.clients = (unsigned)v;
			break;
		case 'n':
			if ((r = parse_ulong(optarg, 1, BENCH_MAX_REQUESTS,
			    &v)) == 0)
				o.requests = v;
			break;
		case 'p':
			if ((r = parse_ulong(optarg, 1, BENCH_MAX_DEPTH,
			    &v)) == 0)
				o.depth = (unsigned)v;
			break;
		case OPT_RUNS:
			if ((r = parse_ulong(optarg, 1, BENCH_MAX_RUNS,
			    &v)) == 0)
				o.runs = (unsigned)v;
			break;
		case OPT_IDLE:
			if ((r = parse_ulong(optarg, 0, BENCH_MAX_IDLE,
			    &v)) == 0)
				o.idle = (unsigned)v;
			break;
		case OPT_RAW_CLIENTS:
			if ((r = parse_ulong(optarg, 1, BENCH_MAX_CLIENTS,
			    &v)) == 0)
				o.raw_clients = (unsigned)v;
			break;
		case OPT_JSON:
			o.json = 1;
			break;
		case OPT_BASELINE:
		case OPT_PEER:
			r = parse_signer(&o, optarg, ch == OPT_BASELINE);
			break;
		case OPT_AGENT_CMD:
			o.agent_cmd = optarg;
			break;
		case OPT_HELLO:
			o.hello = 1;
			break;
		case OPT_PICK:
			if (strcmp(optarg, "bind") == 0)
				o.bind = 1;
			else if (strcmp(optarg, "random") != 0)
				r = BOTID_ERR_INVALID;
			break;
		case OPT_SECOND_BOT:
			if (!wire_bot_name_valid(optarg, strlen(optarg)))
				r = BOTID_ERR_INVALID;
			o.second_bot = optarg;
			break;
		case OPT_SECOND_CLIENTS:
			if ((r = parse_ulong(optarg, 1, BENCH_MAX_CLIENTS,
			    &v)) == 0)
				o.second_clients = (unsigned)v;
			break;
		case OPT_SECOND_REQUESTS:
			if ((r = parse_ulong(optarg, 1, BENCH_MAX_REQUESTS,
			    &v)) == 0)
				o.second_requests = v;
			break;
		case OPT_BUSY_WAIT:
			/* hint[:MS]: the agent's RETRY_AFTER, else MS. */
			if (strncmp(optarg, "hint", 4) == 0 &&
			    (optarg[4] == '\0' || optarg[4] == ':')) {
				o.busy_hint = 1;
				v = 0;
				if (optarg[4] == ':')
					r = parse_ulong(optarg + 5, 0,
					    BENCH_MAX_BUSY_WAIT_MS, &v);
			} else
				r = parse_ulong(optarg, 0,
				    BENCH_MAX_BUSY_WAIT_MS, &v);
			if (r == 0)
				o.busy_wait_ms = (unsigned)v;
			break;
		case OPT_FIRST:
			o.first_sign = 1;
			break;
		case OPT_FIRST_WAIT:
			if ((r = parse_ulong(optarg, 1, BENCH_MAX_FIRST_WAIT_S,
			    &v)) == 0)
				o.first_wait_s = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			rc = EXIT_OK;
			goto out;
		default:
			usage(stderr);
			rc = EXIT_USAGE;
			goto out;
		}
		if (r != 0) {
			fprintf(stderr, "botid-bench: bad argument to -%c: "
			    "%s\n", ch < 256 ? ch : '-', optarg);
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (optind != argc || o.socket == NULL || o.nbots == 0) {
		usage(stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	if (o.second_requests == 0)
		o.second_requests = o.requests;
	/* Every bot must own a slot, or some would never be asked. */
	if (o.bind && (unsigned long)o.clients * o.depth < o.nbots) {
		fprintf(stderr, "botid-bench: --pick bind needs clients x "
		    "pipeline >= bots (%u x %u < %zu)\n", o.clients, o.depth,
		    o.nbots);
		rc = EXIT_USAGE;
		goto out;
	}
	if (o.first_sign && o.agent_cmd == NULL) {
		fprintf(stderr, "botid-bench: --first-signature needs "
		    "--agent-cmd\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if (o.second_bot != NULL && o.hello) {
		fprintf(stderr, "botid-bench: --second-bot signs; not with "
		    "--hello\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if (o.first_sign) {
		(void)signal(SIGPIPE, SIG_IGN);
		rc = first_signature(&o) == 0 ? EXIT_OK : EXIT_FAIL;
		goto out;
	}
	raise_nofile(o.clients + o.idle + 64);
	(void)signal(SIGPIPE, SIG_IGN);

	if ((runs = calloc((3 + o.nsigners) * o.runs, sizeof(*runs))) == NULL ||
	    (o.idle > 0 && (idle = calloc(o.idle, sizeof(*idle))) == NULL))
		goto out;
	/*
	 * A TPM serves one connection at a time. With --agent-cmd the agent
	 * is stopped between rounds, so that a TPM baseline, too, takes
	 * turns with it; without, the TPM's runs all come first. The others
	 * take turns with the agent run by run, so that a load that comes and
	 * goes on the machine weighs on both sides of a ratio.
	 */
	for (i = 0; i < o.nsigners; i++)
		if (o.signer[i].signer->serial && o.agent_cmd != NULL)
			rounds = o.runs;
	per = o.runs / rounds;
	for (round = 0; round < rounds; round++) {
		for (i = 0; i < o.nsigners; i++) {
			if (!o.signer[i].signer->serial)
				continue;
			(void)signal(SIGALRM, on_alarm);
			for (k = round * per; k < (round + 1) * per; k++) {
				alarm(60 + (unsigned)(o.requests / 100));
				r = phase_once(&o, o.signer[i].name,
				    o.signer[i].signer, o.signer[i].spec, 1,
				    &runs[(1 + i) * o.runs + k]);
				alarm(0);
				if (r != 0)
					goto out;
			}
		}
		if (o.agent_cmd != NULL &&
		    agent_start(o.agent_cmd, o.socket, &agent_pid) != 0)
			goto out;
		if (agent_check(&o) != 0 || (o.second_bot != NULL &&
		    agent_sign_check(&o, o.second_bot, 0) != 0) ||
		    idle_open(&o, idle, &nidle) != 0)
			goto out;
		for (k = round * per; k < (round + 1) * per; k++) {
			for (i = 0; i < o.nsigners; i++) {
				if (o.signer[i].signer->serial)
					continue;
				if (phase_once(&o, o.signer[i].name,
				    o.signer[i].signer, o.signer[i].spec,
				    o.raw_clients,
				    &runs[(1 + i) * o.runs + k]) != 0)
					goto out;
			}
			/*
			 * The second group alone first, then beside the
			 * first group: its p99 without and with the load.
			 */
			if (o.second_bot != NULL && phase_agent(&o,
			    "second-alone", 0, o.second_clients, &unused,
			    &runs[(2 + o.nsigners) * o.runs + k]) != 0)
				goto out;
			if (phase_agent(&o, o.hello ? "agent-hello" : "agent",
			    o.clients, o.second_bot != NULL ?
			    o.second_clients : 0, &runs[k],
			    &runs[(1 + o.nsigners) * o.runs + k]) != 0)
				goto out;
		}
		if (round + 1 < rounds) {
			idle_close(idle, &nidle);
			r = agent_stop(agent_pid);
			agent_pid = -1;
			if (r != 0) {
				fprintf(stderr, "botid-bench: the agent did "
				    "not exit cleanly\n");
				goto out;
			}
		}
	}
	phase_summary(&o, runs, o.hello ? "agent-hello" : "agent", o.depth, 0,
	    &res[0]);
	for (i = 0; i < o.nsigners; i++)
		phase_summary(&o, &runs[(1 + i) * o.runs], o.signer[i].name, 1,
		    o.signer[i].baseline, &res[1 + i]);
	nres = 1 + o.nsigners;
	if (o.second_bot != NULL) {
		phase_summary(&o, &runs[(1 + o.nsigners) * o.runs], "second",
		    1, 0, &res[nres++]);
		phase_summary(&o, &runs[(2 + o.nsigners) * o.runs],
		    "second-alone", 1, 0, &res[nres]);
		res[nres++].under_load = 0;
	}
	if (nidle > 0)
		(void)agent_rss(idle[0], &rss, &hwm);
	else {
		int fd;

		if (agent_connect(o.socket, &fd) == 0) {
			(void)agent_rss(fd, &rss, &hwm);
			close(fd);
		}
	}
	report(&o, res, nres, rss, hwm);
	rc = EXIT_OK;
 out:
	idle_close(idle, &nidle);
	free(idle);
	free(runs);
	if (agent_stop(agent_pid) != 0) {
		fprintf(stderr, "botid-bench: the agent did not exit cleanly\n");
		rc = EXIT_FAIL;
	}
	for (i = 0; i < o.nbots; i++)
		free(o.bots[i]);
	free(o.bots);
	return rc;
}
