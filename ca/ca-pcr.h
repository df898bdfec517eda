/*
 * botid-ca's boot-state policy (doc/security.md, botid-ca(8)): which PCRs
 * a host must quote with every certify, and which values they may hold —
 * none (no quote), exact (one of the configured sets) or first-use (the
 * first values the CA sees become the host's golden values).
 */
#ifndef BOTID_CA_PCR_H
#define BOTID_CA_PCR_H

#include <stddef.h>
#include <stdint.h>

#define CA_PCR_COUNT	24	/* PCR 0 to 23 */
#define CA_PCR_SIZE	32	/* SHA-256 bank only */
#define CA_PCR_MAX_SETS	16	/* pcr_allow lines */

enum ca_pcr_mode {
	CA_PCR_NONE = 0,
	CA_PCR_EXACT,
	CA_PCR_FIRST_USE,
};

struct ca_pcr_set {
	uint8_t		value[CA_PCR_COUNT][CA_PCR_SIZE];
};

struct ca_pcr_policy {
	enum ca_pcr_mode	mode;
	uint32_t		select;		/* bit i = PCR i, SHA-256 */
	struct ca_pcr_set	sets[CA_PCR_MAX_SETS];
	size_t			nsets;
	int			eventlog;	/* pcr_eventlog = yes */
};

/*
 * Applies one ca.conf key: pcr_policy (none, exact, first-use),
 * pcr_select (comma-separated indices 0 to 23) or pcr_allow (one allowed
 * set: comma-separated INDEX:HEX, each a SHA-256 value; give pcr_select
 * first) or pcr_eventlog (yes or no: the host must send its TCG event log,
 * which must replay to the quoted values). Returns 1 if name is one of these keys (then *why is NULL, or a
 * one-line reason the value is refused), 0 otherwise.
 */
int	ca_pcr_config_key(struct ca_pcr_policy *p, const char *name,
	    const char *value, const char **why);

/*
 * Checks the whole policy once the file is read: exact needs pcr_select
 * and at least one pcr_allow covering exactly those PCRs, first-use needs
 * pcr_select. Errors: BOTID_ERR_CONFIG with *why set.
 */
int	ca_pcr_config_check(const struct ca_pcr_policy *p, const char **why);

/* How many PCRs mask selects. */
size_t	ca_pcr_count(uint32_t mask);

/*
 * Compares values (the PCRs of select in ascending order, CA_PCR_SIZE
 * bytes each) with golden (same layout); writes the differing indices,
 * comma-separated, into differ. Returns how many differ.
 */
size_t	ca_pcr_diff(uint32_t select, const uint8_t *values,
	    const uint8_t *golden, char *differ, size_t differ_len);

/*
 * Whether values (as above) equal one of the exact policy's sets. On
 * refusal returns BOTID_ERR_DENIED with the indices that differ from the
 * closest set in differ. Errors: BOTID_ERR_DENIED.
 */
int	ca_pcr_check_exact(const struct ca_pcr_policy *p,
	    const uint8_t *values, char *differ, size_t differ_len);

#include <tss2/tss2_tpm2_types.h>

/*
 * Checks a certify request's boot-state evidence against policy p (not
 * CA_PCR_NONE): the quote attest (marshalled TPM2B_ATTEST) signed with sig
 * by ak over p's selection with extraData nonce, values (the selected
 * PCRs' SHA-256 values, ascending) matching its digest, and those values
 * allowed by the policy; golden is the host's recorded values for
 * first-use (NULL: none yet), evlog the host's TCG event log (needed when
 * p->eventlog: every selected PCR must replay to its quoted value).
 * *outcome says what the CA records:
 * CA_PCR_ADOPT (first-use, no golden values: these become them),
 * CA_PCR_CHANGED (a genuine quote of values the policy refuses), or 0.
 * On refusal writes one line into why (for a first-use or exact mismatch,
 * "PCR 7 ..." naming every differing index) and returns
 * BOTID_ERR_DENIED (bad evidence or values, 403) or _INVALID (a missing
 * or mis-sized member, 400). Other errors: _CRYPTO, _ALLOC.
 */
#define CA_PCR_ADOPT	1
#define CA_PCR_CHANGED	2
int	ca_pcr_admit(const struct ca_pcr_policy *p, const TPM2B_PUBLIC *ak,
	    const uint8_t *nonce, size_t nonce_len, const uint8_t *attest,
	    size_t attest_len, const uint8_t *sig, size_t sig_len,
	    const uint8_t *values, size_t values_len, const uint8_t *evlog,
	    size_t evlog_len, const uint8_t *golden, int *outcome, char *why,
	    size_t whylen);

#endif /* BOTID_CA_PCR_H */
