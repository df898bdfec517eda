/*
 * libFuzzer harness for TPM2_Quote evidence as botid-ca takes it from the
 * network (attest/quote.c). The input is a u16 length, that many bytes of
 * TPM2B_ATTEST, then a TPMT_SIGNATURE, checked under the AK of
 * tests/unit/quote-vectors.h with its nonce, selection and PCR values;
 * the same bytes also go through quote_parse() alone. Anything may be
 * refused; nothing may crash, leak or accept another quote than the
 * genuine one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"
#include "attest/tpm-verify.h"
#include "tests/fuzz/fuzz.h"
#include "tests/unit/quote-vectors.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("TSS2_LOG", "all+NONE", 1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct quote_selection want = {
		TPM2_ALG_SHA256, 1u << 16 | 1u << 23,
	};
	const uint8_t *v[2] = { quote_pcrs, quote_pcrs + 32 };
	struct quote_info q;
	TPM2B_PUBLIC ak;
	uint8_t nonce[32];
	const char *why = NULL;
	size_t alen, i;

	(void)quote_parse(data, size, &q);
	FUZZ_CHECK(tpm_public_parse(quote_ak_pub, sizeof(quote_ak_pub),
	    &ak) == 0);
	if (size < 2)
		return 0;
	alen = (size_t)data[0] << 8 | data[1];
	if (alen > size - 2)
		return 0;
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(i / 10 * 16 + i % 10);
	if (quote_verify(&ak, nonce, sizeof(nonce), &want, data + 2, alen,
	    data + 2 + alen, size - 2 - alen, v, 2, &why) == 0) {
		/* Only the genuine quote of the vectors verifies. */
		FUZZ_CHECK(alen == 2 + sizeof(quote_msg) &&
		    memcmp(data + 4, quote_msg, sizeof(quote_msg)) == 0);
	} else
		FUZZ_CHECK(why != NULL);
	return 0;
}
