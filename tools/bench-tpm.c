/*
 * botid-bench's in-process TPM signer: one ESYS context, the agent's
 * storage primary (tpm2-openssl's ECC SRK template, as in
 * agent/backend-tpm.c) created once, a bot's "TSS2 PRIVATE KEY" blob
 * loaded once, then Esys_Sign in a loop. Spec: TCTI,BLOB-FILE (the TCTI
 * may hold commas: the blob is after the last one). swtpm over TCP serves
 * one connection at a time, so this must run while the agent is not
 * connected to that TPM (botid-bench --agent-cmd arranges that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "lib/error.h"
#include "attest/tpm-templates.h"
#include "tools/bench.h"

#define TPM_BLOB_PEM_NAME	"TSS2 PRIVATE KEY"

struct tpm_ctx {
	TSS2_TCTI_CONTEXT	*tcti;
	ESYS_CONTEXT		*esys;
	ESYS_TR			 primary;
	ESYS_TR			 key;
	TPM2B_DIGEST		 digest;
	TPMT_SIG_SCHEME		 scheme;
};

/* The TPMKey structure (see agent/backend-tpm.c); only the keys are used. */
typedef struct {
	ASN1_OBJECT		*type;
	ASN1_BOOLEAN		 empty_auth;
	ASN1_INTEGER		*parent;
	ASN1_OCTET_STRING	*pubkey;
	ASN1_OCTET_STRING	*privkey;
} BENCH_TPM_KEY;

ASN1_SEQUENCE(BENCH_TPM_KEY) = {
	ASN1_SIMPLE(BENCH_TPM_KEY, type, ASN1_OBJECT),
	ASN1_EXP_OPT(BENCH_TPM_KEY, empty_auth, ASN1_BOOLEAN, 0),
	ASN1_SIMPLE(BENCH_TPM_KEY, parent, ASN1_INTEGER),
	ASN1_SIMPLE(BENCH_TPM_KEY, pubkey, ASN1_OCTET_STRING),
	ASN1_SIMPLE(BENCH_TPM_KEY, privkey, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(BENCH_TPM_KEY)


static const TPMT_TK_HASHCHECK tpm_null_ticket = {
	.tag = TPM2_ST_HASHCHECK,
	.hierarchy = TPM2_RH_NULL,
};
static const TPM2B_SENSITIVE_CREATE tpm_empty_sensitive;
static const TPM2B_DATA tpm_empty_outside_info;
static const TPML_PCR_SELECTION tpm_empty_pcrs;

static int
tpm_blob_read(const char *path, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv)
{
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	BENCH_TPM_KEY *blob = NULL;
	FILE *f = NULL;
	long derlen = 0;
	size_t off;
	int r = BOTID_ERR_INVALID;

	if ((f = fopen(path, "re")) == NULL) {
		fprintf(stderr, "botid-bench: cannot open %s\n", path);
		return BOTID_ERR_IO;
	}
	if (PEM_read(f, &name, &header, &der, &derlen) != 1 ||
	    strcmp(name, TPM_BLOB_PEM_NAME) != 0)
		goto out;
	p = der;
	if ((blob = (BENCH_TPM_KEY *)ASN1_item_d2i(NULL, &p, derlen,
	    ASN1_ITEM_rptr(BENCH_TPM_KEY))) == NULL ||
	    p != der + derlen)
		goto out;
	off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob->pubkey->data,
	    (size_t)blob->pubkey->length, &off, pub) != 0 ||
	    off != (size_t)blob->pubkey->length)
		goto out;
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob->privkey->data,
	    (size_t)blob->privkey->length, &off, priv) != 0 ||
	    off != (size_t)blob->privkey->length)
		goto out;
	r = 0;
 out:
	if (r != 0)
		fprintf(stderr, "botid-bench: %s is not a TSS2 PRIVATE KEY\n",
		    path);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	ASN1_item_free((ASN1_VALUE *)blob, ASN1_ITEM_rptr(BENCH_TPM_KEY));
	fclose(f);
	ERR_clear_error();
	return r;
}

static void
tpm_close(void *arg)
{
	struct tpm_ctx *c = arg;

	if (c == NULL)
		return;
	if (c->esys != NULL) {
		if (c->key != ESYS_TR_NONE)
			(void)Esys_FlushContext(c->esys, c->key);
		if (c->primary != ESYS_TR_NONE)
			(void)Esys_FlushContext(c->esys, c->primary);
		Esys_Finalize(&c->esys);
	}
	Tss2_TctiLdr_Finalize(&c->tcti);
	free(c);
}

static int
tpm_open(const char *spec, void **ctxp)
{
	TPM2B_PUBLIC pub = { 0 };
	TPM2B_PRIVATE priv = { 0 };
	struct tpm_ctx *c = NULL;
	char *tcti = NULL, *comma;
	const char *what = NULL;
	TSS2_RC rc;
	int r = BOTID_ERR_INVALID;

	*ctxp = NULL;
	if ((tcti = strdup(spec)) == NULL ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	c->primary = c->key = ESYS_TR_NONE;
	if ((comma = strrchr(tcti, ',')) == NULL || comma[1] == '\0') {
		fprintf(stderr, "botid-bench: tpm wants TCTI,BLOB-FILE\n");
		goto out;
	}
	*comma = '\0';
	if ((r = tpm_blob_read(comma + 1, &pub, &priv)) != 0)
		goto out;
	r = BOTID_ERR_TPM;
	what = "TCTI";
	if ((rc = Tss2_TctiLdr_Initialize(tcti, &c->tcti)) != 0) {
		c->tcti = NULL;
		goto out;
	}
	what = "Esys_Initialize";
	if ((rc = Esys_Initialize(&c->esys, c->tcti, NULL)) != 0) {
		c->esys = NULL;
		goto out;
	}
	rc = Esys_Startup(c->esys, TPM2_SU_CLEAR);
	what = "Esys_CreatePrimary";
	if ((rc = Esys_CreatePrimary(c->esys, ESYS_TR_RH_OWNER,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &tpm_empty_sensitive,
	    &tpm_template_srk_ecc, &tpm_empty_outside_info, &tpm_empty_pcrs,
	    &c->primary, NULL, NULL, NULL, NULL)) != 0) {
		c->primary = ESYS_TR_NONE;
		goto out;
	}
	what = "Esys_Load";
	if ((rc = Esys_Load(c->esys, c->primary, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &c->key)) != 0) {
		c->key = ESYS_TR_NONE;
		goto out;
	}
	c->digest.size = 32;
	memset(c->digest.buffer, 0x5a, 32);
	if (pub.publicArea.type == TPM2_ALG_ECC) {
		c->scheme.scheme = TPM2_ALG_ECDSA;
		c->scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	} else {
		c->scheme.scheme = TPM2_ALG_RSASSA;
		c->scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
	}
	*ctxp = c;
	c = NULL;
	r = 0;
 out:
	if (r == BOTID_ERR_TPM)
		fprintf(stderr, "botid-bench: tpm: %s: 0x%x %s\n", what, rc,
		    Tss2_RC_Decode(rc));
	tpm_close(c);
	free(tcti);
	return r;
}

static int
tpm_sign(void *arg)
{
	struct tpm_ctx *c = arg;
	TPMT_SIGNATURE *sig = NULL;
	TSS2_RC rc;

	rc = Esys_Sign(c->esys, c->key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &c->digest, &c->scheme, &tpm_null_ticket, &sig);
	Esys_Free(sig);
	return rc == 0 ? 0 : BOTID_ERR_TPM;
}

const struct bench_signer bench_signer_tpm = {
	.kind = "tpm",
	.open = tpm_open,
	.sign = tpm_sign,
	.close = tpm_close,
	.serial = 1,
};
