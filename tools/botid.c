/*
 * botid: command-line client for the botid agent. Lists the bots the
 * caller may use, prints their public keys and signs with them.
 */
#include "botid-config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/botid.h"

/* Exit codes, documented in botid(1). */
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2
#define EXIT_DENIED	3
#define EXIT_NOAGENT	4

#define INPUT_MAX_BYTES	(64u * 1024u * 1024u)
#define DATA_INLINE	(32u * 1024u)	/* larger inputs are hashed here */

static const char *socket_path;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: botid [--socket PATH] COMMAND [ARGS]\n"
	    "commands:\n"
	    "  list [--json]                     bots this process may use\n"
	    "  pubkey BOT [--der] [--out FILE]   a bot's public key (PEM by default)\n"
	    "  sign BOT --in FILE [--out SIG] [--digest] [--hash sha256|sha384|sha512]\n"
	    "       [--format der|raw] [--pss]   sign a file (or a digest) with BOT\n"
	    "  cert BOT [--out FILE]             a bot's certificate chain (PEM)\n"
	    "  version                           client and agent versions\n"
	    "  provision ARGS                    enrol this host (botid-provision(8))\n"
	    "The socket is --socket, else $BOTID_SOCKET, else %s.\n"
	    "Exit status: 0 ok, 1 failure, 2 usage, 3 denied, 4 agent unreachable.\n"
	    "See botid(1).\n", BOTID_DEFAULT_SOCKET);
}

static int
fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("botid: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* Exit code and message for a failed library call. */
static int
fail_op(struct botid_client *c, const char *what, int r)
{
	const char *msg = botid_message(c);

	if (r == BOTID_ERR_DENIED)
		return fail(EXIT_DENIED, "%s: denied", what);
	return fail(EXIT_FAIL, "%s: %s%s%s", what, botid_strerror(r),
	    *msg ? ": " : "", *msg ? msg : "");
}

static int
connect_agent(struct botid_client **c)
{
	const char *path = socket_path;
	int r;

	if (path == NULL && (path = getenv("BOTID_SOCKET")) == NULL)
		path = BOTID_DEFAULT_SOCKET;
	if ((r = botid_connect(path, c)) != 0) {
		if (r == BOTID_ERR_IO)
			return fail(EXIT_NOAGENT, "cannot reach the agent at %s: %s",
			    path, strerror(errno));
		return fail(EXIT_NOAGENT, "agent at %s: %s", path,
		    botid_strerror(r));
	}
	return 0;
}

static int
read_input(const char *path, uint8_t **out, size_t *len)
{
	FILE *f;
	uint8_t *p = NULL, *np;
	size_t cap = 0, n = 0, got;

	*out = NULL;
	*len = 0;
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL)
		return -1;
	for (;;) {
		if (n == cap) {
			if (cap >= INPUT_MAX_BYTES) {
				errno = EFBIG;
				goto err;
			}
			cap = cap ? cap * 2 : 65536;
			if ((np = realloc(p, cap)) == NULL)
				goto err;
			p = np;
		}
		got = fread(p + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				goto err;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	*out = p;
	*len = n;
	return 0;
 err:
	if (f != stdin)
		fclose(f);
	free(p);
	return -1;
}

/* Writes to path ("-" or NULL: stdout), refusing binary on a terminal. */
static int
write_output(const char *path, const void *p, size_t n, int binary)
{
	FILE *f;
	int ok;

	if (path == NULL || strcmp(path, "-") == 0) {
		if (binary && isatty(STDOUT_FILENO))
			return fail(EXIT_USAGE, "refusing to write binary output "
			    "to a terminal; use --out FILE");
		if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0)
			return fail(EXIT_FAIL, "stdout: %s", strerror(errno));
		return 0;
	}
	if ((f = fopen(path, "wb")) == NULL)
		return fail(EXIT_FAIL, "%s: %s", path, strerror(errno));
	ok = fwrite(p, 1, n, f) == n;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok)
		return fail(EXIT_FAIL, "%s: %s", path, strerror(errno));
	return 0;
}

static void
json_string_out(const char *s)
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

static int
cmd_list(int argc, char **argv)
{
	struct botid_client *c = NULL;
	struct botid_bot_info *bots = NULL;
	size_t n = 0, i;
	int json = 0, r;

	if (argc == 2 && strcmp(argv[1], "--json") == 0)
		json = 1;
	else if (argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_list(c, &bots, &n)) != 0) {
		r = fail_op(c, "list", r);
		goto out;
	}
	if (json)
		putchar('[');
	for (i = 0; i < n; i++) {
		const char *kt = bots[i].key_type ? bots[i].key_type : "";
		const char *be = bots[i].backend ? bots[i].backend : "";

		if (json) {
			printf("%s{\"name\":", i ? "," : "");
			json_string_out(bots[i].name);
			printf(",\"key_type\":");
			json_string_out(kt);
			printf(",\"backend\":");
			json_string_out(be);
			putchar('}');
		} else
			printf("%s\t%s\t%s\n", bots[i].name, kt, be);
	}
	if (json)
		printf("]\n");
	r = EXIT_OK;
 out:
	botid_bot_info_free(bots, n);
	botid_close(c);
	return r;
}

static int
cmd_pubkey(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "der", no_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct botid_client *c = NULL;
	const char *out = NULL;
	const unsigned char *p;
	uint8_t *der = NULL;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	char *pem;
	size_t len = 0;
	long pem_len;
	int ch, want_der = 0, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'd')
			want_der = 1;
		else if (ch == 'o')
			out = optarg;
		else
			return EXIT_USAGE;
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_pubkey(c, argv[optind], &der, &len)) != 0) {
		r = fail_op(c, "pubkey", r);
		goto out;
	}
	if (want_der) {
		r = write_output(out, der, len, 1);
		goto out;
	}
	/* Check the agent sent a real key before printing it as one. */
	p = der;
	if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != der + len) {
		r = fail(EXIT_FAIL, "pubkey: the agent sent an invalid key");
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pk) != 1 ||
	    (pem_len = BIO_get_mem_data(bio, &pem)) <= 0) {
		r = fail(EXIT_FAIL, "pubkey: cannot encode PEM");
		goto out;
	}
	r = write_output(out, pem, (size_t)pem_len, 0);
 out:
	BIO_free(bio);
	EVP_PKEY_free(pk);
	botid_free(der);
	botid_close(c);
	return r;
}

static int
cmd_cert(int argc, char **argv)
{
	struct botid_client *c = NULL;
	struct botid_blob *certs = NULL;
	const char *out = NULL;
	size_t n = 0, i;
	BIO *bio = NULL;
	char *pem;
	long pem_len;
	int r;

	if (argc == 4 && strcmp(argv[2], "--out") == 0)
		out = argv[3];
	else if (argc != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_cert_chain(c, argv[1], &certs, &n)) != 0) {
		r = fail_op(c, "cert", r);
		goto out;
	}
	if (n == 0) {
		r = fail(EXIT_FAIL, "cert: bot %s has no certificate yet", argv[1]);
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		r = fail(EXIT_FAIL, "cert: out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const unsigned char *p = certs[i].data;
		X509 *x = d2i_X509(NULL, &p, (long)certs[i].len);
		int ok = x != NULL && p == certs[i].data + certs[i].len &&
		    PEM_write_bio_X509(bio, x) == 1;

		X509_free(x);
		if (!ok) {
			r = fail(EXIT_FAIL, "cert: the agent sent an invalid certificate");
			goto out;
		}
	}
	pem_len = BIO_get_mem_data(bio, &pem);
	r = write_output(out, pem, (size_t)pem_len, 0);
 out:
	BIO_free(bio);
	botid_blobs_free(certs, n);
	botid_close(c);
	return r;
}

static int
parse_hash(const char *s, enum botid_hash *h, const EVP_MD **md)
{
	if (strcmp(s, "sha256") == 0) {
		*h = BOTID_HASH_SHA256;
		*md = EVP_sha256();
	} else if (strcmp(s, "sha384") == 0) {
		*h = BOTID_HASH_SHA384;
		*md = EVP_sha384();
	} else if (strcmp(s, "sha512") == 0) {
		*h = BOTID_HASH_SHA512;
		*md = EVP_sha512();
	} else
		return -1;
	return 0;
}

static int
cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "digest", no_argument, NULL, 'd' },
		{ "hash", required_argument, NULL, 'H' },
		{ "format", required_argument, NULL, 'f' },
		{ "pss", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct botid_client *c = NULL;
	enum botid_hash hash = BOTID_HASH_SHA256;
	enum botid_scheme scheme = BOTID_SCHEME_AUTO;
	enum botid_sig_format format = BOTID_FORMAT_DER;
	const EVP_MD *md = EVP_sha256();
	const char *in = NULL, *out = NULL, *bot;
	uint8_t *data = NULL, *sig = NULL, digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	size_t len = 0, sig_len = 0;
	int ch, is_digest = 0, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			in = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'd':
			is_digest = 1;
			break;
		case 'H':
			if (parse_hash(optarg, &hash, &md) != 0)
				return fail(EXIT_USAGE, "--hash: expected sha256, "
				    "sha384 or sha512");
			break;
		case 'f':
			if (strcmp(optarg, "der") == 0)
				format = BOTID_FORMAT_DER;
			else if (strcmp(optarg, "raw") == 0)
				format = BOTID_FORMAT_RAW;
			else
				return fail(EXIT_USAGE, "--format: expected der or raw");
			break;
		case 'p':
			scheme = BOTID_SCHEME_PSS;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || in == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	bot = argv[optind];
	if (read_input(in, &data, &len) != 0)
		return fail(EXIT_FAIL, "%s: %s", in, strerror(errno));
	if (is_digest && len != (size_t)EVP_MD_get_size(md)) {
		r = fail(EXIT_USAGE, "%s: a %s digest is %d bytes, the file has %zu",
		    in, EVP_MD_get0_name(md), EVP_MD_get_size(md), len);
		goto out;
	}
	if ((r = connect_agent(&c)) != 0)
		goto out;
	if (is_digest)
		r = botid_sign_digest(c, bot, hash, scheme, format, data, len,
		    &sig, &sig_len);
	else if (len <= DATA_INLINE)
		r = botid_sign_data(c, bot, hash, scheme, format, data, len,
		    &sig, &sig_len);
	else if (EVP_Digest(data, len, digest, &dlen, md, NULL) != 1)
		r = BOTID_ERR_CRYPTO;
	else
		r = botid_sign_digest(c, bot, hash, scheme, format, digest, dlen,
		    &sig, &sig_len);
	if (r != 0) {
		r = fail_op(c, "sign", r);
		goto out;
	}
	r = write_output(out, sig, sig_len, 1);
 out:
	botid_free(sig);
	free(data);
	botid_close(c);
	return r;
}

/*
 * Provisioning talks to the TPM and the CA, not the agent: it is its own
 * program, found in sbindir, else on PATH (a build tree, tests).
 */
static int
cmd_provision(char **argv)
{
	static const char installed[] = BOTID_SBINDIR "/botid-provision";

	argv[0] = (char *)"botid-provision";
	if (access(installed, X_OK) == 0)
		execv(installed, argv);
	execvp("botid-provision", argv);
	return fail(EXIT_FAIL, "cannot run botid-provision: %s",
	    strerror(errno));
}

static int
cmd_version(void)
{
	struct botid_client *c = NULL;
	int r;

	printf("botid %s\n", PACKAGE_VERSION);
	if ((r = connect_agent(&c)) != 0)
		return r;
	printf("agent: %s\n", botid_agent_version(c));
	botid_close(c);
	return EXIT_OK;
}

int
main(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			socket_path = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			socket_path = argv[i] + 9;
			i++;
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("botid %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	argc -= i;
	argv += i;
	if (strcmp(argv[0], "list") == 0)
		return cmd_list(argc, argv);
	if (strcmp(argv[0], "pubkey") == 0)
		return cmd_pubkey(argc, argv);
	if (strcmp(argv[0], "sign") == 0)
		return cmd_sign(argc, argv);
	if (strcmp(argv[0], "cert") == 0)
		return cmd_cert(argc, argv);
	if (strcmp(argv[0], "version") == 0)
		return cmd_version();
	if (strcmp(argv[0], "provision") == 0)
		return cmd_provision(argv);
	if (strcmp(argv[0], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	fprintf(stderr, "botid: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return EXIT_USAGE;
}
