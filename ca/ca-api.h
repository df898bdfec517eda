/*
 * botid-ca's HTTP API (doc/ca-api.md), independent of the HTTP server:
 * one call per request, from method, path and body to status and answer.
 */
#ifndef BOTID_ATTEST_CA_API_H
#define BOTID_ATTEST_CA_API_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "ca/ca-config.h"
#include "ca/ca-db.h"
#include "ca/ca-issue.h"
#include "ca/ca-metrics.h"
#include "ca/ca-ratelimit.h"
#include "ca/ca-ssh.h"
#include "lib/limits.h"

#define CA_BODY_MAX	(64u * 1024u)

struct ca_api {
	const struct ca_config	*cfg;
	struct ca_db		*db;
	struct ca_signer	*signer;
	X509_STORE		*ek_roots;
	struct ca_metrics	 metrics;	/* this replica's, for /metrics */
	struct ca_ssh		*ssh;		/* NULL: no ssh_ca_key */
	struct ca_ratelimit	*nonce_rate;	/* per host; NULL: off */
	/* Retry-After of the last answer (seconds; 0: none), for ca-http.c. */
	unsigned		 retry_after;
	/*
	 * Bytes in the last answer's body when it is binary (the KRL: it
	 * holds NUL bytes); 0: the body is text, up to its NUL.
	 */
	size_t			 body_len;
	/* public_url, or https://LISTEN:PORT once bound (ca-http.c). */
	char			 base_url[BOTID_MAX_ISSUER + 1];
};

/* Loads the EK roots. Errors: BOTID_ERR_CONFIG (err says which file). */
int	ca_api_init(struct ca_api *api, const struct ca_config *cfg,
	    struct ca_db *db, struct ca_signer *signer, char *err,
	    size_t errlen);
void	ca_api_free(struct ca_api *api);

/*
 * An audit anchor as the API answers it (GET /v1/audit/anchor/HOST) and
 * `botid-ca audit export` writes it; NULL without memory.
 */
json_t	*ca_anchor_json(const struct ca_anchor *a);

/*
 * Answers one request, and counts it in api->metrics. Returns the HTTP
 * status; *out (malloc'd, NUL-terminated) is the body and *ctype its media
 * type; a binary body is api->body_len bytes long. peer names the client
 * in log lines.
 */
int	ca_api_handle(struct ca_api *api, const char *method, const char *path,
	    const char *body, size_t len, const char *peer, char **out,
	    const char **ctype);

#endif /* BOTID_ATTEST_CA_API_H */
