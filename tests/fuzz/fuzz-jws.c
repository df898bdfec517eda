/*
 * libFuzzer harness for lib/jws.c: the input is a token as a receiving
 * service gets it. The parser must refuse or accept without crashing, and
 * what it accepts must satisfy what it promises its callers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/error.h"
#include "lib/jws.h"
#include "lib/limits.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jws_parsed p;
	uint8_t *dec;
	char err[256], *enc;
	size_t len, i;

	if (jws_parse((const char *)data, size, &p, err, sizeof(err)) == 0) {
		FUZZ_CHECK(size <= BOTID_MAX_TOKEN);
		FUZZ_CHECK(jws_alg_name(p.alg) != NULL);
		FUZZ_CHECK(json_is_object(p.header));
		FUZZ_CHECK(p.signing_input_len < size);
		FUZZ_CHECK(memcmp(p.signing_input, data,
		    p.signing_input_len) == 0);
		FUZZ_CHECK(p.sig_len > 0 && p.sig_len <= BOTID_MAX_SIGNATURE);
		FUZZ_CHECK(p.detached == (p.payload == NULL));
		FUZZ_CHECK(p.nx5c <= BOTID_MAX_CHAIN);
		for (i = 0; i < p.nx5c; i++)
			FUZZ_CHECK(p.x5c[i].data != NULL);
	} else
		FUZZ_CHECK(err[0] != '\0' || size == 0);
	jws_parsed_free(&p);

	/* base64url: whatever decodes re-encodes to the same text. */
	if (jws_b64url_decode((const char *)data, size, size, &dec,
	    &len) == 0) {
		FUZZ_CHECK(jws_b64url_encode(dec, len, &enc) == 0);
		FUZZ_CHECK(strlen(enc) == size &&
		    memcmp(enc, data, size) == 0);
		free(enc);
		free(dec);
	}
	return 0;
}
