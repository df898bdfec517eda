/*
 * botid-ca: the attesting CA. `serve` answers agents over HTTPS; `init`,
 * `token create`, `revoke` and `inventory` are the operator's commands and
 * work on the same database while the daemon runs.
 */
#include "botid-config.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ca/ca-api.h"
#include "ca/ca-config.h"
#include "ca/ca-db.h"
#include "ca/ca-http.h"
#include "ca/ca-issue.h"
#include "lib/botid.h"
#include "lib/limits.h"
#include "lib/log.h"

#define DEFAULT_CONFIG	BOTID_SYSCONFDIR "/botid/ca.conf"
#define TOKEN_BYTES	24

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: botid-ca COMMAND [-c CONFIG] [ARGS]\n"
	    "commands:\n"
	    "  init                          create the CA key (file), certificate\n"
	    "                                and database if absent\n"
	    "  serve [--port-file FILE] [-v] answer agents over HTTPS\n"
	    "  token create --ttl DURATION [--bots a,b]\n"
	    "                                print a single-use join token\n"
	    "  revoke host HOST_ID | bot SPIFFE_ID\n"
	    "  inventory                     hosts and the certificates issued\n"
	    "  host approve-boot HOST_ID     accept a host's changed boot state\n"
	    "CONFIG defaults to %s. See botid-ca(8).\n", DEFAULT_CONFIG);
}

static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("botid-ca: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int
load(const char *path, struct ca_config **cfg, struct ca_db **db)
{
	char err[1024];

	if (ca_config_load(path, cfg, err, sizeof(err)) != 0)
		return fail("%s", err);
	if (db != NULL && ca_db_open((*cfg)->database, db, err,
	    sizeof(err)) != 0)
		return fail("%s", err);
	return 0;
}

static int
cmd_init(const char *conf)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	char err[1024];
	int made = 0, r = 1;

	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (ca_signer_init(cfg, &made, err, sizeof(err)) != 0) {
		fail("%s", err);
		goto out;
	}
	if (made & 1)
		printf("created the CA key %s\n", cfg->ca_key + 5);
	if (made & 2)
		printf("created the CA certificate %s\n", cfg->ca_cert);
	if (made == 0)
		printf("CA certificate %s exists; nothing changed\n",
		    cfg->ca_cert);
	/* A PostgreSQL URI may carry a password: not echoed. */
	if (ca_db_is_postgres(cfg->database))
		printf("database (PostgreSQL) ready\n");
	else
		printf("database %s ready\n", cfg->database);
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

static int
cmd_serve(const char *conf, const char *port_file)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	struct ca_signer *signer = NULL;
	struct ca_api api;
	char err[1024];
	int r = 1;

	memset(&api, 0, sizeof(api));
	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (ca_signer_open(cfg, &signer, err, sizeof(err)) != 0 ||
	    ca_api_init(&api, cfg, db, signer, err, sizeof(err)) != 0) {
		fail("%s", err);
		goto out;
	}
	if (ca_http_serve(&api, cfg->listen_host, cfg->listen_port,
	    port_file) != 0)
		goto out;
	r = 0;
 out:
	ca_api_free(&api);
	ca_signer_close(signer);
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

static int
bots_valid(const char *list)
{
	size_t i, n = 0;

	for (i = 0; list[i] != '\0'; i++) {
		char ch = list[i];

		if (ch == ',') {
			if (n == 0)
				return 0;
			n = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.') || ++n > BOTID_MAX_BOT_NAME)
			return 0;
	}
	return n > 0;
}

static int
cmd_token(const char *conf, const char *ttl, const char *bots)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	uint8_t raw[TOKEN_BYTES], hash[32];
	char token[2 * TOKEN_BYTES + 1];
	long secs;
	size_t i;
	int r = 1;

	if (ttl == NULL ||
	    ca_duration_parse(ttl, 1, 366L * 86400, &secs) != 0)
		return fail("token create: --ttl DURATION is required "
		    "(e.g. 3600, 30m, 1h, 7d; at most a year)");
	if (bots != NULL && !bots_valid(bots))
		return fail("token create: --bots must be bot names separated "
		    "by commas");
	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		fail("no randomness");
		goto out;
	}
	for (i = 0; i < sizeof(raw); i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	/* Only the hash is kept: a copy of the database enrols nobody. */
	if (EVP_Digest(token, strlen(token), hash, NULL, EVP_sha256(),
	    NULL) != 1 ||
	    ca_db_token_add(db, hash, time(NULL) + secs, bots) != 0) {
		fail("cannot record the token");
		goto out;
	}
	printf("%s\n", token);
	r = 0;
 out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(token, sizeof(token));
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

static int
cmd_revoke(const char *conf, const char *kind, const char *what)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	int n = 0, r = 1, rc;

	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (strcmp(kind, "host") == 0) {
		rc = ca_db_host_revoke(db, what, time(NULL));
		if (rc == BOTID_ERR_NOT_FOUND) {
			fail("revoke: no enrolled, unrevoked host %s", what);
			goto out;
		}
		if (rc != 0) {
			fail("revoke: database error");
			goto out;
		}
		printf("host %s revoked, with every certificate issued to it\n",
		    what);
	} else if (strcmp(kind, "bot") == 0) {
		if (strncmp(what, "spiffe://", 9) != 0) {
			fail("revoke bot: give the bot's SPIFFE ID");
			goto out;
		}
		if (ca_db_cert_revoke_spiffe(db, what, time(NULL), &n) != 0) {
			fail("revoke: database error");
			goto out;
		}
		if (n == 0) {
			fail("revoke: no unrevoked certificate for %s", what);
			goto out;
		}
		printf("%d certificate(s) for %s revoked\n", n, what);
	} else {
		fail("revoke: host HOST_ID or bot SPIFFE_ID");
		goto out;
	}
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

static int
cmd_inventory(const char *conf)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	int r = 1;

	if (load(conf, &cfg, &db) == 0 && ca_db_inventory(db, stdout) == 0 &&
	    (cfg->pcr.mode == CA_PCR_NONE || (putchar('\n') != EOF &&
	    ca_db_boot_inventory(db, stdout) == 0)))
		r = 0;
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

/* `host approve-boot HOST`: the host's last quoted PCRs become golden. */
static int
cmd_host(const char *conf, const char *verb, const char *host)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	int r = 1, rc;

	if (strcmp(verb, "approve-boot") != 0) {
		usage(stderr);
		return 2;
	}
	if (load(conf, &cfg, &db) != 0)
		goto out;
	rc = ca_db_boot_approve(db, host, time(NULL));
	if (rc == BOTID_ERR_NOT_FOUND) {
		fail("approve-boot: no quote recorded for host %s", host);
		goto out;
	}
	if (rc != 0) {
		fail("approve-boot: database error");
		goto out;
	}
	log_info("ca: host %s: boot state approved by the operator", host);
	printf("host %s: its last quoted PCR values are now its golden "
	    "values\n", host);
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "ttl", required_argument, NULL, 't' },
		{ "bots", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = DEFAULT_CONFIG, *port_file = NULL, *ttl = NULL;
	const char *bots = NULL, *cmd;
	struct rlimit no_core = { 0, 0 };
	int ch, verbose = 0;

	/* The CA key may be in memory: no core dumps, no ptrace by peers. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    setrlimit(RLIMIT_CORE, &no_core) == -1)
		return fail("cannot disable core dumps: %s", strerror(errno));

	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	argc--;
	argv++;
	if (strcmp(cmd, "token") == 0) {
		if (argc < 2 || strcmp(argv[1], "create") != 0) {
			usage(stderr);
			return 2;
		}
		argc--;
		argv++;
	}
	while ((ch = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'p': port_file = optarg; break;
		case 't': ttl = optarg; break;
		case 'b': bots = optarg; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	log_init("botid-ca", verbose || strcmp(cmd, "serve") == 0 ?
	    BOTID_LOG_INFO : BOTID_LOG_WARN, 0);
	if (strcmp(cmd, "init") == 0 && optind == argc)
		return cmd_init(conf);
	if (strcmp(cmd, "serve") == 0 && optind == argc)
		return cmd_serve(conf, port_file);
	if (strcmp(cmd, "token") == 0 && optind == argc)
		return cmd_token(conf, ttl, bots);
	if (strcmp(cmd, "revoke") == 0 && optind + 2 == argc)
		return cmd_revoke(conf, argv[optind], argv[optind + 1]);
	if (strcmp(cmd, "inventory") == 0 && optind == argc)
		return cmd_inventory(conf);
	if (strcmp(cmd, "host") == 0 && optind + 2 == argc)
		return cmd_host(conf, argv[optind], argv[optind + 1]);
	usage(stderr);
	return 2;
}
