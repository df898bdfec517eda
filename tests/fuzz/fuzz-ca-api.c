/*
 * libFuzzer harness for botid-ca's request handling (ca/ca-api.c):
 * the JSON bodies of enrolment, activation, nonce, certify and revoke
 * requests as they come off the network, and the paths and methods. A CA with its own
 * key, database and a join token ("fuzz-token") is made once in a private
 * directory. The first input byte picks the request; the rest is the body.
 * Every request must get an HTTP status and a body, a 4xx when the request
 * is at fault (never a 5xx: the CA itself does not fail here); nothing may
 * crash or leak, and no certificate may be issued or revoked (no input can hold
 * evidence or a signature from an enrolled TPM).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "ca/ca-api.h"
#include "ca/ca-config.h"
#include "ca/ca-db.h"
#include "ca/ca-issue.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"

static char ca_dir[64];
static struct ca_config *cfg;
static struct ca_db *db;
static struct ca_signer *signer;
static struct ca_api api;

static const struct {
	const char	*method;
	const char	*path;
} requests[] = {
	{ "POST", "/v1/enrol" },
	{ "POST", "/v1/activate" },
	{ "POST", "/v1/nonce" },
	{ "POST", "/v1/certify" },
	{ "GET", "/v1/bundle" },
	{ "GET", "/v1/crl" },
	{ "POST", "/v1/bundle" },
	{ "PUT", "/v1/enrol/../certify" },
	{ "POST", "/v1/revoke" },
	{ "GET", "/.well-known/jwks.json" },
	{ "GET", "/.well-known/openid-configuration" },
	{ "POST", "/v1/ssh/certify" },
	{ "GET", "/v1/ssh/ca.pub" },
	{ "GET", "/v1/ssh/revoked-keys" },
	{ "GET", "/v1/ssh/krl" },
};

#define NREQUESTS	(sizeof(requests) / sizeof(requests[0]))

/* The CA's files are the run's own: they go when it ends. */
static void
ca_dir_remove(void)
{
	static const char *const names[] = {
		"ca.conf", "ca.db", "ca.db-wal", "ca.db-shm", "ca.pem", "ca.key",
		"ssh-ca.pem"
	};
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", ca_dir, names[i]);
		(void)unlink(path);
	}
	(void)rmdir(ca_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/dev/shm/botid-fuzz-ca.XXXXXX", path[4096], err[1024];
	uint8_t hash[SHA256_DIGEST_LENGTH];
	FILE *f;
	int made = 0;

	(void)argc;
	(void)argv;
	log_init("fuzz-ca-api", BOTID_LOG_ERR, 0);
	setenv("TSS2_LOG", "all+NONE", 1);
	/* In memory: SQLite's fsync per commit would set the pace on disk. */
	if (mkdtemp(dir) == NULL) {
		memcpy(dir, "/tmp/botid-fuzz-ca.XXXXXX",
		    sizeof("/tmp/botid-fuzz-ca.XXXXXX"));
		if (mkdtemp(dir) == NULL)
			abort();
	}
	snprintf(ca_dir, sizeof(ca_dir), "%s", dir);
	atexit(ca_dir_remove);
	snprintf(path, sizeof(path), "%s/ca.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	/* The CA's own certificate stands in for an EK root. */
	fprintf(f, "[ca]\ntrust_domain = fuzz.botid\nlisten = 127.0.0.1:0\n"
	    "database = %s/ca.db\nca_cert = %s/ca.pem\nca_key = file:%s/ca.key\n"
	    "ek_root = %s/ca.pem\nssh_ca_key = %s/ssh-ca.pem\n", dir, dir, dir,
	    dir, dir);
	if (fclose(f) != 0)
		abort();
	if (ca_config_load(path, &cfg, err, sizeof(err)) != 0 ||
	    ca_db_open(cfg->database, &db, err, sizeof(err)) != 0 ||
	    ca_signer_init(cfg, &made, err, sizeof(err)) != 0 ||
	    ca_signer_open(cfg, &signer, err, sizeof(err)) != 0 ||
	    ca_api_init(&api, cfg, db, signer, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz-ca-api: setup: %s\n", err);
		abort();
	}
	SHA256((const unsigned char *)"fuzz-token", 10, hash);
	if (ca_db_token_add(db, hash, time(NULL) + 86400 * 365, NULL) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *ctype = NULL;
	char *out = NULL;
	int status;
	size_t i;

	if (size < 1)
		return 0;
	/* The first eight keep the meaning they had in the seeds. */
	i = data[0] % NREQUESTS;
	status = ca_api_handle(&api, requests[i].method, requests[i].path,
	    (const char *)data + 1, size - 1, "fuzz", &out, &ctype);
	if (getenv("FUZZ_CA_VERBOSE") != NULL)	/* to look at the seeds */
		fprintf(stderr, "%s %s -> %d %s\n", requests[i].method,
		    requests[i].path, status, out != NULL ? out : "(null)");
	FUZZ_CHECK(status >= 200 && status <= 499);
	FUZZ_CHECK(out != NULL && ctype != NULL);
	/*
	 * No input holds an enrolled TPM's evidence or signature, nor a bot
	 * certificate of this CA (it issued none) for an SSH certificate.
	 */
	if (strcmp(requests[i].path, "/v1/certify") == 0 ||
	    strcmp(requests[i].path, "/v1/revoke") == 0 ||
	    strcmp(requests[i].path, "/v1/ssh/certify") == 0)
		FUZZ_CHECK(status != 200);
	/* The KRL is binary: its length comes with it. */
	if (strcmp(requests[i].path, "/v1/ssh/krl") == 0)
		FUZZ_CHECK(status != 200 || api.body_len > 0);
	free(out);
	return 0;
}
