/*
 * Attestation evidence from the host's TPM (see evidence.h). Why it is
 * built this way:
 *  - The EK is recreated from the TCG template matching the certificate
 *    found in NV, and its key compared with the certificate's: a
 *    certificate left over from another EK, or a template we got wrong,
 *    is caught here and not as a puzzling refusal from the CA.
 *  - NV certificates are read in chunks no larger than any TPM's NV buffer
 *    and parsed by OpenSSL; TPMs pad the index, so trailing bytes after
 *    the DER certificate are ignored, but a certificate larger than the
 *    index is refused.
 *  - Everything returned to the caller is marshalled with tss2-mu, so the
 *    CA receives exactly the bytes the TPM hashed and signed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "attest/evidence.h"
#include "attest/tpm-templates.h"
#include "lib/botid.h"
#include "lib/log.h"

#define NV_CHUNK	512u		/* every TPM's NV buffer is larger */
#define NV_CERT_MAX	4096u		/* EK certificates are ~1 KiB */

static const struct {
	uint32_t		 index;
	const char		*what;
	const TPM2B_PUBLIC	*tmpl;		/* NULL: listed, not used */
} ek_indices[] = {
	{ 0x01c00002, "RSA-2048 (low range)", &tpm_template_ek_rsa },
	{ 0x01c0000a, "ECC P-256 (low range)", &tpm_template_ek_ecc },
	{ 0x01c00012, "RSA-2048 (high range)", NULL },
	{ 0x01c00014, "ECC P-256 (high range)", NULL },
	{ 0x01c00016, "ECC P-384 (high range)", NULL },
	{ 0x01c00018, "ECC P-521 (high range)", NULL },
	{ 0x01c0001c, "RSA-3072 (high range)", NULL },
	{ 0x01c0001e, "RSA-4096 (high range)", NULL },
};

static const TPML_PCR_SELECTION no_pcrs;
static const TPM2B_DATA no_outside_info;
static const TPM2B_SENSITIVE_CREATE no_sensitive;

static int
tpm_failed(TSS2_RC rc, const char *what)
{
	log_err("tpm: %s: 0x%x %s", what, rc, Tss2_RC_Decode(rc));
	return BOTID_ERR_TPM;
}

/*
 * Reads NV index into a malloc'd buffer. Returns BOTID_ERR_NOT_FOUND when
 * the index is not defined.
 */
static int
nv_read_all(ESYS_CONTEXT *esys, uint32_t index, uint8_t **out,
    size_t *out_len)
{
	TPM2B_NV_PUBLIC *nvpub = NULL;
	TPM2B_MAX_NV_BUFFER *chunk = NULL;
	ESYS_TR nv = ESYS_TR_NONE;
	uint8_t *data = NULL;
	uint16_t size, off, n;
	TSS2_RC rc;
	int r = BOTID_ERR_INTERNAL;

	*out = NULL;
	*out_len = 0;
	rc = Esys_TR_FromTPMPublic(esys, index, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &nv);
	if (rc != 0) {
		nv = ESYS_TR_NONE;
		r = BOTID_ERR_NOT_FOUND;	/* TPM2_RC_HANDLE: undefined */
		goto out;
	}
	if ((rc = Esys_NV_ReadPublic(esys, nv, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &nvpub, NULL)) != 0) {
		r = tpm_failed(rc, "reading an NV index's public area");
		goto out;
	}
	size = nvpub->nvPublic.dataSize;
	if (size == 0 || size > NV_CERT_MAX) {
		log_err("tpm: NV index 0x%08x holds %u bytes: not a "
		    "certificate", index, size);
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((data = malloc(size)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	for (off = 0; off < size; off += n) {
		n = (uint16_t)(size - off > (int)NV_CHUNK ? (int)NV_CHUNK : size - off);
		if ((rc = Esys_NV_Read(esys, nv, nv, ESYS_TR_PASSWORD,
		    ESYS_TR_NONE, ESYS_TR_NONE, n, off, &chunk)) != 0) {
			chunk = NULL;
			r = tpm_failed(rc, "reading an EK certificate from NV");
			goto out;
		}
		if (chunk->size != n) {
			log_err("tpm: NV read of %u bytes returned %u", n,
			    chunk->size);
			r = BOTID_ERR_TPM;
			goto out;
		}
		memcpy(data + off, chunk->buffer, n);
		Esys_Free(chunk);
		chunk = NULL;
	}
	*out = data;
	*out_len = size;
	data = NULL;
	r = 0;
 out:
	if (nv != ESYS_TR_NONE)
		Esys_TR_Close(esys, &nv);
	Esys_Free(nvpub);
	Esys_Free(chunk);
	free(data);
	return r;
}

/* Whether the key in cert is the one in pub (RSA modulus or ECC point). */
static int
ek_matches_cert(const TPM2B_PUBLIC *pub, const uint8_t *der, size_t len)
{
	const uint8_t *p = der;
	X509 *x = NULL;
	EVP_PKEY *pk;
	BIGNUM *n = NULL, *tn = NULL;
	uint8_t buf[1 + 2 * 66];
	size_t blen = 0, clen;
	int match = 0;

	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL ||
	    (pk = X509_get0_pubkey(x)) == NULL)
		goto out;
	if (pub->publicArea.type == TPM2_ALG_RSA) {
		const TPM2B_PUBLIC_KEY_RSA *m = &pub->publicArea.unique.rsa;

		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA ||
		    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
		    (tn = BN_bin2bn(m->buffer, m->size, NULL)) == NULL)
			goto out;
		match = BN_cmp(n, tn) == 0;
	} else if (pub->publicArea.type == TPM2_ALG_ECC) {
		const TPMS_ECC_POINT *q = &pub->publicArea.unique.ecc;

		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
		    EVP_PKEY_get_octet_string_param(pk,
		    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof(buf),
		    &blen) != 1 || blen < 1 || buf[0] != 0x04)
			goto out;
		clen = (blen - 1) / 2;
		if (q->x.size == clen && q->y.size == clen &&
		    memcmp(buf + 1, q->x.buffer, clen) == 0 &&
		    memcmp(buf + 1 + clen, q->y.buffer, clen) == 0)
			match = 1;
	}
 out:
	BN_free(n);
	BN_free(tn);
	X509_free(x);
	return match;
}

/* Whether NV index is defined (asking first keeps tpm2-tss's log quiet). */
static int
nv_defined(ESYS_CONTEXT *esys, uint32_t index)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = TPM2_NO;
	int found = 0;

	if (Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	    TPM2_CAP_HANDLES, index, 1, &more, &cap) != 0)
		return 1;	/* cannot tell: try reading it */
	found = cap->data.handles.count > 0 &&
	    cap->data.handles.handle[0] == index;
	Esys_Free(cap);
	return found;
}

int
evidence_ek_open(ESYS_CONTEXT *esys, struct evidence_ek *ek,
    const char **why)
{
	TPM2B_PUBLIC *pub = NULL;
	const TPM2B_PUBLIC *tmpl = NULL;
	const uint8_t *p;
	uint8_t *cert = NULL;
	size_t cert_len = 0, i;
	X509 *x = NULL;
	TSS2_RC rc;
	int r = BOTID_ERR_INTERNAL, found = 0;

	memset(ek, 0, sizeof(*ek));
	ek->handle = ESYS_TR_NONE;
	*why = "no EK certificate in the TPM's NV (indices 0x01c00002, "
	    "0x01c0000a): ask the TPM vendor's tool or swtpm_setup "
	    "--create-ek-cert to store one";
	for (i = 0; i < sizeof(ek_indices) / sizeof(ek_indices[0]); i++) {
		uint8_t *d = NULL;
		size_t dlen = 0;

		if (!nv_defined(esys, ek_indices[i].index))
			continue;
		r = nv_read_all(esys, ek_indices[i].index, &d, &dlen);
		if (r == BOTID_ERR_NOT_FOUND)
			continue;
		if (r != 0) {
			*why = "cannot read the EK certificate from NV";
			goto out;
		}
		found++;
		log_info("tpm: EK certificate %s in NV 0x%08x%s",
		    ek_indices[i].what, ek_indices[i].index,
		    ek_indices[i].tmpl == NULL || tmpl != NULL ?
		    " (not used)" : "");
		if (ek_indices[i].tmpl != NULL && tmpl == NULL) {
			tmpl = ek_indices[i].tmpl;
			ek->nv_index = ek_indices[i].index;
			cert = d;
			cert_len = dlen;
		} else
			free(d);
	}
	if (tmpl == NULL) {
		if (found > 0)
			*why = "the TPM has only EK certificates botid cannot "
			    "use (it needs RSA-2048 or ECC P-256, low range)";
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	/* Keep only the DER certificate: TPMs pad the index. */
	p = cert;
	if ((x = d2i_X509(NULL, &p, (long)cert_len)) == NULL) {
		*why = "the EK certificate in NV is not a DER X.509 "
		    "certificate";
		r = BOTID_ERR_INVALID;
		goto out;
	}
	cert_len = (size_t)(p - cert);
	rc = Esys_CreatePrimary(esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &no_sensitive, tmpl, &no_outside_info,
	    &no_pcrs, &ek->handle, &pub, NULL, NULL, NULL);
	if (rc != 0) {
		ek->handle = ESYS_TR_NONE;
		*why = "cannot create the endorsement key (endorsement "
		    "hierarchy password set, or no free object slot)";
		r = tpm_failed(rc, "TPM2_CreatePrimary (EK)");
		goto out;
	}
	if (!ek_matches_cert(pub, cert, cert_len)) {
		*why = "the EK certificate in NV does not certify this TPM's "
		    "endorsement key";
		r = BOTID_ERR_DENIED;
		goto out;
	}
	ek->pub = *pub;
	ek->cert = cert;
	ek->cert_len = cert_len;
	cert = NULL;
	*why = NULL;
	r = 0;
 out:
	if (r != 0 && ek->handle != ESYS_TR_NONE) {
		(void)Esys_FlushContext(esys, ek->handle);
		ek->handle = ESYS_TR_NONE;
	}
	X509_free(x);
	Esys_Free(pub);
	free(cert);
	return r;
}

void
evidence_ek_close(ESYS_CONTEXT *esys, struct evidence_ek *ek)
{
	if (ek == NULL)
		return;
	if (ek->handle != ESYS_TR_NONE && esys != NULL)
		(void)Esys_FlushContext(esys, ek->handle);
	ek->handle = ESYS_TR_NONE;
	free(ek->cert);
	ek->cert = NULL;
	ek->cert_len = 0;
}

int
evidence_srk_create(ESYS_CONTEXT *esys, ESYS_TR *srk, int *ecc)
{
	TSS2_RC rc;

	*srk = ESYS_TR_NONE;
	if ((rc = tpm_templates_have_ecc(esys, ecc)) != 0)
		return tpm_failed(rc, "reading the TPM's algorithms");
	rc = Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &no_sensitive,
	    *ecc ? &tpm_template_srk_ecc : &tpm_template_srk_rsa,
	    &no_outside_info, &no_pcrs, srk, NULL, NULL, NULL, NULL);
	if (rc != 0) {
		*srk = ESYS_TR_NONE;
		return tpm_failed(rc, "TPM2_CreatePrimary (storage key)");
	}
	return 0;
}

int
evidence_key_create(ESYS_CONTEXT *esys, ESYS_TR parent,
    const TPM2B_PUBLIC *tmpl, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv)
{
	TPM2B_PUBLIC *opub = NULL;
	TPM2B_PRIVATE *opriv = NULL;
	TSS2_RC rc;

	rc = Esys_Create(esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &no_sensitive, tmpl, &no_outside_info, &no_pcrs,
	    &opriv, &opub, NULL, NULL, NULL);
	if (rc != 0)
		return tpm_failed(rc, "TPM2_Create");
	*pub = *opub;
	*priv = *opriv;
	Esys_Free(opub);
	Esys_Free(opriv);
	return 0;
}

int
evidence_activate(ESYS_CONTEXT *esys, ESYS_TR ek, ESYS_TR ak,
    const uint8_t *blob, size_t blob_len, const uint8_t *enc,
    size_t enc_len, uint8_t *secret, size_t *secret_len)
{
	static const TPMT_SYM_DEF sym_null = { .algorithm = TPM2_ALG_NULL };
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	TPM2B_DIGEST *cert_info = NULL;
	ESYS_TR session = ESYS_TR_NONE;
	size_t off;
	TSS2_RC rc;
	int r = BOTID_ERR_INTERNAL;

	*secret_len = 0;
	memset(&id, 0, sizeof(id));
	memset(&es, 0, sizeof(es));
	off = 0;
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &off, &id) != 0 ||
	    off != blob_len) {
		log_err("attest: the CA's credential blob is malformed");
		r = BOTID_ERR_INVALID;
		goto out;
	}
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(enc, enc_len, &off,
	    &es) != 0 || off != enc_len) {
		log_err("attest: the CA's encrypted secret is malformed");
		r = BOTID_ERR_INVALID;
		goto out;
	}
	rc = Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY,
	    &sym_null, TPM2_ALG_SHA256, &session);
	if (rc != 0) {
		session = ESYS_TR_NONE;
		r = tpm_failed(rc, "starting the EK policy session");
		goto out;
	}
	rc = Esys_PolicySecret(esys, ESYS_TR_RH_ENDORSEMENT, session,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0,
	    NULL, NULL);
	if (rc != 0) {
		r = tpm_failed(rc, "PolicySecret(endorsement)");
		goto out;
	}
	/* ESYS starts sessions with continueSession: flushed at out. */
	rc = Esys_ActivateCredential(esys, ak, ek, ESYS_TR_PASSWORD, session,
	    ESYS_TR_NONE, &id, &es, &cert_info);
	if (rc != 0) {
		cert_info = NULL;
		log_err("tpm: TPM2_ActivateCredential refused the CA's "
		    "challenge: 0x%x %s", rc, Tss2_RC_Decode(rc));
		r = BOTID_ERR_DENIED;
		goto out;
	}
	if (cert_info->size > EVIDENCE_SECRET_MAX) {
		r = BOTID_ERR_TPM;
		goto out;
	}
	memcpy(secret, cert_info->buffer, cert_info->size);
	*secret_len = cert_info->size;
	r = 0;
 out:
	if (session != ESYS_TR_NONE)
		(void)Esys_FlushContext(esys, session);
	if (cert_info != NULL) {
		OPENSSL_cleanse(cert_info, sizeof(*cert_info));
		Esys_Free(cert_info);
	}
	return r;
}

/* Marshals a TPMT_SIGNATURE into a malloc'd buffer. */
static int
signature_marshal(const TPMT_SIGNATURE *s, uint8_t **out, size_t *out_len)
{
	uint8_t buf[sizeof(TPMT_SIGNATURE)];
	size_t off = 0;

	if (Tss2_MU_TPMT_SIGNATURE_Marshal(s, buf, sizeof(buf), &off) != 0)
		return BOTID_ERR_INTERNAL;
	if ((*out = malloc(off)) == NULL)
		return BOTID_ERR_ALLOC;
	memcpy(*out, buf, off);
	*out_len = off;
	return 0;
}

int
evidence_certify(ESYS_CONTEXT *esys, ESYS_TR ak, ESYS_TR key,
    const uint8_t *nonce, size_t nonce_len, uint8_t **attest,
    size_t *attest_len, uint8_t **sig, size_t *sig_len)
{
	static const TPMT_SIG_SCHEME ak_scheme = { .scheme = TPM2_ALG_NULL };
	uint8_t buf[sizeof(TPM2B_ATTEST)];
	TPM2B_DATA qualifying;
	TPM2B_ATTEST *info = NULL;
	TPMT_SIGNATURE *signature = NULL;
	uint8_t *a = NULL;
	size_t off = 0;
	TSS2_RC rc;
	int r = BOTID_ERR_INTERNAL;

	*attest = *sig = NULL;
	*attest_len = *sig_len = 0;
	if (nonce_len > sizeof(qualifying.buffer)) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	qualifying.size = (uint16_t)nonce_len;
	memcpy(qualifying.buffer, nonce, nonce_len);
	rc = Esys_Certify(esys, key, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, &qualifying, &ak_scheme, &info, &signature);
	if (rc != 0) {
		info = NULL;
		signature = NULL;
		r = tpm_failed(rc, "TPM2_Certify");
		goto out;
	}
	if (Tss2_MU_TPM2B_ATTEST_Marshal(info, buf, sizeof(buf), &off) != 0)
		goto out;
	if ((a = malloc(off)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	memcpy(a, buf, off);
	if ((r = signature_marshal(signature, sig, sig_len)) != 0)
		goto out;
	*attest = a;
	*attest_len = off;
	a = NULL;
	r = 0;
 out:
	free(a);
	Esys_Free(info);
	Esys_Free(signature);
	return r;
}

/*
 * Reads the PCRs of mask in bank into values (ascending index order, each
 * dsize bytes). TPM2_PCR_Read answers at most eight digests per call, so
 * it is asked again for what it left out.
 */
static int
pcr_read(ESYS_CONTEXT *esys, uint16_t bank, uint32_t mask, size_t dsize,
    uint8_t *values)
{
	TPML_PCR_SELECTION sel;
	TPML_PCR_SELECTION *got = NULL;
	TPML_DIGEST *d = NULL;
	uint32_t left = mask, done;
	UINT32 counter;
	size_t i, j, k, slot;
	TSS2_RC rc;
	int r = BOTID_ERR_TPM;

	while (left != 0) {
		memset(&sel, 0, sizeof(sel));
		sel.count = 1;
		sel.pcrSelections[0].hash = bank;
		sel.pcrSelections[0].sizeofSelect = 3;
		for (i = 0; i < 3; i++)
			sel.pcrSelections[0].pcrSelect[i] =
			    (uint8_t)(left >> (8 * i));
		rc = Esys_PCR_Read(esys, ESYS_TR_NONE, ESYS_TR_NONE,
		    ESYS_TR_NONE, &sel, &counter, &got, &d);
		if (rc != 0) {
			got = NULL;
			d = NULL;
			r = tpm_failed(rc, "TPM2_PCR_Read");
			goto out;
		}
		done = 0;
		if (got->count == 1)
			for (i = 0; i < 3 && i < got->pcrSelections[0].
			    sizeofSelect; i++)
				done |= (uint32_t)got->pcrSelections[0].
				    pcrSelect[i] << (8 * i);
		done &= left;
		if (done == 0)
			goto out;
		/* Digests come in ascending index order of what was read. */
		for (i = 0, k = 0; i < 24; i++) {
			if (!(done & (1u << i)))
				continue;
			if (k >= d->count || d->digests[k].size != dsize)
				goto out;
			/* Its place among all of mask's PCRs. */
			for (slot = 0, j = 0; j < i; j++)
				if (mask & (1u << j))
					slot++;
			memcpy(values + slot * dsize, d->digests[k].buffer,
			    dsize);
			k++;
		}
		left &= ~done;
		Esys_Free(got);
		Esys_Free(d);
		got = NULL;
		d = NULL;
	}
	r = 0;
 out:
	Esys_Free(got);
	Esys_Free(d);
	return r;
}

int
evidence_quote(ESYS_CONTEXT *esys, ESYS_TR ak, uint16_t bank, uint32_t mask,
    const uint8_t *nonce, size_t nonce_len, uint8_t **attest,
    size_t *attest_len, uint8_t **sig, size_t *sig_len, uint8_t **values,
    size_t *values_len)
{
	static const TPMT_SIG_SCHEME ak_scheme = { .scheme = TPM2_ALG_NULL };
	uint8_t buf[sizeof(TPM2B_ATTEST)];
	TPM2B_DATA qualifying;
	TPML_PCR_SELECTION sel;
	TPM2B_ATTEST *info = NULL;
	TPMT_SIGNATURE *signature = NULL;
	uint8_t *a = NULL, *v = NULL;
	size_t off = 0, dsize, n = 0, i;
	TSS2_RC rc;
	int r = BOTID_ERR_INTERNAL;

	*attest = *sig = *values = NULL;
	*attest_len = *sig_len = *values_len = 0;
	dsize = bank == TPM2_ALG_SHA256 ? 32 : bank == TPM2_ALG_SHA384 ? 48 :
	    bank == TPM2_ALG_SHA512 ? 64 : bank == TPM2_ALG_SHA1 ? 20 : 0;
	if (nonce_len > sizeof(qualifying.buffer) || dsize == 0 || mask == 0 ||
	    mask >= (1u << 24)) {
		r = BOTID_ERR_INVALID;
		goto out;
	}
	for (i = 0; i < 24; i++)
		if (mask & (1u << i))
			n++;
	if ((v = calloc(n, dsize)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	qualifying.size = (uint16_t)nonce_len;
	memcpy(qualifying.buffer, nonce, nonce_len);
	memset(&sel, 0, sizeof(sel));
	sel.count = 1;
	sel.pcrSelections[0].hash = bank;
	sel.pcrSelections[0].sizeofSelect = 3;
	for (i = 0; i < 3; i++)
		sel.pcrSelections[0].pcrSelect[i] = (uint8_t)(mask >> (8 * i));
	rc = Esys_Quote(esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	    &qualifying, &ak_scheme, &sel, &info, &signature);
	if (rc != 0) {
		info = NULL;
		signature = NULL;
		r = tpm_failed(rc, "TPM2_Quote");
		goto out;
	}
	/*
	 * Read after the quote: a PCR extended in between makes the CA
	 * refuse this one (values do not match the digest), and the next
	 * attempt quotes again.
	 */
	if ((r = pcr_read(esys, bank, mask, dsize, v)) != 0)
		goto out;
	r = BOTID_ERR_INTERNAL;
	if (Tss2_MU_TPM2B_ATTEST_Marshal(info, buf, sizeof(buf), &off) != 0)
		goto out;
	if ((a = malloc(off)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	memcpy(a, buf, off);
	if ((r = signature_marshal(signature, sig, sig_len)) != 0)
		goto out;
	*attest = a;
	*attest_len = off;
	*values = v;
	*values_len = n * dsize;
	a = NULL;
	v = NULL;
	r = 0;
 out:
	free(a);
	free(v);
	Esys_Free(info);
	Esys_Free(signature);
	return r;
}

int
evidence_sign(ESYS_CONTEXT *esys, ESYS_TR key, int ecc,
    const uint8_t digest[32], uint8_t **sig, size_t *sig_len)
{
	static const TPMT_TK_HASHCHECK null_ticket = {
		.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL,
	};
	TPMT_SIG_SCHEME scheme;
	TPM2B_DIGEST d;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC rc;
	int r;

	*sig = NULL;
	*sig_len = 0;
	memset(&scheme, 0, sizeof(scheme));
	scheme.scheme = ecc ? TPM2_ALG_ECDSA : TPM2_ALG_RSASSA;
	scheme.details.any.hashAlg = TPM2_ALG_SHA256;
	d.size = 32;
	memcpy(d.buffer, digest, 32);
	rc = Esys_Sign(esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	    &d, &scheme, &null_ticket, &s);
	if (rc != 0)
		return tpm_failed(rc, "TPM2_Sign (host key)");
	r = signature_marshal(s, sig, sig_len);
	Esys_Free(s);
	return r;
}
