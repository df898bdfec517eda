/*
 * botid: command-line client for the botid agent. Lists the bots the
 * caller may use, prints their public keys and signs with them.
 */
#include "botid-config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/ca-client.h"
#include "lib/auditlog.h"
#include "lib/botid.h"
#include "lib/certid.h"
#include "lib/file.h"
#include "lib/limits.h"
#include "lib/hex.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/limits.h"
#include "lib/sshkey.h"

/* Exit codes, documented in botid(1). */
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2
#define EXIT_DENIED	3
#define EXIT_NOAGENT	4
#define EXIT_UNAVAILABLE 5	/* the bot's TPM or token is down: retry */
#define EXIT_BUSY	6	/* the bot's queue is full: retry later */
/* Where ssh-config points ssh by default: beside the default socket. */
#define BOTID_DEFAULT_SSH_SOCKET "/run/botid/ssh/agent.sock"

#define INPUT_MAX_BYTES	(64u * 1024u * 1024u)
#define DATA_INLINE	(32u * 1024u)	/* larger inputs are hashed here */
#define BOTID_JWT_MAX_SCOPES	32u	/* --scope / --require-scope */

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
	    "  ssh-config BOT [--ssh-socket PATH] [--identity-file FILE]\n"
	    "       [--pubkey]                   ~/.ssh/config lines for BOT through\n"
	    "                                    the agent's ssh_socket; --pubkey:\n"
	    "                                    its OpenSSH public key line\n"
	    "  jwt BOT --aud AUD [--scope S]... [--ttl SECONDS] [--pss]\n"
	    "                                    a JWT naming BOT, for AUD\n"
	    "  sign-msg BOT --in FILE [--out FILE]\n"
	    "                                    sign FILE (JWS, detached payload)\n"
	    "  verify-jwt --bundle CA.pem --aud AUD [--require-scope S]...\n"
	    "       [--require-tpm] [--crl FILE] [--leeway SECONDS]\n"
	    "       [--expect-spiffe ID] [--issuer ISS] TOKEN|-\n"
	    "  verify-msg --bundle CA.pem --in FILE [--require-tpm] [--crl FILE]\n"
	    "       [--leeway SECONDS] [--expect-spiffe ID] SIGFILE\n"
	    "  verify-cert --bundle CA.pem [--crl FILE] [--require-tpm]\n"
	    "       [--leeway SECONDS] [--expect-spiffe ID] CHAIN.pem\n"
	    "  audit verify [--host-cert CERT.pem] [--require-sealed]\n"
	    "      [--ca URL --ca-bundle PEM | --anchor FILE] FILE...\n"
	    "                                    check an audit log's chain and\n"
	    "                                    checkpoints (rotated files oldest first)\n"
	    "  inventory [--json]                every bot, for an administrator\n"
	    "  rotate BOT                        a new key for BOT now, certified;\n"
	    "                                    the old one is destroyed later\n"
	    "  deprovision --yes                 revoke this host at the CA, destroy\n"
	    "                                    every key the agent made, stop it\n"
	    "  status                            every bot's certificate and renewal;\n"
	    "                                    exit 1 if one has no valid certificate\n"
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
	if (r == BOTID_ERR_UNAVAILABLE)
		return fail(EXIT_UNAVAILABLE, "%s: unavailable: %s%s%s", what,
		    botid_strerror(r), *msg ? ": " : "", *msg ? msg : "");
	if (r == BOTID_ERR_BUSY && botid_retry_after(c) != 0)
		return fail(EXIT_BUSY, "%s: busy: retry after %u ms%s%s", what,
		    (unsigned)botid_retry_after(c), *msg ? ": " : "",
		    *msg ? msg : "");
	if (r == BOTID_ERR_BUSY)
		return fail(EXIT_BUSY, "%s: busy%s%s", what, *msg ? ": " : "",
		    *msg ? msg : "");
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

/*
 * Refuses binary output bound for a terminal (path "-" or NULL: stdout).
 * Asked before the agent is, so that no signature is made for nothing.
 */
static int
binary_to_terminal(const char *path)
{
	if ((path == NULL || strcmp(path, "-") == 0) &&
	    isatty(STDOUT_FILENO))
		return fail(EXIT_USAGE, "refusing to write binary output "
		    "to a terminal; use --out FILE");
	return 0;
}

/* Writes to path ("-" or NULL: stdout), refusing binary on a terminal. */
static int
write_output(const char *path, const void *p, size_t n, int binary)
{
	FILE *f;
	int ok, r;

	if (path == NULL || strcmp(path, "-") == 0) {
		if (binary && (r = binary_to_terminal(path)) != 0)
			return r;
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

/* A Unix time as ISO 8601 UTC; "-" for 0 (never, none). */
static const char *
time_text(int64_t t, char *out, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, len, "-");
	return out;
}

static void
json_key_string(const char *key, const char *value)
{
	printf(",\"%s\":", key);
	if (value != NULL)
		json_string_out(value);
	else
		printf("null");
}

static void
json_key_time(const char *key, int64_t t)
{
	char tb[32];

	json_key_string(key, t > 0 ? time_text(t, tb, sizeof(tb)) : NULL);
}

static void
json_strings_out(const char *key, char *const *v, size_t n)
{
	size_t i;

	printf(",\"%s\":[", key);
	for (i = 0; i < n; i++) {
		if (i > 0)
			putchar(',');
		json_string_out(v[i]);
	}
	putchar(']');
}

static void
inventory_json(const struct botid_inventory_entry *b, size_t n)
{
	char fp[2 * sizeof(b->fingerprint) + 1];
	size_t i, j;

	putchar('[');
	for (i = 0; i < n; i++, b++) {
		printf("%s{\"name\":", i > 0 ? "," : "");
		json_string_out(b->name);
		json_key_string("backend", b->backend);
		json_key_string("key_type", b->key_type);
		if (b->has_fingerprint)
			hex_encode(b->fingerprint, sizeof(b->fingerprint), fp);
		json_key_string("fingerprint", b->has_fingerprint ? fp : NULL);
		printf(",\"key_generation\":%u", (unsigned)b->key_generation);
		printf(",\"attributes\":{");
		for (j = 0; j < b->nattrs; j++) {
			printf("%s", j > 0 ? "," : "");
			json_string_out(b->attrs[j].name);
			printf(":%s", b->attrs[j].set ? "true" : "false");
		}
		putchar('}');
		json_key_string("serial", b->serial);
		json_key_string("spiffe_id", b->spiffe_id);
		json_key_time("not_after", b->not_after);
		json_key_string("attestation", b->attestation);
		json_strings_out("allow", b->allow, b->nallow);
		json_strings_out("scopes", b->scopes, b->nscopes);
		json_key_time("last_used", b->last_used);
		printf(",\"ops\":%llu,\"denials\":%llu",
		    (unsigned long long)b->ops, (unsigned long long)b->denials);
		json_key_time("last_renewal", b->renewed);
		json_key_string("last_renewal_result", b->renewed == 0 ? NULL :
		    b->renew_ok ? "ok" : "failed");
		json_key_string("last_error", b->error);
		putchar('}');
	}
	printf("]\n");
}

/* One line of columns per bot, then its longer fields indented below. */
static void
inventory_table(const struct botid_inventory_entry *b, size_t n)
{
	char fp[2 * sizeof(b->fingerprint) + 1], na[32], lu[32];
	size_t i, j;

	printf("%-16s %-7s %-10s %-16s %-20s %-6s %8s %8s %s\n", "BOT",
	    "BACKEND", "KEY", "FINGERPRINT", "NOT-AFTER", "ATTEST", "OPS",
	    "DENIALS", "LAST-USED");
	for (i = 0; i < n; i++, b++) {
		if (b->has_fingerprint) {
			hex_encode(b->fingerprint, sizeof(b->fingerprint), fp);
			fp[16] = '\0';
		} else
			snprintf(fp, sizeof(fp), "-");
		printf("%-16s %-7s %-10s %-16s %-20s %-6s %8llu %8llu %s\n",
		    b->name, b->backend ? b->backend : "-",
		    b->key_type ? b->key_type : "-", fp,
		    time_text(b->not_after, na, sizeof(na)),
		    b->attestation ? b->attestation : "-",
		    (unsigned long long)b->ops, (unsigned long long)b->denials,
		    time_text(b->last_used, lu, sizeof(lu)));
		if (b->spiffe_id != NULL)
			printf("    spiffe id:  %s\n", b->spiffe_id);
		if (b->serial != NULL)
			printf("    serial:     %s\n", b->serial);
		printf("    key:        generation %u\n",
		    (unsigned)b->key_generation);
		printf("    attributes:");
		for (j = 0; j < b->nattrs; j++)
			printf(" %s%s", b->attrs[j].set ? "" : "!",
			    b->attrs[j].name);
		printf("%s\n", b->nattrs == 0 ? " -" : "");
		for (j = 0; j < b->nallow; j++)
			printf("    allow:      %s\n", b->allow[j]);
		if (b->nscopes > 0) {
			printf("    scopes:    ");
			for (j = 0; j < b->nscopes; j++)
				printf(" %s", b->scopes[j]);
			putchar('\n');
		}
		if (b->error != NULL)
			printf("    last error: %s\n", b->error);
	}
}

static int
cmd_inventory(int argc, char **argv)
{
	struct botid_client *c = NULL;
	struct botid_inventory_entry *bots = NULL;
	size_t n = 0;
	int json = 0, r;

	if (argc == 2 && strcmp(argv[1], "--json") == 0)
		json = 1;
	else if (argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_inventory(c, &bots, &n)) != 0) {
		r = fail_op(c, "inventory", r);
		goto out;
	}
	if (json)
		inventory_json(bots, n);
	else
		inventory_table(bots, n);
	r = EXIT_OK;
 out:
	botid_inventory_free(bots, n);
	botid_close(c);
	return r;
}

/* The end of this host: revoked, every key destroyed, agent stopped. */
static int
cmd_deprovision(int argc, char **argv)
{
	struct botid_client *c = NULL;
	int r;

	if (argc != 2 || strcmp(argv[1], "--yes") != 0) {
		fprintf(stderr, "botid: deprovision revokes this host at the CA, "
		    "destroys every key the agent made and stops the agent; "
		    "nothing can be undone: say 'botid deprovision --yes'\n");
		return EXIT_USAGE;
	}
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_deprovision(c)) != 0) {
		r = fail_op(c, "deprovision", r);
		goto out;
	}
	printf("deprovisioned: host revoked, every key destroyed, agent "
	    "stopping\n");
	r = EXIT_OK;
 out:
	botid_close(c);
	return r;
}

/* A new key for the bot now; the agent answers once it is current. */
static int
cmd_rotate(int argc, char **argv)
{
	struct botid_client *c = NULL;
	uint8_t *der = NULL;
	uint8_t fp[32];
	char hex[2 * sizeof(fp) + 1];
	size_t len = 0;
	uint32_t gen = 0;
	int r;

	if (argc != 2 || argv[1][0] == '-') {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_rotate(c, argv[1], &gen)) != 0) {
		r = fail_op(c, "rotate", r);
		goto out;
	}
	/* The key now served, as a bot would see it. */
	if (botid_pubkey(c, argv[1], &der, &len) == 0 &&
	    EVP_Digest(der, len, fp, NULL, EVP_sha256(), NULL) == 1) {
		hex_encode(fp, sizeof(fp), hex);
		printf("%s: key generation %u, fingerprint %s\n", argv[1],
		    (unsigned)gen, hex);
	} else
		printf("%s: key generation %u\n", argv[1], (unsigned)gen);
	r = EXIT_OK;
 out:
	botid_free(der);
	botid_close(c);
	return r;
}

/*
 * For monitoring: each bot's key, certificate and last renewal, and an
 * exit status of 1 when any bot lacks a valid certificate.
 */
static int
cmd_status(int argc, char **argv)
{
	struct botid_client *c = NULL;
	struct botid_inventory_entry *bots = NULL, *b;
	char fp[2 * sizeof(bots->fingerprint) + 1], na[32], rt[32];
	size_t n = 0, i, missing = 0;
	time_t now = time(NULL);
	int r;

	(void)argv;
	if (argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_inventory(c, &bots, &n)) != 0) {
		r = fail_op(c, "status", r);
		goto out;
	}
	printf("%-16s %-64s %-20s %-20s %-6s %s\n", "BOT", "KEY",
	    "NOT-AFTER", "RENEWED", "RESULT", "LAST-ERROR");
	for (i = 0; i < n; i++) {
		b = &bots[i];
		if (b->has_fingerprint)
			hex_encode(b->fingerprint, sizeof(b->fingerprint), fp);
		else
			snprintf(fp, sizeof(fp), "-");
		if (b->not_after <= (int64_t)now)
			missing++;
		printf("%-16s %-64s %-20s %-20s %-6s %s\n", b->name, fp,
		    time_text(b->not_after, na, sizeof(na)),
		    time_text(b->renewed, rt, sizeof(rt)),
		    b->renewed == 0 ? "-" : b->renew_ok ? "ok" : "failed",
		    b->error != NULL ? b->error : "-");
	}
	r = EXIT_OK;
	if (missing > 0)
		r = fail(EXIT_FAIL, "%zu of %zu bots without a valid "
		    "certificate", missing, n);
 out:
	botid_inventory_free(bots, n);
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
	if (want_der && (r = binary_to_terminal(out)) != 0)
		return r;
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
	if ((r = binary_to_terminal(out)) != 0)
		return r;
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

/* Parses a whole number of seconds within [min, max]. */
static int
parse_seconds(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
cmd_jwt(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "aud", required_argument, NULL, 'a' },
		{ "scope", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 't' },
		{ "pss", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	enum botid_scheme scheme = BOTID_SCHEME_AUTO;
	const char *scopes[BOTID_JWT_MAX_SCOPES], *aud = NULL;
	struct botid_client *c = NULL;
	unsigned long ttl = 0;
	size_t nscopes = 0;
	char *jwt = NULL;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'a')
			aud = optarg;
		else if (ch == 's') {
			if (nscopes == BOTID_JWT_MAX_SCOPES)
				return fail(EXIT_USAGE, "jwt: more than %u "
				    "--scope", BOTID_JWT_MAX_SCOPES);
			scopes[nscopes++] = optarg;
		} else if (ch == 'P')
			scheme = BOTID_SCHEME_PSS;
		else if (ch == 't') {
			if (parse_seconds(optarg, 1, UINT32_MAX, &ttl) != 0)
				return fail(EXIT_USAGE, "jwt: --ttl must be a "
				    "positive number of seconds");
		} else
			return EXIT_USAGE;
	}
	if (optind != argc - 1 || aud == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_jwt_scheme(c, argv[optind], aud, scopes, nscopes,
	    (uint32_t)ttl, scheme, &jwt)) != 0) {
		/* The agent says why a grant was refused; the caller may know. */
		if (r == BOTID_ERR_DENIED && *botid_message(c) != '\0' &&
		    strcmp(botid_message(c), "denied") != 0)
			r = fail(EXIT_DENIED, "jwt: denied: %s",
			    botid_message(c));
		else
			r = fail_op(c, "jwt", r);
		goto out;
	}
	printf("%s\n", jwt);
	r = fflush(stdout) == 0 ? EXIT_OK : fail(EXIT_FAIL, "stdout: %s",
	    strerror(errno));
 out:
	botid_free(jwt);
	botid_close(c);
	return r;
}

static int
cmd_sign_msg(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct botid_client *c = NULL;
	const char *in = NULL, *out = NULL;
	uint8_t *data = NULL;
	char *jws = NULL, *line = NULL;
	size_t len = 0;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'i')
			in = optarg;
		else if (ch == 'o')
			out = optarg;
		else
			return EXIT_USAGE;
	}
	if (optind != argc - 1 || in == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (read_input(in, &data, &len) != 0)
		return fail(EXIT_FAIL, "%s: %s", in, strerror(errno));
	if ((r = connect_agent(&c)) != 0)
		goto out;
	if ((r = botid_sign_msg(c, argv[optind], data, len, &jws)) != 0) {
		if (r == BOTID_ERR_NOT_FOUND)
			r = fail(EXIT_FAIL, "sign-msg: the bot has no "
			    "certificate yet");
		else
			r = fail_op(c, "sign-msg", r);
		goto out;
	}
	if (asprintf(&line, "%s\n", jws) == -1) {
		line = NULL;
		r = fail(EXIT_FAIL, "sign-msg: out of memory");
		goto out;
	}
	r = write_output(out, line, strlen(line), 0);
 out:
	free(line);
	botid_free(jws);
	free(data);
	botid_close(c);
	return r;
}

enum verify_kind { VERIFY_JWT, VERIFY_MSG, VERIFY_CERT };

/* Reads a token or signature: the text of a file (or stdin), trimmed. */
static int
read_token(const char *path, char **out)
{
	uint8_t *p = NULL;
	size_t len = 0;

	*out = NULL;
	if (read_input(path, &p, &len) != 0)
		return -1;
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' ||
	    p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (memchr(p, '\0', len) != NULL) {
		free(p);
		errno = EINVAL;
		return -1;
	}
	if (len == 0) {
		/* read_input may leave p NULL for empty input. */
		free(p);
		p = calloc(1, 1);
		if (p == NULL)
			return -1;
	} else {
		uint8_t *np = realloc(p, len + 1);

		if (np == NULL) {
			free(p);
			return -1;
		}
		p = np;
	}
	p[len] = '\0';
	*out = (char *)p;
	return 0;
}

/* A PEM file of certificates, leaf first, as DER blobs. */
static int
read_chain(const char *path, struct botid_blob **out, size_t *n)
{
	struct botid_blob *chain = NULL, *nc;
	unsigned char *der;
	X509 *x;
	FILE *f;
	int len;

	*out = NULL;
	*n = 0;
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		der = NULL;
		if (*n == 8 || (len = i2d_X509(x, &der)) <= 0 ||
		    (nc = reallocarray(chain, *n + 1, sizeof(*chain))) ==
		    NULL) {
			OPENSSL_free(der);
			X509_free(x);
			break;
		}
		chain = nc;
		chain[*n].len = (size_t)len;
		if ((chain[*n].data = malloc((size_t)len)) == NULL) {
			OPENSSL_free(der);
			X509_free(x);
			break;
		}
		memcpy(chain[*n].data, der, (size_t)len);
		(*n)++;
		OPENSSL_free(der);
		X509_free(x);
	}
	fclose(f);
	*out = chain;
	return 0;
}

static void
verified_print(const struct botid_verified *v)
{
	printf("{\"spiffe_id\":");
	json_string_out(v->spiffe_id);
	printf(",\"attestation\":");
	if (v->attestation != NULL)
		json_string_out(v->attestation);
	else
		printf("null");
	if (v->alg != NULL) {
		printf(",\"alg\":");
		json_string_out(v->alg);
	}
	/* The claims are JSON the verifier itself re-encoded. */
	if (v->claims != NULL)
		printf(",\"claims\":%s", v->claims);
	printf("}\n");
}

static int
cmd_verify(int argc, char **argv, enum verify_kind kind)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "aud", required_argument, NULL, 'a' },
		{ "require-scope", required_argument, NULL, 's' },
		{ "require-tpm", no_argument, NULL, 'T' },
		{ "crl", required_argument, NULL, 'c' },
		{ "leeway", required_argument, NULL, 'l' },
		{ "expect-spiffe", required_argument, NULL, 'e' },
		{ "in", required_argument, NULL, 'i' },
		{ "issuer", required_argument, NULL, 'I' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = {
		"verify-jwt", "verify-msg", "verify-cert"
	};
	const char *name = names[kind], *scopes[BOTID_JWT_MAX_SCOPES];
	const char *in = NULL;
	struct botid_verify_opts o;
	struct botid_verified *v = NULL;
	struct botid_blob *chain = NULL;
	unsigned long leeway = BOTID_DEFAULT_LEEWAY;
	uint8_t *data = NULL;
	size_t nscopes = 0, nchain = 0, len = 0, i;
	char *text = NULL, err[256];
	int ch, r;

	memset(&o, 0, sizeof(o));
	err[0] = '\0';
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			o.bundle = optarg;
			break;
		case 'a':
			o.audience = optarg;
			break;
		case 's':
			if (nscopes == BOTID_JWT_MAX_SCOPES)
				return fail(EXIT_USAGE, "%s: too many "
				    "--require-scope", name);
			scopes[nscopes++] = optarg;
			break;
		case 'T':
			o.require_tpm = 1;
			break;
		case 'c':
			o.crl = optarg;
			break;
		case 'l':
			if (parse_seconds(optarg, 0, 86400, &leeway) != 0)
				return fail(EXIT_USAGE, "%s: --leeway must be "
				    "0 to 86400 seconds", name);
			break;
		case 'e':
			o.spiffe_id = optarg;
			break;
		case 'i':
			in = optarg;
			break;
		case 'I':
			o.issuer = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	o.scopes = scopes;
	o.nscopes = nscopes;
	o.leeway = (long)leeway;
	if (optind != argc - 1 || o.bundle == NULL ||
	    (kind == VERIFY_JWT) != (o.audience != NULL) ||
	    (kind != VERIFY_JWT && (nscopes > 0 || o.issuer != NULL)) ||
	    (kind == VERIFY_MSG) != (in != NULL)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (kind == VERIFY_CERT) {
		if (read_chain(argv[optind], &chain, &nchain) != 0) {
			r = fail(EXIT_FAIL, "%s: %s: %s", name, argv[optind],
			    strerror(errno));
			goto out;
		}
		r = botid_verify_cert(&o, chain, nchain, &v, err, sizeof(err));
	} else {
		/*
		 * TOKEN is '-' (standard input), a file that exists, or else
		 * the token itself.
		 */
		if (kind == VERIFY_JWT && strcmp(argv[optind], "-") != 0 &&
		    access(argv[optind], F_OK) != 0) {
			if ((text = strdup(argv[optind])) == NULL) {
				r = fail(EXIT_FAIL, "%s: out of memory", name);
				goto out;
			}
		} else if (read_token(argv[optind], &text) != 0) {
			r = fail(EXIT_FAIL, "%s: %s: %s", name, argv[optind],
			    strerror(errno));
			goto out;
		}
		if (kind == VERIFY_JWT)
			r = botid_verify_jwt(&o, text, &v, err, sizeof(err));
		else {
			if (read_input(in, &data, &len) != 0) {
				r = fail(EXIT_FAIL, "%s: %s: %s", name, in,
				    strerror(errno));
				goto out;
			}
			r = botid_verify_msg(&o, data, len, text, &v, err,
			    sizeof(err));
		}
	}
	if (r != 0) {
		r = fail(EXIT_FAIL, "%s: rejected: %s", name,
		    err[0] != '\0' ? err : botid_strerror(r));
		goto out;
	}
	verified_print(v);
	r = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
 out:
	botid_verified_free(v);
	for (i = 0; i < nchain; i++)
		free(chain[i].data);
	free(chain);
	free(data);
	free(text);
	return r;
}

/* The public key of the first certificate in a PEM file. */
static EVP_PKEY *
read_cert_key(const char *path)
{
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	if ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		pk = X509_get_pubkey(x);
	X509_free(x);
	fclose(f);
	return pk;
}

/*
 * The anchor an exported file or the CA holds: {"host_id", "number",
 * "checkpoint", ...}, the checkpoint line checked against key.
 */
static int
anchor_parse(const char *text, size_t len, EVP_PKEY *key, const char *source,
    struct auditlog_anchor *a)
{
	json_error_t je;
	json_t *j;
	const char *line;
	int r;

	if ((j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    json_unpack(j, "{s:s}", "checkpoint", &line) != 0) {
		json_decref(j);
		return fail(EXIT_FAIL, "audit verify: %s: not an audit anchor",
		    source);
	}
	r = auditlog_checkpoint_check((const uint8_t *)line, strlen(line), key,
	    a);
	json_decref(j);
	if (r == BOTID_ERR_DENIED)
		return fail(EXIT_FAIL, "audit verify: %s: the anchored "
		    "checkpoint is not signed by the host certificate's key",
		    source);
	if (r != 0)
		return fail(EXIT_FAIL, "audit verify: %s: the anchor is not a "
		    "signed version 2 checkpoint", source);
	return EXIT_OK;
}

/* The host id in the host certificate's SPIFFE ID (.../host/ID). */
static char *
cert_host_id(const char *path)
{
	FILE *f;
	X509 *x = NULL;
	unsigned char *der = NULL;
	char *spiffe = NULL, *id = NULL;
	const char *p;
	int len;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL || (len = i2d_X509(x, &der)) <= 0 ||
	    certid_spiffe_id(der, (size_t)len, &spiffe) != 0 ||
	    (p = strstr(spiffe, "/host/")) == NULL)
		goto out;
	id = strdup(p + 6);
 out:
	free(spiffe);
	OPENSSL_free(der);
	X509_free(x);
	return id;
}

/* Reads the anchor from --anchor FILE or the CA at url into *a. */
static int
anchor_load(const char *file, const char *url, const char *bundle,
    const char *cert, EVP_PKEY *key, struct auditlog_anchor *a)
{
	struct ca_client *c = NULL;
	char err[512], path[64], *body = NULL, *id = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	if (file != NULL) {
		if ((r = file_read(file, BOTID_MAX_AUDIT_LINE * 2, &data,
		    &len)) != 0)
			return fail(EXIT_FAIL, "audit verify: %s: %s", file,
			    botid_strerror(r));
		r = anchor_parse((char *)data, len, key, file, a);
		free(data);
		return r;
	}
	if ((id = cert_host_id(cert)) == NULL) {
		r = fail(EXIT_FAIL, "audit verify: %s: no host SPIFFE ID",
		    cert);
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/audit/anchor/%.20s", id);
	if ((r = ca_client_new(url, bundle, &c)) != 0) {
		r = fail(EXIT_USAGE, "audit verify: --ca %s: not an https URL",
		    url);
		goto out;
	}
	if ((r = ca_client_get(c, path, &body, &len, err, sizeof(err))) != 0) {
		r = fail(EXIT_FAIL, "audit verify: %s: %s", url, err);
		goto out;
	}
	r = anchor_parse(body, len, key, url, a);
 out:
	free(body);
	free(id);
	ca_client_free(c);
	return r;
}

/* Each failure the verifier finds, on a line of its own. */
static void
audit_report(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "botid: audit verify: %s\n", line);
}

static int
cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host-cert", required_argument, NULL, 'c' },
		{ "require-sealed", no_argument, NULL, 's' },
		{ "ca", required_argument, NULL, 'u' },
		{ "ca-bundle", required_argument, NULL, 'b' },
		{ "anchor", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct auditlog_verifier *v = NULL;
	struct auditlog_summary sum;
	struct auditlog_anchor anchor;
	const char *cert = NULL, *ca_url = NULL, *bundle = NULL, *afile = NULL;
	const char *source = NULL;
	EVP_PKEY *key = NULL;
	char err[768];
	int ch, i, sealed = 0, r;

	err[0] = '\0';
	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cert = optarg;
			break;
		case 's':
			sealed = 1;
			break;
		case 'u':
			ca_url = optarg;
			break;
		case 'b':
			bundle = optarg;
			break;
		case 'a':
			afile = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (sealed && cert == NULL)
		return fail(EXIT_USAGE, "audit verify: --require-sealed needs "
		    "--host-cert");
	if ((ca_url != NULL || afile != NULL) && cert == NULL)
		return fail(EXIT_USAGE, "audit verify: --ca and --anchor need "
		    "--host-cert");
	if ((ca_url != NULL) != (bundle != NULL) ||
	    (ca_url != NULL && afile != NULL))
		return fail(EXIT_USAGE, "audit verify: give --ca with "
		    "--ca-bundle, or --anchor");
	if (cert != NULL && (key = read_cert_key(cert)) == NULL)
		return fail(EXIT_FAIL, "audit verify: %s: no certificate with "
		    "a usable public key", cert);
	if ((r = auditlog_verifier_new(key, &v)) != 0) {
		r = fail(EXIT_FAIL, "audit verify: %s", botid_strerror(r));
		goto out;
	}
	if (ca_url != NULL || afile != NULL) {
		source = ca_url != NULL ? ca_url : afile;
		if ((r = anchor_load(afile, ca_url, bundle, cert, key,
		    &anchor)) != EXIT_OK)
			goto out;
		if (auditlog_verifier_set_anchor(v, &anchor, source) != 0) {
			r = fail(EXIT_FAIL, "audit verify: out of memory");
			goto out;
		}
	}
	auditlog_verifier_set_report(v, audit_report, NULL);
	/* Every file, so that each place in doubt is named. */
	for (i = optind; i < argc; i++)
		(void)auditlog_verify_file(v, argv[i], err, sizeof(err));
	if (auditlog_verify_end(v, sealed, &sum, err, sizeof(err)) != 0) {
		r = EXIT_FAIL;	/* each failure is on stderr already */
		goto out;
	}
	printf("OK: %" PRIu64 " entries, seq %" PRIu64 " to %" PRIu64 ", %"
	    PRIu64 " checkpoints", sum.entries, sum.first_seq, sum.last_seq,
	    sum.checkpoints);
	if (key != NULL)
		printf(", %" PRIu64 " signatures verified", sum.signed_checkpoints);
	else
		printf(", signatures not checked (no --host-cert)");
	if (sum.have_seal)
		printf("; sealed through seq %" PRIu64, sum.sealed_seq);
	if (sum.unsealed > 0)
		printf("; %" PRIu64 " entries after it unsealed", sum.unsealed);
	else if (sum.ends_sealed)
		printf("; ends with a final checkpoint");
	if (sum.first_seq != 0)
		printf("; the chain continues from seq %" PRIu64 " in an "
		    "earlier file", sum.first_seq - 1);
	if (source != NULL)
		printf("; the newest anchored checkpoint, number %" PRIu64
		    ", is %s", anchor.number, sum.anchor_seen ? "in it" :
		    "before the files given");
	printf("\n");
	if (sum.v1_checkpoints > 0)
		fprintf(stderr, "botid: audit verify: warning: %" PRIu64
		    " version 1 checkpoints, verified under the old rules: "
		    "their reason and time are not signed\n",
		    sum.v1_checkpoints);
	r = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
 out:
	auditlog_verifier_free(v);
	EVP_PKEY_free(key);
	return r;
}

/*
 * What a user puts in ~/.ssh/config (or a unit's environment) to use BOT
 * through the agent's ssh_socket; --pubkey prints the key line that
 * IdentityFile names, so ssh offers that bot alone.
 */
static int
cmd_ssh_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ssh-socket", required_argument, NULL, 's' },
		{ "identity-file", required_argument, NULL, 'i' },
		{ "pubkey", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct botid_client *c = NULL;
	struct botid_buf blob;
	enum botid_sshkey_kind kind;
	const char *sock = BOTID_DEFAULT_SSH_SOCKET, *idfile = NULL, *bot;
	char fp[BOTID_SSHKEY_FP_LEN], *b64 = NULL, idbuf[BOTID_MAX_PATH];
	uint8_t *der = NULL;
	size_t len = 0;
	int ch, pubkey_only = 0, r;

	buf_init(&blob, BOTID_SSH_MAX_KEY_BLOB);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 's')
			sock = optarg;
		else if (ch == 'i')
			idfile = optarg;
		else if (ch == 'p')
			pubkey_only = 1;
		else
			return EXIT_USAGE;
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	bot = argv[optind];
	if ((r = connect_agent(&c)) != 0)
		return r;
	if ((r = botid_pubkey(c, bot, &der, &len)) != 0) {
		r = fail_op(c, "ssh-config", r);
		goto out;
	}
	if (sshkey_from_spki(der, len, &blob, &kind) != 0 ||
	    sshkey_fingerprint(buf_ptr(&blob), buf_len(&blob), fp) != 0 ||
	    base64_encode(buf_ptr(&blob), buf_len(&blob), &b64) != 0) {
		r = fail(EXIT_FAIL, "ssh-config: the bot's key has no SSH form");
		goto out;
	}
	if (pubkey_only) {
		printf("%s %s %s\n", sshkey_type_name(kind), b64, bot);
		r = fflush(stdout) == 0 ? 0 : fail(EXIT_FAIL,
		    "ssh-config: cannot write: %s", strerror(errno));
		goto out;
	}
	if (idfile == NULL) {
		snprintf(idbuf, sizeof(idbuf), "~/.ssh/botid-%s.pub", bot);
		idfile = idbuf;
	}
	printf("# bot %s, key %s %s, through the botid agent\n"
	    "# first: botid ssh-config %s --pubkey > %s\n"
	    "Host botid-%s\n"
	    "\tIdentityAgent %s\n"
	    "\tIdentityFile %s\n"
	    "\tIdentitiesOnly yes\n"
	    "# or in a unit or the environment (every bot the process may"
	    " use):\n"
	    "#   Environment=SSH_AUTH_SOCK=%s\n",
	    bot, sshkey_type_name(kind), fp, bot, idfile, bot, sock, idfile,
	    sock);
	r = fflush(stdout) == 0 ? 0 : fail(EXIT_FAIL,
	    "ssh-config: cannot write: %s", strerror(errno));
 out:
	free(b64);
	buf_reset(&blob);
	botid_free(der);
	botid_close(c);
	return r;
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
	if (strcmp(argv[0], "ssh-config") == 0)
		return cmd_ssh_config(argc, argv);
	if (strcmp(argv[0], "sign") == 0)
		return cmd_sign(argc, argv);
	if (strcmp(argv[0], "cert") == 0)
		return cmd_cert(argc, argv);
	if (strcmp(argv[0], "jwt") == 0)
		return cmd_jwt(argc, argv);
	if (strcmp(argv[0], "sign-msg") == 0)
		return cmd_sign_msg(argc, argv);
	if (strcmp(argv[0], "verify-jwt") == 0)
		return cmd_verify(argc, argv, VERIFY_JWT);
	if (strcmp(argv[0], "verify-msg") == 0)
		return cmd_verify(argc, argv, VERIFY_MSG);
	if (strcmp(argv[0], "verify-cert") == 0)
		return cmd_verify(argc, argv, VERIFY_CERT);
	if (strcmp(argv[0], "audit") == 0)
		return cmd_audit(argc, argv);
	if (strcmp(argv[0], "inventory") == 0)
		return cmd_inventory(argc, argv);
	if (strcmp(argv[0], "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(argv[0], "rotate") == 0)
		return cmd_rotate(argc, argv);
	if (strcmp(argv[0], "deprovision") == 0)
		return cmd_deprovision(argc, argv);
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
