/*
 * The agent's HTTPS client for botid-ca (doc/ca-api.md): JSON in, JSON
 * out, the CA authenticated by the bundle given at provisioning only.
 */
#ifndef BOTID_ATTEST_CA_CLIENT_H
#define BOTID_ATTEST_CA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct ca_client;

/*
 * A client for the CA at url (https://host:port) trusting only the PEM
 * certificates in bundle_path (and the key pinned in the ca-tls-pin file
 * next to it, if any). Errors: BOTID_ERR_INVALID (not https, or a
 * malformed pin file), _IO, _TOO_LARGE, _ALLOC.
 */
int	ca_client_new(const char *url, const char *bundle_path,
	    struct ca_client **cp);
void	ca_client_free(struct ca_client *c);

/*
 * Pins the CA's TLS key: "sha256//" and the base64 SHA-256 of its
 * SubjectPublicKeyInfo (botid-ca tls-pin). ca_client_new pins the key
 * saved in ca-tls-pin next to the bundle, when that file exists.
 * Errors: BOTID_ERR_INVALID (not a pin), _ALLOC.
 */
int	ca_client_pin(struct ca_client *c, const char *pin);

/* Whether pin has the form ca_client_pin takes. */
int	ca_client_pin_valid(const char *pin);

/* The file, next to the CA bundle, that holds the pin. */
#define CA_CLIENT_PIN_FILE	"ca-tls-pin"

/*
 * POSTs the JSON object req to path (e.g. "/v1/nonce") and parses the
 * answer into *resp (caller json_decref()s). On failure err holds one
 * line: the CA's own "error" text for a refusal, or why the CA could not
 * be reached. Errors: BOTID_ERR_UNAVAILABLE (unreachable, TLS failure,
 * 5xx: worth retrying), _DENIED (403, 409, 410: refused), _NOT_FOUND (404),
 * _INVALID (400, 413), _PROTOCOL (an answer that is not JSON), _ALLOC.
 */
int	ca_client_post(struct ca_client *c, const char *path, json_t *req,
	    json_t **resp, char *err, size_t errlen);

/*
 * GETs path; the body (at most 1 MiB, NUL-terminated) comes back in
 * *body. Errors as ca_client_post.
 */
int	ca_client_get(struct ca_client *c, const char *path, char **body,
	    size_t *len, char *err, size_t errlen);

/*
 * Whether the CA's answer to the last request made with c was 403 with
 * "host_revoked": true, the CA saying the host is revoked (doc/ca-api.md).
 * Asked from the thread that made the request.
 */
int	ca_client_host_revoked(const struct ca_client *c);

/*
 * Helpers for the API's base64 members: sets key to base64(data), or
 * decodes key (at most max bytes, *data malloc'd). Errors: BOTID_ERR_ALLOC;
 * _PROTOCOL for a missing or malformed member.
 */
int	ca_json_set_b64(json_t *o, const char *key, const uint8_t *data,
	    size_t len);
int	ca_json_get_b64(json_t *o, const char *key, size_t max,
	    uint8_t **data, size_t *len);

/*
 * Signs digest (SHA-256, 32 bytes) with the host key; *sig is a marshalled
 * TPMT_SIGNATURE the caller frees. Returns 0 or a BOTID_ERR_* code.
 */
typedef int (*ca_host_sign_fn)(void *arg, const uint8_t digest[32],
    uint8_t **sig, size_t *sig_len);

/*
 * Revokes, at the CA, the certificate with serial (hex) issued to host_id,
 * or the host itself when serial is NULL, with reason ("superseded",
 * "cessationOfOperation", "keyCompromise" or "unspecified"). Gets a nonce
 * from /v1/nonce, signs the revocation digest (ca-revoke.h) through
 * sign(arg), posts /v1/revoke. An already revoked certificate counts as
 * success. On failure writes one line into why. Returns 0,
 * BOTID_ERR_DENIED (403: not this host's certificate, revoked or unknown
 * host, refused signature; also 409/410), BOTID_ERR_NOT_FOUND (404: no such
 * serial), BOTID_ERR_UNAVAILABLE (CA unreachable / 5xx), or another
 * BOTID_ERR_* (_INVALID for a bad argument or a 400, _PROTOCOL, _ALLOC, or
 * what sign returned).
 */
int	ca_client_revoke(struct ca_client *c, const char *host_id,
	    const char *serial, const char *reason, ca_host_sign_fn sign,
	    void *arg, char *why, size_t whylen);

#endif /* BOTID_ATTEST_CA_CLIENT_H */
