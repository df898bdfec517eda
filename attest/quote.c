/*
 * TPM2_Quote evidence checked in software (quote.h). The attestation comes
 * from the network: it is read with lib/buf.c's bounded getters only,
 * must use exactly the bytes given, and nothing in it is believed before
 * the AK's signature over those bytes verifies.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attest/quote.h"
#include "attest/tpm-verify.h"
#include "lib/botid.h"
#include "lib/buf.h"
#include "lib/limits.h"

size_t
quote_bank_size(uint16_t bank)
{
	switch (bank) {
	case TPM2_ALG_SHA1:	return 20;
	case TPM2_ALG_SHA256:	return 32;
	case TPM2_ALG_SHA384:	return 48;
	case TPM2_ALG_SHA512:	return 64;
	}
	return 0;
}

static const EVP_MD *
bank_md(uint16_t bank)
{
	switch (bank) {
	case TPM2_ALG_SHA1:	return EVP_sha1();
	case TPM2_ALG_SHA256:	return EVP_sha256();
	case TPM2_ALG_SHA384:	return EVP_sha384();
	case TPM2_ALG_SHA512:	return EVP_sha512();
	}
	return NULL;
}

/* A TPM2B: u16 size, then that many bytes (at most max). */
static int
get_tpm2b(struct botid_buf *b, const uint8_t **p, size_t *n, size_t max)
{
	uint16_t len;
	int r;

	if ((r = buf_get_u16(b, &len)) != 0)
		return r;
	if (len > max)
		return BOTID_ERR_TOO_LARGE;
	*n = len;
	return buf_get_direct(b, p, len);
}

int
quote_parse(const uint8_t *data, size_t len, struct quote_info *q)
{
	struct botid_buf b;
	const uint8_t *p;
	uint64_t u64;
	uint32_t count, u32;
	uint16_t bank;
	uint8_t sizeofselect, u8, sel[3];
	size_t n, i;

	memset(q, 0, sizeof(*q));
	buf_init_view(&b, data, len);
	if (buf_get_u32(&b, &q->magic) != 0 ||
	    buf_get_u16(&b, &q->type) != 0)
		return BOTID_ERR_PROTOCOL;
	if (q->type != TPM2_ST_ATTEST_QUOTE)
		return BOTID_ERR_UNSUPPORTED;
	/* qualifiedSigner (a TPM2B_NAME), then extraData (TPM2B_DATA) */
	if (get_tpm2b(&b, &p, &n, sizeof(TPMU_NAME)) != 0 ||
	    get_tpm2b(&b, &p, &n, sizeof(q->extra)) != 0)
		return BOTID_ERR_PROTOCOL;
	memcpy(q->extra, p, n);
	q->extra_len = n;
	/* clockInfo (clock, resetCount, restartCount, safe), firmware */
	if (buf_get_u64(&b, &u64) != 0 || buf_get_u32(&b, &u32) != 0 ||
	    buf_get_u32(&b, &u32) != 0 || buf_get_u8(&b, &u8) != 0 ||
	    buf_get_u64(&b, &u64) != 0)
		return BOTID_ERR_PROTOCOL;
	/*
	 * TPML_PCR_SELECTION: botid asks for one bank, so a quote naming
	 * several (or none) is not an answer to what was asked.
	 */
	if (buf_get_u32(&b, &count) != 0 || count != 1 ||
	    buf_get_u16(&b, &bank) != 0 ||
	    buf_get_u8(&b, &sizeofselect) != 0 ||
	    sizeofselect > sizeof(sel) ||
	    buf_get(&b, sel, sizeofselect) != 0)
		return BOTID_ERR_PROTOCOL;
	q->sel.bank = bank;
	for (i = 0; i < sizeofselect; i++)
		q->sel.mask |= (uint32_t)sel[i] << (8 * i);
	if (get_tpm2b(&b, &p, &n, sizeof(q->digest)) != 0)
		return BOTID_ERR_PROTOCOL;
	memcpy(q->digest, p, n);
	q->digest_len = n;
	if (buf_len(&b) != 0)
		return BOTID_ERR_PROTOCOL;
	return 0;
}

static unsigned int
mask_count(uint32_t mask)
{
	unsigned int n = 0;

	for (; mask != 0; mask &= mask - 1)
		n++;
	return n;
}

int
quote_verify(const TPM2B_PUBLIC *ak, const uint8_t *nonce, size_t nonce_len,
    const struct quote_selection *want, const uint8_t *attest,
    size_t attest_len, const uint8_t *sig, size_t sig_len,
    const uint8_t *const *values, size_t nvalues, const char **why)
{
	struct botid_buf b;
	struct quote_info q;
	const uint8_t *info;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	const EVP_MD *md;
	EVP_MD_CTX *ctx = NULL;
	size_t info_len = 0, dsize, i;
	int r = BOTID_ERR_PROTOCOL;

	*why = NULL;
	buf_init_view(&b, attest, attest_len);
	if (get_tpm2b(&b, &info, &info_len, sizeof(TPMS_ATTEST)) != 0 ||
	    buf_len(&b) != 0) {
		*why = "malformed TPM2B_ATTEST";
		goto out;
	}
	if ((r = quote_parse(info, info_len, &q)) != 0) {
		*why = r == BOTID_ERR_UNSUPPORTED ? "attestation is not a quote" :
		    "malformed quote";
		r = r == BOTID_ERR_UNSUPPORTED ? BOTID_ERR_DENIED : r;
		goto out;
	}
	/* The signature first: nothing unsigned is worth reporting on. */
	if ((r = tpm_signature_verify(ak, info, info_len, sig, sig_len,
	    why)) != 0)
		goto out;
	r = BOTID_ERR_DENIED;
	if (q.magic != TPM2_GENERATED_VALUE) {
		*why = "attestation is not TPM-generated (bad magic)";
		goto out;
	}
	if (q.extra_len != nonce_len ||
	    CRYPTO_memcmp(q.extra, nonce, nonce_len) != 0) {
		*why = "nonce does not match";
		goto out;
	}
	if (q.sel.bank != want->bank || q.sel.mask != want->mask) {
		*why = "the quote's PCR selection is not the one asked for";
		goto out;
	}
	if ((md = bank_md(want->bank)) == NULL) {
		*why = "unsupported PCR bank";
		r = BOTID_ERR_UNSUPPORTED;
		goto out;
	}
	dsize = quote_bank_size(want->bank);
	if (nvalues != mask_count(want->mask)) {
		*why = "PCR values do not match the selection";
		goto out;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, md, NULL) != 1) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	for (i = 0; i < nvalues; i++)
		if (EVP_DigestUpdate(ctx, values[i], dsize) != 1) {
			r = BOTID_ERR_CRYPTO;
			goto out;
		}
	if (EVP_DigestFinal_ex(ctx, digest, &dlen) != 1) {
		r = BOTID_ERR_CRYPTO;
		goto out;
	}
	if (q.digest_len != dlen || CRYPTO_memcmp(q.digest, digest, dlen) != 0) {
		*why = "PCR values do not match the quote's digest";
		goto out;
	}
	r = 0;
 out:
	EVP_MD_CTX_free(ctx);
	return r;
}
