/*
 * attest-probe: the CA's evidence checks, driven from a shell test with
 * files that tpm2-tools writes:
 *   attest-probe name PUB                      print the object name (hex)
 *   attest-probe makecred EKPUB AKPUB SECRET OUT
 *       MakeCredential for the AK's name, written in tpm2-tools' credential
 *       file format (0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
 *       TPM2B_ENCRYPTED_SECRET) for tpm2_activatecredential
 *   attest-probe certify AKPUB KEYPUB NONCEHEX ATTEST SIG
 *       verify tpm2_certify output (ATTEST: raw TPMS_ATTEST)
 *   attest-probe profile ak|key PUB            check the attributes
 * PUB files are marshalled TPM2B_PUBLIC (tpm2-tools -u). Exit 0 on
 * success; on refusal the reason on stderr and exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "attest/makecred.h"
#include "attest/tpm-templates.h"
#include "attest/tpm-verify.h"
#include "lib/botid.h"
#include "lib/file.h"

static uint8_t *
slurp(const char *path, size_t *len)
{
	uint8_t *d = NULL;

	if (file_read(path, 1 << 20, &d, len) != 0) {
		fprintf(stderr, "attest-probe: cannot read %s\n", path);
		exit(2);
	}
	return d;
}

static void
load_public(const char *path, TPM2B_PUBLIC *pub)
{
	size_t len;
	uint8_t *d = slurp(path, &len);

	if (tpm_public_parse(d, len, pub) != 0) {
		fprintf(stderr, "attest-probe: %s: not a TPM2B_PUBLIC\n", path);
		exit(1);
	}
	free(d);
}

static int
unhex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s), i;
	unsigned int v;

	if (n % 2 != 0 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	*len = n / 2;
	return 0;
}

/*
 * Run with no arguments (as make check does): the attribute profiles on
 * botid's own templates, and the parser on every truncation of one.
 */
static int
selftest(void)
{
	uint8_t buf[sizeof(TPM2B_PUBLIC)];
	TPM2B_PUBLIC p, imported;
	const char *why;
	size_t len = 0, cut;
	int ok = 1;

	ok &= tpm_public_check(&tpm_template_ak_ecc, TPM_PROFILE_AK, &why) == 0;
	ok &= tpm_public_check(&tpm_template_ak_rsa, TPM_PROFILE_AK, &why) == 0;
	ok &= tpm_public_check(&tpm_template_hostkey_ecc, TPM_PROFILE_KEY,
	    &why) == 0;
	ok &= tpm_public_check(&tpm_template_ak_ecc, TPM_PROFILE_KEY,
	    &why) == BOTID_ERR_DENIED;
	ok &= tpm_public_check(&tpm_template_hostkey_ecc, TPM_PROFILE_AK,
	    &why) == BOTID_ERR_DENIED;
	/* EKs decrypt; an imported key lacks fixedTPM. */
	ok &= tpm_public_check(&tpm_template_ek_rsa, TPM_PROFILE_KEY,
	    &why) == BOTID_ERR_DENIED;
	imported = tpm_template_hostkey_ecc;
	imported.publicArea.objectAttributes &= ~(TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_SENSITIVEDATAORIGIN);
	ok &= tpm_public_check(&imported, TPM_PROFILE_KEY, &why) ==
	    BOTID_ERR_DENIED && strstr(why, "fixedTPM") != NULL;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&tpm_template_ek_ecc, buf,
	    sizeof(buf), &len) != 0)
		return 1;
	ok &= tpm_public_parse(buf, len, &p) == 0;
	for (cut = 0; cut < len; cut++)
		ok &= tpm_public_parse(buf, cut, &p) == BOTID_ERR_PROTOCOL;
	ok &= tpm_public_parse(buf, len + 1, &p) == BOTID_ERR_PROTOCOL;
	printf("%s: attest-probe selftest without a TPM\n", ok ? "ok" : "FAIL");
	return ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
	TPM2B_PUBLIC a, b;
	uint8_t name[sizeof(TPMU_NAME) + 2], nonce[64], *blob, *enc, *s, *d;
	uint8_t attest[sizeof(TPM2B_ATTEST)];
	size_t name_len, blob_len, enc_len, len, nonce_len, i;
	const char *why = NULL;
	FILE *f;

	if (argc == 1)
		return selftest();
	if (argc == 3 && strcmp(argv[1], "name") == 0) {
		load_public(argv[2], &a);
		if (tpm_public_name(&a, name, &name_len) != 0)
			return 1;
		for (i = 0; i < name_len; i++)
			printf("%02x", name[i]);
		printf("\n");
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "makecred") == 0) {
		static const uint8_t head[8] = { 0xba, 0xdc, 0xc0, 0xde,
		    0, 0, 0, 1 };

		load_public(argv[2], &a);
		load_public(argv[3], &b);
		s = slurp(argv[4], &len);
		if (tpm_public_name(&b, name, &name_len) != 0 ||
		    tpm_make_credential(&a, name, name_len, s, len, &blob,
		    &blob_len, &enc, &enc_len) != 0) {
			fprintf(stderr, "attest-probe: makecred failed\n");
			return 1;
		}
		if ((f = fopen(argv[5], "wb")) == NULL ||
		    fwrite(head, 1, 8, f) != 8 ||
		    fwrite(blob, 1, blob_len, f) != blob_len ||
		    fwrite(enc, 1, enc_len, f) != enc_len || fclose(f) != 0)
			return 2;
		free(blob);
		free(enc);
		free(s);
		return 0;
	}
	if (argc == 7 && strcmp(argv[1], "certify") == 0) {
		load_public(argv[2], &a);
		load_public(argv[3], &b);
		if (unhex(argv[4], nonce, sizeof(nonce), &nonce_len) != 0)
			return 2;
		d = slurp(argv[5], &len);
		if (len > sizeof(attest) - 2)
			return 2;
		attest[0] = (uint8_t)(len >> 8);
		attest[1] = (uint8_t)len;
		memcpy(attest + 2, d, len);
		free(d);
		s = slurp(argv[6], &blob_len);
		if (tpm_certify_verify(&a, &b, nonce, nonce_len, attest,
		    len + 2, s, blob_len, &why) != 0) {
			fprintf(stderr, "refused: %s\n", why != NULL ? why :
			    "malformed");
			return 1;
		}
		free(s);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "profile") == 0) {
		load_public(argv[3], &a);
		if (tpm_public_check(&a, strcmp(argv[2], "ak") == 0 ?
		    TPM_PROFILE_AK : TPM_PROFILE_KEY, &why) != 0) {
			fprintf(stderr, "refused: %s\n", why);
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "usage: attest-probe name|makecred|certify|profile "
	    "...\n");
	return 2;
}
