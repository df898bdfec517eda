/*
 * A botid-ca on SQLite in a temporary directory, for the unit tests that
 * drive ca_api_handle() directly (test-ca-revoke, test-ca-anchor): its
 * configuration, database, signer and API, and enrolled hosts whose "host
 * key" (and AK) is a software P-256 key in TPM2B_PUBLIC form.
 */
#ifndef BOTID_TESTS_CA_FIXTURE_H
#define BOTID_TESTS_CA_FIXTURE_H

#include <jansson.h>
#include <openssl/evp.h>

#include "ca/ca-api.h"
#include "ca/ca-config.h"
#include "ca/ca-db.h"
#include "ca/ca-issue.h"

struct ca_fixture {
	char			 dir[64];
	struct ca_config	*cfg;
	struct ca_db		*db;
	struct ca_signer	*signer;
	struct ca_api		 api;
};

struct ca_fixture_host {
	const char	*id;
	EVP_PKEY	*key;
};

/*
 * Makes the CA in a new directory named for test, with the lines of extra
 * (NULL: none) added to its [ca] section. 0, or -1 with the reason on
 * stderr.
 */
int	ca_fixture_open(struct ca_fixture *f, const char *test,
	    const char *extra);
/* Frees everything and removes the directory. */
void	ca_fixture_close(struct ca_fixture *f);
/* Enrols h with a new key as its AK and host key (cmocka asserts). */
void	ca_fixture_enrol(struct ca_fixture *f, struct ca_fixture_host *h);
/* h's key as a marshalled TPM2B_PUBLIC, as an agent sends it. */
void	ca_fixture_public(EVP_PKEY *key, uint8_t *out, size_t *out_len);
/*
 * Asks the API: METHOD path with body (GET: ""); the status, and the
 * answer parsed into *answer unless answer is NULL.
 */
int	ca_fixture_call(struct ca_fixture *f, const char *method,
	    const char *path, const char *body, json_t **answer);

#endif /* BOTID_TESTS_CA_FIXTURE_H */
