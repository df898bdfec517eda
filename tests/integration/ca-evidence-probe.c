/*
 * ca-evidence-probe STATE_DIR TCTI: plays a provisioned host that sends
 * botid-ca bad evidence, with real TPM output, and checks each refusal:
 * a good certify is accepted, then a replayed nonce, a tampered
 * attestation, a tampered signature, a wrong nonce, a key without
 * fixedTPM, and evidence for another key are refused with their reason.
 * Needs a host enrolled with a token allowing the bot "probe" (or any).
 * Prints one line per case; exit 0 when every case went as expected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "attest/ca-client.h"
#include "attest/evidence.h"
#include "attest/host-state.h"
#include "attest/tpm-templates.h"
#include "lib/botid.h"

struct probe {
	struct host_state	 hs;
	struct ca_client	*ca;
	ESYS_CONTEXT		*esys;
	ESYS_TR			 srk;
	int			 ecc;
	int			 failures;
};

struct key {
	TPM2B_PUBLIC	pub;
	TPM2B_PRIVATE	priv;
};

static ESYS_TR
load(struct probe *p, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv)
{
	ESYS_TR h = ESYS_TR_NONE;

	if (Esys_Load(p->esys, p->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, priv, pub, &h) != 0) {
		fprintf(stderr, "probe: TPM2_Load failed\n");
		exit(2);
	}
	return h;
}

static int
get_nonce(struct probe *p, uint8_t **nonce, size_t *len)
{
	json_t *req = json_pack("{s:s}", "host_id", p->hs.host_id), *resp;
	char err[512];
	int r;

	r = ca_client_post(p->ca, "/v1/nonce", req, &resp, err, sizeof(err));
	json_decref(req);
	if (r != 0) {
		fprintf(stderr, "probe: nonce: %s\n", err);
		exit(2);
	}
	r = ca_json_get_b64(resp, "nonce", 64, nonce, len);
	json_decref(resp);
	return r;
}

/* Certifies key with the AK over qualifying data q. */
static void
certify(struct probe *p, const struct key *k, const uint8_t *q, size_t qlen,
    uint8_t **attest, size_t *alen, uint8_t **sig, size_t *slen)
{
	ESYS_TR ak = load(p, &p->hs.ak_pub, &p->hs.ak_priv);
	ESYS_TR kh = load(p, &k->pub, &k->priv);

	if (evidence_certify(p->esys, ak, kh, q, qlen, attest, alen, sig,
	    slen) != 0) {
		fprintf(stderr, "probe: certify failed\n");
		exit(2);
	}
	Esys_FlushContext(p->esys, kh);
	Esys_FlushContext(p->esys, ak);
}

/* Sends one certify request; checks the status class and the reason. */
static void
expect(struct probe *p, const char *name, const struct key *k,
    const uint8_t *nonce, size_t nlen, const uint8_t *attest, size_t alen,
    const uint8_t *sig, size_t slen, int want, const char *reason)
{
	uint8_t pub[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;
	json_t *req, *resp = NULL;
	char err[512] = "";
	int r, ok;

	Tss2_MU_TPM2B_PUBLIC_Marshal(&k->pub, pub, sizeof(pub), &off);
	req = json_pack("{s:s, s:s, s:s}", "host_id", p->hs.host_id, "bot",
	    "probe", "attestation", "tpm");
	if (req == NULL || ca_json_set_b64(req, "nonce", nonce, nlen) != 0 ||
	    ca_json_set_b64(req, "public", pub, off) != 0 ||
	    ca_json_set_b64(req, "attest", attest, alen) != 0 ||
	    ca_json_set_b64(req, "signature", sig, slen) != 0)
		exit(2);
	r = ca_client_post(p->ca, "/v1/certify", req, &resp, err, sizeof(err));
	ok = r == want && (reason == NULL || strstr(err, reason) != NULL);
	printf("%s %s: %s\n", ok ? "ok" : "FAIL", name, r == 0 ? "accepted" :
	    err);
	if (!ok)
		p->failures++;
	json_decref(req);
	json_decref(resp);
}

int
main(int argc, char **argv)
{
	struct probe p;
	struct key good, other, loose;
	TPM2B_PUBLIC loose_tmpl;
	uint8_t *n = NULL, *a = NULL, *s = NULL, wrong[32];
	size_t nl, al, sl;
	char err[512];
	TSS2_TCTI_CONTEXT *tcti = NULL;

	if (argc != 3) {
		fprintf(stderr, "usage: ca-evidence-probe STATE_DIR TCTI\n");
		return 2;
	}
	memset(&p, 0, sizeof(p));
	if (host_state_load(argv[1], &p.hs, err, sizeof(err)) != 0 ||
	    !p.hs.enrolled) {
		fprintf(stderr, "probe: not provisioned: %s\n", err);
		return 2;
	}
	if (ca_client_new(p.hs.ca_url, p.hs.bundle_path, &p.ca) != 0 ||
	    Tss2_TctiLdr_Initialize(argv[2], &tcti) != 0 ||
	    Esys_Initialize(&p.esys, tcti, NULL) != 0 ||
	    evidence_srk_create(p.esys, &p.srk, &p.ecc) != 0)
		return 2;
	/* A key that may leave the TPM: fixedTPM and fixedParent clear. */
	loose_tmpl = tpm_template_hostkey_ecc;
	loose_tmpl.publicArea.objectAttributes &= ~(TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_FIXEDPARENT);
	if (evidence_key_create(p.esys, p.srk, &tpm_template_hostkey_ecc,
	    &good.pub, &good.priv) != 0 ||
	    evidence_key_create(p.esys, p.srk, &tpm_template_hostkey_ecc,
	    &other.pub, &other.priv) != 0 ||
	    evidence_key_create(p.esys, p.srk, &loose_tmpl, &loose.pub,
	    &loose.priv) != 0)
		return 2;

	get_nonce(&p, &n, &nl);
	certify(&p, &good, n, nl, &a, &al, &s, &sl);
	expect(&p, "good evidence", &good, n, nl, a, al, s, sl, 0, NULL);
	expect(&p, "replayed nonce", &good, n, nl, a, al, s, sl,
	    BOTID_ERR_DENIED, "nonce already used");
	free(n);
	free(a);
	free(s);

	get_nonce(&p, &n, &nl);
	certify(&p, &good, n, nl, &a, &al, &s, &sl);
	a[al - 10] ^= 0x01;	/* in the firmware version: signed, not parsed */
	expect(&p, "tampered attestation", &good, n, nl, a, al, s, sl,
	    BOTID_ERR_DENIED, "signature does not verify");
	a[al - 10] ^= 0x01;
	free(n);
	get_nonce(&p, &n, &nl);
	free(a);
	free(s);
	certify(&p, &good, n, nl, &a, &al, &s, &sl);
	s[sl - 3] ^= 0x01;
	expect(&p, "tampered signature", &good, n, nl, a, al, s, sl,
	    BOTID_ERR_DENIED, "signature does not verify");
	free(n);
	free(a);
	free(s);

	get_nonce(&p, &n, &nl);
	RAND_bytes(wrong, sizeof(wrong));
	certify(&p, &good, wrong, sizeof(wrong), &a, &al, &s, &sl);
	expect(&p, "evidence over another nonce", &good, n, nl, a, al, s, sl,
	    BOTID_ERR_DENIED, "nonce does not match");
	free(n);
	free(a);
	free(s);

	get_nonce(&p, &n, &nl);
	certify(&p, &loose, n, nl, &a, &al, &s, &sl);
	expect(&p, "key without fixedTPM", &loose, n, nl, a, al, s, sl,
	    BOTID_ERR_DENIED, "not fixedTPM");
	free(n);
	free(a);
	free(s);

	get_nonce(&p, &n, &nl);
	certify(&p, &other, n, nl, &a, &al, &s, &sl);
	expect(&p, "evidence for another key", &good, n, nl, a, al, s, sl,
	    BOTID_ERR_DENIED, "certified name is not the key's");
	free(n);
	free(a);
	free(s);

	Esys_FlushContext(p.esys, p.srk);
	Esys_Finalize(&p.esys);
	Tss2_TctiLdr_Finalize(&tcti);
	ca_client_free(p.ca);
	host_state_free(&p.hs);
	return p.failures == 0 ? 0 : 1;
}
