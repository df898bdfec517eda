/*
 * botid-ca's request handlers (ca-api.h, doc/ca-api.md). Why it is built
 * this way:
 *  - Each body is parsed once, strictly (jansson with duplicate keys
 *    refused, every member required and no other allowed), then every
 *    binary member is decoded with a size cap and every TPM structure
 *    parsed with no trailing bytes, before anything is checked.
 *  - Checks run cheapest first, and every refusal is one log line with the
 *    client and the reason, and the same reason in the answer: operators
 *    and agents see why, never a bare 403.
 *  - Single-use items (join tokens, sessions, nonces) are consumed by one
 *    conditional UPDATE, and a session is consumed even when activation
 *    fails, so a wrong secret cannot be retried.
 *  - The challenge secret is never stored: only its SHA-256.
 *  - A revocation consumes its nonce and changes the certificates in one
 *    transaction; a refused one still consumes the nonce.
 *  - An audit anchor needs no nonce: the checkpoint is signed by the host
 *    key and carries its own number, which must grow, so a replay is
 *    either the same checkpoint (answered as already held) or refused.
 *  - Revocation sticks: a revoked host's EK cannot enrol again, a bot
 *    certificate is recorded only while its host, its SPIFFE ID and its
 *    key are unrevoked (in one transaction with the check), and a revoked
 *    bot stays refused until the operator lifts it (botid-ca unrevoke).
 *  - The key policy (ca-policy.h) is checked before anything is consumed.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "ca/ca-api.h"
#include "ca/ca-policy.h"
#include "ca/ca-pcr.h"
#include "attest/ca-revoke.h"
#include "attest/makecred.h"
#include "attest/tpm-verify.h"
#include "lib/auditlog.h"
#include "lib/base64.h"
#include "lib/botid.h"
#include "lib/certify-tbs.h"
#include "lib/grant.h"
#include "lib/jws.h"
#include "lib/hex.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/wire.h"

#define BLOB_MAX	4096		/* any TPM structure we take */
#define CERT_MAX	8192
#define SECRET_LEN	32
#define NONCE_LEN	32
#define ANCHOR_PREFIX	"/v1/audit/anchor/"
#define CA_MAX_ANCHOR_GAUGES	100000	/* hosts shown in /metrics */

struct reply {
	int		 status;
	char		*body;
	const char	*ctype;
};

static void
reply_json(struct reply *rp, int status, json_t *j)
{
	rp->status = status;
	rp->ctype = "application/json";
	rp->body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (rp->body == NULL) {
		rp->status = 500;
		rp->body = strdup("{\"error\":\"out of memory\"}");
	}
}

/* A refusal logged with the client; returns its body, {"error": msg}. */
static json_t *
refusal(const char *peer, const char *what, int status, const char *msg)
{
	if (status >= 500)
		log_err("ca: %s from %s failed: %s", what, peer, msg);
	else
		log_warn("ca: %s from %s refused (%d): %s", what, peer, status,
		    msg);
	return json_pack("{s:s}", "error", msg);
}

/* A refusal: logged with the client, and sent as {"error": ...}. */
static void
refuse(struct reply *rp, const char *peer, const char *what, int status,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
refuse(struct reply *rp, const char *peer, const char *what, int status,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_json(rp, status, refusal(peer, what, status, msg));
}

/*
 * The status for an error returned by a check of what the request carried
 * (a TPM structure, a key, evidence): malformed input is 400, input that
 * is well-formed but refused is 403, and only the CA's own failures
 * (memory, OpenSSL, the database) are 500 (doc/ca-api.md).
 */
static int
request_status(int r)
{
	switch (r) {
	case BOTID_ERR_INVALID:
	case BOTID_ERR_INCOMPLETE:
	case BOTID_ERR_PROTOCOL:
	case BOTID_ERR_VERSION:
		return 400;
	case BOTID_ERR_UNSUPPORTED:
	case BOTID_ERR_DENIED:
	case BOTID_ERR_EXPORTABLE:
		return 403;
	case BOTID_ERR_NOT_FOUND:
		return 404;
	case BOTID_ERR_TIMEOUT:
		return 410;
	case BOTID_ERR_TOO_LARGE:
		return 413;
	case BOTID_ERR_BUSY:
		return 429;
	default:
		return 500;
	}
}

/* Decodes a base64 member already known to be a string. */
static int
b64(const char *s, size_t max, uint8_t **out, size_t *len)
{
	return base64_decode(s, max, out, len);
}

static int
bot_name_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_' && s[i] != '.')
			return 0;
	return i > 0 && i <= BOTID_MAX_BOT_NAME && s[0] != '.';
}

static int
host_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	return i == 16;
}

/* Whether bot is in the comma-separated list (NULL: any bot). */
static int
bot_allowed(const char *list, const char *bot)
{
	size_t n = strlen(bot);
	const char *p = list;

	if (list == NULL)
		return 1;
	while (*p != '\0') {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, bot, n) == 0)
			return 1;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* Puts what in front of the reason in why; returns 1 for chaining. */
static int
prefix(char *why, size_t whylen, const char *what)
{
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s", why);
	snprintf(why, whylen, "%s%s", what, tmp);
	return 1;
}

static int
sha256(const void *p, size_t n, uint8_t out[32])
{
	return EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL) == 1 ? 0 :
	    BOTID_ERR_CRYPTO;
}

int
ca_api_init(struct ca_api *api, const struct ca_config *cfg,
    struct ca_db *db, struct ca_signer *signer, char *err, size_t errlen)
{
	size_t i;

	memset(api, 0, sizeof(*api));
	api->cfg = cfg;
	api->db = db;
	api->signer = signer;
	if ((api->ek_roots = X509_STORE_new()) == NULL)
		return BOTID_ERR_ALLOC;
	for (i = 0; i < cfg->nek_roots; i++) {
		if (X509_STORE_load_file(api->ek_roots, cfg->ek_roots[i]) != 1) {
			snprintf(err, errlen, "ek_root %s: not a readable PEM "
			    "certificate file", cfg->ek_roots[i]);
			ERR_clear_error();
			return BOTID_ERR_CONFIG;
		}
	}
	/* A configuration made in code (tests) may leave the rate 0: off. */
	if (cfg->nonce_rate != 0 && ca_ratelimit_new(cfg->nonce_rate,
	    cfg->nonce_burst, &api->nonce_rate) != 0) {
		snprintf(err, errlen, "nonce_rate and nonce_burst: out of "
		    "memory or zero");
		return BOTID_ERR_CONFIG;
	}
	if (cfg->ssh_ca_key != NULL)
		return ca_ssh_open(cfg->ssh_ca_key, ca_signer_bundle(signer),
		    &api->ssh, err, errlen);
	return 0;
}

void
ca_api_free(struct ca_api *api)
{
	X509_STORE_free(api->ek_roots);
	api->ek_roots = NULL;
	ca_ssh_close(api->ssh);
	api->ssh = NULL;
	ca_ratelimit_free(api->nonce_rate);
	api->nonce_rate = NULL;
}

/* Chain check of an EK certificate against the configured EK roots. */
static const char *
ek_cert_check(struct ca_api *api, X509 *ek)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	const char *why = NULL;

	if (ctx == NULL || X509_STORE_CTX_init(ctx, api->ek_roots, ek,
	    NULL) != 1)
		why = "out of memory";
	else {
		/* EK certificates carry TCG-specific usages: any purpose. */
		X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
		if (X509_verify_cert(ctx) != 1)
			why = X509_verify_cert_error_string(
			    X509_STORE_CTX_get_error(ctx));
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return why;
}

static int
ek_allowlisted(struct ca_api *api, const char *fpr)
{
	size_t i;

	for (i = 0; i < api->cfg->nallow_ek; i++)
		if (strcmp(api->cfg->allow_ek[i], fpr) == 0)
			return 1;
	return 0;
}

_Static_assert(CA_METRICS_GROUPS >= 1 + CA_MAX_GROUPS,
    "a refusal counter for the top-level policy and each group");

/* The boot-state policy's hooks (defined with handle_nonce below). */
static int	nonce_pcr_select(const struct ca_pcr_policy *, struct reply *);
static int	boot_admit(struct ca_api *, const struct ca_pcr_policy *,
		    const char *, const char *, const TPM2B_PUBLIC *,
		    const uint8_t *, size_t, const char *, const char *,
		    const char *, const char *, const char *, struct reply *,
		    uint8_t **, size_t *);

/*
 * The boot-state policy of the group a join token names (NULL: the
 * top-level one), or NULL when ca.conf no longer has that group.
 */
static int
token_policy(struct ca_api *api, const struct ca_session *s,
    const struct ca_pcr_policy **pol, char **group)
{
	int r;

	*group = NULL;
	*pol = &api->cfg->pcr;
	if (!s->has_token)
		return 0;
	if ((r = ca_db_token_group(api->db, s->token_hash, group)) != 0)
		return r;
	*pol = ca_config_pcr(api->cfg, *group);
	return 0;
}

static void
handle_enrol(struct ca_api *api, json_t *j, const char *peer,
    struct reply *rp)
{
	const char *tok = NULL, *ekc, *ekp, *akp, *hkp, *why = NULL;
	uint8_t *ek_der = NULL, *ek_pub = NULL, *blob = NULL, *enc = NULL;
	uint8_t secret[SECRET_LEN], name[sizeof(TPMU_NAME) + 2], fp[32];
	size_t ek_der_len = 0, ek_pub_len = 0, blob_len = 0, enc_len = 0;
	size_t name_len = 0;
	struct ca_session s;
	TPM2B_PUBLIC ek, ak, hk;
	const uint8_t *p;
	EVP_PKEY *ek_key = NULL;
	json_error_t je;
	X509 *cert = NULL;
	char *bots = NULL, *eb64 = NULL, *bb64 = NULL, *nb64 = NULL;
	char pwhy[256], *group = NULL;
	const struct ca_pcr_policy *pol = NULL;
	time_t now = time(NULL);
	int r;

	memset(&s, 0, sizeof(s));
	if (json_unpack_ex(j, &je, JSON_STRICT, "{s?s, s:s, s:s, s:s, s:s}",
	    "join_token", &tok, "ek_cert", &ekc, "ek_public", &ekp,
	    "ak_public", &akp, "host_key_public", &hkp) != 0) {
		refuse(rp, peer, "enrol", 400, "bad request: %s", je.text);
		goto out;
	}
	if (b64(ekc, CERT_MAX, &ek_der, &ek_der_len) != 0 ||
	    b64(ekp, BLOB_MAX, &ek_pub, &ek_pub_len) != 0 ||
	    b64(akp, BLOB_MAX, &s.ak_pub, &s.ak_len) != 0 ||
	    b64(hkp, BLOB_MAX, &s.hk_pub, &s.hk_len) != 0) {
		refuse(rp, peer, "enrol", 400, "bad request: a member is not "
		    "base64 or is too large");
		goto out;
	}
	p = ek_der;
	if ((cert = d2i_X509(NULL, &p, (long)ek_der_len)) == NULL ||
	    p != ek_der + ek_der_len) {
		refuse(rp, peer, "enrol", 400, "ek_cert is not one DER "
		    "certificate");
		goto out;
	}
	if (tpm_public_parse(ek_pub, ek_pub_len, &ek) != 0 ||
	    tpm_public_parse(s.ak_pub, s.ak_len, &ak) != 0 ||
	    tpm_public_parse(s.hk_pub, s.hk_len, &hk) != 0) {
		refuse(rp, peer, "enrol", 400, "a public area is not a valid "
		    "TPM2B_PUBLIC");
		goto out;
	}
	if (sha256(ek_der, ek_der_len, fp) != 0)
		goto fail;
	hex_encode(fp, 32, s.ek_fpr);
	if ((why = ek_cert_check(api, cert)) != NULL &&
	    !ek_allowlisted(api, s.ek_fpr)) {
		refuse(rp, peer, "enrol", 403, "untrusted EK certificate "
		    "(sha256:%s): %s", s.ek_fpr, why);
		goto out;
	}
	if (ca_policy_ek_cert(api->cfg, cert, pwhy, sizeof(pwhy)) != 0 ||
	    (ca_policy_tpm_key(api->cfg, &ek, pwhy, sizeof(pwhy)) != 0 &&
	    prefix(pwhy, sizeof(pwhy), "EK: ")) ||
	    (ca_policy_tpm_key(api->cfg, &ak, pwhy, sizeof(pwhy)) != 0 &&
	    prefix(pwhy, sizeof(pwhy), "attestation key: ")) ||
	    (ca_policy_tpm_key(api->cfg, &hk, pwhy, sizeof(pwhy)) != 0 &&
	    prefix(pwhy, sizeof(pwhy), "host key: "))) {
		ca_metrics_key_policy(&api->metrics, 0);
		refuse(rp, peer, "enrol", 403, "%s", pwhy);
		goto out;
	}
	if (tpm_public_to_pkey(&ek, &ek_key) != 0 ||
	    !tpm_pkey_equal(ek_key, X509_get0_pubkey(cert))) {
		refuse(rp, peer, "enrol", 403, "ek_public is not the key of "
		    "the EK certificate");
		goto out;
	}
	if ((r = ca_db_ek_revoked(api->db, s.ek_fpr)) == BOTID_ERR_DENIED) {
		refuse(rp, peer, "enrol", 403, "EK sha256:%s belongs to a "
		    "revoked host", s.ek_fpr);
		goto out;
	} else if (r != 0)
		goto fail;
	if (tpm_public_check(&ak, TPM_PROFILE_AK, &why) != 0) {
		refuse(rp, peer, "enrol", 403, "attestation key refused: %s",
		    why);
		goto out;
	}
	if (tpm_public_check(&hk, TPM_PROFILE_KEY, &why) != 0) {
		refuse(rp, peer, "enrol", 403, "host key refused: %s", why);
		goto out;
	}
	if (tok == NULL) {
		if (!ek_allowlisted(api, s.ek_fpr)) {
			refuse(rp, peer, "enrol", 403, "no join token, and the "
			    "EK is not on the allowlist");
			goto out;
		}
	} else {
		/* A token may carry the CA's TLS pin after a dot. */
		if (sha256(tok, strcspn(tok, "."), s.token_hash) != 0)
			goto fail;
		s.has_token = 1;
		r = ca_db_token_check(api->db, s.token_hash, now, &bots);
		if (r == BOTID_ERR_NOT_FOUND) {
			refuse(rp, peer, "enrol", 403, "join token refused: "
			    "unknown token");
			goto out;
		} else if (r == BOTID_ERR_DENIED) {
			refuse(rp, peer, "enrol", 409, "join token refused: "
			    "already used");
			goto out;
		} else if (r == BOTID_ERR_TIMEOUT) {
			refuse(rp, peer, "enrol", 410, "join token refused: "
			    "expired");
			goto out;
		} else if (r != 0)
			goto fail;
	}
	/* The token's group decides which PCRs activation quotes. */
	if (token_policy(api, &s, &pol, &group) != 0)
		goto fail;
	if (pol == NULL) {
		refuse(rp, peer, "enrol", 403, "join token refused: its host "
		    "group %s is not in ca.conf", group);
		goto out;
	}
	s.bots = bots;
	bots = NULL;
	if (tpm_public_name(&ak, name, &name_len) != 0 ||
	    RAND_bytes(secret, sizeof(secret)) != 1 ||
	    RAND_bytes(s.nonce, sizeof(s.nonce)) != 1 ||
	    RAND_bytes(fp, 16) != 1)
		goto fail;
	hex_encode(fp, 16, s.id);
	if ((r = tpm_make_credential(&ek, name, name_len, secret,
	    sizeof(secret), &blob, &blob_len, &enc, &enc_len)) != 0) {
		refuse(rp, peer, "enrol", request_status(r) == 400 ? 403 :
		    request_status(r), "cannot make a credential for this EK: "
		    "%s", botid_strerror(r));
		goto out;
	}
	if (sha256(secret, sizeof(secret), s.secret_hash) != 0)
		goto fail;
	s.expires = now + api->cfg->session_lifetime;
	if (ca_db_session_add(api->db, &s) != 0)
		goto fail;
	if (base64_encode(blob, blob_len, &bb64) != 0 ||
	    base64_encode(enc, enc_len, &eb64) != 0 ||
	    base64_encode(s.nonce, sizeof(s.nonce), &nb64) != 0)
		goto fail;
	log_info("ca: enrolment session %s for EK sha256:%s from %s", s.id,
	    s.ek_fpr, peer);
	reply_json(rp, 200, json_pack("{s:s, s:s, s:s, s:s, s:I}", "session",
	    s.id, "nonce", nb64, "credential_blob", bb64, "encrypted_secret",
	    eb64, "expires", (json_int_t)s.expires));
	/* Activation quotes the policy's PCRs over the session's nonce. */
	if (rp->status == 200 && pol->mode != CA_PCR_NONE &&
	    nonce_pcr_select(pol, rp) != 0)
		goto fail;
	goto out;
 fail:
	refuse(rp, peer, "enrol", 500, "internal error");
 out:
	free(group);
	OPENSSL_cleanse(secret, sizeof(secret));
	ca_session_clear(&s);
	EVP_PKEY_free(ek_key);
	X509_free(cert);
	free(ek_der);
	free(ek_pub);
	free(blob);
	free(enc);
	free(bots);
	free(eb64);
	free(bb64);
	free(nb64);
}

static int
random_host_id(char id[17])
{
	uint8_t b[8];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return BOTID_ERR_CRYPTO;
	hex_encode(b, sizeof(b), id);
	return 0;
}

/* The SHA-256 of a key's SubjectPublicKeyInfo, in hex. */
static int
key_fingerprint(EVP_PKEY *pk, char out[65])
{
	unsigned char *der = NULL;
	uint8_t h[32];
	int len, r;

	if ((len = i2d_PUBKEY(pk, &der)) <= 0) {
		ERR_clear_error();
		return BOTID_ERR_CRYPTO;
	}
	if ((r = sha256(der, (size_t)len, h)) == 0)
		hex_encode(h, sizeof(h), out);
	OPENSSL_free(der);
	return r;
}

/* Issues a certificate and records it. */
static int
issue(struct ca_api *api, const char *host_id, const char *bot,
    const char *spiffe, EVP_PKEY *pub, long lifetime, const char *kind,
    char **chain, char serial[33], time_t *not_after)
{
	struct ca_issue_req req;
	int r;

	memset(&req, 0, sizeof(req));
	req.serves = bot != NULL;
	req.spiffe_id = spiffe;
	req.pubkey = pub;
	req.lifetime = lifetime;
	req.attestation = kind;
	if ((r = ca_issue(api->signer, &req, chain, serial, not_after)) != 0)
		return r;
	if ((r = ca_db_cert_add(api->db, serial, host_id, bot, spiffe,
	    *not_after, kind, time(NULL))) != 0) {
		free(*chain);
		*chain = NULL;
	}
	return r;
}

static void
handle_activate(struct ca_api *api, json_t *j, const char *peer,
    struct reply *rp)
{
	const char *sid, *sec, *att, *sig, *why = NULL;
	const char *pcr_quote = NULL, *pcr_sig = NULL, *pcr_values = NULL;
	const char *pcr_log = NULL;
	uint8_t *secret = NULL, *attest = NULL, *sigb = NULL, h[32];
	uint8_t *boot = NULL;
	size_t secret_len = 0, attest_len = 0, sig_len = 0, boot_len = 0;
	struct ca_session s;
	TPM2B_PUBLIC ak, hk;
	EVP_PKEY *hk_key = NULL;
	json_error_t je;
	char host_id[17], spiffe[512], serial[33], *chain = NULL;
	char *group = NULL;
	const struct ca_pcr_policy *pol = NULL;
	time_t now = time(NULL), not_after;
	int r, in_tx = 0;

	memset(&s, 0, sizeof(s));
	if (json_unpack_ex(j, &je, JSON_STRICT,
	    "{s:s, s:s, s:s, s:s, s?s, s?s, s?s, s?s}",
	    "session", &sid, "secret", &sec, "host_key_attest", &att,
	    "host_key_signature", &sig, "pcr_quote", &pcr_quote,
	    "pcr_signature", &pcr_sig, "pcr_values", &pcr_values,
	    "pcr_eventlog", &pcr_log) != 0) {
		refuse(rp, peer, "activate", 400, "bad request: %s", je.text);
		goto out;
	}
	if (b64(sec, 64, &secret, &secret_len) != 0 ||
	    b64(att, BLOB_MAX, &attest, &attest_len) != 0 ||
	    b64(sig, BLOB_MAX, &sigb, &sig_len) != 0) {
		refuse(rp, peer, "activate", 400, "bad request: a member is not "
		    "base64 or is too large");
		goto out;
	}
	if (strlen(sid) != 32 ||
	    (r = ca_db_session_get(api->db, sid, &s)) == BOTID_ERR_NOT_FOUND) {
		refuse(rp, peer, "activate", 404, "unknown enrolment session");
		goto out;
	} else if (r != 0)
		goto fail;
	if (s.used) {
		refuse(rp, peer, "activate", 409, "enrolment session already "
		    "used");
		goto out;
	}
	if (s.expires < now) {
		refuse(rp, peer, "activate", 410, "enrolment session expired");
		goto out;
	}
	/* One attempt per session, right or wrong. */
	if ((r = ca_db_session_use(api->db, sid)) == BOTID_ERR_DENIED) {
		refuse(rp, peer, "activate", 409, "enrolment session already "
		    "used");
		goto out;
	} else if (r != 0)
		goto fail;
	if (sha256(secret, secret_len, h) != 0)
		goto fail;
	if (CRYPTO_memcmp(h, s.secret_hash, 32) != 0) {
		refuse(rp, peer, "activate", 403, "credential activation "
		    "failed: the attestation key is not in the TPM of the EK");
		goto out;
	}
	if (tpm_public_parse(s.ak_pub, s.ak_len, &ak) != 0 ||
	    tpm_public_parse(s.hk_pub, s.hk_len, &hk) != 0)
		goto fail;
	if (tpm_certify_verify(&ak, &hk, s.nonce, sizeof(s.nonce), attest,
	    attest_len, sigb, sig_len, &why) != 0) {
		refuse(rp, peer, "activate", 403, "host key certification "
		    "refused: %s", why != NULL ? why : "malformed");
		goto out;
	}
	/* The AK is proven in the EK's TPM: its quote can be judged. */
	if (token_policy(api, &s, &pol, &group) != 0)
		goto fail;
	if (pol == NULL) {
		refuse(rp, peer, "activate", 403, "join token refused: its "
		    "host group %s is not in ca.conf", group);
		goto out;
	}
	if (pol->mode != CA_PCR_NONE) {
		if (boot_admit(api, pol, "activate", NULL, &ak, s.nonce,
		    sizeof(s.nonce), pcr_quote, pcr_sig, pcr_values, pcr_log,
		    peer, rp, &boot, &boot_len) != 0)
			goto out;
	} else if (pcr_quote != NULL || pcr_sig != NULL || pcr_values != NULL ||
	    pcr_log != NULL) {
		refuse(rp, peer, "activate", 400, "bad request: no boot-state "
		    "policy asked for a PCR quote");
		goto out;
	}
	if (tpm_public_to_pkey(&hk, &hk_key) != 0 ||
	    random_host_id(host_id) != 0)
		goto fail;
	snprintf(spiffe, sizeof(spiffe), "spiffe://%s/host/%s",
	    api->cfg->trust_domain, host_id);
	if (ca_db_begin(api->db) != 0)
		goto fail;
	in_tx = 1;
	/* The host may have been revoked since the enrolment began. */
	if ((r = ca_db_ek_revoked(api->db, s.ek_fpr)) != 0) {
		ca_db_rollback(api->db);
		in_tx = 0;
		if (r != BOTID_ERR_DENIED)
			goto fail;
		refuse(rp, peer, "activate", 403, "EK sha256:%s belongs to a "
		    "revoked host", s.ek_fpr);
		goto out;
	}
	if (s.has_token &&
	    (r = ca_db_token_use(api->db, s.token_hash, now, host_id)) != 0) {
		ca_db_rollback(api->db);
		in_tx = 0;
		if (r != BOTID_ERR_DENIED)
			goto fail;
		refuse(rp, peer, "activate", 409, "join token refused: "
		    "already used (or expired meanwhile)");
		goto out;
	}
	if (ca_db_host_add(api->db, host_id, s.ek_fpr, &s, now) != 0 ||
	    (group != NULL && ca_db_host_set_group(api->db, host_id,
	    group) != 0) ||
	    (boot != NULL && ca_db_boot_adopt(api->db, host_id,
	    pol->select, boot, boot_len, now) != 0) ||
	    issue(api, host_id, NULL, spiffe, hk_key, api->cfg->host_lifetime,
	    "tpm", &chain, serial, &not_after) != 0 ||
	    ca_db_commit(api->db) != 0)
		goto fail;
	in_tx = 0;
	log_info("ca: host %s enrolled (EK sha256:%s, bots %s%s%s) from %s",
	    host_id, s.ek_fpr, s.bots != NULL ? s.bots : "any",
	    group != NULL ? ", group " : "", group != NULL ? group : "", peer);
	if (boot != NULL)
		log_info("ca: host %s: first boot state recorded at enrolment",
		    host_id);
	reply_json(rp, 200, json_pack("{s:s, s:s, s:s, s:s}", "host_id",
	    host_id, "spiffe_id", spiffe, "host_cert", chain, "bundle",
	    ca_signer_bundle(api->signer)));
	goto out;
 fail:
	if (in_tx)
		ca_db_rollback(api->db);
	refuse(rp, peer, "activate", 500, "internal error");
 out:
	if (secret != NULL)
		OPENSSL_cleanse(secret, secret_len);
	free(secret);
	free(attest);
	free(sigb);
	free(boot);
	free(chain);
	free(group);
	EVP_PKEY_free(hk_key);
	ca_session_clear(&s);
}

/* The host named in a request, refused if unknown or revoked. */
static int
host_load(struct ca_api *api, const char *id, const char *what,
    const char *peer, struct ca_host *h, struct reply *rp)
{
	int r;

	if (!host_id_valid(id) ||
	    (r = ca_db_host_get(api->db, id, h)) == BOTID_ERR_NOT_FOUND) {
		refuse(rp, peer, what, 403, "unknown host");
		return -1;
	}
	if (r != 0) {
		refuse(rp, peer, what, 500, "internal error");
		return -1;
	}
	if (h->revoked) {
		char msg[512];
		json_t *body;

		/*
		 * Said in a member as well as in words: the agent destroys
		 * its keys on it when deprovisioning (doc/ca-api.md).
		 */
		snprintf(msg, sizeof(msg), "host %s is revoked", id);
		if ((body = refusal(peer, what, 403, msg)) != NULL &&
		    json_object_set_new(body, "host_revoked", json_true()) != 0) {
			json_decref(body);
			body = NULL;	/* answered 500 by reply_json */
		}
		reply_json(rp, 403, body);
		return -1;
	}
	return 0;
}

/*
 * The boot-state policy's PCR selection, added to a nonce answer
 * (doc/ca-api.md): the host quotes those PCRs with its certify request.
 */
static int
nonce_pcr_select(const struct ca_pcr_policy *pol, struct reply *rp)
{
	json_t *o = NULL, *sel;
	int i, r = BOTID_ERR_ALLOC;

	if ((o = json_loads(rp->body, 0, NULL)) == NULL ||
	    (sel = json_array()) == NULL ||
	    json_object_set_new(o, "pcr_select", sel) != 0 ||
	    json_object_set_new(o, "pcr_bank", json_string("sha256")) != 0 ||
	    (pol->eventlog && json_object_set_new(o, "pcr_eventlog",
	    json_true()) != 0))
		goto out;
	for (i = 0; i < CA_PCR_COUNT; i++)
		if ((pol->select & (1u << i)) &&
		    json_array_append_new(sel, json_integer(i)) != 0)
			goto out;
	free(rp->body);
	rp->body = NULL;
	reply_json(rp, 200, o);
	o = NULL;
	r = rp->status == 200 ? 0 : BOTID_ERR_ALLOC;
 out:
	json_decref(o);
	return r;
}

/*
 * The policy's verdict on a quote, with first-use's record kept: the
 * first genuine values become the host's golden ones (read back, as
 * another replica may have recorded its own first), and every verdict
 * updates the host's state for `botid-ca inventory` and approve-boot.
 */
static int
boot_decide(struct ca_api *api, const struct ca_pcr_policy *p,
    const char *id, const TPM2B_PUBLIC *ak, const uint8_t *nonce,
    size_t nonce_len, const uint8_t *att, size_t att_len, const uint8_t *sig,
    size_t sig_len, const uint8_t *val, size_t val_len, const uint8_t *log,
    size_t log_len, char *why, size_t whylen)
{
	struct ca_boot b;
	char differ[CA_PCR_COUNT * 3 + 1];
	time_t now = time(NULL);
	int have = 0, outcome = 0, e, r;

	memset(&b, 0, sizeof(b));
	/* At activation the host has no record yet: its values start one. */
	if (id == NULL)
		return ca_pcr_admit(p, ak, nonce, nonce_len, att, att_len, sig,
		    sig_len, val, val_len, log, log_len, NULL, &outcome, why,
		    whylen);
	if (p->mode == CA_PCR_FIRST_USE) {
		r = ca_db_boot_get(api->db, id, &b);
		if (r != 0 && r != BOTID_ERR_NOT_FOUND)
			return r;
		have = r == 0;
	}
	r = ca_pcr_admit(p, ak, nonce, nonce_len, att, att_len, sig, sig_len,
	    val, val_len, log, log_len, have && b.select == p->select &&
	    b.golden_len == val_len ? b.golden : NULL, &outcome, why, whylen);
	if (r != 0 && outcome != CA_PCR_CHANGED)
		return r;
	if (p->mode == CA_PCR_EXACT) {
		/* Only the inventory reads this: the policy is the file. */
		if ((e = ca_db_boot_adopt(api->db, id, p->select, val, val_len,
		    now)) != 0 || (e = ca_db_boot_mark(api->db, id, p->select,
		    val, val_len, outcome == CA_PCR_CHANGED, now)) != 0)
			return e;
		return r;
	}
	if (outcome == CA_PCR_ADOPT && have) {
		/* Golden values over another selection: the policy changed. */
		snprintf(why, whylen, "boot state refused: the PCR selection "
		    "changed since approved (botid-ca host approve-boot)");
		outcome = CA_PCR_CHANGED;
		r = BOTID_ERR_DENIED;
	} else if (outcome == CA_PCR_ADOPT) {
		if ((r = ca_db_boot_adopt(api->db, id, p->select, val, val_len,
		    now)) != 0 || (r = ca_db_boot_get(api->db, id, &b)) != 0)
			return r;
		if (b.select != p->select || b.golden_len != val_len ||
		    ca_pcr_diff(p->select, val, b.golden, differ,
		    sizeof(differ)) != 0) {
			snprintf(why, whylen, "boot state refused: PCR %s "
			    "changed since approved (botid-ca host "
			    "approve-boot)", differ);
			outcome = CA_PCR_CHANGED;
			r = BOTID_ERR_DENIED;
		} else {
			log_info("ca: host %s: first boot state recorded at "
			    "its first quote", id);
			return 0;
		}
	}
	/* Recorded for the inventory and for approve-boot. */
	if ((outcome == CA_PCR_CHANGED || b.changed) &&
	    (e = ca_db_boot_mark(api->db, id, p->select, val, val_len,
	    outcome == CA_PCR_CHANGED, now)) != 0)
		return e;
	return r;
}

/* Which policy pol is, for /metrics: 0 the top-level one, 1 + i group i. */
static size_t
policy_index(const struct ca_api *api, const struct ca_pcr_policy *pol)
{
	size_t i;

	for (i = 0; i < api->cfg->ngroups; i++)
		if (pol == &api->cfg->groups[i].pcr)
			return 1 + i;
	return 0;
}

/*
 * The boot-state check of a certify request (ca-pcr.h), after its nonce
 * was consumed: a refused quote cannot be retried with that nonce.
 * first-use records the first values it sees as the host's golden ones,
 * and a change marks the host so that the inventory shows it.
 */
static int
boot_admit(struct ca_api *api, const struct ca_pcr_policy *pol,
    const char *what, const char *id,
    const TPM2B_PUBLIC *ak, const uint8_t *nonce, size_t nonce_len,
    const char *qa, const char *qs, const char *qv, const char *ql,
    const char *peer, struct reply *rp, uint8_t **values, size_t *values_len)
{
	uint8_t *att = NULL, *sig = NULL, *val = NULL, *log = NULL;
	size_t att_len = 0, sig_len = 0, val_len = 0, log_len = 0;
	char why[256];
	int r;

	if (values != NULL) {
		*values = NULL;
		*values_len = 0;
	}
	if ((qa != NULL && b64(qa, BLOB_MAX, &att, &att_len) != 0) ||
	    (qs != NULL && b64(qs, BLOB_MAX, &sig, &sig_len) != 0) ||
	    (qv != NULL && b64(qv, CA_PCR_COUNT * CA_PCR_SIZE, &val,
	    &val_len) != 0) ||
	    (ql != NULL && b64(ql, BOTID_MAX_EVENTLOG, &log, &log_len) != 0)) {
		refuse(rp, peer, what, 400, "bad request: a PCR member is "
		    "not base64 or is too large");
		r = BOTID_ERR_INVALID;
		goto out;
	}
	r = boot_decide(api, pol, id, ak, nonce, nonce_len, att, att_len, sig,
	    sig_len, val, val_len, log, log_len, why, sizeof(why));
	if (r == BOTID_ERR_INVALID)
		refuse(rp, peer, what, 400, "bad request: %s", why);
	else if (r == BOTID_ERR_DENIED) {
		api->metrics.boot_refusals++;
		api->metrics.boot_refusals_group[policy_index(api, pol)]++;
		refuse(rp, peer, what, 403, "host %s: %s", id != NULL ? id :
		    "(enrolling)", why);
	} else if (r != 0)
		refuse(rp, peer, what, 500, "internal error");
	else if (values != NULL) {
		*values = val;
		*values_len = val_len;
		val = NULL;
	}
 out:
	free(att);
	free(sig);
	free(val);
	free(log);
	return r;
}

/*
 * The per-host nonce rate (nonce_rate, nonce_burst): beyond it 429 with
 * Retry-After, before the database is written. One log line when a host
 * goes over, not one per refused request: a flood does not flood the log.
 */
static int
nonce_rate_check(struct ca_api *api, const char *id, const char *peer,
    struct reply *rp)
{
	struct timespec ts;
	unsigned wait = 0;
	int first = 0;
	char msg[200];

	if (api->nonce_rate == NULL)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ca_ratelimit_take(api->nonce_rate, id, (double)ts.tv_sec +
	    ts.tv_nsec / 1e9, &wait, &first) != BOTID_ERR_BUSY)
		return 0;
	snprintf(msg, sizeof(msg), "host %s asks for nonces faster than "
	    "%u a minute: retry in %u s", id, api->cfg->nonce_rate, wait);
	if (first)
		log_warn("ca: nonce from %s refused (429): %s (further "
		    "refusals not logged until it slows down)", peer, msg);
	api->metrics.nonce_rate_limited++;
	api->retry_after = wait;
	reply_json(rp, 429, json_pack("{s:s}", "error", msg));
	return BOTID_ERR_BUSY;
}

static void
handle_nonce(struct ca_api *api, json_t *j, const char *peer,
    struct reply *rp)
{
	const char *id;
	const struct ca_pcr_policy *pol;
	struct ca_host h;
	json_error_t je;
	uint8_t nonce[NONCE_LEN];
	char *nb64 = NULL, *group = NULL;
	time_t exp = time(NULL) + api->cfg->nonce_lifetime;
	int r;

	memset(&h, 0, sizeof(h));
	if (json_unpack_ex(j, &je, JSON_STRICT, "{s:s}", "host_id", &id) != 0) {
		refuse(rp, peer, "nonce", 400, "bad request: %s", je.text);
		return;
	}
	if (host_load(api, id, "nonce", peer, &h, rp) != 0)
		goto out;
	if (nonce_rate_check(api, id, peer, rp) != 0)
		goto out;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		refuse(rp, peer, "nonce", 500, "internal error");
		goto out;
	}
	/* host_id is printed in every bot certificate: cap what it costs. */
	r = ca_db_nonce_add_capped(api->db, nonce, sizeof(nonce), id, exp,
	    time(NULL), api->cfg->nonce_max);
	if (r == BOTID_ERR_BUSY) {
		refuse(rp, peer, "nonce", 429, "host %s holds %u unused "
		    "nonces: use or let them expire", id, api->cfg->nonce_max);
		goto out;
	}
	if (r != 0 || base64_encode(nonce, sizeof(nonce), &nb64) != 0) {
		refuse(rp, peer, "nonce", 500, "internal error");
		goto out;
	}
	/*
	 * The selection of the host's group's policy. A host whose group
	 * left ca.conf gets its nonce (revoke needs one) but no selection:
	 * certify refuses it.
	 */
	if (ca_db_host_group(api->db, id, &group) != 0) {
		refuse(rp, peer, "nonce", 500, "internal error");
		goto out;
	}
	pol = ca_config_pcr(api->cfg, group);
	reply_json(rp, 200, json_pack("{s:s, s:I}", "nonce", nb64, "expires",
	    (json_int_t)exp));
	if (rp->status == 200 && pol != NULL && pol->mode != CA_PCR_NONE &&
	    nonce_pcr_select(pol, rp) != 0)
		refuse(rp, peer, "nonce", 500, "internal error");
 out:
	free(group);
	free(nb64);
	ca_host_clear(&h);
}

/*
 * The grant a token-key request asks for, into g: purpose "token", 1 to
 * BOTID_MAX_SCOPES valid scopes, a lifetime capped by token_max_ttl.
 * With no purpose, no other token member may be there. The CA keeps its
 * own issuer; the host only names scopes (doc/credentials.md says why).
 */
static int
token_grant_parse(struct ca_api *api, const char *purpose, json_t *scopes,
    json_int_t max_ttl, struct botid_grant *g, const char **why)
{
	const char *s;
	json_t *v;
	size_t i, n;

	memset(g, 0, sizeof(*g));
	if (purpose == NULL) {
		if (scopes != NULL || max_ttl != 0) {
			*why = "scopes and max_token_ttl need purpose 'token'";
			return -1;
		}
		return 0;
	}
	*why = "purpose must be 'token' with 1 to 32 distinct valid scopes "
	    "and max_token_ttl above 0";
	if (strcmp(purpose, "token") != 0 || !json_is_array(scopes) ||
	    (n = json_array_size(scopes)) == 0 || n > BOTID_MAX_SCOPES ||
	    max_ttl < 1)
		return -1;
	if ((g->scopes = calloc(n, sizeof(*g->scopes))) == NULL ||
	    (g->issuer = strdup(api->cfg->issuer)) == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		v = json_array_get(scopes, i);
		/* A NUL inside a JSON string would cut it short: refused. */
		if ((s = json_string_value(v)) == NULL ||
		    json_string_length(v) != strlen(s) ||
		    !wire_scope_valid(s, strlen(s)) || grant_has_scope(g, s))
			goto fail;
		if ((g->scopes[i] = strdup(s)) == NULL)
			goto fail;
		g->nscopes++;
	}
	g->max_ttl = max_ttl < api->cfg->token_max_ttl ? (long)max_ttl :
	    api->cfg->token_max_ttl;
	return 0;
 fail:
	grant_free(g);
	return -1;
}

/* A JWK Set entry for a token key: its JWK, kid, use, alg and x5c. */
static int
token_jwk(const char *chain_pem, char **kid, char **jwk)
{
	BIO *bio = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk;
	json_t *j = NULL, *x5c = NULL;
	unsigned char *der = NULL;
	char *b = NULL;
	const char *alg;
	int len, r = BOTID_ERR_CRYPTO;

	*kid = NULL;
	*jwk = NULL;
	if ((bio = BIO_new_mem_buf(chain_pem, -1)) == NULL ||
	    (x5c = json_array()) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	/* The chain is ours: the leaf, then the CA certificate. */
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (json_array_size(x5c) == 0) {
			if ((pk = X509_get0_pubkey(x)) == NULL ||
			    (r = jwk_from_pkey(pk, &j)) != 0 ||
			    (r = jwk_thumbprint(pk, kid)) != 0)
				goto out;
			alg = EVP_PKEY_is_a(pk, "RSA") ? "RS256" :
			    EVP_PKEY_get_bits(pk) > 256 ? "ES384" : "ES256";
			if (json_object_set_new(j, "kid", json_string(*kid)) ||
			    json_object_set_new(j, "use", json_string("sig")) ||
			    json_object_set_new(j, "alg", json_string(alg))) {
				r = BOTID_ERR_ALLOC;
				goto out;
			}
		}
		if ((len = i2d_X509(x, &der)) <= 0 ||
		    base64_encode(der, (size_t)len, &b) != 0 ||
		    json_array_append_new(x5c, json_string(b)) != 0) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		OPENSSL_free(der);
		der = NULL;
		free(b);
		b = NULL;
		X509_free(x);
	}
	x = NULL;
	ERR_clear_error();
	if (j == NULL || json_object_set(j, "x5c", x5c) != 0 ||
	    (*jwk = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		r = j == NULL ? BOTID_ERR_CRYPTO : BOTID_ERR_ALLOC;
		goto out;
	}
	r = 0;
 out:
	if (r != 0) {
		free(*kid);
		*kid = NULL;
	}
	X509_free(x);
	OPENSSL_free(der);
	free(b);
	json_decref(j);
	json_decref(x5c);
	BIO_free(bio);
	return r;
}

/*
 * Records a bot certificate, and a token key's JWK with it in the same
 * transaction: a token certificate left without its JWK row would pass
 * for a signing certificate in the JWK Set and SSH queries, and a JWK
 * without its certificate row would escape revocation.
 */
static int
cert_record(struct ca_api *api, const struct ca_issue_req *req,
    const char *chain, const char *serial, const char *id, const char *bot,
    const char *kfpr, time_t not_after, time_t now, enum ca_refusal *refused)
{
	char *kid = NULL, *jwk = NULL;
	int r;

	*refused = CA_REFUSED_NONE;
	if (req->grant == NULL) {
		r = ca_db_cert_add_live(api->db, serial, id, bot,
		    req->spiffe_id, kfpr, not_after, req->attestation, now,
		    refused);
		goto out;
	}
	if ((r = token_jwk(chain, &kid, &jwk)) != 0)
		goto out;
	r = ca_db_token_cert_add_live(api->db, serial, id, bot,
	    req->spiffe_id, kfpr, not_after, req->attestation, now, kid, jwk,
	    refused);
 out:
	free(kid);
	free(jwk);
	return r;
}

static int
jwks_append(const char *jwk, void *arg)
{
	json_t *k;

	/* Rows are ours; one that does not parse is left out, not served. */
	if ((k = json_loads(jwk, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		log_warn("ca: a stored token key is not JSON; left out");
		return 0;
	}
	return json_array_append_new(arg, k) == 0 ? 0 : BOTID_ERR_ALLOC;
}

/* GET /.well-known/jwks.json: read from the database at every request. */
static void
handle_jwks(struct ca_api *api, const char *peer, struct reply *rp)
{
	json_t *keys;

	if ((keys = json_array()) == NULL ||
	    ca_db_token_keys(api->db, time(NULL), api->cfg->token_max_ttl,
	    jwks_append, keys) != 0) {
		json_decref(keys);
		refuse(rp, peer, "jwks", 500, "cannot list the token keys");
		return;
	}
	reply_json(rp, 200, json_pack("{s:o}", "keys", keys));
	if (rp->status == 200)
		rp->ctype = "application/jwk-set+json";
}

static void
handle_discovery(struct ca_api *api, const char *peer, struct reply *rp)
{
	char uri[BOTID_MAX_ISSUER + 64];

	(void)peer;
	snprintf(uri, sizeof(uri), "%s/.well-known/jwks.json", api->base_url);
	reply_json(rp, 200, json_pack("{s:s, s:s, s:[s], s:[s], s:[s,s,s]}",
	    "issuer", api->cfg->issuer, "jwks_uri", uri,
	    "subject_types_supported", "public", "response_types_supported",
	    "id_token", "id_token_signing_alg_values_supported", "ES256",
	    "ES384", "RS256"));
}

static void
handle_certify(struct ca_api *api, json_t *j, const char *peer,
    struct reply *rp)
{
	const char *id, *nb, *bot, *kind, *pub = NULL, *att = NULL, *spk = NULL;
	const char *sig, *why = NULL, *purpose = NULL, *tbs_bot;
	const char *pcr_quote = NULL, *pcr_sig = NULL, *pcr_values = NULL;
	const char *pcr_log = NULL;
	json_t *scopes = NULL;
	json_int_t max_ttl = 0;
	struct botid_grant grant;
	char tbs_name[BOTID_MAX_BOT_NAME + sizeof(BOTID_TOKEN_KEY_SUFFIX)];
	uint8_t *nonce = NULL, *pubb = NULL, *attb = NULL, *spki = NULL;
	uint8_t *sigb = NULL, *tbs = NULL;
	size_t nonce_len = 0, pub_len = 0, att_len = 0, spki_len = 0;
	size_t sig_len = 0, tbs_len = 0;
	struct ca_host h;
	TPM2B_PUBLIC ak, hk, key;
	EVP_PKEY *pk = NULL;
	json_error_t je;
	const uint8_t *p;
	char spiffe[512], serial[33], *chain = NULL, pwhy[256], kfpr[65];
	char *group = NULL;
	const struct ca_pcr_policy *pol;
	struct ca_issue_req req;
	enum ca_refusal refused = CA_REFUSED_NONE;
	time_t now = time(NULL), not_after;
	int r, tpm;

	memset(&h, 0, sizeof(h));
	memset(&grant, 0, sizeof(grant));
	if (json_unpack_ex(j, &je, JSON_STRICT,
	    "{s:s, s:s, s:s, s:s, s?s, s?s, s?s, s:s, s?s, s?o, s?I, s?s, s?s, "
	    "s?s, s?s}",
	    "host_id", &id, "nonce", &nb, "bot", &bot, "attestation", &kind,
	    "public", &pub, "attest", &att, "spki", &spk, "signature", &sig,
	    "purpose", &purpose, "scopes", &scopes, "max_token_ttl",
	    &max_ttl, "pcr_quote", &pcr_quote, "pcr_signature", &pcr_sig,
	    "pcr_values", &pcr_values, "pcr_eventlog", &pcr_log) != 0) {
		refuse(rp, peer, "certify", 400, "bad request: %s", je.text);
		goto out;
	}
	if (token_grant_parse(api, purpose, scopes, max_ttl, &grant,
	    &why) != 0) {
		refuse(rp, peer, "certify", 400, "bad request: %s", why);
		goto out;
	}
	tpm = strcmp(kind, "tpm") == 0;
	if ((!tpm && strcmp(kind, "pkcs11") != 0) ||
	    (tpm && (pub == NULL || att == NULL || spk != NULL)) ||
	    (!tpm && (spk == NULL || pub != NULL || att != NULL))) {
		refuse(rp, peer, "certify", 400, "bad request: attestation "
		    "'tpm' needs public and attest, 'pkcs11' needs spki");
		goto out;
	}
	if (!bot_name_valid(bot)) {
		refuse(rp, peer, "certify", 400, "bad request: invalid bot "
		    "name");
		goto out;
	}
	if (b64(nb, 64, &nonce, &nonce_len) != 0 ||
	    b64(sig, BLOB_MAX, &sigb, &sig_len) != 0 ||
	    (tpm && (b64(pub, BLOB_MAX, &pubb, &pub_len) != 0 ||
	    b64(att, BLOB_MAX, &attb, &att_len) != 0)) ||
	    (!tpm && b64(spk, BLOB_MAX, &spki, &spki_len) != 0)) {
		refuse(rp, peer, "certify", 400, "bad request: a member is not "
		    "base64 or is too large");
		goto out;
	}
	if (host_load(api, id, "certify", peer, &h, rp) != 0)
		goto out;
	/* Fail closed: a group gone from ca.conf has no policy to pass. */
	if (ca_db_host_group(api->db, id, &group) != 0)
		goto fail;
	if ((pol = ca_config_pcr(api->cfg, group)) == NULL) {
		api->metrics.boot_refusals++;
		refuse(rp, peer, "certify", 403, "host %s: boot state refused: "
		    "its host group %s is not in ca.conf (restore the group or "
		    "botid-ca host set-group)", id, group);
		goto out;
	}
	/* The key policy first: a refused key consumes nothing. */
	if (tpm) {
		if (tpm_public_parse(pubb, pub_len, &key) != 0) {
			refuse(rp, peer, "certify", 400, "public is not a valid "
			    "TPM2B_PUBLIC");
			goto out;
		}
		r = ca_policy_tpm_key(api->cfg, &key, pwhy, sizeof(pwhy));
	} else {
		p = spki;
		if ((pk = d2i_PUBKEY(NULL, &p, (long)spki_len)) == NULL ||
		    p != spki + spki_len) {
			ERR_clear_error();
			refuse(rp, peer, "certify", 400, "spki is not a DER "
			    "SubjectPublicKeyInfo");
			goto out;
		}
		r = ca_policy_pkey(api->cfg, pk, pwhy, sizeof(pwhy));
	}
	if (r != 0) {
		ca_metrics_key_policy(&api->metrics, 1);
		refuse(rp, peer, "certify", 403, "bot %s: %s", bot, pwhy);
		goto out;
	}
	r = ca_db_nonce_use(api->db, nonce, nonce_len, id, now);
	if (r == BOTID_ERR_DENIED) {
		refuse(rp, peer, "certify", 409, "nonce already used (replay)");
		goto out;
	} else if (r == BOTID_ERR_TIMEOUT) {
		refuse(rp, peer, "certify", 410, "nonce expired");
		goto out;
	} else if (r == BOTID_ERR_NOT_FOUND) {
		refuse(rp, peer, "certify", 403, "unknown nonce");
		goto out;
	} else if (r != 0)
		goto fail;
	if (!bot_allowed(h.bots, bot)) {
		refuse(rp, peer, "certify", 403, "bot %s is not allowed for "
		    "host %s", bot, id);
		goto out;
	}
	if (tpm_public_parse(h.ak_pub, h.ak_len, &ak) != 0 ||
	    tpm_public_parse(h.hk_pub, h.hk_len, &hk) != 0)
		goto fail;
	if (pol->mode != CA_PCR_NONE) {
		if (boot_admit(api, pol, "certify", id, &ak, nonce, nonce_len,
		    pcr_quote, pcr_sig, pcr_values, pcr_log, peer, rp, NULL,
		    NULL) != 0)
			goto out;
	} else if (pcr_quote != NULL || pcr_sig != NULL || pcr_values != NULL ||
	    pcr_log != NULL) {
		refuse(rp, peer, "certify", 400, "bad request: no boot-state "
		    "policy asked for a PCR quote");
		goto out;
	}
	if (tpm) {
		if (tpm_public_check(&key, TPM_PROFILE_KEY, &why) != 0 ||
		    tpm_certify_verify(&ak, &key, nonce, nonce_len, attb,
		    att_len, sigb, sig_len, &why) != 0) {
			refuse(rp, peer, "certify", 403, "bot %s: key refused: "
			    "%s", bot, why != NULL ? why : "malformed evidence");
			goto out;
		}
		if ((r = tpm_public_to_pkey(&key, &pk)) != 0) {
			if (request_status(r) == 500)
				goto fail;
			refuse(rp, peer, "certify", request_status(r),
			    "bot %s: key refused: %s", bot, botid_strerror(r));
			goto out;
		}
	} else {
		/*
		 * SHA-256 is applied by the verifier. The host key vouches
		 * for a token key under the name BOT+jwt, so that a vouching
		 * for the bot's signing key cannot be replayed as one.
		 */
		tbs_bot = bot;
		if (purpose != NULL) {
			snprintf(tbs_name, sizeof(tbs_name), "%s%s", bot,
			    BOTID_TOKEN_KEY_SUFFIX);
			tbs_bot = tbs_name;
		}
		if (certify_pkcs11_tbs(nonce, nonce_len, tbs_bot, spki,
		    spki_len, &tbs, &tbs_len) != 0)
			goto fail;
		if (tpm_signature_verify(&hk, tbs, tbs_len, sigb, sig_len,
		    &why) != 0) {
			refuse(rp, peer, "certify", 403, "bot %s: the host key's "
			    "signature is refused: %s", bot, why != NULL ? why :
			    "malformed");
			goto out;
		}
	}
	snprintf(spiffe, sizeof(spiffe), "spiffe://%s/host/%s/bot/%s",
	    api->cfg->trust_domain, id, bot);
	if (key_fingerprint(pk, kfpr) != 0)
		goto fail;
	memset(&req, 0, sizeof(req));
	req.spiffe_id = spiffe;
	req.serves = purpose == NULL;
	req.pubkey = pk;
	req.lifetime = api->cfg->bot_lifetime;
	req.attestation = tpm ? "tpm" : "pkcs11";
	req.grant = purpose != NULL ? &grant : NULL;
	if (ca_issue(api->signer, &req, &chain, serial, &not_after) != 0 ||
	    cert_record(api, &req, chain, serial, id, bot, kfpr, not_after,
	    now, &refused) != 0)
		goto fail;
	/* Signed but not recorded: the certificate is dropped unseen. */
	if (refused != CA_REFUSED_NONE) {
		refuse(rp, peer, "certify", 403, "%s",
		    refused == CA_REFUSED_HOST ? "the host was revoked" :
		    refused == CA_REFUSED_BOT ? "the bot is revoked until an "
		    "operator lifts it (botid-ca unrevoke bot)" :
		    refused == CA_REFUSED_KEY_HOST ? "the key is certified to "
		    "another host" :
		    refused == CA_REFUSED_KEY_BOT ? "the key is certified to "
		    "another bot of this host" :
		    "the key was certified for a revoked bot");
		goto out;
	}
	log_info("ca: issued %s%s to %s (%s, serial %s, until %lld)", spiffe,
	    purpose != NULL ? " (token key)" : "", peer, kind, serial,
	    (long long)not_after);
	reply_json(rp, 200, json_pack("{s:s, s:s, s:s, s:I}", "chain", chain,
	    "serial", serial, "spiffe_id", spiffe, "not_after",
	    (json_int_t)not_after));
	goto out;
 fail:
	refuse(rp, peer, "certify", 500, "internal error");
 out:
	free(nonce);
	free(pubb);
	free(attb);
	free(spki);
	free(sigb);
	free(tbs);
	free(chain);
	free(group);
	EVP_PKEY_free(pk);
	grant_free(&grant);
	ca_host_clear(&h);
}

/* Normalises a serial to the CA's upper-case hex; 0 if not hex. */
static int
serial_normalise(const char *in, char out[CA_REVOKE_SERIAL_MAX + 1])
{
	size_t i;

	for (i = 0; in[i] != '\0'; i++) {
		if (i == CA_REVOKE_SERIAL_MAX || !isxdigit((unsigned char)in[i]))
			return 0;
		out[i] = (char)toupper((unsigned char)in[i]);
	}
	out[i] = '\0';
	return i > 0;
}

static int
revoked_append(const char *serial, void *arg)
{
	return json_array_append_new(arg, json_string(serial)) == 0 ? 0 :
	    BOTID_ERR_ALLOC;
}

static void
handle_revoke(struct ca_api *api, json_t *j, const char *peer,
    struct reply *rp)
{
	const char *id, *nb, *target = NULL, *reason, *sig, *why = NULL;
	uint8_t *nonce = NULL, *sigb = NULL, *tbs = NULL;
	size_t nonce_len = 0, sig_len = 0, tbs_len = 0;
	char serial[CA_REVOKE_SERIAL_MAX + 1];
	struct ca_host h;
	TPM2B_PUBLIC hk;
	json_error_t je;
	json_t *hostv = NULL, *list = NULL;
	time_t now = time(NULL);
	int code, r, host, status = 0, in_tx = 0, already = 0;

	memset(&h, 0, sizeof(h));
	serial[0] = '\0';
	if (json_unpack_ex(j, &je, JSON_STRICT,
	    "{s:s, s:s, s?s, s?o, s:s, s:s}", "host_id", &id, "nonce", &nb,
	    "serial", &target, "host", &hostv, "reason", &reason,
	    "signature", &sig) != 0) {
		refuse(rp, peer, "revoke", 400, "bad request: %s", je.text);
		goto out;
	}
	host = hostv != NULL;
	if ((target == NULL) == (hostv == NULL) ||
	    (host && !json_is_true(hostv))) {
		refuse(rp, peer, "revoke", 400, "bad request: give either "
		    "serial or \"host\": true");
		goto out;
	}
	if (host)
		target = CA_REVOKE_HOST;
	else if (!serial_normalise(target, serial)) {
		refuse(rp, peer, "revoke", 400, "bad request: serial is not "
		    "1 to %d hex digits", CA_REVOKE_SERIAL_MAX);
		goto out;
	}
	if ((code = ca_revoke_reason_code(reason)) < 0) {
		refuse(rp, peer, "revoke", 400, "bad request: reason is not "
		    "unspecified, keyCompromise, superseded or "
		    "cessationOfOperation");
		goto out;
	}
	if (b64(nb, 64, &nonce, &nonce_len) != 0 ||
	    b64(sig, BLOB_MAX, &sigb, &sig_len) != 0) {
		refuse(rp, peer, "revoke", 400, "bad request: a member is not "
		    "base64 or is too large");
		goto out;
	}
	if (host_load(api, id, "revoke", peer, &h, rp) != 0)
		goto out;
	if (tpm_public_parse(h.hk_pub, h.hk_len, &hk) != 0 ||
	    (list = json_array()) == NULL)
		goto fail;
	/* The serial as the host signed it, before normalisation. */
	if (ca_revoke_tbs(nonce, nonce_len, id, target, reason, &tbs,
	    &tbs_len) != 0)
		goto fail;
	if (ca_db_begin(api->db) != 0)
		goto fail;
	in_tx = 1;
	r = ca_db_nonce_use(api->db, nonce, nonce_len, id, now);
	if (r == BOTID_ERR_DENIED || r == BOTID_ERR_TIMEOUT ||
	    r == BOTID_ERR_NOT_FOUND) {
		ca_db_rollback(api->db);
		in_tx = 0;
		if (r == BOTID_ERR_DENIED)
			refuse(rp, peer, "revoke", 409, "nonce already used "
			    "(replay)");
		else if (r == BOTID_ERR_TIMEOUT)
			refuse(rp, peer, "revoke", 410, "nonce expired");
		else
			refuse(rp, peer, "revoke", 403, "unknown nonce");
		goto out;
	} else if (r != 0)
		goto fail;
	/* From here a refusal commits: the nonce stays consumed. */
	if (tpm_signature_verify(&hk, tbs, tbs_len, sigb, sig_len,
	    &why) != 0) {
		status = 403;
		why = why != NULL ? why : "malformed";
	} else if (host) {
		r = ca_db_host_revoke_certs(api->db, id, code, now,
		    revoked_append, list);
		if (r == BOTID_ERR_NOT_FOUND) {
			status = 403;
			why = "the host is revoked";
		} else if (r != 0)
			goto fail;
	} else {
		r = ca_db_cert_revoke_serial(api->db, serial, id, code, now,
		    &already);
		if (r == BOTID_ERR_NOT_FOUND) {
			status = 404;
			why = "no certificate with this serial";
		} else if (r == BOTID_ERR_DENIED) {
			status = 403;
			why = "the certificate was not issued to this host";
		} else if (r != 0 || revoked_append(serial, list) != 0)
			goto fail;
	}
	if (ca_db_commit(api->db) != 0)
		goto fail;
	in_tx = 0;
	if (status != 0) {
		refuse(rp, peer, "revoke", status, "host %s: revocation of %s "
		    "refused: %s", id, host ? "the host" : serial, why);
		goto out;
	}
	if (!already)
		ca_metrics_revocation(&api->metrics, host);
	if (host)
		log_info("ca: host %s revoked with its %zu certificate(s) at "
		    "its own request (%s) from %s", id, json_array_size(list),
		    reason, peer);
	else
		log_info("ca: certificate %s of host %s revoked at its "
		    "request (%s%s) from %s", serial, id, reason,
		    already ? ", already revoked" : "", peer);
	reply_json(rp, 200, json_pack("{s:O, s:b}", "revoked", list,
	    "already", already));
	goto out;
 fail:
	if (in_tx)
		ca_db_rollback(api->db);
	refuse(rp, peer, "revoke", 500, "internal error");
 out:
	if (nonce != NULL)
		OPENSSL_cleanse(nonce, nonce_len);
	if (tbs != NULL)
		OPENSSL_cleanse(tbs, tbs_len);
	free(nonce);
	free(sigb);
	free(tbs);
	json_decref(list);
	ca_host_clear(&h);
}

json_t *
ca_anchor_json(const struct ca_anchor *a)
{
	return json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:s}",
	    "host_id", a->host_id, "number", (json_int_t)a->number, "seq",
	    (json_int_t)a->seq, "reason", a->reason, "time", a->time, "hash",
	    a->hash, "received", (json_int_t)a->received, "checkpoint",
	    a->line);
}

/*
 * POST /v1/audit/anchor: a host's signed checkpoint, kept as its newest
 * when its number is above the one held; the same checkpoint again is
 * answered as held, an older or different one under a held number is a
 * replay.
 */
static void
handle_anchor(struct ca_api *api, json_t *j, const char *peer,
    struct reply *rp)
{
	struct auditlog_anchor cp;
	struct ca_anchor a, latest;
	struct ca_host h;
	TPM2B_PUBLIC hk;
	EVP_PKEY *key = NULL;
	json_error_t je;
	const char *id, *line;
	int r, in_tx = 0, already = 0;

	memset(&h, 0, sizeof(h));
	memset(&a, 0, sizeof(a));
	memset(&latest, 0, sizeof(latest));
	if (json_unpack_ex(j, &je, JSON_STRICT, "{s:s, s:s}", "host_id", &id,
	    "checkpoint", &line) != 0) {
		refuse(rp, peer, "anchor", 400, "bad request: %s", je.text);
		goto out;
	}
	if (host_load(api, id, "anchor", peer, &h, rp) != 0)
		goto out;
	if (tpm_public_parse(h.hk_pub, h.hk_len, &hk) != 0 ||
	    tpm_public_to_pkey(&hk, &key) != 0)
		goto fail;
	r = auditlog_checkpoint_check((const uint8_t *)line, strlen(line),
	    key, &cp);
	if (r == BOTID_ERR_DENIED) {
		refuse(rp, peer, "anchor", 403, "host %s: the checkpoint's "
		    "signature does not verify with the host key", id);
		goto out;
	} else if (r != 0) {
		refuse(rp, peer, "anchor", 400, "bad request: not a signed "
		    "version 2 audit checkpoint");
		goto out;
	}
	snprintf(a.host_id, sizeof(a.host_id), "%s", id);
	a.number = cp.number;
	a.seq = cp.seq;
	snprintf(a.reason, sizeof(a.reason), "%s", cp.reason);
	snprintf(a.time, sizeof(a.time), "%s", cp.time);
	hex_encode(cp.hash, sizeof(cp.hash), a.hash);
	a.received = time(NULL);
	a.line = (char *)line;
	if (ca_db_begin(api->db) != 0)
		goto fail;
	in_tx = 1;
	r = ca_db_anchor_latest(api->db, id, &latest);
	if (r != 0 && r != BOTID_ERR_NOT_FOUND)
		goto fail;
	if (r == 0 && latest.number == a.number &&
	    strcmp(latest.hash, a.hash) == 0)
		already = 1;
	else if (r == 0 && latest.number >= a.number) {
		ca_db_rollback(api->db);
		in_tx = 0;
		refuse(rp, peer, "anchor", 409, "host %s: checkpoint number %"
		    PRIu64 " is not after number %" PRIu64 ", the newest held "
		    "(replay)", id, a.number, latest.number);
		goto out;
	} else if ((r = ca_db_anchor_add(api->db, &a,
	    (unsigned)api->cfg->audit_anchor_history)) == BOTID_ERR_DENIED) {
		ca_db_rollback(api->db);
		in_tx = 0;
		refuse(rp, peer, "anchor", 409, "host %s: checkpoint number %"
		    PRIu64 " is held already (replay)", id, a.number);
		goto out;
	} else if (r != 0)
		goto fail;
	if (ca_db_commit(api->db) != 0)
		goto fail;
	in_tx = 0;
	if (!already)
		log_info("ca: host %s anchored audit checkpoint %" PRIu64
		    " (seq %" PRIu64 ", %s) from %s", id, a.number, a.seq,
		    a.reason, peer);
	reply_json(rp, 200, json_pack("{s:I, s:b}", "number",
	    (json_int_t)a.number, "already", already));
	goto out;
 fail:
	if (in_tx)
		ca_db_rollback(api->db);
	refuse(rp, peer, "anchor", 500, "internal error");
 out:
	EVP_PKEY_free(key);
	ca_anchor_clear(&latest);
	ca_host_clear(&h);
}

/* GET /v1/audit/anchor/HOST: the newest checkpoint held for HOST. */
static void
handle_anchor_get(struct ca_api *api, const char *id, const char *peer,
    struct reply *rp)
{
	struct ca_anchor a;
	int r;

	memset(&a, 0, sizeof(a));
	if (!host_id_valid(id))
		refuse(rp, peer, "anchor", 404, "no such host");
	else if ((r = ca_db_anchor_latest(api->db, id, &a)) ==
	    BOTID_ERR_NOT_FOUND)
		refuse(rp, peer, "anchor", 404, "host %s anchored no audit "
		    "checkpoint", id);
	else if (r != 0)
		refuse(rp, peer, "anchor", 500, "internal error");
	else
		reply_json(rp, 200, ca_anchor_json(&a));
	ca_anchor_clear(&a);
}

struct anchors {
	struct ca_metrics_anchor	*a;
	size_t				 n;
	time_t				 now;
};

static int
anchor_gauge(const struct ca_anchor *a, void *arg)
{
	struct anchors *l = arg;
	struct ca_metrics_anchor *n;

	if (l->n >= CA_MAX_ANCHOR_GAUGES)
		return 0;
	if ((n = reallocarray(l->a, l->n + 1, sizeof(*n))) == NULL)
		return BOTID_ERR_ALLOC;
	l->a = n;
	snprintf(n[l->n].host, sizeof(n[l->n].host), "%s", a->host_id);
	n[l->n].number = a->number;
	n[l->n].age = (long long)(l->now - a->received);
	l->n++;
	return 0;
}

/* Adds each host's newest anchor to the metrics text. */
/* Boot-state refusals by host group, when ca.conf has groups. */
static int
metrics_groups(struct ca_api *api, char **text)
{
	const char *names[CA_METRICS_GROUPS];
	size_t i, n = api->cfg->ngroups;

	if (n == 0)
		return 0;
	names[0] = "default";
	for (i = 0; i < n; i++)
		names[1 + i] = api->cfg->groups[i].name;
	return ca_metrics_boot_groups(text, names,
	    api->metrics.boot_refusals_group, 1 + n);
}

static int
metrics_anchors(struct ca_api *api, char **text)
{
	struct anchors l = { NULL, 0, time(NULL) };
	int r;

	if ((r = ca_db_anchor_each(api->db, anchor_gauge, &l)) == 0)
		r = ca_metrics_anchors(text, l.a, l.n);
	free(l.a);
	return r;
}

int
ca_api_handle(struct ca_api *api, const char *method, const char *path,
    const char *body, size_t len, const char *peer, char **out,
    const char **ctype)
{
	static const struct {
		const char	*path;
		void		(*fn)(struct ca_api *, json_t *, const char *,
				    struct reply *);
	} posts[] = {
		{ "/v1/enrol", handle_enrol },
		{ "/v1/activate", handle_activate },
		{ "/v1/nonce", handle_nonce },
		{ "/v1/certify", handle_certify },
		{ "/v1/revoke", handle_revoke },
		{ "/v1/audit/anchor", handle_anchor },
	};
	struct reply rp;
	struct timespec t0, t1;
	json_error_t je;
	json_t *j = NULL;
	size_t i;
	int get = strcmp(method, "GET") == 0;

	memset(&rp, 0, sizeof(rp));
	api->retry_after = 0;
	api->body_len = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (get && strcmp(path, "/v1/health/live") == 0)
		reply_json(&rp, 200, json_pack("{s:s}", "status", "live"));
	else if (get && strcmp(path, "/v1/health/ready") == 0) {
		/* Ready only when the database answers, now. */
		if (ca_db_ping(api->db) == 0)
			reply_json(&rp, 200, json_pack("{s:s}", "status",
			    "ready"));
		else
			refuse(&rp, peer, "readiness", 503, "the database does "
			    "not answer");
	} else if (get && strcmp(path, "/metrics") == 0) {
		rp.status = 200;
		rp.ctype = "text/plain; version=0.0.4";
		if (ca_metrics_render(&api->metrics, ca_db_ping(api->db) == 0,
		    &rp.body) != 0)
			rp.body = NULL;
		else if (rp.body != NULL && metrics_anchors(api,
		    &rp.body) != 0)
			log_err("ca: metrics: audit anchors left out");
		else if (rp.body != NULL && metrics_groups(api,
		    &rp.body) != 0)
			log_err("ca: metrics: host groups left out");
	} else if (get && strncmp(path, ANCHOR_PREFIX,
	    strlen(ANCHOR_PREFIX)) == 0) {
		handle_anchor_get(api, path + strlen(ANCHOR_PREFIX), peer, &rp);
	} else if (get && strcmp(path, "/v1/bundle") == 0) {
		rp.status = 200;
		rp.ctype = "application/x-pem-file";
		rp.body = strdup(ca_signer_bundle(api->signer));
	} else if (get && strcmp(path, "/.well-known/jwks.json") == 0) {
		handle_jwks(api, peer, &rp);
	} else if (get && strcmp(path,
	    "/.well-known/openid-configuration") == 0) {
		handle_discovery(api, peer, &rp);
	} else if (strncmp(path, "/v1/ssh/", 8) == 0) {
		rp.status = ca_ssh_handle(api, method, path, body, len, peer,
		    &rp.body, &rp.ctype);
	} else if (get && strcmp(path, "/v1/crl") == 0) {
		rp.status = 200;
		rp.ctype = "application/x-pem-file";
		if (ca_crl(api->signer, api->db, &rp.body) != 0)
			refuse(&rp, peer, "crl", 500, "cannot make the CRL");
	} else {
		for (i = 0; i < sizeof(posts) / sizeof(posts[0]); i++)
			if (strcmp(path, posts[i].path) == 0)
				break;
		if (i == sizeof(posts) / sizeof(posts[0]))
			refuse(&rp, peer, path, 404, "no such endpoint");
		else if (strcmp(method, "POST") != 0)
			refuse(&rp, peer, path, 405, "use POST");
		else if (len > CA_BODY_MAX)
			refuse(&rp, peer, path, 413, "body larger than %u "
			    "bytes", CA_BODY_MAX);
		else if ((j = json_loadb(body, len, JSON_REJECT_DUPLICATES,
		    &je)) == NULL || !json_is_object(j))
			refuse(&rp, peer, path, 400, "bad request: not a JSON "
			    "object%s%s", j == NULL ? ": " : "",
			    j == NULL ? je.text : "");
		else
			posts[i].fn(api, j, peer, &rp);
	}
	json_decref(j);
	if (rp.body == NULL) {
		api->body_len = 0;
		rp.status = 500;
		rp.ctype = "application/json";
		rp.body = strdup("{\"error\":\"out of memory\"}");
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ca_metrics_request(&api->metrics, path, rp.status,
	    (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	*out = rp.body;
	*ctype = rp.ctype;
	return rp.status;
}
