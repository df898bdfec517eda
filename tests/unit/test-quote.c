/*
 * Unit tests for attest/quote.c on a real swtpm quote (quote-vectors.h):
 * it verifies as made; truncation at every offset, a flipped bit anywhere
 * in the attestation or the signature, another nonce, another selection,
 * another PCR value or count are each refused; the parser rejects what
 * is not one quote over one bank.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "attest/quote.h"
#include "attest/tpm-verify.h"
#include "lib/botid.h"
#include "tests/unit/quote-vectors.h"

static const struct quote_selection want = {
	TPM2_ALG_SHA256, 1u << 16 | 1u << 23,
};

static uint8_t nonce[32];
static TPM2B_PUBLIC ak;

/* The TPM2B_ATTEST the agent sends: u16 size, then the TPMS_ATTEST. */
static size_t
attest_make(uint8_t *out)
{
	out[0] = (uint8_t)(sizeof(quote_msg) >> 8);
	out[1] = (uint8_t)sizeof(quote_msg);
	memcpy(out + 2, quote_msg, sizeof(quote_msg));
	return sizeof(quote_msg) + 2;
}

static int
verify(const uint8_t *att, size_t att_len, const uint8_t *sig,
    size_t sig_len, const uint8_t *pcrs, size_t n, const uint8_t *nc,
    const struct quote_selection *sel, const char **why)
{
	const uint8_t *v[2] = { pcrs, pcrs + 32 };

	return quote_verify(&ak, nc, sizeof(nonce), sel, att, att_len, sig,
	    sig_len, v, n, why);
}

static int
setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(i / 10 * 16 + i % 10);
	return tpm_public_parse(quote_ak_pub, sizeof(quote_ak_pub), &ak);
}

static void
test_vector_verifies(void **state)
{
	uint8_t att[sizeof(quote_msg) + 2];
	size_t len = attest_make(att);
	const char *why = "unset";

	(void)state;
	assert_int_equal(verify(att, len, quote_sig, sizeof(quote_sig),
	    quote_pcrs, 2, nonce, &want, &why), 0);
}

static void
test_parse_fields(void **state)
{
	struct quote_info q;

	(void)state;
	assert_int_equal(quote_parse(quote_msg, sizeof(quote_msg), &q), 0);
	assert_int_equal(q.magic, TPM2_GENERATED_VALUE);
	assert_int_equal(q.type, TPM2_ST_ATTEST_QUOTE);
	assert_int_equal(q.extra_len, sizeof(nonce));
	assert_memory_equal(q.extra, nonce, sizeof(nonce));
	assert_int_equal(q.sel.bank, TPM2_ALG_SHA256);
	assert_int_equal(q.sel.mask, want.mask);
	assert_int_equal(q.digest_len, 32);
	assert_int_equal(quote_bank_size(TPM2_ALG_SHA256), 32);
	assert_int_equal(quote_bank_size(TPM2_ALG_NULL), 0);
}

static void
test_parse_truncated_and_trailing(void **state)
{
	uint8_t buf[sizeof(quote_msg) + 1];
	struct quote_info q;
	size_t n;

	(void)state;
	for (n = 0; n < sizeof(quote_msg); n++)
		assert_int_not_equal(quote_parse(quote_msg, n, &q), 0);
	memcpy(buf, quote_msg, sizeof(quote_msg));
	buf[sizeof(quote_msg)] = 0;
	assert_int_equal(quote_parse(buf, sizeof(buf), &q),
	    BOTID_ERR_PROTOCOL);
}

static void
test_parse_refuses_shapes(void **state)
{
	uint8_t buf[sizeof(quote_msg)];
	struct quote_info q;
	size_t sel;

	(void)state;
	/* A certify's type. */
	memcpy(buf, quote_msg, sizeof(buf));
	buf[4] = (uint8_t)(TPM2_ST_ATTEST_CERTIFY >> 8);
	buf[5] = (uint8_t)TPM2_ST_ATTEST_CERTIFY;
	assert_int_equal(quote_parse(buf, sizeof(buf), &q),
	    BOTID_ERR_UNSUPPORTED);
	/*
	 * The selection's count follows magic, type, two TPM2Bs, clockInfo
	 * (17) and firmwareVersion (8): two banks, or none, are refused.
	 */
	sel = 6;
	sel += 2 + ((size_t)quote_msg[sel] << 8 | quote_msg[sel + 1]);
	sel += 2 + ((size_t)quote_msg[sel] << 8 | quote_msg[sel + 1]);
	sel += 17 + 8;
	assert_int_equal(quote_msg[sel + 3], 1);
	memcpy(buf, quote_msg, sizeof(buf));
	buf[sel + 3] = 2;
	assert_int_equal(quote_parse(buf, sizeof(buf), &q),
	    BOTID_ERR_PROTOCOL);
	buf[sel + 3] = 0;
	assert_int_equal(quote_parse(buf, sizeof(buf), &q),
	    BOTID_ERR_PROTOCOL);
	/* A select of 4 bytes (PCRs above 23). */
	memcpy(buf, quote_msg, sizeof(buf));
	assert_int_equal(buf[sel + 6], 3);
	buf[sel + 6] = 4;
	assert_int_not_equal(quote_parse(buf, sizeof(buf), &q), 0);
}

static void
test_verify_truncated(void **state)
{
	uint8_t att[sizeof(quote_msg) + 2];
	size_t len = attest_make(att), n;
	const char *why;

	(void)state;
	for (n = 0; n < len; n++)
		assert_int_not_equal(verify(att, n, quote_sig,
		    sizeof(quote_sig), quote_pcrs, 2, nonce, &want, &why), 0);
	for (n = 0; n < sizeof(quote_sig); n++)
		assert_int_not_equal(verify(att, len, quote_sig, n, quote_pcrs,
		    2, nonce, &want, &why), 0);
}

static void
test_verify_flips(void **state)
{
	uint8_t att[sizeof(quote_msg) + 2], sig[sizeof(quote_sig)];
	size_t len = attest_make(att), i;
	const char *why;
	int bit;

	(void)state;
	for (i = 0; i < len; i++)
		for (bit = 0; bit < 8; bit++) {
			att[i] ^= (uint8_t)(1u << bit);
			assert_int_not_equal(verify(att, len, quote_sig,
			    sizeof(quote_sig), quote_pcrs, 2, nonce, &want,
			    &why), 0);
			att[i] ^= (uint8_t)(1u << bit);
		}
	memcpy(sig, quote_sig, sizeof(sig));
	for (i = 0; i < sizeof(sig); i++)
		for (bit = 0; bit < 8; bit++) {
			sig[i] ^= (uint8_t)(1u << bit);
			assert_int_not_equal(verify(att, len, sig, sizeof(sig),
			    quote_pcrs, 2, nonce, &want, &why), 0);
			sig[i] ^= (uint8_t)(1u << bit);
		}
}

static void
test_verify_refusals(void **state)
{
	uint8_t att[sizeof(quote_msg) + 2], pcrs[sizeof(quote_pcrs)];
	uint8_t other[sizeof(nonce)];
	size_t len = attest_make(att), i;
	struct quote_selection sel = want;
	const char *why;

	(void)state;
	memcpy(other, nonce, sizeof(other));
	other[31] ^= 1;
	assert_int_equal(verify(att, len, quote_sig, sizeof(quote_sig),
	    quote_pcrs, 2, other, &want, &why), BOTID_ERR_DENIED);
	assert_string_equal(why, "nonce does not match");
	sel.mask = 1u << 16 | 1u << 22;
	assert_int_equal(verify(att, len, quote_sig, sizeof(quote_sig),
	    quote_pcrs, 2, nonce, &sel, &why), BOTID_ERR_DENIED);
	assert_string_equal(why,
	    "the quote's PCR selection is not the one asked for");
	sel = want;
	sel.bank = TPM2_ALG_SHA384;
	assert_int_equal(verify(att, len, quote_sig, sizeof(quote_sig),
	    quote_pcrs, 2, nonce, &sel, &why), BOTID_ERR_DENIED);
	for (i = 0; i < sizeof(pcrs); i++) {
		memcpy(pcrs, quote_pcrs, sizeof(pcrs));
		pcrs[i] ^= 0x80;
		assert_int_equal(verify(att, len, quote_sig,
		    sizeof(quote_sig), pcrs, 2, nonce, &want, &why),
		    BOTID_ERR_DENIED);
		assert_string_equal(why,
		    "PCR values do not match the quote's digest");
	}
	/* The values in the other order, or one of them only. */
	memcpy(pcrs, quote_pcrs + 32, 32);
	memcpy(pcrs + 32, quote_pcrs, 32);
	assert_int_equal(verify(att, len, quote_sig, sizeof(quote_sig), pcrs,
	    2, nonce, &want, &why), BOTID_ERR_DENIED);
	assert_int_equal(verify(att, len, quote_sig, sizeof(quote_sig),
	    quote_pcrs, 1, nonce, &want, &why), BOTID_ERR_DENIED);
	assert_string_equal(why, "PCR values do not match the selection");
}

static void
test_verify_other_ak(void **state)
{
	uint8_t att[sizeof(quote_msg) + 2], pub[sizeof(quote_ak_pub)];
	size_t len = attest_make(att);
	TPM2B_PUBLIC saved = ak;
	const char *why;

	(void)state;
	/* The same AK with another point: a key the quote is not from. */
	memcpy(pub, quote_ak_pub, sizeof(pub));
	pub[sizeof(pub) - 1] ^= 1;
	assert_int_equal(tpm_public_parse(pub, sizeof(pub), &ak), 0);
	assert_int_not_equal(verify(att, len, quote_sig, sizeof(quote_sig),
	    quote_pcrs, 2, nonce, &want, &why), 0);
	ak = saved;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_verifies),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_truncated_and_trailing),
		cmocka_unit_test(test_parse_refuses_shapes),
		cmocka_unit_test(test_verify_truncated),
		cmocka_unit_test(test_verify_flips),
		cmocka_unit_test(test_verify_refusals),
		cmocka_unit_test(test_verify_other_ak),
	};

	setenv("TSS2_LOG", "all+NONE", 1);
	return cmocka_run_group_tests(tests, setup, NULL);
}
