/*
 * libFuzzer harness for what botid-pkcs11.so does with its callers'
 * arguments and the agent's answers (pkcs11/objects.c,
 * pkcs11/mechanisms.c). The first byte picks:
 *   0  a bot as the agent describes it: u16 length, SubjectPublicKeyInfo
 *      DER, u16 length, certificate DER, then a template (below) matched
 *      against and read from every object made;
 *   1  a mechanism: u32 type (an index into the module's list when below
 *      256), then its parameter bytes, checked as C_SignInit does;
 *   2  a DigestInfo, as CKM_RSA_PKCS signs;
 *   3  a template against the objects of a fixed P-256 bot.
 * A template is up to 16 of: u32 attribute type, u8 value length, value;
 * lengths of 0xff ask for the length only (pValue NULL). Values are read
 * into buffers of exactly the size the caller gives, so an overrun is an
 * AddressSanitizer report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/botid.h"
#include "lib/limits.h"
#include "pkcs11/mechanisms.h"
#include "pkcs11/objects.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_MAX_ATTRS	16

struct cursor {
	const uint8_t	*p;
	size_t		 left;
};

/* A P-256 key and a certificate for it (a bot as the agent lists it). */
static const uint8_t fixed_spki[] = {
#include "tests/fuzz/pkcs11-fixed-spki.inc"
};
static const uint8_t fixed_cert[] = {
#include "tests/fuzz/pkcs11-fixed-cert.inc"
};
static struct botid_p11_objects fixed;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (objects_add_bot(&fixed, 0, "fixed", fixed_spki, sizeof(fixed_spki),
	    fixed_cert, sizeof(fixed_cert)) != 0)
		abort();
	return 0;
}

static int
take(struct cursor *c, size_t n, const uint8_t **out)
{
	if (c->left < n)
		return -1;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static int
take_u16(struct cursor *c, size_t *v)
{
	const uint8_t *b;

	if (take(c, 2, &b) != 0)
		return -1;
	*v = (size_t)b[0] << 8 | b[1];
	return 0;
}

static void
fuzz_template(const struct botid_p11_objects *objs, struct cursor *c)
{
	CK_ATTRIBUTE tmpl[FUZZ_MAX_ATTRS];
	const uint8_t *b, *v;
	CK_ULONG n = 0, i, want[FUZZ_MAX_ATTRS];
	size_t k;
	CK_RV rv;

	memset(tmpl, 0, sizeof(tmpl));
	while (n < FUZZ_MAX_ATTRS && take(c, 5, &b) == 0) {
		tmpl[n].type = (CK_ATTRIBUTE_TYPE)b[0] << 24 |
		    (CK_ATTRIBUTE_TYPE)b[1] << 16 |
		    (CK_ATTRIBUTE_TYPE)b[2] << 8 | b[3];
		if (b[4] == 0xff) {
			tmpl[n].pValue = NULL;
			tmpl[n].ulValueLen = 0;
		} else {
			if (take(c, b[4], &v) != 0)
				break;
			/* Exactly the caller's size: ASan sees any overrun. */
			if ((tmpl[n].pValue = malloc(b[4] > 0 ? b[4] : 1)) == NULL)
				abort();
			memcpy(tmpl[n].pValue, v, b[4]);
			tmpl[n].ulValueLen = b[4];
		}
		want[n] = tmpl[n].ulValueLen;
		n++;
	}
	for (k = 0; k < objs->n; k++) {
		(void)objects_match(&objs->list[k], tmpl, n);
		rv = objects_get_attributes(&objs->list[k], tmpl, n);
		FUZZ_CHECK(rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE ||
		    rv == CKR_ATTRIBUTE_TYPE_INVALID ||
		    rv == CKR_BUFFER_TOO_SMALL);
		for (i = 0; i < n; i++) {
			/* A value written fits the buffer the caller gave. */
			if (tmpl[i].pValue != NULL &&
			    tmpl[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
				FUZZ_CHECK(tmpl[i].ulValueLen <= want[i]);
			if (tmpl[i].pValue == NULL)
				tmpl[i].ulValueLen = 0;
			else
				tmpl[i].ulValueLen = want[i];
		}
	}
	for (i = 0; i < n; i++)
		free(tmpl[i].pValue);
}

static void
fuzz_bot(struct cursor *c)
{
	struct botid_p11_objects objs;
	const uint8_t *spki, *cert;
	size_t spki_len, cert_len;

	memset(&objs, 0, sizeof(objs));
	if (take_u16(c, &spki_len) != 0 || take(c, spki_len, &spki) != 0 ||
	    take_u16(c, &cert_len) != 0 || take(c, cert_len, &cert) != 0)
		return;
	if (objects_add_bot(&objs, 1, "bot", spki, spki_len,
	    cert_len > 0 ? cert : NULL, cert_len) == 0) {
		FUZZ_CHECK(objs.n > 0);
		fuzz_template(&objs, c);
	}
	objects_clear(&objs);
}

static void
fuzz_mechanism(struct cursor *c)
{
	const struct botid_p11_mechanism *m;
	CK_MECHANISM mech;
	const uint8_t *b;
	uint32_t hash = 0;
	void *param = NULL;

	if (take(c, 4, &b) != 0)
		return;
	mech.mechanism = (CK_MECHANISM_TYPE)b[0] << 24 |
	    (CK_MECHANISM_TYPE)b[1] << 16 | (CK_MECHANISM_TYPE)b[2] << 8 | b[3];
	if (mech.mechanism < 256 && mechanisms_count() > 0)
		mech.mechanism = mechanisms_at(mech.mechanism %
		    mechanisms_count())->type;
	if ((m = mechanisms_find(mech.mechanism)) == NULL)
		return;
	if (c->left > 0 && (param = malloc(c->left)) == NULL)
		abort();
	if (c->left > 0)
		memcpy(param, c->p, c->left);
	mech.pParameter = param;
	mech.ulParameterLen = c->left;
	if (mechanisms_check_params(m, &mech, &hash) == CKR_OK && hash != 0)
		FUZZ_CHECK(mechanisms_hash_length(hash) > 0);
	free(param);
}

static void
fuzz_digest_info(struct cursor *c)
{
	uint8_t digest[BOTID_MAX_DIGEST];
	size_t len = 0;
	uint32_t hash = 0;

	if (mechanisms_parse_digest_info(c->p, c->left, &hash, digest,
	    &len) == 0)
		FUZZ_CHECK(len > 0 && len <= sizeof(digest) &&
		    len == mechanisms_hash_length(hash));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor c;

	if (size < 1)
		return 0;
	c.p = data + 1;
	c.left = size - 1;
	switch (data[0] & 3) {
	case 0:
		fuzz_bot(&c);
		break;
	case 1:
		fuzz_mechanism(&c);
		break;
	case 2:
		fuzz_digest_info(&c);
		break;
	case 3:
		fuzz_template(&fixed, &c);
		break;
	}
	return 0;
}
