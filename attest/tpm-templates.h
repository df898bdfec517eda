/*
 * The TPM object templates botid creates from: the owner storage primary
 * (shared with tpm2-openssl so blobs load there too), the TCG endorsement
 * keys, the attestation key (AK) and the host key, both under the primary.
 */
#ifndef BOTID_ATTEST_TPM_TEMPLATES_H
#define BOTID_ATTEST_TPM_TEMPLATES_H

#include <tss2/tss2_esys.h>

/* tpm2-openssl's storage primaries for parent TPM2_RH_OWNER. */
extern const TPM2B_PUBLIC tpm_template_srk_ecc;
extern const TPM2B_PUBLIC tpm_template_srk_rsa;

/*
 * TCG EK Credential Profile low-range templates: L-1 (RSA-2048, certificate
 * in NV 0x01c00002) and L-2 (ECC NIST P-256, certificate in 0x01c0000a).
 */
extern const TPM2B_PUBLIC tpm_template_ek_rsa;
extern const TPM2B_PUBLIC tpm_template_ek_ecc;

/*
 * The AK (restricted signing, ECDSA or RSASSA with SHA-256) and the host key
 * (unrestricted signing), both fixedTPM, fixedParent, sensitiveDataOrigin.
 */
extern const TPM2B_PUBLIC tpm_template_ak_ecc;
extern const TPM2B_PUBLIC tpm_template_ak_rsa;
extern const TPM2B_PUBLIC tpm_template_hostkey_ecc;
extern const TPM2B_PUBLIC tpm_template_hostkey_rsa;

/*
 * Sets *ecc to 1 when the TPM implements ECC (then the ECC templates are
 * used, as tpm2-openssl does), 0 otherwise. Returns the TSS2_RC of
 * TPM2_GetCapability.
 */
TSS2_RC	tpm_templates_have_ecc(ESYS_CONTEXT *esys, int *ecc);

#endif /* BOTID_ATTEST_TPM_TEMPLATES_H */
