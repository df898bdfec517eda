/*
 * Certificates from botid-ca (ca-issue.h). Why it is built this way:
 *  - Extensions are added one by one from code, never from a config file,
 *    so a certificate's content is exactly what doc/ca-api.md promises:
 *    CA:FALSE, critical digitalSignature, clientAuth (bots also
 *    serverAuth), one critical URI SAN (the SPIFFE ID), and the
 *    attestation kind.
 *  - Host and bot certificates have an empty subject: a host chooses its
 *    bot names, and a CN like "ca.example" would be taken for a host name
 *    by TLS clients that fall back to the CN when there is no DNS SAN.
 *    With no CN and no DNS or IP SAN, no such certificate matches any
 *    host name, so none can pass as botid-ca's TLS server.
 *  - Lifetimes are clamped to the CA certificate's, and notBefore is a
 *    minute back to absorb small clock differences.
 *  - The CA key may be a token object: libp11 gives an EVP_PKEY whose
 *    signing runs in the token, so no CA private key ever needs a file.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libp11.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ca-issue.h"
#include "lib/botid.h"
#include "lib/file.h"
#include "lib/log.h"

#define CA_CERT_DAYS	3650
#define PIN_MAX		256

struct ca_signer {
	EVP_PKEY	*key;
	X509		*cert;
	char		*bundle;	/* PEM of cert */
	EVP_PKEY	*tls_key;	/* tls_key; NULL: the CA issues one */
	X509		*tls_cert;	/* NULL: made at start */
	PKCS11_CTX	*p11;
	PKCS11_SLOT	*slots;
	unsigned int	 nslots;
	struct crl_cache {		/* the last CRL signed (ca_crl()) */
		char		*pem;
		uint8_t		 digest[32];	/* of its entries */
		time_t		 this_update;
		uint64_t	 number;
	}		 crl;
};

static int
crypto_fail(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();

	snprintf(err, errlen, "%s: %s", what, e != 0 ?
	    ERR_reason_error_string(e) : "failed");
	ERR_clear_error();
	return BOTID_ERR_CRYPTO;
}

/* Loads the key from the token: module, token label, key label, PIN file. */
static int
key_pkcs11(struct ca_signer *s, const struct ca_config *c, char *err,
    size_t errlen)
{
	PKCS11_SLOT *slot = NULL;
	PKCS11_KEY *keys = NULL;
	unsigned int nkeys = 0, i;
	uint8_t *pin = NULL;
	size_t pin_len = 0;
	int r;

	if ((s->p11 = PKCS11_CTX_new()) == NULL)
		return BOTID_ERR_ALLOC;
	if (PKCS11_CTX_load(s->p11, c->pkcs11_module) != 0) {
		snprintf(err, errlen, "%s: cannot load this PKCS#11 module",
		    c->pkcs11_module);
		return BOTID_ERR_PKCS11;
	}
	if (PKCS11_enumerate_slots(s->p11, &s->slots, &s->nslots) != 0) {
		snprintf(err, errlen, "%s: cannot list slots",
		    c->pkcs11_module);
		return BOTID_ERR_PKCS11;
	}
	for (i = 0; i < s->nslots; i++)
		if (s->slots[i].token != NULL &&
		    strcmp(s->slots[i].token->label, c->pkcs11_token) == 0)
			slot = &s->slots[i];
	if (slot == NULL) {
		snprintf(err, errlen, "no token labelled '%s' in %s",
		    c->pkcs11_token, c->pkcs11_module);
		return BOTID_ERR_NOT_FOUND;
	}
	if ((r = file_read(c->pkcs11_pin_file, PIN_MAX, &pin, &pin_len)) != 0) {
		snprintf(err, errlen, "%s: cannot read the PIN",
		    c->pkcs11_pin_file);
		return BOTID_ERR_IO;
	}
	pin[strcspn((char *)pin, "\r\n")] = '\0';
	r = PKCS11_open_session(slot, 0) != 0 ||
	    PKCS11_login(slot, 0, (const char *)pin) != 0;
	OPENSSL_cleanse(pin, pin_len);
	free(pin);
	if (r) {
		snprintf(err, errlen, "token '%s': login refused",
		    c->pkcs11_token);
		return BOTID_ERR_DENIED;
	}
	if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0)
		nkeys = 0;
	for (i = 0; i < nkeys; i++)
		if (keys[i].label != NULL &&
		    strcmp(keys[i].label, c->pkcs11_key_label) == 0)
			s->key = PKCS11_get_private_key(&keys[i]);
	if (s->key == NULL) {
		snprintf(err, errlen, "token '%s': no private key labelled '%s'",
		    c->pkcs11_token, c->pkcs11_key_label);
		return BOTID_ERR_NOT_FOUND;
	}
	return 0;
}

static int
pem_key_load(const char *path, EVP_PKEY **k, char *err, size_t errlen)
{
	BIO *b;

	if ((b = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return BOTID_ERR_IO;
	}
	*k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (*k == NULL)
		return crypto_fail(err, errlen, path);
	return 0;
}

static int
key_file(struct ca_signer *s, const char *path, char *err, size_t errlen)
{
	return pem_key_load(path, &s->key, err, errlen);
}

static int
signer_key(struct ca_signer *s, const struct ca_config *c, char *err,
    size_t errlen)
{
	if (strcmp(c->ca_key, "pkcs11") == 0)
		return key_pkcs11(s, c, err, errlen);
	return key_file(s, c->ca_key + 5, err, errlen);
}

void
ca_signer_close(struct ca_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	EVP_PKEY_free(s->tls_key);
	X509_free(s->tls_cert);
	X509_free(s->cert);
	free(s->bundle);
	free(s->crl.pem);
	if (s->p11 != NULL) {
		if (s->slots != NULL)
			PKCS11_release_all_slots(s->p11, s->slots, s->nslots);
		PKCS11_CTX_unload(s->p11);
		PKCS11_CTX_free(s->p11);
	}
	free(s);
}

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/*
 * The attestation extension, not critical, its value encoded by lib/certid
 * so that the CA writes exactly what certid_attestation() reads.
 */
static int
add_attestation(X509 *x, const char *kind)
{
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *e = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int ok = 0;

	if (certid_attestation_encode(kind, &der, &len) != 0 ||
	    (obj = OBJ_txt2obj(CA_ATTEST_OID, 1)) == NULL ||
	    (os = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(os, der, (int)len) != 1 ||
	    (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) == NULL ||
	    X509_add_ext(x, e, -1) != 1)
		goto out;
	ok = 1;
 out:
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	free(der);
	ASN1_OBJECT_free(obj);
	return ok;
}

/* A random positive 128-bit serial number. */
static int
set_serial(X509 *x, char serial[33])
{
	uint8_t b[16];
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int ok = 0;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return 0;
	b[0] = (uint8_t)((b[0] & 0x7f) | 0x40);	/* positive, 16 bytes */
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL)
		goto out;
	snprintf(serial, 33, "%s", hex);
	ok = 1;
 out:
	OPENSSL_free(hex);
	BN_free(bn);
	return ok;
}

static const EVP_MD *
sign_md(EVP_PKEY *key)
{
	return EVP_PKEY_get_bits(key) > 256 &&
	    EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? EVP_sha384() :
	    EVP_sha256();
}

static char *
pem_of(X509 *x, X509 *second)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (b == NULL || PEM_write_bio_X509(b, x) != 1 ||
	    (second != NULL && PEM_write_bio_X509(b, second) != 1))
		goto out;
	len = BIO_get_mem_data(b, &data);
	if ((out = malloc((size_t)len + 1)) == NULL)
		goto out;
	memcpy(out, data, (size_t)len);
	out[len] = '\0';
 out:
	BIO_free(b);
	return out;
}

int
ca_signer_init(const struct ca_config *c, int *made, char *err,
    size_t errlen)
{
	struct ca_signer *s = NULL;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	char cn[300], serial[33], *pem = NULL;
	BIO *b = NULL;
	int r = BOTID_ERR_CRYPTO;

	*made = 0;
	if (access(c->ca_cert, F_OK) == 0)
		return 0;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return BOTID_ERR_ALLOC;
	if (strncmp(c->ca_key, "file:", 5) == 0 &&
	    access(c->ca_key + 5, F_OK) != 0) {
		mode_t old = umask(0077);

		if ((k = EVP_EC_gen("P-256")) == NULL ||
		    (b = BIO_new_file(c->ca_key + 5, "wx")) == NULL ||
		    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL,
		    NULL) != 1) {
			umask(old);
			r = crypto_fail(err, errlen, c->ca_key + 5);
			goto out;
		}
		umask(old);
		BIO_free(b);
		b = NULL;
		*made |= 1;
	}
	if ((r = signer_key(s, c, err, errlen)) != 0)
		goto out;
	r = BOTID_ERR_CRYPTO;
	snprintf(cn, sizeof(cn), "botid CA %s", c->trust_domain);
	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    !set_serial(x, serial) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CA_CERT_DAYS, 0,
	    NULL) == NULL ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_set_pubkey(x, s->key) != 1 ||
	    !add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
	    !add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !add_ext(x, x, NID_subject_key_identifier, "hash") ||
	    X509_sign(x, s->key, sign_md(s->key)) <= 0 ||
	    (pem = pem_of(x, NULL)) == NULL) {
		r = crypto_fail(err, errlen, "creating the CA certificate");
		goto out;
	}
	if (file_write_atomic(c->ca_cert, pem, strlen(pem), 0644) != 0) {
		snprintf(err, errlen, "%s: %s", c->ca_cert, strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	*made |= 2;
	r = 0;
 out:
	free(pem);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(k);
	ca_signer_close(s);
	return r;
}

/*
 * The TLS key and its certificate, when botid-ca init made them. A CA
 * from before they existed has neither: it keeps serving, with a TLS
 * certificate issued by the CA key as then, and says how to stop that.
 */
static int
tls_identity_open(struct ca_signer *s, const struct ca_config *c, char *err,
    size_t errlen)
{
	BIO *b = NULL;
	int r;

	if (!c->tls_key_set && access(c->tls_key, F_OK) == -1 &&
	    errno == ENOENT) {
		log_warn("ca: no TLS key %s: the CA key issues the TLS "
		    "certificate, so only names tell it from a bot's; run "
		    "botid-ca init to make a TLS key that agents pin",
		    c->tls_key);
		return 0;
	}
	if ((r = pem_key_load(c->tls_key, &s->tls_key, err, errlen)) != 0)
		return r;
	if (access(c->tls_cert, F_OK) == -1 && errno == ENOENT)
		return 0;
	if ((b = BIO_new_file(c->tls_cert, "r")) == NULL ||
	    (s->tls_cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		r = crypto_fail(err, errlen, c->tls_cert);
		goto out;
	}
	if (!EVP_PKEY_eq(X509_get0_pubkey(s->tls_cert), s->tls_key)) {
		snprintf(err, errlen, "%s is not the certificate of the TLS "
		    "key %s", c->tls_cert, c->tls_key);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	r = 0;
 out:
	BIO_free(b);
	return r;
}

int
ca_signer_open(const struct ca_config *c, struct ca_signer **sp, char *err,
    size_t errlen)
{
	struct ca_signer *s = NULL;
	BIO *b = NULL;
	int r;

	*sp = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return BOTID_ERR_ALLOC;
	if ((r = signer_key(s, c, err, errlen)) != 0)
		goto out;
	if ((b = BIO_new_file(c->ca_cert, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s (run botid-ca init)", c->ca_cert,
		    strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	if ((s->cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		r = crypto_fail(err, errlen, c->ca_cert);
		goto out;
	}
	if (X509_check_private_key(s->cert, s->key) != 1 &&
	    !EVP_PKEY_eq(X509_get0_pubkey(s->cert), s->key)) {
		snprintf(err, errlen, "%s is not the certificate of the CA key",
		    c->ca_cert);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	ERR_clear_error();
	if ((s->bundle = pem_of(s->cert, NULL)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = tls_identity_open(s, c, err, errlen)) != 0)
		goto out;
	*sp = s;
	s = NULL;
	r = 0;
 out:
	BIO_free(b);
	ca_signer_close(s);
	return r;
}

const char *
ca_signer_bundle(const struct ca_signer *s)
{
	return s->bundle;
}

/* The common part of every certificate we issue; cn NULL: empty subject. */
static X509 *
cert_begin(struct ca_signer *s, const char *cn, EVP_PKEY *pub, long lifetime,
    char serial[33], time_t *not_after)
{
	X509 *x = NULL;
	X509_NAME *name;
	time_t now = time(NULL), end = now + lifetime, ca_end;
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(s->cert), &tm) == 1 &&
	    (ca_end = timegm(&tm)) < end)
		end = ca_end;
	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    !set_serial(x, serial) ||
	    X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, &now) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &end) == NULL ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    (cn != NULL && X509_NAME_add_entry_by_txt(name, "CN",
	    MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1) ||
	    X509_set_issuer_name(x, X509_get_subject_name(s->cert)) != 1 ||
	    X509_set_pubkey(x, pub) != 1 ||
	    !add_ext(x, s->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, s->cert, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, s->cert, NID_authority_key_identifier, "keyid")) {
		X509_free(x);
		return NULL;
	}
	*not_after = end;
	return x;
}

/*
 * A token key's purpose: only the botid token EKU (critical, so that a
 * TLS stack refuses the certificate) and the grant, non-critical so that
 * chain verification by stacks that do not know it still succeeds.
 */
static int
add_token_purpose(X509 *x, X509 *issuer, const struct botid_grant *g)
{
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *e = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int ok = 0;

	if (!add_ext(x, issuer, NID_ext_key_usage,
	    "critical," BOTID_OID_TOKEN_EKU) ||
	    grant_encode(g, &der, &len) != 0 || len > INT_MAX ||
	    (obj = OBJ_txt2obj(BOTID_OID_TOKEN_GRANT, 1)) == NULL ||
	    (os = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(os, der, (int)len) != 1 ||
	    (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) == NULL ||
	    X509_add_ext(x, e, -1) != 1)
		goto out;
	ok = 1;
 out:
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	free(der);
	return ok;
}

int
ca_issue(struct ca_signer *s, const struct ca_issue_req *req, char **chain,
    char serial[33], time_t *not_after)
{
	char san[512];
	X509 *x;
	int r = BOTID_ERR_CRYPTO;

	*chain = NULL;
	/* RFC 5280 4.2.1.6: with an empty subject the SAN is critical. */
	if ((size_t)snprintf(san, sizeof(san), "critical,URI:%s",
	    req->spiffe_id) >= sizeof(san))
		return BOTID_ERR_INVALID;
	if ((x = cert_begin(s, NULL, req->pubkey, req->lifetime, serial,
	    not_after)) == NULL)
		goto out;
	if (!add_ext(x, s->cert, NID_key_usage, "critical,digitalSignature") ||
	    (req->grant == NULL && !add_ext(x, s->cert, NID_ext_key_usage,
	    req->serves ? "clientAuth,serverAuth" : "clientAuth")) ||
	    (req->grant != NULL && !add_token_purpose(x, s->cert,
	    req->grant)) ||
	    !add_ext(x, s->cert, NID_subject_alt_name, san) ||
	    !add_attestation(x, req->attestation) ||
	    X509_sign(x, s->key, sign_md(s->key)) <= 0)
		goto out;
	if ((*chain = pem_of(x, s->cert)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	r = 0;
 out:
	if (r != 0) {
		log_err("ca: cannot issue a certificate for %s: %s",
		    req->spiffe_id, ERR_reason_error_string(ERR_get_error()));
		ERR_clear_error();
	}
	X509_free(x);
	return r;
}

/*
 * A CRL is valid for CRL_VALIDITY seconds (its nextUpdate) and signed again
 * when its entries change or when it is CRL_RESIGN old, not per request:
 * GET /v1/crl is unauthenticated and the signature may be a token's.
 */
#define CRL_VALIDITY	3600
#define CRL_RESIGN	(CRL_VALIDITY / 2)

struct crl_fill {
	X509_CRL	*crl;
	EVP_MD_CTX	*md;		/* digest of the entries */
	int		 failed;
};

/*
 * One CRL entry. RFC 5280 5.3.1: the reasonCode "unspecified" (0) SHOULD
 * be absent, so an entry carries one only for a named reason.
 */
static int
crl_add(const char *serial, time_t revoked, int reason, void *arg)
{
	struct crl_fill *f = arg;
	X509_REVOKED *rv = NULL;
	ASN1_INTEGER *sn = NULL;
	ASN1_ENUMERATED *code = NULL;
	ASN1_TIME *t = NULL;
	BIGNUM *bn = NULL;
	int64_t when = (int64_t)revoked;
	int32_t why = reason;

	if (EVP_DigestUpdate(f->md, serial, strlen(serial) + 1) != 1 ||
	    EVP_DigestUpdate(f->md, &when, sizeof(when)) != 1 ||
	    EVP_DigestUpdate(f->md, &why, sizeof(why)) != 1 ||
	    BN_hex2bn(&bn, serial) == 0 ||
	    (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (rv = X509_REVOKED_new()) == NULL ||
	    (t = ASN1_TIME_set(NULL, revoked)) == NULL ||
	    X509_REVOKED_set_serialNumber(rv, sn) != 1 ||
	    X509_REVOKED_set_revocationDate(rv, t) != 1 ||
	    (reason > 0 && ((code = ASN1_ENUMERATED_new()) == NULL ||
	    ASN1_ENUMERATED_set(code, reason) != 1 ||
	    X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, code, 0, 0) != 1)) ||
	    X509_CRL_add0_revoked(f->crl, rv) != 1) {
		X509_REVOKED_free(rv);
		f->failed = 1;
	}
	ASN1_ENUMERATED_free(code);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	return f->failed ? BOTID_ERR_CRYPTO : 0;
}

/*
 * RFC 5280 5.2: the authorityKeyIdentifier (the CA certificate's subject
 * key identifier, or its SHA-1 key hash as RFC 5280 4.2.1.2 (1) makes
 * it) and the cRLNumber. The number is the signing time in nanoseconds,
 * or one more than the last when the clock did not move on: it grows
 * across restarts and replicas without state of its own, as long as their
 * clocks agree (Let's Encrypt's CRLs are numbered the same way).
 */
static int
crl_add_extensions(struct ca_signer *s, X509_CRL *crl)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(s->cert);
	AUTHORITY_KEYID *akid = NULL;
	ASN1_INTEGER *num = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct timespec ts;
	uint64_t number;
	int r = BOTID_ERR_CRYPTO;

	clock_gettime(CLOCK_REALTIME, &ts);
	number = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (number <= s->crl.number)
		number = s->crl.number + 1;
	if ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_new()) == NULL)
		goto out;
	if (ski != NULL) {
		if (ASN1_OCTET_STRING_set(akid->keyid, ski->data,
		    ski->length) != 1)
			goto out;
	} else if (X509_pubkey_digest(s->cert, EVP_sha1(), md, &mdlen) != 1 ||
	    ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen) != 1)
		goto out;
	if ((num = ASN1_INTEGER_new()) == NULL ||
	    ASN1_INTEGER_set_uint64(num, number) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0,
	    0) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
		goto out;
	s->crl.number = number;
	r = 0;
 out:
	AUTHORITY_KEYID_free(akid);
	ASN1_INTEGER_free(num);
	return r;
}

int
ca_crl(struct ca_signer *s, struct ca_db *db, char **pem)
{
	struct crl_fill f;
	ASN1_TIME *t = NULL;
	BIO *b = NULL;
	char *data, *copy = NULL;
	uint8_t digest[32];
	unsigned int dlen = 0;
	long len;
	time_t now = time(NULL);
	int r = BOTID_ERR_CRYPTO;

	*pem = NULL;
	memset(&f, 0, sizeof(f));
	if ((f.md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(f.md, EVP_sha256(), NULL) != 1 ||
	    (f.crl = X509_CRL_new()) == NULL ||
	    X509_CRL_set_version(f.crl, 1) != 1 ||
	    X509_CRL_set_issuer_name(f.crl,
	    X509_get_subject_name(s->cert)) != 1 ||
	    (t = ASN1_TIME_set(NULL, now)) == NULL ||
	    X509_CRL_set1_lastUpdate(f.crl, t) != 1 ||
	    ASN1_TIME_set(t, now + CRL_VALIDITY) == NULL ||
	    X509_CRL_set1_nextUpdate(f.crl, t) != 1)
		goto out;
	if ((r = ca_db_revoked(db, now, crl_add, &f)) != 0)
		goto out;
	r = BOTID_ERR_CRYPTO;
	if (EVP_DigestFinal_ex(f.md, digest, &dlen) != 1 ||
	    dlen != sizeof(digest))
		goto out;
	/* The same entries, signed recently enough: the cached CRL. */
	if (s->crl.pem != NULL && now >= s->crl.this_update &&
	    now - s->crl.this_update < CRL_RESIGN &&
	    memcmp(digest, s->crl.digest, sizeof(digest)) == 0) {
		if ((*pem = strdup(s->crl.pem)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		r = 0;
		goto out;
	}
	if (X509_CRL_sort(f.crl) != 1 ||
	    crl_add_extensions(s, f.crl) != 0 ||
	    X509_CRL_sign(f.crl, s->key, sign_md(s->key)) <= 0 ||
	    (b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_CRL(b, f.crl) != 1)
		goto out;
	len = BIO_get_mem_data(b, &data);
	if ((copy = malloc((size_t)len + 1)) == NULL ||
	    (*pem = malloc((size_t)len + 1)) == NULL) {
		free(copy);
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	memcpy(copy, data, (size_t)len);
	copy[len] = '\0';
	memcpy(*pem, copy, (size_t)len + 1);
	free(s->crl.pem);
	s->crl.pem = copy;
	memcpy(s->crl.digest, digest, sizeof(digest));
	s->crl.this_update = now;
	r = 0;
 out:
	ERR_clear_error();
	BIO_free(b);
	ASN1_TIME_free(t);
	X509_CRL_free(f.crl);
	EVP_MD_CTX_free(f.md);
	return r;
}

/*
 * The TLS certificate: self-signed by the TLS key, never by the CA key,
 * so that no certificate the CA issues (to a host, a bot, or anyone with
 * the CA's name) carries the key agents pin. CA:FALSE, serverAuth only,
 * the server's names in the SAN; clients that do not pin (curl) trust
 * this very certificate.
 */
static X509 *
tls_cert_make(EVP_PKEY *k, const char *host, const char *public_url)
{
	unsigned char addr[16];
	char san[600], serial[33], url_host[300];
	const char *h, *end;
	X509 *x = NULL;
	X509_NAME *name;
	size_t n = 0;
	int i;

	for (i = 0; i < 2; i++) {
		h = host;
		if (i == 1) {
			/* https://HOST[:PORT][/...], or [v6]:PORT */
			if (public_url == NULL)
				break;
			h = public_url + 8;
			if (*h == '[') {
				h++;
				end = strchr(h, ']');
			} else
				end = h + strcspn(h, ":/");
			if (end == NULL || end == h ||
			    (size_t)(end - h) >= sizeof(url_host))
				break;
			snprintf(url_host, sizeof(url_host), "%.*s",
			    (int)(end - h), h);
			if (strcmp(url_host, host) == 0)
				break;
			h = url_host;
		}
		n += (size_t)snprintf(san + n, sizeof(san) - n, "%s%s:%s",
		    i > 0 ? "," : "", inet_pton(AF_INET, h, addr) == 1 ||
		    inet_pton(AF_INET6, h, addr) == 1 ? "IP" : "DNS", h);
		if (n >= sizeof(san))
			return NULL;
	}
	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    !set_serial(x, serial) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CA_CERT_DAYS, 0,
	    NULL) == NULL ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"botid-ca TLS", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_set_pubkey(x, k) != 1 ||
	    !add_ext(x, x, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, x, NID_key_usage, "critical,digitalSignature") ||
	    !add_ext(x, x, NID_ext_key_usage, "serverAuth") ||
	    !add_ext(x, x, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, x, NID_subject_alt_name, san) ||
	    X509_sign(x, k, sign_md(k)) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int
ca_tls_key_init(const struct ca_config *c, int *made, char *err,
    size_t errlen)
{
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	BIO *b = NULL;
	char *data, *pem = NULL;
	long len;
	int r = BOTID_ERR_CRYPTO;

	*made = 0;
	if (access(c->tls_key, F_OK) == 0) {
		if ((r = pem_key_load(c->tls_key, &k, err, errlen)) != 0)
			return r;
		r = BOTID_ERR_CRYPTO;
	} else {
		/* The private key only ever in a 0600 file, written whole. */
		if ((k = EVP_EC_gen("P-256")) == NULL ||
		    (b = BIO_new(BIO_s_mem())) == NULL ||
		    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL,
		    NULL) != 1 || (len = BIO_get_mem_data(b, &data)) <= 0) {
			r = crypto_fail(err, errlen, c->tls_key);
			goto out;
		}
		r = file_write_atomic(c->tls_key, data, (size_t)len, 0600);
		OPENSSL_cleanse(data, (size_t)len);
		if (r != 0) {
			snprintf(err, errlen, "%s: %s", c->tls_key,
			    strerror(errno));
			goto out;
		}
		r = BOTID_ERR_CRYPTO;
		*made |= 1;
	}
	if (access(c->tls_cert, F_OK) == 0) {
		r = 0;
		goto out;
	}
	if ((x = tls_cert_make(k, c->listen_host, c->public_url)) == NULL ||
	    (pem = pem_of(x, NULL)) == NULL) {
		r = crypto_fail(err, errlen, c->tls_cert);
		goto out;
	}
	if ((r = file_write_atomic(c->tls_cert, pem, strlen(pem),
	    0644)) != 0) {
		snprintf(err, errlen, "%s: %s", c->tls_cert, strerror(errno));
		goto out;
	}
	*made |= 2;
	r = 0;
 out:
	free(pem);
	X509_free(x);
	BIO_free(b);
	EVP_PKEY_free(k);
	return r;
}

int
ca_tls_pin(const struct ca_config *c, char **pin, char *err, size_t errlen)
{
	EVP_PKEY *k = NULL;
	unsigned char *der = NULL, h[32];
	char *b64 = NULL;
	int len, r;

	*pin = NULL;
	if (access(c->tls_key, F_OK) == -1 && errno == ENOENT) {
		snprintf(err, errlen, "no TLS key %s: run botid-ca init to "
		    "make one", c->tls_key);
		return BOTID_ERR_NOT_FOUND;
	}
	if ((r = pem_key_load(c->tls_key, &k, err, errlen)) != 0)
		return r;
	r = BOTID_ERR_CRYPTO;
	if ((len = i2d_PUBKEY(k, &der)) <= 0 ||
	    EVP_Digest(der, (size_t)len, h, NULL, EVP_sha256(), NULL) != 1) {
		r = crypto_fail(err, errlen, c->tls_key);
		goto out;
	}
	if ((b64 = malloc(4 * ((sizeof(h) + 2) / 3) + 1)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, h, sizeof(h));
	if (asprintf(pin, "sha256//%s", b64) == -1) {
		*pin = NULL;
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	r = 0;
 out:
	free(b64);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	return r;
}

int
ca_tls_context(struct ca_signer *s, const char *host, SSL_CTX **ctxp)
{
	unsigned char addr[16];
	char san[300], serial[33];
	EVP_PKEY *k = NULL;
	SSL_CTX *ctx = NULL;
	X509 *x = NULL;
	time_t end;
	int r = BOTID_ERR_CRYPTO;

	*ctxp = NULL;
	if (s->tls_key != NULL) {
		/* Never the CA key's: self-signed by the key agents pin. */
		if (EVP_PKEY_up_ref(s->tls_key) != 1)
			return BOTID_ERR_CRYPTO;
		k = s->tls_key;
		if (s->tls_cert != NULL) {
			if (X509_up_ref(s->tls_cert) != 1)
				goto out;
			x = s->tls_cert;
		} else if ((x = tls_cert_make(k, host, NULL)) == NULL)
			goto out;
		else
			log_warn("ca: no TLS certificate file: serving one "
			    "made now (botid-ca init writes it for clients "
			    "that trust it by file)");
	} else {
		/* A CA from before tls_key: as then, issued by the CA. */
		if (inet_pton(AF_INET, host, addr) == 1 ||
		    inet_pton(AF_INET6, host, addr) == 1)
			snprintf(san, sizeof(san), "IP:%s", host);
		else
			snprintf(san, sizeof(san), "DNS:%s", host);
		if ((k = EVP_EC_gen("P-256")) == NULL ||
		    (x = cert_begin(s, host, k, 7L * 86400, serial,
		    &end)) == NULL ||
		    !add_ext(x, s->cert, NID_key_usage,
		    "critical,digitalSignature") ||
		    !add_ext(x, s->cert, NID_ext_key_usage, "serverAuth") ||
		    !add_ext(x, s->cert, NID_subject_alt_name, san) ||
		    X509_sign(x, s->key, sign_md(s->key)) <= 0)
			goto out;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, k) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto out;
	*ctxp = ctx;
	ctx = NULL;
	r = 0;
 out:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}
