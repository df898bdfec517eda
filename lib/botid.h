/*
 * libbotid: sign with a bot's hardware-backed key through the botid agent.
 *
 * Link with `pkg-config --libs libbotid`. Every function returns 0 or a
 * negative BOTID_ERR_* code (botid_strerror() names it); results come back
 * through out-parameters that the caller frees with botid_free(). A
 * client handle is for one thread at a time.
 */
#ifndef BOTID_H
#define BOTID_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum botid_err {
	BOTID_OK = 0,
	BOTID_ERR_INTERNAL = -1,	/* broken invariant or unexpected failure */
	BOTID_ERR_ALLOC = -2,		/* out of memory */
	BOTID_ERR_INCOMPLETE = -3,	/* input ended early; more may come */
	BOTID_ERR_TOO_LARGE = -4,	/* a length exceeds its limit */
	BOTID_ERR_INVALID = -5,		/* malformed input or argument */
	BOTID_ERR_UNSUPPORTED = -6,	/* valid but not supported */
	BOTID_ERR_DENIED = -7,		/* the caller may not do this */
	BOTID_ERR_NOT_FOUND = -8,	/* no such bot, key, file or object */
	BOTID_ERR_IO = -9,		/* a system call failed; see errno */
	BOTID_ERR_CONFIG = -10,		/* configuration is invalid */
	BOTID_ERR_CRYPTO = -11,		/* OpenSSL reported a failure */
	BOTID_ERR_TPM = -12,		/* the TPM or TSS reported a failure */
	BOTID_ERR_PKCS11 = -13,		/* the PKCS#11 module reported a failure */
	BOTID_ERR_EXPORTABLE = -14,	/* a key is, or was ever, extractable */
	BOTID_ERR_BUSY = -15,		/* a limit on concurrent work was hit */
	BOTID_ERR_PROTOCOL = -16,	/* the peer broke the wire protocol */
	BOTID_ERR_CLOSED = -17,		/* the peer closed the connection */
	BOTID_ERR_VERSION = -18,	/* unsupported protocol version */
	BOTID_ERR_TIMEOUT = -19,	/* an operation took too long */
	BOTID_ERR_UNAVAILABLE = -20,	/* a backend is down; retry later */
};

enum botid_hash {
	BOTID_HASH_SHA256 = 1,
	BOTID_HASH_SHA384 = 2,
	BOTID_HASH_SHA512 = 3,
};

enum botid_scheme {
	BOTID_SCHEME_AUTO = 0,		/* ECDSA for EC keys, PKCS#1 v1.5 for RSA */
	BOTID_SCHEME_PKCS1 = 1,		/* RSASSA-PKCS1-v1_5 */
	BOTID_SCHEME_PSS = 2,		/* RSASSA-PSS, MGF1 same hash, salt = hash length */
	BOTID_SCHEME_ECDSA = 3,
};

enum botid_sig_format {
	BOTID_FORMAT_DER = 0,		/* ECDSA-Sig-Value; the only form for RSA */
	BOTID_FORMAT_RAW = 1,		/* ECDSA r || s, each the curve's size */
};

/* Default socket when neither an argument nor $BOTID_SOCKET names one. */
#define BOTID_DEFAULT_SOCKET	"/run/botid/agent.sock"

struct botid_client;

struct botid_bot_info {
	char	*name;
	char	*key_type;	/* "ecdsa-p256", "rsa-2048", ... */
	char	*backend;	/* "tpm" or "pkcs11" */
};

struct botid_blob {
	uint8_t	*data;
	size_t	 len;
};

/* Returns a static one-line description of an error code. */
const char *botid_strerror(int r);

/*
 * Connects to the agent at path (NULL: $BOTID_SOCKET, else the default)
 * and performs the version handshake. *cp is the caller's (botid_close()).
 * Errors: BOTID_ERR_IO (cannot connect), _VERSION, _PROTOCOL, _ALLOC.
 */
int	botid_connect(const char *path, struct botid_client **cp);

/* Closes the connection and frees c; accepts NULL. */
void	botid_close(struct botid_client *c);

/* The agent's one-line message for the last failed request, or "". */
const char *botid_message(const struct botid_client *c);

/* The agent's name and version from the handshake. */
const char *botid_agent_version(const struct botid_client *c);

/*
 * Lists the bots this process may use. *bots is an array of *nbots entries
 * (botid_bot_info_free()). Errors: transport errors, _PROTOCOL.
 */
int	botid_list(struct botid_client *c, struct botid_bot_info **bots,
	    size_t *nbots);
void	botid_bot_info_free(struct botid_bot_info *bots, size_t nbots);

/*
 * The bot's public key as DER SubjectPublicKeyInfo (botid_free()).
 * Errors: BOTID_ERR_DENIED (not allowed, or no such bot), transport errors.
 */
int	botid_pubkey(struct botid_client *c, const char *bot, uint8_t **der,
	    size_t *der_len);

/*
 * The bot's certificate chain, leaf first, DER (botid_blobs_free()); empty
 * until the agent has a certificate. Errors: as botid_pubkey().
 */
int	botid_cert_chain(struct botid_client *c, const char *bot,
	    struct botid_blob **certs, size_t *ncerts);
void	botid_blobs_free(struct botid_blob *blobs, size_t n);

/*
 * Signs a digest (its length must match hash) or data (hashed by the agent
 * with hash) with the bot's key. *sig is the caller's (botid_free()).
 * Errors: BOTID_ERR_DENIED, _UNSUPPORTED (scheme not for this key),
 * _INVALID, _UNAVAILABLE (device down), _BUSY, transport errors.
 */
int	botid_sign_digest(struct botid_client *c, const char *bot,
	    enum botid_hash hash, enum botid_scheme scheme,
	    enum botid_sig_format format, const uint8_t *digest,
	    size_t digest_len, uint8_t **sig, size_t *sig_len);
int	botid_sign_data(struct botid_client *c, const char *bot,
	    enum botid_hash hash, enum botid_scheme scheme,
	    enum botid_sig_format format, const void *data, size_t data_len,
	    uint8_t **sig, size_t *sig_len);

/* Frees memory returned by this library; accepts NULL. */
void	botid_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* BOTID_H */
