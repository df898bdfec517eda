/*
 * What botid provision leaves in STATE_DIR/attest/ (directory 0700) and the
 * agent reads at start: the AK and host key as TPM-wrapped blobs (useless
 * off this TPM), and once enrolled the host id, the CA's address, its
 * bundle and the host certificate. Nothing in it is secret.
 */
#ifndef BOTID_ATTEST_HOST_STATE_H
#define BOTID_ATTEST_HOST_STATE_H

#include <tss2/tss2_tpm2_types.h>

#define HOST_STATE_SUBDIR	"attest"

struct host_state {
	char		*dir;		/* STATE_DIR/attest */
	int		 have_keys;	/* the four blob files were read */
	TPM2B_PUBLIC	 ak_pub;
	TPM2B_PRIVATE	 ak_priv;
	TPM2B_PUBLIC	 hk_pub;
	TPM2B_PRIVATE	 hk_priv;
	int		 enrolled;	/* host.json was read */
	char		*host_id;
	char		*spiffe_id;
	char		*ca_url;
	char		*bundle_path;	/* dir/ca-bundle.pem */
	char		*host_cert_path; /* dir/host-cert.pem */
};

/*
 * Reads whatever state_dir/attest holds into *hs (caller host_state_free()s
 * it, also on failure). Missing files are not an error: have_keys and
 * enrolled say what was found. On failure err names the file and the
 * problem. Errors: BOTID_ERR_CONFIG (damaged or unsafe state), _IO, _ALLOC.
 */
int	host_state_load(const char *state_dir, struct host_state *hs,
	    char *err, size_t errlen);

/* Writes the key blobs from hs (creating the directory 0700). */
int	host_state_save_keys(struct host_state *hs, char *err, size_t errlen);

/*
 * Records the enrolment: host.json (host id, SPIFFE ID, CA URL), the CA
 * bundle and the host certificate, each written atomically, host.json
 * last. Sets the matching fields of hs. Errors: BOTID_ERR_IO, _ALLOC.
 */
int	host_state_save_enrolment(struct host_state *hs, const char *host_id,
	    const char *spiffe_id, const char *ca_url, const char *bundle_pem,
	    const char *host_cert_pem, char *err, size_t errlen);

void	host_state_free(struct host_state *hs);

/*
 * Deprovisioning: removes everything state_dir/attest holds, host.json
 * first (the host is no longer enrolled), then the key blobs (which
 * destroys the AK and the host key: the TPM keeps no other copy), then
 * the directory. Missing files are fine. Errors: BOTID_ERR_IO (logged
 * into err), _ALLOC.
 */
int	host_state_remove(const char *state_dir, char *err, size_t errlen);

#endif /* BOTID_ATTEST_HOST_STATE_H */
