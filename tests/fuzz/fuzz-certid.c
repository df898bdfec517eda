/*
 * libFuzzer harness for lib/certid.c: the input is a DER certificate as a
 * verifier gets it in x5c or a wire reply, and also, on its own, the value
 * of an attestation extension. What certid accepts must be what it
 * promises: a kind of a-z, 0-9 and '-' that encodes back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/certid.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "tests/fuzz/fuzz.h"

static void
check_kind(const char *k)
{
	size_t i, n = strlen(k);

	FUZZ_CHECK(n > 0 && n <= BOTID_MAX_ATTESTATION_KIND);
	for (i = 0; i < n; i++)
		FUZZ_CHECK((k[i] >= 'a' && k[i] <= 'z') ||
		    (k[i] >= '0' && k[i] <= '9') || k[i] == '-');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *der;
	size_t len;
	char *s;
	int r;

	/* The extension value: accepted only as the encoder writes it. */
	if (certid_attestation_decode(data, size, &s) == 0) {
		check_kind(s);
		FUZZ_CHECK(certid_attestation_encode(s, &der, &len) == 0);
		FUZZ_CHECK(len == size && memcmp(der, data, size) == 0);
		free(der);
		free(s);
	}
	/* A whole certificate. */
	r = certid_attestation(data, size, &s);
	FUZZ_CHECK(r == 0 || r == BOTID_ERR_INVALID ||
	    r == BOTID_ERR_NOT_FOUND || r == BOTID_ERR_ALLOC);
	FUZZ_CHECK((r == 0) == (s != NULL));
	if (r == 0)
		check_kind(s);
	free(s);
	r = certid_spiffe_id(data, size, &s);
	FUZZ_CHECK((r == 0) == (s != NULL));
	if (r == 0)
		FUZZ_CHECK(strncmp(s, "spiffe://", 9) == 0);
	free(s);
	return 0;
}
