/*
 * pcr-quote-probe STATE_DIR TCTI MODE BOT FILE [OTHER_TCTI]: plays a
 * provisioned host under a boot-state policy and writes one /v1/certify
 * body to FILE: a fresh nonce from the host's CA, a new key certified by
 * the host's AK over it, and a PCR quote made as MODE says, for
 * ca-pcr-attack.sh to post with curl:
 *   good       the quote the CA asked for (PCRs from the nonce answer;
 *              none when it asked for none: a host under pcr_policy none);
 *   nonce      quoted over another nonce (a second one from the CA);
 *   other-ak   quoted by a new AK in the TPM at OTHER_TCTI (another TPM,
 *              whose AK the CA never enrolled);
 *   selection  quoted over PCRs 16 and 22, not the selection asked for
 *              (as many values, so only the selection differs);
 *   values     the right quote, with one PCR value changed in the body;
 *   none       no quote at all.
 * Exit 0 when the body was written, 2 on a set-up failure.
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

static void
die(const char *what)
{
	fprintf(stderr, "pcr-quote-probe: %s\n", what);
	exit(2);
}

static ESYS_TR
load(ESYS_CONTEXT *esys, ESYS_TR srk, const TPM2B_PUBLIC *pub,
    const TPM2B_PRIVATE *priv)
{
	ESYS_TR h = ESYS_TR_NONE;

	if (Esys_Load(esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, priv, pub, &h) != 0)
		die("TPM2_Load failed");
	return h;
}

static ESYS_CONTEXT *
tpm_open(const char *tcti_conf, ESYS_TR *srk)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	int ecc;

	if (Tss2_TctiLdr_Initialize(tcti_conf, &tcti) != 0 ||
	    Esys_Initialize(&esys, tcti, NULL) != 0 ||
	    evidence_srk_create(esys, srk, &ecc) != 0)
		die("TPM set-up failed");
	return esys;
}

static uint8_t *
nonce_get(struct host_state *hs, struct ca_client *ca, size_t *len,
    uint32_t *mask)
{
	json_t *req, *resp = NULL, *sel, *v;
	uint8_t *nonce = NULL;
	char err[512];
	size_t i;

	*mask = 0;
	req = json_pack("{s:s}", "host_id", hs->host_id);
	if (req == NULL || ca_client_post(ca, "/v1/nonce", req, &resp, err,
	    sizeof(err)) != 0 || ca_json_get_b64(resp, "nonce", 64, &nonce,
	    len) != 0)
		die("no nonce from the CA");
	if ((sel = json_object_get(resp, "pcr_select")) != NULL)
		json_array_foreach(sel, i, v)
			*mask |= 1u << json_integer_value(v);
	json_decref(req);
	json_decref(resp);
	return nonce;
}

int
main(int argc, char **argv)
{
	struct host_state hs;
	struct ca_client *ca = NULL;
	ESYS_CONTEXT *esys, *oesys;
	ESYS_TR srk, osrk = ESYS_TR_NONE, ak, qak, kh;
	TPM2B_PUBLIC kpub, opub;
	TPM2B_PRIVATE kpriv, opriv;
	uint8_t pub[sizeof(TPM2B_PUBLIC)], *nonce, *other, *attest = NULL;
	uint8_t *sig = NULL, *qatt = NULL, *qsig = NULL, *qval = NULL;
	size_t off = 0, nlen = 0, olen = 0, alen = 0, slen = 0, qalen = 0;
	size_t qslen = 0, qvlen = 0;
	uint32_t mask, omask;
	const char *mode;
	json_t *req;
	char err[512];

	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: pcr-quote-probe STATE_DIR TCTI MODE "
		    "BOT FILE [OTHER_TCTI]\n");
		return 2;
	}
	mode = argv[3];
	memset(&hs, 0, sizeof(hs));
	if (host_state_load(argv[1], &hs, err, sizeof(err)) != 0 ||
	    !hs.enrolled)
		die("not provisioned");
	if (ca_client_new(hs.ca_url, hs.bundle_path, &ca) != 0)
		die("no CA client");
	esys = tpm_open(argv[2], &srk);
	if (evidence_key_create(esys, srk, &tpm_template_hostkey_ecc, &kpub,
	    &kpriv) != 0)
		die("cannot create a key");
	nonce = nonce_get(&hs, ca, &nlen, &mask);
	if (mask == 0 && strcmp(mode, "good") != 0)
		die("the CA asked for no PCRs");
	ak = load(esys, srk, &hs.ak_pub, &hs.ak_priv);
	kh = load(esys, srk, &kpub, &kpriv);
	if (evidence_certify(esys, ak, kh, nonce, nlen, &attest, &alen, &sig,
	    &slen) != 0)
		die("TPM2_Certify failed");
	Esys_FlushContext(esys, kh);
	qak = ak;
	oesys = esys;
	other = nonce;
	olen = nlen;
	if (strcmp(mode, "nonce") == 0)
		other = nonce_get(&hs, ca, &olen, &omask);
	else if (strcmp(mode, "selection") == 0)
		mask = 1u << 16 | 1u << 22;
	else if (strcmp(mode, "other-ak") == 0) {
		if (argc != 7)
			die("other-ak needs OTHER_TCTI");
		oesys = tpm_open(argv[6], &osrk);
		if (evidence_key_create(oesys, osrk, &tpm_template_ak_ecc,
		    &opub, &opriv) != 0)
			die("cannot create the other AK");
		qak = load(oesys, osrk, &opub, &opriv);
	}
	if (strcmp(mode, "none") != 0 && mask != 0 && evidence_quote(oesys,
	    qak, TPM2_ALG_SHA256, mask, other, olen, &qatt, &qalen, &qsig,
	    &qslen, &qval, &qvlen) != 0)
		die("TPM2_Quote failed");
	/* swtpm has no resource manager: what stays loaded fills it up. */
	if (oesys != esys) {
		Esys_FlushContext(oesys, qak);
		Esys_FlushContext(oesys, osrk);
	}
	Esys_FlushContext(esys, ak);
	Esys_FlushContext(esys, srk);
	if (strcmp(mode, "values") == 0)
		qval[qvlen - 1] ^= 1;
	Tss2_MU_TPM2B_PUBLIC_Marshal(&kpub, pub, sizeof(pub), &off);
	req = json_pack("{s:s, s:s, s:s}", "host_id", hs.host_id, "bot",
	    argv[4], "attestation", "tpm");
	if (req == NULL || ca_json_set_b64(req, "nonce", nonce, nlen) != 0 ||
	    ca_json_set_b64(req, "public", pub, off) != 0 ||
	    ca_json_set_b64(req, "attest", attest, alen) != 0 ||
	    ca_json_set_b64(req, "signature", sig, slen) != 0 ||
	    (qatt != NULL && (ca_json_set_b64(req, "pcr_quote", qatt,
	    qalen) != 0 || ca_json_set_b64(req, "pcr_signature", qsig,
	    qslen) != 0 || ca_json_set_b64(req, "pcr_values", qval,
	    qvlen) != 0)) || json_dump_file(req, argv[5], JSON_COMPACT) != 0)
		die("cannot write the body");
	json_decref(req);
	return 0;
}
