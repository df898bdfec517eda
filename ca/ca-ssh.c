/*
 * botid-ca's SSH certificates. A certificate is issued only for the key
 * of a bot certificate this CA signed, whose record says it is a bot's
 * signing certificate, unexpired, unrevoked, of an unrevoked host: it
 * binds nothing the X.509 certificate does not already bind (same key,
 * same SPIFFE ID as key id, the bot's name as the only principal, the same
 * lifetime), so no more proof than showing that certificate is needed, and
 * no host can choose its principals (doc/ca-api.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "ca/ca-api.h"
#include "ca/ca-db.h"
#include "ca/ca-krl.h"
#include "ca/ca-ssh.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/file.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/sig.h"
#include "lib/sshkey.h"

#define SSH_CERT_SUFFIX		"-cert-v01@openssh.com"
#define SSH_CERT_USER		1u
#define SSH_NONCE_LEN		32u
#define SSH_MAX_CERT		8192u	/* an RSA-4096 key's certificate fits */
#define SSH_MAX_KEY_FILE	16384u

struct ca_ssh {
	EVP_PKEY	*key;
	uint8_t		*pub;		/* the CA key's SSH blob */
	size_t		 pub_len;
	X509		*x509_ca;	/* issuer of the bot certificates */
	/* The last KRL's content and krl_version (handle_krl()). */
	uint8_t		 krl_digest[CA_KRL_DIGEST_LEN];
	uint64_t	 krl_version;
};

/* The CA key as an SSH blob, from its SubjectPublicKeyInfo. */
static int
ssh_ca_blob(struct ca_ssh *ssh)
{
	struct botid_buf b;
	enum botid_sshkey_kind kind;
	uint8_t *der = NULL;
	int n, r;

	buf_init(&b, BOTID_SSH_MAX_KEY_BLOB);
	if ((n = i2d_PUBKEY(ssh->key, &der)) <= 0) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	if ((r = sshkey_from_spki(der, (size_t)n, &b, &kind)) != 0)
		goto out;
	if (kind != BOTID_SSHKEY_ECDSA_P256) {
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	if ((ssh->pub = malloc(buf_len(&b))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	memcpy(ssh->pub, buf_ptr(&b), buf_len(&b));
	ssh->pub_len = buf_len(&b);
	r = 0;
 out:
	OPENSSL_free(der);
	buf_reset(&b);
	return r;
}

/* A new P-256 key, written to path 0600 before it is used. */
static int
ssh_ca_generate(const char *path, EVP_PKEY **keyp)
{
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	char *pem;
	long n;
	int r = BOTID_ERR_CRYPTO;

	*keyp = NULL;
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    (bio = BIO_new(BIO_s_secmem())) == NULL ||
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
	    NULL) != 1 || (n = BIO_get_mem_data(bio, &pem)) <= 0)
		goto out;
	if ((r = file_write_atomic(path, pem, (size_t)n, 0600)) != 0)
		goto out;
	log_info("ca: made a new SSH CA key in %s", path);
	*keyp = key;
	key = NULL;
	r = 0;
 out:
	BIO_free(bio);
	EVP_PKEY_free(key);
	return r;
}

int
ca_ssh_open(const char *path, const char *bundle_pem, struct ca_ssh **sshp,
    char *err, size_t errlen)
{
	struct ca_ssh *ssh = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int r;

	*sshp = NULL;
	if ((ssh = calloc(1, sizeof(*ssh))) == NULL)
		return BOTID_ERR_ALLOC;
	r = file_read(path, SSH_MAX_KEY_FILE, &data, &len);
	if (r == BOTID_ERR_NOT_FOUND)
		r = ssh_ca_generate(path, &ssh->key);
	else if (r == 0) {
		if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL ||
		    (ssh->key = PEM_read_bio_PrivateKey(bio, NULL, NULL,
		    NULL)) == NULL)
			r = BOTID_ERR_CONFIG;
		BIO_free(bio);
		bio = NULL;
	}
	if (r != 0) {
		snprintf(err, errlen, "ssh_ca_key %s: cannot %s it", path,
		    r == BOTID_ERR_CONFIG ? "read a PEM private key from" :
		    "read or make");
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if ((r = ssh_ca_blob(ssh)) != 0) {
		snprintf(err, errlen, "ssh_ca_key %s: not an ECDSA P-256 key",
		    path);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	if ((bio = BIO_new_mem_buf(bundle_pem, -1)) == NULL ||
	    (ssh->x509_ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) ==
	    NULL) {
		snprintf(err, errlen, "ssh: cannot read the CA certificate");
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	*sshp = ssh;
	ssh = NULL;
	r = 0;
 out:
	ERR_clear_error();
	BIO_free(bio);
	if (data != NULL)
		OPENSSL_cleanse(data, len);
	free(data);
	ca_ssh_close(ssh);
	return r;
}

void
ca_ssh_close(struct ca_ssh *ssh)
{
	if (ssh == NULL)
		return;
	EVP_PKEY_free(ssh->key);
	X509_free(ssh->x509_ca);
	free(ssh->pub);
	free(ssh);
}

/* "TYPE BASE64[ comment]" of an SSH blob whose type is its first string. */
static int
ssh_line(const uint8_t *blob, size_t len, const char *comment, char **line)
{
	struct botid_buf b;
	const uint8_t *type;
	size_t type_len, n;
	char *b64 = NULL;
	int r;

	*line = NULL;
	buf_init_view(&b, blob, len);
	if ((r = buf_get_string_direct(&b, &type, &type_len, 128)) != 0)
		return r;
	if ((r = base64_encode(blob, len, &b64)) != 0)
		return r;
	n = type_len + 1 + strlen(b64) + 1 +
	    (comment != NULL ? strlen(comment) : 0) + 1;
	if ((*line = malloc(n)) == NULL) {
		free(b64);
		return BOTID_ERR_ALLOC;
	}
	snprintf(*line, n, "%.*s %s%s%s", (int)type_len, (const char *)type,
	    b64, comment != NULL ? " " : "", comment != NULL ? comment : "");
	free(b64);
	return 0;
}

/* The CA's ECDSA P-256 signature over tbs, as an SSH signature string. */
static int
ssh_ca_sign(struct ca_ssh *ssh, const uint8_t *tbs, size_t tbs_len,
    struct botid_buf *out)
{
	EVP_MD_CTX *md = NULL;
	uint8_t der[80], *raw = NULL;
	size_t der_len = sizeof(der), raw_len = 0;
	int r = BOTID_ERR_CRYPTO;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ssh->key) != 1 ||
	    EVP_DigestSign(md, der, &der_len, tbs, tbs_len) != 1)
		goto out;
	if ((r = sig_ecdsa_der_to_raw(der, der_len, 32, &raw,
	    &raw_len)) != 0 ||
	    (r = sshkey_put_signature(out, BOTID_SSHKEY_ECDSA_P256,
	    "ecdsa-sha2-nistp256", raw, raw_len)) != 0)
		goto out;
	r = 0;
 out:
	ERR_clear_error();
	free(raw);
	EVP_MD_CTX_free(md);
	return r;
}

int
ca_ssh_certify(struct ca_ssh *ssh, const uint8_t *spki, size_t spki_len,
    const char *key_id, const char *principal, uint64_t serial,
    time_t after, time_t before, const char *comment, char **line,
    char **key_line)
{
	struct botid_buf key, cert, inner;
	enum botid_sshkey_kind kind;
	const uint8_t *type, *rest;
	uint8_t nonce[SSH_NONCE_LEN];
	char certtype[64];
	size_t type_len, rest_len;
	int r;

	*line = *key_line = NULL;
	buf_init(&key, BOTID_SSH_MAX_KEY_BLOB);
	buf_init(&cert, SSH_MAX_CERT);
	buf_init(&inner, 256);
	if ((r = sshkey_from_spki(spki, spki_len, &key, &kind)) != 0 ||
	    (r = ssh_line(buf_ptr(&key), buf_len(&key), NULL, key_line)) != 0)
		goto out;
	/* The certificate repeats the key's fields after its own type. */
	if ((r = buf_get_string_direct(&key, &type, &type_len, 64)) != 0)
		goto out;
	rest = buf_ptr(&key);
	rest_len = buf_len(&key);
	snprintf(certtype, sizeof(certtype), "%.*s%s", (int)type_len,
	    (const char *)type, SSH_CERT_SUFFIX);
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	if ((r = buf_put_string(&cert, certtype, strlen(certtype))) != 0 ||
	    (r = buf_put_string(&cert, nonce, sizeof(nonce))) != 0 ||
	    (r = buf_put(&cert, rest, rest_len)) != 0 ||
	    (r = buf_put_u64(&cert, serial)) != 0 ||
	    (r = buf_put_u32(&cert, SSH_CERT_USER)) != 0 ||
	    (r = buf_put_string(&cert, key_id, strlen(key_id))) != 0 ||
	    (r = buf_put_string(&inner, principal, strlen(principal))) != 0 ||
	    (r = buf_put_string(&cert, buf_ptr(&inner),
	    buf_len(&inner))) != 0 ||
	    (r = buf_put_u64(&cert, (uint64_t)after)) != 0 ||
	    (r = buf_put_u64(&cert, (uint64_t)before)) != 0 ||
	    (r = buf_put_string(&cert, NULL, 0)) != 0)	/* critical options */
		goto out;
	/* Extensions, sorted by name: a bot gets a terminal, nothing more. */
	buf_reset(&inner);
	if ((r = buf_put_string(&inner, "permit-pty", 10)) != 0 ||
	    (r = buf_put_string(&inner, NULL, 0)) != 0 ||
	    (r = buf_put_string(&cert, buf_ptr(&inner),
	    buf_len(&inner))) != 0 ||
	    (r = buf_put_string(&cert, NULL, 0)) != 0 ||	/* reserved */
	    (r = buf_put_string(&cert, ssh->pub, ssh->pub_len)) != 0)
		goto out;
	buf_reset(&inner);
	if ((r = ssh_ca_sign(ssh, buf_ptr(&cert), buf_len(&cert), &inner)) != 0)
		goto out;
	if ((r = buf_put(&cert, buf_ptr(&inner), buf_len(&inner))) != 0 ||
	    (r = ssh_line(buf_ptr(&cert), buf_len(&cert), comment,
	    line)) != 0)
		goto out;
	r = 0;
 out:
	if (r != 0) {
		free(*key_line);
		*key_line = NULL;
	}
	buf_reset(&key);
	buf_reset(&cert);
	buf_reset(&inner);
	return r;
}

static int
reply_text(char **out, const char **ctype, int status, const char *text)
{
	*ctype = "text/plain";
	*out = strdup(text);
	return status;
}

static int
reply_error(char **out, const char **ctype, const char *peer, int status,
    const char *msg)
{
	json_t *j;

	if (status >= 500)
		log_err("ca: ssh from %s failed: %s", peer, msg);
	else
		log_warn("ca: ssh from %s refused (%d): %s", peer, status, msg);
	*ctype = "application/json";
	j = json_pack("{s:s}", "error", msg);
	*out = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return status;
}

static time_t
asn1_time_t(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

struct keys_text {
	char	*text;
	size_t	 len;
	int	 failed;
};

static int
keys_append(const char *line, void *arg)
{
	struct keys_text *k = arg;
	size_t n = strlen(line);
	char *grown;

	if ((grown = realloc(k->text, k->len + n + 2)) == NULL) {
		k->failed = 1;
		return BOTID_ERR_ALLOC;
	}
	k->text = grown;
	memcpy(k->text + k->len, line, n);
	k->text[k->len + n] = '\n';
	k->len += n + 1;
	k->text[k->len] = '\0';
	return 0;
}

/*
 * An SSH certificate's serial: the low 64 bits of its X.509 serial, in
 * hex as BN_bn2hex() writes it and the database keeps it.
 */
static int
ssh_serial_from_hex(const char *hex, uint64_t *serial)
{
	size_t i, len = strlen(hex);
	uint64_t v = 0;
	char c;

	*serial = 0;
	if (len == 0)
		return BOTID_ERR_INVALID;
	for (i = 0; i < len; i++) {
		c = hex[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
		    (c >= 'a' && c <= 'f')))
			return BOTID_ERR_INVALID;
		/* Digits above the low 16 shift out of the 64 bits. */
		v = v << 4 | (uint64_t)(c <= '9' ? c - '0' :
		    (c | 0x20) - 'a' + 10);
	}
	*serial = v;
	return 0;
}

static int
krl_collect(const char *serial_hex, const char *key_line, void *arg)
{
	uint64_t serial;
	int r;

	if ((r = ssh_serial_from_hex(serial_hex, &serial)) != 0 ||
	    (r = ca_krl_add(arg, serial, key_line)) != 0) {
		log_err("ca: KRL: certificate %s: %s", serial_hex,
		    botid_strerror(r));
		return r;
	}
	return 0;
}

/*
 * GET /v1/ssh/krl: the revoked SSH certificates by serial under this CA's
 * key and their keys, as a binary KRL for sshd's RevokedKeys. A row that
 * cannot be encoded fails the request: a KRL without it would silently
 * let that key in again. krl_version changes only with the content: the
 * time in nanoseconds when this replica first served it, or one more than
 * the last, as the CRL's number (doc/ca-api.md says why).
 */
static int
handle_krl(struct ca_api *api, const char *peer, char **out,
    const char **ctype)
{
	struct ca_ssh *ssh = api->ssh;
	struct ca_krl *krl = NULL;
	struct timespec ts;
	uint8_t digest[CA_KRL_DIGEST_LEN], *bytes = NULL;
	uint64_t version;
	size_t len = 0;
	time_t now = time(NULL);
	int status, r;

	if ((r = ca_krl_new(&krl)) != 0 ||
	    (r = ca_db_ssh_revoked_certs(api->db, now, krl_collect,
	    krl)) != 0 ||
	    (r = ca_krl_digest(krl, digest)) != 0)
		goto fail;
	version = ssh->krl_version;
	if (version == 0 || memcmp(digest, ssh->krl_digest,
	    sizeof(digest)) != 0) {
		if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
			r = BOTID_ERR_IO;
			goto fail;
		}
		version = (uint64_t)ts.tv_sec * 1000000000u +
		    (uint64_t)ts.tv_nsec;
		if (version <= ssh->krl_version)
			version = ssh->krl_version + 1;
	}
	if ((r = ca_krl_encode(krl, ssh->pub, ssh->pub_len, version,
	    (uint64_t)now, "botid-ca", &bytes, &len)) != 0)
		goto fail;
	/* The API's bodies end with a NUL; a binary one says its length. */
	if ((*out = malloc(len + 1)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto fail;
	}
	memcpy(*out, bytes, len);
	(*out)[len] = '\0';
	api->body_len = len;
	memcpy(ssh->krl_digest, digest, sizeof(digest));
	ssh->krl_version = version;
	*ctype = "application/octet-stream";
	status = 200;
	goto out;
 fail:
	status = reply_error(out, ctype, peer, 500,
	    r == BOTID_ERR_TOO_LARGE ? "the KRL would exceed its size limit" :
	    r == BOTID_ERR_ALLOC ? "out of memory" : "cannot make the KRL");
 out:
	free(bytes);
	ca_krl_free(krl);
	return status;
}

/* GET /v1/ssh/revoked-keys: for sshd's RevokedKeys, possibly empty. */
static int
handle_revoked(struct ca_api *api, const char *peer, char **out,
    const char **ctype)
{
	struct keys_text k;

	memset(&k, 0, sizeof(k));
	if (ca_db_ssh_revoked_keys(api->db, time(NULL), keys_append, &k) != 0) {
		free(k.text);
		return reply_error(out, ctype, peer, 500,
		    "cannot read the revoked keys");
	}
	*ctype = "text/plain";
	*out = k.text != NULL ? k.text : strdup("");
	return 200;
}

/*
 * POST /v1/ssh/certify {"certificate": PEM}: the bot certificate must be
 * this CA's signature, and its record a valid bot signing certificate.
 */
static int
handle_certify(struct ca_api *api, const char *body, size_t len,
    const char *peer, char **out, const char **ctype)
{
	struct ca_ssh *ssh = api->ssh;
	json_error_t je;
	json_t *j = NULL, *reply;
	const char *pem;
	X509 *x = NULL;
	BIO *bio = NULL;
	BIGNUM *bn = NULL;
	EVP_PKEY *pk;
	uint8_t *spki = NULL;
	char *hex = NULL, *bot = NULL, *spiffe = NULL, *line = NULL;
	char *key_line = NULL;
	uint64_t serial = 0;
	time_t now = time(NULL), after, before;
	int n, status;

	if (len > CA_BODY_MAX) {
		status = reply_error(out, ctype, peer, 413, "body too large");
		goto out;
	}
	if ((j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    !json_is_object(j) || json_object_size(j) != 1 ||
	    (pem = json_string_value(json_object_get(j,
	    "certificate"))) == NULL) {
		status = reply_error(out, ctype, peer, 400, "bad request: "
		    "want {\"certificate\": PEM}");
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		status = reply_error(out, ctype, peer, 400, "bad request: "
		    "not a PEM certificate");
		goto out;
	}
	if ((pk = X509_get0_pubkey(ssh->x509_ca)) == NULL ||
	    X509_verify(x, pk) != 1 ||
	    X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(ssh->x509_ca)) != 0) {
		status = reply_error(out, ctype, peer, 403, "the certificate "
		    "was not issued by this CA");
		goto out;
	}
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) ==
	    NULL || (hex = BN_bn2hex(bn)) == NULL) {
		status = reply_error(out, ctype, peer, 500, "out of memory");
		goto out;
	}
	if (ca_db_ssh_cert_bot(api->db, hex, now, &bot, &spiffe) != 0) {
		status = reply_error(out, ctype, peer, 403, "not a valid bot "
		    "certificate: unknown, expired, revoked, of a revoked "
		    "host, or not a bot's signing certificate");
		goto out;
	}
	/* The low 64 bits of the X.509 serial, for ssh-keygen -L and KRLs. */
	after = asn1_time_t(X509_get0_notBefore(x));
	before = asn1_time_t(X509_get0_notAfter(x));
	if (ssh_serial_from_hex(hex, &serial) != 0 ||
	    (n = i2d_PUBKEY(X509_get0_pubkey(x), &spki)) <= 0 ||
	    after == 0 || before <= now) {
		status = reply_error(out, ctype, peer, 400, "bad request: "
		    "the certificate's key or validity cannot be read");
		goto out;
	}
	if (ca_ssh_certify(ssh, spki, (size_t)n, spiffe, bot, serial, after,
	    before, bot, &line, &key_line) != 0) {
		status = reply_error(out, ctype, peer, 400, "the bot's key "
		    "type has no SSH certificate");
		goto out;
	}
	/* Remembered for RevokedKeys once the X.509 certificate is revoked. */
	if (ca_db_ssh_key_add(api->db, hex, key_line) != 0) {
		status = reply_error(out, ctype, peer, 500, "database error");
		goto out;
	}
	log_info("ca: SSH certificate for %s (serial %s, principal %s) to %s",
	    spiffe, hex, bot, peer);
	reply = json_pack("{s:s, s:s, s:[s], s:I, s:I}", "certificate", line,
	    "key_id", spiffe, "principals", bot, "valid_after",
	    (json_int_t)after, "valid_before", (json_int_t)before);
	*ctype = "application/json";
	*out = reply != NULL ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	status = 200;
 out:
	ERR_clear_error();
	json_decref(j);
	BIO_free(bio);
	X509_free(x);
	BN_free(bn);
	OPENSSL_free(hex);
	OPENSSL_free(spki);
	free(bot);
	free(spiffe);
	free(line);
	free(key_line);
	return status;
}

int
ca_ssh_handle(struct ca_api *api, const char *method, const char *path,
    const char *body, size_t len, const char *peer, char **out,
    const char **ctype)
{
	int get = strcmp(method, "GET") == 0;
	char *line = NULL;
	int status;

	*out = NULL;
	*ctype = "application/json";
	if (api->ssh == NULL)
		return reply_error(out, ctype, peer, 404, "no such endpoint "
		    "(this CA has no ssh_ca_key)");
	if (strcmp(path, "/v1/ssh/ca.pub") == 0 && get) {
		if (ssh_line(api->ssh->pub, api->ssh->pub_len, "botid-ca",
		    &line) != 0)
			return reply_error(out, ctype, peer, 500,
			    "out of memory");
		status = reply_text(out, ctype, 200, line);
		free(line);
		if (*out != NULL && (line = realloc(*out,
		    strlen(*out) + 2)) != NULL) {
			strcat(line, "\n");
			*out = line;
		}
		return status;
	}
	if (strcmp(path, "/v1/ssh/revoked-keys") == 0 && get)
		return handle_revoked(api, peer, out, ctype);
	if (strcmp(path, "/v1/ssh/krl") == 0 && get)
		return handle_krl(api, peer, out, ctype);
	if (strcmp(path, "/v1/ssh/certify") == 0) {
		if (strcmp(method, "POST") != 0)
			return reply_error(out, ctype, peer, 405, "use POST");
		return handle_certify(api, body, len, peer, out, ctype);
	}
	if (strcmp(path, "/v1/ssh/ca.pub") == 0 ||
	    strcmp(path, "/v1/ssh/revoked-keys") == 0 ||
	    strcmp(path, "/v1/ssh/krl") == 0)
		return reply_error(out, ctype, peer, 405, "use GET");
	return reply_error(out, ctype, peer, 404, "no such endpoint");
}
