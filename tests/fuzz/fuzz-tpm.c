/*
 * libFuzzer harness for the TPM structures botid-ca takes from the network
 * (attest/tpm-verify.c, attest/makecred.c). The first byte picks what the
 * rest is:
 *   0  a TPM2B_PUBLIC (an EK, AK or bot key): parsed, named, turned into an
 *      EVP_PKEY, checked against both profiles, and used as an EK for
 *      MakeCredential;
 *   1  TPM2_Certify evidence under the ECC AK of tests/unit/tpm-vectors.h:
 *      u16 length of what follows that is the marshalled TPM2B_ATTEST,
 *      then a TPMT_SIGNATURE;
 *   2  the same under the RSA (RSASSA) AK;
 *   3  a TPMT_SIGNATURE by the RSA-PSS AK over a fixed message.
 * Anything may be refused; nothing may crash, leak or accept a forgery.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "attest/makecred.h"
#include "attest/tpm-verify.h"
#include "lib/error.h"
#include "tests/unit/tpm-vectors.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* tss2-mu logs every refusal; a fuzzer makes millions of them. */
	setenv("TSS2_LOG", "all+NONE", 1);
	return 0;
}

static void
fuzz_public(const uint8_t *data, size_t size)
{
	static const uint8_t secret[32] = "botid fuzz credential secret..";
	TPM2B_PUBLIC pub;
	EVP_PKEY *pkey = NULL;
	uint8_t name[sizeof(TPMU_NAME)], *blob = NULL, *enc = NULL;
	size_t name_len = 0, blob_len = 0, enc_len = 0;
	const char *why;

	if (tpm_public_parse(data, size, &pub) != 0)
		return;
	if (tpm_public_name(&pub, name, &name_len) == 0)
		FUZZ_CHECK(name_len >= 2 && name_len <= sizeof(name));
	if (tpm_public_to_pkey(&pub, &pkey) == 0)
		FUZZ_CHECK(pkey != NULL);
	why = NULL;
	if (tpm_public_check(&pub, TPM_PROFILE_AK, &why) != 0)
		FUZZ_CHECK(why != NULL);
	why = NULL;
	if (tpm_public_check(&pub, TPM_PROFILE_KEY, &why) != 0)
		FUZZ_CHECK(why != NULL);
	if (name_len > 0 && tpm_make_credential(&pub, name, name_len, secret,
	    sizeof(secret), &blob, &blob_len, &enc, &enc_len) == 0)
		FUZZ_CHECK(blob != NULL && blob_len > 0 && enc != NULL &&
		    enc_len > 0);
	free(blob);
	free(enc);
	EVP_PKEY_free(pkey);
}

static void
fuzz_certify(const uint8_t *akbuf, size_t aklen, const uint8_t *data,
    size_t size)
{
	TPM2B_PUBLIC ak, key;
	const char *why = NULL;
	size_t alen;

	FUZZ_CHECK(tpm_public_parse(akbuf, aklen, &ak) == 0);
	FUZZ_CHECK(tpm_public_parse(key_pub, sizeof(key_pub), &key) == 0);
	if (size < 2)
		return;
	alen = (size_t)data[0] << 8 | data[1];
	if (alen > size - 2)
		return;
	if (tpm_certify_verify(&ak, &key, nonce, sizeof(nonce), data + 2,
	    alen, data + 2 + alen, size - 2 - alen, &why) == 0) {
		/* Only the genuine evidence of the vectors verifies. */
		FUZZ_CHECK((alen == 2 + sizeof(att_ecc) &&
		    memcmp(data + 4, att_ecc, sizeof(att_ecc)) == 0) ||
		    (alen == 2 + sizeof(att_rsa) &&
		    memcmp(data + 4, att_rsa, sizeof(att_rsa)) == 0));
	}
}

static void
fuzz_signature(const uint8_t *data, size_t size)
{
	TPM2B_PUBLIC ak;
	const char *why = NULL;

	FUZZ_CHECK(tpm_public_parse(ak_pss_pub, sizeof(ak_pss_pub), &ak) == 0);
	/* A forgery over this message would be a break of RSA-PSS. */
	FUZZ_CHECK(tpm_signature_verify(&ak, (const uint8_t *)"botid", 5,
	    data, size, &why) != 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_public(data + 1, size - 1);
		break;
	case 1:
		fuzz_certify(ak_ecc_pub, sizeof(ak_ecc_pub), data + 1,
		    size - 1);
		break;
	case 2:
		fuzz_certify(ak_rsa_pub, sizeof(ak_rsa_pub), data + 1,
		    size - 1);
		break;
	case 3:
		fuzz_signature(data + 1, size - 1);
		break;
	}
	return 0;
}
