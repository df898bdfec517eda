/*
 * HTTPS to botid-ca through libcurl. The CA is trusted through its bundle
 * alone (never the system store), redirects are not followed, answers are
 * capped before they are parsed, and every failure becomes one line that
 * names the CA and the cause.
 *
 * The CA's bundle also issues every host and bot certificate, so a server
 * certificate that chains to it is not enough: a server certificate that
 * names a SPIFFE ID is one the CA issued to a host or a bot, never its own
 * TLS certificate (which names only the server), and is refused whatever
 * its other names say. Certificates from before bot certificates lost
 * their CN (a host chose it, e.g. "ca.example") are refused the same way.
 *
 * Where the CA's TLS key is pinned (the join token's pin or botid
 * provision --ca-pin, saved as ca-tls-pin next to the bundle), the server
 * must hold that key: a certificate the CA issued to anyone else never
 * passes, whatever it names. The pinned key's certificate is self-signed
 * (never the CA key's) and need not be in the bundle: the pin alone
 * trusts it, and, the key being the CA's identity, names are not checked.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/ca-client.h"
#include "attest/ca-revoke.h"
#include "lib/base64.h"
#include "lib/botid.h"
#include "lib/file.h"

#define CA_BODY_MAX		(1024u * 1024u)
#define CA_CONNECT_TIMEOUT	5L	/* seconds */
#define CA_TIMEOUT		30L
#define CA_PIN_LEN		52	/* "sha256//" and 44 base64 characters */
#define CA_PIN_FILE		CA_CLIENT_PIN_FILE

struct ca_client {
	char	*url;
	char	*bundle;
	char	*pin;		/* NULL: the bundle alone */
	int	 host_revoked;	/* last answer: 403 host_revoked */
};

/* The SSL_CTX slot that holds the client (for the verify callback). */
static int client_index = -1;

struct body {
	char	*data;
	size_t	 len;
	int	 too_large;
};

int
ca_client_pin_valid(const char *pin)
{
	size_t i;

	if (strlen(pin) != CA_PIN_LEN || strncmp(pin, "sha256//", 8) != 0 ||
	    pin[CA_PIN_LEN - 1] != '=')
		return 0;
	for (i = 8; i < CA_PIN_LEN - 1; i++)
		if (!isalnum((unsigned char)pin[i]) && pin[i] != '+' &&
		    pin[i] != '/')
			return 0;
	return 1;
}

int
ca_client_pin(struct ca_client *c, const char *pin)
{
	char *p;

	if (!ca_client_pin_valid(pin))
		return BOTID_ERR_INVALID;
	if ((p = strdup(pin)) == NULL)
		return BOTID_ERR_ALLOC;
	free(c->pin);
	c->pin = p;
	return 0;
}

/* The pin saved next to the bundle, if any. */
static int
pin_load(struct ca_client *c, const char *bundle_path)
{
	const char *slash = strrchr(bundle_path, '/');
	uint8_t *data = NULL;
	size_t len = 0;
	char *path = NULL, pin[CA_PIN_LEN + 1];
	int r;

	if (asprintf(&path, "%.*s%s", slash != NULL ?
	    (int)(slash - bundle_path + 1) : 0, bundle_path, CA_PIN_FILE) == -1)
		return BOTID_ERR_ALLOC;
	r = file_read(path, CA_PIN_LEN + 2, &data, &len);
	free(path);
	if (r == BOTID_ERR_NOT_FOUND)
		return 0;
	if (r != 0)
		return r;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	r = BOTID_ERR_INVALID;
	if (len == CA_PIN_LEN && memchr(data, '\0', len) == NULL) {
		memcpy(pin, data, len);
		pin[len] = '\0';
		r = ca_client_pin(c, pin);
	}
	free(data);
	return r;
}

int
ca_client_new(const char *url, const char *bundle_path, struct ca_client **cp)
{
	static int curl_ready;
	struct ca_client *c = NULL;
	size_t n;
	int r;

	*cp = NULL;
	if (strncmp(url, "https://", 8) != 0)
		return BOTID_ERR_INVALID;
	/* Called before any thread is started (curl_global_init is not safe). */
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
		    (client_index = SSL_CTX_get_ex_new_index(0, NULL, NULL,
		    NULL, NULL)) < 0)
			return BOTID_ERR_INTERNAL;
		curl_ready = 1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->url = strdup(url)) == NULL ||
	    (c->bundle = strdup(bundle_path)) == NULL) {
		ca_client_free(c);
		return BOTID_ERR_ALLOC;
	}
	n = strlen(c->url);
	while (n > 8 && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	if ((r = pin_load(c, bundle_path)) != 0) {
		ca_client_free(c);
		return r;
	}
	*cp = c;
	return 0;
}

void
ca_client_free(struct ca_client *c)
{
	if (c == NULL)
		return;
	free(c->url);
	free(c->bundle);
	free(c->pin);
	free(c);
}

static size_t
body_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	char *d;

	if (n > CA_BODY_MAX - b->len) {
		b->too_large = 1;
		return 0;	/* makes curl fail the transfer */
	}
	if ((d = realloc(b->data, b->len + n + 1)) == NULL)
		return 0;
	memcpy(d + b->len, p, n);
	b->data = d;
	b->len += n;
	d[b->len] = '\0';
	return n;
}

/* Whether x names a SPIFFE ID: issued to a host or a bot, not the CA. */
static int
names_spiffe_id(X509 *x)
{
	GENERAL_NAMES *names;
	const GENERAL_NAME *gn;
	const unsigned char *s;
	int i, n, found = 0;

	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	n = names == NULL ? 0 : sk_GENERAL_NAME_num(names);
	for (i = 0; i < n && !found; i++) {
		gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type != GEN_URI)
			continue;
		s = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		found = ASN1_STRING_length(gn->d.uniformResourceIdentifier) >=
		    9 && strncasecmp((const char *)s, "spiffe://", 9) == 0;
	}
	GENERAL_NAMES_free(names);
	return found;
}

/* Whether x holds the key pin names (the form ca_client_pin takes). */
static int
key_pinned(X509 *x, const char *pin)
{
	unsigned char *der = NULL, h[32];
	char b64[4 * ((sizeof(h) + 2) / 3) + 1];
	int len, ok = 0;

	if ((len = i2d_PUBKEY(X509_get0_pubkey(x), &der)) <= 0 ||
	    EVP_Digest(der, (size_t)len, h, NULL, EVP_sha256(), NULL) != 1)
		goto out;
	EVP_EncodeBlock((unsigned char *)b64, h, sizeof(h));
	ok = strlen(pin) == 8 + strlen(b64) &&
	    strcmp(pin + 8, b64) == 0;
 out:
	OPENSSL_free(der);
	return ok;
}

static int
server_cert_check(int ok, X509_STORE_CTX *ctx)
{
	const struct ca_client *c = NULL;
	SSL *ssl;
	X509 *x;
	int e;

	if (X509_STORE_CTX_get_error_depth(ctx) != 0)
		return ok;
	if ((ssl = X509_STORE_CTX_get_ex_data(ctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx())) != NULL)
		c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), client_index);
	if ((x = X509_STORE_CTX_get_current_cert(ctx)) == NULL ||
	    names_spiffe_id(x)) {
		X509_STORE_CTX_set_error(ctx,
		    X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if (c == NULL || c->pin == NULL)
		return ok;
	if (!key_pinned(x, c->pin)) {
		X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	/*
	 * The pinned key's self-signed certificate, not in the bundle: the
	 * pin is the trust, so only the want of an issuer is forgiven (an
	 * expired certificate is still refused).
	 */
	e = X509_STORE_CTX_get_error(ctx);
	if (!ok && (e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
	    e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	    e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)) {
		X509_STORE_CTX_set_error(ctx, X509_V_OK);
		return 1;
	}
	return ok;
}

/* libcurl's OpenSSL context, before the handshake: add our check. */
static CURLcode
ssl_ctx_setup(CURL *h, void *sslctx, void *arg)
{
	(void)h;
	if (SSL_CTX_set_ex_data(sslctx, client_index, arg) != 1)
		return CURLE_SSL_CERTPROBLEM;
	SSL_CTX_set_verify(sslctx, SSL_VERIFY_PEER, server_cert_check);
	return CURLE_OK;
}

static int
status_error(long status)
{
	switch (status) {
	case 400:
	case 413:
		return BOTID_ERR_INVALID;
	case 403:
	case 409:
	case 410:
		return BOTID_ERR_DENIED;
	case 404:
		return BOTID_ERR_NOT_FOUND;
	}
	return BOTID_ERR_UNAVAILABLE;
}

/* One request; body_in NULL makes it a GET. */
static int
ca_request(struct ca_client *c, const char *path, const char *body_in,
    struct body *out, char *err, size_t errlen)
{
	char curl_err[CURL_ERROR_SIZE], *url = NULL;
	struct curl_slist *hdrs = NULL;
	CURL *h = NULL;
	CURLcode cc;
	long status = 0, verify;
	json_t *j = NULL;
	const char *msg;
	int r = BOTID_ERR_INTERNAL;

	memset(out, 0, sizeof(*out));
	curl_err[0] = '\0';
	c->host_revoked = 0;
	if (asprintf(&url, "%s%s", c->url, path) == -1) {
		url = NULL;
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((h = curl_easy_init()) == NULL ||
	    (hdrs = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CAINFO, c->bundle) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CAPATH, NULL) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    /* A pinned key is the CA's identity, whatever it is named. */
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST,
	    c->pin != NULL ? 0L : 2L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION,
	    ssl_ctx_setup) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c) != CURLE_OK ||
	    (c->pin != NULL && curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY,
	    c->pin) != CURLE_OK) ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    /* Requests go out at once, not after the CA's delayed ACK. */
	    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
	    CA_CONNECT_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, CA_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, out) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    (body_in != NULL &&
	    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_in) != CURLE_OK)) {
		snprintf(err, errlen, "libcurl refused an option");
		goto out;
	}
	if ((cc = curl_easy_perform(h)) != CURLE_OK) {
		verify = 0;
		(void)curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &verify);
		snprintf(err, errlen, "cannot reach the CA at %s: %s", c->url,
		    out->too_large ? "answer larger than 1 MiB" :
		    verify == X509_V_ERR_APPLICATION_VERIFICATION ?
		    "the server's certificate names a SPIFFE ID: a host or "
		    "bot certificate, not the CA's" :
		    cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH ||
		    verify == X509_V_ERR_CERT_REJECTED ?
		    "the server's key is not the pinned CA TLS key" :
		    curl_err[0] != '\0' ? curl_err : curl_easy_strerror(cc));
		r = BOTID_ERR_UNAVAILABLE;
		goto out;
	}
	(void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		r = status_error(status);
		msg = NULL;
		if (out->data != NULL &&
		    (j = json_loadb(out->data, out->len, 0, NULL)) != NULL &&
		    json_is_string(json_object_get(j, "error")))
			msg = json_string_value(json_object_get(j, "error"));
		/* Only a refusal from the CA itself (TLS checked) says so. */
		if (status == 403 && j != NULL &&
		    json_is_true(json_object_get(j, "host_revoked")))
			c->host_revoked = 1;
		snprintf(err, errlen, "the CA refused (HTTP %ld): %s", status,
		    msg != NULL ? msg : "no reason given");
		goto out;
	}
	r = 0;
 out:
	json_decref(j);
	curl_slist_free_all(hdrs);
	if (h != NULL)
		curl_easy_cleanup(h);
	free(url);
	if (r != 0) {
		free(out->data);
		memset(out, 0, sizeof(*out));
	}
	return r;
}

int
ca_client_post(struct ca_client *c, const char *path, json_t *req,
    json_t **resp, char *err, size_t errlen)
{
	struct body b;
	json_error_t je;
	char *in = NULL;
	int r;

	*resp = NULL;
	if ((in = json_dumps(req, JSON_COMPACT)) == NULL)
		return BOTID_ERR_ALLOC;
	r = ca_request(c, path, in, &b, err, errlen);
	free(in);
	if (r != 0)
		return r;
	if ((*resp = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES,
	    &je)) == NULL || !json_is_object(*resp)) {
		json_decref(*resp);
		*resp = NULL;
		snprintf(err, errlen, "the CA's answer to %s is not a JSON "
		    "object", path);
		r = BOTID_ERR_PROTOCOL;
	}
	free(b.data);
	return r;
}

int
ca_client_get(struct ca_client *c, const char *path, char **body,
    size_t *len, char *err, size_t errlen)
{
	struct body b;
	int r;

	*body = NULL;
	*len = 0;
	if ((r = ca_request(c, path, NULL, &b, err, errlen)) != 0)
		return r;
	if (b.data == NULL && (b.data = strdup("")) == NULL)
		return BOTID_ERR_ALLOC;
	*body = b.data;
	*len = b.len;
	return 0;
}

int
ca_client_host_revoked(const struct ca_client *c)
{
	return c->host_revoked;
}

int
ca_json_set_b64(json_t *o, const char *key, const uint8_t *data, size_t len)
{
	char *s = NULL;
	int r;

	if ((r = base64_encode(data, len, &s)) != 0)
		return r;
	r = json_object_set_new(o, key, json_string(s)) == 0 ? 0 :
	    BOTID_ERR_ALLOC;
	free(s);
	return r;
}

int
ca_json_get_b64(json_t *o, const char *key, size_t max, uint8_t **data,
    size_t *len)
{
	json_t *v = json_object_get(o, key);

	*data = NULL;
	*len = 0;
	if (!json_is_string(v))
		return BOTID_ERR_PROTOCOL;
	return base64_decode(json_string_value(v), max, data, len) == 0 ? 0 :
	    BOTID_ERR_PROTOCOL;
}

int
ca_client_revoke(struct ca_client *c, const char *host_id, const char *serial,
    const char *reason, ca_host_sign_fn sign, void *arg, char *why,
    size_t whylen)
{
	uint8_t *nonce = NULL, *sig = NULL, digest[32];
	size_t nonce_len = 0, sig_len = 0;
	json_t *req = NULL, *resp = NULL;
	const char *what = serial != NULL ? serial : CA_REVOKE_HOST;
	int r = BOTID_ERR_INTERNAL;

	if (whylen > 0)
		why[0] = '\0';
	if (host_id == NULL || reason == NULL || sign == NULL ||
	    ca_revoke_reason_code(reason) < 0 ||
	    (serial != NULL && (serial[0] == '\0' ||
	    strlen(serial) > CA_REVOKE_SERIAL_MAX))) {
		snprintf(why, whylen, "revoke: invalid host id, serial or "
		    "reason");
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((req = json_pack("{s:s}", "host_id", host_id)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = ca_client_post(c, "/v1/nonce", req, &resp, why,
	    whylen)) != 0)
		goto out;
	if ((r = ca_json_get_b64(resp, "nonce", 64, &nonce,
	    &nonce_len)) != 0) {
		snprintf(why, whylen, "revoke: the CA's nonce is malformed");
		goto out;
	}
	json_decref(req);
	json_decref(resp);
	req = resp = NULL;
	if ((r = ca_revoke_digest(nonce, nonce_len, host_id, what, reason,
	    digest)) != 0) {
		snprintf(why, whylen, "revoke: cannot build the message: %s",
		    botid_strerror(r));
		goto out;
	}
	if ((r = sign(arg, digest, &sig, &sig_len)) != 0) {
		snprintf(why, whylen, "revoke: the host key cannot sign: %s",
		    botid_strerror(r));
		goto out;
	}
	if ((req = json_pack("{s:s, s:s}", "host_id", host_id, "reason",
	    reason)) == NULL ||
	    json_object_set_new(req, serial != NULL ? "serial" : "host",
	    serial != NULL ? json_string(serial) : json_true()) != 0) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = ca_json_set_b64(req, "nonce", nonce, nonce_len)) != 0 ||
	    (r = ca_json_set_b64(req, "signature", sig, sig_len)) != 0)
		goto out;
	if ((r = ca_client_post(c, "/v1/revoke", req, &resp, why,
	    whylen)) != 0)
		goto out;
	if (!json_is_array(json_object_get(resp, "revoked"))) {
		snprintf(why, whylen, "revoke: the CA's answer has no "
		    "\"revoked\" list");
		r = BOTID_ERR_PROTOCOL;
		goto out;
	}
	r = 0;
 out:
	if (r == BOTID_ERR_ALLOC && whylen > 0 && why[0] == '\0')
		snprintf(why, whylen, "revoke: out of memory");
	OPENSSL_cleanse(digest, sizeof(digest));
	if (nonce != NULL)
		OPENSSL_cleanse(nonce, nonce_len);
	free(nonce);
	free(sig);
	json_decref(req);
	json_decref(resp);
	return r;
}
