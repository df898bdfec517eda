/*
 * botid-provision (also `botid provision`): enrols this host with botid-ca.
 * It reads the EK certificate, recreates the EK, creates (or reuses) the
 * attestation key and host key under the owner storage primary, proves to
 * the CA by credential activation that the AK lives in the TPM that owns
 * the EK, has the host key certified by the AK, and stores the host id and
 * host certificate in STATE_DIR/attest. Running it again changes nothing.
 *
 * It talks to the TPM itself, so run it before starting botid-agent when
 * the TPM allows one client at a time (swtpm; not /dev/tpmrm0).
 */
#include "botid-config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "agent/config.h"
#include "attest/ca-client.h"
#include "attest/evidence.h"
#include "attest/host-state.h"
#include "attest/tpm-templates.h"
#include "lib/botid.h"
#include "lib/file.h"
#include "lib/limits.h"
#include "lib/log.h"

#define DEFAULT_CONFIG	BOTID_SYSCONFDIR "/botid/agent.conf"
#define TOKEN_MAX	256
#define NONCE_MAX	64
#define BLOB_MAX	4096
#define BUNDLE_MAX	(256u * 1024u)	/* a CA bundle file */
#define BUNDLE_CERTS	16

/* Exit codes, documented in botid-provision(8). */
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2
#define EXIT_REFUSED	3	/* the CA refused */
#define EXIT_NOCA	4	/* the CA is unreachable */
#define EXIT_NOTPM	5	/* no usable TPM or EK certificate */

struct provision {
	struct botid_agent_config	*cfg;
	struct host_state		 hs;
	struct ca_client		*ca;
	const char			*ca_url;
	const char			*bundle;
	const char			*pin;	/* --ca-pin, or NULL */
	char				 token[TOKEN_MAX + 1];
	char				 token_pin[TOKEN_MAX + 1];
	TSS2_TCTI_CONTEXT		*tcti;
	ESYS_CONTEXT			*esys;
	ESYS_TR				 srk;
	struct evidence_ek		 ek;
	ESYS_TR				 ak;
	ESYS_TR				 hostkey;
	int				 ecc;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: botid-provision [-c CONFIG] --ca URL --ca-bundle FILE\n"
	    "           [--ca-pin sha256//BASE64]\n"
	    "           [--join-token TOKEN | --join-token-file FILE]\n"
	    "       botid-provision [-c CONFIG] --status\n"
	    "Enrols this host with botid-ca by TPM credential activation.\n"
	    "CONFIG is the agent's configuration (default %s);\n"
	    "a join token file of '-' is read from standard input.\n"
	    "Exit status: 0 ok (or nothing to do), 1 failure, 2 usage,\n"
	    "3 refused by the CA, 4 CA unreachable, 5 no usable TPM or EK.\n"
	    "See botid-provision(8).\n", DEFAULT_CONFIG);
}

static int
fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("botid-provision: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static int
ca_exit(int r)
{
	return r == BOTID_ERR_UNAVAILABLE ? EXIT_NOCA :
	    r == BOTID_ERR_DENIED || r == BOTID_ERR_NOT_FOUND ||
	    r == BOTID_ERR_INVALID ? EXIT_REFUSED : EXIT_FAIL;
}

/* Reads the join token from a file or stdin, first line only. */
static int
token_read(struct provision *p, const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0, n;
	FILE *f = stdin;
	int r;

	if (strcmp(path, "-") == 0) {
		if (fgets(p->token, sizeof(p->token), f) == NULL)
			return fail(EXIT_USAGE, "no join token on standard input");
	} else {
		if ((r = file_read(path, TOKEN_MAX + 2, &data, &len)) != 0)
			return fail(EXIT_USAGE, "%s: %s", path,
			    r == BOTID_ERR_IO || r == BOTID_ERR_NOT_FOUND ?
			    strerror(errno) : "larger than a join token");
		n = strcspn((char *)data, "\r\n");
		if (n > TOKEN_MAX)
			n = TOKEN_MAX;
		memcpy(p->token, data, n);
		p->token[n] = '\0';
		OPENSSL_cleanse(data, len);
		free(data);
	}
	p->token[strcspn(p->token, "\r\n")] = '\0';
	return p->token[0] == '\0' ?
	    fail(EXIT_USAGE, "the join token is empty") : 0;
}

static int
tpm_open(struct provision *p)
{
	const char *tcti = p->cfg->tcti;
	TSS2_RC rc;

	rc = Tss2_TctiLdr_Initialize(tcti, &p->tcti);
	if (rc != 0) {
		p->tcti = NULL;
		return fail(EXIT_NOTPM, "no TPM at '%s': %s",
		    tcti != NULL ? tcti : "(tpm2-tss default)",
		    Tss2_RC_Decode(rc));
	}
	if ((rc = Esys_Initialize(&p->esys, p->tcti, NULL)) != 0) {
		p->esys = NULL;
		return fail(EXIT_NOTPM, "cannot talk to the TPM: %s",
		    Tss2_RC_Decode(rc));
	}
	rc = Esys_Startup(p->esys, TPM2_SU_CLEAR);
	if (rc != 0 && rc != TPM2_RC_INITIALIZE)
		log_debug("TPM2_Startup: 0x%x", rc);
	if (evidence_srk_create(p->esys, &p->srk, &p->ecc) != 0)
		return fail(EXIT_NOTPM, "cannot create the storage primary key "
		    "(owner hierarchy password set, or no free object slot)");
	return 0;
}

/* Loads a key pair from the state under the SRK. */
static int
key_load(struct provision *p, const TPM2B_PUBLIC *pub,
    const TPM2B_PRIVATE *priv, ESYS_TR *h, const char *what)
{
	TSS2_RC rc;

	rc = Esys_Load(p->esys, p->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, priv, pub, h);
	if (rc != 0) {
		*h = ESYS_TR_NONE;
		return fail(EXIT_FAIL, "the TPM refuses the %s in %s (made by "
		    "another TPM, or the owner seed was cleared): remove that "
		    "directory and provision again", what, p->hs.dir);
	}
	return 0;
}

static void
flush(struct provision *p, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE)
		(void)Esys_FlushContext(p->esys, *h);
	*h = ESYS_TR_NONE;
}

/* Creates the AK and host key unless an earlier run left them. */
static int
keys_ensure(struct provision *p)
{
	char err[512];

	if (p->hs.have_keys)
		return 0;
	if (evidence_key_create(p->esys, p->srk, p->ecc ?
	    &tpm_template_ak_ecc : &tpm_template_ak_rsa, &p->hs.ak_pub,
	    &p->hs.ak_priv) != 0 ||
	    evidence_key_create(p->esys, p->srk, p->ecc ?
	    &tpm_template_hostkey_ecc : &tpm_template_hostkey_rsa,
	    &p->hs.hk_pub, &p->hs.hk_priv) != 0)
		return fail(EXIT_FAIL, "cannot create the attestation key and "
		    "host key in the TPM");
	if (host_state_save_keys(&p->hs, err, sizeof(err)) != 0)
		return fail(EXIT_FAIL, "%s", err);
	log_info("created the attestation key and host key in the TPM");
	return 0;
}

static int
set_public(json_t *o, const char *key, const TPM2B_PUBLIC *pub)
{
	uint8_t buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;

	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != 0)
		return BOTID_ERR_INTERNAL;
	return ca_json_set_b64(o, key, buf, off);
}

static int
get_string(json_t *o, const char *key, const char **s)
{
	json_t *v = json_object_get(o, key);

	*s = json_is_string(v) ? json_string_value(v) : NULL;
	return *s != NULL ? 0 : BOTID_ERR_PROTOCOL;
}

/* The certificates of a PEM text, at most BUNDLE_CERTS; NULL if none. */
static STACK_OF(X509) *
bundle_parse(const void *pem, size_t len)
{
	STACK_OF(X509) *st = NULL;
	BIO *b = NULL;
	X509 *x;

	if (len > INT_MAX || (b = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (st = sk_X509_new_null()) == NULL)
		goto fail;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (sk_X509_num(st) == BUNDLE_CERTS || sk_X509_push(st, x) <= 0) {
			X509_free(x);
			goto fail;
		}
	ERR_clear_error();
	if (sk_X509_num(st) == 0)
		goto fail;
	BIO_free(b);
	return st;
 fail:
	ERR_clear_error();
	BIO_free(b);
	sk_X509_pop_free(st, X509_free);
	return NULL;
}

static int
bundle_has(STACK_OF(X509) *st, X509 *x)
{
	int i;

	for (i = 0; i < sk_X509_num(st); i++)
		if (X509_cmp(sk_X509_value(st, i), x) == 0)
			return 1;
	return 0;
}

/*
 * Whether every certificate of the bundle in the CA's answer is one of the
 * bundle the operator gave: whoever answered must not choose what this
 * host trusts from now on (and what it saves is the bundle given).
 */
static int
bundle_given(const void *given, size_t given_len, const char *answer)
{
	STACK_OF(X509) *a = NULL, *b = NULL;
	int i, ok = 0;

	if ((a = bundle_parse(given, given_len)) == NULL ||
	    (b = bundle_parse(answer, strlen(answer))) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(b); i++)
		if (!bundle_has(a, sk_X509_value(b, i)))
			goto out;
	ok = 1;
 out:
	sk_X509_pop_free(a, X509_free);
	sk_X509_pop_free(b, X509_free);
	return ok;
}

/*
 * A join token from botid-ca token create carries the pin of the CA's
 * TLS key after a dot: the CA is checked against it before the token is
 * sent, and the agent pins it from then on, with no step of the
 * operator's. The CA hashes the part before the dot only, so the pin is
 * cut off here. A token without one (a CA from before its TLS key)
 * provisions on the bundle alone, as --ca-pin is not given.
 */
static int
token_pin_take(struct provision *p)
{
	char *dot = strchr(p->token, '.');

	if (dot == NULL)
		return 0;
	snprintf(p->token_pin, sizeof(p->token_pin), "%s", dot + 1);
	OPENSSL_cleanse(dot, strlen(dot));
	if (!ca_client_pin_valid(p->token_pin))
		return fail(EXIT_USAGE, "the join token's CA pin (after the "
		    "dot) is not sha256// and a base64 SHA-256");
	if (p->pin != NULL && strcmp(p->pin, p->token_pin) != 0)
		return fail(EXIT_USAGE, "--ca-pin is not the pin the join "
		    "token carries: which CA is meant?");
	p->pin = p->token_pin;
	return 0;
}

/*
 * Writes the pin to CA_CLIENT_PIN_FILE next to the host's CA bundle, or
 * removes a stale one when no pin was given.
 */
static int
pin_save(struct provision *p, char *err, size_t errlen)
{
	const char *slash = strrchr(p->hs.bundle_path, '/');
	char *path = NULL, *line = NULL;
	int r = BOTID_ERR_ALLOC;

	if (asprintf(&path, "%.*s%s", slash != NULL ?
	    (int)(slash - p->hs.bundle_path + 1) : 0, p->hs.bundle_path,
	    CA_CLIENT_PIN_FILE) == -1) {
		path = NULL;
		goto out;
	}
	if (p->pin == NULL) {
		r = 0;
		if (unlink(path) == -1 && errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			r = BOTID_ERR_IO;
		}
		goto out;
	}
	if (asprintf(&line, "%s\n", p->pin) == -1) {
		line = NULL;
		goto out;
	}
	if ((r = file_write_atomic(path, line, strlen(line), 0644)) != 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
 out:
	if (r == BOTID_ERR_ALLOC)
		snprintf(err, errlen, "out of memory");
	free(path);
	free(line);
	return r;
}

/*
 * Under a boot-state policy the enrol answer names PCRs (doc/ca-api.md):
 * a quote of them by the AK over the session's nonce, with the event log
 * when asked, goes with the activation. 0 when nothing was asked.
 */
static int
quote_add(struct provision *p, json_t *resp, json_t *req,
    const uint8_t *nonce, size_t nonce_len)
{
	json_t *sel = json_object_get(resp, "pcr_select"), *v;
	uint8_t *att = NULL, *sig = NULL, *val = NULL, *log = NULL;
	size_t att_len = 0, sig_len = 0, val_len = 0, log_len = 0, i;
	uint32_t mask = 0;
	json_int_t n;
	int r = BOTID_ERR_PROTOCOL;

	if (sel == NULL)
		return 0;
	if (!json_is_array(sel) || json_array_size(sel) == 0)
		goto out;
	json_array_foreach(sel, i, v) {
		if (!json_is_integer(v) || (n = json_integer_value(v)) < 0 ||
		    n > 23)
			goto out;
		mask |= 1u << n;
	}
	if ((r = evidence_quote(p->esys, p->ak, TPM2_ALG_SHA256, mask, nonce,
	    nonce_len, &att, &att_len, &sig, &sig_len, &val,
	    &val_len)) != 0)
		goto out;
	if (json_is_true(json_object_get(resp, "pcr_eventlog")) &&
	    (r = file_read(p->cfg->event_log, BOTID_MAX_EVENTLOG, &log,
	    &log_len)) != 0)
		goto out;
	r = BOTID_ERR_ALLOC;
	if (ca_json_set_b64(req, "pcr_quote", att, att_len) != 0 ||
	    ca_json_set_b64(req, "pcr_signature", sig, sig_len) != 0 ||
	    ca_json_set_b64(req, "pcr_values", val, val_len) != 0 ||
	    (log != NULL && ca_json_set_b64(req, "pcr_eventlog", log,
	    log_len) != 0))
		goto out;
	r = 0;
 out:
	free(att);
	free(sig);
	free(val);
	free(log);
	return r;
}

static int
enrol(struct provision *p)
{
	json_t *req = NULL, *resp = NULL, *req2 = NULL, *resp2 = NULL;
	uint8_t secret[EVIDENCE_SECRET_MAX], *blob = NULL, *enc = NULL;
	uint8_t *nonce = NULL, *attest = NULL, *sig = NULL;
	size_t secret_len = 0, blob_len, enc_len, nonce_len, attest_len = 0;
	size_t sig_len = 0;
	const char *session, *host_id, *spiffe, *host_cert, *bundle, *why;
	uint8_t *given = NULL;
	size_t given_len = 0;
	char err[1024], *pinned = NULL;
	int r, code = EXIT_FAIL;

	if (evidence_ek_open(p->esys, &p->ek, &why) != 0) {
		code = fail(EXIT_NOTPM, "%s", why);
		goto out;
	}
	/* Without a token the CA's EK allowlist decides. */
	if ((req = json_object()) == NULL || (p->token[0] != '\0' &&
	    json_object_set_new(req, "join_token", json_string(p->token))) ||
	    ca_json_set_b64(req, "ek_cert", p->ek.cert, p->ek.cert_len) ||
	    set_public(req, "ek_public", &p->ek.pub) ||
	    set_public(req, "ak_public", &p->hs.ak_pub) ||
	    set_public(req, "host_key_public", &p->hs.hk_pub)) {
		code = fail(EXIT_FAIL, "out of memory");
		goto out;
	}
	if ((r = ca_client_post(p->ca, "/v1/enrol", req, &resp, err,
	    sizeof(err))) != 0) {
		code = fail(ca_exit(r), "enrolment: %s", err);
		goto out;
	}
	if (get_string(resp, "session", &session) != 0 ||
	    ca_json_get_b64(resp, "credential_blob", BLOB_MAX, &blob,
	    &blob_len) != 0 ||
	    ca_json_get_b64(resp, "encrypted_secret", BLOB_MAX, &enc,
	    &enc_len) != 0 ||
	    ca_json_get_b64(resp, "nonce", NONCE_MAX, &nonce,
	    &nonce_len) != 0) {
		code = fail(EXIT_FAIL, "enrolment: malformed answer from the CA");
		goto out;
	}
	/* Slots: the SRK, the EK and the AK; the host key after the EK. */
	if (key_load(p, &p->hs.ak_pub, &p->hs.ak_priv, &p->ak,
	    "attestation key") != 0)
		goto out;
	if ((r = evidence_activate(p->esys, p->ek.handle, p->ak, blob,
	    blob_len, enc, enc_len, secret, &secret_len)) != 0) {
		code = fail(EXIT_REFUSED, "the TPM cannot answer the CA's "
		    "credential challenge: it was not made for this TPM's EK "
		    "and attestation key");
		goto out;
	}
	evidence_ek_close(p->esys, &p->ek);
	if (key_load(p, &p->hs.hk_pub, &p->hs.hk_priv, &p->hostkey,
	    "host key") != 0)
		goto out;
	if (evidence_certify(p->esys, p->ak, p->hostkey, nonce, nonce_len,
	    &attest, &attest_len, &sig, &sig_len) != 0) {
		code = fail(EXIT_FAIL, "the TPM cannot certify the host key");
		goto out;
	}
	if ((req2 = json_object()) == NULL ||
	    json_object_set_new(req2, "session", json_string(session)) ||
	    ca_json_set_b64(req2, "secret", secret, secret_len) ||
	    ca_json_set_b64(req2, "host_key_attest", attest, attest_len) ||
	    ca_json_set_b64(req2, "host_key_signature", sig, sig_len)) {
		code = fail(EXIT_FAIL, "out of memory");
		goto out;
	}
	if ((r = quote_add(p, resp, req2, nonce, nonce_len)) != 0) {
		code = fail(EXIT_FAIL, "the CA's boot-state policy asks for a "
		    "PCR quote the host cannot give: %s", botid_strerror(r));
		goto out;
	}
	if ((r = ca_client_post(p->ca, "/v1/activate", req2, &resp2, err,
	    sizeof(err))) != 0) {
		code = fail(ca_exit(r), "activation: %s", err);
		goto out;
	}
	if (get_string(resp2, "host_id", &host_id) != 0 ||
	    get_string(resp2, "spiffe_id", &spiffe) != 0 ||
	    get_string(resp2, "host_cert", &host_cert) != 0 ||
	    get_string(resp2, "bundle", &bundle) != 0) {
		code = fail(EXIT_FAIL, "activation: malformed answer from the "
		    "CA");
		goto out;
	}
	if (file_read(p->bundle, BUNDLE_MAX, &given, &given_len) != 0 ||
	    (pinned = strndup((const char *)given, given_len)) == NULL) {
		code = fail(EXIT_FAIL, "%s: cannot read it again", p->bundle);
		goto out;
	}
	if (!bundle_given(given, given_len, bundle)) {
		code = fail(EXIT_REFUSED, "activation: the CA answered with a "
		    "bundle other than %s: not enrolled", p->bundle);
		goto out;
	}
	/*
	 * The pin next to the bundle, before the enrolment is recorded: the
	 * agent's CA client pins the same key from then on.
	 */
	if (pin_save(p, err, sizeof(err)) != 0) {
		code = fail(EXIT_FAIL, "%s", err);
		goto out;
	}
	/* What this host trusts is what the operator gave. */
	if (host_state_save_enrolment(&p->hs, host_id, spiffe, p->ca_url,
	    pinned, host_cert, err, sizeof(err)) != 0) {
		code = fail(EXIT_FAIL, "%s", err);
		goto out;
	}
	printf("provisioned: host %s (%s), enrolled with %s\n", host_id,
	    spiffe, p->ca_url);
	code = EXIT_OK;
 out:
	OPENSSL_cleanse(secret, sizeof(secret));
	/* The request held the join token. */
	if (req != NULL)
		json_object_clear(req);
	if (req2 != NULL)
		json_object_clear(req2);
	json_decref(req);
	json_decref(resp);
	json_decref(req2);
	json_decref(resp2);
	free(blob);
	free(enc);
	free(nonce);
	free(attest);
	free(sig);
	free(given);
	free(pinned);
	return code;
}

/* Already enrolled: prove the keys still load, and change nothing. */
static int
already(struct provision *p)
{
	if (p->ca_url != NULL && strcmp(p->ca_url, p->hs.ca_url) != 0)
		return fail(EXIT_FAIL, "this host is already enrolled as %s "
		    "with %s, not %s: remove %s to enrol anew", p->hs.host_id,
		    p->hs.ca_url, p->ca_url, p->hs.dir);
	if (key_load(p, &p->hs.ak_pub, &p->hs.ak_priv, &p->ak,
	    "attestation key") != 0)
		return EXIT_FAIL;
	flush(p, &p->ak);
	if (key_load(p, &p->hs.hk_pub, &p->hs.hk_priv, &p->hostkey,
	    "host key") != 0)
		return EXIT_FAIL;
	printf("already provisioned: host %s (%s) with %s; nothing changed\n",
	    p->hs.host_id, p->hs.spiffe_id, p->hs.ca_url);
	return EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ca", required_argument, NULL, 'u' },
		{ "ca-bundle", required_argument, NULL, 'b' },
		{ "ca-pin", required_argument, NULL, 'p' },
		{ "join-token", required_argument, NULL, 't' },
		{ "join-token-file", required_argument, NULL, 'T' },
		{ "status", no_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct provision p;
	const char *conf = DEFAULT_CONFIG, *token_file = NULL;
	char err[1024];
	int ch, status = 0, verbose = 0, code = EXIT_FAIL, r;

	memset(&p, 0, sizeof(p));
	p.srk = p.ak = p.hostkey = ESYS_TR_NONE;
	p.ek.handle = ESYS_TR_NONE;
	while ((ch = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'u': p.ca_url = optarg; break;
		case 'b': p.bundle = optarg; break;
		case 'p': p.pin = optarg; break;
		case 't':
			if (strlen(optarg) > TOKEN_MAX)
				return fail(EXIT_USAGE, "join token too long");
			snprintf(p.token, sizeof(p.token), "%s", optarg);
			/* Keep it out of ps(1) from now on. */
			OPENSSL_cleanse(optarg, strlen(optarg));
			break;
		case 'T': token_file = optarg; break;
		case 's': status = 1; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	log_init("botid-provision", verbose ? BOTID_LOG_DEBUG : BOTID_LOG_WARN,
	    0);
	/* Our one-line messages say it; tpm2-tss's own log is for -v. */
	if (!verbose && setenv("TSS2_LOG", "all+NONE", 0) == -1)
		return fail(EXIT_FAIL, "setenv: %s", strerror(errno));
	if (config_load(conf, &p.cfg, err, sizeof(err)) != 0)
		return fail(EXIT_FAIL, "%s", err);
	if ((r = host_state_load(p.cfg->state_dir, &p.hs, err,
	    sizeof(err))) != 0) {
		code = fail(EXIT_FAIL, "%s", err);
		goto out;
	}
	if (status) {
		if (p.hs.enrolled)
			printf("provisioned: host %s (%s) with %s\n",
			    p.hs.host_id, p.hs.spiffe_id, p.hs.ca_url);
		else
			printf("not provisioned%s\n", p.hs.have_keys ?
			    " (keys created, enrolment not finished)" : "");
		code = p.hs.enrolled ? EXIT_OK : EXIT_FAIL;
		goto out;
	}
	if (!p.hs.enrolled) {
		if (p.ca_url == NULL || p.bundle == NULL) {
			code = fail(EXIT_USAGE, "--ca and --ca-bundle are "
			    "needed to enrol");
			goto out;
		}
		if (token_file != NULL && (code = token_read(&p,
		    token_file)) != 0)
			goto out;
		if (access(p.bundle, R_OK) == -1) {
			code = fail(EXIT_USAGE, "%s: %s", p.bundle,
			    strerror(errno));
			goto out;
		}
		if (p.pin != NULL && !ca_client_pin_valid(p.pin)) {
			code = fail(EXIT_USAGE, "--ca-pin: not sha256// and a "
			    "base64 SHA-256 (botid-ca tls-pin prints it)");
			goto out;
		}
		if ((code = token_pin_take(&p)) != 0)
			goto out;
		if (ca_client_new(p.ca_url, p.bundle, &p.ca) != 0) {
			code = fail(EXIT_USAGE, "%s: not an https:// URL",
			    p.ca_url);
			goto out;
		}
		if (p.pin != NULL && ca_client_pin(p.ca, p.pin) != 0) {
			code = fail(EXIT_FAIL, "out of memory");
			goto out;
		}
	}
	if ((code = tpm_open(&p)) != 0)
		goto out;
	if (p.hs.enrolled)
		code = already(&p);
	else if ((code = keys_ensure(&p)) == 0)
		code = enrol(&p);
 out:
	OPENSSL_cleanse(p.token, sizeof(p.token));
	if (p.esys != NULL) {
		evidence_ek_close(p.esys, &p.ek);
		flush(&p, &p.ak);
		flush(&p, &p.hostkey);
		flush(&p, &p.srk);
		Esys_Finalize(&p.esys);
	}
	if (p.tcti != NULL)
		Tss2_TctiLdr_Finalize(&p.tcti);
	ca_client_free(p.ca);
	host_state_free(&p.hs);
	config_free(p.cfg);
	return code;
}
