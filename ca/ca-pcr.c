/*
 * botid-ca's boot-state policy (ca-pcr.h). The values a host reports are
 * only compared here; that they are the TPM's own is what
 * attest/quote.c's check of the AK-signed quote established before.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "attest/eventlog.h"
#include "attest/quote.h"
#include "ca/ca-pcr.h"
#include "lib/botid.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Reads decimal 0..23 at *s, advancing past it; -1 if there is none. */
static int
index_parse(const char **s)
{
	int v = 0, n = 0;

	while (isdigit((unsigned char)**s) && n < 3) {
		v = v * 10 + (**s - '0');
		(*s)++;
		n++;
	}
	return n == 0 || v >= CA_PCR_COUNT ? -1 : v;
}

static int
select_parse(const char *s, uint32_t *mask)
{
	int i;

	*mask = 0;
	for (;;) {
		while (*s == ' ')
			s++;
		if ((i = index_parse(&s)) < 0)
			return -1;
		*mask |= 1u << i;
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return 0;
		if (*s++ != ',')
			return -1;
	}
}

static int
allow_parse(const char *s, uint32_t select, struct ca_pcr_set *set)
{
	uint32_t seen = 0;
	int i, hi, lo;
	size_t k;

	memset(set, 0, sizeof(*set));
	for (;;) {
		while (*s == ' ')
			s++;
		if ((i = index_parse(&s)) < 0 || *s++ != ':' ||
		    (seen & (1u << i)))
			return -1;
		for (k = 0; k < CA_PCR_SIZE; k++) {
			if ((hi = hexval((unsigned char)s[0])) < 0 ||
			    (lo = hexval((unsigned char)s[1])) < 0)
				return -1;
			set->value[i][k] = (uint8_t)(hi << 4 | lo);
			s += 2;
		}
		seen |= 1u << i;
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		if (*s++ != ',')
			return -1;
	}
	/* A set names every selected PCR, and only those. */
	return seen == select ? 0 : -1;
}

int
ca_pcr_config_key(struct ca_pcr_policy *p, const char *name,
    const char *value, const char **why)
{
	*why = NULL;
	if (strcmp(name, "pcr_policy") == 0) {
		if (strcmp(value, "none") == 0)
			p->mode = CA_PCR_NONE;
		else if (strcmp(value, "exact") == 0)
			p->mode = CA_PCR_EXACT;
		else if (strcmp(value, "first-use") == 0)
			p->mode = CA_PCR_FIRST_USE;
		else
			*why = "pcr_policy must be none, exact or first-use";
		return 1;
	}
	if (strcmp(name, "pcr_eventlog") == 0) {
		if (strcmp(value, "yes") == 0 || strcmp(value, "no") == 0)
			p->eventlog = strcmp(value, "yes") == 0;
		else
			*why = "pcr_eventlog must be yes or no";
		return 1;
	}
	if (strcmp(name, "pcr_select") == 0) {
		if (p->nsets > 0)
			*why = "pcr_select must come before pcr_allow";
		else if (select_parse(value, &p->select) != 0)
			*why = "pcr_select must be PCR indices 0 to 23, "
			    "comma-separated";
		return 1;
	}
	if (strcmp(name, "pcr_allow") == 0) {
		if (p->select == 0)
			*why = "pcr_allow needs pcr_select before it";
		else if (p->nsets == CA_PCR_MAX_SETS)
			*why = "too many pcr_allow lines (at most 16)";
		else if (allow_parse(value, p->select,
		    &p->sets[p->nsets]) != 0)
			*why = "pcr_allow must give INDEX:SHA256HEX for every "
			    "PCR of pcr_select, comma-separated";
		else
			p->nsets++;
		return 1;
	}
	return 0;
}

int
ca_pcr_config_check(const struct ca_pcr_policy *p, const char **why)
{
	*why = NULL;
	if (p->mode != CA_PCR_NONE && p->select == 0)
		*why = "pcr_policy exact and first-use need pcr_select";
	else if (p->mode == CA_PCR_EXACT && p->nsets == 0)
		*why = "pcr_policy exact needs at least one pcr_allow";
	else if (p->mode != CA_PCR_EXACT && p->nsets > 0)
		*why = "pcr_allow is only for pcr_policy exact";
	else if (p->mode == CA_PCR_NONE && p->eventlog)
		*why = "pcr_eventlog needs pcr_policy exact or first-use";
	return *why == NULL ? 0 : BOTID_ERR_CONFIG;
}

size_t
ca_pcr_count(uint32_t mask)
{
	size_t n = 0;

	for (; mask != 0; mask &= mask - 1)
		n++;
	return n;
}

size_t
ca_pcr_diff(uint32_t select, const uint8_t *values, const uint8_t *golden,
    char *differ, size_t differ_len)
{
	size_t n = 0, k = 0, used = 0;
	int i, w;

	if (differ_len > 0)
		differ[0] = '\0';
	for (i = 0; i < CA_PCR_COUNT; i++) {
		if (!(select & (1u << i)))
			continue;
		if (CRYPTO_memcmp(values + k * CA_PCR_SIZE,
		    golden + k * CA_PCR_SIZE, CA_PCR_SIZE) != 0) {
			w = snprintf(differ + used, differ_len - used, "%s%d",
			    n > 0 ? "," : "", i);
			if (w > 0 && (size_t)w < differ_len - used)
				used += (size_t)w;
			n++;
		}
		k++;
	}
	return n;
}

int
ca_pcr_check_exact(const struct ca_pcr_policy *p, const uint8_t *values,
    char *differ, size_t differ_len)
{
	uint8_t flat[CA_PCR_COUNT * CA_PCR_SIZE];
	char tmp[CA_PCR_COUNT * 3 + 1];
	size_t s, k, n, best = SIZE_MAX;
	int i;

	if (differ_len > 0)
		differ[0] = '\0';
	for (s = 0; s < p->nsets; s++) {
		for (i = 0, k = 0; i < CA_PCR_COUNT; i++)
			if (p->select & (1u << i))
				memcpy(flat + CA_PCR_SIZE * k++,
				    p->sets[s].value[i], CA_PCR_SIZE);
		n = ca_pcr_diff(p->select, values, flat, tmp, sizeof(tmp));
		if (n == 0)
			return 0;
		/* Report against the closest set: the likeliest intent. */
		if (n < best) {
			best = n;
			snprintf(differ, differ_len, "%s", tmp);
		}
	}
	return BOTID_ERR_DENIED;
}

int
ca_pcr_admit(const struct ca_pcr_policy *p, const TPM2B_PUBLIC *ak,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *attest,
    size_t attest_len, const uint8_t *sig, size_t sig_len,
    const uint8_t *values, size_t values_len, const uint8_t *evlog,
    size_t evlog_len, const uint8_t *golden, int *outcome, char *why,
    size_t whylen)
{
	uint8_t replay[EVENTLOG_PCRS][EVENTLOG_SHA256];
	uint8_t flat[CA_PCR_COUNT * CA_PCR_SIZE];
	uint32_t touched = 0;
	const uint8_t *v[CA_PCR_COUNT];
	struct quote_selection want;
	char differ[CA_PCR_COUNT * 3 + 1];
	const char *reason = NULL;
	size_t n, i, k;
	int r;

	(void)touched;
	*outcome = 0;
	n = ca_pcr_count(p->select);
	if (attest == NULL || sig == NULL || values == NULL) {
		snprintf(why, whylen, "the boot-state policy needs a PCR quote "
		    "(pcr_quote, pcr_signature, pcr_values)");
		return BOTID_ERR_INVALID;
	}
	if (p->eventlog && evlog == NULL) {
		snprintf(why, whylen, "the boot-state policy needs the event "
		    "log (pcr_eventlog)");
		return BOTID_ERR_INVALID;
	}
	if (values_len != n * CA_PCR_SIZE) {
		snprintf(why, whylen, "pcr_values must hold %zu SHA-256 values",
		    n);
		return BOTID_ERR_INVALID;
	}
	for (i = 0; i < n; i++)
		v[i] = values + i * CA_PCR_SIZE;
	want.bank = TPM2_ALG_SHA256;
	want.mask = p->select;
	if ((r = quote_verify(ak, nonce, nonce_len, &want, attest, attest_len,
	    sig, sig_len, v, n, &reason)) != 0) {
		if (r == BOTID_ERR_CRYPTO || r == BOTID_ERR_ALLOC)
			return r;
		snprintf(why, whylen, "PCR quote refused: %s", reason != NULL ?
		    reason : "malformed");
		return BOTID_ERR_DENIED;
	}
	/* The log must account for every quoted value, event by event. */
	if (p->eventlog) {
		if ((r = eventlog_replay(evlog, evlog_len, replay, &touched,
		    &reason)) != 0) {
			if (r == BOTID_ERR_CRYPTO)
				return r;
			snprintf(why, whylen, "event log refused: %s",
			    reason != NULL ? reason : "malformed");
			return BOTID_ERR_DENIED;
		}
		for (i = 0, k = 0; i < CA_PCR_COUNT; i++)
			if (p->select & (1u << i))
				memcpy(flat + CA_PCR_SIZE * k++, replay[i],
				    CA_PCR_SIZE);
		if (ca_pcr_diff(p->select, values, flat, differ,
		    sizeof(differ)) != 0) {
			snprintf(why, whylen, "event log refused: it does not "
			    "replay to the quoted PCR %s", differ);
			return BOTID_ERR_DENIED;
		}
	}
	if (p->mode == CA_PCR_EXACT) {
		if (ca_pcr_check_exact(p, values, differ, sizeof(differ)) != 0) {
			snprintf(why, whylen, "boot state refused: PCR %s not "
			    "allowed by the policy", differ);
			*outcome = CA_PCR_CHANGED;
			return BOTID_ERR_DENIED;
		}
		return 0;
	}
	if (golden == NULL) {
		*outcome = CA_PCR_ADOPT;
		return 0;
	}
	if (ca_pcr_diff(p->select, values, golden, differ,
	    sizeof(differ)) != 0) {
		snprintf(why, whylen, "boot state refused: PCR %s changed since "
		    "approved (botid-ca host approve-boot)", differ);
		*outcome = CA_PCR_CHANGED;
		return BOTID_ERR_DENIED;
	}
	return 0;
}
