/*
 * A driver for the TPM backend alone, for tests/integration/backend-tpm.sh:
 * opens a TPM through backend_tpm_open(), creates or finds bots' keys,
 * writes public keys, signs digests (also across a TPM restart), signs
 * with many bots in random order verifying each signature with OpenSSL,
 * and measures the signing rate. It exits with the backend's error code
 * negated (botid.h), so tests can tell a refusal from a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
#define PROBE_MAX_BOTS		4096u
#define PROBE_WAIT_S		120	/* --wait gives up after this long */

struct probe_opts {
	const char		*tcti;
	const char		*state;
	const char		*bot;
	const char		*in;
	const char		*out;
	const char		*wait;		/* sign: prefix of go-ahead files */
	enum botid_key_type	 type;
	uint32_t		 hash;
	uint32_t		 scheme;	/* 0: the key type's default */
	unsigned long		 repeat;	/* sign: how many signatures */
	unsigned		 loaded;
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

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tpm-backend-probe [--tcti TCTI] --state DIR [--type TYPE]\n"
	    "           [--bot NAME] [--loaded N] [--verbose] COMMAND\n"
	    "commands:\n"
	    "  pubkey OUT.der      open (creating if absent) the bot's key, "
	    "write its SPKI\n"
	    "  sign --hash sha256|sha384|sha512 --scheme ecdsa|pkcs1|pss\n"
	    "       --in DIGEST --out SIG [--repeat K --wait PREFIX]\n"
	    "                      sign a binary digest (ECDSA: raw r||s); "
	    "with --repeat,\n"
	    "                      sign K times into SIG.1..SIG.K (a failure "
	    "into\n"
	    "                      SIG.i.err), waiting for the file PREFIX.i "
	    "to exist\n"
	    "                      before signature i+1; fails if the last "
	    "one did\n"
	    "  many N OUTDIR [ROUNDS]\n"
	    "                      open N bots many-0000.., sign ROUNDS "
	    "(default 3) times\n"
	    "                      each in random order, verify each with "
	    "OpenSSL; write\n"
	    "                      OUTDIR/BOT.{der,dgst,sig} of the last "
	    "round\n"
	    "  bench N             N signatures with one key, print the rate\n"
	    "Alone, it checks what needs no TPM. TYPE: ecdsa-p256 (default),\n"
	    "ecdsa-p384, rsa-2048, rsa-3072. Exit status: 0, or the botid "
	    "error code negated.\n");
}

static int
probe_exit(int r)
{
	return r == 0 ? 0 : -r;
}

static double
probe_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
probe_read_file(const char *path, uint8_t *p, size_t max, size_t *lenp)
{
	size_t len = 0;
	ssize_t n = 0;
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

/* Writes via a temporary name, so a watcher never sees half a file. */
static int
probe_write_file(const char *path, const uint8_t *p, size_t len)
{
	char tmp[BOTID_MAX_PATH];
	FILE *f;
	int r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return BOTID_ERR_TOO_LARGE;
	if ((f = fopen(tmp, "wb")) == NULL) {
		fprintf(stderr, "%s: %s\n", tmp, strerror(errno));
		return BOTID_ERR_IO;
	}
	if (fwrite(p, 1, len, f) != len)
		r = BOTID_ERR_IO;
	if (fclose(f) != 0)
		r = BOTID_ERR_IO;
	if (r == 0 && rename(tmp, path) == -1)
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
	return hash == BOTID_HASH_SHA384 ? 48 : hash == BOTID_HASH_SHA512 ?
	    64 : 32;
}

static void
probe_bot_init(struct botid_bot_config *bot, const char *name,
    enum botid_key_type type)
{
	memset(bot, 0, sizeof(*bot));
	bot->name = (char *)name;
	bot->backend = BOTID_BACKEND_TPM;
	bot->key_type = type;
}

/* Waits for a file to appear (the test's go-ahead). */
static int
probe_wait_file(const char *path)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	struct stat st;
	double deadline = probe_now() + PROBE_WAIT_S;

	while (stat(path, &st) == -1) {
		if (probe_now() > deadline) {
			fprintf(stderr, "gave up waiting for %s\n", path);
			return BOTID_ERR_TIMEOUT;
		}
		nanosleep(&tick, NULL);
	}
	return 0;
}

static int
probe_cmd_sign(struct botid_backend *be, struct botid_key *key,
    const struct probe_opts *o)
{
	struct botid_sign_params sp = { .hash = o->hash, .scheme = o->scheme };
	uint8_t in[PROBE_MAX_INPUT], *sig = NULL;
	char path[BOTID_MAX_PATH], msg[128];
	size_t in_len, sig_len = 0;
	unsigned long i;
	int r, last = 0;

	if (o->in == NULL || o->out == NULL) {
		fprintf(stderr, "sign needs --in and --out\n");
		return BOTID_ERR_INVALID;
	}
	if ((r = probe_read_file(o->in, in, sizeof(in), &in_len)) != 0)
		return r;
	for (i = 1; i <= o->repeat; i++) {
		if (i > 1) {
			snprintf(path, sizeof(path), "%s.%lu", o->wait, i - 1);
			if ((r = probe_wait_file(path)) != 0)
				return r;
		}
		if (o->repeat == 1)
			snprintf(path, sizeof(path), "%s", o->out);
		else
			snprintf(path, sizeof(path), "%s.%lu", o->out, i);
		if ((r = be->ops->sign(be, key, &sp, in, in_len, &sig,
		    &sig_len)) != 0) {
			fprintf(stderr, "sign %lu: %s\n", i, botid_strerror(r));
			if (o->repeat == 1)
				return r;
			last = r;
			/* Go on: the test checks later ones recover. */
			snprintf(msg, sizeof(msg), "%d %s\n", r,
			    botid_strerror(r));
			strncat(path, ".err", sizeof(path) - strlen(path) - 1);
			if ((r = probe_write_file(path, (uint8_t *)msg,
			    strlen(msg))) != 0)
				return r;
			continue;
		}
		last = 0;
		r = probe_write_file(path, sig, sig_len);
		free(sig);
		sig = NULL;
		if (r != 0)
			return r;
	}
	return last;
}

static int
probe_cmd_bench(struct botid_backend *be, struct botid_key *key,
    const struct probe_opts *o, unsigned long n)
{
	struct botid_sign_params sp = { .hash = o->hash, .scheme = o->scheme };
	uint8_t digest[BOTID_MAX_DIGEST], *sig = NULL;
	size_t sig_len = 0, dlen = probe_hash_len(o->hash);
	unsigned long i;
	double t0, dt;
	int r;

	if (RAND_bytes(digest, sizeof(digest)) != 1)
		return BOTID_ERR_CRYPTO;
	t0 = probe_now();
	for (i = 0; i < n; i++) {
		if ((r = be->ops->sign(be, key, &sp, digest, dlen, &sig,
		    &sig_len)) != 0) {
			fprintf(stderr, "bench: sign %lu: %s\n", i,
			    botid_strerror(r));
			return r;
		}
		free(sig);
		sig = NULL;
	}
	dt = probe_now() - t0;
	printf("signs=%lu seconds=%.3f rate=%.0f/s\n", n, dt,
	    dt > 0 ? (double)n / dt : 0.0);
	return 0;
}

struct probe_bot {
	char			 name[32];
	struct botid_key	*key;
	uint8_t			*spki;
	size_t			 spki_len;
};

/*
 * Many bots on one TPM: every key but loaded_keys is evicted at any time,
 * so signing in random order makes the backend reload keys all along.
 */
static int
probe_cmd_many(struct botid_backend *be, const struct probe_opts *o,
    unsigned long n, const char *outdir, unsigned long rounds)
{
	struct botid_sign_params sp = { .hash = BOTID_HASH_SHA256,
	    .scheme = BOTID_SCHEME_ECDSA };
	struct botid_bot_config bot;
	struct probe_bot *bots = NULL;
	uint8_t digest[32], *sig = NULL;
	char path[BOTID_MAX_PATH];
	size_t *order = NULL, sig_len = 0, i, j, tmp;
	unsigned long round, signs = 0, verified = 0, failed = 0;
	uint32_t rnd;
	double t0, t_open, t_sign;
	int r = BOTID_ERR_ALLOC;

	if ((bots = calloc(n, sizeof(*bots))) == NULL ||
	    (order = calloc(n, sizeof(*order))) == NULL)
		goto out;
	t0 = probe_now();
	for (i = 0; i < n; i++) {
		snprintf(bots[i].name, sizeof(bots[i].name), "many-%04zu", i);
		probe_bot_init(&bot, bots[i].name, o->type);
		if ((r = be->ops->key_open(be, &bot, &bots[i].key,
		    &bots[i].spki, &bots[i].spki_len)) != 0) {
			fprintf(stderr, "many: open %s: %s\n", bots[i].name,
			    botid_strerror(r));
			goto out;
		}
		order[i] = i;
	}
	t_open = probe_now() - t0;
	t0 = probe_now();
	for (round = 0; round < rounds; round++) {
		/* Fisher-Yates with OpenSSL's RNG: a new order each round. */
		for (i = n - 1; i > 0; i--) {
			if (RAND_bytes((uint8_t *)&rnd, sizeof(rnd)) != 1) {
				r = BOTID_ERR_CRYPTO;
				goto out;
			}
			j = rnd % (i + 1);
			tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
		for (i = 0; i < n; i++) {
			struct probe_bot *b = &bots[order[i]];

			if (RAND_bytes(digest, sizeof(digest)) != 1) {
				r = BOTID_ERR_CRYPTO;
				goto out;
			}
			if ((r = be->ops->sign(be, b->key, &sp, digest,
			    sizeof(digest), &sig, &sig_len)) != 0) {
				fprintf(stderr, "many: sign %s: %s\n", b->name,
				    botid_strerror(r));
				goto out;
			}
			signs++;
			if (probe_verify(b->spki, b->spki_len, &sp, digest,
			    sizeof(digest), sig, sig_len) == 0)
				verified++;
			else {
				fprintf(stderr, "many: %s: signature does not "
				    "verify\n", b->name);
				failed++;
			}
			/* A changed digest must not verify. */
			digest[0] ^= 1;
			if (probe_verify(b->spki, b->spki_len, &sp, digest,
			    sizeof(digest), sig, sig_len) == 0) {
				fprintf(stderr, "many: %s: signature verifies "
				    "a changed digest\n", b->name);
				failed++;
			}
			digest[0] ^= 1;
			if (round + 1 == rounds && outdir != NULL) {
				snprintf(path, sizeof(path), "%s/%s.der",
				    outdir, b->name);
				if ((r = probe_write_file(path, b->spki,
				    b->spki_len)) != 0)
					goto out;
				snprintf(path, sizeof(path), "%s/%s.dgst",
				    outdir, b->name);
				if ((r = probe_write_file(path, digest,
				    sizeof(digest))) != 0)
					goto out;
				snprintf(path, sizeof(path), "%s/%s.sig",
				    outdir, b->name);
				if ((r = probe_write_file(path, sig,
				    sig_len)) != 0)
					goto out;
			}
			free(sig);
			sig = NULL;
		}
	}
	t_sign = probe_now() - t0;
	printf("bots=%lu signs=%lu verified=%lu failed=%lu "
	    "open_seconds=%.3f sign_seconds=%.3f sign_rate=%.0f/s\n", n, signs,
	    verified, failed, t_open, t_sign,
	    t_sign > 0 ? (double)signs / t_sign : 0.0);
	r = failed == 0 ? 0 : BOTID_ERR_CRYPTO;
 out:
	free(sig);
	if (bots != NULL) {
		for (i = 0; i < n; i++) {
			be->ops->key_close(be, bots[i].key);
			free(bots[i].spki);
		}
	}
	free(bots);
	free(order);
	return r;
}

/*
 * automake runs every check program as a test: alone, the probe checks
 * the failures that need no TPM (nothing listening, no state directory).
 */
static int
probe_selftest(void)
{
	struct botid_backend *be = (struct botid_backend *)1;
	char dir[] = "/tmp/tpm-backend-probe.XXXXXX", sub[64];
	struct stat st;
	int r, ok = 1;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* Port 1 on loopback: connection refused at once. */
	r = backend_tpm_open("swtpm:host=127.0.0.1,port=1", dir, 2, &be);
	if (r != BOTID_ERR_UNAVAILABLE || be != NULL) {
		fprintf(stderr, "FAIL: open without a TPM: %d (%s)\n", r,
		    botid_strerror(r));
		ok = 0;
	}
	snprintf(sub, sizeof(sub), "%s/tpm", dir);
	if (stat(sub, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    (st.st_mode & 07777) != 0700) {
		fprintf(stderr, "FAIL: %s is not a 0700 directory\n", sub);
		ok = 0;
	}
	be = (struct botid_backend *)1;
	r = backend_tpm_open(NULL, "", 2, &be);
	if (r != BOTID_ERR_CONFIG || be != NULL) {
		fprintf(stderr, "FAIL: open with no state directory: %d\n", r);
		ok = 0;
	}
	(void)rmdir(sub);
	(void)rmdir(dir);
	printf("%s: selftest without a TPM\n", ok ? "ok" : "FAIL");
	return ok ? 0 : 1;
}

static int
probe_parse_type(const char *s, enum botid_key_type *t)
{
	size_t i;

	for (i = 0; i < sizeof(probe_types) / sizeof(probe_types[0]); i++) {
		if (strcmp(s, probe_types[i].name) == 0) {
			*t = probe_types[i].type;
			return 0;
		}
	}
	return -1;
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
probe_parse_scheme(const char *s, uint32_t *v)
{
	if (strcmp(s, "ecdsa") == 0)
		*v = BOTID_SCHEME_ECDSA;
	else if (strcmp(s, "pkcs1") == 0)
		*v = BOTID_SCHEME_PKCS1;
	else if (strcmp(s, "pss") == 0)
		*v = BOTID_SCHEME_PSS;
	else if (strcmp(s, "auto") == 0)
		*v = BOTID_SCHEME_AUTO;	/* the backend must refuse it */
	else
		return -1;
	return 0;
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
		{ "tcti", required_argument, NULL, 'T' },
		{ "state", required_argument, NULL, 'd' },
		{ "type", required_argument, NULL, 'k' },
		{ "bot", required_argument, NULL, 'b' },
		{ "loaded", required_argument, NULL, 'l' },
		{ "hash", required_argument, NULL, 'H' },
		{ "scheme", required_argument, NULL, 'S' },
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "wait", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct probe_opts o = {
		.bot = "probe",
		.type = BOTID_KEY_ECDSA_P256,
		.hash = BOTID_HASH_SHA256,
		.repeat = 1,
		.loaded = 2,
	};
	struct botid_bot_config bot;
	struct botid_backend *be = NULL;
	struct botid_key *key = NULL;
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	unsigned long n, v, rounds = 3;
	const char *cmd;
	int ch, have_scheme = 0, verbose = 0, r = BOTID_ERR_INTERNAL;

	if (argc == 1)
		return probe_selftest();
	while ((ch = getopt_long(argc, argv, "T:d:k:b:l:H:S:i:o:r:w:vh",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case 'T':
			o.tcti = optarg;
			break;
		case 'd':
			o.state = optarg;
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
		case 'l':
			if (probe_parse_uint(optarg, 64, &v) != 0) {
				fprintf(stderr, "bad --loaded %s\n", optarg);
				return PROBE_EXIT_USAGE;
			}
			o.loaded = (unsigned)v;
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
		case 'r':
			if (probe_parse_uint(optarg, 1000, &o.repeat) != 0) {
				fprintf(stderr, "bad --repeat %s\n", optarg);
				return PROBE_EXIT_USAGE;
			}
			break;
		case 'w':
			o.wait = optarg;
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
	if (argc < 1 || o.state == NULL || (o.repeat > 1 && o.wait == NULL)) {
		usage(stderr);
		return PROBE_EXIT_USAGE;
	}
	if (!have_scheme)
		o.scheme = o.type == BOTID_KEY_RSA_2048 ||
		    o.type == BOTID_KEY_RSA_3072 ? BOTID_SCHEME_PKCS1 :
		    BOTID_SCHEME_ECDSA;
	cmd = argv[0];
	log_init("tpm-backend-probe", verbose ? BOTID_LOG_DEBUG :
	    BOTID_LOG_INFO, 0);
	/* The agent does the same: a TPM that hangs up must not kill us. */
	signal(SIGPIPE, SIG_IGN);

	if ((r = backend_tpm_open(o.tcti, o.state, o.loaded, &be)) != 0) {
		fprintf(stderr, "backend_tpm_open: %s\n", botid_strerror(r));
		goto out;
	}
	if (strcmp(cmd, "many") == 0) {
		if (argc < 3 || argc > 4 ||
		    probe_parse_uint(argv[1], PROBE_MAX_BOTS, &n) != 0 ||
		    (argc == 4 && probe_parse_uint(argv[3], 100, &rounds) != 0)) {
			usage(stderr);
			r = BOTID_ERR_INVALID;
			goto out;
		}
		r = probe_cmd_many(be, &o, n, argv[2], rounds);
		goto out;
	}

	probe_bot_init(&bot, o.bot, o.type);
	if ((r = be->ops->key_open(be, &bot, &key, &spki, &spki_len)) != 0) {
		fprintf(stderr, "key_open %s: %s\n", o.bot, botid_strerror(r));
		goto out;
	}
	if (strcmp(cmd, "pubkey") == 0 && argc == 2)
		r = probe_write_file(argv[1], spki, spki_len);
	else if (strcmp(cmd, "sign") == 0 && argc == 1)
		r = probe_cmd_sign(be, key, &o);
	else if (strcmp(cmd, "bench") == 0 && argc == 2 &&
	    probe_parse_uint(argv[1], 10000000, &n) == 0)
		r = probe_cmd_bench(be, key, &o, n);
	else {
		usage(stderr);
		r = BOTID_ERR_INVALID;
	}
 out:
	free(spki);
	if (be != NULL) {
		be->ops->key_close(be, key);
		be->ops->close(be);
	}
	return probe_exit(r);
}
