/*
 * Certificate renewal (renew.h). Why it is built this way:
 *  - The event loop never blocks on the network or the TPM: it decides
 *    what is due and installs results; one worker thread does the HTTPS
 *    calls and the TPM certification, one bot at a time (the TPM is
 *    serial anyway, and the CA sees a gentle client).
 *  - A job holds a registry reference, so the key it certifies stays open
 *    even if a reload drops the bot meanwhile; the loop releases it.
 *  - A chain is installed only if its leaf certifies the bot's current
 *    key: a CA answering for the wrong key, or a key rotated meanwhile,
 *    never gets a mismatched certificate served.
 *  - Renewal starts at renew_at (half by default) of the certificate's
 *    life left on arrival; failures back off exponentially up to
 *    RENEW_BACKOFF_MAX, and the old certificate is served until it
 *    expires, with an error logged at every failure.
 */
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <tss2/tss2_tpm2_types.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/backend.h"
#include "agent/renew.h"
#include "agent/rotation.h"
#include "attest/ca-client.h"
#include "attest/host-state.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/certify-tbs.h"
#include "lib/sshkey.h"
#include "lib/file.h"
#include "lib/limits.h"
#include "lib/log.h"

#define RENEW_BACKOFF_MAX	300	/* seconds between failed attempts */
#define RENEW_CHAIN_MAX		(256u * 1024u)
#define RENEW_SSH_CERT_MAX	8192u	/* bytes in a bot's SSH certificate */
#define RENEW_CHAIN_CERTS	8
#define NONCE_MAX		64
#define CERTS_SUBDIR		"certs"

struct cert_entry {
	/* The bot's name, or BOT+jwt for its token key's certificate. */
	char			 name[BOTID_MAX_KEY_NAME + 1];
	uint8_t			*spki;		/* the key the chain is for */
	size_t			 spki_len;
	struct botid_blob	*chain;
	size_t			 nchain;
	time_t			 not_before;
	time_t			 not_after;
	char			 serial[80];	/* of the leaf, hex */
	uint8_t			*ssh_cert;	/* SSH certificate blob, or NULL */
	size_t			 ssh_cert_len;
	time_t			 ssh_before;	/* its valid_before */
	time_t			 next;		/* next attempt */
	unsigned		 failures;
	int			 inflight;
	int			 seen;		/* in the current registry */
	/* Rotation: scheduled (rotate_every) or asked (botid rotate). */
	time_t			 rotate_next;	/* 0: not scheduled */
	unsigned		 rotate_every;	/* the bot's, seconds */
	time_t			 retire_next;	/* 0: no retired key waits */
	unsigned		 retire_failures;
	int			 rotate_asked;	/* due: asked or scheduled */
	int			 rotation_loaded; /* rotate_next, retire_next */
	int			 gone;		/* bot removed: revocations only */
	renew_rotated_fn	 rotated;
	void			*rotated_cookie;
	/* The last finished attempt, for renew_status(). */
	time_t			 attempted;	/* 0: none since start */
	int			 attempt_ok;
	char			 error[256];
};

enum renew_job_kind {
	JOB_CERTIFY = 0,	/* a certificate for the bot's current key */
	JOB_ROTATE,		/* a new key, certified, made current */
	JOB_RETIRE,		/* retired keys past their grace: destroyed */
	JOB_DEPROVISION,	/* the host revoked at the CA */
	JOB_REVOKE,		/* a destroyed token key's certificate */
};

struct renew_job {
	struct renew_job	*next;
	enum renew_job_kind	 kind;
	struct botid_registry	*reg;		/* reference held */
	char			 name[BOTID_MAX_KEY_NAME + 1];
	/* A token key's: its bot (in reg, so alive while the job is). */
	const struct botid_bot_config *token_bot;
	struct botid_backend	*be;		/* the bot's key's backend */
	char			 old_serial[80];	/* rotate: served leaf */
	unsigned		 grace;		/* rotate: seconds */
	uint32_t		 new_gen;	/* rotate: result */
	time_t			 retire_next;	/* rotate, retire: result */
	int			 gone;		/* retire: the bot was removed */
	renew_done_fn		 done;		/* deprovision: the answer */
	void			*cookie;
	int			 tpm;		/* else pkcs11 */
	struct botid_key	*key;		/* tpm: the bot's key */
	struct botid_backend	*attest;	/* the TPM with AK, host key */
	uint8_t			*spki;
	size_t			 spki_len;
	/* Results. */
	int			 result;
	char			 error[256];
	struct botid_blob	*chain;
	char			*chain_pem;
	size_t			 nchain;
	time_t			 not_before;
	time_t			 not_after;
	char			 serial[80];
	uint8_t			*ssh_cert;	/* from POST /v1/ssh/certify */
	size_t			 ssh_cert_len;
	time_t			 ssh_before;
};

struct botid_renewer {
	struct host_state	 hs;
	char			*state_dir;
	struct ca_client	*ca;
	char			*certs_dir;
	struct cert_entry	*entries;
	size_t			 nentries;
	pthread_t		 thread;
	int			 thread_started;
	pthread_mutex_t		 lock;		/* queue, done, stop */
	pthread_cond_t		 cond;
	unsigned		 renew_percent;	/* config renew_at */
	char			*event_log;	/* config event_log */
	int			 rebuild;	/* a rotation switched keys */
	struct renew_job	*queue;
	struct renew_job	*done;
	int			 stop;
	int			 efd;
};

static void
blobs_free(struct botid_blob *b, size_t n)
{
	size_t i;

	for (i = 0; b != NULL && i < n; i++)
		free(b[i].data);
	free(b);
}

static time_t
asn1_time_to_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/*
 * Parses a PEM chain into DER blobs, checking that the leaf certifies
 * spki. Fills the validity and serial of the leaf.
 */
static int
chain_parse(const char *pem, size_t len, const uint8_t *spki,
    size_t spki_len, struct botid_blob **chainp, size_t *np,
    time_t *not_before, time_t *not_after, char *serial, size_t serial_len,
    char *err, size_t errlen)
{
	struct botid_blob *chain = NULL;
	uint8_t *der = NULL, *leaf_spki = NULL;
	BIO *bio = NULL;
	X509 *x = NULL;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	size_t n = 0;
	int dlen, slen, r = BOTID_ERR_PROTOCOL;

	*chainp = NULL;
	*np = 0;
	if (len > RENEW_CHAIN_MAX ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (chain = calloc(RENEW_CHAIN_CERTS, sizeof(*chain))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (n == RENEW_CHAIN_CERTS) {
			snprintf(err, errlen, "chain longer than %d "
			    "certificates", RENEW_CHAIN_CERTS);
			goto out;
		}
		if (n == 0) {
			if ((slen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x),
			    &leaf_spki)) <= 0) {
				leaf_spki = NULL;
				goto out;
			}
			if ((size_t)slen != spki_len ||
			    memcmp(leaf_spki, spki, spki_len) != 0) {
				snprintf(err, errlen, "the certificate is not "
				    "for the bot's key");
				r = BOTID_ERR_DENIED;
				goto out;
			}
			*not_before = asn1_time_to_time(X509_get0_notBefore(x));
			*not_after = asn1_time_to_time(X509_get0_notAfter(x));
			if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x),
			    NULL)) == NULL || (hex = BN_bn2hex(bn)) == NULL)
				goto out;
			snprintf(serial, serial_len, "%s", hex);
		}
		der = NULL;
		if ((dlen = i2d_X509(x, &der)) <= 0) {
			der = NULL;
			goto out;
		}
		chain[n].data = der;
		chain[n].len = (size_t)dlen;
		n++;
		X509_free(x);
		x = NULL;
	}
	ERR_clear_error();
	if (n == 0 || *not_after <= *not_before) {
		snprintf(err, errlen, "no usable certificate in the chain");
		goto out;
	}
	*chainp = chain;
	*np = n;
	chain = NULL;
	r = 0;
 out:
	if (r == BOTID_ERR_PROTOCOL && err[0] == '\0')
		snprintf(err, errlen, "malformed certificate chain");
	blobs_free(chain, n);
	OPENSSL_free(leaf_spki);
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	BIO_free(bio);
	return r;
}

/* ------------------------------------------------------------------ */
/* The worker */

static int
json_str(json_t *o, const char *key, const char **s)
{
	json_t *v = json_object_get(o, key);

	*s = json_is_string(v) ? json_string_value(v) : NULL;
	return *s != NULL ? 0 : BOTID_ERR_PROTOCOL;
}

/* What the host key signs for a PKCS#11 bot, hashed for TPM2_Sign. */
static int
pkcs11_tbs_digest(const uint8_t *nonce, size_t nonce_len, const char *bot,
    const uint8_t *spki, size_t spki_len, uint8_t digest[32])
{
	uint8_t *tbs = NULL;
	size_t len = 0;
	int r;

	if ((r = certify_pkcs11_tbs(nonce, nonce_len, bot, spki, spki_len,
	    &tbs, &len)) != 0)
		return r;
	r = EVP_Digest(tbs, len, digest, NULL, EVP_sha256(), NULL) == 1 ? 0 :
	    BOTID_ERR_CRYPTO;
	free(tbs);
	return r;
}

/* Writes the job's chain to STATE_DIR/certs/BOT.pem; failure only logs. */
static void
chain_cache(struct botid_renewer *rn, const struct renew_job *job)
{
	char *path = NULL;

	if (job->chain_pem == NULL)
		return;
	if (asprintf(&path, "%s/%s.pem", rn->certs_dir, job->name) == -1)
		return;
	if (file_write_atomic(path, job->chain_pem, strlen(job->chain_pem),
	    0644) != 0)
		log_warn("bot %s: cannot cache its certificate in %s", job->name,
		    path);
	free(path);
}

/*
 * A token key's request also names its purpose and the grant the agent
 * enforces; botid-ca caps the lifetime and keeps the issuer its own.
 */
static int
token_request(json_t *req, const struct botid_bot_config *bot)
{
	json_t *scopes;
	size_t i;

	if ((scopes = json_array()) == NULL)
		return BOTID_ERR_ALLOC;
	for (i = 0; i < bot->nscopes; i++)
		if (json_array_append_new(scopes,
		    json_string(bot->scopes[i])) != 0) {
			json_decref(scopes);
			return BOTID_ERR_ALLOC;
		}
	if (json_object_set_new(req, "scopes", scopes) != 0 ||
	    json_object_set_new(req, "purpose", json_string("token")) != 0 ||
	    json_object_set_new(req, "max_token_ttl",
	    json_integer((json_int_t)bot->max_token_ttl)) != 0)
		return BOTID_ERR_ALLOC;
	return 0;
}

/*
 * The PCR selection the CA's nonce answer asks a quote over
 * (doc/ca-api.md): pcr_bank "sha256" and pcr_select, indices 0 to 23.
 * Neither member: no quote (*mask 0). Errors: BOTID_ERR_PROTOCOL.
 */
static int
pcr_wanted(json_t *resp, uint16_t *bank, uint32_t *mask)
{
	json_t *b, *sel, *v;
	json_int_t i;
	size_t k;

	*bank = 0;
	*mask = 0;
	b = json_object_get(resp, "pcr_bank");
	sel = json_object_get(resp, "pcr_select");
	if (b == NULL && sel == NULL)
		return 0;
	if (!json_is_string(b) || strcmp(json_string_value(b), "sha256") != 0 ||
	    !json_is_array(sel) || json_array_size(sel) == 0)
		return BOTID_ERR_PROTOCOL;
	json_array_foreach(sel, k, v) {
		if (!json_is_integer(v) || (i = json_integer_value(v)) < 0 ||
		    i > 23)
			return BOTID_ERR_PROTOCOL;
		*mask |= 1u << i;
	}
	*bank = TPM2_ALG_SHA256;
	return 0;
}

/* ------------------------------------------------------------------ */
/* SSH certificates (botid-ca's POST /v1/ssh/certify), on the worker */

/*
 * The certificate blob of an OpenSSH line "TYPE BASE64[ comment]" from the
 * CA or the cache, if it is a user certificate for spki's key: *blob
 * (malloc'd) and its valid_before. Errors: BOTID_ERR_INVALID, _ALLOC.
 */
static int
ssh_cert_parse(const char *line, size_t len, const uint8_t *spki,
    size_t spki_len, uint8_t **blob, size_t *blob_len, time_t *before)
{
	struct botid_buf b, key;
	enum botid_sshkey_kind kind;
	uint64_t vb = 0;
	size_t off, end;
	char *b64 = NULL;
	int r;

	*blob = NULL;
	*blob_len = 0;
	*before = 0;
	buf_init_view(&b, line, len);
	buf_init(&key, BOTID_SSH_MAX_KEY_BLOB);
	if (buf_find_byte(&b, ' ', &off) != 0 || buf_consume(&b, off + 1) != 0) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if (buf_find_byte(&b, ' ', &end) != 0 &&
	    buf_find_byte(&b, '\n', &end) != 0)
		end = buf_len(&b);
	if (end == 0 || end > 4 * RENEW_SSH_CERT_MAX / 3 + 4 ||
	    (b64 = strndup((const char *)buf_ptr(&b), end)) == NULL) {
		r = end == 0 ? BOTID_ERR_INVALID : BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = base64_decode(b64, RENEW_SSH_CERT_MAX, blob, blob_len)) != 0 ||
	    (r = sshkey_from_spki(spki, spki_len, &key, &kind)) != 0 ||
	    (r = sshkey_cert_check(*blob, *blob_len, buf_ptr(&key),
	    buf_len(&key), &vb)) != 0)
		goto out;
	*before = vb > (uint64_t)INT64_MAX ? (time_t)INT64_MAX : (time_t)vb;
	r = 0;
 out:
	if (r != 0) {
		free(*blob);
		*blob = NULL;
		*blob_len = 0;
		if (r != BOTID_ERR_ALLOC)
			r = BOTID_ERR_INVALID;
	}
	free(b64);
	buf_reset(&key);
	return r;
}

/*
 * Asks the CA for an SSH certificate for the leaf just certified. A CA
 * without an SSH key (404) or any failure leaves the bot without one:
 * its X.509 certificate stands on its own.
 */
static void
ssh_fetch(struct botid_renewer *rn, struct renew_job *job)
{
	json_t *req = NULL, *resp = NULL;
	const unsigned char *p;
	X509 *x = NULL;
	BIO *bio = NULL;
	char *pem = NULL, *path = NULL, err[256];
	const char *line;
	long n;

	if (job->nchain == 0)
		return;
	p = job->chain[0].data;
	if ((x = d2i_X509(NULL, &p, (long)job->chain[0].len)) == NULL ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, x) != 1 ||
	    (n = BIO_get_mem_data(bio, &pem)) <= 0 ||
	    (req = json_pack("{s:s%}", "certificate", pem, (size_t)n)) ==
	    NULL)
		goto out;
	err[0] = '\0';
	if (ca_client_post(rn->ca, "/v1/ssh/certify", req, &resp, err,
	    sizeof(err)) != 0) {
		log_debug("bot %s: no SSH certificate: %s", job->name, err);
		goto out;
	}
	if (json_str(resp, "certificate", &line) != 0 ||
	    ssh_cert_parse(line, strlen(line), job->spki, job->spki_len,
	    &job->ssh_cert, &job->ssh_cert_len, &job->ssh_before) != 0) {
		log_warn("bot %s: the CA's SSH certificate is not for its key",
		    job->name);
		goto out;
	}
	/* Cached beside the chain, for the next start. */
	if (asprintf(&path, "%s/%s.ssh-cert", rn->certs_dir, job->name) != -1 &&
	    file_write_atomic(path, line, strlen(line), 0644) != 0)
		log_warn("bot %s: cannot cache its SSH certificate", job->name);
 out:
	ERR_clear_error();
	free(path);
	json_decref(req);
	json_decref(resp);
	BIO_free(bio);
	X509_free(x);
}

static int
job_run(struct botid_renewer *rn, struct renew_job *job)
{
	json_t *req = NULL, *resp = NULL;
	uint8_t *nonce = NULL, *pub = NULL, *attest = NULL, *sig = NULL;
	uint8_t digest[32], *qatt = NULL, *qsig = NULL, *qval = NULL;
	size_t nonce_len = 0, pub_len = 0, attest_len = 0, sig_len = 0;
	size_t qatt_len = 0, qsig_len = 0, qval_len = 0;
	const char *chain;
	uint8_t *evlog = NULL;
	size_t evlog_len = 0;
	uint32_t mask = 0;
	uint16_t bank = 0;
	int want_log = 0, r;

	if ((req = json_pack("{s:s}", "host_id", rn->hs.host_id)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = ca_client_post(rn->ca, "/v1/nonce", req, &resp, job->error,
	    sizeof(job->error))) != 0)
		goto out;
	/* The CA's nonces are 32 bytes; the vouching message takes no other. */
	if ((r = ca_json_get_b64(resp, "nonce", NONCE_MAX, &nonce,
	    &nonce_len)) == 0 && nonce_len != BOTID_NONCE_LEN)
		r = BOTID_ERR_PROTOCOL;
	if (r != 0) {
		snprintf(job->error, sizeof(job->error), "malformed nonce "
		    "from the CA");
		goto out;
	}
	if ((r = pcr_wanted(resp, &bank, &mask)) != 0) {
		snprintf(job->error, sizeof(job->error), "malformed PCR "
		    "selection from the CA");
		goto out;
	}
	want_log = json_is_true(json_object_get(resp, "pcr_eventlog"));
	json_decref(req);
	json_decref(resp);
	resp = NULL;
	if ((req = json_pack("{s:s, s:s, s:s}", "host_id", rn->hs.host_id,
	    "bot", job->token_bot != NULL ? job->token_bot->name : job->name,
	    "attestation", job->tpm ? "tpm" : "pkcs11")) == NULL ||
	    (r = ca_json_set_b64(req, "nonce", nonce, nonce_len)) != 0 ||
	    (job->token_bot != NULL && (r = token_request(req,
	    job->token_bot)) != 0)) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (job->tpm) {
		if ((r = backend_tpm_key_public(job->key, &pub,
		    &pub_len)) != 0 ||
		    (r = backend_tpm_certify(job->attest, job->key, nonce,
		    nonce_len, &attest, &attest_len, &sig, &sig_len)) != 0) {
			snprintf(job->error, sizeof(job->error), "the TPM "
			    "cannot certify the key: %s", botid_strerror(r));
			goto out;
		}
		if ((r = ca_json_set_b64(req, "public", pub, pub_len)) != 0 ||
		    (r = ca_json_set_b64(req, "attest", attest,
		    attest_len)) != 0)
			goto out;
	} else {
		if ((r = pkcs11_tbs_digest(nonce, nonce_len, job->name,
		    job->spki, job->spki_len, digest)) != 0 ||
		    (r = backend_tpm_host_sign(job->attest, digest, &sig,
		    &sig_len)) != 0) {
			snprintf(job->error, sizeof(job->error), "the TPM "
			    "host key cannot sign: %s", botid_strerror(r));
			goto out;
		}
		if ((r = ca_json_set_b64(req, "spki", job->spki,
		    job->spki_len)) != 0)
			goto out;
	}
	if ((r = ca_json_set_b64(req, "signature", sig, sig_len)) != 0)
		goto out;
	/* The CA's boot-state policy wants the host's PCRs quoted. */
	if (mask != 0) {
		if ((r = backend_tpm_quote(job->attest, bank, mask, nonce,
		    nonce_len, &qatt, &qatt_len, &qsig, &qsig_len, &qval,
		    &qval_len)) != 0) {
			snprintf(job->error, sizeof(job->error), "the TPM "
			    "cannot quote the PCRs: %s", botid_strerror(r));
			goto out;
		}
		if ((r = ca_json_set_b64(req, "pcr_quote", qatt,
		    qatt_len)) != 0 ||
		    (r = ca_json_set_b64(req, "pcr_signature", qsig,
		    qsig_len)) != 0 ||
		    (r = ca_json_set_b64(req, "pcr_values", qval,
		    qval_len)) != 0)
			goto out;
		if (want_log) {
			if ((r = file_read(rn->event_log, BOTID_MAX_EVENTLOG,
			    &evlog, &evlog_len)) != 0) {
				snprintf(job->error, sizeof(job->error),
				    "cannot read the event log %s: %s",
				    rn->event_log, botid_strerror(r));
				goto out;
			}
			if ((r = ca_json_set_b64(req, "pcr_eventlog", evlog,
			    evlog_len)) != 0)
				goto out;
		}
	}
	if ((r = ca_client_post(rn->ca, "/v1/certify", req, &resp, job->error,
	    sizeof(job->error))) != 0)
		goto out;
	if ((r = json_str(resp, "chain", &chain)) != 0) {
		snprintf(job->error, sizeof(job->error), "the CA's answer has "
		    "no chain");
		goto out;
	}
	if ((r = chain_parse(chain, strlen(chain), job->spki, job->spki_len,
	    &job->chain, &job->nchain, &job->not_before, &job->not_after,
	    job->serial, sizeof(job->serial), job->error,
	    sizeof(job->error))) != 0)
		goto out;
	/*
	 * The cache is a convenience: failing to write it is not fatal. A
	 * rotation writes it once the new key is current.
	 */
	if ((job->chain_pem = strdup(chain)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if (job->kind == JOB_CERTIFY)
		chain_cache(rn, job);
	if (job->token_bot == NULL)
		ssh_fetch(rn, job);
	r = 0;
 out:
	if (r != 0 && job->error[0] == '\0')
		snprintf(job->error, sizeof(job->error), "%s",
		    botid_strerror(r));
	json_decref(req);
	json_decref(resp);
	free(nonce);
	free(pub);
	free(attest);
	free(sig);
	free(qatt);
	free(qsig);
	free(qval);
	free(evlog);
	return r;
}

/* ------------------------------------------------------------------ */
/* Rotation, on the worker */

/* The host key signs revocations, as it vouches for PKCS#11 keys. */
static int
host_sign(void *arg, const uint8_t digest[32], uint8_t **sig, size_t *len)
{
	return backend_tpm_host_sign(arg, digest, sig, len);
}

/* The earliest time a retired key of st waits for; 0 for none. */
static time_t
retire_due(const struct rotation_state *st)
{
	time_t t = 0;
	size_t i;

	for (i = 0; i < st->nretired; i++)
		if (t == 0 || st->retired[i].destroy_after < t)
			t = st->retired[i].destroy_after;
	return st->nretired > 0 && t == 0 ? 1 : t;	/* 0 means none */
}

/*
 * A new key for the bot: its name is recorded as pending first, so that
 * a crash at any later point leaves a key the next start can find and
 * destroy; it becomes current only once certified, in one atomic write
 * that also schedules the old key's destruction.
 */
static int
rotate_run(struct botid_renewer *rn, struct renew_job *job)
{
	struct rotation_state st;
	struct botid_bot_config kc;
	struct botid_key *key = NULL;
	struct rotation_retired *rt;
	char name[BOTID_MAX_KEY_NAME + 1];
	uint8_t *spki = NULL;
	size_t spki_len = 0;
	uint32_t next;
	int r, made = 0, lock = -1;

	memset(&st, 0, sizeof(st));
	/* Held until the state is final: a reload must not write between. */
	if ((r = rotation_lock(rn->state_dir, job->name, 1, &lock)) != 0) {
		snprintf(job->error, sizeof(job->error), "cannot lock the "
		    "bot's key state: %s", botid_strerror(r));
		goto out;
	}
	if ((r = rotation_load(rn->state_dir, job->name, &st)) != 0) {
		snprintf(job->error, sizeof(job->error), "cannot read the "
		    "bot's key state: %s", botid_strerror(r));
		goto out;
	}
	if (st.nretired >= ROTATION_MAX_RETIRED) {
		snprintf(job->error, sizeof(job->error), "%u retired keys "
		    "still wait to be destroyed", ROTATION_MAX_RETIRED);
		r = BOTID_ERR_BUSY;
		goto out;
	}
	if (st.gen == UINT32_MAX) {
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	next = st.gen + 1;
	st.pending = next;
	if ((r = rotation_save(rn->state_dir, &st)) != 0)
		goto out;
	made = 1;
	rotation_crash_point("rotate-pending");
	rotation_key_config(&st, next, name, &kc);
	if ((r = job->be->ops->key_open(job->be, &kc, &key, &spki,
	    &spki_len)) != 0) {
		snprintf(job->error, sizeof(job->error), "cannot make the new "
		    "key %s: %s", name, botid_strerror(r));
		goto out;
	}
	rotation_crash_point("rotate-created");
	rotation_pause_point("rotate-created", job->name);
	free(job->spki);
	job->spki = spki;
	job->spki_len = spki_len;
	spki = NULL;
	job->key = key;
	if ((r = job_run(rn, job)) != 0)
		goto out;
	rotation_crash_point("rotate-certified");
	/* Checked at the start; the state cannot have grown since. */
	if ((r = rotation_retired_add(&st, ROTATION_MAX_RETIRED, &rt)) != 0) {
		snprintf(job->error, sizeof(job->error), "%u retired keys "
		    "still wait to be destroyed", ROTATION_MAX_RETIRED);
		goto out;
	}
	rt->gen = st.gen;
	snprintf(rt->serial, sizeof(rt->serial), "%s", job->old_serial);
	rt->destroy_after = time(NULL) + (time_t)job->grace;
	st.gen = next;
	st.created = time(NULL);
	st.pending = 0;
	if ((r = rotation_save(rn->state_dir, &st)) != 0) {
		st.nretired--;
		st.gen = next - 1;
		st.pending = next;
		goto out;
	}
	made = 0;
	rotation_crash_point("rotate-committed");
	chain_cache(rn, job);
	job->new_gen = next;
	job->retire_next = retire_due(&st);
	log_info("bot %s: rotated to key %s; the old key is destroyed after "
	    "%us", job->name, name, job->grace);
	r = 0;
 out:
	/* The loop thread opens the new key from its name, by itself. */
	job->be->ops->key_close(job->be, key);
	job->key = NULL;
	if (made) {
		/* Never used: destroyed again, and the state says so. */
		int rr;

		rotation_key_config(&st, next, name, &kc);
		rr = job->be->ops->key_remove(job->be, &kc);
		if (rr == 0 || rr == BOTID_ERR_NOT_FOUND) {
			st.pending = 0;
			(void)rotation_save(rn->state_dir, &st);
		}
	}
	free(spki);
	rotation_free(&st);
	rotation_unlock(lock);
	return r;
}

/*
 * Retired keys past their grace period: destroyed (and the state says
 * so before anything else), then their certificates revoked. A CA that
 * cannot be reached leaves the revocation for the next attempt.
 */
static int
retire_run(struct botid_renewer *rn, struct renew_job *job)
{
	struct rotation_state st;
	struct botid_bot_config kc;
	struct rotation_retired *rt;
	char name[BOTID_MAX_KEY_NAME + 1];
	time_t now = time(NULL);
	size_t i;
	int r, failed = 0, lock = -1;

	memset(&st, 0, sizeof(st));
	if ((r = rotation_lock(rn->state_dir, job->name, 1, &lock)) != 0) {
		snprintf(job->error, sizeof(job->error), "cannot lock the "
		    "bot's key state: %s", botid_strerror(r));
		goto out;
	}
	if ((r = rotation_load(rn->state_dir, job->name, &st)) != 0) {
		snprintf(job->error, sizeof(job->error), "cannot read the "
		    "bot's key state: %s", botid_strerror(r));
		goto out;
	}
	for (i = 0; i < st.nretired; ) {
		rt = &st.retired[i];
		if (rt->destroy_after > now) {
			i++;
			continue;
		}
		if (!rt->destroyed && job->be == NULL) {
			i++;
			continue;
		}
		if (!rt->destroyed) {
			rotation_key_config(&st, rt->gen, name, &kc);
			r = rotation_key_remove(job->be, &kc);
			if (r != 0 && r != BOTID_ERR_NOT_FOUND) {
				snprintf(job->error, sizeof(job->error),
				    "cannot destroy the old key %s: %s", name,
				    botid_strerror(r));
				failed = r;
				i++;
				continue;
			}
			rt->destroyed = 1;
			if ((r = rotation_save(rn->state_dir, &st)) != 0)
				goto out;
			rotation_crash_point("retire-destroyed");
		}
		if (rt->serial[0] != '\0' && (r = ca_client_revoke(rn->ca,
		    rn->hs.host_id, rt->serial, "superseded", host_sign,
		    job->attest, job->error, sizeof(job->error))) != 0) {
			log_err("bot %s: the old certificate %s is not revoked "
			    "yet: %s", job->name, rt->serial, job->error);
			failed = r;
			i++;
			continue;
		}
		log_info("bot %s: old key generation %u destroyed%s%s", job->name,
		    (unsigned)rt->gen, rt->serial[0] != '\0' ?
		    ", certificate revoked: " : "", rt->serial);
		st.retired[i] = st.retired[st.nretired - 1];
		st.nretired--;
		if ((r = rotation_save(rn->state_dir, &st)) != 0)
			goto out;
	}
	job->retire_next = retire_due(&st);
	/* A removed bot whose certificates are all revoked: forgotten. */
	if (failed == 0 && st.removed && st.nretired == 0 &&
	    (r = rotation_remove(rn->state_dir, job->name)) != 0)
		goto out;
	r = failed;
 out:
	rotation_free(&st);
	rotation_unlock(lock);
	return r;
}

static void *
renew_worker(void *arg)
{
	struct botid_renewer *rn = arg;
	struct renew_job *job, **pp;
	uint64_t one = 1;

	(void)pthread_mutex_lock(&rn->lock);
	for (;;) {
		while (rn->queue == NULL && !rn->stop)
			(void)pthread_cond_wait(&rn->cond, &rn->lock);
		if (rn->stop)
			break;
		job = rn->queue;
		rn->queue = job->next;
		job->next = NULL;
		(void)pthread_mutex_unlock(&rn->lock);
		switch (job->kind) {
		case JOB_CERTIFY:
			job->result = job_run(rn, job);
			break;
		case JOB_ROTATE:
			job->result = rotate_run(rn, job);
			break;
		case JOB_RETIRE:
			job->result = retire_run(rn, job);
			break;
		case JOB_DEPROVISION:
			job->result = ca_client_revoke(rn->ca, rn->hs.host_id,
			    NULL, "cessationOfOperation", host_sign,
			    job->attest, job->error, sizeof(job->error));
			/*
			 * Revoked by the CA's operator already: what the
			 * request was for holds, so the keys may go.
			 */
			if (job->result == BOTID_ERR_DENIED &&
			    ca_client_host_revoked(rn->ca)) {
				job->result = 0;
				snprintf(job->error, sizeof(job->error),
				    "the CA says the host was already revoked");
			}
			break;
		case JOB_REVOKE:
			job->result = ca_client_revoke(rn->ca, rn->hs.host_id,
			    job->old_serial, "cessationOfOperation", host_sign,
			    job->attest, job->error, sizeof(job->error));
			break;
		}
		(void)pthread_mutex_lock(&rn->lock);
		for (pp = &rn->done; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = job;
		if (write(rn->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			log_err("renew: eventfd: %s", strerror(errno));
	}
	(void)pthread_mutex_unlock(&rn->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The loop's side */

static struct cert_entry *
entry_find(struct botid_renewer *rn, const char *name)
{
	size_t i;

	for (i = 0; i < rn->nentries; i++)
		if (strcmp(rn->entries[i].name, name) == 0)
			return &rn->entries[i];
	return NULL;
}

static void
entry_clear_chain(struct cert_entry *e)
{
	blobs_free(e->chain, e->nchain);
	e->chain = NULL;
	e->nchain = 0;
	free(e->ssh_cert);
	e->ssh_cert = NULL;
	e->ssh_cert_len = 0;
	e->ssh_before = 0;
	e->not_before = e->not_after = 0;
	e->serial[0] = '\0';
}

/*
 * renew_at (50% by default) of the way through what was left of the
 * certificate's life when it came. botid-ca dates notBefore a minute back
 * for clock skew: counting from it, a certificate living a minute or less
 * would be renewed at once, for ever.
 */
static time_t
renew_at(const struct botid_renewer *rn, time_t not_before,
    time_t not_after, time_t now)
{
	time_t start = not_before > now ? not_before : now;

	if (not_after <= start)
		return now;
	return start + (not_after - start) * (time_t)rn->renew_percent / 100;
}

/* A cached chain from an earlier run, if it is for this key and alive. */
static void
entry_load_cache(struct botid_renewer *rn, struct cert_entry *e)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	char *path = NULL, err[256], serial[80];
	time_t nb = 0, na = 0;

	err[0] = '\0';
	if (asprintf(&path, "%s/%s.pem", rn->certs_dir, e->name) == -1) {
		path = NULL;
		goto out;
	}
	if (file_read(path, RENEW_CHAIN_MAX, &pem, &len) != 0)
		goto out;
	if (chain_parse((const char *)pem, len, e->spki, e->spki_len,
	    &e->chain, &e->nchain, &nb, &na, serial, sizeof(serial), err,
	    sizeof(err)) != 0) {
		log_info("bot %s: ignoring the cached certificate: %s",
		    e->name, err);
		goto out;
	}
	if (na <= time(NULL)) {
		entry_clear_chain(e);
		goto out;
	}
	e->not_before = nb;
	e->not_after = na;
	snprintf(e->serial, sizeof(e->serial), "%s", serial);
	e->next = renew_at(rn, nb, na, time(NULL));
	free(path);
	free(pem);
	pem = NULL;
	if (asprintf(&path, "%s/%s.ssh-cert", rn->certs_dir, e->name) == -1)
		path = NULL;
	else if (file_read(path, RENEW_SSH_CERT_MAX * 2, &pem, &len) == 0 &&
	    ssh_cert_parse((const char *)pem, len, e->spki, e->spki_len,
	    &e->ssh_cert, &e->ssh_cert_len, &e->ssh_before) == 0 &&
	    e->ssh_before <= time(NULL)) {
		free(e->ssh_cert);
		e->ssh_cert = NULL;
		e->ssh_cert_len = 0;
	}
	log_info("bot %s: using the cached certificate %s, valid until %ld",
	    e->name, serial, (long)na);
 out:
	free(pem);
	free(path);
}

static int
entry_add(struct botid_renewer *rn, const struct botid_bot *bot,
    struct cert_entry **ep)
{
	struct cert_entry *e, *n;
	const uint8_t *spki;
	size_t spki_len;

	if ((n = reallocarray(rn->entries, rn->nentries + 1,
	    sizeof(*n))) == NULL)
		return BOTID_ERR_ALLOC;
	rn->entries = n;
	e = &rn->entries[rn->nentries];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", bot->cfg->name);
	spki = registry_spki(bot, &spki_len);
	if ((e->spki = malloc(spki_len)) == NULL)
		return BOTID_ERR_ALLOC;
	memcpy(e->spki, spki, spki_len);
	e->spki_len = spki_len;
	rn->nentries++;
	entry_load_cache(rn, e);
	*ep = e;
	return 0;
}

/* An entry for a removed bot: no key, a revocation to make. */
static int
entry_add_gone(struct botid_renewer *rn, const char *name,
    struct cert_entry **ep)
{
	struct cert_entry *e, *n;

	if ((n = reallocarray(rn->entries, rn->nentries + 1,
	    sizeof(*n))) == NULL)
		return BOTID_ERR_ALLOC;
	rn->entries = n;
	e = &rn->entries[rn->nentries++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->gone = 1;
	e->rotation_loaded = 1;
	e->retire_next = 1;	/* now */
	*ep = e;
	return 0;
}

static void
entry_remove(struct botid_renewer *rn, size_t i)
{
	entry_clear_chain(&rn->entries[i]);
	free(rn->entries[i].spki);
	rn->entries[i] = rn->entries[rn->nentries - 1];
	rn->nentries--;
}

/* Hands job to the worker, after the jobs already queued. */
static void
job_enqueue(struct botid_renewer *rn, struct renew_job *job)
{
	struct renew_job **pp;

	(void)pthread_mutex_lock(&rn->lock);
	for (pp = &rn->queue; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = job;
	(void)pthread_cond_signal(&rn->cond);
	(void)pthread_mutex_unlock(&rn->lock);
}

static int
job_submit(struct botid_renewer *rn, struct botid_registry *reg,
    struct botid_bot *bot, struct cert_entry *e, enum renew_job_kind kind)
{
	struct renew_job *job;

	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->spki = malloc(e->spki_len)) == NULL) {
		free(job);
		return BOTID_ERR_ALLOC;
	}
	job->kind = kind;
	snprintf(job->name, sizeof(job->name), "%s", e->name);
	memcpy(job->spki, e->spki, e->spki_len);
	job->spki_len = e->spki_len;
	job->tpm = bot->cfg->backend == BOTID_BACKEND_TPM;
	job->key = kind == JOB_CERTIFY ? registry_key(bot) : NULL;
	job->be = registry_backend(bot);
	job->attest = registry_attest_backend(reg);
	job->grace = reg->cfg->rotate_grace;
	if (e->nchain > 0)
		snprintf(job->old_serial, sizeof(job->old_serial), "%s",
		    e->serial);
	job->reg = reg;
	registry_ref(reg);
	e->inflight = 1;
	job_enqueue(rn, job);
	return 0;
}

static int
job_submit_gone(struct botid_renewer *rn, struct botid_registry *reg,
    struct cert_entry *e)
{
	struct renew_job *job;

	if ((job = calloc(1, sizeof(*job))) == NULL)
		return BOTID_ERR_ALLOC;
	job->kind = JOB_RETIRE;
	job->gone = 1;
	snprintf(job->name, sizeof(job->name), "%s", e->name);
	job->attest = registry_attest_backend(reg);
	job->reg = reg;
	registry_ref(reg);
	e->inflight = 1;
	job_enqueue(rn, job);
	return 0;
}

/* When the bot's current key is due for rotate_every, from its state. */
static void
entry_load_rotation(struct botid_renewer *rn, struct cert_entry *e,
    const struct botid_bot *bot)
{
	struct rotation_state st;

	if (rotation_load(rn->state_dir, e->name, &st) != 0)
		return;
	e->retire_next = retire_due(&st);
	e->rotate_every = bot->cfg->rotate_every;
	e->rotate_next = bot->cfg->rotate_every == 0 ? 0 :
	    st.created + (time_t)bot->cfg->rotate_every;
	rotation_free(&st);
}

int
renew_deprovision(struct botid_renewer *rn, struct botid_registry *reg,
    renew_done_fn done, void *cookie)
{
	struct renew_job *job;

	if (rn == NULL)
		return BOTID_ERR_NOT_FOUND;
	if (registry_attest_backend(reg) == NULL)
		return BOTID_ERR_UNAVAILABLE;
	if ((job = calloc(1, sizeof(*job))) == NULL)
		return BOTID_ERR_ALLOC;
	job->kind = JOB_DEPROVISION;
	snprintf(job->name, sizeof(job->name), "%s", "(host)");
	job->attest = registry_attest_backend(reg);
	job->done = done;
	job->cookie = cookie;
	job->reg = reg;
	registry_ref(reg);
	job_enqueue(rn, job);
	return 0;
}

int
renew_rotate(struct botid_renewer *rn, struct botid_registry *reg,
    struct botid_bot *bot, renew_rotated_fn done, void *cookie)
{
	struct cert_entry *e;
	int r;

	if (rn == NULL)
		return BOTID_ERR_NOT_FOUND;
	if (bot->key == NULL || (e = entry_find(rn, bot->cfg->name)) == NULL)
		return BOTID_ERR_UNAVAILABLE;
	if (e->rotate_asked)
		return BOTID_ERR_BUSY;
	if (bot->cfg->backend == BOTID_BACKEND_TPM &&
	    registry_attest_backend(reg) == NULL)
		return BOTID_ERR_UNAVAILABLE;
	/* After what is in flight for the bot (the worker runs in order). */
	e->rotate_asked = 1;
	e->rotated = done;
	e->rotated_cookie = cookie;
	if (!e->inflight && (r = job_submit(rn, reg, bot, e, JOB_ROTATE)) != 0) {
		e->rotate_asked = 0;
		return r;
	}
	return 0;
}

/*
 * The certificate of a bot's token key: an entry of its own, BOT+jwt,
 * certified like the bot's key and renewed on the same schedule; a new
 * token key (a rotation made one with the bot's new key) is certified at
 * the next tick.
 */
static void
token_tick(struct botid_renewer *rn, struct botid_registry *reg,
    struct botid_bot *bot, time_t now)
{
	struct renew_job *job = NULL;
	struct cert_entry *e, *n;
	const uint8_t *spki;
	size_t spki_len;
	char name[BOTID_MAX_KEY_NAME + 1];

	if (registry_token_key(bot) == NULL)
		return;
	snprintf(name, sizeof(name), "%s%s", bot->cfg->name,
	    BOTID_TOKEN_KEY_SUFFIX);
	spki = registry_token_spki(bot, &spki_len);
	if ((e = entry_find(rn, name)) == NULL) {
		if ((n = reallocarray(rn->entries, rn->nentries + 1,
		    sizeof(*n))) == NULL)
			goto oom;
		rn->entries = n;
		e = &rn->entries[rn->nentries];
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->rotation_loaded = 1;	/* rotates with its bot */
		rn->nentries++;
	}
	e->seen = 1;
	if (spki_len != e->spki_len || e->spki == NULL ||
	    memcmp(spki, e->spki, spki_len) != 0) {
		uint8_t *copy = malloc(spki_len);

		if (copy == NULL)
			goto oom;
		memcpy(copy, spki, spki_len);
		free(e->spki);
		e->spki = copy;
		e->spki_len = spki_len;
		entry_clear_chain(e);
		e->next = 0;
		entry_load_cache(rn, e);
	}
	if (e->inflight || now < e->next ||
	    registry_attest_backend(reg) == NULL)
		return;
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->spki = malloc(spki_len)) == NULL)
		goto oom;
	job->kind = JOB_CERTIFY;
	snprintf(job->name, sizeof(job->name), "%s", name);
	job->token_bot = bot->cfg;
	memcpy(job->spki, spki, spki_len);
	job->spki_len = spki_len;
	job->tpm = bot->cfg->backend == BOTID_BACKEND_TPM;
	job->key = registry_token_key(bot);
	job->be = registry_backend(bot);
	job->attest = registry_attest_backend(reg);
	job->reg = reg;
	registry_ref(reg);
	e->inflight = 1;
	job_enqueue(rn, job);
	return;
 oom:
	free(job);
	log_err("renew: out of memory");
}

/*
 * A token key destroyed with its bot or its bot's scopes: its certificate
 * is revoked, so that botid-ca's JWK Set stops serving it at once. (A
 * rotated one is not: tokens it signed stay good until they expire, and
 * the JWK Set drops it token_max_ttl after its successor.)
 */
static void
token_revoke(struct botid_renewer *rn, struct botid_registry *reg,
    const struct cert_entry *e, time_t now)
{
	size_t len = strlen(e->name), slen = strlen(BOTID_TOKEN_KEY_SUFFIX);
	struct renew_job *job;

	if (len <= slen || strcmp(e->name + len - slen,
	    BOTID_TOKEN_KEY_SUFFIX) != 0 || e->nchain == 0 ||
	    e->not_after <= now || e->serial[0] == '\0' ||
	    registry_attest_backend(reg) == NULL)
		return;
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		log_err("renew: out of memory");
		return;
	}
	job->kind = JOB_REVOKE;
	snprintf(job->name, sizeof(job->name), "%s", e->name);
	snprintf(job->old_serial, sizeof(job->old_serial), "%s", e->serial);
	job->attest = registry_attest_backend(reg);
	job->reg = reg;
	registry_ref(reg);
	job_enqueue(rn, job);
}

void
renew_tick(struct botid_renewer *rn, struct botid_registry *reg)
{
	time_t now = time(NULL);
	struct cert_entry *e;
	const uint8_t *spki;
	size_t i, spki_len;

	if (rn == NULL)
		return;
	rn->renew_percent = reg->cfg->renew_percent;	/* a reload may change it */
	for (i = 0; i < rn->nentries; i++)
		rn->entries[i].seen = 0;
	for (i = 0; i < reg->nbots; i++) {
		struct botid_bot *bot = &reg->bots[i];

		if (bot->key == NULL)
			continue;
		if ((e = entry_find(rn, bot->cfg->name)) == NULL &&
		    entry_add(rn, bot, &e) != 0) {
			log_err("renew: out of memory");
			return;
		}
		e->seen = 1;
		if (e->gone) {
			/* Removed, then configured again: a bot like any. */
			e->gone = 0;
			e->rotation_loaded = 0;
		}
		if (e->rotate_every != bot->cfg->rotate_every) {
			/* Set or changed by a reload: counted from now on. */
			e->rotate_every = bot->cfg->rotate_every;
			e->rotate_next = e->rotate_every == 0 ? 0 :
			    now + (time_t)e->rotate_every;
		}
		spki = registry_spki(bot, &spki_len);
		if (spki_len != e->spki_len ||
		    memcmp(spki, e->spki, spki_len) != 0) {
			uint8_t *copy = malloc(spki_len);

			if (copy == NULL)
				continue;
			memcpy(copy, spki, spki_len);
			free(e->spki);
			e->spki = copy;
			e->spki_len = spki_len;
			entry_clear_chain(e);
			e->next = 0;
		}
		if (!e->rotation_loaded) {
			entry_load_rotation(rn, e, bot);
			e->rotation_loaded = 1;
		}
		if (e->inflight)
			continue;
		if (bot->cfg->backend == BOTID_BACKEND_TPM &&
		    registry_attest_backend(reg) == NULL)
			continue;
		if (e->rotate_asked || (e->rotate_next != 0 &&
		    now >= e->rotate_next && bot->cfg->rotate_every != 0)) {
			e->rotate_asked = 1;
			if (job_submit(rn, reg, bot, e, JOB_ROTATE) != 0)
				log_err("renew: out of memory");
			continue;
		}
		if (e->retire_next != 0 && now >= e->retire_next) {
			if (job_submit(rn, reg, bot, e, JOB_RETIRE) != 0)
				log_err("renew: out of memory");
			continue;
		}
		if (now < e->next)
			continue;
		if (job_submit(rn, reg, bot, e, JOB_CERTIFY) != 0)
			log_err("renew: out of memory");
	}
	for (i = 0; i < reg->nbots; i++)
		if (reg->bots[i].key != NULL)
			token_tick(rn, reg, &reg->bots[i], now);
	/* Removed bots whose certificates wait for revocation. */
	for (i = 0; i < reg->ngone; i++) {
		if ((e = entry_find(rn, reg->gone[i])) == NULL) {
			if (entry_add_gone(rn, reg->gone[i], &e) != 0) {
				log_err("renew: out of memory");
				return;
			}
		}
		e->seen = 1;
		if (!e->gone && !e->inflight) {
			/* Served until this reload: now only revocations. */
			entry_clear_chain(e);
			e->gone = 1;
			e->rotation_loaded = 1;
			e->retire_next = 1;
			if (e->rotate_asked && e->rotated != NULL)
				e->rotated(e->rotated_cookie, BOTID_ERR_NOT_FOUND,
				    "the bot was removed from the configuration",
				    0);
			e->rotate_asked = 0;
			e->rotated = NULL;
			e->rotated_cookie = NULL;
		}
		if (!e->gone || e->inflight || e->retire_next == 0 ||
		    registry_attest_backend(reg) == NULL || now < e->retire_next)
			continue;
		if (job_submit_gone(rn, reg, e) != 0)
			log_err("renew: out of memory");
	}
	/* Bots gone from the configuration: forget them (not in flight). */
	for (i = rn->nentries; i > 0; i--)
		if (!rn->entries[i - 1].seen && !rn->entries[i - 1].inflight) {
			token_revoke(rn, reg, &rn->entries[i - 1], now);
			entry_remove(rn, i - 1);
		}
}


static void
job_free(struct renew_job *job)
{
	registry_unref(job->reg);
	blobs_free(job->chain, job->nchain);
	free(job->chain_pem);
	free(job->ssh_cert);
	free(job->spki);
	free(job);
}

/* The job's chain becomes the entry's; renewal scheduled from it. */
static void
entry_install(struct botid_renewer *rn, struct cert_entry *e,
    struct renew_job *job, time_t now)
{
	entry_clear_chain(e);
	e->chain = job->chain;
	e->nchain = job->nchain;
	job->chain = NULL;
	job->nchain = 0;
	e->ssh_cert = job->ssh_cert;
	e->ssh_cert_len = job->ssh_cert_len;
	e->ssh_before = job->ssh_before;
	job->ssh_cert = NULL;
	e->not_before = job->not_before;
	e->not_after = job->not_after;
	snprintf(e->serial, sizeof(e->serial), "%s", job->serial);
	e->failures = 0;
	e->next = renew_at(rn, job->not_before, job->not_after, now);
	log_info("bot %s: new certificate %s, valid until %ld; "
	    "renewal at %ld", job->name, job->serial,
	    (long)job->not_after, (long)e->next);
}

static void
certify_finish(struct botid_renewer *rn, struct cert_entry *e,
    struct renew_job *job, time_t now)
{
	time_t wait;
	int again;

	/*
	 * The same refusal again (a boot state the CA refuses stays refused
	 * until an operator acts) is logged once; `botid status` still
	 * shows it. Outages keep being logged at every retry.
	 */
	again = job->result == BOTID_ERR_DENIED && !e->attempt_ok &&
	    e->attempted != 0 && strcmp(e->error, job->error) == 0;
	e->attempted = now;
	e->attempt_ok = job->result == 0;
	snprintf(e->error, sizeof(e->error), "%s",
	    job->result == 0 ? "" : job->error);
	if (e->spki_len != job->spki_len ||
	    memcmp(e->spki, job->spki, job->spki_len) != 0) {
		e->next = 0;	/* the key changed meanwhile: again */
	} else if (job->result == 0) {
		entry_install(rn, e, job, now);
	} else {
		if (e->failures < 16)
			e->failures++;
		wait = (time_t)1 << (e->failures < 9 ? e->failures : 9);
		if (wait > RENEW_BACKOFF_MAX)
			wait = RENEW_BACKOFF_MAX;
		e->next = now + wait;
		if (again)
			;
		else if (e->nchain > 0 && e->not_after > now)
			log_err("bot %s: certificate renewal failed "
			    "(attempt %u): %s; still serving the "
			    "current one until %ld; retry in %lds",
			    job->name, e->failures, job->error,
			    (long)e->not_after, (long)wait);
		else
			log_err("bot %s: no certificate: %s; retry in "
			    "%lds", job->name, job->error, (long)wait);
	}
}

/*
 * A rotation is back. Success: the new key and its chain are the
 * entry's, and the caller rebuilds the registry, which opens the new key
 * (requests in flight finish on the old one through the old registry).
 */
static void
rotate_finish(struct botid_renewer *rn, struct cert_entry *e,
    struct renew_job *job, time_t now)
{
	renew_rotated_fn done = e->rotated;
	void *cookie = e->rotated_cookie;
	time_t wait;

	e->rotate_asked = 0;
	e->rotated = NULL;
	e->rotated_cookie = NULL;
	if (job->result == 0) {
		free(e->spki);
		e->spki = job->spki;
		e->spki_len = job->spki_len;
		job->spki = NULL;
		entry_install(rn, e, job, now);
		e->attempted = now;
		e->attempt_ok = 1;
		e->error[0] = '\0';
		e->retire_next = job->retire_next;
		e->rotate_next = e->rotate_every == 0 ? 0 :
		    now + (time_t)e->rotate_every;
		rn->rebuild = 1;
	} else {
		log_err("bot %s: key rotation failed: %s%s", job->name,
		    job->error, done == NULL ? "; retry in 60s" : "");
		snprintf(e->error, sizeof(e->error), "rotation: %.200s",
		    job->error);
		e->attempted = now;
		e->attempt_ok = 0;
		/* A scheduled rotation retries; an asked one was answered. */
		wait = 60;
		if (e->rotate_next != 0)
			e->rotate_next = now + wait;
	}
	if (done != NULL)
		done(cookie, job->result, job->result == 0 ? "" : job->error,
		    job->new_gen);
}

static void
retire_finish(struct cert_entry *e, struct renew_job *job, time_t now)
{
	time_t wait;

	if (job->result == 0) {
		e->retire_failures = 0;
		e->retire_next = job->retire_next;
		return;
	}
	if (e->retire_failures < 16)
		e->retire_failures++;
	wait = (time_t)1 << (e->retire_failures < 9 ? e->retire_failures : 9);
	if (wait > RENEW_BACKOFF_MAX)
		wait = RENEW_BACKOFF_MAX;
	e->retire_next = now + wait;
	log_err("bot %s: retiring its old key: %s; retry in %lds", job->name,
	    job->error, (long)wait);
}

int
renew_finish(struct botid_renewer *rn)
{
	struct renew_job *job, *next;
	struct cert_entry *e;
	uint64_t v;
	time_t now = time(NULL);
	int rebuild;

	if (rn == NULL)
		return 0;
	if (read(rn->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_err("renew: eventfd: %s", strerror(errno));
	(void)pthread_mutex_lock(&rn->lock);
	job = rn->done;
	rn->done = NULL;
	(void)pthread_mutex_unlock(&rn->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		if (job->kind == JOB_DEPROVISION) {
			job->done(job->cookie, job->result, job->error);
			job_free(job);
			continue;
		}
		if (job->kind == JOB_REVOKE) {
			/* Best effort: the certificate expires anyway. */
			if (job->result == 0)
				log_info("%s: certificate %s revoked: its key is "
				    "gone", job->name, job->old_serial);
			else
				log_err("%s: certificate %s not revoked: %s",
				    job->name, job->old_serial, job->error);
			job_free(job);
			continue;
		}
		e = entry_find(rn, job->name);
		if (e != NULL)
			e->inflight = 0;
		if (e != NULL && job->kind == JOB_ROTATE)
			rotate_finish(rn, e, job, now);
		else if (e != NULL && job->kind == JOB_RETIRE)
			retire_finish(e, job, now);
		else if (e != NULL)
			certify_finish(rn, e, job, now);
		job_free(job);
	}
	rebuild = rn->rebuild;
	rn->rebuild = 0;
	return rebuild;
}

void
renew_chain(struct botid_renewer *rn, const char *bot, const uint8_t *spki,
    size_t spki_len, const struct botid_blob **certs, size_t *n)
{
	struct cert_entry *e;

	*certs = NULL;
	*n = 0;
	if (rn == NULL || (e = entry_find(rn, bot)) == NULL ||
	    e->nchain == 0 || e->not_after <= time(NULL) ||
	    e->spki_len != spki_len || memcmp(e->spki, spki, spki_len) != 0)
		return;
	*certs = e->chain;
	*n = e->nchain;
}

void
renew_ssh_cert(struct botid_renewer *rn, const char *bot, const uint8_t *spki,
    size_t spki_len, const uint8_t **cert, size_t *len)
{
	struct cert_entry *e;

	*cert = NULL;
	*len = 0;
	if (rn == NULL || (e = entry_find(rn, bot)) == NULL ||
	    e->ssh_cert == NULL || e->ssh_before <= time(NULL) ||
	    e->not_after <= time(NULL) ||
	    e->spki_len != spki_len || memcmp(e->spki, spki, spki_len) != 0)
		return;
	*cert = e->ssh_cert;
	*len = e->ssh_cert_len;
}

void
renew_status(struct botid_renewer *rn, const char *bot,
    struct renew_status *st)
{
	struct cert_entry *e;

	memset(st, 0, sizeof(*st));
	if (rn == NULL || (e = entry_find(rn, bot)) == NULL)
		return;
	/* Entries belong to the loop thread, like this call: a plain copy. */
	if (e->nchain > 0 && e->not_after > time(NULL)) {
		snprintf(st->serial, sizeof(st->serial), "%s", e->serial);
		st->not_after = e->not_after;
	}
	st->attempted = e->attempted;
	st->ok = e->attempt_ok;
	snprintf(st->error, sizeof(st->error), "%s", e->error);
}

int
renew_fd(const struct botid_renewer *rn)
{
	return rn->efd;
}

int
renew_open(const struct botid_agent_config *cfg, struct botid_renewer **rp)
{
	struct botid_renewer *rn = NULL;
	char err[1024];
	int r = BOTID_ERR_ALLOC, locks = 0;

	*rp = NULL;
	if ((rn = calloc(1, sizeof(*rn))) == NULL)
		return BOTID_ERR_ALLOC;
	rn->efd = -1;
	rn->renew_percent = cfg->renew_percent;
	if ((rn->event_log = strdup(cfg->event_log)) == NULL ||
	    (rn->state_dir = strdup(cfg->state_dir)) == NULL)
		goto out;
	if ((r = host_state_load(cfg->state_dir, &rn->hs, err,
	    sizeof(err))) != 0) {
		log_err("%s", err);
		goto out;
	}
	if (!rn->hs.enrolled) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = ca_client_new(rn->hs.ca_url, rn->hs.bundle_path,
	    &rn->ca)) != 0) {
		log_err("%s/host.json: bad CA URL '%s'", rn->hs.dir,
		    rn->hs.ca_url);
		r = BOTID_ERR_CONFIG;
		goto out;
	}
	r = BOTID_ERR_ALLOC;
	if (asprintf(&rn->certs_dir, "%s/%s", cfg->state_dir,
	    CERTS_SUBDIR) == -1) {
		rn->certs_dir = NULL;
		goto out;
	}
	if (mkdir(rn->certs_dir, 0755) == -1 && errno != EEXIST) {
		log_err("%s: %s", rn->certs_dir, strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	r = BOTID_ERR_INTERNAL;
	if ((rn->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		goto out;
	if (pthread_mutex_init(&rn->lock, NULL) != 0)
		goto out;
	locks++;
	if (pthread_cond_init(&rn->cond, NULL) != 0)
		goto out;
	locks++;
	if (pthread_create(&rn->thread, NULL, renew_worker, rn) != 0)
		goto out;
	rn->thread_started = 1;
	log_info("host %s: certificates from %s", rn->hs.host_id,
	    rn->hs.ca_url);
	*rp = rn;
	rn = NULL;
	r = 0;
 out:
	if (rn != NULL) {
		if (locks > 1)
			(void)pthread_cond_destroy(&rn->cond);
		if (locks > 0)
			(void)pthread_mutex_destroy(&rn->lock);
		rn->thread_started = 0;
		renew_close(rn);
	}
	return r;
}

void
renew_close(struct botid_renewer *rn)
{
	struct renew_job *job, *next;
	size_t i;

	if (rn == NULL)
		return;
	if (rn->thread_started) {
		(void)pthread_mutex_lock(&rn->lock);
		rn->stop = 1;
		(void)pthread_cond_signal(&rn->cond);
		(void)pthread_mutex_unlock(&rn->lock);
		(void)pthread_join(rn->thread, NULL);
		/* Jobs never started, and results never installed. */
		for (job = rn->queue; job != NULL; job = next) {
			next = job->next;
			free(job->cookie);	/* never answered */
			job_free(job);
		}
		for (job = rn->done; job != NULL; job = next) {
			next = job->next;
			free(job->cookie);
			job_free(job);
		}
		(void)pthread_cond_destroy(&rn->cond);
		(void)pthread_mutex_destroy(&rn->lock);
	}
	for (i = 0; i < rn->nentries; i++) {
		entry_clear_chain(&rn->entries[i]);
		free(rn->entries[i].spki);
		/* Rotations never answered: their connections are gone. */
		free(rn->entries[i].rotated_cookie);
	}
	free(rn->entries);
	if (rn->efd != -1)
		close(rn->efd);
	ca_client_free(rn->ca);
	host_state_free(&rn->hs);
	free(rn->certs_dir);
	free(rn->state_dir);
	free(rn->event_log);
	free(rn);
}
