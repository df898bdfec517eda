/*
 * ca-certify-requests STATE_DIR TCTI COUNT OUTDIR [BOT]: plays a
 * provisioned host and writes COUNT valid /v1/certify bodies, each over a
 * fresh nonce from the host's CA and with real TPM evidence for one new
 * key, to OUTDIR/certify-N.json. ca-postgres.sh and ca-bench post them at
 * several replicas at once (curl), to race one nonce or to load the CA.
 * Exit 0 when every body was written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "attest/ca-client.h"
#include "attest/evidence.h"
#include "attest/host-state.h"
#include "attest/tpm-templates.h"
#include "lib/botid.h"

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

int
main(int argc, char **argv)
{
	struct host_state hs;
	struct ca_client *ca = NULL;
	ESYS_CONTEXT *esys = NULL;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	TPM2B_PUBLIC kpub;
	TPM2B_PRIVATE kpriv;
	ESYS_TR srk = ESYS_TR_NONE;
	char err[512], path[4096];
	long count, i;
	int ecc;

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
	    evidence_key_create(esys, srk, &tpm_template_hostkey_ecc, &kpub,
	    &kpriv) != 0) {
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
