/*
 * A driver for the PKCS#11 backend alone, for tests/integration/
 * backend-pkcs11.sh: opens a token through backend_pkcs11_open(), creates
 * or finds a bot's key, writes its public key, signs digests, and measures
 * the signing rate from several threads. It exits with the backend's error
 * code negated (botid.h), so tests can tell a refusal from a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "agent/backend.h"
#include "agent/config.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/log.h"

#define PROBE_EXIT_USAGE	64	/* sysexits.h EX_USAGE */
#define PROBE_MAX_INPUT		1024	/* a digest file, wrong sizes included */
#define PROBE_MAX_THREADS	64

struct probe_opts {
	const char	*module;
	const char	*token;
	const char	*pin_file;
	const char	*token2;	/* shared: a second backend */
	const char	*pin_file2;
	const char	*bot;
	const char	*in;
	const char	*out;
	enum botid_key_type type;
	uint32_t	 hash;
	uint32_t	 scheme;	/* 0: the key type's default */
	unsigned	 sessions;
};

struct probe_thread {
	pthread_t		 tid;
	struct botid_backend	*be;
	struct botid_key	*key;
	struct botid_sign_params sp;
	unsigned long		 n;
	unsigned long		 failed;
	int			 first_error;
	uint8_t			 digest[BOTID_MAX_DIGEST];
	uint8_t			*sig;		/* the last one, to verify */
	size_t			 sig_len;
};

static const struct {
	const char		*name;
	enum botid_key_type	 type;
} probe_types[] = {
	{ "ecdsa-p256", BOTID_KEY_ECDSA_P256 },
	{ "ecdsa-p384", BOTID_KEY_ECDSA_P384 },
	{ "rsa-2048", BOTID_KEY_RSA_2048 },
	{ "rsa-3072", BOTID_KEY_RSA_3072 },
};

static const char *probe_type_name(enum botid_key_type);

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pkcs11-backend-probe --module PATH --token LABEL "
	    "--pin-file FILE\n"
	    "           [--type TYPE] [--bot NAME] [--sessions N] "
	    "[--verbose] COMMAND\n"
	    "commands:\n"
	    "  pubkey OUT.der      open (creating if absent) the bot's key, "
	    "write its SPKI\n"
	    "  sign --hash sha256|sha384|sha512 --scheme ecdsa|pkcs1|pss\n"
	    "       --in DIGEST --out SIG\n"
	    "                      sign a binary digest (ECDSA: raw r||s)\n"
	    "  bench N [THREADS]   N signatures in each of THREADS threads\n"
	    "  shared --token2 LABEL --pin-file2 FILE\n"
	    "                      two backends of one module at once; "
	    "closing one\n"
	    "                      must leave the other signing\n"
	    "TYPE: ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072\n"
	    "Exit status: 0, or the botid error code negated.\n");
}

static int
probe_exit(int r)
{
	return r == 0 ? 0 : -r;
}

static int
probe_read_file(const char *path, uint8_t *p, size_t max, size_t *lenp)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return BOTID_ERR_IO;
	}
	while (len < max) {
		if ((n = read(fd, p + len, max - len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (n == -1) {
		fprintf(stderr, "%s: read: %s\n", path, strerror(errno));
		return BOTID_ERR_IO;
	}
	*lenp = len;
	return 0;
}

static int
probe_write_file(const char *path, const uint8_t *p, size_t len)
{
	FILE *f;
	int r = 0;

	if ((f = fopen(path, "wb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return BOTID_ERR_IO;
	}
	if (fwrite(p, 1, len, f) != len)
		r = BOTID_ERR_IO;
	if (fclose(f) != 0)
		r = BOTID_ERR_IO;
	if (r != 0)
		fprintf(stderr, "%s: write failed\n", path);
	return r;
}

/* Verifies a signature the backend made, independently, with OpenSSL. */
static int
probe_verify(const uint8_t *spki, size_t spki_len,
    const struct botid_sign_params *sp, const uint8_t *digest,
    size_t digest_len, const uint8_t *sig, size_t sig_len)
{
	const EVP_MD *md = sp->hash == BOTID_HASH_SHA384 ? EVP_sha384() :
	    sp->hash == BOTID_HASH_SHA512 ? EVP_sha512() : EVP_sha256();
	const uint8_t *p = spki;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	uint8_t *der = NULL;
	int derlen, r = BOTID_ERR_CRYPTO;

	if ((pkey = d2i_PUBKEY(NULL, &p, (long)spki_len)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1)
		goto out;
	if (sp->scheme == BOTID_SCHEME_ECDSA) {
		if (sig_len % 2 != 0 || (es = ECDSA_SIG_new()) == NULL ||
		    (br = BN_bin2bn(sig, (int)(sig_len / 2), NULL)) == NULL ||
		    (bs = BN_bin2bn(sig + sig_len / 2, (int)(sig_len / 2),
		    NULL)) == NULL || ECDSA_SIG_set0(es, br, bs) != 1)
			goto out;
		br = bs = NULL;
		if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0)
			goto out;
		sig = der;
		sig_len = (size_t)derlen;
	} else if (EVP_PKEY_CTX_set_signature_md(ctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, sp->scheme == BOTID_SCHEME_PSS ?
	    RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) != 1 ||
	    (sp->scheme == BOTID_SCHEME_PSS &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1)
		r = 0;
 out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	ECDSA_SIG_free(es);
	BN_free(br);
	BN_free(bs);
	OPENSSL_free(der);
	ERR_clear_error();
	return r;
}

static size_t
probe_hash_len(uint32_t hash)
{
	return hash == BOTID_HASH_SHA512 ? 64 : hash == BOTID_HASH_SHA384 ?
	    48 : 32;
}

static uint32_t
probe_default_scheme(enum botid_key_type t)
{
	return t == BOTID_KEY_RSA_2048 || t == BOTID_KEY_RSA_3072 ?
	    BOTID_SCHEME_PKCS1 : BOTID_SCHEME_ECDSA;
}

static void *
probe_bench_thread(void *arg)
{
	struct probe_thread *t = arg;
	const size_t hlen = probe_hash_len(t->sp.hash);
	unsigned long i;
	uint8_t *sig;
	size_t sig_len;
	int r;

	for (i = 0; i < t->n; i++) {
		/* A different digest each time, as real traffic has. */
		memcpy(t->digest, &i, sizeof(i));
		r = t->be->ops->sign(t->be, t->key, &t->sp, t->digest, hlen,
		    &sig, &sig_len);
		if (r != 0) {
			if (t->failed++ == 0)
				t->first_error = r;
			continue;
		}
		free(t->sig);
		t->sig = sig;
		t->sig_len = sig_len;
	}
	return NULL;
}

static double
probe_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
probe_bench(struct botid_backend *be, struct botid_key *key,
    const struct probe_opts *o, const uint8_t *spki, size_t spki_len,
    unsigned long n, unsigned nthreads)
{
	struct probe_thread *t = NULL;
	unsigned long failed = 0;
	double start, secs;
	unsigned i, started = 0;
	int r = BOTID_ERR_INTERNAL;

	if ((t = calloc(nthreads, sizeof(*t))) == NULL)
		return BOTID_ERR_ALLOC;
	for (i = 0; i < nthreads; i++) {
		t[i].be = be;
		t[i].key = key;
		t[i].sp.hash = o->hash;
		t[i].sp.scheme = o->scheme;
		t[i].n = n;
		if (RAND_bytes(t[i].digest, sizeof(t[i].digest)) != 1)
			goto out;
	}
	start = probe_now();
	for (i = 0; i < nthreads; i++, started++)
		if (pthread_create(&t[i].tid, NULL, probe_bench_thread,
		    &t[i]) != 0)
			break;
	for (i = 0; i < started; i++)
		pthread_join(t[i].tid, NULL);
	secs = probe_now() - start;
	if (started != nthreads) {
		fprintf(stderr, "bench: could not start %u threads\n",
		    nthreads);
		goto out;
	}
	r = 0;
	for (i = 0; i < nthreads; i++) {
		failed += t[i].failed;
		if (t[i].failed != 0 && r == 0)
			r = t[i].first_error;
		/* The digest still holds the last counter the thread used. */
		if (t[i].sig != NULL && probe_verify(spki, spki_len, &t[i].sp,
		    t[i].digest, probe_hash_len(o->hash), t[i].sig,
		    t[i].sig_len) != 0) {
			fprintf(stderr, "bench: thread %u: last signature does "
			    "not verify\n", i);
			r = BOTID_ERR_CRYPTO;
		}
	}
	printf("bench: type=%s threads=%u signs=%lu failed=%lu seconds=%.3f "
	    "rate=%.0f/s\n", probe_type_name(o->type), nthreads,
	    n * nthreads, failed, secs,
	    secs > 0 ? (double)(n * nthreads - failed) / secs : 0.0);
	if (failed != 0)
		fprintf(stderr, "bench: %lu signatures failed, first: %s\n",
		    failed, botid_strerror(r));
 out:
	for (i = 0; t != NULL && i < nthreads; i++)
		free(t[i].sig);
	free(t);
	return r;
}

/* Opens a backend and the bot's key in it. */
static int
probe_open(const struct probe_opts *o, const char *token, const char *pin_file,
    struct botid_bot_config *bot, struct botid_backend **bep,
    struct botid_key **keyp, uint8_t **spki, size_t *spki_len)
{
	struct botid_backend *be = NULL;
	int r;

	*bep = NULL;
	*keyp = NULL;
	if ((r = backend_pkcs11_open(o->module, token, pin_file, o->sessions,
	    &be)) != 0)
		return r;
	if ((r = be->ops->key_open(be, bot, keyp, spki, spki_len)) != 0) {
		be->ops->close(be);
		return r;
	}
	*bep = be;
	return 0;
}

static void
probe_close(struct botid_backend *be, struct botid_key *key)
{
	if (be == NULL)
		return;
	be->ops->key_close(be, key);
	be->ops->close(be);
}

/* Signs once with key and checks the result. */
static int
probe_sign_check(struct botid_backend *be, struct botid_key *key,
    const struct probe_opts *o, const uint8_t *spki, size_t spki_len)
{
	struct botid_sign_params sp = { o->hash, o->scheme };
	uint8_t digest[BOTID_MAX_DIGEST], *sig = NULL;
	size_t sig_len;
	int r;

	if (RAND_bytes(digest, sizeof(digest)) != 1)
		return BOTID_ERR_CRYPTO;
	if ((r = be->ops->sign(be, key, &sp, digest, probe_hash_len(o->hash),
	    &sig, &sig_len)) != 0)
		return r;
	r = probe_verify(spki, spki_len, &sp, digest, probe_hash_len(o->hash),
	    sig, sig_len);
	free(sig);
	return r;
}

/*
 * Two backends in one process on the same module: the module is loaded
 * once, and closing the first must neither finalise it nor log the
 * second out.
 */
static int
probe_shared(const struct probe_opts *o, struct botid_bot_config *bot)
{
	struct botid_backend *a = NULL, *b = NULL;
	struct botid_key *ka = NULL, *kb = NULL;
	uint8_t *spa = NULL, *spb = NULL;
	size_t la = 0, lb = 0;
	int r;

	if ((r = probe_open(o, o->token, o->pin_file, bot, &a, &ka, &spa,
	    &la)) != 0 ||
	    (r = probe_open(o, o->token2, o->pin_file2, bot, &b, &kb, &spb,
	    &lb)) != 0)
		goto out;
	if ((r = probe_sign_check(a, ka, o, spa, la)) != 0 ||
	    (r = probe_sign_check(b, kb, o, spb, lb)) != 0)
		goto out;
	probe_close(a, ka);
	a = NULL;
	if ((r = probe_sign_check(b, kb, o, spb, lb)) != 0) {
		fprintf(stderr, "shared: second backend broken by closing the "
		    "first: %s\n", botid_strerror(r));
		goto out;
	}
	printf("shared: ok (%s keys %s)\n", la == lb && memcmp(spa, spb,
	    la) == 0 ? "same" : "different", "on both tokens");
	r = 0;
 out:
	probe_close(a, ka);
	probe_close(b, kb);
	free(spa);
	free(spb);
	return r;
}

/* backend_pkcs11_open()'s refusals that need no token. */
static int
probe_selftest(void)
{
	static const struct {
		const char	*module;
		const char	*token;
		unsigned	 sessions;
		int		 want;
	} cases[] = {
		{ NULL, "t", 1, BOTID_ERR_INVALID },
		{ "/nonexistent/module.so", NULL, 1, BOTID_ERR_INVALID },
		{ "/nonexistent/module.so", "t", 0, BOTID_ERR_CONFIG },
		{ "/nonexistent/module.so", "t", 100000, BOTID_ERR_CONFIG },
		{ "/nonexistent/module.so", "t", 1, BOTID_ERR_NOT_FOUND },
	};
	struct botid_backend *be;
	size_t i;
	int r, bad = 0;

	log_init("pkcs11-backend-probe", BOTID_LOG_DEBUG, 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		be = (struct botid_backend *)&be;	/* open must clear it */
		r = backend_pkcs11_open(cases[i].module, cases[i].token,
		    "/nonexistent/pin", cases[i].sessions, &be);
		if (r != cases[i].want || be != NULL) {
			fprintf(stderr, "selftest %zu: %s, want %s\n", i,
			    botid_strerror(r), botid_strerror(cases[i].want));
			bad = 1;
		}
	}
	printf("selftest: %s (run with arguments to test a token)\n",
	    bad ? "FAILED" : "ok");
	return bad;
}

static int
probe_parse_hash(const char *s, uint32_t *h)
{
	if (strcmp(s, "sha256") == 0)
		*h = BOTID_HASH_SHA256;
	else if (strcmp(s, "sha384") == 0)
		*h = BOTID_HASH_SHA384;
	else if (strcmp(s, "sha512") == 0)
		*h = BOTID_HASH_SHA512;
	else
		return -1;
	return 0;
}

static int
probe_parse_scheme(const char *s, uint32_t *sc)
{
	if (strcmp(s, "ecdsa") == 0)
		*sc = BOTID_SCHEME_ECDSA;
	else if (strcmp(s, "pkcs1") == 0)
		*sc = BOTID_SCHEME_PKCS1;
	else if (strcmp(s, "pss") == 0)
		*sc = BOTID_SCHEME_PSS;
	else if (strcmp(s, "auto") == 0)	/* the backend must refuse it */
		*sc = BOTID_SCHEME_AUTO;
	else
		return -1;
	return 0;
}

/* config.c is not linked here: the probe names key types itself. */
static const char *
probe_type_name(enum botid_key_type t)
{
	size_t i;

	for (i = 0; i < sizeof(probe_types) / sizeof(probe_types[0]); i++)
		if (probe_types[i].type == t)
			return probe_types[i].name;
	return "?";
}

static int
probe_parse_type(const char *s, enum botid_key_type *t)
{
	size_t i;

	for (i = 0; i < sizeof(probe_types) / sizeof(probe_types[0]); i++) {
		if (strcmp(probe_types[i].name, s) == 0) {
			*t = probe_types[i].type;
			return 0;
		}
	}
	return -1;
}

static int
probe_parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	errno = 0;
	*v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *v == 0 || *v > max)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "token", required_argument, NULL, 't' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "token2", required_argument, NULL, 'T' },
		{ "pin-file2", required_argument, NULL, 'P' },
		{ "type", required_argument, NULL, 'k' },
		{ "bot", required_argument, NULL, 'b' },
		{ "sessions", required_argument, NULL, 's' },
		{ "hash", required_argument, NULL, 'H' },
		{ "scheme", required_argument, NULL, 'S' },
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct probe_opts o = {
		.bot = "probe",
		.type = BOTID_KEY_ECDSA_P256,
		.hash = BOTID_HASH_SHA256,
		.sessions = 0,
	};
	struct botid_bot_config bot;
	struct botid_backend *be = NULL;
	struct botid_key *key = NULL;
	struct botid_sign_params sp;
	uint8_t *spki = NULL, *sig = NULL, in[PROBE_MAX_INPUT];
	size_t spki_len = 0, sig_len = 0, in_len;
	unsigned long n, nthreads = 1, v;
	const char *cmd;
	int ch, have_scheme = 0, verbose = 0, r = BOTID_ERR_INTERNAL;

	/*
	 * automake runs every check program as a test: alone, the probe
	 * checks what needs no token.
	 */
	if (argc == 1)
		return probe_selftest();
	while ((ch = getopt_long(argc, argv, "m:t:p:T:P:k:b:s:H:S:i:o:vh",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			o.module = optarg;
			break;
		case 't':
			o.token = optarg;
			break;
		case 'p':
			o.pin_file = optarg;
			break;
		case 'T':
			o.token2 = optarg;
			break;
		case 'P':
			o.pin_file2 = optarg;
			break;
		case 'k':
			if (probe_parse_type(optarg, &o.type) != 0) {
				fprintf(stderr, "unknown key type %s\n", optarg);
				return PROBE_EXIT_USAGE;
			}
			break;
		case 'b':
			o.bot = optarg;
			break;
		case 's':
			if (probe_parse_uint(optarg, 100000, &v) != 0) {
				fprintf(stderr, "bad --sessions %s\n", optarg);
				return PROBE_EXIT_USAGE;
			}
			o.sessions = (unsigned)v;
			break;
		case 'H':
			if (probe_parse_hash(optarg, &o.hash) != 0) {
				fprintf(stderr, "unknown hash %s\n", optarg);
				return PROBE_EXIT_USAGE;
			}
			break;
		case 'S':
			if (probe_parse_scheme(optarg, &o.scheme) != 0) {
				fprintf(stderr, "unknown scheme %s\n", optarg);
				return PROBE_EXIT_USAGE;
			}
			have_scheme = 1;
			break;
		case 'i':
			o.in = optarg;
			break;
		case 'o':
			o.out = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return PROBE_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || o.module == NULL || o.token == NULL) {
		usage(stderr);
		return PROBE_EXIT_USAGE;
	}
	cmd = argv[0];
	if (!have_scheme)
		o.scheme = probe_default_scheme(o.type);
	log_init("pkcs11-backend-probe", verbose ? BOTID_LOG_DEBUG :
	    BOTID_LOG_INFO, 0);

	memset(&bot, 0, sizeof(bot));
	bot.name = (char *)o.bot;
	bot.backend = BOTID_BACKEND_PKCS11;
	bot.key_type = o.type;
	bot.module = (char *)o.module;
	bot.token_label = (char *)o.token;
	bot.pin_file = (char *)o.pin_file;

	if (strcmp(cmd, "shared") == 0) {
		if (argc != 1 || o.token2 == NULL) {
			usage(stderr);
			return PROBE_EXIT_USAGE;
		}
		if (o.sessions == 0)
			o.sessions = 2;
		r = probe_shared(&o, &bot);
		goto out;
	}
	if (strcmp(cmd, "bench") == 0) {
		if (argc < 2 || argc > 3 ||
		    probe_parse_uint(argv[1], 10000000, &n) != 0 ||
		    (argc == 3 && probe_parse_uint(argv[2], PROBE_MAX_THREADS,
		    &nthreads) != 0)) {
			usage(stderr);
			return PROBE_EXIT_USAGE;
		}
	} else if (strcmp(cmd, "pubkey") == 0) {
		if (argc != 2) {
			usage(stderr);
			return PROBE_EXIT_USAGE;
		}
	} else if (strcmp(cmd, "sign") == 0) {
		if (argc != 1 || o.in == NULL || o.out == NULL) {
			usage(stderr);
			return PROBE_EXIT_USAGE;
		}
	} else {
		fprintf(stderr, "unknown command %s\n", cmd);
		usage(stderr);
		return PROBE_EXIT_USAGE;
	}
	if (o.sessions == 0)
		o.sessions = (unsigned)nthreads;

	if ((r = probe_open(&o, o.token, o.pin_file, &bot, &be, &key, &spki,
	    &spki_len)) != 0)
		goto out;
	if (strcmp(cmd, "pubkey") == 0) {
		r = probe_write_file(argv[1], spki, spki_len);
	} else if (strcmp(cmd, "sign") == 0) {
		if ((r = probe_read_file(o.in, in, sizeof(in), &in_len)) != 0)
			goto out;
		sp.hash = o.hash;
		sp.scheme = o.scheme;
		if ((r = be->ops->sign(be, key, &sp, in, in_len, &sig,
		    &sig_len)) != 0)
			goto out;
		r = probe_write_file(o.out, sig, sig_len);
	} else {
		r = probe_bench(be, key, &o, spki, spki_len, n,
		    (unsigned)nthreads);
	}
 out:
	if (r != 0)
		fprintf(stderr, "pkcs11-backend-probe: %s: %s\n", cmd,
		    botid_strerror(r));
	probe_close(be, key);
	free(spki);
	free(sig);
	return probe_exit(r);
}
