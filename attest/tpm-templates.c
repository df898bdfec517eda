/*
 * TPM templates shared by the agent's TPM backend and host provisioning.
 * A primary key is a function of its template and the hierarchy's seed:
 * any field changed here gives another key, and every blob made under the
 * old one stops loading. Treat these as a persistent format.
 */
#include <tss2/tss2_esys.h>

#include "attest/tpm-templates.h"

#define SRK_ATTRS	(TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | \
	TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | \
	TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN)

/* TCG EK Credential Profile 2.x, templates L-1 and L-2. */
#define EK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

/* PolicySecret(TPM_RH_ENDORSEMENT), SHA-256: the profile's "policy A". */
#define EK_POLICY_A { \
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, \
	0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, \
	0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa }

#define SIGN_ATTRS	(TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT | \
	TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN)

#define AES128_CFB { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, \
	.mode.aes = TPM2_ALG_CFB }
#define SYM_NULL { .algorithm = TPM2_ALG_NULL }

const TPM2B_PUBLIC tpm_template_srk_ecc = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = SRK_ATTRS,
		.parameters.eccDetail = {
			.symmetric = AES128_CFB,
			.scheme = { .scheme = TPM2_ALG_NULL },
			.curveID = TPM2_ECC_NIST_P256,
			.kdf = { .scheme = TPM2_ALG_NULL },
		},
	},
};

const TPM2B_PUBLIC tpm_template_srk_rsa = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = SRK_ATTRS,
		.parameters.rsaDetail = {
			.symmetric = AES128_CFB,
			.scheme = { .scheme = TPM2_ALG_NULL },
			.keyBits = 2048,
			.exponent = 0,
		},
	},
};

const TPM2B_PUBLIC tpm_template_ek_rsa = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = EK_ATTRS,
		.authPolicy = { .size = 32, .buffer = EK_POLICY_A },
		.parameters.rsaDetail = {
			.symmetric = AES128_CFB,
			.scheme = { .scheme = TPM2_ALG_NULL },
			.keyBits = 2048,
			.exponent = 0,
		},
		.unique.rsa = { .size = 256 },
	},
};

const TPM2B_PUBLIC tpm_template_ek_ecc = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = EK_ATTRS,
		.authPolicy = { .size = 32, .buffer = EK_POLICY_A },
		.parameters.eccDetail = {
			.symmetric = AES128_CFB,
			.scheme = { .scheme = TPM2_ALG_NULL },
			.curveID = TPM2_ECC_NIST_P256,
			.kdf = { .scheme = TPM2_ALG_NULL },
		},
		.unique.ecc = { .x = { .size = 32 }, .y = { .size = 32 } },
	},
};

const TPM2B_PUBLIC tpm_template_ak_ecc = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = SIGN_ATTRS | TPMA_OBJECT_RESTRICTED,
		.parameters.eccDetail = {
			.symmetric = SYM_NULL,
			.scheme = { .scheme = TPM2_ALG_ECDSA,
			    .details.ecdsa.hashAlg = TPM2_ALG_SHA256 },
			.curveID = TPM2_ECC_NIST_P256,
			.kdf = { .scheme = TPM2_ALG_NULL },
		},
	},
};

const TPM2B_PUBLIC tpm_template_ak_rsa = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = SIGN_ATTRS | TPMA_OBJECT_RESTRICTED,
		.parameters.rsaDetail = {
			.symmetric = SYM_NULL,
			.scheme = { .scheme = TPM2_ALG_RSASSA,
			    .details.rsassa.hashAlg = TPM2_ALG_SHA256 },
			.keyBits = 2048,
			.exponent = 0,
		},
	},
};

const TPM2B_PUBLIC tpm_template_hostkey_ecc = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = SIGN_ATTRS,
		.parameters.eccDetail = {
			.symmetric = SYM_NULL,
			.scheme = { .scheme = TPM2_ALG_NULL },
			.curveID = TPM2_ECC_NIST_P256,
			.kdf = { .scheme = TPM2_ALG_NULL },
		},
	},
};

const TPM2B_PUBLIC tpm_template_hostkey_rsa = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = SIGN_ATTRS,
		.parameters.rsaDetail = {
			.symmetric = SYM_NULL,
			.scheme = { .scheme = TPM2_ALG_NULL },
			.keyBits = 2048,
			.exponent = 0,
		},
	},
};

TSS2_RC
tpm_templates_have_ecc(ESYS_CONTEXT *esys, int *ecc)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = TPM2_NO;
	TSS2_RC rc;
	uint32_t i;

	*ecc = 0;
	rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, TPM2_CAP_ALGS, TPM2_ALG_ECC, 1, &more, &cap);
	if (rc != 0)
		return rc;
	for (i = 0; i < cap->data.algorithms.count &&
	    i < TPM2_MAX_CAP_ALGS; i++)
		if (cap->data.algorithms.algProperties[i].alg == TPM2_ALG_ECC)
			*ecc = 1;
	Esys_Free(cap);
	return 0;
}
