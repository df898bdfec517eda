/*
 * ca-certify-requests STATE_DIR TCTI COUNT OUTDIR [BOT]: plays a
 * provisioned host and writes COUNT valid /v1/certify bodies, each over a
 * fresh nonce from the host's CA and with real TPM evidence for one new
 * key, to OUTDIR/certify-N.json. ca-postgres.sh and ca-bench post them at
 * several replicas at once (curl), to race one nonce or to load the CA.
 * Exit 0 when every body was written. With CERTIFY_CURVE=p224 in the
 * environment the keys are NIST P-224 ECC keys (for refusals).
 *
 * ca-certify-requests STATE_DIR TCTI revoke SERIAL|host REASON: revokes
 * through ca_client_revoke, signing with the host key in the TPM. Exit 0
 * revoked (or already), 3 refused (403, 409, 410), 4 unknown serial (404),
 * 5 CA unavailable, 1 anything else; the reason goes to stderr.
 *
 * ca-certify-requests STATE_DIR TCTI revoke-body SERIAL|host REASON
 * SIGNED host|other FILE: writes a /v1/revoke body for SERIAL (or the host)
 * over a fresh nonce to FILE, its signature made over the message for
 * target SIGNED by the host key ("host") or by a new key of the same TPM
 * that the CA never saw ("other"), for ca-basic.sh to post (replays, bad
 * signatures).
 *
 * ca-certify-requests STATE_DIR TCTI pkcs11-body SPKI_DER BOT FILE: writes
 * a /v1/certify body for a PKCS#11 bot BOT whose key is the
 * SubjectPublicKeyInfo in SPKI_DER (any key: a software key, a weak one),
 * vouched for by the host key over a fresh nonce, as an enrolled host
 * controlled by an attacker can (caharden.sh, ca-keypolicy.sh); with
 * CERTIFY_NONCE (base64) in the environment, over that nonce instead.
 *
 * ca-certify-requests STATE_DIR TCTI tpm-body rsa1024|rsa2048|p224|p256
 * BOT FILE: writes a /v1/certify body for a new TPM key of that type,
 * certified by the genuine AK over a fresh nonce (ca-keypolicy.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "attest/ca-client.h"
#include "attest/ca-revoke.h"
#include "attest/evidence.h"
#include "attest/host-state.h"
#include "attest/tpm-templates.h"
#include "lib/base64.h"
#include "lib/botid.h"
#include "lib/certify-tbs.h"
#include "lib/file.h"

#include <openssl/evp.h>

#define MAX_COUNT	10000

static ESYS_TR
load(ESYS_CONTEXT *esys, ESYS_TR srk, const TPM2B_PUBLIC *pub,
    const TPM2B_PRIVATE *priv)
{
	ESYS_TR h = ESYS_TR_NONE;

	if (Esys_Load(esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, priv, pub, &h) != 0) {
		fprintf(stderr, "certify-requests: TPM2_Load failed\n");
		exit(2);
	}
	return h;
}

/* One body: a nonce from the CA, the key certified by the AK over it. */
static int
write_request(struct host_state *hs, struct ca_client *ca, ESYS_CONTEXT *esys,
    ESYS_TR srk, const TPM2B_PUBLIC *kpub, const TPM2B_PRIVATE *kpriv,
    const char *bot, const char *path)
{
	uint8_t pub[sizeof(TPM2B_PUBLIC)], *nonce = NULL, *attest = NULL;
	uint8_t *sig = NULL;
	size_t off = 0, nlen = 0, alen = 0, slen = 0;
	json_t *req = NULL, *resp = NULL;
	ESYS_TR ak, kh;
	char err[512];
	int r = 1;

	req = json_pack("{s:s}", "host_id", hs->host_id);
	if (req == NULL || ca_client_post(ca, "/v1/nonce", req, &resp, err,
	    sizeof(err)) != 0 || ca_json_get_b64(resp, "nonce", 64, &nonce,
	    &nlen) != 0) {
		fprintf(stderr, "certify-requests: nonce: %s\n", err);
		goto out;
	}
	json_decref(req);
	ak = load(esys, srk, &hs->ak_pub, &hs->ak_priv);
	kh = load(esys, srk, kpub, kpriv);
	if (evidence_certify(esys, ak, kh, nonce, nlen, &attest, &alen, &sig,
	    &slen) != 0) {
		fprintf(stderr, "certify-requests: TPM2_Certify failed\n");
		exit(2);
	}
	Esys_FlushContext(esys, kh);
	Esys_FlushContext(esys, ak);
	Tss2_MU_TPM2B_PUBLIC_Marshal(kpub, pub, sizeof(pub), &off);
	req = json_pack("{s:s, s:s, s:s}", "host_id", hs->host_id, "bot", bot,
	    "attestation", "tpm");
	if (req == NULL || ca_json_set_b64(req, "nonce", nonce, nlen) != 0 ||
	    ca_json_set_b64(req, "public", pub, off) != 0 ||
	    ca_json_set_b64(req, "attest", attest, alen) != 0 ||
	    ca_json_set_b64(req, "signature", sig, slen) != 0 ||
	    json_dump_file(req, path, JSON_COMPACT) != 0) {
		fprintf(stderr, "certify-requests: cannot write %s\n", path);
		goto out;
	}
	r = 0;
 out:
	json_decref(req);
	json_decref(resp);
	free(nonce);
	free(attest);
	free(sig);
	return r;
}

/* The key ca_client_revoke's callback signs with. */
struct signer {
	ESYS_CONTEXT		*esys;
	ESYS_TR			 srk;
	const TPM2B_PUBLIC	*pub;
	const TPM2B_PRIVATE	*priv;
};

static int
sign_digest(void *arg, const uint8_t digest[32], uint8_t **sig,
    size_t *sig_len)
{
	struct signer *sg = arg;
	ESYS_TR h = load(sg->esys, sg->srk, sg->pub, sg->priv);
	int r;

	r = evidence_sign(sg->esys, h, sg->pub->publicArea.type ==
	    TPM2_ALG_ECC, digest, sig, sig_len);
	Esys_FlushContext(sg->esys, h);
	return r;
}

static int
revoke(struct host_state *hs, struct ca_client *ca, struct signer *sg,
    const char *target, const char *reason)
{
	char why[512];
	int r;

	r = ca_client_revoke(ca, hs->host_id, strcmp(target,
	    CA_REVOKE_HOST) == 0 ? NULL : target, reason, sign_digest, sg, why,
	    sizeof(why));
	if (r == 0) {
		printf("revoked %s\n", target);
		return 0;
	}
	fprintf(stderr, "certify-requests: revoke %s: %s (%s)\n", target, why,
	    botid_strerror(r));
	return r == BOTID_ERR_DENIED ? 3 : r == BOTID_ERR_NOT_FOUND ? 4 :
	    r == BOTID_ERR_UNAVAILABLE ? 5 : 1;
}

/* A /v1/revoke body for target, signed over the message for signed_target. */
static int
revoke_body(struct host_state *hs, struct ca_client *ca, struct signer *sg,
    const char *target, const char *reason, const char *signed_target,
    const char *path)
{
	uint8_t *nonce = NULL, *sig = NULL, digest[32];
	size_t nlen = 0, slen = 0;
	json_t *req = NULL, *resp = NULL;
	char err[512];
	int r = 1;

	err[0] = '\0';
	req = json_pack("{s:s}", "host_id", hs->host_id);
	if (req == NULL || ca_client_post(ca, "/v1/nonce", req, &resp, err,
	    sizeof(err)) != 0 || ca_json_get_b64(resp, "nonce", 64, &nonce,
	    &nlen) != 0) {
		fprintf(stderr, "certify-requests: nonce: %s\n", err);
		goto out;
	}
	json_decref(req);
	if (ca_revoke_digest(nonce, nlen, hs->host_id, signed_target, reason,
	    digest) != 0 || sign_digest(sg, digest, &sig, &slen) != 0) {
		fprintf(stderr, "certify-requests: cannot sign\n");
		req = NULL;
		goto out;
	}
	req = json_pack("{s:s, s:s}", "host_id", hs->host_id, "reason",
	    reason);
	if (req == NULL || json_object_set_new(req, strcmp(target,
	    CA_REVOKE_HOST) == 0 ? "host" : "serial", strcmp(target,
	    CA_REVOKE_HOST) == 0 ? json_true() : json_string(target)) != 0 ||
	    ca_json_set_b64(req, "nonce", nonce, nlen) != 0 ||
	    ca_json_set_b64(req, "signature", sig, slen) != 0 ||
	    json_dump_file(req, path, JSON_COMPACT) != 0) {
		fprintf(stderr, "certify-requests: cannot write %s\n", path);
		goto out;
	}
	r = 0;
 out:
	json_decref(req);
	json_decref(resp);
	free(nonce);
	free(sig);
	return r;
}

/*
 * A fresh nonce from the host's CA (malloc'd), or the base64 one in
 * CERTIFY_NONCE: a nonce the CA refused a request over, sent again to show
 * that the refusal did not consume it (ca-keypolicy.sh).
 */
static int
nonce_get(struct host_state *hs, struct ca_client *ca, uint8_t **nonce,
    size_t *nlen)
{
	json_t *req, *resp = NULL;
	const char *given = getenv("CERTIFY_NONCE");
	char err[512];
	int r;

	if (given != NULL) {
		if ((r = base64_decode(given, 64, nonce, nlen)) != 0)
			fprintf(stderr, "certify-requests: CERTIFY_NONCE: %s\n",
			    botid_strerror(r));
		return r != 0;
	}
	err[0] = '\0';
	req = json_pack("{s:s}", "host_id", hs->host_id);
	r = req == NULL || ca_client_post(ca, "/v1/nonce", req, &resp, err,
	    sizeof(err)) != 0 || ca_json_get_b64(resp, "nonce", 64, nonce,
	    nlen) != 0;
	if (r)
		fprintf(stderr, "certify-requests: nonce: %s\n", err);
	json_decref(req);
	json_decref(resp);
	return r;
}

/* The pkcs11-body mode: the host key vouches for any SPKI. */
static int
pkcs11_body(struct host_state *hs, struct ca_client *ca, struct signer *sg,
    const char *spki_path, const char *bot, const char *path)
{
	uint8_t *spki = NULL, *nonce = NULL, *tbs = NULL, *sig = NULL;
	uint8_t digest[32];
	size_t spki_len = 0, nlen = 0, tbs_len = 0, slen = 0;
	json_t *req = NULL;
	int r = 1;

	if (file_read(spki_path, 16384, &spki, &spki_len) != 0) {
		fprintf(stderr, "certify-requests: cannot read %s\n",
		    spki_path);
		goto out;
	}
	if (nonce_get(hs, ca, &nonce, &nlen) != 0)
		goto out;
	if (certify_pkcs11_tbs(nonce, nlen, bot, spki, spki_len, &tbs,
	    &tbs_len) != 0 || EVP_Digest(tbs, tbs_len, digest, NULL,
	    EVP_sha256(), NULL) != 1 || sign_digest(sg, digest, &sig,
	    &slen) != 0) {
		fprintf(stderr, "certify-requests: cannot sign\n");
		goto out;
	}
	req = json_pack("{s:s, s:s, s:s}", "host_id", hs->host_id, "bot", bot,
	    "attestation", "pkcs11");
	if (req == NULL || ca_json_set_b64(req, "nonce", nonce, nlen) != 0 ||
	    ca_json_set_b64(req, "spki", spki, spki_len) != 0 ||
	    ca_json_set_b64(req, "signature", sig, slen) != 0 ||
	    json_dump_file(req, path, JSON_COMPACT) != 0) {
		fprintf(stderr, "certify-requests: cannot write %s\n", path);
		goto out;
	}
	r = 0;
 out:
	json_decref(req);
	free(spki);
	free(nonce);
	free(tbs);
	free(sig);
	return r;
}

/* The tpm-body mode: a new TPM key of the type named, for the AK. */
static int
tpm_body(struct host_state *hs, struct ca_client *ca, struct signer *sg,
    const char *type, const char *bot, const char *path)
{
	TPM2B_PUBLIC tmpl, kpub;
	TPM2B_PRIVATE kpriv;

	if (strcmp(type, "rsa1024") == 0 || strcmp(type, "rsa2048") == 0) {
		tmpl = tpm_template_hostkey_rsa;
		tmpl.publicArea.parameters.rsaDetail.keyBits =
		    strcmp(type, "rsa1024") == 0 ? 1024 : 2048;
	} else if (strcmp(type, "p224") == 0 || strcmp(type, "p256") == 0) {
		tmpl = tpm_template_hostkey_ecc;
		tmpl.publicArea.parameters.eccDetail.curveID =
		    strcmp(type, "p224") == 0 ? TPM2_ECC_NIST_P224 :
		    TPM2_ECC_NIST_P256;
	} else {
		fprintf(stderr, "certify-requests: unknown key type %s\n",
		    type);
		return 2;
	}
	if (evidence_key_create(sg->esys, sg->srk, &tmpl, &kpub,
	    &kpriv) != 0) {
		fprintf(stderr, "certify-requests: the TPM cannot create a "
		    "%s key\n", type);
		return 6;
	}
	return write_request(hs, ca, sg->esys, sg->srk, &kpub, &kpriv, bot,
	    path);
}

/* The revoke and revoke-body modes; the host's TPM is opened here. */
static int
revoke_main(int argc, char **argv)
{
	struct host_state hs;
	struct ca_client *ca = NULL;
	ESYS_CONTEXT *esys = NULL;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	TPM2B_PUBLIC opub;
	TPM2B_PRIVATE opriv;
	struct signer sg;
	char err[512];
	int body = strcmp(argv[3], "revoke-body") == 0, ecc, r;
	int p11 = strcmp(argv[3], "pkcs11-body") == 0;
	int tpmb = strcmp(argv[3], "tpm-body") == 0;

	if ((p11 || tpmb) && argc != 7) {
		fprintf(stderr, "usage: ca-certify-requests STATE_DIR TCTI "
		    "pkcs11-body SPKI_DER BOT FILE\n       ca-certify-requests "
		    "STATE_DIR TCTI tpm-body TYPE BOT FILE\n");
		return 2;
	}
	if (p11 || tpmb)
		;
	else if ((!body && argc != 6) || (body && (argc != 9 ||
	    (strcmp(argv[7], "host") != 0 && strcmp(argv[7], "other") != 0)))) {
		fprintf(stderr, "usage: ca-certify-requests STATE_DIR TCTI "
		    "revoke SERIAL|host REASON\n       ca-certify-requests "
		    "STATE_DIR TCTI revoke-body SERIAL|host REASON SIGNED "
		    "host|other FILE\n");
		return 2;
	}
	memset(&hs, 0, sizeof(hs));
	memset(&sg, 0, sizeof(sg));
	if (host_state_load(argv[1], &hs, err, sizeof(err)) != 0 ||
	    !hs.enrolled || !hs.have_keys) {
		fprintf(stderr, "certify-requests: not provisioned: %s\n", err);
		return 2;
	}
	if (ca_client_new(hs.ca_url, hs.bundle_path, &ca) != 0 ||
	    Tss2_TctiLdr_Initialize(argv[2], &tcti) != 0 ||
	    Esys_Initialize(&esys, tcti, NULL) != 0 ||
	    evidence_srk_create(esys, &sg.srk, &ecc) != 0) {
		fprintf(stderr, "certify-requests: TPM set-up failed\n");
		return 2;
	}
	sg.esys = esys;
	sg.pub = &hs.hk_pub;
	sg.priv = &hs.hk_priv;
	if (body && strcmp(argv[7], "other") == 0) {
		if (evidence_key_create(esys, sg.srk, &tpm_template_hostkey_ecc,
		    &opub, &opriv) != 0) {
			fprintf(stderr, "certify-requests: TPM set-up failed\n");
			return 2;
		}
		sg.pub = &opub;
		sg.priv = &opriv;
	}
	if (p11)
		r = pkcs11_body(&hs, ca, &sg, argv[4], argv[5], argv[6]);
	else if (tpmb)
		r = tpm_body(&hs, ca, &sg, argv[4], argv[5], argv[6]);
	else if (body)
		r = revoke_body(&hs, ca, &sg, argv[4], argv[5], argv[6],
		    argv[8]);
	else
		r = revoke(&hs, ca, &sg, argv[4], argv[5]);
	Esys_FlushContext(esys, sg.srk);
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
	ca_client_free(ca);
	host_state_free(&hs);
	return r;
}

int
main(int argc, char **argv)
{
	struct host_state hs;
	struct ca_client *ca = NULL;
	ESYS_CONTEXT *esys = NULL;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	TPM2B_PUBLIC kpub;
	TPM2B_PRIVATE kpriv;
	TPM2B_PUBLIC tmpl = tpm_template_hostkey_ecc;
	ESYS_TR srk = ESYS_TR_NONE;
	char err[512], path[4096];
	const char *curve = getenv("CERTIFY_CURVE");
	long count, i;
	int ecc;

	if (argc >= 4 && (strncmp(argv[3], "revoke", 6) == 0 ||
	    strcmp(argv[3], "pkcs11-body") == 0 ||
	    strcmp(argv[3], "tpm-body") == 0))
		return revoke_main(argc, argv);
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: ca-certify-requests STATE_DIR TCTI "
		    "COUNT OUTDIR [BOT]\n");
		return 2;
	}
	count = strtol(argv[3], NULL, 10);
	if (count < 1 || count > MAX_COUNT) {
		fprintf(stderr, "certify-requests: COUNT: 1 to %d\n",
		    MAX_COUNT);
		return 2;
	}
	/* CERTIFY_CURVE=p224: keys the CA must refuse (ca-hostile.sh). */
	if (curve != NULL && strcmp(curve, "p224") == 0)
		tmpl.publicArea.parameters.eccDetail.curveID =
		    TPM2_ECC_NIST_P224;
	memset(&hs, 0, sizeof(hs));
	if (host_state_load(argv[1], &hs, err, sizeof(err)) != 0 ||
	    !hs.enrolled) {
		fprintf(stderr, "certify-requests: not provisioned: %s\n", err);
		return 2;
	}
	if (ca_client_new(hs.ca_url, hs.bundle_path, &ca) != 0 ||
	    Tss2_TctiLdr_Initialize(argv[2], &tcti) != 0 ||
	    Esys_Initialize(&esys, tcti, NULL) != 0 ||
	    evidence_srk_create(esys, &srk, &ecc) != 0 ||
	    evidence_key_create(esys, srk, &tmpl, &kpub, &kpriv) != 0) {
		fprintf(stderr, "certify-requests: TPM set-up failed\n");
		return 2;
	}
	for (i = 0; i < count; i++) {
		snprintf(path, sizeof(path), "%s/certify-%ld.json", argv[4], i);
		if (write_request(&hs, ca, esys, srk, &kpub, &kpriv,
		    argc == 6 ? argv[5] : "load", path) != 0)
			return 1;
	}
	Esys_FlushContext(esys, srk);
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
	ca_client_free(ca);
	host_state_free(&hs);
	return 0;
}
