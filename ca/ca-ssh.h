/*
 * botid-ca's SSH certificate authority (doc/ca-api.md, "SSH"): an ECDSA
 * P-256 key of its own, which signs OpenSSH user certificates for bot keys
 * that hold a valid X.509 bot certificate from this CA, and the lists sshd
 * needs: the CA's public key (TrustedUserCAKeys) and the revoked bot keys
 * (RevokedKeys), as a text list and as a binary KRL.
 */
#ifndef BOTID_CA_SSH_H
#define BOTID_CA_SSH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ca_api;
struct ca_ssh;

/*
 * Loads the SSH CA key from path (a PEM private key), making a new P-256
 * key there (0600, written atomically) when the file does not exist, and
 * the X.509 CA certificate whose bot certificates it will accept from the
 * PEM bundle. Errors: BOTID_ERR_CONFIG (err says why), _IO, _ALLOC.
 */
int	ca_ssh_open(const char *path, const char *bundle_pem,
	    struct ca_ssh **sshp, char *err, size_t errlen);
void	ca_ssh_close(struct ca_ssh *ssh);

/*
 * Builds and signs an OpenSSH user certificate for the key spki:
 * key_id, one principal, serial, valid from after to before; *line is
 * "TYPE-cert-v01@openssh.com BASE64 comment" (malloc'd), *key_line the
 * plain key "TYPE BASE64". Errors: BOTID_ERR_UNSUPPORTED (key type),
 * _CRYPTO, _ALLOC, _INVALID.
 */
int	ca_ssh_certify(struct ca_ssh *ssh, const uint8_t *spki, size_t spki_len,
	    const char *key_id, const char *principal, uint64_t serial,
	    time_t after, time_t before, const char *comment, char **line,
	    char **key_line);

/*
 * Answers GET /v1/ssh/ca.pub, GET /v1/ssh/revoked-keys, GET /v1/ssh/krl
 * and POST /v1/ssh/certify (404 when no ssh_ca_key is configured).
 * Returns the HTTP status; *out (malloc'd, NUL-terminated) is the body,
 * *ctype its media type; the KRL's length is in api->body_len.
 */
int	ca_ssh_handle(struct ca_api *api, const char *method, const char *path,
	    const char *body, size_t len, const char *peer, char **out,
	    const char **ctype);

#endif /* BOTID_CA_SSH_H */
