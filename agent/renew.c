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
 *  - Renewal starts at half of the certificate's lifetime; failures back
 *    off exponentially up to RENEW_BACKOFF_MAX, and the old certificate is
 *    served until it expires, with an error logged at every failure.
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
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/backend.h"
#include "agent/renew.h"
#include "attest/ca-client.h"
#include "attest/host-state.h"
#include "lib/certify-tbs.h"
#include "lib/file.h"
#include "lib/limits.h"
#include "lib/log.h"

#define RENEW_BACKOFF_MAX	300	/* seconds between failed attempts */
#define RENEW_CHAIN_MAX		(256u * 1024u)
#define RENEW_CHAIN_CERTS	8
#define NONCE_MAX		64
#define CERTS_SUBDIR		"certs"

struct cert_entry {
	char			 name[BOTID_MAX_BOT_NAME + 1];
	uint8_t			*spki;		/* the key the chain is for */
	size_t			 spki_len;
	struct botid_blob	*chain;
	size_t			 nchain;
	time_t			 not_before;
	time_t			 not_after;
	char			 serial[80];	/* of the leaf, hex */
	time_t			 next;		/* next attempt */
	unsigned		 failures;
	int			 inflight;
	int			 seen;		/* in the current registry */
	/* The last finished attempt, for renew_status(). */
	time_t			 attempted;	/* 0: none since start */
	int			 attempt_ok;
	char			 error[256];
};

struct renew_job {
	struct renew_job	*next;
	struct botid_registry	*reg;		/* reference held */
	char			 name[BOTID_MAX_BOT_NAME + 1];
	int			 tpm;		/* else pkcs11 */
	struct botid_key	*key;		/* tpm: the bot's key */
	struct botid_backend	*attest;	/* the TPM with AK, host key */
	uint8_t			*spki;
	size_t			 spki_len;
	/* Results. */
	int			 result;
	char			 error[256];
	struct botid_blob	*chain;
	size_t			 nchain;
	time_t			 not_before;
	time_t			 not_after;
	char			 serial[80];
};

struct botid_renewer {
	struct host_state	 hs;
	struct ca_client	*ca;
	char			*certs_dir;
	struct cert_entry	*entries;
	size_t			 nentries;
	pthread_t		 thread;
	int			 thread_started;
	pthread_mutex_t		 lock;		/* queue, done, stop */
	pthread_cond_t		 cond;
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

static int
job_run(struct botid_renewer *rn, struct renew_job *job)
{
	json_t *req = NULL, *resp = NULL;
	uint8_t *nonce = NULL, *pub = NULL, *attest = NULL, *sig = NULL;
	uint8_t digest[32];
	size_t nonce_len = 0, pub_len = 0, attest_len = 0, sig_len = 0;
	const char *chain;
	char *path = NULL;
	int r;

	if ((req = json_pack("{s:s}", "host_id", rn->hs.host_id)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	if ((r = ca_client_post(rn->ca, "/v1/nonce", req, &resp, job->error,
	    sizeof(job->error))) != 0)
		goto out;
	if ((r = ca_json_get_b64(resp, "nonce", NONCE_MAX, &nonce,
	    &nonce_len)) != 0) {
		snprintf(job->error, sizeof(job->error), "malformed nonce "
		    "from the CA");
		goto out;
	}
	json_decref(req);
	json_decref(resp);
	resp = NULL;
	if ((req = json_pack("{s:s, s:s, s:s}", "host_id", rn->hs.host_id,
	    "bot", job->name, "attestation", job->tpm ? "tpm" :
	    "pkcs11")) == NULL ||
	    (r = ca_json_set_b64(req, "nonce", nonce, nonce_len)) != 0) {
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
	/* The cache is a convenience: failing to write it is not fatal. */
	if (asprintf(&path, "%s/%s.pem", rn->certs_dir, job->name) == -1)
		path = NULL;
	else if (file_write_atomic(path, chain, strlen(chain), 0644) != 0)
		log_warn("bot %s: cannot cache its certificate in %s", job->name,
		    path);
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
	free(path);
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
		job->result = job_run(rn, job);
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
	e->not_before = e->not_after = 0;
	e->serial[0] = '\0';
}

/*
 * Half way through what was left of the certificate's life when it came.
 * botid-ca dates notBefore a minute back for clock skew: counting from it,
 * a certificate living a minute or less would be renewed at once, for
 * ever.
 */
static time_t
renew_at(time_t not_before, time_t not_after, time_t now)
{
	time_t start = not_before > now ? not_before : now;

	if (not_after <= start)
		return now;
	return start + (not_after - start) / 2;
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
	e->next = renew_at(nb, na, time(NULL));
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

static void
entry_remove(struct botid_renewer *rn, size_t i)
{
	entry_clear_chain(&rn->entries[i]);
	free(rn->entries[i].spki);
	rn->entries[i] = rn->entries[rn->nentries - 1];
	rn->nentries--;
}

static int
job_submit(struct botid_renewer *rn, struct botid_registry *reg,
    struct botid_bot *bot, struct cert_entry *e)
{
	struct renew_job *job, **pp;

	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->spki = malloc(e->spki_len)) == NULL) {
		free(job);
		return BOTID_ERR_ALLOC;
	}
	snprintf(job->name, sizeof(job->name), "%s", e->name);
	memcpy(job->spki, e->spki, e->spki_len);
	job->spki_len = e->spki_len;
	job->tpm = bot->cfg->backend == BOTID_BACKEND_TPM;
	job->key = registry_key(bot);
	job->attest = registry_attest_backend(reg);
	job->reg = reg;
	registry_ref(reg);
	e->inflight = 1;
	(void)pthread_mutex_lock(&rn->lock);
	for (pp = &rn->queue; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = job;
	(void)pthread_cond_signal(&rn->cond);
	(void)pthread_mutex_unlock(&rn->lock);
	return 0;
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
		if (e->inflight || now < e->next)
			continue;
		if (bot->cfg->backend == BOTID_BACKEND_TPM &&
		    registry_attest_backend(reg) == NULL)
			continue;
		if (job_submit(rn, reg, bot, e) != 0)
			log_err("renew: out of memory");
	}
	/* Bots gone from the configuration: forget them (not in flight). */
	for (i = rn->nentries; i > 0; i--)
		if (!rn->entries[i - 1].seen && !rn->entries[i - 1].inflight)
			entry_remove(rn, i - 1);
}

void
renew_finish(struct botid_renewer *rn)
{
	struct renew_job *job, *next;
	struct cert_entry *e;
	uint64_t v;
	time_t now = time(NULL), wait;

	if (rn == NULL)
		return;
	if (read(rn->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_err("renew: eventfd: %s", strerror(errno));
	(void)pthread_mutex_lock(&rn->lock);
	job = rn->done;
	rn->done = NULL;
	(void)pthread_mutex_unlock(&rn->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		e = entry_find(rn, job->name);
		if (e != NULL) {
			e->inflight = 0;
			e->attempted = now;
			e->attempt_ok = job->result == 0;
			snprintf(e->error, sizeof(e->error), "%s",
			    job->result == 0 ? "" : job->error);
		}
		if (e != NULL && (e->spki_len != job->spki_len ||
		    memcmp(e->spki, job->spki, job->spki_len) != 0)) {
			e->next = 0;	/* the key changed meanwhile: again */
		} else if (e != NULL && job->result == 0) {
			entry_clear_chain(e);
			e->chain = job->chain;
			e->nchain = job->nchain;
			job->chain = NULL;
			e->not_before = job->not_before;
			e->not_after = job->not_after;
			snprintf(e->serial, sizeof(e->serial), "%s",
			    job->serial);
			e->failures = 0;
			e->next = renew_at(job->not_before, job->not_after,
			    now);
			log_info("bot %s: new certificate %s, valid until %ld; "
			    "renewal at %ld", job->name, job->serial,
			    (long)job->not_after, (long)e->next);
		} else if (e != NULL) {
			if (e->failures < 16)
				e->failures++;
			wait = (time_t)1 << (e->failures < 9 ? e->failures : 9);
			if (wait > RENEW_BACKOFF_MAX)
				wait = RENEW_BACKOFF_MAX;
			e->next = now + wait;
			if (e->nchain > 0 && e->not_after > now)
				log_err("bot %s: certificate renewal failed "
				    "(attempt %u): %s; still serving the "
				    "current one until %ld; retry in %lds",
				    job->name, e->failures, job->error,
				    (long)e->not_after, (long)wait);
			else
				log_err("bot %s: no certificate: %s; retry in "
				    "%lds", job->name, job->error, (long)wait);
		}
		registry_unref(job->reg);
		blobs_free(job->chain, job->nchain);
		free(job->spki);
		free(job);
	}
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
			registry_unref(job->reg);
			free(job->spki);
			free(job);
		}
		for (job = rn->done; job != NULL; job = next) {
			next = job->next;
			registry_unref(job->reg);
			blobs_free(job->chain, job->nchain);
			free(job->spki);
			free(job);
		}
		(void)pthread_cond_destroy(&rn->cond);
		(void)pthread_mutex_destroy(&rn->lock);
	}
	for (i = 0; i < rn->nentries; i++) {
		entry_clear_chain(&rn->entries[i]);
		free(rn->entries[i].spki);
	}
	free(rn->entries);
	if (rn->efd != -1)
		close(rn->efd);
	ca_client_free(rn->ca);
	host_state_free(&rn->hs);
	free(rn->certs_dir);
	free(rn);
}
